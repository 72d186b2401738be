//! The gateway registry (SQLite, WAL): devices, releases, per-device update state, channels and
//! an event log.
//!
//! Every write runs in an `IMMEDIATE` transaction (the write lock is taken at `BEGIN`, so a writer
//! in another process waits out the busy timeout instead of failing on a stale read snapshot);
//! every read returns plain, serializable structs, so the web
//! UI, the JSON API and the metrics read the same data the service writes. A [`Registry`] is
//! cheap to clone and safe to share between tasks; other processes (the CLI adding a device while
//! the gateway runs) open the same file.
//!
//! ```
//! use fwledger_gateway::registry::{NewDevice, Registry, EventLevel};
//!
//! let dir = tempfile::tempdir()?;
//! let registry = Registry::open(&dir.path().join("registry.sqlite"))?;
//! registry.add_device(&NewDevice {
//!     id: "lamp-01".into(),
//!     mac: "02:00:00:00:00:01".into(),
//!     model: "lamp".into(),
//!     hardware: "rev-b".into(),
//! })?;
//! registry.log(EventLevel::Info, "device lamp-01 added")?;
//! assert_eq!(registry.devices()?.len(), 1);
//! assert_eq!(registry.events(10)?[0].message, "device lamp-01 added");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use fwledger::unix_now;
use fwledger_link::{DeviceStatus, UpdateState};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use serde::Serialize;

use crate::rollout::PlanError;

mod rollouts;

use rollouts::{default_plan, insert_rollout};
pub use rollouts::{RolloutAction, RolloutStatus};

/// 2: device groups, rollouts, settings.
const SCHEMA_VERSION: i64 = 2;
/// Events kept in the log; older ones are dropped.
const EVENTS_KEPT: i64 = 10_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY,
    mac TEXT NOT NULL,
    model TEXT NOT NULL,
    hardware TEXT NOT NULL,
    version TEXT,
    sha256 TEXT,
    security_version INTEGER NOT NULL DEFAULT 0,
    added INTEGER NOT NULL,
    last_seen INTEGER,
    online INTEGER NOT NULL DEFAULT 0,
    notice_release INTEGER
);
CREATE INDEX IF NOT EXISTS devices_model ON devices(model);
CREATE TABLE IF NOT EXISTS releases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    seq INTEGER NOT NULL,
    vendor TEXT NOT NULL,
    vendor_key TEXT NOT NULL,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    security_version INTEGER NOT NULL,
    hardware TEXT NOT NULL,
    cid TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    manifest BLOB NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    path TEXT,
    received INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    UNIQUE(channel, seq)
);
CREATE INDEX IF NOT EXISTS releases_model ON releases(model, version);
CREATE INDEX IF NOT EXISTS releases_sha256 ON releases(sha256);
CREATE TABLE IF NOT EXISTS updates (
    device_id TEXT NOT NULL,
    release_id INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    progress INTEGER,
    notified_at INTEGER,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, release_id)
);
CREATE TABLE IF NOT EXISTS channels (
    id TEXT PRIMARY KEY,
    vendor TEXT NOT NULL,
    vendor_key TEXT NOT NULL,
    cursor INTEGER NOT NULL DEFAULT 0,
    next_seq INTEGER NOT NULL DEFAULT 0,
    freshness TEXT NOT NULL DEFAULT 'unknown',
    heartbeat_time INTEGER,
    heartbeat_valid_until INTEGER,
    last_message INTEGER,
    error TEXT,
    added INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rollouts (
    release_id INTEGER PRIMARY KEY,
    plan TEXT NOT NULL,
    stage INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    reason TEXT,
    stage_started INTEGER NOT NULL,
    baseline_failed INTEGER NOT NULL DEFAULT 0,
    baseline_attempted INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time INTEGER NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL
);
";

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// SQLite failed (locked for too long, disk full, corrupt file).
    #[error("registry database: {0}")]
    Database(#[from] rusqlite::Error),
    /// The database holds something this version cannot read.
    #[error("registry is damaged: {0}")]
    Corrupt(String),
    /// A device with this id exists already.
    #[error("device {0:?} is already registered")]
    DuplicateDevice(String),
    /// No device with this id.
    #[error("unknown device {0:?}")]
    UnknownDevice(String),
    /// The registry directory cannot be created.
    #[error("registry: {0}")]
    Io(#[from] std::io::Error),
    /// No release with this id.
    #[error("unknown release #{0}")]
    UnknownRelease(i64),
    /// The release has no rollout plan.
    #[error("release #{0} has no rollout plan")]
    NoRollout(i64),
    /// The rollout cannot do this in its current state.
    #[error("rollout: {0}")]
    RolloutRefused(String),
    /// The rollout plan is invalid.
    #[error("rollout plan: {0}")]
    BadPlan(#[from] PlanError),
    /// The group name is invalid.
    #[error("group {0:?}: expected 1-64 of A-Z a-z 0-9 . _ -")]
    BadGroup(String),
}

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vdoc])* $variant),*
        }

        impl $name {
            /// The stored (and displayed) name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),*
                }
            }

            /// Parses a stored name.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// Where the gateway is with a release.
    ReleaseState {
        /// Announced and verified on the channel; no registered device can use it (not fetched).
        Pending = "pending",
        /// Being fetched from the content store into the repository.
        Fetching = "fetching",
        /// In the repository, verified (size, SHA-256, vendor signature); offered to devices.
        Verified = "verified",
        /// The fetched content did not match the manifest (or the manifest no longer verifies).
        Failed = "failed",
        /// Withdrawn by the vendor; no longer offered.
        Revoked = "revoked",
    }
);

string_enum!(
    /// Where a device is with one release.
    UpdateStage {
        /// The gateway published a notice for it.
        Notified = "notified",
        /// The device is downloading it.
        Downloading = "downloading",
        /// Downloaded and verified by the device; switching slots.
        Installing = "installing",
        /// Booted into it, running its self-check.
        Rebooting = "rebooting",
        /// Running it, confirmed.
        Confirmed = "confirmed",
        /// The device refused it or the update failed (see the reason).
        Failed = "failed",
        /// The device went back to its previous image (see the reason).
        RolledBack = "rolled_back",
    }
);

string_enum!(
    /// Whether a channel is known to be live.
    ChannelHealth {
        /// No heartbeat seen yet.
        Unknown = "unknown",
        /// The latest heartbeat is valid.
        Fresh = "fresh",
        /// The latest heartbeat expired: the channel is frozen or withheld.
        Stale = "stale",
    }
);

string_enum!(
    /// Severity of a logged event.
    EventLevel {
        /// Normal operation.
        Info = "info",
        /// Something to look at (refused message, stale channel, failed update).
        Warning = "warning",
        /// An attack or a fault (content that does not match its manifest).
        Error = "error",
    }
);

impl UpdateStage {
    /// The stage a device status report means, if it is about a release (`idle` is not).
    pub fn from_status(state: UpdateState) -> Option<Self> {
        Some(match state {
            UpdateState::Idle => return None,
            UpdateState::Downloading => UpdateStage::Downloading,
            UpdateState::Installing => UpdateStage::Installing,
            UpdateState::Rebooting => UpdateStage::Rebooting,
            UpdateState::Confirmed => UpdateStage::Confirmed,
            UpdateState::Failed => UpdateStage::Failed,
            UpdateState::RolledBack => UpdateStage::RolledBack,
        })
    }

    /// Whether the update is over (confirmed, failed or rolled back).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            UpdateStage::Confirmed | UpdateStage::Failed | UpdateStage::RolledBack
        )
    }
}

/// A device to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDevice {
    /// Device id (certificate CN).
    pub id: String,
    /// MAC address.
    pub mac: String,
    /// Model.
    pub model: String,
    /// Hardware revision.
    pub hardware: String,
}

/// A registered device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    /// Device id (certificate CN, MQTT user name).
    pub id: String,
    /// MAC address.
    pub mac: String,
    /// Model.
    pub model: String,
    /// Hardware revision.
    pub hardware: String,
    /// Running firmware version, once the device reported it.
    pub version: Option<String>,
    /// SHA-256 of the running image (hex), if reported.
    pub sha256: Option<String>,
    /// Highest accepted security version, as reported.
    pub security_version: u64,
    /// When registered, Unix seconds.
    pub added: u64,
    /// When last heard from, Unix seconds.
    pub last_seen: Option<u64>,
    /// Whether connected, as far as the gateway knows (a report arrived and no disconnect since).
    pub online: bool,
    /// The release the device's retained notice currently offers.
    pub notice_release: Option<i64>,
    /// Its group (staged rollouts), if any.
    pub group: Option<String>,
}

/// A release announced on a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRelease {
    /// Channel id, hex.
    pub channel: String,
    /// Channel sequence number.
    pub seq: u64,
    /// Vendor name.
    pub vendor: String,
    /// Vendor root key, hex.
    pub vendor_key: String,
    /// Model.
    pub model: String,
    /// Version.
    pub version: String,
    /// Security version.
    pub security_version: u64,
    /// Compatible hardware revisions.
    pub hardware: Vec<String>,
    /// IPFS CID.
    pub cid: String,
    /// SHA-256 of the image, hex.
    pub sha256: String,
    /// Image size.
    pub size: u64,
    /// The vendor-signed manifest (COSE_Sign1).
    pub manifest: Vec<u8>,
}

/// A release the gateway knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Release {
    /// Registry id.
    pub id: i64,
    /// Channel id, hex.
    pub channel: String,
    /// Channel sequence number.
    pub seq: u64,
    /// Vendor name.
    pub vendor: String,
    /// Vendor root key, hex.
    pub vendor_key: String,
    /// Model.
    pub model: String,
    /// Version.
    pub version: String,
    /// Security version.
    pub security_version: u64,
    /// Compatible hardware revisions.
    pub hardware: Vec<String>,
    /// IPFS CID.
    pub cid: String,
    /// SHA-256 of the image, hex.
    pub sha256: String,
    /// Image size in bytes.
    pub size: u64,
    /// The vendor-signed manifest.
    #[serde(skip)]
    pub manifest: Vec<u8>,
    /// Where the gateway is with it.
    pub state: ReleaseState,
    /// Why it failed or was revoked.
    pub reason: Option<String>,
    /// The repository file, once verified.
    pub path: Option<PathBuf>,
    /// When announced (received), Unix seconds.
    pub received: u64,
    /// Last state change, Unix seconds.
    pub updated: u64,
}

/// The state of one device's update to one release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceUpdate {
    /// Device id.
    pub device_id: String,
    /// Release id.
    pub release_id: i64,
    /// Release model.
    pub model: String,
    /// Release version.
    pub version: String,
    /// Stage.
    pub state: UpdateStage,
    /// Why it failed or rolled back.
    pub reason: Option<String>,
    /// Bytes downloaded, during `downloading`.
    pub progress: Option<u64>,
    /// When the notice was published.
    pub notified_at: Option<u64>,
    /// Last change.
    pub updated_at: u64,
}

/// A channel to follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChannel {
    /// Channel id, hex.
    pub id: String,
    /// Vendor name.
    pub vendor: String,
    /// Vendor root key, hex.
    pub vendor_key: String,
}

/// A followed channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Channel {
    /// Channel id, hex.
    pub id: String,
    /// Vendor name.
    pub vendor: String,
    /// Vendor root key, hex.
    pub vendor_key: String,
    /// Next ledger position to read.
    pub cursor: u64,
    /// Next channel sequence number expected.
    pub next_seq: u64,
    /// Freshness from heartbeats.
    pub freshness: ChannelHealth,
    /// Time of the latest heartbeat.
    pub heartbeat_time: Option<u64>,
    /// Until when the latest heartbeat is valid.
    pub heartbeat_valid_until: Option<u64>,
    /// When the latest message was read.
    pub last_message: Option<u64>,
    /// The latest error while following, if the channel is failing.
    pub error: Option<String>,
    /// When subscribed.
    pub added: u64,
}

/// An entry of the event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Increasing id.
    pub id: i64,
    /// Unix seconds.
    pub time: u64,
    /// Severity.
    pub level: EventLevel,
    /// What happened.
    pub message: String,
}

/// What a status report changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusOutcome {
    /// The device's version before the report.
    pub previous_version: Option<String>,
    /// The release the report is about, if the registry knows it, and the stage it reached.
    pub update: Option<(i64, UpdateStage)>,
}

/// The registry. Clones share one connection.
#[derive(Clone)]
pub struct Registry {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("path", &self.path)
            .finish()
    }
}

fn u(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn i(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn device_row(row: &Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        id: row.get(0)?,
        mac: row.get(1)?,
        model: row.get(2)?,
        hardware: row.get(3)?,
        version: row.get(4)?,
        sha256: row.get(5)?,
        security_version: u(row.get(6)?),
        added: u(row.get(7)?),
        last_seen: row.get::<_, Option<i64>>(8)?.map(u),
        online: row.get(9)?,
        notice_release: row.get(10)?,
        group: row.get(11)?,
    })
}

const DEVICE_COLUMNS: &str =
    "id, mac, model, hardware, version, sha256, security_version, added, last_seen, online, notice_release, \
     device_group";

const RELEASE_COLUMNS: &str = "id, channel, seq, vendor, vendor_key, model, version, \
     security_version, hardware, cid, sha256, size, manifest, state, reason, path, received, updated";

fn release_row(row: &Row<'_>) -> rusqlite::Result<Release> {
    let hardware: String = row.get(8)?;
    let state: String = row.get(13)?;
    Ok(Release {
        id: row.get(0)?,
        channel: row.get(1)?,
        seq: u(row.get(2)?),
        vendor: row.get(3)?,
        vendor_key: row.get(4)?,
        model: row.get(5)?,
        version: row.get(6)?,
        security_version: u(row.get(7)?),
        hardware: serde_json::from_str(&hardware).unwrap_or_default(),
        cid: row.get(9)?,
        sha256: row.get(10)?,
        size: u(row.get(11)?),
        manifest: row.get(12)?,
        state: ReleaseState::parse(&state).unwrap_or(ReleaseState::Failed),
        reason: row.get(14)?,
        path: row.get::<_, Option<String>>(15)?.map(PathBuf::from),
        received: u(row.get(16)?),
        updated: u(row.get(17)?),
    })
}

const CHANNEL_COLUMNS: &str = "id, vendor, vendor_key, cursor, next_seq, freshness, \
     heartbeat_time, heartbeat_valid_until, last_message, error, added";

fn channel_row(row: &Row<'_>) -> rusqlite::Result<Channel> {
    let freshness: String = row.get(5)?;
    Ok(Channel {
        id: row.get(0)?,
        vendor: row.get(1)?,
        vendor_key: row.get(2)?,
        cursor: u(row.get(3)?),
        next_seq: u(row.get(4)?),
        freshness: ChannelHealth::parse(&freshness).unwrap_or(ChannelHealth::Unknown),
        heartbeat_time: row.get::<_, Option<i64>>(6)?.map(u),
        heartbeat_valid_until: row.get::<_, Option<i64>>(7)?.map(u),
        last_message: row.get::<_, Option<i64>>(8)?.map(u),
        error: row.get(9)?,
        added: u(row.get(10)?),
    })
}

const UPDATE_QUERY: &str = "SELECT u.device_id, u.release_id, r.model, r.version, u.state, \
     u.reason, u.progress, u.notified_at, u.updated_at FROM updates u JOIN releases r ON r.id = u.release_id";

fn update_row(row: &Row<'_>) -> rusqlite::Result<DeviceUpdate> {
    let state: String = row.get(4)?;
    Ok(DeviceUpdate {
        device_id: row.get(0)?,
        release_id: row.get(1)?,
        model: row.get(2)?,
        version: row.get(3)?,
        state: UpdateStage::parse(&state).unwrap_or(UpdateStage::Failed),
        reason: row.get(5)?,
        progress: row.get::<_, Option<i64>>(6)?.map(u),
        notified_at: row.get::<_, Option<i64>>(7)?.map(u),
        updated_at: u(row.get(8)?),
    })
}

/// Brings an older registry up to date. Checks columns rather than the version number, so it is
/// safe to run on any registry.
fn migrate(conn: &Connection) -> Result<(), RegistryError> {
    let has_group: bool = conn
        .query_row(
            "SELECT 1 FROM pragma_table_info('devices') WHERE name = 'device_group'",
            [],
            |_| Ok(true),
        )
        .optional()?
        .unwrap_or(false);
    if !has_group {
        conn.execute_batch("ALTER TABLE devices ADD COLUMN device_group TEXT")?;
    }
    Ok(())
}

impl Registry {
    /// Opens (creating if needed) the registry at `path`.
    pub fn open(path: &Path) -> Result<Registry, RegistryError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(RegistryError::Corrupt(format!(
                "schema version {version} is newer than this gateway ({SCHEMA_VERSION})"
            )));
        }
        conn.execute_batch(SCHEMA)?;
        migrate(&conn)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(Registry {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_path_buf(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (transactions roll
        // back), so a poisoned lock is safe to reuse.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ----- devices -----

    /// Registers a device.
    pub fn add_device(&self, device: &NewDevice) -> Result<(), RegistryError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists: bool = tx
            .query_row("SELECT 1 FROM devices WHERE id = ?1", [&device.id], |_| {
                Ok(true)
            })
            .optional()?
            .unwrap_or(false);
        if exists {
            return Err(RegistryError::DuplicateDevice(device.id.clone()));
        }
        tx.execute(
            "INSERT INTO devices (id, mac, model, hardware, added) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                device.id,
                device.mac,
                device.model,
                device.hardware,
                i(unix_now())
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Removes a device and its update history.
    pub fn remove_device(&self, id: &str) -> Result<(), RegistryError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM updates WHERE device_id = ?1", [id])?;
        if tx.execute("DELETE FROM devices WHERE id = ?1", [id])? == 0 {
            return Err(RegistryError::UnknownDevice(id.to_string()));
        }
        tx.commit()?;
        Ok(())
    }

    /// One device.
    pub fn device(&self, id: &str) -> Result<Option<Device>, RegistryError> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?1"),
                [id],
                device_row,
            )
            .optional()?)
    }

    /// Every device, by id.
    pub fn devices(&self) -> Result<Vec<Device>, RegistryError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare(&format!("SELECT {DEVICE_COLUMNS} FROM devices ORDER BY id"))?;
        let rows = stmt.query_map([], device_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Devices of `model` whose hardware revision is one of `hardware`.
    pub fn compatible_devices(
        &self,
        model: &str,
        hardware: &[String],
    ) -> Result<Vec<Device>, RegistryError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE model = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map([model], device_row)?;
        let mut devices = Vec::new();
        for device in rows {
            let device = device?;
            if hardware.contains(&device.hardware) {
                devices.push(device);
            }
        }
        Ok(devices)
    }

    /// Records a status report from a device: its running version, security version and image,
    /// that it is online, and — for a report about a release — the stage of that update.
    pub fn record_status(
        &self,
        id: &str,
        status: &DeviceStatus,
    ) -> Result<StatusOutcome, RegistryError> {
        let now = i(unix_now());
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let device = tx
            .query_row(
                &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?1"),
                [id],
                device_row,
            )
            .optional()?
            .ok_or_else(|| RegistryError::UnknownDevice(id.to_string()))?;
        tx.execute(
            "UPDATE devices SET version = ?2, security_version = ?3, \
             sha256 = COALESCE(?4, sha256), last_seen = ?5, online = 1 WHERE id = ?1",
            params![
                id,
                status.version,
                i(status.security_version),
                status.sha256,
                now
            ],
        )?;
        let mut update = None;
        if let Some(stage) = UpdateStage::from_status(status.state) {
            // The report names the release by version; prefer the one the device was offered.
            let release: Option<i64> = match (&status.release, device.notice_release) {
                (None, notice) => notice,
                (Some(version), notice) => tx
                    .query_row(
                        "SELECT id FROM releases WHERE model = ?1 AND version = ?2 \
                         ORDER BY (id = ?3) DESC, id DESC LIMIT 1",
                        params![device.model, version, notice.unwrap_or(-1)],
                        |r| r.get(0),
                    )
                    .optional()?,
            };
            if let Some(release) = release {
                tx.execute(
                    "INSERT INTO updates (device_id, release_id, state, reason, progress, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                     ON CONFLICT (device_id, release_id) DO UPDATE SET state = ?3, reason = ?4, \
                     progress = COALESCE(?5, progress), updated_at = ?6",
                    params![
                        id,
                        release,
                        stage.as_str(),
                        status.reason,
                        status.progress.map(i),
                        now
                    ],
                )?;
                update = Some((release, stage));
            }
        }
        tx.commit()?;
        Ok(StatusOutcome {
            previous_version: device.version,
            update,
        })
    }

    /// Records that a device was heard from (`online`) or disconnected.
    pub fn set_device_online(&self, id: &str, online: bool) -> Result<(), RegistryError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let changed = if online {
            tx.execute(
                "UPDATE devices SET online = 1, last_seen = ?2 WHERE id = ?1",
                params![id, i(unix_now())],
            )?
        } else {
            tx.execute("UPDATE devices SET online = 0 WHERE id = ?1", [id])?
        };
        if changed == 0 {
            return Err(RegistryError::UnknownDevice(id.to_string()));
        }
        tx.commit()?;
        Ok(())
    }

    /// Records which release the device's retained notice offers (`None`: cleared). A new
    /// offer starts that update at `notified`.
    pub fn set_device_notice(&self, id: &str, release: Option<i64>) -> Result<(), RegistryError> {
        let now = i(unix_now());
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if tx.execute(
            "UPDATE devices SET notice_release = ?2 WHERE id = ?1",
            params![id, release],
        )? == 0
        {
            return Err(RegistryError::UnknownDevice(id.to_string()));
        }
        if let Some(release) = release {
            tx.execute(
                "INSERT INTO updates (device_id, release_id, state, notified_at, updated_at) \
                 VALUES (?1, ?2, 'notified', ?3, ?3) \
                 ON CONFLICT (device_id, release_id) DO UPDATE SET state = 'notified', \
                 reason = NULL, progress = NULL, notified_at = ?3, updated_at = ?3",
                params![id, release, now],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    // ----- releases -----

    /// Records a release announced on a channel; returns its id and whether it is new (a message
    /// read again after a crash is recorded once).
    pub fn add_release(&self, release: &NewRelease) -> Result<(i64, bool), RegistryError> {
        let now = i(unix_now());
        let hardware = serde_json::to_string(&release.hardware)
            .map_err(|e| RegistryError::Corrupt(e.to_string()))?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let existing: Option<i64> = tx
            .query_row(
                "SELECT id FROM releases WHERE channel = ?1 AND seq = ?2",
                params![release.channel, i(release.seq)],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = existing {
            return Ok((id, false));
        }
        tx.execute(
            "INSERT INTO releases (channel, seq, vendor, vendor_key, model, version, \
             security_version, hardware, cid, sha256, size, manifest, state, received, updated) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'pending', ?13, ?13)",
            params![
                release.channel,
                i(release.seq),
                release.vendor,
                release.vendor_key,
                release.model,
                release.version,
                i(release.security_version),
                hardware,
                release.cid,
                release.sha256,
                i(release.size),
                release.manifest,
                now
            ],
        )?;
        let id = tx.last_insert_rowid();
        // The gateway's default plan applies to every release announced after it was set.
        if let Some(plan) = default_plan(&tx)? {
            insert_rollout(&tx, id, &plan, 0, 0, now)?;
        }
        tx.commit()?;
        Ok((id, true))
    }

    /// One release.
    pub fn release(&self, id: i64) -> Result<Option<Release>, RegistryError> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {RELEASE_COLUMNS} FROM releases WHERE id = ?1"),
                [id],
                release_row,
            )
            .optional()?)
    }

    /// Every release, newest first.
    pub fn releases(&self) -> Result<Vec<Release>, RegistryError> {
        self.releases_where("1 = 1", params![])
    }

    /// Releases in one of `states`, oldest first.
    pub fn releases_in(&self, states: &[ReleaseState]) -> Result<Vec<Release>, RegistryError> {
        let mut all = self.releases()?;
        all.retain(|r| states.contains(&r.state));
        all.reverse();
        Ok(all)
    }

    /// Verified releases of a model, newest first.
    pub fn verified_releases(&self, model: &str) -> Result<Vec<Release>, RegistryError> {
        self.releases_where("model = ?1 AND state = 'verified'", params![model])
    }

    /// Releases whose image has this SHA-256 (hex), newest first.
    pub fn releases_by_sha256(&self, sha256: &str) -> Result<Vec<Release>, RegistryError> {
        self.releases_where("sha256 = ?1", params![sha256])
    }

    fn releases_where(
        &self,
        condition: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<Release>, RegistryError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {RELEASE_COLUMNS} FROM releases WHERE {condition} ORDER BY id DESC"
        ))?;
        let rows = stmt.query_map(args, release_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Moves a release to `state` (not out of `revoked`), with a reason and the repository file.
    /// Returns whether it changed.
    pub fn set_release_state(
        &self,
        id: i64,
        state: ReleaseState,
        reason: Option<&str>,
        path: Option<&Path>,
    ) -> Result<bool, RegistryError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let changed = tx.execute(
            "UPDATE releases SET state = ?2, reason = ?3, path = COALESCE(?4, path), updated = ?5 \
             WHERE id = ?1 AND state != 'revoked'",
            params![
                id,
                state.as_str(),
                reason,
                path.map(|p| p.display().to_string()),
                i(unix_now())
            ],
        )?;
        tx.commit()?;
        Ok(changed > 0)
    }

    /// Marks the releases of `model` `version` on `channel` revoked; returns their ids.
    pub fn revoke_release(
        &self,
        channel: &str,
        model: &str,
        version: &str,
        reason: &str,
    ) -> Result<Vec<i64>, RegistryError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let ids: Vec<i64> = {
            let mut stmt = tx.prepare(
                "SELECT id FROM releases WHERE channel = ?1 AND model = ?2 AND version = ?3 \
                 AND state != 'revoked'",
            )?;
            let rows = stmt.query_map(params![channel, model, version], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        for id in &ids {
            tx.execute(
                "UPDATE releases SET state = 'revoked', reason = ?2, updated = ?3 WHERE id = ?1",
                params![id, reason, i(unix_now())],
            )?;
        }
        tx.commit()?;
        Ok(ids)
    }

    // ----- updates -----

    /// Every device update, most recent change first.
    pub fn updates(&self) -> Result<Vec<DeviceUpdate>, RegistryError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("{UPDATE_QUERY} ORDER BY u.updated_at DESC"))?;
        let rows = stmt.query_map([], update_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The updates of one device, most recent change first.
    pub fn device_updates(&self, id: &str) -> Result<Vec<DeviceUpdate>, RegistryError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "{UPDATE_QUERY} WHERE u.device_id = ?1 ORDER BY u.updated_at DESC, u.release_id DESC"
        ))?;
        let rows = stmt.query_map([id], update_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The update of one device to one release.
    pub fn device_update(
        &self,
        id: &str,
        release: i64,
    ) -> Result<Option<DeviceUpdate>, RegistryError> {
        Ok(self
            .conn()
            .query_row(
                &format!("{UPDATE_QUERY} WHERE u.device_id = ?1 AND u.release_id = ?2"),
                params![id, release],
                update_row,
            )
            .optional()?)
    }

    // ----- channels -----

    /// Records a subscribed channel (again: keeps its position).
    pub fn add_channel(&self, channel: &NewChannel) -> Result<(), RegistryError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO channels (id, vendor, vendor_key, added) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (id) DO UPDATE SET vendor = ?2, vendor_key = ?3",
            params![
                channel.id,
                channel.vendor,
                channel.vendor_key,
                i(unix_now())
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Every channel, by vendor.
    pub fn channels(&self) -> Result<Vec<Channel>, RegistryError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {CHANNEL_COLUMNS} FROM channels ORDER BY vendor, id"
        ))?;
        let rows = stmt.query_map([], channel_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One channel.
    pub fn channel(&self, id: &str) -> Result<Option<Channel>, RegistryError> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {CHANNEL_COLUMNS} FROM channels WHERE id = ?1"),
                [id],
                channel_row,
            )
            .optional()?)
    }

    /// Records the follower's position after a message.
    pub fn set_channel_position(
        &self,
        id: &str,
        cursor: u64,
        next_seq: u64,
    ) -> Result<(), RegistryError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE channels SET cursor = ?2, next_seq = ?3, last_message = ?4, error = NULL \
             WHERE id = ?1",
            params![id, i(cursor), i(next_seq), i(unix_now())],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Records a heartbeat.
    pub fn set_channel_heartbeat(
        &self,
        id: &str,
        time: u64,
        valid_until: u64,
    ) -> Result<(), RegistryError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE channels SET heartbeat_time = ?2, heartbeat_valid_until = ?3 WHERE id = ?1",
            params![id, i(time), i(valid_until)],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Records the channel's freshness.
    pub fn set_channel_health(&self, id: &str, health: ChannelHealth) -> Result<(), RegistryError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE channels SET freshness = ?2 WHERE id = ?1",
            params![id, health.as_str()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Records (or clears) the error that keeps a channel from being followed.
    pub fn set_channel_error(&self, id: &str, error: Option<&str>) -> Result<(), RegistryError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE channels SET error = ?2 WHERE id = ?1",
            params![id, error],
        )?;
        tx.commit()?;
        Ok(())
    }

    // ----- events -----

    /// Appends to the event log.
    pub fn log(&self, level: EventLevel, message: &str) -> Result<(), RegistryError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO events (time, level, message) VALUES (?1, ?2, ?3)",
            params![i(unix_now()), level.as_str(), message],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute("DELETE FROM events WHERE id <= ?1", [id - EVENTS_KEPT])?;
        tx.commit()?;
        Ok(())
    }

    /// The latest `limit` events, newest first.
    pub fn events(&self, limit: usize) -> Result<Vec<Event>, RegistryError> {
        self.events_after(0, limit)
    }

    /// Events with an id above `after`, newest first, at most `limit`.
    pub fn events_after(&self, after: i64, limit: usize) -> Result<Vec<Event>, RegistryError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, time, level, message FROM events WHERE id > ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(
            params![after, i64::try_from(limit).unwrap_or(i64::MAX)],
            |row| {
                let level: String = row.get(2)?;
                Ok(Event {
                    id: row.get(0)?,
                    time: u(row.get(1)?),
                    level: EventLevel::parse(&level).unwrap_or(EventLevel::Info),
                    message: row.get(3)?,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Events with an id above `after`, oldest first, at most `limit`: what a poller that
    /// remembers the last id it saw reads next, without gaps.
    pub fn events_since(&self, after: i64, limit: usize) -> Result<Vec<Event>, RegistryError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, time, level, message FROM events WHERE id > ?1 ORDER BY id ASC LIMIT ?2",
        )?;
        let rows = stmt.query_map(
            params![after, i64::try_from(limit).unwrap_or(i64::MAX)],
            |row| {
                let level: String = row.get(2)?;
                Ok(Event {
                    id: row.get(0)?,
                    time: u(row.get(1)?),
                    level: EventLevel::parse(&level).unwrap_or(EventLevel::Info),
                    message: row.get(3)?,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> (tempfile::TempDir, Registry) {
        let dir = tempfile::tempdir().expect("tempdir");
        let registry = Registry::open(&dir.path().join("r.sqlite")).expect("open");
        (dir, registry)
    }

    fn lamp(id: &str, hw: &str) -> NewDevice {
        NewDevice {
            id: id.into(),
            mac: "02:00:00:00:00:01".into(),
            model: "lamp".into(),
            hardware: hw.into(),
        }
    }

    #[test]
    fn writers_on_separate_connections_wait_for_each_other() {
        // As `gateway device add` processes racing each other and a running gateway: each writer
        // reads, then writes; with deferred transactions the second writer failed at once with
        // SQLITE_BUSY instead of waiting for the lock.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.sqlite");
        Registry::open(&path).expect("open");
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let registry = Registry::open(&path).expect("open");
                    for n in 0..40 {
                        registry
                            .add_device(&lamp(&format!("lamp-{w}-{n}"), "rev-a"))
                            .expect("add while others add");
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().expect("writer");
        }
        let registry = Registry::open(&path).expect("open");
        assert_eq!(registry.devices().expect("devices").len(), 160);
    }

    fn release(seq: u64, version: &str) -> NewRelease {
        NewRelease {
            channel: "c1".into(),
            seq,
            vendor: "acme".into(),
            vendor_key: "00".repeat(32),
            model: "lamp".into(),
            version: version.into(),
            security_version: 1,
            hardware: vec!["rev-b".into()],
            cid: "bafy".into(),
            sha256: "ab".repeat(32),
            size: 10,
            manifest: vec![1, 2, 3],
        }
    }

    #[test]
    fn devices_are_unique_and_filtered_by_hardware() {
        let (_dir, r) = registry();
        r.add_device(&lamp("a", "rev-b")).expect("add");
        r.add_device(&lamp("b", "rev-a")).expect("add");
        assert!(matches!(
            r.add_device(&lamp("a", "rev-b")),
            Err(RegistryError::DuplicateDevice(_))
        ));
        let compatible = r
            .compatible_devices("lamp", &["rev-b".into()])
            .expect("query");
        assert_eq!(compatible.len(), 1);
        assert_eq!(compatible[0].id, "a");
        assert!(r
            .compatible_devices("fan", &["rev-b".into()])
            .expect("q")
            .is_empty());
    }

    #[test]
    fn releases_are_recorded_once_and_revoked() {
        let (_dir, r) = registry();
        let (id, new) = r.add_release(&release(3, "1.1.0")).expect("add");
        assert!(new);
        assert_eq!(
            r.add_release(&release(3, "1.1.0")).expect("again"),
            (id, false)
        );
        let stored = r.release(id).expect("get").expect("exists");
        assert_eq!(stored.state, ReleaseState::Pending);
        assert_eq!(stored.hardware, vec!["rev-b".to_string()]);
        assert!(r
            .set_release_state(id, ReleaseState::Verified, None, Some(Path::new("/x")))
            .expect("set"));
        assert_eq!(r.verified_releases("lamp").expect("q").len(), 1);
        assert_eq!(
            r.revoke_release("c1", "lamp", "1.1.0", "bad").expect("rv"),
            vec![id]
        );
        // Revoked is final.
        assert!(!r
            .set_release_state(id, ReleaseState::Verified, None, None)
            .expect("set"));
        let stored = r.release(id).expect("get").expect("exists");
        assert_eq!(stored.state, ReleaseState::Revoked);
        assert_eq!(stored.reason.as_deref(), Some("bad"));
        assert_eq!(stored.path.as_deref(), Some(Path::new("/x")));
    }

    #[test]
    fn status_reports_drive_the_update_state() {
        let (_dir, r) = registry();
        r.add_device(&lamp("a", "rev-b")).expect("add");
        let (rel, _) = r.add_release(&release(1, "1.1.0")).expect("add");
        r.set_device_notice("a", Some(rel)).expect("notice");
        let update = r.device_update("a", rel).expect("q").expect("row");
        assert_eq!(update.state, UpdateStage::Notified);
        assert!(update.notified_at.is_some());

        let mut status = DeviceStatus::idle("1.0.0", 0);
        status.state = UpdateState::Downloading;
        status.release = Some("1.1.0".into());
        status.progress = Some(5);
        let outcome = r.record_status("a", &status).expect("status");
        assert_eq!(outcome.update, Some((rel, UpdateStage::Downloading)));
        assert_eq!(outcome.previous_version, None);

        let mut status = DeviceStatus::idle("1.1.0", 1);
        status.state = UpdateState::Confirmed;
        status.release = Some("1.1.0".into());
        let outcome = r.record_status("a", &status).expect("status");
        assert_eq!(outcome.previous_version.as_deref(), Some("1.0.0"));
        let device = r.device("a").expect("q").expect("row");
        assert_eq!(device.version.as_deref(), Some("1.1.0"));
        assert_eq!(device.security_version, 1);
        assert!(device.online);
        let update = r.device_update("a", rel).expect("q").expect("row");
        assert_eq!(update.state, UpdateStage::Confirmed);
        assert_eq!(update.progress, Some(5));
        assert!(matches!(
            r.record_status("ghost", &status),
            Err(RegistryError::UnknownDevice(_))
        ));
        r.set_device_online("a", false).expect("offline");
        assert!(!r.device("a").expect("q").expect("row").online);
    }

    #[test]
    fn channels_and_events() {
        let (_dir, r) = registry();
        let channel = NewChannel {
            id: "c1".into(),
            vendor: "acme".into(),
            vendor_key: "00".repeat(32),
        };
        r.add_channel(&channel).expect("add");
        r.set_channel_position("c1", 5, 4).expect("pos");
        r.add_channel(&channel).expect("again keeps the position");
        r.set_channel_heartbeat("c1", 10, 20).expect("hb");
        r.set_channel_health("c1", ChannelHealth::Stale)
            .expect("health");
        let c = r.channel("c1").expect("q").expect("row");
        assert_eq!((c.cursor, c.next_seq), (5, 4));
        assert_eq!(c.freshness, ChannelHealth::Stale);
        assert_eq!(c.heartbeat_valid_until, Some(20));
        r.log(EventLevel::Warning, "one").expect("log");
        r.log(EventLevel::Info, "two").expect("log");
        let events = r.events(10).expect("events");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].message, "two");
        assert_eq!(r.events_after(events[1].id, 10).expect("after").len(), 1);
    }
}

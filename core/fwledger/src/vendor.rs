//! The vendor: keys, releases, the channel it writes and the gateways it admits.
//!
//! Layout under `HOME/vendor/`: `vendor.json` (public state), `secrets/` (mode 0700; root,
//! release and channel author keys, epoch keys — mode 0600), `manifests/` (every signed manifest
//! published). The root key stays on the vendor machine in this version; keep that machine
//! offline-grade (see README, "Keys").

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use fwledger_ledger::{Ledger, LedgerError};
use fwledger_proto::channel::{
    message, ChainPosition, ChannelAuthor, ChannelId, EpochKeys, Follower, Heartbeat, Kind,
    ReaderKey, ReleaseBody, Revocation, Token,
};
use fwledger_proto::keys::{KeyCertificate, Role};
use fwledger_proto::manifest::{Manifest, TrustAnchor};
use fwledger_proto::Version;
use fwledger_store::{ContentStore, Profile, StoreError};
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::fsutil::{unix_now, write_atomic};
use crate::report::ChannelEntry;
use crate::subscribe::{ChannelItem, Subscription};
use crate::Backends;

const CONFIG_FORMAT: u32 = 1;
/// How long certificates issued by `init` and key rotation are valid.
const CERTIFICATE_VALIDITY: u64 = 10 * 365 * 24 * 3600;
/// Appends retried after losing a race with another vendor process.
const APPEND_ATTEMPTS: usize = 8;

/// Why a vendor operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VendorError {
    /// No vendor was initialised in this home.
    #[error("no vendor in {0}: run `fwledger vendor init --name NAME` first")]
    NotInitialized(PathBuf),
    /// A vendor exists already.
    #[error("a vendor already exists in {0}")]
    AlreadyInitialized(PathBuf),
    /// The release description is invalid.
    #[error("invalid release: {0}")]
    InvalidRelease(String),
    /// This model and version were published before.
    #[error("{model} {version} is already published (seq {seq})")]
    AlreadyPublished {
        /// Model.
        model: String,
        /// Version.
        version: String,
        /// Where.
        seq: u64,
    },
    /// No such release on the channel.
    #[error("no release {0} on the channel")]
    UnknownRelease(String),
    /// No such gateway (reader).
    #[error("unknown gateway {0:?}")]
    UnknownReader(String),
    /// Vendor files are damaged.
    #[error("vendor state is damaged: {0}")]
    Corrupt(String),
    /// The channel on the ledger holds a message the vendor did not write at its tail.
    #[error("the channel tail at position {0} is not a message of this vendor")]
    ForeignTail(u64),
    /// The ledger failed.
    #[error("ledger: {0}")]
    Ledger(#[from] LedgerError),
    /// The content store failed.
    #[error("content store: {0}")]
    Store(#[from] StoreError),
    /// Reading the added content back failed.
    #[error("reading the image back from the store: {0}")]
    Fetch(#[from] crate::FetchError),
    /// Following the own channel failed.
    #[error(transparent)]
    Subscribe(#[from] crate::SubscribeError),
    /// Filesystem error.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct VendorConfig {
    format: u32,
    name: String,
    root_public: String,
    release_public: String,
    release_generation: u64,
    author_public: String,
    epoch: u64,
    readers: Vec<ReaderEntry>,
    created: u64,
}

/// A gateway admitted to read the channel.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReaderEntry {
    /// Its name.
    pub name: String,
    /// Its X25519 public key, hex.
    pub public: String,
    /// When admitted.
    pub added: u64,
    /// When revoked, if it was.
    pub revoked: Option<u64>,
}

/// What to publish.
#[derive(Debug, Clone)]
pub struct ReleaseSpec {
    /// Device model.
    pub model: String,
    /// Compatible hardware revisions.
    pub hardware: Vec<String>,
    /// Semantic version.
    pub version: String,
    /// Anti-rollback counter.
    pub security_version: u64,
    /// Validity from now, if the release should expire.
    pub expires_in: Option<Duration>,
    /// Minimum installed version required.
    pub prerequisite: Option<String>,
    /// Release notes.
    pub notes: Option<String>,
    /// UnixFS profile for the CID.
    pub profile: Profile,
}

impl ReleaseSpec {
    /// A release of `version` for `model` on `hardware`, with defaults for the rest.
    pub fn new(model: &str, hardware: &[&str], version: &str) -> Self {
        ReleaseSpec {
            model: model.to_string(),
            hardware: hardware.iter().map(|h| h.to_string()).collect(),
            version: version.to_string(),
            security_version: 0,
            expires_in: None,
            prerequisite: None,
            notes: None,
            profile: Profile::default(),
        }
    }
}

/// A published release.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Release {
    /// Channel sequence number of the release message.
    pub seq: u64,
    /// Model.
    pub model: String,
    /// Semantic version.
    pub version: String,
    /// Anti-rollback counter.
    pub security_version: u64,
    /// IPFS CID.
    pub cid: String,
    /// SHA-256 of the image, hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// The signed manifest on disk.
    pub manifest_path: PathBuf,
}

/// A release signed and stored but not yet announced on the channel.
#[derive(Debug, Clone)]
pub struct PreparedRelease {
    /// The manifest.
    pub manifest: Manifest,
    /// The signed manifest (COSE_Sign1).
    pub signed: Vec<u8>,
    /// Where the signed manifest was written.
    pub manifest_path: PathBuf,
}

/// A vendor opened from its home directory.
pub struct Vendor {
    dir: PathBuf,
    config: VendorConfig,
    root: SigningKey,
    release: SigningKey,
    release_certificate: Vec<u8>,
    author_certificate: Vec<u8>,
    author: ChannelAuthor,
    author_signing: SigningKey,
    ledger: Arc<dyn Ledger>,
    store: Arc<dyn ContentStore>,
}

impl std::fmt::Debug for Vendor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vendor")
            .field("name", &self.config.name)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn vendor_dir(home: &Path) -> PathBuf {
    home.join("vendor")
}

fn random_key() -> SigningKey {
    let mut secret = [0u8; 32];
    OsRng.fill_bytes(&mut secret);
    SigningKey::from_bytes(&secret)
}

fn certificate(
    root: &SigningKey,
    key: &SigningKey,
    role: Role,
    generation: u64,
    name: &str,
) -> Vec<u8> {
    let now = unix_now();
    KeyCertificate {
        role,
        public_key: key.verifying_key().to_bytes(),
        generation,
        // Allow for devices whose clocks run a little behind.
        not_before: now.saturating_sub(24 * 3600),
        not_after: now.saturating_add(CERTIFICATE_VALIDITY),
        vendor: name.to_string(),
    }
    .issue(root)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_. ".contains(c))
}

impl Vendor {
    /// Creates a vendor: root, release and channel author keys, and the first epoch key.
    pub fn init(home: &Path, name: &str, backends: &Backends) -> Result<Vendor, VendorError> {
        let dir = vendor_dir(home);
        if dir.join("vendor.json").exists() {
            return Err(VendorError::AlreadyInitialized(dir));
        }
        if !valid_name(name) {
            return Err(VendorError::InvalidRelease(format!(
                "vendor name {name:?} must be 1-64 letters, digits, '-', '_', '.' or spaces"
            )));
        }
        let secrets = dir.join("secrets");
        std::fs::create_dir_all(&secrets)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o700))?;
        }
        let (root, release, author) = (random_key(), random_key(), random_key());
        let mut epoch_key = [0u8; 32];
        OsRng.fill_bytes(&mut epoch_key);
        let mut keys = EpochKeys::new();
        keys.insert(0, epoch_key);
        write_atomic(
            &secrets.join("root.key"),
            hex::encode(root.to_bytes()).as_bytes(),
            true,
        )?;
        write_atomic(
            &secrets.join("release.key"),
            hex::encode(release.to_bytes()).as_bytes(),
            true,
        )?;
        write_atomic(
            &secrets.join("author.key"),
            hex::encode(author.to_bytes()).as_bytes(),
            true,
        )?;
        write_atomic(&secrets.join("epochs.cbor"), &keys.to_cbor(), true)?;
        write_atomic(
            &dir.join("release.cert"),
            &certificate(&root, &release, Role::Release, 1, name),
            false,
        )?;
        write_atomic(
            &dir.join("author.cert"),
            &certificate(&root, &author, Role::ChannelAuthor, 1, name),
            false,
        )?;
        let config = VendorConfig {
            format: CONFIG_FORMAT,
            name: name.to_string(),
            root_public: hex::encode(root.verifying_key().as_bytes()),
            release_public: hex::encode(release.verifying_key().as_bytes()),
            release_generation: 1,
            author_public: hex::encode(author.verifying_key().as_bytes()),
            epoch: 0,
            readers: Vec::new(),
            created: unix_now(),
        };
        save_config(&dir, &config)?;
        Vendor::open(home, backends)
    }

    /// Opens the vendor in `home`.
    pub fn open(home: &Path, backends: &Backends) -> Result<Vendor, VendorError> {
        let dir = vendor_dir(home);
        let config_path = dir.join("vendor.json");
        if !config_path.exists() {
            return Err(VendorError::NotInitialized(home.to_path_buf()));
        }
        let config: VendorConfig = serde_json::from_slice(&std::fs::read(&config_path)?)
            .map_err(|e| VendorError::Corrupt(format!("vendor.json: {e}")))?;
        if config.format != CONFIG_FORMAT {
            return Err(VendorError::Corrupt(format!(
                "unknown vendor.json format {}",
                config.format
            )));
        }
        let secrets = dir.join("secrets");
        let root = read_key(&secrets.join("root.key"))?;
        let release = read_key(&secrets.join("release.key"))?;
        let author_key = read_key(&secrets.join("author.key"))?;
        let keys = EpochKeys::from_cbor(&std::fs::read(secrets.join("epochs.cbor"))?)
            .map_err(|e| VendorError::Corrupt(format!("epochs.cbor: {e}")))?;
        if hex::encode(root.verifying_key().as_bytes()) != config.root_public {
            return Err(VendorError::Corrupt(
                "root.key does not match vendor.json".into(),
            ));
        }
        Ok(Vendor {
            release_certificate: std::fs::read(dir.join("release.cert"))?,
            author_certificate: std::fs::read(dir.join("author.cert"))?,
            author: ChannelAuthor::new(author_key.clone(), config.epoch, keys),
            author_signing: author_key,
            dir,
            config,
            root,
            release,
            ledger: backends.ledger.clone(),
            store: backends.store.clone(),
        })
    }

    /// The vendor's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The vendor root public key (what devices trust).
    pub fn public_key(&self) -> [u8; 32] {
        self.root.verifying_key().to_bytes()
    }

    /// The channel id.
    pub fn channel(&self) -> &ChannelId {
        self.author.channel()
    }

    /// Gateways admitted so far (including revoked ones).
    pub fn readers(&self) -> &[ReaderEntry] {
        &self.config.readers
    }

    /// The current release-key generation.
    pub fn release_key_generation(&self) -> u64 {
        self.config.release_generation
    }

    /// Issues a subscription token. With `reader`, the gateway gets a reader key of its own under
    /// that name, so it keeps access across key rotations until it is revoked; without, the token
    /// carries only the epoch keys known today (simple mode, as the paper's side key).
    pub fn token(&mut self, reader: Option<&str>) -> Result<String, VendorError> {
        let reader_secret = match reader {
            Some(name) => {
                if !valid_name(name) {
                    return Err(VendorError::InvalidRelease(format!(
                        "gateway name {name:?} is not valid"
                    )));
                }
                if self
                    .config
                    .readers
                    .iter()
                    .any(|r| r.name == name && r.revoked.is_none())
                {
                    return Err(VendorError::InvalidRelease(format!(
                        "gateway {name:?} already has a token"
                    )));
                }
                let key = ReaderKey::generate(&mut OsRng);
                let mut config = self.config.clone();
                config.readers.push(ReaderEntry {
                    name: name.to_string(),
                    public: hex::encode(key.public()),
                    added: unix_now(),
                    revoked: None,
                });
                save_config(&self.dir, &config)?;
                self.config = config;
                Some(key.to_bytes())
            }
            None => None,
        };
        Ok(Token {
            vendor: self.config.name.clone(),
            vendor_key: self.public_key(),
            author_certificate: self.author_certificate.clone(),
            keys: self.author.keys().clone(),
            reader: reader_secret,
            ledger_hint: None,
        }
        .to_text())
    }

    /// A name for the next automatically named gateway.
    pub fn next_reader_name(&self) -> String {
        format!("gateway-{}", self.config.readers.len() + 1)
    }

    /// Where the next message goes, checked against the ledger's tail.
    async fn tail(&self) -> Result<ChainPosition, VendorError> {
        let next = self.ledger.next_seq(self.channel()).await?;
        if next == 0 {
            return Ok(ChainPosition::GENESIS);
        }
        let last = self.ledger.read(self.channel(), next - 1, 1).await?;
        let message = last.first().ok_or(VendorError::ForeignTail(next - 1))?;
        let envelope =
            message::decode(&message.bytes).map_err(|_| VendorError::ForeignTail(next - 1))?;
        let author = self.author_key();
        if !envelope.verify(&author) || envelope.header.seq != message.seq {
            return Err(VendorError::ForeignTail(next - 1));
        }
        Ok(ChainPosition::after(&envelope))
    }

    fn author_key(&self) -> ed25519_dalek::VerifyingKey {
        self.author_signing.verifying_key()
    }

    /// Appends a message built for a chain position, retrying when another process wins a race.
    async fn append_with<F>(&mut self, mut build: F) -> Result<u64, VendorError>
    where
        F: FnMut(&mut ChannelAuthor, ChainPosition) -> Result<Vec<u8>, VendorError>,
    {
        let mut last_error = None;
        for _ in 0..APPEND_ATTEMPTS {
            let position = self.tail().await?;
            let bytes = build(&mut self.author, position)?;
            match self
                .ledger
                .append(self.author.channel(), position.seq, &bytes)
                .await
            {
                Ok(()) => return Ok(position.seq),
                Err(e @ LedgerError::Conflict { .. }) => last_error = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        Err(last_error
            .map(VendorError::Ledger)
            .unwrap_or_else(|| VendorError::Corrupt("append failed".into())))
    }

    async fn append(&mut self, kind: Kind, payload: Vec<u8>) -> Result<u64, VendorError> {
        self.append_with(|author, position| {
            author
                .seal(position, kind, &payload, &mut OsRng)
                .map_err(|e| VendorError::Corrupt(format!("cannot seal: {e:?}")))
        })
        .await
    }

    /// Reads and verifies the whole channel as its author.
    pub async fn history(&self) -> Result<Vec<ChannelEntry>, VendorError> {
        let follower = Follower::new(
            self.author_key(),
            TrustAnchor::new(self.root.verifying_key()),
            None,
            self.author.keys().clone(),
        );
        let mut subscription = Subscription::with_follower(follower, self.ledger.clone());
        Ok(subscription
            .drain()
            .await?
            .iter()
            .map(|item| match item {
                ChannelItem::Message(d) => ChannelEntry::from_delivery(d),
                ChannelItem::Rejected { position, error } => {
                    ChannelEntry::rejected(*position, error)
                }
            })
            .collect())
    }

    /// Publishes a release: [`Vendor::prepare`] then [`Vendor::announce`].
    pub async fn publish(
        &mut self,
        image: &Path,
        spec: &ReleaseSpec,
        progress: Option<&(dyn Fn(u64) + Send + Sync)>,
    ) -> Result<Release, VendorError> {
        let prepared = self.prepare(image, spec, progress).await?;
        self.announce(prepared).await
    }

    /// Readies a release without announcing it: checks the description and that the version is
    /// new, adds the image to the content store, signs the manifest over the bytes the CID names
    /// and writes it to `manifests/`.
    pub async fn prepare(
        &mut self,
        image: &Path,
        spec: &ReleaseSpec,
        progress: Option<&(dyn Fn(u64) + Send + Sync)>,
    ) -> Result<PreparedRelease, VendorError> {
        let invalid = |m: String| Err(VendorError::InvalidRelease(m));
        let version: Version = match spec.version.parse() {
            Ok(v) => v,
            Err(_) => {
                return invalid(format!(
                    "version {:?} is not a semantic version",
                    spec.version
                ))
            }
        };
        let prerequisite = match &spec.prerequisite {
            Some(p) => match p.parse::<Version>() {
                Ok(v) => Some(v),
                Err(_) => return invalid(format!("prerequisite {p:?} is not a semantic version")),
            },
            None => None,
        };
        if !valid_name(&spec.model) {
            return invalid(format!("model {:?} is not a valid name", spec.model));
        }
        if spec.hardware.is_empty() || spec.hardware.iter().any(|h| !valid_name(h)) {
            return invalid("at least one valid hardware revision is required".into());
        }
        if !image.is_file() {
            return invalid(format!("{} is not a readable file", image.display()));
        }
        for entry in self.history().await? {
            if let ChannelEntry::Release {
                seq,
                model,
                version: v,
                ..
            } = entry
            {
                if model == spec.model && v.parse::<Version>().is_ok_and(|v| v == version) {
                    return Err(VendorError::AlreadyPublished {
                        model,
                        version: v,
                        seq,
                    });
                }
            }
        }
        let added = self.store.add_file(image, spec.profile, progress).await?;
        // Hash the bytes the CID names, not the file again: what is signed is what is stored.
        let (size, sha256) =
            crate::fetch::digest_content(self.store.as_ref(), &added.cid, added.size).await?;
        let now = unix_now();
        let manifest = Manifest {
            vendor: self.config.name.clone(),
            vendor_key: self.public_key(),
            model: spec.model.clone(),
            hardware: spec.hardware.clone(),
            version,
            security_version: spec.security_version,
            size,
            sha256,
            cid: added.cid.clone(),
            issued: now,
            expires: spec.expires_in.map(|d| now.saturating_add(d.as_secs())),
            prerequisite,
            notes: spec.notes.clone(),
        };
        let signed = manifest.sign(&self.release, &self.release_certificate);
        let manifest_path = self
            .dir
            .join("manifests")
            .join(format!("{}-{}.cose", spec.model, spec.version));
        write_atomic(&manifest_path, &signed, false)?;
        self.store.pin(&added.cid).await?;
        Ok(PreparedRelease {
            manifest,
            signed,
            manifest_path,
        })
    }

    /// The channel message that would announce `prepared`, and the position it would take,
    /// without appending it (dry runs price it on the ledger).
    pub async fn preview_announce(
        &self,
        prepared: &PreparedRelease,
    ) -> Result<(u64, Vec<u8>), VendorError> {
        let position = self.tail().await?;
        let payload = ReleaseBody {
            manifest: prepared.signed.clone(),
        }
        .to_cbor();
        let bytes = self
            .author
            .seal(position, Kind::Release, &payload, &mut OsRng)
            .map_err(|e| VendorError::Corrupt(format!("cannot seal: {e:?}")))?;
        Ok((position.seq, bytes))
    }

    /// Announces a prepared release on the channel.
    pub async fn announce(&mut self, prepared: PreparedRelease) -> Result<Release, VendorError> {
        let PreparedRelease {
            manifest,
            signed,
            manifest_path,
        } = prepared;
        let seq = self
            .append(Kind::Release, ReleaseBody { manifest: signed }.to_cbor())
            .await?;
        Ok(Release {
            seq,
            model: manifest.model,
            version: manifest.version.to_string(),
            security_version: manifest.security_version,
            cid: manifest.cid,
            sha256: hex::encode(manifest.sha256),
            size: manifest.size,
            manifest_path,
        })
    }

    /// Withdraws a published release. With `model` `None`, the version must name one model only.
    pub async fn revoke(
        &mut self,
        model: Option<&str>,
        version: &str,
        reason: &str,
    ) -> Result<u64, VendorError> {
        let mut matches = Vec::new();
        for entry in self.history().await? {
            if let ChannelEntry::Release {
                model: m,
                version: v,
                ..
            } = entry
            {
                if v == version && model.is_none_or(|model| model == m) {
                    matches.push(m);
                }
            }
        }
        matches.dedup();
        let model = match matches.as_slice() {
            [one] => one.clone(),
            [] => return Err(VendorError::UnknownRelease(version.to_string())),
            _ => {
                return Err(VendorError::InvalidRelease(format!(
                    "version {version} exists for several models ({}); name one with --model",
                    matches.join(", ")
                )))
            }
        };
        let body = Revocation {
            model,
            version: version.to_string(),
            reason: reason.to_string(),
        };
        self.append(Kind::Revoke, body.to_cbor()).await
    }

    /// Appends a heartbeat valid for `validity`.
    pub async fn heartbeat(&mut self, validity: Duration) -> Result<u64, VendorError> {
        let time = unix_now();
        let body = Heartbeat {
            time,
            valid_until: time.saturating_add(validity.as_secs()),
        };
        self.append(Kind::Heartbeat, body.to_cbor()).await
    }

    /// Starts a new epoch: optionally revokes a gateway first, then wraps the new key to every
    /// remaining gateway in a keyload. Simple-mode tokens lose access from this epoch on.
    pub async fn rotate(&mut self, revoke: Option<&str>) -> Result<u64, VendorError> {
        let mut config = self.config.clone();
        if let Some(name) = revoke {
            let entry = config
                .readers
                .iter_mut()
                .find(|r| r.name == name && r.revoked.is_none())
                .ok_or_else(|| VendorError::UnknownReader(name.to_string()))?;
            entry.revoked = Some(unix_now());
        }
        let readers: Vec<[u8; 32]> = config
            .readers
            .iter()
            .filter(|r| r.revoked.is_none())
            .filter_map(|r| hex::decode(&r.public).ok()?.try_into().ok())
            .collect();
        let before = self.author.keys().clone();
        let seq = self
            .append_with(|author, position| Ok(author.rotate(position, &readers, &mut OsRng)))
            .await;
        let seq = match seq {
            Ok(seq) => seq,
            Err(e) => {
                // Nothing was appended: keep writing in the old epoch.
                self.author =
                    ChannelAuthor::new(self.author_signing.clone(), self.config.epoch, before);
                return Err(e);
            }
        };
        config.epoch = self.author.epoch();
        let secrets = self.dir.join("secrets");
        write_atomic(
            &secrets.join("epochs.cbor"),
            &self.author.keys().to_cbor(),
            true,
        )?;
        save_config(&self.dir, &config)?;
        self.config = config;
        Ok(seq)
    }

    /// Certifies a fresh release-signing key with the next generation (after a compromise or on
    /// schedule). Devices that accept a release signed by it refuse older generations from then on.
    pub fn rotate_release_key(&mut self) -> Result<u64, VendorError> {
        let generation = self.config.release_generation + 1;
        let release = random_key();
        let cert = certificate(
            &self.root,
            &release,
            Role::Release,
            generation,
            &self.config.name,
        );
        let mut config = self.config.clone();
        config.release_generation = generation;
        config.release_public = hex::encode(release.verifying_key().as_bytes());
        write_atomic(
            &self.dir.join("secrets").join("release.key"),
            hex::encode(release.to_bytes()).as_bytes(),
            true,
        )?;
        write_atomic(&self.dir.join("release.cert"), &cert, false)?;
        save_config(&self.dir, &config)?;
        self.config = config;
        self.release = release;
        self.release_certificate = cert;
        Ok(generation)
    }
}

fn save_config(dir: &Path, config: &VendorConfig) -> Result<(), VendorError> {
    let json =
        serde_json::to_vec_pretty(config).map_err(|e| VendorError::Corrupt(e.to_string()))?;
    write_atomic(&dir.join("vendor.json"), &json, false)?;
    Ok(())
}

fn read_key(path: &Path) -> Result<SigningKey, VendorError> {
    let text = std::fs::read_to_string(path)?;
    let bytes: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            VendorError::Corrupt(format!("{} is not a 32-byte hex key", path.display()))
        })?;
    Ok(SigningKey::from_bytes(&bytes))
}

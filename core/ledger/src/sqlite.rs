//! The embedded ledger: one SQLite file, shared by every process on the machine that opens it.
//!
//! Concurrency: SQLite in WAL mode lets readers run beside one writer; appends take the write
//! lock up front (`BEGIN IMMEDIATE`) and check the channel's end inside it, so racing writers in
//! any number of processes get [`LedgerError::Conflict`] instead of a fork. Blocking SQLite calls
//! run on tokio's blocking pool, never on the async workers.
//!
//! Wake-ups: appends through this handle wake [`wait`](Ledger::wait)ers at once (a tokio
//! `Notify`); appends by other connections — other processes included — are seen by a
//! background thread that polls `PRAGMA data_version` every couple of milliseconds, and only
//! while somebody waits.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, ErrorCode, OpenFlags, TransactionBehavior};
use tokio::sync::Notify;

use crate::{ChannelId, Ledger, LedgerError, StoredMessage, MAX_MESSAGE_SIZE};

/// Version of the schema below, kept in table `schema_version`.
const SCHEMA_VERSION: i64 = 1;

/// How long a statement waits for another connection's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the watcher thread looks for commits by other connections while someone waits.
const POLL_INTERVAL: Duration = Duration::from_millis(2);

// The CHECK on `body` below spells the limit out; keep them equal.
const _: () = assert!(MAX_MESSAGE_SIZE == 1_048_576);

/// Tables and the triggers that make `messages` append-only and dense in the database itself,
/// so that a stray tool or a buggy writer cannot rewrite history either.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    channel     BLOB    NOT NULL CHECK (typeof(channel) = 'blob' AND length(channel) = 32),
    seq         INTEGER NOT NULL CHECK (typeof(seq) = 'integer' AND seq >= 0),
    body        BLOB    NOT NULL CHECK (typeof(body) = 'blob' AND length(body) <= 1048576),
    appended_at INTEGER NOT NULL,
    PRIMARY KEY (channel, seq)
);
CREATE TRIGGER IF NOT EXISTS messages_no_update BEFORE UPDATE ON messages
BEGIN
    SELECT RAISE(ABORT, 'fwledger ledger is append-only: UPDATE refused');
END;
CREATE TRIGGER IF NOT EXISTS messages_no_delete BEFORE DELETE ON messages
BEGIN
    SELECT RAISE(ABORT, 'fwledger ledger is append-only: DELETE refused');
END;
CREATE TRIGGER IF NOT EXISTS messages_dense BEFORE INSERT ON messages
WHEN NEW.seq IS NOT (SELECT COALESCE(MAX(seq) + 1, 0) FROM messages WHERE channel = NEW.channel)
BEGIN
    SELECT RAISE(ABORT, 'fwledger ledger channels are dense: INSERT must use the next free seq');
END;
";

/// The embedded ledger: an SQLite database file (WAL mode) that several processes may open at
/// once.
///
/// Appends take SQLite's write lock up front (`BEGIN IMMEDIATE`) and check the channel's end
/// inside it, so racing writers in any number of processes get [`LedgerError::Conflict`], never
/// a fork; UPDATE, DELETE and out-of-place INSERTs are refused by triggers in the database too.
/// [`wait`](Ledger::wait) sees appends through this handle at once and appends by other
/// connections or processes within a few milliseconds (a background thread polls
/// `PRAGMA data_version` every 2 ms, only while someone waits).
///
/// Needs a tokio runtime with the time driver for its async methods; [`SqliteLedger::open`]
/// itself is synchronous.
pub struct SqliteLedger {
    path: PathBuf,
    db: Arc<Db>,
    watch: Arc<Watch>,
    watcher: Option<JoinHandle<()>>,
}

/// Two connections so that reads never queue behind an append that waits for another
/// process's write lock.
struct Db {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

/// Who is waiting, and how to wake them.
struct Watch {
    /// Woken after every commit this handle makes or the watcher thread sees.
    notify: Notify,
    state: Mutex<WatchState>,
    /// Wakes the watcher thread when the first waiter arrives or on shutdown.
    wake: Condvar,
}

struct WatchState {
    waiters: usize,
    shutdown: bool,
}

impl SqliteLedger {
    /// Opens (creating if needed, with its parent directories) the ledger file at `path`.
    ///
    /// Fails with [`LedgerError::Corrupt`] when the file is not an SQLite database,
    /// [`LedgerError::Unsupported`] when it was written by a newer schema version, and
    /// [`LedgerError::Unavailable`] when it cannot be opened or stays locked beyond the busy
    /// timeout.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)?;
            }
        }
        let in_context = |e: LedgerError| with_path(e, path);

        let mut writer = connect(path).map_err(in_context)?;
        init_schema(&mut writer).map_err(in_context)?;
        let reader = connect(path).map_err(in_context)?;
        reader
            .pragma_update(None, "query_only", true)
            .map_err(db_err)
            .map_err(in_context)?;
        let watcher_conn = connect(path).map_err(in_context)?;
        watcher_conn
            .pragma_update(None, "query_only", true)
            .map_err(db_err)
            .map_err(in_context)?;

        let watch = Arc::new(Watch {
            notify: Notify::new(),
            state: Mutex::new(WatchState {
                waiters: 0,
                shutdown: false,
            }),
            wake: Condvar::new(),
        });
        let watcher = {
            let watch = Arc::clone(&watch);
            std::thread::Builder::new()
                .name("fwledger-ledger-watch".into())
                .spawn(move || watch_data_version(&watcher_conn, &watch))?
        };
        Ok(Self {
            path: path.to_path_buf(),
            db: Arc::new(Db {
                writer: Mutex::new(writer),
                reader: Mutex::new(reader),
            }),
            watch,
            watcher: Some(watcher),
        })
    }

    /// The database file this ledger was opened on.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `op` on tokio's blocking pool with the connections.
    async fn blocking<T, F>(&self, op: F) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T, LedgerError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || op(&db))
            .await
            .map_err(|e| LedgerError::Unavailable(format!("ledger worker failed: {e}")))?
    }
}

impl std::fmt::Debug for SqliteLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteLedger")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Drop for SqliteLedger {
    fn drop(&mut self) {
        lock(&self.watch.state).shutdown = true;
        self.watch.wake.notify_all();
        if let Some(watcher) = self.watcher.take() {
            // The thread only ever exits; a panic in it has nothing left to report.
            let _ = watcher.join();
        }
    }
}

#[async_trait::async_trait]
impl Ledger for SqliteLedger {
    async fn append(
        &self,
        channel: &ChannelId,
        seq: u64,
        message: &[u8],
    ) -> Result<(), LedgerError> {
        if message.len() > MAX_MESSAGE_SIZE {
            return Err(LedgerError::TooLarge {
                size: message.len(),
                limit: MAX_MESSAGE_SIZE,
            });
        }
        let channel = *channel;
        let message = message.to_vec();
        self.blocking(move |db| append_blocking(&mut lock(&db.writer), &channel, seq, &message))
            .await?;
        self.watch.notify.notify_waiters();
        Ok(())
    }

    async fn read(
        &self,
        channel: &ChannelId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, LedgerError> {
        let channel = *channel;
        self.blocking(move |db| read_blocking(&lock(&db.reader), &channel, from, limit))
            .await
    }

    async fn next_seq(&self, channel: &ChannelId) -> Result<u64, LedgerError> {
        let channel = *channel;
        self.blocking(move |db| next_seq_blocking(&lock(&db.reader), &channel))
            .await
    }

    async fn wait(
        &self,
        channel: &ChannelId,
        from: u64,
        timeout: Duration,
    ) -> Result<bool, LedgerError> {
        let deadline = tokio::time::Instant::now().checked_add(timeout);
        let _waiting = self.watch.register();
        loop {
            // Listen before looking, so that a commit between the look and the sleep still
            // wakes us.
            let notified = self.watch.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.next_seq(channel).await? > from {
                return Ok(true);
            }
            match deadline {
                Some(deadline) => {
                    if tokio::time::timeout_at(deadline, notified).await.is_err() {
                        return Ok(self.next_seq(channel).await? > from);
                    }
                }
                None => notified.await,
            }
        }
    }

    async fn channels(&self) -> Result<Vec<(ChannelId, u64)>, LedgerError> {
        self.blocking(|db| channels_blocking(&lock(&db.reader)))
            .await
    }
}

impl Watch {
    /// Counts the caller as a waiter until the guard drops; the first waiter starts the
    /// watcher thread's polling.
    fn register(&self) -> Waiting<'_> {
        let mut state = lock(&self.state);
        state.waiters += 1;
        if state.waiters == 1 {
            self.wake.notify_all();
        }
        Waiting(self)
    }
}

/// A registered waiter; see [`Watch::register`].
struct Waiting<'a>(&'a Watch);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut state = lock(&self.0.state);
        state.waiters = state.waiters.saturating_sub(1);
    }
}

/// The watcher thread: while anyone waits, polls `PRAGMA data_version` (which changes when
/// another connection, in any process, commits) and wakes the waiters on change.
fn watch_data_version(conn: &Connection, watch: &Watch) {
    let mut last = data_version(conn);
    let mut state = lock(&watch.state);
    loop {
        while state.waiters == 0 && !state.shutdown {
            state = watch
                .wake
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if state.shutdown {
            return;
        }
        drop(state);

        let now = data_version(conn);
        // An error wakes the waiters too: their own query will surface it.
        if now.is_none() || now != last {
            watch.notify.notify_waiters();
        }
        last = now;

        state = lock(&watch.state);
        if state.shutdown {
            return;
        }
        state = match watch.wake.wait_timeout(state, POLL_INTERVAL) {
            Ok((state, _)) => state,
            Err(poisoned) => poisoned.into_inner().0,
        };
    }
}

fn data_version(conn: &Connection) -> Option<i64> {
    conn.prepare_cached("PRAGMA data_version")
        .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
        .ok()
}

fn connect(path: &Path) -> Result<Connection, LedgerError> {
    // No SQLITE_OPEN_URI: a path is a path, even one that starts with "file:".
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(db_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
    Ok(conn)
}

fn init_schema(conn: &mut Connection) -> Result<(), LedgerError> {
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(db_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(LedgerError::Unavailable(format!(
            "cannot switch the database to WAL mode (journal_mode is {mode:?})"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(db_err)?;

    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err)?;
    tx.execute_batch(SCHEMA).map_err(db_err)?;
    let version: Option<i64> = tx
        .query_row("SELECT MAX(version) FROM schema_version", [], |row| {
            row.get(0)
        })
        .map_err(db_err)?;
    match version {
        None => {
            tx.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                [SCHEMA_VERSION],
            )
            .map_err(db_err)?;
        }
        Some(SCHEMA_VERSION) => {}
        Some(v) if v > SCHEMA_VERSION => {
            return Err(LedgerError::Unsupported(format!(
                "ledger schema version {v} is newer than this build understands \
                 ({SCHEMA_VERSION}); upgrade fwledger"
            )));
        }
        Some(v) => {
            return Err(LedgerError::Corrupt(format!(
                "unknown ledger schema version {v}"
            )));
        }
    }
    tx.commit().map_err(db_err)
}

fn append_blocking(
    conn: &mut Connection,
    channel: &ChannelId,
    seq: u64,
    message: &[u8],
) -> Result<(), LedgerError> {
    // Take the write lock before reading the channel's end: nobody can append in between.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err)?;
    let expected = next_seq_blocking(&tx, channel)?;
    if seq != expected {
        return Err(LedgerError::Conflict { expected, got: seq });
    }
    let seq = i64::try_from(seq)
        .map_err(|_| LedgerError::Corrupt(format!("channel position {seq} out of range")))?;
    tx.execute(
        "INSERT INTO messages (channel, seq, body, appended_at) VALUES (?1, ?2, ?3, ?4)",
        params![&channel[..], seq, message, unix_millis()],
    )
    .map_err(db_err)?;
    tx.commit().map_err(db_err)
}

fn next_seq_blocking(conn: &Connection, channel: &ChannelId) -> Result<u64, LedgerError> {
    let last: Option<i64> = conn
        .prepare_cached("SELECT MAX(seq) FROM messages WHERE channel = ?1")
        .and_then(|mut stmt| stmt.query_row([&channel[..]], |row| row.get(0)))
        .map_err(db_err)?;
    match last {
        None => Ok(0),
        Some(last) => u64::try_from(last)
            .ok()
            .and_then(|last| last.checked_add(1))
            .ok_or_else(|| LedgerError::Corrupt(format!("invalid channel position {last}"))),
    }
}

fn read_blocking(
    conn: &Connection,
    channel: &ChannelId,
    from: u64,
    limit: usize,
) -> Result<Vec<StoredMessage>, LedgerError> {
    // Positions above i64::MAX cannot exist in SQLite.
    let Ok(from_i) = i64::try_from(from) else {
        return Ok(Vec::new());
    };
    if limit == 0 {
        return Ok(Vec::new());
    }
    let limit_i = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, body FROM messages WHERE channel = ?1 AND seq >= ?2 \
             ORDER BY seq LIMIT ?3",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params![&channel[..], from_i, limit_i], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
        })
        .map_err(db_err)?;
    let mut messages = Vec::new();
    let mut want = from;
    for row in rows {
        let (seq, bytes) = row.map_err(db_err)?;
        // The triggers keep channels dense; a hole means someone went around them.
        if u64::try_from(seq).ok() != Some(want) {
            return Err(LedgerError::Corrupt(format!(
                "channel has a hole: expected position {want}, found {seq}"
            )));
        }
        if bytes.len() > MAX_MESSAGE_SIZE {
            return Err(LedgerError::Corrupt(format!(
                "message at position {seq} is {} bytes, above the {MAX_MESSAGE_SIZE}-byte limit",
                bytes.len()
            )));
        }
        messages.push(StoredMessage { seq: want, bytes });
        want = want.saturating_add(1);
    }
    Ok(messages)
}

fn channels_blocking(conn: &Connection) -> Result<Vec<(ChannelId, u64)>, LedgerError> {
    let mut stmt = conn
        .prepare_cached("SELECT channel, COUNT(*) FROM messages GROUP BY channel ORDER BY channel")
        .map_err(db_err)?;
    let rows = stmt
        .query_map([], |row| {
            Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, i64>(1)?))
        })
        .map_err(db_err)?;
    let mut channels = Vec::new();
    for row in rows {
        let (channel, count) = row.map_err(db_err)?;
        let channel = ChannelId::try_from(channel.as_slice())
            .map_err(|_| LedgerError::Corrupt(format!("channel id of {} bytes", channel.len())))?;
        let count = u64::try_from(count)
            .map_err(|_| LedgerError::Corrupt(format!("message count {count}")))?;
        channels.push((channel, count));
    }
    Ok(channels)
}

fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .unwrap_or(0)
}

/// Locks a mutex, carrying on after a panic elsewhere: the connection inside stays usable
/// (an interrupted transaction was rolled back when it dropped).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sorts an SQLite error into what it means for a ledger caller.
fn db_err(e: rusqlite::Error) -> LedgerError {
    match &e {
        rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => LedgerError::Unavailable(
                format!("database stayed busy beyond {BUSY_TIMEOUT:?}: {e}"),
            ),
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => {
                LedgerError::Corrupt(e.to_string())
            }
            // A CHECK or trigger refused a row that append() had already validated.
            ErrorCode::ConstraintViolation => LedgerError::Corrupt(e.to_string()),
            _ => LedgerError::Unavailable(e.to_string()),
        },
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => LedgerError::Corrupt(e.to_string()),
        _ => LedgerError::Unavailable(e.to_string()),
    }
}

/// Names the file in an error from opening it.
fn with_path(e: LedgerError, path: &Path) -> LedgerError {
    let path = path.display();
    match e {
        LedgerError::Unavailable(m) => LedgerError::Unavailable(format!("{path}: {m}")),
        LedgerError::Corrupt(m) => LedgerError::Corrupt(format!("{path}: {m}")),
        LedgerError::Unsupported(m) => LedgerError::Unsupported(format!("{path}: {m}")),
        other => other,
    }
}

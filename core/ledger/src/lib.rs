//! Ledger backends for fwledger: append-only, per-channel logs of opaque messages.
//!
//! The ledger is *untrusted storage*. It never interprets the messages it holds — they are
//! signed and hash-chained, and readers verify them — it only keeps byte strings per channel at
//! dense positions `0, 1, 2, …` and refuses to fork a channel: an [`append`](Ledger::append)
//! succeeds only at the channel's next free position.
//!
//! - [`Ledger`]: the trait every backend implements.
//! - [`SqliteLedger`] (feature `sqlite`, default): the embedded ledger, one SQLite file that
//!   vendor and gateway processes on one machine share.
//! - [`open`]: picks a backend from a ledger URL (`sqlite:PATH`, `embedded`).
//! - [`export()`] / [`import()`]: channel messages as files, for air-gapped transfer.
//!
//! ```
//! use std::time::Duration;
//! use fwledger_ledger::{open, LedgerError};
//!
//! # #[cfg(feature = "sqlite")]
//! async fn demo(home: &std::path::Path) -> Result<(), LedgerError> {
//!     let ledger = open("embedded", home)?; // home/ledger.sqlite
//!     let channel = [7u8; 32];
//!
//!     ledger.append(&channel, 0, b"first").await?;
//!     ledger.append(&channel, 1, b"second").await?;
//!     // A second writer that lost the race is told where the channel really ends.
//!     assert!(matches!(
//!         ledger.append(&channel, 1, b"fork").await,
//!         Err(LedgerError::Conflict { expected: 2, got: 1 })
//!     ));
//!
//!     let messages = ledger.read(&channel, 0, 10).await?;
//!     assert_eq!(messages[1].bytes, b"second");
//!     // Nothing at position 2 yet: wait() gives up after the timeout.
//!     assert!(!ledger.wait(&channel, 2, Duration::from_millis(10)).await?);
//!     Ok(())
//! }
//!
//! # #[cfg(feature = "sqlite")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let home = tempfile::tempdir()?;
//! tokio::runtime::Runtime::new()?.block_on(demo(home.path()))?;
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "sqlite"))]
//! # fn main() {}
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod export;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use error::LedgerError;
pub use export::{export, import, ImportReport, EXPORT_MAGIC};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteLedger;

/// Identifies a channel: 32 bytes chosen by the vendor's protocol layer (opaque here).
pub type ChannelId = [u8; 32];

/// The largest message a ledger accepts, in bytes (1 MiB).
pub const MAX_MESSAGE_SIZE: usize = 1024 * 1024;

/// File name of the embedded ledger inside the fwledger home directory.
pub const EMBEDDED_LEDGER_FILE: &str = "ledger.sqlite";

/// One message as stored: its position in the channel and its bytes, uninterpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Position in the channel, starting at 0, without holes.
    pub seq: u64,
    /// The message exactly as appended.
    pub bytes: Vec<u8>,
}

/// An append-only store of opaque messages per channel.
///
/// Implementations must keep every channel dense (positions `0..next_seq` all present) and
/// must never change or drop a stored message.
#[async_trait::async_trait]
pub trait Ledger: Send + Sync {
    /// Appends `message` at position `seq`, which must be the channel's next free position;
    /// otherwise fails with [`LedgerError::Conflict`] and stores nothing. Messages larger than
    /// [`MAX_MESSAGE_SIZE`] fail with [`LedgerError::TooLarge`].
    async fn append(
        &self,
        channel: &ChannelId,
        seq: u64,
        message: &[u8],
    ) -> Result<(), LedgerError>;

    /// Reads up to `limit` messages starting at position `from`, in order. Returns fewer (or
    /// none) when the channel ends sooner.
    async fn read(
        &self,
        channel: &ChannelId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, LedgerError>;

    /// The channel's next free position, which is also its number of messages.
    async fn next_seq(&self, channel: &ChannelId) -> Result<u64, LedgerError>;

    /// Waits until a message at position `from` or later exists in `channel` (appended by this
    /// process or any other) and returns `true`, or returns `false` once `timeout` has passed.
    /// Returns at once when such a message already exists.
    async fn wait(
        &self,
        channel: &ChannelId,
        from: u64,
        timeout: Duration,
    ) -> Result<bool, LedgerError>;

    /// Every channel that holds at least one message, with its message count. For tooling.
    async fn channels(&self) -> Result<Vec<(ChannelId, u64)>, LedgerError>;
}

/// Opens the ledger named by `url`.
///
/// - `""` or `"embedded"`: the embedded SQLite ledger at `home/ledger.sqlite`.
/// - `sqlite:PATH`: an SQLite ledger at `PATH` (a relative path is taken from the current
///   directory).
/// - `iota+https://…` / `iota+http://…`: [`LedgerError::Unsupported`] here — the IOTA Rebased
///   backend lives in the `fwledger-iota` crate, which this crate does not link; use
///   `fwledger::Backends::open` (feature `iota`) or `fwledger_iota::open`.
/// - anything else: [`LedgerError::Unsupported`].
///
/// Parent directories of the SQLite file are created as needed.
pub fn open(url: &str, home: &Path) -> Result<Arc<dyn Ledger>, LedgerError> {
    let url = url.trim();
    if url.is_empty() || url == "embedded" {
        return open_sqlite(&home.join(EMBEDDED_LEDGER_FILE));
    }
    if let Some(path) = url.strip_prefix("sqlite:") {
        if path.is_empty() {
            return Err(LedgerError::Unsupported(format!(
                "ledger URL {url:?} names no file; expected sqlite:PATH"
            )));
        }
        let path = Path::new(path);
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir()?.join(path)
        };
        return open_sqlite(&path);
    }
    if url.starts_with("iota+") {
        return Err(LedgerError::Unsupported(format!(
            "the IOTA ledger backend ({url}) is not linked into this program: it lives in \
             fwledger-iota (fwledger with feature `iota`, on by default in the fwledger CLI); \
             use sqlite:PATH or embedded here"
        )));
    }
    let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
    Err(LedgerError::Unsupported(format!(
        "unknown ledger URL scheme {scheme:?} in {url:?}; expected sqlite:PATH or embedded"
    )))
}

#[cfg(feature = "sqlite")]
fn open_sqlite(path: &Path) -> Result<Arc<dyn Ledger>, LedgerError> {
    Ok(Arc::new(SqliteLedger::open(path)?))
}

#[cfg(not(feature = "sqlite"))]
fn open_sqlite(path: &Path) -> Result<Arc<dyn Ledger>, LedgerError> {
    Err(LedgerError::Unsupported(format!(
        "this build has no SQLite ledger (feature `sqlite` is off); cannot open {}",
        path.display()
    )))
}

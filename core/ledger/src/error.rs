//! The one error type of every ledger operation.

/// What went wrong in a ledger operation, from the caller's point of view.
///
/// `Conflict` and `TooLarge` are answers about the request; `Unavailable` and `Io` mean the
/// ledger could not be reached or used right now (retry later); `Corrupt` and `BadExport` mean
/// the stored data or an export file is not what it claims to be.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The append asked for a position that is not the channel's next free one: another writer
    /// got there first (or the caller's view is stale). Re-read and retry at `expected`.
    #[error("ledger conflict: next free position is {expected}, append asked for {got}")]
    Conflict {
        /// The channel's next free position.
        expected: u64,
        /// The position the caller asked for.
        got: u64,
    },
    /// The message is larger than [`MAX_MESSAGE_SIZE`](crate::MAX_MESSAGE_SIZE).
    #[error("ledger message is {size} bytes, the limit is {limit}")]
    TooLarge {
        /// Size of the rejected message in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The ledger cannot be reached or stayed busy beyond its timeout.
    #[error("ledger unavailable: {0}")]
    Unavailable(String),
    /// The ledger's storage does not hold what a ledger must hold (not a ledger file, a hole in
    /// a channel, a malformed row).
    #[error("ledger storage is corrupt: {0}")]
    Corrupt(String),
    /// An operating-system IO error (creating directories, reading or writing export files).
    #[error("ledger IO error: {0}")]
    Io(#[from] std::io::Error),
    /// The ledger URL names a backend that this build does not provide.
    #[error("unsupported ledger: {0}")]
    Unsupported(String),
    /// An export file is malformed, truncated, or disagrees with the ledger it is imported into.
    #[error("bad ledger export file: {0}")]
    BadExport(String),
}

//! The one error type of the content-store layer.

use thiserror::Error;

/// Why a content-store operation failed.
///
/// The variants keep three kinds of failure apart, so callers can react differently:
/// * **bad data / attack** — [`BlockMismatch`](Self::BlockMismatch),
///   [`TooLarge`](Self::TooLarge), [`Malformed`](Self::Malformed): the bytes we were given are
///   not what the CID promises (see [`StoreError::is_bad_data`]);
/// * **absent / unreachable** — [`NotFound`](Self::NotFound), [`Unavailable`](Self::Unavailable),
///   [`Io`](Self::Io): retrying elsewhere or later may help;
/// * **caller mistakes** — [`InvalidCid`](Self::InvalidCid),
///   [`UnknownProfile`](Self::UnknownProfile), [`Unsupported`](Self::Unsupported).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A block the operation needs is not in the store.
    #[error("block {cid} not found")]
    NotFound {
        /// The missing block's CID.
        cid: String,
    },
    /// A block's bytes do not hash to the CID that names it (tampered or corrupt data).
    #[error("block {cid} does not match its CID (tampered or corrupt data)")]
    BlockMismatch {
        /// The CID the block was fetched or stored under.
        cid: String,
    },
    /// The content is larger than the caller's limit.
    #[error("content exceeds the size limit of {limit} bytes")]
    TooLarge {
        /// The limit that was exceeded, in bytes.
        limit: u64,
    },
    /// A string given as CID is not a CID this store can use.
    #[error("invalid CID: {0}")]
    InvalidCid(String),
    /// Data that hashes correctly but is not valid UnixFS / dag-pb / CAR.
    #[error("malformed data: {0}")]
    Malformed(String),
    /// The backend cannot be reached right now (network-style failure).
    #[error("content store unavailable: {0}")]
    Unavailable(String),
    /// A local file-system error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A CID profile name that is not known.
    #[error("unknown CID profile {0:?} (known: unixfs-v1-2025, unixfs-v0-2015)")]
    UnknownProfile(String),
    /// A content-store URL whose backend is not available in this build.
    #[error("unsupported content store {0:?} (supported: \"embedded\", \"embedded:PATH\", \"kubo+http://HOST:PORT\", \"https://GATEWAY\")")]
    Unsupported(String),
    /// A write (`add`, `pin`) to a store that can only be read, such as a trustless gateway.
    #[error("content store {store} is read-only: {hint}")]
    ReadOnly {
        /// The store, as its URL.
        store: String,
        /// What to do instead.
        hint: String,
    },
}

impl StoreError {
    /// True when the error means the data itself is bad — a tampered or hostile source —
    /// rather than the content being missing or the store being unreachable.
    pub fn is_bad_data(&self) -> bool {
        matches!(
            self,
            Self::BlockMismatch { .. } | Self::TooLarge { .. } | Self::Malformed(_)
        )
    }
}

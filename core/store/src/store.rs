//! The `ContentStore` trait: what the rest of fwledger needs from any content backend.

use std::path::Path;
use std::pin::Pin;

use async_trait::async_trait;
use futures::Stream;

use crate::{Profile, StoreError};

/// The file bytes of a CID, in order, in pieces of at most one block.
///
/// Every piece comes from a block that has been hashed against its CID; a bad block ends the
/// stream with [`StoreError::BlockMismatch`].
pub type ContentStream = Pin<Box<dyn Stream<Item = Result<Vec<u8>, StoreError>> + Send>>;

/// The result of adding a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    /// The file's CID, identical to what Kubo computes under the same profile.
    pub cid: String,
    /// The file's length in bytes.
    pub size: u64,
}

/// A place that stores UnixFS files by CID and serves them back verified.
#[async_trait]
pub trait ContentStore: Send + Sync {
    /// Imports the file at `path` under `profile`, streaming (the file is never held in memory).
    /// `progress`, if given, is called with the number of file bytes done so far.
    async fn add_file(
        &self,
        path: &Path,
        profile: Profile,
        progress: Option<&(dyn Fn(u64) + Send + Sync)>,
    ) -> Result<Added, StoreError>;

    /// Streams the bytes of the file `cid`, verifying every block before yielding any of it and
    /// failing with [`StoreError::TooLarge`] rather than yielding more than `max_size` bytes
    /// (up front when the root already declares a larger size).
    async fn get(&self, cid: &str, max_size: u64) -> Result<ContentStream, StoreError>;

    /// Whether the block `cid` is present in this store.
    async fn has(&self, cid: &str) -> Result<bool, StoreError>;

    /// Protects `cid` from removal.
    async fn pin(&self, cid: &str) -> Result<(), StoreError>;

    /// The bytes of the single block `cid`, hashed against the CID before they are returned
    /// (any codec; at most 2 MiB). This is what a trustless gateway serves.
    ///
    /// The default implementation fails with [`StoreError::Unsupported`]; every store of this
    /// crate implements it.
    async fn get_block(&self, cid: &str) -> Result<Vec<u8>, StoreError> {
        Err(StoreError::Unsupported(format!(
            "block {cid}: this content store cannot serve single blocks"
        )))
    }
}

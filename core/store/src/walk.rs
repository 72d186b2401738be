//! Verified, size-bounded walk over a UnixFS file DAG, yielding the file bytes in order.
//!
//! Sans-IO: the walker asks for the next block by CID and the caller fetches it from wherever
//! (disk, a Kubo node, a gateway). Every block is hashed against the CID that names it before any
//! of it is used, and the walker never holds more than one block plus the pending links of one
//! root-to-leaf path.

use cid::Cid;
use rust_unixfs::file::visit::{Cache, FileVisit, IdleFileVisit};
use rust_unixfs::file::FileReadFailed;

use crate::block::{self, DAG_PB, RAW};
use crate::pb_guard::{check_dag_pb, Data};
use crate::StoreError;

/// Pending links a well-formed file needs are a few thousand at most (depth × max links);
/// a hostile DAG that fans out wider than this is refused rather than buffered.
const MAX_PENDING_LINKS: usize = 1 << 16;

/// A walk over one file DAG in progress.
pub(crate) struct FileWalk {
    limit: u64,
    declared: u64,
    yielded: u64,
    visit: Option<FileVisit>,
    cache: Option<Cache>,
}

impl FileWalk {
    /// Starts a walk at the root block, returning the walker and the root's own file bytes
    /// (the whole file for a single-block file, otherwise empty).
    ///
    /// Refuses up front a root whose declared file size exceeds `limit`.
    pub(crate) fn start(
        root: &Cid,
        block: Vec<u8>,
        limit: u64,
    ) -> Result<(Self, Vec<u8>), StoreError> {
        block::verify(root, &block)?;
        match root.codec() {
            RAW => {
                let size = block.len() as u64;
                Self::started(limit, size, None, block)
            }
            DAG_PB => {
                check_dag_pb(&block, Data::UnixFs)?;
                let (content, size, _metadata, visit) = IdleFileVisit::default()
                    .start(&block)
                    .map_err(|e| not_a_file(root, &e))?;
                let content = content.to_vec();
                Self::started(limit, size, visit, content)
            }
            codec => Err(StoreError::Malformed(format!(
                "{root}: codec {codec:#x} is not a UnixFS file"
            ))),
        }
    }

    fn started(
        limit: u64,
        declared: u64,
        visit: Option<FileVisit>,
        content: Vec<u8>,
    ) -> Result<(Self, Vec<u8>), StoreError> {
        if declared > limit {
            return Err(StoreError::TooLarge { limit });
        }
        let mut walk = FileWalk {
            limit,
            declared,
            yielded: 0,
            visit,
            cache: None,
        };
        walk.check_pending()?;
        let content = walk.account(content)?;
        Ok((walk, content))
    }

    /// The CID of the block the walk needs next, or `None` when the file is complete.
    pub(crate) fn next_cid(&self) -> Option<Cid> {
        self.visit.as_ref().map(|v| *v.pending_links().0)
    }

    /// Feeds the block for [`next_cid`](Self::next_cid), returning the file bytes it carries
    /// (empty for an inner node).
    pub(crate) fn feed(&mut self, block: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let visit = self
            .visit
            .take()
            .ok_or_else(|| StoreError::Malformed("file walk already complete".into()))?;
        let cid = *visit.pending_links().0;
        block::verify(&cid, &block)?;
        match cid.codec() {
            RAW => {}
            DAG_PB => check_dag_pb(&block, Data::UnixFs)?,
            codec => {
                return Err(StoreError::Malformed(format!(
                    "{cid}: codec {codec:#x} is not a UnixFS file block"
                )))
            }
        }
        let (content, next) = visit
            .continue_walk(&block, &mut self.cache)
            .map_err(|e| not_a_file(&cid, &e))?;
        let content = if content.len() == block.len() {
            None // the whole block is file data (a raw leaf): hand it on without copying
        } else {
            Some(content.to_vec())
        };
        self.visit = next;
        self.check_pending()?;
        self.account(content.unwrap_or(block))
    }

    /// Fetches and feeds blocks until some file bytes come out; `None` once the file is complete.
    pub(crate) fn next_chunk(
        &mut self,
        mut fetch: impl FnMut(&Cid) -> Result<Vec<u8>, StoreError>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        while let Some(cid) = self.next_cid() {
            let content = self.feed(fetch(&cid)?)?;
            if !content.is_empty() {
                return Ok(Some(content));
            }
        }
        Ok(None)
    }

    /// Counts `content` against the limit and the declared size before it may be yielded.
    fn account(&mut self, content: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let total = self.yielded.saturating_add(content.len() as u64);
        if total > self.limit {
            return Err(StoreError::TooLarge { limit: self.limit });
        }
        if total > self.declared {
            return Err(StoreError::Malformed(
                "file DAG holds more bytes than its root declares".into(),
            ));
        }
        self.yielded = total;
        if self.visit.is_none() && self.yielded != self.declared {
            return Err(StoreError::Malformed(format!(
                "file DAG holds {} bytes but its root declares {}",
                self.yielded, self.declared
            )));
        }
        Ok(content)
    }

    fn check_pending(&self) -> Result<(), StoreError> {
        let pending = self
            .visit
            .as_ref()
            .map_or(0, |v| v.pending_links().1.size_hint().0);
        if pending >= MAX_PENDING_LINKS {
            return Err(StoreError::Malformed(format!(
                "file DAG fans out to more than {MAX_PENDING_LINKS} pending links"
            )));
        }
        Ok(())
    }
}

fn not_a_file(cid: &Cid, e: &FileReadFailed) -> StoreError {
    StoreError::Malformed(format!("{cid}: not a UnixFS file block: {e}"))
}

//! `EmbeddedStore`: blocks as files in a local directory, no daemon needed.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use cid::Cid;
use futures::stream;
use tokio::task::{spawn_blocking, JoinError};

use crate::block::parse_cid;
use crate::blockdir::BlockDir;
use crate::cid::import;
use crate::walk::FileWalk;
use crate::{Added, ContentStore, ContentStream, Profile, StoreError};

/// A content store kept in a local directory (layout in the `blockdir` module docs: Kubo-style
/// `next-to-last/2` sharded block files, each written atomically).
///
/// Cloning is cheap; clones share the directory.
#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    dir: Arc<BlockDir>,
}

impl EmbeddedStore {
    /// Opens the store in `dir`, creating it if needed.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Ok(EmbeddedStore {
            dir: Arc::new(BlockDir::open(dir)?),
        })
    }

    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        self.dir.root()
    }

    /// Whether `cid` has been pinned.
    pub fn is_pinned(&self, cid: &str) -> Result<bool, StoreError> {
        self.dir.is_pinned(&parse_cid(cid)?)
    }

    pub(crate) fn blocks(&self) -> &BlockDir {
        &self.dir
    }
}

#[async_trait]
impl ContentStore for EmbeddedStore {
    async fn add_file(
        &self,
        path: &Path,
        profile: Profile,
        progress: Option<&(dyn Fn(u64) + Send + Sync)>,
    ) -> Result<Added, StoreError> {
        let dir = Arc::clone(&self.dir);
        let path = path.to_owned();
        // the callback borrows from the caller, so it stays on this side; the blocking import
        // reports through a watch channel (only the latest count matters)
        let (tx, mut rx) = tokio::sync::watch::channel(0u64);
        let task = spawn_blocking(move || {
            let file = File::open(&path)?;
            let mut batch = dir.batch();
            let imported = import(
                file,
                profile,
                |cid, block| batch.put(&cid, &block),
                |done| {
                    let _ = tx.send(done);
                },
            )?;
            batch.commit()?;
            Ok::<_, StoreError>(Added {
                cid: imported.root.to_string(),
                size: imported.size,
            })
        });
        if let Some(progress) = progress {
            while rx.changed().await.is_ok() {
                let done = *rx.borrow_and_update();
                progress(done);
            }
        }
        task.await.map_err(task_failed)?
    }

    async fn get(&self, cid: &str, max_size: u64) -> Result<ContentStream, StoreError> {
        let root = parse_cid(cid)?;
        let dir = Arc::clone(&self.dir);
        let (walk, first) =
            spawn_blocking(move || FileWalk::start(&root, dir.read_unverified(&root)?, max_size))
                .await
                .map_err(task_failed)??;
        let state = Reading {
            dir: Arc::clone(&self.dir),
            walk: Some(walk),
            first: Some(first).filter(|b| !b.is_empty()),
        };
        Ok(Box::pin(stream::unfold(state, Reading::next)))
    }

    async fn has(&self, cid: &str) -> Result<bool, StoreError> {
        let cid = parse_cid(cid)?;
        let dir = Arc::clone(&self.dir);
        spawn_blocking(move || dir.has(&cid))
            .await
            .map_err(task_failed)?
    }

    async fn pin(&self, cid: &str) -> Result<(), StoreError> {
        let parsed = parse_cid(cid)?;
        let as_given = cid.to_owned();
        let dir = Arc::clone(&self.dir);
        spawn_blocking(move || {
            if !dir.has(&parsed)? {
                return Err(StoreError::NotFound { cid: as_given });
            }
            dir.pin(&parsed, &as_given)
        })
        .await
        .map_err(task_failed)?
    }

    async fn get_block(&self, cid: &str) -> Result<Vec<u8>, StoreError> {
        let cid = parse_cid(cid)?;
        let dir = Arc::clone(&self.dir);
        spawn_blocking(move || {
            let bytes = dir.read_unverified(&cid)?;
            crate::block::verify(&cid, &bytes)?;
            Ok(bytes)
        })
        .await
        .map_err(task_failed)?
    }
}

/// State of a [`ContentStream`] from the embedded store: one block is read per poll, so the
/// reader pulls the DAG lazily and nothing runs ahead of the consumer.
struct Reading {
    dir: Arc<BlockDir>,
    walk: Option<FileWalk>,
    first: Option<Vec<u8>>,
}

impl Reading {
    async fn next(mut self) -> Option<(Result<Vec<u8>, StoreError>, Self)> {
        if let Some(first) = self.first.take() {
            return Some((Ok(first), self));
        }
        // a finished or failed walk is gone: the stream ends after at most one error
        let mut walk = self.walk.take()?;
        let dir = Arc::clone(&self.dir);
        let step = spawn_blocking(move || {
            // the walker verifies every block it is fed
            let chunk = walk.next_chunk(|cid: &Cid| dir.read_unverified(cid));
            (walk, chunk)
        })
        .await;
        match step {
            Ok((walk, Ok(Some(chunk)))) => {
                self.walk = Some(walk);
                Some((Ok(chunk), self))
            }
            Ok((_, Ok(None))) => None,
            Ok((_, Err(e))) => Some((Err(e), self)),
            Err(e) => Some((Err(task_failed(e)), self)),
        }
    }
}

/// A blocking task that did not finish: a panic while decoding hostile data is reported as bad
/// data, a cancelled runtime as unavailability.
fn task_failed(e: JoinError) -> StoreError {
    if e.is_panic() {
        StoreError::Malformed(format!("decoder failed: {e}"))
    } else {
        StoreError::Unavailable(format!("store task cancelled: {e}"))
    }
}

//! The embedded store's on-disk layout.
//!
//! ```text
//! DIR/blocks/SHARDING              "/repo/flatfs/shard/v1/next-to-last/2"
//! DIR/blocks/<xy>/<cidv1>.data     one block; <xy> = the two characters before the key's last
//! DIR/pins/<cidv1>                 one pin; holds the CID as the caller wrote it
//! ```
//!
//! Keys are the CIDv1 in lower-case base32 (so `Qm…` and its `bafy…` form share a file) and the
//! sharding is Kubo flatfs' default `next-to-last/2`. Every file is written atomically.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use cid::Cid;

use crate::atomic_file::{sync_dir, write_atomic};
use crate::block::{self, block_key, MAX_BLOCK_SIZE};
use crate::StoreError;

const SHARDING: &str = "/repo/flatfs/shard/v1/next-to-last/2\n";

/// A block and pin directory.
#[derive(Debug, Clone)]
pub(crate) struct BlockDir {
    root: PathBuf,
    blocks: PathBuf,
    pins: PathBuf,
}

impl BlockDir {
    /// Opens (creating if needed) the layout under `root`.
    pub(crate) fn open(root: &Path) -> Result<Self, StoreError> {
        let blocks = root.join("blocks");
        let pins = root.join("pins");
        fs::create_dir_all(&blocks)?;
        fs::create_dir_all(&pins)?;
        match fs::read_to_string(blocks.join("SHARDING")) {
            Ok(s) if s == SHARDING => {}
            Ok(other) => {
                return Err(StoreError::Malformed(format!(
                    "{}: unsupported block sharding {:?}",
                    blocks.display(),
                    other.trim_end()
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                write_atomic(&blocks, "SHARDING", SHARDING.as_bytes())?;
                sync_dir(&blocks)?;
            }
            Err(e) => return Err(e.into()),
        }
        Ok(BlockDir {
            root: root.to_owned(),
            blocks,
            pins,
        })
    }

    /// The directory this layout lives in.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    fn shard_dir(&self, key: &str) -> PathBuf {
        let n = key.len();
        let shard = key
            .get(n.saturating_sub(3)..n.saturating_sub(1))
            .unwrap_or("__");
        self.blocks.join(shard)
    }

    /// Path of the block named `cid`.
    pub(crate) fn block_path(&self, cid: &Cid) -> PathBuf {
        let key = block_key(cid);
        self.shard_dir(&key).join(format!("{key}.data"))
    }

    /// Whether the block is present (not whether it is intact).
    pub(crate) fn has(&self, cid: &Cid) -> Result<bool, StoreError> {
        Ok(self.block_path(cid).try_exists()?)
    }

    /// Reads a block and checks it against its CID.
    pub(crate) fn read(&self, cid: &Cid) -> Result<Vec<u8>, StoreError> {
        let bytes = self.read_unverified(cid)?;
        block::verify(cid, &bytes)?;
        Ok(bytes)
    }

    /// Reads a block for a caller that verifies it itself (the file walker), so it is hashed
    /// once, not twice. At most `MAX_BLOCK_SIZE + 1` bytes are read: enough to fail
    /// verification, never enough to exhaust memory.
    pub(crate) fn read_unverified(&self, cid: &Cid) -> Result<Vec<u8>, StoreError> {
        let file = match File::open(self.block_path(cid)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound {
                    cid: cid.to_string(),
                })
            }
            Err(e) => return Err(e.into()),
        };
        let mut bytes = Vec::new();
        file.take(MAX_BLOCK_SIZE as u64 + 1)
            .read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// Starts a batch of writes whose directories are synced together on commit.
    pub(crate) fn batch(&self) -> Batch<'_> {
        Batch {
            dir: self,
            touched: BTreeSet::new(),
        }
    }

    /// Records a pin of `cid`, remembering the CID string as given.
    pub(crate) fn pin(&self, cid: &Cid, as_given: &str) -> Result<(), StoreError> {
        write_atomic(
            &self.pins,
            &block_key(cid),
            format!("{as_given}\n").as_bytes(),
        )?;
        sync_dir(&self.pins)?;
        Ok(())
    }

    /// Whether `cid` is pinned.
    pub(crate) fn is_pinned(&self, cid: &Cid) -> Result<bool, StoreError> {
        Ok(self.pins.join(block_key(cid)).try_exists()?)
    }
}

/// Block writes in progress; see [`BlockDir::batch`].
pub(crate) struct Batch<'a> {
    dir: &'a BlockDir,
    touched: BTreeSet<PathBuf>,
}

impl Batch<'_> {
    /// Stores `bytes` as the block `cid`. The caller vouches that they match (they were just
    /// produced by the importer or verified). A block already present is left alone.
    pub(crate) fn put(&mut self, cid: &Cid, bytes: &[u8]) -> Result<(), StoreError> {
        let key = block_key(cid);
        let shard = self.dir.shard_dir(&key);
        let name = format!("{key}.data");
        if shard.join(&name).try_exists()? {
            return Ok(());
        }
        if !self.touched.contains(&shard) {
            fs::create_dir_all(&shard)?;
        }
        write_atomic(&shard, &name, bytes)?;
        self.touched.insert(shard);
        Ok(())
    }

    /// Makes the batch's renames durable.
    pub(crate) fn commit(self) -> Result<(), StoreError> {
        for dir in &self.touched {
            sync_dir(dir)?;
        }
        if !self.touched.is_empty() {
            sync_dir(&self.dir.blocks)?;
        }
        Ok(())
    }
}

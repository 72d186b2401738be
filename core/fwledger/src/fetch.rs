//! Fetching release images from a content store, verified while they stream.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use fwledger_proto::manifest::Manifest;
use fwledger_proto::{ImageError, ImageVerifier};
use fwledger_store::{ContentStore, StoreError};
use sha2::{Digest, Sha256};

use crate::fsutil::{create, sync_dir};

/// How long a download may stall before it is abandoned (slow-retrieval attack).
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The content store failed or served blocks that do not match their CIDs.
    #[error("content store: {0}")]
    Store(#[from] StoreError),
    /// The content does not match the manifest.
    #[error("image: {0}")]
    Image(#[from] ImageError),
    /// No data arrived for longer than the stall timeout.
    #[error("download stalled for {0:?}")]
    Stalled(Duration),
    /// Filesystem error.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Streams the content `cid` names (at most `max_size` bytes) through `sink`, one chunk at a time.
async fn stream_content(
    store: &dyn ContentStore,
    cid: &str,
    max_size: u64,
    stall: Duration,
    mut sink: impl FnMut(&[u8]) -> Result<(), FetchError>,
) -> Result<(), FetchError> {
    let mut stream = store.get(cid, max_size).await?;
    loop {
        match tokio::time::timeout(stall, stream.next()).await {
            Err(_) => return Err(FetchError::Stalled(stall)),
            Ok(None) => return Ok(()),
            Ok(Some(chunk)) => sink(&chunk?)?,
        }
    }
}

/// Size and SHA-256 of the content `cid` names (at most `max_size` bytes).
pub async fn digest_content(
    store: &dyn ContentStore,
    cid: &str,
    max_size: u64,
) -> Result<(u64, [u8; 32]), FetchError> {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    stream_content(store, cid, max_size, DEFAULT_STALL_TIMEOUT, |chunk| {
        hasher.update(chunk);
        size += chunk.len() as u64;
        Ok(())
    })
    .await?;
    Ok((size, hasher.finalize().into()))
}

/// Fetches the image a (verified) manifest names into `dest`, atomically: the bytes go to a
/// temporary file beside it while the size and SHA-256 are checked, and only a complete, verified
/// image is renamed to `dest`. Nothing is left under `dest` on failure.
pub async fn fetch(
    store: &dyn ContentStore,
    manifest: &Manifest,
    dest: &Path,
    stall: Duration,
) -> Result<(), FetchError> {
    let dir = dest.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.part-{}", std::process::id()));
    let result = async {
        let mut file = std::io::BufWriter::with_capacity(1 << 20, create(&tmp, false)?);
        let mut verifier = ImageVerifier::new(manifest.size, manifest.sha256);
        stream_content(store, &manifest.cid, manifest.size, stall, |chunk| {
            verifier.update(chunk)?;
            file.write_all(chunk)?;
            Ok(())
        })
        .await?;
        verifier.finish()?;
        let file = file.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, dest)?;
        sync_dir(dir)?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

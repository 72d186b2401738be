//! Crash-safe file writes: temp file in the same directory, fsync, rename.
//!
//! A crash leaves at most a stray temp file (named with [`TEMP_PREFIX`], never looked up by
//! readers), never a half-written file under its final name.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Prefix of temp files; no final name starts with it.
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Atomically creates or replaces `dir/name` with `bytes`. The directory itself is not synced;
/// see [`sync_dir`].
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    // pid + counter is unique among live writers; a stale temp of a dead process with the same
    // pid is simply overwritten
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = dir.join(format!("{TEMP_PREFIX}{}-{n}-{name}", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, dir.join(name))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Makes earlier renames into `dir` durable. Best effort where directories cannot be opened
/// (Windows).
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir) {
        Ok(d) => d.sync_all(),
        Err(_) if cfg!(windows) => Ok(()),
        Err(e) => Err(e),
    }
}

//! File-backed A/B slots: `slot_a.bin`, `slot_b.bin` and `boot.json` in the state directory.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::record::{BootRecord, SlotId};
use crate::slots::Slots;

/// Name of the boot record file.
pub const BOOT_RECORD: &str = "boot.json";

/// A slot or boot record file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SlotError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// `boot.json` is not a boot record.
    #[error("{path}: not a boot record: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        message: String,
    },
}

/// Two slot files and the boot record in one directory.
#[derive(Debug)]
pub struct FileSlots {
    dir: PathBuf,
    /// The slot file being appended to, kept open between chunks.
    writer: Option<(SlotId, File)>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SlotError + '_ {
    move |source| SlotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `dir/name` atomically: temp file, fsync, rename, fsync of the directory.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), SlotError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let target = dir.join(name);
    let mut file = File::create(&tmp).map_err(io_err(&tmp))?;
    file.write_all(bytes).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    drop(file);
    fs::rename(&tmp, &target).map_err(io_err(&target))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

impl FileSlots {
    /// Opens (creating) the state directory.
    pub fn open(dir: &Path) -> Result<Self, SlotError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        Ok(FileSlots {
            dir: dir.to_path_buf(),
            writer: None,
        })
    }

    /// The file of a slot.
    pub fn slot_path(&self, slot: SlotId) -> PathBuf {
        self.dir.join(format!("slot_{}.bin", slot.label()))
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn writer(&mut self, slot: SlotId) -> Result<&mut File, SlotError> {
        if !matches!(&self.writer, Some((s, _)) if *s == slot) {
            let path = self.slot_path(slot);
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io_err(&path))?;
            self.writer = Some((slot, file));
        }
        let path = self.slot_path(slot);
        match &mut self.writer {
            Some((_, file)) => Ok(file),
            None => Err(SlotError::Io {
                path,
                source: std::io::Error::other("slot writer unavailable"),
            }),
        }
    }
}

impl Slots for FileSlots {
    type Error = SlotError;

    fn load(&mut self) -> Result<Option<BootRecord>, SlotError> {
        let path = self.dir.join(BOOT_RECORD);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| SlotError::Corrupt {
                    path,
                    message: e.to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SlotError::Io { path, source: e }),
        }
    }

    fn store(&mut self, record: &BootRecord) -> Result<(), SlotError> {
        let path = self.dir.join(BOOT_RECORD);
        let json = serde_json::to_vec_pretty(record).map_err(|e| SlotError::Corrupt {
            path,
            message: e.to_string(),
        })?;
        write_atomic(&self.dir, BOOT_RECORD, &json)
    }

    fn len(&mut self, slot: SlotId) -> Result<u64, SlotError> {
        let path = self.slot_path(slot);
        match fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(SlotError::Io { path, source: e }),
        }
    }

    fn read(&mut self, slot: SlotId, offset: u64, buf: &mut [u8]) -> Result<usize, SlotError> {
        let path = self.slot_path(slot);
        let mut file = File::open(&path).map_err(io_err(&path))?;
        file.seek(SeekFrom::Start(offset)).map_err(io_err(&path))?;
        file.read(buf).map_err(io_err(&path))
    }

    fn truncate(&mut self, slot: SlotId, len: u64) -> Result<u64, SlotError> {
        self.writer = None;
        let path = self.slot_path(slot);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let keep = file.metadata().map_err(io_err(&path))?.len().min(len);
        file.set_len(keep).map_err(io_err(&path))?;
        file.sync_all().map_err(io_err(&path))?;
        Ok(keep)
    }

    fn append(&mut self, slot: SlotId, data: &[u8]) -> Result<(), SlotError> {
        let path = self.slot_path(slot);
        self.writer(slot)?.write_all(data).map_err(io_err(&path))
    }

    fn sync(&mut self, slot: SlotId) -> Result<(), SlotError> {
        let path = self.slot_path(slot);
        self.writer(slot)?.sync_all().map_err(io_err(&path))
    }
}

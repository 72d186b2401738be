//! Small helpers shared by the commands: errors, durations, keys, progress, JSON.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Files smaller than this get no progress bar.
const PROGRESS_THRESHOLD: u64 = 16 * 1024 * 1024;

/// How a command failed.
#[derive(Debug)]
pub enum Failure {
    /// An error, printed as `error: …`, exit code 1.
    Message(String),
    /// A failed verification check, printed as one line naming it, exit code 2.
    Check {
        /// The check's stable name.
        check: &'static str,
        /// What went wrong.
        message: String,
    },
}

impl Failure {
    /// A filesystem error about `path`.
    pub fn io(path: &Path, e: std::io::Error) -> Self {
        Failure::Message(format!("{}: {e}", path.display()))
    }
}

macro_rules! failure_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Failure {
            fn from(e: $t) -> Self {
                Failure::Message(e.to_string())
            }
        }
    )*};
}

failure_from!(
    fwledger::VendorError,
    fwledger::SubscribeError,
    fwledger::BackendError,
    fwledger_store::StoreError,
    fwledger_ledger::LedgerError
);

/// Parses `90`, `90s`, `30m`, `12h`, `7d`, `2w`.
pub fn parse_duration(text: &str) -> Result<Duration, Failure> {
    fwledger::parse_duration(text).ok_or_else(|| {
        Failure::Message(format!(
            "{text:?} is not a duration (e.g. 30s, 15m, 12h, 90d)"
        ))
    })
}

/// Parses a 32-byte hex key.
pub fn parse_key(text: &str) -> Result<[u8; 32], Failure> {
    hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Failure::Message("vendor key must be 64 hex characters (32 bytes)".into()))
}

/// A progress bar on stderr for large inputs (hidden for small ones and when not a terminal).
pub fn progress_bar(len: u64, what: &str) -> ProgressBar {
    if len < PROGRESS_THRESHOLD {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:8} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

/// Opens `path` and runs `f` on a reader that advances a progress bar.
pub fn with_progress<T, E: std::fmt::Display>(
    path: &Path,
    what: &str,
    f: impl FnOnce(&mut dyn Read) -> Result<T, E>,
) -> Result<T, Failure> {
    let file = std::fs::File::open(path).map_err(|e| Failure::io(path, e))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = progress_bar(len, what);
    let mut reader = bar.wrap_read(file);
    let result = f(&mut reader).map_err(|e| Failure::Message(format!("{}: {e}", path.display())));
    bar.finish_and_clear();
    result
}

/// Pretty JSON.
pub fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, Failure> {
    serde_json::to_string_pretty(value).map_err(|e| Failure::Message(e.to_string()))
}

/// The embedded store named by a store URL (CAR files work on the embedded store).
pub fn embedded_store(home: &Path, url: &str) -> Result<fwledger_store::EmbeddedStore, Failure> {
    match fwledger_store::embedded_dir(url, home)? {
        Some(dir) => fwledger_store::EmbeddedStore::open(&dir).map_err(Failure::from),
        None => Err(Failure::Message(format!(
            "CAR files work with the embedded store; {url:?} is not one"
        ))),
    }
}

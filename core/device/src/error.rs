//! Errors of the agent core.

use core::fmt;

/// Why the agent cannot run at all (as opposed to one update failing, which it reports).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The slots or the boot record could not be read or written.
    #[error("slot storage: {0}")]
    Storage(String),
    /// Neither slot holds an image that matches its record.
    #[error("no verified image to boot: {0}")]
    NoBootableImage(String),
    /// A platform service could not be set up.
    #[error(transparent)]
    Platform(#[from] PlatformError),
}

/// A platform service (MQTT, HTTP, factory image) could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{service}: {message}")]
pub struct PlatformError {
    /// Which service.
    pub service: &'static str,
    /// What went wrong.
    pub message: String,
}

impl PlatformError {
    /// A platform error.
    pub fn new(service: &'static str, message: impl fmt::Display) -> Self {
        PlatformError {
            service,
            message: message.to_string(),
        }
    }
}

/// What kind of failure stopped an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The notice, manifest or image is bad or not for this device (possibly an attack): the
    /// release is never tried again.
    Refused,
    /// The network failed or stalled: the download resumes later.
    Network,
    /// The device's own storage failed.
    Storage,
}

/// Why one update did not install; reported as `failed` with reason `check: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateFailure {
    /// The failed check's stable name (`docs/PROTOCOL.md` §13, plus the device's own:
    /// `notice-format`, `notice-url`, `download`, `download-stalled`, `slot-storage`).
    pub check: &'static str,
    /// Human-readable detail.
    pub message: String,
    /// Refused, network or storage.
    pub kind: FailureKind,
    /// The release version, once the manifest verified.
    pub release: Option<String>,
}

impl UpdateFailure {
    pub(crate) fn refused(check: &'static str, message: impl fmt::Display) -> Self {
        Self::new(check, message, FailureKind::Refused)
    }

    pub(crate) fn network(check: &'static str, message: impl fmt::Display) -> Self {
        Self::new(check, message, FailureKind::Network)
    }

    pub(crate) fn storage(message: impl fmt::Display) -> Self {
        Self::new("slot-storage", message, FailureKind::Storage)
    }

    fn new(check: &'static str, message: impl fmt::Display, kind: FailureKind) -> Self {
        UpdateFailure {
            check,
            message: message.to_string(),
            kind,
            release: None,
        }
    }

    /// `check: message`, as the status report's `reason`.
    pub fn reason(&self) -> String {
        format!("{}: {}", self.check, self.message)
    }
}

impl fmt::Display for UpdateFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason())
    }
}

impl std::error::Error for UpdateFailure {}

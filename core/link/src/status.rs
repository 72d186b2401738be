//! Device status reports (JSON on `fwledger/v1/dev/{id}/status`).

use serde::{Deserialize, Serialize};

/// Largest status report a gateway accepts, in bytes.
pub const MAX_STATUS_SIZE: usize = 4096;

/// Where a device is in an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateState {
    /// Running its confirmed image, nothing to do.
    Idle,
    /// A notice arrived and verified; downloading into the inactive slot.
    Downloading,
    /// Image downloaded and verified; switching slots.
    Installing,
    /// Booted the new image, running its self-check.
    Rebooting,
    /// The new image passed its self-check and is confirmed.
    Confirmed,
    /// The update was refused or failed; the device stays on its version (`reason` says why).
    Failed,
    /// The new image was not confirmed and the device went back to the previous one.
    RolledBack,
}

/// A status report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceStatus {
    /// Update state.
    pub state: UpdateState,
    /// Running firmware version.
    pub version: String,
    /// Highest accepted security version.
    pub security_version: u64,
    /// The release this report is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// Why it failed or rolled back: the name of the failed check and a message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// SHA-256 of the running image, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Bytes downloaded so far, during `downloading`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<u64>,
}

impl DeviceStatus {
    /// An idle report.
    pub fn idle(version: &str, security_version: u64) -> Self {
        DeviceStatus {
            state: UpdateState::Idle,
            version: version.to_string(),
            security_version,
            release: None,
            reason: None,
            sha256: None,
            progress: None,
        }
    }

    /// Parses a report, refusing oversized payloads.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() > MAX_STATUS_SIZE {
            return Err(format!(
                "status report of {} bytes is too large",
                bytes.len()
            ));
        }
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

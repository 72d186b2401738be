//! The persistent boot record: which slot runs, what each slot holds, what the device accepted.
//!
//! The record is the whole persistent state of the agent. It is replaced atomically
//! ([`Slots::store`](crate::Slots::store)), so every crash leaves either the previous or the next
//! record, and every transition below is one store:
//!
//! ```text
//! idle ──notice──▶ download recorded ──bytes──▶ pending ──reboot──▶ switched (unconfirmed)
//!                                                                    │ self-check ok │ fails, or
//!                                                                    ▼               ▼ too many boots
//!                                                               confirmed       rolled back
//! ```

use fwledger_link::UpdateState;
use serde::{Deserialize, Serialize};

/// The record format this crate writes and reads.
pub const RECORD_FORMAT: u32 = 1;
/// How many release ids the record remembers as processed.
pub const MAX_PROCESSED: usize = 32;

/// One of the two firmware slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlotId {
    /// Slot A (ESP32: `ota_0`; the factory image on a fresh host device).
    A,
    /// Slot B (ESP32: `ota_1`).
    B,
}

impl SlotId {
    /// The other slot.
    pub fn other(self) -> SlotId {
        match self {
            SlotId::A => SlotId::B,
            SlotId::B => SlotId::A,
        }
    }

    /// `"a"` or `"b"`.
    pub fn label(self) -> &'static str {
        match self {
            SlotId::A => "a",
            SlotId::B => "b",
        }
    }
}

/// What a slot holds, as stated by the manifest it was verified against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// Firmware version.
    pub version: String,
    /// Security version of the image.
    pub security_version: u64,
    /// Exact size in bytes.
    pub size: u64,
    /// SHA-256 of the image, hex.
    pub sha256: String,
    /// Release id (hex SHA-256 of the signed manifest); `None` for the factory image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// Vendor root key (hex) and release-key generation the manifest was signed under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<(String, u64)>,
}

/// A download in progress: enough to resume it after a crash or a lost connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadRecord {
    /// Release id (hex SHA-256 of the signed manifest).
    pub release: String,
    /// The slot being written (always the inactive one).
    pub slot: SlotId,
    /// The notice, CBOR as received, hex: it is verified again before the download resumes.
    pub notice: String,
}

/// The last outcome the device reported; re-sent on every connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// State.
    pub state: UpdateState,
    /// The release (version) it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// `check: message` for failures and rollbacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Report {
    /// An idle report.
    pub fn idle() -> Self {
        Report {
            state: UpdateState::Idle,
            release: None,
            reason: None,
        }
    }
}

/// The persistent state of a device (host: `boot.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootRecord {
    /// [`RECORD_FORMAT`].
    pub format: u32,
    /// The slot the boot loader starts.
    pub active: SlotId,
    /// Whether the active image passed its self-check. While `false` the other slot is the
    /// fallback and every boot counts in `boot_attempts`.
    pub confirmed: bool,
    /// Boots of the unconfirmed active image so far.
    pub boot_attempts: u32,
    /// A verified image waiting for the next boot (set after a complete download).
    pub pending: Option<SlotId>,
    /// Running image (a copy of `slot_a` or `slot_b` for people reading the file).
    pub running: Option<ImageInfo>,
    /// What slot A holds, if anything valid.
    pub slot_a: Option<ImageInfo>,
    /// What slot B holds, if anything valid.
    pub slot_b: Option<ImageInfo>,
    /// Highest accepted `security_version` (eFuse `secure_version` on ESP32).
    pub highest_security_version: u64,
    /// Lowest trusted release-key generation per vendor key (hex): the highest generation a
    /// confirmed release was signed under.
    #[serde(default)]
    pub key_generations: Vec<(String, u64)>,
    /// A download in progress.
    pub download: Option<DownloadRecord>,
    /// Release ids already installed, refused or rolled back: their notices are ignored.
    pub processed: Vec<String>,
    /// The last outcome reported.
    pub report: Report,
}

impl BootRecord {
    /// The record of a fresh device running `factory` from slot A.
    pub fn factory(factory: ImageInfo) -> Self {
        let mut record = BootRecord {
            format: RECORD_FORMAT,
            active: SlotId::A,
            confirmed: true,
            boot_attempts: 0,
            pending: None,
            running: None,
            highest_security_version: factory.security_version,
            slot_a: Some(factory),
            slot_b: None,
            key_generations: Vec::new(),
            download: None,
            processed: Vec::new(),
            report: Report::idle(),
        };
        record.normalize();
        record
    }

    /// What `slot` holds.
    pub fn slot(&self, slot: SlotId) -> Option<&ImageInfo> {
        match slot {
            SlotId::A => self.slot_a.as_ref(),
            SlotId::B => self.slot_b.as_ref(),
        }
    }

    /// Sets what `slot` holds.
    pub fn set_slot(&mut self, slot: SlotId, info: Option<ImageInfo>) {
        match slot {
            SlotId::A => self.slot_a = info,
            SlotId::B => self.slot_b = info,
        }
    }

    /// The running image.
    pub fn running_image(&self) -> Option<&ImageInfo> {
        self.slot(self.active)
    }

    /// Refreshes the derived `running` copy (call before storing).
    pub fn normalize(&mut self) {
        self.running = self.running_image().cloned();
    }

    /// Whether a release id was already processed.
    pub fn is_processed(&self, release: &str) -> bool {
        self.processed.iter().any(|r| r == release)
    }

    /// Remembers a processed release id (bounded; the oldest is forgotten first).
    pub fn mark_processed(&mut self, release: &str) {
        if self.is_processed(release) {
            return;
        }
        if self.processed.len() >= MAX_PROCESSED {
            self.processed.remove(0);
        }
        self.processed.push(release.to_string());
    }

    /// The lowest trusted release-key generation for a vendor key (hex).
    pub fn min_key_generation(&self, vendor_key: &str) -> u64 {
        self.key_generations
            .iter()
            .find(|(k, _)| k == vendor_key)
            .map_or(0, |(_, g)| *g)
    }

    /// Raises the trusted release-key generation of a vendor key.
    pub fn raise_key_generation(&mut self, vendor_key: &str, generation: u64) {
        match self
            .key_generations
            .iter_mut()
            .find(|(k, _)| k == vendor_key)
        {
            Some((_, g)) => *g = (*g).max(generation),
            None => self
                .key_generations
                .push((vendor_key.to_string(), generation)),
        }
    }

    /// The boot loader's step: a pending slot becomes the active, unconfirmed one. Returns
    /// whether anything changed.
    pub fn switch_to_pending(&mut self) -> bool {
        match self.pending.take() {
            Some(slot) => {
                self.active = slot;
                self.confirmed = false;
                self.boot_attempts = 0;
                self.report = Report {
                    state: UpdateState::Rebooting,
                    release: self.slot(slot).map(|i| i.version.clone()),
                    reason: None,
                };
                true
            }
            None => false,
        }
    }

    /// The self-check passed: the running image becomes the confirmed one, and its security
    /// version and key generation become the device's floor.
    pub fn confirm(&mut self) {
        self.confirmed = true;
        self.boot_attempts = 0;
        if let Some(info) = self.running_image().cloned() {
            self.highest_security_version =
                self.highest_security_version.max(info.security_version);
            if let Some((key, generation)) = &info.signed_by {
                self.raise_key_generation(key, *generation);
            }
            if let Some(release) = &info.release {
                self.mark_processed(release);
            }
            self.report = Report {
                state: UpdateState::Confirmed,
                release: Some(info.version.clone()),
                reason: None,
            };
        }
    }

    /// The unconfirmed running image failed: go back to the other slot. Returns `false` if the
    /// other slot holds nothing to go back to.
    pub fn roll_back(&mut self, reason: String) -> bool {
        let fallback = self.active.other();
        if self.slot(fallback).is_none() {
            return false;
        }
        let failed = self.slot(self.active).cloned();
        self.set_slot(self.active, None);
        self.active = fallback;
        self.confirmed = true;
        self.boot_attempts = 0;
        self.pending = None;
        if let Some(release) = failed.as_ref().and_then(|f| f.release.as_deref()) {
            self.mark_processed(release);
        }
        self.report = Report {
            state: UpdateState::RolledBack,
            release: failed.map(|f| f.version),
            reason: Some(reason),
        };
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(version: &str, sv: u64, release: Option<&str>) -> ImageInfo {
        ImageInfo {
            version: version.into(),
            security_version: sv,
            size: 1,
            sha256: "00".into(),
            release: release.map(Into::into),
            signed_by: Some(("k".into(), 2)),
        }
    }

    #[test]
    fn install_confirm_and_roll_back() {
        let mut r = BootRecord::factory(image("1.0.0", 0, None));
        r.set_slot(SlotId::B, Some(image("1.1.0", 3, Some("r1"))));
        r.pending = Some(SlotId::B);
        assert!(r.switch_to_pending());
        assert_eq!((r.active, r.confirmed), (SlotId::B, false));
        r.confirm();
        assert_eq!(r.highest_security_version, 3);
        assert_eq!(r.min_key_generation("k"), 2);
        assert!(r.is_processed("r1"));

        r.set_slot(SlotId::A, Some(image("1.2.0", 3, Some("r2"))));
        r.pending = Some(SlotId::A);
        r.switch_to_pending();
        assert!(r.roll_back("self-check: bad".into()));
        assert_eq!(r.active, SlotId::B);
        assert!(r.slot(SlotId::A).is_none());
        assert_eq!(r.report.state, UpdateState::RolledBack);
        assert!(r.is_processed("r2"));
    }

    #[test]
    fn processed_is_bounded() {
        let mut r = BootRecord::factory(image("1.0.0", 0, None));
        for i in 0..(MAX_PROCESSED + 5) {
            r.mark_processed(&i.to_string());
        }
        assert_eq!(r.processed.len(), MAX_PROCESSED);
        assert!(!r.is_processed("0"));
    }
}

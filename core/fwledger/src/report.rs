//! Plain, serializable views of channel messages for tools (`history`, `channel read`).

use fwledger_proto::channel::{Delivery, Event, FollowError};
use serde::Serialize;

/// One channel message as tools show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
#[non_exhaustive]
pub enum ChannelEntry {
    /// A verified release.
    Release {
        /// Sequence number.
        seq: u64,
        /// Epoch.
        epoch: u64,
        /// Vendor name.
        vendor: String,
        /// Device model.
        model: String,
        /// Compatible hardware revisions.
        hardware: Vec<String>,
        /// Semantic version.
        version: String,
        /// Anti-rollback counter.
        security_version: u64,
        /// Image size in bytes.
        size: u64,
        /// SHA-256 of the image, hex.
        sha256: String,
        /// IPFS CID of the image.
        cid: String,
        /// Issue time, Unix seconds.
        issued: u64,
        /// Expiry, Unix seconds.
        expires: Option<u64>,
        /// Release-key generation that signed it.
        key_generation: u64,
    },
    /// A withdrawn release.
    Revoke {
        /// Sequence number.
        seq: u64,
        /// Epoch.
        epoch: u64,
        /// Model.
        model: String,
        /// Version.
        version: String,
        /// Reason.
        reason: String,
    },
    /// A heartbeat.
    Heartbeat {
        /// Sequence number.
        seq: u64,
        /// Epoch.
        epoch: u64,
        /// When written.
        time: u64,
        /// Valid until.
        valid_until: u64,
    },
    /// A new epoch.
    Keyload {
        /// Sequence number.
        seq: u64,
        /// The new epoch.
        epoch: u64,
        /// Whether this reader holds the new key.
        admitted: bool,
    },
    /// A message that was not accepted or cannot be read.
    Rejected {
        /// Ledger position.
        position: u64,
        /// The failed check.
        check: String,
        /// What went wrong.
        error: String,
    },
}

impl ChannelEntry {
    /// The view of an accepted message.
    pub fn from_delivery(d: &Delivery) -> Self {
        match &d.event {
            Event::Release { verified, .. } => {
                let m = &verified.manifest;
                ChannelEntry::Release {
                    seq: d.seq,
                    epoch: d.epoch,
                    vendor: m.vendor.clone(),
                    model: m.model.clone(),
                    hardware: m.hardware.clone(),
                    version: m.version.to_string(),
                    security_version: m.security_version,
                    size: m.size,
                    sha256: hex::encode(m.sha256),
                    cid: m.cid.clone(),
                    issued: m.issued,
                    expires: m.expires,
                    key_generation: verified.certificate.generation,
                }
            }
            Event::Revoke(r) => ChannelEntry::Revoke {
                seq: d.seq,
                epoch: d.epoch,
                model: r.model.clone(),
                version: r.version.clone(),
                reason: r.reason.clone(),
            },
            Event::Heartbeat(h) => ChannelEntry::Heartbeat {
                seq: d.seq,
                epoch: d.epoch,
                time: h.time,
                valid_until: h.valid_until,
            },
            Event::Keyload { epoch, admitted } => ChannelEntry::Keyload {
                seq: d.seq,
                epoch: *epoch,
                admitted: *admitted,
            },
        }
    }

    /// The view of a refused message at ledger `position`.
    pub fn rejected(position: u64, error: &FollowError) -> Self {
        ChannelEntry::Rejected {
            position,
            check: error.check().to_string(),
            error: error.to_string(),
        }
    }

    /// One human-readable line.
    pub fn line(&self) -> String {
        match self {
            ChannelEntry::Release {
                seq,
                model,
                version,
                security_version,
                size,
                cid,
                hardware,
                ..
            } => format!(
                "#{seq} release {model} {version} (security {security_version}, hw {}) {size} B {cid}",
                hardware.join(",")
            ),
            ChannelEntry::Revoke {
                seq,
                model,
                version,
                reason,
                ..
            } => format!("#{seq} revoke  {model} {version}: {reason}"),
            ChannelEntry::Heartbeat {
                seq,
                time,
                valid_until,
                ..
            } => format!("#{seq} heartbeat at {time}, valid until {valid_until}"),
            ChannelEntry::Keyload {
                seq,
                epoch,
                admitted,
            } => format!(
                "#{seq} keyload epoch {epoch} ({})",
                if *admitted { "admitted" } else { "not admitted" }
            ),
            ChannelEntry::Rejected {
                position, error, ..
            } => format!("@{position} REJECTED: {error}"),
        }
    }
}

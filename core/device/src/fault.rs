//! Fault-injection points: where a test may cut the power during an install.

use core::fmt;
use core::str::FromStr;

/// A step of an install after which the device may lose power. At every point the next boot
/// runs a verified image: the old one or the new one, never a partial one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultPoint {
    /// While the record of the accepted download is written (temp file torn, not renamed).
    AcceptWrite,
    /// The download is recorded, no byte written yet.
    AfterAccept,
    /// About half of the image is in the inactive slot.
    MidDownload,
    /// The image is complete and verified in the inactive slot, not yet pending.
    AfterDownload,
    /// While the record that marks the slot pending is written (temp file written, not renamed).
    PendingWrite,
    /// The slot is pending; the device has not rebooted yet.
    AfterPending,
    /// While the boot loader's switch to the new slot is written (temp file torn).
    SwitchWrite,
    /// The boot loader switched to the new slot; not yet counted as a boot attempt.
    AfterSwitch,
    /// While the boot attempt of the unconfirmed image is counted (temp file torn).
    AttemptWrite,
    /// A boot attempt of the unconfirmed image is counted; the self-check has not finished.
    DuringSelfCheck,
    /// While the confirmation of the new image is written (temp file torn).
    ConfirmWrite,
    /// The new image is confirmed; the report is not sent yet.
    AfterConfirm,
    /// While the rollback to the previous image is written (temp file torn).
    RollbackWrite,
    /// The device rolled back; the report is not sent yet.
    AfterRollback,
}

impl FaultPoint {
    /// Every point, in install order.
    pub const ALL: [FaultPoint; 14] = [
        FaultPoint::AcceptWrite,
        FaultPoint::AfterAccept,
        FaultPoint::MidDownload,
        FaultPoint::AfterDownload,
        FaultPoint::PendingWrite,
        FaultPoint::AfterPending,
        FaultPoint::SwitchWrite,
        FaultPoint::AfterSwitch,
        FaultPoint::AttemptWrite,
        FaultPoint::DuringSelfCheck,
        FaultPoint::ConfirmWrite,
        FaultPoint::AfterConfirm,
        FaultPoint::RollbackWrite,
        FaultPoint::AfterRollback,
    ];

    /// Whether the power is cut while the boot record is rewritten: the new record's temp file
    /// is left torn and never renamed over the previous one.
    pub fn is_torn_write(self) -> bool {
        matches!(
            self,
            FaultPoint::AcceptWrite
                | FaultPoint::PendingWrite
                | FaultPoint::SwitchWrite
                | FaultPoint::AttemptWrite
                | FaultPoint::ConfirmWrite
                | FaultPoint::RollbackWrite
        )
    }

    /// The point's name, as `FWLEDGER_DEVICE_CRASH_AT` takes it.
    pub fn name(self) -> &'static str {
        match self {
            FaultPoint::AcceptWrite => "accept-write",
            FaultPoint::AfterAccept => "after-accept",
            FaultPoint::MidDownload => "mid-download",
            FaultPoint::AfterDownload => "after-download",
            FaultPoint::PendingWrite => "pending-write",
            FaultPoint::AfterPending => "after-pending",
            FaultPoint::SwitchWrite => "switch-write",
            FaultPoint::AfterSwitch => "after-switch",
            FaultPoint::AttemptWrite => "attempt-write",
            FaultPoint::DuringSelfCheck => "during-self-check",
            FaultPoint::ConfirmWrite => "confirm-write",
            FaultPoint::AfterConfirm => "after-confirm",
            FaultPoint::RollbackWrite => "rollback-write",
            FaultPoint::AfterRollback => "after-rollback",
        }
    }
}

impl fmt::Display for FaultPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown fault point name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault point {0:?}")]
pub struct UnknownFaultPoint(pub String);

impl FromStr for FaultPoint {
    type Err = UnknownFaultPoint;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultPoint::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownFaultPoint(s.to_string()))
    }
}

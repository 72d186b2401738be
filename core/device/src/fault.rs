//! Fault-injection points: where a test may cut the power during an install.

use core::fmt;
use core::str::FromStr;

/// A step of an install after which the device may lose power. At every point the next boot
/// runs a verified image: the old one or the new one, never a partial one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultPoint {
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
    /// The boot loader switched to the new slot; not yet counted as a boot attempt.
    AfterSwitch,
    /// A boot attempt of the unconfirmed image is counted; the self-check has not finished.
    DuringSelfCheck,
    /// The new image is confirmed; the report is not sent yet.
    AfterConfirm,
    /// The device rolled back; the report is not sent yet.
    AfterRollback,
}

impl FaultPoint {
    /// Every point, in install order.
    pub const ALL: [FaultPoint; 9] = [
        FaultPoint::AfterAccept,
        FaultPoint::MidDownload,
        FaultPoint::AfterDownload,
        FaultPoint::PendingWrite,
        FaultPoint::AfterPending,
        FaultPoint::AfterSwitch,
        FaultPoint::DuringSelfCheck,
        FaultPoint::AfterConfirm,
        FaultPoint::AfterRollback,
    ];

    /// The point's name, as `FWLEDGER_DEVICE_CRASH_AT` takes it.
    pub fn name(self) -> &'static str {
        match self {
            FaultPoint::AfterAccept => "after-accept",
            FaultPoint::MidDownload => "mid-download",
            FaultPoint::AfterDownload => "after-download",
            FaultPoint::PendingWrite => "pending-write",
            FaultPoint::AfterPending => "after-pending",
            FaultPoint::AfterSwitch => "after-switch",
            FaultPoint::DuringSelfCheck => "during-self-check",
            FaultPoint::AfterConfirm => "after-confirm",
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

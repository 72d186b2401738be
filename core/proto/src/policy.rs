//! The update policy: should this device install this (verified) release?

use core::fmt;

use crate::manifest::Manifest;
use crate::version::Version;

/// What a device knows about itself.
#[derive(Debug, Clone)]
pub struct DeviceState<'a> {
    /// Device model.
    pub model: &'a str,
    /// Hardware revision.
    pub hardware: &'a str,
    /// Installed firmware version.
    pub version: &'a Version,
    /// Highest `security_version` the device has accepted (eFuse `secure_version` on ESP32).
    pub security_version: u64,
}

/// Why a verified release must not be installed on this device.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// Built for another model.
    WrongModel,
    /// Not built for this hardware revision.
    WrongHardware,
    /// Not newer than the installed version.
    NotNewer,
    /// Lower `security_version` than the device holds (rollback attack).
    SecurityVersionRollback {
        /// The release's security version.
        release: u64,
        /// The device's security version.
        device: u64,
    },
    /// The release expired.
    Expired,
    /// The installed version is below the release's prerequisite.
    PrerequisiteNotMet,
}

impl Refusal {
    /// A short stable name of the failed check.
    pub fn check(&self) -> &'static str {
        match self {
            Refusal::WrongModel => "model",
            Refusal::WrongHardware => "hardware",
            Refusal::NotNewer => "version",
            Refusal::SecurityVersionRollback { .. } => "security-version",
            Refusal::Expired => "manifest-expiry",
            Refusal::PrerequisiteNotMet => "prerequisite",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::WrongModel => f.write_str("release is for another model"),
            Refusal::WrongHardware => f.write_str("release does not support this hardware"),
            Refusal::NotNewer => f.write_str("release is not newer than the installed version"),
            Refusal::SecurityVersionRollback { release, device } => write!(
                f,
                "security version {release} is lower than the device's {device}"
            ),
            Refusal::Expired => f.write_str("release expired"),
            Refusal::PrerequisiteNotMet => {
                f.write_str("installed version is below the release's prerequisite")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Refusal {}

/// Decides whether the device should install the release. `now` is `None` without a clock.
pub fn decide(
    manifest: &Manifest,
    device: &DeviceState<'_>,
    now: Option<u64>,
) -> Result<(), Refusal> {
    check(
        manifest,
        &PartialState {
            model: Some(device.model),
            hardware: Some(device.hardware),
            version: Some(device.version),
            security_version: device.security_version,
        },
        now,
    )
}

/// What a verifier knows about the target when it is not the device itself (a gateway choosing
/// devices, the `verify` command): unknown fields are not checked.
#[derive(Debug, Clone, Default)]
pub struct PartialState<'a> {
    /// Device model, if known.
    pub model: Option<&'a str>,
    /// Hardware revision, if known.
    pub hardware: Option<&'a str>,
    /// Installed version, if known.
    pub version: Option<&'a Version>,
    /// Highest accepted `security_version` (0 if unknown).
    pub security_version: u64,
}

/// The policy checks, in order: model, hardware, security version, expiry, newer version,
/// prerequisite. Each check whose input is unknown is skipped.
pub fn check(
    manifest: &Manifest,
    target: &PartialState<'_>,
    now: Option<u64>,
) -> Result<(), Refusal> {
    if target.model.is_some_and(|model| manifest.model != model) {
        return Err(Refusal::WrongModel);
    }
    if target
        .hardware
        .is_some_and(|hw| !manifest.hardware.iter().any(|h| h == hw))
    {
        return Err(Refusal::WrongHardware);
    }
    if manifest.security_version < target.security_version {
        return Err(Refusal::SecurityVersionRollback {
            release: manifest.security_version,
            device: target.security_version,
        });
    }
    if now.is_some_and(|now| manifest.is_expired(now)) {
        return Err(Refusal::Expired);
    }
    if let Some(installed) = target.version {
        if manifest.version <= *installed {
            return Err(Refusal::NotNewer);
        }
        if manifest
            .prerequisite
            .as_ref()
            .is_some_and(|pre| installed < pre)
        {
            return Err(Refusal::PrerequisiteNotMet);
        }
    }
    Ok(())
}

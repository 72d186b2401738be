//! The update policy ("should this device install this verified release?") and version
//! comparisons.

use core::cmp::Ordering;
use core::ffi::{c_char, c_int};

use fwledger_proto::policy::{decide, DeviceState, Refusal};
use fwledger_proto::Version;

use crate::args::{self, Out};
use crate::guard::guard;
use crate::manifest::{clock, fwl_manifest};
use crate::status::{fail, fwl_status, fwl_status::*, Outcome};

fn parse_version(text: &str, what: &str) -> Outcome<Version> {
    text.parse().map_err(|_| {
        fail(
            FWL_ERR_MALFORMED,
            &format_args!("`{what}` ({text:?}) is not a semantic version"),
        )
    })
}

/// Decides whether this device should install a verified release. Returns `FWL_OK` to install,
/// or the reason not to, first failure wins (`docs/PROTOCOL.md` §7): `FWL_ERR_WRONG_MODEL`,
/// `FWL_ERR_WRONG_HARDWARE`, `FWL_ERR_SECURITY_VERSION_ROLLBACK`, `FWL_ERR_MANIFEST_EXPIRED`
/// (only when `now` is not 0), `FWL_ERR_NOT_NEWER`, `FWL_ERR_PREREQUISITE_NOT_MET`. Argument
/// errors: `FWL_ERR_NULL`, `FWL_ERR_INVALID_ARGUMENT` (a string that is not UTF-8),
/// `FWL_ERR_MALFORMED` (`installed_version` is not a semantic version).
///
/// - `model`, `hardware`: the device's model and hardware revision (NUL-terminated UTF-8).
/// - `installed_version`: the running firmware's semantic version.
/// - `device_security_version`: the highest `security_version` the device has accepted (its
///   eFuse `secure_version` on ESP32).
/// - `now`: Unix seconds from a trusted clock, or 0 when the device has none.
///
/// After installing, the device raises its stored security version to the manifest's
/// (`fwl_manifest_security_version`) and its minimum key generation to
/// `fwl_manifest_key_generation`.
///
/// Ownership: all arguments are only read during the call.
/// Thread-safety: safe to call from several threads at once, also on one manifest.
///
/// # Safety
///
/// `manifest` must be NULL or a live handle from this library; each string must be NULL or
/// NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn fwl_policy_decide(
    manifest: *const fwl_manifest,
    model: *const c_char,
    hardware: *const c_char,
    installed_version: *const c_char,
    device_security_version: u64,
    now: u64,
) -> fwl_status {
    guard("fwl_policy_decide", || {
        // SAFETY: NULL or a live handle (caller contract).
        let m = unsafe { args::handle(manifest, "manifest") }?;
        // SAFETY: NULL or NUL-terminated strings (caller contract).
        let (model, hardware, installed) = unsafe {
            (
                args::text(model, "model")?,
                args::text(hardware, "hardware")?,
                args::text(installed_version, "installed_version")?,
            )
        };
        let installed = parse_version(installed, "installed_version")?;
        let device = DeviceState {
            model,
            hardware,
            version: &installed,
            security_version: device_security_version,
        };
        Ok(decide(&m.verified.manifest, &device, clock(now))?)
    })
}

/// Anti-rollback check alone: `FWL_OK` if the release's `security_version` is at least
/// `device_security_version`, else `FWL_ERR_SECURITY_VERSION_ROLLBACK`. (`fwl_policy_decide`
/// includes this check.)
///
/// Ownership: `manifest` is borrowed for the call.
/// Thread-safety: any number of threads may read one manifest at once.
///
/// # Safety
///
/// `manifest` must be NULL or a live handle from this library.
#[no_mangle]
pub unsafe extern "C" fn fwl_manifest_check_security_version(
    manifest: *const fwl_manifest,
    device_security_version: u64,
) -> fwl_status {
    guard("fwl_manifest_check_security_version", || {
        // SAFETY: NULL or a live handle (caller contract).
        let m = unsafe { args::handle(manifest, "manifest") }?;
        let release = m.verified.manifest.security_version;
        if release < device_security_version {
            return Err(Refusal::SecurityVersionRollback {
                release,
                device: device_security_version,
            }
            .into());
        }
        Ok(())
    })
}

/// Compares two semantic versions by SemVer 2.0 precedence (build metadata ignored) and writes
/// -1, 0 or 1 to `*out` as `a` is lower than, equal to or higher than `b`. A string that is not
/// a semantic version is `FWL_ERR_MALFORMED`.
///
/// Ownership: the strings are only read during the call; `*out` is the caller's.
/// Thread-safety: safe from any thread.
///
/// # Safety
///
/// `a` and `b` must be NULL or NUL-terminated; `out` must be NULL or valid for writing an `int`.
#[no_mangle]
pub unsafe extern "C" fn fwl_version_compare(
    a: *const c_char,
    b: *const c_char,
    out: *mut c_int,
) -> fwl_status {
    guard("fwl_version_compare", || {
        // SAFETY: NULL or NUL-terminated strings (caller contract).
        let (a, b) = unsafe { (args::text(a, "a")?, args::text(b, "b")?) };
        let out = Out::new(out, "out")?;
        let order = parse_version(a, "a")?.cmp(&parse_version(b, "b")?);
        let value = match order {
            Ordering::Less => -1,
            Ordering::Equal => 0,
            Ordering::Greater => 1,
        };
        // SAFETY: `out` is valid for writes (caller contract).
        unsafe { out.set(value) };
        Ok(())
    })
}

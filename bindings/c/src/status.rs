//! Status codes, their names, and how protocol errors map onto them.

use core::ffi::{c_char, c_int, CStr};
use core::fmt;

use fwledger_proto::cbor::DecodeError;
use fwledger_proto::{ImageError, ManifestError, Refusal};

use crate::guard::guard_value;
use crate::last_error;

/// What a call did. Every fallible function returns one; `FWL_OK` is 0, every failure is
/// non-zero.
///
/// Codes are grouped: 1–9 misuse of the API by the caller, 10–19 manifest and notice
/// verification, 20–29 the image, 30–39 the update policy, 99 a bug in the library. Values are
/// part of the ABI and never change; new codes may be added.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum fwl_status {
    /// Success.
    FWL_OK = 0,
    /// A required pointer argument was NULL.
    FWL_ERR_NULL = 1,
    /// The caller's output buffer is too small; nothing useful was written (the required length
    /// is reported where the function has an `out_len` argument).
    FWL_ERR_BUFFER_TOO_SMALL = 2,
    /// An argument has the wrong length or value (key length, index out of range, a string that
    /// is not UTF-8, a verifier that was not initialised or is already finished, …).
    FWL_ERR_INVALID_ARGUMENT = 3,
    /// The manifest is not well-formed (COSE, CBOR or a field), or a version string is not a
    /// semantic version.
    FWL_ERR_MALFORMED = 10,
    /// The manifest is signed with an algorithm other than EdDSA.
    FWL_ERR_UNSUPPORTED_ALGORITHM = 11,
    /// The release key is not certified by the trusted vendor root key (or no certificate is
    /// attached).
    FWL_ERR_KEY_NOT_CERTIFIED = 12,
    /// The release key is certified, but for another role than signing releases.
    FWL_ERR_KEY_WRONG_ROLE = 13,
    /// The release key's certificate was not valid when the manifest was issued, or is not valid
    /// now.
    FWL_ERR_KEY_EXPIRED = 14,
    /// The release key's generation is below the minimum the device accepts (a retired key).
    FWL_ERR_KEY_RETIRED = 15,
    /// The manifest signature does not verify under the certified release key.
    FWL_ERR_BAD_SIGNATURE = 16,
    /// The manifest names another vendor root key than the trusted one.
    FWL_ERR_WRONG_VENDOR = 17,
    /// The manifest has expired.
    FWL_ERR_MANIFEST_EXPIRED = 18,
    /// The notice (the gateway's envelope around a manifest) is not well-formed.
    FWL_ERR_NOTICE_MALFORMED = 19,
    /// More image bytes arrived than the manifest states (endless-data attack).
    FWL_ERR_IMAGE_TOO_LONG = 20,
    /// The image ended before the size the manifest states.
    FWL_ERR_IMAGE_TRUNCATED = 21,
    /// The image's SHA-256 differs from the manifest's.
    FWL_ERR_IMAGE_DIGEST_MISMATCH = 22,
    /// The release is built for another device model.
    FWL_ERR_WRONG_MODEL = 30,
    /// The release does not support this hardware revision.
    FWL_ERR_WRONG_HARDWARE = 31,
    /// The release is not newer than the installed version.
    FWL_ERR_NOT_NEWER = 32,
    /// The release's security version is below the device's (rollback attack).
    FWL_ERR_SECURITY_VERSION_ROLLBACK = 33,
    /// The installed version is below the release's prerequisite version.
    FWL_ERR_PREREQUISITE_NOT_MET = 34,
    /// A bug in the library (a caught panic); the detailed message says where.
    FWL_ERR_INTERNAL = 99,
}

use fwl_status::*;

/// Every status, in declaration order. `from_code` relies on it: keep it in step with the enum.
const ALL: [fwl_status; 23] = [
    FWL_OK,
    FWL_ERR_NULL,
    FWL_ERR_BUFFER_TOO_SMALL,
    FWL_ERR_INVALID_ARGUMENT,
    FWL_ERR_MALFORMED,
    FWL_ERR_UNSUPPORTED_ALGORITHM,
    FWL_ERR_KEY_NOT_CERTIFIED,
    FWL_ERR_KEY_WRONG_ROLE,
    FWL_ERR_KEY_EXPIRED,
    FWL_ERR_KEY_RETIRED,
    FWL_ERR_BAD_SIGNATURE,
    FWL_ERR_WRONG_VENDOR,
    FWL_ERR_MANIFEST_EXPIRED,
    FWL_ERR_NOTICE_MALFORMED,
    FWL_ERR_IMAGE_TOO_LONG,
    FWL_ERR_IMAGE_TRUNCATED,
    FWL_ERR_IMAGE_DIGEST_MISMATCH,
    FWL_ERR_WRONG_MODEL,
    FWL_ERR_WRONG_HARDWARE,
    FWL_ERR_NOT_NEWER,
    FWL_ERR_SECURITY_VERSION_ROLLBACK,
    FWL_ERR_PREREQUISITE_NOT_MET,
    FWL_ERR_INTERNAL,
];

impl fwl_status {
    /// Every status code, in declaration order.
    pub fn all() -> &'static [fwl_status] {
        &ALL
    }

    /// The status with this numeric code, if there is one.
    pub fn from_code(code: c_int) -> Option<fwl_status> {
        ALL.iter().copied().find(|s| *s as c_int == code)
    }

    /// A one-line description.
    pub fn description(self) -> &'static CStr {
        match self {
            FWL_OK => c"success",
            FWL_ERR_NULL => c"a required pointer argument is NULL",
            FWL_ERR_BUFFER_TOO_SMALL => c"output buffer too small",
            FWL_ERR_INVALID_ARGUMENT => c"invalid argument",
            FWL_ERR_MALFORMED => c"malformed manifest",
            FWL_ERR_UNSUPPORTED_ALGORITHM => c"unsupported signature algorithm",
            FWL_ERR_KEY_NOT_CERTIFIED => c"release key not certified by the vendor root key",
            FWL_ERR_KEY_WRONG_ROLE => c"key not certified for signing releases",
            FWL_ERR_KEY_EXPIRED => c"release key certificate expired",
            FWL_ERR_KEY_RETIRED => c"release key generation retired",
            FWL_ERR_BAD_SIGNATURE => c"manifest signature invalid",
            FWL_ERR_WRONG_VENDOR => c"manifest belongs to another vendor key",
            FWL_ERR_MANIFEST_EXPIRED => c"manifest expired",
            FWL_ERR_NOTICE_MALFORMED => c"malformed notice",
            FWL_ERR_IMAGE_TOO_LONG => c"image longer than the manifest states",
            FWL_ERR_IMAGE_TRUNCATED => c"image shorter than the manifest states",
            FWL_ERR_IMAGE_DIGEST_MISMATCH => c"image SHA-256 does not match the manifest",
            FWL_ERR_WRONG_MODEL => c"release is for another model",
            FWL_ERR_WRONG_HARDWARE => c"release does not support this hardware",
            FWL_ERR_NOT_NEWER => c"release is not newer than the installed version",
            FWL_ERR_SECURITY_VERSION_ROLLBACK => c"security version rollback",
            FWL_ERR_PREREQUISITE_NOT_MET => c"installed version below the release's prerequisite",
            FWL_ERR_INTERNAL => c"internal error",
        }
    }

    /// The protocol's stable check name (`docs/PROTOCOL.md` §13), as `check()` returns it in the
    /// Rust crates and as the test vectors and status reports use it.
    pub fn check(self) -> &'static CStr {
        match self {
            FWL_OK => c"ok",
            FWL_ERR_NULL | FWL_ERR_BUFFER_TOO_SMALL | FWL_ERR_INVALID_ARGUMENT => c"argument",
            FWL_ERR_MALFORMED => c"manifest-format",
            FWL_ERR_UNSUPPORTED_ALGORITHM => c"signature-algorithm",
            FWL_ERR_KEY_NOT_CERTIFIED => c"release-key-certificate",
            FWL_ERR_KEY_WRONG_ROLE => c"release-key-role",
            FWL_ERR_KEY_EXPIRED => c"release-key-expiry",
            FWL_ERR_KEY_RETIRED => c"release-key-generation",
            FWL_ERR_BAD_SIGNATURE => c"manifest-signature",
            FWL_ERR_WRONG_VENDOR => c"vendor-key",
            FWL_ERR_MANIFEST_EXPIRED => c"manifest-expiry",
            FWL_ERR_NOTICE_MALFORMED => c"notice-format",
            FWL_ERR_IMAGE_TOO_LONG | FWL_ERR_IMAGE_TRUNCATED => c"image-size",
            FWL_ERR_IMAGE_DIGEST_MISMATCH => c"image-sha256",
            FWL_ERR_WRONG_MODEL => c"model",
            FWL_ERR_WRONG_HARDWARE => c"hardware",
            FWL_ERR_NOT_NEWER => c"version",
            FWL_ERR_SECURITY_VERSION_ROLLBACK => c"security-version",
            FWL_ERR_PREREQUISITE_NOT_MET => c"prerequisite",
            FWL_ERR_INTERNAL => c"internal",
        }
    }
}

/// A failed call: its status. The detailed message went to the thread's last-error slot when
/// the failure was made (see `last_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Failure(pub(crate) fwl_status);

pub(crate) type Outcome<T = ()> = Result<T, Failure>;

/// Records `detail` as this thread's last error and returns the failure.
pub(crate) fn fail(status: fwl_status, detail: &dyn fmt::Display) -> Failure {
    last_error::record(detail);
    Failure(status)
}

impl From<ManifestError> for Failure {
    fn from(e: ManifestError) -> Self {
        let status = match e {
            ManifestError::Malformed(_) => FWL_ERR_MALFORMED,
            ManifestError::UnsupportedAlgorithm => FWL_ERR_UNSUPPORTED_ALGORITHM,
            ManifestError::MissingCertificate | ManifestError::KeyNotCertified => {
                FWL_ERR_KEY_NOT_CERTIFIED
            }
            ManifestError::KeyWrongRole => FWL_ERR_KEY_WRONG_ROLE,
            ManifestError::KeyExpired { .. } => FWL_ERR_KEY_EXPIRED,
            ManifestError::KeyRetired { .. } => FWL_ERR_KEY_RETIRED,
            ManifestError::BadSignature => FWL_ERR_BAD_SIGNATURE,
            ManifestError::WrongVendor => FWL_ERR_WRONG_VENDOR,
            ManifestError::Expired { .. } => FWL_ERR_MANIFEST_EXPIRED,
            // Non-exhaustive: a check added to the core but not mapped here is a bug of this
            // crate, reported as such (the call still fails closed).
            _ => FWL_ERR_INTERNAL,
        };
        fail(status, &e)
    }
}

impl From<ImageError> for Failure {
    fn from(e: ImageError) -> Self {
        let status = match e {
            ImageError::TooLong { .. } => FWL_ERR_IMAGE_TOO_LONG,
            ImageError::Truncated { .. } => FWL_ERR_IMAGE_TRUNCATED,
            ImageError::DigestMismatch => FWL_ERR_IMAGE_DIGEST_MISMATCH,
            _ => FWL_ERR_INTERNAL,
        };
        fail(status, &e)
    }
}

impl From<Refusal> for Failure {
    fn from(e: Refusal) -> Self {
        let status = match e {
            Refusal::WrongModel => FWL_ERR_WRONG_MODEL,
            Refusal::WrongHardware => FWL_ERR_WRONG_HARDWARE,
            Refusal::NotNewer => FWL_ERR_NOT_NEWER,
            Refusal::SecurityVersionRollback { .. } => FWL_ERR_SECURITY_VERSION_ROLLBACK,
            Refusal::Expired => FWL_ERR_MANIFEST_EXPIRED,
            Refusal::PrerequisiteNotMet => FWL_ERR_PREREQUISITE_NOT_MET,
            _ => FWL_ERR_INTERNAL,
        };
        fail(status, &e)
    }
}

/// A notice that does not decode.
pub(crate) struct NoticeError(pub(crate) DecodeError);

impl fmt::Display for NoticeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed notice: {}", self.0)
    }
}

impl From<NoticeError> for Failure {
    fn from(e: NoticeError) -> Self {
        fail(FWL_ERR_NOTICE_MALFORMED, &e)
    }
}

/// A static, NUL-terminated description of a status code, e.g. `"manifest signature invalid"`.
///
/// Takes an `int` so that any value is safe to pass: a code that is not a `fwl_status` gives
/// `"unknown status"`. Never returns NULL. The string is static: do not free it.
///
/// Thread-safety: safe from any thread.
#[no_mangle]
pub extern "C" fn fwl_status_str(status: c_int) -> *const c_char {
    guard_value(c"internal error".as_ptr(), || {
        fwl_status::from_code(status)
            .map_or(c"unknown status", fwl_status::description)
            .as_ptr()
    })
}

/// The protocol's stable name of the check a status stands for, as in `docs/PROTOCOL.md` §13 and
/// the shared test vectors: `"manifest-signature"`, `"image-size"`, `"model"`, … (`"ok"` for
/// `FWL_OK`, `"argument"` for API misuse, `"internal"`, and `"unknown"` for a code that is not a
/// `fwl_status`). Devices report it to the gateway as the `reason` of a failed update.
///
/// Never returns NULL. The string is static: do not free it.
///
/// Thread-safety: safe from any thread.
#[no_mangle]
pub extern "C" fn fwl_status_check(status: c_int) -> *const c_char {
    guard_value(c"internal".as_ptr(), || {
        fwl_status::from_code(status)
            .map_or(c"unknown", fwl_status::check)
            .as_ptr()
    })
}

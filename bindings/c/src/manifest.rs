//! `fwl_manifest`: a release manifest whose signature chain verified, and its fields.

use alloc::boxed::Box;
use core::ffi::c_char;

use fwledger_proto::ed25519_dalek::VerifyingKey;
use fwledger_proto::manifest::{verify_manifest, Manifest, TrustAnchor, VerifiedManifest};

use crate::args::{self, Out};
use crate::guard::{guard, guard_value};
use crate::status::{fail, fwl_status, fwl_status::*, Outcome};

/// Length of an Ed25519 public key (the vendor root key), in bytes.
pub const FWL_PUBLIC_KEY_LEN: usize = 32;
/// Length of a SHA-256 digest, in bytes.
pub const FWL_SHA256_LEN: usize = 32;

/// A verified release manifest (opaque). Made by `fwl_manifest_verify` or `fwl_notice_verify`,
/// released with `fwl_manifest_free`. It is immutable: any number of threads may read it at once.
pub struct fwl_manifest {
    pub(crate) verified: VerifiedManifest,
}

impl fwl_manifest {
    fn manifest(&self) -> &Manifest {
        &self.verified.manifest
    }
}

/// `0` means "no trusted clock".
pub(crate) fn clock(now: u64) -> Option<u64> {
    (now != 0).then_some(now)
}

/// The device's trust anchor from the raw root key bytes.
pub(crate) fn trust_anchor(key: &[u8], min_key_generation: u64) -> Outcome<TrustAnchor> {
    let bytes: &[u8; FWL_PUBLIC_KEY_LEN] = key.try_into().map_err(|_| {
        fail(
            FWL_ERR_INVALID_ARGUMENT,
            &format_args!(
                "the vendor key is {} bytes, an Ed25519 public key is {FWL_PUBLIC_KEY_LEN}",
                key.len()
            ),
        )
    })?;
    let root = VerifyingKey::from_bytes(bytes).map_err(|_| {
        fail(
            FWL_ERR_INVALID_ARGUMENT,
            &"the vendor key is not a valid Ed25519 public key",
        )
    })?;
    Ok(TrustAnchor {
        root,
        min_key_generation,
    })
}

/// Verifies a signed manifest into a new handle.
pub(crate) fn verify(signed: &[u8], trust: &TrustAnchor, now: u64) -> Outcome<Box<fwl_manifest>> {
    let verified = verify_manifest(signed, trust, clock(now))?;
    Ok(Box::new(fwl_manifest { verified }))
}

/// Verifies a signed release manifest (COSE_Sign1) against the vendor root public key and, on
/// success, returns it as a new `fwl_manifest` in `*out`.
///
/// Checks, first failure wins (`docs/PROTOCOL.md` §5.1): the COSE structure
/// (`FWL_ERR_MALFORMED`) and algorithm (`FWL_ERR_UNSUPPORTED_ALGORITHM`); the release-key
/// certificate chains to `vendor_key` (`FWL_ERR_KEY_NOT_CERTIFIED`) for the release role
/// (`FWL_ERR_KEY_WRONG_ROLE`) with a generation `>= min_key_generation` (`FWL_ERR_KEY_RETIRED`);
/// the manifest signature (`FWL_ERR_BAD_SIGNATURE`); the payload (`FWL_ERR_MALFORMED`); the
/// certificate's validity at issue time and at `now` (`FWL_ERR_KEY_EXPIRED`); the vendor key
/// binding (`FWL_ERR_WRONG_VENDOR`); the manifest's expiry at `now`
/// (`FWL_ERR_MANIFEST_EXPIRED`).
///
/// - `cose`, `cose_len`: the signed manifest bytes.
/// - `vendor_key`, `vendor_key_len`: the trusted vendor root public key, `FWL_PUBLIC_KEY_LEN`
///   (32) bytes; another length or an invalid key is `FWL_ERR_INVALID_ARGUMENT`.
/// - `min_key_generation`: the highest release-key generation the device has accepted (0 if
///   none); lower generations are retired.
/// - `now`: Unix seconds from a trusted clock, or 0 when the device has none (time checks other
///   than the issue-time validity of the certificate are then skipped).
///
/// Ownership: the inputs are only read during the call and stay the caller's. On success
/// `*out` owns a new manifest that the caller releases with `fwl_manifest_free`; on failure
/// `*out` is set to NULL (when `out` is not NULL).
///
/// Thread-safety: safe to call from several threads at once.
///
/// # Safety
///
/// `cose` must point to `cose_len` readable bytes, `vendor_key` to `vendor_key_len` readable
/// bytes, and `out` must be valid for writing a pointer (each may be NULL, which is refused).
#[no_mangle]
pub unsafe extern "C" fn fwl_manifest_verify(
    cose: *const u8,
    cose_len: usize,
    vendor_key: *const u8,
    vendor_key_len: usize,
    min_key_generation: u64,
    now: u64,
    out: *mut *mut fwl_manifest,
) -> fwl_status {
    guard("fwl_manifest_verify", || {
        let out = Out::new(out, "out")?;
        // SAFETY: `out` is valid for writes (caller contract); NULL until verification succeeds.
        unsafe { out.set(core::ptr::null_mut()) };
        // SAFETY: pointer and length describe readable bytes (caller contract).
        let signed = unsafe { args::bytes(cose, cose_len, "cose") }?;
        // SAFETY: as above.
        let key = unsafe { args::bytes(vendor_key, vendor_key_len, "vendor_key") }?;
        let trust = trust_anchor(key, min_key_generation)?;
        let manifest = verify(signed, &trust, now)?;
        // SAFETY: as above.
        unsafe { out.set(Box::into_raw(manifest)) };
        Ok(())
    })
}

/// Releases a manifest. NULL is accepted and does nothing.
///
/// Ownership: takes back the manifest made by `fwl_manifest_verify` or `fwl_notice_verify`; the
/// handle must not be used afterwards.
/// Thread-safety: no other thread may be using the manifest.
///
/// # Safety
///
/// `manifest` must be NULL or a live handle from this library, released only once.
#[no_mangle]
pub unsafe extern "C" fn fwl_manifest_free(manifest: *mut fwl_manifest) {
    guard_value((), || {
        if !manifest.is_null() {
            // SAFETY: a non-NULL handle came from `Box::into_raw` in this library and is released
            // once (caller contract).
            drop(unsafe { Box::from_raw(manifest) });
        }
    })
}

/// Copies the vendor's name (informational: trust comes from the vendor key) into `buf`.
///
/// Text output: writes at most `buf_len` bytes including the terminating NUL. `*out_len`
/// (optional, may be NULL) receives the length without the NUL, also when the result is
/// `FWL_ERR_BUFFER_TOO_SMALL` (then `buf` holds an empty string), so a caller may first ask with
/// `buf` NULL and `buf_len` 0.
///
/// Ownership: `manifest` is borrowed for the call; `buf` and `out_len` stay the caller's.
/// Thread-safety: any number of threads may read one manifest at once.
///
/// # Safety
///
/// `manifest` must be NULL or a live handle from this library; `buf` must point to `buf_len`
/// writable bytes (or be NULL with `buf_len` 0); `out_len` must be NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn fwl_manifest_vendor(
    manifest: *const fwl_manifest,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> fwl_status {
    guard("fwl_manifest_vendor", || {
        // SAFETY: NULL or a live handle (caller contract).
        let m = unsafe { args::handle(manifest, "manifest") }?;
        // SAFETY: `buf`/`buf_len`/`out_len` as documented (caller contract).
        unsafe { args::copy_text(&m.manifest().vendor, buf, buf_len, out_len) }
    })
}

/// Copies the device model the release is built for into `buf`.
///
/// Text output: writes at most `buf_len` bytes including the terminating NUL. `*out_len`
/// (optional, may be NULL) receives the length without the NUL, also when the result is
/// `FWL_ERR_BUFFER_TOO_SMALL` (then `buf` holds an empty string), so a caller may first ask with
/// `buf` NULL and `buf_len` 0.
///
/// Ownership: `manifest` is borrowed for the call; `buf` and `out_len` stay the caller's.
/// Thread-safety: any number of threads may read one manifest at once.
///
/// # Safety
///
/// `manifest` must be NULL or a live handle from this library; `buf` must point to `buf_len`
/// writable bytes (or be NULL with `buf_len` 0); `out_len` must be NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn fwl_manifest_model(
    manifest: *const fwl_manifest,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> fwl_status {
    guard("fwl_manifest_model", || {
        // SAFETY: NULL or a live handle (caller contract).
        let m = unsafe { args::handle(manifest, "manifest") }?;
        // SAFETY: `buf`/`buf_len`/`out_len` as documented (caller contract).
        unsafe { args::copy_text(&m.manifest().model, buf, buf_len, out_len) }
    })
}

/// Copies the release's semantic version, as the vendor wrote it into `buf`.
///
/// Text output: writes at most `buf_len` bytes including the terminating NUL. `*out_len`
/// (optional, may be NULL) receives the length without the NUL, also when the result is
/// `FWL_ERR_BUFFER_TOO_SMALL` (then `buf` holds an empty string), so a caller may first ask with
/// `buf` NULL and `buf_len` 0.
///
/// Ownership: `manifest` is borrowed for the call; `buf` and `out_len` stay the caller's.
/// Thread-safety: any number of threads may read one manifest at once.
///
/// # Safety
///
/// `manifest` must be NULL or a live handle from this library; `buf` must point to `buf_len`
/// writable bytes (or be NULL with `buf_len` 0); `out_len` must be NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn fwl_manifest_version(
    manifest: *const fwl_manifest,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> fwl_status {
    guard("fwl_manifest_version", || {
        // SAFETY: NULL or a live handle (caller contract).
        let m = unsafe { args::handle(manifest, "manifest") }?;
        // SAFETY: `buf`/`buf_len`/`out_len` as documented (caller contract).
        unsafe { args::copy_text(m.manifest().version.as_str(), buf, buf_len, out_len) }
    })
}

/// Copies the IPFS CID of the image (a DAG hash, not the file's SHA-256) into `buf`.
///
/// Text output: writes at most `buf_len` bytes including the terminating NUL. `*out_len`
/// (optional, may be NULL) receives the length without the NUL, also when the result is
/// `FWL_ERR_BUFFER_TOO_SMALL` (then `buf` holds an empty string), so a caller may first ask with
/// `buf` NULL and `buf_len` 0.
///
/// Ownership: `manifest` is borrowed for the call; `buf` and `out_len` stay the caller's.
/// Thread-safety: any number of threads may read one manifest at once.
///
/// # Safety
///
/// `manifest` must be NULL or a live handle from this library; `buf` must point to `buf_len`
/// writable bytes (or be NULL with `buf_len` 0); `out_len` must be NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn fwl_manifest_cid(
    manifest: *const fwl_manifest,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> fwl_status {
    guard("fwl_manifest_cid", || {
        // SAFETY: NULL or a live handle (caller contract).
        let m = unsafe { args::handle(manifest, "manifest") }?;
        // SAFETY: `buf`/`buf_len`/`out_len` as documented (caller contract).
        unsafe { args::copy_text(&m.manifest().cid, buf, buf_len, out_len) }
    })
}

/// Copies the minimum installed version the release requires, or an empty string when it has none into `buf`.
///
/// Text output: writes at most `buf_len` bytes including the terminating NUL. `*out_len`
/// (optional, may be NULL) receives the length without the NUL, also when the result is
/// `FWL_ERR_BUFFER_TOO_SMALL` (then `buf` holds an empty string), so a caller may first ask with
/// `buf` NULL and `buf_len` 0.
///
/// Ownership: `manifest` is borrowed for the call; `buf` and `out_len` stay the caller's.
/// Thread-safety: any number of threads may read one manifest at once.
///
/// # Safety
///
/// `manifest` must be NULL or a live handle from this library; `buf` must point to `buf_len`
/// writable bytes (or be NULL with `buf_len` 0); `out_len` must be NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn fwl_manifest_prerequisite(
    manifest: *const fwl_manifest,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> fwl_status {
    guard("fwl_manifest_prerequisite", || {
        // SAFETY: NULL or a live handle (caller contract).
        let m = unsafe { args::handle(manifest, "manifest") }?;
        // SAFETY: `buf`/`buf_len`/`out_len` as documented (caller contract).
        unsafe {
            args::copy_text(
                m.manifest()
                    .prerequisite
                    .as_ref()
                    .map_or("", |v| v.as_str()),
                buf,
                buf_len,
                out_len,
            )
        }
    })
}

/// Copies the release notes, or an empty string when there are none into `buf`.
///
/// Text output: writes at most `buf_len` bytes including the terminating NUL. `*out_len`
/// (optional, may be NULL) receives the length without the NUL, also when the result is
/// `FWL_ERR_BUFFER_TOO_SMALL` (then `buf` holds an empty string), so a caller may first ask with
/// `buf` NULL and `buf_len` 0.
///
/// Ownership: `manifest` is borrowed for the call; `buf` and `out_len` stay the caller's.
/// Thread-safety: any number of threads may read one manifest at once.
///
/// # Safety
///
/// `manifest` must be NULL or a live handle from this library; `buf` must point to `buf_len`
/// writable bytes (or be NULL with `buf_len` 0); `out_len` must be NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn fwl_manifest_notes(
    manifest: *const fwl_manifest,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> fwl_status {
    guard("fwl_manifest_notes", || {
        // SAFETY: NULL or a live handle (caller contract).
        let m = unsafe { args::handle(manifest, "manifest") }?;
        // SAFETY: `buf`/`buf_len`/`out_len` as documented (caller contract).
        unsafe {
            args::copy_text(
                m.manifest().notes.as_deref().unwrap_or_default(),
                buf,
                buf_len,
                out_len,
            )
        }
    })
}

/// Writes the release's anti-rollback counter (`security_version`) to `*out`.
///
/// Ownership: `manifest` is borrowed for the call; `*out` is the caller's.
/// Thread-safety: any number of threads may read one manifest at once.
///
/// # Safety
///
/// `manifest` must be NULL or a live handle from this library; `out` must be NULL or valid for
/// writing a `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn fwl_manifest_security_version(
    manifest: *const fwl_manifest,
    out: *mut u64,
) -> fwl_status {
    guard("fwl_manifest_security_version", || {
        // SAFETY: NULL or a live handle (caller contract).
        let m = unsafe { args::handle(manifest, "manifest") }?;
        let out = Out::new(out, "out")?;
        // SAFETY: `out` is valid for writes (caller contract).
        unsafe { out.set(m.manifest().security_version) };
        Ok(())
    })
}

/// Writes the exact image size in bytes to `*out`.
///
/// Ownership: `manifest` is borrowed for the call; `*out` is the caller's.
/// Thread-safety: any number of threads may read one manifest at once.
///
/// # Safety
///
/// `manifest` must be NULL or a live handle from this library; `out` must be NULL or valid for
/// writing a `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn fwl_manifest_size(
    manifest: *const fwl_manifest,
    out: *mut u64,
) -> fwl_status {
    guard("fwl_manifest_size", || {
        // SAFETY: NULL or a live handle (caller contract).
        let m = unsafe { args::handle(manifest, "manifest") }?;
        let out = Out::new(out, "out")?;
        // SAFETY: `out` is valid for writes (caller contract).
        unsafe { out.set(m.manifest().size) };
        Ok(())
    })
}

/// Writes the issue time, Unix seconds to `*out`.
///
/// Ownership: `manifest` is borrowed for the call; `*out` is the caller's.
/// Thread-safety: any number of threads may read one manifest at once.
///
/// # Safety
///
/// `manifest` must be NULL or a live handle from this library; `out` must be NULL or valid for
/// writing a `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn fwl_manifest_issued(
    manifest: *const fwl_manifest,
    out: *mut u64,
) -> fwl_status {
    guard("fwl_manifest_issued", || {
        // SAFETY: NULL or a live handle (caller contract).
        let m = unsafe { args::handle(manifest, "manifest") }?;
        let out = Out::new(out, "out")?;
        // SAFETY: `out` is valid for writes (caller contract).
        unsafe { out.set(m.manifest().issued) };
        Ok(())
    })
}

/// Writes the expiry time, Unix seconds, or 0 when the release does not expire to `*out`.
///
/// Ownership: `manifest` is borrowed for the call; `*out` is the caller's.
/// Thread-safety: any number of threads may read one manifest at once.
///
/// # Safety
///
/// `manifest` must be NULL or a live handle from this library; `out` must be NULL or valid for
/// writing a `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn fwl_manifest_expires(
    manifest: *const fwl_manifest,
    out: *mut u64,
) -> fwl_status {
    guard("fwl_manifest_expires", || {
        // SAFETY: NULL or a live handle (caller contract).
        let m = unsafe { args::handle(manifest, "manifest") }?;
        let out = Out::new(out, "out")?;
        // SAFETY: `out` is valid for writes (caller contract).
        unsafe { out.set(m.manifest().expires.unwrap_or(0)) };
        Ok(())
    })
}

/// Writes the generation of the release key that signed the manifest. After installing the release, a device raises its stored minimum key generation (`min_key_generation` of `fwl_manifest_verify`) to this value to `*out`.
///
/// Ownership: `manifest` is borrowed for the call; `*out` is the caller's.
/// Thread-safety: any number of threads may read one manifest at once.
///
/// # Safety
///
/// `manifest` must be NULL or a live handle from this library; `out` must be NULL or valid for
/// writing a `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn fwl_manifest_key_generation(
    manifest: *const fwl_manifest,
    out: *mut u64,
) -> fwl_status {
    guard("fwl_manifest_key_generation", || {
        // SAFETY: NULL or a live handle (caller contract).
        let m = unsafe { args::handle(manifest, "manifest") }?;
        let out = Out::new(out, "out")?;
        // SAFETY: `out` is valid for writes (caller contract).
        unsafe { out.set(m.verified.certificate.generation) };
        Ok(())
    })
}

/// Copies the SHA-256 of the image (`FWL_SHA256_LEN` = 32 bytes) into `buf`, which must hold at
/// least 32 bytes (`FWL_ERR_BUFFER_TOO_SMALL` otherwise).
///
/// Ownership: `manifest` is borrowed for the call; `buf` stays the caller's.
/// Thread-safety: any number of threads may read one manifest at once.
///
/// # Safety
///
/// `manifest` must be NULL or a live handle from this library; `buf` must be NULL or point to
/// `buf_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn fwl_manifest_sha256(
    manifest: *const fwl_manifest,
    buf: *mut u8,
    buf_len: usize,
) -> fwl_status {
    guard("fwl_manifest_sha256", || {
        // SAFETY: NULL or a live handle (caller contract).
        let m = unsafe { args::handle(manifest, "manifest") }?;
        // SAFETY: `buf`/`buf_len` as documented (caller contract).
        unsafe { args::copy_bytes(&m.manifest().sha256, buf, buf_len) }
    })
}

/// Writes the number of hardware revisions the release supports (at least 1) to `*out`.
///
/// Ownership: `manifest` is borrowed for the call; `*out` is the caller's.
/// Thread-safety: any number of threads may read one manifest at once.
///
/// # Safety
///
/// `manifest` must be NULL or a live handle from this library; `out` must be NULL or valid for
/// writing a `size_t`.
#[no_mangle]
pub unsafe extern "C" fn fwl_manifest_hardware_count(
    manifest: *const fwl_manifest,
    out: *mut usize,
) -> fwl_status {
    guard("fwl_manifest_hardware_count", || {
        // SAFETY: NULL or a live handle (caller contract).
        let m = unsafe { args::handle(manifest, "manifest") }?;
        let out = Out::new(out, "out")?;
        // SAFETY: `out` is valid for writes (caller contract).
        unsafe { out.set(m.manifest().hardware.len()) };
        Ok(())
    })
}

/// Copies the hardware revision at `index` (0 ≤ `index` < `fwl_manifest_hardware_count`) into
/// `buf`; an index out of range is `FWL_ERR_INVALID_ARGUMENT`.
///
/// Text output: writes at most `buf_len` bytes including the terminating NUL. `*out_len`
/// (optional, may be NULL) receives the length without the NUL, also when the result is
/// `FWL_ERR_BUFFER_TOO_SMALL` (then `buf` holds an empty string), so a caller may first ask with
/// `buf` NULL and `buf_len` 0.
///
/// Ownership: `manifest` is borrowed for the call; `buf` and `out_len` stay the caller's.
/// Thread-safety: any number of threads may read one manifest at once.
///
/// # Safety
///
/// `manifest` must be NULL or a live handle from this library; `buf` must point to `buf_len`
/// writable bytes (or be NULL with `buf_len` 0); `out_len` must be NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn fwl_manifest_hardware(
    manifest: *const fwl_manifest,
    index: usize,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> fwl_status {
    guard("fwl_manifest_hardware", || {
        // SAFETY: NULL or a live handle (caller contract).
        let m = unsafe { args::handle(manifest, "manifest") }?;
        let list = &m.manifest().hardware;
        let hw = list.get(index).ok_or_else(|| {
            fail(
                FWL_ERR_INVALID_ARGUMENT,
                &format_args!(
                    "hardware index {index} is out of range (count {})",
                    list.len()
                ),
            )
        })?;
        // SAFETY: `buf`/`buf_len`/`out_len` as documented (caller contract).
        unsafe { args::copy_text(hw, buf, buf_len, out_len) }
    })
}

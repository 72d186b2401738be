//! `fwl_notice`: what a gateway sends a device about a release (`docs/PROTOCOL.md` §12).
//!
//! A notice carries no trust of its own; the manifest inside is verified against the vendor key
//! the device holds (`fwl_notice_verify` does both steps).

use alloc::boxed::Box;
use core::ffi::c_char;

use fwledger_proto::Notice;

use crate::args::{self, Out};
use crate::guard::{guard, guard_value};
use crate::manifest::{self, fwl_manifest};
use crate::status::{fwl_status, NoticeError, Outcome};

/// A parsed, unverified update notice (opaque). Made by `fwl_notice_parse` or
/// `fwl_notice_verify`, released with `fwl_notice_free`. It is immutable: any number of threads
/// may read it at once.
pub struct fwl_notice {
    notice: Notice,
}

fn parse(bytes: &[u8]) -> Outcome<Box<fwl_notice>> {
    let notice = Notice::from_cbor(bytes).map_err(NoticeError)?;
    Ok(Box::new(fwl_notice { notice }))
}

/// Parses a notice (deterministic CBOR, as received on the device's `notice` topic) into a new
/// `fwl_notice` in `*out`. The manifest inside is NOT verified: pass it to `fwl_manifest_verify`,
/// or use `fwl_notice_verify`. A notice that does not decode is `FWL_ERR_NOTICE_MALFORMED`.
///
/// Ownership: `cbor` is only read during the call. On success `*out` owns a new notice that the
/// caller releases with `fwl_notice_free`; on failure `*out` is set to NULL (when `out` is not
/// NULL).
/// Thread-safety: safe to call from several threads at once.
///
/// # Safety
///
/// `cbor` must point to `cbor_len` readable bytes; `out` must be valid for writing a pointer
/// (NULL pointers are refused).
#[no_mangle]
pub unsafe extern "C" fn fwl_notice_parse(
    cbor: *const u8,
    cbor_len: usize,
    out: *mut *mut fwl_notice,
) -> fwl_status {
    guard("fwl_notice_parse", || {
        let out = Out::new(out, "out")?;
        // SAFETY: `out` is valid for writes (caller contract); NULL until parsing succeeds.
        unsafe { out.set(core::ptr::null_mut()) };
        // SAFETY: pointer and length describe readable bytes (caller contract).
        let bytes = unsafe { args::bytes(cbor, cbor_len, "cbor") }?;
        let notice = parse(bytes)?;
        // SAFETY: as above.
        unsafe { out.set(Box::into_raw(notice)) };
        Ok(())
    })
}

/// Parses a notice and verifies the manifest inside it against the vendor root key, exactly as
/// `fwl_notice_parse` followed by `fwl_manifest_verify` (see there for the checks, the key and
/// the clock arguments). The gateway's time in the notice is not used: it is only a hint.
///
/// Ownership: the inputs are only read during the call. On success `*manifest_out` owns a new
/// manifest (release it with `fwl_manifest_free`) and, if `notice_out` is not NULL,
/// `*notice_out` owns the notice (release it with `fwl_notice_free`; it gives the download URL).
/// On failure both outputs are set to NULL.
/// Thread-safety: safe to call from several threads at once.
///
/// # Safety
///
/// `cbor` must point to `cbor_len` readable bytes and `vendor_key` to `vendor_key_len` readable
/// bytes; `manifest_out` must be valid for writing a pointer; `notice_out` must be NULL or valid
/// for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn fwl_notice_verify(
    cbor: *const u8,
    cbor_len: usize,
    vendor_key: *const u8,
    vendor_key_len: usize,
    min_key_generation: u64,
    now: u64,
    notice_out: *mut *mut fwl_notice,
    manifest_out: *mut *mut fwl_manifest,
) -> fwl_status {
    guard("fwl_notice_verify", || {
        let notice_out = Out::optional(notice_out);
        if let Some(out) = notice_out {
            // SAFETY: a non-NULL `notice_out` is valid for writes (caller contract).
            unsafe { out.set(core::ptr::null_mut()) };
        }
        let manifest_out = Out::new(manifest_out, "manifest_out")?;
        // SAFETY: `manifest_out` is valid for writes (caller contract).
        unsafe { manifest_out.set(core::ptr::null_mut()) };
        // SAFETY: pointer and length describe readable bytes (caller contract).
        let bytes = unsafe { args::bytes(cbor, cbor_len, "cbor") }?;
        // SAFETY: as above.
        let key = unsafe { args::bytes(vendor_key, vendor_key_len, "vendor_key") }?;
        let trust = manifest::trust_anchor(key, min_key_generation)?;
        let notice = parse(bytes)?;
        let verified = manifest::verify(&notice.notice.manifest, &trust, now)?;
        // SAFETY: as above.
        unsafe { manifest_out.set(Box::into_raw(verified)) };
        if let Some(out) = notice_out {
            // SAFETY: as above.
            unsafe { out.set(Box::into_raw(notice)) };
        }
        Ok(())
    })
}

/// Releases a notice. NULL is accepted and does nothing.
///
/// Ownership: takes back the notice; the handle, and any pointer obtained from
/// `fwl_notice_manifest`, must not be used afterwards.
/// Thread-safety: no other thread may be using the notice.
///
/// # Safety
///
/// `notice` must be NULL or a live handle from this library, released only once.
#[no_mangle]
pub unsafe extern "C" fn fwl_notice_free(notice: *mut fwl_notice) {
    guard_value((), || {
        if !notice.is_null() {
            // SAFETY: a non-NULL handle came from `Box::into_raw` in this library and is released
            // once (caller contract).
            drop(unsafe { Box::from_raw(notice) });
        }
    })
}

/// Points `*data` and `*len` at the signed manifest inside the notice (not verified), ready for
/// `fwl_manifest_verify`. Nothing is copied.
///
/// Ownership: the bytes belong to the notice and stay valid until `fwl_notice_free`; do not
/// free or modify them.
/// Thread-safety: any number of threads may read one notice at once.
///
/// # Safety
///
/// `notice` must be NULL or a live handle from this library; `data` and `len` must be NULL or
/// valid for writes.
#[no_mangle]
pub unsafe extern "C" fn fwl_notice_manifest(
    notice: *const fwl_notice,
    data: *mut *const u8,
    len: *mut usize,
) -> fwl_status {
    guard("fwl_notice_manifest", || {
        // SAFETY: NULL or a live handle (caller contract).
        let n = unsafe { args::handle(notice, "notice") }?;
        let data = Out::new(data, "data")?;
        let len = Out::new(len, "len")?;
        let bytes = &n.notice.manifest;
        // SAFETY: both are valid for writes (caller contract).
        unsafe {
            data.set(bytes.as_ptr());
            len.set(bytes.len());
        }
        Ok(())
    })
}

/// Copies the download URL of the image into `buf` (at most 2048 bytes plus the NUL).
///
/// Text output: writes at most `buf_len` bytes including the terminating NUL. `*out_len`
/// (optional, may be NULL) receives the length without the NUL, also when the result is
/// `FWL_ERR_BUFFER_TOO_SMALL` (then `buf` holds an empty string), so a caller may first ask with
/// `buf` NULL and `buf_len` 0.
///
/// Ownership: `notice` is borrowed for the call; `buf` and `out_len` stay the caller's.
/// Thread-safety: any number of threads may read one notice at once.
///
/// # Safety
///
/// `notice` must be NULL or a live handle from this library; `buf` must point to `buf_len`
/// writable bytes (or be NULL with `buf_len` 0); `out_len` must be NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn fwl_notice_url(
    notice: *const fwl_notice,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> fwl_status {
    guard("fwl_notice_url", || {
        // SAFETY: NULL or a live handle (caller contract).
        let n = unsafe { args::handle(notice, "notice") }?;
        // SAFETY: `buf`/`buf_len`/`out_len` as documented (caller contract).
        unsafe { args::copy_text(&n.notice.url, buf, buf_len, out_len) }
    })
}

/// Writes the gateway's clock (Unix seconds) from the notice to `*out`, or 0 when the notice has
/// none. It is a hint for devices without a clock; never base a security decision on it alone.
///
/// Ownership: `notice` is borrowed for the call; `*out` is the caller's.
/// Thread-safety: any number of threads may read one notice at once.
///
/// # Safety
///
/// `notice` must be NULL or a live handle from this library; `out` must be NULL or valid for
/// writing a `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn fwl_notice_gateway_time(
    notice: *const fwl_notice,
    out: *mut u64,
) -> fwl_status {
    guard("fwl_notice_gateway_time", || {
        // SAFETY: NULL or a live handle (caller contract).
        let n = unsafe { args::handle(notice, "notice") }?;
        let out = Out::new(out, "out")?;
        // SAFETY: `out` is valid for writes (caller contract).
        unsafe { out.set(n.notice.gateway_time.unwrap_or(0)) };
        Ok(())
    })
}

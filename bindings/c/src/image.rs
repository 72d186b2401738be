//! `fwl_image_verifier`: the streaming image check in caller-owned memory.
//!
//! The state lives in a fixed-size struct the caller allocates (on the stack, statically, or in
//! its own heap), so verifying an image needs no allocation at all: not at `init`, not per chunk.

use core::mem::{align_of, size_of};
use core::ptr::NonNull;

use fwledger_proto::image::ImageVerifier;

use crate::args::{self, Out};
use crate::guard::guard;
use crate::manifest::{fwl_manifest, FWL_SHA256_LEN};
use crate::status::{fail, fwl_status, fwl_status::*, Outcome};

/// Size of `fwl_image_verifier` in 64-bit words.
pub const FWL_IMAGE_VERIFIER_WORDS: usize = 32;
/// Size of `fwl_image_verifier` in bytes (256).
pub const FWL_IMAGE_VERIFIER_SIZE: usize = FWL_IMAGE_VERIFIER_WORDS * 8;

/// State of a streaming image verifier, allocated by the caller (`FWL_IMAGE_VERIFIER_SIZE` =
/// 256 bytes, aligned like `uint64_t`). Its contents are private to the library.
///
/// Life cycle: `fwl_image_verifier_init` (or `_init_raw`) → `fwl_image_verifier_update` for each
/// chunk, in order → `fwl_image_verifier_finish`, which accepts or refuses the image and leaves the
/// state uninitialised. No step allocates memory. Using a state that was never initialised, or
/// after `finish`, is refused with `FWL_ERR_INVALID_ARGUMENT` on a best-effort basis (a marker
/// word), so always call `init` first. Nothing needs freeing.
///
/// The state holds no pointers: it may be copied with `memcpy` (e.g. to snapshot progress) within
/// one build of the library, but its layout changes between versions, so do not persist it
/// across firmware updates. One thread at a time may use a given state; distinct states are
/// independent.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct fwl_image_verifier {
    opaque: [u64; FWL_IMAGE_VERIFIER_WORDS],
}

impl Default for fwl_image_verifier {
    fn default() -> Self {
        fwl_image_verifier {
            opaque: [0; FWL_IMAGE_VERIFIER_WORDS],
        }
    }
}

/// What the caller's buffer really holds.
#[repr(C)]
struct State {
    /// `LIVE` between `init` and `finish`; anything else means "not initialised".
    marker: u64,
    verifier: ImageVerifier,
}

const LIVE: u64 = u64::from_le_bytes(*b"fwlimgv1");

// The caller's struct must be able to hold the state: size and alignment.
const _: () = assert!(size_of::<State>() <= size_of::<fwl_image_verifier>());
const _: () = assert!(align_of::<State>() <= align_of::<fwl_image_verifier>());
const _: () = assert!(size_of::<fwl_image_verifier>() == FWL_IMAGE_VERIFIER_SIZE);

/// The caller's state memory, checked for NULL and alignment.
fn slot(verifier: *const fwl_image_verifier) -> Outcome<NonNull<State>> {
    let ptr = NonNull::new(verifier.cast::<State>().cast_mut())
        .ok_or_else(|| fail(FWL_ERR_NULL, &"argument `verifier` is NULL"))?;
    if !ptr.as_ptr().is_aligned() {
        return Err(fail(
            FWL_ERR_INVALID_ARGUMENT,
            &"`verifier` is not aligned like uint64_t",
        ));
    }
    Ok(ptr)
}

/// The caller's memory, if `init` put a state there and `finish` has not run since.
///
/// # Safety
/// A non-NULL `verifier` must point to a readable `fwl_image_verifier`.
unsafe fn initialised(verifier: *const fwl_image_verifier) -> Outcome<NonNull<State>> {
    let ptr = slot(verifier)?;
    // SAFETY: `ptr` is non-NULL, aligned and points to at least 8 readable bytes (caller
    // contract). The marker is the first field of the `repr(C)` state.
    let marker = unsafe { ptr.as_ptr().cast::<u64>().read() };
    if marker != LIVE {
        return Err(fail(
            FWL_ERR_INVALID_ARGUMENT,
            &"the verifier is not initialised (call fwl_image_verifier_init) or already finished",
        ));
    }
    Ok(ptr)
}

/// The initialised state behind `verifier`, for reading.
///
/// # Safety
/// A non-NULL `verifier` must point to a readable `fwl_image_verifier` that no other thread
/// writes during the call.
unsafe fn live<'a>(verifier: *const fwl_image_verifier) -> Outcome<&'a State> {
    // SAFETY: forwarded caller contract.
    let ptr = unsafe { initialised(verifier) }?;
    // SAFETY: the marker says `init` wrote a `State` here; valid and aligned for reads.
    Ok(unsafe { &*ptr.as_ptr() })
}

/// The initialised state behind `verifier`, for updating.
///
/// # Safety
/// A non-NULL `verifier` must point to a writable `fwl_image_verifier` that no other thread uses
/// during the call.
unsafe fn live_mut<'a>(verifier: *mut fwl_image_verifier) -> Outcome<&'a mut State> {
    // SAFETY: forwarded caller contract.
    let ptr = unsafe { initialised(verifier) }?;
    // SAFETY: the marker says `init` wrote a `State` here; valid, aligned and exclusively ours
    // for the call.
    Ok(unsafe { &mut *ptr.as_ptr() })
}

/// Writes a fresh state.
fn start(verifier: *mut fwl_image_verifier, image: ImageVerifier) -> Outcome {
    let ptr = slot(verifier)?;
    // SAFETY: `ptr` is non-NULL and aligned, and the caller's struct is large enough (checked at
    // compile time above) and writable (caller contract). `write` ignores the old contents.
    unsafe {
        ptr.as_ptr().write(State {
            marker: LIVE,
            verifier: image,
        })
    };
    Ok(())
}

/// Starts verifying the image of a verified manifest: its exact size and SHA-256.
///
/// Ownership: `verifier` is the caller's memory; `manifest` is only read during the call (the
/// state keeps a copy of the size and digest, so the manifest may be freed afterwards).
/// Thread-safety: one thread at a time per verifier; any number of threads may read the manifest.
///
/// # Safety
///
/// `verifier` must be NULL or point to a writable `fwl_image_verifier`; `manifest` must be NULL
/// or a live handle from this library.
#[no_mangle]
pub unsafe extern "C" fn fwl_image_verifier_init(
    verifier: *mut fwl_image_verifier,
    manifest: *const fwl_manifest,
) -> fwl_status {
    guard("fwl_image_verifier_init", || {
        // SAFETY: NULL or a live handle (caller contract).
        let m = unsafe { args::handle(manifest, "manifest") }?;
        let m = &m.verified.manifest;
        start(verifier, ImageVerifier::new(m.size, m.sha256))
    })
}

/// Starts verifying an image of exactly `size` bytes whose SHA-256 is `sha256`
/// (`FWL_SHA256_LEN` = 32 bytes; another length is `FWL_ERR_INVALID_ARGUMENT`). Use it when
/// the size and digest come from a manifest verified earlier (e.g. stored across a reboot).
///
/// Ownership: `verifier` is the caller's memory; `sha256` is only read during the call.
/// Thread-safety: one thread at a time per verifier.
///
/// # Safety
///
/// `verifier` must be NULL or point to a writable `fwl_image_verifier`; `sha256` must be NULL or
/// point to `sha256_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn fwl_image_verifier_init_raw(
    verifier: *mut fwl_image_verifier,
    size: u64,
    sha256: *const u8,
    sha256_len: usize,
) -> fwl_status {
    guard("fwl_image_verifier_init_raw", || {
        // SAFETY: pointer and length describe readable bytes (caller contract).
        let digest = unsafe { args::bytes(sha256, sha256_len, "sha256") }?;
        let digest: [u8; FWL_SHA256_LEN] = digest.try_into().map_err(|_| {
            fail(
                FWL_ERR_INVALID_ARGUMENT,
                &format_args!("`sha256` is {sha256_len} bytes, not {FWL_SHA256_LEN}"),
            )
        })?;
        start(verifier, ImageVerifier::new(size, digest))
    })
}

/// Feeds the next `len` bytes of the image. Fails with `FWL_ERR_IMAGE_TOO_LONG` as soon as a chunk
/// would take the image past the manifest's size (nothing of that chunk is accepted: stop writing
/// the slot); after that every further call fails the same way. Does not allocate.
///
/// Ownership: `data` is only read during the call.
/// Thread-safety: one thread at a time per verifier.
///
/// # Safety
///
/// `verifier` must be NULL or point to a `fwl_image_verifier`; `data` must be NULL or point to
/// `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn fwl_image_verifier_update(
    verifier: *mut fwl_image_verifier,
    data: *const u8,
    len: usize,
) -> fwl_status {
    guard("fwl_image_verifier_update", || {
        // SAFETY: pointer and length describe readable bytes (caller contract).
        let chunk = unsafe { args::bytes(data, len, "data") }?;
        // SAFETY: NULL or a valid verifier used by this thread only (caller contract).
        let state = unsafe { live_mut(verifier) }?;
        // Unmarked while hashing: if anything panicked in between, the state would not be used
        // again half-updated.
        state.marker = 0;
        let result = state.verifier.update(chunk);
        state.marker = LIVE;
        Ok(result?)
    })
}

/// Writes the number of image bytes accepted so far to `*out` (e.g. to resume a download with
/// an HTTP Range request).
///
/// Ownership: `*out` is the caller's. Thread-safety: one thread at a time per verifier.
///
/// # Safety
///
/// `verifier` must be NULL or point to a `fwl_image_verifier`; `out` must be NULL or valid for
/// writing a `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn fwl_image_verifier_received(
    verifier: *const fwl_image_verifier,
    out: *mut u64,
) -> fwl_status {
    guard("fwl_image_verifier_received", || {
        let out = Out::new(out, "out")?;
        // SAFETY: NULL or a valid verifier not written by another thread (caller contract).
        let state = unsafe { live(verifier) }?;
        // SAFETY: `out` is valid for writes (caller contract).
        unsafe { out.set(state.verifier.received()) };
        Ok(())
    })
}

/// Ends the image: `FWL_OK` only if exactly the manifest's size arrived and the SHA-256 matches
/// (`FWL_ERR_IMAGE_TRUNCATED`, `FWL_ERR_IMAGE_DIGEST_MISMATCH`, or `FWL_ERR_IMAGE_TOO_LONG` if an
/// update already failed). Either way the state is left uninitialised; `init` it again to verify
/// another image.
///
/// Thread-safety: one thread at a time per verifier.
///
/// # Safety
///
/// `verifier` must be NULL or point to a `fwl_image_verifier`.
#[no_mangle]
pub unsafe extern "C" fn fwl_image_verifier_finish(
    verifier: *mut fwl_image_verifier,
) -> fwl_status {
    guard("fwl_image_verifier_finish", || {
        // SAFETY: NULL or a valid verifier used by this thread only (caller contract).
        let state = unsafe { live_mut(verifier) }?;
        state.marker = 0;
        Ok(state.verifier.clone().finish()?)
    })
}

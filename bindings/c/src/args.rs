//! Arguments from C: turning raw pointers into references, and copying results out.
//!
//! Every function here checks for NULL and reports `FWL_ERR_NULL` naming the argument; what it
//! cannot check (that a non-NULL pointer is valid for the stated length) is the caller's
//! contract, stated in each entry point's `# Safety` section.

use core::ffi::{c_char, CStr};
use core::ptr::NonNull;

use crate::status::{fail, fwl_status::*, Outcome};

/// Borrows `len` bytes at `ptr`. NULL is refused even when `len` is 0.
///
/// # Safety
/// A non-NULL `ptr` must point to `len` readable bytes that stay unchanged for `'a`.
pub(crate) unsafe fn bytes<'a>(ptr: *const u8, len: usize, what: &str) -> Outcome<&'a [u8]> {
    if ptr.is_null() {
        return Err(null(what));
    }
    if len > isize::MAX as usize {
        return Err(fail(
            FWL_ERR_INVALID_ARGUMENT,
            &format_args!("`{what}` length {len} is impossible"),
        ));
    }
    // SAFETY: non-NULL, `len` readable bytes that outlive 'a (caller contract), len ≤ isize::MAX.
    Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// Borrows a NUL-terminated UTF-8 string.
///
/// # Safety
/// A non-NULL `ptr` must point to a NUL-terminated string that stays unchanged for `'a`.
pub(crate) unsafe fn text<'a>(ptr: *const c_char, what: &str) -> Outcome<&'a str> {
    if ptr.is_null() {
        return Err(null(what));
    }
    // SAFETY: non-NULL and NUL-terminated, valid for 'a (caller contract).
    let c = unsafe { CStr::from_ptr(ptr) };
    c.to_str().map_err(|_| {
        fail(
            FWL_ERR_INVALID_ARGUMENT,
            &format_args!("`{what}` is not UTF-8"),
        )
    })
}

/// Borrows a handle the library handed out.
///
/// # Safety
/// A non-NULL `ptr` must come from this library's constructor for `T` and not be freed yet.
pub(crate) unsafe fn handle<'a, T>(ptr: *const T, what: &str) -> Outcome<&'a T> {
    // SAFETY: a non-NULL handle points to a live `T` (caller contract).
    unsafe { ptr.as_ref() }.ok_or_else(|| null(what))
}

/// A place the caller gave us to write one value to (which may be uninitialised memory, so it is
/// written with `ptr::write` and never read).
pub(crate) struct Out<T>(NonNull<T>);

impl<T> Clone for Out<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Out<T> {}

impl<T> Out<T> {
    /// Checks `ptr` for NULL.
    pub(crate) fn new(ptr: *mut T, what: &str) -> Outcome<Self> {
        NonNull::new(ptr).map(Out).ok_or_else(|| null(what))
    }

    /// `None` for an optional output the caller does not want (NULL).
    pub(crate) fn optional(ptr: *mut T) -> Option<Self> {
        NonNull::new(ptr).map(Out)
    }

    /// Writes the value.
    ///
    /// # Safety
    /// The pointer must be valid for writes and aligned for `T`.
    pub(crate) unsafe fn set(self, value: T) {
        // SAFETY: valid and aligned (caller contract); `write` does not read or drop the old
        // contents, which may be uninitialised.
        unsafe { self.0.as_ptr().write(value) }
    }
}

/// Copies `s` into the caller's buffer as a NUL-terminated string and reports its length (without
/// the NUL) through the optional `out_len`, also when the buffer is too small.
///
/// `buf` may be NULL when `buf_len` is 0: a length query (`FWL_ERR_BUFFER_TOO_SMALL`). A string
/// with a NUL inside cannot be represented and is refused as malformed.
///
/// # Safety
/// A non-NULL `buf` must point to `buf_len` writable bytes; a non-NULL `out_len` must be valid
/// for writes.
pub(crate) unsafe fn copy_text(
    s: &str,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> Outcome {
    if buf.is_null() && buf_len != 0 {
        return Err(null("buf"));
    }
    if s.as_bytes().contains(&0) {
        return Err(fail(
            FWL_ERR_MALFORMED,
            &"the text contains a NUL character and cannot be returned as a C string",
        ));
    }
    if let Some(out_len) = Out::optional(out_len) {
        // SAFETY: non-NULL `out_len` is valid for writes (caller contract).
        unsafe { out_len.set(s.len()) };
    }
    if buf.is_null() {
        return Err(fail(
            FWL_ERR_BUFFER_TOO_SMALL,
            &format_args!("{} bytes are needed (with the NUL)", s.len() + 1),
        ));
    }
    // SAFETY: `buf` is non-NULL and points to `buf_len` writable bytes (caller contract).
    let out = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), buf_len) };
    match out.get_mut(..s.len() + 1) {
        Some(dst) => {
            let (text, nul) = dst.split_at_mut(s.len());
            text.copy_from_slice(s.as_bytes());
            nul.fill(0);
            Ok(())
        }
        None => {
            // Never leave a stale string in a buffer the caller might print anyway.
            if let Some(first) = out.first_mut() {
                *first = 0;
            }
            Err(fail(
                FWL_ERR_BUFFER_TOO_SMALL,
                &format_args!(
                    "{} bytes are needed (with the NUL), the buffer has {buf_len}",
                    s.len() + 1
                ),
            ))
        }
    }
}

/// Copies `data` into the caller's buffer of `buf_len` bytes, which must hold all of it.
///
/// # Safety
/// A non-NULL `buf` must point to `buf_len` writable bytes.
pub(crate) unsafe fn copy_bytes(data: &[u8], buf: *mut u8, buf_len: usize) -> Outcome {
    if buf.is_null() {
        return Err(null("buf"));
    }
    // SAFETY: `buf` is non-NULL and points to `buf_len` writable bytes (caller contract).
    let out = unsafe { core::slice::from_raw_parts_mut(buf, buf_len) };
    let dst = out.get_mut(..data.len()).ok_or_else(|| {
        fail(
            FWL_ERR_BUFFER_TOO_SMALL,
            &format_args!("{} bytes are needed, the buffer has {buf_len}", data.len()),
        )
    })?;
    dst.copy_from_slice(data);
    Ok(())
}

fn null(what: &str) -> crate::status::Failure {
    fail(FWL_ERR_NULL, &format_args!("argument `{what}` is NULL"))
}

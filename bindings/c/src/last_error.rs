//! The thread's last error message: what `fwl_last_error` returns.
//!
//! A fixed 255-byte buffer per thread (no heap), reset when a fallible call starts and written
//! when it fails, as `"fwl_function: what went wrong"`. Without the `std` feature there are no
//! thread-locals, so nothing is kept and `fwl_last_error` returns an empty string; the status
//! code still says what failed.

use core::ffi::c_char;
use core::fmt;

use crate::guard::guard_value;

#[cfg(feature = "std")]
mod slot {
    use core::cell::RefCell;
    use core::fmt::{self, Write};

    /// Bytes kept of a message (longer ones are cut at a character boundary), so that a
    /// 256-byte buffer always holds a whole message and its NUL.
    const CAPACITY: usize = 255;

    pub(super) struct Slot {
        function: &'static str,
        len: usize,
        text: [u8; CAPACITY],
    }

    impl Slot {
        const EMPTY: Slot = Slot {
            function: "",
            len: 0,
            text: [0; CAPACITY],
        };

        pub(super) fn text(&self) -> &str {
            // Only whole UTF-8 characters are ever appended, so this cannot fail.
            core::str::from_utf8(self.text.get(..self.len).unwrap_or_default()).unwrap_or_default()
        }
    }

    impl Write for Slot {
        /// Appends as much of `s` as fits, cut at a character boundary; never fails, so a long
        /// message is truncated rather than lost.
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let room = CAPACITY - self.len;
            let mut take = s.len().min(room);
            while !s.is_char_boundary(take) {
                take -= 1;
            }
            if let (Some(dst), Some(src)) = (
                self.text.get_mut(self.len..self.len + take),
                s.as_bytes().get(..take),
            ) {
                dst.copy_from_slice(src);
                self.len += take;
            }
            Ok(())
        }
    }

    std::thread_local! {
        static SLOT: RefCell<Slot> = const { RefCell::new(Slot::EMPTY) };
    }

    pub(super) fn with<R>(f: impl FnOnce(&mut Slot) -> R) -> Option<R> {
        // `try_with`/`try_borrow_mut`: never panic, even while the thread is being torn down.
        SLOT.try_with(|slot| slot.try_borrow_mut().ok().map(|mut s| f(&mut s)))
            .ok()
            .flatten()
    }

    pub(super) fn begin(function: &'static str) {
        with(|s| {
            s.function = function;
            s.len = 0;
        });
    }

    pub(super) fn record(detail: &dyn fmt::Display) {
        with(|s| {
            s.len = 0;
            let function = s.function;
            if function.is_empty() {
                let _ = write!(s, "{detail}");
            } else {
                let _ = write!(s, "{function}: {detail}");
            }
        });
    }
}

/// Marks the start of a fallible call: clears the message and remembers the function's name.
pub(crate) fn begin(function: &'static str) {
    #[cfg(feature = "std")]
    slot::begin(function);
    #[cfg(not(feature = "std"))]
    let _ = function;
}

/// Sets the message of the current call's failure.
pub(crate) fn record(detail: &dyn fmt::Display) {
    #[cfg(feature = "std")]
    slot::record(detail);
    #[cfg(not(feature = "std"))]
    let _ = detail;
}

/// Copies as much of the message as fits into `out` (cut at a character boundary) and returns
/// `(bytes copied, full message length)`.
fn copy_message(out: &mut [u8]) -> (usize, usize) {
    #[cfg(feature = "std")]
    {
        slot::with(|s| {
            let text = s.text();
            let mut take = text.len().min(out.len());
            while !text.is_char_boundary(take) {
                take -= 1;
            }
            if let (Some(dst), Some(src)) = (out.get_mut(..take), text.as_bytes().get(..take)) {
                dst.copy_from_slice(src);
            }
            (take, text.len())
        })
        .unwrap_or((0, 0))
    }
    #[cfg(not(feature = "std"))]
    {
        let _ = out;
        (0, 0)
    }
}

/// Copies this thread's detailed message about the last failed `fwl_` call into `buf` and
/// returns the message's full length in bytes (excluding the terminating NUL), like `snprintf`.
///
/// The message reads `"fwl_function: what went wrong"`, e.g. `"fwl_manifest_verify: release key
/// certificate expired at 1700000000"`; it is UTF-8, at most 255 bytes. Every fallible call
/// (one that returns `fwl_status`) clears it when it starts and sets it when it fails, so read it
/// right after the failing call, on the same thread. It is empty after a successful call, and
/// always empty in a build without the `std` feature (no thread-local storage there).
///
/// Writes at most `len` bytes including the terminating NUL, cutting at a character boundary;
/// with `len` 0 (then `buf` may be NULL) it writes nothing and only returns the length. A return
/// value `>= len` means the message was cut.
///
/// Ownership: `buf` is the caller's. Thread-safety: each thread has its own message.
///
/// # Safety
///
/// If `len` is non-zero, `buf` must be NULL or point to `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn fwl_last_error(buf: *mut c_char, len: usize) -> usize {
    guard_value(0, || {
        if buf.is_null() || len == 0 {
            return copy_message(&mut []).1;
        }
        // SAFETY: `buf` is non-NULL and points to `len` writable bytes (caller contract); `u8`
        // and `c_char` have the same size and alignment.
        let out = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
        // Keep the last byte for the NUL.
        let (copied, full) = copy_message(&mut out[..len - 1]);
        out[copied] = 0;
        full
    })
}

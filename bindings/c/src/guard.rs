//! The boundary guard: no panic crosses into C.
//!
//! With the `std` feature every entry point runs under `catch_unwind`; a caught panic becomes
//! `FWL_ERR_INTERNAL` (or the function's fallback value) with the panic message as the last
//! error. Without `std` the library must be built with `panic = "abort"`, so a panic ends the
//! program instead of unwinding into C (see README.md).

use crate::last_error;
use crate::status::{fwl_status, Failure, Outcome};

/// Runs the body of a fallible entry point named `function` and returns its status.
pub(crate) fn guard(function: &'static str, body: impl FnOnce() -> Outcome) -> fwl_status {
    last_error::begin(function);
    match catch(body) {
        Ok(Ok(())) => fwl_status::FWL_OK,
        Ok(Err(Failure(status))) => status,
        Err(panic) => {
            last_error::record(&panic);
            fwl_status::FWL_ERR_INTERNAL
        }
    }
}

/// Runs the body of an entry point that returns a value rather than a status; `fallback` if
/// it panicked.
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch(body).unwrap_or(fallback)
}

/// What a caught panic said.
pub(crate) struct Panic(#[cfg_attr(not(feature = "std"), allow(dead_code))] PanicMessage);

#[cfg(feature = "std")]
type PanicMessage = std::boxed::Box<dyn core::any::Any + Send>;
#[cfg(not(feature = "std"))]
type PanicMessage = core::convert::Infallible;

impl core::fmt::Display for Panic {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("internal error (a panic was caught at the API boundary)")?;
        #[cfg(feature = "std")]
        {
            let payload = &self.0;
            if let Some(s) = payload.downcast_ref::<&str>() {
                write!(f, ": {s}")?;
            } else if let Some(s) = payload.downcast_ref::<std::string::String>() {
                write!(f, ": {s}")?;
            }
        }
        Ok(())
    }
}

#[cfg(feature = "std")]
fn catch<T>(body: impl FnOnce() -> T) -> Result<T, Panic> {
    // AssertUnwindSafe: after a panic the only state a caller can still reach is a handle it
    // passed in; handles are immutable except the image verifier, which `image.rs` marks
    // uninitialised for the duration of each call, so a panic leaves nothing half-updated in use.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).map_err(Panic)
}

#[cfg(not(feature = "std"))]
fn catch<T>(body: impl FnOnce() -> T) -> Result<T, Panic> {
    Ok(body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_internal_with_its_message() {
        let status = guard("fwl_test", || panic!("boom"));
        assert_eq!(status, fwl_status::FWL_ERR_INTERNAL);
        let mut buf = [0 as core::ffi::c_char; 128];
        // SAFETY: `buf` has 128 writable bytes.
        let len = unsafe { crate::fwl_last_error(buf.as_mut_ptr(), buf.len()) };
        // SAFETY: fwl_last_error NUL-terminated it.
        let text = unsafe { core::ffi::CStr::from_ptr(buf.as_ptr()) };
        let text = text.to_str().unwrap();
        assert_eq!(len, text.len());
        assert!(text.starts_with("fwl_test: internal error"), "{text}");
        assert!(text.ends_with(": boom"), "{text}");
        assert_eq!(guard_value(7, || -> i32 { panic!("again") }), 7);
    }
}

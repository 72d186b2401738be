//! Running library work outside the GIL: one shared tokio runtime, and a guard that turns a Rust
//! panic into `fwledger.Error` instead of letting it reach Python.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use pyo3::prelude::*;
use tokio::runtime::Runtime;

use crate::errors::{Class, Failure, IntoPyResult, Outcome};

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The module's tokio runtime, started on first use. Two workers: the library's async work is
/// IO-bound, and the heavy hashing runs on the calling thread.
fn runtime() -> Outcome<&'static Runtime> {
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("fwledger-py")
        .enable_all()
        .build()
        .map_err(|e| {
            Failure::new(
                Class::Base,
                "runtime",
                format!("cannot start the runtime: {e}"),
            )
        })?;
    // Another thread may have won the race; its runtime is kept and ours dropped unused.
    Ok(RUNTIME.get_or_init(|| runtime))
}

/// Runs `f` with the GIL released; a panic becomes `fwledger.Error` with reason `internal`.
pub fn detached<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    F: Send + FnOnce() -> Outcome<T>,
    T: Send,
{
    py.detach(|| {
        catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(Failure::new(
                Class::Base,
                "internal",
                format!("internal error in fwledger (please report): {what}"),
            ))
        })
    })
    .into_py_result(py)
}

/// Runs a future to completion on the shared runtime, with the GIL released.
pub fn block_on<T, Fut>(py: Python<'_>, make: impl Send + FnOnce() -> Fut) -> PyResult<T>
where
    Fut: Future<Output = Outcome<T>>,
    T: Send,
{
    detached(py, || runtime()?.block_on(make()))
}

/// Runs a future on the shared runtime from a thread that is already detached from Python.
pub fn block_on_detached<T>(future: impl Future<Output = Outcome<T>>) -> Outcome<T> {
    runtime()?.block_on(future)
}

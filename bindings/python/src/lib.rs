//! # fwledger-py — the native part of the `fwledger` Python package
//!
//! pyo3 bindings over the `fwledger` library, built by maturin into an abi3 wheel (CPython ≥
//! 3.9) whose import name is `fwledger` (this extension is `fwledger._fwledger`; the pure
//! Python part in `python/fwledger/` re-exports it and adds `follow_async`).
//!
//! ```python
//! import fwledger
//!
//! vendor = fwledger.Vendor.init("/tmp/acme", "acme")
//! release = vendor.publish("lamp.bin", model="lamp", hw="rev-b", version="1.1.0")
//! token = vendor.token(gateway="home-hub")
//! for entry in fwledger.read_channel(token, home="/tmp/acme"):
//!     print(entry["kind"], entry.get("version"))
//! fwledger.verify(manifest=release.manifest_path, image="lamp.bin",
//!                 vendor_key=vendor.public_key, model="lamp", hw="rev-b")
//! ```
//!
//! Rules the bindings keep: every library error becomes a `fwledger.Error` subclass carrying a
//! message and a stable `reason` (never a panic: panics are caught and converted); the GIL is
//! released for all work that touches files, the ledger or the store; async library calls run
//! on one tokio runtime shared by the module. Do not `fork` a process that has used the module
//! (the runtime's threads do not survive it); spawn instead.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod channel;
mod convert;
mod errors;
mod runtime;
mod vendor;
mod verify;

use pyo3::prelude::*;

/// The default home directory: `$FWLEDGER_HOME`, else `~/.local/share/fwledger` (as the CLI).
#[pyfunction]
fn default_home() -> String {
    fwledger::default_home().display().to_string()
}

/// Native part of the fwledger Python package; import `fwledger` instead.
#[pymodule]
fn _fwledger(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<vendor::PyVendor>()?;
    m.add_class::<vendor::PyRelease>()?;
    m.add_class::<vendor::PyPreparedRelease>()?;
    m.add_class::<channel::PyFollow>()?;
    m.add_class::<channel::PyFollower>()?;
    m.add_function(wrap_pyfunction!(channel::read_channel, m)?)?;
    m.add_function(wrap_pyfunction!(channel::follow, m)?)?;
    m.add_function(wrap_pyfunction!(channel::parse_token_py, m)?)?;
    m.add_function(wrap_pyfunction!(verify::verify, m)?)?;
    m.add_function(wrap_pyfunction!(verify::fetch, m)?)?;
    m.add_function(wrap_pyfunction!(verify::cid, m)?)?;
    m.add_function(wrap_pyfunction!(default_home, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

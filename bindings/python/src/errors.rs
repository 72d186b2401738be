//! The exception hierarchy and the conversion of every library error into it.
//!
//! `fwledger.Error` is the base; each subclass carries a message and a stable `reason` (for a
//! failed verification, the check name that `fwledger verify` prints, e.g. `image-sha256`).

use fwledger::proto::channel::{FollowError, TokenError};
use fwledger::proto::{ImageError, ManifestError};
use fwledger::{
    BackendError, FetchError, LedgerError, StoreError, SubscribeError, VendorError, VerifyError,
};
use pyo3::prelude::*;
use pyo3::types::PyType;

/// The Python exception classes (named as in Python, so kept apart from the library's errors).
pub mod exc {
    use pyo3::exceptions::PyException;

    pyo3::create_exception!(
        fwledger,
        Error,
        PyException,
        "Base class of every fwledger error. `reason` is a short stable name of what failed."
    );
    pyo3::create_exception!(
        fwledger,
        VerificationError,
        Error,
        "A manifest, image, channel message or policy check failed; `reason` names the check \
         (e.g. \"image-sha256\", \"manifest-signature\", \"security-version\")."
    );
    pyo3::create_exception!(
        fwledger,
        LedgerError,
        Error,
        "The ledger failed: unreachable, busy, corrupt, or an unsupported ledger URL."
    );
    pyo3::create_exception!(
        fwledger,
        StoreError,
        Error,
        "The content store failed: content missing, unreachable, tampered (reason \
         \"block-mismatch\"), or an unsupported store URL."
    );
    pyo3::create_exception!(
        fwledger,
        TokenError,
        Error,
        "A subscription token is unusable; `reason` is the token check (e.g. \"token-checksum\")."
    );
    pyo3::create_exception!(
        fwledger,
        VendorError,
        Error,
        "A vendor operation was refused (e.g. reason \"already-published\", \"not-initialized\")."
    );
}

use exc::{
    Error, LedgerError as PyLedgerError, StoreError as PyStoreError, TokenError as PyTokenError,
    VendorError as PyVendorError, VerificationError,
};

/// Registers the exception classes in the module, with `reason = None` on the base class (and
/// `advanced = None` on `VerificationError`) so that every instance has the attributes.
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    let base = py.get_type::<Error>();
    base.setattr("reason", py.None())?;
    module.add("Error", base)?;
    let verification = py.get_type::<VerificationError>();
    verification.setattr("advanced", py.None())?;
    module.add("VerificationError", verification)?;
    module.add("LedgerError", py.get_type::<PyLedgerError>())?;
    module.add("StoreError", py.get_type::<PyStoreError>())?;
    module.add("TokenError", py.get_type::<PyTokenError>())?;
    module.add("VendorError", py.get_type::<PyVendorError>())?;
    Ok(())
}

/// Which exception class an error becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `fwledger.Error`.
    Base,
    /// `fwledger.VerificationError`.
    Verification,
    /// `fwledger.LedgerError`.
    Ledger,
    /// `fwledger.StoreError`.
    Store,
    /// `fwledger.TokenError`.
    Token,
    /// `fwledger.VendorError`.
    Vendor,
}

/// An error on its way to Python: built without the GIL, raised with it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The exception class.
    pub class: Class,
    /// The stable reason.
    pub reason: &'static str,
    /// The message.
    pub message: String,
    /// For refused channel messages: whether the follower moved past the message.
    pub advanced: Option<bool>,
}

impl Failure {
    /// A failure of `class` with `reason` and `message`.
    pub fn new(class: Class, reason: &'static str, message: impl Into<String>) -> Self {
        Failure {
            class,
            reason,
            message: message.into(),
            advanced: None,
        }
    }

    /// The Python exception.
    pub fn into_pyerr(self, py: Python<'_>) -> PyErr {
        let class: Bound<'_, PyType> = match self.class {
            Class::Base => py.get_type::<Error>(),
            Class::Verification => py.get_type::<VerificationError>(),
            Class::Ledger => py.get_type::<PyLedgerError>(),
            Class::Store => py.get_type::<PyStoreError>(),
            Class::Token => py.get_type::<PyTokenError>(),
            Class::Vendor => py.get_type::<PyVendorError>(),
        };
        let err = PyErr::from_type(class, (self.message,));
        let value = err.value(py);
        // Setting attributes on a fresh exception instance only fails on memory exhaustion, and
        // then the exception without its attributes is still the right one to raise.
        let _ = value.setattr("reason", self.reason);
        if let Some(advanced) = self.advanced {
            let _ = value.setattr("advanced", advanced);
        }
        err
    }
}

impl From<LedgerError> for Failure {
    fn from(e: LedgerError) -> Self {
        let reason = match &e {
            LedgerError::Conflict { .. } => "conflict",
            LedgerError::TooLarge { .. } => "too-large",
            LedgerError::Unavailable(_) => "unavailable",
            LedgerError::Corrupt(_) => "corrupt",
            LedgerError::Io(_) => "io",
            LedgerError::Unsupported(_) => "unsupported",
            LedgerError::BadExport(_) => "bad-export",
            _ => "ledger",
        };
        Failure::new(Class::Ledger, reason, format!("ledger: {e}"))
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        let reason = match &e {
            StoreError::NotFound { .. } => "not-found",
            StoreError::BlockMismatch { .. } => "block-mismatch",
            StoreError::TooLarge { .. } => "too-large",
            StoreError::InvalidCid(_) => "invalid-cid",
            StoreError::Malformed(_) => "malformed",
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Io(_) => "io",
            StoreError::UnknownProfile(_) => "unknown-profile",
            StoreError::Unsupported(_) => "unsupported",
            StoreError::ReadOnly { .. } => "read-only",
            _ => "store",
        };
        Failure::new(Class::Store, reason, format!("content store: {e}"))
    }
}

impl From<BackendError> for Failure {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::Ledger(e) => e.into(),
            BackendError::Store(e) => e.into(),
            other => Failure::new(Class::Base, "backend", other.to_string()),
        }
    }
}

impl From<TokenError> for Failure {
    fn from(e: TokenError) -> Self {
        Failure::new(Class::Token, e.check(), e.to_string())
    }
}

impl From<FollowError> for Failure {
    fn from(e: FollowError) -> Self {
        Failure {
            advanced: Some(e.advanced()),
            ..Failure::new(Class::Verification, e.check(), e.to_string())
        }
    }
}

impl From<ManifestError> for Failure {
    fn from(e: ManifestError) -> Self {
        Failure::new(Class::Verification, e.check(), e.to_string())
    }
}

impl From<ImageError> for Failure {
    fn from(e: ImageError) -> Self {
        Failure::new(Class::Verification, e.check(), e.to_string())
    }
}

impl From<VerifyError> for Failure {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::Io(io) => Failure::new(Class::Base, "io", format!("reading image: {io}")),
            e => Failure::new(Class::Verification, e.check(), e.to_string()),
        }
    }
}

impl From<SubscribeError> for Failure {
    fn from(e: SubscribeError) -> Self {
        match e {
            SubscribeError::Token(e) => e.into(),
            SubscribeError::Ledger(e) => e.into(),
            e @ SubscribeError::State { .. } => {
                Failure::new(Class::Base, "follower-state", e.to_string())
            }
            e => Failure::new(Class::Base, "io", e.to_string()),
        }
    }
}

impl From<FetchError> for Failure {
    fn from(e: FetchError) -> Self {
        match e {
            FetchError::Store(e) => e.into(),
            FetchError::Image(e) => e.into(),
            e @ FetchError::Stalled(_) => Failure::new(Class::Store, "stalled", e.to_string()),
            e => Failure::new(Class::Base, "io", e.to_string()),
        }
    }
}

impl From<VendorError> for Failure {
    fn from(e: VendorError) -> Self {
        let reason = match e {
            VendorError::Ledger(e) => return e.into(),
            VendorError::Store(e) => return e.into(),
            VendorError::Fetch(e) => return e.into(),
            VendorError::Subscribe(e) => return e.into(),
            VendorError::NotInitialized(_) => "not-initialized",
            VendorError::AlreadyInitialized(_) => "already-initialized",
            VendorError::InvalidRelease(_) => "invalid-argument",
            VendorError::AlreadyPublished { .. } => "already-published",
            VendorError::UnknownRelease(_) => "unknown-release",
            VendorError::UnknownReader(_) => "unknown-gateway",
            VendorError::Corrupt(_) => "corrupt",
            VendorError::ForeignTail(_) => "foreign-tail",
            VendorError::Io(_) => "io",
            _ => "vendor",
        };
        Failure::new(Class::Vendor, reason, e.to_string())
    }
}

/// Results of work done without the GIL.
pub type Outcome<T> = Result<T, Failure>;

/// Raises a failure in Python.
pub trait IntoPyResult<T> {
    /// Converts, raising the failure's exception.
    fn into_py_result(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Outcome<T> {
    fn into_py_result(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|f| f.into_pyerr(py))
    }
}

//! `fwledger.Vendor`, `fwledger.Release` and `fwledger.PreparedRelease`.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use fwledger::{Backends, PreparedRelease, Release, ReleaseSpec, Vendor};
use pyo3::prelude::*;

use crate::convert::{self, to_py};
use crate::errors::{Class, Failure, Outcome};
use crate::runtime::{block_on_detached, detached};

/// A vendor: its keys, the channel it writes and the gateways it admits, opened from a home
/// directory (`HOME/vendor/`). Create one with `Vendor.init(home, name)`, open it with
/// `Vendor.open(home)`.
///
/// Methods release the GIL while they work; calls on one `Vendor` from several threads run one
/// after the other. `ledger=` / `store=` take the CLI's `--ledger` / `--store` URLs
/// (`"embedded"`: the SQLite ledger and block store under the home).
#[pyclass(module = "fwledger", name = "Vendor", frozen)]
pub struct PyVendor {
    inner: Mutex<Option<Vendor>>,
    home: PathBuf,
    name: String,
    public_key: String,
    channel: String,
}

/// A locked vendor; `None` when an earlier call was interrupted by an internal error.
fn lock(inner: &Mutex<Option<Vendor>>) -> Outcome<MutexGuard<'_, Option<Vendor>>> {
    inner.lock().map_err(|_| {
        Failure::new(
            Class::Vendor,
            "internal",
            "this Vendor object is unusable after an internal error; open the vendor again",
        )
    })
}

/// Runs `f` on the locked vendor.
fn with_vendor<T>(
    inner: &Mutex<Option<Vendor>>,
    f: impl FnOnce(&mut Vendor) -> Outcome<T>,
) -> Outcome<T> {
    let mut guard = lock(inner)?;
    match guard.as_mut() {
        Some(vendor) => f(vendor),
        None => Err(Failure::new(
            Class::Vendor,
            "closed",
            "the vendor is closed",
        )),
    }
}

impl PyVendor {
    /// Runs `f` on the vendor with the GIL released.
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        f: impl Send + FnOnce(&mut Vendor) -> Outcome<T>,
    ) -> PyResult<T> {
        detached(py, || with_vendor(&self.inner, f))
    }

    fn wrap(home: PathBuf, vendor: Vendor) -> Self {
        PyVendor {
            name: vendor.name().to_string(),
            public_key: hex::encode(vendor.public_key()),
            channel: hex::encode(vendor.channel()),
            inner: Mutex::new(Some(vendor)),
            home,
        }
    }
}

/// The release description `publish` and `prepare` take.
#[allow(clippy::too_many_arguments)]
fn spec(
    model: String,
    hw: &Bound<'_, PyAny>,
    version: String,
    security_version: u64,
    expires: Option<&Bound<'_, PyAny>>,
    prerequisite: Option<String>,
    notes: Option<String>,
    profile: &str,
) -> PyResult<ReleaseSpec> {
    Ok(ReleaseSpec {
        model,
        hardware: convert::hardware(hw)?,
        version,
        security_version,
        expires_in: expires
            .filter(|e| !e.is_none())
            .map(|e| convert::duration(e, "expires"))
            .transpose()?,
        prerequisite,
        notes,
        profile: convert::profile(profile)?,
    })
}

/// Calls a Python progress callback (bytes added so far); its errors are reported as
/// unraisable, since they cannot stop the Rust work that calls it.
fn progress_fn(callback: Option<Py<PyAny>>) -> Option<impl Fn(u64) + Send + Sync> {
    callback.map(|cb| {
        move |done: u64| {
            Python::attach(|py| {
                if let Err(e) = cb.call1(py, (done,)) {
                    e.write_unraisable(py, Some(cb.bind(py)));
                }
            })
        }
    })
}

#[pymethods]
impl PyVendor {
    /// Creates a vendor in `home` (root, release and channel-author keys, first epoch key) and
    /// returns it. `home=None` means `$FWLEDGER_HOME`, else `~/.local/share/fwledger`.
    /// Raises `VendorError` (reason `already-initialized`) if the home has a vendor already.
    #[staticmethod]
    #[pyo3(signature = (home, name, *, ledger = "embedded", store = "embedded"))]
    fn init(
        py: Python<'_>,
        home: Option<PathBuf>,
        name: String,
        ledger: &str,
        store: &str,
    ) -> PyResult<Self> {
        let home = convert::home(home);
        let vendor = detached(py, || {
            let backends = Backends::open(&home, ledger, store)?;
            Ok(Vendor::init(&home, &name, &backends)?)
        })?;
        Ok(PyVendor::wrap(home, vendor))
    }

    /// Opens the vendor in `home` (default as for `init`). Raises `VendorError` (reason
    /// `not-initialized`) if there is none.
    #[staticmethod]
    #[pyo3(signature = (home = None, *, ledger = "embedded", store = "embedded"))]
    fn open(py: Python<'_>, home: Option<PathBuf>, ledger: &str, store: &str) -> PyResult<Self> {
        let home = convert::home(home);
        let vendor = detached(py, || {
            let backends = Backends::open(&home, ledger, store)?;
            Ok(Vendor::open(&home, &backends)?)
        })?;
        Ok(PyVendor::wrap(home, vendor))
    }

    /// The vendor's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The vendor root public key, hex: what devices trust (`vendor_key=` of `verify`).
    #[getter]
    fn public_key(&self) -> &str {
        &self.public_key
    }

    /// The channel id, hex.
    #[getter]
    fn channel(&self) -> &str {
        &self.channel
    }

    /// The home directory the vendor lives in.
    #[getter]
    fn home(&self) -> String {
        self.home.display().to_string()
    }

    /// The current release-key generation (raised by `rotate_key(release_key=True)`).
    #[getter]
    fn release_key_generation(&self, py: Python<'_>) -> PyResult<u64> {
        detached(py, || {
            with_vendor(&self.inner, |v| Ok(v.release_key_generation()))
        })
    }

    /// Publishes a firmware image: adds it to the content store, signs a manifest over the
    /// stored bytes, writes it to `HOME/vendor/manifests/` and announces it on the channel.
    ///
    /// `hw` is one hardware revision or a list; `expires` (seconds, a `timedelta` or text such
    /// as `"90d"`) makes the release expire; `prerequisite` is the minimum installed version;
    /// `profile` is the UnixFS profile of the CID; `progress`, if given, is called with the
    /// number of bytes added so far. Returns a `Release`. Raises `VendorError` (reasons
    /// `already-published`, `invalid-argument`, …), `LedgerError` or `StoreError`.
    #[pyo3(signature = (
        path, *, model, hw, version, security_version = 0, expires = None, prerequisite = None,
        notes = None, profile = "unixfs-v1-2025", progress = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn publish(
        &self,
        py: Python<'_>,
        path: PathBuf,
        model: String,
        hw: &Bound<'_, PyAny>,
        version: String,
        security_version: u64,
        expires: Option<&Bound<'_, PyAny>>,
        prerequisite: Option<String>,
        notes: Option<String>,
        profile: &str,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<PyRelease> {
        let spec = spec(
            model,
            hw,
            version,
            security_version,
            expires,
            prerequisite,
            notes,
            profile,
        )?;
        let progress = progress_fn(progress);
        let release = self.run(py, |vendor| {
            let progress = progress.as_ref().map(|p| p as &(dyn Fn(u64) + Send + Sync));
            block_on_detached(async { Ok(vendor.publish(&path, &spec, progress).await?) })
        })?;
        Ok(PyRelease(release))
    }

    /// Readies a release without announcing it (same arguments as `publish`): the image is
    /// stored and the manifest signed and written. Pass the result to `announce`.
    #[pyo3(signature = (
        path, *, model, hw, version, security_version = 0, expires = None, prerequisite = None,
        notes = None, profile = "unixfs-v1-2025", progress = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn prepare(
        &self,
        py: Python<'_>,
        path: PathBuf,
        model: String,
        hw: &Bound<'_, PyAny>,
        version: String,
        security_version: u64,
        expires: Option<&Bound<'_, PyAny>>,
        prerequisite: Option<String>,
        notes: Option<String>,
        profile: &str,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<PyPreparedRelease> {
        let spec = spec(
            model,
            hw,
            version,
            security_version,
            expires,
            prerequisite,
            notes,
            profile,
        )?;
        let progress = progress_fn(progress);
        let prepared = self.run(py, |vendor| {
            let progress = progress.as_ref().map(|p| p as &(dyn Fn(u64) + Send + Sync));
            block_on_detached(async { Ok(vendor.prepare(&path, &spec, progress).await?) })
        })?;
        Ok(PyPreparedRelease {
            manifest_path: prepared.manifest_path.clone(),
            manifest: serde_json::json!({
                "vendor": prepared.manifest.vendor,
                "model": prepared.manifest.model,
                "hardware": prepared.manifest.hardware,
                "version": prepared.manifest.version.to_string(),
                "security_version": prepared.manifest.security_version,
                "size": prepared.manifest.size,
                "sha256": hex::encode(prepared.manifest.sha256),
                "cid": prepared.manifest.cid,
                "issued": prepared.manifest.issued,
                "expires": prepared.manifest.expires,
                "prerequisite": prepared.manifest.prerequisite.as_ref().map(|v| v.to_string()),
                "notes": prepared.manifest.notes,
            }),
            inner: Mutex::new(Some(prepared)),
        })
    }

    /// Announces a release made by `prepare` on the channel; returns the `Release`. A prepared
    /// release can be announced once.
    fn announce(&self, py: Python<'_>, prepared: &PyPreparedRelease) -> PyResult<PyRelease> {
        let release = self.run(py, |vendor| {
            let mut slot = prepared.inner.lock().map_err(|_| {
                Failure::new(
                    Class::Vendor,
                    "internal",
                    "the prepared release is unusable",
                )
            })?;
            let taken = slot.take().ok_or_else(|| {
                Failure::new(
                    Class::Vendor,
                    "already-announced",
                    "this prepared release was announced already",
                )
            })?;
            let result = block_on_detached(async { Ok(vendor.announce(taken.clone()).await?) });
            if result.is_err() {
                // Nothing was appended: the release can be announced again.
                *slot = Some(taken);
            }
            result
        })?;
        Ok(PyRelease(release))
    }

    /// Issues a subscription token (a secret string, `fwl1…`) for a gateway.
    ///
    /// With `gateway`, the gateway gets a reader key under that name and keeps access across
    /// `rotate_key` until it is revoked; without, a name `gateway-N` is chosen. With
    /// `simple=True` the token carries only today's epoch keys (the paper's side key) and stops
    /// working at the next `rotate_key`.
    #[pyo3(signature = (gateway = None, simple = false))]
    fn token(&self, py: Python<'_>, gateway: Option<String>, simple: bool) -> PyResult<String> {
        if simple && gateway.is_some() {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "a simple-mode token has no gateway name",
            ));
        }
        detached(py, || {
            with_vendor(&self.inner, |v| {
                let name = match (simple, gateway) {
                    (true, _) => None,
                    (false, Some(name)) => Some(name),
                    (false, None) => Some(v.next_reader_name()),
                };
                Ok(v.token(name.as_deref())?)
            })
        })
    }

    /// Withdraws a published release; gateways stop offering it. With `model=None` the version
    /// must exist for one model only. Returns the channel sequence number of the revocation.
    #[pyo3(signature = (version, model = None, reason = "withdrawn by the vendor"))]
    fn revoke(
        &self,
        py: Python<'_>,
        version: String,
        model: Option<String>,
        reason: &str,
    ) -> PyResult<u64> {
        self.run(py, |vendor| {
            block_on_detached(async {
                Ok(vendor.revoke(model.as_deref(), &version, reason).await?)
            })
        })
    }

    /// Starts a new channel epoch (a keyload wrapping the new key to every admitted gateway).
    ///
    /// `revoke=NAME` first revokes that gateway: it cannot read anything published afterwards.
    /// `release_key=True` also certifies a fresh release-signing key with the next generation.
    /// Returns the sequence number of the keyload.
    #[pyo3(signature = (revoke = None, release_key = false))]
    fn rotate_key(
        &self,
        py: Python<'_>,
        revoke: Option<String>,
        release_key: bool,
    ) -> PyResult<u64> {
        self.run(py, |vendor| {
            if release_key {
                vendor.rotate_release_key()?;
            }
            block_on_detached(async { Ok(vendor.rotate(revoke.as_deref()).await?) })
        })
    }

    /// Appends a heartbeat valid for `valid_seconds` (seconds, a `timedelta` or text such as
    /// `"1h"`), so followers can tell a live channel from a frozen one. Returns its sequence
    /// number.
    fn heartbeat(&self, py: Python<'_>, valid_seconds: &Bound<'_, PyAny>) -> PyResult<u64> {
        let validity = convert::duration(valid_seconds, "valid_seconds")?;
        self.run(py, |vendor| {
            block_on_detached(async { Ok(vendor.heartbeat(validity).await?) })
        })
    }

    /// The whole channel as the vendor reads it: a list of dicts with `kind` (`release`,
    /// `revoke`, `heartbeat`, `keyload`, `rejected`) and `seq`, as `fwledger vendor history
    /// --json` prints.
    fn history<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let entries = self.run(py, |vendor| {
            block_on_detached(async { Ok(vendor.history().await?) })
        })?;
        to_py(py, &entries)
    }

    /// The gateways admitted so far, revoked ones included: dicts with `name`, `public` (X25519
    /// key, hex), `added` and `revoked` (Unix seconds or `None`).
    fn gateways<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let readers = detached(py, || {
            with_vendor(&self.inner, |v| Ok(v.readers().to_vec()))
        })?;
        to_py(py, &readers)
    }

    /// Closes the vendor (its ledger and store handles); later calls raise `VendorError`.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        detached(py, || {
            lock(&self.inner)?.take();
            Ok(())
        })
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "Vendor(name={:?}, home={:?}, public_key={:?})",
            self.name,
            self.home.display().to_string(),
            self.public_key
        )
    }
}

/// A published release, as `fwledger vendor publish --json` prints it.
#[pyclass(module = "fwledger", name = "Release", frozen, eq)]
#[derive(PartialEq)]
pub struct PyRelease(pub Release);

#[pymethods]
impl PyRelease {
    /// Channel sequence number of the release message.
    #[getter]
    fn seq(&self) -> u64 {
        self.0.seq
    }

    /// Device model.
    #[getter]
    fn model(&self) -> &str {
        &self.0.model
    }

    /// Semantic version.
    #[getter]
    fn version(&self) -> &str {
        &self.0.version
    }

    /// Anti-rollback counter.
    #[getter]
    fn security_version(&self) -> u64 {
        self.0.security_version
    }

    /// IPFS CID of the image.
    #[getter]
    fn cid(&self) -> &str {
        &self.0.cid
    }

    /// SHA-256 of the image, hex.
    #[getter]
    fn sha256(&self) -> &str {
        &self.0.sha256
    }

    /// Image size in bytes.
    #[getter]
    fn size(&self) -> u64 {
        self.0.size
    }

    /// Path of the signed manifest (COSE_Sign1) on disk.
    #[getter]
    fn manifest_path(&self) -> String {
        self.0.manifest_path.display().to_string()
    }

    /// The release as a dict (JSON-ready), the shape of `publish --json`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.0)
    }

    fn __repr__(&self) -> String {
        format!(
            "Release(seq={}, model={:?}, version={:?}, security_version={}, cid={:?}, size={})",
            self.0.seq,
            self.0.model,
            self.0.version,
            self.0.security_version,
            self.0.cid,
            self.0.size
        )
    }
}

/// A release made by `Vendor.prepare`: stored and signed, not yet on the channel.
#[pyclass(module = "fwledger", name = "PreparedRelease", frozen)]
pub struct PyPreparedRelease {
    inner: Mutex<Option<PreparedRelease>>,
    manifest_path: PathBuf,
    manifest: serde_json::Value,
}

#[pymethods]
impl PyPreparedRelease {
    /// Path of the signed manifest on disk.
    #[getter]
    fn manifest_path(&self) -> String {
        self.manifest_path.display().to_string()
    }

    /// The manifest's fields as a dict (`model`, `version`, `cid`, `sha256`, `size`, …).
    #[getter]
    fn manifest<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::json_to_py(py, &self.manifest)
    }

    /// Whether `Vendor.announce` has taken it.
    #[getter]
    fn announced(&self) -> bool {
        self.inner.lock().map(|p| p.is_none()).unwrap_or(true)
    }

    fn __repr__(&self) -> String {
        format!(
            "PreparedRelease(model={}, version={}, manifest_path={:?})",
            self.manifest["model"],
            self.manifest["version"],
            self.manifest_path.display().to_string()
        )
    }
}

//! Offline checks: `verify` (manifest + image against a vendor key), `fetch` (content store →
//! file, verified while streaming) and `cid`.

use std::path::PathBuf;
use std::time::Duration;

use fwledger::proto::ed25519_dalek::VerifyingKey;
use fwledger::proto::manifest::{verify_manifest, TrustAnchor};
use fwledger::proto::Version;
use fwledger::{verify_release, VerifyError, VerifyOptions};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::convert::{self, json_to_py, manifest_json, Source, SourceRef};
use crate::errors::{Class, Failure, Outcome};
use crate::runtime::{block_on, detached};

fn read_source(source: SourceRef<'_>, what: &str) -> Outcome<Vec<u8>> {
    match source {
        SourceRef::Bytes(b) => Ok(b.to_vec()),
        SourceRef::Path(p) => std::fs::read(p).map_err(|e| {
            Failure::new(
                Class::Base,
                "io",
                format!("cannot read {what} {}: {e}", p.display()),
            )
        }),
    }
}

fn bad_key() -> Failure {
    VerifyError::BadVendorKey.into()
}

/// The time to check expiry against: `now`, else the system clock; none with `check_time=False`.
fn clock(now: Option<u64>, check_time: bool) -> Option<u64> {
    check_time.then(|| now.unwrap_or_else(fwledger::unix_now))
}

/// Verifies a signed release manifest and then the image it describes, as a device does:
/// signature chain up to `vendor_key` (the vendor root key, hex or 32 bytes), expiry, the
/// update policy for the target (`model`, `hw`, the installed version `current`, the highest
/// accepted `security_version`, the lowest trusted release-key generation
/// `min_key_generation`), then the image's exact size and SHA-256, streamed.
///
/// `manifest` and `image` are paths or `bytes`. `now` is the Unix time for expiry checks
/// (default: the system clock); `check_time=False` skips them. Returns the verified manifest
/// as a dict. Raises `VerificationError` whose `reason` names the failed check (e.g.
/// `"image-sha256"`, `"image-size"`, `"manifest-signature"`, `"model"`, `"hardware"`,
/// `"security-version"`), as the last line of `fwledger verify` does.
#[pyfunction]
#[pyo3(signature = (
    *, manifest, image, vendor_key, model = None, hw = None, current = None,
    security_version = 0, min_key_generation = 0, now = None, check_time = true
))]
#[allow(clippy::too_many_arguments)]
pub fn verify<'py>(
    py: Python<'py>,
    manifest: &Bound<'py, PyAny>,
    image: &Bound<'py, PyAny>,
    vendor_key: &Bound<'py, PyAny>,
    model: Option<String>,
    hw: Option<String>,
    current: Option<String>,
    security_version: u64,
    min_key_generation: u64,
    now: Option<u64>,
    check_time: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let vendor_key = convert::key32(vendor_key, "vendor_key")?;
    let current: Option<Version> = current
        .map(|v| {
            v.parse().map_err(|_| {
                PyValueError::new_err(format!("current {v:?} is not a semantic version"))
            })
        })
        .transpose()?;
    let manifest = Source::from_py(manifest, "manifest")?;
    let image = Source::from_py(image, "image")?;
    let options = VerifyOptions {
        model,
        hardware: hw,
        current,
        security_version,
        min_key_generation,
        now: clock(now, check_time),
    };
    let (manifest, image) = (manifest.borrow(), image.borrow());
    let verified = detached(py, move || {
        let manifest = read_source(manifest, "manifest")?;
        let verified = match image {
            SourceRef::Bytes(b) => verify_release(&manifest, b, &vendor_key, &options)?,
            SourceRef::Path(p) => {
                let file = std::fs::File::open(p).map_err(|e| {
                    Failure::new(
                        Class::Base,
                        "io",
                        format!("cannot open image {}: {e}", p.display()),
                    )
                })?;
                // verify_release reads in 1 MiB chunks itself: no BufReader in between.
                verify_release(&manifest, file, &vendor_key, &options)?
            }
        };
        Ok(manifest_json(&verified))
    })?;
    json_to_py(py, &verified)
}

/// Fetches the image a signed manifest names from the content store into `out`, verified
/// while it streams: the manifest is checked against `vendor_key` first, the bytes go to a
/// temporary file beside `out`, and only a complete image of the right size and SHA-256 is
/// renamed to `out` (nothing is left on failure). A download that stalls for `stall_timeout`
/// seconds is abandoned. Returns the verified manifest as a dict.
///
/// Raises `VerificationError` (manifest or image checks), `StoreError` (content missing,
/// `block-mismatch` for tampered blocks, `stalled`).
#[pyfunction]
#[pyo3(signature = (
    manifest, vendor_key, out, home = None, *, store = "embedded", stall_timeout = 30.0,
    min_key_generation = 0, now = None, check_time = true
))]
#[allow(clippy::too_many_arguments)]
pub fn fetch<'py>(
    py: Python<'py>,
    manifest: &Bound<'py, PyAny>,
    vendor_key: &Bound<'py, PyAny>,
    out: PathBuf,
    home: Option<PathBuf>,
    store: &str,
    stall_timeout: f64,
    min_key_generation: u64,
    now: Option<u64>,
    check_time: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let vendor_key = convert::key32(vendor_key, "vendor_key")?;
    let stall = Duration::try_from_secs_f64(stall_timeout)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            PyValueError::new_err("stall_timeout must be a positive number of seconds")
        })?;
    let home = convert::home(home);
    let manifest = Source::from_py(manifest, "manifest")?;
    let manifest = manifest.borrow();
    let now = clock(now, check_time);
    let verified = block_on(py, move || async move {
        let bytes = read_source(manifest, "manifest")?;
        let root = VerifyingKey::from_bytes(&vendor_key).map_err(|_| bad_key())?;
        let trust = TrustAnchor {
            root,
            min_key_generation,
        };
        let verified = verify_manifest(&bytes, &trust, now)?;
        let store = fwledger_store::open(store, &home)?;
        fwledger::fetch(store.as_ref(), &verified.manifest, &out, stall).await?;
        Ok(manifest_json(&verified))
    })?;
    json_to_py(py, &verified)
}

/// The CID of a file exactly as Kubo's `ipfs add --only-hash -Q` prints it under the same
/// import profile (`"unixfs-v1-2025"`, the default, or `"unixfs-v0-2015"`).
#[pyfunction]
#[pyo3(signature = (path, profile = "unixfs-v1-2025"))]
pub fn cid(py: Python<'_>, path: PathBuf, profile: &str) -> PyResult<String> {
    let profile = convert::profile(profile)?;
    detached(py, move || {
        fwledger_store::cid_of_file(&path, profile).map_err(|e| match e {
            fwledger_store::StoreError::Io(io) => Failure::new(
                Class::Base,
                "io",
                format!("cannot read {}: {io}", path.display()),
            ),
            e => e.into(),
        })
    })
}

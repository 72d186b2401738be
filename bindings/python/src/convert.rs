//! Python ⇄ Rust values: arguments in (paths, keys, durations, hardware lists), JSON-shaped
//! results out (the same shapes as the CLI's `--json`).

use std::path::PathBuf;
use std::time::Duration;

use fwledger::proto::manifest::VerifiedManifest;
use fwledger::Profile;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyList, PyString};
use serde_json::Value;

/// A JSON value as the equivalent Python object (`dict`, `list`, `int`, `str`, …).
pub fn json_to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            // serde_json sorts keys; a channel entry reads better with its kind first.
            if let Some(kind) = map.get("kind") {
                dict.set_item("kind", json_to_py(py, kind)?)?;
            }
            for (k, v) in map.iter().filter(|(k, _)| k.as_str() != "kind") {
                dict.set_item(k, json_to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// Any serializable value as a Python object, through its JSON form.
pub fn to_py<'py, T: serde::Serialize + ?Sized>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let json = serde_json::to_value(value)
        .map_err(|e| PyValueError::new_err(format!("cannot convert result: {e}")))?;
    json_to_py(py, &json)
}

/// A verified manifest as JSON: its fields plus the release-key generation that signed it.
pub fn manifest_json(verified: &VerifiedManifest) -> Value {
    let m = &verified.manifest;
    serde_json::json!({
        "vendor": m.vendor,
        "vendor_key": hex::encode(m.vendor_key),
        "model": m.model,
        "hardware": m.hardware,
        "version": m.version.to_string(),
        "security_version": m.security_version,
        "size": m.size,
        "sha256": hex::encode(m.sha256),
        "cid": m.cid,
        "issued": m.issued,
        "expires": m.expires,
        "prerequisite": m.prerequisite.as_ref().map(|v| v.to_string()),
        "notes": m.notes,
        "key_generation": verified.certificate.generation,
    })
}

/// The home directory: the argument, else `$FWLEDGER_HOME`, else `~/.local/share/fwledger`.
pub fn home(home: Option<PathBuf>) -> PathBuf {
    home.unwrap_or_else(fwledger::default_home)
}

/// `hw=`: one hardware revision as a string, or a sequence of them.
pub fn hardware(value: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if let Ok(one) = value.cast::<PyString>() {
        return Ok(vec![one.to_cow()?.into_owned()]);
    }
    let mut list = Vec::new();
    for item in value
        .try_iter()
        .map_err(|_| PyTypeError::new_err("hw must be a string or a list of strings"))?
    {
        let item = item?;
        let s = item
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err("hw must be a string or a list of strings"))?;
        list.push(s.to_cow()?.into_owned());
    }
    Ok(list)
}

/// A duration: seconds (`int` or `float`), a `datetime.timedelta`, or text as the CLI takes it
/// (`90`, `90s`, `30m`, `12h`, `7d`, `2w`).
pub fn duration(value: &Bound<'_, PyAny>, what: &str) -> PyResult<Duration> {
    let bad = || {
        PyValueError::new_err(format!(
            "{what} must be seconds, a timedelta or a duration such as \"30m\", \"12h\", \"90d\""
        ))
    };
    if let Ok(text) = value.cast::<PyString>() {
        return fwledger::parse_duration(&text.to_cow()?).ok_or_else(bad);
    }
    if value.is_instance_of::<PyBool>() {
        return Err(bad());
    }
    let seconds: f64 = if value.hasattr("total_seconds")? {
        value.call_method0("total_seconds")?.extract()?
    } else {
        value
            .extract()
            .map_err(|_| PyTypeError::new_err(format!("{what} must be a number of seconds")))?
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| bad())
}

/// A 32-byte public key: 64 hex characters or 32 raw bytes.
pub fn key32(value: &Bound<'_, PyAny>, what: &str) -> PyResult<[u8; 32]> {
    let bad = || PyValueError::new_err(format!("{what} must be 64 hex characters or 32 bytes"));
    if let Ok(text) = value.cast::<PyString>() {
        return hex::decode(text.to_cow()?.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad);
    }
    if let Ok(bytes) = value.cast::<PyBytes>() {
        return bytes.as_bytes().try_into().map_err(|_| bad());
    }
    Err(PyTypeError::new_err(format!(
        "{what} must be a hex string or bytes"
    )))
}

/// An optional key argument.
pub fn optional_key(value: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<[u8; 32]>> {
    value
        .filter(|v| !v.is_none())
        .map(|v| key32(v, what))
        .transpose()
}

/// A UnixFS profile name.
pub fn profile(name: &str) -> PyResult<Profile> {
    name.parse().map_err(|_| {
        PyValueError::new_err(format!(
            "unknown CID profile {name:?} (known: unixfs-v1-2025, unixfs-v0-2015)"
        ))
    })
}

/// Input given either as a file path or as the bytes themselves.
pub enum Source<'py> {
    /// A file (`str` or `os.PathLike`).
    Path(PathBuf),
    /// In-memory bytes.
    Bytes(Bound<'py, PyBytes>),
}

impl<'py> Source<'py> {
    /// Reads `value`: `bytes` are taken as content, anything else as a path.
    pub fn from_py(value: &Bound<'py, PyAny>, what: &str) -> PyResult<Self> {
        if let Ok(bytes) = value.cast::<PyBytes>() {
            return Ok(Source::Bytes(bytes.clone()));
        }
        value.extract::<PathBuf>().map(Source::Path).map_err(|_| {
            PyTypeError::new_err(format!(
                "{what} must be a path (str or os.PathLike) or bytes"
            ))
        })
    }

    /// Borrows the content or the path, for use without the GIL.
    pub fn borrow(&self) -> SourceRef<'_> {
        match self {
            Source::Path(p) => SourceRef::Path(p),
            Source::Bytes(b) => SourceRef::Bytes(b.as_bytes()),
        }
    }
}

/// A [`Source`] that can cross into work done without the GIL (`bytes` are immutable).
#[derive(Clone, Copy)]
pub enum SourceRef<'a> {
    /// A file.
    Path(&'a std::path::Path),
    /// In-memory bytes.
    Bytes(&'a [u8]),
}

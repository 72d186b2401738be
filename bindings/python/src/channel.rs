//! Reading and following a channel: `read_channel`, `follow` (→ `Follow`), the sans-IO
//! `Follower`, and `parse_token`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fwledger::proto::channel::{Delivery, Event, Follower, Freshness, Token};
use fwledger::{ChannelEntry, ChannelItem, Ledger, Subscription};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use serde_json::Value;

use crate::convert::{self, json_to_py};
use crate::errors::{Class, Failure, IntoPyResult, Outcome};
use crate::runtime::{block_on, block_on_detached, detached};

/// Longest stretch spent waiting without the GIL before checking for Ctrl-C (and `close`).
const WAIT_SLICE: Duration = Duration::from_millis(200);

/// A channel item as JSON: the `ChannelEntry` shape of `channel read --json`; a release also
/// carries `signed_manifest`, the signed manifest in hex (what `fetch` and devices verify).
fn item_json(item: &ChannelItem) -> Value {
    match item {
        ChannelItem::Message(d) => delivery_json(d),
        ChannelItem::Rejected { position, error } => {
            serde_json::to_value(ChannelEntry::rejected(*position, error)).unwrap_or(Value::Null)
        }
    }
}

fn delivery_json(delivery: &Delivery) -> Value {
    let mut json =
        serde_json::to_value(ChannelEntry::from_delivery(delivery)).unwrap_or(Value::Null);
    if let (Event::Release { signed, .. }, Value::Object(map)) = (&delivery.event, &mut json) {
        map.insert("signed_manifest".into(), Value::String(hex::encode(signed)));
    }
    json
}

fn parse_token(text: &str) -> Outcome<Token> {
    Ok(Token::from_text(text)?)
}

fn open_ledger(home: &std::path::Path, url: &str) -> Outcome<Arc<dyn Ledger>> {
    Ok(fwledger_ledger::open(url, home)?)
}

/// A subscription for `token` on the ledger, pinned to `vendor_key` if given, resuming from
/// the state file if given.
fn subscription(
    token: &str,
    home: &std::path::Path,
    ledger: &str,
    vendor_key: Option<[u8; 32]>,
    state: Option<&std::path::Path>,
) -> Outcome<Subscription> {
    let token = parse_token(token)?;
    let follower = token.follower(vendor_key.as_ref())?;
    let mut subscription = Subscription::with_follower(follower, open_ledger(home, ledger)?);
    if let Some(path) = state {
        subscription = subscription.persist_to(path)?;
    }
    Ok(subscription)
}

/// Reads and verifies every message of the channel a subscription token opens, as a list of
/// dicts (`kind`: `release`, `revoke`, `heartbeat`, `keyload`, or `rejected` with `check` and
/// `error` for a message that failed verification, e.g. `check="epoch-key"` for a revoked
/// gateway). `vendor_key` pins the vendor: a token of any other vendor raises `TokenError`.
#[pyfunction]
#[pyo3(signature = (token, home = None, *, ledger = "embedded", vendor_key = None))]
pub fn read_channel<'py>(
    py: Python<'py>,
    token: &str,
    home: Option<PathBuf>,
    ledger: &str,
    vendor_key: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let home = convert::home(home);
    let pin = convert::optional_key(vendor_key, "vendor_key")?;
    let items = block_on(py, || async {
        let mut subscription = subscription(token, &home, ledger, pin, None)?;
        Ok(subscription.drain().await?)
    })?;
    json_to_py(py, &Value::Array(items.iter().map(item_json).collect()))
}

/// Follows a channel: an iterator of channel entries (dicts, as `read_channel` returns) that
/// yields what is on the ledger and then blocks, with the GIL released, until the vendor
/// appends more. `timeout` (seconds) ends the iteration after that long without a new
/// message; `None` waits for ever (Ctrl-C still interrupts). `state` names a file where the
/// position is kept after every message, so a later `follow` resumes there.
#[pyfunction]
#[pyo3(signature = (token, home = None, state = None, timeout = None, *, ledger = "embedded", vendor_key = None))]
pub fn follow(
    py: Python<'_>,
    token: &str,
    home: Option<PathBuf>,
    state: Option<PathBuf>,
    timeout: Option<f64>,
    ledger: &str,
    vendor_key: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyFollow> {
    let home = convert::home(home);
    let pin = convert::optional_key(vendor_key, "vendor_key")?;
    let idle = timeout.map(seconds).transpose()?;
    let subscription = detached(py, || {
        subscription(token, &home, ledger, pin, state.as_deref())
    })?;
    Ok(PyFollow {
        inner: Mutex::new(Some(subscription)),
        idle,
        closed: AtomicBool::new(false),
    })
}

fn seconds(s: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| PyValueError::new_err("a timeout must be a non-negative number of seconds"))
}

/// An iterator over a followed channel (see `follow`). Also a context manager; `close()` ends
/// it, also from another thread.
#[pyclass(module = "fwledger", name = "Follow", frozen)]
pub struct PyFollow {
    inner: Mutex<Option<Subscription>>,
    idle: Option<Duration>,
    closed: AtomicBool,
}

impl PyFollow {
    /// Waits up to `limit` (for ever with `None`) for the next item.
    fn wait(&self, py: Python<'_>, limit: Option<Duration>) -> PyResult<Option<Value>> {
        let deadline = limit.map(|l| Instant::now() + l);
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Ok(None);
            }
            let slice = match deadline {
                Some(deadline) => deadline
                    .saturating_duration_since(Instant::now())
                    .min(WAIT_SLICE),
                None => WAIT_SLICE,
            };
            let item = detached(py, || {
                let mut guard = self.inner.lock().map_err(|_| closed())?;
                if self.closed.load(Ordering::Acquire) {
                    guard.take();
                    return Ok(None);
                }
                let Some(subscription) = guard.as_mut() else {
                    return Ok(None);
                };
                block_on_detached(async { Ok(subscription.next(Some(slice)).await?) })
            })?;
            if let Some(item) = item {
                return Ok(Some(item_json(&item)));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            py.check_signals()?;
        }
    }
}

fn closed() -> Failure {
    Failure::new(Class::Base, "closed", "the follower is closed")
}

#[pymethods]
impl PyFollow {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.wait(py, self.idle)?
            .map(|v| json_to_py(py, &v))
            .transpose()
    }

    /// The next entry if one arrives within `timeout` seconds (`0`: only what is already on
    /// the ledger; `None`: wait for ever), else `None`. What `follow_async` builds on.
    #[pyo3(signature = (timeout = 0.0))]
    fn poll<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let limit = timeout.map(seconds).transpose()?;
        self.wait(py, limit)?
            .map(|v| json_to_py(py, &v))
            .transpose()
    }

    /// Whether the channel is known to be live, from the latest heartbeat: a dict with `state`
    /// (`"unknown"`, `"fresh"` or `"stale"`) and `valid_until` (Unix seconds or `None`).
    #[getter]
    fn freshness<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let freshness = detached(py, || {
            let guard = self.inner.lock().map_err(|_| closed())?;
            Ok(guard.as_ref().map(Subscription::freshness))
        })?;
        let (state, valid_until) = match freshness {
            None | Some(Freshness::Unknown) => ("unknown", None),
            Some(Freshness::Fresh { valid_until }) => ("fresh", Some(valid_until)),
            Some(Freshness::Stale { valid_until }) => ("stale", Some(valid_until)),
        };
        json_to_py(
            py,
            &serde_json::json!({"state": state, "valid_until": valid_until}),
        )
    }

    /// The next ledger position to read.
    #[getter]
    fn cursor(&self, py: Python<'_>) -> PyResult<u64> {
        detached(py, || {
            let guard = self.inner.lock().map_err(|_| closed())?;
            guard.as_ref().map(Subscription::cursor).ok_or_else(closed)
        })
    }

    /// Stops following: iteration ends (a wait in progress returns within a fraction of a
    /// second). Safe to call from any thread, and more than once.
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if let Ok(mut guard) = self.inner.try_lock() {
            guard.take();
        }
    }

    /// Whether `close` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        self.close();
        false
    }
}

/// The sans-IO channel follower: feed it channel messages (bytes, in ledger order) from any
/// transport and it verifies each (signature, hash chain, sequence, epoch keys, manifests).
#[pyclass(module = "fwledger", name = "Follower", frozen)]
pub struct PyFollower {
    inner: Mutex<Follower>,
}

#[pymethods]
impl PyFollower {
    /// A follower of the channel that `token` opens, at its first message. `vendor_key` pins
    /// the vendor (`TokenError` with reason `vendor-pin` otherwise).
    #[new]
    #[pyo3(signature = (token, vendor_key = None))]
    fn new(py: Python<'_>, token: &str, vendor_key: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let pin = convert::optional_key(vendor_key, "vendor_key")?;
        let follower = parse_token(token)
            .and_then(|t| Ok(t.follower(pin.as_ref())?))
            .into_py_result(py)?;
        Ok(PyFollower {
            inner: Mutex::new(follower),
        })
    }

    /// Verifies the next message and returns its entry (a dict as `read_channel` gives).
    /// Raises `VerificationError` whose `reason` names the failed check (`message-signature`,
    /// `gap`, `replay`, `hash-chain`, `epoch-key`, …) and whose `advanced` tells whether the
    /// follower moved past the message. `now` is the Unix time for manifest expiry (default:
    /// the system clock; `check_time=False`: no expiry check).
    #[pyo3(signature = (message, now = None, check_time = true))]
    fn ingest<'py>(
        &self,
        py: Python<'py>,
        message: &[u8],
        now: Option<u64>,
        check_time: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let now = check_time.then(|| now.unwrap_or_else(fwledger::unix_now));
        let json = detached(py, || {
            let mut follower = self.inner.lock().map_err(|_| closed())?;
            Ok(delivery_json(&follower.ingest(message, now)?))
        })?;
        json_to_py(py, &json)
    }

    /// The sequence number of the next message expected.
    #[getter]
    fn next_seq(&self) -> PyResult<u64> {
        self.inner
            .lock()
            .map(|f| f.next_seq())
            .map_err(|_| PyValueError::new_err("the follower is unusable after an internal error"))
    }

    /// The channel id, hex.
    #[getter]
    fn channel(&self) -> PyResult<String> {
        self.inner
            .lock()
            .map(|f| hex::encode(f.channel()))
            .map_err(|_| PyValueError::new_err("the follower is unusable after an internal error"))
    }
}

/// Parses and checks a subscription token (checksum, format, the channel author's certificate,
/// and the vendor pin if `vendor_key` is given) and describes it: a dict with `vendor`,
/// `vendor_key` (hex), `channel` (hex), `epochs` (the epoch numbers whose keys it carries),
/// `reader` (whether it has a reader key of its own, i.e. is not simple-mode) and `ledger_hint`.
/// Raises `TokenError` whose `reason` names the failed check.
#[pyfunction(name = "parse_token")]
#[pyo3(signature = (token, vendor_key = None))]
pub fn parse_token_py<'py>(
    py: Python<'py>,
    token: &str,
    vendor_key: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let pin = convert::optional_key(vendor_key, "vendor_key")?;
    let json = (|| -> Outcome<Value> {
        let token = parse_token(token)?;
        let follower = token.follower(pin.as_ref())?;
        Ok(serde_json::json!({
            "vendor": token.vendor,
            "vendor_key": hex::encode(token.vendor_key),
            "channel": hex::encode(follower.channel()),
            "epochs": token.keys.iter().map(|(epoch, _)| epoch).collect::<Vec<_>>(),
            "reader": token.reader.is_some(),
            "ledger_hint": token.ledger_hint,
        }))
    })()
    .into_py_result(py)?;
    json_to_py(py, &json)
}

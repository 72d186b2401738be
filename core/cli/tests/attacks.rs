//! The attack matrix of DESIGN.md §2, end to end: a vendor, the real gateway (mosquitto with TLS,
//! client certificates and the per-device ACL; HTTPS downloads; channel followers) and both
//! device agents — the Rust agent (`fwledger-device`, the host port behind `fwledger device run`)
//! and the C agent (`firmware-c`, its POSIX program `fwledger-device-c`).
//!
//! Every attack is one named case, injected where the attacker sits, and each asserts that the
//! system fails closed. The table in `docs/SECURITY.md` lists every case with the unit-level tests
//! of the same attack.
//!
//! - `gateway_refuses_channel_and_mirror_attacks`: the attacker is the ledger (or the network in
//!   front of it: it forges, replays, reorders, drops and withholds channel messages) and the
//!   IPFS side (the content store returns other bytes, more bytes, or stalls); the vendor revokes
//!   the gateway. The gateway must refuse with the right check name, and a device registered with
//!   it is never offered the bad release.
//! - `compromised_gateway_vs_rust_agent` / `compromised_gateway_vs_c_agent`: after a genuine
//!   update through the real gateway, the gateway is compromised: the attacker holds its broker
//!   identity and its HTTPS server key, publishes notices of its choice and serves bytes of its
//!   choice. The device must refuse with the right check name (`<check>: <message>`), keep running
//!   its verified image and security version, and finally still install a genuine release.
//!
//! The C column needs the C agent: `FWLEDGER_C_AGENT=PATH` (the `fwledger-device-c` program that
//! `firmware-c/tests/run.sh` builds). Without it the C test says so and passes, unless
//! `FWLEDGER_REQUIRE_C_AGENT=1`. `FWLEDGER_ATTACKS=name,name` runs only the named cases.
//!
//! Everything listens on 127.0.0.1, every wait is bounded, and every process is stopped on drop.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown as NetShutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use fwledger::{Backends, ReleaseSpec, Vendor};
use fwledger_device::host::{self, DeviceConfig};
use fwledger_device::Shutdown;
use fwledger_gateway::broker::Broker;
use fwledger_gateway::registry::{ChannelHealth, NewDevice, Registry, ReleaseState};
use fwledger_gateway::{
    Gateway, GatewayConfig, GatewayPaths, InitOptions, RunOptions, RunningGateway, Timing,
};
use fwledger_ledger::{ChannelId, Ledger, LedgerError, StoredMessage};
use fwledger_link::{topics, Bundle, DeviceStatus, UpdateState};
use fwledger_proto::channel::{message, Header, Kind};
use fwledger_proto::ed25519_dalek::SigningKey;
use fwledger_proto::keys::{KeyCertificate, Role};
use fwledger_proto::sha2::{Digest, Sha256};
use fwledger_proto::{cose, Manifest, Notice};
use fwledger_store::{Added, ContentStore, ContentStream, Profile, StoreError};

/// Upper bound of every wait for an expected event.
const WAIT: Duration = Duration::from_secs(60);
/// Size of every test image (all the same, so that images can be swapped for one another).
const IMAGE_SIZE: usize = 192 * 1024;
const MODEL: &str = "lamp";
const HW: &str = "rev-b";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn free_port() -> u16 {
    common::free_port().parse().unwrap()
}

/// Deterministic image bytes for a tag.
fn image(tag: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(IMAGE_SIZE + 32);
    let mut n = 0u64;
    while out.len() < IMAGE_SIZE {
        let mut h = Sha256::new();
        h.update(tag.as_bytes());
        h.update(n.to_be_bytes());
        out.extend_from_slice(&h.finalize());
        n += 1;
    }
    out.truncate(IMAGE_SIZE);
    out
}

/// Whether the case `name` is selected by `FWLEDGER_ATTACKS` (all are by default).
fn selected(name: &str) -> bool {
    match std::env::var("FWLEDGER_ATTACKS") {
        Ok(list) if !list.trim().is_empty() => list.split(',').any(|n| n.trim() == name),
        _ => true,
    }
}

/// Runs named cases in order, prints the outcome table and fails with every failed case.
struct Matrix {
    column: &'static str,
    results: Vec<(&'static str, Result<String, String>)>,
    started: Instant,
}

impl Matrix {
    fn new(column: &'static str) -> Matrix {
        Matrix {
            column,
            results: Vec::new(),
            started: Instant::now(),
        }
    }

    async fn case<F>(&mut self, name: &'static str, f: F)
    where
        F: std::future::Future<Output = Result<String, String>>,
    {
        if !selected(name) {
            return;
        }
        let started = Instant::now();
        let result = f.await;
        eprintln!(
            "[{}] {name}: {} ({:.1} s)",
            self.column,
            match &result {
                Ok(outcome) => format!("ok — {outcome}"),
                Err(e) => format!("FAILED — {e}"),
            },
            started.elapsed().as_secs_f64()
        );
        self.results.push((name, result));
    }

    fn finish(self) {
        eprintln!(
            "\n{} attack matrix ({:.1} s):",
            self.column,
            self.started.elapsed().as_secs_f64()
        );
        for (name, result) in &self.results {
            match result {
                Ok(outcome) => eprintln!("  {name:<34} ok      {outcome}"),
                Err(e) => eprintln!("  {name:<34} FAILED  {e}"),
            }
        }
        let failed: Vec<_> = self
            .results
            .iter()
            .filter(|(_, r)| r.is_err())
            .map(|(n, _)| *n)
            .collect();
        assert!(
            failed.is_empty(),
            "{}: cases failed: {failed:?}",
            self.column
        );
    }
}

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what())
    }
}

// =============================================================================================
// The adversarial ledger view: what a malicious ledger node (or the network in front of it)
// shows the gateway. It may insert messages of its own (forged, replayed, reordered), drop
// genuine ones and withhold new ones. The vendor writes to the real ledger.
// =============================================================================================

#[derive(Clone)]
enum Entry {
    Inner(u64),
    Injected(Vec<u8>),
}

#[derive(Default)]
struct View {
    entries: Vec<Entry>,
    /// Inner positions already placed in (or dropped from) the view.
    mapped: u64,
    /// Withhold inner messages from `mapped` on.
    hold: bool,
    /// Drop this many of the next inner messages.
    drop_next: u64,
}

struct EvilLedger {
    inner: Arc<dyn Ledger>,
    channel: ChannelId,
    view: Mutex<View>,
}

impl EvilLedger {
    fn new(inner: Arc<dyn Ledger>, channel: ChannelId) -> Arc<EvilLedger> {
        Arc::new(EvilLedger {
            inner,
            channel,
            view: Mutex::default(),
        })
    }

    async fn sync(&self) -> Result<(), LedgerError> {
        let inner_next = self.inner.next_seq(&self.channel).await?;
        let mut view = self.view.lock().unwrap();
        if view.hold {
            return Ok(());
        }
        while view.mapped < inner_next {
            let p = view.mapped;
            view.mapped += 1;
            if view.drop_next > 0 {
                view.drop_next -= 1;
                continue;
            }
            view.entries.push(Entry::Inner(p));
        }
        Ok(())
    }

    /// Appends an attacker's message to what the gateway sees (after what it saw so far).
    async fn inject(&self, bytes: Vec<u8>) {
        self.sync().await.unwrap();
        self.view
            .lock()
            .unwrap()
            .entries
            .push(Entry::Injected(bytes));
    }

    async fn hold(&self, hold: bool) {
        if hold {
            self.sync().await.unwrap();
        }
        self.view.lock().unwrap().hold = hold;
    }

    async fn drop_next(&self, n: u64) {
        self.sync().await.unwrap();
        self.view.lock().unwrap().drop_next += n;
    }

    /// The genuine message at inner position `seq`.
    async fn genuine(&self, seq: u64) -> Vec<u8> {
        let read = self.inner.read(&self.channel, seq, 1).await.unwrap();
        read.into_iter().next().expect("genuine message").bytes
    }

    async fn genuine_next(&self) -> u64 {
        self.inner.next_seq(&self.channel).await.unwrap()
    }
}

#[async_trait::async_trait]
impl Ledger for EvilLedger {
    async fn append(
        &self,
        channel: &ChannelId,
        seq: u64,
        message: &[u8],
    ) -> Result<(), LedgerError> {
        // The gateway never appends; the vendor writes to the real ledger.
        self.inner.append(channel, seq, message).await
    }

    async fn read(
        &self,
        channel: &ChannelId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, LedgerError> {
        if *channel != self.channel {
            return self.inner.read(channel, from, limit).await;
        }
        self.sync().await?;
        let wanted: Vec<(u64, Entry)> = {
            let view = self.view.lock().unwrap();
            (from..)
                .zip(view.entries.iter().skip(from as usize).take(limit).cloned())
                .collect()
        };
        let mut out = Vec::with_capacity(wanted.len());
        for (seq, entry) in wanted {
            let bytes = match entry {
                Entry::Injected(bytes) => bytes,
                Entry::Inner(p) => match self.inner.read(channel, p, 1).await?.into_iter().next() {
                    Some(m) => m.bytes,
                    None => break,
                },
            };
            out.push(StoredMessage { seq, bytes });
        }
        Ok(out)
    }

    async fn next_seq(&self, channel: &ChannelId) -> Result<u64, LedgerError> {
        if *channel != self.channel {
            return self.inner.next_seq(channel).await;
        }
        self.sync().await?;
        Ok(self.view.lock().unwrap().entries.len() as u64)
    }

    async fn wait(
        &self,
        channel: &ChannelId,
        from: u64,
        timeout: Duration,
    ) -> Result<bool, LedgerError> {
        if *channel != self.channel {
            return self.inner.wait(channel, from, timeout).await;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.next_seq(channel).await? > from {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn channels(&self) -> Result<Vec<(ChannelId, u64)>, LedgerError> {
        self.inner.channels().await
    }
}

// =============================================================================================
// The malicious IPFS side: a content store that returns other bytes, more bytes, or stalls.
// =============================================================================================

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum StoreMode {
    Honest,
    /// One bit of the first chunk flipped.
    OtherBytes,
    /// 4 KiB more than the content.
    Longer,
    /// The first chunk, then nothing.
    Stall,
}

struct EvilStore {
    inner: Arc<dyn ContentStore>,
    mode: Mutex<StoreMode>,
}

impl EvilStore {
    fn set(&self, mode: StoreMode) {
        *self.mode.lock().unwrap() = mode;
    }
}

#[async_trait::async_trait]
impl ContentStore for EvilStore {
    async fn add_file(
        &self,
        path: &Path,
        profile: Profile,
        progress: Option<&(dyn Fn(u64) + Send + Sync)>,
    ) -> Result<Added, StoreError> {
        self.inner.add_file(path, profile, progress).await
    }

    async fn get(&self, cid: &str, max_size: u64) -> Result<ContentStream, StoreError> {
        let mode = *self.mode.lock().unwrap();
        // Ask the honest store for more than the caller allows, so that "longer" can be served.
        let stream = self
            .inner
            .get(cid, max_size.saturating_add(1 << 20))
            .await?;
        Ok(match mode {
            StoreMode::Honest => stream,
            StoreMode::OtherBytes => {
                let mut first = true;
                Box::pin(stream.map(move |chunk| {
                    let mut chunk = chunk?;
                    if first && !chunk.is_empty() {
                        chunk[0] ^= 1;
                        first = false;
                    }
                    Ok(chunk)
                }))
            }
            StoreMode::Longer => {
                Box::pin(stream.chain(futures::stream::once(async { Ok(vec![0x5a; 4096]) })))
            }
            StoreMode::Stall => Box::pin(stream.take(1).chain(futures::stream::pending())),
        })
    }

    async fn has(&self, cid: &str) -> Result<bool, StoreError> {
        self.inner.has(cid).await
    }

    async fn pin(&self, cid: &str) -> Result<(), StoreError> {
        self.inner.pin(cid).await
    }
}

// =============================================================================================
// The compromised gateway: its broker identity (MQTT client certificate) and its HTTPS server
// key, used by the attacker.
// =============================================================================================

type Reports = Arc<Mutex<Vec<(String, DeviceStatus)>>>;

struct Attacker {
    client: rumqttc::Client,
    reports: Reports,
    acks: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Attacker {
    /// Connects to the gateway's broker as the gateway (its own certificate and client id).
    fn connect(paths: &GatewayPaths, config: &GatewayConfig) -> Attacker {
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap();
        let tls = fwledger_gateway::tls::client_config(
            &read(paths.ca_cert()),
            Some((&read(paths.client_cert()), &read(paths.client_key()))),
        )
        .unwrap();
        let options = fwledger_gateway::mqtt::BrokerUrl::parse(&config.local_mqtt_url())
            .unwrap()
            .options(fwledger_gateway::GATEWAY_IDENTITY, Some(tls))
            .unwrap();
        let (client, mut connection) = rumqttc::Client::new(options, 64);
        let reports: Reports = Arc::default();
        let acks = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let subscribed = Arc::new(AtomicBool::new(false));
        let thread = {
            let (client, reports, acks, stop, subscribed) = (
                client.clone(),
                reports.clone(),
                acks.clone(),
                stop.clone(),
                subscribed.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match connection.recv_timeout(Duration::from_millis(200)) {
                        Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_)))) => {
                            let _ =
                                client.try_subscribe(topics::ALL_STATUS, rumqttc::QoS::AtLeastOnce);
                        }
                        Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_)))) => {
                            subscribed.store(true, Ordering::SeqCst);
                        }
                        Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)))) => {
                            acks.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)))) => {
                            if let (Some((id, "status")), Ok(status)) =
                                (topics::parse(&p.topic), DeviceStatus::from_json(&p.payload))
                            {
                                reports.lock().unwrap().push((id.to_string(), status));
                            }
                        }
                        Ok(Ok(_)) => {}
                        Ok(Err(_)) => std::thread::sleep(Duration::from_millis(200)),
                        Err(rumqttc::RecvTimeoutError::Timeout) => {}
                        Err(_) => break,
                    }
                }
            })
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !subscribed.load(Ordering::SeqCst) {
            assert!(
                Instant::now() < deadline,
                "the attacker could not connect to the gateway's broker with its identity"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Attacker {
            client,
            reports,
            acks,
            stop,
            thread: Some(thread),
        }
    }

    /// Publishes a retained notice (or clears it with an empty payload), acknowledged.
    async fn notify(&self, device: &str, payload: Vec<u8>) -> Result<(), String> {
        let before = self.acks.load(Ordering::SeqCst);
        self.client
            .publish(
                topics::notice(device),
                rumqttc::QoS::AtLeastOnce,
                true,
                payload,
            )
            .map_err(|e| format!("publish: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.acks.load(Ordering::SeqCst) == before {
            if Instant::now() > deadline {
                return Err("the broker did not acknowledge the notice".into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    fn reports(&self, device: &str) -> Vec<DeviceStatus> {
        self.reports
            .lock()
            .unwrap()
            .iter()
            .filter(|(id, _)| id == device)
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// The first report of `device` after the first `skip` that satisfies `pred`.
    async fn wait_for(
        &self,
        device: &str,
        skip: usize,
        what: &str,
        pred: impl Fn(&DeviceStatus) -> bool,
    ) -> Result<DeviceStatus, String> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(s) = self.reports(device).into_iter().skip(skip).find(&pred) {
                return Ok(s);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no {what} report within {WAIT:?}; saw {:?}",
                    self.reports(device)
                        .into_iter()
                        .skip(skip)
                        .collect::<Vec<_>>()
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Attacker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.client.try_disconnect();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the attacker's HTTPS server (with the gateway's server key) serves for one path.
#[derive(Clone)]
struct Served {
    /// The body of the first request.
    first: Arc<Vec<u8>>,
    /// Cut the first response after this many bytes (a lost link).
    cut: Option<usize>,
    /// The body of later (resuming) requests.
    later: Arc<Vec<u8>>,
    /// Send the headers and 16 bytes, then nothing.
    stall: bool,
    requests: usize,
}

impl Served {
    fn bytes(bytes: Vec<u8>) -> Served {
        let bytes = Arc::new(bytes);
        Served {
            first: bytes.clone(),
            cut: None,
            later: bytes,
            stall: false,
            requests: 0,
        }
    }
}

type Files = Arc<Mutex<HashMap<String, Served>>>;

struct EvilHttps {
    port: u16,
    files: Files,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EvilHttps {
    fn start(paths: &GatewayPaths) -> EvilHttps {
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap();
        let config = fwledger_gateway::tls::server_config(
            &read(paths.server_cert()),
            &read(paths.server_key()),
        )
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let files: Files = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (files, stop) = (files.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (files, stop, config) = (files.clone(), stop.clone(), config.clone());
                    std::thread::spawn(move || {
                        let _ = serve(stream, config, &files, &stop);
                    });
                }
            })
        };
        EvilHttps {
            port,
            files,
            stop,
            thread: Some(thread),
        }
    }

    /// Serves `served` at `/fw/{name}` and returns its URL.
    fn put(&self, name: &str, served: Served) -> String {
        self.files.lock().unwrap().insert(name.to_string(), served);
        format!("https://127.0.0.1:{}/fw/{name}", self.port)
    }
}

impl Drop for EvilHttps {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    files: &Mutex<HashMap<String, Served>>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut reader = BufReader::new(&mut tls);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    drop(reader);
    let path = request_line.split_whitespace().nth(1).unwrap_or("");
    let name = path.strip_prefix("/fw/").unwrap_or("").to_string();
    let found = files.lock().unwrap().get_mut(&name).map(|f| {
        f.requests += 1;
        (f.clone(), f.requests)
    });
    let Some((served, nth)) = found else {
        tls.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        return tls.flush();
    };
    let bytes = if nth == 1 {
        served.first.clone()
    } else {
        served.later.clone()
    };
    let total = bytes.len();
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split('-').next())
        .and_then(|n| n.parse::<usize>().ok());
    let head = match start {
        Some(s) if s >= total => {
            tls.write_all(
                format!(
                    "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{total}\r\n\
                     Content-Length: 0\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            )?;
            return tls.flush();
        }
        Some(s) => format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {s}-{}/{total}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            total - 1,
            total - s
        ),
        None => format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n"),
    };
    let body = &bytes[start.unwrap_or(0)..];
    tls.write_all(head.as_bytes())?;
    if served.stall {
        tls.write_all(&body[..16.min(body.len())])?;
        tls.flush()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        return Ok(());
    }
    if let (Some(cut), 1) = (served.cut, nth) {
        tls.write_all(&body[..cut.min(body.len())])?;
        tls.flush()?;
        // No close_notify: the link is lost.
        let _ = tls.sock.shutdown(NetShutdown::Both);
        return Ok(());
    }
    for chunk in body.chunks(16 * 1024) {
        tls.write_all(chunk)?;
    }
    tls.flush()?;
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Ok(())
}

// =============================================================================================
// Device agents
// =============================================================================================

#[derive(Clone, Debug)]
enum Agent {
    Rust,
    C(PathBuf),
}

/// The C agent from `FWLEDGER_C_AGENT`, or why it is absent.
fn c_agent() -> Result<PathBuf, String> {
    match std::env::var_os("FWLEDGER_C_AGENT") {
        Some(p) if Path::new(&p).is_file() => Ok(PathBuf::from(p)),
        Some(p) => Err(format!(
            "FWLEDGER_C_AGENT={} is not a file",
            Path::new(&p).display()
        )),
        None => Err(
            "FWLEDGER_C_AGENT is not set (`bash firmware-c/tests/run.sh` builds the C agent \
             as target/firmware-c/fwledger-device-c; scripts/test.sh then runs this column)"
                .into(),
        ),
    }
}

/// A running device; stopped on drop.
enum RunningDevice {
    Rust {
        shutdown: Shutdown,
        thread: Option<std::thread::JoinHandle<Result<(), host::DeviceError>>>,
    },
    C(Child),
}

impl RunningDevice {
    fn start(agent: &Agent, bundle: Bundle, bundle_path: &Path, state: &Path) -> RunningDevice {
        match agent {
            Agent::Rust => {
                let mut config = DeviceConfig::new(bundle, state);
                config.settings.check_interval = Duration::from_secs(600);
                config.settings.retry_after = Duration::from_secs(600);
                config.read_timeout = Duration::from_secs(2);
                let shutdown = Shutdown::new();
                let thread = host::spawn(config, shutdown.clone()).unwrap();
                RunningDevice::Rust {
                    shutdown,
                    thread: Some(thread),
                }
            }
            Agent::C(exe) => {
                let log = |name: &str| std::fs::File::create(state.with_extension(name)).unwrap();
                let child = Command::new(exe)
                    .arg("--bundle")
                    .arg(bundle_path)
                    .arg("--state")
                    .arg(state)
                    .args(["--factory-version", "1.0.0"])
                    .args(["--check-interval", "600", "--retry-after", "600"])
                    .args(["--stall-timeout", "2"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::from(log("stdout")))
                    .stderr(Stdio::from(log("stderr")))
                    .spawn()
                    .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
                RunningDevice::C(child)
            }
        }
    }

    fn is_running(&mut self) -> bool {
        match self {
            RunningDevice::Rust { thread, .. } => thread.as_ref().is_some_and(|t| !t.is_finished()),
            RunningDevice::C(child) => matches!(child.try_wait(), Ok(None)),
        }
    }
}

impl Drop for RunningDevice {
    fn drop(&mut self) {
        match self {
            RunningDevice::Rust { shutdown, thread } => {
                shutdown.trigger();
                if let Some(t) = thread.take() {
                    let _ = t.join();
                }
            }
            RunningDevice::C(child) => {
                if let Ok(None) = child.try_wait() {
                    let _ = sigterm(child.id());
                    let deadline = Instant::now() + Duration::from_secs(10);
                    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
    }
}

/// SIGTERM to a child we started.
fn sigterm(pid: u32) -> std::io::Result<()> {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other("kill failed"))
    }
}

// =============================================================================================
// Shared set-up
// =============================================================================================

fn timing() -> Timing {
    let mut timing = Timing::default();
    timing.reconcile = Duration::from_millis(500);
    timing.channel_poll = Duration::from_millis(300);
    timing.stall = Duration::from_secs(2);
    timing.max_backoff = Duration::from_secs(2);
    timing
}

async fn publish(vendor: &mut Vendor, dir: &Path, model: &str, hw: &str, version: &str, sv: u64) {
    let path = dir.join(format!("{model}-{hw}-{version}.bin"));
    std::fs::write(&path, image(&format!("{model} {hw} {version}"))).unwrap();
    let mut spec = ReleaseSpec::new(model, &[hw], version);
    spec.security_version = sv;
    vendor.publish(&path, &spec, None).await.unwrap();
}

/// A release signed by the vendor's release key but never announced: what an attacker who
/// intercepted (or stole the key for) a genuine manifest holds.
struct Stock {
    version: String,
    signed: Vec<u8>,
    image: Vec<u8>,
    sha256: String,
}

async fn prepare(
    vendor: &mut Vendor,
    dir: &Path,
    model: &str,
    hw: &str,
    version: &str,
    sv: u64,
) -> Stock {
    let bytes = image(&format!("{model} {hw} {version}"));
    let path = dir.join(format!("{model}-{hw}-{version}.bin"));
    std::fs::write(&path, &bytes).unwrap();
    let mut spec = ReleaseSpec::new(model, &[hw], version);
    spec.security_version = sv;
    let prepared = vendor.prepare(&path, &spec, None).await.unwrap();
    Stock {
        version: version.to_string(),
        signed: prepared.signed,
        sha256: hex::encode(Sha256::digest(&bytes)),
        image: bytes,
    }
}

fn notice(manifest: &[u8], url: &str) -> Vec<u8> {
    Notice {
        manifest: manifest.to_vec(),
        url: url.to_string(),
        gateway_time: Some(now()),
    }
    .to_cbor()
}

/// A manifest for `manifest` signed by an attacker's own root and release keys.
fn attacker_signed(manifest: &Manifest) -> Vec<u8> {
    let root = SigningKey::from_bytes(&[0xa7; 32]);
    let release = SigningKey::from_bytes(&[0xa8; 32]);
    let cert = KeyCertificate {
        role: Role::Release,
        public_key: release.verifying_key().to_bytes(),
        generation: 99,
        not_before: 0,
        not_after: u64::MAX,
        vendor: manifest.vendor.clone(),
    }
    .issue(&root);
    manifest.sign(&release, &cert)
}

/// `signed` with its security version raised to 23 and the vendor's signature kept.
fn fast_forwarded(signed: &[u8]) -> Vec<u8> {
    let sign1 = cose::decode(signed).unwrap();
    let offset = sign1.payload.as_ptr() as usize - signed.as_ptr() as usize;
    let mut manifest = Manifest::from_cbor(sign1.payload).unwrap();
    assert!(manifest.security_version < 23);
    manifest.security_version = 23;
    let payload = manifest.to_cbor();
    assert_eq!(payload.len(), sign1.payload.len(), "same-length encoding");
    let mut out = signed.to_vec();
    out[offset..offset + payload.len()].copy_from_slice(&payload);
    out
}

async fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> Result<T, String> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_device_version(registry: &Registry, id: &str, version: &str) -> Result<(), String> {
    wait_until(&format!("{id} on {version} in the registry"), || {
        registry
            .device(id)
            .ok()
            .flatten()
            .filter(|d| d.version.as_deref() == Some(version))
    })
    .await
    .map(|_| ())
}

// =============================================================================================
// Compromised gateway vs. each device agent
// =============================================================================================

const DEVICE: &str = "lamp-1";

struct Lab {
    dir: tempfile::TempDir,
    paths: GatewayPaths,
    config: GatewayConfig,
    // Field order = drop order: the device, then the attacker, then the broker.
    device: Option<RunningDevice>,
    attacker: Option<Attacker>,
    https: Option<EvilHttps>,
    gateway: Option<RunningGateway>,
    broker: Option<Broker>,
    /// The running image as the device last reported it.
    version: String,
    security_version: u64,
    sha256: Option<String>,
}

impl Lab {
    /// Sends `payload` as the notice and expects a refusal by `check`; the device keeps running
    /// what it ran.
    async fn refused(
        &mut self,
        payload: Vec<u8>,
        release: Option<&str>,
        expected: &str,
    ) -> Result<String, String> {
        let attacker = self.attacker.as_ref().unwrap();
        let skip = attacker.reports(DEVICE).len();
        attacker.notify(DEVICE, payload).await?;
        let outcome = attacker
            .wait_for(DEVICE, skip, "failed", |s| {
                matches!(
                    s.state,
                    UpdateState::Failed | UpdateState::RolledBack | UpdateState::Confirmed
                )
            })
            .await;
        // Clear the notice whatever happened (a retained forged notice would come back).
        attacker.notify(DEVICE, Vec::new()).await?;
        let failed = outcome?;
        let reason = failed.reason.clone().unwrap_or_default();
        check(failed.state == UpdateState::Failed, || {
            format!("expected failed, got {failed:?}")
        })?;
        check(reason.starts_with(&format!("{expected}: ")), || {
            format!("expected a {expected:?} refusal, got {reason:?}")
        })?;
        if let Some(release) = release {
            check(failed.release.as_deref() == Some(release), || {
                format!(
                    "the report names release {:?}, not {release}",
                    failed.release
                )
            })?;
        }
        check(
            failed.version == self.version && failed.security_version == self.security_version,
            || {
                format!(
                    "the running image changed: {} / security {} (expected {} / {})",
                    failed.version, failed.security_version, self.version, self.security_version
                )
            },
        )?;
        // Nothing was installed behind the report's back: no installing/rebooting/confirmed.
        let after: Vec<_> = attacker.reports(DEVICE).into_iter().skip(skip).collect();
        check(
            after.iter().all(|s| {
                !matches!(
                    s.state,
                    UpdateState::Installing | UpdateState::Rebooting | UpdateState::Confirmed
                )
            }),
            || format!("the device went on to install: {after:?}"),
        )?;
        check(self.device.as_mut().unwrap().is_running(), || {
            "the device stopped".into()
        })?;
        Ok(format!("refused: {reason}"))
    }
}

async fn compromised_gateway(agent: Agent, column: &'static str) {
    assert!(
        fwledger_gateway::broker::find_mosquitto(None).is_ok(),
        "these tests need mosquitto: apt-get install -y mosquitto"
    );
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let backends = Backends::open(dir.path(), "embedded", "embedded").unwrap();
    let mut vendor = Vendor::init(dir.path(), "acme", &backends).unwrap();
    let gateway = Gateway::init(
        dir.path(),
        &InitOptions {
            mqtt_port: Some(free_port()),
            https_port: Some(free_port()),
            sntp_port: Some(free_port()),
            ..Default::default()
        },
    )
    .unwrap();
    gateway
        .subscribe(&vendor.token(Some("gw")).unwrap())
        .unwrap();
    let bundle = gateway
        .add_device(&NewDevice {
            id: DEVICE.into(),
            mac: "02:00:00:00:00:01".into(),
            model: MODEL.into(),
            hardware: HW.into(),
        })
        .unwrap();
    let bundle_path = work.join("lamp-1.bundle.json");
    gateway.write_bundle(&bundle, &bundle_path).unwrap();
    let paths = gateway.paths().clone();
    let config = gateway.config().clone();

    // The vendor's stock. Signed under the first release key, which the attacker steals…
    let stolen = prepare(&mut vendor, &work, MODEL, HW, "9.0.0", 9).await;
    // …so the vendor certifies generation N+1 and signs everything else with it.
    vendor.rotate_release_key().unwrap();
    let older_version = prepare(&mut vendor, &work, MODEL, HW, "1.0.5", 2).await;
    let older_security = prepare(&mut vendor, &work, MODEL, HW, "1.2.0", 1).await;
    let other_model = prepare(&mut vendor, &work, "fan", HW, "2.0.0", 2).await;
    let other_hw = prepare(&mut vendor, &work, MODEL, "rev-a", "2.0.0", 2).await;
    let mirror: Vec<Stock> = {
        let mut v = Vec::new();
        for version in ["1.3.0", "1.3.1", "1.3.2", "1.3.3", "1.3.4", "1.3.5"] {
            v.push(prepare(&mut vendor, &work, MODEL, HW, version, 2).await);
        }
        v
    };
    let later = prepare(&mut vendor, &work, MODEL, HW, "1.4.0", 3).await;

    // The genuine world: the real gateway on a broker of its configuration, the device on 1.0.0.
    let broker = Broker::start(&paths, &config, None).await.unwrap();
    let mut options = RunOptions::new(backends.clone());
    options.broker = Some(config.local_mqtt_url());
    options.timing = timing();
    let running = gateway.start(options).await.unwrap();
    let state = work.join("lamp-1.state");
    let device = RunningDevice::start(&agent, bundle, &bundle_path, &state);
    let mut lab = Lab {
        dir,
        paths,
        config,
        device: Some(device),
        attacker: None,
        https: None,
        gateway: Some(running),
        broker: Some(broker),
        version: "1.0.0".into(),
        security_version: 0,
        sha256: None,
    };
    let registry = lab.gateway.as_ref().unwrap().registry().clone();
    wait_until("the device online", || {
        registry.device(DEVICE).ok().flatten().filter(|d| d.online)
    })
    .await
    .unwrap_or_else(|e| panic!("{column}: {e}"));
    // A genuine release under generation N+1 reaches the device through the real gateway.
    publish(&mut vendor, lab.dir.path(), MODEL, HW, "1.1.0", 2).await;
    wait_device_version(&registry, DEVICE, "1.1.0")
        .await
        .unwrap_or_else(|e| panic!("{column}: baseline: {e}"));
    let genuine_sha = hex::encode(Sha256::digest(image(&format!("{MODEL} {HW} 1.1.0"))));
    let device = registry.device(DEVICE).unwrap().unwrap();
    assert_eq!(device.security_version, 2);
    assert_eq!(
        device.sha256.as_deref(),
        Some(genuine_sha.as_str()),
        "{column}: the running image is not the one the manifest names"
    );
    lab.version = "1.1.0".into();
    lab.security_version = 2;
    lab.sha256 = Some(genuine_sha);

    // The gateway is compromised: the attacker replaces it on the broker (same identity) and
    // serves downloads with its HTTPS key.
    lab.gateway.take().unwrap().stop().await;
    lab.attacker = Some(Attacker::connect(&lab.paths, &lab.config));
    lab.https = Some(EvilHttps::start(&lab.paths));
    let https =
        |lab: &Lab, name: &str, served: Served| lab.https.as_ref().unwrap().put(name, served);

    let mut m = Matrix::new(column);
    let genuine_manifest =
        |s: &Stock| Manifest::from_cbor(cose::decode(&s.signed).unwrap().payload).unwrap();

    m.case("forged_notice", async {
        lab.refused(b"\xa2\x01\x01\x02\x43abc".to_vec(), None, "notice-format")
            .await
    })
    .await;

    m.case("arbitrary_software", async {
        let mut manifest = genuine_manifest(&mirror[0]);
        manifest.version = "5.0.0".parse().unwrap();
        manifest.security_version = 5;
        let url = https(&lab, "arbitrary", Served::bytes(mirror[0].image.clone()));
        lab.refused(
            notice(&attacker_signed(&manifest), &url),
            None,
            "release-key-certificate",
        )
        .await
    })
    .await;

    m.case("fast_forward", async {
        let url = https(&lab, "ff", Served::bytes(mirror[0].image.clone()));
        lab.refused(
            notice(&fast_forwarded(&mirror[0].signed), &url),
            None,
            "manifest-signature",
        )
        .await
    })
    .await;

    m.case("rollback_security_version", async {
        let url = https(&lab, "rb-sv", Served::bytes(older_security.image.clone()));
        lab.refused(
            notice(&older_security.signed, &url),
            Some(&older_security.version),
            "security-version",
        )
        .await
    })
    .await;

    m.case("rollback_version", async {
        let url = https(&lab, "rb-v", Served::bytes(older_version.image.clone()));
        lab.refused(
            notice(&older_version.signed, &url),
            Some(&older_version.version),
            "version",
        )
        .await
    })
    .await;

    m.case("wrong_model", async {
        let url = https(&lab, "fan", Served::bytes(other_model.image.clone()));
        lab.refused(notice(&other_model.signed, &url), Some("2.0.0"), "model")
            .await
    })
    .await;

    m.case("wrong_hardware", async {
        let url = https(&lab, "rev-a", Served::bytes(other_hw.image.clone()));
        lab.refused(notice(&other_hw.signed, &url), Some("2.0.0"), "hardware")
            .await
    })
    .await;

    m.case("release_key_compromise", async {
        let url = https(&lab, "stolen", Served::bytes(stolen.image.clone()));
        lab.refused(notice(&stolen.signed, &url), None, "release-key-generation")
            .await
    })
    .await;

    m.case("malicious_mirror", async {
        let s = &mirror[0];
        let mut other = s.image.clone();
        other[IMAGE_SIZE / 2] ^= 0x10;
        let url = https(&lab, "other-bytes", Served::bytes(other));
        lab.refused(notice(&s.signed, &url), Some(&s.version), "image-sha256")
            .await
    })
    .await;

    m.case("endless_data", async {
        let s = &mirror[1];
        let mut longer = s.image.clone();
        longer.extend(std::iter::repeat_n(0x5a, 1 << 20));
        let url = https(&lab, "endless", Served::bytes(longer));
        lab.refused(notice(&s.signed, &url), Some(&s.version), "image-size")
            .await
    })
    .await;

    m.case("mix_and_match", async {
        // The manifest of one release with the (same-size) image of another.
        let s = &mirror[2];
        let url = https(&lab, "mix", Served::bytes(mirror[3].image.clone()));
        lab.refused(notice(&s.signed, &url), Some(&s.version), "image-sha256")
            .await
    })
    .await;

    m.case("slow_retrieval", async {
        let s = &mirror[4];
        let mut served = Served::bytes(s.image.clone());
        served.stall = true;
        let url = https(&lab, "stall", served);
        lab.refused(
            notice(&s.signed, &url),
            Some(&s.version),
            "download-stalled",
        )
        .await
    })
    .await;

    m.case("toctou_resume_swap", async {
        // The first response (genuine bytes) is cut; the resuming Range request gets the rest of
        // another image. What was verified so far must not be trusted for the rest.
        let s = &mirror[5];
        let served = Served {
            first: Arc::new(s.image.clone()),
            cut: Some(IMAGE_SIZE / 2),
            later: Arc::new(mirror[3].image.clone()),
            stall: false,
            requests: 0,
        };
        let url = https(&lab, "swap", served);
        lab.refused(notice(&s.signed, &url), Some(&s.version), "image-sha256")
            .await
    })
    .await;

    m.case("genuine_release_still_installs", async {
        // After all of that, a genuine release of generation N+1 installs, and what runs is
        // exactly what the manifest names (TOCTOU: the installed image is the verified one).
        let attacker = lab.attacker.as_ref().unwrap();
        let skip = attacker.reports(DEVICE).len();
        let url = https(&lab, "later", Served::bytes(later.image.clone()));
        attacker.notify(DEVICE, notice(&later.signed, &url)).await?;
        let done = attacker
            .wait_for(DEVICE, skip, "confirmed or failed", |s| {
                matches!(
                    s.state,
                    UpdateState::Confirmed | UpdateState::Failed | UpdateState::RolledBack
                )
            })
            .await?;
        check(
            done.state == UpdateState::Confirmed && done.version == "1.4.0",
            || format!("expected confirmed 1.4.0, got {done:?}"),
        )?;
        check(done.security_version == 3, || format!("{done:?}"))?;
        check(
            done.sha256.as_deref() == Some(later.sha256.as_str()),
            || {
                format!(
                    "running sha256 {:?} is not the manifest's {}",
                    done.sha256, later.sha256
                )
            },
        )?;
        if let Agent::Rust = agent {
            // The host port's slot files: the active slot holds exactly the verified bytes.
            let slots: Vec<_> = std::fs::read_dir(&state)
                .map_err(|e| e.to_string())?
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| std::fs::read(p).is_ok_and(|b| b == later.image))
                .collect();
            check(!slots.is_empty(), || {
                "no slot holds the verified image".into()
            })?;
        }
        if let Agent::C(_) = agent {
            let slot = std::fs::read(state.join("slot_a.bin")).ok();
            let slot_b = std::fs::read(state.join("slot_b.bin")).ok();
            check(
                slot.as_deref() == Some(later.image.as_slice())
                    || slot_b.as_deref() == Some(later.image.as_slice()),
                || "no slot holds the verified image".into(),
            )?;
        }
        Ok("confirmed 1.4.0, running sha256 = manifest sha256".into())
    })
    .await;

    // Stop in order: device, attacker, HTTPS, broker.
    drop(lab.device.take());
    drop(lab.attacker.take());
    drop(lab.https.take());
    if let Some(broker) = lab.broker.take() {
        broker.stop().await;
    }
    m.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compromised_gateway_vs_rust_agent() {
    compromised_gateway(Agent::Rust, "rust agent").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compromised_gateway_vs_c_agent() {
    match c_agent() {
        Ok(exe) => compromised_gateway(Agent::C(exe), "c agent").await,
        Err(why) => {
            assert!(
                std::env::var("FWLEDGER_REQUIRE_C_AGENT").as_deref() != Ok("1"),
                "FWLEDGER_REQUIRE_C_AGENT=1 but the C agent is missing: {why}"
            );
            eprintln!("SKIPPED the C agent column: {why}");
        }
    }
}

// =============================================================================================
// The gateway refuses channel and IPFS-side attacks; devices are never offered them.
// =============================================================================================

type Seen = Arc<Mutex<Vec<DeviceStatus>>>;

struct GatewayLab {
    registry: Registry,
    channel_hex: String,
    ledger: Arc<EvilLedger>,
    store: Arc<EvilStore>,
    seen: Seen,
}

impl GatewayLab {
    fn events(&self) -> Vec<String> {
        self.registry
            .events(10_000)
            .unwrap()
            .into_iter()
            .map(|e| e.message)
            .collect()
    }

    fn count(&self, needle: &str) -> usize {
        self.events().iter().filter(|e| e.contains(needle)).count()
    }

    /// Waits for one more event containing `needle` than `before`.
    async fn refusal(&self, needle: &str, before: usize) -> Result<String, String> {
        wait_until(&format!("a gateway event with {needle:?}"), || {
            let events: Vec<_> = self
                .events()
                .into_iter()
                .filter(|e| e.contains(needle))
                .collect();
            (events.len() > before).then(|| events[0].clone())
        })
        .await
        .map_err(|e| format!("{e}; events: {:?}", self.events()))
    }

    fn offered(&self, version: &str) -> bool {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .any(|s| s.release.as_deref() == Some(version) || s.version == version)
    }

    async fn confirmed(&self, version: &str) -> Result<(), String> {
        wait_until(&format!("the device confirmed {version}"), || {
            self.seen
                .lock()
                .unwrap()
                .last()
                .filter(|s| s.state == UpdateState::Confirmed && s.version == version)
                .cloned()
        })
        .await
        .map(|_| ())
        .map_err(|e| format!("{e}; reports: {:?}", self.seen.lock().unwrap()))
    }

    fn release_state(&self, version: &str) -> Option<(ReleaseState, Option<String>)> {
        self.registry
            .releases()
            .unwrap()
            .into_iter()
            .find(|r| r.version == version)
            .map(|r| (r.state, r.reason))
    }

    fn freshness(&self) -> ChannelHealth {
        self.registry
            .channel(&self.channel_hex)
            .unwrap()
            .map(|c| c.freshness)
            .unwrap_or(ChannelHealth::Unknown)
    }

    async fn not_offered(&self, version: &str) -> Result<(), String> {
        // Give a wrongly offered release time to show up at the device.
        tokio::time::sleep(Duration::from_secs(2)).await;
        check(!self.offered(version), || {
            format!(
                "the device was offered {version}: {:?}",
                self.seen.lock().unwrap()
            )
        })
    }
}

/// A channel message for `channel` at `seq`, well formed, signed by an attacker's key.
fn forged_message(channel: &ChannelId, seq: u64) -> Vec<u8> {
    let header = Header {
        channel: *channel,
        seq,
        prev: [0; 32],
        epoch: 0,
        kind: Kind::Release,
        nonce: [7; 24],
    };
    message::encode(
        &SigningKey::from_bytes(&[0x66; 32]),
        &header.to_cbor(),
        &[0u8; 64],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_refuses_channel_and_mirror_attacks() {
    assert!(
        fwledger_gateway::broker::find_mosquitto(None).is_ok(),
        "these tests need mosquitto: apt-get install -y mosquitto"
    );
    let dir = tempfile::tempdir().unwrap();
    let backends = Backends::open(dir.path(), "embedded", "embedded").unwrap();
    let mut vendor = Vendor::init(dir.path(), "acme", &backends).unwrap();
    let channel = *vendor.channel();
    let gateway = Gateway::init(
        dir.path(),
        &InitOptions {
            mqtt_port: Some(free_port()),
            https_port: Some(free_port()),
            sntp_port: Some(free_port()),
            ..Default::default()
        },
    )
    .unwrap();
    gateway
        .subscribe(&vendor.token(Some("gw")).unwrap())
        .unwrap();
    let bundle = gateway
        .add_device(&NewDevice {
            id: DEVICE.into(),
            mac: "02:00:00:00:00:01".into(),
            model: MODEL.into(),
            hardware: HW.into(),
        })
        .unwrap();
    // The gateway reads through the attacker's ledger view and content store.
    let ledger = EvilLedger::new(backends.ledger.clone(), channel);
    let store = Arc::new(EvilStore {
        inner: backends.store.clone(),
        mode: Mutex::new(StoreMode::Honest),
    });
    let mut options = RunOptions::new(Backends {
        ledger: ledger.clone(),
        store: store.clone(),
    });
    options.timing = timing();
    let running = gateway.start(options).await.unwrap();
    let seen: Seen = Arc::default();
    let mut config = DeviceConfig::new(bundle, dir.path().join("lamp-1.state"));
    config.settings.check_interval = Duration::from_secs(600);
    {
        let seen = seen.clone();
        config.observer = Some(Arc::new(move |_: &str, s: &DeviceStatus| {
            seen.lock().unwrap().push(s.clone())
        }));
    }
    let shutdown = Shutdown::new();
    let device = host::spawn(config, shutdown.clone()).unwrap();
    let lab = GatewayLab {
        registry: running.registry().clone(),
        channel_hex: hex::encode(channel),
        ledger,
        store,
        seen,
    };
    let vdir = dir.path().to_path_buf();

    // Baseline: a genuine release reaches the device; the channel is fresh.
    publish(&mut vendor, &vdir, MODEL, HW, "1.1.0", 1).await;
    vendor.heartbeat(Duration::from_secs(30)).await.unwrap();
    lab.confirmed("1.1.0").await.expect("baseline");
    wait_until("a fresh channel", || {
        (lab.freshness() == ChannelHealth::Fresh).then_some(())
    })
    .await
    .expect("baseline freshness");

    let mut m = Matrix::new("gateway");

    m.case("forged_channel_message", async {
        let before = lab.count("(message-signature)");
        let next = lab.ledger.genuine_next().await;
        lab.ledger.inject(forged_message(&channel, next)).await;
        let event = lab.refusal("(message-signature)", before).await?;
        Ok(format!("gateway: {event}"))
    })
    .await;

    m.case("tampered_channel_message", async {
        // The next genuine message with one bit of its signature flipped, shown before the
        // genuine one: refused, and the genuine one is still accepted after it.
        let before = lab.count("(message-signature)");
        lab.ledger.hold(true).await;
        vendor.heartbeat(Duration::from_secs(30)).await.unwrap();
        let last = lab.ledger.genuine_next().await - 1;
        let mut tampered = lab.ledger.genuine(last).await;
        *tampered.last_mut().unwrap() ^= 1;
        lab.ledger.inject(tampered).await;
        let event = lab.refusal("(message-signature)", before).await;
        lab.ledger.hold(false).await;
        let event = event?;
        let expected = last + 1;
        wait_until(
            "the genuine message accepted after the tampered one",
            || {
                lab.registry
                    .channel(&lab.channel_hex)
                    .ok()
                    .flatten()
                    .filter(|c| c.next_seq == expected)
            },
        )
        .await?;
        Ok(format!("gateway: {event}; the genuine copy was accepted"))
    })
    .await;

    m.case("replayed_channel_message", async {
        let before = lab.count("(replay)");
        let releases_before = lab.registry.releases().unwrap().len();
        let seq = lab
            .registry
            .releases()
            .unwrap()
            .into_iter()
            .find(|r| r.version == "1.1.0")
            .map(|r| r.seq)
            .ok_or("no 1.1.0")?;
        let reports_before = lab.seen.lock().unwrap().len();
        lab.ledger.inject(lab.ledger.genuine(seq).await).await;
        let event = lab.refusal("(replay)", before).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        check(
            lab.registry.releases().unwrap().len() == releases_before,
            || "the replay was recorded as a release".into(),
        )?;
        let after: Vec<_> = lab.seen.lock().unwrap()[reports_before..].to_vec();
        check(
            after.iter().all(|s| s.state != UpdateState::Downloading),
            || format!("the device was offered the replay: {after:?}"),
        )?;
        Ok(format!("gateway: {event}"))
    })
    .await;

    m.case("reordered_channel_messages", async {
        let before = lab.count("(gap)");
        // Withhold the channel, let the vendor publish a release and a heartbeat, and show the
        // gateway the heartbeat first.
        lab.ledger.hold(true).await;
        publish(&mut vendor, &vdir, MODEL, HW, "1.2.0", 1).await;
        vendor.heartbeat(Duration::from_secs(30)).await.unwrap();
        let last = lab.ledger.genuine_next().await - 1;
        lab.ledger.inject(lab.ledger.genuine(last).await).await;
        let event = lab.refusal("(gap)", before).await;
        lab.ledger.hold(false).await;
        let event = event?;
        // In order, the same messages are accepted: the release reaches the device.
        lab.confirmed("1.2.0").await?;
        Ok(format!(
            "gateway: {event}; in order afterwards: 1.2.0 installed"
        ))
    })
    .await;

    m.case("ipfs_mirror_other_bytes", async {
        lab.store.set(StoreMode::OtherBytes);
        publish(&mut vendor, &vdir, MODEL, HW, "1.3.0", 1).await;
        let (_, reason) = wait_until("1.3.0 failed at the gateway", || {
            lab.release_state("1.3.0")
                .filter(|(s, _)| *s == ReleaseState::Failed)
        })
        .await?;
        lab.store.set(StoreMode::Honest);
        let reason = reason.unwrap_or_default();
        check(reason.contains("does not match"), || {
            format!("reason: {reason}")
        })?;
        lab.not_offered("1.3.0").await?;
        Ok(format!("gateway: failed: {reason}"))
    })
    .await;

    m.case("ipfs_mirror_endless_data", async {
        lab.store.set(StoreMode::Longer);
        publish(&mut vendor, &vdir, MODEL, HW, "1.3.1", 1).await;
        let (_, reason) = wait_until("1.3.1 failed at the gateway", || {
            lab.release_state("1.3.1")
                .filter(|(s, _)| *s == ReleaseState::Failed)
        })
        .await?;
        lab.store.set(StoreMode::Honest);
        let reason = reason.unwrap_or_default();
        check(reason.contains("does not match"), || {
            format!("reason: {reason}")
        })?;
        lab.not_offered("1.3.1").await?;
        Ok(format!("gateway: failed: {reason}"))
    })
    .await;

    m.case("ipfs_slow_retrieval", async {
        lab.store.set(StoreMode::Stall);
        publish(&mut vendor, &vdir, MODEL, HW, "1.3.2", 1).await;
        let waited = wait_until("a stalled fetch of 1.3.2", || {
            lab.release_state("1.3.2").filter(|(s, r)| {
                *s == ReleaseState::Fetching && r.as_deref().is_some_and(|r| r.contains("attempt"))
            })
        })
        .await;
        let offered = lab.offered("1.3.2");
        lab.store.set(StoreMode::Honest);
        let (_, reason) = waited?;
        check(!offered, || "offered while stalled".into())?;
        // The gateway keeps retrying; once the store answers, the release goes through.
        lab.confirmed("1.3.2").await?;
        Ok(format!(
            "gateway: {}; installed once the store answered",
            reason.unwrap_or_default()
        ))
    })
    .await;

    m.case("indefinite_freeze", async {
        let before = lab.count("is stale");
        vendor.heartbeat(Duration::from_secs(2)).await.unwrap();
        wait_until("the short heartbeat read", || {
            lab.registry
                .channel(&lab.channel_hex)
                .ok()
                .flatten()
                .and_then(|c| c.heartbeat_valid_until)
                .filter(|v| *v <= now() + 3)
        })
        .await?;
        // The ledger withholds everything from now on, while the vendor keeps heartbeating.
        lab.ledger.hold(true).await;
        vendor.heartbeat(Duration::from_secs(30)).await.unwrap();
        let stale = wait_until("a stale channel", || {
            (lab.freshness() == ChannelHealth::Stale).then_some(())
        })
        .await;
        let event = lab.refusal("is stale", before).await;
        lab.ledger.hold(false).await;
        stale?;
        let event = event?;
        wait_until("a fresh channel again", || {
            (lab.freshness() == ChannelHealth::Fresh).then_some(())
        })
        .await?;
        Ok(format!(
            "gateway: {event}; fresh again once the ledger delivers"
        ))
    })
    .await;

    m.case("revoked_reader", async {
        let before = lab.count("without a key for this gateway");
        vendor.rotate(Some("gw")).await.unwrap();
        publish(&mut vendor, &vdir, MODEL, HW, "1.5.0", 1).await;
        let event = lab
            .refusal("without a key for this gateway", before)
            .await?;
        let refused = lab.refusal("(epoch-key)", 0).await?;
        check(lab.release_state("1.5.0").is_none(), || {
            "the gateway recorded a release it should not be able to read".into()
        })?;
        lab.not_offered("1.5.0").await?;
        Ok(format!("gateway: {event}; {refused}"))
    })
    .await;

    m.case("dropped_channel_message", async {
        let before = lab.count("(gap)");
        lab.ledger.drop_next(1).await;
        vendor.heartbeat(Duration::from_secs(30)).await.unwrap();
        vendor.heartbeat(Duration::from_secs(30)).await.unwrap();
        let event = lab.refusal("(gap)", before).await?;
        Ok(format!("gateway: {event}"))
    })
    .await;

    let history = lab.seen.lock().unwrap().clone();
    shutdown.trigger();
    let _ = tokio::task::spawn_blocking(move || device.join()).await;
    running.stop().await;
    m.finish();
    assert!(
        history
            .iter()
            .all(|s| !matches!(s.state, UpdateState::Failed | UpdateState::RolledBack)),
        "the device only ever saw genuine releases: {history:?}"
    );
}

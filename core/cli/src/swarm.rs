//! `fwledger device swarm --engine async`: lightweight simulated devices, one tokio task each.
//!
//! Each device speaks the real protocols as the device agent (`fwledger-device`) does: MQTT over
//! TLS with its own client certificate (rumqttc `AsyncClient`, last will = empty status, subscribe
//! again on every CONNACK, status report + check request on every CONNACK and every check
//! interval), and on a notice verifies the vendor-signed manifest against the bundle's vendor keys
//! and the update policy (`fwledger_proto::verify_manifest`, `policy::decide`), then streams the
//! image over HTTPS from the gateway through `ImageVerifier`. What is simulated: the flash. No
//! image is kept (in memory or on disk): a simulated slot is the verified hash, the version lives
//! in memory, and the "reboot" into a verified image is immediate (the device reports
//! `installing`, then `confirmed`, without reconnecting).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fwledger_link::{topics, Bundle, DeviceStatus, UpdateState};
use fwledger_proto::ed25519_dalek::VerifyingKey;
use fwledger_proto::sha2::{Digest, Sha256};
use fwledger_proto::{
    policy, verify_manifest, ImageVerifier, ManifestError, Notice, TrustAnchor, VerifiedManifest,
    Version,
};
use rumqttc::{
    AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS, Transport,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::{watch, Semaphore};

/// Called with every status report a device publishes.
pub type Observer = Arc<dyn Fn(&str, &DeviceStatus) + Send + Sync>;

/// Tunables of the async engine.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Factory version every device starts from.
    pub factory_version: String,
    /// How often a device asks the gateway for its notice.
    pub check_interval: Duration,
    /// MQTT keep-alive.
    pub keep_alive: Duration,
    /// After a network failure, the release is tried again after this.
    pub retry_after: Duration,
    /// Connect and per-read timeout of downloads.
    pub read_timeout: Duration,
}

/// What every device of one swarm process shares: the HTTPS clients (one per gateway CA) and
/// the download limit.
pub struct Shared {
    http: Mutex<HashMap<String, reqwest::Client>>,
    roots: Mutex<HashMap<String, Arc<rustls::RootCertStore>>>,
    downloads: Semaphore,
    settings: Settings,
    observer: Observer,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Shared {
    /// Shared state; at most `max_downloads` downloads run at once in this process.
    pub fn new(settings: Settings, max_downloads: usize, observer: Observer) -> Arc<Self> {
        Arc::new(Shared {
            http: Mutex::default(),
            roots: Mutex::default(),
            downloads: Semaphore::new(max_downloads.max(1)),
            settings,
            observer,
        })
    }

    fn roots(&self, ca_pem: &str) -> Result<Arc<rustls::RootCertStore>, String> {
        let mut map = self.roots.lock().map_err(|_| "poisoned lock".to_string())?;
        if let Some(roots) = map.get(ca_pem) {
            return Ok(roots.clone());
        }
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let cert = cert.map_err(|e| format!("CA certificate: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("CA certificate: {e}"))?;
        }
        let roots = Arc::new(roots);
        map.insert(ca_pem.to_string(), roots.clone());
        Ok(roots)
    }

    /// The HTTPS client for gateways with this CA (the gateway's HTTPS server asks for no
    /// client certificate: devices verify what they download).
    fn http(&self, ca_pem: &str) -> Result<reqwest::Client, String> {
        if let Some(client) = self.http.lock().ok().and_then(|m| m.get(ca_pem).cloned()) {
            return Ok(client);
        }
        let roots = self.roots(ca_pem)?;
        let tls = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.settings.read_timeout)
            .read_timeout(self.settings.read_timeout)
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| format!("HTTPS client: {e}"))?;
        if let Ok(mut map) = self.http.lock() {
            map.insert(ca_pem.to_string(), client.clone());
        }
        Ok(client)
    }
}

/// One simulated device, ready to run.
pub struct Device {
    bundle: Bundle,
    options: MqttOptions,
    http: reqwest::Client,
}

/// Prepares a device from its bundle: MQTT options with its TLS client certificate and last
/// will, the shared HTTPS client.
pub fn prepare(bundle: Bundle, shared: &Shared) -> Result<Device, String> {
    let id = bundle.device_id.clone();
    let rest = bundle
        .mqtt_url
        .strip_prefix("mqtts://")
        .ok_or_else(|| format!("{id}: the async engine needs an mqtts:// broker"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = authority
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
        .unwrap_or((authority.to_string(), 8883));
    if host.is_empty() {
        return Err(format!("{id}: no broker host in {:?}", bundle.mqtt_url));
    }
    if !bundle.http_url.starts_with("https://") {
        return Err(format!("{id}: the async engine needs an https:// gateway"));
    }
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(bundle.device_cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{id}: device certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(bundle.device_key_pem.as_bytes())
        .map_err(|e| format!("{id}: device key: {e}"))?;
    let tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(shared.roots(&bundle.ca_cert_pem)?)
        .with_client_auth_cert(chain, key)
        .map_err(|e| format!("{id}: {e}"))?;
    let mut options = MqttOptions::new(id.clone(), host, port);
    options
        .set_keep_alive(shared.settings.keep_alive)
        .set_clean_session(true)
        .set_max_packet_size(64 * 1024, 16 * 1024)
        .set_request_channel_capacity(16)
        // An empty status is the gateway's "this device went offline" (PROTOCOL.md §12).
        .set_last_will(LastWill::new(
            topics::status(&id),
            Vec::new(),
            QoS::AtLeastOnce,
            false,
        ))
        .set_transport(Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(Arc::new(tls)),
        ));
    let http = shared.http(&bundle.ca_cert_pem)?;
    Ok(Device {
        bundle,
        options,
        http,
    })
}

/// What a simulated device remembers (its "flash"): the running image and what it has done.
struct State {
    version: String,
    sha256: String,
    security_version: u64,
    /// Trusted release-key generation per vendor key (hex).
    key_generations: HashMap<String, u64>,
    /// The last report (sent again on every connect).
    report: DeviceStatus,
    /// Releases (SHA-256 of the manifest) installed or refused for good.
    processed: Vec<String>,
    /// The release being installed, if any.
    busy: Option<String>,
}

struct Sim {
    id: String,
    model: String,
    hardware: String,
    vendor_keys: Vec<[u8; 32]>,
    status_topic: String,
    check_topic: String,
    client: AsyncClient,
    http: reqwest::Client,
    shared: Arc<Shared>,
    state: Mutex<State>,
}

impl Sim {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn report(&self, status: DeviceStatus) {
        if let Ok(json) = serde_json::to_vec(&status) {
            // A lost report is sent again on the next connect.
            let _ = self
                .client
                .publish(&self.status_topic, QoS::AtLeastOnce, false, json)
                .await;
        }
        (self.shared.observer)(&self.id, &status);
    }

    fn status(
        &self,
        state: UpdateState,
        release: Option<String>,
        reason: Option<String>,
    ) -> DeviceStatus {
        let s = self.lock();
        DeviceStatus {
            state,
            version: s.version.clone(),
            security_version: s.security_version,
            release,
            reason,
            sha256: Some(s.sha256.clone()),
            progress: None,
        }
    }

    async fn set_report(&self, status: DeviceStatus) {
        self.lock().report = status.clone();
        self.report(status).await;
    }

    /// Verifies a signed manifest against the bundle's vendor keys, as the agent does.
    fn verify(
        &self,
        signed: &[u8],
        now: Option<u64>,
    ) -> Result<(VerifiedManifest, String), Failure> {
        let mut best: Option<ManifestError> = None;
        for key in &self.vendor_keys {
            let Ok(root) = VerifyingKey::from_bytes(key) else {
                continue;
            };
            let key_hex = hex::encode(key);
            let min_key_generation = self
                .lock()
                .key_generations
                .get(&key_hex)
                .copied()
                .unwrap_or(0);
            let anchor = TrustAnchor {
                root,
                min_key_generation,
            };
            match verify_manifest(signed, &anchor, now) {
                Ok(verified) => return Ok((verified, key_hex)),
                Err(e) => {
                    if best.is_none() || matches!(best, Some(ManifestError::KeyNotCertified)) {
                        best = Some(e);
                    }
                }
            }
        }
        Err(match best {
            Some(e) => Failure::refused(e.check(), e),
            None => Failure::refused("vendor-key", "no trusted vendor key"),
        })
    }

    /// Handles a notice payload; returns the release id if an update task should start.
    fn accept(&self, payload: &[u8]) -> Option<String> {
        if payload.is_empty() {
            return None;
        }
        let release = hex::encode(Sha256::digest(match Notice::from_cbor(payload) {
            Ok(n) => n.manifest,
            Err(_) => payload.to_vec(),
        }));
        let mut s = self.lock();
        if s.busy.is_some() || s.processed.contains(&release) {
            return None;
        }
        s.busy = Some(release.clone());
        Some(release)
    }

    /// Installs the release of `payload` (retrying after network failures), reporting each step.
    async fn update(
        self: Arc<Self>,
        payload: Vec<u8>,
        release: String,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            let outcome = match Notice::from_cbor(&payload) {
                Ok(notice) => self.install(&notice).await,
                Err(e) => Err(Failure::refused("notice-format", e)),
            };
            match outcome {
                Ok(()) => break,
                Err(failure) => {
                    let network = failure.network;
                    let status = self.status(
                        UpdateState::Failed,
                        failure.release.clone(),
                        Some(format!("{}: {}", failure.check, failure.message)),
                    );
                    if !network {
                        self.lock().processed.push(release.clone());
                    }
                    self.set_report(status).await;
                    if !network {
                        break;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(self.shared.settings.retry_after) => {}
                        _ = stop.changed() => break,
                    }
                }
            }
        }
        let mut s = self.lock();
        s.busy = None;
        if !s.processed.contains(&release) {
            s.processed.push(release);
        }
    }

    async fn install(&self, notice: &Notice) -> Result<(), Failure> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs());
        let (verified, vendor_key) = self.verify(&notice.manifest, now)?;
        let manifest = &verified.manifest;
        let version = manifest.version.to_string();
        let with_release = |mut f: Failure| {
            f.release = Some(version.clone());
            f
        };
        let (installed, security_version) = {
            let s = self.lock();
            (s.version.clone(), s.security_version)
        };
        let installed: Version = installed
            .parse()
            .map_err(|_| with_release(Failure::refused("storage", "running version is invalid")))?;
        let device = policy::DeviceState {
            model: &self.model,
            hardware: &self.hardware,
            version: &installed,
            security_version,
        };
        policy::decide(manifest, &device, now)
            .map_err(|r| with_release(Failure::refused(r.check(), r)))?;
        if !notice.url.starts_with("https://") {
            return Err(with_release(Failure::refused(
                "notice-url",
                "the download URL is not https://",
            )));
        }
        let mut downloading = self.status(UpdateState::Downloading, Some(version.clone()), None);
        downloading.progress = Some(0);
        self.set_report(downloading).await;

        let mut verifier = ImageVerifier::new(manifest.size, manifest.sha256);
        {
            let _permit = self
                .shared
                .downloads
                .acquire()
                .await
                .map_err(|e| with_release(Failure::network("download", e)))?;
            let mut response = self
                .http
                .get(&notice.url)
                .header("Accept-Encoding", "identity")
                .send()
                .await
                .map_err(|e| with_release(Failure::network("download", e)))?;
            if !response.status().is_success() {
                return Err(with_release(Failure::network(
                    "download",
                    format!("HTTP {}", response.status()),
                )));
            }
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| with_release(Failure::network("download", e)))?
            {
                verifier
                    .update(&chunk)
                    .map_err(|e| with_release(Failure::refused(e.check(), e)))?;
            }
        }
        if verifier.received() < manifest.size {
            return Err(with_release(Failure::network(
                "image-size",
                format!(
                    "received {} of {} bytes",
                    verifier.received(),
                    manifest.size
                ),
            )));
        }
        verifier
            .finish()
            .map_err(|e| with_release(Failure::refused(e.check(), e)))?;
        // The verified image is "written": report installing, then boot it (it passes its
        // self-check: it is the verified image) and confirm.
        let installing = self.status(UpdateState::Installing, Some(version.clone()), None);
        self.set_report(installing).await;
        {
            let mut s = self.lock();
            s.version = version.clone();
            s.sha256 = hex::encode(manifest.sha256);
            s.security_version = s.security_version.max(manifest.security_version);
            let generation = s.key_generations.entry(vendor_key).or_insert(0);
            *generation = (*generation).max(verified.certificate.generation);
        }
        let confirmed = self.status(UpdateState::Confirmed, Some(version), None);
        self.set_report(confirmed).await;
        Ok(())
    }
}

struct Failure {
    check: String,
    message: String,
    release: Option<String>,
    network: bool,
}

impl Failure {
    fn refused(check: &str, message: impl std::fmt::Display) -> Self {
        Failure {
            check: check.to_string(),
            message: message.to_string(),
            release: None,
            network: false,
        }
    }

    fn network(check: &str, message: impl std::fmt::Display) -> Self {
        Failure {
            network: true,
            ..Failure::refused(check, message)
        }
    }
}

/// Runs one device until `stop` turns true.
pub async fn run(device: Device, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let Device {
        bundle,
        options,
        http,
    } = device;
    let (client, mut events): (AsyncClient, EventLoop) = AsyncClient::new(options, 16);
    let id = bundle.device_id.clone();
    let factory =
        fwledger_device::host::factory_image_bytes(&bundle.model, &shared.settings.factory_version);
    let factory_sha = hex::encode(Sha256::digest(&factory));
    let version = shared.settings.factory_version.clone();
    let sim = Arc::new(Sim {
        status_topic: topics::status(&id),
        check_topic: topics::check(&id),
        model: bundle.model.clone(),
        hardware: bundle.hardware.clone(),
        vendor_keys: bundle.vendor_keys(),
        client,
        http,
        shared: shared.clone(),
        state: Mutex::new(State {
            report: DeviceStatus {
                sha256: Some(factory_sha.clone()),
                ..DeviceStatus::idle(&version, 0)
            },
            version,
            sha256: factory_sha,
            security_version: 0,
            key_generations: HashMap::new(),
            processed: Vec::new(),
            busy: None,
        }),
        id,
    });
    let notice_topic = topics::notice(&sim.id);
    // Status traffic: the current status and a check request every interval while connected,
    // as the agents do (PROTOCOL §12: a lost report reaches the gateway within one interval);
    // its own task, so that the event loop's poll is never cancelled by a timer.
    let connected = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let checker = {
        let (sim, connected, mut stop) = (sim.clone(), connected.clone(), stop.clone());
        let interval = shared.settings.check_interval;
        tokio::spawn(async move {
            let mut ticks =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = ticks.tick() => {
                        if connected.load(std::sync::atomic::Ordering::Relaxed) {
                            let report = DeviceStatus {
                                progress: None,
                                ..sim.lock().report.clone()
                            };
                            if let Ok(json) = serde_json::to_vec(&report) {
                                let _ = sim.client.publish(&sim.status_topic, QoS::AtLeastOnce, false, json).await;
                            }
                            let _ = sim.client.publish(&sim.check_topic, QoS::AtLeastOnce, false, Vec::new()).await;
                        }
                    }
                }
            }
        })
    };
    let mut backoff = Duration::from_millis(500);
    loop {
        let event = tokio::select! {
            _ = stop.changed() => break,
            event = events.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = Duration::from_millis(500);
                connected.store(true, std::sync::atomic::Ordering::Relaxed);
                // rumqttc does not restore subscriptions: subscribe on every CONNACK.
                // (try_…: this task is the one that drains the request channel.)
                let _ = sim.client.try_subscribe(&notice_topic, QoS::AtLeastOnce);
                let report = DeviceStatus {
                    progress: None,
                    ..sim.lock().report.clone()
                };
                if let Ok(json) = serde_json::to_vec(&report) {
                    let _ =
                        sim.client
                            .try_publish(&sim.status_topic, QoS::AtLeastOnce, false, json);
                }
                (sim.shared.observer)(&sim.id, &report);
                let _ =
                    sim.client
                        .try_publish(&sim.check_topic, QoS::AtLeastOnce, false, Vec::new());
            }
            Ok(Event::Incoming(Packet::Publish(p))) if p.topic == notice_topic => {
                if let Some(release) = sim.accept(&p.payload) {
                    tokio::spawn(
                        sim.clone()
                            .update(p.payload.to_vec(), release, stop.clone()),
                    );
                }
            }
            Ok(_) => {}
            Err(_) => {
                connected.store(false, std::sync::atomic::Ordering::Relaxed);
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
    checker.abort();
    // Flush what is queued (the last status report may be in the request channel still), then
    // disconnect cleanly; bounded.
    let _ = sim.client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match events.poll().await {
                Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
}

//! `gateway run`: the service. Starts (or connects to) the broker, serves downloads, follows every
//! channel, fetches and verifies releases, and keeps each device's retained notice pointing at
//! the release it should install.
//!
//! Everything the service decides is driven by the registry, so it is also re-derived
//! periodically ("reconcile"): a crash, a device added by another process, or a missed event is
//! corrected at the next pass without re-notifying devices whose notice is already right.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fwledger::Backends;
use fwledger_link::DeviceStatus;
use fwledger_proto::ed25519_dalek::VerifyingKey;
use fwledger_proto::manifest::{verify_manifest, Manifest, TrustAnchor};
use rumqttc::{AsyncClient, QoS, SubscribeFilter};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::{Broker, BrokerError};
use crate::config::{GatewayConfig, GatewayPaths, GATEWAY_IDENTITY};
use crate::health::{Backoff, Component, Health};
use crate::http::{router, HttpServer, HttpState};
use crate::mqtt::{BrokerUrl, DeviceMessage, MqttError};
use crate::notify::{choose_where, notice, Offer};
use crate::registry::{
    Device, EventLevel, Registry, RegistryError, Release, ReleaseState, UpdateStage,
};
use crate::setup::{Gateway, SetupError};
use crate::tls::TlsError;

/// Why the gateway could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// Gateway files are missing or damaged.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// mosquitto could not be started.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The broker URL or MQTT client failed.
    #[error(transparent)]
    Mqtt(#[from] MqttError),
    /// Certificates or keys are unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The HTTPS server could not bind its address.
    #[error("HTTPS server on {addr}: {source}")]
    Http {
        /// The address.
        addr: SocketAddr,
        /// What failed.
        source: std::io::Error,
    },
    /// The registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// Intervals and timeouts of the service.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Timing {
    /// How often the service re-derives its work from the registry.
    pub reconcile: Duration,
    /// How long one wait for new channel messages lasts (freshness is checked in between).
    pub channel_poll: Duration,
    /// How long a content-store download may stall.
    pub stall: Duration,
    /// How long queueing one MQTT publish may take.
    pub publish: Duration,
    /// First wait before retrying a failing ledger, content store or disk (doubled per failed
    /// attempt, with jitter, up to `max_backoff`).
    pub min_backoff: Duration,
    /// Longest wait between retries of the ledger, the content store or the disk.
    pub max_backoff: Duration,
    /// How long `start` waits for the broker connection before going on without it.
    pub connect: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            reconcile: Duration::from_secs(5),
            channel_poll: Duration::from_secs(2),
            stall: fwledger::fetch::DEFAULT_STALL_TIMEOUT,
            publish: Duration::from_secs(10),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            connect: Duration::from_secs(10),
        }
    }
}

/// How to run the gateway.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The ledger and content store the channels and images come from.
    pub backends: Backends,
    /// HTTPS listen address (default: `gateway.json`'s bind address and HTTPS port; port 0 picks
    /// a free port). When given, notices use the bound address in their URLs.
    pub http: Option<SocketAddr>,
    /// An already-running broker (`mqtts://HOST:PORT` with the gateway's client certificate, or
    /// `mqtt://` on loopback) instead of starting mosquitto.
    pub broker: Option<String>,
    /// The mosquitto binary (default: `$FWLEDGER_MOSQUITTO`, `PATH`, `/usr/sbin`).
    pub mosquitto: Option<PathBuf>,
    /// Intervals and timeouts.
    pub timing: Timing,
}

impl RunOptions {
    /// Defaults: start mosquitto, listen where `gateway.json` says.
    pub fn new(backends: Backends) -> Self {
        RunOptions {
            backends,
            http: None,
            broker: None,
            mosquitto: None,
            timing: Timing::default(),
        }
    }
}

/// A started gateway. Stop it with [`RunningGateway::stop`] (dropping it cancels the tasks and
/// kills mosquitto, without waiting).
#[derive(Debug)]
pub struct RunningGateway {
    core: Arc<Core>,
    tasks: TaskTracker,
    http: Option<HttpServer>,
    http_addr: SocketAddr,
    sntp_addr: Option<SocketAddr>,
    mqtt_url: String,
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        self.core.cancel.cancel();
    }
}

impl RunningGateway {
    /// Where the HTTPS server listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Where the SNTP responder listens (UDP), unless its port could not be bound.
    pub fn sntp_addr(&self) -> Option<SocketAddr> {
        self.sntp_addr
    }

    /// The HTTPS base URL used in notices.
    pub fn http_url(&self) -> &str {
        &self.core.http_url
    }

    /// The broker the gateway is connected to.
    pub fn mqtt_url(&self) -> &str {
        &self.mqtt_url
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.core.registry
    }

    /// Whether the gateway is connected and subscribed to the broker.
    pub fn is_connected(&self) -> bool {
        *self.core.connected.borrow()
    }

    /// Stops everything: tasks, MQTT, the HTTPS server, then mosquitto (SIGTERM).
    pub async fn stop(mut self) {
        // Say goodbye to the broker before the event loop stops, bounded.
        if self.core.mqtt.try_disconnect().is_ok() {
            let mut connected = self.core.connected.clone();
            let _ = tokio::time::timeout(Duration::from_secs(1), connected.wait_for(|c| !*c)).await;
        }
        self.core.cancel.cancel();
        self.tasks.close();
        let _ = tokio::time::timeout(Duration::from_secs(15), self.tasks.wait()).await;
        if let Some(http) = self.http.take() {
            http.stop(Duration::from_secs(2)).await;
        }
    }
}

impl Gateway {
    /// Starts the gateway and returns once it serves HTTPS and (unless the broker stays
    /// unreachable for [`Timing::connect`]) is connected to the broker.
    pub async fn start(self, options: RunOptions) -> Result<RunningGateway, RunError> {
        let paths = self.paths.clone();
        let config = Arc::new(self.config.clone());
        let read = |path: PathBuf| {
            std::fs::read_to_string(&path).map_err(|source| SetupError::Io { path, source })
        };
        let ca_pem = read(paths.ca_cert())?;
        let server_tls =
            crate::tls::server_config(&read(paths.server_cert())?, &read(paths.server_key())?)?;
        let client_tls = crate::tls::client_config(
            &ca_pem,
            Some((&read(paths.client_cert())?, &read(paths.client_key())?)),
        )?;
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        let registry = self.registry.clone();

        let broker_url = options
            .broker
            .clone()
            .unwrap_or_else(|| config.local_mqtt_url());
        let mqtt_options =
            BrokerUrl::parse(&broker_url)?.options(GATEWAY_IDENTITY, Some(client_tls))?;

        // The broker first: devices and the gateway need it.
        if options.broker.is_none() {
            let broker = Broker::start(&paths, &config, options.mosquitto.as_deref()).await?;
            tasks.spawn(supervise_broker(
                broker,
                paths.clone(),
                config.clone(),
                options.mosquitto.clone(),
                registry.clone(),
                cancel.clone(),
            ));
        }

        let http_addr = options
            .http
            .unwrap_or(SocketAddr::new(config.bind, config.https_port));
        let metrics = Arc::new(crate::metrics::GatewayMetrics::default());
        metrics.health().reset(fwledger::unix_now());
        let http_state = HttpState {
            home: self.home.clone(),
            registry: registry.clone(),
            paths: paths.clone(),
            config: config.clone(),
            metrics: metrics.clone(),
        };
        let http = match HttpServer::start(http_addr, server_tls, router(http_state)) {
            Ok(http) => http,
            Err(source) => {
                cancel.cancel();
                tasks.close();
                let _ = tokio::time::timeout(Duration::from_secs(10), tasks.wait()).await;
                return Err(RunError::Http {
                    addr: http_addr,
                    source,
                });
            }
        };
        let bound = http.addr();
        let http_url = match options.http {
            Some(_) => format!("https://{bound}"),
            None => config.http_url(),
        };

        // The SNTP responder: devices without a clock depend on it, but updates do not, so a
        // port already in use is logged rather than fatal.
        let sntp_bind = SocketAddr::new(config.bind, config.sntp_port);
        let sntp_addr = match crate::sntp::SntpServer::bind(
            sntp_bind,
            crate::sntp::SntpConfig::default(),
        )
        .await
        {
            Ok(server) => {
                let addr = server.local_addr().ok();
                tasks.spawn(server.run(cancel.clone().cancelled_owned()));
                addr
            }
            Err(e) => {
                let _ = registry.log(
                    EventLevel::Error,
                    &format!("SNTP on udp/{sntp_bind}: {e}; devices get no time from the gateway"),
                );
                None
            }
        };

        let (mqtt, eventloop) = AsyncClient::new(mqtt_options, 4096);
        let (connected_tx, connected) = watch::channel(false);
        metrics.watch_mqtt(connected.clone());
        let (log_tx, mut log_rx) = mpsc::unbounded_channel::<(EventLevel, String)>();
        let (messages_tx, mut messages_rx) = mpsc::channel::<DeviceMessage>(8192);

        let core = Arc::new(Core {
            registry: registry.clone(),
            paths,
            backends: options.backends.clone(),
            mqtt: mqtt.clone(),
            http_url,
            timing: options.timing.clone(),
            cancel: cancel.clone(),
            tasks: tasks.clone(),
            connected,
            fetching: Mutex::new(HashSet::new()),
            manifests: Mutex::new(HashMap::new()),
            last_check: Mutex::new(HashMap::new()),
            followers: Mutex::new(HashMap::new()),
            notices: tokio::sync::Mutex::new(()),
            health: metrics.health().clone(),
            metrics,
            gates: Mutex::new(Arc::new(crate::rollout::Gates::default())),
            rollouts_checked: Mutex::new(None),
        });
        core.log(
            EventLevel::Info,
            &format!(
                "gateway started (broker {broker_url}, downloads {})",
                core.http_url
            ),
        );
        crate::repository::remove_partial_files(&core.paths.repository());

        tasks.spawn(drive_mqtt(
            eventloop,
            mqtt.clone(),
            messages_tx,
            log_tx,
            connected_tx,
            core.health.clone(),
            cancel.clone(),
        ));
        {
            let core = core.clone();
            tasks.spawn(async move {
                while let Some((level, message)) = log_rx.recv().await {
                    core.log(level, &message);
                }
            });
        }
        {
            let core = core.clone();
            tasks.spawn(async move {
                loop {
                    let message = tokio::select! {
                        _ = core.cancel.cancelled() => return,
                        m = messages_rx.recv() => m,
                    };
                    match message {
                        Some(DeviceMessage::Status { device, payload }) => {
                            core.on_status(&device, &payload).await
                        }
                        Some(DeviceMessage::Check { device }) => core.on_check(&device).await,
                        None => return,
                    }
                }
            });
        }

        // Wait for the broker connection, bounded, so that callers can rely on a connected
        // gateway in the common case.
        let mut watch_connected = core.connected.clone();
        let _ =
            tokio::time::timeout(options.timing.connect, watch_connected.wait_for(|c| *c)).await;
        {
            let core = core.clone();
            tasks.spawn(async move { core.reconcile_loop().await });
        }
        Ok(RunningGateway {
            core,
            tasks,
            http: Some(http),
            http_addr: bound,
            sntp_addr,
            mqtt_url: broker_url,
        })
    }

    /// Runs the gateway until `shutdown` completes, then stops it cleanly. Usable as a library
    /// future: pass [`RunOptions::broker`] to use an already-running broker.
    pub async fn run(
        self,
        options: RunOptions,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), RunError> {
        let running = self.start(options).await?;
        shutdown.await;
        running.stop().await;
        Ok(())
    }
}

/// Keeps mosquitto running: restarts it (with backoff) if it dies, stops it on shutdown.
async fn supervise_broker(
    mut broker: Broker,
    paths: GatewayPaths,
    config: Arc<GatewayConfig>,
    program: Option<PathBuf>,
    registry: Registry,
    cancel: CancellationToken,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => {
                broker.stop().await;
                return;
            }
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        if broker.is_running() {
            continue;
        }
        let _ = registry.log(
            EventLevel::Error,
            &format!(
                "mosquitto exited; restarting it. Log:\n{}",
                broker.log_tail()
            ),
        );
        loop {
            match Broker::start(&paths, &config, program.as_deref()).await {
                Ok(started) => {
                    broker = started;
                    backoff = Duration::from_secs(1);
                    break;
                }
                Err(e) => {
                    let _ = registry.log(EventLevel::Error, &format!("restarting mosquitto: {e}"));
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

async fn drive_mqtt(
    eventloop: rumqttc::EventLoop,
    client: AsyncClient,
    messages: mpsc::Sender<DeviceMessage>,
    log: mpsc::UnboundedSender<(EventLevel, String)>,
    connected: watch::Sender<bool>,
    health: Health,
    cancel: CancellationToken,
) {
    let filters = vec![
        SubscribeFilter::new(fwledger_link::topics::ALL_STATUS.into(), QoS::AtLeastOnce),
        SubscribeFilter::new(fwledger_link::topics::ALL_CHECK.into(), QoS::AtLeastOnce),
    ];
    crate::mqtt::drive(
        eventloop, client, filters, messages, log, connected, health, cancel,
    )
    .await
}

/// The service's shared state.
pub(crate) struct Core {
    pub(crate) registry: Registry,
    pub(crate) paths: GatewayPaths,
    pub(crate) backends: Backends,
    mqtt: AsyncClient,
    pub(crate) http_url: String,
    pub(crate) timing: Timing,
    pub(crate) cancel: CancellationToken,
    tasks: TaskTracker,
    connected: watch::Receiver<bool>,
    /// Releases being fetched.
    pub(crate) fetching: Mutex<HashSet<i64>>,
    /// Verified manifests by release id.
    manifests: Mutex<HashMap<i64, Arc<Manifest>>>,
    /// Last check request per device (rate limit).
    last_check: Mutex<HashMap<String, Instant>>,
    /// Follower task per channel.
    followers: Mutex<HashMap<String, JoinHandle<()>>>,
    /// Serialises notice decisions, so two paths never publish for one device at once.
    notices: tokio::sync::Mutex<()>,
    /// Counters for `/metrics`.
    metrics: Arc<crate::metrics::GatewayMetrics>,
    /// The state of the broker, ledger, store and disk (shared with the web UI via `metrics`).
    pub(crate) health: Health,
    /// Which devices each staged rollout lets be offered its release (rebuilt every pass).
    gates: Mutex<Arc<crate::rollout::Gates>>,
    /// When a status report last made the rollouts be judged (rate limit).
    rollouts_checked: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("http_url", &self.http_url)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Core {
    /// Appends to the event log (a failing log write is not worth failing anything for).
    pub(crate) fn log(&self, level: EventLevel, message: &str) {
        let _ = self.registry.log(level, message);
    }

    /// A fresh retry schedule for a failing component.
    pub(crate) fn backoff(&self) -> Backoff {
        Backoff::new(self.timing.min_backoff, self.timing.max_backoff)
    }

    /// Records a failure of `component`, retried after `retry_in`; logs the change from ok to
    /// failing once.
    pub(crate) fn component_failed(
        &self,
        component: Component,
        error: &str,
        retry_in: Option<Duration>,
    ) {
        if self
            .health
            .failed(component, error, retry_in, fwledger::unix_now())
        {
            self.log(
                EventLevel::Warning,
                &format!("{component} failing: {error}; retrying with backoff"),
            );
        }
    }

    /// Records a success of `component`; logs its recovery once.
    pub(crate) fn component_ok(&self, component: Component) {
        if self.health.recovered(component, fwledger::unix_now()) {
            self.log(EventLevel::Info, &format!("{component} works again"));
        }
    }

    /// The verified manifest of a release (cached).
    pub(crate) fn manifest(&self, release: &Release) -> Result<Arc<Manifest>, String> {
        if let Some(m) = lock(&self.manifests).get(&release.id) {
            return Ok(m.clone());
        }
        let key: [u8; 32] = hex::decode(&release.vendor_key)
            .ok()
            .and_then(|k| k.try_into().ok())
            .ok_or("stored vendor key is not 32 bytes of hex")?;
        let root = VerifyingKey::from_bytes(&key).map_err(|_| "stored vendor key is invalid")?;
        // Expiry is a policy decision made at offer time, so no clock here.
        let verified = verify_manifest(&release.manifest, &TrustAnchor::new(root), None)
            .map_err(|e| format!("stored manifest no longer verifies: {e}"))?;
        let manifest = Arc::new(verified.manifest);
        lock(&self.manifests).insert(release.id, manifest.clone());
        Ok(manifest)
    }

    pub(crate) fn remember_manifest(&self, id: i64, manifest: Manifest) {
        lock(&self.manifests).insert(id, Arc::new(manifest));
    }

    /// Runs `future` as a tracked task.
    pub(crate) fn spawn<F>(&self, future: F) -> JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(future)
    }

    /// Sleeps, returning `false` if the service is shutting down.
    pub(crate) async fn pause(&self, duration: Duration) -> bool {
        tokio::select! {
            _ = self.cancel.cancelled() => false,
            _ = tokio::time::sleep(duration) => true,
        }
    }

    // ----- releases -----

    /// Decides what to do with a release: fetch it if a registered device can use it, offer it
    /// once verified.
    pub(crate) async fn consider_release(self: &Arc<Self>, id: i64) {
        let release = match self.registry.release(id) {
            Ok(Some(release)) => release,
            _ => return,
        };
        match release.state {
            ReleaseState::Revoked | ReleaseState::Failed => {}
            ReleaseState::Verified => {
                if !self.paths.image(&release.sha256).is_file() {
                    self.log(
                        EventLevel::Warning,
                        &format!(
                            "{} {}: repository file missing, fetching again",
                            release.model, release.version
                        ),
                    );
                    self.start_fetch(release);
                }
            }
            ReleaseState::Pending | ReleaseState::Fetching => {
                match self
                    .registry
                    .compatible_devices(&release.model, &release.hardware)
                {
                    Ok(devices) if !devices.is_empty() => self.start_fetch(release),
                    _ => {}
                }
            }
        }
    }

    fn start_fetch(self: &Arc<Self>, release: Release) {
        if !lock(&self.fetching).insert(release.id) {
            return;
        }
        let core = self.clone();
        self.spawn(async move {
            let id = release.id;
            crate::repository::fetch_release(&core, release).await;
            lock(&core.fetching).remove(&id);
        });
    }

    /// The verified releases of `model`, with their manifests.
    fn offers(&self, model: &str) -> Vec<Offer> {
        let releases = self.registry.verified_releases(model).unwrap_or_default();
        releases
            .into_iter()
            .filter_map(|release| {
                let manifest = self.manifest(&release).ok()?;
                Some(Offer { release, manifest })
            })
            .collect()
    }

    /// Brings the retained notice of every device of `model` (every device: `None`) up to date.
    pub(crate) async fn refresh_devices(&self, model: Option<&str>) {
        let devices = match self.registry.devices() {
            Ok(devices) => devices,
            Err(e) => {
                self.log(EventLevel::Error, &format!("registry: {e}"));
                return;
            }
        };
        let mut offers: HashMap<String, Vec<Offer>> = HashMap::new();
        for device in devices {
            if model.is_some_and(|m| m != device.model) {
                continue;
            }
            if self.cancel.is_cancelled() {
                return;
            }
            let offers = offers
                .entry(device.model.clone())
                .or_insert_with(|| self.offers(&device.model));
            self.refresh_device(&device, offers, false).await;
        }
    }

    /// Publishes `device`'s notice if what it should be offered changed (or always, with
    /// `republish`: a check request).
    async fn refresh_device(&self, device: &Device, offers: &[Offer], republish: bool) {
        let _guard = self.notices.lock().await;
        // Re-read under the lock: another path may have just published.
        let device = match self.registry.device(&device.id) {
            Ok(Some(device)) => device,
            _ => return,
        };
        let now = fwledger::unix_now();
        let mut gates = lock(&self.gates).clone();
        if offers.iter().any(|o| !gates.covers(o.release.id)) {
            // A release newer than the gates (perhaps under the default plan): rebuild first.
            if let Ok((fresh, _)) = self.registry.rollout_gates() {
                gates = Arc::new(fresh);
                *lock(&self.gates) = gates.clone();
            }
        }
        let target = choose_where(offers, &device, now, |o| {
            gates.allows(o.release.id, &device.id)
        });
        let target_id = target.map(|o| o.release.id);
        if target_id == device.notice_release && !republish {
            return;
        }
        let payload = target
            .map(|o| notice(&o.release, &self.http_url, now).to_cbor())
            .unwrap_or_default();
        let topic = fwledger_link::topics::notice(&device.id);
        let published = tokio::time::timeout(
            self.timing.publish,
            self.mqtt.publish(topic, QoS::AtLeastOnce, true, payload),
        )
        .await;
        match published {
            Ok(Ok(())) => self.metrics.notice_sent(),
            Ok(Err(e)) => {
                self.log(
                    EventLevel::Warning,
                    &format!("notice to {}: {e}", device.id),
                );
                return;
            }
            Err(_) => {
                self.log(
                    EventLevel::Warning,
                    &format!("notice to {}: MQTT client busy, will retry", device.id),
                );
                return;
            }
        }
        if target_id == device.notice_release {
            return;
        }
        if let Err(e) = self.registry.set_device_notice(&device.id, target_id) {
            self.log(EventLevel::Error, &format!("registry: {e}"));
            return;
        }
        match target {
            Some(o) => self.log(
                EventLevel::Info,
                &format!(
                    "notified {} of {} {}",
                    device.id, o.release.model, o.release.version
                ),
            ),
            None => self.log(
                EventLevel::Info,
                &format!("cleared the notice of {} (nothing to install)", device.id),
            ),
        }
    }

    // ----- devices -----

    /// A status report (empty: the device's last will — it went offline).
    pub(crate) async fn on_status(&self, id: &str, payload: &[u8]) {
        if payload.is_empty() {
            let _ = self.registry.set_device_online(id, false);
            return;
        }
        let status = match DeviceStatus::from_json(payload) {
            Ok(status) => status,
            Err(e) => {
                self.log(
                    EventLevel::Warning,
                    &format!("unreadable status report from {id}: {e}"),
                );
                return;
            }
        };
        let before = self
            .registry
            .device_updates(id)
            .ok()
            .and_then(|u| u.into_iter().next());
        let outcome = match self.registry.record_status(id, &status) {
            Ok(outcome) => outcome,
            Err(RegistryError::UnknownDevice(_)) => {
                self.log(
                    EventLevel::Warning,
                    &format!("status report from unregistered device {id}"),
                );
                return;
            }
            Err(e) => {
                self.log(EventLevel::Error, &format!("registry: {e}"));
                return;
            }
        };
        if let Some((release, stage)) = outcome.update {
            let changed = before
                .as_ref()
                .is_none_or(|b| b.release_id != release || b.state != stage);
            if changed {
                let what = self
                    .registry
                    .release(release)
                    .ok()
                    .flatten()
                    .map(|r| format!("{} {}", r.model, r.version))
                    .unwrap_or_else(|| format!("release {release}"));
                let reason = status
                    .reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                let level = match stage {
                    UpdateStage::Failed | UpdateStage::RolledBack => EventLevel::Warning,
                    _ => EventLevel::Info,
                };
                self.log(level, &format!("{id}: {what} {stage}{reason}"));
            }
        }
        let version_changed = outcome.previous_version.as_deref() != Some(status.version.as_str());
        let finished = outcome.update.is_some_and(|(_, stage)| stage.is_final());
        if let Some((release, stage)) = outcome.update.filter(|_| finished) {
            self.judge_rollout_after(release, stage).await;
        }
        if version_changed || finished {
            if let Ok(Some(device)) = self.registry.device(id) {
                let offers = self.offers(&device.model);
                self.refresh_device(&device, &offers, false).await;
            }
        }
    }

    /// A self-validation request: send the device its current notice again.
    pub(crate) async fn on_check(&self, id: &str) {
        {
            let mut last = lock(&self.last_check);
            let now = Instant::now();
            if last
                .get(id)
                .is_some_and(|t| now.duration_since(*t) < Duration::from_secs(1))
            {
                return;
            }
            if last.len() > 100_000 {
                last.clear();
            }
            last.insert(id.to_string(), now);
        }
        let device = match self.registry.device(id) {
            Ok(Some(device)) => device,
            Ok(None) => {
                self.log(
                    EventLevel::Warning,
                    &format!("check request from unregistered device {id}"),
                );
                return;
            }
            Err(e) => {
                self.log(EventLevel::Error, &format!("registry: {e}"));
                return;
            }
        };
        let _ = self.registry.set_device_online(id, true);
        let offers = self.offers(&device.model);
        self.refresh_device(&device, &offers, true).await;
    }

    // ----- reconcile -----

    async fn reconcile_loop(self: Arc<Self>) {
        loop {
            self.reconcile().await;
            if !self.pause(self.timing.reconcile).await {
                return;
            }
        }
    }

    /// One pass: follow new channels, fetch what registered devices need, fix notices.
    pub(crate) async fn reconcile(self: &Arc<Self>) {
        match self.registry.channels() {
            Ok(channels) => {
                let mut followers = lock(&self.followers);
                for channel in channels {
                    let running = followers
                        .get(&channel.id)
                        .is_some_and(|task| !task.is_finished());
                    if !running && !self.cancel.is_cancelled() {
                        let core = self.clone();
                        let id = channel.id.clone();
                        let task = self.spawn(async move { crate::follow::follow(core, id).await });
                        followers.insert(channel.id, task);
                    }
                }
            }
            Err(e) => self.log(EventLevel::Error, &format!("registry: {e}")),
        }
        let open = [
            ReleaseState::Pending,
            ReleaseState::Fetching,
            ReleaseState::Verified,
        ];
        if let Ok(releases) = self.registry.releases_in(&open) {
            for release in releases {
                self.consider_release(release.id).await;
            }
        }
        self.judge_rollouts();
        self.refresh_devices(None).await;
    }

    // ----- staged rollouts -----

    /// Judges every rollout (halt, advance, complete) and rebuilds the offer gates; returns
    /// whether a rollout moved.
    fn judge_rollouts(&self) -> bool {
        let mut moved_any = false;
        // A move (advance) can make the next stage done at once (devices already on it).
        for _ in 0..4 {
            let (gates, statuses) = match self.registry.rollout_gates() {
                Ok(found) => found,
                Err(e) => {
                    self.log(EventLevel::Error, &format!("registry: {e}"));
                    return moved_any;
                }
            };
            *lock(&self.gates) = Arc::new(gates);
            let now = fwledger::unix_now();
            let mut moved = false;
            for status in &statuses {
                let Some(step) = crate::rollout::evaluate(&status.rollout, &status.counts, now)
                else {
                    continue;
                };
                match self.registry.apply_rollout(status, &step) {
                    Ok(Some(_)) => moved = true,
                    Ok(None) => {}
                    Err(e) => self.log(EventLevel::Error, &format!("registry: {e}")),
                }
            }
            if !moved {
                return moved_any;
            }
            moved_any = true;
        }
        if let Ok((gates, _)) = self.registry.rollout_gates() {
            *lock(&self.gates) = Arc::new(gates);
        }
        moved_any
    }

    /// A device finished an update to `release`: if a staged rollout of it is active, judge it
    /// now (at most once a second; the reconcile pass does the rest), so a failing release halts
    /// before more devices get it.
    async fn judge_rollout_after(&self, release: i64, stage: UpdateStage) {
        let active = matches!(
            self.registry.rollout(release),
            Ok(Some(r)) if matches!(
                r.state,
                crate::rollout::RolloutState::Active | crate::rollout::RolloutState::Waiting
            )
        );
        if !active {
            return;
        }
        let failed = matches!(stage, UpdateStage::Failed | UpdateStage::RolledBack);
        {
            let mut last = lock(&self.rollouts_checked);
            let now = Instant::now();
            if !failed && last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
                return;
            }
            *last = Some(now);
        }
        if self.judge_rollouts() {
            let model = self
                .registry
                .release(release)
                .ok()
                .flatten()
                .map(|r| r.model);
            self.refresh_devices(model.as_deref()).await;
        }
    }
}

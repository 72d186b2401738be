//! End to end on one machine: vendor → embedded ledger/store → gateway (real mosquitto over TLS
//! with client certificates and per-device ACLs, HTTPS downloads) → host device agents.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fwledger::{Backends, ReleaseSpec, Vendor};
use fwledger_device::host::{self, DeviceConfig};
use fwledger_device::Shutdown;
use fwledger_gateway::registry::{NewDevice, ReleaseState};
use fwledger_gateway::{Gateway, InitOptions, RunOptions, RunningGateway, Timing};
use fwledger_link::{DeviceStatus, UpdateState};

const WAIT: Duration = Duration::from_secs(60);

type Statuses = Arc<Mutex<HashMap<String, Vec<DeviceStatus>>>>;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

struct World {
    dir: tempfile::TempDir,
    vendor: Vendor,
    gateway: Option<Gateway>,
    statuses: Statuses,
    shutdown: Shutdown,
    devices: Vec<std::thread::JoinHandle<Result<(), fwledger_device::host::DeviceError>>>,
}

impl World {
    fn new() -> World {
        assert!(
            fwledger_gateway::broker::find_mosquitto(None).is_ok(),
            "these tests need mosquitto: apt-get install -y mosquitto"
        );
        let dir = tempfile::tempdir().unwrap();
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
        World {
            dir,
            vendor,
            gateway: Some(gateway),
            statuses: Arc::default(),
            shutdown: Shutdown::new(),
            devices: Vec::new(),
        }
    }

    fn device_config(&self, id: &str, model: &str, hw: &str) -> DeviceConfig {
        let bundle = self
            .gateway
            .as_ref()
            .unwrap()
            .add_device(&NewDevice {
                id: id.into(),
                mac: "02:00:00:00:00:01".into(),
                model: model.into(),
                hardware: hw.into(),
            })
            .unwrap();
        let mut config = DeviceConfig::new(bundle, self.dir.path().join("dev").join(id));
        let seen = self.statuses.clone();
        config.observer = Some(Arc::new(move |id: &str, s: &DeviceStatus| {
            seen.lock()
                .unwrap()
                .entry(id.into())
                .or_default()
                .push(s.clone());
        }));
        config
    }

    fn spawn(&mut self, config: DeviceConfig) {
        self.devices
            .push(host::spawn(config, self.shutdown.clone()).unwrap());
    }

    async fn start_gateway(&mut self) -> RunningGateway {
        let backends = Backends::open(self.dir.path(), "embedded", "embedded").unwrap();
        let mut options = RunOptions::new(backends);
        let mut timing = Timing::default();
        timing.reconcile = Duration::from_millis(500);
        timing.channel_poll = Duration::from_millis(300);
        options.timing = timing;
        self.gateway.take().unwrap().start(options).await.unwrap()
    }

    fn latest(&self, id: &str) -> Option<DeviceStatus> {
        self.statuses
            .lock()
            .unwrap()
            .get(id)
            .and_then(|v| v.last().cloned())
    }

    fn history(&self, id: &str) -> Vec<DeviceStatus> {
        self.statuses
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    async fn wait_for(&self, id: &str, what: &str, f: impl Fn(&DeviceStatus) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !self.latest(id).is_some_and(|s| f(&s)) {
            assert!(
                Instant::now() < deadline,
                "{id}: timed out waiting for {what}: {:?}",
                self.history(id)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn publish(&mut self, version: &str, security_version: u64) {
        let image = self.dir.path().join(format!("fw-{version}.bin"));
        std::fs::write(&image, format!("lamp firmware {version}").repeat(40_000)).unwrap();
        let mut spec = ReleaseSpec::new("lamp", &["rev-b"], version);
        spec.security_version = security_version;
        self.vendor.publish(&image, &spec, None).await.unwrap();
    }

    async fn stop(self, gateway: RunningGateway) {
        self.shutdown.trigger();
        for handle in self.devices {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
        gateway.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_reaches_compatible_devices_only() {
    let mut world = World::new();
    let lamps: Vec<DeviceConfig> = (0..3)
        .map(|n| world.device_config(&format!("lamp-{n}"), "lamp", "rev-b"))
        .collect();
    let old_hw = world.device_config("lamp-old-hw", "lamp", "rev-a");
    let fan = world.device_config("fan-0", "fan", "rev-b");
    let gateway = world.start_gateway().await;
    for config in lamps.into_iter().chain([old_hw, fan]) {
        world.spawn(config);
    }
    for id in ["lamp-0", "lamp-1", "lamp-2", "lamp-old-hw", "fan-0"] {
        world
            .wait_for(id, "online", |s| s.state == UpdateState::Idle)
            .await;
    }
    world.publish("1.1.0", 1).await;
    for id in ["lamp-0", "lamp-1", "lamp-2"] {
        world
            .wait_for(id, "confirmed 1.1.0", |s| {
                s.state == UpdateState::Confirmed && s.version == "1.1.0"
            })
            .await;
    }
    // The gateway saw it too.
    let registry = gateway.registry().clone();
    let deadline = Instant::now() + WAIT;
    loop {
        let device = registry.device("lamp-1").unwrap().unwrap();
        if device.version.as_deref() == Some("1.1.0") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "registry never saw lamp-1 on 1.1.0: {device:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Incompatible devices were never notified: they only ever reported idle on 1.0.0.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for id in ["lamp-old-hw", "fan-0"] {
        let history = world.history(id);
        assert!(
            history
                .iter()
                .all(|s| s.state == UpdateState::Idle && s.version == "1.0.0"),
            "{id}: {history:?}"
        );
    }
    world.stop(gateway).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_device_is_updated_when_it_connects() {
    let mut world = World::new();
    let late = world.device_config("lamp-late", "lamp", "rev-b");
    let gateway = world.start_gateway().await;
    world.publish("2.0.0", 0).await;
    // Wait until the gateway has verified the release and notified (the device is offline).
    let deadline = Instant::now() + WAIT;
    while !gateway
        .registry()
        .releases()
        .unwrap()
        .iter()
        .any(|r| r.version == "2.0.0" && r.state == ReleaseState::Verified)
    {
        assert!(Instant::now() < deadline, "release never verified");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Comes online later: the retained notice alone updates it (no check request needed).
    let mut config = late;
    config.settings.check_interval = Duration::from_secs(3600);
    world.spawn(config);
    world
        .wait_for("lamp-late", "confirmed 2.0.0", |s| {
            s.state == UpdateState::Confirmed && s.version == "2.0.0"
        })
        .await;
    world.stop(gateway).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_version_rollback_is_never_installed() {
    let mut world = World::new();
    let lamp = world.device_config("lamp-sv", "lamp", "rev-b");
    let gateway = world.start_gateway().await;
    world.spawn(lamp);
    world
        .wait_for("lamp-sv", "online", |s| s.state == UpdateState::Idle)
        .await;
    world.publish("1.1.0", 5).await;
    world
        .wait_for("lamp-sv", "confirmed 1.1.0", |s| {
            s.state == UpdateState::Confirmed && s.version == "1.1.0"
        })
        .await;
    // The gateway knows the device's security version before the next release arrives (the
    // device's report of it may still be queued when the device itself says confirmed).
    let registry = gateway.registry().clone();
    let deadline = Instant::now() + WAIT;
    loop {
        let device = registry.device("lamp-sv").unwrap().unwrap();
        if device.security_version == 5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "registry never saw security version 5: {device:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A newer version with a lower security version: the gateway does not offer it (and the
    // device would refuse it: see core/device/tests). The device stays on 1.1.0.
    world.publish("1.2.0", 4).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let history = world.history("lamp-sv");
    assert!(
        history
            .iter()
            .all(|s| s.release.as_deref() != Some("1.2.0")),
        "{history:?}"
    );
    assert_eq!(world.latest("lamp-sv").unwrap().version, "1.1.0");
    world.stop(gateway).await;
}

//! `fwledger demo`: vendor, gateway and N simulated devices on one machine, step by step with
//! timings.
//!
//! The vendor and the gateway share an embedded ledger and content store (as two processes on one
//! machine would with the same `--ledger`/`--store`). The gateway runs its production path: its
//! own CA, mosquitto with TLS client certificates and per-device ACLs, HTTPS downloads. Each
//! device is the host device agent with file-backed A/B slots: it verifies the vendor-signed
//! manifest itself, streams the image into its inactive slot, reboots, self-checks and confirms.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fwledger::{Backends, ReleaseSpec, Vendor};
use fwledger_device::host::{self, DeviceConfig};
use fwledger_device::Shutdown;
use fwledger_gateway::registry::{NewDevice, ReleaseState};
use fwledger_gateway::{Gateway, InitOptions, RunOptions};
use fwledger_link::{DeviceStatus, UpdateState};

use crate::util::Failure;

const MODEL: &str = "smart-lamp";
const HARDWARE: &str = "rev-b";
const FACTORY: &str = "1.0.0";
const RELEASE: &str = "1.1.0";

fn step(start: &Instant, what: &str) {
    println!(
        "[{:>9.1} ms] {what}",
        start.elapsed().as_secs_f64() * 1000.0
    );
}

fn fail(what: &str) -> impl Fn(String) -> Failure + '_ {
    move |e| Failure::Message(format!("{what}: {e}"))
}

/// A free loopback port (the demo never binds anything else).
fn free_port(udp: bool) -> Result<u16, Failure> {
    let any: SocketAddr = ([127, 0, 0, 1], 0).into();
    let port = if udp {
        UdpSocket::bind(any).and_then(|s| s.local_addr())
    } else {
        TcpListener::bind(any).and_then(|s| s.local_addr())
    };
    port.map(|a| a.port())
        .map_err(|e| Failure::Message(format!("no free loopback port: {e}")))
}

type Statuses = Arc<Mutex<HashMap<String, DeviceStatus>>>;

/// Waits until `done` holds for every device's latest status, or fails after `limit`.
async fn wait_devices(
    statuses: &Statuses,
    devices: usize,
    limit: Duration,
    what: &str,
    done: impl Fn(&DeviceStatus) -> bool,
) -> Result<(), Failure> {
    let deadline = Instant::now() + limit;
    loop {
        let (ready, failed) = {
            let map = statuses
                .lock()
                .map_err(|_| Failure::Message("status lock".into()))?;
            let ready = map.values().filter(|s| done(s)).count();
            let failed: Vec<String> = map
                .iter()
                .filter(|(_, s)| matches!(s.state, UpdateState::Failed | UpdateState::RolledBack))
                .map(|(id, s)| format!("{id}: {}", s.reason.as_deref().unwrap_or("?")))
                .collect();
            (ready, failed)
        };
        if !failed.is_empty() {
            return Err(Failure::Message(format!(
                "devices failed: {}",
                failed.join("; ")
            )));
        }
        if ready == devices {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Failure::Message(format!(
                "timed out waiting for {what}: {ready} of {devices} devices"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs the demo with `devices` simulated devices.
pub async fn run(devices: usize, dir: Option<PathBuf>, keep_running: bool) -> Result<(), Failure> {
    if devices == 0 || devices > 2000 {
        return Err(Failure::Message(
            "--devices must be between 1 and 2000".into(),
        ));
    }
    let temp;
    let root = match dir {
        Some(dir) => dir,
        None => {
            temp = TempDir::new()?;
            temp.0.clone()
        }
    };
    if root.join("vendor").exists() || root.join("gateway").exists() {
        return Err(Failure::Message(format!(
            "{} already holds a demo; pass an empty --dir",
            root.display()
        )));
    }
    let start = Instant::now();
    println!(
        "fwledger demo in {} with {devices} device(s)",
        root.display()
    );
    let shared_ledger = format!("sqlite:{}", root.join("ledger.sqlite").display());
    let shared_store = format!("embedded:{}", root.join("store").display());

    // Phase 1: the vendor, and a gateway that subscribes to its channel.
    let vendor_home = root.join("vendor");
    let backends = Backends::open(&vendor_home, &shared_ledger, &shared_store)?;
    let mut vendor = Vendor::init(&vendor_home, "Acme Lighting", &backends)?;
    vendor.heartbeat(crate::HEARTBEAT_VALIDITY).await?;
    step(
        &start,
        &format!(
            "vendor created; root key {}",
            hex::encode(vendor.public_key())
        ),
    );

    let gateway_home = root.join("gateway");
    let options = InitOptions {
        mqtt_port: Some(free_port(false)?),
        https_port: Some(free_port(false)?),
        sntp_port: Some(free_port(true)?),
        ..Default::default()
    };
    let gateway =
        Gateway::init(&gateway_home, &options).map_err(|e| fail("gateway init")(e.to_string()))?;
    let admin = gateway
        .reset_admin_password()
        .map_err(|e| fail("web UI password")(e.to_string()))?;
    let token = vendor.token(Some("home-gateway"))?;
    gateway
        .subscribe(&token)
        .map_err(|e| fail("gateway subscribe")(e.to_string()))?;
    step(
        &start,
        "gateway initialised (CA, mosquitto TLS + ACL config, registry) and subscribed",
    );

    // Phase 2: devices registered with the gateway: certificate + provisioning bundle each.
    let mut configs = Vec::with_capacity(devices);
    let statuses: Statuses = Arc::default();
    for n in 0..devices {
        let id = format!("lamp-{n:04}");
        let bundle = gateway
            .add_device(&NewDevice {
                id: id.clone(),
                mac: format!("02:00:00:00:{:02x}:{:02x}", n / 256, n % 256),
                model: MODEL.into(),
                hardware: HARDWARE.into(),
            })
            .map_err(|e| fail("device add")(e.to_string()))?;
        let mut config = DeviceConfig::new(bundle, root.join("devices").join(&id));
        config.factory_version = FACTORY.into();
        let seen = statuses.clone();
        config.observer = Some(Arc::new(move |id: &str, status: &DeviceStatus| {
            if let Ok(mut map) = seen.lock() {
                map.insert(id.to_string(), status.clone());
            }
        }));
        configs.push(config);
    }
    step(
        &start,
        &format!("{devices} device(s) registered: certificates issued by the gateway CA"),
    );

    // The gateway service: mosquitto, HTTPS downloads, web UI, channel followers.
    let gateway_backends = Backends::open(&gateway_home, &shared_ledger, &shared_store)?;
    let running = gateway
        .start(RunOptions::new(gateway_backends))
        .await
        .map_err(|e| fail("gateway run")(e.to_string()))?;
    step(
        &start,
        &format!(
            "gateway running: broker {}, HTTPS {}",
            running.mqtt_url(),
            running.http_url()
        ),
    );

    let shutdown = Shutdown::new();
    let mut handles = Vec::with_capacity(devices);
    for config in configs {
        handles.push(
            host::spawn(config, shutdown.clone())
                .map_err(|e| fail("device start")(e.to_string()))?,
        );
    }
    let result = rollout(&start, &mut vendor, &root, &running, &statuses, devices).await;
    if result.is_ok() {
        println!();
        println!(
            "web UI: {}/  user {}  password {}",
            running.http_url().trim_end_matches('/'),
            admin.user,
            admin.password
        );
        println!(
            "(the gateway's CA signs its certificate: {})",
            gateway_home.join("gateway").display()
        );
        if keep_running {
            println!("running until Ctrl-C …");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    shutdown.trigger();
    for handle in handles {
        let _ = tokio::task::spawn_blocking(move || handle.join()).await;
    }
    running.stop().await;
    result
}

async fn rollout(
    start: &Instant,
    vendor: &mut Vendor,
    root: &Path,
    running: &fwledger_gateway::RunningGateway,
    statuses: &Statuses,
    devices: usize,
) -> Result<(), Failure> {
    let scale = Duration::from_millis(100 * devices as u64);
    wait_devices(
        statuses,
        devices,
        Duration::from_secs(60) + scale,
        "devices online",
        |s| s.version == FACTORY,
    )
    .await?;
    step(
        start,
        &format!("{devices} device(s) online over MQTT/TLS, running {MODEL} {FACTORY}"),
    );

    // Phase 3: the vendor publishes a release.
    let image_path = root.join(format!("{MODEL}-{RELEASE}.bin"));
    let image: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(&image_path, &image).map_err(|e| Failure::io(&image_path, e))?;
    let mut spec = ReleaseSpec::new(MODEL, &[HARDWARE], RELEASE);
    spec.security_version = 1;
    spec.notes = Some("Brighter dimming curve; fixes CVE-0000-demo".into());
    let published = Instant::now();
    let release = vendor.publish(&image_path, &spec, None).await?;
    step(
        start,
        &format!(
            "vendor published {MODEL} {RELEASE} (1 MiB) at seq {}: {}",
            release.seq, release.cid
        ),
    );

    // Phase 4: the gateway follows the channel, fetches and verifies the image.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let releases = running
            .registry()
            .releases()
            .map_err(|e| fail("registry")(e.to_string()))?;
        if let Some(r) = releases.iter().find(|r| r.version == RELEASE) {
            match r.state {
                ReleaseState::Verified => break,
                ReleaseState::Failed => {
                    return Err(Failure::Message("the gateway refused the release".into()))
                }
                _ => {}
            }
        }
        if Instant::now() > deadline {
            return Err(Failure::Message(
                "timed out waiting for the gateway to verify the release".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    step(start, &format!(
        "gateway read the channel, fetched the image and verified size, SHA-256 and vendor signature ({:.0} ms after publish)",
        published.elapsed().as_secs_f64() * 1000.0
    ));

    // Phase 5: force validation; each device verifies, installs, reboots and confirms.
    wait_devices(
        statuses,
        devices,
        Duration::from_secs(120) + scale * 2,
        "devices confirmed",
        |s| s.state == UpdateState::Confirmed && s.version == RELEASE,
    )
    .await?;
    step(start, &format!(
        "every device verified the manifest against the vendor key, installed to its inactive slot, rebooted and confirmed {RELEASE} ({:.0} ms after publish)",
        published.elapsed().as_secs_f64() * 1000.0
    ));
    println!("done: {devices}/{devices} devices on {MODEL} {RELEASE}");
    Ok(())
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self, Failure> {
        let dir = std::env::temp_dir().join(format!(
            "fwledger-demo-{}-{}",
            std::process::id(),
            fwledger::unix_now()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| Failure::io(&dir, e))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

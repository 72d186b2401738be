//! Staged rollout with real device agents (host port, A/B slot files) against a real gateway
//! (mosquitto over TLS), operated through the `fwledger gateway rollout` and `device` commands:
//! a release whose self-check fails is caught by the canary group and halts by itself — the other
//! devices are never offered it; abort is final; the next, good release goes group first and
//! then, automatically, to everyone.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{ok, run};
use fwledger::{Backends, ReleaseSpec, Vendor};
use fwledger_device::host::{self, DeviceConfig};
use fwledger_device::{Shutdown, SELF_CHECK_FAIL_MARKER};
use fwledger_gateway::rollout::RolloutState;
use fwledger_gateway::{Gateway, InitOptions, RunOptions, RunningGateway, Timing};
use fwledger_link::{Bundle, DeviceStatus, UpdateState};

const WAIT: Duration = Duration::from_secs(60);

type Statuses = Arc<Mutex<HashMap<String, Vec<DeviceStatus>>>>;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

fn history(statuses: &Statuses, id: &str) -> Vec<DeviceStatus> {
    statuses
        .lock()
        .unwrap()
        .get(id)
        .cloned()
        .unwrap_or_default()
}

async fn wait_for(statuses: &Statuses, id: &str, what: &str, f: impl Fn(&DeviceStatus) -> bool) {
    let deadline = Instant::now() + WAIT;
    while !history(statuses, id).last().is_some_and(&f) {
        assert!(
            Instant::now() < deadline,
            "{id}: timed out waiting for {what}: {:?}",
            history(statuses, id)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn publish(vendor: &mut Vendor, home: &std::path::Path, version: &str, bad: bool) {
    let path = home.join(format!("fw-{version}.bin"));
    let mut image = format!("lamp firmware {version}")
        .repeat(20_000)
        .into_bytes();
    if bad {
        image.extend_from_slice(SELF_CHECK_FAIL_MARKER);
    }
    std::fs::write(&path, image).unwrap();
    let mut spec = ReleaseSpec::new("lamp", &["rev-b"], version);
    spec.security_version = 1;
    vendor.publish(&path, &spec, None).await.unwrap();
}

fn rollout_json(home: &std::path::Path, version: &str) -> serde_json::Value {
    let out = ok(
        home,
        &["gateway", "rollout", "show", "--version", version, "--json"],
    );
    serde_json::from_str(&out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_group_catches_a_bad_release_and_the_next_one_rolls_out() {
    assert!(
        fwledger_gateway::broker::find_mosquitto(None).is_ok(),
        "these tests need mosquitto: apt-get install -y mosquitto"
    );
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let backends = Backends::open(home, "embedded", "embedded").unwrap();
    let mut vendor = Vendor::init(home, "acme", &backends).unwrap();
    let gateway = Gateway::init(
        home,
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

    // Six lamps; two join the canary group, one at `device add`, one later.
    let ids: Vec<String> = (0..6).map(|n| format!("lamp-{n}")).collect();
    for (n, id) in ids.iter().enumerate() {
        let bundle = home.join(format!("{id}.bundle"));
        let mut args = vec![
            "gateway",
            "device",
            "add",
            "--id",
            id,
            "--mac",
            "02:00:00:00:00:01",
            "--model",
            "lamp",
            "--hw",
            "rev-b",
            "--out",
        ];
        let bundle_text = bundle.display().to_string();
        args.push(&bundle_text);
        if n == 0 {
            args.extend(["--group", "canary"]);
        }
        ok(home, &args);
    }
    ok(
        home,
        &[
            "gateway", "device", "group", "--id", "lamp-1", "--group", "canary",
        ],
    );
    let refused = run(
        home,
        &[
            "gateway",
            "device",
            "group",
            "--id",
            "lamp-2",
            "--group",
            "no spaces",
        ],
    );
    assert!(!refused.status.success());
    ok(
        home,
        &[
            "gateway",
            "rollout",
            "set",
            "--default",
            "--stages",
            "group:canary,all",
            "--failure-threshold",
            "20",
        ],
    );
    let shown = ok(home, &["gateway", "rollout", "show"]);
    assert!(shown.contains("group:canary,100%"), "{shown}");

    // The gateway and the agents.
    let mut options = RunOptions::new(backends);
    let mut timing = Timing::default();
    timing.reconcile = Duration::from_millis(500);
    timing.channel_poll = Duration::from_millis(300);
    options.timing = timing;
    let running: RunningGateway = Gateway::open(home).unwrap().start(options).await.unwrap();
    let statuses: Statuses = Arc::default();
    let shutdown = Shutdown::new();
    let mut agents = Vec::new();
    for id in &ids {
        let bytes = std::fs::read(home.join(format!("{id}.bundle"))).unwrap();
        let bundle = Bundle::from_json(&bytes).unwrap();
        let mut config = DeviceConfig::new(bundle, home.join("dev").join(id));
        let seen = statuses.clone();
        config.observer = Some(Arc::new(move |id: &str, s: &DeviceStatus| {
            seen.lock()
                .unwrap()
                .entry(id.into())
                .or_default()
                .push(s.clone());
        }));
        agents.push(host::spawn(config, shutdown.clone()).unwrap());
    }
    for id in &ids {
        wait_for(&statuses, id, "online", |s| s.state == UpdateState::Idle).await;
    }

    // 1.1.0 fails its self-check: both canaries roll back and the rollout halts by itself.
    publish(&mut vendor, home, "1.1.0", true).await;
    for id in ["lamp-0", "lamp-1"] {
        wait_for(&statuses, id, "rolled back", |s| {
            s.state == UpdateState::RolledBack && s.version == "1.0.0"
        })
        .await;
    }
    eventually("halted", || {
        rollout_json(home, "1.1.0")["state"] == RolloutState::Halted.as_str()
    })
    .await;
    let shown = rollout_json(home, "1.1.0");
    let summary = shown["summary"].as_str().unwrap().to_string();
    assert!(
        summary.starts_with("halted: ") && summary.ends_with("(100 % > 20 %)")
            || summary == "halted: 1/2 failed (50 % > 20 %)",
        "{summary}"
    );
    let text = ok(home, &["gateway", "rollout", "show", "--version", "1.1.0"]);
    assert!(text.contains(&summary), "{text}");
    // The others were never offered it: they only ever reported idle on 1.0.0.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for id in &ids[2..] {
        let seen = history(&statuses, id);
        assert!(
            seen.iter()
                .all(|s| s.state == UpdateState::Idle && s.version == "1.0.0"),
            "{id}: {seen:?}"
        );
        assert!(running.registry().device_updates(id).unwrap().is_empty());
    }

    // Abort is final.
    ok(home, &["gateway", "rollout", "abort", "--version", "1.1.0"]);
    let again = run(
        home,
        &["gateway", "rollout", "resume", "--version", "1.1.0"],
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("final"));
    let unknown = run(home, &["gateway", "rollout", "show", "--version", "9.9.9"]);
    assert!(!unknown.status.success());

    // 1.2.0 is good: canaries first, then everyone, automatically.
    publish(&mut vendor, home, "1.2.0", false).await;
    for id in &ids {
        wait_for(&statuses, id, "confirmed 1.2.0", |s| {
            s.state == UpdateState::Confirmed && s.version == "1.2.0"
        })
        .await;
    }
    eventually("complete", || {
        rollout_json(home, "1.2.0")["state"] == RolloutState::Complete.as_str()
    })
    .await;
    // The canaries confirmed before anyone else was offered 1.2.0.
    let registry = running.registry().clone();
    let release = registry.releases_by_version(Some("lamp"), "1.2.0").unwrap()[0].id;
    let canaries_done = ["lamp-0", "lamp-1"]
        .iter()
        .map(|id| {
            registry
                .device_update(id, release)
                .unwrap()
                .unwrap()
                .updated_at
        })
        .max()
        .unwrap();
    for id in &ids[2..] {
        let update = registry.device_update(id, release).unwrap().unwrap();
        assert!(
            update.notified_at.unwrap() >= canaries_done,
            "{id}: {update:?}"
        );
    }

    shutdown.trigger();
    for agent in agents {
        let _ = tokio::task::spawn_blocking(move || agent.join()).await;
    }
    running.stop().await;
}

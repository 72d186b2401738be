//! The broker fails mid-rollout: mosquitto is SIGKILLed (the gateway's supervisor restarts it),
//! the network between the gateway and an external broker drops and comes back, and the external
//! broker restarts. Three device agents (`fwledger device run`) are updating meanwhile; every one
//! of them ends up confirmed on the new release without operator action, and while the broker is
//! unreachable `/metrics` says so.

mod common;
#[path = "../../gateway/tests/common/proxy.rs"]
mod proxy;

use common::*;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DEVICES: usize = 3;

/// Every process the test started, stopped on drop (also when the test fails): SIGTERM first,
/// so a gateway stops the mosquitto it started, then SIGKILL; and a mosquitto named in
/// `broker_pid` (the gateway's supervisor restarts it under a new pid) if it is still there.
#[derive(Default)]
struct Processes(Vec<Child>, Option<PathBuf>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for child in &mut self.0 {
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(pid) = self.1.as_deref().and_then(pid_of) {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains("mosquitto") {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

struct Rollout {
    dir: tempfile::TempDir,
    home: PathBuf,
    mqtt: u16,
    https: u16,
    procs: Processes,
}

fn wait_port(port: u16, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

impl Rollout {
    /// A vendor, a gateway and three registered devices (not running yet).
    fn new() -> Rollout {
        assert!(
            fwledger_gateway::broker::find_mosquitto(None).is_ok(),
            "this test needs mosquitto: apt-get install -y mosquitto"
        );
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        ok(&home, &["vendor", "init", "--name", "acme"]);
        let token = ok(&home, &["vendor", "token", "--gateway", "hub"]);
        let (mqtt, https, sntp) = (free_port(), free_port(), free_port());
        ok(
            &home,
            &[
                "gateway",
                "init",
                "--mqtt-port",
                &mqtt,
                "--https-port",
                &https,
                "--sntp-port",
                &sntp,
            ],
        );
        ok(&home, &["gateway", "subscribe", token.trim()]);
        for i in 0..DEVICES {
            ok(
                &home,
                &[
                    "gateway",
                    "device",
                    "add",
                    "--id",
                    &format!("lamp-{i}"),
                    "--mac",
                    &format!("02:00:00:00:01:{i:02x}"),
                    "--model",
                    "lamp",
                    "--hw",
                    "rev-b",
                    "--out",
                    dir.path().join(format!("lamp-{i}.json")).to_str().unwrap(),
                ],
            );
        }
        Rollout {
            home,
            mqtt: mqtt.parse().unwrap(),
            https: https.parse().unwrap(),
            dir,
            procs: Processes::default(),
        }
    }

    fn log(&self, name: &str) -> std::fs::File {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(name))
            .unwrap()
    }

    fn gateway(&mut self, args: &[&str]) {
        let child = fwledger(&self.home)
            .args(["gateway", "run", "--reconcile", "1s", "--max-backoff", "2s"])
            .args(args)
            .stdout(self.log("gateway.log"))
            .stderr(self.log("gateway.log"))
            .spawn()
            .unwrap();
        self.procs.0.push(child);
        assert!(
            wait_port(self.https, Duration::from_secs(20)),
            "gateway HTTPS"
        );
    }

    fn devices(&mut self) {
        for i in 0..DEVICES {
            let id = format!("lamp-{i}");
            let child = fwledger(&self.home)
                .args(["device", "run", "--bundle"])
                .arg(self.dir.path().join(format!("{id}.json")))
                .arg("--state")
                .arg(self.dir.path().join(format!("state-{id}")))
                .args(["--check-interval", "2s"])
                .stdout(Stdio::null())
                .stderr(self.log(&format!("{id}.log")))
                .spawn()
                .unwrap();
            self.procs.0.push(child);
        }
    }

    fn publish(&self, version: &str, size: usize) {
        let image: Vec<u8> = (0..size)
            .map(|i| ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8)
            .collect();
        let path = self.dir.path().join(format!("fw-{version}.bin"));
        std::fs::write(&path, image).unwrap();
        ok(
            &self.home,
            &[
                "vendor",
                "publish",
                path.to_str().unwrap(),
                "--model",
                "lamp",
                "--hw",
                "rev-b",
                "--version",
                version,
            ],
        );
    }

    fn status(&self) -> serde_json::Value {
        serde_json::from_str(&ok(&self.home, &["gateway", "status", "--json"])).unwrap()
    }

    /// Devices of `gateway status --json` that run `version`.
    fn running(&self, version: &str) -> usize {
        let status = self.status();
        status["devices"]
            .as_array()
            .map(|d| {
                d.iter()
                    .filter(|d| d["version"].as_str() == Some(version))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Waits (bounded) until some device is busy with the update: the fault lands mid-rollout.
    fn wait_rollout_started(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let status = self.status();
            let busy = status["updates"].as_array().is_some_and(|u| !u.is_empty());
            if busy {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the rollout never started: {status}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_all_running(&self, version: &str) {
        let deadline = Instant::now() + Duration::from_secs(150);
        while self.running(version) < DEVICES {
            if Instant::now() > deadline {
                let log = |name: &str| {
                    std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
                };
                panic!(
                    "devices never all ran {version}: {}\n--- gateway log ---\n{}\n\
                     --- lamp-0 log ---\n{}\n--- lamp-0 state ---\n{}\n--- mosquitto ---\n{}",
                    self.status(),
                    log("gateway.log"),
                    log("lamp-0.log"),
                    log("state-lamp-0/boot.json"),
                    log("mosquitto.log"),
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `GET /metrics` (open to loopback), as text.
    fn metrics(&self) -> String {
        let ca = self.home.join("gateway").join("pki").join("ca.pem");
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "5", "--cacert"])
            .arg(&ca)
            .arg(format!("https://127.0.0.1:{}/metrics", self.https))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_metric(&self, line: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.metrics();
            if text.lines().any(|l| l == line) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no {line:?} in /metrics:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The gateway's output (it prints every event it logs).
    fn events(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }
}

fn pid_of(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[test]
fn broker_killed_mid_rollout_is_restarted_and_every_device_updates() {
    let mut r = Rollout::new();
    r.procs.1 = Some(r.home.join("gateway").join("mosquitto").join("broker.pid"));
    r.gateway(&[]);
    r.devices();
    r.publish("1.1.0", 400_000);
    r.wait_rollout_started();
    // SIGKILL the gateway's own mosquitto: its supervisor must bring it back.
    let pid_file = r.home.join("gateway").join("mosquitto").join("broker.pid");
    let pid = pid_of(&pid_file).expect("mosquitto pid file");
    let killed = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
    assert!(killed.is_ok_and(|s| s.success()));
    r.wait_all_running("1.1.0");
    // The devices may have finished before the supervisor noticed: wait for it, bounded.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut events = r.events();
    while !events.contains("mosquitto exited; restarting it") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        events = r.events();
    }
    assert!(
        events.contains("mosquitto exited; restarting it"),
        "{events}"
    );
    let restarted = pid_of(&pid_file).expect("new pid file");
    assert_ne!(restarted, pid, "mosquitto was not restarted");
    r.wait_metric("fwledger_gateway_component_up{component=\"broker\"} 1");
}

#[test]
fn network_drop_and_broker_restart_mid_rollout_every_device_updates() {
    let mut r = Rollout::new();
    let mosquitto = fwledger_gateway::broker::find_mosquitto(None).unwrap();
    let conf = r.home.join("gateway").join("mosquitto.conf");
    let start_broker = |r: &mut Rollout| {
        let child = Command::new(&mosquitto)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(r.log("mosquitto.log"))
            .spawn()
            .unwrap();
        assert!(wait_port(r.mqtt, Duration::from_secs(10)), "mosquitto");
        r.procs.0.push(child);
        r.procs.0.len() - 1
    };
    let broker = start_broker(&mut r);
    // The gateway reaches the external broker through a link the test cuts; devices connect
    // directly.
    let link = proxy::Proxy::start(([127, 0, 0, 1], r.mqtt).into());
    r.gateway(&["--broker", &format!("mqtts://{}", link.addr())]);
    r.wait_metric("fwledger_gateway_component_up{component=\"broker\"} 1");
    r.devices();
    r.publish("1.1.0", 400_000);
    r.wait_rollout_started();

    // The network drops for a while: the gateway shows the broker failing, then reconnects.
    link.cut();
    r.wait_metric("fwledger_gateway_component_up{component=\"broker\"} 0");
    std::thread::sleep(Duration::from_secs(2));
    link.restore();
    r.wait_metric("fwledger_gateway_component_up{component=\"broker\"} 1");

    // Then the broker itself restarts (SIGKILL, started again by its operator).
    let mut old = r.procs.0.remove(broker);
    old.kill().unwrap();
    old.wait().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    start_broker(&mut r);
    r.wait_all_running("1.1.0");
    r.wait_metric("fwledger_gateway_component_up{component=\"broker\"} 1");
    let events = r.events();
    assert!(events.contains("MQTT connection lost"), "{events}");
}

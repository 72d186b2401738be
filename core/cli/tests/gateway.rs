//! `fwledger gateway …` as users run it. `gateway run` needs mosquitto installed.

mod common;
use common::*;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A vendor and a gateway subscribed to its channel, in one home.
fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    ok(&home, &["vendor", "init", "--name", "acme"]);
    let token = ok(&home, &["vendor", "token", "--gateway", "hub"]);
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, token).unwrap();
    let (mqtt, https, sntp) = (free_port(), free_port(), free_port());
    let out = ok(
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
    assert!(out.contains(&format!("mqtts://127.0.0.1:{mqtt}")));
    let out = ok(
        &home,
        &[
            "gateway",
            "subscribe",
            &format!("@{}", token_file.display()),
        ],
    );
    assert!(out.contains("subscribed to channel"));
    (dir, home)
}

#[test]
fn init_subscribe_and_add_a_device() {
    let (dir, home) = setup();
    assert!(!run(&home, &["gateway", "init"]).status.success());
    assert!(!run(&home, &["gateway", "subscribe", "fwl1garbage"])
        .status
        .success());
    let bundle = dir.path().join("lamp-01.json");
    let out = ok(
        &home,
        &[
            "gateway",
            "device",
            "add",
            "--id",
            "lamp-01",
            "--mac",
            "24:0A:C4:12:34:56",
            "--model",
            "lamp",
            "--hw",
            "rev-b",
            "--out",
            bundle.to_str().unwrap(),
        ],
    );
    assert!(out.contains(bundle.to_str().unwrap()));
    assert!(out.contains('█'), "no QR code");
    assert!(out.contains("\"device_id\":\"lamp-01\""));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&bundle).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let parsed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    assert_eq!(parsed["device_id"], "lamp-01");
    assert_eq!(parsed["mac"], "24:0a:c4:12:34:56");
    let vendor_key = ok(&home, &["vendor", "key"]);
    assert_eq!(parsed["vendors"][0]["key"], vendor_key.trim());

    let again = run(
        &home,
        &[
            "gateway",
            "device",
            "add",
            "--id",
            "lamp-01",
            "--mac",
            "24:0a:c4:12:34:56",
            "--model",
            "lamp",
            "--hw",
            "rev-b",
            "--out",
            "/dev/null",
        ],
    );
    assert!(!again.status.success(), "a duplicate device was added");
    let bad = run(
        &home,
        &[
            "gateway",
            "device",
            "add",
            "--id",
            "a/b",
            "--mac",
            "24:0a:c4:12:34:56",
            "--model",
            "lamp",
            "--hw",
            "rev-b",
            "--out",
            "/dev/null",
        ],
    );
    assert!(
        !bad.status.success(),
        "a device id with a slash was accepted"
    );

    let list: serde_json::Value =
        serde_json::from_str(&ok(&home, &["gateway", "device", "list", "--json"])).unwrap();
    assert_eq!(list.as_array().map(|a| a.len()), Some(1));
    let status: serde_json::Value =
        serde_json::from_str(&ok(&home, &["gateway", "status", "--json"])).unwrap();
    assert_eq!(status["channels"][0]["vendor"], "acme");
}

#[test]
fn run_fetches_a_release_and_stops_its_broker_on_sigterm() {
    if fwledger_gateway::broker::find_mosquitto(None).is_err() {
        panic!("this test needs mosquitto: apt-get install -y mosquitto");
    }
    let (dir, home) = setup();
    ok(
        &home,
        &[
            "gateway",
            "device",
            "add",
            "--id",
            "lamp-01",
            "--mac",
            "24:0a:c4:12:34:56",
            "--model",
            "lamp",
            "--hw",
            "rev-b",
            "--out",
            dir.path().join("b.json").to_str().unwrap(),
        ],
    );
    let mut gateway = fwledger(&home)
        .args(["gateway", "run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let image = dir.path().join("fw.bin");
    std::fs::write(&image, vec![0xa5; 100_000]).unwrap();
    ok(
        &home,
        &[
            "vendor",
            "publish",
            image.to_str().unwrap(),
            "--model",
            "lamp",
            "--hw",
            "rev-b",
            "--version",
            "1.1.0",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status: serde_json::Value =
            serde_json::from_str(&ok(&home, &["gateway", "status", "--json"])).unwrap();
        if status["devices"][0]["notice_release"].is_number() {
            assert_eq!(status["releases"][0]["state"], "verified");
            break;
        }
        assert!(Instant::now() < deadline, "release not offered: {status}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let pid_file = home.join("gateway/mosquitto/broker.pid");
    let broker_pid = std::fs::read_to_string(&pid_file).unwrap();
    let killed = Command::new("kill")
        .args(["-TERM", &gateway.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while gateway.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "gateway ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!pid_file.exists());
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", broker_pid.trim())).unwrap_or_default();
    assert!(
        cmdline.is_empty(),
        "mosquitto still runs after the gateway stopped"
    );
}

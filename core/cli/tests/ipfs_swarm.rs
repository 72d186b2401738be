//! The private IPFS swarm end to end, as users run it: `fwledger ipfs swarm-key`, a Kubo node
//! set up with the commands `fwledger ipfs kubo-config` prints, a vendor publishing to its own
//! Kubo node A, and a gateway whose Kubo node B shares only the swarm key (and a peering) with
//! A. The gateway (real mosquitto, TLS) fetches the release through B and a host device agent
//! installs and confirms it. A Kubo node with another swarm key can neither connect to A nor
//! fetch the release: the gateway reports the failed attempts and offers nothing. With IPFS
//! Cluster (`ipfs-cluster-service`, `$FWLEDGER_IPFS_CLUSTER`), a release published with
//! `?cluster=…&replication=2` is pinned on both Kubo nodes before it is announced.
//!
//! Kubo: `$FWLEDGER_KUBO` or `ipfs` on PATH (`scripts/install-kubo.sh` builds one); skipped
//! without it unless `FWLEDGER_REQUIRE_KUBO=1`. Everything listens on 127.0.0.1 only.

#[path = "../../store/tests/common/cluster.rs"]
mod cluster;
mod common;
#[path = "../../store/tests/common/kubo.rs"]
#[allow(dead_code)]
mod kubo;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use kubo::KuboDaemon;

const WAIT: Duration = Duration::from_secs(90);

/// Kubo to test against: `$FWLEDGER_KUBO`, else `ipfs` on PATH.
fn kubo_or_skip(test: &str) -> Option<PathBuf> {
    let found = match std::env::var_os("FWLEDGER_KUBO") {
        Some(p) => Some(PathBuf::from(p)).filter(|p| p.is_file()),
        None => std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("ipfs"))
                .find(|p| p.is_file())
        }),
    };
    if found.is_none() {
        assert!(
            std::env::var("FWLEDGER_REQUIRE_KUBO").as_deref() != Ok("1"),
            "{test}: FWLEDGER_REQUIRE_KUBO=1 but no Kubo (set FWLEDGER_KUBO or put ipfs on PATH)"
        );
        eprintln!("{test}: skipped, Kubo not found (FWLEDGER_KUBO / ipfs on PATH)");
    }
    found
}

/// A child process stopped on drop: SIGTERM first (the gateway then stops its broker), then
/// SIGKILL if it has not exited within 15 s.
struct Running {
    child: Child,
    what: &'static str,
}

impl Running {
    fn new(what: &'static str, child: Child) -> Self {
        Running { child, what }
    }

    fn assert_alive(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("{} exited early: {status}", self.what);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Kubo daemon whose repository was set up by running the script `fwledger ipfs
/// kubo-config` printed.
struct ScriptedKubo {
    bin: PathBuf,
    repo: PathBuf,
    _daemon: Running,
    api: String,
}

impl ScriptedKubo {
    fn start(bin: &Path, dir: &Path, script: &str) -> ScriptedKubo {
        // the script calls `ipfs`: put this Kubo first on PATH
        let tools = dir.join("bin");
        std::fs::create_dir_all(&tools).unwrap();
        std::os::unix::fs::symlink(bin, tools.join("ipfs")).unwrap();
        let path = format!(
            "{}:{}",
            tools.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let script_file = dir.join("kubo-config.sh");
        std::fs::write(&script_file, script).unwrap();
        let out = Command::new("sh")
            .arg(&script_file)
            .env("PATH", &path)
            .env_remove("IPFS_PATH")
            .output()
            .unwrap();
        assert!(out.status.success(), "kubo-config script failed: {out:?}");
        let repo = dir.join("repo");
        let key_mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(repo.join("swarm.key"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(key_mode & 0o777, 0o600, "swarm.key mode");
        let log = File::create(dir.join("daemon.log")).unwrap();
        let child = Command::new(bin)
            .args(["daemon", "--migrate=false"])
            .env("IPFS_PATH", &repo)
            .env("IPFS_TELEMETRY", "off")
            .env("LIBP2P_FORCE_PNET", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut daemon = Running::new("scripted ipfs daemon", child);
        let deadline = Instant::now() + Duration::from_secs(60);
        let api = loop {
            daemon.assert_alive();
            let addr = std::fs::read_to_string(repo.join("api"))
                .ok()
                .and_then(|m| {
                    let p: Vec<String> = m.trim().split('/').map(str::to_owned).collect();
                    (p.len() == 5 && p[1] == "ip4" && p[3] == "tcp")
                        .then(|| format!("{}:{}", p[2], p[4]))
                });
            if let Some(addr) = addr.filter(|a| std::net::TcpStream::connect(a).is_ok()) {
                break format!("http://{addr}");
            }
            assert!(
                Instant::now() < deadline,
                "scripted ipfs daemon: no API:\n{}",
                std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        ScriptedKubo {
            bin: bin.to_owned(),
            repo,
            _daemon: daemon,
            api,
        }
    }

    fn ipfs(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .args(args)
            .env("IPFS_PATH", &self.repo)
            .env("IPFS_TELEMETRY", "off")
            .env("LIBP2P_FORCE_PNET", "1")
            .output()
            .unwrap()
    }

    fn has_block(&self, cid: &str) -> bool {
        self.ipfs(&["block", "stat", "--offline", cid])
            .status
            .success()
    }

    fn peers(&self) -> String {
        String::from_utf8_lossy(&self.ipfs(&["swarm", "peers"]).stdout).into_owned()
    }
}

fn status(home: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(home, &["gateway", "status", "--json"])).unwrap()
}

/// `gateway init` on free loopback ports, `gateway subscribe`, one registered lamp.
fn gateway_home(dir: &Path, name: &str, token_file: &Path) -> (PathBuf, PathBuf) {
    let home = dir.join(name);
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
    ok(
        &home,
        &[
            "gateway",
            "subscribe",
            &format!("@{}", token_file.display()),
        ],
    );
    let bundle = dir.join(format!("{name}-lamp.bundle"));
    ok(
        &home,
        &[
            "gateway",
            "device",
            "add",
            "--id",
            "lamp-01",
            "--mac",
            "02:00:00:00:00:01",
            "--model",
            "lamp",
            "--hw",
            "rev-b",
            "--out",
            bundle.to_str().unwrap(),
        ],
    );
    (home, bundle)
}

fn spawn_gateway(home: &Path, ledger: &str, store: &str) -> Running {
    let log = File::create(home.join("gateway-run.log")).unwrap();
    let child = fwledger(home)
        .args(["--ledger", ledger, "--store", store, "gateway", "run"])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    Running::new("fwledger gateway run", child)
}

#[test]
fn swarm_key_is_private_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let printed = ok(&home, &["ipfs", "swarm-key"]);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 3, "{printed}");
    assert_eq!(lines[0], "/key/swarm/psk/1.0.0/");
    assert_eq!(lines[1], "/base16/");
    assert_eq!(lines[2].len(), 64);
    assert!(lines[2].bytes().all(|b| b.is_ascii_hexdigit()));
    assert_ne!(printed, ok(&home, &["ipfs", "swarm-key"]), "same key twice");

    let key = dir.path().join("swarm.key");
    ok(
        &home,
        &["ipfs", "swarm-key", "--out", key.to_str().unwrap()],
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let first = std::fs::read_to_string(&key).unwrap();
    let again = run(
        &home,
        &["ipfs", "swarm-key", "--out", key.to_str().unwrap()],
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(
        std::fs::read_to_string(&key).unwrap(),
        first,
        "key overwritten"
    );

    // kubo-config checks the key and every address before printing anything
    let bad_key = dir.path().join("bad.key");
    std::fs::write(&bad_key, "/key/swarm/psk/1.0.0/\n/base16/\nabcd\n").unwrap();
    let out = run(
        &home,
        &[
            "ipfs",
            "kubo-config",
            "--swarm-key",
            bad_key.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a swarm key"));
    for peer in [
        "/ip4/127.0.0.1/tcp/4001",
        "/ip4/127.0.0.1/udp/4001/quic-v1/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf",
        "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf'$(id)",
    ] {
        let out = run(
            &home,
            &[
                "ipfs",
                "kubo-config",
                "--swarm-key",
                key.to_str().unwrap(),
                "--peer",
                peer,
            ],
        );
        assert!(!out.status.success(), "accepted --peer {peer}");
        assert!(out.stdout.is_empty());
    }
    let script = ok(
        &home,
        &["ipfs", "kubo-config", "--swarm-key", key.to_str().unwrap()],
    );
    assert!(script.contains("swarm.key"));
    assert!(script.contains("LIBP2P_FORCE_PNET=1"));
    assert!(script.contains("ipfs config --json Bootstrap '[]'"));
    assert!(!script.contains(lines[2]), "the key itself is printed");
}

#[test]
fn release_reaches_a_device_through_a_private_swarm_only() {
    let Some(bin) = kubo_or_skip("release_reaches_a_device_through_a_private_swarm_only") else {
        return;
    };
    assert!(
        fwledger_gateway::broker::find_mosquitto(None).is_ok(),
        "this test needs mosquitto: apt-get install -y mosquitto"
    );
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let tool_home = dir.path().join("tool");
    let key_file = dir.path().join("swarm.key");
    ok(
        &tool_home,
        &["ipfs", "swarm-key", "--out", key_file.to_str().unwrap()],
    );
    let key = std::fs::read_to_string(&key_file).unwrap();

    // A: the vendor's node. B: the gateway's node, set up by the kubo-config script and peered
    // with A. C: a node of another private swarm.
    let node_a = KuboDaemon::start(&bin, &key);
    let b_dir = dir.path().join("kubo-b");
    let script = ok(
        &tool_home,
        &[
            "ipfs",
            "kubo-config",
            "--swarm-key",
            key_file.to_str().unwrap(),
            "--peer",
            &node_a.swarm_addr(),
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--api",
            "/ip4/127.0.0.1/tcp/0",
            "--gateway",
            "/ip4/127.0.0.1/tcp/0",
            "--routing",
            "none",
            "--ipfs-path",
            b_dir.join("repo").to_str().unwrap(),
        ],
    );
    let node_b = ScriptedKubo::start(&bin, &b_dir, &script);
    let node_c = KuboDaemon::start(&bin, &kubo::swarm_key());
    let a_id = node_a.peer_id();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !node_b.peers().contains(&a_id) {
        assert!(Instant::now() < deadline, "B never peered with A");
        std::thread::sleep(Duration::from_millis(100));
    }
    let refused = node_c.connect(&node_a);
    assert!(refused.is_err(), "a node with another swarm key connected");
    eprintln!("C → A refused: {}", refused.unwrap_err());

    // the vendor, on its own ledger, publishing to A
    let vendor = dir.path().join("vendor");
    let store_a = node_a.store_url();
    let ledger = format!("sqlite:{}", vendor.join("ledger.sqlite").display());
    let v = |args: &[&str]| {
        let mut all = vec!["--store", store_a.as_str(), "--ledger", ledger.as_str()];
        all.extend_from_slice(args);
        ok(&vendor, &all)
    };
    v(&["vendor", "init", "--name", "acme"]);
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, v(&["vendor", "token", "--gateway", "hub"])).unwrap();

    // the gateway follows the vendor's ledger file and reads content through B only
    let (gw_home, bundle) = gateway_home(dir.path(), "gateway", &token_file);
    let store_b = format!("kubo+{}", node_b.api);
    let mut gateway = spawn_gateway(&gw_home, &ledger, &store_b);
    let device_log = File::create(dir.path().join("device.log")).unwrap();
    let device = fwledger(&tool_home)
        .args([
            "device",
            "run",
            "--bundle",
            bundle.to_str().unwrap(),
            "--json",
        ])
        .arg("--state")
        .arg(dir.path().join("lamp-state"))
        .args(["--check-interval", "2s"])
        .stdout(device_log.try_clone().unwrap())
        .stderr(device_log)
        .spawn()
        .unwrap();
    let mut device = Running::new("fwledger device run", device);

    let image = dir.path().join("lamp-1.1.0.bin");
    let bytes: Vec<u8> = (0..3 * 1024 * 1024 + 5)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&image, &bytes).unwrap();
    let published: serde_json::Value = serde_json::from_str(&v(&[
        "vendor",
        "publish",
        image.to_str().unwrap(),
        "--model",
        "lamp",
        "--hw",
        "rev-b",
        "--version",
        "1.1.0",
        "--json",
    ]))
    .unwrap();
    let cid = published["cid"].as_str().unwrap().to_owned();
    let sha256 = published["sha256"].as_str().unwrap().to_owned();
    assert_eq!(
        cid,
        ok(&tool_home, &["cid", image.to_str().unwrap()]).trim()
    );
    eprintln!("published {cid} to A at {:?}", started.elapsed());

    let deadline = Instant::now() + WAIT;
    loop {
        gateway.assert_alive();
        device.assert_alive();
        let status = status(&gw_home);
        let lamp = &status["devices"][0];
        if lamp["version"] == "1.1.0" {
            assert_eq!(lamp["sha256"], sha256.as_str(), "{status}");
            assert_eq!(status["releases"][0]["state"], "verified", "{status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "device not updated through B: {status}\ngateway log:\n{}\ndevice log:\n{}",
            std::fs::read_to_string(gw_home.join("gateway-run.log")).unwrap_or_default(),
            std::fs::read_to_string(dir.path().join("device.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let device_said = std::fs::read_to_string(dir.path().join("device.log")).unwrap();
    assert!(
        device_said
            .lines()
            .any(|l| l.contains("\"confirmed\"") && l.contains("1.1.0")),
        "{device_said}"
    );
    assert!(
        node_b.has_block(&cid),
        "B served the release without holding it"
    );
    eprintln!("device confirmed 1.1.0 via B at {:?}", started.elapsed());
    drop(device);
    drop(gateway);

    // another swarm: a gateway reading through C (channel moved by export / import) never
    // gets the content; it says so and offers nothing
    let export = dir.path().join("channel.export");
    v(&["vendor", "export", export.to_str().unwrap()]);
    let (other_home, _) = gateway_home(dir.path(), "other", &token_file);
    ok(
        &other_home,
        &["channel", "import", export.to_str().unwrap()],
    );
    let store_c = format!("{}?timeout=2s", node_c.store_url());
    let mut other = spawn_gateway(&other_home, "embedded", &store_c);
    let deadline = Instant::now() + Duration::from_secs(60);
    let reason = loop {
        other.assert_alive();
        let status = status(&other_home);
        let release = &status["releases"][0];
        if let Some(reason) = release["reason"].as_str() {
            assert_eq!(release["state"], "fetching", "{status}");
            break reason.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no failed attempt reported: {status}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(
        reason.contains("attempt")
            && reason.contains("unavailable")
            && reason.contains("timed out"),
        "{reason}"
    );
    assert!(status(&other_home)["devices"][0]["notice_release"].is_null());
    assert!(!node_c.peers().contains(&a_id));
    drop(other);
    let fetch = fwledger(&other_home)
        .args(["--store", &store_c, "fetch", "--manifest"])
        .arg(published["manifest_path"].as_str().unwrap())
        .args(["--vendor-key", v(&["vendor", "key"]).trim(), "--out"])
        .arg(dir.path().join("stolen.bin"))
        .output()
        .unwrap();
    assert!(!fetch.status.success());
    let said = String::from_utf8_lossy(&fetch.stderr);
    assert!(said.contains("unavailable"), "{said}");
    assert!(!dir.path().join("stolen.bin").exists());
    eprintln!(
        "C refused, gateway said {reason:?}; total {:?}",
        started.elapsed()
    );
}

#[test]
fn publish_through_a_cluster_pins_on_every_node() {
    let test = "publish_through_a_cluster_pins_on_every_node";
    let (Some(bin), Some(cluster_bin)) = (kubo_or_skip(test), cluster::cluster_or_skip(test))
    else {
        return;
    };
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let key = kubo::swarm_key();
    let nodes = [KuboDaemon::start(&bin, &key), KuboDaemon::start(&bin, &key)];
    nodes[1].connect(&nodes[0]).unwrap();
    let secret = kubo::swarm_key().lines().nth(2).unwrap().to_owned();
    let first = cluster::ClusterPeer::start(&cluster_bin, &secret, nodes[0].api_url(), None);
    let second = cluster::ClusterPeer::start(
        &cluster_bin,
        &secret,
        nodes[1].api_url(),
        Some(&first.listen),
    );
    let mut peers = [first, second];
    for peer in &mut peers {
        peer.wait_for_peers(2);
    }

    let vendor = dir.path().join("vendor");
    let store = format!(
        "{}?cluster={}&replication=2",
        nodes[0].store_url(),
        peers[0].rest
    );
    let v = |args: &[&str]| {
        let mut all = vec!["--store", store.as_str()];
        all.extend_from_slice(args);
        ok(&vendor, &all)
    };
    v(&["vendor", "init", "--name", "acme"]);
    let image = dir.path().join("lamp-2.0.0.bin");
    std::fs::write(&image, b"replicated lamp firmware ".repeat(100_000)).unwrap();
    let published: serde_json::Value = serde_json::from_str(&v(&[
        "vendor",
        "publish",
        image.to_str().unwrap(),
        "--model",
        "lamp",
        "--hw",
        "rev-b",
        "--version",
        "2.0.0",
        "--json",
    ]))
    .unwrap();
    let cid = published["cid"].as_str().unwrap();
    assert_eq!(cid, ok(&vendor, &["cid", image.to_str().unwrap()]).trim());
    // announced only once both nodes pin it
    for (n, node) in nodes.iter().enumerate() {
        let pinned = node
            .command()
            .args(["pin", "ls", "--type=recursive", cid])
            .output()
            .unwrap();
        assert!(
            pinned.status.success(),
            "Kubo node {n} does not pin {cid}: {pinned:?}"
        );
    }
    // the second node serves it on its own (offline: from its blockstore only)
    let out = dir.path().join("fetched.bin");
    let key_hex = v(&["vendor", "key"]);
    ok(
        &vendor,
        &[
            "--store",
            &format!("{}?timeout=5s", nodes[1].store_url()),
            "fetch",
            "--manifest",
            published["manifest_path"].as_str().unwrap(),
            "--vendor-key",
            key_hex.trim(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(std::fs::read(&out).unwrap() == std::fs::read(&image).unwrap());
    eprintln!("{test}: {:?}", started.elapsed());
}

//! IPFS Cluster peers for tests: `ipfs-cluster-service` on 127.0.0.1 only (no mDNS, no relay,
//! no IPFS proxy or pinning-service API), CRDT consensus, killed on drop. Shared by the store's
//! and the CLI's tests (`#[path]`).
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `ipfs-cluster-service`: `$FWLEDGER_IPFS_CLUSTER`, else on PATH. `None` (test skipped) when
/// absent, unless `FWLEDGER_REQUIRE_CLUSTER=1`, which turns absence into a failure.
pub fn cluster_or_skip(test: &str) -> Option<PathBuf> {
    let found = match std::env::var_os("FWLEDGER_IPFS_CLUSTER") {
        Some(p) => Some(PathBuf::from(p)).filter(|p| p.is_file()),
        None => std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("ipfs-cluster-service"))
                .find(|p| p.is_file())
        }),
    };
    if found.is_none() {
        assert!(
            std::env::var("FWLEDGER_REQUIRE_CLUSTER").as_deref() != Ok("1"),
            "{test}: FWLEDGER_REQUIRE_CLUSTER=1 but no ipfs-cluster-service \
             (set FWLEDGER_IPFS_CLUSTER; scripts/install-ipfs-cluster.sh builds it)"
        );
        eprintln!(
            "{test}: skipped, IPFS Cluster not found (FWLEDGER_IPFS_CLUSTER / \
             ipfs-cluster-service on PATH; scripts/install-ipfs-cluster.sh builds it)"
        );
    }
    found
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

/// The TCP port of a Kubo RPC URL `http://127.0.0.1:PORT`.
fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

/// One `ipfs-cluster-service daemon` on 127.0.0.1, killed on drop.
pub struct ClusterPeer {
    dir: tempfile::TempDir,
    child: Child,
    /// The cluster peer id.
    pub id: String,
    /// Its cluster swarm address, `/ip4/127.0.0.1/tcp/PORT/p2p/ID`.
    pub listen: String,
    /// Its REST API, `http://127.0.0.1:PORT`.
    pub rest: String,
}

impl ClusterPeer {
    /// Initialises a peer (CRDT, pebble) in the cluster of `secret`, driving the Kubo node
    /// whose RPC API is `kubo_api`, and starts it, joining `bootstrap` if given.
    pub fn start(bin: &Path, secret: &str, kubo_api: &str, bootstrap: Option<&str>) -> ClusterPeer {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(bin)
            .args(["--config"])
            .arg(dir.path())
            .args(["init", "--consensus", "crdt", "--datastore", "pebble"])
            .env("CLUSTER_SECRET", secret)
            .output()
            .unwrap();
        assert!(out.status.success(), "ipfs-cluster-service init: {out:?}");
        let config_path = dir.path().join("service.json");
        let mut config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
        let listen_port = free_port();
        let rest_port = free_port();
        let loopback = |port: u16| format!("/ip4/127.0.0.1/tcp/{port}");
        let set = |config: &mut serde_json::Value, pointer: &str, value: serde_json::Value| {
            *config
                .pointer_mut(pointer)
                .unwrap_or_else(|| panic!("service.json has no {pointer}")) = value;
        };
        // loopback only, no mDNS, no relay; metrics often enough that a new peer is
        // allocatable within seconds
        set(
            &mut config,
            "/cluster/listen_multiaddress",
            serde_json::json!([loopback(listen_port)]),
        );
        set(&mut config, "/cluster/mdns_interval", "0s".into());
        set(&mut config, "/cluster/enable_relay_hop", false.into());
        set(
            &mut config,
            "/api/restapi/http_listen_multiaddress",
            loopback(rest_port).into(),
        );
        // neither the IPFS proxy nor the pinning-service API: a section left out is not started
        let api = config["api"].as_object_mut().unwrap();
        api.remove("ipfsproxy");
        api.remove("pinsvcapi");
        set(
            &mut config,
            "/ipfs_connector/ipfshttp/node_multiaddress",
            loopback(port_of(kubo_api)).into(),
        );
        for informer in ["disk", "pinqueue", "tags"] {
            set(
                &mut config,
                &format!("/informer/{informer}/metric_ttl"),
                "2s".into(),
            );
        }
        set(
            &mut config,
            "/monitor/pubsubmon/check_interval",
            "2s".into(),
        );
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        let identity: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("identity.json")).unwrap())
                .unwrap();
        let id = identity["id"].as_str().unwrap().to_owned();

        let log = File::create(dir.path().join("daemon.log")).unwrap();
        let mut command = Command::new(bin);
        command.arg("--config").arg(dir.path()).arg("daemon");
        if let Some(peer) = bootstrap {
            command.args(["--bootstrap", peer]);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        ClusterPeer {
            listen: format!("{}/p2p/{id}", loopback(listen_port)),
            rest: format!("http://127.0.0.1:{rest_port}"),
            dir,
            child,
            id,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// `GET` on the REST API (HTTP/1.0, std only), as JSON; `None` on any failure.
    fn get(&self, path: &str) -> Option<serde_json::Value> {
        use std::io::{Read, Write};
        let addr = self.rest.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).ok()?;
        let text = String::from_utf8(reply).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        (head.split(' ').nth(1) == Some("200"))
            .then(|| serde_json::from_str(body).ok())
            .flatten()
    }

    /// Waits until this peer can allocate pins to `peers` peers (their freespace metrics
    /// arrived).
    pub fn wait_for_peers(&mut self, peers: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("ipfs-cluster-service exited ({status}):\n{}", self.log());
            }
            let metrics = self.get("/monitor/metrics/freespace");
            if metrics
                .as_ref()
                .and_then(|m| m.as_array())
                .is_some_and(|m| m.len() >= peers)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "cluster: {peers} peers not allocatable after 60 s: {metrics:?}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for ClusterPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! Real Kubo daemons for tests: loopback only, a private swarm, killed on drop.
//!
//! Each daemon gets a fresh `IPFS_PATH` initialised with `ipfs init --profile=test` (no
//! bootstrap peers, no mDNS, loopback addresses), then:
//! * `Addresses.API`, `Addresses.Gateway` and `Addresses.Swarm` on `127.0.0.1` port 0 (the
//!   kernel picks free ports; the API port is read back from `$IPFS_PATH/api`, the swarm
//!   address from `ipfs id`);
//! * `Bootstrap` empty, `Routing.Type` `none`, WebSocket transport off (it cannot share the TCP
//!   port in a private network), telemetry off;
//! * a `swarm.key` in `IPFS_PATH` and `LIBP2P_FORCE_PNET=1`, so the node refuses to run or talk
//!   outside the private network that key defines.

use std::fs::File;
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A fresh private-network key in Kubo's `swarm.key` format.
pub fn swarm_key() -> String {
    let mut key = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .unwrap();
    format!("/key/swarm/psk/1.0.0/\n/base16/\n{}\n", hex::encode(key))
}

/// A running `ipfs daemon` on 127.0.0.1; killed (and its repo deleted) on drop.
pub struct KuboDaemon {
    bin: PathBuf,
    dir: tempfile::TempDir,
    child: Child,
    api: String,
}

impl KuboDaemon {
    /// Starts a daemon in the private network of `swarm_key` and waits for its RPC API.
    pub fn start(bin: &Path, swarm_key: &str) -> KuboDaemon {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let out = Command::new(bin)
                .args(args)
                .env("IPFS_PATH", dir.path())
                .env("IPFS_TELEMETRY", "off")
                .output()
                .unwrap();
            assert!(out.status.success(), "ipfs {args:?}: {out:?}");
        };
        run(&["init", "-e", "--profile=test"]);
        run(&["config", "Addresses.API", "/ip4/127.0.0.1/tcp/0"]);
        run(&["config", "Addresses.Gateway", "/ip4/127.0.0.1/tcp/0"]);
        run(&[
            "config",
            "--json",
            "Addresses.Swarm",
            r#"["/ip4/127.0.0.1/tcp/0"]"#,
        ]);
        run(&["config", "--json", "Bootstrap", "[]"]);
        run(&["config", "Routing.Type", "none"]);
        run(&[
            "config",
            "--json",
            "Swarm.Transports.Network.Websocket",
            "false",
        ]);
        std::fs::write(dir.path().join("swarm.key"), swarm_key).unwrap();

        let log = File::create(dir.path().join("daemon.log")).unwrap();
        let child = Command::new(bin)
            .args(["daemon", "--migrate=false"])
            .env("IPFS_PATH", dir.path())
            .env("IPFS_TELEMETRY", "off")
            .env("LIBP2P_FORCE_PNET", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut daemon = KuboDaemon {
            bin: bin.to_owned(),
            dir,
            child,
            api: String::new(),
        };
        daemon.api = daemon.wait_for_api(Duration::from_secs(60));
        daemon
    }

    fn wait_for_api(&mut self, limit: Duration) -> String {
        let start = Instant::now();
        let api_file = self.dir.path().join("api");
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("ipfs daemon exited ({status}):\n{}", self.log());
            }
            // the daemon writes `api` (a multiaddr) once the RPC listener is bound
            if let Some(addr) = std::fs::read_to_string(&api_file)
                .ok()
                .and_then(|m| multiaddr_to_host_port(m.trim()))
            {
                if TcpStream::connect(&addr).is_ok() {
                    return format!("http://{addr}");
                }
            }
            assert!(
                start.elapsed() < limit,
                "ipfs daemon: no API after {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The RPC API base URL, `http://127.0.0.1:PORT`.
    pub fn api_url(&self) -> &str {
        &self.api
    }

    /// The HTTP gateway base URL (`Addresses.Gateway`), `http://127.0.0.1:PORT`, as the daemon
    /// wrote it to `$IPFS_PATH/gateway` once the gateway listener was bound.
    pub fn gateway_url(&self) -> String {
        let start = Instant::now();
        loop {
            if let Ok(url) = std::fs::read_to_string(self.dir.path().join("gateway")) {
                let url = url.trim().to_owned();
                let addr = url.trim_start_matches("http://");
                if url.starts_with("http://127.0.0.1:") && TcpStream::connect(addr).is_ok() {
                    return url;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "ipfs daemon: no gateway after 30s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The store URL for `fwledger_store::open`, `kubo+http://127.0.0.1:PORT`.
    pub fn store_url(&self) -> String {
        format!("kubo+{}", self.api)
    }

    /// `ipfs` talking to this daemon.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.env("IPFS_PATH", self.dir.path())
            .env("IPFS_TELEMETRY", "off")
            .env("LIBP2P_FORCE_PNET", "1");
        c
    }

    fn output(&self, args: &[&str]) -> Result<String, String> {
        let out = self.command().args(args).output().unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    /// The node's peer id.
    pub fn peer_id(&self) -> String {
        self.output(&["id", "-f", "<id>"]).unwrap()
    }

    /// The node's loopback swarm address, `/ip4/127.0.0.1/tcp/PORT/p2p/ID`.
    pub fn swarm_addr(&self) -> String {
        let addrs = self.output(&["id", "-f", "<addrs>"]).unwrap();
        let addr = addrs
            .lines()
            .find(|a| a.starts_with("/ip4/127.0.0.1/tcp/"))
            .unwrap_or_else(|| panic!("no loopback TCP swarm address in {addrs:?}"));
        if addr.contains("/p2p/") {
            addr.to_owned()
        } else {
            format!("{addr}/p2p/{}", self.peer_id())
        }
    }

    /// `ipfs swarm connect` to `other`; `Err` with Kubo's message when it fails.
    pub fn connect(&self, other: &KuboDaemon) -> Result<(), String> {
        self.output(&["swarm", "connect", "--timeout=10s", &other.swarm_addr()])
            .map(drop)
    }

    /// Peer ids this node is connected to.
    pub fn peers(&self) -> Vec<String> {
        self.output(&["swarm", "peers"])
            .unwrap_or_default()
            .lines()
            .filter_map(|a| a.rsplit("/p2p/").next().map(str::to_owned))
            .collect()
    }

    /// The daemon's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }
}

impl Drop for KuboDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `HOST:PORT` of `/ip4/HOST/tcp/PORT`.
fn multiaddr_to_host_port(multiaddr: &str) -> Option<String> {
    let mut parts = multiaddr.split('/').skip(1);
    match (parts.next()?, parts.next()?, parts.next()?, parts.next()?) {
        ("ip4", host, "tcp", port) => Some(format!("{host}:{port}")),
        _ => None,
    }
}

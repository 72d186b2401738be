//! Faults of the parts the gateway depends on, injected into a running gateway (real mosquitto,
//! real SQLite, real Kubo, a real tmpfs): the content store unreachable, the ledger unreachable,
//! the gateway's disk full. Each time the gateway retries with backoff, shows the failing component
//! with its error in `/api/health` and `/metrics`, and recovers by itself once the fault is gone;
//! nothing incomplete is ever stored under a final name.

mod common;
#[path = "common/proxy.rs"]
mod proxy;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{free_port, https_get, require_mosquitto, Response, WAIT};
use fwledger::{Backends, Vendor};
use fwledger_gateway::registry::{NewDevice, ReleaseState};
use fwledger_gateway::{Gateway, GatewayPaths, InitOptions, RunOptions, RunningGateway, Timing};
use serde_json::Value;

fn timing() -> Timing {
    let mut timing = common::fast_timing();
    timing.min_backoff = Duration::from_millis(200);
    timing.max_backoff = Duration::from_secs(1);
    timing
}

/// A vendor in `vendor_home` and a gateway in `gateway_home`, on the given backends.
struct Setup {
    vendor: Vendor,
    gateway_home: PathBuf,
    gateway_backends: Backends,
}

fn setup(
    vendor_home: &Path,
    vendor_backends: &Backends,
    gateway_home: &Path,
    gateway_backends: Backends,
) -> Setup {
    let mut vendor = Vendor::init(vendor_home, "acme", vendor_backends).expect("vendor");
    let options = InitOptions {
        mqtt_port: Some(free_port()),
        https_port: Some(free_port()),
        sntp_port: Some(free_port()),
        ..InitOptions::default()
    };
    let gateway = Gateway::init(gateway_home, &options).expect("gateway init");
    gateway
        .subscribe(&vendor.token(Some("hub")).expect("token"))
        .expect("subscribe");
    gateway
        .add_device(&NewDevice {
            id: "lamp-1".into(),
            mac: "02:00:00:00:00:01".into(),
            model: "lamp".into(),
            hardware: "rev-b".into(),
        })
        .expect("device");
    // Creates the API token too, as `gateway init` does.
    gateway.reset_admin_password().expect("admin password");
    Setup {
        vendor,
        gateway_home: gateway_home.to_path_buf(),
        gateway_backends,
    }
}

impl Setup {
    async fn publish(&mut self, dir: &Path, version: &str, size: usize) -> Vec<u8> {
        let image: Vec<u8> = (0..size)
            .map(|i| ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8)
            .collect();
        let path = dir.join(format!("lamp-{version}.bin"));
        std::fs::write(&path, &image).expect("image");
        let spec = fwledger::ReleaseSpec::new("lamp", &["rev-b"], version);
        self.vendor
            .publish(&path, &spec, None)
            .await
            .expect("publish");
        image
    }

    async fn start(&self) -> RunningGateway {
        require_mosquitto();
        let mut options = RunOptions::new(self.gateway_backends.clone());
        options.timing = timing();
        Gateway::open(&self.gateway_home)
            .expect("open")
            .start(options)
            .await
            .expect("gateway starts")
    }

    fn paths(&self) -> GatewayPaths {
        GatewayPaths::new(&self.gateway_home)
    }

    async fn get(&self, running: &RunningGateway, path: &str) -> Response {
        let paths = self.paths();
        let ca = std::fs::read_to_string(paths.ca_cert()).expect("ca");
        let token = fwledger_gateway::web::auth::read_api_token(&paths)
            .expect("api token")
            .expect("api token exists");
        let url = format!("https://{}{path}", running.http_addr());
        https_get(&url, &ca, &[("authorization", &format!("Bearer {token}"))]).await
    }

    /// `/api/health`'s entry for `component`.
    async fn health(&self, running: &RunningGateway, component: &str) -> Value {
        let answer = self.get(running, "/api/health").await;
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        let all: Vec<Value> = serde_json::from_slice(&answer.body).expect("health json");
        assert_eq!(all.len(), 4, "{all:?}");
        all.into_iter()
            .find(|c| c["component"] == component)
            .unwrap_or_else(|| panic!("no {component} in /api/health"))
    }

    /// Waits (bounded) until `component` is failing (`ok == false`) or ok again; returns its
    /// last `/api/health` entry.
    async fn wait_health(&self, running: &RunningGateway, component: &str, ok: bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let h = self.health(running, component).await;
            if h["ok"] == ok {
                return h;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{component} never became {}: {h}",
                if ok { "ok" } else { "failing" }
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn metric(&self, running: &RunningGateway, line_start: &str) -> String {
        let answer = self.get(running, "/metrics").await;
        let text = String::from_utf8_lossy(&answer.body).into_owned();
        text.lines()
            .find(|l| l.starts_with(line_start))
            .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
            .to_string()
    }

    async fn wait_verified(&self, running: &RunningGateway, version: &str) {
        let registry = running.registry().clone();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let releases = registry.releases().expect("releases");
            if releases
                .iter()
                .any(|r| r.version == version && r.state == ReleaseState::Verified)
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{version} never verified: {releases:?}\nevents: {:?}",
                registry.events(20)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Files in the repository: (complete names, temporary names).
fn repository_files(paths: &GatewayPaths) -> (Vec<String>, Vec<String>) {
    let mut done = Vec::new();
    let mut partial = Vec::new();
    if let Ok(entries) = std::fs::read_dir(paths.repository()) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                partial.push(name);
            } else {
                done.push(name);
            }
        }
    }
    (done, partial)
}

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

#[path = "../../store/tests/common/kubo.rs"]
#[allow(dead_code)]
mod kubo;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_store_unreachable_is_retried_shown_and_recovers() {
    let Some(bin) = kubo_or_skip("content_store_unreachable") else {
        return;
    };
    let daemon = kubo::KuboDaemon::start(&bin, &kubo::swarm_key());
    let api: std::net::SocketAddr = daemon
        .api_url()
        .trim_start_matches("http://")
        .parse()
        .expect("api address");
    // The gateway reaches Kubo only through a proxy the test cuts.
    let link = proxy::Proxy::start(api);
    let dir = tempfile::tempdir().expect("tempdir");
    let vendor_backends =
        Backends::open(dir.path(), "embedded", &daemon.store_url()).expect("vendor backends");
    let gateway_backends = Backends::open(
        dir.path(),
        "embedded",
        &format!("kubo+http://{}", link.addr()),
    )
    .expect("gateway backends");
    let mut s = setup(dir.path(), &vendor_backends, dir.path(), gateway_backends);
    link.cut();
    let image = s.publish(dir.path(), "1.1.0", 300_000).await;
    let running = s.start().await;

    let failing = s.wait_health(&running, "store", false).await;
    assert_eq!(failing["state"], "failing");
    assert!(
        !failing["last_error"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{failing}"
    );
    // Retried with backoff: more attempts come, each with a next retry time.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut seen = failing;
    while seen["failures"].as_u64().unwrap_or(0) < 3 {
        assert!(tokio::time::Instant::now() < deadline, "no retries: {seen}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        seen = s.health(&running, "store").await;
    }
    assert!(seen["next_retry"].is_u64(), "{seen}");
    assert_eq!(
        s.metric(
            &running,
            "fwledger_gateway_component_up{component=\"store\"}"
        )
        .await,
        "fwledger_gateway_component_up{component=\"store\"} 0"
    );
    assert!(repository_files(&s.paths()).0.is_empty());

    // The network is back: no operator action, the fetch completes.
    link.restore();
    s.wait_verified(&running, "1.1.0").await;
    let ok = s.wait_health(&running, "store", true).await;
    assert_eq!(ok["failures"], 0);
    assert_eq!(
        s.metric(
            &running,
            "fwledger_gateway_component_up{component=\"store\"}"
        )
        .await,
        "fwledger_gateway_component_up{component=\"store\"} 1"
    );
    let stored = std::fs::read(
        s.paths()
            .image(&hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&image))),
    )
    .expect("stored image");
    assert!(stored == image);
    let events = running.registry().events(50).expect("events");
    assert!(
        events
            .iter()
            .any(|e| e.message.starts_with("store failing: ")),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e.message == "store works again"),
        "{events:?}"
    );
    running.stop().await;
}

/// The real SQLite ledger behind a switch: while cut, every call fails the way a ledger behind
/// a dropped network does (`LedgerError::Unavailable`). No SQLite ledger can be made unreachable
/// for a reader that already holds it open (WAL readers keep their shared lock), so the fault is
/// injected at the trait the gateway reads through.
struct CuttableLedger {
    inner: std::sync::Arc<dyn fwledger::Ledger>,
    cut: std::sync::atomic::AtomicBool,
}

impl CuttableLedger {
    fn check(&self) -> Result<(), fwledger::LedgerError> {
        if self.cut.load(std::sync::atomic::Ordering::SeqCst) {
            Err(fwledger::LedgerError::Unavailable(
                "connection refused (test: ledger cut)".into(),
            ))
        } else {
            Ok(())
        }
    }
}

#[async_trait::async_trait]
impl fwledger::Ledger for CuttableLedger {
    async fn append(
        &self,
        channel: &fwledger_ledger::ChannelId,
        seq: u64,
        message: &[u8],
    ) -> Result<(), fwledger::LedgerError> {
        self.check()?;
        self.inner.append(channel, seq, message).await
    }

    async fn read(
        &self,
        channel: &fwledger_ledger::ChannelId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<fwledger_ledger::StoredMessage>, fwledger::LedgerError> {
        self.check()?;
        self.inner.read(channel, from, limit).await
    }

    async fn next_seq(
        &self,
        channel: &fwledger_ledger::ChannelId,
    ) -> Result<u64, fwledger::LedgerError> {
        self.check()?;
        self.inner.next_seq(channel).await
    }

    async fn wait(
        &self,
        channel: &fwledger_ledger::ChannelId,
        from: u64,
        timeout: Duration,
    ) -> Result<bool, fwledger::LedgerError> {
        self.check()?;
        self.inner.wait(channel, from, timeout).await
    }

    async fn channels(
        &self,
    ) -> Result<Vec<(fwledger_ledger::ChannelId, u64)>, fwledger::LedgerError> {
        self.check()?;
        self.inner.channels().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_unreachable_is_retried_shown_and_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vendor_backends = Backends::open(dir.path(), "embedded", "embedded").expect("backends");
    let ledger = std::sync::Arc::new(CuttableLedger {
        inner: vendor_backends.ledger.clone(),
        cut: std::sync::atomic::AtomicBool::new(true),
    });
    let gateway_backends = Backends {
        ledger: ledger.clone(),
        store: vendor_backends.store.clone(),
    };
    let mut s = setup(dir.path(), &vendor_backends, dir.path(), gateway_backends);
    s.publish(dir.path(), "1.1.0", 20_000).await;
    let running = s.start().await;
    let failing = s.wait_health(&running, "ledger", false).await;
    let error = failing["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("ledger cut"), "{failing}");
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut seen = failing;
    while seen["failures"].as_u64().unwrap_or(0) < 3 {
        assert!(tokio::time::Instant::now() < deadline, "no retries: {seen}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        seen = s.health(&running, "ledger").await;
    }
    assert!(seen["next_retry"].is_u64(), "{seen}");
    assert_eq!(
        s.metric(
            &running,
            "fwledger_gateway_component_up{component=\"ledger\"}"
        )
        .await,
        "fwledger_gateway_component_up{component=\"ledger\"} 0"
    );
    let channels = running.registry().channels().expect("channels");
    assert!(channels[0].error.is_some(), "{channels:?}");
    assert!(running.registry().releases().expect("releases").is_empty());

    // Back: the follower reads on by itself, the release published meanwhile arrives.
    ledger.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    s.wait_health(&running, "ledger", true).await;
    s.wait_verified(&running, "1.1.0").await;
    let channels = running.registry().channels().expect("channels");
    assert!(channels[0].error.is_none(), "{channels:?}");
    running.stop().await;
}

/// A tmpfs mounted for the test; unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).expect("mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status();
        match status {
            Ok(s) if s.success() => Some(Tmpfs(at.to_path_buf())),
            other => {
                assert!(
                    std::env::var("FWLEDGER_REQUIRE_MOUNT").as_deref() != Ok("1"),
                    "FWLEDGER_REQUIRE_MOUNT=1 but mount -t tmpfs failed: {other:?}"
                );
                eprintln!("disk-full test skipped: cannot mount a tmpfs ({other:?}; needs root)");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_fails_cleanly_is_shown_and_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(_tmpfs) = Tmpfs::mount(&dir.path().join("hub"), "8m") else {
        return;
    };
    let gateway_home = dir.path().join("hub");
    let vendor_home = dir.path().join("acme");
    std::fs::create_dir_all(&vendor_home).expect("vendor home");
    let ledger = format!("sqlite:{}", vendor_home.join("ledger.sqlite").display());
    let store = format!("embedded:{}", vendor_home.join("store").display());
    let vendor_backends = Backends::open(&vendor_home, &ledger, &store).expect("backends");
    let gateway_backends = Backends::open(&gateway_home, &ledger, &store).expect("backends");
    let mut s = setup(
        &vendor_home,
        &vendor_backends,
        &gateway_home,
        gateway_backends,
    );
    let running = s.start().await;

    // Fill the gateway's disk, leaving about 512 KiB: a 2 MiB release cannot fit.
    let filler = gateway_home.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).expect("filler");
        let chunk = vec![0x5au8; 64 * 1024];
        let mut written = 0u64;
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        f.set_len(written.saturating_sub(512 * 1024))
            .expect("leave 512 KiB");
        f.sync_all().expect("sync");
    }
    let image = s.publish(&vendor_home, "1.1.0", 2 * 1024 * 1024).await;
    let failing = s.wait_health(&running, "disk", false).await;
    let error = failing["last_error"].as_str().unwrap_or_default();
    assert!(error.starts_with("disk full: "), "{failing}");
    // The store itself answered: only the disk is blamed.
    assert_eq!(s.health(&running, "store").await["ok"], true);
    // Several failed attempts, each cleaned up: nothing under a final name, no temp file left
    // between attempts.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let h = s.health(&running, "disk").await;
        if h["failures"].as_u64().unwrap_or(0) >= 3 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no retries: {h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (done, _) = repository_files(&s.paths());
    assert!(done.is_empty(), "a file under its final name: {done:?}");
    let release = running
        .registry()
        .releases()
        .expect("releases")
        .into_iter()
        .find(|r| r.version == "1.1.0")
        .expect("release known");
    assert_eq!(release.state, ReleaseState::Fetching);
    assert!(
        release
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("disk full"),
        "{release:?}"
    );

    // Space is freed: the next retry succeeds without operator action.
    std::fs::remove_file(&filler).expect("free space");
    s.wait_verified(&running, "1.1.0").await;
    s.wait_health(&running, "disk", true).await;
    let (done, partial) = repository_files(&s.paths());
    assert_eq!(done.len(), 1, "{done:?}");
    assert!(partial.is_empty(), "temporary files left: {partial:?}");
    let stored = std::fs::read(s.paths().repository().join(&done[0])).expect("stored");
    assert!(stored == image, "the stored image differs");
    running.stop().await;
}

//! The gateway SIGKILLed 100 times at random points of its work — following the channel,
//! fetching an image, writing it into the repository, notifying devices — while three device
//! agents (`fwledger device run`) keep running against a broker that stays up. After every kill:
//! each file under its final name in the repository is complete and matches a vendor-signed
//! manifest, the registry passes `PRAGMA integrity_check` and its invariants; after every
//! restart no image is served over HTTPS that is not; at the end every device runs the newest
//! release.
//!
//! Kill points are random and steered: each iteration aims at one phase (in turn) and kills the
//! moment that phase is observed (plus a random delay), so every phase is hit a fair number of
//! times; the phase actually hit is classified from what was observed and reported. The seed is
//! printed: `FWLEDGER_FAULT_SEED=N` replays a run, `FWLEDGER_FAULT_KILLS=N` changes the count.

mod common;
use common::*;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use fwledger_proto::ed25519_dalek::VerifyingKey;
use fwledger_proto::manifest::{verify_manifest, TrustAnchor};
use sha2::{Digest, Sha256};

const DEVICES: usize = 3;
/// A little over the fetcher's 1 MiB write buffer, so a partial file is visible mid-stream.
const IMAGE_SIZE: usize = 1_200_000;

/// Every process the test started; all killed (and reaped) on drop, also when the test fails.
#[derive(Default)]
struct Processes {
    mosquitto: Option<Child>,
    devices: Vec<Child>,
    gateway: Option<Child>,
}

impl Drop for Processes {
    fn drop(&mut self) {
        let all = self
            .gateway
            .iter_mut()
            .chain(self.devices.iter_mut())
            .chain(self.mosquitto.iter_mut());
        for child in all {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// xorshift64*: small, seedable, good enough to pick kill points.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Start-up and following the channel: the newest release is not in the registry yet.
    Follow,
    /// Streaming an image from the content store into its temporary file.
    Fetch,
    /// Finishing the repository write: temporary file complete, fsync, rename, registry update.
    Write,
    /// The release is verified; notices to devices are being published.
    Notify,
    /// Nothing of the above was in progress.
    Idle,
}

const TARGETS: [Phase; 4] = [Phase::Follow, Phase::Fetch, Phase::Write, Phase::Notify];

/// What the registry says about one release.
#[derive(Debug, Clone)]
struct ReleaseRow {
    id: i64,
    version: String,
    sha256: String,
    size: u64,
    state: String,
    manifest: Vec<u8>,
    vendor_key: String,
}

struct Registry {
    conn: rusqlite::Connection,
}

impl Registry {
    fn open(path: &Path) -> Registry {
        let conn = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .expect("open registry");
        conn.busy_timeout(Duration::from_secs(10)).expect("busy");
        Registry { conn }
    }

    fn releases(&self) -> Vec<ReleaseRow> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, version, sha256, size, state, manifest, vendor_key FROM releases \
                 ORDER BY id",
            )
            .expect("prepare");
        stmt.query_map([], |r| {
            Ok(ReleaseRow {
                id: r.get(0)?,
                version: r.get(1)?,
                sha256: r.get(2)?,
                size: r.get(3)?,
                state: r.get(4)?,
                manifest: r.get(5)?,
                vendor_key: r.get(6)?,
            })
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
    }

    /// Whether `version` is verified and some device has no notice of it yet (cheap).
    fn verified_not_notified(&self, version: &str) -> bool {
        self.conn
            .query_row(
                "SELECT count(*) FROM releases r, devices d WHERE r.version = ?1 AND \
                 r.state = 'verified' AND d.notice_release IS NOT r.id",
                [version],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .unwrap_or(false)
    }

    /// (device, notice_release, version)
    fn devices(&self) -> Vec<(String, Option<i64>, Option<String>)> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, notice_release, version FROM devices ORDER BY id")
            .expect("prepare");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    /// `PRAGMA integrity_check` and the registry's invariants; panics naming the broken one.
    fn check(&self, repo: &Path, at: &str) {
        let integrity: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("integrity_check");
        assert_eq!(integrity, "ok", "{at}: registry integrity_check");
        let releases = self.releases();
        let by_id: HashMap<i64, &ReleaseRow> = releases.iter().map(|r| (r.id, r)).collect();
        let duplicates: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM (SELECT channel, seq FROM releases GROUP BY channel, seq \
                 HAVING count(*) > 1)",
                [],
                |r| r.get(0),
            )
            .expect("duplicates");
        assert_eq!(duplicates, 0, "{at}: a channel message recorded twice");
        for r in &releases {
            assert!(
                matches!(r.state.as_str(), "pending" | "fetching" | "verified"),
                "{at}: release {} in state {} (every image in this test is good)",
                r.version,
                r.state
            );
            if r.state == "verified" {
                let len = std::fs::metadata(repo.join(&r.sha256)).map(|m| m.len());
                assert_eq!(
                    len.ok(),
                    Some(r.size),
                    "{at}: release {} verified but its repository file is missing or short",
                    r.version
                );
            }
        }
        for (device, notice, _) in self.devices() {
            if let Some(id) = notice {
                let state = by_id.get(&id).map(|r| r.state.as_str());
                assert_eq!(
                    state,
                    Some("verified"),
                    "{at}: {device} was notified of release {id}, which is not verified"
                );
            }
        }
        let orphans: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM updates WHERE release_id NOT IN (SELECT id FROM releases) \
                 OR device_id NOT IN (SELECT id FROM devices)",
                [],
                |r| r.get(0),
            )
            .expect("orphans");
        assert_eq!(orphans, 0, "{at}: updates of unknown releases or devices");
    }
}

/// Files under a final name that were already checked, by (name, size, mtime).
type Checked = HashMap<String, (u64, SystemTime)>;

/// Every file under its final (64-hex) name is complete, hashes to its name and matches a
/// manifest signed by the vendor; temporary files are hidden (dot) files.
fn check_repository(
    repo: &Path,
    registry: &Registry,
    vendor: &VerifyingKey,
    checked: &mut Checked,
    at: &str,
) {
    let Ok(entries) = std::fs::read_dir(repo) else {
        return;
    };
    let releases = registry.releases();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        assert!(
            name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()),
            "{at}: unexpected repository file {name}"
        );
        let meta = entry.metadata().expect("metadata");
        let key = (meta.len(), meta.modified().expect("mtime"));
        if checked.get(&name) == Some(&key) {
            continue;
        }
        let bytes = std::fs::read(entry.path()).expect("read repository file");
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            name,
            "{at}: {name} is incomplete or corrupt"
        );
        let release = releases
            .iter()
            .find(|r| r.sha256 == name)
            .unwrap_or_else(|| panic!("{at}: {name} belongs to no release in the registry"));
        assert_eq!(release.vendor_key, hex::encode(vendor.as_bytes()));
        let verified = verify_manifest(&release.manifest, &TrustAnchor::new(*vendor), None)
            .unwrap_or_else(|e| panic!("{at}: manifest of {name} does not verify: {e}"));
        assert_eq!(hex::encode(verified.manifest.sha256), name, "{at}");
        assert_eq!(verified.manifest.size, bytes.len() as u64, "{at}");
        checked.insert(name, key);
    }
}

/// `GET /fw/{sha}` with curl (the gateway's CA): a 200 answer must be exactly the image.
fn check_served(base: &str, ca: &Path, sha: &str, out: &Path, at: &str) {
    let _ = std::fs::remove_file(out);
    let result = Command::new("curl")
        .args(["-sS", "--max-time", "5", "-o"])
        .arg(out)
        .args(["-w", "%{http_code}", "--cacert"])
        .arg(ca)
        .arg(format!("{base}/fw/{sha}"))
        .output()
        .expect("curl");
    let code = String::from_utf8_lossy(&result.stdout).to_string();
    if code == "200" {
        let body = std::fs::read(out).unwrap_or_default();
        assert_eq!(
            hex::encode(Sha256::digest(&body)),
            sha,
            "{at}: the gateway served something else than the verified image"
        );
    }
}

fn image(version: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(IMAGE_SIZE + 32);
    let mut block: [u8; 32] = Sha256::digest(format!("fault-kill-{version}")).into();
    while out.len() < IMAGE_SIZE {
        out.extend_from_slice(&block);
        block = Sha256::digest(block).into();
    }
    out.truncate(IMAGE_SIZE);
    out
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

/// Partial-file state of the repository: (largest temp file size, any temp file).
fn partial(repo: &Path) -> Option<u64> {
    let entries = std::fs::read_dir(repo).ok()?;
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".part-"))
        .filter_map(|e| e.metadata().ok().map(|m| m.len()))
        .max()
}

#[test]
fn gateway_sigkilled_at_random_points_loses_nothing() {
    let mosquitto = match fwledger_gateway::broker::find_mosquitto(None) {
        Ok(path) => path,
        Err(_) => panic!("this test needs mosquitto: apt-get install -y mosquitto"),
    };
    let started = Instant::now();
    let seed: u64 = std::env::var("FWLEDGER_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    let kills: usize = std::env::var("FWLEDGER_FAULT_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    println!("fault_kill: seed {seed} (replay with FWLEDGER_FAULT_SEED={seed}), {kills} kills");
    let mut rng = Rng(seed);

    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let mut procs = Processes::default();
    ok(&home, &["vendor", "init", "--name", "acme"]);
    let vendor_key = ok(&home, &["vendor", "key"]);
    let vendor: [u8; 32] = hex::decode(vendor_key.trim()).unwrap().try_into().unwrap();
    let vendor = VerifyingKey::from_bytes(&vendor).unwrap();
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
    let gateway_dir = home.join("gateway");
    let repo = gateway_dir.join("repository");
    let ca = gateway_dir.join("pki").join("ca.pem");
    assert!(ca.is_file(), "CA certificate at {}", ca.display());
    let base = format!("https://127.0.0.1:{https}");

    // The broker stays up across gateway kills (the gateway connects to it with --broker), so
    // the devices keep their sessions and only the gateway dies.
    let log = |name: &str| std::fs::File::create(dir.path().join(name)).unwrap();
    procs.mosquitto = Some(
        Command::new(&mosquitto)
            .arg("-c")
            .arg(gateway_dir.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(log("mosquitto.log"))
            .spawn()
            .unwrap(),
    );
    let mqtt_port: u16 = mqtt.parse().unwrap();
    assert!(
        wait_port(mqtt_port, Duration::from_secs(10)),
        "mosquitto did not start"
    );

    for i in 0..DEVICES {
        let id = format!("lamp-{i}");
        let bundle = dir.path().join(format!("{id}.json"));
        ok(
            &home,
            &[
                "gateway",
                "device",
                "add",
                "--id",
                &id,
                "--mac",
                &format!("02:00:00:00:00:{i:02x}"),
                "--model",
                "lamp",
                "--hw",
                "rev-b",
                "--out",
                bundle.to_str().unwrap(),
            ],
        );
        procs.devices.push(
            fwledger(&home)
                .args(["device", "run", "--bundle"])
                .arg(&bundle)
                .arg("--state")
                .arg(dir.path().join(format!("state-{id}")))
                .args(["--check-interval", "2s"])
                .stdout(Stdio::null())
                .stderr(log(&format!("{id}.log")))
                .spawn()
                .unwrap(),
        );
    }

    let registry_path = gateway_dir.join("registry.sqlite");
    let registry = Registry::open(&registry_path);
    let gateway_log = dir.path().join("gateway.log");
    let start_gateway = |procs: &mut Processes| {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&gateway_log)
            .unwrap();
        procs.gateway = Some(
            fwledger(&home)
                .args(["gateway", "run", "--broker"])
                .arg(format!("mqtts://127.0.0.1:{mqtt}"))
                .args(["--reconcile", "1s", "--max-backoff", "2s"])
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .unwrap(),
        );
    };

    let mut published = 0u32; // versions 1.1.N, N = 1..=published
    let publish = |n: u32| {
        let path = dir.path().join(format!("fw-{n}.bin"));
        std::fs::write(&path, image(n)).unwrap();
        ok(
            &home,
            &[
                "vendor",
                "publish",
                path.to_str().unwrap(),
                "--model",
                "lamp",
                "--hw",
                "rev-b",
                "--version",
                &format!("1.1.{n}"),
            ],
        );
        let _ = std::fs::remove_file(&path);
    };
    let mut checked = Checked::new();
    let mut hits: BTreeMap<Phase, usize> = BTreeMap::new();
    let served_out = dir.path().join("served.bin");
    // How long a gateway takes from its start to recording a new release (measured).
    let mut follow_time = Duration::from_millis(300);

    for iteration in 0..kills {
        let target = TARGETS[iteration % TARGETS.len()];
        let at = format!("seed {seed}, kill {iteration} (aimed at {target:?})");
        let releases = registry.releases();
        let latest = releases
            .iter()
            .rfind(|r| r.version == format!("1.1.{published}"))
            .cloned();
        let notified = |id: i64| registry.devices().iter().all(|d| d.1 == Some(id));
        let settled = published == 0
            || latest
                .as_ref()
                .is_some_and(|r| r.state == "verified" && notified(r.id));
        if settled || (target == Phase::Follow && latest.is_some()) {
            published += 1;
            publish(published);
        }
        let version = format!("1.1.{published}");

        start_gateway(&mut procs);
        let gateway_started = Instant::now();
        // Where the gateway is: the repository's temporary file first (cheap), the registry
        // otherwise.
        let observe = || {
            if let Some(len) = partial(&repo) {
                return if len >= IMAGE_SIZE as u64 {
                    Phase::Write
                } else {
                    Phase::Fetch
                };
            }
            let rows = registry.releases();
            let Some(r) = rows.iter().find(|r| r.version == version) else {
                return Phase::Follow;
            };
            if r.state == "verified" {
                return if notified(r.id) {
                    Phase::Idle
                } else {
                    Phase::Notify
                };
            }
            if repo.join(&r.sha256).exists() {
                return Phase::Write;
            }
            Phase::Follow
        };
        // Wait until the gateway reaches the phase aimed at (or has gone past it), bounded;
        // the temporary file is polled in a tight loop, the registry every few rounds.
        let deadline = gateway_started + Duration::from_secs(15);
        let jitter = match target {
            Phase::Follow => {
                // Somewhere between the start and the moment the release was recorded, as
                // measured in earlier iterations.
                Duration::from_micros(rng.below(follow_time.as_micros() as u64 * 9 / 10 + 1))
            }
            Phase::Fetch => {
                let mut round = 0u32;
                loop {
                    round += 1;
                    if partial(&repo).is_some_and(|len| len < IMAGE_SIZE as u64) {
                        break;
                    }
                    if round % 16 == 0 {
                        let seen = observe();
                        if seen > Phase::Fetch || Instant::now() > deadline {
                            break;
                        }
                    }
                }
                Duration::from_micros(rng.below(2_000))
            }
            Phase::Write => {
                let mut round = 0u32;
                loop {
                    round += 1;
                    if partial(&repo).is_some_and(|len| len >= IMAGE_SIZE as u64) {
                        break;
                    }
                    if round % 16 == 0 {
                        let seen = observe();
                        if seen >= Phase::Write || Instant::now() > deadline {
                            break;
                        }
                    }
                }
                Duration::from_micros(rng.below(200))
            }
            _ => {
                let mut measured = false;
                loop {
                    // Tight: the notices follow the verification within milliseconds.
                    if registry.verified_not_notified(&version) {
                        break;
                    }
                    let seen = observe();
                    if seen > Phase::Follow && !measured {
                        measured = true;
                        follow_time = (follow_time + gateway_started.elapsed()) / 2;
                    }
                    if seen >= target || Instant::now() > deadline {
                        break;
                    }
                }
                Duration::from_micros(rng.below(1_000))
            }
        };
        if procs
            .gateway
            .as_mut()
            .is_some_and(|g| g.try_wait().ok().flatten().is_some())
        {
            panic!(
                "{at}: the gateway exited by itself\n{}",
                std::fs::read_to_string(&gateway_log).unwrap_or_default()
            );
        }
        std::thread::sleep(jitter);
        let mut gateway = procs.gateway.take().unwrap();
        gateway.kill().unwrap(); // SIGKILL
        gateway.wait().unwrap();
        // Classified from what the dead gateway left: exactly the state at the kill.
        let hit = observe();
        *hits.entry(hit).or_default() += 1;

        registry.check(&repo, &at);
        check_repository(&repo, &registry, &vendor, &mut checked, &at);
        // What a restarted gateway serves: checked on the way up of the next start, here for
        // the newest verified image by a short-lived gateway only every few kills (it costs a
        // start-up).
        if iteration % 10 == 9 {
            start_gateway(&mut procs);
            if wait_port(https.parse().unwrap(), Duration::from_secs(10)) {
                for r in registry.releases().iter().rev().take(2) {
                    check_served(&base, &ca, &r.sha256, &served_out, &at);
                }
            }
            let mut g = procs.gateway.take().unwrap();
            g.kill().unwrap();
            g.wait().unwrap();
        }
    }
    let killing = started.elapsed();

    // Recovery without operator action: one more start, and every device ends on the newest
    // release.
    start_gateway(&mut procs);
    let newest = format!("1.1.{published}");
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let devices = registry.devices();
        if devices
            .iter()
            .all(|d| d.2.as_deref() == Some(newest.as_str()))
        {
            break;
        }
        if Instant::now() > deadline {
            let mut gateway_text = String::new();
            let _ = std::fs::File::open(&gateway_log)
                .and_then(|mut f| f.read_to_string(&mut gateway_text));
            let tail = gateway_text
                .lines()
                .rev()
                .take(60)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            let mut device_logs = String::new();
            for (id, _, version) in &devices {
                if version.as_deref() != Some(newest.as_str()) {
                    let text = std::fs::read_to_string(dir.path().join(format!("{id}.log")))
                        .unwrap_or_default();
                    let lines: Vec<&str> = text.lines().collect();
                    let from = lines.len().saturating_sub(40);
                    device_logs.push_str(&format!("--- {id} ---\n{}\n", lines[from..].join("\n")));
                }
            }
            panic!(
                "seed {seed}: devices never all reached {newest}: {devices:?}\n{tail}\n{device_logs}"
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for r in registry.releases() {
        if r.state == "verified" {
            check_served(&base, &ca, &r.sha256, &served_out, "final");
        }
    }
    registry.check(&repo, "final");
    check_repository(&repo, &registry, &vendor, &mut checked, "final");
    let confirmed: i64 = registry
        .conn
        .query_row(
            "SELECT count(*) FROM updates u JOIN releases r ON r.id = u.release_id \
             WHERE r.version = ?1 AND u.state = 'confirmed'",
            [&newest],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(confirmed, DEVICES as i64, "every device confirmed {newest}");
    if let Some(mut g) = procs.gateway.take() {
        let _ = Command::new("kill").arg(g.id().to_string()).status();
        let _ = g.wait();
    }
    println!(
        "fault_kill: seed {seed}: {kills} kills in {:.1} s ({} releases), recovery {:.1} s; \
         kills by phase: {hits:?}",
        killing.as_secs_f64(),
        published,
        started.elapsed().as_secs_f64() - killing.as_secs_f64()
    );
    // Steering must reach every phase: follow, fetch and write a fair number of times; the
    // notification window is a few milliseconds per release, so it is hit less often.
    if kills >= 40 {
        for phase in TARGETS {
            let n = hits.get(&phase).copied().unwrap_or(0);
            let floor = if phase == Phase::Notify {
                1
            } else {
                kills / 10
            };
            assert!(
                n >= floor,
                "seed {seed}: only {n} of {kills} kills hit {phase:?}: {hits:?}"
            );
        }
    }
}

//! The trustless gateway client (`TrustlessStore`) and server (`trustless_router`): against a
//! real Kubo gateway, against each other, Kubo importing our CARs, and hostile gateways (a tiny
//! scripted HTTP server). Everything listens on 127.0.0.1 only and is bounded in time.
//! Kubo: `$FWLEDGER_KUBO` or `ipfs` on PATH; the Kubo tests skip without it unless
//! `FWLEDGER_REQUIRE_KUBO=1`.

#![cfg(all(feature = "trustless", feature = "server", feature = "embedded"))]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::kubo::{swarm_key, KuboDaemon};
use common::{kubo_or_skip, splitmix64_bytes, KuboRepo};
use futures::TryStreamExt;
use fwledger_store::{
    cid_of_file, ContentStore, EmbeddedStore, GatewayTimeouts, KuboStore, Profile, StoreError,
    TrustlessStore,
};

/// 3 MiB + 17: 4 leaves under `unixfs-v1-2025`, 13 under `unixfs-v0-2015`.
const MULTI_BLOCK: usize = 3 * 1024 * 1024 + 17;
const CAR: &str = "application/vnd.ipld.car";
const RAW: &str = "application/vnd.ipld.raw";

/// The test files: one block, several blocks, and repeated (identical) leaves.
fn files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("small", b"hello trustless world".to_vec()),
        ("multi", splitmix64_bytes(11, MULTI_BLOCK)),
        ("zeros", vec![0u8; 2 * 1024 * 1024 + 5]),
    ]
}

fn short_timeouts() -> GatewayTimeouts {
    GatewayTimeouts::default()
        .with_connect(Duration::from_secs(2))
        .with_idle(Duration::from_secs(2))
        .with_block(Duration::from_secs(5))
}

fn client(url: &str) -> TrustlessStore {
    TrustlessStore::with_timeouts(url, short_timeouts()).unwrap()
}

async fn read_all(store: &dyn ContentStore, cid: &str, max: u64) -> Result<Vec<u8>, StoreError> {
    let chunks: Vec<Vec<u8>> = store.get(cid, max).await?.try_collect().await?;
    Ok(chunks.concat())
}

/// Our server over an embedded store, on 127.0.0.1 (stops with the test's runtime).
async fn serve(store: Arc<dyn ContentStore>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(fwledger_store::serve_trustless(
        listener,
        store,
        std::future::pending(),
    ));
    format!("http://{addr}")
}

/// An embedded store holding `files()` under `profile`; returns (store, [(name, cid, bytes)]).
async fn embedded_with_files(
    dir: &Path,
    profile: Profile,
) -> (EmbeddedStore, Vec<(&'static str, String, Vec<u8>)>) {
    let store = EmbeddedStore::open(&dir.join("store")).unwrap();
    let mut out = Vec::new();
    for (name, bytes) in files() {
        let path = dir.join(name);
        std::fs::write(&path, &bytes).unwrap();
        let added = store.add_file(&path, profile, None).await.unwrap();
        out.push((name, added.cid, bytes));
    }
    (store, out)
}

/// A plain HTTP client for looking at responses (rustls needs its provider chosen first).
fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn car_bytes(base: &str, cid: &str, query: &str) -> Vec<u8> {
    let response = http()
        .get(format!("{base}/ipfs/{cid}?format=car{query}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap().to_vec()
}

// ---------------------------------------------------------------------------------------------
// Kubo

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reads_kubo_gateway_as_car_and_as_blocks() {
    let Some(bin) = kubo_or_skip("client_reads_kubo_gateway_as_car_and_as_blocks") else {
        return;
    };
    let node = KuboDaemon::start(&bin, &swarm_key());
    let rpc = KuboStore::new(node.api_url()).unwrap();
    let gateway = node.gateway_url();
    let dir = tempfile::tempdir().unwrap();
    for profile in Profile::ALL {
        for (name, bytes) in files() {
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            let cid = rpc.add_file(&path, profile, None).await.unwrap().cid;
            assert_eq!(cid, cid_of_file(&path, profile).unwrap());

            // Kubo answers the client's CAR request with a depth-first CAR with duplicates
            let response = http()
                .get(format!("{gateway}/ipfs/{cid}?format=car&dag-scope=entity"))
                .header(
                    "Accept",
                    "application/vnd.ipld.car; version=1; order=dfs; dups=y",
                )
                .send()
                .await
                .unwrap();
            let content_type = response.headers()["content-type"].to_str().unwrap();
            assert!(
                content_type.contains("order=dfs") && content_type.contains("dups=y"),
                "{content_type}"
            );

            let car = client(&gateway);
            assert_eq!(
                read_all(&car, &cid, bytes.len() as u64).await.unwrap(),
                bytes,
                "{name} {profile} CAR"
            );
            let blocks = client(&gateway).blocks_only(true);
            assert_eq!(
                read_all(&blocks, &cid, bytes.len() as u64).await.unwrap(),
                bytes,
                "{name} {profile} blocks"
            );
            assert!(car.has(&cid).await.unwrap());
            // a limit below the size the root declares is refused before any byte
            let err = read_all(&car, &cid, bytes.len() as u64 - 1)
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
        }
    }
    let absent =
        fwledger_store::cid_of_reader(&swarm_key().into_bytes()[..], Profile::default()).unwrap();
    assert!(!client(&gateway).has(&absent).await.unwrap());
}

/// Kubo imports the CAR our server streams, and `ipfs cat` gives the file back; every CID
/// agrees with `cid_of_file` and with Kubo's own `add --only-hash`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubo_imports_car_from_our_server() {
    let Some(bin) = kubo_or_skip("kubo_imports_car_from_our_server") else {
        return;
    };
    for profile in Profile::ALL {
        let dir = tempfile::tempdir().unwrap();
        let (store, added) = embedded_with_files(dir.path(), profile).await;
        let base = serve(Arc::new(store)).await;
        let kubo = KuboRepo::new(&bin, profile);
        for (name, cid, bytes) in added {
            assert_eq!(cid, kubo.only_hash(&bytes[..]), "{name} {profile}");
            for query in ["", "&car-dups=y"] {
                let car_path = dir.path().join(format!("{name}.car"));
                std::fs::write(&car_path, car_bytes(&base, &cid, query).await).unwrap();
                let out = kubo
                    .command()
                    .args(["dag", "import", "--pin-roots=false", "--offline"])
                    .arg(&car_path)
                    .output()
                    .unwrap();
                assert!(out.status.success(), "ipfs dag import: {out:?}");
                let out = kubo
                    .command()
                    .args(["cat", "--offline", &cid])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "ipfs cat: {out:?}");
                assert!(out.stdout == bytes, "{name} {profile}: ipfs cat differs");
                // a fresh repo for the next variant: prove each CAR is complete on its own
                let out = kubo
                    .command()
                    .args(["repo", "gc", "--quiet"])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "ipfs repo gc: {out:?}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// our client against our server

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reads_our_server() {
    for profile in Profile::ALL {
        let dir = tempfile::tempdir().unwrap();
        let (store, added) = embedded_with_files(dir.path(), profile).await;
        let base = serve(Arc::new(store)).await;
        // also through the generic store URL dispatch
        let opened = fwledger_store::open(&base, dir.path()).unwrap();
        for (name, cid, bytes) in added {
            let max = bytes.len() as u64;
            assert_eq!(read_all(&client(&base), &cid, max).await.unwrap(), bytes);
            assert_eq!(
                read_all(&client(&base).blocks_only(true), &cid, max)
                    .await
                    .unwrap(),
                bytes,
                "{name} {profile}"
            );
            assert_eq!(read_all(opened.as_ref(), &cid, max).await.unwrap(), bytes);
            assert!(opened.has(&cid).await.unwrap());
        }
        let err = opened
            .pin(&cid_of_file(&dir.path().join("small"), profile).unwrap())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::ReadOnly { .. }), "{err}");
        assert!(err.to_string().contains("read-only"), "{err}");
        let err = opened
            .add_file(&dir.path().join("small"), profile, None)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::ReadOnly { .. }), "{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// server conformance

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_follows_the_trustless_gateway_spec() {
    let dir = tempfile::tempdir().unwrap();
    let (store, added) = embedded_with_files(dir.path(), Profile::UnixfsV0_2015).await;
    let base = serve(Arc::new(store.clone())).await;
    let (_, multi, multi_bytes) = added.iter().find(|f| f.0 == "multi").unwrap().clone();
    let (_, zeros, _) = added.iter().find(|f| f.0 == "zeros").unwrap().clone();
    let http = http();
    let get = |path: &str, accept: Option<&str>| {
        let mut request = http.get(format!("{base}{path}"));
        if let Some(accept) = accept {
            request = request.header("Accept", accept);
        }
        request.send()
    };

    // raw block, by format and by Accept
    for (path, accept) in [
        (format!("/ipfs/{multi}?format=raw"), None),
        (format!("/ipfs/{multi}"), Some(RAW)),
        (format!("/ipfs/{multi}?format=raw"), Some("text/html")),
    ] {
        let r = get(&path, accept).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers().clone();
        assert_eq!(h["content-type"], RAW);
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["cache-control"], "public, max-age=29030400, immutable");
        assert_eq!(
            h["content-disposition"],
            format!("attachment; filename=\"{multi}.bin\"").as_str()
        );
        assert_eq!(h["etag"], format!("\"{multi}.raw\"").as_str());
        let block = r.bytes().await.unwrap();
        assert_eq!(block, store.get_block(&multi).await.unwrap());
        // a 304 for the etag
        let r = http
            .get(format!("{base}{path}"))
            .header("Accept", RAW)
            .header("If-None-Match", h["etag"].clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 304);
    }

    // CAR: header, dfs, dups=n by default, dups=y on request, dag-scope=block
    let count_blocks = |car: &[u8]| sections(car).len() - 1;
    let r = get(&format!("/ipfs/{zeros}"), Some(CAR)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.ipld.car; version=1; order=dfs; dups=n"
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        r.headers()["content-location"],
        format!("/ipfs/{zeros}?format=car").as_str()
    );
    let dups_n = r.bytes().await.unwrap();
    let r = get(
        &format!("/ipfs/{zeros}?format=car"),
        Some("application/vnd.ipld.car; version=1; order=dfs; dups=y"),
    )
    .await
    .unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .ends_with("dups=y"));
    let dups_y = r.bytes().await.unwrap();
    // 9 leaves of 256 KiB zeros (8 identical + 1 short) under one root
    assert_eq!(count_blocks(&dups_y), 10);
    assert_eq!(count_blocks(&dups_n), 3);
    let block_only = car_bytes(&base, &zeros, "&dag-scope=block").await;
    assert_eq!(count_blocks(&block_only), 1);
    let whole = car_bytes(&base, &multi, "&entity-bytes=0:*").await;
    assert_eq!(count_blocks(&whole), 14);
    let car = car_bytes(&base, &multi, "").await;
    assert_eq!(car, whole);
    assert!(car.len() > multi_bytes.len());

    // HEAD: same headers, no body
    let r = http
        .head(format!("{base}/ipfs/{multi}?format=car"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with(CAR));
    assert!(r.bytes().await.unwrap().is_empty());

    // the probe CID
    let r = get("/ipfs/bafkqaaa?format=raw", None).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().is_empty());
    let probe = car_bytes(&base, "bafkqaaa", "").await;
    assert_eq!(sections(&probe).len(), 1);

    // errors
    let absent =
        fwledger_store::cid_of_reader(&b"nobody has this"[..], Profile::default()).unwrap();
    for (path, accept, extra, status) in [
        (format!("/ipfs/{absent}?format=raw"), None, None, 404),
        (format!("/ipfs/{absent}?format=car"), None, None, 404),
        (
            format!("/ipfs/{absent}?format=raw"),
            None,
            Some(("Cache-Control", "only-if-cached")),
            412,
        ),
        ("/ipfs/not-a-cid?format=raw".to_owned(), None, None, 400),
        (format!("/ipfs/{multi}?format=zip"), None, None, 400),
        (format!("/ipfs/{multi}"), None, None, 400),
        (format!("/ipfs/{multi}/a/path?format=car"), None, None, 400),
        (
            format!("/ipfs/{multi}?format=car&dag-scope=x"),
            None,
            None,
            400,
        ),
        (
            format!("/ipfs/{multi}?format=car&car-version=2"),
            None,
            None,
            400,
        ),
        (
            format!("/ipfs/{multi}?format=car&entity-bytes=5:9"),
            None,
            None,
            400,
        ),
        (format!("/ipfs/{multi}?format=dag-json"), None, None, 406),
        (format!("/ipfs/{multi}"), Some("text/html"), None, 406),
        (
            format!("/ipfs/{multi}"),
            Some("application/vnd.ipld.car; version=2"),
            None,
            406,
        ),
        ("/ipns/example.com".to_owned(), Some(RAW), None, 404),
    ] {
        let mut request = http.get(format!("{base}{path}"));
        if let Some(accept) = accept {
            request = request.header("Accept", accept);
        }
        if let Some((k, v)) = extra {
            request = request.header(k, v);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), status, "{path} {accept:?}");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        assert!(!r.text().await.unwrap().is_empty());
    }

    // a block that no longer verifies is never served
    let leaf = sections(&car)[2].0.clone();
    common::flip_byte(&common::block_path(store.path(), &leaf), 3);
    let r = get(&format!("/ipfs/{leaf}?format=raw"), None)
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    // in a CAR it ends the stream early (the connection is cut; with so small a CAR, before the
    // response head is flushed): the client sees a failed transfer, never the bad block
    let err = read_all(&client(&base), &multi, multi_bytes.len() as u64)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
}

// ---------------------------------------------------------------------------------------------
// hostile gateways

/// The sections of a CAR: the header (CID "") then each block as (CID, whole section bytes
/// including its length prefix).
fn sections(car: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < car.len() {
        let start = pos;
        let (mut len, mut shift) = (0u64, 0);
        loop {
            let b = car[pos];
            pos += 1;
            len |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        let end = pos + len as usize;
        let cid = if start == 0 {
            String::new()
        } else {
            let mut body = &car[pos..end];
            cid::Cid::read_bytes(&mut body).unwrap().to_string()
        };
        out.push((cid, car[start..end].to_vec()));
        pos = end;
    }
    out
}

fn join(sections: &[(String, Vec<u8>)]) -> Vec<u8> {
    sections.iter().flat_map(|s| s.1.clone()).collect()
}

/// What the scripted gateway answers to one request.
#[derive(Clone)]
struct Reply {
    status: u16,
    content_type: String,
    body: Vec<u8>,
    /// Send this many body bytes, then nothing (until the client gives up).
    stall_after: Option<usize>,
}

fn reply(content_type: &str, body: Vec<u8>) -> Reply {
    Reply {
        status: 200,
        content_type: content_type.to_owned(),
        body,
        stall_after: None,
    }
}

type Script = Arc<dyn Fn(&str) -> Reply + Send + Sync>;

/// A tiny HTTP/1.1 server on 127.0.0.1 answering each request by `script(target)`, with
/// `Connection: close` and no length (the body ends when the connection closes). Stops on drop.
struct ScriptedGateway {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl ScriptedGateway {
    fn start(script: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script: Script = Arc::new(script);
        let thread = {
            let stop = Arc::clone(&stop);
            let requests = Arc::clone(&requests);
            std::thread::spawn(move || {
                let started = Instant::now();
                while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(120) {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            let script = Arc::clone(&script);
                            let stop = Arc::clone(&stop);
                            let requests = Arc::clone(&requests);
                            std::thread::spawn(move || answer(conn, &script, &stop, &requests));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        ScriptedGateway {
            addr,
            stop,
            thread: Some(thread),
            requests,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for ScriptedGateway {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn answer(mut conn: TcpStream, script: &Script, stop: &AtomicBool, log: &Mutex<Vec<String>>) {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        if conn.read(&mut byte).unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut request_line = head.lines().next().unwrap_or("").split(' ');
    let method = request_line.next().unwrap_or("").to_owned();
    let target = request_line.next().unwrap_or("").to_owned();
    log.lock().unwrap().push(format!("{method} {target}"));
    let r = script(&target);
    let _ = write!(
        conn,
        "HTTP/1.1 {} X\r\nContent-Type: {}\r\nConnection: close\r\n\r\n",
        r.status, r.content_type
    );
    if method == "HEAD" {
        return;
    }
    let sent = r.stall_after.unwrap_or(r.body.len()).min(r.body.len());
    let _ = conn.write_all(&r.body[..sent]);
    let _ = conn.flush();
    if r.stall_after.is_some() {
        let started = Instant::now();
        while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A multi-block file in an embedded store behind our server, and its CAR (dups=y) and blocks.
struct Fixture {
    _dir: tempfile::TempDir,
    cid: String,
    bytes: Vec<u8>,
    car: Vec<u8>,
    store: EmbeddedStore,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (store, added) = embedded_with_files(dir.path(), Profile::UnixfsV1_2025).await;
    let (_, cid, bytes) = added.into_iter().find(|f| f.0 == "multi").unwrap();
    let base = serve(Arc::new(store.clone())).await;
    let car = car_bytes(&base, &cid, "&car-dups=y").await;
    Fixture {
        _dir: dir,
        cid,
        bytes,
        car,
        store,
    }
}

const CAR_DFS_Y: &str = "application/vnd.ipld.car; version=1; order=dfs; dups=y";

/// A gateway sending `car` for CAR requests and the store's blocks for raw ones.
fn gateway_with(f: &Fixture, car: Vec<u8>, content_type: &str) -> ScriptedGateway {
    let store = f.store.clone();
    let content_type = content_type.to_owned();
    let runtime = tokio::runtime::Handle::current();
    ScriptedGateway::start(move |target| {
        if target.contains("format=car") {
            return reply(&content_type, car.clone());
        }
        let cid = target
            .trim_start_matches("/ipfs/")
            .split('?')
            .next()
            .unwrap()
            .to_owned();
        match runtime.block_on(store.get_block(&cid)) {
            Ok(block) => reply(RAW, block),
            Err(_) => Reply {
                status: 404,
                content_type: "text/plain".into(),
                body: b"not found".to_vec(),
                stall_after: None,
            },
        }
    })
}

async fn get_from(gw: &ScriptedGateway, f: &Fixture) -> Result<Vec<u8>, StoreError> {
    read_all(&client(&gw.url()), &f.cid, f.bytes.len() as u64).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_gateways_are_caught() {
    let f = fixture().await;
    let parts = sections(&f.car);
    assert_eq!(parts.len(), 1 + 1 + 4, "header, root, 4 leaves");

    // the honest script works, in one CAR request
    let gw = gateway_with(&f, f.car.clone(), CAR_DFS_Y);
    assert_eq!(get_from(&gw, &f).await.unwrap(), f.bytes);
    assert_eq!(gw.requests().len(), 1, "{:?}", gw.requests());

    // one flipped byte in a leaf
    let mut bad = parts.clone();
    let last = bad[3].1.len() - 10;
    bad[3].1[last] ^= 1;
    let gw = gateway_with(&f, join(&bad), CAR_DFS_Y);
    let err = get_from(&gw, &f).await.unwrap_err();
    assert!(matches!(err, StoreError::BlockMismatch { .. }), "{err}");
    assert!(err.is_bad_data());

    // a foreign (well-formed, correctly hashed) block in the middle
    let other = fwledger_store::cid_of_reader(&b"foreign"[..], Profile::default()).unwrap();
    let foreign = {
        let cid: cid::Cid = other.parse().unwrap();
        let mut section = cid.to_bytes();
        section.extend_from_slice(b"foreign");
        let mut out = vec![section.len() as u8];
        out.extend_from_slice(&section);
        (other.clone(), out)
    };
    let mut bad = parts.clone();
    bad.insert(3, foreign.clone());
    let gw = gateway_with(&f, join(&bad), CAR_DFS_Y);
    let err = get_from(&gw, &f).await.unwrap_err();
    assert!(matches!(err, StoreError::Malformed(_)), "{err}");
    assert!(err.to_string().contains(&other), "{err}");

    // an extra block after the file's last one
    let mut bad = parts.clone();
    bad.push(foreign.clone());
    let gw = gateway_with(&f, join(&bad), CAR_DFS_Y);
    let err = get_from(&gw, &f).await.unwrap_err();
    assert!(
        err.to_string().contains("after the file's last block"),
        "{err}"
    );
    // … or trailing junk
    let mut junk = f.car.clone();
    junk.extend_from_slice(&[0xff; 12]);
    let gw = gateway_with(&f, junk, CAR_DFS_Y);
    let err = get_from(&gw, &f).await.unwrap_err();
    assert!(matches!(err, StoreError::Malformed(_)), "{err}");

    // a section length far beyond one block
    let mut huge = join(&parts[..3]);
    huge.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x01]);
    let gw = gateway_with(&f, huge, CAR_DFS_Y);
    let err = get_from(&gw, &f).await.unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");

    // truncated: mid-section, and at a section boundary
    for cut in [f.car.len() - 1000, join(&parts[..4]).len()] {
        let gw = gateway_with(&f, f.car[..cut].to_vec(), CAR_DFS_Y);
        let err = get_from(&gw, &f).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    // stalls after the second leaf: fails within the idle timeout
    let gw = ScriptedGateway::start({
        let car = f.car.clone();
        let cut = join(&parts[..4]).len() + 100;
        move |_| Reply {
            stall_after: Some(cut),
            ..reply(CAR_DFS_Y, car.clone())
        }
    });
    let started = Instant::now();
    let err = get_from(&gw, &f).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    assert!(err.to_string().contains("stalled"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(15));
    drop(gw);

    // a raw block that is not the block asked for
    let gw = ScriptedGateway::start(|_| reply(RAW, b"not your block".to_vec()));
    let err = read_all(&client(&gw.url()).blocks_only(true), &f.cid, 1 << 30)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::BlockMismatch { .. }), "{err}");
    let err = client(&gw.url()).get_block(&f.cid).await.unwrap_err();
    assert!(matches!(err, StoreError::BlockMismatch { .. }), "{err}");

    // an HTML page instead of a block: not a trustless gateway
    let gw = ScriptedGateway::start(|_| reply("text/html", b"<html>hi</html>".to_vec()));
    let err = read_all(&client(&gw.url()), &f.cid, 1 << 30)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a trustless gateway"), "{err}");

    // too much data in a raw reply: refused at the block size limit, not buffered
    let gw = ScriptedGateway::start(|_| reply(RAW, vec![7u8; 3 * 1024 * 1024]));
    let err = client(&gw.url()).get_block(&f.cid).await.unwrap_err();
    assert!(matches!(err, StoreError::BlockMismatch { .. }), "{err}");

    // a raw reply that stalls
    let gw = ScriptedGateway::start(|_| Reply {
        stall_after: Some(10),
        ..reply(RAW, vec![7u8; 100])
    });
    let err = client(&gw.url()).get_block(&f.cid).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    drop(gw);

    // 404
    let gw = ScriptedGateway::start(|_| Reply {
        status: 404,
        ..reply("text/plain", b"no".to_vec())
    });
    let err = read_all(&client(&gw.url()), &f.cid, 1 << 30)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
}

/// Gateways that answer with other CAR variants still give a verified file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_adapts_to_car_variants() {
    let dir = tempfile::tempdir().unwrap();
    let (store, added) = embedded_with_files(dir.path(), Profile::UnixfsV0_2015).await;
    let base = serve(Arc::new(store.clone())).await;
    let (_, zeros, zero_bytes) = added.into_iter().find(|f| f.0 == "zeros").unwrap();
    let f = Fixture {
        _dir: dir,
        car: car_bytes(&base, &zeros, "&car-dups=n").await,
        cid: zeros,
        bytes: zero_bytes,
        store,
    };
    // dups=n: the repeated leaf is fetched once more as a raw block
    let gw = gateway_with(
        &f,
        f.car.clone(),
        "application/vnd.ipld.car; version=1; order=dfs; dups=n",
    );
    assert_eq!(get_from(&gw, &f).await.unwrap(), f.bytes);
    let requests = gw.requests();
    assert!(requests[0].contains("format=car"), "{requests:?}");
    assert!(
        requests[1..].iter().all(|r| r.contains("format=raw")) && requests.len() > 1,
        "{requests:?}"
    );

    // no dups parameter, and the gateway does repeat blocks: tolerated
    let with_dups = car_bytes(&base, &f.cid, "&car-dups=y").await;
    let gw = gateway_with(
        &f,
        with_dups,
        "application/vnd.ipld.car; version=1; order=dfs",
    );
    assert_eq!(get_from(&gw, &f).await.unwrap(), f.bytes);

    // no order: blocks one by one instead
    let gw = gateway_with(&f, f.car.clone(), "application/vnd.ipld.car; version=1");
    assert_eq!(get_from(&gw, &f).await.unwrap(), f.bytes);
    let requests = gw.requests();
    assert!(
        requests[1..].iter().all(|r| r.contains("format=raw")),
        "{requests:?}"
    );
}

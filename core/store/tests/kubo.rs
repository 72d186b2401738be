//! `KuboStore` against real Kubo daemons on 127.0.0.1, in private swarms (never the public
//! network). Kubo: `$FWLEDGER_KUBO` or `ipfs` on PATH (`scripts/install-kubo.sh` builds one);
//! the tests skip without it unless `FWLEDGER_REQUIRE_KUBO=1`.

#![cfg(feature = "kubo")]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::kubo::{swarm_key, KuboDaemon};
use common::{kubo_or_skip, splitmix64_bytes, KuboRepo};
use futures::TryStreamExt;
use fwledger_store::{
    cid_of_file, cid_of_reader, ContentStore, KuboStore, KuboTimeouts, Profile, StoreError,
};

/// Three and a bit MiB: 4 leaves under `unixfs-v1-2025`, 13 under `unixfs-v0-2015`.
const MULTI_BLOCK: usize = 3 * 1024 * 1024 + 17;

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

async fn read_all(store: &dyn ContentStore, cid: &str, max: u64) -> Result<Vec<u8>, StoreError> {
    let chunks: Vec<Vec<u8>> = store.get(cid, max).await?.try_collect().await?;
    Ok(chunks.concat())
}

fn short(api: &str) -> KuboStore {
    let timeouts = KuboTimeouts::default()
        .with_connect(Duration::from_secs(2))
        .with_request(Duration::from_secs(3));
    KuboStore::with_timeouts(api, timeouts).unwrap()
}

/// A CID nobody has: the raw-leaf CID of fresh random bytes.
fn absent_cid() -> String {
    cid_of_reader(&swarm_key().into_bytes()[..], Profile::UnixfsV1_2025).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_gives_kubos_cid_and_cid_of_file_in_both_profiles() {
    let Some(bin) = kubo_or_skip("add_gives_kubos_cid_and_cid_of_file_in_both_profiles") else {
        return;
    };
    let node = KuboDaemon::start(&bin, &swarm_key());
    let store = KuboStore::new(node.api_url()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("empty", Vec::new()),
        ("small", b"hello world".to_vec()),
        ("multi", splitmix64_bytes(7, MULTI_BLOCK)),
    ] {
        let path = write_file(dir.path(), name, &bytes);
        for profile in Profile::ALL {
            let seen = Arc::new(AtomicU64::new(0));
            let progress = {
                let seen = Arc::clone(&seen);
                move |n: u64| seen.store(n, Ordering::SeqCst)
            };
            let added = store
                .add_file(&path, profile, Some(&progress))
                .await
                .unwrap();
            assert_eq!(
                added.cid,
                cid_of_file(&path, profile).unwrap(),
                "{name} {profile}"
            );
            // Kubo's own CLI with the profile applied as repo config agrees
            let kubo = KuboRepo::new(&bin, profile).only_hash(&bytes[..]);
            assert_eq!(added.cid, kubo, "{name} {profile}");
            assert_eq!(added.size, bytes.len() as u64);
            assert_eq!(seen.load(Ordering::SeqCst), bytes.len() as u64);
            assert!(store.has(&added.cid).await.unwrap());
            store.pin(&added.cid).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_round_trips_a_multi_block_file_through_open() {
    let Some(bin) = kubo_or_skip("get_round_trips_a_multi_block_file_through_open") else {
        return;
    };
    let node = KuboDaemon::start(&bin, &swarm_key());
    let home = tempfile::tempdir().unwrap();
    let store = fwledger_store::open(&node.store_url(), home.path()).unwrap();
    let bytes = splitmix64_bytes(11, MULTI_BLOCK);
    let path = write_file(home.path(), "image.bin", &bytes);
    for profile in Profile::ALL {
        let added = store.add_file(&path, profile, None).await.unwrap();
        let chunks: Vec<Vec<u8>> = store
            .get(&added.cid, bytes.len() as u64)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert!(chunks.len() >= 4, "{profile}: {} chunks", chunks.len());
        assert!(chunks.concat() == bytes, "{profile}: bytes differ");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_size_is_enforced() {
    let Some(bin) = kubo_or_skip("max_size_is_enforced") else {
        return;
    };
    let node = KuboDaemon::start(&bin, &swarm_key());
    let store = KuboStore::new(node.api_url()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bytes = splitmix64_bytes(3, MULTI_BLOCK);
    let path = write_file(dir.path(), "big", &bytes);
    for profile in Profile::ALL {
        let added = store.add_file(&path, profile, None).await.unwrap();
        let err = read_all(&store, &added.cid, bytes.len() as u64 - 1)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::TooLarge { .. }),
            "{profile}: {err}"
        );
        assert_eq!(
            read_all(&store, &added.cid, bytes.len() as u64)
                .await
                .unwrap()
                .len(),
            bytes.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absent_block_is_not_served_and_fails_within_the_timeout() {
    let Some(bin) = kubo_or_skip("absent_block_is_not_served_and_fails_within_the_timeout") else {
        return;
    };
    let node = KuboDaemon::start(&bin, &swarm_key());
    let store = short(node.api_url());
    let cid = absent_cid();
    let start = Instant::now();
    assert!(!store.has(&cid).await.unwrap());
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );

    let start = Instant::now();
    let err = read_all(&store, &cid, 1 << 20).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Unavailable(_) | StoreError::NotFound { .. }
        ),
        "{err}"
    );
    assert!(!err.is_bad_data(), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn kubo_down_is_unavailable_quickly() {
    // a port that was just free: nothing listens there
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = short(&format!("http://127.0.0.1:{port}"));
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "f", b"firmware");
    let start = Instant::now();
    let cid = cid_of_file(&path, Profile::default()).unwrap();
    let errors = [
        store
            .add_file(&path, Profile::default(), None)
            .await
            .unwrap_err(),
        store.get(&cid, 1024).await.err().unwrap(),
        store.has(&cid).await.unwrap_err(),
        store.pin(&cid).await.unwrap_err(),
    ];
    for err in errors {
        assert!(
            matches!(&err, StoreError::Unavailable(m) if m.contains("connect")),
            "{err}"
        );
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

/// A loopback stand-in for a Kubo RPC API that answers every request with `status` and `body`
/// (for misbehaviour a real Kubo cannot be made to show).
fn fake_kubo(status: &'static str, body: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            read_request(&mut conn);
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(body);
        }
    });
    format!("http://{addr}")
}

/// Reads one request: the headers, and a chunked body (as `add` sends) to its last chunk.
fn read_request(conn: &mut std::net::TcpStream) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut request = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    while let Ok(n @ 1..) = conn.read(&mut buf) {
        request.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&request);
        if let Some(end) = text.find("\r\n\r\n") {
            let chunked = text[..end].to_ascii_lowercase().contains("chunked");
            if !chunked || request.ends_with(b"\r\n0\r\n\r\n") {
                return;
            }
        }
    }
}

/// A node whose `add` answers another CID than the profile gives is refused.
#[tokio::test]
async fn node_computing_another_cid_is_refused() {
    let body = br#"{"Name":"file","Hash":"bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am","Size":"6"}"#;
    let store = short(&fake_kubo("200 OK", body));
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "f", &splitmix64_bytes(5, 100_000));
    let err = store
        .add_file(&path, Profile::default(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Malformed(m) if m.contains("kubo computed another CID")),
        "{err}"
    );
}

/// A compromised node answers `block/get` with other bytes: the walk rejects them before any
/// byte is yielded.
#[tokio::test]
async fn hostile_node_block_is_block_mismatch() {
    let store = short(&fake_kubo("200 OK", b"malware!"));
    let cid = cid_of_reader(&b"firmware"[..], Profile::UnixfsV1_2025).unwrap();
    let err = store.get(&cid, 1024).await.err().unwrap();
    assert!(matches!(err, StoreError::BlockMismatch { .. }), "{err}");
    assert!(err.is_bad_data());
}

/// Kubo's `{"Message": …}` error replies reach the caller.
#[tokio::test]
async fn kubo_error_message_is_surfaced() {
    let body = br#"{"Message":"pin: out of disk quota","Code":0,"Type":"error"}"#;
    let store = short(&fake_kubo("500 Internal Server Error", body));
    let cid = cid_of_reader(&b"firmware"[..], Profile::UnixfsV1_2025).unwrap();
    let err = store.pin(&cid).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Unavailable(m) if m.contains("pin: out of disk quota")),
        "{err}"
    );
}

#[tokio::test]
async fn kubo_store_urls() {
    let home = tempfile::tempdir().unwrap();
    assert!(fwledger_store::open("kubo+http://127.0.0.1:5001", home.path()).is_ok());
    assert!(fwledger_store::open("kubo+https://kubo.example", home.path()).is_ok());
    let err = fwledger_store::open("kubo+ftp://127.0.0.1:5001", home.path())
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::Unsupported(_)), "{err}");
    let err = KuboStore::new("http://127.0.0.1:5001/?x").unwrap_err();
    assert!(matches!(err, StoreError::Unsupported(_)), "{err}");
}

/// The paper's setting: vendor and gateway nodes share only a swarm key; the gateway's node
/// fetches over bitswap a release only the vendor's node holds. A node with another key cannot
/// join.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_swarm_serves_a_file_only_the_vendor_holds() {
    let Some(bin) = kubo_or_skip("private_swarm_serves_a_file_only_the_vendor_holds") else {
        return;
    };
    let key = swarm_key();
    let vendor = KuboDaemon::start(&bin, &key);
    let gateway = KuboDaemon::start(&bin, &key);
    let outsider = KuboDaemon::start(&bin, &swarm_key());

    let dir = tempfile::tempdir().unwrap();
    let bytes = splitmix64_bytes(21, MULTI_BLOCK);
    let path = write_file(dir.path(), "release.bin", &bytes);
    let vendor_store = KuboStore::new(vendor.api_url()).unwrap();
    let gateway_store = short(gateway.api_url());
    let outsider_store = short(outsider.api_url());
    let added = vendor_store
        .add_file(&path, Profile::default(), None)
        .await
        .unwrap();
    assert!(!gateway_store.has(&added.cid).await.unwrap());

    gateway
        .connect(&vendor)
        .unwrap_or_else(|e| panic!("swarm connect: {e}\n{}", gateway.log()));
    assert!(gateway.peers().contains(&vendor.peer_id()));
    let got = read_all(&gateway_store, &added.cid, bytes.len() as u64)
        .await
        .unwrap();
    assert!(got == bytes, "bytes differ");
    assert!(gateway_store.has(&added.cid).await.unwrap());
    gateway_store.pin(&added.cid).await.unwrap();

    let refused = outsider.connect(&vendor);
    assert!(refused.is_err(), "a node with another swarm key connected");
    assert!(!outsider.peers().contains(&vendor.peer_id()));
    let err = read_all(&outsider_store, &added.cid, bytes.len() as u64)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
}

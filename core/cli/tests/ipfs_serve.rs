//! `fwledger ipfs serve` (the vendor's store as a trustless gateway) read by
//! `fwledger --store http://…`: a published release fetched and verified over HTTP on 127.0.0.1.

mod common;
use common::*;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// `fwledger ipfs serve` on a free loopback port; killed on drop (also when the test fails).
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(home: &Path) -> Server {
        let mut child = fwledger(home)
            .args(["ipfs", "serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut server = Server {
            child,
            url: String::new(),
        };
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("fwledger ipfs serve printed no address within 60 s");
        server.url = line
            .trim()
            .strip_prefix("trustless gateway on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        assert!(server.url.starts_with("http://127.0.0.1:"), "{line}");
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn fetch_a_release_through_fwledger_ipfs_serve() {
    let dir = tempfile::tempdir().unwrap();
    let vendor = dir.path().join("vendor");
    ok(&vendor, &["vendor", "init", "--name", "acme"]);
    // several 1 MiB leaves under the default profile
    let image = dir.path().join("fw.bin");
    let bytes: Vec<u8> = (0..3 * 1024 * 1024 + 123u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&image, &bytes).unwrap();
    let out = ok(
        &vendor,
        &[
            "vendor",
            "publish",
            image.to_str().unwrap(),
            "--model",
            "lamp",
            "--hw",
            "rev-a",
            "--version",
            "2.0.0",
            "--security-version",
            "1",
            "--json",
        ],
    );
    let release: serde_json::Value = serde_json::from_str(&out).unwrap();
    let cid = release["cid"].as_str().unwrap();
    assert_eq!(ok(&vendor, &["cid", image.to_str().unwrap()]).trim(), cid);
    let key = ok(&vendor, &["vendor", "key"]).trim().to_owned();

    let server = Server::start(&vendor);
    // a gateway with nothing of its own, reading the vendor's store over HTTP
    let gateway = dir.path().join("gateway");
    let fetched = dir.path().join("fetched.bin");
    let fetch = |store: &str| {
        run(
            &gateway,
            &[
                "--store",
                store,
                "fetch",
                "--manifest",
                release["manifest_path"].as_str().unwrap(),
                "--vendor-key",
                &key,
                "--out",
                fetched.to_str().unwrap(),
            ],
        )
    };
    let out = fetch(&server.url);
    assert!(
        out.status.success(),
        "fetch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::read(&fetched).unwrap() == bytes,
        "fetched image differs"
    );
    assert!(!gateway.join("store").exists(), "nothing stored locally");

    // a gateway is read-only: publishing to it fails with a clear message
    let other = dir.path().join("other");
    ok(&other, &["vendor", "init", "--name", "other"]);
    let out = run(
        &other,
        &[
            "--store",
            &server.url,
            "vendor",
            "publish",
            image.to_str().unwrap(),
            "--model",
            "lamp",
            "--hw",
            "rev-a",
            "--version",
            "1.0.0",
            "--security-version",
            "1",
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("read-only"), "{stderr}");

    // gone: a clear "unavailable" error, quickly
    drop(server);
    let out = fetch(&format!("http://127.0.0.1:{}", free_port()));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot connect"), "{stderr}");
}

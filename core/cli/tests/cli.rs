//! The `fwledger` binary as users run it.

mod common;
use common::*;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn vendor(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    ok(&home, &["vendor", "init", "--name", name]);
    let image = dir.path().join("fw.bin");
    std::fs::write(&image, vec![0x5a; 300_000]).unwrap();
    (dir, home)
}

fn publish(home: &Path, image: &Path, version: &str) -> serde_json::Value {
    let out = ok(
        home,
        &[
            "vendor",
            "publish",
            image.to_str().unwrap(),
            "--model",
            "lamp",
            "--hw",
            "rev-a,rev-b",
            "--version",
            version,
            "--security-version",
            "3",
            "--json",
        ],
    );
    serde_json::from_str(&out).unwrap()
}

#[test]
fn publish_json_and_verify() {
    let (dir, home) = vendor("acme");
    let image = dir.path().join("fw.bin");
    let release = publish(&home, &image, "1.0.0");
    for field in ["seq", "version", "cid", "sha256", "size", "manifest_path"] {
        assert!(
            release.get(field).is_some(),
            "publish --json lacks {field}: {release}"
        );
    }
    assert_eq!(release["size"], 300_000);
    assert_eq!(release["version"], "1.0.0");
    let cid = ok(&home, &["cid", image.to_str().unwrap()]);
    assert_eq!(cid.trim(), release["cid"].as_str().unwrap());

    let key = ok(&home, &["vendor", "key"]).trim().to_string();
    assert_eq!(key.len(), 64);
    let manifest = release["manifest_path"].as_str().unwrap();
    let verify = |image: &Path, extra: &[&str]| {
        let mut args = vec![
            "verify",
            "--manifest",
            manifest,
            "--image",
            image.to_str().unwrap(),
            "--vendor-key",
            &key,
        ];
        args.extend_from_slice(extra);
        run(&home, &args)
    };
    let good = verify(
        &image,
        &["--model", "lamp", "--hw", "rev-b", "--current", "0.9.0"],
    );
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );

    let mut bytes = std::fs::read(&image).unwrap();
    bytes[1234] ^= 0x01;
    let flipped = dir.path().join("flipped.bin");
    std::fs::write(&flipped, bytes).unwrap();
    for (image, extra, check) in [
        (flipped.as_path(), &[][..], "image-sha256"),
        (image.as_path(), &["--model", "fan"][..], "model"),
        (image.as_path(), &["--hw", "rev-z"][..], "hardware"),
        (image.as_path(), &["--current", "1.0.0"][..], "version"),
        (
            image.as_path(),
            &["--security-version", "4"][..],
            "security-version",
        ),
    ] {
        let out = verify(image, extra);
        assert!(!out.status.success(), "{check} passed");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.contains(&format!(": {check}: ")),
            "{check}: {stderr}"
        );
    }
    // Another vendor's key.
    let (_other_dir, other) = vendor("other");
    let other_key = ok(&other, &["vendor", "key"]).trim().to_string();
    let out = run(
        &home,
        &[
            "verify",
            "--manifest",
            manifest,
            "--image",
            image.to_str().unwrap(),
            "--vendor-key",
            &other_key,
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("release-key-certificate"));
    // Garbage key: a clear error, not a panic.
    let out = run(
        &home,
        &[
            "verify",
            "--manifest",
            manifest,
            "--image",
            image.to_str().unwrap(),
            "--vendor-key",
            "xyz",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("64 hex characters"));
}

#[test]
fn channel_read_with_token() {
    let (dir, home) = vendor("acme");
    let image = dir.path().join("fw.bin");
    publish(&home, &image, "1.0.0");
    ok(&home, &["vendor", "heartbeat", "--valid", "1h"]);
    ok(
        &home,
        &[
            "vendor",
            "revoke",
            "--version",
            "1.0.0",
            "--reason",
            "bad build",
        ],
    );
    let token = ok(&home, &["vendor", "token", "--gateway", "hub"])
        .trim()
        .to_string();
    assert!(token.starts_with("fwl1"));

    let out = ok(&home, &["channel", "read", &token, "--json"]);
    let entries: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["release", "heartbeat", "revoke"]);
    assert_eq!(entries[0]["model"], "lamp");
    assert_eq!(entries[2]["reason"], "bad build");

    let history = ok(&home, &["vendor", "history", "--json"]);
    let history: Vec<serde_json::Value> = serde_json::from_str(&history).unwrap();
    assert_eq!(history.len(), 3);

    // A mistyped token is refused with a clear error.
    let mut bad = token.clone();
    bad.replace_range(20..21, if &token[20..21] == "A" { "B" } else { "A" });
    let out = run(&home, &["channel", "read", &bad]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("checksum"));

    // Revoked gateways see the new epoch as unreadable.
    ok(&home, &["vendor", "rotate-key", "--revoke", "hub"]);
    publish(&home, &image, "1.0.1");
    let out = ok(&home, &["channel", "read", &token, "--json"]);
    let entries: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(entries.last().unwrap()["kind"], "rejected");
    assert_eq!(entries.last().unwrap()["check"], "epoch-key");
}

#[test]
fn follower_in_another_process_sees_the_release() {
    let (dir, home) = vendor("acme");
    let image = dir.path().join("fw.bin");
    let token = ok(&home, &["vendor", "token"]).trim().to_string();
    let mut follower = fwledger(&home)
        .args([
            "channel",
            "read",
            &token,
            "--follow",
            "--json",
            "--idle-timeout",
            "20s",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    // Give the follower time to open the ledger, then publish from another process.
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let release = publish(&home, &image, "3.0.0");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let waited = started.elapsed();
    let _ = follower.kill();
    let _ = follower.wait();
    let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(entry["kind"], "release");
    assert_eq!(entry["cid"], release["cid"]);
    assert!(waited < Duration::from_secs(20), "follower took {waited:?}");
}

#[test]
fn cid_profiles_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hello.txt");
    std::fs::write(&file, "hello world").unwrap();
    // Kubo's published vector (test/cli/cid_profiles_test.go) for "hello world".
    let v0 = ok(
        dir.path(),
        &["cid", file.to_str().unwrap(), "--profile", "unixfs-v0-2015"],
    );
    assert_eq!(v0.trim(), "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD");
    let out = run(
        dir.path(),
        &["cid", file.to_str().unwrap(), "--profile", "nope"],
    );
    assert!(!out.status.success());
    let out = run(dir.path(), &["cid", "/nonexistent/file"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/file"));
}

#[test]
fn a_closed_stdout_ends_quietly_like_sigpipe() {
    let (_dir, home) = vendor("Acme");
    // stdout is a pipe whose reading end is already closed, as in `fwledger … | head -0`.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = fwledger(&home)
        .args(["vendor", "key"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn commands_without_a_vendor_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["vendor", "key"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("vendor init"));
    let out = run(
        dir.path(),
        &["--ledger", "iota+https://example.invalid", "vendor", "key"],
    );
    assert!(!out.status.success());
}

#[test]
fn air_gapped_export_and_import() {
    let (dir, home) = vendor("acme");
    let image = dir.path().join("fw.bin");
    let release = publish(&home, &image, "1.0.0");
    let token = ok(&home, &["vendor", "token"]).trim().to_string();
    let export = dir.path().join("channel.fwl");
    ok(&home, &["vendor", "export", export.to_str().unwrap()]);
    let car = dir.path().join("fw.car");
    ok(
        &home,
        &[
            "car",
            "export",
            release["cid"].as_str().unwrap(),
            car.to_str().unwrap(),
        ],
    );

    // A gateway with its own, empty ledger and store.
    let gateway = dir.path().join("gateway");
    ok(&gateway, &["channel", "import", export.to_str().unwrap()]);
    let roots = ok(&gateway, &["car", "import", car.to_str().unwrap()]);
    assert_eq!(roots.trim(), release["cid"].as_str().unwrap());
    let entries: Vec<serde_json::Value> =
        serde_json::from_str(&ok(&gateway, &["channel", "read", &token, "--json"])).unwrap();
    assert_eq!(entries[0]["cid"], release["cid"]);
    let key = ok(&home, &["vendor", "key"]).trim().to_string();
    let out = dir.path().join("fetched.bin");
    ok(
        &gateway,
        &[
            "fetch",
            "--manifest",
            release["manifest_path"].as_str().unwrap(),
            "--vendor-key",
            &key,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&image).unwrap());
}

#[test]
fn demo_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(
        dir.path(),
        &[
            "demo",
            "--devices",
            "5",
            "--dir",
            dir.path().join("demo").to_str().unwrap(),
        ],
    );
    assert!(
        out.contains("done: 5/5 devices on smart-lamp 1.1.0"),
        "{out}"
    );
    assert!(out.contains("web UI: https://127.0.0.1:"), "{out}");
}

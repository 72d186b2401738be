//! The exported API on the shared test vectors, and the drift check of the checked-in Swift
//! bindings (`bindings/swift/`; `FWLEDGER_BLESS=1` rewrites them).

use std::path::{Path, PathBuf};
use std::process::Command;

use fwledger_uniffi::{
    check_policy, decide, verify_manifest, DeviceState, Event, FollowError, ImageVerifier,
    PartialState, Token, TrustAnchor,
};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn vectors() -> Value {
    let text = std::fs::read_to_string(root().join("tests/vectors/proto.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn hex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn named<'a>(v: &'a Value, section: &str, name: &str) -> &'a Value {
    v[section]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap()
}

fn trust(v: &Value) -> TrustAnchor {
    TrustAnchor {
        root: hex(&named(v, "keys", "acme/root")["public"]),
        min_key_generation: 0,
    }
}

fn now(v: &Value) -> Option<u64> {
    v["times"]["now"].as_u64()
}

#[test]
fn manifest_vectors() {
    let v = vectors();
    let signed = hex(&named(&v, "manifests", "lamp-1.1.0")["signed"]);
    let verified = verify_manifest(signed, trust(&v), now(&v)).unwrap();
    assert_eq!(verified.manifest.version, "1.1.0");
    assert_eq!(verified.manifest.hardware.len(), 2);
    let mut negatives = 0;
    for case in v["negative"].as_array().unwrap() {
        if case["kind"] != "manifest" {
            continue;
        }
        let anchor = TrustAnchor {
            min_key_generation: case["min_key_generation"].as_u64().unwrap_or(0),
            ..trust(&v)
        };
        let err = verify_manifest(hex(&case["input"]), anchor, now(&v)).unwrap_err();
        assert_eq!(
            err.check(),
            case["expected"].as_str().unwrap(),
            "{}",
            case["name"]
        );
        negatives += 1;
    }
    assert_eq!(negatives, 14);
}

#[test]
fn policy_and_image() {
    let v = vectors();
    let signed = hex(&named(&v, "manifests", "lamp-1.1.0")["signed"]);
    let manifest = verify_manifest(signed, trust(&v), now(&v))
        .unwrap()
        .manifest;
    let device = DeviceState {
        model: "lamp".into(),
        hardware: "rev-b".into(),
        version: "1.0.0".into(),
        security_version: 1,
    };
    decide(manifest.clone(), device.clone(), now(&v)).unwrap();
    let old = DeviceState {
        version: "1.1.0".into(),
        ..device
    };
    assert_eq!(
        decide(manifest.clone(), old, now(&v)).unwrap_err().check(),
        "version"
    );
    let unknown = PartialState {
        model: None,
        hardware: None,
        version: Some("x".into()),
        security_version: 0,
    };
    assert_eq!(
        check_policy(manifest.clone(), unknown, None)
            .unwrap_err()
            .check(),
        "argument"
    );

    let image: Vec<u8> = (0..1000u32).map(|i| ((i * 7 + 3) % 256) as u8).collect();
    let verifier = ImageVerifier::for_manifest(manifest.clone()).unwrap();
    for chunk in image.chunks(100) {
        verifier.update(chunk.to_vec()).unwrap();
    }
    verifier.finish().unwrap();
    assert_eq!(verifier.finish().unwrap_err().check(), "argument");
    let mut flipped = image;
    flipped[500] ^= 1;
    let verifier = ImageVerifier::for_manifest(manifest).unwrap();
    verifier.update(flipped).unwrap();
    assert_eq!(verifier.finish().unwrap_err().check(), "image-sha256");
}

#[test]
fn reader_a_reads_the_channel() {
    let v = vectors();
    let text = named(&v, "tokens", "reader-a")["text"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = Token::from_text(text).unwrap();
    let follower = token.follower(Some(trust(&v).root)).unwrap();
    let mut kinds = Vec::new();
    for m in v["channel"]["messages"].as_array().unwrap() {
        let delivery = follower.ingest(hex(&m["wire"]), now(&v)).unwrap();
        assert_eq!(delivery.digest, hex(&m["digest"]));
        kinds.push(match delivery.event {
            Event::Release { .. } => "release",
            Event::Revoke { .. } => "revoke",
            Event::Heartbeat { .. } => "heartbeat",
            Event::Keyload { admitted: true, .. } => "keyload-admitted",
            Event::Keyload { .. } => "keyload-excluded",
        });
    }
    assert_eq!(
        kinds,
        [
            "release",
            "heartbeat",
            "revoke",
            "keyload-admitted",
            "release"
        ]
    );
    assert_eq!(follower.next_seq(), 5);
    let replay = hex(&v["channel"]["messages"][0]["wire"]);
    let err = follower.ingest(replay, now(&v)).unwrap_err();
    assert!(matches!(
        err,
        FollowError::Replayed {
            seq: 0,
            expected: 5
        }
    ));
    assert_eq!(err.check(), "replay");
    assert!(!err.advanced());
}

#[test]
fn token_vectors() {
    let v = vectors();
    for case in v["negative"].as_array().unwrap() {
        if case["kind"] != "token" {
            continue;
        }
        let text = String::from_utf8(hex(&case["input"])).unwrap();
        let pin = case.get("pinned_vendor").map(hex);
        let err = Token::from_text(text)
            .and_then(|t| t.follower(pin))
            .err()
            .unwrap();
        assert_eq!(
            err.check(),
            case["expected"].as_str().unwrap(),
            "{}",
            case["name"]
        );
    }
}

/// The files uniffi-bindgen writes for Swift.
const SWIFT_FILES: [&str; 3] = ["fwledger.swift", "fwledgerFFI.h", "fwledgerFFI.modulemap"];

#[test]
fn swift_bindings_up_to_date() {
    // The cdylib is built next to the uniffi-bindgen binary, in the same profile directory.
    let bindgen = PathBuf::from(env!("CARGO_BIN_EXE_uniffi-bindgen"));
    let dir = bindgen.parent().unwrap();
    let lib = [
        "libfwledger_uniffi.so",
        "libfwledger_uniffi.dylib",
        "fwledger_uniffi.dll",
    ]
    .iter()
    .map(|name| dir.join(name))
    .find(|p| p.exists())
    .expect("the fwledger-uniffi cdylib next to uniffi-bindgen: run `cargo build -p fwledger-uniffi` first");
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(&bindgen)
        .arg("generate")
        .arg(&lib)
        .args(["--language", "swift", "--no-format", "--out-dir"])
        .arg(out.path())
        .current_dir(root())
        .status()
        .unwrap();
    assert!(status.success(), "uniffi-bindgen failed: {status}");

    let checked_in = root().join("bindings/swift");
    let bless = std::env::var_os("FWLEDGER_BLESS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for name in SWIFT_FILES {
        let fresh = std::fs::read_to_string(out.path().join(name)).unwrap();
        let path = checked_in.join(name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(fresh.as_str()) {
            if bless {
                std::fs::write(&path, fresh).unwrap();
            } else {
                stale.push(name);
            }
        }
    }
    assert!(
        stale.is_empty(),
        "bindings/swift is out of date ({stale:?}); regenerate with \
         FWLEDGER_BLESS=1 cargo test -p fwledger-uniffi --test bindings swift_bindings_up_to_date"
    );
}

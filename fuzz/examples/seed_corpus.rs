//! Writes genuine seed inputs for every fuzz target into `fuzz/corpus/<target>/seed-*`:
//! `cargo run -p fwledger-fuzz --example seed_corpus [DIR]` (default: this crate's `corpus/`).
//! The seeds are deterministic (fixed keys, seeded RNG); fuzzing grows the corpus from them and
//! `cargo fuzz cmin` keeps it small.

use std::path::{Path, PathBuf};

use fwledger_fuzz::{car_of, encode_records, world, NOW};
use fwledger_proto::channel::{ChainPosition, Heartbeat, Kind, ReleaseBody, Revocation};
use fwledger_proto::notice::Notice;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn write(dir: &Path, target: &str, name: &str, data: &[u8]) {
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir).expect("corpus directory");
    std::fs::write(dir.join(format!("seed-{name}")), data).expect("seed");
}

/// Protobuf varint.
fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn field(tag: u8, bytes: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// A dag-pb UnixFS file node: `data` inline, or links to raw leaves.
fn unixfs_file(inline: &[u8], leaves: &[&[u8]]) -> Vec<u8> {
    let mut node = Vec::new();
    for leaf in leaves {
        let mut link = Vec::new();
        field(
            0x0a,
            &fwledger_fuzz::cid_v1(0x55, leaf).to_bytes(),
            &mut link,
        );
        field(0x12, b"", &mut link);
        link.push(0x18);
        varint(leaf.len() as u64, &mut link);
        field(0x12, &link, &mut node);
    }
    let mut data = vec![0x08, 0x02];
    if !inline.is_empty() {
        field(0x12, inline, &mut data);
    }
    let total: usize = inline.len() + leaves.iter().map(|l| l.len()).sum::<usize>();
    data.push(0x18);
    varint(total as u64, &mut data);
    for leaf in leaves {
        data.push(0x20);
        varint(leaf.len() as u64, &mut data);
    }
    field(0x0a, &data, &mut node);
    node
}

fn main() {
    let dir: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    let w = world();
    let mut rng = StdRng::seed_from_u64(42);

    let image = b"firmware image bytes";
    let mut manifest = w.manifest_for(image);
    let signed = manifest.sign(&w.release, &w.release_cert);
    manifest.prerequisite = Some("1.0.0".parse().expect("version"));
    manifest.hardware.push("rev-c".into());
    manifest.expires = None;
    let signed2 = manifest.sign(&w.release, &w.release_cert);
    let notice = Notice {
        manifest: signed.clone(),
        url: "https://127.0.0.1:8443/fw/0000000000000000000000000000000000000000000000000000000000000000".into(),
        gateway_time: Some(NOW),
    }
    .to_cbor();
    let release_body = ReleaseBody {
        manifest: signed.clone(),
    }
    .to_cbor();
    let revocation = Revocation {
        model: "lamp".into(),
        version: "1.1.0".into(),
        reason: "bricks rev-a".into(),
    }
    .to_cbor();
    let heartbeat = Heartbeat {
        time: NOW,
        valid_until: NOW + 3600,
    }
    .to_cbor();

    // cbor: every typed value.
    for (name, bytes) in [
        ("certificate", w.release_cert.clone()),
        ("manifest", w.manifest_for(image).to_cbor()),
        ("epoch-keys", w.keys.to_cbor()),
        ("token", w.token.to_cbor()),
        ("notice", notice.clone()),
        ("release-body", release_body.clone()),
        ("revocation", revocation.clone()),
        ("heartbeat", heartbeat.clone()),
        ("keyload", w.keyload_body.clone()),
    ] {
        write(&dir, "cbor", name, &bytes);
    }
    write(&dir, "manifest", "signed", &signed);
    write(&dir, "manifest", "signed-prerequisite", &signed2);
    write(
        &dir,
        "manifest_signed",
        "plain",
        &w.manifest_for(image).to_cbor(),
    );
    write(&dir, "manifest_signed", "prerequisite", &manifest.to_cbor());

    // channel messages
    let author = w.channel_author();
    let first = author
        .seal(
            ChainPosition::GENESIS,
            Kind::Release,
            &release_body,
            &mut rng,
        )
        .expect("seal");
    write(&dir, "channel_message", "release", &first);
    let beat = author
        .seal(
            ChainPosition::GENESIS,
            Kind::Heartbeat,
            &heartbeat,
            &mut rng,
        )
        .expect("seal");
    write(&dir, "channel_message", "heartbeat", &beat);
    let mut rotating = w.channel_author();
    let reader = fwledger_proto::channel::ReaderKey::from_bytes(w.reader).public();
    write(
        &dir,
        "channel_message",
        "keyload",
        &rotating.rotate(ChainPosition::GENESIS, &[reader], &mut rng),
    );
    write(
        &dir,
        "channel_feed",
        "history",
        &encode_records(&[
            (0, &release_body),
            (2, &heartbeat),
            (1, &revocation),
            (3, b""),
            (0, &release_body),
            (0x0b, b""),
            (2, &heartbeat),
            (0x04, &first),
        ]),
    );
    write(&dir, "keyload", "genuine", &w.keyload_body);
    write(&dir, "token", "text", w.token.to_text().as_bytes());
    write(&dir, "token", "cbor", &w.token.to_cbor());
    write(&dir, "notice", "genuine", &notice);

    // device link
    let bundle = fwledger_link::Bundle {
        format: fwledger_link::BUNDLE_FORMAT,
        device_id: "lamp-01".into(),
        mac: "02:00:00:00:00:01".into(),
        model: "lamp".into(),
        hardware: "rev-b".into(),
        mqtt_url: "mqtts://127.0.0.1:8883".into(),
        http_url: "https://127.0.0.1:8443".into(),
        sntp: Some("127.0.0.1:1123".into()),
        ca_cert_pem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
        device_cert_pem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
        device_key_pem: "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n".into(),
        vendors: vec![fwledger_link::TrustedVendor {
            name: "acme".into(),
            key: "11".repeat(32),
        }],
        wifi_ssid: Some("home".into()),
        wifi_password: None,
    };
    write(&dir, "bundle", "device", bundle.to_json().as_bytes());
    for (name, json) in [
        (
            "idle",
            r#"{"state":"idle","version":"1.0.0","security_version":1}"#,
        ),
        (
            "downloading",
            r#"{"state":"downloading","version":"1.0.0","security_version":1,"release":"1.1.0","progress":4096}"#,
        ),
        (
            "failed",
            r#"{"state":"failed","version":"1.0.0","security_version":1,"release":"1.1.0","reason":"sha256: mismatch","sha256":"00"}"#,
        ),
        (
            "confirmed",
            r#"{"state":"confirmed","version":"1.1.0","security_version":2,"release":"1.1.0"}"#,
        ),
    ] {
        write(&dir, "mqtt_status", name, json.as_bytes());
    }
    for kind in ["status", "check", "notice"] {
        write(
            &dir,
            "mqtt_topic",
            kind,
            format!("fwledger/v1/dev/lamp-01/{kind}").as_bytes(),
        );
    }

    // content: a single-block file, and a root with two raw leaves
    let single = unixfs_file(b"hello world\n", &[]);
    let (a, b): (&[u8], &[u8]) = (b"hello ", b"world\n");
    let root = unixfs_file(b"", &[a, b]);
    write(&dir, "car", "single", &car_of(&[(0x70, &single)]));
    write(
        &dir,
        "car",
        "two-leaves",
        &car_of(&[(0x70, &root), (0x55, a), (0x55, b)]),
    );
    write(&dir, "car", "raw", &car_of(&[(0x55, b"raw block")]));
    write(&dir, "unixfs", "single", &encode_records(&[(0, &single)]));
    write(
        &dir,
        "unixfs",
        "two-leaves",
        &encode_records(&[(0, &root), (1, a), (1, b)]),
    );

    // HTTP Range
    for (name, header) in [
        ("first", "bytes=0-99"),
        ("suffix", "bytes=-5"),
        ("open", "bytes=500-"),
    ] {
        let mut data = 1000u64.to_le_bytes().to_vec();
        data.extend_from_slice(header.as_bytes());
        write(&dir, "http_range", name, &data);
    }

    // C API: one seed per entry point
    let with = |op: u8, rest: &[u8]| [&[op][..], rest].concat();
    write(&dir, "c_api", "manifest-verify", &with(0, &signed));
    write(&dir, "c_api", "notice-verify", &with(1, &notice));
    write(&dir, "c_api", "notice-parse", &with(2, &notice));
    write(
        &dir,
        "c_api",
        "version-compare",
        &with(3, b"1.0.0\x001.2.0-rc.1"),
    );
    let mut raw = 11u64.to_le_bytes().to_vec();
    raw.extend_from_slice(b"hello world");
    write(&dir, "c_api", "image-verifier", &with(4, &raw));
    write(
        &dir,
        "c_api",
        "signed-manifest",
        &with(5, &w.manifest_for(image).to_cbor()),
    );
    println!("seed corpus written to {}", dir.display());
}

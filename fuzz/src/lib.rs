//! # fwledger-fuzz — fuzz harnesses for every decoder that reads bytes from outside
//!
//! One function per target, `fn(&[u8])`, that must return normally for *any* input: a panic, an
//! failed assertion, an out-of-bounds access or an abort is a finding. The same functions back
//!
//! * the libFuzzer binaries in `fuzz_targets/` (feature `libfuzzer`, built by `cargo fuzz` from
//!   `scripts/fuzz.sh` with nightly flags on the stable toolchain), and
//! * the replay test `tests/replay.rs`, which runs every file of the kept corpus
//!   (`fuzz/corpus/<target>/`) and every crash reproducer (`fuzz/regressions/<target>/`) on the
//!   ordinary stable build, so `cargo test --workspace` catches regressions without cargo-fuzz.
//!
//! The harnesses share one fixed, deterministic vendor ([`World`]): a root key, a certified
//! release key and channel author key, a reader key and a subscription token, so that inputs
//! can reach the code *behind* the signature checks (structure-aware targets sign what the
//! fuzzer wrote with the genuine keys). `examples/seed_corpus.rs` writes genuine seeds.

use std::ffi::CString;
use std::sync::OnceLock;

use ed25519_dalek::SigningKey;
use fwledger_proto::cbor::Decoder;
use fwledger_proto::channel::message;
use fwledger_proto::channel::{
    ChainPosition, ChannelAuthor, EpochKeys, Event, FollowError, Follower, Heartbeat, Keyload,
    Kind, ReaderKey, ReleaseBody, Revocation, Token,
};
use fwledger_proto::cose;
use fwledger_proto::image::ImageVerifier;
use fwledger_proto::keys::{KeyCertificate, Role};
use fwledger_proto::manifest::{verify_manifest, Manifest, TrustAnchor};
use fwledger_proto::notice::Notice;
use fwledger_proto::policy::{decide, DeviceState};
use fwledger_proto::version::Version;
use rand::rngs::StdRng;
use rand::SeedableRng;
use sha2::{Digest, Sha256};

/// The clock every harness uses (Unix seconds): inside the validity of the [`World`]'s keys.
pub const NOW: u64 = 1_700_000_100;

/// A harness: must return normally for any input.
pub type Harness = fn(&[u8]);

/// Every target: its name (the directory under `fuzz/corpus/` and the `fuzz_targets/` file) and
/// its harness.
pub const TARGETS: &[(&str, Harness)] = &[
    ("cbor", cbor),
    ("manifest", manifest),
    ("manifest_signed", manifest_signed),
    ("channel_message", channel_message),
    ("channel_feed", channel_feed),
    ("keyload", keyload),
    ("token", token),
    ("notice", notice),
    ("bundle", bundle),
    ("mqtt_status", mqtt_status),
    ("mqtt_topic", mqtt_topic),
    ("car", car),
    ("unixfs", unixfs),
    ("http_range", http_range),
    ("c_api", c_api),
];

/// The fixed vendor all harnesses share.
pub struct World {
    /// Vendor root key.
    pub root: SigningKey,
    /// Release-signing key, certified by the root (generation 1).
    pub release: SigningKey,
    /// Root-signed certificate of [`World::release`].
    pub release_cert: Vec<u8>,
    /// Channel author key, certified by the root.
    pub author: SigningKey,
    /// Root-signed certificate of [`World::author`].
    pub author_cert: Vec<u8>,
    /// The gateway's reader key (secret bytes).
    pub reader: [u8; 32],
    /// Epoch 0's key.
    pub keys: EpochKeys,
    /// A subscription token for the channel (reader mode).
    pub token: Token,
    /// The trust anchor of the vendor root key.
    pub trust: TrustAnchor,
    /// The header of a genuine keyload (the AAD [`keyload`] opens bodies against).
    pub keyload_header: Vec<u8>,
    /// The body of that keyload (a seed).
    pub keyload_body: Vec<u8>,
}

fn certificate(root: &SigningKey, key: &SigningKey, role: Role) -> Vec<u8> {
    KeyCertificate {
        role,
        public_key: key.verifying_key().to_bytes(),
        generation: 1,
        not_before: 0,
        not_after: u64::MAX,
        vendor: "acme".into(),
    }
    .issue(root)
}

/// The shared vendor (built once).
pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let root = SigningKey::from_bytes(&[1; 32]);
        let release = SigningKey::from_bytes(&[2; 32]);
        let author = SigningKey::from_bytes(&[3; 32]);
        let reader = [4; 32];
        let mut keys = EpochKeys::new();
        keys.insert(0, [5; 32]);
        let release_cert = certificate(&root, &release, Role::Release);
        let author_cert = certificate(&root, &author, Role::ChannelAuthor);
        let token = Token {
            vendor: "acme".into(),
            vendor_key: root.verifying_key().to_bytes(),
            author_certificate: author_cert.clone(),
            keys: keys.clone(),
            reader: Some(reader),
            ledger_hint: Some("embedded".into()),
        };
        let mut writer = ChannelAuthor::new(author.clone(), 0, keys.clone());
        let wire = writer.rotate(
            ChainPosition::GENESIS,
            &[ReaderKey::from_bytes(reader).public()],
            &mut StdRng::seed_from_u64(7),
        );
        let (keyload_header, keyload_body) = match message::decode(&wire) {
            Ok(e) => (e.header_bytes.to_vec(), e.body.to_vec()),
            Err(e) => panic!("a genuine keyload does not decode: {e:?}"),
        };
        World {
            trust: TrustAnchor::new(root.verifying_key()),
            root,
            release,
            release_cert,
            author,
            author_cert,
            reader,
            keys,
            token,
            keyload_header,
            keyload_body,
        }
    })
}

impl World {
    /// A follower of the channel at its genesis, holding epoch 0's key and the reader key.
    pub fn follower(&self) -> Follower {
        match self.token.follower(None) {
            Ok(f) => f,
            Err(e) => panic!("the world's token is refused: {e:?}"),
        }
    }

    /// The channel author at epoch 0.
    pub fn channel_author(&self) -> ChannelAuthor {
        ChannelAuthor::new(self.author.clone(), 0, self.keys.clone())
    }

    /// A well-formed manifest for `image` (model `lamp`, hardware `rev-b`, version 1.1.0).
    pub fn manifest_for(&self, image: &[u8]) -> Manifest {
        Manifest {
            vendor: "acme".into(),
            vendor_key: self.root.verifying_key().to_bytes(),
            model: "lamp".into(),
            hardware: vec!["rev-b".into()],
            version: "1.1.0".parse().unwrap_or_else(|_| unreachable!()),
            security_version: 1,
            size: image.len() as u64,
            sha256: Sha256::digest(image).into(),
            cid: "bafkreiexample".into(),
            issued: NOW - 100,
            expires: Some(NOW + 86_400),
            prerequisite: None,
            notes: Some("fuzz seed".into()),
        }
    }
}

/// Splits `data` into length-prefixed records: `[tag: u8][len: u16 LE][len bytes]`, the last one
/// truncated to what is left. Structure-aware targets use it.
pub fn records(data: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= 3 && out.len() < 64 {
        let tag = rest[0];
        let len = usize::from(u16::from_le_bytes([rest[1], rest[2]]));
        let body = &rest[3..];
        let take = len.min(body.len());
        out.push((tag, &body[..take]));
        rest = &body[take..];
    }
    out
}

/// Builds the byte form [`records`] reads back.
pub fn encode_records(records: &[(u8, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (tag, body) in records {
        let len = u16::try_from(body.len()).unwrap_or(u16::MAX);
        out.push(*tag);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&body[..usize::from(len)]);
    }
    out
}

// ----- protocol core -----

/// The deterministic CBOR decoder: a generic walk, then every typed decoder of the protocol; a
/// value that decodes must survive an encode/decode round trip unchanged.
pub fn cbor(data: &[u8]) {
    let mut d = Decoder::new(data);
    let mut items = 0;
    while d.position() < data.len() && items < 1024 {
        if d.skip().is_err() {
            break;
        }
        items += 1;
    }
    if let Ok(c) = KeyCertificate::from_cbor(data) {
        assert_eq!(KeyCertificate::from_cbor(&c.to_cbor()).ok(), Some(c));
    }
    if let Ok(k) = EpochKeys::from_cbor(data) {
        assert!(EpochKeys::from_cbor(&k.to_cbor()).ok() == Some(k));
    }
    if let Ok(m) = Manifest::from_cbor(data) {
        assert_eq!(Manifest::from_cbor(&m.to_cbor()).ok(), Some(m));
    }
    if let Ok(b) = ReleaseBody::from_cbor(data) {
        assert_eq!(ReleaseBody::from_cbor(&b.to_cbor()).ok(), Some(b));
    }
    if let Ok(r) = Revocation::from_cbor(data) {
        assert_eq!(Revocation::from_cbor(&r.to_cbor()).ok(), Some(r));
    }
    if let Ok(h) = Heartbeat::from_cbor(data) {
        assert_eq!(Heartbeat::from_cbor(&h.to_cbor()).ok(), Some(h));
    }
    if let Ok(n) = Notice::from_cbor(data) {
        assert_eq!(Notice::from_cbor(&n.to_cbor()).ok(), Some(n));
    }
    if let Ok(t) = Token::from_cbor(data) {
        assert!(Token::from_cbor(&t.to_cbor()).ok() == Some(t));
    }
    let _ = Keyload::from_cbor(data);
}

/// A signed manifest (COSE_Sign1) as a device receives it: decode, check the signature chain
/// against the vendor root, with and without a clock.
pub fn manifest(data: &[u8]) {
    let w = world();
    if let Ok(sign1) = cose::decode(data) {
        let _ = sign1.verify(&w.release.verifying_key());
        let _ = Manifest::from_cbor(sign1.payload);
        if let Some(cert) = sign1.certificate {
            let _ = KeyCertificate::verify(cert, &w.root.verifying_key(), Role::Release);
        }
    }
    for now in [Some(NOW), None] {
        if let Ok(v) = verify_manifest(data, &w.trust, now) {
            check_verified(&v.manifest, data);
        }
    }
}

/// The manifest payload behind a genuine signature: the fuzzer writes the CBOR, the harness signs
/// it with the certified release key, so every semantic check after the signature is reached.
pub fn manifest_signed(data: &[u8]) {
    let w = world();
    let signed = cose::sign(&w.release, Some(&w.release_cert), data);
    for now in [Some(NOW), None] {
        if let Ok(v) = verify_manifest(&signed, &w.trust, now) {
            check_verified(&v.manifest, data);
        }
    }
}

/// What must hold for any manifest that verified: it re-encodes to what decodes to itself, the
/// policy decides without panicking, and the image verifier takes it.
fn check_verified(m: &Manifest, image: &[u8]) {
    assert_eq!(Manifest::from_cbor(&m.to_cbor()).ok().as_ref(), Some(m));
    let installed: Version = match "1.0.0".parse() {
        Ok(v) => v,
        Err(_) => unreachable!(),
    };
    for hardware in m.hardware.iter().map(String::as_str).chain(["rev-b"]) {
        let device = DeviceState {
            model: &m.model,
            hardware,
            version: &installed,
            security_version: 1,
        };
        let _ = decide(m, &device, Some(NOW));
        let _ = decide(m, &device, None);
    }
    let mut verifier = ImageVerifier::new(m.size, m.sha256);
    let _ = verifier.update(image).map(|()| verifier.finish());
}

/// One channel message off the ledger: envelope decode, signature, and a follower at genesis.
pub fn channel_message(data: &[u8]) {
    let w = world();
    if let Ok(envelope) = message::decode(data) {
        let _ = envelope.verify(&w.author.verifying_key());
    }
    let mut follower = w.follower();
    let _ = follower.ingest(data, Some(NOW));
    let _ = follower.ingest(data, None);
}

/// A follower fed a whole channel whose messages are genuinely sealed and signed by the author:
/// the fuzzer chooses each message's kind and plaintext (records: tag & 3 = release / revoke /
/// heartbeat / keyload, 0x04 = also feed the bytes raw as a forged message, 0x08 = keyload leaves
/// the reader out). Authentic, in-order messages must never be refused as forged or out of order.
pub fn channel_feed(data: &[u8]) {
    let w = world();
    let mut author = w.channel_author();
    let mut follower = w.follower();
    let mut rng = StdRng::seed_from_u64(1);
    let mut position = ChainPosition::GENESIS;
    let reader_public = ReaderKey::from_bytes(w.reader).public();
    let mut admitted = true;
    for (tag, body) in records(data) {
        if tag & 0x04 != 0 {
            let _ = follower.ingest(body, Some(NOW));
        }
        let wire = match tag & 3 {
            3 => {
                let readers: &[[u8; 32]] = if tag & 0x08 != 0 {
                    &[]
                } else {
                    core::slice::from_ref(&reader_public)
                };
                admitted = tag & 0x08 == 0;
                author.rotate(position, readers, &mut rng)
            }
            kind => {
                let kind = [Kind::Release, Kind::Revoke, Kind::Heartbeat][usize::from(kind)];
                match author.seal(position, kind, body, &mut rng) {
                    Ok(wire) => wire,
                    Err(e) => panic!("the author cannot seal: {e:?}"),
                }
            }
        };
        let envelope = match message::decode(&wire) {
            Ok(e) => e,
            Err(e) => panic!("a genuine message does not decode: {e:?}"),
        };
        position = ChainPosition::after(&envelope);
        match follower.ingest(&wire, Some(NOW)) {
            Ok(delivery) => {
                assert_eq!(delivery.seq, envelope.header.seq);
                if let Event::Keyload {
                    admitted: got,
                    epoch,
                } = delivery.event
                {
                    assert_eq!(epoch, envelope.header.epoch);
                    assert_eq!(got, admitted, "keyload admission");
                }
            }
            Err(FollowError::BadPayload | FollowError::BadManifest(_)) => {}
            Err(FollowError::NoEpochKey { .. }) => assert!(!admitted, "key lost while admitted"),
            Err(e) => panic!("an authentic in-order message was refused: {e:?}"),
        }
    }
}

/// A keyload body opened by the reader, against a genuine keyload header.
pub fn keyload(data: &[u8]) {
    let w = world();
    if let Ok(keyload) = Keyload::from_cbor(data) {
        let _ = keyload.readers();
        let channel = message::channel_id(&w.author.verifying_key());
        let reader = ReaderKey::from_bytes(w.reader);
        let _ = keyload.open(&channel, &w.keyload_header, &reader);
    }
}

/// A subscription token, as text (what users paste) and as CBOR.
pub fn token(data: &[u8]) {
    let check = |t: Token| {
        let _ = t.trust();
        let _ = t.channel();
        let _ = t.follower(None);
        let _ = t.follower(Some(&world().token.vendor_key));
        assert!(Token::from_text(&t.to_text()).ok() == Some(t));
    };
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(t) = Token::from_text(text) {
            check(t);
        }
    }
    if let Ok(t) = Token::from_cbor(data) {
        check(t);
    }
}

/// An update notice as the device agent receives it over MQTT (CBOR), then its manifest.
pub fn notice(data: &[u8]) {
    if let Ok(n) = Notice::from_cbor(data) {
        assert_eq!(Notice::from_cbor(&n.to_cbor()).ok().as_ref(), Some(&n));
        manifest(&n.manifest);
    }
}

// ----- device link -----

/// A device provisioning bundle (JSON, from a QR code or a file).
pub fn bundle(data: &[u8]) {
    if let Ok(b) = fwledger_link::Bundle::from_json(data) {
        let _ = b.vendor_keys();
        let again = fwledger_link::Bundle::from_json(b.to_json().as_bytes());
        assert_eq!(again.ok().as_ref(), Some(&b));
    }
}

struct StatusSink {
    registry: fwledger_gateway::Registry,
    _dir: tempfile::TempDir,
}

fn status_sink() -> &'static StatusSink {
    static SINK: OnceLock<StatusSink> = OnceLock::new();
    SINK.get_or_init(|| {
        // A OnceLock is never dropped, so this directory outlives the process: remove those of
        // processes that are gone, and name this one after the process.
        let base = std::env::temp_dir();
        let prefix = "fwledger-fuzz-status-";
        for entry in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix(prefix) {
                if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = match tempfile::Builder::new()
            .prefix(&format!("{prefix}{}", std::process::id()))
            .rand_bytes(0)
            .tempdir_in(&base)
        {
            Ok(dir) => dir,
            Err(_) => scratch_dir(),
        };
        let registry = match fwledger_gateway::Registry::open(&dir.path().join("registry.sqlite")) {
            Ok(r) => r,
            Err(e) => panic!("registry: {e}"),
        };
        let device = fwledger_gateway::registry::NewDevice {
            id: "lamp-01".into(),
            mac: "02:00:00:00:00:01".into(),
            model: "lamp".into(),
            hardware: "rev-b".into(),
        };
        if let Err(e) = registry.add_device(&device) {
            panic!("registry: {e}");
        }
        StatusSink {
            registry,
            _dir: dir,
        }
    })
}

/// A device status report (JSON on `…/status`) as the gateway parses it and records it in its
/// registry (SQLite).
pub fn mqtt_status(data: &[u8]) {
    if let Ok(status) = fwledger_link::DeviceStatus::from_json(data) {
        let _ = status_sink().registry.record_status("lamp-01", &status);
    }
}

/// An MQTT topic name as the gateway routes it.
pub fn mqtt_topic(data: &[u8]) {
    let Ok(topic) = std::str::from_utf8(data) else {
        return;
    };
    if let Some((id, kind)) = fwledger_link::topics::parse(topic) {
        assert!(topic.contains(id) && topic.ends_with(kind));
        let _ = fwledger_link::valid_device_id(id);
    }
}

// ----- content store -----

/// A scratch directory, in memory when `/dev/shm` is there.
fn scratch_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::Builder::new()
            .prefix("fwledger-fuzz")
            .tempdir_in(shm)
    } else {
        tempfile::Builder::new().prefix("fwledger-fuzz").tempdir()
    };
    match dir {
        Ok(dir) => dir,
        Err(e) => panic!("scratch directory: {e}"),
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(
        || match tokio::runtime::Builder::new_current_thread().build() {
            Ok(rt) => rt,
            Err(e) => panic!("tokio runtime: {e}"),
        },
    )
}

/// Imports a CAR into a fresh embedded store and reads every root back through the verified,
/// size-bounded DAG walk (dag-pb / UnixFS / raw blocks).
fn import_and_walk(car: &[u8]) {
    use futures::TryStreamExt;
    use fwledger_store::ContentStore;
    let dir = scratch_dir();
    let store = match fwledger_store::EmbeddedStore::open(&dir.path().join("store")) {
        Ok(s) => s,
        Err(e) => panic!("store: {e}"),
    };
    let Ok(roots) = fwledger_store::import_car(&store, car) else {
        return;
    };
    for root in roots.iter().take(4) {
        runtime().block_on(async {
            if let Ok(stream) = store.get(root, 1 << 20).await {
                let _ = stream
                    .try_fold(0usize, |n, chunk| async move { Ok(n + chunk.len()) })
                    .await;
            }
        });
    }
}

/// A CAR v1 file (air-gapped transfer), raw.
pub fn car(data: &[u8]) {
    import_and_walk(data);
}

/// The CID (v1, SHA-256) of `block` under `codec` (0x70 dag-pb, 0x55 raw).
pub fn cid_v1(codec: u64, block: &[u8]) -> cid::Cid {
    let digest = Sha256::digest(block);
    match cid::multihash::Multihash::<64>::wrap(0x12, &digest) {
        Ok(mh) => cid::Cid::new_v1(codec, mh),
        Err(e) => panic!("multihash: {e}"),
    }
}

/// A CAR v1 file holding `blocks` (each under its own CID), the first one the root.
pub fn car_of(blocks: &[(u64, &[u8])]) -> Vec<u8> {
    fn uvarint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut out = Vec::new();
    let root = blocks
        .first()
        .map(|(codec, b)| cid_v1(*codec, b).to_bytes());
    // DAG-CBOR {"roots": [CID], "version": 1}, keys in length-first order.
    let mut header = vec![0xa2, 0x65];
    header.extend_from_slice(b"roots");
    match root {
        Some(root) => {
            header.extend_from_slice(&[0x81, 0xd8, 0x2a, 0x58, (root.len() + 1) as u8, 0x00]);
            header.extend_from_slice(&root);
        }
        None => header.push(0x80),
    }
    header.push(0x67);
    header.extend_from_slice(b"version");
    header.push(0x01);
    uvarint(header.len() as u64, &mut out);
    out.extend_from_slice(&header);
    for (codec, block) in blocks {
        let cid = cid_v1(*codec, block).to_bytes();
        uvarint((cid.len() + block.len()) as u64, &mut out);
        out.extend_from_slice(&cid);
        out.extend_from_slice(block);
    }
    out
}

/// The UnixFS DAG walk over blocks the fuzzer writes: records are blocks (tag bit 0: raw leaf,
/// else dag-pb), stored under their true CIDs so that every block passes the hash check and the
/// dag-pb / UnixFS decoding behind it is reached; the first block is the root.
pub fn unixfs(data: &[u8]) {
    let blocks: Vec<(u64, &[u8])> = records(data)
        .into_iter()
        .map(|(tag, b)| (if tag & 1 == 1 { 0x55 } else { 0x70 }, b))
        .collect();
    if blocks.is_empty() {
        return;
    }
    import_and_walk(&car_of(&blocks));
}

// ----- gateway HTTP -----

/// The gateway's `Range` header parser: the first 8 bytes are the content size (LE), the rest
/// the header value. A partial range must lie inside the content.
pub fn http_range(data: &[u8]) {
    use fwledger_gateway::http::{parse_range, ByteRange};
    let (size, text) = match data.split_first_chunk::<8>() {
        Some((size, rest)) => (u64::from_le_bytes(*size), rest),
        None => (1000, data),
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    match parse_range(Some(text), size) {
        ByteRange::Partial { start, end } => {
            assert!(start <= end && end < size, "range {start}-{end} of {size}");
        }
        ByteRange::Unsatisfiable | ByteRange::Full => {}
    }
    assert!(matches!(parse_range(None, size), ByteRange::Full));
}

// ----- C API -----

fn c_text(bytes: &[u8]) -> CString {
    let cut = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    CString::new(&bytes[..cut]).unwrap_or_default()
}

/// Calls the getters of a verified manifest handle, the image verifier and the policy on it.
///
/// # Safety
/// `m` must be a live manifest handle.
unsafe fn exercise_manifest(m: *const fwledger_c::fwl_manifest, extra: &[u8]) {
    use fwledger_c::*;
    let mut buf = [0 as std::ffi::c_char; 16];
    let mut len = 0usize;
    // SAFETY: live handle, writable buffer and out pointer.
    unsafe {
        ok(fwl_manifest_vendor(
            m,
            buf.as_mut_ptr(),
            buf.len(),
            &mut len,
        ));
        ok(fwl_manifest_model(m, buf.as_mut_ptr(), buf.len(), &mut len));
        ok(fwl_manifest_version(
            m,
            buf.as_mut_ptr(),
            buf.len(),
            &mut len,
        ));
        ok(fwl_manifest_cid(m, buf.as_mut_ptr(), buf.len(), &mut len));
        ok(fwl_manifest_notes(m, std::ptr::null_mut(), 0, &mut len));
        let mut count = 0usize;
        ok(fwl_manifest_hardware_count(m, &mut count));
        for i in 0..count.min(8) + 1 {
            ok(fwl_manifest_hardware(
                m,
                i,
                buf.as_mut_ptr(),
                buf.len(),
                &mut len,
            ));
        }
        let mut verifier = fwl_image_verifier::default();
        if fwl_image_verifier_init(&mut verifier, m) == fwl_status::FWL_OK {
            for chunk in extra.chunks(7) {
                ok(fwl_image_verifier_update(
                    &mut verifier,
                    chunk.as_ptr(),
                    chunk.len(),
                ));
            }
            ok(fwl_image_verifier_finish(&mut verifier));
            ok(fwl_image_verifier_finish(&mut verifier));
        }
        let mut parts = extra.splitn(3, |&b| b == 0);
        let model = c_text(parts.next().unwrap_or_default());
        let hardware = c_text(parts.next().unwrap_or_default());
        let installed = c_text(parts.next().unwrap_or_default());
        ok(fwl_policy_decide(
            m,
            model.as_ptr(),
            hardware.as_ptr(),
            installed.as_ptr(),
            1,
            NOW,
        ));
        ok(fwl_manifest_check_security_version(m, extra.len() as u64));
    }
}

/// Any status but "bug in the library" is an acceptable answer to hostile input.
fn ok(status: fwledger_c::fwl_status) {
    assert_ne!(status, fwledger_c::fwl_status::FWL_ERR_INTERNAL);
}

/// The C API entry points (the exported `fwl_*` functions, as a C caller uses them). The first
/// byte chooses the entry point: 0 `fwl_manifest_verify`, 1 `fwl_notice_verify`, 2
/// `fwl_notice_parse`, 3 `fwl_version_compare`, 4 the raw image verifier, 5 a manifest the
/// harness signs (getters, image verifier, policy on a verified handle).
pub fn c_api(data: &[u8]) {
    use fwledger_c::*;
    use std::ptr::null_mut;
    let Some((&op, rest)) = data.split_first() else {
        return;
    };
    let w = world();
    let key = w.root.verifying_key().to_bytes();
    // SAFETY: every pointer passed is valid for its length; handles are freed once.
    unsafe {
        match op % 6 {
            0 => {
                let mut m = null_mut();
                let s = fwl_manifest_verify(
                    rest.as_ptr(),
                    rest.len(),
                    key.as_ptr(),
                    32,
                    0,
                    NOW,
                    &mut m,
                );
                ok(s);
                if s == fwl_status::FWL_OK {
                    exercise_manifest(m, rest);
                }
                fwl_manifest_free(m);
            }
            1 => {
                let (mut n, mut m) = (null_mut(), null_mut());
                let s = fwl_notice_verify(
                    rest.as_ptr(),
                    rest.len(),
                    key.as_ptr(),
                    32,
                    0,
                    NOW,
                    &mut n,
                    &mut m,
                );
                ok(s);
                if s == fwl_status::FWL_OK {
                    exercise_manifest(m, rest);
                    let mut buf = [0 as std::ffi::c_char; 8];
                    let mut len = 0usize;
                    ok(fwl_notice_url(n, buf.as_mut_ptr(), buf.len(), &mut len));
                }
                fwl_manifest_free(m);
                fwl_notice_free(n);
            }
            2 => {
                let mut n = null_mut();
                ok(fwl_notice_parse(rest.as_ptr(), rest.len(), &mut n));
                if !n.is_null() {
                    let (mut p, mut len) = (std::ptr::null(), 0usize);
                    ok(fwl_notice_manifest(n, &mut p, &mut len));
                    let mut t = 0u64;
                    ok(fwl_notice_gateway_time(n, &mut t));
                }
                fwl_notice_free(n);
            }
            3 => {
                let mut parts = rest.splitn(2, |&b| b == 0);
                let a = c_text(parts.next().unwrap_or_default());
                let b = c_text(parts.next().unwrap_or_default());
                let mut order = 0;
                ok(fwl_version_compare(a.as_ptr(), b.as_ptr(), &mut order));
                let mut back = 0;
                if fwl_version_compare(b.as_ptr(), a.as_ptr(), &mut back) == fwl_status::FWL_OK {
                    assert_eq!(order, -back, "version order is not antisymmetric");
                }
            }
            4 => {
                let Some((size, rest)) = rest.split_first_chunk::<8>() else {
                    return;
                };
                let size = u64::from_le_bytes(*size) % 4096;
                let digest: [u8; 32] = Sha256::digest(rest).into();
                let mut verifier = fwl_image_verifier::default();
                ok(fwl_image_verifier_init_raw(
                    &mut verifier,
                    size,
                    digest.as_ptr(),
                    32,
                ));
                let mut outcome = fwl_status::FWL_OK;
                for chunk in rest.chunks(5) {
                    outcome = fwl_image_verifier_update(&mut verifier, chunk.as_ptr(), chunk.len());
                    ok(outcome);
                }
                let mut received = 0u64;
                ok(fwl_image_verifier_received(&verifier, &mut received));
                let done = fwl_image_verifier_finish(&mut verifier);
                ok(done);
                // The digest is the content's own: only the size can make it fail.
                if size == rest.len() as u64 {
                    assert_eq!((outcome, done), (fwl_status::FWL_OK, fwl_status::FWL_OK));
                } else {
                    assert_ne!(done, fwl_status::FWL_OK);
                }
            }
            _ => {
                let signed = cose::sign(&w.release, Some(&w.release_cert), rest);
                let mut m = null_mut();
                let s = fwl_manifest_verify(
                    signed.as_ptr(),
                    signed.len(),
                    key.as_ptr(),
                    32,
                    0,
                    NOW,
                    &mut m,
                );
                ok(s);
                if s == fwl_status::FWL_OK {
                    exercise_manifest(m, rest);
                }
                fwl_manifest_free(m);
            }
        }
    }
}

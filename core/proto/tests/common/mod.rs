//! Deterministic fixture shared by the integration tests and the test-vector generator.
//!
//! Every secret is `SHA-256("fwledger-proto fixture " ‖ label)`, every random byte comes from
//! [`TestRng`] (SHA-256 in counter mode over a seed), and Ed25519 signatures are deterministic, so
//! the same code always produces the same bytes — `tests/vectors/proto.json` depends on it.
#![allow(dead_code)]

use ed25519_dalek::{SigningKey, VerifyingKey};
use fwledger_proto::cbor::{Decoder, Encoder};
use fwledger_proto::channel::{
    message, ChainPosition, ChannelAuthor, EpochKeys, Follower, Heartbeat, Kind, ReaderKey,
    ReleaseBody, Revocation, Token,
};
use fwledger_proto::keys::{KeyCertificate, Role};
use fwledger_proto::manifest::{Manifest, TrustAnchor};
use fwledger_proto::policy::DeviceState;
use fwledger_proto::version::Version;
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

/// Issue time of the fixture's manifests.
pub const ISSUED: u64 = 1_700_000_000;
/// "Now" for verification: one hour after issue.
pub const NOW: u64 = ISSUED + 3_600;
/// Release and author certificates are valid from a year before issue…
pub const CERT_NOT_BEFORE: u64 = ISSUED - 365 * 86_400;
/// …to five years after.
pub const CERT_NOT_AFTER: u64 = ISSUED + 5 * 365 * 86_400;
/// Heartbeat written by the demo channel.
pub const HEARTBEAT: Heartbeat = Heartbeat {
    time: ISSUED + 60,
    valid_until: ISSUED + 60 + 86_400,
};
/// Size of the fixture image.
pub const IMAGE_SIZE: usize = 1_000;
/// How the fixture image is made (also written into the test vectors).
pub const IMAGE_RECIPE: &str = "byte i = (i * 7 + 3) mod 256, for i in 0 .. size";

/// `SHA-256("fwledger-proto fixture " ‖ label)`.
pub fn secret(label: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"fwledger-proto fixture ");
    h.update(label.as_bytes());
    h.finalize().into()
}

/// Deterministic "random" bytes: block `i` is `SHA-256(seed ‖ u64_be(i))`, the stream is the
/// concatenation of blocks 0, 1, 2, … Only for tests.
#[derive(Debug, Clone)]
pub struct TestRng {
    seed: [u8; 32],
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl TestRng {
    /// A generator seeded with `SHA-256(label)`.
    pub fn new(label: &str) -> Self {
        TestRng {
            seed: Sha256::digest(label.as_bytes()).into(),
            counter: 0,
            block: [0; 32],
            used: 32,
        }
    }
}

impl RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }

    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for byte in dest {
            if self.used == self.block.len() {
                let mut h = Sha256::new();
                h.update(self.seed);
                h.update(self.counter.to_be_bytes());
                self.block = h.finalize().into();
                self.counter += 1;
                self.used = 0;
            }
            *byte = self.block[self.used];
            self.used += 1;
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for TestRng {}

/// One vendor: an offline root key, two release-key generations and the channel author key.
pub struct Vendor {
    /// Vendor name.
    pub name: &'static str,
    /// Root key (devices trust its public half).
    pub root: SigningKey,
    /// Release key, generation 1.
    pub release1: SigningKey,
    /// Release key, generation 2 (the replacement after a compromise of generation 1).
    pub release2: SigningKey,
    /// Channel author key.
    pub author: SigningKey,
    /// Key of channel epoch 0.
    pub epoch0: [u8; 32],
}

fn vendor(name: &'static str) -> Vendor {
    let key = |what: &str| SigningKey::from_bytes(&secret(&format!("{name}/{what}")));
    Vendor {
        name,
        root: key("root"),
        release1: key("release-1"),
        release2: key("release-2"),
        author: key("channel-author"),
        epoch0: secret(&format!("{name}/epoch-0")),
    }
}

/// The vendor the devices and gateways of the fixture trust.
pub fn acme() -> Vendor {
    vendor("acme")
}

/// Another, unrelated vendor.
pub fn globex() -> Vendor {
    vendor("globex")
}

/// Gateway A: stays a reader after the rotation.
pub fn reader_a() -> ReaderKey {
    ReaderKey::from_bytes(secret("reader-a"))
}

/// Gateway B: dropped by the rotation (revoked).
pub fn reader_b() -> ReaderKey {
    ReaderKey::from_bytes(secret("reader-b"))
}

/// A key nobody certified.
pub fn attacker() -> SigningKey {
    SigningKey::from_bytes(&secret("attacker"))
}

impl Vendor {
    /// Devices' trust anchor: the root key, no retired generation.
    pub fn trust(&self) -> TrustAnchor {
        TrustAnchor::new(self.root.verifying_key())
    }

    /// A certificate body for `key` with the fixture's validity window.
    pub fn certificate(&self, role: Role, key: &VerifyingKey, generation: u64) -> KeyCertificate {
        KeyCertificate {
            role,
            public_key: key.to_bytes(),
            generation,
            not_before: CERT_NOT_BEFORE,
            not_after: CERT_NOT_AFTER,
            vendor: self.name.into(),
        }
    }

    /// The release key of `generation` (1 or 2).
    pub fn release_key(&self, generation: u64) -> &SigningKey {
        match generation {
            1 => &self.release1,
            2 => &self.release2,
            _ => panic!("the fixture has release keys of generations 1 and 2"),
        }
    }

    /// The root-signed certificate of the release key of `generation`.
    pub fn release_cert(&self, generation: u64) -> Vec<u8> {
        let key = self.release_key(generation).verifying_key();
        self.certificate(Role::Release, &key, generation)
            .issue(&self.root)
    }

    /// The root-signed certificate of the channel author key.
    pub fn author_cert(&self) -> Vec<u8> {
        self.certificate(Role::ChannelAuthor, &self.author.verifying_key(), 1)
            .issue(&self.root)
    }

    /// Release 1.1.0 of the `lamp` for hardware `rev-b` and `rev-c`, security version 1.
    pub fn manifest(&self) -> Manifest {
        let image = image();
        Manifest {
            vendor: self.name.into(),
            vendor_key: self.root.verifying_key().to_bytes(),
            model: "lamp".into(),
            hardware: vec!["rev-b".into(), "rev-c".into()],
            version: "1.1.0".parse().unwrap(),
            security_version: 1,
            size: image.len() as u64,
            sha256: Sha256::digest(&image).into(),
            cid: "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi".into(),
            issued: ISSUED,
            expires: None,
            prerequisite: None,
            notes: None,
        }
    }

    /// Release 1.2.0: security version 2, every optional field set.
    pub fn manifest_v2(&self) -> Manifest {
        Manifest {
            version: "1.2.0".parse().unwrap(),
            security_version: 2,
            issued: ISSUED + 120,
            expires: Some(ISSUED + 30 * 86_400),
            prerequisite: Some("1.1.0".parse().unwrap()),
            notes: Some("Fixes the dimmer flicker.".into()),
            ..self.manifest()
        }
    }

    /// Signs with the release key of generation 1.
    pub fn sign(&self, manifest: &Manifest) -> Vec<u8> {
        self.sign_gen(manifest, 1)
    }

    /// Signs with the release key of `generation`.
    pub fn sign_gen(&self, manifest: &Manifest, generation: u64) -> Vec<u8> {
        manifest.sign(self.release_key(generation), &self.release_cert(generation))
    }

    /// The epoch keys a token issued before any rotation carries.
    pub fn initial_keys(&self) -> EpochKeys {
        let mut keys = EpochKeys::new();
        keys.insert(0, self.epoch0);
        keys
    }

    /// A channel writer at genesis, in epoch 0.
    pub fn writer(&self) -> Writer {
        Writer {
            author: ChannelAuthor::new(self.author.clone(), 0, self.initial_keys()),
            position: ChainPosition::GENESIS,
            rng: TestRng::new(&format!("{} channel", self.name)),
            log: Vec::new(),
        }
    }

    /// A token with `keys`, for `reader` (keyload mode) or for nobody (simple mode).
    pub fn token(&self, keys: &EpochKeys, reader: Option<&ReaderKey>) -> Token {
        Token {
            vendor: self.name.into(),
            vendor_key: self.root.verifying_key().to_bytes(),
            author_certificate: self.author_cert(),
            keys: keys.clone(),
            reader: reader.map(ReaderKey::to_bytes),
            ledger_hint: reader.map(|_| format!("https://ledger.example/{}", self.name)),
        }
    }

    /// The token of a reader admitted at genesis.
    pub fn reader_token(&self, reader: &ReaderKey) -> Token {
        self.token(&self.initial_keys(), Some(reader))
    }

    /// The simple-mode (shared key) token issued at genesis.
    pub fn simple_token(&self) -> Token {
        self.token(&self.initial_keys(), None)
    }
}

/// The fixture image.
pub fn image() -> Vec<u8> {
    (0..IMAGE_SIZE).map(|i| (i * 7 + 3) as u8).collect()
}

/// The installed firmware version of the fixture device.
pub fn installed() -> Version {
    "1.0.0".parse().unwrap()
}

/// A `lamp` on hardware `rev-b` at security version 1, running `version`.
pub fn device(version: &Version) -> DeviceState<'_> {
    DeviceState {
        model: "lamp",
        hardware: "rev-b",
        version,
        security_version: 1,
    }
}

/// A follower built from a token the way a gateway builds it (through its text form).
pub fn follower(token: &Token) -> Follower {
    Token::from_text(&token.to_text())
        .unwrap()
        .follower(None)
        .unwrap()
}

/// The channel author writing messages, tracking its chain position.
pub struct Writer {
    /// The author.
    pub author: ChannelAuthor,
    /// Where the next message goes.
    pub position: ChainPosition,
    /// Nonces, ephemeral keys and epoch keys come from here.
    pub rng: TestRng,
    /// Every message written at the chain head so far.
    pub log: Vec<Vec<u8>>,
}

impl Writer {
    /// Seals a message at an arbitrary position without moving the chain head.
    pub fn seal_at(&mut self, position: ChainPosition, kind: Kind, payload: &[u8]) -> Vec<u8> {
        self.author
            .seal(position, kind, payload, &mut self.rng)
            .unwrap()
    }

    fn append(&mut self, wire: Vec<u8>) -> Vec<u8> {
        self.position = ChainPosition::after(&message::decode(&wire).unwrap());
        self.log.push(wire.clone());
        wire
    }

    /// Appends a message of `kind` at the chain head.
    pub fn push(&mut self, kind: Kind, payload: &[u8]) -> Vec<u8> {
        let wire = self.seal_at(self.position, kind, payload);
        self.append(wire)
    }

    /// Appends a release announcement.
    pub fn release(&mut self, signed_manifest: &[u8]) -> Vec<u8> {
        let body = ReleaseBody {
            manifest: signed_manifest.to_vec(),
        };
        self.push(Kind::Release, &body.to_cbor())
    }

    /// Appends a heartbeat.
    pub fn heartbeat(&mut self, heartbeat: Heartbeat) -> Vec<u8> {
        self.push(Kind::Heartbeat, &heartbeat.to_cbor())
    }

    /// Appends a revocation.
    pub fn revoke(&mut self, revocation: &Revocation) -> Vec<u8> {
        self.push(Kind::Revoke, &revocation.to_cbor())
    }

    /// Starts a new epoch readable by `readers` only.
    pub fn rotate(&mut self, readers: &[&ReaderKey]) -> Vec<u8> {
        let publics: Vec<[u8; 32]> = readers.iter().map(|r| r.public()).collect();
        let wire = self.author.rotate(self.position, &publics, &mut self.rng);
        self.append(wire)
    }
}

/// The revocation the demo channel carries.
pub fn demo_revocation() -> Revocation {
    Revocation {
        model: "lamp".into(),
        version: "1.0.1".into(),
        reason: "bricks rev-a boards".into(),
    }
}

/// The demo channel of the test vectors: seq 0 release 1.1.0, 1 heartbeat, 2 revoke, 3 keyload
/// rotating to reader A only, 4 release 1.2.0 (signed by release key generation 2) in epoch 1.
pub fn demo_channel(vendor: &Vendor) -> Writer {
    let mut w = vendor.writer();
    w.release(&vendor.sign(&vendor.manifest()));
    w.heartbeat(HEARTBEAT);
    w.revoke(&demo_revocation());
    w.rotate(&[&reader_a()]);
    w.release(&vendor.sign_gen(&vendor.manifest_v2(), 2));
    w
}

/// Re-assembles a COSE_Sign1 with another payload but the original headers and signature.
pub fn replace_payload(signed: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut d = Decoder::new(signed);
    assert_eq!(d.tag().unwrap(), 18);
    d.array_of(4, "COSE_Sign1").unwrap();
    let protected = d.bytes().unwrap();
    let unprotected = d.skip().unwrap();
    d.bytes().unwrap();
    let signature = d.bytes().unwrap();
    let mut e = Encoder::new();
    e.tag(18)
        .array(4)
        .bytes(protected)
        .raw(unprotected)
        .bytes(payload)
        .bytes(signature);
    e.into_bytes()
}

/// The offset of a message's body within its wire bytes.
pub fn body_offset(wire: &[u8]) -> usize {
    let envelope = message::decode(wire).unwrap();
    envelope.body.as_ptr() as usize - wire.as_ptr() as usize
}

/// The message with one bit of its body flipped at `index` (relative to the body).
pub fn flip_body_bit(wire: &[u8], index: usize) -> Vec<u8> {
    let mut out = wire.to_vec();
    out[body_offset(wire) + index] ^= 0x01;
    out
}

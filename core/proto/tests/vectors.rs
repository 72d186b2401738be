//! Test vectors shared by the Rust, C and Python suites: `tests/vectors/proto.json`.
//!
//! `generated_vectors_match_file` rebuilds the vectors from the deterministic fixture and requires
//! the file to match byte for byte (`FWLEDGER_REGEN_VECTORS=1` rewrites the file instead).
//! `file_vectors_verify` and `file_vectors_verify_with_primitives` read the file alone — no
//! fixture — and check every vector, the second with nothing but CBOR, Ed25519, X25519,
//! HKDF-SHA256 and XChaCha20-Poly1305, as another implementation would.

mod common;

use std::path::PathBuf;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use ciborium::Value;
use common::*;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use fwledger_proto::cbor::Encoder;
use fwledger_proto::channel::{
    channel_id, message, ChainPosition, Event, FollowError, Follower, Kind, ReaderKey, ReleaseBody,
    Token,
};
use fwledger_proto::cose;
use fwledger_proto::image::ImageVerifier;
use fwledger_proto::keys::{KeyCertificate, KeyId, Role};
use fwledger_proto::manifest::{verify_manifest, Manifest, TrustAnchor};
use fwledger_proto::policy::{decide, DeviceState};
use fwledger_proto::version::Version;
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------------
// The file format
// ---------------------------------------------------------------------------------------------

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Vectors {
    description: Vec<String>,
    times: Times,
    keys: Vec<KeyVector>,
    certificates: Vec<CertificateVector>,
    image: ImageVector,
    manifests: Vec<ManifestVector>,
    channel: ChannelVector,
    tokens: Vec<TokenVector>,
    policy: Vec<PolicyVector>,
    negative: Vec<NegativeVector>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Times {
    /// Issue time of the first manifest.
    issued: u64,
    /// The clock every vector is verified at.
    now: u64,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct KeyVector {
    name: String,
    /// `ed25519`, `x25519` or `xchacha20poly1305` (an epoch key).
    algorithm: String,
    secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    public: Option<String>,
    /// SHA-256(public)[..8].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct CertificateVector {
    name: String,
    /// The root key that signed it.
    signer: String,
    /// The certified key.
    subject: String,
    /// 1 = release, 2 = channel author.
    role: u64,
    generation: u64,
    not_before: u64,
    not_after: u64,
    vendor: String,
    /// The certificate payload (deterministic CBOR map).
    payload: String,
    /// The COSE_Sign1.
    cose: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct ImageVector {
    recipe: String,
    size: u64,
    sha256: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct ManifestVector {
    name: String,
    /// The release key that signed it.
    signer: String,
    /// The certificate in its unprotected header.
    certificate: String,
    fields: ManifestFields,
    /// The manifest payload (deterministic CBOR map).
    payload: String,
    /// The COSE_Sign1.
    signed: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct ManifestFields {
    vendor: String,
    vendor_key: String,
    model: String,
    hardware: Vec<String>,
    version: String,
    security_version: u64,
    size: u64,
    sha256: String,
    cid: String,
    issued: u64,
    expires: Option<u64>,
    prerequisite: Option<String>,
    notes: Option<String>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct ChannelVector {
    /// SHA-256("fwledger-channel-v1" ‖ author public key).
    id: String,
    author: String,
    messages: Vec<MessageVector>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct MessageVector {
    seq: u64,
    kind: String,
    epoch: u64,
    /// The wire message.
    wire: String,
    /// SHA-256 of the wire message (the next message's `prev`).
    digest: String,
    /// The decrypted payload; absent for keyloads (their body is not encrypted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    plaintext: Option<String>,
    /// What each token's follower makes of it, fed the messages in order.
    outcomes: Vec<Outcome>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Outcome {
    token: String,
    /// `release`, `revoke`, `heartbeat`, `keyload-admitted` or `keyload-excluded` when accepted.
    event: Option<String>,
    /// The failed check when refused.
    error: Option<String>,
    /// Whether the follower moved past the message.
    advanced: bool,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct TokenVector {
    name: String,
    text: String,
    /// The token's CBOR (the text is `fwl1` + base64url(cbor ‖ SHA-256(cbor)[..4])).
    cbor: String,
    /// The reader key it carries; absent in simple (shared-key) mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reader: Option<String>,
    epochs: Vec<u64>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct PolicyVector {
    name: String,
    manifest: String,
    device: DeviceVector,
    now: u64,
    /// `ok` or the failed check.
    expected: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct DeviceVector {
    model: String,
    hardware: String,
    version: String,
    security_version: u64,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct NegativeVector {
    name: String,
    /// `manifest`: verify `input` against the `acme/root` key at `times.now`, refusing release-key
    /// generations below `min_key_generation`. `image`: stream `input` against `manifest`.
    /// `message`: feed the first `after` channel messages, then `input`, to the follower of
    /// `token`. `token`: parse `input` (UTF-8 text) and build its follower, pinned to
    /// `pinned_vendor` if given.
    kind: String,
    input: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_key_generation: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    manifest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pinned_vendor: Option<String>,
    /// The failed check.
    expected: String,
}

// ---------------------------------------------------------------------------------------------
// Names of outcomes
// ---------------------------------------------------------------------------------------------

fn event_name(event: &Event) -> &'static str {
    match event {
        Event::Release { .. } => "release",
        Event::Revoke(_) => "revoke",
        Event::Heartbeat(_) => "heartbeat",
        Event::Keyload { admitted: true, .. } => "keyload-admitted",
        Event::Keyload {
            admitted: false, ..
        } => "keyload-excluded",
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Release => "release",
        Kind::Revoke => "revoke",
        Kind::Heartbeat => "heartbeat",
        Kind::Keyload => "keyload",
    }
}

fn outcome(token: &str, result: Result<fwledger_proto::channel::Delivery, FollowError>) -> Outcome {
    match result {
        Ok(delivery) => Outcome {
            token: token.into(),
            event: Some(event_name(&delivery.event).into()),
            error: None,
            advanced: true,
        },
        Err(e) => Outcome {
            token: token.into(),
            event: None,
            error: Some(e.check().into()),
            advanced: e.advanced(),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Generation from the fixture
// ---------------------------------------------------------------------------------------------

const TOKENS: [&str; 3] = ["reader-a", "reader-b", "simple"];

fn ed25519_vector(name: &str, key: &SigningKey) -> KeyVector {
    let public = key.verifying_key();
    KeyVector {
        name: name.into(),
        algorithm: "ed25519".into(),
        secret: hex::encode(key.to_bytes()),
        public: Some(hex::encode(public.as_bytes())),
        kid: Some(hex::encode(KeyId::of(&public).0)),
    }
}

fn x25519_vector(name: &str, key: &ReaderKey) -> KeyVector {
    KeyVector {
        name: name.into(),
        algorithm: "x25519".into(),
        secret: hex::encode(key.to_bytes()),
        public: Some(hex::encode(key.public())),
        kid: Some(hex::encode(key.id().0)),
    }
}

fn epoch_key_vector(name: &str, key: &[u8; 32]) -> KeyVector {
    KeyVector {
        name: name.into(),
        algorithm: "xchacha20poly1305".into(),
        secret: hex::encode(key),
        public: None,
        kid: None,
    }
}

fn certificate_vector(
    name: &str,
    signer: &str,
    subject: &str,
    cert: &KeyCertificate,
    root: &SigningKey,
) -> CertificateVector {
    CertificateVector {
        name: name.into(),
        signer: signer.into(),
        subject: subject.into(),
        role: cert.role as u64,
        generation: cert.generation,
        not_before: cert.not_before,
        not_after: cert.not_after,
        vendor: cert.vendor.clone(),
        payload: hex::encode(cert.to_cbor()),
        cose: hex::encode(cert.issue(root)),
    }
}

fn manifest_fields(m: &Manifest) -> ManifestFields {
    ManifestFields {
        vendor: m.vendor.clone(),
        vendor_key: hex::encode(m.vendor_key),
        model: m.model.clone(),
        hardware: m.hardware.clone(),
        version: m.version.to_string(),
        security_version: m.security_version,
        size: m.size,
        sha256: hex::encode(m.sha256),
        cid: m.cid.clone(),
        issued: m.issued,
        expires: m.expires,
        prerequisite: m.prerequisite.as_ref().map(Version::to_string),
        notes: m.notes.clone(),
    }
}

fn negative(name: &str, kind: &str, input: &[u8], expected: &str) -> NegativeVector {
    NegativeVector {
        name: name.into(),
        kind: kind.into(),
        input: hex::encode(input),
        min_key_generation: None,
        manifest: None,
        token: None,
        after: None,
        pinned_vendor: None,
        expected: expected.into(),
    }
}

fn message_negative(
    name: &str,
    input: &[u8],
    token: &str,
    after: u64,
    expected: &str,
) -> NegativeVector {
    NegativeVector {
        token: Some(token.into()),
        after: Some(after),
        ..negative(name, "message", input, expected)
    }
}

/// A COSE_Sign1 with an arbitrary `alg`, signed with Ed25519 anyway.
fn sign_with_alg(key: &SigningKey, alg: i64, cert: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut protected = Encoder::new();
    protected
        .map(2)
        .i64(1)
        .i64(alg)
        .i64(4)
        .bytes(&KeyId::of(&key.verifying_key()).0);
    let protected = protected.into_bytes();
    let mut tbs = Encoder::new();
    tbs.array(4)
        .str("Signature1")
        .bytes(&protected)
        .bytes(&[])
        .bytes(payload);
    let signature = key.sign(&tbs.into_bytes());
    let mut e = Encoder::new();
    e.tag(18)
        .array(4)
        .bytes(&protected)
        .map(1)
        .i64(-65537)
        .bytes(cert)
        .bytes(payload)
        .bytes(&signature.to_bytes());
    e.into_bytes()
}

fn replace_once(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let at: Vec<usize> = haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "needle must be unique");
    [&haystack[..at[0]], with, &haystack[at[0] + needle.len()..]].concat()
}

fn generate() -> Vectors {
    let acme = acme();
    let globex = globex();
    let (a, b) = (reader_a(), reader_b());
    let mut writer = demo_channel(&acme);
    let log = writer.log.clone();
    let epoch1 = *writer.author.keys().get(1).unwrap();

    let keys = vec![
        ed25519_vector("acme/root", &acme.root),
        ed25519_vector("acme/release-1", &acme.release1),
        ed25519_vector("acme/release-2", &acme.release2),
        ed25519_vector("acme/channel-author", &acme.author),
        epoch_key_vector("acme/epoch-0", &acme.epoch0),
        epoch_key_vector("acme/epoch-1", &epoch1),
        x25519_vector("reader-a", &a),
        x25519_vector("reader-b", &b),
        ed25519_vector("globex/root", &globex.root),
        ed25519_vector("attacker", &attacker()),
    ];

    let release = |key: &SigningKey, generation| {
        acme.certificate(Role::Release, &key.verifying_key(), generation)
    };
    let certificates = vec![
        certificate_vector(
            "acme/release-1",
            "acme/root",
            "acme/release-1",
            &release(&acme.release1, 1),
            &acme.root,
        ),
        certificate_vector(
            "acme/release-2",
            "acme/root",
            "acme/release-2",
            &release(&acme.release2, 2),
            &acme.root,
        ),
        certificate_vector(
            "acme/channel-author",
            "acme/root",
            "acme/channel-author",
            &acme.certificate(Role::ChannelAuthor, &acme.author.verifying_key(), 1),
            &acme.root,
        ),
    ];

    let image = image();
    let m1 = acme.manifest();
    let m2 = acme.manifest_v2();
    let signed1 = acme.sign(&m1);
    let signed2 = acme.sign_gen(&m2, 2);
    let manifests = vec![
        ManifestVector {
            name: "lamp-1.1.0".into(),
            signer: "acme/release-1".into(),
            certificate: "acme/release-1".into(),
            fields: manifest_fields(&m1),
            payload: hex::encode(m1.to_cbor()),
            signed: hex::encode(&signed1),
        },
        ManifestVector {
            name: "lamp-1.2.0".into(),
            signer: "acme/release-2".into(),
            certificate: "acme/release-2".into(),
            fields: manifest_fields(&m2),
            payload: hex::encode(m2.to_cbor()),
            signed: hex::encode(&signed2),
        },
    ];

    // The channel, as every token's follower sees it.
    let tokens_by_name = [
        acme.reader_token(&a),
        acme.reader_token(&b),
        acme.simple_token(),
    ];
    let mut followers: Vec<Follower> = tokens_by_name.iter().map(follower).collect();
    let plaintexts = [
        Some(
            ReleaseBody {
                manifest: signed1.clone(),
            }
            .to_cbor(),
        ),
        Some(HEARTBEAT.to_cbor()),
        Some(demo_revocation().to_cbor()),
        None,
        Some(
            ReleaseBody {
                manifest: signed2.clone(),
            }
            .to_cbor(),
        ),
    ];
    let messages: Vec<MessageVector> = log
        .iter()
        .zip(plaintexts)
        .map(|(wire, plaintext)| {
            let envelope = message::decode(wire).unwrap();
            MessageVector {
                seq: envelope.header.seq,
                kind: kind_name(envelope.header.kind).into(),
                epoch: envelope.header.epoch,
                wire: hex::encode(wire),
                digest: hex::encode(envelope.digest),
                plaintext: plaintext.map(hex::encode),
                outcomes: TOKENS
                    .iter()
                    .zip(&mut followers)
                    .map(|(name, f)| outcome(name, f.ingest(wire, Some(NOW))))
                    .collect(),
            }
        })
        .collect();
    let channel = ChannelVector {
        id: hex::encode(writer.author.channel()),
        author: "acme/channel-author".into(),
        messages,
    };

    let tokens = TOKENS
        .iter()
        .zip(&tokens_by_name)
        .map(|(name, token)| TokenVector {
            name: (*name).into(),
            text: token.to_text(),
            cbor: hex::encode(token.to_cbor()),
            reader: match *name {
                "simple" => None,
                reader => Some(reader.into()),
            },
            epochs: token.keys.iter().map(|(epoch, _)| epoch).collect(),
        })
        .collect();

    let device = |version: &str, security_version| DeviceVector {
        model: "lamp".into(),
        hardware: "rev-b".into(),
        version: version.into(),
        security_version,
    };
    let policy_vector = |name: &str, manifest: &str, device, now, expected: &str| PolicyVector {
        name: name.into(),
        manifest: manifest.into(),
        device,
        now,
        expected: expected.into(),
    };
    let policy = vec![
        policy_vector("update", "lamp-1.1.0", device("1.0.0", 1), NOW, "ok"),
        policy_vector(
            "update-to-1.2.0",
            "lamp-1.2.0",
            device("1.1.0", 1),
            NOW,
            "ok",
        ),
        policy_vector(
            "wrong-model",
            "lamp-1.1.0",
            DeviceVector {
                model: "fan".into(),
                ..device("1.0.0", 1)
            },
            NOW,
            "model",
        ),
        policy_vector(
            "wrong-hardware",
            "lamp-1.1.0",
            DeviceVector {
                hardware: "rev-a".into(),
                ..device("1.0.0", 1)
            },
            NOW,
            "hardware",
        ),
        policy_vector(
            "security-version-rollback",
            "lamp-1.1.0",
            device("1.0.0", 2),
            NOW,
            "security-version",
        ),
        policy_vector(
            "not-newer",
            "lamp-1.1.0",
            device("1.1.0", 1),
            NOW,
            "version",
        ),
        policy_vector(
            "older-version",
            "lamp-1.1.0",
            device("1.2.0", 1),
            NOW,
            "version",
        ),
        policy_vector(
            "prerequisite-not-met",
            "lamp-1.2.0",
            device("1.0.0", 1),
            NOW,
            "prerequisite",
        ),
        policy_vector(
            "expired",
            "lamp-1.2.0",
            device("1.1.0", 1),
            m2.expires.unwrap() + 1,
            "manifest-expiry",
        ),
    ];

    // Negative vectors.
    let mut negatives = Vec::new();
    let mut evil = m1.clone();
    evil.sha256 = [0xee; 32];
    negatives.push(negative(
        "manifest-payload-altered",
        "manifest",
        &replace_payload(&signed1, &evil.to_cbor()),
        "manifest-signature",
    ));
    negatives.push(negative(
        "manifest-signed-by-gateway-key",
        "manifest",
        &evil.sign(&attacker(), &acme.release_cert(1)),
        "manifest-signature",
    ));
    negatives.push(negative(
        "manifest-release-key-not-certified",
        "manifest",
        &m1.sign(
            &acme.release1,
            &release(&acme.release1, 1).issue(&attacker()),
        ),
        "release-key-certificate",
    ));
    negatives.push(negative(
        "manifest-without-certificate",
        "manifest",
        &cose::sign(&acme.release1, None, &m1.to_cbor()),
        "release-key-certificate",
    ));
    negatives.push(negative(
        "manifest-of-other-vendor-root",
        "manifest",
        &globex.sign(&globex.manifest()),
        "release-key-certificate",
    ));
    let mut expired_cert = release(&acme.release1, 1);
    expired_cert.not_after = ISSUED - 1;
    negatives.push(negative(
        "manifest-release-key-expired",
        "manifest",
        &m1.sign(&acme.release1, &expired_cert.issue(&acme.root)),
        "release-key-expiry",
    ));
    negatives.push(NegativeVector {
        min_key_generation: Some(2),
        ..negative(
            "manifest-release-key-retired",
            "manifest",
            &signed1,
            "release-key-generation",
        )
    });
    negatives.push(negative(
        "manifest-signed-by-channel-author-key",
        "manifest",
        &m1.sign(&acme.author, &acme.author_cert()),
        "release-key-role",
    ));
    let mut other_vendor_key = m1.clone();
    other_vendor_key.vendor_key = globex.root.verifying_key().to_bytes();
    negatives.push(negative(
        "manifest-names-other-vendor-key",
        "manifest",
        &acme.sign(&other_vendor_key),
        "vendor-key",
    ));
    let mut expired = m1.clone();
    expired.expires = Some(NOW - 1);
    negatives.push(negative(
        "manifest-expired",
        "manifest",
        &acme.sign(&expired),
        "manifest-expiry",
    ));
    negatives.push(negative(
        "manifest-algorithm-es256",
        "manifest",
        &sign_with_alg(&acme.release1, -7, &acme.release_cert(1), &m1.to_cbor()),
        "signature-algorithm",
    ));
    let release_sign =
        |payload: &[u8]| cose::sign(&acme.release1, Some(&acme.release_cert(1)), payload);
    let payload1 = m1.to_cbor();
    // Keys 1 and 2 swapped: validly signed, but not the deterministic encoding.
    assert_eq!(
        payload1[1..9],
        [0x01, 0x01, 0x02, 0x64, b'a', b'c', b'm', b'e']
    );
    let mut swapped = Encoder::new();
    swapped
        .map(11)
        .u64(2)
        .str("acme")
        .u64(1)
        .u64(1)
        .raw(&payload1[9..]);
    negatives.push(negative(
        "manifest-map-keys-out-of-order",
        "manifest",
        &release_sign(&swapped.into_bytes()),
        "manifest-format",
    ));
    negatives.push(negative(
        "manifest-integer-not-shortest",
        "manifest",
        &release_sign(&replace_once(
            &payload1,
            b"\x651.1.0\x07\x01",
            b"\x651.1.0\x07\x18\x01",
        )),
        "manifest-format",
    ));
    let mut unknown = payload1.clone();
    assert_eq!(unknown[0], 0xab, "map of 11 pairs");
    unknown[0] = 0xac;
    unknown.extend_from_slice(&[0x0f, 0x00]);
    negatives.push(negative(
        "manifest-unknown-field",
        "manifest",
        &release_sign(&unknown),
        "manifest-format",
    ));

    let image_negative = |name: &str, input: &[u8], expected: &str| NegativeVector {
        manifest: Some("lamp-1.1.0".into()),
        ..negative(name, "image", input, expected)
    };
    let mut flipped = image.clone();
    flipped[IMAGE_SIZE / 2] ^= 0x10;
    negatives.push(image_negative("image-bit-flip", &flipped, "image-sha256"));
    negatives.push(image_negative(
        "image-truncated",
        &image[..IMAGE_SIZE - 1],
        "image-size",
    ));
    negatives.push(image_negative(
        "image-extra-byte",
        &[&image[..], &[0]].concat(),
        "image-size",
    ));

    let envelope = message::decode(&log[0]).unwrap();
    negatives.push(message_negative(
        "message-forged-signature",
        &message::encode(&attacker(), envelope.header_bytes, envelope.body),
        "reader-a",
        0,
        "message-signature",
    ));
    negatives.push(message_negative(
        "message-tampered-ciphertext",
        &flip_body_bit(&log[0], 0),
        "reader-a",
        0,
        "message-signature",
    ));
    negatives.push(message_negative(
        "message-truncated",
        &log[0][..log[0].len() - 1],
        "reader-a",
        0,
        "message-format",
    ));
    negatives.push(message_negative(
        "message-replayed",
        &log[0],
        "reader-a",
        1,
        "replay",
    ));
    negatives.push(message_negative(
        "message-reordered",
        &log[1],
        "reader-a",
        0,
        "gap",
    ));
    negatives.push(message_negative(
        "message-dropped",
        &log[2],
        "reader-a",
        1,
        "gap",
    ));
    let fork = writer.seal_at(
        ChainPosition {
            seq: 1,
            prev: [0x42; 32],
        },
        Kind::Heartbeat,
        &HEARTBEAT.to_cbor(),
    );
    negatives.push(message_negative(
        "message-substituted-history",
        &fork,
        "reader-a",
        1,
        "hash-chain",
    ));
    negatives.push(message_negative(
        "message-other-channel",
        &demo_channel(&globex).log[0],
        "reader-a",
        0,
        "channel",
    ));
    let mut stale = acme.writer();
    stale.position = writer.position;
    stale.rng = TestRng::new("stale writer");
    negatives.push(message_negative(
        "message-old-epoch",
        &stale.push(Kind::Heartbeat, &HEARTBEAT.to_cbor()),
        "reader-a",
        5,
        "epoch",
    ));
    negatives.push(message_negative(
        "message-revoked-reader",
        &log[4],
        "reader-b",
        4,
        "epoch-key",
    ));
    negatives.push(message_negative(
        "message-simple-token-after-rotation",
        &log[4],
        "simple",
        4,
        "epoch-key",
    ));
    let head = writer.position;
    negatives.push(message_negative(
        "message-release-of-other-vendor",
        &writer.seal_at(
            head,
            Kind::Release,
            &ReleaseBody {
                manifest: globex.sign(&globex.manifest()),
            }
            .to_cbor(),
        ),
        "reader-a",
        5,
        "release-key-certificate",
    ));
    negatives.push(message_negative(
        "message-undecodable-payload",
        &writer.seal_at(head, Kind::Heartbeat, b"not cbor"),
        "reader-a",
        5,
        "payload",
    ));

    let token_text = tokens_by_name[0].to_text();
    let mut chars: Vec<char> = token_text.chars().collect();
    let mid = chars.len() / 2;
    chars[mid] = if chars[mid] == 'A' { 'B' } else { 'A' };
    let mistyped: String = chars.into_iter().collect();
    negatives.push(negative(
        "token-flipped-character",
        "token",
        mistyped.as_bytes(),
        "token-checksum",
    ));
    negatives.push(negative(
        "token-wrong-prefix",
        "token",
        token_text.replacen("fwl1", "fwl2", 1).as_bytes(),
        "token-format",
    ));
    let garbage = [0xa1u8, 0x01, 0x02];
    let mut framed = garbage.to_vec();
    framed.extend_from_slice(&Sha256::digest(garbage)[..4]);
    let mut garbage_token = String::from("fwl1");
    fwledger_proto::base64::encode_url(&framed, &mut garbage_token);
    negatives.push(negative(
        "token-content",
        "token",
        garbage_token.as_bytes(),
        "token-content",
    ));
    let mut uncertified = tokens_by_name[0].clone();
    uncertified.author_certificate = acme
        .certificate(Role::ChannelAuthor, &acme.author.verifying_key(), 1)
        .issue(&attacker());
    negatives.push(negative(
        "token-author-not-certified",
        "token",
        uncertified.to_text().as_bytes(),
        "channel-author-certificate",
    ));
    negatives.push(NegativeVector {
        pinned_vendor: Some(hex::encode(globex.root.verifying_key().as_bytes())),
        ..negative(
            "token-unexpected-vendor",
            "token",
            token_text.as_bytes(),
            "vendor-pin",
        )
    });

    Vectors {
        description: vec![
            "fwledger protocol test vectors (docs/PROTOCOL.md). Byte strings are lowercase hex."
                .into(),
            "Generated by core/proto/tests/vectors.rs from a deterministic fixture; regenerate \
             with FWLEDGER_REGEN_VECTORS=1 cargo test -p fwledger-proto --test vectors."
                .into(),
            "Verify everything at times.now. Secrets are published here: test use only.".into(),
            "Channel outcomes: each token's follower is fed the messages in order; `error` is \
             the failed check, `advanced` whether the follower moved past the message."
                .into(),
        ],
        times: Times {
            issued: ISSUED,
            now: NOW,
        },
        keys,
        certificates,
        image: ImageVector {
            recipe: IMAGE_RECIPE.into(),
            size: IMAGE_SIZE as u64,
            sha256: hex::encode(Sha256::digest(&image)),
        },
        manifests,
        channel,
        tokens,
        policy,
        negative: negatives,
    }
}

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/proto.json")
}

fn render(vectors: &Vectors) -> String {
    let mut text = serde_json::to_string_pretty(vectors).unwrap();
    text.push('\n');
    text
}

#[test]
fn generated_vectors_match_file() {
    let generated = render(&generate());
    if regenerating() {
        std::fs::write(path(), &generated).unwrap();
        return;
    }
    let on_disk = std::fs::read_to_string(path()).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run FWLEDGER_REGEN_VECTORS=1 cargo test -p fwledger-proto --test vectors",
            path().display()
        )
    });
    assert!(
        on_disk == generated,
        "tests/vectors/proto.json differs from the generator; if the change is intended, \
         regenerate with FWLEDGER_REGEN_VECTORS=1 cargo test -p fwledger-proto --test vectors"
    );
}

// ---------------------------------------------------------------------------------------------
// Verification from the file alone
// ---------------------------------------------------------------------------------------------

fn regenerating() -> bool {
    std::env::var_os("FWLEDGER_REGEN_VECTORS").is_some_and(|v| v == "1")
}

/// The file's vectors (while regenerating: the new vectors, through their JSON text).
fn load() -> Vectors {
    let text = if regenerating() {
        render(&generate())
    } else {
        std::fs::read_to_string(path()).unwrap()
    };
    serde_json::from_str(&text).unwrap()
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn unhex32(s: &str) -> [u8; 32] {
    unhex(s).try_into().unwrap()
}

fn key<'a>(v: &'a Vectors, name: &str) -> &'a KeyVector {
    v.keys
        .iter()
        .find(|k| k.name == name)
        .unwrap_or_else(|| panic!("no key {name}"))
}

fn public(v: &Vectors, name: &str) -> VerifyingKey {
    VerifyingKey::from_bytes(&unhex32(key(v, name).public.as_ref().unwrap())).unwrap()
}

fn manifest_vector<'a>(v: &'a Vectors, name: &str) -> &'a ManifestVector {
    v.manifests.iter().find(|m| m.name == name).unwrap()
}

fn trust(v: &Vectors) -> TrustAnchor {
    TrustAnchor::new(public(v, "acme/root"))
}

fn token_vector<'a>(v: &'a Vectors, name: &str) -> &'a TokenVector {
    v.tokens.iter().find(|t| t.name == name).unwrap()
}

fn token_follower(v: &Vectors, name: &str) -> Follower {
    let token = Token::from_text(&token_vector(v, name).text).unwrap();
    token
        .follower(Some(public(v, "acme/root").as_bytes()))
        .unwrap()
}

fn image_from_recipe(size: u64) -> Vec<u8> {
    (0..size).map(|i| ((i * 7 + 3) % 256) as u8).collect()
}

fn to_manifest(f: &ManifestFields) -> Manifest {
    Manifest {
        vendor: f.vendor.clone(),
        vendor_key: unhex32(&f.vendor_key),
        model: f.model.clone(),
        hardware: f.hardware.clone(),
        version: f.version.parse().unwrap(),
        security_version: f.security_version,
        size: f.size,
        sha256: unhex32(&f.sha256),
        cid: f.cid.clone(),
        issued: f.issued,
        expires: f.expires,
        prerequisite: f.prerequisite.as_ref().map(|p| p.parse().unwrap()),
        notes: f.notes.clone(),
    }
}

#[test]
fn file_vectors_verify() {
    let v = load();
    let now = v.times.now;

    for k in &v.keys {
        let secret = unhex32(&k.secret);
        let derived = match k.algorithm.as_str() {
            "ed25519" => Some(SigningKey::from_bytes(&secret).verifying_key().to_bytes()),
            "x25519" => Some(ReaderKey::from_bytes(secret).public()),
            "xchacha20poly1305" => None,
            other => panic!("unknown algorithm {other}"),
        };
        assert_eq!(derived.map(hex::encode), k.public, "{}", k.name);
        if let Some(public) = &k.public {
            let kid = KeyId::of_bytes(&unhex32(public));
            assert_eq!(Some(hex::encode(kid.0)), k.kid, "{}", k.name);
        }
    }

    for c in &v.certificates {
        let role = match c.role {
            1 => Role::Release,
            2 => Role::ChannelAuthor,
            other => panic!("role {other}"),
        };
        let cert = KeyCertificate::verify(&unhex(&c.cose), &public(&v, &c.signer), role).unwrap();
        assert_eq!(cert.to_cbor(), unhex(&c.payload), "{}", c.name);
        assert_eq!(cert.public_key, *public(&v, &c.subject).as_bytes());
        assert_eq!(
            (
                cert.generation,
                cert.not_before,
                cert.not_after,
                &cert.vendor
            ),
            (c.generation, c.not_before, c.not_after, &c.vendor)
        );
    }

    let image = image_from_recipe(v.image.size);
    assert_eq!(hex::encode(Sha256::digest(&image)), v.image.sha256);

    for m in &v.manifests {
        let signed = unhex(&m.signed);
        let verified = verify_manifest(&signed, &trust(&v), Some(now)).unwrap();
        assert_eq!(verified.manifest, to_manifest(&m.fields), "{}", m.name);
        assert_eq!(verified.manifest.to_cbor(), unhex(&m.payload));
        assert_eq!(
            verified.certificate.public_key,
            *public(&v, &m.signer).as_bytes()
        );
        let sign1 = cose::decode(&signed).unwrap();
        let cert = v
            .certificates
            .iter()
            .find(|c| c.name == m.certificate)
            .unwrap();
        assert_eq!(sign1.certificate.unwrap(), unhex(&cert.cose));
        let mut verifier = ImageVerifier::new(verified.manifest.size, verified.manifest.sha256);
        verifier.update(&image).unwrap();
        verifier.finish().unwrap();
    }

    let author = public(&v, &v.channel.author);
    assert_eq!(hex::encode(channel_id(&author)), v.channel.id);
    for t in &v.tokens {
        let token = Token::from_text(&t.text).unwrap();
        assert_eq!(hex::encode(token.to_cbor()), t.cbor, "{}", t.name);
        assert_eq!(token.to_text(), t.text);
        assert_eq!(token.channel().unwrap(), channel_id(&author));
        assert_eq!(
            token.reader.map(hex::encode),
            t.reader.as_ref().map(|r| key(&v, r).secret.clone())
        );
        let epochs: Vec<u64> = token.keys.iter().map(|(e, _)| e).collect();
        assert_eq!(epochs, t.epochs);
    }
    for (i, token) in TOKENS.iter().enumerate() {
        let mut follower = token_follower(&v, token);
        for m in &v.channel.messages {
            let wire = unhex(&m.wire);
            let envelope = message::decode(&wire).unwrap();
            assert_eq!(envelope.header.seq, m.seq);
            assert_eq!(envelope.header.epoch, m.epoch);
            assert_eq!(kind_name(envelope.header.kind), m.kind);
            assert_eq!(hex::encode(envelope.digest), m.digest);
            let got = outcome(token, follower.ingest(&wire, Some(now)));
            assert_eq!(got, m.outcomes[i], "seq {} for {token}", m.seq);
        }
    }

    for p in &v.policy {
        let m = manifest_vector(&v, &p.manifest);
        let manifest = verify_manifest(&unhex(&m.signed), &trust(&v), None)
            .unwrap()
            .manifest;
        let version: Version = p.device.version.parse().unwrap();
        let device = DeviceState {
            model: &p.device.model,
            hardware: &p.device.hardware,
            version: &version,
            security_version: p.device.security_version,
        };
        let got = match decide(&manifest, &device, Some(p.now)) {
            Ok(()) => "ok",
            Err(refusal) => refusal.check(),
        };
        assert_eq!(got, p.expected, "{}", p.name);
    }

    let messages: Vec<Vec<u8>> = v.channel.messages.iter().map(|m| unhex(&m.wire)).collect();
    for n in &v.negative {
        let input = unhex(&n.input);
        let got: String = match n.kind.as_str() {
            "manifest" => {
                let mut trust = trust(&v);
                trust.min_key_generation = n.min_key_generation.unwrap_or(0);
                verify_manifest(&input, &trust, Some(now))
                    .unwrap_err()
                    .check()
                    .into()
            }
            "image" => {
                let fields = &manifest_vector(&v, n.manifest.as_ref().unwrap()).fields;
                let mut verifier = ImageVerifier::new(fields.size, unhex32(&fields.sha256));
                let result = verifier.update(&input).and_then(|()| verifier.finish());
                result.unwrap_err().check().into()
            }
            "message" => {
                let mut follower = token_follower(&v, n.token.as_ref().unwrap());
                for wire in &messages[..n.after.unwrap() as usize] {
                    follower.ingest(wire, Some(now)).unwrap();
                }
                let before = follower.next_seq();
                let err = follower.ingest(&input, Some(now)).unwrap_err();
                assert_eq!(
                    follower.next_seq() > before,
                    err.advanced(),
                    "{}: advanced() must tell whether the follower moved",
                    n.name
                );
                err.check().into()
            }
            "token" => {
                let text = String::from_utf8(input).unwrap();
                let pin = n.pinned_vendor.as_ref().map(|p| unhex32(p));
                let result = Token::from_text(&text).and_then(|t| t.follower(pin.as_ref()));
                result.unwrap_err().check().into()
            }
            other => panic!("unknown kind {other}"),
        };
        assert_eq!(got, n.expected, "{}", n.name);
    }
}

// ---------------------------------------------------------------------------------------------
// The channel from the file with primitives only: what docs/PROTOCOL.md specifies
// ---------------------------------------------------------------------------------------------

fn cbor_parse(bytes: &[u8]) -> Value {
    ciborium::de::from_reader(bytes).unwrap()
}

fn cbor_encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out).unwrap();
    out
}

fn as_u64(value: &Value) -> u64 {
    u64::try_from(value.as_integer().unwrap()).unwrap()
}

fn as_bytes(value: &Value) -> &[u8] {
    value.as_bytes().unwrap()
}

#[test]
fn file_vectors_verify_with_primitives() {
    let v = load();
    let author = public(&v, "acme/channel-author");
    let reader_secret = unhex32(&key(&v, "reader-a").secret);
    let reader_public = unhex32(key(&v, "reader-a").public.as_ref().unwrap());

    // Channel id.
    let channel: [u8; 32] = Sha256::new()
        .chain_update(b"fwledger-channel-v1")
        .chain_update(author.as_bytes())
        .finalize()
        .into();
    assert_eq!(hex::encode(channel), v.channel.id);

    // Token text: "fwl1" + base64url(cbor ‖ SHA-256(cbor)[..4]); field 5 holds the epoch keys.
    let token = &token_vector(&v, "reader-a");
    let raw = base64url_decode(token.text.strip_prefix("fwl1").unwrap());
    let (cbor, check) = raw.split_at(raw.len() - 4);
    assert_eq!(&Sha256::digest(cbor)[..4], check);
    assert_eq!(hex::encode(cbor), token.cbor);
    let fields = cbor_parse(cbor).into_map().unwrap();
    let mut epoch_keys: Vec<(u64, Vec<u8>)> = Vec::new();
    for (k, value) in &fields {
        if as_u64(k) == 5 {
            for (epoch, key) in value.as_map().unwrap() {
                epoch_keys.push((as_u64(epoch), as_bytes(key).to_vec()));
            }
        }
        if as_u64(k) == 6 {
            assert_eq!(as_bytes(value), reader_secret);
        }
    }

    let mut prev = [0u8; 32];
    for (seq, m) in v.channel.messages.iter().enumerate() {
        let wire = unhex(&m.wire);
        // Envelope [header, body, signature], signature over ["fwledger-msg-v1", header, body].
        let parts = cbor_parse(&wire).into_array().unwrap();
        let (header_bytes, body) = (as_bytes(&parts[0]), as_bytes(&parts[1]));
        let signed = cbor_encode(&Value::Array(vec![
            Value::Text("fwledger-msg-v1".into()),
            parts[0].clone(),
            parts[1].clone(),
        ]));
        let signature = Signature::from_slice(as_bytes(&parts[2])).unwrap();
        author.verify_strict(&signed, &signature).unwrap();
        // Header [1, channel, seq, prev, epoch, kind, nonce] and the digest chain.
        let header = cbor_parse(header_bytes).into_array().unwrap();
        assert_eq!(as_u64(&header[0]), 1);
        assert_eq!(as_bytes(&header[1]), channel);
        assert_eq!(as_u64(&header[2]), seq as u64);
        assert_eq!(as_bytes(&header[3]), prev);
        let epoch = as_u64(&header[4]);
        let kind = as_u64(&header[5]);
        let nonce = as_bytes(&header[6]);
        prev = Sha256::digest(&wire).into();
        assert_eq!(hex::encode(prev), m.digest);

        if kind == 4 {
            // Keyload {1: epoch, 2: ephemeral, 3: [[reader kid, nonce, wrapped]…]}.
            let keyload = cbor_parse(body).into_map().unwrap();
            assert_eq!(as_u64(&keyload[0].1), epoch);
            let ephemeral: [u8; 32] = as_bytes(&keyload[1].1).try_into().unwrap();
            let kid = &Sha256::digest(reader_public)[..8];
            let entry = keyload[2]
                .1
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e.as_array().unwrap())
                .find(|e| as_bytes(&e[0]) == kid)
                .expect("reader A is addressed");
            let shared = x25519_dalek::StaticSecret::from(reader_secret)
                .diffie_hellman(&x25519_dalek::PublicKey::from(ephemeral));
            let info = [&b"fwledger-keyload-v1"[..], &ephemeral, &reader_public].concat();
            let mut kek = [0u8; 32];
            Hkdf::<Sha256>::new(Some(&channel), shared.as_bytes())
                .expand(&info, &mut kek)
                .unwrap();
            let wrapped = XChaCha20Poly1305::new(Key::from_slice(&kek))
                .decrypt(
                    XNonce::from_slice(as_bytes(&entry[1])),
                    Payload {
                        msg: as_bytes(&entry[2]),
                        aad: header_bytes,
                    },
                )
                .unwrap();
            epoch_keys.clear();
            for (e, k) in cbor_parse(&wrapped).into_map().unwrap() {
                epoch_keys.push((as_u64(&e), as_bytes(&k).to_vec()));
            }
            let epoch1 = unhex(&key(&v, "acme/epoch-1").secret);
            assert!(epoch_keys.contains(&(1, epoch1)));
            assert!(m.plaintext.is_none());
            continue;
        }
        let epoch_key = &epoch_keys.iter().find(|(e, _)| *e == epoch).unwrap().1;
        let plaintext = XChaCha20Poly1305::new(Key::from_slice(epoch_key))
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: header_bytes,
                },
            )
            .unwrap();
        assert_eq!(Some(hex::encode(&plaintext)), m.plaintext, "seq {seq}");
        if kind == 1 {
            // Release {1: signed manifest}: the COSE_Sign1 of one of the manifest vectors.
            let body = cbor_parse(&plaintext).into_map().unwrap();
            let manifest = hex::encode(as_bytes(&body[0].1));
            assert!(v.manifests.iter().any(|mv| mv.signed == manifest));
        }
    }
}

/// Unpadded base64url, written out here so the check does not use the crate's decoder.
fn base64url_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in text.bytes() {
        let value = ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
        bits = (bits << 6) | value;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    out
}

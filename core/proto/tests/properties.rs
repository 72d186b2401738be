//! Property tests: every encoder/decoder pair round-trips, and no decoder panics on arbitrary or
//! mutated input (mutated signed objects never verify).

mod common;

use std::sync::LazyLock;

use common::*;
use ed25519_dalek::SigningKey;
use fwledger_proto::base64;
use fwledger_proto::cbor::Decoder;
use fwledger_proto::channel::keyload::seal_keyload;
use fwledger_proto::channel::Follower;
use fwledger_proto::channel::{
    message, EpochKeys, Header, Heartbeat, Keyload, Kind, ReaderKey, ReleaseBody, Revocation, Token,
};
use fwledger_proto::cose;
use fwledger_proto::keys::{KeyCertificate, Role};
use fwledger_proto::manifest::{verify_manifest, Manifest, TrustAnchor};
use fwledger_proto::version::Version;
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use sha2::{Digest, Sha256};

const CASES: u32 = 256;
const CRYPTO_CASES: u32 = 64;

/// Keys, signed objects and followers built once: Ed25519 and X25519 in debug builds are slow.
struct Fixed {
    root: SigningKey,
    author: SigningKey,
    trust: TrustAnchor,
    signed_manifest: Vec<u8>,
    channel: Vec<Vec<u8>>,
    token_cbor: Vec<u8>,
    /// `followers[n]`: reader A's follower after the first `n` channel messages.
    followers: Vec<Follower>,
}

static FIXED: LazyLock<Fixed> = LazyLock::new(|| {
    let acme = acme();
    let channel = demo_channel(&acme).log;
    let mut follower = follower(&acme.reader_token(&reader_a()));
    let mut followers = vec![follower.clone()];
    for wire in &channel {
        follower.ingest(wire, Some(NOW)).unwrap();
        followers.push(follower.clone());
    }
    Fixed {
        trust: acme.trust(),
        signed_manifest: acme.sign(&acme.manifest_v2()),
        token_cbor: acme.reader_token(&reader_a()).to_cbor(),
        channel,
        followers,
        root: acme.root,
        author: acme.author,
    }
});

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,12}"
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..max)
}

/// The text of a valid semantic version (at most 118 characters, below the 128 limit).
fn version_text() -> impl Strategy<Value = String> {
    let pre_id = prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        "[A-Za-z-][0-9A-Za-z-]{0,5}",
    ];
    (
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        vec(pre_id, 0..3),
        vec("[0-9A-Za-z-]{1,6}", 0..3),
    )
        .prop_map(|(major, minor, patch, pre, build)| {
            let mut s = format!("{major}.{minor}.{patch}");
            if !pre.is_empty() {
                s.push('-');
                s.push_str(&pre.join("."));
            }
            if !build.is_empty() {
                s.push('+');
                s.push_str(&build.join("."));
            }
            s
        })
}

fn version() -> impl Strategy<Value = Version> {
    version_text().prop_map(|s| s.parse().unwrap())
}

fn manifest() -> impl Strategy<Value = Manifest> {
    (
        (text(), any::<[u8; 32]>(), text(), vec(text(), 1..4)),
        (version(), any::<u64>(), any::<u64>(), any::<[u8; 32]>()),
        (
            text(),
            any::<u64>(),
            option::of(any::<u64>()),
            option::of(version()),
            option::of(text()),
        ),
    )
        .prop_map(
            |(
                (vendor, vendor_key, model, hardware),
                (version, security_version, size, sha256),
                (cid, issued, expires, prerequisite, notes),
            )| Manifest {
                vendor,
                vendor_key,
                model,
                hardware,
                version,
                security_version,
                size,
                sha256,
                cid,
                issued,
                expires,
                prerequisite,
                notes,
            },
        )
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Release), Just(Role::ChannelAuthor)]
}

fn certificate() -> impl Strategy<Value = KeyCertificate> {
    (
        role(),
        any::<[u8; 32]>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        text(),
    )
        .prop_map(
            |(role, public_key, generation, not_before, not_after, vendor)| KeyCertificate {
                role,
                public_key,
                generation,
                not_before,
                not_after,
                vendor,
            },
        )
}

/// Epoch keys. Epochs are limited to `0..=i64::MAX`: the decoder reads map keys as CBOR
/// integers that fit `i64` (see PROTOCOL.md; real epochs count up from 0).
fn epoch_keys() -> impl Strategy<Value = EpochKeys> {
    btree_map(0..=i64::MAX as u64, any::<[u8; 32]>(), 0..4).prop_map(|map| {
        let mut keys = EpochKeys::new();
        for (epoch, key) in map {
            keys.insert(epoch, key);
        }
        keys
    })
}

fn token() -> impl Strategy<Value = Token> {
    (
        text(),
        any::<[u8; 32]>(),
        bytes(200),
        epoch_keys(),
        option::of(any::<[u8; 32]>()),
        option::of(text()),
    )
        .prop_map(
            |(vendor, vendor_key, author_certificate, keys, reader, ledger_hint)| Token {
                vendor,
                vendor_key,
                author_certificate,
                keys,
                reader,
                ledger_hint,
            },
        )
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Release),
        Just(Kind::Revoke),
        Just(Kind::Heartbeat),
        Just(Kind::Keyload),
    ]
}

fn header() -> impl Strategy<Value = Header> {
    (
        any::<[u8; 32]>(),
        any::<u64>(),
        any::<[u8; 32]>(),
        any::<u64>(),
        kind(),
        any::<[u8; 24]>(),
    )
        .prop_map(|(channel, seq, prev, epoch, kind, nonce)| Header {
            channel,
            seq,
            prev,
            epoch,
            kind,
            nonce,
        })
}

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn manifest_round_trips(m in manifest()) {
        let cbor = m.to_cbor();
        prop_assert_eq!(Manifest::from_cbor(&cbor).unwrap(), m.clone());
        // The decoded manifest re-encodes to the same bytes (one encoding per manifest).
        prop_assert_eq!(Manifest::from_cbor(&cbor).unwrap().to_cbor(), cbor);
    }

    #[test]
    fn token_round_trips(t in token()) {
        prop_assert_eq!(Token::from_cbor(&t.to_cbor()).unwrap(), t.clone());
        let text = t.to_text();
        prop_assert!(text.starts_with("fwl1"));
        prop_assert!(text[4..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        prop_assert_eq!(Token::from_text(&text).unwrap(), t.clone());
        prop_assert_eq!(Token::from_text(&format!("  {text}\n")).unwrap(), t);
    }

    #[test]
    fn payloads_round_trip(
        manifest in bytes(300),
        (model, version, reason) in (text(), text(), text()),
        (time, valid_until) in (any::<u64>(), any::<u64>()),
    ) {
        let release = ReleaseBody { manifest };
        prop_assert_eq!(ReleaseBody::from_cbor(&release.to_cbor()).unwrap(), release);
        let revocation = Revocation { model, version, reason };
        prop_assert_eq!(Revocation::from_cbor(&revocation.to_cbor()).unwrap(), revocation);
        let heartbeat = Heartbeat { time, valid_until };
        prop_assert_eq!(Heartbeat::from_cbor(&heartbeat.to_cbor()).unwrap(), heartbeat);
    }

    #[test]
    fn epoch_keys_round_trip(keys in epoch_keys()) {
        prop_assert_eq!(EpochKeys::from_cbor(&keys.to_cbor()).unwrap(), keys);
    }

    #[test]
    fn version_display_parse_round_trips(text in version_text()) {
        let v: Version = text.parse().unwrap();
        prop_assert_eq!(v.to_string(), text.clone());
        prop_assert_eq!(v.as_str(), text.as_str());
        let again: Version = v.to_string().parse().unwrap();
        prop_assert_eq!(again.cmp(&v), std::cmp::Ordering::Equal);
    }

    #[test]
    fn version_order_is_total_and_consistent(a in version(), b in version()) {
        prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
        prop_assert_eq!(a == b, a.cmp(&b) == std::cmp::Ordering::Equal);
    }

    #[test]
    fn base64_round_trips_and_is_canonical(data in bytes(200), text in "[A-Za-z0-9_-]{0,40}") {
        let mut encoded = String::new();
        base64::encode_url(&data, &mut encoded);
        prop_assert_eq!(base64::decode_url(&encoded).unwrap(), data);
        // Every accepted text is the one encoding of its bytes.
        if let Some(decoded) = base64::decode_url(&text) {
            let mut again = String::new();
            base64::encode_url(&decoded, &mut again);
            prop_assert_eq!(again, text);
        }
    }
}

proptest! {
    // Every case signs or verifies (Ed25519, X25519), which debug builds make slow: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(CRYPTO_CASES))]

    #[test]
    fn certificate_round_trips(c in certificate()) {
        let cbor = c.to_cbor();
        prop_assert_eq!(KeyCertificate::from_cbor(&cbor).unwrap(), c.clone());
        let root = &FIXED.root;
        let issued = c.issue(root);
        prop_assert_eq!(KeyCertificate::verify(&issued, &root.verifying_key(), c.role), Ok(c));
    }

    #[test]
    fn message_round_trips(h in header(), body in bytes(300)) {
        let author = &FIXED.author;
        let header_bytes = h.to_cbor();
        let wire = message::encode(author, &header_bytes, &body);
        let envelope = message::decode(&wire).unwrap();
        prop_assert_eq!(&envelope.header, &h);
        prop_assert_eq!(envelope.header_bytes, &header_bytes[..]);
        prop_assert_eq!(envelope.body, &body[..]);
        prop_assert!(envelope.verify(&author.verifying_key()));
        prop_assert!(!envelope.verify(&FIXED.root.verifying_key()));
        let digest: [u8; 32] = Sha256::digest(&wire).into();
        prop_assert_eq!(envelope.digest, digest);
    }

    #[test]
    fn mutated_manifest_never_verifies(index in any::<prop::sample::Index>(), flip in 1u8..) {
        let mut signed = FIXED.signed_manifest.clone();
        let i = index.index(signed.len());
        signed[i] ^= flip;
        prop_assert!(verify_manifest(&signed, &FIXED.trust, Some(NOW)).is_err());
    }

    #[test]
    fn mutated_message_never_accepted(
        which in 0usize..5,
        index in any::<prop::sample::Index>(),
        flip in 1u8..,
    ) {
        let fixed = &*FIXED;
        let mut follower = fixed.followers[which].clone();
        let mut wire = fixed.channel[which].clone();
        let i = index.index(wire.len());
        wire[i] ^= flip;
        let err = follower.ingest(&wire, Some(NOW)).unwrap_err();
        prop_assert!(!err.advanced(), "{:?}", err);
        prop_assert_eq!(follower.next_seq(), which as u64);
        follower.ingest(&fixed.channel[which], Some(NOW)).unwrap();
    }

    #[test]
    fn mutated_token_never_panics(index in any::<prop::sample::Index>(), flip in 1u8..) {
        let mut cbor = FIXED.token_cbor.clone();
        let i = index.index(cbor.len());
        cbor[i] ^= flip;
        if let Ok(token) = Token::from_cbor(&cbor) {
            let _ = token.follower(None);
        }
    }
}

proptest! {
    // About ten X25519 operations per reader and case.
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn keyload_round_trips(
        keys in epoch_keys(),
        epoch in any::<u64>(),
        readers in vec(any::<[u8; 32]>(), 0..3),
        outsider in any::<[u8; 32]>(),
        header in bytes(64),
        seed in any::<u64>(),
    ) {
        let channel = [9u8; 32];
        let readers: Vec<ReaderKey> = readers.into_iter().map(ReaderKey::from_bytes).collect();
        let publics: Vec<[u8; 32]> = readers.iter().map(ReaderKey::public).collect();
        let mut rng = TestRng::new(&seed.to_string());
        let body = seal_keyload(&channel, &header, epoch, &keys, &publics, &mut rng);
        let keyload = Keyload::from_cbor(&body).unwrap();
        prop_assert_eq!(keyload.epoch, epoch);
        prop_assert_eq!(keyload.readers(), readers.len());
        for reader in &readers {
            prop_assert_eq!(keyload.open(&channel, &header, reader).unwrap(), Some(keys.clone()));
            // The wrapped keys are bound to the header and the channel.
            let mut other_header = header.clone();
            other_header.push(0);
            prop_assert!(keyload.open(&channel, &other_header, reader).is_err());
            prop_assert!(keyload.open(&[8; 32], &header, reader).is_err());
        }
        let outsider = ReaderKey::from_bytes(outsider);
        if !publics.contains(&outsider.public()) {
            prop_assert_eq!(keyload.open(&channel, &header, &outsider).unwrap(), None);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// No panics on arbitrary input
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn cbor_skip_never_panics(input in bytes(512)) {
        let mut d = Decoder::new(&input);
        if let Ok(item) = d.skip() {
            prop_assert_eq!(item, &input[..item.len()]);
            prop_assert_eq!(d.position(), item.len());
        }
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(input in bytes(512)) {
        let _ = cose::decode(&input);
        let _ = Manifest::from_cbor(&input);
        let _ = KeyCertificate::from_cbor(&input);
        let _ = KeyCertificate::verify(&input, &FIXED.trust.root, Role::Release);
        let _ = verify_manifest(&input, &FIXED.trust, Some(NOW));
        let _ = message::decode(&input);
        let _ = Keyload::from_cbor(&input);
        let _ = EpochKeys::from_cbor(&input);
        let _ = ReleaseBody::from_cbor(&input);
        let _ = Revocation::from_cbor(&input);
        let _ = Heartbeat::from_cbor(&input);
        let _ = Token::from_cbor(&input);
        let mut follower = FIXED.followers[0].clone();
        prop_assert!(follower.ingest(&input, Some(NOW)).is_err());
        prop_assert_eq!(follower.next_seq(), 0);
    }

    #[test]
    fn tagged_arbitrary_bytes_never_panic(input in bytes(512)) {
        // Reach past the first checks: a COSE_Sign1 tag and array head, a message array head.
        let mut sign1 = vec![0xd2, 0x84];
        sign1.extend_from_slice(&input);
        let _ = cose::decode(&sign1);
        let _ = verify_manifest(&sign1, &FIXED.trust, Some(NOW));
        let mut msg = vec![0x83];
        msg.extend_from_slice(&input);
        let _ = message::decode(&msg);
    }

    #[test]
    fn token_text_never_panics(text in "\\PC{0,200}", payload in bytes(300)) {
        let _ = Token::from_text(&text);
        let _ = Token::from_text(&format!("fwl1{text}"));
        // Well-formed text with a correct checksum around arbitrary content.
        let mut framed = payload.clone();
        framed.extend_from_slice(&Sha256::digest(&payload)[..4]);
        let mut token = String::from("fwl1");
        base64::encode_url(&framed, &mut token);
        let _ = Token::from_text(&token);
    }

    #[test]
    fn base64_decode_never_panics(text in "\\PC{0,100}") {
        let _ = base64::decode_url(&text);
    }

    #[test]
    fn version_parse_never_panics(text in "\\PC{0,200}", near in "[0-9a-zA-Z.+-]{0,40}") {
        let _ = text.parse::<Version>();
        if let Ok(v) = near.parse::<Version>() {
            prop_assert_eq!(v.as_str(), near.as_str());
        }
    }

    #[test]
    fn truncated_manifest_never_verifies(index in any::<prop::sample::Index>()) {
        let signed = &FIXED.signed_manifest;
        let cut = index.index(signed.len());
        prop_assert!(verify_manifest(&signed[..cut], &FIXED.trust, Some(NOW)).is_err());
    }
}

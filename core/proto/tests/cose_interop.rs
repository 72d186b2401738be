//! Interoperability: signed manifests and key certificates are standard COSE_Sign1 that an
//! independent COSE library (`coset`) parses and checks, and their payloads are plain CBOR that an
//! independent CBOR library (`ciborium`) reads and re-encodes to the same bytes.

mod common;

use ciborium::Value;
use common::*;
use coset::{iana, CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder, Label};
use coset::{RegisteredLabelWithPrivate, TaggedCborSerializable};
use ed25519_dalek::{Signature, Signer, VerifyingKey};
use fwledger_proto::channel::message;
use fwledger_proto::keys::{KeyCertificate, KeyId, Role};
use fwledger_proto::manifest::{verify_manifest, Manifest};
use sha2::{Digest, Sha256};

/// Parses with coset and checks the profile: EdDSA, kid = SHA-256(key)[..8], signature valid.
fn check_with_coset(bytes: &[u8], signer: &VerifyingKey) -> CoseSign1 {
    let sign1 = CoseSign1::from_tagged_slice(bytes).unwrap();
    assert_eq!(
        sign1.protected.header.alg,
        Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::EdDSA))
    );
    let kid = &Sha256::digest(signer.as_bytes())[..8];
    assert_eq!(sign1.protected.header.key_id, kid);
    assert_eq!(sign1.protected.header.key_id, KeyId::of(signer).0);
    sign1
        .verify_signature(b"", |sig, tbs| {
            signer.verify_strict(tbs, &Signature::from_slice(sig).unwrap())
        })
        .unwrap();
    // coset's to-be-signed bytes are the Sig_structure of RFC 9052 §4.4.
    let tbs = sign1.tbs_data(b"");
    let expected = Value::Array(vec![
        Value::Text("Signature1".into()),
        Value::Bytes(sign1.protected.original_data.clone().unwrap()),
        Value::Bytes(vec![]),
        Value::Bytes(sign1.payload.clone().unwrap()),
    ]);
    assert_eq!(tbs, cbor(&expected));
    // And coset re-encodes the message to the very same bytes.
    assert_eq!(sign1.clone().to_tagged_vec().unwrap(), bytes);
    sign1
}

fn cbor(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out).unwrap();
    out
}

fn parse(bytes: &[u8]) -> Value {
    ciborium::de::from_reader(bytes).unwrap()
}

fn int_map(value: Value) -> Vec<(i128, Value)> {
    value
        .into_map()
        .unwrap()
        .into_iter()
        .map(|(k, v)| (i128::from(k.into_integer().unwrap()), v))
        .collect()
}

#[test]
fn key_certificate_is_standard_cose_sign1() {
    let acme = acme();
    let cert_bytes = acme.release_cert(1);
    let sign1 = check_with_coset(&cert_bytes, &acme.root.verifying_key());
    assert!(
        sign1.unprotected.is_empty(),
        "certificates carry no unprotected header"
    );
    let payload = sign1.payload.unwrap();
    let fields = int_map(parse(&payload));
    let key = acme.release1.verifying_key().to_bytes().to_vec();
    assert_eq!(
        fields,
        vec![
            (1, Value::from(Role::Release as u64)),
            (2, Value::Bytes(key)),
            (3, Value::from(1u64)),
            (4, Value::from(CERT_NOT_BEFORE)),
            (5, Value::from(CERT_NOT_AFTER)),
            (6, Value::Text("acme".into())),
        ]
    );
    assert_eq!(cbor(&parse(&payload)), payload, "deterministic encoding");
}

#[test]
fn signed_manifest_is_standard_cose_sign1() {
    let acme = acme();
    let manifest = acme.manifest_v2();
    let signed = acme.sign_gen(&manifest, 2);
    let sign1 = check_with_coset(&signed, &acme.release2.verifying_key());

    // The release-key certificate rides in the unprotected header under private label -65537,
    // and is itself a COSE_Sign1 by the root key.
    assert_eq!(sign1.unprotected.rest.len(), 1);
    let (label, value) = &sign1.unprotected.rest[0];
    assert_eq!(*label, Label::Int(-65537));
    let cert = value.as_bytes().unwrap();
    assert_eq!(*cert, acme.release_cert(2));
    check_with_coset(cert, &acme.root.verifying_key());

    // The payload is the integer-keyed manifest map, in deterministic order.
    let payload = sign1.payload.unwrap();
    assert_eq!(cbor(&parse(&payload)), payload, "deterministic encoding");
    let text = |s: &str| Value::Text(s.into());
    assert_eq!(
        int_map(parse(&payload)),
        vec![
            (1, Value::from(1u64)),
            (2, text("acme")),
            (
                3,
                Value::Bytes(acme.root.verifying_key().to_bytes().to_vec())
            ),
            (4, text("lamp")),
            (5, Value::Array(vec![text("rev-b"), text("rev-c")])),
            (6, text("1.2.0")),
            (7, Value::from(2u64)),
            (8, Value::from(manifest.size)),
            (9, Value::Bytes(manifest.sha256.to_vec())),
            (10, text(&manifest.cid)),
            (11, Value::from(ISSUED + 120)),
            (12, Value::from(manifest.expires.unwrap())),
            (13, text("1.1.0")),
            (14, text("Fixes the dimmer flicker.")),
        ]
    );
}

#[test]
fn manifest_signed_with_coset_verifies() {
    // The other direction: a manifest signed by an independent COSE implementation.
    let acme = acme();
    let manifest = acme.manifest();
    let key = &acme.release1;
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .key_id(KeyId::of(&key.verifying_key()).0.to_vec())
        .build();
    let unprotected = HeaderBuilder::new()
        .value(-65537, Value::Bytes(acme.release_cert(1)))
        .build();
    let signed = CoseSign1Builder::new()
        .protected(protected)
        .unprotected(unprotected)
        .payload(manifest.to_cbor())
        .create_signature(b"", |tbs| key.sign(tbs).to_bytes().to_vec())
        .build()
        .to_tagged_vec()
        .unwrap();
    assert_eq!(signed, acme.sign(&manifest), "byte-identical to ours");
    let verified = verify_manifest(&signed, &acme.trust(), Some(NOW)).unwrap();
    assert_eq!(verified.manifest, manifest);
}

#[test]
fn manifest_from_ciborium_map_decodes() {
    // A manifest map written by hand with another CBOR encoder decodes to the same manifest.
    let acme = acme();
    let m = acme.manifest();
    let text = |s: &str| Value::Text(s.into());
    let map = Value::Map(vec![
        (Value::from(1), Value::from(1)),
        (Value::from(2), text("acme")),
        (Value::from(3), Value::Bytes(m.vendor_key.to_vec())),
        (Value::from(4), text("lamp")),
        (
            Value::from(5),
            Value::Array(vec![text("rev-b"), text("rev-c")]),
        ),
        (Value::from(6), text("1.1.0")),
        (Value::from(7), Value::from(1)),
        (Value::from(8), Value::from(m.size)),
        (Value::from(9), Value::Bytes(m.sha256.to_vec())),
        (Value::from(10), text(&m.cid)),
        (Value::from(11), Value::from(ISSUED)),
    ]);
    let bytes = cbor(&map);
    assert_eq!(bytes, m.to_cbor());
    assert_eq!(Manifest::from_cbor(&bytes).unwrap(), m);
}

#[test]
fn channel_message_signature_input_is_plain_cbor() {
    // The message envelope is not COSE, but its signature input is a plain CBOR array any
    // encoder reproduces: ["fwledger-msg-v1", header, body].
    let acme = acme();
    let channel = demo_channel(&acme);
    for wire in &channel.log {
        let parts = parse(wire).into_array().unwrap();
        assert_eq!(parts.len(), 3);
        let header = parts[0].as_bytes().unwrap().clone();
        let body = parts[1].as_bytes().unwrap().clone();
        let signature = Signature::from_slice(parts[2].as_bytes().unwrap()).unwrap();
        let signed = cbor(&Value::Array(vec![
            Value::Text("fwledger-msg-v1".into()),
            Value::Bytes(header.clone()),
            Value::Bytes(body),
        ]));
        acme.author
            .verifying_key()
            .verify_strict(&signed, &signature)
            .unwrap();
        // Header: [1, channel, seq, prev, epoch, kind, nonce].
        let fields = parse(&header).into_array().unwrap();
        assert_eq!(fields.len(), 7);
        assert_eq!(fields[0], Value::from(1));
        assert_eq!(
            fields[1].as_bytes().unwrap()[..],
            message::channel_id(&acme.author.verifying_key())
        );
        assert_eq!(cbor(&parse(&header)), header);
    }
}

#[test]
fn certificate_verifies_only_with_its_root() {
    let acme = acme();
    let cert = acme.author_cert();
    let sign1 = CoseSign1::from_slice(&cert[1..]).unwrap(); // untagged form parses too
    assert_eq!(
        KeyCertificate::from_cbor(sign1.payload.as_ref().unwrap())
            .unwrap()
            .role,
        Role::ChannelAuthor
    );
    let other = globex().root.verifying_key();
    assert!(sign1
        .verify_signature(b"", |sig, tbs| {
            other.verify_strict(tbs, &Signature::from_slice(sig).unwrap())
        })
        .is_err());
}

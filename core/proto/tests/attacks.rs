//! One named test per attack of DESIGN.md §2, each asserting the exact error, plus the happy
//! paths the attacks are measured against.

mod common;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use common::*;
use fwledger_proto::channel::{
    message, ChainPosition, EpochKeys, Event, FollowError, Freshness, Header, Kind, ReleaseBody,
    Token, TokenError,
};
use fwledger_proto::cose;
use fwledger_proto::image::{ImageError, ImageVerifier};
use fwledger_proto::keys::{CertificateError, Role};
use fwledger_proto::manifest::{verify_manifest, ManifestError, TrustAnchor};
use fwledger_proto::policy::{decide, Refusal};
use fwledger_proto::version::Version;

fn verify(signed: &[u8]) -> Result<fwledger_proto::VerifiedManifest, ManifestError> {
    verify_manifest(signed, &acme().trust(), Some(NOW))
}

fn v(text: &str) -> Version {
    text.parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Happy paths
// ---------------------------------------------------------------------------------------------

#[test]
fn device_installs_genuine_release() {
    let acme = acme();
    let verified = verify(&acme.sign(&acme.manifest())).unwrap();
    assert_eq!(verified.manifest, acme.manifest());
    assert_eq!(verified.certificate.generation, 1);
    decide(&verified.manifest, &device(&installed()), Some(NOW)).unwrap();
    let mut verifier = ImageVerifier::new(verified.manifest.size, verified.manifest.sha256);
    for chunk in image().chunks(97) {
        verifier.update(chunk).unwrap();
    }
    verifier.finish().unwrap();
}

#[test]
fn publish_follow_round_trip() {
    let acme = acme();
    let channel = demo_channel(&acme);
    let mut follower = follower(&acme.reader_token(&reader_a()));
    assert_eq!(follower.freshness(NOW), Freshness::Unknown);
    let events: Vec<Event> = channel
        .log
        .iter()
        .enumerate()
        .map(|(seq, wire)| {
            let delivery = follower.ingest(wire, Some(NOW)).unwrap();
            assert_eq!(delivery.seq, seq as u64);
            assert_eq!(delivery.digest, message::decode(wire).unwrap().digest);
            delivery.event
        })
        .collect();
    assert!(matches!(&events[0], Event::Release { verified, signed }
        if verified.manifest == acme.manifest() && *signed == acme.sign(&acme.manifest())));
    assert_eq!(events[1], Event::Heartbeat(HEARTBEAT));
    assert_eq!(events[2], Event::Revoke(demo_revocation()));
    assert_eq!(
        events[3],
        Event::Keyload {
            epoch: 1,
            admitted: true
        }
    );
    assert!(matches!(&events[4], Event::Release { verified, .. }
        if verified.manifest == acme.manifest_v2() && verified.certificate.generation == 2));
    assert_eq!(follower.next_seq(), 5);
    assert_eq!(
        follower.freshness(NOW),
        Freshness::Fresh {
            valid_until: HEARTBEAT.valid_until
        }
    );
}

#[test]
fn keyload_admits_remaining_reader() {
    let acme = acme();
    let channel = demo_channel(&acme);
    let mut follower = follower(&acme.reader_token(&reader_a()));
    for wire in &channel.log[..3] {
        follower.ingest(wire, Some(NOW)).unwrap();
    }
    let delivery = follower.ingest(&channel.log[3], Some(NOW)).unwrap();
    assert_eq!(delivery.epoch, 1);
    assert_eq!(
        delivery.event,
        Event::Keyload {
            epoch: 1,
            admitted: true
        }
    );
    assert_eq!(follower.state().keys, *channel.author.keys());
}

#[test]
fn follower_state_restore_resumes() {
    let acme = acme();
    let channel = demo_channel(&acme);
    let token = acme.reader_token(&reader_a());
    let mut first = follower(&token);
    for wire in &channel.log[..4] {
        first.ingest(wire, Some(NOW)).unwrap();
    }
    let saved = first.state();
    assert_eq!(saved.position.seq, 4);
    assert_eq!(saved.latest_epoch, 1);
    assert_eq!(saved.heartbeat, Some(HEARTBEAT));

    // After a restart the gateway has only its token and the saved state: the epoch-1 key it
    // learned from the keyload must survive, and the chain continues where it stopped.
    let mut resumed = follower(&token);
    assert!(resumed.state().keys.get(1).is_none());
    resumed.restore(&saved);
    assert_eq!(resumed.state(), saved);
    assert!(matches!(
        resumed.ingest(&channel.log[3], Some(NOW)),
        Err(FollowError::Replayed {
            seq: 3,
            expected: 4
        })
    ));
    let delivery = resumed.ingest(&channel.log[4], Some(NOW)).unwrap();
    assert!(matches!(delivery.event, Event::Release { .. }));
    assert_eq!(
        resumed.freshness(NOW),
        Freshness::Fresh {
            valid_until: HEARTBEAT.valid_until
        }
    );
}

#[test]
fn simple_mode_token_issued_after_rotation_reads_new_epoch() {
    let acme = acme();
    let channel = demo_channel(&acme);
    // The vendor hands out a new shared-key token holding every epoch key so far.
    let mut follower = follower(&acme.token(channel.author.keys(), None));
    for wire in &channel.log[..3] {
        follower.ingest(wire, Some(NOW)).unwrap();
    }
    assert_eq!(
        follower.ingest(&channel.log[3], Some(NOW)).unwrap().event,
        Event::Keyload {
            epoch: 1,
            admitted: true
        }
    );
    let delivery = follower.ingest(&channel.log[4], Some(NOW)).unwrap();
    assert!(matches!(delivery.event, Event::Release { .. }));
}

// ---------------------------------------------------------------------------------------------
// Arbitrary software: the device checks the vendor's signature chain itself
// ---------------------------------------------------------------------------------------------

#[test]
fn forged_manifest_signature() {
    let acme = acme();
    let signed = acme.sign(&acme.manifest());
    let mut evil = acme.manifest();
    evil.sha256 = [0xee; 32];
    let forged = replace_payload(&signed, &evil.to_cbor());
    assert_eq!(verify(&forged).unwrap_err(), ManifestError::BadSignature);
}

#[test]
fn release_key_not_certified() {
    let acme = acme();
    // The certificate names the real release key but is signed by another key, not the root.
    let cert = acme
        .certificate(Role::Release, &acme.release1.verifying_key(), 1)
        .issue(&attacker());
    let signed = acme.manifest().sign(&acme.release1, &cert);
    assert_eq!(verify(&signed).unwrap_err(), ManifestError::KeyNotCertified);
}

#[test]
fn manifest_without_certificate() {
    let acme = acme();
    let signed = cose::sign(&acme.release1, None, &acme.manifest().to_cbor());
    assert_eq!(
        verify(&signed).unwrap_err(),
        ManifestError::MissingCertificate
    );
}

#[test]
fn release_key_expired() {
    let acme = acme();
    let key = acme.release1.verifying_key();
    // Expired before the manifest was issued.
    let mut cert = acme.certificate(Role::Release, &key, 1);
    cert.not_after = ISSUED - 1;
    let signed = acme
        .manifest()
        .sign(&acme.release1, &cert.issue(&acme.root));
    assert_eq!(
        verify(&signed).unwrap_err(),
        ManifestError::KeyExpired {
            not_after: ISSUED - 1
        }
    );
    // Valid at issue time, expired by now.
    cert.not_after = ISSUED + 1;
    let signed = acme
        .manifest()
        .sign(&acme.release1, &cert.issue(&acme.root));
    assert_eq!(
        verify(&signed).unwrap_err(),
        ManifestError::KeyExpired {
            not_after: ISSUED + 1
        }
    );
    // Without a clock only the issue time can be checked.
    verify_manifest(&signed, &acme.trust(), None).unwrap();
}

#[test]
fn release_key_compromise_recovery_retires_generation() {
    let acme = acme();
    let mut trust = acme.trust();
    let old = acme.sign_gen(&acme.manifest(), 1);
    verify_manifest(&old, &trust, Some(NOW)).unwrap();
    // The vendor certifies generation 2; the device accepts a release signed with it and from
    // then on refuses generation 1, which the attacker holds.
    let new = acme.sign_gen(&acme.manifest_v2(), 2);
    let accepted = verify_manifest(&new, &trust, Some(NOW)).unwrap();
    trust.min_key_generation = accepted.certificate.generation;
    assert_eq!(
        verify_manifest(&old, &trust, Some(NOW)).unwrap_err(),
        ManifestError::KeyRetired {
            generation: 1,
            minimum: 2
        }
    );
    verify_manifest(&new, &trust, Some(NOW)).unwrap();
}

#[test]
fn wrong_vendor_root_key() {
    let acme = acme();
    let signed = acme.sign(&acme.manifest());
    // The device trusts globex's root. The release-key certificate is checked before anything
    // else and was signed by acme's root (its kid does not even match), so the chain breaks at
    // the certificate: KeyNotCertified, not WrongVendor.
    let trust = TrustAnchor::new(globex().root.verifying_key());
    assert_eq!(
        verify_manifest(&signed, &trust, Some(NOW)).unwrap_err(),
        ManifestError::KeyNotCertified
    );
}

#[test]
fn manifest_names_another_vendor_key() {
    let acme = acme();
    let mut manifest = acme.manifest();
    manifest.vendor_key = globex().root.verifying_key().to_bytes();
    // A valid acme chain signs a manifest that claims to belong to another vendor's root.
    let signed = acme.sign(&manifest);
    assert_eq!(verify(&signed).unwrap_err(), ManifestError::WrongVendor);
}

#[test]
fn channel_author_key_cannot_sign_releases() {
    let acme = acme();
    let signed = acme.manifest().sign(&acme.author, &acme.author_cert());
    assert_eq!(verify(&signed).unwrap_err(), ManifestError::KeyWrongRole);
}

#[test]
fn compromised_gateway_forged_notice_to_device() {
    let acme = acme();
    // The gateway copies the genuine release certificate and signs its own manifest with its own
    // key: the signature does not verify under the certified key.
    let mut evil = acme.manifest();
    evil.sha256 = [0xee; 32];
    evil.version = v("9.9.9");
    let signed = evil.sign(&attacker(), &acme.release_cert(1));
    assert_eq!(verify(&signed).unwrap_err(), ManifestError::BadSignature);
}

#[test]
fn fast_forward_huge_security_version_needs_valid_signature() {
    let acme = acme();
    let mut evil = acme.manifest();
    evil.security_version = u64::MAX;
    evil.version = v("999.0.0");
    // Altered genuine manifest.
    let forged = replace_payload(&acme.sign(&acme.manifest()), &evil.to_cbor());
    assert_eq!(verify(&forged).unwrap_err(), ManifestError::BadSignature);
    // Signed by a key with a self-made certificate.
    let cert = acme
        .certificate(Role::Release, &attacker().verifying_key(), 1)
        .issue(&attacker());
    assert_eq!(
        verify(&evil.sign(&attacker(), &cert)).unwrap_err(),
        ManifestError::KeyNotCertified
    );
}

// ---------------------------------------------------------------------------------------------
// Malicious mirror and endless data: the image is checked against the manifest as it streams
// ---------------------------------------------------------------------------------------------

fn image_verifier() -> ImageVerifier {
    let manifest = acme().manifest();
    ImageVerifier::new(manifest.size, manifest.sha256)
}

#[test]
fn malicious_mirror_image_bit_flip() {
    let mut image = image();
    image[IMAGE_SIZE / 2] ^= 0x10;
    let mut verifier = image_verifier();
    verifier.update(&image).unwrap();
    assert_eq!(verifier.finish().unwrap_err(), ImageError::DigestMismatch);
}

#[test]
fn truncated_image() {
    let image = image();
    let mut verifier = image_verifier();
    verifier.update(&image[..IMAGE_SIZE - 1]).unwrap();
    assert_eq!(
        verifier.finish().unwrap_err(),
        ImageError::Truncated {
            expected: IMAGE_SIZE as u64,
            received: IMAGE_SIZE as u64 - 1
        }
    );
}

#[test]
fn endless_data_fails_at_first_byte_past_size() {
    let too_long = ImageError::TooLong {
        expected: IMAGE_SIZE as u64,
    };
    // Byte by byte: the image's own bytes pass, the first extra byte fails.
    let mut verifier = image_verifier();
    for byte in image() {
        verifier.update(&[byte]).unwrap();
    }
    assert_eq!(verifier.update(&[0]).unwrap_err(), too_long);
    assert_eq!(verifier.received(), IMAGE_SIZE as u64);
    assert_eq!(verifier.update(&[]).unwrap_err(), too_long, "stays failed");
    assert_eq!(verifier.finish().unwrap_err(), too_long);

    // An endless stream in chunks: the verifier stops it at the chunk crossing the size.
    let mut verifier = image_verifier();
    let endless = image().into_iter().chain(std::iter::repeat(0xaa));
    let mut fed = 0usize;
    let mut chunk = Vec::new();
    for byte in endless {
        chunk.push(byte);
        if chunk.len() == 64 {
            match verifier.update(&chunk) {
                Ok(()) => fed += chunk.len(),
                Err(e) => {
                    assert_eq!(e, too_long);
                    break;
                }
            }
            chunk.clear();
        }
    }
    assert_eq!(fed, IMAGE_SIZE / 64 * 64);
    assert_eq!(verifier.finish().unwrap_err(), too_long);
}

// ---------------------------------------------------------------------------------------------
// Wrong software, rollback, freeze of a release: the update policy
// ---------------------------------------------------------------------------------------------

#[test]
fn wrong_model() {
    let mut manifest = acme().manifest();
    manifest.model = "fan".into();
    assert_eq!(
        decide(&manifest, &device(&installed()), Some(NOW)),
        Err(Refusal::WrongModel)
    );
}

#[test]
fn wrong_hardware() {
    let mut manifest = acme().manifest();
    manifest.hardware = vec!["rev-a".into()];
    assert_eq!(
        decide(&manifest, &device(&installed()), Some(NOW)),
        Err(Refusal::WrongHardware)
    );
}

#[test]
fn rollback_older_security_version() {
    let manifest = acme().manifest(); // security version 1, version 1.1.0
    let installed = installed();
    let mut device = device(&installed);
    device.security_version = 2;
    assert_eq!(
        decide(&manifest, &device, Some(NOW)),
        Err(Refusal::SecurityVersionRollback {
            release: 1,
            device: 2
        })
    );
}

#[test]
fn rollback_not_newer() {
    let acme = acme();
    let same = v("1.1.0");
    assert_eq!(
        decide(&acme.manifest(), &device(&same), Some(NOW)),
        Err(Refusal::NotNewer)
    );
    let newer = v("1.2.0");
    assert_eq!(
        decide(&acme.manifest(), &device(&newer), Some(NOW)),
        Err(Refusal::NotNewer)
    );
}

#[test]
fn expired_manifest() {
    let acme = acme();
    let mut manifest = acme.manifest();
    manifest.expires = Some(NOW - 1);
    let signed = acme.sign(&manifest);
    assert_eq!(
        verify(&signed).unwrap_err(),
        ManifestError::Expired { expires: NOW - 1 }
    );
    assert_eq!(
        decide(&manifest, &device(&installed()), Some(NOW)),
        Err(Refusal::Expired)
    );
    // Still valid one second earlier.
    verify_manifest(&signed, &acme.trust(), Some(NOW - 1)).unwrap();
}

#[test]
fn prerequisite_not_met() {
    let manifest = acme().manifest_v2(); // requires 1.1.0
    assert_eq!(
        decide(&manifest, &device(&installed()), Some(NOW)),
        Err(Refusal::PrerequisiteNotMet)
    );
    let at_prerequisite = v("1.1.0");
    decide(&manifest, &device(&at_prerequisite), Some(NOW)).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Channel: forged, tampered, replayed, reordered, dropped and substituted messages
// ---------------------------------------------------------------------------------------------

#[test]
fn forged_channel_message() {
    let acme = acme();
    let channel = demo_channel(&acme);
    // A compromised gateway holds the epoch key, so it can encrypt a well-formed release for the
    // real channel; it cannot sign as the channel author.
    let header = Header {
        channel: *channel.author.channel(),
        seq: 0,
        prev: [0; 32],
        epoch: 0,
        kind: Kind::Release,
        nonce: [7; 24],
    };
    let header_bytes = header.to_cbor();
    let payload = ReleaseBody {
        manifest: acme.sign(&acme.manifest()),
    }
    .to_cbor();
    let body = XChaCha20Poly1305::new(Key::from_slice(&acme.epoch0))
        .encrypt(
            XNonce::from_slice(&header.nonce),
            Payload {
                msg: &payload,
                aad: &header_bytes,
            },
        )
        .unwrap();
    let forged = message::encode(&attacker(), &header_bytes, &body);
    let mut follower = follower(&acme.reader_token(&reader_a()));
    assert_eq!(
        follower.ingest(&forged, Some(NOW)).unwrap_err(),
        FollowError::BadSignature
    );
    assert_eq!(follower.next_seq(), 0, "a forged message does not move");
    follower.ingest(&channel.log[0], Some(NOW)).unwrap();
}

#[test]
fn tampered_ciphertext() {
    let acme = acme();
    let channel = demo_channel(&acme);
    let mut follower = follower(&acme.reader_token(&reader_a()));
    // Encrypt-then-sign: the signature covers the ciphertext, so the flip is caught before any
    // decryption, by readers and non-readers alike.
    let tampered = flip_body_bit(&channel.log[0], 0);
    let err = follower.ingest(&tampered, Some(NOW)).unwrap_err();
    assert_eq!(err, FollowError::BadSignature);
    assert!(!err.advanced());
    let tampered_tag = {
        let wire = &channel.log[0];
        let len = message::decode(wire).unwrap().body.len();
        flip_body_bit(wire, len - 1)
    };
    assert_eq!(
        follower.ingest(&tampered_tag, Some(NOW)).unwrap_err(),
        FollowError::BadSignature
    );
    follower.ingest(&channel.log[0], Some(NOW)).unwrap();
}

#[test]
fn replayed_message() {
    let acme = acme();
    let channel = demo_channel(&acme);
    let mut follower = follower(&acme.reader_token(&reader_a()));
    follower.ingest(&channel.log[0], Some(NOW)).unwrap();
    let err = follower.ingest(&channel.log[0], Some(NOW)).unwrap_err();
    assert_eq!(
        err,
        FollowError::Replayed {
            seq: 0,
            expected: 1
        }
    );
    assert!(!err.advanced());
    follower.ingest(&channel.log[1], Some(NOW)).unwrap();
}

#[test]
fn reordered_messages() {
    let acme = acme();
    let channel = demo_channel(&acme);
    let mut follower = follower(&acme.reader_token(&reader_a()));
    assert_eq!(
        follower.ingest(&channel.log[1], Some(NOW)).unwrap_err(),
        FollowError::Gap {
            seq: 1,
            expected: 0
        }
    );
    assert_eq!(follower.next_seq(), 0);
    for wire in &channel.log {
        follower.ingest(wire, Some(NOW)).unwrap();
    }
}

#[test]
fn dropped_message() {
    let acme = acme();
    let channel = demo_channel(&acme);
    let mut follower = follower(&acme.reader_token(&reader_a()));
    follower.ingest(&channel.log[0], Some(NOW)).unwrap();
    let err = follower.ingest(&channel.log[2], Some(NOW)).unwrap_err();
    assert_eq!(
        err,
        FollowError::Gap {
            seq: 2,
            expected: 1
        }
    );
    assert!(!err.advanced());
    assert_eq!(follower.next_seq(), 1);
}

#[test]
fn substituted_history() {
    let acme = acme();
    let mut channel = demo_channel(&acme);
    // Validly signed by the author, at the right sequence number, but linked to another
    // predecessor (a fork of the channel).
    let fork = channel.seal_at(
        ChainPosition {
            seq: 1,
            prev: [0x42; 32],
        },
        Kind::Heartbeat,
        &HEARTBEAT.to_cbor(),
    );
    let mut follower = follower(&acme.reader_token(&reader_a()));
    follower.ingest(&channel.log[0], Some(NOW)).unwrap();
    let err = follower.ingest(&fork, Some(NOW)).unwrap_err();
    assert_eq!(err, FollowError::BrokenChain { seq: 1 });
    assert!(!err.advanced());
    follower.ingest(&channel.log[1], Some(NOW)).unwrap();
}

#[test]
fn old_epoch_after_rotation() {
    let acme = acme();
    let channel = demo_channel(&acme);
    // An author holding every key but writing in epoch 0 after the rotation to epoch 1: a
    // revoked reader could still read that, so followers refuse it.
    let mut stale = acme.writer();
    stale.position = channel.position;
    stale.rng = TestRng::new("stale writer");
    let old_epoch = stale.push(Kind::Heartbeat, &HEARTBEAT.to_cbor());
    let mut follower = follower(&acme.reader_token(&reader_a()));
    for wire in &channel.log {
        follower.ingest(wire, Some(NOW)).unwrap();
    }
    assert_eq!(
        follower.ingest(&old_epoch, Some(NOW)).unwrap_err(),
        FollowError::EpochRegression {
            epoch: 0,
            latest: 1
        }
    );
    assert_eq!(follower.next_seq(), 5);
}

#[test]
fn undecodable_payload_is_consumed() {
    let acme = acme();
    let mut writer = acme.writer();
    let wire = writer.push(Kind::Heartbeat, b"not cbor");
    let mut follower = follower(&acme.reader_token(&reader_a()));
    let err = follower.ingest(&wire, Some(NOW)).unwrap_err();
    assert_eq!(err, FollowError::BadPayload);
    assert!(err.advanced(), "authentic and in order: the chain moves on");
    assert_eq!(follower.next_seq(), 1);
}

// ---------------------------------------------------------------------------------------------
// Revoked readers and tokens
// ---------------------------------------------------------------------------------------------

#[test]
fn revoked_reader_cannot_read_new_epoch() {
    let acme = acme();
    let channel = demo_channel(&acme);
    let mut a = follower(&acme.reader_token(&reader_a()));
    let mut b = follower(&acme.reader_token(&reader_b()));
    for wire in &channel.log[..3] {
        a.ingest(wire, Some(NOW)).unwrap();
        b.ingest(wire, Some(NOW)).unwrap();
    }
    assert_eq!(
        b.ingest(&channel.log[3], Some(NOW)).unwrap().event,
        Event::Keyload {
            epoch: 1,
            admitted: false
        }
    );
    a.ingest(&channel.log[3], Some(NOW)).unwrap();
    let err = b.ingest(&channel.log[4], Some(NOW)).unwrap_err();
    assert_eq!(err, FollowError::NoEpochKey { epoch: 1 });
    assert!(
        err.advanced(),
        "B still authenticates and follows the chain"
    );
    assert_eq!(b.next_seq(), 5);
    assert!(matches!(
        a.ingest(&channel.log[4], Some(NOW)).unwrap().event,
        Event::Release { .. }
    ));
}

#[test]
fn simple_mode_token_after_rotation() {
    let acme = acme();
    let channel = demo_channel(&acme);
    let mut follower = follower(&acme.simple_token());
    for wire in &channel.log[..3] {
        follower.ingest(wire, Some(NOW)).unwrap();
    }
    assert_eq!(
        follower.ingest(&channel.log[3], Some(NOW)).unwrap().event,
        Event::Keyload {
            epoch: 1,
            admitted: false
        }
    );
    let err = follower.ingest(&channel.log[4], Some(NOW)).unwrap_err();
    assert_eq!(err, FollowError::NoEpochKey { epoch: 1 });
    assert!(err.advanced());
}

#[test]
fn token_for_another_channel() {
    let acme = acme();
    let globex = globex();
    let theirs = demo_channel(&globex);
    let mut follower = follower(&acme.reader_token(&reader_a()));
    let err = follower.ingest(&theirs.log[0], Some(NOW)).unwrap_err();
    assert_eq!(err, FollowError::WrongChannel);
    assert!(!err.advanced());
    assert_eq!(follower.next_seq(), 0);
}

#[test]
fn token_with_flipped_character() {
    let text = acme().reader_token(&reader_a()).to_text();
    let mut chars: Vec<char> = text.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let mistyped: String = chars.into_iter().collect();
    assert_eq!(
        Token::from_text(&mistyped).unwrap_err(),
        TokenError::BadChecksum
    );
    // Cut to whole base64 groups (any other cut may leave non-canonical tail bits: NotAToken).
    let cut = (text.len() - "fwl1".len()) % 4 + 4;
    assert_eq!(
        Token::from_text(&text[..text.len() - cut]).unwrap_err(),
        TokenError::BadChecksum,
        "truncated"
    );
    assert_eq!(
        Token::from_text(&text[1..]).unwrap_err(),
        TokenError::NotAToken
    );
}

#[test]
fn token_author_not_certified() {
    let acme = acme();
    let mut token = acme.reader_token(&reader_a());
    token.author_certificate = acme
        .certificate(Role::ChannelAuthor, &acme.author.verifying_key(), 1)
        .issue(&attacker());
    let parsed = Token::from_text(&token.to_text()).unwrap();
    assert_eq!(
        parsed.follower(None).unwrap_err(),
        TokenError::AuthorNotCertified(CertificateError::NotCertified)
    );
}

#[test]
fn token_author_certified_for_another_role() {
    let acme = acme();
    let mut token = acme.reader_token(&reader_a());
    token.author_certificate = acme.release_cert(1);
    assert_eq!(
        token.follower(None).unwrap_err(),
        TokenError::AuthorNotCertified(CertificateError::WrongRole)
    );
}

#[test]
fn pinned_vendor_mismatch() {
    let acme = acme();
    let globex_key = globex().root.verifying_key().to_bytes();
    let token = acme.reader_token(&reader_a());
    assert_eq!(
        token.follower(Some(&globex_key)).unwrap_err(),
        TokenError::UnexpectedVendor
    );
    token
        .follower(Some(&acme.root.verifying_key().to_bytes()))
        .unwrap();
}

#[test]
fn mix_and_match_manifest_of_other_vendor() {
    let acme = acme();
    let globex = globex();
    // Globex's author republishes a genuine acme manifest in the globex channel: globex's
    // followers check it against globex's root and refuse it.
    let mut writer = globex.writer();
    let wire = writer.release(&acme.sign(&acme.manifest()));
    let mut follower = follower(&globex.reader_token(&reader_a()));
    let err = follower.ingest(&wire, Some(NOW)).unwrap_err();
    assert_eq!(
        err,
        FollowError::BadManifest(ManifestError::KeyNotCertified)
    );
    assert!(err.advanced());
}

#[test]
fn indefinite_freeze() {
    let acme = acme();
    let channel = demo_channel(&acme);
    let mut follower = follower(&acme.reader_token(&reader_a()));
    for wire in &channel.log {
        follower.ingest(wire, Some(NOW)).unwrap();
    }
    assert_eq!(
        follower.freshness(HEARTBEAT.valid_until),
        Freshness::Fresh {
            valid_until: HEARTBEAT.valid_until
        }
    );
    // No newer heartbeat arrives: the channel is frozen or withheld.
    assert_eq!(
        follower.freshness(HEARTBEAT.valid_until + 1),
        Freshness::Stale {
            valid_until: HEARTBEAT.valid_until
        }
    );
}

#[test]
fn empty_token_keys_read_nothing() {
    let acme = acme();
    let channel = demo_channel(&acme);
    let mut follower = follower(&acme.token(&EpochKeys::new(), None));
    let err = follower.ingest(&channel.log[0], Some(NOW)).unwrap_err();
    assert_eq!(err, FollowError::NoEpochKey { epoch: 0 });
}

//! # fwledger-uniffi — Kotlin and Swift bindings for the fwledger protocol core
//!
//! A thin [uniffi](https://mozilla.github.io/uniffi-rs) layer over `fwledger-proto` for mobile
//! provisioning apps: verify a signed manifest against a vendor root key, apply the update
//! policy, verify an image as it streams in, parse subscription tokens and read a channel.
//!
//! Byte strings cross the boundary as `ByteArray` (Kotlin) / `Data` (Swift); keys and digests
//! must be 32 bytes. Every failure is an error enum with a `check()` method returning the stable
//! check name of `fwledger-proto` (`manifest-signature`, `gap`, `vendor-pin`, …).
//!
//! The bindings are generated in library mode from the built cdylib by the crate's
//! `uniffi-bindgen` binary; see `bindings/kotlin/run.sh` and `bindings/swift/`.

#![deny(missing_docs)]

use std::sync::{Arc, Mutex, MutexGuard};

use fwledger_proto as proto;
use fwledger_proto::ed25519_dalek::VerifyingKey;

mod error;

pub use error::{
    FollowError, ImageError, ManifestError, NoticeError, Refusal, TokenError, ARGUMENT_CHECK,
};

uniffi::setup_scaffolding!("fwledger");

fn key32(bytes: &[u8], what: &str) -> Result<[u8; 32], String> {
    <[u8; 32]>::try_from(bytes).map_err(|_| format!("{what} must be 32 bytes, got {}", bytes.len()))
}

fn parse_version(text: &str, what: &str) -> Result<proto::Version, String> {
    text.parse()
        .map_err(|_| format!("{what} is not a version: {text:?}"))
}

/// One firmware release, as the vendor states it (`fwledger_proto::Manifest`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Manifest {
    /// Vendor name.
    pub vendor: String,
    /// The vendor root public key (32 bytes).
    pub vendor_key: Vec<u8>,
    /// Device model the image is built for.
    pub model: String,
    /// Hardware revisions the image runs on.
    pub hardware: Vec<String>,
    /// Semantic version of the image, e.g. `1.1.0`.
    pub version: String,
    /// Anti-rollback counter.
    pub security_version: u64,
    /// Exact image size in bytes.
    pub size: u64,
    /// SHA-256 of the raw image bytes (32 bytes).
    pub sha256: Vec<u8>,
    /// IPFS CID of the image.
    pub cid: String,
    /// Issue time, Unix seconds.
    pub issued: u64,
    /// After this time (Unix seconds) the release must not be installed.
    pub expires: Option<u64>,
    /// Minimum installed version required before this one.
    pub prerequisite: Option<String>,
    /// Release notes.
    pub notes: Option<String>,
}

impl From<&proto::Manifest> for Manifest {
    fn from(m: &proto::Manifest) -> Self {
        Manifest {
            vendor: m.vendor.clone(),
            vendor_key: m.vendor_key.to_vec(),
            model: m.model.clone(),
            hardware: m.hardware.clone(),
            version: m.version.as_str().to_owned(),
            security_version: m.security_version,
            size: m.size,
            sha256: m.sha256.to_vec(),
            cid: m.cid.clone(),
            issued: m.issued,
            expires: m.expires,
            prerequisite: m.prerequisite.as_ref().map(|v| v.as_str().to_owned()),
            notes: m.notes.clone(),
        }
    }
}

impl TryFrom<&Manifest> for proto::Manifest {
    type Error = String;

    fn try_from(m: &Manifest) -> Result<Self, String> {
        Ok(proto::Manifest {
            vendor: m.vendor.clone(),
            vendor_key: key32(&m.vendor_key, "vendor_key")?,
            model: m.model.clone(),
            hardware: m.hardware.clone(),
            version: parse_version(&m.version, "version")?,
            security_version: m.security_version,
            size: m.size,
            sha256: key32(&m.sha256, "sha256")?,
            cid: m.cid.clone(),
            issued: m.issued,
            expires: m.expires,
            prerequisite: m
                .prerequisite
                .as_deref()
                .map(|p| parse_version(p, "prerequisite"))
                .transpose()?,
            notes: m.notes.clone(),
        })
    }
}

/// What a verifier trusts: the vendor root key and the lowest release-key generation.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TrustAnchor {
    /// The vendor root Ed25519 public key (32 bytes).
    pub root: Vec<u8>,
    /// Release-key certificates below this generation are refused (0: none retired).
    pub min_key_generation: u64,
}

impl TryFrom<&TrustAnchor> for proto::TrustAnchor {
    type Error = String;

    fn try_from(t: &TrustAnchor) -> Result<Self, String> {
        let bytes = key32(&t.root, "root key")?;
        let root = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| "root key is not an Ed25519 public key".to_owned())?;
        Ok(proto::TrustAnchor {
            root,
            min_key_generation: t.min_key_generation,
        })
    }
}

/// A manifest whose signature chain checked out, with the release key it was signed under.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct VerifiedManifest {
    /// The manifest.
    pub manifest: Manifest,
    /// The certified release public key (32 bytes).
    pub release_key: Vec<u8>,
    /// The release key's generation.
    pub key_generation: u64,
    /// Start of the release key's validity, Unix seconds.
    pub key_not_before: u64,
    /// End of the release key's validity, Unix seconds.
    pub key_not_after: u64,
}

impl From<&proto::VerifiedManifest> for VerifiedManifest {
    fn from(v: &proto::VerifiedManifest) -> Self {
        VerifiedManifest {
            manifest: Manifest::from(&v.manifest),
            release_key: v.certificate.public_key.to_vec(),
            key_generation: v.certificate.generation,
            key_not_before: v.certificate.not_before,
            key_not_after: v.certificate.not_after,
        }
    }
}

/// Verifies a signed manifest (COSE_Sign1) against the trusted vendor root key.
///
/// `now` (Unix seconds) is `None` on devices without a trusted clock; then validity and expiry
/// are checked at issue time only.
#[uniffi::export]
pub fn verify_manifest(
    signed: Vec<u8>,
    trust: TrustAnchor,
    now: Option<u64>,
) -> Result<VerifiedManifest, ManifestError> {
    let trust = proto::TrustAnchor::try_from(&trust)
        .map_err(|reason| ManifestError::InvalidArgument { reason })?;
    proto::verify_manifest(&signed, &trust, now)
        .map(|v| VerifiedManifest::from(&v))
        .map_err(ManifestError::from)
}

/// Decodes a manifest payload (deterministic CBOR) without verifying anything.
#[uniffi::export]
pub fn manifest_from_cbor(payload: Vec<u8>) -> Result<Manifest, ManifestError> {
    proto::Manifest::from_cbor(&payload)
        .map(|m| Manifest::from(&m))
        .map_err(|e| ManifestError::from(proto::ManifestError::Malformed(e)))
}

/// Encodes a manifest payload (deterministic CBOR), as it is signed.
#[uniffi::export]
pub fn manifest_to_cbor(manifest: Manifest) -> Result<Vec<u8>, ManifestError> {
    proto::Manifest::try_from(&manifest)
        .map(|m| m.to_cbor())
        .map_err(|reason| ManifestError::InvalidArgument { reason })
}

/// What a device knows about itself.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DeviceState {
    /// Device model.
    pub model: String,
    /// Hardware revision.
    pub hardware: String,
    /// Installed firmware version, e.g. `1.0.0`.
    pub version: String,
    /// Highest security version the device has accepted.
    pub security_version: u64,
}

/// What a verifier knows about the target when it is not the device itself; unknown fields are
/// not checked.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PartialState {
    /// Device model, if known.
    pub model: Option<String>,
    /// Hardware revision, if known.
    pub hardware: Option<String>,
    /// Installed version, if known.
    pub version: Option<String>,
    /// Highest accepted security version (0 if unknown).
    pub security_version: u64,
}

/// Decides whether the device should install the (verified) release. `now` is `None` without a
/// clock.
#[uniffi::export]
pub fn decide(manifest: Manifest, device: DeviceState, now: Option<u64>) -> Result<(), Refusal> {
    check_policy(
        manifest,
        PartialState {
            model: Some(device.model),
            hardware: Some(device.hardware),
            version: Some(device.version),
            security_version: device.security_version,
        },
        now,
    )
}

/// The policy checks in order (model, hardware, security version, expiry, newer version,
/// prerequisite), skipping those whose input is unknown (`fwledger_proto::policy::check`).
#[uniffi::export]
pub fn check_policy(
    manifest: Manifest,
    target: PartialState,
    now: Option<u64>,
) -> Result<(), Refusal> {
    let invalid = |reason| Refusal::InvalidArgument { reason };
    let manifest = proto::Manifest::try_from(&manifest).map_err(invalid)?;
    let version = target
        .version
        .as_deref()
        .map(|v| parse_version(v, "installed version"))
        .transpose()
        .map_err(invalid)?;
    let state = proto::PartialState {
        model: target.model.as_deref(),
        hardware: target.hardware.as_deref(),
        version: version.as_ref(),
        security_version: target.security_version,
    };
    proto::policy::check(&manifest, &state, now).map_err(Refusal::from)
}

/// Checks an image against the size and SHA-256 a verified manifest states, chunk by chunk.
/// Thread-safe; `finish` ends it.
#[derive(uniffi::Object)]
pub struct ImageVerifier {
    inner: Mutex<Option<proto::ImageVerifier>>,
}

impl ImageVerifier {
    fn lock(&self) -> MutexGuard<'_, Option<proto::ImageVerifier>> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn finished() -> ImageError {
    ImageError::InvalidArgument {
        reason: "the image verifier was already finished".to_owned(),
    }
}

#[uniffi::export]
impl ImageVerifier {
    /// A verifier for an image of `size` bytes with digest `sha256` (32 bytes).
    #[uniffi::constructor]
    pub fn new(size: u64, sha256: Vec<u8>) -> Result<Arc<Self>, ImageError> {
        let digest =
            key32(&sha256, "sha256").map_err(|reason| ImageError::InvalidArgument { reason })?;
        Ok(Arc::new(ImageVerifier {
            inner: Mutex::new(Some(proto::ImageVerifier::new(size, digest))),
        }))
    }

    /// A verifier for the image a manifest describes.
    #[uniffi::constructor]
    pub fn for_manifest(manifest: Manifest) -> Result<Arc<Self>, ImageError> {
        Self::new(manifest.size, manifest.sha256)
    }

    /// Feeds the next chunk; fails as soon as the image exceeds its stated size.
    pub fn update(&self, chunk: Vec<u8>) -> Result<(), ImageError> {
        match self.lock().as_mut() {
            Some(v) => v.update(&chunk).map_err(ImageError::from),
            None => Err(finished()),
        }
    }

    /// Bytes accepted so far.
    pub fn received(&self) -> u64 {
        self.lock().as_ref().map_or(0, |v| v.received())
    }

    /// Ends the stream: the image is accepted only if its length and digest both match.
    pub fn finish(&self) -> Result<(), ImageError> {
        match self.lock().take() {
            Some(v) => v.finish().map_err(ImageError::from),
            None => Err(finished()),
        }
    }
}

/// Verifies a whole image held in memory against a manifest's size and digest.
#[uniffi::export]
pub fn verify_image(image: Vec<u8>, size: u64, sha256: Vec<u8>) -> Result<(), ImageError> {
    let verifier = ImageVerifier::new(size, sha256)?;
    verifier.update(image)?;
    verifier.finish()
}

/// A release notice from a gateway (`fwledger_proto::Notice`); the manifest inside is not
/// verified by decoding.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Notice {
    /// The vendor-signed manifest (COSE_Sign1).
    pub manifest: Vec<u8>,
    /// Where the device downloads the image.
    pub url: String,
    /// The gateway's clock, Unix seconds (a hint, never trusted alone).
    pub gateway_time: Option<u64>,
}

/// Decodes a notice.
#[uniffi::export]
pub fn notice_from_cbor(bytes: Vec<u8>) -> Result<Notice, NoticeError> {
    proto::Notice::from_cbor(&bytes)
        .map(|n| Notice {
            manifest: n.manifest,
            url: n.url,
            gateway_time: n.gateway_time,
        })
        .map_err(|e| NoticeError::Malformed {
            reason: e.to_string(),
        })
}

/// Encodes a notice.
#[uniffi::export]
pub fn notice_to_cbor(notice: Notice) -> Vec<u8> {
    proto::Notice {
        manifest: notice.manifest,
        url: notice.url,
        gateway_time: notice.gateway_time,
    }
    .to_cbor()
}

/// A subscription token (`fwl1…`): everything needed to follow a channel. Secret.
#[derive(uniffi::Object)]
pub struct Token {
    inner: proto::Token,
}

#[uniffi::export]
impl Token {
    /// Parses the text form (surrounding whitespace is ignored).
    #[uniffi::constructor]
    pub fn from_text(text: String) -> Result<Arc<Self>, TokenError> {
        proto::Token::from_text(&text)
            .map(|inner| Arc::new(Token { inner }))
            .map_err(TokenError::from)
    }

    /// The text form.
    pub fn to_text(&self) -> String {
        self.inner.to_text()
    }

    /// Vendor name.
    pub fn vendor(&self) -> String {
        self.inner.vendor.clone()
    }

    /// Vendor root public key (32 bytes).
    pub fn vendor_key(&self) -> Vec<u8> {
        self.inner.vendor_key.to_vec()
    }

    /// The epochs whose keys the token grants, ascending.
    pub fn epochs(&self) -> Vec<u64> {
        self.inner.keys.iter().map(|(epoch, _)| epoch).collect()
    }

    /// Whether the token carries a reader key (later keyloads can admit it).
    pub fn has_reader(&self) -> bool {
        self.inner.reader.is_some()
    }

    /// Where the channel lives (a ledger URL), as a hint.
    pub fn ledger_hint(&self) -> Option<String> {
        self.inner.ledger_hint.clone()
    }

    /// The vendor trust anchor the token names.
    pub fn trust(&self) -> TrustAnchor {
        TrustAnchor {
            root: self.inner.vendor_key.to_vec(),
            min_key_generation: 0,
        }
    }

    /// The id of the channel the token opens (32 bytes), after checking the author certificate.
    pub fn channel(&self) -> Result<Vec<u8>, TokenError> {
        self.inner
            .channel()
            .map(|c| c.to_vec())
            .map_err(TokenError::from)
    }

    /// A follower at the channel's genesis. With `expected_vendor` (32 bytes), refuses tokens
    /// of any other vendor key (check `vendor-pin`).
    pub fn follower(&self, expected_vendor: Option<Vec<u8>>) -> Result<Arc<Follower>, TokenError> {
        let pin = expected_vendor
            .as_deref()
            .map(|v| key32(v, "expected vendor key"))
            .transpose()
            .map_err(|reason| TokenError::InvalidArgument { reason })?;
        self.inner
            .follower(pin.as_ref())
            .map(|f| {
                Arc::new(Follower {
                    inner: Mutex::new(f),
                })
            })
            .map_err(TokenError::from)
    }
}

/// What an accepted channel message says.
// Boxing the release is not possible across uniffi (records are passed by value, serialised).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Event {
    /// A release whose manifest verified against the vendor root key.
    Release {
        /// The verified manifest.
        verified: VerifiedManifest,
        /// The signed manifest bytes, for relaying to devices.
        signed: Vec<u8>,
    },
    /// A release was withdrawn.
    Revoke {
        /// Model of the withdrawn release.
        model: String,
        /// Version of the withdrawn release.
        version: String,
        /// Why it was withdrawn.
        reason: String,
    },
    /// A freshness statement.
    Heartbeat {
        /// When the vendor wrote it, Unix seconds.
        time: u64,
        /// Until when the channel may be considered fresh.
        valid_until: u64,
    },
    /// A new epoch began; `admitted` says whether this reader got its key.
    Keyload {
        /// The new epoch.
        epoch: u64,
        /// Whether this reader can read the new epoch.
        admitted: bool,
    },
}

/// An accepted channel message.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Delivery {
    /// Its sequence number.
    pub seq: u64,
    /// Its epoch.
    pub epoch: u64,
    /// Its digest, the chain link (32 bytes).
    pub digest: Vec<u8>,
    /// What it says.
    pub event: Event,
}

impl From<proto::channel::Delivery> for Delivery {
    fn from(d: proto::channel::Delivery) -> Self {
        let event = match d.event {
            proto::channel::Event::Release { verified, signed } => Event::Release {
                verified: VerifiedManifest::from(verified.as_ref()),
                signed,
            },
            proto::channel::Event::Revoke(r) => Event::Revoke {
                model: r.model,
                version: r.version,
                reason: r.reason,
            },
            proto::channel::Event::Heartbeat(h) => Event::Heartbeat {
                time: h.time,
                valid_until: h.valid_until,
            },
            proto::channel::Event::Keyload { epoch, admitted } => {
                Event::Keyload { epoch, admitted }
            }
        };
        Delivery {
            seq: d.seq,
            epoch: d.epoch,
            digest: d.digest.to_vec(),
            event,
        }
    }
}

/// Whether the channel is known to be live, from the latest heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Freshness {
    /// No heartbeat seen yet.
    Unknown,
    /// The latest heartbeat is still valid.
    Fresh {
        /// Until when.
        valid_until: u64,
    },
    /// The latest heartbeat expired: the channel is frozen or withheld.
    Stale {
        /// When it expired.
        valid_until: u64,
    },
}

/// Follows one channel, verifying every message fed in order. Thread-safe.
#[derive(uniffi::Object)]
pub struct Follower {
    inner: Mutex<proto::Follower>,
}

impl Follower {
    fn lock(&self) -> MutexGuard<'_, proto::Follower> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[uniffi::export]
impl Follower {
    /// Verifies the next message (wire bytes). `now` (Unix seconds) is used for manifest
    /// expiry, if known. On error, `FollowError.advanced()` says whether the follower moved on.
    pub fn ingest(&self, wire: Vec<u8>, now: Option<u64>) -> Result<Delivery, FollowError> {
        self.lock()
            .ingest(&wire, now)
            .map(Delivery::from)
            .map_err(FollowError::from)
    }

    /// The next sequence number expected.
    pub fn next_seq(&self) -> u64 {
        self.lock().next_seq()
    }

    /// The id of the channel followed (32 bytes).
    pub fn channel(&self) -> Vec<u8> {
        self.lock().channel().to_vec()
    }

    /// Freshness at `now`, from the latest heartbeat.
    pub fn freshness(&self, now: u64) -> Freshness {
        match self.lock().freshness(now) {
            proto::channel::Freshness::Fresh { valid_until } => Freshness::Fresh { valid_until },
            proto::channel::Freshness::Stale { valid_until } => Freshness::Stale { valid_until },
            proto::channel::Freshness::Unknown => Freshness::Unknown,
        }
    }
}

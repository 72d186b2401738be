//! # fwledger-proto — the fwledger protocol core
//!
//! Everything that decides whether a firmware release is genuine, and nothing that does IO:
//! deterministic CBOR, COSE_Sign1 manifests under a vendor key hierarchy, encrypted hash-chained
//! channel messages with keyloads, subscription tokens, the streaming image verifier and the
//! update policy. Callers pass in bytes, clocks and random number generators. The crate is
//! `no_std` + `alloc` so that devices and the C API link it as is; the wire formats are specified
//! in `docs/PROTOCOL.md`.
//!
//! ```
//! use ed25519_dalek::SigningKey;
//! use fwledger_proto::keys::{KeyCertificate, Role};
//! use fwledger_proto::manifest::{verify_manifest, Manifest, TrustAnchor};
//! use fwledger_proto::image::ImageVerifier;
//! use fwledger_proto::policy::{decide, DeviceState};
//! use sha2::{Digest, Sha256};
//!
//! let root = SigningKey::from_bytes(&[1; 32]);
//! let release = SigningKey::from_bytes(&[2; 32]);
//! let cert = KeyCertificate {
//!     role: Role::Release,
//!     public_key: release.verifying_key().to_bytes(),
//!     generation: 1,
//!     not_before: 0,
//!     not_after: u64::MAX,
//!     vendor: "acme".into(),
//! }
//! .issue(&root);
//!
//! let image = b"firmware bytes";
//! let manifest = Manifest {
//!     vendor: "acme".into(),
//!     vendor_key: root.verifying_key().to_bytes(),
//!     model: "lamp".into(),
//!     hardware: vec!["rev-b".into()],
//!     version: "1.1.0".parse().unwrap(),
//!     security_version: 1,
//!     size: image.len() as u64,
//!     sha256: Sha256::digest(image).into(),
//!     cid: "bafkreiexample".into(),
//!     issued: 1_700_000_000,
//!     expires: None,
//!     prerequisite: None,
//!     notes: None,
//! };
//! let signed = manifest.sign(&release, &cert);
//!
//! // On the device: check the signature chain, the policy, then the image as it streams in.
//! let trust = TrustAnchor::new(root.verifying_key());
//! let verified = verify_manifest(&signed, &trust, Some(1_700_000_100)).unwrap();
//! let installed = "1.0.0".parse().unwrap();
//! let device = DeviceState { model: "lamp", hardware: "rev-b", version: &installed, security_version: 1 };
//! decide(&verified.manifest, &device, None).unwrap();
//! let mut verifier = ImageVerifier::new(verified.manifest.size, verified.manifest.sha256);
//! for chunk in image.chunks(4) {
//!     verifier.update(chunk).unwrap();
//! }
//! verifier.finish().unwrap();
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod base64;
pub mod cbor;
pub mod channel;
pub mod cose;
pub mod image;
pub mod keys;
pub mod manifest;
pub mod notice;
pub mod policy;
pub mod version;

pub use ed25519_dalek;
pub use sha2;

pub use cbor::DecodeError;
pub use channel::{FollowError, Follower, Token, TokenError};
pub use image::{ImageError, ImageVerifier};
pub use keys::{CertificateError, KeyCertificate, KeyId, Role};
pub use manifest::{verify_manifest, Manifest, ManifestError, TrustAnchor, VerifiedManifest};
pub use notice::Notice;
pub use policy::{decide, DeviceState, PartialState, Refusal};
pub use version::Version;

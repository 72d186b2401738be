//! Offline verification of a manifest file and an image file against a vendor key.

use std::io::Read;

use fwledger_proto::manifest::{verify_manifest, ManifestError, TrustAnchor, VerifiedManifest};
use fwledger_proto::policy::{check, PartialState, Refusal};
use fwledger_proto::{ImageError, ImageVerifier, Version};

/// What the target is, where known; unknown fields are not checked.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Device model.
    pub model: Option<String>,
    /// Hardware revision.
    pub hardware: Option<String>,
    /// Installed version (the release must be newer).
    pub current: Option<Version>,
    /// Highest accepted security version.
    pub security_version: u64,
    /// Lowest trusted release-key generation.
    pub min_key_generation: u64,
    /// The time to check expiry against, Unix seconds (`None`: no clock).
    pub now: Option<u64>,
}

/// Why verification failed; [`VerifyError::check`] names the failed check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The vendor key is not a valid Ed25519 public key.
    #[error("vendor key is not a valid Ed25519 public key")]
    BadVendorKey,
    /// The manifest failed.
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    /// The policy refused the release.
    #[error("{0}")]
    Policy(#[from] Refusal),
    /// The image does not match the manifest.
    #[error("{0}")]
    Image(#[from] ImageError),
    /// The files could not be read.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl VerifyError {
    /// A short stable name of the failed check.
    pub fn check(&self) -> &'static str {
        match self {
            VerifyError::BadVendorKey => "vendor-key",
            VerifyError::Manifest(e) => e.check(),
            VerifyError::Policy(e) => e.check(),
            VerifyError::Image(e) => e.check(),
            VerifyError::Io(_) => "io",
        }
    }
}

/// Verifies a signed manifest and then the image it describes, streaming the image.
pub fn verify_release(
    manifest: &[u8],
    mut image: impl Read,
    vendor_key: &[u8; 32],
    options: &VerifyOptions,
) -> Result<VerifiedManifest, VerifyError> {
    let root = ed25519_dalek::VerifyingKey::from_bytes(vendor_key)
        .map_err(|_| VerifyError::BadVendorKey)?;
    let trust = TrustAnchor {
        root,
        min_key_generation: options.min_key_generation,
    };
    let verified = verify_manifest(manifest, &trust, options.now)?;
    check(
        &verified.manifest,
        &PartialState {
            model: options.model.as_deref(),
            hardware: options.hardware.as_deref(),
            version: options.current.as_ref(),
            security_version: options.security_version,
        },
        options.now,
    )?;
    let mut verifier = ImageVerifier::new(verified.manifest.size, verified.manifest.sha256);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match image.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        verifier.update(&buf[..n])?;
    }
    verifier.finish()?;
    Ok(verified)
}

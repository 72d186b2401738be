//! Release manifests: what a vendor signs about one firmware image.
//!
//! The payload is a deterministic CBOR map with integer keys (see `docs/PROTOCOL.md` §3), wrapped
//! in a COSE_Sign1 by a release key whose root-signed certificate rides in the unprotected header.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::cbor::{DecodeError, Decoder, Encoder, MapKeys};
use crate::cose::{self, Sign1Error};
use crate::keys::{CertificateError, KeyCertificate, Role};
use crate::version::Version;

/// The manifest format this crate writes and reads.
pub const MANIFEST_FORMAT: u64 = 1;
const MAX_HARDWARE: usize = 64;

/// One firmware release, as the vendor states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Vendor name.
    pub vendor: String,
    /// The vendor root public key this release belongs to.
    pub vendor_key: [u8; 32],
    /// Device model the image is built for.
    pub model: String,
    /// Hardware revisions the image runs on (at least one).
    pub hardware: Vec<String>,
    /// Semantic version of the image.
    pub version: Version,
    /// Anti-rollback counter: devices never install a lower value than they hold.
    pub security_version: u64,
    /// Exact image size in bytes.
    pub size: u64,
    /// SHA-256 of the raw image bytes.
    pub sha256: [u8; 32],
    /// IPFS CID of the image (a DAG hash, not the file hash).
    pub cid: String,
    /// Issue time, Unix seconds.
    pub issued: u64,
    /// After this time (Unix seconds) the release must not be installed.
    pub expires: Option<u64>,
    /// Minimum installed version required before this one.
    pub prerequisite: Option<Version>,
    /// Release notes.
    pub notes: Option<String>,
}

/// Why a signed manifest is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManifestError {
    /// Not a well-formed manifest.
    Malformed(DecodeError),
    /// Signed with an algorithm other than EdDSA.
    UnsupportedAlgorithm,
    /// No release-key certificate is attached.
    MissingCertificate,
    /// The release key is not certified by the trusted vendor root key.
    KeyNotCertified,
    /// The release-key certificate is for another role.
    KeyWrongRole,
    /// The release key's certificate was not valid at issue time or is not valid now.
    KeyExpired {
        /// End of the certificate's validity.
        not_after: u64,
    },
    /// The release key's generation was retired after a compromise.
    KeyRetired {
        /// The certificate's generation.
        generation: u64,
        /// The lowest generation still trusted.
        minimum: u64,
    },
    /// The manifest signature does not verify under the certified release key.
    BadSignature,
    /// The manifest names another vendor key than the trusted one.
    WrongVendor,
    /// The manifest expired.
    Expired {
        /// Expiry time.
        expires: u64,
    },
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestError::Malformed(e) => write!(f, "malformed manifest: {e}"),
            ManifestError::UnsupportedAlgorithm => f.write_str("unsupported signature algorithm"),
            ManifestError::MissingCertificate => f.write_str("no release-key certificate"),
            ManifestError::KeyNotCertified => {
                f.write_str("release key is not certified by the vendor root key")
            }
            ManifestError::KeyWrongRole => f.write_str("key is not certified for releases"),
            ManifestError::KeyExpired { not_after } => {
                write!(f, "release key certificate expired at {not_after}")
            }
            ManifestError::KeyRetired {
                generation,
                minimum,
            } => write!(
                f,
                "release key generation {generation} was retired (minimum {minimum})"
            ),
            ManifestError::BadSignature => f.write_str("manifest signature is invalid"),
            ManifestError::WrongVendor => f.write_str("manifest belongs to another vendor key"),
            ManifestError::Expired { expires } => write!(f, "manifest expired at {expires}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ManifestError {}

impl ManifestError {
    /// A short stable name of the failed check, for one-line reports and status codes.
    pub fn check(&self) -> &'static str {
        match self {
            ManifestError::Malformed(_) => "manifest-format",
            ManifestError::UnsupportedAlgorithm => "signature-algorithm",
            ManifestError::MissingCertificate | ManifestError::KeyNotCertified => {
                "release-key-certificate"
            }
            ManifestError::KeyWrongRole => "release-key-role",
            ManifestError::KeyExpired { .. } => "release-key-expiry",
            ManifestError::KeyRetired { .. } => "release-key-generation",
            ManifestError::BadSignature => "manifest-signature",
            ManifestError::WrongVendor => "vendor-key",
            ManifestError::Expired { .. } => "manifest-expiry",
        }
    }
}

impl From<DecodeError> for ManifestError {
    fn from(e: DecodeError) -> Self {
        ManifestError::Malformed(e)
    }
}

impl From<Sign1Error> for ManifestError {
    fn from(e: Sign1Error) -> Self {
        match e {
            Sign1Error::Malformed(d) => ManifestError::Malformed(d),
            Sign1Error::UnsupportedAlgorithm => ManifestError::UnsupportedAlgorithm,
        }
    }
}

impl From<CertificateError> for ManifestError {
    fn from(e: CertificateError) -> Self {
        match e {
            CertificateError::Malformed(d) => ManifestError::Malformed(d),
            CertificateError::NotCertified => ManifestError::KeyNotCertified,
            CertificateError::WrongRole => ManifestError::KeyWrongRole,
            CertificateError::Expired { not_after } => ManifestError::KeyExpired { not_after },
            CertificateError::Retired {
                generation,
                minimum,
            } => ManifestError::KeyRetired {
                generation,
                minimum,
            },
        }
    }
}

/// What a verifier trusts: the vendor root key and the lowest release-key generation.
#[derive(Debug, Clone, Copy)]
pub struct TrustAnchor {
    /// The vendor root public key (set at manufacture or provisioning).
    pub root: VerifyingKey,
    /// Release-key certificates below this generation are refused.
    pub min_key_generation: u64,
}

impl TrustAnchor {
    /// Trusts `root` with no retired key generations.
    pub fn new(root: VerifyingKey) -> Self {
        TrustAnchor {
            root,
            min_key_generation: 0,
        }
    }
}

/// A manifest whose signature chain checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedManifest {
    /// The manifest.
    pub manifest: Manifest,
    /// The release-key certificate it was signed under.
    pub certificate: KeyCertificate,
}

impl Manifest {
    /// Encodes the payload (deterministic CBOR).
    pub fn to_cbor(&self) -> Vec<u8> {
        let optional = [
            self.expires.is_some(),
            self.prerequisite.is_some(),
            self.notes.is_some(),
        ];
        let len = 11 + optional.iter().filter(|b| **b).count();
        let mut e = Encoder::new();
        e.map(len)
            .u64(1)
            .u64(MANIFEST_FORMAT)
            .u64(2)
            .str(&self.vendor)
            .u64(3)
            .bytes(&self.vendor_key)
            .u64(4)
            .str(&self.model)
            .u64(5)
            .array(self.hardware.len());
        for hw in &self.hardware {
            e.str(hw);
        }
        e.u64(6)
            .str(self.version.as_str())
            .u64(7)
            .u64(self.security_version)
            .u64(8)
            .u64(self.size)
            .u64(9)
            .bytes(&self.sha256)
            .u64(10)
            .str(&self.cid)
            .u64(11)
            .u64(self.issued);
        if let Some(expires) = self.expires {
            e.u64(12).u64(expires);
        }
        if let Some(pre) = &self.prerequisite {
            e.u64(13).str(pre.as_str());
        }
        if let Some(notes) = &self.notes {
            e.u64(14).str(notes);
        }
        e.into_bytes()
    }

    /// Decodes a payload, refusing any non-canonical or unknown field.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(bytes);
        let mut keys = MapKeys::open(&mut d)?;
        let mut format = None;
        let (mut vendor, mut vendor_key, mut model, mut hardware) = (None, None, None, None);
        let (mut version, mut security_version, mut size, mut sha256) = (None, None, None, None);
        let (mut cid, mut issued, mut expires, mut prerequisite, mut notes) =
            (None, None, None, None, None);
        let parse_version = |s: &str, name| {
            s.parse::<Version>()
                .map_err(|_| DecodeError::InvalidField(name))
        };
        while let Some(key) = keys.next(&mut d)? {
            match key {
                1 => format = Some(d.u64()?),
                2 => vendor = Some(d.string()?),
                3 => vendor_key = Some(d.bytes_n::<32>()?),
                4 => model = Some(d.string()?),
                5 => {
                    let n = d.array()?;
                    if n == 0 || n > MAX_HARDWARE {
                        return Err(DecodeError::InvalidField("hardware"));
                    }
                    let mut list = Vec::with_capacity(n);
                    for _ in 0..n {
                        list.push(d.string()?);
                    }
                    d.leave();
                    hardware = Some(list);
                }
                6 => version = Some(parse_version(d.str()?, "version")?),
                7 => security_version = Some(d.u64()?),
                8 => size = Some(d.u64()?),
                9 => sha256 = Some(d.bytes_n::<32>()?),
                10 => cid = Some(d.string()?),
                11 => issued = Some(d.u64()?),
                12 => expires = Some(d.u64()?),
                13 => prerequisite = Some(parse_version(d.str()?, "prerequisite")?),
                14 => notes = Some(d.string()?),
                _ => return Err(DecodeError::InvalidField("unknown manifest field")),
            }
        }
        d.finish()?;
        if format != Some(MANIFEST_FORMAT) {
            return Err(DecodeError::InvalidField("format"));
        }
        Ok(Manifest {
            vendor: vendor.ok_or(DecodeError::InvalidField("vendor"))?,
            vendor_key: vendor_key.ok_or(DecodeError::InvalidField("vendor_key"))?,
            model: model.ok_or(DecodeError::InvalidField("model"))?,
            hardware: hardware.ok_or(DecodeError::InvalidField("hardware"))?,
            version: version.ok_or(DecodeError::InvalidField("version"))?,
            security_version: security_version
                .ok_or(DecodeError::InvalidField("security_version"))?,
            size: size.ok_or(DecodeError::InvalidField("size"))?,
            sha256: sha256.ok_or(DecodeError::InvalidField("sha256"))?,
            cid: cid.ok_or(DecodeError::InvalidField("cid"))?,
            issued: issued.ok_or(DecodeError::InvalidField("issued"))?,
            expires,
            prerequisite,
            notes,
        })
    }

    /// Signs the manifest with a release key, attaching the key's root-signed certificate.
    pub fn sign(&self, release_key: &SigningKey, certificate: &[u8]) -> Vec<u8> {
        cose::sign(release_key, Some(certificate), &self.to_cbor())
    }

    /// Whether the manifest has expired at `now` (Unix seconds).
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires.is_some_and(|expires| now > expires)
    }
}

/// Verifies a signed manifest against the trusted vendor root key.
///
/// Checks, in order: COSE structure and algorithm; the release-key certificate chains to the root,
/// has the release role and a generation not retired; it was valid when the manifest was issued
/// (and at `now`, when a clock is available); the manifest signature; the vendor key binding; and
/// the manifest's own expiry. `now` is `None` on devices without a trusted clock.
pub fn verify_manifest(
    signed: &[u8],
    trust: &TrustAnchor,
    now: Option<u64>,
) -> Result<VerifiedManifest, ManifestError> {
    let sign1 = cose::decode(signed)?;
    let cert_bytes = sign1.certificate.ok_or(ManifestError::MissingCertificate)?;
    let certificate = KeyCertificate::verify(cert_bytes, &trust.root, Role::Release)?;
    if certificate.generation < trust.min_key_generation {
        return Err(ManifestError::KeyRetired {
            generation: certificate.generation,
            minimum: trust.min_key_generation,
        });
    }
    let release_key = certificate.verifying_key()?;
    if !sign1.verify(&release_key) {
        return Err(ManifestError::BadSignature);
    }
    let manifest = Manifest::from_cbor(sign1.payload)?;
    certificate.check_time(manifest.issued)?;
    if let Some(now) = now {
        certificate.check_time(now)?;
    }
    if manifest.vendor_key != *trust.root.as_bytes() {
        return Err(ManifestError::WrongVendor);
    }
    if let Some(now) = now {
        if let Some(expires) = manifest.expires.filter(|_| manifest.is_expired(now)) {
            return Err(ManifestError::Expired { expires });
        }
    }
    Ok(VerifiedManifest {
        manifest,
        certificate,
    })
}

//! The key hierarchy: an offline vendor root key certifies release-signing keys and the channel
//! author key, each with a validity window and a generation number.
//!
//! A certificate is a COSE_Sign1 by the root key over
//! `{1: role, 2: public key, 3: generation, 4: not_before, 5: not_after, 6: vendor}`.
//! Devices remember the highest generation they accepted, so a compromised release key is retired
//! by certifying a new key with a higher generation, without re-flashing the root key.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::cbor::{DecodeError, Decoder, Encoder, MapKeys};
use crate::cose::{self, Sign1Error};

/// The first 8 bytes of SHA-256 of an Ed25519 or X25519 public key: the COSE `kid`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub [u8; 8]);

impl KeyId {
    /// The id of an Ed25519 public key.
    pub fn of(key: &VerifyingKey) -> Self {
        Self::of_bytes(key.as_bytes())
    }

    /// The id of raw public key bytes.
    pub fn of_bytes(key: &[u8; 32]) -> Self {
        let digest = Sha256::digest(key);
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        KeyId(id)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// What a certified key may sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Release manifests.
    Release = 1,
    /// Channel messages.
    ChannelAuthor = 2,
}

impl Role {
    fn from_u64(v: u64) -> Result<Self, DecodeError> {
        match v {
            1 => Ok(Role::Release),
            2 => Ok(Role::ChannelAuthor),
            _ => Err(DecodeError::InvalidField("role")),
        }
    }
}

/// A statement by the vendor root key that `public_key` may act in `role` during a time window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCertificate {
    /// What the key may sign.
    pub role: Role,
    /// The certified Ed25519 public key.
    pub public_key: [u8; 32],
    /// Monotonic generation; devices refuse generations below the highest they accepted.
    pub generation: u64,
    /// Start of validity, Unix seconds.
    pub not_before: u64,
    /// End of validity, Unix seconds.
    pub not_after: u64,
    /// The vendor's name.
    pub vendor: String,
}

/// Why a key certificate is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificateError {
    /// Not a well-formed certificate.
    Malformed(DecodeError),
    /// Not signed by the trusted root key: the key is not certified.
    NotCertified,
    /// Certified for another role.
    WrongRole,
    /// Outside its validity window at the time of use.
    Expired {
        /// End of validity.
        not_after: u64,
    },
    /// Generation below the lowest one still trusted (the key was retired).
    Retired {
        /// The certificate's generation.
        generation: u64,
        /// The lowest accepted generation.
        minimum: u64,
    },
}

impl From<Sign1Error> for CertificateError {
    fn from(e: Sign1Error) -> Self {
        match e {
            Sign1Error::Malformed(d) => CertificateError::Malformed(d),
            Sign1Error::UnsupportedAlgorithm => CertificateError::NotCertified,
        }
    }
}

impl From<DecodeError> for CertificateError {
    fn from(e: DecodeError) -> Self {
        CertificateError::Malformed(e)
    }
}

impl fmt::Display for CertificateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertificateError::Malformed(e) => write!(f, "malformed key certificate: {e}"),
            CertificateError::NotCertified => {
                f.write_str("key is not certified by the vendor root key")
            }
            CertificateError::WrongRole => f.write_str("key is certified for another role"),
            CertificateError::Expired { not_after } => {
                write!(f, "key certificate expired at {not_after}")
            }
            CertificateError::Retired {
                generation,
                minimum,
            } => write!(
                f,
                "key generation {generation} was retired (minimum is {minimum})"
            ),
        }
    }
}

impl KeyCertificate {
    /// Encodes the certificate payload (deterministic CBOR).
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.map(6)
            .u64(1)
            .u64(self.role as u64)
            .u64(2)
            .bytes(&self.public_key)
            .u64(3)
            .u64(self.generation)
            .u64(4)
            .u64(self.not_before)
            .u64(5)
            .u64(self.not_after)
            .u64(6)
            .str(&self.vendor);
        e.into_bytes()
    }

    /// Decodes a certificate payload.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(bytes);
        let mut keys = MapKeys::open(&mut d)?;
        keys.expect(&mut d, 1, "role")?;
        let role = Role::from_u64(d.u64()?)?;
        keys.expect(&mut d, 2, "public_key")?;
        let public_key = d.bytes_n::<32>()?;
        keys.expect(&mut d, 3, "generation")?;
        let generation = d.u64()?;
        keys.expect(&mut d, 4, "not_before")?;
        let not_before = d.u64()?;
        keys.expect(&mut d, 5, "not_after")?;
        let not_after = d.u64()?;
        keys.expect(&mut d, 6, "vendor")?;
        let vendor = d.string()?;
        keys.end(&mut d)?;
        d.finish()?;
        Ok(KeyCertificate {
            role,
            public_key,
            generation,
            not_before,
            not_after,
            vendor,
        })
    }

    /// Signs this certificate with the vendor root key (a COSE_Sign1).
    pub fn issue(&self, root: &SigningKey) -> Vec<u8> {
        cose::sign(root, None, &self.to_cbor())
    }

    /// Checks a certificate's signature against the trusted root key and its role.
    pub fn verify(bytes: &[u8], root: &VerifyingKey, role: Role) -> Result<Self, CertificateError> {
        let sign1 = cose::decode(bytes)?;
        if !sign1.verify(root) {
            return Err(CertificateError::NotCertified);
        }
        let cert = KeyCertificate::from_cbor(sign1.payload)?;
        if cert.role != role {
            return Err(CertificateError::WrongRole);
        }
        Ok(cert)
    }

    /// Checks the validity window at `time` (Unix seconds).
    pub fn check_time(&self, time: u64) -> Result<(), CertificateError> {
        if time < self.not_before || time > self.not_after {
            return Err(CertificateError::Expired {
                not_after: self.not_after,
            });
        }
        Ok(())
    }

    /// The certified key, if it is a valid Ed25519 point.
    pub fn verifying_key(&self) -> Result<VerifyingKey, CertificateError> {
        VerifyingKey::from_bytes(&self.public_key)
            .map_err(|_| CertificateError::Malformed(DecodeError::InvalidField("public_key")))
    }
}

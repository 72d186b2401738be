//! COSE_Sign1 (RFC 9052) with EdDSA, the envelope of manifests and key certificates.
//!
//! Encoding: `18([protected: bstr({1: -8, 4: kid}), unprotected: {? -65537: certificate},
//! payload: bstr, signature: bstr(64)])`, signed over the standard `Sig_structure`
//! `["Signature1", protected, h'', payload]`, so any COSE library can check the signature.

use alloc::vec::Vec;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::cbor::{DecodeError, Decoder, Encoder, MapKeys};
use crate::keys::KeyId;

/// CBOR tag of a COSE_Sign1 message.
pub const TAG_COSE_SIGN1: u64 = 18;
/// COSE algorithm identifier of EdDSA.
pub const ALG_EDDSA: i64 = -8;
/// Header label `alg`.
const LABEL_ALG: i64 = 1;
/// Header label `kid`.
const LABEL_KID: i64 = 4;
/// Private-use unprotected header label that carries the signer's key certificate.
pub const LABEL_KEY_CERTIFICATE: i64 = -65537;

/// A decoded COSE_Sign1 whose signature has not been checked yet.
#[derive(Debug, Clone)]
pub struct Sign1<'a> {
    protected: &'a [u8],
    /// Key id of the signer, from the protected header.
    pub kid: KeyId,
    /// Key certificate from the unprotected header, if any (it is self-authenticating).
    pub certificate: Option<&'a [u8]>,
    /// The signed payload.
    pub payload: &'a [u8],
    signature: [u8; 64],
}

/// Why a COSE_Sign1 cannot even be looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sign1Error {
    /// Not a well-formed COSE_Sign1 in the protocol's profile.
    Malformed(DecodeError),
    /// The `alg` header is not EdDSA.
    UnsupportedAlgorithm,
}

impl From<DecodeError> for Sign1Error {
    fn from(e: DecodeError) -> Self {
        Sign1Error::Malformed(e)
    }
}

fn protected_header(kid: &KeyId) -> Vec<u8> {
    let mut e = Encoder::new();
    e.map(2)
        .i64(LABEL_ALG)
        .i64(ALG_EDDSA)
        .i64(LABEL_KID)
        .bytes(&kid.0);
    e.into_bytes()
}

fn sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut e = Encoder::new();
    e.array(4)
        .str("Signature1")
        .bytes(protected)
        .bytes(&[])
        .bytes(payload);
    e.into_bytes()
}

/// Signs `payload` with `key`, optionally carrying the signer's key certificate.
pub fn sign(key: &SigningKey, certificate: Option<&[u8]>, payload: &[u8]) -> Vec<u8> {
    let kid = KeyId::of(&key.verifying_key());
    let protected = protected_header(&kid);
    let signature = key.sign(&sig_structure(&protected, payload));
    let mut e = Encoder::new();
    e.tag(TAG_COSE_SIGN1).array(4).bytes(&protected);
    match certificate {
        Some(cert) => e.map(1).i64(LABEL_KEY_CERTIFICATE).bytes(cert),
        None => e.map(0),
    };
    e.bytes(payload).bytes(&signature.to_bytes());
    e.into_bytes()
}

/// Decodes a COSE_Sign1 without checking its signature.
pub fn decode(bytes: &[u8]) -> Result<Sign1<'_>, Sign1Error> {
    let mut d = Decoder::new(bytes);
    if d.tag()? != TAG_COSE_SIGN1 {
        return Err(DecodeError::Unexpected("COSE_Sign1 tag").into());
    }
    d.array_of(4, "COSE_Sign1 array")?;
    let protected = d.bytes()?;
    let (alg, kid) = decode_protected(protected)?;
    if alg != ALG_EDDSA {
        return Err(Sign1Error::UnsupportedAlgorithm);
    }
    let mut certificate = None;
    let mut keys = MapKeys::open(&mut d)?;
    while let Some(label) = keys.next(&mut d)? {
        match label {
            LABEL_KEY_CERTIFICATE => certificate = Some(d.bytes()?),
            _ => return Err(DecodeError::InvalidField("unprotected header").into()),
        }
    }
    let payload = d.bytes()?;
    let signature = d.bytes_n::<64>()?;
    d.leave();
    d.finish()?;
    Ok(Sign1 {
        protected,
        kid,
        certificate,
        payload,
        signature,
    })
}

fn decode_protected(protected: &[u8]) -> Result<(i64, KeyId), DecodeError> {
    let mut d = Decoder::new(protected);
    let (mut alg, mut kid) = (None, None);
    let mut keys = MapKeys::open(&mut d)?;
    while let Some(label) = keys.next(&mut d)? {
        match label {
            LABEL_ALG => alg = Some(d.i64()?),
            LABEL_KID => kid = Some(KeyId(d.bytes_n::<8>()?)),
            _ => return Err(DecodeError::InvalidField("protected header")),
        }
    }
    d.finish()?;
    Ok((
        alg.ok_or(DecodeError::InvalidField("alg"))?,
        kid.ok_or(DecodeError::InvalidField("kid"))?,
    ))
}

impl Sign1<'_> {
    /// Whether `key` made this signature (strict Ed25519: no malleable signatures, no weak keys).
    pub fn verify(&self, key: &VerifyingKey) -> bool {
        if self.kid != KeyId::of(key) {
            return false;
        }
        let signature = Signature::from_bytes(&self.signature);
        key.verify_strict(&sig_structure(self.protected, self.payload), &signature)
            .is_ok()
    }
}

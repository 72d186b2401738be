//! Subscription tokens: one copy-pasteable string with everything a gateway needs to follow a
//! channel.
//!
//! Text form: `fwl1` followed by unpadded base64url of `cbor ‖ SHA-256(cbor)[..4]`, where `cbor`
//! is `{1: 1, 2: vendor, 3: vendor root key, 4: channel author certificate, 5: {epoch: key},
//! ? 6: reader secret, ? 7: ledger hint}`. A token is a secret: it carries epoch keys.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};

use super::follower::Follower;
use super::keyload::{EpochKeys, ReaderKey};
use super::message::{channel_id, ChannelId};
use crate::base64;
use crate::cbor::{DecodeError, Decoder, Encoder, MapKeys};
use crate::keys::{CertificateError, KeyCertificate, Role};
use crate::manifest::TrustAnchor;

/// The prefix of a token's text form.
pub const TOKEN_PREFIX: &str = "fwl1";
const TOKEN_FORMAT: u64 = 1;
const MAX_TOKEN_TEXT: usize = 256 * 1024;

/// A subscription token.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// Vendor name.
    pub vendor: String,
    /// Vendor root public key.
    pub vendor_key: [u8; 32],
    /// Root-signed certificate of the channel author key.
    pub author_certificate: Vec<u8>,
    /// Epoch keys granted at issue time.
    pub keys: EpochKeys,
    /// The reader key that later keyloads wrap epoch keys to; `None` in simple (shared-key) mode.
    pub reader: Option<[u8; 32]>,
    /// Where the channel lives (a ledger URL), as a hint.
    pub ledger_hint: Option<String>,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("vendor", &self.vendor)
            .field("epochs", &self.keys)
            .field("reader", &self.reader.is_some())
            .field("ledger_hint", &self.ledger_hint)
            .finish_non_exhaustive()
    }
}

/// Why a token cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// Does not start with `fwl1` or is not base64url.
    NotAToken,
    /// The checksum does not match: the token was mistyped or truncated.
    BadChecksum,
    /// The content is not a valid token.
    Malformed(DecodeError),
    /// The channel author key is not certified by the token's vendor key.
    AuthorNotCertified(CertificateError),
    /// The token is for another vendor than the one expected.
    UnexpectedVendor,
}

impl TokenError {
    /// A short stable name of the failed check.
    pub fn check(&self) -> &'static str {
        match self {
            TokenError::NotAToken => "token-format",
            TokenError::BadChecksum => "token-checksum",
            TokenError::Malformed(_) => "token-content",
            TokenError::AuthorNotCertified(_) => "channel-author-certificate",
            TokenError::UnexpectedVendor => "vendor-pin",
        }
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::NotAToken => f.write_str("not a subscription token (expected fwl1…)"),
            TokenError::BadChecksum => {
                f.write_str("token checksum mismatch: it was mistyped or truncated")
            }
            TokenError::Malformed(e) => write!(f, "malformed token: {e}"),
            TokenError::AuthorNotCertified(e) => write!(f, "token channel author: {e}"),
            TokenError::UnexpectedVendor => f.write_str("token is for another vendor"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TokenError {}

impl Token {
    /// Encodes the CBOR form.
    pub fn to_cbor(&self) -> Vec<u8> {
        let len = 5 + usize::from(self.reader.is_some()) + usize::from(self.ledger_hint.is_some());
        let mut e = Encoder::new();
        e.map(len)
            .u64(1)
            .u64(TOKEN_FORMAT)
            .u64(2)
            .str(&self.vendor)
            .u64(3)
            .bytes(&self.vendor_key)
            .u64(4)
            .bytes(&self.author_certificate)
            .u64(5);
        self.keys.encode(&mut e);
        if let Some(reader) = &self.reader {
            e.u64(6).bytes(reader);
        }
        if let Some(hint) = &self.ledger_hint {
            e.u64(7).str(hint);
        }
        e.into_bytes()
    }

    /// Decodes the CBOR form.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(bytes);
        let mut keys = MapKeys::open(&mut d)?;
        let mut token = Token {
            vendor: String::new(),
            vendor_key: [0; 32],
            author_certificate: Vec::new(),
            keys: EpochKeys::new(),
            reader: None,
            ledger_hint: None,
        };
        let mut seen = 0u8;
        while let Some(key) = keys.next(&mut d)? {
            match key {
                1 if d.u64()? == TOKEN_FORMAT => {}
                1 => return Err(DecodeError::InvalidField("format")),
                2 => token.vendor = d.string()?,
                3 => token.vendor_key = d.bytes_n()?,
                4 => token.author_certificate = d.bytes()?.to_vec(),
                5 => token.keys = EpochKeys::decode(&mut d)?,
                6 => token.reader = Some(d.bytes_n()?),
                7 => token.ledger_hint = Some(d.string()?),
                _ => return Err(DecodeError::InvalidField("unknown token field")),
            }
            if key <= 5 {
                seen += 1;
            }
        }
        d.finish()?;
        if seen != 5 {
            return Err(DecodeError::InvalidField("token"));
        }
        Ok(token)
    }

    /// The text form.
    pub fn to_text(&self) -> String {
        let mut bytes = self.to_cbor();
        let check = Sha256::digest(&bytes);
        bytes.extend_from_slice(&check[..4]);
        let mut text = String::from(TOKEN_PREFIX);
        base64::encode_url(&bytes, &mut text);
        text
    }

    /// Parses the text form (surrounding whitespace is ignored).
    pub fn from_text(text: &str) -> Result<Self, TokenError> {
        let text = text.trim();
        if text.len() > MAX_TOKEN_TEXT {
            return Err(TokenError::NotAToken);
        }
        let body = text
            .strip_prefix(TOKEN_PREFIX)
            .ok_or(TokenError::NotAToken)?;
        let bytes = base64::decode_url(body).ok_or(TokenError::NotAToken)?;
        if bytes.len() < 4 {
            return Err(TokenError::BadChecksum);
        }
        let (cbor, check) = bytes.split_at(bytes.len() - 4);
        if Sha256::digest(cbor)[..4] != *check {
            return Err(TokenError::BadChecksum);
        }
        Token::from_cbor(cbor).map_err(TokenError::Malformed)
    }

    /// The vendor trust anchor the token names.
    pub fn trust(&self) -> Result<TrustAnchor, TokenError> {
        VerifyingKey::from_bytes(&self.vendor_key)
            .map(TrustAnchor::new)
            .map_err(|_| TokenError::Malformed(DecodeError::InvalidField("vendor_key")))
    }

    /// Checks the author certificate against the token's vendor key and returns the author key.
    pub fn author(&self) -> Result<VerifyingKey, TokenError> {
        let trust = self.trust()?;
        let cert =
            KeyCertificate::verify(&self.author_certificate, &trust.root, Role::ChannelAuthor)
                .map_err(TokenError::AuthorNotCertified)?;
        cert.verifying_key().map_err(TokenError::AuthorNotCertified)
    }

    /// The id of the channel the token opens.
    pub fn channel(&self) -> Result<ChannelId, TokenError> {
        self.author().map(|author| channel_id(&author))
    }

    /// A follower at the channel's genesis. With `expected_vendor`, refuses tokens of any other
    /// vendor key (pinning).
    pub fn follower(&self, expected_vendor: Option<&[u8; 32]>) -> Result<Follower, TokenError> {
        if expected_vendor.is_some_and(|v| *v != self.vendor_key) {
            return Err(TokenError::UnexpectedVendor);
        }
        let author = self.author()?;
        Ok(Follower::new(
            author,
            self.trust()?,
            self.reader.map(ReaderKey::from_bytes),
            self.keys.clone(),
        ))
    }
}

//! The channel message envelope: header, body and the author's signature.
//!
//! Wire form: `[header: bstr, body: bstr, signature: bstr(64)]` where `header` is the CBOR array
//! `[1, channel, seq, prev, epoch, kind, nonce]`. The body of every kind but keyload is the
//! XChaCha20-Poly1305 ciphertext of the payload under the epoch key with the header bytes as
//! associated data; the signature is Ed25519 over `["fwledger-msg-v1", header, body]`
//! (encrypt-then-sign: anyone can check authorship, only readers can decrypt).

use alloc::vec::Vec;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::cbor::{DecodeError, Decoder, Encoder};

/// The message format this crate writes and reads.
pub const MESSAGE_FORMAT: u64 = 1;
/// Domain separation of message signatures.
const SIGNATURE_CONTEXT: &str = "fwledger-msg-v1";
/// Domain separation of channel ids.
const CHANNEL_CONTEXT: &[u8] = b"fwledger-channel-v1";

/// A channel's 32-byte identifier: SHA-256 of a context string and the author's public key.
pub type ChannelId = [u8; 32];

/// The id of the channel written by `author`.
pub fn channel_id(author: &VerifyingKey) -> ChannelId {
    let mut h = Sha256::new();
    h.update(CHANNEL_CONTEXT);
    h.update(author.as_bytes());
    h.finalize().into()
}

/// What a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A signed release manifest.
    Release = 1,
    /// Withdrawal of a release.
    Revoke = 2,
    /// "The channel is alive up to here", with a validity window.
    Heartbeat = 3,
    /// A new epoch key wrapped to each reader (the body is not encrypted).
    Keyload = 4,
}

impl Kind {
    fn from_u64(v: u64) -> Result<Self, DecodeError> {
        match v {
            1 => Ok(Kind::Release),
            2 => Ok(Kind::Revoke),
            3 => Ok(Kind::Heartbeat),
            4 => Ok(Kind::Keyload),
            _ => Err(DecodeError::InvalidField("kind")),
        }
    }
}

/// The authenticated header of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The channel the message belongs to.
    pub channel: ChannelId,
    /// Position in the channel, from 0, without gaps.
    pub seq: u64,
    /// SHA-256 of the previous message's wire bytes (zeros for the first message).
    pub prev: [u8; 32],
    /// Epoch of the key the body is encrypted with (for a keyload: the epoch it starts).
    pub epoch: u64,
    /// What the body carries.
    pub kind: Kind,
    /// AEAD nonce (random).
    pub nonce: [u8; 24],
}

impl Header {
    /// Encodes the header (this exact byte string is signed and used as associated data).
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.array(7)
            .u64(MESSAGE_FORMAT)
            .bytes(&self.channel)
            .u64(self.seq)
            .bytes(&self.prev)
            .u64(self.epoch)
            .u64(self.kind as u64)
            .bytes(&self.nonce);
        e.into_bytes()
    }

    fn from_cbor(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(bytes);
        d.array_of(7, "message header")?;
        if d.u64()? != MESSAGE_FORMAT {
            return Err(DecodeError::InvalidField("format"));
        }
        let header = Header {
            channel: d.bytes_n()?,
            seq: d.u64()?,
            prev: d.bytes_n()?,
            epoch: d.u64()?,
            kind: Kind::from_u64(d.u64()?)?,
            nonce: d.bytes_n()?,
        };
        d.leave();
        d.finish()?;
        Ok(header)
    }
}

/// A decoded message whose signature has not been checked yet.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    /// The decoded header.
    pub header: Header,
    /// The header's encoded bytes.
    pub header_bytes: &'a [u8],
    /// Ciphertext (or the clear keyload).
    pub body: &'a [u8],
    signature: [u8; 64],
    /// SHA-256 of the whole wire message: the next message's `prev`.
    pub digest: [u8; 32],
}

fn signed_bytes(header: &[u8], body: &[u8]) -> Vec<u8> {
    let mut e = Encoder::new();
    e.array(3).str(SIGNATURE_CONTEXT).bytes(header).bytes(body);
    e.into_bytes()
}

/// Builds the wire form of a message: signs `header ‖ body` with the author key.
pub fn encode(author: &SigningKey, header_bytes: &[u8], body: &[u8]) -> Vec<u8> {
    let signature = author.sign(&signed_bytes(header_bytes, body));
    let mut e = Encoder::new();
    e.array(3)
        .bytes(header_bytes)
        .bytes(body)
        .bytes(&signature.to_bytes());
    e.into_bytes()
}

/// Decodes the wire form without checking the signature.
pub fn decode(wire: &[u8]) -> Result<Envelope<'_>, DecodeError> {
    let mut d = Decoder::new(wire);
    d.array_of(3, "message")?;
    let header_bytes = d.bytes()?;
    let body = d.bytes()?;
    let signature = d.bytes_n::<64>()?;
    d.leave();
    d.finish()?;
    Ok(Envelope {
        header: Header::from_cbor(header_bytes)?,
        header_bytes,
        body,
        signature,
        digest: Sha256::digest(wire).into(),
    })
}

impl Envelope<'_> {
    /// Whether the channel author signed this message (strict Ed25519).
    pub fn verify(&self, author: &VerifyingKey) -> bool {
        let signature = Signature::from_bytes(&self.signature);
        author
            .verify_strict(&signed_bytes(self.header_bytes, self.body), &signature)
            .is_ok()
    }
}

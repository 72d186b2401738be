//! The writing side of a channel.

use alloc::vec::Vec;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use ed25519_dalek::SigningKey;
use rand_core::CryptoRngCore;

use super::keyload::{seal_keyload, EpochKeys};
use super::message::{self, channel_id, ChannelId, Envelope, Header, Kind};

/// Where the next message goes: its sequence number and the digest of the message before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainPosition {
    /// Sequence number of the next message.
    pub seq: u64,
    /// Digest of the previous message (zeros before the first).
    pub prev: [u8; 32],
}

impl ChainPosition {
    /// The position of a channel's first message.
    pub const GENESIS: ChainPosition = ChainPosition {
        seq: 0,
        prev: [0; 32],
    };

    /// The position right after `envelope`.
    pub fn after(envelope: &Envelope<'_>) -> Self {
        ChainPosition {
            seq: envelope.header.seq.saturating_add(1),
            prev: envelope.digest,
        }
    }
}

/// Why the author cannot write a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthorError {
    /// Keyloads are written with [`ChannelAuthor::rotate`].
    UseRotate,
    /// The author holds no key for its current epoch.
    NoEpochKey,
}

/// The channel author: signs every message and holds the epoch keys.
pub struct ChannelAuthor {
    key: SigningKey,
    channel: ChannelId,
    epoch: u64,
    keys: EpochKeys,
}

impl core::fmt::Debug for ChannelAuthor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ChannelAuthor")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl ChannelAuthor {
    /// An author writing in `epoch` with the given keys (which must hold that epoch's key).
    pub fn new(key: SigningKey, epoch: u64, keys: EpochKeys) -> Self {
        let channel = channel_id(&key.verifying_key());
        ChannelAuthor {
            key,
            channel,
            epoch,
            keys,
        }
    }

    /// The channel this author writes.
    pub fn channel(&self) -> &ChannelId {
        &self.channel
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Every epoch key so far.
    pub fn keys(&self) -> &EpochKeys {
        &self.keys
    }

    /// Writes an encrypted message of `kind` with `payload` at `position`.
    pub fn seal(
        &self,
        position: ChainPosition,
        kind: Kind,
        payload: &[u8],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, AuthorError> {
        if kind == Kind::Keyload {
            return Err(AuthorError::UseRotate);
        }
        let epoch_key = self.keys.get(self.epoch).ok_or(AuthorError::NoEpochKey)?;
        let header = self.header(position, kind, rng);
        let header_bytes = header.to_cbor();
        let body = XChaCha20Poly1305::new(Key::from_slice(epoch_key))
            .encrypt(
                XNonce::from_slice(&header.nonce),
                Payload {
                    msg: payload,
                    aad: &header_bytes,
                },
            )
            .map_err(|_| AuthorError::NoEpochKey)?;
        Ok(message::encode(&self.key, &header_bytes, &body))
    }

    /// Starts a new epoch with a fresh random key and writes the keyload that wraps every epoch
    /// key to each of `readers` (X25519 public keys). Readers not listed lose access from here on.
    pub fn rotate(
        &mut self,
        position: ChainPosition,
        readers: &[[u8; 32]],
        rng: &mut impl CryptoRngCore,
    ) -> Vec<u8> {
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        self.epoch = self.keys.latest().map_or(0, |e| e.saturating_add(1));
        self.keys.insert(self.epoch, key);
        let header = self.header(position, Kind::Keyload, rng);
        let header_bytes = header.to_cbor();
        let body = seal_keyload(
            &self.channel,
            &header_bytes,
            self.epoch,
            &self.keys,
            readers,
            rng,
        );
        message::encode(&self.key, &header_bytes, &body)
    }

    fn header(&self, position: ChainPosition, kind: Kind, rng: &mut impl CryptoRngCore) -> Header {
        let mut nonce = [0u8; 24];
        rng.fill_bytes(&mut nonce);
        Header {
            channel: self.channel,
            seq: position.seq,
            prev: position.prev,
            epoch: self.epoch,
            kind,
            nonce,
        }
    }
}

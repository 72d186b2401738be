//! Epoch keys and keyloads: how readers learn the keys that decrypt a channel.
//!
//! A keyload body is `{1: epoch, 2: ephemeral X25519 public key, 3: [[reader id, nonce, wrapped]…]}`
//! in the clear (it is signed like every message). For each reader, the key-encryption key is
//! `HKDF-SHA256(salt = channel id, ikm = X25519(ephemeral, reader), info = "fwledger-keyload-v1" ‖
//! ephemeral public ‖ reader public)`, and `wrapped` is the XChaCha20-Poly1305 encryption of the
//! CBOR map `{epoch: key, …}` of every epoch key the reader may hold, with the message header as
//! associated data. A reader left out of a keyload cannot read anything of the new epoch.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand_core::CryptoRngCore;
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroize;

use crate::cbor::{DecodeError, Decoder, Encoder, MapKeys};
use crate::keys::KeyId;

use super::message::ChannelId;

const KEYLOAD_CONTEXT: &[u8] = b"fwledger-keyload-v1";
/// Most readers one keyload may address.
pub const MAX_READERS: usize = 4096;
/// Most epoch keys one keyload may carry.
pub const MAX_EPOCHS: usize = 4096;

/// The symmetric keys of a channel's epochs, wiped from memory on drop.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EpochKeys(BTreeMap<u64, [u8; 32]>);

impl Drop for EpochKeys {
    fn drop(&mut self) {
        for key in self.0.values_mut() {
            key.zeroize();
        }
    }
}

impl core::fmt::Debug for EpochKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl EpochKeys {
    /// No keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// The key of `epoch`, if held.
    pub fn get(&self, epoch: u64) -> Option<&[u8; 32]> {
        self.0.get(&epoch)
    }

    /// Adds or replaces the key of `epoch`.
    pub fn insert(&mut self, epoch: u64, key: [u8; 32]) {
        self.0.insert(epoch, key);
    }

    /// Adds every key of `other`.
    pub fn extend(&mut self, other: &EpochKeys) {
        for (epoch, key) in &other.0 {
            self.0.insert(*epoch, *key);
        }
    }

    /// The highest epoch held.
    pub fn latest(&self) -> Option<u64> {
        self.0.keys().next_back().copied()
    }

    /// Epochs and keys in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &[u8; 32])> {
        self.0.iter().map(|(e, k)| (*e, k))
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Encodes as the CBOR map `{epoch: key}`.
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        self.encode(&mut e);
        e.into_bytes()
    }

    pub(crate) fn encode(&self, e: &mut Encoder) {
        e.map(self.0.len());
        for (epoch, key) in &self.0 {
            e.u64(*epoch).bytes(key);
        }
    }

    pub(crate) fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut keys = MapKeys::open(d)?;
        let mut out = BTreeMap::new();
        while let Some(epoch) = keys.next(d)? {
            if epoch < 0 || out.len() >= MAX_EPOCHS {
                return Err(DecodeError::InvalidField("epoch keys"));
            }
            out.insert(epoch as u64, d.bytes_n::<32>()?);
        }
        Ok(EpochKeys(out))
    }

    /// Decodes the CBOR map `{epoch: key}`.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(bytes);
        let keys = Self::decode(&mut d)?;
        d.finish()?;
        Ok(keys)
    }
}

/// The X25519 key pair a reader (gateway) unwraps keyloads with.
#[derive(Clone)]
pub struct ReaderKey(StaticSecret);

impl core::fmt::Debug for ReaderKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ReaderKey({})", self.id())
    }
}

impl ReaderKey {
    /// A fresh reader key.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        ReaderKey(StaticSecret::random_from_rng(rng))
    }

    /// A reader key from its secret bytes.
    pub fn from_bytes(secret: [u8; 32]) -> Self {
        ReaderKey(StaticSecret::from(secret))
    }

    /// The secret bytes (keep them secret).
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public key the author wraps epoch keys to.
    pub fn public(&self) -> [u8; 32] {
        PublicKey::from(&self.0).to_bytes()
    }

    /// The reader's id: [`KeyId`] of the public key.
    pub fn id(&self) -> KeyId {
        KeyId::of_bytes(&self.public())
    }
}

fn key_encryption_key(
    channel: &ChannelId,
    shared: &[u8; 32],
    ephemeral: &[u8; 32],
    reader: &[u8; 32],
) -> [u8; 32] {
    let mut info = [0u8; KEYLOAD_CONTEXT.len() + 64];
    info[..KEYLOAD_CONTEXT.len()].copy_from_slice(KEYLOAD_CONTEXT);
    info[KEYLOAD_CONTEXT.len()..KEYLOAD_CONTEXT.len() + 32].copy_from_slice(ephemeral);
    info[KEYLOAD_CONTEXT.len() + 32..].copy_from_slice(reader);
    let mut kek = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's output limit, so expand cannot fail.
    let _ = Hkdf::<Sha256>::new(Some(channel), shared).expand(&info, &mut kek);
    kek
}

/// Builds a keyload body that wraps `keys` to each reader public key.
pub fn seal_keyload(
    channel: &ChannelId,
    header_bytes: &[u8],
    epoch: u64,
    keys: &EpochKeys,
    readers: &[[u8; 32]],
    rng: &mut impl CryptoRngCore,
) -> Vec<u8> {
    let ephemeral = StaticSecret::random_from_rng(&mut *rng);
    let ephemeral_public = PublicKey::from(&ephemeral).to_bytes();
    let mut plaintext = keys.to_cbor();
    let mut e = Encoder::new();
    e.map(3)
        .u64(1)
        .u64(epoch)
        .u64(2)
        .bytes(&ephemeral_public)
        .u64(3)
        .array(readers.len());
    for reader in readers {
        let shared = ephemeral.diffie_hellman(&PublicKey::from(*reader));
        let mut kek = key_encryption_key(channel, shared.as_bytes(), &ephemeral_public, reader);
        let mut nonce = [0u8; 24];
        rng.fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new(Key::from_slice(&kek));
        let wrapped = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plaintext,
                    aad: header_bytes,
                },
            )
            .unwrap_or_default();
        kek.zeroize();
        e.array(3)
            .bytes(&KeyId::of_bytes(reader).0)
            .bytes(&nonce)
            .bytes(&wrapped);
    }
    plaintext.zeroize();
    e.into_bytes()
}

/// A decoded keyload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyload<'a> {
    /// The epoch this keyload starts.
    pub epoch: u64,
    ephemeral: [u8; 32],
    entries: Vec<([u8; 8], [u8; 24], &'a [u8])>,
}

impl<'a> Keyload<'a> {
    /// Decodes a keyload body.
    pub fn from_cbor(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(body);
        let mut keys = MapKeys::open(&mut d)?;
        keys.expect(&mut d, 1, "epoch")?;
        let epoch = d.u64()?;
        keys.expect(&mut d, 2, "ephemeral")?;
        let ephemeral = d.bytes_n::<32>()?;
        keys.expect(&mut d, 3, "readers")?;
        let n = d.array()?;
        if n > MAX_READERS {
            return Err(DecodeError::InvalidField("readers"));
        }
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            d.array_of(3, "keyload entry")?;
            entries.push((d.bytes_n::<8>()?, d.bytes_n::<24>()?, d.bytes()?));
            d.leave();
        }
        d.leave();
        keys.end(&mut d)?;
        d.finish()?;
        Ok(Keyload {
            epoch,
            ephemeral,
            entries,
        })
    }

    /// Number of readers addressed.
    pub fn readers(&self) -> usize {
        self.entries.len()
    }

    /// Unwraps the epoch keys for `reader`: `Ok(None)` when the keyload leaves the reader out,
    /// `Err` when the entry addressed to it does not decrypt.
    pub fn open(
        &self,
        channel: &ChannelId,
        header_bytes: &[u8],
        reader: &ReaderKey,
    ) -> Result<Option<EpochKeys>, DecodeError> {
        let id = reader.id();
        let Some((_, nonce, wrapped)) = self.entries.iter().find(|(rid, _, _)| *rid == id.0) else {
            return Ok(None);
        };
        let shared = reader.0.diffie_hellman(&PublicKey::from(self.ephemeral));
        if !shared.was_contributory() {
            return Err(DecodeError::InvalidField("ephemeral"));
        }
        let mut kek = key_encryption_key(
            channel,
            shared.as_bytes(),
            &self.ephemeral,
            &reader.public(),
        );
        let cipher = XChaCha20Poly1305::new(Key::from_slice(&kek));
        kek.zeroize();
        let mut plaintext = cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: wrapped,
                    aad: header_bytes,
                },
            )
            .map_err(|_| DecodeError::InvalidField("wrapped epoch keys"))?;
        let keys = EpochKeys::from_cbor(&plaintext);
        plaintext.zeroize();
        keys.map(Some)
    }
}

//! The reading side of a channel: a sans-IO state machine fed with wire messages in order.
//!
//! For every message it checks, in order: encoding, channel id, author signature, sequence number
//! (no replay, no gap), the hash chain, that epochs never go back, and then decrypts and decodes
//! the payload. Chain checks come before decryption, so a reader without the epoch key still
//! follows (and authenticates) the channel.

use alloc::vec::Vec;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use core::fmt;
use ed25519_dalek::VerifyingKey;

use super::author::ChainPosition;
use super::keyload::{EpochKeys, Keyload, ReaderKey};
use super::message::{self, ChannelId, Kind};
use super::payload::{Heartbeat, ReleaseBody, Revocation};
use crate::cbor::DecodeError;
use crate::manifest::{verify_manifest, ManifestError, TrustAnchor, VerifiedManifest};

/// Why a message was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FollowError {
    /// Not a well-formed message. The follower did not move.
    Malformed(DecodeError),
    /// The message belongs to another channel. The follower did not move.
    WrongChannel,
    /// Not signed by the channel author: a forged or tampered message. The follower did not move.
    BadSignature,
    /// A sequence number already consumed: a replayed or reordered message. The follower did not
    /// move.
    Replayed {
        /// The message's sequence number.
        seq: u64,
        /// The sequence number the follower waits for.
        expected: u64,
    },
    /// Messages are missing before this one (dropped or withheld). The follower did not move.
    Gap {
        /// The message's sequence number.
        seq: u64,
        /// The sequence number the follower waits for.
        expected: u64,
    },
    /// The message does not link to the previous one: a substituted history. The follower did not
    /// move.
    BrokenChain {
        /// The message's sequence number.
        seq: u64,
    },
    /// The author went back to an older epoch. The follower did not move.
    EpochRegression {
        /// The message's epoch.
        epoch: u64,
        /// The latest epoch seen.
        latest: u64,
    },
    /// Authentic message of an epoch whose key this reader does not hold (not a reader, or
    /// revoked). The follower moved past it.
    NoEpochKey {
        /// The message's epoch.
        epoch: u64,
    },
    /// Authentic message whose payload did not decrypt or decode with the held key. The follower
    /// moved past it.
    BadPayload,
    /// Authentic release message whose manifest fails verification. The follower moved past it.
    BadManifest(ManifestError),
}

impl FollowError {
    /// Whether the follower consumed the message despite the error (it was authentic and in order).
    pub fn advanced(&self) -> bool {
        matches!(
            self,
            FollowError::NoEpochKey { .. } | FollowError::BadPayload | FollowError::BadManifest(_)
        )
    }

    /// A short stable name of the failed check.
    pub fn check(&self) -> &'static str {
        match self {
            FollowError::Malformed(_) => "message-format",
            FollowError::WrongChannel => "channel",
            FollowError::BadSignature => "message-signature",
            FollowError::Replayed { .. } => "replay",
            FollowError::Gap { .. } => "gap",
            FollowError::BrokenChain { .. } => "hash-chain",
            FollowError::EpochRegression { .. } => "epoch",
            FollowError::NoEpochKey { .. } => "epoch-key",
            FollowError::BadPayload => "payload",
            FollowError::BadManifest(e) => e.check(),
        }
    }
}

impl fmt::Display for FollowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FollowError::Malformed(e) => write!(f, "malformed channel message: {e}"),
            FollowError::WrongChannel => f.write_str("message belongs to another channel"),
            FollowError::BadSignature => {
                f.write_str("message is not signed by the channel author (forged or tampered)")
            }
            FollowError::Replayed { seq, expected } => {
                write!(f, "replayed message: seq {seq}, expected {expected}")
            }
            FollowError::Gap { seq, expected } => {
                write!(f, "missing messages: got seq {seq}, expected {expected}")
            }
            FollowError::BrokenChain { seq } => {
                write!(f, "message {seq} does not link to the previous message")
            }
            FollowError::EpochRegression { epoch, latest } => {
                write!(f, "epoch {epoch} is older than the latest epoch {latest}")
            }
            FollowError::NoEpochKey { epoch } => {
                write!(
                    f,
                    "no key for epoch {epoch}: this reader was revoked or never admitted"
                )
            }
            FollowError::BadPayload => f.write_str("payload does not decrypt or decode"),
            FollowError::BadManifest(e) => write!(f, "release manifest refused: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FollowError {}

/// What an accepted message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A release whose manifest verified against the vendor root key.
    Release {
        /// The verified manifest.
        verified: alloc::boxed::Box<VerifiedManifest>,
        /// The signed manifest bytes, for relaying to devices.
        signed: Vec<u8>,
    },
    /// A release was withdrawn.
    Revoke(Revocation),
    /// A freshness statement.
    Heartbeat(Heartbeat),
    /// A new epoch began; `admitted` says whether this reader got its key.
    Keyload {
        /// The new epoch.
        epoch: u64,
        /// Whether this reader can read the new epoch.
        admitted: bool,
    },
}

/// An accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Its sequence number.
    pub seq: u64,
    /// Its epoch.
    pub epoch: u64,
    /// Its digest (the chain link).
    pub digest: [u8; 32],
    /// What it says.
    pub event: Event,
}

/// Whether the channel is known to be live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// Follows one channel from a position, verifying every message.
#[derive(Debug, Clone)]
pub struct Follower {
    channel: ChannelId,
    author: VerifyingKey,
    trust: TrustAnchor,
    reader: Option<ReaderKey>,
    keys: EpochKeys,
    position: ChainPosition,
    latest_epoch: u64,
    heartbeat: Option<Heartbeat>,
}

/// What a follower must remember to resume after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerState {
    /// Next sequence number and chain link.
    pub position: ChainPosition,
    /// Latest epoch seen.
    pub latest_epoch: u64,
    /// Epoch keys learned so far (secret).
    pub keys: EpochKeys,
    /// Latest heartbeat.
    pub heartbeat: Option<Heartbeat>,
}

impl Follower {
    /// A follower of the channel written by `author` (already checked against the vendor root), at
    /// the genesis position.
    pub fn new(
        author: VerifyingKey,
        trust: TrustAnchor,
        reader: Option<ReaderKey>,
        keys: EpochKeys,
    ) -> Self {
        Follower {
            channel: message::channel_id(&author),
            author,
            trust,
            reader,
            keys,
            position: ChainPosition::GENESIS,
            latest_epoch: 0,
            heartbeat: None,
        }
    }

    /// The channel followed.
    pub fn channel(&self) -> &ChannelId {
        &self.channel
    }

    /// The vendor trust anchor used for manifests.
    pub fn trust(&self) -> &TrustAnchor {
        &self.trust
    }

    /// The next sequence number expected.
    pub fn next_seq(&self) -> u64 {
        self.position.seq
    }

    /// A snapshot to persist.
    pub fn state(&self) -> FollowerState {
        FollowerState {
            position: self.position,
            latest_epoch: self.latest_epoch,
            keys: self.keys.clone(),
            heartbeat: self.heartbeat,
        }
    }

    /// Resumes from a persisted snapshot (keys learned are merged with the ones held).
    pub fn restore(&mut self, state: &FollowerState) {
        self.position = state.position;
        self.latest_epoch = state.latest_epoch;
        self.keys.extend(&state.keys);
        self.heartbeat = state.heartbeat;
    }

    /// Freshness at `now`, from the latest heartbeat.
    pub fn freshness(&self, now: u64) -> Freshness {
        match self.heartbeat {
            None => Freshness::Unknown,
            Some(h) if now <= h.valid_until => Freshness::Fresh {
                valid_until: h.valid_until,
            },
            Some(h) => Freshness::Stale {
                valid_until: h.valid_until,
            },
        }
    }

    /// Verifies the next message. `now` (Unix seconds) is used for manifest expiry, if known.
    pub fn ingest(&mut self, wire: &[u8], now: Option<u64>) -> Result<Delivery, FollowError> {
        let envelope = message::decode(wire).map_err(FollowError::Malformed)?;
        let header = &envelope.header;
        if header.channel != self.channel {
            return Err(FollowError::WrongChannel);
        }
        if !envelope.verify(&self.author) {
            return Err(FollowError::BadSignature);
        }
        let expected = self.position.seq;
        if header.seq < expected {
            return Err(FollowError::Replayed {
                seq: header.seq,
                expected,
            });
        }
        if header.seq > expected {
            return Err(FollowError::Gap {
                seq: header.seq,
                expected,
            });
        }
        if header.prev != self.position.prev {
            return Err(FollowError::BrokenChain { seq: header.seq });
        }
        if header.epoch < self.latest_epoch {
            return Err(FollowError::EpochRegression {
                epoch: header.epoch,
                latest: self.latest_epoch,
            });
        }
        // Authentic and in order: from here on the message is consumed whatever its content.
        self.position = ChainPosition::after(&envelope);
        self.latest_epoch = header.epoch;
        let event = self.open(&envelope, now)?;
        Ok(Delivery {
            seq: header.seq,
            epoch: header.epoch,
            digest: envelope.digest,
            event,
        })
    }

    fn open(
        &mut self,
        envelope: &message::Envelope<'_>,
        now: Option<u64>,
    ) -> Result<Event, FollowError> {
        let header = &envelope.header;
        if header.kind == Kind::Keyload {
            let keyload = Keyload::from_cbor(envelope.body).map_err(|_| FollowError::BadPayload)?;
            if keyload.epoch != header.epoch {
                return Err(FollowError::BadPayload);
            }
            let granted = match &self.reader {
                Some(reader) => keyload
                    .open(&self.channel, envelope.header_bytes, reader)
                    .map_err(|_| FollowError::BadPayload)?,
                None => None,
            };
            if let Some(keys) = granted {
                self.keys.extend(&keys);
            }
            // A reader may already hold the key (a token issued after the rotation).
            let admitted = self.keys.get(header.epoch).is_some();
            return Ok(Event::Keyload {
                epoch: header.epoch,
                admitted,
            });
        }
        let key = self.keys.get(header.epoch).ok_or(FollowError::NoEpochKey {
            epoch: header.epoch,
        })?;
        let plaintext = XChaCha20Poly1305::new(Key::from_slice(key))
            .decrypt(
                XNonce::from_slice(&header.nonce),
                Payload {
                    msg: envelope.body,
                    aad: envelope.header_bytes,
                },
            )
            .map_err(|_| FollowError::BadPayload)?;
        match header.kind {
            Kind::Release => {
                let body =
                    ReleaseBody::from_cbor(&plaintext).map_err(|_| FollowError::BadPayload)?;
                let verified = verify_manifest(&body.manifest, &self.trust, now)
                    .map_err(FollowError::BadManifest)?;
                Ok(Event::Release {
                    verified: alloc::boxed::Box::new(verified),
                    signed: body.manifest,
                })
            }
            Kind::Revoke => Revocation::from_cbor(&plaintext)
                .map(Event::Revoke)
                .map_err(|_| FollowError::BadPayload),
            Kind::Heartbeat => {
                let heartbeat =
                    Heartbeat::from_cbor(&plaintext).map_err(|_| FollowError::BadPayload)?;
                self.heartbeat = Some(heartbeat);
                Ok(Event::Heartbeat(heartbeat))
            }
            Kind::Keyload => Err(FollowError::BadPayload),
        }
    }
}

//! The plaintext payloads of channel messages.

use alloc::string::String;
use alloc::vec::Vec;

use crate::cbor::{DecodeError, Decoder, Encoder, MapKeys};

/// A release announcement: `{1: signed manifest}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseBody {
    /// The COSE_Sign1 manifest.
    pub manifest: Vec<u8>,
}

/// Withdrawal of a release: `{1: model, 2: version, 3: reason}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// Model of the withdrawn release.
    pub model: String,
    /// Version of the withdrawn release.
    pub version: String,
    /// Why it was withdrawn.
    pub reason: String,
}

/// A freshness statement: `{1: time, 2: valid_until}`; the heartbeat's own sequence number is the
/// channel's latest position at `time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// When the vendor wrote it, Unix seconds.
    pub time: u64,
    /// Until when followers may consider the channel fresh without a newer heartbeat.
    pub valid_until: u64,
}

impl ReleaseBody {
    /// Encodes the payload.
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.map(1).u64(1).bytes(&self.manifest);
        e.into_bytes()
    }

    /// Decodes the payload.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(bytes);
        let mut keys = MapKeys::open(&mut d)?;
        keys.expect(&mut d, 1, "manifest")?;
        let manifest = d.bytes()?.to_vec();
        keys.end(&mut d)?;
        d.finish()?;
        Ok(ReleaseBody { manifest })
    }
}

impl Revocation {
    /// Encodes the payload.
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.map(3)
            .u64(1)
            .str(&self.model)
            .u64(2)
            .str(&self.version)
            .u64(3)
            .str(&self.reason);
        e.into_bytes()
    }

    /// Decodes the payload.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(bytes);
        let mut keys = MapKeys::open(&mut d)?;
        keys.expect(&mut d, 1, "model")?;
        let model = d.string()?;
        keys.expect(&mut d, 2, "version")?;
        let version = d.string()?;
        keys.expect(&mut d, 3, "reason")?;
        let reason = d.string()?;
        keys.end(&mut d)?;
        d.finish()?;
        Ok(Revocation {
            model,
            version,
            reason,
        })
    }
}

impl Heartbeat {
    /// Encodes the payload.
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.map(2).u64(1).u64(self.time).u64(2).u64(self.valid_until);
        e.into_bytes()
    }

    /// Decodes the payload.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(bytes);
        let mut keys = MapKeys::open(&mut d)?;
        keys.expect(&mut d, 1, "time")?;
        let time = d.u64()?;
        keys.expect(&mut d, 2, "valid_until")?;
        let valid_until = d.u64()?;
        keys.end(&mut d)?;
        d.finish()?;
        Ok(Heartbeat { time, valid_until })
    }
}

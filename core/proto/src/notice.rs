//! Update notices: what a gateway sends a device about a release.
//!
//! `{1: 1, 2: signed manifest, 3: download URL, ? 4: gateway time}` in deterministic CBOR. A
//! notice carries no trust of its own: the device verifies the manifest against the vendor root
//! key it holds, so a compromised gateway can at worst withhold or delay updates. The gateway
//! time is a hint for devices without a clock and is never used for security decisions alone.

use alloc::string::String;
use alloc::vec::Vec;

use crate::cbor::{DecodeError, Decoder, Encoder, MapKeys};

const NOTICE_FORMAT: u64 = 1;
/// Longest download URL accepted.
pub const MAX_URL: usize = 2048;

/// A release notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The vendor-signed manifest (COSE_Sign1), relayed unchanged.
    pub manifest: Vec<u8>,
    /// Where the device downloads the image (HTTPS on the gateway, Range supported).
    pub url: String,
    /// The gateway's clock, Unix seconds (a hint).
    pub gateway_time: Option<u64>,
}

impl Notice {
    /// Encodes the notice.
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.map(3 + usize::from(self.gateway_time.is_some()))
            .u64(1)
            .u64(NOTICE_FORMAT)
            .u64(2)
            .bytes(&self.manifest)
            .u64(3)
            .str(&self.url);
        if let Some(t) = self.gateway_time {
            e.u64(4).u64(t);
        }
        e.into_bytes()
    }

    /// Decodes a notice (the manifest inside is not verified here).
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(bytes);
        let mut keys = MapKeys::open(&mut d)?;
        let (mut format, mut manifest, mut url, mut gateway_time) = (None, None, None, None);
        while let Some(key) = keys.next(&mut d)? {
            match key {
                1 => format = Some(d.u64()?),
                2 => manifest = Some(d.bytes()?.to_vec()),
                3 => {
                    let u = d.str()?;
                    if u.len() > MAX_URL {
                        return Err(DecodeError::InvalidField("url"));
                    }
                    url = Some(String::from(u));
                }
                4 => gateway_time = Some(d.u64()?),
                _ => return Err(DecodeError::InvalidField("unknown notice field")),
            }
        }
        d.finish()?;
        if format != Some(NOTICE_FORMAT) {
            return Err(DecodeError::InvalidField("format"));
        }
        Ok(Notice {
            manifest: manifest.ok_or(DecodeError::InvalidField("manifest"))?,
            url: url.ok_or(DecodeError::InvalidField("url"))?,
            gateway_time,
        })
    }
}

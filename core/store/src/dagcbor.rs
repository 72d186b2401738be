//! The CAR v1 header, `{"roots": [CID, …], "version": 1}` in DAG-CBOR.
//!
//! Only this one shape is needed, so the codec is written out here rather than pulling in a
//! general CBOR library. The decoder reads from a bounded slice, never recurses deeper than
//! [`MAX_DEPTH`] and never allocates more than the input length.

use cid::Cid;

use crate::StoreError;

/// CBOR tag for a CID in DAG-CBOR.
const CID_TAG: u64 = 42;
/// Nesting limit when skipping values of unknown keys.
const MAX_DEPTH: usize = 16;

const MAJOR_UINT: u8 = 0;
const MAJOR_NEGINT: u8 = 1;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;
const MAJOR_SIMPLE: u8 = 7;

/// A decoded CAR header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CarHeader {
    /// The `version` field.
    pub(crate) version: u64,
    /// The `roots` field (empty when absent, which only a non-v1 header may be).
    pub(crate) roots: Vec<Cid>,
}

/// Encodes a CAR v1 header with the given roots (keys in DAG-CBOR canonical order).
pub(crate) fn encode_header(roots: &[Cid]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + roots.len() * 40);
    write_head(&mut out, MAJOR_MAP, 2);
    write_text(&mut out, "roots");
    write_head(&mut out, MAJOR_ARRAY, roots.len() as u64);
    for root in roots {
        let bytes = root.to_bytes();
        write_head(&mut out, MAJOR_TAG, CID_TAG);
        write_head(&mut out, MAJOR_BYTES, bytes.len() as u64 + 1);
        out.push(0x00); // the multibase "identity" prefix DAG-CBOR puts before binary CIDs
        out.extend_from_slice(&bytes);
    }
    write_text(&mut out, "version");
    write_head(&mut out, MAJOR_UINT, 1);
    out
}

fn write_text(out: &mut Vec<u8>, s: &str) {
    write_head(out, MAJOR_TEXT, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn write_head(out: &mut Vec<u8>, major: u8, value: u64) {
    let m = major << 5;
    if value < 24 {
        out.push(m | value as u8);
    } else if let Ok(v) = u8::try_from(value) {
        out.extend_from_slice(&[m | 24, v]);
    } else if let Ok(v) = u16::try_from(value) {
        out.push(m | 25);
        out.extend_from_slice(&v.to_be_bytes());
    } else if let Ok(v) = u32::try_from(value) {
        out.push(m | 26);
        out.extend_from_slice(&v.to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&value.to_be_bytes());
    }
}

/// Decodes a CAR header. Unknown keys are skipped; anything that is not a definite-length
/// CBOR map with text keys, duplicate keys and trailing bytes are refused.
pub(crate) fn decode_header(bytes: &[u8]) -> Result<CarHeader, StoreError> {
    let mut c = Cursor { rest: bytes };
    let entries = c.expect(MAJOR_MAP, "header is not a map")?;
    let mut version = None;
    let mut roots = None;
    for _ in 0..entries {
        let key_len = c.expect(MAJOR_TEXT, "header key is not a string")?;
        let key = c.take(key_len)?;
        match key {
            b"version" if version.is_none() => {
                version = Some(c.expect(MAJOR_UINT, "version is not an integer")?);
            }
            b"roots" if roots.is_none() => roots = Some(c.roots()?),
            b"version" | b"roots" => return Err(malformed("duplicate header key")),
            _ => c.skip(0)?,
        }
    }
    if !c.rest.is_empty() {
        return Err(malformed("trailing bytes after header"));
    }
    let version = version.ok_or_else(|| malformed("header has no version"))?;
    if version != 1 {
        return Err(StoreError::Malformed(format!(
            "CAR version {version} is not supported (only CAR v1)"
        )));
    }
    let roots = roots.ok_or_else(|| malformed("header has no roots"))?;
    Ok(CarHeader { version, roots })
}

fn malformed(what: &str) -> StoreError {
    StoreError::Malformed(format!("CAR header: {what}"))
}

struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], StoreError> {
        let n = usize::try_from(n).map_err(|_| malformed("length overflow"))?;
        if n > self.rest.len() {
            return Err(malformed("truncated"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// Reads an item head: (major type, argument). Indefinite lengths are not DAG-CBOR.
    fn head(&mut self) -> Result<(u8, u64), StoreError> {
        let (&first, tail) = self
            .rest
            .split_first()
            .ok_or_else(|| malformed("truncated"))?;
        self.rest = tail;
        let major = first >> 5;
        let info = first & 0x1f;
        let value = match info {
            0..=23 => u64::from(info),
            24..=27 => {
                let bytes = self.take(1 << (info - 24))?;
                bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
            }
            _ => return Err(malformed("indefinite or reserved length")),
        };
        Ok((major, value))
    }

    fn expect(&mut self, major: u8, what: &str) -> Result<u64, StoreError> {
        match self.head()? {
            (m, v) if m == major => Ok(v),
            _ => Err(malformed(what)),
        }
    }

    fn roots(&mut self) -> Result<Vec<Cid>, StoreError> {
        let count = self.expect(MAJOR_ARRAY, "roots is not an array")?;
        // every root takes more than one byte, so this bounds the allocation by the input
        if count > self.rest.len() as u64 {
            return Err(malformed("truncated"));
        }
        let mut roots = Vec::new();
        for _ in 0..count {
            if self.expect(MAJOR_TAG, "root is not a CID")? != CID_TAG {
                return Err(malformed("root is not a CID"));
            }
            let len = self.expect(MAJOR_BYTES, "root is not a CID")?;
            let bytes = self.take(len)?;
            let Some((&0x00, cid_bytes)) = bytes.split_first() else {
                return Err(malformed("root CID lacks the 0x00 prefix"));
            };
            let cid = Cid::try_from(cid_bytes)
                .map_err(|e| StoreError::Malformed(format!("CAR header: root CID: {e}")))?;
            if cid.encoded_len() != cid_bytes.len() {
                return Err(malformed("trailing bytes after root CID"));
            }
            roots.push(cid);
        }
        Ok(roots)
    }

    /// Skips one complete item of any type.
    fn skip(&mut self, depth: usize) -> Result<(), StoreError> {
        if depth > MAX_DEPTH {
            return Err(malformed("nested too deeply"));
        }
        let (major, value) = self.head()?;
        match major {
            MAJOR_UINT | MAJOR_NEGINT | MAJOR_SIMPLE => Ok(()),
            MAJOR_BYTES | MAJOR_TEXT => self.take(value).map(|_| ()),
            MAJOR_ARRAY => self.skip_items(value, depth),
            MAJOR_MAP => self.skip_items(value.saturating_mul(2), depth),
            _ => self.skip(depth + 1), // MAJOR_TAG: the tagged item follows
        }
    }

    fn skip_items(&mut self, count: u64, depth: usize) -> Result<(), StoreError> {
        // each item takes at least one byte: a count beyond the input is simply truncated
        if count > self.rest.len() as u64 {
            return Err(malformed("truncated"));
        }
        for _ in 0..count {
            self.skip(depth + 1)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let cid: Cid = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
            .parse()
            .unwrap();
        let bytes = encode_header(&[cid]);
        let header = decode_header(&bytes).unwrap();
        assert_eq!(header.roots, vec![cid]);
        assert_eq!(header.version, 1);
    }

    #[test]
    fn refuses_car_v2_pragma() {
        // CARv2 pragma payload: {"version": 2}
        let pragma = [0xa1, 0x67, b'v', b'e', b'r', b's', b'i', b'o', b'n', 0x02];
        assert!(matches!(
            decode_header(&pragma),
            Err(StoreError::Malformed(m)) if m.contains("version 2")
        ));
    }

    #[test]
    fn skips_unknown_keys() {
        let cid: Cid = "QmWmRj3dFDZdb6ABvbmKhEL6TmPbAfBZ1t5BxsEyJrcZhE"
            .parse()
            .unwrap();
        let mut bytes = encode_header(&[cid]);
        bytes[0] = 0xa3; // three entries
        bytes.extend_from_slice(&[0x61, b'x', 0x82, 0xf5, 0xa1, 0x61, b'y', 0x20]);
        assert_eq!(decode_header(&bytes).unwrap().roots, vec![cid]);
    }
}

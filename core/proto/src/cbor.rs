//! A small deterministic CBOR (RFC 8949) encoder and a strict decoder.
//!
//! Only what the protocol uses: unsigned and negative integers, byte and text strings, arrays,
//! maps, tags and the simple values `false`, `true`, `null`. The encoder always produces the core
//! deterministic encoding (§4.2.1: shortest-form arguments, definite lengths); callers write map
//! keys in ascending order. The decoder rejects indefinite lengths, non-shortest arguments,
//! floats, and lengths that exceed the remaining input, so it never allocates more than the input
//! size and never panics.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Nesting limit for arrays, maps and tags: protocol structures are shallow.
const MAX_DEPTH: usize = 16;

/// Why a byte string is not a valid protocol encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended in the middle of an item.
    Truncated,
    /// Bytes are left over after the top-level item.
    TrailingBytes,
    /// An item that CBOR allows but the protocol does not (floats, indefinite lengths, …).
    Unsupported,
    /// An argument is not in its shortest form, or map keys are not in canonical order.
    NotCanonical,
    /// The item has the wrong type or shape for this position.
    Unexpected(&'static str),
    /// A text string is not UTF-8.
    InvalidUtf8,
    /// Nesting deeper than the protocol ever uses.
    TooDeep,
    /// A field is missing, repeated, out of range or unknown.
    InvalidField(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("input ends in the middle of an item"),
            DecodeError::TrailingBytes => f.write_str("trailing bytes after the item"),
            DecodeError::Unsupported => f.write_str("unsupported CBOR item"),
            DecodeError::NotCanonical => f.write_str("not in deterministic CBOR encoding"),
            DecodeError::Unexpected(what) => write!(f, "expected {what}"),
            DecodeError::InvalidUtf8 => f.write_str("text is not UTF-8"),
            DecodeError::TooDeep => f.write_str("nesting too deep"),
            DecodeError::InvalidField(name) => write!(f, "invalid field `{name}`"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DecodeError {}

/// Appends deterministic CBOR to a byte vector.
#[derive(Debug, Default)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes written so far.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn head(&mut self, major: u8, arg: u64) -> &mut Self {
        let m = major << 5;
        if arg < 24 {
            self.buf.push(m | arg as u8);
        } else if arg <= u8::MAX as u64 {
            self.buf.extend_from_slice(&[m | 24, arg as u8]);
        } else if arg <= u16::MAX as u64 {
            self.buf.push(m | 25);
            self.buf.extend_from_slice(&(arg as u16).to_be_bytes());
        } else if arg <= u32::MAX as u64 {
            self.buf.push(m | 26);
            self.buf.extend_from_slice(&(arg as u32).to_be_bytes());
        } else {
            self.buf.push(m | 27);
            self.buf.extend_from_slice(&arg.to_be_bytes());
        }
        self
    }

    /// An unsigned integer.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.head(0, v)
    }

    /// A signed integer.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        if v >= 0 {
            self.head(0, v as u64)
        } else {
            self.head(1, !(v as u64))
        }
    }

    /// A byte string.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.head(2, v.len() as u64);
        self.buf.extend_from_slice(v);
        self
    }

    /// A text string.
    pub fn str(&mut self, v: &str) -> &mut Self {
        self.head(3, v.len() as u64);
        self.buf.extend_from_slice(v.as_bytes());
        self
    }

    /// The head of an array of `len` items; the items follow.
    pub fn array(&mut self, len: usize) -> &mut Self {
        self.head(4, len as u64)
    }

    /// The head of a map of `len` pairs; keys and values follow, keys in ascending order.
    pub fn map(&mut self, len: usize) -> &mut Self {
        self.head(5, len as u64)
    }

    /// A tag; the tagged item follows.
    pub fn tag(&mut self, tag: u64) -> &mut Self {
        self.head(6, tag)
    }

    /// `true` or `false`.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.buf.push(if v { 0xf5 } else { 0xf4 });
        self
    }

    /// Already-encoded CBOR, copied verbatim.
    pub fn raw(&mut self, encoded: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(encoded);
        self
    }
}

/// Reads CBOR items from a byte slice, strictly.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    depth: usize,
}

/// A map key: the protocol only uses integer keys.
pub type Key = i64;

impl<'a> Decoder<'a> {
    /// A decoder over `input`.
    pub fn new(input: &'a [u8]) -> Self {
        Decoder {
            input,
            pos: 0,
            depth: 0,
        }
    }

    /// Fails unless every byte has been read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.pos == self.input.len() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }

    /// The current position in the input.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self.input.get(self.pos).ok_or(DecodeError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], DecodeError> {
        let remaining = (self.input.len() - self.pos) as u64;
        if n > remaining {
            return Err(DecodeError::Truncated);
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.input[start..self.pos])
    }

    fn peek_major(&self) -> Result<u8, DecodeError> {
        self.input
            .get(self.pos)
            .map(|b| b >> 5)
            .ok_or(DecodeError::Truncated)
    }

    /// Reads a head, returning (major type, argument). Rejects non-shortest forms.
    fn head(&mut self) -> Result<(u8, u64), DecodeError> {
        let initial = self.byte()?;
        let major = initial >> 5;
        let info = initial & 0x1f;
        if major == 7 && info >= 24 {
            // Floats and simple values beyond false/true/null, before any shortest-form check.
            return Err(DecodeError::Unsupported);
        }
        let arg = match info {
            0..=23 => return Ok((major, info as u64)),
            24 => {
                let v = self.byte()? as u64;
                if v < 24 {
                    return Err(DecodeError::NotCanonical);
                }
                v
            }
            25 => {
                let b = self.take(2)?;
                let v = u16::from_be_bytes([b[0], b[1]]) as u64;
                if v <= u8::MAX as u64 {
                    return Err(DecodeError::NotCanonical);
                }
                v
            }
            26 => {
                let b = self.take(4)?;
                let v = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64;
                if v <= u16::MAX as u64 {
                    return Err(DecodeError::NotCanonical);
                }
                v
            }
            27 => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                let v = u64::from_be_bytes(a);
                if v <= u32::MAX as u64 {
                    return Err(DecodeError::NotCanonical);
                }
                v
            }
            _ => return Err(DecodeError::Unsupported),
        };
        Ok((major, arg))
    }

    /// An unsigned integer.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        match self.head()? {
            (0, v) => Ok(v),
            _ => Err(DecodeError::Unexpected("unsigned integer")),
        }
    }

    /// A signed integer that fits `i64`.
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        match self.head()? {
            (0, v) if v <= i64::MAX as u64 => Ok(v as i64),
            (1, v) if v <= i64::MAX as u64 => Ok(!(v as i64)),
            _ => Err(DecodeError::Unexpected("integer")),
        }
    }

    /// A byte string, borrowed from the input.
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        match self.head()? {
            (2, len) => self.take(len),
            _ => Err(DecodeError::Unexpected("byte string")),
        }
    }

    /// A byte string of exactly `N` bytes.
    pub fn bytes_n<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let b = self.bytes()?;
        let mut out = [0u8; N];
        if b.len() != N {
            return Err(DecodeError::Unexpected("byte string of fixed length"));
        }
        out.copy_from_slice(b);
        Ok(out)
    }

    /// A text string, borrowed from the input.
    pub fn str(&mut self) -> Result<&'a str, DecodeError> {
        match self.head()? {
            (3, len) => core::str::from_utf8(self.take(len)?).map_err(|_| DecodeError::InvalidUtf8),
            _ => Err(DecodeError::Unexpected("text string")),
        }
    }

    /// A text string, copied.
    pub fn string(&mut self) -> Result<String, DecodeError> {
        self.str().map(String::from)
    }

    /// `true` or `false`.
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.byte()? {
            0xf4 => Ok(false),
            0xf5 => Ok(true),
            _ => Err(DecodeError::Unexpected("boolean")),
        }
    }

    fn enter(&mut self) -> Result<(), DecodeError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        Ok(())
    }

    /// The length of an array; call [`Decoder::leave`] after its items.
    pub fn array(&mut self) -> Result<usize, DecodeError> {
        match self.head()? {
            // Every item takes at least one byte: a longer claim is a lie.
            (4, len) if len <= (self.input.len() - self.pos) as u64 => {
                self.enter()?;
                Ok(len as usize)
            }
            (4, _) => Err(DecodeError::Truncated),
            _ => Err(DecodeError::Unexpected("array")),
        }
    }

    /// An array that must have exactly `len` items; call [`Decoder::leave`] after them.
    pub fn array_of(&mut self, len: usize, what: &'static str) -> Result<(), DecodeError> {
        if self.array()? != len {
            return Err(DecodeError::Unexpected(what));
        }
        Ok(())
    }

    /// The number of pairs of a map; call [`Decoder::leave`] after them.
    pub fn map(&mut self) -> Result<usize, DecodeError> {
        match self.head()? {
            (5, len) if len.saturating_mul(2) <= (self.input.len() - self.pos) as u64 => {
                self.enter()?;
                Ok(len as usize)
            }
            (5, _) => Err(DecodeError::Truncated),
            _ => Err(DecodeError::Unexpected("map")),
        }
    }

    /// Closes an array or map opened by [`Decoder::array`] or [`Decoder::map`].
    pub fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// A tag number; the tagged item follows.
    pub fn tag(&mut self) -> Result<u64, DecodeError> {
        match self.head()? {
            (6, t) => Ok(t),
            _ => Err(DecodeError::Unexpected("tag")),
        }
    }

    /// Whether the next item is a tag.
    pub fn at_tag(&self) -> bool {
        matches!(self.peek_major(), Ok(6))
    }

    /// Skips one complete item of any supported type, returning its encoded bytes.
    pub fn skip(&mut self) -> Result<&'a [u8], DecodeError> {
        let start = self.pos;
        self.skip_inner()?;
        Ok(&self.input[start..self.pos])
    }

    fn skip_inner(&mut self) -> Result<(), DecodeError> {
        if let Some(&b) = self.input.get(self.pos) {
            if b == 0xf4 || b == 0xf5 || b == 0xf6 {
                self.pos += 1;
                return Ok(());
            }
        }
        let (major, arg) = self.head()?;
        match major {
            0 | 1 => Ok(()),
            2 => self.take(arg).map(|_| ()),
            3 => {
                let s = self.take(arg)?;
                core::str::from_utf8(s).map_err(|_| DecodeError::InvalidUtf8)?;
                Ok(())
            }
            4 | 5 => {
                self.enter()?;
                let items = if major == 5 {
                    arg.saturating_mul(2)
                } else {
                    arg
                };
                for _ in 0..items {
                    self.skip_inner()?;
                }
                self.leave();
                Ok(())
            }
            6 => {
                self.enter()?;
                self.skip_inner()?;
                self.leave();
                Ok(())
            }
            _ => Err(DecodeError::Unsupported),
        }
    }
}

/// Reads the integer keys of a map in strictly ascending order, so that every protocol map has
/// exactly one valid encoding.
#[derive(Debug)]
pub struct MapKeys {
    remaining: usize,
    last: Option<Key>,
}

impl MapKeys {
    /// Opens a map at the decoder's position.
    pub fn open(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let remaining = d.map()?;
        Ok(MapKeys {
            remaining,
            last: None,
        })
    }

    /// The next key, or `None` (and the map closed) when all pairs are read.
    pub fn next(&mut self, d: &mut Decoder<'_>) -> Result<Option<Key>, DecodeError> {
        if self.remaining == 0 {
            d.leave();
            return Ok(None);
        }
        self.remaining -= 1;
        let key = d.i64()?;
        // Deterministic order of integer keys: 0, 1, 2, …, then -1, -2, … (bytewise order).
        let rank = |k: Key| {
            if k >= 0 {
                (0u8, k as u64)
            } else {
                (1, (!k) as u64)
            }
        };
        if let Some(last) = self.last {
            if rank(key) <= rank(last) {
                return Err(DecodeError::NotCanonical);
            }
        }
        self.last = Some(key);
        Ok(Some(key))
    }

    /// Reads the next key, which must be `want` (for maps whose fields are all required).
    pub fn expect(
        &mut self,
        d: &mut Decoder<'_>,
        want: Key,
        name: &'static str,
    ) -> Result<(), DecodeError> {
        match self.next(d)? {
            Some(key) if key == want => Ok(()),
            _ => Err(DecodeError::InvalidField(name)),
        }
    }

    /// Closes the map, which must have no pairs left.
    pub fn end(mut self, d: &mut Decoder<'_>) -> Result<(), DecodeError> {
        match self.next(d)? {
            None => Ok(()),
            Some(_) => Err(DecodeError::InvalidField("unknown field")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_form_integers() {
        let mut e = Encoder::new();
        e.u64(23)
            .u64(24)
            .u64(255)
            .u64(256)
            .u64(65536)
            .u64(1 << 32)
            .i64(-1)
            .i64(-25);
        assert_eq!(
            e.into_bytes(),
            [
                0x17, 0x18, 24, 0x18, 255, 0x19, 1, 0, 0x1a, 0, 1, 0, 0, 0x1b, 0, 0, 0, 1, 0, 0, 0,
                0, 0x20, 0x38, 24
            ]
        );
    }

    #[test]
    fn rejects_non_shortest_and_indefinite() {
        assert_eq!(
            Decoder::new(&[0x18, 5]).u64(),
            Err(DecodeError::NotCanonical)
        );
        assert_eq!(Decoder::new(&[0x5f]).bytes(), Err(DecodeError::Unsupported));
        assert_eq!(
            Decoder::new(&[0xfb, 0, 0, 0, 0, 0, 0, 0, 0]).skip(),
            Err(DecodeError::Unsupported)
        );
    }

    #[test]
    fn huge_lengths_do_not_allocate() {
        assert_eq!(
            Decoder::new(&[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).array(),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            Decoder::new(&[0x5a, 0xff, 0xff, 0xff, 0xff]).bytes(),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn map_keys_must_ascend() {
        let mut e = Encoder::new();
        e.map(2).u64(2).u64(0).u64(1).u64(0);
        let bytes = e.into_bytes();
        let mut d = Decoder::new(&bytes);
        let mut keys = MapKeys::open(&mut d).unwrap();
        assert_eq!(keys.next(&mut d), Ok(Some(2)));
        d.u64().unwrap();
        assert_eq!(keys.next(&mut d), Err(DecodeError::NotCanonical));
    }

    #[test]
    fn nesting_is_bounded() {
        let bytes = [0x81u8; 64];
        assert_eq!(Decoder::new(&bytes).skip(), Err(DecodeError::TooDeep));
    }
}

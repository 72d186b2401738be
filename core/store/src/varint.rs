//! Unsigned LEB128 varints as multiformats uses them (CAR section lengths).

use std::io::{self, Read, Write};

use crate::StoreError;

/// multiformats caps varints at 9 bytes (63 bits).
const MAX_LEN: usize = 9;

/// Reads one minimal varint. `Ok(None)` means clean end of input before its first byte.
pub(crate) fn read_uvarint(r: &mut impl Read) -> Result<Option<u64>, StoreError> {
    let mut value = 0u64;
    for i in 0..MAX_LEN {
        let mut byte = [0u8; 1];
        match r.read_exact(&mut byte) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return if i == 0 {
                    Ok(None)
                } else {
                    Err(StoreError::Malformed("truncated varint".into()))
                };
            }
            Err(e) => return Err(e.into()),
        }
        let b = byte[0];
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if b == 0 && i > 0 {
                return Err(StoreError::Malformed("non-minimal varint".into()));
            }
            return Ok(Some(value));
        }
    }
    Err(StoreError::Malformed("varint longer than 9 bytes".into()))
}

/// Writes `value` as a minimal varint.
pub(crate) fn write_uvarint(w: &mut impl Write, mut value: u64) -> io::Result<()> {
    let mut buf = [0u8; 10];
    let mut n = 0;
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            buf[n] = byte;
            n += 1;
            break;
        }
        buf[n] = byte | 0x80;
        n += 1;
    }
    w.write_all(&buf[..n])
}

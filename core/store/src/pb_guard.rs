//! A strict, panic-free check of a dag-pb block's protobuf wire structure, run before the block
//! reaches `quick-protobuf`.
//!
//! `quick-protobuf` 0.8 does not keep reads of a nested message inside that message's declared
//! length; a crafted (but correctly hashed) block can make it panic on an integer underflow. A
//! hostile publisher can sign such a block, so every dag-pb block is first checked here: each
//! tag, varint and fixed field must lie inside its enclosing message, recursively for the nested
//! messages the decoders descend into.

use crate::StoreError;

/// How the `Data` field of a PBNode is going to be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Data {
    /// As a UnixFS message (file walking).
    UnixFs,
    /// Not at all (link extraction).
    Opaque,
}

#[derive(Debug, Clone, Copy)]
enum Message {
    PbNode(Data),
    PbLink,
    UnixFs,
    UnixTime,
}

impl Message {
    /// The message a length-delimited field (by full tag) is decoded as, if any.
    fn nested(self, tag: u64) -> Option<Message> {
        match (self, tag) {
            (Message::PbNode(_), 18) => Some(Message::PbLink),
            (Message::PbNode(Data::UnixFs), 10) => Some(Message::UnixFs),
            (Message::UnixFs, 66) => Some(Message::UnixTime),
            _ => None,
        }
    }
}

/// Nesting never goes deeper than PBNode → Data → mtime.
const MAX_DEPTH: usize = 4;

/// Checks `block` as a dag-pb PBNode whose `Data` will be decoded as `data`.
pub(crate) fn check_dag_pb(block: &[u8], data: Data) -> Result<(), StoreError> {
    if check(block, Message::PbNode(data), 0) {
        Ok(())
    } else {
        Err(StoreError::Malformed(
            "invalid dag-pb protobuf framing".into(),
        ))
    }
}

fn check(mut b: &[u8], message: Message, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    while !b.is_empty() {
        let Some(tag) = varint(&mut b) else {
            return false;
        };
        // quick-protobuf reads tags as u32; anything wider would be interpreted differently
        if tag > u64::from(u32::MAX) || tag >> 3 == 0 {
            return false;
        }
        let ok = match tag & 7 {
            0 => varint(&mut b).is_some(),
            1 => skip(&mut b, 8).is_some(),
            5 => skip(&mut b, 4).is_some(),
            2 => match varint(&mut b).and_then(|len| skip(&mut b, len)) {
                Some(field) => match message.nested(tag) {
                    Some(inner) => check(field, inner, depth + 1),
                    None => true,
                },
                None => false,
            },
            _ => false, // groups (3, 4) and invalid wire types
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Reads a varint of at most 10 bytes that ends inside `b`.
fn varint(b: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        value |= u64::from(byte & 0x7f).checked_shl(7 * i).unwrap_or(0);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Takes `n` bytes from the front of `b`, if there are that many.
fn skip<'a>(b: &mut &'a [u8], n: u64) -> Option<&'a [u8]> {
    let n = usize::try_from(n).ok().filter(|&n| n <= b.len())?;
    let (head, tail) = b.split_at(n);
    *b = tail;
    Some(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_real_file_root_and_refuses_overruns() {
        // PBNode { Data: UnixFS { Type: File, filesize: 3, blocksizes: [3] } }
        let ok = [0x0a, 0x06, 0x08, 0x02, 0x18, 0x03, 0x20, 0x03];
        assert!(check_dag_pb(&ok, Data::UnixFs).is_ok());
        // the UnixFS varint runs past the end of the Data field
        let overrun = [0x0a, 0x02, 0x08, 0x82, 0x18, 0x03];
        assert!(check_dag_pb(&overrun, Data::UnixFs).is_err());
        // ... which matters only when Data is decoded
        assert!(check_dag_pb(&overrun, Data::Opaque).is_ok());
        // a length beyond the block
        assert!(check_dag_pb(&[0x12, 0x7f, 0x00], Data::Opaque).is_err());
        // a group wire type
        assert!(check_dag_pb(&[0x0b], Data::Opaque).is_err());
    }
}

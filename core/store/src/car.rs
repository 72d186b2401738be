//! CAR v1 files (<https://ipld.io/specs/transport/car/carv1/>): moving a DAG between stores as
//! one self-verifying file, e.g. onto an air-gapped gateway.
//!
//! ```text
//! varint(len) | DAG-CBOR {"roots": [CID], "version": 1}
//! varint(len) | CID | block bytes        (repeated)
//! ```

use std::collections::HashSet;
use std::io::{self, BufReader, BufWriter, Read, Write};

use cid::Cid;

use crate::block::{self, MAX_BLOCK_SIZE};
use crate::dagcbor::{decode_header, encode_header};
use crate::pb_guard::{check_dag_pb, Data};
use crate::varint::{read_uvarint, write_uvarint};
use crate::StoreError;

/// Largest header accepted.
const MAX_HEADER_SIZE: u64 = 1024 * 1024;
/// Largest section accepted: one block plus its CID.
const MAX_SECTION_SIZE: u64 = MAX_BLOCK_SIZE as u64 + 128;

/// Reads a CAR v1 stream, verifying every block against its CID.
pub(crate) struct CarReader<R> {
    r: R,
    buf: Vec<u8>,
}

impl<R: Read> CarReader<R> {
    /// Reads the header, returning the reader positioned at the first block and the roots.
    pub(crate) fn new(mut r: R) -> Result<(Self, Vec<Cid>), StoreError> {
        let len =
            read_uvarint(&mut r)?.ok_or_else(|| StoreError::Malformed("empty CAR file".into()))?;
        if len == 0 || len > MAX_HEADER_SIZE {
            return Err(StoreError::Malformed(format!(
                "CAR header length {len} out of range"
            )));
        }
        let mut buf = Vec::new();
        read_section(&mut r, len, &mut buf)?;
        let header = decode_header(&buf)?;
        Ok((CarReader { r, buf }, header.roots))
    }

    /// The next block, verified, or `None` at the end of the file.
    pub(crate) fn next_block(&mut self) -> Result<Option<(Cid, &[u8])>, StoreError> {
        let Some(len) = read_uvarint(&mut self.r)? else {
            return Ok(None);
        };
        if len == 0 || len > MAX_SECTION_SIZE {
            return Err(StoreError::Malformed(format!(
                "CAR section length {len} out of range"
            )));
        }
        read_section(&mut self.r, len, &mut self.buf)?;
        let mut rest: &[u8] = &self.buf;
        let cid = Cid::read_bytes(&mut rest)
            .map_err(|e| StoreError::Malformed(format!("CAR section CID: {e}")))?;
        block::verify(&cid, rest)?;
        Ok(Some((cid, rest)))
    }
}

/// Reads exactly `len` (already bounded) bytes into `buf`; a short read is a truncated CAR.
fn read_section(r: &mut impl Read, len: u64, buf: &mut Vec<u8>) -> Result<(), StoreError> {
    buf.clear();
    r.take(len).read_to_end(buf)?;
    if (buf.len() as u64) < len {
        return Err(StoreError::Malformed("truncated CAR file".into()));
    }
    Ok(())
}

/// Writes a CAR v1 stream.
pub(crate) struct CarWriter<W> {
    w: W,
}

impl<W: Write> CarWriter<W> {
    /// Writes the header naming `roots`.
    pub(crate) fn new(mut w: W, roots: &[Cid]) -> io::Result<Self> {
        let header = encode_header(roots);
        write_uvarint(&mut w, header.len() as u64)?;
        w.write_all(&header)?;
        Ok(CarWriter { w })
    }

    /// Appends one block.
    pub(crate) fn write_block(&mut self, cid: &Cid, bytes: &[u8]) -> io::Result<()> {
        let cid_bytes = cid.to_bytes();
        write_uvarint(&mut self.w, (cid_bytes.len() + bytes.len()) as u64)?;
        self.w.write_all(&cid_bytes)?;
        self.w.write_all(bytes)
    }

    /// Flushes and returns the underlying writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

/// The CIDs a block links to, in link order (none for raw blocks).
pub(crate) fn links(cid: &Cid, bytes: &[u8]) -> Result<Vec<Cid>, StoreError> {
    if cid.codec() != block::DAG_PB {
        return Ok(Vec::new());
    }
    check_dag_pb(bytes, Data::Opaque)?;
    let node = ipld_dagpb::PbNode::from_bytes(bytes.to_vec().into())
        .map_err(|e| StoreError::Malformed(format!("{cid}: invalid dag-pb: {e}")))?;
    Ok(node.links.into_iter().map(|l| l.cid).collect())
}

#[cfg(feature = "embedded")]
mod embedded {
    use super::*;
    use crate::block::parse_cid;
    use crate::EmbeddedStore;

    /// Writes the DAG under `root` from `store` to `w` as a CAR v1 file, blocks in depth-first
    /// (DAG) order, each block once. Every block is verified as it is read, so a tampered store
    /// fails with [`StoreError::BlockMismatch`] instead of exporting bad data.
    ///
    /// Blocking IO; call it from `spawn_blocking` in async code.
    pub fn export_car(store: &EmbeddedStore, root: &str, w: impl Write) -> Result<(), StoreError> {
        let root = parse_cid(root)?;
        let mut car = CarWriter::new(BufWriter::new(w), &[root])?;
        let mut seen = HashSet::new();
        let mut stack = vec![root];
        while let Some(cid) = stack.pop() {
            if !seen.insert(cid) {
                continue;
            }
            let bytes = store.blocks().read(&cid)?;
            car.write_block(&cid, &bytes)?;
            stack.extend(links(&cid, &bytes)?.into_iter().rev());
        }
        car.finish()?;
        Ok(())
    }

    /// Reads a CAR v1 file into `store`, verifying every block against its CID before it is
    /// stored, and returns the roots the header names.
    ///
    /// Sizes are bounded (header ≤ 1 MiB, block ≤ 2 MiB) so hostile input cannot make it
    /// allocate more. On error, blocks already read stay in the store (each was verified).
    /// Blocking IO; call it from `spawn_blocking` in async code.
    pub fn import_car(store: &EmbeddedStore, r: impl Read) -> Result<Vec<String>, StoreError> {
        let (mut car, roots) = CarReader::new(BufReader::new(r))?;
        let mut batch = store.blocks().batch();
        while let Some((cid, bytes)) = car.next_block()? {
            batch.put(&cid, bytes)?;
        }
        batch.commit()?;
        Ok(roots.iter().map(Cid::to_string).collect())
    }
}

#[cfg(feature = "embedded")]
pub use embedded::{export_car, import_car};

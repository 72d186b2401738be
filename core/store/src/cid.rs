//! Kubo-compatible UnixFS CIDs: chunking a byte stream into a balanced file DAG.
//!
//! The DAG itself is built by `rust-unixfs`, which reproduces Kubo's importer for both
//! profiles; this module only feeds it whole chunks (so it never copies into its own buffer)
//! and hands every finished block to a sink.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use cid::{Cid, Version};
use rust_unixfs::file::adder::{BalancedCollector, Chunker, FileAdder};

use crate::{Profile, StoreError};

/// The CID Kubo's `ipfs add --only-hash -Q` prints for the bytes of `reader` under `profile`.
///
/// Streams: memory use is one chunk plus one tree path, whatever the input length.
///
/// ```
/// use fwledger_store::{cid_of_reader, Profile};
/// let cid = cid_of_reader(&b"hello world"[..], Profile::UnixfsV0_2015)?;
/// assert_eq!(cid, "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD");
/// # Ok::<(), fwledger_store::StoreError>(())
/// ```
pub fn cid_of_reader(reader: impl Read, profile: Profile) -> Result<String, StoreError> {
    let imported = import(reader, profile, |_, _| Ok(()), |_| {})?;
    Ok(imported.root.to_string())
}

/// The CID of the file at `path`; see [`cid_of_reader`].
pub fn cid_of_file(path: &Path, profile: Profile) -> Result<String, StoreError> {
    cid_of_reader(File::open(path)?, profile)
}

/// What [`import`] produced.
pub(crate) struct Imported {
    /// CID of the root block.
    pub(crate) root: Cid,
    /// Number of file bytes read.
    pub(crate) size: u64,
}

/// A UnixFS file importer configured exactly like Kubo under `profile`.
fn adder_for(profile: Profile) -> FileAdder {
    let version = match profile.cid_version() {
        0 => Version::V0,
        _ => Version::V1,
    };
    FileAdder::builder()
        .with_chunker(Chunker::Size(profile.chunk_size()))
        .with_collector(BalancedCollector::with_branching_factor(
            profile.max_links(),
        ))
        .with_cid_version(version)
        .with_raw_leaves(profile.raw_leaves())
        .build()
}

/// Chunks `reader` into a UnixFS file DAG, passing every block (leaves first, root last) to
/// `on_block` and the running byte count to `on_progress` after each chunk.
pub(crate) fn import(
    mut reader: impl Read,
    profile: Profile,
    mut on_block: impl FnMut(Cid, Vec<u8>) -> Result<(), StoreError>,
    mut on_progress: impl FnMut(u64),
) -> Result<Imported, StoreError> {
    let chunk = profile.chunk_size();
    let mut adder = adder_for(profile);
    let mut buf = vec![0u8; chunk];
    let mut size = 0u64;
    let mut root = None;

    loop {
        let n = read_full(&mut reader, &mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        let mut pending = &buf[..n];
        while !pending.is_empty() {
            let (blocks, consumed) = adder.push(pending);
            for (cid, block) in blocks {
                root = Some(cid);
                on_block(cid, block)?;
            }
            pending = pending.get(consumed..).unwrap_or_default();
        }
        on_progress(size);
        if n < chunk {
            break; // read_full only comes back short at end of input
        }
    }
    for (cid, block) in adder.finish() {
        root = Some(cid);
        on_block(cid, block)?;
    }
    let root = root.ok_or_else(|| StoreError::Malformed("importer produced no root".into()))?;
    Ok(Imported { root, size })
}

/// Fills `buf` from `reader`, returning fewer bytes than `buf.len()` only at end of input.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

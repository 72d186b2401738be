//! Block identity: parsing CIDs and checking that bytes are the block a CID names.

use cid::Cid;
use sha2::{Digest, Sha256};

use crate::StoreError;

/// Multicodec of a raw block.
pub(crate) const RAW: u64 = 0x55;
/// Multicodec of a dag-pb block.
pub(crate) const DAG_PB: u64 = 0x70;
/// Multihash code of sha2-256, the only hash the profiles use.
const SHA2_256: u64 = 0x12;

/// Largest block this crate reads or writes. Profiles produce at most 1 MiB of data plus
/// framing; anything much larger is refused before it is read into memory.
pub(crate) const MAX_BLOCK_SIZE: usize = 2 * 1024 * 1024;

/// Parses a CID given by a caller; only sha2-256 CIDs can be verified, so others are refused.
pub(crate) fn parse_cid(s: &str) -> Result<Cid, StoreError> {
    let cid = Cid::try_from(s).map_err(|e| StoreError::InvalidCid(format!("{s:?}: {e}")))?;
    if !is_sha2_256(&cid) {
        return Err(StoreError::InvalidCid(format!(
            "{s:?}: only sha2-256 CIDs are supported"
        )));
    }
    Ok(cid)
}

fn is_sha2_256(cid: &Cid) -> bool {
    cid.hash().code() == SHA2_256 && cid.hash().size() == 32
}

/// Checks that `bytes` hash to `cid`: the guard every block passes before any of it is used.
pub(crate) fn verify(cid: &Cid, bytes: &[u8]) -> Result<(), StoreError> {
    if !is_sha2_256(cid) {
        return Err(StoreError::Malformed(format!(
            "block {cid} uses a hash other than sha2-256"
        )));
    }
    if bytes.len() > MAX_BLOCK_SIZE || Sha256::digest(bytes).as_slice() != cid.hash().digest() {
        return Err(StoreError::BlockMismatch {
            cid: cid.to_string(),
        });
    }
    Ok(())
}

/// The name a block is stored under: its CIDv1 in lower-case base32, so that the CIDv0 and the
/// CIDv1 of one dag-pb block share one file.
pub(crate) fn block_key(cid: &Cid) -> String {
    match cid.into_v1() {
        Ok(v1) => v1.to_string(),
        // only a v0 CID with a codec other than dag-pb fails, which cannot be constructed
        Err(_) => cid.to_string(),
    }
}

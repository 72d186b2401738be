//! Channel messages as a file, for carrying a channel across an air gap.
//!
//! Messages are self-authenticating, so the file needs no integrity protection of its own:
//! whoever reads the imported channel verifies it. The format, all integers big-endian:
//!
//! ```text
//! magic      8 bytes   "FWLEDGR1"
//! channel   32 bytes   the channel id
//! then, for each message, in consecutive positions, until the end of the file:
//!   seq      u64       position in the channel
//!   len      u32       length of the message, at most MAX_MESSAGE_SIZE
//!   bytes    len bytes the message
//! ```
//!
//! A file ends exactly at a record boundary; anything else is truncated.

use std::io::{ErrorKind, Read, Write};

use crate::{ChannelId, Ledger, LedgerError, StoredMessage, MAX_MESSAGE_SIZE};

/// The first 8 bytes of every export file.
pub const EXPORT_MAGIC: [u8; 8] = *b"FWLEDGR1";

/// Messages read from the ledger per round trip while exporting.
const EXPORT_BATCH: usize = 64;

/// Bytes of a record header: seq (u64) and len (u32).
const RECORD_HEADER: usize = 12;

/// What [`import`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// The channel named in the file.
    pub channel: ChannelId,
    /// Messages that were new and are now in the ledger.
    pub appended: u64,
    /// Messages the ledger already held, byte for byte.
    pub already_present: u64,
}

/// Writes the messages of `channel` from position `from` up to the channel's end (as it was
/// when the export started) to `w` in the export format, and returns how many it wrote.
///
/// `w` is written synchronously; hand in a buffered writer for files.
pub async fn export<L, W>(
    ledger: &L,
    channel: &ChannelId,
    from: u64,
    mut w: W,
) -> Result<u64, LedgerError>
where
    L: Ledger + ?Sized,
    W: Write,
{
    let end = ledger.next_seq(channel).await?;
    w.write_all(&EXPORT_MAGIC)?;
    w.write_all(channel)?;
    let mut next = from;
    while next < end {
        let want = usize::try_from(end - next).map_or(EXPORT_BATCH, |n| n.min(EXPORT_BATCH));
        let batch = ledger.read(channel, next, want).await?;
        if batch.is_empty() {
            return Err(LedgerError::Corrupt(format!(
                "channel ends at {next}, before the {end} messages it reported"
            )));
        }
        for StoredMessage { seq, bytes } in batch {
            if seq != next {
                return Err(LedgerError::Corrupt(format!(
                    "ledger returned position {seq} when asked for {next}"
                )));
            }
            let len = u32::try_from(bytes.len())
                .ok()
                .filter(|_| bytes.len() <= MAX_MESSAGE_SIZE)
                .ok_or_else(|| {
                    LedgerError::Corrupt(format!(
                        "message at position {seq} is {} bytes, above the limit",
                        bytes.len()
                    ))
                })?;
            w.write_all(&seq.to_be_bytes())?;
            w.write_all(&len.to_be_bytes())?;
            w.write_all(&bytes)?;
            next += 1;
        }
    }
    w.flush()?;
    Ok(next.saturating_sub(from))
}

/// Reads an export file from `r` and appends its messages to the ledger.
///
/// The whole file is checked before anything is appended: a truncated or malformed file, a
/// message above [`MAX_MESSAGE_SIZE`], positions that are not consecutive, a file that starts
/// beyond the channel's end (a gap), or a message that differs from the one the ledger holds
/// at the same position (a fork) all fail with [`LedgerError::BadExport`] and append nothing.
/// Messages already present with identical bytes are skipped, so importing twice is harmless.
///
/// Memory use is bounded by the file's actual size (length fields are checked against the
/// limit before anything is allocated). `r` is read synchronously.
pub async fn import<L, R>(ledger: &L, r: R) -> Result<ImportReport, LedgerError>
where
    L: Ledger + ?Sized,
    R: Read,
{
    let file = ExportFile::parse(r)?;
    let channel = file.channel;
    let mut report = ImportReport {
        channel,
        appended: 0,
        already_present: 0,
    };
    let Some(first) = file.first else {
        return Ok(report);
    };
    let end = ledger.next_seq(&channel).await?;
    if first > end {
        return Err(LedgerError::BadExport(format!(
            "gap: the file starts at seq {first} but the channel ends at seq {end}"
        )));
    }

    // Positions the ledger already has must hold the very same messages.
    let overlap =
        usize::try_from(end - first).map_or(file.messages.len(), |n| n.min(file.messages.len()));
    let mut checked = 0;
    while checked < overlap {
        let from = first + checked as u64;
        let stored = ledger
            .read(&channel, from, (overlap - checked).min(EXPORT_BATCH))
            .await?;
        if stored.is_empty() {
            return Err(LedgerError::Corrupt(format!(
                "channel ends at {from}, before the {end} messages it reported"
            )));
        }
        for message in stored.into_iter().take(overlap - checked) {
            let seq = first + checked as u64;
            if message.seq != seq {
                return Err(LedgerError::Corrupt(format!(
                    "ledger returned position {} when asked for {seq}",
                    message.seq
                )));
            }
            if message.bytes != file.messages[checked] {
                return Err(fork(seq));
            }
            checked += 1;
        }
    }
    report.already_present = checked as u64;

    for (i, bytes) in file.messages.iter().enumerate().skip(overlap) {
        let seq = first + i as u64;
        match ledger.append(&channel, seq, bytes).await {
            Ok(()) => report.appended += 1,
            // Someone else appended meanwhile (another import of the same file, or the
            // vendor): fine if it is the same message.
            Err(LedgerError::Conflict { expected, .. }) if expected > seq => {
                let stored = ledger.read(&channel, seq, 1).await?;
                match stored.first() {
                    Some(m) if m.seq == seq && m.bytes == *bytes => report.already_present += 1,
                    _ => return Err(fork(seq)),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(report)
}

fn fork(seq: u64) -> LedgerError {
    LedgerError::BadExport(format!(
        "fork at seq {seq}: the file's message differs from the one in the ledger"
    ))
}

/// An export file, parsed and checked.
struct ExportFile {
    channel: ChannelId,
    /// Position of `messages[0]`, if there are any.
    first: Option<u64>,
    messages: Vec<Vec<u8>>,
}

impl ExportFile {
    fn parse(mut r: impl Read) -> Result<Self, LedgerError> {
        let mut magic = [0u8; 8];
        if read_full(&mut r, &mut magic)? != magic.len() || magic != EXPORT_MAGIC {
            return Err(LedgerError::BadExport(
                "not a fwledger channel export (bad magic)".into(),
            ));
        }
        let mut channel = [0u8; 32];
        if read_full(&mut r, &mut channel)? != channel.len() {
            return Err(LedgerError::BadExport(
                "truncated: the file ends inside its channel id".into(),
            ));
        }

        let mut first: Option<u64> = None;
        let mut messages: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut header = [0u8; RECORD_HEADER];
            match read_full(&mut r, &mut header)? {
                0 => break,
                RECORD_HEADER => {}
                _ => {
                    return Err(LedgerError::BadExport(format!(
                        "truncated: the file ends inside the header of record {}",
                        messages.len()
                    )))
                }
            }
            let [s0, s1, s2, s3, s4, s5, s6, s7, l0, l1, l2, l3] = header;
            let seq = u64::from_be_bytes([s0, s1, s2, s3, s4, s5, s6, s7]);
            let len = u32::from_be_bytes([l0, l1, l2, l3]);

            let expected = match first {
                None => seq,
                Some(first) => first
                    .checked_add(messages.len() as u64)
                    .ok_or_else(|| LedgerError::BadExport("positions overflow".into()))?,
            };
            if seq != expected {
                return Err(LedgerError::BadExport(if seq > expected {
                    format!("gap in the file: seq {expected} is missing, next is {seq}")
                } else {
                    format!(
                        "records out of order: seq {seq} follows seq {}",
                        expected - 1
                    )
                }));
            }
            let len = usize::try_from(len)
                .ok()
                .filter(|&len| len <= MAX_MESSAGE_SIZE)
                .ok_or_else(|| {
                    LedgerError::BadExport(format!(
                        "message at seq {seq} claims {len} bytes, above the \
                         {MAX_MESSAGE_SIZE}-byte limit"
                    ))
                })?;
            // Grow with the data actually present, not with what the header claims.
            let mut bytes = Vec::with_capacity(len.min(64 * 1024));
            (&mut r).take(len as u64).read_to_end(&mut bytes)?;
            if bytes.len() != len {
                return Err(LedgerError::BadExport(format!(
                    "truncated: the file ends inside the message at seq {seq}"
                )));
            }
            first.get_or_insert(seq);
            messages.push(bytes);
        }
        Ok(Self {
            channel,
            first,
            messages,
        })
    }
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, LedgerError> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(filled)
}

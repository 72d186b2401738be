//! Export files: round trips, the exact byte format, and hostile files (forked, gapped,
//! truncated, oversized, garbage) that must fail with `BadExport`, append nothing, and never
//! panic.
#![cfg(feature = "sqlite")]

use std::path::Path;

use fwledger_ledger::{
    export, import, ImportReport, Ledger, LedgerError, SqliteLedger, EXPORT_MAGIC, MAX_MESSAGE_SIZE,
};
use proptest::prelude::*;

const CHANNEL: [u8; 32] = [0x5C; 32];

fn ledger_at(dir: &Path, name: &str) -> SqliteLedger {
    SqliteLedger::open(&dir.join(name)).expect("open ledger")
}

fn messages(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| match i {
            0 => Vec::new(),
            1 => vec![0xEE; MAX_MESSAGE_SIZE],
            _ => format!("message {i}").into_bytes(),
        })
        .collect()
}

async fn fill(ledger: &dyn Ledger, channel: &[u8; 32], msgs: &[Vec<u8>]) {
    let start = ledger.next_seq(channel).await.unwrap();
    for (i, m) in msgs.iter().enumerate() {
        ledger.append(channel, start + i as u64, m).await.unwrap();
    }
}

async fn exported(ledger: &dyn Ledger, from: u64) -> Vec<u8> {
    let mut file = Vec::new();
    export(ledger, &CHANNEL, from, &mut file).await.unwrap();
    file
}

/// Hand-built export file.
fn file_of(channel: &[u8; 32], records: &[(u64, &[u8])]) -> Vec<u8> {
    let mut file = EXPORT_MAGIC.to_vec();
    file.extend_from_slice(channel);
    for (seq, bytes) in records {
        file.extend_from_slice(&seq.to_be_bytes());
        file.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        file.extend_from_slice(bytes);
    }
    file
}

fn assert_bad_export(result: Result<ImportReport, LedgerError>, needle: &str) {
    match result {
        Err(LedgerError::BadExport(m)) => assert!(m.contains(needle), "{m:?} lacks {needle:?}"),
        other => panic!("expected BadExport({needle:?}), got {other:?}"),
    }
}

#[tokio::test]
async fn export_then_import_into_fresh_ledger_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let source = ledger_at(dir.path(), "source.sqlite");
    let msgs = messages(10);
    fill(&source, &CHANNEL, &msgs).await;

    let mut file = Vec::new();
    assert_eq!(export(&source, &CHANNEL, 0, &mut file).await.unwrap(), 10);

    let target = ledger_at(dir.path(), "target.sqlite");
    let report = import(&target, file.as_slice()).await.unwrap();
    assert_eq!(
        report,
        ImportReport {
            channel: CHANNEL,
            appended: 10,
            already_present: 0
        }
    );
    assert_eq!(
        target.read(&CHANNEL, 0, 100).await.unwrap(),
        source.read(&CHANNEL, 0, 100).await.unwrap()
    );

    // Importing the same file again changes nothing.
    let again = import(&target, file.as_slice()).await.unwrap();
    assert_eq!((again.appended, again.already_present), (0, 10));
    assert_eq!(target.next_seq(&CHANNEL).await.unwrap(), 10);
}

#[tokio::test]
async fn import_appends_only_what_is_new() {
    let dir = tempfile::tempdir().unwrap();
    let source = ledger_at(dir.path(), "source.sqlite");
    let msgs = messages(8);
    fill(&source, &CHANNEL, &msgs).await;
    let target = ledger_at(dir.path(), "target.sqlite");
    fill(&target, &CHANNEL, &msgs[..3]).await;

    // Whole channel: the first three are already there.
    let report = import(&target, exported(&source, 0).await.as_slice())
        .await
        .unwrap();
    assert_eq!((report.appended, report.already_present), (5, 3));

    // An incremental export from the middle onto a ledger that has everything before it.
    let later = ledger_at(dir.path(), "later.sqlite");
    fill(&later, &CHANNEL, &msgs[..5]).await;
    let report = import(&later, exported(&source, 5).await.as_slice())
        .await
        .unwrap();
    assert_eq!((report.appended, report.already_present), (3, 0));
    assert_eq!(
        later.read(&CHANNEL, 0, 100).await.unwrap(),
        source.read(&CHANNEL, 0, 100).await.unwrap()
    );
}

#[tokio::test]
async fn export_format_is_exactly_as_specified() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_at(dir.path(), "l.sqlite");
    let channel = [0x01; 32];
    fill(&ledger, &channel, &[b"a".to_vec(), b"bc".to_vec()]).await;
    let mut file = Vec::new();
    assert_eq!(export(&ledger, &channel, 0, &mut file).await.unwrap(), 2);
    let mut expected = b"FWLEDGR1".to_vec();
    expected.extend_from_slice(&[0x01; 32]);
    expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, b'a']);
    expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, b'b', b'c']);
    assert_eq!(file, expected);
    assert_eq!(file, file_of(&channel, &[(0, b"a"), (1, b"bc")]));

    // Nothing to export: the header alone, which imports as nothing.
    let mut empty = Vec::new();
    assert_eq!(export(&ledger, &channel, 2, &mut empty).await.unwrap(), 0);
    assert_eq!(empty, file_of(&channel, &[]));
    let report = import(&ledger, empty.as_slice()).await.unwrap();
    assert_eq!((report.appended, report.already_present), (0, 0));
}

#[tokio::test]
async fn forked_file_is_refused_and_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_at(dir.path(), "l.sqlite");
    fill(
        &ledger,
        &CHANNEL,
        &[b"m0".to_vec(), b"m1".to_vec(), b"m2".to_vec()],
    )
    .await;
    let fork = file_of(
        &CHANNEL,
        &[(1, b"m1"), (2, b"a different m2"), (3, b"m3"), (4, b"m4")],
    );
    assert_bad_export(import(&ledger, fork.as_slice()).await, "fork at seq 2");
    assert_eq!(ledger.next_seq(&CHANNEL).await.unwrap(), 3);
}

#[tokio::test]
async fn file_starting_beyond_the_channel_end_is_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_at(dir.path(), "l.sqlite");
    fill(&ledger, &CHANNEL, &[b"m0".to_vec()]).await;
    let file = file_of(&CHANNEL, &[(5, b"m5"), (6, b"m6")]);
    assert_bad_export(import(&ledger, file.as_slice()).await, "gap");
    assert_eq!(ledger.next_seq(&CHANNEL).await.unwrap(), 1);
}

#[tokio::test]
async fn file_with_a_hole_is_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_at(dir.path(), "l.sqlite");
    let file = file_of(&CHANNEL, &[(0, b"m0"), (1, b"m1"), (3, b"m3")]);
    assert_bad_export(import(&ledger, file.as_slice()).await, "seq 2 is missing");
    assert_eq!(ledger.next_seq(&CHANNEL).await.unwrap(), 0);
}

#[tokio::test]
async fn file_with_records_out_of_order_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_at(dir.path(), "l.sqlite");
    let repeated = file_of(&CHANNEL, &[(0, b"m0"), (1, b"m1"), (1, b"m1")]);
    assert_bad_export(import(&ledger, repeated.as_slice()).await, "out of order");
    let backwards = file_of(&CHANNEL, &[(1, b"m1"), (0, b"m0")]);
    assert_bad_export(import(&ledger, backwards.as_slice()).await, "out of order");
    assert_eq!(ledger.next_seq(&CHANNEL).await.unwrap(), 0);
}

#[tokio::test]
async fn truncated_file_is_refused_at_every_cut() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_at(dir.path(), "l.sqlite");
    let msgs = [b"zero".to_vec(), Vec::new(), b"two two".to_vec()];
    fill(&ledger, &CHANNEL, &msgs).await;
    let file = exported(&ledger, 0).await;
    // Cuts at a record boundary are shorter, valid files (all present already).
    let boundaries = [40, 40 + 12 + 4, 40 + 12 + 4 + 12, file.len()];
    for cut in 0..file.len() {
        let result = import(&ledger, &file[..cut]).await;
        if boundaries.contains(&cut) {
            assert!(result.is_ok(), "cut {cut}: {result:?}");
        } else if cut < 8 {
            assert_bad_export(result, "bad magic");
        } else {
            assert_bad_export(result, "truncated");
        }
    }
    assert_eq!(ledger.next_seq(&CHANNEL).await.unwrap(), 3);
}

#[tokio::test]
async fn oversized_length_claim_is_refused_without_allocating_it() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_at(dir.path(), "l.sqlite");
    let mut file = file_of(&CHANNEL, &[]);
    file.extend_from_slice(&0u64.to_be_bytes());
    file.extend_from_slice(&u32::MAX.to_be_bytes());
    file.extend_from_slice(b"only a few bytes");
    assert_bad_export(import(&ledger, file.as_slice()).await, "above the");

    // Exactly at the limit, but the data is not there: truncated, not an allocation failure.
    let mut file = file_of(&CHANNEL, &[]);
    file.extend_from_slice(&0u64.to_be_bytes());
    file.extend_from_slice(&(MAX_MESSAGE_SIZE as u32).to_be_bytes());
    assert_bad_export(import(&ledger, file.as_slice()).await, "truncated");
    assert_eq!(ledger.next_seq(&CHANNEL).await.unwrap(), 0);
}

#[tokio::test]
async fn garbage_is_not_an_export_file() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_at(dir.path(), "l.sqlite");
    for garbage in [
        &b""[..],
        b"FWLEDGR",
        b"FWLEDGR2 and then some more bytes than a header needs......",
        b"\x89PNG\r\n\x1a\n not an export",
    ] {
        assert_bad_export(import(&ledger, garbage).await, "bad magic");
    }
    assert!(ledger.channels().await.unwrap().is_empty());
}

#[tokio::test]
async fn failing_reader_is_an_io_error() {
    struct Broken;
    impl std::io::Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_at(dir.path(), "l.sqlite");
    assert!(matches!(
        import(&ledger, Broken).await,
        Err(LedgerError::Io(_))
    ));
}

/// Arbitrary files, and valid files cut or with one byte flipped: `import` ends with `Ok` or
/// `BadExport`, never panics, and the ledger stays dense.
#[test]
fn import_of_arbitrary_bytes_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ledger = ledger_at(dir.path(), "fuzz.sqlite");

    let record = (0u64..4, proptest::collection::vec(any::<u8>(), 0..40));
    let arbitrary = prop_oneof![
        // Anything at all.
        proptest::collection::vec(any::<u8>(), 0..200),
        // A valid header followed by anything.
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(|tail| {
            let mut f = file_of(&CHANNEL, &[]);
            f.extend(tail);
            f
        }),
        // Plausible records (small positions), then cut and maybe one byte flipped.
        (
            proptest::collection::vec(record, 0..6),
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
            any::<u8>(),
        )
            .prop_map(|(records, cut, flip, xor)| {
                let records: Vec<(u64, &[u8])> =
                    records.iter().map(|(s, b)| (*s, b.as_slice())).collect();
                let mut f = file_of(&CHANNEL, &records);
                let at = flip.index(f.len());
                f[at] ^= xor;
                f.truncate(cut.index(f.len() + 1));
                f
            }),
    ];

    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(512));
    runner
        .run(&arbitrary, |file| {
            match rt.block_on(import(&ledger, file.as_slice())) {
                Ok(_) | Err(LedgerError::BadExport(_)) => Ok(()),
                Err(e) => Err(TestCaseError::fail(format!("unexpected error {e:?}"))),
            }
        })
        .unwrap();

    rt.block_on(async {
        for (channel, count) in ledger.channels().await.unwrap() {
            let all = ledger.read(&channel, 0, usize::MAX).await.unwrap();
            assert_eq!(all.len() as u64, count);
        }
    });
}

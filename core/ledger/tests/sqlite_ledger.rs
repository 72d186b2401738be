//! The embedded SQLite ledger against a real SQLite file: positions, conflicts, limits,
//! append-only enforcement in the database, wake-ups, reopening, and `open()` URLs.
#![cfg(feature = "sqlite")]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fwledger_ledger::{open, Ledger, LedgerError, SqliteLedger, StoredMessage, MAX_MESSAGE_SIZE};

const CHANNEL: [u8; 32] = [0xAB; 32];
const OTHER: [u8; 32] = [0x01; 32];

fn ledger_in(dir: &Path) -> SqliteLedger {
    SqliteLedger::open(&dir.join("ledger.sqlite")).expect("open ledger")
}

async fn append_all(ledger: &dyn Ledger, channel: &[u8; 32], messages: &[&[u8]]) {
    let start = ledger.next_seq(channel).await.expect("next_seq");
    for (i, message) in messages.iter().enumerate() {
        ledger
            .append(channel, start + i as u64, message)
            .await
            .expect("append");
    }
}

#[tokio::test]
async fn append_read_and_next_seq() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_in(dir.path());
    assert_eq!(ledger.next_seq(&CHANNEL).await.unwrap(), 0);
    assert!(ledger.read(&CHANNEL, 0, 10).await.unwrap().is_empty());

    append_all(&ledger, &CHANNEL, &[b"zero", b"", b"two", b"three"]).await;
    assert_eq!(ledger.next_seq(&CHANNEL).await.unwrap(), 4);

    let all = ledger.read(&CHANNEL, 0, 100).await.unwrap();
    let expected: Vec<StoredMessage> = [&b"zero"[..], b"", b"two", b"three"]
        .iter()
        .enumerate()
        .map(|(i, b)| StoredMessage {
            seq: i as u64,
            bytes: b.to_vec(),
        })
        .collect();
    assert_eq!(all, expected);

    assert_eq!(ledger.read(&CHANNEL, 1, 2).await.unwrap(), expected[1..3]);
    assert_eq!(ledger.read(&CHANNEL, 3, 2).await.unwrap(), expected[3..]);
    assert!(ledger.read(&CHANNEL, 4, 2).await.unwrap().is_empty());
    assert!(ledger.read(&CHANNEL, 0, 0).await.unwrap().is_empty());
    assert!(ledger.read(&CHANNEL, u64::MAX, 5).await.unwrap().is_empty());
}

#[tokio::test]
async fn channels_are_independent_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_in(dir.path());
    assert!(ledger.channels().await.unwrap().is_empty());
    append_all(&ledger, &CHANNEL, &[b"a", b"b", b"c"]).await;
    append_all(&ledger, &OTHER, &[b"x"]).await;
    assert_eq!(ledger.next_seq(&OTHER).await.unwrap(), 1);
    assert_eq!(ledger.read(&OTHER, 0, 10).await.unwrap()[0].bytes, b"x");
    assert_eq!(
        ledger.channels().await.unwrap(),
        vec![(OTHER, 1), (CHANNEL, 3)]
    );
}

#[tokio::test]
async fn append_at_wrong_position_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_in(dir.path());
    assert!(matches!(
        ledger.append(&CHANNEL, 1, b"skips zero").await,
        Err(LedgerError::Conflict {
            expected: 0,
            got: 1
        })
    ));
    append_all(&ledger, &CHANNEL, &[b"a", b"b"]).await;
    // A racing writer that read next_seq = 1 before "b" landed.
    assert!(matches!(
        ledger.append(&CHANNEL, 1, b"fork").await,
        Err(LedgerError::Conflict {
            expected: 2,
            got: 1
        })
    ));
    assert!(matches!(
        ledger.append(&CHANNEL, u64::MAX, b"far").await,
        Err(LedgerError::Conflict {
            expected: 2,
            got: u64::MAX
        })
    ));
    // Nothing of the refused appends was stored.
    let all = ledger.read(&CHANNEL, 0, 10).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].bytes, b"b");
}

#[tokio::test]
async fn message_above_limit_is_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_in(dir.path());
    let largest = vec![7u8; MAX_MESSAGE_SIZE];
    ledger.append(&CHANNEL, 0, &largest).await.unwrap();
    let too_large = vec![7u8; MAX_MESSAGE_SIZE + 1];
    match ledger.append(&CHANNEL, 1, &too_large).await {
        Err(LedgerError::TooLarge { size, limit }) => {
            assert_eq!(size, MAX_MESSAGE_SIZE + 1);
            assert_eq!(limit, MAX_MESSAGE_SIZE);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(ledger.next_seq(&CHANNEL).await.unwrap(), 1);
    assert_eq!(ledger.read(&CHANNEL, 0, 1).await.unwrap()[0].bytes, largest);
}

/// A second, raw connection to the same file: the database itself refuses to rewrite history.
fn raw(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("ledger.sqlite")).unwrap()
}

fn assert_refused(result: rusqlite::Result<usize>, what: &str) {
    match result {
        Err(e) => assert!(
            e.to_string().contains("fwledger ledger"),
            "{what}: unexpected error {e}"
        ),
        Ok(n) => panic!("{what} succeeded and changed {n} rows"),
    }
}

#[tokio::test]
async fn raw_sql_update_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_in(dir.path());
    append_all(&ledger, &CHANNEL, &[b"original"]).await;
    let conn = raw(dir.path());
    assert_refused(
        conn.execute("UPDATE messages SET body = x'00'", []),
        "UPDATE body",
    );
    assert_refused(
        conn.execute("UPDATE messages SET seq = seq + 10", []),
        "UPDATE seq",
    );
    assert_eq!(
        ledger.read(&CHANNEL, 0, 1).await.unwrap()[0].bytes,
        b"original"
    );
}

#[tokio::test]
async fn raw_sql_delete_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_in(dir.path());
    append_all(&ledger, &CHANNEL, &[b"a", b"b"]).await;
    let conn = raw(dir.path());
    assert_refused(conn.execute("DELETE FROM messages", []), "DELETE");
    assert_refused(
        conn.execute("DELETE FROM messages WHERE seq = 1", []),
        "DELETE last",
    );
    assert_eq!(ledger.next_seq(&CHANNEL).await.unwrap(), 2);
}

#[tokio::test]
async fn raw_sql_insert_out_of_place_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_in(dir.path());
    append_all(&ledger, &CHANNEL, &[b"a"]).await;
    let conn = raw(dir.path());
    let insert = |seq: i64| {
        conn.execute(
            "INSERT INTO messages (channel, seq, body, appended_at) VALUES (?1, ?2, x'00', 0)",
            rusqlite::params![&CHANNEL[..], seq],
        )
    };
    assert_refused(insert(5), "INSERT with a gap");
    assert_refused(
        conn.execute(
            "INSERT OR REPLACE INTO messages (channel, seq, body, appended_at) \
             VALUES (?1, 0, x'00', 0)",
            [&CHANNEL[..]],
        ),
        "INSERT OR REPLACE over seq 0",
    );
    // The next free position is still allowed: the ledger is append-only, not read-only.
    insert(1).unwrap();
    assert_eq!(ledger.next_seq(&CHANNEL).await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_wakes_on_append_in_same_process() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(ledger_in(dir.path()));
    append_all(ledger.as_ref(), &CHANNEL, &[b"zero"]).await;

    let writer = Arc::clone(&ledger);
    let append = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        writer.append(&CHANNEL, 1, b"one").await
    });
    let started = Instant::now();
    assert!(ledger
        .wait(&CHANNEL, 1, Duration::from_secs(20))
        .await
        .unwrap());
    assert!(started.elapsed() < Duration::from_secs(20));
    append.await.unwrap().unwrap();
    assert_eq!(ledger.read(&CHANNEL, 1, 1).await.unwrap()[0].bytes, b"one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_sees_append_by_another_connection() {
    // Two handles on one file: no shared Notify, so only the data_version watcher can see it.
    let dir = tempfile::tempdir().unwrap();
    let follower = ledger_in(dir.path());
    let vendor = ledger_in(dir.path());
    let append = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        vendor.append(&CHANNEL, 0, b"zero").await
    });
    assert!(follower
        .wait(&CHANNEL, 0, Duration::from_secs(20))
        .await
        .unwrap());
    append.await.unwrap().unwrap();
}

#[tokio::test]
async fn wait_returns_at_once_when_message_exists() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_in(dir.path());
    append_all(&ledger, &CHANNEL, &[b"a", b"b"]).await;
    assert!(ledger.wait(&CHANNEL, 0, Duration::ZERO).await.unwrap());
    assert!(ledger.wait(&CHANNEL, 1, Duration::ZERO).await.unwrap());
    assert!(!ledger.wait(&CHANNEL, 2, Duration::ZERO).await.unwrap());
}

#[tokio::test]
async fn wait_times_out_without_append() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_in(dir.path());
    append_all(&ledger, &OTHER, &[b"another channel does not count"]).await;
    let started = Instant::now();
    assert!(!ledger
        .wait(&CHANNEL, 0, Duration::from_millis(150))
        .await
        .unwrap());
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn reopen_after_drop_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    {
        let ledger = ledger_in(dir.path());
        append_all(&ledger, &CHANNEL, &[b"kept", b"also kept"]).await;
    }
    let ledger = ledger_in(dir.path());
    assert_eq!(ledger.next_seq(&CHANNEL).await.unwrap(), 2);
    assert_eq!(
        ledger.read(&CHANNEL, 1, 1).await.unwrap()[0].bytes,
        b"also kept"
    );
    ledger.append(&CHANNEL, 2, b"more").await.unwrap();
}

#[tokio::test]
async fn open_creates_parent_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/c/ledger.sqlite");
    let ledger = SqliteLedger::open(&path).unwrap();
    assert_eq!(ledger.path(), path);
    ledger.append(&CHANNEL, 0, b"x").await.unwrap();
    assert!(path.exists());
}

#[test]
fn file_that_is_not_a_database_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    std::fs::write(&path, vec![0x5Au8; 8192]).unwrap();
    match SqliteLedger::open(&path) {
        Err(LedgerError::Corrupt(m)) => assert!(m.contains("ledger.sqlite"), "{m}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn newer_schema_version_is_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    drop(ledger_in(dir.path()));
    raw(dir.path())
        .execute("INSERT INTO schema_version (version) VALUES (99)", [])
        .unwrap();
    match SqliteLedger::open(&dir.path().join("ledger.sqlite")) {
        Err(LedgerError::Unsupported(m)) => assert!(m.contains("99"), "{m}"),
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[tokio::test]
async fn open_url_embedded_uses_home() {
    let home = tempfile::tempdir().unwrap();
    for url in ["", "embedded", " embedded "] {
        let ledger = open(url, home.path()).unwrap();
        let next = ledger.next_seq(&CHANNEL).await.unwrap();
        ledger.append(&CHANNEL, next, url.as_bytes()).await.unwrap();
    }
    assert!(home.path().join("ledger.sqlite").exists());
    // All three URLs named the same file.
    let ledger = SqliteLedger::open(&home.path().join("ledger.sqlite")).unwrap();
    assert_eq!(ledger.next_seq(&CHANNEL).await.unwrap(), 3);
}

#[tokio::test]
async fn open_url_sqlite_path() {
    let home = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let path = elsewhere.path().join("sub/vendor.sqlite");
    let ledger = open(&format!("sqlite:{}", path.display()), home.path()).unwrap();
    ledger.append(&CHANNEL, 0, b"x").await.unwrap();
    assert!(path.exists());
    assert!(!home.path().join("ledger.sqlite").exists());
}

#[test]
fn open_url_unknown_schemes_are_unsupported() {
    let home = tempfile::tempdir().unwrap();
    for url in [
        "iota+https://api.testnet.iota.cafe",
        "kubo+http://127.0.0.1:5001",
        "postgres://localhost/db",
        "sqlite:",
        "nonsense",
    ] {
        match open(url, home.path()) {
            Err(LedgerError::Unsupported(m)) => assert!(!m.is_empty()),
            Err(e) => panic!("{url}: expected Unsupported, got {e:?}"),
            Ok(_) => panic!("{url}: expected Unsupported, got a ledger"),
        }
    }
    match open("iota+https://api.testnet.iota.cafe", home.path()) {
        Err(LedgerError::Unsupported(m)) => assert!(m.contains("IOTA"), "{m}"),
        _ => unreachable!(),
    }
    assert!(!home.path().join("ledger.sqlite").exists());
}

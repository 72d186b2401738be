//! Several processes on one SQLite ledger file: wake-ups across processes and racing writers.
//!
//! The child processes are this test binary again, started with `FWLEDGER_LEDGER_TEST_CHILD`
//! set, which makes `child_process_entry` do the child's work (without it, that test does
//! nothing).
#![cfg(feature = "sqlite")]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fwledger_ledger::{Ledger, LedgerError, SqliteLedger};

const CHILD_ENV: &str = "FWLEDGER_LEDGER_TEST_CHILD";
const DB_ENV: &str = "FWLEDGER_LEDGER_TEST_DB";
/// Wall-clock time (ns since the Unix epoch) at which racing writers start, so that they race.
const START_ENV: &str = "FWLEDGER_LEDGER_TEST_START_NS";
const CHANNEL: [u8; 32] = [0x42; 32];
const PER_WRITER: usize = 200;

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn child(mode: &str, db: &Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "child_process_entry",
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, mode)
    .env(DB_ENV, db)
    .stdin(Stdio::null());
    cmd
}

fn check(output: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Value of `key=value` in the child's output (libtest may print its own words before it).
fn reported(stdout: &str, key: &str) -> Option<String> {
    let prefix = format!("{key}=");
    stdout
        .split_whitespace()
        .find_map(|word| word.strip_prefix(&prefix).map(str::to_owned))
}

/// Child side; a no-op in an ordinary test run.
#[test]
fn child_process_entry() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    let db = std::env::var(DB_ENV).expect("child needs the database path");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ledger = SqliteLedger::open(Path::new(&db)).unwrap();
        match mode.as_str() {
            "append-one-later" => {
                std::thread::sleep(Duration::from_millis(300));
                println!("append_started_ns={}", unix_nanos());
                ledger.append(&CHANNEL, 0, b"from the child").await.unwrap();
            }
            writer if writer.starts_with("writer-") => {
                let start: u128 = std::env::var(START_ENV).unwrap().parse().unwrap();
                let now = unix_nanos();
                if start > now {
                    std::thread::sleep(Duration::from_nanos((start - now) as u64));
                }
                let conflicts = append_with_retry(&ledger, writer).await;
                println!("conflicts={conflicts}");
            }
            other => panic!("unknown child mode {other}"),
        }
    });
}

/// Appends PER_WRITER messages, guessing the next position from its own last append (so that
/// it really races the other writer) and retrying at the position a Conflict reports.
async fn append_with_retry(ledger: &SqliteLedger, writer: &str) -> u64 {
    let mut conflicts = 0;
    let mut seq = ledger.next_seq(&CHANNEL).await.unwrap();
    for i in 0..PER_WRITER {
        let message = format!("{writer} {i}");
        loop {
            match ledger.append(&CHANNEL, seq, message.as_bytes()).await {
                Ok(()) => {
                    seq += 1;
                    // SQLite's busy handler lets a writer that never pauses keep the lock;
                    // a short pause makes the two writers interleave.
                    tokio::time::sleep(Duration::from_micros(200 * (i as u64 % 4))).await;
                    break;
                }
                Err(LedgerError::Conflict { expected, .. }) => {
                    conflicts += 1;
                    seq = expected;
                }
                Err(e) => panic!("{writer}: append {i} failed: {e}"),
            }
        }
    }
    conflicts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_wakes_on_append_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ledger.sqlite");
    let ledger = SqliteLedger::open(&db).unwrap();
    assert_eq!(ledger.next_seq(&CHANNEL).await.unwrap(), 0);

    let child = child("append-one-later", &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let woke = ledger
        .wait(&CHANNEL, 0, Duration::from_secs(30))
        .await
        .unwrap();
    let woke_ns = unix_nanos();
    assert!(woke, "wait timed out after {:?}", started.elapsed());

    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stdout = check(&output, "appending child");
    let append_started: u128 = reported(&stdout, "append_started_ns")
        .expect("child reports when it appended")
        .parse()
        .unwrap();
    assert!(woke_ns >= append_started, "woke before the child appended");
    eprintln!(
        "cross-process wake-up {:.2} ms after the child's append started",
        (woke_ns - append_started) as f64 / 1e6
    );
    let messages = ledger.read(&CHANNEL, 0, 10).await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].bytes, b"from the child");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_racing_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ledger.sqlite");
    // Create the file (and schema) before the children race for it.
    let ledger = SqliteLedger::open(&db).unwrap();

    let writers = ["writer-a", "writer-b"];
    let start = unix_nanos() + 500_000_000;
    let children: Vec<_> = writers
        .iter()
        .map(|w| {
            child(w, &db)
                .env(START_ENV, start.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let mut conflicts = 0u64;
    for (output, writer) in outputs.iter().zip(writers) {
        let stdout = check(output, writer);
        conflicts += reported(&stdout, "conflicts")
            .unwrap()
            .parse::<u64>()
            .unwrap();
    }
    let switches = ledger
        .read(&CHANNEL, 0, 2 * PER_WRITER)
        .await
        .unwrap()
        .windows(2)
        .filter(|w| w[0].bytes[..8] != w[1].bytes[..8])
        .count();
    eprintln!("{conflicts} conflicts retried, writers alternated {switches} times");

    let total = 2 * PER_WRITER;
    assert_eq!(ledger.next_seq(&CHANNEL).await.unwrap(), total as u64);
    let messages = ledger.read(&CHANNEL, 0, total + 10).await.unwrap();
    assert_eq!(messages.len(), total);
    let mut next = [0usize; 2];
    for (pos, message) in messages.iter().enumerate() {
        assert_eq!(message.seq, pos as u64);
        let text = String::from_utf8(message.bytes.clone()).unwrap();
        let (writer, i) = text.split_once(' ').unwrap();
        let w = writers.iter().position(|&x| x == writer).unwrap();
        // Each writer's messages appear once each, in its own order.
        assert_eq!(i.parse::<usize>().unwrap(), next[w], "at seq {pos}");
        next[w] += 1;
    }
    assert_eq!(next, [PER_WRITER, PER_WRITER]);
}

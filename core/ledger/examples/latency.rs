//! Cross-process publish → follower latency of the embedded SQLite ledger.
//!
//! Two processes share one ledger file in /tmp: a publisher (this program again, started with
//! `--publisher`) appends messages at irregular 5–15 ms intervals, each carrying the wall-clock
//! time its append started; the follower waits with `Ledger::wait`, reads, and measures how
//! long after the append started it had the message.
//!
//! ```text
//! cargo run --release -p fwledger-ledger --example latency [-- MESSAGES]
//! ```

use std::error::Error;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fwledger_ledger::{Ledger, SqliteLedger};

const CHANNEL: [u8; 32] = [0x1A; 32];
/// Roughly the size of a signed manifest message.
const MESSAGE_SIZE: usize = 256;
const DEFAULT_MESSAGES: u64 = 300;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Runtime::new()?;
    match args.get(1).map(String::as_str) {
        Some("--publisher") => {
            let db = args.get(2).ok_or("--publisher DB COUNT")?;
            let count = args.get(3).ok_or("--publisher DB COUNT")?.parse()?;
            rt.block_on(publisher(Path::new(db), count))
        }
        Some(n) => rt.block_on(follower(n.parse()?)),
        None => rt.block_on(follower(DEFAULT_MESSAGES)),
    }
}

async fn follower(count: u64) -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("fwledger-latency-")
        .tempdir_in("/tmp")?;
    let db = dir.path().join("ledger.sqlite");
    let ledger = SqliteLedger::open(&db)?;
    println!(
        "ledger {}, {count} messages of {MESSAGE_SIZE} bytes",
        db.display()
    );

    let mut publisher = Command::new(std::env::current_exe()?)
        .arg("--publisher")
        .arg(&db)
        .arg(count.to_string())
        .spawn()?;

    let cpu_before = cpu_time();
    let started = Instant::now();
    let mut wake_ms = Vec::new();
    let mut read_ms = Vec::new();
    let mut next = 0;
    while next < count {
        if !ledger.wait(&CHANNEL, next, Duration::from_secs(10)).await? {
            return Err(format!("no message {next} within 10 s").into());
        }
        let woke = unix_nanos();
        let batch = ledger.read(&CHANNEL, next, 64).await?;
        let have = unix_nanos();
        for message in &batch {
            let sent = sent_at(&message.bytes)?;
            wake_ms.push(woke.saturating_sub(sent) as f64 / 1e6);
            read_ms.push(have.saturating_sub(sent) as f64 / 1e6);
        }
        next += batch.len() as u64;
    }
    let elapsed = started.elapsed();
    let cpu = cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    if !publisher.wait()?.success() {
        return Err("publisher failed".into());
    }

    println!("append start → wait() returned: {}", summary(&mut wake_ms));
    println!("append start → message read:    {}", summary(&mut read_ms));
    if let Some(cpu) = cpu {
        println!(
            "follower CPU while waiting: {:.2} s over {:.2} s ({:.1} %)",
            cpu.as_secs_f64(),
            elapsed.as_secs_f64(),
            100.0 * cpu.as_secs_f64() / elapsed.as_secs_f64()
        );
    }
    Ok(())
}

async fn publisher(db: &Path, count: u64) -> Result<()> {
    let ledger = SqliteLedger::open(db)?;
    // Let the follower settle into wait().
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut append_ms = Vec::new();
    for seq in 0..count {
        // Irregular gaps, so that appends do not line up with the follower's polling.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        tokio::time::sleep(Duration::from_micros(5_000 + rng % 10_000)).await;

        let mut message = vec![0u8; MESSAGE_SIZE];
        let start = Instant::now();
        message[..16].copy_from_slice(&unix_nanos().to_be_bytes());
        ledger.append(&CHANNEL, seq, &message).await?;
        append_ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "append() itself (publisher):    {}",
        summary(&mut append_ms)
    );
    Ok(())
}

fn sent_at(message: &[u8]) -> Result<u128> {
    let stamp: [u8; 16] = message
        .get(..16)
        .ok_or("short message")?
        .try_into()
        .map_err(|_| "short message")?;
    Ok(u128::from_be_bytes(stamp))
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn summary(ms: &mut [f64]) -> String {
    if ms.is_empty() {
        return "no samples".into();
    }
    ms.sort_by(f64::total_cmp);
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    let pct = |p: usize| ms[((ms.len() - 1) * p + 50) / 100];
    format!(
        "n={} mean {mean:.2} ms  p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2}",
        ms.len(),
        pct(50),
        pct(95),
        pct(99),
        ms[ms.len() - 1]
    )
}

/// User + system CPU time of this process (Linux /proc; None elsewhere).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may contain spaces).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux ABI in use.
    Some(Duration::from_millis(ticks * 10))
}

//! Publish → follower latency on the embedded ledger, across two processes (the paper's figure 10
//! experiment, which measured ~32 s on IOTA MAM).
//!
//! `cargo run --release -p fwledger --example channel_latency -- [MESSAGES] [SETS]`
//!
//! The parent process is the vendor: it prepares each release (content store, signature) off the
//! clock, then times from the start of `announce` (channel message sealed, signed and appended) to
//! the moment a follower in a child process has read, verified and decrypted it. Release notes of
//! 400–600 characters stand in for the paper's payloads.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fwledger::proto::channel::Token;
use fwledger::{Backends, ChannelItem, ReleaseSpec, Subscription, Vendor};

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

type Error = Box<dyn std::error::Error>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("follow") {
        return follow(&args[2], &args[3], args[4].parse()?).await;
    }
    let messages: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(300);
    let sets: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(1);
    let mut all = Vec::new();
    for set in 0..sets {
        let mut latencies = run_set(messages, set).await?;
        report(&format!("set {}", set + 1), &mut latencies);
        all.extend(latencies);
    }
    if sets > 1 {
        report("all sets", &mut all);
    }
    Ok(())
}

async fn follow(ledger: &str, token: &str, count: usize) -> Result<(), Error> {
    let home = std::env::temp_dir();
    let backends = Backends::open(&home, ledger, "embedded:/nonexistent-unused")?;
    let mut subscription = Subscription::new(&Token::from_text(token)?, backends.ledger.clone())?;
    println!("ready");
    for _ in 0..count {
        match subscription.next(Some(Duration::from_secs(60))).await? {
            Some(ChannelItem::Message(d)) => println!("{} {}", d.seq, now_ns()),
            Some(ChannelItem::Rejected { error, .. }) => return Err(error.to_string().into()),
            None => return Err("follower timed out".into()),
        }
    }
    Ok(())
}

async fn run_set(messages: usize, set: usize) -> Result<Vec<f64>, Error> {
    let dir = tempfile::tempdir()?;
    let ledger_url = format!("sqlite:{}", dir.path().join("ledger.sqlite").display());
    let backends = Backends::open(dir.path(), &ledger_url, "embedded")?;
    let mut vendor = Vendor::init(dir.path(), "bench", &backends)?;
    let token = vendor.token(Some("gateway"))?;
    let mut child = Command::new(std::env::current_exe()?)
        .args(["follow", &ledger_url, &token, &messages.to_string()])
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no child stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    if lines.next().transpose()?.as_deref() != Some("ready") {
        return Err("follower did not start".into());
    }
    let image = dir.path().join("image.bin");
    let mut sent = Vec::with_capacity(messages);
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ set as u64;
    for i in 0..messages {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::fs::write(&image, format!("image {set} {i}"))?;
        let mut spec = ReleaseSpec::new("bench-device", &["rev-a"], &format!("1.0.{i}"));
        spec.notes = Some("n".repeat(400 + (rng % 201) as usize));
        let prepared = vendor.prepare(&image, &spec, None).await?;
        tokio::time::sleep(Duration::from_millis(5 + rng % 10)).await;
        let start = now_ns();
        let release = vendor.announce(prepared).await?;
        sent.push((release.seq, start));
    }
    let mut latencies = Vec::with_capacity(messages);
    for (seq, start) in sent {
        let line = lines.next().transpose()?.ok_or("follower ended early")?;
        let (got, at) = line.split_once(' ').ok_or("bad follower line")?;
        if got.parse::<u64>()? != seq {
            return Err(format!("follower saw {got}, expected {seq}").into());
        }
        latencies.push((at.parse::<u128>()?.saturating_sub(start)) as f64 / 1e6);
    }
    child.wait()?;
    Ok(latencies)
}

fn report(label: &str, latencies: &mut [f64]) {
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    let mean = latencies.iter().sum::<f64>() / latencies.len() as f64;
    println!(
        "{label}: n={} mean={mean:.2} ms p50={:.2} ms p95={:.2} ms p99={:.2} ms max={:.2} ms",
        latencies.len(),
        pct(0.50),
        pct(0.95),
        pct(0.99),
        pct(1.0)
    );
}

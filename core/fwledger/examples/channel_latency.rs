//! Publish → follower latency across two processes: the paper's figure 10 experiment (five sets
//! of 300 messages with 400–600-character payloads; ~32 s per message on IOTA MAM).
//!
//! `cargo run --release -p fwledger --example channel_latency -- [MESSAGES] [SETS]
//! [--ledger URL] [--csv PATH] [--label NAME]`
//!
//! The parent process is the vendor: it prepares each release (content store, signature) off the
//! clock, then times from the start of `announce` (channel message sealed, signed and appended) to
//! the moment a follower in a child process — what a gateway runs — has read, verified and
//! decrypted it. Release notes of 400–600 random characters are the paper's payloads.
//!
//! `--ledger` defaults to a fresh embedded ledger (`sqlite:` in a temporary directory) per set;
//! any other URL (e.g. `iota+https://…`) is used as given, by both processes. `--csv` writes one
//! row per message: `ledger,set,message,payload_chars,latency_ms`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fwledger::proto::channel::Token;
use rand::{Rng, SeedableRng};

use fwledger::{Backends, ChannelItem, ReleaseSpec, Subscription, Vendor};

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

type Error = Box<dyn std::error::Error>;

struct Options {
    messages: usize,
    sets: usize,
    ledger: Option<String>,
    csv: Option<std::path::PathBuf>,
    label: String,
}

fn options(args: &[String]) -> Result<Options, Error> {
    let mut positional = Vec::new();
    let mut o = Options {
        messages: 300,
        sets: 1,
        ledger: None,
        csv: None,
        label: "embedded".into(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--ledger" => o.ledger = Some(value()?),
            "--csv" => o.csv = Some(value()?.into()),
            "--label" => o.label = value()?,
            a if a.starts_with("--") => return Err(format!("unknown option {a}").into()),
            a => positional.push(a.to_string()),
        }
    }
    if let Some(m) = positional.first() {
        o.messages = m.parse()?;
    }
    if let Some(s) = positional.get(1) {
        o.sets = s.parse()?;
    }
    if o.messages == 0 || o.sets == 0 {
        return Err("MESSAGES and SETS must be at least 1".into());
    }
    if o.ledger.is_some() && o.label == "embedded" {
        o.label = o.ledger.clone().unwrap_or_default();
    }
    Ok(o)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("follow") {
        if args.len() != 6 {
            return Err("usage: follow HOME LEDGER TOKEN COUNT".into());
        }
        return follow(&args[2], &args[3], &args[4], args[5].parse()?).await;
    }
    let o = options(&args[1..])?;
    let mut csv = match &o.csv {
        Some(path) => {
            let mut file = std::fs::File::create(path)?;
            writeln!(file, "ledger,set,message,payload_chars,latency_ms")?;
            Some(file)
        }
        None => None,
    };
    let mut all = Vec::new();
    for set in 0..o.sets {
        let rows = run_set(o.messages, set, o.ledger.as_deref()).await?;
        if let Some(file) = csv.as_mut() {
            for (i, (chars, ms)) in rows.iter().enumerate() {
                writeln!(file, "{},{},{},{chars},{ms:.3}", o.label, set + 1, i + 1)?;
            }
        }
        let mut latencies: Vec<f64> = rows.into_iter().map(|(_, ms)| ms).collect();
        report(&format!("set {}", set + 1), &mut latencies);
        all.extend(latencies);
    }
    if o.sets > 1 {
        report("all sets", &mut all);
    }
    Ok(())
}

async fn follow(home: &str, ledger: &str, token: &str, count: usize) -> Result<(), Error> {
    // The follower has a home of its own: it shares only the ledger with the vendor.
    let home = std::path::Path::new(home);
    std::fs::create_dir_all(home)?;
    let backends = Backends::open(home, ledger, "embedded:/nonexistent-unused")?;
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

/// One set: `(payload characters, latency in ms)` per message, in order.
async fn run_set(
    messages: usize,
    set: usize,
    ledger: Option<&str>,
) -> Result<Vec<(usize, f64)>, Error> {
    let dir = tempfile::tempdir()?;
    let vendor_home = dir.path().join("vendor");
    std::fs::create_dir_all(&vendor_home)?;
    let ledger_url = match ledger {
        Some(url) => url.to_string(),
        None => format!("sqlite:{}", dir.path().join("ledger.sqlite").display()),
    };
    let backends = Backends::open(&vendor_home, &ledger_url, "embedded")?;
    let mut vendor = Vendor::init(&vendor_home, "bench", &backends)?;
    let token = vendor.token(Some("gateway"))?;
    let follower_home = dir.path().join("follower");
    let mut child = Command::new(std::env::current_exe()?)
        .arg("follow")
        .arg(&follower_home)
        .args([&ledger_url, &token, &messages.to_string()])
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no child stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    if lines.next().transpose()?.as_deref() != Some("ready") {
        let _ = child.kill();
        return Err("follower did not start".into());
    }
    let image = vendor_home.join("image.bin");
    let mut sent = Vec::with_capacity(messages);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x9e37_79b9_7f4a_7c15 ^ set as u64);
    for i in 0..messages {
        std::fs::write(&image, format!("image {set} {i}"))?;
        let mut spec = ReleaseSpec::new("bench-device", &["rev-a"], &format!("1.0.{i}"));
        let chars = rng.gen_range(400..=600);
        let notes: String = (&mut rng)
            .sample_iter(rand::distributions::Alphanumeric)
            .take(chars)
            .map(char::from)
            .collect();
        spec.notes = Some(notes);
        let prepared = vendor.prepare(&image, &spec, None).await?;
        tokio::time::sleep(Duration::from_millis(rng.gen_range(5..15))).await;
        let start = now_ns();
        let release = vendor.announce(prepared).await?;
        sent.push((release.seq, start, chars));
    }
    let mut rows = Vec::with_capacity(messages);
    for (seq, start, chars) in sent {
        let Some(line) = lines.next().transpose()? else {
            let _ = child.kill();
            return Err("follower ended early".into());
        };
        let (got, at) = line.split_once(' ').ok_or("bad follower line")?;
        if got.parse::<u64>()? != seq {
            let _ = child.kill();
            return Err(format!("follower saw {got}, expected {seq}").into());
        }
        rows.push((
            chars,
            (at.parse::<u128>()?.saturating_sub(start)) as f64 / 1e6,
        ));
    }
    child.wait()?;
    Ok(rows)
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

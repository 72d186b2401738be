//! `fwledger demo`: the whole flow on the embedded defaults, step by step with timings.
//!
//! vendor init → publish (content store + ledger) → a gateway follows the channel with its token
//! → fetches and verifies the image into its repository → each simulated device verifies the
//! signed manifest against the vendor root key, applies the update policy and streams the image
//! through the verifier. (The MQTT gateway service and device agents replace the last step's
//! in-process devices when they land; see the README.)

use std::path::PathBuf;
use std::time::Instant;

use fwledger::proto::channel::{Event, Token};
use fwledger::proto::manifest::{verify_manifest, TrustAnchor};
use fwledger::proto::policy::{decide, DeviceState};
use fwledger::proto::{ImageVerifier, Version};
use fwledger::{Backends, ChannelItem, ReleaseSpec, Subscription, Vendor};

use crate::util::Failure;

const MODEL: &str = "smart-lamp";
const HARDWARE: &str = "rev-b";

fn step(start: &Instant, what: &str) {
    println!(
        "[{:>8.1} ms] {what}",
        start.elapsed().as_secs_f64() * 1000.0
    );
}

/// Runs the demo with `devices` simulated devices.
pub async fn run(devices: usize, dir: Option<PathBuf>) -> Result<(), Failure> {
    if devices == 0 || devices > 100_000 {
        return Err(Failure::Message(
            "--devices must be between 1 and 100000".into(),
        ));
    }
    let temp;
    let root = match dir {
        Some(dir) => dir,
        None => {
            temp = tempdir()?;
            temp.0.clone()
        }
    };
    let vendor_home = root.join("vendor");
    let gateway_home = root.join("gateway");
    let start = Instant::now();
    println!("fwledger demo in {} ({devices} devices)", root.display());

    // Vendor and gateway share the embedded ledger and store, as two processes on one machine
    // would with `--ledger sqlite:… --store embedded:…`.
    let shared = format!("sqlite:{}", root.join("ledger.sqlite").display());
    let store = format!("embedded:{}", root.join("store").display());
    let backends = Backends::open(&vendor_home, &shared, &store)?;
    let mut vendor = Vendor::init(&vendor_home, "Acme Lighting", &backends)?;
    step(
        &start,
        &format!(
            "vendor created, root key {}",
            hex::encode(vendor.public_key())
        ),
    );

    let token = vendor.token(Some("home-gateway"))?;
    step(
        &start,
        &format!("subscription token issued ({} characters)", token.len()),
    );

    let image_path = root.join("smart-lamp-1.1.0.bin");
    let image: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(&image_path, &image).map_err(|e| Failure::io(&image_path, e))?;
    let mut spec = ReleaseSpec::new(MODEL, &[HARDWARE], "1.1.0");
    spec.security_version = 2;
    let release = vendor.publish(&image_path, &spec, None).await?;
    vendor.heartbeat(crate::HEARTBEAT_VALIDITY).await?;
    step(
        &start,
        &format!(
            "published {MODEL} 1.1.0 at seq {}: cid {}",
            release.seq, release.cid
        ),
    );

    let gateway = Backends::open(&gateway_home, &shared, &store)?;
    let token = Token::from_text(&token).map_err(|e| Failure::Message(e.to_string()))?;
    let mut subscription = Subscription::new(&token, gateway.ledger.clone())?;
    let mut signed = None;
    for item in subscription.drain().await? {
        match item {
            ChannelItem::Message(d) => {
                if let Event::Release {
                    verified,
                    signed: bytes,
                } = d.event
                {
                    step(
                        &start,
                        &format!(
                            "gateway verified release message #{}: {} {}",
                            d.seq, verified.manifest.model, verified.manifest.version
                        ),
                    );
                    signed = Some((verified, bytes));
                }
            }
            ChannelItem::Rejected { position, error } => {
                return Err(Failure::Message(format!(
                    "gateway rejected message {position}: {error}"
                )))
            }
        }
    }
    let (verified, signed) =
        signed.ok_or_else(|| Failure::Message("the gateway saw no release".into()))?;
    step(
        &start,
        &format!("channel freshness: {:?}", subscription.freshness()),
    );

    let repo = gateway_home
        .join("repository")
        .join(format!("{MODEL}-1.1.0.bin"));
    fwledger::fetch(
        gateway.store.as_ref(),
        &verified.manifest,
        &repo,
        fwledger::fetch::DEFAULT_STALL_TIMEOUT,
    )
    .await
    .map_err(|e| Failure::Message(e.to_string()))?;
    step(
        &start,
        &format!(
            "gateway fetched and verified {} bytes into {}",
            verified.manifest.size,
            repo.display()
        ),
    );

    // Devices trust only the vendor root key they were provisioned with.
    let trust = TrustAnchor::new(
        fwledger::proto::ed25519_dalek::VerifyingKey::from_bytes(&vendor.public_key())
            .map_err(|_| Failure::Message("bad vendor key".into()))?,
    );
    let installed: Version = "1.0.0"
        .parse()
        .map_err(|_| Failure::Message("bad version".into()))?;
    let image = std::fs::read(&repo).map_err(|e| Failure::io(&repo, e))?;
    for n in 0..devices {
        let manifest = verify_manifest(&signed, &trust, Some(fwledger::unix_now()))
            .map_err(|e| Failure::Message(format!("device {n}: {e}")))?
            .manifest;
        let state = DeviceState {
            model: MODEL,
            hardware: HARDWARE,
            version: &installed,
            security_version: 1,
        };
        decide(&manifest, &state, Some(fwledger::unix_now()))
            .map_err(|e| Failure::Message(format!("device {n}: {e}")))?;
        let mut verifier = ImageVerifier::new(manifest.size, manifest.sha256);
        for chunk in image.chunks(4096) {
            verifier
                .update(chunk)
                .map_err(|e| Failure::Message(format!("device {n}: {e}")))?;
        }
        verifier
            .finish()
            .map_err(|e| Failure::Message(format!("device {n}: {e}")))?;
    }
    step(&start, &format!("{devices} devices verified the manifest against the vendor key, the policy and the image"));
    println!("done: every device accepted {MODEL} 1.1.0");
    Ok(())
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir() -> Result<TempDir, Failure> {
    let dir = std::env::temp_dir().join(format!(
        "fwledger-demo-{}-{}",
        std::process::id(),
        fwledger::unix_now()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| Failure::io(&dir, e))?;
    Ok(TempDir(dir))
}

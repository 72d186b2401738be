//! The `fwledger` command-line tool. See `fwledger --help` and the README.
#![forbid(unsafe_code)]

mod args;
mod demo;
mod device;
mod gateway;
mod iota;
mod ipfs;
mod portal;
mod rollout;
mod swarm;
mod util;

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use fwledger::proto::channel::Token;
use fwledger::proto::manifest::{verify_manifest, TrustAnchor};
use fwledger::{
    Backends, ChannelEntry, ChannelItem, ReleaseSpec, Subscription, Vendor, VerifyOptions,
};
use fwledger_store::Profile;

use args::{CarCommand, ChannelCommand, Cli, Command, PublishArgs, VendorCommand, VerifyArgs};
use util::{parse_duration, parse_key, Failure};

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Message(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
        Err(Failure::Check { check, message }) => {
            eprintln!("verification failed: {check}: {message}");
            ExitCode::from(2)
        }
    }
}

/// `fwledger … | head` closes stdout early, and Rust's `println!` then panics. Exit the way a Unix
/// tool killed by SIGPIPE does (status 141, no message) instead of printing a panic.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let home = cli.home.clone().unwrap_or_else(fwledger::default_home);
    let ledger = iota::ledger_url(&cli);
    let backends = || Backends::open(&home, &ledger, &cli.store).map_err(Failure::from);
    match cli.command {
        Command::Vendor(command) => vendor(&home, &ledger, &backends()?, command).await,
        Command::Channel(command) => channel(&backends()?, command).await,
        Command::Cid { file, profile } => {
            let profile: Profile = profile.parse().map_err(Failure::from)?;
            let cid = util::with_progress(&file, "hashing", |progress| {
                fwledger_store::cid_of_reader(progress, profile)
            })?;
            println!("{cid}");
            Ok(())
        }
        Command::Verify(args) => verify(args),
        Command::Fetch {
            manifest,
            vendor_key,
            out,
        } => fetch(&backends()?, &manifest, &vendor_key, &out).await,
        Command::Car(command) => car(&home, &cli.store, command),
        Command::Gateway(command) => gateway::run(&home, &backends, command).await,
        Command::Device(command) => device::run(command).await,
        Command::Ipfs(command) => ipfs::run(&home, &cli.store, command).await,
        Command::Demo {
            devices,
            dir,
            keep_running,
        } => demo::run(devices, dir, keep_running).await,
    }
}

async fn vendor(
    home: &Path,
    ledger: &str,
    backends: &Backends,
    command: VendorCommand,
) -> Result<(), Failure> {
    if let VendorCommand::Init { name } = &command {
        let vendor = Vendor::init(home, name, backends)?;
        println!("vendor {:?} created in {}", vendor.name(), home.display());
        println!("root public key: {}", hex::encode(vendor.public_key()));
        println!("channel:         {}", hex::encode(vendor.channel()));
        return Ok(());
    }
    if let VendorCommand::IotaAccount = &command {
        return iota::account(home, ledger);
    }
    let mut vendor = Vendor::open(home, backends)?;
    match command {
        VendorCommand::Init { .. } => Ok(()),
        VendorCommand::Key => {
            println!("{}", hex::encode(vendor.public_key()));
            Ok(())
        }
        VendorCommand::Token { gateway, simple } => {
            let name = match (simple, gateway) {
                (true, _) => None,
                (false, Some(name)) => Some(name),
                (false, None) => Some(vendor.next_reader_name()),
            };
            let token = vendor.token(name.as_deref())?;
            if let Some(name) = name {
                eprintln!("token for gateway {name:?} (keep it secret):");
            } else {
                eprintln!(
                    "simple-mode token (keep it secret; it stops working at the next rotate-key):"
                );
            }
            println!("{token}");
            Ok(())
        }
        VendorCommand::Publish(args) if args.dry_run => {
            iota::publish_dry_run(home, ledger, &mut vendor, args).await
        }
        VendorCommand::Publish(args) => publish(&mut vendor, args).await,
        VendorCommand::IotaAccount => Ok(()),
        VendorCommand::Revoke {
            version,
            model,
            reason,
        } => {
            let seq = vendor.revoke(model.as_deref(), &version, &reason).await?;
            println!("revoked {version} at seq {seq}");
            Ok(())
        }
        VendorCommand::RotateKey {
            revoke,
            release_key,
        } => {
            if release_key {
                let generation = vendor.rotate_release_key()?;
                println!("new release key, generation {generation}");
            }
            let seq = vendor.rotate(revoke.as_deref()).await?;
            if let Some(name) = revoke {
                println!("revoked gateway {name:?}");
            }
            println!("new epoch started by the keyload at seq {seq}");
            Ok(())
        }
        VendorCommand::Heartbeat { valid } => {
            let seq = vendor.heartbeat(parse_duration(&valid)?).await?;
            println!("heartbeat at seq {seq}");
            Ok(())
        }
        VendorCommand::History { json } => {
            let entries = vendor.history().await?;
            print_entries(&entries, json)
        }
        VendorCommand::Export { file, from } => {
            let out = std::fs::File::create(&file).map_err(|e| Failure::io(&file, e))?;
            let mut out = std::io::BufWriter::new(out);
            let count =
                fwledger_ledger::export(backends.ledger.as_ref(), vendor.channel(), from, &mut out)
                    .await
                    .map_err(Failure::from)?;
            std::io::Write::flush(&mut out).map_err(|e| Failure::io(&file, e))?;
            println!("exported {count} messages to {}", file.display());
            Ok(())
        }
        VendorCommand::Serve {
            http,
            max_upload,
            tls_cert,
            tls_key,
        } => portal::serve(home, backends, http, &max_upload, tls_cert.zip(tls_key)).await,
        VendorCommand::PortalPassword => portal::reset_password(home),
        VendorCommand::Gateways { json } => {
            if json {
                println!("{}", util::to_json(vendor.readers())?);
            } else {
                for r in vendor.readers() {
                    let state = r
                        .revoked
                        .map_or("active".to_string(), |t| format!("revoked at {t}"));
                    println!("{:<20} {}  {}", r.name, &r.public[..16], state);
                }
            }
            Ok(())
        }
    }
}

async fn publish(vendor: &mut Vendor, args: PublishArgs) -> Result<(), Failure> {
    let spec = ReleaseSpec {
        model: args.model,
        hardware: args.hardware,
        version: args.version,
        security_version: args.security_version,
        expires_in: args.expires.as_deref().map(parse_duration).transpose()?,
        prerequisite: args.prerequisite,
        notes: args.notes,
        profile: args.profile.parse().map_err(Failure::from)?,
    };
    let size = std::fs::metadata(&args.file)
        .map_err(|e| Failure::io(&args.file, e))?
        .len();
    let bar = util::progress_bar(size, "adding");
    let on_progress = |done: u64| bar.set_position(done);
    let release = vendor.publish(&args.file, &spec, Some(&on_progress)).await;
    bar.finish_and_clear();
    let release = release?;
    if args.json {
        println!("{}", util::to_json(&release)?);
    } else {
        println!(
            "published {} {} at seq {}",
            release.model, release.version, release.seq
        );
        println!("  cid       {}", release.cid);
        println!("  sha256    {}", release.sha256);
        println!("  size      {} bytes", release.size);
        println!("  manifest  {}", release.manifest_path.display());
    }
    Ok(())
}

fn print_entries(entries: &[ChannelEntry], json: bool) -> Result<(), Failure> {
    if json {
        println!("{}", util::to_json(entries)?);
    } else {
        for entry in entries {
            println!("{}", entry.line());
        }
    }
    Ok(())
}

fn read_token(text: &str) -> Result<Token, Failure> {
    let text = match text.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| Failure::io(Path::new(path), e))?,
        None => text.to_string(),
    };
    Token::from_text(&text).map_err(|e| Failure::Message(e.to_string()))
}

async fn channel(backends: &Backends, command: ChannelCommand) -> Result<(), Failure> {
    match command {
        ChannelCommand::Read {
            token,
            json,
            follow,
            state,
            idle_timeout,
        } => {
            let token = read_token(&token)?;
            let mut subscription = Subscription::new(&token, backends.ledger.clone())?;
            if let Some(path) = &state {
                subscription = subscription.persist_to(path)?;
            }
            let entry_of = |item: &ChannelItem| match item {
                ChannelItem::Message(d) => ChannelEntry::from_delivery(d),
                ChannelItem::Rejected { position, error } => {
                    ChannelEntry::rejected(*position, error)
                }
            };
            if !follow {
                let items = subscription.drain().await?;
                let entries: Vec<ChannelEntry> = items.iter().map(entry_of).collect();
                print_entries(&entries, json)?;
                if !json {
                    eprintln!(
                        "channel of {:?}: {} messages, freshness {:?}",
                        token.vendor,
                        entries.len(),
                        subscription.freshness()
                    );
                }
                return Ok(());
            }
            let idle = idle_timeout.as_deref().map(parse_duration).transpose()?;
            while let Some(item) = subscription.next(idle).await? {
                let entry = entry_of(&item);
                if json {
                    println!(
                        "{}",
                        serde_json::to_string(&entry)
                            .map_err(|e| Failure::Message(e.to_string()))?
                    );
                } else {
                    println!("{}", entry.line());
                }
            }
            Ok(())
        }
        ChannelCommand::Import { file } => {
            let input = std::fs::File::open(&file).map_err(|e| Failure::io(&file, e))?;
            let report =
                fwledger_ledger::import(backends.ledger.as_ref(), std::io::BufReader::new(input))
                    .await
                    .map_err(Failure::from)?;
            println!(
                "channel {}: {} appended, {} already present",
                hex::encode(report.channel),
                report.appended,
                report.already_present
            );
            Ok(())
        }
    }
}

fn verify(args: VerifyArgs) -> Result<(), Failure> {
    let vendor_key = parse_key(&args.vendor_key)?;
    let manifest = std::fs::read(&args.manifest).map_err(|e| Failure::io(&args.manifest, e))?;
    let image = std::fs::File::open(&args.image).map_err(|e| Failure::io(&args.image, e))?;
    let current = args
        .current
        .as_deref()
        .map(|v| {
            v.parse()
                .map_err(|_| Failure::Message(format!("--current {v:?} is not a semantic version")))
        })
        .transpose()?;
    let options = VerifyOptions {
        model: args.model,
        hardware: args.hardware,
        current,
        security_version: args.security_version,
        min_key_generation: args.min_key_generation,
        now: (!args.no_clock).then(fwledger::unix_now),
    };
    let verified = fwledger::verify_release(
        &manifest,
        std::io::BufReader::with_capacity(1 << 20, image),
        &vendor_key,
        &options,
    )
    .map_err(|e| match e {
        fwledger::VerifyError::Io(io) => Failure::io(&args.image, io),
        e => Failure::Check {
            check: e.check(),
            message: e.to_string(),
        },
    })?;
    let m = &verified.manifest;
    println!(
        "OK {} {} {} (security {}, {} bytes, sha256 {})",
        m.vendor,
        m.model,
        m.version,
        m.security_version,
        m.size,
        hex::encode(m.sha256)
    );
    Ok(())
}

async fn fetch(
    backends: &Backends,
    manifest: &Path,
    vendor_key: &str,
    out: &Path,
) -> Result<(), Failure> {
    let root = ed25519_dalek_key(vendor_key)?;
    let bytes = std::fs::read(manifest).map_err(|e| Failure::io(manifest, e))?;
    let verified = verify_manifest(&bytes, &TrustAnchor::new(root), Some(fwledger::unix_now()))
        .map_err(|e| Failure::Check {
            check: e.check(),
            message: e.to_string(),
        })?;
    fwledger::fetch(
        backends.store.as_ref(),
        &verified.manifest,
        out,
        fwledger::fetch::DEFAULT_STALL_TIMEOUT,
    )
    .await
    .map_err(|e| Failure::Message(e.to_string()))?;
    println!(
        "{} ({} bytes, verified)",
        out.display(),
        verified.manifest.size
    );
    Ok(())
}

fn ed25519_dalek_key(
    hex_key: &str,
) -> Result<fwledger::proto::ed25519_dalek::VerifyingKey, Failure> {
    let key = parse_key(hex_key)?;
    fwledger::proto::ed25519_dalek::VerifyingKey::from_bytes(&key)
        .map_err(|_| Failure::Message("vendor key is not a valid Ed25519 public key".into()))
}

fn car(home: &Path, store_url: &str, command: CarCommand) -> Result<(), Failure> {
    let store = util::embedded_store(home, store_url)?;
    match command {
        CarCommand::Export { cid, file } => {
            let out = std::fs::File::create(&file).map_err(|e| Failure::io(&file, e))?;
            fwledger_store::export_car(&store, &cid, std::io::BufWriter::new(out))
                .map_err(Failure::from)?;
            println!("wrote {}", file.display());
        }
        CarCommand::Import { file } => {
            let input = std::fs::File::open(&file).map_err(|e| Failure::io(&file, e))?;
            let roots = fwledger_store::import_car(&store, std::io::BufReader::new(input))
                .map_err(Failure::from)?;
            for root in roots {
                println!("{root}");
            }
        }
    }
    Ok(())
}

/// Used by the demo for durations.
pub(crate) const HEARTBEAT_VALIDITY: Duration = Duration::from_secs(3600);

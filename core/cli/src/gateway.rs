//! `fwledger gateway …`: thin wrappers around `fwledger_gateway`.

use std::fmt::Display;
use std::path::Path;
use std::time::Duration;

use fwledger::Backends;
use fwledger_gateway::registry::{NewDevice, Registry};
use fwledger_gateway::{Gateway, InitOptions, RunOptions};

use crate::args::{GatewayCommand, GatewayDeviceCommand, GatewayInitArgs};
use crate::util::Failure;

fn fail(e: impl Display) -> Failure {
    Failure::Message(e.to_string())
}

fn json(value: &impl serde::Serialize) -> Result<String, Failure> {
    serde_json::to_string_pretty(value).map_err(fail)
}

/// Runs a gateway command.
pub async fn run(
    home: &Path,
    backends: &dyn Fn() -> Result<Backends, Failure>,
    command: GatewayCommand,
) -> Result<(), Failure> {
    match command {
        GatewayCommand::Init(args) => init(home, args),
        GatewayCommand::Subscribe { token } => {
            let text = match token.strip_prefix('@') {
                Some(path) => {
                    std::fs::read_to_string(path).map_err(|e| Failure::io(Path::new(path), e))?
                }
                None => token,
            };
            let gateway = Gateway::open(home).map_err(fail)?;
            let subscribed = gateway.subscribe(&text).map_err(fail)?;
            println!(
                "{} channel {} of vendor {:?} (root key {})",
                if subscribed.new {
                    "subscribed to"
                } else {
                    "token replaced for"
                },
                subscribed.channel,
                subscribed.vendor,
                subscribed.vendor_key
            );
            Ok(())
        }
        GatewayCommand::Device(GatewayDeviceCommand::Add {
            id,
            mac,
            model,
            hardware,
            out,
            group,
        }) => {
            let gateway = Gateway::open(home).map_err(fail)?;
            if group
                .as_deref()
                .is_some_and(|g| !fwledger_gateway::rollout::valid_group(g))
            {
                return Err(fail(format!(
                    "group {group:?}: expected 1-64 of A-Z a-z 0-9 . _ -"
                )));
            }
            let device_id = id.clone();
            let bundle = gateway
                .add_device(&NewDevice {
                    id,
                    mac,
                    model,
                    hardware,
                })
                .map_err(fail)?;
            if let Some(group) = &group {
                gateway
                    .registry()
                    .set_device_group(&device_id, Some(group))
                    .map_err(fail)?;
            }
            let pairing = gateway.write_bundle(&bundle, &out).map_err(fail)?;
            println!(
                "device {} added ({} {})",
                bundle.device_id, bundle.model, bundle.hardware
            );
            println!(
                "bundle: {} (keep it secret: it holds the device key)",
                out.display()
            );
            println!("{}", pairing.qr_text().map_err(fail)?);
            println!("pairing: {}", pairing.to_json());
            Ok(())
        }
        GatewayCommand::Device(GatewayDeviceCommand::Group { id, group }) => {
            let gateway = Gateway::open(home).map_err(fail)?;
            gateway
                .registry()
                .set_device_group(&id, group.as_deref())
                .map_err(fail)?;
            match group {
                Some(group) => println!("device {id} is in group {group}"),
                None => println!("device {id} is in no group"),
            }
            Ok(())
        }
        GatewayCommand::Rollout(command) => {
            let gateway = Gateway::open(home).map_err(fail)?;
            crate::rollout::run(gateway.registry(), command)
        }
        GatewayCommand::Device(GatewayDeviceCommand::List { json: as_json }) => {
            let gateway = Gateway::open(home).map_err(fail)?;
            let devices = gateway.registry().devices().map_err(fail)?;
            if as_json {
                println!("{}", json(&devices)?);
            } else {
                for d in devices {
                    println!(
                        "{:<20} {:<17} {:<10} {:<8} {:<10} {:<7} {}",
                        d.id,
                        d.mac,
                        d.model,
                        d.hardware,
                        d.version.as_deref().unwrap_or("-"),
                        if d.online { "online" } else { "offline" },
                        d.group.as_deref().unwrap_or("-")
                    );
                }
            }
            Ok(())
        }
        GatewayCommand::Run {
            http,
            broker,
            mosquitto,
            max_backoff,
            reconcile,
        } => {
            let gateway = Gateway::open(home).map_err(fail)?;
            let mut options = RunOptions::new(backends()?);
            options.http = http;
            options.broker = broker;
            options.mosquitto = mosquitto;
            options.timing.max_backoff = crate::util::parse_duration(&max_backoff)?;
            options.timing.min_backoff = options.timing.min_backoff.min(options.timing.max_backoff);
            options.timing.reconcile = crate::util::parse_duration(&reconcile)?;
            let running = gateway.start(options).await.map_err(fail)?;
            println!(
                "gateway running: broker {}, downloads {} (Ctrl-C to stop)",
                running.mqtt_url(),
                running.http_url()
            );
            let registry = running.registry().clone();
            tokio::select! {
                _ = shutdown_signal() => {}
                _ = print_events(&registry) => {}
            }
            eprintln!("stopping…");
            running.stop().await;
            Ok(())
        }
        GatewayCommand::Password => {
            let gateway = Gateway::open(home).map_err(fail)?;
            let admin = gateway.reset_admin_password().map_err(fail)?;
            println!(
                "web UI user {}, new password: {}",
                admin.user, admin.password
            );
            println!("(shown once; stored only as an Argon2id hash; logged-in web sessions end)");
            Ok(())
        }
        GatewayCommand::Status { json: as_json } => {
            let gateway = Gateway::open(home).map_err(fail)?;
            status(gateway.registry(), as_json)
        }
    }
}

fn init(home: &Path, args: GatewayInitArgs) -> Result<(), Failure> {
    let options = InitOptions {
        bind: Some(args.bind),
        host: args.host,
        mqtt_port: Some(args.mqtt_port),
        https_port: Some(args.https_port),
        sntp_port: Some(args.sntp_port),
    };
    let gateway = Gateway::init(home, &options).map_err(fail)?;
    let config = gateway.config();
    println!("gateway created in {}", gateway.paths().root.display());
    println!("  broker     {}", config.mqtt_url());
    println!("  downloads  {}", config.http_url());
    println!("  CA         {}", gateway.paths().ca_cert().display());
    println!(
        "  mosquitto  {}",
        gateway.paths().mosquitto_conf().display()
    );
    let admin = gateway.reset_admin_password().map_err(fail)?;
    println!(
        "  web UI     {}  user {}  password {}",
        config.http_url(),
        admin.user,
        admin.password
    );
    println!("             (shown once; `fwledger gateway password` sets a new one)");
    println!(
        "  API token  {}",
        fwledger_gateway::web::auth::api_token_file(gateway.paths()).display()
    );
    println!("next: fwledger gateway subscribe TOKEN; fwledger gateway device add …");
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Prints the event log as it grows (never returns).
async fn print_events(registry: &Registry) {
    let mut last = 0;
    loop {
        if let Ok(mut events) = registry.events_after(last, 1000) {
            events.reverse();
            for e in events {
                println!("[{}] {:<7} {}", e.time, e.level, e.message);
                last = e.id;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn status(registry: &Registry, as_json: bool) -> Result<(), Failure> {
    let channels = registry.channels().map_err(fail)?;
    let releases = registry.releases().map_err(fail)?;
    let devices = registry.devices().map_err(fail)?;
    let updates = registry.updates().map_err(fail)?;
    let events = registry.events(20).map_err(fail)?;
    if as_json {
        let all = serde_json::json!({
            "channels": channels,
            "releases": releases,
            "devices": devices,
            "updates": updates,
            "events": events,
        });
        println!("{}", json(&all)?);
        return Ok(());
    }
    println!("channels:");
    for c in &channels {
        println!(
            "  {:<16} {}  seq {}  {}{}",
            c.vendor,
            &c.id[..16.min(c.id.len())],
            c.next_seq,
            c.freshness,
            c.error
                .as_deref()
                .map(|e| format!("  error: {e}"))
                .unwrap_or_default()
        );
    }
    println!("releases:");
    for r in &releases {
        println!(
            "  #{:<4} {:<10} {:<10} security {:<3} {:>10} B  {}",
            r.id, r.model, r.version, r.security_version, r.size, r.state
        );
    }
    println!("devices:");
    for d in &devices {
        let update = updates
            .iter()
            .find(|u| u.device_id == d.id)
            .map(|u| format!("{} {}", u.version, u.state))
            .unwrap_or_default();
        println!(
            "  {:<20} {:<10} {:<8} {:<10} {:<8} {}",
            d.id,
            d.model,
            d.hardware,
            d.version.as_deref().unwrap_or("-"),
            if d.online { "online" } else { "offline" },
            update
        );
    }
    println!("recent events:");
    for e in events.iter().rev() {
        println!("  [{}] {:<7} {}", e.time, e.level, e.message);
    }
    Ok(())
}

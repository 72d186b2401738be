//! `fwledger device run`: one simulated device (file-backed A/B slots) against a gateway.

use std::sync::Arc;

use fwledger_device::host::{self, DeviceConfig};
use fwledger_device::Shutdown;
use fwledger_link::{Bundle, DeviceStatus};

use crate::args::{DeviceCommand, SwarmEngine};
use crate::swarm;
use crate::util::{parse_duration, Failure};

/// Runs a device command.
pub async fn run(command: DeviceCommand) -> Result<(), Failure> {
    let (bundle, state, factory_version, check_interval, json) = match command {
        DeviceCommand::Run {
            bundle,
            state,
            factory_version,
            check_interval,
            json,
        } => (bundle, state, factory_version, check_interval, json),
        DeviceCommand::Swarm {
            bundles,
            state,
            engine,
            download_concurrency,
            factory_version,
            until_version,
            timeout,
            check_interval,
            progress,
            connect_concurrency,
        } => {
            return swarm(
                &bundles,
                &SwarmOptions {
                    engine,
                    state,
                    download_concurrency,
                    factory_version,
                    until: until_version,
                    timeout: parse_duration(&timeout)?,
                    check_interval: parse_duration(&check_interval)?,
                    progress,
                    connect_concurrency: connect_concurrency.max(1),
                },
            )
            .await
        }
    };
    let bytes = std::fs::read(&bundle).map_err(|e| Failure::io(&bundle, e))?;
    let bundle = Bundle::from_json(&bytes).map_err(|e| Failure::Message(e.to_string()))?;
    let mut config = DeviceConfig::new(bundle, state)
        .with_env_faults()
        .map_err(|e| Failure::Message(e.to_string()))?;
    config.factory_version = factory_version;
    config.settings.check_interval = parse_duration(&check_interval)?;
    config.observer = Some(Arc::new(move |id: &str, status: &DeviceStatus| {
        if json {
            if let Ok(line) = serde_json::to_string(status) {
                println!("{line}");
            }
        } else {
            println!("{id}: {}", describe(status));
        }
    }));
    eprintln!(
        "device {} ({} {}) → {}; state in {}",
        config.bundle.device_id,
        config.bundle.model,
        config.bundle.hardware,
        config.bundle.mqtt_url,
        config.state_dir.display()
    );

    let shutdown = Shutdown::new();
    let device =
        host::spawn(config, shutdown.clone()).map_err(|e| Failure::Message(e.to_string()))?;
    let stop = shutdown.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop.trigger();
        }
    });
    let outcome = tokio::task::spawn_blocking(move || device.join())
        .await
        .map_err(|e| Failure::Message(format!("device task: {e}")))?;
    match outcome {
        Ok(result) => result.map_err(|e| Failure::Message(e.to_string())),
        Err(_) => Err(Failure::Message("the device thread panicked".into())),
    }
}

fn unix_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// Options of `device swarm`.
struct SwarmOptions {
    engine: SwarmEngine,
    state: Option<std::path::PathBuf>,
    download_concurrency: usize,
    factory_version: String,
    until: Option<String>,
    timeout: std::time::Duration,
    check_interval: std::time::Duration,
    progress: bool,
    connect_concurrency: usize,
}

/// Runs one device per bundle in `dir`, printing `online N/N at MS` once every device has
/// reported and, with `until`, `confirmed VERSION N/N at MS` (Unix milliseconds) before exiting;
/// without `until` it runs until Ctrl-C. With `progress`, a `progress MS reported N downloading N
/// confirmed N failed N` line every second; at the end, `failures N`: how many failed or
/// rolled-back reports the devices sent (an update that failed and was retried counts too).
async fn swarm(dir: &std::path::Path, options: &SwarmOptions) -> Result<(), Failure> {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use fwledger_link::UpdateState;

    let entries = std::fs::read_dir(dir).map_err(|e| Failure::io(dir, e))?;
    let mut bundles = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Failure::io(dir, e))?.path();
        if !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|e| Failure::io(&path, e))?;
        let bundle = Bundle::from_json(&bytes)
            .map_err(|e| Failure::Message(format!("{}: {e}", path.display())))?;
        bundles.push(bundle);
    }
    let total = bundles.len();
    if total == 0 {
        return Err(Failure::Message(format!("no bundles in {}", dir.display())));
    }
    let latest: Arc<Mutex<HashMap<String, DeviceStatus>>> = Arc::default();
    let failures = Arc::new(AtomicUsize::new(0));
    // One observer for both engines: the latest report of every device, failures counted (and
    // the first few reasons printed).
    let observer: swarm::Observer = {
        let seen = latest.clone();
        let failed = failures.clone();
        Arc::new(move |id: &str, status: &DeviceStatus| {
            if matches!(status.state, UpdateState::Failed | UpdateState::RolledBack) {
                let n = failed.fetch_add(1, Ordering::Relaxed);
                if n < 20 {
                    println!(
                        "failed {id} {}: {}",
                        status.release.as_deref().unwrap_or("-"),
                        status.reason.as_deref().unwrap_or("-")
                    );
                }
            }
            if let Ok(mut map) = seen.lock() {
                map.insert(id.to_string(), status.clone());
            }
        })
    };
    let shared = swarm::Shared::new(
        swarm::Settings {
            factory_version: options.factory_version.clone(),
            check_interval: options.check_interval,
            keep_alive: std::time::Duration::from_secs(30),
            retry_after: std::time::Duration::from_secs(10),
            read_timeout: std::time::Duration::from_secs(15),
        },
        options.download_concurrency,
        observer.clone(),
    );
    let state = match (options.engine, &options.state) {
        (SwarmEngine::Agent, None) => {
            return Err(Failure::Message(
                "--engine agent needs --state DIR".to_string(),
            ))
        }
        (_, state) => state.clone().unwrap_or_default(),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let until = options.until.as_deref();
    let is_done = |s: &DeviceStatus| {
        until.is_some_and(|v| s.state == UpdateState::Confirmed && s.version == v)
    };
    // (reported, downloading, done, failed)
    let counts = || {
        latest
            .lock()
            .map(|m| {
                let mut c = (m.len(), 0, 0, 0);
                for s in m.values() {
                    match s.state {
                        UpdateState::Downloading | UpdateState::Installing => c.1 += 1,
                        UpdateState::Failed | UpdateState::RolledBack => c.3 += 1,
                        _ => {}
                    }
                    if is_done(s) {
                        c.2 += 1;
                    }
                }
                c
            })
            .unwrap_or_default()
    };
    let started = std::time::Instant::now();
    let deadline = started + options.timeout;
    let mut next_progress = started;
    let mut progress = |(reported, downloading, done, failed): (usize, usize, usize, usize)| {
        if options.progress && std::time::Instant::now() >= next_progress {
            println!(
                "progress {} reported {reported} downloading {downloading} confirmed {done} failed {failed}",
                unix_ms()
            );
            next_progress += std::time::Duration::from_secs(1);
        }
    };
    let shutdown = Shutdown::new();
    let mut handles = Vec::with_capacity(total);
    let mut tasks = Vec::with_capacity(total);
    for bundle in bundles {
        // A connect storm of thousands of TLS handshakes on a few cores times out and retries
        // over and over; like a real fleet's start-up jitter, at most `connect_concurrency`
        // devices are between start and their first report at once.
        loop {
            let reported = latest.lock().map(|m| m.len()).unwrap_or(0);
            if handles.len() + tasks.len() < reported + options.connect_concurrency {
                break;
            }
            if std::time::Instant::now() > deadline {
                shutdown.trigger();
                let _ = stop_tx.send(true);
                return Err(Failure::Message(format!(
                    "timed out while starting: {reported} of {total} devices reported"
                )));
            }
            progress(counts());
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        if options.engine == SwarmEngine::Async {
            match swarm::prepare(bundle, &shared) {
                Ok(device) => tasks.push(tokio::spawn(swarm::run(
                    device,
                    shared.clone(),
                    stop_rx.clone(),
                ))),
                Err(e) => {
                    let _ = stop_tx.send(true);
                    return Err(Failure::Message(e));
                }
            }
            continue;
        }
        let state_dir = state.join(&bundle.device_id);
        let mut config = DeviceConfig::new(bundle, state_dir);
        config.factory_version = options.factory_version.clone();
        config.settings.check_interval = options.check_interval;
        let observer = observer.clone();
        config.observer = Some(Arc::new(move |id: &str, status: &DeviceStatus| {
            observer(id, status)
        }));
        match host::spawn(config, shutdown.clone()) {
            Ok(handle) => handles.push(handle),
            Err(e) => {
                shutdown.trigger();
                return Err(Failure::Message(e.to_string()));
            }
        }
    }
    let mut online_reported = false;
    let result = loop {
        let (reported, downloading, done, failed) = counts();
        progress((reported, downloading, done, failed));
        if !online_reported && reported == total {
            println!("online {total}/{total} at {}", unix_ms());
            online_reported = true;
            if until.is_none() {
                let _ = tokio::signal::ctrl_c().await;
                break Ok(());
            }
        }
        if let Some(version) = until {
            if done == total {
                println!("confirmed {version} {total}/{total} at {}", unix_ms());
                break Ok(());
            }
        }
        if std::time::Instant::now() > deadline {
            break Err(Failure::Message(format!(
                "timed out: {reported} of {total} devices reported, {done} done"
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    println!("failures {}", failures.load(Ordering::Relaxed));
    shutdown.trigger();
    let _ = stop_tx.send(true);
    for task in tasks {
        let _ = task.await;
    }
    for handle in handles {
        let _ = tokio::task::spawn_blocking(move || handle.join()).await;
    }
    result
}

fn describe(status: &DeviceStatus) -> String {
    let state = serde_json::to_value(status.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let mut line = format!(
        "{state} — running {} (security version {})",
        status.version, status.security_version
    );
    if let Some(release) = &status.release {
        line.push_str(&format!(", release {release}"));
    }
    if let Some(progress) = status.progress {
        line.push_str(&format!(", {progress} bytes held"));
    }
    if let Some(reason) = &status.reason {
        line.push_str(&format!(": {reason}"));
    }
    line
}

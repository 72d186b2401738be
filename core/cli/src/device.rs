//! `fwledger device run`: one simulated device (file-backed A/B slots) against a gateway.

use std::sync::Arc;

use fwledger_device::host::{self, DeviceConfig};
use fwledger_device::Shutdown;
use fwledger_link::{Bundle, DeviceStatus};

use crate::args::DeviceCommand;
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
            factory_version,
            until_version,
            timeout,
        } => {
            return swarm(
                &bundles,
                &state,
                &factory_version,
                until_version.as_deref(),
                parse_duration(&timeout)?,
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

/// Runs one device per bundle in `dir`, printing `online N/N at MS` and, with `until`,
/// `confirmed VERSION N/N at MS` (Unix milliseconds) before exiting; without `until` it runs
/// until Ctrl-C.
async fn swarm(
    dir: &std::path::Path,
    state: &std::path::Path,
    factory_version: &str,
    until: Option<&str>,
    timeout: std::time::Duration,
) -> Result<(), Failure> {
    use std::collections::HashMap;
    use std::sync::Mutex;

    let entries = std::fs::read_dir(dir).map_err(|e| Failure::io(dir, e))?;
    let mut configs = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Failure::io(dir, e))?.path();
        if !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|e| Failure::io(&path, e))?;
        let bundle = Bundle::from_json(&bytes)
            .map_err(|e| Failure::Message(format!("{}: {e}", path.display())))?;
        let state_dir = state.join(&bundle.device_id);
        let mut config = DeviceConfig::new(bundle, state_dir);
        config.factory_version = factory_version.to_string();
        configs.push(config);
    }
    let total = configs.len();
    if total == 0 {
        return Err(Failure::Message(format!("no bundles in {}", dir.display())));
    }
    let latest: Arc<Mutex<HashMap<String, DeviceStatus>>> = Arc::default();
    let shutdown = Shutdown::new();
    let mut handles = Vec::with_capacity(total);
    for mut config in configs {
        let seen = latest.clone();
        config.observer = Some(Arc::new(move |id: &str, status: &DeviceStatus| {
            if let Ok(mut map) = seen.lock() {
                map.insert(id.to_string(), status.clone());
            }
        }));
        handles.push(
            host::spawn(config, shutdown.clone()).map_err(|e| Failure::Message(e.to_string()))?,
        );
    }
    let count = |f: &dyn Fn(&DeviceStatus) -> bool| {
        latest
            .lock()
            .map(|m| m.values().filter(|s| f(s)).count())
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + timeout;
    let mut online_reported = false;
    let result = loop {
        if !online_reported && count(&|_| true) == total {
            println!("online {total}/{total} at {}", unix_ms());
            online_reported = true;
            if until.is_none() {
                let _ = tokio::signal::ctrl_c().await;
                break Ok(());
            }
        }
        if let Some(version) = until {
            let done = count(&|s| {
                s.state == fwledger_link::UpdateState::Confirmed && s.version == version
            });
            if done == total {
                println!("confirmed {version} {total}/{total} at {}", unix_ms());
                break Ok(());
            }
        }
        if std::time::Instant::now() > deadline {
            break Err(Failure::Message(format!(
                "timed out: {} of {total} devices reported",
                count(&|_| true)
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    shutdown.trigger();
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

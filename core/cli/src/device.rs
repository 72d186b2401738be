//! `fwledger device run`: one simulated device (file-backed A/B slots) against a gateway.

use std::sync::Arc;

use fwledger_device::host::{self, DeviceConfig};
use fwledger_device::Shutdown;
use fwledger_link::{Bundle, DeviceStatus};

use crate::args::DeviceCommand;
use crate::util::{parse_duration, Failure};

/// Runs a device command.
pub async fn run(command: DeviceCommand) -> Result<(), Failure> {
    let DeviceCommand::Run {
        bundle,
        state,
        factory_version,
        check_interval,
        json,
    } = command;
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

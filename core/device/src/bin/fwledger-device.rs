//! `fwledger-device --bundle BUNDLE --state DIR [--factory-version V]`: one simulated device,
//! as `fwledger device run` (kept small for crash tests; `FWLEDGER_DEVICE_CRASH_AT` applies).
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::Arc;

use fwledger_device::host::{self, DeviceConfig};
use fwledger_device::Shutdown;
use fwledger_link::Bundle;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut bundle, mut state, mut factory) = (None, None, None);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--bundle" => bundle = Some(value()?),
            "--state" => state = Some(value()?),
            "--factory-version" => factory = Some(value()?),
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let usage = "usage: fwledger-device --bundle BUNDLE --state DIR [--factory-version V]";
    let bundle = Bundle::from_json(&std::fs::read(bundle.ok_or(usage)?)?)?;
    let mut config = DeviceConfig::new(bundle, state.ok_or(usage)?).with_env_faults()?;
    if let Some(v) = factory {
        config.factory_version = v;
    }
    config.observer = Some(Arc::new(|id, status| {
        if let Ok(line) = serde_json::to_string(status) {
            println!("{id} {line}");
        }
    }));
    host::run(&config, &Shutdown::new())?;
    Ok(())
}

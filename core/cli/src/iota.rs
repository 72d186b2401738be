//! IOTA ledger options of the CLI: gas modes merged into the ledger URL, the account, and the
//! publish dry run. Without the `iota` feature, `iota+…` ledger URLs are refused.

use std::path::Path;

use fwledger::{ReleaseSpec, Vendor};

use crate::args::{Cli, PublishArgs};
use crate::util::{self, parse_duration, Failure};

/// The ledger URL with the `--iota-gas…` options added as URL parameters (IOTA URLs only).
pub fn ledger_url(cli: &Cli) -> String {
    let url = cli.ledger.trim();
    if !url.starts_with("iota+") {
        return url.to_string();
    }
    let mut params: Vec<(&str, String)> = Vec::new();
    if let Some(mode) = &cli.iota_gas {
        params.push(("gas", mode.clone()));
    }
    if let Some(key) = &cli.iota_sponsor_key {
        params.push(("sponsor_key", key.display().to_string()));
    }
    if let Some(station) = &cli.iota_gas_station {
        params.push(("gas_station", station.clone()));
    }
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    with_params(url, &params)
}

#[cfg(feature = "iota")]
fn with_params(url: &str, params: &[(&str, &str)]) -> String {
    fwledger_iota::config::with_params(url, params)
}

#[cfg(not(feature = "iota"))]
fn with_params(url: &str, _params: &[(&str, &str)]) -> String {
    url.to_string()
}

/// `vendor iota-account`.
pub fn account(home: &Path, ledger: &str) -> Result<(), Failure> {
    #[cfg(feature = "iota")]
    {
        if !ledger.starts_with("iota+") {
            return Err(Failure::Message(format!(
                "the ledger {ledger:?} is not an IOTA ledger (iota+https://…)"
            )));
        }
        let iota = fwledger_iota::IotaLedger::open(ledger, home)
            .map_err(|e| Failure::Message(e.to_string()))?;
        let config = iota.config();
        println!("address  {}", iota.sender());
        println!("network  {}", config.network.name());
        println!("package  {}", config.package);
        let reader = ledger.split_once('?').map_or(ledger, |(base, _)| base);
        let mut reader =
            fwledger_iota::config::with_params(reader, &[("sender", &iota.sender().to_string())]);
        if config.network == fwledger_iota::Network::Custom {
            reader = fwledger_iota::config::with_params(
                &reader,
                &[
                    ("network", "custom"),
                    ("package", &config.package.to_string()),
                ],
            );
        }
        println!("gateway ledger URL  {reader}");
        if let Some(faucet) = config.network.faucet() {
            println!("faucet   {faucet}");
        }
        Ok(())
    }
    #[cfg(not(feature = "iota"))]
    {
        let _ = home;
        Err(Failure::Message(format!(
            "this fwledger was built without the IOTA ledger (feature `iota`); cannot use {ledger}"
        )))
    }
}

/// `vendor publish --dry-run`: stage the release, build its channel message and price it.
pub async fn publish_dry_run(
    home: &Path,
    ledger: &str,
    vendor: &mut Vendor,
    args: PublishArgs,
) -> Result<(), Failure> {
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
    let prepared = vendor.prepare(&args.file, &spec, None).await?;
    let (seq, message) = vendor.preview_announce(&prepared).await?;
    let cost = estimate(home, ledger, vendor, seq, &message).await?;
    if args.json {
        let value = serde_json::json!({
            "dry_run": true,
            "seq": seq,
            "message_size": message.len(),
            "cost": cost,
            "manifest": prepared.manifest_path,
        });
        println!("{}", util::to_json(&value)?);
    } else {
        println!(
            "dry run: {} {} would be announced at seq {seq} ({} bytes); nothing was published",
            spec.model,
            spec.version,
            message.len()
        );
        match &cost {
            Some(cost) => println!("  cost      {}", cost["text"].as_str().unwrap_or("?")),
            None => println!("  cost      none (the {ledger} ledger charges nothing)"),
        }
        println!("  manifest  {} (staged)", prepared.manifest_path.display());
    }
    Ok(())
}

#[cfg(feature = "iota")]
async fn estimate(
    home: &Path,
    ledger: &str,
    vendor: &Vendor,
    seq: u64,
    message: &[u8],
) -> Result<Option<serde_json::Value>, Failure> {
    if !ledger.starts_with("iota+") {
        return Ok(None);
    }
    let iota = fwledger_iota::IotaLedger::open(ledger, home)
        .map_err(|e| Failure::Message(e.to_string()))?;
    let cost = iota
        .estimate(vendor.channel(), seq, message)
        .await
        .map_err(|e| Failure::Message(e.to_string()))?;
    Ok(Some(serde_json::json!({
        "text": cost.to_string(),
        "net_nanos": cost.net().to_string(),
        "computation_nanos": cost.gas.computation,
        "storage_nanos": cost.gas.storage,
        "rebate_nanos": cost.gas.rebate,
        "gas_price": cost.gas_price,
        "budget_nanos": cost.budget,
    })))
}

#[cfg(not(feature = "iota"))]
async fn estimate(
    _home: &Path,
    _ledger: &str,
    _vendor: &Vendor,
    _seq: u64,
    _message: &[u8],
) -> Result<Option<serde_json::Value>, Failure> {
    Ok(None)
}

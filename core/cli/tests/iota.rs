//! The `fwledger` binary with `--ledger iota+http://127.0.0.1:PORT/…`, against the loopback
//! IOTA GraphQL **simulator** (no IOTA node can run here): the IOTA account, no-gas errors,
//! `vendor publish --dry-run`, publish, a gateway-side `channel read`, sponsor and gas-station gas.
#![cfg(feature = "iota")]

mod common;

use std::path::Path;
use std::process::Output;
use std::str::FromStr;

use fwledger_iota::simulator::Simulator;
use fwledger_iota::{config, IotaKey};

fn iota(home: &Path, ledger: &str, args: &[&str]) -> Output {
    common::fwledger(home)
        .env_remove("FWLEDGER_IOTA_GAS")
        .env_remove("FWLEDGER_IOTA_SPONSOR_KEY")
        .env_remove("FWLEDGER_IOTA_GAS_STATION")
        .arg("--ledger")
        .arg(ledger)
        .args(args)
        .output()
        .unwrap()
}

fn iota_ok(home: &Path, ledger: &str, args: &[&str]) -> String {
    let out = iota(home, ledger, args);
    assert!(
        out.status.success(),
        "fwledger {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn publish_args<'a>(image: &'a str, version: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "vendor",
        "publish",
        image,
        "--model",
        "lamp",
        "--hw",
        "rev-b",
        "--version",
        version,
        "--json",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn vendor_publishes_and_a_gateway_reads_over_iota() {
    let package = iota_sdk::types::ObjectId::from_str(config::TESTNET_PACKAGE).unwrap();
    let sim = Simulator::start(package, Some(fwledger_iota::IOTA_GRAPHQL_SCHEMA)).unwrap();
    let url = sim.ledger_url();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("vendor");
    let image = dir.path().join("fw.bin");
    std::fs::write(&image, vec![0x5a; 100_000]).unwrap();
    let image = image.to_str().unwrap();

    // The IOTA account and the URL gateways use.
    let account = iota_ok(&home, &url, &["vendor", "iota-account"]);
    let address = IotaKey::load_home(&home).unwrap().unwrap().address();
    assert!(account.contains(&address.to_string()), "{account}");
    let gateway_url = account
        .lines()
        .find_map(|l| l.strip_prefix("gateway ledger URL"))
        .unwrap()
        .trim()
        .to_string();
    assert!(gateway_url.contains("sender="), "{gateway_url}");

    iota_ok(&home, &url, &["vendor", "init", "--name", "acme"]);
    // No gas yet: a clear error, nothing published.
    let out = iota(&home, &url, &publish_args(image, "1.0.0", &[]));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no gas coins") && stderr.contains(&address.to_string()),
        "{stderr}"
    );
    assert_eq!(sim.executed(), 0);

    sim.fund(address, 5_000_000_000);
    // Dry run: the cost, and still nothing published.
    let dry: serde_json::Value = serde_json::from_str(&iota_ok(
        &home,
        &url,
        &publish_args(image, "1.0.0", &["--dry-run"]),
    ))
    .unwrap();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["seq"], 0);
    let computation = dry["cost"]["computation_nanos"].as_u64().unwrap();
    assert_eq!(computation, fwledger_iota::simulator::computation_cost());
    assert!(dry["cost"]["text"].as_str().unwrap().contains("IOTA"));
    assert_eq!(sim.executed(), 0);
    let text = iota_ok(&home, &url, &{
        let mut a = publish_args(image, "1.0.0", &["--dry-run"]);
        a.retain(|x| *x != "--json");
        a
    });
    assert!(
        text.contains("nothing was published") && text.contains("cost"),
        "{text}"
    );

    let release: serde_json::Value =
        serde_json::from_str(&iota_ok(&home, &url, &publish_args(image, "1.0.0", &[]))).unwrap();
    assert_eq!(release["seq"], 0);
    assert_eq!(sim.executed(), 1);

    // A sponsor pays for the next one (CLI flags merged into the URL).
    let sponsor = IotaKey::generate();
    let sponsor_file = dir.path().join("sponsor.key");
    sponsor.save(&sponsor_file).unwrap();
    sim.fund(sponsor.address(), 1_000_000_000);
    let vendor_balance = sim.balance(address);
    std::fs::write(image, vec![0x5b; 100_000]).unwrap();
    iota_ok(
        &home,
        &url,
        &publish_args(
            image,
            "1.1.0",
            &[
                "--iota-gas",
                "sponsor",
                "--iota-sponsor-key",
                sponsor_file.to_str().unwrap(),
            ],
        ),
    );
    assert_eq!(sim.balance(address), vendor_balance, "the sponsor paid");
    assert!(sim.balance(sponsor.address()) < 1_000_000_000);

    // And a gas station for the third.
    sim.fund_station(1, 1_000_000_000);
    std::fs::write(image, vec![0x5c; 100_000]).unwrap();
    let station = sim.gas_station_url();
    iota_ok(
        &home,
        &url,
        &publish_args(
            image,
            "1.2.0",
            &["--iota-gas", "station", "--iota-gas-station", &station],
        ),
    );
    assert_eq!(sim.balance(address), vendor_balance, "the station paid");

    // A gateway elsewhere reads the channel by the vendor's address.
    let token = iota_ok(&home, &url, &["vendor", "token", "--gateway", "hub"])
        .trim()
        .to_string();
    let gateway_home = dir.path().join("gateway");
    let read: serde_json::Value = serde_json::from_str(&iota_ok(
        &gateway_home,
        &gateway_url,
        &["channel", "read", &token, "--json"],
    ))
    .unwrap();
    let text = read.to_string();
    for version in ["1.0.0", "1.1.0", "1.2.0"] {
        assert!(text.contains(version), "{version} missing from {text}");
    }
    assert!(!IotaKey::path(&gateway_home).exists());
}

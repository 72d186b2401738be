//! `Backends::open` with an `iota+http://…` ledger URL against the loopback IOTA GraphQL
//! **simulator** (no IOTA node can run here): a vendor publishes, a gateway-side subscription
//! reads and then follows the channel.
#![cfg(feature = "iota")]

use std::str::FromStr;
use std::time::Duration;

use fwledger::proto::channel::{Event, Token};
use fwledger::{Backends, ChannelItem, ReleaseSpec, Subscription, Vendor};
use fwledger_iota::simulator::Simulator;
use fwledger_iota::{config, IotaKey};

fn release_version(item: Option<ChannelItem>) -> String {
    match item {
        Some(ChannelItem::Message(d)) => match d.event {
            Event::Release { verified, .. } => verified.manifest.version.to_string(),
            other => panic!("expected a release, got {other:?}"),
        },
        other => panic!("expected a message, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_then_follow_over_the_iota_backend() {
    let package = iota_sdk::types::ObjectId::from_str(config::DEVNET_PACKAGE).unwrap();
    let sim = Simulator::start(package, Some(fwledger_iota::IOTA_GRAPHQL_SCHEMA)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let vendor_home = dir.path().join("vendor");
    let key = IotaKey::load_or_create(&vendor_home).unwrap();
    sim.fund(key.address(), 10_000_000_000);

    let backends = Backends::open(&vendor_home, &sim.ledger_url(), "embedded").unwrap();
    let mut vendor = Vendor::init(&vendor_home, "acme", &backends).unwrap();
    let image = dir.path().join("fw.bin");
    std::fs::write(&image, vec![0x42; 3000]).unwrap();
    vendor
        .publish(&image, &ReleaseSpec::new("lamp", &["rev-b"], "1.0.0"), None)
        .await
        .unwrap();

    // The gateway reads the vendor's IOTA address's messages and has no IOTA key itself.
    let gateway_home = dir.path().join("gateway");
    let url = config::with_params(&sim.ledger_url(), &[("sender", &key.address().to_string())]);
    let gateway = Backends::open(&gateway_home, &url, "embedded").unwrap();
    assert!(!IotaKey::path(&gateway_home).exists());
    let token = Token::from_text(&vendor.token(Some("hub")).unwrap()).unwrap();
    let mut subscription = Subscription::new(&token, gateway.ledger.clone()).unwrap();
    let items = subscription.drain().await.unwrap();
    let versions: Vec<String> = items
        .into_iter()
        .filter_map(|item| match item {
            ChannelItem::Message(d) => match d.event {
                Event::Release { verified, .. } => Some(verified.manifest.version.to_string()),
                _ => None,
            },
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(versions, vec!["1.0.0".to_string()]);

    // Live: the subscription waits; the vendor publishes the next release.
    let follow = tokio::spawn(async move {
        let item = subscription
            .next(Some(Duration::from_secs(20)))
            .await
            .unwrap();
        release_version(item)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::write(&image, vec![0x43; 3000]).unwrap();
    vendor
        .publish(&image, &ReleaseSpec::new("lamp", &["rev-b"], "1.1.0"), None)
        .await
        .unwrap();
    assert_eq!(follow.await.unwrap(), "1.1.0");
    // Everything went through the simulated chain: no SQLite ledger was created.
    assert!(!vendor_home.join("ledger.sqlite").exists());
    assert!(sim.executed() >= 2);
}

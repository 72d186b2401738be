//! Opt-in test against a real IOTA network: skipped (and says so) unless `FWLEDGER_IOTA_URL`
//! names a ledger URL, e.g.
//!
//! ```text
//! FWLEDGER_IOTA_URL='iota+https://api.devnet.iota.cafe/graphql?network=devnet' \
//!   cargo test -p fwledger-iota --test live -- --nocapture
//! ```
//!
//! The publishing account is `$FWLEDGER_IOTA_HOME/iota/ed25519.key` (default: a fresh key in a
//! temporary home). On devnet/testnet with `FWLEDGER_IOTA_FAUCET=1` it asks the network's
//! faucet for gas first; otherwise fund the printed address. Then it runs the full flow:
//! publish three messages on a fresh random channel → read them back → follow a fourth with a
//! second, key-less reader that names the writer's address.

use std::time::Duration;

use fwledger_iota::{config, IotaLedger, Timing};
use fwledger_ledger::Ledger;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_publish_read_follow() {
    let Some(url) = std::env::var("FWLEDGER_IOTA_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("live IOTA test skipped: FWLEDGER_IOTA_URL is not set");
        return;
    };
    let temp = tempfile::tempdir().unwrap();
    let home = std::env::var_os("FWLEDGER_IOTA_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| temp.path().to_path_buf());
    let writer = IotaLedger::open_with(&url, &home, Timing::default()).unwrap();
    eprintln!(
        "writer address {} on {}",
        writer.sender(),
        writer.config().network.name()
    );
    if std::env::var("FWLEDGER_IOTA_FAUCET").as_deref() == Ok("1") {
        let faucet = writer
            .config()
            .network
            .faucet()
            .expect("FWLEDGER_IOTA_FAUCET=1 needs devnet or testnet");
        let client = fwledger_iota::rpc::http_client(Default::default()).unwrap();
        let body = serde_json::json!({ "FixedAmountRequest": { "recipient": writer.sender().to_string() } });
        let answer = client
            .post(faucet)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        eprintln!("faucet answered {}", answer.status());
        assert!(answer.status().is_success());
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    let mut channel = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut channel);
    let cost = writer
        .estimate(&channel, 0, b"fwledger live test 0")
        .await
        .unwrap();
    eprintln!("one publish costs {cost}");
    for seq in 0..3u64 {
        writer
            .append(
                &channel,
                seq,
                format!("fwledger live test {seq}").as_bytes(),
            )
            .await
            .unwrap();
    }
    let read = writer.read(&channel, 0, 10).await.unwrap();
    assert_eq!(read.len(), 3);
    let reader_home = tempfile::tempdir().unwrap();
    let base = url.split_once('?').map_or(url.as_str(), |(b, _)| b);
    let mut reader_url = config::with_params(base, &[("sender", &writer.sender().to_string())]);
    if let Some((_, query)) = url.split_once('?') {
        for pair in query
            .split('&')
            .filter(|p| p.starts_with("network=") || p.starts_with("package="))
        {
            reader_url.push('&');
            reader_url.push_str(pair);
        }
    }
    let reader = IotaLedger::open(&reader_url, reader_home.path()).unwrap();
    assert_eq!(reader.next_seq(&channel).await.unwrap(), 3);
    let follow = tokio::spawn(async move {
        assert!(reader
            .wait(&channel, 3, Duration::from_secs(120))
            .await
            .unwrap());
        reader.read(&channel, 3, 1).await.unwrap()
    });
    writer
        .append(&channel, 3, b"fwledger live test 3")
        .await
        .unwrap();
    let followed = follow.await.unwrap();
    assert_eq!(followed[0].bytes, b"fwledger live test 3");
    eprintln!("live IOTA test passed on channel {}", hex::encode(channel));
}

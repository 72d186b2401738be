//! The IOTA backend against the loopback **simulator** (no IOTA node can run here): schema
//! checks, offline transaction building with the SDK's test client, publish → read → follow,
//! conflicts, duplicates and gaps, resume after a dropped node, sponsor and gas-station gas,
//! dry runs, no-gas and unreachable-node errors.

use std::str::FromStr;
use std::time::{Duration, Instant};

use fwledger_iota::simulator::{self, Simulator};
use fwledger_iota::{codec, config, Anomaly, IotaKey, IotaLedger, RpcTimeouts, Timing};
use fwledger_ledger::{Ledger, LedgerError};
use iota_sdk::types::ObjectId;

fn package() -> ObjectId {
    ObjectId::from_str(config::TESTNET_PACKAGE).unwrap()
}

fn simulator() -> Simulator {
    Simulator::start(package(), Some(fwledger_iota::IOTA_GRAPHQL_SCHEMA)).unwrap()
}

fn timing() -> Timing {
    Timing {
        rpc: RpcTimeouts {
            connect: Duration::from_secs(2),
            request: Duration::from_secs(5),
        },
        poll: Duration::from_millis(20),
        max_poll: Duration::from_millis(100),
        confirm: Duration::from_secs(5),
        ..Timing::default()
    }
}

fn open(url: &str, home: &std::path::Path) -> IotaLedger {
    IotaLedger::open_with(url, home, timing()).unwrap()
}

/// A vendor home whose IOTA key is funded with 10 IOTA.
fn funded(sim: &Simulator) -> (tempfile::TempDir, IotaLedger) {
    let home = tempfile::tempdir().unwrap();
    let ledger = open(&sim.ledger_url(), home.path());
    sim.fund(ledger.sender(), 10_000_000_000);
    (home, ledger)
}

const CHANNEL: [u8; 32] = [7; 32];

#[test]
fn backend_queries_match_the_bundled_iota_schema() {
    let schema = fwledger_iota::schema::Schema::parse(fwledger_iota::IOTA_GRAPHQL_SCHEMA).unwrap();
    for op in fwledger_iota::rpc::ALL_OPERATIONS {
        schema.validate(op).unwrap_or_else(|e| panic!("{e}\n{op}"));
    }
    // The check can fail: a misspelt field, a missing argument, a wrong variable type.
    for bad in [
        "query A { chainIdentifierr }",
        "query A { object { version } }",
        "query A($a: Int) { object(address: $a) { version } }",
        "query A { epoch }",
        "query A { chainIdentifier { x } }",
    ] {
        assert!(schema.validate(bad).is_err(), "accepted {bad}");
    }
}

#[tokio::test]
async fn transactions_build_offline_with_the_sdk_test_client() {
    use iota_sdk_transaction_builder::{TestClient, TransactionBuilder};
    let sender = IotaKey::from_seed([1; 32]).address();
    let mut builder = TransactionBuilder::new(sender).with_client(TestClient);
    codec::add_message_calls(&mut builder, package(), &CHANNEL, 5, b"signed envelope");
    let tx = builder.finish().await.unwrap();
    let carried = codec::parse_transaction(&tx, &package()).unwrap();
    assert_eq!(carried.channel, CHANNEL);
    assert_eq!(carried.seq, 5);
    assert_eq!(carried.message, b"signed envelope");
    let iota_sdk::types::Transaction::V1(v1) = &tx else {
        panic!("not V1")
    };
    assert_eq!(v1.sender, sender);
    assert!(
        !v1.gas_payment.objects.is_empty(),
        "the test client picked gas"
    );
    // Another package's calls are not an fwledger message.
    assert!(codec::parse_transaction(&tx, &ObjectId::from_str("0x2").unwrap()).is_err());
    // The signature verifies for the sender's key.
    let key = IotaKey::from_seed([1; 32]);
    let signature = key.sign(&tx).unwrap();
    use iota_sdk::crypto::IotaVerifier;
    iota_sdk::crypto::UserSignatureVerifier::new()
        .verify_transaction(&tx, &signature)
        .unwrap();
}

#[tokio::test]
async fn publish_read_and_follow() {
    let sim = simulator();
    let (_home, writer) = funded(&sim);
    assert_eq!(writer.next_seq(&CHANNEL).await.unwrap(), 0);
    for (seq, msg) in [b"zero".as_slice(), b"one", b"two"].iter().enumerate() {
        writer.append(&CHANNEL, seq as u64, msg).await.unwrap();
    }
    assert_eq!(writer.next_seq(&CHANNEL).await.unwrap(), 3);
    let read = writer.read(&CHANNEL, 1, 10).await.unwrap();
    assert_eq!(read.len(), 2);
    assert_eq!(
        (read[0].seq, read[0].bytes.as_slice()),
        (1, b"one".as_slice())
    );
    assert_eq!(writer.channels().await.unwrap(), vec![(CHANNEL, 3)]);

    // A reader elsewhere names the writer's address in its URL and has no key of its own.
    let reader_home = tempfile::tempdir().unwrap();
    let reader_url = config::with_params(
        &sim.ledger_url(),
        &[("sender", &writer.sender().to_string())],
    );
    let reader = open(&reader_url, reader_home.path());
    assert!(!IotaKey::path(reader_home.path()).exists());
    let all = reader.read(&CHANNEL, 0, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|m| m.bytes.clone()).collect::<Vec<_>>(),
        vec![b"zero".to_vec(), b"one".to_vec(), b"two".to_vec()]
    );
    assert!(!reader
        .wait(&CHANNEL, 3, Duration::from_millis(100))
        .await
        .unwrap());

    // Live follow: the reader waits, the writer appends.
    let waiting = tokio::spawn(async move {
        let seen = reader
            .wait(&CHANNEL, 3, Duration::from_secs(10))
            .await
            .unwrap();
        (seen, reader.read(&CHANNEL, 3, 10).await.unwrap())
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    writer.append(&CHANNEL, 3, b"three").await.unwrap();
    let (seen, next) = waiting.await.unwrap();
    assert!(seen);
    assert_eq!(next[0].bytes, b"three");
    assert_eq!(sim.executed(), 4);
    // Gas was charged for each publish.
    let charged = 10_000_000_000 - sim.balance(writer.sender());
    let expected: u64 = [4usize, 3, 3, 5]
        .iter()
        .map(|n| simulator::computation_cost() + simulator::storage_cost(*n))
        .sum();
    assert_eq!(charged, expected);
}

#[tokio::test]
async fn racing_writers_first_wins_and_the_loser_gets_conflict() {
    let sim = simulator();
    let (home, a) = funded(&sim);
    let b = open(&sim.ledger_url(), home.path()); // the same account on a second machine
    a.append(&CHANNEL, 0, b"a0").await.unwrap();
    match b.append(&CHANNEL, 0, b"b0").await {
        Err(LedgerError::Conflict {
            expected: 1,
            got: 0,
        }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Two writers that did not see each other both land a transaction for position 1.
    let first = b.submit_unchecked(&CHANNEL, 1, b"b1").await.unwrap();
    let second = a.submit_unchecked(&CHANNEL, 1, b"a1").await.unwrap();
    assert_ne!(first, second);
    let read = a.read(&CHANNEL, 0, 10).await.unwrap();
    assert_eq!(read.len(), 2);
    assert_eq!(read[1].bytes, b"b1", "the ledger keeps the first");
    assert_eq!(
        a.anomalies().await,
        vec![Anomaly::Duplicate {
            channel: CHANNEL,
            seq: 1,
            digest: second
        }]
    );
    a.append(&CHANNEL, 2, b"a2").await.unwrap();
    assert_eq!(b.next_seq(&CHANNEL).await.unwrap(), 3);
}

#[tokio::test]
async fn a_gap_stops_delivery_with_a_clear_error_and_order_is_restored() {
    let sim = simulator();
    let (_home, ledger) = funded(&sim);
    ledger.submit_unchecked(&CHANNEL, 0, b"m0").await.unwrap();
    let gap_tx = ledger.submit_unchecked(&CHANNEL, 2, b"m2").await.unwrap();
    let read = ledger.read(&CHANNEL, 0, 10).await.unwrap();
    assert_eq!(read.len(), 1, "nothing past the gap is delivered");
    assert_eq!(ledger.next_seq(&CHANNEL).await.unwrap(), 1);
    for result in [
        ledger.read(&CHANNEL, 1, 10).await.map(|_| ()),
        ledger
            .wait(&CHANNEL, 1, Duration::from_millis(50))
            .await
            .map(|_| ()),
    ] {
        match result {
            Err(LedgerError::Corrupt(m)) => {
                assert!(m.contains("message 1 is missing"), "{m}");
                assert!(m.contains(&gap_tx), "{m}");
            }
            other => panic!("expected a gap error, got {other:?}"),
        }
    }
    // The missing message arrives late: everything is delivered, in order.
    ledger.submit_unchecked(&CHANNEL, 1, b"m1").await.unwrap();
    let read = ledger.read(&CHANNEL, 0, 10).await.unwrap();
    let got: Vec<(u64, Vec<u8>)> = read.into_iter().map(|m| (m.seq, m.bytes)).collect();
    assert_eq!(
        got,
        vec![
            (0, b"m0".to_vec()),
            (1, b"m1".to_vec()),
            (2, b"m2".to_vec())
        ]
    );
}

#[tokio::test]
async fn a_follow_resumes_from_its_cursor_after_the_node_drops() {
    let sim = simulator();
    let (_home, writer) = funded(&sim);
    let reader_home = tempfile::tempdir().unwrap();
    let url = config::with_params(
        &sim.ledger_url(),
        &[("sender", &writer.sender().to_string())],
    );
    let reader = open(&url, reader_home.path());
    // More than one page of events.
    for seq in 0..(simulator::MAX_PAGE as u64 + 5) {
        writer
            .submit_unchecked(&CHANNEL, seq, format!("m{seq}").as_bytes())
            .await
            .unwrap();
    }
    assert_eq!(reader.next_seq(&CHANNEL).await.unwrap(), 55);
    sim.fail_next(2);
    // While the node is down, reads fail cleanly and waits keep trying.
    match reader.read(&CHANNEL, 55, 1).await {
        Err(LedgerError::Unavailable(m)) => assert!(m.contains("503"), "{m}"),
        other => panic!("expected unavailable, got {other:?}"),
    }
    writer
        .append(&CHANNEL, 55, b"after the outage")
        .await
        .unwrap_err(); // node still down
    let appended = writer.append(&CHANNEL, 55, b"after the outage").await;
    appended.unwrap();
    assert!(reader
        .wait(&CHANNEL, 55, Duration::from_secs(5))
        .await
        .unwrap());
    let all = reader.read(&CHANNEL, 0, 100).await.unwrap();
    assert_eq!(
        all.len(),
        56,
        "no message lost or repeated across the outage"
    );
    assert!(all.iter().enumerate().all(|(i, m)| m.seq == i as u64));
    assert_eq!(all[55].bytes, b"after the outage");
    let requests = sim.requests();
    assert!(requests.iter().filter(|r| *r == "FwlEvents").count() >= 4);
}

#[tokio::test]
async fn a_sponsor_pays_the_gas() {
    let sim = simulator();
    let dir = tempfile::tempdir().unwrap();
    let sponsor = IotaKey::generate();
    let sponsor_file = dir.path().join("sponsor.key");
    sponsor.save(&sponsor_file).unwrap();
    sim.fund(sponsor.address(), 1_000_000_000);
    let url = config::with_params(
        &sim.ledger_url(),
        &[
            ("gas", "sponsor"),
            ("sponsor_key", sponsor_file.to_str().unwrap()),
        ],
    );
    let home = tempfile::tempdir().unwrap();
    let ledger = open(&url, home.path());
    ledger.append(&CHANNEL, 0, b"sponsored").await.unwrap();
    assert_eq!(
        sim.balance(ledger.sender()),
        0,
        "the vendor holds no IOTA at all"
    );
    assert_eq!(
        sim.balance(sponsor.address()),
        1_000_000_000 - simulator::computation_cost() - simulator::storage_cost(9)
    );
    assert_eq!(
        ledger.read(&CHANNEL, 0, 1).await.unwrap()[0].bytes,
        b"sponsored"
    );
}

#[tokio::test]
async fn a_gas_station_pays_the_gas() {
    let sim = simulator();
    sim.fund_station(2, 1_000_000_000);
    let url = config::with_params(
        &sim.ledger_url(),
        &[("gas", "station"), ("gas_station", &sim.gas_station_url())],
    );
    let home = tempfile::tempdir().unwrap();
    let ledger = open(&url, home.path());
    ledger.append(&CHANNEL, 0, b"station").await.unwrap();
    ledger.append(&CHANNEL, 1, b"station again").await.unwrap();
    assert_eq!(sim.balance(ledger.sender()), 0);
    assert!(sim.balance(sim.station_address()) < 2_000_000_000);
    let requests = sim.requests();
    assert_eq!(
        requests
            .iter()
            .filter(|r| *r == "station:execute_tx")
            .count(),
        2
    );
    assert_eq!(ledger.next_seq(&CHANNEL).await.unwrap(), 2);
}

#[tokio::test]
async fn a_dry_run_prices_a_publish_and_publishes_nothing() {
    let sim = simulator();
    let (_home, ledger) = funded(&sim);
    let message = vec![0x5a; 1000];
    let cost = ledger.estimate(&CHANNEL, 0, &message).await.unwrap();
    assert_eq!(cost.gas.computation, simulator::computation_cost());
    assert_eq!(cost.gas.storage, simulator::storage_cost(1000));
    assert_eq!(
        cost.net(),
        i128::from(simulator::computation_cost() + simulator::storage_cost(1000))
    );
    assert!(cost.budget >= cost.gas.computation + cost.gas.storage);
    assert!(cost.to_string().contains("IOTA"), "{cost}");
    assert_eq!(sim.executed(), 0);
    assert_eq!(sim.balance(ledger.sender()), 10_000_000_000);
}

#[tokio::test]
async fn no_gas_is_a_clear_error_naming_the_faucet() {
    let sim = simulator();
    // A testnet URL pointing at the simulator (same package id): the hint names the faucet.
    let url = format!("iota+http://{}/graphql?network=testnet", sim.addr());
    let home = tempfile::tempdir().unwrap();
    let ledger = open(&url, home.path());
    let err = ledger
        .append(&CHANNEL, 0, b"x")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no gas"), "{err}");
    assert!(err.contains("faucet.testnet.iota.cafe"), "{err}");
    assert!(err.contains(&ledger.sender().to_string()), "{err}");
    let err = ledger
        .estimate(&CHANNEL, 0, b"x")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("faucet"), "{err}");
    assert_eq!(sim.executed(), 0);
}

#[tokio::test]
async fn an_unreachable_node_fails_in_bounded_time() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("iota+http://127.0.0.1:{port}/graphql?network=devnet");
    let home = tempfile::tempdir().unwrap();
    let ledger = open(&url, home.path());
    let started = Instant::now();
    match ledger.next_seq(&CHANNEL).await {
        Err(LedgerError::Unavailable(m)) => assert!(m.contains("unreachable"), "{m}"),
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert!(!ledger
        .wait(&CHANNEL, 0, Duration::from_millis(300))
        .await
        .unwrap());
    assert!(ledger.append(&CHANNEL, 0, b"x").await.is_err());
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn oversized_messages_and_bad_urls_are_refused() {
    let sim = simulator();
    let (_home, ledger) = funded(&sim);
    match ledger
        .append(&CHANNEL, 0, &vec![0; fwledger_iota::MAX_IOTA_MESSAGE + 1])
        .await
    {
        Err(LedgerError::TooLarge { limit, .. }) => {
            assert_eq!(limit, fwledger_iota::MAX_IOTA_MESSAGE)
        }
        other => panic!("expected too large, got {other:?}"),
    }
    let home = tempfile::tempdir().unwrap();
    for (url, needle) in [
        ("iota+ftp://x/graphql", "iota+https"),
        ("iota+http://127.0.0.1:1/graphql", "package"),
        (
            "iota+https://api.testnet.iota.cafe/graphql?gas=sponsor",
            "sponsor_key",
        ),
        (
            "iota+https://api.testnet.iota.cafe/graphql?gas=station",
            "gas_station",
        ),
        (
            "iota+https://api.testnet.iota.cafe/graphql?colour=red",
            "unknown key",
        ),
        (
            "iota+https://api.testnet.iota.cafe/graphql?sender=0xzz",
            "sender",
        ),
        (
            "iota+https://api.testnet.iota.cafe/graphql?network=moon",
            "moon",
        ),
    ] {
        let err = IotaLedger::open(url, home.path()).unwrap_err().to_string();
        assert!(err.contains(needle), "{url}: {err}");
    }
    // A URL naming another writer cannot publish with this home's key.
    let other = IotaKey::generate().address().to_string();
    let url = config::with_params(&sim.ledger_url(), &[("sender", &other)]);
    let reader = open(&url, home.path());
    let err = reader
        .append(&CHANNEL, 0, b"x")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("drop sender="), "{err}");
}

#[test]
fn the_iota_key_is_private_to_its_owner() {
    let home = tempfile::tempdir().unwrap();
    let key = IotaKey::load_or_create(home.path()).unwrap();
    let again = IotaKey::load_or_create(home.path()).unwrap();
    assert_eq!(key.address(), again.address());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(IotaKey::path(home.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    std::fs::write(IotaKey::path(home.path()), "not hex\n").unwrap();
    assert!(IotaKey::load_home(home.path())
        .unwrap_err()
        .to_string()
        .contains("not an IOTA key file"));
}

#[tokio::test]
async fn a_balance_below_the_budget_cap_still_publishes_and_too_little_is_clear() {
    let sim = simulator();
    let home = tempfile::tempdir().unwrap();
    let ledger = open(&sim.ledger_url(), home.path());
    // 0.02 IOTA in two coins: far below the 0.5 IOTA cap, enough for a few publishes.
    sim.fund(ledger.sender(), 12_000_000);
    sim.fund(ledger.sender(), 8_000_000);
    ledger.append(&CHANNEL, 0, b"cheap").await.unwrap();
    // Less than one publish costs: a clear error, nothing executed.
    let poor_home = tempfile::tempdir().unwrap();
    let poor = open(&sim.ledger_url(), poor_home.path());
    sim.fund(poor.sender(), 1_000);
    let err = poor
        .append(&CHANNEL, 0, b"x")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("a publish needs up to"), "{err}");
    assert!(err.contains(&poor.sender().to_string()), "{err}");
    assert_eq!(sim.executed(), 1);
}

//! Live following through the GraphQL `events` subscription, against the loopback
//! **simulator** (no IOTA node can run here): a publish wakes a subscribed reader without
//! polling, a dropped subscription resumes with `startAfter` and nothing lost or duplicated,
//! `Lagged` triggers a catch-up read, and a node without subscriptions is followed by polling.
//!
//! The subscribed readers poll only every 30 s, so a follow that completes within the 10 s
//! wait was woken by the subscription (the simulator's counters confirm it).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use fwledger_iota::simulator::Simulator;
use fwledger_iota::{config, IotaLedger, RpcTimeouts, StreamState, Timing};
use fwledger_ledger::Ledger;
use iota_sdk::types::ObjectId;

const CHANNEL: [u8; 32] = [9; 32];
const WAIT: Duration = Duration::from_secs(10);

fn simulator() -> Simulator {
    let package = ObjectId::from_str(config::TESTNET_PACKAGE).unwrap();
    Simulator::start(package, Some(fwledger_iota::IOTA_GRAPHQL_SCHEMA)).unwrap()
}

fn timing(poll: Duration) -> Timing {
    Timing {
        rpc: RpcTimeouts {
            connect: Duration::from_secs(2),
            request: Duration::from_secs(5),
        },
        poll,
        max_poll: poll,
        confirm: Duration::from_secs(5),
        reconnect: Duration::from_millis(50),
        keepalive: Duration::from_secs(5),
        resync: Duration::from_secs(60),
    }
}

/// A funded writer (fast polling, it never waits) and a key-less reader of its messages.
fn pair(sim: &Simulator, reader_poll: Duration, extra: &[(&str, &str)]) -> Pair {
    let writer_home = tempfile::tempdir().unwrap();
    let writer = IotaLedger::open_with(
        &sim.ledger_url(),
        writer_home.path(),
        timing(Duration::from_millis(20)),
    )
    .unwrap();
    sim.fund(writer.sender(), 10_000_000_000);
    let reader_home = tempfile::tempdir().unwrap();
    let sender = writer.sender().to_string();
    let mut params = vec![("sender", sender.as_str())];
    params.extend_from_slice(extra);
    let url = config::with_params(&sim.ledger_url(), &params);
    let reader = IotaLedger::open_with(&url, reader_home.path(), timing(reader_poll)).unwrap();
    Pair {
        _homes: (writer_home, reader_home),
        writer,
        reader: Arc::new(reader),
    }
}

struct Pair {
    _homes: (tempfile::TempDir, tempfile::TempDir),
    writer: IotaLedger,
    reader: Arc<IotaLedger>,
}

fn follow(reader: &Arc<IotaLedger>, from: u64) -> tokio::task::JoinHandle<bool> {
    let reader = Arc::clone(reader);
    tokio::spawn(async move { reader.wait(&CHANNEL, from, WAIT).await.unwrap() })
}

/// Waits (bounded) until the reader's subscription is in `state`.
async fn until_state(reader: &IotaLedger, state: StreamState) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while reader.stream_state() != Some(state) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "subscription state is {:?}, expected {state:?}",
            reader.stream_state()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn messages(reader: &IotaLedger) -> Vec<Vec<u8>> {
    let read = reader.read(&CHANNEL, 0, 100).await.unwrap();
    for (i, m) in read.iter().enumerate() {
        assert_eq!(m.seq, i as u64);
    }
    read.into_iter().map(|m| m.bytes).collect()
}

fn event_reads(sim: &Simulator) -> usize {
    sim.requests().iter().filter(|r| *r == "FwlEvents").count()
}

#[test]
fn the_subscription_matches_the_bundled_iota_schema() {
    let schema = fwledger_iota::schema::Schema::parse(fwledger_iota::IOTA_GRAPHQL_SCHEMA).unwrap();
    schema
        .validate(fwledger_iota::subscribe::EVENTS_SUBSCRIPTION)
        .unwrap();
    // The union check can fail: a field straight on the union, a fragment on a non-member.
    for bad in [
        "subscription A { events { sender { address } } }",
        "subscription A { events { ... on Coin { balance } } }",
        "subscription A { events { ... on Event { nosuchfield } } }",
        "subscription A($f: String) { events(filter: $f) { __typename } }",
    ] {
        assert!(schema.validate(bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn a_subscribed_reader_sees_a_publish_without_polling() {
    let sim = simulator();
    let p = pair(&sim, Duration::from_secs(30), &[]);
    let waiting = follow(&p.reader, 0);
    until_state(&p.reader, StreamState::Live).await;
    let reads_before = event_reads(&sim);
    p.writer.append(&CHANNEL, 0, b"zero").await.unwrap();
    assert!(
        waiting.await.unwrap(),
        "the publish was not seen within {WAIT:?}"
    );
    assert_eq!(messages(&p.reader).await, vec![b"zero".to_vec()]);
    // Woken by a pushed event, not by a 30 s poll; the first subscription had nothing to
    // resume from.
    assert!(sim.pushed() >= 1);
    assert_eq!(sim.subscriptions(), vec![None]);

    // A second publish: the reader's next wait reuses the open subscription.
    let waiting = follow(&p.reader, 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    p.writer.append(&CHANNEL, 1, b"one").await.unwrap();
    assert!(waiting.await.unwrap());
    assert_eq!(sim.subscriptions().len(), 1);
    assert_eq!(
        messages(&p.reader).await,
        vec![b"zero".to_vec(), b"one".to_vec()]
    );
    // The writer's appends read events too; the reader read only on wake-ups, a handful.
    assert!(
        event_reads(&sim) - reads_before < 40,
        "{:?}",
        sim.requests()
    );
}

#[tokio::test]
async fn a_dropped_subscription_resumes_after_the_last_seen_transaction() {
    let sim = simulator();
    let p = pair(&sim, Duration::from_secs(30), &[]);
    let waiting = follow(&p.reader, 0);
    until_state(&p.reader, StreamState::Live).await;
    p.writer.append(&CHANNEL, 0, b"m0").await.unwrap();
    assert!(waiting.await.unwrap());
    let first = sim.digests()[0].clone();

    // Following message 1; the connection drops and reconnects are refused meanwhile.
    let waiting = follow(&p.reader, 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    sim.refuse_subscriptions(true);
    sim.drop_subscriptions();
    until_state(&p.reader, StreamState::Connecting).await;
    for (seq, m) in [b"m1", b"m2", b"m3"].iter().enumerate() {
        p.writer.append(&CHANNEL, seq as u64 + 1, *m).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !waiting.is_finished(),
        "read before the subscription was back"
    );
    sim.refuse_subscriptions(false);
    assert!(waiting.await.unwrap(), "not resumed within {WAIT:?}");
    assert_eq!(p.reader.stream_state(), Some(StreamState::Live));

    // Resubscribed after the last transaction it had seen; nothing lost, nothing twice.
    let subs = sim.subscriptions();
    assert_eq!(subs.len(), 2, "{subs:?}");
    assert_eq!(subs[1].as_deref(), Some(first.as_str()));
    assert_eq!(
        messages(&p.reader).await,
        vec![
            b"m0".to_vec(),
            b"m1".to_vec(),
            b"m2".to_vec(),
            b"m3".to_vec()
        ]
    );
    assert!(p.reader.anomalies().await.is_empty());
}

#[tokio::test]
async fn lagged_makes_the_reader_catch_up() {
    let sim = simulator();
    let p = pair(&sim, Duration::from_secs(30), &[]);
    let waiting = follow(&p.reader, 0);
    until_state(&p.reader, StreamState::Live).await;
    sim.lag_next(2);
    p.writer.append(&CHANNEL, 0, b"a").await.unwrap();
    assert!(waiting.await.unwrap(), "Lagged did not wake the reader");
    assert_eq!(sim.lagged(), 1);
    let waiting = follow(&p.reader, 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    p.writer.append(&CHANNEL, 1, b"b").await.unwrap();
    assert!(waiting.await.unwrap());
    assert_eq!(sim.lagged(), 2);
    assert_eq!(
        messages(&p.reader).await,
        vec![b"a".to_vec(), b"b".to_vec()]
    );
    assert!(p.reader.anomalies().await.is_empty());
}

#[tokio::test]
async fn without_subscriptions_the_reader_polls() {
    let sim = simulator();
    sim.set_subscriptions(false);
    let p = pair(&sim, Duration::from_millis(20), &[]);
    let waiting = follow(&p.reader, 0);
    until_state(&p.reader, StreamState::Unavailable).await;
    p.writer.append(&CHANNEL, 0, b"polled").await.unwrap();
    assert!(waiting.await.unwrap());
    assert_eq!(messages(&p.reader).await, vec![b"polled".to_vec()]);
    assert!(sim.subscriptions().is_empty());
    assert_eq!(sim.pushed(), 0);

    // subscribe=off: no subscription at all, polling as before.
    let p = pair(&sim, Duration::from_millis(20), &[("subscribe", "off")]);
    let waiting = follow(&p.reader, 0);
    p.writer.append(&CHANNEL, 0, b"off").await.unwrap();
    assert!(waiting.await.unwrap());
    assert_eq!(p.reader.stream_state(), None);
    assert!(
        config::IotaConfig::parse("iota+http://127.0.0.1:1/graphql?subscribe=ftp://x").is_err()
    );
}

#[tokio::test]
async fn an_idle_subscription_is_kept_alive_by_pings() {
    let sim = simulator();
    let writer_home = tempfile::tempdir().unwrap();
    let writer = IotaLedger::open_with(
        &sim.ledger_url(),
        writer_home.path(),
        timing(Duration::from_millis(20)),
    )
    .unwrap();
    sim.fund(writer.sender(), 10_000_000_000);
    let reader_home = tempfile::tempdir().unwrap();
    let url = config::with_params(
        &sim.ledger_url(),
        &[("sender", &writer.sender().to_string())],
    );
    let mut t = timing(Duration::from_secs(30));
    t.keepalive = Duration::from_millis(100);
    let reader = Arc::new(IotaLedger::open_with(&url, reader_home.path(), t).unwrap());
    let waiting = follow(&reader, 0);
    until_state(&reader, StreamState::Live).await;
    // Ten keep-alive periods of silence: pings are answered, the connection stays.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(reader.stream_state(), Some(StreamState::Live));
    assert_eq!(sim.subscriptions().len(), 1);
    writer.append(&CHANNEL, 0, b"late").await.unwrap();
    assert!(waiting.await.unwrap());
    assert!(sim.pings() >= 5, "{} pings", sim.pings());
}

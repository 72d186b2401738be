//! The mosquitto configuration `gateway init` writes, against a real mosquitto: TLS with required
//! client certificates from the gateway CA, and the per-device ACL.

mod common;

use std::time::Duration;

use common::{bundle_tls, gateway_tls, require_mosquitto, Client, World};
use fwledger_gateway::broker::Broker;
use fwledger_gateway::{Gateway, InitOptions};
use fwledger_link::topics;

/// How long to wait for a message that must not arrive.
const QUIET: Duration = Duration::from_millis(1500);

async fn start_broker(world: &World) -> Broker {
    require_mosquitto();
    let gateway = world.gateway();
    Broker::start(gateway.paths(), gateway.config(), None)
        .await
        .expect("mosquitto starts with the generated configuration")
}

#[tokio::test]
async fn init_writes_a_config_mosquitto_accepts() {
    let world = World::new();
    let gateway = world.gateway();
    let paths = gateway.paths();
    // Keys are private.
    #[cfg(unix)]
    for key in [paths.ca_key(), paths.server_key(), paths.client_key()] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", key.display());
    }
    let conf = std::fs::read_to_string(paths.mosquitto_conf()).expect("conf");
    assert!(conf.contains("require_certificate true"));
    let mut broker = start_broker(&world).await;
    assert!(broker.is_running());
    broker.stop().await;
    // A second init in the same home is refused.
    assert!(Gateway::init(world.home(), &InitOptions::default()).is_err());
}

#[tokio::test]
async fn gateway_certificate_can_publish_and_subscribe() {
    let world = World::new();
    let broker = start_broker(&world).await;
    let url = world.gateway().config().mqtt_url();
    let mut gateway = Client::connect(&url, gateway_tls(world.home()), "gw-test")
        .await
        .expect("the gateway certificate connects");
    gateway.subscribe(topics::ALL_STATUS).await;
    gateway.subscribe(&topics::notice("lamp-01")).await;
    gateway
        .publish(&topics::notice("lamp-01"), true, b"notice".to_vec())
        .await;
    let message = gateway
        .recv_on(&topics::notice("lamp-01"), common::WAIT)
        .await
        .expect("own publish delivered");
    assert_eq!(&message.payload[..], b"notice");
    broker.stop().await;
}

#[tokio::test]
async fn device_certificate_is_confined_to_its_own_topics() {
    let world = World::new();
    let alice = world.add_device("alice", "lamp", "rev-b");
    let bob = world.add_device("bob", "lamp", "rev-b");
    let broker = start_broker(&world).await;
    let url = alice.mqtt_url.clone();

    let mut gateway = Client::connect(&url, gateway_tls(world.home()), "gw-test")
        .await
        .expect("gateway connects");
    gateway.subscribe(topics::ALL_STATUS).await;
    gateway
        .publish(&topics::notice("alice"), true, b"for alice".to_vec())
        .await;
    gateway
        .publish(&topics::notice("bob"), true, b"for bob".to_vec())
        .await;

    // The client id is ignored: mosquitto takes the certificate CN.
    let mut device = Client::connect(&url, bundle_tls(&alice), "pretending-to-be-bob")
        .await
        .expect("alice connects");
    device.subscribe(&topics::notice("alice")).await;
    let own = device
        .recv_on(&topics::notice("alice"), common::WAIT)
        .await
        .expect("alice reads her notice");
    assert_eq!(&own.payload[..], b"for alice");
    device.subscribe(&topics::notice("bob")).await;
    device.subscribe("fwledger/v1/dev/+/notice").await;
    device.subscribe("#").await;
    // Retained messages arrive right after the subscription; none of bob's may come.
    while let Some(message) = device.recv(QUIET).await {
        assert_ne!(
            message.topic,
            topics::notice("bob"),
            "alice read bob's notice"
        );
    }

    device
        .publish(&topics::status("bob"), false, b"{\"forged\":1}".to_vec())
        .await;
    device
        .publish(&topics::status("alice"), false, b"{\"own\":1}".to_vec())
        .await;
    let received = gateway
        .recv_on(&topics::status("alice"), common::WAIT)
        .await
        .expect("alice's own status reaches the gateway");
    assert_eq!(&received.payload[..], b"{\"own\":1}");
    while let Some(message) = gateway.recv(QUIET).await {
        assert_ne!(
            message.topic,
            topics::status("bob"),
            "alice published as bob"
        );
    }
    // Nor can a device write notices.
    device
        .publish(&topics::notice("alice"), true, b"forged".to_vec())
        .await;
    let mut check = Client::connect(&url, bundle_tls(&bob), "bob")
        .await
        .expect("bob connects");
    check.subscribe(&topics::notice("bob")).await;
    let bob_notice = check
        .recv_on(&topics::notice("bob"), common::WAIT)
        .await
        .expect("bob reads his notice");
    assert_eq!(&bob_notice.payload[..], b"for bob");
    gateway.subscribe(&topics::notice("alice")).await;
    let alice_notice = gateway
        .recv_on(&topics::notice("alice"), common::WAIT)
        .await
        .expect("retained notice");
    assert_eq!(
        &alice_notice.payload[..],
        b"for alice",
        "a device overwrote its notice"
    );
    broker.stop().await;
}

#[tokio::test]
async fn client_without_a_gateway_certificate_cannot_connect() {
    let world = World::new();
    let broker = start_broker(&world).await;
    let config = world.gateway().config().clone();
    let ca = std::fs::read_to_string(world.gateway().paths().ca_cert()).expect("ca");

    // No client certificate at all.
    let anonymous = fwledger_gateway::tls::client_config(&ca, None).expect("tls");
    assert!(
        Client::connect(&config.mqtt_url(), anonymous, "anon")
            .await
            .is_err(),
        "a client without a certificate connected"
    );

    // A certificate from another gateway's CA.
    let other = World::new();
    let stranger = other.add_device("stranger", "lamp", "rev-b");
    let foreign = fwledger_gateway::tls::client_config(
        &ca,
        Some((&stranger.device_cert_pem, &stranger.device_key_pem)),
    )
    .expect("tls");
    assert!(
        Client::connect(&config.mqtt_url(), foreign, "stranger")
            .await
            .is_err(),
        "a certificate from another CA connected"
    );

    // Plain MQTT on the TLS port gets nowhere either.
    let plain =
        fwledger_gateway::mqtt::BrokerUrl::parse(&format!("mqtt://127.0.0.1:{}", config.mqtt_port))
            .expect("url");
    let options = plain.options("plain", None).expect("options");
    let (_client, mut eventloop) = rumqttc::AsyncClient::new(options, 4);
    let outcome = tokio::time::timeout(Duration::from_secs(10), eventloop.poll()).await;
    assert!(
        !matches!(
            outcome,
            Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))))
        ),
        "plain MQTT connected"
    );
    broker.stop().await;
}

#[tokio::test]
async fn broker_left_by_a_killed_gateway_is_replaced() {
    let world = World::new();
    let orphan = start_broker(&world).await;
    let orphan_pid = orphan.pid().expect("pid");
    // The gateway process "dies" without stopping its broker.
    std::mem::forget(orphan);
    let mut broker = start_broker(&world).await;
    assert_ne!(broker.pid(), Some(orphan_pid));
    assert!(broker.is_running());
    let cmdline = std::fs::read(format!("/proc/{orphan_pid}/cmdline")).unwrap_or_default();
    assert!(cmdline.is_empty(), "the orphaned mosquitto still runs");
    broker.stop().await;
}

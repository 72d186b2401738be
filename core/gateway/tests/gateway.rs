//! The gateway service end to end, against a real mosquitto it starts itself: a published release
//! is fetched, verified, stored atomically and announced to compatible devices only; downloads
//! resume with Range; status reports update the registry; restarts resume without re-notifying;
//! revocation clears notices; a crashed fetch is resumed; a frozen channel is detected.

mod common;

use std::time::Duration;

use common::{bundle_tls, eventually, fast_timing, https_get, require_mosquitto, Client, World};
use fwledger_gateway::registry::{ChannelHealth, ReleaseState, UpdateStage};
use fwledger_gateway::{RunOptions, RunningGateway};
use fwledger_link::{topics, Bundle, DeviceStatus, UpdateState};
use fwledger_proto::ed25519_dalek::VerifyingKey;
use fwledger_proto::manifest::{verify_manifest, TrustAnchor};
use fwledger_proto::notice::Notice;
use sha2::{Digest, Sha256};

const QUIET: Duration = Duration::from_millis(1500);

async fn start(world: &World) -> RunningGateway {
    require_mosquitto();
    let mut options = RunOptions::new(world.backends.clone());
    options.timing = fast_timing();
    let running = world
        .gateway()
        .start(options)
        .await
        .expect("gateway starts");
    assert!(running.is_connected(), "gateway connected to its broker");
    running
}

async fn device(bundle: &Bundle) -> Client {
    let mut client = Client::connect(&bundle.mqtt_url, bundle_tls(bundle), &bundle.device_id)
        .await
        .expect("device connects");
    client.subscribe(&topics::notice(&bundle.device_id)).await;
    client
}

/// Waits for a non-empty notice and checks it the way a device does.
async fn receive_notice(client: &mut Client, bundle: &Bundle) -> (Notice, Vec<u8>) {
    let topic = topics::notice(&bundle.device_id);
    loop {
        let message = client
            .recv_on(&topic, common::WAIT)
            .await
            .expect("notice in time");
        if message.payload.is_empty() {
            continue;
        }
        let notice = Notice::from_cbor(&message.payload).expect("notice decodes");
        let key = bundle.vendor_keys()[0];
        let root = VerifyingKey::from_bytes(&key).expect("vendor key");
        verify_manifest(
            &notice.manifest,
            &TrustAnchor::new(root),
            Some(fwledger::unix_now()),
        )
        .expect("the manifest verifies against the vendor key in the bundle");
        return (notice, message.payload.to_vec());
    }
}

fn status(state: UpdateState, version: &str, release: &str) -> Vec<u8> {
    let mut status = DeviceStatus::idle(version, 1);
    status.state = state;
    status.release = Some(release.into());
    serde_json::to_vec(&status).expect("json")
}

#[tokio::test]
async fn release_reaches_compatible_devices_and_downloads_resume() {
    let mut world = World::new();
    let lamp = world.add_device("lamp-01", "lamp", "rev-b");
    let old_hw = world.add_device("lamp-02", "lamp", "rev-a");
    let fan = world.add_device("fan-01", "fan", "rev-b");
    let running = start(&world).await;
    let mut lamp_client = device(&lamp).await;
    let mut old_hw_client = device(&old_hw).await;
    let mut fan_client = device(&fan).await;

    let image = world.publish("1.1.0", &["rev-b"], 300_000).await;
    let sha = hex::encode(Sha256::digest(&image));
    let (notice, _) = receive_notice(&mut lamp_client, &lamp).await;
    assert_eq!(notice.url, format!("{}/fw/{sha}", lamp.http_url));

    // The repository holds exactly the verified image, and nothing half-written.
    let paths = world.gateway().paths().clone();
    assert_eq!(
        std::fs::read(paths.image(&sha)).expect("repository file"),
        image
    );
    let leftovers: Vec<_> = std::fs::read_dir(paths.repository())
        .expect("repository")
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "partial files left: {leftovers:?}");
    let registry = running.registry().clone();
    let release = registry.releases().expect("releases").remove(0);
    assert_eq!(release.state, ReleaseState::Verified);
    assert_eq!(
        registry
            .device_update("lamp-01", release.id)
            .expect("q")
            .expect("update")
            .state,
        UpdateStage::Notified
    );

    // Downloads: whole, resumed, ranged, unsatisfiable.
    let ca = &lamp.ca_cert_pem;
    let full = https_get(&notice.url, ca, &[]).await;
    assert_eq!(full.status, 200);
    assert_eq!(full.body, image);
    assert_eq!(full.header("etag"), Some(format!("\"{sha}\"").as_str()));
    assert_eq!(full.header("accept-ranges"), Some("bytes"));
    let resumed = https_get(&notice.url, ca, &[("Range", "bytes=123456-")]).await;
    assert_eq!(resumed.status, 206);
    assert_eq!(resumed.body, image[123_456..]);
    assert_eq!(
        resumed.header("content-range"),
        Some(format!("bytes 123456-{}/{}", image.len() - 1, image.len()).as_str())
    );
    let middle = https_get(&notice.url, ca, &[("Range", "bytes=10-19")]).await;
    assert_eq!(middle.status, 206);
    assert_eq!(middle.body, image[10..20]);
    let beyond = https_get(
        &notice.url,
        ca,
        &[("Range", &format!("bytes={}-", image.len()))],
    )
    .await;
    assert_eq!(beyond.status, 416);
    assert_eq!(
        beyond.header("content-range"),
        Some(format!("bytes */{}", image.len()).as_str())
    );
    let unknown = https_get(&format!("{}/fw/{}", lamp.http_url, "0".repeat(64)), ca, &[]).await;
    assert_eq!(unknown.status, 404);

    // Incompatible devices (other hardware, other model) get nothing.
    assert!(
        old_hw_client.recv(QUIET).await.is_none(),
        "other hardware got a notice"
    );
    assert!(
        fan_client.recv(QUIET).await.is_none(),
        "other model got a notice"
    );
    assert_eq!(
        registry
            .device("lamp-02")
            .expect("q")
            .expect("d")
            .notice_release,
        None
    );

    // Status reports drive the registry; a confirmed device's notice is cleared.
    lamp_client
        .publish(
            &topics::status("lamp-01"),
            false,
            status(UpdateState::Downloading, "1.0.0", "1.1.0"),
        )
        .await;
    eventually("downloading recorded", || {
        registry
            .device_update("lamp-01", release.id)
            .ok()
            .flatten()
            .is_some_and(|u| u.state == UpdateStage::Downloading)
    })
    .await;
    lamp_client
        .publish(
            &topics::status("lamp-01"),
            false,
            status(UpdateState::Confirmed, "1.1.0", "1.1.0"),
        )
        .await;
    eventually("confirmed recorded", || {
        registry
            .device("lamp-01")
            .ok()
            .flatten()
            .is_some_and(|d| d.version.as_deref() == Some("1.1.0") && d.online)
    })
    .await;
    let cleared = lamp_client
        .recv_on(&topics::notice("lamp-01"), common::WAIT)
        .await
        .expect("notice cleared after confirmation");
    assert!(cleared.payload.is_empty());
    assert_eq!(
        registry
            .device_update("lamp-01", release.id)
            .expect("q")
            .expect("u")
            .state,
        UpdateStage::Confirmed
    );
    running.stop().await;
}

#[tokio::test]
async fn restart_resumes_without_renotifying_and_revoke_clears_the_notice() {
    let mut world = World::new();
    let lamp = world.add_device("lamp-03", "lamp", "rev-b");
    let running = start(&world).await;
    let mut client = device(&lamp).await;
    let image = world.publish("1.1.0", &["rev-b"], 50_000).await;
    let sha = hex::encode(Sha256::digest(&image));
    let (notice, first_payload) = receive_notice(&mut client, &lamp).await;
    let registry = running.registry().clone();
    let release = registry.releases().expect("releases").remove(0);
    let notified_at = registry
        .device_update("lamp-03", release.id)
        .expect("q")
        .expect("u")
        .notified_at;
    let cursor = registry.channels().expect("channels")[0].cursor;
    drop(client);
    running.stop().await;
    // Let the clock move, so a re-published notice would carry a different gateway time.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let running = start(&world).await;
    // Several reconcile passes and channel polls.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let registry = running.registry().clone();
    assert_eq!(
        registry.releases().expect("releases").len(),
        1,
        "release recorded once"
    );
    assert_eq!(registry.channels().expect("channels")[0].cursor, cursor);
    assert_eq!(
        registry
            .device_update("lamp-03", release.id)
            .expect("q")
            .expect("u")
            .notified_at,
        notified_at,
        "re-notified after restart"
    );
    let announcements = registry
        .events(1000)
        .expect("events")
        .iter()
        .filter(|e| e.message.contains("release lamp 1.1.0"))
        .count();
    assert_eq!(announcements, 1, "the release was read twice");
    // The retained notice survived the broker restart, unchanged.
    let mut client = device(&lamp).await;
    let retained = client
        .recv_on(&topics::notice("lamp-03"), common::WAIT)
        .await
        .expect("retained notice after restart");
    assert!(retained.retain);
    assert_eq!(retained.payload.to_vec(), first_payload);
    assert!(
        client.recv(QUIET).await.is_none(),
        "a second notice arrived"
    );

    // A check request gets the current notice again.
    client
        .publish(&topics::check("lamp-03"), false, Vec::new())
        .await;
    let (again, _) = receive_notice(&mut client, &lamp).await;
    assert_eq!(again.url, notice.url);

    // Revoked: the notice is cleared and the image no longer served.
    world
        .vendor
        .revoke(Some("lamp"), "1.1.0", "bricks the lamp")
        .await
        .expect("revoke");
    let cleared = client
        .recv_on(&topics::notice("lamp-03"), common::WAIT)
        .await
        .expect("notice cleared");
    assert!(cleared.payload.is_empty());
    let release = registry.release(release.id).expect("q").expect("r");
    assert_eq!(release.state, ReleaseState::Revoked);
    assert_eq!(
        registry
            .device("lamp-03")
            .expect("q")
            .expect("d")
            .notice_release,
        None
    );
    let gone = https_get(&notice.url, &lamp.ca_cert_pem, &[]).await;
    assert_eq!(gone.status, 410);
    drop(client);
    let mut late = device(&lamp).await;
    assert!(
        late.recv(QUIET).await.is_none(),
        "a revoked notice is still retained"
    );
    assert!(paths_clean(&world, &sha));
    running.stop().await;
}

fn paths_clean(world: &World, sha: &str) -> bool {
    let paths = world.gateway().paths().clone();
    paths.image(sha).is_file()
}

#[tokio::test]
async fn crashed_fetch_is_resumed_on_start() {
    let mut world = World::new();
    // A release nobody can use yet stays pending (not fetched).
    let running = start(&world).await;
    let image = world.publish("2.0.0", &["rev-c"], 70_000).await;
    let sha = hex::encode(Sha256::digest(&image));
    let registry = running.registry().clone();
    eventually("release recorded", || {
        registry.releases().is_ok_and(|r| r.len() == 1)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let release = registry.releases().expect("releases").remove(0);
    assert_eq!(release.state, ReleaseState::Pending);
    running.stop().await;

    // Simulate a crash mid-download: state `fetching`, a partial temporary file.
    registry
        .set_release_state(release.id, ReleaseState::Fetching, None, None)
        .expect("state");
    let paths = world.gateway().paths().clone();
    let partial = paths.repository().join(format!(".{sha}.part-4242"));
    std::fs::write(&partial, &image[..1000]).expect("partial");
    let lamp = world.add_device("lamp-c", "lamp", "rev-c");

    let running = start(&world).await;
    let mut client = device(&lamp).await;
    let (notice, _) = receive_notice(&mut client, &lamp).await;
    assert!(notice.url.ends_with(&sha));
    assert!(!partial.exists(), "partial file not cleaned up");
    assert_eq!(std::fs::read(paths.image(&sha)).expect("image"), image);
    running.stop().await;
}

#[tokio::test]
async fn frozen_channel_is_reported_stale() {
    let mut world = World::new();
    let running = start(&world).await;
    world
        .vendor
        .heartbeat(Duration::from_secs(1))
        .await
        .expect("heartbeat");
    let registry = running.registry().clone();
    eventually("heartbeat seen", || {
        registry
            .channels()
            .is_ok_and(|c| c[0].heartbeat_valid_until.is_some())
    })
    .await;
    eventually("channel stale", || {
        registry
            .channels()
            .is_ok_and(|c| c[0].freshness == ChannelHealth::Stale)
    })
    .await;
    assert!(registry
        .events(100)
        .expect("events")
        .iter()
        .any(|e| e.message.contains("is stale")));
    running.stop().await;
}

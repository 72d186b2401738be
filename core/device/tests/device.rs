//! The device agent against a real mosquitto (TLS, required client certificates) and an HTTPS
//! file server: installs, refusals (each attack named), rollback, resume, stall, offline.

mod common;

use std::time::Duration;

use common::{bad_image, image, Serve, Vendor, World};
use fwledger_device::SlotId;
use fwledger_link::UpdateState;
use fwledger_proto::sha2::{Digest, Sha256};
use fwledger_proto::Notice;

const ID: &str = "lamp-01";

fn states(world: &World) -> Vec<UpdateState> {
    world.gateway.statuses(ID).iter().map(|s| s.state).collect()
}

/// Starts the device and waits for its first report (factory image 1.0.0).
fn online(world: &World) -> common::DeviceThread {
    let device = world.spawn(world.config(ID));
    let idle = world.gateway.wait_state(ID, 0, UpdateState::Idle);
    assert_eq!(idle.version, "1.0.0");
    assert_eq!(idle.security_version, 0);
    device
}

/// The device refused the notice with `check`, reports it and still runs 1.0.0 from slot A.
fn assert_refused(world: &World, skip: usize, check: &str) {
    let failed = world.gateway.wait_state(ID, skip, UpdateState::Failed);
    let reason = failed.reason.clone().unwrap_or_default();
    assert!(
        reason.starts_with(&format!("{check}: ")),
        "expected a {check} refusal, got {reason:?}"
    );
    assert_eq!(failed.version, "1.0.0");
    let record = world.record(ID);
    assert_eq!(record.active, SlotId::A);
    assert!(record.pending.is_none() && record.slot_b.is_none());
    assert_eq!(world.assert_bootable(ID), "1.0.0");
}

#[test]
fn installs_reboots_confirms_and_reports_the_new_version() {
    let world = World::new();
    let _device = online(&world);
    let img = image("v1.1.0", 300_000);
    world.gateway.notify(ID, &world.release(&img, "1.1.0", 1));

    let confirmed = world.gateway.wait_state(ID, 0, UpdateState::Confirmed);
    assert_eq!(confirmed.version, "1.1.0");
    assert_eq!(confirmed.security_version, 1);
    assert_eq!(confirmed.release.as_deref(), Some("1.1.0"));
    assert_eq!(confirmed.sha256, Some(hex::encode(Sha256::digest(&img))));
    let seen = states(&world);
    let at = |s| seen.iter().position(|x| *x == s).unwrap_or(usize::MAX);
    assert!(at(UpdateState::Downloading) < at(UpdateState::Installing));
    assert!(at(UpdateState::Installing) < at(UpdateState::Confirmed));

    let record = world.record(ID);
    assert_eq!((record.active, record.confirmed), (SlotId::B, true));
    assert_eq!(record.highest_security_version, 1);
    assert_eq!(common::read(&world.state_dir(ID).join("slot_b.bin")), img);
    assert_eq!(world.assert_bootable(ID), "1.1.0");
}

#[test]
fn forged_notice_is_refused_once_and_a_genuine_one_still_installs() {
    let world = World::new();
    let _device = online(&world);
    let img = image("forged", 50_000);
    // The manifest names the trusted vendor but is signed under another root's release key.
    let mallory = Vendor::new(99);
    let manifest = world.vendor.manifest(&img, "1.1.0", 0);
    let forged = world.notice_for(&manifest, &mallory, img, Serve::Normal);
    world.gateway.notify(ID, &forged);
    assert_refused(&world, 0, "release-key-certificate");

    // The same notice again (a reconnect, a replay): ignored, not re-downloaded or re-reported.
    world.gateway.notify(ID, &forged);
    std::thread::sleep(Duration::from_secs(2));
    let failures = states(&world)
        .iter()
        .filter(|s| **s == UpdateState::Failed)
        .count();
    assert_eq!(failures, 1);

    // A new notice with a different manifest is processed.
    let genuine = image("genuine", 50_000);
    world
        .gateway
        .notify(ID, &world.release(&genuine, "1.1.0", 0));
    let confirmed = world.gateway.wait_state(ID, 0, UpdateState::Confirmed);
    assert_eq!(confirmed.version, "1.1.0");
}

#[test]
fn altered_notice_signature_is_refused() {
    let world = World::new();
    let _device = online(&world);
    let img = image("altered", 10_000);
    let mut notice = Notice::from_cbor(&world.release(&img, "1.1.0", 0)).expect("notice");
    let last = notice.manifest.len() - 1;
    notice.manifest[last] ^= 1;
    world.gateway.notify(ID, &notice.to_cbor());
    assert_refused(&world, 0, "manifest-signature");
}

#[test]
fn manifest_for_another_model_is_refused() {
    let world = World::new();
    let _device = online(&world);
    let img = image("kettle", 10_000);
    let mut manifest = world.vendor.manifest(&img, "1.1.0", 0);
    manifest.model = "kettle".into();
    world.gateway.notify(
        ID,
        &world.notice_for(&manifest, &world.vendor, img, Serve::Normal),
    );
    assert_refused(&world, 0, "model");
}

#[test]
fn image_that_differs_from_the_manifest_is_refused() {
    let world = World::new();
    let _device = online(&world);
    let img = image("promised", 100_000);
    let manifest = world.vendor.manifest(&img, "1.1.0", 0);
    // A malicious mirror serves other bytes of the same length.
    let other = image("served", 100_000);
    world.gateway.notify(
        ID,
        &world.notice_for(&manifest, &world.vendor, other, Serve::Normal),
    );
    assert_refused(&world, 0, "image-sha256");
}

#[test]
fn endless_data_is_refused() {
    let world = World::new();
    let _device = online(&world);
    let img = image("endless", 100_000);
    let manifest = world.vendor.manifest(&img, "1.1.0", 0);
    let mut longer = img.clone();
    longer.extend_from_slice(&image("more", 50_000));
    world.gateway.notify(
        ID,
        &world.notice_for(&manifest, &world.vendor, longer, Serve::Normal),
    );
    assert_refused(&world, 0, "image-size");
}

#[test]
fn older_security_version_is_refused() {
    let world = World::new();
    let _device = online(&world);
    let img = image("sv2", 20_000);
    world.gateway.notify(ID, &world.release(&img, "1.1.0", 2));
    world.gateway.wait_state(ID, 0, UpdateState::Confirmed);
    let skip = world.gateway.statuses(ID).len();

    // Newer version, lower security version: a rollback attack.
    let old = image("sv1", 20_000);
    world.gateway.notify(ID, &world.release(&old, "1.2.0", 1));
    let failed = world.gateway.wait_state(ID, skip, UpdateState::Failed);
    assert!(
        failed
            .reason
            .as_deref()
            .unwrap_or_default()
            .starts_with("security-version: "),
        "{failed:?}"
    );
    assert_eq!(
        (failed.version.as_str(), failed.security_version),
        ("1.1.0", 2)
    );
    let record = world.record(ID);
    assert_eq!(record.active, SlotId::B);
    assert_eq!(record.highest_security_version, 2);
    assert_eq!(world.assert_bootable(ID), "1.1.0");
}

#[test]
fn bad_image_is_rolled_back() {
    let world = World::new();
    let _device = online(&world);
    let img = bad_image("selfcheck", 80_000);
    world.gateway.notify(ID, &world.release(&img, "1.1.0", 1));
    let rolled = world.gateway.wait_state(ID, 0, UpdateState::RolledBack);
    assert!(
        rolled
            .reason
            .as_deref()
            .unwrap_or_default()
            .starts_with("self-check: "),
        "{rolled:?}"
    );
    assert_eq!(rolled.release.as_deref(), Some("1.1.0"));
    assert_eq!(
        (rolled.version.as_str(), rolled.security_version),
        ("1.0.0", 0)
    );
    let record = world.record(ID);
    assert_eq!((record.active, record.confirmed), (SlotId::A, true));
    assert!(record.slot_b.is_none());
    assert_eq!(record.highest_security_version, 0);
    assert_eq!(world.assert_bootable(ID), "1.0.0");
    // The retained notice comes again on the reconnect after the reboot: not retried.
    std::thread::sleep(Duration::from_secs(1));
    let downloads = states(&world)
        .iter()
        .filter(|s| **s == UpdateState::Downloading)
        .count();
    assert_eq!(downloads, 1);
}

#[test]
fn interrupted_download_resumes_with_range() {
    let world = World::new();
    let _device = online(&world);
    let img = image("resume", 400_000);
    let manifest = world.vendor.manifest(&img, "1.1.0", 0);
    world.gateway.notify(
        ID,
        &world.notice_for(
            &manifest,
            &world.vendor,
            img.clone(),
            Serve::CutOnce(150_000),
        ),
    );
    let confirmed = world.gateway.wait_state(ID, 0, UpdateState::Confirmed);
    assert_eq!(confirmed.version, "1.1.0");
    let ranges = world.files.ranges();
    assert_eq!(ranges.first(), Some(&None), "{ranges:?}");
    let resumed: Vec<u64> = ranges
        .iter()
        .flatten()
        .filter_map(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok())
        .collect();
    assert!(
        resumed.iter().any(|n| *n > 0),
        "no Range resume in {ranges:?}"
    );
    assert_eq!(common::read(&world.state_dir(ID).join("slot_b.bin")), img);
}

#[test]
fn stalled_download_times_out() {
    let world = World::new();
    let mut config = world.config(ID);
    config.read_timeout = Duration::from_secs(1);
    config.settings.retry_after = Duration::from_secs(3600);
    let _device = world.spawn(config);
    world.gateway.wait_state(ID, 0, UpdateState::Idle);
    let img = image("stall", 100_000);
    let manifest = world.vendor.manifest(&img, "1.1.0", 0);
    world.gateway.notify(
        ID,
        &world.notice_for(&manifest, &world.vendor, img, Serve::Stall),
    );
    assert_refused(&world, 0, "download-stalled");
}

#[test]
fn offline_device_gets_the_retained_notice_without_polling() {
    let world = World::new();
    let img = image("offline", 60_000);
    // Published while the device is off; the test gateway never answers `check` requests.
    world.gateway.notify(ID, &world.release(&img, "1.1.0", 0));
    let mut config = world.config(ID);
    config.settings.check_interval = Duration::from_secs(3600);
    let _device = world.spawn(config);
    let confirmed = world.gateway.wait_state(ID, 0, UpdateState::Confirmed);
    assert_eq!(confirmed.version, "1.1.0");
}

#[test]
fn plain_mqtt_on_loopback_works_for_demos() {
    let world = World::plain_mqtt();
    let _device = online(&world);
    let img = image("plain", 30_000);
    world.gateway.notify(ID, &world.release(&img, "1.1.0", 0));
    let confirmed = world.gateway.wait_state(ID, 0, UpdateState::Confirmed);
    assert_eq!(confirmed.version, "1.1.0");
}

#[test]
fn many_devices_in_one_process() {
    let world = World::new();
    let ids: Vec<String> = (0..8).map(|i| format!("lamp-{i:02}")).collect();
    let _devices: Vec<_> = ids.iter().map(|id| world.spawn(world.config(id))).collect();
    let img = image("fleet", 100_000);
    let notice = world.release(&img, "1.1.0", 1);
    for id in &ids {
        world.gateway.wait_state(id, 0, UpdateState::Idle);
        world.gateway.notify(id, &notice);
    }
    for id in &ids {
        let confirmed = world.gateway.wait_state(id, 0, UpdateState::Confirmed);
        assert_eq!(confirmed.version, "1.1.0");
    }
}

#[test]
fn a_device_cannot_use_an_untrusted_broker() {
    // The broker's certificate comes from another CA than the bundle's: no connection at all.
    let world = World::new();
    let mut bundle = world.bundle(ID);
    bundle.ca_cert_pem = common::Pki::new().ca_pem();
    let mut config = fwledger_device::host::DeviceConfig::new(bundle, world.state_dir(ID));
    config.connect_timeout = Duration::from_secs(2);
    let _device = world.spawn(config);
    std::thread::sleep(Duration::from_secs(3));
    assert!(world.gateway.statuses(ID).is_empty());
}

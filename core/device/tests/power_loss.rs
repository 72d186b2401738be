//! Power loss at each step of an install (`FWLEDGER_DEVICE_CRASH_AT`): the process exits
//! abruptly; what the next boot would run is always a complete, verified image; the restarted
//! device finishes the install (or the rollback) and reports it.

mod common;

use common::{bad_image, image, World};
use fwledger_device::host::CRASH_EXIT_CODE;
use fwledger_device::FaultPoint;
use fwledger_link::UpdateState;

const ID: &str = "lamp-pl";

fn crash_then_recover(point: FaultPoint, bad: bool) -> World {
    let world = World::new();
    let img = if bad {
        bad_image("power-loss", 300_000)
    } else {
        image("power-loss", 300_000)
    };
    world.gateway.notify(ID, &world.release(&img, "1.1.0", 1));

    let mut first = world.process(ID, Some(point));
    assert_eq!(
        first.wait_exit(),
        Some(CRASH_EXIT_CODE),
        "no crash at {point}"
    );
    if point == FaultPoint::PendingWrite {
        // The torn temp file is left behind; boot.json is the previous, complete record.
        let tmp = world
            .state_dir(ID)
            .join(format!("{}.tmp", fwledger_device::host::BOOT_RECORD));
        assert!(tmp.exists());
        assert!(world.record(ID).pending.is_none());
    }
    let version = world.assert_bootable(ID);
    assert!(version == "1.0.0" || version == "1.1.0", "{version}");

    let _second = world.process(ID, None);
    if bad {
        let rolled = world.gateway.wait_state(ID, 0, UpdateState::RolledBack);
        assert_eq!(rolled.version, "1.0.0");
        assert_eq!(world.assert_bootable(ID), "1.0.0");
    } else {
        let confirmed = world.gateway.wait_state(ID, 0, UpdateState::Confirmed);
        assert_eq!(
            (confirmed.version.as_str(), confirmed.security_version),
            ("1.1.0", 1)
        );
        assert_eq!(world.assert_bootable(ID), "1.1.0");
        assert_eq!(world.record(ID).highest_security_version, 1);
    }
    world
}

#[test]
fn power_loss_after_accept() {
    crash_then_recover(FaultPoint::AfterAccept, false);
}

#[test]
fn power_loss_mid_download_resumes_with_range() {
    let world = crash_then_recover(FaultPoint::MidDownload, false);
    let resumed = world
        .files
        .ranges()
        .iter()
        .flatten()
        .filter_map(|r| {
            r.strip_prefix("bytes=")?
                .strip_suffix('-')?
                .parse::<u64>()
                .ok()
        })
        .any(|n| n >= 150_000);
    assert!(resumed, "no Range resume: {:?}", world.files.ranges());
}

#[test]
fn power_loss_after_download() {
    crash_then_recover(FaultPoint::AfterDownload, false);
}

#[test]
fn power_loss_while_writing_the_pending_record() {
    crash_then_recover(FaultPoint::PendingWrite, false);
}

#[test]
fn power_loss_after_pending() {
    crash_then_recover(FaultPoint::AfterPending, false);
}

#[test]
fn power_loss_after_switch() {
    crash_then_recover(FaultPoint::AfterSwitch, false);
}

#[test]
fn power_loss_during_self_check() {
    crash_then_recover(FaultPoint::DuringSelfCheck, false);
}

#[test]
fn power_loss_after_confirm() {
    crash_then_recover(FaultPoint::AfterConfirm, false);
}

#[test]
fn power_loss_after_rollback() {
    crash_then_recover(FaultPoint::AfterRollback, true);
}

#[test]
fn image_that_never_finishes_booting_is_rolled_back() {
    let world = World::new();
    let img = image("boot-loop", 50_000);
    world.gateway.notify(ID, &world.release(&img, "1.1.0", 1));
    // Every boot of the new image dies during its self-check (the default limit is 3 boots).
    for _ in 0..3 {
        let mut boot = world.process(ID, Some(FaultPoint::DuringSelfCheck));
        assert_eq!(boot.wait_exit(), Some(CRASH_EXIT_CODE));
        world.assert_bootable(ID);
    }
    let _last = world.process(ID, None);
    let rolled = world.gateway.wait_state(ID, 0, UpdateState::RolledBack);
    assert!(
        rolled
            .reason
            .as_deref()
            .unwrap_or_default()
            .starts_with("boot-attempts: "),
        "{rolled:?}"
    );
    assert_eq!(rolled.version, "1.0.0");
    assert_eq!(world.assert_bootable(ID), "1.0.0");
}

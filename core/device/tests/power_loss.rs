//! Power loss at each step of an install (`FWLEDGER_DEVICE_CRASH_AT`): the process exits
//! abruptly; what the next boot would run is always a complete, verified image; the restarted
//! device finishes the install (or the rollback) and reports it.

mod common;

use common::{bad_image, image, World};
use fwledger_device::host::CRASH_EXIT_CODE;
use fwledger_device::FaultPoint;
use fwledger_link::UpdateState;

const ID: &str = "lamp-pl";

/// The steps an install of a good image passes (a failing self-check takes the rollback
/// steps instead of the confirmation steps).
fn reached(point: FaultPoint, bad: bool) -> bool {
    match point {
        FaultPoint::ConfirmWrite | FaultPoint::AfterConfirm => !bad,
        FaultPoint::RollbackWrite | FaultPoint::AfterRollback => bad,
        _ => true,
    }
}

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
        "no crash at {point} (bad image: {bad})"
    );
    if point.is_torn_write() {
        // The torn temp file is left behind; boot.json is the previous, complete record.
        let tmp = world
            .state_dir(ID)
            .join(format!("{}.tmp", fwledger_device::host::BOOT_RECORD));
        assert!(tmp.exists(), "{point}: no torn temp file");
        let record = world.record(ID);
        if point == FaultPoint::PendingWrite {
            assert!(record.pending.is_none(), "{point}: {record:?}");
        }
        if point == FaultPoint::AcceptWrite {
            assert!(record.download.is_none(), "{point}: {record:?}");
        }
    }
    let version = world.assert_bootable(ID);
    assert!(
        version == "1.0.0" || version == "1.1.0",
        "{point}: {version}"
    );

    let _second = world.process(ID, None);
    if bad {
        let rolled = world.gateway.wait_state(ID, 0, UpdateState::RolledBack);
        assert_eq!(rolled.version, "1.0.0", "{point}");
        assert_eq!(world.assert_bootable(ID), "1.0.0", "{point}");
    } else {
        let confirmed = world.gateway.wait_state(ID, 0, UpdateState::Confirmed);
        assert_eq!(
            (confirmed.version.as_str(), confirmed.security_version),
            ("1.1.0", 1),
            "{point}"
        );
        assert_eq!(world.assert_bootable(ID), "1.1.0", "{point}");
        assert_eq!(world.record(ID).highest_security_version, 1, "{point}");
    }
    world
}

/// Every step of an install, in order, with whether a good and a bad image pass it; printed so
/// the test log shows the list.
fn steps(bad: bool) -> Vec<FaultPoint> {
    let steps: Vec<FaultPoint> = FaultPoint::ALL
        .into_iter()
        .filter(|p| reached(*p, bad))
        .collect();
    let names: Vec<&str> = steps.iter().map(|p| p.name()).collect();
    println!(
        "power cut at {} steps ({} image): {}",
        steps.len(),
        if bad { "failing" } else { "good" },
        names.join(", ")
    );
    steps
}

#[test]
fn power_cut_at_every_step_of_a_good_install_boots_a_verified_image_and_confirms() {
    let steps = steps(false);
    assert_eq!(steps.len(), 12);
    for point in steps {
        crash_then_recover(point, false);
    }
}

#[test]
fn power_cut_at_every_step_of_a_failing_install_boots_a_verified_image_and_rolls_back() {
    let steps = steps(true);
    assert_eq!(steps.len(), 12);
    for point in steps {
        crash_then_recover(point, true);
    }
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

//! Staged rollouts end to end, against a real mosquitto the gateway starts: devices are MQTT
//! clients with their own certificates that report status like the device agent does (the CLI
//! suite `core/cli/tests/rollout.rs` runs real agents). A percentage stage reaches only its
//! devices; failures above the threshold halt the rollout and withdraw notices not acted on;
//! resume and advance go on; a group-first stage auto-advances; state survives a restart; the
//! API shows it.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::{bundle_tls, eventually, fast_timing, https_get, require_mosquitto, Client, World};
use fwledger_gateway::registry::{Registry, RolloutAction};
use fwledger_gateway::rollout::{self, Candidate, RolloutPlan, RolloutState};
use fwledger_gateway::{RunOptions, RunningGateway};
use fwledger_link::{topics, Bundle, DeviceStatus, UpdateState};

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

struct Fleet {
    bundles: Vec<Bundle>,
    clients: HashMap<String, Client>,
}

impl Fleet {
    fn register(world: &World, ids: &[String]) -> Vec<Bundle> {
        ids.iter()
            .map(|id| world.add_device(id, "lamp", "rev-b"))
            .collect()
    }

    async fn connect(bundles: Vec<Bundle>) -> Fleet {
        let mut clients = HashMap::new();
        for bundle in &bundles {
            let mut client =
                Client::connect(&bundle.mqtt_url, bundle_tls(bundle), &bundle.device_id)
                    .await
                    .expect("device connects");
            client.subscribe(&topics::notice(&bundle.device_id)).await;
            clients.insert(bundle.device_id.clone(), client);
        }
        Fleet { bundles, clients }
    }

    async fn report(&self, id: &str, state: UpdateState, version: &str, reason: Option<&str>) {
        let mut status = DeviceStatus::idle(version, 1);
        status.state = state;
        status.release = Some("1.1.0".into());
        status.reason = reason.map(String::from);
        self.clients[id]
            .publish(
                &topics::status(id),
                false,
                serde_json::to_vec(&status).expect("json"),
            )
            .await;
    }

    /// Reports version 1.0.0 from every device, as agents do on connect.
    async fn say_hello(&self) {
        for bundle in &self.bundles {
            let status = DeviceStatus::idle("1.0.0", 1);
            self.clients[&bundle.device_id]
                .publish(
                    &topics::status(&bundle.device_id),
                    false,
                    serde_json::to_vec(&status).expect("json"),
                )
                .await;
        }
    }
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:02}")).collect()
}

/// The devices whose retained notice offers the release.
fn noticed(registry: &Registry, release: i64) -> HashSet<String> {
    registry
        .devices()
        .expect("devices")
        .into_iter()
        .filter(|d| d.notice_release == Some(release))
        .map(|d| d.id)
        .collect()
}

fn rollout_state(registry: &Registry, release: i64) -> (RolloutState, usize) {
    let r = registry.rollout(release).expect("q").expect("rollout");
    (r.state, r.stage)
}

/// What the gateway should select for `stage`, computed independently of the service.
fn expected_members(
    registry: &Registry,
    release: i64,
    plan: &RolloutPlan,
    stage: usize,
) -> HashSet<String> {
    let sha = registry
        .release(release)
        .expect("q")
        .expect("release")
        .sha256;
    let candidates: Vec<Candidate> = registry
        .devices()
        .expect("devices")
        .into_iter()
        .map(|d| Candidate {
            id: d.id,
            group: d.group,
            update: None,
            notice: false,
            runs_release: false,
        })
        .collect();
    rollout::members(plan, &sha, stage, &candidates)
}

#[tokio::test]
async fn percentage_stage_halts_on_failures_withdraws_notices_and_resumes() {
    let mut world = World::new();
    let devices = ids("lamp", 10);
    let bundles = Fleet::register(&world, &devices);
    let gateway = world.gateway();
    // The gateway default applies to the release announced next: 10 %, then 50 %, then all;
    // halt above 20 % failed once 1 device was attempted.
    let mut plan = RolloutPlan::parse_stages("10%,50%,all").expect("plan");
    plan.advance = rollout::Advance::Manual;
    gateway
        .registry()
        .set_rollout_default(Some(&plan))
        .expect("default");
    let running = start(&world).await;
    let registry = running.registry().clone();
    let mut fleet = Fleet::connect(bundles).await;
    fleet.say_hello().await;

    world.publish("1.1.0", &["rev-b"], 20_000).await;
    eventually("release verified", || {
        registry
            .releases()
            .is_ok_and(|r| r.first().is_some_and(|r| r.path.is_some()))
    })
    .await;
    let release = registry.releases().expect("releases")[0].id;
    let first = expected_members(&registry, release, &plan, 0);
    assert_eq!(first.len(), 1, "10 % of 10 devices");
    eventually("the 10 % stage is notified", || {
        noticed(&registry, release) == first
    })
    .await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        noticed(&registry, release),
        first,
        "only the stage's device"
    );
    for id in devices.iter().filter(|id| !first.contains(*id)) {
        assert!(
            registry.device_update(id, release).expect("q").is_none(),
            "{id} outside the stage was offered the release"
        );
    }

    // The canary confirms: the stage is done; the manual plan waits for the operator.
    let canary = first.iter().next().expect("canary").clone();
    fleet
        .report(&canary, UpdateState::Confirmed, "1.1.0", None)
        .await;
    eventually("stage 1 waits for the operator", || {
        rollout_state(&registry, release) == (RolloutState::Waiting, 0)
    })
    .await;
    assert_eq!(
        noticed(&registry, release),
        HashSet::new(),
        "the canary runs it"
    );
    registry
        .rollout_action(release, RolloutAction::Resume, "test")
        .expect("resume");
    let second = expected_members(&registry, release, &plan, 1);
    assert_eq!(second.len(), 5);
    assert!(first.is_subset(&second));
    let notified: HashSet<String> = second.difference(&first).cloned().collect();
    eventually("the 50 % stage is notified", || {
        noticed(&registry, release) == notified
    })
    .await;

    // Two of the four new devices fail: 2/5 attempted = 40 % > 20 % → halted; the two that
    // have not started lose their notice (an empty retained message), the rest never get it.
    let mut order: Vec<&String> = notified.iter().collect();
    order.sort();
    fleet
        .report(
            order[0],
            UpdateState::RolledBack,
            "1.0.0",
            Some("self-check: test"),
        )
        .await;
    fleet
        .report(
            order[1],
            UpdateState::Failed,
            "1.0.0",
            Some("download: test"),
        )
        .await;
    eventually("halted", || {
        rollout_state(&registry, release).0 == RolloutState::Halted
    })
    .await;
    let status = registry
        .rollout_status(release)
        .expect("q")
        .expect("status");
    assert_eq!(status.summary, "halted: 2/5 failed (40 % > 20 %)");
    assert!(registry
        .events(50)
        .expect("events")
        .iter()
        .any(|e| e.message.contains("halted: 2/5 failed (40 % > 20 %)")));
    eventually("notices not acted on are withdrawn", || {
        noticed(&registry, release).is_subset(&HashSet::from([order[0].clone(), order[1].clone()]))
    })
    .await;
    let mut withdrawn = fleet.clients.remove(order[2]).expect("client");
    let topic = topics::notice(order[2]);
    let mut empty = false;
    while let Some(message) = withdrawn.recv_on(&topic, QUIET).await {
        empty = message.payload.is_empty();
    }
    assert!(empty, "the last retained notice of {} is empty", order[2]);
    for id in devices.iter().filter(|id| !second.contains(*id)) {
        assert!(registry.device_update(id, release).expect("q").is_none());
    }
    // The reconcile loop keeps it halted.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(rollout_state(&registry, release).0, RolloutState::Halted);

    // Resume: only new failures count; the withdrawn devices are offered it again.
    registry
        .rollout_action(release, RolloutAction::Resume, "test")
        .expect("resume");
    eventually("resumed stage re-notified", || {
        noticed(&registry, release).contains(order[2])
    })
    .await;
    assert_eq!(rollout_state(&registry, release), (RolloutState::Active, 1));
    // Abort: final.
    registry
        .rollout_action(release, RolloutAction::Abort, "test")
        .expect("abort");
    assert!(registry
        .rollout_action(release, RolloutAction::Resume, "test")
        .is_err());
    eventually("aborted: notices withdrawn", || {
        !noticed(&registry, release).contains(order[2])
    })
    .await;
    running.stop().await;
}

#[tokio::test]
async fn group_first_stage_auto_advances_and_survives_a_restart() {
    let mut world = World::new();
    let devices = ids("lamp", 6);
    let bundles = Fleet::register(&world, &devices);
    let saved = bundles.clone();
    let gateway = world.gateway();
    for id in &devices[..2] {
        gateway
            .registry()
            .set_device_group(id, Some("canary"))
            .expect("group");
    }
    assert!(gateway
        .registry()
        .set_device_group("lamp-00", Some("bad group"))
        .is_err());
    let admin = gateway.reset_admin_password().expect("admin");
    let plan = RolloutPlan::parse_stages("group:canary,50%,all").expect("plan");
    gateway
        .registry()
        .set_rollout_default(Some(&plan))
        .expect("default");
    let running = start(&world).await;
    let registry = running.registry().clone();
    let fleet = Fleet::connect(bundles).await;
    fleet.say_hello().await;

    world.publish("1.1.0", &["rev-b"], 20_000).await;
    let canaries: HashSet<String> = devices[..2].iter().cloned().collect();
    eventually("the canary group is notified", || {
        registry
            .releases()
            .ok()
            .and_then(|r| r.first().map(|r| r.id))
            .is_some_and(|id| noticed(&registry, id) == canaries)
    })
    .await;
    let release = registry.releases().expect("releases")[0].id;
    tokio::time::sleep(QUIET).await;
    assert_eq!(noticed(&registry, release), canaries, "only the group");

    // Both canaries confirm: the next stage (50 % of 6 = 3, with the canaries) starts by itself.
    for id in &canaries {
        fleet
            .report(id, UpdateState::Confirmed, "1.1.0", None)
            .await;
    }
    eventually("advanced to stage 2", || {
        rollout_state(&registry, release) == (RolloutState::Active, 1)
    })
    .await;
    let second = expected_members(&registry, release, &plan, 1);
    let second_new: HashSet<String> = second.difference(&canaries).cloned().collect();
    assert!(!second_new.is_empty() && second_new.len() <= 3);
    eventually("stage 2 notified", || {
        noticed(&registry, release) == second_new
    })
    .await;

    // The API shows it (read with the API token).
    let token = admin.api_token;
    let ca = &fleet.bundles[0].ca_cert_pem;
    let url = format!("{}/api/rollouts", fleet.bundles[0].http_url);
    let answer = https_get(
        &url,
        ca,
        &[("Authorization", &format!("Bearer {}", token.trim()))],
    )
    .await;
    assert_eq!(answer.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&answer.body).expect("json");
    assert_eq!(body["default"]["stages"][0]["group"], "canary");
    let shown = &body["rollouts"][0];
    assert_eq!(shown["state"], "active");
    assert_eq!(shown["stage"], 1);
    assert_eq!(shown["stages"], "group:canary,50%,100%");
    assert_eq!(shown["counts"]["confirmed"], 2);
    assert_eq!(shown["counts"]["eligible"], 6);

    // Restart: the stage and the notices stay as they were; no one else is offered it.
    running.stop().await;
    drop(fleet);
    let running = start(&world).await;
    let registry = running.registry().clone();
    assert_eq!(rollout_state(&registry, release), (RolloutState::Active, 1));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(noticed(&registry, release), second_new);
    let fleet = Fleet::connect(saved).await;
    for id in &second_new {
        fleet
            .report(id, UpdateState::Confirmed, "1.1.0", None)
            .await;
    }
    let rest: HashSet<String> = devices
        .iter()
        .filter(|id| !second.contains(*id))
        .cloned()
        .collect();
    eventually("the last stage is notified", || {
        noticed(&registry, release) == rest
    })
    .await;
    for id in &rest {
        fleet
            .report(id, UpdateState::Confirmed, "1.1.0", None)
            .await;
    }
    eventually("complete", || {
        rollout_state(&registry, release).0 == RolloutState::Complete
    })
    .await;
    running.stop().await;
}

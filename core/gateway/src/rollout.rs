//! Staged rollouts: which devices may be offered a release, and when a rollout advances or halts
//! (as hawkBit and Mender do). Pure decisions over what the registry knows — no IO, no clock of
//! its own; the service ([`crate::registry::Registry`] for state, the reconcile loop for timing)
//! drives them.
//!
//! - **Groups.** A device belongs to at most one group (`gateway device add --group G`, `gateway
//!   device group`), like Mender's static groups.
//! - **Plan.** Per release (and a gateway default applied to releases announced after it is
//!   set): ordered stages, each a percentage of the *eligible* devices (registered devices of the
//!   release's model and hardware) or a group. Stages are cumulative: stage `k` offers the release
//!   to every device of stages `0..=k`. A percentage takes the `ceil(p·n/100)` eligible devices
//!   that rank first by `SHA-256(release image hash, device id)`, so a device's stage does not
//!   change between restarts; a device once offered the release stays offered (adding devices
//!   never withdraws a notice). Without `100%` (`all`) as the last stage the release never goes
//!   beyond the listed stages.
//! - **Failure threshold.** Halt when `failed / attempted > threshold` once at least
//!   `min_sample` devices were attempted. *Attempted* = devices offered the release whose notice
//!   still offers it or that started it; *failed* = `failed` or `rolled_back`. After a halt is
//!   resumed (or advanced) only what happens since counts (the counts then are the new
//!   baseline); a new plan starts from the counts at the time it is set.
//! - **Advance.** A stage is done when `success` % of its devices (cumulative) confirmed the
//!   release or already run it (or a newer version), and it has run for `wait` seconds. `auto`
//!   starts the next stage then; `manual` waits for `rollout resume` (or `advance`). After the
//!   last stage the rollout is `complete`.
//! - **Halted / aborted.** No new device is offered the release, and the notice of every device
//!   that has not started it yet (still `notified`) is withdrawn — a bad release spreads no
//!   further; devices that started finish (they may roll back). An operator can resume (same
//!   stage), advance (next stage) or abort (final; `rollout set` starts a new plan).
//!
//! ```
//! use fwledger_gateway::rollout::{RolloutPlan, StageTarget};
//!
//! let plan = RolloutPlan::parse_stages("10%,group:canary,all")?;
//! assert_eq!(plan.stages[1], StageTarget::Group("canary".into()));
//! assert_eq!(plan.stages_text(), "10%,group:canary,100%");
//! plan.validate()?;
//! # Ok::<(), fwledger_gateway::rollout::PlanError>(())
//! ```

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::registry::UpdateStage;

/// Most stages a plan may have.
pub const MAX_STAGES: usize = 32;

/// Why a rollout plan is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// A stage is neither `N%`, `all` nor `group:NAME`.
    #[error("stage {0:?}: expected N% (1-100), all, or group:NAME")]
    BadStage(String),
    /// No stage, or too many.
    #[error("a rollout plan needs 1 to {MAX_STAGES} stages")]
    StageCount,
    /// A percentage outside 0-100.
    #[error("{what} must be a percentage from {min} to 100, not {value}")]
    BadPercent {
        /// Which setting.
        what: &'static str,
        /// Smallest value allowed.
        min: u8,
        /// What was given.
        value: u64,
    },
}

/// One stage of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageTarget {
    /// This percentage (1-100) of the eligible devices.
    Percent(u8),
    /// The devices of this group.
    Group(String),
}

impl StageTarget {
    /// `10%` or `group:NAME`.
    pub fn text(&self) -> String {
        match self {
            StageTarget::Percent(p) => format!("{p}%"),
            StageTarget::Group(g) => format!("group:{g}"),
        }
    }

    /// Parses `N%`, `N`, `all` or `group:NAME`.
    pub fn parse(text: &str) -> Result<Self, PlanError> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("all") {
            return Ok(StageTarget::Percent(100));
        }
        if let Some(group) = text.strip_prefix("group:") {
            if !valid_group(group) {
                return Err(PlanError::BadStage(text.into()));
            }
            return Ok(StageTarget::Group(group.into()));
        }
        let number = text.strip_suffix('%').unwrap_or(text).trim();
        match number.parse::<u8>() {
            Ok(p) if (1..=100).contains(&p) => Ok(StageTarget::Percent(p)),
            _ => Err(PlanError::BadStage(text.into())),
        }
    }
}

/// Whether `name` can be a group name (1-64 of A-Z a-z 0-9 . _ -, like device ids).
pub fn valid_group(name: &str) -> bool {
    fwledger_link::valid_device_id(name)
}

/// When a stage that is done moves on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Advance {
    /// Start the next stage by itself.
    Auto,
    /// Wait for an operator (`rollout resume` or `advance`).
    Manual,
}

/// A rollout plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutPlan {
    /// Ordered, cumulative stages.
    pub stages: Vec<StageTarget>,
    /// Halt when more than this percentage of the attempted devices failed.
    pub failure_threshold: u8,
    /// Judge the failure rate only once this many devices were attempted (at least 1).
    pub min_sample: u32,
    /// What happens when a stage is done.
    pub advance: Advance,
    /// Percentage of a stage's devices that must run the release before the stage is done.
    pub success: u8,
    /// Seconds a stage runs at least before it is done.
    pub wait: u64,
}

impl RolloutPlan {
    /// A plan with these stages and the defaults: halt above 20 % failed (from the first
    /// attempted device), auto-advance once every device of the stage runs the release.
    pub fn new(stages: Vec<StageTarget>) -> Self {
        RolloutPlan {
            stages,
            failure_threshold: 20,
            min_sample: 1,
            advance: Advance::Auto,
            success: 100,
            wait: 0,
        }
    }

    /// A plan from `10%,group:canary,all` and the defaults of [`RolloutPlan::new`].
    pub fn parse_stages(text: &str) -> Result<Self, PlanError> {
        let stages = text
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(StageTarget::parse)
            .collect::<Result<Vec<_>, _>>()?;
        let plan = RolloutPlan::new(stages);
        plan.validate()?;
        Ok(plan)
    }

    /// The stages as `10%,group:canary,100%`.
    pub fn stages_text(&self) -> String {
        self.stages
            .iter()
            .map(StageTarget::text)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Checks the limits.
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.stages.is_empty() || self.stages.len() > MAX_STAGES {
            return Err(PlanError::StageCount);
        }
        for stage in &self.stages {
            match stage {
                StageTarget::Percent(p) if !(1..=100).contains(p) => {
                    return Err(PlanError::BadStage(stage.text()))
                }
                StageTarget::Group(g) if !valid_group(g) => {
                    return Err(PlanError::BadStage(stage.text()))
                }
                _ => {}
            }
        }
        let percent = |what, min, value: u8| {
            if value < min || value > 100 {
                Err(PlanError::BadPercent {
                    what,
                    min,
                    value: value.into(),
                })
            } else {
                Ok(())
            }
        };
        percent("failure threshold", 0, self.failure_threshold)?;
        percent("success", 1, self.success)?;
        Ok(())
    }
}

/// Where a rollout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RolloutState {
    /// Offering the release to the devices of the current stage (and the earlier ones).
    Active,
    /// The current stage is done; waiting for an operator to start the next one.
    Waiting,
    /// Too many failures: no new device is offered the release.
    Halted,
    /// Stopped by an operator for good.
    Aborted,
    /// Every stage is done.
    Complete,
}

impl RolloutState {
    /// The stored (and displayed) name.
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutState::Active => "active",
            RolloutState::Waiting => "waiting",
            RolloutState::Halted => "halted",
            RolloutState::Aborted => "aborted",
            RolloutState::Complete => "complete",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "active" => RolloutState::Active,
            "waiting" => RolloutState::Waiting,
            "halted" => RolloutState::Halted,
            "aborted" => RolloutState::Aborted,
            "complete" => RolloutState::Complete,
            _ => return None,
        })
    }

    /// Whether new devices may be offered the release (otherwise: only devices that started).
    pub fn offers(self) -> bool {
        matches!(
            self,
            RolloutState::Active | RolloutState::Waiting | RolloutState::Complete
        )
    }
}

impl std::fmt::Display for RolloutState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A release's rollout, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rollout {
    /// The release (registry id).
    pub release_id: i64,
    /// The plan.
    pub plan: RolloutPlan,
    /// Index of the current stage.
    pub stage: usize,
    /// Where it is.
    pub state: RolloutState,
    /// Why it halted, waits or was aborted.
    pub reason: Option<String>,
    /// When the current stage started, Unix seconds.
    pub stage_started: u64,
    /// Failed devices counted before the last resume (not judged again).
    pub baseline_failed: u64,
    /// Attempted devices counted before the last resume.
    pub baseline_attempted: u64,
    /// When the plan was set, Unix seconds.
    pub created: u64,
    /// Last change, Unix seconds.
    pub updated: u64,
}

/// What the rollout decision needs to know about one eligible device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Device id.
    pub id: String,
    /// Its group.
    pub group: Option<String>,
    /// Its update to this release, if it was ever offered it.
    pub update: Option<UpdateStage>,
    /// Whether its retained notice offers this release now.
    pub notice: bool,
    /// Whether it already runs this release's version or a newer one.
    pub runs_release: bool,
}

impl Candidate {
    /// Offered and still offered, or started (a withdrawn, never started offer does not count).
    fn attempted(&self) -> bool {
        match self.update {
            None => false,
            Some(UpdateStage::Notified) => self.notice,
            Some(_) => true,
        }
    }

    fn started(&self) -> bool {
        self.update
            .is_some_and(|stage| stage != UpdateStage::Notified)
    }

    fn done(&self) -> bool {
        self.runs_release || self.update == Some(UpdateStage::Confirmed)
    }
}

/// Device counts of a rollout.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RolloutCounts {
    /// Registered devices of the release's model and hardware.
    pub eligible: u64,
    /// Devices of the stages so far (cumulative).
    pub in_stage: u64,
    /// Devices offered the release (still offered, or started).
    pub attempted: u64,
    /// Devices working on it (downloading, installing, rebooting).
    pub in_progress: u64,
    /// Devices offered it that have not started yet.
    pub waiting: u64,
    /// Devices that confirmed it.
    pub confirmed: u64,
    /// Devices that failed or rolled back.
    pub failed: u64,
    /// Devices of the stages so far that run it (confirmed, or were already on it).
    pub done: u64,
}

/// The `stage`-cumulative members: devices of stages `0..=stage`.
pub fn members(
    plan: &RolloutPlan,
    release_sha256: &str,
    stage: usize,
    candidates: &[Candidate],
) -> HashSet<String> {
    let mut ranked: Vec<(&Candidate, [u8; 32])> = candidates
        .iter()
        .map(|c| (c, rank(release_sha256, &c.id)))
        .collect();
    ranked.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.id.cmp(&b.0.id)));
    let n = ranked.len();
    let mut set = HashSet::new();
    for target in plan.stages.iter().take(stage.saturating_add(1)) {
        match target {
            StageTarget::Percent(p) => {
                let take = (n * usize::from(*p)).div_ceil(100);
                set.extend(ranked.iter().take(take).map(|(c, _)| c.id.clone()));
            }
            StageTarget::Group(g) => set.extend(
                candidates
                    .iter()
                    .filter(|c| c.group.as_deref() == Some(g.as_str()))
                    .map(|c| c.id.clone()),
            ),
        }
    }
    set
}

/// A device's place in the percentage order of a release.
fn rank(release_sha256: &str, device: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(b"fwledger-rollout/v1\0");
    hash.update(release_sha256.as_bytes());
    hash.update([0]);
    hash.update(device.as_bytes());
    hash.finalize().into()
}

/// The counts of a rollout at its current stage.
pub fn counts(members: &HashSet<String>, candidates: &[Candidate]) -> RolloutCounts {
    let mut counts = RolloutCounts {
        eligible: candidates.len() as u64,
        in_stage: members.len() as u64,
        ..RolloutCounts::default()
    };
    for c in candidates {
        if c.attempted() {
            counts.attempted += 1;
            match c.update {
                Some(UpdateStage::Notified) => counts.waiting += 1,
                Some(UpdateStage::Confirmed) => counts.confirmed += 1,
                Some(UpdateStage::Failed | UpdateStage::RolledBack) => counts.failed += 1,
                Some(_) => counts.in_progress += 1,
                None => {}
            }
        }
        if members.contains(&c.id) && c.done() {
            counts.done += 1;
        }
    }
    counts
}

/// Which devices may be offered a release under its rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    state: RolloutState,
    allowed: HashSet<String>,
}

impl Gate {
    /// The gate of `rollout` over its eligible devices.
    pub fn new(rollout: &Rollout, release_sha256: &str, candidates: &[Candidate]) -> Gate {
        let allowed = if rollout.state.offers() {
            let mut set = members(&rollout.plan, release_sha256, rollout.stage, candidates);
            // A device once offered keeps its offer: a stage never shrinks under it.
            set.extend(
                candidates
                    .iter()
                    .filter(|c| c.attempted())
                    .map(|c| c.id.clone()),
            );
            set
        } else {
            candidates
                .iter()
                .filter(|c| c.started())
                .map(|c| c.id.clone())
                .collect()
        };
        Gate {
            state: rollout.state,
            allowed,
        }
    }

    /// Whether `device` may be offered the release.
    pub fn allows(&self, device: &str) -> bool {
        self.allowed.contains(device)
    }

    /// The rollout's state.
    pub fn state(&self) -> RolloutState {
        self.state
    }
}

/// The gates of every release that has a rollout, built when the newest release known was
/// `covered`; releases without a rollout are open to all, newer ones to nobody until the gates
/// are rebuilt (a release may arrive with the gateway's default plan).
#[derive(Debug, Clone, Default)]
pub struct Gates {
    gates: HashMap<i64, Gate>,
    covered: i64,
}

impl Gates {
    /// Gates by release id, for releases up to id `covered`.
    pub fn new(gates: HashMap<i64, Gate>, covered: i64) -> Self {
        Gates { gates, covered }
    }

    /// Whether these gates know about release `release`.
    pub fn covers(&self, release: i64) -> bool {
        release <= self.covered
    }

    /// Whether `device` may be offered release `release`.
    pub fn allows(&self, release: i64, device: &str) -> bool {
        self.covers(release) && self.gates.get(&release).is_none_or(|g| g.allows(device))
    }
}

/// What a rollout should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transition {
    /// Stop offering: the failure threshold is exceeded (the reason says by how much).
    Halt(String),
    /// Start stage `0`-based `.0`.
    Advance(usize),
    /// The stage is done; wait for an operator (the reason says what to do).
    Wait(String),
    /// The last stage is done.
    Complete,
}

/// `3/10 failed (30 % > 20 %)` when the failures since the last resume exceed the threshold.
pub fn threshold_exceeded(rollout: &Rollout, counts: &RolloutCounts) -> Option<String> {
    let failed = counts.failed.saturating_sub(rollout.baseline_failed);
    let attempted = counts.attempted.saturating_sub(rollout.baseline_attempted);
    let plan = &rollout.plan;
    if attempted == 0 || attempted < u64::from(plan.min_sample.max(1)) {
        return None;
    }
    if failed * 100 <= u64::from(plan.failure_threshold) * attempted {
        return None;
    }
    Some(format!(
        "{failed}/{attempted} failed ({} % > {} %)",
        failed * 100 / attempted,
        plan.failure_threshold
    ))
}

/// The next step of an active rollout at time `now`, if any.
pub fn evaluate(rollout: &Rollout, counts: &RolloutCounts, now: u64) -> Option<Transition> {
    // A waiting stage's devices may still be finishing: they can still halt it.
    if !matches!(rollout.state, RolloutState::Active | RolloutState::Waiting) {
        return None;
    }
    if let Some(reason) = threshold_exceeded(rollout, counts) {
        return Some(Transition::Halt(reason));
    }
    if rollout.state != RolloutState::Active {
        return None;
    }
    let plan = &rollout.plan;
    let done = counts.done * 100 >= u64::from(plan.success) * counts.in_stage;
    if !done || now < rollout.stage_started.saturating_add(plan.wait) {
        return None;
    }
    let next = rollout.stage + 1;
    if next >= plan.stages.len() {
        return Some(Transition::Complete);
    }
    match plan.advance {
        Advance::Auto => Some(Transition::Advance(next)),
        Advance::Manual => Some(Transition::Wait(format!(
            "stage {}/{} done ({}/{} run it); resume starts stage {} ({})",
            rollout.stage + 1,
            plan.stages.len(),
            counts.done,
            counts.in_stage,
            next + 1,
            plan.stages[next].text()
        ))),
    }
}

/// One line for people: `halted: 3/10 failed (30 % > 20 %)`, `stage 2/3 (50%)`.
pub fn summary(rollout: &Rollout) -> String {
    let stage = format!(
        "stage {}/{} ({})",
        rollout.stage + 1,
        rollout.plan.stages.len(),
        rollout
            .plan
            .stages
            .get(rollout.stage)
            .map(StageTarget::text)
            .unwrap_or_default()
    );
    match (&rollout.reason, rollout.state) {
        (Some(reason), RolloutState::Halted | RolloutState::Aborted | RolloutState::Waiting) => {
            format!("{}: {reason}", rollout.state)
        }
        (_, RolloutState::Complete) => "complete".into(),
        _ => format!("{}, {stage}", rollout.state),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidates(n: usize) -> Vec<Candidate> {
        (0..n)
            .map(|i| Candidate {
                id: format!("d{i:02}"),
                group: (i < 2).then(|| "canary".to_string()),
                update: None,
                notice: false,
                runs_release: false,
            })
            .collect()
    }

    fn rollout(plan: RolloutPlan) -> Rollout {
        Rollout {
            release_id: 1,
            plan,
            stage: 0,
            state: RolloutState::Active,
            reason: None,
            stage_started: 100,
            baseline_failed: 0,
            baseline_attempted: 0,
            created: 100,
            updated: 100,
        }
    }

    #[test]
    fn plans_parse_and_validate() {
        let plan = RolloutPlan::parse_stages("10%, group:canary ,50,all").expect("plan");
        assert_eq!(plan.stages_text(), "10%,group:canary,50%,100%");
        for bad in ["", "0%", "101%", "group:", "group:a b", "ten"] {
            assert!(RolloutPlan::parse_stages(bad).is_err(), "{bad:?} accepted");
        }
        let mut plan = RolloutPlan::new(vec![StageTarget::Percent(10)]);
        plan.success = 0;
        assert!(matches!(
            plan.validate(),
            Err(PlanError::BadPercent {
                what: "success",
                ..
            })
        ));
        plan.success = 100;
        plan.failure_threshold = 101;
        assert!(plan.validate().is_err());
    }

    #[test]
    fn percentages_take_exact_stable_counts() {
        let plan = RolloutPlan::parse_stages("10%,50%,all").expect("plan");
        let all = candidates(10);
        let first = members(&plan, "ab", 0, &all);
        assert_eq!(first.len(), 1);
        let second = members(&plan, "ab", 1, &all);
        assert_eq!(second.len(), 5);
        assert!(first.is_subset(&second), "stages are cumulative");
        assert_eq!(members(&plan, "ab", 2, &all).len(), 10);
        // Deterministic: the same inputs in another order give the same members.
        let mut reversed = all.clone();
        reversed.reverse();
        assert_eq!(members(&plan, "ab", 1, &reversed), second);
        // Another release ranks devices differently.
        let others: Vec<HashSet<String>> = (0..8)
            .map(|i| members(&plan, &format!("release-{i}"), 0, &all))
            .collect();
        assert!(others.iter().any(|m| *m != first));
    }

    #[test]
    fn groups_select_their_devices() {
        let plan = RolloutPlan::parse_stages("group:canary,all").expect("plan");
        let all = candidates(10);
        let first = members(&plan, "ab", 0, &all);
        assert_eq!(first, HashSet::from(["d00".to_string(), "d01".to_string()]));
    }

    #[test]
    fn threshold_halts_with_a_reason_and_resume_sets_a_baseline() {
        let mut r = rollout(RolloutPlan::parse_stages("50%,all").expect("plan"));
        r.plan.min_sample = 3;
        let mut counts = RolloutCounts {
            eligible: 10,
            in_stage: 5,
            attempted: 2,
            failed: 2,
            ..RolloutCounts::default()
        };
        // Below the minimum sample: not judged yet.
        assert_eq!(evaluate(&r, &counts, 200), None);
        counts.attempted = 10;
        counts.failed = 2;
        assert_eq!(evaluate(&r, &counts, 200), None, "20 % is not above 20 %");
        counts.failed = 3;
        assert_eq!(
            evaluate(&r, &counts, 200),
            Some(Transition::Halt("3/10 failed (30 % > 20 %)".into()))
        );
        r.baseline_failed = 3;
        r.baseline_attempted = 10;
        assert_eq!(
            evaluate(&r, &counts, 200),
            None,
            "old failures are not judged again"
        );
        r.state = RolloutState::Halted;
        r.reason = Some("3/10 failed (30 % > 20 %)".into());
        assert_eq!(summary(&r), "halted: 3/10 failed (30 % > 20 %)");
    }

    #[test]
    fn stages_advance_when_done_and_after_the_wait() {
        let mut r = rollout(RolloutPlan::parse_stages("10%,all").expect("plan"));
        r.plan.wait = 60;
        let mut counts = RolloutCounts {
            eligible: 10,
            in_stage: 1,
            attempted: 1,
            ..RolloutCounts::default()
        };
        assert_eq!(evaluate(&r, &counts, 200), None, "not confirmed yet");
        counts.done = 1;
        counts.confirmed = 1;
        assert_eq!(evaluate(&r, &counts, 150), None, "the stage runs 60 s");
        assert_eq!(evaluate(&r, &counts, 160), Some(Transition::Advance(1)));
        r.plan.advance = Advance::Manual;
        assert!(matches!(
            evaluate(&r, &counts, 160),
            Some(Transition::Wait(_))
        ));
        r.stage = 1;
        counts.in_stage = 10;
        counts.done = 10;
        assert_eq!(evaluate(&r, &counts, 1000), Some(Transition::Complete));
        r.state = RolloutState::Halted;
        assert_eq!(evaluate(&r, &counts, 1000), None);
        r.state = RolloutState::Waiting;
        assert_eq!(
            evaluate(&r, &counts, 1000),
            None,
            "waiting: only an operator advances"
        );
        counts.attempted = 10;
        counts.failed = 5;
        assert!(matches!(
            evaluate(&r, &counts, 1000),
            Some(Transition::Halt(_))
        ));
    }

    #[test]
    fn gates_keep_started_devices_only_when_halted() {
        let plan = RolloutPlan::parse_stages("10%,all").expect("plan");
        let mut all = candidates(10);
        let mut r = rollout(plan.clone());
        let first = members(&plan, "ab", 0, &all);
        let gate = Gate::new(&r, "ab", &all);
        for c in &all {
            assert_eq!(gate.allows(&c.id), first.contains(&c.id));
        }
        // An outside device that was offered earlier (no rollout then) keeps its offer.
        let outside = all
            .iter()
            .position(|c| !first.contains(&c.id))
            .expect("outside");
        all[outside].update = Some(UpdateStage::Notified);
        all[outside].notice = true;
        assert!(Gate::new(&r, "ab", &all).allows(&all[outside].id));
        // Halted: only started devices keep it.
        r.state = RolloutState::Halted;
        let gate = Gate::new(&r, "ab", &all);
        assert!(!gate.allows(&all[outside].id));
        all[outside].update = Some(UpdateStage::Downloading);
        assert!(Gate::new(&r, "ab", &all).allows(&all[outside].id));
        let gates = Gates::new(HashMap::from([(1, gate)]), 2);
        assert!(gates.allows(2, "anyone"), "no rollout: open to all");
        assert!(
            !gates.allows(3, "anyone"),
            "a release newer than the gates: closed"
        );
    }
}

//! Device groups and staged rollouts in the registry (the decisions are in [`crate::rollout`]).

use std::collections::HashMap;

use fwledger::unix_now;
use fwledger_proto::Version;
use rusqlite::{params, OptionalExtension, Row, Transaction, TransactionBehavior};
use serde::Serialize;

use super::{i, u, EventLevel, Registry, RegistryError, Release, ReleaseState, UpdateStage};
use crate::rollout::{
    self, Candidate, Gate, Gates, Rollout, RolloutCounts, RolloutPlan, RolloutState, Transition,
};

const DEFAULT_PLAN_KEY: &str = "rollout.default";

const ROLLOUT_COLUMNS: &str = "release_id, plan, stage, state, reason, stage_started, \
     baseline_failed, baseline_attempted, created, updated";

fn rollout_row(row: &Row<'_>) -> rusqlite::Result<Rollout> {
    let plan: String = row.get(1)?;
    let state: String = row.get(3)?;
    let plan: RolloutPlan = serde_json::from_str(&plan).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(Rollout {
        release_id: row.get(0)?,
        stage: usize::try_from(row.get::<_, i64>(2)?)
            .unwrap_or(0)
            .min(plan.stages.len().saturating_sub(1)),
        plan,
        // An unknown state offers nothing new: the safe reading.
        state: RolloutState::parse(&state).unwrap_or(RolloutState::Halted),
        reason: row.get(4)?,
        stage_started: u(row.get(5)?),
        baseline_failed: u(row.get(6)?),
        baseline_attempted: u(row.get(7)?),
        created: u(row.get(8)?),
        updated: u(row.get(9)?),
    })
}

fn plan_json(plan: &RolloutPlan) -> Result<String, RegistryError> {
    plan.validate()?;
    serde_json::to_string(plan).map_err(|e| RegistryError::Corrupt(e.to_string()))
}

pub(super) fn default_plan(tx: &Transaction<'_>) -> Result<Option<RolloutPlan>, RegistryError> {
    let text: Option<String> = tx
        .query_row(
            "SELECT value FROM settings WHERE key = ?1",
            [DEFAULT_PLAN_KEY],
            |r| r.get(0),
        )
        .optional()?;
    text.map(|t| {
        serde_json::from_str(&t)
            .map_err(|e| RegistryError::Corrupt(format!("default rollout plan: {e}")))
    })
    .transpose()
}

pub(super) fn insert_rollout(
    tx: &Transaction<'_>,
    release: i64,
    plan: &RolloutPlan,
    baseline_failed: u64,
    baseline_attempted: u64,
    now: i64,
) -> Result<(), RegistryError> {
    tx.execute(
        "INSERT INTO rollouts (release_id, plan, stage, state, reason, stage_started, \
         baseline_failed, baseline_attempted, created, updated) \
         VALUES (?1, ?2, 0, 'active', NULL, ?3, ?4, ?5, ?3, ?3) \
         ON CONFLICT (release_id) DO UPDATE SET plan = ?2, stage = 0, state = 'active', \
         reason = NULL, stage_started = ?3, baseline_failed = ?4, baseline_attempted = ?5, \
         created = ?3, updated = ?3",
        params![
            release,
            plan_json(plan)?,
            now,
            i(baseline_failed),
            i(baseline_attempted)
        ],
    )?;
    Ok(())
}

fn log_in(tx: &Transaction<'_>, level: EventLevel, message: &str) -> Result<(), RegistryError> {
    tx.execute(
        "INSERT INTO events (time, level, message) VALUES (?1, ?2, ?3)",
        params![i(unix_now()), level.as_str(), message],
    )?;
    Ok(())
}

fn release_in(tx: &Transaction<'_>, id: i64) -> Result<Release, RegistryError> {
    tx.query_row(
        &format!(
            "SELECT {} FROM releases WHERE id = ?1",
            super::RELEASE_COLUMNS
        ),
        [id],
        super::release_row,
    )
    .optional()?
    .ok_or(RegistryError::UnknownRelease(id))
}

fn rollout_in(tx: &Transaction<'_>, id: i64) -> Result<Option<Rollout>, RegistryError> {
    Ok(tx
        .query_row(
            &format!("SELECT {ROLLOUT_COLUMNS} FROM rollouts WHERE release_id = ?1"),
            [id],
            rollout_row,
        )
        .optional()?)
}

/// The eligible devices of `release` (its model and hardware) and where each is with it.
fn candidates_in(
    conn: &rusqlite::Connection,
    release: &Release,
) -> Result<Vec<Candidate>, RegistryError> {
    let target: Option<Version> = release.version.parse().ok();
    let mut stmt = conn.prepare_cached(
        "SELECT d.id, d.device_group, d.version, d.notice_release, d.hardware, u.state \
         FROM devices d LEFT JOIN updates u ON u.device_id = d.id AND u.release_id = ?2 \
         WHERE d.model = ?1 ORDER BY d.id",
    )?;
    let rows = stmt.query_map(params![release.model, release.id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, Option<i64>>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, Option<String>>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, group, version, notice, hardware, state) = row?;
        if !release.hardware.contains(&hardware) {
            continue;
        }
        let running: Option<Version> = version.as_deref().and_then(|v| v.parse().ok());
        out.push(Candidate {
            id,
            group,
            update: state.as_deref().map(|s| {
                // An unreadable stored stage counts as a failure (the safe reading).
                UpdateStage::parse(s).unwrap_or(UpdateStage::Failed)
            }),
            notice: notice == Some(release.id),
            runs_release: matches!((&running, &target), (Some(r), Some(t)) if r >= t),
        });
    }
    Ok(out)
}

/// A rollout with its release and device counts, as the UI, API and CLI show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolloutStatus {
    /// The stored rollout.
    #[serde(flatten)]
    pub rollout: Rollout,
    /// Release model.
    pub model: String,
    /// Release version.
    pub version: String,
    /// The stages as `10%,group:canary,100%`.
    pub stages: String,
    /// Device counts at the current stage.
    pub counts: RolloutCounts,
    /// One line: `halted: 3/10 failed (30 % > 20 %)`, `active, stage 1/3 (10%)`.
    pub summary: String,
}

impl RolloutStatus {
    fn new(rollout: Rollout, release: &Release, candidates: &[Candidate]) -> Self {
        let members = rollout::members(&rollout.plan, &release.sha256, rollout.stage, candidates);
        RolloutStatus {
            counts: rollout::counts(&members, candidates),
            stages: rollout.plan.stages_text(),
            summary: rollout::summary(&rollout),
            model: release.model.clone(),
            version: release.version.clone(),
            rollout,
        }
    }
}

/// What an operator asks of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RolloutAction {
    /// Halted: go on at the same stage, judging only failures from now on. Waiting: start the
    /// next stage.
    Resume,
    /// Start the next stage now (from active, waiting or halted).
    Advance,
    /// Stop for good: no new device is offered it, notices not yet acted on are withdrawn.
    Abort,
}

impl RolloutAction {
    /// Parses `resume`, `advance` or `abort`.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "resume" => RolloutAction::Resume,
            "advance" => RolloutAction::Advance,
            "abort" => RolloutAction::Abort,
            _ => return None,
        })
    }

    /// The action's name.
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutAction::Resume => "resume",
            RolloutAction::Advance => "advance",
            RolloutAction::Abort => "abort",
        }
    }
}

impl Registry {
    /// Puts a device in `group` (`None`: in no group).
    pub fn set_device_group(&self, id: &str, group: Option<&str>) -> Result<(), RegistryError> {
        if let Some(g) = group {
            if !rollout::valid_group(g) {
                return Err(RegistryError::BadGroup(g.to_string()));
            }
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if tx.execute(
            "UPDATE devices SET device_group = ?2 WHERE id = ?1",
            params![id, group],
        )? == 0
        {
            return Err(RegistryError::UnknownDevice(id.to_string()));
        }
        tx.commit()?;
        Ok(())
    }

    /// The gateway's default plan, applied to releases announced after it was set.
    pub fn rollout_default(&self) -> Result<Option<RolloutPlan>, RegistryError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        default_plan(&tx)
    }

    /// Sets (or, with `None`, clears) the default plan.
    pub fn set_rollout_default(&self, plan: Option<&RolloutPlan>) -> Result<(), RegistryError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        match plan {
            Some(plan) => tx.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = ?2",
                params![DEFAULT_PLAN_KEY, plan_json(plan)?],
            )?,
            None => tx.execute("DELETE FROM settings WHERE key = ?1", [DEFAULT_PLAN_KEY])?,
        };
        let message = match plan {
            Some(plan) => format!("default rollout plan set: {}", plan.stages_text()),
            None => "default rollout plan cleared".to_string(),
        };
        log_in(&tx, EventLevel::Info, &message)?;
        tx.commit()?;
        Ok(())
    }

    /// Starts (or restarts, at its first stage) a rollout of `release` with `plan`. Devices
    /// already offered the release keep their offer; failures so far are not judged.
    pub fn set_rollout(&self, release: i64, plan: &RolloutPlan) -> Result<Rollout, RegistryError> {
        plan.validate()?;
        let now = i(unix_now());
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found = release_in(&tx, release)?;
        let counts = rollout::counts(&Default::default(), &candidates_in(&tx, &found)?);
        insert_rollout(&tx, release, plan, counts.failed, counts.attempted, now)?;
        log_in(
            &tx,
            EventLevel::Info,
            &format!(
                "rollout {} {}: plan {} set (halt above {} % failed), stage 1 started",
                found.model,
                found.version,
                plan.stages_text(),
                plan.failure_threshold
            ),
        )?;
        let rollout = rollout_in(&tx, release)?.ok_or(RegistryError::NoRollout(release))?;
        tx.commit()?;
        Ok(rollout)
    }

    /// The rollout of a release, if it has one.
    pub fn rollout(&self, release: i64) -> Result<Option<Rollout>, RegistryError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        rollout_in(&tx, release)
    }

    /// A release's rollout with its counts.
    pub fn rollout_status(&self, release: i64) -> Result<Option<RolloutStatus>, RegistryError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(rollout) = rollout_in(&tx, release)? else {
            return Ok(None);
        };
        let found = release_in(&tx, release)?;
        let candidates = candidates_in(&tx, &found)?;
        Ok(Some(RolloutStatus::new(rollout, &found, &candidates)))
    }

    /// Every rollout with its counts, newest release first.
    pub fn rollout_statuses(&self) -> Result<Vec<RolloutStatus>, RegistryError> {
        Ok(self.gates_and_statuses(true)?.1)
    }

    /// The gates of the rollouts that still restrict offers (which devices may be offered the
    /// release), with their status; finished ones (complete at 100 %, or of a revoked release)
    /// are left out.
    pub fn rollout_gates(&self) -> Result<(Gates, Vec<RolloutStatus>), RegistryError> {
        self.gates_and_statuses(false)
    }

    fn gates_and_statuses(
        &self,
        finished: bool,
    ) -> Result<(Gates, Vec<RolloutStatus>), RegistryError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // One read transaction: one snapshot, so `covered` matches the rollouts read.
        let rollouts: Vec<Rollout> = {
            let mut stmt = tx.prepare(&format!(
                "SELECT {ROLLOUT_COLUMNS} FROM rollouts ORDER BY release_id DESC"
            ))?;
            let rows = stmt.query_map([], rollout_row)?;
            rows.collect::<Result<_, _>>()?
        };
        let mut gates = HashMap::new();
        let mut statuses = Vec::new();
        for rollout in rollouts {
            let Ok(found) = release_in(&tx, rollout.release_id) else {
                continue;
            };
            let open_to_all = rollout.state == RolloutState::Complete
                && rollout.plan.stages.last() == Some(&rollout::StageTarget::Percent(100));
            // Revoked is final (a failed release may still be fetched again).
            let gone = found.state == ReleaseState::Revoked;
            if !finished && (open_to_all || gone) {
                continue;
            }
            let candidates = candidates_in(&tx, &found)?;
            gates.insert(
                rollout.release_id,
                Gate::new(&rollout, &found.sha256, &candidates),
            );
            statuses.push(RolloutStatus::new(rollout, &found, &candidates));
        }
        let covered: i64 = tx.query_row("SELECT COALESCE(MAX(id), 0) FROM releases", [], |r| {
            r.get(0)
        })?;
        Ok((Gates::new(gates, covered), statuses))
    }

    /// Applies what [`rollout::evaluate`] decides for the rollout of `release`, if it is still
    /// where `status` saw it (another process may have acted since). Returns the event message
    /// when something changed.
    pub fn apply_rollout(
        &self,
        status: &RolloutStatus,
        transition: &Transition,
    ) -> Result<Option<String>, RegistryError> {
        let r = &status.rollout;
        let now = i(unix_now());
        let what = format!("rollout {} {}", status.model, status.version);
        let (state, stage, reason, level, message) = match transition {
            Transition::Halt(reason) => (
                RolloutState::Halted,
                r.stage,
                Some(reason.clone()),
                EventLevel::Warning,
                format!(
                    "{what}: halted: {reason}; no new device is offered it, notices not yet \
                     acted on are withdrawn"
                ),
            ),
            Transition::Advance(next) => (
                RolloutState::Active,
                *next,
                None,
                EventLevel::Info,
                format!(
                    "{what}: stage {}/{} ({}) started",
                    next + 1,
                    r.plan.stages.len(),
                    r.plan
                        .stages
                        .get(*next)
                        .map(rollout::StageTarget::text)
                        .unwrap_or_default()
                ),
            ),
            Transition::Wait(reason) => (
                RolloutState::Waiting,
                r.stage,
                Some(reason.clone()),
                EventLevel::Info,
                format!("{what}: waiting: {reason}"),
            ),
            Transition::Complete => (
                RolloutState::Complete,
                r.stage,
                None,
                EventLevel::Info,
                format!("{what}: complete"),
            ),
        };
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let stage_started = if stage != r.stage {
            now
        } else {
            i(r.stage_started)
        };
        let changed = tx.execute(
            "UPDATE rollouts SET state = ?2, stage = ?3, reason = ?4, stage_started = ?5, \
             updated = ?6 WHERE release_id = ?1 AND state = ?7 AND stage = ?8 AND created = ?9",
            params![
                r.release_id,
                state.as_str(),
                i(stage as u64),
                reason,
                stage_started,
                now,
                r.state.as_str(),
                i(r.stage as u64),
                i(r.created)
            ],
        )?;
        if changed == 0 {
            return Ok(None);
        }
        log_in(&tx, level, &message)?;
        tx.commit()?;
        Ok(Some(message))
    }

    /// An operator's action on the rollout of `release`; `who` names them in the event log.
    pub fn rollout_action(
        &self,
        release: i64,
        action: RolloutAction,
        who: &str,
    ) -> Result<Rollout, RegistryError> {
        let now = i(unix_now());
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found = release_in(&tx, release)?;
        let r = rollout_in(&tx, release)?.ok_or(RegistryError::NoRollout(release))?;
        let refuse = |why: &str| {
            Err(RegistryError::RolloutRefused(format!(
                "{} {} is {}: {why}",
                found.model, found.version, r.state
            )))
        };
        let last = r.plan.stages.len().saturating_sub(1);
        let (state, stage) = match (action, r.state) {
            (_, RolloutState::Aborted) => {
                return refuse("aborted rollouts are final; `rollout set` starts a new plan")
            }
            (_, RolloutState::Complete) => return refuse("every stage is done"),
            (RolloutAction::Abort, _) => (RolloutState::Aborted, r.stage),
            (RolloutAction::Resume, RolloutState::Halted) => (RolloutState::Active, r.stage),
            (RolloutAction::Resume, RolloutState::Waiting)
            | (RolloutAction::Advance, RolloutState::Waiting) => {
                (RolloutState::Active, (r.stage + 1).min(last))
            }
            (RolloutAction::Resume, _) => return refuse("nothing to resume"),
            (RolloutAction::Advance, _) if r.stage >= last => {
                return refuse("already at the last stage")
            }
            (RolloutAction::Advance, _) => (RolloutState::Active, r.stage + 1),
        };
        // Leaving a halt: the failures so far were seen by the operator; judge only what comes
        // next.
        let counts = rollout::counts(&Default::default(), &candidates_in(&tx, &found)?);
        let (baseline_failed, baseline_attempted) =
            if r.state == RolloutState::Halted && state == RolloutState::Active {
                (counts.failed, counts.attempted)
            } else {
                (r.baseline_failed, r.baseline_attempted)
            };
        let reason = (state == RolloutState::Aborted).then(|| format!("aborted by {who}"));
        let stage_started = if stage != r.stage || r.state == RolloutState::Halted {
            now
        } else {
            i(r.stage_started)
        };
        tx.execute(
            "UPDATE rollouts SET state = ?2, stage = ?3, reason = ?4, stage_started = ?5, \
             baseline_failed = ?6, baseline_attempted = ?7, updated = ?8 WHERE release_id = ?1",
            params![
                release,
                state.as_str(),
                i(stage as u64),
                reason,
                stage_started,
                i(baseline_failed),
                i(baseline_attempted),
                now
            ],
        )?;
        let stage_text = r
            .plan
            .stages
            .get(stage)
            .map(rollout::StageTarget::text)
            .unwrap_or_default();
        let message = match state {
            RolloutState::Aborted => format!(
                "rollout {} {}: aborted by {who}; notices not yet acted on are withdrawn",
                found.model, found.version
            ),
            _ => format!(
                "rollout {} {}: {} by {who}, stage {}/{} ({stage_text})",
                found.model,
                found.version,
                if action == RolloutAction::Resume {
                    "resumed"
                } else {
                    "advanced"
                },
                stage + 1,
                r.plan.stages.len()
            ),
        };
        log_in(&tx, EventLevel::Info, &message)?;
        let updated = rollout_in(&tx, release)?.ok_or(RegistryError::NoRollout(release))?;
        tx.commit()?;
        Ok(updated)
    }

    /// Releases of `model` (any, with `None`) with `version`, newest first — how the CLI names
    /// a release.
    pub fn releases_by_version(
        &self,
        model: Option<&str>,
        version: &str,
    ) -> Result<Vec<Release>, RegistryError> {
        let mut all = self.releases()?;
        all.retain(|r| r.version == version && model.is_none_or(|m| m == r.model));
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{NewDevice, NewRelease};

    fn release(seq: u64, version: &str) -> NewRelease {
        NewRelease {
            channel: "c1".into(),
            seq,
            vendor: "acme".into(),
            vendor_key: "00".repeat(32),
            model: "lamp".into(),
            version: version.into(),
            security_version: 1,
            hardware: vec!["rev-b".into()],
            cid: "bafy".into(),
            sha256: "ab".repeat(32),
            size: 10,
            manifest: vec![1, 2, 3],
        }
    }

    #[test]
    fn a_version_1_registry_gains_groups_and_rollouts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.sqlite");
        {
            // The devices table as schema version 1 created it.
            let conn = rusqlite::Connection::open(&path).expect("open");
            conn.execute_batch(
                "CREATE TABLE devices (id TEXT PRIMARY KEY, mac TEXT NOT NULL, \
                 model TEXT NOT NULL, hardware TEXT NOT NULL, version TEXT, sha256 TEXT, \
                 security_version INTEGER NOT NULL DEFAULT 0, added INTEGER NOT NULL, \
                 last_seen INTEGER, online INTEGER NOT NULL DEFAULT 0, notice_release INTEGER);
                 INSERT INTO devices (id, mac, model, hardware, added) \
                 VALUES ('old', '02:00:00:00:00:01', 'lamp', 'rev-b', 1);
                 PRAGMA user_version = 1;",
            )
            .expect("v1 schema");
        }
        let r = Registry::open(&path).expect("migrates");
        assert_eq!(r.device("old").expect("q").expect("kept").group, None);
        r.set_device_group("old", Some("canary")).expect("group");
        assert_eq!(
            r.device("old").expect("q").expect("d").group.as_deref(),
            Some("canary")
        );
        assert!(matches!(
            r.set_device_group("old", Some("no spaces")),
            Err(RegistryError::BadGroup(_))
        ));
        assert!(matches!(
            r.set_device_group("ghost", None),
            Err(RegistryError::UnknownDevice(_))
        ));
        drop(r);
        // Opening again is a no-op.
        let r = Registry::open(&path).expect("again");
        assert_eq!(r.devices().expect("q").len(), 1);
    }

    #[test]
    fn the_default_plan_applies_to_later_releases_and_actions_follow_the_state() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = Registry::open(&dir.path().join("r.sqlite")).expect("open");
        r.add_device(&NewDevice {
            id: "a".into(),
            mac: "02:00:00:00:00:01".into(),
            model: "lamp".into(),
            hardware: "rev-b".into(),
        })
        .expect("add");
        let (before, _) = r.add_release(&release(1, "1.1.0")).expect("add");
        let plan = RolloutPlan::parse_stages("10%,all").expect("plan");
        r.set_rollout_default(Some(&plan)).expect("default");
        assert_eq!(r.rollout_default().expect("q"), Some(plan.clone()));
        let (after, _) = r.add_release(&release(2, "1.2.0")).expect("add");
        assert!(r.rollout(before).expect("q").is_none(), "not retroactive");
        let rollout = r.rollout(after).expect("q").expect("from the default");
        assert_eq!((rollout.state, rollout.stage), (RolloutState::Active, 0));

        // Actions: resume needs a halt; abort is final.
        assert!(matches!(
            r.rollout_action(after, RolloutAction::Resume, "t"),
            Err(RegistryError::RolloutRefused(_))
        ));
        let advanced = r
            .rollout_action(after, RolloutAction::Advance, "t")
            .expect("advance");
        assert_eq!(advanced.stage, 1);
        assert!(r
            .rollout_action(after, RolloutAction::Advance, "t")
            .is_err());
        // A transition judged on stale state is not applied.
        let status = r.rollout_status(after).expect("q").expect("status");
        r.rollout_action(after, RolloutAction::Abort, "t")
            .expect("abort");
        assert_eq!(
            r.apply_rollout(&status, &Transition::Complete).expect("q"),
            None
        );
        assert_eq!(
            r.rollout(after).expect("q").expect("r").state,
            RolloutState::Aborted
        );
        assert!(r.rollout_action(after, RolloutAction::Resume, "t").is_err());
        // A new plan starts again.
        let restarted = r.set_rollout(after, &plan).expect("set");
        assert_eq!(restarted.state, RolloutState::Active);
        assert!(matches!(
            r.set_rollout(999, &plan),
            Err(RegistryError::UnknownRelease(999))
        ));
        assert!(matches!(
            r.rollout_action(before, RolloutAction::Abort, "t"),
            Err(RegistryError::NoRollout(_))
        ));
        r.set_rollout_default(None).expect("clear");
        assert_eq!(r.rollout_default().expect("q"), None);
        assert!(r
            .events(20)
            .expect("events")
            .iter()
            .any(|e| e.message.contains("rollout lamp 1.2.0: aborted by t")));
    }
}

//! `fwledger gateway rollout …`: staged rollouts over the gateway registry. A running gateway
//! picks every change up at its next reconcile pass (5 s).

use clap::{Args, Subcommand, ValueEnum};
use fwledger_gateway::registry::{Registry, Release, RolloutAction, RolloutStatus};
use fwledger_gateway::rollout::{Advance, RolloutPlan};

use crate::util::{parse_duration, Failure};

/// `fwledger gateway rollout …`
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Show the rollout of a release (or every rollout and the default plan).
    Show {
        /// Release version (without it: every rollout).
        #[arg(long)]
        version: Option<String>,
        /// Release model, when several models have this version.
        #[arg(long)]
        model: Option<String>,
        /// JSON.
        #[arg(long)]
        json: bool,
    },
    /// Set the plan of a release (restarts it at its first stage), or the gateway's default
    /// plan for releases announced from now on.
    Set(SetArgs),
    /// Halted: go on at the same stage (only new failures count). Waiting: start the next stage.
    Resume(Which),
    /// Start the next stage now.
    Advance(Which),
    /// Stop for good: no new device is offered the release; notices not acted on are withdrawn.
    Abort(Which),
}

/// Names a release.
#[derive(Debug, Args)]
pub struct Which {
    /// Release version.
    #[arg(long)]
    pub version: String,
    /// Release model, when several models have this version.
    #[arg(long)]
    pub model: Option<String>,
}

/// When a finished stage moves on.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AdvanceArg {
    /// Start the next stage by itself.
    Auto,
    /// Wait for `rollout resume`.
    Manual,
}

/// `fwledger gateway rollout set …`
#[derive(Debug, Args)]
pub struct SetArgs {
    /// Release version.
    #[arg(long, required_unless_present = "default", conflicts_with = "default")]
    pub version: Option<String>,
    /// Release model, when several models have this version.
    #[arg(long)]
    pub model: Option<String>,
    /// Set the gateway's default plan instead (applied to releases announced from now on).
    #[arg(long)]
    pub default: bool,
    /// With --default: remove the default plan (releases then go to every device at once).
    #[arg(long, requires = "default", conflicts_with = "stages")]
    pub clear: bool,
    /// Ordered, cumulative stages: N% of the eligible devices, group:NAME, or all.
    #[arg(long, value_name = "STAGES", required_unless_present = "clear")]
    pub stages: Option<String>,
    /// Halt when more than this percentage of the attempted devices failed.
    #[arg(long, value_name = "PERCENT", default_value_t = 20)]
    pub failure_threshold: u8,
    /// Judge the failure rate once this many devices were attempted.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub min_sample: u32,
    /// What happens when a stage is done.
    #[arg(long, value_enum, default_value = "auto")]
    pub advance: AdvanceArg,
    /// Percentage of a stage's devices that must run the release before it is done.
    #[arg(long, value_name = "PERCENT", default_value_t = 100)]
    pub success: u8,
    /// How long a stage runs at least (e.g. 0s, 30m, 12h).
    #[arg(long, value_name = "DUR", default_value = "0s")]
    pub wait: String,
}

fn fail(e: impl std::fmt::Display) -> Failure {
    Failure::Message(e.to_string())
}

fn find(registry: &Registry, version: &str, model: Option<&str>) -> Result<Release, Failure> {
    let mut found = registry.releases_by_version(model, version).map_err(fail)?;
    let models: std::collections::BTreeSet<&str> = found.iter().map(|r| r.model.as_str()).collect();
    if models.len() > 1 {
        return Err(fail(format!(
            "several models have version {version} ({}): name one with --model",
            models.into_iter().collect::<Vec<_>>().join(", ")
        )));
    }
    if found.is_empty() {
        return Err(fail(format!(
            "the gateway knows no release {}{version}",
            model.map(|m| format!("{m} ")).unwrap_or_default()
        )));
    }
    // The newest announcement of this model and version.
    Ok(found.remove(0))
}

fn plan(args: &SetArgs) -> Result<RolloutPlan, Failure> {
    let mut plan =
        RolloutPlan::parse_stages(args.stages.as_deref().unwrap_or_default()).map_err(fail)?;
    plan.failure_threshold = args.failure_threshold;
    plan.min_sample = args.min_sample;
    plan.advance = match args.advance {
        AdvanceArg::Auto => Advance::Auto,
        AdvanceArg::Manual => Advance::Manual,
    };
    plan.success = args.success;
    plan.wait = parse_duration(&args.wait)?.as_secs();
    plan.validate().map_err(fail)?;
    Ok(plan)
}

fn describe(plan: &RolloutPlan) -> String {
    format!(
        "stages {}; halt above {} % failed (from {} attempted); advance {} at {} % done{}",
        plan.stages_text(),
        plan.failure_threshold,
        plan.min_sample,
        match plan.advance {
            Advance::Auto => "automatically",
            Advance::Manual => "by operator",
        },
        plan.success,
        if plan.wait > 0 {
            format!(", after {} s at least", plan.wait)
        } else {
            String::new()
        }
    )
}

fn print_status(s: &RolloutStatus) {
    let c = &s.counts;
    println!(
        "{} {} (release #{})",
        s.model, s.version, s.rollout.release_id
    );
    println!("  {}", s.summary);
    println!("  plan: {}", describe(&s.rollout.plan));
    println!(
        "  devices: {} eligible, {} in the stages so far, {} offered, {} waiting, {} in progress, \
         {} confirmed, {} failed",
        c.eligible, c.in_stage, c.attempted, c.waiting, c.in_progress, c.confirmed, c.failed
    );
}

/// Runs a rollout command.
pub fn run(registry: &Registry, command: RolloutCommand) -> Result<(), Failure> {
    match command {
        RolloutCommand::Show {
            version: Some(version),
            model,
            json: as_json,
        } => {
            let release = find(registry, &version, model.as_deref())?;
            let status = registry
                .rollout_status(release.id)
                .map_err(fail)?
                .ok_or_else(|| {
                    fail(format!(
                        "{} {} has no rollout plan: it is offered to every compatible device",
                        release.model, release.version
                    ))
                })?;
            if as_json {
                return print_json(&status);
            }
            print_status(&status);
            Ok(())
        }
        RolloutCommand::Show {
            version: None,
            json: as_json,
            ..
        } => {
            let default = registry.rollout_default().map_err(fail)?;
            let statuses = registry.rollout_statuses().map_err(fail)?;
            if as_json {
                return print_json(
                    &serde_json::json!({ "default": default, "rollouts": statuses }),
                );
            }
            match &default {
                Some(plan) => println!("default plan: {}", describe(plan)),
                None => println!("default plan: none (releases go to every compatible device)"),
            }
            for status in &statuses {
                print_status(status);
            }
            Ok(())
        }
        RolloutCommand::Set(args) if args.default => {
            if args.clear {
                registry.set_rollout_default(None).map_err(fail)?;
                println!("default plan removed");
                return Ok(());
            }
            let plan = plan(&args)?;
            registry.set_rollout_default(Some(&plan)).map_err(fail)?;
            println!("default plan: {}", describe(&plan));
            Ok(())
        }
        RolloutCommand::Set(args) => {
            let plan = plan(&args)?;
            let release = find(
                registry,
                args.version.as_deref().unwrap_or_default(),
                args.model.as_deref(),
            )?;
            registry.set_rollout(release.id, &plan).map_err(fail)?;
            println!(
                "rollout of {} {}: {}",
                release.model,
                release.version,
                describe(&plan)
            );
            Ok(())
        }
        RolloutCommand::Resume(which) => action(registry, which, RolloutAction::Resume),
        RolloutCommand::Advance(which) => action(registry, which, RolloutAction::Advance),
        RolloutCommand::Abort(which) => action(registry, which, RolloutAction::Abort),
    }
}

fn action(registry: &Registry, which: Which, action: RolloutAction) -> Result<(), Failure> {
    let release = find(registry, &which.version, which.model.as_deref())?;
    registry
        .rollout_action(release.id, action, "operator (cli)")
        .map_err(fail)?;
    if let Some(status) = registry.rollout_status(release.id).map_err(fail)? {
        print_status(&status);
    }
    Ok(())
}

fn print_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    println!("{}", serde_json::to_string_pretty(value).map_err(fail)?);
    Ok(())
}

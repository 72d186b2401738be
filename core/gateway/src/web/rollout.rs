//! Staged rollouts in the web UI (the panel on `/releases`, its forms) and the JSON API:
//!
//! | route | what |
//! | --- | --- |
//! | `GET /api/rollouts` | `{"default": RolloutPlan or null, "rollouts": [RolloutStatus]}` |
//! | `GET /api/rollouts/{release}` | [`RolloutStatus`]; 404 `{"error"}` |
//! | `POST /api/rollouts/{release}` | set the plan (form: `csrf`, `stages`, optional `failure_threshold`, `min_sample`, `advance` = `auto`/`manual`, `success`, `wait` seconds) → [`RolloutStatus`] |
//! | `POST /api/rollouts/{release}/{action}` | `resume`, `advance` or `abort` (form: `csrf`) → [`RolloutStatus`]; 409 `{"error"}` when the state forbids it |
//! | `POST /releases/{release}/rollout[/{action}]` | the same from the page's forms; redirects to `/releases#rollouts` |
//!
//! Every `POST` needs a session and its CSRF token (checked before the handler runs); the API
//! token only reads. A running gateway acts on a change at its next reconcile pass (5 s).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use maud::{html, Markup};
use serde::Deserialize;

use crate::registry::{Registry, RegistryError, Release, RolloutAction, RolloutStatus};
use crate::rollout::{Advance, RolloutPlan, RolloutState};

use super::api::ErrorBody;
use super::auth::Session;
use super::pages::{badge, notice, page, when};
use super::{blocking, Web};

fn state_badge(state: RolloutState) -> Markup {
    let class = match state {
        RolloutState::Active => "info",
        RolloutState::Complete => "good",
        RolloutState::Waiting => "wait",
        _ => "bad",
    };
    badge(class, state.as_str())
}

fn action_button(release: i64, action: RolloutAction, label: &str, csrf: &str) -> Markup {
    html! {
        form.inline method="post" action={ "/releases/" (release) "/rollout/" (action.as_str()) } {
            input type="hidden" name="csrf" value=(csrf);
            button type="submit" name="do" value=(action.as_str()) { (label) }
        }
    }
}

fn actions(status: &RolloutStatus, csrf: &str) -> Markup {
    let id = status.rollout.release_id;
    let last = status.rollout.stage + 1 >= status.rollout.plan.stages.len();
    html! {
        @match status.rollout.state {
            RolloutState::Halted => {
                (action_button(id, RolloutAction::Resume, "Resume", csrf))
                @if !last { (action_button(id, RolloutAction::Advance, "Advance", csrf)) }
                (action_button(id, RolloutAction::Abort, "Abort", csrf))
            }
            RolloutState::Waiting => {
                (action_button(id, RolloutAction::Resume, "Start next stage", csrf))
                (action_button(id, RolloutAction::Abort, "Abort", csrf))
            }
            RolloutState::Active => {
                @if !last { (action_button(id, RolloutAction::Advance, "Advance", csrf)) }
                (action_button(id, RolloutAction::Abort, "Abort", csrf))
            }
            _ => { span.muted { "–" } }
        }
    }
}

fn plan_text(plan: &RolloutPlan) -> String {
    format!(
        "{} · halt above {} % failed (from {}) · {} advance at {} %{}",
        plan.stages_text(),
        plan.failure_threshold,
        plan.min_sample,
        match plan.advance {
            Advance::Auto => "auto",
            Advance::Manual => "manual",
        },
        plan.success,
        if plan.wait > 0 {
            format!(" after {} s", plan.wait)
        } else {
            String::new()
        }
    )
}

/// The rollout panel of the releases page.
pub(super) fn panel(
    statuses: &[RolloutStatus],
    releases: &[Release],
    default: Option<&RolloutPlan>,
    csrf: &str,
    now: u64,
) -> Markup {
    html! {
        section #rollouts {
            h2 { "Staged rollouts" }
            p.muted {
                "Default plan for new releases: "
                @if let Some(plan) = default { code { (plan_text(plan)) } } @else { "none (every compatible device at once)" }
                " · " code { "fwledger gateway rollout set --default --stages 10%,all" } " sets it."
            }
            @if statuses.is_empty() {
                p.muted { "No rollout: every release goes to every compatible device at once." }
            } @else {
                table.rollouts {
                    thead { tr {
                        th { "Release" } th { "Plan" } th { "Stage" } th { "State" } th { "Devices" }
                        th { "Since" } th { "Actions" }
                    } }
                    tbody {
                        @for s in statuses {
                            @let c = &s.counts;
                            tr data-release=(s.rollout.release_id) data-state=(s.rollout.state.as_str()) {
                                td { (s.model) " " (s.version) }
                                td { code { (plan_text(&s.rollout.plan)) } }
                                td.num { (s.rollout.stage + 1) "/" (s.rollout.plan.stages.len())
                                    " (" (s.rollout.plan.stages.get(s.rollout.stage).map(|t| t.text()).unwrap_or_default()) ")" }
                                td.summary { (state_badge(s.rollout.state)) " " (s.summary) }
                                td.counts {
                                    (c.in_stage) "/" (c.eligible) " in stage · " (c.attempted) " offered · "
                                    (c.in_progress) " in progress · " (c.confirmed) " confirmed · " (c.failed) " failed"
                                }
                                td { (when(now, Some(s.rollout.stage_started))) }
                                td.actions { (actions(s, csrf)) }
                            }
                        }
                    }
                }
            }
            @if !releases.is_empty() {
                details #set-rollout {
                    summary { "Stage a release" }
                    form.grid method="post" action="/releases/rollout" {
                        input type="hidden" name="csrf" value=(csrf);
                        label { "Release" select name="release" {
                            @for r in releases { option value=(r.id) { (r.model) " " (r.version) " (#" (r.id) ")" } }
                        } }
                        label { "Stages" input name="stages" required value="10%,50%,all" placeholder="10%,group:canary,all"; }
                        label { "Halt above % failed" input name="failure_threshold" type="number" min="0" max="100" value="20"; }
                        label { "Minimum sample" input name="min_sample" type="number" min="1" value="1"; }
                        label { "Advance" select name="advance" { option value="auto" { "automatically" } option value="manual" { "by operator" } } }
                        button type="submit" { "Set plan" }
                    }
                    p.muted { "Setting a plan restarts the rollout at its first stage; devices already offered the release keep their offer." }
                }
            }
        }
    }
}

/// The panel's data.
pub(super) fn load(
    registry: &Registry,
) -> Result<(Vec<RolloutStatus>, Option<RolloutPlan>), RegistryError> {
    Ok((registry.rollout_statuses()?, registry.rollout_default()?))
}

#[derive(Debug, Deserialize)]
pub(crate) struct PlanForm {
    #[serde(default)]
    release: Option<i64>,
    #[serde(default)]
    stages: String,
    #[serde(default)]
    failure_threshold: Option<String>,
    #[serde(default)]
    min_sample: Option<String>,
    #[serde(default)]
    advance: Option<String>,
    #[serde(default)]
    success: Option<String>,
    #[serde(default)]
    wait: Option<String>,
}

impl PlanForm {
    fn plan(&self) -> Result<RolloutPlan, String> {
        fn number<T: std::str::FromStr>(
            field: &Option<String>,
            name: &str,
            default: T,
        ) -> Result<T, String> {
            match field.as_deref().map(str::trim) {
                None | Some("") => Ok(default),
                Some(text) => text
                    .parse()
                    .map_err(|_| format!("{name}: {text:?} is not a number")),
            }
        }
        let mut plan = RolloutPlan::parse_stages(&self.stages).map_err(|e| e.to_string())?;
        plan.failure_threshold = number(&self.failure_threshold, "failure_threshold", 20)?;
        plan.min_sample = number(&self.min_sample, "min_sample", 1)?;
        plan.success = number(&self.success, "success", 100)?;
        plan.wait = number(&self.wait, "wait", 0)?;
        plan.advance = match self.advance.as_deref().map(str::trim) {
            None | Some("") | Some("auto") => Advance::Auto,
            Some("manual") => Advance::Manual,
            Some(other) => return Err(format!("advance: {other:?} is neither auto nor manual")),
        };
        plan.validate().map_err(|e| e.to_string())?;
        Ok(plan)
    }
}

/// What went wrong with a rollout request, as an HTTP status and a message.
fn refused(e: RegistryError) -> (StatusCode, String) {
    let status = match &e {
        RegistryError::UnknownRelease(_) | RegistryError::NoRollout(_) => StatusCode::NOT_FOUND,
        RegistryError::RolloutRefused(_) => StatusCode::CONFLICT,
        RegistryError::BadPlan(_) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, e.to_string())
}

/// What an operator changes.
enum Change {
    Plan(RolloutPlan),
    Action(RolloutAction),
}

async fn apply(
    web: &Web,
    release: i64,
    change: Change,
    who: &'static str,
) -> Result<RolloutStatus, (StatusCode, String)> {
    let registry = web.http.registry.clone();
    let done = tokio::task::spawn_blocking(move || {
        match change {
            Change::Action(action) => registry.rollout_action(release, action, who)?,
            Change::Plan(plan) => registry.set_rollout(release, &plan)?,
        };
        registry
            .rollout_status(release)?
            .ok_or(RegistryError::NoRollout(release))
    })
    .await;
    match done {
        Ok(Ok(status)) => Ok(status),
        Ok(Err(e)) => Err(refused(e)),
        Err(_) => Err((StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())),
    }
}

fn api_error(status: StatusCode, message: &str) -> Response {
    (status, Json(ErrorBody::new(message))).into_response()
}

fn page_error(session: &Session, status: StatusCode, message: &str) -> Response {
    let body = html! {
        (notice("bad", message))
        p { a href="/releases#rollouts" { "Back to the versions" } }
    };
    let mut response = page("Rollout not changed", "/releases", session, body);
    *response.status_mut() = status;
    response
}

pub(crate) async fn api_list(State(web): State<Web>) -> Response {
    let registry = web.http.registry.clone();
    match blocking(move || load(&registry)).await {
        Ok((rollouts, default)) => {
            Json(serde_json::json!({ "default": default, "rollouts": rollouts })).into_response()
        }
        Err(response) => api_error(response.status(), "registry unavailable"),
    }
}

pub(crate) async fn api_show(State(web): State<Web>, Path(release): Path<i64>) -> Response {
    let registry = web.http.registry.clone();
    match blocking(move || registry.rollout_status(release)).await {
        Ok(Some(status)) => Json(status).into_response(),
        Ok(None) => api_error(StatusCode::NOT_FOUND, "no rollout for this release"),
        Err(response) => api_error(response.status(), "registry unavailable"),
    }
}

pub(crate) async fn api_set(
    State(web): State<Web>,
    Path(release): Path<i64>,
    Form(form): Form<PlanForm>,
) -> Response {
    let plan = match form.plan() {
        Ok(plan) => plan,
        Err(e) => return api_error(StatusCode::UNPROCESSABLE_ENTITY, &e),
    };
    match apply(&web, release, Change::Plan(plan), "operator (api)").await {
        Ok(status) => Json(status).into_response(),
        Err((code, message)) => api_error(code, &message),
    }
}

pub(crate) async fn api_action(
    State(web): State<Web>,
    Path((release, action)): Path<(i64, String)>,
) -> Response {
    let Some(action) = RolloutAction::parse(&action) else {
        return api_error(
            StatusCode::NOT_FOUND,
            "unknown action: resume, advance or abort",
        );
    };
    match apply(&web, release, Change::Action(action), "operator (api)").await {
        Ok(status) => Json(status).into_response(),
        Err((code, message)) => api_error(code, &message),
    }
}

pub(crate) async fn form_set(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
    Form(form): Form<PlanForm>,
) -> Response {
    let Some(release) = form.release else {
        return page_error(
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose a release.",
        );
    };
    let plan = match form.plan() {
        Ok(plan) => plan,
        Err(e) => {
            return page_error(
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("Plan not set: {e}"),
            )
        }
    };
    match apply(&web, release, Change::Plan(plan), "operator (web)").await {
        Ok(_) => Redirect::to("/releases#rollouts").into_response(),
        Err((code, message)) => page_error(&session, code, &format!("Plan not set: {message}")),
    }
}

pub(crate) async fn form_action(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
    Path((release, action)): Path<(i64, String)>,
) -> Response {
    let Some(action) = RolloutAction::parse(&action) else {
        return page_error(&session, StatusCode::NOT_FOUND, "Unknown rollout action.");
    };
    match apply(&web, release, Change::Action(action), "operator (web)").await {
        Ok(_) => Redirect::to("/releases#rollouts").into_response(),
        Err((code, message)) => page_error(&session, code, &message),
    }
}

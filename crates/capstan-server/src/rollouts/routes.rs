//! `/api/v1/projects/{project}/rollouts`: start a guarded rollout, list and read them,
//! and steer one by hand (pause, resume, promote, abort).

use std::sync::Arc;

use axum::Json;
use axum::extract::FromRef;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use capstan_judge::{Direction, Guardrail, Response, RolloutPlan, Statistic, Step, Tolerance};
use capstan_store::RolloutFilter;
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::wire::{self, RolloutBucket, RolloutDetail, RolloutList};
use super::{Rollout, Transition, TransitionContext, load, transition};
use crate::core::body::{JsonBody, parse_json};
use crate::core::error::{ApiError, Failure};
use crate::core::paths;
use crate::core::scope::{InProject, permissions};
use crate::core::scope::{environment_key, flag_key};
use crate::core::state::Core;
use crate::flags::FlagsState;

permissions! {
    SteerRollouts = (Editor, "steer rollouts");
    StartRollouts = (Editor, "start rollouts");
    ReadRollouts = (Viewer, "read rollouts");
}

pub(super) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    FlagsState: FromRef<S>,
    Arc<Core>: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(list, start))
        .routes(routes!(get))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(promote))
        .routes(routes!(abort))
}

/// One step of a rollout.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct StepBody {
    /// Share of units served the treatment, in percent (the last step is 100).
    percent: f64,
    /// Least time the step is held, in seconds (default 600).
    min_duration_seconds: Option<u64>,
    /// Least number of units newly exposed to the treatment during the step (default 100).
    min_units: Option<u64>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ToleranceBody {
    /// Share of control's value treatment may be worse by (0.05 is 5%).
    relative: Option<f64>,
    /// Amount treatment may be worse by, in the metric's unit.
    absolute: Option<f64>,
}

/// A guardrail metric.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GuardrailBody {
    /// Metric name, as sent in metric events.
    metric: String,
    /// `mean` (per unit; the default) or a percentile such as `p95` (of all values).
    statistic: Option<String>,
    /// `higher_is_worse` (default) or `lower_is_worse`.
    direction: Option<String>,
    tolerance: Option<ToleranceBody>,
    /// `revert` (default), `pause` or `notify`.
    response: Option<String>,
}

/// Starts a guarded rollout of one flag in one environment.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct StartRollout {
    flag: String,
    environment: String,
    /// The variant to roll out; the variant served now is the control.
    to: String,
    /// Default: 1, 5, 25, 50, 100 percent, each 10 minutes and 100 units at least.
    steps: Option<Vec<StepBody>>,
    /// Guardrails besides (or, with `defaultGuardrails: false`, instead of) the
    /// defaults: `error` mean, `latency_ms` mean and p95.
    guardrails: Option<Vec<GuardrailBody>>,
    default_guardrails: Option<bool>,
    /// Chance of reverting a change that is truly no different (default 0.01).
    false_revert_rate: Option<f64>,
    /// A step undecided this long pauses the rollout and notifies (default 86400).
    decision_deadline_seconds: Option<u64>,
    /// No guardrail is judged on fewer units in either arm (default 30).
    min_samples: Option<u64>,
}

fn parse_plan(body: &StartRollout, control: String) -> Result<RolloutPlan, Failure> {
    let mut plan = RolloutPlan::new(control, body.to.clone());
    if let Some(steps) = &body.steps {
        plan.steps = steps
            .iter()
            .map(|step| Step {
                percent: step.percent,
                min_duration_ms: step
                    .min_duration_seconds
                    .unwrap_or(600)
                    .saturating_mul(1000) as i64,
                min_units: step.min_units.unwrap_or(100),
            })
            .collect();
    }
    if body.default_guardrails == Some(false) {
        plan.guardrails.clear();
    }
    for (index, guardrail) in body.guardrails.iter().flatten().enumerate() {
        let field = |name: &str| format!("guardrails[{index}].{name}");
        crate::flags::operations::events::metric_name(&guardrail.metric)
            .map_err(|error| Failure::field(field("metric"), error))?;
        let statistic = Statistic::parse(guardrail.statistic.as_deref().unwrap_or("mean"))
            .map_err(|error| Failure::field(field("statistic"), error))?;
        let direction = match guardrail.direction.as_deref().unwrap_or("higher_is_worse") {
            "higher_is_worse" => Direction::HigherIsWorse,
            "lower_is_worse" => Direction::LowerIsWorse,
            other => {
                return Err(Failure::field(
                    field("direction"),
                    format!(
                        "unknown direction {other:?}; expected higher_is_worse or lower_is_worse"
                    ),
                ));
            }
        };
        let response = match guardrail.response.as_deref().unwrap_or("revert") {
            "revert" => Response::Revert,
            "pause" => Response::Pause,
            "notify" => Response::Notify,
            other => {
                return Err(Failure::field(
                    field("response"),
                    format!("unknown response {other:?}; expected revert, pause or notify"),
                ));
            }
        };
        let tolerance = guardrail.tolerance.as_ref();
        plan.guardrails.push(Guardrail {
            metric: guardrail.metric.clone(),
            statistic,
            direction,
            tolerance: Tolerance {
                relative: tolerance.and_then(|t| t.relative).unwrap_or(0.05),
                absolute: tolerance.and_then(|t| t.absolute).unwrap_or(0.0),
            },
            response,
        });
    }
    if plan.guardrails.is_empty() {
        return Err(Failure::field(
            "guardrails",
            "a rollout needs at least one guardrail",
        ));
    }
    if let Some(rate) = body.false_revert_rate {
        plan.false_revert_rate = rate;
    }
    if let Some(seconds) = body.decision_deadline_seconds {
        plan.decision_deadline_ms = seconds.saturating_mul(1000).min(i64::MAX as u64) as i64;
    }
    if let Some(min_samples) = body.min_samples {
        plan.min_samples = min_samples;
    }
    plan.validate()
        .map_err(|error| Failure::field(error.field, error.message))?;
    Ok(plan)
}

#[utoipa::path(
    post,
    path = "/api/v1/projects/{project}/rollouts",
    tag = "rollouts",
    summary = "Start a guarded rollout of a flag to a new variant",
    params(paths::Project),
    request_body = StartRollout,
    responses((status = 201, description = "Started", body = wire::Rollout), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn start(
    State(state): State<FlagsState>,
    InProject {
        principal, project, ..
    }: InProject<StartRollouts>,
    JsonBody(body): JsonBody<StartRollout>,
) -> Result<(StatusCode, Json<wire::Rollout>), ApiError> {
    let environment = environment_key(&body.environment)?;
    let flag = flag_key(&body.flag)?;
    let plan = |control: String| parse_plan(&body, control);
    let rollout = super::start(
        &state,
        &principal.name,
        (&project, &environment, &flag),
        &body.to,
        &plan,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(wire::Rollout::from(&rollout))))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    environment: Option<String>,
    flag: Option<String>,
    /// Only running and paused rollouts.
    active: Option<bool>,
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/rollouts",
    tag = "rollouts",
    summary = "Rollouts, newest first, active and finished",
    params(paths::Project, ListQuery),
    responses((status = 200, description = "OK", body = RolloutList), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn list(
    State(state): State<FlagsState>,
    InProject { project, .. }: InProject<ReadRollouts>,
    Query(query): Query<ListQuery>,
) -> Result<Json<RolloutList>, ApiError> {
    let filter = RolloutFilter {
        project: Some(project),
        environment: query
            .environment
            .as_deref()
            .map(environment_key)
            .transpose()?,
        flag: query.flag.as_deref().map(flag_key).transpose()?,
        active_only: query.active.unwrap_or(false),
    };
    let mut rollouts = Vec::new();
    for record in state.core.store.list_rollouts(filter).await? {
        rollouts.push(wire::Rollout::from(&Rollout::parse(record)?));
    }
    Ok(Json(RolloutList { rollouts }))
}

fn rollout_id(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::field("id", "expected a rollout id (a positive number)"))
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/rollouts/{id}",
    tag = "rollouts",
    summary = "A rollout: its timeline, units per variant, each guardrail's estimate and interval, and why it is where it is",
    params(paths::Rollout),
    responses((status = 200, description = "OK", body = RolloutDetail), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn get(
    State(state): State<FlagsState>,
    InProject { project, .. }: InProject<ReadRollouts>,
    Path(paths::Rollout { id, .. }): Path<paths::Rollout>,
) -> Result<Json<RolloutDetail>, ApiError> {
    let rollout = load(&state, &project, rollout_id(&id)?).await?;
    let buckets = state
        .core
        .store
        .rollout_buckets(rollout.record.id)
        .await?
        .iter()
        .map(|bucket| RolloutBucket::new(bucket, &rollout.plan.plan))
        .collect::<Result<_, _>>()?;
    Ok(Json(RolloutDetail {
        rollout: wire::Rollout::from(&rollout),
        buckets,
    }))
}

/// Why a human steers a rollout; kept in the audit log and the webhook message.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Steer {
    reason: Option<String>,
}

async fn steer(
    state: FlagsState,
    InProject {
        principal, project, ..
    }: InProject<SteerRollouts>,
    id: String,
    body: Option<Steer>,
    kind: &'static str,
) -> Result<Json<wire::Rollout>, ApiError> {
    let rollout = load(&state, &project, rollout_id(&id)?).await?;
    let note = body
        .and_then(|body| body.reason)
        .map(|reason| format!(": {reason}"))
        .unwrap_or_default();
    let units = rollout
        .latest
        .as_ref()
        .map(|latest| latest.units)
        .unwrap_or_default();
    let (change, reason) = match kind {
        "pause" => (
            Transition::Pause,
            format!("Paused by {}{note}.", principal.name),
        ),
        "resume" => (
            Transition::Resume,
            format!("Resumed by {}{note}.", principal.name),
        ),
        "abort" => (
            Transition::Revert,
            format!(
                "Aborted by {}{note}; the control is served again.",
                principal.name
            ),
        ),
        _ => {
            let next = rollout.progress.progress.step + 1;
            if next + 1 >= rollout.plan.plan.steps.len() {
                (
                    Transition::Promote,
                    format!("Promoted to 100% by {}{note}.", principal.name),
                )
            } else {
                let percent = rollout.plan.plan.steps[next].percent;
                (
                    Transition::Advance { step: next },
                    format!("Advanced to {percent}% by {}{note}.", principal.name),
                )
            }
        }
    };
    let context = TransitionContext {
        actor: &principal.name,
        evidence: json!({ "requestedBy": principal.name }),
        reason,
        units,
        notified: Vec::new(),
    };
    let after = transition(&state, &rollout, change, context).await?;
    Ok(Json(wire::Rollout::from(&after)))
}

macro_rules! steering_route {
    ($name:ident, $path:literal, $summary:literal) => {
        #[utoipa::path(
            post,
            path = $path,
            tag = "rollouts",
            summary = $summary,
            params(paths::Rollout),
            request_body(content = Steer, description = "Optional reason"),
            responses((status = 200, description = "OK", body = wire::Rollout), crate::core::error::ErrorResponses),
            security(("bearer" = []))
        )]
        async fn $name(
            State(state): State<FlagsState>,
            scope: InProject<SteerRollouts>,
            Path(paths::Rollout { id, .. }): Path<paths::Rollout>,
            body: axum::body::Bytes,
        ) -> Result<Json<wire::Rollout>, ApiError> {
            let body: Option<Steer> = if body.iter().all(u8::is_ascii_whitespace) {
                None
            } else {
                Some(parse_json(&body)?)
            };
            steer(state, scope, id, body, stringify!($name)).await
        }
    };
}

steering_route!(
    pause,
    "/api/v1/projects/{project}/rollouts/{id}/pause",
    "Pause a running rollout (it holds its step)"
);
steering_route!(
    resume,
    "/api/v1/projects/{project}/rollouts/{id}/resume",
    "Resume a paused rollout at its step"
);
steering_route!(
    promote,
    "/api/v1/projects/{project}/rollouts/{id}/promote",
    "Move a rollout to its next step now (to 100% from the last held step)"
);
steering_route!(
    abort,
    "/api/v1/projects/{project}/rollouts/{id}/abort",
    "Abort a rollout: serve the control again"
);

//! Guarded rollouts of flags: the API that starts and steers them, and the driver that
//! feeds their events to the judge (`capstan-judge`) and carries out its decisions.
//!
//! A rollout moves a flag's default path from its control variant (the variant it
//! served when the rollout started) to a treatment variant through a `fractional` split
//! written into the flag's targeting, so every consumer (OFREP, SDKs, flagd exports) sees
//! the same split. Rules the flag already had keep their variants; only units that fall
//! through to the default are split. Every transition is one store transaction: the
//! flag's new definition, the rollout's new state, the audit entry and the webhook
//! messages commit together or not at all.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::core::state::Core;
use crate::flags::FlagsState;

pub mod driver;
pub mod error;
mod routes;
pub mod wire;

use capstan_judge::{Progress, RolloutPlan, Status, Units};
use capstan_model::{EnvironmentKey, FlagKey, ProjectKey};
use capstan_store::{ConfigWrite, Notification, RolloutRecord, RolloutStatus, RolloutWrite};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::core::error::Failure;
use crate::flags::write::{AuditDraft, Plan, mutate};
use crate::rollouts::error::RolloutError;

/// The rollout routes.
pub fn router<S>() -> utoipa_axum::router::OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    FlagsState: FromRef<S>,
    Arc<Core>: FromRef<S>,
{
    routes::router()
}

/// The plan as stored: the judge's plan and the flag's targeting before the rollout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredPlan {
    #[serde(flatten)]
    pub plan: RolloutPlan,
    pub original_targeting: Option<Value>,
}

/// Where the rollout is, and why, in one sentence.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredProgress {
    #[serde(flatten)]
    pub progress: Progress,
    pub reason: String,
}

/// One step of the timeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntry {
    pub step: usize,
    pub percent: f64,
    pub started_at: i64,
    pub units_at_start: Units,
    pub ended_at: Option<i64>,
    pub units_at_end: Option<Units>,
    /// How the step ended, in one sentence.
    pub outcome: Option<String>,
}

/// The judge's latest reading of a running rollout, as the driver stores it
/// (`RolloutRecord::latest`); the API shows its reason, units and guardrails.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reading {
    /// RFC 3339.
    pub at: String,
    pub reason: String,
    pub units: Units,
    pub guardrails: Vec<wire::GuardrailReading>,
    pub unattributed_metric_events: u64,
    pub conflicting_exposures: u64,
}

/// A rollout as the server works with it.
#[derive(Debug, Clone)]
pub struct Rollout {
    pub record: RolloutRecord,
    pub plan: StoredPlan,
    pub progress: StoredProgress,
    pub timeline: Vec<TimelineEntry>,
    /// `record.latest`, read; none before the first reading, or if it cannot be read
    /// (it is only shown, so a bad one must not stop a rollout from being steered).
    pub latest: Option<Reading>,
}

impl Rollout {
    pub fn parse(record: RolloutRecord) -> Result<Rollout, RolloutError> {
        let corrupt = |what: &str, error: serde_json::Error| {
            Failure::Internal(anyhow::anyhow!(
                "rollout {} {what} is not valid: {error}",
                record.id
            ))
        };
        let plan = serde_json::from_value(record.plan.clone()).map_err(|e| corrupt("plan", e))?;
        let progress =
            serde_json::from_value(record.progress.clone()).map_err(|e| corrupt("progress", e))?;
        let timeline =
            serde_json::from_value(record.timeline.clone()).map_err(|e| corrupt("timeline", e))?;
        let latest = record.latest.as_ref().and_then(|latest| {
            serde_json::from_value(latest.clone())
                .inspect_err(|error| {
                    tracing::warn!(rollout = record.id, %error, "the rollout's latest reading is not valid");
                })
                .ok()
        });
        Ok(Rollout {
            record,
            plan,
            progress,
            timeline,
            latest,
        })
    }

    pub fn status(&self) -> Status {
        self.progress.progress.status
    }

    pub fn percent(&self) -> f64 {
        match self.status() {
            Status::Promoted => 100.0,
            Status::Reverted => 0.0,
            _ => self.plan.plan.steps[self.progress.progress.step].percent,
        }
    }

    fn describe(&self) -> String {
        // A rollout being created has no id yet.
        let id = match self.record.id {
            0 => String::new(),
            id => format!(" {id}"),
        };
        format!(
            "Rollout{id} of {} in {}",
            self.record.flag, self.record.environment
        )
    }
}

/// The flag's targeting while `basis_points` of the default path get the treatment.
/// Units are bucketed by flag key and targeting key, and the treatment takes the top of
/// the range, so a unit that got the treatment keeps it as the share grows.
pub fn split_targeting(plan: &StoredPlan, basis_points: u32) -> Value {
    let split = json!({
        "fractional": [
            [plan.plan.control, 10_000 - basis_points as i64],
            [plan.plan.treatment, basis_points as i64],
        ]
    });
    match &plan.original_targeting {
        Some(original) if !is_empty_targeting(original) => {
            json!({ "if": [original, original, split] })
        }
        _ => split,
    }
}

fn is_empty_targeting(targeting: &Value) -> bool {
    targeting.is_null() || targeting.as_object().is_some_and(Map::is_empty)
}

/// The flag's definition during a step (or, for `None`, once finished on `variant`).
fn flag_config(
    current: &Map<String, Value>,
    plan: &StoredPlan,
    shape: FlagShape<'_>,
) -> Map<String, Value> {
    let mut next = current.clone();
    match shape {
        FlagShape::Split(basis_points) => {
            next.insert("targeting".to_owned(), split_targeting(plan, basis_points));
            next.insert("defaultVariant".to_owned(), json!(plan.plan.control));
        }
        FlagShape::Settled(variant) => {
            match &plan.original_targeting {
                Some(original) => next.insert("targeting".to_owned(), original.clone()),
                None => next.remove("targeting"),
            };
            next.insert("defaultVariant".to_owned(), json!(variant));
        }
    }
    next
}

enum FlagShape<'a> {
    Split(u32),
    Settled(&'a str),
}

/// Whether the flag is still as the rollout left it: enabled, with the step's split.
pub fn flag_is_as_left(current: &Map<String, Value>, rollout: &Rollout) -> bool {
    let step = &rollout.plan.plan.steps[rollout.progress.progress.step];
    let expected = flag_config(
        current,
        &rollout.plan,
        FlagShape::Split(step.basis_points()),
    );
    current.get("state").and_then(Value::as_str) == Some("ENABLED") && expected == *current
}

/// What moves a rollout on.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    Advance {
        step: usize,
    },
    Promote,
    Revert,
    Pause,
    /// Running again, on the current step, with the step's split written back.
    Resume,
    /// Guardrails that only notify were shown worse: tell people, change nothing else.
    Notify {
        guardrails: Vec<String>,
    },
}

impl Transition {
    /// A short name, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Transition::Advance { .. } => "advance",
            Transition::Promote => "promote",
            Transition::Revert => "revert",
            Transition::Pause => "pause",
            Transition::Resume => "resume",
            Transition::Notify { .. } => "notify",
        }
    }

    fn event(&self) -> &'static str {
        match self {
            Transition::Advance { .. } => "rollout.step",
            Transition::Promote => "rollout.promoted",
            Transition::Revert => "rollout.reverted",
            Transition::Pause => "rollout.paused",
            Transition::Resume => "rollout.resumed",
            Transition::Notify { .. } => "rollout.guardrail",
        }
    }
}

/// Everything a transition records besides the rollout's new state.
pub struct TransitionContext<'a> {
    pub actor: &'a str,
    pub reason: String,
    /// The judge's readings (or a human's request), kept in the audit entry.
    pub evidence: Value,
    pub units: Units,
    pub notified: Vec<String>,
}

/// Carries out one transition: the flag change, the rollout's state, the audit entry and
/// the webhook messages, as one change that expects the rollout unchanged since it was
/// read. Returns the rollout as stored afterwards.
pub async fn transition(
    state: &FlagsState,
    rollout: &Rollout,
    transition: Transition,
    context: TransitionContext<'_>,
) -> Result<Rollout, RolloutError> {
    let status = rollout.status();
    let allowed = match &transition {
        Transition::Resume => status == Status::Paused,
        Transition::Pause | Transition::Advance { .. } | Transition::Notify { .. } => {
            status == Status::Running
        }
        Transition::Promote | Transition::Revert => !status.is_finished(),
    };
    if !allowed {
        return Err(Failure::field(
            "action",
            format!(
                "the rollout is {}; it cannot be {}",
                status.as_str(),
                verb(&transition)
            ),
        )
        .into());
    }
    let now = state.core.clock.now_ms();
    let plan = &rollout.plan;
    let mut progress = rollout.progress.clone();
    progress
        .progress
        .notified
        .extend(context.notified.iter().cloned());
    let mut timeline = rollout.timeline.clone();
    let close_step = |timeline: &mut Vec<TimelineEntry>, outcome: &str| {
        if let Some(entry) = timeline.last_mut()
            && entry.ended_at.is_none()
        {
            entry.ended_at = Some(now);
            entry.units_at_end = Some(context.units);
            entry.outcome = Some(outcome.to_owned());
        }
    };
    let shape = match &transition {
        Transition::Advance { step } => {
            close_step(&mut timeline, &context.reason);
            progress.progress.step = *step;
            progress.progress.step_started_at = now;
            progress.progress.step_start_units = context.units.treatment;
            timeline.push(TimelineEntry {
                step: *step,
                percent: plan.plan.steps[*step].percent,
                started_at: now,
                units_at_start: context.units,
                ended_at: None,
                units_at_end: None,
                outcome: None,
            });
            Some(FlagShape::Split(plan.plan.steps[*step].basis_points()))
        }
        Transition::Promote => {
            close_step(&mut timeline, &context.reason);
            progress.progress.status = Status::Promoted;
            Some(FlagShape::Settled(&plan.plan.treatment))
        }
        Transition::Revert => {
            close_step(&mut timeline, &context.reason);
            progress.progress.status = Status::Reverted;
            Some(FlagShape::Settled(&plan.plan.control))
        }
        Transition::Pause => {
            progress.progress.status = Status::Paused;
            None
        }
        Transition::Resume => {
            progress.progress.status = Status::Running;
            // The step's clock restarts, so its deadline does not strike at once.
            progress.progress.step_started_at = now;
            progress.progress.step_start_units = context.units.treatment;
            let step = &plan.plan.steps[progress.progress.step];
            Some(FlagShape::Split(step.basis_points()))
        }
        Transition::Notify { .. } => None,
    };
    progress.reason = context.reason.clone();
    let environments: Vec<EnvironmentKey> = match shape {
        Some(_) => vec![rollout.record.environment.clone()],
        None => Vec::new(),
    };
    let after = Rollout {
        record: rollout.record.clone(),
        plan: plan.clone(),
        progress: progress.clone(),
        timeline: timeline.clone(),
        latest: rollout.latest.clone(),
    };
    let mut notifications = vec![notification(&after, transition.event(), &context)];
    if matches!(transition, Transition::Promote | Transition::Revert) {
        notifications.push(notification(&after, "rollout.finished", &context));
    }
    let flag = rollout.record.flag.clone();
    mutate::<_, RolloutError>(
        state,
        context.actor,
        &rollout.record.project,
        &environments,
        |snapshots, _| {
            let mut planned = Plan::new(
                AuditDraft {
                    action: transition_action(&transition),
                    environment: Some(rollout.record.environment.clone()),
                    resource_kind: "rollout",
                    resource_key: rollout.record.id.to_string(),
                    before: Some(json!({
                        "status": rollout.status(),
                        "percent": rollout.percent(),
                    })),
                    after: Some(json!({
                        "status": progress.progress.status,
                        "percent": after.percent(),
                        "reason": context.reason,
                        "evidence": context.evidence,
                    })),
                },
                (),
            );
            if let (Some(shape), Some(snapshot)) = (&shape, snapshots.first()) {
                let config = snapshot.config(&flag).ok_or_else(|| Failure::NotFound {
                    kind: "flag",
                    key: flag.to_string(),
                })?;
                let current = config.config.as_object().cloned().unwrap_or_default();
                let shape = match shape {
                    FlagShape::Split(basis_points) => FlagShape::Split(*basis_points),
                    FlagShape::Settled(variant) => FlagShape::Settled(variant),
                };
                let next = flag_config(&current, plan, shape);
                if next != current {
                    planned.push(ConfigWrite {
                        environment: rollout.record.environment.clone(),
                        flag: flag.clone(),
                        expected_version: Some(config.version),
                        config: Some(Value::Object(next)),
                    });
                }
            }
            planned.push(RolloutWrite::Update {
                id: rollout.record.id,
                expected_version: rollout.record.version,
                status: stored_status(progress.progress.status),
                progress: to_json(&progress),
                timeline: to_json(&timeline),
            });
            planned.notifications = notifications.clone();
            Ok(planned)
        },
    )
    .await?;
    let mut record = rollout.record.clone();
    record.version += 1;
    record.status = stored_status(progress.progress.status);
    record.progress = to_json(&progress);
    record.timeline = to_json(&timeline);
    record.updated_at = now;
    Ok(Rollout {
        record,
        plan: plan.clone(),
        progress,
        timeline,
        latest: rollout.latest.clone(),
    })
}

fn verb(transition: &Transition) -> &'static str {
    match transition {
        Transition::Advance { .. } => "advanced",
        Transition::Promote => "promoted",
        Transition::Revert => "reverted",
        Transition::Pause => "paused",
        Transition::Resume => "resumed",
        Transition::Notify { .. } => "judged",
    }
}

fn transition_action(transition: &Transition) -> &'static str {
    match transition {
        Transition::Advance { .. } => "rollout.advance",
        Transition::Promote => "rollout.promote",
        Transition::Revert => "rollout.revert",
        Transition::Pause => "rollout.pause",
        Transition::Resume => "rollout.resume",
        Transition::Notify { .. } => "rollout.notify",
    }
}

pub fn to_json(value: &impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// A webhook message. `text` makes it a valid Slack incoming-webhook message; the other
/// fields are for programs.
pub fn notification(
    rollout: &Rollout,
    event: &str,
    context: &TransitionContext<'_>,
) -> Notification {
    let text = format!(
        "{} ({} → {}) is {} at {}%: {}",
        rollout.describe(),
        rollout.plan.plan.control,
        rollout.plan.plan.treatment,
        rollout.status().as_str(),
        rollout.percent(),
        context.reason
    );
    Notification {
        event: event.to_owned(),
        body: json!({
            "text": text,
            "event": event,
            "rollout": {
                "id": rollout.record.id,
                "project": rollout.record.project.as_str(),
                "environment": rollout.record.environment.as_str(),
                "flag": rollout.record.flag.as_str(),
                "status": rollout.status(),
                "percent": rollout.percent(),
                "control": rollout.plan.plan.control,
                "treatment": rollout.plan.plan.treatment,
            },
            "reason": context.reason,
            "actor": context.actor,
            "units": context.units,
            "evidence": context.evidence,
        }),
    }
}

/// Reads one rollout of `project`.
pub async fn load(
    state: &FlagsState,
    project: &capstan_model::ProjectKey,
    id: i64,
) -> Result<Rollout, RolloutError> {
    let record = state.core.store.rollout(id).await?;
    if &record.project != project {
        return Err(Failure::NotFound {
            kind: "rollout",
            key: id.to_string(),
        }
        .into());
    }
    Rollout::parse(record)
}

/// The flag a rollout may start on, and its current definition.
pub fn check_startable(
    current: &Map<String, Value>,
    flag: &FlagKey,
) -> Result<String, RolloutError> {
    if current.get("state").and_then(Value::as_str) != Some("ENABLED") {
        return Err(Failure::field(
            "flag",
            format!("flag {flag} is disabled here; enable it before rolling out a change"),
        )
        .into());
    }
    current
        .get("defaultVariant")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| Failure::field("flag", format!("flag {flag} has no default variant")).into())
}

/// Starts a rollout of a flag in an environment to the variant `to`: the flag's split for
/// the first step, the rollout and the message announcing it commit together. `plan`
/// builds the plan from the flag's control variant (its default variant now).
pub async fn start(
    state: &FlagsState,
    actor: &str,
    (project, environment, flag): (&ProjectKey, &EnvironmentKey, &FlagKey),
    to: &str,
    plan: &(dyn Fn(String) -> Result<RolloutPlan, Failure> + Sync),
) -> Result<Rollout, RolloutError> {
    let id = new_rollout_id();
    mutate::<_, RolloutError>(
        state,
        actor,
        project,
        std::slice::from_ref(environment),
        |snapshots, now| {
            let snapshot = &snapshots[0];
            let config = snapshot
                .config(flag)
                .ok_or_else(|| Failure::not_found("flag", flag))?;
            let current = config.config.as_object().cloned().unwrap_or_default();
            let control = check_startable(&current, flag)?;
            let variants = current.get("variants").and_then(Value::as_object);
            if !variants.is_some_and(|variants| variants.contains_key(to)) {
                return Err(
                    Failure::field("to", format!("flag {flag} has no variant {to:?}")).into(),
                );
            }
            let plan = StoredPlan {
                plan: plan(control)?,
                original_targeting: current.get("targeting").cloned(),
            };
            let progress = StoredProgress {
                progress: Progress::start(now),
                reason: format!("Started at {}%.", plan.plan.steps[0].percent),
            };
            let timeline = vec![TimelineEntry {
                step: 0,
                percent: plan.plan.steps[0].percent,
                started_at: now,
                units_at_start: Units::default(),
                ended_at: None,
                units_at_end: None,
                outcome: None,
            }];
            let mut next = current.clone();
            next.insert(
                "targeting".to_owned(),
                split_targeting(&plan, plan.plan.steps[0].basis_points()),
            );
            let record = RolloutRecord {
                id,
                project: project.clone(),
                environment: environment.clone(),
                flag: flag.clone(),
                status: RolloutStatus::Running,
                plan: to_json(&plan),
                progress: to_json(&progress),
                timeline: to_json(&timeline),
                latest: None,
                version: 1,
                created_by: actor.to_owned(),
                created_at: now,
                updated_at: now,
            };
            let starting = Rollout {
                record,
                plan: plan.clone(),
                progress: progress.clone(),
                timeline: timeline.clone(),
                latest: None,
            };
            let context = TransitionContext {
                actor,
                reason: progress.reason.clone(),
                evidence: to_json(&plan.plan),
                units: Units::default(),
                notified: Vec::new(),
            };
            let mut planned = Plan::new(
                AuditDraft {
                    action: "rollout.start",
                    environment: Some(environment.clone()),
                    resource_kind: "flag",
                    resource_key: flag.to_string(),
                    before: Some(Value::Object(current.clone())),
                    after: Some(
                        json!({ "rollout": to_json(&plan), "flag": Value::Object(next.clone()) }),
                    ),
                },
                (),
            );
            planned.push(ConfigWrite {
                environment: environment.clone(),
                flag: flag.clone(),
                expected_version: Some(config.version),
                config: Some(Value::Object(next)),
            });
            planned.push(RolloutWrite::Create {
                id,
                environment: environment.clone(),
                flag: flag.clone(),
                status: RolloutStatus::Running,
                plan: to_json(&plan),
                progress: to_json(&progress),
                timeline: to_json(&timeline),
                created_by: actor.to_owned(),
            });
            planned
                .notifications
                .push(notification(&starting, "rollout.started", &context));
            Ok(planned)
        },
    )
    .await?;
    load(state, project, id).await
}

/// The status the store keeps for the judge's.
pub fn stored_status(status: Status) -> RolloutStatus {
    match status {
        Status::Running => RolloutStatus::Running,
        Status::Paused => RolloutStatus::Paused,
        Status::Promoted => RolloutStatus::Promoted,
        Status::Reverted => RolloutStatus::Reverted,
    }
}

/// A new rollout's id, chosen before it is stored so that the messages announcing it in
/// the same change carry it. Random below 2^53, so JSON clients read it exactly, and at
/// least 2^32, above the ids the store once numbered itself.
pub fn new_rollout_id() -> i64 {
    const FIRST: u64 = 1 << 32;
    const END: u64 = 1 << 53;
    (FIRST + rand::random::<u64>() % (END - FIRST)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids stay above the ones the store once numbered itself, and below 2^53, where a
    /// JavaScript number stops being exact.
    #[test]
    fn new_rollout_ids_are_exact_in_json_clients_and_clear_of_old_ids() {
        for _ in 0..10_000 {
            let id = new_rollout_id();
            assert!((1_i64 << 32..1_i64 << 53).contains(&id), "{id}");
            assert_eq!(id as f64 as i64, id);
        }
    }
}

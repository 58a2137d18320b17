//! The JSON shapes of what the rollout routes answer with: a rollout with its plan,
//! timeline and the judge's latest reading, and its per-minute buckets.

use capstan_judge::Status;
use capstan_store::RolloutBucketRecord;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};

use crate::core::clock::rfc3339;
use crate::core::error::ApiError;
use crate::core::wire::number_or_null;

/// Where a rollout is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RolloutStatus {
    Running,
    /// Holding its step until resumed.
    Paused,
    /// Finished: the treatment is served to everyone.
    Promoted,
    /// Finished: the control is served again.
    Reverted,
}

impl From<Status> for RolloutStatus {
    fn from(status: Status) -> RolloutStatus {
        match status {
            Status::Running => RolloutStatus::Running,
            Status::Paused => RolloutStatus::Paused,
            Status::Promoted => RolloutStatus::Promoted,
            Status::Reverted => RolloutStatus::Reverted,
        }
    }
}

/// Units exposed so far, per arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Units {
    pub control: u64,
    pub treatment: u64,
}

impl From<capstan_judge::Units> for Units {
    fn from(units: capstan_judge::Units) -> Units {
        Units {
            control: units.control,
            treatment: units.treatment,
        }
    }
}

/// The judge's answer for one guardrail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Treatment is worse than control, beyond chance.
    Worse,
    /// Treatment is shown to be no worse than the tolerance allows.
    NotWorse,
    /// Enough data to estimate, not yet enough to decide.
    Inconclusive,
    TooLittleData,
}

impl From<capstan_judge::Verdict> for Verdict {
    fn from(verdict: capstan_judge::Verdict) -> Verdict {
        match verdict {
            capstan_judge::Verdict::Worse => Verdict::Worse,
            capstan_judge::Verdict::NotWorse => Verdict::NotWorse,
            capstan_judge::Verdict::Inconclusive => Verdict::Inconclusive,
            capstan_judge::Verdict::TooLittleData => Verdict::TooLittleData,
        }
    }
}

/// Treatment minus control, with a confidence interval valid at every look.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Estimate {
    #[serde(deserialize_with = "number_or_null")]
    pub control: f64,
    #[serde(deserialize_with = "number_or_null")]
    pub treatment: f64,
    #[serde(deserialize_with = "number_or_null")]
    pub difference: f64,
    /// Null when the interval is unbounded below (a quantile with too few values).
    pub low: Option<f64>,
    /// Null when the interval is unbounded above.
    pub high: Option<f64>,
    /// How much worse treatment may be and still count as not worse.
    #[serde(deserialize_with = "number_or_null")]
    pub margin: f64,
}

impl From<&capstan_judge::Estimate> for Estimate {
    fn from(estimate: &capstan_judge::Estimate) -> Estimate {
        Estimate {
            control: estimate.control,
            treatment: estimate.treatment,
            difference: estimate.difference,
            low: Some(estimate.low).filter(|low| low.is_finite()),
            high: Some(estimate.high).filter(|high| high.is_finite()),
            margin: estimate.margin,
        }
    }
}

/// One guardrail's reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GuardrailReading {
    /// The metric and statistic, `latency_ms p95`.
    pub guardrail: String,
    pub verdict: Verdict,
    /// Null while there is too little data.
    pub estimate: Option<Estimate>,
    pub control_samples: u64,
    pub treatment_samples: u64,
    /// One sentence.
    pub summary: String,
}

impl From<&capstan_judge::GuardrailReading> for GuardrailReading {
    fn from(reading: &capstan_judge::GuardrailReading) -> GuardrailReading {
        GuardrailReading {
            guardrail: reading.guardrail.clone(),
            verdict: Verdict::from(reading.verdict),
            estimate: reading.estimate.as_ref().map(Estimate::from),
            control_samples: reading.control_samples,
            treatment_samples: reading.treatment_samples,
            summary: reading.summary.clone(),
        }
    }
}

/// Which way is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    HigherIsWorse,
    LowerIsWorse,
}

/// What happens when a guardrail is shown worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GuardrailResponse {
    Revert,
    Pause,
    /// Tell people and keep going.
    Notify,
}

/// How much worse treatment may be and still count as not worse: the larger of a share
/// of control's value and an absolute amount.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tolerance {
    pub relative: f64,
    pub absolute: f64,
}

/// A guardrail of a rollout's plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlanGuardrail {
    pub metric: String,
    /// `mean` or a percentile such as `p95`.
    pub statistic: String,
    pub direction: Direction,
    pub tolerance: Tolerance,
    pub response: GuardrailResponse,
}

impl From<&capstan_judge::Guardrail> for PlanGuardrail {
    fn from(guardrail: &capstan_judge::Guardrail) -> PlanGuardrail {
        PlanGuardrail {
            metric: guardrail.metric.clone(),
            statistic: guardrail.statistic.name(),
            direction: match guardrail.direction {
                capstan_judge::Direction::HigherIsWorse => Direction::HigherIsWorse,
                capstan_judge::Direction::LowerIsWorse => Direction::LowerIsWorse,
            },
            tolerance: Tolerance {
                relative: guardrail.tolerance.relative,
                absolute: guardrail.tolerance.absolute,
            },
            response: match guardrail.response {
                capstan_judge::Response::Revert => GuardrailResponse::Revert,
                capstan_judge::Response::Pause => GuardrailResponse::Pause,
                capstan_judge::Response::Notify => GuardrailResponse::Notify,
            },
        }
    }
}

/// A step of a rollout's plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanStep {
    /// Share of units served the treatment, in percent.
    pub percent: f64,
    pub min_duration_ms: i64,
    /// Units newly exposed to the treatment during the step.
    pub min_units: u64,
}

/// A rollout's plan, fixed when it starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutPlan {
    pub control: String,
    pub treatment: String,
    pub steps: Vec<PlanStep>,
    pub guardrails: Vec<PlanGuardrail>,
    /// The chance of reverting a change that is truly no different.
    pub false_revert_rate: f64,
    /// A step undecided this long pauses the rollout.
    pub decision_deadline_ms: i64,
    /// Units per arm at which the judge's intervals are tuned to be tightest.
    pub planned_units: u64,
    /// No guardrail is judged on fewer units (or values) in either arm.
    pub min_samples: u64,
}

impl From<&capstan_judge::RolloutPlan> for RolloutPlan {
    fn from(plan: &capstan_judge::RolloutPlan) -> RolloutPlan {
        RolloutPlan {
            control: plan.control.clone(),
            treatment: plan.treatment.clone(),
            steps: plan
                .steps
                .iter()
                .map(|step| PlanStep {
                    percent: step.percent,
                    min_duration_ms: step.min_duration_ms,
                    min_units: step.min_units,
                })
                .collect(),
            guardrails: plan.guardrails.iter().map(PlanGuardrail::from).collect(),
            false_revert_rate: plan.false_revert_rate,
            decision_deadline_ms: plan.decision_deadline_ms,
            planned_units: plan.planned_units,
            min_samples: plan.min_samples,
        }
    }
}

/// One step of a rollout's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimelineStep {
    pub step: usize,
    pub percent: f64,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339; null while the step runs.
    pub ended_at: Option<String>,
    pub units_at_start: Units,
    pub units_at_end: Option<Units>,
    /// How the step ended, in one sentence.
    pub outcome: Option<String>,
}

impl From<&super::TimelineEntry> for TimelineStep {
    fn from(entry: &super::TimelineEntry) -> TimelineStep {
        TimelineStep {
            step: entry.step,
            percent: entry.percent,
            started_at: rfc3339(entry.started_at),
            ended_at: entry.ended_at.map(rfc3339),
            units_at_start: Units::from(entry.units_at_start),
            units_at_end: entry.units_at_end.map(Units::from),
            outcome: entry.outcome.clone(),
        }
    }
}

/// A guarded rollout of one flag in one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    pub id: i64,
    pub project: String,
    pub environment: String,
    pub flag: String,
    pub status: RolloutStatus,
    /// The variant served when the rollout started.
    pub control: String,
    /// The variant rolled out.
    pub treatment: String,
    /// Index into the plan's steps.
    pub step: usize,
    /// Share of units served the treatment now, in percent.
    pub percent: f64,
    /// Why the rollout is where it is, in one sentence.
    pub reason: String,
    /// Units per arm at the judge's latest reading; null before the first.
    pub units: Option<Units>,
    /// Each guardrail at the judge's latest reading; null before the first.
    pub guardrails: Option<Vec<GuardrailReading>>,
    pub timeline: Vec<TimelineStep>,
    pub plan: RolloutPlan,
    /// Increments with every transition; steering expects no other change in between.
    pub version: i64,
    pub created_by: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

impl From<&super::Rollout> for Rollout {
    fn from(rollout: &super::Rollout) -> Rollout {
        let record = &rollout.record;
        let latest = rollout.latest.as_ref();
        // The latest reading explains a running rollout; a stopped one keeps its last reason.
        let reason = match (rollout.status(), latest) {
            (Status::Running, Some(latest)) => latest.reason.clone(),
            _ => rollout.progress.reason.clone(),
        };
        Rollout {
            id: record.id,
            project: record.project.to_string(),
            environment: record.environment.to_string(),
            flag: record.flag.to_string(),
            status: RolloutStatus::from(rollout.status()),
            control: rollout.plan.plan.control.clone(),
            treatment: rollout.plan.plan.treatment.clone(),
            step: rollout.progress.progress.step,
            percent: rollout.percent(),
            reason,
            units: latest.map(|latest| Units::from(latest.units)),
            guardrails: latest.map(|latest| latest.guardrails.clone()),
            timeline: rollout.timeline.iter().map(TimelineStep::from).collect(),
            plan: RolloutPlan::from(&rollout.plan.plan),
            version: record.version,
            created_by: record.created_by.clone(),
            created_at: rfc3339(record.created_at),
            updated_at: rfc3339(record.updated_at),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RolloutList {
    pub rollouts: Vec<Rollout>,
}

/// A metric's count and sum in one bucket, as the array `[count, sum]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricSums(pub u64, pub f64);

impl utoipa::PartialSchema for MetricSums {
    fn schema() -> RefOr<Schema> {
        ArrayBuilder::new()
            .prefix_items([
                ObjectBuilder::new().schema_type(Type::Integer).build(),
                ObjectBuilder::new().schema_type(Type::Number).build(),
            ])
            .items(utoipa::openapi::schema::ArrayItems::False)
            .min_items(Some(2))
            .max_items(Some(2))
            .description(Some("A metric's count and sum: `[count, sum]`."))
            .into()
    }
}

impl utoipa::ToSchema for MetricSums {}

/// One minute of one arm of a rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutBucket {
    /// RFC 3339: the minute's start.
    pub start: String,
    /// The arm's variant.
    pub variant: String,
    pub exposures: i64,
    /// Units first exposed in this minute.
    pub new_units: i64,
    /// Count and sum of each metric's values, by metric name.
    pub metrics: IndexMap<String, MetricSums>,
}

impl RolloutBucket {
    /// The bucket of `record`, a bucket of `plan`'s rollout.
    pub fn new(
        record: &RolloutBucketRecord,
        plan: &capstan_judge::RolloutPlan,
    ) -> Result<RolloutBucket, ApiError> {
        let metrics = serde_json::from_value(record.metrics.clone()).map_err(|error| {
            ApiError::internal(anyhow::anyhow!(
                "rollout {} has a bucket whose metrics are not valid: {error}",
                record.rollout_id
            ))
        })?;
        let variant = if record.arm == "treatment" {
            &plan.treatment
        } else {
            &plan.control
        };
        Ok(RolloutBucket {
            start: rfc3339(record.bucket_start),
            variant: variant.clone(),
            exposures: record.exposures,
            new_units: record.new_units,
            metrics,
        })
    }
}

/// A rollout with its per-minute buckets.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RolloutDetail {
    #[serde(flatten)]
    pub rollout: Rollout,
    pub buckets: Vec<RolloutBucket>,
}

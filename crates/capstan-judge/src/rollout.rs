//! The rollout controller: from a rollout's plan, where it is, and what the events say,
//! to what happens next. Pure: the caller passes the time in and carries the outcome out
//! (to the flag, the store, the webhooks).

use serde::{Deserialize, Serialize};

use crate::judge::{
    ArmMetric, Confidence, Direction, Estimate, Statistic, Tolerance, Verdict, compare,
};

/// A rollout's plan, fixed when it starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutPlan {
    pub control: String,
    pub treatment: String,
    pub steps: Vec<Step>,
    pub guardrails: Vec<Guardrail>,
    /// The chance of reverting a change that is truly no different, over the whole
    /// rollout and all its guardrails.
    pub false_revert_rate: f64,
    /// A step that has not been decided this long after it started pauses, and says so.
    pub decision_deadline_ms: i64,
    /// Units per arm at which the judge's intervals are tuned to be tightest.
    pub planned_units: u64,
    /// No guardrail is judged on fewer units (or values) than this in either arm.
    pub min_samples: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// The share of units served the treatment, in percent; the last step is 100.
    pub percent: f64,
    pub min_duration_ms: i64,
    /// Units newly exposed to the treatment during the step.
    pub min_units: u64,
}

impl Step {
    /// The treatment's share in basis points (hundredths of a percent), as the flag's
    /// split carries it.
    pub fn basis_points(&self) -> u32 {
        (self.percent * 100.0).round() as u32
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Guardrail {
    pub metric: String,
    pub statistic: Statistic,
    pub direction: Direction,
    pub tolerance: Tolerance,
    pub response: Response,
}

impl Guardrail {
    /// `latency_ms p95`: how guardrails are named in reasons and evidence.
    pub fn name(&self) -> String {
        format!("{} {}", self.metric, self.statistic.name())
    }
}

/// What happens when a guardrail is shown worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    Revert,
    Pause,
    /// For changes that cannot be undone safely: tell people, keep going.
    Notify,
}

/// Why a plan cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PlanError {
    pub field: String,
    pub message: String,
}

fn plan_error(field: impl Into<String>, message: impl Into<String>) -> PlanError {
    PlanError {
        field: field.into(),
        message: message.into(),
    }
}

impl RolloutPlan {
    /// The defaults: steps of 1, 5, 25, 50 and 100 percent, each held at least 10 minutes
    /// and 100 new units, guarded on errors and latency, 1% false reverts.
    pub fn new(control: String, treatment: String) -> RolloutPlan {
        RolloutPlan {
            control,
            treatment,
            steps: default_steps(),
            guardrails: default_guardrails(),
            false_revert_rate: 0.01,
            decision_deadline_ms: 24 * 3_600_000,
            planned_units: 1000,
            min_samples: 30,
        }
    }

    /// Checks everything a caller can get wrong, naming the field.
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.control == self.treatment {
            return Err(plan_error(
                "to",
                "is already the variant served (the control)",
            ));
        }
        if self.steps.is_empty() {
            return Err(plan_error("steps", "needs at least one step"));
        }
        let mut previous = 0.0;
        for (index, step) in self.steps.iter().enumerate() {
            let field = |name: &str| format!("steps[{index}].{name}");
            if !(step.percent > previous && step.percent <= 100.0) || step.basis_points() == 0 {
                return Err(plan_error(
                    field("percent"),
                    "must grow from step to step, above 0 and at most 100",
                ));
            }
            if step.min_duration_ms < 0 {
                return Err(plan_error(field("minDurationMs"), "must not be negative"));
            }
            previous = step.percent;
        }
        if previous != 100.0 {
            return Err(plan_error("steps", "the last step must be 100 percent"));
        }
        if !(self.false_revert_rate > 0.0 && self.false_revert_rate < 0.5) {
            return Err(plan_error(
                "falseRevertRate",
                "must be above 0 and below 0.5",
            ));
        }
        if self.decision_deadline_ms <= 0 {
            return Err(plan_error("decisionDeadlineMs", "must be positive"));
        }
        for (index, guardrail) in self.guardrails.iter().enumerate() {
            let field = |name: &str| format!("guardrails[{index}].{name}");
            let tolerance = guardrail.tolerance;
            if !(tolerance.relative >= 0.0 && tolerance.relative.is_finite()) {
                return Err(plan_error(field("tolerance.relative"), "must be 0 or more"));
            }
            if !(tolerance.absolute >= 0.0 && tolerance.absolute.is_finite()) {
                return Err(plan_error(field("tolerance.absolute"), "must be 0 or more"));
            }
            if guardrail.metric.is_empty() {
                return Err(plan_error(field("metric"), "is required"));
            }
        }
        Ok(())
    }

    /// The metrics the guardrails read, each once.
    pub fn metrics(&self) -> Vec<&str> {
        let mut metrics: Vec<&str> = self.guardrails.iter().map(|g| g.metric.as_str()).collect();
        metrics.sort_unstable();
        metrics.dedup();
        metrics
    }

    fn confidence(&self) -> Confidence {
        Confidence {
            // Bonferroni over guardrails: any one of them may cause the false revert.
            alpha: self.false_revert_rate / self.guardrails.len().max(1) as f64,
            planned_units: self.planned_units as f64,
            min_samples: self.min_samples,
        }
    }
}

pub fn default_steps() -> Vec<Step> {
    [1.0, 5.0, 25.0, 50.0, 100.0]
        .into_iter()
        .map(|percent| Step {
            percent,
            min_duration_ms: 10 * 60_000,
            min_units: 100,
        })
        .collect()
}

/// Errors per unit (from `error` events, 1 for a failed request and 0 for a good one) and
/// latency (`latency_ms`), on its mean and its 95th percentile.
pub fn default_guardrails() -> Vec<Guardrail> {
    vec![
        Guardrail {
            metric: "error".to_owned(),
            statistic: Statistic::Mean,
            direction: Direction::HigherIsWorse,
            // Half again as many errors, or a quarter of a percentage point, is tolerated:
            // tighter margins need far more units to show before a step can advance.
            tolerance: Tolerance {
                relative: 0.5,
                absolute: 0.0025,
            },
            response: Response::Revert,
        },
        Guardrail {
            metric: "latency_ms".to_owned(),
            statistic: Statistic::Mean,
            direction: Direction::HigherIsWorse,
            tolerance: Tolerance {
                relative: 0.05,
                absolute: 1.0,
            },
            response: Response::Revert,
        },
        Guardrail {
            metric: "latency_ms".to_owned(),
            statistic: Statistic::Quantile(0.95),
            direction: Direction::HigherIsWorse,
            tolerance: Tolerance {
                relative: 0.1,
                absolute: 2.0,
            },
            response: Response::Revert,
        },
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Running,
    Paused,
    Promoted,
    Reverted,
}

impl Status {
    pub fn is_finished(self) -> bool {
        matches!(self, Status::Promoted | Status::Reverted)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Promoted => "promoted",
            Status::Reverted => "reverted",
        }
    }
}

/// Where a rollout is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub status: Status,
    /// Index into the plan's steps.
    pub step: usize,
    pub step_started_at: i64,
    /// Units exposed to the treatment when the step started.
    pub step_start_units: u64,
    /// Guardrails (by name) whose "notify" has been sent.
    pub notified: Vec<String>,
}

impl Progress {
    pub fn start(now: i64) -> Progress {
        Progress {
            status: Status::Running,
            step: 0,
            step_started_at: now,
            step_start_units: 0,
            notified: Vec::new(),
        }
    }
}

/// Units exposed so far, per arm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Units {
    pub control: u64,
    pub treatment: u64,
}

/// One guardrail's reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuardrailReading {
    pub guardrail: String,
    pub verdict: Verdict,
    pub estimate: Option<Estimate>,
    pub control_samples: u64,
    pub treatment_samples: u64,
    /// One sentence.
    pub summary: String,
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Action {
    Hold,
    /// Move to the step with this index (not the last).
    Advance {
        step: usize,
    },
    /// Serve the treatment to everyone: the rollout is done.
    Promote,
    Revert {
        guardrail: String,
    },
    Pause {
        guardrail: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub action: Action,
    /// Guardrails with the "notify" response newly shown worse: tell people, once.
    pub notify: Vec<String>,
    /// Why, in one sentence.
    pub reason: String,
    pub readings: Vec<GuardrailReading>,
}

/// The data for each of the plan's guardrails, in the plan's order: (control, treatment).
pub type GuardrailData<'a> = [(&'a ArmMetric, &'a ArmMetric)];

/// Decides what a running rollout does next. A rollout that is not running holds.
pub fn decide(
    plan: &RolloutPlan,
    progress: &Progress,
    units: Units,
    data: &GuardrailData<'_>,
    now: i64,
) -> Decision {
    let confidence = plan.confidence();
    let readings: Vec<GuardrailReading> = plan
        .guardrails
        .iter()
        .zip(data)
        .map(|(guardrail, (control, treatment))| {
            let judgement = compare(
                guardrail.statistic,
                guardrail.direction,
                guardrail.tolerance,
                control,
                treatment,
                &confidence,
            );
            GuardrailReading {
                guardrail: guardrail.name(),
                summary: summarise(
                    guardrail,
                    &judgement.verdict,
                    judgement.estimate.as_ref(),
                    judgement.treatment_samples,
                ),
                verdict: judgement.verdict,
                estimate: judgement.estimate,
                control_samples: judgement.control_samples,
                treatment_samples: judgement.treatment_samples,
            }
        })
        .collect();
    let decision = |action, notify, reason| Decision {
        action,
        notify,
        reason,
        readings: readings.clone(),
    };
    if progress.status != Status::Running {
        let reason = format!("The rollout is {}.", progress.status.as_str());
        return decision(Action::Hold, Vec::new(), reason);
    }
    let worse: Vec<(&Guardrail, &GuardrailReading)> = plan
        .guardrails
        .iter()
        .zip(&readings)
        .filter(|(_, reading)| reading.verdict == Verdict::Worse)
        .collect();
    if let Some((guardrail, reading)) = worse.iter().find(|(g, _)| g.response == Response::Revert) {
        let reason = format!("Reverted because {}", lowercase_first(&reading.summary));
        return decision(
            Action::Revert {
                guardrail: guardrail.name(),
            },
            Vec::new(),
            reason,
        );
    }
    if let Some((guardrail, reading)) = worse.iter().find(|(g, _)| g.response == Response::Pause) {
        let reason = format!(
            "Paused for a human because {}",
            lowercase_first(&reading.summary)
        );
        let action = Action::Pause {
            guardrail: Some(guardrail.name()),
        };
        return decision(action, Vec::new(), reason);
    }
    let notify: Vec<String> = worse
        .iter()
        .map(|(guardrail, _)| guardrail.name())
        .filter(|name| !progress.notified.contains(name))
        .collect();
    // Guardrails that only notify no longer hold the rollout once they have spoken.
    let gating: Vec<&GuardrailReading> = plan
        .guardrails
        .iter()
        .zip(&readings)
        .filter(|(guardrail, reading)| {
            !(guardrail.response == Response::Notify && reading.verdict == Verdict::Worse)
        })
        .map(|(_, reading)| reading)
        .collect();
    let step = &plan.steps[progress.step.min(plan.steps.len() - 1)];
    let elapsed = now - progress.step_started_at;
    let step_units = units.treatment.saturating_sub(progress.step_start_units);
    let waiting = if elapsed < step.min_duration_ms || step_units < step.min_units {
        Some(format!(
            "Holding at {}%: the step needs {} and {} new treatment units, and has had {} and {}",
            step.percent,
            duration(step.min_duration_ms),
            step.min_units,
            duration(elapsed),
            step_units
        ))
    } else {
        gating
            .iter()
            .find(|r| r.verdict != Verdict::NotWorse)
            .map(|undecided| {
                format!(
                    "Holding at {}% because {}",
                    step.percent,
                    lowercase_first(&undecided.summary)
                )
            })
    };
    if let Some(waiting) = waiting {
        if elapsed >= plan.decision_deadline_ms {
            let reason = format!(
                "Paused after {} without a decision: {}",
                duration(elapsed),
                lowercase_first(&waiting)
            );
            return decision(Action::Pause { guardrail: None }, notify, reason);
        }
        return decision(
            Action::Hold,
            notify,
            format!("{}.", waiting.trim_end_matches('.')),
        );
    }
    let next = progress.step + 1;
    if next + 1 >= plan.steps.len() {
        let reason = format!(
            "Promoted to 100% after every guardrail was shown within tolerance at {}%.",
            step.percent
        );
        return decision(Action::Promote, notify, reason);
    }
    let reason = format!(
        "Advanced from {}% to {}%: every guardrail is within tolerance and the step's minimums are met.",
        step.percent, plan.steps[next].percent
    );
    decision(Action::Advance { step: next }, notify, reason)
}

/// The state after an action, for the caller to store.
pub fn apply(progress: &Progress, decision: &Decision, units: Units, now: i64) -> Progress {
    let mut next = progress.clone();
    next.notified.extend(decision.notify.iter().cloned());
    match &decision.action {
        Action::Hold => {}
        Action::Advance { step } => {
            next.step = *step;
            next.step_started_at = now;
            next.step_start_units = units.treatment;
        }
        Action::Promote => next.status = Status::Promoted,
        Action::Revert { .. } => next.status = Status::Reverted,
        Action::Pause { .. } => next.status = Status::Paused,
    }
    next
}

fn summarise(
    guardrail: &Guardrail,
    verdict: &Verdict,
    estimate: Option<&Estimate>,
    treatment_samples: u64,
) -> String {
    let name = guardrail.name();
    let Some(estimate) = estimate else {
        return format!(
            "{name} has too little data to judge ({treatment_samples} treatment samples)."
        );
    };
    let numbers = format!(
        "treatment {} vs control {}, difference {} with interval [{}, {}], tolerance {}",
        number(estimate.treatment),
        number(estimate.control),
        signed(estimate.difference),
        signed(estimate.low),
        signed(estimate.high),
        match guardrail.direction {
            Direction::HigherIsWorse => signed(estimate.margin),
            Direction::LowerIsWorse => signed(-estimate.margin),
        }
    );
    match verdict {
        Verdict::Worse => format!("{name} is worse in the treatment ({numbers})."),
        Verdict::NotWorse => format!("{name} is within tolerance ({numbers})."),
        _ => format!("{name} is not yet shown within tolerance ({numbers})."),
    }
}

fn number(value: f64) -> String {
    if value.is_infinite() {
        return if value > 0.0 { "∞" } else { "-∞" }.to_owned();
    }
    let magnitude = value.abs();
    if magnitude >= 100.0 || magnitude == 0.0 {
        format!("{value:.1}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.4}")
    }
}

fn signed(value: f64) -> String {
    if value >= 0.0 {
        format!("+{}", number(value))
    } else {
        number(value)
    }
}

fn duration(ms: i64) -> String {
    let seconds = ms.max(0) / 1000;
    if seconds >= 3600 {
        format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60)
    } else if seconds >= 60 {
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{seconds}s")
    }
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> RolloutPlan {
        let mut plan = RolloutPlan::new("off".to_owned(), "on".to_owned());
        plan.guardrails.truncate(1); // error mean
        plan
    }

    fn errors(rate_per_thousand: usize, units: usize) -> ArmMetric {
        let mut arm = ArmMetric::default();
        for unit in 0..units {
            let value = if unit % 1000 < rate_per_thousand {
                1.0
            } else {
                0.0
            };
            arm.per_unit.add(value);
            arm.values.add(value);
        }
        arm
    }

    const MINUTE: i64 = 60_000;

    #[test]
    fn defaults_are_valid_and_bad_plans_name_the_field() {
        assert_eq!(plan().validate(), Ok(()));
        let mut bad = plan();
        bad.steps[2].percent = 3.0;
        assert_eq!(bad.validate().unwrap_err().field, "steps[2].percent");
        let mut bad = plan();
        bad.steps.pop();
        assert_eq!(bad.validate().unwrap_err().field, "steps");
        let mut bad = plan();
        bad.false_revert_rate = 0.0;
        assert_eq!(bad.validate().unwrap_err().field, "falseRevertRate");
        let mut bad = plan();
        bad.treatment = "off".to_owned();
        assert_eq!(bad.validate().unwrap_err().field, "to");
    }

    #[test]
    fn a_step_holds_until_its_time_and_units_then_advances() {
        let plan = plan();
        let progress = Progress::start(0);
        let (control, treatment) = (errors(10, 40_000), errors(10, 40_000));
        let data = [(&control, &treatment)];
        let units = Units {
            control: 40_000,
            treatment: 40_000,
        };
        let early = decide(&plan, &progress, units, &data, 5 * MINUTE);
        assert_eq!(early.action, Action::Hold);
        assert!(
            early
                .reason
                .starts_with("Holding at 1%: the step needs 10m00s"),
            "{}",
            early.reason
        );
        let due = decide(&plan, &progress, units, &data, 10 * MINUTE);
        assert_eq!(due.action, Action::Advance { step: 1 }, "{}", due.reason);
        let next = apply(&progress, &due, units, 10 * MINUTE);
        assert_eq!(
            (next.step, next.step_started_at, next.step_start_units),
            (1, 10 * MINUTE, 40_000)
        );
        // The new step needs new units of its own.
        let held = decide(&plan, &next, units, &data, 30 * MINUTE);
        assert_eq!(held.action, Action::Hold);
    }

    #[test]
    fn the_step_before_last_promotes() {
        let plan = plan();
        let mut progress = Progress::start(0);
        progress.step = 3;
        let (control, treatment) = (errors(10, 40_000), errors(10, 40_000));
        let decision = decide(
            &plan,
            &progress,
            Units {
                control: 40_000,
                treatment: 40_000,
            },
            &[(&control, &treatment)],
            11 * MINUTE,
        );
        assert_eq!(decision.action, Action::Promote);
        assert_eq!(
            apply(&progress, &decision, Units::default(), 0).status,
            Status::Promoted
        );
    }

    #[test]
    fn a_worse_guardrail_reverts_at_once_whatever_the_step_minimums() {
        let plan = plan();
        let progress = Progress::start(0);
        let (control, treatment) = (errors(10, 40_000), errors(100, 2_000));
        let decision = decide(
            &plan,
            &progress,
            Units {
                control: 40_000,
                treatment: 2_000,
            },
            &[(&control, &treatment)],
            MINUTE,
        );
        assert_eq!(
            decision.action,
            Action::Revert {
                guardrail: "error mean".to_owned()
            }
        );
        assert!(
            decision
                .reason
                .starts_with("Reverted because error mean is worse in the treatment"),
            "{}",
            decision.reason
        );
        assert_eq!(decision.readings[0].verdict, Verdict::Worse);
    }

    #[test]
    fn pause_and_notify_responses() {
        let (control, treatment) = (errors(10, 40_000), errors(100, 2_000));
        let data = [(&control, &treatment)];
        let units = Units {
            control: 40_000,
            treatment: 2_000,
        };
        let mut pausing = plan();
        pausing.guardrails[0].response = Response::Pause;
        let decision = decide(&pausing, &Progress::start(0), units, &data, MINUTE);
        assert_eq!(
            decision.action,
            Action::Pause {
                guardrail: Some("error mean".to_owned())
            }
        );

        let mut notifying = plan();
        notifying.guardrails[0].response = Response::Notify;
        let progress = Progress::start(0);
        let first = decide(&notifying, &progress, units, &data, 11 * MINUTE);
        assert_eq!(first.notify, vec!["error mean".to_owned()]);
        // It no longer holds the rollout, and it tells people once.
        assert_eq!(first.action, Action::Advance { step: 1 });
        let progress = apply(&progress, &first, units, 11 * MINUTE);
        let second = decide(&notifying, &progress, units, &data, 12 * MINUTE);
        assert!(second.notify.is_empty());
    }

    #[test]
    fn too_little_traffic_holds_and_pauses_at_the_deadline() {
        let plan = plan();
        let progress = Progress::start(0);
        let empty = ArmMetric::default();
        let data = [(&empty, &empty)];
        let units = Units {
            control: 500,
            treatment: 500,
        };
        let holding = decide(&plan, &progress, units, &data, 11 * MINUTE);
        assert_eq!(holding.action, Action::Hold);
        assert!(
            holding.reason.contains("too little data"),
            "{}",
            holding.reason
        );
        let late = decide(&plan, &progress, units, &data, plan.decision_deadline_ms);
        assert_eq!(late.action, Action::Pause { guardrail: None });
        assert!(
            late.reason
                .starts_with("Paused after 24h00m without a decision"),
            "{}",
            late.reason
        );
    }

    #[test]
    fn a_paused_rollout_holds() {
        let plan = plan();
        let mut progress = Progress::start(0);
        progress.status = Status::Paused;
        let (control, treatment) = (errors(10, 40_000), errors(100, 2_000));
        let decision = decide(
            &plan,
            &progress,
            Units::default(),
            &[(&control, &treatment)],
            MINUTE,
        );
        assert_eq!(decision.action, Action::Hold);
        assert_eq!(decision.reason, "The rollout is paused.");
    }
}

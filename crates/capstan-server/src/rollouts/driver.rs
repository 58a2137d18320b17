//! The rollout driver: one replica at a time (the holder of the `rollouts` lease) reads
//! new events, folds them into each active rollout's aggregate, asks the judge what to
//! do, and does it.
//!
//! The driver keeps no state that the store does not have: a replica that takes over
//! (after a restart, or when the lease holder dies) rebuilds each aggregate from the
//! rollout's raw events, which retention keeps for as long as a rollout is active.

use std::collections::HashMap;

use capstan_judge::{Action, Observation, RolloutAggregate, Status, decide};
use capstan_store::{EventKind, RolloutBucketRecord, RolloutFilter};
use serde_json::{Map, Value, json};

use super::wire::GuardrailReading;
use super::{
    Reading, Rollout, Transition, TransitionContext, flag_is_as_left, to_json, transition,
};
use crate::core::background::Lease;
use crate::flags::FlagsState;
use crate::rollouts::error::RolloutError;

/// The lease that makes one replica the driver.
const LEASE: &str = "rollouts";

/// Events read per query; a tick reads at most `MAX_PAGES` pages per rollout, so one
/// busy rollout cannot stall the others.
const PAGE: i64 = 5_000;
const MAX_PAGES: usize = 40;

/// A running rollout's reading is stored when it changes, and at least this often.
const READING_REFRESH_MS: i64 = 5_000;

/// Raw events are deleted this long (at least) after the oldest active rollout started,
/// so a replica that takes over can always rebuild it.
const RETENTION_MARGIN_MS: i64 = 3_600_000;

struct Runtime {
    rollout: Rollout,
    aggregate: RolloutAggregate,
    cursor: i64,
    last_reading: Option<(String, i64)>,
}

/// What one tick did, for tests and logs.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DriverReport {
    /// Whether this replica drives rollouts now.
    pub leading: bool,
    pub events_read: usize,
    /// (rollout id, transition) for each transition made.
    pub transitions: Vec<(i64, String)>,
}

pub struct RolloutDriver {
    lease: Lease,
    runtimes: HashMap<i64, Runtime>,
}

impl RolloutDriver {
    /// `lease_ttl_ms`: how long after its last tick a silent driver is replaced.
    pub fn new(lease_ttl_ms: i64) -> RolloutDriver {
        RolloutDriver {
            lease: Lease::new(LEASE, lease_ttl_ms),
            runtimes: HashMap::new(),
        }
    }

    pub async fn tick(&mut self, state: &FlagsState) -> Result<DriverReport, RolloutError> {
        let mut report = DriverReport::default();
        let now = state.core.clock.now_ms();
        report.leading = self.lease.hold(&state.core).await?;
        if !report.leading {
            // Another replica drives; forget what we had, it will be stale when we lead.
            self.runtimes.clear();
            state.core.metrics.record_rollout_tick(false, 0);
            return Ok(report);
        }
        let active = state
            .core
            .store
            .list_rollouts(RolloutFilter {
                active_only: true,
                ..RolloutFilter::default()
            })
            .await?;
        self.runtimes
            .retain(|id, _| active.iter().any(|record| record.id == *id));
        let oldest = active.iter().map(|record| record.created_at).min();
        state.core.metrics.record_rollout_tick(true, active.len());
        for record in active {
            let id = record.id;
            let rollout = Rollout::parse(record)?;
            let runtime = self.runtimes.entry(id).or_insert_with(|| Runtime {
                aggregate: RolloutAggregate::new(&rollout.plan.plan),
                rollout: rollout.clone(),
                cursor: 0,
                last_reading: None,
            });
            // A human (or another replica, before we led) moved it on: take the stored state.
            if runtime.rollout.record.version != rollout.record.version {
                runtime.rollout = rollout;
            }
            report.events_read += read_events(state, runtime).await?;
            save_buckets(state, runtime).await?;
            if let Err(error) = drive(state, runtime, now, &mut report).await {
                // A human acted between our read and our write: next tick sees it.
                if !error.is_version_conflict() {
                    tracing::warn!(rollout = id, error = %error, "rollout tick failed");
                }
            }
        }
        let retention_ms = state
            .core
            .settings
            .event_retention_hours
            .saturating_mul(3_600_000);
        let mut cutoff = now - retention_ms;
        if let Some(oldest) = oldest {
            cutoff = cutoff.min(oldest - RETENTION_MARGIN_MS);
        }
        state.core.store.delete_events_before(cutoff).await?;
        Ok(report)
    }
}

async fn read_events(state: &FlagsState, runtime: &mut Runtime) -> Result<usize, RolloutError> {
    let record = &runtime.rollout.record;
    let mut read = 0;
    for _ in 0..MAX_PAGES {
        let page = state
            .core
            .store
            .list_events(&record.project, &record.environment, runtime.cursor, PAGE)
            .await?;
        for (id, event) in &page {
            runtime.cursor = *id;
            // Only what happened since the rollout started, by the server's clock.
            if event.received_at < record.created_at {
                continue;
            }
            let observation = match &event.kind {
                EventKind::Exposure { flag, variant } if *flag == record.flag => {
                    Observation::Exposure { variant }
                }
                EventKind::Exposure { .. } => continue,
                EventKind::Metric { metric, value } => Observation::Metric {
                    name: metric,
                    value: *value,
                },
            };
            runtime
                .aggregate
                .observe(&event.targeting_key, event.at, observation);
            read += 1;
        }
        if (page.len() as i64) < PAGE {
            break;
        }
    }
    Ok(read)
}

async fn save_buckets(state: &FlagsState, runtime: &mut Runtime) -> Result<(), RolloutError> {
    let metrics = runtime.aggregate.metrics().to_vec();
    let buckets: Vec<RolloutBucketRecord> = runtime
        .aggregate
        .take_changed_buckets()
        .into_iter()
        .map(|(start, arm, bucket)| {
            let sums: Map<String, Value> = metrics
                .iter()
                .zip(&bucket.metrics)
                .filter(|(_, (count, _))| *count > 0)
                .map(|(metric, (count, sum))| (metric.clone(), json!([count, sum])))
                .collect();
            RolloutBucketRecord {
                rollout_id: runtime.rollout.record.id,
                arm: arm.as_str().to_owned(),
                bucket_start: start,
                exposures: bucket.exposures as i64,
                new_units: bucket.new_units as i64,
                metrics: Value::Object(sums),
            }
        })
        .collect();
    if !buckets.is_empty() {
        state.core.store.save_rollout_buckets(&buckets).await?;
    }
    Ok(())
}

async fn drive(
    state: &FlagsState,
    runtime: &mut Runtime,
    now: i64,
    report: &mut DriverReport,
) -> Result<(), RolloutError> {
    let actor = format!("rollout:{}", runtime.rollout.record.id);
    let units = runtime.aggregate.units();
    let rollout = runtime.rollout.clone();
    if rollout.status() == Status::Running {
        let snapshot = state
            .environments
            .get(&rollout.record.project, &rollout.record.environment)
            .await?;
        let current = snapshot
            .config(&rollout.record.flag)
            .and_then(|config| config.config.as_object().cloned());
        let as_left = current
            .as_ref()
            .is_some_and(|current| flag_is_as_left(current, &rollout));
        if !as_left {
            let reason = "Paused because the flag was changed outside the rollout (disabled, \
                          deleted or edited); resume to write the step's split back."
                .to_owned();
            let context = TransitionContext {
                actor: &actor,
                evidence: json!({ "flag": current }),
                reason,
                units,
                notified: Vec::new(),
            };
            runtime.rollout = transition(state, &rollout, Transition::Pause, context).await?;
            report
                .transitions
                .push((rollout.record.id, "pause".to_owned()));
            return Ok(());
        }
    }
    let plan = &rollout.plan.plan;
    let data = runtime.aggregate.guardrail_data(plan);
    let decision = decide(plan, &rollout.progress.progress, units, &data, now);
    let evidence = json!({
        "units": units,
        "guardrails": decision.readings,
    });
    let reading = to_json(&Reading {
        at: crate::core::clock::rfc3339(now),
        reason: decision.reason.clone(),
        units,
        guardrails: decision
            .readings
            .iter()
            .map(GuardrailReading::from)
            .collect(),
        unattributed_metric_events: runtime.aggregate.unattributed_metrics,
        conflicting_exposures: runtime.aggregate.conflicting_exposures,
    });
    let mut current = rollout;
    if !decision.notify.is_empty() {
        let context = TransitionContext {
            actor: &actor,
            reason: format!(
                "Guardrail {} is worse in the treatment; the rollout carries on, as its response is notify.",
                decision.notify.join(", ")
            ),
            evidence: evidence.clone(),
            units,
            notified: decision.notify.clone(),
        };
        let guardrails = decision.notify.clone();
        current = transition(state, &current, Transition::Notify { guardrails }, context).await?;
        report
            .transitions
            .push((current.record.id, "notify".to_owned()));
    }
    let change = match &decision.action {
        Action::Hold => None,
        Action::Advance { step } => Some(Transition::Advance { step: *step }),
        Action::Promote => Some(Transition::Promote),
        Action::Revert { .. } => Some(Transition::Revert),
        Action::Pause { .. } => Some(Transition::Pause),
    };
    let moved = change.is_some();
    if let Some(change) = change {
        let name = format!("{change:?}");
        state.core.metrics.record_rollout_transition(change.kind());
        let context = TransitionContext {
            actor: &actor,
            reason: decision.reason.clone(),
            evidence,
            units,
            notified: Vec::new(),
        };
        current = transition(state, &current, change, context).await?;
        report.transitions.push((current.record.id, name));
    }
    runtime.rollout = current;
    let due = match &runtime.last_reading {
        Some((reason, at)) => *reason != decision.reason || now - at >= READING_REFRESH_MS,
        None => true,
    };
    if moved || due {
        state
            .core
            .store
            .record_rollout_reading(runtime.rollout.record.id, &reading)
            .await?;
        runtime.last_reading = Some((decision.reason.clone(), now));
    }
    Ok(())
}

/// Runs the driver on an interval until shutdown.
impl crate::core::background::Controller for RolloutDriver {
    const WHAT: &'static str = "rollout driver tick";

    // Transitions go through the flag write path, whose errors are the API's.
    type State = FlagsState;

    type Error = RolloutError;

    async fn pass(&mut self, state: &FlagsState) -> Result<(), RolloutError> {
        self.tick(state).await.map(|_| ())
    }
}

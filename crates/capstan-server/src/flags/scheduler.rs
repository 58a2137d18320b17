//! Carries out scheduled flag changes when their time comes.
//!
//! Each change is applied in the same transaction that marks its schedule applied, so
//! with several replicas polling, a schedule takes effect exactly once.

use capstan_store::{ScheduleOutcome, ScheduleRecord, StoreError};
use serde_json::{Map, Value};

use crate::flags::FlagsState;
use crate::flags::error::FlagError;
use crate::flags::operations::schedules::ScheduledAction;
use crate::flags::operations::{ConfigChange, change_config, set_state};

/// What one pass of the scheduler did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    pub applied: usize,
    pub failed: usize,
}

/// Carries out every schedule that is due now. Tests call this directly with a manual
/// clock; the server calls it on an interval.
pub async fn tick(state: &FlagsState) -> Result<TickReport, StoreError> {
    let now = state.core.clock.now_ms();
    let mut report = TickReport::default();
    for schedule in state.core.store.due_schedules(now).await? {
        match carry_out(state, &schedule).await {
            Ok(()) => report.applied += 1,
            // Another replica settled it first: nothing to do.
            Err(FlagError::AlreadySettled { .. }) => {}
            Err(error) => {
                let message = error.to_string();
                tracing::warn!(schedule = schedule.id, error = %message, "scheduled change failed");
                if state
                    .core
                    .store
                    .settle_schedule(schedule.id, ScheduleOutcome::Failed(message), now)
                    .await?
                {
                    report.failed += 1;
                }
            }
        }
    }
    Ok(report)
}

/// A change to a flag's configuration, from the current one to the new one.
type ConfigEdit =
    dyn Fn(&Map<String, Value>) -> Result<Map<String, Value>, FlagError> + Send + Sync;

async fn carry_out(state: &FlagsState, schedule: &ScheduleRecord) -> Result<(), FlagError> {
    let action = ScheduledAction::parse(&schedule.schedule.action)?;
    let actor = format!("scheduler (for {})", schedule.schedule.created_by);
    let scope = (
        &schedule.schedule.project,
        &schedule.schedule.environment,
        &schedule.schedule.flag,
    );
    let (name, edit): (&'static str, Box<ConfigEdit>) = match action {
        ScheduledAction::Enable => ("schedule.enable", Box::new(set_state("ENABLED"))),
        ScheduledAction::Disable => ("schedule.disable", Box::new(set_state("DISABLED"))),
        ScheduledAction::SetTargeting(targeting) => (
            "schedule.set_targeting",
            Box::new(move |current: &Map<String, Value>| {
                let mut next = current.clone();
                if targeting.is_null() {
                    next.remove("targeting");
                } else {
                    next.insert("targeting".into(), targeting.clone());
                }
                Ok(next)
            }),
        ),
    };
    let change = ConfigChange {
        expected_version: None,
        action: name,
        settles_schedule: Some(schedule.id),
    };
    change_config(state, &actor, scope, change, &*edit).await?;
    Ok(())
}

/// The scheduler as a background controller.
pub struct Scheduler;

impl crate::core::background::Controller for Scheduler {
    const WHAT: &'static str = "scheduler pass";

    type State = FlagsState;

    type Error = StoreError;

    async fn pass(&mut self, state: &FlagsState) -> Result<(), StoreError> {
        tick(state).await.map(|_| ())
    }
}

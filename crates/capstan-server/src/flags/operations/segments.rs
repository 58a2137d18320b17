//! Segments: named, reusable targeting rules of one environment. A flag's targeting uses
//! one with `{"$ref": "segment-key"}`; in a flagd file they are the `$evaluators`.

use capstan_model::{EnvironmentKey, ProjectKey, SegmentKey};
use capstan_store::{SegmentRecord, SegmentWrite};
use serde_json::{Value, json};

use crate::core::error::Failure;
use crate::flags::FlagsState;
use crate::flags::environments::EnvironmentSnapshot;
use crate::flags::error::FlagError;
use crate::flags::wire::Segment;
use crate::flags::write::{AuditDraft, Plan, mutate};

/// A segment addressed in one environment.
pub type SegmentScope<'a> = (&'a ProjectKey, &'a EnvironmentKey, &'a SegmentKey);

fn find<'a>(snapshot: &'a EnvironmentSnapshot, segment: &SegmentKey) -> Option<&'a SegmentRecord> {
    snapshot
        .state
        .segments
        .iter()
        .find(|record| &record.key == segment)
}

/// A segment as the audit trail records it.
fn segment_json(segment: &SegmentRecord) -> Value {
    serde_json::to_value(Segment::from(segment)).unwrap_or_default()
}

/// Every segment of an environment.
pub async fn list(
    state: &FlagsState,
    project: &ProjectKey,
    environment: &EnvironmentKey,
) -> Result<Vec<SegmentRecord>, FlagError> {
    let snapshot = state.environments.get(project, environment).await?;
    Ok(snapshot.state.segments.clone())
}

/// One segment.
pub async fn get(
    state: &FlagsState,
    (project, environment, segment): SegmentScope<'_>,
) -> Result<SegmentRecord, FlagError> {
    let snapshot = state.environments.get(project, environment).await?;
    find(&snapshot, segment)
        .cloned()
        .ok_or_else(|| FlagError::not_found("segment", segment))
}

/// Creates or replaces a segment; whether it was created. `expected_version` (from
/// `If-Match`) is checked against an existing segment's version.
pub async fn put(
    state: &FlagsState,
    actor: &str,
    (project, environment, segment): SegmentScope<'_>,
    (description, rule): (String, Value),
    expected_version: Option<i64>,
) -> Result<(SegmentRecord, bool), FlagError> {
    let (created, _) = mutate::<_, FlagError>(
        state,
        actor,
        project,
        std::slice::from_ref(environment),
        |snapshots, _| {
            let current = find(&snapshots[0], segment);
            if let (Some(expected), Some(current)) = (expected_version, current)
                && expected != current.version
            {
                return Err(Failure::VersionConflict {
                    kind: "segment",
                    key: segment.to_string(),
                    current_version: current.version,
                }
                .into());
            }
            let mut plan = Plan::new(
                AuditDraft {
                    action: "segment.put",
                    environment: Some(environment.clone()),
                    resource_kind: "segment",
                    resource_key: segment.to_string(),
                    before: current.map(segment_json),
                    after: Some(json!({ "description": description, "rule": rule })),
                },
                current.is_none(),
            );
            plan.push(SegmentWrite {
                environment: environment.clone(),
                key: segment.clone(),
                expected_version: current.map(|s| s.version),
                segment: Some((description.clone(), rule.clone())),
            });
            Ok(plan)
        },
    )
    .await?;
    Ok((get(state, (project, environment, segment)).await?, created))
}

/// Deletes a segment.
pub async fn delete(
    state: &FlagsState,
    actor: &str,
    (project, environment, segment): SegmentScope<'_>,
) -> Result<(), FlagError> {
    mutate::<_, FlagError>(
        state,
        actor,
        project,
        std::slice::from_ref(environment),
        |snapshots, _| {
            let current = find(&snapshots[0], segment)
                .ok_or_else(|| FlagError::not_found("segment", segment))?;
            let mut plan = Plan::new(
                AuditDraft {
                    action: "segment.delete",
                    environment: Some(environment.clone()),
                    resource_kind: "segment",
                    resource_key: segment.to_string(),
                    before: Some(segment_json(current)),
                    after: None,
                },
                (),
            );
            plan.push(SegmentWrite {
                environment: environment.clone(),
                key: segment.clone(),
                expected_version: Some(current.version),
                segment: None,
            });
            Ok(plan)
        },
    )
    .await?;
    Ok(())
}

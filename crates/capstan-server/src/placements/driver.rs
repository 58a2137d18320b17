//! The learning loop: the holder of the `placements` lease learns from decisions whose
//! reward is in (or whose window has closed), saves the model, then marks them learned.
//! Other replicas reload a surface's model when a newer one is saved.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use capstan_bandit::Candidate;
use capstan_model::{ProjectKey, SurfaceKey};
use serde_json::Value;

use super::features::parse_features;
use super::parse_policy;
use crate::core::background::Lease;
use crate::placements::PlacementsState;
use crate::placements::error::PlacementError;

const LEASE: &str = "placements";

/// Decisions learned per surface per tick, at most.
const BATCH: i64 = 2_000;

#[derive(Default)]
struct Pending {
    /// Learned into the model in memory, not yet saved (nor marked learned).
    event_ids: Vec<String>,
    seen: HashSet<String>,
    last_save: i64,
    /// The learner they went into: if the surface's learner was replaced (its settings
    /// changed), they are forgotten and learned again into the new one.
    learner: Option<std::sync::Weak<super::SurfaceLearner>>,
}

/// What one tick did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LearnReport {
    pub leading: bool,
    pub learned: usize,
    pub saved: usize,
    pub reloaded: usize,
}

pub struct PlacementDriver {
    lease: Lease,
    save_interval_ms: i64,
    pending: HashMap<(ProjectKey, SurfaceKey), Pending>,
}

impl PlacementDriver {
    /// Saves each learning surface's model at most every `save_interval_ms`.
    pub fn new(lease_ttl_ms: i64, save_interval_ms: i64) -> PlacementDriver {
        PlacementDriver {
            lease: Lease::new(LEASE, lease_ttl_ms),
            save_interval_ms,
            pending: HashMap::new(),
        }
    }

    pub async fn tick(&mut self, state: &PlacementsState) -> Result<LearnReport, PlacementError> {
        let now = state.core.clock.now_ms();
        let mut report = LearnReport {
            leading: self.lease.hold(&state.core).await?,
            ..LearnReport::default()
        };
        if !report.leading {
            // Learned but unsaved work is lost with the lease; the new holder relearns it.
            self.pending.clear();
            for ((project, surface), learner) in state.learners.loaded() {
                let stored = state.core.store.model_version(&project, &surface).await?;
                if stored
                    .is_some_and(|version| version > learner.model_version.load(Ordering::Relaxed))
                {
                    state.learners.forget(&project, &surface);
                    report.reloaded += 1;
                }
            }
            return Ok(report);
        }
        for project in state.core.store.list_projects().await? {
            for surface in state.core.store.list_surfaces(&project.key).await? {
                let key = (project.key.clone(), surface.key.clone());
                let learner = state
                    .learners
                    .get(state, &project.key, &surface.key)
                    .await?;
                let settings = &learner.settings;
                let window_closed_before = now - settings.reward_window_seconds as i64 * 1000;
                let ready = state
                    .core
                    .store
                    .decisions_to_learn(
                        &project.key,
                        &surface.key,
                        settings.reward_combine.store(),
                        window_closed_before,
                        BATCH,
                    )
                    .await?;
                let pending = self.pending.entry(key).or_default();
                let same_learner = pending
                    .learner
                    .as_ref()
                    .and_then(std::sync::Weak::upgrade)
                    .is_some_and(|held| std::sync::Arc::ptr_eq(&held, &learner));
                if !same_learner {
                    pending.event_ids.clear();
                    pending.seen.clear();
                    pending.learner = Some(std::sync::Arc::downgrade(&learner));
                }
                for decision in ready {
                    if pending.seen.contains(&decision.event_id) {
                        continue;
                    }
                    let (context, candidates) = match parse_decision(
                        &decision.context,
                        &decision.candidates,
                    ) {
                        Ok(parsed) => parsed,
                        Err(error) => {
                            // Checked when ranked; a row that no longer parses is skipped, not retried forever.
                            tracing::warn!(event = decision.event_id, error = %error, "decision cannot be learned from");
                            pending.seen.insert(decision.event_id.clone());
                            pending.event_ids.push(decision.event_id);
                            continue;
                        }
                    };
                    let shown = decision.shown as usize;
                    let probability = decision
                        .probabilities
                        .get(shown)
                        .and_then(Value::as_f64)
                        .unwrap_or(1.0);
                    let reward = decision.reward.unwrap_or(settings.default_reward);
                    if let Some(candidate) = candidates.get(shown) {
                        let mut model = learner.learner.write().unwrap_or_else(|p| p.into_inner());
                        model.record_impression(&candidate.id, now);
                        if let Err(error) = model.learn(
                            &context,
                            &candidates,
                            shown,
                            probability,
                            reward,
                            parse_policy(&decision.policy),
                        ) {
                            tracing::warn!(event = decision.event_id, error = %error, "decision cannot be learned from");
                        }
                    }
                    pending.seen.insert(decision.event_id.clone());
                    pending.event_ids.push(decision.event_id);
                    report.learned += 1;
                }
                if !pending.event_ids.is_empty() && now - pending.last_save >= self.save_interval_ms
                {
                    let bytes = learner
                        .learner
                        .read()
                        .unwrap_or_else(|p| p.into_inner())
                        .save();
                    let version = state
                        .core
                        .store
                        .save_model(&project.key, &surface.key, &bytes, now)
                        .await?;
                    learner.model_version.store(version, Ordering::Relaxed);
                    state
                        .core
                        .store
                        .mark_learned(&pending.event_ids, now)
                        .await?;
                    pending.event_ids.clear();
                    pending.seen.clear();
                    pending.last_save = now;
                    report.saved += 1;
                }
            }
        }
        Ok(report)
    }
}

fn parse_decision(
    context: &Value,
    candidates: &Value,
) -> Result<(capstan_bandit::Features, Vec<Candidate>), PlacementError> {
    let context = parse_features("context", context)?;
    let candidates = candidates
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(index, candidate)| {
            Ok(Candidate {
                id: candidate
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                features: parse_features(
                    &format!("candidates[{index}].features"),
                    candidate.get("features").unwrap_or(&Value::Null),
                )?,
            })
        })
        .collect::<Result<Vec<_>, PlacementError>>()?;
    Ok((context, candidates))
}

/// Runs the learning loop on an interval until shutdown.
impl crate::core::background::Controller for PlacementDriver {
    const WHAT: &'static str = "placement learning tick";

    type State = PlacementsState;

    type Error = PlacementError;

    async fn pass(&mut self, state: &PlacementsState) -> Result<(), PlacementError> {
        self.tick(state).await.map(|_| ())
    }
}

//! Personalised content placement: surfaces, their items, ranking with the contextual
//! bandit (`capstan-bandit`), rewards, and the learning loop.
//!
//! Every decision and every reward goes through the store. One replica at a time (the
//! holder of the `placements` lease) learns: it reads decisions whose reward is known (or
//! whose reward window has closed, counting the default reward), updates its learner,
//! saves the model and then marks those decisions learned, so a replica that takes over
//! starts from the saved model and relearns nothing twice. The other replicas rank with
//! the latest saved model.

use axum::extract::FromRef;

use crate::core::state::Core;

pub mod driver;
pub mod error;
pub mod features;
mod personalizer;
mod routes;
pub mod wire;
pub mod writer;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use capstan_bandit::{Candidate, Learner, LearnerSettings, Policy};
use capstan_model::{ProjectKey, SurfaceKey};
use capstan_store::{AuditEntry, DecisionRecord, RewardCombine, RewardOutcome, SurfaceRecord};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::core::error::Failure;
use crate::placements::error::PlacementError;

/// What placement holds at run time beside `core`: the learners this replica holds.
#[derive(Clone)]
pub struct PlacementsState {
    pub core: Arc<Core>,
    pub learners: Arc<Placements>,
}

impl PlacementsState {
    pub fn new(core: Arc<Core>) -> PlacementsState {
        PlacementsState {
            core,
            learners: Arc::default(),
        }
    }
}

/// The placement routes, Capstan's own and Azure Personalizer's shapes.
pub fn router<S>() -> utoipa_axum::router::OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    PlacementsState: FromRef<S>,
    Arc<Core>: FromRef<S>,
{
    routes::router().merge(personalizer::router())
}

/// A surface's settings, as stored: the learner's, and how rewards are taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SurfaceSettings {
    pub learner: LearnerSettings,
    /// `first` (the earliest reward counts, learned at once) or `sum` (rewards add up
    /// until the window closes).
    pub reward_combine: Combine,
    /// How long after a decision rewards are taken; a decision with none by then counts
    /// `default_reward`.
    pub reward_window_seconds: u64,
    pub default_reward: f64,
    pub reward_min: f64,
    pub reward_max: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    First,
    Sum,
}

impl Combine {
    pub fn store(self) -> RewardCombine {
        match self {
            Combine::First => RewardCombine::First,
            Combine::Sum => RewardCombine::Sum,
        }
    }
}

impl Default for SurfaceSettings {
    fn default() -> SurfaceSettings {
        SurfaceSettings {
            learner: LearnerSettings {
                // 2^18 weights (2 MiB): the model is saved every few seconds while it
                // learns, so a smaller table by default; surfaces with many features can
                // ask for more.
                hash_bits: 18,
                ..LearnerSettings::default()
            },
            reward_combine: Combine::First,
            reward_window_seconds: 600,
            default_reward: 0.0,
            reward_min: -1.0,
            reward_max: 1.0,
        }
    }
}

impl SurfaceSettings {
    pub fn validate(&self) -> Result<(), Failure> {
        self.learner.validate().map_err(|error| {
            Failure::field(format!("settings.learner.{}", error.field), error.message)
        })?;
        if !(self.reward_min.is_finite()
            && self.reward_max.is_finite()
            && self.reward_min < self.reward_max)
        {
            return Err(Failure::field(
                "settings.rewardMax",
                "must be a number above rewardMin",
            ));
        }
        if !(self.reward_min..=self.reward_max).contains(&self.default_reward) {
            return Err(Failure::field(
                "settings.defaultReward",
                "must be between rewardMin and rewardMax",
            ));
        }
        if self.reward_window_seconds == 0 || self.reward_window_seconds > 7 * 86_400 {
            return Err(Failure::field(
                "settings.rewardWindowSeconds",
                "must be between 1 and 604800",
            ));
        }
        Ok(())
    }

    pub fn parse(value: &Value) -> Result<SurfaceSettings, Failure> {
        serde_json::from_value(value.clone()).map_err(|error| {
            Failure::Internal(anyhow::anyhow!(
                "stored surface settings are not valid: {error}"
            ))
        })
    }
}

/// A surface's learner in memory, with the model version it holds.
pub struct SurfaceLearner {
    pub settings: SurfaceSettings,
    pub learner: RwLock<Learner>,
    pub model_version: std::sync::atomic::AtomicI64,
}

/// The learners this replica holds, loaded from the store on first use.
#[derive(Default)]
pub struct Placements {
    learners: RwLock<HashMap<(ProjectKey, SurfaceKey), Arc<SurfaceLearner>>>,
    /// Logs rank decisions, committing those that come together in one transaction.
    pub decisions: writer::DecisionWriter,
}

impl Placements {
    pub async fn get(
        &self,
        state: &PlacementsState,
        project: &ProjectKey,
        surface: &SurfaceKey,
    ) -> Result<Arc<SurfaceLearner>, PlacementError> {
        let key = (project.clone(), surface.clone());
        if let Some(found) = self
            .learners
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(found.clone());
        }
        let record = state.core.store.surface(project, surface).await?;
        let loaded = Arc::new(load_learner(state, &record).await?);
        let mut learners = self.learners.write().unwrap_or_else(|p| p.into_inner());
        Ok(learners.entry(key).or_insert(loaded).clone())
    }

    /// Forgets a surface's learner, so the next use loads it (after a settings change, or
    /// when another replica saved a newer model).
    pub fn forget(&self, project: &ProjectKey, surface: &SurfaceKey) {
        self.learners
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(project.clone(), surface.clone()));
    }

    pub fn loaded(&self) -> Vec<((ProjectKey, SurfaceKey), Arc<SurfaceLearner>)> {
        self.learners
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(key, learner)| (key.clone(), learner.clone()))
            .collect()
    }
}

/// Creates a surface, or changes its description and settings: the settings given are
/// merged into the current ones (or the defaults) and checked; `hashBits` cannot change
/// once the surface has a model. The surface's learner is reloaded with the new settings.
pub async fn put_surface(
    state: &PlacementsState,
    actor: &str,
    (project, surface): (&ProjectKey, &SurfaceKey),
    description: Option<String>,
    overlay: Option<Value>,
) -> Result<(SurfaceRecord, SurfaceSettings), PlacementError> {
    let now = state.core.clock.now_ms();
    let current = match state.core.store.surface(project, surface).await {
        Ok(current) => Some(current),
        Err(capstan_store::StoreError::NotFound { .. }) => None,
        Err(error) => return Err(error.into()),
    };
    let mut settings = match &current {
        Some(current) => current.settings.clone(),
        None => serde_json::to_value(SurfaceSettings::default()).map_err(Failure::internal)?,
    };
    if let Some(overlay) = &overlay {
        if !overlay.is_object() {
            return Err(Failure::field("settings", "expected an object").into());
        }
        merge(&mut settings, overlay);
    }
    let parsed: SurfaceSettings = serde_path_to_error::deserialize(settings).map_err(|error| {
        let path = error.path().to_string();
        let field = if path == "." {
            "settings".to_owned()
        } else {
            format!("settings.{path}")
        };
        Failure::field(field, error.into_inner())
    })?;
    parsed.validate()?;
    if let Some(current) = &current {
        let before = SurfaceSettings::parse(&current.settings)?;
        if before.learner.hash_bits != parsed.learner.hash_bits
            && state
                .core
                .store
                .model_version(project, surface)
                .await?
                .is_some()
        {
            return Err(PlacementError::ModelExists {
                surface: surface.to_string(),
            });
        }
    }
    let record = SurfaceRecord {
        project: project.clone(),
        key: surface.clone(),
        description: description
            .or_else(|| current.as_ref().map(|c| c.description.clone()))
            .unwrap_or_default(),
        settings: serde_json::to_value(&parsed).map_err(Failure::internal)?,
        created_at: current.as_ref().map_or(now, |c| c.created_at),
        updated_at: now,
    };
    let after =
        serde_json::to_value(wire::Surface::new(&record, &parsed)).map_err(Failure::internal)?;
    let audit = audit(actor, project, "surface.put", surface.as_str(), after, now);
    state
        .core
        .store
        .upsert_surface(record.clone(), audit)
        .await?;
    state.learners.forget(project, surface);
    Ok((record, parsed))
}

/// The audit entry of a change to a surface or its items.
pub(crate) fn audit(
    actor: &str,
    project: &ProjectKey,
    action: &str,
    surface: &str,
    after: Value,
    at: i64,
) -> AuditEntry {
    AuditEntry {
        at,
        actor: actor.to_owned(),
        action: action.to_owned(),
        project: Some(project.clone()),
        environment: None,
        resource_kind: "surface".to_owned(),
        resource_key: surface.to_owned(),
        before: None,
        after: Some(after),
    }
}

/// Merges a JSON overlay into a base: objects key by key, anything else replaced.
fn merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                merge(base.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (base, overlay) => *base = overlay.clone(),
    }
}

pub async fn load_learner(
    state: &PlacementsState,
    record: &SurfaceRecord,
) -> Result<SurfaceLearner, PlacementError> {
    let settings = SurfaceSettings::parse(&record.settings)?;
    let invalid = |error: String| {
        Failure::Internal(anyhow::anyhow!(
            "the model of surface {} cannot be used: {error}",
            record.key
        ))
    };
    let (learner, version) = match state
        .core
        .store
        .load_model(&record.project, &record.key)
        .await?
    {
        Some((bytes, version)) => {
            let mut learner = Learner::load(&bytes).map_err(|error| invalid(error.to_string()))?;
            // The surface's settings may have changed since the model was saved.
            learner
                .update_settings(settings.learner.clone())
                .map_err(|error| invalid(error.to_string()))?;
            (learner, version)
        }
        None => (
            Learner::new(settings.learner.clone()).map_err(|error| invalid(error.to_string()))?,
            0,
        ),
    };
    Ok(SurfaceLearner {
        settings,
        learner: RwLock::new(learner),
        model_version: std::sync::atomic::AtomicI64::new(version),
    })
}

pub fn policy_name(policy: Policy) -> &'static str {
    match policy {
        Policy::Personalized => "personalized",
        Policy::Holdout => "holdout",
        Policy::Testing => "testing",
    }
}

pub fn parse_policy(text: &str) -> Policy {
    match text {
        "holdout" => Policy::Holdout,
        "testing" => Policy::Testing,
        _ => Policy::Personalized,
    }
}

/// Most candidates one decision may rank.
pub const MAX_CANDIDATES: usize = 500;

/// What a rank call asks for, after parsing.
pub struct RankInput {
    pub event_id: String,
    pub context: Value,
    pub candidates: Vec<(String, Value)>,
    pub defer_activation: bool,
}

/// What a rank call answers.
pub struct RankOutput {
    pub event_id: String,
    /// Candidate ids, best first, with the probability each had of being shown.
    pub ranking: Vec<(String, f64)>,
    pub policy: Policy,
}

/// Ranks, logs the decision, and answers. The event id seeds every random choice, so a
/// decision can be replayed exactly.
pub async fn rank(
    state: &PlacementsState,
    project: &ProjectKey,
    surface: &SurfaceKey,
    input: RankInput,
) -> Result<RankOutput, PlacementError> {
    if input.candidates.is_empty() {
        return Err(Failure::field(
            "candidates",
            "no candidates to rank (none given, all excluded, or no live items)",
        )
        .into());
    }
    if input.candidates.len() > MAX_CANDIDATES {
        return Err(Failure::field(
            "candidates",
            format!("at most {MAX_CANDIDATES} candidates per decision"),
        )
        .into());
    }
    let context = features::parse_features("context", &input.context)?;
    let mut candidates = Vec::with_capacity(input.candidates.len());
    for (index, (id, features)) in input.candidates.iter().enumerate() {
        candidates.push(Candidate {
            id: id.clone(),
            features: features::parse_features(&format!("candidates[{index}].features"), features)?,
        });
    }
    let surface_learner = state.learners.get(state, project, surface).await?;
    let now = state.core.clock.now_ms();
    let seed = features::seed_of(&input.event_id);
    let ranking = surface_learner
        .learner
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .rank(&context, &candidates, seed)
        .map_err(|error| Failure::field("candidates", error.to_string()))?;
    let shown = ranking.order[0];
    let decision = DecisionRecord {
        event_id: input.event_id.clone(),
        project: project.clone(),
        surface: surface.clone(),
        context: input.context.clone(),
        candidates: Value::Array(
            input
                .candidates
                .iter()
                .map(|(id, features)| json!({ "id": id, "features": features }))
                .collect(),
        ),
        shown: shown as i64,
        probabilities: json!(ranking.probabilities),
        policy: policy_name(ranking.policy).to_owned(),
        created_at: now,
        activated_at: (!input.defer_activation).then_some(now),
        reward: None,
        reward_count: 0,
        learned_at: None,
    };
    state
        .learners
        .decisions
        .write(&state.core.store, decision)
        .await?;
    Ok(RankOutput {
        event_id: input.event_id,
        ranking: ranking
            .order
            .iter()
            .map(|index| {
                (
                    input.candidates[*index].0.clone(),
                    ranking.probabilities[*index],
                )
            })
            .collect(),
        policy: ranking.policy,
    })
}

/// Takes a reward for a decision of `project`.
pub async fn reward(
    state: &PlacementsState,
    project: &ProjectKey,
    event_id: &str,
    value: f64,
) -> Result<(), PlacementError> {
    let decision = decision_of(state, project, event_id).await?;
    let surface = state
        .learners
        .get(state, project, &decision.surface)
        .await?;
    let settings = &surface.settings;
    if !value.is_finite() || value < settings.reward_min || value > settings.reward_max {
        return Err(Failure::field(
            "value",
            format!(
                "must be a number between {} and {}",
                settings.reward_min, settings.reward_max
            ),
        )
        .into());
    }
    let window_ms = settings.reward_window_seconds as i64 * 1000;
    let activated = decision.activated_at.unwrap_or(decision.created_at);
    if decision.learned_at.is_some() || state.core.clock.now_ms() > activated + window_ms {
        return Err(late(event_id));
    }
    match state
        .core
        .store
        .record_reward(event_id, value, settings.reward_combine.store())
        .await?
    {
        RewardOutcome::Recorded => Ok(()),
        RewardOutcome::Duplicate => Err(PlacementError::DuplicateReward {
            event_id: event_id.to_owned(),
        }),
        RewardOutcome::Late => Err(late(event_id)),
    }
}

fn late(event_id: &str) -> PlacementError {
    PlacementError::RewardTooLate {
        event_id: event_id.to_owned(),
    }
}

pub async fn activate(
    state: &PlacementsState,
    project: &ProjectKey,
    event_id: &str,
) -> Result<(), PlacementError> {
    decision_of(state, project, event_id).await?;
    state
        .core
        .store
        .activate_decision(event_id, state.core.clock.now_ms())
        .await?;
    Ok(())
}

/// A decision of `project`; other projects' events do not exist for its tokens.
async fn decision_of(
    state: &PlacementsState,
    project: &ProjectKey,
    event_id: &str,
) -> Result<DecisionRecord, PlacementError> {
    let not_found = || Failure::NotFound {
        kind: "event",
        key: event_id.to_owned(),
    };
    let decision = state
        .core
        .store
        .decision(event_id)
        .await
        .map_err(|error| match error {
            capstan_store::StoreError::NotFound { .. } => not_found(),
            other => other.into(),
        })?;
    if &decision.project != project {
        return Err(not_found().into());
    }
    Ok(decision)
}

/// A fresh event id: 128 random bits in hex.
pub fn new_event_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

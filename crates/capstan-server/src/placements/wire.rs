//! The JSON shapes of what the placement routes answer with: surfaces and their settings,
//! items, rankings, the decision log, and Azure Personalizer's rank response.

use capstan_bandit::Policy;
use capstan_store::{DecisionRecord, ItemRecord, SurfaceRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Combine, RankOutput};
use crate::core::clock::rfc3339;
use crate::core::error::ApiError;
use crate::core::wire::number_or_null;

/// How a surface's learner learns, explores, tests new content and holds out traffic.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LearnerSettings {
    /// The weight table has `2^hashBits` entries (10 to 26).
    pub hash_bits: u8,
    /// The base learning rate.
    pub learning_rate: f64,
    /// The most probability exploration may give to items other than the best, 0 to 1.
    pub exploration: f64,
    /// SquareCB's gamma is `squarecbGammaScale * t^squarecbGammaExponent` after `t`
    /// decisions learned: the larger, the closer to greedy.
    pub squarecb_gamma_scale: f64,
    pub squarecb_gamma_exponent: f64,
    /// Share of decisions that may go to items under test, 0 to 0.5.
    pub testing_budget: f64,
    /// Impressions after which an item stops being under test; 0 disables content testing.
    pub graduation_impressions: u64,
    /// Share of decisions served by the global, non-personalised ranking, to measure the
    /// lift of personalisation, 0 to 0.5.
    pub holdout: f64,
}

impl From<&capstan_bandit::LearnerSettings> for LearnerSettings {
    fn from(settings: &capstan_bandit::LearnerSettings) -> LearnerSettings {
        LearnerSettings {
            hash_bits: settings.hash_bits,
            learning_rate: settings.learning_rate,
            exploration: settings.exploration,
            squarecb_gamma_scale: settings.squarecb_gamma_scale,
            squarecb_gamma_exponent: settings.squarecb_gamma_exponent,
            testing_budget: settings.testing_budget,
            graduation_impressions: settings.graduation_impressions,
            holdout: settings.holdout,
        }
    }
}

/// How several rewards for one decision combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RewardCombine {
    /// The earliest reward counts, and is learned at once.
    First,
    /// Rewards add up until the window closes.
    Sum,
}

/// A surface's settings: its learner's, and how rewards are taken.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SurfaceSettings {
    pub learner: LearnerSettings,
    pub reward_combine: RewardCombine,
    /// How long after a decision rewards are taken; a decision with none by then counts
    /// `defaultReward`.
    pub reward_window_seconds: u64,
    pub default_reward: f64,
    pub reward_min: f64,
    pub reward_max: f64,
}

impl From<&super::SurfaceSettings> for SurfaceSettings {
    fn from(settings: &super::SurfaceSettings) -> SurfaceSettings {
        SurfaceSettings {
            learner: LearnerSettings::from(&settings.learner),
            reward_combine: match settings.reward_combine {
                Combine::First => RewardCombine::First,
                Combine::Sum => RewardCombine::Sum,
            },
            reward_window_seconds: settings.reward_window_seconds,
            default_reward: settings.default_reward,
            reward_min: settings.reward_min,
            reward_max: settings.reward_max,
        }
    }
}

/// A placement surface: a place content appears.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Surface {
    pub key: String,
    pub description: String,
    pub settings: SurfaceSettings,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

impl Surface {
    /// The surface of `record`, whose stored settings are `settings`.
    pub fn new(record: &SurfaceRecord, settings: &super::SurfaceSettings) -> Surface {
        Surface {
            key: record.key.to_string(),
            description: record.description.clone(),
            settings: SurfaceSettings::from(settings),
            created_at: rfc3339(record.created_at),
            updated_at: rfc3339(record.updated_at),
        }
    }
}

impl TryFrom<&SurfaceRecord> for Surface {
    type Error = ApiError;

    fn try_from(record: &SurfaceRecord) -> Result<Surface, ApiError> {
        Ok(Surface::new(
            record,
            &super::SurfaceSettings::parse(&record.settings)?,
        ))
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SurfaceList {
    pub surfaces: Vec<Surface>,
}

/// The decisions and mean reward of one arm.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArmRewards {
    pub decisions: u64,
    /// 0 without decisions.
    #[serde(deserialize_with = "number_or_null")]
    pub mean_reward: f64,
}

impl From<&capstan_bandit::ArmSummary> for ArmRewards {
    fn from(summary: &capstan_bandit::ArmSummary) -> ArmRewards {
        ArmRewards {
            decisions: summary.samples,
            mean_reward: summary.mean,
        }
    }
}

/// Personalised minus holdout mean reward, with a 95% interval (Welch).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LiftDifference {
    #[serde(deserialize_with = "number_or_null")]
    pub estimate: f64,
    #[serde(deserialize_with = "number_or_null")]
    pub low: f64,
    #[serde(deserialize_with = "number_or_null")]
    pub high: f64,
}

/// The lift of personalisation: the personalised arm's rewards against the holdout's;
/// decisions spent testing new content are shown apart.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Lift {
    pub personalized: ArmRewards,
    pub holdout: ArmRewards,
    pub testing: ArmRewards,
    /// Null until both arms have two decisions.
    pub difference: Option<LiftDifference>,
}

impl From<&capstan_bandit::Lift> for Lift {
    fn from(lift: &capstan_bandit::Lift) -> Lift {
        Lift {
            personalized: ArmRewards::from(&lift.personalized),
            holdout: ArmRewards::from(&lift.holdout),
            testing: ArmRewards::from(&lift.testing),
            difference: lift.difference.map(|difference| LiftDifference {
                estimate: difference.estimate,
                low: difference.low,
                high: difference.high,
            }),
        }
    }
}

/// What the learner knows of one item.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ItemLearning {
    pub id: String,
    pub impressions: u64,
    /// The sum of the rewards of the decisions learned with this item shown.
    pub reward_sum: f64,
    /// Still given a share of decisions to learn its worth.
    pub under_test: bool,
}

impl From<&capstan_bandit::ItemStats> for ItemLearning {
    fn from(item: &capstan_bandit::ItemStats) -> ItemLearning {
        ItemLearning {
            id: item.id.clone(),
            impressions: item.impressions,
            reward_sum: item.reward_sum,
            under_test: item.under_test,
        }
    }
}

/// A surface with what its model has learned.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SurfaceDetail {
    #[serde(flatten)]
    pub surface: Surface,
    /// The version of the model this replica ranks with; 0 before the first is saved.
    pub model_version: i64,
    pub lift: Lift,
    pub items: Vec<ItemLearning>,
}

/// Whether an item may be ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ItemStatus {
    Live,
    Retired,
}

impl From<capstan_store::ItemStatus> for ItemStatus {
    fn from(status: capstan_store::ItemStatus) -> ItemStatus {
        match status {
            capstan_store::ItemStatus::Live => ItemStatus::Live,
            capstan_store::ItemStatus::Retired => ItemStatus::Retired,
        }
    }
}

/// An item of a surface.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    pub id: String,
    /// The features as given: an object (keys with object values are namespaces) or an
    /// array of such objects.
    pub features: Value,
    pub status: ItemStatus,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

impl From<&ItemRecord> for Item {
    fn from(item: &ItemRecord) -> Item {
        Item {
            id: item.id.clone(),
            features: item.features.clone(),
            status: item.status.into(),
            created_at: rfc3339(item.created_at),
            updated_at: rfc3339(item.updated_at),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ItemList {
    pub items: Vec<Item>,
}

/// How many items a request stored.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredItems {
    pub stored: usize,
}

/// Which arm of a decision served it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DecisionPolicy {
    /// The learner's personalised ranking.
    Personalized,
    /// The global ranking, held out to measure the lift of personalisation.
    Holdout,
    /// An item under test.
    Testing,
}

impl From<Policy> for DecisionPolicy {
    fn from(policy: Policy) -> DecisionPolicy {
        match policy {
            Policy::Personalized => DecisionPolicy::Personalized,
            Policy::Holdout => DecisionPolicy::Holdout,
            Policy::Testing => DecisionPolicy::Testing,
        }
    }
}

/// An item in a ranking, with the probability it had of being shown. Azure Personalizer
/// calls it a `RankedAction`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RankedItem {
    pub id: String,
    pub probability: f64,
}

fn ranked_items(output: &RankOutput, slots: usize) -> Vec<RankedItem> {
    output
        .ranking
        .iter()
        .take(slots)
        .map(|(id, probability)| RankedItem {
            id: id.clone(),
            probability: *probability,
        })
        .collect()
}

/// A decision: what to show, the ranking, and the event id to reward.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ranking {
    pub event_id: String,
    /// The id of the item to show, the one whose reward teaches the learner.
    pub show: String,
    /// Best first, as many as the slots asked for.
    pub items: Vec<RankedItem>,
    pub policy: DecisionPolicy,
}

impl Ranking {
    /// The first `slots` items of a rank call's answer.
    pub fn new(output: &RankOutput, slots: usize) -> Ranking {
        Ranking {
            event_id: output.event_id.clone(),
            show: output.ranking[0].0.clone(),
            items: ranked_items(output, slots),
            policy: DecisionPolicy::from(output.policy),
        }
    }
}

/// A candidate of a decision, as it was ranked.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DecisionCandidate {
    pub id: String,
    /// The item's features at the time, as given (see `Item.features`).
    pub features: Value,
}

/// One logged decision, learned from.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub event_id: String,
    /// RFC 3339.
    pub created_at: String,
    /// The context features as given to rank.
    pub context: Value,
    pub candidates: Vec<DecisionCandidate>,
    /// The index of the candidate shown.
    pub shown: usize,
    /// The probability the shown candidate had of being shown.
    pub probability: Option<f64>,
    /// The reward learned (the surface's default reward if none came in the window).
    pub reward: f64,
    pub policy: DecisionPolicy,
}

impl Decision {
    /// The decision of `record`, whose surface counts `default_reward` for no reward.
    pub fn new(record: &DecisionRecord, default_reward: f64) -> Result<Decision, ApiError> {
        let candidates = serde_json::from_value(record.candidates.clone()).map_err(|error| {
            ApiError::internal(anyhow::anyhow!(
                "decision {} has candidates that are not valid: {error}",
                record.event_id
            ))
        })?;
        let shown = record.shown as usize;
        Ok(Decision {
            event_id: record.event_id.clone(),
            created_at: rfc3339(record.created_at),
            context: record.context.clone(),
            candidates,
            shown,
            probability: record.probabilities.get(shown).and_then(Value::as_f64),
            reward: record.reward.unwrap_or(default_reward),
            policy: DecisionPolicy::from(super::parse_policy(&record.policy)),
        })
    }
}

/// A page of the decision log.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DecisionPage {
    pub decisions: Vec<Decision>,
    /// The cursor to pass as `after` for the next page; null on the last.
    pub next: Option<String>,
}

/// Azure Personalizer's answer to rank.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RankResponse {
    /// Every action, best first.
    pub ranking: Vec<RankedItem>,
    pub event_id: String,
    /// The id of the action to show, the one to reward.
    pub reward_action_id: String,
}

impl From<&RankOutput> for RankResponse {
    fn from(output: &RankOutput) -> RankResponse {
        RankResponse {
            ranking: ranked_items(output, output.ranking.len()),
            event_id: output.event_id.clone(),
            reward_action_id: output.ranking[0].0.clone(),
        }
    }
}

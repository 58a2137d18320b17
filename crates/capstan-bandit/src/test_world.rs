//! A small simulated world for the tests: users of two tastes and items whose click rate
//! depends on the taste, so only a personalised policy can do well.

use crate::features::{Candidate, Feature, Features};
use crate::learner::{Learner, Ranking};
use crate::random::SplitMix64;

pub(crate) const TASTES: [&str; 2] = ["sports", "news"];

/// (id, topic, click rate for sports fans, click rate for news readers).
pub(crate) const ITEMS: [(&str, &str, f64, f64); 4] = [
    ("football", "sports", 0.7, 0.1),
    ("tennis", "sports", 0.4, 0.2),
    ("politics", "news", 0.1, 0.7),
    ("economy", "news", 0.2, 0.3),
];

pub(crate) fn context(taste: &str, device: &str) -> Features {
    Features(vec![
        Feature::text("user", "taste", taste),
        Feature::text("user", "device", device),
        Feature::number("user", "visits", 3.0),
        Feature::boolean("user", "subscriber", device == "phone"),
    ])
}

pub(crate) fn candidate(id: &str, topic: &str) -> Candidate {
    Candidate {
        id: id.to_owned(),
        features: Features(vec![
            Feature::text("item", "topic", topic),
            Feature::text("item", "format", "article"),
        ]),
    }
}

pub(crate) fn candidates() -> Vec<Candidate> {
    ITEMS
        .iter()
        .map(|(id, topic, _, _)| candidate(id, topic))
        .collect()
}

pub(crate) fn click_rate(taste: &str, id: &str) -> f64 {
    ITEMS
        .iter()
        .find(|(item, _, _, _)| *item == id)
        .map_or(
            0.0,
            |(_, _, sports, news)| if taste == "sports" { *sports } else { *news },
        )
}

/// The best item's id for a taste.
pub(crate) fn best_item(taste: &str) -> &'static str {
    if taste == "sports" {
        "football"
    } else {
        "politics"
    }
}

/// The world's random draws: tastes, devices and clicks.
pub(crate) struct World {
    pub(crate) random: SplitMix64,
}

impl World {
    pub(crate) fn new(seed: u64) -> World {
        World {
            random: SplitMix64::new(seed),
        }
    }

    pub(crate) fn next_context(&mut self) -> (&'static str, Features) {
        let taste = TASTES[(self.random.next_u64() % 2) as usize];
        let device = ["phone", "desktop", "tablet"][(self.random.next_u64() % 3) as usize];
        (taste, context(taste, device))
    }

    pub(crate) fn click(&mut self, rate: f64) -> f64 {
        if self.random.next_unit() < rate {
            1.0
        } else {
            0.0
        }
    }

    /// One decision served, shown and learned from; returns the ranking and the reward.
    pub(crate) fn step(
        &mut self,
        learner: &mut Learner,
        candidates: &[Candidate],
        now_ms: i64,
    ) -> (Ranking, f64) {
        let (taste, context) = self.next_context();
        let seed = self.random.next_u64();
        let ranking = learner
            .rank(&context, candidates, seed)
            .expect("candidates");
        let shown = ranking.order[0];
        learner.record_impression(&candidates[shown].id, now_ms);
        let reward = self.click(click_rate(taste, &candidates[shown].id));
        learner
            .learn(
                &context,
                candidates,
                shown,
                ranking.probabilities[shown],
                reward,
                ranking.policy,
            )
            .expect("valid decision");
        (ranking, reward)
    }
}

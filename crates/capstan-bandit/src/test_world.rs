//! A small simulated world for the tests: users of two tastes and items whose click rate
//! depends on the taste, so only a personalised policy can do well.
//!
//! Its raw variant ([`World::raw`], [`raw_candidates`]) adds numbers as applications send
//! them, unscaled and of very different scales: the user's age (18 to 80), each item's
//! length (5 to 45) and price (0.99 to 199). They do not change the click rates: a learner
//! robust to feature scale learns the raw world as well as the plain one.

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

/// (id, length, price) of the raw world's items, as in [`ITEMS`].
pub(crate) const RAW_NUMBERS: [(&str, f64, f64); 4] = [
    ("football", 45.0, 199.0),
    ("tennis", 5.0, 0.99),
    ("politics", 20.0, 49.5),
    ("economy", 12.0, 9.99),
];

/// The context of the raw world: [`context`] and the user's age, unscaled.
pub(crate) fn raw_context(taste: &str, device: &str, age: f64) -> Features {
    let mut features = context(taste, device);
    features.0.push(Feature::number("user", "age", age));
    features
}

/// The candidates of the raw world: [`candidates`] with their length and price, unscaled.
pub(crate) fn raw_candidates() -> Vec<Candidate> {
    RAW_NUMBERS
        .iter()
        .zip(candidates())
        .map(|((id, length, price), mut candidate)| {
            assert_eq!(*id, candidate.id);
            candidate
                .features
                .0
                .push(Feature::number("item", "length", *length));
            candidate
                .features
                .0
                .push(Feature::number("item", "price", *price));
            candidate
        })
        .collect()
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
    /// Contexts carry the user's raw age (see [`raw_context`]).
    raw: bool,
}

impl World {
    pub(crate) fn new(seed: u64) -> World {
        World {
            random: SplitMix64::new(seed),
            raw: false,
        }
    }

    /// The raw world: contexts carry an age of 18 to 80.
    pub(crate) fn raw(seed: u64) -> World {
        World {
            random: SplitMix64::new(seed),
            raw: true,
        }
    }

    pub(crate) fn next_context(&mut self) -> (&'static str, Features) {
        let taste = TASTES[(self.random.next_u64() % 2) as usize];
        let device = ["phone", "desktop", "tablet"][(self.random.next_u64() % 3) as usize];
        if self.raw {
            let age = 18 + self.random.next_u64() % 63;
            (taste, raw_context(taste, device, age as f64))
        } else {
            (taste, context(taste, device))
        }
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

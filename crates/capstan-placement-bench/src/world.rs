//! The synthetic world: users of a few latent tastes, items whose click rates depend on
//! the taste, and new items arriving during the run.
//!
//! The taste is not a feature. In the **hidden** world a user shows it only through noisy
//! features: a `segment` that is the taste 70% of the time, a `region` drawn from the
//! taste's two regions 60% of the time, and a weakly related number `activity`; no policy
//! that sees only the features can match the oracle, which knows the taste. In the
//! **observable** world the `segment` is always the taste (the rest is the same), so the
//! oracle is what a policy could reach. Four more features are pure noise
//! (`device`, `browser`, a `referrer` of 100 values, the `hour` as a number) and one is a
//! number on a logarithmic scale (`visits_log`, 0 to 4.5), also noise.
//!
//! An item has a genre and a quality; its click rate for a taste is the taste's base rate
//! for the genre times the quality. Twenty items exist from the start (qualities 0.6 to
//! 1.2). Four arrive during the run: at 20% of the decisions a **good** item (quality 1.6,
//! in the favourite genre of taste 0 or 1: better than every existing item for that
//! taste), at 40% a dud (quality 0.3), at 60% another good item (favourite genre of taste
//! 2 or 3), at 80% an average one (0.9).
//!
//! Everything is drawn from one seed: the same seed gives the same items, users, and the
//! uniform draw `u` of each decision, so every policy is scored on the same events with
//! common random numbers (a click is `u < rate` of whatever item the policy showed).

use capstan_bandit::{Candidate, Feature, Features};
use serde_json::{Value, json};

use crate::random::Random;

pub(crate) const TASTES: usize = 4;
const TASTE_WEIGHTS: [f64; TASTES] = [0.4, 0.3, 0.2, 0.1];
const GENRES: usize = 6;
/// The click rate of each genre for each taste, at quality 1.
const BASE_RATES: [[f64; GENRES]; TASTES] = [
    [0.10, 0.05, 0.02, 0.02, 0.03, 0.02],
    [0.02, 0.03, 0.10, 0.05, 0.02, 0.02],
    [0.04, 0.02, 0.02, 0.02, 0.11, 0.03],
    [0.02, 0.02, 0.05, 0.03, 0.02, 0.12],
];
const INITIAL_ITEMS: usize = 20;
/// How a user's features show the taste.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Visibility {
    /// The `segment` is the taste 70% of the time.
    Hidden,
    /// The `segment` is always the taste.
    Observable,
}

impl Visibility {
    fn segment_reliability(self) -> f64 {
        match self {
            Visibility::Hidden => 0.7,
            Visibility::Observable => 1.0,
        }
    }
}
const REGIONS: usize = 2 * TASTES + 2;
const REGION_RELIABILITY: f64 = 0.6;
const ACTIVITY_SPREAD: f64 = 0.1;

/// Why an item is in the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ItemKind {
    Initial,
    Good,
    Dud,
    Average,
}

#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub(crate) candidate: Candidate,
    /// The JSON form of the features, as the stream file carries them.
    pub(crate) features_json: Value,
    pub(crate) genre: usize,
    pub(crate) quality: f64,
    /// The first decision it is a candidate in.
    pub(crate) arrival: usize,
    pub(crate) kind: ItemKind,
}

/// One decision: who the user is, which items are live, and the draw that settles a click.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub(crate) taste: usize,
    pub(crate) context: Features,
    pub(crate) context_json: Value,
    /// Indices into the catalogue of the items live at this decision.
    pub(crate) live: Vec<usize>,
    /// The click draw: showing item `i` is a click if `u < rate(taste, i)`.
    pub(crate) u: f64,
    /// Seeds the policy's own randomness for this decision.
    pub(crate) seed: u64,
    /// The posterior over tastes given the features (the generative model is known to the
    /// feature oracle only).
    pub(crate) posterior: [f64; TASTES],
}

#[derive(Debug, Clone)]
pub(crate) struct World {
    pub(crate) items: Vec<Item>,
    pub(crate) events: Vec<Event>,
}

fn item(
    id: usize,
    genre: usize,
    quality: f64,
    arrival: usize,
    kind: ItemKind,
    random: &mut Random,
) -> Item {
    let format = format!("f{}", random.below(3));
    let length = (random.unit() * 100.0).round() / 100.0;
    let genre_name = format!("g{genre}");
    Item {
        candidate: Candidate {
            id: format!("item-{id}"),
            features: Features(vec![
                Feature::text("item", "genre", genre_name.clone()),
                Feature::text("item", "format", format.clone()),
                Feature::number("item", "length", length),
            ]),
        },
        features_json: json!({ "item": { "genre": genre_name, "format": format, "length": length } }),
        genre,
        quality,
        arrival,
        kind,
    }
}

fn favourite_genre(taste: usize) -> usize {
    let rates = &BASE_RATES[taste];
    (0..GENRES)
        .max_by(|a, b| rates[*a].total_cmp(&rates[*b]))
        .unwrap_or(0)
}

impl World {
    pub(crate) fn new(seed: u64, decisions: usize, visibility: Visibility) -> World {
        let mut random = Random::new(seed ^ 0x00c0_ffee_5eed_0000);
        let mut items: Vec<Item> = (0..INITIAL_ITEMS)
            .map(|index| {
                let quality = random.uniform(0.6, 1.2);
                item(
                    index,
                    index % GENRES,
                    quality,
                    0,
                    ItemKind::Initial,
                    &mut random,
                )
            })
            .collect();
        let arrivals = [
            (0.2, ItemKind::Good, favourite_genre(random.below(2)), 1.6),
            (0.4, ItemKind::Dud, random.below(GENRES), 0.3),
            (
                0.6,
                ItemKind::Good,
                favourite_genre(2 + random.below(2)),
                1.6,
            ),
            (0.8, ItemKind::Average, random.below(GENRES), 0.9),
        ];
        for (share, kind, genre, quality) in arrivals {
            let id = items.len();
            let arrival = (share * decisions as f64) as usize;
            items.push(item(id, genre, quality, arrival, kind, &mut random));
        }

        let events = (0..decisions)
            .map(|decision| {
                let live = items
                    .iter()
                    .enumerate()
                    .filter(|(_, item)| item.arrival <= decision)
                    .map(|(index, _)| index)
                    .collect();
                user(&mut random, live, visibility.segment_reliability())
            })
            .collect();
        World { items, events }
    }

    /// The click rate of an item for a taste.
    pub(crate) fn rate(&self, taste: usize, item: usize) -> f64 {
        let item = &self.items[item];
        (BASE_RATES[taste][item.genre] * item.quality).min(1.0)
    }

    /// The live item (an index into `event.live`) with the highest click rate for the
    /// event's taste; the first on ties.
    pub(crate) fn oracle_choice(&self, event: &Event) -> usize {
        best(event.live.len(), |position| {
            self.rate(event.taste, event.live[position])
        })
    }

    /// The live item with the highest click rate expected under the posterior over tastes
    /// given the features: the best any policy that sees only the features can do.
    pub(crate) fn feature_oracle_choice(&self, event: &Event) -> usize {
        best(event.live.len(), |position| {
            (0..TASTES)
                .map(|taste| event.posterior[taste] * self.rate(taste, event.live[position]))
                .sum()
        })
    }
}

fn best(count: usize, value: impl Fn(usize) -> f64) -> usize {
    let mut best = 0;
    let mut best_value = f64::NEG_INFINITY;
    for position in 0..count {
        let value = value(position);
        if value > best_value {
            best = position;
            best_value = value;
        }
    }
    best
}

fn user(random: &mut Random, live: Vec<usize>, segment_reliability: f64) -> Event {
    let taste = random.weighted(&TASTE_WEIGHTS);
    let segment = if random.unit() < segment_reliability {
        taste
    } else {
        random.below(TASTES)
    };
    let region = if random.unit() < REGION_RELIABILITY {
        2 * taste + random.below(2)
    } else {
        random.below(REGIONS)
    };
    let activity =
        ((activity_mean(taste) + ACTIVITY_SPREAD * random.normal()) * 1000.0).round() / 1000.0;
    let device = random.below(3);
    let browser = random.below(6);
    let referrer = random.below(100);
    let hour = random.below(24) as f64 / 24.0;
    let visits_log = (random.uniform(0.0, 4.5) * 100.0).round() / 100.0;
    let u = random.unit();
    let seed = random.next_u64();

    let mut posterior = [0.0; TASTES];
    for (candidate, weight) in posterior.iter_mut().enumerate() {
        let segment_likelihood = if segment == candidate {
            segment_reliability + (1.0 - segment_reliability) / TASTES as f64
        } else {
            (1.0 - segment_reliability) / TASTES as f64
        };
        let region_likelihood = if region / 2 == candidate && region < 2 * TASTES {
            REGION_RELIABILITY / 2.0 + (1.0 - REGION_RELIABILITY) / REGIONS as f64
        } else {
            (1.0 - REGION_RELIABILITY) / REGIONS as f64
        };
        let z = (activity - activity_mean(candidate)) / ACTIVITY_SPREAD;
        *weight = TASTE_WEIGHTS[candidate]
            * segment_likelihood
            * region_likelihood
            * (-0.5 * z * z).exp();
    }
    let total: f64 = posterior.iter().sum();
    posterior.iter_mut().for_each(|weight| *weight /= total);

    let (segment, region) = (format!("s{segment}"), format!("r{region}"));
    let (device, browser, referrer) = (
        format!("d{device}"),
        format!("b{browser}"),
        format!("ref{referrer}"),
    );
    let context = Features(vec![
        Feature::text("user", "segment", segment.clone()),
        Feature::text("user", "region", region.clone()),
        Feature::number("user", "activity", activity),
        Feature::number("user", "visits_log", visits_log),
        Feature::text("page", "device", device.clone()),
        Feature::text("page", "browser", browser.clone()),
        Feature::text("page", "referrer", referrer.clone()),
        Feature::number("page", "hour", hour),
    ]);
    let context_json = json!({
        "user": { "segment": segment, "region": region, "activity": activity, "visits_log": visits_log },
        "page": { "device": device, "browser": browser, "referrer": referrer, "hour": hour },
    });
    Event {
        taste,
        context,
        context_json,
        live,
        u,
        seed,
        posterior,
    }
}

fn activity_mean(taste: usize) -> f64 {
    0.3 + 0.15 * taste as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_world_and_good_items_beat_every_existing_one() {
        let (first, again, other) = (
            World::new(3, 2_000, Visibility::Hidden),
            World::new(3, 2_000, Visibility::Hidden),
            World::new(4, 2_000, Visibility::Hidden),
        );
        let summary = |world: &World| {
            world
                .events
                .iter()
                .map(|event| {
                    (
                        event.taste,
                        event.u.to_bits(),
                        event.seed,
                        event.context_json.to_string(),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(summary(&first), summary(&again));
        assert_ne!(summary(&first), summary(&other));
        assert_eq!(first.items.len(), INITIAL_ITEMS + 4);

        for (index, item) in first.items.iter().enumerate() {
            if item.kind != ItemKind::Good {
                continue;
            }
            let taste = (0..TASTES)
                .find(|taste| favourite_genre(*taste) == item.genre)
                .expect("a taste's favourite");
            let best_existing = (0..INITIAL_ITEMS)
                .map(|other| first.rate(taste, other))
                .fold(0.0, f64::max);
            assert!(first.rate(taste, index) > best_existing);
            assert!(first.events[item.arrival].live.contains(&index));
            assert!(!first.events[item.arrival - 1].live.contains(&index));
        }
        // The features carry the taste: the posterior's best guess is right most of the time.
        let right = first
            .events
            .iter()
            .filter(|event| best(TASTES, |taste| event.posterior[taste]) == event.taste)
            .count();
        assert!(right > 1_500, "{right}");
    }

    #[test]
    fn in_the_observable_world_the_features_tell_the_taste() {
        let (observable, hidden) = (
            World::new(3, 2_000, Visibility::Observable),
            World::new(3, 2_000, Visibility::Hidden),
        );
        for event in &observable.events {
            assert_eq!(event.posterior[event.taste], 1.0);
            assert_eq!(
                observable.feature_oracle_choice(event),
                observable.oracle_choice(event)
            );
        }
        let differ = hidden
            .events
            .iter()
            .filter(|event| hidden.feature_oracle_choice(event) != hidden.oracle_choice(event))
            .count();
        assert!(differ > 100, "{differ}");
    }
}

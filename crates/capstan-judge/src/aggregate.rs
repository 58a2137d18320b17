//! Folding a rollout's events into what the judge reads: each unit's arm (from its first
//! exposure), each unit's mean of each guardrail metric, each arm's raw values for
//! quantiles, and per-minute buckets for the timeline.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::judge::ArmMetric;
use crate::rollout::{RolloutPlan, Units};

/// Events are summed into buckets of one minute for the timeline.
pub const BUCKET_MS: i64 = 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arm {
    Control,
    Treatment,
}

impl Arm {
    pub fn as_str(self) -> &'static str {
        match self {
            Arm::Control => "control",
            Arm::Treatment => "treatment",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One event as the aggregate sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Observation<'a> {
    Exposure { variant: &'a str },
    Metric { name: &'a str, value: f64 },
}

#[derive(Debug, Clone, Default, PartialEq)]
struct UnitState {
    arm: Option<Arm>,
    /// Count and sum per tracked metric, in the aggregate's metric order.
    metrics: Vec<(u64, f64)>,
}

/// One minute of one arm.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bucket {
    pub exposures: u64,
    pub new_units: u64,
    /// Count and sum per tracked metric, in [`RolloutAggregate::metrics`] order.
    pub metrics: Vec<(u64, f64)>,
}

#[derive(Debug, Clone)]
pub struct RolloutAggregate {
    control: String,
    treatment: String,
    metrics: Vec<String>,
    units: HashMap<String, UnitState>,
    arm_units: [u64; 2],
    /// Per arm, per tracked metric.
    arms: [Vec<ArmMetric>; 2],
    buckets: BTreeMap<(i64, Arm), Bucket>,
    changed: BTreeSet<(i64, Arm)>,
    /// Units exposed to both variants (the first one counts), and metric events from
    /// units never exposed, which no arm can claim.
    pub conflicting_exposures: u64,
    pub unattributed_metrics: u64,
}

impl RolloutAggregate {
    pub fn new(plan: &RolloutPlan) -> RolloutAggregate {
        let metrics: Vec<String> = plan.metrics().into_iter().map(str::to_owned).collect();
        let empty = vec![ArmMetric::default(); metrics.len()];
        RolloutAggregate {
            control: plan.control.clone(),
            treatment: plan.treatment.clone(),
            units: HashMap::new(),
            arm_units: [0; 2],
            arms: [empty.clone(), empty],
            metrics,
            buckets: BTreeMap::new(),
            changed: BTreeSet::new(),
            conflicting_exposures: 0,
            unattributed_metrics: 0,
        }
    }

    pub fn metrics(&self) -> &[String] {
        &self.metrics
    }

    pub fn observe(&mut self, unit: &str, at: i64, observation: Observation<'_>) {
        let bucket_start = at.div_euclid(BUCKET_MS) * BUCKET_MS;
        match observation {
            Observation::Exposure { variant } => {
                let arm = if variant == self.control {
                    Arm::Control
                } else if variant == self.treatment {
                    Arm::Treatment
                } else {
                    // Served by another rule of the flag: not part of the rollout.
                    return;
                };
                let metric_count = self.metrics.len();
                let state = self
                    .units
                    .entry(unit.to_owned())
                    .or_insert_with(|| UnitState {
                        arm: None,
                        metrics: vec![(0, 0.0); metric_count],
                    });
                let new_unit = match state.arm {
                    None => {
                        state.arm = Some(arm);
                        self.arm_units[arm.index()] += 1;
                        true
                    }
                    Some(first) if first != arm => {
                        self.conflicting_exposures += 1;
                        return;
                    }
                    Some(_) => false,
                };
                let bucket = self.bucket(bucket_start, arm);
                bucket.exposures += 1;
                bucket.new_units += new_unit as u64;
            }
            Observation::Metric { name, value } => {
                let Some(index) = self.metrics.iter().position(|metric| metric == name) else {
                    return;
                };
                let Some(state) = self.units.get_mut(unit) else {
                    self.unattributed_metrics += 1;
                    return;
                };
                let Some(arm) = state.arm else {
                    self.unattributed_metrics += 1;
                    return;
                };
                let (count, sum) = &mut state.metrics[index];
                let old_mean = (*count > 0).then(|| *sum / *count as f64);
                *count += 1;
                *sum += value;
                let new_mean = *sum / *count as f64;
                let arm_metric = &mut self.arms[arm.index()][index];
                match old_mean {
                    Some(old_mean) => arm_metric.per_unit.replace(old_mean, new_mean),
                    None => arm_metric.per_unit.add(new_mean),
                }
                arm_metric.values.add(value);
                let bucket = self.bucket(bucket_start, arm);
                let (count, sum) = &mut bucket.metrics[index];
                *count += 1;
                *sum += value;
            }
        }
    }

    fn bucket(&mut self, start: i64, arm: Arm) -> &mut Bucket {
        self.changed.insert((start, arm));
        let metric_count = self.metrics.len();
        self.buckets.entry((start, arm)).or_insert_with(|| Bucket {
            metrics: vec![(0, 0.0); metric_count],
            ..Bucket::default()
        })
    }

    pub fn units(&self) -> Units {
        Units {
            control: self.arm_units[0],
            treatment: self.arm_units[1],
        }
    }

    /// Control's and treatment's data for `metric`.
    pub fn arm_metrics(&self, metric: &str) -> Option<(&ArmMetric, &ArmMetric)> {
        let index = self.metrics.iter().position(|m| m == metric)?;
        Some((&self.arms[0][index], &self.arms[1][index]))
    }

    /// The data for each guardrail of `plan`, in order, as [`crate::rollout::decide`]
    /// takes it.
    pub fn guardrail_data<'a>(&'a self, plan: &RolloutPlan) -> Vec<(&'a ArmMetric, &'a ArmMetric)> {
        static EMPTY: std::sync::LazyLock<ArmMetric> = std::sync::LazyLock::new(ArmMetric::default);
        plan.guardrails
            .iter()
            .map(|guardrail| {
                self.arm_metrics(&guardrail.metric)
                    .unwrap_or((&EMPTY, &EMPTY))
            })
            .collect()
    }

    /// Buckets changed since the last call, for the caller to store.
    pub fn take_changed_buckets(&mut self) -> Vec<(i64, Arm, Bucket)> {
        std::mem::take(&mut self.changed)
            .into_iter()
            .filter_map(|key| {
                self.buckets
                    .get(&key)
                    .map(|bucket| (key.0, key.1, bucket.clone()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> RolloutPlan {
        RolloutPlan::new("off".to_owned(), "on".to_owned())
    }

    #[test]
    fn units_take_the_arm_of_their_first_exposure() {
        let mut aggregate = RolloutAggregate::new(&plan());
        aggregate.observe("a", 0, Observation::Exposure { variant: "off" });
        aggregate.observe("b", 0, Observation::Exposure { variant: "on" });
        aggregate.observe("b", 10, Observation::Exposure { variant: "on" });
        aggregate.observe("a", 20, Observation::Exposure { variant: "on" });
        aggregate.observe("c", 20, Observation::Exposure { variant: "other" });
        assert_eq!(
            aggregate.units(),
            Units {
                control: 1,
                treatment: 1
            }
        );
        assert_eq!(aggregate.conflicting_exposures, 1);
    }

    #[test]
    fn each_unit_counts_once_with_its_mean() {
        let mut aggregate = RolloutAggregate::new(&plan());
        aggregate.observe("a", 0, Observation::Exposure { variant: "on" });
        for value in [1.0, 0.0, 0.0, 0.0] {
            aggregate.observe(
                "a",
                5,
                Observation::Metric {
                    name: "error",
                    value,
                },
            );
        }
        aggregate.observe("b", 0, Observation::Exposure { variant: "on" });
        aggregate.observe(
            "b",
            5,
            Observation::Metric {
                name: "error",
                value: 0.0,
            },
        );
        aggregate.observe(
            "ghost",
            5,
            Observation::Metric {
                name: "error",
                value: 1.0,
            },
        );
        aggregate.observe(
            "a",
            5,
            Observation::Metric {
                name: "untracked",
                value: 1.0,
            },
        );
        let (control, treatment) = aggregate.arm_metrics("error").unwrap();
        assert_eq!(control.per_unit.count, 0);
        assert_eq!(treatment.per_unit.count, 2);
        assert_eq!(treatment.per_unit.mean(), Some(0.125));
        assert_eq!(treatment.values.count(), 5);
        assert_eq!(aggregate.unattributed_metrics, 1);
    }

    #[test]
    fn buckets_are_per_minute_and_arm_and_handed_out_once_changed() {
        let mut aggregate = RolloutAggregate::new(&plan());
        aggregate.observe("a", 1_000, Observation::Exposure { variant: "on" });
        aggregate.observe(
            "a",
            61_000,
            Observation::Metric {
                name: "latency_ms",
                value: 12.0,
            },
        );
        let changed = aggregate.take_changed_buckets();
        assert_eq!(changed.len(), 2);
        assert_eq!((changed[0].0, changed[0].1), (0, Arm::Treatment));
        assert_eq!(changed[0].2.new_units, 1);
        let latency = aggregate
            .metrics()
            .iter()
            .position(|m| m == "latency_ms")
            .unwrap();
        assert_eq!(changed[1].2.metrics[latency], (1, 12.0));
        assert!(aggregate.take_changed_buckets().is_empty());
    }
}

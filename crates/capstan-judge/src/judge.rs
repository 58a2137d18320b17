//! The judge: is treatment worse than control on one guardrail?
//!
//! Every comparison is an anytime-valid confidence sequence, so the controller may look
//! after every batch of events, forever, and the chance that a true difference of zero
//! is ever declared "worse" stays below the level it is given.
//!
//! - Means (error rate per unit, mean latency, any custom metric): an asymptotic
//!   confidence sequence for the difference of two means, built on the two-sided normal
//!   mixture boundary (Robbins; Howard, Ramdas, McAuliffe and Sekhon 2021; Waudby-Smith
//!   et al. 2021, "Time-uniform central limit theory"). A proportion is the mean of 0/1
//!   values, so error rates use the same sequence.
//! - Quantiles (p95 latency): a confidence sequence for each arm's quantile from a
//!   time-uniform bound on the empirical distribution function at that quantile (Howard
//!   and Ramdas 2022, "Sequential estimation of quantiles"), each arm at half the level.

use serde::{Deserialize, Serialize};

use crate::stats::{Histogram, MeanStats};

/// What a guardrail watches in one arm: one value per unit (its mean of the metric) for
/// means, and every raw value for quantiles.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArmMetric {
    pub per_unit: MeanStats,
    pub values: Histogram,
}

/// Which way is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Errors, latency: more is worse.
    HigherIsWorse,
    /// Conversions, plays, revenue: less is worse.
    LowerIsWorse,
}

/// What is compared: the mean per unit, or a quantile of all values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Statistic {
    Mean,
    /// A quantile strictly between 0 and 1, such as 0.95.
    Quantile(f64),
}

impl Statistic {
    /// `mean`, or `p` and a percentile: `p95`, `p99.9`.
    pub fn parse(text: &str) -> Result<Statistic, String> {
        if text == "mean" {
            return Ok(Statistic::Mean);
        }
        let percentile = text
            .strip_prefix('p')
            .and_then(|number| number.parse::<f64>().ok())
            .filter(|percentile| *percentile > 0.0 && *percentile < 100.0)
            .ok_or_else(|| format!("unknown statistic {text:?}; expected mean or p1..p99.9"))?;
        Ok(Statistic::Quantile(percentile / 100.0))
    }

    pub fn name(&self) -> String {
        match self {
            Statistic::Mean => "mean".to_owned(),
            Statistic::Quantile(q) => format!("p{}", q * 100.0),
        }
    }
}

impl Serialize for Statistic {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for Statistic {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Statistic, D::Error> {
        let text = String::deserialize(deserializer)?;
        Statistic::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// How much worse treatment may be and still count as "not worse": the larger of a share
/// of control's value and an absolute amount.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tolerance {
    pub relative: f64,
    pub absolute: f64,
}

impl Tolerance {
    pub fn margin(&self, control: f64) -> f64 {
        (self.relative * control.abs()).max(self.absolute)
    }
}

/// The settings every comparison shares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Confidence {
    /// The chance, over the whole life of the comparison, of calling a true difference of
    /// zero "worse".
    pub alpha: f64,
    /// The number of units per arm at which the sequence is tuned to be tightest.
    pub planned_units: f64,
    /// Fewer units (or values, for quantiles) in an arm than this: no verdict.
    pub min_samples: u64,
}

/// The judge's answer for one guardrail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Treatment is worse than control, beyond chance.
    Worse,
    /// Treatment is shown to be no worse than the tolerance allows.
    NotWorse,
    /// Enough data to estimate, not yet enough to decide.
    Inconclusive,
    /// Not enough data to estimate at all.
    TooLittleData,
}

/// An estimate of treatment minus control, with its confidence interval (valid at every
/// look), and the tolerance margin it is held to.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub control: f64,
    pub treatment: f64,
    pub difference: f64,
    pub low: f64,
    pub high: f64,
    pub margin: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub verdict: Verdict,
    pub estimate: Option<Estimate>,
    pub control_samples: u64,
    pub treatment_samples: u64,
}

/// Compares treatment with control on one statistic of one metric.
pub fn compare(
    statistic: Statistic,
    direction: Direction,
    tolerance: Tolerance,
    control: &ArmMetric,
    treatment: &ArmMetric,
    confidence: &Confidence,
) -> Judgement {
    let (estimate, control_samples, treatment_samples) = match statistic {
        Statistic::Mean => (
            difference_of_means(&control.per_unit, &treatment.per_unit, confidence),
            control.per_unit.count,
            treatment.per_unit.count,
        ),
        Statistic::Quantile(q) => (
            difference_of_quantiles(q, &control.values, &treatment.values, confidence),
            control.values.count(),
            treatment.values.count(),
        ),
    };
    let enough = control_samples >= confidence.min_samples.max(2)
        && treatment_samples >= confidence.min_samples.max(2);
    let Some(mut estimate) = estimate.filter(|_| enough) else {
        return Judgement {
            verdict: Verdict::TooLittleData,
            estimate: None,
            control_samples,
            treatment_samples,
        };
    };
    estimate.margin = tolerance.margin(estimate.control);
    // Work in "worse is positive" terms.
    let (worse_low, worse_high) = match direction {
        Direction::HigherIsWorse => (estimate.low, estimate.high),
        Direction::LowerIsWorse => (-estimate.high, -estimate.low),
    };
    let verdict = if worse_low > 0.0 {
        Verdict::Worse
    } else if worse_high < estimate.margin {
        Verdict::NotWorse
    } else {
        Verdict::Inconclusive
    };
    Judgement {
        verdict,
        estimate: Some(estimate),
        control_samples,
        treatment_samples,
    }
}

/// The radius of the two-sided normal mixture boundary at intrinsic time `v`: with
/// probability at least 1 - alpha, a sum of centred increments of total variance `v`
/// stays inside it at every `v` at once.
pub fn mixture_radius(v: f64, rho: f64, alpha: f64) -> f64 {
    ((v + rho) * ((v + rho) / (rho * alpha * alpha)).ln()).sqrt()
}

/// The mixture parameter that makes the boundary tightest at intrinsic time `planned`.
pub fn mixture_rho(planned: f64, alpha: f64) -> f64 {
    let l = -2.0 * alpha.ln();
    planned.max(1.0) / (l + (l + 1.0).ln())
}

/// Pseudo-units of pooled variance added to each arm's variance, so an arm whose few units
/// all agree does not claim a variance of zero.
const PRIOR_UNITS: f64 = 2.0;

fn difference_of_means(
    control: &MeanStats,
    treatment: &MeanStats,
    confidence: &Confidence,
) -> Option<Estimate> {
    let (control_mean, treatment_mean) = (control.mean()?, treatment.mean()?);
    if control.count < 2 || treatment.count < 2 {
        return None;
    }
    let (nc, nt) = (control.count as f64, treatment.count as f64);
    let pooled = (control.squared_deviations() + treatment.squared_deviations()) / (nc + nt - 2.0);
    let shrunk = |stats: &MeanStats, n: f64| {
        (stats.squared_deviations() + PRIOR_UNITS * pooled) / (n - 1.0 + PRIOR_UNITS)
    };
    let (vc, vt) = (shrunk(control, nc), shrunk(treatment, nt));
    let difference = treatment_mean - control_mean;
    let standard_error_squared = vc / nc + vt / nt;
    let half_width = if standard_error_squared <= 0.0 || pooled <= 0.0 {
        // Every unit in both arms has the same value: there is no noise to allow for.
        0.0
    } else {
        // Intrinsic time in units of the pooled variance: the effective number of units.
        let v = pooled / standard_error_squared;
        let rho = mixture_rho(confidence.planned_units, confidence.alpha);
        mixture_radius(v, rho, confidence.alpha) * pooled.sqrt() / v
    };
    Some(Estimate {
        control: control_mean,
        treatment: treatment_mean,
        difference,
        low: difference - half_width,
        high: difference + half_width,
        margin: 0.0,
    })
}

/// A confidence sequence for one arm's quantile `q`, at level `alpha`: the ranks between
/// which the true quantile lies, widened to the histogram's bucket edges.
fn quantile_bounds(
    q: f64,
    values: &Histogram,
    planned: f64,
    alpha: f64,
) -> Option<(f64, f64, f64)> {
    let n = values.count();
    if n < 2 {
        return None;
    }
    let nf = n as f64;
    let spread = q * (1.0 - q);
    let rho = mixture_rho(planned * spread, alpha);
    let radius = mixture_radius(nf * spread, rho, alpha) / nf;
    let point = values.quantile(q)?;
    let low = if q - radius <= 0.0 {
        f64::NEG_INFINITY
    } else {
        let rank = ((q - radius) * nf).floor().max(1.0) as u64;
        values.range_at_rank(rank)?.0
    };
    let high = if q + radius >= 1.0 {
        f64::INFINITY
    } else {
        let rank = ((q + radius) * nf).ceil().min(nf) as u64;
        values.range_at_rank(rank)?.1
    };
    Some((low, point, high))
}

fn difference_of_quantiles(
    q: f64,
    control: &Histogram,
    treatment: &Histogram,
    confidence: &Confidence,
) -> Option<Estimate> {
    // Values, not units: tune for the values a planned number of units sends, roughly.
    let alpha = confidence.alpha / 2.0;
    let (control_low, control_point, control_high) =
        quantile_bounds(q, control, confidence.planned_units, alpha)?;
    let (treatment_low, treatment_point, treatment_high) =
        quantile_bounds(q, treatment, confidence.planned_units, alpha)?;
    Some(Estimate {
        control: control_point,
        treatment: treatment_point,
        difference: treatment_point - control_point,
        low: treatment_low - control_high,
        high: treatment_high - control_low,
        margin: 0.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn confidence() -> Confidence {
        Confidence {
            alpha: 0.01,
            planned_units: 1000.0,
            min_samples: 10,
        }
    }

    fn arm(values: impl IntoIterator<Item = f64>) -> ArmMetric {
        let mut arm = ArmMetric::default();
        for value in values {
            arm.per_unit.add(value);
            arm.values.add(value);
        }
        arm
    }

    /// A deterministic spread of values with mean `mean`: mean ± 1, 2, ..., alternating.
    fn spread(mean: f64, count: usize) -> impl Iterator<Item = f64> {
        (0..count).map(move |i| mean + if i % 2 == 0 { 1.0 } else { -1.0 } * (i % 7) as f64)
    }

    #[test]
    fn too_few_units_give_no_verdict() {
        let judgement = compare(
            Statistic::Mean,
            Direction::HigherIsWorse,
            Tolerance {
                relative: 0.1,
                absolute: 0.0,
            },
            &arm(spread(10.0, 100)),
            &arm(spread(50.0, 5)),
            &confidence(),
        );
        assert_eq!(judgement.verdict, Verdict::TooLittleData);
        assert_eq!(judgement.treatment_samples, 5);
    }

    #[test]
    fn a_clear_increase_is_worse_and_an_equal_arm_is_not() {
        let tolerance = Tolerance {
            relative: 0.05,
            absolute: 0.0,
        };
        let control = arm(spread(100.0, 5000));
        let worse = compare(
            Statistic::Mean,
            Direction::HigherIsWorse,
            tolerance,
            &control,
            &arm(spread(120.0, 500)),
            &confidence(),
        );
        assert_eq!(worse.verdict, Verdict::Worse);
        let estimate = worse.estimate.unwrap();
        assert!(estimate.low > 0.0 && estimate.low < 20.0 && 20.0 < estimate.high);
        let same = compare(
            Statistic::Mean,
            Direction::HigherIsWorse,
            tolerance,
            &control,
            &arm(spread(100.0, 500)),
            &confidence(),
        );
        assert_eq!(same.verdict, Verdict::NotWorse, "{same:?}");
        // Lower being worse turns the same increase into an improvement.
        let better = compare(
            Statistic::Mean,
            Direction::LowerIsWorse,
            tolerance,
            &control,
            &arm(spread(120.0, 500)),
            &confidence(),
        );
        assert_eq!(better.verdict, Verdict::NotWorse);
    }

    #[test]
    fn the_interval_narrows_as_units_come_in() {
        let width = |n| {
            let judgement = compare(
                Statistic::Mean,
                Direction::HigherIsWorse,
                Tolerance {
                    relative: 0.0,
                    absolute: 0.0,
                },
                &arm(spread(10.0, n)),
                &arm(spread(10.0, n)),
                &confidence(),
            );
            let estimate = judgement.estimate.unwrap();
            estimate.high - estimate.low
        };
        assert!(width(100) > width(1000));
        assert!(width(1000) > width(10_000));
    }

    #[test]
    fn identical_constant_arms_are_not_worse_and_never_worse() {
        let judgement = compare(
            Statistic::Mean,
            Direction::HigherIsWorse,
            Tolerance {
                relative: 0.0,
                absolute: 0.001,
            },
            &arm(std::iter::repeat_n(0.0, 50)),
            &arm(std::iter::repeat_n(0.0, 50)),
            &confidence(),
        );
        assert_eq!(judgement.verdict, Verdict::NotWorse);
    }

    #[test]
    fn a_slower_tail_is_worse_on_the_95th_percentile() {
        let control = arm((0..20_000).map(|i| 50.0 + (i % 100) as f64));
        // Same median, but the slowest tenth is twice as slow.
        let treatment = arm((0..20_000).map(|i| {
            let base = 50.0 + (i % 100) as f64;
            if i % 100 >= 90 { base * 2.0 } else { base }
        }));
        let p95 = Statistic::parse("p95").unwrap();
        let tolerance = Tolerance {
            relative: 0.1,
            absolute: 0.0,
        };
        let worse = compare(
            p95,
            Direction::HigherIsWorse,
            tolerance,
            &control,
            &treatment,
            &confidence(),
        );
        assert_eq!(worse.verdict, Verdict::Worse, "{worse:?}");
        let same = compare(
            p95,
            Direction::HigherIsWorse,
            tolerance,
            &control,
            &control,
            &confidence(),
        );
        assert_eq!(same.verdict, Verdict::NotWorse, "{same:?}");
    }

    #[test]
    fn statistics_parse_and_print() {
        assert_eq!(Statistic::parse("mean"), Ok(Statistic::Mean));
        assert_eq!(Statistic::parse("p95"), Ok(Statistic::Quantile(0.95)));
        assert_eq!(Statistic::parse("p95").unwrap().name(), "p95");
        assert!(Statistic::parse("p100").is_err());
        assert!(Statistic::parse("median").is_err());
    }
}

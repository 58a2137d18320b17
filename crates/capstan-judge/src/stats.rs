//! Sufficient statistics of one arm for one metric: a running mean and variance over
//! units, and a log-bucketed histogram of raw values for quantiles.

use std::collections::BTreeMap;

/// Count, sum and sum of squares: enough for a mean and a variance, and cheap to update
/// when one observation changes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MeanStats {
    pub count: u64,
    pub sum: f64,
    pub sum_squares: f64,
}

impl MeanStats {
    pub fn add(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
        self.sum_squares += value * value;
    }

    /// Replaces one observation already counted (`old`) with `new`.
    pub fn replace(&mut self, old: f64, new: f64) {
        self.sum += new - old;
        self.sum_squares += new * new - old * old;
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    /// The sum of squared deviations from the mean (never negative, despite rounding).
    pub fn squared_deviations(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        (self.sum_squares - self.sum * self.sum / self.count as f64).max(0.0)
    }

    /// The sample variance, when there are two observations or more.
    pub fn variance(&self) -> Option<f64> {
        (self.count > 1).then(|| self.squared_deviations() / (self.count - 1) as f64)
    }
}

/// Relative width of a histogram bucket: values are kept to within 1%.
const GROWTH: f64 = 1.01;

/// A histogram with buckets that grow by 1%, so quantiles of values spanning many orders
/// of magnitude (latencies from microseconds to minutes) are kept to 1% in a few
/// thousand buckets at most, whatever the number of values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    buckets: BTreeMap<i32, u64>,
    count: u64,
}

impl Histogram {
    pub fn add(&mut self, value: f64) {
        if !value.is_finite() {
            return;
        }
        *self.buckets.entry(bucket_of(value)).or_default() += 1;
        self.count += 1;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (bucket, count) in &other.buckets {
            *self.buckets.entry(*bucket).or_default() += count;
        }
        self.count += other.count;
    }

    /// The range of values holding the value of `rank` (1-based, in ascending order).
    pub fn range_at_rank(&self, rank: u64) -> Option<(f64, f64)> {
        if rank == 0 || rank > self.count {
            return None;
        }
        let mut seen = 0;
        for (bucket, count) in &self.buckets {
            seen += count;
            if seen >= rank {
                return Some(bucket_range(*bucket));
            }
        }
        None
    }

    /// The value at quantile `q` (0 < q < 1), to within the bucket width.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let rank = ((q * self.count as f64).ceil() as u64).max(1);
        self.range_at_rank(rank)
            .map(|(low, high)| midpoint(low, high))
    }
}

/// Buckets are numbered so their order is the order of the values: 0 holds zero,
/// positive numbers count up from 1 and negative numbers down from -1.
fn bucket_of(value: f64) -> i32 {
    if value == 0.0 {
        return 0;
    }
    // Index of (GROWTH^(i-1), GROWTH^i], shifted so tiny magnitudes stay positive.
    let index = (value.abs().ln() / GROWTH.ln()).ceil() as i64 + OFFSET;
    let index = index.clamp(1, i32::MAX as i64) as i32;
    if value > 0.0 { index } else { -index }
}

/// Magnitudes down to about 1e-30 keep their own buckets.
const OFFSET: i64 = 7000;

fn bucket_range(bucket: i32) -> (f64, f64) {
    if bucket == 0 {
        return (0.0, 0.0);
    }
    let index = bucket.unsigned_abs() as i64 - OFFSET;
    let high = GROWTH.powi(index as i32);
    let low = GROWTH.powi(index as i32 - 1);
    if bucket > 0 {
        (low, high)
    } else {
        (-high, -low)
    }
}

fn midpoint(low: f64, high: f64) -> f64 {
    (low + high) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_variance_follow_replacements() {
        let mut stats = MeanStats::default();
        for value in [1.0, 2.0, 3.0, 4.0] {
            stats.add(value);
        }
        assert_eq!(stats.mean(), Some(2.5));
        assert!((stats.variance().unwrap() - 5.0 / 3.0).abs() < 1e-12);
        stats.replace(4.0, 10.0);
        assert_eq!(stats.mean(), Some(4.0));
        // 1, 2, 3, 10: deviations 9, 4, 1, 36.
        assert!((stats.variance().unwrap() - 50.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn histogram_quantiles_are_within_one_percent() {
        let mut histogram = Histogram::default();
        for value in 1..=10_000 {
            histogram.add(value as f64);
        }
        for (q, exact) in [(0.5, 5000.0), (0.95, 9500.0), (0.99, 9900.0)] {
            let estimate = histogram.quantile(q).unwrap();
            assert!(
                (estimate - exact).abs() / exact < 0.01,
                "q{q}: {estimate} vs {exact}"
            );
        }
    }

    #[test]
    fn histogram_orders_negative_zero_and_positive_values() {
        let mut histogram = Histogram::default();
        for value in [-5.0, 0.0, 3.0] {
            histogram.add(value);
        }
        let (low, high) = histogram.range_at_rank(1).unwrap();
        assert!(low <= -5.0 && -5.0 <= high);
        assert_eq!(histogram.range_at_rank(2), Some((0.0, 0.0)));
        let (low, high) = histogram.range_at_rank(3).unwrap();
        assert!(low <= 3.0 && 3.0 <= high);
        assert_eq!(histogram.range_at_rank(4), None);
    }
}

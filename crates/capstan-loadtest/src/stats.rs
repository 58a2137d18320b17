//! Percentiles of measured durations.

use std::time::Duration;

/// The nearest-rank percentile of sorted values: the smallest value at or below which
/// `percent` of them lie. With 50 values, p99 is the largest.
pub(crate) fn percentile(sorted: &[Duration], percent: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((percent / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// "p50 3.21 ms, p90 …, p99 …, max … (n = 50)".
pub(crate) fn describe(values: &[Duration]) -> String {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let max = sorted.last().copied().unwrap_or_default();
    format!(
        "p50 {}, p90 {}, p99 {}, max {} (n = {})",
        millis(percentile(&sorted, 50.0)),
        millis(percentile(&sorted, 90.0)),
        millis(percentile(&sorted, 99.0)),
        millis(max),
        sorted.len()
    )
}

pub(crate) fn millis(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<Duration> = (1..=200).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 50.0), Duration::from_millis(100));
        assert_eq!(percentile(&values, 99.0), Duration::from_millis(198));
        assert_eq!(percentile(&values[..50], 99.0), Duration::from_millis(50));
        assert_eq!(percentile(&values[..1], 50.0), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }
}

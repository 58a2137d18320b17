//! Running means and variances, and the intervals read from them.

/// Count, mean and sum of squared deviations (Welford's method: stable over millions of
/// rewards, where a plain sum of squares loses the variance to rounding).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct RunningMean {
    pub(crate) count: u64,
    pub(crate) mean: f64,
    pub(crate) squared_deviations: f64,
}

impl RunningMean {
    pub(crate) fn add(&mut self, value: f64) {
        self.count += 1;
        let delta = value - self.mean;
        self.mean += delta / self.count as f64;
        self.squared_deviations += delta * (value - self.mean);
    }

    /// The sample variance; 0 below two observations.
    pub(crate) fn variance(&self) -> f64 {
        if self.count < 2 {
            return 0.0;
        }
        (self.squared_deviations / (self.count - 1) as f64).max(0.0)
    }

    /// Mean plus or minus 1.96 standard errors; unbounded below two observations, since
    /// nothing is known of the spread then.
    pub(crate) fn normal_interval(&self) -> (f64, f64) {
        if self.count < 2 {
            return (f64::NEG_INFINITY, f64::INFINITY);
        }
        let half_width = NORMAL_95 * (self.variance() / self.count as f64).sqrt();
        (self.mean - half_width, self.mean + half_width)
    }
}

/// The two-sided 95% quantile of the standard normal.
pub(crate) const NORMAL_95: f64 = 1.959_963_984_540_054;

/// The two-sided 95% quantile of Student's t with `degrees_of_freedom`, by the
/// Cornish-Fisher expansion around the normal quantile: within 0.2% of the exact value
/// from 3 degrees of freedom on, and exact in the limit. Below 1 it is taken as 1.
pub(crate) fn student_t_95(degrees_of_freedom: f64) -> f64 {
    if !degrees_of_freedom.is_finite() {
        return NORMAL_95;
    }
    let nu = degrees_of_freedom.max(1.0);
    let z = NORMAL_95;
    let z3 = z * z * z;
    let z5 = z3 * z * z;
    let z7 = z5 * z * z;
    let z9 = z7 * z * z;
    z + (z3 + z) / (4.0 * nu)
        + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * nu * nu)
        + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * nu * nu * nu)
        + (79.0 * z9 + 776.0 * z7 + 1482.0 * z5 - 1920.0 * z3 - 945.0 * z)
            / (92160.0 * nu * nu * nu * nu)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn student_t_quantiles_match_tables() {
        // Tabulated two-sided 95% quantiles.
        for (nu, expected) in [
            (3.0, 3.182),
            (5.0, 2.571),
            (10.0, 2.228),
            (30.0, 2.042),
            (1000.0, 1.962),
        ] {
            let got = student_t_95(nu);
            assert!(
                (got - expected).abs() / expected < 0.005,
                "nu {nu}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn running_mean_matches_the_two_pass_formulas() {
        let values = [0.0, 1.0, 1.0, 0.0, 1.0, 3.5];
        let mut running = RunningMean::default();
        values.iter().for_each(|value| running.add(*value));
        let mean = values.iter().sum::<f64>() / 6.0;
        let variance = values
            .iter()
            .map(|value| (value - mean).powi(2))
            .sum::<f64>()
            / 5.0;
        assert!((running.mean - mean).abs() < 1e-12);
        assert!((running.variance() - variance).abs() < 1e-12);
    }
}

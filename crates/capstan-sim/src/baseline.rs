//! The comparison the judge is measured against: a Kayenta-style fixed-horizon test
//! (Welch's t-test, Mann-Whitney U), valid for one look at a sample size fixed in
//! advance, here checked at every tick as a canary analysis run at every interval would.

use capstan_judge::stats::MeanStats;

/// Welch's t-test of "treatment's mean is higher than control's": the one-sided p-value,
/// or `None` with fewer than two units in an arm.
pub fn welch_higher(control: &MeanStats, treatment: &MeanStats) -> Option<f64> {
    let (control_mean, treatment_mean) = (control.mean()?, treatment.mean()?);
    let (control_variance, treatment_variance) = (control.variance()?, treatment.variance()?);
    let (nc, nt) = (control.count as f64, treatment.count as f64);
    let (control_part, treatment_part) = (control_variance / nc, treatment_variance / nt);
    let standard_error_squared = control_part + treatment_part;
    let difference = treatment_mean - control_mean;
    if standard_error_squared <= 0.0 {
        // Every unit agrees within each arm: any difference at all is certain.
        return Some(if difference > 0.0 { 0.0 } else { 1.0 });
    }
    let t = difference / standard_error_squared.sqrt();
    let degrees_of_freedom = standard_error_squared * standard_error_squared
        / (control_part * control_part / (nc - 1.0) + treatment_part * treatment_part / (nt - 1.0));
    Some(student_t_upper_tail(t, degrees_of_freedom))
}

/// Counts of values in bins one unit wide (values are rounded down; the last bin holds
/// everything above it), enough for a rank test with ties.
#[derive(Debug, Clone)]
pub struct Bins {
    counts: Vec<u64>,
    total: u64,
}

impl Bins {
    pub fn new(bins: usize) -> Bins {
        Bins {
            counts: vec![0; bins.max(1)],
            total: 0,
        }
    }

    pub fn add(&mut self, value: f64) {
        let last = self.counts.len() - 1;
        let bin = if value.is_finite() && value > 0.0 {
            (value as usize).min(last)
        } else {
            0
        };
        self.counts[bin] += 1;
        self.total += 1;
    }

    pub fn total(&self) -> u64 {
        self.total
    }
}

/// The Mann-Whitney U test of "treatment's values tend to be higher than control's", by
/// the normal approximation with the correction for ties: the one-sided p-value.
pub fn mann_whitney_higher(control: &Bins, treatment: &Bins) -> Option<f64> {
    let (n_control, n_treatment) = (control.total as f64, treatment.total as f64);
    if control.total == 0 || treatment.total == 0 || control.counts.len() != treatment.counts.len()
    {
        return None;
    }
    let n = n_control + n_treatment;
    let mut below = 0.0;
    let mut treatment_rank_sum = 0.0;
    let mut ties = 0.0;
    for (c, t) in control.counts.iter().zip(&treatment.counts) {
        let tied = (*c + *t) as f64;
        if tied == 0.0 {
            continue;
        }
        // Every value in the bin takes the bin's mean rank.
        treatment_rank_sum += *t as f64 * (below + (tied + 1.0) / 2.0);
        ties += tied * tied * tied - tied;
        below += tied;
    }
    let u = treatment_rank_sum - n_treatment * (n_treatment + 1.0) / 2.0;
    let mean = n_control * n_treatment / 2.0;
    let variance = n_control * n_treatment / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if variance <= 0.0 {
        return Some(1.0);
    }
    Some(normal_upper_tail((u - mean) / variance.sqrt()))
}

/// P(Z > z) for a standard normal Z.
pub fn normal_upper_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The complementary error function by Numerical Recipes' Chebyshev fit (`erfcc`,
/// relative error below 1.2e-7 everywhere): ample for p-values compared with 0.01.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let polynomial = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let answer = t * polynomial.exp();
    if x >= 0.0 { answer } else { 2.0 - answer }
}

/// P(T > t) for Student's t with `degrees_of_freedom` (not necessarily whole).
pub fn student_t_upper_tail(t: f64, degrees_of_freedom: f64) -> f64 {
    if !t.is_finite() {
        return if t > 0.0 { 0.0 } else { 1.0 };
    }
    let x = degrees_of_freedom / (degrees_of_freedom + t * t);
    let tail = 0.5 * regularized_incomplete_beta(x, degrees_of_freedom / 2.0, 0.5);
    if t >= 0.0 { tail } else { 1.0 - tail }
}

/// I_x(a, b), by the continued fraction (modified Lentz), as in Numerical Recipes.
fn regularized_incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_continued_fraction(x, a, b) / a
    } else {
        1.0 - front * beta_continued_fraction(1.0 - x, b, a) / b
    }
}

fn beta_continued_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut c = 1.0;
    let mut d = 1.0 - (a + b) * x / (a + 1.0);
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let even = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
        d = 1.0 + even * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + even / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        h *= d * c;
        let odd = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
        d = 1.0 + odd * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + odd / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < 1e-12 {
            break;
        }
    }
    h
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, nine coefficients).
fn ln_gamma(x: f64) -> f64 {
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1-x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = COEFFICIENTS[0];
    for (index, coefficient) in COEFFICIENTS.iter().enumerate().skip(1) {
        sum += coefficient / (x + index as f64);
    }
    let t = x + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_match_tables() {
        assert!((normal_upper_tail(2.326_348) - 0.01).abs() < 1e-6);
        assert!((normal_upper_tail(-1.0) - 0.841_344_7).abs() < 1e-6);
        // Student's t: t(0.99; 10) = 2.763769, t(0.99; 30) = 2.457262, t(0.995; 3) = 5.840909.
        assert!((student_t_upper_tail(2.763_769, 10.0) - 0.01).abs() < 1e-6);
        assert!((student_t_upper_tail(2.457_262, 30.0) - 0.01).abs() < 1e-6);
        assert!((student_t_upper_tail(5.840_909, 3.0) - 0.005).abs() < 1e-6);
        assert!((student_t_upper_tail(-2.457_262, 30.0) - 0.99).abs() < 1e-6);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-10);
    }

    #[test]
    fn welch_sees_a_shift_and_not_its_absence() {
        let arm = |values: &[f64]| {
            let mut stats = MeanStats::default();
            for value in values {
                stats.add(*value);
            }
            stats
        };
        let control = arm(&[1.0, 2.0, 3.0, 4.0, 5.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        let higher = arm(&[4.0, 5.0, 6.0, 7.0, 8.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        assert!(welch_higher(&control, &higher).unwrap() < 0.001);
        assert!((welch_higher(&control, &control).unwrap() - 0.5).abs() < 1e-9);
        assert!(welch_higher(&higher, &control).unwrap() > 0.999);
    }

    #[test]
    fn mann_whitney_sees_a_shift_and_handles_ties() {
        let mut control = Bins::new(100);
        let mut treatment = Bins::new(100);
        for value in 0..50 {
            control.add(value as f64);
            treatment.add(value as f64 + 10.0);
        }
        assert!(mann_whitney_higher(&control, &treatment).unwrap() < 0.01);
        assert!(mann_whitney_higher(&treatment, &control).unwrap() > 0.99);
        // All values tied: no evidence either way.
        let mut tied = Bins::new(10);
        for _ in 0..20 {
            tied.add(3.0);
        }
        assert_eq!(mann_whitney_higher(&tied, &tied), Some(1.0));
    }
}

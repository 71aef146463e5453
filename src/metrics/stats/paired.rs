//! Paired tests of two systems scored on the same items: Student's paired t-test (as
//! `scipy.stats.ttest_rel`, which the paper's analysis script uses) and the paired permutation
//! (sign-flip) test of the mean difference (as `scipy.stats.permutation_test` with
//! `permutation_type="samples"`). Both two-sided.

use rand::RngCore;
use rayon::prelude::*;
use serde::Serialize;

use super::bootstrap::stream;
use super::check_paired;
use super::special::student_t_sf;
use crate::metrics::MetricsError;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TTest {
    pub mean_difference: f64,
    pub t: f64,
    pub df: f64,
    pub p_value: f64,
}

/// Paired t-test of `a` against `b`: t = mean(d) / (sd(d)/√n), df = n − 1, two-sided p from the
/// Student t distribution. Where scipy returns NaN because every difference is the same, this
/// returns t = 0, p = 1 when they are all zero and t = ±∞, p = 0 otherwise.
pub fn paired_t_test(a: &[f64], b: &[f64]) -> Result<TTest, MetricsError> {
    check_paired("paired t-test", a, b, 2)?;
    let n = a.len() as f64;
    let diffs: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let mean = diffs.iter().sum::<f64>() / n;
    let var = diffs.iter().map(|d| (d - mean) * (d - mean)).sum::<f64>() / (n - 1.0);
    let df = n - 1.0;
    let t = if var > 0.0 {
        mean / (var / n).sqrt()
    } else if mean == 0.0 {
        0.0
    } else {
        mean.signum() * f64::INFINITY
    };
    let p_value = (2.0 * student_t_sf(t.abs(), df)).min(1.0);
    Ok(TTest { mean_difference: mean, t, df, p_value })
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PermutationTest {
    pub mean_difference: f64,
    pub p_value: f64,
    /// Whether all 2ⁿ sign assignments were enumerated (then `p_value` is exact).
    pub exact: bool,
    /// Sign assignments evaluated.
    pub resamples: usize,
}

/// Paired permutation test of mean(a − b): under the null each difference is as likely to have
/// either sign. When 2ⁿ ≤ `resamples` every assignment is enumerated and p counts them exactly;
/// otherwise `resamples` random assignments (seeded) give p = (count + 1)/(resamples + 1) per
/// side. Two-sided p = min(1, 2·min(p_less, p_greater)), comparing with scipy's relative tolerance
/// of 100 ulp so that ties with the observed statistic count.
pub fn paired_permutation_test(
    a: &[f64],
    b: &[f64],
    resamples: usize,
    seed: u64,
) -> Result<PermutationTest, MetricsError> {
    const METRIC: &str = "paired permutation test";
    check_paired(METRIC, a, b, 1)?;
    if resamples == 0 {
        return Err(MetricsError::Invalid { metric: METRIC, detail: "resamples must be at least 1".into() });
    }
    let n = a.len();
    let diffs: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let observed = diffs.iter().sum::<f64>() / n as f64;
    let gamma = (observed * f64::EPSILON * 100.0).abs();
    let exact = n < 63 && (1u64 << n) <= resamples as u64;
    let flipped_mean = |signs: &mut dyn FnMut() -> u64| -> f64 {
        let sum: f64 = diffs
            .chunks(64)
            .map(|chunk| {
                let bits = signs();
                // Flip sign bits directly: branch-free.
                chunk
                    .iter()
                    .enumerate()
                    .map(|(j, d)| f64::from_bits(d.to_bits() ^ ((bits >> j & 1) << 63)))
                    .sum::<f64>()
            })
            .sum();
        sum / n as f64
    };
    let (null, total): (Vec<f64>, usize) = if exact {
        let total = 1usize << n;
        let null = (0..total as u64).into_par_iter().map(|mask| flipped_mean(&mut || mask)).collect();
        (null, total)
    } else {
        let null = (0..resamples)
            .into_par_iter()
            .map(|r| {
                let mut rng = stream(seed, r);
                flipped_mean(&mut || rng.next_u64())
            })
            .collect();
        (null, resamples)
    };
    let less = null.iter().filter(|&&s| s <= observed + gamma).count();
    let greater = null.iter().filter(|&&s| s >= observed - gamma).count();
    let adjust = usize::from(!exact);
    let p = |count: usize| (count + adjust) as f64 / (total + adjust) as f64;
    Ok(PermutationTest {
        mean_difference: observed,
        p_value: (2.0 * p(less).min(p(greater))).min(1.0),
        exact,
        resamples: total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Human ratings of two systems on ten items (made up for the test); reference values from
    // scipy 1.17.1: ttest_rel(a, b) and permutation_test((a, b), lambda x, y: np.mean(x - y),
    // permutation_type="samples", vectorized=False, n_resamples=9999).
    const A: [f64; 10] = [4.0, 3.5, 5.0, 2.0, 4.5, 3.0, 4.0, 5.0, 3.5, 4.0];
    const B: [f64; 10] = [3.0, 3.5, 4.0, 2.5, 3.0, 3.0, 3.5, 4.0, 2.0, 4.5];

    #[test]
    fn t_test_matches_scipy() {
        let t = paired_t_test(&A, &B).unwrap();
        assert!((t.t - 2.2826577307580465).abs() < 1e-12, "{t:?}");
        assert!((t.p_value - 0.048351864294653525).abs() < 1e-12, "{t:?}");
        assert_eq!(t.df, 9.0);
    }

    #[test]
    fn t_test_degenerate_differences() {
        let same = paired_t_test(&[1.0, 2.0], &[1.0, 2.0]).unwrap();
        assert_eq!((same.t, same.p_value), (0.0, 1.0));
        let shifted = paired_t_test(&[2.0, 3.0], &[1.0, 2.0]).unwrap();
        assert_eq!((shifted.t, shifted.p_value), (f64::INFINITY, 0.0));
        assert!(paired_t_test(&[1.0], &[2.0]).is_err());
    }

    #[test]
    fn exact_permutation_test_matches_scipy() {
        let r = paired_permutation_test(&A, &B, 9999, 0).unwrap();
        assert!(r.exact);
        assert_eq!(r.resamples, 1024);
        assert!((r.p_value - 0.078125).abs() < 1e-15, "{r:?}");
    }

    #[test]
    fn randomised_permutation_test_is_seeded_and_close_to_exact() {
        let exact = paired_permutation_test(&A, &B, 9999, 0).unwrap().p_value;
        let r = paired_permutation_test(&A, &B, 1000, 5).unwrap();
        assert!(!r.exact);
        assert_eq!(r, paired_permutation_test(&A, &B, 1000, 5).unwrap());
        assert!((r.p_value - exact).abs() < 0.03, "{} vs {exact}", r.p_value);
    }
}

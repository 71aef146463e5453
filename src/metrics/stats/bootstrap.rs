//! Seeded percentile bootstrap: a confidence interval for a mean (Efron & Tibshirani, *An
//! Introduction to the Bootstrap*, 1993, §13.3), and the paired bootstrap of two systems scored
//! on the same items (Koehn, EMNLP 2004; p-value by the shifted-distribution test of
//! Berg-Kirkpatrick et al., EMNLP 2012, made two-sided).
//!
//! Resample `b` draws from ChaCha8 stream `b` of the seed, so results do not depend on the
//! number of threads; resamples run in parallel with rayon.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use super::{check_finite, check_paired, percentile_sorted};
use crate::metrics::{check_at_least, MetricsError};

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BootstrapConfig {
    pub resamples: usize,
    /// Two-sided confidence level in (0, 1), e.g. 0.95.
    pub confidence: f64,
    pub seed: u64,
}

impl Default for BootstrapConfig {
    fn default() -> BootstrapConfig {
        BootstrapConfig { resamples: 1000, confidence: 0.95, seed: 42 }
    }
}

impl BootstrapConfig {
    fn check(&self, metric: &'static str) -> Result<(), MetricsError> {
        if self.resamples == 0 {
            return Err(MetricsError::Invalid { metric, detail: "resamples must be at least 1".into() });
        }
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Err(MetricsError::Invalid {
                metric,
                detail: format!("confidence must lie strictly between 0 and 1, got {}", self.confidence),
            });
        }
        Ok(())
    }

    /// Lower and upper percentiles (0–100) of the interval.
    fn percentiles(&self) -> (f64, f64) {
        let alpha = (1.0 - self.confidence) / 2.0;
        (alpha * 100.0, (1.0 - alpha) * 100.0)
    }
}

/// A point estimate with its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
}

/// Percentile-bootstrap confidence interval of the mean of `values`.
pub fn bootstrap_mean_ci(values: &[f64], config: &BootstrapConfig) -> Result<Interval, MetricsError> {
    const METRIC: &str = "bootstrap CI";
    config.check(METRIC)?;
    check_at_least(METRIC, 1, values.len())?;
    check_finite(METRIC, values)?;
    let mut means = resample_means(values, config);
    means.sort_unstable_by(f64::total_cmp);
    let (lo, hi) = config.percentiles();
    Ok(Interval {
        estimate: values.iter().sum::<f64>() / values.len() as f64,
        lower: percentile_sorted(&means, lo),
        upper: percentile_sorted(&means, hi),
    })
}

/// Means of `config.resamples` resamples (with replacement, same size) of `values`.
fn resample_means(values: &[f64], config: &BootstrapConfig) -> Vec<f64> {
    let n = values.len();
    (0..config.resamples)
        .into_par_iter()
        .map(|b| {
            let mut rng = stream(config.seed, b);
            let sum: f64 = (0..n).map(|_| values[rng.random_range(0..n)]).sum();
            sum / n as f64
        })
        .collect()
}

pub(crate) fn stream(seed: u64, index: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index as u64);
    rng
}

/// Paired bootstrap of system A against system B on the same items.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PairedBootstrap {
    /// Mean of A − B with its percentile interval.
    pub difference: Interval,
    /// Two-sided p-value of "no difference": the share of resampled differences at least as far
    /// from the observed one as the observed one is from 0, (1 + count) / (1 + resamples).
    pub p_value: f64,
    /// Share of resamples in which A's mean is higher than B's (Koehn's "A better in x%").
    pub a_wins: f64,
}

pub fn paired_bootstrap(
    a: &[f64],
    b: &[f64],
    config: &BootstrapConfig,
) -> Result<PairedBootstrap, MetricsError> {
    const METRIC: &str = "paired bootstrap";
    config.check(METRIC)?;
    check_paired(METRIC, a, b, 1)?;
    let diffs: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let observed = diffs.iter().sum::<f64>() / diffs.len() as f64;
    let mut deltas = resample_means(&diffs, config);
    let extreme = deltas.iter().filter(|&&d| (d - observed).abs() >= observed.abs()).count();
    let wins = deltas.iter().filter(|&&d| d > 0.0).count();
    deltas.sort_unstable_by(f64::total_cmp);
    let (lo, hi) = config.percentiles();
    let r = config.resamples as f64;
    Ok(PairedBootstrap {
        difference: Interval {
            estimate: observed,
            lower: percentile_sorted(&deltas, lo),
            upper: percentile_sorted(&deltas, hi),
        },
        p_value: ((1 + extreme) as f64 / (1.0 + r)).min(1.0),
        a_wins: wins as f64 / r,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(n: usize, shift: f64) -> Vec<f64> {
        let mut rng = stream(3, 0);
        (0..n).map(|_| rng.random_range(0.0..1.0) + shift).collect()
    }

    #[test]
    fn ci_is_seeded_and_brackets_the_mean() {
        let v = scores(200, 0.0);
        let cfg = BootstrapConfig { resamples: 2000, confidence: 0.95, seed: 7 };
        let a = bootstrap_mean_ci(&v, &cfg).unwrap();
        assert_eq!(a, bootstrap_mean_ci(&v, &cfg).unwrap());
        assert!(a.lower < a.estimate && a.estimate < a.upper, "{a:?}");
        // Uniform(0,1): sd 1/sqrt(12); the normal-theory half-width 1.96·0.2887/sqrt(200) = 0.040.
        let half = (a.upper - a.lower) / 2.0;
        assert!((half - 0.040).abs() < 0.006, "{half}");
        let other = bootstrap_mean_ci(&v, &BootstrapConfig { seed: 8, ..cfg }).unwrap();
        assert_ne!(a, other);
    }

    #[test]
    fn constant_data_gives_a_degenerate_interval() {
        let ci = bootstrap_mean_ci(&[3.0; 10], &BootstrapConfig::default()).unwrap();
        assert_eq!((ci.lower, ci.estimate, ci.upper), (3.0, 3.0, 3.0));
    }

    #[test]
    fn paired_bootstrap_detects_a_shift_and_not_noise() {
        let b = scores(300, 0.0);
        let a: Vec<f64> = b.iter().map(|x| x + 0.05).collect();
        let cfg = BootstrapConfig { resamples: 999, ..BootstrapConfig::default() };
        let r = paired_bootstrap(&a, &b, &cfg).unwrap();
        assert!((r.difference.estimate - 0.05).abs() < 1e-12);
        assert_eq!(r.p_value, 1.0 / 1000.0);
        assert_eq!(r.a_wins, 1.0);
        let noise = scores(300, 0.0);
        let shuffled: Vec<f64> = noise.iter().rev().copied().collect();
        let r = paired_bootstrap(&noise, &shuffled, &cfg).unwrap();
        assert!(r.p_value > 0.2 && r.difference.lower < 0.0 && r.difference.upper > 0.0, "{r:?}");
    }

    #[test]
    fn bad_configuration_and_data_are_errors() {
        let cfg = BootstrapConfig { resamples: 0, ..BootstrapConfig::default() };
        assert!(bootstrap_mean_ci(&[1.0], &cfg).is_err());
        let cfg = BootstrapConfig { confidence: 1.0, ..BootstrapConfig::default() };
        assert!(bootstrap_mean_ci(&[1.0], &cfg).is_err());
        let err = bootstrap_mean_ci(&[1.0, f64::NAN], &BootstrapConfig::default()).unwrap_err().to_string();
        assert!(err.contains("item 1"), "{err}");
        assert!(paired_bootstrap(&[1.0], &[1.0, 2.0], &BootstrapConfig::default()).is_err());
    }
}

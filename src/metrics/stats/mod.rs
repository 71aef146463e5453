//! Statistics for evaluation reports: descriptive statistics, seeded bootstrap confidence
//! intervals, paired tests of two systems on the same items (bootstrap, permutation, Wilcoxon
//! signed-rank, t-test) and inter-annotator agreement (Cohen's and Fleiss' kappa, Krippendorff's
//! alpha). Randomised procedures take a seed and give the same answer for it on any number of
//! threads: resample `b` draws from its own ChaCha8 stream `b` of that seed.

pub mod agreement;
pub mod bootstrap;
pub mod paired;
pub mod special;
pub mod wilcoxon;

pub use agreement::{cohen_kappa, fleiss_kappa, krippendorff_alpha, KappaWeights, Level};
pub use bootstrap::{bootstrap_mean_ci, paired_bootstrap, BootstrapConfig, Interval, PairedBootstrap};
pub use paired::{paired_permutation_test, paired_t_test, PermutationTest, TTest};
pub use wilcoxon::{wilcoxon, Wilcoxon, WilcoxonMethod, WilcoxonOptions, ZeroMethod};

use super::{check_at_least, MetricsError};

/// Arithmetic mean; an error for no values.
pub fn mean(values: &[f64]) -> Result<f64, MetricsError> {
    check_at_least("mean", 1, values.len())?;
    Ok(values.iter().sum::<f64>() / values.len() as f64)
}

/// Sample standard deviation (n − 1 in the denominator, as pandas' `std` in the paper's
/// analysis script); needs two values.
pub fn std_dev(values: &[f64]) -> Result<f64, MetricsError> {
    check_at_least("standard deviation", 2, values.len())?;
    let m = mean(values)?;
    let ss: f64 = values.iter().map(|v| (v - m) * (v - m)).sum();
    Ok((ss / (values.len() - 1) as f64).sqrt())
}

/// What a report prints for one score: n, mean ± sample std, and a bootstrap CI of the mean.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ScoreSummary {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation; `None` for a single value.
    pub std: Option<f64>,
    pub ci: Interval,
}

/// [`ScoreSummary`] of `values` with a percentile-bootstrap CI by `config`.
pub fn summarize(values: &[f64], config: &BootstrapConfig) -> Result<ScoreSummary, MetricsError> {
    let ci = bootstrap_mean_ci(values, config)?;
    Ok(ScoreSummary { n: values.len(), mean: ci.estimate, std: std_dev(values).ok(), ci })
}

/// The `q`-th percentile (0–100) of ascending `sorted` values with linear interpolation between
/// closest ranks (numpy's default, `method="linear"`). `sorted` must be non-empty.
pub(crate) fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Checks that paired samples have equal length and no NaN, naming the first bad item.
pub(crate) fn check_paired(
    metric: &'static str,
    a: &[f64],
    b: &[f64],
    needed: usize,
) -> Result<(), MetricsError> {
    super::check_same_len(metric, "system A scores", a.len(), "system B scores", b.len())?;
    check_at_least(metric, needed, a.len())?;
    check_finite(metric, a)?;
    check_finite(metric, b)
}

pub(crate) fn check_finite(metric: &'static str, values: &[f64]) -> Result<(), MetricsError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(MetricsError::BadItem {
            metric,
            index,
            detail: format!("score {} is not a finite number", values[index]),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptive_statistics_by_hand() {
        let v = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert_eq!(mean(&v).unwrap(), 5.0);
        // Σ(v − 5)² = 32; 32 / 7.
        assert!((std_dev(&v).unwrap() - (32.0f64 / 7.0).sqrt()).abs() < 1e-15);
        assert!(mean(&[]).is_err());
        assert!(std_dev(&[1.0]).is_err());
        // numpy.percentile([1, 2, 3, 4], 25) = 1.75; 100 → 4.
        assert_eq!(percentile_sorted(&[1.0, 2.0, 3.0, 4.0], 25.0), 1.75);
        assert_eq!(percentile_sorted(&[1.0, 2.0, 3.0, 4.0], 100.0), 4.0);
        assert_eq!(percentile_sorted(&[3.0], 2.5), 3.0);
    }

    #[test]
    fn summary_combines_mean_std_and_ci() {
        let s = summarize(&[1.0, 2.0, 3.0, 4.0], &BootstrapConfig::default()).unwrap();
        assert_eq!((s.n, s.mean), (4, 2.5));
        assert!((s.std.unwrap() - (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
        assert!(s.ci.lower >= 1.0 && s.ci.upper <= 4.0 && s.ci.lower < 2.5 && 2.5 < s.ci.upper);
        assert_eq!(summarize(&[7.0], &BootstrapConfig::default()).unwrap().std, None);
        assert!(summarize(&[], &BootstrapConfig::default()).is_err());
    }
}

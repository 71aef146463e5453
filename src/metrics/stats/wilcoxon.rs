//! Wilcoxon signed-rank test of paired scores, reproducing `scipy.stats.wilcoxon` (scipy 1.17,
//! two-sided, `method="auto"` by default):
//!
//! - zeros: dropped before ranking (`"wilcox"`, the default), ranked then left out of the sums
//!   with Cureton's adjustment of the normal approximation (`"pratt"`), or ranked with half their
//!   rank added to each sum (`"zsplit"`);
//! - ties get average ranks; the normal approximation subtracts Σ(t³ − t)/48 from the variance;
//! - `Auto` picks, like scipy: the normal approximation when there are more than 50 pairs; the
//!   exact null distribution of R+ when there are no ties and no zeros; an exact enumeration of
//!   all 2ⁿ sign flips when there are ties or zeros and n ≤ 13; otherwise the normal
//!   approximation;
//! - the continuity correction (±½ on R+) is off by default, as in scipy.
//!
//! The reported statistic is min(R+, R−), as scipy's two-sided result.

use serde::Serialize;

use super::check_paired;
use super::special::normal_sf;
use crate::metrics::MetricsError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ZeroMethod {
    #[default]
    Wilcox,
    Pratt,
    Zsplit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WilcoxonMethod {
    #[default]
    Auto,
    Exact,
    Asymptotic,
    /// Exact enumeration of sign flips; only chosen by `Auto`.
    Permutation,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WilcoxonOptions {
    pub zero_method: ZeroMethod,
    pub correction: bool,
    pub method: WilcoxonMethod,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Wilcoxon {
    /// min(R+, R−).
    pub statistic: f64,
    pub r_plus: f64,
    pub r_minus: f64,
    /// Pairs that entered the ranking (all pairs except zeros under `Wilcox`).
    pub n: usize,
    /// The normal deviate, when the normal approximation was used.
    pub z: Option<f64>,
    pub p_value: f64,
    /// The method actually used (`Auto` resolved).
    pub method: WilcoxonMethod,
}

/// Largest sample the exact null distribution is computed for (its table has n(n+1)/2 cells per
/// step).
const EXACT_MAX_N: usize = 1000;

pub fn wilcoxon(a: &[f64], b: &[f64], options: WilcoxonOptions) -> Result<Wilcoxon, MetricsError> {
    const METRIC: &str = "Wilcoxon signed-rank test";
    check_paired(METRIC, a, b, 1)?;
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let n_zero = d.iter().filter(|&&x| x == 0.0).count();
    let ranked: Vec<f64> = match options.zero_method {
        ZeroMethod::Wilcox => d.iter().copied().filter(|&x| x != 0.0).collect(),
        ZeroMethod::Pratt | ZeroMethod::Zsplit => d.clone(),
    };
    let count = ranked.len();
    let (ranks, ties) = average_ranks(&ranked);
    let has_ties = ties.iter().any(|&t| t > 1);
    let zero_half: f64 = if options.zero_method == ZeroMethod::Zsplit {
        ranked.iter().zip(&ranks).filter(|(x, _)| **x == 0.0).map(|(_, r)| r).sum::<f64>() / 2.0
    } else {
        0.0
    };
    let r_plus_of = |positive: &dyn Fn(usize) -> bool| -> f64 {
        ranks.iter().enumerate().filter(|&(i, _)| positive(i)).map(|(_, r)| r).sum::<f64>() + zero_half
    };
    let r_plus = r_plus_of(&|i| ranked[i] > 0.0);
    let r_minus = r_plus_of(&|i| ranked[i] < 0.0);

    let method = match options.method {
        WilcoxonMethod::Auto if d.len() > 50 => WilcoxonMethod::Asymptotic,
        WilcoxonMethod::Auto if !has_ties && n_zero == 0 => WilcoxonMethod::Exact,
        WilcoxonMethod::Auto if d.len() <= 13 => WilcoxonMethod::Permutation,
        WilcoxonMethod::Auto => WilcoxonMethod::Asymptotic,
        chosen => chosen,
    };
    let mut z = None;
    let p_value = match method {
        WilcoxonMethod::Asymptotic => {
            let c = count as f64;
            let mut mean = c * (c + 1.0) * 0.25;
            let mut var = c * (c + 1.0) * (2.0 * c + 1.0);
            let mut tie_groups = ties.clone();
            if options.zero_method == ZeroMethod::Pratt && n_zero > 0 {
                let nz = n_zero as f64;
                mean -= nz * (nz + 1.0) * 0.25;
                var -= nz * (nz + 1.0) * (2.0 * nz + 1.0);
                // Zeros have the smallest |d|, so they are the first tie group; Cureton leaves
                // them out of the tie correction.
                tie_groups[0] = 0;
            }
            let tie_correction: f64 = tie_groups.iter().map(|&t| (t as f64).powi(3) - t as f64).sum();
            let se = ((var - tie_correction / 2.0) / 24.0).sqrt();
            if se > 0.0 {
                let mut deviate = (r_plus - mean) / se;
                // scipy shifts toward zero by sign(z), which is 0 at z = 0 (`f64::signum` is 1).
                if options.correction && deviate != 0.0 {
                    deviate -= deviate.signum() * 0.5 / se;
                }
                z = Some(-deviate.abs());
                (2.0 * normal_sf(deviate.abs())).min(1.0)
            } else {
                // Every difference is zero: no evidence either way.
                1.0
            }
        }
        WilcoxonMethod::Exact => {
            if count > EXACT_MAX_N {
                return Err(MetricsError::Invalid {
                    metric: METRIC,
                    detail: format!("the exact distribution is limited to {EXACT_MAX_N} pairs, got {count}; use the normal approximation"),
                });
            }
            let pmf = signed_rank_pmf(count);
            // Non-integral R+ (ties) is rounded conservatively, as scipy does (gh-19872).
            let cdf = pmf[..=(r_plus.ceil() as usize).min(pmf.len() - 1)].iter().sum::<f64>();
            let sf = pmf[(r_plus.floor() as usize).min(pmf.len() - 1)..].iter().sum::<f64>();
            (2.0 * cdf.min(sf)).clamp(0.0, 1.0)
        }
        // `Auto` was resolved above.
        WilcoxonMethod::Permutation | WilcoxonMethod::Auto => {
            if d.len() > 20 {
                return Err(MetricsError::Invalid {
                    metric: METRIC,
                    detail: format!("sign-flip enumeration is limited to 20 pairs, got {}", d.len()),
                });
            }
            // Flipping the sign of each ranked difference; zeros stay zero and ranks stay put.
            let gamma = (r_plus * f64::EPSILON * 100.0).abs();
            let total = 1usize << count;
            let (mut less, mut greater) = (0usize, 0usize);
            for mask in 0..total {
                let stat = r_plus_of(&|i| (ranked[i] > 0.0) != (mask >> i & 1 == 1) && ranked[i] != 0.0);
                less += usize::from(stat <= r_plus + gamma);
                greater += usize::from(stat >= r_plus - gamma);
            }
            (2.0 * (less.min(greater) as f64 / total as f64)).min(1.0)
        }
    };
    Ok(Wilcoxon { statistic: r_plus.min(r_minus), r_plus, r_minus, n: count, z, p_value, method })
}

/// Average ranks (1-based) of |x|, and the sizes of the tie groups in ascending order of |x|.
fn average_ranks(x: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&i, &j| x[i].abs().total_cmp(&x[j].abs()));
    let mut ranks = vec![0.0; x.len()];
    let mut ties = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && x[order[end]].abs() == x[order[start]].abs() {
            end += 1;
        }
        let rank = (start + end + 1) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        ties.push(end - start);
        start = end;
    }
    (ranks, ties)
}

/// Null distribution of R+ for n untied, non-zero differences: P(R+ = k), k = 0..n(n+1)/2
/// (the recursion of scipy's `_get_wilcoxon_distr`).
fn signed_rank_pmf(n: usize) -> Vec<f64> {
    let mut pmf = vec![1.0];
    for k in 1..=n {
        let mut next = vec![0.0; k * (k + 1) / 2 + 1];
        let shift = next.len() - pmf.len();
        for (i, p) in pmf.iter().enumerate() {
            next[i] += p * 0.5;
            next[shift + i] += p * 0.5;
        }
        pmf = next;
    }
    pmf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_average_ties() {
        let (ranks, ties) = average_ranks(&[3.0, -1.0, 1.0, 2.0]);
        assert_eq!(ranks, [4.0, 1.5, 1.5, 3.0]);
        assert_eq!(ties, [2, 1, 1]);
    }

    #[test]
    fn null_distribution_sums_to_one_and_is_symmetric() {
        let pmf = signed_rank_pmf(5);
        assert_eq!(pmf.len(), 16);
        assert!((pmf.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        // n = 3: subsets of {1,2,3} by sum: 0,1,2,{3,1+2},{1+3},{2+3},{1+2+3} → 1,1,1,2,1,1,1 / 8.
        assert_eq!(signed_rank_pmf(3), [0.125, 0.125, 0.125, 0.25, 0.125, 0.125, 0.125]);
        assert_eq!(pmf[0], pmf[15]);
    }

    #[test]
    fn continuity_correction_leaves_a_centred_statistic_alone() {
        // d = ±1..±20 alternating in sign around a centred R+: R+ = R− = 105, z = 0, and scipy's
        // p is 1 with or without correction.
        let d: Vec<f64> =
            (1..=20).map(|i| if i % 4 == 1 || i % 4 == 0 { f64::from(i) } else { -f64::from(i) }).collect();
        let zeros = vec![0.0; 20];
        let options =
            WilcoxonOptions { correction: true, method: WilcoxonMethod::Asymptotic, ..Default::default() };
        let r = wilcoxon(&d, &zeros, options).unwrap();
        assert_eq!((r.r_plus, r.r_minus, r.p_value), (105.0, 105.0, 1.0));
    }

    #[test]
    fn all_zero_differences_are_not_evidence() {
        let r = wilcoxon(&[1.0; 60], &[1.0; 60], WilcoxonOptions::default()).unwrap();
        assert_eq!((r.p_value, r.n, r.statistic), (1.0, 0, 0.0));
    }
}

//! Inter-annotator agreement:
//!
//! - Cohen's kappa for two raters, unweighted or with linear / quadratic disagreement weights
//!   (Cohen 1960, 1968; computed as `sklearn.metrics.cohen_kappa_score`, with categories ordered
//!   by their natural order for the weights);
//! - Fleiss' kappa for a fixed number of raters per item (Fleiss 1971), from an items × categories
//!   table of rater counts;
//! - Krippendorff's alpha for any number of coders with missing values, at the nominal, ordinal,
//!   interval or ratio level (Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability",
//!   via the coincidence matrix; units with fewer than two values are not pairable and ignored).

use std::collections::BTreeSet;

use serde::Serialize;

use crate::metrics::{check_at_least, check_same_len, MetricsError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KappaWeights {
    #[default]
    None,
    Linear,
    Quadratic,
}

/// Cohen's kappa of two raters' labels for the same items: κ = 1 − Σ w·O / Σ w·E with O the
/// observed and E the chance-expected confusion proportions. Undefined (an error) when chance
/// disagreement is zero, e.g. both raters always give the same single label.
pub fn cohen_kappa<T: Ord + Clone>(
    rater_a: &[T],
    rater_b: &[T],
    weights: KappaWeights,
) -> Result<f64, MetricsError> {
    const METRIC: &str = "Cohen's kappa";
    check_same_len(METRIC, "rater A labels", rater_a.len(), "rater B labels", rater_b.len())?;
    check_at_least(METRIC, 1, rater_a.len())?;
    let categories: Vec<T> =
        rater_a.iter().chain(rater_b).cloned().collect::<BTreeSet<T>>().into_iter().collect();
    let k = categories.len();
    let index = |x: &T| categories.binary_search(x).unwrap_or_default();
    let mut observed = vec![0.0; k * k];
    for (x, y) in rater_a.iter().zip(rater_b) {
        observed[index(x) * k + index(y)] += 1.0;
    }
    let n = rater_a.len() as f64;
    let rows: Vec<f64> = (0..k).map(|i| (0..k).map(|j| observed[i * k + j]).sum()).collect();
    let cols: Vec<f64> = (0..k).map(|j| (0..k).map(|i| observed[i * k + j]).sum()).collect();
    let weight = |i: usize, j: usize| -> f64 {
        let distance = i.abs_diff(j) as f64;
        match weights {
            KappaWeights::None => f64::from(u8::from(i != j)),
            KappaWeights::Linear => distance,
            KappaWeights::Quadratic => distance * distance,
        }
    };
    let (mut disagree_observed, mut disagree_expected) = (0.0, 0.0);
    for i in 0..k {
        for j in 0..k {
            disagree_observed += weight(i, j) * observed[i * k + j] / n;
            disagree_expected += weight(i, j) * rows[i] * cols[j] / (n * n);
        }
    }
    if disagree_expected == 0.0 {
        return Err(MetricsError::Invalid {
            metric: METRIC,
            detail: "undefined: chance disagreement is zero (both raters used a single label)".into(),
        });
    }
    Ok(1.0 - disagree_observed / disagree_expected)
}

/// Fleiss' kappa from `counts[item][category]`, the number of raters who put the item in the
/// category; every item must have the same number (≥ 2) of ratings.
pub fn fleiss_kappa<R: AsRef<[u32]>>(counts: &[R]) -> Result<f64, MetricsError> {
    const METRIC: &str = "Fleiss' kappa";
    check_at_least(METRIC, 1, counts.len())?;
    let k = counts[0].as_ref().len();
    let raters: u32 = counts[0].as_ref().iter().sum();
    if raters < 2 {
        return Err(MetricsError::BadItem {
            metric: METRIC,
            index: 0,
            detail: format!("needs at least 2 ratings, has {raters}"),
        });
    }
    let mut category_totals = vec![0.0; k];
    let mut mean_agreement = 0.0;
    let r = f64::from(raters);
    for (index, row) in counts.iter().enumerate() {
        let row = row.as_ref();
        if row.len() != k {
            return Err(MetricsError::BadItem {
                metric: METRIC,
                index,
                detail: format!("has {} categories, item 0 has {k}", row.len()),
            });
        }
        let sum: u32 = row.iter().sum();
        if sum != raters {
            return Err(MetricsError::BadItem {
                metric: METRIC,
                index,
                detail: format!(
                    "has {sum} ratings, item 0 has {raters}; Fleiss' kappa needs the same number per item"
                ),
            });
        }
        let pairs: f64 = row.iter().map(|&c| f64::from(c) * (f64::from(c) - 1.0)).sum();
        mean_agreement += pairs / (r * (r - 1.0));
        for (total, &c) in category_totals.iter_mut().zip(row) {
            *total += f64::from(c);
        }
    }
    let n = counts.len() as f64;
    mean_agreement /= n;
    let chance: f64 = category_totals.iter().map(|t| (t / (n * r)).powi(2)).sum();
    if chance >= 1.0 {
        return Err(MetricsError::Invalid {
            metric: METRIC,
            detail: "undefined: every rating is in one category".into(),
        });
    }
    Ok((mean_agreement - chance) / (1.0 - chance))
}

/// Level of measurement for Krippendorff's alpha: which difference function δ² it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Nominal,
    Ordinal,
    Interval,
    Ratio,
}

/// Krippendorff's alpha of `data[coder][unit]` (`None` = missing): α = 1 − D_o / D_e over the
/// coincidence matrix of pairable values. Undefined (an error) with fewer than two pairable
/// values or when only one distinct value occurs.
pub fn krippendorff_alpha<C: AsRef<[Option<f64>]>>(data: &[C], level: Level) -> Result<f64, MetricsError> {
    const METRIC: &str = "Krippendorff's alpha";
    check_at_least(METRIC, 2, data.len())?;
    let units = data[0].as_ref().len();
    let mut values: Vec<f64> = Vec::new();
    for (index, coder) in data.iter().enumerate() {
        let coder = coder.as_ref();
        if coder.len() != units {
            return Err(MetricsError::BadItem {
                metric: METRIC,
                index,
                detail: format!("coder has {} units, coder 0 has {units}", coder.len()),
            });
        }
        for value in coder.iter().flatten() {
            if !value.is_finite() {
                return Err(MetricsError::BadItem {
                    metric: METRIC,
                    index,
                    detail: format!("value {value} is not a finite number"),
                });
            }
            values.push(*value);
        }
    }
    values.sort_unstable_by(f64::total_cmp);
    values.dedup();
    let v = values.len();
    let index = |x: f64| values.partition_point(|&y| y < x);

    // Coincidences o_ck: each unit with m ≥ 2 values adds n_uc·(n_uk − [c = k]) / (m − 1).
    let mut coincidence = vec![0.0; v * v];
    let mut in_unit = vec![0.0f64; v];
    let mut present = Vec::new();
    for unit in 0..units {
        present.clear();
        for coder in data {
            if let Some(x) = coder.as_ref()[unit] {
                present.push(index(x));
            }
        }
        let m = present.len();
        if m < 2 {
            continue;
        }
        for &c in &present {
            in_unit[c] += 1.0;
        }
        let distinct: BTreeSet<usize> = present.iter().copied().collect();
        for &c in &distinct {
            for &k in &distinct {
                let pairs = in_unit[c] * (in_unit[k] - f64::from(u8::from(c == k)));
                coincidence[c * v + k] += pairs / (m - 1) as f64;
            }
        }
        for &c in &distinct {
            in_unit[c] = 0.0;
        }
    }
    let marginals: Vec<f64> = (0..v).map(|c| (0..v).map(|k| coincidence[c * v + k]).sum()).collect();
    let n: f64 = marginals.iter().sum();
    if n < 2.0 {
        return Err(MetricsError::Invalid {
            metric: METRIC,
            detail: "undefined: fewer than two pairable values".into(),
        });
    }
    let delta2 = |c: usize, k: usize| -> f64 {
        match level {
            Level::Nominal => f64::from(u8::from(c != k)),
            Level::Ordinal => {
                let (lo, hi) = (c.min(k), c.max(k));
                let between: f64 = marginals[lo..=hi].iter().sum();
                (between - (marginals[c] + marginals[k]) / 2.0).powi(2)
            }
            Level::Interval => (values[c] - values[k]).powi(2),
            Level::Ratio => {
                let sum = values[c] + values[k];
                if sum == 0.0 {
                    0.0
                } else {
                    ((values[c] - values[k]) / sum).powi(2)
                }
            }
        }
    };
    let (mut observed, mut expected) = (0.0, 0.0);
    for c in 0..v {
        for k in 0..v {
            let d = delta2(c, k);
            observed += coincidence[c * v + k] * d;
            expected += marginals[c] * marginals[k] * d;
        }
    }
    expected /= n - 1.0;
    if expected == 0.0 {
        return Err(MetricsError::Invalid {
            metric: METRIC,
            detail: "undefined: only one distinct value among pairable units".into(),
        });
    }
    Ok(1.0 - observed / expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", §E: 4 coders, 12 units,
    /// values 1–5 with missing data (unit 12 has a single value and is not pairable).
    fn krippendorff_2011() -> Vec<Vec<Option<f64>>> {
        let rows: [[i8; 12]; 4] = [
            [1, 2, 3, 3, 2, 1, 4, 1, 2, 0, 0, 0],
            [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, 0, 3],
            [0, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, 0],
            [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, 0],
        ];
        rows.iter().map(|r| r.iter().map(|&v| (v != 0).then_some(f64::from(v))).collect()).collect()
    }

    #[test]
    fn krippendorff_alpha_matches_the_published_example() {
        // Published: nominal 0.743, ordinal 0.815, interval 0.849, ratio 0.797. Full precision
        // from the `krippendorff` Python package 0.9.0 on the same data.
        let data = krippendorff_2011();
        let cases = [
            (Level::Nominal, 0.743421052631579),
            (Level::Ordinal, 0.8153875037548814),
            (Level::Interval, 0.8491071428571428),
            (Level::Ratio, 0.7974027747116121),
        ];
        for (level, expected) in cases {
            let alpha = krippendorff_alpha(&data, level).unwrap();
            assert!((alpha - expected).abs() < 1e-12, "{level:?}: {alpha} vs {expected}");
        }
    }

    #[test]
    fn krippendorff_alpha_rejects_undefined_and_ragged_data() {
        let one_value = vec![vec![Some(1.0), Some(1.0)], vec![Some(1.0), Some(1.0)]];
        assert!(krippendorff_alpha(&one_value, Level::Nominal).is_err());
        let unpairable = vec![vec![Some(1.0), None], vec![None, Some(2.0)]];
        assert!(krippendorff_alpha(&unpairable, Level::Nominal).is_err());
        let ragged = vec![vec![Some(1.0), Some(2.0)], vec![Some(1.0)]];
        let err = krippendorff_alpha(&ragged, Level::Nominal).unwrap_err().to_string();
        assert!(err.contains("item 1"), "{err}");
    }

    #[test]
    fn cohen_kappa_wikipedia_example() {
        // en.wikipedia.org/wiki/Cohen's_kappa, "Simple example": 50 proposals, both Yes 20,
        // A Yes / B No 5, A No / B Yes 10, both No 15: p_o = 0.7, p_e = 0.5, κ = 0.4.
        let a: Vec<&str> = [vec!["yes"; 25], vec!["no"; 25]].concat();
        let b: Vec<&str> = [vec!["yes"; 20], vec!["no"; 5], vec!["yes"; 10], vec!["no"; 15]].concat();
        let kappa = cohen_kappa(&a, &b, KappaWeights::None).unwrap();
        assert!((kappa - 0.4).abs() < 1e-12, "{kappa}");
    }

    #[test]
    fn weighted_cohen_kappa_matches_sklearn() {
        // sklearn.metrics.cohen_kappa_score 1.x on these Likert ratings.
        let x = [1, 2, 3, 4, 5, 3, 2, 4, 5, 1, 2, 3];
        let y = [1, 3, 3, 5, 4, 3, 1, 4, 5, 2, 2, 2];
        let cases = [
            (KappaWeights::None, 0.368421052631579),
            (KappaWeights::Linear, 0.6635514018691588),
            (KappaWeights::Quadratic, 0.8565737051792829),
        ];
        for (weights, expected) in cases {
            let kappa = cohen_kappa(&x, &y, weights).unwrap();
            assert!((kappa - expected).abs() < 1e-12, "{weights:?}: {kappa}");
        }
        assert!(cohen_kappa(&[1, 1], &[1, 1], KappaWeights::None).is_err());
        assert!(cohen_kappa(&[1], &[1, 2], KappaWeights::None).is_err());
    }

    #[test]
    fn fleiss_kappa_wikipedia_example() {
        // en.wikipedia.org/wiki/Fleiss'_kappa, "Worked example" (14 raters, 10 subjects,
        // 5 categories): P̄ = 0.378, P̄e = 0.213, κ = 0.210; full precision from
        // statsmodels.stats.inter_rater.fleiss_kappa.
        let table: [[u32; 5]; 10] = [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ];
        let kappa = fleiss_kappa(&table).unwrap();
        assert!((kappa - 0.20993070442195522).abs() < 1e-12, "{kappa}");
        let uneven = [vec![1, 1], vec![2, 1]];
        let err = fleiss_kappa(&uneven).unwrap_err().to_string();
        assert!(err.contains("item 1") && err.contains("3 ratings"), "{err}");
    }
}

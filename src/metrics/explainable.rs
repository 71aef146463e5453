//! Feature-level metrics of explanations, from the features each one mentions (as ids into a
//! feature vocabulary F; finding them in the text is the grounding module's job):
//!
//! - FMR, feature matching ratio: share of explanations that mention their ground-truth feature.
//! - FCR, feature coverage ratio: distinct features mentioned across the corpus / |F|.
//! - DIV, feature diversity: mean over all pairs of explanations of |F̂ ∩ F̂'| (lower is more
//!   diverse).
//!
//! Definitions follow PETER (Li et al., ACL 2021; `utils.py`: `feature_matching_ratio`,
//! `feature_coverage_ratio`, `feature_diversity`), where each explanation's mentions form a *set*.
//! DIV is computed from per-feature counts in O(N·F̂) instead of PETER's O(N²) loop: a feature
//! mentioned by c_f explanations is shared by C(c_f, 2) pairs, so
//! Σ_{pairs} |F̂ ∩ F̂'| = Σ_f C(c_f, 2) and DIV = Σ_f C(c_f, 2) / C(N, 2).
//!
//! [`GroundingRates`] turns per-explanation grounding counts (grounded in item and history,
//! in the item only, invented) into corpus rates.

use serde::Serialize;

use super::hash::FxMap;
use super::{check_at_least, check_same_len, MetricsError};

/// FMR: share of explanations whose mentioned features include one of its ground-truth features.
/// With one ground-truth feature per explanation (PETER's setting) this is exactly PETER's FMR;
/// an explanation with no ground-truth feature counts as a miss, as PETER's `<unk>` feature does.
pub fn feature_matching_ratio<M, G>(mentioned: &[M], ground_truth: &[G]) -> Result<f64, MetricsError>
where
    M: AsRef<[u32]>,
    G: AsRef<[u32]>,
{
    check_same_len("FMR", "explanations", mentioned.len(), "ground-truth feature sets", ground_truth.len())?;
    check_at_least("FMR", 1, mentioned.len())?;
    let hits = mentioned
        .iter()
        .zip(ground_truth)
        .filter(|(m, g)| g.as_ref().iter().any(|f| m.as_ref().contains(f)))
        .count();
    Ok(hits as f64 / mentioned.len() as f64)
}

/// FCR: distinct feature ids mentioned anywhere / `num_features` (= |F|). Every id must be below
/// `num_features`.
pub fn feature_coverage_ratio<M: AsRef<[u32]>>(
    mentioned: &[M],
    num_features: usize,
) -> Result<f64, MetricsError> {
    if num_features == 0 {
        return Err(MetricsError::Invalid {
            metric: "FCR",
            detail: "the feature vocabulary is empty".into(),
        });
    }
    let mut covered = vec![false; num_features];
    for (index, features) in mentioned.iter().enumerate() {
        for &f in features.as_ref() {
            let slot = covered.get_mut(f as usize).ok_or_else(|| MetricsError::BadItem {
                metric: "FCR",
                index,
                detail: format!("feature id {f} is outside the vocabulary of {num_features} features"),
            })?;
            *slot = true;
        }
    }
    Ok(covered.iter().filter(|&&c| c).count() as f64 / num_features as f64)
}

/// DIV: mean |F̂ ∩ F̂'| over all unordered pairs of explanations, from feature counts (see the
/// module documentation). Repeated ids within one explanation count once. Needs N ≥ 2.
pub fn feature_diversity<M: AsRef<[u32]>>(mentioned: &[M]) -> Result<f64, MetricsError> {
    check_at_least("DIV", 2, mentioned.len())?;
    let mut counts: FxMap<u32, u64> = FxMap::default();
    let mut set = Vec::new();
    for features in mentioned {
        set.clear();
        set.extend_from_slice(features.as_ref());
        set.sort_unstable();
        set.dedup();
        for &f in &set {
            *counts.entry(f).or_insert(0) += 1;
        }
    }
    let shared_pairs: u64 = counts.values().map(|&c| c * (c - 1) / 2).sum();
    let n = mentioned.len() as u64;
    Ok(shared_pairs as f64 / (n * (n - 1) / 2) as f64)
}

/// How the features one explanation mentions are grounded: in both the recommended item and the
/// user's history, in the item only, or in neither (invented).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GroundingCounts {
    pub grounded: usize,
    pub item_only: usize,
    pub invented: usize,
}

impl GroundingCounts {
    pub fn mentioned(&self) -> usize {
        self.grounded + self.item_only + self.invented
    }
}

/// Corpus grounding rates. Rates over mentions are micro-averaged (every mention weighs the
/// same); `explanations_with_invented` is per explanation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GroundingRates {
    pub explanations: usize,
    pub mentions: usize,
    /// Invented mentions / all mentions (0 when nothing is mentioned).
    pub invented_rate: f64,
    /// Mentions grounded in both the item and the history / all mentions: the precision of the
    /// explanations' personalised feature claims (0 when nothing is mentioned).
    pub grounded_precision: f64,
    /// Mentions true of the item, grounded or item-only / all mentions (1 − invented rate when
    /// anything is mentioned).
    pub item_precision: f64,
    /// Share of explanations with at least one invented feature.
    pub explanations_with_invented: f64,
    /// Share of explanations that mention no feature at all.
    pub explanations_without_features: f64,
}

impl GroundingRates {
    pub fn compute(per_explanation: &[GroundingCounts]) -> Result<GroundingRates, MetricsError> {
        check_at_least("grounding rates", 1, per_explanation.len())?;
        let total = per_explanation.iter().fold(GroundingCounts::default(), |a, c| GroundingCounts {
            grounded: a.grounded + c.grounded,
            item_only: a.item_only + c.item_only,
            invented: a.invented + c.invented,
        });
        let mentions = total.mentioned();
        let share = |x: usize| if mentions == 0 { 0.0 } else { x as f64 / mentions as f64 };
        let n = per_explanation.len() as f64;
        Ok(GroundingRates {
            explanations: per_explanation.len(),
            mentions,
            invented_rate: share(total.invented),
            grounded_precision: share(total.grounded),
            item_precision: share(total.grounded + total.item_only),
            explanations_with_invented: per_explanation.iter().filter(|c| c.invented > 0).count() as f64 / n,
            explanations_without_features: per_explanation.iter().filter(|c| c.mentioned() == 0).count()
                as f64
                / n,
        })
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// PETER's `feature_diversity`: the O(N²) loop over pairs of feature sets.
    fn pairwise_div(sets: &[Vec<u32>]) -> f64 {
        let mut total = 0usize;
        for i in 0..sets.len() {
            for j in i + 1..sets.len() {
                total += sets[i].iter().filter(|f| sets[j].contains(f)).count();
            }
        }
        total as f64 / (sets.len() * (sets.len() - 1) / 2) as f64
    }

    #[test]
    fn div_on_a_small_set_by_hand() {
        // {1,2}, {2,3}, {2}, {}: pairs share |{2}|=1, 1, 0, 1, 0, 0 → 3 over C(4,2) = 6 → 0.5.
        // Counts: c_1 = 1, c_2 = 3, c_3 = 1 → C(3,2) = 3 → 3/6.
        let sets = [vec![1, 2], vec![2, 3], vec![2], vec![]];
        assert_eq!(feature_diversity(&sets).unwrap(), 0.5);
        assert_eq!(feature_diversity(&[vec![1, 1, 2], vec![1, 2, 2]]).unwrap(), 2.0);
        assert!(feature_diversity(&sets[..1]).is_err());
    }

    #[test]
    fn div_from_counts_equals_the_pairwise_loop() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for _ in 0..50 {
            let n = rng.random_range(2..40);
            let sets: Vec<Vec<u32>> = (0..n)
                .map(|_| {
                    let mut s: Vec<u32> =
                        (0..rng.random_range(0..6)).map(|_| rng.random_range(0..12)).collect();
                    s.sort_unstable();
                    s.dedup();
                    s
                })
                .collect();
            let fast = feature_diversity(&sets).unwrap();
            let slow = pairwise_div(&sets);
            assert!((fast - slow).abs() < 1e-12, "{fast} vs {slow}");
        }
    }

    #[test]
    fn fmr_and_fcr_by_hand() {
        let mentioned = [vec![0, 3], vec![1], vec![], vec![3]];
        let truth = [vec![3], vec![2], vec![1], vec![]];
        // Hits: explanation 0 only (3 ∈ {0,3}); 1 of 4.
        assert_eq!(feature_matching_ratio(&mentioned, &truth).unwrap(), 0.25);
        // Distinct mentioned {0, 1, 3} of |F| = 6.
        assert_eq!(feature_coverage_ratio(&mentioned, 6).unwrap(), 0.5);
        let err = feature_coverage_ratio(&mentioned, 3).unwrap_err().to_string();
        assert!(err.contains("item 0") && err.contains("feature id 3"), "{err}");
        assert!(feature_matching_ratio(&mentioned, &truth[..2]).is_err());
    }

    #[test]
    fn grounding_rates_by_hand() {
        let counts = [
            GroundingCounts { grounded: 2, item_only: 1, invented: 1 },
            GroundingCounts { grounded: 1, item_only: 0, invented: 0 },
            GroundingCounts::default(),
        ];
        let r = GroundingRates::compute(&counts).unwrap();
        assert_eq!(r.mentions, 5);
        assert_eq!(r.invented_rate, 0.2);
        assert_eq!(r.grounded_precision, 0.6);
        assert_eq!(r.item_precision, 0.8);
        assert_eq!(r.explanations_with_invented, 1.0 / 3.0);
        assert_eq!(r.explanations_without_features, 1.0 / 3.0);
        assert!(GroundingRates::compute(&[]).is_err());
    }
}

//! Full-ranking evaluation: the held-out item of every user is ranked against all items outside
//! the user's train history (no sampled negatives), giving HR@K, NDCG@K and MRR.

use rayon::prelude::*;
use serde::Serialize;

use super::{Ranker, TrainMatrix};
use crate::data::{Dataset, ItemIdx, Part, Split, UserIdx};

/// Mean metrics over the evaluated users. A held-out item the ranker cannot recommend (unscored,
/// or already in the user's train history) counts as a miss with reciprocal rank 0.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RankMetrics {
    pub k: usize,
    /// HR@K: share of users whose held-out item is in their top K.
    pub hr: f64,
    /// NDCG@K with one relevant item: 1 / log2(rank + 1) inside the top K, else 0.
    pub ndcg: f64,
    /// Mean reciprocal rank over the full ranking (not cut at K).
    pub mrr: f64,
    pub users: usize,
}

/// (user, held-out item) for every user that has a `part` item.
pub fn held_out(dataset: &Dataset, split: &Split, part: Part) -> Vec<(UserIdx, ItemIdx)> {
    (0..dataset.num_users() as UserIdx)
        .filter_map(|u| split.held_out(dataset, u, part).map(|i| (u, i.item)))
        .collect()
}

/// The 1-based rank of `target` among items outside `exclude` (sorted), in the order
/// [`super::top_k`] returns: higher score first, ties to the lower index. `None` when the target
/// cannot be recommended (no finite score, or in the train history); it then counts as a miss.
pub fn target_rank(scores: &[f32], exclude: &[ItemIdx], target: ItemIdx) -> Option<usize> {
    let t = scores[target as usize];
    if !t.is_finite() || exclude.binary_search(&target).is_ok() {
        return None;
    }
    let ahead = |item: usize, s: f32| s > t || (s == t && item < target as usize);
    let above = scores.iter().enumerate().filter(|&(item, &s)| ahead(item, s)).count();
    let excluded_above = exclude.iter().filter(|&&e| ahead(e as usize, scores[e as usize])).count();
    Some(above - excluded_above + 1)
}

/// Hit, NDCG and reciprocal rank of one case.
pub fn case_metrics(rank: Option<usize>, k: usize) -> (f64, f64, f64) {
    match rank {
        Some(r) if r <= k => (1.0, 1.0 / (r as f64 + 1.0).log2(), 1.0 / r as f64),
        Some(r) => (0.0, 0.0, 1.0 / r as f64),
        None => (0.0, 0.0, 0.0),
    }
}

/// Evaluates any scoring function over `cases`. Users are scored in parallel; per-user results
/// are summed in a fixed order, so the numbers do not depend on the thread count.
pub fn evaluate_with(
    train: &TrainMatrix,
    cases: &[(UserIdx, ItemIdx)],
    k: usize,
    score: impl Fn(UserIdx, &mut [f32]) + Sync,
) -> RankMetrics {
    let per_case: Vec<(f64, f64, f64)> = cases
        .par_iter()
        .map_init(
            || vec![0.0f32; train.num_items()],
            |scores, &(user, target)| {
                score(user, scores);
                case_metrics(target_rank(scores, train.items_of(user), target), k)
            },
        )
        .collect();
    let n = per_case.len().max(1) as f64;
    let (hr, ndcg, mrr) =
        per_case.iter().fold((0.0, 0.0, 0.0), |acc, c| (acc.0 + c.0, acc.1 + c.1, acc.2 + c.2));
    RankMetrics { k, hr: hr / n, ndcg: ndcg / n, mrr: mrr / n, users: per_case.len() }
}

/// Full-ranking metrics of `ranker` on the `part` items of `split`.
pub fn evaluate(
    ranker: &dyn Ranker,
    dataset: &Dataset,
    split: &Split,
    train: &TrainMatrix,
    part: Part,
    k: usize,
) -> RankMetrics {
    evaluate_with(train, &held_out(dataset, split, part), k, |u, s| ranker.score_items(u, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn rank_ignores_excluded_items_and_breaks_ties_by_index() {
        let scores = [0.9, 0.5, 0.7, 0.5, 0.1];
        assert_eq!(target_rank(&scores, &[], 3), Some(4));
        // Item 0 (0.9) is in train, so items 2 and 1 are the only ones ahead of 3.
        assert_eq!(target_rank(&scores, &[0], 3), Some(3));
        assert_eq!(target_rank(&scores, &[0], 1), Some(2));
        assert_eq!(target_rank(&scores, &[0, 2], 4), Some(3));
        assert_eq!(target_rank(&scores, &[3], 3), None);
        assert_eq!(target_rank(&[f32::NEG_INFINITY, 1.0], &[], 0), None);
    }

    #[test]
    fn case_metrics_by_hand() {
        let (hr, ndcg, rr) = case_metrics(Some(1), 10);
        assert!(close(hr, 1.0) && close(ndcg, 1.0) && close(rr, 1.0));
        let (_, ndcg, rr) = case_metrics(Some(3), 10);
        assert!(close(ndcg, 0.5) && close(rr, 1.0 / 3.0));
        let (_, ndcg, _) = case_metrics(Some(2), 10);
        assert!(close(ndcg, 1.0 / 3f64.log2()));
        let (hr, ndcg, rr) = case_metrics(Some(11), 10);
        assert!(close(hr, 0.0) && close(ndcg, 0.0) && close(rr, 1.0 / 11.0));
        assert_eq!(case_metrics(None, 10), (0.0, 0.0, 0.0));
    }

    /// Three users, five items, fixed scores: user 0's target ranks 1st, user 1's 3rd (after its
    /// train item is removed), user 2's 4th, which is outside K = 3.
    #[test]
    fn means_over_users_by_hand() {
        let train = TrainMatrix::from_rows(5, vec![vec![4], vec![0], vec![]]);
        let scores = [0.9f32, 0.8, 0.7, 0.6, 0.5];
        let cases = [(0, 0), (1, 3), (2, 3)];
        let m = evaluate_with(&train, &cases, 3, |_, s| s.copy_from_slice(&scores));
        assert_eq!(m.users, 3);
        assert!(close(m.hr, 2.0 / 3.0));
        assert!(close(m.ndcg, (1.0 + 0.5) / 3.0));
        assert!(close(m.mrr, (1.0 + 1.0 / 3.0 + 0.25) / 3.0));
    }
}

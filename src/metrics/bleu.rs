//! Corpus BLEU as PETER reports it: `compute_bleu` of tensorflow/nmt (`nmt/scripts/bleu.py`,
//! copied into PETER as `bleu.py` and called unsmoothed with `max_order` 1 and 4).
//!
//! Clipped n-gram matches and hypothesis n-gram totals are summed over the whole corpus; a
//! hypothesis n-gram is clipped by its largest count in any one reference. BLEU is the geometric
//! mean of the per-order precisions (0 when any precision is 0: no smoothing) times the brevity
//! penalty `BP = exp(1 - r/c)` when `c < r`, else 1, where `c` is the total hypothesis length and
//! `r` the sum over hypotheses of the length of their *shortest* reference (tensorflow/nmt's
//! choice; Papineni et al. use the closest). Reported ×100.

use std::hash::Hash;

use rayon::prelude::*;
use serde::Serialize;

use super::hash::FxMap;
use super::{check_at_least, check_same_len, MetricsError};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bleu {
    /// BLEU ×100.
    pub score: f64,
    /// Modified n-gram precision per order (1-grams first), as fractions.
    pub precisions: Vec<f64>,
    pub brevity_penalty: f64,
    /// Hypothesis length over reference length (`c / r`).
    pub length_ratio: f64,
    pub hypothesis_len: usize,
    pub reference_len: usize,
}

impl Bleu {
    /// BLEU up to `order`-grams (×100) from the same counts: the per-order counts and the brevity
    /// penalty do not depend on the maximum order, so BLEU-1 of a BLEU-4 run equals a BLEU-1 run.
    /// `None` when `order` is 0 or above the order this was computed with.
    pub fn cumulative(&self, order: usize) -> Option<f64> {
        let precisions = self.precisions.get(..order).filter(|p| !p.is_empty())?;
        let geo_mean = if precisions.iter().all(|&p| p > 0.0) {
            (precisions.iter().map(|p| p.ln()).sum::<f64>() / order as f64).exp()
        } else {
            0.0
        };
        Some(geo_mean * self.brevity_penalty * 100.0)
    }
}

/// Corpus BLEU up to `max_order`-grams of `hypotheses[i]` against `references[i]` (one or more
/// token sequences each). Tokens can be anything comparable: interned ids or strings. Sentences
/// are counted in parallel.
///
/// Edge cases the reference leaves to a division by zero: when every hypothesis is empty the score
/// is 0 and `BP` is reported as 0; when every reference is empty `BP` is 1.
pub fn corpus_bleu<T, H, R, S>(
    hypotheses: &[H],
    references: &[R],
    max_order: usize,
) -> Result<Bleu, MetricsError>
where
    T: Eq + Hash + Sync,
    H: AsRef<[T]> + Sync,
    R: AsRef<[S]> + Sync,
    S: AsRef<[T]>,
{
    const METRIC: &str = "BLEU";
    check_same_len(METRIC, "hypotheses", hypotheses.len(), "references", references.len())?;
    check_at_least(METRIC, 1, hypotheses.len())?;
    if max_order == 0 {
        return Err(MetricsError::Invalid { metric: METRIC, detail: "max_order must be at least 1".into() });
    }
    if let Some(index) = references.iter().position(|r| r.as_ref().is_empty()) {
        return Err(MetricsError::BadItem {
            metric: METRIC,
            index,
            detail: "no reference to compare the hypothesis with".into(),
        });
    }
    let counts = hypotheses
        .par_iter()
        .zip(references.par_iter())
        .fold(
            || (Counts::new(max_order), Scratch::default()),
            |(mut counts, mut scratch), (hyp, refs)| {
                counts.add(hyp.as_ref(), refs.as_ref(), &mut scratch);
                (counts, scratch)
            },
        )
        .map(|(counts, _)| counts)
        .reduce(|| Counts::new(max_order), Counts::merge);

    let precisions: Vec<f64> = counts
        .matches
        .iter()
        .zip(&counts.possible)
        .map(|(&m, &p)| if p > 0 { m as f64 / p as f64 } else { 0.0 })
        .collect();
    let (hypothesis_len, reference_len) = (counts.hypothesis_len, counts.reference_len);
    let length_ratio =
        if reference_len == 0 { f64::INFINITY } else { hypothesis_len as f64 / reference_len as f64 };
    let brevity_penalty = if length_ratio > 1.0 {
        1.0
    } else if hypothesis_len == 0 {
        0.0
    } else {
        (1.0 - 1.0 / length_ratio).exp()
    };
    let mut bleu =
        Bleu { score: 0.0, precisions, brevity_penalty, length_ratio, hypothesis_len, reference_len };
    bleu.score = bleu.cumulative(max_order).unwrap_or(0.0);
    Ok(bleu)
}

/// Corpus sums of clipped matches and hypothesis n-grams per order, and of lengths.
struct Counts {
    matches: Vec<u64>,
    possible: Vec<u64>,
    hypothesis_len: usize,
    reference_len: usize,
}

/// Per-thread n-gram tables, reused from sentence to sentence.
struct Scratch<'a, T> {
    hyp: FxMap<&'a [T], u32>,
    ref_max: FxMap<&'a [T], u32>,
    one_ref: FxMap<&'a [T], u32>,
}

impl<T> Default for Scratch<'_, T> {
    fn default() -> Self {
        Scratch { hyp: FxMap::default(), ref_max: FxMap::default(), one_ref: FxMap::default() }
    }
}

impl Counts {
    fn new(max_order: usize) -> Counts {
        Counts {
            matches: vec![0; max_order],
            possible: vec![0; max_order],
            hypothesis_len: 0,
            reference_len: 0,
        }
    }

    fn add<'a, T: Eq + Hash, S: AsRef<[T]>>(
        &mut self,
        hyp: &'a [T],
        refs: &'a [S],
        scratch: &mut Scratch<'a, T>,
    ) {
        let max_order = self.matches.len();
        self.reference_len += refs.iter().map(|r| r.as_ref().len()).min().unwrap_or(0);
        self.hypothesis_len += hyp.len();
        if let [only] = refs {
            // One reference (the usual case): its counts are the clipping counts.
            count_ngrams(only.as_ref(), max_order, &mut scratch.ref_max);
        } else {
            scratch.ref_max.clear();
            for reference in refs {
                count_ngrams(reference.as_ref(), max_order, &mut scratch.one_ref);
                for (gram, &count) in &scratch.one_ref {
                    let slot = scratch.ref_max.entry(gram).or_insert(0);
                    *slot = (*slot).max(count);
                }
            }
        }
        count_ngrams(hyp, max_order, &mut scratch.hyp);
        for (gram, &count) in &scratch.hyp {
            if let Some(&in_ref) = scratch.ref_max.get(gram) {
                self.matches[gram.len() - 1] += u64::from(count.min(in_ref));
            }
        }
        for order in 1..=max_order.min(hyp.len()) {
            self.possible[order - 1] += (hyp.len() - order + 1) as u64;
        }
    }

    fn merge(mut self, other: Counts) -> Counts {
        for (a, b) in self.matches.iter_mut().zip(&other.matches) {
            *a += b;
        }
        for (a, b) in self.possible.iter_mut().zip(&other.possible) {
            *a += b;
        }
        self.hypothesis_len += other.hypothesis_len;
        self.reference_len += other.reference_len;
        self
    }
}

/// Counts every n-gram of `tokens` of order 1 to `max_order` into `counts` (cleared first).
fn count_ngrams<'a, T: Eq + Hash>(tokens: &'a [T], max_order: usize, counts: &mut FxMap<&'a [T], u32>) {
    counts.clear();
    for order in 1..=max_order.min(tokens.len()) {
        for gram in tokens.windows(order) {
            *counts.entry(gram).or_insert(0) += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<&str> {
        s.split_whitespace().collect()
    }

    fn single<'a>(refs: &'a [Vec<&'a str>]) -> Vec<[&'a [&'a str]; 1]> {
        refs.iter().map(|r| [r.as_slice()]).collect()
    }

    #[test]
    fn brevity_penalty_by_hand() {
        // Hand computation: hypothesis "the cat sat" (c = 3) against "the cat sat on the mat"
        // (r = 6). Every hypothesis 1-gram and 2-gram matches: p1 = 3/3, p2 = 2/2, so the
        // unsmoothed BLEU-2 is BP = exp(1 - 6/3) = e^-1 = 0.367879..., ×100.
        let hyps = [words("the cat sat")];
        let refs = [words("the cat sat on the mat")];
        let bleu = corpus_bleu(&hyps, &single(&refs), 2).unwrap();
        assert_eq!(bleu.precisions, [1.0, 1.0]);
        assert!((bleu.brevity_penalty - (-1.0f64).exp()).abs() < 1e-15);
        assert!((bleu.score - 36.787944117144235).abs() < 1e-12, "{}", bleu.score);
        assert_eq!((bleu.hypothesis_len, bleu.reference_len), (3, 6));
    }

    #[test]
    fn clipping_and_corpus_sums_by_hand() {
        // Papineni et al. (2002) §2.1: "the the the the the the the" against "the cat is on the
        // mat" has clipped unigram precision 2/7. A second pair adds 3 of 4 unigram matches and
        // 1 of 3 bigram matches; corpus sums: p1 = (2 + 3) / (7 + 4) = 5/11,
        // p2 = (0 + 1) / (6 + 3) = 1/9; c = 11 > r = 6 + 4 so BP = 1;
        // BLEU-2 = sqrt(5/11 * 1/9) * 100 = 22.473328748774733.
        let hyps = [words("the the the the the the the"), words("a b c x")];
        let refs = [words("the cat is on the mat"), words("a b y c")];
        let bleu = corpus_bleu(&hyps, &single(&refs), 2).unwrap();
        assert_eq!(bleu.precisions, [5.0 / 11.0, 1.0 / 9.0]);
        assert_eq!(bleu.brevity_penalty, 1.0);
        assert!((bleu.score - 22.473328748774733).abs() < 1e-12, "{}", bleu.score);
        // BLEU-4: no 3-gram matches, so the unsmoothed geometric mean is 0.
        assert_eq!(corpus_bleu(&hyps, &single(&refs), 4).unwrap().score, 0.0);
    }

    #[test]
    fn cumulative_scores_equal_separate_runs() {
        let hyps = [words("the the the the the the the"), words("a b c x"), words("a b y c d")];
        let refs = [words("the cat is on the mat"), words("a b y c"), words("a b y c e f")];
        let four = corpus_bleu(&hyps, &single(&refs), 4).unwrap();
        for order in 1..=4 {
            let separate = corpus_bleu(&hyps, &single(&refs), order).unwrap().score;
            assert_eq!(four.cumulative(order), Some(separate), "order {order}");
        }
        assert_eq!(four.cumulative(0), None);
        assert_eq!(four.cumulative(5), None);
    }

    #[test]
    fn multiple_references_clip_by_the_best_one_and_use_the_shortest_length() {
        // "the the cat": 'the' appears once in ref A and twice in ref B, so both count (p1 = 3/3);
        // bigrams "the the" (ref B) and "the cat" (ref A) match (p2 = 2/2). r = min(3, 4) = 3 = c,
        // so BP = exp(0) = 1 and BLEU-2 = 100.
        let hyps = [words("the the cat")];
        let refs = [vec![words("the cat sat"), words("the the dog x")]];
        let bleu = corpus_bleu(&hyps, &refs, 2).unwrap();
        assert_eq!(bleu.precisions, [1.0, 1.0]);
        assert_eq!(bleu.reference_len, 3);
        assert_eq!(bleu.score, 100.0);
    }

    #[test]
    fn degenerate_inputs_are_errors_or_zero_not_panics() {
        let empty: [Vec<&str>; 0] = [];
        let no_refs: [[Vec<&str>; 1]; 0] = [];
        assert!(matches!(corpus_bleu(&empty, &no_refs, 4), Err(MetricsError::TooFew { .. })));
        let hyps = [words("a b")];
        let refs = [words("a b"), words("c")];
        assert!(matches!(corpus_bleu(&hyps, &single(&refs), 4), Err(MetricsError::LengthMismatch { .. })));
        let zero_refs: [Vec<Vec<&str>>; 1] = [vec![]];
        let err = corpus_bleu(&hyps, &zero_refs, 4).unwrap_err();
        assert!(err.to_string().contains("item 0"), "{err}");
        let blank = [words("")];
        let bleu = corpus_bleu(&blank, &single(&[words("a b")]), 1).unwrap();
        assert_eq!((bleu.score, bleu.brevity_penalty), (0.0, 0.0));
        let bleu = corpus_bleu(&[words("a b")], &single(&[words("")]), 1).unwrap();
        assert_eq!((bleu.score, bleu.brevity_penalty), (0.0, 1.0));
    }
}

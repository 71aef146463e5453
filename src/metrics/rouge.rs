//! ROUGE-1, ROUGE-2 and ROUGE-L as PETER reports them: the `rouge` function of google/seq2seq
//! (`seq2seq/metrics/rouge.py`, copied into PETER as `rouge.py`), which scores each
//! hypothesis against its reference and averages precision, recall and F over the corpus (×100).
//!
//! How that reference differs from the Perl ROUGE-1.5.5 and from `rouge-score`, reproduced here:
//! - ROUGE-N compares *sets* of n-grams: a repeated n-gram counts once on either side.
//!   F = 2PR / (P + R + 1e-8).
//! - ROUGE-L is sentence-level: P = LCS/|hyp|, R = LCS/|ref| and the F-measure with
//!   β = P / (R + 1e-12), i.e. F = (1 + β²)RP / (R + β²P + 1e-12), which equals
//!   LCS·(m² + n²)/(m³ + n³) for m = |ref|, n = |hyp|; not the harmonic mean.
//! - Ties: only the LCS *length* enters, so when several different subsequences are longest
//!   (hypothesis "a b" against reference "b a": "a" and "b" both are) the score is the same
//!   whichever one a tie-breaking rule would pick.
//! - Empty text: the reference splits `""` into one empty word, so an empty hypothesis and an
//!   empty reference share that word (ROUGE-1 and ROUGE-L P = R = 1, ROUGE-2 0, since a single
//!   word has no bigram), and an empty text against a non-empty one scores 0 everywhere. No
//!   division by zero can happen.

use std::hash::{BuildHasher, Hash};

use rayon::prelude::*;
use serde::Serialize;

use super::hash::FxBuild;
use super::{check_at_least, check_same_len, MetricsError};

/// Precision, recall and F-measure, ×100.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Prf {
    pub precision: f64,
    pub recall: f64,
    pub f: f64,
}

/// ROUGE-1, ROUGE-2 and ROUGE-L of one sentence, or their means over a corpus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RougeScores {
    pub rouge1: Prf,
    pub rouge2: Prf,
    #[serde(rename = "rougeL")]
    pub rouge_l: Prf,
}

/// ROUGE of one tokenised hypothesis against one tokenised reference.
pub fn sentence_rouge<T: Eq + Hash>(hypothesis: &[T], reference: &[T]) -> RougeScores {
    sentence_rouge_with(hypothesis, reference, &mut Vec::new())
}

/// [`sentence_rouge`] reusing `lcs_row` as the LCS table.
fn sentence_rouge_with<T: Eq + Hash>(
    hypothesis: &[T],
    reference: &[T],
    lcs_row: &mut Vec<usize>,
) -> RougeScores {
    match (hypothesis.is_empty(), reference.is_empty()) {
        // The reference's single empty word is shared (see the module documentation).
        (true, true) => {
            RougeScores { rouge1: rouge_n_prf(1, 1, 1), rouge2: Prf::default(), rouge_l: lcs_prf(1, 1, 1) }
        }
        (true, false) | (false, true) => RougeScores::default(),
        (false, false) => RougeScores {
            rouge1: rouge_n(hypothesis, reference, 1),
            rouge2: rouge_n(hypothesis, reference, 2),
            rouge_l: lcs_prf(lcs_len_with(hypothesis, reference, lcs_row), reference.len(), hypothesis.len()),
        },
    }
}

/// Mean sentence ROUGE over a corpus of (hypothesis, reference) pairs, scored in parallel.
pub fn corpus_rouge<T, S>(hypotheses: &[S], references: &[S]) -> Result<RougeScores, MetricsError>
where
    T: Eq + Hash + Sync,
    S: AsRef<[T]> + Sync,
{
    check_same_len("ROUGE", "hypotheses", hypotheses.len(), "references", references.len())?;
    check_at_least("ROUGE", 1, hypotheses.len())?;
    // Scored in parallel, summed in order: a parallel float reduction's result depends on how the
    // work was split, and the same explanations must always give the same scores.
    let scores: Vec<[f64; 9]> = hypotheses
        .par_iter()
        .zip(references.par_iter())
        .map_init(Vec::new, |lcs_row, (hyp, reference)| {
            flatten(&sentence_rouge_with(hyp.as_ref(), reference.as_ref(), lcs_row))
        })
        .collect();
    let sum = scores.iter().fold([0.0; 9], |mut a, b| {
        a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        a
    });
    let n = hypotheses.len() as f64;
    let mean = |i: usize| Prf { precision: sum[i] / n, recall: sum[i + 1] / n, f: sum[i + 2] / n };
    Ok(RougeScores { rouge1: mean(0), rouge2: mean(3), rouge_l: mean(6) })
}

fn flatten(s: &RougeScores) -> [f64; 9] {
    let [a, b, c] = [s.rouge1, s.rouge2, s.rouge_l];
    [a.precision, a.recall, a.f, b.precision, b.recall, b.f, c.precision, c.recall, c.f]
}

fn rouge_n<T: Eq + Hash>(hypothesis: &[T], reference: &[T], n: usize) -> Prf {
    let grams = |tokens: &[T]| -> Vec<u64> {
        // Hash n-grams to u64 keys once per sentence: fewer, cheaper set operations than slices.
        let mut keys: Vec<u64> = tokens.windows(n).map(hash_gram).collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    };
    let hyp = grams(hypothesis);
    let reference = grams(reference);
    let overlap = count_common_sorted(&hyp, &reference);
    rouge_n_prf(overlap, hyp.len(), reference.len())
}

/// Size of the intersection of two sorted, deduplicated lists.
fn count_common_sorted(a: &[u64], b: &[u64]) -> usize {
    let (mut i, mut j, mut common) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    common
}

/// A 64-bit fingerprint of an n-gram. For unigrams and bigrams of `u32` ids (what
/// [`super::TextScores`] passes) it is injective; for other token types a collision would merge
/// two n-grams of one sentence pair, with a chance of order 1e-15 per pair.
fn hash_gram<T: Hash>(gram: &[T]) -> u64 {
    FxBuild::default().hash_one(gram)
}

fn rouge_n_prf(overlap: usize, hyp_count: usize, ref_count: usize) -> Prf {
    let precision = if hyp_count == 0 { 0.0 } else { overlap as f64 / hyp_count as f64 };
    let recall = if ref_count == 0 { 0.0 } else { overlap as f64 / ref_count as f64 };
    let f = 2.0 * ((precision * recall) / (precision + recall + 1e-8));
    Prf { precision: precision * 100.0, recall: recall * 100.0, f: f * 100.0 }
}

/// `_f_p_r_lcs(llcs, m, n)` of the reference; `m` = reference length, `n` = hypothesis length.
fn lcs_prf(lcs: usize, m: usize, n: usize) -> Prf {
    let recall = lcs as f64 / m as f64;
    let precision = lcs as f64 / n as f64;
    let beta = precision / (recall + 1e-12);
    let num = (1.0 + beta * beta) * recall * precision;
    let denom = recall + beta * beta * precision;
    let f = num / (denom + 1e-12);
    Prf { precision: precision * 100.0, recall: recall * 100.0, f: f * 100.0 }
}

/// Length of the longest common subsequence of `a` and `b`, with `row` as the one-row
/// dynamic-programming table: O(|a|·|b|) time, O(|b|) space.
fn lcs_len_with<T: Eq>(a: &[T], b: &[T], row: &mut Vec<usize>) -> usize {
    row.clear();
    row.resize(b.len() + 1, 0);
    for x in a {
        let mut diagonal = 0;
        for (j, y) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if x == y { diagonal + 1 } else { above.max(row[j]) };
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<&str> {
        s.split_whitespace().collect()
    }

    /// The same corpus gives bit-identical scores whatever the thread count (a parallel float sum
    /// would depend on how the work was split; the Slurm and local backends compare reports exactly).
    #[test]
    fn corpus_scores_do_not_depend_on_the_thread_count() {
        let words = ["a", "film", "by", "the", "same", "director", "as", "you", "liked", "drama"];
        let sentence = |i: usize| -> Vec<&str> {
            (0..5 + i % 7).map(|j| words[(i * 7 + j * 3) % words.len()]).collect()
        };
        let hypotheses: Vec<Vec<&str>> = (0..997).map(sentence).collect();
        let references: Vec<Vec<&str>> = (0..997).map(|i| sentence(i + 3)).collect();
        let with_threads = |n: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
            pool.install(|| corpus_rouge(&hypotheses, &references).unwrap())
        };
        let one = with_threads(1);
        for n in [2, 3, 8] {
            assert_eq!(with_threads(n), one, "{n} threads");
        }
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn rouge_n_uses_sets_by_hand() {
        // hyp "the cat the cat sat": 1-gram set {the, cat, sat} (3), 2-gram set
        // {the cat, cat the, cat sat} (3). ref "the cat is here": {the, cat, is, here} (4),
        // {the cat, cat is, is here} (3). Overlaps: 2 unigrams, 1 bigram.
        let s = sentence_rouge(&w("the cat the cat sat"), &w("the cat is here"));
        close(s.rouge1.precision, 200.0 / 3.0);
        close(s.rouge1.recall, 50.0);
        close(s.rouge1.f, 100.0 * 2.0 * (2.0 / 3.0 * 0.5) / (2.0 / 3.0 + 0.5 + 1e-8));
        close(s.rouge2.precision, 100.0 / 3.0);
        close(s.rouge2.recall, 100.0 / 3.0);
    }

    #[test]
    fn rouge_l_with_tied_subsequences_by_hand() {
        // hyp "a b", ref "b a b": "a b" and "b"/"a" are common subsequences; the longest ("a b")
        // has length 2, and ref "b a" vs hyp "a b" has two different LCS ("a", "b") of length 1.
        // Case 1: LCS 2, m = 3, n = 2: P = 1, R = 2/3, F = 2·(9 + 4)/(27 + 8) = 26/35.
        let s = sentence_rouge(&w("a b"), &w("b a b"));
        close(s.rouge_l.precision, 100.0);
        close(s.rouge_l.recall, 200.0 / 3.0);
        close(s.rouge_l.f, 100.0 * 26.0 / 35.0);
        // Case 2: the tie "a" vs "b" gives LCS 1 either way: P = R = 1/2, F = 1·8/16 = 1/2.
        let s = sentence_rouge(&w("a b"), &w("b a"));
        close(s.rouge_l.f, 50.0);
        close(s.rouge_l.precision, 50.0);
    }

    #[test]
    fn rouge_l_f_is_the_beta_weighted_form_not_the_harmonic_mean() {
        // LCS = 2, m = 4 (ref), n = 2 (hyp): P = 1, R = 1/2; harmonic mean would be 2/3 but the
        // reference gives LCS(m² + n²)/(m³ + n³) = 2·20/72 = 5/9.
        let s = sentence_rouge(&w("x y"), &w("x a y b"));
        close(s.rouge_l.f, 500.0 / 9.0);
    }

    #[test]
    fn empty_text_follows_the_reference() {
        let empty: Vec<&str> = vec![];
        let s = sentence_rouge(&empty, &empty);
        close(s.rouge1.precision, 100.0);
        close(s.rouge_l.f, 100.0);
        assert_eq!(s.rouge2, Prf::default());
        assert_eq!(sentence_rouge(&empty, &w("a b")), RougeScores::default());
        assert_eq!(sentence_rouge(&w("a b"), &empty), RougeScores::default());
        // A one-word pair has no bigram: ROUGE-2 is 0 even for identical text.
        assert_eq!(sentence_rouge(&w("a"), &w("a")).rouge2, Prf::default());
    }

    #[test]
    fn corpus_rouge_is_the_mean_of_sentence_scores() {
        let hyps = [w("a b c"), w("x y"), w("")];
        let refs = [w("a b d"), w("x y"), w("q")];
        let corpus = corpus_rouge(&hyps, &refs).unwrap();
        let parts: Vec<RougeScores> = hyps.iter().zip(&refs).map(|(h, r)| sentence_rouge(h, r)).collect();
        close(corpus.rouge_l.f, parts.iter().map(|s| s.rouge_l.f).sum::<f64>() / 3.0);
        close(corpus.rouge2.recall, parts.iter().map(|s| s.rouge2.recall).sum::<f64>() / 3.0);
        assert!(corpus_rouge(&hyps[..1], &refs).is_err());
    }

    #[test]
    fn lcs_length_by_hand() {
        // Cormen et al., Introduction to Algorithms, §15.4: LCS(ABCBDAB, BDCABA) = 4 (BCBA).
        let mut row = Vec::new();
        assert_eq!(lcs_len_with(&w("a b c b d a b"), &w("b d c a b a"), &mut row), 4);
        assert_eq!(lcs_len_with(&[], &w("a"), &mut row), 0);
    }
}

//! Corpus diversity of generated text: distinct-n and the unique sentence ratio (USR).
//!
//! - distinct-n = distinct n-grams / total n-grams over the whole corpus (Li et al., NAACL 2016;
//!   computed as `calc_div` of golsun/NLP-tools `nlp_metrics.py`, used by DialoGPT), 0 when the
//!   corpus has no n-gram at all, as in that reference.
//! - USR = distinct token sequences / N (PETER `utils.py`, `unique_sentence_percent`): two
//!   explanations are the same sentence when their tokens are equal, so case and punctuation
//!   spacing do not make a sentence unique.

use std::hash::Hash;

use super::hash::FxSet;
use super::{check_at_least, MetricsError};

/// distinct-n over all `sentences` (tokenised), as a fraction.
pub fn distinct_n<T, S>(sentences: &[S], n: usize) -> Result<f64, MetricsError>
where
    T: Eq + Hash,
    S: AsRef<[T]>,
{
    if n == 0 {
        return Err(MetricsError::Invalid { metric: "distinct-n", detail: "n must be at least 1".into() });
    }
    let mut seen: FxSet<&[T]> = FxSet::default();
    let mut total = 0usize;
    for sentence in sentences {
        for gram in sentence.as_ref().windows(n) {
            seen.insert(gram);
            total += 1;
        }
    }
    Ok(if total == 0 { 0.0 } else { seen.len() as f64 / total as f64 })
}

/// USR: the share of `sentences` whose token sequence no earlier sentence has.
pub fn unique_sentence_ratio<T, S>(sentences: &[S]) -> Result<f64, MetricsError>
where
    T: Eq + Hash,
    S: AsRef<[T]>,
{
    check_at_least("USR", 1, sentences.len())?;
    let unique: FxSet<&[T]> = sentences.iter().map(AsRef::as_ref).collect();
    Ok(unique.len() as f64 / sentences.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tokenize;

    #[test]
    fn distinct_by_hand() {
        // "a b a" and "b a c": unigrams a b a b a c → 3 distinct of 6; bigrams ab ba ba ac →
        // 3 distinct of 4. A one-word sentence adds a unigram but no bigram.
        let corpus = [vec!["a", "b", "a"], vec!["b", "a", "c"], vec!["d"]];
        assert_eq!(distinct_n(&corpus, 1).unwrap(), 4.0 / 7.0);
        assert_eq!(distinct_n(&corpus, 2).unwrap(), 3.0 / 4.0);
        assert_eq!(distinct_n(&corpus[2..], 2).unwrap(), 0.0);
        assert!(distinct_n(&corpus, 0).is_err());
    }

    #[test]
    fn usr_counts_token_sequences_by_hand() {
        // After tokenisation "Great movie." and "great movie ." are the same sentence: 2 of 3.
        let corpus: Vec<Vec<String>> =
            ["Great movie.", "great movie .", "A great movie."].iter().map(|s| tokenize(s)).collect();
        assert_eq!(unique_sentence_ratio(&corpus).unwrap(), 2.0 / 3.0);
        let none: [Vec<String>; 0] = [];
        assert!(unique_sentence_ratio(&none).is_err());
    }
}

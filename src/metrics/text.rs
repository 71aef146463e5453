//! [`TextScores`]: every text metric of a corpus of generated explanations against their
//! reference explanations, from one tokenisation — what `prism eval explain` reports per model.

use serde::Serialize;

use super::{check_at_least, check_same_len, corpus_bleu, corpus_rouge, distinct_n, unique_sentence_ratio};
use super::{MetricsError, RougeScores, Vocab};

/// Corpus text metrics; BLEU and ROUGE ×100, distinct-n and USR as fractions (as PETER prints
/// them).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextScores {
    pub n: usize,
    pub bleu1: f64,
    pub bleu4: f64,
    #[serde(flatten)]
    pub rouge: RougeScores,
    pub distinct1: f64,
    pub distinct2: f64,
    pub usr: f64,
    /// Mean hypothesis length in tokens.
    pub mean_len: f64,
}

impl TextScores {
    /// Scores `hypotheses[i]` against `references[i]` (one reference each).
    pub fn compute<S: AsRef<str> + Sync, R: AsRef<str> + Sync>(
        hypotheses: &[S],
        references: &[R],
    ) -> Result<TextScores, MetricsError> {
        check_same_len("text metrics", "hypotheses", hypotheses.len(), "references", references.len())?;
        check_at_least("text metrics", 1, hypotheses.len())?;
        let mut vocab = Vocab::new();
        let hyps = vocab.encode_all(hypotheses);
        let refs = vocab.encode_all(references);
        let ref_sets: Vec<[&[u32]; 1]> = refs.iter().map(|r| [r.as_slice()]).collect();
        let bleu = corpus_bleu(&hyps, &ref_sets, 4)?;
        // The corpus-wide sets of distinct-n and USR are sequential; build them side by side.
        let ((distinct1, distinct2), usr) = rayon::join(
            || rayon::join(|| distinct_n(&hyps, 1), || distinct_n(&hyps, 2)),
            || unique_sentence_ratio(&hyps),
        );
        Ok(TextScores {
            n: hyps.len(),
            bleu1: bleu.cumulative(1).unwrap_or(0.0),
            bleu4: bleu.score,
            rouge: corpus_rouge(&hyps, &refs)?,
            distinct1: distinct1?,
            distinct2: distinct2?,
            usr: usr?,
            mean_len: hyps.iter().map(Vec::len).sum::<usize>() as f64 / hyps.len() as f64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_corpora_score_perfectly_and_tokenisation_is_shared() {
        let hyps = ["The plot is tense, and the cast shines!", "A quiet drama."];
        let refs = ["the plot is tense , and the cast shines !", "a quiet drama ."];
        let s = TextScores::compute(&hyps, &refs).unwrap();
        assert_eq!(s.bleu1, 100.0);
        assert_eq!(s.bleu4, 100.0);
        assert!((s.rouge.rouge_l.f - 100.0).abs() < 1e-6);
        assert_eq!(s.usr, 1.0);
        assert_eq!(s.mean_len, (10.0 + 4.0) / 2.0);
        let json = serde_json::to_value(&s).unwrap();
        assert!(json["rougeL"]["f"].is_number() && json["rouge1"]["precision"].is_number(), "{json}");
    }

    #[test]
    fn mismatched_or_empty_input_is_an_error() {
        assert!(TextScores::compute(&["a"], &["a", "b"]).is_err());
        let none: [&str; 0] = [];
        assert!(TextScores::compute(&none, &none).is_err());
    }
}

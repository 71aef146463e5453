//! Metrics without IO or devices: BLEU, ROUGE, distinct-n, the explainable-recommendation metrics
//! (USR, FMR, FCR, DIV), grounding rates, and the statistics used by reports (bootstrap CIs,
//! paired tests, agreement coefficients).
//!
//! Everything here takes plain slices (strings, token-id lists, feature-id sets, scores) and
//! depends on nothing else in the crate. Each metric cites the reference implementation it
//! reproduces; scores reported as percentages (BLEU, ROUGE) are ×100 like PETER's. Text metrics
//! share one tokenisation ([`tokenize`]) and work on interned token ids ([`Vocab`]).
//! [`TextScores::compute`] is the façade the evaluation command uses for a whole corpus.

pub mod bertscore;
pub mod bleu;
pub mod distinct;
pub mod explainable;
mod hash;
pub mod rouge;
pub mod stats;
pub mod text;
pub mod tokenize;

pub use bleu::{corpus_bleu, Bleu};
pub use distinct::{distinct_n, unique_sentence_ratio};
pub use explainable::{
    feature_coverage_ratio, feature_diversity, feature_matching_ratio, GroundingCounts, GroundingRates,
};
pub use rouge::{corpus_rouge, sentence_rouge, Prf, RougeScores};
pub use text::TextScores;
pub use tokenize::{tokenize, Vocab};

/// Why a metric could not be computed. Messages name the argument and, where one is at fault,
/// the index of the item, so a caller can point at the line of its input file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    #[error(
        "{metric}: {left_name} has {left} items but {right_name} has {right}; they must pair up one to one"
    )]
    LengthMismatch {
        metric: &'static str,
        left_name: &'static str,
        left: usize,
        right_name: &'static str,
        right: usize,
    },
    #[error("{metric}: needs at least {needed} items, got {got}")]
    TooFew { metric: &'static str, needed: usize, got: usize },
    #[error("{metric}: item {index}: {detail}")]
    BadItem { metric: &'static str, index: usize, detail: String },
    #[error("{metric}: {detail}")]
    Invalid { metric: &'static str, detail: String },
}

pub(crate) fn check_same_len(
    metric: &'static str,
    left_name: &'static str,
    left: usize,
    right_name: &'static str,
    right: usize,
) -> Result<(), MetricsError> {
    if left == right {
        Ok(())
    } else {
        Err(MetricsError::LengthMismatch { metric, left_name, left, right_name, right })
    }
}

pub(crate) fn check_at_least(metric: &'static str, needed: usize, got: usize) -> Result<(), MetricsError> {
    if got >= needed {
        Ok(())
    } else {
        Err(MetricsError::TooFew { metric, needed, got })
    }
}

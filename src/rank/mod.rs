//! Rankers: the black box that picks items for a user (popularity, item-kNN, BPR-MF, or ranked
//! lists from a file behind one [`Ranker`] trait), and full-ranking evaluation (HR@K, NDCG@K, MRR).
//! Never recommends an item already in the user's train history. Knows nothing of explanations.

pub mod bpr;
pub mod eval;
pub mod external;
pub mod itemknn;
pub mod matrix;
pub mod pop;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Result};
use serde::Serialize;

use crate::config::RankerSettings;
use crate::data::{Dataset, ItemIdx, Split, UserIdx};

pub use bpr::Bpr;
pub use eval::{evaluate, RankMetrics};
pub use external::External;
pub use itemknn::ItemKnn;
pub use matrix::TrainMatrix;
pub use pop::Popularity;

/// Scores items for users. Implementations only score; [`Ranker::recommend`] applies the rule
/// that an item in the user's train history is never recommended.
pub trait Ranker: Send + Sync {
    /// The name reports use (`pop`, `itemknn`, `bpr`, `file:PATH`).
    fn name(&self) -> &str;

    /// Writes a score for every item into `scores` (`len == num_items`); higher ranks first.
    /// `f32::NEG_INFINITY` means "cannot recommend" (e.g. an item a ranked-list file omits).
    fn score_items(&self, user: UserIdx, scores: &mut [f32]);

    /// The top `k` items for `user` outside their train history, best first; ties go to the lower
    /// item index so results are reproducible.
    fn recommend(&self, train: &TrainMatrix, user: UserIdx, k: usize) -> Vec<Scored> {
        let mut scores = vec![0.0; train.num_items()];
        self.score_items(user, &mut scores);
        top_k(&scores, train.items_of(user), k)
    }
}

/// One recommended item and its score.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Scored {
    pub item: ItemIdx,
    pub score: f32,
}

/// The `k` best finite scores whose item is not in `exclude` (sorted ascending), best first.
pub fn top_k(scores: &[f32], exclude: &[ItemIdx], k: usize) -> Vec<Scored> {
    let mut candidates: Vec<Scored> = scores
        .iter()
        .enumerate()
        .filter(|(item, score)| score.is_finite() && exclude.binary_search(&(*item as ItemIdx)).is_err())
        .map(|(item, &score)| Scored { item: item as ItemIdx, score })
        .collect();
    let order = |a: &Scored, b: &Scored| b.score.total_cmp(&a.score).then(a.item.cmp(&b.item));
    if k == 0 {
        return Vec::new();
    }
    if candidates.len() > k {
        candidates.select_nth_unstable_by(k - 1, order);
        candidates.truncate(k);
    }
    candidates.sort_unstable_by(order);
    candidates
}

/// Which ranker to build, as written on the command line or in `ranker.default`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RankerSpec {
    Popularity,
    ItemKnn,
    Bpr,
    File(PathBuf),
}

impl FromStr for RankerSpec {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<RankerSpec> {
        Ok(match s {
            "pop" | "popularity" => RankerSpec::Popularity,
            "itemknn" => RankerSpec::ItemKnn,
            "bpr" => RankerSpec::Bpr,
            _ => match s.strip_prefix("file:") {
                Some(path) if !path.is_empty() => RankerSpec::File(PathBuf::from(path)),
                _ => bail!("unknown ranker '{s}': expected bpr, pop, itemknn or file:PATH"),
            },
        })
    }
}

impl RankerSpec {
    /// The built-in rankers, in the order reports list them.
    pub const BUILT_IN: [RankerSpec; 3] = [RankerSpec::Popularity, RankerSpec::ItemKnn, RankerSpec::Bpr];
}

/// Everything building a ranker may need besides the data.
pub struct BuildOptions<'a> {
    pub settings: &'a RankerSettings,
    /// Where trained BPR models are cached; `None` never reads or writes a cache.
    pub cache_dir: Option<&'a Path>,
    /// Receives one line per BPR epoch (progress for people; stderr in the CLI).
    pub progress: &'a (dyn Fn(&str) + Sync),
}

/// Builds the ranker `spec` names on the train part of `split`.
pub fn build(
    spec: &RankerSpec,
    dataset: &Dataset,
    split: &Split,
    train: &TrainMatrix,
    options: &BuildOptions,
) -> Result<Box<dyn Ranker>> {
    Ok(match spec {
        RankerSpec::Popularity => Box::new(Popularity::fit(train)),
        RankerSpec::ItemKnn => Box::new(ItemKnn::fit(train, options.settings.itemknn.neighbours)),
        RankerSpec::Bpr => {
            let settings = options.settings;
            let cache_dir = options.cache_dir.filter(|_| settings.bpr.cache);
            Box::new(Bpr::train_or_load(
                dataset,
                split,
                train,
                &settings.bpr,
                settings.k,
                cache_dir,
                options.progress,
            )?)
        }
        RankerSpec::File(path) => Box::new(External::load(path, dataset)?),
    })
}

/// The platform cache directory for trained models (`PRISM_CACHE_DIR` overrides it, e.g. in tests).
pub fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("PRISM_CACHE_DIR").map(PathBuf::from).or_else(|| {
        directories::ProjectDirs::from("", "", "prism-explorer").map(|d| d.cache_dir().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_skips_excluded_and_non_finite_and_breaks_ties_by_index() {
        let scores = [0.5, 2.0, f32::NEG_INFINITY, 2.0, 1.0, 3.0];
        let top = top_k(&scores, &[5], 3);
        let items: Vec<ItemIdx> = top.iter().map(|s| s.item).collect();
        assert_eq!(items, vec![1, 3, 4]);
        assert_eq!(top_k(&scores, &[], 10).len(), 5);
        assert!(top_k(&scores, &[], 0).is_empty());
    }

    #[test]
    fn specs_parse_and_unknown_ones_are_named() {
        assert_eq!("pop".parse::<RankerSpec>().unwrap(), RankerSpec::Popularity);
        assert_eq!("file:a b.txt".parse::<RankerSpec>().unwrap(), RankerSpec::File("a b.txt".into()));
        let err = "svd".parse::<RankerSpec>().unwrap_err().to_string();
        assert!(err.contains("'svd'") && err.contains("file:PATH"), "{err}");
        assert!("file:".parse::<RankerSpec>().is_err());
    }
}

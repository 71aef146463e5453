//! `prism rank` (top-K items for one user) and `prism eval rank` (full-ranking metrics of every
//! ranker). The handlers load the dataset; the work is in [`recommendations`] and [`evaluation`],
//! which take a dataset so tests and the TUI can call them on one in memory.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use clap::Args;
use serde::Serialize;

use super::{print_json, Context};
use crate::config::RankerSettings;
use crate::data::{self, Dataset, Part, Split};
use crate::rank::{self, evaluate, BuildOptions, RankerSpec, TrainMatrix};

#[derive(Debug, Args)]
pub struct RankArgs {
    /// The user's id as written in the dataset (see `prism data users`)
    #[arg(long)]
    pub user: String,
    /// How many items to recommend [default: ranker.k from the config]
    #[arg(long, value_parser = crate::validate::flag::at_least_one)]
    pub k: Option<usize>,
    /// bpr, pop, itemknn or file:PATH (rows of `user item score`) [default: ranker.default]
    #[arg(long, value_name = "RANKER")]
    pub ranker: Option<String>,
}

#[derive(Debug, Args)]
pub struct EvalRankArgs {
    /// The K of HR@K and NDCG@K [default: ranker.k from the config]
    #[arg(long, value_parser = crate::validate::flag::at_least_one)]
    pub k: Option<usize>,
    /// A ranker to evaluate (repeat for several) [default: pop, itemknn and bpr]
    #[arg(long = "ranker", value_name = "RANKER")]
    pub rankers: Vec<String>,
    /// The held-out part to rank
    #[arg(long, value_enum, default_value_t = Part::Test)]
    pub split: Part,
}

/// The JSON document of `prism rank`.
#[derive(Debug, Serialize)]
pub struct RankOutput {
    pub user: String,
    pub ranker: String,
    pub items: Vec<RankedItem>,
}

#[derive(Debug, Serialize)]
pub struct RankedItem {
    pub item: String,
    pub title: String,
    pub score: f32,
}

/// The JSON document of `prism eval rank`: per ranker `hr@K`, `ndcg@K` and `mrr`.
#[derive(Debug, Serialize)]
pub struct EvalOutput {
    pub rankers: BTreeMap<String, BTreeMap<String, f64>>,
    pub users: usize,
    pub split: Part,
    pub k: usize,
}

fn check_k(k: usize) -> Result<usize> {
    if k == 0 {
        bail!("--k must be at least 1");
    }
    Ok(k)
}

fn progress_to_stderr(line: &str) {
    eprintln!("{line}");
}

/// The top `k` items `spec` recommends to the user with id `user`.
pub fn recommendations(
    dataset: &Dataset,
    settings: &RankerSettings,
    user: &str,
    spec: &RankerSpec,
    k: usize,
    cache_dir: Option<&Path>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<RankOutput> {
    let k = check_k(k)?;
    let Some(u) = dataset.user_by_id(user) else {
        bail!("unknown user '{user}': not in the dataset. Consider `prism data users` to list the users.");
    };
    let split = Split::leave_last_out(dataset);
    let train = TrainMatrix::new(dataset, &split);
    let options = BuildOptions { settings, cache_dir, progress };
    let ranker = rank::build(spec, dataset, &split, &train, &options)?;
    let items = ranker
        .recommend(&train, u, k)
        .into_iter()
        .map(|s| {
            let item = dataset.item(s.item);
            RankedItem { item: item.id.clone(), title: item.title.clone(), score: s.score }
        })
        .collect();
    Ok(RankOutput { user: user.to_owned(), ranker: ranker.name().to_owned(), items })
}

/// HR@K, NDCG@K and MRR of each ranker in `specs` on the `part` items of the leave-last-out split.
pub fn evaluation(
    dataset: &Dataset,
    settings: &RankerSettings,
    specs: &[RankerSpec],
    k: usize,
    part: Part,
    cache_dir: Option<&Path>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<EvalOutput> {
    let k = check_k(k)?;
    let split = Split::leave_last_out(dataset);
    let train = TrainMatrix::new(dataset, &split);
    let options = BuildOptions { settings, cache_dir, progress };
    let mut rankers = BTreeMap::new();
    let mut users = 0;
    for spec in specs {
        let ranker = rank::build(spec, dataset, &split, &train, &options)?;
        let m = evaluate(ranker.as_ref(), dataset, &split, &train, part, k);
        users = m.users;
        let metrics = [(format!("hr@{k}"), m.hr), (format!("ndcg@{k}"), m.ndcg), ("mrr".to_owned(), m.mrr)];
        rankers.insert(ranker.name().to_owned(), metrics.into_iter().collect());
    }
    Ok(EvalOutput { rankers, users, split: part, k })
}

pub fn rank(ctx: &Context, args: RankArgs) -> Result<()> {
    let settings = &ctx.settings.ranker;
    let spec: RankerSpec = args.ranker.as_deref().unwrap_or(&settings.default).parse()?;
    let dataset = data::open(&ctx.settings.dataset)?;
    let cache_dir = rank::default_cache_dir();
    let out = recommendations(
        &dataset,
        settings,
        &args.user,
        &spec,
        args.k.unwrap_or(settings.k),
        cache_dir.as_deref(),
        &progress_to_stderr,
    )?;
    if ctx.json {
        return print_json(&out);
    }
    println!("Top {} for user {} ({})", out.items.len(), out.user, out.ranker);
    let width = out.items.iter().map(|i| i.item.len()).max().unwrap_or(4).max(4);
    println!("{:>3}  {:<width$}  {:>9}  title", "#", "item", "score");
    for (n, item) in out.items.iter().enumerate() {
        println!("{:>3}  {:<width$}  {:>9.4}  {}", n + 1, item.item, item.score, item.title);
    }
    Ok(())
}

pub fn eval_rank(ctx: &Context, args: EvalRankArgs) -> Result<()> {
    let settings = &ctx.settings.ranker;
    let specs: Vec<RankerSpec> = if args.rankers.is_empty() {
        RankerSpec::BUILT_IN.to_vec()
    } else {
        args.rankers.iter().map(|r| r.parse()).collect::<Result<_>>()?
    };
    let dataset = data::open(&ctx.settings.dataset)?;
    let cache_dir = rank::default_cache_dir();
    let k = args.k.unwrap_or(settings.k);
    let out =
        evaluation(&dataset, settings, &specs, k, args.split, cache_dir.as_deref(), &progress_to_stderr)
            .context("ranking evaluation failed")?;
    if ctx.json {
        return print_json(&out);
    }
    let part = match out.split {
        Part::Dev => "dev",
        Part::Test => "test",
    };
    println!("Full ranking on {part}, {} users (leave-last-out split)", out.users);
    let width = out.rankers.keys().map(String::len).max().unwrap_or(6).max(6);
    println!("{:<width$}  {:>8}  {:>8}  {:>8}", "ranker", format!("HR@{k}"), format!("NDCG@{k}"), "MRR");
    for (name, m) in &out.rankers {
        let get = |key: &str| m.get(key).copied().unwrap_or(f64::NAN);
        println!(
            "{name:<width$}  {:>8.4}  {:>8.4}  {:>8.4}",
            get(&format!("hr@{k}")),
            get(&format!("ndcg@{k}")),
            get("mrr")
        );
    }
    Ok(())
}

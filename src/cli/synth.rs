//! `prism data synth`: writes the synthetic demo dataset (generic JSONL) to a directory.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::{print_json, Context};
use crate::data::synth::{self, SynthConfig};

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Output directory
    #[arg(long)]
    pub out: PathBuf,
    /// Random seed; the same seed writes the same files
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Number of users
    #[arg(long, default_value_t = SynthConfig::default().users, value_parser = crate::validate::flag::at_least_one)]
    pub users: usize,
    /// Number of films in the catalogue
    #[arg(long, default_value_t = SynthConfig::default().items, value_parser = crate::validate::flag::at_least_one)]
    pub items: usize,
    /// Total number of interactions (every user gets at least 10)
    #[arg(long, default_value_t = SynthConfig::default().interactions, value_parser = crate::validate::flag::at_least_one)]
    pub interactions: usize,
    /// Share of reference explanations that cite a feature neither the item nor the history has
    #[arg(long, default_value_t = SynthConfig::default().noise, value_parser = crate::validate::flag::share)]
    pub noise: f64,
    /// Leave out reference explanations (smaller files, e.g. for ranker benchmarks)
    #[arg(long)]
    pub no_references: bool,
    /// Random stream of the reference explanations: another stream writes other references for
    /// the same interactions (to measure how well two references of one pair agree)
    #[arg(long, default_value_t = SynthConfig::default().reference_stream)]
    pub reference_stream: u64,
}

#[derive(Serialize)]
struct SynthSummary {
    out: PathBuf,
    users: usize,
    items: usize,
    interactions: usize,
    noisy: usize,
    features: BTreeMap<String, usize>,
}

pub fn run(ctx: &Context, args: SynthArgs) -> Result<()> {
    let config = SynthConfig {
        users: args.users,
        items: args.items,
        interactions: args.interactions,
        noise: args.noise,
        seed: args.seed,
        references: !args.no_references,
        reference_stream: args.reference_stream,
    };
    let dataset = synth::generate(&config)?;
    synth::write(&dataset, &config, &args.out)?;
    let summary = SynthSummary {
        out: args.out,
        users: dataset.num_users(),
        items: dataset.num_items(),
        interactions: dataset.interactions.len(),
        noisy: dataset.interactions.iter().filter(|i| i.reference.as_ref().is_some_and(|r| r.noisy)).count(),
        features: synth::feature_vocabulary(&dataset).into_iter().collect(),
    };
    if ctx.json {
        return print_json(&summary);
    }
    println!(
        "wrote {}: {} users, {} films, {} interactions ({} noisy references)",
        summary.out.display(),
        summary.users,
        summary.items,
        summary.interactions,
        summary.noisy
    );
    let features: Vec<String> = summary.features.iter().map(|(k, n)| format!("{n} {k}s")).collect();
    println!("features: {}", features.join(", "));
    Ok(())
}

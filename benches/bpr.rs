//! BPR-MF benchmark: training time on a synthetic dataset (default ~1M interactions) and per-user
//! top-10 latency, plus full-ranking test metrics of every built-in ranker. Prints one JSON
//! document. Run: `RAYON_NUM_THREADS=2 cargo bench --bench bpr` (add `-- --preset demo` for the
//! demo dataset's size). Results belong in docs/BENCHMARKS.md with the machine and thread count.

use std::time::Instant;

use anyhow::Result;
use clap::{Parser, ValueEnum};
use prism_explorer::config::Settings;
use prism_explorer::data::synth::{generate, SynthConfig};
use prism_explorer::data::{Part, Split};
use prism_explorer::rank::bpr::Bpr;
use prism_explorer::rank::{evaluate, ItemKnn, Popularity, Ranker, TrainMatrix};
use rand::{Rng, SeedableRng};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Preset {
    /// 20,000 users, 5,000 films, 1,000,000 interactions
    #[value(name = "1m")]
    OneMillion,
    /// The committed demo dataset's interactions (default seed; references are not generated)
    Demo,
}

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, value_enum, default_value_t = Preset::OneMillion)]
    preset: Preset,
    /// Users whose top-10 is timed
    #[arg(long, default_value_t = 2000)]
    latency_users: usize,
    /// Skip item-kNN (its fit is quadratic in history length)
    #[arg(long)]
    no_itemknn: bool,
    /// Override ranker.bpr.factors
    #[arg(long)]
    factors: Option<usize>,
    /// Override ranker.bpr.learning_rate
    #[arg(long)]
    learning_rate: Option<f32>,
    /// Override ranker.bpr.regularization
    #[arg(long)]
    regularization: Option<f32>,
    /// `cargo bench` passes `--bench`; accepted and ignored
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let synth = match args.preset {
        Preset::OneMillion => SynthConfig {
            users: 20_000,
            items: 5_000,
            interactions: 1_000_000,
            references: false,
            ..Default::default()
        },
        Preset::Demo => SynthConfig { references: false, ..Default::default() },
    };
    let settings = Settings::load_layers(None, None)?;
    let (mut config, k) = (settings.ranker.bpr.clone(), settings.ranker.k);
    config.factors = args.factors.unwrap_or(config.factors);
    config.learning_rate = args.learning_rate.unwrap_or(config.learning_rate);
    config.regularization = args.regularization.unwrap_or(config.regularization);

    let t = Instant::now();
    let dataset = generate(&synth)?;
    let generate_s = t.elapsed().as_secs_f64();
    let split = Split::leave_last_out(&dataset);
    let train = TrainMatrix::new(&dataset, &split);

    let t = Instant::now();
    let bpr = Bpr::train(&dataset, &split, &train, &config, k, &|line| eprintln!("{line}")).unwrap();
    let train_s = t.elapsed().as_secs_f64();

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut latencies_us: Vec<f64> = (0..args.latency_users.max(1))
        .map(|_| {
            let user = rng.random_range(0..dataset.num_users() as u32);
            let t = Instant::now();
            let top = bpr.recommend(&train, user, 10);
            let us = t.elapsed().as_secs_f64() * 1e6;
            assert_eq!(top.len(), 10);
            us
        })
        .collect();
    latencies_us.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies_us[((latencies_us.len() - 1) as f64 * p).round() as usize];

    let mut metrics = serde_json::Map::new();
    let mut add = |ranker: &dyn Ranker| {
        let m = evaluate(ranker, &dataset, &split, &train, Part::Test, 10);
        metrics.insert(
            ranker.name().to_owned(),
            serde_json::json!({"hr@10": m.hr, "ndcg@10": m.ndcg, "mrr": m.mrr}),
        );
    };
    add(&Popularity::fit(&train));
    if !args.no_itemknn {
        add(&ItemKnn::fit(&train, settings.ranker.itemknn.neighbours));
    }
    add(&bpr);

    let report = serde_json::json!({
        "preset": format!("{:?}", args.preset),
        "users": dataset.num_users(),
        "items": dataset.num_items(),
        "interactions": dataset.interactions.len(),
        "train_pairs": train.nnz(),
        "threads": rayon::current_num_threads(),
        "bpr": {"factors": config.factors, "epochs": config.epochs, "learning_rate": config.learning_rate,
                "regularization": config.regularization, "patience": config.patience, "seed": config.seed, "k": k},
        "generate_s": generate_s,
        "train_s": train_s,
        "epochs_run": bpr.report().epochs_run,
        "best_epoch": bpr.report().best_epoch,
        "best_dev_ndcg@10": bpr.report().best_dev_ndcg,
        "top10_latency_us": {"mean": latencies_us.iter().sum::<f64>() / latencies_us.len() as f64,
                             "p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)},
        "test": metrics,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

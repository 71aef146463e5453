//! Times every metric over a synthetic corpus of N explanations (default 100 000) on the CPU:
//! `cargo run --release --example bench_metrics -- [N]`. The corpus is seeded: ~20–40-word
//! sentences over a 3 000-word vocabulary with punctuation, half-overlapping references, up to
//! five feature ids per explanation out of 500, and per-item scores for the paired tests.

use std::time::Instant;

use prism_explorer::metrics::stats::{
    bootstrap_mean_ci, paired_bootstrap, paired_permutation_test, paired_t_test, wilcoxon, BootstrapConfig,
    WilcoxonOptions,
};
use prism_explorer::metrics::{
    feature_coverage_ratio, feature_diversity, feature_matching_ratio, GroundingCounts, GroundingRates,
    TextScores,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn main() {
    let n: usize = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 100_000,
        Some(Ok(n)) if n >= 2 => n,
        Some(_) => {
            eprintln!("bench_metrics: the argument must be a number of explanations ≥ 2");
            std::process::exit(2);
        }
    };
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let words: Vec<String> = (0..3000).map(|i| format!("w{i}")).collect();
    let punctuation = [",", ".", "!", "'s", "n't", "(", ")"];
    let sentence = |rng: &mut ChaCha8Rng, base: Option<&str>| -> String {
        let len = rng.random_range(20..40);
        let mut out: Vec<String> = match base {
            Some(b) => b.split(' ').filter(|_| rng.random_bool(0.5)).map(str::to_owned).collect(),
            None => Vec::new(),
        };
        while out.len() < len {
            if rng.random_bool(0.1) {
                out.push(punctuation[rng.random_range(0..punctuation.len())].to_owned());
            } else {
                out.push(
                    words[rng.random_range(0..words.len()).min(rng.random_range(0..words.len()))].clone(),
                );
            }
        }
        out.join(" ")
    };
    let hyps: Vec<String> = (0..n).map(|_| sentence(&mut rng, None)).collect();
    let refs: Vec<String> = hyps.iter().map(|h| sentence(&mut rng, Some(h))).collect();
    let features: Vec<Vec<u32>> =
        (0..n).map(|_| (0..rng.random_range(0..6)).map(|_| rng.random_range(0..500)).collect()).collect();
    let truth: Vec<[u32; 1]> = (0..n).map(|_| [rng.random_range(0..500)]).collect();
    let grounding: Vec<GroundingCounts> = (0..n)
        .map(|_| GroundingCounts {
            grounded: rng.random_range(0..3),
            item_only: rng.random_range(0..2),
            invented: usize::from(rng.random_bool(0.2)),
        })
        .collect();
    let a: Vec<f64> = (0..n).map(|_| rng.random_range(0.0..1.0)).collect();
    let b: Vec<f64> = a.iter().map(|x| x + rng.random_range(-0.3..0.29)).collect();

    println!("{n} explanations, {} threads", rayon::current_num_threads());
    let total = Instant::now();
    let text = time("text metrics (tokenise, BLEU-1/4, ROUGE-1/2/L, distinct-1/2, USR)", || {
        TextScores::compute(&hyps, &refs).expect("non-empty corpus")
    });
    println!("    BLEU-4 {:.2}, ROUGE-L F {:.2}", text.bleu4, text.rouge.rouge_l.f);
    time("FMR + FCR + DIV", || {
        (
            feature_matching_ratio(&features, &truth).expect("same length"),
            feature_coverage_ratio(&features, 500).expect("ids in range"),
            feature_diversity(&features).expect("n ≥ 2"),
        )
    });
    time("grounding rates", || GroundingRates::compute(&grounding).expect("non-empty"));
    let cfg = BootstrapConfig::default();
    time("bootstrap CI of a mean (1 000 resamples)", || bootstrap_mean_ci(&a, &cfg).expect("valid"));
    time("paired bootstrap (1 000 resamples)", || paired_bootstrap(&a, &b, &cfg).expect("valid"));
    time("paired permutation test (9 999 resamples)", || {
        paired_permutation_test(&a, &b, 9999, 42).expect("valid")
    });
    time("Wilcoxon signed-rank (normal approximation)", || {
        wilcoxon(&a, &b, WilcoxonOptions::default()).expect("valid")
    });
    time("paired t-test", || paired_t_test(&a, &b).expect("valid"));
    println!("total {:.3} s", total.elapsed().as_secs_f64());
}

/// Runs `f` and prints its wall-clock time and, where the platform reports it, the CPU time of
/// the process over the same span (on a shared machine the CPU time is the steadier number).
fn time<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let cpu_before = cpu_seconds();
    let start = Instant::now();
    let out = f();
    let wall = start.elapsed().as_secs_f64();
    match (cpu_before, cpu_seconds()) {
        (Some(a), Some(b)) => println!("{wall:>9.3} s wall {:>8.2} s cpu  {what}", b - a),
        _ => println!("{wall:>9.3} s wall  {what}"),
    }
    out
}

/// User + system CPU seconds of this process from `/proc/self/stat` (Linux; `None` elsewhere).
/// Fields 14 and 15 count clock ticks, 100 per second on Linux.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

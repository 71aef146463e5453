//! Generation throughput of our engine (the Rust side of bench/generate.sh): greedy and beam-5
//! decoding of exactly N new tokens (EOS suppressed with min_new_tokens = max_new_tokens, as the
//! transformers side does), median and best of several runs after warm-up (the best is the steadier figure on a shared
//! machine), one JSON line per mode.
//!
//! RAYON_NUM_THREADS=2 cargo run --release --example generate_bench -- DIR [N] [RUNS] [WARMUP]

use anyhow::{Context, Result};
use prism_explorer::model::engine::{Engine, EngineOptions};
use prism_explorer::model::GenerationOverrides;

/// The same prompt as bench/hf_generate.py.
const PROMPT: &str =
    "Explain why the user who liked space travel films and quiet dramas about lonely robots \
                      would enjoy this new science fiction drama.";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args.first().context("usage: generate_bench DIR [MAX_NEW_TOKENS] [RUNS] [WARMUP]")?;
    let number = |i: usize, default: usize| -> Result<usize> {
        args.get(i).map_or(Ok(default), |s| {
            s.parse().with_context(|| format!("argument {i}: '{s}' is not a number"))
        })
    };
    let (max_new, runs, warmup) = (number(1, 64)?, number(2, 5)?, number(3, 2)?);
    let engine = Engine::load(dir.as_ref(), &EngineOptions::default())?;
    let input = engine.tokenize(PROMPT)?;
    for beams in [1, 5] {
        let cfg = engine.config_with(&GenerationOverrides {
            num_beams: Some(beams),
            max_new_tokens: Some(max_new),
            min_new_tokens: Some(max_new),
            do_sample: Some(false),
            early_stopping: Some(prism_explorer::model::EarlyStopping::Heuristic),
            ..Default::default()
        });
        let mut times = Vec::new();
        let mut last = None;
        for i in 0..warmup + runs {
            let out = engine.generate_ids(std::slice::from_ref(&input), &cfg, None, None)?;
            if i >= warmup {
                times.push(out.stats.total_ms);
            }
            last = Some(out);
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let best = times[0];
        let stats = last.expect("at least one run").stats;
        let line = serde_json::json!({
            "engine": "prism",
            "mode": if beams == 1 { "greedy".to_string() } else { format!("beam-{beams}") },
            "threads": std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into()),
            "input_tokens": input.len(),
            "new_tokens": stats.new_tokens,
            "median_ms": round1(median),
            "best_ms": round1(best),
            "tokens_per_s": round1(stats.new_tokens as f64 / (median / 1000.0)),
            "best_tokens_per_s": round1(stats.new_tokens as f64 / (best / 1000.0)),
            "ttft_ms": stats.ttft_ms,
            "kv_cache_bytes": stats.kv_cache_bytes,
            "param_bytes": stats.param_bytes,
        });
        println!("{line}");
    }
    Ok(())
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

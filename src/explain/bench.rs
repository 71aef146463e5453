//! The speed protocol of `prism bench` (the paper's): one model explains fixed test-split inputs
//! one at a time (batch 1), warm-up runs first, then timed runs, cycling through the inputs. It
//! reports the latency distribution, time to first token, throughput, and what the model costs in
//! memory: its own — its weights as loaded and the largest peak of what one generation allocated
//! (KV cache, activations, logits; counted per generation by `model::stats`) — and, as a separate
//! figure, the growth of the process's peak resident set from just before the model was loaded to
//! the end of the runs (loading included).
//!
//! Memory is only meaningful for one model per process: `prism bench` runs each model in a child
//! process of its own (see `cli::bench`).

use std::path::Path;

use anyhow::{ensure, Result};
use serde::{Deserialize, Serialize};

use super::samples::Sample;
use super::{Explainer, Matcher, PromptKind, Prompts};
use crate::data::Dataset;
use crate::model::device::{device_memory_in_use, device_name};
use crate::model::engine::{Engine, EngineOptions};
use crate::model::stats::MemoryProbe;
use crate::model::{GenStats, GenerationOverrides};

/// How many runs, over which inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protocol {
    pub warmup: usize,
    pub runs: usize,
}

/// One model's figures (the per-model object of `prism bench --json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelBench {
    pub model: String,
    pub device: String,
    pub num_beams: usize,
    pub max_new_tokens: usize,
    /// Distinct inputs, cycled through by the runs.
    pub inputs: usize,
    pub mean_input_tokens: f64,
    pub warmup: usize,
    pub runs: usize,
    /// The weights' precision (`f32`, `bf16`, `f16`, `q8`, `q4`).
    pub dtype: String,
    pub load_ms: f64,
    /// Per explanation, over the timed runs.
    pub mean_ms: f64,
    pub median_ms: f64,
    pub p95_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    /// Every timed run's latency, in run order (what `prism bench --plot` draws).
    #[serde(default)]
    pub latencies_ms: Vec<f64>,
    pub mean_ttft_ms: f64,
    pub mean_new_tokens: f64,
    /// New tokens over the timed runs' total time.
    pub tokens_per_s: f64,
    pub param_count: usize,
    pub param_bytes: usize,
    pub max_kv_cache_bytes: usize,
    /// The largest of the timed generations' own peaks (`GenStats::generation_peak_bytes`).
    pub generation_peak_bytes: u64,
    /// Growth of the process's peak resident set from before loading to the end of the runs.
    pub peak_memory_bytes: u64,
    /// The process's resident set before loading (the dataset and the rest of the program).
    pub rss_before_load_bytes: u64,
    /// `vmhwm`, `vmrss-sampled` or `unavailable` (see `model::stats`).
    pub memory_method: String,
    /// Growth of device memory in use from before loading to its largest after a run (CUDA).
    pub device_memory_bytes: Option<u64>,
}

/// What a model needs to explain the samples.
pub struct BenchInputs<'a> {
    pub dataset: &'a Dataset,
    pub prompts: &'a Prompts,
    pub matcher: &'a Matcher,
    pub samples: &'a [Sample],
}

/// Loads the model in `dir` and runs the protocol on it.
pub fn bench_model(
    inputs: &BenchInputs<'_>,
    dir: &Path,
    kind: PromptKind,
    max_input_tokens: usize,
    options: &EngineOptions,
    overrides: &GenerationOverrides,
    protocol: Protocol,
) -> Result<ModelBench> {
    ensure!(!inputs.samples.is_empty(), "no inputs to benchmark on: the test split has no samples");
    ensure!(protocol.runs > 0, "--runs must be at least 1");
    let device_before = device_memory_in_use(&options.device);
    let mut probe = MemoryProbe::start();
    let engine = Engine::load(dir, options)?;
    // Before the first generation's probe resets the high-water mark: this keeps loading's peak.
    probe.sample();
    let explainer = Explainer {
        engine: &engine,
        kind,
        max_input_tokens,
        dataset: inputs.dataset,
        prompts: inputs.prompts,
        matcher: inputs.matcher,
    };
    let config = engine.config_with(overrides);
    let mut device_peak = device_before;
    let mut timed: Vec<GenStats> = Vec::with_capacity(protocol.runs);
    let bar = crate::progress::bar((protocol.warmup + protocol.runs) as u64, kind.name(), "runs");
    for run in 0..protocol.warmup + protocol.runs {
        let sample = &inputs.samples[run % inputs.samples.len()];
        let stats = explainer.explain(sample, &config, None, None)?.stats;
        probe.sample();
        device_peak = device_peak.max(stats.device_memory_bytes);
        if run >= protocol.warmup {
            timed.push(stats);
        }
        bar.inc(1);
    }
    drop(bar);
    let mut memory = GenStats::default();
    probe.finish(&mut memory);
    let info = engine.info();
    let n = timed.len() as f64;
    let in_order: Vec<f64> = timed.iter().map(|s| s.total_ms).collect();
    let mut latencies = in_order.clone();
    latencies.sort_by(f64::total_cmp);
    let total_ms: f64 = latencies.iter().sum();
    let new_tokens: usize = timed.iter().map(|s| s.new_tokens).sum();
    Ok(ModelBench {
        model: dir.display().to_string(),
        device: device_name(&options.device),
        num_beams: config.num_beams,
        max_new_tokens: config.max_new_tokens,
        inputs: inputs.samples.len().min(protocol.warmup + protocol.runs),
        mean_input_tokens: timed.iter().map(|s| s.input_tokens as f64).sum::<f64>() / n,
        warmup: protocol.warmup,
        runs: protocol.runs,
        dtype: info.dtype.name().into(),
        load_ms: engine.load_ms(),
        mean_ms: total_ms / n,
        median_ms: percentile(&latencies, 0.5),
        p95_ms: percentile(&latencies, 0.95),
        min_ms: latencies[0],
        max_ms: latencies[latencies.len() - 1],
        latencies_ms: in_order,
        mean_ttft_ms: timed.iter().map(|s| s.ttft_ms).sum::<f64>() / n,
        mean_new_tokens: new_tokens as f64 / n,
        tokens_per_s: new_tokens as f64 / (total_ms / 1000.0).max(1e-9),
        param_count: info.param_count,
        param_bytes: info.param_bytes,
        max_kv_cache_bytes: timed.iter().map(|s| s.kv_cache_bytes).max().unwrap_or(0),
        generation_peak_bytes: timed.iter().map(|s| s.generation_peak_bytes).max().unwrap_or(0),
        peak_memory_bytes: memory.peak_rss_growth_bytes,
        rss_before_load_bytes: memory.rss_before_bytes,
        memory_method: memory.memory_method,
        device_memory_bytes: device_peak.zip(device_before).map(|(peak, before)| peak.saturating_sub(before)),
    })
}

/// The memory a model costs: on a device, device memory plus the process's growth on the host
/// (tokenizer, buffers); on CPU the host growth alone.
pub fn memory_cost(bench: &ModelBench) -> u64 {
    bench.peak_memory_bytes + bench.device_memory_bytes.unwrap_or(0)
}

/// The model's own memory: its weights and the largest peak of one generation's allocations (the
/// explorer's memory panel adds up the same two).
pub fn model_memory(bench: &ModelBench) -> u64 {
    bench.param_bytes as u64 + bench.generation_peak_bytes
}

/// The `q`-quantile of sorted values, by the nearest-rank method (p95 of 100 runs is the 95th).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.5), 50.0);
        assert_eq!(percentile(&values, 0.95), 95.0);
        assert_eq!(percentile(&values, 1.0), 100.0);
        assert_eq!(percentile(&[7.0], 0.95), 7.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 0.5), 2.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}

//! `prism bench`: the Oracle and the Prism under the paper's speed protocol (batch 1, warm-up, timed
//! runs, beam 5, 150 new tokens by default) on fixed test-split inputs, with the speed-up and the
//! memory ratio. Each model runs in a child process of its own (this binary with `--child`), so
//! its memory is measured in isolation: nothing of the other model is resident or cached.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;

use super::explain::Which;
use super::{print_json, Context};
use crate::config::ModelSettings;
use crate::data::{self, Part, Split};
use crate::explain::bench::{bench_model, memory_cost, model_memory, BenchInputs, ModelBench, Protocol};
use crate::explain::inputs::ModelInputs;
use crate::explain::samples::Sample;
use crate::explain::samples::{samples, SampleSet};
use crate::explain::{decoding_overrides, Matcher, PromptKind, Prompts};
use crate::model::device::parse_device;
use crate::model::engine::{Engine, EngineOptions};
use crate::model::quality::compare;
use crate::model::WeightDtype;
use crate::validate::flag;
use candle_core::Device;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Untimed runs before the timed ones
    #[arg(long, default_value_t = 10, value_parser = flag::count)]
    pub warmup: usize,
    /// Timed runs (one explanation each)
    #[arg(long, default_value_t = 100, value_parser = flag::at_least_one)]
    pub runs: usize,
    #[arg(long, default_value_t = 5, value_parser = flag::at_least_one)]
    pub beams: usize,
    #[arg(long, default_value_t = 150, value_parser = flag::at_least_one)]
    pub max_new_tokens: usize,
    /// EOS is suppressed until this many new tokens: set it to --max-new-tokens to time exactly
    /// that many tokens, as a comparison between engines needs
    #[arg(long, default_value_t = 0, value_name = "N", value_parser = flag::count)]
    pub min_new_tokens: usize,
    /// Distinct test-split inputs, the first N users' held-out items, cycled through by the runs
    #[arg(long, default_value_t = 20, value_name = "N", value_parser = flag::at_least_one)]
    pub inputs: usize,
    #[arg(long, value_enum, default_value = "both")]
    pub model: Which,
    /// "cpu" or "cuda:N" [default: models.device]
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<String>,
    /// Weight precision of both models: f32, bf16, f16, q8 or q4 [default: models.oracle_dtype,
    /// models.prism_dtype]
    #[arg(long, value_name = "DTYPE", value_parser = WeightDtype::parse)]
    pub dtype: Option<WeightDtype>,
    /// Print the inputs, as each model reads them, instead of timing (`{"oracle":[…],"prism":[…]}`,
    /// for benchmarking other engines on the same inputs: bench/engines.sh). The prompts of any
    /// split, as a file: `prism explain --split test --prompts-only --out F.jsonl`
    #[arg(long)]
    pub print_inputs: bool,
    /// Instead of timing, measure how far --dtype strays from f32 on the same inputs: greedy-token
    /// agreement and mean |Δ log-prob| per generated token, teacher-forced on the f32 output
    /// (`{"oracle":{…},"prism":{…}}`; decoding is greedy, at most --max-new-tokens)
    #[arg(long)]
    pub quality: bool,
    /// Also draw each model's latency distribution (cumulative, over the timed runs) to this SVG
    #[arg(long, value_name = "F.svg")]
    pub plot: Option<std::path::PathBuf>,
    /// Benchmark only this model in this process and print its figures (what `prism bench` runs
    /// in each child process)
    #[arg(long, value_enum, hide = true)]
    pub child: Option<ChildModel>,
    #[command(flatten)]
    pub limits: super::LimitArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ChildModel {
    Oracle,
    Prism,
}

impl ChildModel {
    fn kind(self) -> PromptKind {
        match self {
            ChildModel::Oracle => PromptKind::Oracle,
            ChildModel::Prism => PromptKind::Prism,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct BenchOutput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oracle: Option<ModelBench>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prism: Option<ModelBench>,
    /// Oracle's mean latency per explanation over the Prism's.
    pub speedup: Option<f64>,
    /// Oracle's memory cost over the Prism's (peak resident-set growth, plus device memory).
    pub memory_ratio: Option<f64>,
    /// Oracle's own memory (weights + largest generation peak, `explain::bench::model_memory`, as
    /// the explorer's memory panel shows it) over the Prism's: the ratio without the engine's fixed
    /// costs (`gemm`'s per-thread packing buffers, the tokenizer), which do not grow with the model.
    pub model_memory_ratio: Option<f64>,
    pub device: String,
    pub threads: usize,
    pub protocol: Protocol,
}

pub fn run(ctx: &Context, args: BenchArgs) -> Result<()> {
    if let Some(child) = args.child {
        return print_json(&bench_in_this_process(ctx, &args, child.kind())?);
    }
    if args.print_inputs {
        return print_inputs(ctx, &args);
    }
    if args.quality {
        return quality(ctx, &args);
    }
    let mut oracle = None;
    let mut prism = None;
    for &kind in args.model.kinds() {
        eprintln!("benchmarking {} ({} warm-up + {} timed runs)…", kind.name(), args.warmup, args.runs);
        let figures = run_child(kind)?;
        match kind {
            PromptKind::Oracle => oracle = Some(figures),
            PromptKind::Prism => prism = Some(figures),
        }
    }
    let (speedup, memory_ratio, model_memory_ratio) = match (&oracle, &prism) {
        (Some(o), Some(p)) => (
            Some(o.mean_ms / p.mean_ms.max(1e-9)),
            Some(memory_cost(o) as f64 / memory_cost(p).max(1) as f64),
            Some(model_memory(o) as f64 / model_memory(p).max(1) as f64),
        ),
        _ => (None, None, None),
    };
    let out = BenchOutput {
        device: oracle.as_ref().or(prism.as_ref()).map(|m| m.device.clone()).unwrap_or_default(),
        oracle,
        prism,
        speedup,
        memory_ratio,
        model_memory_ratio,
        threads: rayon::current_num_threads(),
        protocol: Protocol { warmup: args.warmup, runs: args.runs },
    };
    if let Some(path) = &args.plot {
        let models: Vec<(&str, &[f64])> = [("oracle", &out.oracle), ("prism", &out.prism)]
            .into_iter()
            .filter_map(|(name, m)| m.as_ref().map(|m| (name, m.latencies_ms.as_slice())))
            .collect();
        super::plot::latencies(path, &models)?;
        if !ctx.json {
            eprintln!("latency distributions drawn to {}", path.display());
        }
    }
    if ctx.json {
        return print_json(&out);
    }
    print_table(&out);
    Ok(())
}

/// Runs this very command again with `--child MODEL` and reads the figures it prints.
fn run_child(kind: PromptKind) -> Result<ModelBench> {
    let exe = std::env::current_exe().context("cannot find the running prism binary")?;
    let output = Command::new(&exe)
        .args(std::env::args_os().skip(1))
        .args(["--child", kind.name()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", exe.display()))?;
    if !output.status.success() {
        bail!("benchmarking the {} failed ({})", kind.name(), output.status);
    }
    serde_json::from_slice(&output.stdout)
        .with_context(|| format!("the {} benchmark printed no figures", kind.name()))
}

/// The dataset side of a benchmark: the first `--inputs` test samples with what explains them.
struct Workload {
    dataset: data::Dataset,
    samples: Vec<Sample>,
    prompts: Prompts,
    matcher: Matcher,
    device: Device,
    /// `[models]` with the flags laid over it.
    models: ModelSettings,
}

impl Workload {
    fn load(ctx: &Context, args: &BenchArgs) -> Result<Workload> {
        let settings = &ctx.settings;
        let dataset = data::open(&settings.dataset)?;
        let split = Split::leave_last_out(&dataset);
        let mut test = samples(&dataset, &split, SampleSet::Held(Part::Test), settings.dataset.history_len);
        test.truncate(args.inputs);
        let mut models = settings.models.clone();
        args.limits.apply(&mut models);
        Ok(Workload {
            samples: test,
            prompts: Prompts::load(&settings.prompts)?,
            matcher: Matcher::new(&dataset),
            device: parse_device(args.device.as_deref().unwrap_or(&settings.models.device))?,
            models,
            dataset,
        })
    }

    fn options(&self, kind: PromptKind) -> Result<EngineOptions> {
        kind.engine_options(&self.models, self.device.clone())
    }

    fn inputs(&self) -> BenchInputs<'_> {
        BenchInputs {
            dataset: &self.dataset,
            prompts: &self.prompts,
            matcher: &self.matcher,
            samples: &self.samples,
        }
    }
}

fn bench_in_this_process(ctx: &Context, args: &BenchArgs, kind: PromptKind) -> Result<ModelBench> {
    let workload = Workload::load(ctx, args)?;
    let mut overrides = decoding_overrides(&ctx.settings.decoding);
    overrides.num_beams = Some(args.beams);
    overrides.max_new_tokens = Some(args.max_new_tokens);
    overrides.min_new_tokens = Some(args.min_new_tokens);
    let (dir, max_input_tokens) = kind.configured(&workload.models);
    let protocol = Protocol { warmup: args.warmup, runs: args.runs };
    let options = EngineOptions {
        dtype: Some(args.dtype.unwrap_or(kind.dtype(&workload.models))),
        ..workload.options(kind)?
    };
    bench_model(&workload.inputs(), dir, kind, max_input_tokens, &options, &overrides, protocol)
}

/// The prompts each model reads for the benchmark's inputs, as `prism explain --prompts-only`
/// writes them (the same [`ModelInputs`]), in one document for bench/engines.py.
fn print_inputs(ctx: &Context, args: &BenchArgs) -> Result<()> {
    let workload = Workload::load(ctx, args)?;
    let mut out = BTreeMap::new();
    for kind in [PromptKind::Oracle, PromptKind::Prism] {
        let inputs = ModelInputs::configured(kind, &workload.models)?;
        let texts = workload
            .samples
            .iter()
            .map(|s| inputs.prompt(&workload.dataset, &workload.prompts, s))
            .collect::<Result<Vec<_>>>()?;
        out.insert(kind.name(), texts);
    }
    print_json(&out)
}

fn quality(ctx: &Context, args: &BenchArgs) -> Result<()> {
    let workload = Workload::load(ctx, args)?;
    let mut out = BTreeMap::new();
    for &kind in args.model.kinds() {
        let (dir, max_input_tokens) = kind.configured(&workload.models);
        let dtype = args.dtype.unwrap_or(kind.dtype(&workload.models));
        let options = workload.options(kind)?;
        let reference = Engine::load(dir, &EngineOptions { dtype: None, ..options.clone() })?;
        let candidate = Engine::load(dir, &EngineOptions { dtype: Some(dtype), ..options })?;
        let explainer = crate::explain::Explainer {
            engine: &reference,
            kind,
            max_input_tokens,
            dataset: &workload.dataset,
            prompts: &workload.prompts,
            matcher: &workload.matcher,
        };
        let inputs = workload
            .samples
            .iter()
            .map(|s| reference.tokenize(&explainer.prompt(s)?.text))
            .collect::<Result<Vec<_>>>()?;
        let mut overrides = decoding_overrides(&ctx.settings.decoding);
        overrides.max_new_tokens = Some(args.max_new_tokens);
        let cfg = reference.config_with(&overrides);
        let agreement = compare(reference.model(), candidate.model(), reference.device(), &inputs, &cfg)?;
        if !ctx.json {
            println!(
                "{:<7} {} vs f32: greedy-token agreement {:.2}% over {} tokens, mean |Δ log p| {:.4}, identical outputs {:.0}%",
                kind.name(),
                agreement.dtype,
                100.0 * agreement.greedy_agreement,
                agreement.tokens,
                agreement.mean_abs_logprob_diff,
                100.0 * agreement.identical_outputs
            );
        }
        out.insert(kind.name(), agreement);
    }
    if ctx.json {
        return print_json(&out);
    }
    Ok(())
}

fn mb(bytes: f64) -> String {
    format!("{:.1} MB", bytes / 1e6)
}

fn print_table(out: &BenchOutput) {
    let models: Vec<(&str, &ModelBench)> = [("oracle", out.oracle.as_ref()), ("prism", out.prism.as_ref())]
        .into_iter()
        .filter_map(|(name, m)| m.map(|m| (name, m)))
        .collect();
    let Some((_, first)) = models.first() else { return };
    println!(
        "device {}, {} threads, beam {}, at most {} new tokens, {} inputs, {} warm-up + {} timed runs",
        out.device,
        out.threads,
        first.num_beams,
        first.max_new_tokens,
        first.inputs,
        first.warmup,
        first.runs
    );
    type Cell = fn(&ModelBench) -> String;
    let rows: [(&str, Cell); 10] = [
        ("mean ms / explanation", |m| format!("{:.1}", m.mean_ms)),
        ("median ms", |m| format!("{:.1}", m.median_ms)),
        ("p95 ms", |m| format!("{:.1}", m.p95_ms)),
        ("time to first token ms", |m| format!("{:.1}", m.mean_ttft_ms)),
        ("new tokens (mean)", |m| format!("{:.1}", m.mean_new_tokens)),
        ("tokens/s", |m| format!("{:.1}", m.tokens_per_s)),
        ("weights", |m| mb(m.param_bytes as f64)),
        ("generation peak", |m| mb(m.generation_peak_bytes as f64)),
        ("  of which KV cache", |m| mb(m.max_kv_cache_bytes as f64)),
        ("process peak growth (RSS)", |m| mb(memory_cost(m) as f64)),
    ];
    print!("{:<26}", "");
    for (name, _) in &models {
        print!("{name:>14}");
    }
    println!();
    for (label, value) in rows {
        print!("{label:<26}");
        for (_, m) in &models {
            print!("{:>14}", value(m));
        }
        println!();
    }
    if let (Some(speedup), Some(peak), Some(model)) = (out.speedup, out.memory_ratio, out.model_memory_ratio)
    {
        println!(
            "speed-up {speedup:.1}×, memory ratio {model:.1}× by weights + generation peak \
             ({peak:.1}× by process peak growth)"
        );
    }
}

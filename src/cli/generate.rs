//! `prism generate`: text from any seq2seq checkpoint directory, streamed to stdout with stats on
//! stderr, or (`--json`) one document `{"text","token_ids","stats"}`. Needs no dataset.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{anyhow, Context as _, Result};
use clap::Args;

use super::Context;
use crate::config::ModelSettings;
use crate::model::device::parse_device;
use crate::model::engine::{Engine, EngineOptions, TextEvent};
use crate::model::memory::parse_bytes_setting;
use crate::model::{EarlyStopping, GenStats, GenerationOverrides, WeightDtype};
use crate::validate::flag;

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Checkpoint directory in Hugging Face layout, a Hugging Face id found in the local cache
    /// (`NAMESPACE/NAME[@REVISION]`, never downloaded), or `oracle` / `prism` for the configured models
    #[arg(long, value_name = "DIR|ID")]
    pub model: PathBuf,
    /// Input text; `-` reads it from stdin
    #[arg(long, allow_hyphen_values = true)]
    pub prompt: String,
    /// Beam width (1 = greedy or sampling) [default: from the checkpoint]
    #[arg(long, value_parser = flag::at_least_one)]
    pub beams: Option<usize>,
    /// At most this many new tokens [default: from the checkpoint]
    #[arg(long, value_parser = flag::at_least_one)]
    pub max_new_tokens: Option<usize>,
    /// EOS is suppressed until this many new tokens
    #[arg(long, value_parser = flag::count)]
    pub min_new_tokens: Option<usize>,
    /// No n-gram of this size is generated twice (0 = off)
    #[arg(long, value_parser = flag::count)]
    pub no_repeat_ngram_size: Option<usize>,
    /// Beam score = sum of log-probabilities / length^PENALTY
    #[arg(long, value_parser = flag::finite_f32)]
    pub length_penalty: Option<f32>,
    /// Beam search stopping rule: true, false or never
    #[arg(long, value_parser = parse_early_stopping)]
    pub early_stopping: Option<EarlyStopping>,
    /// Penalty on tokens already generated (1.0 = off)
    #[arg(long, value_parser = flag::positive_f32)]
    pub repetition_penalty: Option<f32>,
    /// Sample instead of taking the most likely token
    #[arg(long)]
    pub sample: bool,
    /// Sampling temperature (implies --sample)
    #[arg(long, value_parser = flag::positive_f32)]
    pub temperature: Option<f32>,
    /// Sample among the K most likely tokens (implies --sample; 0 = all)
    #[arg(long, value_parser = flag::count)]
    pub top_k: Option<usize>,
    /// Sample among the most likely tokens holding this probability mass (implies --sample)
    #[arg(long, value_parser = flag::probability_f32)]
    pub top_p: Option<f32>,
    /// Sampling seed (the same seed gives the same text)
    #[arg(long)]
    pub seed: Option<u64>,
    /// `cpu` or `cuda:N` [default: models.device from the config]
    #[arg(long)]
    pub device: Option<String>,
    /// Weights precision: f32, bf16, f16, q8 or q4 (quantized at load) [default: f32, or a
    /// quantized checkpoint's own]
    #[arg(long)]
    pub dtype: Option<String>,
    #[command(flatten)]
    pub limits: super::LimitArgs,
}

fn parse_early_stopping(text: &str) -> Result<EarlyStopping, String> {
    EarlyStopping::parse(text).map_err(|e| e.to_string())
}

impl GenerateArgs {
    fn overrides(&self) -> GenerationOverrides {
        let implied_sampling = self.temperature.is_some() || self.top_k.is_some() || self.top_p.is_some();
        GenerationOverrides {
            max_new_tokens: self.max_new_tokens,
            min_new_tokens: self.min_new_tokens,
            num_beams: self.beams,
            length_penalty: self.length_penalty,
            early_stopping: self.early_stopping,
            no_repeat_ngram_size: self.no_repeat_ngram_size,
            repetition_penalty: self.repetition_penalty,
            do_sample: (self.sample || implied_sampling).then_some(true),
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            seed: self.seed,
        }
    }

    /// `oracle` and `prism` name the configured checkpoints unless a directory of that name
    /// exists; with the configured input length of that model when the directory is one of them.
    fn model_dir(&self, models: &ModelSettings) -> (PathBuf, Option<usize>) {
        let name = self.model.to_string_lossy();
        let dir = match name.as_ref() {
            "oracle" if !self.model.is_dir() => models.oracle.clone(),
            "prism" if !self.model.is_dir() => models.prism.clone(),
            _ => self.model.clone(),
        };
        let same = |configured: &std::path::Path| matches!((dir.canonicalize(), configured.canonicalize()), (Ok(a), Ok(b)) if a == b);
        let limit = if same(&models.oracle) {
            Some(models.oracle_max_input_tokens)
        } else if same(&models.prism) {
            Some(models.prism_max_input_tokens)
        } else {
            None
        };
        (dir, limit)
    }
}

#[derive(serde::Serialize)]
struct Output<'a> {
    text: &'a str,
    token_ids: &'a [u32],
    stats: &'a GenStats,
}

pub fn run(ctx: &Context, args: GenerateArgs) -> Result<()> {
    let prompt = if args.prompt == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("cannot read the prompt from stdin")?;
        text.trim_end_matches(['\n', '\r']).to_string()
    } else {
        args.prompt.clone()
    };
    let device = parse_device(args.device.as_deref().unwrap_or(&ctx.settings.models.device))?;
    let dtype = args.dtype.as_deref().map(WeightDtype::parse).transpose()?;
    let models = &ctx.settings.models;
    let (dir, configured_limit) = args.model_dir(models);
    let options = EngineOptions {
        device,
        dtype,
        max_input_tokens: args.limits.max_input_tokens.or(configured_limit),
        truncate: models.truncate && !args.limits.no_truncate,
        max_memory: match args.limits.max_memory {
            Some(bytes) => Some(bytes),
            None => parse_bytes_setting(&models.max_memory).map_err(|e| anyhow!("models.max_memory: {e}"))?,
        },
    };
    let engine = Engine::load(&dir, &options)?;
    let cfg = engine.config_with(&args.overrides());
    let input = engine.tokenize_counted(&prompt)?;
    if input.dropped > 0 {
        eprintln!(
            "warning: the prompt is {} tokens, more than the model's input length of {}: its last {} \
             tokens were dropped (the first ones and the special tokens kept; --no-truncate makes this \
             an error)",
            input.ids.len() + input.dropped,
            engine.input_limit(),
            input.dropped
        );
    }
    let inputs = [input.ids];

    if ctx.json {
        let out = engine.generate_ids(&inputs, &cfg, None, None)?;
        let generation = &out.generations[0];
        return super::print_json(&Output {
            text: &generation.text,
            token_ids: &generation.token_ids,
            stats: &out.stats,
        });
    }

    let stdout = std::io::stdout();
    let mut printed = String::new();
    let mut write_error = None;
    let mut on_text = |event: &TextEvent<'_>| {
        let mut lock = stdout.lock();
        if let Err(e) = lock.write_all(event.delta.as_bytes()).and_then(|_| lock.flush()) {
            write_error.get_or_insert(e);
        }
        printed.push_str(event.delta);
    };
    let out = engine.generate_ids(&inputs, &cfg, Some(&mut on_text), None)?;
    let text = &out.generations[0].text;
    let mut lock = stdout.lock();
    // Streaming shows only text that is final; what the last steps settled comes now.
    let rest = text.strip_prefix(printed.as_str()).unwrap_or(text);
    match write_error {
        Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
        Some(e) => return Err(e).context("cannot write to stdout"),
        None => {}
    }
    if !text.starts_with(printed.as_str()) {
        writeln!(lock)?;
    }
    writeln!(lock, "{rest}")?;
    drop(lock);
    eprintln!("{}", describe_stats(&out.stats));
    Ok(())
}

/// Two human-readable lines of [`GenStats`].
fn describe_stats(s: &GenStats) -> String {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let mut text = format!(
        "{} new tokens in {:.1} ms ({:.1} tokens/s; decoding {:.1} tokens/s) on {}, {} beam(s); \
         encode {:.1} ms, first token {:.1} ms",
        s.new_tokens,
        s.total_ms,
        s.tokens_per_s,
        s.decode_tokens_per_s,
        s.device,
        s.num_beams,
        s.encode_ms,
        s.ttft_ms
    );
    text.push_str(&format!(
        "\nparameters {:.1} MiB, KV cache peak {:.2} MiB, peak RSS growth {:.1} MiB ({})",
        mib(s.param_bytes as u64),
        mib(s.kv_cache_bytes as u64),
        mib(s.peak_rss_growth_bytes),
        s.memory_method
    ));
    if let Some(bytes) = s.device_memory_bytes {
        text.push_str(&format!(", device memory in use {:.1} MiB", mib(bytes)));
    }
    text
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(extra: &[&str]) -> GenerateArgs {
        let args = ["prism", "generate", "--model", "m", "--prompt", "p"].iter().chain(extra);
        match Cli::try_parse_from(args).unwrap().command {
            Some(Command::Generate(args)) => *args,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn sampling_knobs_imply_sampling_and_unset_options_stay_unset() {
        assert_eq!(parse(&[]).overrides(), GenerationOverrides::default());
        for knob in [["--top-p", "0.9"], ["--top-k", "5"], ["--temperature", "0.7"]] {
            assert_eq!(parse(&knob).overrides().do_sample, Some(true), "{knob:?}");
        }
        let o = parse(&["--beams", "4", "--early-stopping", "never", "--max-new-tokens", "9"]).overrides();
        assert_eq!(
            (o.num_beams, o.early_stopping, o.max_new_tokens),
            (Some(4), Some(EarlyStopping::Never), Some(9))
        );
        assert_eq!(o.do_sample, None);
    }

    #[test]
    fn a_prompt_may_start_with_a_hyphen() {
        let args = ["prism", "generate", "--model", "m", "--prompt", "-not a flag"];
        assert!(Cli::try_parse_from(args).is_ok());
    }
}

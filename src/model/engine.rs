//! [`Engine`]: one loaded checkpoint (model, tokenizer, decoding defaults, device) and the text-in,
//! text-out API that `prism generate`, the explainers and the TUI call. Streaming hands out the
//! decoded text that is final so far; cancellation returns what was generated, marked as such.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use candle_core::Device;
use tokenizers::{PostProcessor, Tokenizer, TruncationDirection};

use super::generate::{self, GenerationConfig, GenerationOverrides, Hooks, StepEvent};
use super::int8_cache;
use super::memory::{self, Dims, Workload};
use super::stats::{ms_since, GenStats};
use super::{Arch, Kernels, LoadOptions, ModelInfo, Seq2Seq, WeightDtype};

/// T5's input length when its config names none: relative positions do not bound it, and this is
/// what transformers' T5 tokenizers (`model_max_length`) and the original T5 training use.
pub const T5_DEFAULT_MAX_INPUT_TOKENS: usize = 512;

/// How to load a checkpoint.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    pub device: Device,
    /// Weights precision; `None` is f32 (what transformers loads by default, whatever the
    /// checkpoint was saved in), or a quantized checkpoint's own precision.
    pub dtype: Option<WeightDtype>,
    /// The model's input length; `None`: its config's (BART's `max_position_embeddings`, T5's
    /// `n_positions` or [`T5_DEFAULT_MAX_INPUT_TOKENS`]). Never more than BART's positions.
    pub max_input_tokens: Option<usize>,
    /// Longer inputs are cut as a tokenizer called with `truncation=True, max_length=N` cuts
    /// them (the first tokens kept, then the special tokens); `false`: they are an error.
    pub truncate: bool,
    /// The most memory one generation may take, weights included; `None`: what the OS and the
    /// cgroup leave ([`memory::available`]).
    pub max_memory: Option<u64>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            device: Device::Cpu,
            dtype: None,
            max_input_tokens: None,
            truncate: true,
            max_memory: None,
        }
    }
}

/// One generated text.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TextGeneration {
    pub text: String,
    /// New token ids (no decoder start token; EOS included when generated).
    pub token_ids: Vec<u32>,
    /// Ended with EOS rather than at the length limit or a cancellation.
    pub finished: bool,
    pub score: f32,
}

/// One step of a streamed generation, for one input of the batch.
#[derive(Debug)]
pub struct TextEvent<'a> {
    pub batch_index: usize,
    pub step: usize,
    /// The new token ids certain to be in the output (they only grow; the text may lag them by
    /// a token that ends mid-character).
    pub token_ids: &'a [u32],
    /// The final text so far (it only grows).
    pub text: &'a str,
    /// What this step added to `text` (often empty: a token can end mid-character or
    /// the beams can still disagree).
    pub delta: &'a str,
}

/// The result of [`Engine::generate`].
#[derive(Clone, Debug)]
pub struct EngineOutput {
    pub generations: Vec<TextGeneration>,
    pub cancelled: bool,
    pub stats: GenStats,
}

pub struct Engine {
    model: Box<dyn Seq2Seq>,
    tokenizer: Tokenizer,
    defaults: GenerationConfig,
    device: Device,
    dir: PathBuf,
    load_ms: f64,
    max_input: usize,
    truncate: bool,
    max_memory: Option<u64>,
    dims: Dims,
    config: serde_json::Value,
}

/// An input as token ids, cut to the model's input length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tokenized {
    pub ids: Vec<u32>,
    /// Tokens of the text left out (0 when it fitted).
    pub dropped: usize,
}

impl Engine {
    /// Puts together an already loaded model and tokenizer; `defaults` are its decoding defaults.
    pub fn from_parts(
        model: Box<dyn Seq2Seq>,
        tokenizer: Tokenizer,
        defaults: GenerationConfig,
        device: Device,
        max_input_tokens: Option<usize>,
    ) -> Result<Engine> {
        let tokenizer = prepare_tokenizer(tokenizer)?;
        let dims = Dims::guess(model.info());
        let max_input = input_limit(model.info(), None, max_input_tokens);
        Ok(Engine {
            model,
            tokenizer,
            defaults,
            device,
            dir: PathBuf::new(),
            load_ms: 0.0,
            max_input,
            truncate: true,
            max_memory: None,
            dims,
            config: serde_json::Value::Null,
        })
    }

    /// Loads the checkpoint in `dir` (Hugging Face layout): weights, `tokenizer.json`, and the
    /// decoding defaults of `generation_config.json` / `config.json`.
    /// `dir` may also be a Hugging Face id found in the local cache ([`super::hf_cache::resolve`]).
    pub fn load(dir: &Path, options: &EngineOptions) -> Result<Engine> {
        let start = Instant::now();
        let dir = &super::hf_cache::resolve(dir)?;
        if !dir.is_dir() {
            bail!("checkpoint directory {} does not exist", dir.display());
        }
        check_weights_fit(dir, options.max_memory)?;
        // Generation never needs gradients, so it gets candle's fused kernels.
        let load_options = LoadOptions {
            device: options.device.clone(),
            dtype: options.dtype.unwrap_or_default(),
            kernels: Kernels::Fused,
        };
        let (model, tokenizer) = super::load::load_with_tokenizer(dir, &load_options)?;
        let model: Box<dyn Seq2Seq> = Box::new(model);
        let tokenizer = prepare_tokenizer(tokenizer)?;
        let defaults = GenerationConfig::from_checkpoint(dir, model.info())?;
        let config: serde_json::Value = super::checkpoint::read_json(&dir.join("config.json"))?;
        let dims = Dims::from_config(&config, model.info());
        let max_input = input_limit(model.info(), Some(&config), options.max_input_tokens);
        Ok(Engine {
            model,
            tokenizer,
            defaults,
            device: options.device.clone(),
            dir: dir.to_path_buf(),
            load_ms: ms_since(start),
            max_input,
            truncate: options.truncate,
            max_memory: options.max_memory,
            dims,
            config,
        })
    }

    pub fn info(&self) -> &ModelInfo {
        self.model.info()
    }

    pub fn model(&self) -> &dyn Seq2Seq {
        self.model.as_ref()
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// `config.json` as the checkpoint has it, keys our models do not read included (`Null` for a
    /// model put together with [`Engine::from_parts`]).
    pub fn config(&self) -> &serde_json::Value {
        &self.config
    }

    /// The checkpoint directory this engine was loaded from (empty for [`Engine::from_parts`]).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Milliseconds it took to load the checkpoint.
    pub fn load_ms(&self) -> f64 {
        self.load_ms
    }

    /// The checkpoint's decoding defaults.
    pub fn defaults(&self) -> &GenerationConfig {
        &self.defaults
    }

    /// The checkpoint's defaults with `overrides` applied.
    pub fn config_with(&self, overrides: &GenerationOverrides) -> GenerationConfig {
        let mut cfg = self.defaults.clone();
        cfg.apply(overrides);
        cfg
    }

    /// The longest input this engine reads, in tokens (special tokens included).
    pub fn input_limit(&self) -> usize {
        self.max_input
    }

    /// Whether inputs longer than [`Engine::input_limit`] are cut (`false`: refused).
    pub fn truncates(&self) -> bool {
        self.truncate
    }

    /// Token ids of `text`, special tokens included, cut to [`Engine::input_limit`].
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.tokenize_counted(text)?.ids)
    }

    /// [`Engine::tokenize`], saying how many tokens were left out. The rule is transformers'
    /// `truncation=True` (`truncation_side="right"`): the text's first tokens are kept, as many as
    /// fit beside the special tokens the tokenizer adds (T5's `</s>`, BART's `<s>…</s>`). With
    /// truncation off, a text that does not fit is an error naming both lengths.
    pub fn tokenize_counted(&self, text: &str) -> Result<Tokenized> {
        let failed = |e| anyhow!("cannot tokenize the prompt: {e}");
        let encoding = self.tokenizer.encode(text, true).map_err(failed)?;
        if encoding.len() <= self.max_input {
            return Ok(Tokenized { ids: encoding.get_ids().to_vec(), dropped: 0 });
        }
        let total = encoding.len();
        if !self.truncate {
            bail!(
                "the input is {total} tokens, more than the model's input length of {} tokens \
                 (--max-input-tokens or the [models] config); shorten it, or leave out --no-truncate \
                 to have it cut",
                self.max_input
            );
        }
        let mut raw = self.tokenizer.encode(text, false).map_err(failed)?;
        let specials = self.tokenizer.get_post_processor().map_or(0, |p| p.added_tokens(false));
        let keep = self.max_input.saturating_sub(specials);
        let dropped = raw.len().saturating_sub(keep);
        raw.truncate(keep, 0, TruncationDirection::Right);
        let cut = self.tokenizer.post_process(raw, None, true).map_err(failed)?;
        Ok(Tokenized { ids: cut.get_ids().to_vec(), dropped })
    }

    /// Text of `ids`, special tokens skipped.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer.decode(ids, true).map_err(|e| anyhow!("cannot decode token ids: {e}"))
    }

    /// Generates one text per prompt (all prompts decoded together as one batch).
    pub fn generate(
        &self,
        prompts: &[&str],
        cfg: &GenerationConfig,
        on_text: Option<&mut dyn FnMut(&TextEvent<'_>)>,
        cancel: Option<&AtomicBool>,
    ) -> Result<EngineOutput> {
        let tokenized = prompts.iter().map(|p| self.tokenize_counted(p)).collect::<Result<Vec<_>>>()?;
        let dropped = tokenized.iter().map(|t| t.dropped).sum();
        let inputs: Vec<Vec<u32>> = tokenized.into_iter().map(|t| t.ids).collect();
        let mut out = self.generate_ids(&inputs, cfg, on_text, cancel)?;
        out.stats.input_tokens_dropped = dropped;
        Ok(out)
    }

    /// `Err` when an input is longer than the model reads or the generation's estimated peak
    /// memory exceeds the budget ([`memory::check`]).
    pub fn check_fits(&self, inputs: &[Vec<u32>], cfg: &GenerationConfig) -> Result<()> {
        let longest = inputs.iter().map(Vec::len).max().unwrap_or(0);
        if longest > self.max_input {
            bail!(
                "an input is {longest} tokens, more than the model's input length of {} tokens",
                self.max_input
            );
        }
        let info = self.info();
        let work = Workload {
            batch: inputs.len(),
            input_tokens: longest,
            beams: cfg.num_beams,
            max_new_tokens: cfg.max_new_tokens,
        };
        let element_bytes = info.dtype.float().size_in_bytes() as u64;
        let int8_kv_cache = int8_cache::applies(info.dtype, &self.device);
        let estimate =
            memory::estimate(&self.dims, info.param_bytes as u64, element_bytes, int8_kv_cache, work);
        memory::check(&estimate, work, self.max_memory).map_err(|e| anyhow!(e))
    }

    /// [`Engine::generate`] for inputs already tokenized.
    pub fn generate_ids(
        &self,
        inputs: &[Vec<u32>],
        cfg: &GenerationConfig,
        mut on_text: Option<&mut dyn FnMut(&TextEvent<'_>)>,
        cancel: Option<&AtomicBool>,
    ) -> Result<EngineOutput> {
        self.check_fits(inputs, cfg)?;
        let mut streamed: Vec<String> = vec![String::new(); inputs.len()];
        let mut decode_error = None;
        let mut on_step = |event: &StepEvent<'_>| {
            let Some(sink) = on_text.as_mut() else { return };
            let text = match self.decode(event.stable) {
                Ok(text) => text,
                Err(e) => {
                    decode_error.get_or_insert(e);
                    return;
                }
            };
            let shown = &mut streamed[event.batch_index];
            // Hold back text that ends inside a multi-byte character (byte-level BPE decodes a
            // partial character as U+FFFD) or that rewrites what was already shown.
            if text.ends_with('\u{FFFD}') || !text.starts_with(shown.as_str()) {
                return;
            }
            let delta = text[shown.len()..].to_string();
            *shown = text;
            sink(&TextEvent {
                batch_index: event.batch_index,
                step: event.step,
                token_ids: event.stable,
                text: shown,
                delta: &delta,
            });
        };
        let hooks = Hooks { on_step: Some(&mut on_step), cancel };
        let out = generate::generate(self.model.as_ref(), &self.device, inputs, cfg, hooks)?;
        if let Some(e) = decode_error {
            return Err(e);
        }
        let mut generations = Vec::with_capacity(out.sequences.len());
        for ((ids, finished), score) in out.sequences.into_iter().zip(out.finished).zip(out.scores) {
            generations.push(TextGeneration { text: self.decode(&ids)?, token_ids: ids, finished, score });
        }
        let stats = GenStats { load_ms: self.load_ms, ..out.stats };
        Ok(EngineOutput { generations, cancelled: out.cancelled, stats })
    }
}

/// What an [`Engine`] loaded from a checkpoint would read its input with, from `tokenizer.json`
/// and `config.json` alone (no weights are opened). Enough to render and measure a model's prompts
/// where the model itself runs elsewhere.
pub struct InputSide {
    /// The tokenizer, prepared as the engine prepares it.
    pub tokenizer: Tokenizer,
    /// The longest input the model can encode (BART's learned positions; `None` for T5).
    pub max_positions: Option<usize>,
    /// `config.json`, as [`Engine::config`] gives it.
    pub config: serde_json::Value,
}

/// The [`InputSide`] of the checkpoint in `dir`.
pub fn input_side(dir: &Path) -> Result<InputSide> {
    let config_path = dir.join("config.json");
    if !config_path.is_file() {
        bail!(
            "{} has no config.json; a checkpoint directory in Hugging Face layout needs one",
            dir.display()
        );
    }
    let config: serde_json::Value = super::checkpoint::read_json(&config_path)?;
    let arch =
        super::checkpoint::detect_arch(&config).map_err(|e| anyhow!("{}: {e}", config_path.display()))?;
    let max_positions = match arch {
        super::Arch::T5 => None,
        super::Arch::Bart => {
            let bart: super::bart::BartConfig = super::checkpoint::read_json(&config_path)?;
            Some(bart.max_position_embeddings)
        }
    };
    let tokenizer = prepare_tokenizer(super::checkpoint::load_tokenizer(dir)?)?;
    Ok(InputSide { tokenizer, max_positions, config })
}

fn prepare_tokenizer(mut tokenizer: Tokenizer) -> Result<Tokenizer> {
    // Generation pads batches itself, with the attention mask the model expects, and cuts inputs
    // itself, counting what it leaves out.
    tokenizer.with_padding(None);
    tokenizer.with_truncation(None).map_err(|e| anyhow!("invalid truncation: {e}"))?;
    Ok(tokenizer)
}

/// The input length: `configured` (or the config's), never more than BART's learned positions.
fn input_limit(info: &ModelInfo, config: Option<&serde_json::Value>, configured: Option<usize>) -> usize {
    let own = match info.arch {
        Arch::Bart => info.max_input_positions,
        Arch::T5 => config.and_then(|c| c.get("n_positions")).and_then(|v| v.as_u64()).map(|n| n as usize),
    };
    let limit = configured.or(own).unwrap_or(T5_DEFAULT_MAX_INPUT_TOKENS);
    info.max_input_positions.map_or(limit, |positions| limit.min(positions)).max(1)
}

/// Refuses a checkpoint whose weight files alone exceed the memory budget, before reading them.
fn check_weights_fit(dir: &Path, budget: Option<u64>) -> Result<()> {
    let weights: u64 = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.ends_with(".safetensors") || name.ends_with(".bin")
                })
                .filter_map(|e| e.metadata().ok().map(|m| m.len()))
                .sum()
        })
        .unwrap_or(0);
    let (limit, what) = match budget {
        Some(b) => (b, format!("the memory budget (--max-memory) of {}", memory::show_bytes(b))),
        None => match memory::available() {
            Some(a) => {
                (a.bytes, format!("the {} still available ({})", memory::show_bytes(a.bytes), a.sources))
            }
            None => return Ok(()),
        },
    };
    if weights > limit {
        bail!(
            "the weights in {} take {}, more than {what}; use a smaller model or raise --max-memory",
            dir.display(),
            memory::show_bytes(weights)
        );
    }
    Ok(())
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("dir", &self.dir).field("info", self.info()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_engine_can_be_shared_across_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Engine>();
    }

    #[test]
    fn a_missing_or_empty_checkpoint_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err =
            Engine::load(&dir.path().join("absent"), &EngineOptions::default()).unwrap_err().to_string();
        assert!(err.contains("absent"), "{err}");
        let err = format!("{:#}", Engine::load(dir.path(), &EngineOptions::default()).unwrap_err());
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
    }
}

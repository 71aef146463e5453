//! [`Engine`]: one loaded checkpoint (model, tokenizer, decoding defaults, device) and the text-in,
//! text-out API that `prism generate`, the explainers and the TUI call. Streaming hands out the
//! decoded text that is final so far; cancellation returns what was generated, marked as such.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use candle_core::Device;
use tokenizers::{Tokenizer, TruncationParams};

use super::generate::{self, GenerationConfig, GenerationOverrides, Hooks, StepEvent};
use super::stats::{ms_since, GenStats};
use super::{Kernels, LoadOptions, ModelInfo, Seq2Seq, WeightDtype};

/// How to load a checkpoint.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    pub device: Device,
    /// Weights precision; `None` is f32 (what transformers loads by default, whatever the
    /// checkpoint was saved in), or a quantized checkpoint's own precision.
    pub dtype: Option<WeightDtype>,
    /// Inputs longer than this are truncated (special tokens kept), as a tokenizer called with
    /// `truncation=True, max_length=N` does.
    pub max_input_tokens: Option<usize>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { device: Device::Cpu, dtype: None, max_input_tokens: None }
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
        let tokenizer = prepare_tokenizer(tokenizer, max_input_tokens)?;
        Ok(Engine { model, tokenizer, defaults, device, dir: PathBuf::new(), load_ms: 0.0 })
    }

    /// Loads the checkpoint in `dir` (Hugging Face layout): weights, `tokenizer.json`, and the
    /// decoding defaults of `generation_config.json` / `config.json`.
    pub fn load(dir: &Path, options: &EngineOptions) -> Result<Engine> {
        let start = Instant::now();
        if !dir.is_dir() {
            bail!("checkpoint directory {} does not exist", dir.display());
        }
        // Generation never needs gradients, so it gets candle's fused kernels.
        let load_options = LoadOptions {
            device: options.device.clone(),
            dtype: options.dtype.unwrap_or_default(),
            kernels: Kernels::Fused,
        };
        let (model, tokenizer) = super::load::load_with_tokenizer(dir, &load_options)?;
        let model: Box<dyn Seq2Seq> = Box::new(model);
        let tokenizer = prepare_tokenizer(tokenizer, options.max_input_tokens)?;
        let defaults = GenerationConfig::from_checkpoint(dir, model.info())?;
        Ok(Engine {
            model,
            tokenizer,
            defaults,
            device: options.device.clone(),
            dir: dir.to_path_buf(),
            load_ms: ms_since(start),
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

    /// Token ids of `text`, special tokens included, truncated to `max_input_tokens`.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        let encoding =
            self.tokenizer.encode(text, true).map_err(|e| anyhow!("cannot tokenize the prompt: {e}"))?;
        Ok(encoding.get_ids().to_vec())
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
        let inputs = prompts.iter().map(|p| self.tokenize(p)).collect::<Result<Vec<_>>>()?;
        self.generate_ids(&inputs, cfg, on_text, cancel)
    }

    /// [`Engine::generate`] for inputs already tokenized.
    pub fn generate_ids(
        &self,
        inputs: &[Vec<u32>],
        cfg: &GenerationConfig,
        mut on_text: Option<&mut dyn FnMut(&TextEvent<'_>)>,
        cancel: Option<&AtomicBool>,
    ) -> Result<EngineOutput> {
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

fn prepare_tokenizer(mut tokenizer: Tokenizer, max_input_tokens: Option<usize>) -> Result<Tokenizer> {
    // Generation pads batches itself, with the attention mask the model expects.
    tokenizer.with_padding(None);
    let truncation = max_input_tokens.map(|max_length| TruncationParams { max_length, ..Default::default() });
    tokenizer.with_truncation(truncation).map_err(|e| anyhow!("invalid truncation: {e}"))?;
    Ok(tokenizer)
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

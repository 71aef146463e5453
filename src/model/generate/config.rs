//! Decoding options ([`GenerationConfig`]), resolved as transformers does: its defaults, then the
//! checkpoint's `generation_config.json` (or, where a checkpoint has none, the generation keys of
//! its `config.json`), then explicit [`GenerationOverrides`].

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::ModelInfo;

/// When beam search stops, as transformers' `early_stopping`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EarlyStopping {
    /// `false`: stop when no running beam can beat the worst finished one, estimating the best
    /// reachable score at the current length.
    #[default]
    Heuristic,
    /// `true`: stop as soon as `num_beams` hypotheses have finished.
    Eager,
    /// `"never"`: stop only when no running beam can possibly beat the finished ones (the
    /// canonical beam search when `length_penalty` is 0).
    Never,
}

impl EarlyStopping {
    /// Parses the CLI and JSON spellings `true`, `false` and `never`.
    pub fn parse(text: &str) -> Result<EarlyStopping> {
        match text.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(EarlyStopping::Eager),
            "false" => Ok(EarlyStopping::Heuristic),
            "never" => Ok(EarlyStopping::Never),
            other => bail!("invalid early_stopping '{other}': expected true, false or never"),
        }
    }
}

impl Serialize for EarlyStopping {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            EarlyStopping::Heuristic => s.serialize_bool(false),
            EarlyStopping::Eager => s.serialize_bool(true),
            EarlyStopping::Never => s.serialize_str("never"),
        }
    }
}

impl<'de> Deserialize<'de> for EarlyStopping {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bool(true) => Ok(EarlyStopping::Eager),
            Raw::Bool(false) => Ok(EarlyStopping::Heuristic),
            Raw::Text(t) => EarlyStopping::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// Every decoding option, resolved. Lengths count new tokens: the decoder start token is not one.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GenerationConfig {
    pub max_new_tokens: usize,
    /// EOS is suppressed until this many tokens have been generated.
    pub min_new_tokens: usize,
    pub num_beams: usize,
    /// Exponent of the length in the beam score `sum_logprobs / len^length_penalty`.
    pub length_penalty: f32,
    pub early_stopping: EarlyStopping,
    /// 0 = off; otherwise no n-gram of this size occurs twice in a decoded sequence.
    pub no_repeat_ngram_size: usize,
    /// 1.0 = off (CTRL-style penalty on tokens already in the decoded sequence).
    pub repetition_penalty: f32,
    pub do_sample: bool,
    pub temperature: f32,
    /// 0 = off.
    pub top_k: usize,
    /// 1.0 = off.
    pub top_p: f32,
    /// Seed of the sampler; input `i` of a batch samples with its own generator seeded `seed + i`,
    /// so an input's output does not depend on the batch it is in.
    pub seed: u64,
    pub decoder_start_token_id: u32,
    pub pad_token_id: u32,
    pub eos_token_ids: Vec<u32>,
    /// Forced as the first new token.
    pub forced_bos_token_id: Option<u32>,
    /// Forced as the last token when `max_new_tokens` is reached.
    pub forced_eos_token_ids: Vec<u32>,
    /// Never generated (transformers' `suppress_tokens`).
    pub suppress_tokens: Vec<u32>,
}

/// Options given explicitly (command line, config, callers); each one set wins over the checkpoint.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GenerationOverrides {
    pub max_new_tokens: Option<usize>,
    pub min_new_tokens: Option<usize>,
    pub num_beams: Option<usize>,
    pub length_penalty: Option<f32>,
    pub early_stopping: Option<EarlyStopping>,
    pub no_repeat_ngram_size: Option<usize>,
    pub repetition_penalty: Option<f32>,
    pub do_sample: Option<bool>,
    pub temperature: Option<f32>,
    pub top_k: Option<usize>,
    pub top_p: Option<f32>,
    pub seed: Option<u64>,
}

/// An id or a list of ids, as `eos_token_id` may be written.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(u32),
    Many(Vec<u32>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<u32> {
        match self {
            OneOrMany::One(id) => vec![id],
            OneOrMany::Many(ids) => ids,
        }
    }
}

/// The generation keys of `generation_config.json` (and of `config.json`); others are ignored.
#[derive(Debug, Default, Deserialize)]
struct RawGenerationConfig {
    max_length: Option<usize>,
    max_new_tokens: Option<usize>,
    min_length: Option<usize>,
    min_new_tokens: Option<usize>,
    num_beams: Option<usize>,
    length_penalty: Option<f32>,
    early_stopping: Option<EarlyStopping>,
    no_repeat_ngram_size: Option<usize>,
    repetition_penalty: Option<f32>,
    do_sample: Option<bool>,
    temperature: Option<f32>,
    top_k: Option<usize>,
    top_p: Option<f32>,
    decoder_start_token_id: Option<u32>,
    pad_token_id: Option<u32>,
    eos_token_id: Option<OneOrMany>,
    forced_bos_token_id: Option<u32>,
    forced_eos_token_id: Option<OneOrMany>,
    suppress_tokens: Option<Vec<u32>>,
}

/// transformers' `GenerationConfig` default `max_length` (20 positions, the decoder start included).
const HF_DEFAULT_MAX_LENGTH: usize = 20;
/// transformers' default `top_k` (used only when sampling).
const HF_DEFAULT_TOP_K: usize = 50;

impl GenerationConfig {
    /// transformers' defaults, with the special tokens of `info` (from `config.json`).
    pub fn from_model_info(info: &ModelInfo) -> GenerationConfig {
        GenerationConfig {
            max_new_tokens: HF_DEFAULT_MAX_LENGTH - 1,
            min_new_tokens: 0,
            num_beams: 1,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
            no_repeat_ngram_size: 0,
            repetition_penalty: 1.0,
            do_sample: false,
            temperature: 1.0,
            top_k: HF_DEFAULT_TOP_K,
            top_p: 1.0,
            seed: 0,
            decoder_start_token_id: info.decoder_start_token_id,
            pad_token_id: info.pad_token_id,
            eos_token_ids: vec![info.eos_token_id],
            forced_bos_token_id: info.forced_bos_token_id,
            forced_eos_token_ids: info.forced_eos_token_id.into_iter().collect(),
            suppress_tokens: Vec::new(),
        }
    }

    /// The decoding defaults of the checkpoint in `dir`: `generation_config.json` when present,
    /// otherwise the generation keys of `config.json`, over transformers' defaults.
    pub fn from_checkpoint(dir: &Path, info: &ModelInfo) -> Result<GenerationConfig> {
        let mut config = GenerationConfig::from_model_info(info);
        let generation = dir.join("generation_config.json");
        let source = if generation.is_file() { generation } else { dir.join("config.json") };
        let mut keys = serde_json::Map::new();
        if source.is_file() {
            let text = std::fs::read_to_string(&source)
                .with_context(|| format!("cannot read {}", source.display()))?;
            let raw: RawGenerationConfig = serde_json::from_str(&text)
                .with_context(|| format!("{}: invalid generation keys", source.display()))?;
            config.apply_raw(raw);
            if let Ok(serde_json::Value::Object(map)) = serde_json::from_str(&text) {
                keys = map;
            }
        }
        config.check_token_ids(info.vocab_size, |key| {
            if keys.contains_key(key) {
                source.clone()
            } else {
                dir.join("config.json")
            }
        })?;
        Ok(config)
    }

    /// Every special token id must have an embedding row: an id past the vocabulary would fail
    /// deep in the first decoder step (start, forced tokens) or never match (end of sequence).
    /// `file_of` names the file that set a key.
    fn check_token_ids(&self, vocab_size: usize, file_of: impl Fn(&str) -> std::path::PathBuf) -> Result<()> {
        let mut ids = vec![
            ("decoder_start_token_id", self.decoder_start_token_id),
            ("pad_token_id", self.pad_token_id),
        ];
        ids.extend(self.eos_token_ids.iter().map(|&id| ("eos_token_id", id)));
        ids.extend(self.forced_bos_token_id.map(|id| ("forced_bos_token_id", id)));
        ids.extend(self.forced_eos_token_ids.iter().map(|&id| ("forced_eos_token_id", id)));
        ids.extend(self.suppress_tokens.iter().map(|&id| ("suppress_tokens", id)));
        for (key, id) in ids {
            if id as usize >= vocab_size {
                anyhow::bail!(
                    "{}: {key} = {id} is not a token of the model's vocabulary (ids 0 to {})",
                    file_of(key).display(),
                    vocab_size.saturating_sub(1)
                );
            }
        }
        Ok(())
    }

    fn apply_raw(&mut self, raw: RawGenerationConfig) {
        // Lengths in these files count the decoder start token; ours count new tokens only.
        if let Some(n) = raw.max_new_tokens.or(raw.max_length.map(|l| l.saturating_sub(1))) {
            self.max_new_tokens = n;
        }
        let from_min_length = raw.min_length.map_or(0, |l| l.saturating_sub(1));
        self.min_new_tokens = raw.min_new_tokens.unwrap_or(0).max(from_min_length);
        set(&mut self.num_beams, raw.num_beams);
        set(&mut self.length_penalty, raw.length_penalty);
        set(&mut self.early_stopping, raw.early_stopping);
        set(&mut self.no_repeat_ngram_size, raw.no_repeat_ngram_size);
        set(&mut self.repetition_penalty, raw.repetition_penalty);
        set(&mut self.do_sample, raw.do_sample);
        set(&mut self.temperature, raw.temperature);
        set(&mut self.top_k, raw.top_k);
        set(&mut self.top_p, raw.top_p);
        set(&mut self.decoder_start_token_id, raw.decoder_start_token_id);
        set(&mut self.pad_token_id, raw.pad_token_id);
        set(&mut self.suppress_tokens, raw.suppress_tokens);
        if let Some(eos) = raw.eos_token_id {
            self.eos_token_ids = eos.into_vec();
        }
        if raw.forced_bos_token_id.is_some() {
            self.forced_bos_token_id = raw.forced_bos_token_id;
        }
        if let Some(eos) = raw.forced_eos_token_id {
            self.forced_eos_token_ids = eos.into_vec();
        }
    }

    /// Applies every option set in `overrides`.
    pub fn apply(&mut self, overrides: &GenerationOverrides) {
        let o = overrides;
        set(&mut self.max_new_tokens, o.max_new_tokens);
        set(&mut self.min_new_tokens, o.min_new_tokens);
        set(&mut self.num_beams, o.num_beams);
        set(&mut self.length_penalty, o.length_penalty);
        set(&mut self.early_stopping, o.early_stopping);
        set(&mut self.no_repeat_ngram_size, o.no_repeat_ngram_size);
        set(&mut self.repetition_penalty, o.repetition_penalty);
        set(&mut self.do_sample, o.do_sample);
        set(&mut self.temperature, o.temperature);
        set(&mut self.top_k, o.top_k);
        set(&mut self.top_p, o.top_p);
        set(&mut self.seed, o.seed);
    }

    /// Rejects combinations that cannot be decoded, naming the option.
    pub fn validate(&self) -> Result<()> {
        if self.max_new_tokens == 0 {
            bail!("max_new_tokens must be at least 1");
        }
        if self.num_beams == 0 {
            bail!("num_beams must be at least 1");
        }
        if self.do_sample && self.num_beams > 1 {
            bail!("sampling with num_beams > 1 (beam sampling) is not supported; use 1 beam to sample");
        }
        if self.do_sample && !(self.temperature > 0.0 && self.temperature.is_finite()) {
            bail!("temperature must be a positive number, got {}", self.temperature);
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            bail!("top_p must be in (0, 1], got {}", self.top_p);
        }
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            bail!("repetition_penalty must be a positive number, got {}", self.repetition_penalty);
        }
        if !self.length_penalty.is_finite() {
            bail!("length_penalty must be a finite number");
        }
        if self.eos_token_ids.is_empty() {
            bail!("the checkpoint names no eos_token_id");
        }
        Ok(())
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

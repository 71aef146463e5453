//! A model's prompts without the model: the template of its kind rendered within its input length
//! and counted by its own tokenizer, both read from the checkpoint directory (`tokenizer.json`,
//! `config.json`; no weights are opened). What `prism explain --prompts-only` and `prism bench
//! --print-inputs` hand to other engines, so that they read exactly what ours would.

use std::path::Path;

use anyhow::{Context, Result};
use tokenizers::Tokenizer;

use super::prompt::recorded_history_len;
use super::samples::Sample;
use super::{render_prompt, PromptKind, Prompts};
use crate::config::ModelSettings;
use crate::data::Dataset;
use crate::model::engine::input_side;

/// The prompt length a model reads: the configured one, or less when the model cannot encode that
/// many positions.
pub fn input_budget(max_input_tokens: usize, max_input_positions: Option<usize>) -> usize {
    max_input_positions.map_or(max_input_tokens, |m| m.min(max_input_tokens))
}

/// What renders one model's prompts.
pub struct ModelInputs {
    pub kind: PromptKind,
    tokenizer: Tokenizer,
    recorded_history_len: Option<usize>,
    budget: usize,
}

impl ModelInputs {
    /// The inputs of the checkpoint in `dir`, read with prompts of `kind` cut to `max_input_tokens`.
    pub fn load(kind: PromptKind, dir: &Path, max_input_tokens: usize) -> Result<ModelInputs> {
        let context = || format!("cannot read the {} model's tokenizer and config", kind.name());
        let side = input_side(dir).with_context(context)?;
        let recorded_history_len = recorded_history_len(&side.config)
            .with_context(|| format!("the {} checkpoint {}", kind.name(), dir.display()))?;
        Ok(ModelInputs {
            kind,
            tokenizer: side.tokenizer,
            recorded_history_len,
            budget: input_budget(max_input_tokens, side.max_positions),
        })
    }

    /// The inputs of the configured model of `kind` (`[models]`).
    pub fn configured(kind: PromptKind, models: &ModelSettings) -> Result<ModelInputs> {
        let (dir, max_input_tokens) = kind.configured(models);
        ModelInputs::load(kind, dir, max_input_tokens)
    }

    /// The prompt length in tokens this model reads.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// The prompt this model reads for `sample`.
    pub fn prompt(&self, dataset: &Dataset, prompts: &Prompts, sample: &Sample) -> Result<String> {
        render_prompt(
            dataset,
            prompts,
            self.kind,
            sample,
            &self.tokenizer,
            self.recorded_history_len,
            self.budget,
        )
        .map(|p| p.text)
    }
}

//! Explaining one recommendation with a model: the prompt of the model's kind rendered within its
//! input length, generation with streaming and cancellation, and the result's grounding and
//! measurements — what `prism explain`, the distillation job and the explorer share.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use anyhow::Result;
use serde::Serialize;
use tokenizers::Tokenizer;

use super::grounding::{Matcher, MentionRecord, Summary};
use super::samples::Sample;
use super::Prompts;
use crate::config::{DecodingSettings, ModelSettings};
use crate::data::{Dataset, Item};
use crate::model::engine::{Engine, TextEvent};
use crate::model::{GenStats, GenerationConfig, GenerationOverrides, WeightDtype};

/// Which of the two prompt templates a model reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptKind {
    Oracle,
    Prism,
}

impl PromptKind {
    /// The configured checkpoint directory of this kind's model and the prompt length it reads.
    pub fn configured(self, models: &ModelSettings) -> (&Path, usize) {
        match self {
            PromptKind::Oracle => (&models.oracle, models.oracle_max_input_tokens),
            PromptKind::Prism => (&models.prism, models.prism_max_input_tokens),
        }
    }

    /// The configured weight precision of this kind's model.
    pub fn dtype(self, models: &ModelSettings) -> WeightDtype {
        match self {
            PromptKind::Oracle => models.oracle_dtype,
            PromptKind::Prism => models.prism_dtype,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PromptKind::Oracle => "oracle",
            PromptKind::Prism => "prism",
        }
    }
}

/// The configured decoding (`[decoding]`) as overrides of a checkpoint's own defaults.
pub fn decoding_overrides(decoding: &DecodingSettings) -> GenerationOverrides {
    GenerationOverrides {
        num_beams: Some(decoding.beams),
        max_new_tokens: Some(decoding.max_new_tokens),
        no_repeat_ngram_size: Some(decoding.no_repeat_ngram_size),
        length_penalty: Some(decoding.length_penalty),
        ..GenerationOverrides::default()
    }
}

/// Renders the prompt of `kind` for `sample`, cut to `max_tokens` of `tokenizer`.
pub fn render_prompt(
    dataset: &Dataset,
    prompts: &Prompts,
    kind: PromptKind,
    sample: &Sample,
    tokenizer: &Tokenizer,
    max_tokens: usize,
) -> Result<String> {
    let history: Vec<&Item> = sample.history.iter().map(|&i| dataset.item(i)).collect();
    let item = dataset.item(sample.item);
    let count = |text: &str| tokenizer.encode(text, true).map(|e| e.len()).unwrap_or(usize::MAX);
    let prompt = match kind {
        PromptKind::Oracle => prompts.oracle(&history, item, max_tokens, count)?,
        PromptKind::Prism => prompts.prism(&history, item, max_tokens, count)?,
    };
    Ok(prompt.text)
}

/// One model's explanation with its measurements (the per-model object of `prism explain`).
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    pub text: String,
    pub latency_ms: f64,
    pub ttft_ms: f64,
    pub new_tokens: usize,
    pub tokens_per_s: f64,
    pub param_bytes: usize,
    /// The process's resident set at its peak during generation.
    pub peak_rss_bytes: u64,
    pub grounding: Summary,
    /// Every mention with its byte span in `text`, for highlighting.
    pub mentions: Vec<MentionRecord>,
    pub prompt: String,
    pub stats: GenStats,
}

/// A model ready to explain recommendations of one dataset: its engine, prompt kind and input
/// length, with the dataset's prompts and grounding matcher.
pub struct Explainer<'a> {
    pub engine: &'a Engine,
    pub kind: PromptKind,
    pub max_input_tokens: usize,
    pub dataset: &'a Dataset,
    pub prompts: &'a Prompts,
    pub matcher: &'a Matcher,
}

impl Explainer<'_> {
    /// `max_input_tokens`, or less when the model cannot encode that many positions.
    pub fn input_budget(&self) -> usize {
        self.engine.info().max_input_positions.map_or(self.max_input_tokens, |m| m.min(self.max_input_tokens))
    }

    /// The prompt this model reads for `sample`.
    pub fn prompt(&self, sample: &Sample) -> Result<String> {
        render_prompt(
            self.dataset,
            self.prompts,
            self.kind,
            sample,
            self.engine.tokenizer(),
            self.input_budget(),
        )
    }

    /// Explains `sample`; `on_text` sees the text as it grows.
    pub fn explain(
        &self,
        sample: &Sample,
        decoding: &GenerationConfig,
        on_text: Option<&mut dyn FnMut(&TextEvent<'_>)>,
        cancel: Option<&AtomicBool>,
    ) -> Result<Explanation> {
        let prompt = self.prompt(sample)?;
        let out = self.engine.generate(&[prompt.as_str()], decoding, on_text, cancel)?;
        let text = out.generations[0].text.trim().to_owned();
        let grounding = self.matcher.ground(&text, &sample.history, sample.item);
        let stats = out.stats;
        Ok(Explanation {
            latency_ms: stats.total_ms,
            ttft_ms: stats.ttft_ms,
            new_tokens: stats.new_tokens,
            tokens_per_s: stats.tokens_per_s,
            param_bytes: stats.param_bytes,
            peak_rss_bytes: stats.rss_before_bytes + stats.peak_rss_growth_bytes,
            grounding: grounding.summary(),
            mentions: grounding.records(&text),
            text,
            prompt,
            stats,
        })
    }
}

//! Explaining one recommendation with a model: the prompt of the model's kind rendered within its
//! input length, generation with streaming and cancellation, and the result's grounding and
//! measurements — what `prism explain`, the distillation job and the explorer share.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use serde::Serialize;
use tokenizers::Tokenizer;

use super::grounding::{Matcher, MentionRecord, Summary};
use super::prompt::{item_line, recorded_history_len, Prompt};
use super::samples::Sample;
use super::slots::{self, Slots};
use super::verdict::Verdict;
use super::Prompts;
use crate::config::{DecodingSettings, ModelSettings};
use crate::data::Dataset;
use crate::model::engine::{Engine, EngineOptions, TextEvent};
use crate::model::memory::parse_bytes_setting;
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

    /// How to load this kind's model: on `device`, in its configured precision, reading at most its configured input length,
    /// cutting or refusing longer prompts and within the memory budget as `[models]` says.
    pub fn engine_options(
        self,
        models: &ModelSettings,
        device: candle_core::Device,
    ) -> Result<EngineOptions> {
        Ok(EngineOptions {
            device,
            dtype: Some(self.dtype(models)),
            max_input_tokens: Some(self.configured(models).1),
            truncate: models.truncate,
            max_memory: parse_bytes_setting(&models.max_memory)
                .map_err(|e| anyhow::anyhow!("models.max_memory: {e}"))?,
        })
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

/// Renders the prompt of `kind` for `sample`, cut to `max_tokens` of `tokenizer` by leaving out
/// the oldest history items (see [`Prompt`]); in slots when the tokenizer has them
/// ([`super::slots`]), with the slots the cut prompt shows. A Prism prompt shows the history window
/// its checkpoint recorded (`recorded_history_len`, [`super::prompt::recorded_history_len`]), else
/// the configured one.
pub fn render_prompt(
    dataset: &Dataset,
    prompts: &Prompts,
    kind: PromptKind,
    sample: &Sample,
    tokenizer: &Tokenizer,
    recorded_history_len: Option<usize>,
    max_tokens: usize,
) -> Result<Prompt> {
    let slots = slots::read_by(tokenizer).then(|| Slots::new(dataset, &sample.history, sample.item));
    let (history, item) = prompt_lines(dataset, sample, slots.as_ref());
    let count = |text: &str| tokenizer.encode(text, true).map(|e| e.len()).unwrap_or(usize::MAX);
    let mut prompt = match kind {
        PromptKind::Oracle => prompts.oracle(&history, &item, max_tokens, count),
        PromptKind::Prism => {
            prompts.prism(&history, &item, prompts.prism_history_len(recorded_history_len), max_tokens, count)
        }
    }?;
    // Slots exist for the newest `slots::HISTORY_SLOTS` history items only.
    prompt.history_dropped += sample.history.len() - history.len();
    prompt.slots = slots.map(|mut slots| {
        slots.keep_newest(prompt.history_used);
        slots
    });
    Ok(prompt)
}

/// The history lines (oldest first) and the item line of `sample`'s prompt: in `slots` when given,
/// else as text ([`item_line`]).
pub fn prompt_lines(dataset: &Dataset, sample: &Sample, slots: Option<&Slots>) -> (Vec<String>, String) {
    match slots {
        Some(slots) => (slots.history_lines(), slots.item_line()),
        None => (
            sample.history.iter().map(|&i| item_line(dataset.item(i))).collect(),
            item_line(dataset.item(sample.item)),
        ),
    }
}

impl Explanation {
    /// The one warning about its cut prompt (`max_tokens`: the input length it was cut to), or
    /// `None` when nothing was left out.
    pub fn truncation_warning(&self, kind: PromptKind, max_tokens: usize) -> Option<String> {
        (self.prompt_tokens_dropped > 0).then(|| {
            format!(
                "the {} prompt was cut to the model's input length of {max_tokens} tokens: its {} oldest \
                 history item(s), {} tokens, were left out (--no-truncate makes this an error)",
                kind.name(),
                self.history_cut,
                self.prompt_tokens_dropped
            )
        })
    }
}

/// One model's explanation with its measurements (the per-model object of `prism explain`).
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    /// The explanation as a reader sees it: a slot-reading model's slots filled.
    pub text: String,
    /// What a slot-reading model wrote, before its slots were filled ([`super::slots`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written: Option<String>,
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
    /// Title named, titles and features invented, kinds misattributed.
    pub verdict: Verdict,
    pub prompt: String,
    /// Oldest history items left out to fit the model's input length, and their tokens.
    pub history_cut: usize,
    pub prompt_tokens_dropped: usize,
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
    /// `max_input_tokens`, or less when the engine reads fewer (BART's positions).
    pub fn input_budget(&self) -> usize {
        self.engine.input_limit().min(self.max_input_tokens)
    }

    /// The prompt this model reads for `sample`; an error when it had to be cut and the engine
    /// does not truncate.
    pub fn prompt(&self, sample: &Sample) -> Result<Prompt> {
        let budget = self.input_budget();
        let recorded = recorded_history_len(self.engine.config()).with_context(|| {
            format!("the {} checkpoint {}", self.kind.name(), self.engine.dir().display())
        })?;
        let prompt = render_prompt(
            self.dataset,
            self.prompts,
            self.kind,
            sample,
            self.engine.tokenizer(),
            recorded,
            budget,
        )?;
        if prompt.tokens_dropped > 0 && !self.engine.truncates() {
            anyhow::bail!(
                "the {} prompt is {} tokens, more than the model's input length of {budget} tokens \
                 (models.{}_max_input_tokens or --max-input-tokens); without --no-truncate its {} \
                 oldest history item(s) would be left out",
                self.kind.name(),
                prompt.tokens_dropped + prompt.tokens,
                self.kind.name(),
                prompt.history_cut
            );
        }
        Ok(prompt)
    }

    /// Explains `sample`; `on_text` sees the text as it grows. A slot-reading model writes no slot
    /// its pair has no value for ([`Slots::unavailable`]).
    pub fn explain(
        &self,
        sample: &Sample,
        decoding: &GenerationConfig,
        on_text: Option<&mut dyn FnMut(&TextEvent<'_>)>,
        cancel: Option<&AtomicBool>,
    ) -> Result<Explanation> {
        let Prompt { text: prompt, history_cut, tokens_dropped, slots, .. } = self.prompt(sample)?;
        let constrained;
        let decoding = match &slots {
            Some(slots) => {
                constrained = slots.constrain(self.engine.tokenizer(), decoding);
                &constrained
            }
            None => decoding,
        };
        let out = match (&slots, on_text) {
            (Some(slots), Some(on_text)) => {
                let mut shown = String::new();
                let mut on_filled = |event: &TextEvent<'_>| {
                    let text = slots.fill(event.text);
                    // Filling can change what was shown ("a" before a vowel becomes "an"): then
                    // the whole text is the delta.
                    let delta = text.strip_prefix(shown.as_str()).unwrap_or(&text).to_owned();
                    on_text(&TextEvent { text: &text, delta: &delta, ..*event });
                    shown = text;
                };
                self.engine.generate(&[prompt.as_str()], decoding, Some(&mut on_filled), cancel)?
            }
            (_, on_text) => self.engine.generate(&[prompt.as_str()], decoding, on_text, cancel)?,
        };
        let written = out.generations[0].text.trim();
        let (text, written) = match &slots {
            Some(slots) => (slots.fill(written), Some(written.to_owned())),
            None => (written.to_owned(), None),
        };
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
            verdict: Verdict::of(self.matcher, &grounding, sample.item, &text),
            text,
            written,
            prompt,
            history_cut,
            prompt_tokens_dropped: tokens_dropped,
            stats,
        })
    }
}

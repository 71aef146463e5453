//! BERTScore with a local BERT or RoBERTa checkpoint, as `bert_score.score` computes it (for
//! `eval explain --bertscore`; loaded only when asked): each
//! sentence stripped and encoded with its special tokens (byte-level BPE with a space in front, the
//! package's `add_prefix_space=True`), truncated to the tokenizer's `model_max_length`, embedded
//! by the encoder (`model::bert`) at layer `num_layers`; the matching, idf and rescaling are
//! [`crate::metrics::bertscore`]'s. The default layer is the package's `model2layers` entry for
//! the model's name; other models need one given.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use candle_core::Device;
use serde::Serialize;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::metrics::bertscore::{self, Baseline, Embedded, Weights};
use crate::metrics::Prf;
use crate::model::bert::BertModel;
use crate::model::checkpoint::{load_tokenizer, read_json};
use crate::model::hf_cache;

/// `bert_score.utils.model2layers` for the BERT and RoBERTa models in it (the layer whose scores
/// correlated best with WMT16 human judgements).
const MODEL_LAYERS: &[(&str, usize)] = &[
    ("bert-base-uncased", 9),
    ("bert-large-uncased", 18),
    ("bert-base-cased-finetuned-mrpc", 9),
    ("bert-base-multilingual-cased", 9),
    ("bert-base-chinese", 8),
    ("roberta-base", 10),
    ("roberta-large", 17),
    ("roberta-large-mnli", 19),
    ("roberta-base-openai-detector", 7),
    ("roberta-large-openai-detector", 15),
    ("allenai/scibert_scivocab_uncased", 8),
    ("allenai/scibert_scivocab_cased", 9),
    ("nfliu/scibert_basevocab_uncased", 9),
    ("distilroberta-base", 5),
    ("google/bert_uncased_L-2_H-128_A-2", 1),
    ("google/bert_uncased_L-2_H-256_A-4", 1),
    ("google/bert_uncased_L-2_H-512_A-8", 1),
    ("google/bert_uncased_L-2_H-768_A-12", 2),
    ("google/bert_uncased_L-4_H-128_A-2", 3),
    ("google/bert_uncased_L-4_H-256_A-4", 3),
    ("google/bert_uncased_L-4_H-512_A-8", 3),
    ("google/bert_uncased_L-4_H-768_A-12", 3),
    ("google/bert_uncased_L-6_H-128_A-2", 5),
    ("google/bert_uncased_L-6_H-256_A-4", 5),
    ("google/bert_uncased_L-6_H-512_A-8", 5),
    ("google/bert_uncased_L-6_H-768_A-12", 5),
    ("google/bert_uncased_L-8_H-128_A-2", 7),
    ("google/bert_uncased_L-8_H-256_A-4", 7),
    ("google/bert_uncased_L-8_H-512_A-8", 6),
    ("google/bert_uncased_L-8_H-768_A-12", 7),
    ("google/bert_uncased_L-10_H-128_A-2", 8),
    ("google/bert_uncased_L-10_H-256_A-4", 8),
    ("google/bert_uncased_L-10_H-512_A-8", 9),
    ("google/bert_uncased_L-10_H-768_A-12", 8),
    ("google/bert_uncased_L-12_H-128_A-2", 10),
    ("google/bert_uncased_L-12_H-256_A-4", 11),
    ("google/bert_uncased_L-12_H-512_A-8", 10),
    ("google/bert_uncased_L-12_H-768_A-12", 9),
];

/// The package's default layer for a model named `spec` (an id such as `roberta-large` or
/// `FacebookAI/roberta-large@main`, or a directory whose name is one).
pub fn default_layer(spec: &str) -> Option<usize> {
    let name = spec.split('@').next().unwrap_or(spec).trim_end_matches('/');
    let last = name.rsplit('/').next().unwrap_or(name);
    MODEL_LAYERS.iter().find(|(key, _)| *key == name || *key == last).map(|&(_, layer)| layer)
}

/// What `--bertscore` and its companions ask for.
#[derive(Clone, Debug)]
pub struct BertScoreOptions {
    /// A checkpoint directory or a Hugging Face id in the local cache.
    pub model: PathBuf,
    /// `num_layers`; `None`: [`default_layer`].
    pub layer: Option<usize>,
    pub idf: bool,
    /// A baseline file in the package's `LAYER,P,R,F` format.
    pub baseline: Option<PathBuf>,
}

/// The settings a score was computed with, for reports.
#[derive(Clone, Debug, Serialize)]
pub struct BertScoreSettings {
    pub model: String,
    pub layer: usize,
    pub idf: bool,
    pub baseline: Option<String>,
    /// `model_max_length` (special tokens included) sentences were truncated to.
    pub max_tokens: usize,
}

pub struct BertScorer {
    model: BertModel,
    tokenizer: Tokenizer,
    /// [CLS] and [SEP] (`<s>`, `</s>`): weight 0 without idf.
    special: [u32; 2],
    prefix_space: bool,
    baseline: Option<Baseline>,
    pub settings: BertScoreSettings,
}

impl BertScorer {
    pub fn load(options: &BertScoreOptions, device: &Device) -> Result<BertScorer> {
        let spec = options.model.display().to_string();
        let dir = hf_cache::resolve(&options.model)?;
        let layer = match options.layer.or_else(|| default_layer(&spec)) {
            Some(layer) => layer,
            None => bail!(
                "--bertscore {spec}: no default layer for this model (bert-score knows them for its own \
                 list, e.g. roberta-large: 17); pass --bertscore-layer N"
            ),
        };
        let model = BertModel::load(&dir, layer, device)?;
        let mut tokenizer = load_tokenizer(&dir)?;
        let (cls, sep, max_length) = special_tokens(&dir, &tokenizer, model.config.is_roberta())?;
        let max_tokens = max_length.unwrap_or(usize::MAX).min(model.config.max_tokens());
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| anyhow!("{}: cannot set truncation: {e}", dir.display()))?;
        let baseline = match &options.baseline {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the BERTScore baseline {}", path.display()))?;
                Some(Baseline::parse(&text, &path.display().to_string(), layer)?)
            }
            None => None,
        };
        let settings = BertScoreSettings {
            model: spec,
            layer,
            idf: options.idf,
            baseline: options.baseline.as_ref().map(|p| p.display().to_string()),
            max_tokens,
        };
        let prefix_space = model.config.is_roberta();
        Ok(BertScorer { model, tokenizer, special: [cls, sep], prefix_space, baseline, settings })
    }

    /// `sent_encode`: the stripped sentence with its special tokens, truncated.
    fn encode(&self, sentence: &str) -> Result<Vec<u32>> {
        let text = sentence.trim();
        let text = if self.prefix_space && !text.is_empty() { format!(" {text}") } else { text.to_owned() };
        let encoding =
            self.tokenizer.encode(text, true).map_err(|e| anyhow!("cannot tokenize {sentence:?}: {e}"))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// P, R, F1 of each candidate against the reference at the same index (fractions; rescaled
    /// when a baseline was given). Idf, when on, comes from `references`.
    pub fn score(&self, candidates: &[&str], references: &[&str]) -> Result<Vec<Prf>> {
        if candidates.len() != references.len() {
            bail!("BERTScore: {} candidates but {} references", candidates.len(), references.len());
        }
        let encoded_refs = references.iter().map(|s| self.encode(s)).collect::<Result<Vec<_>>>()?;
        let weights =
            if self.settings.idf { Weights::idf(&encoded_refs) } else { Weights::uniform(&self.special) };
        let encoded_cands = candidates.iter().map(|s| self.encode(s)).collect::<Result<Vec<_>>>()?;
        let embedded = self.embed_unique(encoded_refs.iter().chain(&encoded_cands))?;
        let pairs: Vec<(&Embedded, &Embedded)> =
            encoded_cands.iter().zip(&encoded_refs).map(|(c, r)| (&embedded[c], &embedded[r])).collect();
        let scores = bertscore::score(&pairs, &weights);
        Ok(match &self.baseline {
            Some(b) => scores.into_iter().map(|s| b.rescale(s)).collect(),
            None => scores,
        })
    }

    /// Embeds each distinct token sequence once, in batches of similar length.
    fn embed_unique<'a>(
        &self,
        all: impl Iterator<Item = &'a Vec<u32>>,
    ) -> Result<HashMap<Vec<u32>, Embedded>> {
        const BATCH: usize = 16;
        let mut unique: Vec<&Vec<u32>> = all.collect();
        unique.sort_unstable_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        unique.dedup();
        let dim = self.model.config.hidden_size;
        let mut out = HashMap::with_capacity(unique.len());
        for batch in unique.chunks(BATCH) {
            let rows: Vec<Vec<u32>> = batch.iter().map(|ids| (*ids).clone()).collect();
            for (ids, vectors) in rows.iter().zip(self.model.hidden_states(&rows)?) {
                out.insert(ids.clone(), Embedded { ids: ids.clone(), vectors, dim });
            }
        }
        Ok(out)
    }
}

/// The [CLS]/[SEP] ids (from `tokenizer_config.json`'s `cls_token`/`sep_token`, else the
/// family's usual ones) and `model_max_length` when the config sets a real one.
fn special_tokens(dir: &Path, tokenizer: &Tokenizer, roberta: bool) -> Result<(u32, u32, Option<usize>)> {
    let path = dir.join("tokenizer_config.json");
    let config: serde_json::Value = if path.is_file() { read_json(&path)? } else { serde_json::Value::Null };
    let token = |key: &str, usual: &str| -> Result<u32> {
        let name = match config.get(key) {
            Some(serde_json::Value::String(s)) => s.as_str(),
            Some(serde_json::Value::Object(o)) => o.get("content").and_then(|c| c.as_str()).unwrap_or(usual),
            _ => usual,
        };
        tokenizer
            .token_to_id(name)
            .with_context(|| format!("{}: the tokenizer has no {key} {name:?}", dir.display()))
    };
    let (cls, sep) = if roberta { ("<s>", "</s>") } else { ("[CLS]", "[SEP]") };
    // transformers' "no limit" is 1e30; anything beyond usize is no limit too.
    let max_length =
        config.get("model_max_length").and_then(|v| v.as_u64()).and_then(|v| usize::try_from(v).ok());
    Ok((token("cls_token", cls)?, token("sep_token", sep)?, max_length))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_layers_follow_the_package_table_by_name() {
        assert_eq!(default_layer("roberta-large"), Some(17));
        assert_eq!(default_layer("FacebookAI/roberta-large@main"), Some(17));
        assert_eq!(default_layer("/models/bert-base-uncased/"), Some(9));
        assert_eq!(default_layer("google/bert_uncased_L-4_H-256_A-4"), Some(3));
        assert_eq!(default_layer("acme/tiny-bert"), None);
    }
}

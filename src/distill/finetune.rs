//! Fine-tunes a seq2seq model on (prompt → explanation) pairs of a dataset: the Oracle on the
//! dataset's reference explanations, the Prism on the teacher's kept explanations. A [`Recipe`]
//! (TOML) says which model (fresh config or checkpoint to start from), which tokenizer to train for
//! a fresh one, which prompt, the length limits and the trainer's hyper-parameters.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{anyhow, bail, Context, Result};
use candle_core::Device;
use rayon::prelude::*;
use tokenizers::Tokenizer;

use crate::data::Dataset;
use crate::durable;
use crate::explain::explainer::prompt_lines;
use crate::explain::prompt::{item_line, recorded_history_len, HISTORY_LEN_KEY};
use crate::explain::samples::Sample;
use crate::explain::slots::{self, Slots};
use crate::explain::{render_prompt, PromptKind};
use crate::explain::{Matcher, Prompts};
use crate::metrics::explainable::{GroundingCounts, GroundingRates};
use crate::metrics::rouge::corpus_rouge;
use crate::metrics::tokenize::Vocab;
use crate::model::checkpoint;
use crate::model::generate::{self, GenerationConfig, Hooks};
use crate::model::{Model, Seq2Seq};
use crate::train::{self, Example, TokenizerKind, TrainConfig, TrainEvent, TrainOutcome, TrainableModel};

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Start from this checkpoint (relative to the recipe file) … (neither: the caller supplies
    /// the checkpoint, as `prism distill --student DIR` does)
    #[serde(default)]
    pub init: Option<PathBuf>,
    /// … or from fresh weights with this `config.json` (its `vocab_size` is set from the trained
    /// tokenizer).
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    /// A fresh model starts with identity cross-attention values and outputs
    /// ([`TrainableModel::start_cross_attention_as_copy`]), so it learns to copy from its input
    /// many times sooner (docs/EMBEDDED_MODELS.md).
    #[serde(default)]
    pub copy_init: bool,
    /// A fresh model starts as an induction copier ([`crate::train::induction`]): from the first
    /// step it predicts the input token that followed the one it has just written.
    #[serde(default)]
    pub induction_init: bool,
}

/// The tokenizer of a run: for a fresh model, which one to train (`kind`, `vocab_size`); for
/// either, which entities get a token of their own.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizerSpec {
    #[serde(default)]
    pub kind: Option<TokenizerKind>,
    #[serde(default)]
    pub vocab_size: Option<usize>,
    /// `"catalogue"`: every title, person, genre and theme of the dataset's catalogue becomes one
    /// added token after the trained vocabulary ([`crate::train::add_entities`]); with `[model]
    /// init` the checkpoint's tokenizer and embeddings are extended by them. `"slots"`: the slot
    /// tokens instead ([`crate::explain::slots`]), so the model reads and writes slots.
    #[serde(default)]
    pub entities: Entities,
}

/// Which named entities get a token of their own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Entities {
    #[default]
    None,
    /// The dataset's titles and feature values ([`crate::explain::prompt::catalogue_entities`]).
    Catalogue,
    /// The slots of the dataset's feature kinds ([`crate::explain::slots::tokens`]).
    Slots,
}

impl TokenizerSpec {
    fn entities(&self, dataset: &Dataset) -> Vec<String> {
        match self.entities {
            Entities::None => Vec::new(),
            Entities::Catalogue => crate::explain::prompt::catalogue_entities(&dataset.items),
            Entities::Slots => slots::tokens(dataset),
        }
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub model: ModelSpec,
    /// Required for a fresh model: trained on the dataset's item lines, prompts and references.
    #[serde(default)]
    pub tokenizer: Option<TokenizerSpec>,
    pub prompt: PromptKind,
    /// What the model learns to write (`prism train`; the distillation job always learns the
    /// teacher's explanations).
    #[serde(default)]
    pub targets: Targets,
    pub max_input_tokens: usize,
    pub max_target_tokens: usize,
    /// Use at most this many training pairs (a seeded sample), `None` = all.
    #[serde(default)]
    pub train_limit: Option<usize>,
    /// Dev pairs for the loss (the first ones).
    pub dev_limit: usize,
    /// Dev pairs generated (greedy) at each evaluation for ROUGE-L and the invented-feature rate;
    /// 0 = loss only.
    #[serde(default)]
    pub eval_generate: usize,
    #[serde(default = "default_eval_tokens")]
    pub eval_max_new_tokens: usize,
    pub train: TrainConfig,
}

/// The text a training pair asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Targets {
    /// The dataset's reference explanations.
    #[default]
    References,
    /// The recommended item's own prompt line (title, year, features): a task that can only be
    /// learnt by reading the prompt: measures and trains a fresh model's reading
    /// (docs/EMBEDDED_MODELS.md).
    ItemLines,
}

fn default_eval_tokens() -> usize {
    64
}

impl Recipe {
    /// Reads a recipe; `init` is resolved against the file's directory.
    pub fn load(path: &Path) -> Result<Recipe> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read recipe {}", path.display()))?;
        let mut recipe: Recipe = toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        if let Some(init) = &recipe.model.init {
            let base = path.parent().unwrap_or(Path::new("."));
            recipe.model.init = Some(crate::model::hf_cache::relative_to(base, init));
        }
        if recipe.model.init.is_some() && recipe.model.config.is_some() {
            bail!(
                "{}: [model] takes one of `init` (a checkpoint) and `config` (fresh weights), not both",
                path.display()
            );
        }
        for (set, name) in
            [(recipe.model.copy_init, "copy_init"), (recipe.model.induction_init, "induction_init")]
        {
            if set && recipe.model.config.is_none() {
                bail!(
                    "{}: [model] {name} applies to fresh weights (`config`), not to a checkpoint",
                    path.display()
                );
            }
        }
        if recipe.model.copy_init && recipe.model.induction_init {
            bail!("{}: [model] takes one of copy_init and induction_init", path.display());
        }
        match (&recipe.model.config, &recipe.tokenizer) {
            (Some(_), None) => bail!("{}: a fresh model needs a [tokenizer] section", path.display()),
            (Some(_), Some(spec)) if spec.kind.is_none() || spec.vocab_size.is_none() => {
                bail!("{}: [tokenizer] of a fresh model needs `kind` and `vocab_size`", path.display())
            }
            (None, Some(spec)) if spec.kind.is_some() || spec.vocab_size.is_some() => bail!(
                "{}: [tokenizer] `kind` and `vocab_size` train a fresh model's tokenizer; a checkpoint \
                 (`[model] init`) keeps its own, extended only by `entities`",
                path.display()
            ),
            _ => {}
        }
        recipe.train.validate().with_context(|| format!("{}: [train]", path.display()))?;
        let mut c = crate::validate::Checks::new();
        c.int("max_input_tokens", recipe.max_input_tokens, 1, crate::config::MAX_INPUT_TOKENS);
        c.int("max_target_tokens", recipe.max_target_tokens, 1, 65_536);
        if let Some(limit) = recipe.train_limit {
            c.int("train_limit", limit, 1, usize::MAX);
        }
        c.int("eval_max_new_tokens", recipe.eval_max_new_tokens, 1, 65_536);
        if let Some(vocab_size) = recipe.tokenizer.as_ref().and_then(|t| t.vocab_size) {
            c.int("tokenizer.vocab_size", vocab_size, 16, 1_000_000);
        }
        c.finish(&path.display().to_string())?;
        Ok(recipe)
    }
}

/// A sample with the text the model learns to write for it.
#[derive(Clone, Debug)]
pub struct Pair {
    pub sample: Sample,
    pub target: String,
}

/// The samples that have a reference explanation, as pairs that learn to write it.
pub fn reference_pairs(samples: Vec<Sample>) -> Vec<Pair> {
    samples
        .into_iter()
        .filter_map(|sample| sample.reference.clone().map(|target| Pair { sample, target }))
        .collect()
}

/// The pairs `targets` asks for from `samples`.
pub fn target_pairs(dataset: &Dataset, samples: Vec<Sample>, targets: Targets) -> Vec<Pair> {
    match targets {
        Targets::References => reference_pairs(samples),
        Targets::ItemLines => samples
            .into_iter()
            .map(|sample| {
                let line = item_line(dataset.item(sample.item));
                let target = line.trim_start_matches("- ").to_owned();
                Pair { sample, target }
            })
            .collect(),
    }
}

/// Token ids of `text` cut to `max_tokens`, keeping the tokenizer's closing special token.
fn encode_target(tokenizer: &Tokenizer, text: &str, max_tokens: usize) -> Result<Vec<u32>> {
    let mut ids = tokenizer
        .encode(text, true)
        .map_err(|e| anyhow!("cannot tokenize {text:?}: {e}"))?
        .get_ids()
        .to_vec();
    if ids.len() > max_tokens {
        let last = *ids.last().expect("non-empty");
        ids.truncate(max_tokens.max(1) - 1);
        ids.push(last);
    }
    Ok(ids)
}

/// A pair as the model reads and writes it, with the slots its prompt shows (`None` for a model
/// that reads text).
pub struct Encoded {
    pub example: Example,
    pub slots: Option<Slots>,
}

/// The training examples for `pairs`, built in parallel. For a slot-reading tokenizer the target
/// is delexicalised against the slots its prompt shows ([`Slots::delexicalise`]), and a pair whose
/// target cites a title that has no slot there is `None`: the model could only spell it out,
/// which is what slots exist to spare it.
pub fn examples(
    dataset: &Dataset,
    prompts: &Prompts,
    matcher: &Matcher,
    recipe: &Recipe,
    tokenizer: &Tokenizer,
    history_len: usize,
    pairs: &[Pair],
) -> Result<Vec<Option<Encoded>>> {
    pairs
        .par_iter()
        .map(|pair| {
            let prompt = render_prompt(
                dataset,
                prompts,
                recipe.prompt,
                &pair.sample,
                tokenizer,
                Some(history_len),
                recipe.max_input_tokens,
            )?;
            let target = match &prompt.slots {
                Some(slots) => match slots.delexicalise(matcher, &pair.target) {
                    Ok(target) => target,
                    Err(_) => return Ok(None),
                },
                None => pair.target.clone(),
            };
            let source = tokenizer
                .encode(prompt.text.as_str(), true)
                .map_err(|e| anyhow!("cannot tokenize a prompt: {e}"))?;
            let example = Example {
                source: source.get_ids().to_vec(),
                target: encode_target(tokenizer, &target, recipe.max_target_tokens)?,
            };
            Ok(Some(Encoded { example, slots: prompt.slots }))
        })
        .collect()
}

/// How many prompt renderings the tokenizer corpus holds: the template's words must be as frequent
/// there as in training, or the tokenizer splits them into characters (measured: the Oracle's
/// instructions took 162 tokens instead of ~60 when the corpus held a single rendering).
const TOKENIZER_PROMPTS: usize = 2000;

/// Trains the recipe's tokenizer on what the model will read and write: item lines, rendered
/// prompts and the targets; then the entity tokens the recipe asks for.
fn train_tokenizer(
    dataset: &Dataset,
    prompts: &Prompts,
    matcher: &Matcher,
    spec: &TokenizerSpec,
    history_len: usize,
    pairs: &[Pair],
) -> Result<Tokenizer> {
    let slotted = spec.entities == Entities::Slots;
    let mut texts: Vec<String> =
        if slotted { Vec::new() } else { dataset.items.iter().map(item_line).collect() };
    let step = (pairs.len() / TOKENIZER_PROMPTS).max(1);
    for pair in pairs.iter().step_by(step) {
        let slots = slotted.then(|| Slots::new(dataset, &pair.sample.history, pair.sample.item));
        let (history, item) = prompt_lines(dataset, &pair.sample, slots.as_ref());
        texts.push(prompts.oracle.render_lines(&history, &item));
        let recent = &history[history.len().saturating_sub(history_len)..];
        texts.push(prompts.prism.render_lines(recent, &item));
    }
    for pair in pairs {
        if !slotted {
            texts.push(pair.target.clone());
        } else if let Ok(target) =
            Slots::new(dataset, &pair.sample.history, pair.sample.item).delexicalise(matcher, &pair.target)
        {
            texts.push(target);
        }
    }
    let (Some(kind), Some(vocab_size)) = (spec.kind, spec.vocab_size) else {
        bail!("[tokenizer] of a fresh model needs `kind` and `vocab_size`");
    };
    train::train_tokenizer(kind, vocab_size, texts.iter(), &spec.entities(dataset))
}

/// Where the tokenizer of a fresh run is kept (trained once, reused on resume).
const TOKENIZER_FILE: &str = "tokenizer.json";

/// Everything [`finetune`] needs.
pub struct Finetune<'a> {
    pub dataset: &'a Dataset,
    pub prompts: &'a Prompts,
    pub matcher: &'a Matcher,
    pub recipe: &'a Recipe,
    pub train: &'a [Pair],
    pub dev: &'a [Pair],
    pub out: &'a Path,
    pub device: &'a Device,
    pub on_event: &'a mut dyn FnMut(&TrainEvent),
    pub cancel: &'a AtomicBool,
    pub stop_at: Option<usize>,
}

/// Trains (or continues training) the recipe's model on `train`, selecting on `dev`; the best
/// model ends up in `out/best` in Hugging Face layout.
pub fn finetune(job: Finetune<'_>) -> Result<TrainOutcome> {
    let Finetune { dataset, prompts, matcher, recipe, train, dev, out, device, on_event, cancel, stop_at } =
        job;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let history_len = prompts.prism_history_len(recipe_history_len(recipe)?);
    let (mut model, tokenizer) = match (&recipe.model.init, &recipe.model.config, &recipe.tokenizer) {
        (Some(init), _, spec) => {
            let init = crate::model::hf_cache::resolve(init)?;
            let entities = spec.as_ref().map(|s| s.entities(dataset)).unwrap_or_default();
            checkpoint_with_entities(&init, &entities, device)?
        }
        (None, Some(config), Some(spec)) => {
            let path = out.join(TOKENIZER_FILE);
            let tokenizer = if path.exists() {
                checkpoint::load_tokenizer(out)?
            } else {
                let tokenizer = train_tokenizer(dataset, prompts, matcher, spec, history_len, train)?;
                let json = tokenizer.to_string(false).map_err(|e| anyhow!("cannot serialise the tokenizer: {e}"))?;
                durable::write_file(&path, json.as_bytes())?;
                tokenizer
            };
            let mut config = config.clone();
            config["vocab_size"] = tokenizer.get_vocab_size(true).into();
            let model = TrainableModel::fresh_seeded(&config, device, recipe.train.seed)?;
            if recipe.model.copy_init && model.start_cross_attention_as_copy()? == 0 {
                bail!("[model] copy_init needs square cross-attention projections (heads × head size = d_model)");
            }
            if recipe.model.induction_init {
                crate::train::induction::start_as_induction_copier(&model, &config, recipe.train.seed)
                    .context("[model] induction_init")?;
            }
            (model, tokenizer)
        }
        _ => bail!("the recipe names no model: give a checkpoint (`[model] init`, or `prism distill --student DIR`) or a fresh `[model.config]`"),
    };
    if recipe.prompt == PromptKind::Prism {
        model.model.set_config_extra(HISTORY_LEN_KEY, history_len.into());
    }
    let limited = limit(train, recipe.train_limit, recipe.train.seed);
    let encoded = examples(dataset, prompts, matcher, recipe, &tokenizer, history_len, &limited)?;
    let train_examples: Vec<Example> = encoded.into_iter().flatten().map(|e| e.example).collect();
    if train_examples.len() < limited.len() {
        crate::model::notice::warn(&format!(
            "{} of {} training pairs left out: their target cites a title their prompt has no slot for",
            limited.len() - train_examples.len(),
            limited.len()
        ));
    }
    let dev = &dev[..dev.len().min(recipe.dev_limit)];
    let (dev, dev_encoded): (Vec<&Pair>, Vec<Encoded>) = dev
        .iter()
        .zip(examples(dataset, prompts, matcher, recipe, &tokenizer, history_len, dev)?)
        .filter_map(|(pair, encoded)| Some((pair, encoded?)))
        .unzip();
    let generated = dev.len().min(recipe.eval_generate);
    let dev_examples: Vec<Example> = dev_encoded.iter().map(|e| e.example.clone()).collect();
    let mut evaluate = |model: &Model| {
        dev_generation_metrics(
            model,
            &tokenizer,
            &dev_encoded[..generated],
            &dev[..generated],
            matcher,
            recipe.eval_max_new_tokens,
            device,
        )
    };
    let evaluator: Option<&mut train::trainer::Evaluator<'_>> =
        if generated == 0 { None } else { Some(&mut evaluate) };
    train::train(train::Run {
        model: &model,
        tokenizer: &tokenizer,
        train: &train_examples,
        dev: &dev_examples,
        config: &recipe.train,
        out,
        evaluator,
        on_event,
        cancel,
        stop_at,
    })
}

/// The Prism history window the recipe's model records in its `config.json` (its `[model.config]`
/// or its `[model] init` checkpoint's), if it records one.
fn recipe_history_len(recipe: &Recipe) -> Result<Option<usize>> {
    match (&recipe.model.init, &recipe.model.config) {
        (Some(init), _) => {
            let dir = crate::model::hf_cache::resolve(init)?;
            let config = checkpoint::read_json(&dir.join("config.json"))?;
            recorded_history_len(&config).with_context(|| dir.display().to_string())
        }
        (None, Some(config)) => recorded_history_len(config).context("the recipe's [model.config]"),
        (None, None) => Ok(None),
    }
}

/// The checkpoint in `dir` and its tokenizer, both extended by a token for each of `entities` it
/// lacks: each new embedding row starts as the mean of the rows of the pieces its tokenizer split
/// the entity into.
fn checkpoint_with_entities(
    dir: &Path,
    entities: &[String],
    device: &Device,
) -> Result<(TrainableModel, Tokenizer)> {
    let mut tokenizer = checkpoint::load_tokenizer(dir)?;
    if entities.is_empty() {
        return Ok((TrainableModel::from_checkpoint(dir, device)?, tokenizer));
    }
    let old_size = tokenizer.get_vocab_size(true);
    let config: serde_json::Value = checkpoint::read_json(&dir.join("config.json"))?;
    if config["vocab_size"].as_u64() != Some(old_size as u64) {
        bail!(
            "{}: entity tokens need a checkpoint whose config.json vocab_size equals its tokenizer's \
             size ({old_size})",
            dir.display()
        );
    }
    let mut pieces = Vec::with_capacity(entities.len());
    for entity in entities {
        let text = format!(" {}", entity.trim());
        let ids = tokenizer
            .encode(text.as_str(), false)
            .map_err(|e| anyhow!("cannot tokenize the entity {entity:?}: {e}"))?
            .get_ids()
            .to_vec();
        pieces.push(ids);
    }
    train::add_entities(&mut tokenizer, entities)?;
    let mut new_tokens: Vec<(u32, Vec<u32>)> = entities
        .iter()
        .zip(pieces)
        .filter_map(|(entity, ids)| {
            let id = tokenizer.token_to_id(&format!(" {}", entity.trim()))?;
            (id as usize >= old_size).then_some((id, ids))
        })
        .collect();
    new_tokens.sort_by_key(|(id, _)| *id);
    new_tokens.dedup_by_key(|(id, _)| *id);
    if new_tokens.iter().enumerate().any(|(i, (id, _))| *id as usize != old_size + i) {
        bail!(
            "{}: the entity tokens did not get the ids right after the tokenizer's {old_size}",
            dir.display()
        );
    }
    let rows: Vec<Vec<u32>> = new_tokens.into_iter().map(|(_, ids)| ids).collect();
    let model = TrainableModel::from_checkpoint_with_new_tokens(dir, device, &rows)?;
    Ok((model, tokenizer))
}

/// A seeded subset of at most `limit` pairs (all of them, in order, without a limit).
fn limit(pairs: &[Pair], limit: Option<usize>, seed: u64) -> Vec<Pair> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    match limit {
        Some(n) if n < pairs.len() => {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut chosen: Vec<usize> = (0..pairs.len()).collect();
            chosen.shuffle(&mut rng);
            chosen.truncate(n);
            chosen.sort_unstable();
            chosen.into_iter().map(|i| pairs[i].clone()).collect()
        }
        _ => pairs.to_vec(),
    }
}

/// Greedy explanations for `pairs` scored against their targets: ROUGE-L F and the invented
/// feature rate (a slot-reading model's explanations filled first).
fn dev_generation_metrics(
    model: &Model,
    tokenizer: &Tokenizer,
    encoded: &[Encoded],
    pairs: &[&Pair],
    matcher: &Matcher,
    max_new_tokens: usize,
    device: &Device,
) -> Result<BTreeMap<String, f64>> {
    let mut config = GenerationConfig::from_model_info(model.info());
    config.max_new_tokens = max_new_tokens;
    config.num_beams = 1;
    let mut texts = Vec::with_capacity(encoded.len());
    for chunk in encoded.chunks(16) {
        let inputs: Vec<Vec<u32>> = chunk.iter().map(|e| e.example.source.clone()).collect();
        let out = generate::generate(model as &dyn Seq2Seq, device, &inputs, &config, Hooks::default())?;
        for (ids, e) in out.sequences.iter().zip(chunk) {
            let text = tokenizer.decode(ids, true).map_err(|e| anyhow!("cannot decode: {e}"))?;
            texts.push(e.slots.as_ref().map_or_else(|| text.clone(), |slots| slots.fill(&text)));
        }
    }
    let mut vocab = Vocab::new();
    let hyps: Vec<Vec<u32>> = texts.iter().map(|t| vocab.encode(t)).collect();
    let refs: Vec<Vec<u32>> = pairs.iter().map(|p| vocab.encode(&p.target)).collect();
    let rouge = corpus_rouge(&hyps, &refs)?;
    let counts: Vec<GroundingCounts> = texts
        .iter()
        .zip(pairs)
        .map(|(text, pair)| {
            let f = matcher.ground(text, &pair.sample.history, pair.sample.item).feature_counts;
            GroundingCounts { grounded: f.grounded, item_only: f.item_only, invented: f.invented }
        })
        .collect();
    let rates = GroundingRates::compute(&counts)?;
    Ok(BTreeMap::from([
        ("rouge_l".to_owned(), rouge.rouge_l.f),
        ("invented_rate".to_owned(), rates.invented_rate),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DatasetBuilder, Feature, Item};

    #[test]
    fn item_line_targets_write_back_the_recommended_items_line() {
        let mut b = DatasetBuilder::new("test");
        let user = b.intern_user("u");
        let item = b.set_item(Item {
            id: "m1".into(),
            title: "The Glass Harbor".into(),
            year: Some(2011),
            features: vec![Feature { kind: "genre".into(), value: "Drama".into() }],
        });
        let dataset = b.build();
        let sample = |reference: Option<&str>| Sample {
            user,
            item,
            history: vec![],
            reference: reference.map(str::to_owned),
            noisy_reference: false,
        };
        let lines = target_pairs(&dataset, vec![sample(None), sample(Some("ref"))], Targets::ItemLines);
        let texts: Vec<&str> = lines.iter().map(|p| p.target.as_str()).collect();
        assert_eq!(texts, ["The Glass Harbor (2011) — genre: Drama"; 2], "every sample, reference or not");
        let references = target_pairs(&dataset, vec![sample(None), sample(Some("ref"))], Targets::References);
        assert_eq!(references.iter().map(|p| p.target.as_str()).collect::<Vec<_>>(), ["ref"]);
    }

    #[test]
    fn starting_inits_are_refused_for_a_checkpoint_and_together() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.toml");
        let error = |model: &str| {
            let recipe = format!(
                "prompt = \"prism\"\nmax_input_tokens = 8\nmax_target_tokens = 8\ndev_limit = 1\n\
                 [model]\n{model}\n[train]\nepochs = 1\nbatch_size = 1\nlr = 1e-3\nseed = 1\n"
            );
            std::fs::write(&path, recipe).unwrap();
            Recipe::load(&path).unwrap_err().to_string()
        };
        let err = error("init = \"ckpt\"\ncopy_init = true");
        assert!(err.contains("copy_init applies to fresh weights"), "{err}");
        let err = error("init = \"ckpt\"\ninduction_init = true");
        assert!(err.contains("induction_init applies to fresh weights"), "{err}");
        let err = error("copy_init = true\ninduction_init = true\n[model.config]\nmodel_type = \"t5\"");
        assert!(err.contains("one of copy_init and induction_init"), "{err}");
    }

    #[test]
    fn a_checkpoint_keeps_its_tokenizer_but_takes_entities() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.toml");
        let load = |model: &str, tokenizer: &str| {
            let recipe = format!(
                "prompt = \"prism\"\nmax_input_tokens = 8\nmax_target_tokens = 8\ndev_limit = 1\n\
                 [model]\n{model}\n[tokenizer]\n{tokenizer}\n[train]\nepochs = 1\nbatch_size = 1\nlr = 1e-3\nseed = 1\n"
            );
            std::fs::write(&path, recipe).unwrap();
            Recipe::load(&path)
        };
        let recipe = load("init = \"ckpt\"", "entities = \"catalogue\"").unwrap();
        assert_eq!(recipe.tokenizer.unwrap().entities, Entities::Catalogue);
        let err =
            load("init = \"ckpt\"", "kind = \"bytelevelbpe\"\nvocab_size = 100").unwrap_err().to_string();
        assert!(err.contains("a checkpoint (`[model] init`) keeps its own"), "{err}");
        let err =
            load("[model.config]\nmodel_type = \"t5\"", "entities = \"catalogue\"").unwrap_err().to_string();
        assert!(err.contains("needs `kind` and `vocab_size`"), "{err}");
        let err = load("init = \"ckpt\"", "entities = \"all\"").unwrap_err().to_string();
        assert!(err.contains("entities"), "{err}");
    }

    #[test]
    fn the_window_comes_from_the_recipes_config_or_its_init_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.toml");
        let ckpt = dir.path().join("ckpt");
        std::fs::create_dir(&ckpt).unwrap();
        let window = |model: &str| {
            let recipe = format!(
                "prompt = \"prism\"\nmax_input_tokens = 8\nmax_target_tokens = 8\ndev_limit = 1\n\
                 [model]\n{model}\n[train]\nepochs = 1\nbatch_size = 1\nlr = 1e-3\nseed = 1\n"
            );
            std::fs::write(&path, recipe).unwrap();
            recipe_history_len(&Recipe::load(&path).unwrap())
        };
        let fresh = |extra: &str| {
            format!("[model.config]\nmodel_type = \"bart\"\n{extra}\n[tokenizer]\nkind = \"bytelevelbpe\"\nvocab_size = 100")
        };
        assert_eq!(window(&fresh("prism_history_len = 20")).unwrap(), Some(20));
        assert_eq!(window(&fresh("")).unwrap(), None);
        std::fs::write(ckpt.join("config.json"), r#"{"model_type": "bart", "prism_history_len": 7}"#)
            .unwrap();
        assert_eq!(window("init = \"ckpt\"").unwrap(), Some(7));
        std::fs::write(ckpt.join("config.json"), r#"{"model_type": "bart", "prism_history_len": 0}"#)
            .unwrap();
        let err = format!("{:#}", window("init = \"ckpt\"").unwrap_err());
        assert!(err.contains("ckpt") && err.contains("`prism_history_len` must be"), "{err}");
    }
}

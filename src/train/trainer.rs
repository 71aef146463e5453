//! The training loop: AdamW with warm-up and decay, global-norm clipping, gradient accumulation,
//! label smoothing, dropout, evaluation on dev with best-checkpoint selection and early stopping,
//! atomic checkpoints in Hugging Face layout, and exact resume after a kill.
//!
//! A run directory holds `last/` (the newest checkpoint: model files, `optimizer.safetensors`,
//! `trainer_state.json`) and `best/` (the best model on dev). Both are replaced atomically. The
//! batches of an epoch and the dropout masks of a step are functions of the seed, so a resumed
//! run takes exactly the steps an uninterrupted one would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use tokenizers::Tokenizer;

use super::batch::{collate, epoch_batches, seq2seq_loss, Example};
use super::optim::{AdamW, AdamWParams, Schedule};
use crate::durable;
use crate::model::bart::{Bart, BartConfig};
use crate::model::checkpoint::{self, Checkpoint};
use crate::model::t5::{T5Config, T5};
use crate::model::{Arch, Model, Seq2Seq};

/// Hyper-parameters of a run. Everything that decides which steps are taken is here, so a resume
/// can check that it continues the same run.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub epochs: usize,
    /// Stop after this many optimizer steps even inside an epoch.
    #[serde(default)]
    pub max_steps: Option<usize>,
    pub batch_size: usize,
    #[serde(default = "one")]
    pub grad_accum: usize,
    pub lr: f64,
    #[serde(default = "default_wd")]
    pub weight_decay: f64,
    #[serde(default)]
    pub warmup_steps: usize,
    #[serde(default = "default_schedule")]
    pub schedule: Schedule,
    /// Clip gradients to this global L2 norm.
    #[serde(default)]
    pub clip_norm: Option<f64>,
    #[serde(default)]
    pub label_smoothing: f64,
    pub seed: u64,
    /// Evaluate on dev every this many steps; `None` = at the end of each epoch.
    #[serde(default)]
    pub eval_every: Option<usize>,
    /// Write `last/` every this many steps (and always after an evaluation and at the end).
    #[serde(default = "default_save_every")]
    pub save_every: usize,
    /// Stop after this many evaluations without improvement.
    #[serde(default)]
    pub patience: Option<usize>,
    /// The dev metric that selects the best checkpoint: `dev_loss` or a name the evaluator returns.
    #[serde(default = "default_select")]
    pub select: String,
    /// Whether a larger `select` value is better.
    #[serde(default)]
    pub select_higher: bool,
}

fn one() -> usize {
    1
}
fn default_wd() -> f64 {
    0.01
}
fn default_schedule() -> Schedule {
    Schedule::Linear
}
fn default_save_every() -> usize {
    50
}
fn default_select() -> String {
    "dev_loss".into()
}

impl TrainConfig {
    /// Optimizer steps the run will take for `train_examples`.
    pub fn total_steps(&self, train_examples: usize) -> usize {
        let batches = train_examples.div_ceil(self.batch_size.max(1));
        let per_epoch = batches.div_ceil(self.grad_accum.max(1));
        let all = per_epoch * self.epochs;
        self.max_steps.map_or(all, |m| m.min(all))
    }

    /// Every number in range (keys as a recipe's `[train]` section names them).
    pub fn validate(&self) -> Result<()> {
        use std::ops::Bound::{Excluded, Included};
        const MANY: usize = 1_000_000_000;
        let mut c = crate::validate::Checks::new();
        c.int("epochs", self.epochs, 1, 1_000_000);
        if let Some(max_steps) = self.max_steps {
            c.int("max_steps", max_steps, 1, MANY);
        }
        c.int("batch_size", self.batch_size, 1, 65_536);
        c.int("grad_accum", self.grad_accum, 1, 65_536);
        c.float("lr", self.lr, Excluded(0.0), Included(10.0));
        c.float("weight_decay", self.weight_decay, Included(0.0), Included(10.0));
        c.int("warmup_steps", self.warmup_steps, 0, MANY);
        if let Some(clip) = self.clip_norm {
            c.float("clip_norm", clip, Excluded(0.0), Included(1e6));
        }
        c.float("label_smoothing", self.label_smoothing, Included(0.0), Excluded(1.0));
        if let Some(every) = self.eval_every {
            c.int("eval_every", every, 1, MANY);
        }
        c.int("save_every", self.save_every, 1, MANY);
        c.finish("training settings")
    }
}

/// A model whose parameters are `Var`s the optimizer can update.
pub struct TrainableModel {
    pub model: Model,
    varmap: VarMap,
}

/// Fresh parameters drawn from a seed: candle's CPU generator cannot be seeded, so the random
/// initialisers are drawn here, each parameter from a generator seeded by (seed, its name), which
/// makes a fresh model a function of its seed whatever order it asks for its parameters in.
struct SeededInit {
    varmap: VarMap,
    seed: u64,
}

impl SeededInit {
    fn draw(
        &self,
        shape: &candle_core::Shape,
        name: &str,
        init: candle_nn::Init,
    ) -> candle_core::Result<Vec<f32>> {
        use rand::{Rng, SeedableRng};
        let named = name
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(self.seed ^ named);
        let n = shape.elem_count();
        match init {
            candle_nn::Init::Randn { mean, stdev } => Ok((0..n)
                .map(|_| {
                    // Box–Muller.
                    let (u, v): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random::<f64>());
                    (mean + stdev * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
                })
                .collect()),
            candle_nn::Init::Uniform { lo, up } => {
                Ok((0..n).map(|_| rng.random_range(lo..up) as f32).collect())
            }
            candle_nn::Init::Const(value) => Ok(vec![value as f32; n]),
            other => candle_core::bail!("{name}: no seeded initialiser for {other:?}"),
        }
    }
}

impl candle_nn::var_builder::SimpleBackend for SeededInit {
    fn get(
        &self,
        shape: candle_core::Shape,
        name: &str,
        init: candle_nn::Init,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let mut vars = self.varmap.data().lock().expect("the parameter map is not poisoned");
        if let Some(var) = vars.get(name) {
            if var.shape() != &shape {
                candle_core::bail!("{name}: asked for shape {shape:?}, made as {:?}", var.shape());
            }
            return Ok(var.as_tensor().clone());
        }
        let values = Tensor::from_vec(self.draw(&shape, name, init)?, shape, device)?.to_dtype(dtype)?;
        let var = Var::from_tensor(&values)?;
        vars.insert(name.to_owned(), var.clone());
        Ok(var.as_tensor().clone())
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _device: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("{name}: a fresh model's parameters need a shape")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.varmap.data().lock().expect("the parameter map is not poisoned").contains_key(name)
    }
}

impl TrainableModel {
    /// Fresh weights for a `config.json` value (T5 or BART, detected as for loading), drawn with
    /// seed 0.
    pub fn fresh(config: &serde_json::Value, device: &Device) -> Result<TrainableModel> {
        TrainableModel::fresh_seeded(config, device, 0)
    }

    /// Fresh weights drawn from `seed`: the same seed gives the same weights.
    pub fn fresh_seeded(config: &serde_json::Value, device: &Device, seed: u64) -> Result<TrainableModel> {
        let varmap = VarMap::new();
        let backend: Box<dyn candle_nn::var_builder::SimpleBackend> =
            Box::new(SeededInit { varmap: varmap.clone(), seed });
        let vb = VarBuilder::from_backend(backend, DType::F32, device.clone());
        let model = match checkpoint::detect_arch(config)? {
            Arch::T5 => Model::T5(T5::new(&serde_json::from_value::<T5Config>(config.clone())?, vb)?),
            Arch::Bart => Model::Bart(Bart::new(&serde_json::from_value::<BartConfig>(config.clone())?, vb)?),
        };
        Ok(TrainableModel { model, varmap })
    }

    /// Sets every cross-attention value and output projection to the identity, so that from the
    /// first step the decoder receives the encoder states it attends to unchanged and, through the
    /// tied embeddings, the logits of the attended input tokens rise: the model only has to learn
    /// *where* to look. Trained from random weights, the small embedded Oracle otherwise learnt
    /// fluent text that ignored its input (docs/EMBEDDED_MODELS.md). Square projections only
    /// (`heads × head_dim = d_model`); returns how many were set.
    pub fn start_cross_attention_as_copy(&self) -> Result<usize> {
        let mut set = 0;
        for (name, var) in self.vars() {
            let is_value_or_output = [
                ".EncDecAttention.v.",
                ".EncDecAttention.o.",
                ".encoder_attn.v_proj.",
                ".encoder_attn.out_proj.",
            ]
            .iter()
            .any(|part| name.contains(part));
            if !is_value_or_output || !name.ends_with(".weight") {
                continue;
            }
            let (rows, cols) = var.dims2()?;
            if rows == cols {
                var.set(&Tensor::eye(rows, var.dtype(), var.device())?)?;
                set += 1;
            }
        }
        Ok(set)
    }

    /// The weights of the checkpoint in `dir` (any layout the loader reads), made trainable.
    pub fn from_checkpoint(dir: &Path, device: &Device) -> Result<TrainableModel> {
        TrainableModel::from_checkpoint_with_new_tokens(dir, device, &[])
    }

    /// The checkpoint's weights with `new_tokens.len()` tokens appended to its vocabulary (ids
    /// `vocab_size`, `vocab_size + 1`, …): each new row of every vocabulary-sized weight (the tied
    /// embeddings, an untied LM head) starts as the mean of the rows of the old token ids in its
    /// entry — the pieces the checkpoint's tokenizer split that text into — so a new entity token
    /// starts out meaning roughly what its spelling meant.
    pub fn from_checkpoint_with_new_tokens(
        dir: &Path,
        device: &Device,
        new_tokens: &[Vec<u32>],
    ) -> Result<TrainableModel> {
        let ckpt = Checkpoint::open(&crate::model::hf_cache::resolve(dir)?)?;
        crate::model::compat::check_config(ckpt.arch, &ckpt.config)
            .with_context(|| ckpt.dir.display().to_string())?;
        let checked = crate::model::layout::check(&ckpt)?;
        if let Some(warning) = checked.warning(&ckpt.weights_label()) {
            crate::model::notice::warn(&warning);
        }
        let mut config: serde_json::Value = ckpt.config()?;
        if checked.untied_lm_head {
            // transformers 5's untied T5: its own lm_head under `tie_word_embeddings: true`.
            let scale = config.get("scale_decoder_outputs").cloned().unwrap_or(true.into());
            config["scale_decoder_outputs"] = scale;
            config["tie_word_embeddings"] = false.into();
        }
        let old_vocab = config["vocab_size"]
            .as_u64()
            .ok_or_else(|| anyhow!("{}: config.json has no vocab_size", ckpt.dir.display()))?
            as usize;
        if let Some(bad) = new_tokens.iter().flatten().find(|&&id| id as usize >= old_vocab) {
            bail!("a new token's pieces name id {bad}, outside the checkpoint's {old_vocab} tokens");
        }
        if new_tokens.iter().any(Vec::is_empty) {
            bail!("every new token needs at least one old token to start from");
        }
        let new_vocab = old_vocab + new_tokens.len();
        config["vocab_size"] = new_vocab.into();
        let mut trainable = TrainableModel::fresh(&config, device)?;
        if let Some(gen) = &ckpt.generation {
            trainable.model.apply_generation_config(gen);
        }
        let source = ckpt.var_builder(DType::F32, device)?;
        for (name, var) in trainable.vars() {
            let shape = var.shape().clone();
            let vocab_dim =
                (!new_tokens.is_empty()).then(|| shape.dims().iter().position(|&d| d == new_vocab)).flatten();
            let mut old_shape = shape.dims().to_vec();
            if let Some(dim) = vocab_dim {
                old_shape[dim] = old_vocab;
            }
            let tensor = source
                .get(old_shape.clone(), &name)
                .or_else(|e| match name.as_str() {
                    "shared.weight" => source.get(old_shape.clone(), "encoder.embed_tokens.weight"),
                    _ => Err(e),
                })
                .with_context(|| format!("{}: cannot take weight {name}", ckpt.weights_label()))?;
            let tensor = match vocab_dim {
                Some(dim) => {
                    let mut parts = vec![tensor.clone()];
                    for pieces in new_tokens {
                        let ids = Tensor::new(pieces.as_slice(), device)?;
                        parts.push(tensor.index_select(&ids, dim)?.mean_keepdim(dim)?);
                    }
                    Tensor::cat(&parts, dim)?
                }
                None => tensor,
            };
            var.set(&tensor)?;
        }
        Ok(trainable)
    }

    /// The trainable tensors by name, sorted (a stable order for the optimizer state).
    pub fn vars(&self) -> Vec<(String, Var)> {
        let data = self.varmap.data().lock().expect("var map poisoned");
        let mut vars: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    }
}

/// One dev evaluation.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EvalRecord {
    pub step: usize,
    pub epoch: usize,
    pub metrics: BTreeMap<String, f64>,
}

/// Where a run stands, saved in `last/trainer_state.json`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainerState {
    pub config: TrainConfig,
    pub train_examples: usize,
    /// Optimizer steps taken.
    pub step: usize,
    pub epoch: usize,
    /// Batches of `epoch` already consumed.
    pub batch: usize,
    pub best: Option<EvalRecord>,
    pub evals_without_improvement: usize,
    pub history: Vec<EvalRecord>,
    /// Mean training loss of each logged step, for curves.
    pub losses: Vec<f32>,
}

/// What the trainer reports as it goes.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TrainEvent {
    Step {
        step: usize,
        total: usize,
        epoch: usize,
        loss: f32,
        lr: f64,
        grad_norm: f64,
        examples_per_s: f64,
        eta_s: f64,
    },
    Eval(EvalRecord),
    Saved {
        step: usize,
        path: PathBuf,
    },
}

/// Why a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    Finished,
    EarlyStopped,
    Cancelled,
    /// Reached the run's `stop_at` step: paused, resumable with the same configuration.
    Stopped,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct TrainOutcome {
    pub ending: Ending,
    pub steps: usize,
    pub best: Option<EvalRecord>,
    pub best_dir: PathBuf,
}

/// Computes dev metrics beyond the loss (e.g. ROUGE-L or invented-feature rate from generated
/// text); gets the model with dropout off.
pub type Evaluator<'a> = dyn FnMut(&Model) -> Result<BTreeMap<String, f64>> + 'a;

/// Everything a run needs.
pub struct Run<'a> {
    pub model: &'a TrainableModel,
    pub tokenizer: &'a Tokenizer,
    pub train: &'a [Example],
    pub dev: &'a [Example],
    pub config: &'a TrainConfig,
    pub out: &'a Path,
    pub evaluator: Option<&'a mut Evaluator<'a>>,
    pub on_event: &'a mut dyn FnMut(&TrainEvent),
    pub cancel: &'a AtomicBool,
    /// Pause (checkpoint and return) once this many steps are done, whatever the schedule's length:
    /// how a long run is split across sessions reproducibly.
    pub stop_at: Option<usize>,
}

/// Subdirectory holding the newest checkpoint.
pub const LAST: &str = "last";
/// Subdirectory holding the best model on dev.
pub const BEST: &str = "best";
const STATE_FILE: &str = "trainer_state.json";
const OPTIMIZER_FILE: &str = "optimizer.safetensors";

/// Reads the state of the run in `out`, if it has a checkpoint.
pub fn read_state(out: &Path) -> Result<Option<TrainerState>> {
    let last = out.join(LAST);
    if !durable::recover_dir(&last)? {
        return Ok(None);
    }
    Ok(Some(checkpoint::read_json(&last.join(STATE_FILE))?))
}

/// Trains, continuing the run in `run.out` if it has a checkpoint (weights, optimizer moments and
/// data position are restored, and the configuration must be the same).
pub fn train(run: Run<'_>) -> Result<TrainOutcome> {
    let Run { model, tokenizer, train, dev, config, out, mut evaluator, on_event, cancel, stop_at } = run;
    config.validate()?;
    if train.is_empty() {
        bail!("no training examples");
    }
    let device = model.vars().first().map(|(_, v)| v.device().clone()).unwrap_or(Device::Cpu);
    let mut optimizer = AdamW::new(
        model.vars(),
        AdamWParams { weight_decay: config.weight_decay, ..AdamWParams::default() },
    )?;
    let mut state = match read_state(out)? {
        Some(saved) => {
            if saved.config != *config || saved.train_examples != train.len() {
                bail!(
                    "{} holds a run with a different configuration or training set ({} examples); \
                     use a new output directory or the same settings",
                    out.join(LAST).display(),
                    saved.train_examples
                );
            }
            restore_weights(model, &out.join(LAST), &device)?;
            optimizer.load(&out.join(LAST).join(OPTIMIZER_FILE), saved.step)?;
            saved
        }
        None => TrainerState {
            config: config.clone(),
            train_examples: train.len(),
            step: 0,
            epoch: 0,
            batch: 0,
            best: None,
            evals_without_improvement: 0,
            history: Vec::new(),
            losses: Vec::new(),
        },
    };
    let total = config.total_steps(train.len());
    let info = model.model.info().clone();
    let switch = model.model.training_switch();
    let started = Instant::now();
    let start_step = state.step;
    let mut examples_done = 0usize;
    let mut ending = Ending::Finished;

    'epochs: while state.epoch < config.epochs && state.step < total {
        let batches = epoch_batches(train, config.batch_size, config.seed, state.epoch);
        while state.batch < batches.len() && state.step < total {
            if cancel.load(Ordering::Relaxed) {
                ending = Ending::Cancelled;
                break 'epochs;
            }
            if stop_at.is_some_and(|s| state.step >= s) {
                ending = Ending::Stopped;
                break 'epochs;
            }
            let group = &batches[state.batch..(state.batch + config.grad_accum).min(batches.len())];
            model.model.set_training(true);
            switch.seed(config.seed ^ (state.step as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
            let vars = optimizer.vars().map(|(_, v)| v.as_tensor().clone()).collect::<Vec<_>>();
            let mut grads: Vec<Option<Tensor>> = vec![None; vars.len()];
            let mut loss_sum = 0f32;
            for indices in group {
                let batch = collate(train, indices, info.pad_token_id, info.decoder_start_token_id, &device)?;
                let logits = model.model.forward_train(
                    &batch.input_ids,
                    &batch.attention_mask,
                    &batch.decoder_input_ids,
                    None,
                )?;
                let loss = seq2seq_loss(&logits, &batch.labels, &batch.label_mask, config.label_smoothing)?;
                let value = loss.to_scalar::<f32>()?;
                if !value.is_finite() {
                    bail!(
                        "training stopped at step {}: the loss is {value}; nothing of this step was \
                         saved (lower lr, or set clip_norm, in the recipe's [train])",
                        state.step + 1
                    );
                }
                loss_sum += value;
                let scaled = (loss / group.len() as f64)?;
                let store = scaled.backward()?;
                for (acc, var) in grads.iter_mut().zip(&vars) {
                    if let Some(g) = store.get(var) {
                        *acc = Some(match acc.take() {
                            Some(sum) => (sum + g)?,
                            None => g.clone(),
                        });
                    }
                }
                examples_done += indices.len();
            }
            model.model.set_training(false);
            let lr = config.schedule.lr(config.lr, state.step, config.warmup_steps, total);
            let grad_norm = optimizer.step(&grads, lr, config.clip_norm)?;
            ensure_finite(model, grad_norm, state.step + 1)?;
            state.step += 1;
            state.batch += group.len();
            let loss = loss_sum / group.len() as f32;
            state.losses.push(loss);
            let elapsed = started.elapsed().as_secs_f64();
            let steps_done = (state.step - start_step) as f64;
            on_event(&TrainEvent::Step {
                step: state.step,
                total,
                epoch: state.epoch,
                loss,
                lr,
                grad_norm,
                examples_per_s: examples_done as f64 / elapsed.max(1e-9),
                eta_s: elapsed / steps_done * (total - state.step) as f64,
            });
            let epoch_done = state.batch >= batches.len();
            if epoch_done {
                state.epoch += 1;
                state.batch = 0;
            }
            // Evaluation every `eval_every` steps, or at the end of each epoch without it.
            let evaluate_now = config.eval_every.map_or(epoch_done, |every| state.step % every == 0);
            let stop = evaluate_now
                && evaluate_and_select(
                    model,
                    tokenizer,
                    dev,
                    config,
                    out,
                    &mut evaluator,
                    &mut state,
                    on_event,
                )?;
            if evaluate_now || state.step % config.save_every == 0 {
                save_last(model, tokenizer, &optimizer, &state, out, on_event)?;
            }
            if stop {
                ending = Ending::EarlyStopped;
                break 'epochs;
            }
            if epoch_done {
                continue 'epochs;
            }
        }
    }
    save_last(model, tokenizer, &optimizer, &state, out, on_event)?;
    if matches!(ending, Ending::Finished | Ending::EarlyStopped) && state.best.is_none() {
        // Never evaluated (e.g. max_steps inside the first epoch): the final model is the best known.
        durable::write_dir(&out.join(BEST), |dir| model.model.save(dir, Some(tokenizer)))?;
    }
    Ok(TrainOutcome { ending, steps: state.step, best: state.best.clone(), best_dir: out.join(BEST) })
}

/// Stops a run whose gradients or parameters stopped being finite numbers at `step`, before
/// anything of that step is saved: a checkpoint of NaNs generates nothing.
fn ensure_finite(model: &TrainableModel, grad_norm: f64, step: usize) -> Result<()> {
    if !grad_norm.is_finite() {
        bail!(
            "training stopped at step {step}: the gradient norm is {grad_norm}; nothing of this step was \
             saved (lower lr, or set clip_norm, in the recipe's [train])"
        );
    }
    for (name, var) in model.vars() {
        let sum = var.as_tensor().sum_all()?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
        if !sum.is_finite() {
            bail!(
                "training stopped at step {step}: parameter {name} is no longer finite; nothing of this \
                 step was saved (lower lr, or set clip_norm, in the recipe's [train])"
            );
        }
    }
    Ok(())
}

fn restore_weights(model: &TrainableModel, dir: &Path, device: &Device) -> Result<()> {
    let saved = candle_core::safetensors::load(dir.join("model.safetensors"), device)
        .with_context(|| format!("cannot read {}/model.safetensors", dir.display()))?;
    for (name, var) in model.vars() {
        let tensor = saved
            .get(&name)
            .with_context(|| format!("{}/model.safetensors has no tensor {name}", dir.display()))?;
        var.set(tensor)?;
    }
    Ok(())
}

fn save_last(
    model: &TrainableModel,
    tokenizer: &Tokenizer,
    optimizer: &AdamW,
    state: &TrainerState,
    out: &Path,
    on_event: &mut dyn FnMut(&TrainEvent),
) -> Result<()> {
    let path = out.join(LAST);
    durable::write_dir(&path, |dir| {
        model.model.save(dir, Some(tokenizer))?;
        optimizer.save(&dir.join(OPTIMIZER_FILE))?;
        durable::write_json(&dir.join(STATE_FILE), state)
    })?;
    on_event(&TrainEvent::Saved { step: state.step, path });
    Ok(())
}

/// `examples` with each target paired with the next example's source. The dev loss on these minus
/// the true dev loss (`input_gain`) is how much the model reads its input: about zero for a model
/// that writes the same text whatever it is given, however low its loss.
fn with_sources_rotated(examples: &[Example]) -> Vec<Example> {
    (0..examples.len())
        .map(|i| Example {
            source: examples[(i + 1) % examples.len()].source.clone(),
            target: examples[i].target.clone(),
        })
        .collect()
}

/// Mean label cross-entropy (no smoothing, no dropout) over `dev`.
pub fn dev_loss(model: &Model, dev: &[Example], batch_size: usize, device: &Device) -> Result<f64> {
    let info = model.info();
    let mut order: Vec<usize> = (0..dev.len()).collect();
    order.sort_by_key(|&i| dev[i].source.len());
    let (mut weighted, mut tokens) = (0f64, 0usize);
    for indices in order.chunks(batch_size.max(1)) {
        let batch = collate(dev, indices, info.pad_token_id, info.decoder_start_token_id, device)?;
        let logits =
            model.forward_train(&batch.input_ids, &batch.attention_mask, &batch.decoder_input_ids, None)?;
        let loss =
            seq2seq_loss(&logits.detach(), &batch.labels, &batch.label_mask, 0.0)?.to_scalar::<f32>()?;
        weighted += loss as f64 * batch.label_tokens as f64;
        tokens += batch.label_tokens;
    }
    Ok(weighted / tokens.max(1) as f64)
}

/// Evaluates and keeps `best/` up to date. Returns whether to stop early.
#[allow(clippy::too_many_arguments)]
fn evaluate_and_select(
    model: &TrainableModel,
    tokenizer: &Tokenizer,
    dev: &[Example],
    config: &TrainConfig,
    out: &Path,
    evaluator: &mut Option<&mut Evaluator<'_>>,
    state: &mut TrainerState,
    on_event: &mut dyn FnMut(&TrainEvent),
) -> Result<bool> {
    let device = model.vars().first().map(|(_, v)| v.device().clone()).unwrap_or(Device::Cpu);
    let mut metrics = BTreeMap::new();
    if !dev.is_empty() {
        let loss = dev_loss(&model.model, dev, config.batch_size, &device)?;
        metrics.insert("dev_loss".to_owned(), loss);
        if dev.len() > 1 {
            let mismatched = dev_loss(&model.model, &with_sources_rotated(dev), config.batch_size, &device)?;
            metrics.insert("input_gain".to_owned(), mismatched - loss);
        }
    }
    if let Some(evaluate) = evaluator.as_mut() {
        metrics.extend(evaluate(&model.model)?);
    }
    let record = EvalRecord { step: state.step, epoch: state.epoch, metrics };
    on_event(&TrainEvent::Eval(record.clone()));
    let Some(&value) = record.metrics.get(&config.select) else {
        bail!(
            "the selection metric {:?} was not computed (have: {:?})",
            config.select,
            record.metrics.keys()
        );
    };
    let improved = match &state.best {
        None => true,
        Some(best) => {
            let old = best.metrics[&config.select];
            if config.select_higher {
                value > old
            } else {
                value < old
            }
        }
    };
    state.history.push(record.clone());
    if improved {
        durable::write_dir(&out.join(BEST), |dir| {
            model.model.save(dir, Some(tokenizer))?;
            durable::write_json(&dir.join("dev_metrics.json"), &record)
        })?;
        state.best = Some(record);
        state.evals_without_improvement = 0;
    } else {
        state.evals_without_improvement += 1;
    }
    Ok(config.patience.is_some_and(|p| state.evals_without_improvement >= p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_tokens_extend_the_vocabulary_with_the_mean_of_their_pieces() {
        for config in [
            serde_json::json!({
                "model_type": "t5", "d_model": 16, "d_kv": 8, "d_ff": 32, "num_layers": 1,
                "num_decoder_layers": 1, "num_heads": 2, "vocab_size": 10, "tie_word_embeddings": true,
                "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0
            }),
            serde_json::json!({
                "model_type": "bart", "d_model": 16, "encoder_layers": 1, "decoder_layers": 1,
                "encoder_attention_heads": 2, "decoder_attention_heads": 2, "encoder_ffn_dim": 32,
                "decoder_ffn_dim": 32, "max_position_embeddings": 32, "vocab_size": 10,
                "tie_word_embeddings": true, "bos_token_id": 0, "pad_token_id": 1, "eos_token_id": 2,
                "decoder_start_token_id": 2
            }),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let old = TrainableModel::fresh_seeded(&config, &Device::Cpu, 3).unwrap();
            old.model.save(dir.path(), None).unwrap();
            let extended = TrainableModel::from_checkpoint_with_new_tokens(
                dir.path(),
                &Device::Cpu,
                &[vec![2, 5], vec![7]],
            )
            .unwrap();
            let embedding = |m: &TrainableModel| {
                let vars = m.vars();
                let (_, var) = vars.iter().find(|(n, _)| n.ends_with("shared.weight")).unwrap();
                var.as_tensor().to_vec2::<f32>().unwrap()
            };
            let (before, after) = (embedding(&old), embedding(&extended));
            assert_eq!(after.len(), 12, "{}", config["model_type"]);
            assert_eq!(after[..10], before[..], "old rows are kept");
            let mean: Vec<f32> = before[2].iter().zip(&before[5]).map(|(a, b)| (a + b) / 2.0).collect();
            for (got, want) in after[10].iter().zip(&mean) {
                assert!((got - want).abs() < 1e-6);
            }
            assert_eq!(after[11], before[7]);
            assert_eq!(extended.model.info().vocab_size, 12);
            let err = TrainableModel::from_checkpoint_with_new_tokens(dir.path(), &Device::Cpu, &[vec![10]])
                .err()
                .unwrap();
            assert!(err.to_string().contains("outside the checkpoint's 10 tokens"), "{err}");
        }
    }
}

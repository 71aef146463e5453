//! Turns a checkpoint directory into a ready model: detects the architecture from `config.json`,
//! builds T5 or BART on the requested device and precision (quantizing at load for `q8`/`q4`, or
//! reading a quantized checkpoint as it is), applies `generation_config.json`, and saves models
//! back in the same layout.

use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};

use super::bart::{Bart, BartConfig};
use super::checkpoint::{self, Checkpoint, GenerationConfigFile, TokenIds, WeightFiles};
use super::layers::{Kernels, Weights};
use super::quant::{self, QWeight, WeightDtype};
use super::t5::{T5Config, T5};
use super::{Arch, KvCache, ModelInfo, Seq2Seq};

/// Where and in which precision to load weights, and which kernels to run.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub device: Device,
    /// A quantized checkpoint loads in its own precision; asking for another one is an error
    /// (f32, the default, means "as stored").
    pub dtype: WeightDtype,
    /// [`Kernels::Differentiable`] (the default) for anything that may train;
    /// [`Kernels::Fused`] for generation-only use (faster, no gradients).
    pub kernels: Kernels,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { device: Device::Cpu, dtype: WeightDtype::F32, kernels: Kernels::Differentiable }
    }
}

impl LoadOptions {
    /// Inference on `device` in `dtype` with fused kernels.
    pub fn inference(device: Device, dtype: WeightDtype) -> Self {
        LoadOptions { device, dtype, kernels: Kernels::Fused }
    }
}

/// A loaded model of either family, kept concrete so it can be saved.
pub enum Model {
    T5(T5),
    Bart(Bart),
}

/// Loads any supported checkpoint directory as a trait object (what generation needs).
pub fn load(dir: &Path, opts: &LoadOptions) -> Result<Box<dyn Seq2Seq>> {
    Ok(Box::new(load_model(dir, opts)?))
}

/// Loads any supported checkpoint directory. Errors name the file and, for weights, the key
/// and both shapes.
pub fn load_model(dir: &Path, opts: &LoadOptions) -> Result<Model> {
    let ckpt = Checkpoint::open(&super::hf_cache::resolve(dir)?)?;
    super::compat::check_config(ckpt.arch, &ckpt.config).with_context(|| ckpt.dir.display().to_string())?;
    // A quantized checkpoint was checked when `prism quantize` wrote it from a checked one.
    let checked = match &ckpt.weights {
        WeightFiles::Gguf(_) => None,
        _ => Some(super::layout::check(&ckpt)?),
    };
    if let Some(warning) = checked.as_ref().and_then(|c| c.warning(&ckpt.weights_label())) {
        super::notice::warn(&warning);
    }
    let mapped = ckpt.mapped()?;
    let (vb, stored, precision) = match &ckpt.weights {
        WeightFiles::Gguf(path) => {
            let q = quant::read_checkpoint(path, &opts.device)?;
            if opts.dtype != WeightDtype::F32 && opts.dtype != q.dtype {
                bail!(
                    "{} holds {} weights; it loads only as {} (or with the default dtype), not as {}",
                    path.display(),
                    q.dtype,
                    q.dtype,
                    opts.dtype
                );
            }
            let vb = candle_nn::VarBuilder::from_tensors(q.dense, q.dtype.float(), &opts.device);
            (vb, Some(std::sync::Arc::new(q.quantized)), q.dtype)
        }
        _ => {
            let vb = match &mapped {
                Some(files) => files.var_builder(opts.dtype.float(), &opts.device),
                None => ckpt.var_builder(opts.dtype.float(), &opts.device)?,
            };
            (vb, None, opts.dtype)
        }
    };
    if precision.is_quantized() && opts.kernels == Kernels::Differentiable {
        bail!("{precision} weights are for inference only: training needs f32, bf16 or f16 weights");
    }
    let w = Weights::new(vb, opts.kernels).with_precision(precision, stored).with_mapped(mapped);
    let context = || {
        format!(
            "cannot build the model from {} (with {}/config.json)",
            ckpt.weights_label(),
            ckpt.dir.display()
        )
    };
    let mut model = match ckpt.arch {
        Arch::T5 => Model::T5(
            T5::from_weights(
                &match &checked {
                    Some(c) => c.t5_config(ckpt.config::<T5Config>()?),
                    None => ckpt.config::<T5Config>()?,
                },
                &w,
            )
            .with_context(context)?,
        ),
        Arch::Bart => {
            Model::Bart(Bart::from_weights(&ckpt.config::<BartConfig>()?, &w).with_context(context)?)
        }
    };
    if let Some(gen) = &ckpt.generation {
        model.apply_generation_config(gen);
    }
    Ok(model)
}

/// Loads a checkpoint and its `tokenizer.json`, checking that every token id the tokenizer can
/// produce has an embedding row (T5 pads its vocabulary, so the model may have more rows).
pub fn load_with_tokenizer(dir: &Path, opts: &LoadOptions) -> Result<(Model, tokenizers::Tokenizer)> {
    let dir = &super::hf_cache::resolve(dir)?;
    let model = load_model(dir, opts)?;
    let tokenizer = checkpoint::load_tokenizer(dir)?;
    check_tokenizer_fits(&tokenizer, model.info().vocab_size)
        .with_context(|| format!("{}/tokenizer.json", dir.display()))?;
    Ok((model, tokenizer))
}

/// Every id the tokenizer can produce, added tokens included, must have an embedding row (T5
/// pads its vocabulary, so the model may have more rows than the tokenizer has tokens).
fn check_tokenizer_fits(tokenizer: &tokenizers::Tokenizer, rows: usize) -> Result<()> {
    let vocab = tokenizer.get_vocab(true);
    if let Some((token, id)) = vocab.iter().max_by_key(|(_, id)| **id) {
        if *id as usize >= rows {
            anyhow::bail!(
                "token {token:?} has id {id}, but the embedding has {rows} rows (config.json's \
                 vocab_size); the tokenizer does not belong to this model"
            );
        }
    }
    Ok(())
}

impl Model {
    pub fn arch(&self) -> Arch {
        match self {
            Model::T5(_) => Arch::T5,
            Model::Bart(_) => Arch::Bart,
        }
    }

    /// Dropout on while training, off (the default) for evaluation and generation.
    pub fn set_training(&self, training: bool) {
        match self {
            Model::T5(m) => m.set_training(training),
            Model::Bart(m) => m.set_training(training),
        }
    }

    /// The switch that turns dropout on and seeds its masks (for reproducible training).
    pub fn training_switch(&self) -> &super::layers::TrainingSwitch {
        match self {
            Model::T5(m) => m.training_switch(),
            Model::Bart(m) => m.training_switch(),
        }
    }

    /// Every tensor under its Hugging Face key.
    pub fn named_tensors(&self) -> &[(String, Tensor)] {
        match self {
            Model::T5(m) => m.named_tensors(),
            Model::Bart(m) => m.named_tensors(),
        }
    }

    /// Every quantized matrix under its Hugging Face key (none unless loaded as `q8`/`q4`).
    pub fn quantized_tensors(&self) -> &[(String, QWeight)] {
        match self {
            Model::T5(m) => m.quantized_tensors(),
            Model::Bart(m) => m.quantized_tensors(),
        }
    }

    /// `config.json` as it will be saved: the typed config plus `model_type` and `architectures`
    /// naming the class whose key layout we write.
    pub fn config_json(&self) -> Result<serde_json::Value> {
        let (mut value, model_type, class) = match self {
            Model::T5(m) => (serde_json::to_value(m.config())?, "t5", "T5ForConditionalGeneration"),
            Model::Bart(m) => (serde_json::to_value(m.config())?, "bart", "BartForConditionalGeneration"),
        };
        if let Some(obj) = value.as_object_mut() {
            obj.insert("model_type".into(), model_type.into());
            obj.insert("architectures".into(), serde_json::json!([class]));
        }
        Ok(value)
    }

    /// Sets a `config.json` key the model does not read, so that its saved checkpoint carries it.
    pub fn set_config_extra(&mut self, key: &str, value: serde_json::Value) {
        let extra = match self {
            Model::T5(m) => m.config_extra_mut(),
            Model::Bart(m) => m.config_extra_mut(),
        };
        extra.insert(key.to_owned(), value);
    }

    /// `generation_config.json` values take precedence over `config.json`, as in transformers.
    pub fn apply_generation_config(&mut self, gen: &GenerationConfigFile) {
        let info = match self {
            Model::T5(m) => m.info_mut(),
            Model::Bart(m) => m.info_mut(),
        };
        apply_generation(info, gen);
    }

    /// The decoding defaults this model carries, as `generation_config.json` holds them.
    pub fn generation_config(&self) -> GenerationConfigFile {
        let info = self.info();
        GenerationConfigFile {
            bos_token_id: info.bos_token_id,
            decoder_start_token_id: Some(info.decoder_start_token_id),
            eos_token_id: Some(TokenIds::One(info.eos_token_id)),
            pad_token_id: Some(info.pad_token_id),
            forced_bos_token_id: info.forced_bos_token_id,
            forced_eos_token_id: info.forced_eos_token_id.map(TokenIds::One),
            extra: serde_json::Map::new(),
        }
    }

    /// Writes the weights of a model loaded as `q8`/`q4` to `path` as GGUF (see
    /// [`super::quant::write_checkpoint`]); `prism quantize` puts the config and tokenizer beside it.
    pub fn save_quantized(&self, path: &Path) -> Result<()> {
        let dtype = self.info().dtype;
        if !dtype.is_quantized() {
            bail!("this model is loaded as {dtype}; only a q8 or q4 model is saved quantized");
        }
        let architecture = match self.arch() {
            Arch::T5 => "t5",
            Arch::Bart => "bart",
        };
        quant::write_checkpoint(path, dtype, architecture, self.named_tensors(), self.quantized_tensors())
    }

    /// Saves in Hugging Face layout: `config.json`, `generation_config.json`, `model.safetensors`
    /// (tied weights stored once, as transformers writes them) and optionally `tokenizer.json`.
    pub fn save(&self, dir: &Path, tokenizer: Option<&tokenizers::Tokenizer>) -> Result<()> {
        if !self.quantized_tensors().is_empty() {
            bail!(
                "this model is loaded as {}: a quantized model is saved with `prism quantize`, \
                 not as a Hugging Face checkpoint",
                self.info().dtype
            );
        }
        checkpoint::save_checkpoint(
            dir,
            &self.config_json()?,
            &self.generation_config(),
            self.named_tensors(),
            tokenizer,
        )
    }
}

fn apply_generation(info: &mut ModelInfo, gen: &GenerationConfigFile) {
    if let Some(id) = gen.decoder_start_token_id {
        info.decoder_start_token_id = id;
    }
    if let Some(id) = gen.pad_token_id {
        info.pad_token_id = id;
    }
    if let Some(id) = gen.eos_token_id.as_ref().and_then(TokenIds::first) {
        info.eos_token_id = id;
    }
    if gen.bos_token_id.is_some() {
        info.bos_token_id = gen.bos_token_id;
    }
    if gen.forced_bos_token_id.is_some() {
        info.forced_bos_token_id = gen.forced_bos_token_id;
    }
    if let Some(id) = gen.forced_eos_token_id.as_ref().and_then(TokenIds::first) {
        info.forced_eos_token_id = Some(id);
    }
}

impl Seq2Seq for Model {
    fn info(&self) -> &ModelInfo {
        match self {
            Model::T5(m) => m.info(),
            Model::Bart(m) => m.info(),
        }
    }

    fn encode(&self, input_ids: &Tensor, attention_mask: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Model::T5(m) => m.encode(input_ids, attention_mask),
            Model::Bart(m) => m.encode(input_ids, attention_mask),
        }
    }

    fn decode_step(
        &self,
        decoder_input_ids: &Tensor,
        encoder_hidden: &Tensor,
        encoder_mask: &Tensor,
        cache: &mut KvCache,
    ) -> candle_core::Result<Tensor> {
        match self {
            Model::T5(m) => m.decode_step(decoder_input_ids, encoder_hidden, encoder_mask, cache),
            Model::Bart(m) => m.decode_step(decoder_input_ids, encoder_hidden, encoder_mask, cache),
        }
    }

    fn forward_train(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        decoder_input_ids: &Tensor,
        decoder_attention_mask: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        match self {
            Model::T5(m) => {
                m.forward_train(input_ids, attention_mask, decoder_input_ids, decoder_attention_mask)
            }
            Model::Bart(m) => {
                m.forward_train(input_ids, attention_mask, decoder_input_ids, decoder_attention_mask)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_config_overrides_model_config() {
        let mut info = ModelInfo {
            arch: Arch::Bart,
            dtype: WeightDtype::F32,
            vocab_size: 10,
            d_model: 4,
            num_decoder_layers: 1,
            max_input_positions: None,
            param_count: 0,
            param_bytes: 0,
            decoder_start_token_id: 2,
            pad_token_id: 1,
            eos_token_id: 2,
            bos_token_id: Some(0),
            forced_bos_token_id: None,
            forced_eos_token_id: None,
        };
        let gen: GenerationConfigFile = serde_json::from_str(
            r#"{"forced_bos_token_id": 0, "forced_eos_token_id": [2], "eos_token_id": 3}"#,
        )
        .unwrap();
        apply_generation(&mut info, &gen);
        assert_eq!(
            (info.forced_bos_token_id, info.forced_eos_token_id, info.eos_token_id),
            (Some(0), Some(2), 3)
        );
    }
}

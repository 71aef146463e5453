//! A BERT / RoBERTa encoder (Hugging Face's `modeling_bert` and `modeling_roberta`, inference
//! only) that returns the hidden states after a chosen layer: the contextual embeddings BERTScore
//! matches. Modules carry transformers' names (`BertEmbeddings`, `BertSelfAttention`,
//! `BertSelfOutput`, `BertAttention`, `BertIntermediate`, `BertOutput`, `BertLayer`,
//! `BertEncoder`, `BertModel`) and read the weights under transformers' keys, with or without the
//! `bert.`/`roberta.` prefix of a task checkpoint, and old checkpoints' LayerNorm `gamma`/`beta`.
//!
//! RoBERTa differs in two places only: position ids start at `padding_idx + 1` and pads sit at
//! `padding_idx` (`create_position_ids_from_input_ids`), and its single token type is 0 like
//! BERT's first. Built on candle-nn's layers rather than on candle-transformers' BERT: that crate
//! is not a dependency (hundreds of models to compile for one encoder), and its BERT counts
//! positions without RoBERTa's offset.

use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder};
use serde::Deserialize;

use super::checkpoint::{find_weights, read_json, WeightFiles};

/// The `config.json` keys the encoder reads; anything that would change the computation and is
/// not implemented is refused by [`BertConfig::check`].
#[derive(Clone, Debug, Deserialize)]
pub struct BertConfig {
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
    #[serde(default)]
    pub is_decoder: bool,
}

fn default_act() -> String {
    "gelu".to_owned()
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

impl BertConfig {
    /// RoBERTa's position offset, `padding_idx + 1`; BERT has none.
    pub fn position_offset(&self) -> usize {
        if self.is_roberta() {
            self.pad_token_id.unwrap_or(1) as usize + 1
        } else {
            0
        }
    }

    pub fn is_roberta(&self) -> bool {
        self.model_type == "roberta"
    }

    /// The longest input, special tokens included, the position table holds.
    pub fn max_tokens(&self) -> usize {
        self.max_position_embeddings.saturating_sub(self.position_offset())
    }

    fn check(&self, origin: &str) -> Result<()> {
        if !matches!(self.model_type.as_str(), "bert" | "roberta") {
            bail!(
                "{origin}: field `model_type`: {:?} is not an encoder this tool runs (\"bert\", \"roberta\")",
                self.model_type
            );
        }
        if let Some(kind) = self.position_embedding_type.as_deref().filter(|k| *k != "absolute") {
            bail!(
                "{origin}: field `position_embedding_type`: {kind:?} is not implemented (only \"absolute\")"
            );
        }
        if self.is_decoder {
            bail!("{origin}: field `is_decoder`: true is not implemented (a BERTScore encoder attends both ways)");
        }
        activation(&self.hidden_act).with_context(|| origin.to_owned())?;
        if self.num_attention_heads == 0 || !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            bail!(
                "{origin}: field `hidden_size`: {} is not a multiple of num_attention_heads {}",
                self.hidden_size,
                self.num_attention_heads
            );
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug)]
enum Activation {
    GeluErf,
    GeluTanh,
    Relu,
}

fn activation(name: &str) -> Result<Activation> {
    Ok(match name {
        "gelu" => Activation::GeluErf,
        "gelu_new" | "gelu_pytorch_tanh" => Activation::GeluTanh,
        "relu" => Activation::Relu,
        other => bail!(
            "field `hidden_act`: {other:?} is not implemented (gelu, gelu_new, gelu_pytorch_tanh, relu)"
        ),
    })
}

/// transformers' LayerNorm under `weight`/`bias`, or `gamma`/`beta` as the first BERT
/// checkpoints name them (transformers renames those when loading).
fn layer_norm(vb: &VarBuilder, size: usize, eps: f64) -> Result<LayerNorm> {
    let (w, b) = if vb.contains_tensor("weight") { ("weight", "bias") } else { ("gamma", "beta") };
    Ok(LayerNorm::new(vb.get(size, w)?, vb.get(size, b)?, eps))
}

fn linear(vb: &VarBuilder, d_in: usize, d_out: usize) -> Result<Linear> {
    Ok(candle_nn::linear(d_in, d_out, vb.clone())?)
}

pub struct BertEmbeddings {
    word_embeddings: Embedding,
    position_embeddings: Embedding,
    token_type_embeddings: Embedding,
    layer_norm: LayerNorm,
    position_offset: usize,
}

impl BertEmbeddings {
    fn load(vb: &VarBuilder, c: &BertConfig) -> Result<Self> {
        let h = c.hidden_size;
        Ok(BertEmbeddings {
            word_embeddings: candle_nn::embedding(c.vocab_size, h, vb.pp("word_embeddings"))?,
            position_embeddings: candle_nn::embedding(
                c.max_position_embeddings,
                h,
                vb.pp("position_embeddings"),
            )?,
            token_type_embeddings: candle_nn::embedding(
                c.type_vocab_size,
                h,
                vb.pp("token_type_embeddings"),
            )?,
            layer_norm: layer_norm(&vb.pp("LayerNorm"), h, c.layer_norm_eps)?,
            position_offset: c.position_offset(),
        })
    }

    /// `input_ids` [B, T] right-padded; `lengths` the real length of each row.
    fn forward(&self, input_ids: &Tensor, lengths: &[usize]) -> Result<Tensor> {
        let (b, t) = input_ids.dims2()?;
        // BERT: 0..T on every row. RoBERTa: offset + 0..len, and pads at padding_idx (offset − 1).
        let mut positions = Vec::with_capacity(b * t);
        for &len in lengths {
            for i in 0..t {
                let p = match (self.position_offset, i < len) {
                    (0, _) => i,
                    (offset, true) => offset + i,
                    (offset, false) => offset - 1,
                };
                positions.push(p as u32);
            }
        }
        let positions = Tensor::from_vec(positions, (b, t), input_ids.device())?;
        let types = Tensor::zeros((b, t), DType::U32, input_ids.device())?;
        let x = self
            .word_embeddings
            .forward(input_ids)?
            .add(&self.token_type_embeddings.forward(&types)?)?
            .add(&self.position_embeddings.forward(&positions)?)?;
        Ok(self.layer_norm.forward(&x)?)
    }
}

pub struct BertSelfAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    num_heads: usize,
    head_dim: usize,
}

impl BertSelfAttention {
    fn load(vb: &VarBuilder, c: &BertConfig) -> Result<Self> {
        let h = c.hidden_size;
        Ok(BertSelfAttention {
            query: linear(&vb.pp("query"), h, h)?,
            key: linear(&vb.pp("key"), h, h)?,
            value: linear(&vb.pp("value"), h, h)?,
            num_heads: c.num_attention_heads,
            head_dim: h / c.num_attention_heads,
        })
    }

    /// `mask_bias` [B, 1, 1, T]: 0 for real tokens, a large negative number for pads.
    fn forward(&self, x: &Tensor, mask_bias: &Tensor) -> Result<Tensor> {
        let (b, t, h) = x.dims3()?;
        let heads = |lin: &Linear| -> Result<Tensor> {
            Ok(lin
                .forward(x)?
                .reshape((b, t, self.num_heads, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let (q, k, v) = (heads(&self.query)?, heads(&self.key)?, heads(&self.value)?);
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let scores = (q.matmul(&k.t()?.contiguous()?)? * scale)?.broadcast_add(mask_bias)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        Ok(probs.matmul(&v)?.transpose(1, 2)?.reshape((b, t, h))?)
    }
}

pub struct BertSelfOutput {
    dense: Linear,
    layer_norm: LayerNorm,
}

impl BertSelfOutput {
    fn load(vb: &VarBuilder, c: &BertConfig) -> Result<Self> {
        let h = c.hidden_size;
        Ok(BertSelfOutput {
            dense: linear(&vb.pp("dense"), h, h)?,
            layer_norm: layer_norm(&vb.pp("LayerNorm"), h, c.layer_norm_eps)?,
        })
    }

    fn forward(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        Ok(self.layer_norm.forward(&self.dense.forward(x)?.add(residual)?)?)
    }
}

pub struct BertAttention {
    self_attention: BertSelfAttention,
    output: BertSelfOutput,
}

impl BertAttention {
    fn load(vb: &VarBuilder, c: &BertConfig) -> Result<Self> {
        Ok(BertAttention {
            self_attention: BertSelfAttention::load(&vb.pp("self"), c)?,
            output: BertSelfOutput::load(&vb.pp("output"), c)?,
        })
    }

    fn forward(&self, x: &Tensor, mask_bias: &Tensor) -> Result<Tensor> {
        self.output.forward(&self.self_attention.forward(x, mask_bias)?, x)
    }
}

pub struct BertIntermediate {
    dense: Linear,
    act: Activation,
}

impl BertIntermediate {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.dense.forward(x)?;
        Ok(match self.act {
            Activation::GeluErf => x.gelu_erf()?,
            Activation::GeluTanh => x.gelu()?,
            Activation::Relu => x.relu()?,
        })
    }
}

pub struct BertOutput {
    dense: Linear,
    layer_norm: LayerNorm,
}

impl BertOutput {
    fn forward(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        Ok(self.layer_norm.forward(&self.dense.forward(x)?.add(residual)?)?)
    }
}

pub struct BertLayer {
    attention: BertAttention,
    intermediate: BertIntermediate,
    output: BertOutput,
}

impl BertLayer {
    fn load(vb: &VarBuilder, c: &BertConfig) -> Result<Self> {
        let (h, i) = (c.hidden_size, c.intermediate_size);
        Ok(BertLayer {
            attention: BertAttention::load(&vb.pp("attention"), c)?,
            intermediate: BertIntermediate {
                dense: linear(&vb.pp("intermediate").pp("dense"), h, i)?,
                act: activation(&c.hidden_act)?,
            },
            output: BertOutput {
                dense: linear(&vb.pp("output").pp("dense"), i, h)?,
                layer_norm: layer_norm(&vb.pp("output").pp("LayerNorm"), h, c.layer_norm_eps)?,
            },
        })
    }

    fn forward(&self, x: &Tensor, mask_bias: &Tensor) -> Result<Tensor> {
        let attended = self.attention.forward(x, mask_bias)?;
        self.output.forward(&self.intermediate.forward(&attended)?, &attended)
    }
}

pub struct BertEncoder {
    layer: Vec<BertLayer>,
}

/// The embeddings and the first `layers` encoder layers (the rest is never loaded: BERTScore
/// reads one layer's output, as the package keeps `encoder.layer[:num_layers]`).
pub struct BertModel {
    pub config: BertConfig,
    embeddings: BertEmbeddings,
    encoder: BertEncoder,
    device: Device,
}

impl BertModel {
    /// Loads `dir` (a Hugging Face checkpoint directory of a BERT or RoBERTa model) up to layer
    /// `layers` (0: the embeddings' output) in f32 on `device`.
    pub fn load(dir: &Path, layers: usize, device: &Device) -> Result<BertModel> {
        let config_path = dir.join("config.json");
        let config: BertConfig = read_json(&config_path)?;
        let origin = config_path.display().to_string();
        config.check(&origin)?;
        if layers > config.num_hidden_layers {
            bail!(
                "layer {layers} asked for, but {origin} has num_hidden_layers {} (layers 0 to {} exist; 0 is the embeddings)",
                config.num_hidden_layers,
                config.num_hidden_layers
            );
        }
        let vb = match find_weights(dir)? {
            WeightFiles::Safetensors(files) => {
                // SAFETY: mapped read-only; like every mmap loader we assume the files are not
                // modified while the model is alive.
                unsafe { VarBuilder::from_mmaped_safetensors(&files, DType::F32, device) }
                    .with_context(|| format!("cannot map the safetensors files of {}", dir.display()))?
            }
            WeightFiles::Pytorch(files) => {
                let mut all = std::collections::HashMap::new();
                for f in &files {
                    all.extend(
                        candle_core::pickle::read_all(f)
                            .with_context(|| format!("cannot read PyTorch weights {}", f.display()))?,
                    );
                }
                VarBuilder::from_tensors(all, DType::F32, device)
            }
            WeightFiles::Gguf(path) => bail!("{} is quantized; BERTScore needs f32 weights", path.display()),
        };
        // A task checkpoint (BertForMaskedLM, RobertaForMaskedLM, …) keeps the encoder under a prefix.
        let vb = ["", "bert", "roberta"]
            .into_iter()
            .map(|prefix| if prefix.is_empty() { vb.clone() } else { vb.pp(prefix) })
            .find(|vb| vb.contains_tensor("embeddings.word_embeddings.weight"))
            .with_context(|| {
                format!(
                    "{} has no tensor embeddings.word_embeddings.weight (nor under bert. or roberta.): \
                     not a BERT or RoBERTa checkpoint",
                    dir.display()
                )
            })?;
        let load = || -> Result<BertModel> {
            let embeddings = BertEmbeddings::load(&vb.pp("embeddings"), &config)?;
            let layer = (0..layers)
                .map(|i| BertLayer::load(&vb.pp("encoder").pp("layer").pp(i), &config))
                .collect::<Result<_>>()?;
            Ok(BertModel {
                config: config.clone(),
                embeddings,
                encoder: BertEncoder { layer },
                device: device.clone(),
            })
        };
        load().with_context(|| format!("cannot load the encoder of {}", dir.display()))
    }

    /// Hidden states after the loaded layers for each sentence of `batch` (token ids, special
    /// tokens included): one `[len, hidden]` row-major vector per sentence.
    pub fn hidden_states(&self, batch: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let lengths: Vec<usize> = batch.iter().map(Vec::len).collect();
        let t = lengths.iter().copied().max().unwrap_or(0);
        if t == 0 {
            return Ok(vec![Vec::new(); batch.len()]);
        }
        let pad = self.config.pad_token_id.unwrap_or(0);
        let mut ids = Vec::with_capacity(batch.len() * t);
        let mut bias = Vec::with_capacity(batch.len() * t);
        for row in batch {
            ids.extend(row.iter().copied().chain(std::iter::repeat_n(pad, t - row.len())));
            bias.extend((0..t).map(|i| if i < row.len() { 0.0f32 } else { f32::MIN }));
        }
        let ids = Tensor::from_vec(ids, (batch.len(), t), &self.device)?;
        let mask_bias = Tensor::from_vec(bias, (batch.len(), 1, 1, t), &self.device)?;
        let mut x = self.embeddings.forward(&ids, &lengths)?;
        for layer in &self.encoder.layer {
            x = layer.forward(&x, &mask_bias)?;
        }
        let x = x.to_device(&Device::Cpu)?;
        lengths
            .iter()
            .enumerate()
            .map(|(i, &len)| Ok(x.get(i)?.narrow(0, 0, len)?.flatten_all()?.to_vec1::<f32>()?))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(model_type: &str) -> BertConfig {
        serde_json::from_value(serde_json::json!({
            "model_type": model_type, "vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 20,
            "pad_token_id": 1
        }))
        .unwrap()
    }

    #[test]
    fn roberta_positions_start_after_the_padding_index() {
        assert_eq!(config("roberta").position_offset(), 2);
        assert_eq!(config("roberta").max_tokens(), 18);
        assert_eq!(config("bert").position_offset(), 0);
        assert_eq!(config("bert").max_tokens(), 20);
    }

    #[test]
    fn settings_that_would_compute_something_else_are_refused_by_name() {
        let mut c = config("bert");
        c.position_embedding_type = Some("relative_key".into());
        let err = c.check("config.json").unwrap_err().to_string();
        assert!(err.contains("config.json: field `position_embedding_type`"), "{err}");
        let err = config("distilbert").check("config.json").unwrap_err().to_string();
        assert!(err.contains("field `model_type`"), "{err}");
        let mut c = config("bert");
        c.hidden_act = "swish".into();
        assert!(format!("{:#}", c.check("config.json").unwrap_err()).contains("hidden_act"));
    }
}

//! BART (Lewis et al. 2020, <https://arxiv.org/abs/1910.13461>) on candle, matching Hugging Face
//! `BartForConditionalGeneration` numerically: learned positions with offset 2,
//! `layernorm_embedding`, post-norm layers, optional embedding scaling, `final_logits_bias` and an
//! LM head tied to the shared embeddings. candle-transformers has no BART; this is ours.
//!
//! Weight keys are exactly the checkpoint's (`model.shared.weight`, `model.encoder.layers.0.fc1.weight`,
//! …); checkpoints saved from a bare `BartModel` (no `model.` prefix, e.g. facebook/bart-base) load too.

use std::collections::BTreeMap;

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Embedding, Init};
use serde::{Deserialize, Serialize};

use super::checkpoint::TokenIds;
use super::layers::{
    self, Activation, Attention, Dropout, Kernels, LayerNorm, Linear, TrainingSwitch, Weights,
};
use super::{Arch, KvCache, ModelInfo, Seq2Seq};

/// Hugging Face's `BartLearnedPositionalEmbedding` reserves the first two rows.
const POSITION_OFFSET: usize = 2;
/// `nn.LayerNorm`'s default epsilon, used by every BART norm.
const LAYER_NORM_EPS: f64 = 1e-5;

fn default_vocab_size() -> usize {
    50265
}
fn default_max_positions() -> usize {
    1024
}
fn default_layers() -> usize {
    12
}
fn default_ffn() -> usize {
    4096
}
fn default_heads() -> usize {
    16
}
fn default_d_model() -> usize {
    1024
}
fn default_activation() -> String {
    "gelu".into()
}
fn default_init_std() -> f64 {
    0.02
}
fn default_dropout() -> f64 {
    0.1
}
fn default_true() -> bool {
    true
}
fn default_bos() -> u32 {
    0
}
fn default_pad() -> u32 {
    1
}
fn default_eos() -> TokenIds {
    TokenIds::One(2)
}
fn default_decoder_start() -> u32 {
    2
}

/// Mirrors a BART `config.json` (bart-base, bart-large, bart-large-cnn, distilbart-*). Defaults
/// are transformers' `BartConfig` defaults (bart-large shapes). Unused keys are kept in `extra`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BartConfig {
    #[serde(default = "default_vocab_size")]
    pub vocab_size: usize,
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    #[serde(default = "default_layers")]
    pub encoder_layers: usize,
    #[serde(default = "default_ffn")]
    pub encoder_ffn_dim: usize,
    #[serde(default = "default_heads")]
    pub encoder_attention_heads: usize,
    #[serde(default = "default_layers")]
    pub decoder_layers: usize,
    #[serde(default = "default_ffn")]
    pub decoder_ffn_dim: usize,
    #[serde(default = "default_heads")]
    pub decoder_attention_heads: usize,
    #[serde(default = "default_activation")]
    pub activation_function: String,
    #[serde(default = "default_d_model")]
    pub d_model: usize,
    #[serde(default = "default_init_std")]
    pub init_std: f64,
    /// Dropout on embeddings and sublayer outputs (training only).
    #[serde(default = "default_dropout")]
    pub dropout: f64,
    #[serde(default)]
    pub attention_dropout: f64,
    /// Dropout after the feed-forward activation.
    #[serde(default)]
    pub activation_dropout: f64,
    /// Multiply token embeddings by `sqrt(d_model)` (false in bart-base/large).
    #[serde(default)]
    pub scale_embedding: bool,
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
    /// mBART-style pre-norm; plain BART is post-norm and this must be false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub normalize_before: bool,
    /// mBART's extra final layer norms; must be false for BART.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub add_final_layer_norm: bool,
    #[serde(default = "default_bos")]
    pub bos_token_id: u32,
    #[serde(default = "default_pad")]
    pub pad_token_id: u32,
    #[serde(default = "default_eos")]
    pub eos_token_id: TokenIds,
    #[serde(default = "default_decoder_start")]
    pub decoder_start_token_id: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced_bos_token_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced_eos_token_id: Option<TokenIds>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl BartConfig {
    /// Checks the values a model build relies on; errors name the `config.json` key.
    pub fn validate(&self) -> std::result::Result<Activation, String> {
        if self.normalize_before {
            return Err(
                "normalize_before = true (mBART-style pre-norm) is not supported; BART is post-norm".into()
            );
        }
        // Old fairseq-era flags that change the architecture; refuse them rather than misread.
        for (key, unsupported) in [("static_position_embeddings", true), ("normalize_embedding", false)] {
            if self.extra.get(key) == Some(&serde_json::Value::Bool(unsupported)) {
                return Err(format!("{key} = {unsupported} is not supported"));
            }
        }
        if self.add_final_layer_norm {
            return Err("add_final_layer_norm = true (mBART) is not supported".into());
        }
        if !self.tie_word_embeddings {
            return Err(
                "tie_word_embeddings = false is not supported: BART's LM head is the shared embedding".into(),
            );
        }
        for (key, value) in [
            ("vocab_size", self.vocab_size),
            ("d_model", self.d_model),
            ("encoder_layers", self.encoder_layers),
            ("decoder_layers", self.decoder_layers),
            ("encoder_ffn_dim", self.encoder_ffn_dim),
            ("decoder_ffn_dim", self.decoder_ffn_dim),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if value == 0 {
                return Err(format!("{key} must be positive"));
            }
        }
        for (key, heads) in [
            ("encoder_attention_heads", self.encoder_attention_heads),
            ("decoder_attention_heads", self.decoder_attention_heads),
        ] {
            if heads == 0 || self.d_model % heads != 0 {
                return Err(format!("{key} = {heads} does not divide d_model = {}", self.d_model));
            }
        }
        Activation::from_hf(&self.activation_function)
            .ok_or_else(|| format!("activation_function = {:?} is not supported", self.activation_function))
    }
}

fn load_attention(w: &Weights, cfg: &BartConfig, heads: usize) -> Result<Attention> {
    let (d_model, std) = (cfg.d_model, cfg.init_std);
    let head_dim = d_model / heads;
    Ok(Attention {
        q: Linear::load(&w.pp("q_proj"), d_model, d_model, true, std)?,
        k: Linear::load(&w.pp("k_proj"), d_model, d_model, true, std)?,
        v: Linear::load(&w.pp("v_proj"), d_model, d_model, true, std)?,
        o: Linear::load(&w.pp("out_proj"), d_model, d_model, true, std)?,
        heads,
        head_dim,
        scale: Some((head_dim as f64).powf(-0.5)),
        kernels: w.kernels(),
        dropout: w.dropout(cfg.attention_dropout),
    })
}

struct Layer {
    self_attn: Attention,
    self_attn_layer_norm: LayerNorm,
    cross: Option<(Attention, LayerNorm)>,
    fc1: Linear,
    fc2: Linear,
    final_layer_norm: LayerNorm,
}

impl Layer {
    fn load(w: &Weights, cfg: &BartConfig, decoder: bool) -> Result<Self> {
        let (heads, ffn) = if decoder {
            (cfg.decoder_attention_heads, cfg.decoder_ffn_dim)
        } else {
            (cfg.encoder_attention_heads, cfg.encoder_ffn_dim)
        };
        let (d, std) = (cfg.d_model, cfg.init_std);
        let cross = if decoder {
            Some((
                load_attention(&w.pp("encoder_attn"), cfg, heads)?,
                LayerNorm::load(&w.pp("encoder_attn_layer_norm"), d, LAYER_NORM_EPS)?,
            ))
        } else {
            None
        };
        Ok(Layer {
            self_attn: load_attention(&w.pp("self_attn"), cfg, heads)?,
            self_attn_layer_norm: LayerNorm::load(&w.pp("self_attn_layer_norm"), d, LAYER_NORM_EPS)?,
            cross,
            fc1: Linear::load(&w.pp("fc1"), d, ffn, true, std)?,
            fc2: Linear::load(&w.pp("fc2"), ffn, d, true, std)?,
            final_layer_norm: LayerNorm::load(&w.pp("final_layer_norm"), d, LAYER_NORM_EPS)?,
        })
    }
}

/// Encoder or decoder: embeddings (scaled tokens + learned positions, then
/// `layernorm_embedding`) and post-norm layers.
struct Stack {
    positions: Tensor,
    layernorm_embedding: LayerNorm,
    layers: Vec<Layer>,
    dropout: Dropout,
    activation_dropout: Dropout,
    kernels: Kernels,
}

impl Stack {
    fn load(w: &Weights, cfg: &BartConfig, decoder: bool) -> Result<Self> {
        let n = if decoder { cfg.decoder_layers } else { cfg.encoder_layers };
        let positions = w.pp("embed_positions").get(
            (cfg.max_position_embeddings + POSITION_OFFSET, cfg.d_model),
            "weight",
            Init::Randn { mean: 0.0, stdev: cfg.init_std },
        )?;
        Ok(Stack {
            positions,
            layernorm_embedding: LayerNorm::load(&w.pp("layernorm_embedding"), cfg.d_model, LAYER_NORM_EPS)?,
            layers: (0..n)
                .map(|i| Layer::load(&w.pp("layers").pp(i), cfg, decoder))
                .collect::<Result<_>>()?,
            dropout: w.dropout(cfg.dropout),
            activation_dropout: w.dropout(cfg.activation_dropout),
            kernels: w.kernels(),
        })
    }

    fn embed(&self, tokens: Tensor, past: usize) -> Result<Tensor> {
        let (_, seq, _) = tokens.dims3()?;
        let max = self.positions.dim(0)? - POSITION_OFFSET;
        if past + seq > max {
            candle_core::bail!(
                "sequence of {} positions exceeds max_position_embeddings = {max}",
                past + seq
            );
        }
        let pos = self.positions.narrow(0, past + POSITION_OFFSET, seq)?;
        self.dropout.forward(&self.layernorm_embedding.forward(&tokens.broadcast_add(&pos)?)?)
    }

    fn forward_with(
        &self,
        mut h: Tensor,
        self_bias: &Tensor,
        encoder: Option<(&Tensor, &Tensor)>,
        mut cache: Option<&mut KvCache>,
        activation: Activation,
    ) -> Result<Tensor> {
        for (i, layer) in self.layers.iter().enumerate() {
            let mut slot = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            let attn =
                layer.self_attn.self_attend(&h, self_bias, slot.as_deref_mut().map(|l| &mut l.self_kv))?;
            h = layer.self_attn_layer_norm.forward(&(h + self.dropout.forward(&attn)?)?)?;
            if let (Some((cross, norm)), Some((enc, enc_bias))) = (&layer.cross, encoder) {
                let attn = cross.cross_attend(&h, enc, enc_bias, slot.map(|l| &mut l.cross_kv))?;
                h = norm.forward(&(h + self.dropout.forward(&attn)?)?)?;
            }
            let inner =
                self.activation_dropout.forward(&activation.apply(&layer.fc1.forward(&h)?, self.kernels)?)?;
            let ff = self.dropout.forward(&layer.fc2.forward(&inner)?)?;
            h = layers::clamp_f16(layer.final_layer_norm.forward(&(h + ff)?)?)?;
        }
        Ok(h)
    }
}

/// BART for conditional generation.
pub struct Bart {
    cfg: BartConfig,
    shared: Embedding,
    embed_scale: f64,
    activation: Activation,
    encoder: Stack,
    decoder: Stack,
    lm_head: Linear,
    final_logits_bias: Tensor,
    info: ModelInfo,
    tensors: Vec<(String, Tensor)>,
    training: TrainingSwitch,
}

impl Bart {
    /// Builds the model from checkpoint weights, or with fresh weights on a `VarMap` for training.
    /// `final_logits_bias` is a buffer in transformers, not a parameter: it is read when the
    /// checkpoint has it and is zeros (never trained) otherwise.
    pub fn new(cfg: &BartConfig, vb: candle_nn::VarBuilder) -> Result<Self> {
        Bart::with_kernels(cfg, vb, Kernels::Differentiable)
    }

    /// Like [`Bart::new`], choosing the kernels ([`Kernels::Fused`] is for inference only).
    pub fn with_kernels(cfg: &BartConfig, vb: candle_nn::VarBuilder, kernels: Kernels) -> Result<Self> {
        let activation =
            cfg.validate().map_err(|e| candle_core::Error::Msg(format!("invalid BART config: {e}")))?;
        let root = Weights::new(vb, kernels);
        // A bare `BartModel` checkpoint (facebook/bart-base) has no `model.` prefix.
        let bare = !root.contains("model.shared.weight") && root.contains("shared.weight");
        let w = if bare { root.clone() } else { root.pp("model") };
        let emb = if !w.contains("shared.weight") && w.contains("encoder.embed_tokens.weight") {
            w.pp("encoder.embed_tokens")
        } else {
            w.pp("shared")
        };
        let table =
            emb.get((cfg.vocab_size, cfg.d_model), "weight", Init::Randn { mean: 0.0, stdev: cfg.init_std })?;
        let encoder = Stack::load(&w.pp("encoder"), cfg, false)?;
        let decoder = Stack::load(&w.pp("decoder"), cfg, true)?;
        let final_logits_bias = if root.contains("final_logits_bias") {
            root.get((1, cfg.vocab_size), "final_logits_bias", Init::Const(0.0))?
        } else {
            Tensor::zeros((1, cfg.vocab_size), root.dtype(), root.device())?
        };
        // Saved under the keys `BartForConditionalGeneration` writes, whatever layout we read.
        let embedding_key = emb.key("weight");
        let mut tensors: Vec<(String, Tensor)> = root
            .recorded()?
            .into_iter()
            .map(|(k, t)| {
                let k = if k == embedding_key {
                    "shared.weight".to_string()
                } else {
                    k.strip_prefix("model.").unwrap_or(&k).to_string()
                };
                let k = if k == "final_logits_bias" { k } else { format!("model.{k}") };
                (k, t)
            })
            .collect();
        if !tensors.iter().any(|(k, _)| k == "final_logits_bias") {
            tensors.push(("final_logits_bias".into(), final_logits_bias.clone()));
        }
        let params: Vec<(String, Tensor)> =
            tensors.iter().filter(|(k, _)| k != "final_logits_bias").cloned().collect();
        let (param_count, param_bytes) = layers::param_totals(&params);
        let info = ModelInfo {
            arch: Arch::Bart,
            vocab_size: cfg.vocab_size,
            d_model: cfg.d_model,
            num_decoder_layers: cfg.decoder_layers,
            max_input_positions: Some(cfg.max_position_embeddings),
            param_count,
            param_bytes,
            decoder_start_token_id: cfg.decoder_start_token_id,
            pad_token_id: cfg.pad_token_id,
            eos_token_id: cfg.eos_token_id.first().unwrap_or(2),
            bos_token_id: Some(cfg.bos_token_id),
            forced_bos_token_id: cfg.forced_bos_token_id,
            forced_eos_token_id: cfg.forced_eos_token_id.as_ref().and_then(TokenIds::first),
        };
        Ok(Bart {
            cfg: cfg.clone(),
            shared: Embedding::new(table.clone(), cfg.d_model),
            embed_scale: if cfg.scale_embedding { (cfg.d_model as f64).sqrt() } else { 1.0 },
            activation,
            encoder,
            decoder,
            lm_head: Linear::new(table, None, kernels)?,
            final_logits_bias,
            info,
            tensors,
            training: root.training_switch(),
        })
    }

    pub fn config(&self) -> &BartConfig {
        &self.cfg
    }

    /// Every tensor under its Hugging Face key, `final_logits_bias` included.
    pub fn named_tensors(&self) -> &[(String, Tensor)] {
        &self.tensors
    }

    /// Dropout (`dropout`, `attention_dropout`, `activation_dropout`) on while training, off (the
    /// default) for evaluation and generation.
    pub fn set_training(&self, training: bool) {
        self.training.set(training);
    }

    /// The switch that turns dropout on and seeds its masks.
    pub fn training_switch(&self) -> &TrainingSwitch {
        &self.training
    }

    pub(crate) fn info_mut(&mut self) -> &mut ModelInfo {
        &mut self.info
    }

    fn embed_tokens(&self, ids: &Tensor) -> Result<Tensor> {
        let e = self.shared.forward(ids)?;
        if self.cfg.scale_embedding {
            e * self.embed_scale
        } else {
            Ok(e)
        }
    }

    fn decode(
        &self,
        ids: &Tensor,
        encoder_hidden: &Tensor,
        encoder_mask: &Tensor,
        decoder_mask: Option<&Tensor>,
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let (_, new) = ids.dims2()?;
        let past = cache.as_ref().map_or(0, |c| c.seq_len());
        if let Some(c) = &cache {
            if c.layers.len() != self.decoder.layers.len() {
                candle_core::bail!(
                    "KV cache has {} layers, the decoder {}",
                    c.layers.len(),
                    self.decoder.layers.len()
                );
            }
        }
        let mut self_bias = layers::causal_bias(new, past, ids.device())?;
        if let Some(mask) = decoder_mask {
            self_bias = self_bias.broadcast_add(&layers::padding_bias(mask)?)?;
        }
        let enc_bias = layers::padding_bias(encoder_mask)?;
        let h = self.decoder.embed(self.embed_tokens(ids)?, past)?;
        let h = self.decoder.forward_with(
            h,
            &self_bias,
            Some((encoder_hidden, &enc_bias)),
            cache,
            self.activation,
        )?;
        self.lm_head
            .forward(&h)?
            .to_dtype(DType::F32)?
            .broadcast_add(&self.final_logits_bias.to_dtype(DType::F32)?)
    }
}

impl Seq2Seq for Bart {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn encode(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
        let h = self.encoder.embed(self.embed_tokens(input_ids)?, 0)?;
        let bias = layers::padding_bias(attention_mask)?;
        self.encoder.forward_with(h, &bias, None, None, self.activation)
    }

    fn decode_step(
        &self,
        decoder_input_ids: &Tensor,
        encoder_hidden: &Tensor,
        encoder_mask: &Tensor,
        cache: &mut KvCache,
    ) -> Result<Tensor> {
        self.decode(decoder_input_ids, encoder_hidden, encoder_mask, None, Some(cache))
    }

    fn forward_train(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        decoder_input_ids: &Tensor,
        decoder_attention_mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let enc = self.encode(input_ids, attention_mask)?;
        self.decode(decoder_input_ids, &enc, attention_mask, decoder_attention_mask, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bart_base_config_parses_with_defaults() {
        let cfg: BartConfig = serde_json::from_str(
            r#"{"d_model": 768, "encoder_layers": 6, "decoder_layers": 6, "encoder_attention_heads": 12,
                "decoder_attention_heads": 12, "encoder_ffn_dim": 3072, "decoder_ffn_dim": 3072,
                "forced_bos_token_id": 0, "forced_eos_token_id": 2, "add_bias_logits": false}"#,
        )
        .unwrap();
        assert_eq!(cfg.validate().unwrap(), Activation::Gelu);
        assert_eq!((cfg.vocab_size, cfg.max_position_embeddings, cfg.pad_token_id), (50265, 1024, 1));
        assert!(cfg.extra.contains_key("add_bias_logits"));
    }

    /// The shape of sshleifer/distilbart-cnn-12-6: 12 encoder layers, 6 decoder layers.
    #[test]
    fn distilbart_config_parses() {
        let cfg: BartConfig = serde_json::from_str(
            r#"{"activation_dropout": 0.0, "activation_function": "gelu", "add_bias_logits": false,
                "add_final_layer_norm": false, "attention_dropout": 0.0, "d_model": 1024, "decoder_attention_heads": 16,
                "decoder_ffn_dim": 4096, "decoder_layers": 6, "dropout": 0.1, "encoder_attention_heads": 16,
                "encoder_ffn_dim": 4096, "encoder_layers": 12, "eos_token_id": 2, "extra_pos_embeddings": 2,
                "max_position_embeddings": 1024, "model_type": "bart", "normalize_before": false,
                "normalize_embedding": true, "scale_embedding": false, "static_position_embeddings": false,
                "vocab_size": 50264}"#,
        )
        .unwrap();
        cfg.validate().unwrap();
        assert_eq!((cfg.encoder_layers, cfg.decoder_layers, cfg.vocab_size), (12, 6, 50264));
    }

    #[test]
    fn mbart_variants_are_refused_by_name() {
        for (key, value) in [
            ("normalize_before", true),
            ("add_final_layer_norm", true),
            ("static_position_embeddings", true),
            ("normalize_embedding", false),
        ] {
            let cfg: BartConfig = serde_json::from_str(&format!(r#"{{"{key}": {value}}}"#)).unwrap();
            assert!(cfg.validate().unwrap_err().contains(key), "{key}");
        }
    }

    #[test]
    fn heads_must_divide_d_model() {
        let cfg: BartConfig =
            serde_json::from_str(r#"{"d_model": 30, "encoder_attention_heads": 4}"#).unwrap();
        assert!(cfg.validate().unwrap_err().contains("encoder_attention_heads"));
    }
}

//! BART (Lewis et al. 2020, <https://arxiv.org/abs/1910.13461>) on candle, matching Hugging Face
//! `BartForConditionalGeneration` numerically: learned positions with offset 2,
//! `layernorm_embedding`, post-norm layers, optional embedding scaling, `final_logits_bias` and an
//! LM head tied to the shared embeddings. candle-transformers has no BART; this is ours.
//!
//! Weight keys are exactly the checkpoint's (`model.shared.weight`, `model.encoder.layers.0.fc1.weight`,
//! …); checkpoints saved from a bare `BartModel` (no `model.` prefix, e.g. facebook/bart-base) load too.

use std::collections::BTreeMap;

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::Init;
use serde::{Deserialize, Serialize};

use super::attention::{Attention, AttentionShape};
use super::checkpoint::TokenIds;
use super::layers::{
    self, Activation, Dropout, FeedForward, Kernels, LayerNorm, Linear, NormPlacement, Rows, TokenEmbedding,
    TrainingSwitch, Weights,
};
use super::quant::QWeight;
use super::{Arch, KvCache, LayerKv, ModelInfo, Seq2Seq};

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
            if heads == 0 || !self.d_model.is_multiple_of(heads) {
                return Err(format!("{key} = {heads} does not divide d_model = {}", self.d_model));
            }
        }
        Activation::from_hf(&self.activation_function)
            .ok_or_else(|| format!("activation_function = {:?} is not supported", self.activation_function))
    }
}

/// `BartAttention`: multi-head attention with biased projections and `head_dim^-0.5` query
/// scaling.
pub type BartAttention = Attention;

/// `keys_from_encoder`: the decoder's `encoder_attn`.
fn bart_attention(
    w: &Weights,
    cfg: &BartConfig,
    heads: usize,
    keys_from_encoder: bool,
) -> Result<BartAttention> {
    let head_dim = cfg.d_model / heads;
    Attention::load(
        w,
        &AttentionShape {
            names: ["q_proj", "k_proj", "v_proj", "out_proj"],
            d_model: cfg.d_model,
            heads,
            head_dim,
            bias: true,
            scale: Some((head_dim as f64).powf(-0.5)),
            init_std: [cfg.init_std; 4],
            dropout: cfg.attention_dropout,
            keys_from_encoder,
        },
    )
}

fn bart_layer_norm(w: &Weights, cfg: &BartConfig) -> Result<LayerNorm> {
    LayerNorm::load(w, cfg.d_model, LAYER_NORM_EPS)
}

/// A layer's `fc1` → activation → `fc2`, as the shared [`FeedForward`] without a gate.
fn bart_feed_forward(w: &Weights, cfg: &BartConfig, ffn_dim: usize, act: Activation) -> Result<FeedForward> {
    let (d, std) = (cfg.d_model, cfg.init_std);
    Ok(FeedForward {
        wi: Linear::load(&w.pp("fc1"), d, ffn_dim, true, std)?,
        gate: None,
        wo: Linear::load(&w.pp("fc2"), ffn_dim, d, true, std)?,
        act,
        dropout: w.dropout(cfg.activation_dropout),
        kernels: w.kernels(),
    })
}

/// `BartEncoderLayer`: post-norm self-attention, then the post-norm feed-forward.
struct BartEncoderLayer {
    self_attn: BartAttention,
    self_attn_layer_norm: LayerNorm,
    feed_forward: FeedForward,
    final_layer_norm: LayerNorm,
    dropout: Dropout,
}

impl BartEncoderLayer {
    fn load(w: &Weights, cfg: &BartConfig, act: Activation) -> Result<Self> {
        Ok(BartEncoderLayer {
            self_attn: bart_attention(&w.pp("self_attn"), cfg, cfg.encoder_attention_heads, false)?,
            self_attn_layer_norm: bart_layer_norm(&w.pp("self_attn_layer_norm"), cfg)?,
            feed_forward: bart_feed_forward(w, cfg, cfg.encoder_ffn_dim, act)?,
            final_layer_norm: bart_layer_norm(&w.pp("final_layer_norm"), cfg)?,
            dropout: w.dropout(cfg.dropout),
        })
    }

    fn forward(&self, h: &Tensor, attention_bias: &Tensor) -> Result<Tensor> {
        let h = layers::residual(h, &self.self_attn_layer_norm, NormPlacement::Post, &self.dropout, |h| {
            self.self_attn.self_attend(h, attention_bias.into(), None)
        })?;
        layers::residual(&h, &self.final_layer_norm, NormPlacement::Post, &self.dropout, |h| {
            self.feed_forward.forward(h)
        })
    }
}

/// `BartDecoderLayer`: post-norm causal self-attention, cross-attention to the encoder output,
/// then the post-norm feed-forward.
struct BartDecoderLayer {
    self_attn: BartAttention,
    self_attn_layer_norm: LayerNorm,
    encoder_attn: BartAttention,
    encoder_attn_layer_norm: LayerNorm,
    feed_forward: FeedForward,
    final_layer_norm: LayerNorm,
    dropout: Dropout,
}

impl BartDecoderLayer {
    fn load(w: &Weights, cfg: &BartConfig, act: Activation) -> Result<Self> {
        let heads = cfg.decoder_attention_heads;
        Ok(BartDecoderLayer {
            self_attn: bart_attention(&w.pp("self_attn"), cfg, heads, false)?,
            self_attn_layer_norm: bart_layer_norm(&w.pp("self_attn_layer_norm"), cfg)?,
            encoder_attn: bart_attention(&w.pp("encoder_attn"), cfg, heads, true)?,
            encoder_attn_layer_norm: bart_layer_norm(&w.pp("encoder_attn_layer_norm"), cfg)?,
            feed_forward: bart_feed_forward(w, cfg, cfg.decoder_ffn_dim, act)?,
            final_layer_norm: bart_layer_norm(&w.pp("final_layer_norm"), cfg)?,
            dropout: w.dropout(cfg.dropout),
        })
    }

    fn forward(
        &self,
        h: &Tensor,
        self_bias: &Tensor,
        encoder: &Tensor,
        encoder_bias: &Tensor,
        cache: Option<&mut LayerKv>,
    ) -> Result<Tensor> {
        let (self_kv, cross_kv) = match cache {
            Some(LayerKv { self_kv, cross_kv }) => (Some(self_kv), Some(cross_kv)),
            None => (None, None),
        };
        let h = layers::residual(h, &self.self_attn_layer_norm, NormPlacement::Post, &self.dropout, |h| {
            self.self_attn.self_attend(h, self_bias.into(), self_kv)
        })?;
        let h =
            layers::residual(&h, &self.encoder_attn_layer_norm, NormPlacement::Post, &self.dropout, |h| {
                self.encoder_attn.cross_attend(h, encoder, encoder_bias, cross_kv)
            })?;
        layers::residual(&h, &self.final_layer_norm, NormPlacement::Post, &self.dropout, |h| {
            self.feed_forward.forward(h)
        })
    }
}

/// `BartLearnedPositionalEmbedding` followed by `layernorm_embedding` and dropout: what both
/// stacks add to their (scaled) token embeddings.
struct BartEmbeddings {
    embed_positions: Tensor,
    layernorm_embedding: LayerNorm,
    dropout: Dropout,
}

impl BartEmbeddings {
    fn load(w: &Weights, cfg: &BartConfig) -> Result<Self> {
        Ok(BartEmbeddings {
            embed_positions: w.pp("embed_positions").get(
                (cfg.max_position_embeddings + POSITION_OFFSET, cfg.d_model),
                "weight",
                Init::Randn { mean: 0.0, stdev: cfg.init_std },
            )?,
            layernorm_embedding: bart_layer_norm(&w.pp("layernorm_embedding"), cfg)?,
            dropout: w.dropout(cfg.dropout),
        })
    }

    /// `inputs_embeds` `[batch, seq, d_model]` at positions `past..past + seq`.
    fn forward(&self, inputs_embeds: &Tensor, past: usize) -> Result<Tensor> {
        let (_, seq, _) = inputs_embeds.dims3()?;
        let max = self.embed_positions.dim(0)? - POSITION_OFFSET;
        if past + seq > max {
            candle_core::bail!(
                "sequence of {} positions exceeds max_position_embeddings = {max}",
                past + seq
            );
        }
        let positions = self.embed_positions.narrow(0, past + POSITION_OFFSET, seq)?;
        let h = self.layernorm_embedding.forward(&inputs_embeds.broadcast_add(&positions)?)?;
        self.dropout.forward(&h)
    }
}

/// `BartEncoder`: embeddings and post-norm layers.
struct BartEncoder {
    embeddings: BartEmbeddings,
    layers: Vec<BartEncoderLayer>,
}

impl BartEncoder {
    fn load(w: &Weights, cfg: &BartConfig, act: Activation) -> Result<Self> {
        Ok(BartEncoder {
            embeddings: BartEmbeddings::load(w, cfg)?,
            layers: (0..cfg.encoder_layers)
                .map(|i| BartEncoderLayer::load(&w.pp("layers").pp(i), cfg, act))
                .collect::<Result<_>>()?,
        })
    }

    fn forward(&self, inputs_embeds: &Tensor, attention_bias: &Tensor) -> Result<Tensor> {
        let mut h = self.embeddings.forward(inputs_embeds, 0)?;
        for layer in &self.layers {
            h = layer.forward(&h, attention_bias)?;
        }
        Ok(h)
    }
}

/// `BartDecoder`: embeddings at the positions after the cached ones, and post-norm layers.
struct BartDecoder {
    embeddings: BartEmbeddings,
    layers: Vec<BartDecoderLayer>,
}

impl BartDecoder {
    fn load(w: &Weights, cfg: &BartConfig, act: Activation) -> Result<Self> {
        Ok(BartDecoder {
            embeddings: BartEmbeddings::load(w, cfg)?,
            layers: (0..cfg.decoder_layers)
                .map(|i| BartDecoderLayer::load(&w.pp("layers").pp(i), cfg, act))
                .collect::<Result<_>>()?,
        })
    }

    fn forward(
        &self,
        inputs_embeds: &Tensor,
        self_bias: &Tensor,
        encoder: &Tensor,
        encoder_bias: &Tensor,
        mut cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let past = cache.as_ref().map_or(0, |c| c.seq_len());
        let mut h = self.embeddings.forward(inputs_embeds, past)?;
        for (i, layer) in self.layers.iter().enumerate() {
            let slot = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            h = layer.forward(&h, self_bias, encoder, encoder_bias, slot)?;
        }
        Ok(h)
    }
}

/// BART for conditional generation.
pub struct Bart {
    cfg: BartConfig,
    shared: TokenEmbedding,
    embed_scale: f64,
    encoder: BartEncoder,
    decoder: BartDecoder,
    lm_head: Linear,
    final_logits_bias: Tensor,
    info: ModelInfo,
    tensors: Vec<(String, Tensor)>,
    quantized: Vec<(String, QWeight)>,
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
        Bart::from_weights(cfg, &Weights::new(vb, kernels))
    }

    /// Builds the model from `root`, which also says the weights' precision.
    pub fn from_weights(cfg: &BartConfig, root: &Weights) -> Result<Self> {
        let activation =
            cfg.validate().map_err(|e| candle_core::Error::Msg(format!("invalid BART config: {e}")))?;
        // A bare `BartModel` checkpoint (facebook/bart-base) has no `model.` prefix.
        let bare = !root.contains("model.shared.weight") && root.contains("shared.weight");
        let w = if bare { root.clone() } else { root.pp("model") };
        let emb = if !w.contains("shared.weight") && w.contains("encoder.embed_tokens.weight") {
            w.pp("encoder.embed_tokens")
        } else {
            w.pp("shared")
        };
        let table = emb.matrix(
            (cfg.vocab_size, cfg.d_model),
            "weight",
            Init::Randn { mean: 0.0, stdev: cfg.init_std },
            root.precision().embedding_block(cfg.d_model),
        )?;
        let encoder = BartEncoder::load(&w.pp("encoder"), cfg, activation)?;
        let decoder = BartDecoder::load(&w.pp("decoder").for_rows(Rows::Few), cfg, activation)?;
        let final_logits_bias = if root.contains("final_logits_bias") {
            root.get((1, cfg.vocab_size), "final_logits_bias", Init::Const(0.0))?
        } else {
            Tensor::zeros((1, cfg.vocab_size), root.dtype(), root.device())?
        };
        // Saved under the keys `BartForConditionalGeneration` writes, whatever layout we read.
        let embedding_key = emb.key("weight");
        let rename = |k: String| {
            let k = if k == embedding_key {
                "shared.weight".to_string()
            } else {
                k.strip_prefix("model.").unwrap_or(&k).to_string()
            };
            if k == "final_logits_bias" {
                k
            } else {
                format!("model.{k}")
            }
        };
        let mut tensors: Vec<(String, Tensor)> =
            root.recorded()?.into_iter().map(|(k, t)| (rename(k), t)).collect();
        let quantized: Vec<(String, QWeight)> =
            root.recorded_quantized()?.into_iter().map(|(k, q)| (rename(k), q)).collect();
        if !tensors.iter().any(|(k, _)| k == "final_logits_bias") {
            tensors.push(("final_logits_bias".into(), final_logits_bias.clone()));
        }
        let params: Vec<(String, Tensor)> =
            tensors.iter().filter(|(k, _)| k != "final_logits_bias").cloned().collect();
        let (param_count, param_bytes) = layers::param_totals(&params, &quantized);
        let info = ModelInfo {
            arch: Arch::Bart,
            dtype: root.precision(),
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
            shared: TokenEmbedding::new(table.clone()),
            embed_scale: if cfg.scale_embedding { (cfg.d_model as f64).sqrt() } else { 1.0 },
            encoder,
            decoder,
            lm_head: Linear::new(table, None, root.kernels())?,
            final_logits_bias,
            info,
            tensors,
            quantized,
            training: root.training_switch(),
        })
    }

    pub fn config(&self) -> &BartConfig {
        &self.cfg
    }

    /// The `config.json` keys this model does not read, saved with it.
    pub fn config_extra_mut(&mut self) -> &mut BTreeMap<String, serde_json::Value> {
        &mut self.cfg.extra
    }

    /// Every dense tensor under its Hugging Face key, `final_logits_bias` included.
    pub fn named_tensors(&self) -> &[(String, Tensor)] {
        &self.tensors
    }

    /// Every quantized matrix under its Hugging Face key (none unless loaded as `q8`/`q4`).
    pub fn quantized_tensors(&self) -> &[(String, QWeight)] {
        &self.quantized
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
            c.check_layers(self.decoder.layers.len())?;
        }
        let self_bias = layers::decoder_self_bias(new, past, decoder_mask, ids.device())?;
        let enc_bias = layers::padding_bias(encoder_mask)?;
        let h =
            self.decoder.forward(&self.embed_tokens(ids)?, &self_bias, encoder_hidden, &enc_bias, cache)?;
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
        self.encoder.forward(&self.embed_tokens(input_ids)?, &layers::padding_bias(attention_mask)?)
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

//! T5 v1.0 and v1.1 / FLAN-T5 (Raffel et al. 2020, <https://arxiv.org/abs/1910.10683>) on candle,
//! matching Hugging Face `T5ForConditionalGeneration` numerically. Unlike
//! `candle_transformers::models::t5` it uses the *causal* relative-position buckets in the decoder,
//! takes attention masks for padded batches, returns logits for every decoder position, scales tied
//! embeddings as Hugging Face does, and keeps its KV cache outside the model.
//!
//! Weight keys are exactly the checkpoint's (`shared.weight`, `encoder.block.0.layer.0.SelfAttention.q.weight`, …).
//!
//! Why it is long: it is `modeling_t5` module for module (config, buckets, the encoder's position
//! bias by relative offset, each `T5Layer*`, `T5Block`, `T5Stack`, the model), so a reader can hold
//! it against transformers; split up, each piece would only be read beside the others.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Embedding, Init};
use serde::{Deserialize, Serialize};

use super::attention::{Attention, AttentionShape, BiasRows, ScoreBias};
use super::layers::{
    self, Activation, Dropout, FeedForward, Kernels, Linear, NormPlacement, RmsNorm, Rows, TokenEmbedding,
    TrainingSwitch, Weights,
};
use super::quant::QWeight;
use super::{Arch, Cached, KvCache, LayerKv, ModelInfo, Seq2Seq};

fn default_vocab_size() -> usize {
    32128
}
fn default_d_model() -> usize {
    512
}
fn default_d_kv() -> usize {
    64
}
fn default_d_ff() -> usize {
    2048
}
fn default_num_layers() -> usize {
    6
}
fn default_num_heads() -> usize {
    8
}
fn default_num_buckets() -> usize {
    32
}
fn default_max_distance() -> usize {
    128
}
fn default_eps() -> f64 {
    1e-6
}
fn default_factor() -> f64 {
    1.0
}
fn default_dropout() -> f64 {
    0.1
}
fn default_ff_proj() -> String {
    "relu".into()
}
fn default_true() -> bool {
    true
}
fn default_pad() -> u32 {
    0
}
fn default_eos() -> super::checkpoint::TokenIds {
    super::checkpoint::TokenIds::One(1)
}

/// Mirrors a T5 `config.json` (t5-small … t5-11b, t5-v1_1-*, flan-t5-small … xxl). Keys we do
/// not use are kept in `extra` so a saved checkpoint keeps them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct T5Config {
    #[serde(default = "default_vocab_size")]
    pub vocab_size: usize,
    #[serde(default = "default_d_model")]
    pub d_model: usize,
    /// Size of one attention head.
    #[serde(default = "default_d_kv")]
    pub d_kv: usize,
    #[serde(default = "default_d_ff")]
    pub d_ff: usize,
    /// Encoder layers.
    #[serde(default = "default_num_layers")]
    pub num_layers: usize,
    /// Decoder layers; `num_layers` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_decoder_layers: Option<usize>,
    #[serde(default = "default_num_heads")]
    pub num_heads: usize,
    #[serde(default = "default_num_buckets")]
    pub relative_attention_num_buckets: usize,
    #[serde(default = "default_max_distance")]
    pub relative_attention_max_distance: usize,
    #[serde(default = "default_dropout")]
    pub dropout_rate: f64,
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    #[serde(default = "default_factor")]
    pub initializer_factor: f64,
    /// `"relu"` (v1.0), `"gated-gelu"` (v1.1, FLAN; uses gelu_new), `"gated-silu"`, …
    #[serde(default = "default_ff_proj")]
    pub feed_forward_proj: String,
    /// v1.0 ties the LM head to the embeddings (and scales the decoder output); v1.1 does not.
    /// transformers 5 always writes `true` here and keeps an untied head as its own
    /// `lm_head.weight`; `load` turns that into `false` (see `model::layout`).
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
    /// transformers 5: whether the decoder output is multiplied by `d_model^-0.5` before the LM
    /// head. When absent, the tie flag decides, as in transformers 4 and 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_decoder_outputs: Option<bool>,
    /// The feed-forward activation; when present it wins over the one `feed_forward_proj` names,
    /// as in transformers (which sets it from `feed_forward_proj`, then from config.json).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dense_act_fn: Option<String>,
    /// Whether the feed-forward is gated; when present it wins over `feed_forward_proj`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_gated_act: Option<bool>,
    #[serde(default = "default_pad")]
    pub pad_token_id: u32,
    #[serde(default = "default_eos")]
    pub eos_token_id: super::checkpoint::TokenIds,
    /// T5 starts decoding with the pad token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoder_start_token_id: Option<u32>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl T5Config {
    pub fn decoder_layers(&self) -> usize {
        self.num_decoder_layers.unwrap_or(self.num_layers)
    }

    /// Whether the decoder output is scaled by `d_model^-0.5` before the LM head: transformers
    /// 5 reads `scale_decoder_outputs` and falls back to the tie flag when it is absent.
    pub fn scales_decoder_outputs(&self) -> bool {
        self.scale_decoder_outputs.unwrap_or(self.tie_word_embeddings)
    }

    /// The feed-forward shape: gated or not, and its activation. Hugging Face maps
    /// `gated-gelu` to `gelu_new` for backward compatibility; we do the same. `dense_act_fn` and
    /// `is_gated_act`, when config.json has them, win over `feed_forward_proj`, as in transformers.
    pub fn feed_forward(&self) -> std::result::Result<(bool, Activation), String> {
        let parts: Vec<&str> = self.feed_forward_proj.split('-').collect();
        let (gated, act) = match parts.as_slice() {
            [act] => (false, *act),
            ["gated", act] => (true, *act),
            _ => {
                return Err(format!(
                    "feed_forward_proj = {:?} is not `ACT` or `gated-ACT`",
                    self.feed_forward_proj
                ))
            }
        };
        let act = if self.feed_forward_proj == "gated-gelu" { "gelu_new" } else { act };
        let gated = self.is_gated_act.unwrap_or(gated);
        let (act, setting) = match &self.dense_act_fn {
            Some(dense) => (dense.as_str(), format!("dense_act_fn = {dense:?}")),
            None => (act, format!("feed_forward_proj = {:?}", self.feed_forward_proj)),
        };
        Activation::from_hf(act).map(|a| (gated, a)).ok_or_else(|| {
            format!("{setting}: activation {act:?} is not supported (supported: {})", Activation::HF_NAMES)
        })
    }

    /// Checks the values a model build relies on; errors name the `config.json` key.
    pub fn validate(&self) -> std::result::Result<(), String> {
        self.feed_forward()?;
        for (key, value) in [
            ("vocab_size", self.vocab_size),
            ("d_model", self.d_model),
            ("d_kv", self.d_kv),
            ("d_ff", self.d_ff),
            ("num_heads", self.num_heads),
            ("num_layers", self.num_layers),
            ("relative_attention_num_buckets", self.relative_attention_num_buckets),
        ] {
            if value == 0 {
                return Err(format!("{key} must be positive"));
            }
        }
        if self.decoder_layers() == 0 {
            return Err("num_decoder_layers must be positive".into());
        }
        if self.relative_attention_num_buckets < 4 {
            return Err("relative_attention_num_buckets must be at least 4".into());
        }
        if self.relative_attention_max_distance <= self.relative_attention_num_buckets / 2 {
            return Err(
                "relative_attention_max_distance must exceed half of relative_attention_num_buckets".into()
            );
        }
        Ok(())
    }
}

/// Hugging Face's `_relative_position_bucket`, including its f32 arithmetic, so bucket edges
/// agree exactly. `relative` is `key_position - query_position`.
pub fn relative_position_bucket(
    relative: i64,
    bidirectional: bool,
    num_buckets: usize,
    max_distance: usize,
) -> u32 {
    let mut num_buckets = num_buckets as i64;
    let mut bucket = 0i64;
    let distance = if bidirectional {
        num_buckets /= 2;
        if relative > 0 {
            bucket += num_buckets;
        }
        relative.abs()
    } else {
        (-relative).max(0)
    };
    let max_exact = num_buckets / 2;
    if distance < max_exact {
        bucket += distance;
    } else {
        let scale = ((max_distance as f64) / (max_exact as f64)).ln() as f32;
        let large =
            ((distance as f32 / max_exact as f32).ln() / scale * (num_buckets - max_exact) as f32) as i64;
        bucket += (max_exact + large).min(num_buckets - 1);
    }
    bucket as u32
}

/// `T5LayerNorm`: scale-only RMS norm, statistics in f32.
pub type T5LayerNorm = RmsNorm;

fn t5_layer_norm(w: &Weights, cfg: &T5Config) -> Result<T5LayerNorm> {
    RmsNorm::load(w, cfg.d_model, cfg.layer_norm_epsilon)
}

/// `T5DenseActDense` (`wi`, `wo`) or, for a gated `feed_forward_proj`, `T5DenseGatedActDense`
/// (`wi_0`, `wi_1`, `wo`): the shared [`FeedForward`] without or with its gate.
fn t5_dense_act_dense(w: &Weights, cfg: &T5Config) -> Result<FeedForward> {
    let (gated, act) = cfg.feed_forward().map_err(candle_core::Error::Msg)?;
    let f = cfg.initializer_factor;
    let wi_std = f * (cfg.d_model as f64).powf(-0.5);
    let wi = |name: &str| Linear::load(&w.pp(name), cfg.d_model, cfg.d_ff, false, wi_std);
    let (wi, gate) = if gated { (wi("wi_0")?, Some(wi("wi_1")?)) } else { (wi("wi")?, None) };
    Ok(FeedForward {
        wi,
        gate,
        wo: Linear::load(
            &w.pp("wo").keep_in_f32(),
            cfg.d_ff,
            cfg.d_model,
            false,
            f * (cfg.d_ff as f64).powf(-0.5),
        )?,
        act,
        dropout: w.dropout(cfg.dropout_rate),
        kernels: w.kernels(),
    })
}

/// `T5LayerFF`: the pre-norm residual feed-forward sublayer.
struct T5LayerFF {
    dense_relu_dense: FeedForward,
    layer_norm: T5LayerNorm,
    dropout: Dropout,
}

impl T5LayerFF {
    fn load(w: &Weights, cfg: &T5Config) -> Result<Self> {
        Ok(T5LayerFF {
            dense_relu_dense: t5_dense_act_dense(&w.pp("DenseReluDense"), cfg)?,
            layer_norm: t5_layer_norm(&w.pp("layer_norm"), cfg)?,
            dropout: w.dropout(cfg.dropout_rate),
        })
    }

    fn forward(&self, h: &Tensor) -> Result<Tensor> {
        layers::residual(h, &self.layer_norm, NormPlacement::Pre, &self.dropout, |normed| {
            self.dense_relu_dense.forward(normed)
        })
    }
}

/// `T5Attention`: unscaled multi-head attention; the first block's self-attention of each stack
/// also holds the relative-position bias table that every block of the stack adds to its scores.
struct T5Attention {
    attention: Attention,
    relative_attention_bias: Option<Embedding>,
    is_decoder: bool,
    num_buckets: usize,
    max_distance: usize,
}

impl T5Attention {
    /// `keys_from_encoder`: the decoder's `EncDecAttention`.
    fn load(
        w: &Weights,
        cfg: &T5Config,
        is_decoder: bool,
        has_relative_attention_bias: bool,
        keys_from_encoder: bool,
    ) -> Result<Self> {
        let f = cfg.initializer_factor;
        let (dm, inner) = (cfg.d_model as f64, (cfg.num_heads * cfg.d_kv) as f64);
        let attention = Attention::load(
            w,
            &AttentionShape {
                names: ["q", "k", "v", "o"],
                d_model: cfg.d_model,
                heads: cfg.num_heads,
                head_dim: cfg.d_kv,
                bias: false,
                scale: None,
                init_std: [
                    f * (dm * cfg.d_kv as f64).powf(-0.5),
                    f * dm.powf(-0.5),
                    f * dm.powf(-0.5),
                    f * inner.powf(-0.5),
                ],
                dropout: cfg.dropout_rate,
                keys_from_encoder,
            },
        )?;
        let relative_attention_bias = if has_relative_attention_bias {
            let table = w.pp("relative_attention_bias").get(
                (cfg.relative_attention_num_buckets, cfg.num_heads),
                "weight",
                Init::Randn { mean: 0.0, stdev: f * dm.powf(-0.5) },
            )?;
            Some(Embedding::new(table, cfg.num_heads))
        } else {
            None
        };
        Ok(T5Attention {
            attention,
            relative_attention_bias,
            is_decoder,
            num_buckets: cfg.relative_attention_num_buckets,
            max_distance: cfg.relative_attention_max_distance,
        })
    }

    /// Position bias `[1, heads, q_len, past + q_len]` (f32) for queries at `past..past + q_len`:
    /// bidirectional buckets in the encoder, causal ones in the decoder.
    fn compute_bias(&self, q_len: usize, past: usize, device: &Device) -> Result<Tensor> {
        let Some(table) = &self.relative_attention_bias else {
            candle_core::bail!("this T5 attention holds no relative_attention_bias");
        };
        let k_len = past + q_len;
        let buckets: Vec<u32> = (0..q_len)
            .flat_map(|i| {
                (0..k_len).map(move |j| {
                    let rel = j as i64 - (past + i) as i64;
                    relative_position_bucket(rel, !self.is_decoder, self.num_buckets, self.max_distance)
                })
            })
            .collect();
        let buckets = Tensor::from_vec(buckets, (q_len, k_len), device)?;
        table.forward(&buckets)?.permute((2, 0, 1))?.unsqueeze(0)?.to_dtype(DType::F32)
    }

    /// The encoder's position bias plus its padding, what every encoder block adds to its
    /// scores. Training looks the buckets up through the table's embedding, which its gradient
    /// needs, into one `[batch, heads, len, len]` tensor; inference keeps only the table's values
    /// by relative position and the padding, and writes each query chunk's rows as they are needed
    /// ([`RelativeRows`]), so nothing quadratic in the input is alive for the whole encoder.
    fn encoder_bias(&self, attention_mask: &Tensor) -> Result<EncoderBias> {
        let (batch, len) = attention_mask.dims2()?;
        let device = attention_mask.device();
        let padding = layers::padding_bias(attention_mask)?;
        let table = match (&self.relative_attention_bias, self.attention.kernels) {
            (Some(table), Kernels::Fused) => table,
            _ => return Ok(EncoderBias::Whole(self.compute_bias(len, 0, device)?.broadcast_add(&padding)?)),
        };
        let table = table.embeddings().to_dtype(DType::F32)?.to_vec2::<f32>()?;
        let heads = self.attention.heads;
        let offsets = (2 * len).saturating_sub(1);
        // Per head, entry `len - 1 + j - i` is the bias of key `j` seen from query `i`.
        let mut by_offset = vec![0f32; heads * offsets];
        for r in 0..offsets {
            let relative = r as i64 - (len as i64 - 1);
            let bucket =
                relative_position_bucket(relative, true, self.num_buckets, self.max_distance) as usize;
            for (head, &value) in table[bucket].iter().enumerate() {
                by_offset[head * offsets + r] = value;
            }
        }
        let padding = padding.flatten_all()?.to_vec1::<f32>()?;
        Ok(EncoderBias::ByOffset(RelativeRows {
            by_offset,
            padding,
            batch,
            heads,
            len,
            device: device.clone(),
        }))
    }
}

/// T5's encoder bias: whole (training) or written by query rows (inference).
enum EncoderBias {
    Whole(Tensor),
    ByOffset(RelativeRows),
}

impl EncoderBias {
    fn score_bias(&self) -> ScoreBias<'_> {
        match self {
            EncoderBias::Whole(bias) => ScoreBias::Whole(bias),
            EncoderBias::ByOffset(rows) => ScoreBias::Rows(rows),
        }
    }
}

/// The encoder's position bias depends only on `j - i`, so it is kept as one row of `2 len - 1`
/// values per head plus each input's padding, and written out for a chunk of queries at a time.
struct RelativeRows {
    /// `[heads, 2 len - 1]`.
    by_offset: Vec<f32>,
    /// `[batch, len]`: 0 or the mask value.
    padding: Vec<f32>,
    batch: usize,
    heads: usize,
    len: usize,
    device: Device,
}

impl BiasRows for RelativeRows {
    /// `[batch, heads, count, len]` for the queries `start..start + count`.
    fn rows(&self, start: usize, count: usize) -> Result<Tensor> {
        let (len, offsets) = (self.len, (2 * self.len).saturating_sub(1));
        let mut bias = Vec::with_capacity(self.batch * self.heads * count * len);
        for padding in self.padding.chunks(len) {
            for head in self.by_offset.chunks(offsets.max(1)) {
                for i in start..start + count {
                    let row = &head[len - 1 - i..][..len];
                    bias.extend(row.iter().zip(padding).map(|(b, pad)| b + pad));
                }
            }
        }
        Tensor::from_vec(bias, (self.batch, self.heads, count, len), &self.device)
    }
}

/// `T5LayerSelfAttention`: pre-norm residual self-attention.
struct T5LayerSelfAttention {
    self_attention: T5Attention,
    layer_norm: T5LayerNorm,
    dropout: Dropout,
}

impl T5LayerSelfAttention {
    fn load(
        w: &Weights,
        cfg: &T5Config,
        is_decoder: bool,
        has_relative_attention_bias: bool,
    ) -> Result<Self> {
        Ok(T5LayerSelfAttention {
            self_attention: T5Attention::load(
                &w.pp("SelfAttention"),
                cfg,
                is_decoder,
                has_relative_attention_bias,
                false,
            )?,
            layer_norm: t5_layer_norm(&w.pp("layer_norm"), cfg)?,
            dropout: w.dropout(cfg.dropout_rate),
        })
    }

    fn forward(
        &self,
        h: &Tensor,
        position_bias: ScoreBias<'_>,
        cache: Option<&mut Option<(Cached, Cached)>>,
    ) -> Result<Tensor> {
        layers::residual(h, &self.layer_norm, NormPlacement::Pre, &self.dropout, |normed| {
            self.self_attention.attention.self_attend(normed, position_bias, cache)
        })
    }
}

/// `T5LayerCrossAttention`: pre-norm residual attention to the encoder output.
struct T5LayerCrossAttention {
    enc_dec_attention: T5Attention,
    layer_norm: T5LayerNorm,
    dropout: Dropout,
}

impl T5LayerCrossAttention {
    fn load(w: &Weights, cfg: &T5Config) -> Result<Self> {
        Ok(T5LayerCrossAttention {
            enc_dec_attention: T5Attention::load(&w.pp("EncDecAttention"), cfg, true, false, true)?,
            layer_norm: t5_layer_norm(&w.pp("layer_norm"), cfg)?,
            dropout: w.dropout(cfg.dropout_rate),
        })
    }

    fn forward(
        &self,
        h: &Tensor,
        encoder: &Tensor,
        encoder_bias: &Tensor,
        cache: Option<&mut Option<(Cached, Cached)>>,
    ) -> Result<Tensor> {
        layers::residual(h, &self.layer_norm, NormPlacement::Pre, &self.dropout, |normed| {
            self.enc_dec_attention.attention.cross_attend(normed, encoder, encoder_bias, cache)
        })
    }
}

/// `T5Block`: `layer.0` self-attention, in the decoder `layer.1` cross-attention, then the
/// feed-forward (`layer.1` in the encoder, `layer.2` in the decoder).
struct T5Block {
    self_attention: T5LayerSelfAttention,
    cross_attention: Option<T5LayerCrossAttention>,
    ff: T5LayerFF,
}

impl T5Block {
    fn load(
        w: &Weights,
        cfg: &T5Config,
        is_decoder: bool,
        has_relative_attention_bias: bool,
    ) -> Result<Self> {
        let layer = w.pp("layer");
        let self_attention =
            T5LayerSelfAttention::load(&layer.pp(0), cfg, is_decoder, has_relative_attention_bias)?;
        let cross_attention =
            if is_decoder { Some(T5LayerCrossAttention::load(&layer.pp(1), cfg)?) } else { None };
        let ff = T5LayerFF::load(&layer.pp(if is_decoder { 2 } else { 1 }), cfg)?;
        Ok(T5Block { self_attention, cross_attention, ff })
    }

    fn forward(
        &self,
        h: &Tensor,
        position_bias: ScoreBias<'_>,
        encoder: Option<(&Tensor, &Tensor)>,
        cache: Option<&mut LayerKv>,
    ) -> Result<Tensor> {
        let (self_kv, cross_kv) = match cache {
            Some(LayerKv { self_kv, cross_kv }) => (Some(self_kv), Some(cross_kv)),
            None => (None, None),
        };
        let mut h = self.self_attention.forward(h, position_bias, self_kv)?;
        if let (Some(cross), Some((encoder, encoder_bias))) = (&self.cross_attention, encoder) {
            h = cross.forward(&h, encoder, encoder_bias, cross_kv)?;
        }
        self.ff.forward(&h)
    }
}

/// `T5Stack`: the encoder or the decoder (blocks, final norm); the embeddings are the model's.
struct T5Stack {
    block: Vec<T5Block>,
    final_layer_norm: T5LayerNorm,
    dropout: Dropout,
}

impl T5Stack {
    fn load(w: &Weights, cfg: &T5Config, is_decoder: bool) -> Result<Self> {
        let n = if is_decoder { cfg.decoder_layers() } else { cfg.num_layers };
        let block = (0..n)
            .map(|i| T5Block::load(&w.pp("block").pp(i), cfg, is_decoder, i == 0))
            .collect::<Result<Vec<_>>>()?;
        Ok(T5Stack {
            block,
            final_layer_norm: t5_layer_norm(&w.pp("final_layer_norm"), cfg)?,
            dropout: w.dropout(cfg.dropout_rate),
        })
    }

    /// The encoder's position bias plus padding ([`T5Attention::encoder_bias`] of the first block).
    fn encoder_bias(&self, attention_mask: &Tensor) -> Result<EncoderBias> {
        self.block[0].self_attention.self_attention.encoder_bias(attention_mask)
    }

    /// The relative-position bias of the first block, shared by all blocks.
    fn position_bias(&self, q_len: usize, past: usize, device: &Device) -> Result<Tensor> {
        self.block[0].self_attention.self_attention.compute_bias(q_len, past, device)
    }

    /// `self_bias` is the position bias plus the masks; `encoder` is the encoder output and its
    /// padding bias (decoder only).
    fn forward(
        &self,
        inputs_embeds: Tensor,
        self_bias: ScoreBias<'_>,
        encoder: Option<(&Tensor, &Tensor)>,
        mut cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        // Taken by value so the embeddings are freed once the first block has read them.
        let mut h = self.dropout.forward(&inputs_embeds)?;
        drop(inputs_embeds);
        for (i, block) in self.block.iter().enumerate() {
            let slot = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            h = block.forward(&h, self_bias, encoder, slot)?;
        }
        self.dropout.forward(&self.final_layer_norm.forward(&h)?)
    }
}

/// T5 for conditional generation.
pub struct T5 {
    cfg: T5Config,
    shared: TokenEmbedding,
    encoder: T5Stack,
    decoder: T5Stack,
    lm_head: Linear,
    info: ModelInfo,
    tensors: Vec<(String, Tensor)>,
    quantized: Vec<(String, QWeight)>,
    training: TrainingSwitch,
}

impl T5 {
    /// Builds the model from checkpoint weights, or with fresh weights on a `VarMap`
    /// (`VarBuilder::from_varmap`) for training. Errors name the missing key or both shapes.
    pub fn new(cfg: &T5Config, vb: candle_nn::VarBuilder) -> Result<Self> {
        T5::with_kernels(cfg, vb, Kernels::Differentiable)
    }

    /// Like [`T5::new`], choosing the kernels ([`Kernels::Fused`] is for inference only).
    pub fn with_kernels(cfg: &T5Config, vb: candle_nn::VarBuilder, kernels: Kernels) -> Result<Self> {
        T5::from_weights(cfg, &Weights::new(vb, kernels))
    }

    /// Builds the model from `w`, which also says the weights' precision.
    pub fn from_weights(cfg: &T5Config, w: &Weights) -> Result<Self> {
        cfg.validate().map_err(|e| candle_core::Error::Msg(format!("invalid T5 config: {e}")))?;
        let emb_name = if !w.contains("shared.weight") && w.contains("encoder.embed_tokens.weight") {
            "encoder.embed_tokens"
        } else {
            "shared"
        };
        let table = w.pp(emb_name).matrix(
            (cfg.vocab_size, cfg.d_model),
            "weight",
            Init::Randn { mean: 0.0, stdev: cfg.initializer_factor },
            w.precision().embedding_block(cfg.d_model),
        )?;
        let shared = TokenEmbedding::new(table.clone());
        let encoder = T5Stack::load(&w.pp("encoder"), cfg, false)?;
        let decoder = T5Stack::load(&w.pp("decoder").for_rows(Rows::Few), cfg, true)?;
        let lm_head = if cfg.tie_word_embeddings {
            Linear::new(table, None, w.kernels())?
        } else {
            let head = w.pp("lm_head").for_rows(Rows::Few);
            Linear::load(&head, cfg.d_model, cfg.vocab_size, false, cfg.initializer_factor)?
        };
        // Saved as `shared.weight` whichever embedding key the checkpoint used.
        let embedding_key = format!("{emb_name}.weight");
        let rename = |k: String| if k == embedding_key { "shared.weight".to_string() } else { k };
        let tensors: Vec<(String, Tensor)> = w.recorded()?.into_iter().map(|(k, t)| (rename(k), t)).collect();
        let quantized: Vec<(String, QWeight)> =
            w.recorded_quantized()?.into_iter().map(|(k, q)| (rename(k), q)).collect();
        let (param_count, param_bytes) = layers::param_totals(&tensors, &quantized);
        let info = ModelInfo {
            arch: Arch::T5,
            dtype: w.precision(),
            vocab_size: cfg.vocab_size,
            d_model: cfg.d_model,
            num_decoder_layers: cfg.decoder_layers(),
            max_input_positions: None,
            param_count,
            param_bytes,
            decoder_start_token_id: cfg.decoder_start_token_id.unwrap_or(cfg.pad_token_id),
            pad_token_id: cfg.pad_token_id,
            eos_token_id: cfg.eos_token_id.first().unwrap_or(1),
            bos_token_id: None,
            forced_bos_token_id: None,
            forced_eos_token_id: None,
        };
        let training = w.training_switch();
        Ok(T5 { cfg: cfg.clone(), shared, encoder, decoder, lm_head, info, tensors, quantized, training })
    }

    pub fn config(&self) -> &T5Config {
        &self.cfg
    }

    /// The `config.json` keys this model does not read, saved with it.
    pub fn config_extra_mut(&mut self) -> &mut BTreeMap<String, serde_json::Value> {
        &mut self.cfg.extra
    }

    /// Every dense parameter under its Hugging Face key (tied embeddings once, as `shared.weight`).
    pub fn named_tensors(&self) -> &[(String, Tensor)] {
        &self.tensors
    }

    /// Every quantized matrix under its Hugging Face key (none unless loaded as `q8`/`q4`).
    pub fn quantized_tensors(&self) -> &[(String, QWeight)] {
        &self.quantized
    }

    /// Dropout (`dropout_rate`) on while training, off (the default) for evaluation and generation.
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
            c.check_layers(self.decoder.block.len())?;
        }
        let device = ids.device();
        let self_bias = self
            .decoder
            .position_bias(new, past, device)?
            .broadcast_add(&layers::decoder_self_bias(new, past, decoder_mask, device)?)?;
        let enc_bias = layers::padding_bias(encoder_mask)?;
        let h = self.shared.forward(ids)?;
        let h = self.decoder.forward(
            h,
            ScoreBias::Whole(&self_bias),
            Some((encoder_hidden, &enc_bias)),
            cache,
        )?;
        let h =
            if self.cfg.scales_decoder_outputs() { (h * (self.cfg.d_model as f64).powf(-0.5))? } else { h };
        self.lm_head.forward(&h)?.to_dtype(DType::F32)
    }
}

impl Seq2Seq for T5 {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn encode(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
        let bias = self.encoder.encoder_bias(attention_mask)?;
        self.encoder.forward(self.shared.forward(input_ids)?, bias.score_bias(), None, None)
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

    /// Values from Hugging Face `T5Attention._relative_position_bucket` (32 buckets, distance 128).
    #[test]
    fn buckets_match_hugging_face() {
        let bi = |r| relative_position_bucket(r, true, 32, 128);
        let causal = |r| relative_position_bucket(r, false, 32, 128);
        assert_eq!(
            [bi(0), bi(1), bi(-1), bi(7), bi(8), bi(-8), bi(12), bi(100), bi(-1000)],
            [0, 17, 1, 23, 24, 8, 25, 31, 15]
        );
        assert_eq!(
            [
                causal(0),
                causal(1),
                causal(-1),
                causal(-15),
                causal(-16),
                causal(-20),
                causal(-40),
                causal(-500)
            ],
            [0, 0, 1, 15, 16, 17, 23, 31]
        );
    }

    /// The shape of google/flan-t5-xxl's config.json (trimmed of its task prompts).
    #[test]
    fn flan_t5_xxl_config_parses() {
        let cfg: T5Config = serde_json::from_str(
            r#"{"architectures": ["T5ForConditionalGeneration"], "d_ff": 10240, "d_kv": 64, "d_model": 4096,
                "decoder_start_token_id": 0, "dense_act_fn": "gelu_new", "dropout_rate": 0.1, "eos_token_id": 1,
                "feed_forward_proj": "gated-gelu", "initializer_factor": 1.0, "is_encoder_decoder": true,
                "is_gated_act": true, "layer_norm_epsilon": 1e-06, "model_type": "t5", "num_decoder_layers": 24,
                "num_heads": 64, "num_layers": 24, "output_past": true, "pad_token_id": 0,
                "relative_attention_max_distance": 128, "relative_attention_num_buckets": 32,
                "tie_word_embeddings": false, "torch_dtype": "float32", "use_cache": true, "vocab_size": 32128}"#,
        )
        .unwrap();
        cfg.validate().unwrap();
        assert_eq!((cfg.num_heads * cfg.d_kv, cfg.decoder_layers()), (4096, 24));
        assert!(!cfg.tie_word_embeddings && cfg.extra.contains_key("output_past"));
    }

    #[test]
    fn config_defaults_and_feed_forward() {
        let cfg: T5Config =
            serde_json::from_str(r#"{"feed_forward_proj": "gated-gelu", "tie_word_embeddings": false}"#)
                .unwrap();
        assert_eq!(cfg.d_model, 512);
        assert_eq!(cfg.decoder_layers(), 6);
        assert_eq!(cfg.feed_forward().unwrap(), (true, Activation::GeluNew));
        let bad: T5Config = serde_json::from_str(r#"{"feed_forward_proj": "gated-mish"}"#).unwrap();
        assert!(bad.validate().unwrap_err().contains("feed_forward_proj"));
    }

    /// The bias inference writes in one pass is the training lookup's, padding included.
    #[test]
    fn encoder_bias_written_in_one_pass_equals_the_lookup() {
        let cfg: T5Config = serde_json::from_str(
            r#"{"d_model": 16, "d_kv": 4, "d_ff": 32, "num_layers": 1, "num_heads": 3, "vocab_size": 40,
                "relative_attention_num_buckets": 8, "relative_attention_max_distance": 12}"#,
        )
        .unwrap();
        let (device, varmap) = (Device::Cpu, candle_nn::VarMap::new());
        let vb = candle_nn::VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let training = T5::new(&cfg, vb.clone()).unwrap();
        let inference = T5::with_kernels(&cfg, vb, Kernels::Fused).unwrap();
        let padded: Vec<u8> = (0..40).map(|i| u8::from(i < 33)).collect();
        let mask = Tensor::from_vec(padded, (2, 20), &device).unwrap();
        let EncoderBias::Whole(whole) = training.encoder.encoder_bias(&mask).unwrap() else {
            panic!("training looks the bias up whole");
        };
        let EncoderBias::ByOffset(rows) = inference.encoder.encoder_bias(&mask).unwrap() else {
            panic!("inference writes the bias by rows");
        };
        assert_eq!(whole.dims(), &[2, 3, 20, 20]);
        for (start, count) in [(0, 20), (0, 7), (7, 7), (14, 6), (19, 1)] {
            let chunk = rows.rows(start, count).unwrap();
            let expected = whole.narrow(2, start, count).unwrap();
            assert_eq!(
                chunk.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                expected.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                "rows {start}..{}",
                start + count
            );
        }
    }
}

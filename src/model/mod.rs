//! The seq2seq engine on candle: our own T5 (v1.0 and v1.1/FLAN) and BART implementations (and a
//! BERT/RoBERTa encoder for BERTScore's embeddings, [`bert`]), checkpoint IO in Hugging Face layout, generation (greedy, beam, sampling, streaming) and its
//! instrumentation ([`GenStats`]). Knows nothing of recommendation, datasets or the terminal.

pub mod attention;
#[cfg(target_arch = "x86_64")]
pub mod avx512;
pub mod bart;
pub mod bert;
pub mod cache;
pub mod checkpoint;
pub mod compat;
pub mod device;
pub mod engine;
pub mod generate;
pub mod hf_cache;
pub mod int8;
pub mod int8_cache;
pub mod kernels;
pub mod layers;
pub mod layout;
pub mod load;
pub mod mapped;
pub mod memory;
pub mod notice;
pub mod quality;
pub mod quant;
pub mod stats;
pub mod step_attention;
pub mod t5;

pub use cache::{Cached, KvCache, LayerKv};
pub use generate::{EarlyStopping, GenerationConfig, GenerationOverrides};
pub use layers::Kernels;
pub use load::{load, load_model, load_with_tokenizer, LoadOptions, Model};
pub use quant::WeightDtype;
pub use stats::GenStats;

use candle_core::{Result, Tensor};

/// Which architecture family a checkpoint belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    T5,
    Bart,
}

/// What generation and instrumentation need to know about a loaded model.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ModelInfo {
    pub arch: Arch,
    /// The precision the weights were loaded in.
    pub dtype: WeightDtype,
    pub vocab_size: usize,
    pub d_model: usize,
    pub num_decoder_layers: usize,
    /// The longest input the model can encode (BART's learned positions); `None` when positions
    /// are relative (T5).
    pub max_input_positions: Option<usize>,
    pub param_count: usize,
    /// Bytes the weights take as loaded (quantized blocks at their real size).
    pub param_bytes: usize,
    pub decoder_start_token_id: u32,
    pub pad_token_id: u32,
    pub eos_token_id: u32,
    pub bos_token_id: Option<u32>,
    pub forced_bos_token_id: Option<u32>,
    pub forced_eos_token_id: Option<u32>,
}

/// An encoder–decoder model. Shapes: ids and masks are `[batch, seq]` (`u32` ids, mask of 1/0 in
/// the model's float dtype or `u8`), hidden states `[batch, seq, d_model]`, logits
/// `[batch, seq, vocab]` in f32.
pub trait Seq2Seq: Send + Sync {
    fn info(&self) -> &ModelInfo;

    /// Runs the encoder once per input batch.
    fn encode(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor>;

    /// Decodes `decoder_input_ids` (`[batch, new]`, the positions after those in `cache`) and
    /// returns their logits, appending their keys/values to `cache`.
    fn decode_step(
        &self,
        decoder_input_ids: &Tensor,
        encoder_hidden: &Tensor,
        encoder_mask: &Tensor,
        cache: &mut KvCache,
    ) -> Result<Tensor>;

    /// Teacher-forced full pass for training: logits for every decoder position.
    fn forward_train(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        decoder_input_ids: &Tensor,
        decoder_attention_mask: Option<&Tensor>,
    ) -> Result<Tensor>;

    /// An empty cache sized for this model.
    fn new_cache(&self) -> KvCache {
        KvCache::new(self.info().num_decoder_layers)
    }
}

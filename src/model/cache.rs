//! The decoder's key/value cache, owned by the caller (not hidden inside modules), so one loaded
//! model can serve many generations at once and beam search can reorder it.

use candle_core::{Result, Tensor};

use super::int8_cache::Int8Heads;

/// Cached keys or values of one decoder layer, `[rows, heads, seq, head_dim]`: in the
/// activations' dtype, or in 8 bits for a model loaded `q8`/`q4` on the CPU ([`Int8Heads`]).
#[derive(Clone, Debug)]
pub enum Cached {
    Float(Tensor),
    Int8(Int8Heads),
}

impl Cached {
    /// `(rows, heads, seq, head_dim)`.
    pub fn dims(&self) -> Result<(usize, usize, usize, usize)> {
        match self {
            Cached::Float(t) => t.dims4(),
            Cached::Int8(q) => q.dims(),
        }
    }

    /// `self` followed by `next` along the positions (both held the same way).
    pub fn cat(&self, next: &Cached) -> Result<Cached> {
        match (self, next) {
            (Cached::Float(a), Cached::Float(b)) => Ok(Cached::Float(Tensor::cat(&[a, b], 2)?)),
            (Cached::Int8(a), Cached::Int8(b)) => Ok(Cached::Int8(a.cat(b)?)),
            _ => candle_core::bail!("KV cache: cannot append 8-bit and float keys/values to each other"),
        }
    }

    /// The rows `index` (beam search's reordering).
    pub fn index_select(&self, index: &Tensor) -> Result<Cached> {
        Ok(match self {
            Cached::Float(t) => Cached::Float(t.index_select(index, 0)?),
            Cached::Int8(q) => Cached::Int8(q.index_select(index)?),
        })
    }

    pub fn bytes(&self) -> usize {
        match self {
            Cached::Float(t) => t.elem_count() * t.dtype().size_in_bytes(),
            Cached::Int8(q) => q.bytes(),
        }
    }
}

/// Cached keys and values of one decoder layer.
#[derive(Clone, Debug, Default)]
pub struct LayerKv {
    /// Self-attention K/V: grows by the number of new positions at every step.
    pub self_kv: Option<(Cached, Cached)>,
    /// Cross-attention K/V: computed once from the encoder output, then reused. One row per input:
    /// under beam search that input's beams (adjacent rows of `self_kv`) share it.
    pub cross_kv: Option<(Cached, Cached)>,
}

#[derive(Clone, Debug, Default)]
pub struct KvCache {
    pub layers: Vec<LayerKv>,
}

impl KvCache {
    pub fn new(num_layers: usize) -> KvCache {
        KvCache { layers: vec![LayerKv::default(); num_layers] }
    }

    /// Number of decoder positions already cached (the position of the next token).
    pub fn seq_len(&self) -> usize {
        let keys = self.layers.first().and_then(|l| l.self_kv.as_ref()).map(|(k, _)| k.dims());
        keys.map_or(0, |dims| dims.map_or(0, |(_, _, seq, _)| seq))
    }

    /// Fails unless the cache has one slot per decoder layer.
    pub fn check_layers(&self, decoder_layers: usize) -> candle_core::Result<()> {
        if self.layers.len() != decoder_layers {
            candle_core::bail!("KV cache has {} layers, the decoder {decoder_layers}", self.layers.len());
        }
        Ok(())
    }

    /// Bytes held by all cached tensors.
    pub fn bytes(&self) -> usize {
        self.layers
            .iter()
            .flat_map(|l| l.self_kv.iter().chain(l.cross_kv.iter()))
            .map(|(k, v)| k.bytes() + v.bytes())
            .sum()
    }
}

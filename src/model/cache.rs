//! The decoder's key/value cache, owned by the caller (not hidden inside modules), so one loaded
//! model can serve many generations at once and beam search can reorder it.

use candle_core::Tensor;

/// Cached keys and values of one decoder layer, each `[rows, heads, seq, head_dim]`.
#[derive(Clone, Debug, Default)]
pub struct LayerKv {
    /// Self-attention K/V: grows by the number of new positions at every step.
    pub self_kv: Option<(Tensor, Tensor)>,
    /// Cross-attention K/V: computed once from the encoder output, then reused. One row per input:
    /// under beam search that input's beams (adjacent rows of `self_kv`) share it.
    pub cross_kv: Option<(Tensor, Tensor)>,
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
        self.layers.first().and_then(|l| l.self_kv.as_ref()).map_or(0, |(k, _)| k.dim(2).unwrap_or(0))
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
        let size = |t: &Tensor| t.elem_count() * t.dtype().size_in_bytes();
        self.layers
            .iter()
            .flat_map(|l| l.self_kv.iter().chain(l.cross_kv.iter()))
            .map(|(k, v)| size(k) + size(v))
            .sum()
    }
}

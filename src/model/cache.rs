//! The decoder's key/value cache, owned by the caller (not hidden inside modules), so one loaded
//! model can serve many generations at once and beam search can reorder it.

use candle_core::{Result, Tensor};

/// Cached keys and values of one decoder layer, each `[batch, heads, seq, head_dim]`.
#[derive(Clone, Debug, Default)]
pub struct LayerKv {
    /// Self-attention K/V: grows by the number of new positions at every step.
    pub self_kv: Option<(Tensor, Tensor)>,
    /// Cross-attention K/V: computed once from the encoder output, then reused.
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

    /// Bytes held by all cached tensors.
    pub fn bytes(&self) -> usize {
        let size = |t: &Tensor| t.elem_count() * t.dtype().size_in_bytes();
        self.layers
            .iter()
            .flat_map(|l| l.self_kv.iter().chain(l.cross_kv.iter()))
            .map(|(k, v)| size(k) + size(v))
            .sum()
    }

    /// Keeps, in order, the batch rows named by `rows` (a `u32` tensor): how beam search follows
    /// the beams it keeps. Cross-attention K/V are reordered too, so batches of several inputs
    /// stay aligned.
    pub fn reorder(&mut self, rows: &Tensor) -> Result<()> {
        for layer in &mut self.layers {
            for kv in [&mut layer.self_kv, &mut layer.cross_kv].into_iter().flatten() {
                *kv = (kv.0.index_select(rows, 0)?, kv.1.index_select(rows, 0)?);
            }
        }
        Ok(())
    }
}

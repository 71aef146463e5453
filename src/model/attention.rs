//! Multi-head attention shared by T5 and BART (`T5Attention`, `BartAttention`): Q/K/V/O
//! projections over an explicit key/value cache slot, and the scores computed in query chunks when
//! the whole score matrix would be large (each chunk's softmax is exactly its rows of the whole):
//! in inference past 64K scores, so that an encoder's memory grows linearly with its input.

use candle_core::{DType, Module, Result, Tensor, D};

use super::cache::Cached;
use super::int8_cache::{self, Int8Heads};
use super::layers::{Dropout, Kernels, Linear, Rows, Weights};
use super::step_attention;

/// The additive bias of an attention's scores.
#[derive(Clone, Copy)]
pub enum ScoreBias<'a> {
    /// A tensor broadcast to `[sources, heads, queries, keys]`.
    Whole(&'a Tensor),
    /// Written a chunk of queries at a time (T5's encoder position bias plus padding, which
    /// whole would be quadratic in the input). One query row per key/value row (no beams).
    Rows(&'a dyn BiasRows),
}

/// An attention bias written a chunk of queries at a time.
pub trait BiasRows {
    /// `[sources, heads, len, keys]` for the queries `start..start + len`.
    fn rows(&self, start: usize, len: usize) -> Result<Tensor>;
}

impl<'a> From<&'a Tensor> for ScoreBias<'a> {
    fn from(bias: &'a Tensor) -> Self {
        ScoreBias::Whole(bias)
    }
}

/// The shape of an [`Attention`] block and how to initialise a fresh one.
#[derive(Clone, Copy, Debug)]
pub struct AttentionShape<'a> {
    /// Checkpoint names of the q, k, v and output projections (`q`…`o`, `q_proj`…`out_proj`).
    pub names: [&'a str; 4],
    pub d_model: usize,
    pub heads: usize,
    pub head_dim: usize,
    /// Whether the projections have biases (BART) or not (T5).
    pub bias: bool,
    /// Query scaling (`head_dim^-0.5` in BART; T5 folds it into its initialisation).
    pub scale: Option<f64>,
    /// Initialisation standard deviations of q, k, v, o (fresh models only).
    pub init_std: [f64; 4],
    /// Dropout on the attention probabilities.
    pub dropout: f64,
    /// Cross-attention: the key and value projections take the whole encoder output at once
    /// ([`Rows::Many`]), whatever the queries take.
    pub keys_from_encoder: bool,
}

/// Multi-head attention with separate Q/K/V/O projections (T5: no biases and no score scaling;
/// BART: biases and `head_dim^-0.5` scaling of the queries).
#[derive(Clone, Debug)]
pub struct Attention {
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
    pub heads: usize,
    pub head_dim: usize,
    pub scale: Option<f64>,
    pub kernels: Kernels,
    /// Dropout on the attention probabilities.
    pub dropout: Dropout,
    /// Whether the keys and values kept in a cache slot are stored in 8 bits ([`Int8Heads`]):
    /// for a model loaded `q8`/`q4` on the CPU.
    pub int8_cache: bool,
}

impl Attention {
    pub fn load(w: &Weights, shape: &AttentionShape) -> Result<Self> {
        let inner = shape.heads * shape.head_dim;
        let [q, k, v, o] = shape.names;
        let [q_std, k_std, v_std, o_std] = shape.init_std;
        let (d_model, bias) = (shape.d_model, shape.bias);
        let kv = if shape.keys_from_encoder { w.for_rows(Rows::Many) } else { w.clone() };
        Ok(Attention {
            q: Linear::load(&w.pp(q), d_model, inner, bias, q_std)?,
            k: Linear::load(&kv.pp(k), d_model, inner, bias, k_std)?,
            v: Linear::load(&kv.pp(v), d_model, inner, bias, v_std)?,
            o: Linear::load(&w.pp(o), inner, d_model, bias, o_std)?,
            heads: shape.heads,
            head_dim: shape.head_dim,
            scale: shape.scale,
            kernels: w.kernels(),
            dropout: w.dropout(shape.dropout),
            int8_cache: int8_cache::applies(w.precision(), w.device()) && w.kernels() == Kernels::Fused,
        })
    }

    /// `[b, t, heads * head_dim]` → `[b, heads, t, head_dim]`.
    fn split(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        x.reshape((b, t, self.heads, self.head_dim))?.transpose(1, 2)?.contiguous()
    }

    /// Keys and values of `source`, split into heads.
    pub fn project_kv(&self, source: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((self.split(&self.k.forward(source)?)?, self.split(&self.v.forward(source)?)?))
    }

    /// [`Attention::project_kv`], held as this block's cache holds them.
    fn project_cached(&self, source: &Tensor) -> Result<(Cached, Cached)> {
        let (k, v) = self.project_kv(source)?;
        Ok(if self.int8_cache {
            (Cached::Int8(Int8Heads::quantize(&k)?), Cached::Int8(Int8Heads::quantize(&v)?))
        } else {
            (Cached::Float(k), Cached::Float(v))
        })
    }

    /// Self-attention of `x` over the cached positions plus its own; when `slot` is given, the new
    /// keys/values are appended to it.
    pub fn self_attend(
        &self,
        x: &Tensor,
        bias: ScoreBias<'_>,
        slot: Option<&mut Option<(Cached, Cached)>>,
    ) -> Result<Tensor> {
        let (k, v) = match slot {
            Some(slot) => {
                let (k_new, v_new) = self.project_cached(x)?;
                let kv = match slot.take() {
                    Some((k0, v0)) => (k0.cat(&k_new)?, v0.cat(&v_new)?),
                    None => (k_new, v_new),
                };
                *slot = Some(kv.clone());
                kv
            }
            None => {
                let (k, v) = self.project_kv(x)?;
                (Cached::Float(k), Cached::Float(v))
            }
        };
        self.attend(x, &k, &v, bias)
    }

    /// Cross-attention to the encoder output; the projected encoder keys/values are computed once
    /// and kept in `slot` when one is given.
    pub fn cross_attend(
        &self,
        x: &Tensor,
        encoder: &Tensor,
        bias: &Tensor,
        slot: Option<&mut Option<(Cached, Cached)>>,
    ) -> Result<Tensor> {
        let (k, v) = match slot {
            Some(slot) => match slot {
                Some(kv) => kv.clone(),
                None => {
                    let kv = self.project_cached(encoder)?;
                    *slot = Some(kv.clone());
                    kv
                }
            },
            None => {
                let (k, v) = self.project_kv(encoder)?;
                (Cached::Float(k), Cached::Float(v))
            }
        };
        self.attend(x, &k, &v, bias.into())
    }

    /// Scores and softmax in f32 (as Hugging Face does for T5), with the additive `bias`
    /// broadcast to `[sources, heads, group * t, s]`.
    ///
    /// `x` may hold `group` rows per row of `k`/`v`, adjacent (beam search: the beams of one input
    /// share that input's single copy of the encoder keys and values). Their queries are stacked
    /// into one matmul per source row instead of copying the keys and values for every beam.
    ///
    /// Over [`score_elements`] scores, the queries are taken in chunks of [`query_chunk`] rows:
    /// softmax normalises each query's row on its own, so each chunk's scores, softmax and value
    /// product give exactly that chunk's rows of the whole, and only one chunk's score matrices
    /// are alive at a time (linear in the input instead of quadratic).
    fn attend(&self, x: &Tensor, k: &Cached, v: &Cached, bias: ScoreBias<'_>) -> Result<Tensor> {
        let (rows, t, _) = x.dims3()?;
        let (sources, _, keys, _) = k.dims()?;
        let limit = score_elements(self.kernels);
        let chunk = query_chunk(limit, sources, self.heads, rows / sources.max(1) * t, keys);
        self.attend_in_chunks(x, k, v, bias, chunk)
    }

    /// [`Attention::attend`] with queries taken `chunk` rows at a time.
    fn attend_in_chunks(
        &self,
        x: &Tensor,
        k: &Cached,
        v: &Cached,
        bias: ScoreBias<'_>,
        chunk: usize,
    ) -> Result<Tensor> {
        let (rows, t, _) = x.dims3()?;
        let (sources, ..) = k.dims()?;
        if sources == 0 || rows % sources != 0 {
            candle_core::bail!("attention: {rows} query rows cannot share {sources} key/value rows");
        }
        let group = rows / sources;
        let (heads, head_dim) = (self.heads, self.head_dim);
        let queries = group * t;
        // `[rows, t, d_model]` → `[sources, heads, group * t, head_dim]`, the projection copied once.
        let project = |x: &Tensor| -> Result<Tensor> {
            let t = x.dim(1)?;
            let mut q = self.q.forward(x)?;
            if let Some(scale) = self.scale {
                q = (q * scale)?;
            }
            q.reshape((sources, group, t, heads, head_dim))?.permute((0, 3, 1, 2, 4))?.reshape((
                sources,
                heads,
                group * t,
                head_dim,
            ))
        };
        // Without beams a chunk's queries are projected from its positions alone, so only one
        // chunk of them is alive; beams' queries interleave positions and are projected whole.
        let whole = if group == 1 { None } else { Some(project(x)?) };
        let queries_of = |start: usize, len: usize| match &whole {
            None => project(&x.narrow(1, start, len)?.contiguous()?),
            Some(q) if len == queries => Ok(q.clone()),
            Some(q) => q.narrow(2, start, len)?.contiguous(),
        };
        let out = match bias {
            ScoreBias::Whole(bias) => {
                // A bias with one row for all queries (padding) applies to every chunk as it is;
                // one with a row per query (causal, T5's positions) is cut with them.
                let per_query = bias.rank() == 4 && bias.dim(2)? == queries;
                let shared = bias.rank() < 2 || bias.dim(bias.rank() - 2)? == 1;
                let chunk = if per_query || shared { chunk } else { queries };
                self.attend_chunks(queries_of, k, v, queries, chunk, |start, len| {
                    if per_query && len < queries {
                        bias.narrow(2, start, len)
                    } else {
                        Ok(bias.clone())
                    }
                })?
            }
            ScoreBias::Rows(rows_of) => {
                if group != 1 {
                    candle_core::bail!("attention: a bias written by rows takes one query row per key row");
                }
                self.attend_chunks(queries_of, k, v, queries, chunk, |start, len| rows_of.rows(start, len))?
            }
        };
        // Back to `[rows, t, heads * head_dim]` in one copy; the heads' outputs are dropped before
        // the output projection allocates its result.
        let merged = out
            .reshape((sources, heads, group, t, head_dim))?
            .permute((0, 2, 3, 1, 4))?
            .reshape((rows, t, heads * head_dim))?;
        drop(out);
        self.o.forward(&merged)
    }

    /// The `queries` queries `chunk` at a time, each chunk's queries `queries_of(start, len)`
    /// (`[sources, heads, len, head_dim]`) with its rows of the bias, `bias_rows(start, len)`.
    fn attend_chunks(
        &self,
        queries_of: impl Fn(usize, usize) -> Result<Tensor>,
        k: &Cached,
        v: &Cached,
        queries: usize,
        chunk: usize,
        bias_rows: impl Fn(usize, usize) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let chunk = chunk.max(1);
        if chunk >= queries {
            return self.attend_queries(&queries_of(0, queries)?, k, v, &bias_rows(0, queries)?);
        }
        let mut parts = Vec::with_capacity(queries.div_ceil(chunk));
        for start in (0..queries).step_by(chunk) {
            let len = chunk.min(queries - start);
            parts.push(self.attend_queries(&queries_of(start, len)?, k, v, &bias_rows(start, len)?)?);
        }
        Tensor::cat(&parts, 2)
    }

    /// `softmax(q kᵀ + bias) v` for queries `[sources, heads, n, head_dim]`.
    fn attend_queries(&self, q: &Tensor, k: &Cached, v: &Cached, bias: &Tensor) -> Result<Tensor> {
        if self.kernels == Kernels::Fused && step_attention::applies(q.dim(2)?, k) {
            return step_attention::attend(q, k, v, bias);
        }
        let (Cached::Float(k), Cached::Float(v)) = (k, v) else {
            candle_core::bail!("attention: 8-bit keys and values are read by fused kernels only");
        };
        let scores = q.matmul(&k.t()?)?.to_dtype(DType::F32)?;
        let probs = match self.kernels {
            Kernels::Differentiable => candle_nn::ops::softmax(&scores.broadcast_add(bias)?, D::Minus1)?,
            Kernels::Fused => super::kernels::softmax_with_bias(scores, bias)?,
        };
        let probs = self.dropout.forward(&probs.to_dtype(v.dtype())?)?;
        probs.matmul(v)
    }
}

/// The most attention scores (`sources × heads × queries × keys`) a training step computes at once:
/// 16 MiB of f32 per score matrix, so the usual few hundred tokens are computed in one piece (the
/// backward pass keeps every chunk's scores anyway).
pub const TRAINING_SCORE_ELEMENTS: usize = 1 << 22;

/// The most attention scores inference computes at once: 256 KiB of f32 per score matrix. Each
/// chunk's scores are dropped once its values are computed, so an encoder's peak holds one chunk
/// instead of the whole quadratic matrix, which at the embedded models' few hundred tokens was
/// most of a generation's memory. Decoder steps (one query per beam) stay in one piece.
pub const INFERENCE_SCORE_ELEMENTS: usize = 1 << 16;

/// Chunks keep at least this many queries, so each chunk's products still fill the kernels'
/// register tiles whatever the number of keys.
const MIN_QUERY_CHUNK: usize = 16;

/// The score limit of attention run with `kernels`: [`Kernels::Fused`] is inference only.
pub fn score_elements(kernels: Kernels) -> usize {
    match kernels {
        Kernels::Differentiable => TRAINING_SCORE_ELEMENTS,
        Kernels::Fused => INFERENCE_SCORE_ELEMENTS,
    }
}

/// How many query rows of an attention over `keys` positions are computed at once: all of them
/// when their scores fit `limit`, else as many as fit, and at least [`MIN_QUERY_CHUNK`].
pub fn query_chunk(limit: usize, sources: usize, heads: usize, queries: usize, keys: usize) -> usize {
    let per_query = (sources * heads * keys).max(1);
    if per_query * queries <= limit {
        queries.max(1)
    } else {
        (limit / per_query).max(MIN_QUERY_CHUNK).min(queries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::layers::{causal_bias, padding_bias, Matrix};
    use candle_core::Device;
    use candle_nn::VarBuilder;

    /// A small attention block with fixed, varied weights.
    fn test_attention(d_model: usize, heads: usize, kernels: Kernels) -> Attention {
        let dev = Device::Cpu;
        let w = Weights::new(VarBuilder::zeros(DType::F32, &dev), kernels);
        let linear = |seed: f32| {
            let values: Vec<f32> = (0..d_model * d_model).map(|i| ((i as f32 + seed) * 0.37).sin()).collect();
            Linear::new(
                Matrix::Dense(Tensor::from_vec(values, (d_model, d_model), &dev).unwrap()),
                None,
                Kernels::Differentiable,
            )
            .unwrap()
        };
        Attention {
            q: linear(1.0),
            k: linear(2.0),
            v: linear(3.0),
            o: linear(4.0),
            heads,
            head_dim: d_model / heads,
            scale: Some(0.5),
            kernels,
            dropout: w.dropout(0.0),
            int8_cache: false,
        }
    }

    #[test]
    fn an_eight_bit_cache_attends_as_the_float_cache_does_within_its_rounding() {
        let dev = Device::Cpu;
        let (d_model, heads, beams, source_len) = (16, 2, 3, 6);
        let values =
            |n: usize, seed: f32| (0..n).map(|i| (i as f32 * 0.37 + seed).sin()).collect::<Vec<f32>>();
        let encoder =
            Tensor::from_vec(values(source_len * d_model, 0.5), (1, source_len, d_model), &dev).unwrap();
        let padding = padding_bias(&Tensor::new(&[[1u8, 1, 1, 1, 1, 0]], &dev).unwrap()).unwrap();
        let float = test_attention(d_model, heads, Kernels::Fused);
        let int8 = Attention { int8_cache: true, ..float.clone() };
        let (mut float_slots, mut int8_slots) = ([None, None], [None, None]);
        for step in 0..4 {
            let x = Tensor::from_vec(values(beams * d_model, step as f32), (beams, 1, d_model), &dev)
                .unwrap()
                .affine(0.3, 0.0)
                .unwrap();
            let causal = causal_bias(1, step, &dev).unwrap();
            let [float_own, float_cross] = &mut float_slots;
            let [int8_own, int8_cross] = &mut int8_slots;
            let a = float.self_attend(&x, (&causal).into(), Some(float_own)).unwrap();
            let b = int8.self_attend(&x, (&causal).into(), Some(int8_own)).unwrap();
            let c = float.cross_attend(&x, &encoder, &padding, Some(float_cross)).unwrap();
            let d = int8.cross_attend(&x, &encoder, &padding, Some(int8_cross)).unwrap();
            for (f, q) in [(a, b), (c, d)] {
                let scale = f.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
                let difference =
                    (f - q).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
                assert!(
                    difference <= 0.02 * scale,
                    "step {step}: {difference} against outputs up to {scale}"
                );
            }
        }
        let held = |slots: &[Option<(Cached, Cached)>; 2]| -> usize {
            slots.iter().flatten().map(|(k, v)| k.bytes() + v.bytes()).sum()
        };
        assert!(matches!(int8_slots[0], Some((Cached::Int8(_), Cached::Int8(_)))));
        assert_eq!(int8_slots[0].as_ref().unwrap().0.dims().unwrap(), (beams, heads, 4, d_model / heads));
        // 8 bytes and one f32 scale per 8-wide head vector, against 32 bytes.
        assert_eq!(held(&int8_slots) * 32, held(&float_slots) * 12);
    }

    #[test]
    fn beams_sharing_one_encoder_row_attend_as_if_it_were_copied() {
        let dev = Device::Cpu;
        let (d_model, heads) = (8, 2);
        let attention = test_attention(d_model, heads, Kernels::Fused);
        let (inputs, beams, source_len) = (2, 3, 5);
        let values =
            |n: usize, seed: f32| (0..n).map(|i| (i as f32 * 0.71 + seed).cos()).collect::<Vec<f32>>();
        let encoder =
            Tensor::from_vec(values(inputs * source_len * d_model, 0.3), (inputs, source_len, d_model), &dev)
                .unwrap();
        let queries =
            Tensor::from_vec(values(inputs * beams * d_model, 1.1), (inputs * beams, 1, d_model), &dev)
                .unwrap();
        let mask = Tensor::new(&[[1u8, 1, 1, 1, 1], [1, 1, 1, 0, 0]], &dev).unwrap();
        let shared = attention.cross_attend(&queries, &encoder, &padding_bias(&mask).unwrap(), None).unwrap();

        let copies = Tensor::new(&[0u32, 0, 0, 1, 1, 1], &dev).unwrap();
        let copied = attention
            .cross_attend(
                &queries,
                &encoder.index_select(&copies, 0).unwrap(),
                &padding_bias(&mask.index_select(&copies, 0).unwrap()).unwrap(),
                None,
            )
            .unwrap();
        assert_eq!(shared.dims(), &[inputs * beams, 1, d_model]);
        let difference =
            (shared - copied).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(difference < 1e-5, "shared and copied encoder rows differ by {difference}");

        let odd = Tensor::zeros((4, 1, d_model), DType::F32, &dev).unwrap();
        assert!(attention
            .cross_attend(
                &odd,
                &encoder.narrow(0, 0, 1).unwrap().repeat((3, 1, 1)).unwrap(),
                &padding_bias(&Tensor::ones((3, source_len), DType::U8, &dev).unwrap()).unwrap(),
                None
            )
            .is_err());
    }

    /// A bias written by rows, cut from a whole one.
    struct NarrowedRows(Tensor);

    impl BiasRows for NarrowedRows {
        fn rows(&self, start: usize, len: usize) -> Result<Tensor> {
            self.0.narrow(2, start, len)
        }
    }

    #[test]
    fn attention_in_query_chunks_equals_attention_in_one_piece() {
        let dev = Device::Cpu;
        let (d_model, heads, batch, len) = (8, 2, 2, 11);
        let values =
            |n: usize, seed: f32| (0..n).map(|i| (i as f32 * 0.53 + seed).sin() * 3.0).collect::<Vec<f32>>();
        let x = Tensor::from_vec(values(batch * len * d_model, 0.2), (batch, len, d_model), &dev).unwrap();
        // T5's encoder bias: a position bias per head and query, plus the padding of each input.
        let positions = Tensor::from_vec(values(heads * len * len, 0.9), (1, heads, len, len), &dev).unwrap();
        let mask = Tensor::from_vec(
            (0..batch * len).map(|i| u8::from(i % len < len - 3 * (i / len))).collect::<Vec<u8>>(),
            (batch, len),
            &dev,
        )
        .unwrap();
        let padding = padding_bias(&mask).unwrap();
        let t5 = positions.broadcast_add(&padding).unwrap();
        let causal = causal_bias(len, 0, &dev).unwrap();
        for kernels in [Kernels::Differentiable, Kernels::Fused] {
            let attention = test_attention(d_model, heads, kernels);
            let (k, v) = attention.project_kv(&x).unwrap();
            let (k, v) = (Cached::Float(k), Cached::Float(v));
            for bias in [&t5, &padding, &causal] {
                let whole = attention.attend_in_chunks(&x, &k, &v, bias.into(), len).unwrap();
                let by_rows = NarrowedRows(bias.broadcast_as((batch, heads, len, len)).unwrap());
                for chunk in [1, 3, 4, len - 1] {
                    let chunked = attention.attend_in_chunks(&x, &k, &v, bias.into(), chunk).unwrap();
                    let written =
                        attention.attend_in_chunks(&x, &k, &v, ScoreBias::Rows(&by_rows), chunk).unwrap();
                    assert_eq!(chunked.to_vec3::<f32>().unwrap(), written.to_vec3::<f32>().unwrap());
                    let difference = (&whole - chunked)
                        .unwrap()
                        .abs()
                        .unwrap()
                        .max_all()
                        .unwrap()
                        .to_scalar::<f32>()
                        .unwrap();
                    assert_eq!(difference, 0.0, "{kernels:?}, chunks of {chunk}, bias {:?}", bias.dims());
                }
            }
        }
    }

    #[test]
    fn only_large_score_matrices_are_chunked() {
        let training = TRAINING_SCORE_ELEMENTS;
        assert_eq!(query_chunk(training, 1, 4, 320, 320), 320);
        assert_eq!(query_chunk(training, 5, 4, 1, 320), 1);
        let chunk = query_chunk(training, 1, 4, 7202, 7202);
        assert!(chunk < 7202 && 4 * chunk * 7202 <= training, "{chunk}");
        assert_eq!(query_chunk(training, 1, 64, 10, training), 10);
        assert_eq!(query_chunk(training, 1, 64, 100, training), MIN_QUERY_CHUNK);
        // Inference cuts the embedded Oracle's 320-token encoder into chunks of 51 queries, and
        // leaves a beam-search step (5 beams, one query each) whole.
        let inference = score_elements(Kernels::Fused);
        assert_eq!(query_chunk(inference, 1, 4, 320, 320), 51);
        assert_eq!(query_chunk(inference, 1, 4, 5, 320), 5);
    }
}

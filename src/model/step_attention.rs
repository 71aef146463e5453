//! Attention of a decoder step's few queries over cached keys and values, one (row, head) pair
//! at a time: the scores are the register-tiled product of the decoder step's weights
//! (`kernels::few_rows_times_rows`, the cached keys standing for a weight's rows: each key read
//! once for all of a row's queries, many sums in flight), then the bias and the softmax, and the
//! values are summed by its column twin. 8-bit keys and values are read as they lie
//! (`kernels::few_rows_times_byte_rows` and `…_byte_columns`), their scales applied to each score
//! and folded into each value's weight.
//!
//! candle's path for the same step is a batched `gemm` for the scores, a broadcast add, a
//! softmax, a second `gemm` and the copies between them: at the embedded models' sizes
//! (1–5 queries per head against a few hundred keys) about 0.1 ms a call in overheads, a
//! quarter of a beam-search step. It stays the path of many queries (the encoder, training).

use candle_core::{DType, Device, Result, Tensor};
use rayon::prelude::*;

use super::cache::Cached;
use super::kernels::{
    contiguous_slice, few_rows_times_byte_columns, few_rows_times_byte_rows, few_rows_times_columns,
    few_rows_times_rows, softmax_rows_in_place, storage_slice,
};

/// Fused attention takes at most this many queries per key/value row (a decoder step: one per
/// beam); more go through matrix products.
pub const MAX_QUERIES: usize = 16;

/// Attention with fewer multiply-adds than this stays on the calling thread (a decoder step of
/// the embedded models), as the integer weight products do.
const POOLED_MIN_MACS: usize = 1 << 18;

/// Whether [`attend`] computes `queries` per row against `k`: always for 8-bit keys, for f32 keys
/// on the CPU when the queries are few.
pub fn applies(queries: usize, k: &Cached) -> bool {
    match k {
        Cached::Int8(_) => true,
        Cached::Float(k) => queries <= MAX_QUERIES && k.device().is_cpu() && k.dtype() == DType::F32,
    }
}

/// `softmax(q kᵀ + bias) v` for queries `q` (`[sources, heads, queries, head_dim]`, f32) over keys
/// and values of `sources` rows, with `bias` broadcast to `[sources, heads, queries, keys]`.
pub fn attend(q: &Tensor, k: &Cached, v: &Cached, bias: &Tensor) -> Result<Tensor> {
    let (sources, heads, queries, head_dim) = q.dims4()?;
    let (k_rows, k_heads, keys, k_dim) = k.dims()?;
    if (k_rows, k_heads, k_dim) != (sources, heads, head_dim) || v.dims()? != k.dims()? {
        candle_core::bail!(
            "attention: queries {:?} do not match keys {:?} and values {:?}",
            q.dims(),
            k.dims()?,
            v.dims()?
        );
    }
    let q = q.to_dtype(DType::F32)?.contiguous()?;
    let bias = bias.to_dtype(DType::F32)?.broadcast_as((sources, heads, queries, keys))?;
    let (q_storage, q_layout) = q.storage_and_layout();
    let q = contiguous_slice::<f32>(&q_storage, q_layout)?;
    // The bias stays as broadcast (strides of 0 where it is shared), read row by row.
    let (bias_storage, bias_layout) = bias.storage_and_layout();
    let bias_data = storage_slice::<f32>(&bias_storage)?;
    let stride = bias_layout.stride();
    let bias_rows = |pair: usize, scores: &mut Vec<f32>| {
        let base = bias_layout.start_offset() + pair / heads * stride[0] + pair % heads * stride[1];
        scores.clear();
        for query in 0..queries {
            let row = base + query * stride[2];
            scores.extend((0..keys).map(|key| bias_data[row + key * stride[3]]));
        }
    };
    let queries_of = |pair: usize| &q[pair * queries * head_dim..(pair + 1) * queries * head_dim];
    let vectors = |pair: usize| pair * keys..(pair + 1) * keys;
    let elements = |pair: usize| pair * keys * head_dim..(pair + 1) * keys * head_dim;
    let out = match (k, v) {
        (Cached::Int8(k), Cached::Int8(v)) => {
            let ((k_bytes, k_scales), (v_bytes, v_scales)) = (k.parts(), v.parts());
            let (k_storage, k_layout) = k_bytes.storage_and_layout();
            let (k_scale_storage, k_scale_layout) = k_scales.storage_and_layout();
            let (v_storage, v_layout) = v_bytes.storage_and_layout();
            let (v_scale_storage, v_scale_layout) = v_scales.storage_and_layout();
            let k_bytes = contiguous_slice::<u8>(&k_storage, k_layout)?;
            let k_scales = contiguous_slice::<f32>(&k_scale_storage, k_scale_layout)?;
            let v_bytes = contiguous_slice::<u8>(&v_storage, v_layout)?;
            let v_scales = contiguous_slice::<f32>(&v_scale_storage, v_scale_layout)?;
            by_head(sources * heads, queries, keys, head_dim, |pair, scratch, out| {
                bias_rows(pair, scratch);
                scratch.resize(2 * queries * keys, 0.0);
                let (bias, scores) = scratch.split_at_mut(queries * keys);
                let (key_scales, value_scales) = (&k_scales[vectors(pair)], &v_scales[vectors(pair)]);
                few_rows_times_byte_rows(queries_of(pair), &k_bytes[elements(pair)], 0..keys, scores);
                for (row, bias) in scores.chunks_exact_mut(keys).zip(bias.chunks_exact(keys)) {
                    for ((score, &bias), &scale) in row.iter_mut().zip(bias).zip(key_scales) {
                        *score = *score * scale + bias;
                    }
                }
                softmax_rows_in_place(scores, keys);
                // Each value's scale goes into its weight, so the product reads the bytes as they lie.
                for row in scores.chunks_exact_mut(keys) {
                    for (weight, &scale) in row.iter_mut().zip(value_scales) {
                        *weight *= scale;
                    }
                }
                few_rows_times_byte_columns(scores, &v_bytes[elements(pair)], head_dim, 0..head_dim, out);
            })
        }
        (Cached::Float(k), Cached::Float(v)) => {
            let (k, v) = (k.to_dtype(DType::F32)?.contiguous()?, v.to_dtype(DType::F32)?.contiguous()?);
            let (k_storage, k_layout) = k.storage_and_layout();
            let (v_storage, v_layout) = v.storage_and_layout();
            let k = contiguous_slice::<f32>(&k_storage, k_layout)?;
            let v = contiguous_slice::<f32>(&v_storage, v_layout)?;
            by_head(sources * heads, queries, keys, head_dim, |pair, scratch, out| {
                bias_rows(pair, scratch);
                scratch.resize(2 * queries * keys, 0.0);
                let (bias, scores) = scratch.split_at_mut(queries * keys);
                few_rows_times_rows(queries_of(pair), &k[elements(pair)], 0..keys, scores);
                for (score, &bias) in scores.iter_mut().zip(&*bias) {
                    *score += bias;
                }
                softmax_rows_in_place(scores, keys);
                few_rows_times_columns(scores, &v[elements(pair)], head_dim, 0..head_dim, out);
            })
        }
        _ => candle_core::bail!("attention: keys and values are held in different precisions"),
    };
    Tensor::from_vec(out, (sources, heads, queries, head_dim), &Device::Cpu)
}

/// Runs `head(pair, scores, out)` for every (row, head) pair, each writing its `[queries,
/// head_dim]` of the output; on the rayon pool when the work is large enough to pay for it and
/// there is a second thread to split across ([`crate::threads::split_threads`]: a thread outside a
/// one-thread pool would hand it all over).
fn by_head(
    pairs: usize,
    queries: usize,
    keys: usize,
    head_dim: usize,
    head: impl Fn(usize, &mut Vec<f32>, &mut [f32]) + Sync,
) -> Vec<f32> {
    let per_head = (queries * head_dim).max(1);
    let mut out = vec![0f32; pairs * queries * head_dim];
    if 2 * pairs * queries * keys * head_dim < POOLED_MIN_MACS || crate::threads::split_threads() == 1 {
        let mut scores = Vec::with_capacity(2 * queries * keys);
        for (pair, out) in out.chunks_exact_mut(per_head).enumerate() {
            head(pair, &mut scores, out);
        }
    } else {
        out.par_chunks_exact_mut(per_head).enumerate().for_each_init(
            || Vec::with_capacity(2 * queries * keys),
            |scores, (pair, out)| head(pair, scores, out),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::int8_cache::tests::{dequantize, values};
    use crate::model::int8_cache::Int8Heads;

    fn reference(q: &Tensor, k: &Tensor, v: &Tensor, bias: &Tensor) -> Tensor {
        let scores = q.matmul(&k.t().unwrap()).unwrap().broadcast_add(bias).unwrap();
        candle_nn::ops::softmax_last_dim(&scores).unwrap().matmul(v).unwrap()
    }

    fn max_difference(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
    }

    #[test]
    fn fused_attention_equals_the_matrix_products_in_both_precisions() {
        let dev = Device::Cpu;
        // Two rows of keys, three queries each (a cross-attention's beams), a padding bias with a
        // masked key on one row and a per-query bias on the other, head widths with and without
        // a tail past whole 8- or 16-lane chunks.
        for head_dim in [16, 12, 20] {
            let (sources, heads, queries, keys) = (2, 3, 3, 9);
            let shape = (sources, heads, keys, head_dim);
            let k = Tensor::from_vec(values(sources * heads * keys * head_dim, 0.1), shape, &dev).unwrap();
            let v = Tensor::from_vec(values(sources * heads * keys * head_dim, 1.3), shape, &dev).unwrap();
            let q = Tensor::from_vec(
                values(sources * heads * queries * head_dim, 2.2),
                (sources, heads, queries, head_dim),
                &dev,
            )
            .unwrap()
            .affine(0.2, 0.0)
            .unwrap();
            let mut mask = vec![0f32; sources * keys];
            mask[keys + 4] = f32::NEG_INFINITY;
            let padding = Tensor::from_vec(mask, (sources, 1, 1, keys), &dev).unwrap();
            let per_query =
                Tensor::from_vec(values(heads * queries * keys, 0.8), (1, heads, queries, keys), &dev)
                    .unwrap();
            for bias in [padding.clone(), padding.broadcast_add(&per_query).unwrap()] {
                let float = attend(&q, &Cached::Float(k.clone()), &Cached::Float(v.clone()), &bias).unwrap();
                let exact = reference(&q, &k, &v, &bias);
                assert!(max_difference(&float, &exact) < 1e-5, "f32: {}", max_difference(&float, &exact));

                let (k8, v8) = (Int8Heads::quantize(&k).unwrap(), Int8Heads::quantize(&v).unwrap());
                let int8 = attend(&q, &Cached::Int8(k8.clone()), &Cached::Int8(v8.clone()), &bias).unwrap();
                assert_eq!(int8.dims(), &[sources, heads, queries, head_dim]);
                let same_values = reference(&q, &dequantize(&k8), &dequantize(&v8), &bias);
                assert!(
                    max_difference(&int8, &same_values) < 1e-4,
                    "{}",
                    max_difference(&int8, &same_values)
                );
                // Against the unquantized keys and values: off by the rounding alone.
                let largest = exact.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
                let off = max_difference(&int8, &exact);
                assert!(off < 0.02 * largest, "{off} of {largest}");
            }
        }
    }

    #[test]
    fn only_few_queries_over_f32_keys_are_fused() {
        let keys = Cached::Float(Tensor::zeros((1, 2, 5, 8), DType::F32, &Device::Cpu).unwrap());
        assert!(applies(1, &keys) && applies(MAX_QUERIES, &keys));
        assert!(!applies(MAX_QUERIES + 1, &keys));
        let f16 = Cached::Float(Tensor::zeros((1, 2, 5, 8), DType::F16, &Device::Cpu).unwrap());
        assert!(!applies(1, &f16));
        let int8 =
            Int8Heads::quantize(&Tensor::zeros((1, 2, 5, 8), DType::F32, &Device::Cpu).unwrap()).unwrap();
        assert!(applies(MAX_QUERIES + 1, &Cached::Int8(int8)));
    }
}

//! The decoder's cached keys and values in 8 bits, for models loaded `q8` or `q4` on the CPU:
//! each head's vector at each position is held as `head_dim` signed bytes and one f32 scale (its
//! largest magnitude / 127), 0.27× of f32 at 64-wide heads, and attention reads the bytes as they
//! lie ([`attend`]) instead of expanding them back to f32.
//!
//! At the embedded Oracle's size the f32 cache was most of a generation's own memory (3.4 of
//! 4.0 MB under beam search), so 8-bit weights alone left the model at 0.36× of f32. A scale per
//! head vector, like llama.cpp's `q8_0` cache type per block of 32, keeps each key's direction to
//! within half a step of 1/127 of its largest component; `docs/QUANTIZATION.md` has the measured
//! agreement with f32.

use candle_core::{DType, Device, Layout, Result, Storage, Tensor, WithDType};
use rayon::prelude::*;

use super::kernels::int8_head_attention;
use super::quant::WeightDtype;

/// Attention with fewer multiply-adds than this stays on the calling thread (a decoder step of
/// the embedded models), as the integer weight products do.
const POOLED_MIN_MACS: usize = 1 << 18;

/// Whether a model of `precision` on `device` caches its keys and values in 8 bits (inference
/// only: training never quantizes).
pub fn applies(precision: WeightDtype, device: &Device) -> bool {
    precision.is_quantized() && device.is_cpu()
}

/// Bytes of `elements` cached keys or values in 8 bits, heads `head_dim` wide.
pub fn bytes_for(elements: u64, head_dim: u64) -> u64 {
    elements + elements / head_dim.max(1) * DType::F32.size_in_bytes() as u64
}

/// Keys or values `[rows, heads, seq, head_dim]` in 8 bits.
#[derive(Clone, Debug)]
pub struct Int8Heads {
    /// `[rows, heads, seq, head_dim]`: signed bytes, as `u8` (candle has no `i8`).
    values: Tensor,
    /// `[rows, heads, seq]`: each vector's scale.
    scales: Tensor,
}

impl Int8Heads {
    /// Quantizes `x` (`[rows, heads, seq, head_dim]`, f32 on the CPU), one scale per vector.
    pub fn quantize(x: &Tensor) -> Result<Int8Heads> {
        let (rows, heads, seq, head_dim) = x.dims4()?;
        let x = x.to_dtype(DType::F32)?.contiguous()?;
        let vectors = rows * heads * seq;
        let mut bytes = vec![0u8; vectors * head_dim];
        let mut scales = Vec::with_capacity(vectors);
        let (storage, layout) = x.storage_and_layout();
        let data = contiguous::<f32>(&storage, layout)?;
        let width = head_dim.max(1);
        for (vector, out) in data.chunks_exact(width).zip(bytes.chunks_exact_mut(width)) {
            let amax = vector.iter().fold(0f32, |m, v| m.max(v.abs()));
            let scale = amax / 127.0;
            // Clamped, as a subnormal vector's inverse scale overflows; rounded half away from
            // zero by a truncating conversion, as `int8`'s input rows are.
            let inverse = if scale > 0.0 { 1.0 / scale } else { 0.0 };
            for (v, o) in vector.iter().zip(out.iter_mut()) {
                let q = (v * inverse).clamp(-127.0, 127.0);
                *o = (q + 0.5f32.copysign(q)) as i8 as u8;
            }
            scales.push(scale);
        }
        drop(storage);
        let device = x.device();
        Ok(Int8Heads {
            values: Tensor::from_vec(bytes, (rows, heads, seq, head_dim), device)?,
            scales: Tensor::from_vec(scales, (rows, heads, seq), device)?,
        })
    }

    /// `(rows, heads, seq, head_dim)`.
    pub fn dims(&self) -> Result<(usize, usize, usize, usize)> {
        self.values.dims4()
    }

    /// `self` followed by `next` along the positions.
    pub fn cat(&self, next: &Int8Heads) -> Result<Int8Heads> {
        Ok(Int8Heads {
            values: Tensor::cat(&[&self.values, &next.values], 2)?,
            scales: Tensor::cat(&[&self.scales, &next.scales], 2)?,
        })
    }

    /// The rows `index` (beam search's reordering).
    pub fn index_select(&self, index: &Tensor) -> Result<Int8Heads> {
        Ok(Int8Heads {
            values: self.values.index_select(index, 0)?,
            scales: self.scales.index_select(index, 0)?,
        })
    }

    pub fn bytes(&self) -> usize {
        let (.., head_dim) = self.dims().unwrap_or_default();
        bytes_for(self.values.elem_count() as u64, head_dim as u64) as usize
    }
}

/// `softmax(q kᵀ + bias) v` for queries `q` (`[sources, heads, queries, head_dim]`, f32) over keys
/// and values of `sources` rows, with `bias` broadcast to `[sources, heads, queries, keys]`.
pub fn attend(q: &Tensor, k: &Int8Heads, v: &Int8Heads, bias: &Tensor) -> Result<Tensor> {
    let (sources, heads, queries, head_dim) = q.dims4()?;
    let (k_rows, k_heads, keys, k_dim) = k.dims()?;
    if (k_rows, k_heads, k_dim) != (sources, heads, head_dim) || v.dims()? != k.dims()? {
        candle_core::bail!(
            "int8 attention: queries {:?} do not match keys {:?} and values {:?}",
            q.dims(),
            k.dims()?,
            v.dims()?
        );
    }
    let q = q.to_dtype(DType::F32)?.contiguous()?;
    let bias = bias.to_dtype(DType::F32)?.broadcast_as((sources, heads, queries, keys))?;
    let (q_storage, q_layout) = q.storage_and_layout();
    let q = contiguous::<f32>(&q_storage, q_layout)?;
    let (key_storage, key_layout) = k.values.storage_and_layout();
    let key_bytes = contiguous::<u8>(&key_storage, key_layout)?;
    let (key_scale_storage, key_scale_layout) = k.scales.storage_and_layout();
    let key_scales = contiguous::<f32>(&key_scale_storage, key_scale_layout)?;
    let (value_storage, value_layout) = v.values.storage_and_layout();
    let value_bytes = contiguous::<u8>(&value_storage, value_layout)?;
    let (value_scale_storage, value_scale_layout) = v.scales.storage_and_layout();
    let value_scales = contiguous::<f32>(&value_scale_storage, value_scale_layout)?;
    // The bias stays as broadcast (strides of 0 where it is shared), read row by row.
    let (bias_storage, bias_layout) = bias.storage_and_layout();
    let bias_data = cpu_slice::<f32>(&bias_storage)?;
    let stride = bias_layout.stride();

    // One (source, head) pair: its scores start as its rows of the bias.
    let head = |pair: usize, scores: &mut Vec<f32>, out: &mut [f32]| {
        let base = bias_layout.start_offset() + pair / heads * stride[0] + pair % heads * stride[1];
        scores.clear();
        for query in 0..queries {
            let row = base + query * stride[2];
            scores.extend((0..keys).map(|key| bias_data[row + key * stride[3]]));
        }
        let vectors = pair * keys..(pair + 1) * keys;
        let bytes = vectors.start * head_dim..vectors.end * head_dim;
        let own_queries = pair * queries * head_dim..(pair + 1) * queries * head_dim;
        int8_head_attention(
            &q[own_queries],
            &key_bytes[bytes.clone()],
            &key_scales[vectors.clone()],
            &value_bytes[bytes],
            &value_scales[vectors],
            scores,
            out,
        );
    };
    let per_head = (queries * head_dim).max(1);
    let mut out = vec![0f32; sources * heads * queries * head_dim];
    if 2 * sources * heads * queries * keys * head_dim < POOLED_MIN_MACS {
        let mut scores = Vec::with_capacity(queries * keys);
        for (pair, out) in out.chunks_exact_mut(per_head).enumerate() {
            head(pair, &mut scores, out);
        }
    } else {
        out.par_chunks_exact_mut(per_head).enumerate().for_each_init(
            || Vec::with_capacity(queries * keys),
            |scores, (pair, out)| head(pair, scores, out),
        );
    }
    Tensor::from_vec(out, (sources, heads, queries, head_dim), &Device::Cpu)
}

/// The elements of a contiguous CPU tensor of `T`.
fn contiguous<'a, T: WithDType>(storage: &'a Storage, layout: &Layout) -> Result<&'a [T]> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("int8 cache: a {:?} tensor is not contiguous", layout.dims());
    };
    Ok(&cpu_slice::<T>(storage)?[start..end])
}

/// All the storage of a CPU tensor of `T`.
fn cpu_slice<T: WithDType>(storage: &Storage) -> Result<&[T]> {
    match storage {
        Storage::Cpu(cpu) => T::cpu_storage_as_slice(cpu),
        _ => candle_core::bail!("int8 cache: tensors must be on the CPU"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n).map(|i| ((i as f32 * 0.61 + seed).sin() * 2.5) + if i % 17 == 3 { 6.0 } else { 0.0 }).collect()
    }

    /// The f32 tensor the bytes and scales stand for.
    fn dequantize(q: &Int8Heads) -> Tensor {
        let bytes = q.values.flatten_all().unwrap().to_vec1::<u8>().unwrap();
        let scales = q.scales.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let head_dim = bytes.len() / scales.len();
        let data: Vec<f32> =
            bytes.iter().enumerate().map(|(i, &b)| f32::from(b as i8) * scales[i / head_dim]).collect();
        Tensor::from_vec(data, q.values.dims(), &Device::Cpu).unwrap()
    }

    fn reference(q: &Tensor, k: &Tensor, v: &Tensor, bias: &Tensor) -> Tensor {
        let scores = q.matmul(&k.t().unwrap()).unwrap().broadcast_add(bias).unwrap();
        candle_nn::ops::softmax_last_dim(&scores).unwrap().matmul(v).unwrap()
    }

    fn max_difference(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
    }

    #[test]
    fn each_vector_is_kept_within_half_a_step_of_its_scale() {
        let dims = (2, 3, 5, 12);
        let x = Tensor::from_vec(values(2 * 3 * 5 * 12, 0.4), dims, &Device::Cpu).unwrap();
        let q = Int8Heads::quantize(&x).unwrap();
        assert_eq!(q.dims().unwrap(), dims);
        assert_eq!(q.bytes(), 2 * 3 * 5 * (12 + 4));
        let scales = q.scales.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let (x, back) = (x.flatten_all().unwrap().to_vec1::<f32>().unwrap(), dequantize(&q));
        let back = back.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (i, (a, b)) in x.iter().zip(&back).enumerate() {
            assert!((a - b).abs() <= scales[i / 12] * 0.5 + 1e-6, "element {i}: {a} came back as {b}");
        }
        let zeros =
            Int8Heads::quantize(&Tensor::zeros((1, 1, 2, 4), DType::F32, &Device::Cpu).unwrap()).unwrap();
        assert!(dequantize(&zeros)
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .all(|&v| v == 0.0));
    }

    #[test]
    fn attention_over_bytes_equals_attention_over_what_they_stand_for() {
        let dev = Device::Cpu;
        // Two inputs, three beams each sharing their input's keys (cross-attention's grouping),
        // a padding bias with a masked key, and head widths with and without an 8-lane tail.
        for head_dim in [16, 12] {
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
            let bias = Tensor::from_vec(mask, (sources, 1, 1, keys), &dev).unwrap();
            let (k8, v8) = (Int8Heads::quantize(&k).unwrap(), Int8Heads::quantize(&v).unwrap());
            let got = attend(&q, &k8, &v8, &bias).unwrap();
            assert_eq!(got.dims(), &[sources, heads, queries, head_dim]);
            let same_values = reference(&q, &dequantize(&k8), &dequantize(&v8), &bias);
            assert!(max_difference(&got, &same_values) < 1e-4, "{}", max_difference(&got, &same_values));
            // Against the unquantized keys and values: off by the rounding alone.
            let exact = reference(&q, &k, &v, &bias);
            let largest = exact.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(
                max_difference(&got, &exact) < 0.02 * largest,
                "{} of {largest}",
                max_difference(&got, &exact)
            );
        }
    }

    #[test]
    fn appended_and_reordered_rows_are_those_of_the_whole() {
        let dev = Device::Cpu;
        let x = Tensor::from_vec(values(3 * 2 * 7 * 8, 0.7), (3, 2, 7, 8), &dev).unwrap();
        let whole = Int8Heads::quantize(&x).unwrap();
        let joined = Int8Heads::quantize(&x.narrow(2, 0, 4).unwrap())
            .unwrap()
            .cat(&Int8Heads::quantize(&x.narrow(2, 4, 3).unwrap()).unwrap())
            .unwrap();
        assert_eq!(max_difference(&dequantize(&whole), &dequantize(&joined)), 0.0);
        let index = Tensor::new(&[2u32, 2, 0], &dev).unwrap();
        let reordered = dequantize(&whole.index_select(&index).unwrap());
        assert_eq!(max_difference(&reordered, &dequantize(&whole).index_select(&index, 0).unwrap()), 0.0);
    }
}

//! The decoder's cached keys and values in 8 bits, for models loaded `q8` or `q4` on the CPU:
//! each head's vector at each position is held as `head_dim` signed bytes and one f32 scale (its
//! largest magnitude / 127), 0.27× of f32 at 64-wide heads, and attention reads the bytes as they
//! lie (`step_attention`) instead of expanding them back to f32.
//!
//! At the embedded Oracle's size the f32 cache was most of a generation's own memory (3.4 of
//! 4.0 MB under beam search), so 8-bit weights alone left the model at 0.36× of f32. A scale per
//! head vector, like llama.cpp's `q8_0` cache type per block of 32, keeps each key's direction to
//! within half a step of 1/127 of its largest component; `docs/QUANTIZATION.md` has the measured
//! agreement with f32.

use candle_core::{DType, Device, Result, Tensor};

use super::int8::quantize_symmetric;
use super::kernels::contiguous_slice;
use super::quant::WeightDtype;

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
        let data = contiguous_slice::<f32>(&storage, layout)?;
        let width = head_dim.max(1);
        for (vector, out) in data.chunks_exact(width).zip(bytes.chunks_exact_mut(width)) {
            // As `int8` quantizes its input rows, as two's complement bytes.
            scales.push(quantize_symmetric(vector, out, 0));
        }
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

    /// The bytes `[rows, heads, seq, head_dim]` and the scales `[rows, heads, seq]`.
    pub fn parts(&self) -> (&Tensor, &Tensor) {
        (&self.values, &self.scales)
    }

    pub fn bytes(&self) -> usize {
        let (.., head_dim) = self.dims().unwrap_or_default();
        bytes_for(self.values.elem_count() as u64, head_dim as u64) as usize
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    pub fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n).map(|i| ((i as f32 * 0.61 + seed).sin() * 2.5) + if i % 17 == 3 { 6.0 } else { 0.0 }).collect()
    }

    /// The f32 tensor the bytes and scales stand for.
    pub fn dequantize(q: &Int8Heads) -> Tensor {
        let bytes = q.values.flatten_all().unwrap().to_vec1::<u8>().unwrap();
        let scales = q.scales.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let head_dim = bytes.len() / scales.len();
        let data: Vec<f32> =
            bytes.iter().enumerate().map(|(i, &b)| f32::from(b as i8) * scales[i / head_dim]).collect();
        Tensor::from_vec(data, q.values.dims(), &Device::Cpu).unwrap()
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

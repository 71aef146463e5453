//! Weight precisions (`--dtype f32|bf16|f16|q8|q4`) and weight-only quantization with candle's
//! GGUF block types: `q8` stores a linear layer's `[out, in]` weight as `Q8_0` (blocks of 32
//! values, one f16 scale each), `q4` as `Q4_K` (super-blocks of 256) or, where the input size is
//! not a multiple of 256, as `Q4_0` (blocks of 32). Activations stay f32.
//!
//! Products run candle's own quantized kernels for compact blocks (the input rows quantized to 8
//! bits once, then candle's integer dot products against the blocks where they lie: on the calling
//! thread for a small product, `k_quants::matmul` on candle's pool otherwise), not `QMatMul`'s
//! forward: on x86 with AVX-512 VNNI that forward repacks every weight into 16-row tiles on first
//! use and keeps the tiles *beside* the original blocks, which doubles a quantized model's
//! weight memory (docs/BENCHMARKS.md has the measurements behind this choice). On other devices
//! the product is candle's `QMatMul` op.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use candle_core::quantized::gguf_file;
use candle_core::quantized::k_quants::{self, BlockQ4K, BlockQ4_0, BlockQ8_0, GgmlType};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Result, Shape, Tensor};

/// The precision a model's weights are loaded in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightDtype {
    #[default]
    F32,
    Bf16,
    F16,
    /// Linear layers and the token embedding as `Q8_0`; everything else f32.
    Q8,
    /// Linear layers as `Q4_K` (`Q4_0` where the input size is not a multiple of 256), the token
    /// embedding (also the tied LM head) as `Q8_0`; everything else f32.
    Q4,
}

impl WeightDtype {
    pub const NAMES: &'static str = "f32, bf16, f16, q8 or q4";

    /// Parses `f32|bf16|f16|q8|q4` (and the PyTorch spellings of the float types).
    pub fn parse(spec: &str) -> anyhow::Result<WeightDtype> {
        Ok(match spec.trim().to_ascii_lowercase().as_str() {
            "f32" | "float32" | "fp32" => WeightDtype::F32,
            "bf16" | "bfloat16" => WeightDtype::Bf16,
            "f16" | "float16" | "fp16" | "half" => WeightDtype::F16,
            "q8" | "q8_0" | "int8" => WeightDtype::Q8,
            "q4" | "q4_k" => WeightDtype::Q4,
            other => anyhow::bail!("unknown dtype '{other}': expected {}", WeightDtype::NAMES),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            WeightDtype::F32 => "f32",
            WeightDtype::Bf16 => "bf16",
            WeightDtype::F16 => "f16",
            WeightDtype::Q8 => "q8",
            WeightDtype::Q4 => "q4",
        }
    }

    /// The dtype of activations and of the weights that stay unquantized.
    pub fn float(self) -> DType {
        match self {
            WeightDtype::Bf16 => DType::BF16,
            WeightDtype::F16 => DType::F16,
            WeightDtype::F32 | WeightDtype::Q8 | WeightDtype::Q4 => DType::F32,
        }
    }

    pub fn is_quantized(self) -> bool {
        matches!(self, WeightDtype::Q8 | WeightDtype::Q4)
    }

    /// The block type for a linear layer's weight with `d_in` inputs; `None` when no block type
    /// of this precision divides `d_in` (the layer then stays f32).
    pub fn linear_block(self, d_in: usize) -> Option<GgmlDType> {
        let fits = |t: GgmlDType| d_in.is_multiple_of(t.block_size());
        match self {
            WeightDtype::Q8 => Some(GgmlDType::Q8_0).filter(|t| fits(*t)),
            WeightDtype::Q4 => [GgmlDType::Q4K, GgmlDType::Q4_0].into_iter().find(|t| fits(*t)),
            _ => None,
        }
    }

    /// The block type for the token embedding (rows of `d_model`), which a tied model also uses
    /// as its LM head: 8 bits under both quantized precisions.
    pub fn embedding_block(self, d_model: usize) -> Option<GgmlDType> {
        match self {
            WeightDtype::Q8 | WeightDtype::Q4 => WeightDtype::Q8.linear_block(d_model),
            _ => None,
        }
    }
}

impl std::fmt::Display for WeightDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A quantized `[out, in]` matrix (a linear layer's weight or an embedding table).
#[derive(Clone, Debug)]
pub struct QWeight {
    tensor: Arc<QTensor>,
}

impl QWeight {
    /// Quantizes `weight` (`[out, in]`, any float dtype) to `block`.
    pub fn quantize(weight: &Tensor, block: GgmlDType) -> Result<QWeight> {
        let weight = weight.to_dtype(DType::F32)?;
        Ok(QWeight {
            tensor: Arc::new(QTensor::quantize_onto(
                &weight.to_device(&candle_core::Device::Cpu)?,
                block,
                weight.device(),
            )?),
        })
    }

    /// A matrix read back from a quantized checkpoint.
    pub fn from_qtensor(tensor: QTensor) -> Result<QWeight> {
        tensor.shape().dims2()?;
        Ok(QWeight { tensor: Arc::new(tensor) })
    }

    pub fn qtensor(&self) -> &QTensor {
        &self.tensor
    }

    pub fn block(&self) -> GgmlDType {
        self.tensor.dtype()
    }

    /// `(out, in)`.
    pub fn dims(&self) -> Result<(usize, usize)> {
        self.tensor.shape().dims2()
    }

    pub fn elem_count(&self) -> usize {
        self.tensor.shape().elem_count()
    }

    /// Bytes the blocks take in memory.
    pub fn bytes(&self) -> usize {
        self.tensor.storage_size_in_bytes()
    }

    /// `x Wᵀ` for `x` of `[rows, in]`, in f32.
    pub fn matmul(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.to_dtype(DType::F32)?.contiguous()?;
        if x.device().is_cpu() {
            x.apply_op1_no_bwd(&CompactMatMul(&self.tensor))
        } else {
            x.apply_op1_no_bwd(self.tensor.as_ref())
        }
    }

    /// Rows `ids` of the matrix (an embedding lookup), dequantized to f32, shaped `ids.dims() + [in]`.
    pub fn embedding(&self, ids: &Tensor) -> Result<Tensor> {
        self.tensor.embedding(ids)
    }

    pub fn dequantize(&self) -> Result<Tensor> {
        self.tensor.dequantize(&self.tensor.device())
    }
}

/// The GGUF metadata key holding a quantized checkpoint's precision (`q8` or `q4`).
pub const DTYPE_KEY: &str = "prism.dtype";
/// The GGUF metadata key holding the layout version of a quantized checkpoint.
pub const FORMAT_KEY: &str = "prism.format_version";
const FORMAT_VERSION: u32 = 1;

/// The tensors of a quantized checkpoint: quantized matrices as stored, everything else f32.
#[derive(Debug)]
pub struct QuantizedCheckpoint {
    pub dtype: WeightDtype,
    pub dense: HashMap<String, Tensor>,
    pub quantized: HashMap<String, QWeight>,
}

/// Reads a `model.gguf` written by [`write_checkpoint`]; errors name the file.
pub fn read_checkpoint(path: &Path, device: &Device) -> anyhow::Result<QuantizedCheckpoint> {
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let content = gguf_file::Content::read(&mut file)
        .map_err(|e| anyhow::anyhow!("{} is not a readable GGUF file: {e}", path.display()))?;
    let dtype = match content.metadata.get(DTYPE_KEY).map(|v| v.to_string()) {
        Some(Ok(name)) => {
            WeightDtype::parse(name).with_context(|| format!("{}: metadata `{DTYPE_KEY}`", path.display()))?
        }
        _ => anyhow::bail!(
            "{}: metadata `{DTYPE_KEY}` is missing; was it written by `prism quantize`?",
            path.display()
        ),
    };
    if !dtype.is_quantized() {
        anyhow::bail!("{}: metadata `{DTYPE_KEY}` = {dtype} is not a quantized precision", path.display());
    }
    match content.metadata.get(FORMAT_KEY).map(|v| v.to_u32()) {
        Some(Ok(FORMAT_VERSION)) => {}
        other => anyhow::bail!(
            "{}: metadata `{FORMAT_KEY}` is {other:?}, expected {FORMAT_VERSION}",
            path.display()
        ),
    }
    let mut checkpoint = QuantizedCheckpoint { dtype, dense: HashMap::new(), quantized: HashMap::new() };
    for name in content.tensor_infos.keys() {
        let tensor = content
            .tensor(&mut file, name, device)
            .with_context(|| format!("{}: cannot read tensor {name}", path.display()))?;
        if tensor.dtype() == GgmlDType::F32 {
            checkpoint.dense.insert(name.clone(), tensor.dequantize(device)?);
        } else {
            checkpoint.quantized.insert(name.clone(), QWeight::from_qtensor(tensor)?);
        }
    }
    Ok(checkpoint)
}

/// Writes a quantized checkpoint's weights to `path` as GGUF: the quantized matrices in their
/// blocks, every other tensor as f32, and the precision and layout version as metadata.
pub fn write_checkpoint(
    path: &Path,
    dtype: WeightDtype,
    architecture: &str,
    dense: &[(String, Tensor)],
    quantized: &[(String, QWeight)],
) -> anyhow::Result<()> {
    let dense: Vec<(String, QTensor)> = dense
        .iter()
        .map(|(name, t)| {
            // A fresh contiguous copy: a recorded tensor may be a view of a transposed weight.
            let values = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
            let t = Tensor::from_vec(values, t.shape(), &Device::Cpu)?;
            Ok((name.clone(), QTensor::quantize(&t, GgmlDType::F32)?))
        })
        .collect::<Result<_>>()?;
    let mut tensors: Vec<(&str, &QTensor)> = dense.iter().map(|(k, t)| (k.as_str(), t)).collect();
    tensors.extend(quantized.iter().map(|(k, q)| (k.as_str(), q.qtensor())));
    tensors.sort_by_key(|(k, _)| *k);
    let dtype_value = gguf_file::Value::String(dtype.name().into());
    let arch_value = gguf_file::Value::String(architecture.into());
    let version_value = gguf_file::Value::U32(FORMAT_VERSION);
    let metadata =
        [(DTYPE_KEY, &dtype_value), (FORMAT_KEY, &version_value), ("general.architecture", &arch_value)];
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
    );
    gguf_file::write(&mut file, &metadata, &tensors)
        .with_context(|| format!("cannot write {}", path.display()))?;
    use std::io::Write;
    file.flush().with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// candle's quantized product on the blocks as they are stored (see the module docs).
struct CompactMatMul<'a>(&'a QTensor);

impl CustomOp1 for CompactMatMul<'_> {
    fn name(&self) -> &'static str {
        "compact-qmatmul"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, k) = self.0.shape().dims2()?;
        let (m, k_in) = layout.shape().dims2()?;
        if k_in != k || !layout.is_contiguous() {
            candle_core::bail!("quantized product: input {:?} against a [{n}, {k}] weight", layout.shape());
        }
        let start = layout.start_offset();
        let lhs = &storage.as_slice::<f32>()?[start..start + m * k];
        let mut dst = vec![0f32; m * n];
        let data = self.0.data()?;
        match self.0.dtype() {
            GgmlDType::Q8_0 => product((m, k, n), lhs, blocks::<BlockQ8_0>(&data)?, &mut dst)?,
            GgmlDType::Q4K => product((m, k, n), lhs, blocks::<BlockQ4K>(&data)?, &mut dst)?,
            GgmlDType::Q4_0 => product((m, k, n), lhs, blocks::<BlockQ4_0>(&data)?, &mut dst)?,
            other => candle_core::bail!("quantized product: block type {other:?} is not supported"),
        }
        Ok((CpuStorage::F32(dst), Shape::from((m, n))))
    }
}

/// Products of fewer multiply-adds than this stay on the calling thread.
const POOLED_MIN_MACS: usize = 8 << 20;

/// `dst[m, n] = lhs[m, k] · rhsᵀ` over the blocks of `rhs` (`[n, k]`). A small product (a decoder
/// step against the embedded models' layers) runs candle's block dot products on the calling
/// thread: `k_quants::matmul` hands every call to candle's spinning barrier pool, which costs
/// more than such a product and, with other work on the cores, far more.
fn product<T: GgmlType>(
    (m, k, n): (usize, usize, usize),
    lhs: &[f32],
    rhs: &[T],
    dst: &mut [f32],
) -> Result<()> {
    if m * k * n >= POOLED_MIN_MACS {
        return k_quants::matmul((m, k, n), lhs, rhs, dst);
    }
    let row_blocks = k / T::BLCK_SIZE;
    let mut lhs_blocks = vec![T::VecDotType::zeros(); row_blocks];
    for (lhs_row, dst_row) in lhs.chunks_exact(k).zip(dst.chunks_exact_mut(n)) {
        T::VecDotType::from_float(lhs_row, &mut lhs_blocks);
        for (col, out) in dst_row.iter_mut().enumerate() {
            *out = T::vec_dot(k, &rhs[col * row_blocks..(col + 1) * row_blocks], &lhs_blocks);
        }
    }
    Ok(())
}

/// The blocks of a CPU `QTensor`'s storage (a `Vec<T>` that candle hands out as bytes).
fn blocks<T: GgmlType>(bytes: &[u8]) -> Result<&[T]> {
    let size = std::mem::size_of::<T>();
    if !bytes.len().is_multiple_of(size) || bytes.as_ptr().align_offset(std::mem::align_of::<T>()) != 0 {
        candle_core::bail!(
            "quantized storage of {} bytes is not a whole, aligned number of {:?} blocks",
            bytes.len(),
            T::DTYPE
        );
    }
    // SAFETY: the bytes are the storage of a `Vec<T>` (checked above: length and alignment), and
    // every bit pattern of a block (integers and f16 scales) is a valid value.
    Ok(unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<T>(), bytes.len() / size) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn dtypes_parse_and_name_themselves() {
        for name in ["f32", "bf16", "f16", "q8", "q4"] {
            assert_eq!(WeightDtype::parse(name).unwrap().name(), name);
        }
        assert_eq!(WeightDtype::parse("float16").unwrap(), WeightDtype::F16);
        let err = WeightDtype::parse("q3").unwrap_err().to_string();
        assert!(err.contains("q3") && err.contains("q8"), "{err}");
    }

    #[test]
    fn block_types_follow_the_input_size() {
        assert_eq!(WeightDtype::Q8.linear_block(128), Some(GgmlDType::Q8_0));
        assert_eq!(WeightDtype::Q8.linear_block(100), None);
        assert_eq!(WeightDtype::Q4.linear_block(512), Some(GgmlDType::Q4K));
        assert_eq!(WeightDtype::Q4.linear_block(128), Some(GgmlDType::Q4_0));
        assert_eq!(WeightDtype::Q4.embedding_block(256), Some(GgmlDType::Q8_0));
        assert_eq!(WeightDtype::F16.linear_block(256), None);
    }

    /// The quantized product agrees with the product of the dequantized weight, for every block
    /// type, a row count below and above candle's row tiling, and an output size that is not a
    /// multiple of four.
    #[test]
    fn products_match_the_dequantized_weight() {
        let dev = Device::Cpu;
        let (n, k) = (37, 256);
        let w: Vec<f32> = (0..n * k).map(|i| ((i as f32) * 0.731).sin()).collect();
        let w = Tensor::from_vec(w, (n, k), &dev).unwrap();
        for block in [GgmlDType::Q8_0, GgmlDType::Q4K, GgmlDType::Q4_0] {
            let q = QWeight::quantize(&w, block).unwrap();
            let deq = q.dequantize().unwrap();
            for m in [1, 5, 19] {
                let x: Vec<f32> = (0..m * k).map(|i| ((i as f32) * 0.377).cos()).collect();
                let x = Tensor::from_vec(x, (m, k), &dev).unwrap();
                let got = q.matmul(&x).unwrap();
                let want = x.matmul(&deq.t().unwrap()).unwrap();
                let scale = want.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
                let err = (got - want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
                // The input rows are quantized to 8 bits too: about 1% of the largest output.
                assert!(err < 0.02 * scale, "{block:?} m={m}: error {err} of {scale}");
            }
            let ids = Tensor::new(&[3u32, 0, 36], &dev).unwrap();
            let rows = q.embedding(&ids).unwrap();
            let want = deq.index_select(&ids, 0).unwrap();
            assert_eq!(rows.to_vec2::<f32>().unwrap(), want.to_vec2::<f32>().unwrap());
        }
    }
}

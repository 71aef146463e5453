//! Safetensors weights memory-mapped and handed out one tensor at a time, for one file or the
//! shards of `model.safetensors.index.json` alike. Each tensor is converted from its stored dtype
//! straight into a new buffer of the dtype asked for, in one pass over the map (bf16/f16 stored
//! weights never exist as a second full copy), and the mapped pages it was read from are released
//! at once: the file's pages never sit in the resident set beside the model they became (the page
//! cache keeps them for the next load). A builder reads it through candle's `VarBuilder`; a fused
//! linear layer, which keeps `Wᵀ` contiguous, reads its weight transposed straight from the map
//! ([`MappedSafetensors::load_transposed`]) instead of copying `W` and transposing the copy.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use candle_core::quantized::k_quants::{BlockQ4K, BlockQ4_0, BlockQ8_0, GgmlType};
use candle_core::quantized::{GgmlDType, QStorage, QTensor};
use candle_core::{DType, Device, Result, Shape, Tensor};
use half::{bf16, f16, slice::HalfFloatSliceExt};
use memmap2::{Advice, Mmap, UncheckedAdvice};

/// The mapped weight files and where each tensor lies in them; clones share the maps.
#[derive(Clone)]
pub struct MappedSafetensors(Arc<Files>);

struct Files {
    shards: Vec<Shard>,
    tensors: HashMap<String, Entry>,
}

struct Shard {
    path: PathBuf,
    map: Mmap,
}

/// One tensor: its shard, stored dtype, shape and byte range in the shard's map.
#[derive(Clone, Debug)]
struct Entry {
    shard: usize,
    dtype: safetensors::Dtype,
    shape: Vec<usize>,
    start: usize,
    end: usize,
}

impl MappedSafetensors {
    /// Maps `files` and reads their headers (no tensor data). A tensor stored in two files is an
    /// error naming both.
    pub fn open(files: &[PathBuf]) -> anyhow::Result<MappedSafetensors> {
        let mut shards = Vec::with_capacity(files.len());
        let mut tensors: HashMap<String, Entry> = HashMap::new();
        for (index, path) in files.iter().enumerate() {
            let file =
                std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            // SAFETY: mapped read-only; like every mmap-based loader we assume the file is not
            // modified while it is mapped (the map lives only while the model is built).
            let map =
                unsafe { Mmap::map(&file) }.with_context(|| format!("cannot map {}", path.display()))?;
            let (header_len, metadata) = safetensors::SafeTensors::read_metadata(&map)
                .map_err(|e| anyhow::anyhow!("{} is not a valid safetensors file: {e}", path.display()))?;
            let data_start = 8 + header_len;
            for (name, info) in metadata.tensors() {
                let entry = Entry {
                    shard: index,
                    dtype: info.dtype,
                    shape: info.shape.clone(),
                    start: data_start + info.data_offsets.0,
                    end: data_start + info.data_offsets.1,
                };
                if let Some(other) = tensors.insert(name.clone(), entry) {
                    bail!(
                        "tensor {name} is stored twice: in {} and in {}",
                        files[other.shard].display(),
                        path.display()
                    );
                }
            }
            shards.push(Shard { path: path.clone(), map });
        }
        Ok(MappedSafetensors(Arc::new(Files { shards, tensors })))
    }

    /// Every tensor's name and shape.
    pub fn shapes(&self) -> impl Iterator<Item = (&str, &[usize])> {
        self.0.tensors.iter().map(|(name, e)| (name.as_str(), e.shape.as_slice()))
    }

    /// A `VarBuilder` reading these files, converting to `dtype` on `device` tensor by tensor.
    pub fn var_builder(&self, dtype: DType, device: &Device) -> candle_nn::VarBuilder<'static> {
        candle_nn::VarBuilder::from_backend(Box::new(self.clone()), dtype, device.clone())
    }

    /// The stored shape of `name`.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.0.tensors.get(name).map(|e| e.shape.as_slice())
    }

    /// The file that holds `name`.
    pub fn file_of(&self, name: &str) -> Option<&Path> {
        self.0.tensors.get(name).map(|e| self.0.shards[e.shard].path.as_path())
    }

    fn entry(&self, name: &str) -> Result<&Entry> {
        self.0
            .tensors
            .get(name)
            .ok_or_else(|| candle_core::Error::CannotFindTensor { path: name.to_string() }.bt())
    }

    /// Whether two tensors hold the same dtype, shape and bytes, compared in the maps (their
    /// pages are released afterwards, as after a load).
    pub fn same_bytes(&self, a: &str, b: &str) -> Result<bool> {
        let (ea, eb) = (self.entry(a)?, self.entry(b)?);
        let equal = ea.dtype == eb.dtype && ea.shape == eb.shape && self.bytes(ea) == self.bytes(eb);
        self.release(ea);
        self.release(eb);
        Ok(equal)
    }

    fn bytes(&self, e: &Entry) -> &[u8] {
        &self.0.shards[e.shard].map[e.start..e.end]
    }

    /// Drops the pages of `e` from this process's mappings (the next read maps them again from
    /// the page cache or the file).
    fn release(&self, e: &Entry) {
        let map = &self.0.shards[e.shard].map;
        // SAFETY: `MADV_DONTNEED` on a read-only mapping of an unmodified file only unmaps its
        // pages: a later access reads the same bytes back from the file, and no reference into
        // these pages outlives this call's callers (every load has copied its bytes by now).
        // Failure (an old kernel) only leaves the pages resident.
        let _ = unsafe { map.unchecked_advise_range(UncheckedAdvice::DontNeed, e.start, e.end - e.start) };
    }

    /// Reads `name` as `dtype` onto `device` in one pass over its mapped bytes, then releases
    /// them.
    pub fn load(&self, name: &str, dtype: DType, device: &Device) -> Result<Tensor> {
        let e = self.entry(name)?;
        let map = &self.0.shards[e.shard].map;
        // Maps the tensor's pages in one call instead of one fault per 64 KiB; failure (a kernel
        // before 5.14) only leaves the faults to do it.
        let _ = map.advise_range(Advice::PopulateRead, e.start, e.end - e.start);
        let tensor =
            convert(self.bytes(e), e.dtype, &e.shape, dtype).and_then(|t| t.to_device(device)).map_err(
                |err| err.context(format!("tensor {name} in {}", self.0.shards[e.shard].path.display())),
            );
        self.release(e);
        tensor
    }

    /// `Wᵀ` (`[in, out]`, contiguous) of the `[out, in]` matrix `name`, read as `dtype` onto
    /// `device` in one cache-blocked pass over the map, then its pages released.
    pub fn load_transposed(&self, name: &str, dtype: DType, device: &Device) -> Result<Tensor> {
        let e = self.entry(name)?;
        let map = &self.0.shards[e.shard].map;
        let _ = map.advise_range(Advice::PopulateRead, e.start, e.end - e.start);
        let tensor = match e.shape.as_slice() {
            &[rows, cols] => transposed(self.bytes(e), e.dtype, (rows, cols), dtype),
            other => Err(candle_core::Error::Msg(format!("has shape {other:?}, not a matrix"))),
        }
        .and_then(|t| t.to_device(device))
        .map_err(|err| err.context(format!("tensor {name} in {}", self.0.shards[e.shard].path.display())));
        self.release(e);
        tensor
    }

    /// The `[rows, cols]` matrix `name` quantized to `block` on the CPU, made from the map a row
    /// at a time (no f32 copy of the whole matrix exists), then its pages released. The blocks
    /// are those `QTensor::quantize` makes: a row is a whole number of blocks.
    pub fn load_quantized(&self, name: &str, block: GgmlDType) -> Result<QTensor> {
        let e = self.entry(name)?;
        let map = &self.0.shards[e.shard].map;
        let _ = map.advise_range(Advice::PopulateRead, e.start, e.end - e.start);
        let bytes = self.bytes(e);
        let q = match e.shape.as_slice() {
            &[rows, cols] => match block {
                GgmlDType::Q8_0 => quantize_rows::<BlockQ8_0>(bytes, e.dtype, (rows, cols)),
                GgmlDType::Q4K => quantize_rows::<BlockQ4K>(bytes, e.dtype, (rows, cols)),
                GgmlDType::Q4_0 => quantize_rows::<BlockQ4_0>(bytes, e.dtype, (rows, cols)),
                other => convert(bytes, e.dtype, &[rows, cols], DType::F32)
                    .and_then(|t| QTensor::quantize(&t, other)),
            },
            other => Err(candle_core::Error::Msg(format!("has shape {other:?}, not a matrix"))),
        }
        .map_err(|err| err.context(format!("tensor {name} in {}", self.0.shards[e.shard].path.display())));
        self.release(e);
        q
    }
}

/// `bytes` (an `[rows, cols]` matrix stored as `from`) quantized to blocks of `T`, each row from
/// its own f32 values; rows are split between rayon's threads.
fn quantize_rows<T: GgmlType + 'static>(
    bytes: &[u8],
    from: safetensors::Dtype,
    (rows, cols): (usize, usize),
) -> Result<QTensor> {
    use rayon::prelude::*;
    use safetensors::Dtype as S;
    if cols % T::BLCK_SIZE != 0 {
        candle_core::bail!("{cols} columns are not a whole number of {:?} blocks", T::DTYPE);
    }
    let per_row = cols / T::BLCK_SIZE;
    let mut blocks = vec![T::zeros(); rows * per_row];
    fn rows_of<S: Float, T: GgmlType>(src: &[S], cols: usize, per_row: usize, blocks: &mut [T]) {
        blocks.par_chunks_mut(per_row).zip(src.par_chunks(cols)).for_each_init(
            || vec![0f32; cols],
            |row, (dst, src)| {
                row.iter_mut().zip(src).for_each(|(r, &x)| *r = x.to_f32());
                T::from_float(row, dst);
            },
        );
    }
    match from {
        // f32 rows are quantized where they lie in the map.
        S::F32 => {
            let src = typed::<f32>(bytes);
            blocks
                .par_chunks_mut(per_row)
                .zip(src.par_chunks(cols))
                .for_each(|(dst, src)| T::from_float(src, dst));
        }
        S::BF16 => rows_of(&typed::<bf16>(bytes), cols, per_row, &mut blocks),
        S::F16 => rows_of(&typed::<f16>(bytes), cols, per_row, &mut blocks),
        other => candle_core::bail!("{other:?} weights cannot be quantized"),
    }
    QTensor::new(QStorage::Cpu(Box::new(blocks)), (rows, cols))
}

impl candle_nn::var_builder::SimpleBackend for MappedSafetensors {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> Result<Tensor> {
        let stored = &self.entry(name)?.shape;
        if stored.as_slice() != shape.dims() {
            Err(candle_core::Error::UnexpectedShape {
                msg: format!("shape mismatch for {name}"),
                expected: shape,
                got: stored.as_slice().into(),
            }
            .bt())?
        }
        self.load(name, dtype, dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> Result<Tensor> {
        self.load(name, dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.0.tensors.contains_key(name)
    }
}

/// Elements converted per step through a small f32 buffer (stays in the L1/L2 cache).
const CHUNK: usize = 8192;

/// `bytes` (stored as `from`, little-endian) as a new CPU tensor of `to`, written once.
fn convert(bytes: &[u8], from: safetensors::Dtype, shape: &[usize], to: DType) -> Result<Tensor> {
    use safetensors::Dtype as S;
    let n: usize = shape.iter().product();
    match (from, to) {
        (S::F32, DType::F32) => Tensor::from_vec(copied(&typed::<f32>(bytes)), shape, &Device::Cpu),
        (S::BF16, DType::BF16) => Tensor::from_vec(copied(&typed::<bf16>(bytes)), shape, &Device::Cpu),
        (S::F16, DType::F16) => Tensor::from_vec(copied(&typed::<f16>(bytes)), shape, &Device::Cpu),
        // bf16 is the upper half of an f32.
        (S::BF16, DType::F32) => Tensor::from_vec(
            collect(&typed::<u16>(bytes), |s, d| {
                d.iter_mut().zip(s).for_each(|(d, &b)| *d = f32::from_bits((b as u32) << 16))
            }),
            shape,
            &Device::Cpu,
        ),
        (S::F16, DType::F32) => Tensor::from_vec(
            collect(&typed::<f16>(bytes), |s, d| s.convert_to_f32_slice(d)),
            shape,
            &Device::Cpu,
        ),
        (S::F32, DType::BF16) => Tensor::from_vec(
            collect(&typed::<f32>(bytes), |s, d: &mut [bf16]| d.convert_from_f32_slice(s)),
            shape,
            &Device::Cpu,
        ),
        (S::F32, DType::F16) => Tensor::from_vec(
            collect(&typed::<f32>(bytes), |s, d: &mut [f16]| d.convert_from_f32_slice(s)),
            shape,
            &Device::Cpu,
        ),
        (S::BF16, DType::F16) => Tensor::from_vec(
            collect(&typed::<bf16>(bytes), |s, d: &mut [f16]| via_f32(s, d)),
            shape,
            &Device::Cpu,
        ),
        (S::F16, DType::BF16) => Tensor::from_vec(
            collect(&typed::<f16>(bytes), |s, d: &mut [bf16]| via_f32(s, d)),
            shape,
            &Device::Cpu,
        ),
        // Anything else (integer tensors, f64): candle's conversion, one tensor at a time.
        _ => {
            let stored = DType::try_from(from)?;
            debug_assert_eq!(bytes.len(), n * stored.size_in_bytes());
            Tensor::from_raw_buffer(bytes, stored, shape, &Device::Cpu)?.to_dtype(to)
        }
    }
}

/// `bytes` (an `[rows, cols]` matrix stored as `from`) transposed into a new `[cols, rows]` CPU
/// tensor of `to`.
fn transposed(
    bytes: &[u8],
    from: safetensors::Dtype,
    (rows, cols): (usize, usize),
    to: DType,
) -> Result<Tensor> {
    use safetensors::Dtype as S;
    let cpu = &Device::Cpu;
    let shape = (cols, rows);
    match (from, to) {
        (S::F32, DType::F32) => {
            Tensor::from_vec(transpose::<f32, f32>(&typed(bytes), rows, cols), shape, cpu)
        }
        (S::F32, DType::BF16) => {
            Tensor::from_vec(transpose::<f32, bf16>(&typed(bytes), rows, cols), shape, cpu)
        }
        (S::F32, DType::F16) => {
            Tensor::from_vec(transpose::<f32, f16>(&typed(bytes), rows, cols), shape, cpu)
        }
        (S::BF16, DType::F32) => {
            Tensor::from_vec(transpose::<bf16, f32>(&typed(bytes), rows, cols), shape, cpu)
        }
        (S::BF16, DType::BF16) => {
            Tensor::from_vec(transpose::<bf16, bf16>(&typed(bytes), rows, cols), shape, cpu)
        }
        (S::BF16, DType::F16) => {
            Tensor::from_vec(transpose::<bf16, f16>(&typed(bytes), rows, cols), shape, cpu)
        }
        (S::F16, DType::F32) => {
            Tensor::from_vec(transpose::<f16, f32>(&typed(bytes), rows, cols), shape, cpu)
        }
        (S::F16, DType::BF16) => {
            Tensor::from_vec(transpose::<f16, bf16>(&typed(bytes), rows, cols), shape, cpu)
        }
        (S::F16, DType::F16) => {
            Tensor::from_vec(transpose::<f16, f16>(&typed(bytes), rows, cols), shape, cpu)
        }
        _ => convert(bytes, from, &[rows, cols], to)?.t()?.contiguous(),
    }
}

/// The float types weights are stored and loaded in, converted through f32 (exact for every
/// value of the 16-bit types).
trait Float: Copy + Send + Sync {
    fn to_f32(self) -> f32;
    fn from_f32(x: f32) -> Self;
}

impl Float for f32 {
    fn to_f32(self) -> f32 {
        self
    }
    fn from_f32(x: f32) -> Self {
        x
    }
}

impl Float for bf16 {
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
    fn from_f32(x: f32) -> Self {
        bf16::from_f32(x)
    }
}

impl Float for f16 {
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    fn from_f32(x: f32) -> Self {
        f16::from_f32(x)
    }
}

/// Source rows read per pass: a panel of this many rows stays in the L2 cache and TLB while its
/// columns are written out, so each source line is fetched once and each destination row is
/// written in runs of this many elements.
const PANEL: usize = 64;

/// `src` (`[rows, cols]`) transposed and converted into a new `[cols, rows]` vector, written
/// once. The destination rows are split between rayon's threads.
fn transpose<S: Float, D: Float>(src: &[S], rows: usize, cols: usize) -> Vec<D> {
    use rayon::prelude::*;
    let n = rows * cols;
    assert_eq!(src.len(), n, "a [{rows}, {cols}] matrix");
    let mut out: Vec<D> = Vec::with_capacity(n);
    advise_huge_pages(&out);
    let band = cols.div_ceil(rayon::current_num_threads()).max(PANEL);
    if n > 0 {
        out.spare_capacity_mut()[..n].par_chunks_mut(band * rows).enumerate().for_each(|(b, dst)| {
            let j0 = b * band;
            for i0 in (0..rows).step_by(PANEL) {
                let panel = &src[i0 * cols..(i0 + PANEL).min(rows) * cols];
                for (jj, dst_row) in dst.chunks_exact_mut(rows).enumerate() {
                    let column = panel.iter().skip(j0 + jj).step_by(cols);
                    for (o, &x) in dst_row[i0..].iter_mut().zip(column) {
                        o.write(D::from_f32(x.to_f32()));
                    }
                }
            }
        });
    }
    // SAFETY: the chunks cover `out[..n]`, and in each chunk every row (one source column) was
    // written at every source row `i0 + ii`, panel by panel.
    unsafe { out.set_len(n) };
    out
}

/// `src` converted to f32 and on to `dst`'s type, a chunk at a time.
fn via_f32<S: HalfFloatSliceExt + ?Sized, D: HalfFloatSliceExt + ?Sized>(src: &S, dst: &mut D) {
    let mut buf = [0f32; CHUNK];
    let buf = &mut buf[..src.reinterpret_cast().len()];
    src.convert_to_f32_slice(buf);
    dst.convert_from_f32_slice(buf);
}

/// A copy of `src` in a new vector.
fn copied<T: Copy>(src: &[T]) -> Vec<T> {
    let mut out = Vec::with_capacity(src.len());
    advise_huge_pages(&out);
    out.extend_from_slice(src);
    out
}

/// A new vector of `src.len()` elements, filled a chunk at a time by `fill(src_chunk, dst_chunk)`.
fn collect<S, D: Copy + Default>(src: &[S], fill: impl Fn(&[S], &mut [D])) -> Vec<D> {
    let mut out: Vec<D> = Vec::with_capacity(src.len());
    advise_huge_pages(&out);
    let mut buf = [D::default(); CHUNK];
    for chunk in src.chunks(CHUNK) {
        let buf = &mut buf[..chunk.len()];
        fill(chunk, buf);
        out.extend_from_slice(buf);
    }
    out
}

/// Asks for transparent huge pages under a large new buffer before it is written: one page
/// fault per 2 MiB instead of per 4 KiB (where THP is `madvise`, as on most distributions).
fn advise_huge_pages<T>(buffer: &Vec<T>) {
    const HUGE: usize = 2 << 20;
    let bytes = buffer.capacity() * std::mem::size_of::<T>();
    if bytes < 2 * HUGE {
        return;
    }
    let start = buffer.as_ptr() as usize;
    let aligned = start.next_multiple_of(HUGE);
    let len = (start + bytes - aligned) / HUGE * HUGE;
    // SAFETY: the range lies inside the vector's own allocation; `MADV_HUGEPAGE` only changes
    // how the kernel backs pages not yet touched, never their contents. Failure is harmless.
    unsafe {
        libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
    }
}

/// The bytes as a slice of `T`: borrowed where they are aligned for `T` (a file written by
/// safetensors or transformers always is), copied otherwise.
fn typed<T: Copy>(bytes: &[u8]) -> Cow<'_, [T]> {
    let size = std::mem::size_of::<T>();
    let n = bytes.len() / size;
    if bytes.as_ptr().align_offset(std::mem::align_of::<T>()) == 0 {
        // SAFETY: aligned (checked), in bounds (`n * size <= len`), and every bit pattern is a
        // valid value of the float/integer types this is used with.
        Cow::Borrowed(unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<T>(), n) })
    } else {
        let mut out: Vec<T> = Vec::with_capacity(n);
        // SAFETY: `out` has room for `n` elements and does not overlap `bytes`; copying bytes
        // into it sidesteps alignment, and every bit pattern is valid.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), out.as_mut_ptr().cast::<u8>(), n * size);
            out.set_len(n);
        }
        Cow::Owned(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `[rows, cols]` matrix of distinct values, saved in each float dtype.
    fn saved(dir: &Path, rows: usize, cols: usize) -> (Tensor, Vec<PathBuf>) {
        let values: Vec<f32> = (0..rows * cols).map(|i| ((i as f32) * 0.618).sin() * 3.0).collect();
        let w = Tensor::from_vec(values, (rows, cols), &Device::Cpu).unwrap();
        let files = [DType::F32, DType::BF16, DType::F16]
            .into_iter()
            .map(|dtype| {
                let path = dir.join(format!("{dtype:?}.safetensors"));
                let t = w.to_dtype(dtype).unwrap();
                candle_core::safetensors::save(&HashMap::from([(format!("w.{dtype:?}"), t)]), &path).unwrap();
                path
            })
            .collect();
        (w, files)
    }

    fn same(a: &Tensor, b: &Tensor) -> bool {
        a.dtype() == b.dtype()
            && a.dims() == b.dims()
            && a.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
                == b.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    /// Every stored × loaded dtype, plain and transposed, equals candle's own conversion (and
    /// transposition), for sizes that are and are not a multiple of the panel.
    #[test]
    fn loads_and_transposes_as_candle_converts() {
        let dir = tempfile::tempdir().unwrap();
        for (rows, cols) in [(70, 37), (128, 64), (1, 5)] {
            let (w, files) = saved(dir.path(), rows, cols);
            let mapped = MappedSafetensors::open(&files).unwrap();
            for stored in [DType::F32, DType::BF16, DType::F16] {
                let name = format!("w.{stored:?}");
                let source = w.to_dtype(stored).unwrap();
                for to in [DType::F32, DType::BF16, DType::F16] {
                    let want = source.to_dtype(to).unwrap();
                    let got = mapped.load(&name, to, &Device::Cpu).unwrap();
                    assert!(same(&got, &want), "{rows}x{cols} {stored:?} -> {to:?}");
                    let got_t = mapped.load_transposed(&name, to, &Device::Cpu).unwrap();
                    assert!(got_t.is_contiguous());
                    assert!(
                        same(&got_t, &want.t().unwrap().contiguous().unwrap()),
                        "transposed {stored:?} -> {to:?}"
                    );
                }
            }
        }
    }

    /// Blocks made row by row from the map are the blocks `QTensor::quantize` makes.
    #[test]
    fn quantizes_as_candle_does() {
        let dir = tempfile::tempdir().unwrap();
        let (w, files) = saved(dir.path(), 9, 512);
        let mapped = MappedSafetensors::open(&files).unwrap();
        for stored in [DType::F32, DType::BF16, DType::F16] {
            let source = w.to_dtype(stored).unwrap().to_dtype(DType::F32).unwrap();
            for block in [GgmlDType::Q8_0, GgmlDType::Q4K, GgmlDType::Q4_0] {
                let got = mapped.load_quantized(&format!("w.{stored:?}"), block).unwrap();
                let want = QTensor::quantize(&source, block).unwrap();
                assert_eq!(got.shape(), want.shape());
                assert_eq!(got.data().unwrap(), want.data().unwrap(), "{stored:?} as {block:?}");
            }
        }
    }

    #[test]
    fn a_tensor_in_two_shards_and_a_wrong_shape_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let (_, files) = saved(dir.path(), 4, 4);
        let twice = dir.path().join("again.safetensors");
        std::fs::copy(&files[0], &twice).unwrap();
        let err = MappedSafetensors::open(&[files[0].clone(), twice]).err().unwrap().to_string();
        assert!(err.contains("w.F32") && err.contains("again.safetensors"), "{err}");

        let vb = MappedSafetensors::open(&files).unwrap().var_builder(DType::F32, &Device::Cpu);
        let err = vb.get((4, 5), "w.F32").unwrap_err().to_string();
        assert!(err.contains("shape mismatch for w.F32"), "{err}");
        assert!(vb.get((4, 4), "absent").is_err());
    }

    #[test]
    fn a_file_that_is_not_safetensors_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        std::fs::write(&path, b"\x10\0\0\0\0\0\0\0{not json at all}").unwrap();
        let err = MappedSafetensors::open(&[path]).err().unwrap().to_string();
        assert!(err.contains("model.safetensors") && err.contains("not a valid safetensors"), "{err}");
    }
}

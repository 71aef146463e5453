//! Vectorisable CPU kernels for inference: `exp`, softmax over the last dimension (also with an
//! additive bias, in place), log-softmax, both GELUs, layer and RMS norms, and the matrix product
//! of a decoder step (over f32 weights, or over the 8-bit cache's signed bytes), as candle custom
//! ops or functions on slices (no backward pass, like [`Kernels::Fused`]).
//!
//! candle's CPU softmax and GELUs, and a plain `f32::exp` loop, call libm's scalar `expf`, `erff`
//! and `tanhf` one element at a time: 18% of a Prism beam-search explanation's instructions.
//! Here every function is a branch-free polynomial over lanes that the compiler turns into SIMD
//! (AVX2 + FMA when the CPU has them, chosen at run time; SSE2 otherwise), within a few ulp of
//! libm. A decoder step multiplies one row per beam by each weight, which `gemm` repacks in full
//! on every call; [`matmul`] reads the weight where it lies instead, a register tile at a time
//! (sixteen-lane tiles where the CPU has AVX-512, [`super::avx512`]).
//! Small inputs stay on the calling thread: candle's fused norms hand every call to the thread
//! pool, and waking a worker and waiting for it was a third of a Prism explanation's time.
//!
//! Why it is long: every kernel here is compiled through the same run-time dispatch (`dispatch!`)
//! and multiply-add choice, and each sits beside the candle op that calls it and its test against
//! libm or candle; split up, each file would repeat that machinery.
//!
//! [`Kernels::Fused`]: super::Kernels::Fused

use candle_core::backend::BackendStorage;
use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, InplaceOp2, Layout, Result, Shape, Storage, Tensor,
    WithDType,
};
use rayon::prelude::*;

/// Work below this many elements stays on the calling thread: handing a decoder step's few
/// hundred scores to the thread pool costs more than computing them.
const PARALLEL_MIN_ELEMENTS: usize = 16 * 1024;

/// The width of the vectorised loops' accumulators: one AVX2 register of f32.
const LANES: usize = 8;

/// Generates `pub fn $name` that runs `$body` compiled for AVX2 + FMA when the CPU has them and
/// for the build's baseline otherwise. `$body` must be `#[inline(always)]` so each copy is
/// vectorised for its own target.
macro_rules! dispatch {
    ($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),*) => $body:ident) => {
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) {
                    $body($($arg),*)
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU supports the features `avx2` was compiled for.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
    ($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),*) => $body:ident::<MultiplyAdd>) => {
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) {
                    $body::<FusedMultiplyAdd>($($arg),*)
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU supports the features `avx2` was compiled for.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body::<SeparateMultiplyAdd>($($arg),*)
        }
    };
}

/// `a · b + c`, as one instruction where the code is compiled for FMA, as two elsewhere (where
/// `f32::mul_add` would be a call into libm per element).
trait MultiplyAdd {
    fn multiply_add(a: f32, b: f32, c: f32) -> f32;
}

struct FusedMultiplyAdd;

impl MultiplyAdd for FusedMultiplyAdd {
    #[inline(always)]
    fn multiply_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

struct SeparateMultiplyAdd;

impl MultiplyAdd for SeparateMultiplyAdd {
    #[inline(always)]
    fn multiply_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

dispatch!(
    /// Softmax of each `row_len`-long row of `rows`, in place. A row whose largest entry is
    /// `-inf` becomes zeros.
    softmax_rows_in_place(rows: &mut [f32], row_len: usize) => softmax_rows_body
);

dispatch!(
    /// `log_softmax` of one row in place, as torch computes it: `x - max - ln(Σ exp(x - max))`.
    /// A row of `-inf` is left as it is.
    log_softmax_in_place(row: &mut [f32]) => log_softmax_body
);

dispatch!(
    /// Exact GELU, `x · Φ(x)` with the normal CDF through `erfc` (Hugging Face's `"gelu"`).
    gelu_erf_in_place(xs: &mut [f32]) => gelu_erf_body
);

dispatch!(
    /// The tanh GELU, `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))` (`"gelu_new"`), computed as
    /// `x · σ(2u)`, which is the same function.
    gelu_tanh_in_place(xs: &mut [f32]) => gelu_tanh_body
);

dispatch!(
    /// Layer norm of each `weight.len()`-long row of `rows` in place: `(x - mean) / √(var + eps)
    /// · weight + bias`, with the biased variance of the centred row (two passes, as torch).
    layer_norm_rows_in_place(rows: &mut [f32], weight: &[f32], bias: &[f32], eps: f32) => layer_norm_body
);

dispatch!(
    /// T5's RMS norm of each `weight.len()`-long row of `rows` in place: `x / √(mean(x²) + eps)
    /// · weight`.
    rms_norm_rows_in_place(rows: &mut [f32], weight: &[f32], eps: f32) => rms_norm_body
);

dispatch!(
    /// `out[i, c] = Σ_k x[i, k] · rhs[k, c]` over `out`'s columns `columns` of an `[in, width]`
    /// row-major `rhs` (`out` holds just those columns, `[rows, columns.len()]`).
    few_rows_times_columns(x: &[f32], rhs: &[f32], width: usize, columns: std::ops::Range<usize>, out: &mut [f32]) => times_columns_body::<MultiplyAdd>
);

/// `out[i, o] = x[i, :] · weight[o, :]` for the rows `outputs` of an `[out, in]` row-major
/// `weight` (`out` holds just those outputs, `[rows, outputs.len()]`), in AVX-512 registers where
/// the CPU has them ([`super::avx512`]).
pub fn few_rows_times_rows(x: &[f32], weight: &[f32], outputs: std::ops::Range<usize>, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        for (tile, x_rows, out_rows) in row_tiles(x, out, outputs.len()) {
            // SAFETY: the CPU supports the feature `tile_times_rows` was compiled for.
            unsafe { super::avx512::tile_times_rows(tile, x_rows, weight, outputs.clone(), out_rows) };
        }
        return;
    }
    eight_lane_few_rows_times_rows(x, weight, outputs, out)
}

dispatch!(
    /// [`few_rows_times_rows`] in eight-lane (AVX2) or baseline vectors.
    eight_lane_few_rows_times_rows(x: &[f32], weight: &[f32], outputs: std::ops::Range<usize>, out: &mut [f32]) => times_rows_body::<MultiplyAdd>
);

dispatch!(
    /// [`few_rows_times_rows`] over a weight of signed bytes (`i8` bit patterns in `u8`): the
    /// scores of a decoder step's queries against 8-bit cached keys, before the keys' scales.
    few_rows_times_byte_rows(x: &[f32], weight: &[u8], outputs: std::ops::Range<usize>, out: &mut [f32]) => times_rows_body::<MultiplyAdd>
);

dispatch!(
    /// [`few_rows_times_columns`] over a right-hand side of signed bytes: a decoder step's
    /// attention weights times 8-bit cached values, before the values' scales.
    few_rows_times_byte_columns(x: &[f32], rhs: &[u8], width: usize, columns: std::ops::Range<usize>, out: &mut [f32]) => times_columns_body::<MultiplyAdd>
);

/// `exp(x)`, Cephes' `expf` polynomial: relative error below 2 ulp on [-87.3, 88]; 0 below that
/// range (including `-inf`), `e^88` above it.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5·2²³ rounds to an integer held in the low mantissa bits.
    const ROUNDER: f32 = 12_582_912.0;
    let clamped = x.clamp(-87.336_55, 88.0);
    let shifted = clamped * LOG2E + ROUNDER;
    let n = shifted - ROUNDER;
    let r = clamped - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    let exponent = shifted.to_bits().wrapping_sub(ROUNDER.to_bits()).wrapping_add(127) << 23;
    let value = y * f32::from_bits(exponent);
    if x < -87.336_55 {
        0.0
    } else {
        value
    }
}

/// The largest entry, with eight accumulators so the loop vectorises.
#[inline(always)]
fn max(xs: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let chunks = xs.chunks_exact(8);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane = if x > *lane { x } else { *lane };
        }
    }
    tail.iter().chain(&lanes).fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m })
}

/// `Σ f(x)`, with eight accumulators so the loop vectorises.
#[inline(always)]
fn lane_sum(xs: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0f32; 8];
    let chunks = xs.chunks_exact(8);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += f(x);
        }
    }
    lanes.iter().sum::<f32>() + tail.iter().map(|&x| f(x)).sum::<f32>()
}

/// The sum.
#[inline(always)]
fn sum(xs: &[f32]) -> f32 {
    lane_sum(xs, |x| x)
}

/// `Σ exp(x - shift)`.
#[inline(always)]
fn sum_exp(xs: &[f32], shift: f32) -> f32 {
    lane_sum(xs, |x| exp(x - shift))
}

/// `Σ x²`.
#[inline(always)]
fn sum_squares(xs: &[f32]) -> f32 {
    lane_sum(xs, |x| x * x)
}

#[inline(always)]
fn softmax_rows_body(rows: &mut [f32], row_len: usize) {
    for row in rows.chunks_mut(row_len) {
        let max = max(row);
        if max == f32::NEG_INFINITY {
            row.fill(0.0);
            continue;
        }
        for x in row.iter_mut() {
            *x = exp(*x - max);
        }
        let inverse = 1.0 / sum(row);
        for x in row.iter_mut() {
            *x *= inverse;
        }
    }
}

/// An element of a product's stored right-hand side, as f32: an f32, or a signed byte held as
/// `u8` (the 8-bit cache).
trait Widen: Copy {
    fn widen(self) -> f32;
}

impl Widen for f32 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
}

impl Widen for u8 {
    #[inline(always)]
    fn widen(self) -> f32 {
        f32::from(self as i8)
    }
}

#[inline(always)]
fn log_softmax_body(row: &mut [f32]) {
    let max = max(row);
    if max == f32::NEG_INFINITY {
        return;
    }
    let shift = max + sum_exp(row, max).ln();
    for x in row.iter_mut() {
        *x -= shift;
    }
}

#[inline(always)]
fn layer_norm_body(rows: &mut [f32], weight: &[f32], bias: &[f32], eps: f32) {
    let len = weight.len();
    for row in rows.chunks_exact_mut(len) {
        let mean = sum(row) / len as f32;
        for x in row.iter_mut() {
            *x -= mean;
        }
        let inverse_deviation = 1.0 / (sum_squares(row) / len as f32 + eps).sqrt();
        for ((x, &w), &b) in row.iter_mut().zip(weight).zip(bias) {
            *x = *x * inverse_deviation * w + b;
        }
    }
}

#[inline(always)]
fn rms_norm_body(rows: &mut [f32], weight: &[f32], eps: f32) {
    let len = weight.len();
    for row in rows.chunks_exact_mut(len) {
        let inverse_rms = 1.0 / (sum_squares(row) / len as f32 + eps).sqrt();
        for (x, &w) in row.iter_mut().zip(weight) {
            *x = *x * inverse_rms * w;
        }
    }
}

/// Columns of `out` a register tile holds: one cache line of `rhs`, two AVX registers.
const COLUMN_TILE: usize = 16;
/// Rows of `out` a register tile holds: 6 rows × 16 columns are 12 accumulator registers, which
/// leaves room for the `rhs` line and a broadcast in AVX2's 16, and covers a 5-beam step at once.
const ROW_TILE: usize = 6;
/// Rows of `rhs` a pass over the columns reads: few enough that their lines stay in L1 between
/// neighbouring tiles and the prefetcher follows every row's stream.
const DEPTH_BLOCK: usize = 16;

/// `out`'s rows (`count` long) in tiles of at most [`ROW_TILE`], each as its row count, its rows
/// of `x` and its rows of `out`. An iterator, not a function taking the tile's product as a
/// closure: called through a closure, the products lose the `target_feature` of the function
/// they are inlined into and `mul_add` becomes a libm call per element (measured 5–12× slower).
#[inline(always)]
fn row_tiles<'a>(
    x: &'a [f32],
    out: &'a mut [f32],
    count: usize,
) -> impl Iterator<Item = (usize, &'a [f32], &'a mut [f32])> {
    let rows = out.len() / count.max(1);
    let inner = x.len() / rows.max(1);
    out.chunks_mut(ROW_TILE * count.max(1)).enumerate().map(move |(i, out_rows)| {
        let (first, tile) = (i * ROW_TILE, out_rows.len() / count.max(1));
        (tile, &x[first * inner..(first + tile) * inner], out_rows)
    })
}

#[inline(always)]
fn times_columns_body<A: MultiplyAdd>(
    x: &[f32],
    rhs: &[impl Widen],
    width: usize,
    columns: std::ops::Range<usize>,
    out: &mut [f32],
) {
    for (tile, x_rows, out_rows) in row_tiles(x, out, columns.len()) {
        let columns = columns.clone();
        match tile {
            6 => row_tile::<A, _, 6>(x_rows, rhs, width, columns, out_rows),
            5 => row_tile::<A, _, 5>(x_rows, rhs, width, columns, out_rows),
            4 => row_tile::<A, _, 4>(x_rows, rhs, width, columns, out_rows),
            3 => row_tile::<A, _, 3>(x_rows, rhs, width, columns, out_rows),
            2 => row_tile::<A, _, 2>(x_rows, rhs, width, columns, out_rows),
            _ => row_tile::<A, _, 1>(x_rows, rhs, width, columns, out_rows),
        }
    }
}

/// `R` rows of `out`: for every [`DEPTH_BLOCK`] rows of `rhs`, each [`COLUMN_TILE`]-column tile's
/// partial sums are held in registers and then added to `out`.
#[inline(always)]
fn row_tile<A: MultiplyAdd, E: Widen, const R: usize>(
    x: &[f32],
    rhs: &[E],
    width: usize,
    columns: std::ops::Range<usize>,
    out: &mut [f32],
) {
    let count = columns.len();
    let inner = x.len() / R;
    let whole_tiles = count / COLUMN_TILE * COLUMN_TILE;
    out.fill(0.0);
    for depth in (0..inner).step_by(DEPTH_BLOCK) {
        let depth_len = DEPTH_BLOCK.min(inner - depth);
        let rhs_rows = &rhs[depth * width..(depth + depth_len) * width];
        let scales: [&[f32]; R] =
            std::array::from_fn(|r| &x[r * inner + depth..r * inner + depth + depth_len]);
        for tile in (0..whole_tiles).step_by(COLUMN_TILE) {
            let first = columns.start + tile;
            let mut sums = [[0f32; COLUMN_TILE]; R];
            for (k, rhs_row) in rhs_rows.chunks_exact(width).enumerate() {
                let line: &[E; COLUMN_TILE] =
                    rhs_row[first..first + COLUMN_TILE].try_into().expect("a whole tile");
                for (row_sums, row_scales) in sums.iter_mut().zip(&scales) {
                    let scale = row_scales[k];
                    for (sum, &value) in row_sums.iter_mut().zip(line) {
                        *sum = A::multiply_add(scale, value.widen(), *sum);
                    }
                }
            }
            for (r, row_sums) in sums.iter().enumerate() {
                let out_tile = &mut out[r * count + tile..r * count + tile + COLUMN_TILE];
                for (o, &sum) in out_tile.iter_mut().zip(row_sums) {
                    *o += sum;
                }
            }
        }
    }
    for column in whole_tiles..count {
        let source = columns.start + column;
        for r in 0..R {
            let x_row = &x[r * inner..(r + 1) * inner];
            out[r * count + column] = x_row
                .iter()
                .zip(rhs.chunks_exact(width))
                .fold(0.0, |sum, (&a, rhs_row)| A::multiply_add(a, rhs_row[source].widen(), sum));
        }
    }
}

#[inline(always)]
fn times_rows_body<A: MultiplyAdd>(
    x: &[f32],
    weight: &[impl Widen],
    outputs: std::ops::Range<usize>,
    out: &mut [f32],
) {
    for (tile, x_rows, out_rows) in row_tiles(x, out, outputs.len()) {
        let outputs = outputs.clone();
        match tile {
            6 => dot_tile::<A, _, 6, 2>(x_rows, weight, outputs, out_rows),
            5 => dot_tile::<A, _, 5, 2>(x_rows, weight, outputs, out_rows),
            4 => dot_tile::<A, _, 4, 2>(x_rows, weight, outputs, out_rows),
            3 => dot_tile::<A, _, 3, 3>(x_rows, weight, outputs, out_rows),
            2 => dot_tile::<A, _, 2, 4>(x_rows, weight, outputs, out_rows),
            _ => dot_tile::<A, _, 1, 6>(x_rows, weight, outputs, out_rows),
        }
    }
}

/// The dot products of `R` rows of `x` with `O` rows of `weight` at a time: `R · O` independent
/// eight-lane sums, so consecutive multiply-adds do not wait for each other.
#[inline(always)]
fn dot_tile<A: MultiplyAdd, E: Widen, const R: usize, const O: usize>(
    x: &[f32],
    weight: &[E],
    outputs: std::ops::Range<usize>,
    out: &mut [f32],
) {
    let count = outputs.len();
    let inner = x.len() / R;
    let whole = inner / LANES * LANES;
    let x_rows: [&[f32]; R] = std::array::from_fn(|r| &x[r * inner..(r + 1) * inner]);
    let mut j = 0;
    while j < count {
        let tile = (count - j).min(O);
        let first = outputs.start + j;
        let weight_rows: [&[E]; O] = std::array::from_fn(|o| {
            let row = first + o.min(tile - 1);
            &weight[row * inner..(row + 1) * inner]
        });
        let mut lanes = [[[0f32; LANES]; O]; R];
        for chunk in (0..whole).step_by(LANES) {
            for (row_lanes, x_row) in lanes.iter_mut().zip(&x_rows) {
                let x_lanes = &x_row[chunk..chunk + LANES];
                for (output_lanes, weight_row) in row_lanes.iter_mut().zip(&weight_rows) {
                    let w_lanes = &weight_row[chunk..chunk + LANES];
                    for ((lane, &a), &b) in output_lanes.iter_mut().zip(x_lanes).zip(w_lanes) {
                        *lane = A::multiply_add(a, b.widen(), *lane);
                    }
                }
            }
        }
        for (r, row_lanes) in lanes.iter_mut().enumerate() {
            for (o, output_lanes) in row_lanes.iter_mut().enumerate().take(tile) {
                let tail = x_rows[r][whole..]
                    .iter()
                    .zip(&weight_rows[o][whole..])
                    .fold(0.0, |sum, (&a, &b)| A::multiply_add(a, b.widen(), sum));
                out[r * count + j + o] = halving_sum(output_lanes) + tail;
            }
        }
        j += tile;
    }
}

/// The sum of `lanes` by halves (lane `i` plus lane `i + 4`, and so on), which the compiler
/// keeps in vector registers: summed one after the other they would be seven dependent adds.
#[inline(always)]
fn halving_sum(lanes: &mut [f32; LANES]) -> f32 {
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        let (low, high) = lanes.split_at_mut(width);
        for (a, &b) in low.iter_mut().zip(&high[..width]) {
            *a += b;
        }
    }
    lanes[0]
}

/// `erfc(z)` for `z ≥ 0`, Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7).
#[inline(always)]
fn erfc_non_negative(z: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly =
        t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    poly * exp(-z * z)
}

#[inline(always)]
fn gelu_erf_body(xs: &mut [f32]) {
    for x in xs.iter_mut() {
        let v = *x;
        let tail = 0.5 * erfc_non_negative(v.abs() * std::f32::consts::FRAC_1_SQRT_2);
        let cdf = if v < 0.0 { tail } else { 1.0 - tail };
        *x = v * cdf;
    }
}

#[inline(always)]
fn gelu_tanh_body(xs: &mut [f32]) {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    for x in xs.iter_mut() {
        let v = *x;
        let u = SQRT_2_OVER_PI * (v + 0.044_715 * v * v * v);
        *x = v / (1.0 + exp(-2.0 * u));
    }
}

/// The elements of a contiguous CPU tensor of `T`, from its storage and layout
/// (`Tensor::storage_and_layout`), for kernels called outside candle's custom ops.
pub fn contiguous_slice<'a, T: WithDType>(storage: &'a Storage, layout: &Layout) -> Result<&'a [T]> {
    match storage {
        Storage::Cpu(cpu) => contiguous_cpu::<T>(cpu, layout, "contiguous_slice"),
        _ => candle_core::bail!("this kernel runs on the CPU only"),
    }
}

/// All the storage of a CPU tensor of `T`, whatever its layout.
pub fn storage_slice<T: WithDType>(storage: &Storage) -> Result<&[T]> {
    match storage {
        Storage::Cpu(cpu) => T::cpu_storage_as_slice(cpu),
        _ => candle_core::bail!("this kernel runs on the CPU only"),
    }
}

/// Softmax over the last dimension: the custom op on CPU f32, candle's fused kernel elsewhere.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 {
        x.contiguous()?.apply_op1_no_bwd(&SoftmaxLastDim)
    } else {
        candle_nn::ops::softmax_last_dim(x)
    }
}

/// `softmax(scores + bias)` over the last dimension, `bias` broadcast to the scores' shape. On
/// CPU f32 it is written over `scores` (a product's fresh output, shared with nothing): one score
/// matrix alive instead of three (scores, their sum with the bias, its softmax), and one pass.
/// Elsewhere candle's add and softmax.
pub fn softmax_with_bias(scores: Tensor, bias: &Tensor) -> Result<Tensor> {
    if scores.device().is_cpu()
        && scores.dtype() == DType::F32
        && scores.is_contiguous()
        && scores.rank() <= 4
    {
        let bias = bias.to_dtype(DType::F32)?.broadcast_as(scores.shape())?;
        scores.inplace_op2(&bias, &SoftmaxWithBias)?;
        Ok(scores)
    } else {
        softmax_last_dim(&scores.broadcast_add(bias)?)
    }
}

/// Layer norm over the last dimension (BART's): the custom op on CPU f32, candle's fused kernel
/// elsewhere. candle's CPU kernel hands every call to the thread pool, which for a decoder step's
/// few rows costs more than the arithmetic.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f32) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 && weight.dtype() == DType::F32 {
        x.contiguous()?.apply_op3_no_bwd(weight, bias, &Norm { eps })
    } else {
        candle_nn::ops::layer_norm(&x.contiguous()?, weight, bias, eps)
    }
}

/// T5's RMS norm over the last dimension: the custom op on CPU f32, candle's elsewhere.
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f32) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 && weight.dtype() == DType::F32 {
        x.contiguous()?.apply_op2_no_bwd(weight, &Norm { eps })
    } else {
        candle_nn::ops::rms_norm(&x.contiguous()?, weight, eps)
    }
}

/// Exact GELU: the custom op on CPU f32, candle's elsewhere.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 {
        x.apply_op1_no_bwd(&Gelu::Erf)
    } else {
        x.gelu_erf()
    }
}

/// Tanh GELU: the custom op on CPU f32, candle's elsewhere.
pub fn gelu_tanh(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 {
        x.apply_op1_no_bwd(&Gelu::Tanh)
    } else {
        x.gelu()
    }
}

/// Products with at most this many rows (a decoder step: one row per beam) skip `gemm`.
const FEW_ROWS: usize = 16;

/// `x [rows, in] × rhs [in, out]`. With few rows on CPU f32 this is a loop over `rhs` as stored —
/// row-major `[in, out]` (a checkpoint's transposed copy) or a transposed view of `[out, in]` (a
/// tied embedding table) — instead of `gemm`, which repacks the whole weight on every call and
/// for a decoder step spends longer packing than multiplying. Anything else is candle's matmul.
pub fn matmul(x: &Tensor, rhs: &Tensor) -> Result<Tensor> {
    let few_rows = x.dims2().is_ok_and(|(rows, inner)| rows <= FEW_ROWS && inner > 0);
    if few_rows
        && x.device().is_cpu()
        && x.dtype() == DType::F32
        && rhs.dtype() == DType::F32
        && RhsLayout::of(rhs.layout()).is_some()
    {
        x.contiguous()?.apply_op2_no_bwd(rhs, &FewRowsMatmul)
    } else {
        x.matmul(rhs)
    }
}

/// How an `[in, out]` right-hand side lies in memory.
#[derive(Clone, Copy)]
enum RhsLayout {
    /// Row-major `[in, out]`.
    Columns,
    /// A transposed view of row-major `[out, in]`.
    Rows,
}

impl RhsLayout {
    fn of(layout: &Layout) -> Option<RhsLayout> {
        let &[inner, width] = layout.dims() else { return None };
        match *layout.stride() {
            [row, 1] if row == width => Some(RhsLayout::Columns),
            [1, column] if column == inner => Some(RhsLayout::Rows),
            _ => None,
        }
    }
}

/// Work below this many multiply-adds stays on the calling thread. One row of a product this size
/// reads a 256 KiB weight at memory speed: the embedded Oracle's greedy steps, whose products
/// are all of one row, were 1.1–1.2× faster at 2 threads split from here than from 256K.
const PARALLEL_MIN_PRODUCTS: usize = 1 << 16;

struct FewRowsMatmul;

impl CustomOp2 for FewRowsMatmul {
    fn name(&self) -> &'static str {
        "prism-few-rows-matmul"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        rhs: &CpuStorage,
        rhs_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_cpu::<f32>(x, x_layout, self.name())?;
        let (rows, inner) = x_layout.shape().dims2()?;
        let (rhs_inner, width) = rhs_layout.shape().dims2()?;
        if rhs_inner != inner {
            candle_core::bail!("{}: [{rows}, {inner}] × [{rhs_inner}, {width}]", self.name());
        }
        let CpuStorage::F32(rhs) = rhs else { candle_core::bail!("{}: expects f32", self.name()) };
        let rhs = &rhs[rhs_layout.start_offset()..rhs_layout.start_offset() + inner * width];
        let Some(stored_as) = RhsLayout::of(rhs_layout) else {
            candle_core::bail!(
                "{}: unsupported right-hand side strides {:?}",
                self.name(),
                rhs_layout.stride()
            )
        };
        let product = |columns: std::ops::Range<usize>, out: &mut [f32]| match stored_as {
            RhsLayout::Columns => few_rows_times_columns(x, rhs, width, columns, out),
            RhsLayout::Rows => few_rows_times_rows(x, rhs, columns, out),
        };
        let tasks =
            if rows * inner * width < PARALLEL_MIN_PRODUCTS { 1 } else { crate::threads::split_threads() };
        let mut out = vec![0f32; rows * width];
        if tasks <= 1 {
            product(0..width, &mut out);
        } else {
            let chunk = width.div_ceil(tasks);
            let parts: Vec<(std::ops::Range<usize>, Vec<f32>)> = (0..width)
                .step_by(chunk)
                .collect::<Vec<_>>()
                .into_par_iter()
                .map(|start| {
                    let columns = start..(start + chunk).min(width);
                    let mut part = vec![0f32; rows * columns.len()];
                    product(columns.clone(), &mut part);
                    (columns, part)
                })
                .collect();
            for (columns, part) in parts {
                for (out_row, part_row) in out.chunks_exact_mut(width).zip(part.chunks_exact(columns.len())) {
                    out_row[columns.clone()].copy_from_slice(part_row);
                }
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((rows, width))))
    }
}

/// The elements of a contiguous CPU tensor of `T`; errors name `op`.
fn contiguous_cpu<'a, T: WithDType>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [T]> {
    if storage.dtype() != T::DTYPE {
        candle_core::bail!("{op}: expects {:?}, got {:?}", T::DTYPE, storage.dtype())
    }
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&T::cpu_storage_as_slice(storage)?[start..end]),
        None => candle_core::bail!("{op}: expects a contiguous tensor"),
    }
}

/// Runs `kernel` over `data` in tasks of whole `row_len`-long rows: on the calling thread when
/// the data is small or there is no thread to split across ([`crate::threads::split_threads`];
/// handing work to the pool wakes a thread and waits for it), split across the pool otherwise.
fn in_row_tasks(data: &mut [f32], row_len: usize, kernel: impl Fn(&mut [f32]) + Sync) {
    let task_len = PARALLEL_MIN_ELEMENTS.div_ceil(row_len.max(1)) * row_len.max(1);
    if data.len() <= task_len || crate::threads::split_threads() == 1 {
        kernel(data);
    } else {
        data.par_chunks_mut(task_len).for_each(&kernel);
    }
}

struct SoftmaxLastDim;

impl CustomOp1 for SoftmaxLastDim {
    fn name(&self) -> &'static str {
        "prism-softmax-last-dim"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let mut out = contiguous_cpu::<f32>(storage, layout, self.name())?.to_vec();
        let row_len = layout.dims().last().copied().unwrap_or(1).max(1);
        in_row_tasks(&mut out, row_len, |rows| softmax_rows_in_place(rows, row_len));
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

struct SoftmaxWithBias;

impl InplaceOp2 for SoftmaxWithBias {
    fn name(&self) -> &'static str {
        "prism-softmax-with-bias"
    }

    fn cpu_fwd(
        &self,
        scores: &mut CpuStorage,
        layout: &Layout,
        bias: &CpuStorage,
        bias_layout: &Layout,
    ) -> Result<()> {
        let (CpuStorage::F32(scores), CpuStorage::F32(bias)) = (scores, bias) else {
            candle_core::bail!("{}: f32 scores and bias only", self.name());
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("{}: the scores must be contiguous", self.name());
        };
        // Dimensions and bias strides right-aligned to four (rank ≤ 4, checked by the caller).
        let (rank, row_len) = (layout.dims().len(), layout.dims().last().copied().unwrap_or(1).max(1));
        let mut dims = [1usize; 4];
        let mut strides = [0usize; 4];
        dims[4 - rank..].copy_from_slice(layout.dims());
        strides[4 - rank..].copy_from_slice(bias_layout.stride());
        let row_start = |row: usize| {
            let (i2, rest) = (row % dims[2], row / dims[2]);
            let (i1, i0) = (rest % dims[1], rest / dims[1]);
            bias_layout.start_offset() + i0 * strides[0] + i1 * strides[1] + i2 * strides[2]
        };
        let key_stride = strides[3];
        let rows = |first_row: usize, data: &mut [f32]| {
            for (r, row) in data.chunks_exact_mut(row_len).enumerate() {
                let base = row_start(first_row + r);
                if key_stride == 1 {
                    row.iter_mut().zip(&bias[base..base + row_len]).for_each(|(x, b)| *x += b);
                } else {
                    row.iter_mut().enumerate().for_each(|(j, x)| *x += bias[base + j * key_stride]);
                }
                softmax_rows_in_place(row, row_len);
            }
        };
        let data = &mut scores[start..end];
        let task_rows = PARALLEL_MIN_ELEMENTS.div_ceil(row_len);
        if data.len() <= task_rows * row_len || crate::threads::split_threads() == 1 {
            rows(0, data);
        } else {
            data.par_chunks_mut(task_rows * row_len)
                .enumerate()
                .for_each(|(task, data)| rows(task * task_rows, data));
        }
        Ok(())
    }
}

/// Layer norm (with a bias, [`CustomOp3`]) or RMS norm (without, [`CustomOp2`]) over the last
/// dimension.
struct Norm {
    eps: f32,
}

impl Norm {
    fn run(
        &self,
        x: &[f32],
        shape: &Shape,
        weight: &[f32],
        bias: Option<&[f32]>,
    ) -> Result<(CpuStorage, Shape)> {
        let row_len = shape.dims().last().copied().unwrap_or(1);
        if weight.len() != row_len || bias.is_some_and(|b| b.len() != row_len) {
            candle_core::bail!("prism-norm: rows of {row_len} against a weight of {}", weight.len())
        }
        let mut out = x.to_vec();
        let norm = |rows: &mut [f32]| match bias {
            Some(bias) => layer_norm_rows_in_place(rows, weight, bias, self.eps),
            None => rms_norm_rows_in_place(rows, weight, self.eps),
        };
        in_row_tasks(&mut out, row_len, norm);
        Ok((CpuStorage::F32(out), shape.clone()))
    }
}

impl CustomOp3 for Norm {
    fn name(&self) -> &'static str {
        "prism-layer-norm"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        weight: &CpuStorage,
        weight_layout: &Layout,
        bias: &CpuStorage,
        bias_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let name = CustomOp3::name(self);
        self.run(
            contiguous_cpu::<f32>(x, x_layout, name)?,
            x_layout.shape(),
            contiguous_cpu::<f32>(weight, weight_layout, name)?,
            Some(contiguous_cpu::<f32>(bias, bias_layout, name)?),
        )
    }
}

impl CustomOp2 for Norm {
    fn name(&self) -> &'static str {
        "prism-rms-norm"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        weight: &CpuStorage,
        weight_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let name = CustomOp2::name(self);
        self.run(
            contiguous_cpu::<f32>(x, x_layout, name)?,
            x_layout.shape(),
            contiguous_cpu::<f32>(weight, weight_layout, name)?,
            None,
        )
    }
}

enum Gelu {
    Erf,
    Tanh,
}

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        match self {
            Gelu::Erf => "prism-gelu-erf",
            Gelu::Tanh => "prism-gelu-tanh",
        }
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let mut out = contiguous_cpu::<f32>(storage, layout, self.name())?.to_vec();
        let kernel = match self {
            Gelu::Erf => gelu_erf_in_place,
            Gelu::Tanh => gelu_tanh_in_place,
        };
        in_row_tasks(&mut out, 1, kernel);
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_relative(got: f32, want: f64, tolerance: f64, what: &str) {
        let error = (got as f64 - want).abs() / want.abs().max(1e-30);
        assert!(error <= tolerance, "{what}: got {got}, want {want} (relative error {error:e})");
    }

    #[test]
    fn exp_matches_libm_within_two_ulp_and_saturates_outside_its_range() {
        let mut x = -87.0f32;
        while x < 88.0 {
            assert_relative(exp(x), (x as f64).exp(), 2.5e-7, &format!("exp({x})"));
            x += 0.0137;
        }
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-1e9), 0.0);
        assert_eq!(exp(-88.0), 0.0);
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(1e9).is_finite());
    }

    fn erf(x: f64) -> f64 {
        // A reference independent of the kernel: the Maclaurin series, exact to f64 for |x| ≤ 3.
        let (mut term, mut sum, mut n) = (x, x, 0.0);
        while term.abs() > 1e-17 * sum.abs() {
            n += 1.0;
            term *= -x * x / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn gelus_match_their_definitions() {
        let xs: Vec<f32> = (-400..=400).map(|k| k as f32 * 0.01).collect();
        let mut exact = xs.clone();
        gelu_erf_in_place(&mut exact);
        let mut approximate = xs.clone();
        gelu_tanh_in_place(&mut approximate);
        for ((&x, &e), &a) in xs.iter().zip(&exact).zip(&approximate) {
            let x64 = x as f64;
            let want_exact = 0.5 * x64 * (1.0 + erf(x64 / 2f64.sqrt()));
            assert!(
                (e as f64 - want_exact).abs() < 2e-7 * x64.abs().max(1.0),
                "gelu({x}) = {e}, want {want_exact}"
            );
            let u = (2.0 / std::f64::consts::PI).sqrt() * (x64 + 0.044715 * x64.powi(3));
            let want_tanh = 0.5 * x64 * (1.0 + u.tanh());
            assert!(
                (a as f64 - want_tanh).abs() < 2e-7 * x64.abs().max(1.0),
                "gelu_new({x}) = {a}, want {want_tanh}"
            );
        }
    }

    #[test]
    fn softmax_with_a_broadcast_bias_in_place_equals_candles_add_and_softmax() {
        let dev = candle_core::Device::Cpu;
        let values =
            |n: usize, seed: f32| (0..n).map(|i| (i as f32 * 0.41 + seed).sin() * 4.0).collect::<Vec<f32>>();
        let dims = (2, 3, 5, 7);
        let scores = Tensor::from_vec(values(2 * 3 * 5 * 7, 0.3), dims, &dev).unwrap();
        let mut padding = values(2 * 7, 1.1);
        padding[9] = f32::NEG_INFINITY;
        // Padding per source and key; a per-head, per-query position bias; both; a scalar.
        let padding = Tensor::from_vec(padding, (2, 1, 1, 7), &dev).unwrap();
        let positions = Tensor::from_vec(values(3 * 5 * 7, 2.0), (1, 3, 5, 7), &dev).unwrap();
        let both = positions.broadcast_add(&padding).unwrap();
        for bias in [padding, positions, both, Tensor::new(0.5f32, &dev).unwrap()] {
            let want = candle_nn::ops::softmax_last_dim(&scores.broadcast_add(&bias).unwrap()).unwrap();
            let got = softmax_with_bias(scores.copy().unwrap(), &bias).unwrap();
            let difference =
                (want - got).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(difference < 1e-6, "bias {:?}: {difference}", bias.dims());
        }
        // Large enough to be split across the pool: the rows keep their own bias rows.
        let wide = Tensor::from_vec(values(4 * 64 * 300, 0.7), (1, 4, 64, 300), &dev).unwrap();
        let bias = Tensor::from_vec(values(4 * 64 * 300, 1.9), (1, 4, 64, 300), &dev).unwrap();
        let want = candle_nn::ops::softmax_last_dim(&(&wide + &bias).unwrap()).unwrap();
        let got = softmax_with_bias(wide.copy().unwrap(), &bias).unwrap();
        let difference = (want - got).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(difference < 1e-6, "{difference}");
    }

    #[test]
    fn softmax_and_log_softmax_match_hand_values_and_handle_masked_rows() {
        let mut dst = [0.0, 2f32.ln(), f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY, f32::NEG_INFINITY];
        softmax_rows_in_place(&mut dst, 3);
        let want = [1.0 / 3.0, 2.0 / 3.0, 0.0];
        for (got, want) in dst[..3].iter().zip(want) {
            assert!((got - want).abs() < 1e-7, "{dst:?}");
        }
        assert_eq!(&dst[3..], &[1.0, 0.0, 0.0], "a row with one finite entry puts all mass there");

        let mut masked = [f32::NEG_INFINITY; 3];
        softmax_rows_in_place(&mut masked, 3);
        assert_eq!(masked, [0.0; 3]);

        let mut row: Vec<f32> = (0..21).map(|k| (k as f32 * 0.37).sin() * 5.0).collect();
        let sum: f64 = row.iter().map(|&x| (x as f64).exp()).sum();
        let want: Vec<f64> = row.iter().map(|&x| x as f64 - sum.ln()).collect();
        log_softmax_in_place(&mut row);
        for (got, want) in row.iter().zip(want) {
            assert!((*got as f64 - want).abs() < 2e-6, "{got} vs {want}");
        }
    }

    #[test]
    fn norms_match_hand_values() {
        // Row [1, 2, 3, 6]: mean 3, centred [-2, -1, 0, 3], variance 14 / 4, mean square 50 / 4.
        let mut rows = [1.0, 2.0, 3.0, 6.0];
        layer_norm_rows_in_place(&mut rows, &[1.0, 1.0, 2.0, 0.5], &[0.0, 1.0, 0.0, -1.0], 0.0);
        let deviation = 3.5f32.sqrt();
        let want = [-2.0 / deviation, -1.0 / deviation + 1.0, 0.0, 1.5 / deviation - 1.0];
        for (got, want) in rows.iter().zip(want) {
            assert!((got - want).abs() < 1e-6, "{rows:?}");
        }
        let mut rows = [1.0, 2.0, 3.0, 6.0];
        rms_norm_rows_in_place(&mut rows, &[1.0, 1.0, 1.0, 2.0], 0.0);
        let rms = 12.5f32.sqrt();
        for (got, want) in rows.iter().zip([1.0 / rms, 2.0 / rms, 3.0 / rms, 12.0 / rms]) {
            assert!((got - want).abs() < 1e-6, "{rows:?}");
        }
    }

    #[test]
    fn products_over_signed_bytes_match_a_plain_product() {
        for (rows, inner, width) in [(1, 7, 3), (5, 40, 11), (6, 64, 19), (3, 33, 40)] {
            let x: Vec<f32> = (0..rows * inner).map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0).collect();
            // Bytes over the whole signed range, as the 8-bit cache stores them.
            let bytes: Vec<u8> = (0..inner * width).map(|i| (i * 37 % 256) as u8).collect();
            let value = |i: usize| f32::from(bytes[i] as i8);
            let mut by_rows = vec![f32::NAN; rows * width];
            few_rows_times_byte_rows(&x, &bytes, 0..width, &mut by_rows);
            let mut by_columns = vec![f32::NAN; rows * width];
            few_rows_times_byte_columns(&x, &bytes, width, 0..width, &mut by_columns);
            for r in 0..rows {
                for o in 0..width {
                    // `bytes` as `[width, inner]` rows, and as `[inner, width]` columns.
                    let want_rows: f32 = (0..inner).map(|k| x[r * inner + k] * value(o * inner + k)).sum();
                    let want_columns: f32 = (0..inner).map(|k| x[r * inner + k] * value(k * width + o)).sum();
                    let (got_rows, got_columns) = (by_rows[r * width + o], by_columns[r * width + o]);
                    assert!(
                        (want_rows - got_rows).abs() < 1e-3,
                        "rows [{rows}, {inner}] {got_rows} {want_rows}"
                    );
                    assert!(
                        (want_columns - got_columns).abs() < 1e-3,
                        "columns [{rows}, {inner}] {got_columns} {want_columns}"
                    );
                }
            }
        }
    }

    #[test]
    fn eight_lane_dot_tiles_match_a_plain_product() {
        // The product dispatches to AVX-512 on a CPU that has it; this keeps the other path tested.
        for (rows, inner, outputs) in [(1, 7, 3), (5, 40, 11), (6, 256, 7), (3, 33, 5), (13, 16, 9)] {
            let x: Vec<f32> = (0..rows * inner).map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0).collect();
            let weight: Vec<f32> = (0..outputs * inner).map(|i| ((i * 5 % 11) as f32 - 5.0) / 4.0).collect();
            let mut got = vec![f32::NAN; rows * outputs];
            eight_lane_few_rows_times_rows(&x, &weight, 0..outputs, &mut got);
            for (at, got) in got.iter().enumerate() {
                let (r, o) = (at / outputs, at % outputs);
                let want: f32 = (0..inner).map(|k| x[r * inner + k] * weight[o * inner + k]).sum();
                assert!(
                    (want - got).abs() < 1e-4,
                    "[{rows}, {inner}] row {r} output {o}: {got}, want {want}"
                );
            }
        }
    }

    #[test]
    fn few_rows_products_match_gemm_for_both_weight_layouts_and_any_thread_split() -> Result<()> {
        let device = candle_core::Device::Cpu;
        for (rows, inner, width) in [(1, 7, 3), (5, 128, 512), (16, 256, 3001), (17, 9, 9), (5, 40, 11)] {
            let x = Tensor::randn(0f32, 1.0, (rows, inner), &device)?;
            let columns = Tensor::randn(0f32, 1.0, (inner, width), &device)?;
            let rows_view = columns.t()?.contiguous()?.t()?;
            let want = x.matmul(&columns)?;
            for rhs in [&columns, &rows_view] {
                let difference =
                    (matmul(&x, rhs)? - &want)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
                assert!(difference < 1e-4, "[{rows}, {inner}] × [{inner}, {width}]: differs by {difference}");
            }
        }
        Ok(())
    }

    #[test]
    fn the_ops_agree_with_candle_on_a_tensor_large_enough_to_split_across_threads() -> Result<()> {
        let device = candle_core::Device::Cpu;
        let x = (Tensor::randn(0f32, 3.0, (7, 40, 300), &device)? - 1.0)?;
        let weight = Tensor::randn(1f32, 0.5, 300, &device)?;
        let bias = Tensor::randn(0f32, 0.5, 300, &device)?;
        let pairs = [
            (softmax_last_dim(&x)?, candle_nn::ops::softmax_last_dim(&x)?),
            (gelu_erf(&x)?, x.gelu_erf()?),
            (gelu_tanh(&x)?, x.gelu()?),
            (layer_norm(&x, &weight, &bias, 1e-5)?, candle_nn::ops::layer_norm(&x, &weight, &bias, 1e-5)?),
            (rms_norm(&x, &weight, 1e-6)?, candle_nn::ops::rms_norm(&x, &weight, 1e-6)?),
        ];
        for (ours, candles) in pairs {
            let difference = (ours - candles)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
            assert!(difference < 1e-5, "largest difference {difference}");
        }
        Ok(())
    }
}

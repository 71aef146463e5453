//! 8-bit weights laid out for integer matrix products on the CPU: [`InterleavedQ8`] holds a
//! `Q8_0` matrix (blocks of 32 int8 values with an f16 scale, candle's and GGUF's format) with the
//! same bytes in another order, 16 weight rows interleaved 4 bytes at a time, so that one 64-byte
//! load feeds one `vpdpbusd` with 64 multiply-adds into 16 outputs at once and the scales are
//! applied to 16 outputs per instruction.
//!
//! candle's product on the blocks as stored takes one input row and one weight row at a time (a
//! 90-row encoder product reads every block 90 times and sums every dot product across lanes);
//! candle's `QMatMul` repacks into tiles like these but keeps them *beside* the blocks, doubling
//! the weight memory. Here the interleaved copy *replaces* the blocks: the same 34 bytes per 32
//! weights. Input rows are quantized to 8 bits per block of 32 (as `Q8_0` does), offset by 128
//! to the unsigned bytes `vpdpbusd` multiplies, and the offset's contribution (`128 · Σ w` per
//! block) is subtracted in the same integer sum. Large products split the 16-row groups across
//! the rayon pool. CPUs without AVX-512 VNNI use AVX2's `vpmaddubsw` on the same layout, and
//! others a plain loop.

use candle_core::quantized::k_quants::{BlockQ8_0, GgmlType};
use half::f16;
use rayon::prelude::*;

const BLOCK_LEN: usize = 32;
/// Bytes of one `Q8_0` block: an f16 scale, then 32 int8 values.
const BLOCK_BYTES: usize = 34;
/// Weight rows interleaved together: one 64-byte vector holds 4 bytes of each.
const GROUP: usize = 16;
/// Bytes of one block of a group: 16 f16 scales, then `[8 quads][16 rows][4 bytes]`.
const GROUP_BLOCK_BYTES: usize = GROUP * BLOCK_BYTES;
const SCALES_BYTES: usize = GROUP * 2;

/// Products of fewer multiply-adds than this stay on the calling thread: waking a pool thread
/// and waiting for it costs more than a small decoder-step product.
const POOLED_MIN_MACS: usize = 1 << 18;

/// A pooled product splits by input rows when every task gets at least this many (a tile of the
/// kernels' rows, so each task still reads each weight group once per tile).
const ROWS_PER_TASK_MIN: usize = 8;

/// A `[rows, cols]` `Q8_0` matrix in 16-row groups (see the module docs). The last group is
/// padded with zero rows.
#[derive(Debug)]
pub struct InterleavedQ8 {
    rows: usize,
    cols: usize,
    data: Vec<u8>,
}

impl InterleavedQ8 {
    /// Rearranges `blocks` (a `[rows, cols]` matrix, `cols` a multiple of 32).
    pub fn from_blocks(blocks: &[BlockQ8_0], rows: usize, cols: usize) -> InterleavedQ8 {
        assert!(
            cols.is_multiple_of(BLOCK_LEN) && blocks.len() * BLOCK_LEN == rows * cols,
            "a [{rows}, {cols}] Q8_0 matrix"
        );
        let blocks_per_row = cols / BLOCK_LEN;
        let bytes = block_bytes(blocks);
        let mut data = vec![0u8; rows.div_ceil(GROUP) * blocks_per_row * GROUP_BLOCK_BYTES];
        for (row, row_bytes) in bytes.chunks_exact(blocks_per_row * BLOCK_BYTES).enumerate() {
            let (group, lane) = (row / GROUP, row % GROUP);
            for (b, block) in row_bytes.chunks_exact(BLOCK_BYTES).enumerate() {
                let at = (group * blocks_per_row + b) * GROUP_BLOCK_BYTES;
                data[at + 2 * lane..at + 2 * lane + 2].copy_from_slice(&block[..2]);
                for (quad, values) in block[2..].chunks_exact(4).enumerate() {
                    let to = at + SCALES_BYTES + (quad * GROUP + lane) * 4;
                    data[to..to + 4].copy_from_slice(values);
                }
            }
        }
        InterleavedQ8 { rows, cols, data }
    }

    /// The matrix as `Q8_0` blocks again, row after row (for writing a checkpoint).
    pub fn to_blocks(&self) -> Vec<BlockQ8_0> {
        let mut blocks = vec![BlockQ8_0::zeros(); self.rows * self.cols / BLOCK_LEN];
        // SAFETY: `BlockQ8_0` is `repr(C)`, 34 bytes (candle asserts it), and every bit pattern
        // of its f16 and `i8`s is a valid value.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(blocks.as_mut_ptr().cast::<u8>(), std::mem::size_of_val(&*blocks))
        };
        let blocks_per_row = self.cols / BLOCK_LEN;
        for (row, row_bytes) in bytes.chunks_exact_mut(blocks_per_row * BLOCK_BYTES).enumerate() {
            for (b, block) in row_bytes.chunks_exact_mut(BLOCK_BYTES).enumerate() {
                let (scale, values) = self.block_of(row, b);
                block[..2].copy_from_slice(&scale.to_le_bytes());
                for (quad, out) in block[2..].chunks_exact_mut(4).enumerate() {
                    out.copy_from_slice(&values[quad * GROUP * 4..quad * GROUP * 4 + 4]);
                }
            }
        }
        blocks
    }

    /// Row `row`'s block `b`: its f16 scale bits and the group's quads, offset to the row's lane.
    fn block_of(&self, row: usize, b: usize) -> (u16, &[u8]) {
        let (group, lane) = (row / GROUP, row % GROUP);
        let at = (group * (self.cols / BLOCK_LEN) + b) * GROUP_BLOCK_BYTES;
        let scale = u16::from_le_bytes([self.data[at + 2 * lane], self.data[at + 2 * lane + 1]]);
        (scale, &self.data[at + SCALES_BYTES + lane * 4..at + GROUP_BLOCK_BYTES])
    }

    /// Row `row`, dequantized into `out` (`cols` values): an embedding lookup.
    pub fn dequantize_row(&self, row: usize, out: &mut [f32]) {
        for (b, chunk) in out.chunks_exact_mut(BLOCK_LEN).enumerate() {
            let (scale, values) = self.block_of(row, b);
            let scale = f16::from_bits(scale).to_f32();
            for (quad, four) in chunk.chunks_exact_mut(4).enumerate() {
                for (o, &v) in four.iter_mut().zip(&values[quad * GROUP * 4..quad * GROUP * 4 + 4]) {
                    *o = v as i8 as f32 * scale;
                }
            }
        }
    }

    /// `(rows, cols)`.
    pub fn dims(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// Bytes held (the padding of the last group included).
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// `dst[m, rows] = lhs[m, cols] · selfᵀ`. A large product splits across the pool: an
    /// encoder's many input rows by rows (each task quantizes its own rows and writes its own rows
    /// of `dst`, so nothing is left to the calling thread), a decoder step's few rows by weight
    /// groups.
    pub fn product(&self, lhs: &[f32], dst: &mut [f32]) {
        let (n, k) = (self.rows, self.cols);
        let m = lhs.len() / k;
        assert!(lhs.len() == m * k && dst.len() == m * n, "a [{m}, {k}] input for a [{n}, {k}] weight");
        if m == 0 || n == 0 {
            return;
        }
        let kernel = Kernel::detect();
        let groups = n.div_ceil(GROUP);
        let threads = if m * k * n < POOLED_MIN_MACS { 1 } else { crate::threads::split_threads() };
        if threads > 1 && m >= threads * ROWS_PER_TASK_MIN {
            let rows_per_task = m.div_ceil(threads);
            lhs.par_chunks(rows_per_task * k).zip(dst.par_chunks_mut(rows_per_task * n)).for_each(
                |(lhs, dst)| {
                    kernel.run(&QuantizedRows::new(lhs, k), &self.data, n, dst, n);
                },
            );
            return;
        }
        let input = QuantizedRows::new(lhs, k);
        let tasks = threads.min(groups);
        if tasks <= 1 {
            return kernel.run(&input, &self.data, n, dst, n);
        }
        let group_bytes = k / BLOCK_LEN * GROUP_BLOCK_BYTES;
        let per_task = groups.div_ceil(tasks);
        let parts: Vec<(usize, Vec<f32>)> = self
            .data
            .par_chunks(per_task * group_bytes)
            .enumerate()
            .map(|(i, part)| {
                let first = i * per_task * GROUP;
                let cols = (part.len() / group_bytes * GROUP).min(n - first);
                let mut out = vec![0f32; m * cols];
                kernel.run(&input, part, cols, &mut out, cols);
                (first, out)
            })
            .collect();
        for (first, out) in parts {
            let cols = out.len() / m;
            for (dst_row, out_row) in dst.chunks_exact_mut(n).zip(out.chunks_exact(cols)) {
                dst_row[first..first + cols].copy_from_slice(out_row);
            }
        }
    }
}

fn block_bytes(blocks: &[BlockQ8_0]) -> &[u8] {
    // SAFETY: `BlockQ8_0` is `repr(C)`, 34 bytes with no padding (candle asserts the size).
    unsafe { std::slice::from_raw_parts(blocks.as_ptr().cast::<u8>(), std::mem::size_of_val(blocks)) }
}

/// Input rows quantized per block of 32 as the kernels read them: the values offset by 128
/// (unsigned bytes), and each block's scale.
struct QuantizedRows {
    offset: Vec<u8>,
    scales: Vec<f32>,
    len: usize,
}

/// Symmetric 8-bit quantization of `values` (scale = max |x| / 127) into `out`, each value
/// written as its rounded multiple of the scale plus `offset` (128 for the unsigned bytes
/// `vpdpbusd` multiplies, 0 for `i8` bit patterns); returns the scale.
#[inline(always)]
pub fn quantize_symmetric(values: &[f32], out: &mut [u8], offset: i32) -> f32 {
    let amax = values.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = amax / 127.0;
    let inverse = if scale > 0.0 { 1.0 / scale } else { 0.0 };
    // Clamped: a subnormal block's inverse scale overflows to infinity. Rounded half away from
    // zero by a truncating conversion the compiler vectorises (a call to `roundf` per value was
    // 4% of a q8 encoder); unlike `roundf`, the largest value below a half rounds up, since
    // adding 0.5 to it rounds to the next whole number.
    for (x, o) in values.iter().zip(out.iter_mut()) {
        let v = (x * inverse).clamp(-127.0, 127.0);
        *o = ((v + 0.5f32.copysign(v)) as i32 + offset) as u8;
    }
    scale
}

impl QuantizedRows {
    /// Symmetric 8-bit quantization of each block of 32 (scale = max |x| / 127), as `Q8_0` does
    /// for the input of candle's own product, with the scale kept in f32.
    fn new(lhs: &[f32], len: usize) -> QuantizedRows {
        let mut offset = vec![128u8; lhs.len()];
        let mut scales = Vec::with_capacity(lhs.len() / BLOCK_LEN);
        for (block, out) in lhs.chunks_exact(BLOCK_LEN).zip(offset.chunks_exact_mut(BLOCK_LEN)) {
            scales.push(quantize_symmetric(block, out, 128));
        }
        QuantizedRows { offset, scales, len }
    }

    fn rows(&self) -> usize {
        self.offset.len() / self.len
    }

    fn blocks(&self) -> usize {
        self.len / BLOCK_LEN
    }
}

/// The integer dot-product instructions this CPU has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    #[cfg(target_arch = "x86_64")]
    Vnni,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Portable,
}

impl Kernel {
    fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = std::is_x86_feature_detected!("avx2")
                && std::is_x86_feature_detected!("fma")
                && std::is_x86_feature_detected!("f16c");
            if avx2
                && std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512vnni")
            {
                return Kernel::Vnni;
            }
            if avx2 {
                return Kernel::Avx2;
            }
        }
        Kernel::Portable
    }

    /// Writes `out[r, c]` (row stride `stride`) for every input row and the first `n` weight
    /// rows of the groups in `w`.
    fn run(self, input: &QuantizedRows, w: &[u8], n: usize, out: &mut [f32], stride: usize) {
        match self {
            // SAFETY: `detect` found the features each function is compiled for.
            #[cfg(target_arch = "x86_64")]
            Kernel::Vnni => unsafe { x86::run_vnni(input, w, n, out, stride) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { x86::run_avx2(input, w, n, out, stride) },
            Kernel::Portable => run_portable(input, w, n, out, stride),
        }
    }
}

/// The same sums in plain integer arithmetic.
fn run_portable(input: &QuantizedRows, w: &[u8], n: usize, out: &mut [f32], stride: usize) {
    let blocks = input.blocks();
    for (g, group) in w.chunks_exact(blocks * GROUP_BLOCK_BYTES).enumerate() {
        for r in 0..input.rows() {
            let mut acc = [0f32; GROUP];
            for (b, block) in group.chunks_exact(GROUP_BLOCK_BYTES).enumerate() {
                let x = &input.offset[r * input.len + b * BLOCK_LEN..][..BLOCK_LEN];
                let mut dots = [0i32; GROUP];
                for (quad, lanes) in block[SCALES_BYTES..].chunks_exact(GROUP * 4).enumerate() {
                    for (dot, four) in dots.iter_mut().zip(lanes.chunks_exact(4)) {
                        for (&xv, &wv) in x[quad * 4..quad * 4 + 4].iter().zip(four) {
                            *dot += (xv as i32 - 128) * wv as i8 as i32;
                        }
                    }
                }
                let xd = input.scales[r * blocks + b];
                for (lane, a) in acc.iter_mut().enumerate() {
                    let wd = f16::from_le_bytes([block[2 * lane], block[2 * lane + 1]]).to_f32();
                    *a += dots[lane] as f32 * xd * wd;
                }
            }
            let cols = (n - g * GROUP).min(GROUP);
            out[r * stride + g * GROUP..][..cols].copy_from_slice(&acc[..cols]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{QuantizedRows, BLOCK_LEN, GROUP, GROUP_BLOCK_BYTES, SCALES_BYTES};
    use std::arch::x86_64::*;

    /// Every 16-row group of `w` against the input rows, `$tile` rows at a time (then one by one)
    /// with `$group`, compiled inside each kernel's `target_feature` function.
    macro_rules! groups_in_row_tiles {
        ($group:ident, $tile:literal, $input:ident, $w:ident, $n:ident, $out:ident, $stride:ident) => {
            for (g, group) in $w.chunks_exact($input.blocks() * GROUP_BLOCK_BYTES).enumerate() {
                let cols = ($n - g * GROUP).min(GROUP);
                let mut r = 0;
                while r + $tile <= $input.rows() {
                    $group::<$tile>(
                        $input,
                        r,
                        group,
                        cols,
                        $out.as_mut_ptr().add(r * $stride + g * GROUP),
                        $stride,
                    );
                    r += $tile;
                }
                while r < $input.rows() {
                    $group::<1>(
                        $input,
                        r,
                        group,
                        cols,
                        $out.as_mut_ptr().add(r * $stride + g * GROUP),
                        $stride,
                    );
                    r += 1;
                }
            }
        };
    }

    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn run_vnni(input: &QuantizedRows, w: &[u8], n: usize, out: &mut [f32], stride: usize) {
        groups_in_row_tiles!(group_vnni, 8, input, w, n, out, stride);
    }

    /// Input rows `first_row..first_row + R` against one group of 16 weight rows: 16 outputs
    /// per row, written to `out` (row stride `stride`, the first `cols` of them).
    #[inline(always)]
    unsafe fn group_vnni<const R: usize>(
        input: &QuantizedRows,
        first_row: usize,
        group: &[u8],
        cols: usize,
        out: *mut f32,
        stride: usize,
    ) {
        let blocks = input.blocks();
        let x = input.offset.as_ptr().add(first_row * input.len);
        let x_scales = input.scales.as_ptr().add(first_row * blocks);
        let offset = _mm512_set1_epi8(-128i8);
        let mut acc = [_mm512_setzero_ps(); R];
        for b in 0..blocks {
            let block = group.as_ptr().add(b * GROUP_BLOCK_BYTES);
            let quads = block.add(SCALES_BYTES);
            // 128 · Σ w per weight row, to take back out of the offset inputs' sums.
            let mut correction = _mm512_setzero_si512();
            for q in 0..BLOCK_LEN / 4 {
                correction =
                    _mm512_dpbusd_epi32(correction, offset, _mm512_loadu_si512(quads.add(q * 64).cast()));
            }
            let w_scales = _mm512_cvtph_ps(_mm256_loadu_si256(block.cast()));
            let mut dots = [_mm512_sub_epi32(_mm512_setzero_si512(), correction); R];
            for q in 0..BLOCK_LEN / 4 {
                let wq = _mm512_loadu_si512(quads.add(q * 64).cast());
                for (i, dot) in dots.iter_mut().enumerate() {
                    let four = x.add(i * input.len + b * BLOCK_LEN + q * 4).cast::<i32>().read_unaligned();
                    *dot = _mm512_dpbusd_epi32(*dot, _mm512_set1_epi32(four), wq);
                }
            }
            for (i, a) in acc.iter_mut().enumerate() {
                let scale = _mm512_mul_ps(w_scales, _mm512_set1_ps(*x_scales.add(i * blocks + b)));
                *a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots[i]), scale, *a);
            }
        }
        let mask: __mmask16 = if cols == GROUP { !0 } else { (1u16 << cols) - 1 };
        for (i, a) in acc.iter().enumerate() {
            _mm512_mask_storeu_ps(out.add(i * stride), mask, *a);
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn run_avx2(input: &QuantizedRows, w: &[u8], n: usize, out: &mut [f32], stride: usize) {
        groups_in_row_tiles!(group_avx2, 4, input, w, n, out, stride);
    }

    /// As [`group_vnni`], 8 weight rows per 32-byte half. `vpmaddubsw` needs an unsigned operand:
    /// it multiplies |w| by the input with w's sign, so pairs sum to at most 2 · 128 · 127 and
    /// never saturate.
    #[inline(always)]
    unsafe fn group_avx2<const R: usize>(
        input: &QuantizedRows,
        first_row: usize,
        group: &[u8],
        cols: usize,
        out: *mut f32,
        stride: usize,
    ) {
        let blocks = input.blocks();
        let x = input.offset.as_ptr().add(first_row * input.len);
        let x_scales = input.scales.as_ptr().add(first_row * blocks);
        let flip = _mm256_set1_epi8(-128i8);
        let ones = _mm256_set1_epi16(1);
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        for b in 0..blocks {
            let block = group.as_ptr().add(b * GROUP_BLOCK_BYTES);
            let quads = block.add(SCALES_BYTES);
            let w_scales = [
                _mm256_cvtph_ps(_mm_loadu_si128(block.cast())),
                _mm256_cvtph_ps(_mm_loadu_si128(block.add(16).cast())),
            ];
            let mut dots = [[_mm256_setzero_si256(); 2]; R];
            for q in 0..BLOCK_LEN / 4 {
                for half in 0..2 {
                    let wq = _mm256_loadu_si256(quads.add(q * 64 + half * 32).cast());
                    let magnitude = _mm256_abs_epi8(wq);
                    for (i, dot) in dots.iter_mut().enumerate() {
                        let four =
                            x.add(i * input.len + b * BLOCK_LEN + q * 4).cast::<i32>().read_unaligned();
                        let signed = _mm256_xor_si256(_mm256_set1_epi32(four), flip);
                        let pairs = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(signed, wq));
                        dot[half] = _mm256_add_epi32(dot[half], _mm256_madd_epi16(pairs, ones));
                    }
                }
            }
            for (i, a) in acc.iter_mut().enumerate() {
                let xd = _mm256_set1_ps(*x_scales.add(i * blocks + b));
                for half in 0..2 {
                    let scale = _mm256_mul_ps(w_scales[half], xd);
                    a[half] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots[i][half]), scale, a[half]);
                }
            }
        }
        for (i, a) in acc.iter().enumerate() {
            let mut lanes = [0f32; GROUP];
            _mm256_storeu_ps(lanes.as_mut_ptr(), a[0]);
            _mm256_storeu_ps(lanes.as_mut_ptr().add(8), a[1]);
            std::ptr::copy_nonoverlapping(lanes.as_ptr(), out.add(i * stride), cols);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weight(n: usize, k: usize) -> (Vec<BlockQ8_0>, Vec<f32>) {
        let values: Vec<f32> =
            (0..n * k).map(|i| ((i as f32) * 0.731).sin() * (1.0 + (i % 7) as f32)).collect();
        let mut blocks = vec![BlockQ8_0::zeros(); n * k / BLOCK_LEN];
        BlockQ8_0::from_float(&values, &mut blocks);
        let mut dequantized = vec![0f32; n * k];
        BlockQ8_0::to_float(&blocks, &mut dequantized);
        (blocks, dequantized)
    }

    /// `Σ_blocks d_x · Σ (x · d_w w)` in f64 over the quantized values the kernels read
    /// (`to_float` gives each `d_w · w` exactly: an f16 times a 7-bit integer fits an f32).
    fn exact(input: &QuantizedRows, weights: &[f32], n: usize) -> Vec<f32> {
        let (k, blocks) = (input.len, input.blocks());
        let mut out = vec![0f32; input.rows() * n];
        for r in 0..input.rows() {
            for c in 0..n {
                let sum: f64 = (0..blocks)
                    .map(|b| {
                        let dot: f64 = (0..BLOCK_LEN)
                            .map(|l| {
                                let x = input.offset[r * k + b * BLOCK_LEN + l] as f64 - 128.0;
                                x * weights[c * k + b * BLOCK_LEN + l] as f64
                            })
                            .sum();
                        input.scales[r * blocks + b] as f64 * dot
                    })
                    .sum();
                out[r * n + c] = sum as f32;
            }
        }
        out
    }

    fn assert_close(got: &[f32], want: &[f32], relative: f32, what: &str) {
        let scale = want.iter().fold(0f32, |m, x| m.max(x.abs()));
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= relative * scale, "{what}: output {i}: {g} vs {w} (scale {scale})");
        }
    }

    #[test]
    fn the_layout_keeps_every_block_and_costs_no_memory() {
        let (n, k) = (37, 96);
        let (blocks, dequantized) = weight(n, k);
        let w = InterleavedQ8::from_blocks(&blocks, n, k);
        assert_eq!(block_bytes(&w.to_blocks()), block_bytes(&blocks));
        // Only the 11 zero rows that pad the last group of 16.
        assert_eq!(w.bytes(), 48 * k / BLOCK_LEN * BLOCK_BYTES);
        let mut row = vec![0f32; k];
        for r in [0, 15, 16, 36] {
            w.dequantize_row(r, &mut row);
            assert_eq!(row, dequantized[r * k..(r + 1) * k]);
        }
    }

    /// Every kernel this CPU can run, for row counts around the row tiles and weight-row counts
    /// around the 16-row groups, computes the exact sums over the quantized values (up to f32
    /// rounding) and agrees with candle's dot products on the same blocks.
    #[test]
    fn every_kernel_computes_the_exact_sums_and_agrees_with_candle() {
        for (m, k, n) in [(1, 64, 9), (5, 128, 37), (9, 32, 16), (17, 256, 130)] {
            let (blocks, dequantized) = weight(n, k);
            let w = InterleavedQ8::from_blocks(&blocks, n, k);
            let lhs: Vec<f32> = (0..m * k).map(|i| ((i as f32) * 0.377).cos() - 0.1).collect();
            let input = QuantizedRows::new(&lhs, k);
            let want = exact(&input, &dequantized, n);
            let mut kernels = vec![Kernel::Portable];
            #[cfg(target_arch = "x86_64")]
            {
                if Kernel::detect() == Kernel::Vnni {
                    kernels.push(Kernel::Vnni);
                }
                if matches!(Kernel::detect(), Kernel::Vnni | Kernel::Avx2) {
                    kernels.push(Kernel::Avx2);
                }
            }
            for kernel in kernels {
                let mut out = vec![f32::NAN; m * n];
                kernel.run(&input, &w.data, n, &mut out, n);
                assert_close(&out, &want, 1e-5, &format!("{kernel:?} {m}x{k}x{n}"));
            }
            let mut candle = vec![0f32; m * n];
            let mut lhs_blocks = vec![BlockQ8_0::zeros(); k / BLOCK_LEN];
            for (lhs_row, out_row) in lhs.chunks_exact(k).zip(candle.chunks_exact_mut(n)) {
                BlockQ8_0::from_float(lhs_row, &mut lhs_blocks);
                for (c, out) in out_row.iter_mut().enumerate() {
                    *out = BlockQ8_0::vec_dot(
                        k,
                        &blocks[c * k / BLOCK_LEN..(c + 1) * k / BLOCK_LEN],
                        &lhs_blocks,
                    );
                }
            }
            let mut got = vec![0f32; m * n];
            w.product(&lhs, &mut got);
            // candle rounds the input's block scales to f16, the only difference.
            assert_close(&got, &candle, 2e-3, "against candle's dot products");
        }
    }

    #[test]
    fn the_pooled_splits_match_one_thread() {
        // 33 rows split by rows on 3 threads; 4 rows (a few beams' step) by weight groups.
        for (m, k, n) in [(33, 512, 300), (4, 1024, 300)] {
            assert!(m * k * n >= POOLED_MIN_MACS);
            let (blocks, _) = weight(n, k);
            let w = InterleavedQ8::from_blocks(&blocks, n, k);
            let lhs: Vec<f32> = (0..m * k).map(|i| ((i as f32) * 0.113).sin()).collect();
            let run = |threads| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let mut out = vec![0f32; m * n];
                pool.install(|| w.product(&lhs, &mut out));
                out
            };
            assert_eq!(run(3), run(1), "[{m}, {k}] x [{k}, {n}]");
        }
    }

    #[test]
    fn inputs_round_half_away_from_zero() {
        let lhs: Vec<f32> = (0..64 * 256).map(|i| ((i * 7919) % 1013) as f32 / 97.0 - 5.0).collect();
        let input = QuantizedRows::new(&lhs, 256);
        for (block, (out, scale)) in
            lhs.chunks_exact(BLOCK_LEN).zip(input.offset.chunks_exact(BLOCK_LEN).zip(&input.scales))
        {
            for (x, o) in block.iter().zip(out) {
                let want = (x * (1.0 / scale)).round().clamp(-127.0, 127.0) as i32;
                assert_eq!(i32::from(*o) - 128, want, "{x} / {scale}");
            }
        }
        let halves = QuantizedRows::new(&[[127.0, 0.5, -0.5, 1.5, -2.5, 2.49, 0.0, -127.0]; 4].concat(), 32);
        assert_eq!(halves.offset[..8], [255, 129, 127, 130, 125, 130, 128, 1]);
    }

    #[test]
    fn zero_rows_quantize_to_the_offset() {
        let input = QuantizedRows::new(&[0.0; 64], 64);
        assert!(input.offset.iter().all(|&x| x == 128) && input.scales == [0.0, 0.0]);
    }

    /// Found by `checkpoint_proptest`: a block whose largest value is subnormal has an infinite
    /// inverse scale; non-finite inputs must not panic either (the generation's non-finite
    /// check reports them).
    #[test]
    fn subnormal_and_non_finite_blocks_quantize_without_overflow() {
        let mut values = vec![1e-40f32; 32];
        values.extend([f32::NAN, f32::INFINITY, -f32::INFINITY, 1.0].repeat(8));
        let input = QuantizedRows::new(&values, 64);
        assert!(input.offset[..32].iter().all(|&x| (1..=255).contains(&x)));
        let (blocks, _) = weight(3, 64);
        let mut out = vec![0f32; 3];
        InterleavedQ8::from_blocks(&blocks, 3, 64).product(&values, &mut out);
    }
}

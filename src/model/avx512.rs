//! The AVX-512 tile of the decoder step's matrix product (`kernels::few_rows_times_rows`, which
//! splits the rows into tiles), in intrinsics: the compiler keeps the portable kernel's eight-lane
//! tiles in registers, but not sixteen-lane ones (their accumulators went to the stack and the
//! product ran 5× slower).

use std::arch::x86_64::{
    __m512, __mmask16, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_maskz_loadu_ps, _mm512_reduce_add_ps,
    _mm512_setzero_ps,
};
use std::ops::Range;

/// f32 lanes in one AVX-512 register.
const LANES: usize = 16;

/// `out[i, o] = x[i, :] · weight[o, :]` for one tile of `rows` (at most 6: a 5-beam step in one
/// tile) of `x` and the rows `outputs` of an `[out, in]` row-major `weight` (`out` holds just
/// those outputs, `[rows, outputs.len()]`).
///
/// # Safety
/// The CPU must support `avx512f`.
#[target_feature(enable = "avx512f")]
pub unsafe fn tile_times_rows(
    rows: usize,
    x: &[f32],
    weight: &[f32],
    outputs: Range<usize>,
    out: &mut [f32],
) {
    let inner = x.len() / rows.max(1);
    assert!(
        rows <= 6
            && x.len() == rows * inner
            && out.len() == rows * outputs.len()
            && outputs.end * inner <= weight.len(),
        "tile_times_rows: shapes"
    );
    match rows {
        6 => dot_tile::<6, 4>(x, weight, outputs, out),
        5 => dot_tile::<5, 4>(x, weight, outputs, out),
        4 => dot_tile::<4, 5>(x, weight, outputs, out),
        3 => dot_tile::<3, 6>(x, weight, outputs, out),
        2 => dot_tile::<2, 8>(x, weight, outputs, out),
        1 => dot_tile::<1, 6>(x, weight, outputs, out),
        _ => {}
    }
}

/// The dot products of `R` rows of `x` with `O` rows of `weight` at a time: `R · O` independent
/// sixteen-lane sums in registers (at most 24 of AVX-512's 32, beside the `O` weight lines and
/// one row of `x`), the inner dimension's tail read through a mask.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn dot_tile<const R: usize, const O: usize>(
    x: &[f32],
    weight: &[f32],
    outputs: Range<usize>,
    out: &mut [f32],
) {
    let count = outputs.len();
    let inner = x.len() / R;
    let whole = inner / LANES * LANES;
    let tail_mask: __mmask16 = (1u32 << (inner - whole)).wrapping_sub(1) as __mmask16;
    let x_rows: [*const f32; R] = std::array::from_fn(|r| x[r * inner..].as_ptr());
    let mut j = 0;
    while j < count {
        let tile = (count - j).min(O);
        let first = outputs.start + j;
        // A partial tile repeats its last row, whose sums are then not stored.
        let weight_rows: [*const f32; O] =
            std::array::from_fn(|o| weight[(first + o.min(tile - 1)) * inner..].as_ptr());
        let mut sums: [[__m512; O]; R] = [[_mm512_setzero_ps(); O]; R];
        let mut at = 0;
        while at < whole {
            // SAFETY: `at + LANES <= whole <= inner`, and every row pointer starts `inner`
            // elements that lie inside its slice.
            let lines: [__m512; O] =
                std::array::from_fn(|o| unsafe { _mm512_loadu_ps(weight_rows[o].add(at)) });
            for (row_sums, x_row) in sums.iter_mut().zip(&x_rows) {
                let x_line = unsafe { _mm512_loadu_ps(x_row.add(at)) };
                for (sum, &line) in row_sums.iter_mut().zip(&lines) {
                    *sum = _mm512_fmadd_ps(x_line, line, *sum);
                }
            }
            at += LANES;
        }
        if whole < inner {
            // SAFETY: the mask reads only the `inner - whole` elements left in each row.
            let lines: [__m512; O] = std::array::from_fn(|o| unsafe {
                _mm512_maskz_loadu_ps(tail_mask, weight_rows[o].add(whole))
            });
            for (row_sums, x_row) in sums.iter_mut().zip(&x_rows) {
                let x_line = unsafe { _mm512_maskz_loadu_ps(tail_mask, x_row.add(whole)) };
                for (sum, &line) in row_sums.iter_mut().zip(&lines) {
                    *sum = _mm512_fmadd_ps(x_line, line, *sum);
                }
            }
        }
        for (r, row_sums) in sums.iter().enumerate() {
            for (o, &sum) in row_sums.iter().enumerate().take(tile) {
                out[r * count + j + o] = _mm512_reduce_add_ps(sum);
            }
        }
        j += tile;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_plain_product_for_every_row_tile_and_tail() {
        if !std::is_x86_feature_detected!("avx512f") {
            return;
        }
        for (inner, outputs) in [(7, 3), (40, 11), (256, 7), (33, 5), (16, 9)] {
            for rows in 1..=6 {
                let x: Vec<f32> = (0..rows * inner).map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0).collect();
                let weight: Vec<f32> =
                    (0..outputs * inner).map(|i| ((i * 5 % 11) as f32 - 5.0) / 4.0).collect();
                let mut got = vec![f32::NAN; rows * (outputs - 1)];
                // SAFETY: checked above.
                unsafe { tile_times_rows(rows, &x, &weight, 1..outputs, &mut got) };
                for (at, got) in got.iter().enumerate() {
                    let (r, o) = (at / (outputs - 1), 1 + at % (outputs - 1));
                    let want: f32 = (0..inner).map(|k| x[r * inner + k] * weight[o * inner + k]).sum();
                    assert!(
                        (want - got).abs() < 1e-4,
                        "[{rows}, {inner}] row {r} output {o}: {got}, want {want}"
                    );
                }
            }
        }
    }
}

//! Times a dense linear layer's product in the two layouts `model::layers::Rows` chooses between:
//! `Wᵀ` copied contiguous (`[in, out]`) and `W` as checkpoints store it (`[out, in]`, read through
//! its transposed view), for a decoder step's few rows (`model::kernels::matmul`, the weights of a
//! whole step cycled so they come from memory, not cache) and for a prompt's many rows (candle's
//! `gemm`). The figures behind `Rows` in docs/BENCHMARKS.md ("Every core, and the decoder's
//! weights as stored").
//!
//! `RAYON_NUM_THREADS=T cargo run --release --example weight_layouts`

use std::time::Instant;

use candle_core::{Device, Result, Tensor};
use prism_explorer::model::kernels::matmul;

fn best_ms(mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let mut best = f64::INFINITY;
    for _ in 0..9 {
        let start = Instant::now();
        f()?;
        best = best.min(start.elapsed().as_secs_f64() * 1e3);
    }
    Ok(best)
}

fn main() -> Result<()> {
    let dev = Device::Cpu;
    println!("{} thread(s)", rayon::current_num_threads());
    // bart-base's and flan-t5-large's attention and feed-forward shapes, as (out, in).
    for (out, inner) in
        [(768usize, 768usize), (3072, 768), (768, 3072), (1024, 1024), (2816, 1024), (1024, 2816)]
    {
        // 256 MB of distinct weights, far more than the caches.
        let copies = (256usize << 20) / (out * inner * 4);
        let stored: Vec<Tensor> =
            (0..copies).map(|_| Tensor::randn(0f32, 1.0, (out, inner), &dev)).collect::<Result<_>>()?;
        let transposed: Vec<Tensor> = stored.iter().map(|w| w.t()?.contiguous()).collect::<Result<_>>()?;
        let gigabytes = (copies * out * inner * 4) as f64 / 1e9;
        for rows in [1usize, 5, 300] {
            let x = Tensor::randn(0f32, 1.0, (rows, inner), &dev)?;
            let contiguous = best_ms(|| transposed.iter().try_for_each(|w| matmul(&x, w).map(drop)))?;
            let as_stored = best_ms(|| stored.iter().try_for_each(|w| matmul(&x, &w.t()?).map(drop)))?;
            println!(
                "[{rows}, {inner}] x [{inner}, {out}], {copies} weights: Wᵀ contiguous {contiguous:.2} ms ({:.1} GB/s), \
                 W as stored {as_stored:.2} ms ({:.1} GB/s)",
                gigabytes / contiguous * 1e3,
                gigabytes / as_stored * 1e3
            );
        }
    }
    Ok(())
}

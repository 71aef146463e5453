//! Times the CPU products for quantized weights on one matrix shape: `QMatMul::forward` (on
//! AVX-512 VNNI it repacks the weight into 16-row tiles on first use and keeps them beside the
//! blocks), the product on the blocks where they lie that `model::quant` uses (`model::int8` for
//! `Q8_0`, candle's `k_quants::matmul` for `Q4_K`; one copy), and f32 for reference. The figures
//! behind the choice in docs/QUANTIZATION.md.
//!
//! `cargo run --release --example qmatmul_paths -- OUT IN [ROWS…]` (default 1024 4096 1 90).

use std::time::Instant;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use prism_explorer::model::quant::QWeight;

fn best_ms(mut f: impl FnMut()) -> f64 {
    f();
    (0..7)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() -> candle_core::Result<()> {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("numbers")).collect();
    let (n, k) = (args.first().copied().unwrap_or(1024), args.get(1).copied().unwrap_or(4096));
    let rows = if args.len() > 2 { args[2..].to_vec() } else { vec![1, 90] };
    let dev = Device::Cpu;
    let w = Tensor::randn(0f32, 1.0, (n, k), &dev)?;
    let wt = w.t()?;
    for &m in &rows {
        let x = Tensor::randn(0f32, 1.0, (m, k), &dev)?;
        let f = best_ms(|| {
            std::hint::black_box(x.matmul(&wt).unwrap());
        });
        println!("F32 [{n}, {k}] × {m} rows: {f:.3} ms");
    }
    for block in [GgmlDType::Q8_0, GgmlDType::Q4K] {
        let compact = QWeight::quantize(&w, block)?;
        let repacked = QMatMul::from_qtensor(QTensor::quantize(&w, block)?)?;
        for &m in &rows {
            let x = Tensor::randn(0f32, 1.0, (m, k), &dev)?;
            let c = best_ms(|| {
                std::hint::black_box(compact.matmul(&x).unwrap());
            });
            let r = best_ms(|| {
                std::hint::black_box(repacked.forward(&x).unwrap());
            });
            println!("{block:?} [{n}, {k}] × {m} rows: compact {c:.3} ms, QMatMul (repacked) {r:.3} ms");
        }
    }
    Ok(())
}

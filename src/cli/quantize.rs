//! `prism quantize --model DIR --dtype q8|q4 --out DIR`: quantizes a checkpoint's weights once and
//! writes a directory that loads in that precision without quantizing again: `model.gguf` (the
//! quantized matrices in candle's GGUF blocks, everything else f32), with the source's
//! `config.json`, `generation_config.json` and `tokenizer.json` copied beside it
//! (`docs/QUANTIZATION.md`).

use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use clap::Args;
use serde::Serialize;

use super::{print_json, Context};
use crate::durable;
use crate::model::checkpoint::QUANTIZED_WEIGHTS;
use crate::model::{load_model, LoadOptions, Seq2Seq, WeightDtype};

#[derive(Debug, Args)]
pub struct QuantizeArgs {
    /// Checkpoint directory in Hugging Face layout
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// q8 (Q8_0 blocks) or q4 (Q4_K, Q4_0 where a layer's input size is not a multiple of 256)
    #[arg(long, value_name = "DTYPE", value_parser = WeightDtype::parse)]
    pub dtype: WeightDtype,
    /// The directory to write (replaced if it holds an earlier `prism quantize` output)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Serialize)]
struct Output {
    out: PathBuf,
    dtype: WeightDtype,
    /// Matrices stored quantized, and tensors stored f32.
    quantized_tensors: usize,
    dense_tensors: usize,
    /// Bytes of the weights as loaded.
    param_bytes: usize,
    file_bytes: u64,
}

pub fn run(ctx: &Context, args: QuantizeArgs) -> Result<()> {
    if !args.dtype.is_quantized() {
        bail!(
            "--dtype {}: prism quantize writes q8 or q4; f32, bf16 and f16 load from any checkpoint",
            args.dtype
        );
    }
    if args.out.exists() {
        let same = args.out.canonicalize().ok() == args.model.canonicalize().ok();
        let earlier_output = args.out.join(QUANTIZED_WEIGHTS).is_file();
        let empty = args.out.read_dir().map(|mut d| d.next().is_none()).unwrap_or(false);
        if same || !(earlier_output || empty) {
            bail!(
                "--out {} already holds other files; choose a new directory (it is replaced only when it holds an earlier prism quantize output)",
                args.out.display()
            );
        }
    }
    let model = load_model(&args.model, &LoadOptions::inference(candle_core::Device::Cpu, args.dtype))?;
    durable::write_dir(&args.out, |tmp| {
        model.save_quantized(&tmp.join(QUANTIZED_WEIGHTS))?;
        for name in ["config.json", "generation_config.json", "tokenizer.json"] {
            let source = args.model.join(name);
            if source.is_file() {
                std::fs::copy(&source, tmp.join(name))
                    .with_context(|| format!("cannot copy {} to {}", source.display(), tmp.display()))?;
            } else if name != "generation_config.json" {
                bail!(
                    "{} has no {name}; a quantized checkpoint needs one beside its weights",
                    args.model.display()
                );
            }
        }
        Ok(())
    })?;
    let out = Output {
        dtype: args.dtype,
        quantized_tensors: model.quantized_tensors().len(),
        dense_tensors: model.named_tensors().len(),
        param_bytes: model.info().param_bytes,
        file_bytes: std::fs::metadata(args.out.join(QUANTIZED_WEIGHTS))?.len(),
        out: args.out,
    };
    if ctx.json {
        return print_json(&out);
    }
    println!(
        "wrote {} ({}: {} matrices quantized, {} tensors f32; {:.1} MB of weights)",
        out.out.display(),
        out.dtype,
        out.quantized_tensors,
        out.dense_tensors,
        out.param_bytes as f64 / 1e6
    );
    Ok(())
}

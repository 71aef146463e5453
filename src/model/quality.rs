//! How far a model in a lower precision (`bf16`, `f16`, `q8`, `q4`) strays from the same
//! checkpoint in f32: the f32 model decodes each input greedily, then both models read that
//! output teacher-forced (step by step through the KV cache, as generation reads it), and at
//! every generated position we compare their greedy choice (the argmax of the raw logits) and the
//! log-probability each gives the f32 model's token.

use anyhow::{ensure, Result};
use candle_core::{DType, Device, Tensor, D};
use serde::Serialize;

use super::generate::{self, GenerationConfig, Hooks};
use super::Seq2Seq;

/// Agreement of a candidate model with the f32 reference over a set of inputs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Agreement {
    /// The candidate's precision.
    pub dtype: String,
    pub inputs: usize,
    /// Generated positions compared (the reference's new tokens, EOS included).
    pub tokens: usize,
    /// Share of positions where both models' argmax is the same token.
    pub greedy_agreement: f64,
    /// Mean over positions of |log p_candidate(t) − log p_f32(t)| for the f32 model's token t.
    pub mean_abs_logprob_diff: f64,
    /// Share of inputs whose whole greedy output the candidate decodes identically.
    pub identical_outputs: f64,
}

/// Compares `candidate` with `reference` (the same checkpoint in f32) on `inputs` (token ids,
/// one input at a time), decoding greedily with `cfg` (its beam width is set to 1).
pub fn compare(
    reference: &dyn Seq2Seq,
    candidate: &dyn Seq2Seq,
    device: &Device,
    inputs: &[Vec<u32>],
    cfg: &GenerationConfig,
) -> Result<Agreement> {
    ensure!(!inputs.is_empty(), "no inputs to compare the models on");
    let cfg = GenerationConfig { num_beams: 1, do_sample: false, ..cfg.clone() };
    let (mut tokens, mut agreeing, mut identical) = (0usize, 0usize, 0usize);
    let mut abs_diff = 0f64;
    for input in inputs {
        let one = std::slice::from_ref(input);
        let reference_out = generate::generate(reference, device, one, &cfg, Hooks::default())?;
        let candidate_out = generate::generate(candidate, device, one, &cfg, Hooks::default())?;
        let target = &reference_out.sequences[0];
        identical += usize::from(&candidate_out.sequences[0] == target);
        if target.is_empty() {
            continue;
        }
        let (ref_logp, ref_argmax) = teacher_forced(reference, device, input, target, &cfg)?;
        let (cand_logp, cand_argmax) = teacher_forced(candidate, device, input, target, &cfg)?;
        for (i, &token) in target.iter().enumerate() {
            let token = token as usize;
            abs_diff += f64::from((cand_logp[i][token] - ref_logp[i][token]).abs());
            agreeing += usize::from(cand_argmax[i] == ref_argmax[i]);
        }
        tokens += target.len();
    }
    Ok(Agreement {
        dtype: candidate.info().dtype.name().into(),
        inputs: inputs.len(),
        tokens,
        greedy_agreement: agreeing as f64 / tokens.max(1) as f64,
        mean_abs_logprob_diff: abs_diff / tokens.max(1) as f64,
        identical_outputs: identical as f64 / inputs.len() as f64,
    })
}

/// Log-probabilities `[positions][vocab]` and argmax per position of `model` reading `target`
/// after the decoder start token, one position at a time through its KV cache, as generation
/// reads it (so a model that caches keys and values in 8 bits is measured with them).
fn teacher_forced(
    model: &dyn Seq2Seq,
    device: &Device,
    input: &[u32],
    target: &[u32],
    cfg: &GenerationConfig,
) -> Result<(Vec<Vec<f32>>, Vec<u32>)> {
    let ids = Tensor::new(input, device)?.unsqueeze(0)?;
    let mask = Tensor::ones((1, input.len()), DType::U8, device)?;
    let encoder_hidden = model.encode(&ids, &mask)?;
    let mut cache = model.new_cache();
    let previous =
        std::iter::once(cfg.decoder_start_token_id).chain(target[..target.len() - 1].iter().copied());
    let steps = previous
        .map(|token| {
            let step = Tensor::new(&[[token]], device)?;
            model.decode_step(&step, &encoder_hidden, &mask, &mut cache)?.squeeze(0)?.to_dtype(DType::F32)
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    let logits = Tensor::cat(&steps, 0)?;
    let argmax = logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
    let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?.to_vec2::<f32>()?;
    Ok((log_probs, argmax))
}

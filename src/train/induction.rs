//! A fresh encoder-decoder that starts as an *induction copier*: from the first step it predicts
//! the input token that follows the token it has just written, so a model trained from random
//! weights on a small corpus only has to learn where to start copying and when to stop, not how to
//! copy (docs/EMBEDDED_MODELS.md: 60× the input gain of random weights on the Oracle's task). The
//! weights are still an ordinary T5's or BART's; only their starting values differ.
//!
//! The circuit, with `k` the head size and a few `k`-wide bands of the residual stream kept free
//! for it (the token embeddings start at zero there):
//! - in the encoder's first layer, head 0 attends to the previous position (T5: a large
//!   relative-position bias for distance −1; BART: sinusoidal position embeddings in a band of
//!   their own, rotated by one step between query and key) and writes a random sketch `P·x` of that
//!   token into the *sketch band*;
//! - the decoder's first cross-attention heads query with the same sketch of the token just written
//!   and key on the sketch band, so they attend to where that token was followed, and copy the
//!   embedding found there (each head a `k`-wide slice of it) into the residual stream, which the
//!   tied output embeddings turn into that token's logit;
//! - every other attention and feed-forward output projection starts at zero, so the layers pass
//!   the residual stream through unchanged until training gives them something to add.

use std::collections::HashMap;

use anyhow::{ensure, Context, Result};
use candle_core::{Tensor, Var};
use rand::{Rng, SeedableRng};

use super::trainer::TrainableModel;
use crate::model::bart::BartConfig;
use crate::model::checkpoint;
use crate::model::t5::{relative_position_bucket, T5Config};
use crate::model::Arch;

/// The previous-token head's bias for distance −1: far above its other attention scores.
const PREVIOUS_TOKEN_BIAS: f32 = 30.0;
/// Cross-attention score of a position that followed the token just written: high enough that a
/// few hundred other positions do not dilute it.
const MATCH_SCORE: f32 = 25.0;
/// Weight of the copied token against the token just written, both in the residual stream: above 1,
/// so the next token wins over a repetition.
const COPY_WEIGHT: f32 = 2.0;

/// Sets `model` (fresh weights of `config`, tied embeddings) to the induction copier described
/// above; `seed` draws the sketch.
pub fn start_as_induction_copier(
    model: &TrainableModel,
    config: &serde_json::Value,
    seed: u64,
) -> Result<()> {
    ensure!(
        config.get("tie_word_embeddings").and_then(|v| v.as_bool()).unwrap_or(true),
        "the induction init copies through tied word embeddings (tie_word_embeddings = true)"
    );
    let vars: HashMap<String, Var> = model.vars().into_iter().collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    match checkpoint::detect_arch(config)? {
        Arch::T5 => start_t5(&vars, config, &mut rng),
        Arch::Bart => start_bart(&vars, config, &mut rng),
    }
}

/// The weight `name` of `vars`.
fn weight<'a>(vars: &'a HashMap<String, Var>, name: &str) -> Result<&'a Var> {
    vars.get(name).with_context(|| format!("the model has no weight {name}"))
}

/// A random sign matrix `rows × cols`, each row of unit norm: a Johnson–Lindenstrauss sketch.
fn sketch(rows: usize, cols: usize, rng: &mut impl Rng) -> Vec<f32> {
    let entry = (1.0 / cols as f32).sqrt();
    (0..rows * cols).map(|_| if rng.random::<bool>() { entry } else { -entry }).collect()
}

fn start_t5(vars: &HashMap<String, Var>, config: &serde_json::Value, rng: &mut impl Rng) -> Result<()> {
    let cfg: T5Config = serde_json::from_value(config.clone()).context("not a T5 configuration")?;
    let (d, k, heads) = (cfg.d_model, cfg.d_kv, cfg.num_heads);
    ensure!(
        heads >= 2 && heads * k == d,
        "the induction init needs at least two heads of d_kv × num_heads = d_model (have {heads} × {k}, d_model {d})"
    );
    let embedding_dims = d - k;
    let var = |name: &str| weight(vars, name);
    let sketch = sketch(k, embedding_dims, rng);
    // `|P·x|²` for a normalised token (mean square 1 over d dimensions): the score of a match.
    let match_scale = MATCH_SCORE / (d as f32 * k as f32 / embedding_dims as f32);

    edit(var("shared.weight")?, |_, col, value| if col < embedding_dims { value } else { 0.0 })?;

    let previous = "encoder.block.0.layer.0.SelfAttention";
    let bucket = relative_position_bucket(
        -1,
        true,
        cfg.relative_attention_num_buckets,
        cfg.relative_attention_max_distance,
    ) as usize;
    edit(var(&format!("{previous}.relative_attention_bias.weight"))?, |row, col, value| {
        if row == bucket && col == 0 {
            PREVIOUS_TOKEN_BIAS
        } else {
            value
        }
    })?;
    for projection in ["q", "k"] {
        edit(
            var(&format!("{previous}.{projection}.weight"))?,
            |row, _, value| if row < k { 0.0 } else { value },
        )?;
    }
    edit(var(&format!("{previous}.v.weight"))?, |row, col, value| match (row < k, col < embedding_dims) {
        (true, true) => sketch[row * embedding_dims + col],
        (true, false) => 0.0,
        (false, _) => value,
    })?;
    edit(var(&format!("{previous}.o.weight"))?, |row, col, _| {
        indicator(col < k && row == embedding_dims + col)
    })?;

    let copier = "decoder.block.0.layer.1.EncDecAttention";
    let projections = ["q", "k", "v", "o"].map(|p| format!("{copier}.{p}.weight"));
    start_copier(vars, &projections, 0..embedding_dims, embedding_dims, k, &sketch, match_scale)?;

    let designed = [format!("{previous}.o.weight"), format!("{copier}.o.weight")];
    for (name, var) in vars {
        let passes_through = name.ends_with(".o.weight") && !designed.contains(name)
            || name.ends_with(".DenseReluDense.wo.weight");
        if passes_through {
            var.set(&var.zeros_like()?)?;
        }
    }
    Ok(())
}

/// BART's bands: token embeddings in `[0, d − 2k)`, sinusoidal positions in `[d − 2k, d − k)`, the
/// sketch in `[d − k, d)`.
fn start_bart(vars: &HashMap<String, Var>, config: &serde_json::Value, rng: &mut impl Rng) -> Result<()> {
    let cfg: BartConfig = serde_json::from_value(config.clone()).context("not a BART configuration")?;
    let (d, heads) = (cfg.d_model, cfg.encoder_attention_heads);
    ensure!(
        heads == cfg.decoder_attention_heads && heads >= 3 && d % heads == 0 && !cfg.normalize_before,
        "the induction init needs a post-norm BART with the same number (at least 3) of encoder and \
         decoder heads (have {heads} and {})",
        cfg.decoder_attention_heads
    );
    let k = d / heads;
    let (tokens, positions, sketched) = (0..d - 2 * k, d - 2 * k..d - k, d - k..d);
    let var = |name: &str| weight(vars, name);
    let sketch = sketch(k, tokens.len(), rng);
    let frequencies = distinct_frequencies(k / 2, cfg.max_position_embeddings, rng);
    let scale = (k as f32).powf(-0.5);

    // Tokens and positions of the same per-dimension scale, so that `layernorm_embedding` leaves
    // both bands at about unit scale; TOKEN_SCALE sets the copied token's logit (about 12).
    edit(var("model.shared.weight")?, |_, col, value| {
        if tokens.contains(&col) {
            value / cfg.init_std as f32 * TOKEN_SCALE
        } else {
            0.0
        }
    })?;
    let amplitude = TOKEN_SCALE * std::f32::consts::SQRT_2;
    for stack in ["encoder", "decoder"] {
        edit(var(&format!("model.{stack}.embed_positions.weight"))?, |row, col, _| {
            if !positions.contains(&col) || row < BART_POSITION_OFFSET {
                return 0.0;
            }
            let angle = frequencies[(col - positions.start) / 2] * (row - BART_POSITION_OFFSET) as f32;
            amplitude * if (col - positions.start) % 2 == 0 { angle.cos() } else { angle.sin() }
        })?;
    }

    // After `layernorm_embedding` each dimension of the token and position bands has a mean square
    // of `unit` (the sketch band is still empty).
    let previous = "model.encoder.layers.0.self_attn";
    let unit = d as f32 / (d - k) as f32;
    let rotation_gain = PREVIOUS_TOKEN_SCORE / (scale * unit * 2.0 * (k / 2) as f32);
    edit(var(&format!("{previous}.q_proj.weight"))?, |row, col, value| {
        if row >= k {
            return value;
        }
        if !positions.contains(&col) || (col - positions.start) / 2 != row / 2 {
            return 0.0;
        }
        // Rotates the pair of position `i` back by one step, to position `i − 1`.
        let w = frequencies[row / 2];
        let (c, s) = (w.cos(), w.sin());
        rotation_gain
            * match (row % 2, (col - positions.start) % 2) {
                (0, 0) => c,
                (0, _) => s,
                (_, 0) => -s,
                _ => c,
            }
    })?;
    edit(var(&format!("{previous}.k_proj.weight"))?, |row, col, value| match row < k {
        true => indicator(col == positions.start + row),
        false => value,
    })?;
    edit(var(&format!("{previous}.v_proj.weight"))?, |row, col, value| {
        match (row < k, tokens.contains(&col)) {
            (true, true) => sketch[row * tokens.len() + col],
            (true, false) => 0.0,
            (false, _) => value,
        }
    })?;
    edit(var(&format!("{previous}.out_proj.weight"))?, |row, col, _| {
        indicator(col < k && row == sketched.start + col)
    })?;

    let copier = "model.decoder.layers.0.encoder_attn";
    // The match score is `scale · gain · |P·x|²`, with `|P·x|² ≈ k · unit` for the query's token.
    let match_gain = MATCH_SCORE / (scale * k as f32 * unit);
    let projections = ["q_proj", "k_proj", "v_proj", "out_proj"].map(|p| format!("{copier}.{p}.weight"));
    start_copier(vars, &projections, tokens.clone(), sketched.start, k, &sketch, match_gain)?;

    let designed = [format!("{previous}.out_proj.weight"), format!("{copier}.out_proj.weight")];
    for (name, var) in vars {
        let passes_through = (name.ends_with(".out_proj.weight") && !designed.contains(name))
            || name.ends_with(".fc2.weight")
            || name.ends_with(".out_proj.bias")
            || name.ends_with(".fc2.bias")
            || ((name.ends_with(".q_proj.bias")
                || name.ends_with(".k_proj.bias")
                || name.ends_with(".v_proj.bias"))
                && (name.starts_with(previous) || name.starts_with(copier)));
        if passes_through {
            var.set(&var.zeros_like()?)?;
        }
    }
    Ok(())
}

/// BART's learned positions start at row 2 (transformers' offset).
const BART_POSITION_OFFSET: usize = 2;
/// Per-dimension scale of BART's token embeddings under the induction init.
const TOKEN_SCALE: f32 = 0.16;
/// BART's previous-token score at distance −1; other distances score lower by the frequencies'
/// interference (at least a third less: [`distinct_frequencies`]).
const PREVIOUS_TOKEN_SCORE: f32 = 40.0;

/// `n` angular frequencies for sinusoidal positions whose sum `Σ cos(ω·Δ)` peaks only at `Δ = 0`
/// within `max_distance`: the best of a few seeded draws from `[0.5, π]`.
fn distinct_frequencies(n: usize, max_distance: usize, rng: &mut impl Rng) -> Vec<f32> {
    let worst_echo = |frequencies: &[f32]| {
        (1..=max_distance)
            .map(|delta| frequencies.iter().map(|w| (w * delta as f32).cos()).sum::<f32>())
            .fold(f32::MIN, f32::max)
    };
    (0..16)
        .map(|_| (0..n).map(|_| rng.random_range(0.5..std::f32::consts::PI)).collect::<Vec<f32>>())
        .min_by(|a, b| worst_echo(a).total_cmp(&worst_echo(b)))
        .expect("sixteen draws")
}

/// The copier heads of a cross-attention (`projections`: query, key, value and output weights): the
/// heads over the `tokens` band query with `gain` times the sketch of the token just written, key on
/// the sketch band starting at `sketch_band`, and copy their own slice of the token band.
fn start_copier(
    vars: &HashMap<String, Var>,
    projections: &[String; 4],
    tokens: std::ops::Range<usize>,
    sketch_band: usize,
    k: usize,
    sketch: &[f32],
    gain: f32,
) -> Result<()> {
    let [query, key, value, output] = projections;
    let copying_head = |row: usize| tokens.contains(&row);
    edit(weight(vars, query)?, |row, col, _| {
        if copying_head(row) && tokens.contains(&col) {
            gain * sketch[(row % k) * tokens.len() + col]
        } else {
            0.0
        }
    })?;
    edit(weight(vars, key)?, |row, col, _| indicator(copying_head(row) && col == sketch_band + row % k))?;
    edit(weight(vars, value)?, |row, col, _| indicator(copying_head(row) && col == row))?;
    edit(weight(vars, output)?, |row, col, _| COPY_WEIGHT * indicator(copying_head(col) && row == col))
}

/// 1 where `condition` holds, else 0.
fn indicator(condition: bool) -> f32 {
    if condition {
        1.0
    } else {
        0.0
    }
}

/// Replaces each entry of the matrix `weight` by `f(row, column, value)`.
fn edit(weight: &Var, f: impl Fn(usize, usize, f32) -> f32) -> Result<()> {
    let (rows, cols) = weight.dims2()?;
    let values = weight.as_tensor().flatten_all()?.to_vec1::<f32>()?;
    let edited: Vec<f32> = values.iter().enumerate().map(|(i, &v)| f(i / cols, i % cols, v)).collect();
    weight.set(&Tensor::from_vec(edited, (rows, cols), weight.device())?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::generate::pad_batch;
    use crate::model::Seq2Seq;
    use candle_core::{Device, D};

    /// Greedy next tokens of `model` for each prefix of `written`, reading `source`.
    fn next_tokens(model: &TrainableModel, source: &[u32], written: &[u32]) -> Vec<u32> {
        let device = Device::Cpu;
        let (input_ids, mask) = pad_batch(&[source.to_vec()], 0, &device).unwrap();
        let decoder_ids = Tensor::new(written, &device).unwrap().unsqueeze(0).unwrap();
        let logits = model.model.forward_train(&input_ids, &mask, &decoder_ids, None).unwrap();
        logits.argmax(D::Minus1).unwrap().squeeze(0).unwrap().to_vec1::<u32>().unwrap()
    }

    /// Both families: random weights do not copy; the induction copier follows the source.
    fn check_copier(config: serde_json::Value, start: u32) {
        let source = [7u32, 30, 12, 55, 41, 9, 23, 60, 18, 33, 2];
        // The decoder has written the start token and then source[3..9]; each next token is the
        // one that followed it in the source.
        let written = [start, 55, 41, 9, 23, 60, 18];
        let followers = [41u32, 9, 23, 60, 18, 33];
        let model = TrainableModel::fresh_seeded(&config, &Device::Cpu, 5).unwrap();
        let copied = |m: &TrainableModel| {
            let next = next_tokens(m, &source, &written);
            next[1..].iter().zip(&followers).filter(|(a, b)| a == b).count()
        };
        assert!(copied(&model) <= 1, "random weights do not copy");
        start_as_induction_copier(&model, &config, 11).unwrap();
        assert_eq!(&next_tokens(&model, &source, &written)[1..], &followers, "the copier follows the source");
    }

    #[test]
    fn a_fresh_t5_writes_what_followed_the_token_it_just_wrote() {
        check_copier(
            serde_json::json!({
                "model_type": "t5", "d_model": 128, "d_kv": 32, "d_ff": 64, "num_layers": 2,
                "num_decoder_layers": 2, "num_heads": 4, "vocab_size": 64, "feed_forward_proj": "gated-gelu",
                "dropout_rate": 0.0, "tie_word_embeddings": true, "pad_token_id": 0, "eos_token_id": 1,
                "decoder_start_token_id": 0, "relative_attention_num_buckets": 8,
                "relative_attention_max_distance": 16
            }),
            0,
        );
    }

    #[test]
    fn a_fresh_bart_writes_what_followed_the_token_it_just_wrote() {
        check_copier(
            serde_json::json!({
                "model_type": "bart", "d_model": 128, "encoder_layers": 2, "decoder_layers": 1,
                "encoder_attention_heads": 4, "decoder_attention_heads": 4, "encoder_ffn_dim": 64,
                "decoder_ffn_dim": 64, "max_position_embeddings": 64, "vocab_size": 64,
                "activation_function": "gelu", "dropout": 0.0, "init_std": 0.02, "scale_embedding": false,
                "tie_word_embeddings": true, "bos_token_id": 0, "pad_token_id": 1, "eos_token_id": 2,
                "decoder_start_token_id": 2
            }),
            2,
        );
    }

    #[test]
    fn the_induction_init_needs_a_free_head_and_tied_embeddings() {
        let mut config = serde_json::json!({
            "model_type": "t5", "d_model": 32, "d_kv": 32, "d_ff": 64, "num_layers": 1,
            "num_decoder_layers": 1, "num_heads": 1, "vocab_size": 16, "tie_word_embeddings": true
        });
        let model = TrainableModel::fresh_seeded(&config, &Device::Cpu, 1).unwrap();
        let err = start_as_induction_copier(&model, &config, 1).unwrap_err().to_string();
        assert!(err.contains("at least two heads"), "{err}");
        config["num_heads"] = 2.into();
        config["d_kv"] = 16.into();
        config["tie_word_embeddings"] = false.into();
        let model = TrainableModel::fresh_seeded(&config, &Device::Cpu, 1).unwrap();
        let err = start_as_induction_copier(&model, &config, 1).unwrap_err().to_string();
        assert!(err.contains("tied word embeddings"), "{err}");
    }
}

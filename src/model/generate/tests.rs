//! Search tests against a scripted model whose next-token distribution is a plain function of
//! (input tokens, generated prefix), so expected outputs can be worked out by hand or by
//! exhaustive search. The scripted model keeps its prefix in the KV cache, so a wrong cache
//! reorder or a wrong padding mask changes its answers.

use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{DType, Device, Tensor};

use super::*;
use crate::model::{Arch, Cached, ModelInfo};

const PAD: u32 = 0;
const EOS: u32 = 1;
const A: u32 = 2;
const B: u32 = 3;

type Script = dyn Fn(&[u32], &[u32]) -> Vec<f32> + Send + Sync;

struct ScriptedModel {
    info: ModelInfo,
    script: Box<Script>,
}

impl ScriptedModel {
    fn new(vocab: usize, script: impl Fn(&[u32], &[u32]) -> Vec<f32> + Send + Sync + 'static) -> Self {
        let info = ModelInfo {
            dtype: crate::model::WeightDtype::F32,
            arch: Arch::T5,
            vocab_size: vocab,
            d_model: 1,
            num_decoder_layers: 1,
            max_input_positions: None,
            param_count: 0,
            param_bytes: 0,
            decoder_start_token_id: PAD,
            pad_token_id: PAD,
            eos_token_id: EOS,
            bos_token_id: None,
            forced_bos_token_id: None,
            forced_eos_token_id: None,
        };
        ScriptedModel { info, script: Box::new(script) }
    }
}

impl Seq2Seq for ScriptedModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Hidden state = the token id where the mask is 1, -1 where it is 0.
    fn encode(&self, input_ids: &Tensor, attention_mask: &Tensor) -> candle_core::Result<Tensor> {
        let ids = input_ids.to_dtype(DType::F32)?;
        let mask = attention_mask.to_dtype(DType::F32)?;
        ((ids * &mask)? + (mask - 1.0)?)?.unsqueeze(2)
    }

    fn decode_step(
        &self,
        decoder_input_ids: &Tensor,
        encoder_hidden: &Tensor,
        _encoder_mask: &Tensor,
        cache: &mut KvCache,
    ) -> candle_core::Result<Tensor> {
        let rows = decoder_input_ids.dim(0)?;
        let new = decoder_input_ids.to_dtype(DType::F32)?.reshape((rows, 1, 1, 1))?;
        let layer = &mut cache.layers[0];
        let all = match &layer.self_kv {
            Some((Cached::Float(k), _)) => Tensor::cat(&[k, &new], 2)?,
            _ => new,
        };
        layer.self_kv = Some((Cached::Float(all.clone()), Cached::Float(all.clone())));
        if layer.cross_kv.is_none() {
            let enc = Cached::Float(encoder_hidden.unsqueeze(1)?);
            layer.cross_kv = Some((enc.clone(), enc));
        }
        let prefixes = all.squeeze(3)?.squeeze(1)?.to_vec2::<f32>()?;
        let inputs = encoder_hidden.squeeze(2)?.to_vec2::<f32>()?;
        // Beam search gives each input's adjacent beam rows one shared encoder row.
        let beams = rows / inputs.len();
        let mut logits = Vec::new();
        for (row, prefix) in prefixes.iter().enumerate() {
            let input = &inputs[row / beams];
            let input: Vec<u32> = input.iter().filter(|&&x| x >= 0.0).map(|&x| x as u32).collect();
            let prefix: Vec<u32> = prefix[1..].iter().map(|&x| x as u32).collect();
            logits.extend((self.script)(&input, &prefix));
        }
        let vocab = self.info.vocab_size;
        Tensor::from_vec(logits, (rows, 1, vocab), encoder_hidden.device())
    }

    fn forward_train(
        &self,
        _: &Tensor,
        _: &Tensor,
        _: &Tensor,
        _: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        candle_core::bail!("the scripted model only decodes step by step")
    }
}

/// Logits `ln p` over `[pad, eos, A, B]` for a table of prefixes; anything else gets `default`.
fn table(rows: &'static [(&'static [u32], [f32; 4])], default: [f32; 4]) -> ScriptedModel {
    ScriptedModel::new(4, move |_input, prefix| {
        let p = rows.iter().find(|(k, _)| *k == prefix).map_or(default, |(_, p)| *p);
        p.iter().map(|&x| x.ln()).collect()
    })
}

/// Deterministic pseudo-random logits in [-3, 3) from a hash of (seed, input, prefix, token).
fn hashed(vocab: usize, seed: u64) -> ScriptedModel {
    ScriptedModel::new(vocab, move |input, prefix| {
        let mut h = seed ^ 0xcbf2_9ce4_8422_2325;
        for &t in input.iter().chain([&u32::MAX]).chain(prefix) {
            h = (h ^ t as u64).wrapping_mul(0x1000_0000_01b3);
        }
        (0..vocab as u64)
            .map(|v| {
                let x = (h ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                let x = (x ^ (x >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                ((x >> 40) as f32 / (1u64 << 24) as f32) * 6.0 - 3.0
            })
            .collect()
    })
}

fn config(max_new_tokens: usize, num_beams: usize) -> GenerationConfig {
    GenerationConfig {
        max_new_tokens,
        num_beams,
        top_k: 0,
        ..GenerationConfig::from_model_info(&hashed(4, 0).info)
    }
}

fn run(model: &ScriptedModel, inputs: &[Vec<u32>], cfg: &GenerationConfig) -> Generation {
    generate(model, &Device::Cpu, inputs, cfg, Hooks::default()).unwrap()
}

fn assert_close(a: f32, b: f32) {
    assert!((a - b).abs() < 1e-5, "{a} != {b}");
}

const P0: f32 = 0.0;

/// After []: A .5, B .4, eos .1; after [A]: B .6; after [B]: eos .9.
static EXAMPLE_ONE: &[(&[u32], [f32; 4])] =
    &[(&[], [P0, 0.1, 0.5, 0.4]), (&[A], [P0, 0.3, 0.1, 0.6]), (&[B], [P0, 0.9, 0.05, 0.05])];

#[test]
fn greedy_follows_the_most_likely_token() {
    let model = table(EXAMPLE_ONE, [P0, 0.5, 0.25, 0.25]);
    let out = run(&model, &[vec![5]], &config(3, 1));
    assert_eq!(out.sequences, vec![vec![A, B, EOS]]);
    assert_close(out.scores[0], 0.15f32.ln());
    assert_eq!(out.finished, vec![true]);
    assert!(!out.cancelled);
    assert_eq!(out.stats.steps, 3);
    assert_eq!(out.stats.new_tokens, 3);
}

#[test]
fn beam_search_finds_the_short_likely_hypothesis_greedy_misses() {
    // Worked by hand: step 2 ranks [B,eos] (ln .4 + ln .9) first; normalised by 2 it beats
    // [A,B,eos] normalised by 3.
    let model = table(EXAMPLE_ONE, [P0, 0.5, 0.25, 0.25]);
    let out = run(&model, &[vec![5]], &config(3, 2));
    assert_eq!(out.sequences, vec![vec![B, EOS]]);
    assert_close(out.scores[0], (0.4f32.ln() + 0.9f32.ln()) / 2.0);
    assert_eq!(out.finished, vec![true]);
}

/// After []: A .5, eos .3, B .2; after [A]: eos .6, A .4; after [A,A]: eos .9, A .1.
static EXAMPLE_EARLY: &[(&[u32], [f32; 4])] =
    &[(&[], [P0, 0.3, 0.5, 0.2]), (&[A], [P0, 0.6, 0.4, P0]), (&[A, A], [P0, 0.9, 0.1, P0])];

#[test]
fn early_stopping_true_stops_when_the_heap_is_full_false_looks_further() {
    // Step 2 fills the heap with [eos] and [A,eos]. `true` stops there; `false` sees that the
    // running [A,A] (ln .5 + ln .4, over 2) could still beat the worst finished one and finds
    // [A,A,eos], whose normalised score beats [A,eos].
    let model = table(EXAMPLE_EARLY, [P0, 0.5, 0.25, 0.25]);
    let eager = GenerationConfig { early_stopping: EarlyStopping::Eager, ..config(4, 2) };
    let out = run(&model, &[vec![5]], &eager);
    assert_eq!(out.sequences, vec![vec![A, EOS]]);
    assert_close(out.scores[0], (0.5f32.ln() + 0.6f32.ln()) / 2.0);

    let heuristic = GenerationConfig { early_stopping: EarlyStopping::Heuristic, ..config(4, 2) };
    let out = run(&model, &[vec![5]], &heuristic);
    assert_eq!(out.sequences, vec![vec![A, A, EOS]]);
    assert_close(out.scores[0], (0.5f32.ln() + 0.4f32.ln() + 0.9f32.ln()) / 3.0);
    // It stops at step 3: the best running beam can no longer catch up.
    assert_eq!(out.stats.steps, 3);
}

/// After []: A .6, B .4; after [A]: eos .6, A .4; after [B]: eos .7, B .3; after [A,A]: B .99;
/// after [A,A,B]: eos .99.
static EXAMPLE_NEVER: &[(&[u32], [f32; 4])] = &[
    (&[], [P0, P0, 0.6, 0.4]),
    (&[A], [P0, 0.6, 0.4, P0]),
    (&[B], [P0, 0.7, P0, 0.3]),
    (&[A, A], [P0, 0.01, P0, 0.99]),
    (&[A, A, B], [P0, 0.99, 0.01, P0]),
];

#[test]
fn early_stopping_never_keeps_searching_for_longer_better_hypotheses() {
    // Step 2 finishes [A,eos] and [B,eos]; the running [A,A] (-1.43) over the current length 2
    // cannot beat them, so `false` stops; `"never"` bounds it by the maximum length (4) and
    // goes on to find [A,A,B,eos].
    let model = table(EXAMPLE_NEVER, [P0, 0.5, 0.25, 0.25]);
    let heuristic = config(4, 2);
    let out = run(&model, &[vec![5]], &heuristic);
    assert_eq!(out.sequences, vec![vec![A, EOS]]);
    assert_eq!(out.stats.steps, 2);

    let never = GenerationConfig { early_stopping: EarlyStopping::Never, ..config(4, 2) };
    let out = run(&model, &[vec![5]], &never);
    assert_eq!(out.sequences, vec![vec![A, A, B, EOS]]);
    let expected = (0.6f32.ln() + 0.4f32.ln() + 0.99f32.ln() + 0.99f32.ln()) / 4.0;
    assert_close(out.scores[0], expected);
}

/// Best hypothesis by exhaustive enumeration: every sequence that ends with EOS, or reaches
/// `max_new_tokens`, scored `sum(processed log-probs) / len^length_penalty`.
fn exhaustive_best(model: &ScriptedModel, input: &[u32], cfg: &GenerationConfig) -> (Vec<u32>, f32) {
    let vocab = model.info.vocab_size;
    let mut best: Option<(Vec<u32>, f32)> = None;
    let mut stack: Vec<(Vec<u32>, f32)> = vec![(vec![], 0.0)];
    while let Some((prefix, sum)) = stack.pop() {
        let mut scores = (model.script)(input, &prefix);
        crate::model::kernels::log_softmax_in_place(&mut scores);
        let mut seq = vec![cfg.decoder_start_token_id];
        seq.extend(&prefix);
        logits::process(&mut scores, &seq, cfg);
        for t in 0..vocab as u32 {
            let s = sum + scores[t as usize];
            if s == f32::NEG_INFINITY {
                continue;
            }
            let mut next = prefix.clone();
            next.push(t);
            if t == EOS || next.len() == cfg.max_new_tokens {
                let norm = s / (next.len() as f32).powf(cfg.length_penalty);
                if best.as_ref().is_none_or(|(_, b)| norm > *b) {
                    best = Some((next, norm));
                }
            } else {
                stack.push((next, s));
            }
        }
    }
    best.unwrap()
}

#[test]
fn beam_search_with_room_for_every_hypothesis_equals_exhaustive_search() {
    // With more beams than live hypotheses and early_stopping = "never", nothing is pruned and
    // HF's beam search is exact, whatever the length penalty.
    for seed in 0..6 {
        let model = hashed(4, seed);
        for (lp, min_new, ngram) in [(1.0, 0, 0), (0.0, 0, 0), (2.0, 1, 0), (-0.5, 0, 2), (1.0, 2, 2)] {
            let cfg = GenerationConfig {
                length_penalty: lp,
                early_stopping: EarlyStopping::Never,
                min_new_tokens: min_new,
                no_repeat_ngram_size: ngram,
                ..config(3, 27)
            };
            let input = vec![seed as u32 + 2, 3];
            let (expected, score) = exhaustive_best(&model, &input, &cfg);
            let out = run(&model, &[input], &cfg);
            assert_eq!(out.sequences[0], expected, "seed {seed} lp {lp} min {min_new} ngram {ngram}");
            assert_close(out.scores[0], score);
        }
    }
}

#[test]
fn batched_inputs_of_different_lengths_match_one_at_a_time() {
    let model = hashed(12, 3);
    let inputs = vec![vec![4, 5, 6], vec![7, 8, 9, 10, 11], vec![2], vec![4, 5, 6]];
    for (beams, sample) in [(1, false), (3, false), (1, true)] {
        let cfg = GenerationConfig { do_sample: sample, seed: 11, top_k: 5, ..config(6, beams) };
        let batched = run(&model, &inputs, &cfg);
        for (i, input) in inputs.iter().enumerate() {
            let alone_cfg = GenerationConfig { seed: cfg.seed + i as u64, ..cfg.clone() };
            let alone = run(&model, std::slice::from_ref(input), &alone_cfg);
            assert_eq!(batched.sequences[i], alone.sequences[0], "input {i}, beams {beams}, sample {sample}");
            assert_close(batched.scores[i], alone.scores[0]);
        }
        // The padding mask reaches the model: inputs that differ give different outputs.
        assert_ne!(batched.sequences[0], batched.sequences[1]);
    }
}

#[test]
fn sampling_is_reproducible_for_a_seed_and_varies_across_seeds() {
    let model = hashed(16, 5);
    let input = vec![vec![3, 4]];
    let cfg = |seed| GenerationConfig { do_sample: true, seed, top_k: 0, ..config(8, 1) };
    let first = run(&model, &input, &cfg(42));
    assert_eq!(first.sequences, run(&model, &input, &cfg(42)).sequences);
    let distinct: std::collections::HashSet<Vec<u32>> =
        (0..8).map(|s| run(&model, &input, &cfg(s)).sequences[0].clone()).collect();
    assert!(distinct.len() > 1, "eight seeds gave one output");
    // top-k = 1 leaves one token to draw: sampling becomes greedy.
    let greedy = run(&model, &input, &config(8, 1));
    let top1 = GenerationConfig { top_k: 1, ..cfg(9) };
    assert_eq!(run(&model, &input, &top1).sequences, greedy.sequences);
}

#[test]
fn min_new_tokens_and_forced_tokens_shape_the_output() {
    // The model wants EOS at once.
    let model = table(&[], [P0, 0.9, 0.06, 0.04]);
    let out = run(&model, &[vec![5]], &config(5, 1));
    assert_eq!(out.sequences[0], vec![EOS]);
    let cfg = GenerationConfig { min_new_tokens: 3, ..config(5, 1) };
    assert_eq!(run(&model, &[vec![5]], &cfg).sequences[0], vec![A, A, A, EOS]);
    let cfg = GenerationConfig { min_new_tokens: 3, ..config(5, 2) };
    let beam = &run(&model, &[vec![5]], &cfg).sequences[0];
    assert!(beam.len() >= 4 && !beam[..3].contains(&EOS), "{beam:?}");

    let cfg =
        GenerationConfig { forced_bos_token_id: Some(B), forced_eos_token_ids: vec![EOS], ..config(3, 1) };
    let model = table(&[], [P0, 0.01, 0.9, 0.09]);
    assert_eq!(run(&model, &[vec![5]], &cfg).sequences[0], vec![B, A, EOS]);
    let cfg =
        GenerationConfig { forced_bos_token_id: Some(B), forced_eos_token_ids: vec![EOS], ..config(3, 2) };
    assert_eq!(run(&model, &[vec![5]], &cfg).sequences[0], vec![B, A, EOS]);
}

#[test]
fn no_repeat_ngram_size_prevents_repeated_bigrams() {
    let model = table(&[], [P0, 0.01, 0.9, 0.09]);
    let out = run(&model, &[vec![5]], &config(6, 1));
    assert_eq!(out.sequences[0], vec![A; 6]);
    for beams in [1, 3] {
        let cfg = GenerationConfig { no_repeat_ngram_size: 2, ..config(6, beams) };
        let seq = &run(&model, &[vec![5]], &cfg).sequences[0];
        let mut seen = std::collections::HashSet::new();
        let full: Vec<u32> = std::iter::once(PAD).chain(seq.iter().copied()).collect();
        for w in full.windows(2) {
            assert!(seen.insert(w.to_vec()), "bigram {w:?} repeated in {seq:?}");
        }
    }
}

#[test]
fn max_new_tokens_bounds_the_output_without_eos() {
    let model = table(&[], [P0, 0.01, 0.9, 0.09]);
    for beams in [1, 2] {
        let out = run(&model, &[vec![5]], &config(4, beams));
        assert_eq!(out.sequences[0].len(), 4);
        assert_eq!(out.finished, vec![false]);
    }
}

#[test]
fn cancellation_stops_early_and_returns_the_partial_output() {
    let model = table(&[], [P0, 0.01, 0.9, 0.09]);
    for beams in [1, 3] {
        let flag = AtomicBool::new(false);
        let mut on_step = |e: &StepEvent<'_>| {
            if e.step == 2 {
                flag.store(true, Ordering::Relaxed);
            }
        };
        let hooks = Hooks { on_step: Some(&mut on_step), cancel: Some(&flag) };
        let out = generate(&model, &Device::Cpu, &[vec![5]], &config(50, beams), hooks).unwrap();
        assert!(out.cancelled);
        assert_eq!(out.stats.steps, 2, "beams {beams}");
        assert_eq!(out.sequences[0], vec![A, A]);
        assert_eq!(out.finished, vec![false]);
    }
}

#[test]
fn streaming_prefixes_only_grow_and_end_as_the_output() {
    let model = hashed(6, 9);
    for beams in [1, 4] {
        let mut events: Vec<(usize, Vec<u32>)> = Vec::new();
        let mut on_step = |e: &StepEvent<'_>| events.push((e.step, e.stable.to_vec()));
        let hooks = Hooks { on_step: Some(&mut on_step), cancel: None };
        let cfg = config(10, beams);
        let out = generate(&model, &Device::Cpu, &[vec![2, 3]], &cfg, hooks).unwrap();
        assert_eq!(events.len(), out.stats.steps);
        for pair in events.windows(2) {
            assert!(pair[1].1.starts_with(&pair[0].1), "beams {beams}: {events:?}");
        }
        let last = &events.last().unwrap().1;
        assert!(out.sequences[0].starts_with(last), "beams {beams}: {last:?} vs {:?}", out.sequences[0]);
        if beams == 1 {
            assert_eq!(last, &out.sequences[0]);
        }
    }
}

#[test]
fn stats_count_steps_tokens_and_cache() {
    let model = hashed(8, 1);
    let out = run(&model, &[vec![2, 3], vec![4]], &config(5, 2));
    let s = &out.stats;
    assert_eq!(s.batch_size, 2);
    assert_eq!(s.num_beams, 2);
    assert_eq!(s.new_tokens, out.sequences.iter().map(Vec::len).sum::<usize>());
    assert!(s.steps >= 1 && s.steps <= 5);
    assert!(s.kv_cache_bytes > 0);
    assert!(s.ttft_ms <= s.total_ms && s.encode_ms <= s.ttft_ms);
    assert_eq!(s.device, "cpu");
    let json = serde_json::to_value(s).unwrap();
    for key in ["encode_ms", "ttft_ms", "total_ms", "new_tokens", "tokens_per_s", "kv_cache_bytes"] {
        assert!(json.get(key).is_some(), "{key} missing in {json}");
    }
}

#[test]
fn bad_requests_are_refused_with_the_option_named() {
    let model = hashed(4, 0);
    let err = |cfg: GenerationConfig, inputs: &[Vec<u32>]| {
        generate(&model, &Device::Cpu, inputs, &cfg, Hooks::default()).unwrap_err().to_string()
    };
    assert!(err(config(0, 1), &[vec![2]]).contains("max_new_tokens"));
    assert!(err(config(3, 1), &[]).contains("empty"));
    assert!(err(config(3, 1), &[vec![2], vec![]]).contains("input 1"));
    let sampled_beams = GenerationConfig { do_sample: true, ..config(3, 2) };
    assert!(err(sampled_beams, &[vec![2]]).contains("beam"));
}

#[test]
fn checkpoint_defaults_follow_transformers_and_overrides_win() {
    let dir = tempfile::tempdir().unwrap();
    let info = hashed(4, 0).info;
    // No files at all: transformers' defaults (max_length 20 counts the start token).
    let cfg = GenerationConfig::from_checkpoint(dir.path(), &info).unwrap();
    assert_eq!((cfg.max_new_tokens, cfg.num_beams, cfg.early_stopping), (19, 1, EarlyStopping::Heuristic));

    std::fs::write(
        dir.path().join("config.json"),
        r#"{"d_model": 8, "num_beams": 4, "max_length": 142, "min_length": 56, "early_stopping": true,
            "no_repeat_ngram_size": 3, "forced_eos_token_id": 2, "eos_token_id": 2}"#,
    )
    .unwrap();
    let cfg = GenerationConfig::from_checkpoint(dir.path(), &info).unwrap();
    assert_eq!((cfg.max_new_tokens, cfg.min_new_tokens, cfg.num_beams), (141, 55, 4));
    assert_eq!(cfg.early_stopping, EarlyStopping::Eager);
    assert_eq!((cfg.no_repeat_ngram_size, cfg.forced_eos_token_ids.clone()), (3, vec![2]));

    // generation_config.json, when present, is the source (config.json's keys are not mixed in).
    std::fs::write(
        dir.path().join("generation_config.json"),
        r#"{"max_new_tokens": 30, "early_stopping": "never", "eos_token_id": [1, 3], "decoder_start_token_id": 2}"#,
    )
    .unwrap();
    let mut cfg = GenerationConfig::from_checkpoint(dir.path(), &info).unwrap();
    assert_eq!((cfg.max_new_tokens, cfg.num_beams), (30, 1));
    assert_eq!(cfg.early_stopping, EarlyStopping::Never);
    assert_eq!((cfg.eos_token_ids.clone(), cfg.decoder_start_token_id), (vec![1, 3], 2));

    cfg.apply(&GenerationOverrides { num_beams: Some(5), max_new_tokens: Some(7), ..Default::default() });
    assert_eq!((cfg.max_new_tokens, cfg.num_beams), (7, 5));

    // A token id past the vocabulary (4 tokens here) names its file and key.
    std::fs::write(dir.path().join("generation_config.json"), r#"{"eos_token_id": [1, 5]}"#).unwrap();
    let err = format!("{:#}", GenerationConfig::from_checkpoint(dir.path(), &info).unwrap_err());
    assert!(err.contains("generation_config.json: eos_token_id = 5 is not a token"), "{err}");

    std::fs::write(dir.path().join("generation_config.json"), r#"{"early_stopping": "sometimes"}"#).unwrap();
    let err = format!("{:#}", GenerationConfig::from_checkpoint(dir.path(), &info).unwrap_err());
    assert!(err.contains("generation_config.json") && err.contains("sometimes"), "{err}");
}

#[test]
fn non_finite_logits_stop_generation_naming_the_step() {
    for (bad, beams) in [(f32::NAN, 1), (f32::INFINITY, 4), (f32::NEG_INFINITY, 1)] {
        // Fine for two steps, then the model breaks down (all -inf only counts for a whole row).
        let model = ScriptedModel::new(4, move |_input, prefix| {
            if prefix.len() < 2 {
                vec![f32::NEG_INFINITY, -2.0, -1.0, -1.5]
            } else {
                vec![bad; 4]
            }
        });
        let cfg = GenerationConfig { min_new_tokens: 5, ..config(8, beams) };
        let err = generate(&model, &Device::Cpu, &[vec![5]], &cfg, Hooks::default()).unwrap_err().to_string();
        assert!(err.contains("decoding step 3") && err.contains("not finite"), "{bad} beams {beams}: {err}");
    }
}

#[test]
fn a_small_models_steps_keep_their_ops_on_the_generating_thread() {
    std::thread::spawn(|| {
        let _pool = crate::threads::own_pool(2, || {}).unwrap();
        // A step reads about half the weights.
        let min = super::SHARED_STEP_MIN_WEIGHTS;
        for (param_count, beams, split) in
            [(1_000, 1, 1), (2 * min - 2, 5, 1), (2 * min, 1, 2), (2 * min, 5, 2)]
        {
            let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let record = seen.clone();
            let mut model = ScriptedModel::new(4, move |_, _| {
                record.store(crate::threads::split_threads(), Ordering::SeqCst);
                vec![0.0, 0.0, 1.0, 0.0]
            });
            model.info.param_count = param_count;
            run(&model, &[vec![A]], &config(2, beams));
            assert_eq!(seen.load(Ordering::SeqCst), split, "{param_count} weights, {beams} beams");
        }
    })
    .join()
    .unwrap();
}

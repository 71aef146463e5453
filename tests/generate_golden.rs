//! Generation on the Hugging Face fixture checkpoints (tests/fixtures/hf, made by
//! tests/fixtures/make_hf_fixtures.py with transformers): greedy and beam-4 outputs must be the
//! same token ids transformers produced, alone and batched; sampling, streaming and cancellation
//! are checked on the real models too.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};

use common::golden::{hf_fixture, read_golden, Golden};
use prism_explorer::model::engine::{Engine, EngineOptions, TextEvent};
use prism_explorer::model::GenerationOverrides;

/// The 4.57 fixtures, then the transformers 5 ones (tests/fixtures/make_hf5_fixtures.py).
const FIXTURES: &[&str] = &[
    "t5-v1_0",
    "t5-v1_0-bin",
    "t5-v1_1",
    "bart",
    "bart-sharded",
    "tf5-t5-tied-noscale",
    "tf5-t5-tied",
    "tf5-t5-untied",
    "tf5-bart",
];

fn load(name: &str) -> (Engine, Golden) {
    let dir = hf_fixture(name);
    let engine = Engine::load(&dir, &EngineOptions::default()).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    (engine, read_golden(&dir))
}

#[test]
fn greedy_and_beam_4_match_transformers_token_for_token() {
    for name in FIXTURES {
        let (engine, golden) = load(name);
        let greedy = golden.greedy_kwargs.config(&engine);
        let beam = golden.beam_kwargs.config(&engine);
        for (i, g) in golden.generations.iter().enumerate() {
            assert_eq!(engine.tokenize(&g.prompt).unwrap(), g.input_ids, "{name} prompt {i}: tokenizer");
            let input = std::slice::from_ref(&g.input_ids);
            let out = engine.generate_ids(input, &greedy, None, None).unwrap();
            assert_eq!(out.generations[0].token_ids, g.greedy[1..], "{name} prompt {i}: greedy");
            let out = engine.generate_ids(input, &beam, None, None).unwrap();
            assert_eq!(out.generations[0].token_ids, g.beam[1..], "{name} prompt {i}: beam-4");
            let score = out.generations[0].score;
            assert!(
                (score - g.beam_score).abs() < 1e-3,
                "{name} prompt {i}: beam score {score} vs {}",
                g.beam_score
            );
        }
    }
}

/// The transformers 5 fixture with `"scale_decoder_outputs": false` and a tied head, read as if
/// the key were absent (the tie flag then scales, as transformers 4 always did), decodes other
/// beams: the key changes the output, and the test above would see it ignored.
#[test]
fn scale_decoder_outputs_changes_beam_search_on_a_tied_t5() {
    let (_, golden) = load("tf5-t5-tied-noscale");
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(hf_fixture("tf5-t5-tied-noscale")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let config_path = dir.path().join("config.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    assert_eq!(json["tie_word_embeddings"], true);
    assert_eq!(json.as_object_mut().unwrap().remove("scale_decoder_outputs"), Some(false.into()));
    std::fs::write(&config_path, json.to_string()).unwrap();
    let scaled = Engine::load(dir.path(), &EngineOptions::default()).unwrap();
    let beam = golden.beam_kwargs.config(&scaled);
    let differing = golden
        .generations
        .iter()
        .filter(|g| {
            let out = scaled.generate_ids(std::slice::from_ref(&g.input_ids), &beam, None, None).unwrap();
            out.generations[0].token_ids != g.beam[1..]
        })
        .count();
    assert!(differing > 0, "scaling the decoder output changed no beam output");
}

#[test]
fn batched_prompts_give_the_same_tokens_as_one_at_a_time() {
    for name in ["t5-v1_1", "bart", "tf5-t5-untied", "tf5-bart"] {
        let (engine, golden) = load(name);
        let inputs: Vec<Vec<u32>> = golden.generations.iter().map(|g| g.input_ids.clone()).collect();
        let greedy = engine.generate_ids(&inputs, &golden.greedy_kwargs.config(&engine), None, None).unwrap();
        let beam = engine.generate_ids(&inputs, &golden.beam_kwargs.config(&engine), None, None).unwrap();
        assert_eq!(greedy.stats.batch_size, inputs.len());
        for (i, g) in golden.generations.iter().enumerate() {
            assert_eq!(greedy.generations[i].token_ids, g.greedy[1..], "{name} prompt {i}: batched greedy");
            assert_eq!(beam.generations[i].token_ids, g.beam[1..], "{name} prompt {i}: batched beam-4");
        }
    }
}

#[test]
fn sampling_with_a_seed_is_reproducible() {
    let (engine, golden) = load("t5-v1_0");
    let prompt = golden.generations[0].prompt.as_str();
    let sampled = |seed| {
        let cfg = engine.config_with(&GenerationOverrides {
            do_sample: Some(true),
            seed: Some(seed),
            top_p: Some(0.95),
            temperature: Some(1.5),
            max_new_tokens: Some(20),
            min_new_tokens: Some(20),
            ..Default::default()
        });
        engine.generate(&[prompt], &cfg, None, None).unwrap().generations.remove(0).token_ids
    };
    let first = sampled(1);
    assert_eq!(first.len(), 20);
    assert_eq!(first, sampled(1));
    assert!((2..6).any(|seed| sampled(seed) != first), "five seeds gave the same sample");
}

#[test]
fn streaming_text_grows_into_the_final_text() {
    for name in ["t5-v1_0", "bart"] {
        let (engine, golden) = load(name);
        for kwargs in [&golden.greedy_kwargs, &golden.beam_kwargs] {
            let cfg = kwargs.config(&engine);
            let mut seen: Vec<String> = Vec::new();
            let mut joined = String::new();
            let mut ids: Vec<u32> = Vec::new();
            let mut on_text = |e: &TextEvent<'_>| {
                assert!(e.token_ids.starts_with(&ids), "streamed token ids were taken back");
                ids = e.token_ids.to_vec();
                joined.push_str(e.delta);
                seen.push(e.text.to_string());
            };
            let out =
                engine.generate(&[&golden.generations[0].prompt], &cfg, Some(&mut on_text), None).unwrap();
            let text = &out.generations[0].text;
            assert!(!seen.is_empty(), "{name}: nothing streamed");
            assert_eq!(&joined, seen.last().unwrap());
            assert!(text.starts_with(&joined), "{name}: streamed {joined:?}, final {text:?}");
            assert!(out.generations[0].token_ids.starts_with(&ids));
        }
    }
}

#[test]
fn cancelling_returns_the_tokens_generated_so_far() {
    let (engine, golden) = load("bart");
    for kwargs in [&golden.greedy_kwargs, &golden.beam_kwargs] {
        let cfg = kwargs.config(&engine);
        let cancel = AtomicBool::new(false);
        let mut on_text = |e: &TextEvent<'_>| {
            if e.step >= 5 {
                cancel.store(true, Ordering::Relaxed);
            }
        };
        let out = engine
            .generate(&[&golden.generations[0].prompt], &cfg, Some(&mut on_text), Some(&cancel))
            .unwrap();
        assert!(out.cancelled);
        assert!(out.stats.steps <= 6, "ran {} steps after the cancel", out.stats.steps);
        assert!(!out.generations[0].finished);
        assert!(!out.generations[0].token_ids.is_empty());
    }
}

#[test]
fn stats_describe_the_run() {
    let (engine, golden) = load("t5-v1_1");
    let cfg = golden.beam_kwargs.config(&engine);
    let out = engine.generate(&[&golden.generations[0].prompt], &cfg, None, None).unwrap();
    let s = &out.stats;
    assert_eq!(s.new_tokens, out.generations[0].token_ids.len());
    assert_eq!(s.param_bytes, engine.info().param_bytes);
    assert!(s.param_bytes > 0 && s.kv_cache_bytes > 0);
    assert!(s.encode_ms <= s.ttft_ms && s.ttft_ms <= s.total_ms);
    assert!(s.tokens_per_s > 0.0);
    assert_eq!(s.input_tokens, golden.generations[0].input_ids.len());
}

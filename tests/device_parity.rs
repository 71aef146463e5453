//! The engine on another device (a GPU) against transformers' golden outputs: teacher-forced logits
//! and greedy / beam-4 token ids on the Hugging Face fixtures, in f32 and, with a looser bound, in
//! bf16 and f16. The device is `PRISM_TEST_DEVICE` (default `cuda:0`). These tests are ignored in
//! the ordinary suite, which has no GPU; `bench/gpu_check.sh` runs them on a machine that has one
//! (`cargo test --release --features cuda --test device_parity -- --ignored`). With
//! `PRISM_TEST_DEVICE=cpu` they check the same on the CPU, which is how the file itself is tested.

mod common;

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use common::golden::{hf_fixture, read_golden};
use prism_explorer::model::device::parse_device;
use prism_explorer::model::engine::{Engine, EngineOptions};
use prism_explorer::model::{load_model, LoadOptions, Seq2Seq, WeightDtype};

fn device() -> Device {
    let spec = std::env::var("PRISM_TEST_DEVICE").unwrap_or_else(|_| "cuda:0".into());
    parse_device(&spec).unwrap_or_else(|e| panic!("PRISM_TEST_DEVICE={spec}: {e:#}"))
}

fn max_abs(t: &Tensor) -> f32 {
    t.to_dtype(DType::F32).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
}

/// Teacher-forced logits on the device, in each dtype, against transformers' f32 logits. f32 on a
/// GPU differs from the CPU only by summation order (1e-3 leaves room for cuBLAS's); the half
/// precisions are held to 5% of the logits' scale, as on the CPU (`tests/model_parity.rs`).
#[test]
#[ignore = "needs a GPU: run by bench/gpu_check.sh"]
fn logits_on_the_device_match_transformers() {
    let device = device();
    for name in ["t5-v1_0", "t5-v1_1", "bart"] {
        let golden: HashMap<String, Tensor> =
            candle_core::safetensors::load(hf_fixture(name).join("golden.safetensors"), &device).unwrap();
        let ids = |k: &str| golden[k].to_dtype(DType::U32).unwrap();
        for (dtype, bound) in [(WeightDtype::F32, 1e-3), (WeightDtype::Bf16, 0.05), (WeightDtype::F16, 0.05)]
        {
            let model = load_model(&hf_fixture(name), &LoadOptions::inference(device.clone(), dtype))
                .unwrap_or_else(|e| panic!("{name} {dtype:?}: {e:#}"));
            let logits = model
                .forward_train(
                    &ids("input_ids"),
                    &ids("attention_mask"),
                    &ids("decoder_input_ids"),
                    Some(&ids("decoder_attention_mask")),
                )
                .unwrap();
            let expected = &golden["logits"];
            let diff = max_abs(&(logits.to_dtype(DType::F32).unwrap() - expected).unwrap());
            let allowed = if dtype == WeightDtype::F32 { bound } else { bound * max_abs(expected) };
            assert!(
                diff < allowed,
                "{name} on {device:?} in {dtype}: logits differ by {diff} (allowed {allowed})"
            );
        }
    }
}

/// Greedy and beam-4 (the fixtures' settings) on the device give transformers' token ids.
#[test]
#[ignore = "needs a GPU: run by bench/gpu_check.sh"]
fn generation_on_the_device_matches_transformers() {
    let device = device();
    for name in ["t5-v1_0", "t5-v1_1", "bart"] {
        let dir = hf_fixture(name);
        let options = EngineOptions { device: device.clone(), ..EngineOptions::default() };
        let engine = Engine::load(&dir, &options).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let golden = read_golden(&dir);
        let greedy = golden.greedy_kwargs.config(&engine);
        let beam = golden.beam_kwargs.config(&engine);
        for (i, g) in golden.generations.iter().enumerate() {
            let input = std::slice::from_ref(&g.input_ids);
            for (what, config, expected) in [("greedy", &greedy, &g.greedy), ("beam-4", &beam, &g.beam)] {
                let out = engine.generate_ids(input, config, None, None).unwrap();
                assert_eq!(
                    out.generations[0].token_ids,
                    expected[1..],
                    "{name} prompt {i}, {what} on {device:?}"
                );
            }
        }
    }
}

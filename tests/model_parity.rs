//! Proof that our T5 and BART match Hugging Face transformers: golden encoder states and
//! teacher-forced logits from `tests/fixtures/make_hf_fixtures.py`, plus the properties generation
//! and training rely on (padding invariance, KV-cache equivalence, loading from every weight layout,
//! save → reload, gradients reaching every parameter). No Python is needed to run these.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use prism_explorer::model::bart::{Bart, BartConfig};
use prism_explorer::model::t5::{T5Config, T5};
use prism_explorer::model::{
    load_model, load_with_tokenizer, Kernels, LoadOptions, Model, Seq2Seq, WeightDtype,
};

const TOLERANCE: f32 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf").join(name)
}

struct Golden {
    input_ids: Tensor,
    attention_mask: Tensor,
    decoder_input_ids: Tensor,
    decoder_attention_mask: Tensor,
    encoder_hidden: Tensor,
    logits: Tensor,
}

fn golden(name: &str) -> Golden {
    let t: HashMap<String, Tensor> =
        candle_core::safetensors::load(fixture(name).join("golden.safetensors"), &Device::Cpu).unwrap();
    let ids = |k: &str| t[k].to_dtype(DType::U32).unwrap();
    Golden {
        input_ids: ids("input_ids"),
        attention_mask: ids("attention_mask"),
        decoder_input_ids: ids("decoder_input_ids"),
        decoder_attention_mask: ids("decoder_attention_mask"),
        encoder_hidden: t["encoder_hidden"].clone(),
        logits: t["logits"].clone(),
    }
}

fn load(dir: &Path) -> Model {
    load_model(dir, &LoadOptions::default()).unwrap_or_else(|e| panic!("{}: {e:#}", dir.display()))
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    let a = a.to_dtype(DType::F32).unwrap();
    let b = b.to_dtype(DType::F32).unwrap();
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

/// Checks a checkpoint directory against its golden file: encoder states and teacher-forced
/// logits of the padded batch, at every position.
fn check_against_golden(dir_name: &str, golden_name: &str) {
    for kernels in [Kernels::Differentiable, Kernels::Fused] {
        check_with_kernels(dir_name, golden_name, kernels);
    }
}

fn check_with_kernels(dir_name: &str, golden_name: &str, kernels: Kernels) {
    let opts = LoadOptions { kernels, ..LoadOptions::default() };
    let model = load_model(&fixture(dir_name), &opts).unwrap();
    let g = golden(golden_name);
    let enc = model.encode(&g.input_ids, &g.attention_mask).unwrap();
    let d = max_abs_diff(&enc, &g.encoder_hidden);
    assert!(d < TOLERANCE, "{dir_name} ({kernels:?}): encoder states differ from transformers by {d}");
    let logits = model
        .forward_train(&g.input_ids, &g.attention_mask, &g.decoder_input_ids, Some(&g.decoder_attention_mask))
        .unwrap();
    let d = max_abs_diff(&logits, &g.logits);
    assert!(d < TOLERANCE, "{dir_name} ({kernels:?}): logits differ from transformers by {d}");
}

/// Checkpoints written by transformers 5.25 (tests/fixtures/make_hf5_fixtures.py): tied T5 with
/// `scale_decoder_outputs: false`, tied T5 without the key, untied T5 (its own `lm_head.weight`
/// under `tie_word_embeddings: true`), BART.
#[test]
fn transformers_5_checkpoints_match_transformers_5() {
    for name in ["tf5-t5-tied-noscale", "tf5-t5-tied", "tf5-t5-untied", "tf5-bart"] {
        check_against_golden(name, name);
    }
}

#[test]
fn t5_v1_0_matches_transformers() {
    check_against_golden("t5-v1_0", "t5-v1_0");
}

#[test]
fn t5_v1_1_matches_transformers() {
    check_against_golden("t5-v1_1", "t5-v1_1");
}

#[test]
fn bart_matches_transformers() {
    check_against_golden("bart", "bart");
}

#[test]
fn pytorch_bin_and_sharded_files_load_the_same_weights() {
    check_against_golden("t5-v1_0-bin", "t5-v1_0");
    check_against_golden("t5-v1_0-bin-sharded", "t5-v1_0");
    check_against_golden("bart-sharded", "bart");
    for (a, b) in [("t5-v1_0", "t5-v1_0-bin"), ("t5-v1_0", "t5-v1_0-bin-sharded"), ("bart", "bart-sharded")] {
        let (ma, mb) = (load(&fixture(a)), load(&fixture(b)));
        let g = golden(a);
        let la = ma.forward_train(&g.input_ids, &g.attention_mask, &g.decoder_input_ids, None).unwrap();
        let lb = mb.forward_train(&g.input_ids, &g.attention_mask, &g.decoder_input_ids, None).unwrap();
        assert_eq!(max_abs_diff(&la, &lb), 0.0, "{a} and {b} hold the same weights");
    }
}

/// Padding must not leak: each row of the padded batch equals that row run alone, unpadded.
#[test]
fn padded_batch_equals_unpadded_rows() {
    for name in ["t5-v1_0", "t5-v1_1", "bart"] {
        let model = load(&fixture(name));
        let g = golden(name);
        let enc = model.encode(&g.input_ids, &g.attention_mask).unwrap();
        let logits = model
            .forward_train(
                &g.input_ids,
                &g.attention_mask,
                &g.decoder_input_ids,
                Some(&g.decoder_attention_mask),
            )
            .unwrap();
        let rows = g.input_ids.dim(0).unwrap();
        for r in 0..rows {
            let len =
                g.attention_mask.get(r).unwrap().sum_all().unwrap().to_scalar::<u32>().unwrap() as usize;
            let dec_len =
                g.decoder_attention_mask.get(r).unwrap().sum_all().unwrap().to_scalar::<u32>().unwrap()
                    as usize;
            let ids = g.input_ids.narrow(0, r, 1).unwrap().narrow(1, 0, len).unwrap();
            let mask = Tensor::ones((1, len), DType::U32, &Device::Cpu).unwrap();
            let dec = g.decoder_input_ids.narrow(0, r, 1).unwrap().narrow(1, 0, dec_len).unwrap();
            let single_enc = model.encode(&ids, &mask).unwrap();
            let batch_enc = enc.narrow(0, r, 1).unwrap().narrow(1, 0, len).unwrap();
            let d = max_abs_diff(&single_enc, &batch_enc);
            assert!(d < TOLERANCE, "{name} row {r}: encoder states change with padding by {d}");
            let single = model.forward_train(&ids, &mask, &dec, None).unwrap();
            let batch = logits.narrow(0, r, 1).unwrap().narrow(1, 0, dec_len).unwrap();
            let d = max_abs_diff(&single, &batch);
            assert!(d < TOLERANCE, "{name} row {r}: logits change with padding by {d}");
        }
    }
}

/// Incremental decoding through the KV cache (a 3-token prefix, then one token at a time, past
/// 20 positions so T5's logarithmic causal buckets are used) equals full recomputation.
#[test]
fn kv_cache_decoding_equals_full_recomputation() {
    for name in ["t5-v1_0", "t5-v1_1", "bart"] {
        let model = load(&fixture(name));
        let g = golden(name);
        let gen: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixture(name).join("golden.json")).unwrap())
                .unwrap();
        let seq: Vec<u32> = gen["generations"][0]["greedy"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert!(seq.len() > 20, "{name}: golden greedy output should be longer than 20 tokens");
        let rows = g.input_ids.dim(0).unwrap();
        let dec = Tensor::new(seq.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap()
            .repeat((rows, 1))
            .unwrap();
        let full = model.forward_train(&g.input_ids, &g.attention_mask, &dec, None).unwrap();
        let enc = model.encode(&g.input_ids, &g.attention_mask).unwrap();
        let mut cache = model.new_cache();
        let mut steps = vec![model
            .decode_step(&dec.narrow(1, 0, 3).unwrap(), &enc, &g.attention_mask, &mut cache)
            .unwrap()];
        for t in 3..seq.len() {
            assert_eq!(cache.seq_len(), t);
            let step = model
                .decode_step(&dec.narrow(1, t, 1).unwrap(), &enc, &g.attention_mask, &mut cache)
                .unwrap();
            steps.push(step);
        }
        let incremental = Tensor::cat(&steps, 1).unwrap();
        let d = max_abs_diff(&incremental, &full);
        assert!(d < 1e-4, "{name}: cached decoding differs from full recomputation by {d}");
    }
}

/// Lower precisions load from the same f32 files and stay close to the f32 results.
#[test]
fn half_precision_loads_close_to_f32() {
    for (name, dtype) in
        [("t5-v1_1", WeightDtype::Bf16), ("bart", WeightDtype::F16), ("t5-v1_1", WeightDtype::F16)]
    {
        let model = load_model(&fixture(name), &LoadOptions::inference(Device::Cpu, dtype)).unwrap();
        for (key, t) in model.named_tensors() {
            // transformers keeps T5's feed-forward `wo` in f32 under f16 (`_keep_in_fp32_modules`).
            let expected = if dtype == WeightDtype::F16 && key.ends_with("DenseReluDense.wo.weight") {
                DType::F32
            } else {
                dtype.float()
            };
            assert_eq!(t.dtype(), expected, "{name} in {dtype}: {key}");
        }
        let g = golden(name);
        let logits = model
            .forward_train(
                &g.input_ids,
                &g.attention_mask,
                &g.decoder_input_ids,
                Some(&g.decoder_attention_mask),
            )
            .unwrap();
        assert_eq!(logits.dtype(), DType::F32);
        let scale =
            g.logits.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        let d = max_abs_diff(&logits, &g.logits);
        assert!(d < 0.05 * scale, "{name} in {dtype:?}: logits differ by {d} (scale {scale})");
    }
}

/// Where a test saves a checkpoint: `PRISM_EXPORT_DIR/NAME` when that is set (for
/// `make_hf_fixtures.py check`), else a temporary directory (held by the returned guard).
fn save_dir(name: &str) -> (Option<tempfile::TempDir>, PathBuf) {
    match std::env::var_os("PRISM_EXPORT_DIR") {
        Some(root) => (None, PathBuf::from(root).join(name)),
        None => {
            let tmp = tempfile::tempdir().unwrap();
            let path = tmp.path().to_path_buf();
            (Some(tmp), path)
        }
    }
}

/// Writes the inputs and our logits next to a saved checkpoint, for the transformers check.
fn write_ours(dir: &Path, ids: &Tensor, mask: &Tensor, dec: &Tensor, dec_mask: &Tensor, logits: Tensor) {
    let i64 = |t: &Tensor| t.to_dtype(DType::I64).unwrap();
    let ours: HashMap<String, Tensor> = HashMap::from([
        ("input_ids".into(), i64(ids)),
        ("attention_mask".into(), i64(mask)),
        ("decoder_input_ids".into(), i64(dec)),
        ("decoder_attention_mask".into(), i64(dec_mask)),
        ("logits".into(), logits),
    ]);
    candle_core::safetensors::save(&ours, dir.join("ours.safetensors")).unwrap();
}

/// An inference model keeps its linear weights transposed (`Wᵀ` contiguous); saving it still
/// writes the checkpoint layout, so the saved model gives the same logits.
#[test]
fn an_inference_model_saves_the_checkpoint_layout() {
    for name in ["t5-v1_1", "bart"] {
        let options = LoadOptions::inference(candle_core::Device::Cpu, WeightDtype::F32);
        let model = load_model(&fixture(name), &options).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        model.save(tmp.path(), None).unwrap();
        std::fs::copy(fixture(name).join("tokenizer.json"), tmp.path().join("tokenizer.json")).unwrap();
        let reloaded = load_model(tmp.path(), &options).unwrap();
        let g = golden(name);
        let a = model.forward_train(&g.input_ids, &g.attention_mask, &g.decoder_input_ids, None).unwrap();
        let b = reloaded.forward_train(&g.input_ids, &g.attention_mask, &g.decoder_input_ids, None).unwrap();
        assert_eq!(max_abs_diff(&a, &b), 0.0, "{name}: logits changed on save → reload");
    }
}

/// Fixture checkpoints saved by our code reload with identical logits (and, via
/// `PRISM_EXPORT_DIR`, load in transformers).
#[test]
fn save_and_reload_round_trip() {
    for name in ["t5-v1_0", "t5-v1_1", "bart"] {
        let model = load(&fixture(name));
        let tokenizer = prism_explorer::model::checkpoint::load_tokenizer(&fixture(name)).unwrap();
        let (_guard, dir) = save_dir(&format!("fixture-{name}"));
        model.save(&dir, Some(&tokenizer)).unwrap();
        for file in ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json"] {
            assert!(dir.join(file).is_file(), "{name}: {file} not written");
        }
        let reloaded = load(&dir);
        assert_eq!(reloaded.info(), model.info(), "{name}: model info changed on reload");
        let g = golden(name);
        let a = model.forward_train(&g.input_ids, &g.attention_mask, &g.decoder_input_ids, None).unwrap();
        let b = reloaded.forward_train(&g.input_ids, &g.attention_mask, &g.decoder_input_ids, None).unwrap();
        assert_eq!(max_abs_diff(&a, &b), 0.0, "{name}: logits changed on save → reload");
        let keys: Vec<&String> = model.named_tensors().iter().map(|(k, _)| k).collect();
        let tied_head_saved = keys.iter().any(|k| k.as_str() == "lm_head.weight");
        assert_eq!(tied_head_saved, name == "t5-v1_1", "{name}: lm_head.weight is saved only when untied");
        let dm = &g.decoder_attention_mask;
        let logits =
            model.forward_train(&g.input_ids, &g.attention_mask, &g.decoder_input_ids, Some(dm)).unwrap();
        write_ours(&dir, &g.input_ids, &g.attention_mask, &g.decoder_input_ids, dm, logits);
    }
}

#[test]
fn weight_shape_mismatch_names_key_and_shapes() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture("t5-v1_0")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let config_path = dir.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    let vocab = config["vocab_size"].as_u64().unwrap();
    config["vocab_size"] = (vocab + 8).into();
    std::fs::write(&config_path, config.to_string()).unwrap();
    let err = format!("{:#}", load_model(dir.path(), &LoadOptions::default()).err().unwrap());
    assert!(err.contains("shared.weight"), "{err}");
    assert!(err.contains(&format!("{}", vocab + 8)) && err.contains(&format!("{vocab}")), "{err}");
    assert!(err.contains("model.safetensors"), "{err}");
}

fn tiny_t5_config(gated: bool) -> T5Config {
    serde_json::from_value(serde_json::json!({
        "model_type": "t5", "vocab_size": 40, "d_model": 16, "d_kv": 4, "d_ff": 24, "num_layers": 2,
        "num_decoder_layers": 2, "num_heads": 4, "relative_attention_num_buckets": 8,
        "relative_attention_max_distance": 16, "decoder_start_token_id": 0,
        "feed_forward_proj": if gated { "gated-gelu" } else { "relu" }, "tie_word_embeddings": !gated
    }))
    .unwrap()
}

fn tiny_bart_config() -> BartConfig {
    serde_json::from_value(serde_json::json!({
        "model_type": "bart", "vocab_size": 40, "d_model": 16, "encoder_layers": 2, "decoder_layers": 2,
        "encoder_attention_heads": 4, "decoder_attention_heads": 4, "encoder_ffn_dim": 24,
        "decoder_ffn_dim": 24, "max_position_embeddings": 32, "scale_embedding": true, "init_std": 0.1
    }))
    .unwrap()
}

/// A small padded batch for the VarMap-built models: inputs, masks and shifted targets.
fn tiny_batch() -> (Tensor, Tensor, Tensor, Tensor, Tensor) {
    let dev = Device::Cpu;
    let input_ids = Tensor::new(&[[5u32, 9, 12, 7, 3, 2], [6, 11, 4, 2, 1, 1]], &dev).unwrap();
    let attention_mask = Tensor::new(&[[1u32, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], &dev).unwrap();
    let decoder_input_ids = Tensor::new(&[[0u32, 8, 13, 21, 30], [0, 17, 19, 1, 1]], &dev).unwrap();
    let decoder_mask = Tensor::new(&[[1u32, 1, 1, 1, 1], [1, 1, 1, 0, 0]], &dev).unwrap();
    let labels = Tensor::new(&[[8u32, 13, 21, 30, 2], [17, 19, 2, 0, 0]], &dev).unwrap();
    (input_ids, attention_mask, decoder_input_ids, decoder_mask, labels)
}

/// Training needs every parameter to receive a gradient through `forward_train`, which is not a
/// given in candle (fused softmax and layer norm have no backward).
fn check_gradients(name: &str, varmap: &VarMap, model: &dyn Seq2Seq) {
    let (input_ids, attention_mask, decoder_input_ids, decoder_mask, labels) = tiny_batch();
    let logits =
        model.forward_train(&input_ids, &attention_mask, &decoder_input_ids, Some(&decoder_mask)).unwrap();
    let (b, t, v) = logits.dims3().unwrap();
    let loss =
        candle_nn::loss::cross_entropy(&logits.reshape((b * t, v)).unwrap(), &labels.flatten_all().unwrap())
            .unwrap();
    let grads = loss.backward().unwrap();
    let data = varmap.data().lock().unwrap();
    assert!(!data.is_empty());
    for (key, var) in data.iter() {
        let grad = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("{name}: {key} got no gradient"));
        let norm = grad.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(norm > 0.0 && norm.is_finite(), "{name}: {key} has gradient norm {norm}");
    }
}

/// Gradients in evaluation mode and with dropout on, as training runs.
#[test]
fn every_parameter_gets_a_gradient() {
    for training in [false, true] {
        for gated in [false, true] {
            let varmap = VarMap::new();
            let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
            let model = T5::new(&tiny_t5_config(gated), vb).unwrap();
            model.set_training(training);
            check_gradients(if gated { "t5 v1.1" } else { "t5 v1.0" }, &varmap, &model);
        }
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let model = Bart::new(&tiny_bart_config(), vb).unwrap();
        model.set_training(training);
        check_gradients("bart", &varmap, &model);
    }
}

/// Dropout (0.1 by default in both configs) changes outputs only in training mode; evaluation
/// stays exactly reproducible.
#[test]
fn dropout_only_in_training_mode() {
    let (input_ids, attention_mask, decoder_input_ids, _, _) = tiny_batch();
    for name in ["t5", "bart"] {
        let vb = VarBuilder::from_varmap(&VarMap::new(), DType::F32, &Device::Cpu);
        let model = match name {
            "t5" => Model::T5(T5::new(&tiny_t5_config(true), vb).unwrap()),
            _ => Model::Bart(Bart::new(&tiny_bart_config(), vb).unwrap()),
        };
        let run = || model.forward_train(&input_ids, &attention_mask, &decoder_input_ids, None).unwrap();
        let eval = run();
        model.set_training(true);
        let (a, b) = (run(), run());
        model.set_training(false);
        assert!(max_abs_diff(&a, &b) > 0.0, "{name}: training passes should differ by dropout");
        assert_eq!(max_abs_diff(&eval, &run()), 0.0, "{name}: evaluation must be deterministic");
    }
}

/// Models built on a `VarMap` (what training produces) save in Hugging Face layout and reload
/// with identical logits. With `PRISM_EXPORT_DIR` set, the checkpoints and our logits
/// (`ours.safetensors`) are also written there for `make_hf_fixtures.py check DIR`, which loads
/// them with transformers and compares.
#[test]
fn varmap_models_save_in_hf_layout() {
    let (input_ids, attention_mask, decoder_input_ids, decoder_mask, _) = tiny_batch();
    for name in ["t5-v1_0", "t5-v1_1", "bart"] {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let model = match name {
            "bart" => Model::Bart(Bart::new(&tiny_bart_config(), vb).unwrap()),
            _ => Model::T5(T5::new(&tiny_t5_config(name == "t5-v1_1"), vb).unwrap()),
        };
        let logits = model
            .forward_train(&input_ids, &attention_mask, &decoder_input_ids, Some(&decoder_mask))
            .unwrap();
        let (_guard, dir) = save_dir(name);
        model.save(&dir, None).unwrap();
        let reloaded = load(&dir);
        let again = reloaded
            .forward_train(&input_ids, &attention_mask, &decoder_input_ids, Some(&decoder_mask))
            .unwrap();
        assert_eq!(max_abs_diff(&logits, &again), 0.0, "{name}: logits changed on save → reload");
        write_ours(&dir, &input_ids, &attention_mask, &decoder_input_ids, &decoder_mask, logits);
    }
}

/// facebook/bart-base ships as a bare `BartModel` (keys without `model.`, no
/// `final_logits_bias`); it loads, and saves back under the `BartForConditionalGeneration` keys.
#[test]
fn bare_bart_model_layout_loads_and_saves_canonical_keys() {
    let dir = tempfile::tempdir().unwrap();
    let weights: HashMap<String, Tensor> =
        candle_core::safetensors::load(fixture("bart").join("model.safetensors"), &Device::Cpu).unwrap();
    let bare: HashMap<String, Tensor> = weights
        .into_iter()
        .filter(|(k, _)| k != "final_logits_bias")
        .map(|(k, t)| (k.strip_prefix("model.").unwrap_or(&k).to_string(), t))
        .collect();
    candle_core::safetensors::save(&bare, dir.path().join("model.safetensors")).unwrap();
    std::fs::copy(fixture("bart").join("config.json"), dir.path().join("config.json")).unwrap();
    let model = load(dir.path());
    let reference = load(&fixture("bart"));
    let g = golden("bart");
    let zero_bias = model.forward_train(&g.input_ids, &g.attention_mask, &g.decoder_input_ids, None).unwrap();
    let with_bias =
        reference.forward_train(&g.input_ids, &g.attention_mask, &g.decoder_input_ids, None).unwrap();
    let bias: HashMap<String, Tensor> =
        candle_core::safetensors::load(fixture("bart").join("model.safetensors"), &Device::Cpu).unwrap();
    let expected = with_bias.broadcast_sub(&bias["final_logits_bias"]).unwrap();
    assert!(max_abs_diff(&zero_bias, &expected) < 1e-5);
    let mut keys: Vec<&str> = model.named_tensors().iter().map(|(k, _)| k.as_str()).collect();
    let mut reference_keys: Vec<&str> = reference.named_tensors().iter().map(|(k, _)| k.as_str()).collect();
    keys.sort();
    reference_keys.sort();
    assert_eq!(keys, reference_keys);
}

/// The committed tokenizers fit their models, and one that does not is refused with both sizes.
#[test]
fn tokenizer_must_fit_the_vocabulary() {
    for name in ["t5-v1_0", "t5-v1_1", "bart"] {
        let (model, tokenizer) = load_with_tokenizer(&fixture(name), &LoadOptions::default()).unwrap();
        assert_eq!(tokenizer.get_vocab_size(true), model.info().vocab_size, "{name}");
    }
    let dir = tempfile::tempdir().unwrap();
    for file in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture("t5-v1_0").join(file), dir.path().join(file)).unwrap();
    }
    std::fs::copy(fixture("bart").join("tokenizer.json"), dir.path().join("tokenizer.json")).unwrap();
    let err = format!("{:#}", load_with_tokenizer(dir.path(), &LoadOptions::default()).err().unwrap());
    assert!(
        err.contains("tokenizer.json") && err.contains("has id 699") && err.contains("472 rows"),
        "{err}"
    );
}

//! `prism generate` run as a user would: the real binary on a fixture checkpoint.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf").join(name)
}

fn prism(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prism")).args(args).env("RAYON_NUM_THREADS", "2").output().unwrap()
}

fn golden(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name).join("golden.json")).unwrap()).unwrap()
}

#[test]
fn json_output_is_one_document_with_the_transformers_tokens() {
    let golden = golden("t5-v1_0");
    let generation = &golden["generations"][0];
    let prompt = generation["prompt"].as_str().unwrap();
    let dir = fixture("t5-v1_0");
    let out = prism(&[
        "generate",
        "--json",
        "--model",
        dir.to_str().unwrap(),
        "--prompt",
        prompt,
        "--beams",
        "4",
        "--max-new-tokens",
        "30",
        "--min-new-tokens",
        "22",
        "--no-repeat-ngram-size",
        "2",
        "--early-stopping",
        "true",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    let mut keys: Vec<&str> = doc.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, vec!["stats", "text", "token_ids"]);
    let expected: Vec<u64> =
        generation["beam"].as_array().unwrap()[1..].iter().map(|v| v.as_u64().unwrap()).collect();
    let got: Vec<u64> = doc["token_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(got, expected);
    let stats = &doc["stats"];
    assert_eq!(stats["num_beams"], 4);
    assert_eq!(stats["new_tokens"].as_u64().unwrap() as usize, expected.len());
    for key in [
        "encode_ms",
        "ttft_ms",
        "total_ms",
        "tokens_per_s",
        "param_bytes",
        "kv_cache_bytes",
        "peak_rss_growth_bytes",
    ] {
        assert!(stats[key].is_number(), "stats.{key} missing: {stats}");
    }
}

#[test]
fn plain_output_streams_the_text_and_reports_stats_on_stderr() {
    let dir = fixture("bart");
    let json = prism(&["generate", "--json", "--model", dir.to_str().unwrap(), "--prompt", "A quiet cafe."]);
    assert!(json.status.success(), "{}", String::from_utf8_lossy(&json.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let plain = prism(&["generate", "--model", dir.to_str().unwrap(), "--prompt", "A quiet cafe."]);
    assert!(plain.status.success(), "{}", String::from_utf8_lossy(&plain.stderr));
    assert_eq!(String::from_utf8(plain.stdout).unwrap(), format!("{}\n", doc["text"].as_str().unwrap()));
    let stderr = String::from_utf8(plain.stderr).unwrap();
    assert!(stderr.contains("tokens/s") && stderr.contains("KV cache"), "{stderr}");
}

#[test]
fn cuda_without_the_feature_asks_for_a_rebuild() {
    if cfg!(feature = "cuda") {
        return;
    }
    let dir = fixture("bart");
    let out = prism(&["generate", "--model", dir.to_str().unwrap(), "--prompt", "x", "--device", "cuda:0"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("--features cuda"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_missing_checkpoint_is_named() {
    let out = prism(&["generate", "--json", "--model", "/nonexistent/ckpt", "--prompt", "x"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("/nonexistent/ckpt"), "{stderr}");
}

#[test]
fn invalid_options_are_refused_and_named() {
    let dir = fixture("bart");
    let out =
        prism(&["generate", "--model", dir.to_str().unwrap(), "--prompt", "x", "--early-stopping", "maybe"]);
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr).unwrap().contains("maybe"));
    let out =
        prism(&["generate", "--model", dir.to_str().unwrap(), "--prompt", "x", "--beams", "3", "--sample"]);
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr).unwrap().contains("beam"));
}

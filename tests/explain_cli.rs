//! `prism explain` through the real binary on the demo data: mostly with tiny random checkpoints
//! standing in for the Oracle (the T5 fixture) and the Prism (a BART made here with room for the
//! whole prompt): real generation, meaningless text; once with the embedded models.

use std::process::{Command, Output};

mod common;

fn prism(args: &[&str], cache: &std::path::Path) -> Output {
    let t5 = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf/t5-v1_1");
    let bart = cache.join("bart");
    if !bart.exists() {
        common::tiny_bart(&bart);
    }
    let config = cache.join("models.toml");
    let toml = format!(
        "[models]\noracle = {t5:?}\nprism = {bart:?}\noracle_max_input_tokens = 1500\n\
         prism_max_input_tokens = 1000\n\n[decoding]\nmax_new_tokens = 24\n"
    );
    std::fs::write(&config, toml).unwrap();
    Command::new(env!("CARGO_BIN_EXE_prism"))
        .arg("--config")
        .arg(&config)
        .args(args)
        // Keep the developer's own config and cache out of the test.
        .env("HOME", cache)
        .env("XDG_CONFIG_HOME", cache)
        .env("PRISM_CACHE_DIR", cache)
        .output()
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn both_models_explain_the_top_ranked_item() {
    let cache = tempfile::tempdir().unwrap();
    let ranked = json(&prism(&["rank", "--user", "u0042", "--k", "1", "--json"], cache.path()));
    let out = json(&prism(
        &["explain", "--dataset", "demo", "--user", "u0042", "--model", "both", "--json"],
        cache.path(),
    ));
    assert_eq!(out["user"], "u0042");
    assert_eq!(out["item"], ranked["items"][0]["item"], "the default item is the top-ranked one");
    for model in ["oracle", "prism"] {
        let e = &out[model];
        let text = e["text"].as_str().unwrap();
        assert!(!text.trim().is_empty(), "{model}: empty text");
        for key in ["latency_ms", "ttft_ms", "tokens_per_s"] {
            assert!(e[key].as_f64().unwrap() > 0.0, "{model}.{key}");
        }
        for key in ["new_tokens", "param_bytes", "peak_rss_bytes"] {
            assert!(e[key].as_u64().unwrap() > 0, "{model}.{key}");
        }
        for class in ["grounded", "item_only", "invented"] {
            assert!(e["grounding"][class].is_array(), "{model}.grounding.{class}");
        }
        // Every mention's span points at its surface text.
        for m in e["mentions"].as_array().unwrap() {
            let (start, end) = (m["start"].as_u64().unwrap() as usize, m["end"].as_u64().unwrap() as usize);
            assert_eq!(&text[start..end], m["surface"].as_str().unwrap());
        }
    }
    assert!(out["oracle"]["param_bytes"].as_u64() > out["prism"]["param_bytes"].as_u64());
}

/// The embedded models (`assets/models/`, no configuration) read and write slots: each writes the
/// recommended film as `[ITEM]`, the text a reader gets has every slot filled and names the film,
/// and the Prism's weights are several times smaller.
#[test]
fn the_embedded_models_name_the_recommended_item() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_prism"))
        .args(["explain", "--dataset", "demo", "--user", "u0002", "--model", "both", "--json"])
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .env("PRISM_CACHE_DIR", home.path())
        .output()
        .unwrap();
    let out = json(&out);
    let title = out["title"].as_str().unwrap();
    for model in ["oracle", "prism"] {
        let text = out[model]["text"].as_str().unwrap();
        assert!(text.contains(title), "{model} does not name {title:?}: {text:?}");
        let written = out[model]["written"].as_str().unwrap();
        assert!(written.contains("[ITEM]") && !text.contains('['), "{model}: {written:?} → {text:?}");
        assert!(
            out[model]["grounding"]["item_only"].as_array().unwrap().iter().any(|m| m == title),
            "{model}"
        );
    }
    let params = |model: &str| out[model]["param_bytes"].as_u64().unwrap();
    assert!(params("oracle") > 5 * params("prism"), "{} vs {}", params("oracle"), params("prism"));
}

#[test]
fn a_given_item_and_one_model() {
    let cache = tempfile::tempdir().unwrap();
    let out = json(&prism(
        &["explain", "--user", "u0042", "--item", "m0001", "--model", "prism", "--beams", "1", "--json"],
        cache.path(),
    ));
    assert_eq!(out["item"], "m0001");
    assert!(out.get("oracle").is_none() && out["prism"]["text"].is_string());
}

#[test]
fn unknown_user_or_item_is_a_clear_error() {
    let cache = tempfile::tempdir().unwrap();
    let out = prism(&["explain", "--user", "nobody", "--json"], cache.path());
    assert!(!out.status.success() && out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown user 'nobody'"));
    let out = prism(&["explain", "--user", "u0042", "--item", "m9999"], cache.path());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown item 'm9999'"));
}

#[test]
fn bench_measures_each_model_in_its_own_process() {
    let cache = tempfile::tempdir().unwrap();
    let args =
        ["bench", "--warmup", "1", "--runs", "3", "--beams", "2", "--max-new-tokens", "6", "--inputs", "2"];
    let out = json(&prism(&[&args[..], &["--json"]].concat(), cache.path()));
    assert_eq!(out["protocol"], serde_json::json!({"warmup": 1, "runs": 3}));
    assert_eq!(out["device"], "cpu");
    assert!(out["threads"].as_u64().unwrap() >= 1);
    for model in ["oracle", "prism"] {
        let m = &out[model];
        assert_eq!(
            (m["runs"].as_u64(), m["inputs"].as_u64(), m["num_beams"].as_u64()),
            (Some(3), Some(2), Some(2))
        );
        let (min, median, p95, max) = (
            m["min_ms"].as_f64().unwrap(),
            m["median_ms"].as_f64().unwrap(),
            m["p95_ms"].as_f64().unwrap(),
            m["max_ms"].as_f64().unwrap(),
        );
        assert!(0.0 < min && min <= median && median <= p95 && p95 <= max, "{model}: {m}");
        assert!(m["mean_new_tokens"].as_f64().unwrap() <= 6.0, "{model}");
        assert!(m["peak_memory_bytes"].as_u64().unwrap() > 0, "{model}: the model's own memory");
        assert!(m["param_bytes"].as_u64().unwrap() > 0 && m["max_kv_cache_bytes"].as_u64().unwrap() > 0);
        // A generation's own peak holds at least its KV cache.
        assert!(
            m["generation_peak_bytes"].as_u64().unwrap() >= m["max_kv_cache_bytes"].as_u64().unwrap(),
            "{m}"
        );
    }
    let ratio = |key: &str, a: f64, b: f64| {
        let value = out[key].as_f64().unwrap();
        assert!((value - a / b).abs() < 1e-9 * value.max(1.0), "{key}: {value} vs {a}/{b}");
    };
    ratio("speedup", out["oracle"]["mean_ms"].as_f64().unwrap(), out["prism"]["mean_ms"].as_f64().unwrap());
    ratio(
        "memory_ratio",
        out["oracle"]["peak_memory_bytes"].as_f64().unwrap(),
        out["prism"]["peak_memory_bytes"].as_f64().unwrap(),
    );
    let model_memory = |m: &serde_json::Value| {
        m["param_bytes"].as_f64().unwrap() + m["generation_peak_bytes"].as_f64().unwrap()
    };
    ratio("model_memory_ratio", model_memory(&out["oracle"]), model_memory(&out["prism"]));

    let inputs = json(&prism(&["bench", "--print-inputs", "--inputs", "2"], cache.path()));
    for model in ["oracle", "prism"] {
        let prompts = inputs[model].as_array().unwrap();
        assert_eq!(prompts.len(), 2, "{model}");
        assert_ne!(prompts[0], prompts[1], "{model}: two users, two prompts");
    }
    assert_ne!(inputs["oracle"][0], inputs["prism"][0], "each model reads its own prompt");

    let table = prism(&args, cache.path());
    assert!(table.status.success(), "{}", String::from_utf8_lossy(&table.stderr));
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.contains("mean ms / explanation") && text.contains("speed-up"), "{text}");
}

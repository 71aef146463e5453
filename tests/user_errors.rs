//! A user error is one clear message (issue 23): no backtrace after it when `RUST_BACKTRACE` is
//! set unless `--debug` asks for one, and a special token id outside the vocabulary names its
//! file and key.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn oracle() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/models/oracle")
}

/// A copy of the embedded Oracle (weights linked) with `edit` applied to its JSON file `name`.
fn broken_oracle(dir: &Path, name: &str, edit: impl Fn(&mut serde_json::Value)) {
    for file in ["config.json", "generation_config.json", "tokenizer.json"] {
        std::fs::copy(oracle().join(file), dir.join(file)).unwrap();
    }
    std::os::unix::fs::symlink(oracle().join("model.safetensors"), dir.join("model.safetensors")).unwrap();
    let path = dir.join(name);
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut value);
    std::fs::write(&path, value.to_string()).unwrap();
}

/// The embedded Oracle's vocabulary size.
fn vocab_size() -> u64 {
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(oracle().join("config.json")).unwrap()).unwrap();
    config["vocab_size"].as_u64().unwrap()
}

fn generate(model: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prism"))
        .args(["generate", "--model", model.to_str().unwrap(), "--prompt", "hi", "--max-new-tokens", "3"])
        .args(extra)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap()
}

#[test]
fn a_user_error_prints_no_backtrace_unless_debug_asks() {
    let dir = tempfile::tempdir().unwrap();
    // Weights of width 256 under a config of width 128: the checkpoint check lists every tensor
    // (one message of many lines), and with RUST_BACKTRACE set the error also carries a backtrace.
    broken_oracle(dir.path(), "config.json", |c| c["d_model"] = 128.into());
    let out = generate(dir.path(), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let shape = format!("wrong shape: shared.weight is [{}, 256]", vocab_size());
    assert!(err.starts_with("prism: ") && err.contains(&shape), "{err}");
    assert!(!err.to_lowercase().contains("backtrace"), "a backtrace after the message: {err}");

    let out = generate(dir.path(), &["--debug"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("wrong shape") && err.to_lowercase().contains("backtrace"), "{err}");
}

#[test]
fn special_token_ids_outside_the_vocabulary_name_file_and_key() {
    for (file, key) in [
        ("generation_config.json", "decoder_start_token_id"),
        ("generation_config.json", "eos_token_id"),
        ("generation_config.json", "forced_bos_token_id"),
        ("generation_config.json", "suppress_tokens"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let id = serde_json::Value::from(5000);
        broken_oracle(dir.path(), file, |c| {
            c[key] = if key == "suppress_tokens" { vec![id.clone()].into() } else { id.clone() }
        });
        let out = generate(dir.path(), &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{key}: {err}");
        let expected = format!(
            "{file}: {key} = 5000 is not a token of the model's vocabulary (ids 0 to {})",
            vocab_size() - 1
        );
        assert!(err.contains(&expected), "{key}: {err}");
    }
}

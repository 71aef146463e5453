//! `prism generate --model NAMESPACE/NAME[@REV]` through the real binary, on a Hugging Face cache
//! laid out as `huggingface_hub` writes it: `refs/main` holds the commit, `snapshots/<commit>/`
//! holds relative symlinks into `blobs/`. Offline by construction: the cache is a temp tree.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const COMMIT: &str = "3f1c2b9a0d4e5f60718293a4b5c6d7e8f9012345";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf").join(name)
}

/// `hub/models--acme--tiny-prism` holding a copy of the `t5-v1_0` fixture as a snapshot.
fn fake_cache(root: &Path) -> PathBuf {
    let hub = root.join("hub");
    let repo = hub.join("models--acme--tiny-prism");
    let snapshot = repo.join("snapshots").join(COMMIT);
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::create_dir_all(&snapshot).unwrap();
    for (i, file) in
        ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json"].iter().enumerate()
    {
        let blob = format!("{i:064x}");
        std::fs::copy(fixture("t5-v1_0").join(file), repo.join("blobs").join(&blob)).unwrap();
        std::os::unix::fs::symlink(format!("../../blobs/{blob}"), snapshot.join(file)).unwrap();
    }
    std::fs::write(repo.join("refs/main"), COMMIT).unwrap();
    hub
}

/// The binary with a clean Hugging Face environment plus `env`, run in `cwd`.
fn prism(cwd: &Path, env: &[(&str, &Path)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_prism"));
    cmd.current_dir(cwd).args(args).env("RAYON_NUM_THREADS", "2").env("HOME", cwd);
    for key in ["HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"] {
        cmd.env_remove(key);
    }
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.output().unwrap()
}

/// The golden beam-4 tokens of `fixture`'s first prompt, and the arguments that reproduce them.
fn beam_case(name: &str) -> (Vec<u64>, Vec<String>) {
    let golden: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(name).join("golden.json")).unwrap()).unwrap();
    let g = &golden["generations"][0];
    let tokens = g["beam"].as_array().unwrap()[1..].iter().map(|v| v.as_u64().unwrap()).collect();
    let args = [
        "--prompt",
        g["prompt"].as_str().unwrap(),
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
    ];
    (tokens, args.iter().map(|s| s.to_string()).collect())
}

fn generated_tokens(out: &Output) -> Vec<u64> {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["token_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect()
}

fn generate(cwd: &Path, env: &[(&str, &Path)], model: &str, rest: &[String]) -> Output {
    let mut args = vec!["generate", "--json", "--model", model];
    args.extend(rest.iter().map(String::as_str));
    prism(cwd, env, &args)
}

#[test]
fn an_id_resolves_from_the_cache_by_branch_or_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = fake_cache(tmp.path());
    let (expected, args) = beam_case("t5-v1_0");
    let env = [("HF_HUB_CACHE", hub.as_path())];
    assert_eq!(generated_tokens(&generate(tmp.path(), &env, "acme/tiny-prism", &args)), expected);
    let pinned = format!("acme/tiny-prism@{COMMIT}");
    assert_eq!(generated_tokens(&generate(tmp.path(), &env, &pinned, &args)), expected);

    // $HF_HOME/hub is the cache when $HF_HUB_CACHE is not set.
    let home = tmp.path().join("hf-home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::rename(&hub, home.join("hub")).unwrap();
    let env = [("HF_HOME", home.as_path())];
    assert_eq!(generated_tokens(&generate(tmp.path(), &env, "acme/tiny-prism", &args)), expected);
}

#[test]
fn a_local_directory_wins_over_an_id() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = fake_cache(tmp.path());
    let local = tmp.path().join("acme/tiny-prism");
    std::fs::create_dir_all(&local).unwrap();
    for file in ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(fixture("bart").join(file), local.join(file)).unwrap();
    }
    let (expected, args) = beam_case("bart");
    let env = [("HF_HUB_CACHE", hub.as_path())];
    assert_eq!(generated_tokens(&generate(tmp.path(), &env, "acme/tiny-prism", &args)), expected);
}

#[test]
fn a_missing_id_names_the_cache_and_the_download_command() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = fake_cache(tmp.path());
    let env = [("HF_HUB_CACHE", hub.as_path())];
    for (model, hint) in [
        ("acme/missing", "hf download acme/missing`"),
        ("acme/tiny-prism@v2", "hf download acme/tiny-prism --revision v2`"),
    ] {
        let out = prism(tmp.path(), &env, &["generate", "--model", model, "--prompt", "hello"]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(hub.to_str().unwrap()) && stderr.contains("$HF_HUB_CACHE"), "{stderr}");
        assert!(stderr.contains(hint) && stderr.contains("huggingface-cli download"), "{stderr}");
        assert!(out.stdout.is_empty());
    }
    // Without any setting, the default cache under $HOME is the one named.
    let out = prism(tmp.path(), &[], &["generate", "--model", "google/flan-t5-large", "--prompt", "hi"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&format!("{}/.cache/huggingface/hub", tmp.path().display())), "{stderr}");
}

//! Bounded inputs and memory (issue 23): a 50 KB prompt under a 4 GB address-space limit is cut
//! with one warning, refused with `--no-truncate`, and a generation whose estimate exceeds the
//! budget is refused before it runs — the process is never killed. The cut itself is the one
//! transformers' tokenizers make (`truncation=True`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use prism_explorer::model::engine::{Engine, EngineOptions};
use tokenizers::TruncationParams;

fn model(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/models").join(name)
}

/// About 50 KB of prose that tokenizes into thousands of tokens.
fn long_prompt() -> String {
    let sentence = "The user watched a slow drama about a lighthouse keeper, then a comedy with a \
                    talking dog, and rated both highly; explain why the next film suits them. ";
    sentence.repeat(50_000 / sentence.len() + 1)
}

/// `prism ARGS` under `ulimit -v 4000000` (KiB: about 4 GB of address space).
fn prism_limited(args: &[&str], home: &Path) -> Output {
    Command::new("bash")
        .arg("-c")
        .arg("ulimit -v 4000000; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_prism"))
        .args(args)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home)
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_50kb_prompt_under_a_4gb_limit_is_cut_with_one_warning() {
    let home = tempfile::tempdir().unwrap();
    let prompt = long_prompt();
    assert!(prompt.len() >= 50_000);
    let oracle = model("oracle");
    let args =
        ["generate", "--model", oracle.to_str().unwrap(), "--prompt", &prompt, "--max-new-tokens", "8"];
    let out = prism_limited(&args, home.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.matches("warning:").count(), 1, "{err}");
    assert!(
        err.contains("more than the model's input length of 320") && err.contains("tokens were dropped"),
        "{err}"
    );

    let mut strict = args.to_vec();
    strict.push("--no-truncate");
    let out = prism_limited(&strict, home.path());
    // An exit code, not a signal: refused, never killed.
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("more than the model's input length of 320 tokens"), "{err}");
    assert!(!err.contains("warning:"), "{err}");
}

#[test]
fn a_generation_over_the_memory_budget_is_refused_before_it_runs() {
    let home = tempfile::tempdir().unwrap();
    let prompt = long_prompt().repeat(2);
    let oracle = model("oracle");
    let dir = oracle.to_str().unwrap();
    // 32,244 input tokens and 5 beams of up to 100,000 new tokens would need key/value caches of
    // 7.9 GiB: more than the address space left under the limit, and more than an explicit
    // budget. (The encoder alone no longer would: it is linear in its input, 0.4 GB here.)
    let wide = [
        "generate",
        "--model",
        dir,
        "--prompt",
        &prompt,
        "--max-input-tokens",
        "40000",
        "--beams",
        "5",
        "--max-new-tokens",
        "100000",
    ];
    let out = prism_limited(&wide, home.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("would need about") && err.contains("ulimit -v"), "{err}");
    let mut budgeted = wide.to_vec();
    budgeted.extend(["--max-memory", "1G"]);
    let out = prism_limited(&budgeted, home.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("the memory budget (--max-memory) of 1.00 GiB"), "{}", stderr(&out));
    let mut nonsense = wide.to_vec();
    nonsense.extend(["--max-memory", "lots"]);
    let out = prism_limited(&nonsense, home.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--max-memory"), "{}", stderr(&out));
}

#[test]
fn the_cut_keeps_what_transformers_truncation_keeps() {
    let prompt = long_prompt();
    for name in ["oracle", "prism"] {
        let options = EngineOptions { max_input_tokens: Some(64), ..EngineOptions::default() };
        let engine = Engine::load(&model(name), &options).unwrap();
        let cut = engine.tokenize_counted(&prompt).unwrap();
        let mut reference = engine.tokenizer().clone();
        reference.with_truncation(Some(TruncationParams { max_length: 64, ..Default::default() })).unwrap();
        let expected = reference.encode(prompt.as_str(), true).unwrap();
        assert_eq!(cut.ids, expected.get_ids(), "{name}");
        let whole = engine.tokenizer().encode(prompt.as_str(), true).unwrap().len();
        assert_eq!(cut.dropped, whole - 64, "{name}");
        // A short prompt is left as it is.
        let short = engine.tokenize_counted("a short prompt").unwrap();
        assert_eq!(short.dropped, 0);
        assert_eq!(short.ids, engine.tokenizer().encode("a short prompt", true).unwrap().get_ids());
        let strict = Engine::load(&model(name), &EngineOptions { truncate: false, ..options }).unwrap();
        let err = strict.tokenize_counted(&prompt).unwrap_err().to_string();
        assert!(err.contains(&format!("{whole} tokens")) && err.contains("64 tokens"), "{err}");
    }
}

//! `prism data synth` end to end, and the committed demo dataset staying what the generator writes.

use std::path::Path;
use std::process::{Command, Output};

use prism_explorer::data::synth::{generate, write, SynthConfig};

fn prism(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prism")).args(args).output().unwrap()
}

fn synth_small(dir: &Path) -> Output {
    let dir = dir.to_str().unwrap();
    #[rustfmt::skip]
    let args = ["data", "synth", "--out", dir, "--seed", "3", "--users", "40", "--items", "90",
                "--interactions", "700", "--noise", "0.2", "--json"];
    prism(&args)
}

#[test]
fn synth_writes_the_generic_jsonl_files_deterministically() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let out = synth_small(a.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((summary["users"].as_u64(), summary["items"].as_u64()), (Some(40), Some(90)));
    assert_eq!(summary["interactions"], 700);
    assert!(summary["features"]["genre"].as_u64().is_some_and(|n| n >= 10), "{summary}");
    assert!(synth_small(b.path()).status.success());
    for name in ["items.jsonl.gz", "interactions.jsonl.gz", "dataset.json"] {
        let (x, y) =
            (std::fs::read(a.path().join(name)).unwrap(), std::fs::read(b.path().join(name)).unwrap());
        assert!(x == y, "{name} differs between two runs with the same seed");
    }
}

#[test]
fn synth_refuses_impossible_sizes_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let out = prism(&[
        "data",
        "synth",
        "--out",
        dir.path().to_str().unwrap(),
        "--users",
        "100",
        "--interactions",
        "50",
    ]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--interactions") && err.contains("1000"), "{err}");
}

#[test]
fn unknown_ranker_is_named_before_any_data_is_read() {
    let out = prism(&["rank", "--user", "u0001", "--ranker", "svd", "--json"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown ranker 'svd'"), "{err}");
}

/// assets/demo is the default-seed output; regenerate it with
/// `cargo run -- data synth --out assets/demo` after changing the generator.
#[test]
fn committed_demo_dataset_matches_the_generator() {
    let config = SynthConfig::default();
    let dir = tempfile::tempdir().unwrap();
    write(&generate(&config).unwrap(), &config, dir.path()).unwrap();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo");
    for name in ["items.jsonl.gz", "interactions.jsonl.gz", "dataset.json"] {
        let committed = std::fs::read(demo.join(name)).unwrap();
        assert!(committed == std::fs::read(dir.path().join(name)).unwrap(), "assets/demo/{name} is stale");
    }
}

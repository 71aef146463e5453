//! `prism eval explain` (`--from-file`, or generating the template and the references itself)
//! through the real binary on the fixture dataset in
//! tests/fixtures/explanations/ (generic JSONL): one JSON document on stdout, errors on stderr
//! naming the file, line and field, non-zero exit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/explanations").join(name)
}

fn prism(args: &[&str]) -> Output {
    let home = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_prism"))
        .arg("--dataset")
        .arg(fixture("dataset"))
        .arg("--config")
        .arg(fixture("config.toml"))
        .args(["eval", "explain"])
        .args(args)
        // Keep the developer's own config out of the test.
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn scores_a_file_as_one_json_document() {
    let rows = fixture("test.jsonl");
    let out = prism(&["--from-file", rows.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["split"], "test");
    assert_eq!(json["features"], 25);
    let oracle = &json["models"]["oracle"];
    assert_eq!(oracle["n"], 3);
    assert_eq!(oracle["mentions"]["invented"], 2);
    assert_eq!(oracle["invented_titles"], 1);
    assert!((oracle["invented_rate"].as_f64().unwrap() - 1.0 / 7.0).abs() < 1e-9);
    for key in ["bleu1", "bleu4", "usr", "fmr", "fcr", "div", "distinct1", "distinct2", "grounded_precision"]
    {
        assert!(oracle[key].is_number(), "{key}: {oracle}");
    }
    for key in ["rouge1", "rouge2", "rougeL"] {
        assert!(oracle[key]["f"].is_number(), "{key}: {oracle}");
    }
    assert!(oracle["ci95"]["rougeL_f"]["lower"].is_number(), "{oracle}");
    for key in ["title_named", "history_invented", "invented_any", "feature_misattributed"] {
        let share = oracle[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&share), "{key}: {oracle}");
        assert!(oracle["ci95"][key]["upper"].as_f64().unwrap() >= share, "{key}: {oracle}");
    }
    // One invented title among the oracle's three rows (the `invented_titles` above).
    assert!((oracle["history_invented"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9, "{oracle}");
    assert_eq!(json["models"]["prism"]["invented_rate"], 0.0);
    assert_eq!(json["comparisons"][0]["a"], "oracle");
    assert_eq!(json["comparisons"][0]["n"], 3);
}

#[test]
fn model_and_limit_select_rows() {
    let rows = fixture("test.jsonl");
    let out = prism(&["--from-file", rows.to_str().unwrap(), "--model", "prism", "--limit", "1", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let models = json["models"].as_object().unwrap();
    assert_eq!(models.keys().collect::<Vec<_>>(), ["prism"]);
    assert_eq!(models["prism"]["n"], 1);
    // One explanation: DIV needs a pair.
    assert!(models["prism"]["div"].is_null());
}

#[test]
fn a_malformed_row_names_file_line_and_field() {
    let rows = fixture("invalid/missing_text.jsonl");
    let out = prism(&["--from-file", rows.to_str().unwrap(), "--json"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(err.contains("missing_text.jsonl, line 2: field `text` is missing"), "{err}");
}

#[test]
fn rows_of_the_other_split_are_refused_with_a_hint() {
    let rows = fixture("test.jsonl");
    let out = prism(&["--from-file", rows.to_str().unwrap(), "--split", "dev", "--json"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("test.jsonl, line 1") && err.contains("--split test"), "{err}");
}

#[test]
fn without_a_file_runs_the_template_and_the_references_on_the_split() {
    let out = prism(&["--model", "template,reference", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let template = &json["models"]["template"];
    // The template writes the item's title and its own features, nothing else.
    assert_eq!(template["title_named"], 1.0);
    assert_eq!(template["history_invented"], 0.0);
    assert_eq!(template["invented_any"], 0.0);
    assert_eq!(template["feature_misattributed"], 0.0);
    assert_eq!(template["ci95"]["title_named"]["lower"], 1.0);
    let reference = &json["models"]["reference"];
    assert_eq!(reference["n"], template["n"]);
    assert!((reference["rougeL"]["f"].as_f64().unwrap() - 100.0).abs() < 1e-6, "{reference}");
    assert_eq!(json["comparisons"][0]["a"], "reference");
    assert!(json["comparisons"][0]["title_named"]["p_value"].is_number(), "{json}");
}

#[test]
fn without_a_file_only_the_known_systems_run() {
    let out = prism(&["--model", "gpt", "--json"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(err.contains("--model gpt") && err.contains("--from-file"), "{err}");
}

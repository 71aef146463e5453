//! BERTScore against the `bert-score` package (0.3.13): the random-weight BERT and RoBERTa
//! checkpoints (and a BERT whose negative similarities make the package's batch padding count) of
//! tests/fixtures/bertscore/ (written by make.py there, with the package's P/R/F1
//! in golden.json) scored with idf off and on, at several layers, with and without a baseline file,
//! must agree to 4 decimals. Then `prism eval explain --bertscore` through the real binary: the
//! scores in its JSON and table, a model named by Hugging Face id from a cache tree, and a report
//! without the flag that has no BERTScore at all.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use candle_core::Device;
use prism_explorer::explain::bertscore::{BertScoreOptions, BertScorer};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bertscore").join(name)
}

fn golden() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("golden.json")).unwrap()).unwrap()
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
}

#[test]
fn scores_match_the_bert_score_package_to_4_decimals() {
    let golden = golden();
    let candidates = strings(&golden["candidates"]);
    let references = strings(&golden["references"]);
    let cands: Vec<&str> = candidates.iter().map(String::as_str).collect();
    let refs: Vec<&str> = references.iter().map(String::as_str).collect();
    let cases = golden["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 13);
    for case in cases {
        let options = BertScoreOptions {
            model: fixture(case["model"].as_str().unwrap()),
            layer: Some(case["layer"].as_u64().unwrap() as usize),
            idf: case["idf"].as_bool().unwrap(),
            baseline: case["baseline"].as_bool().unwrap().then(|| fixture("baseline.csv")),
        };
        let scorer = BertScorer::load(&options, &Device::Cpu).unwrap();
        let ours = scorer.score(&cands, &refs).unwrap();
        for (key, pick) in [("P", 0), ("R", 1), ("F", 2)] {
            let theirs: Vec<f64> =
                case[key].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
                let o = [o.precision, o.recall, o.f][pick];
                assert!((o - t).abs() < 5e-5, "{case}\npair {i} {key}: ours {o}, bert-score {t}");
            }
        }
    }
}

/// The fixture dataset of eval explain's tests, whose references the rows below paraphrase.
fn explanations(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/explanations").join(name)
}

fn prism(env: &[(&str, &Path)], args: &[&str]) -> Output {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_prism"));
    cmd.arg("--dataset")
        .arg(explanations("dataset"))
        .arg("--config")
        .arg(explanations("config.toml"))
        .args(["eval", "explain", "--from-file"])
        .arg(explanations("test.jsonl"))
        .args(args)
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path());
    for key in ["HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"] {
        cmd.env_remove(key);
    }
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.output().unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `hub/models--acme--tiny-roberta` holding the RoBERTa fixture as a snapshot linking into blobs/.
fn fake_cache(root: &Path) -> PathBuf {
    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
    let repo = root.join("hub/models--acme--tiny-roberta");
    let snapshot = repo.join("snapshots").join(COMMIT);
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::create_dir_all(&snapshot).unwrap();
    for (i, file) in
        ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"].iter().enumerate()
    {
        let blob = format!("{i:064x}");
        std::fs::copy(fixture("roberta").join(file), repo.join("blobs").join(&blob)).unwrap();
        std::os::unix::fs::symlink(format!("../../blobs/{blob}"), snapshot.join(file)).unwrap();
    }
    std::fs::write(repo.join("refs/main"), COMMIT).unwrap();
    root.join("hub")
}

#[test]
fn eval_explain_reports_bertscore_only_when_asked() {
    let plain = json(&prism(&[], &["--json"]));
    assert!(plain.get("bertscore").is_none(), "{plain}");
    assert!(plain["models"]["oracle"].get("bertscore").is_none());
    assert!(plain["comparisons"][0].get("bertscore_f").is_none());

    let root = tempfile::tempdir().unwrap();
    let hub = fake_cache(root.path());
    let by_dir = fixture("roberta");
    let args =
        ["--bertscore", by_dir.to_str().unwrap(), "--bertscore-layer", "2", "--bertscore-idf", "--json"];
    let scored = json(&prism(&[], &args));
    let by_id = json(&prism(&[("HF_HUB_CACHE", &hub)], &{
        let mut a = args;
        a[1] = "acme/tiny-roberta";
        a
    }));
    let settings = &scored["bertscore"];
    assert_eq!((settings["layer"].as_u64(), settings["idf"].as_bool()), (Some(2), Some(true)), "{settings}");
    for model in ["oracle", "prism"] {
        let b = &scored["models"][model]["bertscore"];
        for key in ["precision", "recall", "f"] {
            let mean = b[key].as_f64().unwrap();
            let ci = &b["ci95"][key];
            assert!(ci["lower"].as_f64().unwrap() <= mean && mean <= ci["upper"].as_f64().unwrap(), "{b}");
            assert_eq!(by_id["models"][model]["bertscore"][key], b[key], "the id is the same checkpoint");
        }
    }
    assert!(scored["comparisons"][0]["bertscore_f"]["difference"]["estimate"].is_number(), "{scored}");
    // Everything else is as without the flag.
    assert_eq!(scored["models"]["oracle"]["rougeL"], plain["models"]["oracle"]["rougeL"]);

    let table = prism(&[], &args[..5]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(table.status.success(), "{}", String::from_utf8_lossy(&table.stderr));
    assert!(text.contains("BERTScore: ") && text.contains("layer 2, idf, not rescaled"), "{text}");
    let f1 = text.lines().find(|l| l.starts_with("BERTScore F1")).unwrap_or_else(|| panic!("{text}"));
    let oracle = scored["models"]["oracle"]["bertscore"]["f"].as_f64().unwrap();
    assert!(f1.contains(&format!("{oracle:.4} [")), "{f1}");
}

#[test]
fn bad_bertscore_settings_are_named() {
    let roberta = fixture("roberta");
    let out = prism(&[], &["--bertscore", roberta.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("pass --bertscore-layer N"), "{err}");
    let out = prism(&[], &["--bertscore", roberta.to_str().unwrap(), "--bertscore-layer", "9"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("layer 9 asked for") && err.contains("num_hidden_layers 3"), "{err}");
    let root = tempfile::tempdir().unwrap();
    let bad = root.path().join("baseline.csv");
    std::fs::write(&bad, "LAYER,P,R,F\n0,0.1,0.2,0.3\n").unwrap();
    let out = prism(
        &[],
        &[
            "--bertscore",
            roberta.to_str().unwrap(),
            "--bertscore-layer",
            "1",
            "--bertscore-baseline",
            bad.to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("baseline.csv has baselines for layers 0 to 0 only"), "{err}");
    let out = prism(&[], &["--bertscore-idf"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--bertscore"), "{err}");
}

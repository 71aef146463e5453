//! `prism explain --split … --out F.jsonl` through the real binary on the demo data, with tiny
//! random checkpoints standing in for the Oracle (the T5 fixture) and the Prism (a tiny BART): a
//! run killed mid-way and run again leaves each row exactly once, a cut-off last line is repaired,
//! `eval explain --from-file` scores the file, and `--prompts-only` gives the same prompts as
//! `prism bench --print-inputs`; a Prism checkpoint that records its history window is prompted with it.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

fn command(home: &Path) -> Command {
    let t5 = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf/t5-v1_1");
    let bart = home.join("bart");
    if !bart.exists() {
        common::tiny_bart(&bart);
    }
    let config = home.join("models.toml");
    let toml = format!(
        "[models]\noracle = {t5:?}\nprism = {bart:?}\noracle_max_input_tokens = 400\n\
         prism_max_input_tokens = 400\n\n[decoding]\nbeams = 1\nmax_new_tokens = 16\n"
    );
    std::fs::write(&config, toml).unwrap();
    let mut c = common::command(&[], home);
    c.arg("--config").arg(&config);
    c
}

fn prism(args: &[&str], home: &Path) -> Output {
    command(home).args(args).output().unwrap()
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn a_killed_run_continues_to_exactly_one_row_per_sample_and_model_and_the_file_scores() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("F.jsonl");
    let args = ["explain", "--split", "test", "--limit", "50", "--out", out.to_str().unwrap()];
    let mut child =
        command(home.path()).args(args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let written = std::fs::read(&out).map(|b| b.iter().filter(|&&c| c == b'\n').count()).unwrap_or(0);
        if written >= 5 {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
            panic!("the run ended ({status}) before it could be killed: {stderr}");
        }
        assert!(Instant::now() < deadline, "no rows after 120 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = std::fs::read(&out).unwrap();
    let complete = before.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1);
    assert!(complete > 0 && lines(&out).len() < 100, "killed mid-way");
    // What a kill in the middle of a write leaves: a line without its end.
    let mut torn = before[..complete].to_vec();
    torn.extend_from_slice(b"{\"user\":\"u00");
    std::fs::write(&out, &torn).unwrap();
    let kept = complete;

    let summary = common::json(&prism(&[&args[..], &["--json"]].concat(), home.path()));
    assert_eq!(summary["torn_line_repaired"], true);
    assert_eq!(summary["rows"], 100);
    assert_eq!(summary["samples"], 50);
    let rows = lines(&out);
    assert_eq!(rows.len(), 100, "50 test samples × 2 models");
    assert_eq!(summary["written"].as_u64().unwrap() + summary["already"].as_u64().unwrap(), 100);
    assert_eq!(std::fs::read(&out).unwrap()[..kept], before[..kept], "rows written before the kill are kept");
    let keys: HashSet<(String, String, String)> = rows
        .iter()
        .map(|r| {
            for field in ["latency_ms", "new_tokens", "num_beams", "max_new_tokens"] {
                assert!(r[field].is_number(), "{field}: {r}");
            }
            let s = |k: &str| r[k].as_str().unwrap().to_owned();
            (s("model"), s("user"), s("item"))
        })
        .collect();
    assert_eq!(keys.len(), 100, "no row twice");
    for model in ["oracle", "prism"] {
        assert_eq!(keys.iter().filter(|k| k.0 == model).count(), 50, "{model}");
    }

    let again = common::json(&prism(&[&args[..], &["--json"]].concat(), home.path()));
    assert_eq!((again["written"].as_u64(), again["already"].as_u64()), (Some(0), Some(100)));

    let report = common::json(&prism(
        &["eval", "explain", "--from-file", out.to_str().unwrap(), "--json"],
        home.path(),
    ));
    for model in ["oracle", "prism"] {
        assert_eq!(report["models"][model]["n"], 50, "{model}");
        assert!(report["models"][model]["rougeL"]["f"].is_number(), "{model}");
    }
    assert_eq!(report["comparisons"][0]["n"], 50);
}

#[test]
fn prompts_only_writes_what_bench_print_inputs_prints_and_files_are_not_mixed() {
    let home = tempfile::tempdir().unwrap();
    let prompts = home.path().join("P.jsonl");
    let p = prompts.to_str().unwrap();
    let out =
        prism(&["explain", "--split", "test", "--limit", "3", "--prompts-only", "--out", p], home.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = lines(&prompts);
    assert_eq!(rows.len(), 6);
    let inputs = common::json(&prism(&["bench", "--print-inputs", "--inputs", "3"], home.path()));
    for model in ["oracle", "prism"] {
        let exported: Vec<&serde_json::Value> =
            rows.iter().filter(|r| r["model"] == model).map(|r| &r["prompt"]).collect();
        let printed: Vec<&serde_json::Value> = inputs[model].as_array().unwrap().iter().collect();
        assert_eq!(exported, printed, "{model}");
    }

    // Explanations into a prompts file, or another decoding into an explanations file, are refused.
    let out =
        prism(&["explain", "--split", "test", "--limit", "3", "--model", "prism", "--out", p], home.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("line 1: the file holds prompts"), "{err}");
    let f = home.path().join("F.jsonl");
    let f = f.to_str().unwrap();
    let first = ["explain", "--split", "dev", "--limit", "2", "--model", "prism", "--out", f];
    assert!(prism(&first, home.path()).status.success());
    let out = prism(&[&first[..], &["--beams", "2"]].concat(), home.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("line 1: model \"prism\" explained with beam 1"), "{err}");
    let out = prism(&["explain", "--split", "test", "--model", "prism", "--out", f], home.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("is not one of the test samples"), "{err}");
}

#[test]
fn a_prism_checkpoint_reads_the_history_window_its_config_records() {
    let home = tempfile::tempdir().unwrap();
    let bart = home.path().join("bart");
    common::tiny_bart(&bart);
    let history_lines = |prompt: &serde_json::Value| {
        let text = prompt.as_str().unwrap();
        let history = text.split("Recent history:\n").nth(1).unwrap().split("Why it fits:").next().unwrap();
        history.lines().count()
    };
    let exported = |name: &str| -> Vec<usize> {
        let file = home.path().join(name);
        let args =
            ["explain", "--split", "test", "--limit", "3", "--model", "prism", "--max-input-tokens", "1024"];
        let args = [&args[..], &["--prompts-only", "--out"]].concat();
        let out = prism(&[&args[..], &[file.to_str().unwrap()]].concat(), home.path());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        lines(&file).iter().map(|row| history_lines(&row["prompt"])).collect()
    };
    // configs/default.toml's 10 items, cut to the input length by this tiny tokenizer.
    let configured = exported("configured.jsonl");
    assert!(configured.iter().all(|&n| n > 3), "{configured:?}");

    let config_path = bart.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["prism_history_len"] = 3.into();
    std::fs::write(&config_path, config.to_string()).unwrap();
    assert_eq!(exported("recorded.jsonl"), [3; 3]);
    let explain = ["explain", "--user", "u0001", "--model", "prism", "--max-input-tokens", "1024", "--json"];
    let explained = common::json(&prism(&explain, home.path()));
    assert_eq!(history_lines(&explained["prism"]["prompt"]), 3, "{explained}");

    config["prism_history_len"] = "3".into();
    std::fs::write(&config_path, config.to_string()).unwrap();
    let out = prism(&explain, home.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("config.json: `prism_history_len`"), "{err}");
}

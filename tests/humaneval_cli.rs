//! A whole human evaluation through the real binary on the demo dataset: `new`
//! with the `template` system and an explanations file, `resume` answering three items through a
//! pipe, a kill while the fourth is on screen, a torn line, `resume` to the end, then `report`
//! and `export` giving back exactly the answers. And a study whose systems are the configured
//! models (tiny random checkpoints), made through the engine.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Output, Stdio};

mod common;
use common::{command, json, write_xq7, XQ7};

fn prism(args: &[&str], home: &Path) -> Output {
    command(args, home).output().unwrap()
}

struct Annotator {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// Everything the annotator was shown.
    seen: String,
}

impl Annotator {
    fn start(dir: &Path, home: &Path) -> Annotator {
        let mut child = command(&["human-eval", "resume", dir.to_str().unwrap(), "--annotator", "ann"], home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Annotator { child, stdin, stdout, seen: String::new() }
    }

    /// Reads up to the end of the next whole screen (its `keys:` line) and returns the screen.
    fn screen(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            assert!(self.stdout.read_line(&mut line).unwrap() > 0, "the session ended early: {lines:?}");
            self.seen.push_str(&line);
            let line = line.trim_start_matches("> ").trim_end().to_owned();
            // Status lines after single commands come before the screen; keep the screen only.
            if line.starts_with("── ") {
                lines.clear();
            }
            let end = line.starts_with("keys:");
            lines.push(line);
            if end {
                return lines;
            }
        }
    }

    fn send(&mut self, text: &str) {
        self.stdin.write_all(text.as_bytes()).unwrap();
        self.stdin.flush().unwrap();
    }

    /// Answers the item on `screen`: the template 2 3 1, the xq7 4 5 3 and preferred.
    fn answer(&mut self, screen: &[String]) {
        let mut commands = String::new();
        for line in screen {
            let Some((letter, text)) = line.strip_prefix("  ").and_then(|l| l.split_once(": ")) else {
                continue;
            };
            if letter.len() != 1 {
                continue;
            }
            if text.starts_with(XQ7) {
                commands.push_str(&format!("{letter} 4 5 3\npref {letter}\n"));
            } else {
                assert!(text.starts_with("We recommend"), "{text}");
                commands.push_str(&format!("{letter} 2 3 1\n"));
            }
        }
        commands.push_str("next\n");
        self.send(&commands);
    }
}

fn progress(screen: &[String]) -> String {
    screen.iter().find(|l| l.starts_with("── item")).cloned().unwrap_or_default()
}

#[test]
fn new_annotate_kill_resume_report_export() {
    let home = tempfile::tempdir().unwrap();
    let xq7 = home.path().join("xq7-explanations.jsonl");
    write_xq7(&xq7);
    let dir = home.path().join("study");
    let systems = format!("template,xq7=file:{}", xq7.display());
    let created = json(&prism(
        &[
            "human-eval",
            "new",
            "--dataset",
            "demo",
            "--out",
            dir.to_str().unwrap(),
            "--samples",
            "6",
            "--seed",
            "5",
            "--systems",
            &systems,
            "--attention-checks",
            "1",
            "--json",
        ],
        home.path(),
    ));
    assert_eq!((created["items"].as_u64(), created["attention_checks"].as_u64()), (Some(6), Some(1)));
    assert_eq!(created["pool"], 300, "only pairs the file covers");
    assert_eq!(created["reference"], "template", "the configured reference (prism) is not a system");
    let again =
        prism(&["human-eval", "new", "--out", dir.to_str().unwrap(), "--systems", &systems], home.path());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a study"));

    // Three answers, then a kill while the fourth item is on screen (it appears only after the
    // third answer was appended and fsynced).
    let mut ann = Annotator::start(&dir, home.path());
    for k in 1..=3 {
        let screen = ann.screen();
        assert!(progress(&screen).starts_with(&format!("── item {k}/7")), "{screen:?}");
        ann.answer(&screen);
    }
    let fourth = ann.screen();
    assert!(progress(&fourth).contains("3/7 answered"), "{fourth:?}");
    ann.child.kill().unwrap();
    ann.child.wait().unwrap();
    let mut seen = ann.seen;
    // And a torn line, as if the kill had come in the middle of writing an answer.
    let file = dir.join("annotations/ann.jsonl");
    std::fs::OpenOptions::new().append(true).open(&file).unwrap().write_all(b"{\"record\":\"judg").unwrap();

    let mut ann = Annotator::start(&dir, home.path());
    let screen = ann.screen();
    assert!(progress(&screen).starts_with("── item 4/7"), "{screen:?}");
    assert_eq!(screen, fourth, "the item that was on screen is asked again");
    // Go back to item 3, see the recorded answer, and come forward again without a change.
    ann.send("back\n");
    let back = ann.screen();
    assert!(progress(&back).starts_with("── item 3/7"), "{back:?}");
    assert!(back.iter().any(|l| l.contains("your recorded answer")), "{back:?}");
    ann.send("next\n");
    let mut screen = ann.screen();
    for _ in 4..=7 {
        ann.answer(&screen);
        screen = ann.screen();
    }
    assert!(screen.iter().any(|l| l.contains("every item is answered")), "{screen:?}");
    ann.send("quit\n");
    drop(ann.stdin);
    std::io::Read::read_to_string(&mut ann.stdout, &mut ann.seen).unwrap();
    let out = ann.child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ann.jsonl, line 5: torn last line (15 bytes"), "{stderr}");
    seen.push_str(&ann.seen);
    assert!(seen.contains("7 of 7 items answered by ann"));
    // Blinding: the annotator never saw a system name or where a text came from.
    for secret in ["xq7", "template", "file:", "explanations.jsonl"] {
        assert!(!seen.contains(secret), "the annotator saw {secret:?}");
    }

    let report = json(&prism(&["human-eval", "report", dir.to_str().unwrap(), "--json"], home.path()));
    for (system, expected) in [("template", [2.0, 3.0, 1.0]), ("xq7", [4.0, 5.0, 3.0])] {
        for (criterion, mean) in ["faithfulness", "personalization", "persuasiveness"].iter().zip(expected) {
            let s = &report["scores"][system][criterion];
            assert_eq!(
                (s["n"].as_u64(), s["mean"].as_f64(), s["std"].as_f64()),
                (Some(6), Some(mean), Some(0.0))
            );
        }
    }
    // Every xq7 − template difference is +2: Wilcoxon by exact enumeration p = 2/64; t-test p = 0.
    let t = &report["tests"]["xq7"]["faithfulness"];
    assert_eq!(t["wilcoxon"]["p_value"].as_f64(), Some(0.03125));
    assert_eq!(t["t_test"]["p_value"].as_f64(), Some(0.0));
    let pair = &report["preferences"]["pairwise"][0];
    assert_eq!(
        (pair["system"].as_str(), pair["losses"].as_u64(), pair["n"].as_u64()),
        (Some("template"), Some(6), Some(6))
    );
    assert!(report["agreement"]["fleiss_kappa"]["undefined"].as_str().unwrap().contains("two annotators"));
    // The attention check fails exactly when the decoy was the xq7's text (rated 4 and preferred).
    let key: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("key.json")).unwrap()).unwrap();
    let check = key["items"].as_array().unwrap().iter().find(|i| i.get("decoy").is_some()).unwrap();
    let decoy_system = &key["systems"]
        [check["systems"][check["decoy"]["text"].as_u64().unwrap() as usize].as_u64().unwrap() as usize]
        ["name"];
    let failures = report["attention_failures"].as_array().unwrap();
    assert_eq!(failures.len(), usize::from(decoy_system == "xq7"), "{failures:?}");
    assert_eq!(report["annotators"][0]["answered"], 7);
    assert!(report["median_ms_per_item"].as_f64().is_some());
    assert!(report["warnings"].as_array().unwrap().is_empty(), "the resumed session repaired the file");

    let out = prism(&["human-eval", "export", dir.to_str().unwrap(), "--format", "csv"], home.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let csv = String::from_utf8(out.stdout).unwrap();
    assert_eq!(csv.lines().count(), 1 + 7 * 2);
    // Columns: annotator item user dataset_item system slot (3 criteria) preference preferred
    // attention_check decoy note ms answered_at_ms.
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let xq7: Vec<&Vec<&str>> = rows.iter().filter(|r| r[4] == "xq7" && r[11] == "false").collect();
    assert_eq!(xq7.len(), 6);
    assert!(xq7.iter().all(|r| r[6..11] == ["4", "5", "3", "xq7", "true"]), "{xq7:?}");
}

#[test]
fn resume_needs_a_study_and_a_valid_name() {
    let home = tempfile::tempdir().unwrap();
    let out =
        prism(&["human-eval", "resume", home.path().to_str().unwrap(), "--annotator", "ann"], home.path());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a human-evaluation study"));
    let out =
        prism(&["human-eval", "resume", home.path().to_str().unwrap(), "--annotator", "../x"], home.path());
    assert!(String::from_utf8_lossy(&out.stderr).contains("annotator name \"../x\" is not allowed"));
    let out = prism(&["human-eval", "new", "--out", "x", "--systems", "template,gpt"], home.path());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown system \"gpt\""));
}

/// The `oracle` and `prism` systems are the configured models, run by the engine once per item when
/// the study is made (tiny random checkpoints here: real generation, meaningless text).
#[test]
fn model_systems_write_their_texts_once_into_the_study() {
    let home = tempfile::tempdir().unwrap();
    let t5 = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf/t5-v1_1");
    let bart = home.path().join("bart");
    common::tiny_bart(&bart);
    let config = home.path().join("models.toml");
    let toml = format!(
        "[models]\noracle = {t5:?}\nprism = {bart:?}\noracle_max_input_tokens = 1500\n\
         prism_max_input_tokens = 1000\n\n[decoding]\nbeams = 1\nmax_new_tokens = 12\n"
    );
    std::fs::write(&config, toml).unwrap();
    let dir = home.path().join("study");
    let d = dir.to_str().unwrap();
    let c = config.to_str().unwrap();
    let args = ["--config", c, "human-eval", "new", "--dataset", "demo", "--out", d, "--samples", "3"];
    let rest = ["--systems", "oracle,prism", "--attention-checks", "0", "--json"];
    let created = json(&prism(&[&args[..], &rest[..]].concat(), home.path()));
    assert_eq!(created["items"], 3);
    let study: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("study.json")).unwrap()).unwrap();
    for item in study["items"].as_array().unwrap() {
        let texts = item["texts"].as_array().unwrap();
        assert_eq!(texts.len(), 2, "{item}");
        assert!(texts.iter().all(|t| !t.as_str().unwrap().trim().is_empty()), "{item}");
    }
    let study_text = std::fs::read_to_string(dir.join("study.json")).unwrap();
    assert!(!study_text.contains("oracle") && !study_text.contains("prism"), "blind: {study_text}");
    let key = std::fs::read_to_string(dir.join("key.json")).unwrap();
    assert!(key.contains("oracle") && key.contains("prism"), "{key}");
}

#[test]
fn a_second_session_for_the_same_annotator_is_refused_while_the_first_runs() {
    let home = tempfile::tempdir().unwrap();
    let xq7 = home.path().join("xq7-explanations.jsonl");
    write_xq7(&xq7);
    let dir = home.path().join("study");
    let systems = format!("template,xq7=file:{}", xq7.display());
    let study = dir.to_str().unwrap();
    let new =
        ["human-eval", "new", "--dataset", "demo", "--out", study, "--samples", "3", "--systems", &systems];
    json(&prism(&[&new[..], &["--json"]].concat(), home.path()));

    let mut first = Annotator::start(&dir, home.path());
    // The first screen is drawn only once the session holds its lock.
    first.screen();
    let second = prism(&["human-eval", "resume", study, "--annotator", "ann"], home.path());
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{err}");
    assert!(err.contains("\"ann\" already has a session open"), "{err}");
    assert!(err.contains(&format!("held by process {} on host", first.child.id())), "{err}");
    // Another annotator is not held up.
    let other = prism(&["human-eval", "resume", study, "--annotator", "bob"], home.path());
    assert!(other.status.success(), "{}", String::from_utf8_lossy(&other.stderr));

    // A killed session leaves its lock file behind, but not its lock.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    assert!(dir.join("annotations/ann.lock").exists());
    let third = prism(&["human-eval", "resume", study, "--annotator", "ann"], home.path());
    assert!(third.status.success(), "{}", String::from_utf8_lossy(&third.stderr));
}

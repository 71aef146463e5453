//! `prism human-eval report` and `export` on a hand-written study (tests/fixtures/humaneval/small:
//! two systems x and y, two criteria, four items plus one attention check, annotators ann and
//! bob, bob changing his answer to q002 once), every number computed by hand below; and the
//! errors for broken study directories.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/humaneval/small")
}

fn prism(args: &[&str], home: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prism"))
        .args(args)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home)
        .env("PRISM_CACHE_DIR", home)
        .output()
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn close(value: &serde_json::Value, expected: f64) {
    let v = value.as_f64().unwrap_or_else(|| panic!("not a number: {value}"));
    assert!((v - expected).abs() < 1e-9, "{v} != {expected}");
}

#[test]
fn report_matches_hand_computed_statistics() {
    let home = tempfile::tempdir().unwrap();
    let dir = fixture();
    let r = json(&prism(&["human-eval", "report", dir.to_str().unwrap(), "--json"], home.path()));
    assert_eq!(r["reference"], "y");
    assert_eq!(
        (r["items"].as_u64(), r["items_answered"].as_u64(), r["attention_items"].as_u64()),
        (Some(4), Some(4), Some(1))
    );

    // Item scores (mean of ann and bob; q005 is the attention check and left out):
    // x faithfulness 4.5 4.5 3 4.5 → mean 4.125, std √(1.6875/3) = 0.75;
    // y faithfulness 2 3.5 2.5 1.5 → mean 2.375, std √(2.1875/3).
    let x_f = &r["scores"]["x"]["faithfulness"];
    close(&x_f["mean"], 4.125);
    close(&x_f["std"], 0.75);
    assert_eq!(x_f["n"], 4);
    let (lo, hi) = (x_f["ci"]["lower"].as_f64().unwrap(), x_f["ci"]["upper"].as_f64().unwrap());
    assert!((3.0..=4.125).contains(&lo) && (4.125..=4.5).contains(&hi), "{lo} {hi}");
    close(&r["scores"]["y"]["faithfulness"]["mean"], 2.375);
    close(&r["scores"]["y"]["faithfulness"]["std"], (2.1875f64 / 3.0).sqrt());
    // x persuasiveness 3.5 4 2.5 4.5 → 3.625; y 1.5 2.5 4 2.5 → 2.625.
    close(&r["scores"]["x"]["persuasiveness"]["mean"], 3.625);
    close(&r["scores"]["y"]["persuasiveness"]["mean"], 2.625);

    // x − y faithfulness: d = 2.5 1 0.5 3, mean 1.75, sd √(4.25/3), t = 1.75 / (sd/2).
    let t = &r["tests"]["x"]["faithfulness"];
    assert!(r["tests"].get("y").is_none(), "the reference is not tested against itself");
    let t_stat = 1.75 / ((4.25f64 / 3.0).sqrt() / 2.0);
    close(&t["t_test"]["t"], t_stat);
    close(&t["t_test"]["df"], 3.0);
    // Student t with 3 df: F(t) = ½ + (θ + sinθ·cosθ)/π with θ = atan(t/√3).
    let theta = (t_stat / 3f64.sqrt()).atan();
    let cdf = 0.5 + (theta + theta.sin() * theta.cos()) / std::f64::consts::PI;
    close(&t["t_test"]["p_value"], 2.0 * (1.0 - cdf));
    // Wilcoxon: all four differences positive, distinct → R+ = 10, R− = 0, exact p = 2/16.
    close(&t["wilcoxon"]["statistic"], 0.0);
    close(&t["wilcoxon"]["r_plus"], 10.0);
    close(&t["wilcoxon"]["p_value"], 0.125);
    // Persuasiveness d = 2 1.5 −1.5 2: ranks 3.5 1.5 1.5 3.5 → R+ = 8.5, R− = 1.5; of the 16
    // sign flips, R+ ∈ {0, 1.5, 8.5, 10} (6 of them) is as far from 5 as 8.5 → p = 6/16.
    let w = &r["tests"]["x"]["persuasiveness"]["wilcoxon"];
    close(&w["statistic"], 1.5);
    close(&w["p_value"], 0.375);

    // Preferences (8 judgements): ann x x tie x, bob x y y x (bob's later q002 answer wins).
    let p = &r["preferences"];
    assert_eq!(p["n"], 8);
    close(&p["share"]["x"], 0.625);
    close(&p["share"]["y"], 0.25);
    close(&p["tie_share"], 0.125);
    let pair = &p["pairwise"][0];
    assert_eq!((pair["system"].as_str(), pair["against"].as_str()), (Some("x"), Some("y")));
    assert_eq!(
        (pair["wins"].as_u64(), pair["ties"].as_u64(), pair["losses"].as_u64()),
        (Some(5), Some(1), Some(2))
    );
    close(&pair["win_rate"], 0.625);

    // Fleiss on (x, y, tie) counts [2,0,0] [1,1,0] [0,1,1] [2,0,0]: P̄ = 0.5, Pe = 30/64 → 1/17.
    let a = &r["agreement"];
    close(&a["fleiss_kappa"], 1.0 / 17.0);
    assert_eq!(a["fleiss_items"], 4);
    // Cohen ann–bob: po = 0.5, pe = ¾·½ = 0.375 → 0.2.
    close(&a["cohen_kappa"][0]["kappa"], 0.2);
    assert_eq!(a["cohen_kappa"][0]["annotators"], serde_json::json!(["ann", "bob"]));
    // Krippendorff ordinal, faithfulness: pairs (4,5) (2,2) (5,4) (3,4) (3,3) (3,2) (4,5) (1,2);
    // n_c = 1 4 4 4 3; Σ o·δ² = 150, Σ n_c·n_k·δ² = 10336 → α = 1 − 15·150/10336.
    close(&a["krippendorff_alpha"]["faithfulness"], 1.0 - 15.0 * 150.0 / 10336.0);
    assert!(a["krippendorff_alpha"]["persuasiveness"].is_number());

    // Attention check q005: ann rated the decoy 4 (> 2) and fails; bob rated it 1.
    assert_eq!(
        r["attention_failures"],
        serde_json::json!([{"annotator": "ann", "item": "q005", "rating": 4, "preferred": false}])
    );
    // Times: ann 1 2 3 4 5 s; bob 1, 0.5 + 1.5, 6, 8, 1 s → medians 3 s, 2 s, all 2.5 s.
    close(&r["annotators"][0]["median_ms_per_item"], 3000.0);
    close(&r["annotators"][1]["median_ms_per_item"], 2000.0);
    assert_eq!(
        (r["annotators"][1]["attention_checks"].as_u64(), r["annotators"][1]["attention_failures"].as_u64()),
        (Some(1), Some(0))
    );
    close(&r["median_ms_per_item"], 2500.0);

    // Another reference flips the direction of the tests.
    let r = json(&prism(
        &["human-eval", "report", dir.to_str().unwrap(), "--reference", "x", "--json"],
        home.path(),
    ));
    close(&r["tests"]["y"]["faithfulness"]["t_test"]["mean_difference"], -1.75);

    let text = prism(&["human-eval", "report", dir.to_str().unwrap()], home.path());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("x vs y: win 62.5%  tie 12.5%  loss 25.0%"), "{text}");
    assert!(text.contains("attention check failed: ann on q005 (decoy rated 4)"), "{text}");
}

#[test]
fn export_unblinds_current_answers() {
    let home = tempfile::tempdir().unwrap();
    let dir = fixture();
    let out = prism(&["human-eval", "export", dir.to_str().unwrap(), "--format", "jsonl"], home.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2 * 5 * 2, "annotators × items × systems, superseded answers left out");
    let bob_q002_x =
        rows.iter().find(|r| r["annotator"] == "bob" && r["item"] == "q002" && r["system"] == "x").unwrap();
    assert_eq!(bob_q002_x["ratings"], serde_json::json!({"faithfulness": 4, "persuasiveness": 4}));
    assert_eq!(
        (bob_q002_x["preference"].as_str(), bob_q002_x["preferred"].as_bool()),
        (Some("y"), Some(false))
    );
    assert_eq!((bob_q002_x["slot"].as_str(), bob_q002_x["ms"].as_u64()), (Some("B"), Some(2000)));
    assert_eq!(bob_q002_x["answered_at_ms"], 1700000012000u64);
    let decoy =
        rows.iter().find(|r| r["annotator"] == "ann" && r["item"] == "q005" && r["system"] == "y").unwrap();
    assert_eq!((decoy["attention_check"].as_bool(), decoy["decoy"].as_bool()), (Some(true), Some(true)));

    let out = prism(&["human-eval", "export", dir.to_str().unwrap()], home.path());
    assert!(String::from_utf8_lossy(&out.stderr).contains("export needs --format csv or --format jsonl"));
    let out = prism(&["human-eval", "export", dir.to_str().unwrap(), "--format", "xml"], home.path());
    assert!(String::from_utf8_lossy(&out.stderr).contains("export writes csv or jsonl"));
    let file = home.path().join("answers.csv");
    let out = prism(
        &["human-eval", "export", dir.to_str().unwrap(), "--format", "csv", "--out", file.to_str().unwrap()],
        home.path(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let csv = std::fs::read_to_string(&file).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "annotator,item,user,dataset_item,system,slot,faithfulness,persuasiveness,preference,preferred,\
         attention_check,decoy,note,ms,answered_at_ms"
    );
    assert_eq!(lines.next().unwrap(), "ann,q001,u1,m1,x,A,4,3,x,true,false,false,,1000,1700000001000");
    assert_eq!(lines.count(), 19);
}

/// A copy of the fixture with `edit` applied to one of its files.
fn broken(file: &str, edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("annotations")).unwrap();
    for f in ["study.json", "key.json", "annotations/ann.jsonl", "annotations/bob.jsonl"] {
        let text = std::fs::read_to_string(fixture().join(f)).unwrap();
        let text = if f == file { edit(text) } else { text };
        std::fs::write(dir.path().join(f), text).unwrap();
    }
    dir
}

#[test]
fn broken_studies_give_clear_errors() {
    let home = tempfile::tempdir().unwrap();
    let cases: Vec<(tempfile::TempDir, &str)> = vec![
        (tempfile::tempdir().unwrap(), "is not a human-evaluation study"),
        (
            broken("study.json", |t| t.replacen("\"version\": 1", "\"version\": 3", 1)),
            "study.json: study format version 3",
        ),
        (
            broken("key.json", |t| t.replace("\"study\": \"fixture-small\"", "\"study\": \"other\"")),
            "key.json: field `study`",
        ),
        (
            broken("study.json", |t| t.replace("\"slots\": 2", "\"slots\": 3")),
            "item q001: has 2 texts, the study has 3 slots",
        ),
        (
            broken("annotations/bob.jsonl", |t| t.replacen("\"ratings\":[[4,2]", "\"ratings\":[[0,2]", 1)),
            "bob.jsonl, line 2: field `ratings`: 0",
        ),
        (
            broken("annotations/ann.jsonl", |t| t.replace("fixture-small", "elsewhere")),
            "written for study elsewhere",
        ),
    ];
    for (dir, expected) in &cases {
        let out = prism(&["human-eval", "report", dir.path().to_str().unwrap(), "--json"], home.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && out.stdout.is_empty(), "{expected}");
        assert!(stderr.contains(expected), "expected {expected:?} in: {stderr}");
    }
    let out = prism(&["human-eval", "report", fixture().to_str().unwrap(), "--reference", "z"], home.path());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("unknown reference system \"z\": the study's systems are x, y"));
    let dir = broken("study.json", |t| {
        t.replace("\"slots\": 2,", "\"slots\": 2,\n  \"annotators\": [\"ann\", \"bob\"],")
    });
    let out =
        prism(&["human-eval", "resume", dir.path().to_str().unwrap(), "--annotator", "carol"], home.path());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("unknown annotator \"carol\": this study is for ann, bob"));
}

//! `prism data stats|users` run as the real binary on fixture directories: the JSON contract,
//! the human tables, and errors on stderr with a non-zero exit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datasets").join(name)
}

/// Runs `prism` with a config lowering the k-core minimum to 1 (fixtures are tiny), isolated from
/// the user's own config file.
fn prism(home: &Path, dataset: &Path, args: &[&str]) -> Output {
    let config = home.join("test.toml");
    std::fs::write(&config, "[dataset]\nmin_user_interactions = 1\n").unwrap();
    Command::new(env!("CARGO_BIN_EXE_prism"))
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .arg("--dataset")
        .arg(dataset)
        .arg("--config")
        .arg(&config)
        .args(args)
        .output()
        .unwrap()
}

fn json_of(out: &Output) -> Value {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn stats_json_for_every_fixture_format() {
    let home = tempfile::tempdir().unwrap();
    // Users with at least 3 interactions contribute one dev and one test interaction; in every
    // fixture but MovieLens 100K (whose user 22 has two) that is all 3 users.
    let cases = [
        ("movielens-100k", "movielens-100k", 5, 11),
        ("movielens-1m", "movielens-1m", 6, 11),
        ("movielens-latest", "movielens-latest", 7, 11),
        ("amazon-2014", "amazon", 5, 11),
        ("amazon-2018", "amazon", 4, 11),
        ("yelp", "yelp", 5, 11),
        ("recbole", "recbole", 5, 11),
        ("generic-jsonl", "generic-jsonl", 4, 11),
    ];
    for (dir, format, items, interactions) in cases {
        let stats = json_of(&prism(home.path(), &fixture(dir), &["data", "stats", "--json"]));
        let held_out = if dir == "movielens-100k" { 2 } else { 3 };
        let expected = json!({
            "format": format, "users": 3, "items": items, "interactions": interactions,
            "train": interactions - 2 * held_out, "dev": held_out, "test": held_out, "skipped": 0,
            "unparsed_fields": [], "unterminated_last_lines": [],
        });
        assert_eq!(stats, expected, "{dir}");
    }
}

#[test]
fn stats_applies_the_configured_k_core_and_lenient_flag() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("five.toml");
    std::fs::write(&config, "[dataset]\nmin_user_interactions = 5\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_prism"))
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .args(["data", "stats", "--json", "--dataset"])
        .arg(fixture("movielens-1m"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let stats = json_of(&out);
    assert_eq!(
        (stats["users"].as_u64(), stats["items"].as_u64(), stats["train"].as_u64()),
        (Some(1), Some(5), Some(3))
    );

    let bad = fixture("invalid/movielens-100k-bad-rating");
    let stats = json_of(&prism(home.path(), &bad, &["data", "stats", "--json", "--lenient"]));
    assert_eq!(stats["skipped"], 1);
}

#[test]
fn users_json_lists_train_history_lengths() {
    let home = tempfile::tempdir().unwrap();
    let out = json_of(&prism(home.path(), &fixture("movielens-1m"), &["data", "users", "--json"]));
    assert_eq!(
        out,
        json!({"users": [{"user": "1", "history_len": 3}, {"user": "2", "history_len": 1}, {"user": "3", "history_len": 1}]})
    );
    let out =
        json_of(&prism(home.path(), &fixture("movielens-1m"), &["data", "users", "--limit", "2", "--json"]));
    assert_eq!(out["users"].as_array().unwrap().len(), 2);
}

#[test]
fn human_tables_without_json() {
    let home = tempfile::tempdir().unwrap();
    let out = prism(home.path(), &fixture("yelp"), &["data", "stats"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    assert!(text.contains("(yelp)") && text.contains("interactions") && text.contains("density"), "{text}");
    let out = prism(home.path(), &fixture("yelp"), &["data", "users", "--limit", "1"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("history_len") && text.contains("yu1") && text.contains("1 of 3 users"), "{text}");
}

#[test]
fn errors_go_to_stderr_with_a_nonzero_exit() {
    let home = tempfile::tempdir().unwrap();
    let out = prism(home.path(), &fixture("invalid/recbole-bad-rating"), &["data", "stats", "--json"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "nothing on stdout on error");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("bad.inter:3: field `rating`"), "{err}");

    let out = prism(home.path(), &fixture("invalid/unrecognised"), &["data", "users", "--json"]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success() && err.contains("Looked for") && err.contains("u.data"), "{err}");

    let out = prism(home.path(), &fixture("yelp"), &["data", "stats", "--json", "--format", "csv"]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success() && err.contains("known formats"), "{err}");
}

//! Every number a user sets is checked before work starts (issue 23): a config file, a preset, a
//! recipe or a flag with a non-finite or out-of-range value is refused with its key (or flag) and
//! the accepted range, and nothing is trained or cached.

use std::path::Path;

use prism_explorer::config::project_root;
use prism_explorer::distill::finetune::Recipe;
use prism_explorer::distill::spec::JobSpec;

mod common;
use common::command;

fn files_under(dir: &Path) -> usize {
    walk(dir).len()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn bpr_with_a_nan_learning_rate_is_refused_naming_the_key_and_caches_nothing() {
    let home = tempfile::tempdir().unwrap();
    for value in ["nan", "inf", "1e30", "-0.1"] {
        let config = home.path().join("bad.toml");
        std::fs::write(&config, format!("[ranker.bpr]\nlearning_rate = {value}\n")).unwrap();
        let out = command(
            &["rank", "--user", "u0042", "--ranker", "bpr", "--config", config.to_str().unwrap()],
            home.path(),
        )
        .output()
        .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{value}: {err}");
        assert!(err.contains("bad.toml") && err.contains("ranker.bpr.learning_rate"), "{value}: {err}");
        assert!(err.contains("expected a finite number in (0, 10]"), "{value}: {err}");
    }
    let cached: Vec<_> = walk(home.path()).into_iter().filter(|p| !p.ends_with("bad.toml")).collect();
    assert!(cached.is_empty(), "something was written: {cached:?}");
}

#[test]
fn numeric_flags_are_refused_naming_the_flag_and_the_range() {
    let home = tempfile::tempdir().unwrap();
    for (args, flag) in [
        (&["generate", "--model", "oracle", "--prompt", "x", "--top-p", "2"][..], "--top-p"),
        (&["generate", "--model", "oracle", "--prompt", "x", "--temperature", "nan"][..], "--temperature"),
        (
            &["generate", "--model", "oracle", "--prompt", "x", "--length-penalty", "inf"][..],
            "--length-penalty",
        ),
        (&["generate", "--model", "oracle", "--prompt", "x", "--beams", "0"][..], "--beams"),
        (&["explain", "--user", "u0042", "--max-input-tokens", "0"][..], "--max-input-tokens"),
        (&["bench", "--runs", "0"][..], "--runs"),
    ] {
        let out = command(args, home.path()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(flag) && err.contains("expected"), "{args:?}: {err}");
    }
    assert_eq!(files_under(home.path()), 0);
}

#[test]
fn shipped_presets_and_recipes_are_in_range_and_bad_ones_name_file_and_key() {
    let root = project_root();
    for entry in std::fs::read_dir(root.join("configs/distill")).unwrap() {
        let path = entry.unwrap().path();
        JobSpec::preset(path.to_str().unwrap(), &root).unwrap();
    }
    for entry in std::fs::read_dir(root.join("configs/train")).unwrap() {
        Recipe::load(&entry.unwrap().path()).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let quick = std::fs::read_to_string(root.join("configs/distill/quick.toml")).unwrap();
    let bad = dir.path().join("bad-preset.toml");
    std::fs::write(&bad, quick.replace("teach_batch = 16", "teach_batch = 0")).unwrap();
    let err = format!("{:#}", JobSpec::preset(bad.to_str().unwrap(), &root).unwrap_err());
    assert!(err.contains("bad-preset.toml") && err.contains("teach_batch = 0"), "{err}");

    let recipe = std::fs::read_to_string(root.join("configs/train/prism.toml")).unwrap();
    let lr_line = recipe.lines().find(|l| l.trim_start().starts_with("lr =")).expect("a recipe sets lr");
    let bad = dir.path().join("bad-recipe.toml");
    std::fs::write(&bad, recipe.replace(lr_line, "lr = nan")).unwrap();
    let err = format!("{:#}", Recipe::load(&bad).unwrap_err());
    assert!(err.contains("bad-recipe.toml") && err.contains("lr = NaN"), "{err}");
}

//! Property tests of every configuration file a user writes — prism's TOML config (with its
//! `[models]` and `[models.extra]` tables), training recipes (`configs/train/*.toml`) and
//! distillation presets (`configs/distill/*.toml`) — truncated, corrupted and mutated at random,
//! including values replaced by `nan`, `inf`, negative, huge or mistyped ones (a fixed seed and a
//! bounded number of cases: the same cases on every CI run, in seconds):
//!
//! - reading never panics;
//! - a refused file's error names the file (and, for a bad value, the key);
//! - what is accepted is in range: every number finite, the settings pass their own range check.

mod common;

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::sample::Index;

use common::damage::{apply, config, damage};
use prism_explorer::config::Settings;
use prism_explorer::distill::finetune::Recipe;
use prism_explorer::distill::JobSpec;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `.toml` files of `configs/DIR`, sorted.
fn configs(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("configs").join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// A user's config exercising every table, `[models.extra]` included.
fn user_config() -> String {
    let text = std::fs::read_to_string(root().join("configs/default.toml")).unwrap();
    text.replacen("[models.extra]\n", "[models.extra]\nbaseline = \"file:recorded.jsonl\"\n", 1)
}

/// `text` written to `name` in a scratch directory (paths inside resolve against it).
fn scratch(name: &str, text: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn assert_names_file(e: &anyhow::Error, path: &Path) -> Result<(), TestCaseError> {
    let text = format!("{e:#}");
    prop_assert!(text.contains(&path.display().to_string()), "the error names {}: {}", path.display(), text);
    Ok(())
}

/// Every number in a JSON rendering of what was accepted is finite.
fn assert_finite(value: &serde_json::Value, at: &str) -> Result<(), TestCaseError> {
    match value {
        serde_json::Value::Number(n) => {
            prop_assert!(n.as_f64().is_some_and(f64::is_finite), "{} = {} accepted", at, n)
        }
        serde_json::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                assert_finite(v, &format!("{at}[{i}]"))?;
            }
        }
        serde_json::Value::Object(o) => {
            for (k, v) in o {
                assert_finite(v, &format!("{at}.{k}"))?;
            }
        }
        // serde_json writes a non-finite f64 as null.
        serde_json::Value::Null => {}
        _ => {}
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(160, 0xc0f1_6001))]

    #[test]
    fn a_damaged_user_config_loads_in_range_or_fails_naming_the_file(damage in damage()) {
        let text = apply(user_config().as_bytes(), &damage);
        let (_dir, path) = scratch("config.toml", &text);
        match Settings::load_layers(None, Some(&path)) {
            Ok(settings) => {
                let checked = settings.check_ranges(&path.display().to_string());
                prop_assert!(checked.is_ok(), "accepted out of range: {:?}", checked);
            }
            Err(e) => assert_names_file(&e, &path)?,
        }
    }

    #[test]
    fn a_damaged_models_table_is_checked_like_the_rest(value in prop::sample::select(&common::damage::HOSTILE[..]), key in any::<Index>()) {
        // Every key of `[models]` set to a hostile value, one at a time.
        let text = user_config();
        let start = text.find("[models]").unwrap();
        let end = text[start + 1..].find("\n[").map_or(text.len(), |k| start + 1 + k);
        let keys: Vec<usize> = text[start..end].match_indices(" = ").map(|(k, _)| start + k + 3).collect();
        let at = keys[key.index(keys.len())];
        let line_end = text[at..].find('\n').map_or(text.len(), |k| at + k);
        let damaged = format!("{}{value}{}", &text[..at], &text[line_end..]);
        let (_dir, path) = scratch("config.toml", damaged.as_bytes());
        match Settings::load_layers(None, Some(&path)) {
            Ok(settings) => prop_assert!(settings.check_ranges("models").is_ok()),
            Err(e) => {
                assert_names_file(&e, &path)?;
                let key = text[..at - 3].rsplit('\n').next().unwrap().trim();
                let message = format!("{e:#}");
                prop_assert!(message.contains(key), "the error names the key {}: {}", key, message);
            }
        }
    }

    #[test]
    fn a_damaged_recipe_loads_finite_or_fails_naming_the_file(file in any::<Index>(), damage in damage()) {
        let files = configs("train");
        let source = &files[file.index(files.len())];
        let text = apply(&std::fs::read(source).unwrap(), &damage);
        let (_dir, path) = scratch(&source.file_name().unwrap().to_string_lossy(), &text);
        match Recipe::load(&path) {
            Ok(recipe) => assert_finite(&serde_json::to_value(&recipe).unwrap(), "recipe")?,
            Err(e) => assert_names_file(&e, &path)?,
        }
    }

    #[test]
    fn a_damaged_preset_loads_finite_or_fails_naming_the_file(file in any::<Index>(), damage in damage()) {
        let files = configs("distill");
        let source = &files[file.index(files.len())];
        let text = apply(&std::fs::read(source).unwrap(), &damage);
        let (_dir, path) = scratch(&source.file_name().unwrap().to_string_lossy(), &text);
        match JobSpec::preset(&path.display().to_string(), &root()) {
            Ok(spec) => assert_finite(&serde_json::to_value(&spec).unwrap(), "preset")?,
            Err(e) => assert_names_file(&e, &path)?,
        }
    }
}

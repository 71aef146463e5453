//! Configuration: layered TOML files resolved once into [`Settings`]. Rooms receive the resolved
//! values and never see raw files. Layers, later winning key by key: the built-in
//! `configs/default.toml`, the user's file in the platform config directory, `--config FILE`.
//! Relative paths are resolved against the directory of the file that sets them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::model::WeightDtype;

const DEFAULT_CONFIG: &str = include_str!("../configs/default.toml");

/// Keys holding paths, resolved against the directory of the file that sets them.
/// `dataset.path = "demo"` is a name, not a path, and stays as it is.
const PATH_KEYS: &[(&str, &str)] = &[
    ("dataset", "path"),
    ("models", "oracle"),
    ("models", "prism"),
    ("prompts", "oracle"),
    ("prompts", "prism"),
];

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub dataset: DatasetSettings,
    pub ranker: RankerSettings,
    pub models: ModelSettings,
    pub decoding: DecodingSettings,
    pub prompts: PromptSettings,
    pub tui: TuiSettings,
    pub humaneval: HumanEvalSettings,
    pub slurm: SlurmSettings,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatasetSettings {
    pub path: String,
    pub format: String,
    pub lenient: bool,
    pub min_user_interactions: usize,
    pub min_item_interactions: usize,
    pub min_stars: f32,
    pub history_len: usize,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RankerSettings {
    pub default: String,
    pub k: usize,
    pub bpr: BprSettings,
    pub itemknn: ItemKnnSettings,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BprSettings {
    pub factors: usize,
    pub epochs: usize,
    pub learning_rate: f32,
    pub regularization: f32,
    pub patience: usize,
    pub seed: u64,
    pub cache: bool,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ItemKnnSettings {
    pub neighbours: usize,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSettings {
    pub oracle: PathBuf,
    pub prism: PathBuf,
    pub device: String,
    pub oracle_max_input_tokens: usize,
    pub prism_max_input_tokens: usize,
    /// Weight precisions (`f32`, `bf16`, `f16`, `q8`, `q4`).
    pub oracle_dtype: WeightDtype,
    pub prism_dtype: WeightDtype,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DecodingSettings {
    pub beams: usize,
    pub max_new_tokens: usize,
    pub no_repeat_ngram_size: usize,
    pub length_penalty: f32,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PromptSettings {
    pub oracle: PathBuf,
    pub prism: PathBuf,
    pub prism_history_len: usize,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TuiSettings {
    pub theme: String,
    /// How many users the demo race runs through.
    pub race_users: usize,
    /// Extra bindings per action name (see `tui::keys`), replacing that action's defaults.
    pub keys: std::collections::BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HumanEvalSettings {
    pub criteria: Vec<String>,
    pub attention_checks: usize,
    pub attention_criterion: String,
    pub attention_max_rating: u8,
    pub reference: String,
    pub strata: usize,
}

/// How `prism distill --backend slurm` asks Slurm for its tasks (see docs/CLUSTER.md). Empty
/// strings leave an option to the cluster's defaults.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlurmSettings {
    pub partition: String,
    pub account: String,
    pub gres: String,
    pub time: String,
    pub cpus_per_task: usize,
    pub mem: String,
    /// Further `#SBATCH` options.
    pub options: Vec<String>,
    /// Shell lines run before prism in each task.
    pub setup: Vec<String>,
    /// A command prism runs under (a container runtime).
    pub launcher: String,
    /// The prism binary on the compute nodes; empty: this one.
    pub prism: String,
    pub poll_seconds: f64,
    pub max_retries: usize,
    pub train_on_slurm: bool,
}

/// The project root: the directory holding `assets/` and `configs/`. `PRISM_HOME` overrides the
/// location the binary was built from.
pub fn project_root() -> PathBuf {
    std::env::var_os("PRISM_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The directory of the embedded assets (demo dataset and models).
pub fn assets_dir() -> PathBuf {
    project_root().join("assets")
}

/// The user's config file in the platform config directory, if the platform has one.
pub fn user_config_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "prism-explorer").map(|d| d.config_dir().join("config.toml"))
}

impl Settings {
    /// Resolves the built-in defaults, the user's file (when present) and `explicit` (when given).
    pub fn load(explicit: Option<&Path>) -> Result<Settings> {
        let user = user_config_path().filter(|p| p.is_file());
        Settings::load_layers(user.as_deref(), explicit)
    }

    /// Like [`Settings::load`] with the user's file given explicitly (tests pass `None`).
    pub fn load_layers(user: Option<&Path>, explicit: Option<&Path>) -> Result<Settings> {
        let mut merged = parse_layer(DEFAULT_CONFIG, "built-in configs/default.toml", &project_root())?;
        for path in [user, explicit].into_iter().flatten() {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            let base = path.parent().unwrap_or(Path::new("."));
            let layer = parse_layer(&text, &path.display().to_string(), base)?;
            merge(&mut merged, layer);
        }
        Settings::deserialize(merged).context("invalid configuration after merging layers")
    }
}

/// Parses one layer, checks its keys and types against [`Settings`] (every key optional), and
/// resolves its relative paths against `base`.
fn parse_layer(text: &str, origin: &str, base: &Path) -> Result<toml::Table> {
    let mut table: toml::Table = toml::from_str(text).with_context(|| format!("{origin}: not valid TOML"))?;
    check_keys(&table, origin)?;
    for (section, key) in PATH_KEYS {
        let Some(toml::Value::String(value)) = table.get_mut(*section).and_then(|s| s.get_mut(*key)) else {
            continue;
        };
        if (*section, *key) == ("dataset", "path") && value == "demo" {
            continue;
        }
        let path = Path::new(value.as_str());
        if path.is_relative() {
            *value = base.join(path).to_string_lossy().into_owned();
        }
    }
    Ok(table)
}

/// Validates a partial layer by merging it over the defaults and deserializing: serde then names
/// the unknown key or the field with the wrong type.
fn check_keys(layer: &toml::Table, origin: &str) -> Result<()> {
    let mut full: toml::Table = toml::from_str(DEFAULT_CONFIG).expect("built-in config is valid TOML");
    merge(&mut full, layer.clone());
    Settings::deserialize(full).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    Ok(())
}

fn merge(base: &mut toml::Table, layer: toml::Table) {
    for (key, value) in layer {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(over)) => merge(inner, over),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("config.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn defaults_resolve_paths_against_project_root() {
        let settings = Settings::load_layers(None, None).unwrap();
        assert_eq!(settings.dataset.path, "demo");
        assert_eq!(settings.models.oracle, project_root().join("assets/models/oracle"));
        assert_eq!(settings.ranker.k, 10);
    }

    #[test]
    fn later_layer_wins_key_by_key_and_paths_follow_their_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "[ranker]\nk = 20\n[models]\nprism = \"my/prism\"\n");
        let settings = Settings::load_layers(None, Some(&path)).unwrap();
        assert_eq!(settings.ranker.k, 20);
        assert_eq!(settings.ranker.default, "bpr");
        assert_eq!(settings.models.prism, dir.path().join("my/prism"));
        assert_eq!(settings.models.oracle, project_root().join("assets/models/oracle"));
    }

    #[test]
    fn unknown_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "[ranker]\nkk = 20\n");
        let err = format!("{:#}", Settings::load_layers(None, Some(&path)).unwrap_err());
        assert!(err.contains("kk"), "{err}");
        assert!(err.contains("config.toml"), "{err}");
    }

    #[test]
    fn wrong_type_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "[decoding]\nbeams = \"five\"\n");
        let err = format!("{:#}", Settings::load_layers(None, Some(&path)).unwrap_err());
        assert!(err.contains("beams") || err.contains("invalid type"), "{err}");
    }
}

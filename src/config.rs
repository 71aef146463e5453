//! Configuration: layered TOML files resolved once into [`Settings`]. Rooms receive the resolved
//! values and never see raw files. Layers, later winning key by key: the built-in
//! `configs/default.toml`, the user's file in the platform config directory, `--config FILE`.
//! Relative paths are resolved against the directory of the file that sets them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::model::WeightDtype;
use crate::validate::Checks;

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

/// `[ranker.bpr]`: BPR's hyper-parameters, as `rank::Bpr` trains with them (with `ranker.k` for
/// the dev NDCG@K of early stopping).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BprSettings {
    pub factors: usize,
    pub epochs: usize,
    pub learning_rate: f32,
    pub regularization: f32,
    /// Epochs without a dev NDCG@K improvement before stopping; 0 trains all epochs.
    pub patience: usize,
    pub seed: u64,
    /// Whether a trained model is cached (keyed by the data and these settings).
    pub cache: bool,
}

impl BprSettings {
    /// The ranges `[ranker.bpr]` accepts; also checked by BPR training itself, for callers that
    /// build the settings without a config file.
    pub fn check(&self, c: &mut Checks) {
        use std::ops::Bound::{Excluded, Included};
        c.int("ranker.bpr.factors", self.factors, 1, 4096);
        c.int("ranker.bpr.epochs", self.epochs, 1, 100_000);
        c.float("ranker.bpr.learning_rate", self.learning_rate.into(), Excluded(0.0), Included(10.0));
        c.float("ranker.bpr.regularization", self.regularization.into(), Included(0.0), Included(10.0));
        c.int("ranker.bpr.patience", self.patience, 0, 100_000);
    }
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
    /// Prompts longer than their model's input length are cut (`false`: refused, as
    /// `--no-truncate` does).
    pub truncate: bool,
    /// The most memory one generation may take, weights included: `available` (what the OS and
    /// the cgroup leave) or a size such as `4G`, `512M`.
    pub max_memory: String,
    /// Further systems the explorer shows beside the two, by name: `"file:PATH"` (or
    /// `"file:PATH#MODEL"`) for precomputed explanations, or a checkpoint directory. Checked and
    /// resolved when loaded; read them through [`ModelSettings::extra_systems`].
    pub extra: BTreeMap<String, String>,
}

/// One `[models.extra]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtraSystem {
    pub name: String,
    pub source: ExtraSource,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExtraSource {
    /// JSON lines of `{"user","item","model"?,"text","latency_ms"?}`; `model` keeps the rows of
    /// that model only (a file with rows of several models needs it).
    File { path: PathBuf, model: Option<String> },
    /// A checkpoint directory, explaining with the Prism's prompt and input length.
    Model(PathBuf),
}

/// Parses one `[models.extra]` entry; errors name the key.
pub fn parse_extra(name: &str, value: &str) -> Result<ExtraSystem> {
    let key = format!("[models.extra] {name}");
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        bail!("{key}: a system name may use letters, digits, '-', '_' and '.' only");
    }
    if ["oracle", "prism"].contains(&name.to_ascii_lowercase().as_str()) {
        bail!("{key}: the Oracle and the Prism are [models] oracle and prism; name this system otherwise");
    }
    let source = match value.strip_prefix("file:") {
        Some(rest) => {
            let (path, model) = match rest.rsplit_once('#') {
                Some((path, model)) => (path, Some(model)),
                None => (rest, None),
            };
            if path.trim().is_empty() {
                bail!("{key} = {value:?}: expected \"file:PATH\" with the path of a JSONL file");
            }
            if model.is_some_and(|m| m.trim().is_empty()) {
                bail!("{key} = {value:?}: nothing follows '#'; write \"file:PATH#MODEL\" or drop the '#'");
            }
            ExtraSource::File { path: PathBuf::from(path), model: model.map(str::to_owned) }
        }
        None if value.trim().is_empty() => {
            bail!("{key} is empty: expected \"file:PATH\" (precomputed explanations) or a model directory")
        }
        None => ExtraSource::Model(PathBuf::from(value)),
    };
    Ok(ExtraSystem { name: name.to_owned(), source })
}

impl ModelSettings {
    /// The `[models.extra]` systems, in name order.
    pub fn extra_systems(&self) -> Result<Vec<ExtraSystem>> {
        self.extra.iter().map(|(name, value)| parse_extra(name, value)).collect()
    }
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

impl Settings {
    /// Checks every number against its accepted range (the defaults are in range, so in a layer
    /// merged over them a bad value is the layer's own and `origin` names its file).
    pub fn check_ranges(&self, origin: &str) -> Result<()> {
        use std::ops::Bound::{Excluded, Included};
        const MANY: usize = 1_000_000_000;
        let mut c = Checks::new();
        let d = &self.dataset;
        c.int("dataset.min_user_interactions", d.min_user_interactions, 0, MANY);
        c.int("dataset.min_item_interactions", d.min_item_interactions, 0, MANY);
        c.float("dataset.min_stars", d.min_stars.into(), Included(0.0), Included(5.0));
        c.int("dataset.history_len", d.history_len, 1, 100_000);
        let r = &self.ranker;
        c.int("ranker.k", r.k, 1, 100_000);
        r.bpr.check(&mut c);
        c.int("ranker.itemknn.neighbours", r.itemknn.neighbours, 1, MANY);
        let m = &self.models;
        c.int("models.oracle_max_input_tokens", m.oracle_max_input_tokens, 1, MAX_INPUT_TOKENS);
        c.int("models.prism_max_input_tokens", m.prism_max_input_tokens, 1, MAX_INPUT_TOKENS);
        if let Err(e) = crate::model::memory::parse_bytes_setting(&m.max_memory) {
            c.fail("models.max_memory", e);
        }
        let g = &self.decoding;
        c.int("decoding.beams", g.beams, 1, 64);
        c.int("decoding.max_new_tokens", g.max_new_tokens, 1, 100_000);
        c.int("decoding.no_repeat_ngram_size", g.no_repeat_ngram_size, 0, 100);
        c.float("decoding.length_penalty", g.length_penalty.into(), Included(-100.0), Included(100.0));
        c.int("prompts.prism_history_len", self.prompts.prism_history_len, 1, 100_000);
        c.int("tui.race_users", self.tui.race_users, 1, 100_000);
        let h = &self.humaneval;
        c.int("humaneval.attention_checks", h.attention_checks, 0, 10_000);
        c.int("humaneval.attention_max_rating", h.attention_max_rating, 1, 5);
        c.int("humaneval.strata", h.strata, 1, 1000);
        let s = &self.slurm;
        c.int("slurm.cpus_per_task", s.cpus_per_task, 1, 4096);
        c.float("slurm.poll_seconds", s.poll_seconds, Excluded(0.0), Included(86_400.0));
        c.int("slurm.max_retries", s.max_retries, 0, 1000);
        c.finish(origin)
    }
}

/// The longest input any model may be configured to read (positions beyond it would need more
/// memory for attention than any machine this runs on has).
pub const MAX_INPUT_TOKENS: usize = 1 << 16;

/// Parses one layer, checks its keys and types against [`Settings`] (every key optional), and
/// resolves its relative paths against `base`.
fn parse_layer(text: &str, origin: &str, base: &Path) -> Result<toml::Table> {
    let mut table: toml::Table = toml::from_str(text).with_context(|| format!("{origin}: not valid TOML"))?;
    check_keys(&table, origin)?;
    if let Some(toml::Value::Table(extra)) = table.get_mut("models").and_then(|m| m.get_mut("extra")) {
        for (name, value) in extra.iter_mut() {
            let toml::Value::String(text) = value else { continue };
            let system = parse_extra(name, text).with_context(|| origin.to_owned())?;
            let resolve = |path: &Path| if path.is_relative() { base.join(path) } else { path.to_owned() };
            *text = match system.source {
                ExtraSource::File { path, model } => {
                    let model = model.map(|m| format!("#{m}")).unwrap_or_default();
                    format!("file:{}{model}", resolve(&path).display())
                }
                // A model may be a Hugging Face id, as for [models] oracle and prism.
                ExtraSource::Model(dir) => {
                    crate::model::hf_cache::relative_to(base, &dir).display().to_string()
                }
            };
        }
    }
    for (section, key) in PATH_KEYS {
        let Some(toml::Value::String(value)) = table.get_mut(*section).and_then(|s| s.get_mut(*key)) else {
            continue;
        };
        if (*section, *key) == ("dataset", "path") && value == "demo" {
            continue;
        }
        let path = Path::new(value.as_str());
        if *section == "models" {
            // A model may also be a Hugging Face id, found in the local cache when loaded.
            *value = crate::model::hf_cache::relative_to(base, path).to_string_lossy().into_owned();
        } else if path.is_relative() {
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
    let settings = Settings::deserialize(full).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    settings.check_ranges(origin)
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
        std::fs::create_dir_all(dir.path().join("my/prism")).unwrap();
        let path = write(dir.path(), "[ranker]\nk = 20\n[models]\nprism = \"my/prism\"\n");
        let settings = Settings::load_layers(None, Some(&path)).unwrap();
        assert_eq!(settings.ranker.k, 20);
        assert_eq!(settings.ranker.default, "bpr");
        assert_eq!(settings.models.prism, dir.path().join("my/prism"));
        assert_eq!(settings.models.oracle, project_root().join("assets/models/oracle"));
    }

    #[test]
    fn a_model_that_is_no_path_beside_the_file_stays_a_hugging_face_id() {
        let dir = tempfile::tempdir().unwrap();
        let path =
            write(dir.path(), "[models]\noracle = \"google/flan-t5-large\"\nprism = \"runs/a/best\"\n");
        let settings = Settings::load_layers(None, Some(&path)).unwrap();
        assert_eq!(settings.models.oracle, PathBuf::from("google/flan-t5-large"));
        assert_eq!(settings.models.prism, dir.path().join("runs/a/best"));
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
    fn extra_systems_resolve_against_their_file_and_bad_ones_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "[models.extra]\npeter = \"file:out/peter.jsonl\"\nlarge = \"/m/large\"\nt = \"file:e.jsonl#template\"\n\
             tiny = \"acme/tiny-prism@v2\"\nlocal = \"runs/a/best\"\n",
        );
        let settings = Settings::load_layers(None, Some(&path)).unwrap();
        let extra = settings.models.extra_systems().unwrap();
        let names: Vec<&str> = extra.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["large", "local", "peter", "t", "tiny"]);
        assert_eq!(extra[0].source, ExtraSource::Model("/m/large".into()));
        // A relative path that is not there and reads as a Hugging Face id stays an id, for the
        // cache lookup when the model loads; any other relative path is the file's.
        assert_eq!(extra[1].source, ExtraSource::Model(dir.path().join("runs/a/best")));
        assert_eq!(extra[4].source, ExtraSource::Model("acme/tiny-prism@v2".into()));
        assert_eq!(
            extra[2].source,
            ExtraSource::File { path: dir.path().join("out/peter.jsonl"), model: None }
        );
        assert_eq!(
            extra[3].source,
            ExtraSource::File { path: dir.path().join("e.jsonl"), model: Some("template".into()) }
        );
        assert!(Settings::load_layers(None, None).unwrap().models.extra.is_empty());
        for (entry, expected) in [
            ("x = \"file:\"", "[models.extra] x = \"file:\": expected \"file:PATH\""),
            ("x = \"\"", "[models.extra] x is empty"),
            ("oracle = \"/m\"", "[models.extra] oracle: the Oracle and the Prism"),
            ("\"my model\" = \"/m\"", "[models.extra] my model: a system name may use"),
            ("x = \"file:a.jsonl#\"", "nothing follows '#'"),
            ("x = 3", "invalid type"),
        ] {
            let path = write(dir.path(), &format!("[models.extra]\n{entry}\n"));
            let err = format!("{:#}", Settings::load_layers(None, Some(&path)).unwrap_err());
            assert!(err.contains(expected) && err.contains("config.toml"), "{entry}: {err}");
        }
    }

    #[test]
    fn out_of_range_and_non_finite_numbers_name_file_key_and_range() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "[ranker.bpr]\nlearning_rate = nan\nregularization = -1e30\n");
        let err = format!("{:#}", Settings::load_layers(None, Some(&path)).unwrap_err());
        assert!(err.contains("config.toml"), "{err}");
        assert!(err.contains("ranker.bpr.learning_rate = NaN: expected a finite number in (0, 10]"), "{err}");
        assert!(
            err.contains("ranker.bpr.regularization = -1e30: expected a finite number in [0, 10]"),
            "{err}"
        );
        for (text, key) in [
            ("[ranker.bpr]\nlearning_rate = inf\n", "ranker.bpr.learning_rate"),
            ("[ranker.bpr]\nlearning_rate = 1e30\n", "ranker.bpr.learning_rate"),
            ("[decoding]\nbeams = 0\n", "decoding.beams"),
            ("[decoding]\nlength_penalty = nan\n", "decoding.length_penalty"),
            ("[models]\noracle_max_input_tokens = 0\n", "models.oracle_max_input_tokens"),
            ("[models]\nmax_memory = \"plenty\"\n", "models.max_memory"),
            ("[slurm]\npoll_seconds = -1\n", "slurm.poll_seconds"),
            ("[humaneval]\nattention_max_rating = 9\n", "humaneval.attention_max_rating"),
        ] {
            let path = write(dir.path(), text);
            let err = format!("{:#}", Settings::load_layers(None, Some(&path)).unwrap_err());
            assert!(err.contains(key) && err.contains("config.toml"), "{text}: {err}");
        }
        let path = write(dir.path(), "[models]\nmax_memory = \"4G\"\n");
        Settings::load_layers(None, Some(&path)).unwrap();
    }

    #[test]
    fn wrong_type_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "[decoding]\nbeams = \"five\"\n");
        let err = format!("{:#}", Settings::load_layers(None, Some(&path)).unwrap_err());
        assert!(err.contains("beams") || err.contains("invalid type"), "{err}");
    }
}

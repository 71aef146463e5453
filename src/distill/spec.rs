//! What a distillation job is: its settings (`job.json`, from a preset in `configs/distill/`:
//! [`JobSpec`], with each stage's [`Decoding`]), the seeded list of training samples the teacher
//! explains ([`teach_samples`]), and what every stage of a run works with ([`JobContext`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{anyhow, bail, Context, Result};
use candle_core::Device;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::external::TeacherOutputs;
use super::filter::FilterSettings;
use super::layout::JOB_FILE;
use crate::data::{Dataset, Split};
use crate::durable;
use crate::explain::samples::{samples, Sample, SampleSet};
use crate::explain::Prompts;
use crate::model::checkpoint::read_json;
use crate::model::engine::Engine;
use crate::model::WeightDtype;
use crate::model::{GenerationConfig, GenerationOverrides};

/// Decoding settings of a stage.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decoding {
    pub num_beams: usize,
    pub max_new_tokens: usize,
    #[serde(default)]
    pub no_repeat_ngram_size: Option<usize>,
    #[serde(default)]
    pub length_penalty: Option<f32>,
    /// Sample instead of searching: the teacher then writes as varied as the texts it learnt
    /// from, inventions included, which gives the filter something to judge.
    #[serde(default)]
    pub do_sample: bool,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub top_p: Option<f32>,
    /// The sampler's seed; batch `b` of the teach stage samples with `seed + b·teach_batch`, so a
    /// sample's text does not depend on how the stage was split or resumed.
    #[serde(default)]
    pub seed: Option<u64>,
}

impl Decoding {
    pub fn config_for(&self, engine: &Engine) -> GenerationConfig {
        engine.config_with(&GenerationOverrides {
            num_beams: Some(self.num_beams),
            max_new_tokens: Some(self.max_new_tokens),
            no_repeat_ngram_size: self.no_repeat_ngram_size,
            length_penalty: self.length_penalty,
            do_sample: Some(self.do_sample),
            temperature: self.temperature,
            top_p: self.top_p,
            seed: self.seed,
            ..GenerationOverrides::default()
        })
    }
}

/// A preset (`configs/distill/NAME.toml`): paths are relative to the project root.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    pub teacher: PathBuf,
    /// The teacher's weight precision in the teach stage (`q8`/`q4` quantize it at load).
    #[serde(default)]
    pub teacher_dtype: WeightDtype,
    pub teacher_max_input_tokens: usize,
    /// The student's training recipe; `--student DIR` replaces its model with that checkpoint.
    pub student_recipe: PathBuf,
    /// Train samples the teacher explains (a seeded choice); `None` = all.
    #[serde(default)]
    pub teach_samples: Option<usize>,
    pub teach_batch: usize,
    pub teach_decoding: Decoding,
    pub filter: FilterSettings,
    /// Test samples of the evaluation (the first users').
    pub eval_samples: usize,
    pub eval_decoding: Decoding,
    pub seed: u64,
    /// Filled in when the job is created.
    #[serde(default)]
    pub student_init: Option<PathBuf>,
    #[serde(default)]
    pub preset: String,
    #[serde(default)]
    pub dataset: String,
    /// The teach stage runs in this many shards (see [`super::shards`]); `None`: in one piece.
    #[serde(default)]
    pub shards: Option<usize>,
    /// An external teacher's explanations replace the teach stage (and `teacher` is not used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher_outputs: Option<TeacherOutputs>,
}

/// The training samples the teacher explains, in their seeded order: the same list for every
/// process that sees the same dataset and settings.
pub fn teach_samples(dataset: &Dataset, spec: &JobSpec, history_len: usize) -> Vec<Sample> {
    let split = Split::leave_last_out(dataset);
    let mut train_samples = samples(dataset, &split, SampleSet::Train, history_len);
    if let Some(n) = spec.teach_samples.filter(|&n| n < train_samples.len()) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(spec.seed);
        train_samples.shuffle(&mut rng);
        train_samples.truncate(n);
    }
    train_samples
}

impl JobSpec {
    /// Every number of a preset in range; `origin` names the file in the error.
    pub fn check_ranges(&self, origin: &str) -> Result<()> {
        use std::ops::Bound::{Excluded, Included};
        let mut c = crate::validate::Checks::new();
        c.int("teacher_max_input_tokens", self.teacher_max_input_tokens, 1, crate::config::MAX_INPUT_TOKENS);
        if let Some(n) = self.teach_samples {
            c.int("teach_samples", n, 1, usize::MAX);
        }
        c.int("teach_batch", self.teach_batch, 1, 4096);
        c.int("eval_samples", self.eval_samples, 0, usize::MAX);
        for (section, d) in [("teach_decoding", &self.teach_decoding), ("eval_decoding", &self.eval_decoding)]
        {
            c.int(&format!("{section}.num_beams"), d.num_beams, 1, 64);
            c.int(&format!("{section}.max_new_tokens"), d.max_new_tokens, 1, 100_000);
            if let Some(n) = d.no_repeat_ngram_size {
                c.int(&format!("{section}.no_repeat_ngram_size"), n, 0, 100);
            }
            if let Some(p) = d.length_penalty {
                c.float(&format!("{section}.length_penalty"), p.into(), Included(-100.0), Included(100.0));
            }
            if let Some(t) = d.temperature {
                c.float(&format!("{section}.temperature"), t.into(), Excluded(0.0), Included(100.0));
            }
            if let Some(p) = d.top_p {
                c.float(&format!("{section}.top_p"), p.into(), Excluded(0.0), Included(1.0));
            }
        }
        let f = &self.filter;
        c.int("filter.min_words", f.min_words, 0, 100_000);
        c.int("filter.max_words", f.max_words, f.min_words.max(1), 100_000);
        c.int("filter.ngram", f.ngram, 1, 100);
        if let Some(n) = self.shards {
            c.int("shards", n, 1, 100_000);
        }
        c.finish(origin)
    }

    /// Reads preset `name` (a file path, or a name under `configs/distill/`) with paths resolved
    /// against `root`.
    pub fn preset(name: &str, root: &Path) -> Result<JobSpec> {
        let path = if name.ends_with(".toml") {
            PathBuf::from(name)
        } else {
            root.join("configs/distill").join(format!("{name}.toml"))
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read preset {}", path.display()))?;
        let mut spec: JobSpec = toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        spec.check_ranges(&path.display().to_string())?;
        spec.teacher = crate::model::hf_cache::relative_to(root, &spec.teacher);
        spec.student_recipe = root.join(&spec.student_recipe);
        spec.preset = name.to_owned();
        Ok(spec)
    }
}

/// Reads the settings of the job in `dir`.
pub fn read_spec(dir: &Path) -> Result<JobSpec> {
    read_json(&dir.join(JOB_FILE))
}

/// Creates the job directory for `spec`, or (with `resume`) checks it holds a job to continue.
pub fn prepare(dir: &Path, spec: &JobSpec, resume: bool) -> Result<JobSpec> {
    let existing = dir.join(JOB_FILE);
    if existing.exists() {
        if !resume {
            bail!(
                "{} already holds a distillation job; add --resume to continue it or choose a new --out",
                dir.display()
            );
        }
        return read_spec(dir);
    }
    if resume {
        bail!("{} holds no job to resume (no {JOB_FILE})", dir.display());
    }
    durable::write_json(&existing, spec)?;
    Ok(spec.clone())
}

/// What every stage of a job works with besides its settings: the job directory, the dataset and
/// prompts, the device, and the flag that stops it (at the next batch or step, resumably). Built
/// once by whoever runs the job (the CLI, the explorer, a test) for the whole job or one shard.
#[derive(Clone, Copy)]
pub struct JobContext<'a> {
    pub dir: &'a Path,
    pub dataset: &'a Dataset,
    pub prompts: &'a Prompts,
    pub history_len: usize,
    pub device: &'a Device,
    pub cancel: &'a AtomicBool,
}

//! The distillation job: teach → filter → train → evaluate, each stage writing under the job
//! directory and marking itself complete, so `--resume` after a kill continues inside the stage it
//! stopped in (the teacher cache and the trainer's checkpoint make that exact).
//!
//! Layout of a job directory:
//! `job.json` (the resolved settings), `events.jsonl`, `teach/cache.jsonl`, `filter/kept.jsonl` and
//! `filter/report.json`, `train/{last,best}/`, `evaluate/{report.json,explanations.jsonl}`,
//! `summary.json`, `STAGE/complete.json` once a stage is done, and `lock` (held while a process runs
//! the stages). A job made with `--shards N` also
//! has `teach/plan.json`, `teach/shards/K/` and `teach/merge.json` ([`super::shards`]), and on
//! Slurm `slurm/` ([`super::slurm`]). A job taught from an external teacher's file has no teacher
//! model: its teach stage reads the file instead ([`super::external`]: `teach/external.json` and
//! `teach/external_test.jsonl` beside the cache).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{anyhow, bail, Context, Result};
use candle_core::Device;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::evaluate::{evaluate, Evaluate, Teacher};
use super::events::{DistillEvent, EventKind, EventSink, Stage};
use super::external::{self, ExternalReport, TeacherOutputs};
use super::filter::{judge, FilterReport, FilterSettings};
use super::finetune::{finetune, reference_pairs, Finetune, ModelSpec, Pair, Recipe, Targets};
use super::shards::{self, Plan};
use super::teach::{read_cache, teach, Shard, Taught, Teach};
use crate::data::{Dataset, Part, Split};
use crate::durable;
use crate::explain::samples::{samples, Sample, SampleSet};
use crate::explain::{Matcher, Prompts};
use crate::model::checkpoint::read_json;
use crate::model::engine::{Engine, EngineOptions};
use crate::model::WeightDtype;
use crate::model::{GenerationConfig, GenerationOverrides};
use crate::train::TrainEvent;

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
}

impl Decoding {
    pub fn config_for(&self, engine: &Engine) -> GenerationConfig {
        engine.config_with(&GenerationOverrides {
            num_beams: Some(self.num_beams),
            max_new_tokens: Some(self.max_new_tokens),
            no_repeat_ngram_size: self.no_repeat_ngram_size,
            length_penalty: self.length_penalty,
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
        use std::ops::Bound::Included;
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

const JOB_FILE: &str = "job.json";
/// Held by the process running the stages, so a second one stops at once and a reader can tell a
/// live job from a killed one ([`super::status`]).
pub const LOCK_FILE: &str = "lock";
const COMPLETE_FILE: &str = "complete.json";
pub const SUMMARY_FILE: &str = "summary.json";

fn stage_dir(dir: &Path, stage: Stage) -> PathBuf {
    dir.join(stage.name())
}

pub fn is_complete(dir: &Path, stage: Stage) -> bool {
    stage_dir(dir, stage).join(COMPLETE_FILE).exists()
}

fn mark_complete(dir: &Path, stage: Stage, value: &impl serde::Serialize) -> Result<()> {
    durable::write_json(&stage_dir(dir, stage).join(COMPLETE_FILE), value)
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

/// The final summary (also `summary.json`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Summary {
    pub dir: PathBuf,
    pub teach: usize,
    pub filter: FilterReport,
    /// The trainer's outcome (steps, ending, best dev evaluation).
    pub train: serde_json::Value,
    pub student: PathBuf,
    /// `evaluate/report.json`.
    pub evaluation: Option<serde_json::Value>,
    /// The external teacher's file and what its validation found, when the job learned from one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_teacher: Option<ExternalReport>,
    pub cancelled: bool,
}

/// Everything [`run`] needs besides the job directory.
pub struct Job<'a> {
    pub dir: &'a Path,
    pub spec: &'a JobSpec,
    pub dataset: &'a Dataset,
    pub prompts: &'a Prompts,
    pub history_len: usize,
    pub device: &'a Device,
    pub on_event: &'a mut dyn FnMut(&DistillEvent),
    pub cancel: &'a AtomicBool,
}

/// A job running on its own thread: its events arrive on `events`; setting `cancel` stops it at
/// the next batch or step, resumably.
pub struct JobHandle {
    pub events: Receiver<DistillEvent>,
    pub cancel: Arc<AtomicBool>,
    thread: JoinHandle<Result<Summary>>,
}

impl JobHandle {
    /// Waits for the job to end.
    pub fn join(self) -> Result<Summary> {
        self.thread.join().map_err(|_| anyhow!("the distillation thread panicked"))?
    }
}

/// Starts the job in `dir` on a background thread (what the explorer does).
pub fn spawn(
    dir: PathBuf,
    spec: JobSpec,
    dataset: Arc<Dataset>,
    prompts: Prompts,
    history_len: usize,
    device: Device,
) -> JobHandle {
    let (sender, events) = mpsc::channel();
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let thread = std::thread::spawn(move || {
        let mut forward = |event: &DistillEvent| {
            // The receiver may be gone (the explorer closed); the job goes on and logs to disk.
            let _ = sender.send(event.clone());
        };
        run(Job {
            dir: &dir,
            spec: &spec,
            dataset: &dataset,
            prompts: &prompts,
            history_len,
            device: &device,
            on_event: &mut forward,
            cancel: &flag,
        })
    });
    JobHandle { events, cancel, thread }
}

/// Runs the stages not yet complete.
pub fn run(job: Job<'_>) -> Result<Summary> {
    let Job { dir, spec, dataset, prompts, history_len, device, on_event, cancel } = job;
    let _lock = shards::exclusive(&dir.join(LOCK_FILE), &format!("the job in {}", dir.display()))?;
    let mut events = EventSink::open(dir, on_event)?;
    let result = run_stages(dir, spec, dataset, prompts, history_len, device, cancel, &mut events);
    if let Err(e) = &result {
        let stage = Stage::ALL.into_iter().find(|s| !is_complete(dir, *s)).unwrap_or(Stage::Evaluate);
        events.emit(DistillEvent::new(stage, EventKind::Failed, 0, 0).message(format!("{e:#}")))?;
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn run_stages(
    dir: &Path,
    spec: &JobSpec,
    dataset: &Dataset,
    prompts: &Prompts,
    history_len: usize,
    device: &Device,
    cancel: &AtomicBool,
    events: &mut EventSink<'_>,
) -> Result<Summary> {
    let split = Split::leave_last_out(dataset);
    let matcher = Matcher::new(dataset);
    let train_samples = teach_samples(dataset, spec, history_len);
    let cancelled = |events: &mut EventSink<'_>, stage: Stage| -> Result<Summary> {
        events.emit(DistillEvent::new(stage, EventKind::Cancelled, 0, 0))?;
        Ok(Summary {
            dir: dir.to_path_buf(),
            teach: 0,
            filter: FilterReport::default(),
            train: serde_json::Value::Null,
            student: PathBuf::new(),
            evaluation: None,
            external_teacher: None,
            cancelled: true,
        })
    };
    let engine_options = EngineOptions { device: device.clone(), ..EngineOptions::default() };
    let teacher_options = EngineOptions {
        dtype: Some(spec.teacher_dtype),
        max_input_tokens: Some(spec.teacher_max_input_tokens),
        ..engine_options.clone()
    };
    let teacher = match &spec.teacher_outputs {
        Some(outputs) => TeacherSource::File(outputs),
        None => TeacherSource::Model(Box::new(
            Engine::load(&spec.teacher, &teacher_options)
                .with_context(|| format!("cannot load the teacher from {}", spec.teacher.display()))?,
        )),
    };

    // Teach.
    let teach_dir = stage_dir(dir, Stage::Teach);
    if !is_complete(dir, Stage::Teach) {
        let done = match &teacher {
            TeacherSource::File(outputs) => {
                let report = external::teach_from_file(&teach_dir, outputs, dataset, &train_samples, events)?;
                mark_complete(dir, Stage::Teach, &report)?;
                report.found
            }
            TeacherSource::Model(engine) => {
                if !teach_stage(dir, spec, dataset, prompts, engine, &train_samples, cancel, events)? {
                    return cancelled(events, Stage::Teach);
                }
                mark_complete(dir, Stage::Teach, &serde_json::json!({"samples": train_samples.len()}))?;
                train_samples.len()
            }
        };
        events.emit(DistillEvent::new(Stage::Teach, EventKind::Finished, done, train_samples.len()))?;
    }
    let external_teacher = match &teacher {
        TeacherSource::File(_) => Some(external::read_report(&teach_dir)?),
        TeacherSource::Model(_) => None,
    };

    // Filter (cheap and deterministic: recomputed unless complete).
    // In sample-list order, whatever order the cache was written in (a resumed or merged stage).
    let mut taught: HashMap<(String, String), Taught> = HashMap::new();
    for t in read_cache(&teach_dir)? {
        taught.entry((t.user.clone(), t.item.clone())).or_insert(t);
    }
    let taught: Vec<(&Sample, Taught)> = train_samples
        .iter()
        .zip(shards::keys(dataset, &train_samples))
        .filter_map(|(sample, key)| Some((sample, taught.remove(&key)?)))
        .collect();
    let mut report = FilterReport { enabled: spec.filter.enabled, ..FilterReport::default() };
    let mut kept = Vec::new();
    for (sample, t) in &taught {
        let sample = *sample;
        report.total += 1;
        match judge(&spec.filter, &matcher, sample, &t.text) {
            Some(reason) => {
                *report.dropped.entry(reason).or_default() += 1;
                let examples = report.examples.entry(reason).or_default();
                if examples.len() < 5 {
                    examples.push(t.text.clone());
                }
                if !spec.filter.enabled {
                    kept.push(Pair { sample: sample.clone(), target: t.text.clone() });
                }
            }
            None => kept.push(Pair { sample: sample.clone(), target: t.text.clone() }),
        }
    }
    report.kept = kept.len();
    if !is_complete(dir, Stage::Filter) {
        let filter_dir = stage_dir(dir, Stage::Filter);
        durable::write_json(&filter_dir.join("report.json"), &report)?;
        let mut lines = String::new();
        for pair in &kept {
            let s = &pair.sample;
            let row = serde_json::json!({"user": dataset.users[s.user as usize], "item": dataset.item(s.item).id, "text": pair.target});
            lines.push_str(&row.to_string());
            lines.push('\n');
        }
        durable::write_file(&filter_dir.join("kept.jsonl"), lines.as_bytes())?;
        mark_complete(dir, Stage::Filter, &report)?;
        events.emit(
            DistillEvent::new(Stage::Filter, EventKind::Finished, report.kept, report.total)
                .message(format!("kept {} of {}; dropped {:?}", report.kept, report.total, report.dropped)),
        )?;
    }
    if kept.is_empty() {
        bail!(
            "the filter kept none of the {} teacher explanations; see {}/filter/report.json",
            report.total,
            dir.display()
        );
    }

    // Train.
    let mut recipe = Recipe::load(&spec.student_recipe)?;
    if recipe.targets != Targets::References {
        bail!(
            "{}: the student learns the teacher's explanations; `targets` is for `prism train` only",
            spec.student_recipe.display()
        );
    }
    if let Some(init) = &spec.student_init {
        recipe.model =
            ModelSpec { init: Some(init.clone()), config: None, copy_init: false, induction_init: false };
    }
    let dev = reference_pairs(samples(dataset, &split, SampleSet::Held(Part::Dev), history_len));
    let train_dir = stage_dir(dir, Stage::Train);
    if !is_complete(dir, Stage::Train) {
        let total_steps = recipe.train.total_steps(kept.len().min(recipe.train_limit.unwrap_or(usize::MAX)));
        events.emit(DistillEvent::new(Stage::Train, EventKind::Started, 0, total_steps))?;
        let mut emit_error = None;
        let mut forward = |event: &TrainEvent| {
            let out = match event {
                TrainEvent::Step { step, total, loss, examples_per_s, eta_s, .. } => {
                    let mut e = DistillEvent::new(Stage::Train, EventKind::Progress, *step, *total);
                    e.loss = Some(*loss);
                    e.samples_per_s = Some(*examples_per_s);
                    e.eta_s = Some(*eta_s);
                    Some(e)
                }
                TrainEvent::Eval(record) => Some(
                    DistillEvent::new(Stage::Train, EventKind::Progress, record.step, total_steps)
                        .message(format!("dev {:?}", record.metrics)),
                ),
                TrainEvent::Saved { .. } => None,
            };
            if let Some(e) = out {
                if let Err(err) = events.emit(e) {
                    emit_error.get_or_insert(err);
                }
            }
        };
        let outcome = finetune(Finetune {
            dataset,
            prompts,
            matcher: &matcher,
            recipe: &recipe,
            train: &kept,
            dev: &dev,
            out: &train_dir,
            device,
            on_event: &mut forward,
            cancel,
            stop_at: None,
        })?;
        if let Some(err) = emit_error {
            return Err(err);
        }
        if outcome.ending == crate::train::Ending::Cancelled {
            return cancelled(events, Stage::Train);
        }
        mark_complete(dir, Stage::Train, &outcome)?;
        events.emit(DistillEvent::new(Stage::Train, EventKind::Finished, outcome.steps, outcome.steps))?;
    }
    let student_dir = train_dir.join(crate::train::trainer::BEST);
    let train_outcome: serde_json::Value = read_json(&train_dir.join(COMPLETE_FILE))?;

    // Evaluate.
    let eval_dir = stage_dir(dir, Stage::Evaluate);
    let evaluation = if is_complete(dir, Stage::Evaluate) {
        read_json(&eval_dir.join("report.json"))?
    } else {
        let student_options =
            EngineOptions { max_input_tokens: Some(recipe.max_input_tokens), ..engine_options.clone() };
        let student = Engine::load(&student_dir, &student_options)?;
        let test: Vec<Sample> = samples(dataset, &split, SampleSet::Held(Part::Test), history_len)
            .into_iter()
            .filter(|s| s.reference.is_some())
            .collect();
        let texts = match &teacher {
            TeacherSource::File(_) => external::read_test_texts(&teach_dir)?,
            TeacherSource::Model(_) => HashMap::new(),
        };
        let (test, teacher) = eval_teacher(spec, &teacher, &texts, dataset, test);
        let Some(evaluation) = evaluate(
            Evaluate {
                dataset,
                prompts,
                matcher: &matcher,
                teacher,
                student: &student,
                student_max_input: recipe.max_input_tokens,
                decoding: &spec.eval_decoding,
                samples: &test,
                history_len,
                dir: &eval_dir,
                cancel,
            },
            events,
        )?
        else {
            return cancelled(events, Stage::Evaluate);
        };
        durable::write_json(&eval_dir.join("report.json"), &evaluation)?;
        mark_complete(dir, Stage::Evaluate, &serde_json::json!({"samples": evaluation.samples}))?;
        let explained = evaluation.samples * if evaluation.teacher.is_some() { 2 } else { 1 };
        events.emit(DistillEvent::new(Stage::Evaluate, EventKind::Finished, explained, explained))?;
        serde_json::to_value(&evaluation)?
    };
    let summary = Summary {
        dir: dir.to_path_buf(),
        teach: taught.len(),
        filter: report,
        train: train_outcome,
        student: student_dir,
        evaluation: Some(evaluation),
        external_teacher,
        cancelled: false,
    };
    durable::write_json(&dir.join(SUMMARY_FILE), &summary)?;
    Ok(summary)
}

/// Where a job's teacher explanations come from.
enum TeacherSource<'s> {
    Model(Box<Engine>),
    File(&'s TeacherOutputs),
}

/// The evaluation's test samples (from `test`, the test samples with a reference) and what the
/// student is compared with: the teacher model on the first `eval_samples`; for a job taught from
/// a file, the file's texts on the first `eval_samples` of the samples it explains, or no teacher
/// (and the first `eval_samples`) when it explains none.
fn eval_teacher<'a>(
    spec: &JobSpec,
    teacher: &'a TeacherSource<'_>,
    texts: &'a HashMap<(String, String), String>,
    dataset: &Dataset,
    test: Vec<Sample>,
) -> (Vec<Sample>, Teacher<'a>) {
    let n = spec.eval_samples;
    match teacher {
        TeacherSource::Model(engine) => (
            test.into_iter().take(n).collect(),
            Teacher::Model { engine, max_input: spec.teacher_max_input_tokens },
        ),
        TeacherSource::File(outputs) if test.iter().any(|s| texts.contains_key(&s.key(dataset))) => {
            let covered: Vec<Sample> =
                test.into_iter().filter(|s| texts.contains_key(&s.key(dataset))).take(n).collect();
            let source = format!(
                "the external teacher's texts for these test samples ({}, which has {} rows for test items)",
                outputs.path.display(),
                texts.len()
            );
            (covered, Teacher::Texts { texts, source })
        }
        TeacherSource::File(outputs) => {
            let why = format!(
                "none: {} has no rows for the test items with a reference, and its teacher does not run here",
                outputs.path.display()
            );
            (test.into_iter().take(n).collect(), Teacher::Absent { why })
        }
    }
}

/// What teaching any part of a job's samples needs.
pub(super) struct TeachPart<'a> {
    pub spec: &'a JobSpec,
    pub dataset: &'a Dataset,
    pub prompts: &'a Prompts,
    pub teacher: &'a Engine,
    pub samples: &'a [Sample],
    pub cancel: &'a AtomicBool,
}

impl TeachPart<'_> {
    /// Teaches `shard` of the samples into `dir` with the job's teacher settings; false when
    /// cancelled.
    pub(super) fn teach(&self, shard: Shard, dir: &Path, events: &mut EventSink<'_>) -> Result<bool> {
        let spec = self.spec;
        let decoding = spec.teach_decoding.config_for(self.teacher);
        let job = Teach {
            dataset: self.dataset,
            prompts: self.prompts,
            teacher: self.teacher,
            decoding: &decoding,
            max_input_tokens: spec.teacher_max_input_tokens,
            batch_size: spec.teach_batch,
            samples: self.samples,
            shard,
            dir,
            cancel: self.cancel,
        };
        teach(job, events)
    }
}

/// The teach stage in this process: in one piece, or shard after shard and then merged (what a
/// Slurm job array does in parallel). Returns whether it completed (false: cancelled).
#[allow(clippy::too_many_arguments)]
fn teach_stage(
    dir: &Path,
    spec: &JobSpec,
    dataset: &Dataset,
    prompts: &Prompts,
    teacher: &Engine,
    samples: &[Sample],
    cancel: &AtomicBool,
    events: &mut EventSink<'_>,
) -> Result<bool> {
    let part = TeachPart { spec, dataset, prompts, teacher, samples, cancel };
    let Some(count) = spec.shards else {
        return part.teach(Shard::ALL, &stage_dir(dir, Stage::Teach), events);
    };
    let keys = shards::keys(dataset, samples);
    shards::write_plan(dir, &Plan::new(&keys, count, spec.teach_batch))?;
    for index in 0..count {
        let shard = Shard { index, count };
        let mut failure = None;
        let mut to_job = |event: &DistillEvent| {
            if let Err(e) = events.emit(event.clone()) {
                failure.get_or_insert(e);
            }
        };
        let done = shards::teach_shard(dir, &part, shard, &mut to_job)?;
        if let Some(e) = failure {
            return Err(e);
        }
        if !done {
            return Ok(false);
        }
    }
    merge_shards(dir, spec, &keys, events)?;
    Ok(true)
}

/// Merges the complete shards' caches (see [`shards::merge`]) and reports the outcome.
fn merge_shards(
    dir: &Path,
    spec: &JobSpec,
    keys: &[(String, String)],
    events: &mut EventSink<'_>,
) -> Result<shards::MergeReport> {
    let report = shards::merge(dir, keys, spec.teach_batch, spec.shards.unwrap_or(1))?;
    events.emit(
        DistillEvent::new(Stage::Teach, EventKind::Progress, report.merged, report.samples).message(format!(
            "merged {} shards: {} samples, {} duplicates, {} stray lines",
            report.shards,
            report.merged,
            report.duplicates.len(),
            report.strays.len()
        )),
    )?;
    Ok(report)
}

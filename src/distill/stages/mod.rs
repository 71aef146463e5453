//! The job's stages behind one small interface ([`JobStage`]): `teach`, `filter`, `train` and
//! `evaluate`, each a module with one unit type. A stage either runs (its directory has no
//! completion marker yet) or reloads what it made earlier from its files; both leave what later
//! stages and the summary need in [`Outputs`]. Which stage runs when, and marking them complete, is
//! the job's ([`super::job`]).

pub mod evaluate;
pub mod filter;
pub mod teach;
pub mod train;

use anyhow::{Context, Result};

use super::events::{DistillEvent, EventSink, Stage};
use super::external::{ExternalReport, TeacherOutputs};
use super::filter::FilterReport;
use super::finetune::{Pair, Recipe};
use super::layout::Record;
use super::spec::{teach_samples, JobContext, JobSpec};
use crate::data::Split;
use crate::explain::samples::Sample;
use crate::explain::Matcher;
use crate::model::engine::{Engine, EngineOptions};

/// One stage of the job.
pub trait JobStage {
    fn stage(&self) -> Stage;

    /// Does the stage's work and puts what it made in `outputs`. `None` when cancelled; else what
    /// its completion marker records and the event that reports it finished.
    fn run(
        &self,
        job: &JobRun<'_>,
        outputs: &mut Outputs,
        events: &mut EventSink<'_>,
    ) -> Result<Option<Completed>>;

    /// Puts what the stage made in an earlier run in `outputs`, from its files.
    fn reload(&self, job: &JobRun<'_>, outputs: &mut Outputs) -> Result<()>;
}

/// A stage's end: what its marker records, and the event that says so.
pub struct Completed {
    pub record: Record,
    pub finished: DistillEvent,
}

/// Where a job's teacher explanations come from.
pub enum TeacherSource<'s> {
    Model(Box<Engine>),
    File(&'s TeacherOutputs),
}

/// One run of the job's stages: its context and settings, and what every stage derives from them,
/// made once.
pub struct JobRun<'a> {
    pub context: JobContext<'a>,
    pub spec: &'a JobSpec,
    pub split: Split,
    pub matcher: Matcher,
    /// The samples the teacher explains, in their seeded order.
    pub train_samples: Vec<Sample>,
    pub teacher: TeacherSource<'a>,
    /// The engine options of the models the job loads (the teacher's add its precision and input
    /// length).
    pub engine_options: EngineOptions,
}

impl<'a> JobRun<'a> {
    /// Derives the run's shared parts and loads the teacher, unless the job learns from a file.
    pub fn new(context: JobContext<'a>, spec: &'a JobSpec) -> Result<JobRun<'a>> {
        let JobContext { dataset, history_len, device, .. } = context;
        let engine_options = EngineOptions { device: device.clone(), ..EngineOptions::default() };
        let teacher_options = EngineOptions {
            dtype: Some(spec.teacher_dtype),
            max_input_tokens: Some(spec.teacher_max_input_tokens),
            ..engine_options.clone()
        };
        let split = Split::leave_last_out(dataset);
        let matcher = Matcher::new(dataset);
        let train_samples = teach_samples(dataset, spec, history_len);
        let teacher = match &spec.teacher_outputs {
            Some(outputs) => TeacherSource::File(outputs),
            None => TeacherSource::Model(Box::new(
                Engine::load(&spec.teacher, &teacher_options)
                    .with_context(|| format!("cannot load the teacher from {}", spec.teacher.display()))?,
            )),
        };
        Ok(JobRun { context, spec, split, matcher, train_samples, teacher, engine_options })
    }
}

/// What the stages made, for the stages after them and the job's summary.
#[derive(Default)]
pub struct Outputs {
    /// The external teacher's file and what its validation found, when the job learns from one.
    pub external_teacher: Option<ExternalReport>,
    pub filtered: Option<Filtered>,
    pub trained: Option<Trained>,
    /// `evaluate/report.json`.
    pub evaluation: Option<serde_json::Value>,
}

/// The filter's verdict on the cached teacher explanations.
pub struct Filtered {
    /// Samples with a cached explanation.
    pub taught: usize,
    pub report: FilterReport,
    /// The (prompt → explanation) pairs the student learns from, in sample-list order.
    pub kept: Vec<Pair>,
}

/// The trained student.
pub struct Trained {
    pub recipe: Recipe,
    /// The trainer's outcome as the stage's marker records it.
    pub outcome: serde_json::Value,
    /// The checkpoint chosen on dev (`train/best`).
    pub student: std::path::PathBuf,
}

/// What an earlier stage made (an error, not a panic, if a stage list ever ran out of order).
pub fn earlier<'o, T>(made: &'o Option<T>, what: &str) -> Result<&'o T> {
    made.as_ref().with_context(|| format!("the job's {what} is not there yet: the stages ran out of order"))
}

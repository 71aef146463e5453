//! The distillation job: the list of its stages — teach → filter → train → evaluate
//! ([`super::stages`]) — and the resume rule: a stage whose completion marker is on disk is
//! reloaded from its files, the first one without runs and is marked complete here, and a
//! cancelled stage stops the job, so `--resume` after a kill continues inside the stage it stopped
//! in (the teacher cache and the trainer's checkpoint make that exact).

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{anyhow, Result};
use candle_core::Device;

use super::events::{DistillEvent, EventKind, EventSink, Stage};
use super::external::ExternalReport;
use super::filter::FilterReport;
use super::layout::{is_complete, mark_complete, LOCK_FILE, SUMMARY_FILE};
use super::shards;
use super::spec::{JobContext, JobSpec};
use super::stages::evaluate::EvaluateStage;
use super::stages::filter::FilterStage;
use super::stages::teach::TeachStage;
use super::stages::train::TrainStage;
use super::stages::{earlier, JobRun, JobStage, Outputs};
use crate::data::Dataset;
use crate::durable;
use crate::explain::Prompts;

/// The stages in the order they run.
const STAGES: [&dyn JobStage; 4] = [&TeachStage, &FilterStage, &TrainStage, &EvaluateStage];

/// The job's outcome (also `summary.json`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct JobSummary {
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

/// A job running on its own thread: its events arrive on `events`; setting `cancel` stops it at
/// the next batch or step, resumably.
pub struct JobHandle {
    pub events: Receiver<DistillEvent>,
    pub cancel: Arc<AtomicBool>,
    thread: JoinHandle<Result<JobSummary>>,
}

impl JobHandle {
    /// Waits for the job to end.
    pub fn join(self) -> Result<JobSummary> {
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
        let context = JobContext {
            dir: &dir,
            dataset: &dataset,
            prompts: &prompts,
            history_len,
            device: &device,
            cancel: &flag,
        };
        run(context, &spec, &mut forward)
    });
    JobHandle { events, cancel, thread }
}

/// Runs the stages of the job in `context.dir` that are not complete yet, passing every event to
/// `on_event` as well as to the job's log.
pub fn run(
    context: JobContext<'_>,
    spec: &JobSpec,
    on_event: &mut dyn FnMut(&DistillEvent),
) -> Result<JobSummary> {
    let dir = context.dir;
    let _lock = shards::exclusive(&dir.join(LOCK_FILE), &format!("the job in {}", dir.display()))?;
    let mut events = EventSink::open(dir, on_event)?;
    let result = run_stages(context, spec, &mut events);
    if let Err(e) = &result {
        let stage = Stage::ALL.into_iter().find(|s| !is_complete(dir, *s)).unwrap_or(Stage::Evaluate);
        events.emit(DistillEvent::new(stage, EventKind::Failed, 0, 0).message(format!("{e:#}")))?;
    }
    result
}

/// The resume rule over [`STAGES`].
fn run_stages(context: JobContext<'_>, spec: &JobSpec, events: &mut EventSink<'_>) -> Result<JobSummary> {
    let dir = context.dir;
    let job = JobRun::new(context, spec)?;
    let mut outputs = Outputs::default();
    for stage in STAGES {
        if is_complete(dir, stage.stage()) {
            stage.reload(&job, &mut outputs)?;
            continue;
        }
        let Some(completed) = stage.run(&job, &mut outputs, events)? else {
            events.emit(DistillEvent::new(stage.stage(), EventKind::Cancelled, 0, 0))?;
            return Ok(JobSummary {
                dir: dir.to_path_buf(),
                teach: 0,
                filter: FilterReport::default(),
                train: serde_json::Value::Null,
                student: PathBuf::new(),
                evaluation: None,
                external_teacher: None,
                cancelled: true,
            });
        };
        mark_complete(dir, stage.stage(), &completed.record)?;
        events.emit(completed.finished)?;
    }
    let filtered = earlier(&outputs.filtered, "filter")?;
    let trained = earlier(&outputs.trained, "trained student")?;
    let summary = JobSummary {
        dir: dir.to_path_buf(),
        teach: filtered.taught,
        filter: filtered.report.clone(),
        train: trained.outcome.clone(),
        student: trained.student.clone(),
        evaluation: outputs.evaluation,
        external_teacher: outputs.external_teacher,
        cancelled: false,
    };
    durable::write_json(&dir.join(SUMMARY_FILE), &summary)?;
    Ok(summary)
}

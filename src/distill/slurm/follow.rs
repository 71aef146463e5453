//! Following a part of a job on Slurm to its end: `slurm/state.json` (the submissions and each
//! task's last known state, so a restarted coordinator follows the same tasks instead of
//! submitting again), the decision for each task after a look ([`next`]: done, submit, wait,
//! resubmit, give up), and the loop that looks, resubmits and reports ([`follow`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::commands::{describe, is_active, query, submit};
use crate::config::SlurmSettings;
use crate::distill::events::{DistillEvent, EventKind, EventSink, Stage};
use crate::durable;
use crate::model::checkpoint::read_json;

/// One submission of a script.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Submission {
    pub job: String,
    /// The array indices (shards) it runs; `[0]` for a job without an array.
    pub tasks: Vec<usize>,
    pub time: f64,
}

/// A task's latest run.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskState {
    /// The job id of its latest submission.
    pub job: String,
    /// Slurm's latest word on it, or `DONE` once its work is on disk.
    pub state: String,
    /// Times it was submitted again.
    pub retries: usize,
    /// Its earlier runs that ended without finishing, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ended: Vec<EndedRun>,
}

/// A run of a task that ended without its work on disk.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EndedRun {
    pub job: String,
    /// Slurm's word on how it ended, `UNKNOWN` when Slurm had no record of it.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<String>,
    /// When the coordinator saw it (seconds since the Unix epoch).
    pub time: f64,
}

/// The submissions of one script and its tasks (a part of `slurm/state.json`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tracked {
    pub script: PathBuf,
    pub submissions: Vec<Submission>,
    pub tasks: Vec<TaskState>,
    /// When the coordinator last heard from Slurm (seconds since the Unix epoch): the tasks'
    /// states are as of then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<f64>,
}

/// `DIR/slurm/state.json`: what this backend submitted, by part (`teach`, `rest`).
pub type State = BTreeMap<String, Tracked>;

pub const STATE_FILE: &str = "state.json";
pub const DONE: &str = "DONE";

pub fn slurm_dir(job_dir: &Path) -> PathBuf {
    job_dir.join("slurm")
}

/// Reads `slurm/state.json` (empty when the job never used Slurm).
pub fn read_state(job_dir: &Path) -> Result<State> {
    let path = slurm_dir(job_dir).join(STATE_FILE);
    if !path.exists() {
        return Ok(State::new());
    }
    read_json(&path)
}

/// What to do with a task after a look at Slurm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    Done,
    /// It was never submitted.
    Submit,
    Wait,
    /// Its task ended (in this state, or `UNKNOWN` when Slurm forgot it) without finishing.
    Resubmit(String),
    /// It ended without finishing once more than the retries allow.
    GiveUp(String),
}

/// The decision for one task: `done` is whether its work is on disk, `job` the job id of its latest
/// submission (empty: none yet), `seen` Slurm's state of that run.
pub fn next(done: bool, job: &str, seen: Option<&str>, retries: usize, max_retries: usize) -> Next {
    match seen {
        _ if done => Next::Done,
        _ if job.is_empty() => Next::Submit,
        Some(state) if is_active(state) => Next::Wait,
        seen => {
            let state = seen.unwrap_or("UNKNOWN").to_owned();
            if retries >= max_retries {
                Next::GiveUp(state)
            } else {
                Next::Resubmit(state)
            }
        }
    }
}

/// A part of the job to run on Slurm and follow to its end.
pub struct Follow<'a> {
    pub dir: &'a Path,
    /// `teach` or `rest`.
    pub part: &'a str,
    /// The stage its events are reported under.
    pub stage: Stage,
    pub settings: &'a SlurmSettings,
    /// The script's text (written to `DIR/slurm/PART.sbatch`).
    pub script: String,
    pub tasks: usize,
    /// Whether task `k`'s work is on disk.
    pub done: &'a dyn Fn(usize) -> bool,
    /// Where task `k`'s log is (given its job id), for error messages.
    pub log: &'a dyn Fn(usize, &str) -> String,
    /// A progress event for the tasks' states (called after each look).
    pub progress: &'a dyn Fn(&[TaskState]) -> Result<DistillEvent>,
    pub cancel: &'a AtomicBool,
    /// The command that continues following the job, for the next step of every end.
    pub resume: &'a str,
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn save(dir: &Path, state: &State) -> Result<()> {
    durable::write_json(&slurm_dir(dir).join(STATE_FILE), state)
}

/// Submits the part (unless a previous run of this command already did and its tasks are still
/// known) and follows it until every task's work is on disk, resubmitting the ones that ended
/// without it. Returns false when cancelled (the tasks go on running; `--resume` follows them).
/// Every end is an event: giving up, too many failed looks at Slurm, and being cancelled are
/// logged with the reason and [`Follow::resume`] as the next step (and such errors are
/// [`Recorded`]).
pub fn follow(f: Follow<'_>, events: &mut EventSink<'_>) -> Result<bool> {
    let mut state = read_state(f.dir)?;
    let script_path = slurm_dir(f.dir).join(format!("{}.sbatch", f.part));
    durable::write_file(&script_path, f.script.as_bytes())?;
    let tracked = state.entry(f.part.to_owned()).or_default();
    tracked.script = script_path.clone();
    tracked.tasks.resize(f.tasks, TaskState::default());
    let array = f.part != "rest";
    // The progress event is logged when it changes, and at least every few polls as a heartbeat.
    let mut last_progress: Option<(Stage, usize, usize, String)> = None;
    let mut polls_since_progress = 0;
    // Slurm's controller can be briefly unreachable (busy, restarting): a failed look or
    // submission is tried again at the next poll, up to this many times in a row.
    const MAX_FAILURES: usize = 10;
    let mut failures = 0;
    loop {
        let all_done = match look(&f, &script_path, &mut state, array, events) {
            Ok(all_done) => {
                failures = 0;
                all_done
            }
            Err(e) if e.is::<GaveUp>() => {
                save(f.dir, &state)?;
                let message = format!("{e:#}");
                events.emit(DistillEvent::new(f.stage, EventKind::Failed, 0, 0).message(&message).next(
                    format!(
                        "raise [slurm] max_retries (now {}) in the config, then continue with: {}",
                        f.settings.max_retries, f.resume
                    ),
                ))?;
                return Err(Recorded(message).into());
            }
            Err(e) => {
                failures += 1;
                if failures >= MAX_FAILURES {
                    save(f.dir, &state)?;
                    let message =
                        format!("slurm failed {failures} times in a row, the coordinator stopped: {e:#}");
                    events.emit(
                        DistillEvent::new(f.stage, EventKind::Failed, 0, 0)
                            .message(&message)
                            .next(format!("once Slurm answers again, continue with: {}", f.resume)),
                    )?;
                    return Err(Recorded(message).into());
                }
                events.emit(
                    DistillEvent::new(f.stage, EventKind::Slurm, 0, 0)
                        .message(format!("slurm: {e:#}; trying again at the next poll")),
                )?;
                false
            }
        };
        save(f.dir, &state)?;
        let progress = (f.progress)(&state[f.part].tasks)?;
        let key = (progress.stage, progress.done, progress.total, progress.message.clone());
        polls_since_progress += 1;
        if all_done || last_progress.as_ref() != Some(&key) || polls_since_progress >= 4 {
            events.emit(progress)?;
            last_progress = Some(key);
            polls_since_progress = 0;
        }
        if all_done {
            return Ok(true);
        }
        let until = Instant::now() + Duration::from_secs_f64(f.settings.poll_seconds.max(0.1));
        while Instant::now() < until {
            if f.cancel.load(Ordering::Relaxed) {
                events.emit(
                    DistillEvent::new(f.stage, EventKind::Cancelled, 0, 0)
                        .message(format!(
                            "the coordinator stopped following the {} tasks: those still queued or \
                             running go on, but nothing resubmits, merges or goes on until one follows them again",
                            f.part
                        ))
                        .next(format!("continue with: {}", f.resume)),
                )?;
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// An error the backend has already logged as a `Failed` event, with its next step.
#[derive(Debug)]
pub struct Recorded(pub String);

impl std::fmt::Display for Recorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Recorded {}

/// A task ended without its work more often than `max_retries` allows.
#[derive(Debug)]
struct GaveUp(String);

impl std::fmt::Display for GaveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GaveUp {}

/// One look at Slurm: updates the tasks' states and submits the ones that need it. Returns whether
/// every task's work is on disk.
fn look(
    f: &Follow<'_>,
    script: &Path,
    state: &mut State,
    array: bool,
    events: &mut EventSink<'_>,
) -> Result<bool> {
    let tracked = state.get_mut(f.part).expect("inserted by follow");
    let mut jobs: Vec<String> =
        tracked.tasks.iter().filter(|t| !t.job.is_empty()).map(|t| t.job.clone()).collect();
    jobs.sort();
    jobs.dedup();
    let seen = if jobs.is_empty() { HashMap::new() } else { query(&jobs)? };
    let time = now();
    if !jobs.is_empty() {
        tracked.seen = Some(time);
    }
    // (task, how its latest run ended, if it ran).
    let mut submit_now: Vec<(usize, Option<String>)> = Vec::new();
    let mut spent = Vec::new();
    let max = f.settings.max_retries;
    for (k, task) in tracked.tasks.iter_mut().enumerate() {
        let observed = seen.get(&(task.job.clone(), k));
        match next((f.done)(k), &task.job, observed.map(|s| s.state.as_str()), task.retries, max) {
            Next::Done => task.state = DONE.into(),
            Next::Submit => submit_now.push((k, None)),
            Next::Wait => task.state = observed.map(|s| s.state.clone()).unwrap_or_default(),
            Next::Resubmit(ended) | Next::GiveUp(ended) => {
                let by = observed.and_then(|s| s.by.clone());
                let exit_code = observed.and_then(|s| s.exit_code.clone());
                let text = describe(&ended, by.as_deref(), exit_code.as_deref());
                let text =
                    if observed.is_none() { format!("{text} (Slurm has no record of it)") } else { text };
                // The state it ended in stays on record, also when it is submitted again.
                task.state = ended.clone();
                if task.ended.last().map(|e| &e.job) != Some(&task.job) {
                    task.ended.push(EndedRun { job: task.job.clone(), state: ended, by, exit_code, time });
                }
                if task.retries >= max {
                    spent.push(format!(
                        "{} task {k} (job {}) ended {text} without finishing, {} times in all \
                         (max_retries = {max}); its log: {}",
                        f.part,
                        task.job,
                        task.retries + 1,
                        (f.log)(k, &task.job)
                    ));
                } else {
                    submit_now.push((k, Some(text)));
                }
            }
        }
    }
    if !spent.is_empty() {
        return Err(GaveUp(format!("slurm: {}", spent.join("; "))).into());
    }
    if submit_now.is_empty() {
        return Ok(tracked.tasks.iter().all(|t| t.state == DONE));
    }
    let spec: Vec<String> = submit_now.iter().map(|(k, _)| k.to_string()).collect();
    let spec = spec.join(",");
    // The first submission of every task is the script's own array.
    let first = tracked.submissions.is_empty() && submit_now.len() == f.tasks;
    let job = submit(script, (array && !first).then_some(spec.as_str()))?;
    for (k, ended) in &submit_now {
        let task = &mut tracked.tasks[*k];
        if let Some(ended) = ended {
            task.retries += 1;
            events.emit(DistillEvent::new(f.stage, EventKind::Slurm, 0, 0).message(format!(
                "slurm: {} task {k} (job {}) ended {ended} without finishing; submitted again as job {job} \
                 (retry {} of {max})",
                f.part, task.job, task.retries
            )))?;
        }
        task.job = job.clone();
        task.state = "SUBMITTED".into();
    }
    tracked.submissions.push(Submission {
        job: job.clone(),
        tasks: submit_now.iter().map(|(k, _)| *k).collect(),
        time: now(),
    });
    events.emit(
        DistillEvent::new(f.stage, EventKind::Slurm, 0, 0)
            .message(format!("slurm: submitted {} task(s) [{spec}] as job {job}", f.part)),
    )?;
    Ok(false)
}

/// How the tasks stand, e.g. `2 DONE, 1 RUNNING, 1 PENDING`.
pub fn summarize(tasks: &[TaskState]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for t in tasks {
        *counts.entry(if t.state.is_empty() { "UNKNOWN" } else { &t.state }).or_default() += 1;
    }
    counts.iter().map(|(s, n)| format!("{n} {s}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ended_tasks_without_their_work_are_resubmitted_until_the_retries_run_out() {
        assert_eq!(next(false, "", None, 0, 0), Next::Submit);
        assert_eq!(next(true, "7", Some("FAILED"), 0, 3), Next::Done);
        assert_eq!(next(false, "7", Some("RUNNING"), 0, 3), Next::Wait);
        assert_eq!(next(false, "7", Some("REQUEUED"), 0, 3), Next::Wait);
        for ended in
            ["FAILED", "PREEMPTED", "CANCELLED", "NODE_FAIL", "TIMEOUT", "OUT_OF_MEMORY", "COMPLETED"]
        {
            assert_eq!(next(false, "7", Some(ended), 2, 3), Next::Resubmit(ended.into()), "{ended}");
        }
        assert_eq!(next(false, "7", None, 0, 3), Next::Resubmit("UNKNOWN".into()));
        assert_eq!(next(false, "7", Some("TIMEOUT"), 3, 3), Next::GiveUp("TIMEOUT".into()));
    }

    #[test]
    fn states_are_summarized() {
        let task = |s: &str| TaskState { state: s.into(), ..TaskState::default() };
        assert_eq!(
            summarize(&[task("DONE"), task("RUNNING"), task("DONE"), task("")]),
            "2 DONE, 1 RUNNING, 1 UNKNOWN"
        );
    }
}

//! The Slurm backend: the teach stage as a job array, one task per shard
//! (`prism distill teach --job DIR --shard $SLURM_ARRAY_TASK_ID/N`), and optionally the rest of
//! the job as one more Slurm job. Slurm does the scheduling; this module writes the sbatch scripts
//! from `[slurm]`, submits them with `sbatch`, follows the tasks with `squeue` (live tasks) and
//! `sacct` (ended ones; without accounting, `scontrol show job`, which remembers a job for
//! `MinJobAge`), and resubmits the shards whose task ended without finishing (failed, preempted,
//! cancelled, timed out, node failure, or gone from Slurm's memory) up to `max_retries` times —
//! shards are idempotent. A shard counts as done only by its `complete.json` on the shared job
//! directory, never by Slurm's word alone.
//!
//! Files: `DIR/slurm/{teach,rest}.sbatch`, `DIR/slurm/state.json` (the submissions and each task's
//! last known state, so a restarted `prism distill --resume` follows the same tasks instead of
//! submitting again), the array's logs in `teach/shards/K/slurm-JOB_K.out`, the rest's in
//! `slurm/rest-JOB.out`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::events::{DistillEvent, EventKind, EventSink, Stage};
use super::shards;
use crate::config::SlurmSettings;
use crate::durable;
use crate::model::checkpoint::read_json;

/// The commands the backend runs.
const COMMANDS: [&str; 3] = ["sbatch", "squeue", "scontrol"];

/// Fails with a clear message unless Slurm's client commands are on the PATH.
pub fn check_installed() -> Result<()> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let missing: Vec<&str> = COMMANDS
        .into_iter()
        .filter(|c| !std::env::split_paths(&path).any(|dir| dir.join(c).is_file()))
        .collect();
    if !missing.is_empty() {
        bail!(
            "the Slurm backend needs sbatch, squeue and scontrol on the PATH; not found: {}. Run on a \
             Slurm login node (or load its module), or use --backend local",
            missing.join(", ")
        );
    }
    Ok(())
}

/// Quotes `word` for a POSIX shell.
pub fn shell_quote(word: &str) -> String {
    if !word.is_empty() && word.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:=,@%+".contains(&b)) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// One sbatch script.
pub struct Script<'a> {
    pub name: &'a str,
    /// Array tasks `0..n`, or one job.
    pub array: Option<usize>,
    /// Slurm's `--output` pattern.
    pub output: &'a Path,
    /// The prism command, already quoted (so `$SLURM_ARRAY_TASK_ID` may stay unquoted).
    pub command: &'a str,
}

/// The text of an sbatch script: `#SBATCH` lines from the settings, the setup lines, then the
/// command (under the launcher, if any).
pub fn script(settings: &SlurmSettings, script: &Script<'_>) -> String {
    let mut lines = vec!["#!/bin/bash".to_owned(), format!("#SBATCH --job-name={}", script.name)];
    if let Some(n) = script.array {
        lines.push(format!("#SBATCH --array=0-{}", n.saturating_sub(1)));
    }
    lines.push(format!("#SBATCH --output={}", script.output.display()));
    for (option, value) in [
        ("partition", &settings.partition),
        ("account", &settings.account),
        ("gres", &settings.gres),
        ("time", &settings.time),
        ("mem", &settings.mem),
    ] {
        if !value.is_empty() {
            lines.push(format!("#SBATCH --{option}={value}"));
        }
    }
    lines.push(format!("#SBATCH --cpus-per-task={}", settings.cpus_per_task.max(1)));
    lines.extend(settings.options.iter().map(|o| format!("#SBATCH {o}")));
    lines.push("set -euo pipefail".into());
    lines.push("export RAYON_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"".into());
    lines.extend(settings.setup.iter().cloned());
    let launcher =
        if settings.launcher.is_empty() { String::new() } else { format!("{} ", settings.launcher) };
    lines.push(format!("exec {launcher}{}", script.command));
    lines.join("\n") + "\n"
}

/// Runs a Slurm command, returning its stdout, or an error with its stderr.
fn slurm(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program} (is Slurm installed?)"))?;
    if !out.status.success() {
        bail!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Submits `script` (with `--array=SPEC` overriding the script's own array) and returns the job id.
pub fn submit(script: &Path, array: Option<&str>) -> Result<String> {
    let array_arg = array.map(|a| format!("--array={a}"));
    let mut args = vec!["--parsable"];
    args.extend(array_arg.as_deref());
    let script = script.to_string_lossy();
    args.push(&script);
    let out = slurm("sbatch", &args)?;
    // `--parsable` prints `ID` or `ID;CLUSTER`.
    let id = out.trim().split(';').next().unwrap_or("").to_owned();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        bail!("sbatch printed {:?}, not a job id", out.trim());
    }
    Ok(id)
}

/// A task: its job id and its array index (0 for a job without an array).
type TaskId = (String, usize);

/// States in which a task will still run (or is running).
pub fn is_active(state: &str) -> bool {
    matches!(
        state,
        "PENDING"
            | "RUNNING"
            | "CONFIGURING"
            | "COMPLETING"
            | "REQUEUED"
            | "REQUEUE_FED"
            | "REQUEUE_HOLD"
            | "RESIZING"
            | "SUSPENDED"
            | "STAGE_OUT"
            | "SIGNALING"
            | "STOPPED"
    )
}

/// Expands an array index list as Slurm prints it: `3`, `[2-4]`, `1,5-7%2`.
fn indices(spec: &str) -> Vec<usize> {
    let spec = spec.trim_start_matches('[').trim_end_matches(']');
    let spec = spec.split('%').next().unwrap_or("");
    let mut out = Vec::new();
    for part in spec.split(',') {
        let range = match part.split_once('-') {
            Some((a, b)) => a.parse::<usize>().ok().zip(b.parse::<usize>().ok()),
            None => part.parse::<usize>().ok().map(|a| (a, a)),
        };
        if let Some((a, b)) = range {
            out.extend(a..=b);
        }
    }
    out
}

/// Splits `123_4` (an array task), `123_[4-6]` or `123` (a job).
fn task_ids(id: &str) -> Vec<TaskId> {
    match id.split_once('_') {
        Some((job, tasks)) => indices(tasks).into_iter().map(|t| (job.to_owned(), t)).collect(),
        None => vec![(id.to_owned(), 0)],
    }
}

/// What Slurm says about one task.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Seen {
    pub state: String,
    /// Who cancelled it, where Slurm says (sacct's `CANCELLED by UID`), as a user name if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// `CODE:SIGNAL`, where Slurm says (sacct, scontrol).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<String>,
    /// Why it waits or ended (squeue's and scontrol's `Reason`), unless `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

fn non_empty(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty() && text != "None" && text != "(null)").then(|| text.to_owned())
}

/// The name of user `uid`, or the number where the system does not know it.
fn user_name(uid: &str) -> String {
    let Ok(id) = uid.parse::<libc::uid_t>() else { return uid.to_owned() };
    let mut record: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buffer = vec![0 as libc::c_char; 4096];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwuid_r writes into `record` and `buffer`, both alive and sized as passed; `found`
    // points at `record` or is null.
    let rc = unsafe { libc::getpwuid_r(id, &mut record, buffer.as_mut_ptr(), buffer.len(), &mut found) };
    if rc != 0 || found.is_null() || record.pw_name.is_null() {
        return uid.to_owned();
    }
    // SAFETY: on success pw_name is a NUL-terminated string inside `buffer`.
    unsafe { std::ffi::CStr::from_ptr(record.pw_name) }.to_string_lossy().into_owned()
}

/// Rows `ID|STATE|EXIT|REASON` of `squeue -o %i|%T||%r` or `sacct -P -o JobID,State,ExitCode`
/// (whose states may read `CANCELLED by 0`); missing columns are empty.
pub fn parse_rows(text: &str) -> Vec<(TaskId, Seen)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut columns = line.trim().split('|');
        let (Some(id), Some(state)) = (columns.next(), columns.next()) else { continue };
        let mut words = state.split_whitespace();
        let state = words.next().unwrap_or("").to_owned();
        let by = match (words.next(), words.next()) {
            (Some("by"), Some(uid)) => Some(user_name(uid)),
            _ => None,
        };
        let exit_code = columns.next().and_then(non_empty);
        let reason = columns.next().and_then(non_empty);
        let seen = Seen { state, by, exit_code, reason };
        for task in task_ids(id.trim()) {
            out.push((task, seen.clone()));
        }
    }
    out
}

/// `scontrol show job -o` lines: `JobId=… ArrayJobId=12 ArrayTaskId=3 … JobState=COMPLETED …`.
pub fn parse_scontrol(text: &str) -> Vec<(TaskId, Seen)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: HashMap<&str, &str> = line.split_whitespace().filter_map(|f| f.split_once('=')).collect();
        let Some(state) = fields.get("JobState") else { continue };
        let tasks = match (fields.get("ArrayJobId"), fields.get("ArrayTaskId")) {
            (Some(job), Some(tasks)) => indices(tasks).into_iter().map(|t| (job.to_string(), t)).collect(),
            _ => fields.get("JobId").map(|job| vec![(job.to_string(), 0)]).unwrap_or_default(),
        };
        let seen = Seen {
            state: state.to_string(),
            by: None,
            exit_code: fields.get("ExitCode").and_then(|c| non_empty(c)),
            reason: fields.get("Reason").and_then(|r| non_empty(r)),
        };
        out.extend(tasks.into_iter().map(|t| (t, seen.clone())));
    }
    out
}

/// Runs a query command; "Invalid job id" (every job asked for is gone) reads as no rows.
fn query_command(program: &str, args: &[&str]) -> Result<String> {
    match slurm(program, args) {
        Err(e) if format!("{e}").contains("Invalid job id") => Ok(String::new()),
        other => other,
    }
}

/// What Slurm says about every task of `jobs`: live ones from squeue, ended ones from sacct, or
/// from scontrol where the cluster keeps no accounting.
pub fn query(jobs: &[String]) -> Result<HashMap<TaskId, Seen>> {
    let list = jobs.join(",");
    let mut states: HashMap<TaskId, Seen> = HashMap::new();
    let ended = match slurm("sacct", &["-n", "-P", "-X", "-j", &list, "-o", "JobID,State,ExitCode"]) {
        Ok(text) => parse_rows(&text),
        Err(_) => {
            let mut rows = Vec::new();
            for job in jobs {
                rows.extend(parse_scontrol(&query_command("scontrol", &["show", "job", "-o", job])?));
            }
            rows
        }
    };
    states.extend(ended);
    // squeue last: a live task's state wins over a record of an earlier run of it.
    states.extend(parse_rows(&query_command("squeue", &["-h", "-r", "-j", &list, "-o", "%i|%T||%r"])?));
    Ok(states)
}

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

/// `CANCELLED by alice (exit 0:15)`: a state with what Slurm said about it.
pub fn describe(state: &str, by: Option<&str>, exit_code: Option<&str>) -> String {
    let mut text = state.to_owned();
    if let Some(by) = by {
        text.push_str(&format!(" by {by}"));
    }
    if let Some(code) = exit_code.filter(|c| *c != "0:0") {
        text.push_str(&format!(" (exit {code})"));
    }
    text
}

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

/// The command line of a task: the prism binary with the global arguments, then `args`.
pub fn prism_command(settings: &SlurmSettings, global: &[String], args: &[String]) -> Result<String> {
    let binary = if settings.prism.is_empty() {
        std::env::current_exe().context("cannot find this prism binary; set [slurm] prism")?
    } else {
        PathBuf::from(&settings.prism)
    };
    let mut words = vec![shell_quote(&binary.to_string_lossy())];
    words.extend(global.iter().chain(args).map(|w| shell_quote(w)));
    Ok(words.join(" "))
}

/// What the coordinator follows a part of the job with.
pub struct Coordinator<'a> {
    pub settings: &'a SlurmSettings,
    /// The prism arguments every task needs (dataset, config).
    pub global: &'a [String],
    /// The device of the tasks on the nodes.
    pub device: &'a str,
    pub cancel: &'a AtomicBool,
    /// The command that continues the job, for the next step of every end.
    pub resume: &'a str,
}

/// Runs the teach stage of the job in `dir` as a job array of `shards` tasks and follows it until
/// every shard is complete.
pub fn teach(dir: &Path, shards: usize, c: &Coordinator<'_>, events: &mut EventSink<'_>) -> Result<bool> {
    let Coordinator { settings, global, device, cancel, resume } = *c;
    let job = dir.to_string_lossy().into_owned();
    let args: Vec<String> = ["distill", "teach", "--job", &job, "--device", device, "--shard"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    let command =
        format!("{} \"${{SLURM_ARRAY_TASK_ID}}/{shards}\"", prism_command(settings, global, &args)?);
    let output = shards::teach_dir(dir).join("shards/%a/slurm-%A_%a.out");
    let text = script(
        settings,
        &Script { name: "prism-teach", array: Some(shards), output: &output, command: &command },
    );
    let done = |k: usize| shards::is_shard_complete(dir, k);
    let log = |k: usize, job: &str| {
        shards::shard_dir(dir, k).join(format!("slurm-{job}_{k}.out")).display().to_string()
    };
    let plan: shards::Plan = read_json(&shards::teach_dir(dir).join(shards::PLAN_FILE))?;
    let progress = |tasks: &[TaskState]| -> Result<DistillEvent> {
        // The sum of what the shards' caches hold, over the whole plan.
        let mut done = 0;
        for k in 0..shards {
            done += shards::cached(dir, k)?.min(plan.shard_samples(k));
        }
        Ok(DistillEvent::new(Stage::Teach, EventKind::Progress, done, plan.samples)
            .message(format!("slurm array: {}", summarize(tasks))))
    };
    follow(
        Follow {
            dir,
            part: "teach",
            stage: Stage::Teach,
            settings,
            script: text,
            tasks: shards,
            done: &done,
            log: &log,
            progress: &progress,
            cancel,
            resume,
        },
        events,
    )
}

/// Runs the rest of the job (merge → filter → train → evaluate: `prism distill --out DIR
/// --resume`) as one Slurm job and follows it until `summary.json` is written.
pub fn rest(dir: &Path, c: &Coordinator<'_>, events: &mut EventSink<'_>) -> Result<bool> {
    let Coordinator { settings, global, device, cancel, resume } = *c;
    let job = dir.to_string_lossy().into_owned();
    let args: Vec<String> =
        ["distill", "--out", &job, "--resume", "--device", device].into_iter().map(str::to_owned).collect();
    let command = prism_command(settings, global, &args)?;
    let output = slurm_dir(dir).join("rest-%j.out");
    let text =
        script(settings, &Script { name: "prism-distill", array: None, output: &output, command: &command });
    let done = |_: usize| dir.join(super::job::SUMMARY_FILE).exists();
    let log = |_: usize, job: &str| slurm_dir(dir).join(format!("rest-{job}.out")).display().to_string();
    let progress = |tasks: &[TaskState]| -> Result<DistillEvent> {
        let log = super::events::read_log(&dir.join(super::events::EVENTS_FILE), Default::default())?;
        let latest = log.events.iter().rev().find(|e| e.stage != Stage::Teach && e.is_progress());
        let (stage, done, total) = latest.map_or((Stage::Filter, 0, 0), |e| (e.stage, e.done, e.total));
        Ok(DistillEvent::new(stage, EventKind::Progress, done, total)
            .message(format!("slurm job: {}", summarize(tasks))))
    };
    follow(
        Follow {
            dir,
            part: "rest",
            stage: Stage::Train,
            settings,
            script: text,
            tasks: 1,
            done: &done,
            log: &log,
            progress: &progress,
            cancel,
            resume,
        },
        events,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SlurmSettings {
        crate::config::Settings::load_layers(None, None).unwrap().slurm
    }

    #[test]
    fn the_script_carries_the_settings_and_the_command() {
        let mut s = settings();
        s.partition = "gpu".into();
        s.gres = "gpu:1".into();
        s.time = "02:00:00".into();
        s.options = vec!["--qos=long".into()];
        s.setup = vec!["module load cuda".into()];
        s.launcher = "apptainer exec --nv prism.sif".into();
        let text = script(
            &s,
            &Script {
                name: "prism-teach",
                array: Some(4),
                output: Path::new("/j/%a.out"),
                command: "prism x",
            },
        );
        let expected = "#!/bin/bash\n#SBATCH --job-name=prism-teach\n#SBATCH --array=0-3\n\
            #SBATCH --output=/j/%a.out\n#SBATCH --partition=gpu\n#SBATCH --gres=gpu:1\n\
            #SBATCH --time=02:00:00\n#SBATCH --cpus-per-task=4\n#SBATCH --qos=long\nset -euo pipefail\n\
            export RAYON_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"\nmodule load cuda\n\
            exec apptainer exec --nv prism.sif prism x\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn words_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("/a/b-c_d.e"), "/a/b-c_d.e");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn squeue_sacct_and_scontrol_rows_are_read() {
        let rows = parse_rows("12_0|RUNNING\n12_[2-3%1]|PENDING\n13|COMPLETED\n12_1|CANCELLED by 0\n");
        let states: Vec<(TaskId, &str)> = rows.iter().map(|(t, s)| (t.clone(), s.state.as_str())).collect();
        assert_eq!(
            states,
            [
                (("12".into(), 0), "RUNNING"),
                (("12".into(), 2), "PENDING"),
                (("12".into(), 3), "PENDING"),
                (("13".into(), 0), "COMPLETED"),
                (("12".into(), 1), "CANCELLED"),
            ]
        );
        let text = "JobId=14 ArrayJobId=12 ArrayTaskId=3 JobName=a JobState=COMPLETED Reason=None\n\
                    JobId=12 ArrayJobId=12 ArrayTaskId=4,6-7 JobState=PENDING\n\
                    JobId=20 JobName=rest JobState=FAILED\n";
        let rows = parse_scontrol(text);
        let tasks: Vec<usize> = rows.iter().map(|((_, t), _)| *t).collect();
        assert_eq!(tasks, [3, 4, 6, 7, 0]);
        assert_eq!(rows[0].0, ("12".into(), 3));
        assert_eq!(rows[0].1.state, "COMPLETED");
        assert_eq!(rows[4], (("20".into(), 0), Seen { state: "FAILED".into(), ..Seen::default() }));
    }

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

//! Where a distillation job stands, from the truth at the time of asking: the stages' and shards'
//! own files, the locks of whoever runs them (asked without waiting), and — where Slurm answers —
//! `squeue`/`sacct` (or `scontrol`) now. `slurm/state.json` is only a hint: which job ids to ask
//! about, and the states to show, marked as last seen and when, where Slurm does not answer.
//! `prism distill status` prints a [`JobStatus`] and the explorer's Jobs panel draws one; both
//! come from [`read`].
//!
//! A shard is `done` (its `complete.json`), `running`, `pending` (queued, or waiting for a live
//! local run to reach it), `cancelled` (by whom, where Slurm says), `failed` (exit code and log),
//! `lost` (Slurm has no record of its task and its files have not changed for
//! [`LOST_AFTER_POLLS`] polls), `stopped` (its process ended without finishing and nothing runs it:
//! killed, or stopped with Ctrl-C), or `not_started`. The job is `finished`, `running` (a process
//! holds `DIR/lock` or `slurm/lock`, or its Slurm job runs), or ended without finishing:
//! `failed` or `cancelled` (as its log's last event says, with the reason and next step), or
//! `stopped` (nothing holds it and its log records no end: killed).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;

mod shard;

pub use shard::{format_age, shard_state, ShardFacts, ShardState};

use super::events::{read_log, DistillEvent, EventKind, LogPosition, LogProblem, Stage, EVENTS_FILE};
use super::layout::{is_complete, LOCK_FILE, SUMMARY_FILE};
use super::resume::resume_of;
use super::shards::{self, Plan};
use super::slurm::{self, EndedRun, Seen, TaskState};
use super::spec::read_spec;
use crate::model::checkpoint::read_json;

/// A task with no Slurm record whose shard's files have not changed for this many polls is lost.
pub const LOST_AFTER_POLLS: f64 = 3.0;

/// How to ask.
#[derive(Clone, Debug)]
pub struct Options {
    /// Ask Slurm (else the states are the coordinator's, as last seen).
    pub ask_slurm: bool,
    /// `[slurm] poll_seconds`: the unit of [`LOST_AFTER_POLLS`].
    pub poll_seconds: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Finished,
    Running,
    Failed,
    Cancelled,
    Stopped,
}

impl JobState {
    pub fn name(self) -> &'static str {
        match self {
            JobState::Finished => "finished",
            JobState::Running => "running",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Stopped => "stopped",
        }
    }
}

/// A shard's Slurm task: its latest run, what Slurm says of it, and its earlier runs.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TaskStatus {
    /// `JOB_K`.
    pub id: String,
    /// Slurm's word: now, or as last seen (see [`SlurmStatus::live`]); `None` when Slurm has no
    /// record of it.
    pub seen: Option<Seen>,
    pub retries: usize,
    pub ended: Vec<EndedRun>,
    pub log: PathBuf,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ShardStatus {
    pub shard: usize,
    pub state: ShardState,
    /// Samples in its cache, and its share of the plan.
    pub done: usize,
    pub total: usize,
    pub complete: bool,
    /// Why it is in that state, in words.
    pub detail: String,
    /// Whether a process holds its lock (`None`: the file system cannot tell).
    pub locked: Option<bool>,
    /// Seconds since its files last changed.
    pub idle_s: Option<f64>,
    pub task: Option<TaskStatus>,
    /// Its latest progress event (rate, ETA).
    pub latest: Option<DistillEvent>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct StageStatus {
    pub stage: Stage,
    pub complete: bool,
    /// Progress: for a sharded teach stage the sum over the shards' caches of the plan, else the
    /// latest progress event's.
    pub done: usize,
    pub total: usize,
    /// Its latest progress event.
    pub latest: Option<DistillEvent>,
}

/// What Slurm said, and when.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SlurmStatus {
    /// Whether Slurm was asked now; else the states are as the coordinator last saw them.
    pub live: bool,
    /// When the states shown were seen (seconds since the Unix epoch).
    pub as_of: Option<f64>,
    /// Why Slurm could not be asked.
    pub error: Option<String>,
    /// Tasks per state, per part (`teach`, `rest`), e.g. `2 RUNNING, 1 CANCELLED`.
    pub summary: BTreeMap<String, String>,
    /// `slurm/state.json` as the coordinator wrote it (the hint).
    pub recorded: slurm::State,
}

/// Who holds the job.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Holders {
    /// A `prism distill --out DIR` running the stages (`DIR/lock`).
    pub runner: Option<bool>,
    /// A Slurm coordinator following the tasks (`slurm/lock`), for a job on Slurm.
    pub coordinator: Option<bool>,
}

/// The command that continues a job, as shown.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Continue {
    /// For a shell (`cd CWD && prism …`).
    pub command: String,
    /// The words, the binary that ran the job first.
    pub argv: Vec<String>,
    pub cwd: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct JobStatus {
    pub dir: PathBuf,
    pub preset: String,
    pub teacher: PathBuf,
    /// The external teacher's file the job learns from instead of `teacher` (`--teacher-outputs`).
    pub teacher_outputs: Option<super::external::TeacherOutputs>,
    pub state: JobState,
    /// Why it is in that state, in words.
    pub reason: String,
    /// What to do next, for a job that is not running or finished.
    pub next: Option<String>,
    /// The command that continues it (absent once finished).
    pub resume: Option<Continue>,
    pub holders: Holders,
    pub stages: Vec<StageStatus>,
    pub shards: Vec<ShardStatus>,
    pub slurm: Option<SlurmStatus>,
    /// The last end the logs record (a failure, give-up, cancellation), with its reason and next step.
    pub last_end: Option<DistillEvent>,
    /// The latest Slurm message (submission, resubmission, failed look).
    pub last_slurm: Option<DistillEvent>,
    /// Torn or unreadable lines in the job's logs and caches.
    pub problems: Vec<LogProblem>,
    pub summary: Option<serde_json::Value>,
    /// When this was asked (seconds since the Unix epoch).
    pub time: f64,
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn modified(path: &Path) -> Option<f64> {
    let time = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(time.duration_since(UNIX_EPOCH).ok()?.as_secs_f64())
}

/// A log's events and problems (the whole file).
fn log(path: &Path, problems: &mut Vec<LogProblem>) -> Result<Vec<DistillEvent>> {
    let log = read_log(path, LogPosition::default())?;
    problems.extend(log.problems);
    Ok(log.events)
}

/// A cache's torn last line, as a problem (the shard cuts it off when it continues).
fn torn_cache(path: &Path) -> Option<LogProblem> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return None;
    }
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    Some(LogProblem {
        file: path.display().to_string(),
        line: bytes[..complete].iter().filter(|b| **b == b'\n').count() + 1,
        kind: "torn",
        excerpt: String::from_utf8_lossy(&bytes[complete..]).chars().take(60).collect(),
        error: "no newline at the end: a writer stopped mid-line (the shard regenerates that sample)".into(),
    })
}

/// Slurm's answer about a job's tasks, and when it was given.
#[derive(Clone, Debug)]
pub struct SlurmAnswer {
    pub time: f64,
    pub result: Result<HashMap<(String, usize), Seen>, String>,
}

/// Asks Slurm about every task the job's coordinator submitted; `None` when it submitted none.
pub fn ask_slurm(dir: &Path) -> Option<SlurmAnswer> {
    let recorded = slurm::read_state(dir).ok()?;
    let mut jobs: Vec<String> = recorded
        .values()
        .flat_map(|t| t.tasks.iter().map(|task| task.job.clone()))
        .filter(|j| !j.is_empty())
        .collect();
    jobs.sort();
    jobs.dedup();
    if jobs.is_empty() {
        return None;
    }
    let result = slurm::check_installed().and_then(|_| slurm::query(&jobs)).map_err(|e| format!("{e:#}"));
    Some(SlurmAnswer { time: now(), result })
}

/// Reads where the job in `dir` stands, asking Slurm now if `options.ask_slurm`.
pub fn read(dir: &Path, options: &Options) -> Result<JobStatus> {
    let answer = if options.ask_slurm { ask_slurm(dir) } else { None };
    read_with(dir, options, answer.as_ref())
}

/// Reads where the job in `dir` stands, with `answer` as Slurm's word (one asked a moment ago, as
/// a watcher that asks Slurm less often than it reads files passes).
pub fn read_with(dir: &Path, options: &Options, answer: Option<&SlurmAnswer>) -> Result<JobStatus> {
    let time = now();
    let spec = read_spec(dir)?;
    let mut problems = Vec::new();
    let events = log(&dir.join(EVENTS_FILE), &mut problems)?;
    let slurm_dir = slurm::slurm_dir(dir);
    // With `train_on_slurm` the coordinator logs beside the job's log (which is the remote job's).
    let coordinator_events = log(&slurm_dir.join(EVENTS_FILE), &mut problems)?;
    let recorded = slurm::read_state(dir)?;
    let on_slurm = !recorded.is_empty() || slurm_dir.join("lock").exists();

    // Slurm's word.
    let empty = HashMap::new();
    let (live, seen, error) = match answer.filter(|_| options.ask_slurm) {
        Some(SlurmAnswer { result: Ok(seen), .. }) => (true, seen, None),
        Some(SlurmAnswer { result: Err(e), .. }) => (false, &empty, Some(e.clone())),
        None => (false, &empty, None),
    };
    let seen_of = |part: &str, k: usize| -> Option<&Seen> {
        let task = recorded.get(part)?.tasks.get(k)?;
        seen.get(&(task.job.clone(), k))
    };

    let holders = Holders {
        runner: shards::is_held(&dir.join(LOCK_FILE)),
        coordinator: on_slurm.then(|| shards::is_held(&slurm_dir.join("lock"))).flatten(),
    };
    let runner_alive = holders.runner == Some(true) || holders.coordinator == Some(true);

    // Shards.
    let plan: Option<Plan> = shards::read_plan(dir)?;
    let lost_after_s = LOST_AFTER_POLLS * options.poll_seconds.max(0.1);
    let mut shard_rows = Vec::new();
    let teach_tasks = recorded.get("teach").map(|t| t.tasks.as_slice()).unwrap_or_default();
    for k in 0..spec.shards.unwrap_or(0) {
        let shard_dir = shards::shard_dir(dir, k);
        let shard_events = log(&shard_dir.join(EVENTS_FILE), &mut problems)?;
        problems.extend(torn_cache(&shard_dir.join(super::teach::CACHE_FILE)));
        let complete = shards::is_shard_complete(dir, k);
        let total = plan.as_ref().map_or(0, |p| p.shard_samples(k));
        let cached = shards::cached(dir, k)?;
        let done = if total > 0 { cached.min(total) } else { cached };
        let task = teach_tasks.get(k);
        let submitted = task
            .filter(|t| !t.job.is_empty())
            .and_then(|t| recorded["teach"].submissions.iter().rev().find(|s| s.job == t.job))
            .map(|s| s.time);
        let last_change = [
            modified(&shard_dir.join(super::teach::CACHE_FILE)),
            modified(&shard_dir.join(EVENTS_FILE)),
            submitted,
        ]
        .into_iter()
        .flatten()
        .fold(None, |a: Option<f64>, t| Some(a.map_or(t, |a| a.max(t))));
        let idle_s = last_change.map(|t| (time - t).max(0.0));
        let log_path = task
            .filter(|t| !t.job.is_empty())
            .map(|t| shard_dir.join(format!("slurm-{}_{k}.out", t.job)))
            .unwrap_or_default();
        let facts = ShardFacts {
            shard: k,
            complete,
            done,
            locked: shards::is_held(&shard_dir.join("lock")),
            idle_s,
            task,
            live,
            seen: seen_of("teach", k),
            runner_alive,
            cancelled_event: shard_events.last().is_some_and(|e| e.kind == EventKind::Cancelled),
            lost_after_s,
            log: log_path.display().to_string(),
        };
        let (state, detail) = shard_state(&facts);
        let task = task.filter(|t| !t.job.is_empty()).map(|t| TaskStatus {
            id: format!("{}_{k}", t.job),
            seen: if live {
                seen_of("teach", k).cloned()
            } else {
                Some(Seen { state: t.state.clone(), ..Seen::default() })
            },
            retries: t.retries,
            ended: t.ended.clone(),
            log: log_path.clone(),
        });
        shard_rows.push(ShardStatus {
            shard: k,
            state,
            done: if complete { total.max(done) } else { done },
            total,
            complete,
            detail,
            locked: facts.locked,
            idle_s,
            task,
            latest: shard_events.iter().rev().find(|e| e.is_progress()).cloned(),
        });
    }

    // Stages.
    let all_events: Vec<&DistillEvent> = events.iter().chain(&coordinator_events).collect();
    let stages: Vec<StageStatus> = Stage::ALL
        .into_iter()
        .map(|stage| {
            let complete = is_complete(dir, stage);
            let latest =
                all_events.iter().rev().find(|e| e.stage == stage && e.is_progress()).map(|e| (*e).clone());
            let (mut done, mut total) = latest.as_ref().map_or((0, 0), |e| (e.done, e.total));
            if stage == Stage::Teach {
                if let Some(plan) = &plan {
                    // The shards' caches are the truth, whatever the latest message said.
                    (done, total) = (shard_rows.iter().map(|s| s.done).sum(), plan.samples);
                }
            }
            if complete && total == 0 {
                let finished =
                    all_events.iter().rev().find(|e| e.stage == stage && e.kind == EventKind::Finished);
                (done, total) = finished.map_or((0, 0), |e| (e.done, e.total));
            }
            StageStatus { stage, complete, done, total, latest }
        })
        .collect();

    // Slurm's summary.
    let slurm = on_slurm.then(|| {
        let mut summary = BTreeMap::new();
        for (part, tracked) in &recorded {
            let states: Vec<TaskState> = tracked
                .tasks
                .iter()
                .enumerate()
                .map(|(k, t)| {
                    let done = if part == "teach" {
                        shards::is_shard_complete(dir, k)
                    } else {
                        dir.join(SUMMARY_FILE).exists()
                    };
                    let state = if done {
                        slurm::DONE.to_owned()
                    } else if t.job.is_empty() {
                        "UNSUBMITTED".to_owned()
                    } else if live {
                        seen.get(&(t.job.clone(), k)).map_or("NO RECORD".to_owned(), |s| s.state.clone())
                    } else {
                        t.state.clone()
                    };
                    TaskState { state, ..TaskState::default() }
                })
                .collect();
            summary.insert(part.clone(), slurm::summarize(&states));
        }
        let as_of = if live {
            answer.map(|a| a.time)
        } else {
            recorded
                .values()
                .filter_map(|t| t.seen)
                .fold(None, |a: Option<f64>, t| Some(a.map_or(t, |a| a.max(t))))
                .or_else(|| modified(&slurm_dir.join(slurm::STATE_FILE)))
        };
        SlurmStatus { live, as_of, error, summary, recorded: recorded.clone() }
    });

    // The job.
    let summary: Option<serde_json::Value> = read_json(&dir.join(SUMMARY_FILE)).ok();
    let last_end =
        all_events.iter().rev().find(|e| e.is_end() && e.kind != EventKind::Finished).map(|e| (*e).clone());
    let last_slurm = all_events.iter().rev().find(|e| e.kind == EventKind::Slurm).map(|e| (*e).clone());
    let resume = resume_of(dir, &spec.dataset, on_slurm);
    let rest_active = live
        && recorded.get("rest").is_some_and(|t| {
            t.tasks.first().is_some_and(|task| {
                seen.get(&(task.job.clone(), 0)).is_some_and(|s| slurm::is_active(&s.state))
            })
        });
    let tasks_active = shard_rows.iter().filter(|s| s.state.is_active() && s.task.is_some()).count();
    // The log's last event: an end there is how the job stopped; anything else after a kill.
    let last_event = events.iter().chain(&coordinator_events).max_by(|a, b| a.time.total_cmp(&b.time));
    let (state, reason, next) = if summary.is_some() && is_complete(dir, Stage::Evaluate) {
        (JobState::Finished, "every stage is complete (summary.json)".to_owned(), None)
    } else if holders.coordinator == Some(true) {
        (JobState::Running, "a coordinator follows it (it holds slurm/lock)".to_owned(), None)
    } else if holders.runner == Some(true) {
        (JobState::Running, "a prism distill process runs its stages (it holds DIR/lock)".to_owned(), None)
    } else if rest_active {
        (JobState::Running, "its stages run as a Slurm job".to_owned(), None)
    } else {
        let resume_line = format!("continue with: {}", resume.command());
        let mut nobody = if on_slurm {
            "no coordinator holds the job (slurm/lock is free)".to_owned()
        } else {
            "no process runs the job (DIR/lock is free)".to_owned()
        };
        if tasks_active > 0 {
            nobody.push_str(&format!(
                "; {tasks_active} Slurm task(s) still queued or running, but nothing resubmits, merges or goes on"
            ));
        }
        match last_event.filter(|e| matches!(e.kind, EventKind::Failed | EventKind::Cancelled)) {
            Some(end) => {
                let state =
                    if end.kind == EventKind::Failed { JobState::Failed } else { JobState::Cancelled };
                let next = if end.next.is_empty() { resume_line } else { end.next.clone() };
                (state, format!("{}: {nobody}", end.message.trim()), Some(next))
            }
            None => (
                JobState::Stopped,
                format!("{nobody}; its log records no end (the process was killed?)"),
                Some(resume_line),
            ),
        }
    };
    Ok(JobStatus {
        dir: dir.to_path_buf(),
        preset: spec.preset,
        teacher: spec.teacher,
        teacher_outputs: spec.teacher_outputs,
        state,
        reason,
        next,
        resume: (state != JobState::Finished).then(|| Continue {
            command: resume.command(),
            argv: resume.argv.clone(),
            cwd: resume.cwd.clone(),
        }),
        holders,
        stages,
        shards: shard_rows,
        slurm,
        last_end,
        last_slurm,
        problems,
        summary,
        time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(job: &str, state: &str) -> TaskState {
        TaskState { job: job.into(), state: state.into(), ..TaskState::default() }
    }

    /// A job on Slurm whose coordinator is gone, with a log written before the `slurm` event kind
    /// and Slurm not asked: stopped, the teach line summed from the shards' caches (never the old
    /// log's 0/0), the states as last seen, and the command to continue.
    #[test]
    fn an_older_job_reads_as_stopped_with_the_teach_line_summed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut spec = super::super::spec::JobSpec::preset("quick", &crate::config::project_root()).unwrap();
        spec.shards = Some(2);
        spec.dataset = "data/demo".into();
        super::super::spec::prepare(dir, &spec, false).unwrap();
        shards::write_plan(dir, &Plan { shards: 2, batch_size: 2, samples: 8, fingerprint: "f".into() })
            .unwrap();
        for (k, n) in [(0, 3), (1, 2)] {
            let row = r#"{"user":"u","item":"i","text":"t","ms":1.0,"new_tokens":1}"#;
            std::fs::write(shards::shard_dir(dir, k).join("cache.jsonl"), format!("{row}\n").repeat(n))
                .unwrap();
        }
        let old = [
            r#"{"time":1.0,"stage":"teach","kind":"progress","done":4,"total":8,"message":"slurm array: 2 RUNNING"}"#,
            r#"{"time":2.0,"stage":"teach","kind":"progress","done":0,"total":0,"message":"slurm: submitted teach task(s) [1] as job 13"}"#,
        ];
        std::fs::write(dir.join(EVENTS_FILE), old.join("\n") + "\n").unwrap();
        let mut recorded = slurm::State::new();
        let tracked = recorded.entry("teach".into()).or_default();
        tracked.tasks = vec![task("12", "RUNNING"), task("13", "PENDING")];
        crate::durable::write_json(&slurm::slurm_dir(dir).join(slurm::STATE_FILE), &recorded).unwrap();

        let status = read(dir, &Options { ask_slurm: false, poll_seconds: 1.0 }).unwrap();
        assert_eq!(status.state, JobState::Stopped);
        assert!(
            status.reason.starts_with("no coordinator holds the job (slurm/lock is free)"),
            "{}",
            status.reason
        );
        assert!(status.reason.contains("2 Slurm task(s) still queued or running"), "{}", status.reason);
        let next = status.next.unwrap();
        assert!(next.starts_with("continue with: prism --dataset data/demo distill --out "), "{next}");
        assert!(next.ends_with(" --resume --backend slurm"), "{next}");
        let teach = &status.stages[0];
        assert_eq!((teach.done, teach.total), (5, 8));
        let states: Vec<(ShardState, usize, usize)> =
            status.shards.iter().map(|s| (s.state, s.done, s.total)).collect();
        assert_eq!(states, [(ShardState::Running, 3, 4), (ShardState::Pending, 2, 4)]);
        assert!(status.shards[0].detail.ends_with("(as last seen)"), "{}", status.shards[0].detail);
        let slurm = status.slurm.unwrap();
        assert!(!slurm.live && slurm.as_of.is_some());
        assert_eq!(status.last_slurm.unwrap().kind, EventKind::Slurm);
        assert!(status.problems.is_empty());
    }
}

//! A teach shard's state, decided from what is known of it ([`ShardFacts`]: its files, its lock,
//! the Slurm task the coordinator recorded and what Slurm says of it now) by [`shard_state`]: a
//! pure function, so every case is tested without files or Slurm.

use crate::distill::slurm::{self, Seen, TaskState};

/// `12s`, `4m05s`, `2h10m`.
pub fn format_age(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardState {
    Done,
    Running,
    Pending,
    Cancelled,
    Failed,
    Lost,
    Stopped,
    NotStarted,
}

impl ShardState {
    pub fn name(self) -> &'static str {
        match self {
            ShardState::Done => "done",
            ShardState::Running => "running",
            ShardState::Pending => "pending",
            ShardState::Cancelled => "cancelled",
            ShardState::Failed => "failed",
            ShardState::Lost => "lost",
            ShardState::Stopped => "stopped",
            ShardState::NotStarted => "not started",
        }
    }

    /// Whether something will still run it without anyone's help.
    pub fn is_active(self) -> bool {
        matches!(self, ShardState::Running | ShardState::Pending)
    }
}

/// What is known of a shard when its state is decided.
#[derive(Clone, Debug, Default)]
pub struct ShardFacts<'a> {
    pub shard: usize,
    pub complete: bool,
    pub done: usize,
    pub locked: Option<bool>,
    pub idle_s: Option<f64>,
    /// The shard's Slurm task as the coordinator recorded it.
    pub task: Option<&'a TaskState>,
    /// Whether `seen` is Slurm's answer now (else the recorded state stands in).
    pub live: bool,
    /// Slurm's answer now about the task's latest run (`None`: no record).
    pub seen: Option<&'a Seen>,
    /// A live local run of the job will reach it.
    pub runner_alive: bool,
    /// Its last event was `Cancelled` (its process stopped cleanly, e.g. Ctrl-C).
    pub cancelled_event: bool,
    pub lost_after_s: f64,
    pub log: String,
}

/// Slurm states in which a task runs (as opposed to waiting).
fn is_running(state: &str) -> bool {
    matches!(state, "RUNNING" | "COMPLETING" | "CONFIGURING" | "STAGE_OUT" | "SIGNALING" | "RESIZING")
}

/// Decides a shard's state from what is known of it.
pub fn shard_state(f: &ShardFacts<'_>) -> (ShardState, String) {
    let locked = f.locked == Some(true);
    if f.complete {
        return (ShardState::Done, "complete.json is written".into());
    }
    let task = f.task.filter(|t| !t.job.is_empty());
    if let Some(task) = task {
        // Slurm's word now, or the coordinator's record of it as last seen.
        let recorded;
        let seen = if f.live {
            f.seen
        } else {
            recorded = Seen { state: task.state.clone(), ..Seen::default() };
            Some(&recorded).filter(|s| !s.state.is_empty())
        };
        let as_last_seen = if f.live { "" } else { " (as last seen)" };
        match seen.map(|s| s.state.as_str()) {
            Some(state) if is_running(state) => {
                let ending = if state == "COMPLETING" { ": its task is ending" } else { "" };
                return (ShardState::Running, format!("Slurm says {state}{as_last_seen}{ending}"));
            }
            Some("SUBMITTED") => return (ShardState::Pending, format!("submitted{as_last_seen}")),
            Some(state) if slurm::is_active(state) => {
                let why =
                    seen.and_then(|s| s.reason.as_deref()).map(|r| format!(", {r}")).unwrap_or_default();
                return (ShardState::Pending, format!("Slurm says {state}{why}{as_last_seen}"));
            }
            Some("CANCELLED") => {
                let seen = seen.expect("matched");
                let by = seen.by.as_deref().map_or(String::new(), |b| format!(" by {b}"));
                let exiting = if locked { "; its process is still exiting" } else { "" };
                return (ShardState::Cancelled, format!("Slurm says CANCELLED{by}{as_last_seen}{exiting}"));
            }
            Some(state) if state != slurm::DONE => {
                let seen = seen.expect("matched");
                let text = slurm::describe(state, seen.by.as_deref(), seen.exit_code.as_deref());
                let what = if state == "COMPLETED" { " without its complete.json" } else { "" };
                return (ShardState::Failed, format!("Slurm says {text}{what}{as_last_seen}; log {}", f.log));
            }
            _ => {}
        }
        if locked {
            return (ShardState::Running, "a process holds its lock".into());
        }
        if f.live && f.seen.is_none() {
            let idle = f.idle_s.unwrap_or(f64::INFINITY);
            return if idle >= f.lost_after_s {
                let age = if idle.is_finite() { format!(" for {}", format_age(idle)) } else { String::new() };
                (
                    ShardState::Lost,
                    format!("Slurm has no record of {}_{} and no progress{age}", task.job, f.shard),
                )
            } else {
                (ShardState::Pending, format!("Slurm has no record of {}_{} yet", task.job, f.shard))
            };
        }
    }
    if locked {
        return (ShardState::Running, "a process holds its lock".into());
    }
    if f.runner_alive {
        return (ShardState::Pending, "the running job will reach it".into());
    }
    if f.cancelled_event {
        return (ShardState::Cancelled, "its process stopped it (Ctrl-C or cancel); nothing runs it".into());
    }
    if f.done > 0 || f.idle_s.is_some() {
        return (
            ShardState::Stopped,
            "its process ended without finishing (killed?); nothing runs it".into(),
        );
    }
    (ShardState::NotStarted, "nothing runs it".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(job: &str, state: &str) -> TaskState {
        TaskState { job: job.into(), state: state.into(), ..TaskState::default() }
    }

    fn seen(state: &str) -> Seen {
        Seen { state: state.into(), ..Seen::default() }
    }

    fn facts<'a>(task: Option<&'a TaskState>, seen: Option<&'a Seen>) -> ShardFacts<'a> {
        ShardFacts {
            shard: 1,
            task,
            seen,
            live: true,
            lost_after_s: 3.0,
            log: "/j/slurm-12_1.out".into(),
            ..ShardFacts::default()
        }
    }

    #[test]
    fn slurm_now_decides_over_the_record() {
        let recorded = task("12", "RUNNING");
        let cancelled = Seen { by: Some("alice".into()), ..seen("CANCELLED") };
        let (state, detail) = shard_state(&facts(Some(&recorded), Some(&cancelled)));
        assert_eq!((state, detail.as_str()), (ShardState::Cancelled, "Slurm says CANCELLED by alice"));
        // Its process may still hold the lock while it exits: Slurm's word stands.
        let exiting = ShardFacts { locked: Some(true), ..facts(Some(&recorded), Some(&cancelled)) };
        assert_eq!(shard_state(&exiting).0, ShardState::Cancelled);
        let failed = Seen { exit_code: Some("1:0".into()), ..seen("FAILED") };
        let (state, detail) = shard_state(&facts(Some(&recorded), Some(&failed)));
        assert_eq!(state, ShardState::Failed);
        assert_eq!(detail, "Slurm says FAILED (exit 1:0); log /j/slurm-12_1.out");
        let pending = Seen { reason: Some("Resources".into()), ..seen("PENDING") };
        let (state, detail) = shard_state(&facts(Some(&recorded), Some(&pending)));
        assert_eq!((state, detail.as_str()), (ShardState::Pending, "Slurm says PENDING, Resources"));
        assert_eq!(shard_state(&facts(Some(&recorded), Some(&seen("RUNNING")))).0, ShardState::Running);
        let completed = shard_state(&facts(Some(&recorded), Some(&seen("COMPLETED"))));
        assert_eq!(completed.0, ShardState::Failed, "COMPLETED without complete.json is no success");
        let done = ShardFacts { complete: true, ..facts(Some(&recorded), Some(&failed)) };
        assert_eq!(shard_state(&done).0, ShardState::Done, "complete.json is the only proof of done");
    }

    #[test]
    fn a_task_without_a_record_is_lost_only_after_some_polls_without_progress() {
        let recorded = task("12", "PENDING");
        let fresh = ShardFacts { idle_s: Some(1.0), ..facts(Some(&recorded), None) };
        assert_eq!(shard_state(&fresh).0, ShardState::Pending);
        let stale = ShardFacts { idle_s: Some(10.0), ..facts(Some(&recorded), None) };
        let (state, detail) = shard_state(&stale);
        assert_eq!(state, ShardState::Lost);
        assert!(detail.contains("no record of 12_1 and no progress for 10s"), "{detail}");
    }

    #[test]
    fn without_slurm_the_recorded_states_stand_marked_as_last_seen() {
        let recorded = task("12", "RUNNING");
        let offline = ShardFacts { live: false, ..facts(Some(&recorded), None) };
        let (state, detail) = shard_state(&offline);
        assert_eq!((state, detail.as_str()), (ShardState::Running, "Slurm says RUNNING (as last seen)"));
    }

    #[test]
    fn local_shards_follow_their_locks_and_logs() {
        let base = ShardFacts { live: false, lost_after_s: 3.0, ..ShardFacts::default() };
        assert_eq!(shard_state(&base).0, ShardState::NotStarted);
        assert_eq!(shard_state(&ShardFacts { locked: Some(true), ..base.clone() }).0, ShardState::Running);
        assert_eq!(shard_state(&ShardFacts { runner_alive: true, ..base.clone() }).0, ShardState::Pending);
        let killed = ShardFacts { done: 4, idle_s: Some(2.0), ..base.clone() };
        assert_eq!(shard_state(&killed).0, ShardState::Stopped);
        let cancelled = ShardFacts { cancelled_event: true, done: 4, ..base };
        assert_eq!(shard_state(&cancelled).0, ShardState::Cancelled);
    }
}

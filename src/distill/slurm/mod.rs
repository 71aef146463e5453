//! The Slurm backend: the teach stage as a job array, one task per shard
//! (`prism distill teach --job DIR --shard $SLURM_ARRAY_TASK_ID/N`), and optionally the rest of
//! the job as one more Slurm job. Slurm does the scheduling; `commands` writes the sbatch scripts
//! from `[slurm]`, submits them with `sbatch` and reads what `squeue` (live tasks) and `sacct`
//! (ended ones; without accounting, `scontrol show job`) say; `follow` follows the tasks and
//! resubmits the shards whose task ended without finishing (failed, preempted, cancelled, timed
//! out, node failure, or gone from Slurm's memory) up to `max_retries` times — shards are
//! idempotent. A shard counts as done only by its `complete.json` on the shared job directory,
//! never by Slurm's word alone. This module says what the teach array and the rest run.
//!
//! Files: `DIR/slurm/{teach,rest}.sbatch`, `DIR/slurm/state.json` (the submissions and each task's
//! last known state, so a restarted `prism distill --resume` follows the same tasks instead of
//! submitting again), the array's logs in `teach/shards/K/slurm-JOB_K.out`, the rest's in
//! `slurm/rest-JOB.out`.

mod commands;
mod follow;

pub use commands::{
    check_installed, describe, is_active, parse_rows, parse_scontrol, prism_command, query, script,
    shell_quote, submit, Script, Seen,
};
pub use follow::{
    follow, next, read_state, slurm_dir, summarize, EndedRun, Follow, Next, Recorded, State, Submission,
    TaskState, Tracked, DONE, STATE_FILE,
};

use std::path::Path;
use std::sync::atomic::AtomicBool;

use anyhow::Result;

use crate::config::SlurmSettings;
use crate::distill::events::{read_log, DistillEvent, EventKind, EventSink, Stage, EVENTS_FILE};
use crate::distill::layout::SUMMARY_FILE;
use crate::distill::shards;
use crate::model::checkpoint::read_json;

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
    let done = |_: usize| dir.join(SUMMARY_FILE).exists();
    let log = |_: usize, job: &str| slurm_dir(dir).join(format!("rest-{job}.out")).display().to_string();
    let progress = |tasks: &[TaskState]| -> Result<DistillEvent> {
        let log = read_log(&dir.join(EVENTS_FILE), Default::default())?;
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

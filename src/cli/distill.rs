//! `prism distill [--preset quick|paper|NAME] [--teacher DIR] [--student DIR] [--device D] --out DIR
//! [--resume] [--backend local|slurm] [--shards N]` runs the teach → filter → train → evaluate job
//! with progress on stderr and a JSON summary on stdout at the end; Ctrl-C stops it cleanly
//! (resumable). With `--shards N` the teach stage runs in N shards — one after another here, or as
//! a Slurm job array with `--backend slurm`. `prism distill teach --job DIR --shard K/N` runs one
//! shard (what each array task runs). `prism distill status DIR` shows where a job and its shards
//! stand, from its files alone.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

use super::{print_json, Context};
use crate::config::project_root;
use crate::data;
use crate::distill::events::{EventKind, EventSink, EVENTS_FILE};
use crate::distill::job::{self, is_complete, read_spec};
use crate::distill::shards::{self, ShardJob};
use crate::distill::slurm;
use crate::distill::teach::Shard;
use crate::distill::{DistillEvent, Job, JobSpec, Stage};
use crate::durable::read_json_lines;
use crate::explain::Prompts;
use crate::model::checkpoint::read_json;
use crate::model::device::parse_device;
use crate::model::WeightDtype;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DistillArgs {
    #[command(subcommand)]
    pub command: Option<DistillCommand>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum DistillCommand {
    /// Where a job stands: stages done, the latest progress of each, its shards, and the outcome.
    Status { dir: PathBuf },
    /// Run one shard of a sharded job's teach stage (what each Slurm array task runs).
    Teach(TeachArgs),
}

#[derive(Debug, Args)]
pub struct TeachArgs {
    /// The job directory (made by `prism distill --shards N`).
    #[arg(long, value_name = "DIR")]
    pub job: PathBuf,
    /// Which shard: K/N, 0 <= K < N.
    #[arg(long, value_name = "K/N")]
    pub shard: String,
    /// "cpu" or "cuda:N"; default from the configuration.
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<String>,
}

/// Where the teach stage's shards run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// In this process.
    Local,
    /// As a Slurm job array (sbatch, squeue, sacct); see docs/CLUSTER.md.
    Slurm,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// `quick` (minutes on 2 CPU cores), `paper` (the paper's settings, for a GPU), a name under
    /// configs/distill/, or a .toml file.
    #[arg(long, default_value = "quick")]
    pub preset: String,
    /// Teacher checkpoint (T5 family); default: the preset's (the embedded Oracle).
    #[arg(long, value_name = "DIR")]
    pub teacher: Option<PathBuf>,
    /// The teacher's weight precision in the teach stage: f32, bf16, f16, q8 or q4.
    #[arg(long, value_name = "DTYPE", value_parser = WeightDtype::parse)]
    pub teacher_dtype: Option<WeightDtype>,
    /// Start the student from this checkpoint (BART family) instead of the preset's fresh model.
    #[arg(long, value_name = "DIR")]
    pub student: Option<PathBuf>,
    /// "cpu" or "cuda:N"; default from the configuration.
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<String>,
    /// The job directory.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue the job in --out where it stopped (its saved settings are used).
    #[arg(long)]
    pub resume: bool,
    /// Keep every teacher explanation (the filter still reports what it would drop).
    #[arg(long)]
    pub no_filter: bool,
    /// Where the teach stage runs: here, or as a Slurm job array ([slurm] in the config).
    #[arg(long, value_enum, default_value = "local")]
    pub backend: Backend,
    /// Run the teach stage in N shards (the Slurm array's size; default 1 with --backend slurm).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub shards: Option<u64>,
}

pub fn run(ctx: &Context, args: DistillArgs) -> Result<()> {
    match args.command {
        Some(DistillCommand::Status { dir }) => status(ctx, &dir),
        Some(DistillCommand::Teach(args)) => teach_shard(ctx, args),
        None => start(ctx, args.run),
    }
}

fn start(ctx: &Context, args: RunArgs) -> Result<()> {
    let Some(out) = args.out else { bail!("--out DIR is required: the job directory") };
    if args.backend == Backend::Slurm {
        slurm::check_installed()?;
    }
    let mut spec = JobSpec::preset(&args.preset, &project_root())?;
    if let Some(teacher) = args.teacher {
        spec.teacher = teacher;
    }
    if let Some(dtype) = args.teacher_dtype {
        spec.teacher_dtype = dtype;
    }
    spec.student_init = args.student;
    spec.filter.enabled &= !args.no_filter;
    spec.dataset = ctx.settings.dataset.path.clone();
    let shards = args.shards.map(|n| n as usize).or((args.backend == Backend::Slurm).then_some(1));
    spec.shards = shards;
    let spec = job::prepare(&out, &spec, args.resume)?;
    if args.shards.is_some() && spec.shards != shards {
        bail!(
            "the job in {} teaches in {} shards; --shards cannot change it",
            out.display(),
            spec.shards.map_or("no".to_owned(), |n| n.to_string())
        );
    }
    if spec.dataset != ctx.settings.dataset.path {
        bail!(
            "the job in {} was made on dataset {:?}, not {:?}",
            out.display(),
            spec.dataset,
            ctx.settings.dataset.path
        );
    }
    let device = parse_device(&device_name(ctx, args.device.as_deref()))?;
    let dataset = data::open(&ctx.settings.dataset)?;
    let prompts = Prompts::load(&ctx.settings.prompts)?;
    let terminal = std::io::stderr().is_terminal();
    let mut show = |event: &DistillEvent| print_event(event, terminal);
    if args.backend == Backend::Slurm {
        match on_slurm(ctx, &out, &spec, &dataset, &device_name(ctx, args.device.as_deref()), &mut show)? {
            SlurmOutcome::Local => {}
            SlurmOutcome::Cancelled => {
                eprintln!(
                    "stopped following; the Slurm jobs go on. Follow them again with: prism distill --out {} \
                     --resume --backend slurm",
                    out.display()
                );
                bail!("cancelled");
            }
            SlurmOutcome::Finished(summary) => return print_json(&summary),
        }
    }
    let summary = job::run(Job {
        dir: &out,
        spec: &spec,
        dataset: &dataset,
        prompts: &prompts,
        history_len: ctx.settings.dataset.history_len,
        device: &device,
        on_event: &mut show,
        cancel: super::interrupt_flag(),
    })?;
    if terminal {
        eprintln!();
    }
    if summary.cancelled {
        eprintln!("stopped; continue with: prism distill --out {} --resume", out.display());
    }
    if ctx.json || !summary.cancelled {
        print_json(&summary)?;
    }
    if summary.cancelled {
        bail!("cancelled");
    }
    Ok(())
}

fn device_name(ctx: &Context, device: Option<&str>) -> String {
    device.unwrap_or(&ctx.settings.models.device).to_owned()
}

/// How far `--backend slurm` took the job.
enum SlurmOutcome {
    /// The teach stage is done; the rest runs in this process.
    Local,
    /// The rest ran as a Slurm job too: its summary.
    Finished(serde_json::Value),
    Cancelled,
}

/// The Slurm part of a job: the teach stage as a job array (unless complete), then, with
/// `[slurm] train_on_slurm`, the rest as one more job.
fn on_slurm(
    ctx: &Context,
    out: &Path,
    spec: &JobSpec,
    dataset: &crate::data::Dataset,
    device: &str,
    show: &mut dyn FnMut(&DistillEvent),
) -> Result<SlurmOutcome> {
    let Some(count) = spec.shards else {
        bail!(
            "the job in {} teaches in one piece; the Slurm backend needs a job made with --shards N",
            out.display()
        )
    };
    let dir = std::path::absolute(out)?;
    let _lock =
        shards::exclusive(&slurm::slurm_dir(&dir).join("lock"), &format!("following {}", dir.display()))?;
    let settings = &ctx.settings.slurm;
    let global = task_arguments(ctx, spec)?;
    let cancel = super::interrupt_flag();
    if !is_complete(&dir, Stage::Teach) {
        let mut events = EventSink::open(&dir, show)?;
        shards::prepare(&dir, spec, dataset, ctx.settings.dataset.history_len)?;
        if !slurm::teach(&dir, count, settings, &global, device, cancel, &mut events)? {
            return Ok(SlurmOutcome::Cancelled);
        }
    }
    if !settings.train_on_slurm {
        return Ok(SlurmOutcome::Local);
    }
    // The job's own events.jsonl is the remote process's now: this one logs beside it.
    let mut events = EventSink::open(&slurm::slurm_dir(&dir), show)?;
    if !slurm::rest(&dir, settings, &global, device, cancel, &mut events)? {
        return Ok(SlurmOutcome::Cancelled);
    }
    Ok(SlurmOutcome::Finished(read_json(&dir.join(job::SUMMARY_FILE))?))
}

/// The global arguments a task on another node needs to see this job's dataset and settings.
fn task_arguments(ctx: &Context, spec: &JobSpec) -> Result<Vec<String>> {
    let mut args = vec![
        "--dataset".to_owned(),
        spec.dataset.clone(),
        "--format".to_owned(),
        ctx.settings.dataset.format.clone(),
    ];
    if ctx.settings.dataset.lenient {
        args.push("--lenient".into());
    }
    if let Some(config) = &ctx.global.config {
        args.push("--config".into());
        args.push(std::path::absolute(config)?.to_string_lossy().into_owned());
    }
    Ok(args)
}

/// `prism distill teach --job DIR --shard K/N`.
fn teach_shard(ctx: &Context, args: TeachArgs) -> Result<()> {
    let shard = Shard::parse(&args.shard)?;
    let spec = read_spec(&args.job)?;
    if spec.dataset != ctx.settings.dataset.path {
        bail!(
            "the job in {} was made on dataset {:?}, not {:?}",
            args.job.display(),
            spec.dataset,
            ctx.settings.dataset.path
        );
    }
    let device = parse_device(&device_name(ctx, args.device.as_deref()))?;
    let dataset = data::open(&ctx.settings.dataset)?;
    let prompts = Prompts::load(&ctx.settings.prompts)?;
    let mut show = |event: &DistillEvent| print_event(event, false);
    let complete = shards::run_shard(ShardJob {
        dir: &args.job,
        shard,
        dataset: &dataset,
        prompts: &prompts,
        history_len: ctx.settings.dataset.history_len,
        device: &device,
        on_event: &mut show,
        cancel: super::interrupt_flag(),
    })?;
    if ctx.json {
        print_json(&serde_json::json!({"job": args.job, "shard": shard, "complete": complete}))?;
    }
    if !complete {
        bail!("shard {shard} stopped; run the same command again to continue it");
    }
    Ok(())
}

/// One line per event; on a terminal, progress lines overwrite each other.
fn print_event(event: &DistillEvent, terminal: bool) {
    let mut line = format!("{:<8} {:>6}/{:<6}", event.stage.name(), event.done, event.total);
    if let Some(shard) = event.shard {
        line.push_str(&format!(" shard {shard}"));
    }
    if let Some(loss) = event.loss {
        line.push_str(&format!(" loss {loss:.3}"));
    }
    if let Some(rate) = event.samples_per_s {
        line.push_str(&format!(" {rate:.1}/s"));
    }
    if let Some(eta) = event.eta_s {
        line.push_str(&format!(" eta {}", format_duration(eta)));
    }
    if !event.message.is_empty() {
        line.push_str(&format!(" {}", event.message));
    }
    match (&event.kind, terminal) {
        (EventKind::Progress, true) if event.message.is_empty() => eprint!("\r{line:<100}"),
        (EventKind::Progress, false)
            if event.stage == Stage::Train
                && event.done % 10 != 0
                && event.done != event.total
                && event.message.is_empty() => {}
        (kind, true) => eprintln!("\r{line:<100} [{kind:?}]"),
        (kind, false) => eprintln!("{line} [{kind:?}]"),
    }
}

/// `shard 2: 40/100 eta 3m10s, slurm 812_2 RUNNING (1 retry)`.
fn shard_line(shard: &shards::ShardStatus, task: Option<&slurm::TaskState>) -> String {
    let mut line = format!("shard {}: ", shard.shard);
    match (&shard.latest, shard.complete) {
        (Some(e), true) => line.push_str(&format!("done {}/{}", e.done, e.total)),
        (Some(e), false) => line.push_str(&format!(
            "{:?} {}/{}{}",
            e.kind,
            e.done,
            e.total,
            e.eta_s.map(|t| format!(" eta {}", format_duration(t))).unwrap_or_default()
        )),
        (None, _) => line.push_str("not started"),
    }
    if let Some(task) = task.filter(|t| !t.job.is_empty()) {
        line.push_str(&format!(", slurm {}_{} {}", task.job, shard.shard, task.state));
        if task.retries > 0 {
            line.push_str(&format!(" ({} retries)", task.retries));
        }
    }
    line
}

fn format_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

#[derive(serde::Serialize)]
struct StageStatus {
    stage: Stage,
    complete: bool,
    latest: Option<DistillEvent>,
}

fn status(ctx: &Context, dir: &Path) -> Result<()> {
    let spec = read_spec(dir)?;
    let events: Vec<DistillEvent> = read_json_lines(&dir.join(EVENTS_FILE))?;
    let stages: Vec<StageStatus> = Stage::ALL
        .into_iter()
        .map(|stage| StageStatus {
            stage,
            complete: is_complete(dir, stage),
            latest: events.iter().rev().find(|e| e.stage == stage).cloned(),
        })
        .collect();
    let summary: Option<serde_json::Value> = read_json(&dir.join(job::SUMMARY_FILE)).ok();
    let shards = shards::status(dir, spec.shards)?;
    let slurm = slurm::read_state(dir)?;
    if ctx.json {
        return print_json(&serde_json::json!({
            "dir": dir,
            "preset": spec.preset,
            "stages": stages,
            "shards": shards,
            "slurm": slurm,
            "summary": summary,
        }));
    }
    println!("job {} (preset {}, teacher {})", dir.display(), spec.preset, spec.teacher.display());
    for s in &stages {
        let state = if s.complete {
            "done".to_owned()
        } else {
            match &s.latest {
                Some(e) => format!(
                    "{:?} {}/{}{}",
                    e.kind,
                    e.done,
                    e.total,
                    e.eta_s.map(|t| format!(" eta {}", format_duration(t))).unwrap_or_default()
                ),
                None => "not started".to_owned(),
            }
        };
        println!("  {:<9} {state}", s.stage.name());
        if s.stage == Stage::Teach && !s.complete {
            let tasks = slurm.get("teach").map(|t| t.tasks.as_slice()).unwrap_or_default();
            for shard in &shards {
                println!("    {}", shard_line(shard, tasks.get(shard.shard)));
            }
        }
    }
    for (part, tracked) in &slurm {
        let jobs: Vec<&str> = tracked.submissions.iter().map(|s| s.job.as_str()).collect();
        println!("  slurm {part}: {} (jobs {})", slurm::summarize(&tracked.tasks), jobs.join(", "));
    }
    if let Some(e) = summary.as_ref().and_then(|s| s.get("evaluation")).filter(|e| !e.is_null()) {
        println!(
            "  speed-up {:.2}x, memory ratio {:.2}x",
            e["speedup"].as_f64().unwrap_or(0.0),
            e["memory_ratio"].as_f64().unwrap_or(0.0)
        );
    }
    Ok(())
}

//! `prism distill [--preset quick|paper|NAME] [--teacher DIR] [--student DIR] [--device D] --out DIR
//! [--resume]` runs the teach → filter → train → evaluate job with progress on stderr and a JSON
//! summary on stdout at the end; Ctrl-C stops it cleanly (resumable). `prism distill status DIR`
//! shows where a job stands, from its files alone.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

use super::{print_json, Context};
use crate::config::project_root;
use crate::data;
use crate::distill::events::{EventKind, EVENTS_FILE};
use crate::distill::job::{self, is_complete, read_spec};
use crate::distill::{DistillEvent, Job, JobSpec, Stage};
use crate::durable::read_json_lines;
use crate::explain::Prompts;
use crate::model::device::parse_device;

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
    /// Where a job stands: stages done, the latest progress of each, and the outcome.
    Status { dir: PathBuf },
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
}

pub fn run(ctx: &Context, args: DistillArgs) -> Result<()> {
    match args.command {
        Some(DistillCommand::Status { dir }) => status(ctx, &dir),
        None => start(ctx, args.run),
    }
}

fn start(ctx: &Context, args: RunArgs) -> Result<()> {
    let Some(out) = args.out else { bail!("--out DIR is required: the job directory") };
    let mut spec = JobSpec::preset(&args.preset, &project_root())?;
    if let Some(teacher) = args.teacher {
        spec.teacher = teacher;
    }
    spec.student_init = args.student;
    spec.filter.enabled &= !args.no_filter;
    spec.dataset = ctx.settings.dataset.path.clone();
    let spec = job::prepare(&out, &spec, args.resume)?;
    if spec.dataset != ctx.settings.dataset.path {
        bail!(
            "the job in {} was made on dataset {:?}, not {:?}",
            out.display(),
            spec.dataset,
            ctx.settings.dataset.path
        );
    }
    let device = parse_device(args.device.as_deref().unwrap_or(&ctx.settings.models.device))?;
    let dataset = data::open(&ctx.settings.dataset)?;
    let prompts = Prompts::load(&ctx.settings.prompts)?;
    let terminal = std::io::stderr().is_terminal();
    let mut show = |event: &DistillEvent| print_event(event, terminal);
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

/// One line per event; on a terminal, progress lines overwrite each other.
fn print_event(event: &DistillEvent, terminal: bool) {
    let mut line = format!("{:<8} {:>6}/{:<6}", event.stage.name(), event.done, event.total);
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
    let summary: Option<serde_json::Value> =
        crate::model::checkpoint::read_json(&dir.join(job::SUMMARY_FILE)).ok();
    if ctx.json {
        return print_json(
            &serde_json::json!({"dir": dir, "preset": spec.preset, "stages": stages, "summary": summary}),
        );
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

//! `prism distill [--preset quick|paper|NAME] [--teacher DIR] [--student DIR] [--device D] --out DIR
//! [--resume] [--backend local|slurm] [--shards N]` runs the teach → filter → train → evaluate job
//! with progress on stderr and a JSON summary on stdout at the end; Ctrl-C stops it cleanly
//! (resumable). With `--shards N` the teach stage runs in N shards — one after another here, or as
//! a Slurm job array with `--backend slurm`. `prism distill teach --job DIR --shard K/N` runs one
//! shard (what each array task runs). `prism distill status DIR` shows where a job and its shards
//! stand, from their files, the locks of whoever runs them and Slurm at the time of asking
//! (`distill::status`). `--teacher-outputs F.jsonl` replaces the teach stage with an external
//! teacher's explanations (see [`crate::distill::external`]).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use indicatif::ProgressBar;

use super::{print_json, Context};
use crate::config::project_root;
use crate::data::{self, Dataset};
use crate::distill::batches::Shard;
use crate::distill::events::{EventKind, EventSink};
use crate::distill::external::{self, TeacherOutputs};
use crate::distill::job;
use crate::distill::layout::{is_complete, SUMMARY_FILE};
use crate::distill::resume::{self, Resume};
use crate::distill::shards;
use crate::distill::slurm;
use crate::distill::spec::{self, read_spec};
use crate::distill::status::{self, JobStatus};
use crate::distill::{DistillEvent, JobContext, JobSpec, Stage};
use crate::durable;
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
    /// Draw the job's training and validation loss curves (from `train/last/trainer_state.json`;
    /// DIR may also be a `prism train --out` directory) to an SVG file.
    Plot {
        dir: PathBuf,
        #[arg(long, value_name = "F.svg")]
        out: PathBuf,
    },
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
    /// Teacher checkpoint (T5 family), a directory or a Hugging Face id in the local cache;
    /// default: the preset's (the embedded Oracle).
    #[arg(long, value_name = "DIR|ID")]
    pub teacher: Option<PathBuf>,
    /// Learn from these explanations instead of running a teacher: `{"user","item","text"}` rows
    /// from any engine, for the preset's training samples (and optionally test items, which
    /// become the teacher's side of the evaluation); see docs/EXTERNAL_TEACHER.md
    #[arg(long, value_name = "F.jsonl", conflicts_with_all = ["teacher", "shards"])]
    pub teacher_outputs: Option<PathBuf>,
    /// The teacher's weight precision in the teach stage: f32, bf16, f16, q8 or q4.
    #[arg(long, value_name = "DTYPE", value_parser = WeightDtype::parse)]
    pub teacher_dtype: Option<WeightDtype>,
    /// Start the student from this checkpoint (BART family; a directory or a Hugging Face id in
    /// the local cache) instead of the preset's fresh model.
    #[arg(long, value_name = "DIR|ID")]
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
        Some(DistillCommand::Plot { dir, out }) => plot(&dir, &out),
        None => start(ctx, args.run),
    }
}

fn start(ctx: &Context, args: RunArgs) -> Result<()> {
    let Some(out) = args.out else { bail!("--out DIR is required: the job directory") };
    if args.backend == Backend::Slurm {
        if args.teacher_outputs.is_some() {
            bail!("--teacher-outputs replaces the teach stage, the part --backend slurm runs on the cluster; use the local backend");
        }
        slurm::check_installed()?;
    }
    let mut spec = JobSpec::preset(&args.preset, &project_root())?;
    if let Some(teacher) = args.teacher {
        spec.teacher = teacher;
    }
    let outputs = args.teacher_outputs.as_deref().map(TeacherOutputs::identify).transpose()?;
    spec.teacher_outputs = outputs.clone();
    if let Some(dtype) = args.teacher_dtype {
        spec.teacher_dtype = dtype;
    }
    spec.student_init = args.student;
    spec.filter.enabled &= !args.no_filter;
    spec.dataset = ctx.settings.dataset.path.clone();
    let shards = args.shards.map(|n| n as usize).or((args.backend == Backend::Slurm).then_some(1));
    spec.shards = shards;
    let loaded = Loaded::load(ctx, args.device.as_deref())?;
    let dataset = &loaded.dataset;
    if let (Some(outputs), false) = (&outputs, args.resume) {
        // Every row is checked before the job is made, so a bad file leaves no job directory.
        let teach = spec::teach_samples(dataset, &spec, ctx.settings.dataset.history_len);
        external::validate(outputs, dataset, &teach)?;
    }
    let spec = spec::prepare(&out, &spec, args.resume)?;
    if let Some(given) = &outputs {
        if spec.teacher_outputs.as_ref().map(|o| &o.sha256) != Some(&given.sha256) {
            let made_with = match &spec.teacher_outputs {
                Some(o) => format!("teacher outputs {} (SHA-256 {})", o.path.display(), o.sha256),
                None => format!("the teacher model {}", spec.teacher.display()),
            };
            bail!(
                "the job in {} learns from {made_with}, not {} (SHA-256 {}); resume it without \
                 --teacher-outputs, or start a new job with another --out",
                out.display(),
                given.path.display(),
                given.sha256
            );
        }
    }
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
    let resume = resume_command(ctx, &out, &spec, args.backend, args.device.as_deref())?;
    let mut printer = EventPrinter::new(std::io::stderr().is_terminal());
    let mut show = |event: &DistillEvent| printer.show(event);
    if args.backend == Backend::Slurm {
        let device = device_name(ctx, args.device.as_deref());
        match on_slurm(ctx, &out, &spec, dataset, &device, &resume, &mut show)? {
            SlurmOutcome::Local => {}
            SlurmOutcome::Cancelled => {
                eprintln!(
                    "stopped following; the Slurm jobs go on. Follow them again with: {}",
                    resume.command()
                );
                bail!("cancelled");
            }
            SlurmOutcome::Finished(summary) => return print_json(&summary),
        }
    }
    let summary = job::run(loaded.context(ctx, &out), &spec, &mut show)?;
    drop(printer);
    if summary.cancelled {
        eprintln!("stopped; continue with: {}", resume.command());
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

/// What a job needs loaded in this process besides its settings, for the whole job or one shard.
struct Loaded {
    dataset: Dataset,
    prompts: Prompts,
    device: candle_core::Device,
}

impl Loaded {
    fn load(ctx: &Context, device: Option<&str>) -> Result<Loaded> {
        let dataset = data::open(&ctx.settings.dataset)?;
        let device = parse_device(&device_name(ctx, device))?;
        Ok(Loaded { dataset, prompts: Prompts::load(&ctx.settings.prompts)?, device })
    }

    /// The job's context: the job in `dir`, stopped by Ctrl-C.
    fn context<'a>(&'a self, ctx: &Context, dir: &'a Path) -> JobContext<'a> {
        JobContext {
            dir,
            dataset: &self.dataset,
            prompts: &self.prompts,
            history_len: ctx.settings.dataset.history_len,
            device: &self.device,
            cancel: super::interrupt_flag(),
        }
    }
}

/// The command that continues the job in `out` as this one runs it (the same dataset, config,
/// backend and device), written to `DIR/resume.json` for `prism distill status` and every end's
/// next step.
fn resume_command(
    ctx: &Context,
    out: &Path,
    spec: &JobSpec,
    backend: Backend,
    device: Option<&str>,
) -> Result<Resume> {
    let binary = std::env::current_exe().map_or_else(|_| "prism".to_owned(), |p| p.display().to_string());
    let mut argv = vec![binary];
    argv.extend(task_arguments(ctx, spec)?);
    let dir = std::path::absolute(out)?;
    argv.extend(["distill".into(), "--out".into(), dir.display().to_string(), "--resume".into()]);
    if backend == Backend::Slurm {
        argv.extend(["--backend".into(), "slurm".into()]);
    }
    if let Some(device) = device {
        argv.extend(["--device".into(), device.to_owned()]);
    }
    let resume = Resume { argv, cwd: std::env::current_dir().ok() };
    // The rest of a Slurm job runs as `prism distill --resume` on a node: the coordinator's
    // command stays the one that continues the whole job.
    let path = out.join(resume::RESUME_FILE);
    let on_slurm = |r: &Resume| r.argv.windows(2).any(|w| w[0] == "--backend" && w[1] == "slurm");
    let recorded: Option<Resume> = read_json(&path).ok();
    if backend == Backend::Slurm || !recorded.as_ref().is_some_and(on_slurm) {
        durable::write_json(&path, &resume)?;
    }
    Ok(resume)
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
/// `[slurm] train_on_slurm`, the rest as one more job. Once this process holds the job, every way
/// it stops is an event in the log it writes, with the next step.
fn on_slurm(
    ctx: &Context,
    out: &Path,
    spec: &JobSpec,
    dataset: &Dataset,
    device: &str,
    resume: &Resume,
    show: &mut dyn FnMut(&DistillEvent),
) -> Result<SlurmOutcome> {
    let Some(count) = spec.shards else {
        bail!(
            "the job in {} teaches in one piece; the Slurm backend needs a job made with --shards N",
            out.display()
        )
    };
    let dir = std::path::absolute(out)?;
    // A second coordinator is refused before it writes anything: the first one's log stays true.
    let _lock =
        shards::exclusive(&slurm::slurm_dir(&dir).join("lock"), &format!("following {}", dir.display()))?;
    let settings = &ctx.settings.slurm;
    let global = task_arguments(ctx, spec)?;
    let cancel = super::interrupt_flag();
    let resume = resume.command();
    let c = slurm::Coordinator { settings, global: &global, device, cancel, resume: &resume };
    if !is_complete(&dir, Stage::Teach) {
        let mut events = EventSink::open(&dir, show)?;
        let followed = shards::prepare(&dir, spec, dataset, ctx.settings.dataset.history_len)
            .and_then(|_| slurm::teach(&dir, count, &c, &mut events));
        if !recorded(followed, &dir, &resume, &mut events)? {
            return Ok(SlurmOutcome::Cancelled);
        }
    }
    if !settings.train_on_slurm {
        return Ok(SlurmOutcome::Local);
    }
    // The job's own events.jsonl is the remote process's now: this one logs beside it.
    let mut events = EventSink::open(&slurm::slurm_dir(&dir), show)?;
    let followed = slurm::rest(&dir, &c, &mut events);
    if !recorded(followed, &dir, &resume, &mut events)? {
        return Ok(SlurmOutcome::Cancelled);
    }
    Ok(SlurmOutcome::Finished(read_json(&dir.join(SUMMARY_FILE))?))
}

/// Passes `result` on; an error the backend did not log yet is logged first as the coordinator's
/// failure, with the next step.
fn recorded(result: Result<bool>, dir: &Path, resume: &str, events: &mut EventSink<'_>) -> Result<bool> {
    if let Err(e) = &result {
        if !e.is::<slurm::Recorded>() {
            let stage = Stage::ALL.into_iter().find(|s| !is_complete(dir, *s)).unwrap_or(Stage::Evaluate);
            events.emit(
                DistillEvent::new(stage, EventKind::Failed, 0, 0)
                    .message(format!("the coordinator stopped: {e:#}"))
                    .next(format!("once that is fixed, continue with: {resume}")),
            )?;
        }
    }
    result
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
    let loaded = Loaded::load(ctx, args.device.as_deref())?;
    let mut printer = EventPrinter::new(false);
    let mut show = |event: &DistillEvent| printer.show(event);
    let complete = shards::run_shard(loaded.context(ctx, &args.job), shard, &mut show)?;
    if ctx.json {
        print_json(&serde_json::json!({"job": args.job, "shard": shard, "complete": complete}))?;
    }
    if !complete {
        bail!("shard {shard} stopped; run the same command again to continue it");
    }
    Ok(())
}

/// `prism distill plot DIR --out F.svg`.
fn plot(dir: &Path, out: &Path) -> Result<()> {
    let run = if dir.join(crate::train::trainer::LAST).is_dir() {
        dir.to_path_buf()
    } else {
        dir.join(Stage::Train.name())
    };
    let Some(state) = crate::train::trainer::read_state(&run)? else {
        bail!("{} holds no training run yet (no {}/last/trainer_state.json)", dir.display(), run.display());
    };
    let train: Vec<(usize, f64)> =
        state.losses.iter().enumerate().map(|(i, &l)| (i + 1, f64::from(l))).collect();
    let dev: Vec<(usize, f64)> =
        state.history.iter().filter_map(|r| r.metrics.get("dev_loss").map(|&l| (r.step, l))).collect();
    super::plot::curves(out, &train, &dev)?;
    eprintln!(
        "{} training steps and {} validation points drawn to {}",
        train.len(),
        dev.len(),
        out.display()
    );
    Ok(())
}

/// Distillation events on stderr. On a terminal, progress is a bar per stage and shard (count,
/// rate, time left, the training loss), hidden by `--quiet`; in a log, a line (every tenth
/// training step). Every other event is a line, printed above the bar.
struct EventPrinter {
    terminal: bool,
    bar: Option<((Stage, Option<Shard>), ProgressBar)>,
}

impl EventPrinter {
    fn new(terminal: bool) -> Self {
        EventPrinter { terminal, bar: None }
    }

    fn show(&mut self, event: &DistillEvent) {
        if event.kind == EventKind::Progress && event.message.is_empty() {
            if self.terminal {
                let bar = self.bar_for(event);
                bar.set_length(event.total as u64);
                bar.set_position(event.done as u64);
                if let Some(loss) = event.loss {
                    bar.set_message(format!("loss {loss:.3}"));
                }
                return;
            }
            if event.stage == Stage::Train && !event.done.is_multiple_of(10) && event.done != event.total {
                return;
            }
        }
        let line = format!("{} [{:?}]", event_line(event), event.kind);
        match &self.bar {
            Some((_, bar)) => crate::progress::println(bar, &line),
            None => eprintln!("{line}"),
        }
    }

    /// The bar of the event's stage and shard (a new one, clearing the last, when they change).
    fn bar_for(&mut self, event: &DistillEvent) -> &ProgressBar {
        let key = (event.stage, event.shard);
        if self.bar.as_ref().map(|(k, _)| *k) != Some(key) {
            let what = match event.shard {
                Some(shard) => format!("{} shard {shard}", event.stage.name()),
                None => event.stage.name().to_owned(),
            };
            let unit = if event.stage == Stage::Train { "steps" } else { "samples" };
            let bar = crate::progress::bar(event.total as u64, &what, unit);
            // What a resumed stage had done took no time this run.
            bar.set_position(event.done as u64);
            bar.reset_eta();
            self.bar = Some((key, bar));
        }
        &self.bar.as_ref().expect("a bar was just set").1
    }
}

/// `train  40/100 loss 2.310 3.1/s eta 1m — next: …`.
fn event_line(event: &DistillEvent) -> String {
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
    if !event.next.is_empty() {
        line.push_str(&format!(" — next: {}", event.next));
    }
    line
}

/// `shard 2: running 40/100 eta 3m10s, slurm 812_2 RUNNING; earlier 810_2 CANCELLED by alice`.
fn shard_line(shard: &status::ShardStatus) -> String {
    let mut line = format!("shard {}: {} {}/{}", shard.shard, shard.state.name(), shard.done, shard.total);
    if shard.state == status::ShardState::Running {
        if let Some(eta) = shard.latest.as_ref().and_then(|e| e.eta_s) {
            line.push_str(&format!(" eta {}", format_duration(eta)));
        }
    }
    if shard.state != status::ShardState::Done {
        line.push_str(&format!(" — {}", shard.detail));
    }
    if let Some(task) = &shard.task {
        let state = task.seen.as_ref().map_or("no record".to_owned(), |s| {
            slurm::describe(&s.state, s.by.as_deref(), s.exit_code.as_deref())
        });
        line.push_str(&format!("; slurm {} {state}", task.id));
        if !task.ended.is_empty() {
            let ended: Vec<String> = task
                .ended
                .iter()
                .map(|e| {
                    format!(
                        "{}_{} {}",
                        e.job,
                        shard.shard,
                        slurm::describe(&e.state, e.by.as_deref(), e.exit_code.as_deref())
                    )
                })
                .collect();
            line.push_str(&format!(" ({} retries; earlier {})", task.retries, ended.join(", ")));
        } else if task.retries > 0 {
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

fn status(ctx: &Context, dir: &Path) -> Result<()> {
    let options = status::Options { ask_slurm: true, poll_seconds: ctx.settings.slurm.poll_seconds };
    let job = status::read(dir, &options)?;
    if ctx.json {
        return print_json(&job);
    }
    for line in status_lines(&job) {
        println!("{line}");
    }
    Ok(())
}

/// `prism distill status`'s text.
pub fn status_lines(job: &JobStatus) -> Vec<String> {
    let mut lines = vec![match &job.teacher_outputs {
        Some(file) => format!(
            "job {} (preset {}, teacher outputs {}, {} rows)",
            job.dir.display(),
            job.preset,
            file.path.display(),
            file.rows
        ),
        None => {
            format!("job {} (preset {}, teacher {})", job.dir.display(), job.preset, job.teacher.display())
        }
    }];
    lines.push(format!("  {:<9} {}: {}", "state", job.state.name(), job.reason));
    if let Some(next) = &job.next {
        lines.push(format!("  {:<9} {next}", "next"));
    }
    for s in &job.stages {
        let state = if s.complete {
            format!("done {}/{}", s.done, s.total)
        } else if s.total == 0 && s.latest.is_none() {
            "not started".to_owned()
        } else {
            let eta = s
                .latest
                .as_ref()
                .filter(|_| s.stage != Stage::Teach || job.shards.is_empty())
                .and_then(|e| e.eta_s)
                .map(|t| format!(" eta {}", format_duration(t)))
                .unwrap_or_default();
            format!("{}/{}{eta}", s.done, s.total)
        };
        lines.push(format!("  {:<9} {state}", s.stage.name()));
        if s.stage == Stage::Teach && !s.complete {
            lines.extend(job.shards.iter().map(|shard| format!("    {}", shard_line(shard))));
        }
    }
    if let Some(slurm) = &job.slurm {
        let when = slurm.as_of.map(|t| format!("{} ago", status::format_age(job.time - t)));
        let source = match (slurm.live, &slurm.error, when) {
            (true, _, _) => "asked now".to_owned(),
            (false, Some(e), Some(when)) => format!("not reachable ({e}); states as last seen {when}"),
            (false, Some(e), None) => format!("not reachable ({e}); states as recorded"),
            (false, None, Some(when)) => format!("states as last seen {when}"),
            (false, None, None) => "states as recorded".to_owned(),
        };
        for (part, summary) in &slurm.summary {
            let jobs: Vec<&str> = slurm
                .recorded
                .get(part)
                .map(|t| t.submissions.iter().map(|s| s.job.as_str()).collect())
                .unwrap_or_default();
            let jobs = if jobs.is_empty() { String::new() } else { format!("jobs {}; ", jobs.join(", ")) };
            lines.push(format!("  slurm {part}: {summary} ({jobs}{source})"));
        }
        if let Some(e) = &job.last_slurm {
            lines.push(format!("  last slurm message: {}", e.message));
        }
    }
    for problem in &job.problems {
        lines.push(format!("  problem: {problem}"));
    }
    if let Some(e) = job.summary.as_ref().and_then(|s| s.get("evaluation")).filter(|e| !e.is_null()) {
        lines.push(format!(
            "  speed-up {:.2}x, memory ratio {:.2}x",
            e["speedup"].as_f64().unwrap_or(0.0),
            e["memory_ratio"].as_f64().unwrap_or(0.0)
        ));
    }
    lines
}

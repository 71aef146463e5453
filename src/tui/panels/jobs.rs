//! The jobs panel: a distillation job started here or watched from its events.jsonl — stage,
//! progress, loss, ETA; for a watched job where it stands (`distill::status`: its state, why, the
//! next step, each teach shard's state and Slurm task, and torn or unreadable log lines). Its state
//! follows the job's messages ([`JobMsg`]) as the workers report them.

use std::path::PathBuf;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Gauge, Paragraph, Sparkline, Wrap};
use ratatui::Frame;

use super::Chrome;
use crate::distill::events::{DistillEvent, EventKind, Stage};
use crate::distill::slurm::describe;
use crate::distill::status::{JobState as Standing, JobStatus, ShardState};
use crate::tui::keys::Action;

#[derive(Clone, Debug, PartialEq)]
pub enum JobState {
    Running,
    Finished,
    Cancelled,
    Failed(String),
    Detached,
}

#[derive(Clone, Debug, PartialEq)]
pub struct JobView {
    /// The job directory, and whether this explorer started it (else it is watched from its log).
    pub dir: PathBuf,
    pub started_here: bool,
    /// Whether this explorer still runs or watches it.
    pub state: JobState,
    /// The latest progress (Slurm messages and ends carry none and do not replace it).
    pub last: Option<DistillEvent>,
    pub losses: Vec<f32>,
    pub log: Vec<String>,
    /// Where a watched job stands, from its files, locks and Slurm (`distill::status`).
    pub status: Option<Box<JobStatus>>,
}

impl JobView {
    fn new(dir: PathBuf, started_here: bool, state: JobState) -> JobView {
        JobView { dir, started_here, state, last: None, losses: Vec::new(), log: Vec::new(), status: None }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum JobMsg {
    Started {
        dir: PathBuf,
        started_here: bool,
    },
    Event(DistillEvent),
    /// Where a watched job stands (read by the watcher, as `prism distill status` reads it).
    Status(Box<JobStatus>),
    /// The job (or the watch) ended; `Err` carries the reason it could not run.
    Ended(Result<String, String>),
}

/// The job shown, if any.
#[derive(Default)]
pub struct Jobs {
    pub job: Option<JobView>,
}

impl Jobs {
    /// Whether a job runs here or is being watched.
    pub fn running(&self) -> bool {
        self.job.as_ref().is_some_and(|j| j.state == JobState::Running)
    }

    pub fn on_msg(&mut self, msg: JobMsg) {
        match msg {
            JobMsg::Started { dir, started_here } => {
                self.job = Some(JobView::new(dir, started_here, JobState::Running));
            }
            JobMsg::Status(status) => {
                if let Some(job) = &mut self.job {
                    job.status = Some(status);
                }
            }
            JobMsg::Event(event) => {
                let Some(job) = &mut self.job else { return };
                if let (Stage::Train, Some(loss)) = (event.stage, event.loss) {
                    job.losses.push(loss);
                }
                // A watched job's standing comes from its status; its events say how a run here ended.
                let own = job.started_here || job.status.is_none();
                match &event.kind {
                    _ if !own => {}
                    EventKind::Cancelled => job.state = JobState::Cancelled,
                    EventKind::Failed => job.state = JobState::Failed(event.message.clone()),
                    EventKind::Finished if event.stage == Stage::Evaluate => job.state = JobState::Finished,
                    _ => {}
                }
                if !event.message.is_empty() {
                    job.log.push(format!("{}: {}", event.stage.name(), event.message));
                }
                if !event.next.is_empty() {
                    job.log.push(format!("{}: next: {}", event.stage.name(), event.next));
                }
                if event.is_progress() || event.kind == EventKind::Finished {
                    job.last = Some(event);
                }
            }
            JobMsg::Ended(result) => match (&mut self.job, result) {
                (Some(job), Ok(_)) if job.state == JobState::Running => {
                    job.state = if job.started_here { JobState::Finished } else { JobState::Detached }
                }
                (Some(job), Err(message)) => job.state = JobState::Failed(message),
                (None, Err(message)) => {
                    self.job = Some(JobView::new(PathBuf::new(), true, JobState::Failed(message)));
                }
                _ => {}
            },
        }
    }

    pub fn draw(&self, chrome: Chrome<'_>, frame: &mut Frame, rect: Rect) {
        let t = chrome.theme;
        let outer = chrome.block(" Jobs ");
        let inner = outer.inner(rect);
        frame.render_widget(outer, rect);
        let Some(job) = &self.job else {
            let lines = vec![
                Line::styled("No distillation job.", t.text),
                Line::styled(
                    format!(
                        "{}: start the quick preset (teach → filter → train → evaluate)",
                        chrome.keys.keys_label(Action::StartJob)
                    ),
                    t.dim,
                ),
                Line::styled(
                    format!(
                        "{}: attach to a job started elsewhere (its directory)",
                        chrome.keys.keys_label(Action::AttachJob)
                    ),
                    t.dim,
                ),
            ];
            frame.render_widget(Paragraph::new(lines), inner);
            return;
        };
        if let (JobState::Failed(message), None) = (&job.state, &job.last) {
            frame.render_widget(chrome.error_text("The job could not start", message), inner);
            return;
        }
        let (state, style) = match &job.state {
            JobState::Running => ("running", t.warn),
            JobState::Finished => ("finished", t.ok),
            JobState::Cancelled => ("cancelled (resumable)", t.warn),
            JobState::Failed(_) => ("failed", t.error),
            JobState::Detached => ("detached", t.dim),
        };
        let origin = if job.started_here { "started here" } else { "attached" };
        let mut head_lines: Vec<Line> = Vec::new();
        match &job.status {
            // A watched job: where it stands, from its files, locks and Slurm.
            Some(status) => {
                let style = match status.state {
                    Standing::Finished => t.ok,
                    Standing::Running => t.warn,
                    Standing::Failed => t.error,
                    Standing::Cancelled | Standing::Stopped => t.warn,
                };
                let watch = if job.state == JobState::Running { "watching" } else { "not watching" };
                head_lines.push(Line::styled(
                    format!("{} · {origin} ({watch}) · {}", job.dir.display(), status.state.name()),
                    style,
                ));
                if status.state != Standing::Finished {
                    head_lines.push(Line::styled(status.reason.clone(), style));
                }
                if let Some(next) = &status.next {
                    head_lines.push(Line::styled(format!("next: {next}"), t.text));
                }
            }
            None => {
                head_lines.push(Line::styled(format!("{} · {origin} · {state}", job.dir.display()), style))
            }
        }
        // For a sharded teach stage, the shards' sum of the plan (a message never resets it).
        let teach = job.status.as_ref().and_then(|s| {
            let teach = s.stages.iter().find(|st| st.stage == Stage::Teach)?;
            (!s.shards.is_empty()).then_some((teach.done, teach.total))
        });
        let progress = match &job.last {
            Some(e) if e.stage == Stage::Teach && teach.is_some() => {
                let (done, total) = teach.expect("checked");
                Some((e.stage, done, total, None))
            }
            Some(e) => Some((e.stage, e.done, e.total, e.eta_s)),
            None => teach.map(|(done, total)| (Stage::Teach, done, total, None)),
        };
        let (ratio, label) = match progress {
            Some((stage, done, total, eta)) => {
                let eta = eta.map_or(String::new(), |s| format!(" · ETA {:.0} s", s));
                let loss = job.losses.last().map_or(String::new(), |l| format!(" · loss {l:.3}"));
                head_lines.push(Line::styled(
                    format!("stage {} · {done}/{total}{loss}{eta}", stage.name()),
                    t.text,
                ));
                let ratio = if total > 0 { (done as f64 / total as f64).clamp(0.0, 1.0) } else { 0.0 };
                (ratio, format!("{} {:.0}%", stage.name(), ratio * 100.0))
            }
            None => (0.0, "waiting for the first event".to_owned()),
        };
        // The head wraps; it takes at most half the panel.
        let width = inner.width.max(1) as usize;
        let head_height: usize = head_lines.iter().map(|l| l.width().max(1).div_ceil(width)).sum();
        let head_height = head_height.min((inner.height as usize / 2).max(2)) as u16;
        let [head, gauge, chart, log] = Layout::vertical([
            Constraint::Length(head_height),
            Constraint::Length(1),
            Constraint::Length(if inner.height >= 8 { 3 } else { 0 }),
            Constraint::Min(0),
        ])
        .areas(inner);
        frame.render_widget(Paragraph::new(head_lines).wrap(Wrap { trim: false }), head);
        frame.render_widget(Gauge::default().ratio(ratio).label(label).gauge_style(t.gauge), gauge);
        if chart.height > 0 {
            // Sparklines take integers: losses in thousandths keep three decimals of shape.
            let data: Vec<u64> = job
                .losses
                .iter()
                .rev()
                .take(chart.width as usize)
                .rev()
                .map(|&l| (l.max(0.0) * 1000.0) as u64)
                .collect();
            frame.render_widget(Sparkline::default().data(&data).style(t.gauge), chart);
        }
        let mut log_lines: Vec<Line> = Vec::new();
        if let Some(status) = job.status.as_ref().filter(|s| !s.shards.is_empty()) {
            let complete = status.shards.iter().filter(|s| s.complete).count();
            log_lines.push(Line::styled(
                format!("teach shards: {complete}/{} complete", status.shards.len()),
                t.text,
            ));
            for s in &status.shards {
                let style: Style = match s.state {
                    ShardState::Done => t.ok,
                    ShardState::Running | ShardState::Pending => t.text,
                    ShardState::Failed | ShardState::Lost => t.error,
                    ShardState::Cancelled | ShardState::Stopped | ShardState::NotStarted => t.warn,
                };
                let mut notes = vec![s.state.name().to_owned()];
                match &s.task {
                    Some(task) => {
                        let state = task.seen.as_ref().map_or("no record".to_owned(), |seen| {
                            describe(&seen.state, seen.by.as_deref(), seen.exit_code.as_deref())
                        });
                        let retries = if task.retries > 0 {
                            format!(" ({} retries)", task.retries)
                        } else {
                            String::new()
                        };
                        notes.push(format!("slurm {} {state}{retries}", task.id));
                    }
                    None if s.state != ShardState::Done => notes.push(s.detail.clone()),
                    None => {}
                }
                let line =
                    format!("  shard {:>2}: {:>6}/{:<6} {}", s.shard, s.done, s.total, notes.join(" · "));
                log_lines.push(Line::styled(line, style));
            }
        }
        if let Some(slurm) = job.status.as_ref().and_then(|s| s.slurm.as_ref()).filter(|s| !s.live) {
            let why = slurm.error.as_deref().map_or(String::new(), |e| format!(" ({e})"));
            log_lines
                .push(Line::styled(format!("Slurm not asked{why}: its states are as last seen"), t.warn));
        }
        for problem in job.status.iter().flat_map(|s| &s.problems) {
            log_lines.push(Line::styled(format!("problem: {problem}"), t.warn));
        }
        let room = (log.height as usize).saturating_sub(log_lines.len());
        log_lines.extend(job.log.iter().rev().take(room).rev().map(|l| Line::styled(l.clone(), t.dim)));
        if let (JobState::Failed(message), None) = (&job.state, &job.status) {
            log_lines.push(Line::styled(message.clone(), t.error));
        }
        frame.render_widget(Paragraph::new(log_lines), log);
    }
}

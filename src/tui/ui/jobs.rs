//! A distillation job: started here or watched from its events.jsonl — stage, progress, loss, ETA,
//! and for a sharded job each teach shard's progress and Slurm task.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Gauge, Paragraph, Sparkline};
use ratatui::Frame;

use super::{block, error_text};
use crate::tui::app::{App, JobState};
use crate::tui::keys::Action;
use crate::tui::layout::Panel;

pub fn render(app: &App, frame: &mut Frame, rect: Rect) {
    let t = &app.theme;
    let outer = block(app, " Jobs ", Panel::Jobs);
    let inner = outer.inner(rect);
    frame.render_widget(outer, rect);
    let Some(job) = &app.job else {
        let lines = vec![
            Line::styled("No distillation job.", t.text),
            Line::styled(
                format!(
                    "{}: start the quick preset (teach → filter → train → evaluate)",
                    app.keys.keys_label(Action::StartJob)
                ),
                t.dim,
            ),
            Line::styled(
                format!(
                    "{}: attach to a job started elsewhere (its directory)",
                    app.keys.keys_label(Action::AttachJob)
                ),
                t.dim,
            ),
        ];
        frame.render_widget(Paragraph::new(lines), inner);
        return;
    };
    if let (JobState::Failed(message), None) = (&job.state, &job.last) {
        frame.render_widget(error_text(app, "The job could not start", message), inner);
        return;
    }
    let [head, gauge, chart, log] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(1),
        Constraint::Length(if inner.height >= 8 { 3 } else { 0 }),
        Constraint::Min(0),
    ])
    .areas(inner);
    let (state, style) = match &job.state {
        JobState::Running => ("running", t.warn),
        JobState::Finished => ("finished", t.ok),
        JobState::Cancelled => ("cancelled (resumable)", t.warn),
        JobState::Failed(_) => ("failed", t.error),
        JobState::Detached => ("detached", t.dim),
    };
    let origin = if job.started_here { "started here" } else { "attached" };
    let mut lines = vec![Line::styled(format!("{} · {origin} · {state}", job.dir.display()), style)];
    let (ratio, label) = match &job.last {
        Some(e) => {
            let eta = e.eta_s.map_or(String::new(), |s| format!(" · ETA {:.0} s", s));
            let loss = job.losses.last().map_or(String::new(), |l| format!(" · loss {l:.3}"));
            lines.push(Line::styled(
                format!("stage {} · {}/{}{loss}{eta}", e.stage.name(), e.done, e.total),
                t.text,
            ));
            let ratio = if e.total > 0 { (e.done as f64 / e.total as f64).clamp(0.0, 1.0) } else { 0.0 };
            (ratio, format!("{} {:.0}%", e.stage.name(), ratio * 100.0))
        }
        None => (0.0, "waiting for the first event".to_owned()),
    };
    frame.render_widget(Paragraph::new(lines), head);
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
    if !job.shards.is_empty() {
        let complete = job.shards.iter().filter(|s| s.complete).count();
        log_lines
            .push(Line::styled(format!("teach shards: {complete}/{} complete", job.shards.len()), t.text));
        for s in &job.shards {
            let mut notes: Vec<String> = Vec::new();
            if s.complete {
                notes.push("done".into());
            }
            notes.extend(s.slurm.as_ref().map(|task| format!("slurm {task}")));
            let style = if s.complete { t.ok } else { t.text };
            let line = format!("  shard {:>2}: {:>6}/{:<6} {}", s.shard, s.done, s.total, notes.join(" · "));
            log_lines.push(Line::styled(line, style));
        }
    }
    let room = (log.height as usize).saturating_sub(log_lines.len());
    log_lines.extend(job.log.iter().rev().take(room).rev().map(|l| Line::styled(l.clone(), t.dim)));
    if let JobState::Failed(message) = &job.state {
        log_lines.push(Line::styled(message.clone(), t.error));
    }
    frame.render_widget(Paragraph::new(log_lines), log);
}

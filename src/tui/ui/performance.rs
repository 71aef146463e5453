//! Per-model latency (last, rolling mean, sparkline), TTFT, tokens/s, weights and peak memory, the
//! measured speed-up and memory ratio, and the race tally (speed beside faithfulness).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline};
use ratatui::Frame;

use super::{block, megabytes, ms};
use crate::explain::PromptKind;
use crate::explain::Verdict;
use crate::tui::app::{App, RaceResult, ROLLING};
use crate::tui::layout::Panel;

pub fn render(app: &App, frame: &mut Frame, rect: Rect) {
    let t = &app.theme;
    let outer = block(app, " Performance ", Panel::Performance);
    let inner = outer.inner(rect);
    frame.render_widget(outer, rect);
    let race_lines = race(app);
    // The race tally comes before the sparklines when rows are short.
    let [models, ratio, tally] = Layout::vertical([
        Constraint::Min(4),
        Constraint::Length(2),
        Constraint::Length(race_lines.len() as u16),
    ])
    .areas(inner);
    let halves = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).split(models);
    for (kind, area) in [(PromptKind::Oracle, halves[0]), (PromptKind::Prism, halves[1])] {
        model(app, frame, area, kind);
    }
    let (last, rolling) = app.speedup();
    let times = |v: Option<f64>| v.map_or("–".to_owned(), |x| format!("×{x:.1}"));
    let lines = vec![
        Line::from(vec![
            Span::styled("speed-up ", t.dim),
            Span::styled(times(last), t.title),
            Span::styled(format!(" last · {} mean of last {ROLLING}", times(rolling)), t.dim),
        ]),
        Line::from(vec![
            Span::styled("memory ratio ", t.dim),
            Span::styled(times(app.memory_ratio()), t.title),
            Span::styled(" (weights, Oracle / Prism)", t.dim),
        ]),
    ];
    frame.render_widget(Paragraph::new(lines), ratio);
    frame.render_widget(Paragraph::new(race_lines), tally);
}

fn model(app: &App, frame: &mut Frame, area: Rect, kind: PromptKind) {
    let t = &app.theme;
    let pane = app.pane(kind);
    let (name, style) = match kind {
        PromptKind::Oracle => ("Oracle", t.oracle),
        PromptKind::Prism => ("Prism", t.prism),
    };
    let mut lines = vec![Line::styled(name, style)];
    match &pane.last {
        Some(e) => {
            let rolling = pane.rolling_latency().map_or("–".into(), ms);
            lines.push(Line::styled(
                format!("last {} · mean {rolling} (n={})", ms(e.latency_ms), pane.latencies.len()),
                t.text,
            ));
            lines.push(Line::styled(format!("TTFT {} · {:.1} tok/s", ms(e.ttft_ms), e.tokens_per_s), t.text));
            lines.push(Line::styled(
                format!(
                    "weights {} · peak {}",
                    megabytes(e.param_bytes as f64),
                    megabytes(e.peak_rss_bytes as f64)
                ),
                t.dim,
            ));
        }
        None => lines.push(Line::styled("no explanation yet", t.dim)),
    }
    let [text, spark] = Layout::vertical([Constraint::Length(4), Constraint::Min(0)]).areas(area);
    frame.render_widget(Paragraph::new(lines), text);
    let data: Vec<u64> =
        pane.latencies.iter().rev().take(spark.width as usize).rev().map(|&l| l as u64).collect();
    frame.render_widget(Sparkline::default().data(&data).style(style), spark);
}

/// The race tally: per model, its speed beside its faithfulness (explanations naming the item's
/// title, invented titles and features per explanation, explanations misattributing a feature).
fn race(app: &App) -> Vec<Line<'static>> {
    let t = &app.theme;
    let Some(race) = &app.race else { return Vec::new() };
    let elapsed = race.finished.unwrap_or(app.now).saturating_sub(race.started).as_secs_f64() * 1000.0;
    let n = race.results.len();
    let prism_wins = race.results.iter().filter(|r| r.prism_ms < r.oracle_ms).count();
    let state = if race.finished.is_some() { "final" } else { "running" };
    let mut lines = vec![Line::styled(
        format!("Race ({state}, {}, {n} users): Prism faster {prism_wins}/{n}", ms(elapsed)),
        t.warn,
    )];
    let oracle_total: f64 = race.results.iter().map(|r| r.oracle_ms).sum();
    let prism_total: f64 = race.results.iter().map(|r| r.prism_ms).sum();
    for (name, style, total, verdict) in [
        ("Oracle", t.oracle, oracle_total, (|r: &RaceResult| &r.oracle) as fn(&RaceResult) -> &Verdict),
        ("Prism ", t.prism, prism_total, |r: &RaceResult| &r.prism),
    ] {
        let titled = race.results.iter().filter(|r| verdict(r).title_named).count();
        let invented: usize = race.results.iter().map(|r| verdict(r).invented()).sum();
        let misattributed = race.results.iter().filter(|r| !verdict(r).misattributed.is_empty()).count();
        let speedup = if name.starts_with("Prism") && total > 0.0 {
            format!(" (×{:.1})", oracle_total / total)
        } else {
            String::new()
        };
        lines.push(Line::from(vec![
            Span::styled(name, style),
            Span::styled(
                format!(
                    " {}{speedup} · title {titled}/{n} · invented {:.1}/expl. · misattributed {misattributed}/{n}",
                    ms(total),
                    invented as f64 / n.max(1) as f64
                ),
                t.text,
            ),
        ]));
    }
    lines
}

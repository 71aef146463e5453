//! The performance panel: per model, latency (last, rolling mean, sparkline), TTFT, tokens/s and
//! its own memory — weights as loaded and the largest generation peak (`model::stats`) — the
//! measured speed-up and memory ratio, the process's resident set as a separate line, and the
//! race: both models explaining the top item of each user in turn, tallied speed beside
//! faithfulness.

use std::time::Duration;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline};
use ratatui::Frame;

use super::compare::{Comparison, ORACLE, PRISM, ROLLING};
use super::{megabytes, ms, Chrome};
use crate::explain::Verdict;

#[derive(Clone, Debug, PartialEq)]
pub struct RaceResult {
    pub user: String,
    pub title: String,
    pub oracle_ms: f64,
    pub prism_ms: f64,
    /// The verdicts on the two explanations (title named, invented, misattributed).
    pub oracle: Verdict,
    pub prism: Verdict,
}

/// The demo: both models explain the top item of each user in turn.
#[derive(Clone, Debug, PartialEq)]
pub struct Race {
    pub users: Vec<String>,
    pub index: usize,
    pub results: Vec<RaceResult>,
    pub started: Duration,
    pub finished: Option<Duration>,
}

impl Race {
    pub fn running(&self) -> bool {
        self.finished.is_none()
    }

    /// Records the Oracle's and the Prism's answers for the current request when they are the
    /// race's current user's; the user to race next, if any (else the race is finished at `now`).
    pub fn record(&mut self, compare: &Comparison, now: Duration) -> Option<String> {
        let (Some(oracle), Some(prism)) = (compare.generated(ORACLE), compare.generated(PRISM)) else {
            return None;
        };
        let target = compare.target.as_ref()?;
        if !self.running() || self.users.get(self.index) != Some(&target.user) {
            return None;
        }
        self.results.push(RaceResult {
            user: target.user.clone(),
            title: target.title.clone(),
            oracle_ms: oracle.latency_ms,
            prism_ms: prism.latency_ms,
            oracle: oracle.verdict.clone(),
            prism: prism.verdict.clone(),
        });
        self.index += 1;
        let next = self.users.get(self.index).cloned();
        if next.is_none() {
            self.finished = Some(now);
        }
        next
    }
}

/// Oracle latency over Prism latency: of the last pair and of the rolling means.
pub fn speedup(compare: &Comparison) -> (Option<f64>, Option<f64>) {
    let (oracle, prism) = (&compare.panes[ORACLE], &compare.panes[PRISM]);
    let last = match (&oracle.last, &prism.last) {
        (Some(o), Some(p)) if p.latency_ms > 0.0 => Some(o.latency_ms / p.latency_ms),
        _ => None,
    };
    let rolling = match (oracle.rolling_latency(), prism.rolling_latency()) {
        (Some(o), Some(p)) if p > 0.0 => Some(o / p),
        _ => None,
    };
    (last, rolling)
}

/// The Oracle's own memory over the Prism's (weights + largest generation peak each, as
/// `prism bench` reports `model_memory_ratio`); `None` until both have generated.
pub fn memory_ratio(compare: &Comparison) -> Option<f64> {
    let (oracle, prism) = (compare.panes[ORACLE].model_memory()?, compare.panes[PRISM].model_memory()?);
    (prism > 0).then(|| oracle as f64 / prism as f64)
}

pub fn draw(
    chrome: Chrome<'_>,
    frame: &mut Frame,
    rect: Rect,
    compare: &Comparison,
    race: Option<&Race>,
    now: Duration,
) {
    let t = chrome.theme;
    let outer = chrome.block(" Performance ");
    let inner = outer.inner(rect);
    frame.render_widget(outer, rect);
    let race_lines = race.map_or(Vec::new(), |r| tally(chrome, r, now));
    // The race tally comes before the sparklines when rows are short.
    let [models, ratio, tally] = Layout::vertical([
        Constraint::Min(5),
        Constraint::Length(3),
        Constraint::Length(race_lines.len() as u16),
    ])
    .areas(inner);
    let halves = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).split(models);
    for (pane, area) in [(ORACLE, halves[0]), (PRISM, halves[1])] {
        model(chrome, frame, area, compare, pane);
    }
    let (last, rolling) = speedup(compare);
    let times = |v: Option<f64>| v.map_or("–".to_owned(), |x| format!("×{x:.1}"));
    let rss = compare.panes.iter().filter_map(|p| p.last.as_ref()).map(|e| e.peak_rss_bytes).max();
    let lines = vec![
        Line::from(vec![
            Span::styled("speed-up ", t.dim),
            Span::styled(times(last), t.title),
            Span::styled(format!(" last · {} mean of last {ROLLING}", times(rolling)), t.dim),
        ]),
        Line::from(vec![
            Span::styled("memory ratio ", t.dim),
            Span::styled(times(memory_ratio(compare)), t.title),
            Span::styled(" (weights + generation peak, Oracle / Prism)", t.dim),
        ]),
        Line::styled(
            format!(
                "process resident set at its peak: {} (whole explorer)",
                rss.map_or("–".to_owned(), |b| megabytes(b as f64))
            ),
            t.dim,
        ),
    ];
    frame.render_widget(Paragraph::new(lines), ratio);
    frame.render_widget(Paragraph::new(race_lines), tally);
}

fn model(chrome: Chrome<'_>, frame: &mut Frame, area: Rect, compare: &Comparison, index: usize) {
    let t = chrome.theme;
    let pane = &compare.panes[index];
    let style = if index == ORACLE { t.oracle } else { t.prism };
    let mut lines = vec![Line::styled(pane.name.clone(), style)];
    match &pane.last {
        Some(e) => {
            let rolling = pane.rolling_latency().map_or("–".into(), ms);
            lines.push(Line::styled(
                format!("last {} · mean {rolling} (n={})", ms(e.latency_ms), pane.latencies.len()),
                t.text,
            ));
            lines.push(Line::styled(format!("TTFT {} · {:.1} tok/s", ms(e.ttft_ms), e.tokens_per_s), t.text));
            lines.push(Line::styled(format!("weights {}", megabytes(e.param_bytes as f64)), t.dim));
            lines.push(Line::styled(
                format!(
                    "gen. peak {}, last {}",
                    megabytes(pane.generation_peak_bytes as f64),
                    megabytes(e.stats.generation_peak_bytes as f64)
                ),
                t.dim,
            ));
        }
        None => lines.push(Line::styled("no explanation yet", t.dim)),
    }
    let [text, spark] = Layout::vertical([Constraint::Length(5), Constraint::Min(0)]).areas(area);
    frame.render_widget(Paragraph::new(lines), text);
    let data: Vec<u64> =
        pane.latencies.iter().rev().take(spark.width as usize).rev().map(|&l| l as u64).collect();
    frame.render_widget(Sparkline::default().data(&data).style(style), spark);
}

/// The race tally: per model, its speed beside its faithfulness (explanations naming the item's
/// title, invented titles and features per explanation, explanations misattributing a feature).
fn tally(chrome: Chrome<'_>, race: &Race, now: Duration) -> Vec<Line<'static>> {
    let t = chrome.theme;
    let elapsed = race.finished.unwrap_or(now).saturating_sub(race.started).as_secs_f64() * 1000.0;
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

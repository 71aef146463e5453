//! The comparison: one column per system (the Oracle, the Prism, then each `[models.extra]`
//! system — a checkpoint, or a `file:` of precomputed rows), each with its latest answer — the
//! explanation as it streams in, then coloured by grounding, with its measurements, grounding
//! counts and a one-line verdict (title named, invented, misattributed) underneath. Which columns
//! fit the screen, and `x` rotating the others, is decided here too ([`Comparison::columns`]).

use std::path::PathBuf;
use std::time::Duration;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::{megabytes, ms, Chrome, Loadable};
use crate::config::{ExtraSource, ExtraSystem};
use crate::explain::grounding::Class;
use crate::explain::{Explanation, MentionRecord, PromptKind, Summary, Verdict};
use crate::tui::theme::Theme;

#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    pub architecture: String,
    pub param_bytes: usize,
    pub load_ms: f64,
    /// The input length prompts are cut to (the configured limit, or less where the model reads
    /// fewer positions); `None` for a file of explanations.
    pub max_input_tokens: Option<usize>,
    /// How many of the newest history items a Prism's prompt shows (its checkpoint's window, else
    /// `[prompts] prism_history_len`); `None` for an Oracle, which is shown the whole history
    /// its input length holds, and for a file.
    pub history_items: Option<usize>,
}

/// An explanation a `file:` system wrote beforehand, grounded here like a generated one.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    pub text: String,
    /// As the file recorded it; `None` when it has none.
    pub latency_ms: Option<f64>,
    pub grounding: Summary,
    pub mentions: Vec<MentionRecord>,
    pub verdict: Verdict,
}

/// A system's answer to an explanation request.
#[derive(Clone, Debug)]
pub enum Answer {
    Generated(Box<Explanation>),
    Recorded(Box<Recorded>),
    /// A `file:` system has no row for the pair; the message says so.
    Missing(String),
}

impl From<Box<Explanation>> for Answer {
    fn from(e: Box<Explanation>) -> Answer {
        Answer::Generated(e)
    }
}

impl Answer {
    /// The text with its mentions and verdict; `None` for a missing row.
    pub fn shown(&self) -> Option<(&str, &[MentionRecord], &Summary, &Verdict)> {
        match self {
            Answer::Generated(e) => Some((&e.text, &e.mentions, &e.grounding, &e.verdict)),
            Answer::Recorded(r) => Some((&r.text, &r.mentions, &r.grounding, &r.verdict)),
            Answer::Missing(_) => None,
        }
    }

    /// Measured here, or recorded in the file.
    pub fn latency_ms(&self) -> Option<f64> {
        match self {
            Answer::Generated(e) => Some(e.latency_ms),
            Answer::Recorded(r) => r.latency_ms,
            Answer::Missing(_) => None,
        }
    }

    pub fn generated(&self) -> Option<&Explanation> {
        match self {
            Answer::Generated(e) => Some(e),
            _ => None,
        }
    }
}

/// One system's answer for the current request.
#[derive(Clone, Debug)]
pub enum Gen {
    Idle,
    Running { since: Duration, text: String },
    Done(Answer),
    Failed(String),
}

/// Where a column's explanations come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// A checkpoint directory, generating live with this kind's prompt.
    Model { dir: PathBuf, kind: PromptKind },
    /// Precomputed explanations (`file:PATH`, optionally `#MODEL`).
    File { path: PathBuf, model: Option<String> },
}

impl Source {
    /// Where it loads from, for people.
    pub fn location(&self) -> String {
        match self {
            Source::Model { dir, .. } => dir.display().to_string(),
            Source::File { path, model: Some(model) } => format!("file:{}#{model}", path.display()),
            Source::File { path, model: None } => format!("file:{}", path.display()),
        }
    }
}

/// The pane of the Oracle and of the Prism; `[models.extra]` systems follow in name order.
pub const ORACLE: usize = 0;
pub const PRISM: usize = 1;

/// How many recent explanations the rolling means cover.
pub const ROLLING: usize = 20;

/// The narrowest a comparison column may be: below it the stats and verdict lines wrap into more
/// rows than the panel has at 80×24.
pub const MIN_COLUMN_WIDTH: u16 = 40;

/// One column of the comparison: a system and its latest answer.
pub struct Pane {
    /// "Oracle", "Prism", or the `[models.extra]` name.
    pub name: String,
    pub source: Source,
    pub model: Loadable<ModelInfo>,
    pub gen: Gen,
    pub scroll: u16,
    /// Latencies of every completed explanation, oldest first.
    pub latencies: Vec<f64>,
    /// The last completed explanation (kept while the next one runs, for the performance panel).
    pub last: Option<Box<Explanation>>,
    /// The largest of the completed generations' own memory peaks (`GenStats::generation_peak_bytes`).
    pub generation_peak_bytes: u64,
}

impl Pane {
    fn new(name: &str, source: Source) -> Pane {
        Pane {
            name: name.to_owned(),
            source,
            model: Loadable::Loading,
            gen: Gen::Idle,
            scroll: 0,
            latencies: Vec::new(),
            last: None,
            generation_peak_bytes: 0,
        }
    }

    pub fn rolling_latency(&self) -> Option<f64> {
        let recent = &self.latencies[self.latencies.len().saturating_sub(ROLLING)..];
        (!recent.is_empty()).then(|| recent.iter().sum::<f64>() / recent.len() as f64)
    }

    /// The model's own memory: its weights as loaded and its largest generation peak; `None`
    /// until it is loaded and has generated once.
    pub fn model_memory(&self) -> Option<u64> {
        let info = self.model.ready()?;
        self.last.as_ref()?;
        Some(info.param_bytes as u64 + self.generation_peak_bytes)
    }
}

/// The item every system explains.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub user: String,
    pub item: String,
    pub title: String,
}

/// Every column, the request they answer, and which of them are shown.
pub struct Comparison {
    /// The Oracle's, the Prism's, then one per `[models.extra]` system.
    pub panes: Vec<Pane>,
    /// Which of the columns after the Oracle's comes first when not all fit (key `x` moves it).
    pub column_offset: usize,
    pub target: Option<Target>,
    /// The explanation request the panes answer; 0 for none.
    pub req: u64,
}

impl Comparison {
    /// The Oracle's and the Prism's panes, then one per extra system.
    pub fn new(oracle: PathBuf, prism: PathBuf, extra: Vec<ExtraSystem>) -> Comparison {
        let mut panes = vec![
            Pane::new("Oracle", Source::Model { dir: oracle, kind: PromptKind::Oracle }),
            Pane::new("Prism", Source::Model { dir: prism, kind: PromptKind::Prism }),
        ];
        for system in extra {
            let source = match system.source {
                ExtraSource::Model(dir) => Source::Model { dir, kind: PromptKind::Prism },
                ExtraSource::File { path, model } => Source::File { path, model },
            };
            panes.push(Pane::new(&system.name, source));
        }
        Comparison { panes, column_offset: 0, target: None, req: 0 }
    }

    /// The panes shown side by side on a screen `width` columns wide: as many as fit at
    /// [`MIN_COLUMN_WIDTH`] (at least two), the Oracle's first, the others from `column_offset`
    /// on, in turn.
    pub fn columns(&self, width: u16) -> Vec<usize> {
        let others = self.panes.len() - 1;
        let slots = usize::from(width / MIN_COLUMN_WIDTH).clamp(2, self.panes.len());
        let mut shown = vec![ORACLE];
        shown.extend((0..slots - 1).map(|k| 1 + (self.column_offset + k) % others));
        shown
    }

    /// Shows the next system that does not fit; `Err` says why nothing changed.
    pub fn next_system(&mut self, width: u16) -> Result<(), &'static str> {
        if self.columns(width).len() == self.panes.len() {
            return Err(if self.panes.len() > 2 {
                "every system is shown"
            } else {
                "no other system: add one under [models.extra] in the config"
            });
        }
        self.column_offset = (self.column_offset + 1) % (self.panes.len() - 1);
        Ok(())
    }

    pub fn on_model(&mut self, pane: usize, result: Result<ModelInfo, String>) {
        if let Some(pane) = self.panes.get_mut(pane) {
            pane.model = match result {
                Ok(info) => Loadable::Ready(info),
                Err(message) => Loadable::Failed(message),
            };
        }
    }

    /// No request: every column idle, and answers to earlier requests dropped.
    pub fn reset(&mut self) {
        self.req = 0;
        self.target = None;
        for pane in &mut self.panes {
            pane.gen = Gen::Idle;
            pane.scroll = 0;
        }
    }

    /// Request `req` asks every column to explain `target`; a column whose system failed to load
    /// says so at once.
    pub fn start(&mut self, req: u64, target: Target, now: Duration) {
        self.req = req;
        self.target = Some(target);
        for pane in &mut self.panes {
            pane.scroll = 0;
            pane.gen = match &pane.model {
                Loadable::Failed(message) => Gen::Failed(message.clone()),
                _ => Gen::Running { since: now, text: String::new() },
            };
        }
    }

    /// Text streamed so far for request `req`.
    pub fn on_text(&mut self, req: u64, pane: usize, text: String) {
        if req != self.req {
            return;
        }
        if let Some(Gen::Running { text: shown, .. }) = self.panes.get_mut(pane).map(|p| &mut p.gen) {
            *shown = text;
        }
    }

    /// A column's answer to request `req`; whether it was the current request's.
    pub fn on_explained(&mut self, req: u64, pane: usize, result: Result<Answer, String>) -> bool {
        if req != self.req {
            return false;
        }
        let Some(pane) = self.panes.get_mut(pane) else { return false };
        match result {
            Ok(answer) => {
                if let Answer::Generated(explanation) = &answer {
                    pane.latencies.push(explanation.latency_ms);
                    pane.generation_peak_bytes =
                        pane.generation_peak_bytes.max(explanation.stats.generation_peak_bytes);
                    pane.last = Some(explanation.clone());
                }
                pane.gen = Gen::Done(answer);
            }
            Err(message) => pane.gen = Gen::Failed(message),
        }
        true
    }

    /// The finished generation of `pane` for the current request.
    pub fn generated(&self, pane: usize) -> Option<&Explanation> {
        match &self.panes.get(pane)?.gen {
            Gen::Done(answer) => answer.generated(),
            _ => None,
        }
    }

    pub fn scroll(&mut self, pane: usize, delta: isize) {
        if let Some(pane) = self.panes.get_mut(pane) {
            pane.scroll = (pane.scroll as isize).saturating_add(delta).clamp(0, u16::MAX as isize) as u16;
        }
    }

    /// Draws column `index` at `now` on a screen `width` columns wide.
    pub fn draw(&self, chrome: Chrome<'_>, frame: &mut Frame, rect: Rect, index: usize, now: Duration) {
        let t = chrome.theme;
        let Some(pane) = self.panes.get(index) else { return };
        let style = match index {
            ORACLE => t.oracle,
            PRISM => t.prism,
            _ => t.title,
        };
        let mut title = vec![Span::styled(format!(" {} ", pane.name), style)];
        if let Loadable::Ready(info) = &pane.model {
            let what = if info.param_bytes > 0 {
                format!("{} · {} ", info.architecture, megabytes(info.param_bytes as f64))
            } else {
                format!("{} ", info.architecture)
            };
            title.push(Span::styled(what, t.dim));
        }
        match &pane.gen {
            Gen::Running { since, .. } => {
                let elapsed = now.saturating_sub(*since).as_secs_f64() * 1000.0;
                title.push(Span::styled(format!("⏱ {} ", ms(elapsed)), t.warn));
            }
            Gen::Done(answer @ (Answer::Generated(_) | Answer::Recorded(_))) => {
                let latency = answer.latency_ms().map(|l| format!(" {}", ms(l))).unwrap_or_default();
                title.push(Span::styled(format!("✓{latency} "), t.ok));
            }
            _ => {}
        }
        let shown = self.columns(frame.area().width);
        if index != ORACLE && shown.len() < self.panes.len() {
            title.push(Span::styled(format!("x: {}/{} ", index, self.panes.len() - 1), t.key));
        }
        let outer = chrome.block(Line::from(title));
        let inner = outer.inner(rect);
        frame.render_widget(outer, rect);
        if let Loadable::Failed(message) = &pane.model {
            let what = format!("Cannot load {} from {}", pane.name, pane.source.location());
            frame.render_widget(chrome.error_text(&what, message), inner);
            return;
        }
        match &pane.gen {
            Gen::Idle => {
                let hint = match (&self.target, pane.model.ready()) {
                    (_, None) => "loading…",
                    (None, _) => "choose a user and an item",
                    _ => "",
                };
                frame.render_widget(Paragraph::new(hint).style(t.dim), inner);
            }
            Gen::Running { text, .. } => {
                let shown = if text.is_empty() && pane.model.ready().is_none() {
                    "loading…".to_owned()
                } else {
                    format!("{text}▌")
                };
                let para =
                    Paragraph::new(shown).style(t.text).wrap(Wrap { trim: false }).scroll((pane.scroll, 0));
                frame.render_widget(para, inner);
            }
            Gen::Failed(message) => {
                frame.render_widget(chrome.error_text("Generation failed", message), inner);
            }
            Gen::Done(answer) => {
                let Some((text, mentions, grounding, verdict)) = answer.shown() else {
                    let Answer::Missing(message) = answer else { return };
                    let para = Paragraph::new(message.as_str()).style(t.dim).wrap(Wrap { trim: false });
                    frame.render_widget(para, inner);
                    return;
                };
                let mut lines = stats(t, answer, grounding, verdict, inner.height >= 12);
                let warning = truncation_warning(pane, answer);
                let rows =
                    |lines: &[Line<'_>]| lines.iter().map(|l| wrapped_rows(l, inner.width)).sum::<u16>();
                if let Some(warning) = &warning {
                    lines.insert(0, Line::styled(format!("⚠ {warning}"), t.warn));
                }
                // The text keeps at least two rows; the stats go when they would leave it less, but
                // a cut prompt is said as long as it fits.
                if inner.height < rows(&lines) + 2 && warning.is_some() {
                    lines.truncate(1);
                }
                let needed = rows(&lines);
                let stats_height = if inner.height >= needed + 2 { needed } else { 0 };
                let [text_rect, stats_rect] =
                    Layout::vertical([Constraint::Min(0), Constraint::Length(stats_height)]).areas(inner);
                let para = Paragraph::new(coloured(t, text, mentions))
                    .wrap(Wrap { trim: false })
                    .scroll((pane.scroll, 0));
                frame.render_widget(para, text_rect);
                if stats_height > 0 {
                    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), stats_rect);
                }
            }
        }
    }
}

/// The warning the command line prints when the prompt of a generated answer was cut to the
/// model's input length.
fn truncation_warning(pane: &Pane, answer: &Answer) -> Option<String> {
    let (Answer::Generated(e), Source::Model { kind, .. }) = (answer, &pane.source) else { return None };
    e.truncation_warning(*kind, pane.model.ready()?.max_input_tokens?)
}

/// The text with each mention styled by its grounding class.
fn coloured<'a>(t: &Theme, text: &'a str, mentions: &[MentionRecord]) -> Line<'a> {
    let mut spans = Vec::new();
    let mut at = 0;
    let mut mentions: Vec<_> = mentions.iter().filter(|m| m.end <= text.len() && m.start < m.end).collect();
    mentions.sort_by_key(|m| m.start);
    for m in mentions {
        if m.start < at || !text.is_char_boundary(m.start) || !text.is_char_boundary(m.end) {
            continue;
        }
        spans.push(Span::styled(&text[at..m.start], t.text));
        spans.push(Span::styled(&text[m.start..m.end], t.mention(m.class)));
        at = m.end;
    }
    spans.push(Span::styled(&text[at..], t.text));
    Line::from(spans)
}

/// Measurements (the model's weights and peak memory only when `roomy`), grounding counts and
/// the verdict.
fn stats(t: &Theme, answer: &Answer, g: &Summary, verdict: &Verdict, roomy: bool) -> Vec<Line<'static>> {
    let class =
        |class: Class, label: &str, n: usize| Span::styled(format!("■ {label} {n} "), t.mention(class));
    let mut lines = Vec::new();
    match answer {
        Answer::Generated(e) => {
            lines.push(Line::styled(
                format!("{} · TTFT {} · {:.1} tok/s", ms(e.latency_ms), ms(e.ttft_ms), e.tokens_per_s),
                t.text,
            ));
            if roomy {
                lines.push(Line::styled(
                    format!(
                        "{} tok · weights {} · peak {}",
                        e.new_tokens,
                        megabytes(e.param_bytes as f64),
                        megabytes(e.peak_rss_bytes as f64)
                    ),
                    t.dim,
                ));
            }
        }
        Answer::Recorded(r) => lines.push(match r.latency_ms {
            Some(latency) => Line::styled(format!("recorded latency {}", ms(latency)), t.text),
            None => Line::styled("no recorded latency", t.dim),
        }),
        Answer::Missing(_) => {}
    }
    lines.push(Line::from(vec![
        class(Class::Grounded, "grounded", g.grounded.len()),
        class(Class::ItemOnly, "item", g.item_only.len()),
        class(Class::HistoryOnly, "history", g.history_only.len()),
        class(Class::Invented, "invented", g.invented.len()),
    ]));
    lines.push(verdict_line(t, verdict));
    lines
}

/// "title ✓ · invented 1 · misattributed 1 (genre)": what a reader would find wrong, at a glance.
pub fn verdict_line(t: &Theme, v: &Verdict) -> Line<'static> {
    let (mark, mark_style) = if v.title_named { ("✓", t.ok) } else { ("✗", t.error) };
    let count = |n: usize| if n > 0 { t.error } else { t.ok };
    let mut misattributed = v.misattributed.len().to_string();
    if !v.misattributed.is_empty() {
        misattributed.push_str(&format!(" ({})", v.misattributed.join(", ")));
    }
    Line::from(vec![
        Span::styled("title ", t.dim),
        Span::styled(mark, mark_style),
        Span::styled(" · invented ", t.dim),
        Span::styled(v.invented().to_string(), count(v.invented())),
        Span::styled(" · misattributed ", t.dim),
        Span::styled(misattributed, count(v.misattributed.len())),
    ])
}

/// Rows `line` takes when word-wrapped to `width` (greedy, as ratatui's wrapping).
fn wrapped_rows(line: &Line<'_>, width: u16) -> u16 {
    let width = usize::from(width.max(1));
    let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
    let (mut rows, mut current) = (1usize, 0usize);
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let w = Span::raw(word).width();
        if current > 0 && current + 1 + w <= width {
            current += 1 + w;
        } else {
            if current > 0 {
                rows += 1;
            }
            rows += (w - 1) / width;
            current = (w - 1) % width + 1;
        }
    }
    u16::try_from(rows).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_rows_counts_greedy_word_wrapping() {
        let line = Line::raw("■ grounded 1 ■ item 1 ■ history 0 ■ invented 1");
        assert_eq!(wrapped_rows(&line, 80), 1);
        assert_eq!(wrapped_rows(&line, 38), 2);
        assert_eq!(wrapped_rows(&Line::raw("abcdefghij"), 4), 3);
        assert_eq!(wrapped_rows(&Line::raw("abcd e"), 4), 2);
        assert_eq!(wrapped_rows(&Line::raw(""), 10), 1);
    }
}

//! One column of the comparison (the Oracle, the Prism or a `[models.extra]` system): the
//! explanation as it streams in, then coloured by grounding, with its measurements, grounding
//! counts and a one-line verdict (title named, invented, misattributed) underneath.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::{block, error_text, megabytes, ms};
use crate::explain::grounding::Class;
use crate::explain::{MentionRecord, Summary, Verdict};
use crate::tui::app::{Answer, App, Gen, Loadable, ORACLE, PRISM};
use crate::tui::layout::Panel;
use crate::tui::theme::Theme;

pub fn pane(app: &App, frame: &mut Frame, rect: Rect, index: usize) {
    let t = &app.theme;
    let Some(pane) = app.panes.get(index) else { return };
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
            let elapsed = app.now.saturating_sub(*since).as_secs_f64() * 1000.0;
            title.push(Span::styled(format!("⏱ {} ", ms(elapsed)), t.warn));
        }
        Gen::Done(answer @ (Answer::Generated(_) | Answer::Recorded(_))) => {
            let latency = answer.latency_ms().map(|l| format!(" {}", ms(l))).unwrap_or_default();
            title.push(Span::styled(format!("✓{latency} "), t.ok));
        }
        _ => {}
    }
    let shown = app.columns(frame.area().width);
    if index != ORACLE && shown.len() < app.panes.len() {
        title.push(Span::styled(format!("x: {}/{} ", index, app.panes.len() - 1), t.key));
    }
    let outer = block(app, Line::from(title), Panel::Pane(index));
    let inner = outer.inner(rect);
    frame.render_widget(outer, rect);
    if let Loadable::Failed(message) = &pane.model {
        let what = format!("Cannot load {} from {}", pane.name, pane.source.location());
        frame.render_widget(error_text(app, &what, message), inner);
        return;
    }
    match &pane.gen {
        Gen::Idle => {
            let hint = match (&app.target, pane.model.ready()) {
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
            frame.render_widget(error_text(app, "Generation failed", message), inner);
        }
        Gen::Done(answer) => {
            let Some((text, mentions, grounding, verdict)) = answer.shown() else {
                let Answer::Missing(message) = answer else { return };
                let para = Paragraph::new(message.as_str()).style(t.dim).wrap(Wrap { trim: false });
                frame.render_widget(para, inner);
                return;
            };
            let lines = stats(t, answer, grounding, verdict, inner.height >= 12);
            let needed: u16 = lines.iter().map(|l| wrapped_rows(l, inner.width)).sum();
            // The text keeps at least two rows; the stats go when they would leave it less.
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
pub(super) fn verdict_line(t: &Theme, v: &Verdict) -> Line<'static> {
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

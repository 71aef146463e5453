//! One side of Oracle vs Prism: the explanation as it streams in, then coloured by grounding, with
//! its measurements underneath.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::{block, error_text, megabytes, ms};
use crate::explain::grounding::Class;
use crate::explain::{Explanation, PromptKind};
use crate::tui::app::{App, Gen, Loadable};
use crate::tui::layout::Panel;

pub fn pane(app: &App, frame: &mut Frame, rect: Rect, kind: PromptKind) {
    let t = &app.theme;
    let pane = app.pane(kind);
    let (name, style, panel) = match kind {
        PromptKind::Oracle => ("Oracle", t.oracle, Panel::Oracle),
        PromptKind::Prism => ("Prism", t.prism, Panel::Prism),
    };
    let mut title = vec![Span::styled(format!(" {name} "), style)];
    if let Loadable::Ready(info) = &pane.model {
        title.push(Span::styled(
            format!("{} · {} ", info.architecture, megabytes(info.param_bytes as f64)),
            t.dim,
        ));
    }
    match &pane.gen {
        Gen::Running { since, .. } => {
            let elapsed = app.now.saturating_sub(*since).as_secs_f64() * 1000.0;
            title.push(Span::styled(format!("⏱ {} ", ms(elapsed)), t.warn));
        }
        Gen::Done(e) => title.push(Span::styled(format!("✓ {} ", ms(e.latency_ms)), t.ok)),
        _ => {}
    }
    let outer = block(app, Line::from(title), panel);
    let inner = outer.inner(rect);
    frame.render_widget(outer, rect);
    if let Loadable::Failed(message) = &pane.model {
        let what = format!("Cannot load the {name} from {}", pane.dir.display());
        frame.render_widget(error_text(app, &what, message), inner);
        return;
    }
    let stats_height = if inner.height >= 8 { 4 } else { 0 };
    let [text_rect, stats_rect] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(stats_height)]).areas(inner);
    match &pane.gen {
        Gen::Idle => {
            let hint = match (&app.target, pane.model.ready()) {
                (_, None) => "loading the model…",
                (None, _) => "choose a user and an item",
                _ => "",
            };
            frame.render_widget(Paragraph::new(hint).style(t.dim), text_rect);
        }
        Gen::Running { text, .. } => {
            let shown = if text.is_empty() && pane.model.ready().is_none() {
                "loading the model…".to_owned()
            } else {
                format!("{text}▌")
            };
            let para =
                Paragraph::new(shown).style(t.text).wrap(Wrap { trim: false }).scroll((pane.scroll, 0));
            frame.render_widget(para, text_rect);
        }
        Gen::Failed(message) => {
            frame.render_widget(error_text(app, "Generation failed", message), text_rect);
        }
        Gen::Done(e) => {
            let para = Paragraph::new(coloured(app, e)).wrap(Wrap { trim: false }).scroll((pane.scroll, 0));
            frame.render_widget(para, text_rect);
            if stats_height > 0 {
                frame.render_widget(Paragraph::new(stats(app, e)).wrap(Wrap { trim: true }), stats_rect);
            }
        }
    }
}

/// The text with each mention styled by its grounding class.
fn coloured<'a>(app: &App, e: &'a Explanation) -> Line<'a> {
    let t = &app.theme;
    let mut spans = Vec::new();
    let mut at = 0;
    let mut mentions: Vec<_> =
        e.mentions.iter().filter(|m| m.end <= e.text.len() && m.start < m.end).collect();
    mentions.sort_by_key(|m| m.start);
    for m in mentions {
        if m.start < at || !e.text.is_char_boundary(m.start) || !e.text.is_char_boundary(m.end) {
            continue;
        }
        spans.push(Span::styled(&e.text[at..m.start], t.text));
        spans.push(Span::styled(&e.text[m.start..m.end], t.mention(m.class)));
        at = m.end;
    }
    spans.push(Span::styled(&e.text[at..], t.text));
    Line::from(spans)
}

fn stats<'a>(app: &App, e: &Explanation) -> Vec<Line<'a>> {
    let t = &app.theme;
    let g = &e.grounding;
    let class =
        |class: Class, label: &str, n: usize| Span::styled(format!("■ {label} {n} "), t.mention(class));
    vec![
        Line::styled(
            format!("{} · TTFT {} · {:.1} tok/s", ms(e.latency_ms), ms(e.ttft_ms), e.tokens_per_s),
            t.text,
        ),
        Line::styled(
            format!(
                "{} tok · weights {} · peak {}",
                e.new_tokens,
                megabytes(e.param_bytes as f64),
                megabytes(e.peak_rss_bytes as f64)
            ),
            t.dim,
        ),
        Line::from(vec![
            class(Class::Grounded, "grounded", g.grounded.len()),
            class(Class::ItemOnly, "item", g.item_only.len()),
            class(Class::HistoryOnly, "history", g.history_only.len()),
            class(Class::Invented, "invented", g.invented.len()),
        ]),
    ]
}

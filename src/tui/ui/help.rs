//! The help overlay: every binding from the key table, in two columns when they do not fit in one,
//! and the grounding colours.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::centered;
use crate::explain::grounding::Class;
use crate::tui::app::App;

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    let bindings = &app.keys.bindings;
    let legend = Line::from(vec![
        Span::styled("■ grounded ", t.mention(Class::Grounded)),
        Span::styled("■ item-only ", t.mention(Class::ItemOnly)),
        Span::styled("■ history-only ", t.mention(Class::HistoryOnly)),
        Span::styled("■ invented", t.mention(Class::Invented)),
    ]);
    let width = area.width.saturating_sub(4).min(120);
    let one_column = bindings.len() as u16 + 6 <= area.height;
    let per_column = if one_column { bindings.len() } else { bindings.len().div_ceil(2) };
    let rect = centered(area, width, per_column as u16 + 6);
    frame.render_widget(Clear, rect);
    let block = Block::default().borders(Borders::ALL).title(" Help — any key closes ").title_style(t.title);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let [body, _, footer] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(1), Constraint::Length(2)]).areas(inner);
    let columns = if one_column {
        vec![body]
    } else {
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).split(body).to_vec()
    };
    for (column, chunk) in columns.iter().zip(bindings.chunks(per_column.max(1))) {
        let lines: Vec<Line> = chunk
            .iter()
            .map(|b| {
                Line::from(vec![
                    Span::styled(format!("{:<12}", app.keys.keys_label(b.action)), t.key),
                    Span::styled(b.help, t.text),
                ])
            })
            .collect();
        frame.render_widget(Paragraph::new(lines), *column);
    }
    let footer_lines =
        vec![Line::styled("Mouse: click selects, wheel scrolls. Rebind in [tui.keys].", t.dim), legend];
    frame.render_widget(Paragraph::new(footer_lines), footer);
}

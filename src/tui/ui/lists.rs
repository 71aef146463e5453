//! The three list panels: users (with the filter line), the selected user's history, and the
//! ranker's top-K.

use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table};
use ratatui::Frame;

use super::{block, error_text};
use crate::tui::app::{App, Loadable};
use crate::tui::layout::{list_offset, list_rows, Panel};

/// Draws `rows` (already cells) from the offset that keeps `selected` visible, with a header line.
fn table(
    app: &App,
    frame: &mut Frame,
    rect: Rect,
    header: Option<Row<'_>>,
    rows: Vec<Vec<String>>,
    widths: &[Constraint],
    selected: usize,
) {
    let t = &app.theme;
    let body = list_rows(rect);
    let height = body.height as usize;
    let offset = list_offset(selected, height);
    let visible = rows.into_iter().enumerate().skip(offset).take(height).map(|(i, cells)| {
        let style = if i == selected { t.selected } else { t.text };
        Row::new(cells).style(style)
    });
    let table = Table::new(visible, widths).column_spacing(1);
    match header {
        // The header row sits on the line `list_rows` leaves above the body.
        Some(header) => {
            let area = Rect { y: rect.y + 1, height: body.height + 1, ..body };
            frame.render_widget(table.header(header.style(t.dim)), area);
        }
        None => frame.render_widget(table, body),
    }
}

pub fn users(app: &App, frame: &mut Frame, rect: Rect) {
    let t = &app.theme;
    let count = app.data.ready().map(|d| format!(" {}/{}", app.visible.len(), d.users.len()));
    let title = format!(" Users{} ", count.unwrap_or_default());
    frame.render_widget(block(app, title, Panel::Users), rect);
    match &app.data {
        Loadable::Loading => {
            frame.render_widget(Paragraph::new("loading the dataset…").style(t.dim), list_rows(rect));
        }
        Loadable::Failed(message) => {
            let inner = Rect { y: rect.y + 1, height: rect.height - 2, ..list_rows(rect) };
            frame.render_widget(error_text(app, "Cannot open the dataset", message), inner);
        }
        Loadable::Ready(data) => {
            let header_rect = Rect { height: 1, y: rect.y + 1, ..list_rows(rect) };
            let filter = if app.filtering || !app.filter.is_empty() {
                let cursor = if app.filtering { "▏" } else { "" };
                Line::from(vec![
                    Span::styled("/", t.key),
                    Span::styled(format!("{}{cursor}", app.filter), t.text),
                ])
            } else {
                Line::styled("/ to filter", t.dim)
            };
            let rows = app
                .visible
                .iter()
                .map(|&i| vec![data.users[i].id.clone(), data.users[i].history_len.to_string()])
                .collect();
            let widths = [Constraint::Min(6), Constraint::Length(4)];
            frame.render_widget(Paragraph::new(filter), header_rect);
            table(app, frame, rect, None, rows, &widths, app.user_sel);
        }
    }
}

pub fn history(app: &App, frame: &mut Frame, rect: Rect) {
    let title = match &app.user {
        Some(user) => format!(" History of {user} ({}) ", app.history.len()),
        None => " History ".to_owned(),
    };
    frame.render_widget(block(app, title, Panel::History), rect);
    let header = Some(Row::new(["title", "★", "date", "features"]));
    let rows = app
        .history
        .iter()
        .rev()
        .map(|h| vec![h.title.clone(), format!("{:.1}", h.rating), h.date.clone(), h.features.clone()])
        .collect();
    let widths = [Constraint::Fill(2), Constraint::Length(3), Constraint::Length(10), Constraint::Fill(1)];
    table(app, frame, rect, header, rows, &widths, app.history_sel);
}

pub fn ranked(app: &App, frame: &mut Frame, rect: Rect) {
    let t = &app.theme;
    let title = format!(" Top {} · {} ", app.ranked_rows().len(), app.ranker_name());
    frame.render_widget(block(app, title, Panel::Ranked), rect);
    match &app.ranked {
        Loadable::Loading if app.user.is_some() => {
            let line = if app.rank_progress.is_empty() {
                "ranking…".to_owned()
            } else {
                app.rank_progress.clone()
            };
            frame.render_widget(Paragraph::new(line).style(t.dim), list_rows(rect));
        }
        Loadable::Loading => {}
        Loadable::Failed(message) => {
            let inner = Rect { y: rect.y + 1, height: rect.height - 2, ..list_rows(rect) };
            frame.render_widget(error_text(app, "Cannot rank", message), inner);
        }
        Loadable::Ready(rows) => {
            let header = Some(Row::new(["#", "score", "title", "features"]));
            let cells = rows
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    vec![
                        format!("{:>2}", i + 1),
                        format!("{:.3}", r.score),
                        r.title.clone(),
                        r.features.clone(),
                    ]
                })
                .collect();
            let widths =
                [Constraint::Length(2), Constraint::Length(5), Constraint::Fill(2), Constraint::Fill(1)];
            table(app, frame, rect, header, cells, &widths, app.ranked_sel);
        }
    }
}

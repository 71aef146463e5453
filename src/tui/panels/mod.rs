//! The explorer's panels, one component per file in the manner of gitui's: each holds its own
//! state, the handling of the events that concern only it, and its drawing. They know nothing of
//! `App`, which composes them (`tui::app`) and is drawn by `tui::render`; what a panel needs to
//! draw beyond its own state comes in as arguments, with the look shared by all in [`Chrome`].

pub mod about;
pub mod compare;
pub mod history;
pub mod jobs;
pub mod performance;
pub mod popup;
pub mod ranked;
pub mod users;

use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, BorderType, Borders, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

use super::keys::KeyMap;
use super::layout::{list_offset, list_rows};
use super::theme::Theme;

/// Something that is being loaded, is there, or could not be had (with a message for people).
#[derive(Clone, Debug, PartialEq)]
pub enum Loadable<T> {
    Loading,
    Ready(T),
    Failed(String),
}

impl<T> Loadable<T> {
    pub fn ready(&self) -> Option<&T> {
        match self {
            Loadable::Ready(value) => Some(value),
            _ => None,
        }
    }
}

/// What every panel draws with: the colours, the bindings (for the keys a panel names) and
/// whether the panel has the focus.
#[derive(Clone, Copy)]
pub struct Chrome<'a> {
    pub theme: &'a Theme,
    pub keys: &'a KeyMap,
    pub focused: bool,
}

impl<'a> Chrome<'a> {
    /// A bordered block, highlighted when focused.
    pub fn block<'b>(&self, title: impl Into<Line<'b>>) -> Block<'b> {
        let t = self.theme;
        Block::default()
            .borders(Borders::ALL)
            .border_type(if self.focused { BorderType::Thick } else { BorderType::Plain })
            .border_style(if self.focused { t.border_focused } else { t.border })
            .title(title)
            .title_style(t.title)
    }

    /// A readable error in place of a panel's content.
    pub fn error_text<'b>(&self, what: &str, message: &str) -> Paragraph<'b> {
        let t = self.theme;
        Paragraph::new(vec![
            Line::styled(format!("✗ {what}"), t.error),
            Line::raw(""),
            Line::styled(message.to_owned(), t.text),
        ])
        .wrap(Wrap { trim: false })
    }

    /// Draws `rows` (already cells) from the offset that keeps `selected` visible, with a header line.
    pub fn table(
        &self,
        frame: &mut Frame,
        rect: Rect,
        header: Option<Row<'_>>,
        rows: Vec<Vec<String>>,
        widths: &[Constraint],
        selected: usize,
    ) {
        let t = self.theme;
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
}

/// Moves a selection `at` in a list of `len` rows by `delta`, staying inside it.
pub fn shift(at: usize, len: usize, delta: isize) -> usize {
    if len == 0 {
        return 0;
    }
    (at as isize).saturating_add(delta).clamp(0, len as isize - 1) as usize
}

/// A rectangle of at most `width`×`height` centred in `area`.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect { x: area.x + (area.width - width) / 2, y: area.y + (area.height - height) / 2, width, height }
}

/// Milliseconds for people: "830 ms", "2.4 s".
pub fn ms(value: f64) -> String {
    if value >= 1000.0 {
        format!("{:.1} s", value / 1000.0)
    } else {
        format!("{value:.0} ms")
    }
}

pub fn megabytes(bytes: f64) -> String {
    if bytes >= 1e9 {
        format!("{:.2} GB", bytes / 1e9)
    } else if bytes >= 1e8 {
        format!("{:.0} MB", bytes / 1e6)
    } else {
        format!("{:.1} MB", bytes / 1e6)
    }
}

//! The history panel: what the selected user rated, newest first, with a selection to move over it.

use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::Row;
use ratatui::Frame;

use super::{shift, Chrome};

#[derive(Clone, Debug, PartialEq)]
pub struct HistoryRow {
    pub title: String,
    pub features: String,
    pub rating: f32,
    pub date: String,
}

#[derive(Default)]
pub struct History {
    /// The user whose history (and ranking) is shown.
    pub user: Option<String>,
    pub rows: Vec<HistoryRow>,
    pub sel: usize,
}

impl History {
    /// The rows of the user asked for last arrived.
    pub fn show(&mut self, rows: Vec<HistoryRow>) {
        self.rows = rows;
        self.sel = 0;
    }

    pub fn move_by(&mut self, delta: isize) {
        self.sel = shift(self.sel, self.rows.len(), delta);
    }

    pub fn draw(&self, chrome: Chrome<'_>, frame: &mut Frame, rect: Rect) {
        let title = match &self.user {
            Some(user) => format!(" History of {user} ({}) ", self.rows.len()),
            None => " History ".to_owned(),
        };
        frame.render_widget(chrome.block(title), rect);
        let header = Some(Row::new(["title", "★", "date", "features"]));
        let rows = self
            .rows
            .iter()
            .rev()
            .map(|h| vec![h.title.clone(), format!("{:.1}", h.rating), h.date.clone(), h.features.clone()])
            .collect();
        let widths =
            [Constraint::Fill(2), Constraint::Length(3), Constraint::Length(10), Constraint::Fill(1)];
        chrome.table(frame, rect, header, rows, &widths, self.sel);
    }
}

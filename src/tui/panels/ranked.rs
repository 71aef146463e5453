//! The ranked panel: the ranker's top-K for the selected user (or its progress while BPR trains),
//! and the selection whose item every system explains.

use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Paragraph, Row};
use ratatui::Frame;

use super::{shift, Chrome, Loadable};
use crate::tui::layout::list_rows;

#[derive(Clone, Debug, PartialEq)]
pub struct RankedRow {
    pub item: String,
    pub title: String,
    pub score: f32,
    pub features: String,
}

pub struct Ranked {
    pub rows: Loadable<Vec<RankedRow>>,
    /// One line of the ranker's progress while it is being built.
    pub progress: String,
    pub sel: usize,
}

impl Ranked {
    pub fn new() -> Ranked {
        Ranked { rows: Loadable::Loading, progress: String::new(), sel: 0 }
    }

    pub fn ready(&self) -> &[RankedRow] {
        self.rows.ready().map_or(&[], |r| r.as_slice())
    }

    pub fn selected(&self) -> Option<&RankedRow> {
        self.ready().get(self.sel)
    }

    /// A new ranking is asked for.
    pub fn reset(&mut self) {
        self.rows = Loadable::Loading;
        self.progress.clear();
    }

    /// The ranking asked for last arrived (or failed).
    pub fn show(&mut self, result: Result<Vec<RankedRow>, String>) {
        self.progress.clear();
        self.sel = 0;
        self.rows = match result {
            Ok(rows) => Loadable::Ready(rows),
            Err(message) => Loadable::Failed(message),
        };
    }

    /// Moves the selection by `delta` rows; whether it moved.
    pub fn move_by(&mut self, delta: isize) -> bool {
        let next = shift(self.sel, self.ready().len(), delta);
        let moved = next != self.sel;
        self.sel = next;
        moved
    }

    /// Draws the ranking of `ranker`; `asked` says whether a user's ranking is on its way.
    pub fn draw(&self, chrome: Chrome<'_>, frame: &mut Frame, rect: Rect, ranker: &str, asked: bool) {
        let t = chrome.theme;
        let title = format!(" Top {} · {ranker} ", self.ready().len());
        frame.render_widget(chrome.block(title), rect);
        match &self.rows {
            Loadable::Loading if asked => {
                let line =
                    if self.progress.is_empty() { "ranking…".to_owned() } else { self.progress.clone() };
                frame.render_widget(Paragraph::new(line).style(t.dim), list_rows(rect));
            }
            Loadable::Loading => {}
            Loadable::Failed(message) => {
                let inner = Rect { y: rect.y + 1, height: rect.height - 2, ..list_rows(rect) };
                frame.render_widget(chrome.error_text("Cannot rank", message), inner);
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
                chrome.table(frame, rect, header, cells, &widths, self.sel);
            }
        }
    }
}

impl Default for Ranked {
    fn default() -> Ranked {
        Ranked::new()
    }
}

//! The users panel: the dataset's users (what the data worker reports), the fuzzy filter typed
//! after `/`, and the selection among the users that pass it.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::{shift, Chrome, Loadable};
use crate::tui::layout::list_rows;

#[derive(Clone, Debug, PartialEq)]
pub struct UserRow {
    pub id: String,
    pub history_len: usize,
}

/// What the data worker reports once the dataset is open.
#[derive(Clone, Debug, PartialEq)]
pub struct DataView {
    pub name: String,
    pub description: String,
    pub synthetic: bool,
    pub items: usize,
    pub interactions: usize,
    pub users: Vec<UserRow>,
}

pub struct Users {
    pub data: Loadable<DataView>,
    pub filter: String,
    /// Whether keys type into the filter.
    pub filtering: bool,
    /// Indices into the data's users that pass the filter, best match first.
    pub visible: Vec<usize>,
    pub sel: usize,
}

/// What a key typed into the filter did.
#[derive(Debug, PartialEq, Eq)]
pub enum FilterKey {
    /// The filter changed: the selection may be another user.
    Changed,
    /// Enter: the filter is kept and the typing ends.
    Done,
    /// Not a key the filter takes.
    Ignored,
}

impl Users {
    pub fn new() -> Users {
        Users {
            data: Loadable::Loading,
            filter: String::new(),
            filtering: false,
            visible: Vec::new(),
            sel: 0,
        }
    }

    pub fn all(&self) -> &[UserRow] {
        self.data.ready().map_or(&[], |d| d.users.as_slice())
    }

    pub fn selected(&self) -> Option<&UserRow> {
        self.visible.get(self.sel).map(|&i| &self.all()[i])
    }

    /// Selects `user` where the filter shows it.
    pub fn select(&mut self, user: &str) {
        if let Some(pos) = self.visible.iter().position(|&i| self.all()[i].id == user) {
            self.sel = pos;
        }
    }

    /// The dataset arrived (or could not be opened).
    pub fn on_data(&mut self, result: Result<DataView, String>) {
        self.data = match result {
            Ok(view) => Loadable::Ready(view),
            Err(message) => Loadable::Failed(message),
        };
        self.refilter();
    }

    /// A key while typing the filter.
    pub fn on_filter_key(&mut self, key: KeyEvent) -> FilterKey {
        match key.code {
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => self.filter.push(c),
            KeyCode::Backspace => {
                self.filter.pop();
            }
            KeyCode::Esc => {
                self.filtering = false;
                self.filter.clear();
            }
            KeyCode::Enter => {
                self.filtering = false;
                return FilterKey::Done;
            }
            _ => return FilterKey::Ignored,
        }
        self.refilter();
        FilterKey::Changed
    }

    /// Moves the selection by `delta` rows; whether it moved.
    pub fn move_by(&mut self, delta: isize) -> bool {
        let next = shift(self.sel, self.visible.len(), delta);
        let moved = next != self.sel;
        self.sel = next;
        moved
    }

    /// Recomputes the visible users for the filter; the selection goes to the best match.
    pub fn refilter(&mut self) {
        let query = self.filter.trim().to_lowercase();
        let users = self.all();
        self.visible = if query.is_empty() {
            (0..users.len()).collect()
        } else {
            let mut scored: Vec<(i64, usize)> = users
                .iter()
                .enumerate()
                .filter_map(|(i, u)| fuzzy_score(&query, &u.id).map(|s| (s, i)))
                .collect();
            scored.sort_by_key(|&(score, i)| (std::cmp::Reverse(score), i));
            scored.into_iter().map(|(_, i)| i).collect()
        };
        self.sel = 0;
    }

    pub fn draw(&self, chrome: Chrome<'_>, frame: &mut Frame, rect: Rect) {
        let t = chrome.theme;
        let count = self.data.ready().map(|d| format!(" {}/{}", self.visible.len(), d.users.len()));
        let title = format!(" Users{} ", count.unwrap_or_default());
        frame.render_widget(chrome.block(title), rect);
        match &self.data {
            Loadable::Loading => {
                frame.render_widget(Paragraph::new("loading the dataset…").style(t.dim), list_rows(rect));
            }
            Loadable::Failed(message) => {
                let inner = Rect { y: rect.y + 1, height: rect.height - 2, ..list_rows(rect) };
                frame.render_widget(chrome.error_text("Cannot open the dataset", message), inner);
            }
            Loadable::Ready(data) => {
                let header_rect = Rect { height: 1, y: rect.y + 1, ..list_rows(rect) };
                let filter = if self.filtering || !self.filter.is_empty() {
                    let cursor = if self.filtering { "▏" } else { "" };
                    Line::from(vec![
                        Span::styled("/", t.key),
                        Span::styled(format!("{}{cursor}", self.filter), t.text),
                    ])
                } else {
                    Line::styled("/ to filter", t.dim)
                };
                let rows = self
                    .visible
                    .iter()
                    .map(|&i| vec![data.users[i].id.clone(), data.users[i].history_len.to_string()])
                    .collect();
                let widths = [Constraint::Min(6), Constraint::Length(4)];
                frame.render_widget(Paragraph::new(filter), header_rect);
                chrome.table(frame, rect, None, rows, &widths, self.sel);
            }
        }
    }
}

impl Default for Users {
    fn default() -> Users {
        Users::new()
    }
}

/// Scores `candidate` for `query` (both compared case-insensitively): `None` when the query's
/// characters are not all in it in order; an exact match beats a prefix, which beats a substring,
/// which beats a scattered subsequence (tighter is better).
pub fn fuzzy_score(query: &str, candidate: &str) -> Option<i64> {
    let candidate = candidate.to_lowercase();
    if candidate == query {
        return Some(1_000_000);
    }
    if candidate.starts_with(query) {
        return Some(500_000 - candidate.len() as i64);
    }
    if let Some(at) = candidate.find(query) {
        return Some(250_000 - at as i64 - candidate.len() as i64);
    }
    let mut chars = candidate.char_indices();
    let (mut first, mut last) = (None, 0);
    for q in query.chars() {
        let (at, _) = chars.by_ref().find(|&(_, c)| c == q)?;
        first.get_or_insert(at);
        last = at;
    }
    let span = last - first.unwrap_or(0);
    Some(100_000 - span as i64 * 100 - candidate.len() as i64)
}

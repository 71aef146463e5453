//! The popups over every screen: the help (every binding of the explorer from the key table, in
//! two columns when they do not fit in one, and the grounding colours) and a line of text being
//! typed (a job to attach, a study and an annotator to annotate as), with the keys they take.

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::{centered, Chrome};
use crate::explain::grounding::Class;
use crate::tui::keys::{Binding, Screen};

#[derive(Clone, Debug, PartialEq)]
pub enum Popup {
    Help,
    /// A line of text being typed, and what it is for.
    Input {
        purpose: InputPurpose,
        text: String,
    },
}

/// What a text prompt asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputPurpose {
    /// The directory (or events.jsonl) of a job to attach to.
    AttachJob,
    /// The directory of a human-evaluation study to annotate.
    Study,
    /// The annotator's name, for the study chosen before.
    Annotator(PathBuf),
}

impl InputPurpose {
    pub fn title(&self) -> &'static str {
        match self {
            InputPurpose::AttachJob => "Attach to a job",
            InputPurpose::Study | InputPurpose::Annotator(_) => "Annotate a study",
        }
    }

    pub fn question(&self) -> &'static str {
        match self {
            InputPurpose::AttachJob => "Job directory (or its events.jsonl):",
            InputPurpose::Study => "Study directory (made by `prism human-eval new`):",
            InputPurpose::Annotator(_) => "Your annotator name:",
        }
    }

    /// What Enter does, for the hint bar.
    pub fn verb(&self) -> &'static str {
        match self {
            InputPurpose::AttachJob => "attach",
            InputPurpose::Study => "next",
            InputPurpose::Annotator(_) => "annotate",
        }
    }
}

impl Popup {
    pub fn input(purpose: InputPurpose) -> Popup {
        Popup::Input { purpose, text: String::new() }
    }
}

/// What a key did to the text prompt on top.
#[derive(Debug, PartialEq, Eq)]
pub enum Typed {
    /// Still typing.
    Editing,
    /// Esc: the prompt is gone, nothing asked.
    Cancelled,
    /// Enter: the prompt is gone with its answer.
    Entered(InputPurpose, String),
}

/// A key for the text prompt `popup` (which the caller has checked is an input).
pub fn on_input_key(popup: &mut Popup, key: KeyEvent) -> Typed {
    let Popup::Input { purpose, text } = popup else { return Typed::Editing };
    match key.code {
        KeyCode::Char(c) => text.push(c),
        KeyCode::Backspace => {
            text.pop();
        }
        KeyCode::Esc => return Typed::Cancelled,
        KeyCode::Enter => return Typed::Entered(purpose.clone(), text.trim().to_owned()),
        _ => {}
    }
    Typed::Editing
}

pub fn draw(chrome: Chrome<'_>, frame: &mut Frame, area: Rect, popup: &Popup) {
    match popup {
        Popup::Help => help(chrome, frame, area),
        Popup::Input { purpose, text } => input(chrome, frame, area, purpose, text),
    }
}

fn help(chrome: Chrome<'_>, frame: &mut Frame, area: Rect) {
    let t = chrome.theme;
    let bindings: Vec<&Binding> = chrome.keys.on(Screen::Explorer).collect();
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
                    Span::styled(format!("{:<12}", chrome.keys.keys_label(b.action)), t.key),
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

fn input(chrome: Chrome<'_>, frame: &mut Frame, area: Rect, purpose: &InputPurpose, text: &str) {
    let t = chrome.theme;
    let rect = centered(area, 70, 5);
    frame.render_widget(Clear, rect);
    let lines = vec![
        Line::styled(purpose.question(), t.dim),
        Line::from(vec![Span::styled(format!("{text}▏"), t.text)]),
    ];
    let block =
        Block::default().borders(Borders::ALL).title(format!(" {} ", purpose.title())).title_style(t.title);
    frame.render_widget(Paragraph::new(lines).block(block).alignment(Alignment::Left), rect);
}

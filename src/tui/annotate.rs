//! The annotation screen of `prism human-eval resume` on a terminal. The session itself is
//! [`crate::humaneval::annotate`]'s pure state machine; this module adds only what a screen needs
//! on top of it: a cursor over the ratings grid (criterion × slot, then the preference row), the
//! note being typed and the help overlay ([`Ui`]), the translation of keys and clicks into the
//! machine's [`Event`]s ([`on_key`], [`on_mouse`]), the drawing ([`draw`]) and the loop ([`run`])
//! that appends (fsynced) every judgement before the next item is drawn.

use std::io::Stdout;

use anyhow::{Context as _, Result};
use crossterm::event::{
    self as term, KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Gauge, Paragraph, Wrap};
use ratatui::{Frame, Terminal};

use super::keys::{Action, KeyMap, Screen as KeyScreen};
use super::theme::Theme;
use crate::humaneval::annotate::{update, Event, Phase, Screen, Session};
use crate::humaneval::store::{Preference, Writer};
use crate::humaneval::{now_ms, slot_letter};

/// The most recent history titles shown.
const SHOWN_HISTORY: usize = 10;
/// Below this many columns per slot the explanations are stacked instead of side by side.
const MIN_SLOT_WIDTH: u16 = 30;

/// What the screen adds to the session: where the cursor is, the note being typed, the help.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ui {
    /// `0..criteria`: a criterion's row; `criteria`: the preference row.
    pub row: usize,
    /// A slot; on the preference row, `slots` is the tie.
    pub col: usize,
    /// The note being edited, until Enter records it or Esc drops it.
    pub note: Option<String>,
    pub help: bool,
    /// The item the cursor belongs to: a new item puts the cursor back at the top left.
    position: usize,
}

impl Ui {
    /// Follows the session to `screen`'s item.
    pub fn sync(&mut self, screen: &Screen<'_>) {
        if self.position != screen.position {
            *self = Ui { help: self.help, position: screen.position, ..Ui::default() };
        }
    }
}

/// Cells in grid row `row`: one per slot, and the tie on the preference row.
fn columns(row: usize, slots: usize, criteria: usize) -> usize {
    if row < criteria {
        slots
    } else {
        slots + 1
    }
}

fn slots_of(screen: &Screen<'_>) -> usize {
    screen.item.map_or(0, |i| i.slots().len())
}

/// The events `key` stands for on `screen` under the bindings `keys`, moving the cursor or editing
/// the note on the way.
pub fn on_key(ui: &mut Ui, keys: &KeyMap, key: KeyEvent, screen: &Screen<'_>) -> Vec<Event> {
    ui.sync(screen);
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && key.code == KeyCode::Char('c') {
        return vec![Event::Quit];
    }
    if ui.help {
        ui.help = false;
        return Vec::new();
    }
    if let Some(note) = &mut ui.note {
        match key.code {
            KeyCode::Enter => {
                let text = note.trim().to_owned();
                ui.note = None;
                return vec![Event::Note(text)];
            }
            KeyCode::Esc => ui.note = None,
            KeyCode::Backspace => {
                note.pop();
            }
            KeyCode::Char(c) if !ctrl => note.push(c),
            _ => {}
        }
        return Vec::new();
    }
    let (slots, criteria) = (slots_of(screen), screen.criteria.len());
    let last_col = columns(ui.row, slots, criteria).saturating_sub(1);
    let prefer =
        |slot: usize| if slot < slots { vec![Event::Prefer(Preference::Slot(slot))] } else { Vec::new() };
    match keys.action_on(KeyScreen::Annotation, &key) {
        Some(Action::Quit) => return vec![Event::Quit],
        Some(Action::Help) => ui.help = true,
        Some(Action::NextItem) => return vec![Event::Next],
        Some(Action::PreviousItem) => return vec![Event::Back],
        Some(Action::Note) if screen.answer.is_some() => {
            ui.note = Some(screen.answer.map(|a| a.note.clone()).unwrap_or_default());
        }
        Some(Action::FocusRight) if ui.col >= last_col => return vec![Event::Next],
        Some(Action::FocusRight) => ui.col += 1,
        Some(Action::FocusLeft) => ui.col = ui.col.saturating_sub(1),
        Some(Action::Up) => ui.row = ui.row.saturating_sub(1),
        Some(Action::Down) => ui.row = (ui.row + 1).min(criteria),
        Some(Action::PreferTie) => return vec![Event::Prefer(Preference::Tie)],
        Some(Action::PreferA) => return prefer(0),
        Some(Action::PreferB) => return prefer(1),
        Some(Action::PreferC) => return prefer(2),
        Some(_) => {}
        None => return rate(ui, key, slots, criteria),
    }
    ui.col = ui.col.min(columns(ui.row, slots, criteria).saturating_sub(1));
    Vec::new()
}

/// A digit: the score of the cell under the cursor (then on to the next cell), or on the
/// preference row the slot it numbers (the one after the last, the tie). Digits are values, not
/// bindings, so `[tui.keys]` does not move them.
fn rate(ui: &mut Ui, key: KeyEvent, slots: usize, criteria: usize) -> Vec<Event> {
    let KeyCode::Char(d @ '1'..='9') = key.code else { return Vec::new() };
    let d = usize::from(d as u8 - b'0');
    if ui.row == criteria {
        return match d {
            d if d <= slots => vec![Event::Prefer(Preference::Slot(d - 1))],
            d if d == slots + 1 => vec![Event::Prefer(Preference::Tie)],
            _ => Vec::new(),
        };
    }
    let event = Event::Rate { slot: ui.col, criterion: ui.row, score: d as u8 };
    // On to the next cell, row by row, ending on the preference row.
    if ui.col + 1 < slots {
        ui.col += 1;
    } else {
        ui.row += 1;
        ui.col = 0;
    }
    vec![event]
}

/// Where the parts of the screen go in `area` for `slots` explanations and `criteria` rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Areas {
    header: Rect,
    gauge: Rect,
    context: Rect,
    texts: Rect,
    grid: Rect,
    note: Rect,
    message: Rect,
    hints: Rect,
}

fn areas(area: Rect, criteria: usize) -> Areas {
    let [header, gauge, context, texts, grid, note, message, hints] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(4),
        Constraint::Min(3),
        Constraint::Length(criteria as u16 + 4),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    Areas { header, gauge, context, texts, grid, note, message, hints }
}

/// The grid's label column and cell width inside its block.
fn grid_geometry(inner: Rect, slots: usize, criteria: &[String]) -> (u16, u16) {
    let label = criteria.iter().map(|c| c.chars().count()).max().unwrap_or(0).max(10) as u16 + 2;
    let cell = (inner.width.saturating_sub(label) / (slots as u16 + 1)).clamp(1, 12);
    (label, cell)
}

/// A click on a grid cell moves the cursor there; the wheel moves it up and down.
pub fn on_mouse(ui: &mut Ui, mouse: MouseEvent, area: Rect, screen: &Screen<'_>) {
    ui.sync(screen);
    let (slots, criteria) = (slots_of(screen), screen.criteria.len());
    match mouse.kind {
        MouseEventKind::ScrollUp => ui.row = ui.row.saturating_sub(1),
        MouseEventKind::ScrollDown => ui.row = (ui.row + 1).min(criteria),
        MouseEventKind::Down(MouseButton::Left) if slots > 0 => {
            let inner = Block::default().borders(Borders::ALL).inner(areas(area, criteria).grid);
            let (label, cell) = grid_geometry(inner, slots, screen.criteria);
            let (x, y) = (mouse.column, mouse.row);
            if y <= inner.y || y > inner.y + criteria as u16 + 1 || x < inner.x + label {
                return;
            }
            let row = usize::from(y - inner.y - 1);
            let col = usize::from((x - inner.x - label) / cell);
            if col < columns(row, slots, criteria) {
                (ui.row, ui.col) = (row, col);
            }
        }
        _ => {}
    }
    ui.col = ui.col.min(columns(ui.row, slots, criteria).saturating_sub(1));
}

/// How the annotation screen looks and which keys it takes.
pub struct Look<'a> {
    pub theme: &'a Theme,
    pub keys: &'a KeyMap,
}

impl Look<'_> {
    /// The label of the action's first key (its last for the moves: the arrows by default).
    fn key(&self, action: Action) -> String {
        let keys = &self.keys.binding(action).keys;
        let moves = matches!(action, Action::Up | Action::Down | Action::FocusLeft | Action::FocusRight);
        let key = if moves { keys.last() } else { keys.first() };
        key.map(|k| k.label()).unwrap_or_default()
    }

    fn keys(&self, actions: &[Action]) -> String {
        actions.iter().map(|&a| self.key(a)).collect::<Vec<_>>().join("/")
    }

    fn moves(&self) -> String {
        [Action::FocusLeft, Action::Up, Action::Down, Action::FocusRight].map(|a| self.key(a)).concat()
    }
}

/// Draws `screen` of `study` for `annotator` with the cursor, note and help of `ui`.
pub fn draw(frame: &mut Frame, screen: &Screen<'_>, ui: &Ui, look: &Look<'_>, study: &str, annotator: &str) {
    let t = look.theme;
    let a = areas(frame.area(), screen.criteria.len());
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(" Human evaluation ", t.title),
            Span::styled(format!("· study {study} · annotator {annotator}"), t.text),
        ])),
        a.header,
    );
    let label = match screen.phase {
        Phase::Annotating => {
            format!("item {}/{} · {} answered", screen.position, screen.total, screen.answered)
        }
        _ => format!("{}/{} answered", screen.answered, screen.total),
    };
    let ratio = (screen.answered as f64 / screen.total.max(1) as f64).clamp(0.0, 1.0);
    frame.render_widget(Gauge::default().gauge_style(t.gauge).ratio(ratio).label(label), a.gauge);
    if let (Some(item), Some(answer)) = (screen.item, screen.answer) {
        let history = item.history();
        let earlier = history.len().saturating_sub(SHOWN_HISTORY);
        let more = if earlier > 0 { format!("({earlier} earlier) ") } else { String::new() };
        // One line for the item (cut at the edge), the rest of the panel for the history.
        let block = Block::default().borders(Borders::TOP).border_style(t.border).title(" User and item ");
        let inner = block.inner(a.context);
        frame.render_widget(block, a.context);
        let [item_line, history_lines] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled("item: ", t.dim),
                Span::styled(item.title(), t.title),
                Span::styled(format!(" — {}", item.features().join(", ")), t.text),
            ])),
            item_line,
        );
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(format!("{} liked: ", item.user()), t.dim),
                Span::styled(format!("{more}{}", history[earlier..].join(" · ")), t.text),
            ]))
            .wrap(Wrap { trim: true }),
            history_lines,
        );
        let slots = item.slots();
        if a.texts.width / (slots.len().max(1) as u16) >= MIN_SLOT_WIDTH {
            let constraints = vec![Constraint::Ratio(1, slots.len().max(1) as u32); slots.len()];
            for (slot, rect) in slots.iter().zip(Layout::horizontal(constraints).split(a.texts).iter()) {
                let block = Block::default()
                    .borders(Borders::ALL)
                    .border_style(t.border)
                    .title(Span::styled(format!(" {} ", slot.letter()), t.title));
                frame.render_widget(
                    Paragraph::new(slot.text()).style(t.text).wrap(Wrap { trim: true }).block(block),
                    *rect,
                );
            }
        } else {
            // Too narrow for columns: one panel, each text after its letter, no room lost to boxes.
            let lines: Vec<Line> = slots
                .iter()
                .map(|slot| {
                    Line::from(vec![
                        Span::styled(format!("{} ", slot.letter()), t.title),
                        Span::styled(slot.text(), t.text),
                    ])
                })
                .collect();
            let block = Block::default().borders(Borders::TOP).border_style(t.border).title(" Explanations ");
            frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }).block(block), a.texts);
        }
        draw_grid(frame, a.grid, screen, ui, t);
        let note = match &ui.note {
            Some(editing) => Line::from(vec![
                Span::styled(" note: ", t.key),
                Span::styled(format!("{editing}▏"), t.text),
                Span::styled("  (Enter keeps, Esc drops)", t.dim),
            ]),
            None if answer.note.is_empty() => {
                Line::styled(format!(" note: — ({} to write one)", look.key(Action::Note)), t.dim)
            }
            None => {
                Line::from(vec![Span::styled(" note: ", t.dim), Span::styled(answer.note.clone(), t.text)])
            }
        };
        frame.render_widget(Paragraph::new(note), a.note);
    } else {
        let done = Paragraph::new(vec![
            Line::styled("Every item is answered, thank you.", t.ok),
            Line::styled(
                format!(
                    "{} goes back to change an answer; {} leaves.",
                    look.keys.keys_label(Action::PreviousItem),
                    look.key(Action::Quit)
                ),
                t.text,
            ),
        ])
        .block(Block::default().borders(Borders::ALL).border_style(t.border).title(" Done "));
        let rect = Rect { height: a.grid.bottom().saturating_sub(a.context.y), ..a.context };
        frame.render_widget(done, rect);
    }
    let message = match (screen.message, screen.recorded) {
        (Some(m), _) => Line::styled(format!(" ! {m}"), t.warn),
        (None, true) => Line::styled(" your recorded answer: change it and press Enter to replace it", t.dim),
        (None, false) => Line::default(),
    };
    frame.render_widget(Paragraph::new(message), a.message);
    let hints: Vec<Span> = [
        (look.moves(), "move"),
        ("1-5".to_owned(), "rate"),
        (look.keys(&[Action::PreferA, Action::PreferB, Action::PreferTie]), "prefer"),
        (look.key(Action::Note), "note"),
        (look.key(Action::NextItem), "next"),
        (look.key(Action::PreviousItem), "back"),
        (look.key(Action::Quit), "quit"),
        (look.key(Action::Help), "help"),
    ]
    .iter()
    .flat_map(|(k, h)| [Span::styled(format!(" {k} "), t.key), Span::styled(format!("{h} "), t.dim)])
    .collect();
    frame.render_widget(Paragraph::new(Line::from(hints)), a.hints);
    if ui.help {
        draw_help(frame, look);
    }
}

fn draw_grid(frame: &mut Frame, area: Rect, screen: &Screen<'_>, ui: &Ui, t: &Theme) {
    let (Some(item), Some(answer)) = (screen.item, screen.answer) else { return };
    let slots = item.slots().len();
    let block = Block::default().borders(Borders::ALL).border_style(t.border).title(" Ratings (1–5) ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let (label, cell) = grid_geometry(inner, slots, screen.criteria);
    // The cursor is marked in the text too, so it shows without colours.
    let cell_text = |text: String, selected: bool, style: Style| {
        let (text, style) = if selected {
            (format!("›{text}‹"), t.selected.add_modifier(Modifier::BOLD))
        } else {
            (text, style)
        };
        Span::styled(format!("{text:^w$}", w = usize::from(cell)), style)
    };
    let pad = |text: &str| format!(" {text:<w$}", w = usize::from(label) - 1);
    let mut lines = vec![Line::from(
        std::iter::once(Span::styled(pad(""), t.dim))
            .chain((0..slots).map(|s| cell_text(slot_letter(s).to_string(), false, t.title)))
            .collect::<Vec<_>>(),
    )];
    for (c, name) in screen.criteria.iter().enumerate() {
        let cells = (0..slots).map(|s| {
            let value = answer.ratings[s][c].map_or("·".to_owned(), |v| v.to_string());
            cell_text(value, ui.note.is_none() && (ui.row, ui.col) == (c, s), t.text)
        });
        lines.push(Line::from(
            std::iter::once(Span::styled(pad(name), t.text)).chain(cells).collect::<Vec<_>>(),
        ));
    }
    let row = screen.criteria.len();
    let choices = (0..=slots).map(|s| {
        let (choice, text) = if s == slots {
            (Preference::Tie, "tie".to_owned())
        } else {
            (Preference::Slot(s), slot_letter(s).to_string())
        };
        let chosen = answer.preference == Some(choice);
        let text = if chosen { format!("[{text}]") } else { text };
        cell_text(text, ui.note.is_none() && (ui.row, ui.col) == (row, s), if chosen { t.ok } else { t.dim })
    });
    lines.push(Line::from(
        std::iter::once(Span::styled(pad("preference"), t.text)).chain(choices).collect::<Vec<_>>(),
    ));
    frame.render_widget(Paragraph::new(lines), inner);
}

/// Every key of the screen, from the bindings (so a key rebound in `[tui.keys]` shows as rebound).
fn draw_help(frame: &mut Frame, look: &Look<'_>) {
    let t = look.theme;
    let all =
        |actions: &[Action]| actions.iter().map(|&a| look.keys.keys_label(a)).collect::<Vec<_>>().join(" ");
    let help = |action: Action| look.keys.binding(action).help.to_owned();
    let lines: Vec<Line> = [
        (
            all(&[Action::FocusLeft, Action::FocusRight, Action::Up, Action::Down]),
            format!("move over the grid ({} past the end: next item)", look.key(Action::FocusRight)),
        ),
        ("1–5".to_owned(), "rate the cell under the cursor, then on to the next".to_owned()),
        (
            all(&[Action::PreferA, Action::PreferB, Action::PreferC, Action::PreferTie]),
            "prefer A, B, C or a tie (or digits on that row)".to_owned(),
        ),
        (all(&[Action::Note]), help(Action::Note)),
        (all(&[Action::NextItem]), help(Action::NextItem)),
        (all(&[Action::PreviousItem]), help(Action::PreviousItem)),
        (all(&[Action::Quit]), "leave; recorded answers are safe".to_owned()),
        ("click".to_owned(), "select a cell".to_owned()),
    ]
    .into_iter()
    .map(|(k, h)| Line::from(vec![Span::styled(format!("{k:<16}"), t.key), Span::styled(h, t.text)]))
    .collect();
    let area = frame.area();
    let (width, height) = (area.width.saturating_sub(4).min(90), lines.len() as u16 + 2);
    let rect = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + area.height.saturating_sub(height) / 2,
        width,
        height: height.min(area.height),
    };
    frame.render_widget(Clear, rect);
    let block = Block::default().borders(Borders::ALL).title(" Help — any key closes ").title_style(t.title);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }).block(block), rect);
}

/// Runs `session` on the terminal until the annotator quits, appending (fsynced) each judgement
/// before the next item is drawn; the terminal is restored on every exit path, panics included.
pub fn run(
    session: Session,
    writer: &mut Writer,
    look: &Look<'_>,
    study: &str,
    annotator: &str,
) -> Result<Session> {
    super::install_panic_hook();
    let mut terminal = super::enter()?;
    let mut read = || Ok(Some(term::read()?));
    let result = session_loop(&mut terminal, session, writer, look, study, annotator, &mut read);
    super::leave()?;
    result
}

/// Draws and drives `session` until the annotator quits or `next_input` has no more input
/// (`None`). The explorer passes its own event channel as `next_input` (see `tui::run`).
pub fn session_loop(
    terminal: &mut Terminal<CrosstermBackend<Stdout>>,
    mut session: Session,
    writer: &mut Writer,
    look: &Look<'_>,
    study: &str,
    annotator: &str,
    next_input: &mut dyn FnMut() -> Result<Option<term::Event>>,
) -> Result<Session> {
    let mut ui = Ui::default();
    while session.phase() != Phase::Quit {
        let screen = session.screen();
        ui.sync(&screen);
        terminal.draw(|frame| draw(frame, &screen, &ui, look, study, annotator))?;
        let Some(input) = next_input()? else { break };
        let events = match input {
            term::Event::Key(key) if key.kind != term::KeyEventKind::Release => {
                on_key(&mut ui, look.keys, key, &screen)
            }
            term::Event::Mouse(mouse) => {
                let size = terminal.size()?;
                on_mouse(&mut ui, mouse, Rect::new(0, 0, size.width, size.height), &screen);
                Vec::new()
            }
            _ => Vec::new(),
        };
        for event in events {
            let (next, judgement) = update(session, event, now_ms());
            session = next;
            if let Some(j) = judgement {
                writer.append(&j).context("the answer could not be saved; it is not recorded")?;
            }
        }
    }
    Ok(session)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::humaneval::store::Annotations;
    use crate::humaneval::study::tests::make_study;

    fn key(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    fn code(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn session() -> Session {
        let (study, _) = make_study(3, 0);
        Session::new(&study, &Annotations { annotator: "ann".into(), ..Annotations::default() }, 0)
    }

    /// Feeds `keys` through the UI into the session.
    fn press(s: Session, ui: &mut Ui, keys: &[KeyEvent]) -> (Session, Vec<Event>) {
        let mut s = s;
        let mut all = Vec::new();
        for &k in keys {
            let events = on_key(ui, &KeyMap::default(), k, &s.screen());
            for e in events {
                all.push(e.clone());
                s = update(s, e, 0).0;
            }
        }
        (s, all)
    }

    #[test]
    fn digits_rate_the_cursor_cell_and_walk_the_grid_row_by_row() {
        // make_study has 3 slots and 2 criteria.
        let mut ui = Ui::default();
        let keys: Vec<KeyEvent> = "542315".chars().map(key).collect();
        let (s, events) = press(session(), &mut ui, &keys);
        let rate = |slot, criterion, score| Event::Rate { slot, criterion, score };
        assert_eq!(
            events,
            [rate(0, 0, 5), rate(1, 0, 4), rate(2, 0, 2), rate(0, 1, 3), rate(1, 1, 1), rate(2, 1, 5)]
        );
        assert_eq!((ui.row, ui.col), (2, 0), "on the preference row");
        // Digits on the preference row choose a slot, the one after the last slot the tie.
        let (s, events) = press(s, &mut ui, &[key('4')]);
        assert_eq!(events, [Event::Prefer(Preference::Tie)]);
        let (s, events) = press(s, &mut ui, &[key('2')]);
        assert_eq!(events, [Event::Prefer(Preference::Slot(1))]);
        assert_eq!(s.screen().answer.unwrap().ratings[2][1], Some(5));
        let (s, events) = press(s, &mut ui, &[code(KeyCode::Enter)]);
        assert_eq!(events, [Event::Next]);
        assert_eq!(s.screen().position, 2);
        ui.sync(&s.screen());
        assert_eq!((ui.row, ui.col), (0, 0), "a new item starts at the top left");
    }

    #[test]
    fn arrows_and_hjkl_stay_in_the_grid() {
        let s = session();
        let mut ui = Ui::default();
        let (s, events) = press(s, &mut ui, &[code(KeyCode::Up), key('h'), code(KeyCode::Left)]);
        assert!(events.is_empty());
        assert_eq!((ui.row, ui.col), (0, 0));
        let (s, _) = press(s, &mut ui, &[key('l'), key('l'), key('j'), key('j'), key('j'), key('l')]);
        assert_eq!((ui.row, ui.col), (2, 3), "the preference row has a tie column");
        let (s, _) = press(s, &mut ui, &[key('k')]);
        assert_eq!((ui.row, ui.col), (1, 2), "back on a rating row the column is clamped");
        // → past the last column asks for the next item: the machine refuses an incomplete one.
        let (s, events) = press(s, &mut ui, &[code(KeyCode::Right)]);
        assert_eq!(events, [Event::Next]);
        assert!(s.screen().message.unwrap().contains("not answered yet"));
    }

    #[test]
    fn letters_prefer_and_commands_map_to_events() {
        let s = session();
        let mut ui = Ui::default();
        let cases = [
            (key('a'), Event::Prefer(Preference::Slot(0))),
            (key('c'), Event::Prefer(Preference::Slot(2))),
            (key('t'), Event::Prefer(Preference::Tie)),
            (key('p'), Event::Back),
            (code(KeyCode::Backspace), Event::Back),
            (key('q'), Event::Quit),
            (KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL), Event::Quit),
        ];
        for (k, expected) in cases {
            assert_eq!(on_key(&mut ui, &KeyMap::default(), k, &s.screen()), [expected], "{k:?}");
        }
    }

    #[test]
    fn the_note_is_typed_then_recorded_or_dropped() {
        let s = session();
        let mut ui = Ui::default();
        let mut keys = vec![key('n')];
        keys.extend("too long!".chars().map(key));
        keys.extend([code(KeyCode::Backspace), code(KeyCode::Enter)]);
        let (s, events) = press(s, &mut ui, &keys);
        assert_eq!(events, [Event::Note("too long".into())], "letters in a note are not commands");
        assert_eq!(s.screen().answer.unwrap().note, "too long");
        assert_eq!(ui.note, None);
        let (s, events) = press(s, &mut ui, &[key('n'), key('x'), code(KeyCode::Esc)]);
        assert!(events.is_empty());
        assert_eq!(s.screen().answer.unwrap().note, "too long");
        // The help swallows the key that closes it.
        let (_, events) = press(s, &mut ui, &[key('?'), key('q')]);
        assert!(events.is_empty() && !ui.help);
    }

    #[test]
    fn a_click_selects_the_cell_under_it() {
        let s = session();
        let screen = s.screen();
        let area = Rect::new(0, 0, 100, 30);
        let inner = Block::default().borders(Borders::ALL).inner(areas(area, 2).grid);
        let (label, cell) = grid_geometry(inner, 3, screen.criteria);
        let mut ui = Ui::default();
        let click = |x, y| MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: x,
            row: y,
            modifiers: KeyModifiers::NONE,
        };
        on_mouse(&mut ui, click(inner.x + label + 2 * cell, inner.y + 2), area, &screen);
        assert_eq!((ui.row, ui.col), (1, 2));
        on_mouse(&mut ui, click(inner.x + label + 3 * cell, inner.y + 3), area, &screen);
        assert_eq!((ui.row, ui.col), (2, 3), "the tie");
        // Outside the cells (the header row, the labels) nothing moves.
        on_mouse(&mut ui, click(inner.x + label, inner.y), area, &screen);
        on_mouse(&mut ui, click(inner.x, inner.y + 1), area, &screen);
        assert_eq!((ui.row, ui.col), (2, 3));
        // The wheel moves between rows, keeping the column inside the row.
        let scroll = MouseEvent { kind: MouseEventKind::ScrollUp, ..click(0, 0) };
        on_mouse(&mut ui, scroll, area, &screen);
        assert_eq!((ui.row, ui.col), (1, 2));
    }

    #[test]
    fn every_screen_draws_at_any_size_without_panicking() {
        use ratatui::backend::TestBackend;
        let theme = Theme::build(crate::tui::theme::ThemeName::Dark, false);
        let mut s = session();
        let mut ui = Ui { help: true, ..Ui::default() };
        for phase in 0..3 {
            for (w, h) in [(1, 1), (20, 5), (40, 12), (80, 24), (200, 60)] {
                let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
                let screen = s.screen();
                let look = Look { theme: &theme, keys: &KeyMap::default() };
                terminal.draw(|frame| draw(frame, &screen, &ui, &look, "s", "ann")).unwrap();
                let click = MouseEvent {
                    kind: MouseEventKind::Down(MouseButton::Left),
                    column: w / 2,
                    row: h / 2,
                    modifiers: KeyModifiers::NONE,
                };
                on_mouse(&mut ui, click, Rect::new(0, 0, w, h), &screen);
            }
            // Then with a note being typed, then on the done screen.
            ui = Ui { note: Some("x".into()), ..Ui::default() };
            if phase == 1 {
                for _ in 0..3 {
                    let keys: Vec<KeyEvent> =
                        "111111at".chars().map(key).chain([code(KeyCode::Enter)]).collect();
                    s = press(s, &mut Ui::default(), &keys).0;
                }
                assert_eq!(s.phase(), Phase::Done);
            }
        }
    }
}

//! Drawing: `render(&App, &mut Frame)` reads the state and nothing else (no IO, no models). One
//! file per panel; colours come from the theme.

mod about;
mod compare;
mod help;
mod jobs;
mod lists;
mod performance;

use ratatui::layout::{Alignment, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::app::{App, InputPurpose, Popup};
use super::keys::{Action, Context};
use super::layout::{areas_with, tab_label, too_small, Panel, Tab, MIN, TITLE};

pub fn render(app: &App, frame: &mut Frame) {
    let area = frame.area();
    if too_small(area) {
        terminal_too_small(app, frame, area);
        return;
    }
    let layout = areas_with(area, app.tab, &app.columns(area.width));
    tabs(app, frame, layout.tabs);
    for (panel, rect) in &layout.panels {
        let rect = rect.intersection(area);
        if rect.width < 3 || rect.height < 3 {
            continue;
        }
        match panel {
            Panel::Users => lists::users(app, frame, rect),
            Panel::History => lists::history(app, frame, rect),
            Panel::Ranked => lists::ranked(app, frame, rect),
            Panel::Pane(i) => compare::pane(app, frame, rect, *i),
            Panel::Performance => performance::render(app, frame, rect),
            Panel::Jobs => jobs::render(app, frame, rect),
            Panel::About => about::render(app, frame, rect),
        }
    }
    hints(app, frame, layout.hints);
    for popup in &app.popups {
        match popup {
            Popup::Help => help::render(app, frame, area),
            Popup::Input { purpose, text } => input(app, frame, area, purpose, text),
        }
    }
}

/// What a terminal below [`MIN`] shows instead of clipped panels.
fn terminal_too_small(app: &App, frame: &mut Frame, area: Rect) {
    let text = format!(
        "terminal too small (needs {}×{}, has {}×{}); enlarge it, or q to quit",
        MIN.0, MIN.1, area.width, area.height
    );
    let paragraph =
        Paragraph::new(text).style(app.theme.warn).alignment(Alignment::Center).wrap(Wrap { trim: true });
    frame.render_widget(paragraph, area);
}

fn tabs(app: &App, frame: &mut Frame, rect: Rect) {
    let t = &app.theme;
    let mut spans = vec![Span::styled(TITLE, t.title)];
    for (i, tab) in Tab::ALL.into_iter().enumerate() {
        let style = if tab == app.tab { t.tab_active } else { t.dim };
        spans.push(Span::styled(tab_label(i, tab), style));
    }
    spans.push(Span::styled(format!("  ranker: {}", app.ranker_name()), t.text));
    if let Some(race) = &app.race {
        let label = match race.finished {
            Some(_) => format!("  race done: {} users", race.results.len()),
            None => format!("  race {}/{}", race.index + 1, race.users.len()),
        };
        spans.push(Span::styled(label, t.warn));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), rect);
}

fn hints(app: &App, frame: &mut Frame, rect: Rect) {
    let t = &app.theme;
    let mut spans = Vec::new();
    if let Some(notice) = &app.notice {
        spans.push(Span::styled(format!(" {notice} "), t.warn));
    }
    let pairs: Vec<(String, &str)> = match app.popups.last() {
        Some(Popup::Help) => vec![("any key".into(), "close")],
        Some(Popup::Input { purpose, .. }) => {
            vec![("Enter".into(), purpose.verb()), ("Esc".into(), "cancel")]
        }
        None if app.filtering => {
            vec![
                ("type".into(), "filter"),
                ("Enter".into(), "choose"),
                ("Esc".into(), "clear"),
                ("↑↓".into(), "move"),
            ]
        }
        None => {
            let shown = |c: Context| match c {
                Context::Everywhere => true,
                Context::Lists | Context::Explore => app.tab == Tab::Explore,
                Context::Jobs => app.tab == Tab::Jobs || app.tab == Tab::Explore,
            };
            let mut pairs: Vec<(String, &str)> = app
                .keys
                .bindings
                .iter()
                .filter(|b| shown(b.context))
                .filter_map(|b| b.hint.map(|h| (app.keys.keys_label(b.action), h)))
                .collect();
            if app.tab == Tab::Explore {
                let moves =
                    format!("{}/{}", app.keys.keys_label(Action::Down), app.keys.keys_label(Action::Up));
                pairs.insert(0, (moves, "move"));
            }
            pairs
        }
    };
    for (key, what) in pairs {
        spans.push(Span::styled(format!(" {key}"), t.key));
        spans.push(Span::styled(format!(" {what} "), t.dim));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), rect);
}

/// A bordered block, highlighted when focused.
pub(super) fn block<'a>(app: &App, title: impl Into<Line<'a>>, panel: Panel) -> Block<'a> {
    let t = &app.theme;
    let focused = app.tab == Tab::Explore && app.focus == panel;
    Block::default()
        .borders(Borders::ALL)
        .border_type(if focused { BorderType::Thick } else { BorderType::Plain })
        .border_style(if focused { t.border_focused } else { t.border })
        .title(title)
        .title_style(t.title)
}

/// A readable error in place of a panel's content.
pub(super) fn error_text<'a>(app: &App, what: &str, message: &str) -> Paragraph<'a> {
    let t = &app.theme;
    Paragraph::new(vec![
        Line::styled(format!("✗ {what}"), t.error),
        Line::raw(""),
        Line::styled(message.to_owned(), t.text),
    ])
    .wrap(Wrap { trim: false })
}

/// A rectangle of at most `width`×`height` centred in `area`.
pub(super) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect { x: area.x + (area.width - width) / 2, y: area.y + (area.height - height) / 2, width, height }
}

fn input(app: &App, frame: &mut Frame, area: Rect, purpose: &InputPurpose, text: &str) {
    let t = &app.theme;
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

/// Milliseconds for people: "830 ms", "2.4 s".
pub(super) fn ms(value: f64) -> String {
    if value >= 1000.0 {
        format!("{:.1} s", value / 1000.0)
    } else {
        format!("{value:.0} ms")
    }
}

pub(super) fn megabytes(bytes: f64) -> String {
    if bytes >= 1e9 {
        format!("{:.2} GB", bytes / 1e9)
    } else if bytes >= 1e8 {
        format!("{:.0} MB", bytes / 1e6)
    } else {
        format!("{:.1} MB", bytes / 1e6)
    }
}

//! Drawing the explorer: `render(&App, &mut Frame)` lays the screen out (`layout`), draws the tab
//! bar and the hint bar, has each panel draw itself, and puts the popups on top. It reads the
//! state and nothing else (no IO, no models); `update` never calls it.

use ratatui::layout::{Alignment, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::app::App;
use super::keys::{Action, Context};
use super::layout::{areas_with, tab_label, too_small, Panel, Tab, MIN, TITLE};
use super::panels::about::{self, Setup};
use super::panels::popup::{self, Popup};
use super::panels::{performance, Chrome};

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
        let chrome = chrome(app, Some(*panel));
        match panel {
            Panel::Users => app.users.draw(chrome, frame, rect),
            Panel::History => app.history.draw(chrome, frame, rect),
            Panel::Ranked => {
                app.ranked.draw(chrome, frame, rect, app.ranker_name(), app.history.user.is_some())
            }
            Panel::Pane(i) => app.compare.draw(chrome, frame, rect, *i, app.now),
            Panel::Performance => {
                performance::draw(chrome, frame, rect, &app.compare, app.race.as_ref(), app.now)
            }
            Panel::Jobs => app.jobs.draw(chrome, frame, rect),
            Panel::About => {
                let setup = Setup { dataset: &app.dataset, device: &app.device };
                about::draw(chrome, frame, rect, &app.users, &app.compare, setup)
            }
        }
    }
    hints(app, frame, layout.hints);
    for shown in &app.popups {
        popup::draw(chrome(app, None), frame, area, shown);
    }
}

/// The look of `panel` (focused only on the Explore screen, where focus moves).
fn chrome(app: &App, panel: Option<Panel>) -> Chrome<'_> {
    let focused = app.tab == Tab::Explore && panel == Some(app.focus);
    Chrome { theme: &app.theme, keys: &app.keys, focused }
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
        None if app.users.filtering => {
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
                Context::Annotation => false,
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

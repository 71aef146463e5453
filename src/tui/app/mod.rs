//! The explorer's state and its update: `App` composes the panels (`tui::panels`, each with its
//! own state and event handling) and `update(&mut App, Event) -> Vec<Effect>` routes each event to
//! them. It is pure — it reads nothing but the state and the event (time arrives as
//! `Event::Tick`), never draws, and asks for work only by returning effects, which the event loop
//! hands to the workers. Results come back as events tagged with the request they answer; answers
//! to superseded requests are dropped. What concerns more than one panel lives here: which user
//! and item are asked for, the race across users, focus, tabs and popups.

use std::path::PathBuf;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Rect;

use super::event::{Effect, Event};
use super::keys::{Action, KeyMap};
use super::layout::{areas_with, list_offset, list_rows, tab_at, Panel, Tab};
use super::panels::compare::{Answer, Comparison, Gen, Target, ORACLE, PRISM};
use super::panels::history::History;
use super::panels::jobs::Jobs;
use super::panels::performance::Race;
use super::panels::popup::{on_input_key, InputPurpose, Popup, Typed};
use super::panels::ranked::{Ranked, RankedRow};
use super::panels::users::{DataView, FilterKey, Users};
use super::panels::Loadable;
use super::theme::Theme;
use crate::config::ExtraSystem;

/// What the app needs from the configuration, resolved by `tui::run` (or a test).
pub struct Options {
    pub theme: Theme,
    pub keys: KeyMap,
    /// Ranker names the `r` key cycles through; the first is the default.
    pub rankers: Vec<String>,
    pub race_users: usize,
    pub oracle_dir: PathBuf,
    pub prism_dir: PathBuf,
    /// The `[models.extra]` systems, shown as further columns.
    pub extra: Vec<ExtraSystem>,
    pub device: String,
    pub dataset: String,
    pub size: Rect,
}

pub struct App {
    pub theme: Theme,
    pub keys: KeyMap,
    pub size: Rect,
    pub now: Duration,
    pub tab: Tab,
    pub focus: Panel,
    pub popups: Vec<Popup>,
    pub dataset: String,
    pub device: String,
    pub users: Users,
    pub history: History,
    pub ranked: Ranked,
    pub rankers: Vec<String>,
    pub ranker: usize,
    pub compare: Comparison,
    pub race_users: usize,
    pub race: Option<Race>,
    pub jobs: Jobs,
    /// A one-line notice in the hint bar (why a key did nothing).
    pub notice: Option<String>,
    pub quit: bool,
    next_req: u64,
    rank_req: u64,
}

impl App {
    pub fn new(options: Options) -> App {
        App {
            theme: options.theme,
            keys: options.keys,
            size: options.size,
            now: Duration::ZERO,
            tab: Tab::Explore,
            focus: Panel::Users,
            popups: Vec::new(),
            dataset: options.dataset,
            device: options.device,
            users: Users::new(),
            history: History::default(),
            ranked: Ranked::new(),
            rankers: options.rankers,
            ranker: 0,
            compare: Comparison::new(options.oracle_dir, options.prism_dir, options.extra),
            race_users: options.race_users.max(1),
            race: None,
            jobs: Jobs::default(),
            notice: None,
            quit: false,
            next_req: 0,
            rank_req: 0,
        }
    }

    /// The comparison columns drawn on a screen `width` wide (see [`Comparison::columns`]).
    pub fn columns(&self, width: u16) -> Vec<usize> {
        self.compare.columns(width)
    }

    pub fn ranker_name(&self) -> &str {
        &self.rankers[self.ranker]
    }

    fn request(&mut self) -> u64 {
        self.next_req += 1;
        self.next_req
    }
}

/// The state transition. Everything the explorer does starts here.
pub fn update(app: &mut App, event: Event) -> Vec<Effect> {
    match event {
        Event::Key(key) => on_key(app, key),
        Event::Mouse(mouse) => on_mouse(app, mouse),
        Event::Resize(width, height) => {
            app.size = Rect::new(0, 0, width, height);
            Vec::new()
        }
        Event::Tick(now) => {
            app.now = now;
            Vec::new()
        }
        Event::Data(result) => on_data(app, result),
        Event::Model { pane, result } => {
            app.compare.on_model(pane, result);
            Vec::new()
        }
        Event::History { req, rows } => {
            if req == app.rank_req {
                app.history.show(rows);
            }
            Vec::new()
        }
        Event::RankProgress { req, line } => {
            if req == app.rank_req {
                app.ranked.progress = line;
            }
            Vec::new()
        }
        Event::Ranked { req, result } => on_ranked(app, req, result),
        Event::Annotated(result) => {
            app.notice = Some(match result {
                Ok(done) => done,
                Err(message) => format!("annotation: {message}"),
            });
            Vec::new()
        }
        Event::Text { req, pane, text } => {
            app.compare.on_text(req, pane, text);
            Vec::new()
        }
        Event::Explained { req, pane, result } => on_explained(app, req, pane, result),
        Event::Job(msg) => {
            app.jobs.on_msg(msg);
            Vec::new()
        }
    }
}

fn on_data(app: &mut App, result: Result<DataView, String>) -> Vec<Effect> {
    let failed = result.is_err();
    app.users.on_data(result);
    if failed {
        app.ranked.rows = Loadable::Failed("no dataset".into());
        return Vec::new();
    }
    select_user(app)
}

fn on_ranked(app: &mut App, req: u64, result: Result<Vec<RankedRow>, String>) -> Vec<Effect> {
    if req != app.rank_req {
        return Vec::new();
    }
    let failed = result.is_err();
    app.ranked.show(result);
    if failed {
        stop_race(app, "the race stopped: the ranker failed");
        return Vec::new();
    }
    explain_selected(app)
}

fn on_explained(app: &mut App, req: u64, pane: usize, result: Result<Answer, String>) -> Vec<Effect> {
    if !app.compare.on_explained(req, pane, result) {
        return Vec::new();
    }
    advance_race(app)
}

/// Records the finished pair and moves the race to its next user; the race is the Oracle's and
/// the Prism's, whatever the other columns do.
fn advance_race(app: &mut App) -> Vec<Effect> {
    let (Some(_), Some(_)) = (app.compare.generated(ORACLE), app.compare.generated(PRISM)) else {
        if app.compare.panes[..=PRISM].iter().any(|p| matches!(p.gen, Gen::Failed(_))) {
            stop_race(app, "the race stopped: a generation failed");
        }
        return Vec::new();
    };
    let Some(race) = &mut app.race else { return Vec::new() };
    match race.record(&app.compare, app.now) {
        Some(user) => {
            app.users.select(&user);
            rank_user(app, user)
        }
        None => Vec::new(),
    }
}

fn stop_race(app: &mut App, why: &str) {
    if app.race.as_ref().is_some_and(Race::running) {
        app.race = None;
        app.notice = Some(why.to_owned());
    }
}

fn on_key(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    let ctrl_c = key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl_c {
        return quit(app);
    }
    app.notice = None;
    match app.popups.last_mut() {
        Some(Popup::Help) => {
            if app.keys.action(&key) == Some(Action::Quit) {
                return quit(app);
            }
            app.popups.pop();
            return Vec::new();
        }
        Some(popup @ Popup::Input { .. }) => {
            match on_input_key(popup, key) {
                Typed::Editing => {}
                Typed::Cancelled => {
                    app.popups.pop();
                }
                Typed::Entered(purpose, text) => {
                    app.popups.pop();
                    return on_input(app, purpose, text);
                }
            }
            return Vec::new();
        }
        None => {}
    }
    if app.users.filtering {
        match app.users.on_filter_key(key) {
            FilterKey::Changed => return follow_selected_user(app, None),
            FilterKey::Done => {
                app.focus = Panel::Ranked;
                return Vec::new();
            }
            FilterKey::Ignored => {}
        }
    }
    let Some(action) = app.keys.action(&key) else { return Vec::new() };
    on_action(app, action)
}

/// Enter in a text prompt: an empty answer cancels.
fn on_input(app: &mut App, purpose: InputPurpose, text: String) -> Vec<Effect> {
    if text.is_empty() {
        return Vec::new();
    }
    match purpose {
        InputPurpose::AttachJob => vec![Effect::AttachJob(PathBuf::from(text))],
        InputPurpose::Study => {
            app.popups.push(Popup::input(InputPurpose::Annotator(PathBuf::from(text))));
            Vec::new()
        }
        InputPurpose::Annotator(study) => vec![Effect::Annotate { study, annotator: text }],
    }
}

fn quit(app: &mut App) -> Vec<Effect> {
    app.quit = true;
    vec![Effect::CancelExplain, Effect::Quit]
}

fn on_action(app: &mut App, action: Action) -> Vec<Effect> {
    match action {
        Action::Quit => quit(app),
        Action::Help => {
            app.popups.push(Popup::Help);
            Vec::new()
        }
        Action::Back => {
            if app.popups.pop().is_none() && !app.users.filter.is_empty() {
                let before = app.users.selected().map(|u| u.id.clone());
                app.users.filter.clear();
                app.users.refilter();
                return follow_selected_user(app, before);
            }
            Vec::new()
        }
        Action::Theme => {
            app.theme = app.theme.toggled();
            Vec::new()
        }
        Action::TabExplore => set_tab(app, Tab::Explore),
        Action::TabPerformance => set_tab(app, Tab::Performance),
        Action::TabJobs => set_tab(app, Tab::Jobs),
        Action::TabAbout => set_tab(app, Tab::About),
        Action::StartJob => {
            if app.jobs.running() {
                app.notice = Some("a job is already running: c cancels it".into());
                return Vec::new();
            }
            if app.users.data.ready().is_none() {
                app.notice = Some("the dataset is not loaded; a job needs it".into());
                return Vec::new();
            }
            vec![Effect::StartJob]
        }
        Action::AttachJob => {
            if app.jobs.running() {
                app.notice = Some("a job is already shown: c cancels or detaches it".into());
                return Vec::new();
            }
            app.popups.push(Popup::input(InputPurpose::AttachJob));
            Vec::new()
        }
        Action::Annotate => {
            app.popups.push(Popup::input(InputPurpose::Study));
            Vec::new()
        }
        Action::CancelJob => {
            if app.jobs.running() {
                vec![Effect::CancelJob]
            } else {
                app.notice = Some("no running job".into());
                Vec::new()
            }
        }
        _ if app.tab != Tab::Explore => Vec::new(),
        Action::NextSystem => {
            if let Err(why) = app.compare.next_system(app.size.width) {
                app.notice = Some(why.to_owned());
                return Vec::new();
            }
            if let Panel::Pane(i) = app.focus {
                if !app.columns(app.size.width).contains(&i) {
                    app.focus = Panel::Pane(ORACLE);
                }
            }
            Vec::new()
        }
        Action::FocusNext | Action::FocusPrev | Action::FocusLeft | Action::FocusRight => {
            let mut order = Panel::LISTS.to_vec();
            order.extend(app.columns(app.size.width).into_iter().map(Panel::Pane));
            let at = order.iter().position(|p| *p == app.focus).unwrap_or(0);
            let forward = matches!(action, Action::FocusNext | Action::FocusRight);
            let next = if forward { (at + 1) % order.len() } else { (at + order.len() - 1) % order.len() };
            app.focus = order[next];
            Vec::new()
        }
        Action::Filter => {
            app.focus = Panel::Users;
            app.users.filtering = true;
            Vec::new()
        }
        Action::NextRanker => {
            app.ranker = (app.ranker + 1) % app.rankers.len();
            stop_race(app, "the race stopped: the ranker changed");
            match app.history.user.clone() {
                Some(user) => rank_user(app, user),
                None => Vec::new(),
            }
        }
        Action::Retry => explain_selected(app),
        Action::Race => start_race(app),
        Action::Select => {
            match app.focus {
                Panel::Users => app.focus = Panel::Ranked,
                Panel::Ranked => app.focus = Panel::Pane(ORACLE),
                _ => {}
            }
            Vec::new()
        }
        Action::Up => move_by(app, -1),
        Action::Down => move_by(app, 1),
        Action::PageUp => move_by(app, -10),
        Action::PageDown => move_by(app, 10),
        Action::Top => move_by(app, isize::MIN / 2),
        Action::Bottom => move_by(app, isize::MAX / 2),
        // The annotation screen's own actions mean nothing here.
        Action::NextItem
        | Action::PreviousItem
        | Action::Note
        | Action::PreferTie
        | Action::PreferA
        | Action::PreferB
        | Action::PreferC => Vec::new(),
    }
}

fn set_tab(app: &mut App, tab: Tab) -> Vec<Effect> {
    app.tab = tab;
    Vec::new()
}

fn start_race(app: &mut App) -> Vec<Effect> {
    if app.compare.panes[..=PRISM].iter().any(|p| p.model.ready().is_none()) {
        app.notice = Some("the race needs both models loaded".into());
        return Vec::new();
    }
    let users: Vec<String> = app
        .users
        .visible
        .iter()
        .skip(app.users.sel)
        .take(app.race_users)
        .map(|&i| app.users.all()[i].id.clone())
        .collect();
    let Some(first) = users.first().cloned() else {
        app.notice = Some("no user to race on".into());
        return Vec::new();
    };
    app.race = Some(Race { users, index: 0, results: Vec::new(), started: app.now, finished: None });
    rank_user(app, first)
}

/// Moves the focused panel's selection (or scrolls a text panel) by `delta` rows.
fn move_by(app: &mut App, delta: isize) -> Vec<Effect> {
    match app.focus {
        Panel::Users => {
            if !app.users.move_by(delta) {
                return Vec::new();
            }
            stop_race(app, "the race stopped: the selection changed");
            select_user(app)
        }
        Panel::History => {
            app.history.move_by(delta);
            Vec::new()
        }
        Panel::Ranked => {
            if !app.ranked.move_by(delta) {
                return Vec::new();
            }
            stop_race(app, "the race stopped: the selection changed");
            explain_selected(app)
        }
        Panel::Pane(i) => {
            app.compare.scroll(i, delta);
            Vec::new()
        }
        Panel::Performance | Panel::Jobs | Panel::About => Vec::new(),
    }
}

/// After the filter changed: a different selected user than `before` (by default, the one shown)
/// is asked for.
fn follow_selected_user(app: &mut App, before: Option<String>) -> Vec<Effect> {
    let before = before.or_else(|| app.history.user.clone());
    if app.users.selected().map(|u| &u.id) == before.as_ref() {
        return Vec::new();
    }
    select_user(app)
}

/// Shows the selected user: history and ranking are requested; explanations of the previous
/// user no longer matter and are cancelled.
fn select_user(app: &mut App) -> Vec<Effect> {
    match app.users.selected().map(|u| u.id.clone()) {
        Some(user) => rank_user(app, user),
        None => {
            app.history = History::default();
            app.ranked.rows = Loadable::Ready(Vec::new());
            app.compare.reset();
            vec![Effect::CancelExplain]
        }
    }
}

fn rank_user(app: &mut App, user: String) -> Vec<Effect> {
    let req = app.request();
    app.rank_req = req;
    app.history.user = Some(user.clone());
    app.ranked.reset();
    app.compare.reset();
    vec![Effect::CancelExplain, Effect::Rank { req, user, ranker: app.ranker_name().to_owned() }]
}

/// Every system explains the selected ranked item (a new request; the previous one is cancelled).
fn explain_selected(app: &mut App) -> Vec<Effect> {
    let (Some(user), Some(row)) = (app.history.user.clone(), app.ranked.selected().cloned()) else {
        return Vec::new();
    };
    let req = app.request();
    let target = Target { user: user.clone(), item: row.item.clone(), title: row.title };
    app.compare.start(req, target, app.now);
    vec![Effect::Explain { req, user, item: row.item }]
}

fn on_mouse(app: &mut App, mouse: MouseEvent) -> Vec<Effect> {
    if !app.popups.is_empty() {
        if let MouseEventKind::Down(_) = mouse.kind {
            app.popups.pop();
        }
        return Vec::new();
    }
    let layout = areas_with(app.size, app.tab, &app.columns(app.size.width));
    let (column, row) = (mouse.column, mouse.row);
    if row == layout.tabs.y {
        if let MouseEventKind::Down(MouseButton::Left) = mouse.kind {
            if let Some(tab) = tab_at(column) {
                app.tab = tab;
            }
        }
        return Vec::new();
    }
    let Some((panel, rect)) = layout.at(column, row) else { return Vec::new() };
    let focusable = Panel::LISTS.contains(&panel) || matches!(panel, Panel::Pane(_));
    match mouse.kind {
        MouseEventKind::Down(MouseButton::Left) if focusable => {
            app.focus = panel;
            let rows = list_rows(rect);
            let (selected, len) = match panel {
                Panel::Users => (app.users.sel, app.users.visible.len()),
                Panel::History => (app.history.sel, app.history.rows.len()),
                Panel::Ranked => (app.ranked.sel, app.ranked.ready().len()),
                _ => return Vec::new(),
            };
            if row < rows.y || row >= rows.y + rows.height {
                return Vec::new();
            }
            let index = list_offset(selected, rows.height as usize) + (row - rows.y) as usize;
            if index >= len {
                return Vec::new();
            }
            move_by(app, index as isize - selected as isize)
        }
        MouseEventKind::ScrollDown | MouseEventKind::ScrollUp if focusable => {
            app.focus = panel;
            move_by(app, if mouse.kind == MouseEventKind::ScrollDown { 1 } else { -1 })
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests;

//! The explorer's state and its update: `update(&mut App, Event) -> Vec<Effect>` is pure — it reads
//! nothing but the state and the event (time arrives as `Event::Tick`), and asks for work only by
//! returning effects, which the event loop hands to the workers. Results come back as events
//! tagged with the request they answer; answers to superseded requests are dropped.

use std::path::PathBuf;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Rect;

use super::keys::{Action, KeyMap};
use super::layout::{areas_with, list_offset, list_rows, Panel, Tab};
use super::theme::Theme;
use crate::config::{ExtraSource, ExtraSystem};
use crate::distill::events::{DistillEvent, EventKind, Stage};
use crate::distill::status::JobStatus;
use crate::explain::{Explanation, MentionRecord, PromptKind, Summary, Verdict};

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

#[derive(Clone, Debug, PartialEq)]
pub struct UserRow {
    pub id: String,
    pub history_len: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct HistoryRow {
    pub title: String,
    pub features: String,
    pub rating: f32,
    pub date: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RankedRow {
    pub item: String,
    pub title: String,
    pub score: f32,
    pub features: String,
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

#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    pub architecture: String,
    pub param_bytes: usize,
    pub load_ms: f64,
}

/// An explanation a `file:` system wrote beforehand, grounded here like a generated one.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    pub text: String,
    /// As the file recorded it; `None` when it has none.
    pub latency_ms: Option<f64>,
    pub grounding: Summary,
    pub mentions: Vec<MentionRecord>,
    pub verdict: Verdict,
}

/// A system's answer to an explanation request.
#[derive(Clone, Debug)]
pub enum Answer {
    Generated(Box<Explanation>),
    Recorded(Box<Recorded>),
    /// A `file:` system has no row for the pair; the message says so.
    Missing(String),
}

impl From<Box<Explanation>> for Answer {
    fn from(e: Box<Explanation>) -> Answer {
        Answer::Generated(e)
    }
}

impl Answer {
    /// The text with its mentions and verdict; `None` for a missing row.
    pub fn shown(&self) -> Option<(&str, &[MentionRecord], &Summary, &Verdict)> {
        match self {
            Answer::Generated(e) => Some((&e.text, &e.mentions, &e.grounding, &e.verdict)),
            Answer::Recorded(r) => Some((&r.text, &r.mentions, &r.grounding, &r.verdict)),
            Answer::Missing(_) => None,
        }
    }

    /// Measured here, or recorded in the file.
    pub fn latency_ms(&self) -> Option<f64> {
        match self {
            Answer::Generated(e) => Some(e.latency_ms),
            Answer::Recorded(r) => r.latency_ms,
            Answer::Missing(_) => None,
        }
    }

    pub fn generated(&self) -> Option<&Explanation> {
        match self {
            Answer::Generated(e) => Some(e),
            _ => None,
        }
    }
}

/// One system's answer for the current request.
#[derive(Clone, Debug)]
pub enum Gen {
    Idle,
    Running { since: Duration, text: String },
    Done(Answer),
    Failed(String),
}

/// Where a column's explanations come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// A checkpoint directory, generating live with this kind's prompt.
    Model { dir: PathBuf, kind: PromptKind },
    /// Precomputed explanations (`file:PATH`, optionally `#MODEL`).
    File { path: PathBuf, model: Option<String> },
}

impl Source {
    /// Where it loads from, for people.
    pub fn location(&self) -> String {
        match self {
            Source::Model { dir, .. } => dir.display().to_string(),
            Source::File { path, model: Some(model) } => format!("file:{}#{model}", path.display()),
            Source::File { path, model: None } => format!("file:{}", path.display()),
        }
    }
}

/// The pane of the Oracle and of the Prism; `[models.extra]` systems follow in name order.
pub const ORACLE: usize = 0;
pub const PRISM: usize = 1;

/// One column of the comparison: a system and its latest answer.
pub struct Pane {
    /// "Oracle", "Prism", or the `[models.extra]` name.
    pub name: String,
    pub source: Source,
    pub model: Loadable<ModelInfo>,
    pub gen: Gen,
    pub scroll: u16,
    /// Latencies of every completed explanation, oldest first.
    pub latencies: Vec<f64>,
    /// The last completed explanation (kept while the next one runs, for the performance panel).
    pub last: Option<Box<Explanation>>,
}

/// How many recent explanations the rolling means cover.
pub const ROLLING: usize = 20;

impl Pane {
    fn new(name: &str, source: Source) -> Pane {
        Pane {
            name: name.to_owned(),
            source,
            model: Loadable::Loading,
            gen: Gen::Idle,
            scroll: 0,
            latencies: Vec::new(),
            last: None,
        }
    }

    pub fn rolling_latency(&self) -> Option<f64> {
        let recent = &self.latencies[self.latencies.len().saturating_sub(ROLLING)..];
        (!recent.is_empty()).then(|| recent.iter().sum::<f64>() / recent.len() as f64)
    }
}

/// The item both models explain.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub user: String,
    pub item: String,
    pub title: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RaceResult {
    pub user: String,
    pub title: String,
    pub oracle_ms: f64,
    pub prism_ms: f64,
    /// The verdicts on the two explanations (title named, invented, misattributed).
    pub oracle: Verdict,
    pub prism: Verdict,
}

/// The demo: both models explain the top item of each user in turn.
#[derive(Clone, Debug, PartialEq)]
pub struct Race {
    pub users: Vec<String>,
    pub index: usize,
    pub results: Vec<RaceResult>,
    pub started: Duration,
    pub finished: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum JobState {
    Running,
    Finished,
    Cancelled,
    Failed(String),
    Detached,
}

#[derive(Clone, Debug, PartialEq)]
pub struct JobView {
    /// The job directory, and whether this explorer started it (else it is watched from its log).
    pub dir: PathBuf,
    pub started_here: bool,
    /// Whether this explorer still runs or watches it.
    pub state: JobState,
    /// The latest progress (Slurm messages and ends carry none and do not replace it).
    pub last: Option<DistillEvent>,
    pub losses: Vec<f32>,
    pub log: Vec<String>,
    /// Where a watched job stands, from its files, locks and Slurm (`distill::status`).
    pub status: Option<Box<JobStatus>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum JobMsg {
    Started {
        dir: PathBuf,
        started_here: bool,
    },
    Event(DistillEvent),
    /// Where a watched job stands (read by the watcher, as `prism distill status` reads it).
    Status(Box<JobStatus>),
    /// The job (or the watch) ended; `Err` carries the reason it could not run.
    Ended(Result<String, String>),
}

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

fn input(purpose: InputPurpose) -> Popup {
    Popup::Input { purpose, text: String::new() }
}

/// What the workers and the terminal tell the app.
#[derive(Clone, Debug)]
pub enum Event {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Resize(u16, u16),
    /// Time since the explorer started; drives live timers.
    Tick(Duration),
    Data(Result<DataView, String>),
    /// A column's system loaded (a model, or a file of explanations), or could not be.
    Model {
        pane: usize,
        result: Result<ModelInfo, String>,
    },
    History {
        req: u64,
        rows: Vec<HistoryRow>,
    },
    Ranked {
        req: u64,
        result: Result<Vec<RankedRow>, String>,
    },
    /// The ranker is being built (BPR trains on first use); one line of progress.
    RankProgress {
        req: u64,
        line: String,
    },
    Text {
        req: u64,
        pane: usize,
        text: String,
    },
    Explained {
        req: u64,
        pane: usize,
        result: Result<Answer, String>,
    },
    Job(JobMsg),
    /// An annotation session opened from the explorer ended: what was done, or why it failed.
    Annotated(Result<String, String>),
}

/// Work the event loop starts for the app.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// History and top-K of `user` by `ranker`.
    Rank {
        req: u64,
        user: String,
        ranker: String,
    },
    /// Every column's system explains `item` for `user`; supersedes (and cancels) any earlier
    /// request.
    Explain {
        req: u64,
        user: String,
        item: String,
    },
    CancelExplain,
    StartJob,
    AttachJob(PathBuf),
    /// Cancel the job started here, or stop watching an attached one.
    CancelJob,
    /// Hand the terminal to an annotation session of `study` until the annotator quits.
    Annotate {
        study: PathBuf,
        annotator: String,
    },
    Quit,
}

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
    pub data: Loadable<DataView>,
    pub filter: String,
    pub filtering: bool,
    /// Indices into the data's users that pass the filter, best match first.
    pub visible: Vec<usize>,
    pub user_sel: usize,
    pub rankers: Vec<String>,
    pub ranker: usize,
    /// The user whose history and ranking are shown.
    pub user: Option<String>,
    pub history: Vec<HistoryRow>,
    pub history_sel: usize,
    pub ranked: Loadable<Vec<RankedRow>>,
    pub rank_progress: String,
    pub ranked_sel: usize,
    pub target: Option<Target>,
    /// The Oracle's, the Prism's, then one per `[models.extra]` system.
    pub panes: Vec<Pane>,
    /// Which of the columns after the Oracle's comes first when not all fit (key `x` moves it).
    pub column_offset: usize,
    pub race_users: usize,
    pub race: Option<Race>,
    pub job: Option<JobView>,
    /// A one-line notice in the hint bar (why a key did nothing).
    pub notice: Option<String>,
    pub quit: bool,
    next_req: u64,
    rank_req: u64,
    explain_req: u64,
}

pub fn pane_index(kind: PromptKind) -> usize {
    match kind {
        PromptKind::Oracle => ORACLE,
        PromptKind::Prism => PRISM,
    }
}

/// The narrowest a comparison column may be: below it the stats and verdict lines wrap into more
/// rows than the panel has at 80×24.
pub const MIN_COLUMN_WIDTH: u16 = 40;

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
            data: Loadable::Loading,
            filter: String::new(),
            filtering: false,
            visible: Vec::new(),
            user_sel: 0,
            rankers: options.rankers,
            ranker: 0,
            user: None,
            history: Vec::new(),
            history_sel: 0,
            ranked: Loadable::Loading,
            rank_progress: String::new(),
            ranked_sel: 0,
            target: None,
            panes: extra_panes(options.oracle_dir, options.prism_dir, options.extra),
            column_offset: 0,
            race_users: options.race_users.max(1),
            race: None,
            job: None,
            notice: None,
            quit: false,
            next_req: 0,
            rank_req: 0,
            explain_req: 0,
        }
    }

    pub fn pane(&self, kind: PromptKind) -> &Pane {
        &self.panes[pane_index(kind)]
    }

    /// The panes shown side by side on a screen `width` columns wide: as many as fit at
    /// [`MIN_COLUMN_WIDTH`] (at least two), the Oracle's first, the others from `column_offset`
    /// on, in turn.
    pub fn columns(&self, width: u16) -> Vec<usize> {
        let others = self.panes.len() - 1;
        let slots = usize::from(width / MIN_COLUMN_WIDTH).clamp(2, self.panes.len());
        let mut shown = vec![ORACLE];
        shown.extend((0..slots - 1).map(|k| 1 + (self.column_offset + k) % others));
        shown
    }

    pub fn ranker_name(&self) -> &str {
        &self.rankers[self.ranker]
    }

    pub fn users(&self) -> &[UserRow] {
        self.data.ready().map_or(&[], |d| d.users.as_slice())
    }

    pub fn selected_user(&self) -> Option<&UserRow> {
        self.visible.get(self.user_sel).map(|&i| &self.users()[i])
    }

    pub fn ranked_rows(&self) -> &[RankedRow] {
        self.ranked.ready().map_or(&[], |r| r.as_slice())
    }

    /// Oracle latency over Prism latency: of the last pair and of the rolling means.
    pub fn speedup(&self) -> (Option<f64>, Option<f64>) {
        let (oracle, prism) = (&self.panes[ORACLE], &self.panes[PRISM]);
        let last = match (&oracle.last, &prism.last) {
            (Some(o), Some(p)) if p.latency_ms > 0.0 => Some(o.latency_ms / p.latency_ms),
            _ => None,
        };
        let rolling = match (oracle.rolling_latency(), prism.rolling_latency()) {
            (Some(o), Some(p)) if p > 0.0 => Some(o / p),
            _ => None,
        };
        (last, rolling)
    }

    /// Oracle weights over Prism weights.
    pub fn memory_ratio(&self) -> Option<f64> {
        match (self.panes[ORACLE].model.ready(), self.panes[PRISM].model.ready()) {
            (Some(o), Some(p)) if p.param_bytes > 0 => Some(o.param_bytes as f64 / p.param_bytes as f64),
            _ => None,
        }
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
            let Some(pane) = app.panes.get_mut(pane) else { return Vec::new() };
            pane.model = match result {
                Ok(info) => Loadable::Ready(info),
                Err(message) => Loadable::Failed(message),
            };
            Vec::new()
        }
        Event::History { req, rows } => {
            if req == app.rank_req {
                app.history = rows;
                app.history_sel = 0;
            }
            Vec::new()
        }
        Event::RankProgress { req, line } => {
            if req == app.rank_req {
                app.rank_progress = line;
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
            if req == app.explain_req {
                if let Some(Gen::Running { text: shown, .. }) = app.panes.get_mut(pane).map(|p| &mut p.gen) {
                    *shown = text;
                }
            }
            Vec::new()
        }
        Event::Explained { req, pane, result } => on_explained(app, req, pane, result),
        Event::Job(msg) => {
            on_job(app, msg);
            Vec::new()
        }
    }
}

fn on_data(app: &mut App, result: Result<DataView, String>) -> Vec<Effect> {
    match result {
        Ok(view) => {
            app.data = Loadable::Ready(view);
            refilter(app);
            select_user(app)
        }
        Err(message) => {
            app.data = Loadable::Failed(message);
            app.ranked = Loadable::Failed("no dataset".into());
            Vec::new()
        }
    }
}

fn on_ranked(app: &mut App, req: u64, result: Result<Vec<RankedRow>, String>) -> Vec<Effect> {
    if req != app.rank_req {
        return Vec::new();
    }
    app.rank_progress.clear();
    app.ranked_sel = 0;
    match result {
        Ok(rows) => {
            app.ranked = Loadable::Ready(rows);
            explain_selected(app)
        }
        Err(message) => {
            app.ranked = Loadable::Failed(message);
            stop_race(app, "the race stopped: the ranker failed");
            Vec::new()
        }
    }
}

fn on_explained(app: &mut App, req: u64, pane: usize, result: Result<Answer, String>) -> Vec<Effect> {
    if req != app.explain_req {
        return Vec::new();
    }
    let Some(pane) = app.panes.get_mut(pane) else { return Vec::new() };
    match result {
        Ok(answer) => {
            if let Answer::Generated(explanation) = &answer {
                pane.latencies.push(explanation.latency_ms);
                pane.last = Some(explanation.clone());
            }
            pane.gen = Gen::Done(answer);
        }
        Err(message) => pane.gen = Gen::Failed(message),
    }
    advance_race(app)
}

/// Records the finished pair and moves the race to its next user; the race is the Oracle's and
/// the Prism's, whatever the other columns do.
fn advance_race(app: &mut App) -> Vec<Effect> {
    let done = |pane: usize| match &app.panes[pane].gen {
        Gen::Done(answer) => answer.generated(),
        _ => None,
    };
    let (Some(oracle), Some(prism)) = (done(ORACLE), done(PRISM)) else {
        if app.panes[..=PRISM].iter().any(|p| matches!(p.gen, Gen::Failed(_))) {
            stop_race(app, "the race stopped: a generation failed");
        }
        return Vec::new();
    };
    let (Some(race), Some(target)) = (&mut app.race, &app.target) else { return Vec::new() };
    if race.finished.is_some() || race.users.get(race.index) != Some(&target.user) {
        return Vec::new();
    }
    race.results.push(RaceResult {
        user: target.user.clone(),
        title: target.title.clone(),
        oracle_ms: oracle.latency_ms,
        prism_ms: prism.latency_ms,
        oracle: oracle.verdict.clone(),
        prism: prism.verdict.clone(),
    });
    race.index += 1;
    match race.users.get(race.index).cloned() {
        Some(user) => {
            if let Some(pos) = app.visible.iter().position(|&i| app.users()[i].id == user) {
                app.user_sel = pos;
            }
            rank_user(app, user)
        }
        None => {
            race.finished = Some(app.now);
            Vec::new()
        }
    }
}

fn stop_race(app: &mut App, why: &str) {
    if app.race.as_ref().is_some_and(|r| r.finished.is_none()) {
        app.race = None;
        app.notice = Some(why.to_owned());
    }
}

fn on_job(app: &mut App, msg: JobMsg) {
    match msg {
        JobMsg::Started { dir, started_here } => {
            app.job = Some(JobView {
                dir,
                started_here,
                state: JobState::Running,
                last: None,
                losses: Vec::new(),
                log: Vec::new(),
                status: None,
            });
        }
        JobMsg::Status(status) => {
            if let Some(job) = &mut app.job {
                job.status = Some(status);
            }
        }
        JobMsg::Event(event) => {
            let Some(job) = &mut app.job else { return };
            if let (Stage::Train, Some(loss)) = (event.stage, event.loss) {
                job.losses.push(loss);
            }
            // A watched job's standing comes from its status; its events say how a run here ended.
            let own = job.started_here || job.status.is_none();
            match &event.kind {
                _ if !own => {}
                EventKind::Cancelled => job.state = JobState::Cancelled,
                EventKind::Failed => job.state = JobState::Failed(event.message.clone()),
                EventKind::Finished if event.stage == Stage::Evaluate => job.state = JobState::Finished,
                _ => {}
            }
            if !event.message.is_empty() {
                job.log.push(format!("{}: {}", event.stage.name(), event.message));
            }
            if !event.next.is_empty() {
                job.log.push(format!("{}: next: {}", event.stage.name(), event.next));
            }
            if event.is_progress() || event.kind == EventKind::Finished {
                job.last = Some(event);
            }
        }
        JobMsg::Ended(result) => match (&mut app.job, result) {
            (Some(job), Ok(_)) if job.state == JobState::Running => {
                job.state = if job.started_here { JobState::Finished } else { JobState::Detached }
            }
            (Some(job), Err(message)) => job.state = JobState::Failed(message),
            (None, Err(message)) => {
                app.job = Some(JobView {
                    dir: PathBuf::new(),
                    started_here: true,
                    state: JobState::Failed(message),
                    last: None,
                    losses: Vec::new(),
                    log: Vec::new(),
                    status: None,
                })
            }
            _ => {}
        },
    }
}

fn job_running(app: &App) -> bool {
    app.job.as_ref().is_some_and(|j| j.state == JobState::Running)
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
        Some(Popup::Input { text, .. }) => {
            match key.code {
                KeyCode::Char(c) => text.push(c),
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Esc => {
                    app.popups.pop();
                }
                KeyCode::Enter => {
                    let Some(Popup::Input { purpose, text }) = app.popups.pop() else { unreachable!() };
                    return on_input(app, purpose, text.trim());
                }
                _ => {}
            }
            return Vec::new();
        }
        None => {}
    }
    if app.filtering {
        match key.code {
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                app.filter.push(c);
                return refilter_and_select(app);
            }
            KeyCode::Backspace => {
                app.filter.pop();
                return refilter_and_select(app);
            }
            KeyCode::Esc => {
                app.filtering = false;
                app.filter.clear();
                return refilter_and_select(app);
            }
            KeyCode::Enter => {
                app.filtering = false;
                app.focus = Panel::Ranked;
                return Vec::new();
            }
            _ => {}
        }
    }
    let Some(action) = app.keys.action(&key) else { return Vec::new() };
    on_action(app, action)
}

/// Enter in a text prompt: an empty answer cancels.
fn on_input(app: &mut App, purpose: InputPurpose, text: &str) -> Vec<Effect> {
    if text.is_empty() {
        return Vec::new();
    }
    match purpose {
        InputPurpose::AttachJob => vec![Effect::AttachJob(PathBuf::from(text))],
        InputPurpose::Study => {
            app.popups.push(input(InputPurpose::Annotator(PathBuf::from(text))));
            Vec::new()
        }
        InputPurpose::Annotator(study) => vec![Effect::Annotate { study, annotator: text.to_owned() }],
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
            if app.popups.pop().is_none() && !app.filter.is_empty() {
                app.filter.clear();
                return refilter_and_select(app);
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
            if job_running(app) {
                app.notice = Some("a job is already running: c cancels it".into());
                return Vec::new();
            }
            if app.data.ready().is_none() {
                app.notice = Some("the dataset is not loaded; a job needs it".into());
                return Vec::new();
            }
            vec![Effect::StartJob]
        }
        Action::AttachJob => {
            if job_running(app) {
                app.notice = Some("a job is already shown: c cancels or detaches it".into());
                return Vec::new();
            }
            app.popups.push(input(InputPurpose::AttachJob));
            Vec::new()
        }
        Action::Annotate => {
            app.popups.push(input(InputPurpose::Study));
            Vec::new()
        }
        Action::CancelJob => {
            if job_running(app) {
                vec![Effect::CancelJob]
            } else {
                app.notice = Some("no running job".into());
                Vec::new()
            }
        }
        _ if app.tab != Tab::Explore => Vec::new(),
        Action::NextSystem => {
            let shown = app.columns(app.size.width).len();
            if shown == app.panes.len() {
                app.notice = Some(if app.panes.len() > 2 {
                    "every system is shown".into()
                } else {
                    "no other system: add one under [models.extra] in the config".into()
                });
                return Vec::new();
            }
            app.column_offset = (app.column_offset + 1) % (app.panes.len() - 1);
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
            app.filtering = true;
            Vec::new()
        }
        Action::NextRanker => {
            app.ranker = (app.ranker + 1) % app.rankers.len();
            stop_race(app, "the race stopped: the ranker changed");
            match app.user.clone() {
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
    }
}

fn set_tab(app: &mut App, tab: Tab) -> Vec<Effect> {
    app.tab = tab;
    Vec::new()
}

fn start_race(app: &mut App) -> Vec<Effect> {
    if app.panes[..=PRISM].iter().any(|p| p.model.ready().is_none()) {
        app.notice = Some("the race needs both models loaded".into());
        return Vec::new();
    }
    let users: Vec<String> = app
        .visible
        .iter()
        .skip(app.user_sel)
        .take(app.race_users)
        .map(|&i| app.users()[i].id.clone())
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
    let shift = |at: usize, len: usize| -> usize {
        if len == 0 {
            return 0;
        }
        (at as isize).saturating_add(delta).clamp(0, len as isize - 1) as usize
    };
    match app.focus {
        Panel::Users => {
            let next = shift(app.user_sel, app.visible.len());
            if next == app.user_sel {
                return Vec::new();
            }
            app.user_sel = next;
            stop_race(app, "the race stopped: the selection changed");
            select_user(app)
        }
        Panel::History => {
            app.history_sel = shift(app.history_sel, app.history.len());
            Vec::new()
        }
        Panel::Ranked => {
            let next = shift(app.ranked_sel, app.ranked_rows().len());
            if next == app.ranked_sel {
                return Vec::new();
            }
            app.ranked_sel = next;
            stop_race(app, "the race stopped: the selection changed");
            explain_selected(app)
        }
        Panel::Pane(i) => {
            if let Some(pane) = app.panes.get_mut(i) {
                pane.scroll = (pane.scroll as isize).saturating_add(delta).clamp(0, u16::MAX as isize) as u16;
            }
            Vec::new()
        }
        Panel::Performance | Panel::Jobs | Panel::About => Vec::new(),
    }
}

fn refilter_and_select(app: &mut App) -> Vec<Effect> {
    let before = app.selected_user().map(|u| u.id.clone());
    refilter(app);
    if app.selected_user().map(|u| &u.id) == before.as_ref() {
        return Vec::new();
    }
    select_user(app)
}

/// Recomputes the visible users for the filter; the selection goes to the best match.
fn refilter(app: &mut App) {
    let query = app.filter.trim().to_lowercase();
    let users = app.users();
    app.visible = if query.is_empty() {
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
    app.user_sel = 0;
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

/// The Oracle's and the Prism's panes, then one per extra system.
fn extra_panes(oracle: PathBuf, prism: PathBuf, extra: Vec<ExtraSystem>) -> Vec<Pane> {
    let mut panes = vec![
        Pane::new("Oracle", Source::Model { dir: oracle, kind: PromptKind::Oracle }),
        Pane::new("Prism", Source::Model { dir: prism, kind: PromptKind::Prism }),
    ];
    for system in extra {
        let source = match system.source {
            ExtraSource::Model(dir) => Source::Model { dir, kind: PromptKind::Prism },
            ExtraSource::File { path, model } => Source::File { path, model },
        };
        panes.push(Pane::new(&system.name, source));
    }
    panes
}

/// Shows the selected user: history and ranking are requested; explanations of the previous
/// user no longer matter and are cancelled.
fn select_user(app: &mut App) -> Vec<Effect> {
    match app.selected_user().map(|u| u.id.clone()) {
        Some(user) => rank_user(app, user),
        None => {
            app.user = None;
            app.history.clear();
            app.ranked = Loadable::Ready(Vec::new());
            app.target = None;
            reset_panes(app);
            vec![Effect::CancelExplain]
        }
    }
}

fn rank_user(app: &mut App, user: String) -> Vec<Effect> {
    let req = app.request();
    app.rank_req = req;
    app.user = Some(user.clone());
    app.ranked = Loadable::Loading;
    app.rank_progress.clear();
    app.target = None;
    reset_panes(app);
    vec![Effect::CancelExplain, Effect::Rank { req, user, ranker: app.ranker_name().to_owned() }]
}

fn reset_panes(app: &mut App) {
    app.explain_req = 0;
    for pane in &mut app.panes {
        pane.gen = Gen::Idle;
        pane.scroll = 0;
    }
}

/// Both models explain the selected ranked item (a new request; the previous one is cancelled).
fn explain_selected(app: &mut App) -> Vec<Effect> {
    let (Some(user), Some(row)) = (app.user.clone(), app.ranked_rows().get(app.ranked_sel).cloned()) else {
        return Vec::new();
    };
    let req = app.request();
    app.explain_req = req;
    app.target = Some(Target { user: user.clone(), item: row.item.clone(), title: row.title });
    let now = app.now;
    for pane in &mut app.panes {
        pane.scroll = 0;
        pane.gen = match &pane.model {
            Loadable::Failed(message) => Gen::Failed(message.clone()),
            _ => Gen::Running { since: now, text: String::new() },
        };
    }
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
            if let Some(tab) = super::layout::tab_at(column) {
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
                Panel::Users => (app.user_sel, app.visible.len()),
                Panel::History => (app.history_sel, app.history.len()),
                Panel::Ranked => (app.ranked_sel, app.ranked_rows().len()),
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
mod tests {
    use super::*;
    use crate::model::GenStats;

    fn app() -> App {
        App::new(Options {
            theme: Theme::resolve("dark", false).unwrap(),
            keys: KeyMap::default(),
            rankers: vec!["pop".into(), "bpr".into()],
            race_users: 2,
            oracle_dir: "oracle".into(),
            prism_dir: "prism".into(),
            extra: Vec::new(),
            device: "cpu".into(),
            dataset: "demo".into(),
            size: Rect::new(0, 0, 160, 48),
        })
    }

    fn data(ids: &[&str]) -> DataView {
        DataView {
            name: "test".into(),
            description: String::new(),
            synthetic: true,
            items: 3,
            interactions: 9,
            users: ids.iter().map(|id| UserRow { id: (*id).into(), history_len: 3 }).collect(),
        }
    }

    fn key(c: char) -> Event {
        Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
    }

    fn code(code: KeyCode) -> Event {
        Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn ranked(items: &[&str]) -> Vec<RankedRow> {
        items
            .iter()
            .map(|i| RankedRow {
                item: (*i).into(),
                title: format!("T{i}"),
                score: 1.0,
                features: String::new(),
            })
            .collect()
    }

    fn explanation(latency_ms: f64, invented: usize) -> Answer {
        Answer::Generated(Box::new(Explanation {
            text: "a film".into(),
            latency_ms,
            ttft_ms: 1.0,
            new_tokens: 2,
            tokens_per_s: 2.0,
            param_bytes: 10,
            peak_rss_bytes: 10,
            grounding: Summary { invented: vec!["x".into(); invented], ..Summary::default() },
            mentions: Vec::new(),
            verdict: Verdict { features_invented: invented, ..Verdict::default() },
            prompt: String::new(),
            history_cut: 0,
            prompt_tokens_dropped: 0,
            stats: GenStats::default(),
        }))
    }

    fn ready_models(app: &mut App) {
        for (pane, bytes) in [(ORACLE, 400), (PRISM, 100)] {
            let info = ModelInfo { architecture: "t5".into(), param_bytes: bytes, load_ms: 1.0 };
            update(app, Event::Model { pane, result: Ok(info) });
        }
    }

    fn rank_req(effects: &[Effect]) -> u64 {
        effects.iter().find_map(|e| if let Effect::Rank { req, .. } = e { Some(*req) } else { None }).unwrap()
    }

    fn explain_req(effects: &[Effect]) -> u64 {
        effects
            .iter()
            .find_map(|e| if let Effect::Explain { req, .. } = e { Some(*req) } else { None })
            .unwrap()
    }

    #[test]
    fn data_selects_the_first_user_and_ranking_explains_the_top_item() {
        let mut app = app();
        let effects = update(&mut app, Event::Data(Ok(data(&["u1", "u2"]))));
        assert_eq!(effects[1], Effect::Rank { req: 1, user: "u1".into(), ranker: "pop".into() });
        let effects = update(&mut app, Event::Ranked { req: 1, result: Ok(ranked(&["a", "b"])) });
        assert_eq!(effects, vec![Effect::Explain { req: 2, user: "u1".into(), item: "a".into() }]);
        assert!(matches!(app.panes[0].gen, Gen::Running { .. }));
    }

    #[test]
    fn moving_the_selection_cancels_and_drops_stale_answers() {
        let mut app = app();
        update(&mut app, Event::Data(Ok(data(&["u1", "u2"]))));
        update(&mut app, Event::Ranked { req: 1, result: Ok(ranked(&["a", "b"])) });
        let effects = update(&mut app, key('j'));
        assert_eq!(effects[0], Effect::CancelExplain);
        assert_eq!(app.user.as_deref(), Some("u2"));
        // The first user's ranking and explanation arrive late: ignored.
        update(&mut app, Event::Ranked { req: 1, result: Ok(ranked(&["z"])) });
        assert_eq!(app.ranked, Loadable::Loading);
        update(&mut app, Event::Explained { req: 2, pane: ORACLE, result: Ok(explanation(5.0, 0)) });
        assert!(matches!(app.panes[0].gen, Gen::Idle));
        assert!(app.panes[0].latencies.is_empty());
    }

    #[test]
    fn ranked_selection_drives_the_comparison_and_text_streams_in() {
        let mut app = app();
        update(&mut app, Event::Data(Ok(data(&["u1"]))));
        update(&mut app, Event::Ranked { req: 1, result: Ok(ranked(&["a", "b"])) });
        update(&mut app, code(KeyCode::Enter));
        assert_eq!(app.focus, Panel::Ranked);
        let effects = update(&mut app, code(KeyCode::Down));
        let req = explain_req(&effects);
        assert_eq!(app.target.as_ref().unwrap().item, "b");
        update(&mut app, Event::Text { req, pane: PRISM, text: "a fi".into() });
        assert!(matches!(&app.panes[1].gen, Gen::Running { text, .. } if text == "a fi"));
        update(&mut app, Event::Explained { req, pane: PRISM, result: Err("boom".into()) });
        assert!(matches!(&app.panes[1].gen, Gen::Failed(m) if m == "boom"));
    }

    #[test]
    fn fuzzy_filter_ranks_exact_then_prefix_then_subsequence() {
        let mut app = app();
        update(&mut app, Event::Data(Ok(data(&["u0420", "u0042", "x0042", "u1000"]))));
        update(&mut app, key('/'));
        for c in "u0042".chars() {
            update(&mut app, key(c));
        }
        assert_eq!(app.selected_user().unwrap().id, "u0042");
        update(&mut app, code(KeyCode::Backspace));
        // "u004": prefix of u0042 only; u0420 has u,0,4 in order (subsequence), x0042 lacks 'u'.
        let ids: Vec<&str> = app.visible.iter().map(|&i| app.users()[i].id.as_str()).collect();
        assert_eq!(ids, ["u0042"]);
        update(&mut app, code(KeyCode::Esc));
        assert_eq!(app.visible.len(), 4);
        assert!(fuzzy_score("u42", "u0042").unwrap() > fuzzy_score("u42", "u4x0x0x2").unwrap());
        assert_eq!(fuzzy_score("zz", "u0042"), None);
    }

    #[test]
    fn typing_in_the_filter_does_not_trigger_actions() {
        let mut app = app();
        update(&mut app, Event::Data(Ok(data(&["q1"]))));
        update(&mut app, key('/'));
        let effects = update(&mut app, key('q'));
        assert!(!app.quit && !effects.contains(&Effect::Quit));
        assert_eq!(app.filter, "q");
    }

    #[test]
    fn quit_from_anywhere_and_help_closes_on_any_key() {
        let mut app = app();
        update(&mut app, key('?'));
        assert_eq!(app.popups, vec![Popup::Help]);
        update(&mut app, key('x'));
        assert!(app.popups.is_empty());
        update(&mut app, key('a'));
        assert_eq!(app.popups, vec![input(InputPurpose::AttachJob)]);
        let ctrl_c = Event::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
        assert!(update(&mut app, ctrl_c).contains(&Effect::Quit));
        assert!(app.quit);
    }

    #[test]
    fn annotate_asks_for_the_study_then_the_annotator() {
        let mut app = app();
        update(&mut app, key('H'));
        for c in "runs/study".chars() {
            update(&mut app, key(c));
        }
        assert!(update(&mut app, code(KeyCode::Enter)).is_empty());
        assert_eq!(app.popups, vec![input(InputPurpose::Annotator("runs/study".into()))]);
        for c in "ann".chars() {
            update(&mut app, key(c));
        }
        update(&mut app, code(KeyCode::Backspace));
        let effects = update(&mut app, code(KeyCode::Enter));
        assert_eq!(effects, vec![Effect::Annotate { study: "runs/study".into(), annotator: "an".into() }]);
        assert!(app.popups.is_empty());
        update(&mut app, Event::Annotated(Err("unknown annotator \"an\"".into())));
        assert!(app.notice.as_deref().unwrap().contains("unknown annotator"));
        // Esc anywhere in the prompts, or an empty answer, starts nothing.
        update(&mut app, key('H'));
        update(&mut app, code(KeyCode::Esc));
        update(&mut app, key('H'));
        assert!(update(&mut app, code(KeyCode::Enter)).is_empty());
        assert!(app.popups.is_empty());
    }

    #[test]
    fn attach_prompt_collects_a_path() {
        let mut app = app();
        update(&mut app, key('a'));
        for c in "/tmp/job".chars() {
            update(&mut app, key(c));
        }
        let effects = update(&mut app, code(KeyCode::Enter));
        assert_eq!(effects, vec![Effect::AttachJob("/tmp/job".into())]);
        update(&mut app, Event::Job(JobMsg::Started { dir: "/tmp/job".into(), started_here: false }));
        let mut event = DistillEvent::new(Stage::Train, EventKind::Progress, 3, 10);
        event.loss = Some(2.5);
        update(&mut app, Event::Job(JobMsg::Event(event)));
        let job = app.job.as_ref().unwrap();
        assert_eq!((job.losses.as_slice(), &job.state), (&[2.5][..], &JobState::Running));
        assert_eq!(update(&mut app, key('c')), vec![Effect::CancelJob]);
        update(&mut app, Event::Job(JobMsg::Ended(Ok("detached".into()))));
        assert_eq!(app.job.as_ref().unwrap().state, JobState::Detached);
    }

    #[test]
    fn failed_model_shows_its_error_in_place_and_the_other_still_runs() {
        let mut app = app();
        update(&mut app, Event::Model { pane: ORACLE, result: Err("no such dir".into()) });
        update(&mut app, Event::Data(Ok(data(&["u1"]))));
        update(&mut app, Event::Ranked { req: 1, result: Ok(ranked(&["a"])) });
        assert!(matches!(&app.panes[0].gen, Gen::Failed(m) if m == "no such dir"));
        assert!(matches!(app.panes[1].gen, Gen::Running { .. }));
    }

    #[test]
    fn race_runs_through_users_and_tallies() {
        let mut app = app();
        ready_models(&mut app);
        update(&mut app, Event::Data(Ok(data(&["u1", "u2", "u3"]))));
        let effects = update(&mut app, key('d'));
        let mut req = rank_req(&effects);
        for (i, user) in ["u1", "u2"].iter().enumerate() {
            assert_eq!(app.user.as_deref(), Some(*user));
            let effects = update(&mut app, Event::Ranked { req, result: Ok(ranked(&["a"])) });
            let ereq = explain_req(&effects);
            update(&mut app, Event::Tick(Duration::from_secs(i as u64 + 1)));
            update(&mut app, Event::Explained { req: ereq, pane: ORACLE, result: Ok(explanation(50.0, 1)) });
            let effects = update(
                &mut app,
                Event::Explained { req: ereq, pane: PRISM, result: Ok(explanation(10.0, 0)) },
            );
            if i == 0 {
                req = rank_req(&effects);
            }
        }
        let race = app.race.as_ref().unwrap();
        assert_eq!(race.results.len(), 2);
        assert_eq!(race.finished, Some(Duration::from_secs(2)));
        assert_eq!(app.speedup(), (Some(5.0), Some(5.0)));
        assert_eq!(app.memory_ratio(), Some(4.0));
    }

    fn app_with_extras(names: &[&str], width: u16) -> App {
        let extra = names
            .iter()
            .map(|n| ExtraSystem {
                name: (*n).into(),
                source: ExtraSource::File { path: format!("{n}.jsonl").into(), model: None },
            })
            .collect();
        App::new(Options {
            theme: Theme::resolve("dark", false).unwrap(),
            keys: KeyMap::default(),
            rankers: vec!["pop".into()],
            race_users: 2,
            oracle_dir: "oracle".into(),
            prism_dir: "prism".into(),
            extra,
            device: "cpu".into(),
            dataset: "demo".into(),
            size: Rect::new(0, 0, width, 24),
        })
    }

    #[test]
    fn extra_systems_are_columns_and_x_rotates_those_that_do_not_fit() {
        let mut app = app_with_extras(&["peter", "zeta"], 80);
        assert_eq!(app.panes.len(), 4);
        assert_eq!(app.panes[2].source.location(), "file:peter.jsonl");
        // 80 columns hold two: the Oracle, then the others in turn.
        assert_eq!(app.columns(80), [ORACLE, PRISM]);
        update(&mut app, key('x'));
        assert_eq!(app.columns(80), [ORACLE, 2]);
        update(&mut app, key('x'));
        update(&mut app, key('x'));
        assert_eq!(app.columns(80), [ORACLE, PRISM]);
        // 140 columns hold three, 160 all four; with all shown, x says so.
        assert_eq!(app.columns(140), [ORACLE, PRISM, 2]);
        assert_eq!(app.columns(160), [ORACLE, PRISM, 2, 3]);
        let mut wide = app_with_extras(&["peter"], 140);
        update(&mut wide, key('x'));
        assert_eq!(wide.notice.as_deref(), Some("every system is shown"));
        let mut plain = app_with_extras(&[], 80);
        update(&mut plain, key('x'));
        assert!(plain.notice.as_deref().unwrap().contains("[models.extra]"));
        assert_eq!(plain.columns(200), [ORACLE, PRISM]);
    }

    #[test]
    fn focus_cycles_through_the_columns_shown() {
        let mut app = app_with_extras(&["peter"], 140);
        for _ in 0..3 {
            update(&mut app, code(KeyCode::Tab));
        }
        assert_eq!(app.focus, Panel::Pane(ORACLE));
        update(&mut app, code(KeyCode::Tab));
        update(&mut app, code(KeyCode::Tab));
        assert_eq!(app.focus, Panel::Pane(2));
        update(&mut app, code(KeyCode::Tab));
        assert_eq!(app.focus, Panel::Users);
    }

    #[test]
    fn a_file_column_answers_without_holding_up_the_race() {
        let mut app = app_with_extras(&["peter"], 140);
        ready_models(&mut app);
        update(&mut app, Event::Data(Ok(data(&["u1"]))));
        let effects = update(&mut app, Event::Ranked { req: 1, result: Ok(ranked(&["a"])) });
        let req = explain_req(&effects);
        assert!(matches!(app.panes[2].gen, Gen::Running { .. }));
        let missing = Answer::Missing("No explanation of item a for user u1 in file:peter.jsonl.".into());
        update(&mut app, Event::Explained { req, pane: 2, result: Ok(missing) });
        assert!(matches!(&app.panes[2].gen, Gen::Done(Answer::Missing(m)) if m.contains("item a")));
        assert!(app.panes[2].latencies.is_empty());
        // A stale answer for a pane that does not exist is ignored.
        update(&mut app, Event::Explained { req, pane: 9, result: Err("x".into()) });
    }

    #[test]
    fn the_race_keeps_each_models_verdict() {
        let mut app = app();
        ready_models(&mut app);
        update(&mut app, Event::Data(Ok(data(&["u1"]))));
        let effects = update(&mut app, key('d'));
        let effects = update(&mut app, Event::Ranked { req: rank_req(&effects), result: Ok(ranked(&["a"])) });
        let req = explain_req(&effects);
        update(&mut app, Event::Explained { req, pane: ORACLE, result: Ok(explanation(50.0, 2)) });
        update(&mut app, Event::Explained { req, pane: PRISM, result: Ok(explanation(10.0, 0)) });
        let result = &app.race.as_ref().unwrap().results[0];
        assert_eq!((result.oracle.invented(), result.prism.invented()), (2, 0));
    }

    #[test]
    fn mouse_click_selects_the_row_under_it() {
        let mut app = app();
        update(&mut app, Event::Data(Ok(data(&["u1", "u2", "u3"]))));
        let users = crate::tui::layout::areas(app.size, Tab::Explore).get(Panel::Users).unwrap();
        let rows = list_rows(users);
        let click = MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: rows.x + 1,
            row: rows.y + 2,
            modifiers: KeyModifiers::NONE,
        };
        let effects = update(&mut app, Event::Mouse(click));
        assert_eq!(app.user.as_deref(), Some("u3"));
        assert_eq!(rank_req(&effects), 2);
    }
}

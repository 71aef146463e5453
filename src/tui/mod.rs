//! The explorer (`prism`, `prism tui`): users → ranked items → Oracle vs Prism explanations
//! streaming side by side, with performance, jobs and an about screen.
//!
//! `app` composes the panels (`panels`, each with its own state, events and drawing) and holds
//! the pure `update(&mut App, Event) -> Vec<Effect>` (messages in `event`); `render` draws it (no
//! IO); `workers` runs the dataset, the rankers, one engine per model and distillation jobs on
//! background threads and reports back as `Event`s; this module's `run` owns the terminal and the
//! event loop. Only this room touches the terminal, and nothing else in the crate uses it.

pub mod annotate;
pub mod app;
pub mod event;
pub mod keys;
pub mod layout;
pub mod panels;
pub mod render;
pub mod theme;
pub mod workers;

use std::io::{self, Stdout};
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use crossterm::event::{self as term, DisableMouseCapture, EnableMouseCapture};
use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::Terminal;

use crate::config::Settings;
use crate::humaneval::{now_ms, store, Session};
use crate::rank::RankerSpec;
use app::{App, Options};
use event::{Effect, Event};
use keys::KeyMap;
use theme::Theme;

/// How long the loop waits for an event before redrawing anyway: live timers and streaming text
/// stay at ≥ 20 frames per second, and a key waits at most this long behind nothing.
const FRAME: Duration = Duration::from_millis(40);

/// The resolved app options for `settings` and a terminal of `size`: configuration errors (theme,
/// key bindings) are found here, before the terminal changes.
pub fn options(settings: &Settings, size: Rect) -> Result<Options> {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let theme = Theme::resolve(&settings.tui.theme, no_color)?;
    let keys = KeyMap::new(&settings.tui.keys)?;
    let mut rankers = vec![settings.ranker.default.clone()];
    for spec in RankerSpec::BUILT_IN {
        let name = match spec {
            RankerSpec::Popularity => "pop",
            RankerSpec::ItemKnn => "itemknn",
            RankerSpec::Bpr => "bpr",
            RankerSpec::File(_) => continue,
        };
        if !rankers.iter().any(|r| r == name) {
            rankers.push(name.to_owned());
        }
    }
    Ok(Options {
        theme,
        keys,
        rankers,
        race_users: settings.tui.race_users,
        oracle_dir: settings.models.oracle.clone(),
        prism_dir: settings.models.prism.clone(),
        extra: settings.models.extra_systems()?,
        device: settings.models.device.clone(),
        dataset: settings.dataset.path.clone(),
        size,
    })
}

/// Runs the explorer until the user quits; the terminal is restored on every exit path, panics
/// included.
pub fn run(settings: Settings) -> Result<()> {
    let (width, height) = terminal::size().context("the explorer needs a terminal")?;
    let mut app = App::new(options(&settings, Rect::new(0, 0, width, height))?);
    install_panic_hook();
    // Model-loading warnings wait until the terminal is back, then go to stderr.
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = std::sync::Arc::clone(&held);
    let previous = crate::model::notice::set_sink(Some(Box::new(move |m| {
        sink.lock().unwrap_or_else(|e| e.into_inner()).push(m.to_string())
    })));
    let mut terminal = enter()?;
    let result = event_loop(&mut terminal, &mut app, settings);
    leave()?;
    crate::model::notice::set_sink(previous);
    for message in held.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        crate::model::notice::warn(message);
    }
    result
}

fn enter() -> Result<Terminal<CrosstermBackend<Stdout>>> {
    terminal::enable_raw_mode().context("cannot put the terminal in raw mode")?;
    crossterm::execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture)?;
    Ok(Terminal::new(CrosstermBackend::new(io::stdout()))?)
}

fn leave() -> Result<()> {
    crossterm::execute!(io::stdout(), DisableMouseCapture, LeaveAlternateScreen, crossterm::cursor::Show)?;
    terminal::disable_raw_mode()?;
    Ok(())
}

fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // Restore first, so the panic message lands on a usable terminal.
        let _ = leave();
        previous(info);
    }));
}

fn event_loop(
    terminal: &mut Terminal<CrosstermBackend<Stdout>>,
    app: &mut App,
    settings: Settings,
) -> Result<()> {
    let start = Instant::now();
    let (sender, events) = mpsc::channel();
    // Draw before any work starts: the first frame must not wait for the dataset or the models.
    terminal.draw(|frame| render::render(app, frame))?;
    let input = sender.clone();
    std::thread::spawn(move || loop {
        let event = match term::read() {
            Ok(term::Event::Key(key)) if key.kind != term::KeyEventKind::Release => Event::Key(key),
            Ok(term::Event::Mouse(mouse)) => Event::Mouse(mouse),
            Ok(term::Event::Resize(w, h)) => Event::Resize(w, h),
            Ok(_) => continue,
            Err(_) => return,
        };
        if input.send(event).is_err() {
            return;
        }
    });
    // The models' and jobs' tensor work runs on rayon's pool: below the event loop's priority too.
    // (If the pool already exists, its threads keep their priority.)
    let _ =
        rayon::ThreadPoolBuilder::new().start_handler(|_| workers::yield_to_the_event_loop()).build_global();
    let systems: Vec<_> = app.compare.panes.iter().map(|p| (p.name.clone(), p.source.clone())).collect();
    let mut workers = workers::Workers::start(settings, &systems, sender);
    loop {
        let first = match events.recv_timeout(FRAME) {
            Ok(event) => Some(event),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        // Handle everything queued before drawing once: a burst of streamed tokens costs one frame.
        let mut effects: Vec<Effect> = app::update(app, Event::Tick(start.elapsed()));
        for event in first.into_iter().chain(std::iter::from_fn(|| events.try_recv().ok()).take(512)) {
            effects.extend(app::update(app, event));
        }
        for effect in effects {
            if let Effect::Annotate { study, annotator } = effect {
                let outcome = annotate_here(terminal, app, &mut workers, &events, &study, &annotator);
                apply(app, &mut workers, Event::Annotated(outcome.map_err(|e| format!("{e:#}"))));
            } else {
                workers.run(effect);
            }
        }
        if app.quit {
            break;
        }
        terminal.draw(|frame| render::render(app, frame))?;
    }
    Ok(())
}

/// Updates the app with `event` and starts the work it asks for.
fn apply(app: &mut App, workers: &mut workers::Workers, event: Event) {
    for effect in app::update(app, event) {
        workers.run(effect);
    }
}

/// Runs an annotation session of `study` on the explorer's terminal, with the keys of the
/// explorer's channel; the explorer's other events (streamed text, job progress) still reach the
/// app meanwhile. Returns what the annotator did, for the notice line.
fn annotate_here(
    terminal: &mut Terminal<CrosstermBackend<Stdout>>,
    app: &mut App,
    workers: &mut workers::Workers,
    events: &mpsc::Receiver<Event>,
    dir: &Path,
    annotator: &str,
) -> Result<String> {
    let (study, recorded, lock) = store::open_for(dir, annotator)?;
    let mut writer = store::Writer::open(dir, &study, annotator, now_ms(), lock)?;
    let session = Session::new(&study, &recorded, now_ms());
    let (theme, keys) = (app.theme.clone(), app.keys.clone());
    let mut next_input = || -> Result<Option<term::Event>> {
        loop {
            match events.recv() {
                Ok(Event::Key(key)) => return Ok(Some(term::Event::Key(key))),
                Ok(Event::Mouse(mouse)) => return Ok(Some(term::Event::Mouse(mouse))),
                Ok(Event::Resize(width, height)) => {
                    apply(app, workers, Event::Resize(width, height));
                    return Ok(Some(term::Event::Resize(width, height)));
                }
                Ok(other) => apply(app, workers, other),
                Err(_) => return Ok(None),
            }
        }
    };
    let session = annotate::session_loop(
        terminal,
        session,
        &mut writer,
        &annotate::Look { theme: &theme, keys: &keys },
        &study.id,
        annotator,
        &mut next_input,
    )?;
    let screen = session.screen();
    let mut done =
        format!("{annotator}: {} of {} items answered in {}", screen.answered, screen.total, dir.display());
    if !recorded.issues.is_empty() {
        done.push_str(" (a torn last line was found in the annotation file: its item was asked again)");
    }
    Ok(done)
}

//! The explorer's screens drawn on ratatui's `TestBackend`, compared as text with
//! `tests/snapshots/*.txt`. After an intended change, rerun with `UPDATE_SNAPSHOTS=1` and review
//! the diff of the snapshot files.

use std::path::PathBuf;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use prism_explorer::distill::{DistillEvent, EventKind, Stage};
use prism_explorer::explain::{Class, Explanation, MentionRecord, PromptKind, Summary};
use prism_explorer::model::stats::GenStats;
use prism_explorer::tui::app::{
    update, App, DataView, Event, HistoryRow, JobMsg, ModelInfo, Options, RankedRow, ShardRow, UserRow,
};
use prism_explorer::tui::keys::KeyMap;
use prism_explorer::tui::theme::Theme;
use prism_explorer::tui::ui::render;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::Terminal;

fn app(width: u16, height: u16) -> App {
    App::new(Options {
        theme: Theme::resolve("dark", false).unwrap(),
        keys: KeyMap::default(),
        rankers: vec!["bpr".into(), "pop".into(), "itemknn".into()],
        race_users: 3,
        oracle_dir: "/models/oracle".into(),
        prism_dir: "/models/prism".into(),
        device: "cpu".into(),
        dataset: "demo".into(),
        size: Rect::new(0, 0, width, height),
    })
}

fn data() -> DataView {
    DataView {
        name: "prism demo (synthetic films)".into(),
        description: "Synthetic data for tests.".into(),
        synthetic: true,
        items: 40,
        interactions: 400,
        users: (1..=30).map(|i| UserRow { id: format!("u{i:04}"), history_len: 10 + i }).collect(),
    }
}

fn explanation(text: &str, latency_ms: f64, param_bytes: usize, spans: &[(&str, Class)]) -> Box<Explanation> {
    let mentions = spans
        .iter()
        .map(|(surface, class)| {
            let start = text.find(surface).unwrap();
            MentionRecord {
                start,
                end: start + surface.len(),
                surface: (*surface).into(),
                class: *class,
                kind: "genre".into(),
                value: surface.to_lowercase(),
            }
        })
        .collect();
    let mut grounding = Summary::default();
    for (surface, class) in spans {
        match class {
            Class::Grounded => grounding.grounded.push((*surface).into()),
            Class::ItemOnly => grounding.item_only.push((*surface).into()),
            Class::HistoryOnly => grounding.history_only.push((*surface).into()),
            Class::Invented => grounding.invented.push((*surface).into()),
        }
    }
    Box::new(Explanation {
        text: text.into(),
        latency_ms,
        ttft_ms: latency_ms / 10.0,
        new_tokens: 20,
        tokens_per_s: 20_000.0 / latency_ms,
        param_bytes,
        peak_rss_bytes: 512_000_000,
        grounding,
        mentions,
        prompt: String::new(),
        history_cut: 0,
        prompt_tokens_dropped: 0,
        stats: GenStats::default(),
    })
}

/// The main screen after a user and an item were chosen and both models answered.
fn explored(width: u16, height: u16) -> App {
    let mut app = app(width, height);
    for (kind, bytes) in [(PromptKind::Oracle, 990_000_000), (PromptKind::Prism, 140_000_000)] {
        let info = ModelInfo { architecture: "t5".into(), param_bytes: bytes, load_ms: 850.0 };
        update(&mut app, Event::Model { kind, result: Ok(info) });
    }
    update(&mut app, Event::Data(Ok(data())));
    let history = (1..=12)
        .map(|i| HistoryRow {
            title: format!("Film {i}"),
            features: "drama, 1990s".into(),
            rating: 4.0,
            date: format!("2021-03-{i:02}"),
        })
        .collect();
    update(&mut app, Event::History { req: 1, rows: history });
    let ranked = (1..=10)
        .map(|i| RankedRow {
            item: format!("m{i:04}"),
            title: format!("Recommended {i}"),
            score: 1.0 / i as f32,
            features: "drama, noir".into(),
        })
        .collect();
    update(&mut app, Event::Ranked { req: 1, result: Ok(ranked) });
    update(&mut app, Event::Tick(Duration::from_secs(3)));
    let oracle = "A slow-burning Drama with Noir touches, like the films you rated highly; its Western \
                  setting is new for you.";
    let prism = "A Drama with Noir style, close to your history.";
    update(
        &mut app,
        Event::Explained {
            req: 2,
            kind: PromptKind::Oracle,
            result: Ok(explanation(
                oracle,
                2400.0,
                990_000_000,
                &[("Drama", Class::Grounded), ("Noir", Class::ItemOnly), ("Western", Class::Invented)],
            )),
        },
    );
    update(
        &mut app,
        Event::Explained {
            req: 2,
            kind: PromptKind::Prism,
            result: Ok(explanation(
                prism,
                300.0,
                140_000_000,
                &[("Drama", Class::Grounded), ("Noir", Class::ItemOnly)],
            )),
        },
    );
    app
}

fn text(buffer: &Buffer) -> String {
    let area = buffer.area;
    let mut out = String::new();
    for y in 0..area.height {
        let line: String = (0..area.width).map(|x| buffer[(x, y)].symbol()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn draw(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| render(app, frame)).unwrap();
    text(terminal.backend().buffer())
}

/// Compares the drawing with `tests/snapshots/NAME.txt` (or writes it with `UPDATE_SNAPSHOTS=1`).
fn check(app: &App, width: u16, height: u16, name: &str) {
    let actual = draw(app, width, height);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!("{} is missing: run with UPDATE_SNAPSHOTS=1 and review it", path.display())
    });
    if actual != expected {
        panic!("{name} differs from {}:\n--- expected\n{expected}\n--- actual\n{actual}", path.display());
    }
}

fn key(c: char) -> Event {
    Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

#[test]
fn main_screen_80x24() {
    check(&explored(80, 24), 80, 24, "main_80x24");
}

#[test]
fn main_screen_160x48() {
    check(&explored(160, 48), 160, 48, "main_160x48");
}

#[test]
fn help_overlay_lists_every_binding() {
    let mut app = explored(160, 48);
    update(&mut app, key('?'));
    check(&app, 160, 48, "help_160x48");
    let drawn = draw(&app, 160, 48);
    for binding in &app.keys.bindings {
        assert!(drawn.contains(binding.help), "help lacks {:?}", binding.help);
    }
    let mut small = explored(80, 24);
    update(&mut small, key('?'));
    check(&small, 80, 24, "help_80x24");
}

#[test]
fn errors_show_in_place() {
    let mut app = app(80, 24);
    update(
        &mut app,
        Event::Model {
            kind: PromptKind::Oracle,
            result: Err("checkpoint directory /models/oracle does not exist".into()),
        },
    );
    update(&mut app, Event::Data(Err("demo: items.jsonl.gz line 3: expected a title".into())));
    check(&app, 80, 24, "errors_80x24");
}

#[test]
fn every_screen_draws_at_any_size_without_panicking() {
    for (width, height) in [(1, 1), (2, 3), (20, 6), (80, 24), (200, 60)] {
        let mut app = explored(width, height);
        for c in ['1', '2', '3', '4', '?'] {
            update(&mut app, key(c));
            draw(&app, width, height);
        }
    }
}

#[test]
fn about_says_the_demo_is_synthetic() {
    let mut app = explored(120, 30);
    update(&mut app, key('4'));
    let drawn = draw(&app, 120, 30);
    assert!(drawn.contains("The demo data is synthetic"), "{drawn}");
    assert!(drawn.contains("/models/oracle") && drawn.contains("/models/prism"), "{drawn}");
}

#[test]
fn a_sharded_job_shows_its_shards_and_slurm_tasks() {
    let mut app = explored(80, 24);
    update(&mut app, key('3'));
    update(&mut app, Event::Job(JobMsg::Started { dir: "/scratch/job".into(), started_here: false }));
    let event = DistillEvent::new(Stage::Teach, EventKind::Progress, 30, 48)
        .message("slurm array: 1 DONE, 2 RUNNING, 1 SUBMITTED");
    update(&mut app, Event::Job(JobMsg::Event(event)));
    let row = |shard: usize, done: usize, complete: bool, slurm: &str| ShardRow {
        shard,
        done,
        total: 12,
        complete,
        slurm: Some(slurm.to_owned()),
    };
    let rows = vec![
        row(0, 12, true, "812_0 DONE"),
        row(1, 8, false, "812_1 RUNNING"),
        row(2, 10, false, "815_2 RUNNING (1 retries)"),
        row(3, 0, false, "815_3 SUBMITTED"),
    ];
    update(&mut app, Event::Job(JobMsg::Shards(rows)));
    check(&app, 80, 24, "jobs_shards_80x24");
}

#[test]
fn a_terminal_below_the_minimum_says_so_instead_of_clipping_panels() {
    let app = explored(20, 5);
    let screen = draw(&app, 20, 5);
    let joined = screen.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(joined.contains("terminal too small (needs 64×20, has 20×5)"), "{screen}");
    assert!(!screen.contains("Users"), "{screen}");
    let full = draw(&explored(80, 24), 80, 24);
    assert!(!full.contains("too small"), "{full}");
}

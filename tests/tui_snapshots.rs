//! The explorer's screens drawn on ratatui's `TestBackend`, compared as text with
//! `tests/snapshots/*.txt`. After an intended change, rerun with `UPDATE_SNAPSHOTS=1` and review
//! the diff of the snapshot files.

use std::path::PathBuf;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use prism_explorer::config::{ExtraSource, ExtraSystem};
use prism_explorer::distill::slurm::{EndedRun, Seen};
use prism_explorer::distill::status::{
    Holders, JobState, JobStatus, ShardState, ShardStatus, SlurmStatus, StageStatus, TaskStatus,
};
use prism_explorer::distill::{DistillEvent, EventKind, Stage};
use prism_explorer::explain::{Class, Explanation, MentionRecord, Summary, Verdict};
use prism_explorer::model::stats::GenStats;
use prism_explorer::tui::app::{update, App, Options};
use prism_explorer::tui::event::Event;
use prism_explorer::tui::keys::KeyMap;
use prism_explorer::tui::panels::compare::{Answer, ModelInfo, Recorded, ORACLE, PRISM};
use prism_explorer::tui::panels::history::HistoryRow;
use prism_explorer::tui::panels::jobs::JobMsg;
use prism_explorer::tui::panels::ranked::RankedRow;
use prism_explorer::tui::panels::users::{DataView, UserRow};
use prism_explorer::tui::render::render;
use prism_explorer::tui::theme::Theme;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::Terminal;

fn app(width: u16, height: u16) -> App {
    app_with(width, height, Vec::new())
}

fn app_with(width: u16, height: u16, extra: Vec<ExtraSystem>) -> App {
    App::new(Options {
        theme: Theme::resolve("dark", false).unwrap(),
        keys: KeyMap::default(),
        rankers: vec!["bpr".into(), "pop".into(), "itemknn".into()],
        race_users: 3,
        oracle_dir: "/models/oracle".into(),
        prism_dir: "/models/prism".into(),
        extra,
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

/// The mentions and grounding summary of `spans` in `text`.
fn grounded(text: &str, spans: &[(&str, Class)]) -> (Vec<MentionRecord>, Summary) {
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
    (mentions, grounding)
}

fn explanation(
    text: &str,
    latency_ms: f64,
    param_bytes: usize,
    spans: &[(&str, Class)],
    verdict: Verdict,
) -> Answer {
    let (mentions, grounding) = grounded(text, spans);
    Answer::Generated(Box::new(Explanation {
        text: text.into(),
        written: None,
        latency_ms,
        ttft_ms: latency_ms / 10.0,
        new_tokens: 20,
        tokens_per_s: 20_000.0 / latency_ms,
        param_bytes,
        peak_rss_bytes: 512_000_000,
        grounding,
        mentions,
        verdict,
        prompt: String::new(),
        history_cut: 0,
        prompt_tokens_dropped: 0,
        // A generation's own peak: a tenth of the weights.
        stats: GenStats { generation_peak_bytes: param_bytes as u64 / 10, ..GenStats::default() },
    }))
}

/// The main screen after a user and an item were chosen and both models answered.
fn explored(width: u16, height: u16) -> App {
    explored_with(app(width, height))
}

fn explored_with(mut app: App) -> App {
    for (pane, bytes) in [(ORACLE, 990_000_000), (PRISM, 140_000_000)] {
        let info = ModelInfo {
            architecture: "t5".into(),
            param_bytes: bytes,
            load_ms: 850.0,
            max_input_tokens: Some(512),
            history_items: (pane == PRISM).then_some(20),
        };
        update(&mut app, Event::Model { pane, result: Ok(info) });
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
    let prism = "Recommended 1: a Drama with Noir style, close to your history.";
    let oracle_verdict =
        Verdict { title_named: false, titles_invented: 0, features_invented: 1, misattributed: vec![] };
    let prism_verdict = Verdict { title_named: true, ..Verdict::default() };
    update(
        &mut app,
        Event::Explained {
            req: 2,
            pane: ORACLE,
            result: Ok(explanation(
                oracle,
                2400.0,
                990_000_000,
                &[("Drama", Class::Grounded), ("Noir", Class::ItemOnly), ("Western", Class::Invented)],
                oracle_verdict,
            )),
        },
    );
    update(
        &mut app,
        Event::Explained {
            req: 2,
            pane: PRISM,
            result: Ok(explanation(
                prism,
                300.0,
                140_000_000,
                &[("Drama", Class::Grounded), ("Noir", Class::ItemOnly)],
                prism_verdict,
            )),
        },
    );
    app
}

/// A `file:` system as a third column, answering with a recorded row.
fn peter() -> ExtraSystem {
    ExtraSystem {
        name: "peter".into(),
        source: ExtraSource::File { path: "/runs/peter.jsonl".into(), model: None },
    }
}

fn with_file_column(width: u16, height: u16, latency_ms: Option<f64>) -> App {
    let mut app = explored_with(app_with(width, height, vec![peter()]));
    let info = ModelInfo {
        architecture: "precomputed".into(),
        param_bytes: 0,
        load_ms: 3.0,
        max_input_tokens: None,
        history_items: None,
    };
    update(&mut app, Event::Model { pane: 2, result: Ok(info) });
    let text = "A Musical film, a genre you return to often.";
    let (mentions, grounding) = grounded(text, &[("Musical", Class::HistoryOnly)]);
    let verdict = Verdict { misattributed: vec!["genre".into()], ..Verdict::default() };
    let recorded = Recorded { text: text.into(), latency_ms, grounding, mentions, verdict };
    update(&mut app, Event::Explained { req: 2, pane: 2, result: Ok(Answer::Recorded(Box::new(recorded))) });
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
    for binding in app.keys.on(prism_explorer::tui::keys::Screen::Explorer) {
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
            pane: ORACLE,
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
    let wide = draw(&app, 200, 30);
    assert!(wide.contains("loaded in 850 ms; its prompt shows the 20 newest history items"), "{wide}");
    assert_eq!(wide.matches("newest history items").count(), 1, "the Oracle's prompt has no window: {wide}");
}

/// A watched Slurm job whose coordinator gave up: the panel says so, why, and what to do next, and
/// each shard's state; the teach line is the shards' sum, not the last message's 0/0.
#[test]
fn a_sharded_job_shows_its_shards_and_slurm_tasks() {
    let mut app = explored(80, 24);
    update(&mut app, key('3'));
    update(&mut app, Event::Job(JobMsg::Started { dir: "/scratch/job".into(), started_here: false }));
    let event = DistillEvent::new(Stage::Teach, EventKind::Progress, 30, 48)
        .message("slurm array: 1 DONE, 1 RUNNING, 1 CANCELLED, 1 FAILED");
    update(&mut app, Event::Job(JobMsg::Event(event)));
    let resume = "cd /scratch && prism distill --out /scratch/job --resume --backend slurm";
    let gave_up = DistillEvent::new(Stage::Teach, EventKind::Failed, 0, 0)
        .message("slurm: teach task 3 (job 815) ended FAILED (exit 1:0) without finishing, 2 times in all")
        .next(format!("raise [slurm] max_retries (now 1) in the config, then continue with: {resume}"));
    let seen = |state: &str| Seen { state: state.into(), ..Seen::default() };
    let shard = |shard: usize, state: ShardState, done: usize, task: Option<(&str, Seen)>, detail: &str| {
        ShardStatus {
            shard,
            state,
            done,
            total: 12,
            complete: state == ShardState::Done,
            detail: detail.into(),
            locked: Some(state == ShardState::Running),
            idle_s: Some(1.0),
            task: task.map(|(id, seen)| TaskStatus {
                id: id.into(),
                seen: Some(seen),
                retries: usize::from(id.starts_with("815")),
                ended: Vec::<EndedRun>::new(),
                log: format!("/scratch/job/teach/shards/{shard}/slurm-{id}.out").into(),
            }),
            latest: None,
        }
    };
    let cancelled = Seen { by: Some("alice".into()), ..seen("CANCELLED") };
    let failed = Seen { exit_code: Some("1:0".into()), ..seen("FAILED") };
    let shards = vec![
        shard(0, ShardState::Done, 12, Some(("812_0", seen("COMPLETED"))), ""),
        shard(1, ShardState::Running, 8, Some(("812_1", seen("RUNNING"))), "Slurm says RUNNING"),
        shard(2, ShardState::Cancelled, 4, Some(("812_2", cancelled)), "Slurm says CANCELLED by alice"),
        shard(3, ShardState::Failed, 6, Some(("815_3", failed)), "Slurm says FAILED (exit 1:0)"),
    ];
    let stage = |stage: Stage, done: usize, total: usize| StageStatus {
        stage,
        complete: false,
        done,
        total,
        latest: None,
    };
    let status = JobStatus {
        dir: "/scratch/job".into(),
        preset: "paper".into(),
        teacher: "/models/oracle".into(),
        teacher_outputs: None,
        state: JobState::Failed,
        reason: format!("{}: no coordinator holds the job (slurm/lock is free)", gave_up.message),
        next: Some(gave_up.next.clone()),
        resume: None,
        holders: Holders { runner: Some(false), coordinator: Some(false) },
        stages: vec![
            stage(Stage::Teach, 30, 48),
            stage(Stage::Filter, 0, 0),
            stage(Stage::Train, 0, 0),
            stage(Stage::Evaluate, 0, 0),
        ],
        shards,
        slurm: Some(SlurmStatus {
            live: true,
            as_of: Some(0.0),
            error: None,
            summary: Default::default(),
            recorded: Default::default(),
        }),
        last_end: Some(gave_up.clone()),
        last_slurm: None,
        problems: Vec::new(),
        summary: None,
        time: 0.0,
    };
    update(&mut app, Event::Job(JobMsg::Status(Box::new(status))));
    update(&mut app, Event::Job(JobMsg::Event(gave_up)));
    // A Slurm message afterwards carries no progress and leaves the teach line as it is.
    let message = DistillEvent::new(Stage::Teach, EventKind::Slurm, 0, 0)
        .message("slurm: submitted teach task(s) [3] as job 816");
    update(&mut app, Event::Job(JobMsg::Event(message)));
    check(&app, 80, 24, "jobs_shards_80x24");
}

#[test]
fn a_file_system_is_a_third_column_with_its_verdict() {
    check(&with_file_column(140, 40, Some(230.0)), 140, 40, "file_column_140x40");
    let drawn = draw(&with_file_column(140, 40, None), 140, 40);
    assert!(drawn.contains("no recorded latency"), "{drawn}");
}

#[test]
fn at_80x24_x_brings_the_file_column_in_place_of_the_prism() {
    let mut app = with_file_column(80, 24, Some(230.0));
    assert!(!draw(&app, 80, 24).contains(" peter "));
    update(&mut app, key('x'));
    check(&app, 80, 24, "file_column_80x24");
}

#[test]
fn a_missing_row_says_so() {
    let mut app = explored_with(app_with(140, 40, vec![peter()]));
    let message = "No explanation of item m0001 for user u0001 in file:/runs/peter.jsonl.";
    update(&mut app, Event::Explained { req: 2, pane: 2, result: Ok(Answer::Missing(message.into())) });
    let drawn = draw(&app, 140, 40);
    assert!(drawn.contains("No explanation of item m0001 for user"), "{drawn}");
}

#[test]
fn the_race_tally_shows_speed_beside_faithfulness() {
    let mut app = app(160, 48);
    for (pane, bytes) in [(ORACLE, 990_000_000), (PRISM, 140_000_000)] {
        let info = ModelInfo {
            architecture: "t5".into(),
            param_bytes: bytes,
            load_ms: 850.0,
            max_input_tokens: Some(512),
            history_items: (pane == PRISM).then_some(20),
        };
        update(&mut app, Event::Model { pane, result: Ok(info) });
    }
    update(&mut app, Event::Data(Ok(data())));
    update(&mut app, key('d'));
    // Users u0001..u0003 in turn: the race ranks (request 2, 4, 6), then explains (3, 5, 7).
    for (i, (oracle_title, prism_invented)) in [(true, 0), (false, 1), (true, 0)].into_iter().enumerate() {
        let rank = 2 * i as u64 + 2;
        let ranked = vec![RankedRow {
            item: "m0001".into(),
            title: "Recommended 1".into(),
            score: 1.0,
            features: "drama".into(),
        }];
        update(&mut app, Event::Ranked { req: rank, result: Ok(ranked) });
        update(&mut app, Event::Tick(Duration::from_secs(i as u64 + 1)));
        let oracle = Verdict { title_named: oracle_title, features_invented: 1, ..Verdict::default() };
        let prism = Verdict { title_named: true, titles_invented: prism_invented, ..Verdict::default() };
        let misattributed = Verdict { misattributed: vec!["genre".into()], ..prism };
        let prism = if i == 2 { misattributed } else { prism };
        for (pane, latency, verdict) in [(ORACLE, 2000.0, oracle), (PRISM, 400.0, prism)] {
            let answer = explanation("An explanation.", latency, 1, &[], verdict);
            update(&mut app, Event::Explained { req: rank + 1, pane, result: Ok(answer) });
        }
    }
    update(&mut app, key('2'));
    check(&app, 160, 48, "race_tally_160x48");
    let drawn = draw(&app, 160, 48);
    assert!(drawn.contains("title 2/3 · invented 1.0/expl. · misattributed 0/3"), "{drawn}");
    assert!(drawn.contains("title 3/3 · invented 0.3/expl. · misattributed 1/3"), "{drawn}");
}

/// The words drawn inside the Prism's column, in reading order.
fn prism_column(app: &App, width: u16, height: u16) -> String {
    use prism_explorer::tui::layout::{areas_with, Panel, Tab};
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| render(app, frame)).unwrap();
    let size = Rect::new(0, 0, width, height);
    let rect = areas_with(size, Tab::Explore, &app.columns(width)).get(Panel::Pane(PRISM)).unwrap();
    let buffer = terminal.backend().buffer();
    let rows = (rect.y + 1..rect.bottom() - 1)
        .map(|y| (rect.x + 1..rect.right() - 1).map(|x| buffer[(x, y)].symbol()).collect::<String>());
    rows.collect::<Vec<_>>().join(" ").split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A prompt cut to the model's input length is said in the explorer, as the command line says it.
#[test]
fn a_cut_prompt_is_warned_about_in_its_column() {
    let mut app = explored(160, 48);
    let Answer::Generated(mut cut) = explanation("A war drama.", 900.0, 1, &[], Verdict::default()) else {
        unreachable!()
    };
    (cut.history_cut, cut.prompt_tokens_dropped) = (3, 75);
    update(&mut app, Event::Explained { req: 2, pane: PRISM, result: Ok(Answer::Generated(cut)) });
    let drawn = prism_column(&app, 160, 48);
    assert!(drawn.contains("the prism prompt was cut to the model's input length of 512 tokens"), "{drawn}");
    assert!(drawn.contains("3 oldest history item(s), 75 tokens, were left out"), "{drawn}");
    // Even where the column is too short for its measurements.
    let mut short = explored(80, 24);
    let Answer::Generated(mut cut) = explanation("A war drama.", 900.0, 1, &[], Verdict::default()) else {
        unreachable!()
    };
    (cut.history_cut, cut.prompt_tokens_dropped) = (3, 75);
    update(&mut short, Event::Explained { req: 2, pane: PRISM, result: Ok(Answer::Generated(cut)) });
    let drawn = prism_column(&short, 80, 24);
    assert!(drawn.contains("⚠ the prism prompt was cut"), "{drawn}");
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

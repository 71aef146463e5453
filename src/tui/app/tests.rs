//! `update` driven event by event, without a terminal.

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Rect;

use super::*;
use crate::config::{ExtraSource, ExtraSystem};
use crate::distill::events::{DistillEvent, EventKind, Stage};
use crate::explain::{Explanation, Summary, Verdict};
use crate::model::GenStats;
use crate::tui::layout::list_rows;
use crate::tui::panels::compare::{Answer, Gen, ModelInfo, ORACLE, PRISM};
use crate::tui::panels::jobs::{JobMsg, JobState};
use crate::tui::panels::performance::{memory_ratio, speedup};
use crate::tui::panels::popup::{InputPurpose, Popup};
use crate::tui::panels::ranked::RankedRow;
use crate::tui::panels::users::{fuzzy_score, DataView, UserRow};

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
        .map(|i| RankedRow { item: (*i).into(), title: format!("T{i}"), score: 1.0, features: String::new() })
        .collect()
}

fn explanation(latency_ms: f64, invented: usize, peak: u64) -> Answer {
    Answer::Generated(Box::new(Explanation {
        text: "a film".into(),
        written: None,
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
        stats: GenStats { generation_peak_bytes: peak, ..GenStats::default() },
    }))
}

/// Each model's generation peak in the tests: 100 bytes for either.
const PEAK: u64 = 100;

fn ready_models(app: &mut App) {
    for (pane, bytes) in [(ORACLE, 400), (PRISM, 100)] {
        let info = ModelInfo {
            architecture: "t5".into(),
            param_bytes: bytes,
            load_ms: 1.0,
            max_input_tokens: Some(512),
            history_items: None,
        };
        update(app, Event::Model { pane, result: Ok(info) });
    }
}

fn rank_req(effects: &[Effect]) -> u64 {
    effects.iter().find_map(|e| if let Effect::Rank { req, .. } = e { Some(*req) } else { None }).unwrap()
}

fn explain_req(effects: &[Effect]) -> u64 {
    effects.iter().find_map(|e| if let Effect::Explain { req, .. } = e { Some(*req) } else { None }).unwrap()
}

#[test]
fn data_selects_the_first_user_and_ranking_explains_the_top_item() {
    let mut app = app();
    let effects = update(&mut app, Event::Data(Ok(data(&["u1", "u2"]))));
    assert_eq!(effects[1], Effect::Rank { req: 1, user: "u1".into(), ranker: "pop".into() });
    let effects = update(&mut app, Event::Ranked { req: 1, result: Ok(ranked(&["a", "b"])) });
    assert_eq!(effects, vec![Effect::Explain { req: 2, user: "u1".into(), item: "a".into() }]);
    assert!(matches!(app.compare.panes[0].gen, Gen::Running { .. }));
}

#[test]
fn moving_the_selection_cancels_and_drops_stale_answers() {
    let mut app = app();
    update(&mut app, Event::Data(Ok(data(&["u1", "u2"]))));
    update(&mut app, Event::Ranked { req: 1, result: Ok(ranked(&["a", "b"])) });
    let effects = update(&mut app, key('j'));
    assert_eq!(effects[0], Effect::CancelExplain);
    assert_eq!(app.history.user.as_deref(), Some("u2"));
    // The first user's ranking and explanation arrive late: ignored.
    update(&mut app, Event::Ranked { req: 1, result: Ok(ranked(&["z"])) });
    assert_eq!(app.ranked.rows, Loadable::Loading);
    update(&mut app, Event::Explained { req: 2, pane: ORACLE, result: Ok(explanation(5.0, 0, PEAK)) });
    assert!(matches!(app.compare.panes[0].gen, Gen::Idle));
    assert!(app.compare.panes[0].latencies.is_empty());
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
    assert_eq!(app.compare.target.as_ref().unwrap().item, "b");
    update(&mut app, Event::Text { req, pane: PRISM, text: "a fi".into() });
    assert!(matches!(&app.compare.panes[1].gen, Gen::Running { text, .. } if text == "a fi"));
    update(&mut app, Event::Explained { req, pane: PRISM, result: Err("boom".into()) });
    assert!(matches!(&app.compare.panes[1].gen, Gen::Failed(m) if m == "boom"));
}

#[test]
fn fuzzy_filter_ranks_exact_then_prefix_then_subsequence() {
    let mut app = app();
    update(&mut app, Event::Data(Ok(data(&["u0420", "u0042", "x0042", "u1000"]))));
    update(&mut app, key('/'));
    for c in "u0042".chars() {
        update(&mut app, key(c));
    }
    assert_eq!(app.users.selected().unwrap().id, "u0042");
    update(&mut app, code(KeyCode::Backspace));
    // "u004": prefix of u0042 only; u0420 has u,0,4 in order (subsequence), x0042 lacks 'u'.
    let ids: Vec<&str> = app.users.visible.iter().map(|&i| app.users.all()[i].id.as_str()).collect();
    assert_eq!(ids, ["u0042"]);
    update(&mut app, code(KeyCode::Esc));
    assert_eq!(app.users.visible.len(), 4);
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
    assert_eq!(app.users.filter, "q");
}

#[test]
fn quit_from_anywhere_and_help_closes_on_any_key() {
    let mut app = app();
    update(&mut app, key('?'));
    assert_eq!(app.popups, vec![Popup::Help]);
    update(&mut app, key('x'));
    assert!(app.popups.is_empty());
    update(&mut app, key('a'));
    assert_eq!(app.popups, vec![Popup::input(InputPurpose::AttachJob)]);
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
    assert_eq!(app.popups, vec![Popup::input(InputPurpose::Annotator("runs/study".into()))]);
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
    let job = app.jobs.job.as_ref().unwrap();
    assert_eq!((job.losses.as_slice(), &job.state), (&[2.5][..], &JobState::Running));
    assert_eq!(update(&mut app, key('c')), vec![Effect::CancelJob]);
    update(&mut app, Event::Job(JobMsg::Ended(Ok("detached".into()))));
    assert_eq!(app.jobs.job.as_ref().unwrap().state, JobState::Detached);
}

#[test]
fn failed_model_shows_its_error_in_place_and_the_other_still_runs() {
    let mut app = app();
    update(&mut app, Event::Model { pane: ORACLE, result: Err("no such dir".into()) });
    update(&mut app, Event::Data(Ok(data(&["u1"]))));
    update(&mut app, Event::Ranked { req: 1, result: Ok(ranked(&["a"])) });
    assert!(matches!(&app.compare.panes[0].gen, Gen::Failed(m) if m == "no such dir"));
    assert!(matches!(app.compare.panes[1].gen, Gen::Running { .. }));
}

#[test]
fn race_runs_through_users_and_tallies() {
    let mut app = app();
    ready_models(&mut app);
    update(&mut app, Event::Data(Ok(data(&["u1", "u2", "u3"]))));
    let effects = update(&mut app, key('d'));
    let mut req = rank_req(&effects);
    for (i, user) in ["u1", "u2"].iter().enumerate() {
        assert_eq!(app.history.user.as_deref(), Some(*user));
        let effects = update(&mut app, Event::Ranked { req, result: Ok(ranked(&["a"])) });
        let ereq = explain_req(&effects);
        update(&mut app, Event::Tick(Duration::from_secs(i as u64 + 1)));
        update(
            &mut app,
            Event::Explained { req: ereq, pane: ORACLE, result: Ok(explanation(50.0, 1, PEAK)) },
        );
        let effects = update(
            &mut app,
            Event::Explained { req: ereq, pane: PRISM, result: Ok(explanation(10.0, 0, PEAK)) },
        );
        if i == 0 {
            req = rank_req(&effects);
        }
    }
    let race = app.race.as_ref().unwrap();
    assert_eq!(race.results.len(), 2);
    assert_eq!(race.finished, Some(Duration::from_secs(2)));
    assert_eq!(speedup(&app.compare), (Some(5.0), Some(5.0)));
    // Own memory: weights 400 + peak 100 over weights 100 + peak 100.
    assert_eq!(memory_ratio(&app.compare), Some(2.5));
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
    assert_eq!(app.compare.panes.len(), 4);
    assert_eq!(app.compare.panes[2].source.location(), "file:peter.jsonl");
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
    assert!(matches!(app.compare.panes[2].gen, Gen::Running { .. }));
    let missing = Answer::Missing("No explanation of item a for user u1 in file:peter.jsonl.".into());
    update(&mut app, Event::Explained { req, pane: 2, result: Ok(missing) });
    assert!(matches!(&app.compare.panes[2].gen, Gen::Done(Answer::Missing(m)) if m.contains("item a")));
    assert!(app.compare.panes[2].latencies.is_empty());
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
    update(&mut app, Event::Explained { req, pane: ORACLE, result: Ok(explanation(50.0, 2, PEAK)) });
    update(&mut app, Event::Explained { req, pane: PRISM, result: Ok(explanation(10.0, 0, PEAK)) });
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
    assert_eq!(app.history.user.as_deref(), Some("u3"));
    assert_eq!(rank_req(&effects), 2);
}

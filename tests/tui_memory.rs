//! The explorer's memory panel stands behind its ratio: the embedded Oracle and Prism explain the
//! same test pairs in the explorer's workers (both models generating at once, on their own
//! threads) and in `prism bench` (each model alone in a child process), with the same decoding;
//! the panel's Oracle/Prism ratio of own memory (weights + largest generation peak) agrees with
//! bench's `model_memory_ratio` within 10%, and each model's generation peak is its own, not the
//! process's.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use prism_explorer::config::Settings;
use prism_explorer::data::{self, Part, Split};
use prism_explorer::explain::samples::{samples, SampleSet};
use prism_explorer::tui::app::{update, App, Options};
use prism_explorer::tui::event::{Effect, Event};
use prism_explorer::tui::keys::KeyMap;
use prism_explorer::tui::panels::compare::{Target, ORACLE, PRISM};
use prism_explorer::tui::panels::performance::memory_ratio;
use prism_explorer::tui::theme::Theme;
use prism_explorer::tui::workers::Workers;

mod common;

const PAIRS: usize = 3;

#[test]
fn the_panel_and_bench_agree_on_each_models_own_memory() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config.toml");
    std::fs::write(&config, "[ranker]\ndefault = \"pop\"\n[decoding]\nbeams = 2\nmax_new_tokens = 12\n")
        .unwrap();
    let c = config.to_str().unwrap();
    let args = ["--config", c, "bench", "--warmup", "0", "--runs", "3", "--inputs", "3"];
    let rest = ["--beams", "2", "--max-new-tokens", "12", "--json"];
    let bench =
        common::json(&common::command(&[&args[..], &rest[..]].concat(), home.path()).output().unwrap());
    let bench_ratio = bench["model_memory_ratio"].as_f64().unwrap();

    let settings = Settings::load_layers(None, Some(Path::new(&config))).unwrap();
    let dataset = data::open(&settings.dataset).unwrap();
    let split = Split::leave_last_out(&dataset);
    let pairs: Vec<(String, String)> =
        samples(&dataset, &split, SampleSet::Held(Part::Test), settings.dataset.history_len)
            .iter()
            .take(PAIRS)
            .map(|s| (dataset.users[s.user as usize].clone(), dataset.item(s.item).id.clone()))
            .collect();
    let mut app = App::new(Options {
        theme: Theme::resolve("dark", false).unwrap(),
        keys: KeyMap::default(),
        rankers: vec!["pop".into()],
        race_users: 1,
        oracle_dir: settings.models.oracle.clone(),
        prism_dir: settings.models.prism.clone(),
        extra: Vec::new(),
        device: "cpu".into(),
        dataset: "demo".into(),
        size: ratatui::layout::Rect::new(0, 0, 160, 48),
    });
    let systems: Vec<_> = app.compare.panes.iter().map(|p| (p.name.clone(), p.source.clone())).collect();
    let (sender, events) = mpsc::channel();
    let mut workers = Workers::start(settings, &systems, sender);
    // The dataset and both models load on their own threads, in any order.
    let mut loaded = 0;
    while loaded < 3 {
        let event = events.recv_timeout(Duration::from_secs(300)).expect("the workers went quiet");
        match &event {
            Event::Data(result) => assert!(result.is_ok(), "{result:?}"),
            Event::Model { result, .. } => assert!(result.is_ok(), "{result:?}"),
            _ => continue,
        }
        loaded += 1;
        update(&mut app, event);
    }
    for (n, (user, item)) in pairs.into_iter().enumerate() {
        let req = n as u64 + 1;
        let target = Target { user: user.clone(), item: item.clone(), title: String::new() };
        app.compare.start(req, target, Duration::ZERO);
        workers.run(Effect::Explain { req, user, item });
        let mut answered = 0;
        while answered < 2 {
            let event = events.recv_timeout(Duration::from_secs(300)).expect("the workers went quiet");
            if let Event::Explained { req: r, result, .. } = &event {
                assert!(result.is_ok(), "{result:?}");
                answered += usize::from(*r == req);
            }
            update(&mut app, event);
        }
    }
    let panel_ratio = memory_ratio(&app.compare).expect("both models generated");
    for (pane, name) in [(ORACLE, "oracle"), (PRISM, "prism")] {
        let p = &app.compare.panes[pane];
        let (panel_peak, bench_peak) =
            (p.generation_peak_bytes, bench[name]["generation_peak_bytes"].as_u64().unwrap());
        eprintln!("{name}: generation peak {panel_peak} B in the explorer, {bench_peak} B in bench");
        assert!(panel_peak > 0 && bench_peak > 0, "{name}");
        // In the explorer the other model generates at the same time, on another thread: were its
        // allocations counted too, the Prism's peak would be several times bench's.
        let off = panel_peak as f64 / bench_peak as f64 - 1.0;
        assert!(off.abs() < 0.25, "{name}: {panel_peak} B in the explorer, {bench_peak} B in bench");
    }
    eprintln!("memory ratio: panel {panel_ratio:.3}, bench {bench_ratio:.3}");
    assert!((panel_ratio / bench_ratio - 1.0).abs() < 0.10, "panel {panel_ratio} vs bench {bench_ratio}");
}

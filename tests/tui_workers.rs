//! The explorer's workers on a real dataset with a `file:` column: the file is read once, each
//! request is answered with the row for its pair — grounded and judged like a generated
//! explanation, with its recorded latency — or with a message saying the file has none.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use prism_explorer::config::Settings;
use prism_explorer::explain::PromptKind;
use prism_explorer::tui::event::{Effect, Event};
use prism_explorer::tui::panels::compare::{Answer, Source};
use prism_explorer::tui::workers::Workers;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/explanations").join(name)
}

/// The next event that `keep` picks, waiting at most a minute.
fn next<T>(events: &Receiver<Event>, mut keep: impl FnMut(Event) -> Option<T>) -> T {
    loop {
        let event = events.recv_timeout(Duration::from_secs(60)).expect("the workers went quiet");
        if let Some(found) = keep(event) {
            return found;
        }
    }
}

#[test]
fn a_file_column_answers_from_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let rows = dir.path().join("peter.jsonl");
    std::fs::write(
        &rows,
        "{\"user\":\"u1\",\"item\":\"m05\",\"text\":\"Like Red Meadow, a crime thriller by George Lucas.\",\
         \"latency_ms\":41.5}\n",
    )
    .unwrap();
    let mut settings = Settings::load_layers(None, Some(&fixture("config.toml"))).unwrap();
    settings.dataset.path = fixture("dataset").display().to_string();
    let missing = dir.path().join("no-model");
    let systems = vec![
        ("Oracle".to_owned(), Source::Model { dir: missing.clone(), kind: PromptKind::Oracle }),
        ("Prism".to_owned(), Source::Model { dir: missing, kind: PromptKind::Prism }),
        ("peter".to_owned(), Source::File { path: rows.clone(), model: None }),
    ];
    let (sender, events) = mpsc::channel();
    let mut workers = Workers::start(settings, &systems, sender);
    // The file and the dataset load on their own threads, in either order.
    let (mut file, mut data) = (false, false);
    while !(file && data) {
        next(&events, |e| {
            match e {
                Event::Model { pane: 2, result } => file = result.map(|_| true).expect("the file loads"),
                Event::Data(result) => data = result.is_ok(),
                _ => return None,
            }
            Some(())
        });
    }
    assert!(file && data);
    workers.run(Effect::Explain { req: 1, user: "u1".into(), item: "m05".into() });
    let answer = next(&events, |e| match e {
        Event::Explained { req: 1, pane: 2, result } => Some(result.expect("an answer")),
        _ => None,
    });
    let Answer::Recorded(recorded) = answer else { panic!("expected a recorded row, got {answer:?}") };
    assert_eq!(recorded.latency_ms, Some(41.5));
    assert!(recorded.text.starts_with("Like Red Meadow"));
    assert!(!recorded.mentions.is_empty(), "{recorded:?}");
    assert!(!recorded.verdict.title_named, "{recorded:?}");
    workers.run(Effect::Explain { req: 2, user: "u1".into(), item: "m01".into() });
    let answer = next(&events, |e| match e {
        Event::Explained { req: 2, pane: 2, result } => Some(result.expect("an answer")),
        _ => None,
    });
    let Answer::Missing(message) = answer else { panic!("expected a missing row, got {answer:?}") };
    assert!(message.contains("item m01 for user u1") && message.contains("peter.jsonl"), "{message}");
}

#[test]
fn a_broken_file_is_reported_in_its_column_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let rows = dir.path().join("bad.jsonl");
    std::fs::write(&rows, "{\"user\":\"u1\",\"item\":\"m05\"}\n").unwrap();
    let mut settings = Settings::load_layers(None, Some(&fixture("config.toml"))).unwrap();
    settings.dataset.path = fixture("dataset").display().to_string();
    let missing = dir.path().join("no-model");
    let systems = vec![
        ("Oracle".to_owned(), Source::Model { dir: missing.clone(), kind: PromptKind::Oracle }),
        ("Prism".to_owned(), Source::Model { dir: missing, kind: PromptKind::Prism }),
        ("peter".to_owned(), Source::File { path: rows, model: None }),
    ];
    let (sender, events) = mpsc::channel();
    let _workers = Workers::start(settings, &systems, sender);
    let error = next(&events, |e| match e {
        Event::Model { pane: 2, result } => Some(result.expect_err("the file is broken")),
        _ => None,
    });
    assert!(error.contains("bad.jsonl, line 1: field `text` is missing"), "{error}");
    assert!(error.contains("[models.extra] peter"), "{error}");
}

#[test]
fn an_extra_model_named_by_hugging_face_id_loads_from_the_cache() {
    const COMMIT: &str = "3f1c2b9a0d4e5f60718293a4b5c6d7e8f9012345";
    let dir = tempfile::tempdir().unwrap();
    // `hub/models--acme--tiny-prism` as huggingface_hub writes it: refs/main → snapshot → blobs.
    let repo = dir.path().join("hub/models--acme--tiny-prism");
    let snapshot = repo.join("snapshots").join(COMMIT);
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::create_dir_all(&snapshot).unwrap();
    let t5 = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf/t5-v1_0");
    for (i, file) in
        ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json"].iter().enumerate()
    {
        let blob = format!("{i:064x}");
        std::fs::copy(t5.join(file), repo.join("blobs").join(&blob)).unwrap();
        std::os::unix::fs::symlink(format!("../../blobs/{blob}"), snapshot.join(file)).unwrap();
    }
    std::fs::write(repo.join("refs/main"), COMMIT).unwrap();
    // Only this test reads the Hugging Face cache.
    std::env::set_var("HF_HUB_CACHE", dir.path().join("hub"));

    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[models.extra]\ntiny = \"acme/tiny-prism\"\n").unwrap();
    let mut settings = Settings::load_layers(None, Some(&config)).unwrap();
    settings.dataset.path = fixture("dataset").display().to_string();
    let extra = settings.models.extra_systems().unwrap();
    let prism_explorer::config::ExtraSource::Model(id) = &extra[0].source else { panic!("{extra:?}") };
    assert_eq!(id, Path::new("acme/tiny-prism"));
    let missing = dir.path().join("no-model");
    let systems = vec![
        ("Oracle".to_owned(), Source::Model { dir: missing.clone(), kind: PromptKind::Oracle }),
        ("Prism".to_owned(), Source::Model { dir: missing, kind: PromptKind::Prism }),
        ("tiny".to_owned(), Source::Model { dir: id.clone(), kind: PromptKind::Prism }),
    ];
    let (sender, events) = mpsc::channel();
    let _workers = Workers::start(settings, &systems, sender);
    let info = next(&events, |e| match e {
        Event::Model { pane: 2, result } => Some(result.expect("the id resolves from the cache")),
        _ => None,
    });
    assert_eq!(info.architecture, "t5");
}

//! Property tests of the human-evaluation state on disk — the frozen `study.json` and `key.json`
//! and the annotators' `annotations/NAME.jsonl` — truncated, corrupted and mutated at random (a
//! fixed seed and a bounded number of cases: the same cases on every CI run, in seconds):
//!
//! - opening a session or a report never panics;
//! - a refused file's error names it (and, for an annotator file, the line);
//! - nothing already written is lost: a session that opens keeps every judgement it read, its
//!   next answer is appended after them, and a refused file is left as it was.

mod common;

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::sample::Index;

use common::damage::{apply, config, damage};
use prism_explorer::humaneval::report::Loaded;
use prism_explorer::humaneval::store::{self, Judgement, Preference, Writer};

const FILES: [&str; 4] = ["study.json", "key.json", "annotations/ann.jsonl", "annotations/bob.jsonl"];

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/humaneval/small")
}

/// A scratch copy of the study with `file` replaced by `bytes`.
fn damaged_copy(file: &str, bytes: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("annotations")).unwrap();
    for name in FILES {
        std::fs::copy(fixture().join(name), dir.path().join(name)).unwrap();
    }
    std::fs::write(dir.path().join(file), bytes).unwrap();
    dir
}

fn answer(item: &str) -> Judgement {
    Judgement {
        item: item.to_owned(),
        texts: vec![1, 0],
        ratings: vec![vec![5, 5], vec![1, 1]],
        preference: Preference::Tie,
        note: String::new(),
        ms: 1234,
        at_ms: 1_800_000_000_000,
    }
}

proptest! {
    #![proptest_config(config(192, 0xa770_7a7e))]

    #[test]
    fn damaged_study_state_opens_or_fails_clearly_and_loses_nothing(file in any::<Index>(), damage in damage()) {
        let file = FILES[file.index(FILES.len())];
        let original = std::fs::read(fixture().join(file)).unwrap();
        let bytes = apply(&original, &damage);
        let dir = damaged_copy(file, &bytes);
        let path = dir.path().join(file);

        // A study file changed under the annotator files may be reported through them (their
        // start records name another study): any of the study's files, with its path.
        let named = |text: &str| {
            if file.starts_with("annotations/") {
                text.contains(&path.display().to_string())
            } else {
                FILES.iter().any(|f| text.contains(&dir.path().join(f).display().to_string()))
            }
        };
        if let Err(e) = Loaded::open(dir.path()) {
            let text = format!("{e:#}");
            prop_assert!(named(&text), "the error names {}: {}", file, text);
        }

        let before = std::fs::read(dir.path().join("annotations/ann.jsonl")).unwrap();
        match store::open_for(dir.path(), "ann") {
            // Appending needs a study of the fixture's shape (the answer is for 2 slots × 2 criteria).
            Ok((study, recorded, lock)) if study.slots == 2 && study.criteria.len() == 2 && !study.items.is_empty() => {
                let item = study.items[0].id.clone();
                let mut writer = Writer::open(dir.path(), &study, "ann", 1, lock).unwrap();
                writer.append(&answer(&item)).unwrap();
                drop(writer);
                let (_, after, _lock) = store::open_for(dir.path(), "ann").unwrap();
                let kept: Vec<&Judgement> = after.judgements.iter().map(|(_, j)| j).collect();
                let read: Vec<&Judgement> = recorded.judgements.iter().map(|(_, j)| j).collect();
                prop_assert_eq!(&kept[..read.len()], &read[..], "judgements read before the session were lost");
                prop_assert_eq!(kept.len(), read.len() + 1);
                prop_assert_eq!(kept[read.len()], &answer(&item));
                prop_assert!(after.issues.is_empty(), "the torn line is repaired: {:?}", after.issues);
            }
            Ok(_) => {}
            Err(e) => {
                let text = format!("{e:#}");
                prop_assert!(named(&text), "the error names {}: {}", file, text);
                if file.ends_with("ann.jsonl") && !text.contains("cannot") {
                    prop_assert!(text.contains("line"), "the error names the line: {}", text);
                }
                let after = std::fs::read(dir.path().join("annotations/ann.jsonl")).unwrap();
                prop_assert_eq!(after, before, "a refused session changed the annotator file");
            }
        }
    }
}

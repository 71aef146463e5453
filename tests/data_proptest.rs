//! Property tests of every loader on its real-looking fixture files, truncated, corrupted and
//! mutated at random (a fixed seed, so CI runs the same cases every time, in seconds):
//!
//! - no panic, strictly or under `--lenient`;
//! - a failed load names the dataset directory, and a record error names file and line;
//! - a dataset that loads keeps its invariants (per-user time order, indices in bounds, finite
//!   ratings), and a strict load skips nothing;
//! - a file cut inside a line never loads silently: either the load fails or the file's
//!   unterminated last line is in the notes (the documented recovery, `docs/DATA_FORMATS.md`).

mod common;

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::sample::Index;

use common::damage::{apply, damage};
use prism_explorer::data::loaders::{self, LoadOptions};
use prism_explorer::data::Dataset;

const FORMATS: [&str; 9] = [
    "movielens-100k",
    "movielens-1m",
    "movielens-latest",
    "amazon-2014",
    "amazon-2018",
    "yelp",
    "recbole",
    "recbole-ml-100k",
    "generic-jsonl",
];

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datasets").join(name)
}

/// The fixture's files, sorted, without the provenance notes.
fn files(name: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture(name))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_none_or(|e| e != "md"))
        .collect();
    files.sort();
    files
}

/// A scratch copy of fixture `name` with `file` replaced by `bytes`.
fn damaged_copy(name: &str, file: &Path, bytes: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in files(name) {
        std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.path().join(file.file_name().unwrap()), bytes).unwrap();
    dir
}

fn load(dir: &Path, lenient: bool) -> anyhow::Result<Dataset> {
    loaders::load(dir, None, &LoadOptions { lenient, min_stars: 0.0 })
}

/// What every loaded dataset must satisfy.
fn check_invariants(d: &Dataset) -> Result<(), TestCaseError> {
    prop_assert_eq!(d.user_ranges.len(), d.num_users());
    let mut covered = 0;
    for (u, range) in d.user_ranges.iter().enumerate() {
        covered += range.len();
        let slice = &d.interactions[range.clone()];
        prop_assert!(slice.iter().all(|i| i.user as usize == u));
        prop_assert!(slice.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
    }
    prop_assert_eq!(covered, d.interactions.len());
    for i in &d.interactions {
        prop_assert!((i.item as usize) < d.num_items());
        prop_assert!(i.rating.is_finite());
    }
    Ok(())
}

/// The checks that hold for any damage to any file.
fn check_load(dir: &Path) -> Result<Option<Dataset>, TestCaseError> {
    let mut strict = None;
    for lenient in [false, true] {
        match load(dir, lenient) {
            Ok(d) => {
                check_invariants(&d)?;
                if !lenient {
                    prop_assert_eq!(d.notes.skipped, 0);
                    strict = Some(d);
                }
            }
            Err(e) => {
                let text = format!("{e:#}");
                prop_assert!(
                    text.contains(&dir.display().to_string()),
                    "the error names the dataset: {}",
                    text
                );
                if text.contains("malformed record") {
                    prop_assert!(
                        e.chain().any(|c| c.to_string().starts_with(&dir.display().to_string())),
                        "a record error starts with its file's path: {}",
                        text
                    );
                }
            }
        }
    }
    Ok(strict)
}

proptest! {
    #![proptest_config(common::damage::config(256, 0x5eed_da7a))]

    #[test]
    fn damaged_files_load_or_fail_clearly(format in 0..FORMATS.len(), file in any::<Index>(), damage in damage()) {
        let name = FORMATS[format];
        let files = files(name);
        let file = &files[file.index(files.len())];
        let bytes = apply(&std::fs::read(file).unwrap(), &damage);
        let dir = damaged_copy(name, file, &bytes);
        check_load(dir.path())?;
    }

    #[test]
    fn a_file_cut_inside_a_line_never_loads_silently(format in 0..FORMATS.len(), file in any::<Index>(), cut in any::<Index>()) {
        let name = FORMATS[format];
        let files = files(name);
        let file = &files[file.index(files.len())];
        let original = std::fs::read(file).unwrap();
        let at = cut.index(original.len() + 1);
        let dir = damaged_copy(name, file, &original[..at]);
        let Some(d) = check_load(dir.path())? else { return Ok(()) };
        let file_name = file.file_name().unwrap().to_string_lossy().into_owned();
        let read = d.sources.iter().any(|s| s.file == file_name);
        let gzipped = original.starts_with(&[0x1f, 0x8b]);
        let last_line = original[..at].rsplit(|&b| b == b'\n').next().unwrap_or_default();
        let mid_line = !last_line.iter().all(|b| b.is_ascii_whitespace());
        if read && !gzipped && mid_line {
            let noted = d.notes.unterminated.iter().any(|u| u.file == file_name);
            prop_assert!(noted, "{} cut at byte {} of {} loaded without a note", file_name, at, original.len());
        }
    }
}

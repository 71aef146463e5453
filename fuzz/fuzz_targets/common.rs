//! Shared by the loader targets: the fuzz input replaces one file of a fixture dataset (the first
//! byte picks which), and the directory is loaded strictly and leniently. Any outcome but a panic
//! (or a sanitizer report) is fine: errors are what damaged files should give.

use std::path::{Path, PathBuf};

use prism_explorer::data::loaders::{self, Format, LoadOptions};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/datasets").join(name)
}

/// Loads fixture `name` in `format` with one of its files replaced by `data[1..]`.
pub fn load_damaged(name: &str, format: Format, data: &[u8]) {
    let Some((&pick, content)) = data.split_first() else { return };
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture(name))
        .expect("the fixture directory")
        .map(|e| e.expect("a fixture file").path())
        .filter(|p| p.extension().is_none_or(|e| e != "md"))
        .collect();
    files.sort();
    let target = &files[usize::from(pick) % files.len()];
    let dir = tempfile::tempdir().expect("a scratch directory");
    for file in &files {
        let to = dir.path().join(file.file_name().expect("a file name"));
        if file == target {
            std::fs::write(&to, content).expect("write the fuzz input");
        } else {
            std::fs::copy(file, &to).expect("copy a fixture file");
        }
    }
    for lenient in [false, true] {
        let _ = loaders::load(dir.path(), Some(format), &LoadOptions { lenient, min_stars: 0.0 });
    }
}

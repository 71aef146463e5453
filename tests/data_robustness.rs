//! Never a panic on user data: every fixture file, cut short at many points or with bytes
//! overwritten, must load or fail with an error — strictly and leniently.

use std::path::{Path, PathBuf};

use prism_explorer::data::loaders::{self, LoadOptions};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datasets")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Loads `dir` both ways; returning at all (Ok or Err) is the property under test.
fn load_both_ways(dir: &Path) -> usize {
    let mut errors = 0;
    for lenient in [false, true] {
        let options = LoadOptions { lenient, min_stars: 0.0 };
        errors += usize::from(loaders::load(dir, None, &options).is_err());
    }
    errors
}

/// Deterministic damage: truncations at evenly spread points and single-byte overwrites with
/// bytes that break UTF-8, quoting, separators and gzip streams.
fn variants(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let n = bytes.len();
    for k in 0..12 {
        out.push(bytes[..n * k / 12].to_vec());
    }
    for (k, &b) in [0xFFu8, b'"', b'\t', b':', b',', b'|', b'{', 0x00].iter().enumerate() {
        let mut v = bytes.to_vec();
        if n > 0 {
            v[(n * (2 * k + 1) / 17) % n] = b;
        }
        out.push(v);
    }
    out
}

#[test]
fn damaged_fixture_files_give_errors_not_panics() {
    let formats = [
        "movielens-100k",
        "movielens-1m",
        "movielens-latest",
        "amazon-2014",
        "amazon-2018",
        "yelp",
        "recbole",
        "generic-jsonl",
    ];
    let scratch = tempfile::tempdir().unwrap();
    let mut loads = 0;
    let mut errors = 0;
    for format in formats {
        let source = fixtures().join(format);
        let mut files: Vec<_> = std::fs::read_dir(&source).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for file in files {
            let original = std::fs::read(&file).unwrap();
            for (k, damaged) in variants(&original).into_iter().enumerate() {
                let dir = scratch
                    .path()
                    .join(format!("{format}-{}-{k}", file.file_name().unwrap().to_string_lossy()));
                copy_dir(&source, &dir);
                std::fs::write(dir.join(file.file_name().unwrap()), damaged).unwrap();
                errors += load_both_ways(&dir);
                loads += 2;
            }
        }
    }
    // The damage must actually bite: a good share of these loads fail (and none panicked).
    assert!(errors > loads / 10, "{errors} errors in {loads} loads");
}

//! One loader per on-disk dataset format, and detection of the format from a directory's file
//! names. Every loader returns a [`Dataset`] with duplicate (user, item) interactions collapsed to
//! the latest one; filtering is left to the caller.

pub mod amazon;
pub mod generic_jsonl;
pub mod ids;
pub mod lines;
pub mod movielens_100k;
pub mod movielens_1m;
pub mod movielens_latest;
pub mod pylit;
pub mod range;
pub mod recbole;
pub mod text;
pub mod yelp;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context, Result};

use self::lines::Policy;
use super::{source, Dataset, DatasetBuilder};

/// The supported formats, named as in `dataset.format` / `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    MovieLens100K,
    MovieLens1M,
    MovieLensLatest,
    Amazon,
    Yelp,
    RecBole,
    GenericJsonl,
}

impl Format {
    pub const ALL: [Format; 7] = [
        Format::GenericJsonl,
        Format::MovieLens100K,
        Format::MovieLens1M,
        Format::MovieLensLatest,
        Format::Yelp,
        Format::RecBole,
        Format::Amazon,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::MovieLens100K => "movielens-100k",
            Format::MovieLens1M => "movielens-1m",
            Format::MovieLensLatest => "movielens-latest",
            Format::Amazon => "amazon",
            Format::Yelp => "yelp",
            Format::RecBole => "recbole",
            Format::GenericJsonl => "generic-jsonl",
        }
    }

    /// The files that identify the format, as shown when detection fails.
    fn signature(self) -> &'static str {
        match self {
            Format::MovieLens100K => "u.data (+ u.item)",
            Format::MovieLens1M => "ratings.dat + movies.dat",
            Format::MovieLensLatest => "ratings.csv + movies.csv",
            Format::Amazon => "one reviews *.json[.gz] (+ meta_*.json[.gz])",
            Format::Yelp => "review.json or yelp_academic_dataset_review.json (+ business.json)",
            Format::RecBole => "NAME.inter (+ NAME.item)",
            Format::GenericJsonl => "interactions.jsonl[.gz] + items.jsonl[.gz]",
        }
    }

    /// Whether `dir` holds this format's identifying files. Amazon is the catch-all for JSON lines
    /// and is tried last.
    fn matches(self, dir: &Path, names: &[String]) -> bool {
        let has = |name: &str| names.iter().any(|n| n == name);
        match self {
            Format::MovieLens100K => has("u.data"),
            Format::MovieLens1M => has("ratings.dat") && has("movies.dat"),
            Format::MovieLensLatest => has("ratings.csv") && has("movies.csv"),
            Format::Yelp => yelp::review_file(dir).is_some(),
            Format::RecBole => names.iter().any(|n| n.ends_with(".inter")),
            Format::GenericJsonl => has("interactions.jsonl") || has("interactions.jsonl.gz"),
            Format::Amazon => !amazon::review_files(names).is_empty(),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = anyhow::Error;

    fn from_str(name: &str) -> Result<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name).ok_or_else(|| {
            let known: Vec<_> = Format::ALL.iter().map(|f| f.name()).collect();
            anyhow::anyhow!("unknown dataset format {name:?}; known formats: auto, {}", known.join(", "))
        })
    }
}

/// What a loader needs from the settings.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadOptions {
    /// Skip and count malformed records instead of failing on the first.
    pub lenient: bool,
    /// Yelp: keep reviews with at least this many stars.
    pub min_stars: f32,
}

impl Default for LoadOptions {
    fn default() -> LoadOptions {
        LoadOptions { lenient: false, min_stars: 0.0 }
    }
}

/// The file names directly inside `dir`, sorted.
pub(crate) fn file_names(dir: &Path) -> Result<Vec<String>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read dataset directory {}", dir.display()))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read dataset directory {}", dir.display()))?;
        if entry.path().is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// The first of `names` that exists in `dir`.
pub(crate) fn find_file(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    names.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// Like [`find_file`], but a missing file is an error naming what was looked for.
pub(crate) fn require_file(dir: &Path, names: &[&str], format: Format) -> Result<PathBuf> {
    find_file(dir, names).ok_or_else(|| {
        anyhow::anyhow!("{} dataset in {}: missing {}", format, dir.display(), names.join(" or "))
    })
}

/// Detects the format of `dir` from its file names.
pub fn detect(dir: &Path) -> Result<Format> {
    if !dir.is_dir() {
        bail!("dataset directory {} does not exist or is not a directory", dir.display());
    }
    let names = file_names(dir)?;
    if let Some(format) = Format::ALL.into_iter().find(|f| f.matches(dir, &names)) {
        return Ok(format);
    }
    let looked_for: Vec<String> = Format::ALL.iter().map(|f| format!("  {}: {}", f, f.signature())).collect();
    bail!(
        "no dataset found in {} ({}). Looked for:\n{}\nConsider --format NAME if the files are renamed.",
        dir.display(),
        if names.is_empty() {
            "the directory is empty".to_owned()
        } else {
            format!("it holds {}", names.join(", "))
        },
        looked_for.join("\n")
    )
}

/// Loads `dir` in `format`, or in the detected format when `format` is `None`.
pub fn load(dir: &Path, format: Option<Format>, options: &LoadOptions) -> Result<Dataset> {
    let format = match format {
        Some(format) => {
            if !dir.is_dir() {
                bail!("dataset directory {} does not exist or is not a directory", dir.display());
            }
            format
        }
        None => detect(dir)?,
    };
    let dataset = match format {
        Format::MovieLens100K => movielens_100k::load(dir, options),
        Format::MovieLens1M => movielens_1m::load(dir, options),
        Format::MovieLensLatest => movielens_latest::load(dir, options),
        Format::Amazon => amazon::load(dir, options),
        Format::Yelp => yelp::load(dir, options),
        Format::RecBole => recbole::load(dir, options),
        Format::GenericJsonl => generic_jsonl::load(dir, options),
    };
    dataset.with_context(|| format!("cannot load {} dataset from {}", format, dir.display()))
}

/// The common end of every loader: collapse duplicate (user, item) pairs to the latest, keep
/// what the policy recovered from, hash the files read, build.
pub(crate) fn finish(mut builder: DatasetBuilder, policy: Policy) -> Result<Dataset> {
    builder.dedup_keep_latest();
    builder.set_notes(policy.notes);
    let sources = policy.files.iter().map(|path| source::hash_file(path)).collect::<Result<_>>()?;
    builder.set_sources(sources);
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        dir
    }

    #[test]
    fn detects_each_format_from_its_file_names() {
        let cases: &[(&[&str], Format)] = &[
            (&["u.data", "u.item", "u.user"], Format::MovieLens100K),
            (&["ratings.dat", "movies.dat"], Format::MovieLens1M),
            (&["ratings.csv", "movies.csv", "tags.csv", "links.csv"], Format::MovieLensLatest),
            (&["Books_5.json.gz", "meta_Books.json.gz"], Format::Amazon),
            (&["review.json", "business.json"], Format::Yelp),
            (&["yelp_academic_dataset_review.json"], Format::Yelp),
            (&["ml-100k.inter", "ml-100k.item"], Format::RecBole),
            (&["items.jsonl", "interactions.jsonl.gz", "dataset.json"], Format::GenericJsonl),
        ];
        for (files, format) in cases {
            assert_eq!(detect(dir_with(files).path()).unwrap(), *format, "{files:?}");
        }
    }

    #[test]
    fn unrecognised_directory_lists_what_was_looked_for() {
        let dir = dir_with(&["notes.txt", "meta_Books.json"]);
        let err = detect(dir.path()).unwrap_err().to_string();
        for expected in [
            "notes.txt",
            "u.data",
            "ratings.dat",
            "ratings.csv",
            "review.json",
            ".inter",
            "interactions.jsonl",
        ] {
            assert!(err.contains(expected), "{expected} missing from: {err}");
        }
        let empty = dir_with(&[]);
        assert!(detect(empty.path()).unwrap_err().to_string().contains("empty"));
        let missing = empty.path().join("nope");
        assert!(detect(&missing).unwrap_err().to_string().contains("does not exist"));
    }

    #[test]
    fn format_names_round_trip_and_unknown_names_list_the_known_ones() {
        for format in Format::ALL {
            assert_eq!(format.name().parse::<Format>().unwrap(), format);
        }
        let err = "movielens".parse::<Format>().unwrap_err().to_string();
        assert!(err.contains("movielens-1m") && err.contains("generic-jsonl"), "{err}");
    }
}

//! Opening a dataset from settings: resolves `demo`, detects the format, runs its loader, and
//! applies the k-core filter. [`open`] prints the loader's notes as one warning line on stderr;
//! [`open_quiet`] leaves that to the caller (the explorer, which owns the terminal).

use std::path::PathBuf;

use anyhow::{bail, Result};

use super::filter::k_core;
use super::loaders::{self, Format, LoadOptions};
use super::Dataset;
use crate::config::DatasetSettings;

/// The directory `settings.path` names: `demo` is the dataset shipped in `assets/demo`.
pub fn dataset_dir(settings: &DatasetSettings) -> PathBuf {
    if settings.path == "demo" {
        crate::config::assets_dir().join("demo")
    } else {
        PathBuf::from(&settings.path)
    }
}

/// The format `settings.format` names; `None` for `auto`.
pub fn format(settings: &DatasetSettings) -> Result<Option<Format>> {
    match settings.format.as_str() {
        "auto" => Ok(None),
        name => name.parse().map(Some),
    }
}

/// Loads the dataset that `settings` names, filtered as configured, and prints what the loader
/// recovered from (see [`crate::data::LoadNotes::warning`]) as one line on stderr.
pub fn open(settings: &DatasetSettings) -> Result<Dataset> {
    let dataset = open_quiet(settings)?;
    if let Some(warning) = dataset.notes.warning() {
        eprintln!("warning: {}: {warning}", dataset_dir(settings).display());
    }
    Ok(dataset)
}

/// [`open`] without the warning line: the notes stay in [`Dataset::notes`].
pub fn open_quiet(settings: &DatasetSettings) -> Result<Dataset> {
    let dir = dataset_dir(settings);
    if settings.path == "demo" && !dir.is_dir() {
        bail!(
            "the demo dataset is missing ({} does not exist). Consider `prism data synth --out {}` to generate it.",
            dir.display(),
            dir.display()
        );
    }
    let options = LoadOptions { lenient: settings.lenient, min_stars: settings.min_stars };
    let raw = loaders::load(&dir, format(settings)?, &options)?;
    if raw.interactions.is_empty() {
        if raw.notes.skipped > 0 {
            bail!(
                "{}: --lenient skipped every record ({} malformed; the first: {}), so no interactions are \
                 left. Check that the files are the {} format's (or name the right one with --format), that \
                 their separators and columns match docs/DATA_FORMATS.md, and run without --lenient to \
                 stop at the first bad record.",
                dir.display(),
                raw.notes.skipped,
                raw.notes.first_skipped.as_deref().unwrap_or("?"),
                raw.format
            );
        }
        bail!("{}: the {} files hold no interactions", dir.display(), raw.format);
    }
    let loaded = (raw.num_users(), raw.interactions.len());
    let dataset = k_core(raw, settings.min_user_interactions, settings.min_item_interactions);
    if dataset.interactions.is_empty() {
        bail!(
            "{}: no interactions left after k-core filtering ({} users and {} interactions loaded; \
             min_user_interactions = {}, min_item_interactions = {}). Consider lowering them in the config.",
            dir.display(),
            loaded.0,
            loaded.1,
            settings.min_user_interactions,
            settings.min_item_interactions
        );
    }
    Ok(dataset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn settings(path: &str) -> DatasetSettings {
        DatasetSettings { path: path.to_owned(), ..Settings::load_layers(None, None).unwrap().dataset }
    }

    #[test]
    fn demo_resolves_to_the_assets_directory() {
        assert_eq!(dataset_dir(&settings("demo")), crate::config::assets_dir().join("demo"));
        assert_eq!(dataset_dir(&settings("/data/ml-1m")), PathBuf::from("/data/ml-1m"));
    }

    #[test]
    fn lenient_loading_that_skips_everything_says_so() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("u.item"),
            "1|Toy Story (1995)|01-Jan-1995||x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("u.data"), "196,1,3,881250949\n186,1,3,891717742\n").unwrap();
        let mut s = settings(&dir.path().to_string_lossy());
        s.lenient = true;
        let err = open_quiet(&s).unwrap_err().to_string();
        assert!(err.contains("--lenient skipped every record (2 malformed; the first: "), "{err}");
        assert!(err.contains("u.data:1: field `item id`: missing") && err.contains("--format"), "{err}");
    }

    #[test]
    fn files_without_interactions_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("u.item"), "").unwrap();
        std::fs::write(dir.path().join("u.data"), "\n").unwrap();
        let err = open(&settings(&dir.path().to_string_lossy())).unwrap_err().to_string();
        assert!(err.contains("hold no interactions") && err.contains("movielens-100k"), "{err}");
    }
}

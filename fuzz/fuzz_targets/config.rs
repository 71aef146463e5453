//! A user's config file (`--config FILE`: every table, `[models]` and `[models.extra]` included),
//! a training recipe and a distillation preset, each read from the fuzz input; the first byte
//! picks which. Any outcome but a panic is a pass.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use prism_explorer::config::Settings;
use prism_explorer::distill::finetune::Recipe;
use prism_explorer::distill::JobSpec;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, content)) = data.split_first() else { return };
    let dir = tempfile::tempdir().expect("a scratch directory");
    let path = dir.path().join("input.toml");
    std::fs::write(&path, content).expect("write the fuzz input");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    match pick % 3 {
        0 => drop(Settings::load_layers(None, Some(&path))),
        1 => drop(Recipe::load(&path)),
        _ => drop(JobSpec::preset(&path.display().to_string(), &root)),
    }
});

//! One file of the hand-written human-evaluation study (`study.json`, `key.json`, an annotator's
//! `annotations/*.jsonl`; the first byte picks which) replaced by the fuzz input, then opened for a
//! report and for a session of annotator `ann`. Any outcome but a panic is a pass.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use prism_explorer::humaneval::report::Loaded;
use prism_explorer::humaneval::store;

const FILES: [&str; 4] = ["study.json", "key.json", "annotations/ann.jsonl", "annotations/bob.jsonl"];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, content)) = data.split_first() else { return };
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/humaneval/small");
    let dir = tempfile::tempdir().expect("a scratch directory");
    std::fs::create_dir(dir.path().join("annotations")).expect("the annotations folder");
    for name in FILES {
        std::fs::copy(source.join(name), dir.path().join(name)).expect("copy a study file");
    }
    std::fs::write(dir.path().join(FILES[usize::from(pick) % FILES.len()]), content)
        .expect("write the fuzz input");
    let _ = Loaded::open(dir.path());
    let _ = store::open_for(dir.path(), "ann");
});

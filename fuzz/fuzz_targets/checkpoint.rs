//! One file of the t5-v1_1 test checkpoint (`config.json`, `generation_config.json`,
//! `tokenizer.json`, `model.safetensors`; the first byte picks which) replaced by the fuzz input,
//! loaded by the engine and, when it loads, asked for a few tokens. Any outcome but a panic is a
//! pass.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use prism_explorer::model::engine::{Engine, EngineOptions};

const FILES: [&str; 4] = ["config.json", "generation_config.json", "tokenizer.json", "model.safetensors"];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, content)) = data.split_first() else { return };
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/hf/t5-v1_1");
    let dir = tempfile::tempdir().expect("a scratch directory");
    for name in FILES {
        std::fs::copy(source.join(name), dir.path().join(name)).expect("copy a checkpoint file");
    }
    std::fs::write(dir.path().join(FILES[usize::from(pick) % FILES.len()]), content)
        .expect("write the fuzz input");
    if let Ok(engine) = Engine::load(dir.path(), &EngineOptions::default()) {
        let mut cfg = engine.defaults().clone();
        cfg.max_new_tokens = 4;
        let _ = engine.generate(&["a quiet drama"], &cfg, None, None);
    }
});

//! Property tests of every checkpoint file the engine reads — `config.json`,
//! `generation_config.json`, `tokenizer.json`, `model.safetensors` (its header and its data) and
//! the `model.gguf` that `prism quantize` writes — truncated, corrupted and mutated at random (a
//! fixed seed and a bounded number of cases, so CI runs the same cases every time, in seconds):
//!
//! - loading never panics, and a generation from what loaded never panics either;
//! - a refused checkpoint's error names the file at fault (or the key, which names its file);
//! - a generation either gives text or stops with an error (non-finite logits are refused, never
//!   an empty string).

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::sample::Index;

use common::damage::{apply, config, damage, Damage};
use prism_explorer::model::engine::{Engine, EngineOptions};
use prism_explorer::model::load::{load_model, LoadOptions};
use prism_explorer::model::WeightDtype;

const FILES: [&str; 4] = ["config.json", "generation_config.json", "tokenizer.json", "model.safetensors"];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf").join(name)
}

/// The t5-v1_1 fixture quantized to q8 as `prism quantize` writes it, made once per run.
fn quantized() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let source = fixture("t5-v1_1");
        let model =
            load_model(&source, &LoadOptions::inference(candle_core::Device::Cpu, WeightDtype::Q8)).unwrap();
        model.save_quantized(&dir.path().join("model.gguf")).unwrap();
        for name in ["config.json", "generation_config.json", "tokenizer.json"] {
            std::fs::copy(source.join(name), dir.path().join(name)).unwrap();
        }
        dir
    })
    .path()
}

/// A scratch copy of checkpoint `source` with `file` replaced by `bytes`.
fn damaged_copy(source: &Path, file: &str, bytes: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        if !name.to_string_lossy().starts_with("golden") {
            std::fs::copy(&path, dir.path().join(name)).unwrap();
        }
    }
    std::fs::write(dir.path().join(file), bytes).unwrap();
    dir
}

/// Where the damage goes in a weights file: anywhere, or inside its header (the JSON of a
/// safetensors file, the metadata and tensor table at the start of a GGUF file), where most
/// bytes matter.
fn aim(bytes: &[u8], file: &str, damage: Damage, header: bool) -> Vec<u8> {
    let header_len = match file {
        "model.safetensors" => {
            8 + bytes.get(..8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()) as usize)
        }
        "model.gguf" => 4096,
        _ => bytes.len(),
    };
    if !header || header_len >= bytes.len() {
        return apply(bytes, &damage);
    }
    let mut out = apply(&bytes[..header_len], &damage);
    out.extend_from_slice(&bytes[header_len..]);
    out
}

/// Loads `dir` and, when it loads, generates a few tokens: the checks that hold for any damage.
fn check(dir: &Path, file: &str) -> Result<(), TestCaseError> {
    let options = EngineOptions::default();
    let engine = match Engine::load(dir, &options) {
        Ok(engine) => engine,
        Err(e) => {
            let text = format!("{e:#}");
            prop_assert!(
                text.contains(file) || (file == "model.gguf" && text.contains("gguf")),
                "the error names {}: {}",
                file,
                text
            );
            return Ok(());
        }
    };
    let mut cfg = engine.defaults().clone();
    cfg.max_new_tokens = 4;
    cfg.num_beams = cfg.num_beams.min(2);
    match engine.generate(&["a quiet drama about a family"], &cfg, None, None) {
        Ok(out) => prop_assert_eq!(out.generations.len(), 1),
        Err(e) => {
            let message = format!("{e:#}");
            prop_assert!(!message.is_empty());
        }
    }
    Ok(())
}

/// Found by the property test below: a syntax error inside `decoder` made tokenizers 0.23 panic
/// (`expect("Helper")`) instead of returning an error.
#[test]
fn a_syntax_error_in_the_tokenizers_decoder_is_an_error_naming_the_file() {
    let source = fixture("t5-v1_1");
    let text = std::fs::read_to_string(source.join("tokenizer.json")).unwrap();
    let broken = text.replacen("\"replacement\": ", "\"replacement\" ", 1);
    assert_ne!(broken, text);
    let dir = damaged_copy(&source, "tokenizer.json", broken.as_bytes());
    let Err(err) = Engine::load(dir.path(), &EngineOptions::default()) else {
        panic!("a damaged tokenizer is refused");
    };
    let message = format!("{err:#}");
    assert!(message.contains("tokenizer.json") && message.contains("expected `:`"), "{message}");
}

proptest! {
    #![proptest_config(config(96, 0xc4ec_4b01))]

    #[test]
    fn damaged_checkpoints_load_or_fail_naming_the_file(
        model in 0usize..2,
        file in any::<Index>(),
        damage in damage(),
        header in any::<bool>(),
    ) {
        let source = fixture(["t5-v1_1", "bart"][model]);
        let file = FILES[file.index(FILES.len())];
        let bytes = aim(&std::fs::read(source.join(file)).unwrap(), file, damage, header);
        let dir = damaged_copy(&source, file, &bytes);
        check(dir.path(), file)?;
    }
}

proptest! {
    #![proptest_config(config(48, 0x9a0f_0c8a))]

    #[test]
    fn damaged_quantized_checkpoints_load_or_fail_naming_the_file(
        file in any::<Index>(),
        damage in damage(),
        header in any::<bool>(),
    ) {
        let source = quantized();
        let files = ["config.json", "generation_config.json", "tokenizer.json", "model.gguf"];
        let file = files[file.index(files.len())];
        let bytes = aim(&std::fs::read(source.join(file)).unwrap(), file, damage, header);
        let dir = damaged_copy(source, file, &bytes);
        check(dir.path(), file)?;
    }
}

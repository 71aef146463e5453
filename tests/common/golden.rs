//! The Hugging Face fixtures' `golden.json`: transformers' greedy and beam outputs and the
//! `generate` arguments that made them (tests/fixtures/make_hf_fixtures.py, make_hf5_fixtures.py).

use std::path::{Path, PathBuf};

use prism_explorer::model::engine::Engine;
use prism_explorer::model::{EarlyStopping, GenerationConfig, GenerationOverrides};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct Golden {
    pub greedy_kwargs: Kwargs,
    pub beam_kwargs: Kwargs,
    pub generations: Vec<GoldenGeneration>,
}

/// transformers' `generate` arguments.
#[derive(Deserialize)]
pub struct Kwargs {
    pub num_beams: usize,
    pub max_new_tokens: usize,
    pub min_new_tokens: usize,
    pub no_repeat_ngram_size: usize,
    pub length_penalty: f32,
    pub early_stopping: EarlyStopping,
}

impl Kwargs {
    /// The engine's decoding with these arguments, deterministic.
    pub fn config(&self, engine: &Engine) -> GenerationConfig {
        engine.config_with(&GenerationOverrides {
            num_beams: Some(self.num_beams),
            max_new_tokens: Some(self.max_new_tokens),
            min_new_tokens: Some(self.min_new_tokens),
            no_repeat_ngram_size: Some(self.no_repeat_ngram_size),
            length_penalty: Some(self.length_penalty),
            early_stopping: Some(self.early_stopping),
            do_sample: Some(false),
            ..Default::default()
        })
    }
}

#[derive(Deserialize)]
pub struct GoldenGeneration {
    pub prompt: String,
    pub input_ids: Vec<u32>,
    /// With the decoder start token first, as transformers returns it.
    pub greedy: Vec<u32>,
    pub beam: Vec<u32>,
    pub beam_score: f32,
}

/// A fixture checkpoint directory under tests/fixtures/hf.
pub fn hf_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf").join(name)
}

/// The `golden.json` of the fixture checkpoint in `dir`.
pub fn read_golden(dir: &Path) -> Golden {
    serde_json::from_str(&std::fs::read_to_string(dir.join("golden.json")).unwrap()).unwrap()
}

//! The movielens-latest loader on damaged fixture files (see common.rs).
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use prism_explorer::data::loaders::Format;

fuzz_target!(|data: &[u8]| common::load_damaged("movielens-latest", Format::MovieLensLatest, data));

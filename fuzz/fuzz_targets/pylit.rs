//! The Python-literal parser of the 2014 Amazon metadata, on any text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = prism_explorer::data::loaders::pylit::parse(text);
    }
});

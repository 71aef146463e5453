//! Blind human evaluation of explanations, as in the paper but run by the researcher: a study
//! directory holds what annotators see (`study.json`, frozen texts), the unblinding key
//! (`key.json`) and one append-only answer file per annotator (`annotations/NAME.jsonl`).
//!
//! - [`study`]: the study and key files, their version checks, stratified sampling and assembly
//!   (attention checks included);
//! - [`systems`]: the systems that write the texts (`oracle`, `prism`, `template`, `file:PATH`);
//! - [`blind`]: balanced text positions, each annotator's seeded order and slot letters, and the
//!   [`blind::ItemView`] an annotator sees (no system names can get into it);
//! - [`store`]: annotator files (fsynced appends, torn last lines reported, later answers win);
//! - [`annotate`]: the annotation session as a pure state machine the front ends drive;
//! - [`report`]: statistics per system and criterion, paired tests, win rates, agreement;
//! - [`export`]: unblinded judgements as CSV or JSON lines.
//!
//! Only `report` and `export` read the key; a session never does (see ARCHITECTURE.md).

pub mod annotate;
pub mod blind;
pub mod export;
pub mod latin;
pub mod lock;
pub mod report;
pub mod store;
pub mod study;
pub mod systems;

pub use annotate::{Event, Screen, Session};
pub use blind::{Assignment, ItemView};
pub use report::Report;
pub use store::{Judgement, Preference};
pub use study::{Key, Study};

/// 64-bit FNV-1a: a hash that stays the same across Rust versions, for seeds and ids that are
/// written to disk.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The wall clock in Unix milliseconds, as judgements record it.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The letter of slot `index` (A, B, C, …).
pub fn slot_letter(index: usize) -> char {
    char::from(b'A' + index as u8)
}

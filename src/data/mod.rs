//! Datasets: the in-memory model ([`Dataset`]), one loader per on-disk format with format
//! auto-detection, k-core filtering, the per-user chronological [`Split`], and the synthetic
//! demo generator. Knows nothing of models or the terminal.

pub mod filter;
pub mod load;
pub mod loaders;
pub mod model;
pub mod notes;
pub mod source;
pub mod split;
pub mod synth;

pub use load::open;
pub use model::{Dataset, DatasetBuilder, Feature, Interaction, Item, ItemIdx, Reference, UserIdx};
pub use notes::LoadNotes;
pub use split::{Part, Split, UserSplit};

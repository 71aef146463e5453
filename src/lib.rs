//! prism-explorer: a terminal explorer for decoupled, distilled recommendation explanations.
//! See ARCHITECTURE.md for the map of the rooms and their invariants.

pub mod cli;
pub mod config;
pub mod data;
pub mod distill;
pub mod durable;
pub mod explain;
pub mod humaneval;
pub mod metrics;
pub mod model;
pub mod progress;
pub mod rank;
pub mod threads;
pub mod train;
pub mod tui;
pub mod validate;

/// Every allocation goes through the counting allocator, so a generation's own memory can be
/// measured per thread (`model::stats`); binaries and tests linking the crate all count alike.
#[global_allocator]
static ALLOCATOR: model::stats::CountingAlloc = model::stats::CountingAlloc;

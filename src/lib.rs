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
pub mod train;
pub mod tui;
pub mod validate;

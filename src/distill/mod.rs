//! Distillation: fine-tuning a seq2seq explainer on (prompt → explanation) pairs ([`finetune`]),
//! and the job that makes a Prism from an Oracle — teach → filter → train → evaluate ([`job`]),
//! resumable, reporting progress as [`events`]. The teach stage can run in [`shards`], one after
//! another or as a Slurm job array ([`slurm`]), to the same results.

pub mod evaluate;
pub mod events;
pub mod filter;
pub mod finetune;
pub mod job;
pub mod shards;
pub mod slurm;
pub mod status;
pub mod teach;

pub use events::{DistillEvent, EventKind, Stage};
pub use job::{run, spawn, Job, JobHandle, JobSpec, Summary};

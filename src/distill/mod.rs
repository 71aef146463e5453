//! Distillation: fine-tuning a seq2seq explainer on (prompt → explanation) pairs ([`finetune`]),
//! and the job that makes a Prism from an Oracle — teach → filter → train → evaluate ([`job`],
//! the stages in [`stages`]) — resumable, reporting progress as [`events`]. The teach stage can
//! run in [`shards`], one after another or as a Slurm job array ([`slurm`]), to the same results,
//! or be replaced by an external teacher's explanations from a file ([`external`]).

pub mod batches;
pub mod evaluate;
pub mod events;
pub mod external;
pub mod filter;
pub mod finetune;
pub mod job;
pub mod layout;
pub mod resume;
pub mod shards;
pub mod slurm;
pub mod spec;
pub mod stages;
pub mod status;
pub mod teach;

pub use events::{DistillEvent, EventKind, Stage};
pub use job::{run, spawn, JobHandle, JobSummary};
pub use spec::{JobContext, JobSpec};

//! A job directory's layout: the files that the stages, the shards, the Slurm backend and the
//! watchers agree on, and the completion marker — `complete.json` in a stage's directory or a
//! teach shard's — which only this module writes, tests or reads. A part of the job is done when
//! its marker is on disk, never on anyone's word.
//!
//! Layout of a job directory:
//! `job.json` (the resolved settings), `events.jsonl`, `teach/cache.jsonl`, `filter/kept.jsonl` and
//! `filter/report.json`, `train/{last,best}/`, `evaluate/{report.json,explanations.jsonl}`,
//! `summary.json`, `STAGE/complete.json` once a stage is done, and `lock` (held while a process runs
//! the stages). A job made with `--shards N` also
//! has `teach/plan.json`, `teach/shards/K/` and `teach/merge.json` ([`super::shards`]), and on
//! Slurm `slurm/` ([`super::slurm`]). A job taught from an external teacher's file has no teacher
//! model: its teach stage reads the file instead ([`super::external`]: `teach/external.json` and
//! `teach/external_test.jsonl` beside the cache).

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::events::Stage;
use crate::durable;
use crate::model::checkpoint::read_json;

/// The job's resolved settings.
pub const JOB_FILE: &str = "job.json";
/// Held by the process running the stages, so a second one stops at once and a reader can tell a
/// live job from a killed one ([`super::status`]).
pub const LOCK_FILE: &str = "lock";
/// The outcome, written once every stage is complete.
pub const SUMMARY_FILE: &str = "summary.json";
const COMPLETE_FILE: &str = "complete.json";

pub fn stage_dir(job_dir: &Path, stage: Stage) -> PathBuf {
    job_dir.join(stage.name())
}

/// Whether the part of the job that works in `dir` (a stage's or a shard's directory) is done.
pub fn is_marked(dir: &Path) -> bool {
    dir.join(COMPLETE_FILE).exists()
}

/// Marks the part of the job that works in `dir` done, recording `record`.
pub fn mark(dir: &Path, record: &Record) -> Result<()> {
    durable::write_file(&dir.join(COMPLETE_FILE), &record.0)
}

pub fn is_complete(job_dir: &Path, stage: Stage) -> bool {
    is_marked(&stage_dir(job_dir, stage))
}

pub fn mark_complete(job_dir: &Path, stage: Stage, record: &Record) -> Result<()> {
    mark(&stage_dir(job_dir, stage), record)
}

/// What a complete stage's marker records.
pub fn completion(job_dir: &Path, stage: Stage) -> Result<serde_json::Value> {
    read_json(&stage_dir(job_dir, stage).join(COMPLETE_FILE))
}

/// What a marker records: the part's outcome, serialized as its own type writes it (an `f32`
/// stays as short as it was), in `durable::write_json`'s form.
#[derive(Clone, Debug, PartialEq)]
pub struct Record(Vec<u8>);

impl Record {
    pub fn of(value: &impl serde::Serialize) -> Result<Record> {
        let mut text = serde_json::to_vec_pretty(value)?;
        text.push(b'\n');
        Ok(Record(text))
    }

    /// The record as read back from the marker.
    pub fn value(&self) -> Result<serde_json::Value> {
        Ok(serde_json::from_slice(&self.0)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_records_what_its_stage_wrote_as_written() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(!is_complete(tmp.path(), Stage::Train));
        #[derive(serde::Serialize)]
        struct Outcome {
            loss: f32,
        }
        let record = Record::of(&Outcome { loss: 0.1 }).unwrap();
        mark_complete(tmp.path(), Stage::Train, &record).unwrap();
        assert!(is_complete(tmp.path(), Stage::Train) && !is_complete(tmp.path(), Stage::Evaluate));
        let text = std::fs::read_to_string(tmp.path().join("train").join(COMPLETE_FILE)).unwrap();
        assert_eq!(text, "{\n  \"loss\": 0.1\n}\n", "an f32 is written as short as it is");
        assert_eq!(completion(tmp.path(), Stage::Train).unwrap(), record.value().unwrap());
        assert_eq!(record.value().unwrap(), serde_json::json!({"loss": 0.1}));
    }
}

//! Progress of a distillation job: one event type, appended to `DIR/events.jsonl` (so a job started
//! headless elsewhere can be watched) and handed to a callback (the TUI forwards it to a channel).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;

use super::teach::Shard;
use crate::durable::JsonLines;

/// The job's stages, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Teach,
    Filter,
    Train,
    Evaluate,
}

impl Stage {
    pub const ALL: [Stage; 4] = [Stage::Teach, Stage::Filter, Stage::Train, Stage::Evaluate];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Teach => "teach",
            Stage::Filter => "filter",
            Stage::Train => "train",
            Stage::Evaluate => "evaluate",
        }
    }
}

/// What happened.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Started,
    Progress,
    Finished,
    Cancelled,
    Failed,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DistillEvent {
    /// Seconds since the Unix epoch.
    pub time: f64,
    pub stage: Stage,
    pub kind: EventKind,
    pub done: usize,
    pub total: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples_per_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_s: Option<f64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The teach shard that reported it, when the stage runs in shards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
}

impl DistillEvent {
    pub fn new(stage: Stage, kind: EventKind, done: usize, total: usize) -> DistillEvent {
        let time = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        DistillEvent {
            time,
            stage,
            kind,
            done,
            total,
            loss: None,
            samples_per_s: None,
            eta_s: None,
            message: String::new(),
            shard: None,
        }
    }

    pub fn message(mut self, message: impl Into<String>) -> DistillEvent {
        self.message = message.into();
        self
    }
}

/// Writes events to the job's log and passes them on.
pub struct EventSink<'a> {
    log: JsonLines,
    forward: &'a mut dyn FnMut(&DistillEvent),
    shard: Option<Shard>,
}

/// The event log's file name inside a job directory.
pub const EVENTS_FILE: &str = "events.jsonl";

impl<'a> EventSink<'a> {
    pub fn open(job_dir: &Path, forward: &'a mut dyn FnMut(&DistillEvent)) -> Result<EventSink<'a>> {
        Ok(EventSink { log: JsonLines::open(&job_dir.join(EVENTS_FILE))?, forward, shard: None })
    }

    /// The log of one teach shard, in its directory: every event is tagged with the shard.
    pub fn open_shard(
        shard_dir: &Path,
        shard: Shard,
        forward: &'a mut dyn FnMut(&DistillEvent),
    ) -> Result<EventSink<'a>> {
        Ok(EventSink { shard: Some(shard), ..EventSink::open(shard_dir, forward)? })
    }

    pub fn emit(&mut self, mut event: DistillEvent) -> Result<()> {
        event.shard = event.shard.or(self.shard);
        self.log.append(&event)?;
        (self.forward)(&event);
        Ok(())
    }
}

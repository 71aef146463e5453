//! Progress of a distillation job: one event type, appended to `DIR/events.jsonl` (so a job started
//! headless elsewhere can be watched) and handed to a callback (the TUI forwards it to a channel).
//! Progress (`Started`, `Progress`) and what the Slurm backend did or saw (`Slurm`) are separate
//! kinds; every end (`Finished`, `Cancelled`, `Failed`) says why in `message` and, where there is
//! one, what to do next in `next`. [`read_log`] reads a log for watchers: a torn or garbage line
//! is reported, never fatal, and logs written before the `Slurm` kind existed read the same.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;

use super::batches::Shard;
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
    /// What the Slurm backend did or saw: a submission, a task that ended without finishing, a
    /// look at Slurm that failed. Carries no progress (`done` and `total` are 0).
    Slurm,
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
    /// What to do next, for an event that ends or stops something (e.g. the command to resume).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub next: String,
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
            next: String::new(),
        }
    }

    pub fn message(mut self, message: impl Into<String>) -> DistillEvent {
        self.message = message.into();
        self
    }

    pub fn next(mut self, next: impl Into<String>) -> DistillEvent {
        self.next = next.into();
        self
    }

    /// Whether it reports progress (`done` of `total`). Logs written before the `Slurm` kind logged
    /// the backend's messages as progress 0/0 starting with `slurm`: those are not progress.
    pub fn is_progress(&self) -> bool {
        match self.kind {
            EventKind::Started | EventKind::Progress => !self.is_old_slurm_message(),
            _ => false,
        }
    }

    fn is_old_slurm_message(&self) -> bool {
        self.kind == EventKind::Progress
            && self.total == 0
            && self.done == 0
            && self.message.starts_with("slurm")
    }

    /// The event as this version writes it: an older log's Slurm message becomes a `Slurm` event.
    pub fn upgraded(mut self) -> DistillEvent {
        if self.is_old_slurm_message() {
            self.kind = EventKind::Slurm;
        }
        self
    }

    /// Whether it ends a run of the job or of a part of it.
    pub fn is_end(&self) -> bool {
        matches!(self.kind, EventKind::Finished | EventKind::Cancelled | EventKind::Failed)
    }
}

/// A line of a log that could not be read.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LogProblem {
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// `torn` (the last line, cut off before its newline: a writer was killed mid-line) or
    /// `unreadable` (a complete line that is not an event).
    pub kind: &'static str,
    /// The start of the line, for the eye.
    pub excerpt: String,
    pub error: String,
}

impl std::fmt::Display for LogProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}, line {}: {} ({}): {:?}", self.file, self.line, self.kind, self.error, self.excerpt)
    }
}

/// What [`read_log`] read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Log {
    pub events: Vec<DistillEvent>,
    pub problems: Vec<LogProblem>,
    /// The end of the complete lines read: where a follower continues.
    pub end: LogPosition,
}

/// A place in a log: after `lines` complete lines, `bytes` into the file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogPosition {
    pub bytes: u64,
    pub lines: usize,
}

/// Reads an event log for a watcher, from `from` (the default: all of it; a later call passes the
/// previous `end` to read only what was appended). Every readable line is returned
/// ([`DistillEvent::upgraded`]); a complete line that is not an event and a torn last line are
/// reported in `problems` instead of failing (a log is for telling, and one bad line must not hide
/// the rest). A missing file reads as empty.
pub fn read_log(path: &Path, from: LogPosition) -> Result<Log> {
    use std::io::{Read, Seek, SeekFrom};
    let mut bytes = Vec::new();
    match std::fs::File::open(path) {
        Ok(mut file) => {
            file.seek(SeekFrom::Start(from.bytes))
                .and_then(|_| file.read_to_end(&mut bytes))
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Log::default()),
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    }
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let file = path.display().to_string();
    let lines = bytes[..complete].iter().filter(|b| **b == b'\n').count();
    let end = LogPosition { bytes: from.bytes + complete as u64, lines: from.lines + lines };
    let mut log = Log { end, ..Log::default() };
    let excerpt = |line: &[u8]| {
        let text = String::from_utf8_lossy(line);
        text.chars().take(60).collect::<String>()
    };
    // Line numbers count from the file's start, so they can be looked up.
    for (i, line) in bytes[..complete].split(|b| *b == b'\n').enumerate() {
        let number = from.lines + i + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<DistillEvent>(line) {
            Ok(event) => log.events.push(event.upgraded()),
            Err(e) => log.problems.push(LogProblem {
                file: file.clone(),
                line: number,
                kind: "unreadable",
                excerpt: excerpt(line),
                error: e.to_string(),
            }),
        }
    }
    let rest = &bytes[complete..];
    if !rest.iter().all(u8::is_ascii_whitespace) {
        log.problems.push(LogProblem {
            file,
            line: end.lines + 1,
            kind: "torn",
            excerpt: excerpt(rest),
            error: "no newline at the end: a writer stopped mid-line".into(),
        });
    }
    Ok(log)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_with_garbage_and_a_torn_line_is_read_with_both_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(EVENTS_FILE);
        let first = DistillEvent { time: 1.5, ..DistillEvent::new(Stage::Teach, EventKind::Started, 0, 8) };
        let done =
            DistillEvent { time: 2.5, ..DistillEvent::new(Stage::Evaluate, EventKind::Finished, 6, 6) };
        let line = |e: &DistillEvent| serde_json::to_string(e).unwrap() + "\n";
        std::fs::write(&path, line(&first) + "not an event\n" + &line(&done) + "{\"time\": 1.5, \"sta")
            .unwrap();
        let log = read_log(&path, LogPosition::default()).unwrap();
        assert_eq!(log.events, [first.clone(), done.clone()]);
        let problems: Vec<(usize, &str)> = log.problems.iter().map(|p| (p.line, p.kind)).collect();
        assert_eq!(problems, [(2, "unreadable"), (4, "torn")]);
        assert_eq!(log.end.lines, 3);
        // A follower reads only what was appended, and numbers lines from the file's start.
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        std::io::Write::write_all(&mut file, b"ge\"}\n").unwrap();
        let more = read_log(&path, log.end).unwrap();
        assert!(more.events.is_empty());
        assert_eq!((more.problems[0].line, more.problems[0].kind), (4, "unreadable"));
        assert_eq!(read_log(&tmp.path().join("none"), LogPosition::default()).unwrap(), Log::default());
    }

    #[test]
    fn slurm_messages_of_older_logs_are_not_progress() {
        // As the backend logged them before the `Slurm` kind existed.
        let old = r#"{"time":1.0,"stage":"teach","kind":"progress","done":0,"total":0,"message":"slurm: submitted teach task(s) [0,1] as job 12"}"#;
        let event: DistillEvent = serde_json::from_str(old).unwrap();
        assert!(!event.is_progress());
        assert_eq!(event.clone().upgraded().kind, EventKind::Slurm);
        let progress = DistillEvent::new(Stage::Teach, EventKind::Progress, 0, 10);
        assert!(progress.is_progress());
        assert_eq!(progress.clone().upgraded(), progress);
        let aggregate =
            DistillEvent::new(Stage::Teach, EventKind::Progress, 5, 10).message("slurm array: 1 DONE");
        assert!(aggregate.is_progress(), "the coordinator's aggregate is progress");
    }
}

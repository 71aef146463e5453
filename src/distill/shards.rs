//! The teach stage in shards, for running it as several processes (a Slurm job array, see
//! [`super::slurm`]) or one after another. The job's sample list is cut into fixed batches and
//! batch `b` belongs to shard `b % N` ([`Shard`]), so a sample's shard follows from its place in the
//! seeded list and it is generated in the same batch whatever the split.
//!
//! Layout under the job directory: `teach/plan.json` (shard count, batch size, sample count and a
//! fingerprint of the sample keys, which every shard checks its own list against — a node that
//! sees another dataset stops with an error instead of explaining other samples),
//! `teach/shards/K/{cache.jsonl,events.jsonl,complete.json,lock}`, and after [`merge`]
//! `teach/merge.json` and the merged `teach/cache.jsonl` in sample-list order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::batches::Shard;
use super::events::{DistillEvent, EventKind, EventSink, Stage};
use super::layout::{is_marked, mark, Record};
use super::spec::{read_spec, teach_samples, JobContext, JobSpec};
use super::teach::{read_cache, teach, Taught, Teach, CACHE_FILE};
use crate::data::Dataset;
use crate::durable;
use crate::explain::samples::Sample;
use crate::model::checkpoint::read_json;
use crate::model::engine::{Engine, EngineOptions};

pub const PLAN_FILE: &str = "plan.json";
pub const MERGE_FILE: &str = "merge.json";

/// How the teach stage is split; written once by whoever starts the shards.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    pub shards: usize,
    pub batch_size: usize,
    pub samples: usize,
    /// FNV-1a of the sample keys in list order, in hex.
    pub fingerprint: String,
}

/// The (user id, item id) key of each sample.
pub fn keys(dataset: &Dataset, samples: &[Sample]) -> Vec<(String, String)> {
    samples
        .iter()
        .map(|s| (dataset.users[s.user as usize].clone(), dataset.item(s.item).id.clone()))
        .collect()
}

fn fingerprint(keys: &[(String, String)]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (user, item) in keys {
        for byte in user.bytes().chain([0]).chain(item.bytes()).chain([0]) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

impl Plan {
    pub fn new(keys: &[(String, String)], shards: usize, batch_size: usize) -> Plan {
        Plan { shards, batch_size, samples: keys.len(), fingerprint: fingerprint(keys) }
    }

    /// How many of the samples are shard `index`'s.
    pub fn shard_samples(&self, index: usize) -> usize {
        let batch = self.batch_size.max(1);
        let batches = self.samples.div_ceil(batch);
        (0..batches)
            .filter(|b| b % self.shards.max(1) == index)
            .map(|b| batch.min(self.samples - b * batch))
            .sum()
    }
}

/// Reads the job's `teach/plan.json`, if it is sharded and the plan is written.
pub fn read_plan(job_dir: &Path) -> Result<Option<Plan>> {
    let path = teach_dir(job_dir).join(PLAN_FILE);
    if !path.exists() {
        return Ok(None);
    }
    read_json(&path).map(Some)
}

/// How many samples shard `index` has cached: the complete lines of its `cache.jsonl` (each is one
/// sample; a shard never caches a sample twice, its lock sees to that). Counted, not parsed, so
/// watchers can ask often.
pub fn cached(job_dir: &Path, index: usize) -> Result<usize> {
    let path = shard_dir(job_dir, index).join(CACHE_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            Ok(bytes[..complete].split(|b| *b == b'\n').filter(|line| !line.is_empty()).count())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

pub fn teach_dir(job_dir: &Path) -> PathBuf {
    job_dir.join(Stage::Teach.name())
}

pub fn shard_dir(job_dir: &Path, index: usize) -> PathBuf {
    teach_dir(job_dir).join("shards").join(index.to_string())
}

pub fn is_shard_complete(job_dir: &Path, index: usize) -> bool {
    is_marked(&shard_dir(job_dir, index))
}

/// Writes `teach/plan.json`, or checks that the one there is `plan`.
pub fn write_plan(job_dir: &Path, plan: &Plan) -> Result<()> {
    let path = teach_dir(job_dir).join(PLAN_FILE);
    if path.exists() {
        return check_plan(job_dir, plan);
    }
    for index in 0..plan.shards {
        std::fs::create_dir_all(shard_dir(job_dir, index))
            .with_context(|| format!("cannot create {}", shard_dir(job_dir, index).display()))?;
    }
    durable::write_json(&path, plan)
}

/// Writes the plan of the job in `dir` as this process sees it (or checks the one there) and
/// returns the sample keys in list order.
pub fn prepare(
    dir: &Path,
    spec: &JobSpec,
    dataset: &Dataset,
    history_len: usize,
) -> Result<Vec<(String, String)>> {
    let Some(shards) = spec.shards else { bail!("the job in {} is not sharded", dir.display()) };
    let keys = keys(dataset, &teach_samples(dataset, spec, history_len));
    write_plan(dir, &Plan::new(&keys, shards, spec.teach_batch))?;
    Ok(keys)
}

/// Checks that this process's view of the job (its dataset, seed, batch) gives the plan's samples.
pub fn check_plan(job_dir: &Path, plan: &Plan) -> Result<()> {
    let path = teach_dir(job_dir).join(PLAN_FILE);
    let written: Plan = read_json(&path)?;
    if written.shards != plan.shards || written.batch_size != plan.batch_size {
        bail!(
            "{}: the job is split in {} shards of batch {}, not {} of batch {}",
            path.display(),
            written.shards,
            written.batch_size,
            plan.shards,
            plan.batch_size
        );
    }
    if written != *plan {
        bail!(
            "{}: this process's dataset gives another sample list ({} samples, fingerprint {}) than \
             the job's ({} samples, fingerprint {}); every shard must see the same dataset and settings",
            path.display(),
            plan.samples,
            plan.fingerprint,
            written.samples,
            written.fingerprint
        );
    }
    Ok(())
}

/// Holds an exclusive lock on `path` (created if missing) for as long as the returned file is open,
/// or fails at once, naming `what`, when another process holds it. The lock goes with the
/// process, however it ends. Where the file system has no locks, nothing is guarded.
pub fn exclusive(path: &Path, what: &str) -> Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns; no memory is involved.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let error = std::io::Error::last_os_error();
        // A file system without locks (e.g. Lustre mounted without `flock`) cannot guard: go on.
        if error.kind() == std::io::ErrorKind::WouldBlock {
            bail!("{what} is already being run by another process (it holds {})", path.display());
        }
    }
    Ok(file)
}

/// Whether a process holds the lock at `path` (as [`exclusive`] takes it), asked without waiting
/// and without creating the file: `Some(false)` when it is free or was never made, `None` where
/// the file system cannot tell (no `flock`).
pub fn is_held(path: &Path) -> Option<bool> {
    use std::os::fd::AsRawFd;
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(false),
        Err(_) => return None,
    };
    // A shared lock conflicts with the holder's exclusive one and not with other askers; it goes
    // when `file` closes, at the end of this function.
    // SAFETY: flock on a descriptor this function owns; no memory is involved.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0 {
        return Some(false);
    }
    match std::io::Error::last_os_error().kind() {
        std::io::ErrorKind::WouldBlock => Some(true),
        _ => None,
    }
}

/// What teaching any part of a job's samples needs.
pub struct TeachPart<'a> {
    pub spec: &'a JobSpec,
    pub context: &'a JobContext<'a>,
    pub teacher: &'a Engine,
    /// The job's whole sample list, in its seeded order.
    pub samples: &'a [Sample],
}

impl TeachPart<'_> {
    /// Teaches `shard` of the samples into `dir` with the job's teacher settings; false when
    /// cancelled.
    pub fn teach(&self, shard: Shard, dir: &Path, events: &mut EventSink<'_>) -> Result<bool> {
        let spec = self.spec;
        let decoding = spec.teach_decoding.config_for(self.teacher);
        let job = Teach {
            dataset: self.context.dataset,
            prompts: self.context.prompts,
            teacher: self.teacher,
            decoding: &decoding,
            max_input_tokens: spec.teacher_max_input_tokens,
            batch_size: spec.teach_batch,
            samples: self.samples,
            shard,
            dir,
            cancel: self.context.cancel,
        };
        teach(job, events)
    }
}

/// Runs (or continues) one shard with a loaded teacher, logging to the shard's own `events.jsonl`
/// and passing each event to `on_event`. Returns whether it completed (false: cancelled).
pub fn teach_shard(
    part: &TeachPart<'_>,
    shard: Shard,
    on_event: &mut dyn FnMut(&DistillEvent),
) -> Result<bool> {
    let dir = shard_dir(part.context.dir, shard.index);
    if is_marked(&dir) {
        return Ok(true);
    }
    // Two processes must never append to one shard's cache.
    let _lock = exclusive(&dir.join("lock"), &format!("teach shard {shard}"))?;
    let mut events = EventSink::open_shard(&dir, shard, on_event)?;
    if !part.teach(shard, &dir, &mut events)? {
        events.emit(DistillEvent::new(Stage::Teach, EventKind::Cancelled, 0, 0))?;
        return Ok(false);
    }
    let cached = read_cache(&dir)?.len();
    mark(&dir, &Record::of(&serde_json::json!({"shard": shard, "samples": cached}))?)?;
    events.emit(DistillEvent::new(Stage::Teach, EventKind::Finished, cached, cached))?;
    Ok(true)
}

/// Runs one shard of the job in `context.dir` in this process (a Slurm array task, or by hand):
/// checks the job is split that way and that this process sees the same samples, then teaches.
/// Idempotent: a complete shard returns at once, an interrupted one continues.
pub fn run_shard(
    context: JobContext<'_>,
    shard: Shard,
    on_event: &mut dyn FnMut(&DistillEvent),
) -> Result<bool> {
    let JobContext { dir, dataset, history_len, device, .. } = context;
    let spec = read_spec(dir)?;
    match spec.shards {
        Some(n) if n == shard.count => {}
        Some(n) => bail!("the job in {} is split in {n} shards, not {}", dir.display(), shard.count),
        None => bail!(
            "the job in {} teaches in one piece, not in shards (start it with --shards N)",
            dir.display()
        ),
    }
    let samples = teach_samples(dataset, &spec, history_len);
    let plan = Plan::new(&keys(dataset, &samples), shard.count, spec.teach_batch);
    if !teach_dir(dir).join(PLAN_FILE).exists() {
        bail!("{} has no teach/{PLAN_FILE}: start the job with --shards first", dir.display());
    }
    check_plan(dir, &plan)?;
    if is_shard_complete(dir, shard.index) {
        return Ok(true);
    }
    let options = EngineOptions {
        device: device.clone(),
        dtype: Some(spec.teacher_dtype),
        max_input_tokens: Some(spec.teacher_max_input_tokens),
        ..EngineOptions::default()
    };
    let teacher = Engine::load(&spec.teacher, &options)
        .with_context(|| format!("cannot load the teacher from {}", spec.teacher.display()))?;
    let part = TeachPart { spec: &spec, context: &context, teacher: &teacher, samples: &samples };
    teach_shard(&part, shard, on_event)
}

/// A sample cached more than once.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Duplicate {
    pub user: String,
    pub item: String,
    pub copies: usize,
    /// Whether the copies' texts differ (the first, in shard order, is kept).
    pub differing: bool,
}

/// A sample with no cached explanation, and the shard that owes it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Gap {
    pub user: String,
    pub item: String,
    pub shard: usize,
}

/// A cached explanation that is not the shard's to make (another shard's sample, or no sample of
/// the job): ignored.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stray {
    pub user: String,
    pub item: String,
    pub shard: usize,
}

/// `teach/merge.json`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MergeReport {
    pub shards: usize,
    pub samples: usize,
    /// Samples with exactly one explanation in the merged cache.
    pub merged: usize,
    pub duplicates: Vec<Duplicate>,
    pub gaps: Vec<Gap>,
    pub strays: Vec<Stray>,
}

/// Merges the shard caches into `teach/cache.jsonl`, one explanation per sample in sample-list
/// order, and writes `teach/merge.json`. Fails, naming the first missing samples and their
/// shards, when any sample has no explanation.
pub fn merge(
    job_dir: &Path,
    keys: &[(String, String)],
    batch_size: usize,
    shards: usize,
) -> Result<MergeReport> {
    let position: HashMap<&(String, String), usize> = keys.iter().enumerate().map(|(i, k)| (k, i)).collect();
    let mut chosen: Vec<Option<Taught>> = vec![None; keys.len()];
    let mut copies: Vec<(usize, bool)> = vec![(0, false); keys.len()];
    let mut report = MergeReport { shards, samples: keys.len(), ..MergeReport::default() };
    for index in 0..shards {
        for taught in read_cache(&shard_dir(job_dir, index))? {
            let key = (taught.user.clone(), taught.item.clone());
            let Some(&at) =
                position.get(&key).filter(|&&at| Shard::of_sample(at, batch_size, shards) == index)
            else {
                report.strays.push(Stray { user: taught.user, item: taught.item, shard: index });
                continue;
            };
            copies[at].0 += 1;
            match &chosen[at] {
                Some(first) => copies[at].1 |= first.text != taught.text,
                None => chosen[at] = Some(taught),
            }
        }
    }
    for (at, (user, item)) in keys.iter().enumerate() {
        let (n, differing) = copies[at];
        if n > 1 {
            report.duplicates.push(Duplicate {
                user: user.clone(),
                item: item.clone(),
                copies: n,
                differing,
            });
        }
        if n == 0 {
            let shard = Shard::of_sample(at, batch_size, shards);
            report.gaps.push(Gap { user: user.clone(), item: item.clone(), shard });
        }
    }
    report.merged = keys.len() - report.gaps.len();
    let teach = teach_dir(job_dir);
    durable::write_json(&teach.join(MERGE_FILE), &report)?;
    if !report.gaps.is_empty() {
        let first: Vec<String> = report
            .gaps
            .iter()
            .take(3)
            .map(|g| format!("user {} item {} (shard {})", g.user, g.item, g.shard))
            .collect();
        bail!(
            "{} of {} samples have no teacher explanation in the shard caches, e.g. {}; see {}",
            report.gaps.len(),
            keys.len(),
            first.join(", "),
            teach.join(MERGE_FILE).display()
        );
    }
    let mut lines = Vec::new();
    for taught in chosen.into_iter().flatten() {
        serde_json::to_writer(&mut lines, &taught)?;
        lines.push(b'\n');
    }
    durable::write_file(&teach.join(CACHE_FILE), &lines)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taught(user: &str, item: &str, text: &str) -> Taught {
        Taught { user: user.into(), item: item.into(), text: text.into(), ms: 1.0, new_tokens: 1 }
    }

    fn write_cache(job: &Path, shard: usize, rows: &[Taught]) {
        let mut lines = durable::JsonLines::open(&shard_dir(job, shard).join(CACHE_FILE)).unwrap();
        for row in rows {
            lines.append(row).unwrap();
        }
    }

    fn keys(n: usize) -> Vec<(String, String)> {
        (0..n).map(|i| (format!("u{i}"), format!("i{i}"))).collect()
    }

    #[test]
    fn shards_take_whole_batches_in_turn() {
        let owners: Vec<usize> = (0..10).map(|at| Shard::of_sample(at, 2, 3)).collect();
        assert_eq!(owners, [0, 0, 1, 1, 2, 2, 0, 0, 1, 1]);
        let shard = Shard::parse("1/3").unwrap();
        assert!(shard.has_batch(1) && shard.has_batch(4) && !shard.has_batch(0));
        assert_eq!(shard.to_string(), "1/3");
        for bad in ["3/3", "1", "a/2", "1/0"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn merge_keeps_one_per_sample_in_list_order_and_reports_duplicates_and_strays() {
        let tmp = tempfile::tempdir().unwrap();
        let job = tmp.path();
        let keys = keys(4);
        // batch 1, 2 shards: samples 0 and 2 are shard 0's, 1 and 3 shard 1's.
        write_cache(job, 0, &[taught("u2", "i2", "c"), taught("u0", "i0", "a"), taught("u2", "i2", "c2")]);
        write_cache(job, 1, &[taught("u3", "i3", "d"), taught("u1", "i1", "b"), taught("u0", "i0", "x")]);
        write_cache(job, 1, &[taught("zz", "i9", "?")]);
        let report = merge(job, &keys, 1, 2).unwrap();
        assert_eq!(report.merged, 4);
        assert_eq!(
            report.duplicates,
            [Duplicate { user: "u2".into(), item: "i2".into(), copies: 2, differing: true }]
        );
        assert_eq!(report.strays.len(), 2, "{:?}", report.strays);
        let merged = read_cache(&teach_dir(job)).unwrap();
        let texts: Vec<&str> = merged.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, ["a", "b", "c", "d"]);
        let written: MergeReport = read_json(&teach_dir(job).join(MERGE_FILE)).unwrap();
        assert_eq!(written, report);
    }

    #[test]
    fn merge_names_gaps_and_their_shards() {
        let tmp = tempfile::tempdir().unwrap();
        let job = tmp.path();
        write_cache(job, 0, &[taught("u0", "i0", "a")]);
        let err = format!("{:#}", merge(job, &keys(3), 1, 2).unwrap_err());
        assert!(err.contains("2 of 3 samples"), "{err}");
        assert!(err.contains("user u1 item i1 (shard 1)"), "{err}");
        assert!(!teach_dir(job).join(CACHE_FILE).exists(), "no merged cache with gaps");
        let report: MergeReport = read_json(&teach_dir(job).join(MERGE_FILE)).unwrap();
        assert_eq!(report.gaps.len(), 2);
    }

    #[test]
    fn a_shard_plans_its_batches_samples() {
        let plan = Plan { shards: 3, batch_size: 4, samples: 30, fingerprint: String::new() };
        // Batches 0..8 (the last has 2): shard 0 has 0, 3, 6; shard 1 has 1, 4, 7 (2 samples).
        let counts: Vec<usize> = (0..3).map(|k| plan.shard_samples(k)).collect();
        assert_eq!(counts, [12, 10, 8]);
        for count in [1, 2, 7] {
            let plan = Plan { shards: count, batch_size: 3, samples: 25, fingerprint: String::new() };
            let owned: Vec<usize> = (0..25).map(|at| Shard::of_sample(at, 3, count)).collect();
            for k in 0..count {
                assert_eq!(plan.shard_samples(k), owned.iter().filter(|&&o| o == k).count());
            }
        }
    }

    #[test]
    fn cached_samples_are_the_complete_lines() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(cached(tmp.path(), 0).unwrap(), 0);
        write_cache(tmp.path(), 0, &[taught("u0", "i0", "a"), taught("u1", "i1", "b")]);
        let path = shard_dir(tmp.path(), 0).join(CACHE_FILE);
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        std::io::Write::write_all(&mut file, b"{\"user\": \"u2").unwrap();
        assert_eq!(cached(tmp.path(), 0).unwrap(), 2, "a torn last line is not a sample");
    }

    #[test]
    fn a_lock_is_held_once() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("shards/0/lock");
        assert_eq!(is_held(&path), Some(false), "never made");
        let held = exclusive(&path, "shard 0/2").unwrap();
        assert_eq!(is_held(&path), Some(true));
        assert_eq!(is_held(&path), Some(true), "asking does not take it");
        let err = format!("{:#}", exclusive(&path, "shard 0/2").unwrap_err());
        assert!(err.contains("shard 0/2 is already being run by another process"), "{err}");
        drop(held);
        assert_eq!(is_held(&path), Some(false));
        exclusive(&path, "shard 0/2").unwrap();
    }

    #[test]
    fn a_plan_from_another_dataset_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let plan = Plan::new(&keys(5), 2, 4);
        write_plan(tmp.path(), &plan).unwrap();
        write_plan(tmp.path(), &plan).unwrap();
        let other = Plan::new(&keys(6), 2, 4);
        let err = format!("{:#}", check_plan(tmp.path(), &other).unwrap_err());
        assert!(err.contains("plan.json") && err.contains("another sample list"), "{err}");
        let err = format!("{:#}", check_plan(tmp.path(), &Plan::new(&keys(5), 3, 4)).unwrap_err());
        assert!(err.contains("3 of batch 4"), "{err}");
    }
}

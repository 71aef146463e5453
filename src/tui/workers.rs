//! Background work for the explorer, on plain threads: the dataset, one thread per model (each owns
//! its `Engine`), the ranker, and distillation jobs. Everything they learn goes back as `Event`s on
//! one channel; nothing here touches the terminal. Each worker keeps only the latest request
//! (older queued ones are skipped) and a new explanation request cancels the running one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};

use super::event::{Effect, Event};
use super::panels::compare::{Answer, ModelInfo, Recorded, Source, ORACLE, PRISM};
use super::panels::history::HistoryRow;
use super::panels::jobs::JobMsg;
use super::panels::ranked::RankedRow;
use super::panels::users::{DataView, UserRow};
use crate::config::{project_root, Settings};
use crate::data::loaders::range::iso_date;
use crate::data::{self, Dataset, Split};
use crate::distill::events::{read_log, EventKind, LogPosition, Stage, EVENTS_FILE};
use crate::distill::status::{self, JobState};
use crate::distill::{self, JobSpec};
use crate::explain::prompt::recorded_history_len;
use crate::explain::recorded::Recorded as RecordedFile;
use crate::explain::samples::Sample;
use crate::explain::{Explainer, Matcher, PromptKind, Prompts, Verdict};
use crate::model::device::parse_device;
use crate::model::engine::{Engine, TextEvent};
use crate::rank::{self, BuildOptions, Ranker, RankerSpec, TrainMatrix};

/// The dataset and what is derived from it once, shared by every worker.
struct Loaded {
    dataset: Arc<Dataset>,
    split: Split,
    train: TrainMatrix,
    matcher: Matcher,
    prompts: Result<Prompts, String>,
}

type Shared = Arc<OnceLock<Loaded>>;

struct RankCmd {
    req: u64,
    user: String,
    ranker: String,
}

struct ExplainCmd {
    req: u64,
    user: String,
    item: String,
    cancel: Arc<AtomicBool>,
}

pub struct Workers {
    events: Sender<Event>,
    settings: Settings,
    loaded: Shared,
    rank: Sender<RankCmd>,
    /// One per comparison column, in pane order.
    models: Vec<Sender<ExplainCmd>>,
    explain_cancel: Option<Arc<AtomicBool>>,
    job_cancel: Option<Arc<AtomicBool>>,
}

/// Scheduling niceness of the explorer's compute threads (loading, ranking, models, rayon's pool):
/// on a machine with few cores the event loop, at the default priority, is then scheduled first, so
/// keys are handled within milliseconds while the models generate and a job trains.
const COMPUTE_NICENESS: i32 = 10;

/// Lowers the calling thread's priority to [`COMPUTE_NICENESS`] (Linux keeps a niceness per thread;
/// elsewhere this does nothing).
pub fn yield_to_the_event_loop() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority has no memory-safety preconditions; on Linux `who = 0` is the calling thread.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, COMPUTE_NICENESS);
    }
}

impl Workers {
    /// Starts loading the dataset and every column's system at once; `systems` are the panes'
    /// (name, source), in pane order.
    pub fn start(settings: Settings, systems: &[(String, Source)], events: Sender<Event>) -> Workers {
        let loaded: Shared = Arc::new(OnceLock::new());
        {
            let (settings, events, loaded) = (settings.clone(), events.clone(), loaded.clone());
            std::thread::spawn(move || {
                yield_to_the_event_loop();
                let result = load_data(&settings).map(|(view, data)| {
                    let _ = loaded.set(data);
                    view
                });
                let _ = events.send(Event::Data(result.map_err(|e| format!("{e:#}"))));
            });
        }
        let (rank, rank_rx) = mpsc::channel();
        {
            let (settings, events, loaded) = (settings.clone(), events.clone(), loaded.clone());
            std::thread::spawn(move || {
                yield_to_the_event_loop();
                rank_worker(&settings, &events, &loaded, rank_rx)
            });
        }
        // Every model column generates at once: each on a pool of its own share of the cores.
        let model_columns = systems.iter().filter(|(_, s)| matches!(s, Source::Model { .. })).count();
        let threads = crate::threads::share(crate::threads::available(), model_columns);
        let models = systems
            .iter()
            .enumerate()
            .map(|(pane, (name, source))| {
                let (sender, receiver) = mpsc::channel();
                let (settings, events, loaded) = (settings.clone(), events.clone(), loaded.clone());
                let column = Column { pane, key: config_key(pane, name), source: source.clone() };
                std::thread::spawn(move || {
                    yield_to_the_event_loop();
                    match &column.source {
                        Source::Model { dir, kind } => {
                            // This thread is the pool's worker 0 for as long as the pool lives.
                            let _pool = crate::threads::own_pool(threads, yield_to_the_event_loop);
                            model_worker(&column, dir, *kind, &settings, &events, &loaded, receiver)
                        }
                        Source::File { path, model } => file_worker(
                            &column,
                            path,
                            model.as_deref(),
                            &settings,
                            &events,
                            &loaded,
                            receiver,
                        ),
                    }
                });
                sender
            })
            .collect();
        Workers { events, settings, loaded, rank, models, explain_cancel: None, job_cancel: None }
    }

    /// Starts what the app asked for; returns without waiting for any of it.
    pub fn run(&mut self, effect: Effect) {
        match effect {
            Effect::Rank { req, user, ranker } => {
                if let Some(loaded) = self.loaded.get() {
                    let rows = history(loaded, &user, self.settings.dataset.history_len);
                    let _ = self.events.send(Event::History { req, rows });
                }
                let _ = self.rank.send(RankCmd { req, user, ranker });
            }
            Effect::Explain { req, user, item } => {
                self.cancel_explain();
                let cancel = Arc::new(AtomicBool::new(false));
                self.explain_cancel = Some(cancel.clone());
                for sender in &self.models {
                    let cmd =
                        ExplainCmd { req, user: user.clone(), item: item.clone(), cancel: cancel.clone() };
                    let _ = sender.send(cmd);
                }
            }
            Effect::CancelExplain => self.cancel_explain(),
            Effect::StartJob => {
                if let Err(e) = self.start_job() {
                    let _ = self.events.send(Event::Job(JobMsg::Ended(Err(format!("{e:#}")))));
                }
            }
            Effect::AttachJob(path) => self.attach(path),
            Effect::CancelJob => {
                if let Some(flag) = self.job_cancel.take() {
                    flag.store(true, Ordering::Relaxed);
                }
            }
            // The event loop hands the terminal over itself (see `tui::run`).
            Effect::Annotate { .. } => {}
            Effect::Quit => {
                self.cancel_explain();
            }
        }
    }

    fn cancel_explain(&mut self) {
        if let Some(flag) = self.explain_cancel.take() {
            flag.store(true, Ordering::Relaxed);
        }
    }

    fn start_job(&mut self) -> Result<()> {
        let loaded = self.loaded.get().ok_or_else(|| anyhow!("the dataset is not loaded"))?;
        let prompts = loaded.prompts.clone().map_err(|e| anyhow!(e))?;
        let mut spec = JobSpec::preset("quick", &project_root())?;
        spec.dataset = self.settings.dataset.path.clone();
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
        let dir = jobs_dir().join(format!("quick-{stamp}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let spec = distill::spec::prepare(&dir, &spec, false)?;
        let device = parse_device(&self.settings.models.device)?;
        let handle = distill::spawn(
            dir.clone(),
            spec,
            loaded.dataset.clone(),
            prompts,
            self.settings.dataset.history_len,
            device,
        );
        self.job_cancel = Some(handle.cancel.clone());
        let events = self.events.clone();
        let _ = events.send(Event::Job(JobMsg::Started { dir, started_here: true }));
        std::thread::spawn(move || {
            for event in handle.events.iter() {
                let _ = events.send(Event::Job(JobMsg::Event(event)));
            }
            let ended = handle.join().map(|s| s.dir.display().to_string()).map_err(|e| format!("{e:#}"));
            let _ = events.send(Event::Job(JobMsg::Ended(ended)));
        });
        Ok(())
    }

    /// Follows a job started elsewhere until it ends or the user detaches: its events.jsonl as it
    /// grows, and where it stands (`distill::status`, as `prism distill status` reads it: its
    /// files every second, Slurm every poll interval).
    fn attach(&mut self, path: PathBuf) {
        let file = if path.is_dir() { path.join(EVENTS_FILE) } else { path.clone() };
        let events = self.events.clone();
        if !file.is_file() {
            let message = format!("{} has no {EVENTS_FILE}: is it a job directory?", path.display());
            let _ = events.send(Event::Job(JobMsg::Ended(Err(message))));
            return;
        }
        let stop = Arc::new(AtomicBool::new(false));
        self.job_cancel = Some(stop.clone());
        let job_dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let poll_seconds = self.settings.slurm.poll_seconds;
        let _ = events.send(Event::Job(JobMsg::Started { dir: path, started_here: false }));
        std::thread::spawn(move || {
            let send = |msg: JobMsg| {
                let _ = events.send(Event::Job(msg));
            };
            let options = status::Options { ask_slurm: true, poll_seconds };
            let slurm_every = Duration::from_secs_f64(poll_seconds.clamp(2.0, 10.0));
            let mut position = LogPosition::default();
            let mut answer = None;
            let mut asked: Option<std::time::Instant> = None;
            let mut looked: Option<std::time::Instant> = None;
            let mut has_status = false;
            loop {
                // Where it stands first: the events that follow are then read as a watched job's.
                let mut standing = None;
                if looked.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                    looked = Some(std::time::Instant::now());
                    if asked.is_none_or(|t| t.elapsed() >= slurm_every) {
                        asked = Some(std::time::Instant::now());
                        answer = status::ask_slurm(&job_dir);
                    }
                    if let Ok(now) = status::read_with(&job_dir, &options, answer.as_ref()) {
                        // Over when nothing runs it or will: finished, or stopped with no task left.
                        standing = Some(
                            now.state == JobState::Finished
                                || (now.state != JobState::Running
                                    && !now.shards.iter().any(|s| s.state.is_active())),
                        );
                        send(JobMsg::Status(Box::new(now)));
                    }
                }
                let log = match read_log(&file, position) {
                    Ok(log) => log,
                    Err(e) => return send(JobMsg::Ended(Err(format!("{e:#}")))),
                };
                position = log.end;
                // Without job.json (a bare events.jsonl) the log's own end is all there is to go by.
                let mut ended = false;
                for event in log.events {
                    ended |= matches!(event.kind, EventKind::Failed | EventKind::Cancelled)
                        || (event.kind == EventKind::Finished && event.stage == Stage::Evaluate);
                    send(JobMsg::Event(event));
                }
                let ended = standing.unwrap_or(ended && !has_status);
                has_status |= standing.is_some();
                if ended || stop.load(Ordering::Relaxed) {
                    return send(JobMsg::Ended(Ok(file.display().to_string())));
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        });
    }
}

/// Where jobs started from the explorer live: the platform data directory, else `./prism-jobs`.
fn jobs_dir() -> PathBuf {
    directories::ProjectDirs::from("", "", "prism-explorer")
        .map(|d| d.data_local_dir().join("jobs"))
        .unwrap_or_else(|| PathBuf::from("prism-jobs"))
}

fn load_data(settings: &Settings) -> Result<(DataView, Loaded)> {
    let dataset = data::load::open_quiet(&settings.dataset)?;
    let meta_path = data::load::dataset_dir(&settings.dataset).join("dataset.json");
    let meta: serde_json::Value = std::fs::read_to_string(&meta_path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    let split = Split::leave_last_out(&dataset);
    let users = (0..dataset.num_users())
        .map(|u| UserRow { id: dataset.users[u].clone(), history_len: split.train(&dataset, u as _).len() })
        .collect();
    let view = DataView {
        name: meta["name"].as_str().unwrap_or(&settings.dataset.path).to_owned(),
        description: meta["description"].as_str().unwrap_or_default().to_owned(),
        synthetic: meta["synthetic"].as_bool().unwrap_or(false),
        items: dataset.num_items(),
        interactions: dataset.interactions.len(),
        users,
    };
    let train = TrainMatrix::new(&dataset, &split);
    let matcher = Matcher::new(&dataset);
    let prompts = Prompts::load(&settings.prompts).map_err(|e| format!("{e:#}"));
    Ok((view, Loaded { dataset: Arc::new(dataset), split, train, matcher, prompts }))
}

fn features(item: &data::Item) -> String {
    item.features.iter().map(|f| f.value.as_str()).collect::<Vec<_>>().join(", ")
}

fn history(loaded: &Loaded, user: &str, n: usize) -> Vec<HistoryRow> {
    let dataset = &loaded.dataset;
    let Some(u) = dataset.user_by_id(user) else { return Vec::new() };
    loaded
        .split
        .history(dataset, u, n)
        .iter()
        .map(|i| {
            let item = dataset.item(i.item);
            HistoryRow {
                title: item.title.clone(),
                features: features(item),
                rating: i.rating,
                date: iso_date(i.timestamp),
            }
        })
        .collect()
}

/// The latest command on `receiver`, waiting for one if none is queued; `None` once the explorer
/// has gone.
fn latest<T>(receiver: &Receiver<T>) -> Option<T> {
    let mut cmd = receiver.recv().ok()?;
    while let Ok(next) = receiver.try_recv() {
        cmd = next;
    }
    Some(cmd)
}

fn rank_worker(settings: &Settings, events: &Sender<Event>, loaded: &Shared, commands: Receiver<RankCmd>) {
    let mut rankers: HashMap<String, Box<dyn Ranker>> = HashMap::new();
    let cache_dir = rank::default_cache_dir();
    while let Some(cmd) = latest(&commands) {
        let result = (|| -> Result<Vec<RankedRow>> {
            let loaded = loaded.get().ok_or_else(|| anyhow!("the dataset is not loaded"))?;
            let dataset = &loaded.dataset;
            if !rankers.contains_key(&cmd.ranker) {
                let spec: RankerSpec = cmd.ranker.parse()?;
                let req = cmd.req;
                let progress = |line: &str| {
                    let _ = events.send(Event::RankProgress { req, line: line.to_owned() });
                };
                let options = BuildOptions {
                    settings: &settings.ranker,
                    cache_dir: cache_dir.as_deref(),
                    progress: &progress,
                };
                let ranker = rank::build(&spec, dataset, &loaded.split, &loaded.train, &options)?;
                rankers.insert(cmd.ranker.clone(), ranker);
            }
            let ranker = &rankers[&cmd.ranker];
            let user = dataset.user_by_id(&cmd.user).ok_or_else(|| anyhow!("unknown user '{}'", cmd.user))?;
            Ok(ranker
                .recommend(&loaded.train, user, settings.ranker.k)
                .into_iter()
                .map(|s| {
                    let item = dataset.item(s.item);
                    RankedRow {
                        item: item.id.clone(),
                        title: item.title.clone(),
                        score: s.score,
                        features: features(item),
                    }
                })
                .collect())
        })();
        let result = result.map_err(|e| format!("{e:#}"));
        let _ = events.send(Event::Ranked { req: cmd.req, result });
    }
}

/// The column a worker answers for.
struct Column {
    pane: usize,
    /// Where the configuration names its system, for error messages.
    key: String,
    source: Source,
}

fn config_key(pane: usize, name: &str) -> String {
    match pane {
        ORACLE => "[models] oracle".to_owned(),
        PRISM => "[models] prism".to_owned(),
        _ => format!("[models.extra] {name}"),
    }
}

fn model_worker(
    column: &Column,
    dir: &Path,
    kind: PromptKind,
    settings: &Settings,
    events: &Sender<Event>,
    loaded: &Shared,
    commands: Receiver<ExplainCmd>,
) {
    let pane = column.pane;
    let (_, max_input_tokens) = kind.configured(&settings.models);
    let engine = parse_device(&settings.models.device)
        .and_then(|device| kind.engine_options(&settings.models, device))
        .and_then(|options| Engine::load(dir, &options));
    let engine = engine.and_then(|engine| {
        let recorded = recorded_history_len(engine.config())
            .with_context(|| format!("the checkpoint {}", engine.dir().display()))?;
        Ok((engine, recorded))
    });
    let engine = match engine {
        Ok((engine, recorded)) => {
            let info = engine.info();
            let view = ModelInfo {
                architecture: format!("{:?}", info.arch).to_lowercase(),
                param_bytes: info.param_bytes,
                load_ms: engine.load_ms(),
                max_input_tokens: Some(engine.input_limit().min(max_input_tokens)),
                history_items: (kind == PromptKind::Prism)
                    .then(|| recorded.unwrap_or(settings.prompts.prism_history_len)),
            };
            let _ = events.send(Event::Model { pane, result: Ok(view) });
            engine
        }
        Err(e) => {
            let message = format!("{e:#}. Consider pointing {} in the config at a checkpoint.", column.key);
            let _ = events.send(Event::Model { pane, result: Err(message) });
            return;
        }
    };
    let decoding = engine.config_with(&crate::explain::decoding_overrides(&settings.decoding));
    while let Some(cmd) = latest(&commands) {
        if cmd.cancel.load(Ordering::Relaxed) {
            continue;
        }
        let result =
            explain(pane, kind, &engine, max_input_tokens, settings, loaded, &decoding, &cmd, events);
        // A cancelled generation answers a request nobody shows any more.
        if !cmd.cancel.load(Ordering::Relaxed) {
            let result = result.map(|e| Answer::Generated(Box::new(e))).map_err(|e| format!("{e:#}"));
            let _ = events.send(Event::Explained { req: cmd.req, pane, result });
        }
    }
}

/// A `file:` column: reads the file once, then answers each request with its row for the pair,
/// grounded against the user's history like a generated explanation.
fn file_worker(
    column: &Column,
    path: &Path,
    model: Option<&str>,
    settings: &Settings,
    events: &Sender<Event>,
    loaded: &Shared,
    commands: Receiver<ExplainCmd>,
) {
    let pane = column.pane;
    let started = std::time::Instant::now();
    let file = match RecordedFile::read(path, model) {
        Ok(file) => {
            let view = ModelInfo {
                architecture: "precomputed".to_owned(),
                param_bytes: 0,
                load_ms: started.elapsed().as_secs_f64() * 1000.0,
                max_input_tokens: None,
                history_items: None,
            };
            let _ = events.send(Event::Model { pane, result: Ok(view) });
            file
        }
        Err(e) => {
            let message = format!("{e:#}. Consider checking {} in the config.", column.key);
            let _ = events.send(Event::Model { pane, result: Err(message) });
            return;
        }
    };
    while let Some(cmd) = latest(&commands) {
        if cmd.cancel.load(Ordering::Relaxed) {
            continue;
        }
        let result = (|| -> Result<Answer> {
            let loaded = loaded.get().ok_or_else(|| anyhow!("the dataset is not loaded"))?;
            let dataset = &loaded.dataset;
            let user = dataset.user_by_id(&cmd.user).ok_or_else(|| anyhow!("unknown user '{}'", cmd.user))?;
            let item = dataset.item_by_id(&cmd.item).ok_or_else(|| anyhow!("unknown item '{}'", cmd.item))?;
            let Some(row) = file.get(&cmd.user, &cmd.item) else {
                return Ok(Answer::Missing(format!(
                    "No explanation of item {} for user {} in {}.",
                    cmd.item,
                    cmd.user,
                    column.source.location()
                )));
            };
            let history: Vec<_> = loaded
                .split
                .history(dataset, user, settings.dataset.history_len)
                .iter()
                .map(|i| i.item)
                .collect();
            let grounding = loaded.matcher.ground(&row.text, &history, item);
            Ok(Answer::Recorded(Box::new(Recorded {
                text: row.text.clone(),
                latency_ms: row.latency_ms,
                grounding: grounding.summary(),
                mentions: grounding.records(&row.text),
                verdict: Verdict::of(&loaded.matcher, &grounding, item, &row.text),
            })))
        })();
        let _ = events.send(Event::Explained {
            req: cmd.req,
            pane,
            result: result.map_err(|e| format!("{e:#}")),
        });
    }
}

#[allow(clippy::too_many_arguments)]
fn explain(
    pane: usize,
    kind: PromptKind,
    engine: &Engine,
    max_input_tokens: usize,
    settings: &Settings,
    loaded: &Shared,
    decoding: &crate::model::GenerationConfig,
    cmd: &ExplainCmd,
    events: &Sender<Event>,
) -> Result<crate::explain::Explanation> {
    let loaded = loaded.get().ok_or_else(|| anyhow!("the dataset is not loaded"))?;
    let prompts = loaded.prompts.as_ref().map_err(|e| anyhow!("{e}"))?;
    let dataset = &loaded.dataset;
    let user = dataset.user_by_id(&cmd.user).ok_or_else(|| anyhow!("unknown user '{}'", cmd.user))?;
    let item = dataset.item_by_id(&cmd.item).ok_or_else(|| anyhow!("unknown item '{}'", cmd.item))?;
    let history =
        loaded.split.history(dataset, user, settings.dataset.history_len).iter().map(|i| i.item).collect();
    let sample = Sample { user, item, history, reference: None, noisy_reference: false };
    let explainer = Explainer { engine, kind, max_input_tokens, dataset, prompts, matcher: &loaded.matcher };
    let req = cmd.req;
    let mut on_text = |event: &TextEvent<'_>| {
        if !event.delta.is_empty() {
            let _ = events.send(Event::Text { req, pane, text: event.text.to_owned() });
        }
    };
    explainer.explain(&sample, decoding, Some(&mut on_text), Some(&cmd.cancel))
}

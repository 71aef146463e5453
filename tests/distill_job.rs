//! The distillation job end to end on a small generated dataset, with the tiny fixture T5 as
//! teacher and a tiny fresh BART as student: a job cancelled inside *teach* resumes without
//! regenerating what it cached, and the whole job completes with an evaluation and a summary.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::Device;
use prism_explorer::config::{PromptSettings, Settings};
use prism_explorer::data::synth::{generate, SynthConfig};
use prism_explorer::distill::filter::FilterSettings;
use prism_explorer::distill::job;
use prism_explorer::distill::layout::is_complete;
use prism_explorer::distill::spec::{self, Decoding};
use prism_explorer::distill::teach::read_cache;
use prism_explorer::distill::{DistillEvent, EventKind, JobContext, JobSpec, JobSummary, Stage};
use prism_explorer::explain::Prompts;

mod common;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn spec(dir: &Path) -> JobSpec {
    let recipe = dir.join("student.toml");
    std::fs::write(&recipe, common::TINY_STUDENT_RECIPE).unwrap();
    JobSpec {
        teacher: root().join("tests/fixtures/hf/t5-v1_1"),
        teacher_dtype: prism_explorer::model::WeightDtype::F32,
        teacher_max_input_tokens: 600,
        student_recipe: recipe,
        teach_samples: Some(12),
        teach_batch: 4,
        // Sampled, so that a resumed or sharded teach stage must seed each batch as a whole run does.
        teach_decoding: Decoding {
            num_beams: 1,
            max_new_tokens: 8,
            no_repeat_ngram_size: None,
            length_penalty: None,
            do_sample: true,
            temperature: Some(1.0),
            top_p: None,
            seed: Some(11),
        },
        // The random teacher writes noise: keep it all, the stages are what is tested here.
        filter: FilterSettings {
            enabled: false,
            min_words: 1,
            max_words: 100,
            ngram: 3,
            max_ngram_repeats: 1,
            drop_invented: true,
        },
        eval_samples: 3,
        eval_decoding: Decoding {
            num_beams: 2,
            max_new_tokens: 6,
            no_repeat_ngram_size: None,
            length_penalty: None,
            do_sample: false,
            temperature: None,
            top_p: None,
            seed: None,
        },
        seed: 3,
        student_init: None,
        preset: "test".into(),
        dataset: "synthetic".into(),
        shards: None,
        teacher_outputs: None,
    }
}

fn dataset() -> prism_explorer::data::Dataset {
    let config = SynthConfig {
        users: 30,
        items: 80,
        interactions: 600,
        noise: 0.15,
        seed: 4,
        ..SynthConfig::default()
    };
    generate(&config).unwrap()
}

fn prompts() -> Prompts {
    let settings = Settings::load_layers(None, None).unwrap();
    Prompts::load(&PromptSettings {
        oracle: root().join("configs/prompts/oracle.txt"),
        prism: root().join("configs/prompts/prism.txt"),
        prism_history_len: settings.prompts.prism_history_len,
    })
    .unwrap()
}

fn run(
    dir: &Path,
    spec: &JobSpec,
    cancel_at_teach: Option<usize>,
    events: &mut Vec<DistillEvent>,
) -> JobSummary {
    let (dataset, prompts) = (dataset(), prompts());
    let cancel = AtomicBool::new(false);
    let mut on_event = |e: &DistillEvent| {
        if let (Some(at), Stage::Teach, EventKind::Progress) = (cancel_at_teach, e.stage, &e.kind) {
            if e.done >= at {
                cancel.store(true, Ordering::Relaxed);
            }
        }
        events.push(e.clone());
    };
    let context = JobContext {
        dir,
        dataset: &dataset,
        prompts: &prompts,
        history_len: 20,
        device: &Device::Cpu,
        cancel: &cancel,
    };
    job::run(context, spec, &mut on_event).unwrap()
}

#[test]
fn a_cancelled_job_resumes_without_regenerating_and_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("job");
    let spec = spec::prepare(&dir, &spec(tmp.path()), false).unwrap();

    let mut first = Vec::new();
    let summary = run(&dir, &spec, Some(4), &mut first);
    assert!(summary.cancelled);
    let cached = read_cache(&dir.join("teach")).unwrap();
    assert_eq!(cached.len(), 4, "one batch of 4 was cached before the cancellation");
    assert!(!is_complete(&dir, Stage::Teach));

    assert!(spec::prepare(&dir, &spec, false).is_err(), "an existing job needs --resume");
    let spec = spec::prepare(&dir, &spec, true).unwrap();
    let mut second = Vec::new();
    let summary = run(&dir, &spec, None, &mut second);
    assert!(!summary.cancelled);
    let started = second.iter().find(|e| e.stage == Stage::Teach && e.kind == EventKind::Started).unwrap();
    assert_eq!(started.message, "4 cached, 8 to generate");
    let after = read_cache(&dir.join("teach")).unwrap();
    assert_eq!(after.len(), 12);
    assert_eq!(after[..4], cached[..], "cached explanations are kept as they were");
    let mut keys: Vec<_> = after.iter().map(|t| (&t.user, &t.item)).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 12, "no sample generated twice");

    for stage in Stage::ALL {
        assert!(is_complete(&dir, stage), "{stage:?} not complete");
    }
    assert_eq!(summary.filter.total, 12);
    let evaluation = summary.evaluation.expect("evaluated");
    assert_eq!(evaluation["samples"], 3);
    assert!(evaluation["speedup"].as_f64().unwrap() > 0.0);
    for model in ["oracle", "prism", "template"] {
        assert_eq!(evaluation["metrics"]["models"][model]["n"], 3, "{model}");
    }
    assert!(dir.join("train/best/model.safetensors").exists());
    let student: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("train/best/config.json")).unwrap()).unwrap();
    assert_eq!(student["prism_history_len"], prompts().prism_history_len, "the student records its window");
    assert!(dir.join("summary.json").exists());
    let events: Vec<DistillEvent> =
        prism_explorer::durable::read_json_lines(&dir.join("events.jsonl")).unwrap();
    assert_eq!(events.len(), first.len() + second.len(), "every event is also in events.jsonl");

    // A finished job resumes to the same summary without redoing anything.
    let mut third = Vec::new();
    let again = run(&dir, &spec, None, &mut third);
    assert!(third.iter().all(|e| e.kind != EventKind::Started), "{third:?}");
    let reread = again.evaluation.unwrap()["speedup"].as_f64().unwrap();
    assert!((reread - evaluation["speedup"].as_f64().unwrap()).abs() < 1e-9);
}

#[test]
fn a_spawned_job_reports_on_its_channel() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("job");
    let spec = spec::prepare(&dir, &spec(tmp.path()), false).unwrap();
    let handle = prism_explorer::distill::spawn(
        dir.clone(),
        spec,
        std::sync::Arc::new(dataset()),
        prompts(),
        20,
        Device::Cpu,
    );
    let received: Vec<DistillEvent> = handle.events.iter().collect();
    let summary = handle.join().unwrap();
    assert!(!summary.cancelled);
    let finished: Vec<Stage> =
        received.iter().filter(|e| e.kind == EventKind::Finished).map(|e| e.stage).collect();
    assert_eq!(finished, Stage::ALL);
    assert!(
        received.iter().any(|e| e.stage == Stage::Train && e.loss.is_some()),
        "training reports its loss"
    );
}

/// What must not depend on how the teach stage was split: the teacher's explanations (in sample
/// order), the filter's choice, the student's weights and the evaluation's texts and scores.
struct Results {
    taught: Vec<(String, String, String)>,
    kept: Vec<u8>,
    weights: Vec<u8>,
    explanations: Vec<u8>,
    metrics: serde_json::Value,
}

fn results(dir: &Path) -> Results {
    let taught = read_cache(&dir.join("teach")).unwrap();
    let read = |p: &str| std::fs::read(dir.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let report: serde_json::Value = serde_json::from_slice(&read("evaluate/report.json")).unwrap();
    Results {
        taught: taught.into_iter().map(|t| (t.user, t.item, t.text)).collect(),
        kept: read("filter/kept.jsonl"),
        weights: read("train/best/model.safetensors"),
        explanations: read("evaluate/explanations.jsonl"),
        metrics: report["metrics"].clone(),
    }
}

#[test]
fn a_sharded_job_gives_the_same_results_as_one_in_one_piece() {
    let tmp = tempfile::tempdir().unwrap();
    let mut base = spec(tmp.path());
    base.teach_batch = 2;
    let whole = tmp.path().join("whole");
    let spec_whole = spec::prepare(&whole, &base, false).unwrap();
    run(&whole, &spec_whole, None, &mut Vec::new());

    // In this process, shard after shard (6 batches over 4 shards: 2, 2, 1, 1), cancelled in
    // shard 0 and resumed.
    let local = tmp.path().join("local");
    let spec_local = spec::prepare(&local, &JobSpec { shards: Some(4), ..base.clone() }, false).unwrap();
    let mut first = Vec::new();
    assert!(run(&local, &spec_local, Some(1), &mut first).cancelled);
    let progress = first.iter().filter(|e| e.stage == Stage::Teach && e.kind == EventKind::Progress);
    assert!(progress.clone().count() > 0 && progress.clone().all(|e| e.shard.is_some()), "{first:?}");
    assert!(!prism_explorer::distill::shards::is_shard_complete(&local, 0));
    let mut second = Vec::new();
    let summary = run(&local, &spec_local, None, &mut second);
    assert!(!summary.cancelled);
    let resumed = second.iter().find(|e| e.kind == EventKind::Started && e.stage == Stage::Teach).unwrap();
    assert_eq!(resumed.message, "2 cached, 2 to generate", "{resumed:?}");
    for k in 0..4 {
        let shard_cache = read_cache(&prism_explorer::distill::shards::shard_dir(&local, k)).unwrap();
        assert_eq!(shard_cache.len(), if k < 2 { 4 } else { 2 }, "shard {k}");
    }
    let merge: serde_json::Value =
        serde_json::from_slice(&std::fs::read(local.join("teach/merge.json")).unwrap()).unwrap();
    assert_eq!(merge["merged"], 12);
    assert_eq!(merge["duplicates"], serde_json::json!([]));
    assert_eq!(merge["gaps"], serde_json::json!([]));

    // Shards run as separate tasks (as a Slurm array does, here out of order), then the job
    // merges them and goes on.
    let tasks = tmp.path().join("tasks");
    let spec_tasks = spec::prepare(&tasks, &JobSpec { shards: Some(3), ..base.clone() }, false).unwrap();
    let (dataset, prompts) = (dataset(), prompts());
    use prism_explorer::distill::batches::Shard;
    use prism_explorer::distill::shards::{prepare, run_shard};
    let cancel = AtomicBool::new(false);
    let context = JobContext {
        dir: &tasks,
        dataset: &dataset,
        prompts: &prompts,
        history_len: 20,
        device: &Device::Cpu,
        cancel: &cancel,
    };
    let shard_job = |index: usize| run_shard(context, Shard { index, count: 3 }, &mut |_| {});
    let err = format!("{:#}", shard_job(0).unwrap_err());
    assert!(err.contains("plan.json"), "a shard needs the plan: {err}");
    prepare(&tasks, &spec_tasks, &dataset, 20).unwrap();
    for index in [2, 0, 1, 0] {
        assert!(shard_job(index).unwrap());
    }
    let wrong = run_shard(context, Shard { index: 0, count: 2 }, &mut |_| {});
    assert!(format!("{:#}", wrong.unwrap_err()).contains("split in 3 shards, not 2"));
    let mut events = Vec::new();
    run(&tasks, &spec_tasks, None, &mut events);
    let teach: Vec<_> = events.iter().filter(|e| e.stage == Stage::Teach).collect();
    assert!(teach.iter().all(|e| e.kind != EventKind::Started), "complete shards are not rerun: {teach:?}");
    assert!(teach[0].message.starts_with("merged 3 shards: 12 samples, 0 duplicates"), "{teach:?}");

    let expected = results(&whole);
    assert_eq!(expected.taught.len(), 12);
    for dir in [&local, &tasks] {
        let got = results(dir);
        assert_eq!(got.taught, expected.taught, "{}: teacher explanations", dir.display());
        assert!(got.kept == expected.kept, "{}: filter/kept.jsonl differs", dir.display());
        assert!(got.weights == expected.weights, "{}: student weights differ", dir.display());
        assert!(got.explanations == expected.explanations, "{}: evaluation texts differ", dir.display());
        assert_eq!(got.metrics, expected.metrics, "{}: evaluation metrics", dir.display());
    }
}

//! The *evaluate* stage: teacher and student explain the same test samples with the same decoding,
//! one sample at a time as a user would ask, and are scored with every explanation metric against
//! the references, next to a baseline that copies the item's features into a fixed sentence.
//! Latency and memory are measured per explanation. A job taught from an external teacher's file
//! has no teacher model here: the teacher's side is that file's texts for the test samples (not
//! timed, so no speed-up), or nothing when the file has none ([`Teacher`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;

use super::events::{DistillEvent, EventKind, EventSink, Stage};
use super::spec::Decoding;
use crate::data::{Dataset, Item, Part};
use crate::durable;
use crate::explain::eval::{self, Options, Report, Row};
use crate::explain::grounding::clean_title;
use crate::explain::samples::Sample;
use crate::explain::{Explainer, PromptKind};
use crate::explain::{Matcher, Prompts};
use crate::model::engine::Engine;
use crate::model::GenStats;

/// The baseline: the item's title and feature values in a fixed sentence, e.g.
/// "We recommend The Glass Harbor: drama, mystery, Ines Valdar, memory."
pub fn template_explanation(item: &Item) -> String {
    let values: Vec<&str> = item.features.iter().map(|f| f.value.as_str()).collect();
    if values.is_empty() {
        format!("We recommend {}.", clean_title(&item.title))
    } else {
        format!("We recommend {}: {}.", clean_title(&item.title), values.join(", "))
    }
}

/// Every evaluated explanation as `{user, item, model, text}` lines (`prism eval explain --from-file`
/// reads them).
pub const EXPLANATIONS_FILE: &str = "explanations.jsonl";

/// Speed and memory of one model over the evaluated samples.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Speed {
    pub samples: usize,
    pub mean_latency_ms: f64,
    pub median_latency_ms: f64,
    pub mean_ttft_ms: f64,
    pub mean_new_tokens: f64,
    pub tokens_per_s: f64,
    pub param_bytes: usize,
    /// Largest key/value cache of any sample.
    pub max_kv_cache_bytes: usize,
    /// Weights plus the largest key/value cache: the model's own memory.
    pub model_memory_bytes: usize,
    /// Largest growth of the process's peak resident set during one explanation.
    pub max_peak_rss_growth_bytes: u64,
}

impl Speed {
    fn from_stats(stats: &[GenStats]) -> Speed {
        let n = stats.len().max(1) as f64;
        let latencies: Vec<f64> = stats.iter().map(|s| s.total_ms).collect();
        let total_ms: f64 = latencies.iter().sum();
        let new_tokens: usize = stats.iter().map(|s| s.new_tokens).sum();
        let param_bytes = stats.first().map_or(0, |s| s.param_bytes);
        let max_kv = stats.iter().map(|s| s.kv_cache_bytes).max().unwrap_or(0);
        Speed {
            samples: stats.len(),
            mean_latency_ms: total_ms / n,
            median_latency_ms: median(latencies),
            mean_ttft_ms: stats.iter().map(|s| s.ttft_ms).sum::<f64>() / n,
            mean_new_tokens: new_tokens as f64 / n,
            tokens_per_s: new_tokens as f64 / (total_ms / 1000.0).max(1e-9),
            param_bytes,
            max_kv_cache_bytes: max_kv,
            model_memory_bytes: param_bytes + max_kv,
            max_peak_rss_growth_bytes: stats.iter().map(|s| s.peak_rss_growth_bytes).max().unwrap_or(0),
        }
    }
}

/// Written to `evaluate/report.json`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Evaluation {
    pub samples: usize,
    pub decoding: Decoding,
    pub threads: usize,
    /// What the `oracle` rows of the metrics are.
    pub teacher_source: String,
    /// `None` when the teacher did not run here.
    pub teacher: Option<Speed>,
    pub student: Speed,
    /// Teacher latency / student latency (mean per explanation).
    pub speedup: Option<f64>,
    /// Teacher model memory / student model memory.
    pub memory_ratio: Option<f64>,
    /// Metrics of `oracle` (when there is a teacher), `prism` and `template` against the test
    /// references.
    pub metrics: Report,
}

/// The student's counterpart in the evaluation.
pub enum Teacher<'a> {
    /// The teacher model, run here on the same samples with the same decoding.
    Model { engine: &'a Engine, max_input: usize },
    /// An external teacher's texts by (user id, item id), covering every evaluated sample.
    Texts { texts: &'a HashMap<(String, String), String>, source: String },
    /// No teacher: the student and the template only.
    Absent { why: String },
}

pub struct Evaluate<'a> {
    pub dataset: &'a Dataset,
    pub prompts: &'a Prompts,
    pub matcher: &'a Matcher,
    pub teacher: Teacher<'a>,
    pub student: &'a Engine,
    pub student_max_input: usize,
    pub decoding: &'a Decoding,
    pub samples: &'a [Sample],
    pub history_len: usize,
    pub dir: &'a Path,
    pub cancel: &'a AtomicBool,
}

/// Runs the stage; `None` when cancelled.
pub fn evaluate(job: Evaluate<'_>, events: &mut EventSink<'_>) -> Result<Option<Evaluation>> {
    let Evaluate {
        dataset,
        prompts,
        matcher,
        teacher,
        student,
        student_max_input,
        decoding,
        samples,
        history_len,
        dir,
        cancel,
    } = job;
    let runs_teacher = matches!(teacher, Teacher::Model { .. });
    let total = samples.len() * if runs_teacher { 2 } else { 1 };
    events.emit(DistillEvent::new(Stage::Evaluate, EventKind::Started, 0, total))?;
    let mut rows = Vec::new();
    let mut done = 0;
    let mut timed = |name: &str, engine: &Engine, kind: PromptKind, max_input: usize, rows: &mut Vec<Row>| {
        let config = decoding.config_for(engine);
        let explainer = Explainer { engine, kind, max_input_tokens: max_input, dataset, prompts, matcher };
        let mut stats = Vec::with_capacity(samples.len());
        for sample in samples {
            if cancel.load(Ordering::Relaxed) {
                return Ok(None);
            }
            let explanation = explainer.explain(sample, &config, None, Some(cancel))?;
            if cancel.load(Ordering::Relaxed) {
                return Ok(None);
            }
            rows.push(row(dataset, sample, name, &explanation.text, rows.len()));
            stats.push(explanation.stats);
            done += 1;
            if done % 10 == 0 {
                events.emit(DistillEvent::new(Stage::Evaluate, EventKind::Progress, done, total))?;
            }
        }
        anyhow::Ok(Some(Speed::from_stats(&stats)))
    };
    let (teacher_speed, teacher_source) = match &teacher {
        Teacher::Model { engine, max_input } => {
            let Some(speed) = timed("oracle", engine, PromptKind::Oracle, *max_input, &mut rows)? else {
                return Ok(None);
            };
            (Some(speed), format!("the teacher model {}, run here", engine.dir().display()))
        }
        Teacher::Texts { texts, source } => {
            for sample in samples {
                let key = sample.key(dataset);
                let text = texts.get(&key).ok_or_else(|| {
                    anyhow::anyhow!(
                        "{source} has no text for test sample (user {:?}, item {:?})",
                        key.0,
                        key.1
                    )
                })?;
                rows.push(row(dataset, sample, "oracle", text, rows.len()));
            }
            (None, source.clone())
        }
        Teacher::Absent { why } => (None, why.clone()),
    };
    let Some(student_speed) = timed("prism", student, PromptKind::Prism, student_max_input, &mut rows)?
    else {
        return Ok(None);
    };
    for sample in samples {
        let text = template_explanation(dataset.item(sample.item));
        rows.push(row(dataset, sample, "template", &text, rows.len()));
    }
    let mut lines = String::new();
    for r in &rows {
        let line = serde_json::json!({"user": r.user, "item": r.item, "model": r.model, "text": r.text});
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    durable::write_file(&dir.join(EXPLANATIONS_FILE), lines.as_bytes())?;
    let options = Options { part: Part::Test, history_len, models: Vec::new(), limit: None };
    let metrics = eval::evaluate(dataset, matcher, &rows, "the evaluated explanations", &options)?;
    Ok(Some(Evaluation {
        samples: samples.len(),
        decoding: decoding.clone(),
        threads: rayon::current_num_threads(),
        teacher_source,
        speedup: teacher_speed.as_ref().map(|t| t.mean_latency_ms / student_speed.mean_latency_ms.max(1e-9)),
        memory_ratio: teacher_speed
            .as_ref()
            .map(|t| t.model_memory_bytes as f64 / student_speed.model_memory_bytes.max(1) as f64),
        teacher: teacher_speed,
        student: student_speed,
        metrics,
    }))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn row(dataset: &Dataset, sample: &Sample, model: &str, text: &str, index: usize) -> Row {
    Row {
        line: index + 1,
        user: dataset.users[sample.user as usize].clone(),
        item: dataset.item(sample.item).id.clone(),
        model: model.to_owned(),
        text: text.to_owned(),
    }
}

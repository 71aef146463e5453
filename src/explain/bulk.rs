//! Explanations or prompts of many samples in one JSON-lines file, resumably: what `prism explain
//! --split … --out F.jsonl` writes. Every row is flushed as it is written ([`JsonLines`]); a re-run
//! reads the rows already there, skips them and appends the rest, so a killed run loses at most
//! the row it was writing and the file never holds a row twice. A last line a kill cut off is
//! reported and written again. Rows are keyed by (model, user, item).
//!
//! Explanation rows (`{"user","item","model","text",…}`) are what `prism eval explain --from-file`
//! scores and what a `file:` system of `prism human-eval` reads; prompt rows
//! (`{"user","item","model","prompt"}`) are for generating with another engine. A file holds rows
//! of one kind, for the samples of one split, and explanation rows record their decoding: a re-run
//! that asks for anything else is refused rather than mixing the two.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};

use super::inputs::ModelInputs;
use super::samples::Sample;
use super::{Explainer, Prompts};
use crate::data::Dataset;
use crate::durable::{read_json_lines_reporting, JsonLines, TornLine};
use crate::model::GenerationConfig;

/// One explanation with its measurements.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplanationRow {
    pub user: String,
    pub item: String,
    pub model: String,
    pub text: String,
    pub latency_ms: f64,
    pub ttft_ms: f64,
    pub new_tokens: usize,
    pub tokens_per_s: f64,
    /// The decoding it was made with.
    pub num_beams: usize,
    pub max_new_tokens: usize,
}

/// The prompt a model reads for one sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptRow {
    pub user: String,
    pub item: String,
    pub model: String,
    pub prompt: String,
}

/// What a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowKind {
    Explanation,
    Prompt,
}

impl RowKind {
    fn describe(self) -> &'static str {
        match self {
            RowKind::Explanation => "explanation rows ({\"user\",\"item\",\"model\",\"text\",…})",
            RowKind::Prompt => "prompt rows ({\"user\",\"item\",\"model\",\"prompt\"})",
        }
    }
}

/// (model, user id, item id).
type Key = (String, String, String);

/// An output file opened for adding rows.
pub struct Output {
    path: PathBuf,
    lines: JsonLines,
    done: HashSet<Key>,
    /// Rows that were in the file when it was opened.
    pub existing: usize,
    /// The last line a kill cut off, cut away and to be written again.
    pub torn: Option<TornLine>,
}

/// What the rows already in a file must agree with.
pub struct Expect<'a> {
    pub kind: RowKind,
    /// Every (user id, item id) a row may name, and what they are, for errors ("test samples").
    pub samples: &'a HashSet<(String, String)>,
    pub samples_are: &'a str,
    /// Explanation rows: (num_beams, max_new_tokens) per model of this run.
    pub decoding: &'a HashMap<String, (usize, usize)>,
}

impl Output {
    /// Opens `path` (made if absent) after checking the rows already there against `expect`.
    pub fn open(path: &Path, expect: &Expect<'_>) -> Result<Output> {
        let read = read_json_lines_reporting::<serde_json::Value>(path)?;
        let mut done: HashMap<Key, usize> = HashMap::new();
        let other_run = "; it was written by another command: use another --out";
        for (line, value) in &read.records {
            let at = |msg: String| anyhow!("{}, line {line}: {msg}", path.display());
            let (has, other) = match expect.kind {
                RowKind::Explanation => ("prompt", "prompts (--prompts-only); this run writes explanations"),
                RowKind::Prompt => ("text", "explanations; this run writes prompts (--prompts-only)"),
            };
            if value.get(has).is_some() {
                return Err(at(format!("the file holds {other}: use another --out")));
            }
            let (user, item, model) = match expect.kind {
                RowKind::Explanation => {
                    let row: ExplanationRow = serde_json::from_value(value.clone()).map_err(|e| {
                        at(format!("not one of the {}: {e}{other_run}", expect.kind.describe()))
                    })?;
                    if let Some(&(beams, max_new)) = expect.decoding.get(&row.model) {
                        if (row.num_beams, row.max_new_tokens) != (beams, max_new) {
                            return Err(at(format!(
                                "model {:?} explained with beam {} and at most {} new tokens, this run asks \
                                 for beam {beams} and {max_new}; use the same settings or another --out",
                                row.model, row.num_beams, row.max_new_tokens
                            )));
                        }
                    }
                    (row.user, row.item, row.model)
                }
                RowKind::Prompt => {
                    let row: PromptRow = serde_json::from_value(value.clone()).map_err(|e| {
                        at(format!("not one of the {}: {e}{other_run}", expect.kind.describe()))
                    })?;
                    (row.user, row.item, row.model)
                }
            };
            if !expect.samples.contains(&(user.clone(), item.clone())) {
                return Err(at(format!(
                    "(user {user:?}, item {item:?}) is not one of the {}{other_run}",
                    expect.samples_are
                )));
            }
            if let Some(first) = done.insert((model.clone(), user.clone(), item.clone()), *line) {
                return Err(at(format!(
                    "model {model:?} explained (user {user:?}, item {item:?}) on line {first} already"
                )));
            }
        }
        // Cuts off a torn last line, so the next row starts on a line of its own.
        let lines = JsonLines::open(path)?;
        Ok(Output {
            path: path.to_path_buf(),
            lines,
            existing: done.len(),
            done: done.into_keys().collect(),
            torn: read.torn,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file has `model`'s row for `sample`.
    pub fn has(&self, model: &str, key: &(String, String)) -> bool {
        self.done.contains(&(model.to_owned(), key.0.clone(), key.1.clone()))
    }

    /// How many of `samples` have a row of `model`.
    pub fn count_done(&self, model: &str, dataset: &Dataset, samples: &[Sample]) -> usize {
        samples.iter().filter(|s| self.has(model, &s.key(dataset))).count()
    }

    fn append(&mut self, model: &str, key: (String, String), row: &impl Serialize) -> Result<()> {
        self.lines.append(row)?;
        self.done.insert((model.to_owned(), key.0, key.1));
        Ok(())
    }
}

/// Explains each of `samples` that `out` lacks, one at a time (as a user would ask, so latencies
/// are per explanation); `on_row` is called after each row written. Returns false when `cancel`
/// was set (the explanation under way is not written).
pub fn explain_samples(
    explainer: &Explainer<'_>,
    samples: &[Sample],
    decoding: &GenerationConfig,
    out: &mut Output,
    on_row: &mut dyn FnMut(),
    cancel: &AtomicBool,
) -> Result<bool> {
    let model = explainer.kind.name();
    for sample in samples {
        let key = sample.key(explainer.dataset);
        if out.has(model, &key) {
            continue;
        }
        if cancel.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let e = explainer.explain(sample, decoding, None, Some(cancel))?;
        // A cancelled generation returns what it had: a cut explanation must not be written.
        if cancel.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let row = ExplanationRow {
            user: key.0.clone(),
            item: key.1.clone(),
            model: model.to_owned(),
            text: e.text,
            latency_ms: e.latency_ms,
            ttft_ms: e.ttft_ms,
            new_tokens: e.new_tokens,
            tokens_per_s: e.tokens_per_s,
            num_beams: decoding.num_beams,
            max_new_tokens: decoding.max_new_tokens,
        };
        out.append(model, key, &row)?;
        on_row();
    }
    Ok(true)
}

/// Writes the prompt `inputs` reads for each of `samples` that `out` lacks; as
/// [`explain_samples`].
pub fn write_prompts(
    inputs: &ModelInputs,
    dataset: &Dataset,
    prompts: &Prompts,
    samples: &[Sample],
    out: &mut Output,
    on_row: &mut dyn FnMut(),
    cancel: &AtomicBool,
) -> Result<bool> {
    let model = inputs.kind.name();
    for sample in samples {
        let key = sample.key(dataset);
        if out.has(model, &key) {
            continue;
        }
        if cancel.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let prompt = inputs.prompt(dataset, prompts, sample)?;
        let row = PromptRow { user: key.0.clone(), item: key.1.clone(), model: model.to_owned(), prompt };
        out.append(model, key, &row)?;
        on_row();
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(user: &str, model: &str) -> String {
        let r = PromptRow { user: user.into(), item: "i".into(), model: model.into(), prompt: "p".into() };
        serde_json::to_string(&r).unwrap() + "\n"
    }

    #[test]
    fn rows_already_there_are_skipped_a_torn_line_is_cut_and_a_repeat_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.jsonl");
        let samples: HashSet<(String, String)> = [("a".into(), "i".into()), ("b".into(), "i".into())].into();
        let decoding = HashMap::new();
        let expect = Expect {
            kind: RowKind::Prompt,
            samples: &samples,
            samples_are: "test samples",
            decoding: &decoding,
        };
        std::fs::write(&path, row("a", "oracle") + &row("a", "prism") + "{\"user\":\"b\",").unwrap();
        let mut out = Output::open(&path, &expect).unwrap();
        assert_eq!((out.existing, out.torn.as_ref().map(|t| t.line)), (2, Some(3)));
        let key = ("a".to_owned(), "i".to_owned());
        assert!(
            out.has("oracle", &key)
                && out.has("prism", &key)
                && !out.has("oracle", &("b".into(), "i".into()))
        );
        let next =
            PromptRow { user: "b".into(), item: "i".into(), model: "oracle".into(), prompt: "p".into() };
        out.append("oracle", ("b".into(), "i".into()), &next).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            row("a", "oracle") + &row("a", "prism") + &row("b", "oracle")
        );

        std::fs::write(&path, row("a", "oracle") + &row("b", "oracle") + &row("a", "oracle")).unwrap();
        let err = Output::open(&path, &expect).err().unwrap().to_string();
        assert!(
            err.contains("line 3: model \"oracle\" explained (user \"a\", item \"i\") on line 1 already"),
            "{err}"
        );
        std::fs::write(&path, row("c", "oracle")).unwrap();
        let err = Output::open(&path, &expect).err().unwrap().to_string();
        assert!(err.contains("line 1: (user \"c\", item \"i\") is not one of the test samples"), "{err}");
    }
}

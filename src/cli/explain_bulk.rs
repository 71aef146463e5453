//! `prism explain --split train|dev|test [--limit N] [--model …] --out F.jsonl [--prompts-only]`:
//! every sample of a split explained by the Oracle and/or the Prism into one JSON-lines file, or
//! only the prompts each model would read (for another engine to generate from), with a progress
//! bar on stderr. Resumable: a re-run (after Ctrl-C or a kill) adds only the rows the file lacks
//! ([`crate::explain::bulk`]).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use indicatif::ProgressBar;
use serde::Serialize;

use super::{print_json, Context};
use crate::config::project_root;
use crate::data::{self, Dataset, Part, Split};
use crate::distill::spec::{teach_samples, JobSpec};
use crate::explain::bulk::{explain_samples, write_prompts, Expect, Output, RowKind};
use crate::explain::inputs::ModelInputs;
use crate::explain::samples::{samples, Sample, SampleSet};
use crate::explain::{Explainer, Matcher, PromptKind, Prompts};
use crate::model::engine::{Engine, EngineOptions};
use crate::model::GenerationOverrides;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitArg {
    /// Every training sample: a train interaction with the interactions before it as history
    Train,
    /// Each user's second-to-last interaction, with the train history
    Dev,
    /// Each user's last interaction, with the train history
    Test,
}

#[derive(Debug, Args)]
pub struct BulkArgs {
    /// Explain every sample of this split into --out instead of one user's item
    #[arg(long, value_enum, requires = "out")]
    pub split: Option<SplitArg>,
    /// Only the first N samples of the split (users in dataset order)
    #[arg(long, value_name = "N", requires = "split", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// The JSON-lines file to write or continue: `{"user","item","model","text",…}` per row
    #[arg(long, value_name = "F.jsonl", requires = "split")]
    pub out: Option<PathBuf>,
    /// Write `{"user","item","model","prompt"}` rows, the prompt each model reads, without
    /// generating (no weights are loaded: only tokenizer.json and config.json)
    #[arg(long, requires = "split")]
    pub prompts_only: bool,
    /// With --split train: only the samples distillation preset NAME teaches, in its order (the
    /// rows `prism distill --preset NAME --teacher-outputs` uses)
    #[arg(long, value_name = "NAME", requires = "split")]
    pub preset: Option<String>,
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
struct BulkSummary {
    out: PathBuf,
    split: SplitArg,
    kind: &'static str,
    models: Vec<&'static str>,
    /// Samples asked for (after --limit).
    samples: usize,
    /// Rows of this run's models and samples in the file now.
    rows: usize,
    /// Rows this run wrote.
    written: usize,
    /// Rows that were in the file already (from an earlier run), of any model or sample.
    already: usize,
    /// Whether a last line cut off by a kill was found (and written again).
    torn_line_repaired: bool,
    cancelled: bool,
}

/// Runs `prism explain --split …` for the models of `kinds`. `options` and `overrides` are what
/// `prism explain`'s flags ask of the engines (`options` fails on a bad `--device`; the error
/// surfaces where the engines are needed).
pub fn run(
    ctx: &Context,
    bulk: &BulkArgs,
    kinds: &[PromptKind],
    options: Result<EngineOptions>,
    overrides: GenerationOverrides,
) -> Result<()> {
    let (Some(split_arg), Some(out_path)) = (bulk.split, bulk.out.as_deref()) else {
        bail!("--split needs --out F.jsonl: the file the rows are written to");
    };
    if bulk.preset.is_some() && split_arg != SplitArg::Train {
        bail!("--preset chooses training samples (the ones a distillation preset teaches); use it with --split train");
    }
    let settings = &ctx.settings;
    let dataset = data::open(&settings.dataset)?;
    let history_len = settings.dataset.history_len;
    let (all, split_name) = split_samples(&dataset, split_arg, history_len);
    let mut todo = match &bulk.preset {
        Some(name) => teach_samples(&dataset, &JobSpec::preset(name, &project_root())?, history_len),
        None => all.clone(),
    };
    if let Some(limit) = bulk.limit {
        todo.truncate(limit as usize);
    }
    let prompts = Prompts::load(&settings.prompts)?;
    let kind = if bulk.prompts_only { RowKind::Prompt } else { RowKind::Explanation };

    // Explanation rows record their decoding, which needs each model's defaults: load them first.
    let options = options?;
    let engines: Vec<(PromptKind, Engine)> = if bulk.prompts_only {
        Vec::new()
    } else {
        kinds
            .iter()
            .map(|&k| Ok((k, Engine::load(k.configured(&settings.models).0, &options)?)))
            .collect::<Result<_>>()?
    };
    let decoding: HashMap<String, (usize, usize)> = engines
        .iter()
        .map(|(k, e)| {
            let c = e.config_with(&overrides);
            (k.name().to_owned(), (c.num_beams, c.max_new_tokens))
        })
        .collect();
    let valid: HashSet<(String, String)> = all.iter().map(|s| s.key(&dataset)).collect();
    let samples_are = format!("{split_name} samples of dataset {:?}", settings.dataset.path);
    let mut out = Output::open(
        out_path,
        &Expect { kind, samples: &valid, samples_are: &samples_are, decoding: &decoding },
    )?;
    if let Some(torn) = &out.torn {
        eprintln!(
            "{}, line {}: cut off by an interrupted run ({} bytes); that row is written again",
            out_path.display(),
            torn.line,
            torn.bytes
        );
    }

    let total = todo.len() * kinds.len();
    let done_before: usize = kinds.iter().map(|k| out.count_done(k.name(), &dataset, &todo)).sum();
    let bar = crate::progress::bar(total as u64, "", "rows");
    bar.set_position(done_before as u64);
    // The rows found in the file took no time this run: the rate counts only what it writes.
    bar.reset_eta();
    let cancel = super::interrupt_flag();
    let mut written = 0usize;
    let mut on_row = || {
        written += 1;
        bar.inc(1);
    };
    let complete = if bulk.prompts_only {
        write_all_prompts(kinds, settings, &dataset, &prompts, &todo, &mut out, &bar, &mut on_row, cancel)?
    } else {
        let matcher = Matcher::new(&dataset);
        let mut complete = true;
        for (kind, engine) in &engines {
            let (_, max_input_tokens) = kind.configured(&settings.models);
            let explainer = Explainer {
                engine,
                kind: *kind,
                max_input_tokens,
                dataset: &dataset,
                prompts: &prompts,
                matcher: &matcher,
            };
            bar.set_prefix(kind.name());
            let decoding = engine.config_with(&overrides);
            if !explain_samples(&explainer, &todo, &decoding, &mut out, &mut on_row, cancel)? {
                complete = false;
                break;
            }
        }
        complete
    };
    bar.finish_and_clear();
    let summary = BulkSummary {
        out: out_path.to_path_buf(),
        split: split_arg,
        kind: if bulk.prompts_only { "prompts" } else { "explanations" },
        models: kinds.iter().map(|k| k.name()).collect(),
        samples: todo.len(),
        rows: done_before + written,
        written,
        already: out.existing,
        torn_line_repaired: out.torn.is_some(),
        cancelled: !complete,
    };
    report(ctx, &summary)?;
    if !complete {
        bail!("stopped; run the same command again to continue where it stopped");
    }
    Ok(())
}

/// Every sample of `split`, and its name for messages.
fn split_samples(dataset: &Dataset, split: SplitArg, history_len: usize) -> (Vec<Sample>, &'static str) {
    let parts = Split::leave_last_out(dataset);
    match split {
        SplitArg::Train => (samples(dataset, &parts, SampleSet::Train, history_len), "train"),
        SplitArg::Dev => (samples(dataset, &parts, SampleSet::Held(Part::Dev), history_len), "dev"),
        SplitArg::Test => (samples(dataset, &parts, SampleSet::Held(Part::Test), history_len), "test"),
    }
}

#[allow(clippy::too_many_arguments)]
fn write_all_prompts(
    kinds: &[PromptKind],
    settings: &crate::config::Settings,
    dataset: &Dataset,
    prompts: &Prompts,
    todo: &[Sample],
    out: &mut Output,
    bar: &ProgressBar,
    on_row: &mut dyn FnMut(),
    cancel: &AtomicBool,
) -> Result<bool> {
    for &kind in kinds {
        let inputs = ModelInputs::configured(kind, &settings.models)?;
        bar.set_prefix(kind.name());
        if !write_prompts(&inputs, dataset, prompts, todo, out, on_row, cancel)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn report(ctx: &Context, s: &BulkSummary) -> Result<()> {
    if ctx.json {
        return print_json(s);
    }
    println!(
        "{}: {} {} for {} {} samples × {} ({} written now, {} were there){}",
        s.out.display(),
        s.rows,
        s.kind,
        s.samples,
        serde_json::to_value(s.split)?.as_str().unwrap_or_default(),
        s.models.join(", "),
        s.written,
        s.already,
        if s.cancelled { "; stopped early" } else { "" }
    );
    Ok(())
}

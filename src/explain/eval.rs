//! Scoring explanation files against a dataset: rows of `{"user","item","model","text"}` written by
//! any generator are matched to the held-out interaction of the chosen split, grounded against the
//! user's train history and the item, and scored per model with the metrics of [`crate::metrics`].
//!
//! Rules: a row's (user, item) must be the user's held-out interaction of the split (anything else
//! is an error naming the line, since scoring it against another reference would be silently
//! wrong); a model may explain a (user, item) pair only once; reference-based metrics (BLEU,
//! ROUGE, FMR) use the rows whose interaction has a reference text and are `null` when none has.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use rayon::prelude::*;
use serde::Serialize;

use super::grounding::{Counts, Matcher};
use crate::data::{Dataset, ItemIdx, Part, Split};
use crate::metrics::stats::{
    bootstrap_mean_ci, paired_bootstrap, BootstrapConfig, Interval, PairedBootstrap,
};
use crate::metrics::{
    distinct_n, feature_coverage_ratio, feature_diversity, feature_matching_ratio, sentence_rouge,
    unique_sentence_ratio, GroundingCounts, GroundingRates, Prf, TextScores, Vocab,
};

/// Why an id in a row may be missing although the raw files have it.
const NOT_IN_DATASET: &str = " (not in the dataset after its k-core filter; consider lowering \
                               dataset.min_user_interactions or min_item_interactions)";

/// One explanation to score, with the line it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub line: usize,
    pub user: String,
    pub item: String,
    pub model: String,
    pub text: String,
}

/// Reads rows from a JSONL file; see [`parse_rows`].
pub fn read_rows(path: &Path) -> Result<Vec<Row>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open explanation file {}", path.display()))?;
    parse_rows(std::io::BufReader::new(file), &path.display().to_string())
}

/// Parses JSONL rows; `origin` names the source in errors, which also give the line and field.
/// Blank lines are skipped. `user` and `item` may be strings or integers (MovieLens ids are
/// numbers, and generators write them either way); `model` and `text` must be strings.
pub fn parse_rows(reader: impl BufRead, origin: &str) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let line_no = index + 1;
        let line = line.with_context(|| format!("{origin}, line {line_no}: cannot read"))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| anyhow!("{origin}, line {line_no}: not valid JSON: {e}"))?;
        let Some(object) = value.as_object() else {
            bail!("{origin}, line {line_no}: expected a JSON object with fields user, item, model, text");
        };
        let field = |name: &str, id_like: bool| -> Result<String> {
            match object.get(name) {
                Some(serde_json::Value::String(s)) => Ok(s.clone()),
                Some(serde_json::Value::Number(n)) if id_like && n.is_u64() => Ok(n.to_string()),
                Some(other) => {
                    let expected = if id_like { "a string or a non-negative integer" } else { "a string" };
                    bail!("{origin}, line {line_no}: field `{name}` must be {expected}, found {other}")
                }
                None => bail!("{origin}, line {line_no}: field `{name}` is missing"),
            }
        };
        rows.push(Row {
            line: line_no,
            user: field("user", true)?,
            item: field("item", true)?,
            model: field("model", false)?,
            text: field("text", false)?,
        });
    }
    Ok(rows)
}

/// What to score.
#[derive(Clone, Debug)]
pub struct Options {
    pub part: Part,
    /// How many of the user's most recent train items form the history.
    pub history_len: usize,
    /// Models to keep; empty keeps every model in the file.
    pub models: Vec<String>,
    /// At most this many rows per model, in file order.
    pub limit: Option<usize>,
}

/// The scores of every model in a file.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub split: Part,
    pub source: String,
    /// |F|: distinct feature phrases of the dataset (FCR's denominator).
    pub features: usize,
    pub models: BTreeMap<String, ModelReport>,
    /// Every pair of models, on the (user, item) pairs both explain.
    pub comparisons: Vec<Comparison>,
}

/// Model `a` against model `b` on the same (user, item) pairs: paired bootstrap (1000
/// resamples, seed 42) of the per-explanation differences a − b.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    /// (user, item) pairs both models explain.
    pub n: usize,
    /// Sentence ROUGE-L F, on the shared pairs that have a reference.
    #[serde(rename = "rougeL_f")]
    pub rouge_l_f: Option<PairedBootstrap>,
    /// Whether an explanation invents a feature (1) or not (0): a negative difference means `a`
    /// invents less often.
    pub explanations_with_invented: PairedBootstrap,
}

/// Per-explanation values kept for paired comparisons: (ROUGE-L F when there is a reference,
/// 1 if it invents a feature else 0).
type RowValues = (Option<f64>, f64);
/// [`RowValues`] of one model by (user, item).
type PerRow<'r> = HashMap<(&'r str, &'r str), RowValues>;

/// One model's scores. Text metrics follow PETER's conventions (BLEU and ROUGE ×100; USR,
/// distinct-n, FMR, FCR as fractions); a metric that cannot be computed on these rows is `null`.
#[derive(Clone, Debug, Serialize)]
pub struct ModelReport {
    pub n: usize,
    /// Rows whose held-out interaction has a reference explanation.
    pub n_with_reference: usize,
    pub bleu1: Option<f64>,
    pub bleu4: Option<f64>,
    pub rouge1: Option<Prf>,
    pub rouge2: Option<Prf>,
    #[serde(rename = "rougeL")]
    pub rouge_l: Option<Prf>,
    pub usr: f64,
    pub distinct1: f64,
    pub distinct2: f64,
    /// Share of explanations mentioning a feature their reference mentions.
    pub fmr: Option<f64>,
    pub fcr: Option<f64>,
    /// Needs at least two explanations.
    pub div: Option<f64>,
    /// Invented feature mentions / feature mentions about the item (grounded, item-only, invented).
    pub invented_rate: f64,
    /// Feature mentions grounded in both the item and the history / the same denominator.
    pub grounded_precision: f64,
    /// All grounding rates over feature mentions (history-only mentions excluded: they describe
    /// the user, not the item).
    pub grounding: GroundingRates,
    /// Mentions per class, features and titles together.
    pub mentions: Counts,
    /// Titles mentioned that are neither the item's nor in the history.
    pub invented_titles: usize,
    /// Bootstrap 95% intervals of the metrics that are means over explanations.
    pub ci95: Intervals,
}

/// Percentile-bootstrap 95% intervals (1000 resamples, seed 42) of the per-explanation means.
/// Corpus-level metrics (BLEU, USR, distinct-n, FCR, DIV) and the micro-averaged grounding rates
/// are not means over explanations and get none.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Intervals {
    pub rouge1_f: Option<Interval>,
    pub rouge2_f: Option<Interval>,
    #[serde(rename = "rougeL_f")]
    pub rouge_l_f: Option<Interval>,
    pub fmr: Option<Interval>,
    pub explanations_with_invented: Option<Interval>,
}

/// A row resolved against the dataset.
struct Resolved<'r> {
    row: &'r Row,
    item: ItemIdx,
    history: Vec<ItemIdx>,
    reference: Option<&'r str>,
}

/// Scores `rows` (from `origin`) against `dataset`.
pub fn evaluate<'d>(
    dataset: &'d Dataset,
    matcher: &Matcher,
    rows: &'d [Row],
    origin: &str,
    options: &Options,
) -> Result<Report> {
    let split = Split::leave_last_out(dataset);
    let part_name = part_label(options.part);
    let mut by_model: BTreeMap<&str, Vec<Resolved<'d>>> = BTreeMap::new();
    let mut seen: HashMap<(&str, &str, &str), usize> = HashMap::new();
    for row in rows {
        let at = |msg: String| anyhow!("{origin}, line {}: {msg}", row.line);
        let user = dataset
            .user_by_id(&row.user)
            .ok_or_else(|| at(format!("field `user`: unknown user {:?}{NOT_IN_DATASET}", row.user)))?;
        let item = dataset
            .item_by_id(&row.item)
            .ok_or_else(|| at(format!("field `item`: unknown item {:?}{NOT_IN_DATASET}", row.item)))?;
        let Some(held_out) = split.held_out(dataset, user, options.part) else {
            return Err(at(format!(
                "user {:?} has no {part_name} interaction (fewer than 3 interactions)",
                row.user
            )));
        };
        if held_out.item != item {
            let other = match options.part {
                Part::Dev => Part::Test,
                Part::Test => Part::Dev,
            };
            let hint = match split.held_out(dataset, user, other) {
                Some(i) if i.item == item => {
                    let other = part_label(other);
                    format!("; it is the {other} item: consider --split {other}")
                }
                _ => String::new(),
            };
            return Err(at(format!(
                "(user {:?}, item {:?}) is not in the {part_name} split: that user's {part_name} item is {:?}{hint}",
                row.user,
                row.item,
                dataset.item(held_out.item).id
            )));
        }
        if let Some(first) = seen.insert((&row.model, &row.user, &row.item), row.line) {
            return Err(at(format!(
                "model {:?} already explained (user {:?}, item {:?}) on line {first}",
                row.model, row.user, row.item
            )));
        }
        if !options.models.is_empty() && !options.models.contains(&row.model) {
            continue;
        }
        let resolved = by_model.entry(&row.model).or_default();
        if options.limit.is_some_and(|limit| resolved.len() >= limit) {
            continue;
        }
        resolved.push(Resolved {
            row,
            item,
            history: split.history(dataset, user, options.history_len).iter().map(|i| i.item).collect(),
            reference: held_out.reference.as_deref().map(|r| r.text.as_str()),
        });
    }
    for wanted in &options.models {
        if !by_model.contains_key(wanted.as_str()) {
            bail!("{origin} has no rows of model {wanted:?}");
        }
    }
    if by_model.is_empty() {
        bail!("{origin} has no rows to score");
    }
    let mut models = BTreeMap::new();
    let mut per_row = Vec::new();
    for (model, resolved) in by_model {
        let (report, values) = score_model(matcher, &resolved)?;
        models.insert(model.to_owned(), report);
        per_row.push((model, values));
    }
    let mut comparisons = Vec::new();
    for (i, (a, a_rows)) in per_row.iter().enumerate() {
        for (b, b_rows) in &per_row[i + 1..] {
            if let Some(c) = compare(a, a_rows, b, b_rows)? {
                comparisons.push(c);
            }
        }
    }
    Ok(Report {
        split: options.part,
        source: origin.to_owned(),
        features: matcher.num_concepts(),
        models,
        comparisons,
    })
}

/// The split's name as the command line spells it.
pub fn part_label(part: Part) -> &'static str {
    match part {
        Part::Dev => "dev",
        Part::Test => "test",
    }
}

/// Pairs the explanations two models give for the same (user, item); `None` when they share none.
fn compare(a: &str, a_rows: &PerRow<'_>, b: &str, b_rows: &PerRow<'_>) -> Result<Option<Comparison>> {
    let mut keys: Vec<_> = a_rows.keys().filter(|k| b_rows.contains_key(*k)).collect();
    if keys.is_empty() {
        return Ok(None);
    }
    // Sorted, so the resampling (seeded) sees the same order on every run.
    keys.sort_unstable();
    let pairs: Vec<(RowValues, RowValues)> = keys.iter().map(|k| (a_rows[*k], b_rows[*k])).collect();
    let (rouge_a, rouge_b): (Vec<f64>, Vec<f64>) =
        pairs.iter().filter_map(|((ra, _), (rb, _))| Some(((*ra)?, (*rb)?))).unzip();
    let invented_a: Vec<f64> = pairs.iter().map(|(a, _)| a.1).collect();
    let invented_b: Vec<f64> = pairs.iter().map(|(_, b)| b.1).collect();
    let config = BootstrapConfig::default();
    Ok(Some(Comparison {
        a: a.to_owned(),
        b: b.to_owned(),
        n: keys.len(),
        rouge_l_f: if rouge_a.is_empty() {
            None
        } else {
            Some(paired_bootstrap(&rouge_a, &rouge_b, &config)?)
        },
        explanations_with_invented: paired_bootstrap(&invented_a, &invented_b, &config)?,
    }))
}

fn score_model<'r>(matcher: &Matcher, rows: &[Resolved<'r>]) -> Result<(ModelReport, PerRow<'r>)> {
    let groundings: Vec<(Vec<u32>, Counts, Counts)> = rows
        .par_iter()
        .map(|r| {
            let g = matcher.ground(&r.row.text, &r.history, r.item);
            (g.concepts(), g.counts, g.feature_counts)
        })
        .collect();
    let concepts: Vec<&[u32]> = groundings.iter().map(|g| g.0.as_slice()).collect();
    let mut mentions = Counts::default();
    let mut feature_counts = Vec::with_capacity(rows.len());
    for (_, all, features) in &groundings {
        mentions.grounded += all.grounded;
        mentions.item_only += all.item_only;
        mentions.history_only += all.history_only;
        mentions.invented += all.invented;
        feature_counts.push(GroundingCounts {
            grounded: features.grounded,
            item_only: features.item_only,
            invented: features.invented,
        });
    }
    let invented_features: usize = groundings.iter().map(|g| g.2.invented).sum();
    let grounding = GroundingRates::compute(&feature_counts)?;

    let mut vocab = Vocab::new();
    let tokens: Vec<Vec<u32>> = rows.iter().map(|r| vocab.encode(&r.row.text)).collect();
    let referenced: Vec<(usize, &str)> =
        rows.iter().enumerate().filter_map(|(i, r)| r.reference.map(|text| (i, text))).collect();
    let bootstrap = BootstrapConfig::default();
    let with_invented: Vec<f64> =
        feature_counts.iter().map(|c| f64::from(u8::from(c.invented > 0))).collect();
    let mut ci95 = Intervals {
        explanations_with_invented: Some(bootstrap_mean_ci(&with_invented, &bootstrap)?),
        ..Intervals::default()
    };
    let mut rouge_l_by_row = vec![None; rows.len()];
    let (text, fmr) = if referenced.is_empty() {
        (None, None)
    } else {
        let hyps: Vec<&str> = referenced.iter().map(|&(i, _)| rows[i].row.text.as_str()).collect();
        let refs: Vec<&str> = referenced.iter().map(|&(_, text)| text).collect();
        let truth: Vec<Vec<u32>> = refs.iter().map(|text| matcher.concepts_in(text)).collect();
        let mentioned: Vec<&[u32]> = referenced.iter().map(|&(i, _)| concepts[i]).collect();
        let hits = mentioned
            .iter()
            .zip(&truth)
            .map(|(m, t)| feature_matching_ratio(&[m], &[t]))
            .collect::<Result<Vec<f64>, _>>()?;
        let sentence: Vec<_> = referenced
            .iter()
            .zip(&refs)
            .map(|(&(i, _), reference)| sentence_rouge(&tokens[i], &vocab.encode(reference)))
            .collect();
        let ci = |f: &dyn Fn(&crate::metrics::RougeScores) -> f64| {
            bootstrap_mean_ci(&sentence.iter().map(f).collect::<Vec<_>>(), &bootstrap)
        };
        ci95.rouge1_f = Some(ci(&|s| s.rouge1.f)?);
        ci95.rouge2_f = Some(ci(&|s| s.rouge2.f)?);
        ci95.rouge_l_f = Some(ci(&|s| s.rouge_l.f)?);
        ci95.fmr = Some(bootstrap_mean_ci(&hits, &bootstrap)?);
        for (&(i, _), scores) in referenced.iter().zip(&sentence) {
            rouge_l_by_row[i] = Some(scores.rouge_l.f);
        }
        (Some(TextScores::compute(&hyps, &refs)?), Some(feature_matching_ratio(&mentioned, &truth)?))
    };
    let per_row = rows
        .iter()
        .zip(rouge_l_by_row.into_iter().zip(with_invented))
        .map(|(r, values)| ((r.row.user.as_str(), r.row.item.as_str()), values))
        .collect();
    let report = ModelReport {
        n: rows.len(),
        n_with_reference: referenced.len(),
        bleu1: text.as_ref().map(|t| t.bleu1),
        bleu4: text.as_ref().map(|t| t.bleu4),
        rouge1: text.as_ref().map(|t| t.rouge.rouge1),
        rouge2: text.as_ref().map(|t| t.rouge.rouge2),
        rouge_l: text.as_ref().map(|t| t.rouge.rouge_l),
        usr: unique_sentence_ratio(&tokens)?,
        distinct1: distinct_n(&tokens, 1)?,
        distinct2: distinct_n(&tokens, 2)?,
        fmr,
        fcr: (matcher.num_concepts() > 0)
            .then(|| feature_coverage_ratio(&concepts, matcher.num_concepts()))
            .transpose()?,
        div: (rows.len() >= 2).then(|| feature_diversity(&concepts)).transpose()?,
        invented_rate: grounding.invented_rate,
        grounded_precision: grounding.grounded_precision,
        grounding,
        invented_titles: mentions.invented - invented_features,
        mentions,
        ci95,
    };
    Ok((report, per_row))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_their_line_numbers_and_accept_integer_ids() {
        let text = "\n{\"user\": 7, \"item\": \"m1\", \"model\": \"prism\", \"text\": \"A drama.\", \"extra\": 1}\n  \n\
                    {\"user\": \"u2\", \"item\": 42, \"model\": \"oracle\", \"text\": \"\"}\n";
        let rows = parse_rows(text.as_bytes(), "f.jsonl").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].line, rows[0].user.as_str(), rows[0].item.as_str()), (2, "7", "m1"));
        assert_eq!((rows[1].line, rows[1].user.as_str(), rows[1].item.as_str()), (4, "u2", "42"));
        assert_eq!(rows[1].text, "");
    }

    #[test]
    fn negative_or_fractional_ids_are_refused() {
        for id in ["-3", "1.5"] {
            let text = format!("{{\"user\": {id}, \"item\": \"m1\", \"model\": \"p\", \"text\": \"t\"}}");
            let err = parse_rows(text.as_bytes(), "f.jsonl").unwrap_err().to_string();
            assert!(err.contains("line 1: field `user` must be a string or a non-negative integer"), "{err}");
        }
    }
}

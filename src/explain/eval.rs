//! Scoring explanation files against a dataset: rows of `{"user","item","model","text"}` written by
//! any generator are matched to the held-out interaction of the chosen split, grounded against the
//! user's train history and the item, and scored per model with the metrics of [`crate::metrics`].
//!
//! Rules: a row's (user, item) must be the user's held-out interaction of the split (anything else
//! is an error naming the line, since scoring it against another reference would be silently
//! wrong); a model may explain a (user, item) pair only once; reference-based metrics (BLEU,
//! ROUGE, FMR) use the rows whose interaction has a reference text and are `null` when none has.
//! BERTScore is computed only when a [`BertScorer`] is given, and is absent from the report otherwise.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use rayon::prelude::*;
use serde::Serialize;

use super::bertscore::{BertScoreSettings, BertScorer};
use super::grounding::{Counts, Matcher};
use super::verdict::Verdict;
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
    /// How BERTScore was computed, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bertscore: Option<BertScoreSettings>,
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
    /// BERTScore F1, on the shared pairs that have a reference (only with `--bertscore`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bertscore_f: Option<PairedBootstrap>,
    /// Whether an explanation invents a feature (1) or not (0): a negative difference means `a`
    /// invents less often.
    pub explanations_with_invented: PairedBootstrap,
    /// Whether it names the item's exact title (1) or not (0): positive means `a` names it more often.
    pub title_named: PairedBootstrap,
    /// Whether it cites a title neither the item's nor in the history.
    pub history_invented: PairedBootstrap,
    /// Whether it invents a title or a feature.
    pub invented_any: PairedBootstrap,
    /// Whether it misattributes a feature kind to the item.
    pub feature_misattributed: PairedBootstrap,
}

/// Per-explanation values kept for paired comparisons; the shares are 1 or 0.
#[derive(Clone, Copy, Debug, Default)]
struct RowValues {
    /// Sentence ROUGE-L F, when there is a reference.
    rouge_l: Option<f64>,
    /// BERTScore F1, when there is a reference and BERTScore was asked for.
    bertscore_f: Option<f64>,
    invents_feature: f64,
    title_named: f64,
    history_invented: f64,
    invented_any: f64,
    misattributed: f64,
}
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
    /// What a reader sees, as shares of explanations (definitions in [`crate::explain::verdict`];
    /// the share with an invented feature is `grounding.explanations_with_invented`): the item's
    /// exact title named.
    pub title_named: f64,
    /// A catalogue title cited that is neither the item's nor in the user's history.
    pub history_invented: f64,
    /// An invented title or feature.
    pub invented_any: f64,
    /// A feature kind of the item named only with values the item does not have.
    pub feature_misattributed: f64,
    /// The same per feature kind of the dataset.
    pub misattributed_by_kind: BTreeMap<String, f64>,
    /// Bootstrap 95% intervals of the metrics that are means over explanations.
    pub ci95: Intervals,
    /// BERTScore against the references (only with `--bertscore`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bertscore: Option<BertScoreMeans>,
}

/// Means of BERTScore precision, recall and F1 (fractions, as the `bert-score` package reports
/// them; rescaled when a baseline was given) over the explanations that have a reference, with
/// their 95% bootstrap intervals (1000 resamples, seed 42).
#[derive(Clone, Debug, Serialize)]
pub struct BertScoreMeans {
    pub precision: f64,
    pub recall: f64,
    pub f: f64,
    pub ci95: BertScoreIntervals,
}

#[derive(Clone, Debug, Serialize)]
pub struct BertScoreIntervals {
    pub precision: Interval,
    pub recall: Interval,
    pub f: Interval,
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
    pub title_named: Option<Interval>,
    pub history_invented: Option<Interval>,
    pub invented_any: Option<Interval>,
    pub feature_misattributed: Option<Interval>,
    pub misattributed_by_kind: BTreeMap<String, Interval>,
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
    evaluate_with(dataset, matcher, rows, origin, options, None)
}

/// [`evaluate`], adding BERTScore with `bertscore` when given.
pub fn evaluate_with<'d>(
    dataset: &'d Dataset,
    matcher: &Matcher,
    rows: &'d [Row],
    origin: &str,
    options: &Options,
    bertscore: Option<&BertScorer>,
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
        let (report, values) =
            score_model(matcher, &resolved, bertscore).with_context(|| format!("scoring model {model:?}"))?;
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
        bertscore: bertscore.map(|b| b.settings.clone()),
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
        pairs.iter().filter_map(|(ra, rb)| Some((ra.rouge_l?, rb.rouge_l?))).unzip();
    let (bert_a, bert_b): (Vec<f64>, Vec<f64>) =
        pairs.iter().filter_map(|(ra, rb)| Some((ra.bertscore_f?, rb.bertscore_f?))).unzip();
    let config = BootstrapConfig::default();
    let paired = |value: fn(&RowValues) -> f64| {
        let a: Vec<f64> = pairs.iter().map(|(a, _)| value(a)).collect();
        let b: Vec<f64> = pairs.iter().map(|(_, b)| value(b)).collect();
        paired_bootstrap(&a, &b, &config)
    };
    Ok(Some(Comparison {
        a: a.to_owned(),
        b: b.to_owned(),
        n: keys.len(),
        rouge_l_f: if rouge_a.is_empty() {
            None
        } else {
            Some(paired_bootstrap(&rouge_a, &rouge_b, &config)?)
        },
        bertscore_f: if bert_a.is_empty() {
            None
        } else {
            Some(paired_bootstrap(&bert_a, &bert_b, &config)?)
        },
        explanations_with_invented: paired(|r| r.invents_feature)?,
        title_named: paired(|r| r.title_named)?,
        history_invented: paired(|r| r.history_invented)?,
        invented_any: paired(|r| r.invented_any)?,
        feature_misattributed: paired(|r| r.misattributed)?,
    }))
}

fn score_model<'r>(
    matcher: &Matcher,
    rows: &[Resolved<'r>],
    bertscore: Option<&BertScorer>,
) -> Result<(ModelReport, PerRow<'r>)> {
    let groundings: Vec<(Vec<u32>, Counts, Counts, Verdict)> = rows
        .par_iter()
        .map(|r| {
            let g = matcher.ground(&r.row.text, &r.history, r.item);
            let verdict = Verdict::of(matcher, &g, r.item, &r.row.text);
            (g.concepts(), g.counts, g.feature_counts, verdict)
        })
        .collect();
    let concepts: Vec<&[u32]> = groundings.iter().map(|g| g.0.as_slice()).collect();
    let verdicts: Vec<&Verdict> = groundings.iter().map(|g| &g.3).collect();
    let mut mentions = Counts::default();
    let mut feature_counts = Vec::with_capacity(rows.len());
    // Unfilled slots count as invented mentions (`Verdict`): the verdict's counts include them.
    for (_, all, features, verdict) in &groundings {
        mentions.grounded += all.grounded;
        mentions.item_only += all.item_only;
        mentions.history_only += all.history_only;
        mentions.invented += verdict.invented();
        feature_counts.push(GroundingCounts {
            grounded: features.grounded,
            item_only: features.item_only,
            invented: verdict.features_invented,
        });
    }
    let invented_features: usize = verdicts.iter().map(|v| v.features_invented).sum();
    let grounding = GroundingRates::compute(&feature_counts)?;

    let mut vocab = Vocab::new();
    let tokens: Vec<Vec<u32>> = rows.iter().map(|r| vocab.encode(&r.row.text)).collect();
    let referenced: Vec<(usize, &str)> =
        rows.iter().enumerate().filter_map(|(i, r)| r.reference.map(|text| (i, text))).collect();
    let bootstrap = BootstrapConfig::default();
    let with_invented: Vec<f64> = feature_counts.iter().map(|c| indicator(c.invented > 0)).collect();
    let shares = |f: &dyn Fn(&Verdict) -> bool| verdicts.iter().map(|v| indicator(f(v))).collect::<Vec<_>>();
    let title_named = shares(&|v| v.title_named);
    let history_invented = shares(&|v| v.titles_invented > 0);
    let invented_any = shares(&|v| v.invented() > 0);
    let misattributed = shares(&|v| !v.misattributed.is_empty());
    let mut by_kind = BTreeMap::new();
    let mut by_kind_ci = BTreeMap::new();
    for kind in matcher.kinds() {
        let values = shares(&|v| v.misattributed.iter().any(|k| k == kind));
        by_kind.insert(kind.to_owned(), mean(&values));
        by_kind_ci.insert(kind.to_owned(), bootstrap_mean_ci(&values, &bootstrap)?);
    }
    let mut ci95 = Intervals {
        explanations_with_invented: Some(bootstrap_mean_ci(&with_invented, &bootstrap)?),
        title_named: Some(bootstrap_mean_ci(&title_named, &bootstrap)?),
        history_invented: Some(bootstrap_mean_ci(&history_invented, &bootstrap)?),
        invented_any: Some(bootstrap_mean_ci(&invented_any, &bootstrap)?),
        feature_misattributed: Some(bootstrap_mean_ci(&misattributed, &bootstrap)?),
        misattributed_by_kind: by_kind_ci,
        ..Intervals::default()
    };
    let mut rouge_l_by_row = vec![None; rows.len()];
    let mut bertscore_f_by_row = vec![None; rows.len()];
    let bertscore = match bertscore {
        Some(scorer) if !referenced.is_empty() => {
            let hyps: Vec<&str> = referenced.iter().map(|&(i, _)| rows[i].row.text.as_str()).collect();
            let refs: Vec<&str> = referenced.iter().map(|&(_, text)| text).collect();
            let scores = scorer.score(&hyps, &refs)?;
            for (&(i, _), s) in referenced.iter().zip(&scores) {
                bertscore_f_by_row[i] = Some(s.f);
            }
            let column = |f: fn(&Prf) -> f64| scores.iter().map(f).collect::<Vec<f64>>();
            let (p, r, f) = (column(|s| s.precision), column(|s| s.recall), column(|s| s.f));
            Some(BertScoreMeans {
                precision: mean(&p),
                recall: mean(&r),
                f: mean(&f),
                ci95: BertScoreIntervals {
                    precision: bootstrap_mean_ci(&p, &bootstrap)?,
                    recall: bootstrap_mean_ci(&r, &bootstrap)?,
                    f: bootstrap_mean_ci(&f, &bootstrap)?,
                },
            })
        }
        _ => None,
    };
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
        .enumerate()
        .map(|(i, r)| {
            let values = RowValues {
                rouge_l: rouge_l_by_row[i],
                bertscore_f: bertscore_f_by_row[i],
                invents_feature: with_invented[i],
                title_named: title_named[i],
                history_invented: history_invented[i],
                invented_any: invented_any[i],
                misattributed: misattributed[i],
            };
            ((r.row.user.as_str(), r.row.item.as_str()), values)
        })
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
        title_named: mean(&title_named),
        history_invented: mean(&history_invented),
        invented_any: mean(&invented_any),
        feature_misattributed: mean(&misattributed),
        misattributed_by_kind: by_kind,
        mentions,
        ci95,
        bertscore,
    };
    Ok((report, per_row))
}

fn indicator(yes: bool) -> f64 {
    f64::from(u8::from(yes))
}

/// The mean of a non-empty list (every model has at least one row).
fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (id, title, [(kind, value)]) of one test item.
    type ItemSpec<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

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

    /// Users u1..u4 each saw a (Drama, Ada Moss) and b (Musical), then e (dev), then c (test):
    /// "The Circus of Tunnel", a drama by Bo Lin. d, "Red Meadow", a western, is nobody's.
    fn reader_dataset() -> Dataset {
        let mut b = crate::data::DatasetBuilder::new("test");
        let items: [ItemSpec; 5] = [
            ("a", "Still Water", &[("genre", "Drama"), ("director", "Ada Moss")]),
            ("b", "Edda's Tide", &[("genre", "Musical")]),
            ("c", "The Circus of Tunnel", &[("genre", "Drama"), ("director", "Bo Lin")]),
            ("d", "Red Meadow", &[("genre", "Western")]),
            ("e", "Quiet Lake", &[("genre", "Comedy")]),
        ];
        for (id, title, features) in items {
            b.set_item(crate::data::Item {
                id: id.into(),
                title: title.into(),
                year: None,
                features: features.iter().map(|(k, v)| crate::data::Feature::new(*k, *v)).collect(),
            });
        }
        for u in 1..=4 {
            let user = b.intern_user(&format!("u{u}"));
            for (t, id) in ["a", "b", "e", "c"].iter().enumerate() {
                let item = b.intern_item(id);
                b.push_interaction(crate::data::Interaction {
                    user,
                    item,
                    rating: 5.0,
                    timestamp: t as i64,
                    reference: None,
                });
            }
        }
        b.build()
    }

    fn reader_rows(model: &str, texts: [&str; 4]) -> String {
        texts
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let row = serde_json::json!({"user": format!("u{}", i + 1), "item": "c", "model": model, "text": text});
                format!("{row}\n")
            })
            .collect()
    }

    #[test]
    fn what_a_reader_sees_by_hand() {
        let dataset = reader_dataset();
        let matcher = Matcher::new(&dataset);
        let mut text = reader_rows(
            "m",
            [
                // Title named; "musical" is the history's genre, the item's is not named: misattributed.
                "The Circus of Tunnel is a musical film, a genre you return to often.",
                // Red Meadow is neither the item nor in the history: an invented title.
                "A drama like Red Meadow.",
                // Title named; "western" is nobody's here: an invented feature, and misattributed.
                "The Circus of Tunnel, a western.",
                "A film for you.",
            ],
        );
        text.push_str(&reader_rows(
            "n",
            ["The Circus of Tunnel, a drama.", "The Circus of Tunnel.", "A drama by Ada Moss.", "Hello."],
        ));
        let rows = parse_rows(text.as_bytes(), "rows.jsonl").unwrap();
        let options = Options { part: Part::Test, history_len: 50, models: vec![], limit: None };
        let report = evaluate(&dataset, &matcher, &rows, "rows.jsonl", &options).unwrap();
        let m = &report.models["m"];
        assert_eq!(m.title_named, 0.5);
        assert_eq!(m.history_invented, 0.25);
        assert_eq!(m.grounding.explanations_with_invented, 0.25);
        assert_eq!(m.invented_any, 0.5);
        assert_eq!(m.feature_misattributed, 0.5);
        let kinds: Vec<(&str, f64)> = m.misattributed_by_kind.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(kinds, [("director", 0.0), ("genre", 0.5)]);
        let ci = m.ci95.title_named.unwrap();
        assert!(ci.estimate == 0.5 && ci.lower < 0.5 && ci.upper > 0.5, "{ci:?}");
        let n = &report.models["n"];
        // "Ada Moss" directed a history film, not the item: the director is misattributed.
        assert_eq!((n.title_named, n.history_invented, n.invented_any), (0.5, 0.0, 0.0));
        assert_eq!((n.feature_misattributed, n.misattributed_by_kind["director"]), (0.25, 0.25));
        // Paired, m − n on the same four pairs: titles 2 − 2, invented titles 1 − 0, either 2 − 0.
        let c = &report.comparisons[0];
        assert_eq!((c.a.as_str(), c.b.as_str(), c.n), ("m", "n", 4));
        assert_eq!(c.title_named.difference.estimate, 0.0);
        assert_eq!(c.history_invented.difference.estimate, 0.25);
        assert_eq!(c.invented_any.difference.estimate, 0.5);
        assert_eq!(c.feature_misattributed.difference.estimate, 0.25);
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

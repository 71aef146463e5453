//! `prism eval explain`: text, feature and faithfulness metrics of explanations, per model — of a
//! file's rows (`--from-file`), or of the configured Oracle and Prism, the feature template and the
//! dataset's references, generated here on the split's held-out pairs. With `--bertscore MODEL`,
//! also BERTScore against the references (the encoder is loaded only then).

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use super::Context;
use crate::data::{self, Dataset, Part, Split};
use crate::explain::bertscore::{BertScoreOptions, BertScorer};
use crate::explain::eval::{self, ModelReport, Options, Report, Row};
use crate::explain::samples::{samples, Sample, SampleSet};
use crate::explain::{Matcher, PromptKind};
use crate::humaneval::systems::{self, Source, System};
use crate::metrics::stats::{Interval, PairedBootstrap};
use crate::metrics::Prf;
use crate::model::device::parse_device;

#[derive(Debug, Args)]
pub struct EvalExplainArgs {
    /// Models to score (comma-separated); default: every model in the file. Without --from-file:
    /// the systems to run, of oracle, prism (the configured models), template (the feature
    /// template) and reference (the dataset's own explanations); default: all four
    #[arg(long, value_delimiter = ',', value_name = "NAME")]
    pub model: Vec<String>,
    /// Which held-out split the rows explain
    #[arg(long, value_enum, default_value = "test")]
    pub split: Part,
    /// Score at most N rows per model, in file order (without --from-file: the split's first N users)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// JSONL rows of {"user","item","model","text"} written by any generator
    #[arg(long, value_name = "F.jsonl")]
    pub from_file: Option<PathBuf>,
    /// Also BERTScore P/R/F1 against the references, as the `bert-score` package computes it, with
    /// this BERT or RoBERTa checkpoint (a directory in Hugging Face layout, or a Hugging Face id
    /// found in the local cache)
    #[arg(long, value_name = "MODEL")]
    pub bertscore: Option<PathBuf>,
    /// The encoder layer BERTScore reads (bert-score's `num_layers`; 0 is the embeddings).
    /// Default: bert-score's own choice for the models it knows (roberta-large: 17)
    #[arg(long, value_name = "N", requires = "bertscore")]
    pub bertscore_layer: Option<usize>,
    /// Weight tokens by their idf over the references (bert-score's `idf=True`)
    #[arg(long, requires = "bertscore")]
    pub bertscore_idf: bool,
    /// Rescale the scores with this baseline file (bert-score's `rescale_with_baseline` format:
    /// a CSV of LAYER,P,R,F rows, one per layer)
    #[arg(long, value_name = "FILE", requires = "bertscore")]
    pub bertscore_baseline: Option<PathBuf>,
}

pub fn run(ctx: &Context, args: EvalExplainArgs) -> Result<()> {
    let dataset = data::open(&ctx.settings.dataset)?;
    let matcher = Matcher::new(&dataset);
    // Loaded before anything is generated, so a wrong model fails at once.
    let scorer = match &args.bertscore {
        Some(model) => {
            let options = BertScoreOptions {
                model: model.clone(),
                layer: args.bertscore_layer,
                idf: args.bertscore_idf,
                baseline: args.bertscore_baseline.clone(),
            };
            Some(BertScorer::load(&options, &parse_device(&ctx.settings.models.device)?)?)
        }
        None => None,
    };
    let limit = args.limit.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let (rows, origin, models) = match &args.from_file {
        Some(path) => (eval::read_rows(path)?, path.display().to_string(), args.model),
        None => {
            let rows = generate(ctx, &dataset, args.split, &args.model, limit)?;
            (rows, "explanations generated here".to_owned(), Vec::new())
        }
    };
    let options = Options { part: args.split, history_len: ctx.settings.dataset.history_len, models, limit };
    let report = eval::evaluate_with(&dataset, &matcher, &rows, &origin, &options, scorer.as_ref())?;
    if ctx.json {
        super::print_json(&report)
    } else {
        print!("{}", table(&report));
        Ok(())
    }
}

/// The systems `eval explain` runs when no file is given.
const SYSTEMS: [&str; 4] = ["oracle", "prism", "template", "reference"];

/// Explains the held-out pairs of `part` (the first `limit` users) with each of `names` (default:
/// [`SYSTEMS`]), as rows to score. Progress goes to stderr.
fn generate(
    ctx: &Context,
    dataset: &Dataset,
    part: Part,
    names: &[String],
    limit: Option<usize>,
) -> Result<Vec<Row>> {
    let asked = !names.is_empty();
    let names: Vec<&str> = if asked { names.iter().map(String::as_str).collect() } else { SYSTEMS.to_vec() };
    for name in &names {
        if !SYSTEMS.contains(name) {
            bail!(
                "--model {name}: without --from-file the systems are {}; to score any other model, \
                 write its rows of {{\"user\",\"item\",\"model\",\"text\"}} and pass --from-file",
                SYSTEMS.join(", ")
            );
        }
    }
    let split = Split::leave_last_out(dataset);
    let mut held = samples(dataset, &split, SampleSet::Held(part), ctx.settings.dataset.history_len);
    held.truncate(limit.unwrap_or(usize::MAX));
    let mut rows = Vec::new();
    let mut push = |name: &str, sample: &Sample, text: String| {
        rows.push(Row {
            line: rows.len() + 1,
            user: dataset.users[sample.user as usize].clone(),
            item: dataset.item(sample.item).id.clone(),
            model: name.to_owned(),
            text,
        })
    };
    for name in names {
        if name == "reference" {
            // Datasets without reference texts (MovieLens) simply have no such system, unless asked.
            if asked && held.iter().all(|s| s.reference.is_none()) {
                bail!("--model reference: the dataset has no reference explanations on this split");
            }
            for sample in held.iter().filter(|s| s.reference.is_some()) {
                push(name, sample, sample.reference.clone().unwrap_or_default());
            }
            continue;
        }
        let source = match name {
            "oracle" => Source::Model(PromptKind::Oracle),
            "prism" => Source::Model(PromptKind::Prism),
            _ => Source::Template,
        };
        let system = System { name: name.to_owned(), source };
        let mut bar = crate::progress::Reports::new("explanations");
        let mut progress = |n: &str, done: usize, total: usize| {
            if !bar.update(n, done, total) && (done.is_multiple_of(50) || done == total) {
                eprintln!("{n}: {done}/{total} explanations");
            }
        };
        let texts =
            systems::generate(&[system], &HashMap::new(), dataset, &held, &ctx.settings, &mut progress)?;
        for (sample, text) in held.iter().zip(texts.into_iter().flatten()) {
            push(name, sample, text);
        }
    }
    Ok(rows)
}

/// The report as a table: one column per model, one line per metric.
fn table(report: &Report) -> String {
    let names: Vec<&String> = report.models.keys().collect();
    let reports: Vec<&ModelReport> = report.models.values().collect();
    // A share with its interval, "0.490 [0.390, 0.590]", is the widest cell but BERTScore's.
    let bert_cells = reports.iter().filter_map(|r| r.bertscore.as_ref()).flat_map(|b| {
        [
            bertscore_cell(b.precision, b.ci95.precision),
            bertscore_cell(b.recall, b.ci95.recall),
            bertscore_cell(b.f, b.ci95.f),
        ]
    });
    let width = names
        .iter()
        .map(|n| n.len())
        .chain(bert_cells.map(|c| c.len()))
        .max()
        .unwrap_or(0)
        .max("0.000 [0.000, 0.000]".len());
    let mut out = format!(
        "{} split, {} (|F| = {} features)\n",
        eval::part_label(report.split),
        report.source,
        report.features,
    );
    if let Some(b) = &report.bertscore {
        let idf = if b.idf { "idf" } else { "no idf" };
        let baseline =
            b.baseline.as_ref().map_or_else(|| "not rescaled".to_owned(), |f| format!("rescaled with {f}"));
        out.push_str(&format!(
            "BERTScore: {}, layer {}, {idf}, {baseline}, at most {} tokens\n",
            b.model, b.layer, b.max_tokens
        ));
    }
    out.push_str(&format!("{:<22}", "metric"));
    for name in &names {
        out.push_str(&format!(" {name:>width$}"));
    }
    out.push('\n');
    let mut cells = |label: &str, value: &dyn Fn(&ModelReport) -> String| {
        out.push_str(&format!("{label:<22}"));
        for r in &reports {
            out.push_str(&format!(" {:>width$}", value(r)));
        }
        out.push('\n');
    };
    cells("n", &|r| r.n.to_string());
    cells("n with reference", &|r| r.n_with_reference.to_string());
    cells("invented titles", &|r| r.invented_titles.to_string());
    let mut line = |label: &str, value: &dyn Fn(&ModelReport) -> Option<f64>| {
        cells(label, &|r| value(r).map_or_else(|| "-".to_owned(), |v| format!("{v:.4}")));
    };
    let f = |p: Option<Prf>| p.map(|p| p.f);
    line("BLEU-1", &|r| r.bleu1);
    line("BLEU-4", &|r| r.bleu4);
    line("ROUGE-1 F", &|r| f(r.rouge1));
    line("ROUGE-2 F", &|r| f(r.rouge2));
    line("ROUGE-L F", &|r| f(r.rouge_l));
    line("USR", &|r| Some(r.usr));
    line("distinct-1", &|r| Some(r.distinct1));
    line("distinct-2", &|r| Some(r.distinct2));
    line("FMR", &|r| r.fmr);
    line("FCR", &|r| r.fcr);
    line("DIV", &|r| r.div);
    line("invented rate", &|r| Some(r.invented_rate));
    line("grounded precision", &|r| Some(r.grounded_precision));
    if reports.iter().any(|r| r.bertscore.is_some()) {
        let bert = |value: fn(&eval::BertScoreMeans) -> String| {
            move |r: &ModelReport| r.bertscore.as_ref().map_or_else(|| "-".to_owned(), value)
        };
        cells("BERTScore P", &bert(|b| bertscore_cell(b.precision, b.ci95.precision)));
        cells("BERTScore R", &bert(|b| bertscore_cell(b.recall, b.ci95.recall)));
        cells("BERTScore F1", &bert(|b| bertscore_cell(b.f, b.ci95.f)));
    }
    // What a reader sees: shares of explanations with their 95% bootstrap intervals.
    cells("names the title", &|r| share(r.ci95.title_named, r.title_named));
    cells("invents a title", &|r| share(r.ci95.history_invented, r.history_invented));
    cells("invents a feature", &|r| {
        share(r.ci95.explanations_with_invented, r.grounding.explanations_with_invented)
    });
    cells("invents either", &|r| share(r.ci95.invented_any, r.invented_any));
    cells("misattributes", &|r| share(r.ci95.feature_misattributed, r.feature_misattributed));
    let mut kinds: Vec<&String> = reports.iter().flat_map(|r| r.misattributed_by_kind.keys()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    for kind in kinds {
        cells(&format!("  a {kind}"), &|r| match r.misattributed_by_kind.get(kind) {
            Some(&value) => share(r.ci95.misattributed_by_kind.get(kind).copied(), value),
            None => "-".to_owned(),
        });
    }
    for c in &report.comparisons {
        out.push_str(&format!("\n{} − {} on {} shared pairs (paired bootstrap 95% CI, p):\n", c.a, c.b, c.n));
        if let Some(rouge) = &c.rouge_l_f {
            out.push_str(&format!("  ROUGE-L F            {}\n", paired(rouge)));
        }
        if let Some(bert) = &c.bertscore_f {
            out.push_str(&format!("  BERTScore F1         {}\n", paired(bert)));
        }
        out.push_str(&format!("  invents a feature    {}\n", paired(&c.explanations_with_invented)));
        out.push_str(&format!("  names the title      {}\n", paired(&c.title_named)));
        out.push_str(&format!("  invents a title      {}\n", paired(&c.history_invented)));
        out.push_str(&format!("  invents either       {}\n", paired(&c.invented_any)));
        out.push_str(&format!("  misattributes        {}\n", paired(&c.feature_misattributed)));
    }
    out
}

/// A share with its 95% interval when there is one.
fn share(ci: Option<Interval>, value: f64) -> String {
    match ci {
        Some(ci) => format!("{value:.3} [{:.3}, {:.3}]", ci.lower, ci.upper),
        None => format!("{value:.3} [-, -]"),
    }
}

/// A BERTScore mean (4 decimals, as the package's scores are compared) with its 95% interval.
fn bertscore_cell(mean: f64, ci: Interval) -> String {
    format!("{mean:.4} [{:.3}, {:.3}]", ci.lower, ci.upper)
}

fn paired(p: &PairedBootstrap) -> String {
    let d = &p.difference;
    format!("{:+.4} [{:+.4}, {:+.4}], p = {:.3}", d.estimate, d.lower, d.upper, p.p_value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DatasetBuilder, Feature, Interaction, Item};

    #[test]
    fn table_has_a_column_per_model_and_dashes_for_missing_metrics() {
        let mut b = DatasetBuilder::new("test");
        for (id, genre) in [("a", "Drama"), ("b", "War"), ("c", "Drama")] {
            b.set_item(Item {
                id: id.into(),
                title: format!("Film {id}"),
                year: None,
                features: vec![Feature::new("genre", genre)],
            });
        }
        let user = b.intern_user("u");
        for (t, id) in ["a", "b", "c"].iter().enumerate() {
            let item = b.intern_item(id);
            b.push_interaction(Interaction { user, item, rating: 1.0, timestamp: t as i64, reference: None });
        }
        let dataset = b.build();
        let rows = eval::parse_rows(
            "{\"user\":\"u\",\"item\":\"c\",\"model\":\"long-model-name\",\"text\":\"Another drama.\"}\n"
                .as_bytes(),
            "rows.jsonl",
        )
        .unwrap();
        let options = Options { part: Part::Test, history_len: 50, models: vec![], limit: None };
        let report =
            eval::evaluate(&dataset, &Matcher::new(&dataset), &rows, "rows.jsonl", &options).unwrap();
        let table = table(&report);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "test split, rows.jsonl (|F| = 2 features)");
        assert!(lines[1].ends_with(" long-model-name"), "{table}");
        assert!(lines.iter().any(|l| l.starts_with("BLEU-4") && l.ends_with(" -")), "{table}");
        // "drama" is the item's genre and in the history (item a): grounded.
        assert!(
            lines.iter().any(|l| l.starts_with("grounded precision") && l.ends_with(" 1.0000")),
            "{table}"
        );
        assert!(lines.iter().all(|l| l.len() == lines[1].len() || l == &lines[0]), "{table}");
    }
}

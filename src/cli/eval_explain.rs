//! `prism eval explain`: text, feature and faithfulness metrics of explanations, per model.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use super::Context;
use crate::data::{self, Part};
use crate::explain::eval::{self, ModelReport, Options, Report};
use crate::explain::Matcher;
use crate::metrics::stats::PairedBootstrap;
use crate::metrics::Prf;

#[derive(Debug, Args)]
pub struct EvalExplainArgs {
    /// Models to score (comma-separated); default: every model in the file
    #[arg(long, value_delimiter = ',', value_name = "NAME")]
    pub model: Vec<String>,
    /// Which held-out split the rows explain
    #[arg(long, value_enum, default_value = "test")]
    pub split: Part,
    /// Score at most N rows per model, in file order
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// JSONL rows of {"user","item","model","text"} written by any generator
    #[arg(long, value_name = "F.jsonl")]
    pub from_file: Option<PathBuf>,
}

pub fn run(ctx: &Context, args: EvalExplainArgs) -> Result<()> {
    let Some(path) = args.from_file else {
        bail!(
            "prism eval explain needs --from-file F.jsonl for now: the embedded Oracle and Prism models \
             are not shipped yet. Consider writing rows of {{\"user\",\"item\",\"model\",\"text\"}} with \
             any generator and scoring them with --from-file"
        );
    };
    let rows = eval::read_rows(&path)?;
    let dataset = data::open(&ctx.settings.dataset)?;
    let matcher = Matcher::new(&dataset);
    let options = Options {
        part: args.split,
        history_len: ctx.settings.dataset.history_len,
        models: args.model,
        limit: args.limit.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
    };
    let report = eval::evaluate(&dataset, &matcher, &rows, &path.display().to_string(), &options)?;
    if ctx.json {
        super::print_json(&report)
    } else {
        print!("{}", table(&report));
        Ok(())
    }
}

/// The report as a table: one column per model, one line per metric.
fn table(report: &Report) -> String {
    let names: Vec<&String> = report.models.keys().collect();
    let reports: Vec<&ModelReport> = report.models.values().collect();
    let width = names.iter().map(|n| n.len()).max().unwrap_or(0).max(8);
    let mut out = format!(
        "{} split, {} (|F| = {} features)\n{:<22}",
        eval::part_label(report.split),
        report.source,
        report.features,
        "metric"
    );
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
    for c in &report.comparisons {
        out.push_str(&format!("\n{} − {} on {} shared pairs (paired bootstrap 95% CI, p):\n", c.a, c.b, c.n));
        if let Some(rouge) = &c.rouge_l_f {
            out.push_str(&format!("  ROUGE-L F            {}\n", paired(rouge)));
        }
        out.push_str(&format!("  invents a feature    {}\n", paired(&c.explanations_with_invented)));
    }
    out
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

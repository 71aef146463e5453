//! The study report, unblinded with the key, every statistic from [`crate::metrics::stats`]:
//!
//! - per system and criterion: mean ± sample std over items with a bootstrap 95% CI, where an
//!   item's score is the mean of its annotators' ratings (the item is the unit, so annotators
//!   who rated the same item do not count as independent observations);
//! - paired tests of each system against the reference on those item scores (Wilcoxon
//!   signed-rank as scipy, paired t), two-sided, difference = system − reference;
//! - pairwise win / tie / loss rates over judgements (annotator × item), where "other" counts
//!   judgements that preferred a third system;
//! - agreement: Krippendorff's alpha (ordinal) per criterion over (item, system) units, Fleiss'
//!   kappa on preferences (systems + tie as categories) over the items every annotator
//!   answered, and Cohen's kappa for each pair of annotators;
//! - attention-check failures (the decoy rated above the rule's maximum, or preferred), which
//!   are left out of every statistic above, and the median time per item.
//!
//! A statistic that is undefined for the data (one annotator, one item, no variation) is
//! reported as `{"undefined": reason}` rather than failing the report.

use std::collections::BTreeMap;
use std::fmt::{Display, Write as _};
use std::path::Path;

use anyhow::{bail, Result};
use serde::Serialize;

use super::store::{self, Annotations, Judgement, Preference};
use super::study::{Key, Study};
use crate::metrics::stats::{
    cohen_kappa, fleiss_kappa, krippendorff_alpha, paired_t_test, percentile_sorted, summarize, wilcoxon,
    BootstrapConfig, KappaWeights, Level, ScoreSummary, TTest, Wilcoxon, WilcoxonOptions,
};

/// A statistic, or why it is undefined for this data.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Stat<T> {
    Value(T),
    Undefined { undefined: String },
}

impl<T> Stat<T> {
    fn of<E: Display>(result: Result<T, E>) -> Stat<T> {
        match result {
            Ok(v) => Stat::Value(v),
            Err(e) => Stat::Undefined { undefined: e.to_string() },
        }
    }

    fn undefined(reason: &str) -> Stat<T> {
        Stat::Undefined { undefined: reason.to_owned() }
    }

    pub fn value(&self) -> Option<&T> {
        match self {
            Stat::Value(v) => Some(v),
            Stat::Undefined { .. } => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub study: String,
    pub systems: Vec<String>,
    pub criteria: Vec<String>,
    pub reference: String,
    /// Study items, attention checks excluded.
    pub items: usize,
    /// Items with at least one answer, the unit of the scores and tests.
    pub items_answered: usize,
    pub attention_items: usize,
    pub annotators: Vec<AnnotatorSummary>,
    /// `scores[system][criterion]`.
    pub scores: BTreeMap<String, BTreeMap<String, Stat<ScoreSummary>>>,
    /// `tests[system][criterion]`: the system against the reference.
    pub tests: BTreeMap<String, BTreeMap<String, PairedTests>>,
    pub preferences: Preferences,
    pub agreement: Agreement,
    pub attention_failures: Vec<AttentionFailure>,
    /// Median over (annotator, item) of the time an item was on screen until answered.
    pub median_ms_per_item: Option<f64>,
    /// Torn lines and other things the reader should know.
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AnnotatorSummary {
    pub name: String,
    pub answered: usize,
    pub of: usize,
    pub median_ms_per_item: Option<f64>,
    pub attention_checks: usize,
    pub attention_failures: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PairedTests {
    pub n: usize,
    pub wilcoxon: Stat<Wilcoxon>,
    pub t_test: Stat<TTest>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Preferences {
    /// Judgements (annotator × item).
    pub n: usize,
    /// Share of judgements preferring each system.
    pub share: BTreeMap<String, f64>,
    pub tie_share: f64,
    pub pairwise: Vec<Pairwise>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pairwise {
    pub system: String,
    pub against: String,
    pub n: usize,
    pub wins: usize,
    pub ties: usize,
    pub losses: usize,
    /// A third system was preferred.
    pub other: usize,
    pub win_rate: f64,
    pub tie_rate: f64,
    pub loss_rate: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Agreement {
    /// Krippendorff's alpha (ordinal) per criterion.
    pub krippendorff_alpha: BTreeMap<String, Stat<f64>>,
    /// Fleiss' kappa of the preferences on the items every annotator answered.
    pub fleiss_kappa: Stat<f64>,
    pub fleiss_items: usize,
    pub cohen_kappa: Vec<CohenPair>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CohenPair {
    pub annotators: [String; 2],
    pub items: usize,
    pub kappa: Stat<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AttentionFailure {
    pub annotator: String,
    pub item: String,
    /// The decoy's rating on the rule's criterion.
    pub rating: u8,
    pub preferred: bool,
}

/// Everything a report or an export needs: the study, its key and every annotator's file.
pub struct Loaded {
    pub study: Study,
    pub key: Key,
    pub annotations: Vec<Annotations>,
}

impl Loaded {
    pub fn open(dir: &Path) -> Result<Loaded> {
        let study = Study::open(dir)?;
        let key = Key::open(dir, &study)?;
        let annotations = store::annotators(dir)?
            .iter()
            .map(|name| Annotations::load(dir, &study, name))
            .collect::<Result<Vec<_>>>()?;
        Ok(Loaded { study, key, annotations })
    }

    /// The system of slot `slot` of `judgement`.
    pub fn system_of(&self, judgement: &Judgement, slot: usize) -> usize {
        let item = self.study.item_index(&judgement.item).expect("judgements are checked against the study");
        self.key.items[item].systems[judgement.texts[slot]]
    }

    /// The preferred system of `judgement`, `None` for a tie.
    pub fn preferred(&self, judgement: &Judgement) -> Option<usize> {
        match judgement.preference {
            Preference::Slot(s) => Some(self.system_of(judgement, s)),
            Preference::Tie => None,
        }
    }

    pub fn is_attention(&self, item: &str) -> bool {
        self.study.item_index(item).is_some_and(|i| self.key.items[i].decoy.is_some())
    }
}

fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_unstable_by(f64::total_cmp);
    (!values.is_empty()).then(|| percentile_sorted(values, 50.0))
}

/// The report of `loaded`; `reference` overrides the key's reference system.
pub fn report(loaded: &Loaded, reference: Option<&str>, bootstrap: &BootstrapConfig) -> Result<Report> {
    let Loaded { study, key, annotations } = loaded;
    let systems: Vec<String> = key.system_names().into_iter().map(str::to_owned).collect();
    let reference = reference.unwrap_or(&key.reference);
    let Some(reference_index) = key.system_index(reference) else {
        bail!("unknown reference system {reference:?}: the study's systems are {}", systems.join(", "));
    };
    let latest: Vec<BTreeMap<&str, &Judgement>> = annotations.iter().map(Annotations::latest).collect();
    let regular: Vec<usize> = (0..study.items.len()).filter(|&i| key.items[i].decoy.is_none()).collect();
    let criteria = &study.criteria;

    // ratings[item][system][criterion]: every annotator's rating.
    let mut ratings = vec![vec![vec![Vec::new(); criteria.len()]; systems.len()]; study.items.len()];
    for answers in &latest {
        for (id, j) in answers {
            let item = study.item_index(id).expect("checked on load");
            for (slot, scores) in j.ratings.iter().enumerate() {
                for (c, &r) in scores.iter().enumerate() {
                    ratings[item][loaded.system_of(j, slot)][c].push(f64::from(r));
                }
            }
        }
    }
    let answered: Vec<usize> = regular.iter().copied().filter(|&i| !ratings[i][0][0].is_empty()).collect();
    let item_scores = |system: usize, c: usize| -> Vec<f64> {
        answered
            .iter()
            .map(|&i| ratings[i][system][c].iter().sum::<f64>() / ratings[i][system][c].len() as f64)
            .collect()
    };
    let mut scores = BTreeMap::new();
    let mut tests = BTreeMap::new();
    for (s, name) in systems.iter().enumerate() {
        let mut per_criterion = BTreeMap::new();
        let mut per_test = BTreeMap::new();
        for (c, criterion) in criteria.iter().enumerate() {
            let values = item_scores(s, c);
            per_criterion.insert(criterion.clone(), Stat::of(summarize(&values, bootstrap)));
            if s != reference_index {
                let against = item_scores(reference_index, c);
                per_test.insert(
                    criterion.clone(),
                    PairedTests {
                        n: values.len(),
                        wilcoxon: Stat::of(wilcoxon(&values, &against, WilcoxonOptions::default())),
                        t_test: Stat::of(paired_t_test(&values, &against)),
                    },
                );
            }
        }
        scores.insert(name.clone(), per_criterion);
        if s != reference_index {
            tests.insert(name.clone(), per_test);
        }
    }

    // Preferences over regular judgements: Some(system) or None for a tie.
    let prefs: Vec<Vec<(usize, Option<usize>)>> = latest
        .iter()
        .map(|answers| {
            answers
                .iter()
                .filter(|(id, _)| !loaded.is_attention(id))
                .map(|(id, j)| (study.item_index(id).expect("checked"), loaded.preferred(j)))
                .collect()
        })
        .collect();
    let all: Vec<Option<usize>> = prefs.iter().flatten().map(|(_, p)| *p).collect();
    let n = all.len();
    let rate = |count: usize| if n == 0 { 0.0 } else { count as f64 / n as f64 };
    let mut pairwise = Vec::new();
    for x in 0..systems.len() {
        for y in x + 1..systems.len() {
            let wins = all.iter().filter(|p| **p == Some(x)).count();
            let losses = all.iter().filter(|p| **p == Some(y)).count();
            let ties = all.iter().filter(|p| p.is_none()).count();
            pairwise.push(Pairwise {
                system: systems[x].clone(),
                against: systems[y].clone(),
                n,
                wins,
                ties,
                losses,
                other: n - wins - ties - losses,
                win_rate: rate(wins),
                tie_rate: rate(ties),
                loss_rate: rate(losses),
            });
        }
    }
    let preferences = Preferences {
        n,
        share: systems
            .iter()
            .enumerate()
            .map(|(s, name)| (name.clone(), rate(all.iter().filter(|p| **p == Some(s)).count())))
            .collect(),
        tie_share: rate(all.iter().filter(|p| p.is_none()).count()),
        pairwise,
    };

    // Agreement.
    let coders = annotations.len();
    let mut alpha = BTreeMap::new();
    for (c, criterion) in criteria.iter().enumerate() {
        let data: Vec<Vec<Option<f64>>> = latest
            .iter()
            .map(|answers| {
                let mut units = vec![None; regular.len() * systems.len()];
                for (id, j) in answers {
                    if let Some(u) = regular.iter().position(|&i| study.items[i].id == *id) {
                        for (slot, r) in j.ratings.iter().enumerate() {
                            units[u * systems.len() + loaded.system_of(j, slot)] = Some(f64::from(r[c]));
                        }
                    }
                }
                units
            })
            .collect();
        let value = if coders < 2 {
            Stat::undefined("needs at least two annotators")
        } else {
            Stat::of(krippendorff_alpha(&data, Level::Ordinal))
        };
        alpha.insert(criterion.clone(), value);
    }
    let category = |p: Option<usize>| p.unwrap_or(systems.len());
    let by_annotator: Vec<BTreeMap<usize, usize>> =
        prefs.iter().map(|ps| ps.iter().map(|&(i, p)| (i, category(p))).collect()).collect();
    let shared: Vec<usize> =
        regular.iter().copied().filter(|i| by_annotator.iter().all(|m| m.contains_key(i))).collect();
    let fleiss = if coders < 2 {
        Stat::undefined("needs at least two annotators")
    } else if shared.is_empty() {
        Stat::undefined("no item was answered by every annotator")
    } else {
        let counts: Vec<Vec<u32>> = shared
            .iter()
            .map(|i| {
                let mut row = vec![0; systems.len() + 1];
                for m in &by_annotator {
                    row[m[i]] += 1;
                }
                row
            })
            .collect();
        Stat::of(fleiss_kappa(&counts))
    };
    let mut cohen = Vec::new();
    for a in 0..coders {
        for b in a + 1..coders {
            let both: Vec<(usize, usize)> = by_annotator[a]
                .iter()
                .filter_map(|(i, &x)| by_annotator[b].get(i).map(|&y| (x, y)))
                .collect();
            let (xs, ys): (Vec<usize>, Vec<usize>) = both.iter().copied().unzip();
            cohen.push(CohenPair {
                annotators: [annotations[a].annotator.clone(), annotations[b].annotator.clone()],
                items: both.len(),
                kappa: Stat::of(cohen_kappa(&xs, &ys, KappaWeights::None)),
            });
        }
    }

    // Attention checks, times and per-annotator summaries.
    let criterion =
        criteria.iter().position(|c| *c == key.attention.criterion).expect("checked by Key::open");
    let mut failures = Vec::new();
    let mut summaries = Vec::new();
    let mut all_times = Vec::new();
    for (a, answers) in annotations.iter().zip(&latest) {
        let mut checks = 0;
        let mut failed = 0;
        for (id, j) in answers {
            let item = study.item_index(id).expect("checked");
            let Some(decoy) = &key.items[item].decoy else { continue };
            checks += 1;
            let slot =
                j.texts.iter().position(|&t| t == decoy.text).expect("texts are an order of all texts");
            let rating = j.ratings[slot][criterion];
            let preferred = j.preference == Preference::Slot(slot);
            if rating > key.attention.max_rating || preferred {
                failed += 1;
                failures.push(AttentionFailure {
                    annotator: a.annotator.clone(),
                    item: id.to_string(),
                    rating,
                    preferred,
                });
            }
        }
        let mut times: Vec<f64> = a.time_ms().values().map(|&ms| ms as f64).collect();
        all_times.extend_from_slice(&times);
        summaries.push(AnnotatorSummary {
            name: a.annotator.clone(),
            answered: answers.len(),
            of: study.items.len(),
            median_ms_per_item: median(&mut times),
            attention_checks: checks,
            attention_failures: failed,
        });
    }
    let warnings = annotations.iter().flat_map(|a| a.issues.iter().map(ToString::to_string)).collect();
    Ok(Report {
        study: study.id.clone(),
        systems,
        criteria: criteria.clone(),
        reference: reference.to_owned(),
        items: regular.len(),
        items_answered: answered.len(),
        attention_items: study.items.len() - regular.len(),
        annotators: summaries,
        scores,
        tests,
        preferences,
        agreement: Agreement {
            krippendorff_alpha: alpha,
            fleiss_kappa: fleiss,
            fleiss_items: shared.len(),
            cohen_kappa: cohen,
        },
        attention_failures: failures,
        median_ms_per_item: median(&mut all_times),
        warnings,
    })
}

fn show<T>(stat: &Stat<T>, f: impl Fn(&T) -> String) -> String {
    match stat {
        Stat::Value(v) => f(v),
        Stat::Undefined { undefined } => format!("undefined ({undefined})"),
    }
}

/// The report as text for a terminal.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "study {}: {} items ({} answered) + {} attention checks, {} annotators, reference {}",
        r.study,
        r.items,
        r.items_answered,
        r.attention_items,
        r.annotators.len(),
        r.reference
    );
    for w in &r.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    let _ = writeln!(out, "\nratings (item means; mean ± std [95% CI])");
    for system in &r.systems {
        for criterion in &r.criteria {
            let s = show(&r.scores[system][criterion], |s| {
                let std = s.std.map_or("–".to_owned(), |v| format!("{v:.2}"));
                format!("{:.2} ± {std} [{:.2}, {:.2}] n={}", s.mean, s.ci.lower, s.ci.upper, s.n)
            });
            let _ = writeln!(out, "  {system:<16} {criterion:<18} {s}");
        }
    }
    let _ = writeln!(out, "\npaired tests against {} (difference = system − reference)", r.reference);
    for (system, per) in &r.tests {
        for (criterion, t) in per {
            let w = show(&t.wilcoxon, |w| format!("W={} p={:.4}", w.statistic, w.p_value));
            let tt =
                show(&t.t_test, |t| format!("Δ={:.2} t={:.3} p={:.4}", t.mean_difference, t.t, t.p_value));
            let _ = writeln!(out, "  {system:<16} {criterion:<18} Wilcoxon {w}; paired t {tt}");
        }
    }
    let p = &r.preferences;
    let _ = writeln!(out, "\npreferences over {} judgements (tie {:.1}%)", p.n, 100.0 * p.tie_share);
    for w in &p.pairwise {
        let _ = writeln!(
            out,
            "  {} vs {}: win {:.1}%  tie {:.1}%  loss {:.1}%  (other {})",
            w.system,
            w.against,
            100.0 * w.win_rate,
            100.0 * w.tie_rate,
            100.0 * w.loss_rate,
            w.other
        );
    }
    let _ = writeln!(out, "\nagreement");
    for (criterion, a) in &r.agreement.krippendorff_alpha {
        let _ =
            writeln!(out, "  Krippendorff's alpha (ordinal) {criterion}: {}", show(a, |v| format!("{v:.3}")));
    }
    let _ = writeln!(
        out,
        "  Fleiss' kappa (preferences, {} items): {}",
        r.agreement.fleiss_items,
        show(&r.agreement.fleiss_kappa, |v| format!("{v:.3}"))
    );
    for c in &r.agreement.cohen_kappa {
        let [a, b] = &c.annotators;
        let _ = writeln!(
            out,
            "  Cohen's kappa {a}–{b} ({} items): {}",
            c.items,
            show(&c.kappa, |v| format!("{v:.3}"))
        );
    }
    let _ = writeln!(out, "\nannotators");
    for a in &r.annotators {
        let ms = a.median_ms_per_item.map_or("–".to_owned(), |m| format!("{:.1} s", m / 1000.0));
        let _ = writeln!(
            out,
            "  {:<16} {}/{} answered, median {ms} per item, attention checks failed {}/{}",
            a.name, a.answered, a.of, a.attention_failures, a.attention_checks
        );
    }
    for f in &r.attention_failures {
        let how = if f.preferred { ", preferred it" } else { "" };
        let _ = writeln!(
            out,
            "  attention check failed: {} on {} (decoy rated {}{how})",
            f.annotator, f.item, f.rating
        );
    }
    if let Some(m) = r.median_ms_per_item {
        let _ = writeln!(out, "median time per item: {:.1} s", m / 1000.0);
    }
    out
}

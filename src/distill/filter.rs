//! The *filter* stage's rules: a teacher explanation is dropped when it is empty, degenerate
//! (a phrase repeated), too short or too long, or when it invents features (a feature or title of
//! neither the item nor the history, or a slot its pair has no value for: what
//! [`crate::explain::Verdict`] counts invented).

use std::collections::{BTreeMap, HashMap};

use crate::explain::samples::Sample;
use crate::explain::{Matcher, Verdict};

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterSettings {
    /// Off: every explanation is kept (the verdicts are still reported), for the
    /// with-vs-without-filter comparison.
    #[serde(default = "yes")]
    pub enabled: bool,
    pub min_words: usize,
    pub max_words: usize,
    /// Degenerate: some word n-gram of this size occurs more than `max_ngram_repeats` times.
    #[serde(default = "default_ngram")]
    pub ngram: usize,
    #[serde(default = "default_repeats")]
    pub max_ngram_repeats: usize,
    #[serde(default = "yes")]
    pub drop_invented: bool,
}

fn yes() -> bool {
    true
}
fn default_ngram() -> usize {
    3
}
fn default_repeats() -> usize {
    1
}

/// Why an explanation is dropped; the first rule that applies is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Empty,
    Degenerate,
    TooShort,
    TooLong,
    Invented,
}

/// The verdict on one explanation: `None` keeps it.
pub fn judge(settings: &FilterSettings, matcher: &Matcher, sample: &Sample, text: &str) -> Option<Reason> {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase())
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return Some(Reason::Empty);
    }
    if is_degenerate(&words, settings.ngram, settings.max_ngram_repeats) {
        return Some(Reason::Degenerate);
    }
    if words.len() < settings.min_words {
        return Some(Reason::TooShort);
    }
    if words.len() > settings.max_words {
        return Some(Reason::TooLong);
    }
    let invented = || {
        let grounding = matcher.ground(text, &sample.history, sample.item);
        Verdict::of(matcher, &grounding, sample.item, text).invented() > 0
    };
    if settings.drop_invented && invented() {
        return Some(Reason::Invented);
    }
    None
}

fn is_degenerate(words: &[String], n: usize, max_repeats: usize) -> bool {
    if n == 0 || words.len() < n {
        return false;
    }
    let mut counts: HashMap<&[String], usize> = HashMap::new();
    words.windows(n).any(|gram| {
        let c = counts.entry(gram).or_default();
        *c += 1;
        *c > max_repeats
    })
}

/// What the filter did, written to `filter/report.json`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FilterReport {
    pub enabled: bool,
    pub total: usize,
    pub kept: usize,
    /// Explanations each rule would drop (first applicable rule).
    pub dropped: BTreeMap<Reason, usize>,
    /// A few dropped explanations per reason, to see what the rules catch.
    pub examples: BTreeMap<Reason, Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DatasetBuilder, Feature, Item};

    fn settings() -> FilterSettings {
        FilterSettings {
            enabled: true,
            min_words: 4,
            max_words: 20,
            ngram: 3,
            max_ngram_repeats: 1,
            drop_invented: true,
        }
    }

    #[test]
    fn each_rule() {
        let mut b = DatasetBuilder::new("test");
        let mut add = |id: &str, genre: &str| {
            b.set_item(Item {
                id: id.into(),
                title: format!("Film {id}"),
                year: None,
                features: vec![Feature::new("genre", genre)],
            })
        };
        let (a, c, _w) = (add("a", "Drama"), add("c", "Comedy"), add("w", "Western"));
        let dataset = b.build();
        let matcher = Matcher::new(&dataset);
        let sample = Sample { user: 0, item: c, history: vec![a], reference: None, noisy_reference: false };
        let verdict = |text: &str| judge(&settings(), &matcher, &sample, text);
        assert_eq!(verdict("  "), Some(Reason::Empty));
        assert_eq!(verdict("a fine comedy a fine comedy a fine comedy"), Some(Reason::Degenerate));
        assert_eq!(verdict("A comedy."), Some(Reason::TooShort));
        assert_eq!(
            verdict(
                &"word "
                    .repeat(30)
                    .split(' ')
                    .enumerate()
                    .map(|(i, _)| format!("w{i}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Some(Reason::TooLong)
        );
        assert_eq!(verdict("You like drama, and this western will please you."), Some(Reason::Invented));
        assert_eq!(verdict("After the drama you watched, this comedy lightens the mood."), None);
    }
}

//! Feature grounding: finds the features and item titles an explanation mentions and classifies
//! each mention against the user's history and the recommended item — grounded, item-only,
//! history-only or invented. One [`Matcher`] is built per dataset and shared by every call.
//!
//! Matching works on normalised word tokens (lower case, possessives and plurals folded), walked
//! through a trie of token ids: a word boundary is then a token boundary by construction ("war"
//! never matches inside "award"), multi-word features are paths in the trie, and the longest
//! phrase starting at a position wins, so a title that contains a feature word is the title.

use std::collections::HashMap;
use std::ops::Range;

use serde::Serialize;

use crate::data::{Dataset, Feature, ItemIdx};

/// Where a mentioned feature or title comes from, relative to one (history, item) pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// A feature of the recommended item that some history item also has.
    Grounded,
    /// A feature of the item that no history item has, or the item's own title.
    ItemOnly,
    /// A feature some history item has but the item does not, or a history item's title.
    HistoryOnly,
    /// A known feature or title found in neither the item nor the history.
    Invented,
}

/// What a mention refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'m> {
    /// A feature phrase. `concept` identifies the normalised phrase, shared by every feature with
    /// the same wording whatever its kind (the text does not say whether "Clint Eastwood" is the
    /// director or an actor); `feature` is the item's feature when it has one, else the history's,
    /// else the first in the dataset.
    Feature { concept: u32, feature: &'m Feature },
    /// A title. `item` is the recommended item or the history item with that title when there is
    /// one, else the first item in the dataset with it.
    Title { item: ItemIdx, title: &'m str },
}

/// One mention in an explanation: `span` is a byte range into the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mention<'m> {
    pub span: Range<usize>,
    pub class: Class,
    pub target: Target<'m>,
}

/// Mentions per class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub grounded: usize,
    pub item_only: usize,
    pub history_only: usize,
    pub invented: usize,
}

impl Counts {
    pub fn total(&self) -> usize {
        self.grounded + self.item_only + self.history_only + self.invented
    }

    fn add(&mut self, class: Class) {
        match class {
            Class::Grounded => self.grounded += 1,
            Class::ItemOnly => self.item_only += 1,
            Class::HistoryOnly => self.history_only += 1,
            Class::Invented => self.invented += 1,
        }
    }
}

/// The grounding of one explanation: its mentions in text order, and their counts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Grounding<'m> {
    pub mentions: Vec<Mention<'m>>,
    /// Counts over all mentions, features and titles.
    pub counts: Counts,
    /// Counts over feature mentions only.
    pub feature_counts: Counts,
    /// Whether the recommended item's title is one of the matched phrases (see
    /// [`Matcher::ground`] for what counts as naming it).
    pub title_named: bool,
}

impl<'m> Grounding<'m> {
    /// Distinct feature concepts mentioned, sorted (the F̂ of USR/FMR/FCR/DIV).
    pub fn concepts(&self) -> Vec<u32> {
        let mut concepts: Vec<u32> = self
            .mentions
            .iter()
            .filter_map(|m| match m.target {
                Target::Feature { concept, .. } => Some(concept),
                Target::Title { .. } => None,
            })
            .collect();
        concepts.sort_unstable();
        concepts.dedup();
        concepts
    }

    /// The mentions as plain records, for JSON output and the TUI.
    pub fn records(&self, text: &str) -> Vec<MentionRecord> {
        self.mentions
            .iter()
            .map(|m| {
                let (kind, value) = match m.target {
                    Target::Feature { feature, .. } => (feature.kind.clone(), feature.value.clone()),
                    Target::Title { title, .. } => ("title".to_owned(), title.to_owned()),
                };
                MentionRecord {
                    start: m.span.start,
                    end: m.span.end,
                    surface: text.get(m.span.clone()).unwrap_or_default().to_owned(),
                    class: m.class,
                    kind,
                    value,
                }
            })
            .collect()
    }

    /// The mentioned values grouped by class (the `grounding` object of `prism explain`).
    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for m in &self.mentions {
            let value = match m.target {
                Target::Feature { feature, .. } => feature.value.clone(),
                Target::Title { title, .. } => title.to_owned(),
            };
            let list = match m.class {
                Class::Grounded => &mut summary.grounded,
                Class::ItemOnly => &mut summary.item_only,
                Class::HistoryOnly => &mut summary.history_only,
                Class::Invented => &mut summary.invented,
            };
            if !list.contains(&value) {
                list.push(value);
            }
        }
        summary
    }
}

/// One mention as plain data.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MentionRecord {
    pub start: usize,
    pub end: usize,
    pub surface: String,
    pub class: Class,
    /// The feature kind ("genre", "director", …) or "title".
    pub kind: String,
    pub value: String,
}

/// Mentioned values per class, each listed once, in order of first mention.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    pub grounded: Vec<String>,
    pub item_only: Vec<String>,
    pub history_only: Vec<String>,
    pub invented: Vec<String>,
}

/// What a complete phrase in the trie stands for.
#[derive(Clone, Debug, Default)]
struct Phrase {
    /// (dense concept id, index into `Matcher::features` of the first feature with this wording).
    feature: Option<(u32, u32)>,
    /// Items whose (cleaned) title has this wording.
    titles: Vec<ItemIdx>,
    /// One-word titles ("Heat", "Up") are ordinary words too: they count only when capitalised.
    single_word: bool,
}

/// A matcher over one dataset's feature vocabulary and item titles. Build once, share freely
/// (it is `Sync`); [`Matcher::ground`] allocates only the result.
#[derive(Clone, Debug)]
pub struct Matcher {
    tokens: HashMap<String, u32>,
    /// Trie edges: (node, token) → child node. Node 0 is the root.
    edges: HashMap<(u32, u32), u32>,
    /// Per node, the phrase it completes, if any.
    terminal: Vec<Option<u32>>,
    phrases: Vec<Phrase>,
    /// Every distinct feature of the dataset.
    features: Vec<Feature>,
    /// Per item: (concept, feature index) of its features, sorted by concept.
    item_concepts: Vec<Vec<(u32, u32)>>,
    titles: Vec<String>,
    concepts: usize,
}

impl Matcher {
    /// Builds the matcher from every item's features and title.
    pub fn new(dataset: &Dataset) -> Matcher {
        let mut m = Matcher {
            tokens: HashMap::new(),
            edges: HashMap::new(),
            terminal: vec![None],
            phrases: Vec::new(),
            features: Vec::new(),
            item_concepts: Vec::with_capacity(dataset.items.len()),
            titles: Vec::with_capacity(dataset.items.len()),
            concepts: 0,
        };
        let mut feature_index: HashMap<&Feature, u32> = HashMap::new();
        for item in &dataset.items {
            let mut concepts = Vec::with_capacity(item.features.len());
            for feature in &item.features {
                let idx = *feature_index.entry(feature).or_insert_with(|| {
                    m.features.push(feature.clone());
                    (m.features.len() - 1) as u32
                });
                let Some((phrase, _)) = m.insert(&feature.value) else { continue };
                let concept = match m.phrases[phrase as usize].feature {
                    Some((concept, _)) => concept,
                    None => {
                        let concept = m.concepts as u32;
                        m.phrases[phrase as usize].feature = Some((concept, idx));
                        m.concepts += 1;
                        concept
                    }
                };
                concepts.push((concept, idx));
            }
            concepts.sort_unstable();
            concepts.dedup_by_key(|c| c.0);
            m.item_concepts.push(concepts);
        }
        for (idx, item) in dataset.items.iter().enumerate() {
            let title = clean_title(&item.title);
            // Prose drops or changes the article ("loved Matrix", "a Matrix sequel"), so the
            // phrase starts after it; the span then leaves the article out.
            let phrase_text =
                ["The ", "A ", "An "].iter().find_map(|a| title.strip_prefix(a)).unwrap_or(&title);
            if let Some((phrase, len)) = m.insert(phrase_text) {
                let p = &mut m.phrases[phrase as usize];
                p.titles.push(idx as ItemIdx);
                p.single_word = len == 1;
            }
            m.titles.push(title);
        }
        m
    }

    /// Number of distinct feature concepts: the |F| of the feature coverage ratio.
    pub fn num_concepts(&self) -> usize {
        self.concepts
    }

    /// The title of an item as the matcher reads it (year and trailing article moved or dropped).
    pub fn title(&self, item: ItemIdx) -> &str {
        &self.titles[item as usize]
    }

    /// Distinct feature concepts of an item, sorted (the ground-truth features of FMR).
    pub fn item_concepts(&self, item: ItemIdx) -> Vec<u32> {
        self.item_concepts[item as usize].iter().map(|&(c, _)| c).collect()
    }

    /// The feature kinds ("genre", "director", …) of an item, sorted and distinct. A wording the
    /// item has under two kinds (a genre and a theme both "war") counts under one of them.
    pub fn item_kinds(&self, item: ItemIdx) -> Vec<&str> {
        let mut kinds: Vec<&str> = self.item_concepts[item as usize]
            .iter()
            .map(|&(_, f)| self.features[f as usize].kind.as_str())
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        kinds
    }

    /// Every feature kind of the dataset, sorted and distinct.
    pub fn kinds(&self) -> Vec<&str> {
        let mut kinds: Vec<&str> = self.features.iter().map(|f| f.kind.as_str()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        kinds
    }

    /// Distinct feature concepts mentioned in `text`, sorted, without classifying them.
    pub fn concepts_in(&self, text: &str) -> Vec<u32> {
        let mut concepts = Vec::new();
        self.scan(text, |_, phrase| {
            if let Some((concept, _)) = self.phrases[phrase as usize].feature {
                concepts.push(concept);
            }
        });
        concepts.sort_unstable();
        concepts.dedup();
        concepts
    }

    /// Finds and classifies the mentions of `text`, an explanation of why `item` fits a user whose
    /// history is `history`.
    ///
    /// The item's title counts as named ([`Grounding::title_named`]) when its cleaned title
    /// ([`clean_title`]: parenthesised year dropped, trailing article moved to the front) appears
    /// word for word under the matcher's normalisation: case, punctuation and whitespace between
    /// words ignored, possessive `'s` and English plurals folded, a leading "The"/"A"/"An" of the
    /// title optional, a one-word title only when capitalised, and only as a whole phrase — not
    /// inside a longer title that contains it. Any other word, added, dropped or changed
    /// ("The Circus of Compass" for *The Circus of Tunnel*), means it is not named.
    pub fn ground(&self, text: &str, history: &[ItemIdx], item: ItemIdx) -> Grounding<'_> {
        let mut grounding = Grounding::default();
        self.scan(text, |span, phrase| {
            let p = &self.phrases[phrase as usize];
            grounding.title_named |= p.titles.contains(&item);
            let (class, target) = match p.feature {
                Some((concept, first)) => self.classify_feature(concept, first, history, item),
                None => self.classify_title(&p.titles, history, item),
            };
            grounding.counts.add(class);
            if matches!(target, Target::Feature { .. }) {
                grounding.feature_counts.add(class);
            }
            grounding.mentions.push(Mention { span, class, target });
        });
        grounding
    }

    fn classify_feature(
        &self,
        concept: u32,
        first: u32,
        history: &[ItemIdx],
        item: ItemIdx,
    ) -> (Class, Target<'_>) {
        let lookup = |i: ItemIdx| {
            let concepts = self.item_concepts.get(i as usize)?;
            concepts.binary_search_by_key(&concept, |&(c, _)| c).ok().map(|at| concepts[at].1)
        };
        let in_item = lookup(item);
        let in_history = history.iter().find_map(|&h| lookup(h));
        let class = match (in_item, in_history) {
            (Some(_), Some(_)) => Class::Grounded,
            (Some(_), None) => Class::ItemOnly,
            (None, Some(_)) => Class::HistoryOnly,
            (None, None) => Class::Invented,
        };
        let feature = &self.features[in_item.or(in_history).unwrap_or(first) as usize];
        (class, Target::Feature { concept, feature })
    }

    fn classify_title(&self, titled: &[ItemIdx], history: &[ItemIdx], item: ItemIdx) -> (Class, Target<'_>) {
        let (class, which) = if titled.contains(&item) {
            (Class::ItemOnly, item)
        } else if let Some(&h) = titled.iter().find(|t| history.contains(t)) {
            (Class::HistoryOnly, h)
        } else {
            (Class::Invented, titled[0])
        };
        (class, Target::Title { item: which, title: &self.titles[which as usize] })
    }

    /// Calls `found(span, phrase)` for each match, left to right, longest first at each start,
    /// never overlapping.
    fn scan(&self, text: &str, mut found: impl FnMut(Range<usize>, u32)) {
        let mut words: Vec<Word> = Vec::new();
        let mut buf = String::new();
        for_each_word(text, &mut buf, |span, norm, capitalised| {
            words.push(Word { span, token: self.tokens.get(norm).copied(), capitalised });
        });
        let mut start = 0;
        while start < words.len() {
            let mut node = 0u32;
            let mut best: Option<(usize, u32)> = None;
            for (at, word) in words[start..].iter().enumerate() {
                let Some(token) = word.token else { break };
                let Some(&child) = self.edges.get(&(node, token)) else { break };
                node = child;
                if let Some(phrase) = self.terminal[node as usize] {
                    let p = &self.phrases[phrase as usize];
                    let title_ok = !p.single_word || words[start].capitalised;
                    if p.feature.is_some() || title_ok {
                        best = Some((start + at, phrase));
                    }
                }
            }
            match best {
                Some((end, phrase)) => {
                    found(words[start].span.start..words[end].span.end, phrase);
                    start = end + 1;
                }
                None => start += 1,
            }
        }
    }

    /// Adds a phrase to the trie; returns its phrase index and length in tokens, or `None` when
    /// it has no content word (a title like "It" or a tag like "the" would match everywhere).
    fn insert(&mut self, phrase: &str) -> Option<(u32, usize)> {
        let mut norms = Vec::new();
        let mut buf = String::new();
        for_each_word(phrase, &mut buf, |_, norm, _| norms.push(norm.to_owned()));
        if norms.iter().all(|n| STOPWORDS.contains(&n.as_str())) {
            return None;
        }
        let mut node = 0u32;
        for norm in &norms {
            let next = self.tokens.len() as u32;
            let token = *self.tokens.entry(norm.clone()).or_insert(next);
            let next_node = self.terminal.len() as u32;
            node = *self.edges.entry((node, token)).or_insert_with(|| next_node);
            if node == next_node {
                self.terminal.push(None);
            }
        }
        let phrase = match self.terminal[node as usize] {
            Some(p) => p,
            None => {
                self.phrases.push(Phrase::default());
                let p = (self.phrases.len() - 1) as u32;
                self.terminal[node as usize] = Some(p);
                p
            }
        };
        Some((phrase, norms.len()))
    }
}

struct Word {
    span: Range<usize>,
    token: Option<u32>,
    capitalised: bool,
}

/// Words that alone never make a phrase worth matching.
const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "he", "her", "him", "his", "i",
    "if", "in", "into", "is", "it", "me", "my", "no", "not", "of", "on", "or", "our", "she", "so", "that",
    "the", "their", "them", "then", "there", "they", "this", "to", "up", "us", "was", "we", "what", "when",
    "who", "why", "with", "you", "your",
];

/// Words whose final "s" is not a plural.
const NOT_PLURAL: &[&str] = &["news", "series", "species", "physics", "politics", "mathematics", "always"];

/// Splits `text` into words — runs of letters and digits, with apostrophes inside a word kept —
/// and calls `emit(span, normalised, capitalised)` for each. The span leaves out a possessive
/// ending, so "Valdar's" marks "Valdar".
fn for_each_word(text: &str, buf: &mut String, mut emit: impl FnMut(Range<usize>, &str, bool)) {
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if !c.is_alphanumeric() {
            continue;
        }
        let mut end = start + c.len_utf8();
        while let Some(&(at, next)) = chars.peek() {
            if next.is_alphanumeric() {
                end = at + next.len_utf8();
                chars.next();
            } else if is_apostrophe(next) && text[at + next.len_utf8()..].starts_with(char::is_alphanumeric) {
                chars.next();
            } else {
                break;
            }
        }
        let mut word = &text[start..end];
        let mut span_end = end;
        for suffix in ["'s", "\u{2019}s", "'S", "\u{2019}S"] {
            if let Some(stem) = word.strip_suffix(suffix) {
                word = stem;
                span_end = start + stem.len();
                break;
            }
        }
        buf.clear();
        for ch in word.chars() {
            if is_apostrophe(ch) {
                buf.push('\'');
            } else {
                buf.extend(ch.to_lowercase());
            }
        }
        singularise(buf);
        emit(start..span_end, buf, c.is_uppercase());
    }
}

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '\u{2019}'
}

/// Folds an English plural to its singular, in place. Crude on purpose: the same folding applies
/// to the vocabulary and to the text, so it needs to be consistent, not linguistically right.
fn singularise(word: &mut String) {
    if word.len() <= 3 || NOT_PLURAL.contains(&word.as_str()) || !word.is_ascii() {
        return;
    }
    if let Some(stem) = word.strip_suffix("ies") {
        let len = stem.len();
        word.truncate(len);
        word.push('y');
    } else if ["sses", "shes", "ches", "xes", "zes"].iter().any(|s| word.ends_with(s)) {
        word.truncate(word.len() - 2);
    } else if word.ends_with('s') && !["ss", "us", "is"].iter().any(|s| word.ends_with(s)) {
        word.truncate(word.len() - 1);
    }
}

/// A title as people write it in prose: trailing parenthesised parts dropped ("Toy Story (1995)",
/// "City of Lost Children, The (Cité des enfants perdus, La) (1995)") and a trailing article
/// moved to the front ("Matrix, The" → "The Matrix").
pub fn clean_title(title: &str) -> String {
    let mut t = title.trim();
    while let Some(open) = t.strip_suffix(')').and_then(|rest| rest.rfind('(')) {
        let rest = t[..open].trim_end();
        if rest.is_empty() {
            break;
        }
        t = rest;
    }
    for article in ["The", "A", "An", "Les", "La", "Le", "L'", "Il", "Das", "Der", "Die", "El"] {
        if let Some(stem) = t.strip_suffix(article).and_then(|s| s.strip_suffix(", ")) {
            let sep = if article.ends_with('\'') { "" } else { " " };
            return format!("{article}{sep}{stem}");
        }
    }
    t.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(word: &str) -> String {
        let mut out = Vec::new();
        for_each_word(word, &mut String::new(), |_, n, _| out.push(n.to_owned()));
        out.join(" ")
    }

    #[test]
    fn words_fold_case_possessives_and_plurals() {
        assert_eq!(norm("Thrillers"), "thriller");
        assert_eq!(norm("Comedies"), norm("comedy"));
        assert_eq!(norm("Valdar's"), "valdar");
        assert_eq!(norm("news"), "news");
        assert_eq!(norm("boss"), "boss");
        assert_eq!(norm("Sci-Fi!"), "sci fi");
        assert_eq!(norm("don’t"), "don't");
    }

    #[test]
    fn possessive_is_left_out_of_the_span() {
        let mut spans = Vec::new();
        for_each_word("Ines Valdar’s films", &mut String::new(), |s, _, cap| spans.push((s, cap)));
        assert_eq!(spans, vec![(0..4, true), (5..11, true), (16..21, false)]);
    }

    #[test]
    fn titles_are_cleaned_for_prose() {
        assert_eq!(clean_title("Matrix, The (1999)"), "The Matrix");
        assert_eq!(
            clean_title("City of Lost Children, The (Cité des enfants perdus, La) (1995)"),
            "The City of Lost Children"
        );
        assert_eq!(clean_title("Toy Story (1995)"), "Toy Story");
        assert_eq!(clean_title("(500) Days of Summer"), "(500) Days of Summer");
    }
}

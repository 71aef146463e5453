//! Slots: delexicalised prompts and explanations, as data-to-text systems write them
//! (docs/EMBEDDED_MODELS.md, "Slots"). A model whose tokenizer has the `[ITEM]` token reads the
//! recommended item as `[ITEM]`, the values its line shows as `[GENRE1]`, `[DIRECTOR1]`, … (each
//! with how many history items share it), and each history title as `[H1]` (the newest), `[H2]`,
//! …, with the item's values that history item shares. It writes its explanation in the same
//! tokens, and a history title as the evidence for a value: `[DIRECTOR1_H1]` is the newest
//! history title with the item's director, `[DIRECTOR1_H2]` the one before. [`Slots::fill`] puts
//! the values back; training targets go the other way ([`Slots::delexicalise`]).
//!
//! A feature slot has two spellings, as the texts a model learns from wrote the value: `[GENRE1]`
//! as the catalogue lists it, `[genre1]` as prose writes it (in lower case, "a drama", with a
//! capital at a sentence's start, "Science fiction keeps coming up").

use tokenizers::Tokenizer;

use super::grounding::{clean_title, Class, Matcher, Mention, Target};
use crate::data::{Dataset, Feature, ItemIdx};
use crate::model::GenerationConfig;

/// How many values of one feature kind an item line shows, as text or as slots: enough to
/// characterise an item (three actors, not the whole cast) while keeping fifty history lines
/// inside a model's input.
pub const VALUES_PER_KIND: usize = 3;

/// The recommended item's title.
pub const ITEM: &str = "[ITEM]";

/// How many history titles have a slot: `[H1]` … `[H50]`, the default `dataset.history_len`.
pub const HISTORY_SLOTS: usize = 50;

/// Every slot token of `dataset`, whose items' features are of its kinds.
pub fn tokens(dataset: &Dataset) -> Vec<String> {
    let mut kinds: Vec<&str> =
        dataset.items.iter().flat_map(|i| &i.features).map(|f| f.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let mut tokens = vec![ITEM.to_owned()];
    tokens.extend((1..=HISTORY_SLOTS).map(|k| format!("[H{k}]")));
    for kind in &kinds {
        let base = slot_base(kind);
        for n in 1..=VALUES_PER_KIND {
            let name = format!("{}{n}", base.to_uppercase());
            tokens.push(format!("[{name}]"));
            tokens.push(format!("[{}]", name.to_lowercase()));
            tokens.extend((1..=EVIDENCE_SLOTS).map(|j| evidence_token(&name, j)));
        }
    }
    tokens
}

/// How many history titles per value have an evidence slot (`[DIRECTOR1_H1]`, `[DIRECTOR1_H2]`).
pub const EVIDENCE_SLOTS: usize = 2;

/// The evidence slot of the `j`-th newest history title sharing the value named `value`
/// (`DIRECTOR1`, 1 → `[DIRECTOR1_H1]`); [`Slots::value_of`] reads it back.
fn evidence_token(value: &str, j: usize) -> String {
    format!("[{value}_H{j}]")
}

/// What a slot stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stands {
    Title,
    Value,
}

/// What the slot named `name` (without brackets) stands for, when it is shaped as a slot:
/// `ITEM`, `H7` and `DIRECTOR1_H2` a title, `GENRE2` and `genre2` a value.
fn stands_for(name: &str) -> Option<Stands> {
    if name == &ITEM[1..ITEM.len() - 1] {
        return Some(Stands::Title);
    }
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
    let slot_like = !stem.is_empty()
        && stem.len() < name.len()
        && stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && (stem == stem.to_uppercase() || stem == stem.to_lowercase());
    slot_like.then_some(if stem == "H" || stem.ends_with("_H") { Stands::Title } else { Stands::Value })
}

/// Slots left in a text as written, not filled: (title slots, value slots). Each claims a title
/// or a value that does not exist for its pair — `[DIRECTOR1_H1]` when no history item shares the
/// item's director, `[GENRE3]` for an item with two genres — so the verdicts count them invented.
pub fn unfilled(text: &str) -> (usize, usize) {
    let (mut titles, mut values) = (0, 0);
    for (open, _) in text.match_indices('[') {
        let rest = &text[open + 1..];
        let Some(name) = rest.find(']').map(|close| &rest[..close]) else { continue };
        match stands_for(name) {
            Some(Stands::Title) => titles += 1,
            Some(Stands::Value) => values += 1,
            None => {}
        }
    }
    (titles, values)
}

/// Whether a model with this tokenizer reads and writes slots.
pub fn read_by(tokenizer: &Tokenizer) -> bool {
    tokenizer.token_to_id(&format!(" {ITEM}")).is_some()
}

/// A kind as it appears inside a slot name: letters and digits, anything else `_`.
fn slot_base(kind: &str) -> String {
    kind.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Value {
    feature: Feature,
    /// The slot's name without brackets or spelling: `GENRE1`.
    name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct HistoryTitle {
    item: ItemIdx,
    title: String,
    /// Indices into `Slots::values` of the values this history item shares with the item.
    shared: Vec<usize>,
}

/// The slots of one (history, item) pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slots {
    item: ItemIdx,
    title: String,
    /// The values the item's line shows, in line order.
    values: Vec<Value>,
    /// Newest first: `[H1]` is `history[0]`.
    history: Vec<HistoryTitle>,
}

impl Slots {
    /// The slots of `item` for a user whose history is `history` (oldest first; only its newest
    /// [`HISTORY_SLOTS`] items get one).
    pub fn new(dataset: &Dataset, history: &[ItemIdx], item: ItemIdx) -> Slots {
        let it = dataset.item(item);
        let mut values: Vec<Value> = Vec::new();
        for feature in &it.features {
            let base = slot_base(&feature.kind).to_uppercase();
            let shown = values.iter().filter(|v| v.feature.kind == feature.kind).count();
            if shown < VALUES_PER_KIND && !values.iter().any(|v| v.feature == *feature) {
                values.push(Value { feature: feature.clone(), name: format!("{base}{}", shown + 1) });
            }
        }
        let history = history
            .iter()
            .rev()
            .take(HISTORY_SLOTS)
            .map(|&h| {
                let features = &dataset.item(h).features;
                HistoryTitle {
                    item: h,
                    title: clean_title(&dataset.item(h).title),
                    shared: (0..values.len()).filter(|&v| features.contains(&values[v].feature)).collect(),
                }
            })
            .collect();
        Slots { item, title: clean_title(&it.title), values, history }
    }

    /// The history items that have a slot, oldest first.
    pub fn history_items(&self) -> Vec<ItemIdx> {
        self.history.iter().rev().map(|h| h.item).collect()
    }

    /// Only the newest `n` history titles keep their slots (those a cut prompt still shows).
    pub fn keep_newest(&mut self, n: usize) {
        self.history.truncate(n);
    }

    /// The item's prompt line, each value with the number of history items that share it and the
    /// evidence slots that cite them: `- [ITEM] — genre: [GENRE1] (14 seen: [GENRE1_H1],
    /// [GENRE1_H2]), [GENRE2]; director: [DIRECTOR1] (1 seen: [DIRECTOR1_H1])`. Naming the
    /// evidence tokens here makes which links exist a token the decoder can look up; from the
    /// counts alone the 7M Oracle chose its link independently of its input.
    pub fn item_line(&self) -> String {
        format!("- {ITEM}{}", self.values_text(&(0..self.values.len()).collect::<Vec<_>>(), true))
    }

    /// The history items (newest first, as indices into `history`) that share value `v`.
    fn evidence(&self, v: usize) -> impl Iterator<Item = usize> + '_ {
        self.history.iter().enumerate().filter(move |(_, h)| h.shared.contains(&v)).map(|(k, _)| k)
    }

    /// The history's prompt lines, oldest first: `- [H2] — director: [DIRECTOR1]` for a history
    /// item that shares the item's director, `- [H3]` for one that shares nothing.
    pub fn history_lines(&self) -> Vec<String> {
        let lines = self.history.iter().enumerate().rev();
        lines.map(|(k, h)| format!("- [H{}]{}", k + 1, self.values_text(&h.shared, false))).collect()
    }

    /// ` — kind: [KIND1], [KIND2]; other: [OTHER1]` for the values at `shown`, grouped by kind in
    /// the item's order (`counted`: each followed by ` (N seen: [KIND1_H1], …)` when N history
    /// items share it); empty when `shown` is.
    fn values_text(&self, shown: &[usize], counted: bool) -> String {
        let mut out = String::new();
        let mut kind: Option<&str> = None;
        for &v in shown {
            let value = &self.values[v];
            if kind == Some(value.feature.kind.as_str()) {
                out.push_str(", ");
            } else {
                out.push_str(if kind.is_none() { " — " } else { "; " });
                out.push_str(&value.feature.kind);
                out.push_str(": ");
                kind = Some(&value.feature.kind);
            }
            out.push_str(&format!("[{}]", value.name));
            let seen = self.evidence(v).count();
            if counted && seen > 0 {
                let cited = (1..=seen.min(EVIDENCE_SLOTS)).map(|j| evidence_token(&value.name, j));
                out.push_str(&format!(" ({seen} seen: {})", cited.collect::<Vec<_>>().join(", ")));
            }
        }
        out
    }

    /// The value a slot name (without brackets) stands for, in the spelling the name asks for
    /// (`sentence_start`: a lower-case spelling there gets its capital, as prose writes it).
    fn value_of(&self, name: &str, sentence_start: bool) -> Option<String> {
        if name == &ITEM[1..ITEM.len() - 1] {
            return Some(self.title.clone());
        }
        if let Some(k) = name.strip_prefix('H').and_then(|k| k.parse::<usize>().ok()) {
            return k.checked_sub(1).and_then(|k| self.history.get(k)).map(|h| h.title.clone());
        }
        let evidence = name.rsplit_once("_H").and_then(|(value, j)| Some((value, j.parse::<usize>().ok()?)));
        if let Some((value, j)) = evidence {
            let v = self.values.iter().position(|v| v.name == value)?;
            let k = self.evidence(v).nth(j.checked_sub(1)?)?;
            return Some(self.history[k].title.clone());
        }
        let value = self.values.iter().find(|v| v.name.eq_ignore_ascii_case(name))?;
        if name.starts_with(|c: char| c.is_ascii_uppercase()) {
            return Some(value.feature.value.clone());
        }
        let lower = value.feature.value.to_lowercase();
        let mut chars = lower.chars();
        Some(match chars.next() {
            Some(first) if sentence_start => first.to_uppercase().chain(chars).collect(),
            _ => lower,
        })
    }

    /// The ids of `tokenizer`'s slot tokens this pair has no value for: decoding suppresses them,
    /// so a model can only write a link its prompt gives evidence for.
    pub fn unavailable(&self, tokenizer: &Tokenizer) -> Vec<u32> {
        let mut ids: Vec<u32> = tokenizer
            .get_added_tokens_decoder()
            .iter()
            .filter_map(|(&id, token)| {
                let name = token.content.trim().strip_prefix('[')?.strip_suffix(']')?;
                (stands_for(name).is_some() && self.value_of(name, false).is_none()).then_some(id)
            })
            .collect();
        ids.sort_unstable();
        ids
    }

    /// `decoding` with this pair's unavailable slots suppressed as well.
    pub fn constrain(&self, tokenizer: &Tokenizer, decoding: &GenerationConfig) -> GenerationConfig {
        let mut suppress_tokens = self.unavailable(tokenizer);
        suppress_tokens.extend(&decoding.suppress_tokens);
        GenerationConfig { suppress_tokens, ..decoding.clone() }
    }

    /// The text a reader sees: every slot replaced by its value, and an "a" before a value that
    /// starts with a vowel made "an" (and the reverse), since the model wrote the article without
    /// seeing the value. A slot this pair has no value for (`[H9]` of an eight-item history) stays
    /// as written.
    pub fn fill(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 32);
        let mut rest = text;
        while let Some(open) = rest.find('[') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let sentence_start = out.trim_end().is_empty() || out.trim_end().ends_with(['.', '!', '?']);
            let value = after
                .find(']')
                .and_then(|close| Some((close, self.value_of(&after[..close], sentence_start)?)));
            match value {
                Some((close, value)) => {
                    fix_article(&mut out, &value);
                    out.push_str(&value);
                    rest = &after[close + 1..];
                }
                None => {
                    out.push('[');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// `text` with each mention of this pair's item, shown history titles and shown item values
    /// replaced by its slot (a plural "s" kept after it); mentions of anything else stay as
    /// written. A history title that is the evidence of an item value becomes that evidence slot
    /// (of the value mentioned nearest to it, when it is the evidence of several), any other
    /// `[Hk]`. `Err` names a title it mentions that has no slot here: a model reading these slots
    /// could only write it by spelling it.
    pub fn delexicalise(&self, matcher: &Matcher, text: &str) -> Result<String, String> {
        let grounding = matcher.ground(text, &self.history_items(), self.item);
        let value_of = |mention: &Mention<'_>| match mention.target {
            Target::Feature { feature, .. } if matches!(mention.class, Class::Grounded | Class::ItemOnly) => {
                self.values.iter().position(|v| v.feature == *feature)
            }
            _ => None,
        };
        let named: Vec<(usize, usize)> =
            grounding.mentions.iter().filter_map(|m| Some((m.span.start, value_of(m)?))).collect();
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        for mention in &grounding.mentions {
            let surface = &text[mention.span.clone()];
            let (mut start, slot) = match mention.target {
                Target::Title { item, title } => {
                    let slot = if item == self.item {
                        ITEM.to_owned()
                    } else {
                        let Some(k) = self.history.iter().position(|h| h.item == item) else {
                            return Err(title.to_owned());
                        };
                        self.evidence_slot(k, mention.span.start, &named)
                            .unwrap_or_else(|| format!("[H{}]", k + 1))
                    };
                    (article_start(text, mention.span.start, title), slot)
                }
                Target::Feature { .. } => {
                    let Some(value) = value_of(mention).map(|v| &self.values[v]) else {
                        continue;
                    };
                    let plural = surface.len() == value.feature.value.len() + 1
                        && surface.ends_with('s')
                        && !value.feature.value.ends_with('s');
                    let written = if plural { &surface[..surface.len() - 1] } else { surface };
                    let name = if written == value.feature.value {
                        value.name.clone()
                    } else {
                        value.name.to_lowercase()
                    };
                    (mention.span.start, format!("[{name}]{}", if plural { "s" } else { "" }))
                }
            };
            start = start.max(copied);
            out.push_str(&text[copied..start]);
            out.push_str(&slot);
            copied = mention.span.end;
        }
        out.push_str(&text[copied..]);
        Ok(out)
    }

    /// The evidence slot history title `k` fills, if it is among the newest [`EVIDENCE_SLOTS`]
    /// history items sharing some item value: of the value named nearest to `at` in the text
    /// (`named`: byte offset and value of each value mention), else of the first such value.
    fn evidence_slot(&self, k: usize, at: usize, named: &[(usize, usize)]) -> Option<String> {
        let rank = |v: usize| self.evidence(v).take(EVIDENCE_SLOTS).position(|e| e == k);
        let by_distance =
            named.iter().filter(|(_, v)| rank(*v).is_some()).min_by_key(|(pos, _)| pos.abs_diff(at));
        let v = match by_distance {
            Some(&(_, v)) => v,
            None => (0..self.values.len()).find(|&v| rank(v).is_some())?,
        };
        Some(evidence_token(&self.values[v].name, rank(v)? + 1))
    }
}

/// Where a title's mention starts when the text writes the title's leading article before the
/// matched span (the matcher leaves "The" out of "The Glass Harbor").
fn article_start(text: &str, span_start: usize, title: &str) -> usize {
    let Some(article) = ["The ", "A ", "An "].into_iter().find(|a| title.starts_with(a)) else {
        return span_start;
    };
    let before = &text[..span_start];
    match before.len().checked_sub(article.len()) {
        Some(at)
            if before.is_char_boundary(at)
                && before[at..].eq_ignore_ascii_case(article)
                && !before[..at].ends_with(char::is_alphanumeric) =>
        {
            at
        }
        _ => span_start,
    }
}

/// Makes the article that ends `out` ("a " or "an ") agree with `next`, the word about to follow.
fn fix_article(out: &mut String, next: &str) {
    let vowel = next.starts_with(|c: char| "aeiouAEIOU".contains(c));
    let word_start = out.trim_end_matches(' ').rfind(|c: char| !c.is_alphabetic()).map_or(0, |i| i + 1);
    let Some(word) = out.get(word_start..).map(str::trim_end) else { return };
    let fixed = match (word, vowel) {
        ("a", true) => "an",
        ("A", true) => "An",
        ("an", false) => "a",
        ("An", false) => "A",
        _ => return,
    };
    if out.ends_with(' ') {
        let spaces = out.len() - out.trim_end_matches(' ').len();
        out.replace_range(word_start..out.len() - spaces, fixed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Item;

    fn item(id: &str, title: &str, features: &[(&str, &str)]) -> Item {
        Item {
            id: id.to_owned(),
            title: title.to_owned(),
            year: Some(2000),
            features: features.iter().map(|(k, v)| Feature::new(*k, *v)).collect(),
        }
    }

    fn dataset() -> Dataset {
        let mut b = crate::data::DatasetBuilder::new("test");
        for it in [
            item(
                "m1",
                "Glass Harbor, The (2011)",
                &[
                    ("genre", "Adventure"),
                    ("genre", "Drama"),
                    ("director", "Ines Valdar"),
                    ("theme", "exile"),
                ],
            ),
            item("m2", "Crown and Station", &[("genre", "Drama"), ("director", "Ines Valdar")]),
            item("m3", "Edda's Tide", &[("genre", "Comedy")]),
            item("m4", "An Old Lamp", &[("genre", "Adventure"), ("theme", "exile")]),
            item("m5", "Nowhere Road", &[("genre", "Musical")]),
        ] {
            b.set_item(it);
        }
        b.build()
    }

    #[test]
    fn lines_number_the_history_from_the_newest() {
        let d = dataset();
        let slots = Slots::new(&d, &[1, 2, 3], 0);
        assert_eq!(
            slots.item_line(),
            "- [ITEM] — genre: [GENRE1] (1 seen: [GENRE1_H1]), [GENRE2] (1 seen: [GENRE2_H1]); \
             director: [DIRECTOR1] (1 seen: [DIRECTOR1_H1]); theme: [THEME1] (1 seen: [THEME1_H1])"
        );
        assert_eq!(
            slots.history_lines(),
            [
                "- [H3] — genre: [GENRE2]; director: [DIRECTOR1]",
                "- [H2]",
                "- [H1] — genre: [GENRE1]; theme: [THEME1]"
            ]
        );
        let mut kept = slots.clone();
        kept.keep_newest(1);
        assert_eq!(kept.history_lines(), ["- [H1] — genre: [GENRE1]; theme: [THEME1]"]);
        assert_eq!(kept.history_items(), [3]);
    }

    #[test]
    fn delexicalise_then_fill_gives_the_text_back() {
        let d = dataset();
        let matcher = Matcher::new(&d);
        let slots = Slots::new(&d, &[1, 2, 3], 0);
        let text = "The Glass Harbor is an adventure film by Ines Valdar, who also made Crown and Station; \
                    like An Old Lamp it turns on exile, and dramas are Ines Valdar's trade, unlike Edda's Tide.";
        let delex = slots.delexicalise(&matcher, text).unwrap();
        // A title that is the evidence of two values is that of the value named nearest to it;
        // one that is nobody's evidence keeps its place in the history.
        assert_eq!(
            delex,
            "[ITEM] is an [genre1] film by [DIRECTOR1], who also made [DIRECTOR1_H1]; like [THEME1_H1] it turns \
             on [THEME1], and [genre2]s are [DIRECTOR1]'s trade, unlike [H2]."
        );
        assert_eq!(slots.fill(&delex), text);
        assert_eq!(
            slots.fill("[GENRE2_H1], [GENRE1_H1], [GENRE1_H2]"),
            "Crown and Station, An Old Lamp, [GENRE1_H2]"
        );
    }

    #[test]
    fn a_title_without_a_slot_is_named() {
        let d = dataset();
        let matcher = Matcher::new(&d);
        let slots = Slots::new(&d, &[1, 2], 0);
        let err =
            slots.delexicalise(&matcher, "Like Nowhere Road, The Glass Harbor will please.").unwrap_err();
        assert_eq!(err, "Nowhere Road");
        // A value the item does not have stays as written: the filter judges it, not the slots.
        let kept = slots.delexicalise(&matcher, "A musical, like The Glass Harbor.").unwrap();
        assert_eq!(kept, "A musical, like [ITEM].");
    }

    #[test]
    fn fill_fixes_articles_and_keeps_unknown_slots() {
        let d = dataset();
        let slots = Slots::new(&d, &[1], 0);
        assert_eq!(
            slots.fill("[ITEM] is a [genre1] film, an [genre2] too."),
            "The Glass Harbor is an adventure film, a drama too."
        );
        assert_eq!(
            slots.fill("A [genre1] tale like [H1], not [H4] or [x]."),
            "An adventure tale like Crown and Station, not [H4] or [x]."
        );
        assert_eq!(slots.fill("[genre2] it is. [genre1] too"), "Drama it is. Adventure too");
        let left = slots
            .fill("[ITEM] by [DIRECTOR1], like [DIRECTOR1_H1], [GENRE2_H2] and [H7]; a [GENRE3] film [sic] of [1999].");
        assert_eq!(unfilled(&left), (2, 1), "{left}");
    }

    #[test]
    fn slot_tokens_cover_every_kind_in_every_form() {
        let tokens = tokens(&dataset());
        assert_eq!(tokens.len(), 1 + HISTORY_SLOTS + 3 * (2 + EVIDENCE_SLOTS) * VALUES_PER_KIND);
        for token in ["[DIRECTOR3]", "[genre1]", "[THEME3_H2]"] {
            assert!(tokens.contains(&token.to_owned()), "{token}");
        }
        assert_eq!(slot_base("lead actor"), "lead_actor");
    }
}

//! Slots: delexicalised prompts and explanations, as data-to-text systems write them
//! (docs/EMBEDDED_MODELS.md, "Slots"). A model whose tokenizer has the `[ITEM]` token reads the
//! recommended item as `[ITEM]`, the values its line shows as `[GENRE1]`, `[DIRECTOR1]`, …, and
//! each history title as `[H1]` (the newest), `[H2]`, …, with the item's values that history item
//! shares; it writes its explanation in the same tokens, and [`Slots::fill`] puts the values back.
//! Training targets go the other way ([`Slots::delexicalise`]).
//!
//! A feature slot has two spellings, as the texts a model learns from wrote the value: `[GENRE1]`
//! as the catalogue lists it, `[genre1]` as prose writes it (in lower case, "a drama", with a
//! capital at a sentence's start, "Science fiction keeps coming up").

use tokenizers::Tokenizer;

use super::grounding::{clean_title, Class, Matcher, Target};
use crate::data::{Dataset, Feature, ItemIdx};

/// How many values of one feature kind an item line shows, as text or as slots: enough to
/// characterise an item (three actors, not the whole cast) while keeping fifty history lines
/// inside a model's input.
pub const VALUES_PER_KIND: usize = 3;

/// The recommended item's title.
pub const ITEM: &str = "[ITEM]";

/// How many history titles have a slot: `[H1]` … `[H50]`, the default `dataset.history_len`.
pub const HISTORY_SLOTS: usize = 50;

/// Every slot token of a dataset whose features are of `kinds`.
pub fn tokens(kinds: &[&str]) -> Vec<String> {
    let mut tokens = vec![ITEM.to_owned()];
    tokens.extend((1..=HISTORY_SLOTS).map(|k| format!("[H{k}]")));
    for kind in kinds {
        let base = slot_base(kind);
        for n in 1..=VALUES_PER_KIND {
            tokens.push(format!("[{}{n}]", base.to_uppercase()));
            tokens.push(format!("[{}{n}]", base.to_lowercase()));
        }
    }
    tokens
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

    /// The item's prompt line: `- [ITEM] — genre: [GENRE1], [GENRE2]; director: [DIRECTOR1]`.
    pub fn item_line(&self) -> String {
        format!("- {ITEM}{}", self.values_text(&(0..self.values.len()).collect::<Vec<_>>()))
    }

    /// The history's prompt lines, oldest first: `- [H2] — director: [DIRECTOR1]` for a history
    /// item that shares the item's director, `- [H3]` for one that shares nothing.
    pub fn history_lines(&self) -> Vec<String> {
        let lines = self.history.iter().enumerate().rev();
        lines.map(|(k, h)| format!("- [H{}]{}", k + 1, self.values_text(&h.shared))).collect()
    }

    /// ` — kind: [KIND1], [KIND2]; other: [OTHER1]` for the values at `shown`, grouped by kind in
    /// the item's order; empty when `shown` is.
    fn values_text(&self, shown: &[usize]) -> String {
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
    /// written. `Err` names a title it mentions that has no slot here: a model reading these slots
    /// could only write it by spelling it.
    pub fn delexicalise(&self, matcher: &Matcher, text: &str) -> Result<String, String> {
        let grounding = matcher.ground(text, &self.history_items(), self.item);
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        for mention in &grounding.mentions {
            let surface = &text[mention.span.clone()];
            let (mut start, slot) = match mention.target {
                Target::Title { item, title } => {
                    let slot = if item == self.item {
                        ITEM.to_owned()
                    } else {
                        match self.history.iter().position(|h| h.item == item) {
                            Some(k) => format!("[H{}]", k + 1),
                            None => return Err(title.to_owned()),
                        }
                    };
                    (article_start(text, mention.span.start, title), slot)
                }
                Target::Feature { feature, .. } => {
                    let of_item = matches!(mention.class, Class::Grounded | Class::ItemOnly);
                    let Some(value) = self.values.iter().find(|v| of_item && v.feature == *feature) else {
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
            "- [ITEM] — genre: [GENRE1], [GENRE2]; director: [DIRECTOR1]; theme: [THEME1]"
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
                    like An Old Lamp it turns on exile, and dramas are Ines Valdar's trade.";
        let delex = slots.delexicalise(&matcher, text).unwrap();
        assert_eq!(
            delex,
            "[ITEM] is an [genre1] film by [DIRECTOR1], who also made [H3]; like [H1] it turns on [THEME1], \
             and [genre2]s are [DIRECTOR1]'s trade."
        );
        assert_eq!(slots.fill(&delex), text);
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
    }

    #[test]
    fn slot_tokens_cover_every_kind_in_both_spellings() {
        let tokens = tokens(&["genre", "lead actor"]);
        assert_eq!(tokens.len(), 1 + HISTORY_SLOTS + 2 * 2 * VALUES_PER_KIND);
        assert!(tokens.contains(&"[LEAD_ACTOR3]".to_owned()) && tokens.contains(&"[genre1]".to_owned()));
    }
}

//! Prompt templates: plain-text files with `{history}` and `{item}` placeholders, loaded at run
//! time so users can edit them, rendered from dataset items and cut to a model's input length.
//!
//! The rule for a prompt longer than the model reads: the template's own text (the instruction)
//! and the recommended item's line are always kept; history items are left out oldest first until
//! the prompt fits. A template that does not fit with the item alone is an error.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::config::PromptSettings;
use crate::data::Item;
use crate::explain::grounding::clean_title;
use crate::explain::slots::{Slots, VALUES_PER_KIND};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Text(String),
    History,
    Item,
}

/// A parsed template. Rendering substitutes each placeholder once, so an item whose title
/// happens to contain "{history}" is printed as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromptTemplate {
    origin: String,
    segments: Vec<Segment>,
}

/// A rendered prompt and how much of the history it kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    pub text: String,
    /// History items shown (the newest ones).
    pub history_used: usize,
    /// Oldest history items not shown: those the prompt kind never shows (the Prism's
    /// `prism_history_len`) and those cut to fit the token budget.
    pub history_dropped: usize,
    /// Of `history_dropped`, those cut to fit the token budget.
    pub history_cut: usize,
    /// Tokens of `text`, as counted for the budget.
    pub tokens: usize,
    /// Tokens the cut history items took: the whole prompt's count minus `tokens`.
    pub tokens_dropped: usize,
    /// What the slots of a slot-reading model stand for (`None` for a model that reads text).
    pub slots: Option<Slots>,
}

impl PromptTemplate {
    pub fn load(path: &Path) -> Result<PromptTemplate> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read prompt template {}", path.display()))?;
        PromptTemplate::parse(&text, &path.display().to_string())
    }

    /// Parses a template; `origin` names it in errors. Both placeholders are required, and any
    /// other `{word}` is taken for a misspelt placeholder.
    pub fn parse(text: &str, origin: &str) -> Result<PromptTemplate> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            literal.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let name_len =
                after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            let name = &after[..name_len];
            if name_len == 0 || !after[name_len..].starts_with('}') {
                literal.push('{');
                rest = after;
                continue;
            }
            let placeholder = match name {
                "history" => Segment::History,
                "item" => Segment::Item,
                other => {
                    let line = text[..text.len() - rest.len() + open].matches('\n').count() + 1;
                    bail!(
                        "prompt template {origin}, line {line}: unknown placeholder {{{other}}}; \
                         the placeholders are {{history}} and {{item}}"
                    );
                }
            };
            if !literal.is_empty() {
                segments.push(Segment::Text(std::mem::take(&mut literal)));
            }
            segments.push(placeholder);
            rest = &after[name_len + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            segments.push(Segment::Text(literal));
        }
        for (segment, name) in [(Segment::History, "{history}"), (Segment::Item, "{item}")] {
            if !segments.contains(&segment) {
                bail!("prompt template {origin} has no {name} placeholder; it needs both {{history}} and {{item}}");
            }
        }
        Ok(PromptTemplate { origin: origin.to_owned(), segments })
    }

    /// Renders the template with as many of the newest history lines (oldest first, as
    /// [`item_line`] or [`Slots::history_lines`] write them) as fit in `max_tokens`, as counted by
    /// `count_tokens` (the model's tokenizer, or any estimate).
    pub fn render_within(
        &self,
        lines: &[String],
        item: &str,
        max_tokens: usize,
        count_tokens: impl Fn(&str) -> usize,
    ) -> Result<Prompt> {
        let render = |keep: usize| self.render_lines(&lines[lines.len() - keep..], item);
        let whole = render(lines.len());
        let whole_tokens = count_tokens(&whole);
        if whole_tokens <= max_tokens {
            return Ok(Prompt {
                text: whole,
                history_used: lines.len(),
                history_dropped: 0,
                history_cut: 0,
                tokens: whole_tokens,
                tokens_dropped: 0,
                slots: None,
            });
        }
        // The token count grows with the number of kept lines, so the largest fitting number is
        // found by bisection: a few tokenizer calls instead of one per history item.
        let (mut fits, mut too_many) = (0, lines.len());
        let empty_tokens = count_tokens(&render(0));
        if empty_tokens > max_tokens {
            bail!(
                "prompt template {} takes {empty_tokens} tokens with the item alone and no history, \
                 more than the model's input length of {max_tokens}; consider a shorter template",
                self.origin
            );
        }
        let mut fits_tokens = empty_tokens;
        while too_many - fits > 1 {
            let mid = (fits + too_many) / 2;
            let tokens = count_tokens(&render(mid));
            if tokens <= max_tokens {
                (fits, fits_tokens) = (mid, tokens);
            } else {
                too_many = mid;
            }
        }
        let cut = lines.len() - fits;
        Ok(Prompt {
            text: render(fits),
            history_used: fits,
            history_dropped: cut,
            history_cut: cut,
            tokens: fits_tokens,
            tokens_dropped: whole_tokens.saturating_sub(fits_tokens),
            slots: None,
        })
    }

    /// Renders the template with these history lines (oldest first) and item line.
    pub fn render_lines(&self, history: &[String], item: &str) -> String {
        let history_text = if history.is_empty() { "(no history)".to_owned() } else { history.join("\n") };
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.push_str(text),
                Segment::History => out.push_str(&history_text),
                Segment::Item => out.push_str(item),
            }
        }
        out
    }
}

/// One item as a prompt line: cleaned title, year, and up to three values per feature kind, e.g.
/// `The Glass Harbor (2011) — genre: Drama, Mystery; director: Ines Valdar`.
pub fn item_line(item: &Item) -> String {
    let mut line = format!("- {}", clean_title(&item.title));
    if let Some(year) = item.year {
        line.push_str(&format!(" ({year})"));
    }
    let mut kinds: Vec<(&str, Vec<&str>)> = Vec::new();
    for feature in &item.features {
        match kinds.iter_mut().find(|(kind, _)| *kind == feature.kind) {
            Some((_, values)) if values.len() < VALUES_PER_KIND => values.push(&feature.value),
            Some(_) => {}
            None => kinds.push((&feature.kind, vec![&feature.value])),
        }
    }
    for (i, (kind, values)) in kinds.iter().enumerate() {
        line.push_str(if i == 0 { " — " } else { "; " });
        line.push_str(&format!("{kind}: {}", values.join(", ")));
    }
    line
}

/// The catalogue's named entities as prompts and explanations write them: every item's title
/// (cleaned as in its line), every feature value (people, genres, themes), and each genre also in
/// lower case ("a drama"), sorted. The embedded models give each a token of its own
/// (`[tokenizer] entities = "catalogue"`, docs/EMBEDDED_MODELS.md).
pub fn catalogue_entities(items: &[Item]) -> Vec<String> {
    let mut entities = std::collections::BTreeSet::new();
    for item in items {
        entities.insert(clean_title(&item.title));
        for feature in &item.features {
            entities.insert(feature.value.trim().to_owned());
            if feature.kind == "genre" {
                entities.insert(feature.value.trim().to_lowercase());
            }
        }
    }
    entities.into_iter().filter(|e| !e.is_empty()).collect()
}

/// The `config.json` key where a Prism checkpoint records how many history items its prompt
/// showed in training (`prism train` and `prism distill` write it), so that it reads the prompt it
/// learnt from whatever `[prompts] prism_history_len` says; transformers keeps it as an attribute.
pub const HISTORY_LEN_KEY: &str = "prism_history_len";

/// The Prism history window a checkpoint's `config.json` records, if it records one.
pub fn recorded_history_len(config: &serde_json::Value) -> Result<Option<usize>> {
    match config.get(HISTORY_LEN_KEY) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => match value.as_u64() {
            Some(n) if n > 0 => Ok(Some(n as usize)),
            _ => bail!("config.json: `{HISTORY_LEN_KEY}` must be a positive whole number of history items, not {value}"),
        },
    }
}

/// The Oracle's and the Prism's templates, as configured.
#[derive(Clone, Debug)]
pub struct Prompts {
    pub oracle: PromptTemplate,
    pub prism: PromptTemplate,
    /// How many of the newest history items the Prism's short prompt shows.
    pub prism_history_len: usize,
}

impl Prompts {
    pub fn load(settings: &PromptSettings) -> Result<Prompts> {
        Ok(Prompts {
            oracle: PromptTemplate::load(&settings.oracle)?,
            prism: PromptTemplate::load(&settings.prism)?,
            prism_history_len: settings.prism_history_len,
        })
    }

    /// The Oracle's prompt: the whole history it is given (as lines, oldest first), cut to
    /// `max_tokens`.
    pub fn oracle(
        &self,
        history: &[String],
        item: &str,
        max_tokens: usize,
        count_tokens: impl Fn(&str) -> usize,
    ) -> Result<Prompt> {
        self.oracle.render_within(history, item, max_tokens, count_tokens)
    }

    /// How many history items the Prism's prompt shows: the window its checkpoint `recorded`
    /// ([`recorded_history_len`]), else the configured one.
    pub fn prism_history_len(&self, recorded: Option<usize>) -> usize {
        recorded.unwrap_or(self.prism_history_len)
    }

    /// The Prism's prompt: the last `history_len` history lines, cut to `max_tokens`.
    pub fn prism(
        &self,
        history: &[String],
        item: &str,
        history_len: usize,
        max_tokens: usize,
        count_tokens: impl Fn(&str) -> usize,
    ) -> Result<Prompt> {
        let recent = &history[history.len().saturating_sub(history_len)..];
        let mut prompt = self.prism.render_within(recent, item, max_tokens, count_tokens)?;
        prompt.history_dropped += history.len() - recent.len();
        Ok(prompt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Feature;

    fn item(title: &str, year: Option<i32>, features: &[(&str, &str)]) -> Item {
        Item {
            id: title.to_lowercase(),
            title: title.to_owned(),
            year,
            features: features.iter().map(|(k, v)| Feature::new(*k, *v)).collect(),
        }
    }

    fn words(text: &str) -> usize {
        text.split_whitespace().count()
    }

    #[test]
    fn placeholders_are_substituted_once() {
        let t = PromptTemplate::parse("H:\n{history}\nI: {item}\n{not a placeholder}", "t.txt").unwrap();
        let history = item("Odd {history} Title", None, &[]);
        let target = item("Matrix, The (1999)", Some(1999), &[("genre", "Sci-Fi")]);
        assert_eq!(
            t.render_lines(&[item_line(&history)], &item_line(&target)),
            "H:\n- Odd {history} Title\nI: - The Matrix (1999) — genre: Sci-Fi\n{not a placeholder}"
        );
    }

    #[test]
    fn missing_and_unknown_placeholders_name_the_file() {
        let err = PromptTemplate::parse("only {item}", "configs/prompts/x.txt").unwrap_err().to_string();
        assert!(err.contains("configs/prompts/x.txt") && err.contains("{history}"), "{err}");
        let err = PromptTemplate::parse("{history}\n\n{itme}", "y.txt").unwrap_err().to_string();
        assert!(err.contains("y.txt, line 3") && err.contains("{itme}"), "{err}");
    }

    #[test]
    fn item_line_caps_values_per_kind() {
        let it = item(
            "Heat",
            Some(1995),
            &[
                ("genre", "Crime"),
                ("actor", "A"),
                ("actor", "B"),
                ("actor", "C"),
                ("actor", "D"),
                ("genre", "Drama"),
            ],
        );
        assert_eq!(item_line(&it), "- Heat (1995) — genre: Crime, Drama; actor: A, B, C");
    }

    #[test]
    fn truncation_keeps_the_newest_items() {
        let t = PromptTemplate::parse("{history}\n=> {item}", "t.txt").unwrap();
        let refs: Vec<String> = (0..20).map(|i| item_line(&item(&format!("Film{i}"), None, &[]))).collect();
        let target = item_line(&item("Target", None, &[]));
        // Each history line is 2 words, the item line 3 ("=>", "-", "Target").
        let p = t.render_within(&refs, &target, 3 + 2 * 5, words).unwrap();
        assert_eq!(p.history_used, 5);
        assert_eq!(p.history_dropped, 15);
        assert_eq!((p.history_cut, p.tokens, p.tokens_dropped), (15, 13, 30));
        assert!(p.text.starts_with("- Film15\n") && p.text.contains("- Film19\n=> - Target"), "{}", p.text);
        let all = t.render_within(&refs, &target, 1000, words).unwrap();
        assert_eq!((all.history_used, all.history_dropped, all.tokens_dropped), (20, 0, 0));
        assert!(t.render_within(&refs, &target, 2, words).unwrap_err().to_string().contains("t.txt"));
    }

    #[test]
    fn prism_prompt_sees_only_its_recent_history() {
        let p = Prompts {
            oracle: PromptTemplate::parse("{history}|{item}", "o").unwrap(),
            prism: PromptTemplate::parse("{history}|{item}", "p").unwrap(),
            prism_history_len: 2,
        };
        let refs: Vec<String> = (0..4).map(|i| item_line(&item(&format!("F{i}"), None, &[]))).collect();
        let target = item_line(&item("T", None, &[]));
        let prism = p.prism(&refs, &target, p.prism_history_len(None), 100, words).unwrap();
        assert_eq!(prism.text, "- F2\n- F3|- T");
        assert_eq!((prism.history_dropped, prism.history_cut, prism.tokens_dropped), (2, 0, 0));
        assert_eq!(p.oracle(&refs, &target, 100, words).unwrap().history_used, 4);
        let recorded = p.prism(&refs, &target, p.prism_history_len(Some(3)), 100, words).unwrap();
        assert_eq!((recorded.text.as_str(), recorded.history_dropped), ("- F1\n- F2\n- F3|- T", 1));
    }

    #[test]
    fn a_checkpoint_records_its_history_window_under_one_key() {
        assert_eq!(recorded_history_len(&serde_json::json!({"d_model": 8})).unwrap(), None);
        assert_eq!(recorded_history_len(&serde_json::json!({HISTORY_LEN_KEY: 20})).unwrap(), Some(20));
        for bad in
            [serde_json::json!(0), serde_json::json!(-3), serde_json::json!("20"), serde_json::json!(2.5)]
        {
            let err =
                recorded_history_len(&serde_json::json!({HISTORY_LEN_KEY: bad})).unwrap_err().to_string();
            assert!(err.contains("config.json") && err.contains(HISTORY_LEN_KEY), "{err}");
        }
    }

    #[test]
    fn shipped_templates_parse() {
        let root = crate::config::project_root().join("configs/prompts");
        for name in ["oracle.txt", "prism.txt"] {
            PromptTemplate::load(&root.join(name)).unwrap();
        }
    }
}

//! Explanations another system wrote beforehand, looked up by (user id, item id): JSON lines of
//! `{"user","item","model"?,"text","latency_ms"?}` from any engine (`prism explain --out`, the
//! distillation job's `explanations.jsonl`, transformers or vLLM elsewhere). The explorer shows
//! them as a `file:` column.
//!
//! Rules: ids are strings or non-negative integers; `latency_ms`, when present, is a finite
//! non-negative number (else the system has no recorded latency); a file whose rows name more
//! than one model must be read for one of them; a (user, item) pair may appear once among the rows
//! kept. Errors name the file, the line and the field.

use std::collections::{BTreeSet, HashMap};
use std::io::BufRead;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

/// One precomputed explanation.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedRow {
    pub text: String,
    pub latency_ms: Option<f64>,
}

/// The explanations of one system by (user id, item id).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recorded {
    rows: HashMap<(String, String), RecordedRow>,
}

impl Recorded {
    /// Reads `path`, keeping the rows of `model` when given; see [`Recorded::parse`].
    pub fn read(path: &Path, model: Option<&str>) -> Result<Recorded> {
        let file = std::fs::File::open(path)
            .with_context(|| format!("cannot open explanation file {}", path.display()))?;
        Recorded::parse(std::io::BufReader::new(file), &path.display().to_string(), model)
    }

    /// Parses JSON lines; `origin` names the source in errors. Blank lines are skipped.
    pub fn parse(reader: impl BufRead, origin: &str, model: Option<&str>) -> Result<Recorded> {
        let mut rows = HashMap::new();
        // Keyed by model too: a file of several models is reported as such, not as duplicates.
        let mut lines_of: HashMap<(Option<String>, String, String), usize> = HashMap::new();
        let mut models = BTreeSet::new();
        let mut unnamed = None;
        for (index, line) in reader.lines().enumerate() {
            let line_no = index + 1;
            let at = |msg: String| anyhow!("{origin}, line {line_no}: {msg}");
            let line = line.map_err(|e| at(format!("cannot read: {e}")))?;
            if line.trim().is_empty() {
                continue;
            }
            let value: serde_json::Value =
                serde_json::from_str(&line).map_err(|e| at(format!("not valid JSON: {e}")))?;
            let Some(object) = value.as_object() else {
                return Err(at("expected a JSON object with fields user, item, text".into()));
            };
            let field = |name: &str, id_like: bool| -> Result<Option<String>> {
                match object.get(name) {
                    None | Some(serde_json::Value::Null) => Ok(None),
                    Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                    Some(serde_json::Value::Number(n)) if id_like && n.is_u64() => Ok(Some(n.to_string())),
                    Some(other) => {
                        let expected =
                            if id_like { "a string or a non-negative integer" } else { "a string" };
                        Err(at(format!("field `{name}` must be {expected}, found {other}")))
                    }
                }
            };
            let required = |name: &str, id_like: bool| -> Result<String> {
                field(name, id_like)?.ok_or_else(|| at(format!("field `{name}` is missing")))
            };
            let (user, item, text) =
                (required("user", true)?, required("item", true)?, required("text", false)?);
            let row_model = field("model", false)?;
            if let Some(m) = &row_model {
                models.insert(m.clone());
            }
            match (&row_model, model) {
                (Some(m), Some(wanted)) if m != wanted => continue,
                (Some(_), _) => {}
                (None, Some(wanted)) => {
                    return Err(at(format!(
                        "field `model` is missing, so the row cannot be kept for {wanted:?}"
                    )))
                }
                (None, None) => {
                    unnamed.get_or_insert(line_no);
                }
            }
            let latency_ms = match object.get("latency_ms") {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::Number(n)) => match n.as_f64() {
                    Some(ms) if ms.is_finite() && ms >= 0.0 => Some(ms),
                    _ => {
                        return Err(at(format!(
                            "field `latency_ms` must be a non-negative number, found {n}"
                        )))
                    }
                },
                Some(other) => {
                    return Err(at(format!(
                        "field `latency_ms` must be a non-negative number, found {other}"
                    )))
                }
            };
            if let Some(first) = lines_of.insert((row_model, user.clone(), item.clone()), line_no) {
                return Err(at(format!(
                    "user {user:?} and item {item:?} were explained already on line {first}"
                )));
            }
            rows.insert((user, item), RecordedRow { text, latency_ms });
        }
        if model.is_none() && models.len() + usize::from(unnamed.is_some()) > 1 {
            let names: Vec<String> = models.iter().map(|m| format!("{m:?}")).collect();
            bail!(
                "{origin} has rows of several models ({}{}); choose one with file:PATH#MODEL",
                names.join(", "),
                unnamed.map(|l| format!(", and rows without a model from line {l}")).unwrap_or_default()
            );
        }
        if let (Some(wanted), true) = (model, rows.is_empty()) {
            let names: Vec<&str> = models.iter().map(String::as_str).collect();
            bail!("{origin} has no rows of model {wanted:?} (it has: {})", names.join(", "));
        }
        Ok(Recorded { rows })
    }

    /// The explanation of `item` for `user`, if the file has one.
    pub fn get(&self, user: &str, item: &str) -> Option<&RecordedRow> {
        self.rows.get(&(user.to_owned(), item.to_owned()))
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, model: Option<&str>) -> Result<Recorded> {
        Recorded::parse(text.as_bytes(), "f.jsonl", model)
    }

    #[test]
    fn rows_with_and_without_latency_and_integer_ids() {
        let r = parse(
            "{\"user\": \"u1\", \"item\": 7, \"text\": \"A drama.\", \"latency_ms\": 12.5}\n\n\
             {\"user\": 2, \"item\": \"m2\", \"text\": \"A comedy.\", \"latency_ms\": null}\n",
            None,
        )
        .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r.get("u1", "7"), Some(&RecordedRow { text: "A drama.".into(), latency_ms: Some(12.5) }));
        assert_eq!(r.get("2", "m2").unwrap().latency_ms, None);
        assert_eq!(r.get("u1", "m2"), None);
    }

    #[test]
    fn several_models_need_a_choice() {
        let text = "{\"user\":\"u\",\"item\":\"i\",\"model\":\"oracle\",\"text\":\"a\"}\n\
                    {\"user\":\"u\",\"item\":\"i\",\"model\":\"prism\",\"text\":\"b\"}\n";
        let err = parse(text, None).unwrap_err().to_string();
        assert!(err.contains("several models (\"oracle\", \"prism\")") && err.contains("#MODEL"), "{err}");
        assert_eq!(parse(text, Some("prism")).unwrap().get("u", "i").unwrap().text, "b");
        let err = parse(text, Some("peter")).unwrap_err().to_string();
        assert!(err.contains("no rows of model \"peter\" (it has: oracle, prism)"), "{err}");
    }

    #[test]
    fn bad_rows_name_the_line_and_field() {
        for (text, expected) in [
            ("{\"user\":\"u\",\"item\":\"i\"}", "line 1: field `text` is missing"),
            ("\n{\"user\":-1,\"item\":\"i\",\"text\":\"t\"}", "line 2: field `user` must be a string or a non"),
            ("{\"user\":\"u\",\"item\":\"i\",\"text\":\"t\",\"latency_ms\":-3}", "field `latency_ms` must be"),
            ("{\"user\":\"u\",\"item\":\"i\",\"text\":\"t\",\"latency_ms\":\"fast\"}", "field `latency_ms`"),
            ("[1]", "line 1: expected a JSON object"),
            ("{\"user\":", "line 1: not valid JSON"),
            (
                "{\"user\":\"u\",\"item\":\"i\",\"text\":\"t\"}\n{\"user\":\"u\",\"item\":\"i\",\"text\":\"s\"}",
                "line 2: user \"u\" and item \"i\" were explained already on line 1",
            ),
        ] {
            let err = parse(text, None).unwrap_err().to_string();
            assert!(err.starts_with("f.jsonl, line") && err.contains(expected), "{text}: {err}");
        }
        let err = parse("{\"user\":\"u\",\"item\":\"i\",\"text\":\"t\"}", Some("p")).unwrap_err().to_string();
        assert!(err.contains("field `model` is missing"), "{err}");
    }
}

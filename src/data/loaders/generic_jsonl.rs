//! The project's own generic JSON-lines format (docs/DATA_FORMATS.md): `items.jsonl[.gz]`,
//! `interactions.jsonl[.gz]` and an optional `dataset.json` describing the dataset.

use std::borrow::Cow;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ids::Ids;
use super::lines::{for_each_line, json, FieldError, Policy, Record, Text};
use super::range::plausible_year;
use super::text::push_feature;
use super::{finish, require_file, Format, LoadOptions};
use crate::data::{Dataset, DatasetBuilder, Interaction, Item, Reference};

/// The optional `dataset.json`: what the explorer's About panel says about the dataset.
/// Keys other than these are ignored, so generators may record more (seeds, versions).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub synthetic: bool,
    #[serde(default)]
    pub description: Option<String>,
}

/// Reads `dir/dataset.json` if there is one.
pub fn read_info(dir: &Path) -> Result<Option<DatasetInfo>> {
    let path = dir.join("dataset.json");
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let info = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!("{}:{}: column {}: {}", path.display(), e.line(), e.column(), json::reason(&e))
    })?;
    Ok(Some(info))
}

pub fn load(dir: &Path, options: &LoadOptions) -> Result<Dataset> {
    read_info(dir)?;
    let mut builder = DatasetBuilder::new(Format::GenericJsonl.name());
    let mut policy = Policy::new(options.lenient);
    let items = require_file(dir, &["items.jsonl", "items.jsonl.gz"], Format::GenericJsonl)?;
    for_each_line(&items, Text::Utf8, &mut policy, |line, record| {
        let item = parse_item(&json::parse_object(line)?, record)?;
        if builder.item_by_id(&item.id).is_some() {
            return Err(FieldError::field("item", format!("{:?} is listed twice", item.id)));
        }
        builder.set_item(item);
        Ok(())
    })?;
    let mut ids = Ids::default();
    let interactions =
        require_file(dir, &["interactions.jsonl", "interactions.jsonl.gz"], Format::GenericJsonl)?;
    for_each_line(&interactions, Text::Utf8, &mut policy, |line, record| {
        let row = parse_interaction(line, record)?;
        let item = ids
            .known_item(&builder, &row.item)
            .ok_or_else(|| FieldError::field("item", format!("{:?} is not in items.jsonl", row.item)))?;
        let user = ids.user(&mut builder, &row.user);
        let reference =
            row.reference.map(|text| Box::new(Reference { text: text.into_owned(), noisy: row.noisy }));
        let (rating, timestamp) = (row.rating, row.timestamp);
        builder.push_interaction(Interaction { user, item, rating, timestamp, reference });
        Ok(())
    })?;
    finish(builder, policy)
}

/// One interaction line, as written.
#[derive(Debug, PartialEq)]
struct Row<'a> {
    user: Cow<'a, str>,
    item: Cow<'a, str>,
    rating: f32,
    timestamp: i64,
    reference: Option<Cow<'a, str>>,
    noisy: bool,
}

/// The usual shape of an interaction line, deserialized straight from the text: building a
/// `Value` tree per line (and dropping it) costs several times more in debug builds.
#[derive(Deserialize)]
struct Usual<'a> {
    #[serde(borrow)]
    user: Cow<'a, str>,
    #[serde(borrow)]
    item: Cow<'a, str>,
    rating: Option<f64>,
    timestamp: i64,
    #[serde(borrow, default)]
    reference: Option<Cow<'a, str>>,
    noisy: Option<bool>,
}

/// Reads a line through the fast [`Usual`] shape; anything else (ids written as numbers, quoted
/// numbers, blank ids, errors) takes the checked path, which names the key at fault. A
/// `reference` or `noisy` of the wrong type is left missing.
fn parse_interaction<'l>(line: &'l str, record: &mut Record) -> Result<Row<'l>, FieldError> {
    if let Ok(u) = serde_json::from_str::<Usual>(line) {
        let blank = |id: &str| id.is_empty() || id.trim_ascii().len() != id.len();
        if !blank(&u.user) && !blank(&u.item) {
            return Ok(Row {
                user: u.user,
                item: u.item,
                rating: u.rating.unwrap_or(1.0) as f32,
                timestamp: u.timestamp,
                reference: u.reference,
                noisy: u.noisy.unwrap_or(false),
            });
        }
    }
    let obj = json::parse_object(line)?;
    Ok(Row {
        user: Cow::Owned(json::id(&obj, "user")?.into_owned()),
        item: Cow::Owned(json::id(&obj, "item")?.into_owned()),
        rating: json::opt_f64(&obj, "rating")?.unwrap_or(1.0) as f32,
        timestamp: json::i64(&obj, "timestamp")?,
        reference: json::optional(record, &obj, "reference", json::opt_str).map(|t| Cow::Owned(t.to_owned())),
        noisy: json::optional(record, &obj, "noisy", json::opt_bool).unwrap_or(false),
    })
}

/// An item: `item` and `title` are required; a `year` that is not a plausible integer and
/// `features` (or one kind of them) of the wrong type are left missing.
fn parse_item(obj: &json::Object, record: &mut Record) -> Result<Item, FieldError> {
    let id = json::id(obj, "item")?.into_owned();
    let title =
        json::opt_str(obj, "title")?.ok_or_else(|| FieldError::field("title", "missing"))?.trim().to_owned();
    let year = match json::optional(record, obj, "year", json::opt_i64) {
        Some(y) if plausible_year(y) => i32::try_from(y).ok(),
        Some(y) => record.unparsed("year", &y.to_string()),
        None => None,
    };
    let mut features = Vec::new();
    match obj.get("features") {
        None | Some(Value::Null) => {}
        Some(Value::Object(kinds)) => {
            for (kind, values) in kinds {
                let key = format!("features.{kind}");
                let mut found = Vec::new();
                match json::strings(values, &key, &mut found) {
                    Ok(()) => found.into_iter().for_each(|value| push_feature(&mut features, kind, value)),
                    Err(_) => {
                        record.unparsed::<()>(&key, &json::shown(values));
                    }
                }
            }
        }
        Some(other) => {
            record.unparsed::<()>("features", &json::shown(other));
        }
    }
    Ok(Item { id, title, year, features })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::loaders::lines::parse_one;

    fn item(line: &str) -> Result<Item, FieldError> {
        item_and_unparsed(line).0
    }

    /// The item and the fields left missing, as `field=value`.
    fn item_and_unparsed(line: &str) -> (Result<Item, FieldError>, Vec<String>) {
        let (item, notes) =
            parse_one("items.jsonl", |record| parse_item(&json::parse_object(line).unwrap(), record));
        (item, notes.unparsed.iter().map(|u| format!("{}={}", u.field, u.first_value)).collect())
    }

    fn parse_interaction(line: &str) -> Result<Row<'_>, FieldError> {
        parse_one("interactions.jsonl", |record| super::parse_interaction(line, record)).0
    }

    #[test]
    fn item_with_features() {
        let it = item(r#"{"item":"m1","title":"A","year":2011,"features":{"genre":["Drama","Mystery"],"director":["X"]}}"#)
            .unwrap();
        assert_eq!((it.year, it.features.len()), (Some(2011), 3));
        assert_eq!(item(r#"{"item":"m1","title":"A"}"#).unwrap().features.len(), 0);
    }

    #[test]
    fn fast_and_checked_interaction_paths_agree() {
        let fast =
            parse_interaction(r#"{"user":"7","item":"m1","rating":4.5,"timestamp":10,"reference":"r"}"#)
                .unwrap();
        let checked =
            parse_interaction(r#"{"user":7,"item":" m1 ","rating":"4.5","timestamp":"10","reference":"r"}"#)
                .unwrap();
        assert_eq!(fast, checked);
        assert_eq!((fast.rating, fast.noisy), (4.5, false));
        let err = parse_interaction(r#"{"user":"u","item":"m1","timestamp":1.5}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("timestamp"));
        let err = parse_interaction(r#"{"user":"","item":"m1","timestamp":1}"#).unwrap_err();
        assert_eq!((err.field.as_deref(), err.message.as_str()), (Some("user"), "empty"));
    }

    #[test]
    fn dataset_info_is_optional_tolerant_and_located() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_info(dir.path()).unwrap(), None);
        std::fs::write(dir.path().join("dataset.json"), r#"{"name": "x", "seed": 7}"#).unwrap();
        assert_eq!(read_info(dir.path()).unwrap().unwrap().name.as_deref(), Some("x"));
        std::fs::write(dir.path().join("dataset.json"), "{\n  \"synthetic\": \"yes\"\n}").unwrap();
        let err = read_info(dir.path()).unwrap_err().to_string();
        assert!(err.contains("dataset.json:2: column") && err.contains("invalid type"), "{err}");
    }

    #[test]
    fn bad_items_name_the_key() {
        let field = |l: &str| item(l).unwrap_err().field;
        assert_eq!(field(r#"{"title":"A"}"#).as_deref(), Some("item"));
        assert_eq!(field(r#"{"item":"m1"}"#).as_deref(), Some("title"));
    }

    #[test]
    fn bad_optional_fields_are_left_missing_and_the_item_kept() {
        let cases = [
            (r#"{"item":"m1","title":"A","year":"soon"}"#, "year=soon"),
            (r#"{"item":"m1","title":"A","year":99999}"#, "year=99999"),
            (r#"{"item":"m1","title":"A","features":{"genre":[1],"tag":["x"]}}"#, "features.genre=[1]"),
            (r#"{"item":"m1","title":"A","features":["x"]}"#, "features=[\"x\"]"),
        ];
        for (line, unparsed) in cases {
            let (it, found) = item_and_unparsed(line);
            let it = it.unwrap();
            assert_eq!((it.title.as_str(), it.year), ("A", None), "{line}");
            assert_eq!(found, [unparsed], "{line}");
        }
        assert_eq!(
            item(r#"{"item":"m1","title":"A","features":{"genre":[1],"tag":["x"]}}"#).unwrap().features.len(),
            1
        );
        let row = parse_interaction(r#"{"user":"u","item":"m1","timestamp":1,"reference":5,"noisy":"yes"}"#)
            .unwrap();
        assert_eq!((row.reference, row.noisy), (None, false));
    }
}

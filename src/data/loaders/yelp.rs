//! The Yelp academic dataset: `review.json` (`user_id`, `business_id`, `stars`, `date`
//! "YYYY-MM-DD HH:MM:SS", `text`) and optional `business.json` (`name`, `categories` as one
//! comma-separated string, `city`), also under their `yelp_academic_dataset_*` names and gzipped.
//! Reviews below `min_stars` are dropped (not counted as skipped: they are well formed).

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Deserialize;

use super::ids::Ids;
use super::lines::json::Review;
use super::lines::{for_each_line, json, FieldError, Policy, Record, Text};
use super::range::{Scale, Since};
use super::text::{parse_datetime, push_feature};
use super::{find_file, finish, Format, LoadOptions};
use crate::data::{Dataset, DatasetBuilder, Interaction};

const REVIEW_FILES: &[&str] = &[
    "review.json",
    "review.json.gz",
    "yelp_academic_dataset_review.json",
    "yelp_academic_dataset_review.json.gz",
];
const BUSINESS_FILES: &[&str] = &[
    "business.json",
    "business.json.gz",
    "yelp_academic_dataset_business.json",
    "yelp_academic_dataset_business.json.gz",
];

pub fn review_file(dir: &Path) -> Option<PathBuf> {
    find_file(dir, REVIEW_FILES)
}

pub fn load(dir: &Path, options: &LoadOptions) -> Result<Dataset> {
    let reviews = super::require_file(dir, REVIEW_FILES, Format::Yelp)?;
    let mut builder = DatasetBuilder::new(Format::Yelp.name());
    let mut policy = Policy::new(options.lenient);
    let mut ids = Ids::default();
    for_each_line(&reviews, Text::Utf8, &mut policy, |line, record| {
        let review = parse_review(line, record)?;
        if review.rating < options.min_stars {
            return Ok(());
        }
        let (user, item) = (ids.user(&mut builder, &review.user), ids.item(&mut builder, &review.item));
        let (rating, timestamp, reference) = (review.rating, review.timestamp, review.reference());
        builder.push_interaction(Interaction { user, item, rating, timestamp, reference });
        Ok(())
    })?;
    if let Some(business) = find_file(dir, BUSINESS_FILES) {
        for_each_line(&business, Text::Utf8, &mut policy, |line, record| {
            apply_business(&mut builder, line, record)
        })?;
    }
    finish(builder, policy)
}

/// The usual shape of a review line, deserialized straight from the text (other fields are
/// skipped): building a `Value` tree per line costs several times more in debug builds.
#[derive(Deserialize)]
struct Usual<'a> {
    #[serde(borrow)]
    user_id: Cow<'a, str>,
    #[serde(borrow)]
    business_id: Cow<'a, str>,
    stars: f64,
    #[serde(borrow)]
    date: Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

/// The review's date as Unix seconds, between Yelp's founding and tomorrow.
fn timestamp(date: &str) -> Result<i64, FieldError> {
    let seconds = parse_datetime(date).ok_or_else(|| {
        FieldError::field("date", format!("expected \"YYYY-MM-DD HH:MM:SS\", found {date:?}"))
    })?;
    Since::YELP.check(seconds, "date")
}

/// Reads a review through the fast [`Usual`] shape; anything else (quoted numbers, blank ids,
/// errors) takes the checked path, which names the key at fault. Stars must be whole, 1 to 5; a
/// `text` that is not a string is left missing.
fn parse_review<'l>(line: &'l str, record: &mut Record) -> Result<Review<'l>, FieldError> {
    let review = match serde_json::from_str::<Usual>(line) {
        Ok(u) if json::clean_id(&u.user_id) && json::clean_id(&u.business_id) => {
            let (rating, timestamp) = (u.stars as f32, timestamp(&u.date)?);
            Review { user: u.user_id, item: u.business_id, rating, timestamp, text: u.text }
        }
        _ => {
            let obj = json::parse_object(line)?;
            let date = json::opt_str(&obj, "date")?.ok_or_else(|| FieldError::field("date", "missing"))?;
            Review {
                user: Cow::Owned(json::id(&obj, "user_id")?.into_owned()),
                item: Cow::Owned(json::id(&obj, "business_id")?.into_owned()),
                rating: json::f64(&obj, "stars")? as f32,
                timestamp: timestamp(date)?,
                text: json::optional(record, &obj, "text", json::opt_str).map(|t| Cow::Owned(t.to_owned())),
            }
        }
    };
    Scale::STARS.check(review.rating, "stars")?;
    Ok(review)
}

/// Sets the title and features of a reviewed business; businesses without kept reviews are
/// ignored. A name, categories or city of the wrong type is left missing.
fn apply_business(builder: &mut DatasetBuilder, line: &str, record: &mut Record) -> Result<(), FieldError> {
    let obj = json::parse_object(line)?;
    let Some(idx) = builder.item_by_id(&json::id(&obj, "business_id")?) else {
        return Ok(());
    };
    let name = json::optional(record, &obj, "name", json::opt_str).map(str::trim).filter(|n| !n.is_empty());
    let categories = json::optional(record, &obj, "categories", json::opt_str).unwrap_or("");
    let city = json::optional(record, &obj, "city", json::opt_str);
    let item = builder.item_mut(idx);
    if let Some(name) = name {
        item.title = name.to_owned();
    }
    for category in categories.split(',') {
        push_feature(&mut item.features, "category", category);
    }
    if let Some(city) = city {
        push_feature(&mut item.features, "city", city);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::loaders::lines::parse_one;
    use crate::data::LoadNotes;

    fn parse_review(line: &str) -> Result<Review<'_>, FieldError> {
        parse_one("review.json", |record| super::parse_review(line, record)).0
    }

    fn apply_business(b: &mut DatasetBuilder, line: &str) -> (Result<(), FieldError>, LoadNotes) {
        parse_one("business.json", |record| super::apply_business(b, line, record))
    }

    #[test]
    fn fast_and_checked_review_paths_agree() {
        let fast = parse_review(
            r#"{"user_id":"u","business_id":"b","stars":4,"date":"2016-03-09 00:44:42","text":"t"}"#,
        );
        let checked = parse_review(
            r#"{"user_id":"u","business_id":"b","stars":"4","date":"2016-03-09 00:44:42","text":"t"}"#,
        );
        assert_eq!(fast.unwrap(), checked.unwrap());
        let err = parse_review(r#"{"user_id":"u","business_id":"b","stars":4}"#).unwrap_err();
        assert_eq!((err.field.as_deref(), err.message.as_str()), (Some("date"), "missing"));
    }

    #[test]
    fn a_review_from_year_99999_or_with_six_stars_is_an_error() {
        let err =
            parse_review(r#"{"user_id":"u","business_id":"b","stars":4,"date":"99999-03-09 00:44:42"}"#)
                .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("date"));
        assert!(
            err.message.contains("(99999-03-09) is outside the dataset's plausible range"),
            "{}",
            err.message
        );
        let err =
            parse_review(r#"{"user_id":"u","business_id":"b","stars":6,"date":"2016-03-09"}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("stars"));
    }

    #[test]
    fn business_line_sets_name_categories_and_city() {
        let mut b = DatasetBuilder::new("yelp");
        let idx = b.intern_item("b1");
        let line = r#"{"business_id":"b1","name":"Garaje","city":"San Francisco","categories":"Mexican, Burgers, Gastropubs"}"#;
        apply_business(&mut b, line).0.unwrap();
        apply_business(&mut b, r#"{"business_id":"b9","name":"Unreviewed","categories":null}"#).0.unwrap();
        let item = b.build().items[idx as usize].clone();
        assert_eq!(item.title, "Garaje");
        let values: Vec<_> = item.features.iter().map(|f| f.value.as_str()).collect();
        assert_eq!(values, ["Mexican", "Burgers", "Gastropubs", "San Francisco"]);
    }

    #[test]
    fn business_with_a_list_for_categories_keeps_the_business_without_them() {
        let mut b = DatasetBuilder::new("yelp");
        let idx = b.intern_item("b1");
        let (result, notes) =
            apply_business(&mut b, r#"{"business_id":"b1","name":"Garaje","categories":["x"]}"#);
        result.unwrap();
        assert_eq!(
            (notes.unparsed[0].field.as_str(), notes.unparsed[0].first_value.as_str()),
            ("categories", "[\"x\"]")
        );
        let item = b.build().items[idx as usize].clone();
        assert_eq!((item.title.as_str(), item.features.len()), ("Garaje", 0));
        let mut b = DatasetBuilder::new("yelp");
        b.intern_item("b1");
        let err = apply_business(&mut b, r#"{"business_id":["b1"]}"#).0.unwrap_err();
        assert_eq!(err.field.as_deref(), Some("business_id"), "the key is not optional");
    }
}

//! Amazon reviews (McAuley et al.), 5-core JSON lines, plain or gzip. Reads the 2014 field names
//! (`reviewerID`, `asin`, `overall`, `unixReviewTime`, `reviewText`) and the 2018 ones (the same
//! plus `vote`, `style`, `verified`, …, which are ignored). Optional metadata `meta_*.json[.gz]`
//! supplies `title`, `brand` and categories (`categories`, a list of category paths, in 2014;
//! `category`, one path, in 2018), in strict JSON (2018) or Python-literal style (2014).

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use serde::Deserialize;
use serde_json::Value;

use super::ids::Ids;
use super::lines::json::Review;
use super::lines::{for_each_line, json, FieldError, Policy, Record, Text};
use super::range::{Scale, Since};
use super::text::{push_feature, unescape_html};
use super::{file_names, finish, pylit, Format, LoadOptions};
use crate::data::{Dataset, DatasetBuilder, Interaction};

fn is_json(name: &str) -> bool {
    name.ends_with(".json") || name.ends_with(".json.gz")
}

/// Yelp's and the generic format's JSON files, which are never Amazon reviews.
const NOT_REVIEWS: &[&str] =
    &["dataset.json", "review.json", "business.json", "user.json", "tip.json", "checkin.json"];

/// The candidate review files among a directory's file names.
pub fn review_files(names: &[String]) -> Vec<&String> {
    names
        .iter()
        .filter(|n| is_json(n) && !n.starts_with("meta_") && !n.starts_with("yelp_academic_dataset_"))
        .filter(|n| !NOT_REVIEWS.contains(&n.as_str()))
        .collect()
}

/// The metadata file for the review file `reviews`: the only `meta_*` file, or the one whose
/// category matches (`reviews_Books_5.json.gz` or `Books_5.json.gz` → `meta_Books.json.gz`).
fn meta_file(dir: &Path, names: &[String], reviews: &str) -> Result<Option<PathBuf>> {
    let metas: Vec<&String> = names.iter().filter(|n| n.starts_with("meta_") && is_json(n)).collect();
    if metas.len() <= 1 {
        return Ok(metas.first().map(|n| dir.join(n)));
    }
    let stem = reviews.trim_end_matches(".gz").trim_end_matches(".json");
    let category = stem.trim_start_matches("reviews_").trim_end_matches("_5");
    let matching: Vec<&&String> = metas
        .iter()
        .filter(|m| m.trim_end_matches(".gz").trim_end_matches(".json") == format!("meta_{category}"))
        .collect();
    match matching.as_slice() {
        [one] => Ok(Some(dir.join(one))),
        _ => bail!(
            "several metadata files in {} ({}) and none named meta_{category}.json[.gz] to match {reviews}",
            dir.display(),
            metas.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

pub fn load(dir: &Path, options: &LoadOptions) -> Result<Dataset> {
    let names = file_names(dir)?;
    let reviews = match review_files(&names).as_slice() {
        [one] => (*one).clone(),
        [] => bail!(
            "amazon dataset in {}: no reviews file (*.json or *.json.gz other than meta_*)",
            dir.display()
        ),
        many => bail!(
            "amazon dataset in {}: several review files ({}); keep one category per directory",
            dir.display(),
            many.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        ),
    };
    let mut builder = DatasetBuilder::new(Format::Amazon.name());
    let mut policy = Policy::new(options.lenient);
    let mut ids = Ids::default();
    for_each_line(&dir.join(&reviews), Text::Utf8, &mut policy, |line, record| {
        let review = parse_review(line, record)?;
        let (user, item) = (ids.user(&mut builder, &review.user), ids.item(&mut builder, &review.item));
        let (rating, timestamp, reference) = (review.rating, review.timestamp, review.reference());
        builder.push_interaction(Interaction { user, item, rating, timestamp, reference });
        Ok(())
    })?;
    if let Some(meta) = meta_file(dir, &names, &reviews)? {
        for_each_line(&meta, Text::Utf8, &mut policy, |line, record| {
            apply_metadata(&mut builder, line, record)
        })?;
    }
    finish(builder, policy)
}

/// The usual shape of a review line, deserialized straight from the text (other fields are
/// skipped): building a `Value` tree per line costs several times more in debug builds.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Usual<'a> {
    #[serde(rename = "reviewerID", borrow)]
    reviewer_id: Cow<'a, str>,
    #[serde(borrow)]
    asin: Cow<'a, str>,
    overall: f64,
    unix_review_time: i64,
    #[serde(borrow, default)]
    review_text: Option<Cow<'a, str>>,
}

/// Reads a review through the fast [`Usual`] shape; anything else (quoted numbers, blank ids,
/// errors) takes the checked path, which names the key at fault. The rating must be on the 1–5
/// star scale and the time plausible; a `reviewText` that is not a string is left missing.
fn parse_review<'l>(line: &'l str, record: &mut Record) -> Result<Review<'l>, FieldError> {
    let review = match serde_json::from_str::<Usual>(line) {
        Ok(u) if json::clean_id(&u.reviewer_id) && json::clean_id(&u.asin) => {
            let (rating, timestamp) = (u.overall as f32, u.unix_review_time);
            Review { user: u.reviewer_id, item: u.asin, rating, timestamp, text: u.review_text }
        }
        _ => {
            let obj = json::parse_object(line)?;
            Review {
                user: Cow::Owned(json::id(&obj, "reviewerID")?.into_owned()),
                item: Cow::Owned(json::id(&obj, "asin")?.into_owned()),
                rating: json::f64(&obj, "overall")? as f32,
                timestamp: json::i64(&obj, "unixReviewTime")?,
                text: json::optional(record, &obj, "reviewText", json::opt_str)
                    .map(|t| Cow::Owned(t.to_owned())),
            }
        }
    };
    Scale::STARS.check(review.rating, "overall")?;
    Since::AMAZON.check(review.timestamp, "unixReviewTime")?;
    Ok(review)
}

/// Parses one metadata line and, when its product was reviewed, sets title and features.
/// Products nobody reviewed are ignored: metadata dumps cover a whole category. A title, brand
/// or category of the wrong type is left missing.
fn apply_metadata(builder: &mut DatasetBuilder, line: &str, record: &mut Record) -> Result<(), FieldError> {
    let obj = match json::parse_object(line) {
        Ok(obj) => obj,
        Err(json_err) if line.trim_start().starts_with("{'") => match pylit::parse(line) {
            Ok(Value::Object(obj)) => obj,
            Ok(_) => return Err(json_err),
            Err(err) => return Err(FieldError::record(format!("not valid JSON or Python literal: {err}"))),
        },
        Err(err) => return Err(err),
    };
    let Some(idx) = builder.item_by_id(&json::id(&obj, "asin")?) else {
        return Ok(());
    };
    let title = json::optional(record, &obj, "title", json::opt_str)
        .map(|t| unescape_html(t.trim()))
        .filter(|t| !t.is_empty());
    let brand = json::optional(record, &obj, "brand", json::opt_str).map(unescape_html);
    let mut categories = Vec::new();
    for key in ["categories", "category"] {
        if let Some(value) = obj.get(key) {
            let mut found = Vec::new();
            match json::strings(value, key, &mut found) {
                Ok(()) => categories.extend(found),
                Err(_) => {
                    record.unparsed::<()>(key, &json::shown(value));
                }
            }
        }
    }
    let item = builder.item_mut(idx);
    if let Some(title) = title {
        item.title = title;
    }
    for category in categories {
        push_feature(&mut item.features, "category", &unescape_html(category));
    }
    if let Some(brand) = brand {
        push_feature(&mut item.features, "brand", &brand);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::loaders::lines::parse_one;

    #[test]
    fn review_and_meta_files_are_told_apart() {
        let names: Vec<String> = ["Books_5.json.gz", "meta_Books.json.gz", "meta_Toys.json", "dataset.json"]
            .map(String::from)
            .to_vec();
        assert_eq!(review_files(&names), [&names[0]]);
        let dir = Path::new("/d");
        assert_eq!(meta_file(dir, &names, "Books_5.json.gz").unwrap(), Some(dir.join("meta_Books.json.gz")));
        assert_eq!(meta_file(dir, &names, "reviews_Toys_5.json").unwrap(), Some(dir.join("meta_Toys.json")));
        assert!(meta_file(dir, &names, "Music_5.json").unwrap_err().to_string().contains("meta_Music"));
    }

    fn review(line: &str) -> (Result<Review<'_>, FieldError>, crate::data::LoadNotes) {
        parse_one("Beauty_5.json", |record| parse_review(line, record))
    }

    fn meta(b: &mut DatasetBuilder, line: &str) -> (Result<(), FieldError>, crate::data::LoadNotes) {
        parse_one("meta_Beauty.json", |record| apply_metadata(b, line, record))
    }

    #[test]
    fn fast_and_checked_review_paths_agree() {
        let line = r#"{"reviewerID":"A1","asin":"B1","overall":5.0,"unixReviewTime":1390000000,"reviewText":"Nice","vote":"1,234","style":{"Size:":" 2"}}"#;
        let quoted = r#"{"reviewerID":"A1","asin":"B1","overall":"5","unixReviewTime":"1390000000","reviewText":"Nice"}"#;
        assert_eq!(review(line).0.unwrap(), review(quoted).0.unwrap());
        let err =
            review(r#"{"reviewerID":"A1","asin":"B1","overall":"five","unixReviewTime":1}"#).0.unwrap_err();
        assert_eq!(err.field.as_deref(), Some("overall"));
    }

    #[test]
    fn ratings_and_times_are_range_checked_and_a_bad_text_is_left_missing() {
        let err = review(r#"{"reviewerID":"A1","asin":"B1","overall":50,"unixReviewTime":1390000000}"#)
            .0
            .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("overall"));
        let err =
            review(r#"{"reviewerID":"A1","asin":"B1","overall":5,"unixReviewTime":139000}"#).0.unwrap_err();
        assert_eq!(err.field.as_deref(), Some("unixReviewTime"));
        let (r, notes) = review(
            r#"{"reviewerID":"A1","asin":"B1","overall":4,"unixReviewTime":1390000000,"reviewText":17}"#,
        );
        assert_eq!(r.unwrap().text, None);
        assert_eq!(
            (notes.unparsed[0].field.as_str(), notes.unparsed[0].first_value.as_str()),
            ("reviewText", "17")
        );
    }

    #[test]
    fn metadata_in_both_dialects() {
        let mut b = DatasetBuilder::new("amazon");
        let (a, c) = (b.intern_item("A1"), b.intern_item("C3"));
        meta(&mut b, r#"{"asin": "A1", "title": "Salt &amp; Pepper", "brand": "Acme", "category": ["Home", "Kitchen"]}"#)
            .0
            .unwrap();
        meta(&mut b, "{'asin': 'C3', 'title': 'Tutu', 'categories': [['Toys', 'Dance'], ['Toys']]}")
            .0
            .unwrap();
        meta(&mut b, r#"{"asin": "unreviewed", "title": "x"}"#).0.unwrap();
        let d = b.build();
        assert_eq!(d.item(a).title, "Salt & Pepper");
        let values =
            |i| d.item(i).features.iter().map(|f| format!("{}={}", f.kind, f.value)).collect::<Vec<_>>();
        assert_eq!(values(a), ["category=Home", "category=Kitchen", "brand=Acme"]);
        assert_eq!(values(c), ["category=Toys", "category=Dance"]);
        let mut b = DatasetBuilder::new("amazon");
        let err = meta(&mut b, "{'asin': 'A1', 'title': oops}").0.unwrap_err();
        assert!(err.message.contains("Python literal"), "{}", err.message);
    }

    #[test]
    fn metadata_of_the_wrong_type_is_left_missing_and_the_product_kept() {
        let mut b = DatasetBuilder::new("amazon");
        let a = b.intern_item("A1");
        let (result, notes) = meta(
            &mut b,
            r#"{"asin": "A1", "title": ["x"], "brand": "Acme", "category": {"a": 1}, "price": "$$"}"#,
        );
        result.unwrap();
        let fields: Vec<_> = notes.unparsed.iter().map(|u| u.field.as_str()).collect();
        assert_eq!(fields, ["title", "category"]);
        let d = b.build();
        assert_eq!((d.item(a).title.as_str(), d.item(a).features.len()), ("A1", 1));
    }
}

//! The Yelp academic dataset: `review.json` (`user_id`, `business_id`, `stars`, `date`
//! "YYYY-MM-DD HH:MM:SS", `text`) and optional `business.json` (`name`, `categories` as one
//! comma-separated string, `city`), also under their `yelp_academic_dataset_*` names and gzipped.
//! Reviews below `min_stars` are dropped (not counted as skipped: they are well formed).

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::lines::{for_each_line, json, FieldError, Policy, Text};
use super::text::{parse_datetime, push_feature};
use super::{find_file, finish, Format, LoadOptions};
use crate::data::{Dataset, DatasetBuilder, Interaction, Reference};

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
    for_each_line(&reviews, Text::Utf8, &mut policy, |line| {
        let obj = json::parse_object(line)?;
        let user = json::id(&obj, "user_id")?;
        let item = json::id(&obj, "business_id")?;
        let stars = json::f64(&obj, "stars")? as f32;
        let date = json::opt_str(&obj, "date")?.ok_or_else(|| FieldError::field("date", "missing"))?;
        let timestamp = parse_datetime(date).ok_or_else(|| {
            FieldError::field("date", format!("expected \"YYYY-MM-DD HH:MM:SS\", found {date:?}"))
        })?;
        if stars < options.min_stars {
            return Ok(());
        }
        let reference = json::opt_str(&obj, "text")?
            .filter(|t| !t.trim().is_empty())
            .map(|text| Box::new(Reference { text: text.to_owned(), noisy: false }));
        let (user, item) = (builder.intern_user(&user), builder.intern_item(&item));
        builder.push_interaction(Interaction { user, item, rating: stars, timestamp, reference });
        Ok(())
    })?;
    if let Some(business) = find_file(dir, BUSINESS_FILES) {
        for_each_line(&business, Text::Utf8, &mut policy, |line| apply_business(&mut builder, line))?;
    }
    Ok(finish(builder, policy.skipped))
}

/// Sets the title and features of a reviewed business; businesses without kept reviews are ignored.
fn apply_business(builder: &mut DatasetBuilder, line: &str) -> Result<(), FieldError> {
    let obj = json::parse_object(line)?;
    let Some(idx) = builder.item_by_id(&json::id(&obj, "business_id")?) else {
        return Ok(());
    };
    let name = json::opt_str(&obj, "name")?.map(str::trim).filter(|n| !n.is_empty());
    let categories = json::opt_str(&obj, "categories")?.unwrap_or("");
    let city = json::opt_str(&obj, "city")?;
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

    #[test]
    fn business_line_sets_name_categories_and_city() {
        let mut b = DatasetBuilder::new("yelp");
        let idx = b.intern_item("b1");
        let line = r#"{"business_id":"b1","name":"Garaje","city":"San Francisco","categories":"Mexican, Burgers, Gastropubs"}"#;
        apply_business(&mut b, line).unwrap();
        apply_business(&mut b, r#"{"business_id":"b9","name":"Unreviewed","categories":null}"#).unwrap();
        let item = b.build().items[idx as usize].clone();
        assert_eq!(item.title, "Garaje");
        let values: Vec<_> = item.features.iter().map(|f| f.value.as_str()).collect();
        assert_eq!(values, ["Mexican", "Burgers", "Gastropubs", "San Francisco"]);
    }

    #[test]
    fn business_with_a_list_for_categories_names_the_key() {
        let mut b = DatasetBuilder::new("yelp");
        b.intern_item("b1");
        let err = apply_business(&mut b, r#"{"business_id":"b1","categories":["x"]}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("categories"));
    }
}

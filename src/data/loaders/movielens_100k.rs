//! MovieLens 100K: `u.data` (tab-separated `user id, item id, rating, timestamp`) and `u.item`
//! (`|`-separated, Latin-1: id, title, release date, video release date, IMDb URL, 19 genre flags).

use std::path::Path;

use anyhow::Result;

use super::ids::Ids;
use super::lines::{
    column, for_each_line, id_column, parse_f32, parse_timestamp, FieldError, Policy, Record, Text,
};
use super::range::{plausible_year, Scale, Since};
use super::text::{title_and_year, year_of_date};
use super::{finish, require_file, Format, LoadOptions};
use crate::data::{Dataset, DatasetBuilder, Feature, Interaction, Item};

/// The genre flag columns of `u.item`, in order (as in `u.genre`). The first, "unknown", marks a
/// missing genre and does not become a feature.
pub const GENRES: [&str; 19] = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
];

pub fn load(dir: &Path, options: &LoadOptions) -> Result<Dataset> {
    let mut builder = DatasetBuilder::new(Format::MovieLens100K.name());
    let mut policy = Policy::new(options.lenient);
    let items = require_file(dir, &["u.item"], Format::MovieLens100K)?;
    for_each_line(&items, Text::Latin1OrUtf8, &mut policy, |line, record| {
        builder.set_item(parse_item(line, record)?);
        Ok(())
    })?;
    let mut ids = Ids::default();
    let ratings = require_file(dir, &["u.data"], Format::MovieLens100K)?;
    for_each_line(&ratings, Text::Latin1OrUtf8, &mut policy, |line, record| {
        let fields: Vec<&str> = line.split('\t').collect();
        let user = id_column(&fields, 0, "user id")?;
        let item_id = id_column(&fields, 1, "item id")?;
        let rating = Scale::STARS.check(parse_f32(column(&fields, 2, "rating")?, "rating")?, "rating")?;
        let raw_timestamp = column(&fields, 3, "timestamp")?;
        record.width("timestamp", raw_timestamp)?;
        let timestamp = Since::MOVIELENS.check(parse_timestamp(raw_timestamp, "timestamp")?, "timestamp")?;
        let item = ids
            .known_item(&builder, item_id)
            .ok_or_else(|| FieldError::field("item id", format!("{item_id:?} is not in u.item")))?;
        let user = ids.user(&mut builder, user);
        builder.push_interaction(Interaction { user, item, rating, timestamp, reference: None });
        Ok(())
    })?;
    finish(builder, policy)
}

/// A movie. Its id and its column count are checked; a release date or a genre flag that cannot
/// be read is left missing (the year then comes from the title, if it has one).
fn parse_item(line: &str, record: &mut Record) -> Result<Item, FieldError> {
    let fields: Vec<&str> = line.split('|').collect();
    let id = id_column(&fields, 0, "movie id")?;
    let (title, title_year) = title_and_year(column(&fields, 1, "movie title")?);
    let date = column(&fields, 2, "release date")?;
    // Checked before the flags below, so that a short line is a column-count error.
    column(&fields, 4 + GENRES.len(), GENRES[GENRES.len() - 1])?;
    let date_year = match year_of_date(date) {
        Some(year) if plausible_year(year.into()) => Some(year),
        _ if date.trim().is_empty() => None,
        _ => record.unparsed("release date", date),
    };
    let mut features = Vec::new();
    for (k, genre) in GENRES.iter().enumerate() {
        match fields[5 + k].trim() {
            "1" if k > 0 => features.push(Feature::new("genre", *genre)),
            "0" | "1" => {}
            other => {
                record.unparsed::<()>(genre, other);
            }
        }
    }
    Ok(Item { id: id.to_owned(), title, year: date_year.or(title_year), features })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::data::loaders::lines::parse_one;

    fn parse(line: &str) -> (Result<Item, FieldError>, crate::data::LoadNotes) {
        parse_one("u.item", |record| parse_item(line, record))
    }

    #[test]
    fn item_line_gives_title_year_and_genres() {
        let (item, notes) =
            parse("1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0");
        let item = item.unwrap();
        assert_eq!((item.title.as_str(), item.year), ("Toy Story", Some(1995)));
        let genres: Vec<_> = item.features.iter().map(|f| f.value.as_str()).collect();
        assert_eq!(genres, ["Animation", "Children's", "Comedy"]);
        assert_eq!(notes, crate::data::LoadNotes::default());
    }

    #[test]
    fn unknown_movie_has_no_year_and_no_genre() {
        let item = parse("267|unknown||||1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0").0.unwrap();
        assert_eq!((item.title.as_str(), item.year, item.features.len()), ("unknown", None, 0));
    }

    #[test]
    fn a_short_line_is_an_error_and_a_bad_flag_or_date_is_left_missing() {
        let err = parse("5|Copycat (1995)|01-Jan-1995||http://x|0|0|0").0.unwrap_err();
        assert_eq!(err.field.as_deref(), Some("Western"));
        assert!(err.message.contains("8 columns"), "{}", err.message);
        let (item, notes) =
            parse("5|Copycat (1995)|sometime||http://x|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|yes|0|1");
        let item = item.unwrap();
        assert_eq!(item.year, Some(1995), "the title's year stands in for the release date");
        assert_eq!(item.features, [Feature::new("genre", "Western")]);
        let fields: Vec<_> =
            notes.unparsed.iter().map(|u| (u.field.as_str(), u.first_value.as_str())).collect();
        assert_eq!(fields, [("release date", "sometime"), ("Thriller", "yes")]);
    }
}

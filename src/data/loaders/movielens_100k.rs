//! MovieLens 100K: `u.data` (tab-separated `user id, item id, rating, timestamp`) and `u.item`
//! (`|`-separated, Latin-1: id, title, release date, video release date, IMDb URL, 19 genre flags).

use std::path::Path;

use anyhow::Result;

use super::ids::Ids;
use super::lines::{column, for_each_line, id_column, parse_f32, parse_timestamp, FieldError, Policy, Text};
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
    for_each_line(&items, Text::Latin1OrUtf8, &mut policy, |line| {
        builder.set_item(parse_item(line)?);
        Ok(())
    })?;
    let mut ids = Ids::default();
    let ratings = require_file(dir, &["u.data"], Format::MovieLens100K)?;
    for_each_line(&ratings, Text::Latin1OrUtf8, &mut policy, |line| {
        let fields: Vec<&str> = line.split('\t').collect();
        let user = id_column(&fields, 0, "user id")?;
        let item_id = id_column(&fields, 1, "item id")?;
        let rating = parse_f32(column(&fields, 2, "rating")?, "rating")?;
        let timestamp = parse_timestamp(column(&fields, 3, "timestamp")?, "timestamp")?;
        let item = ids
            .known_item(&builder, item_id)
            .ok_or_else(|| FieldError::field("item id", format!("{item_id:?} is not in u.item")))?;
        let user = ids.user(&mut builder, user);
        builder.push_interaction(Interaction { user, item, rating, timestamp, reference: None });
        Ok(())
    })?;
    Ok(finish(builder, policy.skipped))
}

fn parse_item(line: &str) -> Result<Item, FieldError> {
    let fields: Vec<&str> = line.split('|').collect();
    let id = id_column(&fields, 0, "movie id")?;
    let (title, title_year) = title_and_year(column(&fields, 1, "movie title")?);
    let year = year_of_date(column(&fields, 2, "release date")?).or(title_year);
    let mut features = Vec::new();
    for (k, genre) in GENRES.iter().enumerate() {
        match column(&fields, 5 + k, genre)?.trim() {
            "1" if k > 0 => features.push(Feature::new("genre", *genre)),
            "0" | "1" => {}
            other => {
                return Err(FieldError::field(*genre, format!("expected a 0/1 genre flag, found {other:?}")))
            }
        }
    }
    Ok(Item { id: id.to_owned(), title, year, features })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_line_gives_title_year_and_genres() {
        let item =
            parse_item("1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0")
                .unwrap();
        assert_eq!((item.title.as_str(), item.year), ("Toy Story", Some(1995)));
        let genres: Vec<_> = item.features.iter().map(|f| f.value.as_str()).collect();
        assert_eq!(genres, ["Animation", "Children's", "Comedy"]);
    }

    #[test]
    fn unknown_movie_has_no_year_and_no_genre() {
        let item = parse_item("267|unknown||||1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0").unwrap();
        assert_eq!((item.title.as_str(), item.year, item.features.len()), ("unknown", None, 0));
    }

    #[test]
    fn short_or_bad_flags_name_the_genre_column() {
        let err = parse_item("5|Copycat (1995)|01-Jan-1995||http://x|0|0|0").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("Animation"));
        let err =
            parse_item("5|Copycat (1995)|01-Jan-1995||http://x|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|yes|0|0")
                .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("Thriller"));
    }
}

//! MovieLens 1M (and 10M, which shares the layout): `ratings.dat`
//! (`UserID::MovieID::Rating::Timestamp`) and `movies.dat` (`MovieID::Title::Genres`, Latin-1,
//! genres `A|B`). `users.dat` is not read: the dataset model has no user attributes.

use std::path::Path;

use anyhow::Result;

use super::ids::Ids;
use super::lines::{
    column, for_each_line, id_column, parse_f32, parse_timestamp, FieldError, Policy, Record, Text,
};
use super::range::{plausible_year, Scale, Since};
use super::text::{push_feature, title_and_year};
use super::{finish, require_file, Format, LoadOptions};
use crate::data::{Dataset, DatasetBuilder, Interaction, Item};

pub fn load(dir: &Path, options: &LoadOptions) -> Result<Dataset> {
    let mut builder = DatasetBuilder::new(Format::MovieLens1M.name());
    let mut policy = Policy::new(options.lenient);
    let movies = require_file(dir, &["movies.dat"], Format::MovieLens1M)?;
    for_each_line(&movies, Text::Latin1OrUtf8, &mut policy, |line, record| {
        builder.set_item(parse_movie(line, record)?);
        Ok(())
    })?;
    let mut ids = Ids::default();
    let ratings = require_file(dir, &["ratings.dat"], Format::MovieLens1M)?;
    for_each_line(&ratings, Text::Latin1OrUtf8, &mut policy, |line, record| {
        let fields = split_double_colon(line);
        let user = id_column(&fields, 0, "UserID")?;
        let item_id = id_column(&fields, 1, "MovieID")?;
        // 1M rates in whole stars, 10M (same layout) in half stars.
        let rating =
            Scale::HALF_STARS.check(parse_f32(column(&fields, 2, "Rating")?, "Rating")?, "Rating")?;
        let raw_timestamp = column(&fields, 3, "Timestamp")?;
        record.width("Timestamp", raw_timestamp)?;
        let timestamp = Since::MOVIELENS.check(parse_timestamp(raw_timestamp, "Timestamp")?, "Timestamp")?;
        let item = ids
            .known_item(&builder, item_id)
            .ok_or_else(|| FieldError::field("MovieID", format!("{item_id:?} is not in movies.dat")))?;
        let user = ids.user(&mut builder, user);
        builder.push_interaction(Interaction { user, item, rating, timestamp, reference: None });
        Ok(())
    })?;
    finish(builder, policy)
}

/// Splits on `::`. Searching for the single byte `:` uses `memchr`, which stays fast in debug
/// builds where the generic substring searcher does not.
fn split_double_colon(line: &str) -> Vec<&str> {
    let mut fields = Vec::with_capacity(4);
    let (mut start, mut from) = (0, 0);
    while let Some(pos) = line[from..].find(':').map(|p| p + from) {
        if line.as_bytes().get(pos + 1) == Some(&b':') {
            fields.push(&line[start..pos]);
            start = pos + 2;
            from = start;
        } else {
            from = pos + 1;
        }
    }
    fields.push(&line[start..]);
    fields
}

/// The title sits between the first and the last `::`, so a title holding `::` survives. A year
/// outside the plausible range is left missing.
fn parse_movie(line: &str, record: &mut Record) -> Result<Item, FieldError> {
    let (id, rest) =
        line.split_once("::").ok_or_else(|| FieldError::field("Title", "missing (no `::` separator)"))?;
    let (raw_title, genres) = rest
        .rsplit_once("::")
        .ok_or_else(|| FieldError::field("Genres", "missing (expected MovieID::Title::Genres)"))?;
    let id = id_column(&[id], 0, "MovieID")?;
    let (title, year) = title_and_year(raw_title);
    if title.is_empty() {
        return Err(FieldError::field("Title", "empty"));
    }
    let year = year
        .filter(|&y| plausible_year(y.into()))
        .or_else(|| year.and_then(|_| record.unparsed("Title", raw_title)));
    let mut features = Vec::new();
    for genre in genres.split('|').filter(|g| *g != "(no genres listed)") {
        push_feature(&mut features, "genre", genre);
    }
    Ok(Item { id: id.to_owned(), title, year, features })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_double_colons_only() {
        assert_eq!(split_double_colon("1::1193::5::978300760"), ["1", "1193", "5", "978300760"]);
        assert_eq!(split_double_colon("a:b::c:::d"), ["a:b", "c", ":d"]);
        assert_eq!(split_double_colon(""), [""]);
    }

    use crate::data::loaders::lines::parse_one;

    /// Parses one `movies.dat` line; returns the item (or the error) and the fields left missing.
    fn parse(line: &str) -> (Result<Item, FieldError>, Vec<String>) {
        let (item, notes) = parse_one("movies.dat", |record| parse_movie(line, record));
        (item, notes.unparsed.into_iter().map(|u| u.field).collect())
    }

    #[test]
    fn movie_line() {
        let item = parse("2::Jumanji (1995)::Adventure|Children's|Fantasy").0.unwrap();
        assert_eq!((item.id.as_str(), item.title.as_str(), item.year), ("2", "Jumanji", Some(1995)));
        assert_eq!(item.features.len(), 3);
        let item = parse("9::Star Wars: Episode IV (1977)::Action").0.unwrap();
        assert_eq!(item.title, "Star Wars: Episode IV");
    }

    #[test]
    fn missing_genres_column_is_named_and_an_absurd_year_left_missing() {
        assert_eq!(parse("2::Jumanji (1995)").0.unwrap_err().field.as_deref(), Some("Genres"));
        assert_eq!(parse("2").0.unwrap_err().field.as_deref(), Some("Title"));
        let (item, unparsed) = parse("3::Jumanji (0195)::Adventure");
        assert_eq!((item.unwrap().year, unparsed), (None, vec!["Title".to_owned()]));
    }
}

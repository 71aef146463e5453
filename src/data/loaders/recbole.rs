//! RecBole atomic files: `NAME.inter` and optional `NAME.item` (`NAME.user` is not read: the
//! dataset model has no user attributes). Tab-separated, UTF-8, with a typed header such as
//! `user_id:token<TAB>item_id:token<TAB>rating:float<TAB>timestamp:float`. `token_seq` values are
//! space-separated. Known column names are mapped to the dataset's fields (see DATA_FORMATS.md);
//! other columns are ignored.

use std::path::Path;

use anyhow::{bail, Result};

use super::ids::Ids;
use super::lines::{parse_f32, parse_timestamp, FieldError, FileChecks, Lines, Policy, RecordError, Text};
use super::range::plausible_year;
use super::text::push_feature;
use super::{file_names, finish, Format, LoadOptions};
use crate::data::{Dataset, DatasetBuilder, Interaction};

/// `.item` columns that become features, and the feature kind each becomes.
const FEATURE_COLUMNS: &[(&str, &str)] = &[
    ("genre", "genre"),
    ("genres", "genre"),
    ("class", "genre"),
    ("category", "category"),
    ("categories", "category"),
    ("brand", "brand"),
    ("city", "city"),
    ("tag", "tag"),
    ("tags", "tag"),
    ("director", "director"),
    ("actor", "actor"),
    ("actors", "actor"),
    ("writer", "writer"),
    ("language", "language"),
    ("country", "country"),
];
const TITLE_COLUMNS: &[&str] = &["movie_title", "title", "name", "item_name"];
const YEAR_COLUMNS: &[&str] = &["release_year", "year"];

#[derive(Clone, Debug, PartialEq)]
struct Column {
    name: String,
    seq: bool,
}

/// A header of `name:type` cells.
fn parse_header(line: &str) -> Result<Vec<Column>, FieldError> {
    line.split('\t')
        .map(|cell| {
            let (name, ty) = cell
                .trim()
                .split_once(':')
                .ok_or_else(|| FieldError::field(cell, "header cell is not `name:type`"))?;
            match ty {
                "token" | "float" => Ok(Column { name: name.to_owned(), seq: false }),
                "token_seq" | "float_seq" => Ok(Column { name: name.to_owned(), seq: true }),
                other => Err(FieldError::field(
                    name,
                    format!("unknown type {other:?} (expected token, token_seq, float or float_seq)"),
                )),
            }
        })
        .collect()
}

fn position(columns: &[Column], names: &[&str]) -> Option<usize> {
    names.iter().find_map(|n| columns.iter().position(|c| c.name == *n))
}

/// Opens an atomic file of the dataset and parses its header (a bad or missing header is fatal).
fn open_atomic(path: &Path, policy: &mut Policy) -> Result<(Lines, Vec<Column>, FileChecks)> {
    let mut lines = Lines::open(path, Text::Utf8)?;
    let file = policy.file(path);
    let (header, terminated) = match lines.next_line()? {
        Some(line) => (line.text.and_then(parse_header), line.terminated),
        None => bail!("{}: empty file (expected a `name:type` header)", path.display()),
    };
    let header = header.map_err(|error| RecordError { path: path.to_owned(), line: 1, error })?;
    policy.header(&file, terminated);
    Ok((lines, header, file))
}

fn cell<'a>(fields: &[&'a str], index: usize, columns: &[Column]) -> Result<&'a str, FieldError> {
    fields.get(index).copied().ok_or_else(|| {
        FieldError::field(
            &columns[index].name,
            format!("missing (the line has {} columns, the header {})", fields.len(), columns.len()),
        )
    })
}

pub fn load(dir: &Path, options: &LoadOptions) -> Result<Dataset> {
    let names = file_names(dir)?;
    let inter = match names.iter().filter(|n| n.ends_with(".inter")).collect::<Vec<_>>().as_slice() {
        [one] => dir.join(one),
        [] => bail!("recbole dataset in {}: no NAME.inter file", dir.display()),
        many => bail!(
            "recbole dataset in {}: several .inter files ({}); keep one dataset per directory",
            dir.display(),
            many.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        ),
    };
    let mut builder = DatasetBuilder::new(Format::RecBole.name());
    let mut policy = Policy::new(options.lenient);

    let (mut lines, columns, mut file) = open_atomic(&inter, &mut policy)?;
    let missing = |what: &str| {
        let found: Vec<_> = columns.iter().map(|c| c.name.as_str()).collect();
        anyhow::anyhow!(
            "{}:1: field `{what}`: missing from the header ({})",
            inter.display(),
            found.join(", ")
        )
    };
    let user_col = position(&columns, &["user_id"]).ok_or_else(|| missing("user_id"))?;
    let item_col = position(&columns, &["item_id", "business_id"])
        .or_else(|| {
            columns
                .iter()
                .position(|c| c.name.ends_with("_id") && !["user_id", "review_id"].contains(&c.name.as_str()))
        })
        .ok_or_else(|| missing("item_id"))?;
    let item_field = columns[item_col].name.clone();
    let rating_col = position(&columns, &["rating", "stars"]);
    let time_col = position(&columns, &["timestamp", "date"]);
    let mut ids = Ids::default();
    while let Some(line) = lines.next_line()? {
        if line.is_blank() {
            continue;
        }
        policy.record(&mut file, line.number, line.terminated, |record| {
            let fields: Vec<&str> = line.text?.split('\t').collect();
            let id = |index| {
                let value = cell(&fields, index, &columns)?.trim_ascii();
                if value.is_empty() {
                    return Err(FieldError::field(&columns[index].name, "empty"));
                }
                Ok(value)
            };
            let (user, item) = (id(user_col)?, id(item_col)?);
            let rating = match rating_col {
                Some(c) => {
                    let raw = cell(&fields, c, &columns)?;
                    record.width(&columns[c].name, raw)?;
                    parse_f32(raw, &columns[c].name)?
                }
                None => 1.0,
            };
            let timestamp = match time_col {
                Some(c) => {
                    let raw = cell(&fields, c, &columns)?;
                    record.width(&columns[c].name, raw)?;
                    parse_timestamp(raw, &columns[c].name)?
                }
                None => 0,
            };
            let (user, item) = (ids.user(&mut builder, user), ids.item(&mut builder, item));
            builder.push_interaction(Interaction { user, item, rating, timestamp, reference: None });
            Ok(())
        })?;
    }

    let stem = inter.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let item_path = dir.join(format!("{stem}.item"));
    if item_path.is_file() {
        read_items(&item_path, &item_field, &mut builder, &mut policy)?;
    }
    finish(builder, policy)
}

/// Applies `NAME.item` rows to the items the interactions named; other rows are ignored.
fn read_items(
    path: &Path,
    item_field: &str,
    builder: &mut DatasetBuilder,
    policy: &mut Policy,
) -> Result<()> {
    let (mut lines, columns, mut file) = open_atomic(path, policy)?;
    let Some(id_col) = position(&columns, &[item_field]) else {
        bail!(
            "{}:1: field `{item_field}`: missing from the header (the .inter file's item column)",
            path.display()
        );
    };
    let title_col = position(&columns, TITLE_COLUMNS);
    let year_col = position(&columns, YEAR_COLUMNS);
    let feature_cols: Vec<(usize, &str)> = columns
        .iter()
        .enumerate()
        .filter_map(|(i, c)| FEATURE_COLUMNS.iter().find(|(n, _)| *n == c.name).map(|(_, kind)| (i, *kind)))
        .collect();
    while let Some(line) = lines.next_line()? {
        if line.is_blank() {
            continue;
        }
        policy.record(&mut file, line.number, line.terminated, |record| {
            let fields: Vec<&str> = line.text?.split('\t').collect();
            // Every cell is looked up first, so that a short row is an error whatever it holds.
            if let Some(last) = columns.len().checked_sub(1) {
                cell(&fields, last, &columns)?;
            }
            let Some(idx) = builder.item_by_id(fields[id_col].trim_ascii()) else {
                return Ok(());
            };
            let title = title_col.map(|c| fields[c].trim());
            let year = year_col.and_then(|c| {
                let value = fields[c].trim();
                match value.parse::<f64>() {
                    _ if value.is_empty() => None,
                    Ok(y) if y.fract() == 0.0 && plausible_year(y as i64) => Some(y as i32),
                    _ => record.unparsed(&columns[c].name, value),
                }
            });
            let mut features = Vec::new();
            for &(c, kind) in &feature_cols {
                if columns[c].seq {
                    fields[c].split(' ').for_each(|v| push_feature(&mut features, kind, v));
                } else {
                    push_feature(&mut features, kind, fields[c]);
                }
            }
            let item = builder.item_mut(idx);
            if let Some(title) = title.filter(|t| !t.is_empty()) {
                item.title = title.to_owned();
            }
            item.year = year.or(item.year);
            item.features = features;
            Ok(())
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_types() {
        let cols = parse_header("user_id:token\tgenre:token_seq\trating:float").unwrap();
        assert_eq!(cols[1], Column { name: "genre".into(), seq: true });
        assert_eq!(parse_header("user_id\titem_id:token").unwrap_err().field.as_deref(), Some("user_id"));
        assert_eq!(
            parse_header("user_id:token\titem_id:blob").unwrap_err().field.as_deref(),
            Some("item_id")
        );
    }

    #[test]
    fn bad_header_is_located_at_line_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.inter");
        std::fs::write(&path, "user_id:token\titem_id\n1\t2\n").unwrap();
        let err = open_atomic(&path, &mut Policy::new(false)).err().unwrap().to_string();
        assert!(err.ends_with("x.inter:1: field `item_id`: header cell is not `name:type`"), "{err}");
    }
}

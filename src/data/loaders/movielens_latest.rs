//! MovieLens latest and latest-small (also 20M/25M/32M, which share the layout): `ratings.csv`
//! (`userId,movieId,rating,timestamp`), `movies.csv` (`movieId,title,genres`, titles quoted when
//! they hold commas) and optional `tags.csv` (`userId,movieId,tag,timestamp`), UTF-8 with headers.
//! Columns are found by header name, so their order does not matter.

use std::cell::Cell;
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

use anyhow::{Context, Result};

use super::ids::Ids;
use super::lines::{self, parse_f32, parse_timestamp, FieldError, Policy, Record};
use super::range::{plausible_year, Scale, Since};
use super::text::{push_feature, title_and_year};
use super::{find_file, finish, require_file, Format, LoadOptions};
use crate::data::{Dataset, DatasetBuilder, Interaction, Item, ItemIdx};

pub fn load(dir: &Path, options: &LoadOptions) -> Result<Dataset> {
    let mut builder = DatasetBuilder::new(Format::MovieLensLatest.name());
    let mut policy = Policy::new(options.lenient);
    let movies = require_file(dir, &["movies.csv"], Format::MovieLensLatest)?;
    for_each_record(&movies, &["movieId", "title", "genres"], &mut policy, |f, record| {
        let id = f.id(0)?;
        let raw_title = f.get(1)?;
        let (title, year) = title_and_year(raw_title);
        if title.is_empty() {
            return Err(FieldError::field("title", "empty"));
        }
        let year = year
            .filter(|&y| plausible_year(y.into()))
            .or_else(|| year.and_then(|_| record.unparsed("title", raw_title)));
        let mut features = Vec::new();
        for genre in f.get(2)?.split('|').filter(|g| *g != "(no genres listed)") {
            push_feature(&mut features, "genre", genre);
        }
        builder.set_item(Item { id: id.to_owned(), title, year, features });
        Ok(())
    })?;
    let mut ids = Ids::default();
    if let Some(tags) = find_file(dir, &["tags.csv"]) {
        for_each_record(&tags, &["movieId", "tag"], &mut policy, |f, _| {
            let item = known_item(&mut ids, &builder, f.id(0)?)?;
            push_feature(&mut builder.item_mut(item).features, "tag", f.get(1)?);
            Ok(())
        })?;
    }
    let ratings = require_file(dir, &["ratings.csv"], Format::MovieLensLatest)?;
    for_each_record(&ratings, &["userId", "movieId", "rating", "timestamp"], &mut policy, |f, record| {
        let user = f.id(0)?;
        let item = known_item(&mut ids, &builder, f.id(1)?)?;
        let (raw_rating, raw_timestamp) = (f.get(2)?, f.get(3)?);
        record.width("rating", raw_rating)?;
        record.width("timestamp", raw_timestamp)?;
        let rating = Scale::HALF_STARS.check(parse_f32(raw_rating, "rating")?, "rating")?;
        let timestamp = Since::MOVIELENS.check(parse_timestamp(raw_timestamp, "timestamp")?, "timestamp")?;
        let user = ids.user(&mut builder, user);
        builder.push_interaction(Interaction { user, item, rating, timestamp, reference: None });
        Ok(())
    })?;
    finish(builder, policy)
}

fn known_item(ids: &mut Ids, builder: &DatasetBuilder, id: &str) -> Result<ItemIdx, FieldError> {
    ids.known_item(builder, id)
        .ok_or_else(|| FieldError::field("movieId", format!("{id:?} is not in movies.csv")))
}

/// One CSV record seen through the columns a loader asked for, by position in that request.
struct Fields<'r> {
    record: &'r csv::ByteRecord,
    columns: &'r [(usize, &'r str)],
}

impl Fields<'_> {
    fn get(&self, k: usize) -> Result<&str, FieldError> {
        let (index, name) = self.columns[k];
        let bytes = self.record.get(index).ok_or_else(|| {
            FieldError::field(name, format!("missing (the line has {} columns)", self.record.len()))
        })?;
        std::str::from_utf8(bytes).map_err(|e| {
            FieldError::field(name, format!("not valid UTF-8 (bad byte at column {})", e.valid_up_to() + 1))
        })
    }

    fn id(&self, k: usize) -> Result<&str, FieldError> {
        let value = self.get(k)?.trim_ascii();
        if value.is_empty() {
            return Err(FieldError::field(self.columns[k].1, "empty"));
        }
        Ok(value)
    }
}

/// A reader that counts the bytes read through it and remembers the last one, so that the CSV
/// reader's last record can be told to end with a newline or not.
struct Tail<R> {
    inner: R,
    seen: Rc<Cell<(u64, Option<u8>)>>,
}

impl<R: Read> Read for Tail<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            let (total, _) = self.seen.get();
            self.seen.set((total + n as u64, Some(buf[n - 1])));
        }
        Ok(n)
    }
}

/// Whether the record (or header) just read ends with a newline: only the last one reaches the
/// end of the stream, and it is cut off when no newline ends it.
fn terminated<R: Read>(reader: &csv::Reader<R>, seen: &Cell<(u64, Option<u8>)>) -> bool {
    let (total, last) = seen.get();
    reader.position().byte() < total || last == Some(b'\n')
}

/// Reads a CSV file with a header row, locating `wanted` columns by name, and hands each record
/// to `each` under `policy` (see [`Policy::record`]). Line numbers count physical lines, so a
/// quoted multi-line field still points at the line the record starts on.
fn for_each_record(
    path: &Path,
    wanted: &[&str],
    policy: &mut Policy,
    mut each: impl FnMut(&Fields, &mut Record) -> Result<(), FieldError>,
) -> Result<()> {
    let seen = Rc::new(Cell::new((0, None)));
    let tail = Tail { inner: lines::open(path)?, seen: Rc::clone(&seen) };
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(tail);
    let mut file = policy.file(path);
    let header =
        reader.byte_headers().with_context(|| format!("{}: cannot read the header", path.display()))?.clone();
    policy.header(&file, terminated(&reader, &seen));
    let mut columns = Vec::with_capacity(wanted.len());
    for name in wanted {
        let index =
            header.iter().position(|h| h.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(h) == name.as_bytes());
        let Some(index) = index else {
            let found: Vec<_> = header.iter().map(String::from_utf8_lossy).collect();
            anyhow::bail!(
                "{}:1: field `{name}`: missing from the header ({})",
                path.display(),
                found.join(",")
            );
        };
        columns.push((index, *name));
    }
    let mut record = csv::ByteRecord::new();
    loop {
        let more = reader.read_byte_record(&mut record).with_context(|| {
            format!(
                "{}: cannot read after line {} (truncated or corrupt file?)",
                path.display(),
                reader.position().line()
            )
        })?;
        if !more {
            return Ok(());
        }
        let line = record.position().map_or(0, |p| p.line());
        if record.len() == 1 && record.get(0).is_some_and(|f| f.is_empty()) {
            continue;
        }
        let terminated = terminated(&reader, &seen);
        let fields = Fields { record: &record, columns: &columns };
        policy.record(&mut file, line, terminated, |r| each(&fields, r))?;
    }
}

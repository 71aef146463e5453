//! Shared reading machinery for the loaders: opening plain or gzip files, reading numbered lines
//! in a given text encoding, locating bad records (file, line, field), and the strict/lenient
//! policy that turns a bad record into an error or a skipped count.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::data::LoadNotes;

/// How the bytes of a file are decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Text {
    /// Strict UTF-8: invalid bytes are a record error.
    Utf8,
    /// UTF-8 where a line is valid UTF-8, otherwise ISO-8859-1. MovieLens ships Latin-1, but
    /// re-encoded copies are common; a Latin-1 line with accents almost never validates as UTF-8.
    Latin1OrUtf8,
}

/// What is wrong with one record, before it is located in a file.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    /// The column or key at fault; `None` when the record as a whole is bad.
    pub field: Option<String>,
    pub message: String,
}

impl FieldError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError { field: Some(field.into()), message: message.into() }
    }

    pub fn record(message: impl Into<String>) -> FieldError {
        FieldError { field: None, message: message.into() }
    }
}

/// A bad record located in its file: `path:line: field `name`: message`.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordError {
    pub path: PathBuf,
    pub line: u64,
    pub error: FieldError,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.path.display(), self.line)?;
        match &self.error.field {
            Some(field) => write!(f, "field `{field}`: {}", self.error.message),
            None => write!(f, "{}", self.error.message),
        }
    }
}

impl std::error::Error for RecordError {}

/// The strict/lenient policy, and what it recovered from while reading (see [`LoadNotes`]).
#[derive(Debug, Default)]
pub struct Policy {
    pub lenient: bool,
    pub notes: LoadNotes,
    /// Every file read, in order: the dataset's sources.
    pub files: Vec<PathBuf>,
}

impl Policy {
    pub fn new(lenient: bool) -> Policy {
        Policy { lenient, notes: LoadNotes::default(), files: Vec::new() }
    }

    /// Starts the checks of a file about to be read, and records it among the sources.
    pub fn file(&mut self, path: &Path) -> FileChecks {
        self.files.push(path.to_owned());
        FileChecks::new(path)
    }

    /// Strict: a bad record is the error of the whole load. Lenient: it is counted and skipped.
    fn reject(&mut self, path: &Path, line: u64, error: FieldError) -> Result<()> {
        let located = RecordError { path: path.to_owned(), line, error };
        if self.lenient {
            self.notes.skip(|| located.to_string());
            return Ok(());
        }
        Err(anyhow::Error::new(located).context("malformed record (use --lenient to skip and count)"))
    }

    /// Notes a header line (line 1) that has no newline: the file holds no record, and may have
    /// been cut off right after its header.
    pub fn header(&mut self, file: &FileChecks, terminated: bool) {
        if !terminated {
            self.notes.unterminated(&file.name, 1);
        }
    }

    /// Runs one record of `file` through `parse` under this policy. On success the record's
    /// unparsed optional fields are counted and, when `terminated`, its field widths join the
    /// file's; a record without a newline is noted as the file's unterminated last line. A failing
    /// record without a newline says that the file looks cut off there.
    pub fn record(
        &mut self,
        file: &mut FileChecks,
        line: u64,
        terminated: bool,
        parse: impl FnOnce(&mut Record) -> Result<(), FieldError>,
    ) -> Result<()> {
        let mut record = Record { terminated, widths: &file.widths, seen: Vec::new(), unparsed: Vec::new() };
        let result = parse(&mut record);
        let Record { seen, unparsed, .. } = record;
        match result {
            Ok(()) => {
                if terminated {
                    file.widen(seen);
                } else {
                    self.notes.unterminated(&file.name, line);
                }
                for (field, value) in unparsed {
                    self.notes.unparsed(&file.name, &field, line, &value);
                }
                Ok(())
            }
            Err(mut error) => {
                if !terminated {
                    error.message.push_str(" (the last line has no newline: the file looks cut off here)");
                }
                self.reject(&file.path, line, error)
            }
        }
    }
}

/// Runs `parse` on one record of a file named `name`, as a loader would: its result and the notes
/// it left (unit tests of the loaders' record parsers).
#[cfg(test)]
pub(crate) fn parse_one<T>(
    name: &str,
    parse: impl FnOnce(&mut Record) -> Result<T, FieldError>,
) -> (Result<T, FieldError>, LoadNotes) {
    let mut policy = Policy::new(true);
    let mut file = policy.file(Path::new(name));
    let mut out = None;
    policy
        .record(&mut file, 1, true, |record| {
            let result = parse(record);
            let status = result.as_ref().map(drop).map_err(Clone::clone);
            out = Some(result);
            status
        })
        .expect("a lenient policy does not fail");
    let notes = LoadNotes { skipped: 0, first_skipped: None, ..policy.notes };
    (out.expect("parse ran"), notes)
}

/// The range of widths a field has had on the complete (newline-terminated) lines of one file.
#[derive(Clone, Debug, PartialEq)]
struct Width {
    field: String,
    min: usize,
    max: usize,
}

/// What the checks remember of one file while it is read.
#[derive(Debug)]
pub struct FileChecks {
    path: PathBuf,
    /// The file name, as notes report it.
    name: String,
    widths: Vec<Width>,
}

impl FileChecks {
    fn new(path: &Path) -> FileChecks {
        let name =
            path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into());
        FileChecks { path: path.to_owned(), name, widths: Vec::new() }
    }

    fn widen(&mut self, seen: Vec<(String, usize)>) {
        for (field, width) in seen {
            match self.widths.iter_mut().find(|w| w.field == field) {
                Some(w) => {
                    w.min = w.min.min(width);
                    w.max = w.max.max(width);
                }
                None => self.widths.push(Width { field, min: width, max: width }),
            }
        }
    }
}

/// One record as a loader parses it: where an optional field that cannot be parsed is left
/// missing, and where a field's width is compared with the file's complete lines.
#[derive(Debug)]
pub struct Record<'f> {
    terminated: bool,
    widths: &'f [Width],
    seen: Vec<(String, usize)>,
    unparsed: Vec<(String, String)>,
}

impl Record<'_> {
    /// Leaves the optional `field` missing because `value` cannot be parsed: the record is kept,
    /// and the field is counted per file in the load's notes. Always `None`, for the caller's
    /// convenience.
    pub fn unparsed<T>(&mut self, field: &str, value: &str) -> Option<T> {
        self.unparsed.push((field.to_owned(), value.to_owned()));
        None
    }

    /// Checks the width of `value` in `field`, a column whose width is near constant (Unix
    /// timestamps, `4.5`-style ratings). On a line without a newline — the last, maybe cut off —
    /// a value shorter than on every complete line of the file is an error; that is how a
    /// timestamp cut short, which still parses, is caught.
    pub fn width(&mut self, field: &str, value: &str) -> Result<(), FieldError> {
        let width = value.trim_ascii().len();
        if !self.terminated {
            if let Some(w) = self.widths.iter().find(|w| w.field == field).filter(|w| width < w.min) {
                let seen =
                    if w.min == w.max { format!("{}", w.min) } else { format!("{}–{}", w.min, w.max) };
                return Err(FieldError::field(
                    field,
                    format!("{value:?} is shorter than on every other line ({seen} characters)"),
                ));
            }
        }
        self.seen.push((field.to_owned(), width));
        Ok(())
    }
}

/// Opens `path` for reading, decompressing transparently when it starts with the gzip magic.
/// Its bytes read (as stored) drive a progress bar named after the file ([`crate::progress`]).
pub fn open(path: &Path) -> Result<Box<dyn BufRead>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let size = file.metadata().map_or(0, |m| m.len());
    let name =
        path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let mut file = BufReader::with_capacity(1 << 16, crate::progress::bytes(size, &name).wrap_read(file));
    let magic = file.fill_buf().with_context(|| format!("cannot read {}", path.display()))?;
    if magic.starts_with(&[0x1f, 0x8b]) {
        let decoder = flate2::bufread::MultiGzDecoder::new(file);
        Ok(Box::new(BufReader::with_capacity(1 << 16, decoder)))
    } else {
        Ok(Box::new(file))
    }
}

/// Reads a file line by line with 1-based line numbers, without allocating per line.
pub struct Lines {
    path: PathBuf,
    reader: Box<dyn BufRead>,
    bytes: Vec<u8>,
    decoded: String,
    line: u64,
    text: Text,
}

impl Lines {
    pub fn open(path: &Path, text: Text) -> Result<Lines> {
        Ok(Lines {
            path: path.to_owned(),
            reader: open(path)?,
            bytes: Vec::new(),
            decoded: String::new(),
            line: 0,
            text,
        })
    }

    /// The next line without its terminator, or `None` at the end.
    /// I/O errors (including a truncated or corrupt gzip stream) are fatal even under
    /// `--lenient`, since nothing after them can be trusted. Invalid UTF-8 is a record error.
    pub fn next_line(&mut self) -> Result<Option<Line<'_>>> {
        self.bytes.clear();
        let n = self.reader.read_until(b'\n', &mut self.bytes).with_context(|| {
            format!(
                "{}: cannot read after line {} (truncated or corrupt file?)",
                self.path.display(),
                self.line
            )
        })?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        let terminated = self.bytes.last() == Some(&b'\n');
        while matches!(self.bytes.last(), Some(b'\n' | b'\r')) {
            self.bytes.pop();
        }
        if self.line == 1 && self.bytes.starts_with(b"\xEF\xBB\xBF") {
            self.bytes.drain(..3);
        }
        let text = match (std::str::from_utf8(&self.bytes), self.text) {
            (Ok(text), _) => Ok(text),
            (Err(err), Text::Utf8) => Err(FieldError::record(format!(
                "not valid UTF-8 (bad byte at column {})",
                err.valid_up_to() + 1
            ))),
            (Err(_), Text::Latin1OrUtf8) => {
                self.decoded.clear();
                self.decoded.extend(self.bytes.iter().map(|&b| b as char));
                Ok(self.decoded.as_str())
            }
        };
        Ok(Some(Line { number: self.line, terminated, text }))
    }
}

/// One line of a file, as [`Lines::next_line`] reads it.
#[derive(Debug)]
pub struct Line<'a> {
    /// 1-based.
    pub number: u64,
    /// Whether it ended with a newline; only a file's last line can lack one.
    pub terminated: bool,
    /// The decoded text, without its terminator; an error when it cannot be decoded.
    pub text: Result<&'a str, FieldError>,
}

impl Line<'_> {
    /// Whether the line holds nothing but whitespace (such lines are not records).
    pub fn is_blank(&self) -> bool {
        self.text.as_ref().is_ok_and(|l| l.trim_ascii().is_empty())
    }
}

/// Reads a whole file as one record per line: calls `each` with every non-blank line and applies
/// `policy` (see [`Policy::record`]) to the lines that cannot be decoded and to the errors `each`
/// returns.
pub fn for_each_line(
    path: &Path,
    text: Text,
    policy: &mut Policy,
    mut each: impl FnMut(&str, &mut Record) -> Result<(), FieldError>,
) -> Result<()> {
    let mut lines = Lines::open(path, text)?;
    let mut file = policy.file(path);
    while let Some(line) = lines.next_line()? {
        if line.is_blank() {
            continue;
        }
        policy.record(&mut file, line.number, line.terminated, |record| each(line.text?, record))?;
    }
    Ok(())
}

/// Parses a required number in column `name`.
pub fn parse_f32(value: &str, name: &str) -> Result<f32, FieldError> {
    match value.trim_ascii().parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(FieldError::field(name, format!("expected a number, found {value:?}"))),
    }
}

/// Parses an integer timestamp in column `name`; `881250949.0` style floats are accepted.
pub fn parse_timestamp(value: &str, name: &str) -> Result<i64, FieldError> {
    let value = value.trim_ascii();
    if let Ok(v) = value.parse::<i64>() {
        return Ok(v);
    }
    match value.parse::<f64>() {
        Ok(v) if v.is_finite() && v.abs() < 9.0e15 => Ok(v as i64),
        _ => Err(FieldError::field(name, format!("expected an integer timestamp, found {value:?}"))),
    }
}

/// Returns column `index` (named `name` in errors) of an already split record.
pub fn column<'a>(fields: &[&'a str], index: usize, name: &str) -> Result<&'a str, FieldError> {
    fields.get(index).copied().ok_or_else(|| {
        FieldError::field(
            name,
            format!("missing (the line has {} columns, expected at least {})", fields.len(), index + 1),
        )
    })
}

/// Returns a required, non-empty identifier column.
pub fn id_column<'a>(fields: &[&'a str], index: usize, name: &str) -> Result<&'a str, FieldError> {
    let value = column(fields, index, name)?.trim_ascii();
    if value.is_empty() {
        return Err(FieldError::field(name, "empty"));
    }
    Ok(value)
}

/// Helpers for one JSON object per line, naming the key at fault.
pub mod json {
    use std::borrow::Cow;

    use serde_json::{Map, Value};

    use super::{FieldError, Record};

    pub type Object = Map<String, Value>;

    /// One review line, whatever the dump calls its fields.
    #[derive(Debug, PartialEq)]
    pub struct Review<'a> {
        pub user: Cow<'a, str>,
        pub item: Cow<'a, str>,
        pub rating: f32,
        pub timestamp: i64,
        pub text: Option<Cow<'a, str>>,
    }

    impl Review<'_> {
        /// The review text as a reference explanation (blank text is none).
        pub fn reference(&self) -> Option<Box<crate::data::Reference>> {
            let text = self.text.as_deref().filter(|t| !t.trim().is_empty())?;
            Some(Box::new(crate::data::Reference { text: text.to_owned(), noisy: false }))
        }
    }

    /// Whether an id read by a typed fast path is one that [`id`] would accept unchanged.
    pub fn clean_id(id: &str) -> bool {
        !id.is_empty() && id.trim_ascii().len() == id.len()
    }

    pub fn parse_object(line: &str) -> Result<Object, FieldError> {
        // `FromStr for Value` is compiled (optimised) inside serde_json; a generic `from_str`
        // would be instantiated here, at this crate's debug opt-level, and run several times slower.
        match line.parse::<Value>() {
            Ok(Value::Object(map)) => Ok(map),
            Ok(other) => Err(FieldError::record(format!("expected a JSON object, found {}", kind(&other)))),
            Err(err) => Err(FieldError::record(format!(
                "not valid JSON at column {}: {}",
                err.column(),
                reason(&err)
            ))),
        }
    }

    /// serde_json's message without its " at line L column C" suffix: within a JSON-lines file
    /// its line is always 1, which would contradict the file line the error is reported at.
    pub fn reason(err: &serde_json::Error) -> String {
        let text = err.to_string();
        match text.rfind(" at line ") {
            Some(cut) => text[..cut].to_owned(),
            None => text,
        }
    }

    pub fn kind(value: &Value) -> &'static str {
        match value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }

    fn missing(key: &str) -> FieldError {
        FieldError::field(key, "missing")
    }

    fn wrong(key: &str, expected: &str, found: &Value) -> FieldError {
        FieldError::field(key, format!("expected {expected}, found {}", kind(found)))
    }

    /// A required string; numbers are accepted as ids (some dumps write `"item": 42`).
    pub fn id<'a>(obj: &'a Object, key: &str) -> Result<std::borrow::Cow<'a, str>, FieldError> {
        match obj.get(key) {
            None | Some(Value::Null) => Err(missing(key)),
            Some(Value::String(s)) if s.trim_ascii().is_empty() => Err(FieldError::field(key, "empty")),
            Some(Value::String(s)) => Ok(std::borrow::Cow::Borrowed(s.trim_ascii())),
            Some(Value::Number(n)) => Ok(std::borrow::Cow::Owned(n.to_string())),
            Some(other) => Err(wrong(key, "a string", other)),
        }
    }

    pub fn opt_str<'a>(obj: &'a Object, key: &str) -> Result<Option<&'a str>, FieldError> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(wrong(key, "a string", other)),
        }
    }

    /// An optional number; numeric strings are accepted since some dumps quote them.
    pub fn opt_f64(obj: &Object, key: &str) -> Result<Option<f64>, FieldError> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(Value::String(s)) => match s.trim_ascii().parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(Some(v)),
                _ => Err(FieldError::field(key, format!("expected a number, found {s:?}"))),
            },
            Some(other) => Err(wrong(key, "a number", other)),
        }
    }

    pub fn f64(obj: &Object, key: &str) -> Result<f64, FieldError> {
        opt_f64(obj, key)?.ok_or_else(|| missing(key))
    }

    pub fn opt_i64(obj: &Object, key: &str) -> Result<Option<i64>, FieldError> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(v) => Ok(Some(v)),
                None => Err(FieldError::field(key, format!("expected an integer, found {n}"))),
            },
            Some(Value::String(s)) => s
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| FieldError::field(key, format!("expected an integer, found {s:?}"))),
            Some(other) => Err(wrong(key, "an integer", other)),
        }
    }

    pub fn i64(obj: &Object, key: &str) -> Result<i64, FieldError> {
        opt_i64(obj, key)?.ok_or_else(|| missing(key))
    }

    pub fn opt_bool(obj: &Object, key: &str) -> Result<Option<bool>, FieldError> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(wrong(key, "a boolean", other)),
        }
    }

    /// An optional key read with `read`: a value of the wrong type or that does not parse is left
    /// missing and counted (see [`Record::unparsed`]) instead of failing the record.
    pub fn optional<'a, T>(
        record: &mut Record,
        obj: &'a Object,
        key: &str,
        read: impl FnOnce(&'a Object, &str) -> Result<Option<T>, FieldError>,
    ) -> Option<T> {
        match read(obj, key) {
            Ok(value) => value,
            Err(_) => record.unparsed(key, &obj.get(key).map(shown).unwrap_or_default()),
        }
    }

    /// A value as a report shows it: strings without their quotes, anything else as JSON.
    pub fn shown(value: &Value) -> String {
        match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    /// Every string inside `value`, depth first: `"a"`, `["a","b"]` and `[["a"],["b"]]` alike.
    pub fn strings<'a>(value: &'a Value, key: &str, out: &mut Vec<&'a str>) -> Result<(), FieldError> {
        match value {
            Value::Null => Ok(()),
            Value::String(s) => {
                out.push(s);
                Ok(())
            }
            Value::Array(values) => values.iter().try_for_each(|v| strings(v, key, out)),
            other => Err(wrong(key, "strings or lists of strings", other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn collect(path: &Path, text: Text) -> Result<Vec<String>> {
        let mut lines = Lines::open(path, text)?;
        let mut out = Vec::new();
        while let Some(line) = lines.next_line()? {
            out.push(line.text.map_err(|e| anyhow::anyhow!(e.message))?.to_owned());
        }
        Ok(out)
    }

    #[test]
    fn reads_crlf_bom_and_gzip_alike() {
        let dir = tempfile::tempdir().unwrap();
        let plain = write(dir.path(), "a.txt", b"\xEF\xBB\xBFone\r\ntwo\nthree");
        let gz = write(dir.path(), "a.txt.gz", &gzip(b"one\r\ntwo\nthree"));
        for path in [plain, gz] {
            assert_eq!(collect(&path, Text::Utf8).unwrap(), ["one", "two", "three"]);
        }
    }

    #[test]
    fn latin1_fallback_decodes_and_strict_utf8_reports_the_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "m.dat", b"Mis\xE9rables\nCaf\xC3\xA9\n");
        assert_eq!(collect(&path, Text::Latin1OrUtf8).unwrap(), ["Misérables", "Café"]);
        let err = collect(&path, Text::Utf8).unwrap_err().to_string();
        assert!(err.contains("UTF-8") && err.contains("column 4"), "{err}");
    }

    #[test]
    fn truncated_gzip_is_an_error_naming_the_file_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let body: String = (0..2000).map(|i| format!("line {i} with some padding text\n")).collect();
        let full = gzip(body.as_bytes());
        let path = write(dir.path(), "cut.json.gz", &full[..full.len() / 2]);
        let err = format!("{:#}", collect(&path, Text::Utf8).unwrap_err());
        assert!(err.contains("cut.json.gz") && err.contains("truncated"), "{err}");
    }

    #[test]
    fn strict_policy_locates_the_error_and_lenient_counts_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "r.tsv", b"1\t5\n\n2\tx\n3\t4\n");
        let parse =
            |line: &str| parse_f32(column(&line.split('\t').collect::<Vec<_>>(), 1, "rating")?, "rating");
        let mut strict = Policy::new(false);
        let err = for_each_line(&path, Text::Utf8, &mut strict, |l, _| parse(l).map(drop)).unwrap_err();
        assert_eq!(
            format!("{}", err.root_cause()),
            format!("{}:3: field `rating`: expected a number, found \"x\"", path.display())
        );
        let mut lenient = Policy::new(true);
        let mut ok = 0;
        for_each_line(&path, Text::Utf8, &mut lenient, |l, _| parse(l).map(|_| ok += 1)).unwrap();
        assert_eq!((ok, lenient.notes.skipped), (2, 1));
        let first = lenient.notes.first_skipped.unwrap();
        assert!(first.ends_with("r.tsv:3: field `rating`: expected a number, found \"x\""), "{first}");
    }

    /// `user<TAB>timestamp` lines, the timestamp width-checked.
    fn read_stamps(path: &Path, lenient: bool) -> (Result<()>, Policy, Vec<i64>) {
        let mut policy = Policy::new(lenient);
        let mut stamps = Vec::new();
        let result = for_each_line(path, Text::Utf8, &mut policy, |l, record| {
            let fields: Vec<&str> = l.split('\t').collect();
            let raw = column(&fields, 1, "timestamp")?;
            record.width("timestamp", raw)?;
            stamps.push(parse_timestamp(raw, "timestamp")?);
            Ok(())
        });
        (result, policy, stamps)
    }

    #[test]
    fn a_last_line_cut_inside_a_field_is_an_error_and_a_whole_one_a_note() {
        let dir = tempfile::tempdir().unwrap();
        let whole = write(dir.path(), "whole.tsv", b"a\t881250949\nb\t891717742\nc\t878887116");
        let (result, policy, stamps) = read_stamps(&whole, false);
        result.unwrap();
        assert_eq!(stamps.len(), 3);
        assert_eq!(
            policy.notes.unterminated,
            [crate::data::notes::Unterminated { file: "whole.tsv".into(), line: 3 }]
        );

        let cut = write(dir.path(), "cut.tsv", b"a\t881250949\nb\t891717742\nc\t8788");
        let (result, _, _) = read_stamps(&cut, false);
        let err = format!("{:#}", result.unwrap_err());
        assert!(
            err.contains(
                "cut.tsv:3: field `timestamp`: \"8788\" is shorter than on every other line (9 characters) \
                          (the last line has no newline: the file looks cut off here)"
            ),
            "{err}"
        );
        let (result, policy, stamps) = read_stamps(&cut, true);
        result.unwrap();
        assert_eq!((stamps.len(), policy.notes.skipped), (2, 1));
        assert!(policy.notes.unterminated.is_empty());

        // The same short value on a line that ends with a newline is the file's business.
        let short = write(dir.path(), "short.tsv", b"a\t881250949\nb\t8788\n");
        assert!(read_stamps(&short, false).0.is_ok());
    }

    #[test]
    fn unparsed_optional_fields_are_counted_only_for_kept_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "items.tsv", b"1\t1995\n2\tunknown\n3\tsoon\tx\n4\t?\n");
        let mut policy = Policy::new(true);
        let mut years = Vec::new();
        for_each_line(&path, Text::Utf8, &mut policy, |l, record| {
            let fields: Vec<&str> = l.split('\t').collect();
            if fields.len() != 2 {
                return Err(FieldError::record("expected 2 columns"));
            }
            years.push(fields[1].parse::<i32>().ok().or_else(|| record.unparsed("year", fields[1])));
            Ok(())
        })
        .unwrap();
        assert_eq!(years, [Some(1995), None, None]);
        assert_eq!(policy.notes.skipped, 1);
        let u = &policy.notes.unparsed;
        assert_eq!((u.len(), u[0].count, u[0].first_line, u[0].first_value.as_str()), (1, 2, 2, "unknown"));
    }

    #[test]
    fn numbers_and_timestamps() {
        assert_eq!(parse_f32(" 4.5", "rating"), Ok(4.5));
        assert!(parse_f32("NaN", "rating").is_err());
        assert_eq!(parse_timestamp("881250949.0", "timestamp"), Ok(881250949));
        assert_eq!(parse_timestamp("978300760", "timestamp"), Ok(978300760));
        let err = parse_timestamp("yesterday", "timestamp").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("timestamp"));
        let err = column(&["1", "2"], 3, "timestamp").unwrap_err();
        assert!(err.message.contains("2 columns"), "{}", err.message);
    }

    #[test]
    fn json_helpers_name_the_key() {
        let obj = json::parse_object(r#"{"a": "x", "n": "3.5", "i": 7, "b": [1]}"#).unwrap();
        assert_eq!(json::f64(&obj, "n"), Ok(3.5));
        assert_eq!(json::i64(&obj, "i"), Ok(7));
        assert_eq!(json::f64(&obj, "zz").unwrap_err(), FieldError::field("zz", "missing"));
        assert_eq!(json::f64(&obj, "a").unwrap_err().field.as_deref(), Some("a"));
        assert_eq!(json::opt_str(&obj, "b").unwrap_err().message, "expected a string, found an array");
        assert!(json::parse_object("[1,2]").unwrap_err().message.contains("an array"));
        let err = json::parse_object("{\"a\": ").unwrap_err().message;
        assert_eq!(err, "not valid JSON at column 6: EOF while parsing a value");
    }
}

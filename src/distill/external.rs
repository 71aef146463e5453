//! External teacher outputs in place of the teach stage: explanations of the training samples
//! written by any engine (transformers or vLLM running a large teacher on a GPU cluster, or `prism
//! explain --split train`), as `{"user","item","text"}` JSON lines (other fields are ignored;
//! `latency_ms`/`ms` and `new_tokens` are kept when present). See docs/EXTERNAL_TEACHER.md.
//!
//! The file is validated up front, every row before anything is written: a row must name one of
//! the dataset's training samples (a user's train interaction after their first) or a user's test
//! item, else the error names the line and what the pair is instead (a dev item, a first
//! interaction with no history, no interaction at all). Then the stage keeps, in the job's
//! sample-list order, one text per sample the preset teaches (`teach/cache.jsonl`, exactly as our
//! own teacher's cache, so filter, train and evaluate run on it unchanged) and the rows for test
//! items (`teach/external_test.jsonl`, the teacher's side of the evaluation), and reports what it
//! found in `teach/external.json`: the preset's sample count against the rows that cover it,
//! the samples the file lacks (with their position in the sample list, which is the line of
//! `prism explain --split train --preset NAME --prompts-only`), duplicate rows with both line
//! numbers (the first is kept), and rows for training samples the preset does not teach (unused).
//! The job records the file's path, row count and SHA-256; a resumed job whose teach stage is not
//! complete refuses a file that changed since.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};

use super::events::{DistillEvent, EventKind, EventSink, Stage};
use super::teach::{Taught, CACHE_FILE};
use crate::data::{Dataset, Part, Split};
use crate::durable;
use crate::explain::samples::Sample;

/// Validation's findings, also the teach stage's `complete.json`.
pub const REPORT_FILE: &str = "external.json";
/// The external teacher's rows for test items.
pub const TEST_FILE: &str = "external_test.jsonl";
/// How many missing samples and duplicate rows the report lists (all are counted).
const LISTED: usize = 20;

/// The file a job learns from, as recorded in `job.json`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeacherOutputs {
    pub path: PathBuf,
    /// Non-blank lines.
    pub rows: usize,
    pub sha256: String,
}

impl TeacherOutputs {
    /// The identity of the file at `path` (made absolute).
    pub fn identify(path: &Path) -> Result<TeacherOutputs> {
        let path = std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))?;
        let (rows, sha256) = scan(&path, |_, _| Ok(()))?;
        Ok(TeacherOutputs { path, rows, sha256 })
    }
}

/// Reads `path` line by line, handing each non-blank line (with its 1-based number) to `on_line`
/// while hashing the bytes; returns the non-blank line count and the SHA-256 in hex.
fn scan(path: &Path, mut on_line: impl FnMut(usize, &str) -> Result<()>) -> Result<(usize, String)> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open teacher outputs {}", path.display()))?;
    let mut reader = BufReader::new(Hashing { inner: file, hasher: Sha256::new() });
    let mut line = String::new();
    let (mut number, mut rows) = (0, 0);
    loop {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .with_context(|| format!("{}, line {}: cannot read (not UTF-8?)", path.display(), number + 1))?;
        if read == 0 {
            break;
        }
        number += 1;
        if !line.trim().is_empty() {
            rows += 1;
            on_line(number, line.trim_end_matches(['\n', '\r']))?;
        }
    }
    let digest = reader.into_inner().hasher.finalize();
    Ok((rows, digest.iter().map(|b| format!("{b:02x}")).collect()))
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// One row of the file.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub line: usize,
    pub user: String,
    pub item: String,
    pub text: String,
    /// Generation time, when the engine recorded it (`latency_ms` or `ms`).
    pub ms: Option<f64>,
    pub new_tokens: Option<usize>,
}

/// Parses one line; errors name `origin`, the line and the field.
pub fn parse_row(line: &str, number: usize, origin: &str) -> Result<Row> {
    let at = |msg: String| anyhow!("{origin}, line {number}: {msg}");
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| at(format!("not valid JSON: {e}")))?;
    let Some(object) = value.as_object() else {
        return Err(at("expected a JSON object with fields user, item, text".into()));
    };
    let id = |name: &str| match object.get(name) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(serde_json::Value::Number(n)) if n.is_u64() => Ok(n.to_string()),
        Some(other) => {
            Err(at(format!("field `{name}` must be a string or a non-negative integer, found {other}")))
        }
        None => Err(at(format!("field `{name}` is missing"))),
    };
    let text = match object.get("text") {
        Some(serde_json::Value::String(s)) => s.trim().to_owned(),
        Some(other) => return Err(at(format!("field `text` must be a string, found {other}"))),
        None => return Err(at("field `text` is missing".into())),
    };
    let number_field = |name: &str| match object.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|x| x.is_finite() && *x >= 0.0)
            .map(Some)
            .ok_or_else(|| at(format!("field `{name}` must be a non-negative number, found {v}"))),
    };
    let ms = match number_field("latency_ms")? {
        Some(ms) => Some(ms),
        None => number_field("ms")?,
    };
    Ok(Row {
        line: number,
        user: id("user")?,
        item: id("item")?,
        text,
        ms,
        new_tokens: number_field("new_tokens")?.map(|n| n as usize),
    })
}

/// A sample of the preset's list the file lacks.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Missing {
    /// 1-based position in the job's sample list.
    pub position: usize,
    pub user: String,
    pub item: String,
}

/// A row naming a (user, item) an earlier row named; the earlier one is kept.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Duplicate {
    pub user: String,
    pub item: String,
    pub line: usize,
    pub first_line: usize,
    /// Whether the texts differ.
    pub differing: bool,
}

/// What validation found (`teach/external.json`, and the summary's `external_teacher`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExternalReport {
    pub path: PathBuf,
    pub rows: usize,
    pub sha256: String,
    /// Samples the preset teaches.
    pub wanted: usize,
    /// Of those, the ones the file explains: what the filter sees.
    pub found: usize,
    pub missing: usize,
    /// The first missing samples.
    pub missing_listed: Vec<Missing>,
    pub duplicates: usize,
    pub duplicates_listed: Vec<Duplicate>,
    /// Rows for training samples the preset does not teach (ignored).
    pub unused: usize,
    /// Rows for test items: the teacher's texts in the evaluation.
    pub test_rows: usize,
}

/// What a (user, item) pair of the dataset is to a distillation job.
enum Role {
    Train,
    Test,
}

/// Finds what `row` names, or says why it cannot be used.
fn role(dataset: &Dataset, split: &Split, row: &Row, origin: &str) -> Result<Role> {
    let at = |msg: String| anyhow!("{origin}, line {}: {msg}", row.line);
    let user = dataset
        .user_by_id(&row.user)
        .ok_or_else(|| at(format!("field `user`: unknown user {:?}", row.user)))?;
    let item = dataset
        .item_by_id(&row.item)
        .ok_or_else(|| at(format!("field `item`: unknown item {:?}", row.item)))?;
    if split.held_out(dataset, user, Part::Test).is_some_and(|i| i.item == item) {
        return Ok(Role::Test);
    }
    let pair = format!("(user {:?}, item {:?})", row.user, row.item);
    if split.held_out(dataset, user, Part::Dev).is_some_and(|i| i.item == item) {
        return Err(at(format!(
            "{pair} is the user's dev item, which the job keeps for choosing the student's checkpoint \
             (against the references); a teacher file has training samples and optionally test items"
        )));
    }
    match split.train(dataset, user).iter().position(|i| i.item == item) {
        Some(0) => Err(at(format!(
            "{pair} is the user's first interaction: with no earlier item it is no sample to explain"
        ))),
        Some(_) => Ok(Role::Train),
        None => Err(at(format!("{pair}: the user has no interaction with that item in the dataset"))),
    }
}

/// What [`validate`] keeps.
pub struct Validated {
    pub report: ExternalReport,
    /// One explanation per taught sample the file covers, in sample-list order.
    pub taught: Vec<Taught>,
    /// The rows for test items, in file order.
    pub test: Vec<Row>,
}

/// Reads and checks the file against the job's sample list `teach` (see the module docs).
pub fn validate(outputs: &TeacherOutputs, dataset: &Dataset, teach: &[Sample]) -> Result<Validated> {
    let path = &outputs.path;
    let origin = path.display().to_string();
    let split = Split::leave_last_out(dataset);
    let positions: HashMap<(String, String), usize> =
        teach.iter().enumerate().map(|(i, s)| (s.key(dataset), i)).collect();
    let mut by_position: Vec<Option<Row>> = vec![None; teach.len()];
    let mut test: Vec<Row> = Vec::new();
    let mut first_lines: HashMap<(String, String), (usize, String)> = HashMap::new();
    let mut duplicates = Vec::new();
    let mut unused = 0;
    let (rows, sha256) = scan(path, |number, line| {
        let row = parse_row(line, number, &origin)?;
        let key = (row.user.clone(), row.item.clone());
        if let Some((first_line, text)) = first_lines.get(&key) {
            duplicates.push(Duplicate {
                user: row.user,
                item: row.item,
                line: number,
                first_line: *first_line,
                differing: *text != row.text,
            });
            return Ok(());
        }
        let role = role(dataset, &split, &row, &origin)?;
        first_lines.insert(key.clone(), (number, row.text.clone()));
        match (role, positions.get(&key)) {
            (Role::Test, _) => test.push(row),
            (Role::Train, Some(&p)) => by_position[p] = Some(row),
            (Role::Train, None) => unused += 1,
        }
        Ok(())
    })?;
    if (rows, sha256.as_str()) != (outputs.rows, outputs.sha256.as_str()) {
        bail!(
            "{origin} changed since the job was made ({} rows, SHA-256 {}; now {rows} rows, {sha256}); \
             a job learns from one file: start a new job (another --out) to use this one",
            outputs.rows,
            outputs.sha256
        );
    }
    let missing: Vec<Missing> = teach
        .iter()
        .zip(&by_position)
        .enumerate()
        .filter(|(_, (_, row))| row.is_none())
        .map(|(i, (s, _))| {
            let (user, item) = s.key(dataset);
            Missing { position: i + 1, user, item }
        })
        .collect();
    let taught: Vec<Taught> = by_position
        .into_iter()
        .flatten()
        .map(|r| Taught {
            user: r.user,
            item: r.item,
            text: r.text,
            ms: r.ms.unwrap_or(0.0),
            new_tokens: r.new_tokens.unwrap_or(0),
        })
        .collect();
    let report = ExternalReport {
        path: path.clone(),
        rows,
        sha256,
        wanted: teach.len(),
        found: taught.len(),
        missing: missing.len(),
        missing_listed: missing.into_iter().take(LISTED).collect(),
        duplicates: duplicates.len(),
        duplicates_listed: duplicates.into_iter().take(LISTED).collect(),
        unused,
        test_rows: test.len(),
    };
    Ok(Validated { report, taught, test })
}

/// The teach stage from the file: validates it and writes the stage's cache, the test rows and
/// the report into `stage_dir`. Fails when the file covers none of the samples.
pub fn teach_from_file(
    stage_dir: &Path,
    outputs: &TeacherOutputs,
    dataset: &Dataset,
    teach: &[Sample],
    events: &mut EventSink<'_>,
) -> Result<ExternalReport> {
    events.emit(
        DistillEvent::new(Stage::Teach, EventKind::Started, 0, teach.len())
            .message(format!("reading the teacher's outputs from {}", outputs.path.display())),
    )?;
    let Validated { report, taught, test } = validate(outputs, dataset, teach)?;
    if report.found == 0 {
        bail!(
            "{} explains none of the {} training samples this job teaches ({} rows for other training \
             samples, {} for test items). Export the job's samples with `prism explain --split train \
             --preset NAME --prompts-only --out F.jsonl` (the same preset as the job) and generate from those",
            outputs.path.display(),
            report.wanted,
            report.unused,
            report.test_rows
        );
    }
    let mut cache = String::new();
    for t in &taught {
        cache.push_str(&serde_json::to_string(t)?);
        cache.push('\n');
    }
    let mut tests = String::new();
    for r in &test {
        tests.push_str(&serde_json::json!({"user": r.user, "item": r.item, "text": r.text}).to_string());
        tests.push('\n');
    }
    durable::write_file(&stage_dir.join(TEST_FILE), tests.as_bytes())?;
    durable::write_file(&stage_dir.join(CACHE_FILE), cache.as_bytes())?;
    durable::write_json(&stage_dir.join(REPORT_FILE), &report)?;
    let mut message = format!(
        "{} rows: {} of the {} samples the preset teaches, {} for test items",
        report.rows, report.found, report.wanted, report.test_rows
    );
    if report.missing > 0 {
        let first = &report.missing_listed[0];
        message.push_str(&format!(
            "; {} missing (the first: sample {}, user {:?}, item {:?})",
            report.missing, first.position, first.user, first.item
        ));
    }
    if report.duplicates > 0 {
        let d = &report.duplicates_listed[0];
        message.push_str(&format!(
            "; {} duplicate rows, the first kept (e.g. line {} repeats line {})",
            report.duplicates, d.line, d.first_line
        ));
    }
    if report.unused > 0 {
        message.push_str(&format!(
            "; {} rows for training samples the preset does not teach, unused",
            report.unused
        ));
    }
    events.emit(
        DistillEvent::new(Stage::Teach, EventKind::Progress, report.found, report.wanted).message(message),
    )?;
    Ok(report)
}

/// The external teacher's texts for test items, by (user, item), as the teach stage kept them.
pub fn read_test_texts(stage_dir: &Path) -> Result<HashMap<(String, String), String>> {
    #[derive(serde::Deserialize)]
    struct TestRow {
        user: String,
        item: String,
        text: String,
    }
    let rows: Vec<TestRow> = durable::read_json_lines(&stage_dir.join(TEST_FILE))?;
    Ok(rows.into_iter().map(|r| ((r.user, r.item), r.text)).collect())
}

/// The validation report of a job's teach stage.
pub fn read_report(stage_dir: &Path) -> Result<ExternalReport> {
    crate::model::checkpoint::read_json(&stage_dir.join(REPORT_FILE))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_row_reads_back(
            user in "\\PC*",
            item in any::<u64>(),
            text in "\\PC*",
            ms in proptest::option::of(0.0f64..1e9),
        ) {
            let mut value = serde_json::json!({"user": user, "item": item, "text": text});
            if let Some(ms) = ms {
                value["latency_ms"] = serde_json::json!(ms);
            }
            let row = parse_row(&value.to_string(), 9, "f").unwrap();
            prop_assert_eq!((row.user, row.item, row.text), (user, item.to_string(), text.trim().to_owned()));
            prop_assert_eq!(row.line, 9);
            // serde_json parses floats to within an ulp unless built with `float_roundtrip`.
            match (row.ms, ms) {
                (Some(a), Some(b)) => prop_assert!((a - b).abs() <= b * 1e-15, "{} vs {}", a, b),
                (a, b) => prop_assert_eq!(a, b),
            }
        }

        #[test]
        fn any_line_is_a_row_or_an_error_naming_it(line in "\\PC*") {
            if let Err(e) = parse_row(&line, 7, "f") {
                prop_assert!(e.to_string().starts_with("f, line 7: "), "{}", e);
            }
        }
    }

    #[test]
    fn rows_take_string_or_integer_ids_and_optional_timings() {
        let row = parse_row(
            r#"{"user": 7, "item": "m1", "text": " A drama. ", "latency_ms": 12.5, "model": "x"}"#,
            3,
            "f",
        )
        .unwrap();
        assert_eq!(
            (row.line, row.user.as_str(), row.item.as_str(), row.text.as_str()),
            (3, "7", "m1", "A drama.")
        );
        assert_eq!((row.ms, row.new_tokens), (Some(12.5), None));
        let row =
            parse_row(r#"{"user": "u", "item": 4, "text": "", "ms": 3, "new_tokens": 9}"#, 1, "f").unwrap();
        assert_eq!((row.ms, row.new_tokens, row.text.as_str()), (Some(3.0), Some(9), ""));
    }

    #[test]
    fn bad_rows_name_the_line_and_field() {
        for (line, expected) in [
            ("{\"user\": \"u\", \"item\": \"i\"}", "line 5: field `text` is missing"),
            (
                "{\"user\": -1, \"item\": \"i\", \"text\": \"t\"}",
                "line 5: field `user` must be a string or a non-negative integer",
            ),
            ("{\"user\": \"u\", \"item\": \"i\", \"text\": 3}", "line 5: field `text` must be a string"),
            (
                "{\"user\": \"u\", \"item\": \"i\", \"text\": \"t\", \"ms\": \"fast\"}",
                "line 5: field `ms` must be a non-negative number",
            ),
            ("[1, 2]", "line 5: expected a JSON object"),
            ("{\"user\": \"u\", ", "line 5: not valid JSON"),
        ] {
            let err = parse_row(line, 5, "t.jsonl").unwrap_err().to_string();
            assert!(err.starts_with("t.jsonl, line 5") && err.contains(expected), "{line}: {err}");
        }
    }

    #[test]
    fn the_hash_is_sha256_of_the_bytes_and_blank_lines_are_not_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        std::fs::write(&path, "abc\n\n  \ndef").unwrap();
        let mut lines = Vec::new();
        let (rows, sha) = scan(&path, |n, l| {
            lines.push((n, l.to_owned()));
            Ok(())
        })
        .unwrap();
        assert_eq!(rows, 2);
        assert_eq!(lines, [(1, "abc".to_owned()), (4, "def".to_owned())]);
        // sha256sum of the same bytes.
        let expected: String = Sha256::digest(b"abc\n\n  \ndef").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(sha, expected);
        assert_eq!(
            Sha256::digest(b"abc").iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

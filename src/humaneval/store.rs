//! Annotator files: `annotations/NAME.jsonl`, append-only, one record per line, each fsynced by
//! [`crate::durable::JsonLines`] before `append` returns. The first record names the study and
//! its format version; every judgement after it answers one item. A later judgement of the same
//! item supersedes the earlier ones (that is how "go back and change an answer" is stored), but
//! all of them stay in the file, and the time spent on an item is the sum over them.
//!
//! Reading never drops anything silently: a torn last line (a kill during a write) comes back as
//! an [`Issue`] to show the user; any other bad line is an error naming the file, line and field.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};

use super::lock::AnnotatorLock;
use super::slot_letter;
use super::study::{check_annotator_name, Study, ANNOTATIONS_DIR, STUDY_VERSION};
use crate::durable::{read_json_lines_reporting, JsonLines, TornLine};

/// One line of an annotator file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case", deny_unknown_fields)]
pub enum Record {
    Start { version: u32, study: String, annotator: String, at_ms: u64 },
    Judgement(Judgement),
}

/// An annotator's answer for one item. Slots are as the annotator saw them; `texts` maps them to
/// the study's text positions (the key maps those to systems).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Judgement {
    pub item: String,
    /// `texts[s]`: the text position shown in slot `s`.
    pub texts: Vec<usize>,
    /// `ratings[s][c]`: slot `s`'s 1–5 rating on criterion `c`.
    pub ratings: Vec<Vec<u8>>,
    pub preference: Preference,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// Milliseconds the item was on screen before this answer.
    pub ms: u64,
    /// Unix time of the answer, in milliseconds.
    pub at_ms: u64,
}

/// The overall preference: one slot, or a tie. Written as its letter (`"A"`) or `"tie"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Preference {
    Slot(usize),
    Tie,
}

impl TryFrom<String> for Preference {
    type Error = String;
    fn try_from(s: String) -> Result<Preference, String> {
        match s.as_bytes() {
            b"tie" => Ok(Preference::Tie),
            [c @ b'A'..=b'Z'] => Ok(Preference::Slot(usize::from(c - b'A'))),
            _ => Err(format!("preference must be a slot letter A–Z or \"tie\", found {s:?}")),
        }
    }
}

impl From<Preference> for String {
    fn from(p: Preference) -> String {
        p.to_string()
    }
}

impl fmt::Display for Preference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Preference::Slot(s) => write!(f, "{}", slot_letter(*s)),
            Preference::Tie => f.write_str("tie"),
        }
    }
}

/// Something to tell the user about an annotator file that is not an error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub path: PathBuf,
    pub line: usize,
    pub bytes: usize,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, line {}: torn last line ({} bytes, written when the session was killed); the answer \
             it held is lost and its item will be asked again",
            self.path.display(),
            self.line,
            self.bytes
        )
    }
}

/// Opens `annotator`'s side of the study in `dir` for a session: the study, checked, the
/// annotator's lock (a second session is refused), and what the annotator has recorded so far,
/// read under the lock (torn lines are in its `issues`, for the caller to report).
pub fn open_for(dir: &Path, annotator: &str) -> Result<(Study, Annotations, AnnotatorLock)> {
    check_annotator_name(annotator)?;
    let study = Study::open(dir)?;
    if !study.annotators.is_empty() && !study.annotators.iter().any(|a| a == annotator) {
        bail!("unknown annotator {annotator:?}: this study is for {}", study.annotators.join(", "));
    }
    let lock = AnnotatorLock::acquire(dir, annotator)?;
    let recorded = Annotations::load(dir, &study, annotator)?;
    Ok((study, recorded, lock))
}

pub fn annotator_path(dir: &Path, annotator: &str) -> PathBuf {
    dir.join(ANNOTATIONS_DIR).join(format!("{annotator}.jsonl"))
}

/// The annotators with a file in the study directory, sorted.
pub fn annotators(dir: &Path) -> Result<Vec<String>> {
    let folder = dir.join(ANNOTATIONS_DIR);
    let mut names = Vec::new();
    let entries = match std::fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
        Err(e) => return Err(anyhow!("cannot list {}: {e}", folder.display())),
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                if check_annotator_name(stem).is_ok() {
                    names.push(stem.to_owned());
                }
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Everything one annotator has recorded.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Annotations {
    pub annotator: String,
    /// Every judgement in file order, with its line.
    pub judgements: Vec<(usize, Judgement)>,
    pub issues: Vec<Issue>,
}

impl Annotations {
    /// Reads and checks `annotator`'s file against `study` (a missing file reads as empty).
    pub fn load(dir: &Path, study: &Study, annotator: &str) -> Result<Annotations> {
        let path = annotator_path(dir, annotator);
        let read = read_json_lines_reporting::<Record>(&path)?;
        let mut out = Annotations { annotator: annotator.to_owned(), ..Annotations::default() };
        let mut started = false;
        for (line, record) in read.records {
            let at = |e: String| anyhow!("{}, line {line}: {e}", path.display());
            match record {
                Record::Start { version, study: id, annotator: name, .. } => {
                    if version != STUDY_VERSION {
                        return Err(at(format!(
                            "annotations format version {version}, but this prism reads version {STUDY_VERSION}"
                        )));
                    }
                    if id != study.id {
                        return Err(at(format!(
                            "written for study {id}, but this directory holds study {}; the file belongs \
                             to another study",
                            study.id
                        )));
                    }
                    if name != annotator {
                        return Err(at(format!("written by annotator {name:?}, not {annotator:?}")));
                    }
                    started = true;
                }
                Record::Judgement(j) => {
                    if !started {
                        return Err(at("the file does not start with a start record".into()));
                    }
                    check_judgement(&j, study).map_err(at)?;
                    out.judgements.push((line, j));
                }
            }
        }
        if let Some(TornLine { line, bytes }) = read.torn {
            out.issues.push(Issue { path, line, bytes });
        }
        Ok(out)
    }

    /// The latest judgement of each item, by item id.
    pub fn latest(&self) -> BTreeMap<&str, &Judgement> {
        self.judgements.iter().map(|(_, j)| (j.item.as_str(), j)).collect()
    }

    /// Total milliseconds spent on each answered item, over all its judgements.
    pub fn time_ms(&self) -> BTreeMap<&str, u64> {
        let mut out = BTreeMap::new();
        for (_, j) in &self.judgements {
            *out.entry(j.item.as_str()).or_insert(0) += j.ms;
        }
        out
    }
}

fn check_judgement(j: &Judgement, study: &Study) -> Result<(), String> {
    if study.item_index(&j.item).is_none() {
        return Err(format!("field `item`: {:?} is not an item of the study", j.item));
    }
    let mut texts = j.texts.clone();
    texts.sort_unstable();
    if texts != (0..study.slots).collect::<Vec<_>>() {
        return Err(format!(
            "field `texts`: {:?} is not an order of the study's {} texts",
            j.texts, study.slots
        ));
    }
    if j.ratings.len() != study.slots || j.ratings.iter().any(|r| r.len() != study.criteria.len()) {
        return Err(format!(
            "field `ratings`: expected {} slots × {} criteria",
            study.slots,
            study.criteria.len()
        ));
    }
    if let Some(bad) = j.ratings.iter().flatten().find(|r| !(1..=5).contains(*r)) {
        return Err(format!("field `ratings`: {bad} is not a rating from 1 to 5"));
    }
    if let Preference::Slot(s) = j.preference {
        if s >= study.slots {
            return Err(format!("field `preference`: slot {} does not exist", slot_letter(s)));
        }
    }
    Ok(())
}

/// Appends an annotator's judgements, each fsynced before `append` returns; the only writer of
/// the file, as it holds the annotator's lock.
pub struct Writer {
    lines: JsonLines,
    _lock: AnnotatorLock,
}

impl Writer {
    /// Opens the annotator's file for appending (cutting off a torn last line, which
    /// [`Annotations::load`] has reported) and writes the start record to a new file.
    pub fn open(
        dir: &Path,
        study: &Study,
        annotator: &str,
        now_ms: u64,
        lock: AnnotatorLock,
    ) -> Result<Writer> {
        check_annotator_name(annotator)?;
        let path = annotator_path(dir, annotator);
        let fresh = std::fs::read(&path).map(|b| !b.contains(&b'\n')).unwrap_or(true);
        let mut lines = JsonLines::open(&path)?;
        if fresh {
            lines.append(&Record::Start {
                version: STUDY_VERSION,
                study: study.id.clone(),
                annotator: annotator.to_owned(),
                at_ms: now_ms,
            })?;
        }
        Ok(Writer { lines, _lock: lock })
    }

    pub fn append(&mut self, judgement: &Judgement) -> Result<()> {
        self.lines.append(&Record::Judgement(judgement.clone()))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::humaneval::study::tests::make_study;

    fn judgement(item: &str, score: u8, ms: u64) -> Judgement {
        Judgement {
            item: item.into(),
            texts: vec![2, 0, 1],
            ratings: vec![vec![score, 1], vec![2, 2], vec![3, 3]],
            preference: Preference::Slot(2),
            note: String::new(),
            ms,
            at_ms: 1,
        }
    }

    #[test]
    fn later_answers_supersede_and_times_add_up() {
        let dir = tempfile::tempdir().unwrap();
        let (study, _) = make_study(4, 0);
        let mut w =
            Writer::open(dir.path(), &study, "ann", 0, AnnotatorLock::acquire(dir.path(), "ann").unwrap())
                .unwrap();
        w.append(&judgement("q001", 1, 100)).unwrap();
        w.append(&judgement("q002", 2, 50)).unwrap();
        w.append(&judgement("q001", 5, 30)).unwrap();
        drop(w);
        // Reopening does not write a second start record.
        Writer::open(dir.path(), &study, "ann", 0, AnnotatorLock::acquire(dir.path(), "ann").unwrap())
            .unwrap();
        let a = Annotations::load(dir.path(), &study, "ann").unwrap();
        assert_eq!(a.judgements.len(), 3);
        assert_eq!(a.latest()["q001"].ratings[0][0], 5);
        assert_eq!(a.time_ms()["q001"], 130);
        assert!(a.issues.is_empty());
        assert_eq!(annotators(dir.path()).unwrap(), ["ann"]);
        let text = std::fs::read_to_string(annotator_path(dir.path(), "ann")).unwrap();
        assert_eq!(text.lines().filter(|l| l.contains("\"start\"")).count(), 1);
        assert!(text.contains("\"preference\":\"C\""), "{text}");
    }

    #[test]
    fn a_torn_last_line_is_reported_then_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let (study, _) = make_study(4, 0);
        let mut w =
            Writer::open(dir.path(), &study, "ann", 0, AnnotatorLock::acquire(dir.path(), "ann").unwrap())
                .unwrap();
        w.append(&judgement("q001", 1, 100)).unwrap();
        drop(w);
        let path = annotator_path(dir.path(), "ann");
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"record\":\"judgement\",\"item\":\"q0").unwrap();
        let a = Annotations::load(dir.path(), &study, "ann").unwrap();
        assert_eq!(a.judgements.len(), 1);
        assert_eq!(a.issues, [Issue { path: path.clone(), line: 3, bytes: 32 }]);
        assert!(a.issues[0].to_string().contains("ann.jsonl, line 3: torn last line"));
        let mut w =
            Writer::open(dir.path(), &study, "ann", 0, AnnotatorLock::acquire(dir.path(), "ann").unwrap())
                .unwrap();
        w.append(&judgement("q002", 3, 10)).unwrap();
        let a = Annotations::load(dir.path(), &study, "ann").unwrap();
        assert!(a.issues.is_empty());
        assert_eq!(a.latest().keys().copied().collect::<Vec<_>>(), ["q001", "q002"]);
    }

    #[test]
    fn bad_records_name_file_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let (study, _) = make_study(4, 0);
        let path = annotator_path(dir.path(), "ann");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let start = serde_json::to_string(&Record::Start {
            version: 1,
            study: study.id.clone(),
            annotator: "ann".into(),
            at_ms: 0,
        })
        .unwrap();
        let good = serde_json::to_string(&Record::Judgement(judgement("q001", 4, 1))).unwrap();
        let cases = [
            (good.replace("q001", "q999"), "line 2: field `item`"),
            (good.replace("[4,1]", "[6,1]"), "line 2: field `ratings`: 6"),
            (good.replace("\"C\"", "\"Z\""), "line 2: field `preference`: slot Z"),
            (good.replace("\"C\"", "\"left\""), "line 2"),
        ];
        for (line, expected) in cases {
            std::fs::write(&path, format!("{start}\n{line}\n")).unwrap();
            let err = format!("{:#}", Annotations::load(dir.path(), &study, "ann").unwrap_err());
            assert!(err.contains("ann.jsonl") && err.contains(expected), "{expected}: {err}");
        }
        std::fs::write(&path, format!("{}\n", start.replace(&study.id, "ffff"))).unwrap();
        let err = format!("{:#}", Annotations::load(dir.path(), &study, "ann").unwrap_err());
        assert!(err.contains("line 1: written for study ffff"), "{err}");
        std::fs::write(&path, format!("{}\n", start.replace("\"version\":1", "\"version\":9"))).unwrap();
        let err = format!("{:#}", Annotations::load(dir.path(), &study, "ann").unwrap_err());
        assert!(err.contains("annotations format version 9"), "{err}");
        for bad in ["", ".x", "a/b", "a b", "../x"] {
            assert!(check_annotator_name(bad).is_err(), "{bad:?}");
        }
        check_annotator_name("Ann-2_x.y").unwrap();
    }
}

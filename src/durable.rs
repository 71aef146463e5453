//! Writes that survive a crash or a kill: a file or a whole directory is written beside its final
//! place, flushed to disk, then renamed over it, so a reader sees the old version or the new one,
//! never half of one. Appended JSON lines are flushed line by line.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Flushes a directory entry (a rename or a new file) to disk.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot flush directory {}", dir.display()))
}

/// Flushes every file directly inside `dir`, then `dir` itself.
pub fn sync_tree(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.is_file() {
            File::open(&path)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("cannot flush {}", path.display()))?;
        }
    }
    sync_dir(dir)
}

fn parent(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Replaces `path` with `bytes` atomically.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent(path);
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = sibling(path, "tmp");
    let mut file = File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot move {} into place", tmp.display()))?;
    sync_dir(dir)
}

/// Replaces `path` with pretty-printed JSON atomically.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let mut text = serde_json::to_vec_pretty(value)?;
    text.push(b'\n');
    write_file(path, &text)
}

/// A temporary name beside `path`, unique per call: two threads of one process writing the same
/// file must not share (and truncate) each other's temporary file.
fn sibling(path: &Path, tag: &str) -> PathBuf {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    parent(path).join(format!(".{name}.{tag}{}-{call}", std::process::id()))
}

/// Builds a directory with `fill` and puts it at `path` atomically (replacing any old one). A
/// crash between the two renames leaves the old version at `.NAME.old`, which
/// [`recover_dir`] puts back.
pub fn write_dir(path: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let dir = parent(path);
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = sibling(path, "tmp");
    if tmp.exists() {
        fs::remove_dir_all(&tmp).with_context(|| format!("cannot remove {}", tmp.display()))?;
    }
    fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    fill(&tmp)?;
    sync_tree(&tmp)?;
    let old = old_path(path);
    if path.exists() {
        if old.exists() {
            fs::remove_dir_all(&old).with_context(|| format!("cannot remove {}", old.display()))?;
        }
        fs::rename(path, &old).with_context(|| format!("cannot move {} aside", path.display()))?;
    }
    fs::rename(&tmp, path).with_context(|| format!("cannot move {} into place", tmp.display()))?;
    sync_dir(dir)?;
    if old.exists() {
        fs::remove_dir_all(&old).with_context(|| format!("cannot remove {}", old.display()))?;
    }
    Ok(())
}

fn old_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    parent(path).join(format!(".{name}.old"))
}

/// After a crash inside [`write_dir`]: puts the previous version back if the new one never
/// arrived. Returns whether `path` exists now.
pub fn recover_dir(path: &Path) -> Result<bool> {
    let old = old_path(path);
    if !path.exists() && old.exists() {
        fs::rename(&old, path).with_context(|| format!("cannot restore {}", old.display()))?;
    }
    Ok(path.exists())
}

/// An append-only JSON-lines file; each line is flushed to disk before `append` returns, so a
/// kill loses at most the line being written (which readers skip, see [`read_json_lines`]).
pub struct JsonLines {
    file: File,
    path: PathBuf,
}

impl JsonLines {
    /// Opens `path` for appending, first cutting off a line a kill left without its newline (so
    /// the next line does not run into it).
    pub fn open(path: &Path) -> Result<JsonLines> {
        fs::create_dir_all(parent(path))
            .with_context(|| format!("cannot create {}", parent(path).display()))?;
        if let Ok(bytes) = fs::read(path) {
            if bytes.last().is_some_and(|b| *b != b'\n') {
                let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
                let file = OpenOptions::new().write(true).open(path)?;
                file.set_len(keep as u64)
                    .and_then(|_| file.sync_all())
                    .with_context(|| format!("cannot repair {}", path.display()))?;
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(JsonLines { file, path: path.to_path_buf() })
    }

    pub fn append(&mut self, value: &impl serde::Serialize) -> Result<()> {
        let mut line = serde_json::to_vec(value)?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|_| self.file.sync_data())
            .with_context(|| format!("cannot append to {}", self.path.display()))
    }
}

/// Reads a JSON-lines file written by [`JsonLines`]. A last line without its newline is the one a
/// kill interrupted and is dropped; any other unparsable line is an error naming file and line.
pub fn read_json_lines<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).with_context(|| format!("{}, line {}", path.display(), i + 1))
        })
        .collect()
}

/// A last line that a kill cut off before its newline: where it is and how much of it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornLine {
    /// 1-based line number.
    pub line: usize,
    pub bytes: usize,
}

/// What [`read_json_lines_reporting`] read: every complete line with its 1-based number, and the
/// torn last line if there is one.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonLinesRead<T> {
    pub records: Vec<(usize, T)>,
    pub torn: Option<TornLine>,
}

/// Like [`read_json_lines`], but a torn last line is returned as a warning instead of being dropped
/// silently (a missing file reads as empty). The next [`JsonLines::open`] cuts that line off.
pub fn read_json_lines_reporting<T: serde::de::DeserializeOwned>(path: &Path) -> Result<JsonLinesRead<T>> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(JsonLinesRead { records: Vec::new(), torn: None })
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let complete_len = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let (complete, rest) = bytes.split_at(complete_len);
    let mut records = Vec::new();
    let mut lines = 0;
    for (i, line) in complete.split(|b| *b == b'\n').enumerate() {
        lines = i;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let line = std::str::from_utf8(line)
            .with_context(|| format!("{}, line {}: not UTF-8", path.display(), i + 1))?;
        let value =
            serde_json::from_str(line).with_context(|| format!("{}, line {}", path.display(), i + 1))?;
        records.push((i + 1, value));
    }
    let torn = (!rest.is_empty()).then(|| TornLine { line: lines + 1, bytes: rest.len() });
    Ok(JsonLinesRead { records, torn })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_writers_of_one_file_do_not_collide() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("cache.bin");
        std::thread::scope(|scope| {
            for t in 0..8u8 {
                let path = &path;
                scope.spawn(move || {
                    for _ in 0..20 {
                        write_file(path, &[t; 4096]).unwrap();
                    }
                });
            }
        });
        let bytes = fs::read(&path).unwrap();
        assert!(bytes.len() == 4096 && bytes.iter().all(|&b| b == bytes[0]), "a torn or mixed file");
    }

    #[test]
    fn dir_replacement_and_recovery() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("last");
        write_dir(&target, |d| Ok(fs::write(d.join("a"), "1")?)).unwrap();
        write_dir(&target, |d| Ok(fs::write(d.join("a"), "2")?)).unwrap();
        assert_eq!(fs::read_to_string(target.join("a")).unwrap(), "2");
        // A crash after moving the old version aside and before the new one arrived.
        fs::rename(&target, old_path(&target)).unwrap();
        assert!(recover_dir(&target).unwrap());
        assert_eq!(fs::read_to_string(target.join("a")).unwrap(), "2");
        // A failing fill leaves the previous version in place.
        assert!(write_dir(&target, |_| anyhow::bail!("disk full")).is_err());
        assert_eq!(fs::read_to_string(target.join("a")).unwrap(), "2");
    }

    #[test]
    fn json_lines_drop_only_a_torn_last_line() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("cache.jsonl");
        let mut lines = JsonLines::open(&path).unwrap();
        lines.append(&serde_json::json!({"i": 1})).unwrap();
        lines.append(&serde_json::json!({"i": 2})).unwrap();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"i\": 3").unwrap();
        let read: Vec<serde_json::Value> = read_json_lines(&path).unwrap();
        assert_eq!(read.len(), 2);
        JsonLines::open(&path).unwrap().append(&serde_json::json!({"i": 4})).unwrap();
        let read: Vec<serde_json::Value> = read_json_lines(&path).unwrap();
        assert_eq!(
            read,
            [serde_json::json!({"i": 1}), serde_json::json!({"i": 2}), serde_json::json!({"i": 4})]
        );
        fs::write(&path, "{\"i\": 1}\nnot json\n{\"i\": 2}\n").unwrap();
        let err = read_json_lines::<serde_json::Value>(&path).unwrap_err();
        assert!(format!("{err:#}").contains("line 2"), "{err:#}");
    }

    #[test]
    fn reporting_reader_returns_the_torn_line() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("a.jsonl");
        let empty: JsonLinesRead<serde_json::Value> = read_json_lines_reporting(&path).unwrap();
        assert_eq!((empty.records.len(), empty.torn), (0, None));
        fs::write(&path, "{\"i\": 1}\n\n{\"i\": 2}\n{\"i\": 3").unwrap();
        let read: JsonLinesRead<serde_json::Value> = read_json_lines_reporting(&path).unwrap();
        let lines: Vec<usize> = read.records.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [1, 3]);
        assert_eq!(read.torn, Some(TornLine { line: 4, bytes: 7 }));
        JsonLines::open(&path).unwrap();
        let read: JsonLinesRead<serde_json::Value> = read_json_lines_reporting(&path).unwrap();
        assert_eq!((read.records.len(), read.torn), (2, None));
        fs::write(&path, "{\"i\": 1}\nnot json\n").unwrap();
        let err = read_json_lines_reporting::<serde_json::Value>(&path).unwrap_err();
        assert!(format!("{err:#}").contains("line 2"), "{err:#}");
        fs::write(&path, "{\"i\"").unwrap();
        let read: JsonLinesRead<serde_json::Value> = read_json_lines_reporting(&path).unwrap();
        assert_eq!(read.torn, Some(TornLine { line: 1, bytes: 4 }));
    }
}

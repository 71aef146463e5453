//! One writer per annotator: an annotation session holds an OS file lock (`flock`, through
//! `fs4`) on `annotations/NAME.lock` for as long as it runs. A second session for the same study
//! and annotator is refused with the holder's process id and host, which the holder writes into
//! the file. The OS releases the lock when the holder's process ends, however it ends, so a
//! killed session never blocks the next one; the file itself stays (removing it would let two
//! processes lock two different files of the same name).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::study::check_annotator_name;
use super::study::ANNOTATIONS_DIR;

/// The held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct AnnotatorLock {
    // Never read: holding the open file is holding the lock.
    _file: File,
    path: PathBuf,
}

impl AnnotatorLock {
    /// Takes `annotator`'s lock in the study at `dir`, or fails naming who holds it.
    pub fn acquire(dir: &Path, annotator: &str) -> Result<AnnotatorLock> {
        check_annotator_name(annotator)?;
        let folder = dir.join(ANNOTATIONS_DIR);
        std::fs::create_dir_all(&folder).with_context(|| format!("cannot create {}", folder.display()))?;
        let path = folder.join(format!("{annotator}.lock"));
        // Not truncated on open: until the lock is ours, the text is the holder's.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open the session lock {}", path.display()))?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                bail!(
                    "annotator {annotator:?} already has a session open in this study ({}); finish or quit \
                     that session first. Two sessions would interleave their answers (lock: {})",
                    describe_holder(&holder),
                    path.display()
                );
            }
            Err(fs4::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        let stamp = format!("pid {} host {}\n", std::process::id(), hostname());
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(stamp.as_bytes()))
            .and_then(|()| file.sync_data())
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(AnnotatorLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// "process 1234 on host lab-3", from the holder's `pid 1234 host lab-3` line.
fn describe_holder(text: &str) -> String {
    let mut words = text.split_whitespace();
    match (words.next(), words.next(), words.next(), words.next()) {
        (Some("pid"), Some(pid), Some("host"), Some(host)) => format!("held by process {pid} on host {host}"),
        _ => "held by a process that has not recorded itself yet".into(),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = AnnotatorLock::acquire(dir.path(), "ann").unwrap();
        let err = AnnotatorLock::acquire(dir.path(), "ann").unwrap_err().to_string();
        assert!(err.contains(&format!("held by process {} on host", std::process::id())), "{err}");
        assert!(err.contains("\"ann\" already has a session open"), "{err}");
        // Another annotator is independent.
        let other = AnnotatorLock::acquire(dir.path(), "bob").unwrap();
        drop(first);
        let again = AnnotatorLock::acquire(dir.path(), "ann").unwrap();
        assert!(again.path().ends_with("annotations/ann.lock"));
        drop((other, again));
        assert!(AnnotatorLock::acquire(dir.path(), "../x").is_err());
    }

    #[test]
    fn a_holder_that_wrote_nothing_is_described_as_such() {
        assert_eq!(describe_holder("pid 7 host lab\n"), "held by process 7 on host lab");
        assert!(describe_holder("").contains("not recorded"));
    }
}

//! What loading a dataset recovered from or noticed without failing: optional fields that could
//! not be parsed and were left missing, files whose last line has no newline, and the records
//! skipped under `--lenient`. `prism data stats` reports them; [`LoadNotes::warning`] is the one
//! line every command prints on stderr.

use serde::Serialize;

/// An optional field of one file that could not be parsed on `count` records; each of those
/// records was kept with the field missing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unparsed {
    /// The file name, relative to the dataset directory.
    pub file: String,
    pub field: String,
    pub count: usize,
    /// The first line it happened on, and the value found there.
    pub first_line: u64,
    pub first_value: String,
}

/// A file whose last line has no newline. The line passed every check that the file's other
/// lines pass, so it was kept; a cut that broke one of those checks is an error instead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unterminated {
    pub file: String,
    pub line: u64,
}

/// Everything a load recovered from, in the order first met.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadNotes {
    pub unparsed: Vec<Unparsed>,
    pub unterminated: Vec<Unterminated>,
    /// Malformed records skipped under `--lenient` (strict loading fails on the first instead).
    pub skipped: usize,
    /// The error of the first skipped record, as strict loading would have reported it.
    pub first_skipped: Option<String>,
}

/// Values longer than this are cut in reports: a whole garbled line is no help on one line.
const MAX_VALUE_CHARS: usize = 40;

impl LoadNotes {
    /// Counts one record whose optional `field` held the unparseable `value`.
    pub fn unparsed(&mut self, file: &str, field: &str, line: u64, value: &str) {
        if let Some(u) = self.unparsed.iter_mut().find(|u| u.file == file && u.field == field) {
            u.count += 1;
            return;
        }
        let mut shown: String = value.chars().take(MAX_VALUE_CHARS).collect();
        if shown.len() < value.len() {
            shown.push('…');
        }
        self.unparsed.push(Unparsed {
            file: file.to_owned(),
            field: field.to_owned(),
            count: 1,
            first_line: line,
            first_value: shown,
        });
    }

    pub fn unterminated(&mut self, file: &str, line: u64) {
        self.unterminated.push(Unterminated { file: file.to_owned(), line });
    }

    /// Counts one skipped record and keeps the first one's error.
    pub fn skip(&mut self, error: impl FnOnce() -> String) {
        self.skipped += 1;
        if self.first_skipped.is_none() {
            self.first_skipped = Some(error());
        }
    }

    /// One line saying what was recovered from, or `None` when the load was clean.
    pub fn warning(&self) -> Option<String> {
        let mut parts = Vec::new();
        for u in &self.unparsed {
            parts.push(format!(
                "{}: {} unparseable `{}` left missing (first at line {}: {:?})",
                u.file, u.count, u.field, u.first_line, u.first_value
            ));
        }
        for t in &self.unterminated {
            parts.push(format!(
                "{}: last line {} has no newline (kept: it passes every check)",
                t.file, t.line
            ));
        }
        if self.skipped > 0 {
            let first = self.first_skipped.as_deref().unwrap_or("");
            parts.push(format!("{} malformed records skipped (--lenient); the first: {first}", self.skipped));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_file_and_field_and_says_it_in_one_line() {
        let mut notes = LoadNotes::default();
        assert_eq!(notes.warning(), None);
        notes.unparsed("ml-100k.item", "release_year", 268, "unkonwn");
        notes.unparsed("ml-100k.item", "release_year", 1413, "V");
        notes.unparsed("ml-100k.item", "class", 9, &"x".repeat(100));
        notes.unterminated("ml-100k.inter", 100_001);
        assert_eq!(notes.unparsed[0].count, 2);
        assert_eq!((notes.unparsed[0].first_line, notes.unparsed[0].first_value.as_str()), (268, "unkonwn"));
        assert_eq!(notes.unparsed[1].first_value.chars().count(), MAX_VALUE_CHARS + 1);
        let warning = notes.warning().unwrap();
        assert!(!warning.contains('\n'), "{warning}");
        assert!(
            warning.starts_with(
                "ml-100k.item: 2 unparseable `release_year` left missing (first at line 268: \"unkonwn\")"
            ),
            "{warning}"
        );
        assert!(warning.contains("ml-100k.inter: last line 100001 has no newline"), "{warning}");
    }

    #[test]
    fn skips_keep_the_first_error() {
        let mut notes = LoadNotes::default();
        notes.skip(|| "u.data:4: field `rating`: bad".into());
        notes.skip(|| unreachable!("only the first error is formatted"));
        assert_eq!(notes.skipped, 2);
        assert!(notes
            .warning()
            .unwrap()
            .contains("2 malformed records skipped (--lenient); the first: u.data:4"));
    }
}

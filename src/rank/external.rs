//! Ranked lists from any other recommender: a text file of `user item score` rows (separated by
//! spaces, tabs or commas; `#` starts a comment line; an optional `user item score` header).
//! Items a file does not list for a user are never recommended to them.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::Ranker;
use crate::data::{Dataset, ItemIdx, UserIdx};

pub struct External {
    name: String,
    rows: Vec<Vec<(ItemIdx, f32)>>,
}

impl External {
    /// Reads `path`, resolving ids against `dataset`. Unknown ids, missing fields, non-numeric
    /// scores and repeated (user, item) pairs are errors naming the file and line.
    pub fn load(path: &Path, dataset: &Dataset) -> Result<External> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read ranked-list file {}", path.display()))?;
        External::parse(&text, path, dataset)
    }

    pub fn parse(text: &str, path: &Path, dataset: &Dataset) -> Result<External> {
        let mut rows = vec![Vec::new(); dataset.num_users()];
        let mut seen: HashMap<(UserIdx, ItemIdx), usize> = HashMap::new();
        let at = |line: usize| format!("{}:{line}", path.display());
        for (n, line) in text.lines().enumerate() {
            let line_no = n + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> =
                line.split(|c: char| c == ',' || c.is_whitespace()).filter(|f| !f.is_empty()).collect();
            if seen.is_empty() && fields == ["user", "item", "score"] {
                continue;
            }
            let [user, item, score] = fields[..] else {
                bail!("{}: expected 3 fields `user item score`, found {}", at(line_no), fields.len());
            };
            let u = dataset.user_by_id(user).with_context(|| {
                format!("{}: field user: unknown user '{user}' (not in the dataset)", at(line_no))
            })?;
            let i = dataset.item_by_id(item).with_context(|| {
                format!("{}: field item: unknown item '{item}' (not in the dataset)", at(line_no))
            })?;
            let score: f32 = match score.parse::<f32>() {
                Ok(s) if s.is_finite() => s,
                _ => bail!("{}: field score: '{score}' is not a finite number", at(line_no)),
            };
            if let Some(first) = seen.insert((u, i), line_no) {
                bail!("{}: user '{user}' and item '{item}' were already listed on line {first}", at(line_no));
            }
            rows[u as usize].push((i, score));
        }
        if seen.is_empty() {
            bail!("{}: no `user item score` rows", path.display());
        }
        Ok(External { name: format!("file:{}", path.display()), rows })
    }
}

impl Ranker for External {
    fn name(&self) -> &str {
        &self.name
    }

    fn score_items(&self, user: UserIdx, scores: &mut [f32]) {
        scores.fill(f32::NEG_INFINITY);
        for &(item, score) in &self.rows[user as usize] {
            scores[item as usize] = score;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DatasetBuilder, Interaction, Item};

    fn dataset() -> Dataset {
        let mut b = DatasetBuilder::new("test");
        for id in ["a", "b", "c"] {
            b.set_item(Item { id: id.into(), title: id.to_uppercase(), year: None, features: vec![] });
        }
        for user in ["u1", "u2"] {
            let u = b.intern_user(user);
            b.push_interaction(Interaction { user: u, item: 0, rating: 1.0, timestamp: 0, reference: None });
        }
        b.build()
    }

    fn parse(text: &str) -> Result<External> {
        External::parse(text, Path::new("ranks.txt"), &dataset())
    }

    #[test]
    fn reads_rows_with_any_separator_and_leaves_unlisted_items_unscored() {
        let ext = parse("user item score\n# a comment\nu1 b 0.5\nu1,c,2\nu2\ta\t1e-3\n").unwrap();
        let mut scores = vec![0.0; 3];
        ext.score_items(0, &mut scores);
        assert_eq!(scores, vec![f32::NEG_INFINITY, 0.5, 2.0]);
        ext.score_items(1, &mut scores);
        assert_eq!(scores, vec![1e-3, f32::NEG_INFINITY, f32::NEG_INFINITY]);
        assert_eq!(ext.name(), "file:ranks.txt");
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let err = parse("u1 b 1\nu9 b 1\n").err().unwrap().to_string();
        assert!(err.contains("ranks.txt:2") && err.contains("unknown user 'u9'"), "{err}");
        let err = parse("u1 zz 1\n").err().unwrap().to_string();
        assert!(err.contains("ranks.txt:1") && err.contains("unknown item 'zz'"), "{err}");
        let err = parse("u1 b high\n").err().unwrap().to_string();
        assert!(err.contains("field score") && err.contains("'high'"), "{err}");
        let err = parse("u1 b\n").err().unwrap().to_string();
        assert!(err.contains("expected 3 fields"), "{err}");
        let err = parse("u1 b 1\n\nu1 b 2\n").err().unwrap().to_string();
        assert!(err.contains("ranks.txt:3") && err.contains("line 1"), "{err}");
        assert!(parse("# nothing\n").is_err());
    }
}

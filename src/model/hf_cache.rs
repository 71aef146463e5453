//! Models named by Hugging Face id (`google/flan-t5-large`, `acme/tiny-prism@v2`) found in the
//! local Hugging Face cache, offline: the cache directory is chosen as `huggingface_hub` chooses it
//! (`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
//! `~/.cache/huggingface/hub`), a revision names a branch or tag (`refs/<rev>` holds its commit)
//! or a commit (`snapshots/<rev>/` directly), and the snapshot directory, whose files link into
//! `blobs/`, is the checkpoint directory. Nothing is downloaded; a missing model's error names
//! the cache searched and the command that would download it.
//!
//! Ours rather than the `hf-hub` crate: its 0.x cache API reads neither `$HF_HUB_CACHE` nor
//! `$XDG_CACHE_HOME`, cannot name a revision by commit, and answers a miss with `None` (no
//! reason to report); its 1.x API always builds reqwest, tokio and hf-xet, an HTTP and TLS stack
//! this offline tool has no use for.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

/// The checkpoint directory `spec` names: `spec` itself when it exists (a local path always
/// wins), else the cached snapshot of the Hugging Face id `spec` (`NAMESPACE/NAME[@REVISION]`).
/// Every place that takes a model directory goes through this.
pub fn resolve(spec: &Path) -> Result<PathBuf> {
    if spec.exists() {
        return Ok(spec.to_path_buf());
    }
    let Some(model) = spec.to_str().and_then(ModelId::parse) else {
        bail!("checkpoint directory {} does not exist", spec.display());
    };
    let (cache, source) = cache_dir();
    model.snapshot(&cache).map_err(|why| {
        anyhow::anyhow!(
            "{} is neither a directory nor a model in the Hugging Face cache: {why} \
             (cache {}, from {source}; set HF_HUB_CACHE or HF_HOME to search another). \
             Nothing is downloaded at run time; fetch it with `hf download {}` \
             (or `huggingface-cli download {}`) on a machine with network access",
            spec.display(),
            cache.display(),
            model.download_arg(),
            model.download_arg(),
        )
    })
}

/// A model setting written in a file (config, preset, recipe) made absolute against the file's
/// directory `base`, unless it names no existing path there and is a Hugging Face id: then it is
/// kept as written, for [`resolve`] to find in the cache.
pub fn relative_to(base: &Path, spec: &Path) -> PathBuf {
    let joined = base.join(spec);
    let is_id = spec.to_str().and_then(ModelId::parse).is_some();
    if spec.is_relative() && !joined.exists() && is_id {
        spec.to_path_buf()
    } else {
        joined
    }
}

/// A model id and an optional revision, as `huggingface_hub` accepts them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelId {
    pub repo: String,
    /// Branch, tag or 40-hex commit; `main` when absent.
    pub revision: Option<String>,
}

impl ModelId {
    /// `NAME` or `NAMESPACE/NAME`, optionally `@REVISION`; `None` for anything that cannot be a
    /// repository id (absolute or dotted paths, more than one `/`, characters outside
    /// `[A-Za-z0-9._-]`, `--` or `..`), as `huggingface_hub.validate_repo_id` decides.
    pub fn parse(spec: &str) -> Option<ModelId> {
        let (repo, revision) = match spec.split_once('@') {
            Some((repo, rev)) if !rev.is_empty() && !rev.split('/').any(|p| p.is_empty() || p == "..") => {
                (repo, Some(rev.to_string()))
            }
            Some(_) => return None,
            None => (spec, None),
        };
        let parts: Vec<&str> = repo.split('/').collect();
        let valid_part = |p: &&str| {
            !p.is_empty()
                && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                && !p.starts_with(['.', '-'])
                && !p.ends_with(['.', '-'])
        };
        let ok = (1..=2).contains(&parts.len())
            && parts.iter().all(valid_part)
            && repo.len() <= 96
            && !repo.contains("--")
            && !repo.contains("..");
        ok.then(|| ModelId { repo: repo.to_string(), revision })
    }

    /// `models--NAMESPACE--NAME`, the repository's folder in the cache.
    pub fn folder(&self) -> String {
        format!("models--{}", self.repo.replace('/', "--"))
    }

    /// The snapshot directory of this revision under `cache`, or why there is none.
    pub fn snapshot(&self, cache: &Path) -> std::result::Result<PathBuf, String> {
        let repo_dir = cache.join(self.folder());
        if !repo_dir.is_dir() {
            return Err(format!("no {} in it", self.folder()));
        }
        let revision = self.revision.as_deref().unwrap_or("main");
        let ref_file = repo_dir.join("refs").join(revision);
        let commit = if ref_file.is_file() {
            let text = std::fs::read_to_string(&ref_file)
                .map_err(|e| format!("cannot read {}: {e}", ref_file.display()))?;
            text.trim().to_string()
        } else {
            revision.to_string()
        };
        let snapshot = repo_dir.join("snapshots").join(&commit);
        if snapshot.is_dir() {
            Ok(snapshot)
        } else if ref_file.is_file() {
            Err(format!(
                "refs/{revision} names commit {commit}, whose snapshot is not in {}",
                repo_dir.display()
            ))
        } else {
            Err(format!(
                "revision {revision:?} is neither in refs/ nor in snapshots/ of {}",
                repo_dir.display()
            ))
        }
    }

    /// The arguments of `hf download` that fetch this revision.
    fn download_arg(&self) -> String {
        match &self.revision {
            Some(rev) => format!("{} --revision {rev}", self.repo),
            None => self.repo.clone(),
        }
    }
}

/// The cache directory `huggingface_hub` uses, and which setting chose it.
pub fn cache_dir() -> (PathBuf, &'static str) {
    cache_dir_from(|key| std::env::var_os(key).filter(|v| !v.is_empty()).map(PathBuf::from))
}

fn cache_dir_from(var: impl Fn(&str) -> Option<PathBuf>) -> (PathBuf, &'static str) {
    let home = || var("HOME").unwrap_or_default();
    let expand = |p: PathBuf| match p.strip_prefix("~") {
        Ok(rest) => home().join(rest),
        Err(_) => p,
    };
    if let Some(dir) = var("HF_HUB_CACHE") {
        return (expand(dir), "$HF_HUB_CACHE");
    }
    if let Some(dir) = var("HUGGINGFACE_HUB_CACHE") {
        return (expand(dir), "$HUGGINGFACE_HUB_CACHE");
    }
    if let Some(dir) = var("HF_HOME") {
        return (expand(dir).join("hub"), "$HF_HOME/hub");
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return (expand(dir).join("huggingface/hub"), "$XDG_CACHE_HOME/huggingface/hub");
    }
    (home().join(".cache/huggingface/hub"), "the default ~/.cache/huggingface/hub")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_as_huggingface_hub_validates_them() {
        let id = ModelId::parse("acme/tiny-prism@v2").unwrap();
        assert_eq!((id.repo.as_str(), id.revision.as_deref()), ("acme/tiny-prism", Some("v2")));
        assert_eq!(ModelId::parse("t5-small").unwrap().folder(), "models--t5-small");
        assert_eq!(ModelId::parse("google/flan-t5-large").unwrap().folder(), "models--google--flan-t5-large");
        assert_eq!(ModelId::parse("acme/x@refs/pr/1").unwrap().revision.as_deref(), Some("refs/pr/1"));
        for bad in
            ["/abs/path", "./rel", "../up", "a/b/c", "a--b/c", "a/b@", "a/b@../x", "a b/c", "a/.hidden", ""]
        {
            assert_eq!(ModelId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn cache_dir_follows_huggingface_hub_precedence() {
        fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<PathBuf> + 'a {
            move |k| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| PathBuf::from(v))
        }
        let all = [("HF_HUB_CACHE", "/c"), ("HF_HOME", "/h"), ("XDG_CACHE_HOME", "/x"), ("HOME", "/home/u")];
        assert_eq!(cache_dir_from(env(&all[..])).0, PathBuf::from("/c"));
        assert_eq!(cache_dir_from(env(&all[1..])).0, PathBuf::from("/h/hub"));
        assert_eq!(cache_dir_from(env(&all[2..])).0, PathBuf::from("/x/huggingface/hub"));
        assert_eq!(cache_dir_from(env(&all[3..])).0, PathBuf::from("/home/u/.cache/huggingface/hub"));
        assert_eq!(
            cache_dir_from(env(&[("HF_HOME", "~/hf"), ("HOME", "/home/u")])).0,
            PathBuf::from("/home/u/hf/hub")
        );
    }

    /// A cache laid out as `huggingface_hub` writes it: refs/main holds the commit, the snapshot's
    /// files are relative symlinks into blobs/.
    fn fake_cache(root: &Path, commits: &[&str]) {
        let repo = root.join("models--acme--tiny-prism");
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::create_dir_all(repo.join("blobs")).unwrap();
        std::fs::write(repo.join("blobs/0123abcd"), "{\"model_type\": \"t5\"}").unwrap();
        for commit in commits {
            let snap = repo.join("snapshots").join(commit);
            std::fs::create_dir_all(&snap).unwrap();
            std::os::unix::fs::symlink("../../blobs/0123abcd", snap.join("config.json")).unwrap();
        }
        std::fs::write(repo.join("refs/main"), commits[0]).unwrap();
    }

    #[test]
    fn revisions_resolve_through_refs_or_by_commit() {
        let dir = tempfile::tempdir().unwrap();
        let (main, old) = ("a".repeat(40), "b".repeat(40));
        fake_cache(dir.path(), &[&main, &old]);
        let snapshots = dir.path().join("models--acme--tiny-prism/snapshots");
        let at = |spec: &str| ModelId::parse(spec).unwrap().snapshot(dir.path());
        assert_eq!(at("acme/tiny-prism").unwrap(), snapshots.join(&main));
        assert_eq!(at(&format!("acme/tiny-prism@{old}")).unwrap(), snapshots.join(&old));
        assert!(at("acme/tiny-prism").unwrap().join("config.json").is_file());
        assert!(at("acme/tiny-prism@v9").unwrap_err().contains("\"v9\""));
        assert!(at("acme/other").unwrap_err().contains("models--acme--other"));
        std::fs::write(dir.path().join("models--acme--tiny-prism/refs/main"), "c".repeat(40)).unwrap();
        assert!(at("acme/tiny-prism").unwrap_err().contains("refs/main names commit"));
    }

    #[test]
    fn settings_in_files_keep_ids_and_resolve_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("acme/local")).unwrap();
        let base = dir.path();
        assert_eq!(relative_to(base, Path::new("acme/local")), base.join("acme/local"));
        assert_eq!(
            relative_to(base, Path::new("google/flan-t5-large")),
            PathBuf::from("google/flan-t5-large")
        );
        assert_eq!(relative_to(base, Path::new("models/a/b")), base.join("models/a/b"));
        assert_eq!(relative_to(base, Path::new("/abs")), PathBuf::from("/abs"));
    }

    #[test]
    fn an_existing_path_wins_and_a_non_id_is_a_missing_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(resolve(dir.path()).unwrap(), dir.path());
        let missing = dir.path().join("absent");
        let err = resolve(&missing).unwrap_err().to_string();
        assert!(err.contains("does not exist") && !err.contains("hf download"), "{err}");
    }
}

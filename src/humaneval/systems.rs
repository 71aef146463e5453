//! The systems a study compares and how their texts are made, once, at setup: `oracle` and
//! `prism` generate with the configured models through [`Explainer`] (prompts, input lengths
//! and decoding from the settings, as `prism explain`), `template` is the feature-template
//! baseline of the distillation evaluation, and `file:PATH` (or `NAME=file:PATH`) reads
//! `{"user","item","text"}` JSON lines written by anything else.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::study::{SystemInfo, MAX_SYSTEMS};
use crate::config::Settings;
use crate::data::Dataset;
use crate::distill::evaluate::template_explanation;
use crate::explain::samples::Sample;
use crate::explain::{Explainer, Matcher, PromptKind, Prompts};
use crate::model::device::parse_device;
use crate::model::engine::{Engine, EngineOptions};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Model(PromptKind),
    Template,
    /// Texts by (user id, item id).
    File(PathBuf),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct System {
    pub name: String,
    pub source: Source,
}

/// Parses `oracle,prism,template,file:PATH,NAME=file:PATH`; a file system is named after its
/// file stem unless named. Names must be distinct; 2 to 26 systems.
pub fn parse_systems(list: &str) -> Result<Vec<System>> {
    let mut systems: Vec<System> = Vec::new();
    for spec in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, source) = match spec.split_once('=') {
            Some((name, rest)) => (Some(name.trim().to_owned()), rest.trim()),
            None => (None, spec),
        };
        let source = match source {
            "oracle" => Source::Model(PromptKind::Oracle),
            "prism" => Source::Model(PromptKind::Prism),
            "template" => Source::Template,
            other => match other.strip_prefix("file:") {
                Some(path) if !path.is_empty() => Source::File(PathBuf::from(path)),
                _ => bail!(
                    "unknown system {spec:?}: expected oracle, prism, template, file:PATH or NAME=file:PATH"
                ),
            },
        };
        let name = name.unwrap_or_else(|| match &source {
            Source::Model(kind) => kind.name().to_owned(),
            Source::Template => "template".into(),
            Source::File(path) => {
                path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
            }
        });
        if name.is_empty() || name.contains(char::is_whitespace) {
            bail!("system {spec:?}: the name {name:?} is empty or has spaces; name it as NAME=file:PATH");
        }
        if systems.iter().any(|s| s.name == name) {
            bail!("system name {name:?} appears twice in --systems; name one as NAME=file:PATH");
        }
        systems.push(System { name, source });
    }
    if !(2..=MAX_SYSTEMS).contains(&systems.len()) {
        bail!("--systems names {} systems; a study compares 2 to {MAX_SYSTEMS}", systems.len());
    }
    Ok(systems)
}

impl System {
    pub fn info(&self, settings: &Settings) -> SystemInfo {
        let source = match &self.source {
            Source::Model(PromptKind::Oracle) => format!("model {}", settings.models.oracle.display()),
            Source::Model(PromptKind::Prism) => format!("model {}", settings.models.prism.display()),
            Source::Template => "template".into(),
            Source::File(path) => format!("file {}", path.display()),
        };
        SystemInfo { name: self.name.clone(), source }
    }
}

/// Explanations of an explanations file by (user, item). Ids may be strings or non-negative
/// integers; a pair may appear once; errors name the file, line and field.
pub fn read_texts(path: &Path) -> Result<HashMap<(String, String), String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read explanations file {}", path.display()))?;
    let mut out = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let at = |e: String| anyhow!("{}, line {}: {e}", path.display(), index + 1);
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| at(format!("not valid JSON: {e}")))?;
        let field = |name: &str, id_like: bool| -> Result<String> {
            match value.get(name) {
                Some(serde_json::Value::String(s)) => Ok(s.clone()),
                Some(serde_json::Value::Number(n)) if id_like && n.is_u64() => Ok(n.to_string()),
                Some(other) => Err(at(format!("field `{name}` must be a string, found {other}"))),
                None => Err(at(format!("field `{name}` is missing"))),
            }
        };
        let key = (field("user", true)?, field("item", true)?);
        let text = field("text", false)?;
        if text.trim().is_empty() {
            return Err(at("field `text` is empty".into()));
        }
        if out.insert(key.clone(), text).is_some() {
            return Err(at(format!("user {} and item {} appear a second time", key.0, key.1)));
        }
    }
    Ok(out)
}

/// Writes each system's text for every sample: `texts[system][sample]`. `files` holds the texts
/// of the file systems (by path); `progress(system, done, total)` is called as models work.
pub fn generate(
    systems: &[System],
    files: &HashMap<PathBuf, HashMap<(String, String), String>>,
    dataset: &Dataset,
    samples: &[Sample],
    settings: &Settings,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<Vec<Vec<String>>> {
    let key = |s: &Sample| (dataset.users[s.user as usize].clone(), dataset.item(s.item).id.clone());
    let mut out = Vec::with_capacity(systems.len());
    let mut models: Option<(Prompts, Matcher)> = None;
    for system in systems {
        let texts = match &system.source {
            Source::Template => samples.iter().map(|s| template_explanation(dataset.item(s.item))).collect(),
            Source::File(path) => {
                let file = &files[path];
                samples
                    .iter()
                    .map(|s| {
                        let k = key(s);
                        file.get(&k).cloned().ok_or_else(|| {
                            anyhow!("{} has no explanation of user {} and item {}", path.display(), k.0, k.1)
                        })
                    })
                    .collect::<Result<_>>()?
            }
            Source::Model(kind) => {
                if models.is_none() {
                    models = Some((Prompts::load(&settings.prompts)?, Matcher::new(dataset)));
                }
                let (prompts, matcher) = models.as_ref().expect("set above");
                model_texts(*kind, &system.name, dataset, prompts, matcher, samples, settings, progress)?
            }
        };
        out.push(texts);
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn model_texts(
    kind: PromptKind,
    name: &str,
    dataset: &Dataset,
    prompts: &Prompts,
    matcher: &Matcher,
    samples: &[Sample],
    settings: &Settings,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<Vec<String>> {
    let (dir, max_input_tokens) = kind.configured(&settings.models);
    let options = EngineOptions {
        device: parse_device(&settings.models.device)?,
        dtype: Some(kind.dtype(&settings.models)),
        ..EngineOptions::default()
    };
    let engine = Engine::load(dir, &options).with_context(|| format!("system {name}"))?;
    let decoding = engine.config_with(&crate::explain::decoding_overrides(&settings.decoding));
    let explainer = Explainer { engine: &engine, kind, max_input_tokens, dataset, prompts, matcher };
    let mut texts = Vec::with_capacity(samples.len());
    for (done, sample) in samples.iter().enumerate() {
        texts.push(explainer.explain(sample, &decoding, None, None)?.text);
        progress(name, done + 1, samples.len());
    }
    Ok(texts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_lists_parse_with_names() {
        let s = parse_systems("oracle, prism,template,file:/x/peter.jsonl,mine=file:a.jsonl").unwrap();
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["oracle", "prism", "template", "peter", "mine"]);
        assert_eq!(s[3].source, Source::File("/x/peter.jsonl".into()));
        for (bad, expected) in [
            ("oracle", "2 to 26"),
            ("oracle,oracle", "appears twice"),
            ("oracle,gpt", "unknown system \"gpt\""),
            ("oracle,file:", "unknown system"),
        ] {
            let err = parse_systems(bad).unwrap_err().to_string();
            assert!(err.contains(expected), "{bad}: {err}");
        }
    }

    #[test]
    fn explanation_files_name_their_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        std::fs::write(&path, "{\"user\":\"u1\",\"item\":7,\"text\":\"Nice.\"}\n\n").unwrap();
        let texts = read_texts(&path).unwrap();
        assert_eq!(texts[&("u1".to_owned(), "7".to_owned())], "Nice.");
        for (content, expected) in [
            ("{\"user\":\"u1\",\"text\":\"x\"}", "line 1: field `item` is missing"),
            ("{\"user\":\"u1\",\"item\":\"i\",\"text\":3}", "line 1: field `text` must be a string"),
            ("{\"user\":\"u1\",\"item\":\"i\",\"text\":\" \"}", "line 1: field `text` is empty"),
            ("oops", "line 1: not valid JSON"),
            (
                "{\"user\":1,\"item\":2,\"text\":\"a\"}\n{\"user\":1,\"item\":2,\"text\":\"b\"}",
                "line 2: user 1",
            ),
        ] {
            std::fs::write(&path, content).unwrap();
            let err = read_texts(&path).unwrap_err().to_string();
            assert!(err.contains("e.jsonl") && err.contains(expected), "{err}");
        }
    }
}

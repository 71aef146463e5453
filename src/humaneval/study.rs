//! The two files of a study, frozen when it is created. `study.json` is what annotators see: the
//! sampled (user, item) pairs with the user's history and the item's features, and every
//! system's explanation text, at text positions that do not reveal the system. `key.json` is the
//! unblinding key: the system behind each text position, the attention-check decoys and their
//! rule, and the reference system of the report. Both carry [`STUDY_VERSION`] and the study id;
//! [`Study::open`] and [`Key::open`] check them and name the file and field at fault.
//!
//! Pairs come from the test split, sampled with a seed and stratified by the length of the
//! user's train history ([`stratified_sample`]). An attention check is an extra item on which
//! one system's text is that system's explanation of another sampled item — wrong about the
//! item shown, in the system's own style.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::fnv1a;
use super::latin::latin_positions;
use crate::data::Dataset;
use crate::explain::samples::Sample;

/// Format version of `study.json`, `key.json` and the annotator files.
pub const STUDY_VERSION: u32 = 1;
pub const STUDY_FILE: &str = "study.json";
pub const KEY_FILE: &str = "key.json";
pub const ANNOTATIONS_DIR: &str = "annotations";
/// Slots are lettered A–Z.
pub const MAX_SYSTEMS: usize = 26;

/// What every annotator sees; holds no system names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Study {
    pub version: u32,
    pub id: String,
    pub dataset: String,
    pub seed: u64,
    /// Rated 1–5 for every explanation.
    pub criteria: Vec<String>,
    /// Explanations per item: one per system.
    pub slots: usize,
    /// When not empty, only these annotators may annotate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotators: Vec<String>,
    pub items: Vec<StudyItem>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudyItem {
    /// `q001`, … in study order.
    pub id: String,
    pub user: String,
    pub item: String,
    pub title: String,
    /// `kind: value` of each of the item's features.
    pub features: Vec<String>,
    /// Titles of the user's most recent train items, oldest first.
    pub history: Vec<String>,
    /// One explanation per text position; the key names the system of each.
    pub texts: Vec<String>,
}

/// The unblinding key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Key {
    pub version: u32,
    /// The id of the study this key unblinds.
    pub study: String,
    pub systems: Vec<SystemInfo>,
    /// The system the report's paired tests compare the others with.
    pub reference: String,
    pub attention: AttentionRule,
    /// In study order.
    pub items: Vec<KeyItem>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemInfo {
    pub name: String,
    /// Where the texts came from: a model directory, `template`, or an explanations file.
    pub source: String,
}

/// How an attention check is failed: rating the decoy above `max_rating` on `criterion`, or
/// preferring it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttentionRule {
    pub criterion: String,
    pub max_rating: u8,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyItem {
    pub id: String,
    /// `systems[j]`: index in [`Key::systems`] of the system that wrote text `j`.
    pub systems: Vec<usize>,
    /// Set on attention-check items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoy: Option<Decoy>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decoy {
    /// The text position of the wrong explanation.
    pub text: usize,
    /// The study item whose explanation it really is.
    pub from: String,
}

/// Reads a versioned JSON file: the version is checked first (so a newer format gets a clear
/// message rather than a field error), then the fields, an error naming the field path.
fn read_versioned<T: DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", path.display()))?;
    match value.get("version").map(|v| (v, v.as_u64())) {
        Some((_, Some(v))) if v == u64::from(STUDY_VERSION) => {}
        Some((_, Some(v))) => bail!(
            "{}: {what} format version {v}, but this prism reads version {STUDY_VERSION}. Consider the \
             prism release that created the study.",
            path.display()
        ),
        Some((v, None)) => bail!("{}: field `version` must be a number, found {v}", path.display()),
        None => bail!("{}: field `version` is missing", path.display()),
    }
    serde_path_to_error::deserialize(value)
        .map_err(|e| anyhow!("{}: field `{}`: {}", path.display(), e.path(), e.inner()))
}

impl Study {
    /// Opens and checks `DIR/study.json`.
    pub fn open(dir: &Path) -> Result<Study> {
        let path = dir.join(STUDY_FILE);
        if !path.is_file() {
            bail!(
                "{} is not a human-evaluation study: {} is missing. Consider `prism human-eval new --out \
                 DIR` to create one.",
                dir.display(),
                path.display()
            );
        }
        let study: Study = read_versioned(&path, "study")?;
        study.check().map_err(|e| anyhow!("{}: {e}", path.display()))?;
        Ok(study)
    }

    fn check(&self) -> Result<()> {
        if !(2..=MAX_SYSTEMS).contains(&self.slots) {
            bail!("field `slots`: {} explanations per item; a study compares 2 to {MAX_SYSTEMS}", self.slots);
        }
        check_criteria(&self.criteria)?;
        if self.items.is_empty() {
            bail!("field `items`: the study has no items");
        }
        let mut ids = HashSet::new();
        for item in &self.items {
            if !ids.insert(item.id.as_str()) {
                bail!("item {}: the id appears twice", item.id);
            }
            if item.texts.len() != self.slots {
                bail!("item {}: has {} texts, the study has {} slots", item.id, item.texts.len(), self.slots);
            }
        }
        for name in &self.annotators {
            check_annotator_name(name).context("field `annotators`")?;
        }
        Ok(())
    }

    pub fn item_index(&self, id: &str) -> Option<usize> {
        self.items.iter().position(|i| i.id == id)
    }
}

pub fn check_criteria(criteria: &[String]) -> Result<()> {
    if criteria.is_empty() {
        bail!("field `criteria`: at least one criterion is needed");
    }
    let mut seen = HashSet::new();
    for c in criteria {
        if c.trim().is_empty() || !seen.insert(c) {
            bail!("field `criteria`: criterion {c:?} is empty or repeated");
        }
    }
    Ok(())
}

impl Key {
    /// Opens `DIR/key.json` and checks that it unblinds `study`.
    pub fn open(dir: &Path, study: &Study) -> Result<Key> {
        let path = dir.join(KEY_FILE);
        if !path.is_file() {
            bail!(
                "{} is missing: the study's unblinding key was moved or deleted; reports and exports need it",
                path.display()
            );
        }
        let key: Key = read_versioned(&path, "key")?;
        key.check(study).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        Ok(key)
    }

    fn check(&self, study: &Study) -> Result<()> {
        if self.study != study.id {
            bail!(
                "field `study`: this key unblinds study {}, but study.json is study {}",
                self.study,
                study.id
            );
        }
        if self.systems.len() != study.slots {
            bail!("field `systems`: {} systems for a study of {} slots", self.systems.len(), study.slots);
        }
        let names: HashSet<&str> = self.systems.iter().map(|s| s.name.as_str()).collect();
        if names.len() != self.systems.len() {
            bail!("field `systems`: a system name appears twice");
        }
        if self.system_index(&self.reference).is_none() {
            bail!("field `reference`: {:?} is not one of the systems", self.reference);
        }
        if !study.criteria.contains(&self.attention.criterion) {
            bail!(
                "field `attention.criterion`: {:?} is not a criterion of the study",
                self.attention.criterion
            );
        }
        if self.items.len() != study.items.len() {
            bail!("field `items`: {} items, study.json has {}", self.items.len(), study.items.len());
        }
        for (k, s) in self.items.iter().zip(&study.items) {
            if k.id != s.id {
                bail!("field `items`: item {} where study.json has {}", k.id, s.id);
            }
            let mut sorted = k.systems.clone();
            sorted.sort_unstable();
            if sorted != (0..study.slots).collect::<Vec<_>>() {
                bail!("item {}: `systems` must name each system once, found {:?}", k.id, k.systems);
            }
            if let Some(d) = &k.decoy {
                if d.text >= study.slots || study.item_index(&d.from).is_none() {
                    bail!("item {}: `decoy` points at text {} of item {:?}", k.id, d.text, d.from);
                }
            }
        }
        Ok(())
    }

    pub fn system_index(&self, name: &str) -> Option<usize> {
        self.systems.iter().position(|s| s.name == name)
    }

    pub fn system_names(&self) -> Vec<&str> {
        self.systems.iter().map(|s| s.name.as_str()).collect()
    }
}

/// Indices of `n` of the entries whose stratification values are `lengths`: the entries are
/// ranked by value (ties by index) and cut into `strata` groups of equal size, each group
/// contributes its proportional share (largest remainders, ties to the earlier group), drawn
/// uniformly with `rng`. The result is in group order.
pub fn stratified_sample(
    lengths: &[usize],
    n: usize,
    strata: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<usize>> {
    let len = lengths.len();
    if n > len {
        bail!("cannot sample {n} pairs from {len}");
    }
    let k = strata.clamp(1, len.max(1));
    let mut ranked: Vec<usize> = (0..len).collect();
    ranked.sort_by_key(|&i| (lengths[i], i));
    let groups: Vec<&[usize]> = (0..k).map(|s| &ranked[s * len / k..(s + 1) * len / k]).collect();
    let mut quotas: Vec<usize> = groups.iter().map(|g| n * g.len() / len.max(1)).collect();
    let mut by_remainder: Vec<usize> = (0..k).collect();
    by_remainder.sort_by_key(|&s| (std::cmp::Reverse(n * groups[s].len() % len.max(1)), s));
    let missing = n - quotas.iter().sum::<usize>();
    for &s in by_remainder.iter().take(missing) {
        quotas[s] += 1;
    }
    let mut out = Vec::with_capacity(n);
    for (group, quota) in groups.into_iter().zip(quotas) {
        let mut group = group.to_vec();
        group.shuffle(rng);
        out.extend_from_slice(&group[..quota]);
    }
    Ok(out)
}

/// Everything about a new study except its texts.
#[derive(Clone, Debug, PartialEq)]
pub struct Design {
    pub dataset: String,
    pub seed: u64,
    pub samples: usize,
    pub attention_checks: usize,
    pub strata: usize,
    pub criteria: Vec<String>,
    pub attention: AttentionRule,
    pub reference: String,
    pub annotators: Vec<String>,
}

impl Design {
    /// Chooses the study's pairs from `pool` (with each user's train history length in
    /// `train_lens`): `samples` study pairs followed by `attention_checks` attention pairs.
    pub fn choose(&self, pool: &[Sample], train_lens: &[usize]) -> Result<Vec<Sample>> {
        let wanted = self.samples + self.attention_checks;
        if self.samples == 0 {
            bail!("a study needs at least one sample");
        }
        if wanted > pool.len() {
            bail!(
                "the study needs {} pairs ({} samples + {} attention checks) but only {} test pairs are \
                 available. Consider a smaller --samples.",
                wanted,
                self.samples,
                self.attention_checks,
                pool.len()
            );
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let chosen = stratified_sample(train_lens, wanted, self.strata, &mut rng)?;
        // Attention pairs are drawn out of the same stratified sample, at random.
        let mut order: Vec<usize> = chosen;
        order.shuffle(&mut rng);
        Ok(order.into_iter().map(|i| pool[i].clone()).collect())
    }

    /// Builds the study and its key. `samples` are [`Design::choose`]'s; `texts[s][k]` is system
    /// `s`'s explanation of sample `k`.
    pub fn assemble(
        &self,
        dataset: &Dataset,
        systems: Vec<SystemInfo>,
        samples: &[Sample],
        texts: &[Vec<String>],
    ) -> Result<(Study, Key)> {
        check_criteria(&self.criteria)?;
        if !(2..=MAX_SYSTEMS).contains(&systems.len()) {
            bail!("a study compares 2 to {MAX_SYSTEMS} systems, {} given", systems.len());
        }
        if !self.criteria.contains(&self.attention.criterion) {
            bail!(
                "humaneval.attention_criterion {:?} is not one of the criteria {:?}",
                self.attention.criterion,
                self.criteria
            );
        }
        if !(1..=4).contains(&self.attention.max_rating) {
            bail!("humaneval.attention_max_rating must be 1 to 4, got {}", self.attention.max_rating);
        }
        if samples.len() != self.samples + self.attention_checks {
            bail!("{} samples given for {} items", samples.len(), self.samples + self.attention_checks);
        }
        let s = systems.len();
        let n = samples.len();
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(1);
        // Attention sample k ≥ samples: (decoy system, the study sample whose text it borrows).
        let mut decoys = vec![None; n];
        for (k, decoy) in decoys.iter_mut().enumerate().skip(self.samples) {
            let others: Vec<usize> =
                (0..self.samples).filter(|&j| samples[j].item != samples[k].item).collect();
            if others.is_empty() {
                bail!("no sampled pair has another item to borrow an attention-check explanation from");
            }
            *decoy = Some((rng.random_range(0..s), others[rng.random_range(0..others.len())]));
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        let positions = latin_positions(n, s, &mut rng);
        let width = n.to_string().len().max(3);
        let ids: Vec<String> = (0..n).map(|p| format!("q{:0width$}", p + 1)).collect();
        let mut id_of_sample = vec![String::new(); n];
        for (p, &k) in order.iter().enumerate() {
            id_of_sample[k] = ids[p].clone();
        }
        let mut items = Vec::with_capacity(n);
        let mut key_items = Vec::with_capacity(n);
        for (p, &k) in order.iter().enumerate() {
            let sample = &samples[k];
            let item = dataset.item(sample.item);
            let mut decoy = None;
            let text_of = |system: usize| -> String {
                match decoys[k] {
                    Some((d, from)) if d == system => texts[system][from].clone(),
                    _ => texts[system][k].clone(),
                }
            };
            let row = &positions[p];
            if let Some((d, from)) = decoys[k] {
                let text = row.iter().position(|&sys| sys == d).expect("a row names every system");
                decoy = Some(Decoy { text, from: id_of_sample[from].clone() });
            }
            items.push(StudyItem {
                id: ids[p].clone(),
                user: dataset.users[sample.user as usize].clone(),
                item: item.id.clone(),
                title: item.title.clone(),
                features: item.features.iter().map(|f| format!("{}: {}", f.kind, f.value)).collect(),
                history: sample.history.iter().map(|&h| dataset.item(h).title.clone()).collect(),
                texts: row.iter().map(|&sys| text_of(sys)).collect(),
            });
            key_items.push(KeyItem { id: ids[p].clone(), systems: row.clone(), decoy });
        }
        let mut study = Study {
            version: STUDY_VERSION,
            id: String::new(),
            dataset: self.dataset.clone(),
            seed: self.seed,
            criteria: self.criteria.clone(),
            slots: s,
            annotators: self.annotators.clone(),
            items,
        };
        let content = serde_json::to_vec(&study)?;
        study.id = format!("{:016x}", fnv1a(&content));
        study.check()?;
        let key = Key {
            version: STUDY_VERSION,
            study: study.id.clone(),
            systems,
            reference: self.reference.clone(),
            attention: self.attention.clone(),
            items: key_items,
        };
        key.check(&study)?;
        Ok((study, key))
    }
}

/// Writes a new study into `dir`, refusing to replace one.
pub fn write(dir: &Path, study: &Study, key: &Key) -> Result<()> {
    let path = dir.join(STUDY_FILE);
    if path.exists() {
        bail!("{} already holds a study ({}); choose another --out", dir.display(), path.display());
    }
    std::fs::create_dir_all(dir.join(ANNOTATIONS_DIR))
        .with_context(|| format!("cannot create {}", dir.join(ANNOTATIONS_DIR).display()))?;
    crate::durable::write_json(&dir.join(KEY_FILE), key)?;
    crate::durable::write_json(&path, study)
}

/// Annotator names become file names: letters, digits, `-`, `_` and `.`, not starting with `.`.
pub fn check_annotator_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !ok {
        bail!(
            "annotator name {name:?} is not allowed: use 1–64 letters, digits, '-', '_' or '.', not \
             starting with '.'"
        );
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::{DatasetBuilder, Feature, Interaction, Item};

    #[test]
    fn stratified_sample_takes_each_stratum_in_proportion() {
        let lengths: Vec<usize> = (0..100).map(|i| (i * 7919) % 100).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let chosen = stratified_sample(&lengths, 20, 4, &mut rng).unwrap();
        assert_eq!(chosen.len(), 20);
        assert_eq!(chosen.iter().collect::<HashSet<_>>().len(), 20);
        for q in 0..4 {
            let in_quartile = chosen.iter().filter(|&&i| lengths[i] / 25 == q).count();
            assert_eq!(in_quartile, 5, "quartile {q}");
        }
        let again = stratified_sample(&lengths, 20, 4, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
        assert_eq!(chosen, again, "same seed, same sample");
        let other = stratified_sample(&lengths, 20, 4, &mut ChaCha8Rng::seed_from_u64(2)).unwrap();
        assert_ne!(chosen, other);
        // 10 of 30 in 4 strata of 7, 8, 7, 8: quotas 2.33, 2.67, 2.33, 2.67 → 2, 3, 2, 3.
        let lengths: Vec<usize> = (0..30).collect();
        let chosen = stratified_sample(&lengths, 10, 4, &mut rng).unwrap();
        let counts: Vec<usize> = [(0, 7), (7, 15), (15, 22), (22, 30)]
            .iter()
            .map(|&(lo, hi)| chosen.iter().filter(|&&i| (lo..hi).contains(&i)).count())
            .collect();
        assert_eq!(counts, [2, 3, 2, 3]);
        assert!(stratified_sample(&lengths, 31, 4, &mut rng).is_err());
    }

    /// A dataset of `users` users with 3 + u % 5 interactions each over 20 items.
    pub(crate) fn dataset(users: usize) -> Dataset {
        let mut b = DatasetBuilder::new("test");
        let items: Vec<_> = (0..20)
            .map(|i| {
                b.set_item(Item {
                    id: format!("i{i}"),
                    title: format!("Film {i}"),
                    year: None,
                    features: vec![Feature::new("genre", format!("g{}", i % 3))],
                })
            })
            .collect();
        for u in 0..users {
            let user = b.intern_user(&format!("u{u}"));
            for t in 0..3 + u % 5 {
                b.push_interaction(Interaction {
                    user,
                    item: items[(u + t * 3) % 20],
                    rating: 4.0,
                    timestamp: t as i64,
                    reference: None,
                });
            }
        }
        b.build()
    }

    pub(crate) fn design(samples: usize, attention: usize) -> Design {
        Design {
            dataset: "test".into(),
            seed: 7,
            samples,
            attention_checks: attention,
            strata: 2,
            criteria: vec!["faithfulness".into(), "persuasiveness".into()],
            attention: AttentionRule { criterion: "faithfulness".into(), max_rating: 2 },
            reference: "b".into(),
            annotators: Vec::new(),
        }
    }

    /// A study of `samples` + `attention` items and three systems whose texts name the system and
    /// the item: "a:i3".
    pub(crate) fn make_study(samples: usize, attention: usize) -> (Study, Key) {
        use crate::data::{Part, Split};
        use crate::explain::samples::{samples as held, SampleSet};
        let dataset = dataset(40);
        let split = Split::leave_last_out(&dataset);
        let pool = held(&dataset, &split, SampleSet::Held(Part::Test), 5);
        let lens: Vec<usize> = pool.iter().map(|s| split.train(&dataset, s.user).len()).collect();
        let design = design(samples, attention);
        let chosen = design.choose(&pool, &lens).unwrap();
        let systems: Vec<SystemInfo> = ["a", "b", "c"]
            .iter()
            .map(|n| SystemInfo { name: (*n).into(), source: "by-hand".into() })
            .collect();
        let texts: Vec<Vec<String>> = systems
            .iter()
            .map(|s| chosen.iter().map(|c| format!("{}:{}", s.name, dataset.item(c.item).id)).collect())
            .collect();
        design.assemble(&dataset, systems, &chosen, &texts).unwrap()
    }

    #[test]
    fn assembled_study_hides_systems_and_plants_decoys() {
        let (study, key) = make_study(9, 3);
        assert_eq!(study.items.len(), 12);
        let json = serde_json::to_string(&study).unwrap();
        assert!(!json.contains("source") && !json.contains("by-hand"), "no key material in study.json");
        let decoys: Vec<_> = key.items.iter().filter_map(|k| k.decoy.as_ref().map(|d| (k, d))).collect();
        assert_eq!(decoys.len(), 3);
        for (item, k) in study.items.iter().zip(&key.items) {
            for (j, text) in item.texts.iter().enumerate() {
                let system = &key.systems[k.systems[j]].name;
                let (name, of) = text.split_once(':').unwrap();
                assert_eq!(name, system, "text {j} of {} is by its keyed system", item.id);
                match &k.decoy {
                    Some(d) if d.text == j => {
                        assert_ne!(of, item.item, "a decoy explains another item");
                        let from = &study.items[study.item_index(&d.from).unwrap()];
                        assert_eq!(of, from.item);
                    }
                    _ => assert_eq!(of, item.item),
                }
            }
        }
        assert_eq!(make_study(9, 3), (study, key), "a study is a function of its seed");
    }

    #[test]
    fn files_round_trip_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let (study, key) = make_study(4, 1);
        write(dir.path(), &study, &key).unwrap();
        assert_eq!(Study::open(dir.path()).unwrap(), study);
        assert_eq!(Key::open(dir.path(), &study).unwrap(), key);
        let err = write(dir.path(), &study, &key).unwrap_err().to_string();
        assert!(err.contains("already holds a study"), "{err}");

        let study_path = dir.path().join(STUDY_FILE);
        let text = std::fs::read_to_string(&study_path).unwrap();
        std::fs::write(&study_path, text.replacen("\"version\": 1", "\"version\": 2", 1)).unwrap();
        let err = Study::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("study.json: study format version 2") && err.contains("reads version 1"),
            "{err}"
        );
        std::fs::write(&study_path, text.replacen("\"slots\": 3", "\"slots\": \"three\"", 1)).unwrap();
        let err = Study::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("study.json: field `slots`"), "{err}");
        std::fs::write(&study_path, &text).unwrap();

        let key_path = dir.path().join(KEY_FILE);
        let mut other = key.clone();
        other.study = "0123".into();
        std::fs::write(&key_path, serde_json::to_string(&other).unwrap()).unwrap();
        let err = Key::open(dir.path(), &study).unwrap_err().to_string();
        assert!(err.contains("key.json: field `study`: this key unblinds study 0123"), "{err}");
        std::fs::remove_file(&key_path).unwrap();
        assert!(Key::open(dir.path(), &study).unwrap_err().to_string().contains("key.json is missing"));

        let empty = tempfile::tempdir().unwrap();
        let err = Study::open(empty.path()).unwrap_err().to_string();
        assert!(err.contains("is not a human-evaluation study"), "{err}");
    }
}

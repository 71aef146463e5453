//! Unblinded export of every annotator's current answers: one row per (annotator, item, system)
//! with the slot the system was shown in, its ratings by criterion, the preference (as a system
//! name or `tie`), the note, the time on the item and the answer's timestamp. CSV has one column
//! per criterion; JSON lines carry the ratings as an object.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use super::report::Loaded;
use super::slot_letter;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub annotator: String,
    pub item: String,
    pub user: String,
    pub dataset_item: String,
    pub system: String,
    pub slot: char,
    pub ratings: BTreeMap<String, u8>,
    /// The preferred system's name, or `tie`.
    pub preference: String,
    pub preferred: bool,
    pub attention_check: bool,
    /// This text is the attention check's wrong explanation.
    pub decoy: bool,
    pub note: String,
    /// Milliseconds on the item over all of the annotator's answers to it.
    pub ms: u64,
    /// Unix time of the current answer, in milliseconds.
    pub answered_at_ms: u64,
}

/// The rows, by annotator, then item in study order, then system in key order.
pub fn rows(loaded: &Loaded) -> Vec<Row> {
    let Loaded { study, key, annotations } = loaded;
    let mut out = Vec::new();
    for a in annotations {
        let latest = a.latest();
        let times = a.time_ms();
        for (i, item) in study.items.iter().enumerate() {
            let Some(j) = latest.get(item.id.as_str()) else { continue };
            let decoy = key.items[i].decoy.as_ref().map(|d| d.text);
            let preference =
                loaded.preferred(j).map_or_else(|| "tie".to_owned(), |s| key.systems[s].name.clone());
            let mut by_system: Vec<Row> = (0..study.slots)
                .map(|slot| {
                    let system = loaded.system_of(j, slot);
                    Row {
                        annotator: a.annotator.clone(),
                        item: item.id.clone(),
                        user: item.user.clone(),
                        dataset_item: item.item.clone(),
                        system: key.systems[system].name.clone(),
                        slot: slot_letter(slot),
                        ratings: study
                            .criteria
                            .iter()
                            .cloned()
                            .zip(j.ratings[slot].iter().copied())
                            .collect(),
                        preference: preference.clone(),
                        preferred: loaded.preferred(j) == Some(system),
                        attention_check: decoy.is_some(),
                        decoy: decoy == Some(j.texts[slot]),
                        note: j.note.clone(),
                        ms: times[item.id.as_str()],
                        answered_at_ms: j.at_ms,
                    }
                })
                .collect();
            by_system.sort_by_key(|r| key.system_index(&r.system));
            out.extend(by_system);
        }
    }
    out
}

pub fn jsonl(rows: &[Row]) -> Result<String> {
    let mut out = String::new();
    for row in rows {
        out.push_str(&serde_json::to_string(row)?);
        out.push('\n');
    }
    Ok(out)
}

pub fn csv(rows: &[Row], criteria: &[String]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<&str> = vec!["annotator", "item", "user", "dataset_item", "system", "slot"];
    header.extend(criteria.iter().map(String::as_str));
    header.extend(["preference", "preferred", "attention_check", "decoy", "note", "ms", "answered_at_ms"]);
    w.write_record(&header)?;
    for r in rows {
        let mut record = vec![
            r.annotator.clone(),
            r.item.clone(),
            r.user.clone(),
            r.dataset_item.clone(),
            r.system.clone(),
            r.slot.to_string(),
        ];
        record.extend(criteria.iter().map(|c| r.ratings[c].to_string()));
        record.extend([
            r.preference.clone(),
            r.preferred.to_string(),
            r.attention_check.to_string(),
            r.decoy.to_string(),
            r.note.clone(),
            r.ms.to_string(),
            r.answered_at_ms.to_string(),
        ]);
        w.write_record(&record)?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

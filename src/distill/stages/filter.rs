//! The filter stage of a job: judges the cached teacher explanations in sample-list order (whatever
//! order the cache was written in: a resumed or merged stage) and keeps the pairs the student
//! learns from. Cheap and deterministic, so a complete stage is judged again rather than read back;
//! its files (`filter/report.json`, `filter/kept.jsonl`) are for people.

use std::collections::HashMap;

use anyhow::Result;

use super::{Completed, Filtered, JobRun, JobStage, Outputs};
use crate::distill::events::{DistillEvent, EventKind, EventSink, Stage};
use crate::distill::filter::{judge, FilterReport};
use crate::distill::finetune::Pair;
use crate::distill::layout::{stage_dir, Record};
use crate::distill::shards;
use crate::distill::teach::{read_cache, Taught};
use crate::durable;
use crate::explain::samples::Sample;

pub struct FilterStage;

impl JobStage for FilterStage {
    fn stage(&self) -> Stage {
        Stage::Filter
    }

    fn run(
        &self,
        job: &JobRun<'_>,
        outputs: &mut Outputs,
        _: &mut EventSink<'_>,
    ) -> Result<Option<Completed>> {
        let filtered = filter(job)?;
        let (report, dataset) = (&filtered.report, job.context.dataset);
        let filter_dir = stage_dir(job.context.dir, Stage::Filter);
        durable::write_json(&filter_dir.join("report.json"), report)?;
        let mut lines = String::new();
        for pair in &filtered.kept {
            let s = &pair.sample;
            let row = serde_json::json!({"user": dataset.users[s.user as usize], "item": dataset.item(s.item).id, "text": pair.target});
            lines.push_str(&row.to_string());
            lines.push('\n');
        }
        durable::write_file(&filter_dir.join("kept.jsonl"), lines.as_bytes())?;
        let finished = DistillEvent::new(Stage::Filter, EventKind::Finished, report.kept, report.total)
            .message(format!("kept {} of {}; dropped {:?}", report.kept, report.total, report.dropped));
        let record = Record::of(report)?;
        outputs.filtered = Some(filtered);
        Ok(Some(Completed { record, finished }))
    }

    fn reload(&self, job: &JobRun<'_>, outputs: &mut Outputs) -> Result<()> {
        outputs.filtered = Some(filter(job)?);
        Ok(())
    }
}

/// Judges the teach stage's cache.
fn filter(job: &JobRun<'_>) -> Result<Filtered> {
    let (spec, dataset) = (job.spec, job.context.dataset);
    let mut taught: HashMap<(String, String), Taught> = HashMap::new();
    for t in read_cache(&stage_dir(job.context.dir, Stage::Teach))? {
        taught.entry((t.user.clone(), t.item.clone())).or_insert(t);
    }
    let taught: Vec<(&Sample, Taught)> = job
        .train_samples
        .iter()
        .zip(shards::keys(dataset, &job.train_samples))
        .filter_map(|(sample, key)| Some((sample, taught.remove(&key)?)))
        .collect();
    let mut report = FilterReport { enabled: spec.filter.enabled, ..FilterReport::default() };
    let mut kept = Vec::new();
    for (sample, t) in &taught {
        let sample = *sample;
        report.total += 1;
        match judge(&spec.filter, &job.matcher, sample, &t.text) {
            Some(reason) => {
                *report.dropped.entry(reason).or_default() += 1;
                let examples = report.examples.entry(reason).or_default();
                if examples.len() < 5 {
                    examples.push(t.text.clone());
                }
                if !spec.filter.enabled {
                    kept.push(Pair { sample: sample.clone(), target: t.text.clone() });
                }
            }
            None => kept.push(Pair { sample: sample.clone(), target: t.text.clone() }),
        }
    }
    report.kept = kept.len();
    Ok(Filtered { taught: taught.len(), report, kept })
}

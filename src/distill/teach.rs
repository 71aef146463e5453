//! The *teach* stage: the Oracle writes an explanation for each chosen training sample with its
//! faithfulness-constrained prompt. Results are appended to `cache.jsonl` batch by batch (each
//! line flushed), keyed by (user, item): a killed job continues where it stopped and never
//! generates a cached sample twice. A slot-reading teacher's explanations are cached with their
//! slots filled (`explain::slots`), as a reader sees them: the filter judges that text, and the
//! student's fine-tune writes it back in its own slots.
//!
//! Batches are fixed: batch `b` is always samples `b·B .. (b+1)·B` of the job's sample list, whether
//! the stage runs whole, resumed, or as one shard of several ([`Shard`]). A sample is therefore
//! always generated in the same company and with the same padding, so its explanation does not
//! depend on how the work was split (batched numerics can differ with the batch's shape).

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Result;

use super::batches::Shard;
use super::events::{DistillEvent, EventKind, EventSink, Stage};
use crate::data::Dataset;
use crate::durable::{read_json_lines, JsonLines};
use crate::explain::samples::Sample;
use crate::explain::Prompts;
use crate::explain::{render_prompt, Prompt, PromptKind};
use crate::model::engine::{Engine, TextGeneration};
use crate::model::GenerationConfig;

/// One cached teacher explanation.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Taught {
    pub user: String,
    pub item: String,
    pub text: String,
    /// The batch's generation time divided among its samples.
    pub ms: f64,
    pub new_tokens: usize,
}

pub const CACHE_FILE: &str = "cache.jsonl";

/// Reads what a previous run of the stage cached.
pub fn read_cache(stage_dir: &Path) -> Result<Vec<Taught>> {
    read_json_lines(&stage_dir.join(CACHE_FILE))
}

pub struct Teach<'a> {
    pub dataset: &'a Dataset,
    pub prompts: &'a Prompts,
    pub teacher: &'a Engine,
    pub decoding: &'a GenerationConfig,
    pub max_input_tokens: usize,
    pub batch_size: usize,
    /// The job's whole sample list, in its seeded order (it fixes the batches).
    pub samples: &'a [Sample],
    pub shard: Shard,
    /// Where `cache.jsonl` is.
    pub dir: &'a Path,
    pub cancel: &'a AtomicBool,
}

/// Runs (or continues) the stage, or one shard of it. Returns whether it completed (false:
/// cancelled).
pub fn teach(job: Teach<'_>, events: &mut EventSink<'_>) -> Result<bool> {
    let Teach {
        dataset,
        prompts,
        teacher,
        decoding,
        max_input_tokens,
        batch_size,
        samples,
        shard,
        dir,
        cancel,
    } = job;
    let key = |s: &Sample| (dataset.users[s.user as usize].clone(), dataset.item(s.item).id.clone());
    let done: HashSet<(String, String)> = read_cache(dir)?.into_iter().map(|t| (t.user, t.item)).collect();
    let mine: Vec<(usize, &[Sample])> =
        samples.chunks(batch_size.max(1)).enumerate().filter(|(b, _)| shard.has_batch(*b)).collect();
    let total: usize = mine.iter().map(|(_, batch)| batch.len()).sum();
    // A batch a kill interrupted is generated again whole (so in the same company), and only its
    // missing samples are appended.
    let todo: Vec<(usize, &[Sample])> =
        mine.into_iter().filter(|(_, batch)| batch.iter().any(|s| !done.contains(&key(s)))).collect();
    let missing = todo.iter().flat_map(|(_, batch)| batch.iter()).filter(|s| !done.contains(&key(s))).count();
    let mut finished = total - missing;
    events.emit(
        DistillEvent::new(Stage::Teach, EventKind::Started, finished, total)
            .message(format!("{finished} cached, {missing} to generate")),
    )?;
    let mut cache = JsonLines::open(&dir.join(CACHE_FILE))?;
    let started = Instant::now();
    let mut generated = 0usize;
    for (index, batch) in todo {
        if cancel.load(Ordering::Relaxed) {
            return Ok(false);
        }
        // A sampling teacher's batch has its own seed, whichever run or shard generates it.
        let decoding =
            &GenerationConfig { seed: decoding.seed + (index * batch_size) as u64, ..decoding.clone() };
        let prompts: Vec<Prompt> = batch
            .iter()
            .map(|s| {
                render_prompt(
                    dataset,
                    prompts,
                    PromptKind::Oracle,
                    s,
                    teacher.tokenizer(),
                    None,
                    max_input_tokens,
                )
            })
            .collect::<Result<_>>()?;
        let Some((generations, total_ms)) = generate(teacher, &prompts, decoding, cancel)? else {
            return Ok(false);
        };
        let per_sample_ms = total_ms / batch.len() as f64;
        for ((sample, generation), prompt) in batch.iter().zip(&generations).zip(&prompts) {
            let (user, item) = key(sample);
            if done.contains(&(user.clone(), item.clone())) {
                continue;
            }
            cache.append(&Taught {
                user,
                item,
                text: prompt.slots.as_ref().map_or_else(
                    || generation.text.trim().to_owned(),
                    |slots| slots.fill(generation.text.trim()),
                ),
                ms: per_sample_ms,
                new_tokens: generation.token_ids.len(),
            })?;
            finished += 1;
            generated += 1;
        }
        let rate = generated as f64 / started.elapsed().as_secs_f64().max(1e-9);
        let mut event = DistillEvent::new(Stage::Teach, EventKind::Progress, finished, total);
        event.samples_per_s = Some(rate);
        event.eta_s = Some((total - finished) as f64 / rate.max(1e-9));
        events.emit(event)?;
    }
    Ok(true)
}

/// The teacher's explanations of one batch and the time they took (`None`: cancelled). A
/// slot-reading teacher writes each prompt on its own, with the slots its sample has no value for
/// suppressed ([`crate::explain::Slots::unavailable`]) and the seed the batch would give it, so
/// it claims no link its prompt has no evidence for.
fn generate(
    teacher: &Engine,
    prompts: &[Prompt],
    decoding: &GenerationConfig,
    cancel: &AtomicBool,
) -> Result<Option<(Vec<TextGeneration>, f64)>> {
    if prompts.iter().all(|p| p.slots.is_none()) {
        let refs: Vec<&str> = prompts.iter().map(|p| p.text.as_str()).collect();
        let out = teacher.generate(&refs, decoding, None, Some(cancel))?;
        return Ok((!out.cancelled).then_some((out.generations, out.stats.total_ms)));
    }
    let (mut generations, mut total_ms) = (Vec::with_capacity(prompts.len()), 0.0);
    for (i, prompt) in prompts.iter().enumerate() {
        let seeded = GenerationConfig { seed: decoding.seed + i as u64, ..decoding.clone() };
        let config = match &prompt.slots {
            Some(slots) => slots.constrain(teacher.tokenizer(), &seeded),
            None => seeded,
        };
        let out = teacher.generate(&[prompt.text.as_str()], &config, None, Some(cancel))?;
        if out.cancelled {
            return Ok(None);
        }
        total_ms += out.stats.total_ms;
        generations.extend(out.generations);
    }
    Ok(Some((generations, total_ms)))
}

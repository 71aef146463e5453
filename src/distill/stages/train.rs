//! The train stage of a job: the student's recipe (`--student DIR` replacing its model) fine-tuned on
//! the filter's pairs, validated on the dev references; the trainer's own checkpoints make a
//! killed stage continue at its step. Its marker records the trainer's outcome.

use anyhow::{bail, Result};

use super::{earlier, Completed, JobRun, JobStage, Outputs, Trained};
use crate::data::Part;
use crate::distill::events::{DistillEvent, EventKind, EventSink, Stage};
use crate::distill::finetune::{finetune, reference_pairs, Finetune, ModelSpec, Recipe, Targets};
use crate::distill::layout::{completion, stage_dir, Record};
use crate::explain::samples::{samples, SampleSet};
use crate::train::{Ending, TrainEvent};

pub struct TrainStage;

impl JobStage for TrainStage {
    fn stage(&self) -> Stage {
        Stage::Train
    }

    fn run(
        &self,
        job: &JobRun<'_>,
        outputs: &mut Outputs,
        events: &mut EventSink<'_>,
    ) -> Result<Option<Completed>> {
        let context = &job.context;
        let kept = &earlier(&outputs.filtered, "filter")?.kept;
        if kept.is_empty() {
            bail!(
                "the filter kept none of the {} teacher explanations; see {}/filter/report.json",
                earlier(&outputs.filtered, "filter")?.report.total,
                context.dir.display()
            );
        }
        let recipe = recipe(job)?;
        let dev = reference_pairs(samples(
            context.dataset,
            &job.split,
            SampleSet::Held(Part::Dev),
            context.history_len,
        ));
        let train_dir = stage_dir(context.dir, Stage::Train);
        let total_steps = recipe.train.total_steps(kept.len().min(recipe.train_limit.unwrap_or(usize::MAX)));
        events.emit(DistillEvent::new(Stage::Train, EventKind::Started, 0, total_steps))?;
        let mut emit_error = None;
        let mut forward = |event: &TrainEvent| {
            let out = match event {
                TrainEvent::Step { step, total, loss, examples_per_s, eta_s, .. } => {
                    let mut e = DistillEvent::new(Stage::Train, EventKind::Progress, *step, *total);
                    e.loss = Some(*loss);
                    e.samples_per_s = Some(*examples_per_s);
                    e.eta_s = Some(*eta_s);
                    Some(e)
                }
                TrainEvent::Eval(record) => Some(
                    DistillEvent::new(Stage::Train, EventKind::Progress, record.step, total_steps)
                        .message(format!("dev {:?}", record.metrics)),
                ),
                TrainEvent::Saved { .. } => None,
            };
            if let Some(e) = out {
                if let Err(err) = events.emit(e) {
                    emit_error.get_or_insert(err);
                }
            }
        };
        let outcome = finetune(Finetune {
            dataset: context.dataset,
            prompts: context.prompts,
            matcher: &job.matcher,
            recipe: &recipe,
            train: kept,
            dev: &dev,
            out: &train_dir,
            device: context.device,
            on_event: &mut forward,
            cancel: context.cancel,
            stop_at: None,
        })?;
        if let Some(err) = emit_error {
            return Err(err);
        }
        if outcome.ending == Ending::Cancelled {
            return Ok(None);
        }
        let record = Record::of(&outcome)?;
        let finished = DistillEvent::new(Stage::Train, EventKind::Finished, outcome.steps, outcome.steps);
        outputs.trained = Some(Trained { recipe, outcome: record.value()?, student: student_dir(job) });
        Ok(Some(Completed { record, finished }))
    }

    fn reload(&self, job: &JobRun<'_>, outputs: &mut Outputs) -> Result<()> {
        let recipe = recipe(job)?;
        let outcome = completion(job.context.dir, Stage::Train)?;
        outputs.trained = Some(Trained { recipe, outcome, student: student_dir(job) });
        Ok(())
    }
}

fn student_dir(job: &JobRun<'_>) -> std::path::PathBuf {
    stage_dir(job.context.dir, Stage::Train).join(crate::train::trainer::BEST)
}

/// The student's recipe as the job trains it.
fn recipe(job: &JobRun<'_>) -> Result<Recipe> {
    let spec = job.spec;
    let mut recipe = Recipe::load(&spec.student_recipe)?;
    if recipe.targets != Targets::References {
        bail!(
            "{}: the student learns the teacher's explanations; `targets` is for `prism train` only",
            spec.student_recipe.display()
        );
    }
    if let Some(init) = &spec.student_init {
        recipe.model =
            ModelSpec { init: Some(init.clone()), config: None, copy_init: false, induction_init: false };
    }
    Ok(recipe)
}

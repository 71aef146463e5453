//! The evaluate stage of a job: the trained student against the teacher on the same test samples
//! ([`crate::distill::evaluate`]); for a job taught from a file, against the file's texts for the
//! test items, or against nothing when it has none. Its report is `evaluate/report.json`.

use std::collections::HashMap;

use anyhow::Result;

use super::{earlier, Completed, JobRun, JobStage, Outputs, TeacherSource};
use crate::data::{Dataset, Part};
use crate::distill::evaluate::{evaluate, Evaluate, Teacher};
use crate::distill::events::{DistillEvent, EventKind, EventSink, Stage};
use crate::distill::external;
use crate::distill::layout::{stage_dir, Record};
use crate::distill::spec::JobSpec;
use crate::durable;
use crate::explain::samples::{samples, Sample, SampleSet};
use crate::model::checkpoint::read_json;
use crate::model::engine::{Engine, EngineOptions};

const REPORT_FILE: &str = "report.json";

pub struct EvaluateStage;

impl JobStage for EvaluateStage {
    fn stage(&self) -> Stage {
        Stage::Evaluate
    }

    fn run(
        &self,
        job: &JobRun<'_>,
        outputs: &mut Outputs,
        events: &mut EventSink<'_>,
    ) -> Result<Option<Completed>> {
        let context = &job.context;
        let trained = earlier(&outputs.trained, "trained student")?;
        let eval_dir = stage_dir(context.dir, Stage::Evaluate);
        let max_input = trained.recipe.max_input_tokens;
        let student_options =
            EngineOptions { max_input_tokens: Some(max_input), ..job.engine_options.clone() };
        let student = Engine::load(&trained.student, &student_options)?;
        let test: Vec<Sample> =
            samples(context.dataset, &job.split, SampleSet::Held(Part::Test), context.history_len)
                .into_iter()
                .filter(|s| s.reference.is_some())
                .collect();
        let texts = match &job.teacher {
            TeacherSource::File(_) => external::read_test_texts(&stage_dir(context.dir, Stage::Teach))?,
            TeacherSource::Model(_) => HashMap::new(),
        };
        let (test, teacher) = eval_teacher(job.spec, &job.teacher, &texts, context.dataset, test);
        let Some(evaluation) = evaluate(
            Evaluate {
                dataset: context.dataset,
                prompts: context.prompts,
                matcher: &job.matcher,
                teacher,
                student: &student,
                student_max_input: max_input,
                decoding: &job.spec.eval_decoding,
                samples: &test,
                history_len: context.history_len,
                dir: &eval_dir,
                cancel: context.cancel,
            },
            events,
        )?
        else {
            return Ok(None);
        };
        durable::write_json(&eval_dir.join(REPORT_FILE), &evaluation)?;
        let explained = evaluation.samples * if evaluation.teacher.is_some() { 2 } else { 1 };
        let record = Record::of(&serde_json::json!({"samples": evaluation.samples}))?;
        outputs.evaluation = Some(serde_json::to_value(&evaluation)?);
        let finished = DistillEvent::new(Stage::Evaluate, EventKind::Finished, explained, explained);
        Ok(Some(Completed { record, finished }))
    }

    fn reload(&self, job: &JobRun<'_>, outputs: &mut Outputs) -> Result<()> {
        outputs.evaluation = Some(read_json(&stage_dir(job.context.dir, Stage::Evaluate).join(REPORT_FILE))?);
        Ok(())
    }
}

/// The evaluation's test samples (from `test`, the test samples with a reference) and what the
/// student is compared with: the teacher model on the first `eval_samples`; for a job taught from
/// a file, the file's texts on the first `eval_samples` of the samples it explains, or no teacher
/// (and the first `eval_samples`) when it explains none.
fn eval_teacher<'a>(
    spec: &JobSpec,
    teacher: &'a TeacherSource<'_>,
    texts: &'a HashMap<(String, String), String>,
    dataset: &Dataset,
    test: Vec<Sample>,
) -> (Vec<Sample>, Teacher<'a>) {
    let n = spec.eval_samples;
    match teacher {
        TeacherSource::Model(engine) => (
            test.into_iter().take(n).collect(),
            Teacher::Model { engine, max_input: spec.teacher_max_input_tokens },
        ),
        TeacherSource::File(outputs) if test.iter().any(|s| texts.contains_key(&s.key(dataset))) => {
            let covered: Vec<Sample> =
                test.into_iter().filter(|s| texts.contains_key(&s.key(dataset))).take(n).collect();
            let source = format!(
                "the external teacher's texts for these test samples ({}, which has {} rows for test items)",
                outputs.path.display(),
                texts.len()
            );
            (covered, Teacher::Texts { texts, source })
        }
        TeacherSource::File(outputs) => {
            let why = format!(
                "none: {} has no rows for the test items with a reference, and its teacher does not run here",
                outputs.path.display()
            );
            (test.into_iter().take(n).collect(), Teacher::Absent { why })
        }
    }
}

//! The teach stage of a job: the teacher model explains the job's training samples — in one
//! piece, or shard after shard here and then merged (what a Slurm job array does in parallel) —
//! or an external teacher's file takes its place ([`crate::distill::external`]).

use anyhow::Result;

use super::{Completed, JobRun, JobStage, Outputs, TeacherSource};
use crate::distill::batches::Shard;
use crate::distill::events::{DistillEvent, EventKind, EventSink, Stage};
use crate::distill::external;
use crate::distill::layout::{stage_dir, Record};
use crate::distill::shards::{self, Plan, TeachPart};

pub struct TeachStage;

impl JobStage for TeachStage {
    fn stage(&self) -> Stage {
        Stage::Teach
    }

    fn run(
        &self,
        job: &JobRun<'_>,
        outputs: &mut Outputs,
        events: &mut EventSink<'_>,
    ) -> Result<Option<Completed>> {
        let dir = job.context.dir;
        let samples = &job.train_samples;
        let (record, done) = match &job.teacher {
            TeacherSource::File(file) => {
                let report = external::teach_from_file(
                    &stage_dir(dir, Stage::Teach),
                    file,
                    job.context.dataset,
                    samples,
                    events,
                )?;
                let record = Record::of(&report)?;
                let found = report.found;
                outputs.external_teacher = Some(report);
                (record, found)
            }
            TeacherSource::Model(engine) => {
                if !teach_with_model(job, engine, events)? {
                    return Ok(None);
                }
                (Record::of(&serde_json::json!({"samples": samples.len()}))?, samples.len())
            }
        };
        let finished = DistillEvent::new(Stage::Teach, EventKind::Finished, done, samples.len());
        Ok(Some(Completed { record, finished }))
    }

    fn reload(&self, job: &JobRun<'_>, outputs: &mut Outputs) -> Result<()> {
        if let TeacherSource::File(_) = job.teacher {
            outputs.external_teacher =
                Some(external::read_report(&stage_dir(job.context.dir, Stage::Teach))?);
        }
        Ok(())
    }
}

/// The stage with the teacher model in this process: in one piece, or shard after shard and then
/// merged. Returns whether it completed (false: cancelled).
fn teach_with_model(
    job: &JobRun<'_>,
    teacher: &crate::model::engine::Engine,
    events: &mut EventSink<'_>,
) -> Result<bool> {
    let (context, spec, samples) = (&job.context, job.spec, &job.train_samples);
    let part = TeachPart { spec, context, teacher, samples };
    let Some(count) = spec.shards else {
        return part.teach(Shard::ALL, &stage_dir(context.dir, Stage::Teach), events);
    };
    let keys = shards::keys(context.dataset, samples);
    shards::write_plan(context.dir, &Plan::new(&keys, count, spec.teach_batch))?;
    for index in 0..count {
        let shard = Shard { index, count };
        let mut failure = None;
        let mut to_job = |event: &DistillEvent| {
            if let Err(e) = events.emit(event.clone()) {
                failure.get_or_insert(e);
            }
        };
        let done = shards::teach_shard(&part, shard, &mut to_job)?;
        if let Some(e) = failure {
            return Err(e);
        }
        if !done {
            return Ok(false);
        }
    }
    let report = shards::merge(context.dir, &keys, spec.teach_batch, count)?;
    events.emit(
        DistillEvent::new(Stage::Teach, EventKind::Progress, report.merged, report.samples).message(format!(
            "merged {} shards: {} samples, {} duplicates, {} stray lines",
            report.shards,
            report.merged,
            report.duplicates.len(),
            report.strays.len()
        )),
    )?;
    Ok(true)
}

//! `prism train --recipe FILE --out DIR [--resume]`: fine-tunes a model on the dataset's reference
//! explanations (how the embedded Oracle is made; see docs/EMBEDDED_MODELS.md). Progress goes to
//! stderr; `--json` prints the outcome on stdout.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args;

use super::{print_json, Context};
use crate::data::{self, Part, Split};
use crate::distill::finetune::{finetune, target_pairs, Finetune, Recipe};
use crate::explain::samples::{samples, SampleSet};
use crate::explain::{Matcher, Prompts};
use crate::model::device::parse_device;
use crate::train::trainer::read_state;
use crate::train::TrainEvent;

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training recipe (TOML), e.g. configs/train/oracle.toml.
    #[arg(long, value_name = "FILE")]
    pub recipe: PathBuf,
    /// Run directory: `last/` (resumable checkpoint) and `best/` (the model to use).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Pause after this many optimizer steps (a checkpoint to --resume from), keeping the recipe's
    /// schedule: splits a long run across sessions reproducibly.
    #[arg(long, value_name = "STEP")]
    pub stop_at: Option<usize>,
    /// "cpu" or "cuda:N"; default from the configuration's [models] device.
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<String>,
}

pub fn run(ctx: &Context, args: TrainArgs) -> Result<()> {
    let recipe = Recipe::load(&args.recipe)?;
    let has_checkpoint = read_state(&args.out)?.is_some();
    if has_checkpoint && !args.resume {
        bail!(
            "{} already holds a training run; add --resume to continue it or choose a new --out",
            args.out.display()
        );
    }
    let device = parse_device(args.device.as_deref().unwrap_or(&ctx.settings.models.device))?;
    let dataset = data::open(&ctx.settings.dataset)?;
    let split = Split::leave_last_out(&dataset);
    let history_len = ctx.settings.dataset.history_len;
    let pairs = |set| target_pairs(&dataset, samples(&dataset, &split, set, history_len), recipe.targets);
    let train = pairs(SampleSet::Train);
    let dev = pairs(SampleSet::Held(Part::Dev));
    if train.is_empty() {
        bail!("the dataset has no reference explanations to train on");
    }
    let prompts = Prompts::load(&ctx.settings.prompts)?;
    let matcher = Matcher::new(&dataset);
    let started = Instant::now();
    // On a terminal a bar (hidden by --quiet); in a log, every tenth step as a line.
    let terminal = std::io::stderr().is_terminal();
    let mut bar: Option<indicatif::ProgressBar> = None;
    let mut on_event = |event: &TrainEvent| match event {
        TrainEvent::Step { step, total, epoch, loss, lr, examples_per_s, eta_s, .. } => {
            if terminal {
                let bar = bar.get_or_insert_with(|| {
                    let bar = crate::progress::bar(*total as u64, "train", "steps");
                    // Steps of a resumed run took no time this run.
                    bar.set_position(step.saturating_sub(1) as u64);
                    bar.reset_eta();
                    bar
                });
                bar.set_position(*step as u64);
                bar.set_message(format!("epoch {epoch} loss {loss:.4} lr {lr:.2e}"));
            } else if *step % 10 == 0 || step == total {
                eprintln!(
                    "step {step}/{total} epoch {epoch} loss {loss:.4} lr {lr:.2e} {examples_per_s:.1} ex/s eta {:.0} min",
                    eta_s / 60.0
                );
            }
        }
        TrainEvent::Eval(record) => {
            let line = format!("eval at step {}: {:?}", record.step, record.metrics);
            match &bar {
                Some(bar) => crate::progress::println(bar, &line),
                None => eprintln!("{line}"),
            }
        }
        TrainEvent::Saved { .. } => {}
    };
    let outcome = finetune(Finetune {
        dataset: &dataset,
        prompts: &prompts,
        matcher: &matcher,
        recipe: &recipe,
        train: &train,
        dev: &dev,
        out: &args.out,
        device: &device,
        on_event: &mut on_event,
        cancel: super::interrupt_flag(),
        stop_at: args.stop_at,
    })?;
    drop(bar);
    eprintln!(
        "{:?} after {} steps in {:.0} s; best model in {}",
        outcome.ending,
        outcome.steps,
        started.elapsed().as_secs_f64(),
        outcome.best_dir.display()
    );
    if ctx.json {
        print_json(&outcome)?;
    }
    Ok(())
}

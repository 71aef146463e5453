//! The command-line contract (the README's command table): argument definitions and one handler
//! module per command group. Handlers resolve arguments into real objects, call the rooms, and print
//! either a human-readable table or exactly one JSON document on stdout.

pub mod bench;
pub mod data;
pub mod distill;
pub mod eval_explain;
pub mod explain;
pub mod explain_bulk;
pub mod generate;
pub mod human_eval;
pub mod plot;
pub mod quantize;
pub mod rank;
pub mod synth;
pub mod train;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::config::Settings;

#[derive(Debug, Parser)]
#[command(name = "prism", version, about = "Explore decoupled, distilled recommendation explanations")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Dataset directory, or `demo` for the synthetic dataset in assets/demo [default: from config]
    #[arg(long, global = true, value_name = "PATH|demo")]
    pub dataset: Option<String>,
    /// Configuration file layered over the defaults and the user's config
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print one JSON document on stdout and nothing else there
    #[arg(long, global = true)]
    pub json: bool,
    /// Skip and count malformed dataset records instead of failing on the first
    #[arg(long, global = true)]
    pub lenient: bool,
    /// Dataset format instead of auto-detection
    #[arg(long, global = true, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Print a backtrace after an error (RUST_BACKTRACE alone no longer does, so a user error is
    /// one message)
    #[arg(long, global = true)]
    pub debug: bool,
    /// No progress bars (they are never drawn when stderr is not a terminal)
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The explorer (also what `prism` with no command opens)
    Tui,
    /// Inspect and generate datasets
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Top-K recommendations for one user
    Rank(rank::RankArgs),
    /// Evaluate rankers or explanations
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Generate text with any seq2seq checkpoint directory
    Generate(Box<generate::GenerateArgs>),
    /// Fine-tune a model on the dataset's reference explanations (how the embedded Oracle is made).
    Train(train::TrainArgs),
    /// Explain a recommendation with the Oracle and/or the Prism, or a whole split into a file
    Explain(explain::ExplainArgs),
    /// Distil the Oracle into a Prism: teach → filter → train → evaluate (resumable)
    Distill(distill::DistillArgs),
    /// Time the Oracle and the Prism on the same inputs (each model in its own process)
    Bench(bench::BenchArgs),
    /// Write a checkpoint's weights quantized (q8, q4) to a directory that loads without re-quantizing
    Quantize(quantize::QuantizeArgs),
    /// Blind human evaluation: set up a study, annotate it, report and export the results
    #[command(subcommand, name = "human-eval")]
    HumanEval(human_eval::HumanEvalCommand),
}

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Full-ranking HR@K, NDCG@K and MRR of every ranker on the test split
    Rank(rank::EvalRankArgs),
    /// BLEU, ROUGE, USR/FMR/FCR/DIV, distinct-n and invented-feature rates of explanations
    Explain(eval_explain::EvalExplainArgs),
}

/// The bounds of a model run, on every command where a model reads a prompt.
#[derive(Debug, Args, Clone, Default)]
pub struct LimitArgs {
    /// Cut prompts to this many tokens [default: `[models]` *_max_input_tokens; for a checkpoint
    /// directory, BART's max_position_embeddings or T5's n_positions, else 512]
    #[arg(long, value_name = "N", value_parser = crate::validate::flag::at_least_one)]
    pub max_input_tokens: Option<usize>,
    /// A prompt longer than the model's input length is an error instead of being cut
    #[arg(long)]
    pub no_truncate: bool,
    /// Refuse a generation whose estimated peak memory exceeds this size (e.g. 4G, 512M)
    /// [default: `[models] max_memory`, the memory available]
    #[arg(long, value_name = "SIZE", value_parser = parse_memory)]
    pub max_memory: Option<u64>,
}

fn parse_memory(text: &str) -> Result<u64, String> {
    crate::model::memory::parse_bytes(text)
}

impl LimitArgs {
    /// Lays the flags over the `[models]` settings.
    pub fn apply(&self, models: &mut crate::config::ModelSettings) {
        if let Some(n) = self.max_input_tokens {
            models.oracle_max_input_tokens = n;
            models.prism_max_input_tokens = n;
        }
        models.truncate &= !self.no_truncate;
        if let Some(bytes) = self.max_memory {
            models.max_memory = bytes.to_string();
        }
    }
}

/// What every handler receives: resolved settings and the output mode.
#[derive(Debug, Clone)]
pub struct Context {
    pub settings: Settings,
    pub json: bool,
    /// The global arguments as given (a command that starts prism elsewhere passes them on).
    pub global: GlobalArgs,
}

impl Context {
    pub fn new(global: &GlobalArgs) -> Result<Context> {
        let mut settings = Settings::load(global.config.as_deref())?;
        if let Some(dataset) = &global.dataset {
            settings.dataset.path = dataset.clone();
        }
        if let Some(format) = &global.format {
            settings.dataset.format = format.clone();
        }
        settings.dataset.lenient |= global.lenient;
        Ok(Context { settings, json: global.json, global: global.clone() })
    }
}

/// Prints `value` as the one JSON document of this command.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// A flag that Ctrl-C sets instead of killing the process, for long commands that stop cleanly
/// (saving a resumable checkpoint) when asked.
pub fn interrupt_flag() -> &'static AtomicBool {
    #[cfg(unix)]
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_interrupt as *const () as libc::sighandler_t);
    }
    &INTERRUPTED
}

pub fn print_json(value: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub fn run(cli: Cli) -> Result<()> {
    // The explorer and the annotation screen own the terminal: no bar may draw over them. The
    // explorer's workers set up their own pools; a command's tensor work runs on this thread.
    let owns_terminal = matches!(
        cli.command,
        None | Some(Command::Tui) | Some(Command::HumanEval(human_eval::HumanEvalCommand::Resume(_)))
    );
    if !owns_terminal {
        crate::threads::join_global_pool();
    }
    let ctx = Context::new(&cli.global)?;
    crate::progress::show(!cli.global.quiet && !owns_terminal);
    match cli.command {
        None | Some(Command::Tui) => crate::tui::run(ctx.settings),
        Some(Command::Data(cmd)) => data::run(&ctx, cmd),
        Some(Command::Rank(args)) => rank::rank(&ctx, args),
        Some(Command::Eval(EvalCommand::Rank(args))) => rank::eval_rank(&ctx, args),
        Some(Command::Eval(EvalCommand::Explain(args))) => eval_explain::run(&ctx, args),
        Some(Command::Generate(args)) => generate::run(&ctx, *args),
        Some(Command::Train(args)) => train::run(&ctx, args),
        Some(Command::Distill(args)) => distill::run(&ctx, args),
        Some(Command::Explain(args)) => explain::run(&ctx, args),
        Some(Command::Bench(args)) => bench::run(&ctx, args),
        Some(Command::Quantize(args)) => quantize::run(&ctx, args),
        Some(Command::HumanEval(cmd)) => human_eval::run(&ctx, cmd, cli.global.format.as_deref()),
    }
}

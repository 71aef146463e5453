//! `prism data …`: dataset statistics, user listing, and the demo generator.

use anyhow::Result;
use clap::{Args, Subcommand};

use super::Context;

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Counts of users, items, interactions and the split sizes
    Stats,
    /// List users with their history length
    Users(UsersArgs),
    /// Write the synthetic demo dataset (generic JSONL) to a directory
    Synth(super::synth::SynthArgs),
}

#[derive(Debug, Args)]
pub struct UsersArgs {
    /// Show at most this many users
    #[arg(long)]
    pub limit: Option<usize>,
}

pub fn run(ctx: &Context, cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Stats => stats(ctx),
        DataCommand::Users(args) => users(ctx, args),
        DataCommand::Synth(args) => super::synth::run(ctx, args),
    }
}

fn stats(_ctx: &Context) -> Result<()> {
    anyhow::bail!("not built yet")
}

fn users(_ctx: &Context, _args: UsersArgs) -> Result<()> {
    anyhow::bail!("not built yet")
}

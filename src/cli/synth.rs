//! `prism data synth`: writes the synthetic demo dataset.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::Context;

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Output directory
    #[arg(long)]
    pub out: PathBuf,
    /// Random seed; the same seed writes the same files
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

pub fn run(_ctx: &Context, _args: SynthArgs) -> Result<()> {
    anyhow::bail!("not built yet")
}

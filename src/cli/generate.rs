//! `prism generate`: text from any seq2seq checkpoint directory.

use anyhow::Result;
use clap::Args;

use super::Context;

#[derive(Debug, Args)]
pub struct GenerateArgs {}

pub fn run(_ctx: &Context, _args: GenerateArgs) -> Result<()> {
    anyhow::bail!("not built yet")
}

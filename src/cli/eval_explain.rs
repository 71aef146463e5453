//! `prism eval explain`: text, feature and faithfulness metrics of explanations.

use anyhow::Result;
use clap::Args;

use super::Context;

#[derive(Debug, Args)]
pub struct EvalExplainArgs {}

pub fn run(_ctx: &Context, _args: EvalExplainArgs) -> Result<()> {
    anyhow::bail!("not built yet")
}

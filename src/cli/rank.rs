//! `prism rank` and `prism eval rank`.

use anyhow::Result;
use clap::Args;

use super::Context;

#[derive(Debug, Args)]
pub struct RankArgs {}

#[derive(Debug, Args)]
pub struct EvalRankArgs {}

pub fn rank(_ctx: &Context, _args: RankArgs) -> Result<()> {
    anyhow::bail!("not built yet")
}

pub fn eval_rank(_ctx: &Context, _args: EvalRankArgs) -> Result<()> {
    anyhow::bail!("not built yet")
}

//! `prism data …`: dataset statistics, user listing, and the demo generator.

use anyhow::Result;
use clap::{Args, Subcommand};
use serde::Serialize;

use super::Context;
use crate::data::notes::{Unparsed, Unterminated};
use crate::data::{self, Split};

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

/// `prism data stats --json`.
#[derive(Debug, Serialize)]
struct Stats<'d> {
    format: String,
    users: usize,
    items: usize,
    interactions: usize,
    train: usize,
    dev: usize,
    test: usize,
    skipped: usize,
    /// Optional fields left missing because they could not be parsed, per file and field.
    unparsed_fields: &'d [Unparsed],
    /// Files whose last line has no newline (kept: it passed every check).
    unterminated_last_lines: &'d [Unterminated],
}

fn stats(ctx: &Context) -> Result<()> {
    let dataset = data::open(&ctx.settings.dataset)?;
    let split = Split::leave_last_out(&dataset);
    let stats = Stats {
        format: dataset.format.clone(),
        users: dataset.num_users(),
        items: dataset.num_items(),
        interactions: dataset.interactions.len(),
        train: split.train_len(),
        dev: split.dev_len(),
        test: split.test_len(),
        skipped: dataset.notes.skipped,
        unparsed_fields: &dataset.notes.unparsed,
        unterminated_last_lines: &dataset.notes.unterminated,
    };
    if ctx.json {
        return super::print_json(&stats);
    }
    let cells = dataset.num_users() as f64 * dataset.num_items() as f64;
    let density = if cells > 0.0 { 100.0 * stats.interactions as f64 / cells } else { 0.0 };
    let dir = data::load::dataset_dir(&ctx.settings.dataset);
    println!("dataset       {} ({})", dir.display(), stats.format);
    for (name, value) in [
        ("users", stats.users),
        ("items", stats.items),
        ("interactions", stats.interactions),
        ("  train", stats.train),
        ("  dev", stats.dev),
        ("  test", stats.test),
        ("skipped", stats.skipped),
    ] {
        println!("{name:<13} {value:>10}");
    }
    println!("{:<13} {:>9.3}%", "density", density);
    for u in stats.unparsed_fields {
        println!(
            "{:<13} {:>10}  {} `{}` left missing (first at line {}: {:?})",
            "unparsed", u.count, u.file, u.field, u.first_line, u.first_value
        );
    }
    for t in stats.unterminated_last_lines {
        println!("{:<13} {:>10}  {}: no newline at the end of its last line", "last line", t.line, t.file);
    }
    Ok(())
}

/// One row of `prism data users --json`.
#[derive(Debug, Serialize)]
struct UserRow<'a> {
    user: &'a str,
    history_len: usize,
}

fn users(ctx: &Context, args: UsersArgs) -> Result<()> {
    let dataset = data::open(&ctx.settings.dataset)?;
    let split = Split::leave_last_out(&dataset);
    let limit = args.limit.unwrap_or(usize::MAX);
    let rows: Vec<UserRow> = dataset
        .users
        .iter()
        .zip(&split.users)
        .take(limit)
        .map(|(user, s)| UserRow { user, history_len: s.train.len() })
        .collect();
    if ctx.json {
        return super::print_json(&serde_json::json!({ "users": rows }));
    }
    let width = rows.iter().map(|r| r.user.len()).max().unwrap_or(0).max("user".len());
    println!("{:<width$}  {:>11}", "user", "history_len");
    for row in &rows {
        println!("{:<width$}  {:>11}", row.user, row.history_len);
    }
    if rows.len() < dataset.num_users() {
        println!("({} of {} users; --limit N shows more)", rows.len(), dataset.num_users());
    }
    Ok(())
}

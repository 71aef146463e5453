//! `prism explain --user U [--item I] [--model oracle|prism|both] --json`: the Oracle's and/or the
//! Prism's explanation of one recommendation (by default the user's top-ranked item), each with
//! its latency, memory and grounding. `prism explain --split train|dev|test --out F.jsonl` does the
//! same for every sample of a split into a file, resumably, or writes only the prompts
//! (`--prompts-only`); see [`super::explain_bulk`].

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;

use super::rank::recommendations;
use super::{print_json, Context};
use crate::data::{self, Split};
use crate::explain::samples::Sample;
use crate::explain::{decoding_overrides, Explainer, Explanation, Matcher, PromptKind, Prompts};
use crate::model::device::parse_device;
use crate::model::engine::{Engine, EngineOptions};
use crate::model::GenerationOverrides;
use crate::model::WeightDtype;
use crate::rank::{self, RankerSpec};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Which {
    Oracle,
    Prism,
    Both,
}

impl Which {
    pub fn kinds(self) -> &'static [PromptKind] {
        match self {
            Which::Oracle => &[PromptKind::Oracle],
            Which::Prism => &[PromptKind::Prism],
            Which::Both => &[PromptKind::Oracle, PromptKind::Prism],
        }
    }
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["user", "split"])))]
pub struct ExplainArgs {
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// The item to explain [default: the user's top-ranked item]
    #[arg(long, value_name = "ITEM", requires = "user")]
    pub item: Option<String>,
    #[arg(long, value_enum, default_value = "both")]
    pub model: Which,
    /// Ranker that picks the default item [default: ranker.default]
    #[arg(long, value_name = "RANKER", requires = "user")]
    pub ranker: Option<String>,
    /// Beam width [default: decoding.beams]
    #[arg(long, value_name = "N", value_parser = crate::validate::flag::at_least_one)]
    pub beams: Option<usize>,
    /// [default: decoding.max_new_tokens]
    #[arg(long, value_name = "N", value_parser = crate::validate::flag::at_least_one)]
    pub max_new_tokens: Option<usize>,
    /// "cpu" or "cuda:N" [default: models.device]
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<String>,
    #[command(flatten)]
    pub bulk: super::explain_bulk::BulkArgs,
    #[command(flatten)]
    pub limits: super::LimitArgs,
    /// Weight precision of both models: f32, bf16, f16, q8 or q4 [default: models.oracle_dtype,
    /// models.prism_dtype]
    #[arg(long, value_name = "DTYPE", value_parser = WeightDtype::parse)]
    pub dtype: Option<WeightDtype>,
}

#[derive(Debug, Serialize)]
pub struct ExplainOutput {
    pub user: String,
    pub item: String,
    pub title: String,
    /// The ranker that chose the item (absent when --item was given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranker: Option<String>,
    /// One entry per model: `oracle`, `prism`.
    #[serde(flatten)]
    pub models: BTreeMap<String, Explanation>,
}

pub fn run(ctx: &Context, args: ExplainArgs) -> Result<()> {
    let mut ctx = ctx.clone();
    args.limits.apply(&mut ctx.settings.models);
    let ctx = &ctx;
    let Some(user_id) = args.user.clone() else {
        let (options, overrides) = (engine_options(ctx, &args), overrides(ctx, &args));
        return super::explain_bulk::run(ctx, &args.bulk, args.model.kinds(), options, overrides);
    };
    let settings = &ctx.settings;
    let dataset = data::open(&settings.dataset)?;
    let Some(user) = dataset.user_by_id(&user_id) else {
        bail!("unknown user '{user_id}': not in the dataset. Consider `prism data users` to list the users.");
    };
    let (item, ranker) = match &args.item {
        Some(id) => {
            let Some(item) = dataset.item_by_id(id) else {
                bail!("unknown item '{id}': not in the dataset");
            };
            (item, None)
        }
        None => {
            let spec: RankerSpec = args.ranker.as_deref().unwrap_or(&settings.ranker.default).parse()?;
            let cache = rank::default_cache_dir();
            let ranked =
                recommendations(&dataset, &settings.ranker, &user_id, &spec, 1, cache.as_deref(), &|l| {
                    eprintln!("{l}")
                })?;
            let Some(top) = ranked.items.first() else {
                bail!("the ranker recommends nothing to '{user_id}'")
            };
            (dataset.item_by_id(&top.item).expect("ranked items come from the dataset"), Some(ranked.ranker))
        }
    };
    let split = Split::leave_last_out(&dataset);
    let history =
        split.history(&dataset, user, settings.dataset.history_len).iter().map(|i| i.item).collect();
    let sample = Sample { user, item, history, reference: None, noisy_reference: false };
    let prompts = Prompts::load(&settings.prompts)?;
    let matcher = Matcher::new(&dataset);
    let device = parse_device(args.device.as_deref().unwrap_or(&settings.models.device))?;
    let overrides = overrides(ctx, &args);
    let mut models = BTreeMap::new();
    for &kind in args.model.kinds() {
        let (dir, max_input_tokens) = kind.configured(&settings.models);
        let options = EngineOptions {
            dtype: Some(args.dtype.unwrap_or(kind.dtype(&settings.models))),
            ..kind.engine_options(&settings.models, device.clone())?
        };
        let engine = Engine::load(dir, &options)?;
        let explainer = Explainer {
            engine: &engine,
            kind,
            max_input_tokens,
            dataset: &dataset,
            prompts: &prompts,
            matcher: &matcher,
        };
        let decoding = engine.config_with(&overrides);
        let explanation = explainer.explain(&sample, &decoding, None, None)?;
        if let Some(warning) = explanation.truncation_warning(kind, explainer.input_budget()) {
            eprintln!("warning: {warning}");
        }
        models.insert(kind.name().to_owned(), explanation);
    }
    let item_info = dataset.item(item);
    let out = ExplainOutput {
        user: user_id,
        item: item_info.id.clone(),
        title: item_info.title.clone(),
        ranker,
        models,
    };
    if ctx.json {
        return print_json(&out);
    }
    println!("{} → {} ({})", out.user, out.title, out.item);
    for (name, e) in &out.models {
        println!("\n{name}: {}", e.text);
        println!(
            "  {:.0} ms ({:.0} ms to first token), {} tokens, {:.1} tokens/s, {:.1} MB of weights",
            e.latency_ms,
            e.ttft_ms,
            e.new_tokens,
            e.tokens_per_s,
            e.param_bytes as f64 / 1e6
        );
        let g = &e.grounding;
        println!("  grounded: {:?}  item only: {:?}  invented: {:?}", g.grounded, g.item_only, g.invented);
    }
    Ok(())
}

/// How the models load: `--device` or the configured one.
fn engine_options(ctx: &Context, args: &ExplainArgs) -> Result<EngineOptions> {
    Ok(EngineOptions {
        device: parse_device(args.device.as_deref().unwrap_or(&ctx.settings.models.device))?,
        ..EngineOptions::default()
    })
}

/// The configured decoding with `--beams` and `--max-new-tokens` applied.
fn overrides(ctx: &Context, args: &ExplainArgs) -> GenerationOverrides {
    let mut overrides = decoding_overrides(&ctx.settings.decoding);
    overrides.num_beams = args.beams.or(overrides.num_beams);
    overrides.max_new_tokens = args.max_new_tokens.or(overrides.max_new_tokens);
    overrides
}

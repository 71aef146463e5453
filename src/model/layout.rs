//! A checkpoint's tensors checked against its config.json before a model is built: every tensor
//! the config implies must be in the weight files with the shape the config implies (one error
//! lists all that are missing or mis-shaped); a layer beyond the configured depth means the config
//! is wrong, an error naming the tensors and the config key; other tensors the config does not use
//! are reported in one warning, as transformers reports unexpected keys.
//!
//! It also settles what transformers 5 settles from the weights rather than the config: a tied
//! model's `lm_head.weight`, when the file has one that differs from the embedding, is the LM
//! head (transformers 5 writes `tie_word_embeddings: true` for every T5, untied ones included).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context, Result};
use candle_core::{DType, Tensor};

use super::bart::BartConfig;
use super::checkpoint::{Checkpoint, WeightFiles};
use super::t5::T5Config;
use super::Arch;

/// The tensors of a checkpoint's weight files: names and shapes, and their values on demand.
pub struct FileTensors {
    shapes: BTreeMap<String, Vec<usize>>,
    source: Source,
}

enum Source {
    Safetensors(super::mapped::MappedSafetensors),
    Pytorch(Vec<candle_core::pickle::PthTensors>),
}

impl FileTensors {
    /// Reads the headers of the weight files (no tensor data).
    pub fn open(weights: &WeightFiles) -> Result<FileTensors> {
        match weights {
            WeightFiles::Safetensors(files) => {
                let st = super::mapped::MappedSafetensors::open(files)?;
                let shapes = st.shapes().map(|(k, shape)| (k.to_string(), shape.to_vec())).collect();
                Ok(FileTensors { shapes, source: Source::Safetensors(st) })
            }
            WeightFiles::Pytorch(files) => {
                let mut shapes = BTreeMap::new();
                let mut pth = Vec::new();
                for f in files {
                    let t = candle_core::pickle::PthTensors::new(f, None)
                        .with_context(|| format!("cannot read PyTorch weights {}", f.display()))?;
                    shapes.extend(
                        t.tensor_infos().iter().map(|(k, i)| (k.clone(), i.layout.shape().dims().to_vec())),
                    );
                    pth.push(t);
                }
                Ok(FileTensors { shapes, source: Source::Pytorch(pth) })
            }
            WeightFiles::Gguf(path) => bail!(
                "{}: a quantized checkpoint is checked against its config when `prism quantize` writes it",
                path.display()
            ),
        }
    }

    pub fn shapes(&self) -> &BTreeMap<String, Vec<usize>> {
        &self.shapes
    }

    fn contains(&self, name: &str) -> bool {
        self.shapes.contains_key(name)
    }

    /// Whether two tensors hold the same values. Safetensors are compared as the mapped bytes
    /// (no copy: an untied head of a large model would otherwise be read twice into memory).
    fn equal(&self, a: &str, b: &str) -> Result<bool> {
        match &self.source {
            Source::Safetensors(st) => Ok(st.same_bytes(a, b)?),
            Source::Pytorch(files) => {
                let load = |name: &str| -> Result<Tensor> {
                    for f in files {
                        if let Some(t) = f.get(name)? {
                            return Ok(t.to_dtype(DType::F32)?);
                        }
                    }
                    bail!("tensor {name} is not in the weight files")
                };
                let (a, b) = (load(a)?, load(b)?);
                Ok(a.dims() == b.dims() && (a - b)?.abs()?.max_all()?.to_scalar::<f32>()? == 0.0)
            }
        }
    }
}

/// What the check found that loading needs to know.
#[derive(Debug, Default)]
pub struct Checked {
    /// Tensors the config does not use, for one warning (empty: nothing to say).
    pub unused: Vec<String>,
    /// The file's `lm_head.weight` differs from the embedding: the LM head is untied whatever
    /// `tie_word_embeddings` says (transformers 5's rule).
    pub untied_lm_head: bool,
}

impl Checked {
    /// The one warning line about unused tensors, if there are any.
    pub fn warning(&self, weights: &str) -> Option<String> {
        (!self.unused.is_empty()).then(|| {
            format!(
                "{weights}: {} tensor(s) that config.json does not use are ignored: {}",
                self.unused.len(),
                self.unused.join(", ")
            )
        })
    }

    /// The T5 config to build with: an untied head in the file turns the tie flag off, keeping
    /// the decoder-output scaling the config asked for.
    pub fn t5_config(&self, mut cfg: T5Config) -> T5Config {
        if self.untied_lm_head && cfg.tie_word_embeddings {
            cfg.scale_decoder_outputs = Some(cfg.scales_decoder_outputs());
            cfg.tie_word_embeddings = false;
        }
        cfg
    }
}

/// One tensor the config implies: its key, shape and which config keys give the shape.
struct Expected {
    name: String,
    shape: Vec<usize>,
    dims: &'static str,
}

/// Checks `ckpt`'s weight files against its config.json (see the module doc).
pub fn check(ckpt: &Checkpoint) -> Result<Checked> {
    let file = FileTensors::open(&ckpt.weights)?;
    let label = ckpt.weights_label();
    let plan = match ckpt.arch {
        Arch::T5 => t5_plan(&ckpt.config::<T5Config>()?, &file)?,
        Arch::Bart => bart_plan(&ckpt.config::<BartConfig>()?, &file)?,
    };
    let mut problems = Vec::new();
    let mut missing_by_layer: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for e in &plan.expected {
        let layer = layer_prefix(&e.name);
        if let Some(prefix) = &layer {
            missing_by_layer.entry(prefix.clone()).or_default().1 += 1;
        }
        match file.shapes.get(&e.name) {
            None => {
                if let Some(prefix) = layer {
                    missing_by_layer.entry(prefix).or_default().0 += 1;
                }
            }
            Some(shape) if shape != &e.shape => problems
                .push(format!("{} is {shape:?}, config.json implies {:?} ({})", e.name, e.shape, e.dims)),
            Some(_) => {}
        }
    }
    // A layer missing whole is one line; a layer missing some tensors lists them.
    let mut missing = Vec::new();
    for e in plan.expected.iter().filter(|e| !file.contains(&e.name)) {
        match layer_prefix(&e.name).and_then(|p| missing_by_layer.get(&p).map(|c| (p, *c))) {
            Some((prefix, (gone, all))) if gone == all && all > 1 => {
                if missing.last() != Some(&format!("{prefix}* (all {all} tensors)")) {
                    missing.push(format!("{prefix}* (all {all} tensors)"));
                }
            }
            _ => missing.push(format!("{} {:?} ({})", e.name, e.shape, e.dims)),
        }
    }
    let expected: BTreeSet<&str> = plan.expected.iter().map(|e| e.name.as_str()).collect();
    let mut deeper: BTreeMap<&'static str, (usize, BTreeSet<String>, usize)> = BTreeMap::new();
    let mut unused = Vec::new();
    for name in file.shapes.keys().filter(|k| !expected.contains(k.as_str())) {
        if plan.tolerated.iter().any(|t| t == name) {
            continue;
        }
        match plan.stacks.iter().find_map(|s| s.layer_of(name).map(|i| (s, i))) {
            Some((stack, index)) if index >= stack.depth => {
                let entry = deeper.entry(stack.key).or_insert((stack.depth, BTreeSet::new(), 0));
                entry.1.insert(format!("{}{index}.*", stack.prefix));
                entry.2 += 1;
            }
            _ => unused.push(name.clone()),
        }
    }

    let mut sections = Vec::new();
    if !missing.is_empty() {
        sections.push(format!("missing: {}", missing.join("\n           ")));
    }
    if !problems.is_empty() {
        sections.push(format!("wrong shape: {}", problems.join("\n               ")));
    }
    for (key, (depth, layers, count)) in &deeper {
        let layers: Vec<&str> = layers.iter().map(String::as_str).collect();
        sections.push(format!(
            "config.json says {key} = {depth}, but the weights hold {count} tensors of deeper layers \
             ({}): the config is wrong for these weights",
            layers.join(", ")
        ));
    }
    if !sections.is_empty() {
        bail!("{label} does not match {}/config.json:\n  {}", ckpt.dir.display(), sections.join("\n  "));
    }

    let untied_lm_head = match &plan.tied_head {
        Some(embedding) if file.contains("lm_head.weight") => !file.equal("lm_head.weight", embedding)?,
        _ => false,
    };
    if untied_lm_head && ckpt.arch == Arch::Bart {
        bail!(
            "{label}: lm_head.weight differs from the embedding while config.json says \
             tie_word_embeddings = true; transformers would use it as an untied LM head, which \
             this engine's BART does not implement"
        );
    }
    Ok(Checked { unused, untied_lm_head })
}

/// A stack's layers as the file names them, and how deep the config says it is.
struct Stack {
    /// e.g. `encoder.block.` or `model.decoder.layers.`
    prefix: String,
    depth: usize,
    /// The config key that sets `depth`.
    key: &'static str,
}

impl Stack {
    fn layer_of(&self, name: &str) -> Option<usize> {
        name.strip_prefix(&self.prefix)?.split('.').next()?.parse().ok()
    }
}

struct Plan {
    expected: Vec<Expected>,
    /// Keys transformers knows and skips: tied copies of the embedding and the like.
    tolerated: Vec<String>,
    stacks: Vec<Stack>,
    /// The embedding key, when config.json ties the LM head to it.
    tied_head: Option<String>,
}

/// `encoder.block.3.` of `encoder.block.3.layer.0.SelfAttention.q.weight` (also for `layers.N.`).
fn layer_prefix(name: &str) -> Option<String> {
    let parts: Vec<&str> = name.split('.').collect();
    let at = parts.iter().position(|p| *p == "block" || *p == "layers")?;
    parts.get(at + 1)?.parse::<usize>().ok()?;
    Some(format!("{}.", parts[..at + 2].join(".")))
}

fn t5_plan(cfg: &T5Config, file: &FileTensors) -> Result<Plan> {
    let (gated, _) = cfg.feed_forward().map_err(|e| anyhow::anyhow!("config.json: {e}"))?;
    let (v, d, inner, ff, buckets, heads) = (
        cfg.vocab_size,
        cfg.d_model,
        cfg.num_heads * cfg.d_kv,
        cfg.d_ff,
        cfg.relative_attention_num_buckets,
        cfg.num_heads,
    );
    let embedding = if !file.contains("shared.weight") && file.contains("encoder.embed_tokens.weight") {
        "encoder.embed_tokens.weight"
    } else {
        "shared.weight"
    };
    let mut expected =
        vec![Expected { name: embedding.into(), shape: vec![v, d], dims: "vocab_size, d_model" }];
    let mut push =
        |name: String, shape: Vec<usize>, dims: &'static str| expected.push(Expected { name, shape, dims });
    let decoder_key = if cfg.num_decoder_layers.is_some() { "num_decoder_layers" } else { "num_layers" };
    let stacks = [("encoder", cfg.num_layers, "num_layers"), ("decoder", cfg.decoder_layers(), decoder_key)];
    for (stack, depth, _) in stacks {
        push(
            format!("{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
            vec![buckets, heads],
            "relative_attention_num_buckets, num_heads",
        );
        push(format!("{stack}.final_layer_norm.weight"), vec![d], "d_model");
        for i in 0..depth {
            let attentions: &[(usize, &str)] = if stack == "decoder" {
                &[(0, "SelfAttention"), (1, "EncDecAttention")]
            } else {
                &[(0, "SelfAttention")]
            };
            for (sub, attn) in attentions {
                let p = format!("{stack}.block.{i}.layer.{sub}");
                for proj in ["q", "k", "v"] {
                    push(format!("{p}.{attn}.{proj}.weight"), vec![inner, d], "num_heads * d_kv, d_model");
                }
                push(format!("{p}.{attn}.o.weight"), vec![d, inner], "d_model, num_heads * d_kv");
                push(format!("{p}.layer_norm.weight"), vec![d], "d_model");
            }
            let p = format!("{stack}.block.{i}.layer.{}", attentions.len());
            let wi: &[&str] = if gated { &["wi_0", "wi_1"] } else { &["wi"] };
            for w in wi {
                push(format!("{p}.DenseReluDense.{w}.weight"), vec![ff, d], "d_ff, d_model");
            }
            push(format!("{p}.DenseReluDense.wo.weight"), vec![d, ff], "d_model, d_ff");
            push(format!("{p}.layer_norm.weight"), vec![d], "d_model");
        }
    }
    if !cfg.tie_word_embeddings {
        push("lm_head.weight".into(), vec![v, d], "vocab_size, d_model");
    }
    let mut tolerated: Vec<String> =
        ["shared.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight"]
            .into_iter()
            .map(String::from)
            .collect();
    // transformers' `_keys_to_ignore_on_load_unexpected` for T5.
    tolerated.push("decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight".into());
    if cfg.tie_word_embeddings {
        tolerated.push("lm_head.weight".into());
    }
    Ok(Plan {
        expected,
        tolerated,
        stacks: stacks
            .iter()
            .map(|(s, depth, key)| Stack { prefix: format!("{s}.block."), depth: *depth, key })
            .collect(),
        tied_head: cfg.tie_word_embeddings.then(|| embedding.to_string()),
    })
}

fn bart_plan(cfg: &BartConfig, file: &FileTensors) -> Result<Plan> {
    // A bare `BartModel` checkpoint (facebook/bart-base) has no `model.` prefix.
    let p =
        if !file.contains("model.shared.weight") && file.contains("shared.weight") { "" } else { "model." };
    let (v, d) = (cfg.vocab_size, cfg.d_model);
    let embedding = if !file.contains(&format!("{p}shared.weight"))
        && file.contains(&format!("{p}encoder.embed_tokens.weight"))
    {
        format!("{p}encoder.embed_tokens.weight")
    } else {
        format!("{p}shared.weight")
    };
    let mut expected =
        vec![Expected { name: embedding.clone(), shape: vec![v, d], dims: "vocab_size, d_model" }];
    let mut push =
        |name: String, shape: Vec<usize>, dims: &'static str| expected.push(Expected { name, shape, dims });
    let norm = |push: &mut dyn FnMut(String, Vec<usize>, &'static str), name: String| {
        push(format!("{name}.weight"), vec![d], "d_model");
        push(format!("{name}.bias"), vec![d], "d_model");
    };
    let stacks = [
        ("encoder", cfg.encoder_layers, cfg.encoder_ffn_dim, "encoder_layers", "encoder_ffn_dim"),
        ("decoder", cfg.decoder_layers, cfg.decoder_ffn_dim, "decoder_layers", "decoder_ffn_dim"),
    ];
    for (stack, depth, ffn, _, _) in stacks {
        let s = format!("{p}{stack}");
        push(
            format!("{s}.embed_positions.weight"),
            vec![cfg.max_position_embeddings + 2, d],
            "max_position_embeddings + 2, d_model",
        );
        norm(&mut push, format!("{s}.layernorm_embedding"));
        for i in 0..depth {
            let l = format!("{s}.layers.{i}");
            let attentions: &[&str] =
                if stack == "decoder" { &["self_attn", "encoder_attn"] } else { &["self_attn"] };
            for attn in attentions {
                for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                    push(format!("{l}.{attn}.{proj}.weight"), vec![d, d], "d_model, d_model");
                    push(format!("{l}.{attn}.{proj}.bias"), vec![d], "d_model");
                }
                norm(&mut push, format!("{l}.{attn}_layer_norm"));
            }
            let dims =
                if stack == "decoder" { "decoder_ffn_dim, d_model" } else { "encoder_ffn_dim, d_model" };
            let dims_t =
                if stack == "decoder" { "d_model, decoder_ffn_dim" } else { "d_model, encoder_ffn_dim" };
            push(format!("{l}.fc1.weight"), vec![ffn, d], dims);
            push(
                format!("{l}.fc1.bias"),
                vec![ffn],
                if stack == "decoder" { "decoder_ffn_dim" } else { "encoder_ffn_dim" },
            );
            push(format!("{l}.fc2.weight"), vec![d, ffn], dims_t);
            push(format!("{l}.fc2.bias"), vec![d], "d_model");
            norm(&mut push, format!("{l}.final_layer_norm"));
        }
    }
    if file.contains("final_logits_bias") {
        push("final_logits_bias".into(), vec![1, v], "1, vocab_size");
    }
    let tolerated = [
        format!("{p}shared.weight"),
        format!("{p}encoder.embed_tokens.weight"),
        format!("{p}decoder.embed_tokens.weight"),
        "lm_head.weight".to_string(),
    ]
    .into();
    Ok(Plan {
        expected,
        tolerated,
        stacks: stacks
            .iter()
            .map(|(s, depth, _, key, _)| Stack { prefix: format!("{p}{s}.layers."), depth: *depth, key })
            .collect(),
        tied_head: Some(embedding),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_prefixes() {
        assert_eq!(
            layer_prefix("encoder.block.3.layer.0.SelfAttention.q.weight").as_deref(),
            Some("encoder.block.3.")
        );
        assert_eq!(
            layer_prefix("model.decoder.layers.11.fc1.bias").as_deref(),
            Some("model.decoder.layers.11.")
        );
        assert_eq!(layer_prefix("shared.weight"), None);
    }
}

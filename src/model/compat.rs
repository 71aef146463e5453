//! config.json keys that change what a checkpoint computes, read by neither `T5Config` nor
//! `BartConfig`: a value the engine does not implement is refused, naming the key and the value,
//! so a checkpoint never silently computes something other than what its config says.
//!
//! The keys the typed configs do read (and so implement) are listed with the audit of
//! transformers 4.57 and 5.x in docs/CHECKPOINTS.md; this table is the rest of that audit.

use anyhow::{bail, Result};
use serde_json::Value;

use super::Arch;

/// A config key and the values of it that the engine computes correctly.
struct Key {
    /// `None`: any architecture.
    arch: Option<Arch>,
    name: &'static str,
    accepts: fn(&Value) -> bool,
    meaning: &'static str,
}

fn is_false(v: &Value) -> bool {
    v == &Value::Bool(false)
}

fn is_true(v: &Value) -> bool {
    v == &Value::Bool(true)
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn never(_: &Value) -> bool {
    false
}

const KEYS: &[Key] = &[
    Key {
        arch: None,
        name: "quantization_config",
        accepts: never,
        meaning: "weights quantized by bitsandbytes, GPTQ, AWQ or the like (not supported; \
                  `prism quantize` makes quantized models of its own)",
    },
    Key {
        arch: None,
        name: "tie_encoder_decoder",
        accepts: is_false,
        meaning: "the decoder shares the encoder's weights (transformers 4.x), not supported",
    },
    Key {
        arch: None,
        name: "pruned_heads",
        accepts: is_empty,
        meaning: "attention heads removed from some layers, not supported",
    },
    // Flags of the fairseq-era BART configs (bart-large's config.json still carries them with the
    // values accepted here); other values describe mBART-like models.
    Key {
        arch: Some(Arch::Bart),
        name: "normalize_before",
        accepts: is_false,
        meaning: "pre-norm layers (mBART), not supported: BART is post-norm",
    },
    Key {
        arch: Some(Arch::Bart),
        name: "add_final_layer_norm",
        accepts: is_false,
        meaning: "a layer norm after the last layer of each stack (mBART), not supported",
    },
    Key {
        arch: Some(Arch::Bart),
        name: "add_bias_logits",
        accepts: is_false,
        meaning: "a learned bias on the logits besides final_logits_bias, not supported",
    },
    Key {
        arch: Some(Arch::Bart),
        name: "normalize_embedding",
        accepts: is_true,
        meaning: "no layernorm_embedding, not supported",
    },
    Key {
        arch: Some(Arch::Bart),
        name: "static_position_embeddings",
        accepts: is_false,
        meaning: "sinusoidal instead of learned positions, not supported",
    },
    Key {
        arch: Some(Arch::Bart),
        name: "extra_pos_embeddings",
        accepts: |v| v.as_u64() == Some(2),
        meaning: "a position offset other than BART's 2, not supported",
    },
];

/// Refuses a config.json whose keys ask for a computation the engine does not implement; the
/// error names the first such key, its value and what it means. Absent and `null` keys are fine.
pub fn check_config(arch: Arch, config: &Value) -> Result<()> {
    for key in KEYS.iter().filter(|k| k.arch.is_none_or(|a| a == arch)) {
        match config.get(key.name) {
            None | Some(Value::Null) => {}
            Some(value) if (key.accepts)(value) => {}
            Some(value) => bail!("config.json: {} = {value} means {}", key.name, key.meaning),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bart_large_flags_pass_and_mbart_flags_are_refused() {
        let bart_large = json!({"add_bias_logits": false, "add_final_layer_norm": false,
            "normalize_before": false, "normalize_embedding": true, "static_position_embeddings": false,
            "extra_pos_embeddings": 2, "pruned_heads": {}, "quantization_config": null});
        check_config(Arch::Bart, &bart_large).unwrap();
        for (key, value) in [
            ("normalize_before", json!(true)),
            ("add_bias_logits", json!(true)),
            ("extra_pos_embeddings", json!(0)),
            ("quantization_config", json!({"quant_method": "gptq"})),
        ] {
            let mut cfg = bart_large.clone();
            cfg[key] = value.clone();
            let err = check_config(Arch::Bart, &cfg).unwrap_err().to_string();
            assert!(err.contains(&format!("{key} = {value}")), "{err}");
        }
    }

    #[test]
    fn bart_only_keys_do_not_apply_to_t5() {
        check_config(Arch::T5, &json!({"normalize_before": true})).unwrap();
        let err = check_config(Arch::T5, &json!({"tie_encoder_decoder": true})).unwrap_err().to_string();
        assert!(err.contains("tie_encoder_decoder = true"), "{err}");
    }
}

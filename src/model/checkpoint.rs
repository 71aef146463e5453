//! Checkpoint IO in Hugging Face layout: reads `config.json`, `generation_config.json`,
//! `model.safetensors`, sharded `model.safetensors.index.json`, `pytorch_model.bin` (also
//! sharded) and `tokenizer.json`; writes `config.json`, `generation_config.json` and
//! `model.safetensors` (with the `{"format": "pt"}` metadata transformers expects) so our
//! checkpoints load in transformers unchanged. Local directories only: nothing is downloaded.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use super::mapped::MappedSafetensors;
use super::Arch;

/// A token id field that transformers allows to be one id or a list (`eos_token_id`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    One(u32),
    Many(Vec<u32>),
}

impl TokenIds {
    pub fn first(&self) -> Option<u32> {
        match self {
            TokenIds::One(id) => Some(*id),
            TokenIds::Many(ids) => ids.first().copied(),
        }
    }
}

/// The model-level decoding defaults of `generation_config.json` (transformers moved
/// `forced_bos_token_id` and friends there); other keys are kept as they are.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GenerationConfigFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bos_token_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoder_start_token_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eos_token_id: Option<TokenIds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_token_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced_bos_token_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced_eos_token_id: Option<TokenIds>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Where a checkpoint's weights are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WeightFiles {
    /// One or more safetensors files (several when sharded).
    Safetensors(Vec<PathBuf>),
    /// One or more PyTorch pickles (`pytorch_model.bin`, or its shards).
    Pytorch(Vec<PathBuf>),
    /// A quantized checkpoint written by `prism quantize` (`model.gguf`, see `docs/QUANTIZATION.md`).
    Gguf(PathBuf),
}

/// An opened checkpoint directory: its parsed config and where its weights are.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub dir: PathBuf,
    pub arch: Arch,
    /// `config.json` as parsed JSON; [`Checkpoint::config`] gives the typed form.
    pub config: serde_json::Value,
    pub generation: Option<GenerationConfigFile>,
    pub weights: WeightFiles,
}

/// Parses a JSON file into `T`; errors name the file, line, column and the field's path.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.inner();
        anyhow::anyhow!(
            "{}:{}:{}: field `{}`: {}",
            path.display(),
            inner.line(),
            inner.column(),
            e.path(),
            inner
        )
    })
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Parses `"f32"`, `"f16"`, `"bf16"` (and the PyTorch spellings) into a dtype.
pub fn parse_dtype(name: &str) -> Result<DType> {
    Ok(match name {
        "f32" | "float32" | "fp32" => DType::F32,
        "f16" | "float16" | "fp16" | "half" => DType::F16,
        "bf16" | "bfloat16" => DType::BF16,
        other => bail!("unknown dtype {other:?}; use one of f32, f16, bf16"),
    })
}

impl Checkpoint {
    /// Opens `dir`: reads `config.json` (and `generation_config.json` when present), detects the
    /// architecture and finds the weight files.
    pub fn open(dir: &Path) -> Result<Checkpoint> {
        if !dir.is_dir() {
            bail!("checkpoint directory {} does not exist", dir.display());
        }
        let config_path = dir.join("config.json");
        if !config_path.is_file() {
            bail!(
                "{} has no config.json; a checkpoint directory in Hugging Face layout needs one",
                dir.display()
            );
        }
        let config: serde_json::Value = read_json(&config_path)?;
        let arch = detect_arch(&config).with_context(|| format!("{}", config_path.display()))?;
        let gen_path = dir.join("generation_config.json");
        let generation = if gen_path.is_file() { Some(read_json(&gen_path)?) } else { None };
        let weights = find_weights(dir)?;
        Ok(Checkpoint { dir: dir.to_path_buf(), arch, config, generation, weights })
    }

    /// The typed config (`T5Config` or `BartConfig`); errors name `config.json` and the field.
    pub fn config<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        read_json(&self.dir.join("config.json"))
    }

    /// A `VarBuilder` over the weights, converting to `dtype` on `device` as tensors are fetched:
    /// safetensors are read from memory maps tensor by tensor ([`MappedSafetensors`]), so loading
    /// holds the model and at most one tensor's transient, never the file's pages beside it.
    pub fn var_builder(&self, dtype: DType, device: &Device) -> Result<VarBuilder<'static>> {
        match &self.weights {
            WeightFiles::Safetensors(_) => match self.mapped()? {
                Some(mapped) => Ok(mapped.var_builder(dtype, device)),
                None => unreachable!("safetensors weights are mapped"),
            },
            WeightFiles::Gguf(path) => {
                bail!(
                    "{} is quantized: it loads through `load::load_model`, not a VarBuilder",
                    path.display()
                )
            }
            WeightFiles::Pytorch(files) => {
                let mut all = HashMap::new();
                for f in files {
                    let tensors = candle_core::pickle::read_all(f)
                        .with_context(|| format!("cannot read PyTorch weights {}", f.display()))?;
                    all.extend(tensors);
                }
                Ok(VarBuilder::from_tensors(all, dtype, device))
            }
        }
    }

    /// The safetensors weight files memory-mapped, their headers read (`None` for other formats).
    pub fn mapped(&self) -> Result<Option<MappedSafetensors>> {
        let WeightFiles::Safetensors(files) = &self.weights else { return Ok(None) };
        for f in files {
            check_safetensors_header(f)?;
        }
        let mapped = MappedSafetensors::open(files)?;
        let index = self.dir.join("model.safetensors.index.json");
        if !self.dir.join("model.safetensors").is_file() && index.is_file() {
            check_index(&index, &mapped)?;
        }
        Ok(Some(mapped))
    }

    /// The `tokenizer.json` next to the weights.
    pub fn tokenizer(&self) -> Result<tokenizers::Tokenizer> {
        load_tokenizer(&self.dir)
    }

    /// A human-readable name of the weight files, for error messages.
    pub fn weights_label(&self) -> String {
        let files = match &self.weights {
            WeightFiles::Safetensors(f) | WeightFiles::Pytorch(f) => f,
            WeightFiles::Gguf(path) => return path.display().to_string(),
        };
        match files.as_slice() {
            [one] => one.display().to_string(),
            many => format!("{} ({} shards)", self.dir.display(), many.len()),
        }
    }
}

/// Loads `DIR/tokenizer.json`. Its JSON syntax is checked first: tokenizers 0.23 panics (an
/// `expect` in its decoder deserializer) on a syntax error inside that section,
/// where it should return an error.
pub fn load_tokenizer(dir: &Path) -> Result<tokenizers::Tokenizer> {
    let path = dir.join("tokenizer.json");
    let failed = |e: &dyn std::fmt::Display| anyhow::anyhow!("cannot load tokenizer {}: {e}", path.display());
    let text = std::fs::read_to_string(&path).map_err(|e| failed(&e))?;
    serde_json::from_str::<serde::de::IgnoredAny>(&text).map_err(|e| failed(&e))?;
    text.parse::<tokenizers::Tokenizer>().map_err(|e| failed(&e))
}

pub fn detect_arch(config: &serde_json::Value) -> Result<Arch> {
    let model_type = config.get("model_type").and_then(|v| v.as_str());
    match model_type {
        Some("t5") => Ok(Arch::T5),
        Some("bart") => Ok(Arch::Bart),
        Some(other) => bail!("field `model_type`: {other:?} is not supported (supported: \"t5\", \"bart\")"),
        None => {
            let archs = config.get("architectures").and_then(|a| a.as_array()).into_iter().flatten();
            for a in archs.filter_map(|a| a.as_str()) {
                if a.starts_with("T5") {
                    return Ok(Arch::T5);
                }
                if a.starts_with("Bart") {
                    return Ok(Arch::Bart);
                }
            }
            bail!("field `model_type` is missing and `architectures` names no T5 or BART class")
        }
    }
}

/// The weights file of a quantized checkpoint.
pub const QUANTIZED_WEIGHTS: &str = "model.gguf";

/// Finds weight files in transformers' order of preference (a quantized `model.gguf` after the
/// safetensors).
pub fn find_weights(dir: &Path) -> Result<WeightFiles> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(WeightFiles::Safetensors(vec![single]));
    }
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        return Ok(WeightFiles::Safetensors(shards(dir, &index)?));
    }
    let gguf = dir.join(QUANTIZED_WEIGHTS);
    if gguf.is_file() {
        return Ok(WeightFiles::Gguf(gguf));
    }
    let bin = dir.join("pytorch_model.bin");
    if bin.is_file() {
        return Ok(WeightFiles::Pytorch(vec![bin]));
    }
    let bin_index = dir.join("pytorch_model.bin.index.json");
    if bin_index.is_file() {
        return Ok(WeightFiles::Pytorch(shards(dir, &bin_index)?));
    }
    bail!(
        "{} holds no weights: expected model.safetensors, model.safetensors.index.json, \
         model.gguf, pytorch_model.bin or pytorch_model.bin.index.json",
        dir.display()
    )
}

#[derive(Deserialize)]
struct ShardIndex {
    weight_map: HashMap<String, String>,
}

fn shards(dir: &Path, index: &Path) -> Result<Vec<PathBuf>> {
    let parsed: ShardIndex = read_json(index)?;
    let names: BTreeSet<&String> = parsed.weight_map.values().collect();
    if names.is_empty() {
        bail!("{}: field `weight_map` is empty", index.display());
    }
    names
        .into_iter()
        .map(|name| {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                bail!("{}: shard {name} listed in `weight_map` does not exist", index.display())
            }
        })
        .collect()
}

/// Every tensor `index`'s `weight_map` lists must be in the shard it names (transformers reads
/// each tensor from that shard; a stale index means shards from different saves).
fn check_index(index: &Path, mapped: &MappedSafetensors) -> Result<()> {
    let parsed: ShardIndex = read_json(index)?;
    let dir = index.parent().unwrap_or(Path::new("."));
    for (key, file) in &parsed.weight_map {
        match mapped.file_of(key) {
            Some(found) if found == dir.join(file) => {}
            Some(found) => bail!(
                "{}: field `weight_map`: {key} is listed in {file}, but {} holds it",
                index.display(),
                found.display()
            ),
            None => bail!(
                "{}: field `weight_map`: {key} is listed in {file}, but no shard holds it",
                index.display()
            ),
        }
    }
    Ok(())
}

/// Rejects a file that is not safetensors before it is mapped, with the file named.
fn check_safetensors_header(path: &Path) -> Result<()> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len).with_context(|| format!("{} is too short to be safetensors", path.display()))?;
    let header_len = u64::from_le_bytes(len);
    let file_len = f.metadata()?.len();
    if header_len == 0 || header_len > file_len.saturating_sub(8) {
        bail!(
            "{} is not a safetensors file (header length {header_len}, file length {file_len})",
            path.display()
        );
    }
    Ok(())
}

/// Writes `model.safetensors` with Hugging Face keys and the `{"format": "pt"}` metadata that
/// transformers checks for.
pub fn save_safetensors(tensors: &[(String, Tensor)], path: &Path) -> Result<()> {
    let contiguous: Vec<(String, Tensor)> =
        tensors.iter().map(|(k, t)| Ok((k.clone(), t.contiguous()?))).collect::<candle_core::Result<_>>()?;
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(contiguous.iter().map(|(k, t)| (k.as_str(), t)), Some(metadata), path)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Writes a full checkpoint directory: `config.json` (with `torch_dtype` set to the weights'
/// dtype), `generation_config.json`, `model.safetensors` and, when given, `tokenizer.json`.
pub fn save_checkpoint(
    dir: &Path,
    config: &serde_json::Value,
    generation: &GenerationConfigFile,
    tensors: &[(String, Tensor)],
    tokenizer: Option<&tokenizers::Tokenizer>,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut config = config.clone();
    if let (Some(obj), Some((_, t))) = (config.as_object_mut(), tensors.first()) {
        let name = match t.dtype() {
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            _ => "float32",
        };
        obj.insert("torch_dtype".into(), name.into());
        obj.remove("dtype");
    }
    write_json(&dir.join("config.json"), &config)?;
    write_json(&dir.join("generation_config.json"), generation)?;
    save_safetensors(tensors, &dir.join("model.safetensors"))?;
    if let Some(tok) = tokenizer {
        let path = dir.join("tokenizer.json");
        tok.save(&path, true).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_ids_accept_one_or_many() {
        let one: TokenIds = serde_json::from_str("1").unwrap();
        let many: TokenIds = serde_json::from_str("[2, 3]").unwrap();
        assert_eq!((one.first(), many.first()), (Some(1), Some(2)));
    }

    #[test]
    fn arch_from_model_type_or_architectures() {
        let t5 = serde_json::json!({"model_type": "t5"});
        let bart = serde_json::json!({"architectures": ["BartForConditionalGeneration"]});
        assert_eq!(detect_arch(&t5).unwrap(), Arch::T5);
        assert_eq!(detect_arch(&bart).unwrap(), Arch::Bart);
        let err = detect_arch(&serde_json::json!({"model_type": "gpt2"})).unwrap_err().to_string();
        assert!(err.contains("model_type") && err.contains("gpt2"), "{err}");
    }

    #[test]
    fn json_errors_name_file_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, "{\n  \"model_type\": \"t5\",\n  \"d_model\": \"wide\"\n}\n").unwrap();
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Config {
            d_model: usize,
        }
        let err = read_json::<Config>(&path).unwrap_err().to_string();
        assert!(err.contains("config.json:3:") && err.contains("d_model"), "{err}");
    }

    #[test]
    fn missing_weights_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), r#"{"model_type": "t5"}"#).unwrap();
        let err = Checkpoint::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("holds no weights"), "{err}");
    }

    #[test]
    fn a_shard_index_naming_a_tensor_its_shard_lacks_is_an_error() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf/bart-sharded");
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(&fixture).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
        let ckpt = Checkpoint::open(dir.path()).unwrap();
        assert!(ckpt.mapped().unwrap().is_some(), "the fixture's index matches its shards");

        let index = dir.path().join("model.safetensors.index.json");
        let mut parsed: serde_json::Value = read_json(&index).unwrap();
        parsed["weight_map"]["model.decoder.extra.weight"] = "model-00001-of-00005.safetensors".into();
        std::fs::write(&index, parsed.to_string()).unwrap();
        let err = Checkpoint::open(dir.path()).unwrap().mapped().err().unwrap().to_string();
        assert!(
            err.contains("model.safetensors.index.json")
                && err.contains("model.decoder.extra.weight")
                && err.contains("no shard holds it"),
            "{err}"
        );
    }

    #[test]
    fn dtype_names() {
        assert_eq!(parse_dtype("bf16").unwrap(), DType::BF16);
        assert!(parse_dtype("int8").is_err());
    }
}

//! The memory budget of a generation: an estimate of its peak ([`estimate`]: weights, encoder
//! activations, attention scores as the engine computes them (in query chunks past
//! [`super::attention::INFERENCE_SCORE_ELEMENTS`]) and T5's position bias, cross- and self-attention key/value caches for every beam,
//! a decoder step's logits), the memory the process may still take ([`available`]: the smallest of
//! the kernel's `MemAvailable`, what the cgroup limit leaves, and what the address-space limit
//! `ulimit -v` leaves), and the check that refuses a generation whose estimate exceeds the budget
//! before it runs, instead of being killed half-way.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use super::attention::{query_chunk, INFERENCE_SCORE_ELEMENTS};
use super::int8_cache;
use super::layers::{FEED_FORWARD_CHUNK_ELEMENTS, FEED_FORWARD_MIN_ROWS};
use super::{Arch, ModelInfo};

/// The sizes of a model that decide its activation memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dims {
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub d_model: usize,
    pub encoder_heads: usize,
    pub decoder_heads: usize,
    /// Width of one attention head's keys and values.
    pub head_dim: usize,
    pub encoder_ffn: usize,
    pub decoder_ffn: usize,
    pub vocab_size: usize,
    /// Whether the encoder adds a relative position bias per head (T5), which is materialised as
    /// one `[batch, heads, input, input]` f32 tensor for the whole encoder.
    pub position_bias: bool,
}

impl Dims {
    /// Reads the sizes from a checkpoint's `config.json` (T5 or BART key names), falling back to
    /// what `info` knows (and the families' usual ratios) for keys a config leaves out.
    pub fn from_config(config: &Value, info: &ModelInfo) -> Dims {
        let get = |key: &str| config.get(key).and_then(Value::as_u64).map(|v| v as usize);
        let guess = Dims::guess(info);
        match info.arch {
            Arch::T5 => {
                let heads = get("num_heads").unwrap_or(guess.encoder_heads);
                let ffn = get("d_ff").unwrap_or(guess.encoder_ffn);
                Dims {
                    encoder_layers: get("num_layers").unwrap_or(guess.encoder_layers),
                    decoder_heads: heads,
                    encoder_heads: heads,
                    head_dim: get("d_kv").unwrap_or(guess.head_dim),
                    encoder_ffn: ffn,
                    decoder_ffn: ffn,
                    position_bias: true,
                    ..guess
                }
            }
            Arch::Bart => {
                let encoder_heads = get("encoder_attention_heads").unwrap_or(guess.encoder_heads);
                Dims {
                    encoder_layers: get("encoder_layers").unwrap_or(guess.encoder_layers),
                    encoder_heads,
                    decoder_heads: get("decoder_attention_heads").unwrap_or(encoder_heads),
                    head_dim: info.d_model / encoder_heads.max(1),
                    encoder_ffn: get("encoder_ffn_dim").unwrap_or(guess.encoder_ffn),
                    decoder_ffn: get("decoder_ffn_dim").unwrap_or(guess.decoder_ffn),
                    position_bias: false,
                    ..guess
                }
            }
        }
    }

    /// Sizes from [`ModelInfo`] alone: 64-wide heads and a feed-forward four times the model
    /// width, as in both families' published checkpoints.
    pub fn guess(info: &ModelInfo) -> Dims {
        let heads = (info.d_model / 64).max(1);
        Dims {
            encoder_layers: info.num_decoder_layers,
            decoder_layers: info.num_decoder_layers,
            d_model: info.d_model,
            encoder_heads: heads,
            decoder_heads: heads,
            head_dim: info.d_model / heads,
            encoder_ffn: 4 * info.d_model,
            decoder_ffn: 4 * info.d_model,
            vocab_size: info.vocab_size,
            position_bias: info.arch == Arch::T5,
        }
    }
}

/// What one generation needs at its peak, in bytes, by part.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Estimate {
    pub weights: u64,
    /// The encoder's output, kept for the whole decoding.
    pub encoder_output: u64,
    /// One encoder layer's transient activations: attention scores (scores, position bias or
    /// mask added, softmax) and the feed-forward's intermediate.
    pub encoder_layer: u64,
    /// Of which the attention score matrices of one query chunk ([`query_chunk`]): the scores,
    /// turned into their softmax in place, and the chunk's rows of the bias.
    pub attention_scores: u64,
    /// T5's encoder position bias by relative position (`[heads, 2 input - 1]` f32) plus the
    /// padding, alive through the whole encoder; each chunk's rows are written from it. 0 for BART.
    pub position_bias: u64,
    /// Cross-attention keys/values (one row per input) and self-attention keys/values (one row per
    /// beam, twice while beams are reordered) at the longest output.
    pub kv_cache: u64,
    /// One decoder step's transients: attention scores and the logits over the vocabulary for
    /// every beam, with their log-softmax and the beam scorer's copies.
    pub decoder_step: u64,
    pub total: u64,
}

/// The shape of one generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Workload {
    pub batch: usize,
    /// The longest input of the batch (the batch is padded to it).
    pub input_tokens: usize,
    pub beams: usize,
    pub max_new_tokens: usize,
}

/// Peak memory of generating `work` with a model of `dims` whose weights take `weight_bytes`,
/// activations `element_bytes` each, and the KV cache as much or, with `int8_kv_cache`, a byte
/// per element and an f32 scale per head vector. Attention scores are counted for one query chunk at a time,
/// as [`super::attention::Attention`] computes them.
pub fn estimate(
    dims: &Dims,
    weight_bytes: u64,
    element_bytes: u64,
    int8_kv_cache: bool,
    work: Workload,
) -> Estimate {
    let e = element_bytes;
    let (b, s) = (work.batch as u64, work.input_tokens as u64);
    let rows = b * work.beams.max(1) as u64;
    let t = work.max_new_tokens as u64 + 1;
    let d = dims.d_model as u64;
    let encoder_output = b * s * d * e;
    let heads = dims.encoder_heads as u64;
    // The scores (their softmax written over them) and the chunk's rows of the bias.
    let tokens = work.input_tokens;
    let chunk = query_chunk(INFERENCE_SCORE_ELEMENTS, work.batch, dims.encoder_heads, tokens, tokens) as u64;
    let attention_scores = b * heads * chunk * s * e + b * heads * chunk * s * 4;
    let position_bias = if dims.position_bias { heads * (2 * s) * 4 + b * s * 4 } else { 0 };
    // Residual, normed input, K, V, the chunks' outputs and their join; the gated feed-forward's
    // three intermediates over one chunk of rows.
    let ffn = dims.encoder_ffn as u64;
    let ffn_rows =
        (b * s).min(((FEED_FORWARD_CHUNK_ELEMENTS as u64) / ffn.max(1)).max(FEED_FORWARD_MIN_ROWS as u64));
    let encoder_layer = attention_scores + 6 * b * s * d * e + 3 * ffn_rows * ffn * e;
    let kv_width = (dims.decoder_heads * dims.head_dim) as u64;
    let layers = dims.decoder_layers as u64;
    let kv_bytes = |elements: u64| {
        if int8_kv_cache {
            int8_cache::bytes_for(elements, dims.head_dim as u64)
        } else {
            elements * e
        }
    };
    let cross = kv_bytes(layers * 2 * b * s * kv_width);
    let own = kv_bytes(layers * 2 * rows * t * kv_width);
    let kv_cache = cross + 2 * own;
    let step_scores = 3 * rows * dims.decoder_heads as u64 * (s + t) * e;
    // Logits in f32, log-softmax, processed scores, and the beam scorer's flattened candidates.
    let logits = 4 * rows * dims.vocab_size as u64 * 4;
    let decoder_step = step_scores + logits + 3 * rows * dims.decoder_ffn.max(dims.d_model) as u64 * e;
    let encoding = position_bias + encoder_layer;
    let total = weight_bytes + encoder_output + encoding.max(kv_cache + decoder_step);
    Estimate {
        weights: weight_bytes,
        encoder_output,
        encoder_layer,
        attention_scores,
        position_bias,
        kv_cache,
        decoder_step,
        total,
    }
}

/// The memory this process may still take and what limits it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Available {
    pub bytes: u64,
    /// Every limit read, e.g. `MemAvailable 10.1 GiB, cgroup 3.2 GiB left`.
    pub sources: String,
}

/// The smallest of `MemAvailable`, the cgroup's limit minus its usage (v2 `memory.max` −
/// `memory.current`, v1 `memory.limit_in_bytes` − `memory.usage_in_bytes`) and the address-space
/// limit minus this process's virtual size. `None` where none of them can be read.
pub fn available() -> Option<Available> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let mut limits: Vec<(&str, u64)> = Vec::new();
    if let Some(kb) = read("/proc/meminfo").as_deref().and_then(|t| kib_field(t, "MemAvailable:")) {
        limits.push(("MemAvailable", kb * 1024));
    }
    if let Some(left) = read("/proc/self/cgroup").and_then(|c| cgroup_left(&c, Path::new("/sys/fs/cgroup"))) {
        limits.push(("cgroup limit", left));
    }
    if let Some(left) = address_space_left() {
        limits.push(("address-space limit (ulimit -v)", left));
    }
    let bytes = limits.iter().map(|&(_, b)| b).min()?;
    let mut sources = String::new();
    for (i, (name, b)) in limits.iter().enumerate() {
        let _ = write!(sources, "{}{name} {} left", if i == 0 { "" } else { ", " }, show_bytes(*b));
    }
    Some(Available { bytes, sources })
}

fn kib_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// What this process's memory cgroup leaves, from the text of `/proc/self/cgroup` and the cgroup
/// file systems mounted under `root`.
pub fn cgroup_left(proc_cgroup: &str, root: &Path) -> Option<u64> {
    let read_u64 = |p: &Path| std::fs::read_to_string(p).ok()?.trim().parse::<u64>().ok();
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let relative = path.trim_start_matches('/');
        if controllers.is_empty() {
            // v2: one unified hierarchy; `max` means no limit.
            let dir = root.join(relative);
            let max = read_u64(&dir.join("memory.max"))?;
            let current = read_u64(&dir.join("memory.current")).unwrap_or(0);
            return Some(max.saturating_sub(current));
        }
        if controllers.split(',').any(|c| c == "memory") {
            let dir = root.join("memory").join(relative);
            let limit = read_u64(&dir.join("memory.limit_in_bytes"))?;
            // v1 writes a page-rounded i64::MAX for "no limit".
            if limit >= 1 << 60 {
                return None;
            }
            let usage = read_u64(&dir.join("memory.usage_in_bytes")).unwrap_or(0);
            return Some(limit.saturating_sub(usage));
        }
    }
    None
}

fn address_space_left() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes one rlimit struct through a valid pointer.
        if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) } != 0
            || limit.rlim_cur == libc::RLIM_INFINITY
        {
            return None;
        }
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let size = kib_field(&status, "VmSize:")? * 1024;
        Some(limit.rlim_cur.saturating_sub(size))
    }
    #[cfg(not(unix))]
    None
}

/// `4G`, `512M`, `1.5GiB`, `800000000` (bytes); K, M, G, T are powers of 1024.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale: u64 = match unit.trim().to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => {
            return Err(format!("{text:?} is not a size: use bytes or a number with K, M, G or T (e.g. 4G)"))
        }
    };
    let value: f64 = number.parse().map_err(|_| format!("{text:?} is not a size (e.g. 4G, 512M)"))?;
    let bytes = value * scale as f64;
    if !bytes.is_finite() || bytes < (1 << 20) as f64 || bytes > (1u64 << 50) as f64 {
        return Err(format!("{text:?}: a memory budget must be between 1M and 1024T"));
    }
    Ok(bytes as u64)
}

/// `models.max_memory` / `--max-memory`: `available` (`None`: ask the OS) or a size.
pub fn parse_bytes_setting(text: &str) -> Result<Option<u64>, String> {
    if text.trim() == "available" {
        return Ok(None);
    }
    parse_bytes(text).map(Some)
}

pub fn show_bytes(bytes: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    if bytes as f64 >= GIB {
        format!("{:.2} GiB", bytes as f64 / GIB)
    } else {
        format!("{:.1} MiB", bytes as f64 / MIB)
    }
}

/// `Err` with a message saying what the generation needs, by part, and what limits it, when
/// `estimate` does not fit `budget` (an explicit budget), or, without one, what is available now
/// (weights already loaded count as taken).
pub fn check(estimate: &Estimate, work: Workload, budget: Option<u64>) -> Result<(), String> {
    let (limit, against, what) = match budget {
        Some(bytes) => {
            (bytes, estimate.total, format!("the memory budget (--max-memory) of {}", show_bytes(bytes)))
        }
        None => {
            let Some(free) = available() else { return Ok(()) };
            let what = format!("the {} still available ({})", show_bytes(free.bytes), free.sources);
            (free.bytes, estimate.total - estimate.weights, what)
        }
    };
    if against <= limit {
        return Ok(());
    }
    Err(format!(
        "this generation would need about {} ({} input tokens, {} beam(s), up to {} new tokens: weights {}, \
         encoder attention scores {}, position bias {}, other encoder activations {}, key/value caches {}, \
         decoder step {}), \
         more than {what}; shorten the input (--max-input-tokens), lower --beams or --max-new-tokens, \
         or raise --max-memory",
        show_bytes(against),
        work.input_tokens,
        work.beams,
        work.max_new_tokens,
        show_bytes(estimate.weights),
        show_bytes(estimate.attention_scores),
        show_bytes(estimate.position_bias),
        show_bytes(estimate.encoder_layer - estimate.attention_scores + estimate.encoder_output),
        show_bytes(estimate.kv_cache),
        show_bytes(estimate.decoder_step),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oracle_dims() -> Dims {
        Dims {
            encoder_layers: 4,
            decoder_layers: 4,
            d_model: 256,
            encoder_heads: 4,
            decoder_heads: 4,
            head_dim: 64,
            encoder_ffn: 512,
            decoder_ffn: 512,
            vocab_size: 3000,
            position_bias: true,
        }
    }

    #[test]
    fn chunked_attention_and_t5s_bias_by_rows_keep_the_encoder_linear_in_its_input() {
        let work = |s| Workload { batch: 1, input_tokens: s, beams: 5, max_new_tokens: 150 };
        let t5 = oracle_dims();
        let bart = Dims { position_bias: false, ..oracle_dims() };
        // The embedded Oracle's prompts: chunks of 51 queries, scores and the bias's rows.
        let small = estimate(&t5, 40 << 20, 4, false, work(320));
        assert_eq!(small.attention_scores, 2 * 4 * 51 * 320 * 4);
        assert!(small.total < 100 << 20, "{small:?}");
        // Long ones in query chunks of at most INFERENCE_SCORE_ELEMENTS scores.
        let (long, longer) = (
            estimate(&bart, 40 << 20, 4, false, work(7202)),
            estimate(&bart, 40 << 20, 4, false, work(14404)),
        );
        assert!(long.attention_scores <= 2 * (4 * 16 * 7202).max(INFERENCE_SCORE_ELEMENTS) as u64 * 4);
        // Chunks of MIN_QUERY_CHUNK queries against every key: linear in the input, not quadratic.
        let ratio = longer.attention_scores as f64 / long.attention_scores as f64;
        assert!((1.9..2.1).contains(&ratio), "chunk scores grow with the keys, not their square: {ratio}");
        assert_eq!(long.position_bias, 0);
        assert!(long.total < 300 << 20, "{long:?}");
        // T5's bias is kept by relative position and written a chunk at a time: linear too.
        let (t5_long, t5_longer) =
            (estimate(&t5, 40 << 20, 4, false, work(7202)), estimate(&t5, 40 << 20, 4, false, work(14404)));
        assert_eq!(t5_long.position_bias, 4 * 2 * 7202 * 4 + 7202 * 4);
        let growth = (t5_longer.total - t5_longer.weights) as f64 / (t5_long.total - t5_long.weights) as f64;
        assert!((1.7..2.1).contains(&growth), "{growth}");
        // Measured on the embedded Oracle, 7,201 input tokens, beam 5, 20 new tokens: a generation
        // peak of 82 MB, at the first decoder step (the cross-attention keys and values of 7,201
        // positions), against the 0.90 GB the encoder took while T5's bias was one whole tensor
        // (1.70 GB while it was built from a lookup, 2.5 GB before the attention was chunked).
        let generation = t5_long.total - t5_long.weights;
        assert!((70e6..100e6).contains(&(generation as f64)), "{t5_long:?}");
    }

    #[test]
    fn an_eight_bit_cache_is_counted_at_a_byte_and_a_scale_per_head_vector() {
        let work = Workload { batch: 1, input_tokens: 200, beams: 5, max_new_tokens: 150 };
        let float = estimate(&oracle_dims(), 7 << 20, 4, false, work);
        let int8 = estimate(&oracle_dims(), 7 << 20, 4, true, work);
        // 64 bytes and a 4-byte scale per 64-wide head vector, against 256 bytes.
        assert_eq!(int8.kv_cache * 256, float.kv_cache * 68);
        assert!(int8.total < float.total);
    }

    #[test]
    fn an_explicit_budget_names_itself_and_the_parts() {
        let work = Workload { batch: 1, input_tokens: 7202, beams: 5, max_new_tokens: 150 };
        let e = estimate(&oracle_dims(), 40 << 20, 4, false, work);
        let err = check(&e, work, Some(64 << 20)).unwrap_err();
        assert!(
            err.contains("--max-memory") && err.contains("64.0 MiB") && err.contains("7202 input tokens"),
            "{err}"
        );
        assert!(check(&e, work, Some(8 << 30)).is_ok());
    }

    #[test]
    fn sizes_parse_in_binary_units_and_nonsense_is_refused() {
        assert_eq!(parse_bytes("4G"), Ok(4 << 30));
        assert_eq!(parse_bytes("512M"), Ok(512 << 20));
        assert_eq!(parse_bytes("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_bytes("4000000000"), Ok(4_000_000_000));
        for bad in ["", "G", "4X", "-1G", "nan", "1K", "inf"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_bytes_setting("available"), Ok(None));
    }

    #[test]
    fn cgroup_limits_are_read_for_v2_and_v1() {
        let root = tempfile::tempdir().unwrap();
        let v2 = root.path().join("user.slice/prism");
        std::fs::create_dir_all(&v2).unwrap();
        std::fs::write(v2.join("memory.max"), "4294967296\n").unwrap();
        std::fs::write(v2.join("memory.current"), "1073741824\n").unwrap();
        assert_eq!(cgroup_left("0::/user.slice/prism\n", root.path()), Some(3 << 30));
        std::fs::write(v2.join("memory.max"), "max\n").unwrap();
        assert_eq!(cgroup_left("0::/user.slice/prism\n", root.path()), None);
        let v1 = root.path().join("memory/job");
        std::fs::create_dir_all(&v1).unwrap();
        std::fs::write(v1.join("memory.limit_in_bytes"), "2147483648\n").unwrap();
        std::fs::write(v1.join("memory.usage_in_bytes"), "1073741824\n").unwrap();
        assert_eq!(cgroup_left("4:cpu,cpuacct:/job\n3:memory:/job\n", root.path()), Some(1 << 30));
        std::fs::write(v1.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        assert_eq!(cgroup_left("3:memory:/job\n", root.path()), None);
    }

    #[test]
    fn this_process_has_some_memory_available() {
        if let Some(a) = available() {
            assert!(a.bytes > 0 && a.sources.contains("left"), "{a:?}");
        }
    }
}

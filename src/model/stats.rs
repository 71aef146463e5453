//! Instrumentation of one generation: [`GenStats`] (timings, throughput, parameter and KV-cache
//! bytes, memory) and the memory probes behind it ([`MemoryProbe`]).
//!
//! What the memory numbers mean:
//! - On CPU, `peak_rss_growth_bytes` is the growth of the process's resident set during the
//!   generation: the high-water mark `VmHWM` of `/proc/self/status` after the run minus `VmRSS`
//!   before it. The high-water mark is reset first by writing `5` to `/proc/self/clear_refs`; where
//!   the kernel refuses that (`memory_method = "vmrss-sampled"`), the peak is the largest `VmRSS`
//!   seen at the decoding steps, which can miss short spikes inside one step. The numbers are
//!   process-wide: two generations running at once in one process see each other's memory.
//! - On CUDA, `device_memory_bytes` is the memory in use on the device after the run (total minus
//!   free, as the driver reports it, so other processes on the same GPU count too).

use std::time::Instant;

use serde::Serialize;

/// Measurements of one call to generation. Times are wall-clock milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GenStats {
    /// `cpu` or `cuda:N`.
    pub device: String,
    /// Number of inputs generated for at once.
    pub batch_size: usize,
    pub num_beams: usize,
    /// Input tokens (special tokens included), summed over the batch.
    pub input_tokens: usize,
    /// Tokens cut from the inputs to fit the model's input length, summed over the batch.
    pub input_tokens_dropped: usize,
    /// Encoder pass (tokenization excluded).
    pub encode_ms: f64,
    /// From the start of generation (encoder included) to the first new token.
    pub ttft_ms: f64,
    /// From the start of generation to the end (encoder included).
    pub total_ms: f64,
    /// Decoder calls made (one per position, covering every beam and input at once).
    pub steps: usize,
    /// Tokens in the returned sequences, summed over the batch.
    pub new_tokens: usize,
    /// `new_tokens / total_ms`, end to end.
    pub tokens_per_s: f64,
    /// `new_tokens` over the decoding time only (`total_ms - encode_ms`).
    pub decode_tokens_per_s: f64,
    /// The weights' precision (`f32`, `bf16`, `f16`, `q8`, `q4`).
    pub dtype: String,
    /// Bytes the weights take as loaded (quantized blocks at their real size).
    pub param_bytes: usize,
    /// Milliseconds it took to load the model (0 when generation was called on a model built
    /// elsewhere).
    pub load_ms: f64,
    /// Largest size the decoder's key/value cache reached.
    pub kv_cache_bytes: usize,
    /// Growth of the process's peak resident set during the run (CPU; see the module docs).
    pub peak_rss_growth_bytes: u64,
    /// Process resident set before the run.
    pub rss_before_bytes: u64,
    /// How the peak was measured: `vmhwm` (reset high-water mark), `vmrss-sampled`, `cuda`, or
    /// `unavailable` where `/proc` cannot be read.
    pub memory_method: String,
    /// Device memory in use after the run (CUDA only).
    pub device_memory_bytes: Option<u64>,
}

impl GenStats {
    /// Fills the derived throughput fields from the counts and times.
    pub fn finish_rates(&mut self) {
        self.tokens_per_s = rate(self.new_tokens, self.total_ms);
        self.decode_tokens_per_s = rate(self.new_tokens, self.total_ms - self.encode_ms);
    }
}

fn rate(tokens: usize, ms: f64) -> f64 {
    if ms > 0.0 {
        tokens as f64 / (ms / 1000.0)
    } else {
        0.0
    }
}

/// Milliseconds since `start`.
pub fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

/// Resident-set figures of this process, from `/proc/self/status`, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcMemory {
    pub rss: u64,
    pub hwm: u64,
}

/// Parses the `VmRSS` and `VmHWM` lines (in kB) of a `/proc/PID/status` text.
pub fn parse_proc_status(text: &str) -> Option<ProcMemory> {
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line[name.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    };
    Some(ProcMemory { rss: field("VmRSS:")?, hwm: field("VmHWM:")? })
}

/// Reads this process's resident-set figures; `None` where `/proc` is not available.
pub fn read_proc_memory() -> Option<ProcMemory> {
    parse_proc_status(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// Tracks the memory of one generation: created before it, sampled at every decoding step,
/// finished after it.
#[derive(Debug)]
pub struct MemoryProbe {
    before: Option<ProcMemory>,
    hwm_reset: bool,
    max_sampled_rss: u64,
}

impl MemoryProbe {
    pub fn start() -> MemoryProbe {
        // Resetting the high-water mark is the only way to see a peak lower than an earlier one
        // (e.g. a second, smaller model loaded after a large one).
        let hwm_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        let before = read_proc_memory();
        MemoryProbe { before, hwm_reset, max_sampled_rss: before.map_or(0, |m| m.rss) }
    }

    /// Records the current resident set and, where this probe reset it, the high-water mark
    /// (cheap: one small procfs read). A probe started inside this one (each generation has its
    /// own) resets the mark again, so a peak between two samples (loading a model, say) is kept
    /// only by sampling before the inner probe starts.
    pub fn sample(&mut self) {
        if let Some(now) = read_proc_memory() {
            // After this probe's reset, any reading of the mark is a peak inside its window.
            let hwm = if self.hwm_reset { now.hwm } else { 0 };
            self.max_sampled_rss = self.max_sampled_rss.max(now.rss).max(hwm);
        }
    }

    /// Writes the CPU memory fields of `stats`.
    pub fn finish(mut self, stats: &mut GenStats) {
        self.sample();
        let (Some(before), Some(after)) = (self.before, read_proc_memory()) else {
            stats.memory_method = "unavailable".into();
            return;
        };
        stats.rss_before_bytes = before.rss;
        let peak = if self.hwm_reset {
            stats.memory_method = "vmhwm".into();
            after.hwm.max(self.max_sampled_rss)
        } else {
            stats.memory_method = "vmrss-sampled".into();
            // A high-water mark above the one before the run can only have been set during it.
            let hwm_during = if after.hwm > before.hwm { after.hwm } else { 0 };
            hwm_during.max(self.max_sampled_rss)
        };
        stats.peak_rss_growth_bytes = peak.saturating_sub(before.rss);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_status_lines_in_kilobytes() {
        let text = "Name:\tprism\nVmPeak:\t  9000 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\n";
        assert_eq!(parse_proc_status(text), Some(ProcMemory { rss: 1024 * 1024, hwm: 2048 * 1024 }));
        assert_eq!(parse_proc_status("Name:\tprism\n"), None);
    }

    /// The high-water mark is process-wide: tests that reset it run one at a time.
    static HWM: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn probe_sees_a_large_allocation() {
        let _one_at_a_time = HWM.lock().unwrap_or_else(|e| e.into_inner());
        let probe = MemoryProbe::start();
        // Touch every page so it is resident, not just reserved.
        let block = vec![1u8; 64 << 20];
        let mut stats = GenStats::default();
        let mut probe = probe;
        probe.sample();
        std::hint::black_box(&block);
        drop(block);
        probe.finish(&mut stats);
        if stats.memory_method == "unavailable" {
            return;
        }
        assert!(stats.peak_rss_growth_bytes >= 48 << 20, "{stats:?}");
        assert!(stats.rss_before_bytes > 0);
    }

    /// `prism bench` samples after loading, then each generation's own probe resets the
    /// high-water mark: the loading peak must survive that reset.
    #[test]
    fn a_peak_sampled_before_an_inner_probe_survives_its_reset() {
        let _one_at_a_time = HWM.lock().unwrap_or_else(|e| e.into_inner());
        let mut outer = MemoryProbe::start();
        let block = vec![1u8; 64 << 20];
        std::hint::black_box(&block);
        drop(block);
        outer.sample();
        let _inner = MemoryProbe::start();
        let mut stats = GenStats::default();
        outer.finish(&mut stats);
        if stats.memory_method != "vmhwm" {
            return;
        }
        assert!(stats.peak_rss_growth_bytes >= 48 << 20, "{stats:?}");
    }

    #[test]
    fn rates_are_tokens_per_second() {
        let mut stats = GenStats { new_tokens: 50, total_ms: 500.0, encode_ms: 250.0, ..Default::default() };
        stats.finish_rates();
        assert_eq!(stats.tokens_per_s, 100.0);
        assert_eq!(stats.decode_tokens_per_s, 200.0);
        let mut empty = GenStats::default();
        empty.finish_rates();
        assert_eq!(empty.tokens_per_s, 0.0);
    }
}

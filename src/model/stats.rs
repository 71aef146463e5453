//! Instrumentation of one generation: [`GenStats`] (timings, throughput, parameter and KV-cache
//! bytes, memory) and the memory probes behind it ([`MemoryProbe`], [`CountingAlloc`]).
//!
//! What the memory numbers mean:
//! - `generation_peak_bytes` is the model's own memory for one generation: the most that the
//!   generation's allocations (encoder output and activations, attention scores, KV cache, logits)
//!   held at once. [`CountingAlloc`], the crate's global allocator, charges each allocation of at
//!   least [`COUNTED_MIN_BYTES`] made on a thread inside an [`AllocScope`] to that scope, and each
//!   free to the scope that made the allocation, whichever thread frees it. Each generation runs in
//!   a scope on its calling thread, so two models generating at once on two threads (the explorer)
//!   do not see each other. Not counted: allocations made on rayon's workers (candle and our kernels
//!   allocate an op's output on the calling thread and only fill it there), smaller allocations
//!   (strings, token lists), and device memory.
//! - On CPU, `peak_rss_growth_bytes` is the growth of the process's resident set during the
//!   generation: the high-water mark `VmHWM` of `/proc/self/status` after the run minus `VmRSS`
//!   before it. The high-water mark is reset first by writing `5` to `/proc/self/clear_refs`; where
//!   the kernel refuses that (`memory_method = "vmrss-sampled"`), the peak is the largest `VmRSS`
//!   seen at the decoding steps (at most one sample a millisecond), which can miss short spikes
//!   between two samples. The numbers are process-wide: two generations running at once in one
//!   process see each other's memory.
//! - On CUDA, `device_memory_bytes` is the memory in use on the device after the run (total minus
//!   free, as the driver reports it, so other processes on the same GPU count too).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
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
    /// The most this generation's own allocations held at once (KV cache, activations, logits;
    /// host memory, see the module docs).
    pub generation_peak_bytes: u64,
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

/// How often a generation's steps read `/proc/self/status` at most. The read costs ~10 µs of
/// kernel formatting, which was 10% of a small model's generation when every step read it
/// (`perf` on `prism bench --model prism`); a step of a large model takes longer than this, so
/// each of its steps is still sampled.
const STEP_SAMPLE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(1);

/// Tracks the memory of one generation: created before it, sampled at its decoding steps
/// ([`MemoryProbe::sample_now_and_then`]), finished after it.
#[derive(Debug)]
pub struct MemoryProbe {
    before: Option<ProcMemory>,
    hwm_reset: bool,
    max_sampled_rss: u64,
    last_sampled: Instant,
    scope: AllocScope,
}

impl MemoryProbe {
    pub fn start() -> MemoryProbe {
        // Resetting the high-water mark is the only way to see a peak lower than an earlier one
        // (e.g. a second, smaller model loaded after a large one).
        let hwm_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        let before = read_proc_memory();
        MemoryProbe {
            before,
            hwm_reset,
            max_sampled_rss: before.map_or(0, |m| m.rss),
            last_sampled: Instant::now(),
            scope: AllocScope::open(),
        }
    }

    /// Records the current resident set and, where this probe reset it, the high-water mark
    /// (cheap: one small procfs read). A probe started inside this one (each generation has its
    /// own) resets the mark again, so a peak between two samples (loading a model, say) is kept
    /// only by sampling before the inner probe starts.
    pub fn sample(&mut self) {
        self.last_sampled = Instant::now();
        if let Some(now) = read_proc_memory() {
            // After this probe's reset, any reading of the mark is a peak inside its window.
            let hwm = if self.hwm_reset { now.hwm } else { 0 };
            self.max_sampled_rss = self.max_sampled_rss.max(now.rss).max(hwm);
        }
    }

    /// [`MemoryProbe::sample`] unless the last sample is under [`STEP_SAMPLE_INTERVAL`] old: for
    /// every decoding step.
    pub fn sample_now_and_then(&mut self) {
        if self.last_sampled.elapsed() >= STEP_SAMPLE_INTERVAL {
            self.sample();
        }
    }

    /// Writes the CPU memory fields of `stats`.
    pub fn finish(mut self, stats: &mut GenStats) {
        self.sample();
        stats.generation_peak_bytes = self.scope.peak();
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

/// Allocations smaller than this are neither counted nor tagged: a tensor worth measuring is
/// larger, and tagging every small string would cost the whole program a header each.
pub const COUNTED_MIN_BYTES: usize = 1024;

/// Room before a counted allocation for its tag; a multiple of every alignment up to 16.
const HEADER: usize = 16;

/// How many scopes can be open at once in the process (one per generating thread).
const SLOTS: usize = 64;

/// One scope's counters. `generation` is odd while the scope is open; a tag names a slot and the
/// generation it was made under, so frees after the scope closed (or was reused) are ignored.
struct Slot {
    generation: AtomicU32,
    current: AtomicU64,
    peak: AtomicU64,
}

static SCOPES: [Slot; SLOTS] =
    [const { Slot { generation: AtomicU32::new(0), current: AtomicU64::new(0), peak: AtomicU64::new(0) } };
        SLOTS];

thread_local! {
    /// The tag of the scope open on this thread, 0 for none.
    static CURRENT: Cell<u64> = const { Cell::new(0) };
}

fn tag(slot: usize, generation: u32) -> u64 {
    ((slot as u64 + 1) << 32) | u64::from(generation)
}

/// The open slot a tag names, if it is still the scope that made it.
fn slot_of(tag: u64) -> Option<&'static Slot> {
    let slot = SCOPES.get(((tag >> 32) as usize).checked_sub(1)?)?;
    (slot.generation.load(Ordering::Acquire) == tag as u32).then_some(slot)
}

/// A window on the current thread in which allocations are counted (see the module docs). Scopes
/// do not nest: one opened inside another counts alone until it closes, then the outer counts
/// again. Where every slot is taken the scope counts nothing and reports 0.
#[derive(Debug)]
pub struct AllocScope {
    tag: u64,
    outer: u64,
}

impl AllocScope {
    pub fn open() -> AllocScope {
        let outer = CURRENT.with(Cell::get);
        for (i, slot) in SCOPES.iter().enumerate() {
            let generation = slot.generation.load(Ordering::Relaxed);
            if generation % 2 == 1 {
                continue;
            }
            let open = generation.wrapping_add(1);
            if slot.generation.compare_exchange(generation, open, Ordering::AcqRel, Ordering::Relaxed).is_ok()
            {
                // Nothing is charged to the new tag before this thread's allocations carry it.
                slot.current.store(0, Ordering::Relaxed);
                slot.peak.store(0, Ordering::Relaxed);
                let tag = tag(i, open);
                CURRENT.with(|c| c.set(tag));
                return AllocScope { tag, outer };
            }
        }
        AllocScope { tag: 0, outer }
    }

    /// The most the scope's allocations have held at once so far, in bytes.
    pub fn peak(&self) -> u64 {
        slot_of(self.tag).map_or(0, |slot| slot.peak.load(Ordering::Relaxed))
    }
}

impl Drop for AllocScope {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.outer));
        if let Some(slot) = slot_of(self.tag) {
            slot.generation.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// The system allocator, counting per [`AllocScope`]: an allocation of at least
/// [`COUNTED_MIN_BYTES`] carries a 16-byte header before it (more for wider alignments) holding the
/// tag of the scope it was made in, so its free is charged to that scope from any thread. Whether
/// an allocation has a header is decided by its layout alone, which `dealloc` receives again.
pub struct CountingAlloc;

fn counted(layout: &Layout) -> bool {
    layout.size() >= COUNTED_MIN_BYTES
}

/// The layout of a counted block (header included) and the offset of the caller's bytes in it.
fn outer_layout(layout: &Layout) -> Option<(Layout, usize)> {
    let offset = layout.align().max(HEADER);
    let outer = Layout::from_size_align(layout.size().checked_add(offset)?, offset).ok()?;
    Some((outer, offset))
}

fn charge(tag: u64, bytes: usize) {
    if let Some(slot) = slot_of(tag) {
        let now = slot.current.fetch_add(bytes as u64, Ordering::Relaxed) + bytes as u64;
        slot.peak.fetch_max(now, Ordering::Relaxed);
    }
}

fn release(tag: u64, bytes: usize) {
    if let Some(slot) = slot_of(tag) {
        // A free racing the scope's reopening may find the counter already reset.
        let _ = slot
            .current
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| Some(c.saturating_sub(bytes as u64)));
    }
}

/// Allocates a counted block with `alloc` and writes the current scope's tag before it.
///
/// # Safety
/// `outer` must be a valid non-zero-size layout and `alloc` an allocation function for it.
unsafe fn tagged(layout: Layout, alloc: impl FnOnce(Layout) -> *mut u8) -> *mut u8 {
    let Some((outer, offset)) = outer_layout(&layout) else { return std::ptr::null_mut() };
    let base = alloc(outer);
    if base.is_null() {
        return base;
    }
    let tag = CURRENT.try_with(Cell::get).unwrap_or(0);
    // SAFETY: the block is `offset + size` bytes, `offset >= 16`, and its start is 16-aligned.
    let ptr = unsafe { base.add(offset) };
    unsafe { (ptr.sub(8) as *mut u64).write(tag) };
    charge(tag, layout.size());
    ptr
}

/// The tag of a counted block, and its start.
///
/// # Safety
/// `ptr` must have been returned by [`tagged`] for `layout`.
unsafe fn untag(ptr: *mut u8, layout: &Layout) -> (u64, *mut u8, Layout) {
    let (outer, offset) = outer_layout(layout).expect("the layout was valid at allocation");
    let tag = unsafe { (ptr.sub(8) as *const u64).read() };
    (tag, unsafe { ptr.sub(offset) }, outer)
}

// SAFETY: every block comes from `System` with a layout at least as large and aligned as asked;
// counted blocks are returned to it with the same outer layout they were made with.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !counted(&layout) {
            return unsafe { System.alloc(layout) };
        }
        unsafe { tagged(layout, |outer| System.alloc(outer)) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !counted(&layout) {
            return unsafe { System.alloc_zeroed(layout) };
        }
        unsafe { tagged(layout, |outer| System.alloc_zeroed(outer)) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !counted(&layout) {
            return unsafe { System.dealloc(ptr, layout) };
        }
        let (tag, base, outer) = unsafe { untag(ptr, &layout) };
        release(tag, layout.size());
        unsafe { System.dealloc(base, outer) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (counted(&layout), counted(&new_layout)) {
            (false, false) => unsafe { System.realloc(ptr, layout, new_size) },
            (true, true) => {
                // The block keeps the tag of the scope that made it; only the size changes.
                let (tag, base, outer) = unsafe { untag(ptr, &layout) };
                let offset = outer.align();
                // The grown block must itself be a valid layout, header included.
                let Some(total) =
                    new_size.checked_add(offset).filter(|&t| Layout::from_size_align(t, offset).is_ok())
                else {
                    return std::ptr::null_mut();
                };
                let grown = unsafe { System.realloc(base, outer, total) };
                if grown.is_null() {
                    return grown;
                }
                release(tag, layout.size());
                charge(tag, new_size);
                unsafe { grown.add(offset) }
            }
            _ => {
                // Crossing the threshold changes the block's shape: move it.
                let fresh = unsafe { self.alloc(new_layout) };
                if !fresh.is_null() {
                    unsafe { std::ptr::copy_nonoverlapping(ptr, fresh, layout.size().min(new_size)) };
                    unsafe { self.dealloc(ptr, layout) };
                }
                fresh
            }
        }
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
    fn a_scope_counts_its_threads_allocations_until_they_are_freed() {
        let scope = AllocScope::open();
        let a = std::hint::black_box(vec![0u8; 1 << 20]);
        let b = std::hint::black_box(vec![0u8; 1 << 20]);
        drop(a);
        let c = std::hint::black_box(vec![0u8; 1 << 19]);
        // Small allocations are not counted.
        let small: Vec<Vec<u8>> = (0..100).map(|_| vec![0u8; 100]).collect();
        std::hint::black_box(&small);
        assert_eq!(scope.peak(), 2 << 20);
        drop((b, c));
        // Another thread allocating at the same time, in its own scope or none, is not counted here.
        std::thread::spawn(|| {
            std::hint::black_box(vec![0u8; 8 << 20]);
            let theirs = AllocScope::open();
            let block = std::hint::black_box(vec![0u8; 3 << 20]);
            assert_eq!(theirs.peak(), 3 << 20);
            drop(block);
        })
        .join()
        .unwrap();
        let d = std::hint::black_box(vec![0u8; 1 << 20]);
        assert_eq!(scope.peak(), 2 << 20);
        drop(d);
    }

    #[test]
    fn a_block_freed_on_another_thread_is_released_from_the_scope_that_made_it() {
        let scope = AllocScope::open();
        let block = std::hint::black_box(vec![0u8; 2 << 20]);
        std::thread::spawn(move || drop(block)).join().unwrap();
        let next = std::hint::black_box(vec![0u8; 2 << 20]);
        assert_eq!(scope.peak(), 2 << 20, "the first block's bytes were released when it was freed");
        // Growing a counted block moves its charge; crossing the threshold tags or untags it.
        let mut grown = next;
        grown.reserve_exact(2 << 20);
        assert_eq!(scope.peak(), 4 << 20);
        let mut tiny = vec![0u8; 16];
        tiny.reserve_exact(4 << 20);
        assert!(scope.peak() >= (8 << 20) + 16);
        drop((grown, tiny));
        drop(scope);
        // Blocks made in a closed scope are freed without touching the next one in its slot.
        let kept = vec![0u8; 1 << 20];
        let after = AllocScope::open();
        drop(kept);
        let block = std::hint::black_box(vec![0u8; 1 << 20]);
        assert_eq!(after.peak(), 1 << 20);
        drop(block);
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

//! Where tensor work runs. Rayon's workers sleep between jobs, and a thread outside the pool that
//! starts a parallel op hands the op over and sleeps until a worker has finished it. A decoder step
//! is hundreds of small ops, and at the embedded models' sizes that hand-over cost more than the
//! second core gained: 2 threads were 1.2–1.4× slower than 1 (docs/BENCHMARKS.md). So the thread
//! that generates is itself worker 0 of the pool it uses: it runs its half of every split op and
//! takes the other half back when no other worker has started it.
//! - [`join_global_pool`]: a command's main thread joins rayon's global pool.
//! - [`own_pool`]: each model of the explorer generates on a pool of its own, its worker thread
//!   being worker 0, sized to its share of the cores ([`share`]), so the two models generating at
//!   once do not fight over the same workers.
//! - [`quiet_candle_pool`]: candle's own pool of element-wise workers stops spinning on the cores
//!   rayon's workers need.
//! - [`on_this_thread`]: work whose splittable ops are too few to keep a second worker awake (a
//!   small model's decoder step) keeps them on the calling thread; the kernels ask
//!   [`split_threads`] how far they may split.

use std::cell::Cell;

use anyhow::{Context, Result};

/// The environment variable candle 0.11 reads, once, for how long its pool's idle workers spin.
const CANDLE_SPIN: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";

/// candle runs element-wise ops over 64K elements, and its `q4` products, on a pool of its own
/// (`BarrierPool`), whose idle workers spin 25,000 times (about a millisecond here) before they
/// sleep: on the very cores rayon's workers need for the product that follows. A spin of 100
/// (microseconds) still catches back-to-back ops. Measured at 2 threads (docs/BENCHMARKS.md): the
/// flan-t5-large shape's encoder 1,073–1,097 → 1,009–1,032 ms, the embedded Oracle 1.1–1.2× the
/// tokens/s, `q4` unchanged (taking candle's workers away instead made `q4` 1.7× slower). Sets an
/// environment variable, so call it first thing in `main`, before any other thread exists; a value
/// the user set wins.
pub fn quiet_candle_pool() {
    if std::env::var_os(CANDLE_SPIN).is_none() {
        std::env::set_var(CANDLE_SPIN, "100");
    }
}

/// The threads tensor work may use: `RAYON_NUM_THREADS` when set (as rayon and candle read it),
/// else every core the process may run on.
pub fn available() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// Makes the calling thread worker 0 of rayon's global pool of [`available`] threads. Call it
/// first thing on the thread that will run the command's tensor work, before anything touches
/// rayon; it does nothing once the global pool exists. With one thread the pool keeps its own
/// worker: a pool whose only worker is a thread busy elsewhere would never run work that another
/// thread hands it.
pub fn join_global_pool() {
    let threads = available();
    if threads >= 2 {
        let _ = rayon::ThreadPoolBuilder::new().num_threads(threads).use_current_thread().build_global();
    }
}

/// A pool of `threads` workers of which the calling thread is worker 0 (the others run
/// `on_start` first). The pool must live as long as the thread uses it; rayon never frees the
/// registry of such a pool, so call it once per long-lived thread.
pub fn own_pool(threads: usize, on_start: fn()) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .use_current_thread()
        .start_handler(move |_| on_start())
        .build()
        .context("cannot start a thread pool")
}

thread_local! {
    /// Set inside [`on_this_thread`].
    static KEPT_HERE: Cell<bool> = const { Cell::new(false) };
}

/// Runs `work` with the tensor ops it starts on this thread kept on it ([`split_threads`] is 1).
/// A worker that has gone to sleep between two split ops takes longer to wake than half of a
/// small op: the Prism's beam-5 decoder step has three products worth splitting, and split they
/// made it slower at 2 threads than at 1, while the Oracle's, with 37 back to back, gains 1.6×
/// from them (docs/BENCHMARKS.md).
pub fn on_this_thread<R>(work: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            KEPT_HERE.with(|kept| kept.set(self.0));
        }
    }
    let _restore = Restore(KEPT_HERE.with(|kept| kept.replace(true)));
    work()
}

/// How many threads an op started on this thread may split across: 1 inside
/// [`on_this_thread`], else the size of the rayon pool it runs in.
pub fn split_threads() -> usize {
    if KEPT_HERE.with(Cell::get) {
        1
    } else {
        rayon::current_num_threads()
    }
}

/// The threads each of `workers` equal consumers gets out of `total`: an equal share, at least one.
pub fn share(total: usize, workers: usize) -> usize {
    (total / workers.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    #[test]
    fn shares_are_equal_and_never_zero() {
        assert_eq!(share(16, 2), 8);
        assert_eq!(share(2, 2), 1);
        assert_eq!(share(2, 3), 1);
        assert_eq!(share(5, 0), 5);
    }

    #[test]
    fn ops_kept_on_this_thread_do_not_split_and_the_setting_is_restored() {
        std::thread::spawn(|| {
            let _pool = own_pool(2, || {}).unwrap();
            assert_eq!(split_threads(), 2);
            let inner = on_this_thread(|| (split_threads(), on_this_thread(split_threads), split_threads()));
            assert_eq!(inner, (1, 1, 1));
            assert_eq!(split_threads(), 2);
            let panicked = std::panic::catch_unwind(|| on_this_thread(|| panic!("inside")));
            assert!(panicked.is_err());
            assert_eq!(split_threads(), 2, "restored after a panic");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_calling_thread_is_worker_zero_of_its_own_pool() {
        std::thread::spawn(|| {
            let _pool = own_pool(2, || {}).unwrap();
            assert_eq!(rayon::current_thread_index(), Some(0));
            assert_eq!(rayon::current_num_threads(), 2);
            let sum: u64 = (0..100_000u64).into_par_iter().sum();
            assert_eq!(sum, 4_999_950_000);
        })
        .join()
        .unwrap();
    }
}

//! The `prism` binary: parses the command line and hands it to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    restore_default_sigpipe();
    keep_freed_memory();
    prism_explorer::threads::quiet_candle_pool();
    let cli = prism_explorer::cli::Cli::parse();
    let debug = cli.global.debug;
    configure_backtraces(debug);
    match prism_explorer::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if debug => {
            eprintln!("prism: {err:?}");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("prism: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Backtraces are for `--debug`: anyhow and candle capture one into every error when
/// `RUST_BACKTRACE` is set, and candle prints it as part of the message, so a user who keeps the
/// variable set would see fifty lines after "shape mismatch". Without `--debug` the variables are
/// cleared before anything is captured; a panic (a bug, not a user error) still gets its backtrace
/// when the user asked for one.
fn configure_backtraces(debug: bool) {
    let asked = std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0");
    if debug {
        if !asked {
            std::env::set_var("RUST_BACKTRACE", "1");
        }
        return;
    }
    std::env::remove_var("RUST_BACKTRACE");
    std::env::remove_var("RUST_LIB_BACKTRACE");
    if asked {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default_hook(info);
            eprintln!("{}", std::backtrace::Backtrace::force_capture());
        }));
    }
}

/// Rust ignores SIGPIPE, so `prism … | head` would panic on the first write after `head` exits.
/// Restoring the default makes the process end quietly, as command-line tools do.
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called once at start-up, before any thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// candle allocates and frees a large buffer for nearly every tensor op. glibc returns buffers over
/// its mmap threshold to the kernel at once, so each op page-faults its memory in anew: measured on
/// the Oracle's training step, a third of the time went to the kernel. Keeping freed memory in the
/// heap for reuse cut the step time by ~40% (docs/BENCHMARKS.md).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes allocator thresholds; called before any allocation-heavy work.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
}

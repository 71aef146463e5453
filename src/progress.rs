//! Progress bars for long command-line work (count, rate, time left) in one style, drawn on
//! stderr with `indicatif`. Off unless the command line turned them on ([`show`]): a library
//! caller, a test and the explorer (which owns the terminal) never see one; on, they are still
//! hidden when stderr is not a terminal, so pipes and logs get no control characters.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressState, ProgressStyle};

static SHOWN: AtomicBool = AtomicBool::new(false);

/// Turns bars on for this process (the command line does, unless `--quiet` or the explorer).
pub fn show(on: bool) {
    SHOWN.store(on, Ordering::Relaxed);
}

fn visible() -> bool {
    SHOWN.load(Ordering::Relaxed) && std::io::stderr().is_terminal()
}

/// `what [elapsed] ████░░ 40/100 unit, 3.2/s, ETA 19s`; hidden when bars are off. Cleared
/// when the last handle is dropped, so the lines printed after it are not interleaved with it.
pub fn bar(total: u64, what: &str, unit: &str) -> ProgressBar {
    if !visible() {
        return ProgressBar::hidden();
    }
    let template = format!(
        "{{prefix}} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {unit}, {{rate}}, ETA {{eta}} {{msg}}"
    );
    styled(total, what, &template)
}

/// A bar over bytes read (`12.0 MiB/80.0 MiB, 40 MiB/s, ETA 2s`), for loading files.
pub fn bytes(total: u64, what: &str) -> ProgressBar {
    if !visible() {
        return ProgressBar::hidden();
    }
    styled(
        total,
        what,
        "{prefix} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes}, {bytes_per_sec}, ETA {eta}",
    )
}

fn styled(total: u64, what: &str, template: &str) -> ProgressBar {
    let style = ProgressStyle::with_template(template).expect("a valid progress template").with_key(
        "rate",
        |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.1}/s", state.per_sec());
        },
    );
    ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
        .with_style(style)
        .with_prefix(what.to_owned())
        .with_finish(ProgressFinish::AndClear)
}

/// Follows `(what, done, total)` reports as a bar, a new one (clearing the last) whenever `what`
/// changes.
pub struct Reports {
    unit: &'static str,
    current: Option<(String, ProgressBar)>,
}

impl Reports {
    pub fn new(unit: &'static str) -> Self {
        Reports { unit, current: None }
    }

    /// Moves the bar of `what` to `done` of `total`. `false` when stderr is not a terminal, where
    /// the caller writes its own log lines instead (a bar hidden by `--quiet` on a terminal is
    /// still `true`: nothing is printed).
    pub fn update(&mut self, what: &str, done: usize, total: usize) -> bool {
        if !std::io::stderr().is_terminal() {
            return false;
        }
        if self.current.as_ref().is_none_or(|(w, _)| w != what) {
            let bar = bar(total as u64, what, self.unit);
            // What an earlier run had done took no time in this one.
            bar.set_position(done.saturating_sub(1) as u64);
            bar.reset_eta();
            self.current = Some((what.to_owned(), bar));
        }
        if let Some((_, bar)) = &self.current {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
        true
    }
}

/// Prints `line` on stderr above a visible bar (or plainly when it is hidden).
pub fn println(bar: &ProgressBar, line: &str) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_hidden_unless_the_command_line_shows_them() {
        // Tests run with stderr captured or piped: hidden either way, and still counting.
        let b = bar(10, "test", "rows");
        assert!(b.is_hidden());
        b.inc(3);
        assert_eq!(b.position(), 3);
        assert!(bytes(1 << 20, "file").is_hidden());
    }
}

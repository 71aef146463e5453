//! End to end: the real `prism` binary in a tmux pane at 160×48. First with tiny random checkpoints
//! (the T5 fixture as Oracle, a tiny BART made by the test as Prism: the text is generated, not
//! canned): selects a user and an item, waits for both explanations, opens the help, quits, and
//! checks the terminal is back to normal. Then as a user first meets it, with the embedded models.
//! Skipped (with a message) only when tmux is not installed; CI installs it.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod common;

fn write_config(dir: &Path) -> std::path::PathBuf {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf");
    let config = format!(
        "[ranker]\ndefault = \"pop\"\n\
         [models]\noracle = \"{}\"\nprism = \"{}\"\n\
         # The fixtures' tokenizers are tiny, so prompts take many tokens (T5 has no position limit).\n\
         oracle_max_input_tokens = 2000\nprism_max_input_tokens = 2000\n\
         [decoding]\nbeams = 1\nmax_new_tokens = 12\n",
        fixtures.join("t5-v1_1").display(),
        dir.join("bart").display()
    );
    common::tiny_bart(&dir.join("bart"));
    let path = dir.join("config.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// The real binary in a 160×48 tmux pane (socket `name`), with `args`, in a home of its own; when
/// it exits the pane prints its exit status after `after_exit`'s output. `None` (with a message)
/// where tmux is not installed.
fn explorer_in_tmux(home: &Path, args: &str, after_exit: &str, name: &str) -> Option<common::Tmux> {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("SKIPPED tui_tmux: tmux is not installed (CI installs it)");
        return None;
    }
    let h = home.display();
    let script = format!(
        "env HOME={h} XDG_CONFIG_HOME={h} XDG_DATA_HOME={h} PRISM_CACHE_DIR={h} {} {args}; \
         echo \"prism exited with $?\"; {after_exit}sleep 600",
        env!("CARGO_BIN_EXE_prism")
    );
    let tmux = common::Tmux { socket: format!("{name}-{}", std::process::id()), session: "prism".into() };
    tmux.cmd(&["new-session", "-d", "-s", "prism", "-x", "160", "-y", "48", &script]);
    Some(tmux)
}

#[test]
fn explore_a_user_and_an_item_then_quit_restoring_the_terminal() {
    let home = tempfile::tempdir().unwrap();
    let config = write_config(home.path());
    let after_exit = "stty -a | tr ' ;' '\\n\\n' | grep -x -- '-*icanon'; ";
    let args = format!("--config {}", config.display());
    let Some(tmux) = explorer_in_tmux(home.path(), &args, after_exit, "prism-test") else { return };

    tmux.wait("the users list", 60, |s| s.contains("/ to filter") && s.contains("Users 1000/1000"));
    tmux.keys(&["/"]);
    tmux.literal("u0042");
    tmux.keys(&["Enter"]);
    tmux.wait("u0042's history and ranking", 60, |s| s.contains("History of u0042") && s.contains("Top 10"));
    // The second-ranked item (focus is on the ranked list after Enter).
    tmux.keys(&["j"]);
    std::thread::sleep(Duration::from_millis(300));
    // Each finished explanation ends with its verdict line ("title ✓ · invented 0 · misattributed 0").
    let screen = tmux.wait("both explanations", 120, |s| s.matches(" · misattributed ").count() == 2);
    assert!(screen.contains(" Oracle t5") && screen.contains(" Prism bart"), "{screen}");
    assert_eq!(screen.matches("tok/s").count(), 4, "stats under each pane and in performance:\n{screen}");
    assert!(screen.contains("speed-up ×"), "{screen}");

    tmux.keys(&["?"]);
    tmux.wait("the help overlay", 10, |s| s.contains("Help — any key closes") && s.contains("switch ranker"));
    tmux.keys(&["Escape"]);
    tmux.wait("the help to close", 10, |s| !s.contains("Help — any key closes"));
    tmux.keys(&["q"]);
    let screen = tmux.wait("the shell after quitting", 10, |s| s.contains("prism exited with"));
    assert!(screen.contains("prism exited with 0"), "{screen}");
    // Raw mode is off again (icanon, not -icanon) and the alternate screen is gone.
    assert!(screen.lines().any(|l| l.trim() == "icanon"), "{screen}");
    assert!(!screen.contains("History of u0042"), "{screen}");
}

/// The explorer as a user first meets it: no configuration, so the embedded Oracle and Prism
/// (`assets/models/`) explain the demo user's top-ranked item, each with its grounding, and the
/// performance panel shows the measured speed-up.
#[test]
fn the_embedded_models_explain_the_top_ranked_item() {
    let home = tempfile::tempdir().unwrap();
    let Some(tmux) = explorer_in_tmux(home.path(), "", "", "prism-embedded") else { return };
    tmux.wait("the users list", 60, |s| s.contains("Users 1000/1000"));
    tmux.keys(&["/"]);
    tmux.literal("u0042");
    tmux.keys(&["Enter"]);
    // Each finished explanation ends with its verdict line ("title ✓ · invented 0 · misattributed 0").
    let screen = tmux.wait("both explanations", 120, |s| s.matches(" · misattributed ").count() == 2);
    assert!(screen.contains(" Oracle t5 · 26.7 MB") && screen.contains(" Prism bart"), "{screen}");
    assert!(!screen.contains("✗ Cannot") && !screen.contains("✗ Generation"), "{screen}");
    assert_eq!(screen.matches("■ grounded").count(), 2, "each explanation's grounding:\n{screen}");
    assert!(screen.contains("speed-up ×") && screen.contains("memory ratio ×"), "{screen}");
    tmux.keys(&["q"]);
    let screen = tmux.wait("the shell after quitting", 10, |s| s.contains("prism exited with"));
    assert!(screen.contains("prism exited with 0"), "{screen}");
}

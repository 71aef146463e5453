//! The annotation TUI. Snapshots: an item screen drawn on ratatui's `TestBackend` at 80×24 and
//! 120×40, compared as text with `tests/snapshots/annotate_*.txt` (rerun with
//! `UPDATE_SNAPSHOTS=1` after an intended change and review the diff). End to end: the real
//! binary in tmux on a study of 5 demo items, 3 answered with keys, the process killed, resumed
//! at item 4, finished, and a report whose means are the ratings typed. Skipped (with a message)
//! only when tmux is not installed.

use std::path::PathBuf;
use std::process::Command;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use prism_explorer::humaneval::store::Annotations;
use prism_explorer::humaneval::study::{Study, StudyItem};
use prism_explorer::humaneval::Session;
use prism_explorer::tui::annotate::{draw, on_key, Look, Ui};
use prism_explorer::tui::keys::KeyMap;
use prism_explorer::tui::theme::Theme;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

mod common;
use common::{command, json, write_xq7, Tmux, XQ7};

/// A study of two items with `slots` (2 or 3) explanations each.
fn study(slots: usize) -> Study {
    let items = (1..=2)
        .map(|i| StudyItem {
            id: format!("q{i:03}"),
            user: format!("u{i:04}"),
            item: format!("i{i:04}"),
            title: format!("Film number {i}"),
            features: vec!["genre: drama".into(), "genre: war".into(), "director: Ann Lee".into()],
            history: (1..=12).map(|h| format!("Old film {h}")).collect(),
            texts: vec![
                "We recommend this drama because you liked several war films directed by Ann Lee.".into(),
                "A quiet war drama, much like the films you watched last month; its director made two of them."
                    .into(),
                "Ann Lee directs again: the war and the drama you keep coming back to, in one film.".into(),
            ]
            .into_iter()
            .take(slots)
            .collect(),
        })
        .collect();
    Study {
        version: 1,
        id: "s-snapshot".into(),
        dataset: "demo".into(),
        seed: 7,
        criteria: vec!["faithfulness".into(), "personalization".into(), "persuasiveness".into()],
        slots,
        annotators: Vec::new(),
        items,
    }
}

fn draw_text(session: &Session, ui: &Ui, width: u16, height: u16) -> String {
    let theme = Theme::resolve("dark", false).unwrap();
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    let screen = session.screen();
    let look = Look { theme: &theme, keys: &KeyMap::default() };
    terminal.draw(|frame| draw(frame, &screen, ui, &look, "s-snapshot", "ann")).unwrap();
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..height {
        let line: String = (0..width).map(|x| buffer[(x, y)].symbol()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn check(actual: &str, name: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!("{} is missing: run with UPDATE_SNAPSHOTS=1 and review it", path.display())
    });
    if actual != expected {
        panic!("{name} differs from {}:\n--- expected\n{expected}\n--- actual\n{actual}", path.display());
    }
}

#[test]
fn an_item_screen_at_80x24_and_120x40() {
    use prism_explorer::humaneval::annotate::{update, Event};
    use prism_explorer::humaneval::Preference;
    let two = study(2);
    let s = Session::new(&two, &Annotations { annotator: "ann".into(), ..Annotations::default() }, 0);
    let s = update(s, Event::Rate { slot: 0, criterion: 0, score: 4 }, 0).0;
    let s = update(s, Event::Rate { slot: 1, criterion: 0, score: 2 }, 0).0;
    let s = update(s, Event::Prefer(Preference::Tie), 0).0;
    let s = update(s, Event::Note("B repeats itself".into()), 0).0;
    // The cursor on personalization of B.
    let mut ui = Ui::default();
    for c in ['j', 'l'] {
        let key = KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
        assert!(on_key(&mut ui, &KeyMap::default(), key, &s.screen()).is_empty());
    }
    for (w, h) in [(80, 24), (120, 40)] {
        let text = draw_text(&s, &ui, w, h);
        for secret in ["oracle", "prism", "template", "file:", "xq7"] {
            assert!(!text.to_lowercase().contains(secret), "{secret:?} drawn:\n{text}");
        }
        assert!(text.contains("item 1/2") && text.contains("item: Film number"), "{text}");
        assert!(text.contains("›·‹"), "the cursor cell is marked: {text}");
        check(&text, &format!("annotate_{w}x{h}"));
    }
    // Three explanations do not fit side by side in 80 columns: they are stacked.
    let three =
        Session::new(&study(3), &Annotations { annotator: "ann".into(), ..Annotations::default() }, 0);
    let text = draw_text(&three, &Ui::default(), 80, 24);
    assert!(text.contains("Explanations") && text.contains("Ann Lee directs again"), "{text}");
    for letter in ["A ", "B ", "C "] {
        assert!(text.lines().any(|l| l.starts_with(letter)), "{letter:?}: {text}");
    }
    check(&text, "annotate_stacked_80x24");
    on_key(&mut ui, &KeyMap::default(), KeyEvent::new(KeyCode::Char('?'), KeyModifiers::NONE), &s.screen());
    let help = draw_text(&s, &ui, 80, 24);
    assert!(help.contains("Help — any key closes") && help.contains("q/Ctrl-c"), "{help}");
}

/// `[tui.keys]` reaches the annotation screen as it reaches the explorer: in a config file,
/// `prefer_tie` moved to Space and `next_item` to Ctrl-N; the old keys no longer do it.
#[test]
fn annotation_keys_rebound_in_the_config_work_on_the_annotation_screen() {
    use prism_explorer::config::Settings;
    use prism_explorer::humaneval::annotate::Event;
    use prism_explorer::humaneval::Preference;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[tui.keys]\nprefer_tie = [\"space\"]\nnext_item = [\"ctrl-n\"]\n").unwrap();
    let settings = Settings::load_layers(None, Some(&config)).unwrap();
    let keys = KeyMap::new(&settings.tui.keys).unwrap();
    let two = study(2);
    let s = Session::new(&two, &Annotations { annotator: "ann".into(), ..Annotations::default() }, 0);
    let mut ui = Ui::default();
    let mut press = |code, modifiers| on_key(&mut ui, &keys, KeyEvent::new(code, modifiers), &s.screen());
    assert_eq!(press(KeyCode::Char(' '), KeyModifiers::NONE), [Event::Prefer(Preference::Tie)]);
    assert_eq!(press(KeyCode::Char('n'), KeyModifiers::CONTROL), [Event::Next]);
    assert!(press(KeyCode::Char('t'), KeyModifiers::NONE).is_empty(), "t is no longer the tie");
    assert!(press(KeyCode::Enter, KeyModifiers::NONE).is_empty(), "Enter no longer goes on");
    // The hint bar and the help say so.
    let theme = Theme::resolve("dark", false).unwrap();
    let look = Look { theme: &theme, keys: &keys };
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let screen = s.screen();
    ui.help = true;
    terminal.draw(|frame| draw(frame, &screen, &ui, &look, "s", "ann")).unwrap();
    let text: String = terminal.backend().buffer().content().iter().map(|c| c.symbol()).collect();
    assert!(text.contains("a/b/Space prefer") && text.contains("Ctrl-n next"), "{text}");
}

/// Answers the item on `screen` (120 columns, A on the left half, B on the right) with keys: the
/// xq7 text gets `xq7` (faithfulness, personalization, persuasiveness) and the preference, the
/// template's text `template`. The grid fills row by row: criterion by criterion, A then B.
fn answer(tmux: &Tmux, screen: &str, xq7: [u8; 3], template: [u8; 3]) {
    answer_then(tmux, screen, xq7, template, "Enter");
}

/// [`answer`], going on to the next item with `next`.
fn answer_then(tmux: &Tmux, screen: &str, xq7: [u8; 3], template: [u8; 3], next: &str) {
    let line = screen.lines().find(|l| l.contains(XQ7)).unwrap_or_else(|| panic!("{screen}"));
    let column = line[..line.find(XQ7).unwrap()].chars().count();
    let xq7_is_a = column < 60;
    let mut keys = String::new();
    for c in 0..3 {
        let (a, b) = if xq7_is_a { (xq7[c], template[c]) } else { (template[c], xq7[c]) };
        keys.push_str(&format!("{a}{b}"));
    }
    keys.push(if xq7_is_a { 'a' } else { 'b' });
    tmux.cmd(&["send-keys", "-t", "ann", "-l", &keys]);
    tmux.keys(&[next]);
}

/// A study of 5 demo items comparing the template with the xq7 explanations, in `home/study`.
fn new_study(home: &std::path::Path) -> PathBuf {
    let file = home.join("xq7-explanations.jsonl");
    write_xq7(&file);
    let dir = home.join("study");
    let systems = format!("template,xq7=file:{}", file.display());
    let args = ["human-eval", "new", "--dataset", "demo", "--out", dir.to_str().unwrap(), "--samples", "5"];
    let rest = ["--systems", &systems, "--attention-checks", "0", "--json"];
    let created = json(&command(&[&args[..], &rest[..]].concat(), home).output().unwrap());
    assert_eq!(created["items"], 5);
    dir
}

fn tmux_missing() -> bool {
    let missing = Command::new("tmux").arg("-V").output().is_err();
    if missing {
        eprintln!("SKIPPED humaneval_tui: tmux is not installed (CI installs it)");
    }
    missing
}

#[test]
fn annotate_from_the_explorer_and_come_back() {
    if tmux_missing() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let dir = new_study(home.path());
    let config = home.path().join("config.toml");
    // The explorer lends its bindings to the annotation screen: Enter no longer goes on, Ctrl-N does.
    std::fs::write(&config, "[ranker]\ndefault = \"pop\"\n[tui.keys]\nnext_item = [\"ctrl-n\"]\n").unwrap();
    let h = home.path().display();
    let script = format!(
        "env HOME={h} XDG_CONFIG_HOME={h} PRISM_CACHE_DIR={h} {} --config {} --dataset demo; \
         echo \"prism exited with $?\"; sleep 600",
        env!("CARGO_BIN_EXE_prism"),
        config.display(),
    );
    let tmux = Tmux { socket: format!("prism-he-explorer-{}", std::process::id()), session: "ann".into() };
    tmux.cmd(&["new-session", "-d", "-s", "ann", "-x", "120", "-y", "40", &script]);
    tmux.wait("the explorer", 60, |s| s.contains("Users 1000/1000"));
    tmux.keys(&["H"]);
    tmux.wait("the study prompt", 20, |s| s.contains("Study directory"));
    tmux.literal(dir.to_str().unwrap());
    tmux.keys(&["Enter"]);
    tmux.wait("the annotator prompt", 20, |s| s.contains("Your annotator name"));
    tmux.literal("ann");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait("the first item", 30, |s| s.contains("item 1/5 ·"));
    answer_then(&tmux, &screen, [4, 4, 4], [2, 2, 2], "Enter");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(tmux.capture().contains("item 1/5 ·"), "Enter was rebound away from next_item");
    tmux.keys(&["C-n"]);
    tmux.wait("the second item", 20, |s| s.contains("item 2/5 · 1 answered"));
    tmux.keys(&["q"]);
    let back = tmux.wait("the explorer again", 20, |s| s.contains("Users 1000/1000"));
    assert!(back.contains("ann: 1 of 5 items answered"), "{back}");
    tmux.keys(&["q"]);
    tmux.wait("the shell", 20, |s| s.contains("prism exited with 0"));
    let lines = std::fs::read_to_string(dir.join("annotations/ann.jsonl")).unwrap();
    assert_eq!(lines.lines().filter(|l| l.contains("\"judgement\"")).count(), 1, "{lines}");
}

#[test]
fn annotate_three_kill_resume_finish_and_report() {
    if tmux_missing() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let dir = new_study(home.path());
    let d = dir.to_str().unwrap();
    let h = home.path().display();
    let script = format!(
        "env HOME={h} XDG_CONFIG_HOME={h} PRISM_CACHE_DIR={h} {} human-eval resume {d} --annotator ann; \
         echo \"prism exited with $?\"; stty -a | tr ' ;' '\\n\\n' | grep -x -- '-*icanon'; sleep 600",
        env!("CARGO_BIN_EXE_prism"),
    );
    let tmux = Tmux { socket: format!("prism-he-test-{}", std::process::id()), session: "ann".into() };
    let start = || tmux.cmd(&["new-session", "-d", "-s", "ann", "-x", "120", "-y", "40", &script]);
    let mut seen = String::new();
    let first = ([4, 5, 3], [2, 3, 1]);
    let last = ([5, 5, 2], [1, 3, 1]);

    start();
    for k in 1..=3 {
        let screen = tmux.wait(&format!("item {k}"), 60, |s| s.contains(&format!("item {k}/5 ·")));
        answer(&tmux, &screen, first.0, first.1);
        seen.push_str(&screen);
    }
    // Item 4 appears only after the third answer was appended and fsynced.
    seen.push_str(&tmux.wait("item 4", 20, |s| s.contains("item 4/5 · 3 answered")));
    tmux.cmd(&["kill-session", "-t", "ann"]);
    let lines = std::fs::read_to_string(dir.join("annotations/ann.jsonl")).unwrap();
    assert_eq!(lines.lines().filter(|l| l.contains("\"judgement\"")).count(), 3, "{lines}");

    start();
    let fourth = tmux.wait("the resumed session at item 4", 60, |s| s.contains("item 4/5 · 3 answered"));
    // Back to item 3, whose answer is shown as recorded, and on again without a change.
    tmux.keys(&["p"]);
    let third = tmux.wait("item 3", 20, |s| s.contains("item 3/5 ·"));
    assert!(third.contains("your recorded answer"), "{third}");
    assert!(third.contains("[A]") || third.contains("[B]"), "the recorded preference: {third}");
    tmux.keys(&["Enter"]);
    tmux.wait("item 4 again", 20, |s| s.contains("item 4/5 ·"));
    answer(&tmux, &fourth, last.0, last.1);
    let screen = tmux.wait("item 5", 20, |s| s.contains("item 5/5 · 4 answered"));
    answer(&tmux, &screen, last.0, last.1);
    seen.push_str(&screen);
    seen.push_str(&tmux.wait("the end", 20, |s| s.contains("Every item is answered")));
    tmux.keys(&["q"]);
    let shell =
        tmux.wait("the shell after quitting", 20, |s| s.lines().any(|l| l.trim().ends_with("icanon")));
    assert!(shell.contains("prism exited with 0"), "{shell}");
    assert!(shell.contains("5 of 5 items answered by ann"), "{shell}");
    assert!(shell.lines().any(|l| l.trim() == "icanon"), "raw mode is off again: {shell}");
    for secret in ["xq7", "template", "file:"] {
        assert!(!seen.contains(secret), "the annotator saw {secret:?}");
    }

    let report = json(&command(&["human-eval", "report", d, "--json"], home.path()).output().unwrap());
    let mean = |a: u8, b: u8| (3.0 * f64::from(a) + 2.0 * f64::from(b)) / 5.0;
    for (system, (early, late)) in [("xq7", (first.0, last.0)), ("template", (first.1, last.1))] {
        for (c, criterion) in ["faithfulness", "personalization", "persuasiveness"].iter().enumerate() {
            let s = &report["scores"][system][criterion];
            assert_eq!(s["n"].as_u64(), Some(5), "{system} {criterion}: {s}");
            let got = s["mean"].as_f64().unwrap();
            assert!((got - mean(early[c], late[c])).abs() < 1e-9, "{system} {criterion}: {got}");
        }
    }
    let pair = &report["preferences"]["pairwise"][0];
    assert_eq!((pair["system"].as_str(), pair["losses"].as_u64()), (Some("template"), Some(5)), "{pair}");
    assert_eq!(report["annotators"][0]["answered"], 5);
    assert!(report["median_ms_per_item"].as_f64().is_some_and(|ms| ms > 0.0), "time per item is recorded");
}

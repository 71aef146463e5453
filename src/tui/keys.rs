//! Key bindings as data: one table of actions with their default keys and help text, for the
//! explorer and the annotation screen alike ([`Screen`]). The help overlays and the key-hint bars
//! are built from it, and `[tui.keys]` in the config replaces an action's keys by name.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Everything a key can ask for. Typing into the filter or a prompt is not an action: those modes
/// take characters directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Quit,
    Help,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    FocusNext,
    FocusPrev,
    FocusLeft,
    FocusRight,
    Select,
    Filter,
    Back,
    NextRanker,
    Retry,
    Race,
    NextSystem,
    StartJob,
    AttachJob,
    CancelJob,
    Annotate,
    Theme,
    TabExplore,
    TabPerformance,
    TabJobs,
    TabAbout,
    /// Annotation: record the answer and show the next item.
    NextItem,
    /// Annotation: back to the previous item.
    PreviousItem,
    /// Annotation: write a note on the item.
    Note,
    PreferTie,
    PreferA,
    PreferB,
    PreferC,
}

/// A screen with keys of its own. A key means one action per screen; the two screens share the
/// moves, quit and help.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    Explorer,
    Annotation,
}

/// Where an action is worth a hint in the bar at the bottom.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    Everywhere,
    Lists,
    Explore,
    Jobs,
    /// Only on the annotation screen.
    Annotation,
}

#[derive(Clone)]
pub struct Binding {
    pub action: Action,
    /// The name `[tui.keys]` uses.
    pub name: &'static str,
    pub keys: Vec<Key>,
    pub help: &'static str,
    /// The bar's short label; `None` keeps the action out of the bar (it is still in the help).
    pub hint: Option<&'static str>,
    pub context: Context,
}

impl Binding {
    /// Whether the binding works on `screen`.
    pub fn on(&self, screen: Screen) -> bool {
        use Action::*;
        let shared = matches!(self.action, Quit | Help | Up | Down | FocusLeft | FocusRight);
        match screen {
            Screen::Explorer => self.context != Context::Annotation,
            Screen::Annotation => self.context == Context::Annotation || shared,
        }
    }
}

/// A key with its modifiers, as written in the config ("ctrl-c", "G", "pagedown").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub modifiers: KeyModifiers,
}

impl Key {
    pub fn parse(text: &str) -> Result<Key> {
        let mut modifiers = KeyModifiers::NONE;
        let mut rest = text;
        loop {
            let lower = rest.to_ascii_lowercase();
            let (flag, len) = if lower.starts_with("ctrl-") {
                (KeyModifiers::CONTROL, 5)
            } else if lower.starts_with("alt-") {
                (KeyModifiers::ALT, 4)
            } else if lower.starts_with("shift-") {
                (KeyModifiers::SHIFT, 6)
            } else {
                break;
            };
            modifiers |= flag;
            rest = &rest[len..];
        }
        let code = match rest.to_ascii_lowercase().as_str() {
            "enter" => KeyCode::Enter,
            "backspace" => KeyCode::Backspace,
            "esc" => KeyCode::Esc,
            "tab" => KeyCode::Tab,
            "backtab" => KeyCode::BackTab,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "pageup" => KeyCode::PageUp,
            "pagedown" => KeyCode::PageDown,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "space" => KeyCode::Char(' '),
            f if f.len() > 1
                && f.starts_with('f')
                && f[1..].parse::<u8>().is_ok_and(|n| (1..=12).contains(&n)) =>
            {
                KeyCode::F(f[1..].parse().expect("checked above"))
            }
            _ => {
                let mut chars = rest.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => KeyCode::Char(c),
                    _ => bail!(
                        "'{text}' is not a key: expected a character or one of enter, backspace, esc, tab, backtab, \
                         up, down, left, right, pageup, pagedown, home, end, space, f1..f12, with optional \
                         ctrl-/alt-/shift- prefixes"
                    ),
                }
            }
        };
        Ok(Key { code, modifiers })
    }

    fn plain(c: char) -> Key {
        Key { code: KeyCode::Char(c), modifiers: KeyModifiers::NONE }
    }

    fn code(code: KeyCode) -> Key {
        Key { code, modifiers: KeyModifiers::NONE }
    }

    fn ctrl(c: char) -> Key {
        Key { code: KeyCode::Char(c), modifiers: KeyModifiers::CONTROL }
    }

    /// Terminals report a shifted letter as the upper-case character, with or without SHIFT; only
    /// CONTROL and ALT tell keys apart.
    pub fn matches(&self, event: &KeyEvent) -> bool {
        let significant = KeyModifiers::CONTROL | KeyModifiers::ALT;
        let shift_matters = !matches!(event.code, KeyCode::Char(_));
        let mask = if shift_matters { significant | KeyModifiers::SHIFT } else { significant };
        self.code == event.code && (self.modifiers & mask) == (event.modifiers & mask)
    }

    pub fn label(&self) -> String {
        let mut out = String::new();
        if self.modifiers.contains(KeyModifiers::CONTROL) {
            out.push_str("Ctrl-");
        }
        if self.modifiers.contains(KeyModifiers::ALT) {
            out.push_str("Alt-");
        }
        match self.code {
            KeyCode::Char(' ') => out.push_str("Space"),
            KeyCode::Char(c) => out.push(c),
            KeyCode::Enter => out.push_str("Enter"),
            KeyCode::Backspace => out.push_str("Backspace"),
            KeyCode::Esc => out.push_str("Esc"),
            KeyCode::Tab => out.push_str("Tab"),
            KeyCode::BackTab => out.push_str("S-Tab"),
            KeyCode::Up => out.push('↑'),
            KeyCode::Down => out.push('↓'),
            KeyCode::Left => out.push('←'),
            KeyCode::Right => out.push('→'),
            KeyCode::PageUp => out.push_str("PgUp"),
            KeyCode::PageDown => out.push_str("PgDn"),
            KeyCode::Home => out.push_str("Home"),
            KeyCode::End => out.push_str("End"),
            KeyCode::F(n) => out.push_str(&format!("F{n}")),
            other => out.push_str(&format!("{other:?}")),
        }
        out
    }
}

#[derive(Clone)]
pub struct KeyMap {
    pub bindings: Vec<Binding>,
}

impl KeyMap {
    /// The defaults with `overrides` (action name → keys) applied; an unknown action or key is an
    /// error naming it.
    pub fn new(overrides: &BTreeMap<String, Vec<String>>) -> Result<KeyMap> {
        let mut map = KeyMap::default();
        for (name, keys) in overrides {
            let Some(binding) = map.bindings.iter_mut().find(|b| b.name == name) else {
                let names: Vec<&str> = map.bindings.iter().map(|b| b.name).collect();
                bail!("[tui.keys]: unknown action '{name}'; the actions are {}", names.join(", "));
            };
            if keys.is_empty() {
                bail!("[tui.keys]: '{name}' needs at least one key");
            }
            binding.keys = keys.iter().map(|k| Key::parse(k)).collect::<Result<_>>()?;
        }
        Ok(map)
    }

    /// The explorer's action for `event`.
    pub fn action(&self, event: &KeyEvent) -> Option<Action> {
        self.action_on(Screen::Explorer, event)
    }

    pub fn action_on(&self, screen: Screen, event: &KeyEvent) -> Option<Action> {
        // Ctrl-C always quits, whatever the config says: the terminal must never be a trap.
        if Key::ctrl('c').matches(event) {
            return Some(Action::Quit);
        }
        self.on(screen).find(|b| b.keys.iter().any(|k| k.matches(event))).map(|b| b.action)
    }

    /// The bindings that work on `screen`, in table order.
    pub fn on(&self, screen: Screen) -> impl Iterator<Item = &Binding> {
        self.bindings.iter().filter(move |b| b.on(screen))
    }

    pub fn binding(&self, action: Action) -> &Binding {
        self.bindings.iter().find(|b| b.action == action).expect("every action has a binding")
    }

    /// "a/b" for the action's keys.
    pub fn keys_label(&self, action: Action) -> String {
        let labels: Vec<String> = self.binding(action).keys.iter().map(Key::label).collect();
        labels.join("/")
    }
}

impl Default for KeyMap {
    fn default() -> KeyMap {
        use Action::*;
        use Context::*;
        use KeyCode as K;
        let b = |action, name, keys: Vec<Key>, help, hint, context| Binding {
            action,
            name,
            keys,
            help,
            hint,
            context,
        };
        let bindings = vec![
            b(Quit, "quit", vec![Key::plain('q'), Key::ctrl('c')], "quit", Some("quit"), Everywhere),
            b(Help, "help", vec![Key::plain('?'), Key::code(K::F(1))], "this help", Some("help"), Everywhere),
            b(Up, "up", vec![Key::plain('k'), Key::code(K::Up)], "up / scroll up", None, Lists),
            b(Down, "down", vec![Key::plain('j'), Key::code(K::Down)], "down / scroll down", None, Lists),
            b(PageUp, "page_up", vec![Key::code(K::PageUp), Key::ctrl('u')], "page up", None, Lists),
            b(PageDown, "page_down", vec![Key::code(K::PageDown), Key::ctrl('d')], "page down", None, Lists),
            b(Top, "top", vec![Key::plain('g'), Key::code(K::Home)], "first row", None, Lists),
            b(Bottom, "bottom", vec![Key::plain('G'), Key::code(K::End)], "last row", None, Lists),
            b(FocusNext, "focus_next", vec![Key::code(K::Tab)], "next panel", Some("panel"), Explore),
            b(FocusPrev, "focus_prev", vec![Key::code(K::BackTab)], "previous panel", None, Explore),
            b(
                FocusLeft,
                "focus_left",
                vec![Key::plain('h'), Key::code(K::Left)],
                "panel to the left",
                None,
                Explore,
            ),
            b(
                FocusRight,
                "focus_right",
                vec![Key::plain('l'), Key::code(K::Right)],
                "panel to the right",
                None,
                Explore,
            ),
            b(Select, "select", vec![Key::code(K::Enter)], "choose user / item", Some("choose"), Lists),
            b(Filter, "filter", vec![Key::plain('/')], "fuzzy filter users", Some("filter"), Explore),
            b(Back, "back", vec![Key::code(K::Esc)], "clear filter / close", None, Everywhere),
            b(NextRanker, "next_ranker", vec![Key::plain('r')], "switch ranker", Some("ranker"), Explore),
            b(Retry, "retry", vec![Key::plain('e')], "explain again", Some("re-explain"), Explore),
            b(Race, "race", vec![Key::plain('d')], "race models (demo)", Some("race"), Explore),
            b(
                NextSystem,
                "next_system",
                vec![Key::plain('x')],
                "show the next system's column (when not all fit)",
                None,
                Explore,
            ),
            b(
                StartJob,
                "start_job",
                vec![Key::plain('s')],
                "start quick distill job",
                Some("start job"),
                Jobs,
            ),
            b(AttachJob, "attach_job", vec![Key::plain('a')], "attach to a job dir", Some("attach"), Jobs),
            b(CancelJob, "cancel_job", vec![Key::plain('c')], "cancel / detach job", Some("cancel"), Jobs),
            b(
                Annotate,
                "annotate",
                vec![Key::plain('H')],
                "annotate a human-evaluation study",
                None,
                Everywhere,
            ),
            b(Theme, "theme", vec![Key::plain('t')], "dark / light theme", None, Everywhere),
            b(TabExplore, "tab_explore", vec![Key::plain('1')], "Explore screen", None, Everywhere),
            b(
                TabPerformance,
                "tab_performance",
                vec![Key::plain('2')],
                "Performance screen",
                None,
                Everywhere,
            ),
            b(TabJobs, "tab_jobs", vec![Key::plain('3')], "Jobs screen", None, Everywhere),
            b(TabAbout, "tab_about", vec![Key::plain('4')], "About screen", None, Everywhere),
            b(
                NextItem,
                "next_item",
                vec![Key::code(K::Enter)],
                "record the answer, show the next item",
                Some("next"),
                Annotation,
            ),
            b(
                PreviousItem,
                "previous_item",
                vec![Key::plain('p'), Key::code(K::Backspace)],
                "back to the previous item to change it",
                Some("back"),
                Annotation,
            ),
            b(
                Note,
                "note",
                vec![Key::plain('n')],
                "write a note (Enter keeps it, Esc drops it)",
                Some("note"),
                Annotation,
            ),
            b(PreferA, "prefer_a", vec![Key::plain('a')], "prefer A", None, Annotation),
            b(PreferB, "prefer_b", vec![Key::plain('b')], "prefer B", None, Annotation),
            b(PreferC, "prefer_c", vec![Key::plain('c')], "prefer C", None, Annotation),
            b(PreferTie, "prefer_tie", vec![Key::plain('t')], "prefer neither: a tie", None, Annotation),
        ];
        KeyMap { bindings }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn parses_names_modifiers_and_characters() {
        assert_eq!(
            Key::parse("ctrl-q").unwrap(),
            Key { code: KeyCode::Char('q'), modifiers: KeyModifiers::CONTROL }
        );
        assert_eq!(Key::parse("PageDown").unwrap().code, KeyCode::PageDown);
        assert_eq!(Key::parse("f5").unwrap().code, KeyCode::F(5));
        assert_eq!(Key::parse("G").unwrap().code, KeyCode::Char('G'));
        let err = Key::parse("hyper-x").unwrap_err().to_string();
        assert!(err.contains("'hyper-x' is not a key"), "{err}");
    }

    #[test]
    fn overrides_replace_defaults_and_unknown_actions_are_named() {
        let overrides = BTreeMap::from([("quit".to_owned(), vec!["x".to_owned()])]);
        let map = KeyMap::new(&overrides).unwrap();
        assert_eq!(map.action(&event(KeyCode::Char('x'), KeyModifiers::NONE)), Some(Action::Quit));
        assert_eq!(map.action(&event(KeyCode::Char('q'), KeyModifiers::NONE)), None);
        // Ctrl-C quits even when rebinding quit dropped it.
        assert_eq!(map.action(&event(KeyCode::Char('c'), KeyModifiers::CONTROL)), Some(Action::Quit));
        let bad = BTreeMap::from([("fly".to_owned(), vec!["x".to_owned()])]);
        let err = KeyMap::new(&bad).err().unwrap().to_string();
        assert!(err.contains("unknown action 'fly'") && err.contains("quit"), "{err}");
    }

    #[test]
    fn shifted_letters_match_with_or_without_the_shift_flag() {
        let map = KeyMap::default();
        assert_eq!(map.action(&event(KeyCode::Char('G'), KeyModifiers::SHIFT)), Some(Action::Bottom));
        assert_eq!(map.action(&event(KeyCode::Char('G'), KeyModifiers::NONE)), Some(Action::Bottom));
        assert_eq!(map.action(&event(KeyCode::Char('d'), KeyModifiers::CONTROL)), Some(Action::PageDown));
        assert_eq!(map.action(&event(KeyCode::Char('d'), KeyModifiers::NONE)), Some(Action::Race));
    }

    #[test]
    fn every_action_has_a_distinct_name_and_on_each_screen_a_distinct_key() {
        let map = KeyMap::default();
        let mut names: Vec<&str> = map.bindings.iter().map(|b| b.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), map.bindings.len());
        for screen in [Screen::Explorer, Screen::Annotation] {
            let bindings: Vec<&Binding> = map.on(screen).collect();
            for (i, a) in bindings.iter().enumerate() {
                for b in &bindings[i + 1..] {
                    for key in &a.keys {
                        assert!(!b.keys.contains(key), "{} and {} share {}", a.name, b.name, key.label());
                    }
                }
            }
        }
    }

    #[test]
    fn the_screens_share_moves_quit_and_help_and_keep_their_own_actions() {
        let map = KeyMap::default();
        let t = event(KeyCode::Char('t'), KeyModifiers::NONE);
        assert_eq!(map.action(&t), Some(Action::Theme));
        assert_eq!(map.action_on(Screen::Annotation, &t), Some(Action::PreferTie));
        let l = event(KeyCode::Char('l'), KeyModifiers::NONE);
        assert_eq!(map.action_on(Screen::Annotation, &l), Some(Action::FocusRight));
        let enter = event(KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(map.action(&enter), Some(Action::Select));
        assert_eq!(map.action_on(Screen::Annotation, &enter), Some(Action::NextItem));
        let rebound =
            KeyMap::new(&BTreeMap::from([("prefer_tie".to_owned(), vec!["space".to_owned()])])).unwrap();
        let space = event(KeyCode::Char(' '), KeyModifiers::NONE);
        assert_eq!(rebound.action_on(Screen::Annotation, &space), Some(Action::PreferTie));
        assert_eq!(rebound.action_on(Screen::Annotation, &t), None);
    }
}

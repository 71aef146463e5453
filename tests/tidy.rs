//! Checks that keep the map true, in the manner of rust-analyzer's `tidy` tests: the room order
//! that `ARCHITECTURE.md` gives is the order of the code's dependencies (no `crate::` path points up),
//! every source file opens with a `//!` line saying what it is, and every file the map names exists.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const ORDER_LINE: &str = "Rooms from top to bottom";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn architecture() -> String {
    std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap()
}

/// The rooms in the order of the line `ARCHITECTURE.md` opens the code map with.
fn room_order(architecture: &str) -> Vec<String> {
    let line = architecture
        .lines()
        .find(|l| l.starts_with(ORDER_LINE))
        .unwrap_or_else(|| panic!("ARCHITECTURE.md has no line starting with {ORDER_LINE:?}"));
    line.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    files.sort();
    files
}

/// The room a source file belongs to: its folder under `src/`, or its stem for a one-file room;
/// `None` for the crate's roots (`lib.rs`, `main.rs`), which sit above every room.
fn room_of(file: &Path) -> Option<String> {
    let relative = file.strip_prefix(root().join("src")).unwrap();
    let first = relative.components().next()?.as_os_str().to_str()?;
    match first {
        "lib.rs" | "main.rs" => None,
        name => Some(name.trim_end_matches(".rs").to_string()),
    }
}

/// The rooms a file names through `crate::ROOM` paths in its code (comments left out), including
/// grouped imports (`use crate::{a::X, b}`).
fn rooms_used(source: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let mut depth = 1;
                let mut name = String::new();
                let mut expecting_name = true;
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        ',' if depth == 1 => expecting_name = true,
                        c if expecting_name && depth == 1 && (c.is_alphanumeric() || c == '_') => {
                            name.push(c)
                        }
                        _ => {
                            if !name.is_empty() {
                                used.insert(std::mem::take(&mut name));
                            }
                            if !c.is_whitespace() {
                                expecting_name = false;
                            }
                        }
                    }
                    if depth == 0 {
                        break;
                    }
                }
                if !name.is_empty() {
                    used.insert(name);
                }
            } else {
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    used.insert(name);
                }
            }
        }
    }
    used
}

/// Every `crate::ROOM` a file uses must be its own room or one listed below it.
fn upward_imports(order: &[String], files: &[(PathBuf, String)]) -> Vec<String> {
    let rank = |room: &str| order.iter().position(|r| r == room);
    let mut faults = Vec::new();
    for (path, source) in files {
        let Some(room) = room_of(path) else { continue };
        let Some(own) = rank(&room) else {
            faults.push(format!("{}: room `{room}` is not in ARCHITECTURE.md's order", path.display()));
            continue;
        };
        for used in rooms_used(source) {
            match rank(&used) {
                Some(other) if other < own => faults.push(format!(
                    "{}: `{room}` uses `crate::{used}`, which ARCHITECTURE.md lists above it",
                    path.strip_prefix(root()).unwrap().display()
                )),
                Some(_) => {}
                None => faults.push(format!(
                    "{}: `crate::{used}` is not a room in ARCHITECTURE.md's order",
                    path.strip_prefix(root()).unwrap().display()
                )),
            }
        }
    }
    faults
}

fn read_sources() -> Vec<(PathBuf, String)> {
    sources().into_iter().map(|p| (p.clone(), std::fs::read_to_string(&p).unwrap())).collect()
}

#[test]
fn imports_point_down_the_room_order_of_architecture_md() {
    let order = room_order(&architecture());
    let files = read_sources();
    let rooms: BTreeSet<String> = files.iter().filter_map(|(p, _)| room_of(p)).collect();
    let listed: BTreeSet<String> = order.iter().cloned().collect();
    assert_eq!(rooms, listed, "the rooms in src/ and those in ARCHITECTURE.md's order differ");
    let faults = upward_imports(&order, &files);
    assert!(faults.is_empty(), "imports that point up:\n{}", faults.join("\n"));
}

#[test]
fn an_upward_import_is_found() {
    let order: Vec<String> = ["tui", "model"].map(String::from).to_vec();
    let model = root().join("src/model/engine.rs");
    let up = vec![(model.clone(), "use crate::tui::App;\n".to_string())];
    assert_eq!(upward_imports(&order, &up).len(), 1);
    let grouped = vec![(model.clone(), "use crate::{model::X, tui::{a, b}};\n".to_string())];
    assert_eq!(upward_imports(&order, &grouped).len(), 1);
    let down = vec![(root().join("src/tui/app.rs"), "use crate::model::Engine; // crate::tui\n".to_string())];
    assert!(upward_imports(&order, &down).is_empty());
}

#[test]
fn every_source_file_opens_with_a_doc_line() {
    let missing: Vec<String> = read_sources()
        .into_iter()
        .filter(|(_, source)| !source.starts_with("//!"))
        .map(|(p, _)| p.strip_prefix(root()).unwrap().display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a `//!` first line: {missing:?}");
}

fn project_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if name == "target" || name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            project_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Files the map names (a backquoted path with a folder and an extension, as written: relative to
/// the project, to `src/`, or to a room, like `stats/special.rs`) must exist.
#[test]
fn files_named_in_architecture_md_exist() {
    let text = architecture();
    let mut files = Vec::new();
    project_files(root(), &mut files);
    let extensions = [".rs", ".md", ".toml", ".sh", ".py"];
    let missing: Vec<&str> = text
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| s.contains('/') && !s.contains(' ') && !s.contains('*') && !s.contains('<'))
        .filter(|s| extensions.iter().any(|e| s.ends_with(e)))
        .filter(|s| !files.iter().any(|f| f.ends_with(s)))
        .collect();
    assert!(missing.is_empty(), "ARCHITECTURE.md names files that do not exist: {missing:?}");
}

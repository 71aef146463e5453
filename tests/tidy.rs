//! Checks that keep the map true, in the manner of rust-analyzer's `tidy` tests: the room order
//! that `ARCHITECTURE.md` gives is the order of the code's dependencies (no `crate::` path points up),
//! no two files inside a room import each other in a circle, every source file opens with a `//!`
//! line saying what it is (and, past [`MAX_LINES`] lines, why it is that long), and every file the
//! map names exists.

use std::collections::{BTreeMap, BTreeSet};
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

/// A module path inside the crate, e.g. `["distill", "job"]` for `src/distill/job.rs` (and
/// `["distill"]` for `src/distill/mod.rs`).
type ModPath = Vec<String>;

fn module_of(file: &Path) -> Option<ModPath> {
    let relative = file.strip_prefix(root().join("src")).ok()?.with_extension("");
    let mut path: ModPath =
        relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    if path.last().is_some_and(|l| l == "mod") {
        path.pop();
    }
    match path.as_slice() {
        [only] if only == "lib" || only == "main" => None,
        _ => Some(path),
    }
}

/// The code of a line: what is left of it before a `//` comment, with the insides of string
/// literals blanked (a path in a message is no import).
fn code_of(line: &str) -> String {
    let mut code = String::with_capacity(line.len());
    let mut in_string = false;
    let mut chars = line.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if !in_string && (line[at..].starts_with("'\"'") || line[at..].starts_with("'\\\"'")) {
            // A quote as a character literal opens no string.
            let skip = if line[at..].starts_with("'\"'") { 2 } else { 3 };
            code.push_str(&" ".repeat(skip + 1));
            for _ in 0..skip {
                chars.next();
            }
            continue;
        }
        if !in_string && line[at..].starts_with("//") {
            break;
        }
        match c {
            '"' => {
                in_string = !in_string;
                code.push('"');
            }
            '\\' if in_string => {
                code.push_str("  ");
                chars.next();
            }
            _ if in_string => code.push(' '),
            _ => code.push(c),
        }
    }
    code
}

/// The paths a `use` tree at the start of `text` names, expanded: `a::{b::C, d}` gives `a::b::C`
/// and `a::d`. Returns them and how much of `text` the tree took.
fn path_tree(text: &str) -> (Vec<Vec<String>>, usize) {
    let bytes = text.as_bytes();
    let mut at = 0;
    let mut segments = Vec::new();
    loop {
        if bytes.get(at) == Some(&b'{') {
            at += 1;
            let mut paths = Vec::new();
            loop {
                while at < bytes.len() && matches!(bytes[at], b' ' | b'\t' | b',') {
                    at += 1;
                }
                if at >= bytes.len() || bytes[at] == b'}' {
                    at += 1;
                    break;
                }
                let (inner, used) = path_tree(&text[at..]);
                if used == 0 {
                    at += 1;
                } else {
                    paths.extend(inner.into_iter().map(|p| [segments.clone(), p].concat()));
                    at += used;
                }
            }
            if paths.is_empty() {
                paths.push(segments);
            }
            return (paths, at.min(text.len()));
        }
        let name: String =
            text[at..].chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '*').collect();
        if name.is_empty() {
            return (vec![segments], at);
        }
        at += name.len();
        segments.push(name);
        if text[at..].starts_with("::") {
            at += 2;
        } else {
            return (vec![segments], at);
        }
    }
}

/// The `crate::`, `super::` and `self::` paths of a line of code.
fn paths_in(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(found) = code[from..].find(start) {
            let at = from + found;
            from = at + start.len();
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            paths.extend(path_tree(&code[at..]).0);
        }
    }
    paths
}

/// Paths that start with the name of a child module of `here` (`use app::App`, `keys::bind(…)`
/// in a `mod.rs`), relative to `here`.
fn child_paths(code: &str, here: &[String], modules: &BTreeMap<ModPath, PathBuf>) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for (at, _) in code.match_indices("::") {
        let name: String =
            code[..at].chars().rev().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let name: String = name.chars().rev().collect();
        let start = at - name.len();
        let before = code[..start].chars().next_back();
        let child: ModPath = here.iter().cloned().chain([name.clone()]).collect();
        if name.is_empty()
            || before.is_some_and(|c| c == ':' || c.is_alphanumeric())
            || !modules.contains_key(&child)
        {
            continue;
        }
        paths.extend(path_tree(&code[start..]).0.into_iter().map(|p| [vec!["self".to_string()], p].concat()));
    }
    paths
}

/// The files each file imports from its own room (`use crate::ROOM::…`, `super::…`), as edges
/// `from → to` with the line that makes each. A folder's `mod.rs` is its entrance — declarations,
/// re-exports, dispatch to its files and what they all share — so it takes no part: a name it
/// re-exports (`pub use job::Job`) counts as the file's that defines it. Test modules inside a file
/// count as the file.
fn room_imports(files: &[(PathBuf, String)]) -> BTreeMap<PathBuf, BTreeMap<PathBuf, String>> {
    let modules: BTreeMap<ModPath, PathBuf> =
        files.iter().filter_map(|(p, _)| Some((module_of(p)?, p.clone()))).collect();
    let mut reexports: BTreeMap<ModPath, ModPath> = BTreeMap::new();
    for (path, source) in files {
        let (Some(module), true) = (module_of(path), path.ends_with("mod.rs")) else { continue };
        let code: String = source.lines().map(code_of).collect::<Vec<_>>().join(" ");
        for (at, _) in code.match_indices("pub use ") {
            for named in path_tree(&code[at + "pub use ".len()..]).0 {
                if named.len() >= 2 && !["crate", "super", "self"].contains(&named[0].as_str()) {
                    let item = [module.clone(), vec![named.last().unwrap().clone()]].concat();
                    reexports.insert(item, [module.clone(), vec![named[0].clone()]].concat());
                }
            }
        }
    }
    let resolve = |path: &[String]| -> Option<&PathBuf> {
        (1..=path.len()).rev().find_map(|n| {
            let file = modules.get(&path[..n])?;
            let reexported = (n < path.len()).then(|| reexports.get(&path[..=n])).flatten();
            Some(reexported.and_then(|m| modules.get(m)).unwrap_or(file))
        })
    };
    let mut edges: BTreeMap<PathBuf, BTreeMap<PathBuf, String>> = BTreeMap::new();
    let entrance = |p: &Path| p.ends_with("mod.rs");
    for (path, source) in files {
        let Some(module) = module_of(path).filter(|_| !entrance(path)) else { continue };
        // Inline modules (`mod tests {`) open at a brace depth; `super::` inside them is one
        // level further up.
        let mut inline: Vec<(String, i64)> = Vec::new();
        let mut depth = 0i64;
        for (number, line) in source.lines().enumerate() {
            let code = code_of(line);
            let code = code.as_str();
            let trimmed = code.trim_start();
            let declaration = trimmed.strip_prefix("pub ").unwrap_or(trimmed);
            if let Some(name) = declaration.strip_prefix("mod ").and_then(|r| r.strip_suffix('{')) {
                inline.push((name.trim().to_string(), depth));
            }
            {
                let here: ModPath =
                    module.iter().cloned().chain(inline.iter().map(|(n, _)| n.clone())).collect();
                for named in paths_in(code).into_iter().chain(child_paths(code, &here, &modules)) {
                    let mut base = if named[0] == "crate" { Vec::new() } else { here.clone() };
                    let mut rest = if named[0] == "crate" { &named[1..] } else { &named[..] };
                    while let Some(first) = rest.first().filter(|f| *f == "super" || *f == "self") {
                        if first == "super" {
                            base.pop();
                        }
                        rest = &rest[1..];
                    }
                    let absolute: ModPath = base.into_iter().chain(rest.iter().cloned()).collect();
                    let Some(target) = resolve(&absolute) else { continue };
                    if target != path && room_of(target) == room_of(path) && !entrance(target) {
                        edges
                            .entry(path.clone())
                            .or_default()
                            .entry(target.clone())
                            .or_insert_with(|| format!("line {}: {}", number + 1, line.trim()));
                    }
                }
            }
            depth += code.matches('{').count() as i64 - code.matches('}').count() as i64;
            while inline.last().is_some_and(|(_, open)| depth <= *open) {
                inline.pop();
            }
        }
    }
    edges
}

/// The circles among `edges`: each strongly connected set of two or more files, with the imports
/// that tie it.
fn circles(edges: &BTreeMap<PathBuf, BTreeMap<PathBuf, String>>) -> Vec<String> {
    let reaches = |from: &PathBuf| -> BTreeSet<PathBuf> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(file) = todo.pop() {
            for next in edges.get(&file).into_iter().flat_map(|e| e.keys()) {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reach: BTreeMap<&PathBuf, BTreeSet<PathBuf>> = edges.keys().map(|f| (f, reaches(f))).collect();
    let mut done = BTreeSet::new();
    let mut found = Vec::new();
    for file in edges.keys() {
        if done.contains(file) || !reach[file].contains(file) {
            continue;
        }
        let circle: BTreeSet<&PathBuf> =
            reach[file].iter().filter(|other| reach.get(other).is_some_and(|r| r.contains(file))).collect();
        let show = |p: &Path| p.strip_prefix(root()).unwrap_or(p).display().to_string();
        let mut text =
            format!("circle of {}:", circle.iter().map(|p| show(p)).collect::<Vec<_>>().join(", "));
        for from in &circle {
            for (to, why) in &edges[*from] {
                if circle.contains(to) {
                    text.push_str(&format!("\n    {} -> {} ({why})", show(from), show(to)));
                }
            }
        }
        done.extend(circle.into_iter().cloned());
        found.push(text);
    }
    found
}

#[test]
fn no_two_files_of_a_room_import_each_other_in_a_circle() {
    let found = circles(&room_imports(&read_sources()));
    assert!(found.is_empty(), "imports in a circle inside a room:\n{}", found.join("\n"));
}

#[test]
fn a_circle_inside_a_room_is_found() {
    let src = root().join("src");
    let file = |path: &str, text: &str| (src.join(path), text.to_string());
    let tree = [
        file("distill/mod.rs", "//! d\npub mod job;\npub mod spec;\npub mod shards;\npub use job::Job;\n"),
        file("distill/spec.rs", "//! s\nuse crate::data::Dataset;\npub struct JobSpec;\n"),
        file("distill/shards.rs", "//! s\nuse super::spec::JobSpec;\n"),
        file("distill/job.rs", "//! j\nuse super::{shards, spec::JobSpec};\n"),
        file("data/mod.rs", "//! d\npub struct Dataset;\n"),
    ];
    assert!(circles(&room_imports(&tree)).is_empty(), "{:?}", circles(&room_imports(&tree)));
    // Through the room's re-export, a grouped import, and a test module's `super::super`.
    let mut circle = tree.to_vec();
    circle[1].1.push_str("fn f() -> crate::distill::Job { todo!() }\n");
    assert_eq!(circles(&room_imports(&circle)).len(), 1, "{:?}", circles(&room_imports(&circle)));
    let mut circle = tree.to_vec();
    circle[1].1.push_str("#[cfg(test)]\nmod tests {\n    use super::super::{job::Job, shards};\n}\n");
    let found = circles(&room_imports(&circle));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("distill/spec.rs -> ") && found[0].contains("distill/job.rs"), "{found:?}");
    // A comment or a string naming the other file is no import.
    let mut quiet = tree.to_vec();
    quiet[1].1.push_str("// see super::job::Job\nconst S: &str = \"// super::job\";\n");
    assert!(circles(&room_imports(&quiet)).is_empty());
}

/// Lines a source file may have before its opening `//!` lines must say why it is longer.
const MAX_LINES: usize = 800;
/// The phrase that starts the reason, in the file's opening `//!` block.
const WHY_LONG: &str = "//! Why it is long:";
fn too_long(files: &[(PathBuf, String)]) -> Vec<String> {
    files
        .iter()
        .filter(|(_, source)| source.lines().count() > MAX_LINES)
        .filter(|(_, source)| {
            !source.lines().take_while(|l| l.starts_with("//!")).any(|l| l.starts_with(WHY_LONG))
        })
        .map(|(path, source)| {
            format!(
                "{} ({} lines)",
                path.strip_prefix(root()).unwrap_or(path).display(),
                source.lines().count()
            )
        })
        .collect()
}

#[test]
fn a_long_file_says_why_in_its_opening_lines() {
    let long = too_long(&read_sources());
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines without a `{WHY_LONG}` line in their opening `//!` block: {long:?}"
    );
    let body = "fn f() {}\n".repeat(MAX_LINES);
    let file = root().join("src/data/big.rs");
    assert_eq!(too_long(&[(file.clone(), format!("//! Big.\n{body}"))]).len(), 1);
    assert!(too_long(&[(file.clone(), format!("//! Big.\n{WHY_LONG} one table.\n{body}"))]).is_empty());
    assert!(too_long(&[(file, format!("//! Big.\n\n{WHY_LONG} too late.\n{body}"))]).len() == 1);
}

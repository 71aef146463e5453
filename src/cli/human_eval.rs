//! `prism human-eval new|resume|report|export`: blind human evaluation. `new` samples test pairs,
//! writes every system's explanations once and freezes them in a study directory; `resume` is an
//! annotation front end over [`crate::humaneval::annotate`]: the TUI ([`crate::tui::annotate`]) on a
//! terminal, one command per line from a pipe; `report` prints the statistics and
//! `export` the unblinded answers.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use clap::{Args, Subcommand};
use serde::Serialize;

use super::{print_json, Context};
use crate::data::{self, Part, Split};
use crate::explain::samples::{samples, SampleSet};
use crate::humaneval::annotate::{update, Event, Phase, Screen, Session};
use crate::humaneval::export;
use crate::humaneval::lock::AnnotatorLock;
use crate::humaneval::report::{self, Loaded};
use crate::humaneval::store::{self, Annotations, Preference, Writer};
use crate::humaneval::study::{self, AttentionRule, Design, Study};
use crate::humaneval::systems::{self, Source};
use crate::humaneval::{now_ms, slot_letter};
use crate::metrics::stats::BootstrapConfig;
use crate::tui::annotate::Look;
use crate::tui::keys::KeyMap;
use crate::tui::theme::Theme;

#[derive(Debug, Subcommand)]
pub enum HumanEvalCommand {
    /// Sample test pairs, write every system's explanation once and freeze them in a blind study
    New(NewArgs),
    /// Annotate a study (or go on annotating it) as NAME, one item at a time, blind
    Resume(ResumeArgs),
    /// Ratings per system with CIs, paired tests, win rates, agreement, attention checks, times
    Report(ReportArgs),
    /// Every current answer, unblinded: `export DIR --format csv|jsonl [--out FILE]`
    Export(ExportArgs),
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The study directory to create
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Test pairs to sample (attention checks come on top)
    #[arg(long, default_value_t = 100, value_name = "N", value_parser = crate::validate::flag::at_least_one)]
    pub samples: usize,
    #[arg(long, default_value_t = 42, value_name = "S")]
    pub seed: u64,
    /// Comma-separated: oracle, prism, template, file:PATH or NAME=file:PATH (user,item,text JSONL)
    #[arg(long, default_value = "oracle,prism", value_name = "LIST")]
    pub systems: String,
    /// Attention-check items [default: humaneval.attention_checks]
    #[arg(long, value_name = "N", value_parser = crate::validate::flag::count)]
    pub attention_checks: Option<usize>,
    /// Comma-separated names; when given, only they may annotate
    #[arg(long, value_name = "LIST")]
    pub annotators: Option<String>,
    /// The report's reference system [default: humaneval.reference if a system, else the first]
    #[arg(long, value_name = "NAME")]
    pub reference: Option<String>,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The study directory
    pub dir: PathBuf,
    #[arg(long, value_name = "NAME")]
    pub annotator: String,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    pub dir: PathBuf,
    /// The system the others are tested against [default: the study's]
    #[arg(long, value_name = "NAME")]
    pub reference: Option<String>,
    /// Bootstrap resamples of the confidence intervals
    #[arg(long, default_value_t = 1000, value_name = "N", value_parser = crate::validate::flag::at_least_one)]
    pub resamples: usize,
}

/// `--format csv|jsonl` is the global `--format` option (which otherwise names a dataset
/// format), so it reaches [`run`] from the global arguments.
#[derive(Debug, Args)]
pub struct ExportArgs {
    pub dir: PathBuf,
    /// Write here instead of stdout
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `format` is the global `--format`, which `export` reads as its output format.
pub fn run(ctx: &Context, cmd: HumanEvalCommand, format: Option<&str>) -> Result<()> {
    match cmd {
        HumanEvalCommand::New(args) => new(ctx, args),
        HumanEvalCommand::Resume(args) => resume(ctx, args),
        HumanEvalCommand::Report(args) => report(ctx, args),
        HumanEvalCommand::Export(args) => export(args, format),
    }
}

#[derive(Debug, Serialize)]
struct NewOutput {
    dir: PathBuf,
    study: String,
    items: usize,
    attention_checks: usize,
    systems: Vec<String>,
    reference: String,
    /// Test pairs the sample was drawn from.
    pool: usize,
}

fn new(ctx: &Context, args: NewArgs) -> Result<()> {
    let settings = &ctx.settings;
    let he = &settings.humaneval;
    let systems = systems::parse_systems(&args.systems)?;
    if args.out.join(study::STUDY_FILE).exists() {
        bail!("{} already holds a study; choose another --out", args.out.display());
    }
    let names: Vec<String> = systems.iter().map(|s| s.name.clone()).collect();
    let reference = match args.reference {
        Some(r) if names.contains(&r) => r,
        Some(r) => bail!("--reference {r:?} is not one of the systems {}", names.join(", ")),
        None if names.contains(&he.reference) => he.reference.clone(),
        None => names[0].clone(),
    };
    let annotators: Vec<String> = args
        .annotators
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    for name in &annotators {
        study::check_annotator_name(name)?;
    }
    let dataset = data::open(&settings.dataset)?;
    let split = Split::leave_last_out(&dataset);
    let mut pool = samples(&dataset, &split, SampleSet::Held(Part::Test), settings.dataset.history_len);
    let mut files = HashMap::new();
    for system in &systems {
        if let Source::File(path) = &system.source {
            let texts = systems::read_texts(path)?;
            let before = pool.len();
            pool.retain(|s| {
                texts.contains_key(&(dataset.users[s.user as usize].clone(), dataset.item(s.item).id.clone()))
            });
            if !ctx.json {
                eprintln!(
                    "{}: {} explanations, {} of {before} test pairs covered",
                    path.display(),
                    texts.len(),
                    pool.len()
                );
            }
            files.insert(path.clone(), texts);
        }
    }
    let lens: Vec<usize> = pool.iter().map(|s| split.train(&dataset, s.user).len()).collect();
    let design = Design {
        dataset: settings.dataset.path.clone(),
        seed: args.seed,
        samples: args.samples,
        attention_checks: args.attention_checks.unwrap_or(he.attention_checks),
        strata: he.strata,
        criteria: he.criteria.clone(),
        attention: AttentionRule {
            criterion: he.attention_criterion.clone(),
            max_rating: he.attention_max_rating,
        },
        reference: reference.clone(),
        annotators,
    };
    let chosen = design.choose(&pool, &lens)?;
    let mut bar = crate::progress::Reports::new("explanations");
    let texts =
        systems::generate(&systems, &files, &dataset, &chosen, settings, &mut |name, done, total| {
            if !bar.update(name, done, total) && (done % 10 == 0 || done == total) {
                eprintln!("{name}: {done}/{total} explanations");
            }
        })?;
    drop(bar);
    let infos = systems.iter().map(|s| s.info(settings)).collect();
    let (study, key) = design.assemble(&dataset, infos, &chosen, &texts)?;
    study::write(&args.out, &study, &key)?;
    let out = NewOutput {
        dir: args.out.clone(),
        study: study.id.clone(),
        items: design.samples,
        attention_checks: design.attention_checks,
        systems: names,
        reference,
        pool: pool.len(),
    };
    if ctx.json {
        return print_json(&out);
    }
    println!(
        "study {} in {}: {} items + {} attention checks, systems {} (reference {})",
        out.study,
        out.dir.display(),
        out.items,
        out.attention_checks,
        out.systems.join(", "),
        out.reference
    );
    println!("annotate with `prism human-eval resume {} --annotator NAME`", out.dir.display());
    println!("keep {} away from annotators: it unblinds the study", out.dir.join(study::KEY_FILE).display());
    Ok(())
}

/// Opens `annotator`'s session (holding its lock), reporting torn lines on stderr.
fn open_session(dir: &std::path::Path, annotator: &str) -> Result<(Study, Annotations, AnnotatorLock)> {
    let (study, recorded, lock) = store::open_for(dir, annotator)?;
    for issue in &recorded.issues {
        eprintln!("warning: {issue}");
    }
    Ok((study, recorded, lock))
}

/// On a terminal (stdin and stdout both) the TUI; otherwise the line loop, for pipes.
fn resume(ctx: &Context, args: ResumeArgs) -> Result<()> {
    let (study, recorded, lock) = open_session(&args.dir, &args.annotator)?;
    let mut writer = Writer::open(&args.dir, &study, &args.annotator, now_ms(), lock)?;
    let session = Session::new(&study, &recorded, now_ms());
    let session = if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let theme = Theme::resolve(&ctx.settings.tui.theme, no_color)?;
        let keys = KeyMap::new(&ctx.settings.tui.keys)?;
        let look = Look { theme: &theme, keys: &keys };
        crate::tui::annotate::run(session, &mut writer, &look, &study.id, &args.annotator)?
    } else {
        resume_lines(session, &mut writer, &study)?
    };
    let screen = session.screen();
    println!(
        "{} of {} items answered by {}; `prism human-eval resume {} --annotator {}` goes on",
        screen.answered,
        screen.total,
        args.annotator,
        args.dir.display(),
        args.annotator
    );
    Ok(())
}

/// The line-based front end: one command per line.
fn resume_lines(mut session: Session, writer: &mut Writer, study: &Study) -> Result<Session> {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut stdout = std::io::stdout().lock();
    let slots = study.slots;
    let mut line = String::new();
    // The whole screen is drawn when the item changes or on an empty line; otherwise one status
    // line shows the answer so far.
    let mut drawn = None;
    while session.phase() != Phase::Quit {
        let screen = session.screen();
        let place = (screen.position, screen.phase);
        if drawn != Some(place) || line.trim().is_empty() {
            write!(stdout, "{}", render_screen(&screen))?;
            drawn = Some(place);
        } else {
            write!(stdout, "{}", render_status(&screen))?;
        }
        write!(stdout, "> ")?;
        stdout.flush()?;
        line.clear();
        let events = if input.read_line(&mut line)? == 0 {
            vec![Event::Quit]
        } else {
            match parse_line(&line, slots, study.criteria.len()) {
                Ok(events) => events,
                Err(message) => {
                    writeln!(stdout, "! {message}")?;
                    continue;
                }
            }
        };
        for event in events {
            let (next, judgement) = update(session, event, now_ms());
            session = next;
            if let Some(j) = judgement {
                writer.append(&j).context("the answer could not be saved; it is not recorded")?;
            }
        }
    }
    writeln!(stdout)?;
    Ok(session)
}

const HELP: &str = "commands: `A 5 4 3` rates slot A on every criterion in order; `A2 4` rates A on \
                    criterion 2; `pref A` or `pref tie`; `note TEXT`; `next` (n) records the answer; \
                    `back` (b); `quit` (q)";

/// Turns one input line into events; `Err` is a message to show.
pub fn parse_line(line: &str, slots: usize, criteria: usize) -> Result<Vec<Event>, String> {
    let line = line.trim();
    let mut words = line.split_whitespace();
    let Some(first) = words.next() else { return Ok(Vec::new()) };
    let rest: Vec<&str> = words.collect();
    let slot_of = |word: &str| -> Result<usize, String> {
        match word.as_bytes() {
            [c] if c.is_ascii_alphabetic() && usize::from(c.to_ascii_uppercase() - b'A') < slots => {
                Ok(usize::from(c.to_ascii_uppercase() - b'A'))
            }
            _ => Err(format!("there is no slot {word:?}; slots are A–{}", slot_letter(slots - 1))),
        }
    };
    let score = |word: &str| -> Result<u8, String> {
        word.parse::<u8>()
            .ok()
            .filter(|s| (1..=5).contains(s))
            .ok_or_else(|| format!("ratings go from 1 to 5, not {word:?}"))
    };
    // A lone `n`, `b`, `q` or `h` is a command; followed by ratings it is a slot letter.
    match (first.to_ascii_lowercase().as_str(), rest.is_empty()) {
        ("n" | "next", true) => Ok(vec![Event::Next]),
        ("b" | "back", true) => Ok(vec![Event::Back]),
        ("q" | "quit", true) => Ok(vec![Event::Quit]),
        ("?" | "h" | "help", true) => Err(HELP.into()),
        ("note", _) => Ok(vec![Event::Note(line[first.len()..].trim().to_owned())]),
        ("pref" | "prefer", _) => match rest.as_slice() {
            [t] if t.eq_ignore_ascii_case("tie") => Ok(vec![Event::Prefer(Preference::Tie)]),
            [s] => Ok(vec![Event::Prefer(Preference::Slot(slot_of(s)?))]),
            _ => Err("say `pref A` (a slot letter) or `pref tie`".into()),
        },
        (word, _) => {
            let (letter, criterion) = word.split_at(1.min(word.len()));
            let slot = slot_of(letter).map_err(|_| format!("unknown command {first:?}; {HELP}"))?;
            if criterion.is_empty() {
                if rest.len() != criteria {
                    return Err(format!("`{first} …` needs {criteria} ratings, one per criterion"));
                }
                rest.iter()
                    .enumerate()
                    .map(|(c, w)| Ok(Event::Rate { slot, criterion: c, score: score(w)? }))
                    .collect()
            } else {
                let c =
                    criterion.parse::<usize>().ok().filter(|c| (1..=criteria).contains(c)).ok_or_else(
                        || format!("there is no criterion {criterion:?}; they go 1–{criteria}"),
                    )?;
                match rest.as_slice() {
                    [w] => Ok(vec![Event::Rate { slot, criterion: c - 1, score: score(w)? }]),
                    _ => Err(format!("`{first}` takes one rating")),
                }
            }
        }
    }
}

/// The screen as text: progress, history, the item, the anonymised explanations with their
/// ratings so far, and a `keys:` line that ends every screen.
pub fn render_screen(screen: &Screen<'_>) -> String {
    const SHOWN_HISTORY: usize = 10;
    let mut out = String::new();
    let width = 20;
    let filled = (screen.answered * width).checked_div(screen.total).unwrap_or(0);
    let bar = format!("{}{}", "#".repeat(filled), "-".repeat(width - filled));
    let (Some(item), Some(answer)) = (screen.item, screen.answer) else {
        out.push_str(&format!("\n── done ── [{bar}] {}/{} answered ──\n", screen.answered, screen.total));
        if let Some(m) = screen.message {
            out.push_str(&format!("! {m}\n"));
        }
        out.push_str(
            "every item is answered, thank you.\nkeys: `back` to change an answer, `quit` to leave\n",
        );
        return out;
    };
    out.push_str(&format!(
        "\n── item {}/{} ── [{bar}] {}/{} answered ──\n",
        screen.position, screen.total, screen.answered, screen.total
    ));
    let history = item.history();
    let earlier = history.len().saturating_sub(SHOWN_HISTORY);
    let recent = history[earlier..].join(" · ");
    let more = if earlier > 0 { format!("({earlier} earlier) ") } else { String::new() };
    out.push_str(&format!("user {} liked, oldest first: {more}{recent}\n", item.user()));
    out.push_str(&format!("item: {} — {}\n", item.title(), group_features(item.features())));
    for (s, slot) in item.slots().iter().enumerate() {
        out.push_str(&format!("  {}: {}\n", slot.letter(), slot.text()));
        let ratings: Vec<String> = screen
            .criteria
            .iter()
            .zip(&answer.ratings[s])
            .enumerate()
            .map(|(c, (name, r))| format!("{}.{name} {}", c + 1, r.map_or("–".into(), |v| v.to_string())))
            .collect();
        out.push_str(&format!("     {}\n", ratings.join("  ")));
    }
    let preference = answer.preference.map_or("–".into(), |p| p.to_string());
    out.push_str(&format!("preference: {preference}"));
    if !answer.note.is_empty() {
        out.push_str(&format!("   note: {}", answer.note));
    }
    out.push('\n');
    if screen.recorded {
        out.push_str("(your recorded answer; change it and `next` to replace it)\n");
    }
    if let Some(m) = screen.message {
        out.push_str(&format!("! {m}\n"));
    }
    let letters: String = (0..item.slots().len()).map(slot_letter).collect::<String>();
    out.push_str(&format!(
        "keys: `{} {}` rates a slot on {} · `pref {}|tie` · `note TEXT` · `next` · `back` · `quit` · `?`\n",
        &letters[..1],
        vec!["5"; screen.criteria.len()].join(" "),
        screen.criteria.join(", "),
        letters.chars().map(String::from).collect::<Vec<_>>().join("|")
    ));
    out
}

/// `kind: a, kind: b, other: c` as `kind: a, b; other: c`.
fn group_features(features: &[String]) -> String {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for f in features {
        let (kind, value) = f.split_once(": ").unwrap_or(("", f));
        match groups.last_mut() {
            Some((k, values)) if *k == kind => values.push(value),
            _ => groups.push((kind, vec![value])),
        }
    }
    let parts: Vec<String> = groups
        .iter()
        .map(|(k, v)| if k.is_empty() { v.join(", ") } else { format!("{k}: {}", v.join(", ")) })
        .collect();
    parts.join("; ")
}

/// One line with the answer so far (after a rating, preference or note), or the message.
pub fn render_status(screen: &Screen<'_>) -> String {
    if let Some(m) = screen.message {
        return format!("! {m}\n");
    }
    let Some(answer) = screen.answer else { return String::new() };
    let slots: Vec<String> = answer
        .ratings
        .iter()
        .enumerate()
        .map(|(s, r)| {
            let r: Vec<String> = r.iter().map(|v| v.map_or("–".into(), |v| v.to_string())).collect();
            format!("{} {}", slot_letter(s), r.join(" "))
        })
        .collect();
    let preference = answer.preference.map_or("–".into(), |p| p.to_string());
    let note = if answer.note.is_empty() { String::new() } else { format!(" · note: {}", answer.note) };
    format!("{} · preference {preference}{note}\n", slots.join(" · "))
}

fn report(ctx: &Context, args: ReportArgs) -> Result<()> {
    let loaded = Loaded::open(&args.dir)?;
    let bootstrap =
        BootstrapConfig { resamples: args.resamples, seed: loaded.study.seed, ..BootstrapConfig::default() };
    let report = report::report(&loaded, args.reference.as_deref(), &bootstrap)?;
    if ctx.json {
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
        return print_json(&report);
    }
    print!("{}", report::render(&report));
    Ok(())
}

fn export(args: ExportArgs, format: Option<&str>) -> Result<()> {
    let csv = match format {
        Some("csv") => true,
        Some("jsonl") => false,
        Some(other) => bail!("--format {other:?}: export writes csv or jsonl"),
        None => bail!("export needs --format csv or --format jsonl"),
    };
    let loaded = Loaded::open(&args.dir)?;
    for issue in loaded.annotations.iter().flat_map(|a| &a.issues) {
        eprintln!("warning: {issue}");
    }
    let rows = export::rows(&loaded);
    let text = if csv { export::csv(&rows, &loaded.study.criteria)? } else { export::jsonl(&rows)? };
    match &args.out {
        Some(path) => {
            crate::durable::write_file(path, text.as_bytes())?;
            let annotators: HashSet<&str> = rows.iter().map(|r| r.annotator.as_str()).collect();
            eprintln!(
                "{} rows from {} annotators written to {}",
                rows.len(),
                annotators.len(),
                path.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_events() {
        let rate = |slot, criterion, score| Event::Rate { slot, criterion, score };
        assert_eq!(parse_line("a 5 4 3\n", 2, 3).unwrap(), [rate(0, 0, 5), rate(0, 1, 4), rate(0, 2, 3)]);
        assert_eq!(parse_line("B2 1", 2, 3).unwrap(), [rate(1, 1, 1)]);
        assert_eq!(parse_line("pref b", 2, 3).unwrap(), [Event::Prefer(Preference::Slot(1))]);
        assert_eq!(parse_line("prefer TIE", 2, 3).unwrap(), [Event::Prefer(Preference::Tie)]);
        assert_eq!(parse_line("b 1 2 3", 2, 3).unwrap(), [rate(1, 0, 1), rate(1, 1, 2), rate(1, 2, 3)]);
        assert_eq!(parse_line("note  Too  long ", 2, 3).unwrap(), [Event::Note("Too  long".into())]);
        assert_eq!(parse_line("n", 2, 3).unwrap(), [Event::Next]);
        assert_eq!(parse_line("back", 2, 3).unwrap(), [Event::Back]);
        assert_eq!(parse_line("q", 2, 3).unwrap(), [Event::Quit]);
        assert_eq!(parse_line("   ", 2, 3).unwrap(), []);
        for (bad, expected) in [
            ("c 1 2 3", "unknown command"),
            ("a 1 2", "needs 3 ratings"),
            ("a 1 2 6", "1 to 5"),
            ("a4 2", "no criterion"),
            ("pref c", "no slot"),
            ("dance", "unknown command"),
            ("?", "commands:"),
        ] {
            let err = parse_line(bad, 2, 3).unwrap_err();
            assert!(err.contains(expected), "{bad}: {err}");
        }
    }
}

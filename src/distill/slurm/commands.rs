//! Talking to Slurm: the sbatch scripts (from `[slurm]`) and the command line of a task, `sbatch`
//! submissions, and what `squeue`, `sacct` or — without accounting — `scontrol show job` (which
//! remembers a job for `MinJobAge`) say about a job's tasks, read into [`Seen`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::config::SlurmSettings;

/// The commands the backend runs.
const COMMANDS: [&str; 3] = ["sbatch", "squeue", "scontrol"];

/// Fails with a clear message unless Slurm's client commands are on the PATH.
pub fn check_installed() -> Result<()> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let missing: Vec<&str> = COMMANDS
        .into_iter()
        .filter(|c| !std::env::split_paths(&path).any(|dir| dir.join(c).is_file()))
        .collect();
    if !missing.is_empty() {
        bail!(
            "the Slurm backend needs sbatch, squeue and scontrol on the PATH; not found: {}. Run on a \
             Slurm login node (or load its module), or use --backend local",
            missing.join(", ")
        );
    }
    Ok(())
}

/// Quotes `word` for a POSIX shell.
pub fn shell_quote(word: &str) -> String {
    if !word.is_empty() && word.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:=,@%+".contains(&b)) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// One sbatch script.
pub struct Script<'a> {
    pub name: &'a str,
    /// Array tasks `0..n`, or one job.
    pub array: Option<usize>,
    /// Slurm's `--output` pattern.
    pub output: &'a Path,
    /// The prism command, already quoted (so `$SLURM_ARRAY_TASK_ID` may stay unquoted).
    pub command: &'a str,
}

/// The text of an sbatch script: `#SBATCH` lines from the settings, the setup lines, then the
/// command (under the launcher, if any).
pub fn script(settings: &SlurmSettings, script: &Script<'_>) -> String {
    let mut lines = vec!["#!/bin/bash".to_owned(), format!("#SBATCH --job-name={}", script.name)];
    if let Some(n) = script.array {
        lines.push(format!("#SBATCH --array=0-{}", n.saturating_sub(1)));
    }
    lines.push(format!("#SBATCH --output={}", script.output.display()));
    for (option, value) in [
        ("partition", &settings.partition),
        ("account", &settings.account),
        ("gres", &settings.gres),
        ("time", &settings.time),
        ("mem", &settings.mem),
    ] {
        if !value.is_empty() {
            lines.push(format!("#SBATCH --{option}={value}"));
        }
    }
    lines.push(format!("#SBATCH --cpus-per-task={}", settings.cpus_per_task.max(1)));
    lines.extend(settings.options.iter().map(|o| format!("#SBATCH {o}")));
    lines.push("set -euo pipefail".into());
    lines.push("export RAYON_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"".into());
    lines.extend(settings.setup.iter().cloned());
    let launcher =
        if settings.launcher.is_empty() { String::new() } else { format!("{} ", settings.launcher) };
    lines.push(format!("exec {launcher}{}", script.command));
    lines.join("\n") + "\n"
}

/// Runs a Slurm command, returning its stdout, or an error with its stderr.
fn slurm(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program} (is Slurm installed?)"))?;
    if !out.status.success() {
        bail!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Submits `script` (with `--array=SPEC` overriding the script's own array) and returns the job id.
pub fn submit(script: &Path, array: Option<&str>) -> Result<String> {
    let array_arg = array.map(|a| format!("--array={a}"));
    let mut args = vec!["--parsable"];
    args.extend(array_arg.as_deref());
    let script = script.to_string_lossy();
    args.push(&script);
    let out = slurm("sbatch", &args)?;
    // `--parsable` prints `ID` or `ID;CLUSTER`.
    let id = out.trim().split(';').next().unwrap_or("").to_owned();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        bail!("sbatch printed {:?}, not a job id", out.trim());
    }
    Ok(id)
}

/// A task: its job id and its array index (0 for a job without an array).
type TaskId = (String, usize);

/// States in which a task will still run (or is running).
pub fn is_active(state: &str) -> bool {
    matches!(
        state,
        "PENDING"
            | "RUNNING"
            | "CONFIGURING"
            | "COMPLETING"
            | "REQUEUED"
            | "REQUEUE_FED"
            | "REQUEUE_HOLD"
            | "RESIZING"
            | "SUSPENDED"
            | "STAGE_OUT"
            | "SIGNALING"
            | "STOPPED"
    )
}

/// Expands an array index list as Slurm prints it: `3`, `[2-4]`, `1,5-7%2`.
fn indices(spec: &str) -> Vec<usize> {
    let spec = spec.trim_start_matches('[').trim_end_matches(']');
    let spec = spec.split('%').next().unwrap_or("");
    let mut out = Vec::new();
    for part in spec.split(',') {
        let range = match part.split_once('-') {
            Some((a, b)) => a.parse::<usize>().ok().zip(b.parse::<usize>().ok()),
            None => part.parse::<usize>().ok().map(|a| (a, a)),
        };
        if let Some((a, b)) = range {
            out.extend(a..=b);
        }
    }
    out
}

/// Splits `123_4` (an array task), `123_[4-6]` or `123` (a job).
fn task_ids(id: &str) -> Vec<TaskId> {
    match id.split_once('_') {
        Some((job, tasks)) => indices(tasks).into_iter().map(|t| (job.to_owned(), t)).collect(),
        None => vec![(id.to_owned(), 0)],
    }
}

/// What Slurm says about one task.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Seen {
    pub state: String,
    /// Who cancelled it, where Slurm says (sacct's `CANCELLED by UID`), as a user name if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// `CODE:SIGNAL`, where Slurm says (sacct, scontrol).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<String>,
    /// Why it waits or ended (squeue's and scontrol's `Reason`), unless `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

fn non_empty(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty() && text != "None" && text != "(null)").then(|| text.to_owned())
}

/// The name of user `uid`, or the number where the system does not know it.
fn user_name(uid: &str) -> String {
    let Ok(id) = uid.parse::<libc::uid_t>() else { return uid.to_owned() };
    let mut record: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buffer = vec![0 as libc::c_char; 4096];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwuid_r writes into `record` and `buffer`, both alive and sized as passed; `found`
    // points at `record` or is null.
    let rc = unsafe { libc::getpwuid_r(id, &mut record, buffer.as_mut_ptr(), buffer.len(), &mut found) };
    if rc != 0 || found.is_null() || record.pw_name.is_null() {
        return uid.to_owned();
    }
    // SAFETY: on success pw_name is a NUL-terminated string inside `buffer`.
    unsafe { std::ffi::CStr::from_ptr(record.pw_name) }.to_string_lossy().into_owned()
}

/// Rows `ID|STATE|EXIT|REASON` of `squeue -o %i|%T||%r` or `sacct -P -o JobID,State,ExitCode`
/// (whose states may read `CANCELLED by 0`); missing columns are empty.
pub fn parse_rows(text: &str) -> Vec<(TaskId, Seen)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut columns = line.trim().split('|');
        let (Some(id), Some(state)) = (columns.next(), columns.next()) else { continue };
        let mut words = state.split_whitespace();
        let state = words.next().unwrap_or("").to_owned();
        let by = match (words.next(), words.next()) {
            (Some("by"), Some(uid)) => Some(user_name(uid)),
            _ => None,
        };
        let exit_code = columns.next().and_then(non_empty);
        let reason = columns.next().and_then(non_empty);
        let seen = Seen { state, by, exit_code, reason };
        for task in task_ids(id.trim()) {
            out.push((task, seen.clone()));
        }
    }
    out
}

/// `scontrol show job -o` lines: `JobId=… ArrayJobId=12 ArrayTaskId=3 … JobState=COMPLETED …`.
pub fn parse_scontrol(text: &str) -> Vec<(TaskId, Seen)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: HashMap<&str, &str> = line.split_whitespace().filter_map(|f| f.split_once('=')).collect();
        let Some(state) = fields.get("JobState") else { continue };
        let tasks = match (fields.get("ArrayJobId"), fields.get("ArrayTaskId")) {
            (Some(job), Some(tasks)) => indices(tasks).into_iter().map(|t| (job.to_string(), t)).collect(),
            _ => fields.get("JobId").map(|job| vec![(job.to_string(), 0)]).unwrap_or_default(),
        };
        let seen = Seen {
            state: state.to_string(),
            by: None,
            exit_code: fields.get("ExitCode").and_then(|c| non_empty(c)),
            reason: fields.get("Reason").and_then(|r| non_empty(r)),
        };
        out.extend(tasks.into_iter().map(|t| (t, seen.clone())));
    }
    out
}

/// Runs a query command; "Invalid job id" (every job asked for is gone) reads as no rows.
fn query_command(program: &str, args: &[&str]) -> Result<String> {
    match slurm(program, args) {
        Err(e) if format!("{e}").contains("Invalid job id") => Ok(String::new()),
        other => other,
    }
}

/// What Slurm says about every task of `jobs`: live ones from squeue, ended ones from sacct, or
/// from scontrol where the cluster keeps no accounting.
pub fn query(jobs: &[String]) -> Result<HashMap<TaskId, Seen>> {
    let list = jobs.join(",");
    let mut states: HashMap<TaskId, Seen> = HashMap::new();
    let ended = match slurm("sacct", &["-n", "-P", "-X", "-j", &list, "-o", "JobID,State,ExitCode"]) {
        Ok(text) => parse_rows(&text),
        Err(_) => {
            let mut rows = Vec::new();
            for job in jobs {
                rows.extend(parse_scontrol(&query_command("scontrol", &["show", "job", "-o", job])?));
            }
            rows
        }
    };
    states.extend(ended);
    // squeue last: a live task's state wins over a record of an earlier run of it.
    states.extend(parse_rows(&query_command("squeue", &["-h", "-r", "-j", &list, "-o", "%i|%T||%r"])?));
    Ok(states)
}

/// `CANCELLED by alice (exit 0:15)`: a state with what Slurm said about it.
pub fn describe(state: &str, by: Option<&str>, exit_code: Option<&str>) -> String {
    let mut text = state.to_owned();
    if let Some(by) = by {
        text.push_str(&format!(" by {by}"));
    }
    if let Some(code) = exit_code.filter(|c| *c != "0:0") {
        text.push_str(&format!(" (exit {code})"));
    }
    text
}

/// The command line of a task: the prism binary with the global arguments, then `args`.
pub fn prism_command(settings: &SlurmSettings, global: &[String], args: &[String]) -> Result<String> {
    let binary = if settings.prism.is_empty() {
        std::env::current_exe().context("cannot find this prism binary; set [slurm] prism")?
    } else {
        PathBuf::from(&settings.prism)
    };
    let mut words = vec![shell_quote(&binary.to_string_lossy())];
    words.extend(global.iter().chain(args).map(|w| shell_quote(w)));
    Ok(words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SlurmSettings {
        crate::config::Settings::load_layers(None, None).unwrap().slurm
    }

    #[test]
    fn the_script_carries_the_settings_and_the_command() {
        let mut s = settings();
        s.partition = "gpu".into();
        s.gres = "gpu:1".into();
        s.time = "02:00:00".into();
        s.options = vec!["--qos=long".into()];
        s.setup = vec!["module load cuda".into()];
        s.launcher = "apptainer exec --nv prism.sif".into();
        let text = script(
            &s,
            &Script {
                name: "prism-teach",
                array: Some(4),
                output: Path::new("/j/%a.out"),
                command: "prism x",
            },
        );
        let expected = "#!/bin/bash\n#SBATCH --job-name=prism-teach\n#SBATCH --array=0-3\n\
            #SBATCH --output=/j/%a.out\n#SBATCH --partition=gpu\n#SBATCH --gres=gpu:1\n\
            #SBATCH --time=02:00:00\n#SBATCH --cpus-per-task=4\n#SBATCH --qos=long\nset -euo pipefail\n\
            export RAYON_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"\nmodule load cuda\n\
            exec apptainer exec --nv prism.sif prism x\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn words_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("/a/b-c_d.e"), "/a/b-c_d.e");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn squeue_sacct_and_scontrol_rows_are_read() {
        let rows = parse_rows("12_0|RUNNING\n12_[2-3%1]|PENDING\n13|COMPLETED\n12_1|CANCELLED by 0\n");
        let states: Vec<(TaskId, &str)> = rows.iter().map(|(t, s)| (t.clone(), s.state.as_str())).collect();
        assert_eq!(
            states,
            [
                (("12".into(), 0), "RUNNING"),
                (("12".into(), 2), "PENDING"),
                (("12".into(), 3), "PENDING"),
                (("13".into(), 0), "COMPLETED"),
                (("12".into(), 1), "CANCELLED"),
            ]
        );
        let text = "JobId=14 ArrayJobId=12 ArrayTaskId=3 JobName=a JobState=COMPLETED Reason=None\n\
                    JobId=12 ArrayJobId=12 ArrayTaskId=4,6-7 JobState=PENDING\n\
                    JobId=20 JobName=rest JobState=FAILED\n";
        let rows = parse_scontrol(text);
        let tasks: Vec<usize> = rows.iter().map(|((_, t), _)| *t).collect();
        assert_eq!(tasks, [3, 4, 6, 7, 0]);
        assert_eq!(rows[0].0, ("12".into(), 3));
        assert_eq!(rows[0].1.state, "COMPLETED");
        assert_eq!(rows[4], (("20".into(), 0), Seen { state: "FAILED".into(), ..Seen::default() }));
    }
}

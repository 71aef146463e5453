//! The command that continues a job: `resume.json`, written by the `prism distill` that last ran
//! it (the same binary, dataset, config, backend and device), read by `prism distill status`, the
//! explorer's Jobs panel and every end's next step.

use std::path::{Path, PathBuf};

use super::slurm;
use crate::model::checkpoint::read_json;

/// The command that continues the job, as the last `prism distill` that ran it gave it.
pub const RESUME_FILE: &str = "resume.json";

/// The command that continues the job.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Resume {
    pub argv: Vec<String>,
    /// Where to run it (the job's relative paths are relative to it).
    pub cwd: Option<PathBuf>,
}

impl Resume {
    /// The command for a shell, with `prism` for the binary.
    pub fn command(&self) -> String {
        let words: Vec<String> = self
            .argv
            .iter()
            .enumerate()
            .map(|(i, w)| if i == 0 { "prism".to_owned() } else { slurm::shell_quote(w) })
            .collect();
        let line = words.join(" ");
        match &self.cwd {
            Some(cwd) => format!("cd {} && {line}", slurm::shell_quote(&cwd.to_string_lossy())),
            None => line,
        }
    }
}

/// The default continuation, for jobs started before `resume.json` was written.
fn default_resume(dir: &Path, dataset: &str, on_slurm: bool) -> Resume {
    let mut argv: Vec<String> = vec!["prism".into()];
    if !dataset.is_empty() {
        argv.extend(["--dataset".into(), dataset.to_owned()]);
    }
    argv.extend(["distill".into(), "--out".into(), dir.display().to_string(), "--resume".into()]);
    if on_slurm {
        argv.extend(["--backend".into(), "slurm".into()]);
    }
    Resume { argv, cwd: None }
}

/// Reads the resume command a run recorded, or the default one.
pub fn resume_of(dir: &Path, dataset: &str, on_slurm: bool) -> Resume {
    read_json::<Resume>(&dir.join(RESUME_FILE)).unwrap_or_else(|_| {
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        default_resume(&dir, dataset, on_slurm)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resume_command_reads_as_typed() {
        let resume = Resume {
            argv: vec!["/usr/bin/prism".into(), "--config".into(), "my config.toml".into(), "distill".into()],
            cwd: Some("/shared/me".into()),
        };
        assert_eq!(resume.command(), "cd /shared/me && prism --config 'my config.toml' distill");
    }
}

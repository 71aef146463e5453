//! The Slurm backend on a real Slurm: a single-node cluster of this machine (munged, slurmctld and
//! slurmd in a temporary state directory, 2 CPUs, no accounting — so the backend reads ended
//! tasks from `scontrol`) runs a distillation job's teach stage as a 4-task array; one running
//! task is cancelled with `scancel`, the backend resubmits it, and the job completes with exactly
//! one teacher explanation per sample and the same filter, student and evaluation as the local
//! backend. The daemons are stopped when the test ends, however it ends.
//!
//! The job is the quick preset's stages on the tiny fixture models (a random T5 teacher, a tiny
//! fresh BART student) on a small synthetic dataset, so it takes seconds; with
//! `PRISM_SLURM_TEST_PRESET=quick` (and the embedded models present) it is the real quick preset
//! on the demo dataset. Without Slurm and munge installed (`.ci/run` installs Debian's packages),
//! or without root (slurmd runs tasks as their user), the cluster test says why and passes. The
//! other tests need no Slurm: the backend's message without it, the shard command's errors, and
//! retries against a stand-in Slurm (shell scripts on the PATH) whose tasks always fail.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `name` on the PATH or in the sbin directories, where Debian puts the daemons.
fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A private single-node Slurm: its daemons are this test's children, stopped on drop.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
    daemons: Vec<(&'static str, Child)>,
}

impl Cluster {
    fn start(dir: &Path) -> Cluster {
        let (munge, state, spool, log) =
            (dir.join("munge"), dir.join("state"), dir.join("spool"), dir.join("log"));
        for d in [&munge, &state, &spool, &log] {
            std::fs::create_dir_all(d).unwrap();
        }
        let key: Vec<u8> = (0..1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let key_file = munge.join("munge.key");
        std::fs::write(&key_file, key).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let socket = munge.join("socket");
        let host = String::from_utf8(Command::new("hostname").arg("-s").output().unwrap().stdout).unwrap();
        let host = host.trim();
        let conf = dir.join("slurm.conf");
        let d = |p: &Path| p.display().to_string();
        std::fs::write(
            &conf,
            format!(
                "ClusterName=prismtest\nSlurmctldHost={host}(127.0.0.1)\nSlurmUser=root\nSlurmdUser=root\n\
                 AuthType=auth/munge\nCredType=cred/munge\nAuthInfo=socket={socket}\n\
                 SlurmctldPort={ctld}\nSlurmdPort={slurmd}\nStateSaveLocation={state}\n\
                 SlurmdSpoolDir={spool}\nSlurmctldPidFile={dir}/slurmctld.pid\nSlurmdPidFile={dir}/slurmd.pid\n\
                 SlurmctldLogFile={log}/slurmctld.log\nSlurmdLogFile={log}/slurmd.log\n\
                 ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n\
                 JobAcctGatherType=jobacct_gather/none\nAccountingStorageType=accounting_storage/none\n\
                 JobCompType=jobcomp/none\nSelectType=select/cons_tres\nSelectTypeParameters=CR_CPU\n\
                 SchedulerType=sched/backfill\nMpiDefault=none\nReturnToService=2\nMinJobAge=600\n\
                 NodeName={host} NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN\n\
                 PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP\n",
                socket = d(&socket),
                ctld = free_port(),
                slurmd = free_port(),
                state = d(&state),
                spool = d(&spool),
                dir = d(dir),
                log = d(&log),
            ),
        )
        .unwrap();
        let mut cluster = Cluster { dir: dir.to_path_buf(), conf: conf.clone(), daemons: Vec::new() };
        let spawn = |name: &str, args: &[String]| {
            Command::new(find(name).unwrap())
                .args(args)
                .env("SLURM_CONF", &conf)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(log.join(format!("{name}.stderr"))).unwrap())
                .spawn()
                .unwrap()
        };
        let munged = [
            "--foreground".to_owned(),
            "--force".into(),
            format!("--socket={}", d(&socket)),
            format!("--key-file={}", d(&key_file)),
            format!("--log-file={}", d(&log.join("munged.log"))),
            format!("--pid-file={}", d(&munge.join("munged.pid"))),
            format!("--seed-file={}", d(&munge.join("seed"))),
        ];
        cluster.daemons.push(("munged", spawn("munged", &munged)));
        cluster.wait_for("munged's socket", || socket.exists());
        cluster.daemons.push(("slurmctld", spawn("slurmctld", &["-D".into(), "-i".into()])));
        cluster.daemons.push(("slurmd", spawn("slurmd", &["-D".into()])));
        cluster.wait_for("the node to be idle", || {
            cluster.slurm("sinfo", &["-h", "-o", "%t"]).is_some_and(|s| s.trim() == "idle")
        });
        cluster
    }

    fn wait_for(&self, what: &str, mut ready: impl FnMut() -> bool) {
        let start = Instant::now();
        while !ready() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}; {}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn slurm(&self, program: &str, args: &[&str]) -> Option<String> {
        let out = Command::new(program).args(args).env("SLURM_CONF", &self.conf).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn logs(&self) -> String {
        ["slurmctld.log", "slurmd.log", "munged.log", "slurmctld.stderr", "slurmd.stderr"]
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(self.dir.join("log").join(f)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                format!("--- {f}\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Only this test's jobs run on this private cluster.
        let _ = self.slurm("scancel", &["--partition=debug"]);
        for (_, child) in self.daemons.iter_mut().rev() {
            // SAFETY: kill has no preconditions; the pid is this test's own child, not yet reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let asked = Instant::now();
            while child.try_wait().ok().flatten().is_none() && asked.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The job: `(global arguments, preset argument, samples taught)`.
fn job(dir: &Path) -> (Vec<String>, String, usize) {
    let config = dir.join("config.toml");
    // Each task sleeps first, so the test can cancel one while it runs.
    let slurm = "[slurm]\ncpus_per_task = 1\npoll_seconds = 1\nsetup = [\"sleep 3\"]\n";
    let quick = std::env::var("PRISM_SLURM_TEST_PRESET").is_ok_and(|p| p == "quick");
    if quick && root().join("assets/models/oracle/config.json").exists() {
        std::fs::write(&config, slurm).unwrap();
        return (vec!["--config".into(), config.display().to_string()], "quick".into(), 800);
    }
    let recipe = dir.join("student.toml");
    std::fs::write(&recipe, common::TINY_STUDENT_RECIPE).unwrap();
    let quick = std::fs::read_to_string(root().join("configs/distill/quick.toml")).unwrap();
    let mut preset: toml::Table = toml::from_str(&quick).unwrap();
    preset.insert("teacher".into(), root().join("tests/fixtures/hf/t5-v1_1").display().to_string().into());
    preset.insert("student_recipe".into(), recipe.display().to_string().into());
    preset.insert("teacher_max_input_tokens".into(), 600.into());
    preset.insert("teach_samples".into(), 24.into());
    preset.insert("teach_batch".into(), 2.into());
    preset.insert("eval_samples".into(), 3.into());
    for decoding in ["teach_decoding", "eval_decoding"] {
        preset[decoding].as_table_mut().unwrap().insert("max_new_tokens".into(), 8.into());
    }
    // The random teacher writes noise: keep it all (the filter still judges it).
    preset["filter"].as_table_mut().unwrap().insert("enabled".into(), false.into());
    let preset_file = dir.join("tiny-quick.toml");
    std::fs::write(&preset_file, toml::to_string(&preset).unwrap()).unwrap();
    std::fs::write(&config, format!("[dataset]\nhistory_len = 20\n{slurm}")).unwrap();
    let data = dir.join("data");
    let synth = [
        "data",
        "synth",
        "--out",
        &data.display().to_string(),
        "--users",
        "30",
        "--items",
        "80",
        "--interactions",
        "600",
        "--seed",
        "4",
    ];
    common::json(&common::command(&synth, dir).arg("--json").output().unwrap());
    let global =
        vec!["--dataset".into(), data.display().to_string(), "--config".into(), config.display().to_string()];
    (global, preset_file.display().to_string(), 24)
}

fn distill(home: &Path, global: &[String], preset: &str, out: &Path, extra: &[&str]) -> Command {
    let mut args: Vec<&str> = global.iter().map(String::as_str).collect();
    let out = out.display().to_string();
    args.extend(["distill", "--preset", preset, "--out", &out, "--json"]);
    args.extend(extra);
    let mut c = common::command(&args, home);
    c.stderr(Stdio::piped()).stdout(Stdio::piped());
    c
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap()
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// `prism distill status DIR --json` with `env` set.
fn status_json(home: &Path, dir: &Path, env: &[(&str, &str)]) -> serde_json::Value {
    let mut c = common::command(&["distill", "status", &dir.display().to_string(), "--json"], home);
    c.envs(env.iter().copied());
    stdout_json(&c.output().unwrap())
}

fn stdout_json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn without_slurm_the_backend_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("job");
    let mut c = distill(tmp.path(), &[], "quick", &out, &["--backend", "slurm", "--shards", "2"]);
    let out = c.env("PATH", tmp.path()).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needs sbatch, squeue and scontrol on the PATH; not found: sbatch, squeue, scontrol")
            && err.contains("--backend local"),
        "{err}"
    );
}

#[test]
fn a_shard_command_names_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let job = tmp.path().join("job").display().to_string();
    let run = |shard: &str| {
        let out = common::command(&["distill", "teach", "--job", &job, "--shard", shard], tmp.path())
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run("4/4");
    assert!(err.contains("--shard \"4/4\": expected K/N with 0 <= K < N"), "{err}");
    let err = run("0/4");
    assert!(err.contains("cannot read") && err.contains("job.json"), "{err}");
}

/// Writes executable `name` into `dir`.
fn script(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/bash\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Against a stand-in Slurm whose tasks always fail (and whose controller misses one look), the
/// backend tries again at the next poll, resubmits the failed shards, and stops once their
/// retries are spent, naming the state and the log. Needs no Slurm.
#[test]
fn a_shard_that_keeps_failing_stops_the_job_after_its_retries() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let bin = home.join("fake-slurm");
    std::fs::create_dir_all(&bin).unwrap();
    let d = bin.display();
    script(&bin, "sbatch", &format!("n=$(cat {d}/n 2>/dev/null || echo 100); n=$((n+1)); echo $n > {d}/n\necho \"$@\" >> {d}/sbatch.log; echo $n"));
    script(&bin, "squeue", &format!("[ -e {d}/looked ] && exit 0; touch {d}/looked; echo 'slurm_load_jobs error: Socket timed out' >&2; exit 1"));
    script(&bin, "sacct", "echo 'Slurm accounting storage is disabled' >&2; exit 1");
    script(
        &bin,
        "scontrol",
        "echo \"JobId=$4 ArrayJobId=$4 ArrayTaskId=0-1 JobState=FAILED Reason=NonZeroExitCode\"",
    );
    let (mut global, preset, _) = job(home);
    let at = global.iter().position(|a| a == "--config").unwrap() + 1;
    let config = home.join("config-retries.toml");
    std::fs::write(&config, std::fs::read_to_string(&global[at]).unwrap() + "max_retries = 1\n").unwrap();
    global[at] = config.display().to_string();
    let out = home.join("job");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let output = distill(home, &global, &preset, &out, &["--backend", "slurm", "--shards", "2"])
        .env("PATH", path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("Socket timed out; trying again at the next poll"), "{stderr}");
    assert!(
        stderr.contains(
            "teach task 0 (job 101) ended FAILED without finishing; submitted again as job 102 (retry 1 of 1)"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "teach task 0 (job 102) ended FAILED without finishing, 2 times in all (max_retries = 1)"
        ) && stderr.contains("teach/shards/0/slurm-102_0.out"),
        "{stderr}"
    );
    // The give-up is the log's last event, with what to do next; the resubmissions are Slurm
    // messages, not progress.
    let events = lines(&out.join("events.jsonl"));
    let last = events.last().unwrap();
    assert_eq!((last["kind"].as_str(), last["stage"].as_str()), (Some("failed"), Some("teach")), "{last}");
    assert!(last["message"].as_str().unwrap().contains("2 times in all"), "{last}");
    let next = last["next"].as_str().unwrap();
    assert!(
        next.starts_with("raise [slurm] max_retries (now 1) in the config, then continue with: "),
        "{next}"
    );
    assert!(next.contains(&format!("--out {} --resume --backend slurm", out.display())), "{next}");
    assert!(events
        .iter()
        .any(|e| e["kind"] == "slurm" && e["message"].as_str().unwrap().contains("retry 1 of 1")));
    assert!(events.iter().filter(|e| e["kind"] == "progress").all(|e| e["total"] == 24), "{events:?}");
    // `status` says the same, and that nothing follows the job any more.
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let status = status_json(home, &out, &[("PATH", &path)]);
    assert_eq!(status["state"], "failed", "{status}");
    assert!(status["reason"].as_str().unwrap().contains("no coordinator holds the job"), "{status}");
    assert_eq!(status["next"].as_str(), Some(next));
    assert_eq!(status["holders"]["coordinator"], false);
    assert_eq!(status["slurm"]["live"], true, "{status}");
    for shard in status["shards"].as_array().unwrap() {
        assert_eq!(shard["state"], "failed", "{shard}");
        assert_eq!(shard["task"]["seen"]["state"], "FAILED", "{shard}");
    }
    // Without Slurm the states are the coordinator's, as last seen.
    let status = status_json(home, &out, &[("PATH", "/nonexistent")]);
    assert_eq!(status["slurm"]["live"], false, "{status}");
    assert!(status["slurm"]["as_of"].as_f64().is_some(), "{status}");
    assert!(status["slurm"]["error"].as_str().unwrap().contains("not found: sbatch"), "{status}");
    let submitted = std::fs::read_to_string(bin.join("sbatch.log")).unwrap();
    let script_path = out.join("slurm/teach.sbatch").display().to_string();
    assert_eq!(submitted, format!("--parsable {script_path}\n--parsable --array=0,1 {script_path}\n"));
    let state = read_json(&out.join("slurm/state.json"));
    assert_eq!(state["teach"]["tasks"][1]["retries"], 1, "{state}");
    assert_eq!(state["teach"]["tasks"][1]["state"], "FAILED", "{state}");
}

/// Whether a private cluster can run here; says why not.
fn cluster_can_run() -> bool {
    let missing: Vec<&str> =
        ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo"]
            .into_iter()
            .filter(|p| find(p).is_none())
            .collect();
    if !missing.is_empty() {
        eprintln!("SKIPPED: Slurm is not installed here (no {}); .ci/run installs it", missing.join(", "));
        return false;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: a private slurmd must run as root");
        return false;
    }
    true
}

/// One private cluster at a time: the cluster tests share this machine's node name and CPUs.
static CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_job_array_with_a_cancelled_task_completes_as_the_local_backend_does() {
    if !cluster_can_run() {
        return;
    }
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let cluster = Cluster::start(&home.join("cluster"));
    let (global, preset, samples) = job(home);

    let local = home.join("local");
    let local_summary = stdout_json(&distill(home, &global, &preset, &local, &[]).output().unwrap());

    let out = home.join("slurm");
    let mut run = distill(home, &global, &preset, &out, &["--backend", "slurm", "--shards", "4"]);
    let mut child = run.env("SLURM_CONF", &cluster.conf).spawn().unwrap();
    // Cancel the first task seen running.
    let start = Instant::now();
    let cancelled = loop {
        let running = cluster.slurm("squeue", &["-h", "-r", "-t", "RUNNING", "-o", "%i"]).unwrap_or_default();
        if let Some(task) = running.lines().next() {
            cluster.slurm("scancel", &[task.trim()]).expect("scancel");
            break task.trim().to_owned();
        }
        assert!(child.try_wait().unwrap().is_none(), "the job ended before a task ran; {}", cluster.logs());
        assert!(start.elapsed() < Duration::from_secs(120), "no task ran; {}", cluster.logs());
        std::thread::sleep(Duration::from_millis(100));
    };
    let shard: usize = cancelled.split_once('_').unwrap().1.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(if samples > 100 { 1800 } else { 300 });
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the Slurm job did not finish; {}", cluster.logs());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}\n{}", cluster.logs());
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["cancelled"], false);
    assert!(
        stderr.contains(&format!("teach task {shard} (")) && stderr.contains("ended CANCELLED"),
        "{stderr}"
    );

    // Slurm's side: the cancelled shard ran again, every task's work is on disk.
    let state = read_json(&out.join("slurm/state.json"));
    let tasks = state["teach"]["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 4);
    assert!(tasks.iter().all(|t| t["state"] == "DONE"), "{state}");
    assert!(tasks[shard]["retries"].as_u64().unwrap() >= 1, "{state}");
    assert!(state["teach"]["submissions"].as_array().unwrap().len() >= 2, "{state}");
    let log = std::fs::read_dir(out.join(format!("teach/shards/{shard}"))).unwrap().count();
    assert!(log >= 5, "both runs of shard {shard} left a log beside its cache");

    // Exactly one teacher explanation per sample.
    let merge = read_json(&out.join("teach/merge.json"));
    assert_eq!(merge["samples"], samples);
    assert_eq!(merge["merged"], samples);
    assert_eq!(merge["duplicates"], serde_json::json!([]));
    assert_eq!(merge["gaps"], serde_json::json!([]));
    let taught = lines(&out.join("teach/cache.jsonl"));
    let mut keys: Vec<(String, String)> =
        taught.iter().map(|t| (t["user"].to_string(), t["item"].to_string())).collect();
    keys.sort();
    keys.dedup();
    assert_eq!((taught.len(), keys.len()), (samples, samples));

    // The same results as the local backend.
    let texts = |dir: &Path| -> Vec<(String, String, String)> {
        lines(&dir.join("teach/cache.jsonl"))
            .iter()
            .map(|t| (t["user"].to_string(), t["item"].to_string(), t["text"].to_string()))
            .collect()
    };
    assert_eq!(texts(&out), texts(&local), "teacher explanations");
    for file in [
        "filter/kept.jsonl",
        "filter/report.json",
        "train/best/model.safetensors",
        "evaluate/explanations.jsonl",
    ] {
        assert!(
            std::fs::read(out.join(file)).unwrap() == std::fs::read(local.join(file)).unwrap(),
            "{file} differs"
        );
    }
    assert_eq!(summary["filter"], local_summary["filter"]);
    assert_eq!(summary["train"]["steps"], local_summary["train"]["steps"]);
    assert_eq!(summary["train"]["best"], local_summary["train"]["best"]);
    assert_eq!(summary["evaluation"]["metrics"], local_summary["evaluation"]["metrics"]);

    // `prism distill status` shows the shards and the array.
    let status = stdout_json(
        &common::command(&["distill", "status", &out.display().to_string(), "--json"], home)
            .output()
            .unwrap(),
    );
    let shards = status["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 4);
    assert!(shards.iter().all(|s| s["complete"] == true && s["state"] == "done"), "{status}");
    assert_eq!(status["state"], "finished", "{status}");
    assert_eq!(status["shards"][shard]["task"]["retries"], tasks[shard]["retries"]);
    let ended = &status["shards"][shard]["task"]["ended"][0];
    assert_eq!(
        (ended["job"].as_str(), ended["state"].as_str()),
        (cancelled.split_once('_').map(|c| c.0), Some("CANCELLED"))
    );

    // With `train_on_slurm`, merge → filter → train → evaluate run as one more Slurm job (what a
    // GPU node would do), to the same results.
    let mut global = global;
    let at = global.iter().position(|a| a == "--config").unwrap() + 1;
    let rest_config = home.join("config-rest.toml");
    let text = std::fs::read_to_string(&global[at]).unwrap() + "train_on_slurm = true\n";
    std::fs::write(&rest_config, text).unwrap();
    global[at] = rest_config.display().to_string();
    let remote = home.join("remote");
    let mut run = distill(home, &global, &preset, &remote, &["--backend", "slurm", "--shards", "3"]);
    let output = run.env("SLURM_CONF", &cluster.conf).output().unwrap();
    let summary = stdout_json(&output);
    let state = read_json(&remote.join("slurm/state.json"));
    assert_eq!(state["rest"]["tasks"][0]["state"], "DONE", "{state}");
    let job = state["rest"]["tasks"][0]["job"].as_str().unwrap().to_owned();
    let log = std::fs::read_to_string(remote.join(format!("slurm/rest-{job}.out"))).unwrap();
    assert!(log.contains("evaluate") && log.contains("[Finished]"), "{log}");
    assert_eq!(texts(&remote), texts(&local), "teacher explanations");
    for file in ["filter/kept.jsonl", "train/best/model.safetensors", "evaluate/explanations.jsonl"] {
        assert!(
            std::fs::read(remote.join(file)).unwrap() == std::fs::read(local.join(file)).unwrap(),
            "{file}"
        );
    }
    assert_eq!(summary["evaluation"]["metrics"], local_summary["evaluation"]["metrics"]);
    drop(cluster);
}

/// The queue as `squeue` shows it: task id (`JOB_K`) → state.
fn queue(cluster: &Cluster) -> std::collections::BTreeMap<String, String> {
    let text = cluster.slurm("squeue", &["-h", "-r", "-o", "%i|%T"]).unwrap_or_default();
    text.lines().filter_map(|l| l.trim().split_once('|')).map(|(i, s)| (i.to_owned(), s.to_owned())).collect()
}

/// `status --json` as it agrees with the queue around it: asked until the queue did not change
/// while status was read, then checked against it — a shard is running exactly when its task runs,
/// pending exactly when its task waits.
fn status_against_queue(cluster: &Cluster, home: &Path, dir: &Path) -> serde_json::Value {
    for _ in 0..20 {
        let before = queue(cluster);
        let status = status_json(home, dir, &[("SLURM_CONF", &cluster.conf.display().to_string())]);
        if queue(cluster) != before {
            continue;
        }
        assert_eq!(status["slurm"]["live"], true, "{status}");
        for shard in status["shards"].as_array().unwrap() {
            let id = shard["task"]["id"].as_str().unwrap_or_default();
            let queued = before.get(id).map(String::as_str);
            match shard["state"].as_str().unwrap() {
                // A cancelled task stays COMPLETING (in the queue) until its processes are gone.
                "running" => {
                    assert!(matches!(queued, Some("RUNNING" | "COMPLETING")), "{shard}\n{before:?}")
                }
                "pending" => assert!(
                    queued == Some("PENDING") || shard["detail"].as_str().unwrap().contains("no record"),
                    "{shard}\n{before:?}"
                ),
                "done" => {}
                _ => assert!(queued.is_none(), "an ended shard is not in the queue: {shard}\n{before:?}"),
            }
            if queued == Some("RUNNING") {
                assert_eq!(shard["state"], "running", "{shard}");
            }
        }
        return status;
    }
    panic!("the queue kept changing");
}

/// What `scontrol` says of one task now (`None`: no record).
fn scontrol_state(cluster: &Cluster, task: &str) -> Option<String> {
    let text = cluster.slurm("scontrol", &["show", "job", "-o", task])?;
    let state = text.split_whitespace().find_map(|f| f.strip_prefix("JobState="))?;
    Some(state.to_owned())
}

fn wait_until(what: &str, cluster: &Cluster, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}; {}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `distill status` against a real Slurm while tasks are cancelled with the coordinator alive and
/// after it was killed, and after a shard's retries are spent: each time `status --json` agrees
/// with `squeue`/`scontrol`, says whether a coordinator holds the job and how to continue it, and
/// the give-up is read back from events.jsonl by status and by the Jobs panel.
#[test]
fn status_agrees_with_slurm_through_cancels_a_killed_coordinator_and_spent_retries() {
    if !cluster_can_run() {
        return;
    }
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let cluster = Cluster::start(&home.join("cluster"));
    let (mut global, preset, samples) = job(home);
    // Tasks wait long enough to be caught running and pending; one retry per shard.
    let at = global.iter().position(|a| a == "--config").unwrap() + 1;
    let config = home.join("config-status.toml");
    let text =
        std::fs::read_to_string(&global[at]).unwrap().replace("sleep 3", "sleep 8") + "max_retries = 1\n";
    std::fs::write(&config, text).unwrap();
    global[at] = config.display().to_string();
    let conf = cluster.conf.display().to_string();
    let out = home.join("job");
    let started = Instant::now();
    let mut coordinator = distill(home, &global, &preset, &out, &["--backend", "slurm", "--shards", "4"])
        .env("SLURM_CONF", &conf)
        .spawn()
        .unwrap();
    let count = |q: &std::collections::BTreeMap<String, String>, state: &str| {
        q.values().filter(|s| *s == state).count()
    };
    wait_until("2 tasks running and 2 pending", &cluster, || {
        let q = queue(&cluster);
        count(&q, "RUNNING") == 2 && count(&q, "PENDING") == 2
    });

    // With the coordinator alive: cancel a running and a pending task; it records how they ended
    // and submits them again.
    let q = queue(&cluster);
    let running = q.iter().find(|(_, s)| *s == "RUNNING").unwrap().0.clone();
    let pending = q.iter().find(|(_, s)| *s == "PENDING").unwrap().0.clone();
    cluster.slurm("scancel", &[&running]).expect("scancel");
    cluster.slurm("scancel", &[&pending]).expect("scancel");
    let shard_of = |task: &str| -> usize { task.split_once('_').unwrap().1.parse().unwrap() };
    let (r, p) = (shard_of(&running), shard_of(&pending));
    let mut status = serde_json::Value::Null;
    wait_until("both cancelled tasks submitted again", &cluster, || {
        status = status_against_queue(&cluster, home, &out);
        [r, p].iter().all(|&k| status["shards"][k]["task"]["retries"] == 1)
    });
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(status["holders"]["coordinator"], true, "{status}");
    let ended = &status["shards"][r]["task"]["ended"][0];
    assert_eq!(
        (ended["job"].as_str(), ended["state"].as_str()),
        (running.split_once('_').map(|x| x.0), Some("CANCELLED"))
    );
    let ended = status["shards"][p]["task"]["ended"][0]["state"].as_str().unwrap();
    assert!(ended == "CANCELLED" || ended == "UNKNOWN", "{status}");
    let resubmitted =
        status["shards"][r]["task"]["id"].as_str().unwrap().split_once('_').unwrap().0.to_owned();

    // Kill the coordinator: status says at once that nothing follows the job, and how to continue.
    coordinator.kill().unwrap();
    coordinator.wait().unwrap();
    let status = status_against_queue(&cluster, home, &out);
    assert_eq!(status["holders"]["coordinator"], false, "{status}");
    assert_eq!(status["state"], "stopped", "{status}");
    let reason = status["reason"].as_str().unwrap();
    assert!(
        reason.contains("no coordinator holds the job") && reason.contains("still queued or running"),
        "{reason}"
    );
    let resume = status["resume"]["command"].as_str().unwrap();
    assert!(
        resume.contains(&format!("distill --out {} --resume --backend slurm", out.display())),
        "{resume}"
    );
    assert!(resume.contains(&format!("--config {}", config.display())), "{resume}");
    assert_eq!(status["next"].as_str().unwrap(), format!("continue with: {resume}"));

    // With nobody following: cancel a running task of the first submission and a waiting one of
    // the resubmission; within one poll interval (1 s) status shows what Slurm says.
    let q = queue(&cluster);
    let running = q.iter().find(|(_, s)| *s == "RUNNING").map(|(t, _)| t.clone()).expect("a task runs");
    let waiting = q
        .iter()
        .find(|(t, s)| t.starts_with(&format!("{resubmitted}_")) && *s == "PENDING")
        .map(|(t, _)| t.clone())
        .expect("a resubmitted task waits");
    cluster.slurm("scancel", &[&running]).expect("scancel");
    cluster.slurm("scancel", &[&waiting]).expect("scancel");
    // Slurm shows it COMPLETING until its processes are gone; from then on status must say
    // cancelled within one poll interval (1 s).
    wait_until("the cancelled task to leave the queue", &cluster, || !queue(&cluster).contains_key(&running));
    let cancelled_at = Instant::now();
    let status = status_against_queue(&cluster, home, &out);
    assert!(cancelled_at.elapsed() < Duration::from_secs(1), "status took {:?}", cancelled_at.elapsed());
    let shard = &status["shards"][shard_of(&running)];
    assert_eq!(shard["state"], "cancelled", "{shard}");
    assert_eq!(shard["task"]["seen"]["state"], "CANCELLED", "{shard}");
    assert_eq!(scontrol_state(&cluster, &running).as_deref(), Some("CANCELLED"));
    let shard = &status["shards"][shard_of(&waiting)];
    match scontrol_state(&cluster, &waiting).as_deref() {
        Some("CANCELLED") => assert_eq!(shard["state"], "cancelled", "{shard}"),
        // Slurm may forget a task cancelled while it waited: no record, then lost.
        None => assert!(shard["state"] == "pending" || shard["state"] == "lost", "{shard}"),
        Some(other) => panic!("scontrol says {other} of {waiting}"),
    }
    assert_eq!(status["holders"]["coordinator"], false);

    // Resume: the shard cancelled a second time has spent its retries; the coordinator stops and
    // says so in events.jsonl, with what to do.
    let output = distill(home, &global, &preset, &out, &["--resume", "--backend", "slurm"])
        .env("SLURM_CONF", &conf)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    let events = lines(&out.join("events.jsonl"));
    let last = events.last().unwrap();
    assert_eq!(last["kind"], "failed", "{last}");
    let message = last["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("teach task {} (job {resubmitted}) ended", shard_of(&waiting))),
        "{message}"
    );
    assert!(last["next"].as_str().unwrap().starts_with("raise [slurm] max_retries (now 1)"), "{last}");
    // No progress line ever read 0/0: Slurm's messages are their own kind.
    for e in events.iter().filter(|e| e["stage"] == "teach" && e["kind"] == "progress") {
        assert_eq!(e["total"], samples, "{e}");
    }
    let status = status_against_queue(&cluster, home, &out);
    assert_eq!(status["state"], "failed", "{status}");
    assert!(status["reason"].as_str().unwrap().starts_with(message), "{status}");
    assert_eq!(status["next"], last["next"]);
    assert_eq!(status["stages"][0]["total"], samples);

    // The Jobs panel shows the same, read through the same code.
    let options = prism_explorer::distill::status::Options { ask_slurm: true, poll_seconds: 1.0 };
    std::env::set_var("SLURM_CONF", &conf);
    let read = prism_explorer::distill::status::read(&out, &options).unwrap();
    let drawn = jobs_panel(&out, read);
    assert!(drawn.contains("failed") && drawn.contains("next: raise [slurm] max_retries"), "{drawn}");
    eprintln!("status scenario: {:.1} s on the cluster", started.elapsed().as_secs_f64());
    drop(cluster);
}

/// The Jobs panel (120×40) of an attached job that stands as `status` says.
fn jobs_panel(dir: &Path, status: prism_explorer::distill::status::JobStatus) -> String {
    use prism_explorer::tui::app::{update, App, Options};
    use prism_explorer::tui::event::Event;
    use prism_explorer::tui::panels::jobs::JobMsg;
    let mut app = App::new(Options {
        theme: prism_explorer::tui::theme::Theme::resolve("dark", false).unwrap(),
        keys: prism_explorer::tui::keys::KeyMap::default(),
        rankers: vec!["pop".into()],
        race_users: 1,
        oracle_dir: "/o".into(),
        prism_dir: "/p".into(),
        device: "cpu".into(),
        dataset: "tiny".into(),
        extra: Vec::new(),
        size: ratatui::layout::Rect::new(0, 0, 120, 40),
    });
    let jobs_tab = crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char('3'),
        crossterm::event::KeyModifiers::NONE,
    );
    update(&mut app, Event::Key(jobs_tab));
    update(&mut app, Event::Job(JobMsg::Started { dir: dir.to_path_buf(), started_here: false }));
    update(&mut app, Event::Job(JobMsg::Status(Box::new(status))));
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 40)).unwrap();
    terminal.draw(|frame| prism_explorer::tui::render::render(&app, frame)).unwrap();
    let buffer = terminal.backend().buffer();
    (0..buffer.area.height)
        .map(|y| (0..buffer.area.width).map(|x| buffer[(x, y)].symbol()).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A local (non-Slurm) sharded job stopped mid-stage, then killed: status tells a live job from
/// a killed one by its lock, reports a torn or garbage line at the end of its log instead of
/// reading it as running, and a finished job stays finished whatever its log ends in.
#[test]
fn a_local_job_killed_mid_stage_shows_as_stopped_with_the_command_to_continue() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (global, preset, _) = job(home);
    let out = home.join("job");
    let mut child = distill(home, &global, &preset, &out, &["--shards", "2"]).spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let start = Instant::now();
    while !std::fs::read_to_string(out.join("events.jsonl")).unwrap_or_default().contains("\"progress\"") {
        assert!(start.elapsed() < Duration::from_secs(120), "no progress");
        assert!(child.try_wait().unwrap().is_none(), "the job ended before it could be stopped");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Frozen where it is: alive, holding its locks.
    // SAFETY: kill has no preconditions; the pid is this test's own child, not yet reaped.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let status = status_json(home, &out, &[]);
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(status["holders"]["runner"], true, "{status}");
    assert!(status["slurm"].is_null(), "{status}");
    let states: Vec<&str> =
        status["shards"].as_array().unwrap().iter().map(|s| s["state"].as_str().unwrap()).collect();
    assert!(states.iter().all(|s| ["done", "running", "pending"].contains(s)), "{status}");
    child.kill().unwrap();
    child.wait().unwrap();

    let status = status_json(home, &out, &[]);
    assert_eq!(status["state"], "stopped", "{status}");
    assert_eq!(status["holders"]["runner"], false, "{status}");
    assert!(status["reason"].as_str().unwrap().contains("no process runs the job"), "{status}");
    let resume = status["resume"]["command"].as_str().unwrap();
    assert!(
        resume.contains(&format!("distill --out {} --resume", out.display())) && !resume.contains("slurm"),
        "{resume}"
    );
    for shard in status["shards"].as_array().unwrap() {
        assert!(["done", "stopped", "not_started"].contains(&shard["state"].as_str().unwrap()), "{shard}");
    }

    // Garbage, then a torn line, at the end of the log: reported, and the job is still stopped.
    let log = out.join("events.jsonl");
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut file, b"\x00\x00garbage\n{\"time\": 1").unwrap();
    let status = status_json(home, &out, &[]);
    assert_eq!(status["state"], "stopped", "{status}");
    let kinds: Vec<&str> =
        status["problems"].as_array().unwrap().iter().map(|p| p["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["unreadable", "torn"], "{status}");

    // Continued to its end, with garbage at the end of its log again: finished, garbage reported.
    let mut args: Vec<&str> = global.iter().map(String::as_str).collect();
    let out_arg = out.display().to_string();
    args.extend(["distill", "--out", &out_arg, "--resume", "--json"]);
    common::json(&common::command(&args, home).output().unwrap());
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut file, b"not json at all\n").unwrap();
    let status = status_json(home, &out, &[]);
    assert_eq!(status["state"], "finished", "{status}");
    assert!(status["resume"].is_null() && status["next"].is_null(), "{status}");
    let problems = status["problems"].as_array().unwrap();
    assert!(
        problems.iter().any(|p| p["kind"] == "unreadable" && p["excerpt"] == "not json at all"),
        "{status}"
    );
    let text = common::command(&["distill", "status", &out_arg], home).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("state     finished") && text.contains("problem: ") && text.contains("not json at all"),
        "{text}"
    );
}

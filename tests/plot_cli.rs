//! `prism bench --plot` and `prism distill plot`: the real binary draws its SVG figures from real
//! runs (a short benchmark of the embedded models; a training state as the trainer saves it), and
//! `--json` stays one document with each timed run's latency.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use prism_explorer::distill::finetune::Recipe;
use prism_explorer::train::trainer::{EvalRecord, TrainerState};

#[test]
fn bench_plot_draws_both_models_and_json_lists_every_run() {
    let home = tempfile::tempdir().unwrap();
    let svg = home.path().join("latency.svg");
    let out = common::command(
        &[
            "bench",
            "--json",
            "--warmup",
            "0",
            "--runs",
            "3",
            "--beams",
            "1",
            "--max-new-tokens",
            "4",
            "--inputs",
            "2",
            "--plot",
            svg.to_str().unwrap(),
        ],
        home.path(),
    )
    .output()
    .unwrap();
    let report = common::json(&out);
    for model in ["oracle", "prism"] {
        let runs = report[model]["latencies_ms"].as_array().unwrap();
        assert_eq!(runs.len(), 3, "{model}");
        assert!(runs.iter().all(|l| l.as_f64().unwrap() > 0.0), "{model}: {runs:?}");
    }
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(drawn.contains("oracle (3 runs)") && drawn.contains("prism (3 runs)"), "{drawn}");
    // No progress bar or control characters reach a stderr that is not a terminal.
    assert!(!String::from_utf8_lossy(&out.stderr).contains('\r'));
}

fn write_state(job: &Path, losses: Vec<f32>, dev: &[(usize, f64)]) {
    let recipe =
        Recipe::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/train/prism.toml")).unwrap();
    let history = dev
        .iter()
        .map(|&(step, loss)| EvalRecord {
            step,
            epoch: 0,
            metrics: BTreeMap::from([("dev_loss".to_owned(), loss)]),
        })
        .collect();
    let state = TrainerState {
        config: recipe.train,
        train_examples: 100,
        step: losses.len(),
        epoch: 1,
        batch: 0,
        best: None,
        evals_without_improvement: 0,
        history,
        losses,
    };
    let last = job.join("train/last");
    std::fs::create_dir_all(&last).unwrap();
    std::fs::write(last.join("trainer_state.json"), serde_json::to_vec(&state).unwrap()).unwrap();
}

#[test]
fn distill_plot_draws_the_train_and_validation_curves_of_a_job() {
    let home = tempfile::tempdir().unwrap();
    let job = home.path().join("job");
    let svg = home.path().join("curves.svg");
    let plot = |dir: &Path| {
        common::command(
            &["distill", "plot", dir.to_str().unwrap(), "--out", svg.to_str().unwrap()],
            home.path(),
        )
        .output()
        .unwrap()
    };
    let out = plot(&job);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no training run yet"));

    write_state(&job, (1..=30).map(|s| 4.0 / s as f32).collect(), &[(10, 0.9), (20, 0.6), (30, 0.5)]);
    let out = plot(&job);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("30 training steps and 3 validation points"));
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(drawn.contains("train loss") && drawn.contains("validation loss"));
    assert_eq!(drawn.matches("<circle").count(), 3);
    // A `prism train --out` directory plots the same way.
    assert!(plot(&job.join("train")).status.success());

    std::fs::write(job.join("train/last/trainer_state.json"), "{\"step\": 3").unwrap();
    let out = plot(&job);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("trainer_state.json"), "{err}");
}

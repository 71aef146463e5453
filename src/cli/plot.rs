//! SVG figures (plotters, SVG backend only): the latency distribution of each benchmarked model
//! (`prism bench --plot`) and a training run's loss curves (`prism distill plot`).

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use plotters::prelude::*;

const SIZE: (u32, u32) = (800, 480);

/// The empirical cumulative distribution of each model's latencies (`(name, latencies in ms)`),
/// on a log scale so a model ten times faster stays readable beside the slower one.
pub fn latencies(out: &Path, models: &[(&str, &[f64])]) -> Result<()> {
    let all = || models.iter().flat_map(|(_, l)| l.iter().copied());
    if all().next().is_none() {
        bail!("no latencies to plot");
    }
    if let Some(bad) = all().find(|l| !(l.is_finite() && *l > 0.0)) {
        bail!("a latency of {bad} ms cannot be plotted");
    }
    let lo = all().fold(f64::INFINITY, f64::min) * 0.9;
    let hi = all().fold(0.0, f64::max) * 1.1;
    let fail = |e: &dyn std::fmt::Display| anyhow!("cannot draw {}: {e}", out.display());
    let root = SVGBackend::new(out, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Latency per explanation", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((lo..hi).log_scale(), 0.0..1.0)
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .x_desc("latency (ms, log scale)")
        .y_desc("share of runs at most this long")
        .draw()
        .map_err(|e| fail(&e))?;
    for (i, (name, runs)) in models.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let mut sorted = runs.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as f64;
        // A step up by 1/n at each run's latency.
        let steps =
            sorted.iter().enumerate().flat_map(|(k, &x)| [(x, k as f64 / n), (x, (k + 1) as f64 / n)]);
        chart
            .draw_series(LineSeries::new(steps, color.stroke_width(2)))
            .map_err(|e| fail(&e))?
            .label(format!("{name} ({} runs)", runs.len()))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))
}

/// Training loss per optimizer step and the validation losses at their steps.
pub fn curves(out: &Path, train: &[(usize, f64)], dev: &[(usize, f64)]) -> Result<()> {
    let points = || train.iter().chain(dev);
    if train.is_empty() {
        bail!("no training steps to plot");
    }
    if let Some((step, bad)) = points().find(|(_, y)| !y.is_finite()) {
        bail!("the loss at step {step} is {bad}: cannot be plotted");
    }
    let last = points().map(|&(s, _)| s).max().unwrap_or(1).max(1);
    let top = points().map(|&(_, y)| y).fold(0.0, f64::max) * 1.05;
    let bottom = points().map(|&(_, y)| y).fold(f64::INFINITY, f64::min).min(0.0);
    let fail = |e: &dyn std::fmt::Display| anyhow!("cannot draw {}: {e}", out.display());
    let root = SVGBackend::new(out, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Training and validation loss", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0..last, bottom..top.max(bottom + 1e-6))
        .map_err(|e| fail(&e))?;
    chart.configure_mesh().x_desc("optimizer step").y_desc("loss").draw().map_err(|e| fail(&e))?;
    let blue = Palette99::pick(0).to_rgba();
    let red = Palette99::pick(1).to_rgba();
    chart
        .draw_series(LineSeries::new(train.iter().copied(), blue.stroke_width(1)))
        .map_err(|e| fail(&e))?
        .label("train loss (per step)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], blue.stroke_width(2)));
    if !dev.is_empty() {
        chart
            .draw_series(LineSeries::new(dev.iter().copied(), red.stroke_width(2)))
            .map_err(|e| fail(&e))?
            .label("validation loss (dev)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], red.stroke_width(2)));
        chart.draw_series(dev.iter().map(|&p| Circle::new(p, 3, red.filled()))).map_err(|e| fail(&e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_plot_draws_one_labelled_step_curve_per_model() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("latency.svg");
        latencies(&out, &[("oracle", &[120.0, 80.0, 100.0]), ("prism", &[9.0, 11.0])]).unwrap();
        let svg = std::fs::read_to_string(&out).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("oracle (3 runs)") && svg.contains("prism (2 runs)"));
        // Two curves and their two legend marks (the axes are drawn 1 wide).
        assert_eq!(svg.matches("stroke-width=\"2\"").count(), 4, "{svg}");
        assert!(latencies(&out, &[("oracle", &[])]).is_err());
        assert!(latencies(&out, &[("oracle", &[f64::NAN])]).unwrap_err().to_string().contains("NaN"));
    }

    #[test]
    fn curves_show_validation_points_and_refuse_non_finite_losses() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("curves.svg");
        let train: Vec<(usize, f64)> = (1..=40).map(|s| (s, 5.0 / s as f64)).collect();
        curves(&out, &train, &[(20, 0.5), (40, 0.3)]).unwrap();
        let svg = std::fs::read_to_string(&out).unwrap();
        assert!(svg.contains("train loss") && svg.contains("validation loss"));
        assert_eq!(svg.matches("<circle").count(), 2, "{svg}");
        let err = curves(&out, &[(1, 1.0), (2, f64::INFINITY)], &[]).unwrap_err().to_string();
        assert!(err.contains("step 2"), "{err}");
    }
}

//! AdamW as PyTorch defines it (decoupled weight decay, bias-corrected moments), with global-norm
//! gradient clipping and a learning-rate schedule. Owned here rather than taken from candle-nn so
//! its state can be saved and restored exactly.

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{Tensor, Var};

/// How the learning rate moves after warm-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Constant,
    /// Linear decay to 0 at the last step (transformers' default).
    Linear,
    /// Half-cosine decay to 0 at the last step.
    Cosine,
}

impl Schedule {
    /// The learning rate at optimizer step `step` (0-based) of `total`, after `warmup` linear steps.
    pub fn lr(self, peak: f64, step: usize, warmup: usize, total: usize) -> f64 {
        if step < warmup {
            return peak * (step + 1) as f64 / warmup as f64;
        }
        let decay_steps = total.saturating_sub(warmup).max(1) as f64;
        let progress = ((step - warmup) as f64 / decay_steps).min(1.0);
        match self {
            Schedule::Constant => peak,
            Schedule::Linear => peak * (1.0 - progress),
            Schedule::Cosine => peak * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct AdamWParams {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWParams {
    fn default() -> Self {
        AdamWParams { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 }
    }
}

/// One trainable tensor and its optimizer state.
struct Slot {
    name: String,
    var: Var,
    decay: bool,
    m: Tensor,
    v: Tensor,
}

pub struct AdamW {
    slots: Vec<Slot>,
    params: AdamWParams,
    /// Optimizer steps taken (the bias-correction exponent).
    pub steps: usize,
}

/// Biases and norm scales are not decayed, as in the transformers recipes.
fn decays(name: &str) -> bool {
    !(name.ends_with(".bias")
        || name.contains("layer_norm")
        || name.contains("layernorm")
        || name.ends_with("final_logits_bias"))
}

impl AdamW {
    /// `vars` by name; order them deterministically (the caller sorts by name).
    pub fn new(vars: Vec<(String, Var)>, params: AdamWParams) -> Result<AdamW> {
        let slots = vars
            .into_iter()
            .map(|(name, var)| {
                let m = var.zeros_like()?;
                let v = var.zeros_like()?;
                Ok(Slot { decay: decays(&name), name, var, m, v })
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(AdamW { slots, params, steps: 0 })
    }

    pub fn vars(&self) -> impl Iterator<Item = (&str, &Var)> {
        self.slots.iter().map(|s| (s.name.as_str(), &s.var))
    }

    /// Applies one update with `grads` (one per var, in order; `None` = no gradient) at `lr`,
    /// after scaling them so their global L2 norm is at most `clip` (when given). Returns the
    /// norm before clipping.
    pub fn step(&mut self, grads: &[Option<Tensor>], lr: f64, clip: Option<f64>) -> Result<f64> {
        let mut sum_sq = 0f64;
        for g in grads.iter().flatten() {
            sum_sq += g.sqr()?.sum_all()?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
        }
        let norm = sum_sq.sqrt();
        let scale = match clip {
            Some(max) if norm > max => max / (norm + 1e-6),
            _ => 1.0,
        };
        self.steps += 1;
        let AdamWParams { beta1, beta2, eps, weight_decay } = self.params;
        let correction1 = 1.0 - beta1.powi(self.steps as i32);
        let correction2 = 1.0 - beta2.powi(self.steps as i32);
        for (slot, grad) in self.slots.iter_mut().zip(grads) {
            let Some(grad) = grad else { continue };
            let grad = if scale != 1.0 { (grad * scale)? } else { grad.clone() };
            slot.m = ((&slot.m * beta1)? + (&grad * (1.0 - beta1))?)?;
            slot.v = ((&slot.v * beta2)? + (grad.sqr()? * (1.0 - beta2))?)?;
            let update = ((&slot.m / correction1)? / ((&slot.v / correction2)?.sqrt()? + eps)?)?;
            let theta = slot.var.as_tensor();
            let decayed = if slot.decay && weight_decay > 0.0 {
                (theta * (1.0 - lr * weight_decay))?
            } else {
                theta.clone()
            };
            slot.var.set(&(decayed - (update * lr)?)?)?;
        }
        Ok(norm)
    }

    /// Writes the moments to `path` (safetensors, keys `m.NAME` / `v.NAME`).
    pub fn save(&self, path: &Path) -> Result<()> {
        let tensors: Vec<(String, Tensor)> = self
            .slots
            .iter()
            .flat_map(|s| [(format!("m.{}", s.name), s.m.clone()), (format!("v.{}", s.name), s.v.clone())])
            .collect();
        candle_core::safetensors::save(&tensors.into_iter().collect(), path)
            .with_context(|| format!("cannot write optimizer state {}", path.display()))
    }

    /// Restores the moments written by [`AdamW::save`] and the step count.
    pub fn load(&mut self, path: &Path, steps: usize) -> Result<()> {
        let device = self.slots.first().map(|s| s.var.device().clone()).unwrap_or(candle_core::Device::Cpu);
        let saved = candle_core::safetensors::load(path, &device)
            .with_context(|| format!("cannot read optimizer state {}", path.display()))?;
        for slot in &mut self.slots {
            let get = |key: String| {
                saved.get(&key).cloned().with_context(|| format!("{}: no tensor {key}", path.display()))
            };
            slot.m = get(format!("m.{}", slot.name))?;
            slot.v = get(format!("v.{}", slot.name))?;
        }
        self.steps = steps;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn schedules() {
        let lin = |s| Schedule::Linear.lr(1.0, s, 10, 110);
        assert!((lin(0) - 0.1).abs() < 1e-12 && (lin(9) - 1.0).abs() < 1e-12);
        assert!((lin(60) - 0.5).abs() < 1e-12 && lin(110) == 0.0);
        let cos = |s| Schedule::Cosine.lr(1.0, s, 0, 100);
        assert!((cos(0) - 1.0).abs() < 1e-12 && (cos(50) - 0.5).abs() < 1e-12 && cos(100).abs() < 1e-12);
        assert_eq!(Schedule::Constant.lr(0.3, 500, 10, 100), 0.3);
    }

    /// One step by hand, as `torch.optim.AdamW(lr=0.1, weight_decay=0.5)` takes it: decay first,
    /// θ(1 − 0.05) = [0.95, −1.9], then Adam's first step moves each by lr·sign(g) = 0.1.
    #[test]
    fn first_step_matches_pytorch() {
        let var = Var::from_vec(vec![1f32, -2.0], 2, &Device::Cpu).unwrap();
        let params = AdamWParams { weight_decay: 0.5, ..AdamWParams::default() };
        let mut opt = AdamW::new(vec![("w".into(), var.clone())], params).unwrap();
        let grad = Tensor::new(&[0.5f32, 0.25], &Device::Cpu).unwrap();
        opt.step(&[Some(grad)], 0.1, None).unwrap();
        let got = var.as_tensor().to_vec1::<f32>().unwrap();
        assert!((got[0] - 0.85).abs() < 1e-5 && (got[1] - -2.0).abs() < 1e-5, "{got:?}");
    }

    #[test]
    fn clipping_scales_to_the_global_norm() {
        let var = Var::from_vec(vec![0f32, 0.0], 2, &Device::Cpu).unwrap();
        let params = AdamWParams { weight_decay: 0.0, ..AdamWParams::default() };
        let mut opt = AdamW::new(vec![("w.bias".into(), var)], params).unwrap();
        let grad = Tensor::new(&[3f32, 4.0], &Device::Cpu).unwrap();
        let norm = opt.step(&[Some(grad)], 0.1, Some(1.0)).unwrap();
        assert!((norm - 5.0).abs() < 1e-6);
        let m = opt.slots[0].m.to_vec1::<f32>().unwrap();
        assert!((m[0] - 0.1 * 0.6).abs() < 1e-6 && (m[1] - 0.1 * 0.8).abs() < 1e-6, "{m:?}");
    }
}

//! BPR-MF (Rendle et al., UAI 2009): matrix factorisation with item biases, trained in Rust by SGD
//! on sampled (user, positive, negative) triples, seeded and reproducible, stopped early on dev
//! NDCG@K, and cached as safetensors keyed by a hash of the data and hyper-parameters.
//!
//! SGD runs on one thread: Hogwild-style parallel updates would make results depend on thread
//! scheduling. The per-epoch dev evaluation, the expensive part, runs on all threads with
//! per-user results combined in a fixed order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::Serialize;

use super::eval::{evaluate_with, held_out};
use super::{Ranker, TrainMatrix};
use crate::config::BprSettings;
use crate::data::{Dataset, ItemIdx, Part, Split, UserIdx};

/// Early stopping evaluates on at most this many dev users (a fixed seeded sample), which keeps an
/// epoch's evaluation cheap on large datasets without changing results on small ones.
pub const DEV_SAMPLE: usize = 2000;
/// Bumped whenever training or the file layout changes, so stale caches are not reused.
const FORMAT_VERSION: &str = "prism-bpr-1";

/// How a model came to be: reported by the CLI and stored in the cache file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainReport {
    pub epochs_run: usize,
    pub best_epoch: usize,
    pub best_dev_ndcg: f64,
    pub train_seconds: f64,
    pub from_cache: bool,
}

pub struct Bpr {
    factors: usize,
    user_factors: Vec<f32>,
    item_factors: Vec<f32>,
    item_bias: Vec<f32>,
    report: TrainReport,
}

impl Bpr {
    pub fn report(&self) -> &TrainReport {
        &self.report
    }

    /// Trains from scratch. `progress` receives one line per epoch. Stops with an error naming
    /// the epoch when the factors stop being finite numbers (a learning rate too large for the
    /// data): a model that scores every item NaN ranks nothing.
    pub fn train(
        dataset: &Dataset,
        split: &Split,
        train: &TrainMatrix,
        config: &BprSettings,
        k: usize,
        progress: &dyn Fn(&str),
    ) -> Result<Bpr> {
        let mut checks = crate::validate::Checks::new();
        config.check(&mut checks);
        checks.int("ranker.k", k, 1, 100_000);
        checks.finish("BPR settings")?;
        let start = Instant::now();
        let f = config.factors.max(1);
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let mut init = |n: usize| -> Vec<f32> { (0..n).map(|_| (rng.random::<f32>() - 0.5) * 0.2).collect() };
        let mut model = Bpr {
            factors: f,
            user_factors: init(train.num_users() * f),
            item_factors: init(train.num_items() * f),
            item_bias: vec![0.0; train.num_items()],
            report: TrainReport {
                epochs_run: 0,
                best_epoch: 0,
                best_dev_ndcg: 0.0,
                train_seconds: 0.0,
                from_cache: false,
            },
        };
        let dev = dev_sample(dataset, split, config.seed);
        let mut best: Option<Snapshot> = None;
        for epoch in 1..=config.epochs {
            model.epoch(train, config, &mut rng);
            model.report.epochs_run = epoch;
            if !model.is_finite() {
                bail!(
                    "BPR training diverged in epoch {epoch}: its factors are no longer finite numbers \
                     (ranker.bpr.learning_rate = {}, ranker.bpr.regularization = {}); lower the \
                     learning rate. No model was cached",
                    config.learning_rate,
                    config.regularization
                );
            }
            if dev.is_empty() {
                progress(&format!("bpr epoch {epoch}/{}: no dev items, training all epochs", config.epochs));
                continue;
            }
            let ndcg = evaluate_with(train, &dev, k, |u, s| model.score_items(u, s)).ndcg;
            if best.as_ref().is_none_or(|b| ndcg > b.ndcg) {
                best = Some(Snapshot {
                    ndcg,
                    epoch,
                    user_factors: model.user_factors.clone(),
                    item_factors: model.item_factors.clone(),
                    item_bias: model.item_bias.clone(),
                });
            }
            let (best_ndcg, best_epoch) = best.as_ref().map_or((ndcg, epoch), |b| (b.ndcg, b.epoch));
            progress(&format!(
                "bpr epoch {epoch}/{}: dev ndcg@{} {ndcg:.4} (best {best_ndcg:.4} at epoch {best_epoch}), {:.1}s",
                config.epochs,
                k,
                start.elapsed().as_secs_f64()
            ));
            if config.patience > 0 && epoch - best_epoch >= config.patience {
                break;
            }
        }
        if let Some(best) = best {
            model.user_factors = best.user_factors;
            model.item_factors = best.item_factors;
            model.item_bias = best.item_bias;
            model.report.best_epoch = best.epoch;
            model.report.best_dev_ndcg = best.ndcg;
        } else {
            model.report.best_epoch = model.report.epochs_run;
        }
        model.report.train_seconds = start.elapsed().as_secs_f64();
        Ok(model)
    }

    fn is_finite(&self) -> bool {
        [&self.user_factors, &self.item_factors, &self.item_bias]
            .iter()
            .all(|v| v.iter().all(|x| x.is_finite()))
    }

    /// One pass of as many SGD steps as there are train pairs.
    fn epoch(&mut self, train: &TrainMatrix, config: &BprSettings, rng: &mut ChaCha8Rng) {
        let f = self.factors;
        let (lr, reg) = (config.learning_rate, config.regularization);
        let num_items = train.num_items() as ItemIdx;
        for _ in 0..train.nnz() {
            let (u, i) = train.pair(rng.random_range(0..train.nnz()));
            // Rejection sampling: with sparse histories a negative is almost always found at once.
            let Some(j) = (0..64).map(|_| rng.random_range(0..num_items)).find(|&j| !train.contains(u, j))
            else {
                continue;
            };
            let (i, j) = (i as usize, j as usize);
            let p = &mut self.user_factors[u as usize * f..(u as usize + 1) * f];
            let (qi, qj) = two_rows_mut(&mut self.item_factors, i, j, f);
            let x = self.item_bias[i] - self.item_bias[j] + dot(p, qi) - dot(p, qj);
            // d/dx ln σ(x) = σ(−x).
            let g = 1.0 / (1.0 + x.exp());
            for ((p, a), b) in p.iter_mut().zip(qi.iter_mut()).zip(qj.iter_mut()) {
                let (p0, a0, b0) = (*p, *a, *b);
                *p += lr * (g * (a0 - b0) - reg * p0);
                *a += lr * (g * p0 - reg * a0);
                *b += lr * (-g * p0 - reg * b0);
            }
            self.item_bias[i] += lr * (g - reg * self.item_bias[i]);
            self.item_bias[j] += lr * (-g - reg * self.item_bias[j]);
        }
    }

    /// Loads the cached model for this data and configuration, or trains and caches one.
    /// A missing, stale or unreadable cache file only means training again.
    pub fn train_or_load(
        dataset: &Dataset,
        split: &Split,
        train: &TrainMatrix,
        config: &BprSettings,
        k: usize,
        cache_dir: Option<&Path>,
        progress: &dyn Fn(&str),
    ) -> Result<Bpr> {
        let Some(dir) = cache_dir else {
            return Bpr::train(dataset, split, train, config, k, progress);
        };
        let key = cache_key(dataset, split, train, config, k);
        let path = cache_path(dir, &key);
        if path.is_file() {
            match Bpr::load(&path, &key, train) {
                Ok(model) => return Ok(model),
                Err(e) => progress(&format!("ignoring cached model: {e:#}")),
            }
        }
        let model = Bpr::train(dataset, split, train, config, k, progress)?;
        match model.save(&path, &key) {
            Ok(()) => progress(&format!("cached the BPR model in {}", path.display())),
            Err(e) => progress(&format!("could not cache the BPR model: {e:#}")),
        }
        Ok(model)
    }

    /// Writes the model as safetensors (via a temporary file, so readers never see half a file).
    pub fn save(&self, path: &Path, key: &str) -> Result<()> {
        let bytes = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
        let (users, items, bias) =
            (bytes(&self.user_factors), bytes(&self.item_factors), bytes(&self.item_bias));
        let num_items = self.item_bias.len();
        let tensors = [
            ("item_bias", TensorView::new(Dtype::F32, vec![num_items], &bias)?),
            ("item_factors", TensorView::new(Dtype::F32, vec![num_items, self.factors], &items)?),
            (
                "user_factors",
                TensorView::new(
                    Dtype::F32,
                    vec![self.user_factors.len() / self.factors, self.factors],
                    &users,
                )?,
            ),
        ];
        let r = &self.report;
        let metadata: HashMap<String, String> = [
            ("format", FORMAT_VERSION.to_owned()),
            ("key", key.to_owned()),
            ("epochs_run", r.epochs_run.to_string()),
            ("best_epoch", r.best_epoch.to_string()),
            ("best_dev_ndcg", r.best_dev_ndcg.to_string()),
            ("train_seconds", r.train_seconds.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let data = safetensors::serialize(tensors, Some(metadata))?;
        crate::durable::write_file(path, &data)
    }

    /// Reads a model saved by [`Bpr::save`] for `key`; the shapes must match `train`.
    pub fn load(path: &Path, key: &str, train: &TrainMatrix) -> Result<Bpr> {
        let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let (_, header) = SafeTensors::read_metadata(&data)
            .with_context(|| format!("{}: not safetensors", path.display()))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let field = |name: &str| meta.get(name).cloned().unwrap_or_default();
        if field("format") != FORMAT_VERSION || field("key") != key {
            bail!("{}: written for other data or settings", path.display());
        }
        let tensors = SafeTensors::deserialize(&data)
            .with_context(|| format!("{}: not safetensors", path.display()))?;
        let read = |name: &str, rows: usize| -> Result<(Vec<f32>, usize)> {
            let t = tensors.tensor(name).with_context(|| format!("{}: no tensor {name}", path.display()))?;
            let cols = t.shape().get(1).copied().unwrap_or(1);
            if t.dtype() != Dtype::F32 || t.shape().first() != Some(&rows) {
                bail!(
                    "{}: tensor {name} has {:?} {:?}, expected {rows} rows of f32",
                    path.display(),
                    t.dtype(),
                    t.shape()
                );
            }
            let values =
                t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            Ok((values, cols))
        };
        let (user_factors, factors) = read("user_factors", train.num_users())?;
        let (item_factors, item_cols) = read("item_factors", train.num_items())?;
        let (item_bias, _) = read("item_bias", train.num_items())?;
        if item_cols != factors {
            bail!("{}: user and item factors differ in width", path.display());
        }
        let number = |name: &str| field(name).parse::<f64>().unwrap_or(0.0);
        Ok(Bpr {
            factors,
            user_factors,
            item_factors,
            item_bias,
            report: TrainReport {
                epochs_run: number("epochs_run") as usize,
                best_epoch: number("best_epoch") as usize,
                best_dev_ndcg: number("best_dev_ndcg"),
                train_seconds: number("train_seconds"),
                from_cache: true,
            },
        })
    }
}

impl Ranker for Bpr {
    fn name(&self) -> &str {
        "bpr"
    }

    fn score_items(&self, user: UserIdx, scores: &mut [f32]) {
        let f = self.factors;
        let p = &self.user_factors[user as usize * f..(user as usize + 1) * f];
        for ((score, q), b) in scores.iter_mut().zip(self.item_factors.chunks_exact(f)).zip(&self.item_bias) {
            *score = b + dot(p, q);
        }
    }
}

/// The parameters at the best dev epoch so far.
struct Snapshot {
    ndcg: f64,
    epoch: usize,
    user_factors: Vec<f32>,
    item_factors: Vec<f32>,
    item_bias: Vec<f32>,
}

/// Dot product with eight independent partial sums: one running sum forces strictly sequential
/// float adds, which the compiler may not vectorise; eight lanes map onto SIMD registers.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    let mut acc = [0.0f32; 8];
    for (x, y) in ca.zip(cb) {
        for ((s, x), y) in acc.iter_mut().zip(x).zip(y) {
            *s += x * y;
        }
    }
    acc.iter().sum::<f32>() + tail
}

fn two_rows_mut(m: &mut [f32], i: usize, j: usize, f: usize) -> (&mut [f32], &mut [f32]) {
    debug_assert_ne!(i, j);
    if i < j {
        let (a, b) = m.split_at_mut(j * f);
        (&mut a[i * f..(i + 1) * f], &mut b[..f])
    } else {
        let (a, b) = m.split_at_mut(i * f);
        (&mut b[..f], &mut a[j * f..(j + 1) * f])
    }
}

/// Dev cases for early stopping: all of them, or a seeded sample of [`DEV_SAMPLE`].
fn dev_sample(dataset: &Dataset, split: &Split, seed: u64) -> Vec<(UserIdx, ItemIdx)> {
    let cases = held_out(dataset, split, Part::Dev);
    if cases.len() <= DEV_SAMPLE {
        return cases;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let mut picked = rand::seq::index::sample(&mut rng, cases.len(), DEV_SAMPLE).into_vec();
    picked.sort_unstable();
    picked.into_iter().map(|i| cases[i]).collect()
}

/// FNV-1a: a stable hash (std's `DefaultHasher` may change between Rust releases).
struct Fnv(u64);

impl Fnv {
    fn bytes(&mut self, data: &[u8]) {
        for &b in data {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.bytes(s.as_bytes());
    }

    fn u64(&mut self, x: u64) {
        self.bytes(&x.to_le_bytes());
    }
}

/// A hash of everything training depends on: the content of the input files, ids, train pairs,
/// dev items and hyper-parameters.
pub fn cache_key(
    dataset: &Dataset,
    split: &Split,
    train: &TrainMatrix,
    config: &BprSettings,
    k: usize,
) -> String {
    /// The hyper-parameters as keys have always spelled them (`cache` is not one), so caches made
    /// before stay valid.
    #[derive(Serialize)]
    struct Hyper {
        factors: usize,
        epochs: usize,
        learning_rate: f32,
        regularization: f32,
        patience: usize,
        seed: u64,
        k: usize,
    }
    let BprSettings { factors, epochs, learning_rate, regularization, patience, seed, cache: _ } = *config;
    let hyper = Hyper { factors, epochs, learning_rate, regularization, patience, seed, k };
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    h.str(FORMAT_VERSION);
    h.str(&dataset.content_key());
    h.str(&serde_json::to_string(&hyper).unwrap_or_default());
    h.u64(dataset.num_users() as u64);
    for id in &dataset.users {
        h.str(id);
    }
    h.u64(dataset.num_items() as u64);
    for item in &dataset.items {
        h.str(&item.id);
    }
    for u in 0..train.num_users() as UserIdx {
        h.u64(u64::MAX);
        for &i in train.items_of(u) {
            h.u64(i as u64);
        }
    }
    for (u, i) in held_out(dataset, split, Part::Dev) {
        h.u64(((u as u64) << 32) | i as u64);
    }
    format!("{:016x}", h.0)
}

/// Where the model for `key` lives under the cache directory.
pub fn cache_path(dir: &Path, key: &str) -> PathBuf {
    dir.join("bpr").join(format!("bpr-{key}.safetensors"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synth::{generate, SynthConfig};
    use crate::rank::eval::evaluate;
    use crate::rank::Popularity;

    const K: usize = 10;

    fn config() -> BprSettings {
        BprSettings {
            factors: 16,
            epochs: 30,
            learning_rate: 0.05,
            regularization: 0.002,
            patience: 4,
            seed: 7,
            cache: true,
        }
    }

    fn data() -> (Dataset, Split, TrainMatrix) {
        let d = generate(&SynthConfig {
            users: 150,
            items: 200,
            interactions: 6000,
            references: false,
            ..Default::default()
        })
        .unwrap();
        let split = Split::leave_last_out(&d);
        let train = TrainMatrix::new(&d, &split);
        (d, split, train)
    }

    #[test]
    fn learns_more_than_popularity_and_is_reproducible() {
        let (d, split, train) = data();
        let a = Bpr::train(&d, &split, &train, &config(), K, &|_| {}).unwrap();
        let b = Bpr::train(&d, &split, &train, &config(), K, &|_| {}).unwrap();
        assert_eq!(a.user_factors, b.user_factors);
        assert_eq!(a.report.best_epoch, b.report.best_epoch);
        let dev_bpr = evaluate(&a, &d, &split, &train, Part::Dev, 10);
        let dev_pop = evaluate(&Popularity::fit(&train), &d, &split, &train, Part::Dev, 10);
        assert!(dev_bpr.ndcg > dev_pop.ndcg, "bpr {dev_bpr:?} vs pop {dev_pop:?}");
        assert!((dev_bpr.ndcg - a.report.best_dev_ndcg).abs() < 1e-9);
    }

    #[test]
    fn dot_matches_the_plain_sum_for_any_length() {
        for n in [0, 3, 8, 13, 64] {
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 3.0).collect();
            let b: Vec<f32> = (0..n).map(|i| 1.0 - i as f32 * 0.25).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - plain).abs() < 1e-4, "n = {n}");
        }
    }

    #[test]
    fn early_stopping_keeps_the_best_epoch() {
        let (d, split, train) = data();
        // A learning rate this high overshoots, so dev NDCG peaks early and patience stops it.
        let c = BprSettings { learning_rate: 0.5, epochs: 40, patience: 2, ..config() };
        let lines = std::sync::Mutex::new(Vec::new());
        let m = Bpr::train(&d, &split, &train, &c, K, &|l| lines.lock().unwrap().push(l.to_owned())).unwrap();
        assert!(m.report.epochs_run < 40, "{:?}", m.report);
        assert_eq!(m.report.epochs_run, m.report.best_epoch + 2);
        assert_eq!(lines.lock().unwrap().len(), m.report.epochs_run);
    }

    #[test]
    fn a_diverging_or_non_finite_configuration_fails_and_caches_nothing() {
        let (d, split, train) = data();
        let dir = tempfile::tempdir().unwrap();
        // In range, yet each step multiplies the factors by 1 − lr·reg = −99: they overflow.
        let huge = BprSettings { learning_rate: 10.0, regularization: 10.0, ..config() };
        let err = Bpr::train_or_load(&d, &split, &train, &huge, K, Some(dir.path()), &|_| {}).err().unwrap();
        let message = format!("{err:#}");
        assert!(
            message.contains("diverged in epoch 1") && message.contains("learning_rate = 10"),
            "{message}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "a diverged model was cached");
        for bad in [f32::NAN, f32::INFINITY, 1e30, 0.0] {
            let c = BprSettings { learning_rate: bad, ..config() };
            let err = format!(
                "{:#}",
                Bpr::train_or_load(&d, &split, &train, &c, K, Some(dir.path()), &|_| {}).err().unwrap()
            );
            assert!(err.contains("ranker.bpr.learning_rate"), "{err}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn cache_round_trips_and_is_keyed_by_settings() {
        let (d, split, train) = data();
        let dir = tempfile::tempdir().unwrap();
        let c = BprSettings { epochs: 2, ..config() };
        let trained = Bpr::train_or_load(&d, &split, &train, &c, K, Some(dir.path()), &|_| {}).unwrap();
        assert!(!trained.report.from_cache);
        let cached = Bpr::train_or_load(&d, &split, &train, &c, K, Some(dir.path()), &|_| {}).unwrap();
        assert!(cached.report.from_cache);
        assert_eq!(cached.user_factors, trained.user_factors);
        assert_eq!(cached.item_bias, trained.item_bias);
        assert_eq!(cached.report.best_epoch, trained.report.best_epoch);
        let other = BprSettings { seed: 8, ..c.clone() };
        assert_ne!(cache_key(&d, &split, &train, &c, K), cache_key(&d, &split, &train, &other, K));
        let retrained = Bpr::train_or_load(&d, &split, &train, &other, K, Some(dir.path()), &|_| {}).unwrap();
        assert!(!retrained.report.from_cache);
        // A corrupt file is retrained over, not an error.
        let path = cache_path(dir.path(), &cache_key(&d, &split, &train, &c, K));
        std::fs::write(&path, b"garbage").unwrap();
        let lines = std::sync::Mutex::new(Vec::new());
        let again = Bpr::train_or_load(&d, &split, &train, &c, K, Some(dir.path()), &|l| {
            lines.lock().unwrap().push(l.to_owned())
        })
        .unwrap();
        assert!(!again.report.from_cache);
        assert!(lines.lock().unwrap()[0].contains("ignoring cached model"));
    }
}

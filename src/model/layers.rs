//! Building blocks shared by the T5 and BART implementations: a weight loader that remembers
//! every tensor it hands out (for saving and parameter counts), linear layers, explicit
//! (differentiable) RMS and layer norms, activations, attention masks, the residual sublayer and
//! the feed-forward block. Multi-head attention, built from these, is in [`super::attention`].
//!
//! By default everything here has a backward pass: softmax is `candle_nn::ops::softmax` and the
//! norms are written out, because candle's fused `softmax_last_dim` and norms give no gradient.
//! [`Kernels::Fused`] selects those fused kernels explicitly, for inference only.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use std::collections::HashMap;

use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device, Module, Result, Shape, Tensor, D};
use candle_nn::{Init, VarBuilder};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::mapped::MappedSafetensors;
use super::quant::{QWeight, WeightDtype};

/// The additive bias for a masked attention position. Finite (unlike `f32::MIN` sums, which can
/// reach `-inf` and turn a fully masked row into NaN) and large enough that `exp` underflows to 0.
pub const MASKED: f64 = -1e9;

/// Which kernels a model's forward pass uses, chosen when it is built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kernels {
    /// Ops with a backward pass (explicit softmax and norms): required for training.
    #[default]
    Differentiable,
    /// Fused kernels (our vectorised softmax, GELUs, norms and few-rows matrix products in
    /// [`super::kernels`]): faster inference, but **no gradients**.
    Fused,
}

/// How many rows a linear layer multiplies at once in inference, which decides how a dense weight
/// is kept under [`Kernels::Fused`] (measured in docs/BENCHMARKS.md, "Every core, and the
/// decoder's weights as stored").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Rows {
    /// A prompt's tokens (the encoder; a decoder's cross-attention keys and values): `Wᵀ` copied
    /// contiguous, the layout `gemm` multiplies fastest (1.1–2.1× faster than the transposed view
    /// of `W` at 300 rows).
    #[default]
    Many,
    /// One row per beam (a decoder step): `W` as the checkpoint stores it, each output a dot
    /// product along a contiguous row ([`super::kernels::matmul`]), 1.3–2.1× faster than `Wᵀ`'s
    /// columns for one row, and nothing to copy at load.
    Few,
}

/// Quantized matrices read from a quantized checkpoint, by checkpoint key.
pub type StoredQuantized = Arc<HashMap<String, QWeight>>;

/// A `VarBuilder` that records each tensor it returns under its full checkpoint key, so a model
/// knows its own parameters by their Hugging Face names (for saving and for counting). It also
/// knows the weights' precision: under `q8`/`q4` it hands out matrices quantized (or as a
/// quantized checkpoint stored them) and records those apart.
#[derive(Clone)]
pub struct Weights<'a> {
    vb: VarBuilder<'a>,
    seen: Arc<Mutex<BTreeMap<String, Tensor>>>,
    quantized: Arc<Mutex<BTreeMap<String, QWeight>>>,
    stored: Option<StoredQuantized>,
    /// The memory-mapped checkpoint behind `vb`, where there is one: a fused linear layer reads
    /// its weight from it already transposed.
    mapped: Option<MappedSafetensors>,
    precision: WeightDtype,
    kernels: Kernels,
    rows: Rows,
    training: TrainingSwitch,
}

impl<'a> Weights<'a> {
    pub fn new(vb: VarBuilder<'a>, kernels: Kernels) -> Self {
        Weights {
            vb,
            seen: Arc::new(Mutex::new(BTreeMap::new())),
            quantized: Arc::new(Mutex::new(BTreeMap::new())),
            stored: None,
            mapped: None,
            precision: WeightDtype::F32,
            kernels,
            rows: Rows::Many,
            training: TrainingSwitch::default(),
        }
    }

    /// Hands out matrices in `precision`, taking those in `stored` as they are.
    pub fn with_precision(mut self, precision: WeightDtype, stored: Option<StoredQuantized>) -> Self {
        self.precision = precision;
        self.stored = stored;
        self
    }

    /// Reads fused linear layers' weights transposed from `mapped`, the files `vb` reads.
    pub fn with_mapped(mut self, mapped: Option<MappedSafetensors>) -> Self {
        self.mapped = mapped;
        self
    }

    pub fn pp(&self, s: impl ToString) -> Self {
        Weights { vb: self.vb.pp(s), ..self.clone() }
    }

    /// This loader for linear layers that multiply `rows` at once.
    pub fn for_rows(&self, rows: Rows) -> Self {
        Weights { rows, ..self.clone() }
    }

    pub fn precision(&self) -> WeightDtype {
        self.precision
    }

    /// This loader with dense weights fetched in f32: transformers keeps T5's feed-forward `wo`
    /// in f32 when the model is loaded in f16 (`_keep_in_fp32_modules`), where its products
    /// overflow.
    pub fn keep_in_f32(&self) -> Self {
        if self.vb.dtype() == DType::F16 {
            Weights { vb: self.vb.to_dtype(DType::F32), ..self.clone() }
        } else {
            self.clone()
        }
    }

    /// The training switch shared by every [`Dropout`] this loader creates.
    pub fn training_switch(&self) -> TrainingSwitch {
        self.training.clone()
    }

    /// A dropout layer tied to this model's training switch.
    pub fn dropout(&self, p: f64) -> Dropout {
        Dropout { p: p as f32, training: self.training.clone() }
    }

    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    pub fn device(&self) -> &Device {
        self.vb.device()
    }

    pub fn dtype(&self) -> DType {
        self.vb.dtype()
    }

    /// The full key of `name` under this prefix.
    pub fn key(&self, name: &str) -> String {
        let prefix = self.vb.prefix();
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        }
    }

    /// Whether the checkpoint (or, for a `VarMap`, the map so far) holds `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.vb.contains_tensor(name) || self.stored.as_ref().is_some_and(|s| s.contains_key(&self.key(name)))
    }

    /// An `[out, in]` matrix: as a quantized checkpoint stored it, quantized to `block` when one is
    /// given, dense otherwise.
    pub fn matrix(
        &self,
        (rows, cols): (usize, usize),
        name: &str,
        init: Init,
        block: Option<GgmlDType>,
    ) -> Result<Matrix> {
        let key = self.key(name);
        if let Some(q) = self.stored.as_ref().and_then(|s| s.get(&key)) {
            if q.dims()? != (rows, cols) {
                candle_core::bail!(
                    "shape mismatch for {key}: the quantized checkpoint has {:?}, the config expects [{rows}, {cols}]",
                    q.dims()?
                );
            }
            self.record_quantized(key, q.clone())?;
            return Ok(Matrix::Quantized(q.clone()));
        }
        let Some(block) = block else {
            return Ok(Matrix::Dense(self.get((rows, cols), name, init)?));
        };
        // From a mapped checkpoint the blocks are made row by row from the map (no f32 copy of
        // the matrix); otherwise the dense tensor is dropped once quantized.
        let q = match &self.mapped {
            Some(mapped) if self.device().is_cpu() && mapped.shape(&key) == Some(&[rows, cols]) => {
                QWeight::from_qtensor(mapped.load_quantized(&key, block)?)?
            }
            _ => QWeight::quantize(&self.vb.get_with_hints((rows, cols), name, init)?, block)?,
        };
        self.record_quantized(key, q.clone())?;
        Ok(Matrix::Quantized(q))
    }

    /// `Wᵀ` (`[cols, rows]`, contiguous) of the dense `[rows, cols]` matrix `name`, read
    /// transposed from the mapped checkpoint in one pass (no `[rows, cols]` copy to transpose)
    /// and recorded as the transposed view of it; `None` where there is no map or it lacks
    /// `name`, for [`Weights::matrix`] to read (or report missing).
    pub fn transposed_from_map(&self, (rows, cols): (usize, usize), name: &str) -> Result<Option<Tensor>> {
        let key = self.key(name);
        let Some(mapped) = &self.mapped else { return Ok(None) };
        match mapped.shape(&key) {
            None => return Ok(None),
            Some(stored) if stored != [rows, cols] => Err(candle_core::Error::UnexpectedShape {
                msg: format!("shape mismatch for {key}"),
                expected: (rows, cols).into(),
                got: stored.into(),
            }
            .bt())?,
            Some(_) => {}
        }
        let rhs = mapped.load_transposed(&key, self.dtype(), self.device())?;
        self.record(name, rhs.t()?)?;
        Ok(Some(rhs))
    }

    fn record_quantized(&self, key: String, q: QWeight) -> Result<()> {
        self.quantized
            .lock()
            .map_err(|_| candle_core::Error::Msg("weight recorder poisoned".into()))?
            .insert(key, q);
        Ok(())
    }

    /// Every quantized matrix handed out so far, keyed by its checkpoint name.
    pub fn recorded_quantized(&self) -> Result<Vec<(String, QWeight)>> {
        let seen =
            self.quantized.lock().map_err(|_| candle_core::Error::Msg("weight recorder poisoned".into()))?;
        Ok(seen.iter().map(|(k, q)| (k.clone(), q.clone())).collect())
    }

    /// A tensor of the given shape; `init` is used only when building on a fresh `VarMap`.
    pub fn get(&self, shape: impl Into<Shape>, name: &str, init: Init) -> Result<Tensor> {
        let tensor = self.vb.get_with_hints(shape, name, init)?;
        self.record(name, tensor.clone())?;
        Ok(tensor)
    }

    /// Replaces the tensor recorded for `name` (the same values in another storage).
    pub fn record(&self, name: &str, tensor: Tensor) -> Result<()> {
        self.seen
            .lock()
            .map_err(|_| candle_core::Error::Msg("weight recorder poisoned".into()))?
            .insert(self.key(name), tensor);
        Ok(())
    }

    /// Every tensor handed out so far, keyed by its checkpoint name.
    pub fn recorded(&self) -> Result<Vec<(String, Tensor)>> {
        let seen =
            self.seen.lock().map_err(|_| candle_core::Error::Msg("weight recorder poisoned".into()))?;
        Ok(seen.iter().map(|(k, t)| (k.clone(), t.clone())).collect())
    }
}

/// Turns a model's dropout on (training) or off (evaluation, the default), and holds the random
/// stream its masks come from. Shared so the model stays `Sync` and `forward_train(&self)` needs
/// no extra argument.
#[derive(Clone, Debug, Default)]
pub struct TrainingSwitch(Arc<SwitchState>);

#[derive(Debug, Default)]
struct SwitchState {
    on: AtomicBool,
    /// Seeded by the trainer before each step, so a resumed run draws the same masks as an
    /// uninterrupted one (candle's CPU random generator cannot be seeded). Unseeded, masks come
    /// from candle's generator.
    rng: Mutex<Option<ChaCha8Rng>>,
}

impl TrainingSwitch {
    pub fn set(&self, training: bool) {
        self.0.on.store(training, Ordering::Relaxed);
    }

    pub fn get(&self) -> bool {
        self.0.on.load(Ordering::Relaxed)
    }

    /// Makes the following dropout masks a function of `seed` alone.
    pub fn seed(&self, seed: u64) {
        if let Ok(mut rng) = self.0.rng.lock() {
            *rng = Some(ChaCha8Rng::seed_from_u64(seed));
        }
    }
}

/// Inverted dropout, active only while its model's [`TrainingSwitch`] is on.
#[derive(Clone, Debug)]
pub struct Dropout {
    p: f32,
    training: TrainingSwitch,
}

impl Module for Dropout {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.p <= 0.0 || !self.training.get() {
            return Ok(x.clone());
        }
        let mut rng = self
            .training
            .0
            .rng
            .lock()
            .map_err(|_| candle_core::Error::Msg("dropout generator poisoned".into()))?;
        let Some(rng) = rng.as_mut() else {
            return candle_nn::ops::dropout(x, self.p);
        };
        let keep = 1.0 / (1.0 - self.p);
        let mask: Vec<f32> =
            (0..x.elem_count()).map(|_| if rng.random::<f32>() < self.p { 0.0 } else { keep }).collect();
        let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
        x * mask
    }
}

/// Sum of element counts and of bytes in memory over a model's dense and quantized tensors.
pub fn param_totals(tensors: &[(String, Tensor)], quantized: &[(String, QWeight)]) -> (usize, usize) {
    let dense = tensors
        .iter()
        .fold((0, 0), |(n, b), (_, t)| (n + t.elem_count(), b + t.elem_count() * t.dtype().size_in_bytes()));
    quantized.iter().fold(dense, |(n, b), (_, q)| (n + q.elem_count(), b + q.bytes()))
}

/// An `[out, in]` weight matrix as a model holds it.
#[derive(Clone, Debug)]
pub enum Matrix {
    Dense(Tensor),
    Quantized(QWeight),
}

/// A token embedding table (dense, or quantized by rows), looked up by id.
#[derive(Clone, Debug)]
pub struct TokenEmbedding {
    table: Matrix,
}

impl TokenEmbedding {
    pub fn new(table: Matrix) -> Self {
        TokenEmbedding { table }
    }

    pub fn table(&self) -> &Matrix {
        &self.table
    }
}

impl Module for TokenEmbedding {
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        match &self.table {
            Matrix::Dense(table) => candle_nn::Embedding::new(table.clone(), table.dim(1)?).forward(ids),
            Matrix::Quantized(q) => q.embedding(ids),
        }
    }
}

/// `y = x Wᵀ (+ b)`, `W` in the PyTorch `[out, in]` layout as checkpoints store it, dense or
/// quantized ([`super::quant`]). For inference (fused kernels) a dense layer that multiplies many
/// rows at once keeps `Wᵀ` contiguous, one that multiplies a decoder step's few rows keeps `W`
/// ([`Rows`]). Training keeps the transposed view, so gradients reach the weight variable.
#[derive(Clone, Debug)]
pub struct Linear {
    weight: LinearWeight,
    bias: Option<Tensor>,
    kernels: Kernels,
}

#[derive(Clone, Debug)]
enum LinearWeight {
    /// `Wᵀ`, `[in, out]`.
    Dense(Tensor),
    Quantized(QWeight),
}

impl Linear {
    /// A layer over `weight` as it is (a tied embedding table stays shared, not copied).
    pub fn new(weight: Matrix, bias: Option<Tensor>, kernels: Kernels) -> Result<Self> {
        let weight = match weight {
            Matrix::Dense(w) => LinearWeight::Dense(w.t()?),
            Matrix::Quantized(q) => LinearWeight::Quantized(q),
        };
        Ok(Linear { weight, bias, kernels })
    }

    pub fn load(w: &Weights, d_in: usize, d_out: usize, bias: bool, std: f64) -> Result<Self> {
        let init = Init::Randn { mean: 0.0, stdev: std };
        let block = w.precision().linear_block(d_in);
        let contiguous_transpose = w.kernels() == Kernels::Fused && w.rows == Rows::Many;
        if contiguous_transpose && block.is_none() {
            if let Some(rhs) = w.transposed_from_map((d_out, d_in), "weight")? {
                let bias = if bias { Some(w.get(d_out, "bias", Init::Const(0.0))?) } else { None };
                return Ok(Linear { weight: LinearWeight::Dense(rhs), bias, kernels: w.kernels() });
            }
        }
        let weight = match w.matrix((d_out, d_in), "weight", init, block)? {
            Matrix::Quantized(q) => LinearWeight::Quantized(q),
            Matrix::Dense(weight) if contiguous_transpose => {
                let rhs = weight.t()?.contiguous()?;
                // The checkpoint's tensor becomes a view of the copy, so one copy stays resident.
                w.record("weight", rhs.t()?)?;
                LinearWeight::Dense(rhs)
            }
            Matrix::Dense(weight) => LinearWeight::Dense(weight.t()?),
        };
        let bias = if bias { Some(w.get(d_out, "bias", Init::Const(0.0))?) } else { None };
        Ok(Linear { weight, bias, kernels: w.kernels() })
    }

    /// The layer's input width.
    pub fn d_in(&self) -> usize {
        match &self.weight {
            LinearWeight::Dense(rhs) => rhs.dim(0).unwrap_or(0),
            LinearWeight::Quantized(q) => q.dims().map_or(0, |(_, d_in)| d_in),
        }
    }

    /// The dtype the layer computes in (its inputs are converted to it).
    pub fn dtype(&self) -> DType {
        match &self.weight {
            LinearWeight::Dense(rhs) => rhs.dtype(),
            LinearWeight::Quantized(_) => DType::F32,
        }
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // One matrix product over all leading dimensions: the beams of a decoding step are one
        // [beams, in] × [in, out] product, not a matrix–vector product per beam.
        let mut out_dims = x.dims().to_vec();
        let in_features = out_dims.pop().expect("a linear layer's input has a feature dimension");
        let rows = x.elem_count() / in_features.max(1);
        let x = x.reshape((rows, in_features))?;
        let y = match (&self.weight, self.kernels) {
            (LinearWeight::Dense(rhs), Kernels::Differentiable) => x.matmul(rhs)?,
            (LinearWeight::Dense(rhs), Kernels::Fused) => super::kernels::matmul(&x, rhs)?,
            (LinearWeight::Quantized(q), _) => q.matmul(&x)?,
        };
        out_dims.push(y.dim(1)?);
        let y = y.reshape(out_dims)?;
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

/// T5's scale-only RMS norm, computed in f32 whatever the model dtype (as Hugging Face does).
#[derive(Clone, Debug)]
pub struct RmsNorm {
    weight: Tensor,
    eps: f64,
    kernels: Kernels,
}

impl RmsNorm {
    pub fn load(w: &Weights, size: usize, eps: f64) -> Result<Self> {
        Ok(RmsNorm { weight: w.get(size, "weight", Init::Const(1.0))?, eps, kernels: w.kernels() })
    }
}

impl Module for RmsNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.kernels == Kernels::Fused && x.dtype() == self.weight.dtype() {
            return super::kernels::rms_norm(x, &self.weight, self.eps as f32);
        }
        let xf = x.to_dtype(DType::F32)?;
        let variance = xf.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = xf.broadcast_div(&(variance + self.eps)?.sqrt()?)?;
        // In the weight's dtype, as Hugging Face's `T5LayerNorm` (an f32 residual stream, which
        // an f32 `wo` under f16 makes, is normed back to f16).
        normed.to_dtype(self.weight.dtype())?.broadcast_mul(&self.weight)
    }
}

/// Layer norm with bias, written out so it has a backward pass; statistics in f32.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
    kernels: Kernels,
}

impl LayerNorm {
    pub fn load(w: &Weights, size: usize, eps: f64) -> Result<Self> {
        Ok(LayerNorm {
            weight: w.get(size, "weight", Init::Const(1.0))?,
            bias: w.get(size, "bias", Init::Const(0.0))?,
            eps,
            kernels: w.kernels(),
        })
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.kernels == Kernels::Fused {
            return super::kernels::layer_norm(x, &self.weight, &self.bias, self.eps as f32);
        }
        let dtype = x.dtype();
        let xf = x.to_dtype(DType::F32)?;
        let centered = xf.broadcast_sub(&xf.mean_keepdim(D::Minus1)?)?;
        let variance = centered.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centered.broadcast_div(&(variance + self.eps)?.sqrt()?)?;
        normed.to_dtype(dtype)?.broadcast_mul(&self.weight)?.broadcast_add(&self.bias)
    }
}

/// Feed-forward activations by their Hugging Face names (`ACT2FN`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Relu,
    /// Exact, erf-based GELU (`"gelu"`).
    Gelu,
    /// The tanh approximation (`"gelu_new"`, `"gelu_pytorch_tanh"`), used by T5 v1.1 / FLAN.
    GeluNew,
    Silu,
}

impl Activation {
    /// The Hugging Face names [`Activation::from_hf`] accepts, for error messages.
    pub const HF_NAMES: &'static str = "relu, gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, silu, swish";

    /// Parses a Hugging Face activation name; `None` when we do not implement it.
    pub fn from_hf(name: &str) -> Option<Activation> {
        Some(match name {
            "relu" => Activation::Relu,
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluNew,
            "silu" | "swish" => Activation::Silu,
            _ => return None,
        })
    }

    pub fn apply(self, x: &Tensor, kernels: Kernels) -> Result<Tensor> {
        match (self, kernels) {
            (Activation::Relu, _) => x.relu(),
            (Activation::Gelu, Kernels::Differentiable) => x.gelu_erf(),
            (Activation::Gelu, Kernels::Fused) => super::kernels::gelu_erf(x),
            (Activation::GeluNew, Kernels::Differentiable) => x.gelu(),
            (Activation::GeluNew, Kernels::Fused) => super::kernels::gelu_tanh(x),
            (Activation::Silu, _) => x.silu(),
        }
    }
}

/// `[batch, seq]` 0/1 mask (any dtype) → additive f32 bias `[batch, 1, 1, seq]`.
pub fn padding_bias(mask: &Tensor) -> Result<Tensor> {
    let mask = mask.to_dtype(DType::F32)?;
    let (b, s) = mask.dims2()?;
    ((mask - 1.0)? * -MASKED)?.reshape((b, 1, 1, s))
}

/// Additive f32 bias `[1, 1, new, past + new]` that hides future positions from `new` queries
/// that follow `past` cached ones.
pub fn causal_bias(new: usize, past: usize, device: &Device) -> Result<Tensor> {
    let total = past + new;
    let data: Vec<f32> = (0..new)
        .flat_map(|i| (0..total).map(move |j| if j > past + i { MASKED as f32 } else { 0.0 }))
        .collect();
    Tensor::from_vec(data, (1, 1, new, total), device)
}

/// The decoder self-attention bias for `new` positions after `past` cached ones: causal, plus
/// the decoder padding mask when one is given (teacher-forced batches).
pub fn decoder_self_bias(
    new: usize,
    past: usize,
    decoder_mask: Option<&Tensor>,
    device: &Device,
) -> Result<Tensor> {
    let causal = causal_bias(new, past, device)?;
    match decoder_mask {
        Some(mask) => causal.broadcast_add(&padding_bias(mask)?),
        None => Ok(causal),
    }
}

/// Hugging Face clamps f16 activations after each sublayer so they do not overflow to inf.
pub fn clamp_f16(x: Tensor) -> Result<Tensor> {
    if x.dtype() == DType::F16 {
        let limit = 65504.0 - 1000.0;
        x.clamp(-limit, limit)
    } else {
        Ok(x)
    }
}

/// Where a residual sublayer's norm sits: on its input (T5, pre-norm) or on the residual sum
/// (BART, post-norm).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormPlacement {
    Pre,
    Post,
}

/// One residual sublayer around `f`: `h + dropout(f(norm(h)))` (pre-norm) or
/// `norm(h + dropout(f(h)))` (post-norm), clamped as Hugging Face does in f16.
pub fn residual(
    h: &Tensor,
    norm: &impl Module,
    placement: NormPlacement,
    dropout: &Dropout,
    f: impl FnOnce(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    match placement {
        NormPlacement::Pre => clamp_f16(add_promoted(h, &dropout.forward(&f(&norm.forward(h)?)?)?)?),
        NormPlacement::Post => clamp_f16(norm.forward(&add_promoted(h, &dropout.forward(&f(h)?)?)?)?),
    }
}

/// `a + b`, in f32 when one of them is f32 and the other is not (as PyTorch promotes).
fn add_promoted(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.dtype() == b.dtype() {
        a + b
    } else {
        a.to_dtype(DType::F32)? + b.to_dtype(DType::F32)?
    }
}

/// The position-wise feed-forward network: `wo(dropout(act(wi·x)))`, or with a gate
/// `wo(dropout(act(wi_0·x) * wi_1·x))` (T5 v1.1 / FLAN's `T5DenseGatedActDense`). BART's
/// `fc1`/`fc2` are `wi`/`wo` without a gate.
#[derive(Clone, Debug)]
pub struct FeedForward {
    /// The activated input projection (`wi`, `wi_0`, `fc1`).
    pub wi: Linear,
    /// The linear gate multiplied in (`wi_1`), when gated.
    pub gate: Option<Linear>,
    /// The output projection (`wo`, `fc2`).
    pub wo: Linear,
    pub act: Activation,
    /// Dropout after the activation.
    pub dropout: Dropout,
    pub kernels: Kernels,
}

/// Inference runs a feed-forward over many positions (an encoder) this many intermediate
/// elements at a time (256 KiB of f32), in chunks of at least [`FEED_FORWARD_MIN_ROWS`] rows, so
/// its two or three `[rows, d_ff]` intermediates stay small whatever the input's length.
pub const FEED_FORWARD_CHUNK_ELEMENTS: usize = 1 << 16;

/// Chunks keep at least this many rows: a product of fewer rows gains nothing in memory worth
/// the weight being read (or, in `gemm`, packed) once more per chunk.
pub const FEED_FORWARD_MIN_ROWS: usize = 128;

impl FeedForward {
    /// Rows per chunk of an inference feed-forward; `usize::MAX` (one piece) in training.
    pub fn chunk_rows(&self) -> usize {
        match self.kernels {
            Kernels::Differentiable => usize::MAX,
            Kernels::Fused => {
                (FEED_FORWARD_CHUNK_ELEMENTS / self.wo.d_in().max(1)).max(FEED_FORWARD_MIN_ROWS)
            }
        }
    }

    fn forward_rows(&self, x: &Tensor) -> Result<Tensor> {
        let mut inner = self.act.apply(&self.wi.forward(x)?, self.kernels)?;
        if let Some(gate) = &self.gate {
            inner = (inner * gate.forward(x)?)?;
        }
        // An f32 `wo` in an f16 model takes its input in f32 (`T5DenseGatedActDense`).
        self.wo.forward(&self.dropout.forward(&inner)?.to_dtype(self.wo.dtype())?)
    }
}

impl Module for FeedForward {
    /// Position-wise, so the rows may be taken in chunks ([`FeedForward::chunk_rows`]) with the
    /// same result.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (rows, chunk) = (x.elem_count() / x.dim(D::Minus1)?.max(1), self.chunk_rows());
        if rows <= chunk {
            return self.forward_rows(x);
        }
        let mut dims = x.dims().to_vec();
        let flat = x.reshape((rows, dims[dims.len() - 1]))?;
        let mut parts = Vec::with_capacity(rows.div_ceil(chunk));
        for start in (0..rows).step_by(chunk) {
            parts.push(self.forward_rows(&flat.narrow(0, start, chunk.min(rows - start))?)?);
        }
        let out = Tensor::cat(&parts, 0)?;
        *dims.last_mut().expect("a feed-forward input has a last dimension") = out.dim(1)?;
        out.reshape(dims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causal_bias_hides_only_future_positions() {
        let bias = causal_bias(2, 3, &Device::Cpu).unwrap().squeeze(0).unwrap().squeeze(0).unwrap();
        let rows = bias.to_vec2::<f32>().unwrap();
        assert_eq!(rows[0], vec![0.0, 0.0, 0.0, 0.0, MASKED as f32]);
        assert_eq!(rows[1], vec![0.0; 5]);
    }

    #[test]
    fn padding_bias_masks_zeros() {
        let mask = Tensor::new(&[[1u8, 1, 0]], &Device::Cpu).unwrap();
        let bias = padding_bias(&mask).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(bias, vec![0.0, 0.0, MASKED as f32]);
    }

    #[test]
    fn norms_match_their_formulas() {
        let dev = Device::Cpu;
        let x = Tensor::new(&[[3f32, 4.0]], &dev).unwrap();
        for kernels in [Kernels::Differentiable, Kernels::Fused] {
            let rms = RmsNorm { weight: Tensor::new(&[1f32, 2.0], &dev).unwrap(), eps: 0.0, kernels };
            let y = rms.forward(&x).unwrap().to_vec2::<f32>().unwrap();
            let r = (12.5f32).sqrt();
            assert!((y[0][0] - 3.0 / r).abs() < 1e-6 && (y[0][1] - 8.0 / r).abs() < 1e-6, "{kernels:?}");
            let ln = LayerNorm {
                weight: Tensor::new(&[1f32, 1.0], &dev).unwrap(),
                bias: Tensor::new(&[0.5f32, 0.5], &dev).unwrap(),
                eps: 0.0,
                kernels,
            };
            let y = ln.forward(&x).unwrap().to_vec2::<f32>().unwrap();
            assert!((y[0][0] + 0.5).abs() < 1e-6 && (y[0][1] - 1.5).abs() < 1e-6, "{kernels:?}");
        }
    }

    #[test]
    fn a_feed_forward_in_row_chunks_equals_it_in_one_piece() {
        let dev = Device::Cpu;
        let (d_model, d_ff, rows) = (4, 1024, 300);
        let matrix = |out: usize, inp: usize, seed: f32| {
            let values = (0..out * inp).map(|i| ((i as f32 * 0.13 + seed).sin()) * 0.3).collect();
            Matrix::Dense(Tensor::from_vec(values, (out, inp), &dev).unwrap())
        };
        let w = Weights::new(VarBuilder::zeros(DType::F32, &dev), Kernels::Fused);
        let ff = FeedForward {
            wi: Linear::new(matrix(d_ff, d_model, 0.1), None, Kernels::Fused).unwrap(),
            gate: Some(Linear::new(matrix(d_ff, d_model, 0.7), None, Kernels::Fused).unwrap()),
            wo: Linear::new(matrix(d_model, d_ff, 1.3), None, Kernels::Fused).unwrap(),
            act: Activation::GeluNew,
            dropout: w.dropout(0.0),
            kernels: Kernels::Fused,
        };
        assert_eq!(ff.chunk_rows(), FEED_FORWARD_MIN_ROWS);
        let values = (0..rows * d_model).map(|i| (i as f32 * 0.29).cos()).collect();
        let x = Tensor::from_vec(values, (1, rows, d_model), &dev).unwrap();
        let chunked = ff.forward(&x).unwrap();
        let whole = ff.forward_rows(&x).unwrap();
        assert_eq!(chunked.dims(), &[1, rows, d_model]);
        // The same products over fewer rows, up to the order of `gemm`'s sums.
        let difference =
            (chunked - whole).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(difference < 1e-5, "{difference}");
    }

    #[test]
    fn dropout_acts_only_in_training() {
        let w = Weights::new(VarBuilder::zeros(DType::F32, &Device::Cpu), Kernels::Differentiable);
        let drop = w.dropout(0.5);
        let x = Tensor::ones((4, 64), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(drop.forward(&x).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap(), 256.0);
        w.training_switch().set(true);
        let y = drop.forward(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(y.iter().all(|v| *v == 0.0 || *v == 2.0), "kept values are scaled by 1 / (1 - p)");
        assert!(y.contains(&0.0) && y.contains(&2.0));
    }

    #[test]
    fn unknown_activation_is_rejected() {
        assert_eq!(Activation::from_hf("gelu"), Some(Activation::Gelu));
        assert_eq!(Activation::from_hf("gelu_new"), Some(Activation::GeluNew));
        assert_eq!(Activation::from_hf("mish"), None);
    }
}

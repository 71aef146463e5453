//! Training examples as token ids, their seeded length-bucketed batching, padding into tensors,
//! and the label-smoothed cross-entropy the trainer minimises.

use candle_core::{DType, Device, Result, Tensor, D};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// One (source → target) pair. `target` holds the labels as the tokenizer encodes them (end of
/// sequence included); the decoder input is `target` shifted right behind the start token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    pub source: Vec<u32>,
    pub target: Vec<u32>,
}

/// How many batches' worth of examples are sorted together by length: large enough that a batch
/// holds similar lengths (little padding), small enough that batches still mix the data.
const BUCKET_POOL: usize = 50;

/// The batches (lists of example indices) of one epoch, a function of `(seed, epoch)` alone: the
/// examples are shuffled, sorted by source length within pools of [`BUCKET_POOL`] batches, cut
/// into batches, and the batches shuffled.
pub fn epoch_batches(examples: &[Example], batch_size: usize, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
    let batch_size = batch_size.max(1);
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed.wrapping_add((epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.shuffle(&mut rng);
    for pool in order.chunks_mut(batch_size * BUCKET_POOL) {
        pool.sort_by_key(|&i| std::cmp::Reverse(examples[i].source.len()));
    }
    let mut batches: Vec<Vec<usize>> = order.chunks(batch_size).map(<[usize]>::to_vec).collect();
    batches.shuffle(&mut rng);
    batches
}

/// A padded batch on a device.
pub struct Batch {
    pub input_ids: Tensor,
    /// 1 for real source tokens, 0 for padding (f32).
    pub attention_mask: Tensor,
    pub decoder_input_ids: Tensor,
    pub labels: Tensor,
    /// 1 where a label counts in the loss (f32).
    pub label_mask: Tensor,
    pub label_tokens: usize,
}

/// Pads `examples[indices]` into a [`Batch`] (right padding with `pad`).
pub fn collate(
    examples: &[Example],
    indices: &[usize],
    pad: u32,
    decoder_start: u32,
    device: &Device,
) -> Result<Batch> {
    let rows: Vec<&Example> = indices.iter().map(|&i| &examples[i]).collect();
    let n = rows.len();
    let src_len = rows.iter().map(|e| e.source.len()).max().unwrap_or(0).max(1);
    let tgt_len = rows.iter().map(|e| e.target.len()).max().unwrap_or(0).max(1);
    let mut input_ids = vec![pad; n * src_len];
    let mut attention = vec![0f32; n * src_len];
    let mut decoder_input = vec![pad; n * tgt_len];
    let mut labels = vec![0u32; n * tgt_len];
    let mut label_mask = vec![0f32; n * tgt_len];
    let mut label_tokens = 0;
    for (r, e) in rows.iter().enumerate() {
        for (j, &id) in e.source.iter().enumerate() {
            input_ids[r * src_len + j] = id;
            attention[r * src_len + j] = 1.0;
        }
        for (j, &id) in e.target.iter().enumerate() {
            decoder_input[r * tgt_len + j] = if j == 0 { decoder_start } else { e.target[j - 1] };
            labels[r * tgt_len + j] = id;
            label_mask[r * tgt_len + j] = 1.0;
        }
        label_tokens += e.target.len();
    }
    Ok(Batch {
        input_ids: Tensor::from_vec(input_ids, (n, src_len), device)?,
        attention_mask: Tensor::from_vec(attention, (n, src_len), device)?,
        decoder_input_ids: Tensor::from_vec(decoder_input, (n, tgt_len), device)?,
        labels: Tensor::from_vec(labels, (n, tgt_len), device)?,
        label_mask: Tensor::from_vec(label_mask, (n, tgt_len), device)?,
        label_tokens,
    })
}

/// Mean token cross-entropy over the unmasked labels, with label smoothing `epsilon` spread
/// uniformly over the vocabulary (as `torch.nn.CrossEntropyLoss(label_smoothing=ε)`):
/// `(1-ε)·(−log p[label]) + ε·mean_v(−log p[v])`.
pub fn seq2seq_loss(logits: &Tensor, labels: &Tensor, label_mask: &Tensor, epsilon: f64) -> Result<Tensor> {
    let log_probs = candle_nn::ops::log_softmax(&logits.to_dtype(DType::F32)?, D::Minus1)?;
    let nll = log_probs.gather(&labels.unsqueeze(D::Minus1)?, D::Minus1)?.squeeze(D::Minus1)?.neg()?;
    let per_token = if epsilon > 0.0 {
        let uniform = log_probs.mean(D::Minus1)?.neg()?;
        ((nll * (1.0 - epsilon))? + (uniform * epsilon)?)?
    } else {
        nll
    };
    let total = (per_token * label_mask)?.sum_all()?;
    total / label_mask.sum_all()?.to_scalar::<f32>()?.max(1.0) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(src: usize, tgt: usize) -> Example {
        Example { source: vec![5; src], target: vec![7; tgt] }
    }

    #[test]
    fn batches_cover_every_example_once_and_depend_only_on_seed_and_epoch() {
        let examples: Vec<Example> = (0..103).map(|i| ex(1 + i % 17, 3)).collect();
        let a = epoch_batches(&examples, 8, 1, 0);
        let mut all: Vec<usize> = a.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..103).collect::<Vec<_>>());
        assert_eq!(a, epoch_batches(&examples, 8, 1, 0));
        assert_ne!(a, epoch_batches(&examples, 8, 1, 1));
        assert_ne!(a, epoch_batches(&examples, 8, 2, 0));
    }

    #[test]
    fn collate_shifts_targets_and_masks_padding() {
        let examples = vec![
            Example { source: vec![10, 11, 1], target: vec![20, 21, 1] },
            Example { source: vec![12, 1], target: vec![22, 1] },
        ];
        let b = collate(&examples, &[0, 1], 0, 0, &Device::Cpu).unwrap();
        assert_eq!(b.input_ids.to_vec2::<u32>().unwrap(), [[10, 11, 1], [12, 1, 0]]);
        assert_eq!(b.attention_mask.to_vec2::<f32>().unwrap(), [[1., 1., 1.], [1., 1., 0.]]);
        assert_eq!(b.decoder_input_ids.to_vec2::<u32>().unwrap(), [[0, 20, 21], [0, 22, 0]]);
        assert_eq!(b.labels.to_vec2::<u32>().unwrap(), [[20, 21, 1], [22, 1, 0]]);
        assert_eq!(b.label_mask.to_vec2::<f32>().unwrap(), [[1., 1., 1.], [1., 1., 0.]]);
        assert_eq!(b.label_tokens, 5);
    }

    /// Hand-computed: logits [0, ln 3] → p = [1/4, 3/4]; label 1 gives −ln 0.75, and with ε = 0.2
    /// 0.8·(−ln 0.75) + 0.2·(−(ln 0.25 + ln 0.75)/2). The masked second position is ignored.
    #[test]
    fn loss_matches_hand_computation() {
        let logits = Tensor::new(&[[[0f32, 3f32.ln()], [5.0, -5.0]]], &Device::Cpu).unwrap();
        let labels = Tensor::new(&[[1u32, 0]], &Device::Cpu).unwrap();
        let mask = Tensor::new(&[[1f32, 0.0]], &Device::Cpu).unwrap();
        let plain = seq2seq_loss(&logits, &labels, &mask, 0.0).unwrap().to_scalar::<f32>().unwrap();
        assert!((plain - -(0.75f32).ln()).abs() < 1e-6);
        let smooth = seq2seq_loss(&logits, &labels, &mask, 0.2).unwrap().to_scalar::<f32>().unwrap();
        let want = 0.8 * -(0.75f32).ln() + 0.2 * -((0.25f32).ln() + (0.75f32).ln()) / 2.0;
        assert!((smooth - want).abs() < 1e-6, "{smooth} vs {want}");
    }
}

//! Beam search as transformers' `_beam_search` (v4.50+, equal in results to the older
//! `BeamSearchScorer`): per input, the top `2 * num_beams` continuations of all running beams;
//! those ending in EOS (or at the length limit) among the first `num_beams` enter the finished
//! heap with score `sum_logprobs / new_len^length_penalty`; the best `num_beams` others keep
//! running; the search stops by the `early_stopping` rule.

use anyhow::Result;
use candle_core::Tensor;

use super::{logits, GenerationConfig, Run, SearchOutput, StepEvent};
use crate::model::{EarlyStopping, KvCache};

/// transformers' stand-in for minus infinity in beam scores.
const NEG_LARGE: f32 = -1.0e9;

#[derive(Clone, Debug)]
struct Beam {
    /// Decoder sequence, start token included.
    tokens: Vec<u32>,
    score: f32,
}

/// The finished hypotheses of one input, best first, at most `num_beams`.
#[derive(Debug, Default)]
struct Finished {
    hyps: Vec<Beam>,
}

impl Finished {
    fn is_full(&self, num_beams: usize) -> bool {
        self.hyps.len() >= num_beams
    }

    fn worst(&self, num_beams: usize) -> f32 {
        if self.is_full(num_beams) {
            self.hyps.last().map_or(NEG_LARGE, |h| h.score)
        } else {
            NEG_LARGE
        }
    }

    fn add(&mut self, hyp: Beam, num_beams: usize) {
        // Earlier hypotheses win ties, as a stable top-k over [old, new] does.
        let at = self.hyps.partition_point(|h| h.score >= hyp.score);
        if at < num_beams {
            self.hyps.insert(at, hyp);
            self.hyps.truncate(num_beams);
        }
    }
}

/// One input's search state.
struct Search {
    running: Vec<Beam>,
    finished: Finished,
    /// transformers' `is_early_stop_heuristic_unsatisfied`: once false, the input is done.
    improvable: bool,
}

pub(super) fn beam_search(
    run: &mut Run<'_, '_>,
    encoder_hidden: &Tensor,
    encoder_mask: &Tensor,
    cfg: &GenerationConfig,
) -> Result<SearchOutput> {
    let nb = cfg.num_beams;
    let batch = encoder_hidden.dim(0)?;
    let device = encoder_hidden.device();
    // The encoder output stays one row per input: the decoder's cross-attention lets the `nb`
    // adjacent beam rows of an input share it (`Attention::attend`).
    // Only the first beam is live at the start, so the first step expands one hypothesis.
    let mut searches: Vec<Search> = (0..batch)
        .map(|_| Search {
            running: (0..nb)
                .map(|k| Beam {
                    tokens: vec![cfg.decoder_start_token_id],
                    score: if k == 0 { 0.0 } else { NEG_LARGE },
                })
                .collect(),
            finished: Finished::default(),
            improvable: true,
        })
        .collect();
    let beams_to_keep = 2usize.max(1 + cfg.eos_token_ids.len()) * nb;
    let max_len = cfg.max_new_tokens + 1;
    let mut cache = run.model.new_cache();
    let mut cur_len = 1;
    let mut cancelled = false;

    while cur_len < max_len {
        if run.hooks.cancelled() {
            cancelled = true;
            break;
        }
        let last: Vec<u32> =
            searches.iter().flat_map(|s| s.running.iter().map(|b| b.tokens[b.tokens.len() - 1])).collect();
        let (mut scores, vocab) = run.step(&last, encoder_hidden, encoder_mask, &mut cache)?;
        let mut sources = Vec::with_capacity(batch * nb);
        let mut all_hit = true;
        for (b, search) in searches.iter_mut().enumerate() {
            let block = &mut scores[b * nb * vocab..(b + 1) * nb * vocab];
            for (beam, row) in search.running.iter().zip(block.chunks_exact_mut(vocab)) {
                crate::model::kernels::log_softmax_in_place(row);
                logits::process(row, &beam.tokens, cfg);
                for s in row.iter_mut() {
                    *s += beam.score;
                }
            }
            let candidates = top_k(block, beams_to_keep);
            let hits: Vec<bool> = candidates
                .iter()
                .map(|&(_, i)| cfg.eos_token_ids.contains(&((i % vocab) as u32)) || cur_len + 1 >= max_len)
                .collect();
            all_hit &= hits.iter().all(|&h| h);

            // Finished hypotheses: only among the first `num_beams` candidates.
            let accepting = search.improvable
                && !(search.finished.is_full(nb) && cfg.early_stopping == EarlyStopping::Eager);
            if accepting {
                let denom = ((cur_len + 1 - 1) as f64).powf(cfg.length_penalty as f64) as f32;
                for (&(score, i), _) in candidates.iter().zip(&hits).take(nb).filter(|(_, &h)| h) {
                    let mut tokens = search.running[i / vocab].tokens.clone();
                    tokens.push((i % vocab) as u32);
                    search.finished.add(Beam { tokens, score: score / denom }, nb);
                }
            }

            // Running beams: the best candidates that did not just finish.
            let mut order: Vec<(f32, usize)> = candidates
                .iter()
                .zip(&hits)
                .map(|(&(score, i), &hit)| (if hit { score + NEG_LARGE } else { score }, i))
                .collect();
            order.sort_by(|a, b| b.0.total_cmp(&a.0));
            let next: Vec<Beam> = order[..nb]
                .iter()
                .map(|&(score, i)| {
                    let parent = i / vocab;
                    sources.push((b * nb + parent) as u32);
                    let mut tokens = search.running[parent].tokens.clone();
                    tokens.push((i % vocab) as u32);
                    Beam { tokens, score }
                })
                .collect();
            search.running = next;
        }
        reorder_self_attention(&mut cache, &sources, device)?;
        cur_len += 1;

        for search in &mut searches {
            if !search.improvable {
                continue;
            }
            let best_len = if cfg.early_stopping == EarlyStopping::Never && cfg.length_penalty > 0.0 {
                max_len - 1
            } else {
                cur_len - 1
            };
            let best_possible =
                search.running[0].score / ((best_len as f64).powf(cfg.length_penalty as f64) as f32);
            search.improvable = best_possible > search.finished.worst(nb);
        }
        for (b, search) in searches.iter().enumerate() {
            let stable = stable_prefix(search);
            run.hooks.emit(StepEvent {
                batch_index: b,
                step: cur_len - 1,
                stable: &search.running[0].tokens[1..1 + stable],
                best: &search.running[0].tokens[1..],
            });
        }

        let improvement_possible = searches.iter().any(|s| s.improvable);
        let all_full =
            cfg.early_stopping == EarlyStopping::Eager && searches.iter().all(|s| s.finished.is_full(nb));
        if !improvement_possible || all_full || all_hit {
            break;
        }
    }

    let mut out = SearchOutput { sequences: vec![], scores: vec![], finished: vec![], cancelled };
    for search in searches {
        let best = match search.finished.hyps.first() {
            Some(hyp) if !cancelled => hyp.clone(),
            // Cancelled (or nothing finished): the best of what exists, scored at its length.
            _ => best_of_all(&search, cfg),
        };
        out.finished
            .push(best.tokens.last().is_some_and(|t| cfg.eos_token_ids.contains(t)) && best.tokens.len() > 1);
        out.sequences.push(best.tokens[1..].to_vec());
        out.scores.push(best.score);
    }
    Ok(out)
}

fn best_of_all(search: &Search, cfg: &GenerationConfig) -> Beam {
    let normalised = search.running.iter().map(|b| {
        let len = (b.tokens.len() - 1).max(1) as f64;
        Beam { tokens: b.tokens.clone(), score: b.score / (len.powf(cfg.length_penalty as f64) as f32) }
    });
    search
        .finished
        .hyps
        .iter()
        .cloned()
        .chain(normalised)
        .fold(None::<Beam>, |best, b| match best {
            Some(x) if x.score >= b.score => Some(x),
            _ => Some(b),
        })
        .expect("a search always has running beams")
}

/// Length of the new-token prefix shared by every running and finished hypothesis: every future
/// final answer extends one of them, so this prefix is final.
fn stable_prefix(search: &Search) -> usize {
    let first = &search.running[0].tokens[1..];
    let mut len = first.len();
    for beam in search.running.iter().chain(&search.finished.hyps) {
        let other = &beam.tokens[1..];
        len = len.min(first.iter().zip(other).take_while(|(a, b)| a == b).count());
    }
    len
}

/// The `k` best `(score, index)` pairs of `scores`, best first; ties go to the lower index.
/// One pass with a small sorted buffer: `k` is a few beams, `scores` beams x vocabulary.
fn top_k(scores: &[f32], k: usize) -> Vec<(f32, usize)> {
    let mut best: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
    if k == 0 {
        return best;
    }
    for (i, &s) in scores.iter().enumerate() {
        // NaN never enters; a full buffer only takes a strictly better score (earlier index
        // wins ties).
        if s.is_nan() || (best.len() == k && s <= best[k - 1].0) {
            continue;
        }
        let at = best.partition_point(|&(b, _)| b >= s);
        best.insert(at, (s, i));
        best.truncate(k);
    }
    best
}

/// Follows the kept beams in the self-attention cache. Cross-attention keys/values are left alone:
/// they hold one row per input, and beams only ever take parents from their own input.
fn reorder_self_attention(cache: &mut KvCache, sources: &[u32], device: &candle_core::Device) -> Result<()> {
    if sources.iter().enumerate().all(|(i, &s)| i as u32 == s) {
        return Ok(());
    }
    let index = Tensor::from_vec(sources.to_vec(), sources.len(), device)?;
    for layer in &mut cache.layers {
        if let Some((k, v)) = &layer.self_kv {
            layer.self_kv = Some((k.index_select(&index)?, v.index_select(&index)?));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_is_sorted_and_breaks_ties_by_index() {
        let got = top_k(&[0.1, 0.5, 0.5, -1.0, 0.9], 3);
        assert_eq!(got, vec![(0.9, 4), (0.5, 1), (0.5, 2)]);
        assert_eq!(top_k(&[1.0, 2.0], 5), vec![(2.0, 1), (1.0, 0)]);
        let ninf = f32::NEG_INFINITY;
        assert_eq!(top_k(&[ninf, f32::NAN, ninf, -1e9], 3), vec![(-1e9, 3), (ninf, 0), (ninf, 2)]);
        assert!(top_k(&[1.0], 0).is_empty());
    }

    #[test]
    fn finished_heap_keeps_the_best_and_knows_its_worst() {
        let mut f = Finished::default();
        let hyp = |s: f32| Beam { tokens: vec![0], score: s };
        f.add(hyp(-3.0), 2);
        assert_eq!(f.worst(2), NEG_LARGE);
        f.add(hyp(-1.0), 2);
        f.add(hyp(-2.0), 2);
        f.add(hyp(-5.0), 2);
        let scores: Vec<f32> = f.hyps.iter().map(|h| h.score).collect();
        assert_eq!(scores, vec![-1.0, -2.0]);
        assert_eq!(f.worst(2), -2.0);
    }
}

//! Logits processors and sampling warpers over one row of scores, in the order and with the
//! semantics of transformers' `LogitsProcessorList`: repetition penalty, no-repeat n-grams,
//! minimum length, forced BOS, forced EOS, suppressed tokens; then, when sampling, temperature, top-k, top-p.

use rand::Rng;

use super::GenerationConfig;

/// Applies the processors to `scores` (logits for greedy and sampling, log-probabilities for beam
/// search, as transformers does). `seq` is the decoder sequence so far, its start token included.
pub fn process(scores: &mut [f32], seq: &[u32], cfg: &GenerationConfig) {
    let cur_len = seq.len();
    if cfg.repetition_penalty != 1.0 {
        let p = cfg.repetition_penalty;
        let mut seen = seq.to_vec();
        seen.sort_unstable();
        seen.dedup();
        for &t in &seen {
            if let Some(s) = scores.get_mut(t as usize) {
                *s = if *s < 0.0 { *s * p } else { *s / p };
            }
        }
    }
    if cfg.no_repeat_ngram_size > 0 {
        for t in banned_ngram_tokens(seq, cfg.no_repeat_ngram_size) {
            if let Some(s) = scores.get_mut(t as usize) {
                *s = f32::NEG_INFINITY;
            }
        }
    }
    // `cur_len - 1` tokens have been generated after the decoder start token.
    if cur_len - 1 < cfg.min_new_tokens {
        for &eos in &cfg.eos_token_ids {
            if let Some(s) = scores.get_mut(eos as usize) {
                *s = f32::NEG_INFINITY;
            }
        }
    }
    if let (1, Some(bos)) = (cur_len, cfg.forced_bos_token_id) {
        force(scores, &[bos]);
    }
    // transformers forces EOS at `cur_len == max_length - 1`, with `max_length` counting the start.
    if !cfg.forced_eos_token_ids.is_empty() && cur_len == cfg.max_new_tokens {
        force(scores, &cfg.forced_eos_token_ids);
    }
    for &t in &cfg.suppress_tokens {
        if let Some(s) = scores.get_mut(t as usize) {
            *s = f32::NEG_INFINITY;
        }
    }
}

fn force(scores: &mut [f32], ids: &[u32]) {
    scores.fill(f32::NEG_INFINITY);
    for &id in ids {
        if let Some(s) = scores.get_mut(id as usize) {
            *s = 0.0;
        }
    }
}

/// Tokens that would complete an n-gram already present in `seq`.
pub fn banned_ngram_tokens(seq: &[u32], n: usize) -> Vec<u32> {
    if seq.len() + 1 < n {
        return Vec::new();
    }
    let prefix = &seq[seq.len() + 1 - n..];
    seq.windows(n).filter(|w| &w[..n - 1] == prefix).map(|w| w[n - 1]).collect()
}

/// Temperature, top-k and top-p, as transformers' warpers (`min_tokens_to_keep = 1`).
pub fn warp(scores: &mut [f32], cfg: &GenerationConfig) {
    if cfg.temperature != 1.0 {
        for s in scores.iter_mut() {
            *s /= cfg.temperature;
        }
    }
    if cfg.top_k > 0 && cfg.top_k < scores.len() {
        let mut sorted = scores.to_vec();
        sorted.sort_unstable_by(|a, b| b.total_cmp(a));
        let kth = sorted[cfg.top_k - 1];
        // Strictly below the k-th value: ties with it are kept, as in transformers.
        for s in scores.iter_mut() {
            if *s < kth {
                *s = f32::NEG_INFINITY;
            }
        }
    }
    if cfg.top_p < 1.0 {
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
        let sorted: Vec<f32> = order.iter().map(|&i| scores[i]).collect();
        let probs = softmax(&sorted);
        let mut cumulative = 0.0f32;
        let last = order.len() - 1;
        // Ascending order: drop the low tail whose mass stays within `1 - top_p`, keeping the best.
        for (rank, (&i, p)) in order.iter().zip(probs).enumerate() {
            cumulative += p;
            if cumulative <= 1.0 - cfg.top_p && rank < last {
                scores[i] = f32::NEG_INFINITY;
            }
        }
    }
}

/// Numerically stable softmax; a row of `-inf` gives zeros.
pub fn softmax(scores: &[f32]) -> Vec<f32> {
    let mut probs = scores.to_vec();
    crate::model::kernels::softmax_rows_in_place(&mut probs, scores.len().max(1));
    probs
}

/// The first index of the largest score (torch's `argmax` tie rule).
pub fn argmax(scores: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] {
            best = i;
        }
    }
    best as u32
}

/// Draws an index with probability proportional to `softmax(scores)`.
pub fn sample(scores: &[f32], rng: &mut impl Rng) -> u32 {
    let probs = softmax(scores);
    let total: f64 = probs.iter().map(|&p| p as f64).sum();
    let mut target = rng.random::<f64>() * total;
    let mut last_possible = argmax(scores);
    for (i, &p) in probs.iter().enumerate() {
        if p > 0.0 {
            last_possible = i as u32;
            target -= p as f64;
            if target < 0.0 {
                return i as u32;
            }
        }
    }
    // Rounding can leave a sliver of `target`: it belongs to the last token with mass.
    last_possible
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::model::generate::EarlyStopping;

    fn cfg() -> GenerationConfig {
        GenerationConfig {
            max_new_tokens: 10,
            min_new_tokens: 0,
            num_beams: 1,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
            no_repeat_ngram_size: 0,
            repetition_penalty: 1.0,
            do_sample: false,
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
            decoder_start_token_id: 0,
            pad_token_id: 0,
            eos_token_ids: vec![1],
            forced_bos_token_id: None,
            forced_eos_token_ids: vec![],
            suppress_tokens: vec![],
        }
    }

    #[test]
    fn no_repeat_ngram_bans_the_completions_of_seen_prefixes() {
        // Bigrams seen: (0,5) (5,3) (3,5) (5,4) (4,3); the last token is 3, so 5 is banned.
        assert_eq!(banned_ngram_tokens(&[0, 5, 3, 5, 4, 3], 2), vec![5]);
        // Trigram prefix (4,3) was never seen before.
        assert!(banned_ngram_tokens(&[0, 5, 3, 5, 4, 3], 3).is_empty());
        // Prefix (5,3) was followed by 5.
        assert_eq!(banned_ngram_tokens(&[0, 5, 3, 5, 5, 3], 3), vec![5]);
        assert!(banned_ngram_tokens(&[0], 3).is_empty());
    }

    #[test]
    fn min_new_tokens_suppresses_eos_until_reached() {
        let c = GenerationConfig { min_new_tokens: 2, ..cfg() };
        let mut s = vec![0.0; 4];
        process(&mut s, &[0, 2], &c);
        assert_eq!(s[1], f32::NEG_INFINITY);
        let mut s = vec![0.0; 4];
        process(&mut s, &[0, 2, 3], &c);
        assert_eq!(s[1], 0.0);
    }

    #[test]
    fn forced_bos_and_eos_take_the_first_and_last_positions() {
        let c = GenerationConfig { forced_bos_token_id: Some(3), forced_eos_token_ids: vec![1], ..cfg() };
        let mut s = vec![5.0, 4.0, 3.0, 2.0];
        process(&mut s, &[0], &c);
        assert_eq!(s, vec![f32::NEG_INFINITY, f32::NEG_INFINITY, f32::NEG_INFINITY, 0.0]);
        let mut s = vec![5.0, 4.0, 3.0, 2.0];
        process(&mut s, &[0; 10], &c);
        assert_eq!(argmax(&s), 1);
        let mut s = vec![5.0, 4.0, 3.0, 2.0];
        process(&mut s, &[0; 5], &c);
        assert_eq!(s, vec![5.0, 4.0, 3.0, 2.0]);
    }

    #[test]
    fn suppressed_tokens_are_never_chosen() {
        let c = GenerationConfig { suppress_tokens: vec![0, 9], ..cfg() };
        let mut s = vec![5.0, 4.0, 3.0, 2.0];
        process(&mut s, &[0, 2], &c);
        assert_eq!(s, vec![f32::NEG_INFINITY, 4.0, 3.0, 2.0]);
    }

    #[test]
    fn repetition_penalty_shrinks_seen_tokens_towards_less_likely() {
        let c = GenerationConfig { repetition_penalty: 2.0, ..cfg() };
        let mut s = vec![4.0, -4.0, 1.0, 1.0];
        process(&mut s, &[0, 1, 1], &c);
        assert_eq!(s, vec![2.0, -8.0, 1.0, 1.0]);
    }

    #[test]
    fn top_k_keeps_ties_and_top_p_keeps_the_smallest_head() {
        let c = GenerationConfig { top_k: 2, ..cfg() };
        let mut s = vec![1.0, 3.0, 2.0, 2.0, 0.0];
        warp(&mut s, &c);
        assert_eq!(s, vec![f32::NEG_INFINITY, 3.0, 2.0, 2.0, f32::NEG_INFINITY]);

        // Probabilities 0.5, 0.25, 0.125, 0.125: top_p = 0.7 keeps the first two.
        let ln = |p: f32| p.ln();
        let mut s = vec![ln(0.125), ln(0.5), ln(0.125), ln(0.25)];
        warp(&mut s, &GenerationConfig { top_p: 0.7, ..cfg() });
        assert_eq!(s.iter().filter(|v| v.is_finite()).count(), 2);
        assert!(s[1].is_finite() && s[3].is_finite());
        // A tiny top_p still keeps the best token.
        let mut s = vec![ln(0.125), ln(0.5), ln(0.125), ln(0.25)];
        warp(&mut s, &GenerationConfig { top_p: 0.01, ..cfg() });
        assert_eq!(s.iter().filter(|v| v.is_finite()).count(), 1);
        assert!(s[1].is_finite());
    }

    #[test]
    fn temperature_divides_logits() {
        let mut s = vec![2.0, -1.0];
        warp(&mut s, &GenerationConfig { temperature: 0.5, ..cfg() });
        assert_eq!(s, vec![4.0, -2.0]);
    }

    #[test]
    fn log_softmax_and_argmax_match_hand_values() {
        let mut s = vec![0.0, 2f32.ln(), f32::NEG_INFINITY, 0.0];
        crate::model::kernels::log_softmax_in_place(&mut s);
        let expected = [0.25f32.ln(), 0.5f32.ln(), f32::NEG_INFINITY, 0.25f32.ln()];
        for (a, b) in s.iter().zip(expected) {
            assert!(a == &b || (a - b).abs() < 1e-6, "{s:?}");
        }
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
    }

    #[test]
    fn sampling_follows_the_distribution_and_never_picks_masked_tokens() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let scores = [0.0, 3f32.ln(), f32::NEG_INFINITY];
        let mut counts = [0usize; 3];
        for _ in 0..4000 {
            counts[sample(&scores, &mut rng) as usize] += 1;
        }
        assert_eq!(counts[2], 0);
        let share = counts[1] as f64 / 4000.0;
        assert!((share - 0.75).abs() < 0.03, "{counts:?}");
    }
}

//! BERTScore's arithmetic (Zhang et al., ICLR 2020) exactly as the `bert-score` package (0.3.13,
//! `bert_score/utils.py`) computes it, on token embeddings someone else produced: idf weights from
//! the references, greedy cosine matching, and baseline rescaling (`rescale_with_baseline`, its
//! `LAYER,P,R,F` files).
//!
//! Details that change the numbers, all the package's: every token takes part in the matching,
//! [CLS]/[SEP] (`<s>`/`</s>`) included, but those weigh 0 in the sums; idf is
//! `ln((N + 1) / (df + 1))` over the N references' token sets (so [CLS]/[SEP], in every
//! reference, get exactly 0), `ln(N + 1)` for a token no reference has; without idf every token
//! weighs 1 but [CLS]/[SEP]. The package matches pairs in batches of 64 padded to the batch's
//! longest candidate and reference, and multiplies padded similarities by a mask — so a token's
//! best match is at least 0 when the other side of its pair is shorter than the longest in its
//! batch ([`PAD_BATCH`]); we reproduce that. An empty candidate or reference (special tokens
//! only) scores 0, 0, 0; a rescaled score is `(x − b) / (1 − b)` for each of P, R and F.

use std::collections::{HashMap, HashSet};

use super::Prf;

/// The `batch_size` of `bert_score.score`, which decides the padding described above.
pub const PAD_BATCH: usize = 64;

/// One sentence as the encoder saw it: its token ids (special tokens included) and one embedding
/// per token, `dim` floats each, row-major.
#[derive(Clone, Debug)]
pub struct Embedded {
    pub ids: Vec<u32>,
    pub vectors: Vec<f32>,
    pub dim: usize,
}

impl Embedded {
    fn len(&self) -> usize {
        self.ids.len()
    }

    /// Token vectors scaled to unit length (the package divides by the L2 norm, no epsilon).
    fn normalised(&self) -> Vec<f32> {
        let mut out = self.vectors.clone();
        for row in out.chunks_mut(self.dim) {
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            row.iter_mut().for_each(|x| *x /= norm);
        }
        out
    }
}

/// Token weights: idf from the references, or uniform; `special` (the [CLS] and [SEP] ids) weigh 0
/// when uniform and get their idf otherwise, as in the package.
#[derive(Clone, Debug)]
pub struct Weights {
    table: HashMap<u32, f64>,
    default: f64,
}

impl Weights {
    /// Every token 1, `special` tokens 0 (`idf=False`).
    pub fn uniform(special: &[u32]) -> Weights {
        Weights { table: special.iter().map(|&id| (id, 0.0)).collect(), default: 1.0 }
    }

    /// `get_idf_dict`: document frequencies over the references' token sets (`references` are the
    /// encoded references, special tokens included).
    pub fn idf(references: &[Vec<u32>]) -> Weights {
        let n = references.len() as f64;
        let mut df: HashMap<u32, usize> = HashMap::new();
        for reference in references {
            for id in reference.iter().copied().collect::<HashSet<u32>>() {
                *df.entry(id).or_default() += 1;
            }
        }
        let table = df.into_iter().map(|(id, c)| (id, ((n + 1.0) / (c as f64 + 1.0)).ln())).collect();
        Weights { table, default: (n + 1.0).ln() }
    }

    pub fn of(&self, id: u32) -> f64 {
        self.table.get(&id).copied().unwrap_or(self.default)
    }
}

/// Per-layer baselines of P, R and F for [`rescale`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Baseline {
    pub precision: f64,
    pub recall: f64,
    pub f: f64,
}

impl Baseline {
    /// Reads the row of `layer` from a baseline file in the package's format: a header
    /// `LAYER,P,R,F`, then one row per layer from 0 (the package takes row number `layer`, as
    /// pandas' `iloc`; a row whose LAYER disagrees is refused rather than read as another layer).
    pub fn parse(text: &str, origin: &str, layer: usize) -> anyhow::Result<Baseline> {
        let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| anyhow::anyhow!("{origin}: cannot read the header: {e}"))?
            .iter()
            .map(str::to_owned)
            .collect();
        if header.len() < 4 || header[1..4] != ["P", "R", "F"] {
            anyhow::bail!("{origin}, line 1: expected the header LAYER,P,R,F (bert-score's baseline format), found {header:?}");
        }
        let rows: Vec<csv::StringRecord> = reader
            .records()
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("{origin}: not a CSV file: {e}"))?;
        let Some(row) = rows.get(layer) else {
            anyhow::bail!(
                "{origin} has baselines for layers 0 to {} only; layer {layer} was asked for",
                rows.len().saturating_sub(1)
            );
        };
        let line = layer + 2;
        let number = |i: usize, name: &str| -> anyhow::Result<f64> {
            let cell = row.get(i).unwrap_or("");
            cell.parse::<f64>().ok().filter(|v| v.is_finite() && *v < 1.0).ok_or_else(|| {
                anyhow::anyhow!(
                    "{origin}, line {line}, field {name}: expected a number below 1, found {cell:?}"
                )
            })
        };
        if row.get(0).and_then(|l| l.parse::<f64>().ok()) != Some(layer as f64) {
            anyhow::bail!("{origin}, line {line}, field LAYER: expected {layer} (rows are read by position, from layer 0), found {:?}", row.get(0).unwrap_or(""));
        }
        Ok(Baseline { precision: number(1, "P")?, recall: number(2, "R")?, f: number(3, "F")? })
    }

    /// `(x − b) / (1 − b)`, each of P, R, F against its own baseline.
    pub fn rescale(&self, score: Prf) -> Prf {
        let r = |x: f64, b: f64| (x - b) / (1.0 - b);
        Prf {
            precision: r(score.precision, self.precision),
            recall: r(score.recall, self.recall),
            f: r(score.f, self.f),
        }
    }
}

/// BERTScore of each (candidate, reference) pair, in order (`greedy_cos_idf` over the package's
/// batches of [`PAD_BATCH`] pairs). Scores are fractions, not ×100.
pub fn score(pairs: &[(&Embedded, &Embedded)], weights: &Weights) -> Vec<Prf> {
    let mut out = Vec::with_capacity(pairs.len());
    for batch in pairs.chunks(PAD_BATCH) {
        let longest_candidate = batch.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
        let longest_reference = batch.iter().map(|(_, r)| r.len()).max().unwrap_or(0);
        for (candidate, reference) in batch {
            let padded = (reference.len() < longest_reference, candidate.len() < longest_candidate);
            out.push(pair(candidate, reference, weights, padded));
        }
    }
    out
}

/// One pair; `padded` says whether the reference and the candidate were padded in their batch.
fn pair(candidate: &Embedded, reference: &Embedded, weights: &Weights, padded: (bool, bool)) -> Prf {
    // `hyp_masks.sum(dim=1).eq(2)`: nothing but [CLS] and [SEP].
    if candidate.len() <= 2 || reference.len() <= 2 {
        return Prf::default();
    }
    let (c, r, dim) = (candidate.normalised(), reference.normalised(), candidate.dim);
    let sim = |i: usize, j: usize| -> f32 {
        c[i * dim..(i + 1) * dim].iter().zip(&r[j * dim..(j + 1) * dim]).map(|(a, b)| a * b).sum()
    };
    let floor = |is_padded: bool| if is_padded { 0.0f32 } else { f32::NEG_INFINITY };
    let mut best_for_candidate = vec![floor(padded.0); candidate.len()];
    let mut best_for_reference = vec![floor(padded.1); reference.len()];
    for (i, best_c) in best_for_candidate.iter_mut().enumerate() {
        for (j, best_r) in best_for_reference.iter_mut().enumerate() {
            let s = sim(i, j);
            *best_c = best_c.max(s);
            *best_r = best_r.max(s);
        }
    }
    let weighted = |ids: &[u32], best: &[f32]| -> f64 {
        let w: Vec<f64> = ids.iter().map(|&id| weights.of(id)).collect();
        let total: f64 = w.iter().sum();
        if total == 0.0 {
            return 0.0;
        }
        w.iter().zip(best).map(|(w, b)| w / total * f64::from(*b)).sum()
    };
    let precision = weighted(&candidate.ids, &best_for_candidate);
    let recall = weighted(&reference.ids, &best_for_reference);
    let f = 2.0 * precision * recall / (precision + recall);
    Prf { precision, recall, f: if f.is_nan() { 0.0 } else { f } }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_baseline_file_reads_back_by_layer(
            rows in proptest::collection::vec((-5.0f64..0.99, -5.0f64..0.99, -5.0f64..0.99), 1..30),
            pick in any::<proptest::sample::Index>(),
        ) {
            let mut text = "LAYER,P,R,F\n".to_owned();
            for (i, (p, r, f)) in rows.iter().enumerate() {
                text.push_str(&format!("{i},{p},{r},{f}\n"));
            }
            let layer = pick.index(rows.len());
            let b = Baseline::parse(&text, "b.csv", layer).unwrap();
            let (p, r, f) = rows[layer];
            prop_assert_eq!(b, Baseline { precision: p, recall: r, f });
        }

        #[test]
        fn any_text_is_a_baseline_or_an_error_naming_the_file(text in "\\PC*", layer in 0usize..4) {
            if let Err(e) = Baseline::parse(&text, "b.csv", layer) {
                prop_assert!(e.to_string().starts_with("b.csv"), "{}", e);
            }
        }
    }

    fn sentence(ids: &[u32], vectors: &[[f32; 2]]) -> Embedded {
        Embedded { ids: ids.to_vec(), vectors: vectors.iter().flatten().copied().collect(), dim: 2 }
    }

    #[test]
    fn greedy_matching_by_hand() {
        // [CLS]=0 and [SEP]=9 weigh 0. Candidate tokens 1 (along x) and 2 (along y); reference
        // token 1 (along x, scaled: only the direction counts) and 3 (at 45°).
        let cand = sentence(&[0, 1, 2, 9], &[[1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]);
        let refr = sentence(&[0, 1, 3, 9], &[[-1.0, -1.0], [3.0, 0.0], [1.0, 1.0], [0.0, -1.0]]);
        let s = std::f64::consts::FRAC_1_SQRT_2;
        let got = score(&[(&cand, &refr)], &Weights::uniform(&[0, 9]));
        // Candidate: token 1 matches reference 1 (1.0); token 2 matches reference 3 (√½).
        // Reference: token 1 ← 1.0; token 3 ← candidate [CLS] (1.0): specials take part in matching.
        assert!((got[0].precision - (1.0 + s) / 2.0).abs() < 1e-6, "{got:?}");
        assert!((got[0].recall - 1.0).abs() < 1e-6, "{got:?}");
        let (p, r) = (got[0].precision, got[0].recall);
        assert!((got[0].f - 2.0 * p * r / (p + r)).abs() < 1e-12);
    }

    #[test]
    fn idf_is_smoothed_document_frequency_and_specials_get_zero() {
        let w = Weights::idf(&[vec![0, 5, 5, 9], vec![0, 6, 9]]);
        assert_eq!(w.of(0), 0.0);
        assert_eq!(w.of(9), 0.0);
        assert!((w.of(5) - (3.0f64 / 2.0).ln()).abs() < 1e-12, "df counts sentences, not occurrences");
        assert!((w.of(77) - 3.0f64.ln()).abs() < 1e-12);
        assert_eq!(Weights::uniform(&[0, 9]).of(5), 1.0);
    }

    #[test]
    fn a_padded_pair_never_matches_below_zero_and_empty_sentences_score_zero() {
        let cand = sentence(&[0, 1, 9], &[[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]);
        let opposite = sentence(&[0, 2, 9], &[[-1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]]);
        let longer = sentence(&[0, 2, 2, 9], &[[-1.0, 0.0]; 4]);
        let uniform = Weights::uniform(&[0, 9]);
        assert!((score(&[(&cand, &opposite)], &uniform)[0].precision + 1.0).abs() < 1e-6);
        // Beside a longer reference in the batch, the short one is padded: its best match is 0.
        let batch = score(&[(&cand, &opposite), (&cand, &longer)], &uniform);
        assert_eq!(batch[0].precision, 0.0);
        let empty = sentence(&[0, 9], &[[1.0, 0.0], [0.0, 1.0]]);
        assert_eq!(score(&[(&empty, &cand)], &uniform)[0], Prf::default());
    }

    #[test]
    fn baseline_rows_are_read_by_layer_and_bad_cells_are_named() {
        let text = "LAYER,P,R,F\n0,0.5,0.4,0.45\n1,0.8,0.75,0.7\n";
        let b = Baseline::parse(text, "b.csv", 1).unwrap();
        assert_eq!(b, Baseline { precision: 0.8, recall: 0.75, f: 0.7 });
        let got = b.rescale(Prf { precision: 0.9, recall: 0.75, f: 1.0 });
        assert!((got.precision - 0.5).abs() < 1e-12 && got.recall == 0.0 && (got.f - 1.0).abs() < 1e-12);
        let err = Baseline::parse(text, "b.csv", 2).unwrap_err().to_string();
        assert!(err.contains("layers 0 to 1 only"), "{err}");
        let err = Baseline::parse("LAYER,P,R,F\n0,x,0.4,0.45\n", "b.csv", 0).unwrap_err().to_string();
        assert!(err.contains("b.csv, line 2, field P"), "{err}");
        let err = Baseline::parse("LAYER,P,R,F\n3,0.5,0.4,0.45\n", "b.csv", 0).unwrap_err().to_string();
        assert!(err.contains("field LAYER: expected 0"), "{err}");
        let err = Baseline::parse("layer;p;r;f\n", "b.csv", 0).unwrap_err().to_string();
        assert!(err.contains("expected the header LAYER,P,R,F"), "{err}");
    }
}

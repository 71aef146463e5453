//! Reference values for the metrics, computed outside this crate: the PETER metric code
//! (tensorflow/nmt `compute_bleu`, google/seq2seq `rouge`, PEPLER `postprocessing`, transcribed
//! into Python and run on the corpus below) and scipy 1.17.1 for the statistical tests.

use prism_explorer::metrics::stats::{paired_t_test, wilcoxon, WilcoxonMethod, WilcoxonOptions, ZeroMethod};
use prism_explorer::metrics::{tokenize, TextScores};

const HYPS: [&str; 5] = [
    "The acting is superb, and the plot twists keep you guessing!",
    "A slow drama (with great music)... worth it.",
    "You'll love the comedy: it's light; it isn't deep.",
    "Great movie.",
    "the plot twists are great",
];
const REFS: [&str; 5] = [
    "Superb acting; the plot keeps you guessing until the end.",
    "A slow, moving drama with great music.",
    "You will love this light comedy, it isn't deep at all!",
    "great movie .",
    "the twists in the plot are great and the acting is superb",
];

fn close(actual: f64, expected: f64, what: &str) {
    assert!((actual - expected).abs() < 1e-9, "{what}: {actual} vs {expected}");
}

#[test]
fn text_scores_match_the_peter_reference_code() {
    // Python: compute_bleu([[r] for r in R], H, 1|4) * 100 and rouge(H, R) * 100 on
    // postprocessing(text.lower()).split() tokens.
    let s = TextScores::compute(&HYPS, &REFS).unwrap();
    close(s.bleu1, 61.947652438298505, "BLEU-1");
    close(s.bleu4, 16.321780110834833, "BLEU-4");
    let expected = [
        ("ROUGE-1", s.rouge.rouge1, [76.57342657342656, 70.41269841269842, 71.5757570888323]),
        ("ROUGE-2", s.rouge.rouge2, [45.93073593073592, 42.46503496503497, 42.53479060858724]),
        ("ROUGE-L", s.rouge.rouge_l, [66.02564102564102, 61.98412698412699, 59.09964611736231]),
    ];
    for (name, prf, [p, r, f]) in expected {
        close(prf.precision, p, name);
        close(prf.recall, r, name);
        close(prf.f, f, name);
    }
    close(s.distinct1, 0.6666666666666666, "distinct-1");
    close(s.distinct2, 0.9534883720930233, "distinct-2");
    close(s.usr, 1.0, "USR");
    assert_eq!(
        tokenize(HYPS[2]),
        [
            "you", "'ll", "love", "the", "comedy", ",", "it", "'s", "light", ".", "it", "is", "n't", "deep",
            "."
        ]
    );
}

// Paired samples; A1/B1 are continuous with no ties, A2/B2 and A3/B3 are Likert ratings with ties
// and zeros, A4/B4 has 60 pairs. Generated with numpy.random.default_rng(1).
const A1: [f64; 10] = [3.35, 3.82, 3.33, 1.7, 3.91, 3.45, 2.46, 3.58, 3.36, 3.29];
const B1: [f64; 10] = [2.63, 3.15, 1.86, 2.44, 2.12, 3.2, 2.64, 2.31, 1.82, 2.34];
const A2: [f64; 10] = [4.0, 3.0, 5.0, 2.0, 4.0, 3.0, 4.0, 5.0, 3.0, 4.0];
const B2: [f64; 10] = [3.0, 3.0, 4.0, 3.0, 3.0, 3.0, 3.0, 4.0, 2.0, 5.0];
const A3: [f64; 30] = [
    1.0, 4.0, 1.0, 2.0, 3.0, 3.0, 1.0, 5.0, 4.0, 5.0, 1.0, 4.0, 2.0, 3.0, 5.0, 2.0, 4.0, 1.0, 2.0, 5.0, 3.0,
    3.0, 2.0, 1.0, 3.0, 4.0, 3.0, 4.0, 2.0, 4.0,
];
const B3: [f64; 30] = [
    4.0, 5.0, 3.0, 1.0, 4.0, 3.0, 5.0, 3.0, 2.0, 1.0, 3.0, 4.0, 4.0, 5.0, 2.0, 3.0, 5.0, 2.0, 2.0, 5.0, 3.0,
    3.0, 4.0, 3.0, 5.0, 4.0, 1.0, 1.0, 3.0, 5.0,
];
const A4: [f64; 60] = [
    0.678, 0.564, 0.336, 0.646, 0.4, 0.676, 0.286, 0.683, 0.496, 0.25, 0.437, 0.511, 0.555, 0.304, 0.279,
    0.54, 0.407, 0.547, 0.652, 0.17, 0.551, 0.745, 0.44, 0.338, 0.65, 0.551, 0.679, 0.431, 0.204, 0.478,
    0.411, 0.655, 0.539, 0.174, 0.261, 0.677, 0.636, 0.372, 0.5, 0.589, 0.594, 0.675, 0.551, 0.481, 0.448,
    0.711, 0.05, 0.472, 0.507, 0.215, 0.567, 0.37, 0.672, 0.475, 0.634, 0.744, 0.577, 0.325, 0.197, 0.851,
];
const B4: [f64; 60] = [
    0.428, 0.312, 0.479, 0.412, 0.62, 0.457, 0.453, 0.307, 0.544, 0.243, 0.583, 0.755, 0.145, -0.043, 0.573,
    0.96, 0.25, 0.2, 0.568, 0.282, 0.349, 0.38, 0.556, 0.369, 0.506, 0.415, 0.281, 0.386, 0.26, 0.451, 0.225,
    0.231, 0.741, 0.439, 0.439, 0.552, 0.366, 0.404, 0.535, 0.506, 0.218, 0.617, 0.332, 0.239, 0.27, 0.372,
    0.775, 0.215, 0.482, 0.022, 0.45, 0.63, 0.403, 0.324, 0.496, 0.59, 0.583, 0.844, 0.492, 0.332,
];

fn check(a: &[f64], b: &[f64], options: WilcoxonOptions, statistic: f64, p: f64, method: WilcoxonMethod) {
    let r = wilcoxon(a, b, options).unwrap();
    assert_eq!(r.method, method, "{options:?}");
    close(r.statistic, statistic, "statistic");
    assert!((r.p_value - p).abs() < 1e-12 * p.max(1e-3), "{options:?}: p {} vs {p}", r.p_value);
}

#[test]
fn wilcoxon_matches_scipy() {
    use WilcoxonMethod::*;
    let default = WilcoxonOptions::default();
    // scipy.stats.wilcoxon(a, b, **options): (statistic, pvalue).
    check(&A1, &B1, default, 6.0, 0.02734375, Exact);
    check(&A2, &B2, default, 9.0, 0.2890625, Permutation);
    check(
        &A2,
        &B2,
        WilcoxonOptions { zero_method: ZeroMethod::Zsplit, ..default },
        14.5,
        0.2890625,
        Permutation,
    );
    check(&A3, &B3, default, 107.5, 0.34640424282635784, Asymptotic);
    check(&A3, &B3, WilcoxonOptions { correction: true, ..default }, 107.5, 0.3543675509674503, Asymptotic);
    check(
        &A3,
        &B3,
        WilcoxonOptions { zero_method: ZeroMethod::Pratt, ..default },
        156.5,
        0.19579210880846676,
        Asymptotic,
    );
    let zsplit = WilcoxonOptions { zero_method: ZeroMethod::Zsplit, correction: true, ..default };
    check(&A3, &B3, zsplit, 170.5, 0.20214980408405459, Asymptotic);
    check(&A4, &B4, default, 619.0, 0.02932746153584593, Asymptotic);
    check(&A4, &B4, WilcoxonOptions { method: Exact, ..default }, 619.0, 0.028878789696257012, Exact);
}

#[test]
fn paired_t_test_matches_scipy() {
    // scipy.stats.ttest_rel(a, b).
    let t = paired_t_test(&A3, &B3).unwrap();
    close(t.t, -1.0658172132904993, "t");
    close(t.p_value, 0.2952998112726458, "p");
    close(paired_t_test(&A4, &B4).unwrap().p_value, 0.05566180529443441, "p");
}

#[test]
fn mismatched_samples_are_reported_not_panicked_on() {
    let err = wilcoxon(&A1, &B3, WilcoxonOptions::default()).unwrap_err().to_string();
    assert!(err.contains("10") && err.contains("30"), "{err}");
    let err = paired_t_test(&[1.0, f64::NAN], &[1.0, 2.0]).unwrap_err().to_string();
    assert!(err.contains("item 1"), "{err}");
}

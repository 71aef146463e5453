//! Metrics without IO or devices: BLEU, ROUGE, distinct-n, the explainable-recommendation metrics
//! (USR, FMR, FCR, DIV), grounding rates, and the statistics used by reports (bootstrap CIs,
//! paired tests, agreement coefficients).

//! Scoring explanation files (rows of `user`, `item`, `model`, `text`) against a dataset.

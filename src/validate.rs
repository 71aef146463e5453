//! Range checks of the numbers a user sets — in config files, presets, recipes and flags — done
//! before any work starts. Every error names the key as the user wrote it and the accepted range,
//! so `learning_rate = nan` is refused with "ranker.bpr.learning_rate = NaN: expected a finite
//! number in (0, 10]" instead of training a broken model.

use std::fmt::Display;
use std::ops::Bound;

use anyhow::{bail, Result};

/// Collects every out-of-range value of one source (a file or the flags), then reports them
/// together, the source first.
#[derive(Debug, Default)]
pub struct Checks {
    errors: Vec<String>,
}

impl Checks {
    pub fn new() -> Checks {
        Checks::default()
    }

    /// An integer in `min..=max`.
    pub fn int<T: PartialOrd + Display + Copy>(&mut self, key: &str, value: T, min: T, max: T) {
        if value < min || value > max {
            self.errors.push(format!("{key} = {value}: expected an integer from {min} to {max}"));
        }
    }

    /// A finite float within `(low, high)` bounds.
    pub fn float(&mut self, key: &str, value: f64, low: Bound<f64>, high: Bound<f64>) {
        if let Err(e) = check_float(value, low, high) {
            self.errors.push(format!("{key} = {}: {e}", show_float(value)));
        }
    }

    /// Records a failed check of any other kind.
    pub fn fail(&mut self, key: &str, message: impl Display) {
        self.errors.push(format!("{key}: {message}"));
    }

    /// `Err` naming `origin` and every bad key, or `Ok` when all were in range.
    pub fn finish(self, origin: &str) -> Result<()> {
        match self.errors.as_slice() {
            [] => Ok(()),
            [one] => bail!("{origin}: {one}"),
            many => bail!("{origin}: {} values out of range:\n  {}", many.len(), many.join("\n  ")),
        }
    }
}

/// `Ok` when `value` is finite and within the bounds; the message says what is accepted.
pub fn check_float(value: f64, low: Bound<f64>, high: Bound<f64>) -> Result<(), String> {
    let inside = value.is_finite()
        && match low {
            Bound::Included(l) => value >= l,
            Bound::Excluded(l) => value > l,
            Bound::Unbounded => true,
        }
        && match high {
            Bound::Included(h) => value <= h,
            Bound::Excluded(h) => value < h,
            Bound::Unbounded => true,
        };
    if inside {
        Ok(())
    } else {
        Err(format!("expected a finite number in {}", describe(low, high)))
    }
}

/// As the user probably wrote it: `NaN`, `inf`, `0.05`, `-1e30` (an f32 setting shown at its own
/// precision, large and tiny magnitudes with an exponent).
fn show_float(value: f64) -> String {
    let single = value as f32;
    let exact = f64::from(single) == value;
    let magnitude = value.abs();
    if value.is_nan() {
        "NaN".into()
    } else if value.is_finite() && (magnitude >= 1e6 || (magnitude > 0.0 && magnitude < 1e-4)) {
        if exact {
            format!("{single:e}")
        } else {
            format!("{value:e}")
        }
    } else if exact {
        single.to_string()
    } else {
        value.to_string()
    }
}

/// `[0, 1)`, `(0, ∞)`…
pub fn describe(low: Bound<f64>, high: Bound<f64>) -> String {
    let low = match low {
        Bound::Included(l) => format!("[{l}"),
        Bound::Excluded(l) => format!("({l}"),
        Bound::Unbounded => "(-∞".into(),
    };
    let high = match high {
        Bound::Included(h) => format!("{h}]"),
        Bound::Excluded(h) => format!("{h})"),
        Bound::Unbounded => "∞)".into(),
    };
    format!("{low}, {high}")
}

/// Parsers for numeric flags: clap puts the flag's name before the message.
pub mod flag {
    use std::ops::Bound::{self, Excluded, Included};

    fn float(text: &str, low: Bound<f64>, high: Bound<f64>) -> Result<f64, String> {
        let value: f64 = text.trim().parse().map_err(|_| format!("{text:?} is not a number"))?;
        super::check_float(value, low, high)?;
        Ok(value)
    }

    fn int(text: &str, min: usize, max: usize) -> Result<usize, String> {
        let value: usize =
            text.trim().parse().map_err(|_| format!("{text:?} is not a whole number from {min} to {max}"))?;
        if !(min..=max).contains(&value) {
            return Err(format!("expected a whole number from {min} to {max}"));
        }
        Ok(value)
    }

    /// A count of at least one (beams, runs, tokens, inputs).
    pub fn at_least_one(text: &str) -> Result<usize, String> {
        int(text, 1, 1 << 32)
    }

    /// A count that may be zero (warm-up runs, `0 = off` sizes).
    pub fn count(text: &str) -> Result<usize, String> {
        int(text, 0, 1 << 32)
    }

    /// Any finite number (a length penalty may be negative).
    pub fn finite_f32(text: &str) -> Result<f32, String> {
        float(text, Included(-1e6), Included(1e6)).map(|v| v as f32)
    }

    /// A finite number above zero (temperature, repetition penalty).
    pub fn positive_f32(text: &str) -> Result<f32, String> {
        float(text, Excluded(0.0), Included(1e6)).map(|v| v as f32)
    }

    /// A probability mass in (0, 1] (top-p).
    pub fn probability_f32(text: &str) -> Result<f32, String> {
        float(text, Excluded(0.0), Included(1.0)).map(|v| v as f32)
    }

    /// A share in [0, 1].
    pub fn share(text: &str) -> Result<f64, String> {
        float(text, Included(0.0), Included(1.0))
    }
}

#[cfg(test)]
mod tests {
    use std::ops::Bound::{Excluded, Included, Unbounded};

    use super::*;

    #[test]
    fn non_finite_and_out_of_range_values_are_named_with_the_range() {
        let mut c = Checks::new();
        c.float("ranker.bpr.learning_rate", f64::NAN, Excluded(0.0), Included(10.0));
        c.float("a.inf", f64::INFINITY, Unbounded, Unbounded);
        c.float("a.ok", 0.5, Included(0.0), Excluded(1.0));
        c.int("ranker.k", 0usize, 1, 10_000);
        let err = c.finish("my.toml").unwrap_err().to_string();
        assert!(err.starts_with("my.toml: 3 values out of range"), "{err}");
        assert!(err.contains("ranker.bpr.learning_rate = NaN: expected a finite number in (0, 10]"), "{err}");
        assert!(err.contains("a.inf = inf: expected a finite number in (-∞, ∞)"), "{err}");
        assert!(err.contains("ranker.k = 0: expected an integer from 1 to 10000"), "{err}");
        assert!(!err.contains("a.ok"), "{err}");
        assert!(Checks::new().finish("x").is_ok());
    }

    #[test]
    fn flag_parsers_refuse_nan_inf_and_out_of_range() {
        for bad in ["nan", "inf", "-inf", "NaN", "0", "-1", "x"] {
            assert!(flag::positive_f32(bad).is_err(), "{bad}");
        }
        assert_eq!(flag::positive_f32("0.7"), Ok(0.7));
        assert!(flag::probability_f32("1.5").is_err());
        assert!(flag::at_least_one("0").is_err());
        assert_eq!(flag::count("0"), Ok(0));
        assert!(flag::finite_f32("1e30").is_err());
    }
}

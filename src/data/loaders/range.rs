//! Plausible ranges of the numbers loaders read: ratings on each dataset's scale, timestamps
//! between the dataset's first possible day and tomorrow, release years. A number outside its
//! range is as wrong as one that does not parse: a required one fails the record, an optional one
//! (a year) is left missing and counted.

use std::time::{SystemTime, UNIX_EPOCH};

use super::lines::FieldError;
use super::text::parse_datetime;

/// The ratings a dataset can hold: `min..=max` in steps of `step` from `min`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scale {
    pub min: f32,
    pub max: f32,
    pub step: f32,
}

impl Scale {
    /// Whole stars from 1 to 5: MovieLens 100K and 1M, Amazon's `overall`, Yelp's review `stars`.
    pub const STARS: Scale = Scale { min: 1.0, max: 5.0, step: 1.0 };
    /// Half stars from 0.5 to 5: MovieLens 10M, 20M, 25M, 32M and latest.
    pub const HALF_STARS: Scale = Scale { min: 0.5, max: 5.0, step: 0.5 };

    /// `value` when it is on the scale, else an error naming `field` and the scale.
    pub fn check(self, value: f32, field: &str) -> Result<f32, FieldError> {
        let steps = (value - self.min) / self.step;
        if (self.min..=self.max).contains(&value) && (steps - steps.round()).abs() < 1e-4 {
            return Ok(value);
        }
        let scale = if self.step == 1.0 {
            format!("a whole number from {} to {}", self.min, self.max)
        } else {
            format!("{} to {} in steps of {}", self.min, self.max, self.step)
        };
        Err(FieldError::field(field, format!("{value} is not on the dataset's rating scale ({scale})")))
    }
}

/// The first day a dataset's timestamps can fall on, as `YYYY-MM-DD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Since(pub &'static str);

impl Since {
    /// MovieLens went online in 1997, and its later releases carry ratings from 1995 on; the
    /// Amazon reviews dumps start in 1996.
    pub const MOVIELENS: Since = Since("1995-01-01");
    pub const AMAZON: Since = Since("1995-01-01");
    /// Yelp was founded in 2004.
    pub const YELP: Since = Since("2004-01-01");

    /// `timestamp` (Unix seconds) when it falls between this day and tomorrow, else an error
    /// naming `field`.
    pub fn check(self, timestamp: i64, field: &str) -> Result<i64, FieldError> {
        let first = parse_datetime(self.0).unwrap_or(0);
        let last = now() + 86_400;
        if (first..=last).contains(&timestamp) {
            return Ok(timestamp);
        }
        Err(FieldError::field(
            field,
            format!(
                "{timestamp} ({}) is outside the dataset's plausible range ({} to tomorrow)",
                iso_date(timestamp),
                self.0
            ),
        ))
    }
}

/// Release years outside this range are taken for garbage: the first films are from the 1870s,
/// and a film is announced a few years ahead at most.
pub fn plausible_year(year: i64) -> bool {
    (1870..=this_year() + 10).contains(&year)
}

/// Unix seconds now (0 if the clock is before 1970, which no check here then passes).
fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn this_year() -> i64 {
    1970 + now() / 31_556_952
}

/// `YYYY-MM-DD` of a Unix timestamp (UTC), for messages and the explorer's history
/// (days to civil date: H. Hinnant's `civil_from_days`).
pub fn iso_date(timestamp: i64) -> String {
    let z = timestamp.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_from_timestamps() {
        assert_eq!(iso_date(0), "1970-01-01");
        assert_eq!(iso_date(951_782_400), "2000-02-29");
        assert_eq!(iso_date(-86_400), "1969-12-31");
    }

    #[test]
    fn rating_scales() {
        assert_eq!(Scale::STARS.check(3.0, "rating"), Ok(3.0));
        for bad in [0.0, 3.5, 6.0, -1.0] {
            let err = Scale::STARS.check(bad, "rating").unwrap_err();
            assert!(err.message.contains("a whole number from 1 to 5"), "{}", err.message);
        }
        assert_eq!(Scale::HALF_STARS.check(0.5, "rating"), Ok(0.5));
        assert_eq!(Scale::HALF_STARS.check(4.5, "rating"), Ok(4.5));
        let err = Scale::HALF_STARS.check(4.2, "rating").unwrap_err();
        assert_eq!(err.message, "4.2 is not on the dataset's rating scale (0.5 to 5 in steps of 0.5)");
        assert!(Scale::HALF_STARS.check(0.0, "rating").is_err());
    }

    #[test]
    fn timestamps_and_years() {
        assert_eq!(Since::MOVIELENS.check(881_250_949, "timestamp"), Ok(881_250_949));
        let err = Since::MOVIELENS.check(88_125_094, "timestamp").unwrap_err();
        assert_eq!(
            err.message,
            "88125094 (1972-10-16) is outside the dataset's plausible range (1995-01-01 to tomorrow)"
        );
        let year_99999 = parse_datetime("99999-01-01 00:00:00").unwrap();
        let err = Since::YELP.check(year_99999, "date").unwrap_err();
        assert!(err.message.contains("(99999-01-01)"), "{}", err.message);
        assert!(Since::YELP.check(now(), "date").is_ok());
        assert!(plausible_year(1895) && plausible_year(2024));
        assert!(!plausible_year(0) && !plausible_year(99_999) && !plausible_year(1492));
    }
}

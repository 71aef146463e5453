//! Normalising the text fields several formats share: MovieLens-style titles with a trailing
//! year, calendar dates to Unix seconds, HTML entities in Amazon titles, feature lists.

use crate::data::Feature;

/// Splits `"Usual Suspects, The (1995)"` into `("The Usual Suspects", Some(1995))`. Only a
/// trailing four-digit year in parentheses is taken; alternative titles stay in the title.
pub fn title_and_year(raw: &str) -> (String, Option<i32>) {
    let raw = raw.trim();
    let mut title = raw;
    let mut year = None;
    if let Some(stripped) = raw.strip_suffix(')') {
        if let Some(open) = stripped.rfind('(') {
            let inside = stripped[open + 1..].trim();
            // "(2007-2013)" marks a series: the first year is its release year.
            let first = inside.split(['-', '–']).next().unwrap_or("");
            if first.len() == 4 && first.bytes().all(|b| b.is_ascii_digit()) {
                year = first.parse().ok();
                title = stripped[..open].trim_end();
            }
        }
    }
    (move_article(title), year)
}

/// MovieLens writes `"Usual Suspects, The"`; explanations (and people) say "The Usual Suspects".
fn move_article(title: &str) -> String {
    const ARTICLES: &[&str] =
        &["The", "A", "An", "Les", "La", "Le", "L'", "Il", "Das", "Der", "Die", "El", "Los", "Las"];
    if let Some((head, article)) = title.rsplit_once(", ") {
        if ARTICLES.contains(&article) {
            let sep = if article.ends_with('\'') { "" } else { " " };
            return format!("{article}{sep}{head}");
        }
    }
    title.to_owned()
}

/// The year of a date written with a four-digit year at its end or start (`01-Jan-1995`,
/// `1995-01-01`); `None` for empty or unknown dates.
pub fn year_of_date(date: &str) -> Option<i32> {
    let date = date.trim();
    let candidates = [date.get(date.len().saturating_sub(4)..), date.get(..4)];
    candidates
        .into_iter()
        .flatten()
        .find(|s| s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Parses `YYYY-MM-DD` or `YYYY-MM-DD HH:MM:SS` (UTC) into Unix seconds.
pub fn parse_datetime(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, time) = match text.split_once([' ', 'T']) {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let mut parts = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (parts.next()??, parts.next()??, parts.next()??);
    if parts.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut seconds = 0;
    if let Some(time) = time {
        let mut parts = time.split(':').map(|p| p.parse::<i64>().ok());
        let (h, min) = (parts.next()??, parts.next()??);
        let s = parts.next().unwrap_or(Some(0))?;
        if parts.next().is_some() || h > 23 || min > 59 || s > 60 {
            return None;
        }
        seconds = h * 3600 + min * 60 + s;
    }
    Some(days_from_civil(y, m, d) * 86_400 + seconds)
}

/// Decodes the handful of HTML entities that appear in Amazon metadata titles.
pub fn unescape_html(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    const ENTITIES: &[(&str, &str)] = &[
        ("&amp;", "&"),
        ("&quot;", "\""),
        ("&#39;", "'"),
        ("&apos;", "'"),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&nbsp;", " "),
    ];
    let mut out = text.to_owned();
    for (entity, plain) in ENTITIES {
        out = out.replace(entity, plain);
    }
    out
}

/// Appends `kind: value` unless empty or already present (case-insensitively, first spelling wins).
pub fn push_feature(features: &mut Vec<Feature>, kind: &str, value: &str) {
    let value = value.trim();
    if value.is_empty() {
        return;
    }
    let seen = features.iter().any(|f| f.kind == kind && f.value.eq_ignore_ascii_case(value));
    if !seen {
        features.push(Feature::new(kind, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_lose_the_year_and_get_their_article_back() {
        assert_eq!(title_and_year("Toy Story (1995)"), ("Toy Story".into(), Some(1995)));
        assert_eq!(title_and_year("Usual Suspects, The (1995)"), ("The Usual Suspects".into(), Some(1995)));
        assert_eq!(title_and_year("Appartement, L' (1996)"), ("L'Appartement".into(), Some(1996)));
        assert_eq!(
            title_and_year("City of Lost Children, The (Cité des enfants perdus, La) (1995)"),
            ("City of Lost Children, The (Cité des enfants perdus, La)".into(), Some(1995))
        );
        assert_eq!(title_and_year("Babylon 5"), ("Babylon 5".into(), None));
        assert_eq!(title_and_year("Sherlock (2010-2017)"), ("Sherlock".into(), Some(2010)));
        assert_eq!(title_and_year("Brazil (Director's Cut)"), ("Brazil (Director's Cut)".into(), None));
    }

    #[test]
    fn dates() {
        assert_eq!(year_of_date("01-Jan-1995"), Some(1995));
        assert_eq!(year_of_date("1995-01-01"), Some(1995));
        assert_eq!(year_of_date(""), None);
        assert_eq!(parse_datetime("1970-01-01"), Some(0));
        assert_eq!(parse_datetime("2016-03-09 00:44:42"), Some(1_457_484_282));
        assert_eq!(parse_datetime("2000-02-29T12:00:00"), Some(951_825_600));
        assert_eq!(parse_datetime("2016-13-09"), None);
        assert_eq!(parse_datetime("yesterday"), None);
        assert_eq!(parse_datetime("2016-03-09 25:00:00"), None);
    }

    #[test]
    fn html_and_features() {
        assert_eq!(unescape_html("Salt &amp; Pepper &quot;Mill&quot;"), "Salt & Pepper \"Mill\"");
        let mut features = Vec::new();
        for v in ["Pixar", "pixar", " ", "funny"] {
            push_feature(&mut features, "tag", v);
        }
        assert_eq!(features, [Feature::new("tag", "Pixar"), Feature::new("tag", "funny")]);
    }
}

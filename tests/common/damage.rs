//! Random damage to a file's bytes for the property tests: cuts, overwritten and inserted bytes,
//! deletions, repeated lines, and (for TOML and JSON) a value replaced by a hostile one.

use proptest::prelude::*;
use proptest::sample::Index;

/// What is done to one file.
#[derive(Clone, Debug)]
pub enum Damage {
    /// Cut the file at this point.
    Truncate(Index),
    /// Overwrite one byte.
    Overwrite(Index, u8),
    /// Insert bytes (separators, quotes, digits, newlines, invalid UTF-8, …).
    Insert(Index, Vec<u8>),
    /// Remove up to this many bytes.
    Delete(Index, usize),
    /// Repeat the line holding this point.
    RepeatLine(Index),
    /// Replace the value after one `=` (TOML) or `:` (JSON) up to the end of the value with
    /// another one: non-finite, negative, huge, of the wrong type.
    Value(Index, &'static str),
}

/// Values a hostile or careless user writes where a number, a string or a table belongs.
pub const HOSTILE: [&str; 16] = [
    "nan",
    "NaN",
    "inf",
    "-inf",
    "-1",
    "0",
    "1e30",
    "-1e30",
    "18446744073709551616",
    "4294967296",
    "\"\"",
    "\"x\"",
    "true",
    "null",
    "[]",
    "{}",
];

pub fn damage() -> impl Strategy<Value = Damage> {
    let byte = prop_oneof![
        Just(b'\n'),
        Just(b'\t'),
        Just(b','),
        Just(b':'),
        Just(b'='),
        Just(b'|'),
        Just(b'"'),
        Just(b'{'),
        Just(b'['),
        Just(b'-'),
        Just(b'9'),
        Just(b'.'),
        Just(0xFF),
        Just(0x00),
        any::<u8>(),
    ];
    prop_oneof![
        any::<Index>().prop_map(Damage::Truncate),
        (any::<Index>(), byte.clone()).prop_map(|(i, b)| Damage::Overwrite(i, b)),
        (any::<Index>(), prop::collection::vec(byte, 1..6)).prop_map(|(i, b)| Damage::Insert(i, b)),
        (any::<Index>(), 1usize..40).prop_map(|(i, n)| Damage::Delete(i, n)),
        any::<Index>().prop_map(Damage::RepeatLine),
        (any::<Index>(), prop::sample::select(&HOSTILE[..])).prop_map(|(i, v)| Damage::Value(i, v)),
    ]
}

/// `bytes` with `damage` done to them.
pub fn apply(bytes: &[u8], damage: &Damage) -> Vec<u8> {
    let at = |i: &Index| if bytes.is_empty() { 0 } else { i.index(bytes.len() + 1) };
    let mut out = bytes.to_vec();
    match damage {
        Damage::Truncate(i) => out.truncate(at(i)),
        Damage::Overwrite(i, b) => {
            if let Some(slot) = out.get_mut(at(i)) {
                *slot = *b;
            }
        }
        Damage::Insert(i, new) => {
            let p = at(i);
            out.splice(p..p, new.iter().copied());
        }
        Damage::Delete(i, n) => {
            let p = at(i);
            out.drain(p..(p + n).min(bytes.len()));
        }
        Damage::RepeatLine(i) => {
            let p = at(i).min(bytes.len().saturating_sub(1));
            let start = bytes[..p].iter().rposition(|&b| b == b'\n').map_or(0, |k| k + 1);
            let end = bytes[p..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |k| p + k + 1);
            out.splice(end..end, bytes[start..end].iter().copied());
        }
        Damage::Value(i, value) => {
            let marks: Vec<usize> = bytes
                .iter()
                .enumerate()
                .filter(|(_, &b)| b == b'=' || b == b':')
                .map(|(k, _)| k + 1)
                .collect();
            if marks.is_empty() {
                return out;
            }
            let start = marks[i.index(marks.len())];
            // The value runs to the end of its line, or to the next `,` / `}` of a JSON object.
            let end = bytes[start..]
                .iter()
                .position(|&b| matches!(b, b'\n' | b',' | b'}'))
                .map_or(bytes.len(), |k| start + k);
            out.splice(start..end, format!(" {value}").into_bytes());
        }
    }
    out
}

/// The cases and seed of every property test: CI runs the same cases every time, in seconds.
pub fn config(cases: u32, seed: u64) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases,
        rng_seed: proptest::test_runner::RngSeed::Fixed(seed),
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}

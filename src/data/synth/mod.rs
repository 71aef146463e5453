//! The synthetic demo dataset: a catalogue of invented films, users with latent tastes, interactions
//! sampled from taste and popularity, and a reference explanation for every interaction, a share of
//! them deliberately noisy like an LLM teacher's. Deterministic for a seed. See docs/DEMO_DATA.md.
//! This module holds the settings, the users' tastes and interactions, and the files written;
//! `catalogue` makes the films, `references` the explanations.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use flate2::write::GzEncoder;
use flate2::Compression;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

mod catalogue;
mod references;

use catalogue::{build_catalogue, film_item, Catalogue, Film, Person, GENRES, THEMES};
use references::reference_for;

use super::model::{Dataset, DatasetBuilder, Interaction};

/// How many of the most recent earlier interactions a reference explanation may cite; matches the
/// default `dataset.history_len`, so references only use what an explanation prompt shows.
pub const HISTORY_WINDOW: usize = 50;
/// Every user has at least this many interactions (the paper keeps MovieLens users with ≥ 10).
pub const MIN_USER_INTERACTIONS: usize = 10;

/// Size and randomness of a generated dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthConfig {
    pub users: usize,
    pub items: usize,
    pub interactions: usize,
    /// Share of reference explanations that cite a feature neither the item nor the history has.
    pub noise: f64,
    pub seed: u64,
    /// Whether to write reference explanations at all (benchmarks of rankers skip them).
    pub references: bool,
    /// The random stream the references draw from (the interactions draw from stream 0): another
    /// stream writes other references — other links chosen, other wording — for the same
    /// interactions, to measure how well two references of one pair agree (the best a model
    /// could score against them).
    pub reference_stream: u64,
}

impl Default for SynthConfig {
    fn default() -> SynthConfig {
        SynthConfig {
            users: 1000,
            items: 1500,
            interactions: 50_000,
            noise: 0.15,
            seed: 42,
            references: true,
            reference_stream: 1,
        }
    }
}

impl SynthConfig {
    fn validate(&self) -> Result<()> {
        if self.users == 0 || self.items < 2 * MIN_USER_INTERACTIONS {
            bail!(
                "synthetic dataset needs at least 1 user and {} items (got {} users, {} items)",
                2 * MIN_USER_INTERACTIONS,
                self.users,
                self.items
            );
        }
        let min = self.users * MIN_USER_INTERACTIONS;
        // Each user samples without replacement from at most half the catalogue.
        let max = self.users * (self.items / 2);
        if self.interactions < min || self.interactions > max {
            bail!(
                "--interactions must lie between {min} ({MIN_USER_INTERACTIONS} per user) and {max} (half the \
                 catalogue per user) for {} users and {} items; got {}",
                self.users,
                self.items,
                self.interactions
            );
        }
        if !(0.0..=1.0).contains(&self.noise) {
            bail!("--noise is a share between 0 and 1; got {}", self.noise);
        }
        if self.reference_stream == 0 {
            bail!("--reference-stream 0 is the interactions' own stream; choose 1 (the default) or above");
        }
        Ok(())
    }
}

/// Latent taste of one user: what the generator samples from and references reflect.
struct Taste {
    genre: Vec<f64>,
    theme: Vec<f64>,
    directors: Vec<usize>,
    actors: Vec<usize>,
    era: f64,
    popularity: f64,
}

/// Generates the dataset in memory (as a loader would return it).
pub fn generate(config: &SynthConfig) -> Result<Dataset> {
    config.validate()?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    // References draw from their own stream, so the interactions of a seed stay the same whatever
    // `noise` is and whether references are written at all.
    let mut text_rng = ChaCha8Rng::seed_from_u64(config.seed);
    text_rng.set_stream(config.reference_stream);
    let catalogue = build_catalogue(config.items, &mut rng);
    let mut builder = DatasetBuilder::new("generic-jsonl");
    let item_width = digits(config.items);
    for (idx, film) in catalogue.films.iter().enumerate() {
        builder.set_item(film_item(&catalogue, film, format!("m{:0w$}", idx + 1, w = item_width)));
    }
    let counts = interactions_per_user(config, &mut rng);
    let user_width = digits(config.users);
    let mut utilities = vec![0.0; config.items];
    for (u, &count) in counts.iter().enumerate() {
        let user = builder.intern_user(&format!("u{:0w$}", u + 1, w = user_width));
        let taste = sample_taste(&catalogue, &mut rng);
        for (film, slot) in catalogue.films.iter().zip(utilities.iter_mut()) {
            *slot = affinity(&taste, film) + taste.popularity * film.log_popularity;
        }
        let chosen = sample_without_replacement(&utilities, count, &mut rng);
        let ratings = ratings_for(&catalogue, &taste, &chosen, &mut rng);
        let mut timestamp = 1_420_070_400 + rng.random_range(0..6 * 365 * 86_400_i64);
        for (pos, &film) in chosen.iter().enumerate() {
            // A 10-minute floor keeps timestamps strictly increasing; the gaps are exponential.
            let gap = (-rng.random::<f64>().max(1e-12).ln() * 4.0 * 86_400.0) as i64;
            timestamp += 600 + gap;
            let reference = config.references.then(|| {
                let start = pos.saturating_sub(HISTORY_WINDOW);
                Box::new(reference_for(&catalogue, &chosen[start..pos], film, config.noise, &mut text_rng))
            });
            builder.push_interaction(Interaction {
                user,
                item: film as u32,
                rating: ratings[pos],
                timestamp,
                reference,
            });
        }
    }
    Ok(builder.build())
}

/// Writes `dataset` in the generic JSONL format (docs/DATA_FORMATS.md) into `dir`.
pub fn write(dataset: &Dataset, config: &SynthConfig, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create directory {}", dir.display()))?;

    #[derive(Serialize)]
    struct ItemRow<'a> {
        item: &'a str,
        title: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        year: Option<i32>,
        features: BTreeMap<&'a str, Vec<&'a str>>,
    }
    write_gz_lines(&dir.join("items.jsonl.gz"), dataset.items.iter(), |item| {
        let mut features: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for f in &item.features {
            features.entry(f.kind.as_str()).or_default().push(f.value.as_str());
        }
        ItemRow { item: &item.id, title: &item.title, year: item.year, features }
    })?;

    #[derive(Serialize)]
    struct InteractionRow<'a> {
        user: &'a str,
        item: &'a str,
        rating: f32,
        timestamp: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        reference: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        noisy: Option<bool>,
    }
    write_gz_lines(&dir.join("interactions.jsonl.gz"), dataset.interactions.iter(), |i| InteractionRow {
        user: &dataset.users[i.user as usize],
        item: &dataset.items[i.item as usize].id,
        rating: i.rating,
        timestamp: i.timestamp,
        reference: i.reference.as_ref().map(|r| r.text.as_str()),
        noisy: i.reference.as_ref().map(|r| r.noisy),
    })?;

    let noisy = dataset.interactions.iter().filter(|i| i.reference.as_ref().is_some_and(|r| r.noisy)).count();
    let manifest = serde_json::json!({
        "name": "prism demo (synthetic films)",
        "synthetic": true,
        "description": format!(
            "Synthetic data written by `prism data synth --seed {}{}`: {} invented films, {} users with \
             invented tastes, {} interactions, generated reference explanations of which {} ({:.1}%) \
             deliberately cite a feature that neither the item nor the history has. Not real people, \
             films or opinions; see docs/DEMO_DATA.md.",
            config.seed,
            match config.reference_stream {
                1 => String::new(),
                stream => format!(" --reference-stream {stream}"),
            },
            dataset.items.len(),
            dataset.users.len(),
            dataset.interactions.len(),
            noisy,
            100.0 * noisy as f64 / dataset.interactions.len().max(1) as f64,
        ),
    });
    let path = dir.join("dataset.json");
    std::fs::write(&path, serde_json::to_string_pretty(&manifest)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))
}

fn write_gz_lines<T, R: Serialize>(
    path: &Path,
    rows: impl Iterator<Item = T>,
    f: impl Fn(T) -> R,
) -> Result<()> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    // GzEncoder writes mtime 0 in the header, so the same seed gives byte-identical files.
    let mut out = BufWriter::new(GzEncoder::new(file, Compression::best()));
    for row in rows {
        serde_json::to_writer(&mut out, &f(row))?;
        out.write_all(b"\n")?;
    }
    out.into_inner().map_err(|e| e.into_error())?.finish()?.sync_all()?;
    Ok(())
}

fn digits(n: usize) -> usize {
    n.max(1).to_string().len().max(4)
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box–Muller; rand_distr is not a dependency and one transform is all we need.
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn distinct(n: usize, pool: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    rand::seq::index::sample(rng, pool, n.min(pool)).into_vec()
}

fn weighted_index(weights: &[f64], rng: &mut ChaCha8Rng) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

/// Splits the interaction budget over users: everyone gets the minimum, the rest follows a
/// log-normal activity level (a few heavy users, many light ones), capped at half the catalogue.
fn interactions_per_user(config: &SynthConfig, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let cap = config.items / 2;
    let activity: Vec<f64> = (0..config.users).map(|_| (0.9 * normal(rng)).exp()).collect();
    let mut counts = vec![MIN_USER_INTERACTIONS; config.users];
    let mut left = config.interactions - config.users * MIN_USER_INTERACTIONS;
    while left > 0 {
        let open: Vec<usize> = (0..config.users).filter(|&u| counts[u] < cap).collect();
        let weight: f64 = open.iter().map(|&u| activity[u]).sum();
        let round = left;
        for &u in &open {
            let share =
                ((round as f64 * activity[u] / weight).floor() as usize).min(cap - counts[u]).min(left);
            counts[u] += share;
            left -= share;
        }
        // Floors leave a remainder smaller than the number of open users: hand it out one by one.
        for &u in &open {
            if left == 0 {
                break;
            }
            if counts[u] < cap {
                counts[u] += 1;
                left -= 1;
            }
        }
    }
    counts
}

fn sample_taste(catalogue: &Catalogue, rng: &mut ChaCha8Rng) -> Taste {
    let mut genre: Vec<f64> = (0..GENRES.len()).map(|_| 0.4 * normal(rng) - 0.6).collect();
    let loved_genres = distinct(rng.random_range(2..=3), GENRES.len(), rng);
    for &g in &loved_genres {
        genre[g] = 2.0 + 0.4 * normal(rng);
    }
    let mut theme: Vec<f64> = (0..THEMES.len()).map(|_| 0.3 * normal(rng) - 0.3).collect();
    for t in distinct(rng.random_range(2..=3), THEMES.len(), rng) {
        theme[t] = 1.4 + 0.3 * normal(rng);
    }
    // Favourite people come from the loved genres, as they would for a real viewer.
    let pick_people = |people: &[Person], n: usize, rng: &mut ChaCha8Rng| -> Vec<usize> {
        let pool: Vec<usize> = (0..people.len())
            .filter(|&p| people[p].genres.iter().any(|g| loved_genres.contains(g)))
            .collect();
        let mut chosen: Vec<usize> = pool.choose_multiple(rng, n).copied().collect();
        chosen.sort_unstable();
        chosen
    };
    let directors = pick_people(&catalogue.directors, rng.random_range(1..=3), rng);
    let actors = pick_people(&catalogue.actors, rng.random_range(1..=4), rng);
    Taste {
        genre,
        theme,
        directors,
        actors,
        era: rng.random_range(1965.0..2022.0),
        popularity: rng.random_range(0.3..0.9),
    }
}

/// How much a user likes a film, popularity aside.
fn affinity(taste: &Taste, film: &Film) -> f64 {
    let genre = film.genres.iter().map(|&g| taste.genre[g]).sum::<f64>() / (film.genres.len() as f64).sqrt();
    let theme = film.themes.iter().map(|&t| taste.theme[t]).sum::<f64>();
    let director = if taste.directors.contains(&film.director) { 1.5 } else { 0.0 };
    let actors = film.actors.iter().filter(|a| taste.actors.contains(a)).count() as f64;
    let era = -0.5 * ((film.year as f64 - taste.era) / 25.0).powi(2);
    genre + theme + director + actors + era
}

/// Plackett–Luce sampling of `n` distinct films via the Gumbel-top-n trick, returned in a random
/// watching order (the order carries no signal, so every held-out item is as predictable).
fn sample_without_replacement(utilities: &[f64], n: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut keyed: Vec<(f64, usize)> = utilities
        .iter()
        .enumerate()
        .map(|(i, &u)| (u - (-rng.random::<f64>().max(1e-300).ln()).ln(), i))
        .collect();
    keyed.select_nth_unstable_by(n - 1, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut chosen: Vec<usize> = keyed[..n].iter().map(|&(_, i)| i).collect();
    chosen.sort_unstable();
    chosen.shuffle(rng);
    chosen
}

/// Half-star ratings from the user's relative affinity for each film they watched.
fn ratings_for(catalogue: &Catalogue, taste: &Taste, chosen: &[usize], rng: &mut ChaCha8Rng) -> Vec<f32> {
    let scores: Vec<f64> = chosen.iter().map(|&f| affinity(taste, &catalogue.films[f])).collect();
    let mean = scores.iter().sum::<f64>() / scores.len() as f64;
    let sd = (scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / scores.len() as f64).sqrt().max(1e-6);
    scores
        .iter()
        .map(|s| {
            let raw = 3.6 + 0.8 * (s - mean) / sd + 0.5 * normal(rng);
            ((raw * 2.0).round() / 2.0).clamp(0.5, 5.0) as f32
        })
        .collect()
}

/// Counts per feature kind of a generated dataset; used by tests and the `synth` summary.
pub fn feature_vocabulary(dataset: &Dataset) -> HashMap<String, usize> {
    let mut kinds: HashMap<String, HashSet<&str>> = HashMap::new();
    for item in &dataset.items {
        for f in &item.features {
            kinds.entry(f.kind.clone()).or_default().insert(&f.value);
        }
    }
    kinds.into_iter().map(|(k, v)| (k, v.len())).collect()
}

#[cfg(test)]
mod tests {
    use super::catalogue::FIRST_NAMES;
    use super::references::{genre_word, tidy};
    use super::*;
    use crate::data::model::Item;

    fn small(seed: u64) -> SynthConfig {
        SynthConfig { users: 60, items: 200, interactions: 1500, seed, ..SynthConfig::default() }
    }

    #[test]
    fn sizes_and_minimum_history_hold() {
        let d = generate(&small(1)).unwrap();
        assert_eq!(d.num_users(), 60);
        assert_eq!(d.num_items(), 200);
        assert_eq!(d.interactions.len(), 1500);
        assert!(d.user_ranges.iter().all(|r| r.len() >= MIN_USER_INTERACTIONS));
    }

    #[test]
    fn same_seed_same_data_other_seed_other_data() {
        let a = generate(&small(7)).unwrap();
        let b = generate(&small(7)).unwrap();
        let c = generate(&small(8)).unwrap();
        assert_eq!(a.items, b.items);
        assert_eq!(a.interactions, b.interactions);
        assert_ne!(a.items, c.items);
    }

    #[test]
    fn interactions_do_not_depend_on_references_or_noise() {
        let strip = |d: Dataset| -> Vec<(u32, u32, f32, i64)> {
            d.interactions.iter().map(|i| (i.user, i.item, i.rating, i.timestamp)).collect()
        };
        let base = strip(generate(&small(2)).unwrap());
        assert_eq!(base, strip(generate(&SynthConfig { references: false, ..small(2) }).unwrap()));
        assert_eq!(base, strip(generate(&SynthConfig { noise: 0.0, ..small(2) }).unwrap()));
        assert_eq!(base, strip(generate(&SynthConfig { reference_stream: 2, ..small(2) }).unwrap()));
    }

    #[test]
    fn another_reference_stream_writes_other_references_for_the_same_pairs() {
        let texts = |d: Dataset| -> Vec<String> {
            d.interactions.iter().map(|i| i.reference.as_ref().unwrap().text.clone()).collect()
        };
        let base = texts(generate(&small(3)).unwrap());
        assert_eq!(base, texts(generate(&small(3)).unwrap()));
        let other = texts(generate(&SynthConfig { reference_stream: 2, ..small(3) }).unwrap());
        let same = base.iter().zip(&other).filter(|(a, b)| a == b).count();
        assert!(same * 4 < base.len(), "{same} of {} references unchanged", base.len());
        let err = generate(&SynthConfig { reference_stream: 0, ..small(3) }).unwrap_err().to_string();
        assert!(err.contains("--reference-stream"), "{err}");
    }

    #[test]
    fn timestamps_increase_and_items_do_not_repeat_per_user() {
        let d = generate(&small(3)).unwrap();
        for u in 0..d.num_users() as u32 {
            let rows = d.user_interactions(u);
            assert!(rows.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
            let distinct: HashSet<u32> = rows.iter().map(|i| i.item).collect();
            assert_eq!(distinct.len(), rows.len());
            assert!(rows.iter().all(|i| (0.5..=5.0).contains(&i.rating) && (i.rating * 2.0).fract() == 0.0));
        }
    }

    #[test]
    fn titles_are_unique_and_items_have_every_feature_kind() {
        let d = generate(&SynthConfig { items: 1500, users: 30, interactions: 300, ..small(4) }).unwrap();
        let titles: HashSet<&str> = d.items.iter().map(|i| i.title.as_str()).collect();
        assert_eq!(titles.len(), d.items.len());
        let vocab = feature_vocabulary(&d);
        for kind in ["genre", "director", "actor", "theme"] {
            assert!(vocab[kind] > 5, "{kind}: {vocab:?}");
        }
    }

    /// Person names in `text`: a known first name followed by a capitalised word.
    fn names_in(text: &str) -> Vec<String> {
        let words: Vec<&str> = text.split(|c: char| !c.is_alphanumeric() && c != '\'' && c != '-').collect();
        words
            .windows(2)
            .filter(|w| FIRST_NAMES.contains(&w[0]) && w[1].starts_with(char::is_uppercase))
            .map(|w| format!("{} {}", w[0], w[1].trim_end_matches("'s")))
            .collect()
    }

    /// Genre words in `text`, after removing titles, names and themes (which share words like "war").
    fn genres_in(text: &str, d: &Dataset) -> Vec<&'static str> {
        let mut rest = text.to_owned();
        for item in &d.items {
            rest = rest.replace(&item.title, " ");
        }
        for theme in THEMES {
            rest = rest.replace(theme, " ");
        }
        let words: Vec<String> = rest.split(|c: char| !c.is_alphanumeric()).map(str::to_lowercase).collect();
        let joined = format!(" {} ", words.join(" "));
        GENRES.iter().copied().filter(|g| joined.contains(&format!(" {} ", genre_word(g)))).collect()
    }

    /// The contract of a faithful reference: every title, person and genre it names is in the
    /// history window or the item itself. Noisy ones must name something from neither.
    #[test]
    fn clean_references_cite_only_history_and_item_noisy_ones_do_not() {
        let d = generate(&SynthConfig { noise: 0.3, ..small(5) }).unwrap();
        let (mut clean, mut noisy) = (0, 0);
        for u in 0..d.num_users() as u32 {
            let rows = d.user_interactions(u);
            for (pos, row) in rows.iter().enumerate() {
                let reference = row.reference.as_ref().unwrap();
                let window = &rows[pos.saturating_sub(HISTORY_WINDOW)..pos];
                let allowed: Vec<&Item> =
                    window.iter().map(|i| d.item(i.item)).chain(std::iter::once(d.item(row.item))).collect();
                let has_value = |v: &str| allowed.iter().any(|i| i.features.iter().any(|f| f.value == v));
                let foreign_title = d.items.iter().any(|i| {
                    reference.text.contains(&i.title) && !allowed.iter().any(|a| a.title.contains(&i.title))
                });
                let foreign_name = names_in(&reference.text).iter().any(|n| !has_value(n));
                let foreign_genre = genres_in(&reference.text, &d).iter().any(|g| !has_value(g));
                let foreign = foreign_title || foreign_name || foreign_genre;
                assert_eq!(foreign, reference.noisy, "{}", reference.text);
                if reference.noisy {
                    noisy += 1;
                } else {
                    clean += 1;
                }
            }
        }
        let share = noisy as f64 / (clean + noisy) as f64;
        assert!((0.22..0.38).contains(&share), "noisy share {share}");
    }

    #[test]
    fn articles_agree_and_sentences_start_with_a_capital() {
        assert_eq!(
            tidy("a adventure film, a Oskar film. a epic and a drama. drama keeps"),
            "An adventure film, an Oskar film. An epic and a drama. Drama keeps"
        );
    }

    #[test]
    fn references_vary() {
        let d = generate(&small(6)).unwrap();
        let texts: HashSet<&str> =
            d.interactions.iter().map(|i| i.reference.as_ref().unwrap().text.as_str()).collect();
        assert!(texts.len() as f64 > 0.95 * d.interactions.len() as f64);
    }

    #[test]
    fn impossible_sizes_are_refused_with_the_option_named() {
        let err = generate(&SynthConfig { interactions: 10, ..small(1) }).unwrap_err().to_string();
        assert!(err.contains("--interactions"), "{err}");
        let err = generate(&SynthConfig { noise: 1.5, ..small(1) }).unwrap_err().to_string();
        assert!(err.contains("--noise"), "{err}");
    }

    #[test]
    fn written_files_are_deterministic_and_parse() {
        let config = small(9);
        let d = generate(&config).unwrap();
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write(&d, &config, a.path()).unwrap();
        write(&generate(&config).unwrap(), &config, b.path()).unwrap();
        for name in ["items.jsonl.gz", "interactions.jsonl.gz", "dataset.json"] {
            assert_eq!(
                std::fs::read(a.path().join(name)).unwrap(),
                std::fs::read(b.path().join(name)).unwrap()
            );
        }
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(a.path().join("dataset.json")).unwrap()).unwrap();
        assert_eq!(manifest["synthetic"], true);
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(File::open(a.path().join("interactions.jsonl.gz")).unwrap()),
            &mut text,
        )
        .unwrap();
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        for key in ["user", "item", "rating", "timestamp", "reference", "noisy"] {
            assert!(first.get(key).is_some(), "{key} missing in {first}");
        }
        assert_eq!(text.lines().count(), 1500);
    }
}

//! The synthetic demo dataset: a catalogue of invented films, users with latent tastes, interactions
//! sampled from taste and popularity, and a reference explanation for every interaction, a share of
//! them deliberately noisy like an LLM teacher's. Deterministic for a seed. See docs/DEMO_DATA.md.

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

use super::model::{Dataset, DatasetBuilder, Feature, Interaction, Item, Reference};

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
        Ok(())
    }
}

const GENRES: &[&str] = &[
    "Drama",
    "Comedy",
    "Thriller",
    "Mystery",
    "Romance",
    "Science Fiction",
    "Fantasy",
    "Horror",
    "Western",
    "Animation",
    "Crime",
    "War",
    "Musical",
    "Adventure",
    "Family",
    "Noir",
];

const THEMES: &[&str] = &[
    "grief",
    "revenge",
    "first love",
    "coming of age",
    "redemption",
    "betrayal",
    "survival",
    "family secrets",
    "obsession",
    "exile",
    "ambition",
    "friendship",
    "identity",
    "memory",
    "justice",
    "isolation",
    "forbidden love",
    "rebellion",
    "homecoming",
    "loyalty",
    "greed",
    "faith",
    "artificial intelligence",
    "time travel",
    "small-town life",
    "life at sea",
    "war trauma",
    "class conflict",
    "a heist",
    "a haunting",
];

const FIRST_NAMES: &[&str] = &[
    "Ines", "Tomas", "Mara", "Elio", "Sanne", "Oren", "Lidia", "Caspar", "Nadia", "Joren", "Alba", "Felix",
    "Runa", "Matteo", "Ilse", "Bruno", "Selma", "Anton", "Vera", "Emil", "Noor", "Hugo", "Lena", "Dario",
    "Freya", "Jonas", "Clara", "Milo", "Ada", "Rafael", "Greta", "Leon", "Yara", "Oskar", "Livia", "Teo",
    "Maren", "Sami", "Edda", "Niko", "Paula", "Viktor", "Aurelie", "Idris", "Katja", "Luca", "Mina", "Soren",
];

const SURNAME_HEADS: &[&str] = &[
    "Val", "Bre", "Mor", "Kas", "Lin", "Dre", "Hal", "Ost", "Ren", "Sol", "Tav", "Vel", "Wen", "Cor", "Fen",
    "Gar", "Lov", "Mar", "Nor", "Pel", "Ash", "Bel", "Dun", "Eck", "Har", "Kel",
];

const SURNAME_TAILS: &[&str] = &[
    "dar", "ein", "ova", "strom", "ek", "ani", "ford", "wick", "ley", "mont", "ez", "ski", "ard", "ell",
    "ow", "ine", "berg", "asco", "ith", "orne", "ane", "isse",
];

const TITLE_ADJECTIVES: &[&str] = &[
    "Glass",
    "Silent",
    "Crimson",
    "Hollow",
    "Last",
    "Burning",
    "Quiet",
    "Distant",
    "Broken",
    "Golden",
    "Northern",
    "Restless",
    "Velvet",
    "Iron",
    "Paper",
    "Wandering",
    "Forgotten",
    "Bitter",
    "Endless",
    "Silver",
    "Midnight",
    "Frozen",
    "Secret",
    "Sleeping",
    "Painted",
    "Lonely",
    "Wild",
    "Hidden",
    "Electric",
    "Southern",
];

const TITLE_NOUNS: &[&str] = &[
    "Harbor",
    "Lantern",
    "Orchard",
    "River",
    "Winter",
    "Mirror",
    "Garden",
    "Signal",
    "Kingdom",
    "Shadow",
    "Compass",
    "Tide",
    "Ember",
    "Horizon",
    "Letter",
    "Station",
    "Frontier",
    "Meadow",
    "Island",
    "Tower",
    "Circus",
    "Engine",
    "Hollow",
    "Crown",
    "Storm",
    "Bridge",
    "Valley",
    "Silence",
    "Echo",
    "Archive",
    "Citadel",
    "Lighthouse",
    "Vineyard",
    "Canyon",
    "Ballad",
    "Promise",
    "Passage",
    "Orbit",
    "Tunnel",
    "Fortress",
];

const TITLE_PREPOSITIONS: &[&str] = &["Before", "After", "Beyond", "Under", "Across", "Beneath"];

/// A person of the catalogue: a director or an actor, with the genres and themes they gravitate to.
struct Person {
    name: String,
    genres: Vec<usize>,
    themes: Vec<usize>,
    first_year: i32,
    last_year: i32,
}

/// One film in structured form; [`Item`] is its flattened view.
struct Film {
    title: String,
    year: i32,
    genres: Vec<usize>,
    themes: Vec<usize>,
    director: usize,
    actors: Vec<usize>,
    log_popularity: f64,
}

struct Catalogue {
    directors: Vec<Person>,
    actors: Vec<Person>,
    films: Vec<Film>,
    /// Names generated like the catalogue's but used by nobody in it: what noisy references cite.
    phantom_names: Vec<String>,
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
    text_rng.set_stream(1);
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
            "Synthetic data written by `prism data synth --seed {}`: {} invented films, {} users with \
             invented tastes, {} interactions, generated reference explanations of which {} ({:.1}%) \
             deliberately cite a feature that neither the item nor the history has. Not real people, \
             films or opinions; see docs/DEMO_DATA.md.",
            config.seed,
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

fn person_name(rng: &mut ChaCha8Rng, taken: &mut HashSet<String>) -> String {
    loop {
        let first = FIRST_NAMES.choose(rng).expect("non-empty list");
        let head = SURNAME_HEADS.choose(rng).expect("non-empty list");
        let tail = SURNAME_TAILS.choose(rng).expect("non-empty list");
        let name = format!("{first} {head}{tail}");
        if taken.insert(name.clone()) {
            return name;
        }
    }
}

fn people(
    n: usize,
    rng: &mut ChaCha8Rng,
    taken: &mut HashSet<String>,
    min_len: i32,
    max_len: i32,
) -> Vec<Person> {
    (0..n)
        .map(|_| {
            let first_year = rng.random_range(1955..2016);
            Person {
                name: person_name(rng, taken),
                genres: distinct(rng.random_range(1..=2), GENRES.len(), rng),
                themes: distinct(rng.random_range(1..=2), THEMES.len(), rng),
                first_year,
                last_year: (first_year + rng.random_range(min_len..=max_len)).min(2025),
            }
        })
        .collect()
}

fn film_title(rng: &mut ChaCha8Rng, taken: &mut HashSet<String>, people: &[Person]) -> String {
    for _ in 0..20 {
        let adj = TITLE_ADJECTIVES.choose(rng).expect("non-empty list");
        let noun = TITLE_NOUNS.choose(rng).expect("non-empty list");
        let other = TITLE_NOUNS.choose(rng).expect("non-empty list");
        let title = match rng.random_range(0..8) {
            0 | 1 => format!("The {adj} {noun}"),
            2 => format!("{adj} {noun}"),
            3 if noun != other => format!("The {noun} of {other}"),
            4 => format!("{} the {noun}", TITLE_PREPOSITIONS.choose(rng).expect("non-empty list")),
            5 => {
                let first = people.choose(rng).map_or("Ada", |p| p.name.split(' ').next().unwrap_or("Ada"));
                format!("{first}'s {noun}")
            }
            6 if noun != other => format!("{noun} and {other}"),
            _ => format!("The {noun}"),
        };
        if taken.insert(title.clone()) {
            return title;
        }
    }
    // A crowded title space reads as a franchise: number the sequels.
    let base = format!("The {} {}", TITLE_ADJECTIVES.choose(rng).unwrap(), TITLE_NOUNS.choose(rng).unwrap());
    (2..)
        .map(|n| format!("{base} {}", roman(n)))
        .find(|t| taken.insert(t.clone()))
        .expect("an unbounded range always finds a free title")
}

fn roman(mut n: usize) -> String {
    let table = [(1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC")];
    let tail = [(50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")];
    let mut out = String::new();
    for (value, symbol) in table.iter().chain(tail.iter()) {
        while n >= *value {
            out.push_str(symbol);
            n -= value;
        }
    }
    out
}

fn build_catalogue(items: usize, rng: &mut ChaCha8Rng) -> Catalogue {
    let mut names = HashSet::new();
    let directors = people((items / 10).max(12), rng, &mut names, 8, 40);
    let actors = people((items / 4).max(30), rng, &mut names, 10, 45);
    let phantom_names = (0..40).map(|_| person_name(rng, &mut names)).collect();
    // Some directors are prolific: pick them with Zipf-like weights.
    let director_weights: Vec<f64> = (0..directors.len()).map(|d| 1.0 / (1.0 + d as f64).powf(0.6)).collect();
    let mut by_genre: Vec<Vec<usize>> = vec![Vec::new(); GENRES.len()];
    for (a, actor) in actors.iter().enumerate() {
        for &g in &actor.genres {
            by_genre[g].push(a);
        }
    }
    let mut titles = HashSet::new();
    let films = (0..items)
        .map(|_| {
            let director = weighted_index(&director_weights, rng);
            let d = &directors[director];
            let mut genres = vec![*d.genres.choose(rng).expect("directors have genres")];
            for _ in 0..rng.random_range(0..=2) {
                let g = if rng.random_bool(0.5) {
                    *d.genres.choose(rng).expect("directors have genres")
                } else {
                    rng.random_range(0..GENRES.len())
                };
                if !genres.contains(&g) {
                    genres.push(g);
                }
            }
            let mut themes = vec![if rng.random_bool(0.6) {
                *d.themes.choose(rng).expect("directors have themes")
            } else {
                rng.random_range(0..THEMES.len())
            }];
            if rng.random_bool(0.4) {
                let t = rng.random_range(0..THEMES.len());
                if !themes.contains(&t) {
                    themes.push(t);
                }
            }
            let mut cast = Vec::new();
            while cast.len() < rng.random_range(2..=3) {
                let pool = &by_genre[*genres.choose(rng).expect("films have genres")];
                let a = match pool.choose(rng) {
                    Some(&a) if rng.random_bool(0.75) => a,
                    _ => rng.random_range(0..actors.len()),
                };
                if !cast.contains(&a) {
                    cast.push(a);
                }
            }
            let year = rng.random_range(d.first_year..=d.last_year.max(d.first_year));
            Film {
                title: film_title(rng, &mut titles, &directors),
                year,
                genres,
                themes,
                director,
                actors: cast,
                log_popularity: 1.2 * normal(rng),
            }
        })
        .collect();
    Catalogue { directors, actors, films, phantom_names }
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

fn film_item(catalogue: &Catalogue, film: &Film, id: String) -> Item {
    let mut features: Vec<Feature> = film.genres.iter().map(|&g| Feature::new("genre", GENRES[g])).collect();
    features.push(Feature::new("director", &catalogue.directors[film.director].name));
    features.extend(film.actors.iter().map(|&a| Feature::new("actor", &catalogue.actors[a].name)));
    features.extend(film.themes.iter().map(|&t| Feature::new("theme", THEMES[t])));
    Item { id, title: film.title.clone(), year: Some(film.year), features }
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

/// A pattern of the history that the item continues: what a faithful explanation cites.
#[derive(Clone, Debug)]
enum Link {
    Director { name: String, titles: Vec<String> },
    Actor { name: String, titles: Vec<String> },
    Genre { genre: String, count: usize, example: String },
    Theme { theme: String, count: usize, example: String },
}

/// Genre names as they read inside a sentence.
fn genre_word(genre: &str) -> String {
    if genre == "Science Fiction" {
        "science fiction".to_owned()
    } else {
        genre.to_lowercase()
    }
}

fn links(catalogue: &Catalogue, history: &[usize], film: &Film) -> Vec<Link> {
    let titles_where = |pred: &dyn Fn(&Film) -> bool| -> Vec<String> {
        let mut titles: Vec<String> = Vec::new();
        for &h in history.iter().rev() {
            let f = &catalogue.films[h];
            if pred(f) && !titles.contains(&f.title) {
                titles.push(f.title.clone());
            }
        }
        titles
    };
    let mut out = Vec::new();
    let titles = titles_where(&|f| f.director == film.director);
    if !titles.is_empty() {
        out.push(Link::Director { name: catalogue.directors[film.director].name.clone(), titles });
    }
    for &a in &film.actors {
        let titles = titles_where(&|f| f.actors.contains(&a));
        if !titles.is_empty() {
            out.push(Link::Actor { name: catalogue.actors[a].name.clone(), titles });
        }
    }
    for &t in &film.themes {
        let titles = titles_where(&|f| f.themes.contains(&t));
        if !titles.is_empty() {
            out.push(Link::Theme {
                theme: THEMES[t].to_owned(),
                count: titles.len(),
                example: titles[0].clone(),
            });
        }
    }
    for &g in &film.genres {
        let titles = titles_where(&|f| f.genres.contains(&g));
        if !titles.is_empty() {
            out.push(Link::Genre {
                genre: GENRES[g].to_owned(),
                count: titles.len(),
                example: titles[0].clone(),
            });
        }
    }
    out
}

fn pick<'a>(rng: &mut ChaCha8Rng, options: &[&'a str]) -> &'a str {
    options.choose(rng).expect("non-empty template list")
}

/// Fills `{t}` (the recommended title), `{n}` (a name), `{h}` / `{h2}` (history titles),
/// `{g}` (a genre), `{m}` (a theme) and `{c}` (a count) in a template.
fn fill(template: &str, slots: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (key, value) in slots {
        out = out.replace(key, value);
    }
    out
}

/// Fixes what filling templates breaks: "a" before a vowel ("a adventure film", "a Oskar Morith
/// film") becomes "an", and a sentence starting with a lower-case genre gets its capital.
fn tidy(text: &str) -> String {
    let words: Vec<&str> = text.split(' ').collect();
    let mut out = String::with_capacity(text.len() + 4);
    for (n, word) in words.iter().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        let next_vowel =
            words.get(n + 1).and_then(|w| w.chars().next()).is_some_and(|c| "aeiouAEIOU".contains(c));
        let word = match *word {
            "a" | "A" if next_vowel => format!("{word}n"),
            w => w.to_owned(),
        };
        if n == 0 || words[n - 1].ends_with('.') {
            let mut chars = word.chars();
            out.extend(chars.next().map(|c| c.to_ascii_uppercase()));
            out.push_str(chars.as_str());
        } else {
            out.push_str(&word);
        }
    }
    out
}

fn count_word(n: usize) -> String {
    const WORDS: &[&str] = &["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];
    WORDS.get(n).map_or_else(|| "many".to_owned(), |w| (*w).to_owned())
}

/// One sentence stating `link` as the reason `title` fits the history.
fn sentence(link: &Link, title: &str, rng: &mut ChaCha8Rng) -> String {
    match link {
        // "{h} as well as {h2}", never "{h} and {h2}": titles like "Crown and Station" would run together.
        Link::Director { name, titles } if titles.len() >= 2 => fill(
            pick(
                rng,
                &[
                    "You have already watched {h} as well as {h2} by {n}, and {t} is another film from the same director.",
                    "{n} directed {h} as well as {h2}, both in your history, and also made {t}.",
                    "Since you keep returning to {n}'s work, from {h} to {h2}, {t} is a natural next step.",
                ],
            ),
            &[("{t}", title), ("{n}", name), ("{h2}", &titles[1]), ("{h}", &titles[0])],
        ),
        Link::Director { name, titles } => fill(
            pick(
                rng,
                &[
                    "{t} is directed by {n}, who also made {h}, which you watched.",
                    "You enjoyed {h}, and {t} comes from the same director, {n}.",
                    "Like {h}, {t} is a {n} film.",
                    "Because {h} is in your history, {n}'s direction in {t} should feel familiar.",
                ],
            ),
            &[("{t}", title), ("{n}", name), ("{h}", &titles[0])],
        ),
        Link::Actor { name, titles } => fill(
            pick(
                rng,
                &[
                    "{n}, whom you saw in {h}, plays a lead role in {t}.",
                    "{t} stars {n}, who also led {h}.",
                    "You have watched {n} in {h}, and here they take the lead again.",
                    "If you liked {n}'s performance in {h}, {t} gives them another central role.",
                ],
            ),
            &[("{t}", title), ("{n}", name), ("{h}", &titles[0])],
        ),
        Link::Genre { genre, count, example } if *count >= 2 => fill(
            pick(
                rng,
                &[
                    "Your history leans toward {g}, with {c} titles such as {h}, and {t} is another {g} film.",
                    "{g} keeps coming up in what you watch, {h} among them, and {t} fits that pattern.",
                    "After {c} {g} films, including {h}, {t} continues in the same genre.",
                    "{t} is a {g} film, a genre you return to often, most recently with {h}.",
                ],
            ),
            &[("{t}", title), ("{g}", &genre_word(genre)), ("{c}", &count_word(*count)), ("{h}", example)],
        ),
        Link::Genre { genre, example, .. } => fill(
            pick(
                rng,
                &[
                    "Like {h}, which you watched, {t} is a {g} film.",
                    "You gave {g} a try with {h}, and {t} is another one.",
                ],
            ),
            &[("{t}", title), ("{g}", &genre_word(genre)), ("{h}", example)],
        ),
        Link::Theme { theme, count, example } if *count >= 2 => fill(
            pick(
                rng,
                &[
                    "Stories about {m} recur in your history, as in {h}, and {t} is built around {m} too.",
                    "{t} explores {m}, a theme you have followed across {c} films, including {h}.",
                    "Like {h}, {t} deals with {m}, which your viewing keeps coming back to.",
                ],
            ),
            &[("{t}", title), ("{m}", theme), ("{c}", &count_word(*count)), ("{h}", example)],
        ),
        Link::Theme { theme, example, .. } => fill(
            pick(
                rng,
                &["{t} shares its theme of {m} with {h}, from your history.", "As in {h}, {m} is at the heart of {t}."],
            ),
            &[("{t}", title), ("{m}", theme), ("{h}", example)],
        ),
    }
}

/// A second sentence that adds a further link without repeating the title.
fn follow_up(link: &Link, rng: &mut ChaCha8Rng) -> String {
    match link {
        Link::Director { name, titles } => fill(
            pick(
                rng,
                &[
                    "It is also directed by {n}, as was {h}.",
                    "On top of that, {n}, who made {h}, directs it.",
                ],
            ),
            &[("{n}", name), ("{h}", &titles[0])],
        ),
        Link::Actor { name, titles } => fill(
            pick(
                rng,
                &["It also stars {n}, whom you saw in {h}.", "{n}, from {h}, is in the lead cast as well."],
            ),
            &[("{n}", name), ("{h}", &titles[0])],
        ),
        Link::Genre { genre, example, .. } => fill(
            pick(rng, &["It is also {g}, like {h}.", "And as with {h}, the genre is {g}."]),
            &[("{g}", &genre_word(genre)), ("{h}", example)],
        ),
        Link::Theme { theme, example, .. } => fill(
            pick(rng, &["Its theme of {m} echoes {h}.", "It also turns on {m}, much like {h}."]),
            &[("{m}", theme), ("{h}", example)],
        ),
    }
}

/// What an explanation says when the history has nothing to link to: only the item's own features,
/// and no claim about the history beyond its being short or elsewhere.
fn cold_start(catalogue: &Catalogue, film: &Film, history_len: usize, rng: &mut ChaCha8Rng) -> String {
    let templates: &[&str] = if history_len == 0 {
        &[
            "{t} is a {g} film by {n} about {m}, a good place to start.",
            "With no history to go on yet, {t}, a {g} film about {m}, is a well-liked first pick.",
            "{t}, directed by {n}, opens your viewing with {g} and a story of {m}.",
        ]
    } else {
        &[
            "{t} takes you somewhere new: a {g} film by {n} about {m}.",
            "Nothing you have watched resembles {t} yet, so this {g} film about {m} broadens your mix.",
            "As a change from your usual picks, {t} offers {g} and a story of {m}, directed by {n}.",
        ]
    };
    fill(
        pick(rng, templates),
        &[
            ("{t}", &film.title),
            ("{g}", &genre_word(GENRES[film.genres[0]])),
            ("{n}", &catalogue.directors[film.director].name),
            ("{m}", THEMES[film.themes[0]]),
        ],
    )
}

/// A sentence citing something neither the item nor the history has, the way a teacher LLM
/// hallucinates; `None` when the catalogue leaves no such feature (then the reference stays clean).
fn invented(catalogue: &Catalogue, history: &[usize], film: &Film, rng: &mut ChaCha8Rng) -> Option<String> {
    let title = film.title.as_str();
    let in_history = |pred: &dyn Fn(&Film) -> bool| history.iter().any(|&h| pred(&catalogue.films[h]));
    for _ in 0..4 {
        match rng.random_range(0..4) {
            0 => {
                let name = catalogue.phantom_names.choose(rng)?;
                return Some(fill(
                    pick(
                        rng,
                        &[
                            "{t} is directed by {n}, whose films you have watched before.",
                            "As a {n} film, {t} matches the direction you keep choosing.",
                        ],
                    ),
                    &[("{t}", title), ("{n}", name)],
                ));
            }
            1 => {
                let wrong: Vec<usize> = (0..GENRES.len())
                    .filter(|g| !film.genres.contains(g) && !in_history(&|f| f.genres.contains(g)))
                    .collect();
                let Some(&g) = wrong.choose(rng) else { continue };
                return Some(fill(
                    pick(
                        rng,
                        &[
                            "{t} is a {g} film, a genre you clearly love.",
                            "Your taste for {g} makes {t} an easy choice.",
                        ],
                    ),
                    &[("{t}", title), ("{g}", &genre_word(GENRES[g]))],
                ));
            }
            2 => {
                // A title that is neither seen nor a part of a seen title (so it cannot pass as one).
                let seen: Vec<&str> =
                    history.iter().map(|&h| catalogue.films[h].title.as_str()).chain([title]).collect();
                let phantom = (0..20)
                    .filter_map(|_| catalogue.films.choose(rng))
                    .find(|f| !seen.iter().any(|s| s.contains(&f.title) || f.title.contains(s)));
                let Some(phantom) = phantom else { continue };
                return Some(fill(
                    pick(
                        rng,
                        &[
                            "Since you enjoyed {h}, {t} should appeal to you as well.",
                            "You liked {h}, and {t} follows in its footsteps.",
                        ],
                    ),
                    &[("{t}", title), ("{h}", &phantom.title)],
                ));
            }
            _ => {
                let actor = (0..20)
                    .map(|_| rng.random_range(0..catalogue.actors.len()))
                    .find(|a| !film.actors.contains(a) && !in_history(&|f| f.actors.contains(a)))
                    .map(|a| &catalogue.actors[a]);
                let Some(actor) = actor else { continue };
                return Some(fill(
                    pick(
                        rng,
                        &[
                            "{t} stars {n}, an actor you have followed closely.",
                            "{n} leads the cast of {t}, just as in the films you rated highly.",
                        ],
                    ),
                    &[("{t}", title), ("{n}", &actor.name)],
                ));
            }
        }
    }
    None
}

fn reference_for(
    catalogue: &Catalogue,
    history: &[usize],
    film_idx: usize,
    noise: f64,
    rng: &mut ChaCha8Rng,
) -> Reference {
    let film = &catalogue.films[film_idx];
    let mut found = links(catalogue, history, film);
    // Specific links (a person) make better explanations than broad ones (a genre): weight them up.
    let weight = |l: &Link| match l {
        Link::Director { .. } => 4.0,
        Link::Actor { .. } => 3.0,
        Link::Theme { .. } => 2.0,
        Link::Genre { .. } => 1.0,
    };
    let mut chosen = Vec::new();
    for _ in 0..rng.random_range(1..=2) {
        if found.is_empty() {
            break;
        }
        let weights: Vec<f64> = found.iter().map(weight).collect();
        chosen.push(found.swap_remove(weighted_index(&weights, rng)));
    }
    let faithful = match chosen.as_slice() {
        [] => cold_start(catalogue, film, history.len(), rng),
        [one] => sentence(one, &film.title, rng),
        [first, second, ..] => format!("{} {}", sentence(first, &film.title, rng), follow_up(second, rng)),
    };
    if rng.random_bool(noise) {
        if let Some(invented) = invented(catalogue, history, film, rng) {
            // Teacher hallucinations usually ride along with a true statement.
            let text = match chosen.first() {
                Some(link) if rng.random_bool(0.5) => {
                    format!("{} {}", sentence(link, &film.title, rng), invented)
                }
                _ => invented,
            };
            return Reference { text: tidy(&text), noisy: true };
        }
    }
    Reference { text: tidy(&faithful), noisy: false }
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
    use super::*;

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

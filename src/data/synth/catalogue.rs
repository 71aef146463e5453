//! The demo's invented film catalogue: the word lists, people (directors and actors with the
//! genres and themes they gravitate to, and their working years), titles, and the films made
//! from them, each with a popularity, flattened into the dataset's [`Item`]s.

use std::collections::HashSet;

use rand::seq::IndexedRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{distinct, normal, weighted_index};
use crate::data::model::{Feature, Item};

pub const GENRES: &[&str] = &[
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

pub const THEMES: &[&str] = &[
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

pub const FIRST_NAMES: &[&str] = &[
    "Ines", "Tomas", "Mara", "Elio", "Sanne", "Oren", "Lidia", "Caspar", "Nadia", "Joren", "Alba", "Felix",
    "Runa", "Matteo", "Ilse", "Bruno", "Selma", "Anton", "Vera", "Emil", "Noor", "Hugo", "Lena", "Dario",
    "Freya", "Jonas", "Clara", "Milo", "Ada", "Rafael", "Greta", "Leon", "Yara", "Oskar", "Livia", "Teo",
    "Maren", "Sami", "Edda", "Niko", "Paula", "Viktor", "Aurelie", "Idris", "Katja", "Luca", "Mina", "Soren",
];

pub const SURNAME_HEADS: &[&str] = &[
    "Val", "Bre", "Mor", "Kas", "Lin", "Dre", "Hal", "Ost", "Ren", "Sol", "Tav", "Vel", "Wen", "Cor", "Fen",
    "Gar", "Lov", "Mar", "Nor", "Pel", "Ash", "Bel", "Dun", "Eck", "Har", "Kel",
];

pub const SURNAME_TAILS: &[&str] = &[
    "dar", "ein", "ova", "strom", "ek", "ani", "ford", "wick", "ley", "mont", "ez", "ski", "ard", "ell",
    "ow", "ine", "berg", "asco", "ith", "orne", "ane", "isse",
];

pub const TITLE_ADJECTIVES: &[&str] = &[
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

pub const TITLE_NOUNS: &[&str] = &[
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

pub const TITLE_PREPOSITIONS: &[&str] = &["Before", "After", "Beyond", "Under", "Across", "Beneath"];

/// A person of the catalogue: a director or an actor, with the genres and themes they gravitate to.
pub struct Person {
    pub name: String,
    pub genres: Vec<usize>,
    pub themes: Vec<usize>,
    pub first_year: i32,
    pub last_year: i32,
}

/// One film in structured form; [`Item`] is its flattened view.
pub struct Film {
    pub title: String,
    pub year: i32,
    pub genres: Vec<usize>,
    pub themes: Vec<usize>,
    pub director: usize,
    pub actors: Vec<usize>,
    pub log_popularity: f64,
}

pub struct Catalogue {
    pub directors: Vec<Person>,
    pub actors: Vec<Person>,
    pub films: Vec<Film>,
    /// Names generated like the catalogue's but used by nobody in it: what noisy references cite.
    pub phantom_names: Vec<String>,
}

pub fn person_name(rng: &mut ChaCha8Rng, taken: &mut HashSet<String>) -> String {
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

pub fn people(
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

pub fn film_title(rng: &mut ChaCha8Rng, taken: &mut HashSet<String>, people: &[Person]) -> String {
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

pub fn roman(mut n: usize) -> String {
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

pub fn build_catalogue(items: usize, rng: &mut ChaCha8Rng) -> Catalogue {
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

pub fn film_item(catalogue: &Catalogue, film: &Film, id: String) -> Item {
    let mut features: Vec<Feature> = film.genres.iter().map(|&g| Feature::new("genre", GENRES[g])).collect();
    features.push(Feature::new("director", &catalogue.directors[film.director].name));
    features.extend(film.actors.iter().map(|&a| Feature::new("actor", &catalogue.actors[a].name)));
    features.extend(film.themes.iter().map(|&t| Feature::new("theme", THEMES[t])));
    Item { id, title: film.title.clone(), year: Some(film.year), features }
}

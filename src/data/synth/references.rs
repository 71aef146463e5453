//! The demo's reference explanations: what in a user's history an item continues ([`Link`]: a
//! director, an actor, a genre or a theme), sentences that cite it in varied wording, a cold-start
//! line for a short history, and — for a share of references, like an LLM teacher's — an invented
//! claim about a feature neither the item nor the history has.

use rand::seq::IndexedRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::catalogue::{Catalogue, Film, GENRES, THEMES};
use super::weighted_index;
use crate::data::model::Reference;

/// A pattern of the history that the item continues: what a faithful explanation cites.
#[derive(Clone, Debug)]
pub enum Link {
    Director { name: String, titles: Vec<String> },
    Actor { name: String, titles: Vec<String> },
    Genre { genre: String, count: usize, example: String },
    Theme { theme: String, count: usize, example: String },
}

/// Genre names as they read inside a sentence.
pub fn genre_word(genre: &str) -> String {
    if genre == "Science Fiction" {
        "science fiction".to_owned()
    } else {
        genre.to_lowercase()
    }
}

pub fn links(catalogue: &Catalogue, history: &[usize], film: &Film) -> Vec<Link> {
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

pub fn pick<'a>(rng: &mut ChaCha8Rng, options: &[&'a str]) -> &'a str {
    options.choose(rng).expect("non-empty template list")
}

/// Fills `{t}` (the recommended title), `{n}` (a name), `{h}` / `{h2}` (history titles),
/// `{g}` (a genre), `{m}` (a theme) and `{c}` (a count) in a template.
pub fn fill(template: &str, slots: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (key, value) in slots {
        out = out.replace(key, value);
    }
    out
}

/// Fixes what filling templates breaks: "a" before a vowel ("a adventure film", "a Oskar Morith
/// film") becomes "an", and a sentence starting with a lower-case genre gets its capital.
pub fn tidy(text: &str) -> String {
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

pub fn count_word(n: usize) -> String {
    const WORDS: &[&str] = &["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];
    WORDS.get(n).map_or_else(|| "many".to_owned(), |w| (*w).to_owned())
}

/// One sentence stating `link` as the reason `title` fits the history.
pub fn sentence(link: &Link, title: &str, rng: &mut ChaCha8Rng) -> String {
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
pub fn follow_up(link: &Link, rng: &mut ChaCha8Rng) -> String {
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
pub fn cold_start(catalogue: &Catalogue, film: &Film, history_len: usize, rng: &mut ChaCha8Rng) -> String {
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
pub fn invented(
    catalogue: &Catalogue,
    history: &[usize],
    film: &Film,
    rng: &mut ChaCha8Rng,
) -> Option<String> {
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

pub fn reference_for(
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

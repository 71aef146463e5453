//! Feature grounding on sentences built to trip a naive matcher: multi-word features, plurals,
//! features hidden inside longer words, titles containing feature words, invented people, case
//! and punctuation.

use prism_explorer::data::{Dataset, DatasetBuilder, Feature, Item, ItemIdx};
use prism_explorer::explain::{Class, Matcher, Target};

/// (id, title, [(kind, value)]) of one test item.
type ItemSpec<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

fn dataset() -> Dataset {
    let mut b = DatasetBuilder::new("test");
    let items: &[ItemSpec] = &[
        ("m1", "The Glass Harbor", &[("genre", "Drama"), ("genre", "Mystery"), ("director", "Ines Valdar")]),
        ("m2", "Red Meadow", &[("genre", "War"), ("genre", "Drama"), ("actor", "Mara Lind")]),
        (
            "m3",
            "Cold Orbit",
            &[("genre", "Science Fiction"), ("genre", "Thriller"), ("director", "Ines Valdar")],
        ),
        ("m4", "Star Wars (1977)", &[("genre", "Fiction"), ("director", "George Lucas")]),
        ("m5", "Heat (1995)", &[("genre", "Crime"), ("director", "Michael Mann")]),
        ("m6", "Matrix, The (1999)", &[("genre", "Action"), ("actor", "Mara Lind")]),
    ];
    for (id, title, features) in items {
        b.set_item(Item {
            id: (*id).to_owned(),
            title: (*title).to_owned(),
            year: None,
            features: features.iter().map(|(k, v)| Feature::new(*k, *v)).collect(),
        });
    }
    b.build()
}

/// Grounds `text` for a user who saw m1 and m2, recommended m3, and lists (surface, class, value).
fn check(text: &str) -> Vec<(String, Class, String)> {
    check_with(text, &[0, 1], 2)
}

fn check_with(text: &str, history: &[ItemIdx], item: ItemIdx) -> Vec<(String, Class, String)> {
    let dataset = dataset();
    let matcher = Matcher::new(&dataset);
    let grounding = matcher.ground(text, history, item);
    grounding.records(text).into_iter().map(|r| (r.surface, r.class, r.value)).collect()
}

fn m(surface: &str, class: Class, value: &str) -> (String, Class, String) {
    (surface.to_owned(), class, value.to_owned())
}

#[test]
fn multi_word_feature_beats_its_last_word() {
    assert_eq!(
        check("A science fiction story by Ines Valdar."),
        vec![
            m("science fiction", Class::ItemOnly, "Science Fiction"),
            m("Ines Valdar", Class::Grounded, "Ines Valdar")
        ]
    );
    // The same phrase hyphenated, shouted and possessive.
    assert_eq!(
        check("SCIENCE-FICTION from INES VALDAR's studio!"),
        vec![
            m("SCIENCE-FICTION", Class::ItemOnly, "Science Fiction"),
            m("INES VALDAR", Class::Grounded, "Ines Valdar")
        ]
    );
}

#[test]
fn plurals_match_their_feature() {
    assert_eq!(
        check("You like thrillers and dramas; here are more Thrillers."),
        vec![
            m("thrillers", Class::ItemOnly, "Thriller"),
            m("dramas", Class::HistoryOnly, "Drama"),
            m("Thrillers", Class::ItemOnly, "Thriller"),
        ]
    );
}

#[test]
fn features_inside_longer_words_are_not_mentions() {
    assert_eq!(check("An award-winning, melodramatic, warlike and mysterious tale."), vec![]);
    assert_eq!(
        check("A war story, a drama."),
        vec![m("war", Class::HistoryOnly, "War"), m("drama", Class::HistoryOnly, "Drama")]
    );
}

#[test]
fn a_title_containing_a_feature_word_is_the_title() {
    assert_eq!(check("Fans of Star Wars will like it."), vec![m("Star Wars", Class::Invented, "Star Wars")]);
    assert_eq!(
        check_with("Fans of Star Wars will like it.", &[3], 2),
        vec![m("Star Wars", Class::HistoryOnly, "Star Wars")]
    );
    // "The Matrix" as people write it, not as MovieLens stores it.
    assert_eq!(check("Unlike The Matrix."), vec![m("Matrix", Class::Invented, "The Matrix")]);
    assert_eq!(
        check("Like Red Meadow and Cold Orbit."),
        vec![
            m("Red Meadow", Class::HistoryOnly, "Red Meadow"),
            m("Cold Orbit", Class::ItemOnly, "Cold Orbit"),
        ]
    );
}

#[test]
fn one_word_titles_need_a_capital() {
    assert_eq!(check("It has the heat of a crime story."), vec![m("crime", Class::Invented, "Crime")]);
    assert_eq!(check("As tense as Heat."), vec![m("Heat", Class::Invented, "Heat")]);
}

#[test]
fn an_invented_director_is_invented() {
    let dataset = dataset();
    let matcher = Matcher::new(&dataset);
    let text = "Directed by George Lucas, starring Mara Lind.";
    let g = matcher.ground(text, &[0, 1], 2);
    assert_eq!(g.mentions.len(), 2);
    assert_eq!(&text[g.mentions[0].span.clone()], "George Lucas");
    assert_eq!(g.mentions[0].class, Class::Invented);
    let Target::Feature { feature, .. } = g.mentions[0].target else { panic!("not a feature") };
    assert_eq!(feature.kind, "director");
    // Mara Lind acts in m2 (history) and m6, not in the item.
    assert_eq!(g.mentions[1].class, Class::HistoryOnly);
    assert_eq!((g.counts.invented, g.counts.history_only, g.counts.total()), (1, 1, 2));
    let summary = g.summary();
    assert_eq!(summary.invented, vec!["George Lucas"]);
    assert_eq!(summary.history_only, vec!["Mara Lind"]);
}

#[test]
fn concepts_are_dense_and_shared_across_kinds() {
    let dataset = dataset();
    let matcher = Matcher::new(&dataset);
    // Drama, Mystery, Ines Valdar, War, Mara Lind, Science Fiction, Thriller, Fiction,
    // George Lucas, Crime, Michael Mann, Action.
    assert_eq!(matcher.num_concepts(), 12);
    let concepts = matcher.concepts_in("Drama, dramas and Ines Valdar; The Glass Harbor.");
    assert_eq!(concepts.len(), 2);
    assert!(concepts.iter().all(|&c| (c as usize) < matcher.num_concepts()));
    let item_concepts = matcher.item_concepts(0);
    assert_eq!(item_concepts.len(), 3);
    assert!(concepts.iter().all(|c| item_concepts.contains(c)));
}

#[test]
fn spans_index_the_original_text_even_after_multibyte_characters() {
    let text = "Après «Cold Orbit», encore Ines Valdar’s thrillers — bravo.";
    let dataset = dataset();
    let matcher = Matcher::new(&dataset);
    let g = matcher.ground(text, &[0, 1], 2);
    let surfaces: Vec<&str> = g.mentions.iter().map(|m| &text[m.span.clone()]).collect();
    assert_eq!(surfaces, vec!["Cold Orbit", "Ines Valdar", "thrillers"]);
}

#[test]
#[ignore = "timing, run by hand: cargo test --release --test grounding_tricky -- --ignored --nocapture"]
fn grounds_100k_explanations() {
    let dataset = dataset();
    let matcher = Matcher::new(&dataset);
    let texts = [
        "Since you enjoyed Red Meadow and other dramas by Ines Valdar, this science fiction thriller should suit you.",
        "An award-winning, melodramatic crime story directed by George Lucas with Mara Lind.",
    ];
    let start = std::time::Instant::now();
    let mut mentions = 0;
    for i in 0..100_000 {
        mentions += matcher.ground(texts[i % 2], &[0, 1], 2).mentions.len();
    }
    println!("100k explanations grounded in {:?} ({mentions} mentions)", start.elapsed());
    assert_eq!(mentions, 50_000 * 5 + 50_000 * 3);
}

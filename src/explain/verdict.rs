//! What a reader sees in one explanation, read off its grounding: whether it names the recommended
//! item's exact title, how many catalogue titles and features it invents, and which kinds of
//! feature it attributes wrongly to the item. `eval explain` turns these into shares of a corpus;
//! the explorer shows them as a one-line verdict under each explanation.
//!
//! Definitions (each on the mentions [`Matcher::ground`] finds):
//! - **title named**: [`Grounding::title_named`] — the item's cleaned title, word for word under
//!   the matcher's normalisation (see [`Matcher::ground`]).
//! - **titles invented**: mentions of a catalogue title that is neither the item's nor one in the
//!   user's history (the history the explanation was grounded against).
//! - **features invented**: mentions of a catalogue feature value that neither the item nor any
//!   history item has.
//! - A slot a slot-reading model wrote that its pair has no value for (`[DIRECTOR1_H1]` when no
//!   history item shares the director, [`super::slots::unfilled`]) is an invented title or
//!   feature: it claims one that does not exist.
//! - **misattributed kinds**: the feature kinds K (genre, director, actor, theme, …) such that the
//!   item has at least one feature of kind K, the explanation names at least one value of kind K,
//!   and none of the kind-K values it names is the item's own. "*X* is a musical film, a genre you
//!   return to often" for a drama misattributes `genre`; "a drama, like the musicals you love"
//!   does not (it names the item's own genre too), nor does a text naming no genre, nor one naming
//!   a director of an item the catalogue lists no director for (nothing to contradict). A
//!   mention's kind is that of the feature it resolves to: the item's when the item has the
//!   wording, else a history item's, else the catalogue's first.

use serde::Serialize;

use super::grounding::{Class, Grounding, Matcher, Target};
use crate::data::ItemIdx;

/// The verdict on one explanation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub title_named: bool,
    pub titles_invented: usize,
    pub features_invented: usize,
    /// Feature kinds named only with values the item does not have, sorted.
    pub misattributed: Vec<String>,
}

impl Verdict {
    /// The verdict on `text`, an explanation of `item` whose grounding by `matcher` is `grounding`.
    pub fn of(matcher: &Matcher, grounding: &Grounding<'_>, item: ItemIdx, text: &str) -> Verdict {
        let item_kinds = matcher.item_kinds(item);
        // Per kind of the item: (named at all, named with the item's own value).
        let mut named = vec![(false, false); item_kinds.len()];
        let (titles_unfilled, values_unfilled) = super::slots::unfilled(text);
        let mut verdict = Verdict {
            title_named: grounding.title_named,
            titles_invented: titles_unfilled,
            features_invented: values_unfilled,
            ..Verdict::default()
        };
        for m in &grounding.mentions {
            match m.target {
                Target::Title { .. } => verdict.titles_invented += usize::from(m.class == Class::Invented),
                Target::Feature { feature, .. } => {
                    verdict.features_invented += usize::from(m.class == Class::Invented);
                    if let Ok(at) = item_kinds.binary_search(&feature.kind.as_str()) {
                        named[at].0 = true;
                        named[at].1 |= matches!(m.class, Class::Grounded | Class::ItemOnly);
                    }
                }
            }
        }
        verdict.misattributed = item_kinds
            .iter()
            .zip(&named)
            .filter(|(_, &(any, own))| any && !own)
            .map(|(kind, _)| (*kind).to_owned())
            .collect();
        verdict
    }

    /// Invented titles and features together.
    pub fn invented(&self) -> usize {
        self.titles_invented + self.features_invented
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Dataset, DatasetBuilder, Feature, Item};

    /// (id, title, [(kind, value)]) of one test item.
    type ItemSpec<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

    /// m0 (history): a musical by Ada Moss; m1 (recommended): "The Circus of Tunnel", a drama by
    /// Bo Lin with the theme memory; m2: "The Circus of Compass", a western, in nobody's history.
    fn dataset() -> Dataset {
        let mut b = DatasetBuilder::new("test");
        let items: [ItemSpec; 3] = [
            ("m0", "Edda's Tide (1990)", &[("genre", "Musical"), ("director", "Ada Moss")]),
            (
                "m1",
                "The Circus of Tunnel",
                &[("genre", "Drama"), ("director", "Bo Lin"), ("theme", "memory")],
            ),
            ("m2", "Circus of Compass, The", &[("genre", "Western")]),
        ];
        for (id, title, features) in items {
            b.set_item(Item {
                id: id.into(),
                title: title.into(),
                year: None,
                features: features.iter().map(|(k, v)| Feature::new(*k, *v)).collect(),
            });
        }
        b.build()
    }

    fn verdict(text: &str) -> Verdict {
        let dataset = dataset();
        let matcher = Matcher::new(&dataset);
        Verdict::of(&matcher, &matcher.ground(text, &[0], 1), 1, text)
    }

    fn kinds(v: &Verdict) -> Vec<&str> {
        v.misattributed.iter().map(String::as_str).collect()
    }

    #[test]
    fn a_musical_for_a_drama_misattributes_the_genre() {
        let v = verdict("The Circus of Tunnel is a musical film, a genre you return to often.");
        assert!(v.title_named);
        assert_eq!(kinds(&v), ["genre"]);
        assert_eq!((v.titles_invented, v.features_invented), (0, 0), "musical is in the history");
    }

    #[test]
    fn naming_the_items_own_genre_too_is_not_a_misattribution() {
        let v = verdict("A drama, like the musicals you love.");
        assert!(kinds(&v).is_empty() && !v.title_named);
        // No genre at all: nothing attributed.
        assert!(kinds(&verdict("A film you will enjoy.")).is_empty());
        // A director from the history and no director of the item's: misattributed, per kind.
        assert_eq!(kinds(&verdict("A drama by Ada Moss.")), ["director"]);
        // An invented genre alone is both invented and misattributed.
        let v = verdict("A western, like Edda's Tide.");
        assert_eq!((kinds(&v), v.features_invented, v.titles_invented), (vec!["genre"], 1, 0));
    }

    #[test]
    fn a_kind_the_item_lacks_cannot_be_misattributed() {
        let dataset = dataset();
        let matcher = Matcher::new(&dataset);
        // m2 lists no director; naming one contradicts nothing in the catalogue.
        let v = Verdict::of(
            &matcher,
            &matcher.ground("A western by Bo Lin.", &[0], 2),
            2,
            "A western by Bo Lin.",
        );
        assert!(v.misattributed.is_empty());
    }

    #[test]
    fn the_title_must_appear_word_for_word() {
        for (text, named) in [
            ("Try The Circus of Tunnel.", true),
            ("try the circus of tunnel!", true),
            ("Circus of Tunnel's score is lovely.", true),
            ("A circus  of\ntunnel.", true),
            ("The Circus of Compass is next.", false),
            ("The Circus, a tunnel.", false),
            ("The Tunnel of Circus.", false),
        ] {
            assert_eq!(verdict(text).title_named, named, "{text}");
        }
    }

    #[test]
    fn a_title_neither_the_items_nor_the_historys_is_invented() {
        let v = verdict("After Edda's Tide, try The Circus of Compass.");
        assert_eq!((v.titles_invented, v.features_invented, v.title_named), (1, 0, false));
        assert_eq!(v.invented(), 1);
        // A history title is cited, not invented.
        assert_eq!(verdict("You loved Edda's Tide.").titles_invented, 0);
    }
}

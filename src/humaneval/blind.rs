//! Blinding. Two layers of randomisation keep annotators from learning which system wrote what
//! and keep every system equally often in every slot:
//!
//! 1. at setup, [`super::latin::latin_positions`] puts the systems at text positions so that in
//!    each block of `S` consecutive study items (`S` systems) every system takes every position
//!    once;
//! 2. per annotator, [`Assignment::new`] (seeded by the study seed and the annotator's name)
//!    shuffles the item order and gives each block its own random mapping of slots (A, B, …) to
//!    text positions, so each block stays balanced: over any annotator's items, a system's count
//!    in a slot differs from any other's by at most one.
//!
//! [`ItemView`] is what an annotator sees. It is built only from a [`StudyItem`] (which holds no
//! system names) and an [`Assignment`] (which holds indices), its fields are private, and this
//! module never reads the key, so no system name can be serialised into a view.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::study::{Study, StudyItem};
use super::{fnv1a, slot_letter};

/// One annotator's presentation of a study.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// Study item indices in the order this annotator sees them.
    pub order: Vec<usize>,
    /// `slots[i][s]`: the text position of study item `i` shown in slot `s`.
    pub slots: Vec<Vec<usize>>,
}

impl Assignment {
    /// The annotator's order and slots: a function of (seed, name, items, slots).
    pub fn new(seed: u64, annotator: &str, items: usize, slots: usize) -> Assignment {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ fnv1a(annotator.as_bytes()));
        let mut order: Vec<usize> = (0..items).collect();
        order.shuffle(&mut rng);
        let mut per_item = Vec::with_capacity(items);
        while per_item.len() < items {
            let mut block: Vec<usize> = (0..slots).collect();
            block.shuffle(&mut rng);
            for _ in 0..slots.min(items - per_item.len()) {
                per_item.push(block.clone());
            }
        }
        Assignment { order, slots: per_item }
    }

    pub fn for_study(study: &Study, annotator: &str) -> Assignment {
        Assignment::new(study.seed, annotator, study.items.len(), study.slots)
    }
}

/// What an annotator sees of one item: the user, the history, the item and the explanations
/// under slot letters. Built only by [`ItemView::new`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ItemView {
    user: String,
    title: String,
    features: Vec<String>,
    history: Vec<String>,
    slots: Vec<SlotView>,
}

/// One explanation under its slot letter.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SlotView {
    letter: char,
    text: String,
}

impl SlotView {
    pub fn letter(&self) -> char {
        self.letter
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

impl ItemView {
    /// The view of `item` with slot `s` showing text position `slots[s]`.
    pub fn new(item: &StudyItem, slots: &[usize]) -> ItemView {
        ItemView {
            user: item.user.clone(),
            title: item.title.clone(),
            features: item.features.clone(),
            history: item.history.clone(),
            slots: slots
                .iter()
                .enumerate()
                .map(|(s, &j)| SlotView { letter: slot_letter(s), text: item.texts[j].clone() })
                .collect(),
        }
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn title(&self) -> &str {
        &self.title
    }

    pub fn features(&self) -> &[String] {
        &self.features
    }

    pub fn history(&self) -> &[String] {
        &self.history
    }

    pub fn slots(&self) -> &[SlotView] {
        &self.slots
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::humaneval::study::tests::make_study;

    /// Counts of (system, slot) over an annotator's items, unblinded with the key.
    fn slot_counts(study: &Study, key: &crate::humaneval::Key, a: &Assignment) -> Vec<Vec<usize>> {
        let mut counts = vec![vec![0; study.slots]; study.slots];
        for &i in &a.order {
            for (s, &j) in a.slots[i].iter().enumerate() {
                counts[key.items[i].systems[j]][s] += 1;
            }
        }
        counts
    }

    #[test]
    fn slots_are_balanced_for_every_annotator() {
        for (samples, attention) in [(9, 3), (10, 0), (7, 1)] {
            let (study, key) = make_study(samples, attention);
            for name in ["ann", "bob", "x", "a-much-longer-name"] {
                let a = Assignment::for_study(&study, name);
                let mut order = a.order.clone();
                order.sort_unstable();
                assert_eq!(order, (0..study.items.len()).collect::<Vec<_>>());
                let counts = slot_counts(&study, &key, &a);
                let all: Vec<usize> = counts.iter().flatten().copied().collect();
                let (lo, hi) = (all.iter().min().unwrap(), all.iter().max().unwrap());
                assert!(hi - lo <= 1, "{name}, {samples}+{attention} items: {counts:?}");
            }
        }
    }

    #[test]
    fn annotators_get_their_own_reproducible_order_and_slots() {
        let (study, _) = make_study(9, 3);
        let ann = Assignment::for_study(&study, "ann");
        assert_eq!(ann, Assignment::for_study(&study, "ann"));
        let bob = Assignment::for_study(&study, "bob");
        assert_ne!(ann.order, bob.order);
        assert_ne!(ann.slots, bob.slots);
        // Slots really are shuffled: not every item shows text position 0 in slot A.
        assert!(ann.slots.iter().any(|s| s[0] != 0));
    }

    #[test]
    fn a_view_never_contains_system_names() {
        let (study, key) = make_study(9, 3);
        // Texts of the test study start with their system's name; strip that so that only the
        // view's own fields could leak one.
        let mut study = study;
        for item in &mut study.items {
            for text in &mut item.texts {
                *text = text.split_once(':').unwrap().1.to_owned();
            }
        }
        let a = Assignment::for_study(&study, "ann");
        for &i in &a.order {
            let view = ItemView::new(&study.items[i], &a.slots[i]);
            let json = serde_json::to_string(&view).unwrap();
            for system in &key.systems {
                assert!(!json.contains(&format!("\"{}\"", system.name)), "{json}");
                assert!(!json.contains(&system.source), "{json}");
            }
            let letters: String = view.slots().iter().map(SlotView::letter).collect();
            assert_eq!(letters, "ABC");
        }
    }
}

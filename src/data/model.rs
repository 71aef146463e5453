//! The in-memory dataset: users, items with features, timed interactions, and the per-user
//! chronological split. Compact: ids are interned to dense `u32` indices, and interactions are
//! stored sorted by (user, timestamp) so a user's history is one contiguous slice.

use std::collections::HashMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::notes::LoadNotes;
use super::source::{self, Source};

/// Dense index of a user in [`Dataset::users`].
pub type UserIdx = u32;
/// Dense index of an item in [`Dataset::items`].
pub type ItemIdx = u32;

/// One attribute value of an item (`kind` = "genre", "director", "category", "tag", …).
/// These are the *features* that explanations are grounded against.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Feature {
    pub kind: String,
    pub value: String,
}

impl Feature {
    pub fn new(kind: impl Into<String>, value: impl Into<String>) -> Feature {
        Feature { kind: kind.into(), value: value.into() }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// The id as written in the source files.
    pub id: String,
    pub title: String,
    pub year: Option<i32>,
    pub features: Vec<Feature>,
}

/// A reference explanation attached to an interaction: why this item fits the history before it.
/// For the demo dataset it is generated, and `noisy` marks the ones that deliberately cite a
/// feature neither the item nor the history has (see docs/DEMO_DATA.md); for review datasets it
/// is the review text and `noisy` is false.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    pub text: String,
    pub noisy: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Interaction {
    pub user: UserIdx,
    pub item: ItemIdx,
    pub rating: f32,
    /// Seconds since the Unix epoch (or any monotone clock the source uses).
    pub timestamp: i64,
    pub reference: Option<Box<Reference>>,
}

/// A loaded dataset. Build one with [`DatasetBuilder`]; the invariants below hold afterwards.
///
/// Invariants: `interactions` is sorted by (user, timestamp, source order); `user_ranges[u]` is
/// the slice of `interactions` that belongs to user `u`; every index is in bounds.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    /// Short name of the source format ("movielens-1m", "generic-jsonl", …).
    pub format: String,
    /// External user ids, indexed by [`UserIdx`].
    pub users: Vec<String>,
    pub items: Vec<Item>,
    pub interactions: Vec<Interaction>,
    pub user_ranges: Vec<Range<usize>>,
    /// What loading recovered from: unparsed optional fields, an unterminated last line, and the
    /// malformed records skipped under `--lenient` (none otherwise: strict loading fails instead).
    pub notes: LoadNotes,
    /// The files it was loaded from, with their content hashes (none for a dataset built in memory).
    pub sources: Vec<Source>,
    pub user_index: HashMap<String, UserIdx>,
    pub item_index: HashMap<String, ItemIdx>,
}

impl Dataset {
    pub fn num_users(&self) -> usize {
        self.users.len()
    }

    pub fn num_items(&self) -> usize {
        self.items.len()
    }

    /// All of a user's interactions, oldest first.
    pub fn user_interactions(&self, user: UserIdx) -> &[Interaction] {
        &self.interactions[self.user_ranges[user as usize].clone()]
    }

    pub fn user_by_id(&self, id: &str) -> Option<UserIdx> {
        self.user_index.get(id).copied()
    }

    pub fn item_by_id(&self, id: &str) -> Option<ItemIdx> {
        self.item_index.get(id).copied()
    }

    pub fn item(&self, item: ItemIdx) -> &Item {
        &self.items[item as usize]
    }

    /// A SHA-256 over the content of every file the dataset was loaded from: the part of a cache
    /// key that makes a changed file never reuse a stale result.
    pub fn content_key(&self) -> String {
        source::content_key(&self.sources)
    }
}

/// Collects raw records from a loader and produces a [`Dataset`] satisfying its invariants.
#[derive(Debug, Default)]
pub struct DatasetBuilder {
    format: String,
    users: Vec<String>,
    user_index: HashMap<String, UserIdx>,
    items: Vec<Item>,
    item_index: HashMap<String, ItemIdx>,
    interactions: Vec<Interaction>,
    notes: LoadNotes,
    sources: Vec<Source>,
}

impl DatasetBuilder {
    pub fn new(format: impl Into<String>) -> DatasetBuilder {
        DatasetBuilder { format: format.into(), ..DatasetBuilder::default() }
    }

    pub fn intern_user(&mut self, id: &str) -> UserIdx {
        if let Some(&idx) = self.user_index.get(id) {
            return idx;
        }
        let idx = self.users.len() as UserIdx;
        self.users.push(id.to_owned());
        self.user_index.insert(id.to_owned(), idx);
        idx
    }

    /// Returns the item's index, creating a bare item (title = id, no features) if unseen.
    pub fn intern_item(&mut self, id: &str) -> ItemIdx {
        if let Some(&idx) = self.item_index.get(id) {
            return idx;
        }
        let idx = self.items.len() as ItemIdx;
        self.items.push(Item { id: id.to_owned(), title: id.to_owned(), year: None, features: Vec::new() });
        self.item_index.insert(id.to_owned(), idx);
        idx
    }

    /// The index of an item already interned or set.
    pub fn item_by_id(&self, id: &str) -> Option<ItemIdx> {
        self.item_index.get(id).copied()
    }

    /// Inserts or replaces the metadata of an item.
    pub fn set_item(&mut self, item: Item) -> ItemIdx {
        let idx = self.intern_item(&item.id);
        self.items[idx as usize] = item;
        idx
    }

    pub fn item_mut(&mut self, idx: ItemIdx) -> &mut Item {
        &mut self.items[idx as usize]
    }

    pub fn push_interaction(&mut self, interaction: Interaction) {
        self.interactions.push(interaction);
    }

    /// Records what the loader recovered from (it keeps its own tally while reading).
    pub fn set_notes(&mut self, notes: LoadNotes) {
        self.notes = notes;
    }

    pub fn set_sources(&mut self, sources: Vec<Source>) {
        self.sources = sources;
    }

    /// Keeps only the latest interaction of each (user, item) pair — by timestamp, then source
    /// order — and returns how many were dropped. Re-ratings in MovieLens and repeated reviews in
    /// review dumps would otherwise leak an item between train and test.
    pub fn dedup_keep_latest(&mut self) -> usize {
        self.sort_by_user_and_time();
        let before = self.interactions.len();
        // `seen[item]` holds 1 + the user who last kept the item: one pass, no hashing, which
        // keeps loading a million interactions fast even in debug builds.
        let mut seen = vec![0u64; self.items.len()];
        let mut keep = vec![true; before];
        let mut end = before;
        while end > 0 {
            let user = self.interactions[end - 1].user;
            let mark = u64::from(user) + 1;
            let mut k = end;
            while k > 0 && self.interactions[k - 1].user == user {
                k -= 1;
                let item = self.interactions[k].item as usize;
                keep[k] = seen[item] != mark;
                seen[item] = mark;
            }
            end = k;
        }
        let mut flags = keep.into_iter();
        self.interactions.retain(|_| flags.next().unwrap_or(true));
        before - self.interactions.len()
    }

    /// Orders interactions by (user, timestamp, source order) with a counting sort on users and a
    /// stable sort within each user, which is linear for the usual already-sorted user slices.
    fn sort_by_user_and_time(&mut self) {
        let mut starts = vec![0usize; self.users.len() + 1];
        for i in &self.interactions {
            starts[i.user as usize + 1] += 1;
        }
        for u in 1..starts.len() {
            starts[u] += starts[u - 1];
        }
        // Files grouped by user (most dumps) intern users in order: nothing to move.
        if !self.interactions.is_sorted_by_key(|i| i.user) {
            let mut next = starts.clone();
            let mut order = vec![0usize; self.interactions.len()];
            for (k, i) in self.interactions.iter().enumerate() {
                order[next[i.user as usize]] = k;
                next[i.user as usize] += 1;
            }
            let mut old: Vec<Option<Interaction>> = self.interactions.drain(..).map(Some).collect();
            self.interactions = order.iter().filter_map(|&k| old[k].take()).collect();
        }
        for w in starts.windows(2) {
            let slice = &mut self.interactions[w[0]..w[1]];
            if !slice.is_sorted_by_key(|i| i.timestamp) {
                slice.sort_by_key(|i| i.timestamp);
            }
        }
    }

    pub fn build(mut self) -> Dataset {
        // A stable sort keeps source order among equal timestamps.
        self.interactions.sort_by_key(|i| (i.user, i.timestamp));
        let mut user_ranges = vec![0..0; self.users.len()];
        let mut start = 0;
        while start < self.interactions.len() {
            let user = self.interactions[start].user;
            let mut end = start;
            while end < self.interactions.len() && self.interactions[end].user == user {
                end += 1;
            }
            user_ranges[user as usize] = start..end;
            start = end;
        }
        Dataset {
            format: self.format,
            users: self.users,
            items: self.items,
            interactions: self.interactions,
            user_ranges,
            notes: self.notes,
            sources: self.sources,
            user_index: self.user_index,
            item_index: self.item_index,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(b: &mut DatasetBuilder, user: &str, item: &str, rating: f32, timestamp: i64) {
        let (user, item) = (b.intern_user(user), b.intern_item(item));
        b.push_interaction(Interaction { user, item, rating, timestamp, reference: None });
    }

    #[test]
    fn dedup_keeps_the_latest_rating_and_source_order_breaks_ties() {
        let mut b = DatasetBuilder::new("test");
        push(&mut b, "u", "a", 1.0, 30);
        push(&mut b, "u", "b", 2.0, 10);
        push(&mut b, "u", "a", 5.0, 20);
        push(&mut b, "v", "a", 3.0, 5);
        push(&mut b, "v", "a", 4.0, 5);
        assert_eq!(b.dedup_keep_latest(), 2);
        let d = b.build();
        let u: Vec<_> = d.user_interactions(0).iter().map(|i| (i.item, i.rating)).collect();
        assert_eq!(u, [(1, 2.0), (0, 1.0)]);
        let v: Vec<_> = d.user_interactions(1).iter().map(|i| i.rating).collect();
        assert_eq!(v, [4.0]);
    }
}

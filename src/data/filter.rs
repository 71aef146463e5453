//! k-core filtering: drops users and items with too few interactions, repeating until every
//! remaining user and item meets its minimum (removing an item can push a user below hers), and
//! re-indexes what is left into a new consistent [`Dataset`].

use std::collections::HashMap;

use super::{Dataset, ItemIdx, UserIdx};

/// Keeps the largest sub-dataset in which every user has at least `min_user` interactions and
/// every item at least `min_item`. Indices are reassigned densely in their old order, so relative
/// order (and the per-user time order of interactions) is preserved.
pub fn k_core(dataset: Dataset, min_user: usize, min_item: usize) -> Dataset {
    let mut user_alive = vec![true; dataset.num_users()];
    let mut item_alive = vec![true; dataset.num_items()];
    loop {
        let mut user_count = vec![0usize; dataset.num_users()];
        let mut item_count = vec![0usize; dataset.num_items()];
        for i in &dataset.interactions {
            if user_alive[i.user as usize] && item_alive[i.item as usize] {
                user_count[i.user as usize] += 1;
                item_count[i.item as usize] += 1;
            }
        }
        let mut changed = false;
        for (alive, count) in user_alive.iter_mut().zip(&user_count) {
            if *alive && *count < min_user {
                *alive = false;
                changed = true;
            }
        }
        for (alive, count) in item_alive.iter_mut().zip(&item_count) {
            if *alive && *count < min_item {
                *alive = false;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    reindex(dataset, &user_alive, &item_alive)
}

fn remap(alive: &[bool]) -> Vec<Option<u32>> {
    let mut next = 0u32;
    alive
        .iter()
        .map(|&a| {
            a.then(|| {
                next += 1;
                next - 1
            })
        })
        .collect()
}

fn reindex(dataset: Dataset, user_alive: &[bool], item_alive: &[bool]) -> Dataset {
    let user_map = remap(user_alive);
    let item_map = remap(item_alive);
    let users: Vec<String> =
        dataset.users.into_iter().zip(user_alive).filter(|(_, &a)| a).map(|(u, _)| u).collect();
    let items: Vec<_> =
        dataset.items.into_iter().zip(item_alive).filter(|(_, &a)| a).map(|(i, _)| i).collect();
    let mut interactions = Vec::with_capacity(dataset.interactions.len());
    let mut user_ranges = vec![0..0; users.len()];
    for mut i in dataset.interactions {
        let (Some(user), Some(item)) = (user_map[i.user as usize], item_map[i.item as usize]) else {
            continue;
        };
        i.user = user;
        i.item = item;
        let range = &mut user_ranges[user as usize];
        if range.start == range.end {
            *range = interactions.len()..interactions.len();
        }
        range.end = interactions.len() + 1;
        interactions.push(i);
    }
    let user_index: HashMap<String, UserIdx> =
        users.iter().enumerate().map(|(k, u)| (u.clone(), k as UserIdx)).collect();
    let item_index: HashMap<String, ItemIdx> =
        items.iter().enumerate().map(|(k, it)| (it.id.clone(), k as ItemIdx)).collect();
    Dataset {
        format: dataset.format,
        users,
        items,
        interactions,
        user_ranges,
        notes: dataset.notes,
        sources: dataset.sources,
        user_index,
        item_index,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DatasetBuilder, Interaction};

    fn dataset(pairs: &[(&str, &str)]) -> Dataset {
        let mut b = DatasetBuilder::new("test");
        for (t, (u, i)) in pairs.iter().enumerate() {
            let (user, item) = (b.intern_user(u), b.intern_item(i));
            b.push_interaction(Interaction { user, item, rating: 1.0, timestamp: t as i64, reference: None });
        }
        b.build()
    }

    fn check_invariants(d: &Dataset) {
        let mut covered = 0;
        for (u, range) in d.user_ranges.iter().enumerate() {
            assert_eq!(range.start, covered);
            covered = range.end;
            let slice = &d.interactions[range.clone()];
            assert!(slice.iter().all(|i| i.user as usize == u && (i.item as usize) < d.items.len()));
            assert!(slice.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
        }
        assert_eq!(covered, d.interactions.len());
        for (k, u) in d.users.iter().enumerate() {
            assert_eq!(d.user_by_id(u), Some(k as u32));
        }
        for (k, it) in d.items.iter().enumerate() {
            assert_eq!(d.item_by_id(&it.id), Some(k as u32));
        }
    }

    #[test]
    fn removal_cascades_until_stable() {
        // c is the only item u3 shares; dropping rare item z pushes u3 below 2, which then drops c.
        let d = dataset(&[
            ("u1", "a"),
            ("u1", "b"),
            ("u2", "a"),
            ("u2", "b"),
            ("u3", "c"),
            ("u3", "z"),
            ("u1", "c"),
        ]);
        let f = k_core(d, 2, 2);
        check_invariants(&f);
        assert_eq!(f.users, ["u1", "u2"]);
        assert_eq!(f.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(f.interactions.len(), 4);
    }

    #[test]
    fn zero_minimums_keep_everything_and_high_ones_empty_it() {
        let pairs = [("u1", "a"), ("u2", "b"), ("u2", "a")];
        let kept = k_core(dataset(&pairs), 0, 0);
        check_invariants(&kept);
        assert_eq!((kept.num_users(), kept.num_items(), kept.interactions.len()), (2, 2, 3));
        let gone = k_core(dataset(&pairs), 5, 1);
        check_invariants(&gone);
        assert_eq!((gone.num_users(), gone.num_items(), gone.interactions.len()), (0, 0, 0));
    }

    #[test]
    fn items_without_interactions_are_dropped_at_min_item_one() {
        let mut b = DatasetBuilder::new("test");
        b.intern_item("never-rated");
        let (user, item) = (b.intern_user("u"), b.intern_item("a"));
        b.push_interaction(Interaction { user, item, rating: 1.0, timestamp: 0, reference: None });
        let f = k_core(b.build(), 1, 1);
        check_invariants(&f);
        assert_eq!(f.items.len(), 1);
        assert_eq!(f.interactions[0].item, 0);
    }
}

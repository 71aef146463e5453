//! The binary user–item matrix of the train split, in both orientations (compressed rows), which
//! every ranker fits on and every recommendation is filtered against.

use crate::data::{Dataset, ItemIdx, Split, UserIdx};

/// Which items each user has in train (sorted, deduplicated) and which users each item has.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainMatrix {
    num_items: usize,
    user_offsets: Vec<usize>,
    user_items: Vec<ItemIdx>,
    item_offsets: Vec<usize>,
    item_users: Vec<UserIdx>,
}

impl TrainMatrix {
    pub fn new(dataset: &Dataset, split: &Split) -> TrainMatrix {
        let rows =
            (0..dataset.num_users() as UserIdx).map(|u| split.train(dataset, u).iter().map(|i| i.item));
        TrainMatrix::from_rows(dataset.num_items(), rows)
    }

    /// Builds the matrix from each user's train items, in any order and with repeats.
    pub fn from_rows<R: IntoIterator<Item = ItemIdx>>(
        num_items: usize,
        rows: impl IntoIterator<Item = R>,
    ) -> Self {
        let mut user_offsets = vec![0];
        let mut user_items = Vec::new();
        for row in rows {
            let start = user_items.len();
            user_items.extend(row);
            user_items[start..].sort_unstable();
            let mut write = start;
            for read in start..user_items.len() {
                if write == start || user_items[read] != user_items[write - 1] {
                    user_items[write] = user_items[read];
                    write += 1;
                }
            }
            user_items.truncate(write);
            user_offsets.push(write);
        }
        let mut item_offsets = vec![0; num_items + 1];
        for &item in &user_items {
            item_offsets[item as usize + 1] += 1;
        }
        for i in 0..num_items {
            item_offsets[i + 1] += item_offsets[i];
        }
        let mut fill = item_offsets.clone();
        let mut item_users = vec![0; user_items.len()];
        for u in 0..user_offsets.len() - 1 {
            for &item in &user_items[user_offsets[u]..user_offsets[u + 1]] {
                item_users[fill[item as usize]] = u as UserIdx;
                fill[item as usize] += 1;
            }
        }
        TrainMatrix { num_items, user_offsets, user_items, item_offsets, item_users }
    }

    pub fn num_users(&self) -> usize {
        self.user_offsets.len() - 1
    }

    pub fn num_items(&self) -> usize {
        self.num_items
    }

    /// Number of distinct (user, item) pairs.
    pub fn nnz(&self) -> usize {
        self.user_items.len()
    }

    /// The user's distinct train items, sorted.
    pub fn items_of(&self, user: UserIdx) -> &[ItemIdx] {
        let u = user as usize;
        &self.user_items[self.user_offsets[u]..self.user_offsets[u + 1]]
    }

    /// The item's distinct train users, sorted.
    pub fn users_of(&self, item: ItemIdx) -> &[UserIdx] {
        let i = item as usize;
        &self.item_users[self.item_offsets[i]..self.item_offsets[i + 1]]
    }

    pub fn contains(&self, user: UserIdx, item: ItemIdx) -> bool {
        self.items_of(user).binary_search(&item).is_ok()
    }

    /// The `n`-th (user, item) pair in user-major order, for uniform sampling of positives.
    pub fn pair(&self, n: usize) -> (UserIdx, ItemIdx) {
        let user = self.user_offsets.partition_point(|&o| o <= n) - 1;
        (user as UserIdx, self.user_items[n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_sorted_deduplicated_and_transposed() {
        let m = TrainMatrix::from_rows(4, vec![vec![2, 0, 2], vec![], vec![3, 0]]);
        assert_eq!(m.items_of(0), &[0, 2]);
        assert_eq!(m.items_of(1), &[] as &[ItemIdx]);
        assert_eq!(m.users_of(0), &[0, 2]);
        assert_eq!(m.users_of(1), &[] as &[UserIdx]);
        assert_eq!(m.nnz(), 4);
        assert_eq!((m.pair(0), m.pair(1), m.pair(2), m.pair(3)), ((0, 0), (0, 2), (2, 0), (2, 3)));
        assert!(m.contains(2, 3) && !m.contains(1, 3));
    }
}

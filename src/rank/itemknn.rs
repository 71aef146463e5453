//! Item-kNN: cosine similarity between items' train user sets, each item keeping its top-N
//! neighbours; a user's score for an item sums its similarity to the items they have.

use rayon::prelude::*;

use super::{Ranker, TrainMatrix};
use crate::data::{ItemIdx, UserIdx};

pub struct ItemKnn {
    /// `neighbours[offsets[i]..offsets[i + 1]]` are item `i`'s neighbours, most similar first.
    offsets: Vec<usize>,
    neighbours: Vec<(ItemIdx, f32)>,
    train: TrainMatrix,
}

impl ItemKnn {
    /// Fits on `train`, keeping `n` neighbours per item. Rows are computed in parallel and each
    /// row is independent, so the result does not depend on the thread count.
    pub fn fit(train: &TrainMatrix, n: usize) -> ItemKnn {
        let num_items = train.num_items();
        let rows: Vec<Vec<(ItemIdx, f32)>> = (0..num_items as ItemIdx)
            .into_par_iter()
            .map_init(
                || (vec![0u32; num_items], Vec::new()),
                |(co, touched), i| {
                    for &u in train.users_of(i) {
                        for &j in train.items_of(u) {
                            if j != i {
                                if co[j as usize] == 0 {
                                    touched.push(j);
                                }
                                co[j as usize] += 1;
                            }
                        }
                    }
                    let norm_i = train.users_of(i).len() as f32;
                    let mut row: Vec<(ItemIdx, f32)> = touched
                        .drain(..)
                        .map(|j| {
                            let norm_j = train.users_of(j).len() as f32;
                            let sim = co[j as usize] as f32 / (norm_i * norm_j).sqrt();
                            co[j as usize] = 0;
                            (j, sim)
                        })
                        .collect();
                    let order =
                        |a: &(ItemIdx, f32), b: &(ItemIdx, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
                    if row.len() > n && n > 0 {
                        row.select_nth_unstable_by(n - 1, order);
                    }
                    row.truncate(n);
                    row.sort_unstable_by(order);
                    row
                },
            )
            .collect();
        let mut offsets = Vec::with_capacity(num_items + 1);
        offsets.push(0);
        for row in &rows {
            offsets.push(offsets.last().copied().unwrap_or(0) + row.len());
        }
        ItemKnn { offsets, neighbours: rows.into_iter().flatten().collect(), train: train.clone() }
    }

    /// Item `i`'s neighbours and similarities, most similar first.
    pub fn neighbours(&self, item: ItemIdx) -> &[(ItemIdx, f32)] {
        &self.neighbours[self.offsets[item as usize]..self.offsets[item as usize + 1]]
    }
}

impl Ranker for ItemKnn {
    fn name(&self) -> &str {
        "itemknn"
    }

    fn score_items(&self, user: UserIdx, scores: &mut [f32]) {
        scores.fill(0.0);
        for &i in self.train.items_of(user) {
            for &(j, sim) in self.neighbours(i) {
                scores[j as usize] += sim;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_on_co_occurrence_by_hand() {
        // Users: {0,1}, {0,1,2}, {1,2}, {3}. |U0|=2, |U1|=3, |U2|=2, co(0,1)=2, co(0,2)=1, co(1,2)=2.
        let train = TrainMatrix::from_rows(4, vec![vec![0, 1], vec![0, 1, 2], vec![1, 2], vec![3]]);
        let knn = ItemKnn::fit(&train, 10);
        let close = |a: f32, b: f32| (a - b).abs() < 1e-6;
        let n0 = knn.neighbours(0);
        assert_eq!(n0.len(), 2);
        assert_eq!(n0[0].0, 1);
        assert!(close(n0[0].1, 2.0 / 6f32.sqrt()) && close(n0[1].1, 0.5));
        assert!(knn.neighbours(3).is_empty());
        // User 2 has {1, 2}: item 0 scores sim(1,0) + sim(2,0).
        let mut scores = vec![0.0; 4];
        knn.score_items(2, &mut scores);
        assert!(close(scores[0], 2.0 / 6f32.sqrt() + 0.5));
        assert!(close(scores[3], 0.0));
    }

    #[test]
    fn keeps_only_the_top_n_neighbours() {
        let train = TrainMatrix::from_rows(4, vec![vec![0, 1], vec![0, 1, 2], vec![1, 2], vec![0, 3]]);
        // Item 0 has users {0,1,3}: cos to 1 is 2/3, to 3 is 1/sqrt(3), to 2 is 1/sqrt(6).
        let knn = ItemKnn::fit(&train, 1);
        assert_eq!(knn.neighbours(0), &[(1, 2.0 / 3.0)]);
    }
}

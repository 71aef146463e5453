//! The popularity ranker: every user gets the items most users have in train. The baseline that
//! a personalised ranker has to beat.

use super::{Ranker, TrainMatrix};
use crate::data::UserIdx;

pub struct Popularity {
    counts: Vec<f32>,
}

impl Popularity {
    pub fn fit(train: &TrainMatrix) -> Popularity {
        let counts = (0..train.num_items() as u32).map(|i| train.users_of(i).len() as f32).collect();
        Popularity { counts }
    }
}

impl Ranker for Popularity {
    fn name(&self) -> &str {
        "pop"
    }

    fn score_items(&self, _user: UserIdx, scores: &mut [f32]) {
        scores.copy_from_slice(&self.counts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_by_user_count_and_skips_own_history() {
        let train = TrainMatrix::from_rows(4, vec![vec![0, 1], vec![1, 2], vec![1, 2, 2], vec![3]]);
        let pop = Popularity::fit(&train);
        let top: Vec<u32> = pop.recommend(&train, 3, 4).iter().map(|s| s.item).collect();
        assert_eq!(top, vec![1, 2, 0]);
        let top: Vec<u32> = pop.recommend(&train, 1, 1).iter().map(|s| s.item).collect();
        assert_eq!(top, vec![0]);
    }
}

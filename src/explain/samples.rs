//! Explanation samples from a dataset split: a (user, recommended item, history) triple with the
//! reference explanation when the dataset has one. Train samples take each train interaction with
//! the interactions before it as history; dev and test samples take the held-out interaction with
//! the whole train history, as the rankers see it.

use crate::data::split::{Part, Split};
use crate::data::{Dataset, ItemIdx, UserIdx};

#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub user: UserIdx,
    pub item: ItemIdx,
    /// Oldest first, at most `history_len` items.
    pub history: Vec<ItemIdx>,
    pub reference: Option<String>,
    /// The dataset marks the reference as citing a feature of neither the item nor the history.
    pub noisy_reference: bool,
}

impl Sample {
    /// The (user id, item id) pair, as files name samples.
    pub fn key(&self, dataset: &Dataset) -> (String, String) {
        (dataset.users[self.user as usize].clone(), dataset.item(self.item).id.clone())
    }
}

/// Which samples to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleSet {
    Train,
    Held(Part),
}

/// The samples of `set`, users in dataset order; train samples need at least one earlier item.
pub fn samples(dataset: &Dataset, split: &Split, set: SampleSet, history_len: usize) -> Vec<Sample> {
    let mut out = Vec::new();
    for user in 0..dataset.num_users() as UserIdx {
        let train = split.train(dataset, user);
        let mut push = |history: &[crate::data::Interaction], target: &crate::data::Interaction| {
            let history = &history[history.len().saturating_sub(history_len)..];
            out.push(Sample {
                user,
                item: target.item,
                history: history.iter().map(|i| i.item).collect(),
                reference: target.reference.as_ref().map(|r| r.text.clone()),
                noisy_reference: target.reference.as_ref().is_some_and(|r| r.noisy),
            });
        };
        match set {
            SampleSet::Train => {
                for k in 1..train.len() {
                    push(&train[..k], &train[k]);
                }
            }
            SampleSet::Held(part) => {
                if let Some(target) = split.held_out(dataset, user, part) {
                    push(train, target);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Interaction, Item, Reference};

    #[test]
    fn train_samples_see_only_earlier_items_and_held_out_the_whole_train_history() {
        let mut b = crate::data::DatasetBuilder::new("test");
        let u = b.intern_user("u");
        let items: Vec<ItemIdx> = (0..5)
            .map(|i| {
                b.set_item(Item { id: format!("i{i}"), title: format!("T{i}"), year: None, features: vec![] })
            })
            .collect();
        for (t, &item) in items.iter().enumerate() {
            b.push_interaction(Interaction {
                user: u,
                item,
                rating: 4.0,
                timestamp: t as i64,
                reference: Some(Box::new(Reference { text: format!("r{t}"), noisy: t == 2 })),
            });
        }
        let dataset = b.build();
        let split = Split::leave_last_out(&dataset);
        let train = samples(&dataset, &split, SampleSet::Train, 50);
        assert_eq!(train.len(), 2, "3 train interactions give 2 samples with history");
        assert_eq!((train[0].history.clone(), train[0].item), (vec![items[0]], items[1]));
        assert_eq!((train[1].history.clone(), train[1].item), (vec![items[0], items[1]], items[2]));
        assert!(train[1].noisy_reference && !train[0].noisy_reference);
        let test = samples(&dataset, &split, SampleSet::Held(Part::Test), 2);
        assert_eq!(test.len(), 1);
        assert_eq!((test[0].history.clone(), test[0].item), (vec![items[1], items[2]], items[4]));
        assert_eq!(test[0].reference.as_deref(), Some("r4"));
    }
}

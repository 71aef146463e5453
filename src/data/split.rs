//! The per-user chronological split (leave-last-out): a user's last interaction is test, the
//! second to last is dev, the rest is train. Unlike the paper's random row split, no user's
//! future leaks into training and dev (checkpoint selection) never touches test.

use std::ops::Range;

use super::model::{Dataset, Interaction, ItemIdx, UserIdx};

/// Which held-out part of the split to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    Dev,
    Test,
}

/// Indices into [`Dataset::interactions`] for one user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserSplit {
    pub train: Range<usize>,
    pub dev: Option<usize>,
    pub test: Option<usize>,
}

/// The split of a whole dataset, indexed by [`UserIdx`].
#[derive(Clone, Debug)]
pub struct Split {
    pub users: Vec<UserSplit>,
}

impl Split {
    /// Leave-last-out per user. Users with fewer than 3 interactions keep everything in train.
    pub fn leave_last_out(dataset: &Dataset) -> Split {
        let users = dataset
            .user_ranges
            .iter()
            .map(|range| {
                if range.len() < 3 {
                    UserSplit { train: range.clone(), dev: None, test: None }
                } else {
                    UserSplit {
                        train: range.start..range.end - 2,
                        dev: Some(range.end - 2),
                        test: Some(range.end - 1),
                    }
                }
            })
            .collect();
        Split { users }
    }

    pub fn train<'d>(&self, dataset: &'d Dataset, user: UserIdx) -> &'d [Interaction] {
        &dataset.interactions[self.users[user as usize].train.clone()]
    }

    /// The last `n` train interactions of a user, oldest first: the history an explanation sees.
    pub fn history<'d>(&self, dataset: &'d Dataset, user: UserIdx, n: usize) -> &'d [Interaction] {
        let train = self.train(dataset, user);
        &train[train.len().saturating_sub(n)..]
    }

    pub fn held_out<'d>(&self, dataset: &'d Dataset, user: UserIdx, part: Part) -> Option<&'d Interaction> {
        let split = &self.users[user as usize];
        let idx = match part {
            Part::Dev => split.dev,
            Part::Test => split.test,
        };
        idx.map(|i| &dataset.interactions[i])
    }

    /// Whether `item` is in the user's train history (rankers must never recommend those).
    pub fn in_train(&self, dataset: &Dataset, user: UserIdx, item: ItemIdx) -> bool {
        self.train(dataset, user).iter().any(|i| i.item == item)
    }

    pub fn train_len(&self) -> usize {
        self.users.iter().map(|u| u.train.len()).sum()
    }

    pub fn dev_len(&self) -> usize {
        self.users.iter().filter(|u| u.dev.is_some()).count()
    }

    pub fn test_len(&self) -> usize {
        self.users.iter().filter(|u| u.test.is_some()).count()
    }
}

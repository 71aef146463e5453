//! The job's sample list in fixed batches, and which of them a shard of the teach stage runs:
//! [`Shard`] `k` of `n` runs the batches `b` with `b % n == k`. The events name the shard that
//! reported them, the teach stage runs one, and the merge finds each sample's owner by it.

use anyhow::{bail, Result};

/// One part of the stage: the batches `b` with `b % count == index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// The whole stage as one shard.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Parses `K/N` (0 ≤ K < N).
    pub fn parse(text: &str) -> Result<Shard> {
        let parsed = text
            .split_once('/')
            .and_then(|(k, n)| Some(Shard { index: k.trim().parse().ok()?, count: n.trim().parse().ok()? }));
        match parsed {
            Some(shard) if shard.index < shard.count => Ok(shard),
            _ => bail!("--shard {text:?}: expected K/N with 0 <= K < N, e.g. 0/4"),
        }
    }

    /// Whether fixed batch `batch` belongs to this shard.
    pub fn has_batch(self, batch: usize) -> bool {
        batch % self.count == self.index
    }

    /// The shard that sample number `position` of the job's list belongs to, with batches of
    /// `batch_size` samples.
    pub fn of_sample(position: usize, batch_size: usize, count: usize) -> usize {
        position / batch_size.max(1) % count.max(1)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

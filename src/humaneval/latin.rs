//! Latin squares of text positions: at study setup every system takes every text position once in
//! each block of consecutive items (the first layer of blinding; `blind` has the second).

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// `rows[i][j]`: the system at text position `j` of study item `i`. Each block of `systems`
/// consecutive rows is a random Latin square: its own random permutation under all `systems`
/// rotations in random order.
pub fn latin_positions(items: usize, systems: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<usize>> {
    let mut rows = Vec::with_capacity(items);
    while rows.len() < items {
        let mut base: Vec<usize> = (0..systems).collect();
        base.shuffle(rng);
        let mut rotations: Vec<usize> = (0..systems).collect();
        rotations.shuffle(rng);
        for r in rotations.into_iter().take(items - rows.len()) {
            rows.push((0..systems).map(|j| base[(j + r) % systems]).collect());
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn latin_blocks_balance_positions() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for systems in 2..=5 {
            let rows = latin_positions(13, systems, &mut rng);
            assert_eq!(rows.len(), 13);
            for block in rows.chunks(systems) {
                for row in block {
                    let mut sorted = row.clone();
                    sorted.sort_unstable();
                    assert_eq!(sorted, (0..systems).collect::<Vec<_>>());
                }
                for j in 0..systems {
                    let column: std::collections::HashSet<_> = block.iter().map(|r| r[j]).collect();
                    assert_eq!(column.len(), block.len(), "a system twice at position {j} in a block");
                }
            }
        }
    }
}

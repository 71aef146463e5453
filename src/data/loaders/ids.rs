//! Fast id → index resolution for loaders. The builder's `HashMap<String, _>` (SipHash, generic
//! code compiled at this crate's opt-level) dominated load time in debug builds, so ids are
//! resolved here first: canonical small integers (MovieLens, RecBole) index a table, and other
//! ids go through a small FNV-hashed open-addressing table.

use crate::data::{DatasetBuilder, ItemIdx, UserIdx};

/// Ids at or above this are not tabled (the table would cost 4 bytes per possible id).
const MAX_TABLED: usize = 1 << 22;
const ABSENT: u32 = u32::MAX;

/// The value of a canonical decimal id ("7", not "07" or "+7", which are different ids).
fn small_integer(id: &str) -> Option<usize> {
    let bytes = id.as_bytes();
    if bytes.is_empty() || bytes.len() > 7 || (bytes[0] == b'0' && bytes.len() > 1) {
        return None;
    }
    let mut n = 0usize;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + usize::from(b - b'0');
    }
    (n < MAX_TABLED).then_some(n)
}

/// FNV-1a: a few instructions per byte, plenty for ids.
fn fnv(id: &str) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in id.as_bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A cache in front of one of the builder's id maps.
#[derive(Debug, Default)]
struct Cache {
    /// Indexed by the value of canonical small integer ids.
    table: Vec<u32>,
    /// Open addressing over `entries`, linear probing; `slots.len()` is a power of two.
    slots: Vec<u32>,
    entries: Vec<(u64, Box<str>, u32)>,
}

impl Cache {
    fn get(&self, id: &str) -> Option<u32> {
        if let Some(n) = small_integer(id) {
            return self.table.get(n).copied().filter(|&i| i != ABSENT);
        }
        if self.slots.is_empty() {
            return None;
        }
        let hash = fnv(id);
        let mask = self.slots.len() - 1;
        let mut slot = hash as usize & mask;
        loop {
            let entry = self.slots[slot];
            if entry == ABSENT {
                return None;
            }
            let (h, key, idx) = &self.entries[entry as usize];
            if *h == hash && **key == *id {
                return Some(*idx);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Records `id → idx` for an id that [`Cache::get`] did not find.
    fn put(&mut self, id: &str, idx: u32) {
        if let Some(n) = small_integer(id) {
            if self.table.len() <= n {
                self.table.resize(n + 1, ABSENT);
            }
            self.table[n] = idx;
            return;
        }
        // Keep the load factor at most one half so probes stay short.
        if (self.entries.len() + 1) * 2 > self.slots.len() {
            self.slots = vec![ABSENT; (self.slots.len() * 2).max(1024)];
            let mask = self.slots.len() - 1;
            for (k, (hash, _, _)) in self.entries.iter().enumerate() {
                let mut slot = *hash as usize & mask;
                while self.slots[slot] != ABSENT {
                    slot = (slot + 1) & mask;
                }
                self.slots[slot] = k as u32;
            }
        }
        let hash = fnv(id);
        let mask = self.slots.len() - 1;
        let mut slot = hash as usize & mask;
        while self.slots[slot] != ABSENT {
            slot = (slot + 1) & mask;
        }
        self.slots[slot] = self.entries.len() as u32;
        self.entries.push((hash, id.into(), idx));
    }
}

/// Resolves user and item ids for one loader run; valid as long as its builder is.
#[derive(Debug, Default)]
pub struct Ids {
    users: Cache,
    items: Cache,
}

impl Ids {
    pub fn user(&mut self, builder: &mut DatasetBuilder, id: &str) -> UserIdx {
        if let Some(idx) = self.users.get(id) {
            return idx;
        }
        let idx = builder.intern_user(id);
        self.users.put(id, idx);
        idx
    }

    pub fn item(&mut self, builder: &mut DatasetBuilder, id: &str) -> ItemIdx {
        if let Some(idx) = self.items.get(id) {
            return idx;
        }
        let idx = builder.intern_item(id);
        self.items.put(id, idx);
        idx
    }

    /// An item already set or interned, without creating one.
    pub fn known_item(&mut self, builder: &DatasetBuilder, id: &str) -> Option<ItemIdx> {
        if let Some(idx) = self.items.get(id) {
            return Some(idx);
        }
        let idx = builder.item_by_id(id)?;
        self.items.put(id, idx);
        Some(idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_integers_only() {
        assert_eq!(small_integer("0"), Some(0));
        assert_eq!(small_integer("1193"), Some(1193));
        for id in ["07", "+7", "-7", "", "7a", "99999999"] {
            assert_eq!(small_integer(id), None, "{id}");
        }
    }

    #[test]
    fn cached_answers_match_the_builder() {
        let mut b = DatasetBuilder::new("t");
        let mut ids = Ids::default();
        let names = ["7", "07", "u1", "u1", "7", "u2", "u1", "07"];
        let got: Vec<u32> = names.iter().map(|n| ids.user(&mut b, n)).collect();
        assert_eq!(got, [0, 1, 2, 2, 0, 3, 2, 1]);
        // Enough string ids to force the probing table to grow several times.
        let first: Vec<u32> = (0..5000).map(|k| ids.user(&mut b, &format!("user-{k}"))).collect();
        let again: Vec<u32> = (0..5000).map(|k| ids.user(&mut b, &format!("user-{k}"))).collect();
        assert_eq!(first, again);
        assert_eq!(ids.known_item(&b, "42"), None);
        let i = ids.item(&mut b, "42");
        assert_eq!(ids.known_item(&b, "42"), Some(i));
        assert_eq!(b.item_by_id("42"), Some(i));
        let d = b.build();
        assert_eq!(d.num_users(), 5004);
        for (k, idx) in first.iter().enumerate() {
            assert_eq!(d.user_by_id(&format!("user-{k}")), Some(*idx));
        }
    }
}

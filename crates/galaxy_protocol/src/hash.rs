//! A fast hasher for the hot maps keyed by ids and sectors.
//!
//! `std`'s SipHash resists hash flooding but costs ~20 ns per 8-byte key;
//! the replication hot path does several lookups per unit per client per
//! tick. Keys here are server-assigned unit ids and sector coordinates (a
//! client can name at most a bounded set of sectors through its view), so a
//! multiply-rotate hash (the `FxHash` idea) is safe and several times faster.
//!
//! A key that is one integer (a unit id) keeps its low bits as the bucket
//! index and takes only hashbrown's 7-bit tag from the mix: ids are handed
//! out in sequence, so units visited in id order (the simulation, the
//! mirror, the journal) touch neighbouring buckets instead of a random
//! cache line each.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A multiply-rotate hasher for integer keys; see the module docs.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdHasher {
    mixed: u64,
    /// The single integer written, while only one was.
    raw: u64,
    writes: u32,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl IdHasher {
    #[inline]
    fn add(&mut self, v: u64) {
        self.mixed = (self.mixed.rotate_left(5) ^ v).wrapping_mul(SEED);
        self.raw = v;
        self.writes += 1;
    }
}

impl Hasher for IdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        if self.writes == 1 {
            // One integer: its own low bits (high half folded in, so id
            // blocks far apart do not share buckets) pick the bucket; the
            // mix gives the top 7 bits, hashbrown's tag.
            const TAG: u64 = 0x7f << 57;
            let low = self.raw ^ (self.raw >> 32);
            return (low & !TAG) | (self.mixed & TAG);
        }
        // Fold the high bits down: hashbrown takes its control bytes from the top.
        self.mixed ^ (self.mixed >> 29)
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(b));
        }
    }

    #[inline]
    fn write_u8(&mut self, v: u8) {
        self.add(u64::from(v));
    }

    #[inline]
    fn write_u16(&mut self, v: u16) {
        self.add(u64::from(v));
    }

    #[inline]
    fn write_u32(&mut self, v: u32) {
        self.add(u64::from(v));
    }

    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.add(v);
    }

    #[inline]
    fn write_i64(&mut self, v: i64) {
        self.add(v as u64);
    }

    #[inline]
    fn write_usize(&mut self, v: usize) {
        self.add(v as u64);
    }
}

/// Builds [`IdHasher`]s.
pub type IdBuildHasher = BuildHasherDefault<IdHasher>;
/// A `HashMap` with [`IdHasher`].
pub type IdHashMap<K, V> = HashMap<K, V, IdBuildHasher>;
/// A `HashSet` with [`IdHasher`].
pub type IdHashSet<K> = HashSet<K, IdBuildHasher>;

/// Keeps a map keyed by unit ids at most half full of live entries.
///
/// Unit ids are never reused: units die and new ones spawn with new ids,
/// so a map of the living leaves a dead slot (tombstone) behind at every
/// removal. The first time those run out in a table more than half full of
/// live entries, the table doubles in one go (for 100,000 units, tens of MB
/// copied within one tick, in the middle of a game). Keeping room for as
/// many entries again as it holds moves that growth to when the entries
/// arrive; churn is then absorbed in place and the map's memory stays flat.
///
/// Call [`ChurnRoom::make_room`] after inserting. It is bookkeeping, not
/// content: any two compare equal.
#[derive(Clone, Copy, Debug, Default)]
pub struct ChurnRoom {
    /// The map's capacity when room was last made.
    room: usize,
}

impl ChurnRoom {
    /// Grows `map` if more than half of the room last made is taken.
    pub fn make_room<K: Eq + std::hash::Hash, V>(&mut self, map: &mut IdHashMap<K, V>) {
        let len = map.len();
        if 2 * len > self.room {
            map.reserve(len);
            self.room = map.capacity();
        }
    }
}

impl PartialEq for ChurnRoom {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for ChurnRoom {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SectorId;

    /// Ids that come and go (the oldest dies, a new one spawns) never make
    /// a map with room made grow after its entries arrived, while the same
    /// churn doubles a plain one; and the room made is no more than the
    /// plain map ends up with.
    #[test]
    fn churn_does_not_grow_a_map_with_room() {
        let (mut roomy, mut plain) = (IdHashMap::default(), IdHashMap::default());
        let mut room = ChurnRoom::default();
        for id in 0..100_000u64 {
            roomy.insert(id, id);
            room.make_room(&mut roomy);
            plain.insert(id, id);
        }
        let (settled, plain_start) = (roomy.capacity(), plain.capacity());
        assert!(settled >= 2 * roomy.len());
        let mut plain_grew = false;
        for id in 100_000..1_000_000u64 {
            roomy.remove(&(id - 100_000));
            roomy.insert(id, id);
            room.make_room(&mut roomy);
            plain.remove(&(id - 100_000));
            plain.insert(id, id);
            plain_grew |= plain.capacity() > plain_start;
            assert!(roomy.capacity() <= settled, "grew at id {id}");
        }
        assert_eq!(roomy.len(), 100_000);
        assert!((900_000..1_000_000).all(|id| roomy[&id] == id));
        assert!(plain_grew, "the plain map doubles under churn");
        assert!(settled <= plain.capacity().max(2 * plain_start));
    }

    #[test]
    fn maps_work_and_sequential_ids_spread() {
        let mut m: IdHashMap<u64, u64> = IdHashMap::default();
        for i in 0..10_000u64 {
            m.insert(i, i * 2);
        }
        assert!((0..10_000u64).all(|i| m[&i] == i * 2));
        let s: IdHashSet<SectorId> = (-50..50).map(|x| SectorId::new(x, -x, 0)).collect();
        assert_eq!(s.len(), 100);
        // Consecutive ids land in different top-7-bit groups (hashbrown's tags).
        let tags: std::collections::BTreeSet<u64> = (0..128u64)
            .map(|i| {
                let mut h = IdHasher::default();
                h.write_u64(i);
                h.finish() >> 57
            })
            .collect();
        assert!(tags.len() > 60, "{} distinct tags", tags.len());
        // ...while their low bits (hashbrown's bucket index) stay in order,
        // so a walk in id order walks neighbouring buckets.
        let hash = |v: u64| {
            let mut h = IdHasher::default();
            h.write_u64(v);
            h.finish()
        };
        assert!((0..4096u64).all(|i| hash(i) & 0xfff == i));
        // Two writes (a sector, a pair) are mixed as before.
        let mut pair = IdHasher::default();
        pair.write_u64(1);
        pair.write_u64(2);
        assert_ne!(pair.finish() & 0xfff, 2);
    }
}

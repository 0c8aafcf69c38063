//! The world's units by id, in id order, stored densely.
//!
//! A tick walks every unit and looks many of them up by id; a `BTreeMap`
//! spends much of that time following node pointers. Here ids and units sit
//! in two parallel vectors sorted by id: a walk is a linear scan and a
//! lookup a binary search over 8-byte ids. New units get growing ids, so an
//! insert is almost always a push; a removed unit leaves a hole until holes
//! are a quarter of the table, then the table is compacted.

use galaxy_protocol::UnitId;

/// Units by id; see the module docs. Iteration is in id order, like the
/// `BTreeMap` it replaces, so the simulation stays deterministic.
#[derive(Clone, Debug)]
pub(crate) struct UnitTable<T> {
    /// Sorted, no duplicates; holes keep their id until compaction.
    ids: Vec<UnitId>,
    slots: Vec<Option<T>>,
    live: usize,
}

impl<T> Default for UnitTable<T> {
    fn default() -> Self {
        Self {
            ids: Vec::new(),
            slots: Vec::new(),
            live: 0,
        }
    }
}

/// Equal when they hold the same units (holes do not count).
impl<T: PartialEq> PartialEq for UnitTable<T> {
    fn eq(&self, other: &Self) -> bool {
        self.live == other.live && self.iter().eq(other.iter())
    }
}

impl<T: Eq> Eq for UnitTable<T> {}

impl<T> UnitTable<T> {
    /// Units held.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    fn index(&self, id: UnitId) -> Option<usize> {
        self.ids.binary_search(&id).ok()
    }

    /// Unit `id`.
    pub(crate) fn get(&self, id: &UnitId) -> Option<&T> {
        self.index(*id).and_then(|i| self.slots[i].as_ref())
    }

    /// Unit `id`, to change.
    pub(crate) fn get_mut(&mut self, id: &UnitId) -> Option<&mut T> {
        self.index(*id).and_then(|i| self.slots[i].as_mut())
    }

    /// True if unit `id` is held.
    pub(crate) fn contains_key(&self, id: &UnitId) -> bool {
        self.get(id).is_some()
    }

    /// Puts unit `id` in, returning the one it replaces.
    pub(crate) fn insert(&mut self, id: UnitId, unit: T) -> Option<T> {
        match self.ids.binary_search(&id) {
            Ok(i) => {
                let old = self.slots[i].replace(unit);
                if old.is_none() {
                    self.live += 1;
                }
                old
            }
            Err(mut i) => {
                // A full table at least an eighth holes drops them rather
                // than doubling: under churn (units dying, new ones with
                // new ids) it stays at the size its live units need, and
                // each compaction frees room for an eighth more inserts.
                if self.slots.len() == self.slots.capacity() && self.compact_holes(8) {
                    i = self.ids.partition_point(|&held| held < id);
                }
                // `i == len` (a new, higher id) is a push.
                self.ids.insert(i, id);
                self.slots.insert(i, Some(unit));
                self.live += 1;
                None
            }
        }
    }

    /// Puts many units in at once (e.g. an import of another server's
    /// units, whose ids may sort anywhere): one sort instead of an insert
    /// in the middle for each. Ids already held are replaced.
    pub(crate) fn extend(&mut self, units: impl IntoIterator<Item = (UnitId, T)>) {
        let mut pending: Vec<(UnitId, T)> = Vec::new();
        for (id, unit) in units {
            if self.ids.last().is_none_or(|&last| id > last) || self.index(id).is_some() {
                self.insert(id, unit);
            } else {
                pending.push((id, unit));
            }
        }
        if pending.is_empty() {
            return;
        }
        let mut all: Vec<(UnitId, Option<T>)> = std::mem::take(&mut self.ids)
            .into_iter()
            .zip(std::mem::take(&mut self.slots))
            .filter(|e| e.1.is_some())
            .collect();
        all.extend(pending.into_iter().map(|(id, u)| (id, Some(u))));
        // Stable: of two entries for one id, the later (newer) wins below.
        all.sort_by_key(|e| e.0);
        self.live = 0;
        for (id, unit) in all {
            if self.ids.last() == Some(&id) {
                *self.slots.last_mut().expect("parallel") = unit;
            } else {
                self.ids.push(id);
                self.slots.push(unit);
                self.live += 1;
            }
        }
    }

    /// Takes unit `id` out.
    pub(crate) fn remove(&mut self, id: &UnitId) -> Option<T> {
        let i = self.index(*id)?;
        let old = self.slots[i].take();
        if old.is_some() {
            self.live -= 1;
            self.compact_if_sparse();
        }
        old
    }

    /// Keeps the units `keep` accepts.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&UnitId, &mut T) -> bool) {
        for (id, slot) in self.ids.iter().zip(self.slots.iter_mut()) {
            if slot.as_mut().is_some_and(|u| !keep(id, u)) {
                *slot = None;
                self.live -= 1;
            }
        }
        self.compact_if_sparse();
    }

    fn compact_if_sparse(&mut self) {
        self.compact_holes(4);
    }

    /// Drops the holes if there are more than a few and more than
    /// `1 / fraction` of the table; true if it did.
    fn compact_holes(&mut self, fraction: usize) -> bool {
        let holes = self.ids.len() - self.live;
        if holes <= 64 || holes * fraction <= self.ids.len() {
            return false;
        }
        let mut keep = self.slots.iter().map(Option::is_some);
        self.ids.retain(|_| keep.next().unwrap_or(false));
        self.slots.retain(Option::is_some);
        true
    }

    /// Every unit, in id order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&UnitId, &T)> {
        self.ids
            .iter()
            .zip(&self.slots)
            .filter_map(|(id, s)| s.as_ref().map(|u| (id, u)))
    }

    /// The table cut into at most `parts` runs of neighbouring ids, each
    /// its ids and its slots (holes are `None`): a tick's units split
    /// between threads without collecting them first.
    pub(crate) fn split_mut(&mut self, parts: usize) -> Vec<(&[UnitId], &mut [Option<T>])> {
        let chunk = self.ids.len().div_ceil(parts.max(1)).max(1);
        self.ids
            .chunks(chunk)
            .zip(self.slots.chunks_mut(chunk))
            .collect()
    }

    /// The units with ids from `first` on, in id order.
    pub(crate) fn iter_from(&self, first: UnitId) -> impl Iterator<Item = (&UnitId, &T)> {
        let start = self.ids.partition_point(|&id| id < first);
        self.ids[start..]
            .iter()
            .zip(&self.slots[start..])
            .filter_map(|(id, s)| s.as_ref().map(|u| (id, u)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use galaxy_protocol::link_model::SplitMix64;
    use std::collections::BTreeMap;

    /// Units dying and new ones arriving with new ids, 50 times over: the
    /// table keeps the capacity it reached at the start instead of doubling
    /// whenever its holes and live units together outgrow it.
    #[test]
    fn churn_does_not_grow_the_table() {
        let mut table: UnitTable<u64> = UnitTable::default();
        // 14,000 fill 16,384 slots: a quarter of holes more do not fit.
        let live = 14_000u64;
        for id in 0..live {
            table.insert(id, id);
        }
        let capacity = table.slots.capacity();
        for id in live..51 * live {
            assert_eq!(table.remove(&(id - live)), Some(id - live));
            table.insert(id, id);
        }
        assert_eq!(table.len(), live as usize);
        assert_eq!(table.slots.capacity(), capacity);
        assert_eq!(table.ids.capacity(), capacity);
        assert!(
            table
                .iter()
                .map(|(id, u)| (*id, *u))
                .eq((50 * live..51 * live).map(|i| (i, i)))
        );
    }

    /// Random inserts (mostly growing ids, some anywhere), removals, batch
    /// extends and retains: the table always holds what a `BTreeMap` holds,
    /// in the same order.
    #[test]
    fn behaves_like_a_btree_map() {
        let mut rng = SplitMix64::new(5);
        let mut table: UnitTable<u64> = UnitTable::default();
        let mut model: BTreeMap<UnitId, u64> = BTreeMap::new();
        let mut next = 1_000u64;
        for step in 0..20_000u64 {
            match rng.below(10) {
                0..=3 => {
                    next += 1 + rng.below(3);
                    assert_eq!(table.insert(next, step), model.insert(next, step));
                }
                4 => {
                    let id = rng.below(next + 10);
                    assert_eq!(table.insert(id, step), model.insert(id, step));
                }
                5..=7 => {
                    let id = rng.below(next + 10);
                    assert_eq!(table.remove(&id), model.remove(&id));
                }
                8 => {
                    let batch: Vec<(UnitId, u64)> = (0..rng.below(20))
                        .map(|k| (rng.below(next + 50), step * 100 + k))
                        .collect();
                    table.extend(batch.iter().copied());
                    model.extend(batch);
                }
                _ => {
                    let m = 2 + rng.below(5);
                    table.retain(|id, _| id % m != 0);
                    model.retain(|id, _| id % m != 0);
                }
            }
            assert_eq!(table.len(), model.len());
            let id = rng.below(next + 10);
            assert_eq!(table.get(&id), model.get(&id));
            if step % 500 == 0 {
                assert!(
                    table
                        .iter()
                        .map(|(k, v)| (*k, *v))
                        .eq(model.iter().map(|(k, v)| (*k, *v)))
                );
                let from = rng.below(next);
                assert!(
                    table
                        .iter_from(from)
                        .map(|(k, _)| *k)
                        .eq(model.range(from..).map(|(k, _)| *k))
                );
                // Split in parts, every unit is visited once, in id order.
                let parts = 1 + rng.below(4) as usize;
                let mut seen = Vec::new();
                for (ids, slots) in table.split_mut(parts) {
                    for (id, v) in ids
                        .iter()
                        .zip(slots)
                        .filter_map(|(i, s)| Some((i, s.as_mut()?)))
                    {
                        *v += 1;
                        seen.push(*id);
                    }
                }
                assert!(seen.iter().copied().eq(model.keys().copied()));
                for v in model.values_mut() {
                    *v += 1;
                }
            }
        }
        assert!(table.iter().map(|(k, v)| (*k, *v)).eq(model.into_iter()));
        // Holes are compacted away.
        assert!(table.ids.len() <= table.len() * 4 / 3 + 65);
    }
}

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
    /// Per slot: its unit is at rest, as its owner marked it through
    /// [`Run::quiet`] (a tick may pass it over). Every change through the
    /// table clears it, so a unit changed since it was marked is never
    /// passed over.
    quiet: Vec<bool>,
    live: usize,
}

/// A run of neighbouring slots of a [`UnitTable`], to update in place on
/// one thread: ids, slots (holes are `None`) and each slot's quiet mark.
pub(crate) struct Run<'a, T> {
    /// The slots' ids, increasing.
    pub(crate) ids: &'a [UnitId],
    /// The units (holes are `None`).
    pub(crate) slots: &'a mut [Option<T>],
    /// Whether each unit was marked at rest; the caller keeps this up to
    /// date for the units it changes.
    pub(crate) quiet: &'a mut [bool],
}

impl<T> Default for UnitTable<T> {
    fn default() -> Self {
        Self {
            ids: Vec::new(),
            slots: Vec::new(),
            quiet: Vec::new(),
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
        let i = self.index(*id)?;
        self.quiet[i] = false;
        self.slots[i].as_mut()
    }

    /// True if unit `id` is held.
    pub(crate) fn contains_key(&self, id: &UnitId) -> bool {
        self.get(id).is_some()
    }

    /// Puts unit `id` in, returning the one it replaces.
    pub(crate) fn insert(&mut self, id: UnitId, unit: T) -> Option<T> {
        match self.ids.binary_search(&id) {
            Ok(i) => {
                self.quiet[i] = false;
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
                self.quiet.insert(i, false);
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
        self.quiet.clear();
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
        self.quiet.resize(self.slots.len(), false);
    }

    /// Takes unit `id` out.
    pub(crate) fn remove(&mut self, id: &UnitId) -> Option<T> {
        let i = self.index(*id)?;
        self.quiet[i] = false;
        let old = self.slots[i].take();
        if old.is_some() {
            self.live -= 1;
            self.compact_if_sparse();
        }
        old
    }

    /// Keeps the units `keep` accepts.
    #[cfg(test)]
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&UnitId, &mut T) -> bool) {
        // `keep` may change any unit.
        self.quiet.fill(false);
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
        // The three vectors are parallel: each held unit moves down with
        // its id and mark.
        let mut kept = 0;
        for i in 0..self.slots.len() {
            if self.slots[i].is_some() {
                self.ids.swap(kept, i);
                self.slots.swap(kept, i);
                self.quiet.swap(kept, i);
                kept += 1;
            }
        }
        self.ids.truncate(kept);
        self.slots.truncate(kept);
        self.quiet.truncate(kept);
        true
    }

    /// Every unit, in id order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&UnitId, &T)> {
        self.ids
            .iter()
            .zip(&self.slots)
            .filter_map(|(id, s)| s.as_ref().map(|u| (id, u)))
    }

    /// The table cut into at most `parts` [`Run`]s of neighbouring ids: a
    /// tick's units split between threads without collecting them first.
    pub(crate) fn split_mut(&mut self, parts: usize) -> Vec<Run<'_, T>> {
        let chunk = self.ids.len().div_ceil(parts.max(1)).max(1);
        self.ids
            .chunks(chunk)
            .zip(self.slots.chunks_mut(chunk))
            .zip(self.quiet.chunks_mut(chunk))
            .map(|((ids, slots), quiet)| Run { ids, slots, quiet })
            .collect()
    }

    /// Clears every quiet mark: the next tick visits every unit.
    #[cfg(test)]
    pub(crate) fn wake_all(&mut self) {
        self.quiet.fill(false);
    }

    /// Units marked quiet.
    #[cfg(test)]
    pub(crate) fn quiet_count(&self) -> usize {
        self.quiet.iter().filter(|&&q| q).count()
    }

    /// Calls `f` with each of `ids` (increasing) and its unit, if held.
    ///
    /// A galloping search over the ids alone finds each one from the last,
    /// so only the slots asked for are read: a tick's changed units
    /// (tens of thousands, spread over the whole table) cost a few id
    /// comparisons each, not a walk over every unit between them.
    pub(crate) fn each_of(&self, ids: &[UnitId], mut f: impl FnMut(UnitId, Option<&T>)) {
        let mut at = 0;
        for &id in ids {
            at += gallop(&self.ids[at..], id);
            let unit = match self.ids.get(at) {
                Some(&held) if held == id => self.slots[at].as_ref(),
                _ => None,
            };
            f(id, unit);
        }
    }
}

/// How many of `sorted` are below `id` (`partition_point`), found by
/// probing 1, 2, 4, ... ahead and then searching the last stride: cheap
/// when the answer is near the start, as it is for the next of a sorted
/// list of wanted ids.
fn gallop(sorted: &[UnitId], id: UnitId) -> usize {
    let mut end = 1;
    while end < sorted.len() && sorted[end] < id {
        end *= 2;
    }
    let start = end / 2;
    let end = end.min(sorted.len());
    start + sorted[start..end].partition_point(|&held| held < id)
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

    /// Marks every live unit quiet through the runs, as a tick does.
    fn quiet_all(table: &mut UnitTable<u64>) {
        for run in table.split_mut(2) {
            for (q, s) in run.quiet.iter_mut().zip(run.slots.iter()) {
                *q = s.is_some();
            }
        }
    }

    /// Whether unit `id` is marked quiet.
    fn is_quiet(table: &UnitTable<u64>, id: UnitId) -> bool {
        table.index(id).is_some_and(|i| table.quiet[i])
    }

    /// A quiet mark lasts until the unit changes through the table: a
    /// change, a replacement or a removal clears it, and compaction and
    /// batch imports keep marks with their units (or clear them), never
    /// moving a mark to another unit.
    #[test]
    fn any_change_clears_the_quiet_mark() {
        let mut table: UnitTable<u64> = UnitTable::default();
        for id in 1..=200 {
            table.insert(id, id);
        }
        quiet_all(&mut table);
        assert!((1..=200).all(|id| is_quiet(&table, id)));
        *table.get_mut(&5).expect("held") += 1;
        table.insert(6, 0);
        assert!(!is_quiet(&table, 5) && !is_quiet(&table, 6) && is_quiet(&table, 7));
        // Removing 100 units leaves holes enough to compact; the marks
        // stay with the survivors.
        for id in (1..=200).filter(|id| id % 2 == 0) {
            table.remove(&id);
        }
        table.insert(1_000, 0);
        assert_eq!(table.ids.len(), table.quiet.len());
        for id in (1..=199).step_by(2) {
            assert_eq!(is_quiet(&table, id), id != 5, "unit {id}");
        }
        assert!(!is_quiet(&table, 1_000));
        // A batch import in the middle rebuilds the table: nobody is quiet.
        table.extend([(2, 2), (4, 4)]);
        assert_eq!(table.ids.len(), table.quiet.len());
        assert!(table.ids.iter().all(|&id| !is_quiet(&table, id)));
        quiet_all(&mut table);
        table.retain(|_, _| true);
        assert!(table.ids.iter().all(|&id| !is_quiet(&table, id)));
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
                // Looked up in one pass: held ids, holes and ids never held.
                let mut wanted: Vec<UnitId> =
                    (0..rng.below(300)).map(|_| rng.below(next + 20)).collect();
                wanted.sort_unstable();
                wanted.dedup();
                let mut found = Vec::new();
                table.each_of(&wanted, |id, u| found.push((id, u.copied())));
                assert!(
                    found
                        .into_iter()
                        .eq(wanted.iter().map(|id| (*id, model.get(id).copied())))
                );
                // Split in parts, every unit is visited once, in id order.
                let parts = 1 + rng.below(4) as usize;
                let mut seen = Vec::new();
                for run in table.split_mut(parts) {
                    assert_eq!(
                        (run.slots.len(), run.quiet.len()),
                        (run.ids.len(), run.ids.len())
                    );
                    for (id, v) in run
                        .ids
                        .iter()
                        .zip(run.slots)
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

//! A priority accumulator that fills a byte budget.
//!
//! Each waiting item gains its weight every [`PriorityAccumulator::fill`];
//! a fill takes critical items first (in arrival order), then normal items
//! by accumulated priority, while they fit the budget. Items not taken keep
//! what they accumulated, so a low-weight item always gets its turn: nothing
//! starves. Taken items leave the accumulator; push them again when they
//! change again.

use std::hash::Hash;

use crate::hash::IdHashMap;

/// How urgently an item must go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PriorityClass {
    /// Ahead of everything else (critical `CombatEvent`s); higher `u8` first.
    Critical(u8),
    /// Ordered by accumulated weight.
    Normal,
}

impl PriorityClass {
    /// Sort key: smaller goes first.
    fn rank(self) -> (u8, u8) {
        match self {
            Self::Critical(urgency) => (0, u8::MAX - urgency),
            Self::Normal => (1, 0),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    class: PriorityClass,
    weight: f32,
    accumulated: f32,
    bytes: usize,
    arrival: u64,
}

/// Chooses which items to send within a byte budget; see the module docs.
#[derive(Clone, Debug)]
pub struct PriorityAccumulator<K> {
    entries: IdHashMap<K, Entry>,
    arrivals: u64,
    order: Vec<(K, Entry)>,
}

impl<K> Default for PriorityAccumulator<K> {
    fn default() -> Self {
        Self {
            entries: IdHashMap::default(),
            arrivals: 0,
            order: Vec::new(),
        }
    }
}

impl<K: Copy + Eq + Hash + Ord> PriorityAccumulator<K> {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or refreshes an item: `weight` is gained per fill while it waits
    /// (e.g. nearness x rate of change), `bytes` its encoded size. A
    /// refreshed item keeps what it accumulated and its arrival order.
    pub fn push(&mut self, key: K, class: PriorityClass, weight: f32, bytes: usize) {
        let weight = if weight.is_finite() {
            weight.max(0.0)
        } else {
            0.0
        };
        let arrival = self.arrivals;
        let e = self.entries.entry(key).or_insert_with(|| Entry {
            class,
            weight,
            accumulated: 0.0,
            bytes,
            arrival,
        });
        if e.arrival == arrival {
            self.arrivals += 1;
        }
        if class.rank() < e.class.rank() {
            e.class = class;
        }
        e.weight = weight;
        e.bytes = bytes;
    }

    /// Forgets an item (e.g. its unit left the view).
    pub fn remove(&mut self, key: &K) {
        self.entries.remove(key);
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if nothing waits.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The waiting items, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = K> + '_ {
        self.entries.keys().copied()
    }

    /// Accumulated priority of a waiting item.
    pub fn accumulated(&self, key: &K) -> Option<f32> {
        self.entries.get(key).map(|e| e.accumulated)
    }

    /// Adds every waiting item's weight to its accumulated priority and
    /// writes all keys into `out` in send order: critical first (most urgent,
    /// then arrival), then normal by accumulated priority (ties: key order).
    /// Nothing is taken out; [`PriorityAccumulator::remove`] what was sent.
    pub fn rank(&mut self, out: &mut Vec<K>) {
        self.accumulate();
        self.ranked_prefix(usize::MAX, out);
    }

    /// One round: adds every waiting item's weight to its accumulated
    /// priority. [`PriorityAccumulator::ranked_prefix`] then reads the order.
    pub fn accumulate(&mut self) {
        for e in self.entries.values_mut() {
            e.accumulated += e.weight;
        }
    }

    /// Writes the first `n` keys of the send order (see
    /// [`PriorityAccumulator::rank`]) into `out`, without accumulating. The
    /// order is total, so a longer prefix starts with the shorter one; it
    /// costs O(items + n log n), so a caller that needs only the head of a
    /// long queue does not sort all of it.
    pub fn ranked_prefix(&mut self, n: usize, out: &mut Vec<K>) {
        fn send_order<K: Ord>((ka, a): &(K, Entry), (kb, b): &(K, Entry)) -> std::cmp::Ordering {
            a.class
                .rank()
                .cmp(&b.class.rank())
                .then_with(|| match a.class {
                    PriorityClass::Critical(_) => a.arrival.cmp(&b.arrival),
                    PriorityClass::Normal => b.accumulated.total_cmp(&a.accumulated),
                })
                .then_with(|| ka.cmp(kb))
        }
        self.order.clear();
        self.order
            .extend(self.entries.iter().map(|(&k, &e)| (k, e)));
        if n == 0 {
            return;
        }
        if n < self.order.len() {
            self.order.select_nth_unstable_by(n - 1, send_order);
            self.order.truncate(n);
        }
        self.order.sort_unstable_by(send_order);
        out.extend(self.order.iter().map(|(k, _)| *k));
    }

    /// Takes the items to send this round into `out` (in send order) and
    /// returns the bytes they use. At most `budget` bytes, except that when
    /// the first item alone is larger than the budget it is taken anyway, so
    /// an oversized item cannot block the queue (overshoot <= one item).
    pub fn fill(&mut self, budget: usize, out: &mut Vec<K>) -> usize {
        let mut ranked = Vec::with_capacity(self.entries.len());
        self.rank(&mut ranked);
        let mut used = 0usize;
        for k in ranked {
            let bytes = self.entries[&k].bytes;
            let first = out.is_empty() && used == 0;
            if used + bytes <= budget || first {
                used += bytes;
                out.push(k);
                self.entries.remove(&k);
            }
        }
        used
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn critical_first_in_arrival_order_then_by_priority() {
        let mut p = PriorityAccumulator::new();
        p.push(1u32, PriorityClass::Normal, 10.0, 10);
        p.push(2, PriorityClass::Critical(0), 0.0, 10);
        p.push(3, PriorityClass::Normal, 1.0, 10);
        p.push(4, PriorityClass::Critical(5), 0.0, 10);
        p.push(5, PriorityClass::Critical(0), 0.0, 10);
        let mut out = Vec::new();
        assert_eq!(p.fill(1000, &mut out), 50);
        // Most urgent critical first, then critical by arrival, then by weight.
        assert_eq!(out, vec![4, 2, 5, 1, 3]);
    }

    #[test]
    fn budget_holds_and_oversized_item_still_moves() {
        let mut p = PriorityAccumulator::new();
        p.push(1u32, PriorityClass::Normal, 1.0, 5000);
        p.push(2, PriorityClass::Normal, 0.5, 10);
        let mut out = Vec::new();
        assert_eq!(p.fill(100, &mut out), 5000);
        assert_eq!(out, vec![1]);
        out.clear();
        assert_eq!(p.fill(100, &mut out), 10);
        assert!(p.is_empty());
    }

    proptest! {
        /// A ranked prefix is the head of the full order, however long.
        #[test]
        fn a_ranked_prefix_is_the_head_of_the_full_order(
            items in proptest::collection::vec((0u8..4, 0.0f32..10.0), 0..60),
            n in 0usize..70,
        ) {
            let mut p = PriorityAccumulator::new();
            for (k, &(c, w)) in items.iter().enumerate() {
                let class = if c == 0 { PriorityClass::Critical(k as u8 % 3) } else { PriorityClass::Normal };
                p.push(k, class, w, 1);
            }
            p.accumulate();
            let (mut all, mut head) = (Vec::new(), Vec::new());
            p.ranked_prefix(usize::MAX, &mut all);
            p.ranked_prefix(n, &mut head);
            prop_assert_eq!(&all[..n.min(all.len())], &head[..]);
        }


        /// Every item re-pushed each round is taken within a bounded number of
        /// rounds, whatever its weight, and no round exceeds its budget.
        #[test]
        fn nothing_starves(weights in proptest::collection::vec(0.01f32..100.0, 1..40), per_round in 1usize..5) {
            let mut p = PriorityAccumulator::new();
            let mut last_sent = vec![0usize; weights.len()];
            let budget = per_round * 100;
            let max_w = weights.iter().cloned().fold(0.0f32, f32::max);
            let min_w = weights.iter().cloned().fold(f32::MAX, f32::min);
            let bound = (weights.len() as f32 * (max_w / min_w + 1.0)).ceil() as usize + 2;
            for round in 1..=bound * 2 {
                for (k, &w) in weights.iter().enumerate() {
                    p.push(k, PriorityClass::Normal, w, 100);
                }
                let mut out = Vec::new();
                let used = p.fill(budget, &mut out);
                prop_assert!(used <= budget);
                for k in out {
                    last_sent[k] = round;
                }
                for &r in last_sent.iter() {
                    prop_assert!(round - r <= bound, "item waited {} rounds", round - r);
                }
            }
        }
    }
}

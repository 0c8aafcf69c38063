//! A deterministic, in-process model of a bad network link, for tests,
//! benches and the bandwidth report (real sockets come with `galaxy_net`).
//!
//! Items sent at a tick arrive after `latency_ticks` plus a random jitter
//! (which reorders them), may be lost, and may arrive twice. Everything is
//! driven by a seeded [`SplitMix64`], so a run is repeatable bit for bit.

/// A small, fast, seedable pseudo-random generator (SplitMix64).
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed; equal seeds give equal sequences.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[0, n)` (0 when `n == 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
        }
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }
}

/// How bad the link is.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkConditions {
    /// Probability an item is lost.
    pub loss: f64,
    /// Probability an item is delivered twice.
    pub duplicate: f64,
    /// Fixed delay in ticks.
    pub latency_ticks: u64,
    /// Extra random delay `0..=jitter_ticks`; items overtake each other.
    pub jitter_ticks: u64,
}

impl LinkConditions {
    /// A perfect link: no loss, no delay.
    pub const PERFECT: Self = Self {
        loss: 0.0,
        duplicate: 0.0,
        latency_ticks: 0,
        jitter_ticks: 0,
    };
}

/// A one-way link carrying items of type `T`; see the module docs.
#[derive(Clone, Debug)]
pub struct LinkModel<T> {
    /// Current conditions (may be changed between sends).
    pub conditions: LinkConditions,
    rng: SplitMix64,
    queue: Vec<(u64, u64, T)>,
    order: u64,
    /// Items handed to [`LinkModel::send`].
    pub sent: u64,
    /// Items the link dropped.
    pub lost: u64,
    /// Extra copies the link delivered.
    pub duplicated: u64,
}

impl<T: Clone> LinkModel<T> {
    /// A link with `conditions`, seeded for repeatability.
    pub fn new(conditions: LinkConditions, seed: u64) -> Self {
        Self {
            conditions,
            rng: SplitMix64::new(seed),
            queue: Vec::new(),
            order: 0,
            sent: 0,
            lost: 0,
            duplicated: 0,
        }
    }

    fn schedule(&mut self, now: u64, item: T) {
        let c = self.conditions;
        let at = now + c.latency_ticks + self.rng.below(c.jitter_ticks + 1);
        self.queue.push((at, self.order, item));
        self.order += 1;
    }

    /// Sends `item` at tick `now`.
    pub fn send(&mut self, now: u64, item: T) {
        self.sent += 1;
        if self.rng.chance(self.conditions.loss) {
            self.lost += 1;
            return;
        }
        if self.rng.chance(self.conditions.duplicate) {
            self.duplicated += 1;
            self.schedule(now, item.clone());
        }
        self.schedule(now, item);
    }

    /// Everything due by tick `now`, in arrival order.
    pub fn deliver(&mut self, now: u64) -> Vec<T> {
        let mut due: Vec<(u64, u64, T)> = Vec::new();
        let mut i = 0;
        while i < self.queue.len() {
            if self.queue[i].0 <= now {
                due.push(self.queue.swap_remove(i));
            } else {
                i += 1;
            }
        }
        due.sort_by_key(|e| (e.0, e.1));
        due.into_iter().map(|e| e.2).collect()
    }

    /// Items still in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_link_delivers_in_order_at_once() {
        let mut l = LinkModel::new(LinkConditions::PERFECT, 1);
        for i in 0..10 {
            l.send(5, i);
        }
        assert_eq!(l.deliver(5), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn lossy_link_is_repeatable_and_roughly_calibrated() {
        let c = LinkConditions {
            loss: 0.1,
            duplicate: 0.05,
            latency_ticks: 2,
            jitter_ticks: 3,
        };
        let run = |seed| {
            let mut l = LinkModel::new(c, seed);
            let mut got = Vec::new();
            for t in 0..2000u64 {
                l.send(t, t);
                got.extend(l.deliver(t));
            }
            got.extend(l.deliver(u64::MAX));
            (got, l.lost)
        };
        let (a, lost) = run(7);
        assert_eq!(run(7).0, a);
        assert!((150..250).contains(&lost), "lost {lost}");
        assert!(a.windows(2).any(|w| w[0] > w[1]), "jitter reorders");
        assert!(a.windows(2).any(|w| w[0] == w[1]), "duplicates happen");
    }
}

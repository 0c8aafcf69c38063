//! Dead reckoning on the sending side: which track each unit is replicated
//! with.
//!
//! A [`DeadReckoner`] keeps, per unit, the track ([`QuantizedUnit`] with a
//! position at an anchor tick and a velocity) that clients extrapolate. Each
//! tick the server shows it every unit's simulated sample; the track stays
//! the same, so nothing is sent for that unit's motion, while the sample is
//! within `threshold_cm` of where the track says the unit is. When it
//! drifts farther (the unit turned, sped up or was pushed), starts or stops,
//! the unit is re-anchored at its true position and velocity. Health, state
//! and target always follow the sample.
//!
//! One reckoner serves every client: the tracks are the replicated state,
//! so a unit's update is the same for every client that saw the same
//! baseline. Clients never see a unit farther than the threshold from the
//! server's position at the tick they draw (given the update arrived).

use crate::hash::IdHashMap;
use crate::position::WorldPos;
use crate::unit::{QuantizedUnit, UnitId, UnitSample, quantize_at};

/// Default largest distance between a unit and its replicated track.
pub const DEFAULT_THRESHOLD_CM: u32 = 5;

/// Tuning of a [`DeadReckoner`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReckonConfig {
    /// Re-anchor a unit once its true position is farther than this from
    /// its track. 0 re-anchors on every move (no dead reckoning).
    pub threshold_cm: u32,
}

impl ReckonConfig {
    /// The rule of [`DeadReckoner`] for a caller that keeps the tracks
    /// itself: the track that follows `prev` (`None`: first sight) for
    /// this sample at `tick`, and whether it is a new anchor. The previous
    /// track (with health, state and target from the sample) is kept while
    /// the sample stays within the threshold of it and still moves (or
    /// still stands), with the same owner and kind.
    pub fn next_track(
        &self,
        prev: Option<&QuantizedUnit>,
        tick: u64,
        sample: &UnitSample,
    ) -> (QuantizedUnit, bool) {
        let fresh = quantize_at(sample, tick);
        let limit = u128::from(self.threshold_cm).pow(2);
        let keep = prev.filter(|prev| {
            prev.velocity().is_zero() == sample.velocity.is_zero()
                && prev.owner() == fresh.owner()
                && prev.kind() == fresh.kind()
                && distance_sq(prev.position_at(tick), sample.position) <= limit
        });
        match keep {
            Some(prev) => (fresh.with_motion(prev.motion()), false),
            None => (fresh, true),
        }
    }
}

impl Default for ReckonConfig {
    fn default() -> Self {
        Self {
            threshold_cm: DEFAULT_THRESHOLD_CM,
        }
    }
}

/// Counters of what a reckoner did, for `NetworkStats` and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReckonerStats {
    /// Samples seen.
    pub observed: u64,
    /// Times a unit got a new track (first sight included).
    pub anchors: u64,
}

/// The replicated track of every unit; see the module docs.
#[derive(Clone, Debug, Default)]
pub struct DeadReckoner {
    config: ReckonConfig,
    units: IdHashMap<UnitId, QuantizedUnit>,
    stats: ReckonerStats,
}

/// Squared distance in cm², saturating.
fn distance_sq(a: WorldPos, b: WorldPos) -> u128 {
    let dx = (i128::from(a.x) - i128::from(b.x)).unsigned_abs();
    let dy = (i128::from(a.y) - i128::from(b.y)).unsigned_abs();
    dx.saturating_mul(dx).saturating_add(dy.saturating_mul(dy))
}

impl DeadReckoner {
    /// A reckoner with no units.
    pub fn new(config: ReckonConfig) -> Self {
        Self {
            config,
            units: IdHashMap::default(),
            stats: ReckonerStats::default(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &ReckonConfig {
        &self.config
    }

    /// What the reckoner has done so far.
    pub fn stats(&self) -> ReckonerStats {
        self.stats
    }

    /// The track for unit `id` given its sample at `tick`: the previous
    /// track (with health, state and target from the sample) while the
    /// sample stays within the threshold of it, else a new one anchored at
    /// `tick`. Call once per unit per tick, ticks increasing.
    pub fn observe(&mut self, id: UnitId, tick: u64, sample: &UnitSample) -> QuantizedUnit {
        let prev = self.units.get(&id).copied();
        let track = self.reckon(prev.as_ref(), tick, sample);
        self.units.insert(id, track);
        track
    }

    /// The rule of [`DeadReckoner::observe`] for a caller that keeps the
    /// tracks itself (e.g. beside other per-unit data): the track that
    /// follows `prev` (`None`: first sight) for this sample.
    pub fn reckon(
        &mut self,
        prev: Option<&QuantizedUnit>,
        tick: u64,
        sample: &UnitSample,
    ) -> QuantizedUnit {
        let (track, anchored) = self.next_track(prev, tick, sample);
        self.count(1, u64::from(anchored));
        track
    }

    /// [`DeadReckoner::reckon`] without counting, for callers that reckon
    /// many units at once on several threads: the track, and whether it is
    /// a new anchor. Add the counts afterwards with [`DeadReckoner::count`].
    pub fn next_track(
        &self,
        prev: Option<&QuantizedUnit>,
        tick: u64,
        sample: &UnitSample,
    ) -> (QuantizedUnit, bool) {
        self.config.next_track(prev, tick, sample)
    }

    /// Adds samples seen and new anchors made by [`DeadReckoner::next_track`].
    pub fn count(&mut self, observed: u64, anchors: u64) {
        self.stats.observed += observed;
        self.stats.anchors += anchors;
    }

    /// The current track of unit `id`.
    pub fn track(&self, id: UnitId) -> Option<&QuantizedUnit> {
        self.units.get(&id)
    }

    /// Forgets a unit that died or left this server.
    pub fn forget(&mut self, id: UnitId) {
        self.units.remove(&id);
    }

    /// Units tracked.
    pub fn len(&self) -> usize {
        self.units.len()
    }

    /// True when no unit is tracked.
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::position::Velocity;
    use crate::unit::UnitState;

    fn at(x: i64, y: i64, vx: i32, vy: i32) -> UnitSample {
        UnitSample {
            owner: 1,
            kind: 0,
            position: WorldPos::new(x, y),
            velocity: Velocity::new(vx, vy),
            health: 100.0,
            state: UnitState::MOVING,
            target: None,
        }
    }

    #[test]
    fn straight_paths_keep_their_track_and_turns_reanchor() {
        let mut r = DeadReckoner::default();
        let first = r.observe(7, 1, &at(0, 0, 400, 0));
        // 25 cm per tick east, exactly on the track: nothing changes.
        for t in 2..50u64 {
            let x = (t as i64 - 1) * 25;
            assert_eq!(r.observe(7, t, &at(x, 0, 400, 0)), first);
        }
        // Drifting 5 cm is allowed; 6 cm re-anchors.
        assert_eq!(r.observe(7, 50, &at(49 * 25, 5, 400, 0)), first);
        let turned = r.observe(7, 51, &at(50 * 25, 6, 0, 400));
        assert_ne!(turned, first);
        assert_eq!(turned.anchor_tick(), 51);
        assert_eq!(turned.position_at(51), WorldPos::new(1250, 6));
        assert_eq!(r.stats().anchors, 2);
    }

    #[test]
    fn starting_and_stopping_reanchor_at_once() {
        let mut r = DeadReckoner::default();
        let rest = r.observe(1, 1, &at(0, 0, 0, 0));
        assert_eq!(rest.anchor_tick(), 0);
        let start = r.observe(1, 2, &at(1, 0, 16, 0));
        assert_eq!(
            (start.anchor_tick(), start.velocity()),
            (2, Velocity::new(16, 0))
        );
        let stop = r.observe(1, 3, &at(2, 0, 0, 0));
        assert_eq!(stop.velocity(), Velocity::ZERO);
        assert_eq!(stop.position_at(100), WorldPos::new(2, 0));
    }

    #[test]
    fn other_fields_follow_the_sample_without_reanchoring() {
        let mut r = DeadReckoner::default();
        let a = r.observe(3, 1, &at(0, 0, 160, 0));
        let hurt = UnitSample {
            health: 40.0,
            state: UnitState::ATTACK_MOVING,
            ..at(10, 0, 160, 0)
        };
        let b = r.observe(3, 2, &hurt);
        assert_eq!(b.motion(), a.motion());
        assert_eq!((b.health(), b.state()), (40, UnitState::ATTACK_MOVING));
        r.forget(3);
        assert!(r.track(3).is_none() && r.is_empty());
    }

    #[test]
    fn zero_threshold_reanchors_every_move() {
        let mut r = DeadReckoner::new(ReckonConfig { threshold_cm: 0 });
        r.observe(1, 1, &at(0, 0, 16, 0));
        // Exactly on the track (1 cm per tick): kept; 1 cm off: re-anchored.
        r.observe(1, 2, &at(1, 0, 16, 0));
        r.observe(1, 3, &at(3, 0, 16, 0));
        assert_eq!(r.stats().anchors, 2);
    }
}

//! The receiving half of acked-baseline delta compression.
//!
//! Keeps, per unit, the states of the last few packets that carried it (the
//! baselines the sender may refer to), applies each `UnitUpdate` atomically
//! (all of it or none), ignores duplicates and out-of-date packets, and
//! produces the [`UpdateAck`]s that let the sender advance its baselines.

use std::collections::VecDeque;

use crate::ack::{Arrival, ReceivedWindow, UpdateAck};
use crate::delta::{DeltaBody, DeltaError};
use crate::hash::IdHashMap;
use crate::message::UnitUpdate;
use crate::sender::DeltaConfig;
use crate::snapshot::UnitSnapshot;
use crate::unit::{QuantizedUnit, UnitId};

/// What a receiver did with an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiveOutcome {
    /// Applied; this many unit entries were recorded.
    Applied(usize),
    /// Already received: ignored.
    Duplicate,
    /// Too old to use (older than the window, or its baselines were already
    /// superseded): ignored and not acknowledged, so the sender treats it as lost.
    Stale,
}

/// Why an update was refused as a whole (nothing of it was applied or acked).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReceiveError {
    /// A delta named a baseline this receiver does not have.
    #[error("unit {unit}: no baseline at tick {tick}")]
    MissingBaseline {
        /// The unit.
        unit: UnitId,
        /// The baseline tick asked for.
        tick: u64,
    },
    /// A delta could not be applied to its baseline.
    #[error(transparent)]
    Delta(#[from] DeltaError),
    /// Unit ids were not strictly increasing.
    #[error("unit ids not strictly increasing")]
    UnorderedIds,
    /// A second, different state for a unit at a tick already recorded.
    #[error("unit {0}: conflicting state for the same tick")]
    Conflict(UnitId),
    /// A tick no server reaches (beyond [`MAX_TICK`]).
    #[error("tick {0} out of range")]
    TickOutOfRange(u64),
    /// A tick farther ahead of the client's clock than it can be.
    #[error("tick {tick} ahead of the latest plausible {allowed}")]
    TickAhead {
        /// The update's tick.
        tick: u64,
        /// The latest tick the caller allowed.
        allowed: u64,
    },
    /// The update would make the receiver hold more units than
    /// [`DeltaConfig::max_units`].
    #[error("more than {0} units")]
    TooManyUnits(usize),
}

impl ReceiveError {
    /// A stable short name per variant, for stats counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MissingBaseline { .. } => "missing_baseline",
            Self::Delta(_) => "bad_delta",
            Self::UnorderedIds => "unordered_ids",
            Self::Conflict(_) => "conflicting_state",
            Self::TickOutOfRange(_) => "tick_out_of_range",
            Self::TickAhead { .. } => "tick_ahead",
            Self::TooManyUnits(_) => "too_many_units",
        }
    }
}

/// The latest tick a receiver accepts: 2^62 ticks is billions of years at
/// any tick rate, and keeps every `tick + window` sum far from overflowing.
pub const MAX_TICK: u64 = 1 << 62;

/// Most removals of units the receiver never had that it remembers (a
/// compact tombstone each: a late whole state of such a unit must not
/// bring it back); more are not remembered.
pub const MAX_TOMBSTONES: usize = 1 << 16;

/// A change in the set or state of units the client sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnitEvent {
    /// A unit appeared.
    Spawned(UnitId),
    /// A visible unit's state changed.
    Changed(UnitId),
    /// A unit left the view or died.
    Despawned(UnitId),
}

/// Counters of what a receiver did, for `NetworkStats` and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReceiverStats {
    /// Updates applied.
    pub applied: u64,
    /// Duplicates ignored.
    pub duplicates: u64,
    /// Out-of-date updates ignored.
    pub stale: u64,
    /// Updates refused with a [`ReceiveError`].
    pub refused: u64,
    /// Removals of unknown units not remembered because [`MAX_TOMBSTONES`]
    /// were held already.
    pub tombstones_dropped: u64,
    /// Times the sequence window was found dragged ahead (an update old by
    /// sequence but newer by tick than anything applied) and resynchronised.
    pub sequence_resyncs: u64,
}

/// One client's reconstruction of the units it sees; see the module docs.
#[derive(Debug)]
pub struct DeltaReceiver<S: UnitSnapshot = QuantizedUnit> {
    config: DeltaConfig,
    /// Per unit: `(tick, state)` ascending by tick; `None` = removed.
    units: IdHashMap<UnitId, VecDeque<(u64, Option<S>)>>,
    /// Units removed before this receiver had them: unit -> removal tick.
    tombstones: IdHashMap<UnitId, u64>,
    window: ReceivedWindow,
    newest_tick: u64,
    pruned_at: u64,
    visible: usize,
    staged: Vec<(UnitId, Option<S>)>,
    events: Vec<UnitEvent>,
    stats: ReceiverStats,
}

/// Where `tick` is in a unit's history (ascending by tick): `Ok(index)`
/// if recorded, else `Err(index)` where it would go. Updates and their
/// baselines are almost always among the newest entries, so the last few
/// are tried first (they share a cache line or two), then a binary search.
fn find_tick<S>(h: &VecDeque<(u64, Option<S>)>, tick: u64) -> Result<usize, usize> {
    const NEWEST: usize = 4;
    for (i, e) in h.iter().enumerate().rev().take(NEWEST) {
        if e.0 == tick {
            return Ok(i);
        }
        if e.0 < tick {
            return Err(i + 1);
        }
    }
    h.binary_search_by_key(&tick, |e| e.0)
}

impl<S: UnitSnapshot> Default for DeltaReceiver<S> {
    fn default() -> Self {
        Self::new(DeltaConfig::default())
    }
}

impl<S: UnitSnapshot> DeltaReceiver<S> {
    /// A receiver that knows nothing yet.
    pub fn new(config: DeltaConfig) -> Self {
        Self {
            config,
            units: IdHashMap::default(),
            tombstones: IdHashMap::default(),
            window: ReceivedWindow::new(),
            newest_tick: 0,
            pruned_at: 0,
            visible: 0,
            staged: Vec::new(),
            events: Vec::new(),
            stats: ReceiverStats::default(),
        }
    }

    /// What the receiver has done so far.
    pub fn stats(&self) -> ReceiverStats {
        self.stats
    }

    fn recorded_at(&self, id: UnitId, tick: u64) -> Option<Option<S>> {
        self.recorded(id, tick).map(|s| s.copied())
    }

    /// Applies one update. Duplicates and packets older than the baseline
    /// window are ignored; a malformed update is refused whole.
    pub fn receive(&mut self, update: &UnitUpdate<S>) -> Result<ReceiveOutcome, ReceiveError> {
        self.receive_by(update, MAX_TICK)
    }

    /// [`DeltaReceiver::receive`], refusing an update stamped after
    /// `latest_allowed`: the caller's clock says the server cannot be that
    /// far yet (one such update would otherwise make every later one look
    /// stale).
    pub fn receive_by(
        &mut self,
        update: &UnitUpdate<S>,
        latest_allowed: u64,
    ) -> Result<ReceiveOutcome, ReceiveError> {
        let refused = if update.timestamp > MAX_TICK {
            Some(ReceiveError::TickOutOfRange(update.timestamp))
        } else if update.timestamp > latest_allowed {
            Some(ReceiveError::TickAhead {
                tick: update.timestamp,
                allowed: latest_allowed,
            })
        } else {
            None
        };
        if let Some(e) = refused {
            self.stats.refused += 1;
            return Err(e);
        }
        let old = update
            .timestamp
            .saturating_add(self.config.baseline_window_ticks)
            < self.newest_tick;
        match self.window.check(update.sequence) {
            Arrival::Duplicate => {
                self.stats.duplicates += 1;
                return Ok(ReceiveOutcome::Duplicate);
            }
            // A sender's sequences and ticks rise together: old by sequence
            // yet newer by tick means one bogus sequence dragged the window
            // ahead; without this every later update would look stale.
            Arrival::Stale if update.timestamp > self.newest_tick => {
                self.window.resync();
                self.stats.sequence_resyncs += 1;
            }
            Arrival::Stale => {
                self.stats.stale += 1;
                return Ok(ReceiveOutcome::Stale);
            }
            Arrival::New if old => {
                self.stats.stale += 1;
                return Ok(ReceiveOutcome::Stale);
            }
            Arrival::New => {}
        }
        match self.stage(update) {
            Ok(true) => {}
            Ok(false) => {
                self.stats.stale += 1;
                return Ok(ReceiveOutcome::Stale);
            }
            Err(e) => {
                self.stats.refused += 1;
                return Err(e);
            }
        }
        let tick = update.timestamp;
        let staged = std::mem::take(&mut self.staged);
        for &(id, state) in &staged {
            self.record(id, tick, state);
        }
        let n = staged.len();
        self.staged = staged;
        self.window.insert(update.sequence);
        self.stats.applied += 1;
        if tick > self.newest_tick {
            self.newest_tick = tick;
            self.maybe_prune();
        }
        Ok(ReceiveOutcome::Applied(n))
    }

    /// Checks every delta of `update` and computes the new states into
    /// `staged`. `Ok(false)`: a baseline was already dropped because newer
    /// states of that unit arrived first, so the update is stale.
    fn stage(&mut self, update: &UnitUpdate<S>) -> Result<bool, ReceiveError> {
        self.staged.clear();
        let mut prev: Option<UnitId> = None;
        let mut new_units = 0usize;
        for d in &update.updates {
            if prev.is_some_and(|p| p >= d.unit_id) {
                return Err(ReceiveError::UnorderedIds);
            }
            prev = Some(d.unit_id);
            let base = match d.body {
                DeltaBody::Changes { baseline_tick, .. } => {
                    match self.recorded_at(d.unit_id, baseline_tick) {
                        Some(Some(base)) => Some(base),
                        _ if self.dropped(d.unit_id, baseline_tick) => return Ok(false),
                        _ => {
                            return Err(ReceiveError::MissingBaseline {
                                unit: d.unit_id,
                                tick: baseline_tick,
                            });
                        }
                    }
                }
                _ => None,
            };
            let new = d.apply(base.as_ref())?;
            if self
                .recorded_at(d.unit_id, update.timestamp)
                .is_some_and(|s| s != new)
            {
                return Err(ReceiveError::Conflict(d.unit_id));
            }
            if new.is_some() && !self.units.contains_key(&d.unit_id) {
                new_units += 1;
                if self.units.len() + new_units > self.config.max_units {
                    return Err(ReceiveError::TooManyUnits(self.config.max_units));
                }
            }
            self.staged.push((d.unit_id, new));
        }
        Ok(true)
    }

    /// True if the state of `id` at `tick` may have been recorded and then
    /// dropped: pruned as too old, or pushed out of a full history by newer
    /// states that overtook this update on the network.
    fn dropped(&self, id: UnitId, tick: u64) -> bool {
        if tick < self.prune_horizon() {
            return true;
        }
        self.units.get(&id).is_some_and(|h| {
            h.len() >= self.config.history_cap.max(2) && h.front().is_some_and(|e| tick < e.0)
        })
    }

    fn prune_horizon(&self) -> u64 {
        self.newest_tick
            .saturating_sub(self.config.baseline_window_ticks.saturating_mul(2))
    }

    fn record(&mut self, id: UnitId, tick: u64, state: Option<S>) {
        if !self.units.contains_key(&id) {
            let tomb = self.tombstones.remove(&id);
            if state.is_none() {
                // Removed before we had it (its whole state was lost or is
                // late): remember only that, compactly, and no more than
                // so many.
                let newest = tomb.map_or(tick, |t| t.max(tick));
                if self.tombstones.len() < MAX_TOMBSTONES {
                    self.tombstones.insert(id, newest);
                } else {
                    self.stats.tombstones_dropped += 1;
                }
                return;
            }
            if let Some(t) = tomb {
                // A late state of a unit already removed stays removed.
                self.units.entry(id).or_default().push_back((t, None));
            }
        }
        let h = self.units.entry(id).or_default();
        let before = h.back().and_then(|e| e.1);
        match find_tick(h, tick) {
            Ok(_) => return, // same state already recorded (checked in `stage`)
            Err(i) => h.insert(i, (tick, state)),
        }
        while h.len() > self.config.history_cap.max(2) {
            h.pop_front();
        }
        let after = h.back().and_then(|e| e.1);
        let event = match (before, after) {
            (None, Some(_)) => Some(UnitEvent::Spawned(id)),
            (Some(_), None) => Some(UnitEvent::Despawned(id)),
            (Some(a), Some(b)) if a != b => Some(UnitEvent::Changed(id)),
            _ => None,
        };
        match event {
            Some(UnitEvent::Spawned(_)) => self.visible += 1,
            Some(UnitEvent::Despawned(_)) => self.visible -= 1,
            _ => {}
        }
        self.events.extend(event);
    }

    /// Drops history the sender can no longer refer to, except each unit's
    /// newest entry. An update is accepted up to one window behind the newest
    /// tick and its baselines are up to one window older still, so two
    /// windows are kept.
    fn maybe_prune(&mut self) {
        let window = self.config.baseline_window_ticks;
        if self.newest_tick < self.pruned_at.saturating_add(window.div_ceil(4).max(1)) {
            return;
        }
        self.pruned_at = self.newest_tick;
        let horizon = self.prune_horizon();
        self.units.retain(|_, h| {
            while h.len() > 1 && h.front().is_some_and(|e| e.0 < horizon) {
                h.pop_front();
            }
            // A removal older than the window can no longer be contradicted.
            !(h.len() == 1 && h[0].1.is_none() && h[0].0 < horizon)
        });
        self.tombstones.retain(|_, &mut t| t >= horizon);
    }

    /// The acknowledgements to send for everything received since the last call.
    pub fn take_acks(&mut self) -> Vec<UpdateAck> {
        self.window.take_acks()
    }

    /// The current cumulative ack, to repeat when nothing new arrived.
    pub fn current_ack(&self) -> Option<UpdateAck> {
        self.window.current_ack()
    }

    /// Spawn/change/despawn events since the last call.
    pub fn drain_events(&mut self) -> std::vec::Drain<'_, UnitEvent> {
        self.events.drain(..)
    }

    /// The newest state of unit `id`, if visible.
    pub fn unit(&self, id: UnitId) -> Option<&S> {
        self.units.get(&id)?.back()?.1.as_ref()
    }

    /// The state of unit `id` that holds at server tick `tick`: the newest
    /// recorded at or before it (or the oldest kept, if all are newer).
    /// `None` if the unit is unknown or was removed by then.
    pub fn state_at(&self, id: UnitId, tick: u64) -> Option<&S> {
        let h = self.units.get(&id)?;
        let i = find_tick(h, tick).map_or_else(|i| i, |i| i + 1);
        h.get(i.saturating_sub(1))?.1.as_ref()
    }

    /// Where unit `id` is at server tick `tick` as this client knows it:
    /// [`DeltaReceiver::state_at`] dead-reckoned to `tick`. This is what a
    /// renderer drawing the world at that tick shows.
    pub fn position_at(&self, id: UnitId, tick: u64) -> Option<crate::WorldPos> {
        self.state_at(id, tick).map(|u| u.position_at(tick))
    }

    /// Tick of the newest state held for unit `id` (when this client last
    /// heard of it), if any is kept.
    pub fn updated_at(&self, id: UnitId) -> Option<u64> {
        self.units.get(&id)?.back().map(|e| e.0)
    }

    /// Tick of the oldest state still held for unit `id`: older ones were
    /// dropped (too old, or pushed out of a full history). For diagnostics
    /// and load tests.
    pub fn oldest_kept(&self, id: UnitId) -> Option<u64> {
        self.units.get(&id)?.front().map(|e| e.0)
    }

    /// Every visible unit with its newest state.
    pub fn units(&self) -> impl Iterator<Item = (UnitId, &S)> {
        self.units
            .iter()
            .filter_map(|(&id, h)| h.back().and_then(|e| e.1.as_ref()).map(|u| (id, u)))
    }

    /// A digest of every unit this receiver holds, with the ack of exactly
    /// the updates it has received (see [`crate::verify`]); `None` before
    /// the first update.
    pub fn digest(&self) -> Option<crate::verify::StateDigest> {
        let ack = self.current_ack()?;
        let (units, buckets) = crate::verify::digest_units(self.units(), self.newest_tick);
        Some(crate::verify::StateDigest {
            ack,
            tick: self.newest_tick,
            units,
            buckets,
        })
    }

    /// Replaces the newest state of unit `id` without the server knowing:
    /// a fault injector for tests of state verification (a corrupted
    /// replica). False if the unit is not held.
    pub fn overwrite_newest(&mut self, id: UnitId, state: S) -> bool {
        match self.units.get_mut(&id).and_then(|h| h.back_mut()) {
            Some((_, Some(s))) => {
                *s = state;
                true
            }
            _ => false,
        }
    }

    /// Number of visible units.
    pub fn visible_count(&self) -> usize {
        self.visible
    }

    /// The state recorded for unit `id` at `tick`, if still kept:
    /// `Some(None)` is a recorded removal (a tombstone too, for a unit
    /// removed before this receiver had it). For tests and diagnostics.
    pub fn recorded(&self, id: UnitId, tick: u64) -> Option<Option<&S>> {
        match self.units.get(&id) {
            Some(h) => find_tick(h, tick).ok().map(|i| h[i].1.as_ref()),
            None => (self.tombstones.get(&id) == Some(&tick)).then_some(None),
        }
    }

    /// Newest server tick seen.
    pub fn newest_tick(&self) -> u64 {
        self.newest_tick
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link_model::SplitMix64;

    /// A unit updated more often than its history holds: the oldest state
    /// kept moves on, and the dropped ones are no longer recorded.
    #[test]
    fn oldest_kept_follows_a_full_history() {
        let config = DeltaConfig {
            history_cap: 4,
            ..DeltaConfig::default()
        };
        let mut tx: crate::DeltaSender = crate::DeltaSender::new(config);
        let mut rx: DeltaReceiver = DeltaReceiver::new(config);
        assert_eq!(rx.oldest_kept(7), None);
        for tick in 1..=10u64 {
            let sample = crate::UnitSample {
                owner: 1,
                kind: 0,
                position: crate::WorldPos::new(tick as i64 * 100, 0),
                velocity: crate::Velocity::ZERO,
                health: 100.0,
                state: crate::UnitState::IDLE,
                target: None,
            };
            tx.set_unit(7, crate::quantize(&sample));
            for update in tx.write_updates(tick) {
                rx.receive(&update).expect("in order");
                for ack in rx.take_acks() {
                    tx.receive_ack(&ack);
                }
            }
        }
        assert_eq!(rx.oldest_kept(7), Some(7));
        assert_eq!(rx.updated_at(7), Some(10));
        assert!(rx.recorded(7, 6).is_none());
        assert!(rx.recorded(7, 7).is_some());
    }

    /// The newest-first lookup answers as a binary search does, for ticks
    /// before, among, between and after the recorded ones.
    #[test]
    fn find_tick_matches_a_binary_search() {
        let mut rng = SplitMix64::new(17);
        for _ in 0..2_000 {
            let mut ticks = Vec::new();
            let mut tick = rng.below(10);
            for _ in 0..rng.below(40) {
                tick += 1 + rng.below(3);
                ticks.push(tick);
            }
            // The older half pushed at the front: wrapped storage, as a
            // history that pops at the front has.
            let (old, new) = ticks.split_at(ticks.len() / 2);
            let mut h: VecDeque<(u64, Option<QuantizedUnit>)> = VecDeque::new();
            h.extend(new.iter().map(|&t| (t, None)));
            for &t in old.iter().rev() {
                h.push_front((t, None));
            }
            assert!(h.iter().map(|e| e.0).eq(ticks.iter().copied()));
            for t in 0..tick + 3 {
                assert_eq!(find_tick(&h, t), h.binary_search_by_key(&t, |e| e.0));
            }
        }
    }
}

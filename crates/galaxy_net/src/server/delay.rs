//! Spectator broadcast delay (`NetworkConfig::spectator_delay_secs`): a
//! copy of the replicated world `delay` ticks behind the live one, which
//! spectators are replicated from, and their combat events held back as
//! long. A tournament shows its games 30 s late so that nobody watching can
//! scout for a player.
//!
//! The live Tag phase records each tick's changes (new snapshots, sector
//! moves, departures) as they are applied; the copy applies them again
//! once they are `delay` ticks old, to its own units and [`SectorIndex`].
//! A delayed spectator is then replicated exactly like a player (deltas
//! against what it acknowledged, within its budget), from the copy, with
//! update ticks `delay` behind, so its client shows a consistent past.
//! The cost is the memory of `delay` ticks of changes and applying each
//! change twice; players are not affected.

use std::collections::VecDeque;

use bevy::prelude::Resource;
use galaxy_protocol::{ChurnRoom, CombatEvent, IdHashMap, UnitId, UnitSnapshot};

use super::units::{Change, Departed, Mirrored, UnitsView, apply_change, remove_unit};
use crate::interest::SectorIndex;

/// Longest spectator delay a server takes, in seconds: what it holds is
/// every change of that long.
pub const MAX_SPECTATOR_DELAY_SECS: f64 = 600.0;

/// One live tick's changes: `None` = the unit left.
type Batch<S> = (u64, Vec<(UnitId, Option<Change<S>>)>);

/// The world as delayed spectators see it, and the changes on their way to it.
pub(crate) struct Delayed<S> {
    /// Ticks behind the live world.
    delay: u64,
    /// Changes recorded and not yet applied, oldest first.
    pending: VecDeque<Batch<S>>,
    units: IdHashMap<UnitId, Mirrored<S>>,
    room: ChurnRoom,
    index: SectorIndex,
    /// The live tick the copy shows (`None` until the server is `delay`
    /// ticks old).
    shows: Option<u64>,
    /// Units that left the copy on its last advance, with their sector.
    departed: Vec<Departed>,
}

/// What a delayed spectator is replicated from this tick.
pub(crate) struct DelayedView<'a, S> {
    /// The delayed units.
    pub(crate) units: UnitsView<'a, S>,
    /// Their sectors and recent changes.
    pub(crate) index: &'a SectorIndex,
    /// The (live) tick they are the state of.
    pub(crate) tick: u64,
}

impl<S: UnitSnapshot> Delayed<S> {
    pub(crate) fn new(delay: u64) -> Self {
        Self {
            delay,
            pending: VecDeque::new(),
            units: IdHashMap::default(),
            room: ChurnRoom::default(),
            index: SectorIndex::default(),
            shows: None,
            departed: Vec::new(),
        }
    }

    /// Notes a change applied to the live world at `tick` (`None`: the
    /// unit left), in the order the live world applied it.
    pub(crate) fn record(&mut self, tick: u64, id: UnitId, change: Option<Change<S>>) {
        match self.pending.back_mut() {
            Some((t, batch)) if *t == tick => batch.push((id, change)),
            _ => self.pending.push_back((tick, vec![(id, change)])),
        }
    }

    /// Brings the copy to live tick `now - delay`: applies every change
    /// recorded at or before it.
    pub(crate) fn advance(&mut self, now: u64) {
        self.departed.clear();
        let Some(shows) = now.checked_sub(self.delay) else {
            return;
        };
        self.shows = Some(shows);
        self.index.begin_tick(shows);
        while self.pending.front().is_some_and(|(t, _)| *t <= shows) {
            let Some((_, batch)) = self.pending.pop_front() else {
                break;
            };
            for (id, change) in batch {
                match change {
                    Some(change) => {
                        apply_change(&mut self.units, &mut self.room, &mut self.index, id, change)
                    }
                    None => {
                        if let Some(sector) = remove_unit(&mut self.units, &mut self.index, id) {
                            self.departed.push((id, sector));
                        }
                    }
                }
            }
        }
    }

    /// What delayed spectators are replicated from, once the copy shows a tick.
    pub(crate) fn view(&self) -> Option<DelayedView<'_, S>> {
        Some(DelayedView {
            units: UnitsView(&self.units),
            index: &self.index,
            tick: self.shows?,
        })
    }

    /// The units that left on the last advance, and the copy's units (a
    /// unit that left and came back on another entity is in both).
    pub(crate) fn departed_and_units(&self) -> (&[Departed], &IdHashMap<UnitId, Mirrored<S>>) {
        (&self.departed, &self.units)
    }

    /// Changes recorded and not yet shown.
    #[cfg(test)]
    fn pending_changes(&self) -> usize {
        self.pending.iter().map(|(_, b)| b.len()).sum()
    }
}

/// The server's spectator delay, fixed when the server plugin is built
/// (as its tick rate is), and the combat events held back for delayed
/// spectators.
#[derive(Resource, Default, Debug)]
pub(crate) struct SpectatorDelay {
    /// Ticks delayed spectators are behind (0: none are).
    pub(crate) ticks: u64,
    /// `(live tick, event)`, oldest first.
    pub(crate) events: VecDeque<(u64, CombatEvent)>,
}

/// Ticks a delay of `secs` is at `rate` Hz (0: no delay).
pub(crate) fn delay_ticks(secs: f64, rate: f64) -> u64 {
    (secs.clamp(0.0, MAX_SPECTATOR_DELAY_SECS) * rate).round() as u64
}

#[cfg(test)]
mod tests {
    use galaxy_protocol::{
        QuantizedUnit, SectorId, UnitSample, UnitState, Velocity, WorldPos, quantize,
    };

    use super::*;

    fn unit(x: i64) -> (SectorId, QuantizedUnit) {
        let position = WorldPos::new(x, 0);
        let u = quantize(&UnitSample {
            owner: 1,
            kind: 0,
            position,
            velocity: Velocity::ZERO,
            health: 100.0,
            state: UnitState::IDLE,
            target: None,
        });
        (SectorId::at(position), u)
    }

    #[test]
    fn the_copy_shows_each_change_delay_ticks_late_and_in_order() {
        let mut d = Delayed::<QuantizedUnit>::new(10);
        let (s0, u0) = unit(0);
        let (s1, u1) = unit(5_000_000);
        d.record(3, 7, Some(Change::New(s0, u0)));
        d.record(5, 7, Some(Change::Changed(s1, u1)));
        d.record(8, 7, None);
        d.advance(9);
        assert!(d.view().is_none(), "before the server is 10 ticks old");
        d.advance(12);
        assert!(d.view().unwrap().units.snapshot(7).is_none());
        d.advance(13);
        let v = d.view().unwrap();
        assert_eq!((v.tick, v.units.snapshot(7)), (3, Some(&u0)));
        assert_eq!(v.index.sector_of(7), Some(s0));
        d.advance(17);
        let v = d.view().unwrap();
        assert_eq!(
            (v.units.snapshot(7), v.index.sector_of(7)),
            (Some(&u1), Some(s1))
        );
        assert_eq!(d.pending_changes(), 1);
        d.advance(18);
        assert_eq!(d.departed_and_units().0, &[(7, Some(s1))]);
        assert!(d.view().unwrap().units.snapshot(7).is_none());
        assert_eq!(d.pending_changes(), 0);
    }

    #[test]
    fn the_delay_is_bounded() {
        assert_eq!(delay_ticks(30.0, 20.0), 600);
        assert_eq!(delay_ticks(0.0, 20.0), 0);
        assert_eq!(delay_ticks(1e9, 20.0), 12_000);
    }
}

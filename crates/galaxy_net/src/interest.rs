//! Where units are and how busy each place is: the sector index kept by the
//! Tag systems, per-sector activity (the design's 10 / 20 / 60 Hz levels)
//! and recent changes (so a client's update costs what changed, not what
//! exists), and the sectors a client's view is interested in.

use std::collections::VecDeque;

use bevy::prelude::Resource;
use galaxy_protocol::{
    ChurnRoom, IdHashMap, IdHashSet, SECTOR_SIZE_CM, SectorId, UnitId, WorldPos, WorldRect,
};

/// Most scale-0 sectors in one client's near interest (a 20 km x 20 km view).
pub const MAX_NEAR_SECTORS: u128 = 400;

/// How busy a sector is (the design's `ActivityLevel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ActivityLevel {
    /// Almost nothing changes: 10 Hz.
    Low,
    /// Some units change every tick: 20 Hz.
    Medium,
    /// A battle: 60 Hz (or every tick if the server ticks slower).
    High,
}

impl ActivityLevel {
    /// The design's update rate for this level.
    pub fn rate_hz(self) -> f32 {
        match self {
            Self::Low => 10.0,
            Self::Medium => 20.0,
            Self::High => 60.0,
        }
    }

    /// From the average number of units changing per tick.
    pub fn from_changes_per_tick(changes: f32) -> Self {
        if changes >= 20.0 {
            Self::High
        } else if changes >= 0.5 {
            Self::Medium
        } else {
            Self::Low
        }
    }
}

/// Ticks between updates of a sector at `level` on a server ticking at
/// `sim_hz`; sectors in the far ring of a view go four times less often.
pub fn interval_ticks(level: ActivityLevel, sim_hz: f32, far: bool) -> u64 {
    let base = (sim_hz / level.rate_hz()).ceil().max(1.0) as u64;
    if far { base * 4 } else { base }
}

#[derive(Clone, Copy, Debug, Default)]
struct Activity {
    changed_at: u64,
    this_tick: u32,
    average: f32,
}

/// Ticks of per-sector change history kept: a client whose last update of a
/// sector is at most this old gets only what changed since; older (or
/// never), the whole sector.
pub const CHANGE_LOG_TICKS: u64 = 16;

/// A unit entering or leaving a scale-0 sector this tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SectorMove {
    /// The unit.
    pub unit: UnitId,
    /// Where it was (`None`: it is new).
    pub from: Option<SectorId>,
    /// Where it is now (`None`: it is gone).
    pub to: Option<SectorId>,
}

/// Which units are in which scale-0 sector, how busy each sector is, and
/// which units' replicated state changed there lately.
#[derive(Resource, Default)]
pub struct SectorIndex {
    units: IdHashMap<SectorId, IdHashSet<UnitId>>,
    sector_of: IdHashMap<UnitId, SectorId>,
    /// Room in `sector_of` for units dying and spawning (see [`ChurnRoom`]).
    room: ChurnRoom,
    activity: IdHashMap<SectorId, Activity>,
    /// Per sector, `(tick, unit)` of recent changes, oldest first.
    log: IdHashMap<SectorId, VecDeque<(u64, UnitId)>>,
    moves: Vec<SectorMove>,
    tick: u64,
}

impl SectorIndex {
    /// Units currently in `sector` (at scale 0, or any coarser scale up to 4).
    pub fn units_in(&self, sector: &SectorId) -> impl Iterator<Item = UnitId> + '_ {
        scale0_cells(sector)
            .into_iter()
            .flat_map(|s| self.units.get(&s).into_iter().flatten().copied())
    }

    /// Units whose replicated state changed, or that entered, in the scale-0
    /// `sector` after tick `since` (a unit may appear more than once), or
    /// `None` if that is older than the history kept.
    pub fn changed_since(
        &self,
        sector: &SectorId,
        since: u64,
    ) -> Option<impl Iterator<Item = UnitId> + '_> {
        if !self.remembers(since) {
            return None;
        }
        let log = self.log.get(sector);
        let start = log.map_or(0, |l| l.partition_point(|e| e.0 <= since));
        Some(
            log.into_iter()
                .flat_map(move |l| l.range(start..))
                .map(|e| e.1),
        )
    }

    /// True if changes since tick `since` are still in the history kept
    /// ([`SectorIndex::changed_since`] has them); else a client last updated
    /// then needs whole sectors.
    pub fn remembers(&self, since: u64) -> bool {
        since.saturating_add(CHANGE_LOG_TICKS) >= self.tick
    }

    /// Units that entered or left a sector this tick.
    pub fn moves(&self) -> &[SectorMove] {
        &self.moves
    }

    /// The sector a unit is in.
    pub fn sector_of(&self, id: UnitId) -> Option<SectorId> {
        self.sector_of.get(&id).copied()
    }

    /// How busy `sector` has been lately (the busiest of its scale-0 cells).
    pub fn activity(&self, sector: &SectorId) -> ActivityLevel {
        let busiest = scale0_cells(sector)
            .iter()
            .filter_map(|s| self.activity.get(s))
            .map(|a| a.average)
            .fold(0.0, f32::max);
        ActivityLevel::from_changes_per_tick(busiest)
    }

    /// The last tick at which a unit in `sector` changed, entered or left.
    pub fn changed_at(&self, sector: &SectorId) -> u64 {
        scale0_cells(sector)
            .iter()
            .filter_map(|s| self.activity.get(s))
            .map(|a| a.changed_at)
            .max()
            .unwrap_or(0)
    }

    /// Starts counting changes for `tick`, folding the previous ticks into
    /// the averages and forgetting history older than [`CHANGE_LOG_TICKS`].
    pub(crate) fn begin_tick(&mut self, tick: u64) {
        if tick <= self.tick {
            return;
        }
        let elapsed = (tick - self.tick).min(64) as i32;
        self.tick = tick;
        self.moves.clear();
        let units = &self.units;
        self.activity.retain(|sector, a| {
            // One step with this tick's count, then decay for skipped ticks.
            a.average = a.average * 0.8 + a.this_tick as f32 * 0.2;
            a.average *= 0.8f32.powi(elapsed - 1);
            a.this_tick = 0;
            a.average > 0.01 || units.get(sector).is_some_and(|u| !u.is_empty())
        });
        let horizon = tick.saturating_sub(CHANGE_LOG_TICKS);
        self.log.retain(|_, l| {
            while l.front().is_some_and(|e| e.0 < horizon) {
                l.pop_front();
            }
            !l.is_empty()
        });
    }

    /// Records that something in `sector` changed at the current tick
    /// (`unit`: whose replicated state changed or who entered).
    fn touch(&mut self, sector: SectorId, unit: Option<UnitId>) {
        let a = self.activity.entry(sector).or_default();
        a.changed_at = self.tick;
        a.this_tick += 1;
        if let Some(id) = unit {
            self.log
                .entry(sector)
                .or_default()
                .push_back((self.tick, id));
        }
    }

    /// Puts a unit in `sector` (moving it from its old one); nothing
    /// happens if it is there already.
    pub(crate) fn place(&mut self, id: UnitId, sector: SectorId) {
        let from = self.sector_of.insert(id, sector);
        if from == Some(sector) {
            return;
        }
        match from {
            Some(old) => self.take_out(id, old),
            None => self.room.make_room(&mut self.sector_of),
        }
        self.units.entry(sector).or_default().insert(id);
        self.touch(sector, Some(id));
        self.moves.push(SectorMove {
            unit: id,
            from,
            to: Some(sector),
        });
    }

    /// Records that unit `id`'s replicated state changed this tick.
    pub(crate) fn changed(&mut self, id: UnitId) {
        if let Some(sector) = self.sector_of(id) {
            self.touch(sector, Some(id));
        }
    }

    /// Removes `id` from `sector`'s set, dropping the set when it empties
    /// (so the index does not grow with every sector ever visited).
    fn take_out(&mut self, id: UnitId, sector: SectorId) {
        if let Some(set) = self.units.get_mut(&sector) {
            set.remove(&id);
            if set.is_empty() {
                self.units.remove(&sector);
            }
        }
        self.touch(sector, None);
    }

    /// Forgets a unit that died.
    pub(crate) fn remove(&mut self, id: UnitId) {
        if let Some(old) = self.sector_of.remove(&id) {
            self.take_out(id, old);
            self.moves.push(SectorMove {
                unit: id,
                from: Some(old),
                to: None,
            });
        }
    }
}

/// Coarsest scale [`SectorIndex::units_in`] accepts (a 16 km sector = 256 cells).
pub const MAX_INDEX_SCALE: u8 = 4;

/// The scale-0 sectors inside `sector` (itself at scale 0; none above [`MAX_INDEX_SCALE`]).
fn scale0_cells(sector: &SectorId) -> Vec<SectorId> {
    if sector.scale == 0 {
        return vec![*sector];
    }
    if sector.scale > MAX_INDEX_SCALE {
        return Vec::new();
    }
    sector.children().flat_map(|c| scale0_cells(&c)).collect()
}

/// The sectors a client with a given view receives: the scale-0 sectors
/// under the view plus one ring at full rate, and scale-1 sectors out to
/// three times the view at a quarter of the rate (the rings `interest` computes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Interest {
    near: IdHashSet<SectorId>,
    far: IdHashSet<SectorId>,
}

impl Interest {
    /// The interest of a client looking at `view`.
    pub fn of(view: WorldRect) -> Self {
        let (near, far) = interest(view);
        Self { near, far }
    }

    /// True if units in the scale-0 `sector` are sent to such a client.
    pub fn contains(&self, sector: SectorId) -> bool {
        in_interest(sector, &self.near, &self.far)
    }

    /// True if a unit at `pos` is sent to such a client.
    pub fn contains_pos(&self, pos: WorldPos) -> bool {
        self.contains(SectorId::at(pos))
    }

    /// The scale-0 sectors at full rate.
    pub fn near(&self) -> impl Iterator<Item = SectorId> + '_ {
        self.near.iter().copied()
    }

    /// The scale-1 sectors at a quarter of the rate.
    pub fn far(&self) -> impl Iterator<Item = SectorId> + '_ {
        self.far.iter().copied()
    }
}

/// True if a unit in the scale-0 `sector` is inside the interest `(near, far)`.
pub fn in_interest(
    sector: SectorId,
    near: &IdHashSet<SectorId>,
    far: &IdHashSet<SectorId>,
) -> bool {
    near.contains(&sector) || sector.parent().is_some_and(|p| far.contains(&p))
}

/// A client's interest: the scale-0 sectors under its view plus one ring
/// (`near`, full rate), and scale-1 (2 km) sectors out to three times the
/// view (`far`, a quarter of the rate; units in a `near` cell of a far
/// sector are not counted there). Views larger than 20 km are clipped
/// around their centre.
pub fn interest(view: WorldRect) -> (IdHashSet<SectorId>, IdHashSet<SectorId>) {
    let cx = view.min.x / 2 + view.max.x / 2;
    let cy = view.min.y / 2 + view.max.y / 2;
    let half_w =
        ((view.max.x as i128 - view.min.x as i128) / 2).min(10 * SECTOR_SIZE_CM as i128) as i64;
    let half_h =
        ((view.max.y as i128 - view.min.y as i128) / 2).min(10 * SECTOR_SIZE_CM as i128) as i64;
    let rect = |grow: i64, extra: i64| {
        let (w, h) = (
            half_w.saturating_mul(grow).saturating_add(extra),
            half_h.saturating_mul(grow).saturating_add(extra),
        );
        // Half-open on the far side, so a view that ends on a sector edge does not spill over it.
        WorldRect::from_corners(
            WorldPos::new(cx.saturating_sub(w), cy.saturating_sub(h)),
            WorldPos::new(
                cx.saturating_add(w).saturating_sub(1),
                cy.saturating_add(h).saturating_sub(1),
            ),
        )
    };
    let cover = |r: WorldRect, max: u128| -> IdHashSet<SectorId> {
        match SectorId::covering(r, 0) {
            Some(range) if range.remaining() <= max => range.collect(),
            _ => IdHashSet::default(),
        }
    };
    let near = cover(rect(1, SECTOR_SIZE_CM), MAX_NEAR_SECTORS);
    let far: IdHashSet<SectorId> = match SectorId::covering(rect(3, SECTOR_SIZE_CM), 1) {
        Some(range) if range.remaining() <= MAX_NEAR_SECTORS * 9 => range
            .filter(|s| !s.children().all(|c| near.contains(&c)))
            .collect(),
        _ => IdHashSet::default(),
    };
    (near, far)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_intervals() {
        assert_eq!(
            ActivityLevel::from_changes_per_tick(0.0),
            ActivityLevel::Low
        );
        assert_eq!(
            ActivityLevel::from_changes_per_tick(3.0),
            ActivityLevel::Medium
        );
        assert_eq!(
            ActivityLevel::from_changes_per_tick(200.0),
            ActivityLevel::High
        );
        // At 20 Hz: 10 Hz = every 2nd tick, 20 and 60 Hz = every tick.
        assert_eq!(interval_ticks(ActivityLevel::Low, 20.0, false), 2);
        assert_eq!(interval_ticks(ActivityLevel::Medium, 20.0, false), 1);
        assert_eq!(interval_ticks(ActivityLevel::High, 20.0, false), 1);
        // At 60 Hz the three levels are 10, 20 and 60 Hz.
        assert_eq!(interval_ticks(ActivityLevel::Low, 60.0, false), 6);
        assert_eq!(interval_ticks(ActivityLevel::Medium, 60.0, false), 3);
        assert_eq!(interval_ticks(ActivityLevel::High, 60.0, false), 1);
        assert_eq!(interval_ticks(ActivityLevel::Medium, 20.0, true), 4);
    }

    #[test]
    fn activity_follows_changes() {
        let mut idx = SectorIndex::default();
        let busy = SectorId::new(0, 0, 0);
        let quiet = SectorId::new(5, 5, 0);
        for id in 0..100 {
            idx.place(id, busy);
        }
        idx.place(1000, quiet);
        for tick in 1..40 {
            idx.begin_tick(tick);
            for id in 0..50 {
                idx.changed(id);
            }
        }
        idx.begin_tick(40);
        assert_eq!(idx.activity(&busy), ActivityLevel::High);
        assert_eq!(idx.activity(&quiet), ActivityLevel::Low);
        assert_eq!(idx.changed_at(&busy), 39);
        idx.remove(5);
        assert_eq!(idx.units_in(&busy).count(), 99);
        idx.remove(1000);
        assert!(!idx.units.contains_key(&quiet), "empty sectors are dropped");
        // A coarse sector sees its cells' units, activity and changes.
        let parent = busy.parent().unwrap();
        assert_eq!(idx.units_in(&parent).count(), 99);
        assert_eq!(idx.activity(&parent), ActivityLevel::High);
        assert_eq!(idx.changed_at(&parent), 40);
    }

    #[test]
    fn change_log_holds_what_changed_since() {
        let mut idx = SectorIndex::default();
        let a = SectorId::new(0, 0, 0);
        let b = SectorId::new(1, 0, 0);
        idx.begin_tick(1);
        for id in 0..10 {
            idx.place(id, a);
        }
        assert_eq!(idx.moves().len(), 10);
        idx.begin_tick(2);
        assert!(idx.moves().is_empty());
        idx.changed(3);
        idx.place(4, b);
        let since_1: Vec<UnitId> = idx.changed_since(&a, 1).unwrap().collect();
        assert_eq!(since_1, vec![3]);
        let into_b: Vec<UnitId> = idx.changed_since(&b, 1).unwrap().collect();
        assert_eq!(into_b, vec![4]);
        assert_eq!(
            idx.moves(),
            &[SectorMove {
                unit: 4,
                from: Some(a),
                to: Some(b)
            }]
        );
        assert_eq!(idx.changed_since(&a, 0).unwrap().count(), 11);
        // Past the history kept, the caller must look at the whole sector.
        idx.begin_tick(2 + CHANGE_LOG_TICKS + 1);
        assert!(idx.changed_since(&a, 1).is_none());
        assert_eq!(
            idx.changed_since(&a, 2 + CHANGE_LOG_TICKS).unwrap().count(),
            0
        );
        assert!(idx.log.is_empty(), "old history is dropped");
    }

    #[test]
    fn interest_rings() {
        let (near, far) = interest(WorldRect::around(WorldPos::new(50_000, 50_000), 50_000));
        // A 1 km view on one sector: 3 x 3 near cells; 2 km far sectors out to 5 x 5 km.
        assert_eq!(near.len(), 9);
        assert!(near.contains(&SectorId::new(0, 0, 0)));
        assert!(far.iter().all(|s| s.scale == 1));
        // 3 x 3 scale-1 sectors, less the one whose four cells are all near.
        assert_eq!(far.len(), 8);
        // Every scale-0 cell of the 5 x 5 km area is in the interest exactly one way.
        for x in -2..=2 {
            for y in -2..=2 {
                assert!(
                    in_interest(SectorId::new(x, y, 0), &near, &far),
                    "({x}, {y})"
                );
            }
        }
        assert!(!in_interest(SectorId::new(9, 9, 0), &near, &far));
        let (huge, _) = interest(WorldRect::around(WorldPos::new(0, 0), i64::MAX / 2));
        assert!(huge.len() as u128 <= MAX_NEAR_SECTORS);
    }
}

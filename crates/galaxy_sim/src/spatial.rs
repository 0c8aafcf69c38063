//! Where units are, for the questions a tick asks many times: "where is
//! unit `id`?", "what is the nearest enemy within `range`?" and "who is
//! within `radius` of this point?".
//!
//! Kept up to date each tick from the units that moved (`Grid::follow`,
//! on a thread of its own in a big world: `following`; the storage is in
//! `blocks`). Fine cells (10 m) keep
//! each owner's units apart, so a search never looks at a player's own
//! units; they sit in 80 m blocks (one hash lookup for 64 cells) that
//! remember which owners are present, so a search skips every block where
//! only its own side stands and looks at the cells within range of the rest.

use galaxy_protocol::{ChurnRoom, IdHashMap, PlayerId, UnitId, WorldPos};

use crate::geometry::{box_distance_sq, distance_sq};

mod blocks;
mod following;

use blocks::{BLOCK, Block, BlockMap, CELL_CM, fine};
pub(crate) use following::FollowingGrid;

/// Most blocks a nearest-enemy search walks in rings (6 x 6, a range of
/// up to ~200 m); wider searches go block by block.
const NEAR_BLOCKS: usize = 36;

/// The fine cells of the square of half-side `r` around `pos`: (lowest,
/// highest) corner.
fn square(pos: WorldPos, r: u64) -> ((i64, i64), (i64, i64)) {
    let r = i64::try_from(r).unwrap_or(i64::MAX);
    let lo = fine(WorldPos::new(
        pos.x.saturating_sub(r),
        pos.y.saturating_sub(r),
    ));
    let hi = fine(WorldPos::new(
        pos.x.saturating_add(r),
        pos.y.saturating_add(r),
    ));
    (lo, hi)
}

/// Squared distance from `pos` to the nearest point of fine cell
/// `(gx, gy)` (zero inside it), exact.
fn cell_gap_sq(pos: WorldPos, gx: i64, gy: i64) -> u128 {
    let min = WorldPos::new(gx.saturating_mul(CELL_CM), gy.saturating_mul(CELL_CM));
    let max = WorldPos::new(
        min.x.saturating_add(CELL_CM - 1),
        min.y.saturating_add(CELL_CM - 1),
    );
    box_distance_sq(pos, min, max)
}

/// Keeps in `best` the nearest of `units` within `limit` (squared) of
/// `pos`, ties going to the lowest id.
fn closest(
    pos: WorldPos,
    limit: u128,
    units: &[(UnitId, WorldPos)],
    best: &mut Option<(u128, UnitId)>,
) {
    for &(id, p) in units {
        let d = distance_sq(pos, p);
        if d <= limit && best.is_none_or(|b| (d, id) < b) {
            *best = Some((d, id));
        }
    }
}

/// One unit's move in a tick, its owner unchanged: what [`Grid::follow`]
/// needs (where the grid has it, and where it is now).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Walk {
    pub(crate) id: UnitId,
    pub(crate) owner: PlayerId,
    pub(crate) from: WorldPos,
    pub(crate) to: WorldPos,
}

/// Walks from which [`Grid::follow`] uses two threads.
const PARALLEL_WALKS: usize = 4096;

/// The spatial index of one tick; see the module docs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Grid {
    /// The blocks and their cells.
    map: BlockMap,
    /// Every unit's owner and position.
    units: IdHashMap<UnitId, (PlayerId, WorldPos)>,
    /// Room in `units` for units dying and spawning (see [`ChurnRoom`]).
    room: ChurnRoom,
}

impl Grid {
    /// Brings unit `id` up to date: `now` is its owner and position, or
    /// `None` if it is gone. Only a unit that appeared, left, changed hands
    /// or moved to another cell is moved in the index.
    pub(crate) fn update(&mut self, id: UnitId, now: Option<(PlayerId, WorldPos)>) {
        // The common case (a walker staying in its cell) with one lookup.
        let entry = self.units.get_mut(&id);
        let before = entry.as_deref().copied();
        match (before, now) {
            (None, None) => {}
            (Some(b), Some(n)) if b == n => {}
            // The same owner: a walk, within its cell or to another.
            (Some((bo, bp)), Some((no, np))) if bo == no => {
                if let Some(e) = entry {
                    *e = (no, np);
                }
                self.map.walk(&Walk {
                    id,
                    owner: no,
                    from: bp,
                    to: np,
                });
            }
            (before, now) => {
                if let Some((o, p)) = before {
                    self.map.take(id, o, p);
                    self.units.remove(&id);
                }
                if let Some((o, p)) = now {
                    self.map.put(id, o, p);
                    self.units.insert(id, (o, p));
                    self.room.make_room(&mut self.units);
                }
            }
        }
    }

    /// Moves each walker from `from` (where the grid has it) to `to`, as
    /// [`Grid::update`] would one by one. The units' entries and the blocks
    /// are separate maps, and each half of the blocks is separate from the
    /// other, so with `threads` > 1 and many walks they are updated side by
    /// side: a tick's walks are most of the grid's work, and it is serial
    /// work between two parallel phases.
    pub(crate) fn follow(&mut self, walks: &[Walk], threads: usize) {
        let Grid { map, units, .. } = self;
        let entries = |units: &mut IdHashMap<UnitId, (PlayerId, WorldPos)>| {
            for w in walks {
                let before = units.insert(w.id, (w.owner, w.to));
                debug_assert_eq!(before, Some((w.owner, w.from)), "unit {}", w.id);
            }
        };
        if threads > 1 && walks.len() >= PARALLEL_WALKS {
            map.follow_split(walks, || entries(units));
        } else {
            entries(units);
            for w in walks {
                map.walk(w);
            }
        }
    }

    /// Everything the grid does between two ticks: follows the ending
    /// tick's `walks` (see [`Grid::follow`]), forgets empty blocks once
    /// they are a quarter of all, and shrinks the owners' boxes of every
    /// eighth block (in turn, by `next_tick`) to the units there now (boxes
    /// only grow between refreshes, and only ever hold more than their
    /// units, so searches find the same either way).
    pub(crate) fn end_tick(&mut self, walks: &[Walk], threads: usize, next_tick: u64) {
        self.follow(walks, threads);
        self.map.compact();
        self.map.refresh_boxes(next_tick, 8);
    }

    /// Position of unit `id` when the grid was last updated.
    pub(crate) fn position(&self, id: UnitId) -> Option<WorldPos> {
        self.units.get(&id).map(|e| e.1)
    }

    /// Calls `f` with every (group owner, units) of the cells within `r`
    /// (a square) of `pos` that lie in blocks `block_ok` accepts.
    fn for_each_group_near<'a>(
        &'a self,
        pos: WorldPos,
        r: u64,
        block_ok: impl Fn(&Block) -> bool,
        mut f: impl FnMut(PlayerId, &'a [(UnitId, WorldPos)]),
    ) {
        let (lo, hi) = square(pos, r);
        let (blo, bhi) = (
            (lo.0.div_euclid(BLOCK), lo.1.div_euclid(BLOCK)),
            (hi.0.div_euclid(BLOCK), hi.1.div_euclid(BLOCK)),
        );
        let mut visit = |(bx, by): (i64, i64), b: &'a Block| {
            if !block_ok(b) {
                return;
            }
            // The part of the square's cells inside this block.
            let (x0, x1) = (lo.0.max(bx * BLOCK), hi.0.min(bx * BLOCK + BLOCK - 1));
            let (y0, y1) = (lo.1.max(by * BLOCK), hi.1.min(by * BLOCK + BLOCK - 1));
            for gy in y0..=y1 {
                let row = ((gy - by * BLOCK) * BLOCK - bx * BLOCK) as isize;
                for gx in x0..=x1 {
                    let index = (row + gx as isize) as usize;
                    for (o, units) in &b.cells[index].groups {
                        f(*o, units);
                    }
                }
            }
        };
        let span = ((bhi.0 - blo.0) as u128 + 1) * ((bhi.1 - blo.1) as u128 + 1);
        if span > self.map.blocks.len() as u128 {
            // A huge square: look at the blocks there are instead.
            for (&key, &i) in &self.map.index {
                if (blo.0..=bhi.0).contains(&key.0) && (blo.1..=bhi.1).contains(&key.1) {
                    visit(key, &self.map.blocks[i]);
                }
            }
        } else {
            for bx in blo.0..=bhi.0 {
                for by in blo.1..=bhi.1 {
                    if let Some(&i) = self.map.index.get(&(bx, by)) {
                        visit((bx, by), &self.map.blocks[i]);
                    }
                }
            }
        }
    }

    /// The nearest unit not of `owner` within `range` of `pos` (ties: the
    /// lowest id). Looks only at blocks where another owner's units may be
    /// within range, and at the cells of those owners' boxes, in rings
    /// around `pos`, nearest first, stopping once no farther ring can hold
    /// anything nearer: in the thick of a battle the answer is a cell or
    /// two away.
    pub(crate) fn nearest_enemy(
        &self,
        owner: PlayerId,
        pos: WorldPos,
        range: u64,
    ) -> Option<UnitId> {
        let limit = u128::from(range) * u128::from(range);
        let (lo, hi) = square(pos, range);
        let (blo, bhi) = ((lo.0 >> 3, lo.1 >> 3), (hi.0 >> 3, hi.1 >> 3));
        let (w, h) = (
            (bhi.0 as i128 - blo.0 as i128 + 1) as u128,
            (bhi.1 as i128 - blo.1 as i128 + 1) as u128,
        );
        if w * h > NEAR_BLOCKS as u128 {
            return self.nearest_enemy_by_blocks(owner, pos, range);
        }
        let w = w as i64;
        // The blocks that may hold an enemy in range, and the cells they span.
        let mut table: [Option<&Block>; NEAR_BLOCKS] = [None; NEAR_BLOCKS];
        let mut span: Option<((i64, i64), (i64, i64))> = None;
        for by in blo.1..=bhi.1 {
            for bx in blo.0..=bhi.0 {
                let Some(&i) = self.map.index.get(&(bx, by)) else {
                    continue;
                };
                let b = &self.map.blocks[i];
                // The cells of the enemy boxes in range (every unit is in
                // its owner's box): cells outside them hold no enemy.
                for p in b.enemies_within(owner, pos, limit) {
                    table[((by - blo.1) * w + (bx - blo.0)) as usize] = Some(b);
                    let (c0, c1) = (fine(p.min), fine(p.max));
                    span = Some(match span {
                        None => (c0, c1),
                        Some((a, z)) => (
                            (a.0.min(c0.0), a.1.min(c0.1)),
                            (z.0.max(c1.0), z.1.max(c1.1)),
                        ),
                    });
                }
            }
        }
        let (s0, s1) = span?;
        let (lo, hi) = (
            (lo.0.max(s0.0), lo.1.max(s0.1)),
            (hi.0.min(s1.0), hi.1.min(s1.1)),
        );
        let c = fine(pos);
        let mut best: Option<(u128, UnitId)> = None;
        let visit = |best: &mut Option<(u128, UnitId)>, gx: i64, gy: i64| {
            if gx < lo.0 || gx > hi.0 || gy < lo.1 || gy > hi.1 {
                return;
            }
            // A cell none of whose points is in range, or nearer than the
            // best so far, cannot hold the answer: the square's corners,
            // and most of a ring once something was found.
            let gap = cell_gap_sq(pos, gx, gy);
            if gap > limit || best.is_some_and(|(d, _)| gap > d) {
                return;
            }
            let Some(b) = table[(((gy >> 3) - blo.1) * w + ((gx >> 3) - blo.0)) as usize] else {
                return;
            };
            let cell = &b.cells[((gy & 7) * BLOCK + (gx & 7)) as usize];
            for (o, units) in &cell.groups {
                if *o != owner {
                    closest(pos, limit, units, best);
                }
            }
        };
        let rings = (c.0 - lo.0)
            .max(hi.0 - c.0)
            .max(c.1 - lo.1)
            .max(hi.1 - c.1)
            .max(0);
        for k in 0..=rings {
            if k == 0 {
                visit(&mut best, c.0, c.1);
            } else {
                for gx in (c.0 - k).max(lo.0)..=(c.0 + k).min(hi.0) {
                    visit(&mut best, gx, c.1 - k);
                    visit(&mut best, gx, c.1 + k);
                }
                for gy in (c.1 - k + 1).max(lo.1)..=(c.1 + k - 1).min(hi.1) {
                    visit(&mut best, c.0 - k, gy);
                    visit(&mut best, c.0 + k, gy);
                }
            }
            // Every cell of a farther ring is more than k cells away.
            let reach = u128::from(k as u64) * CELL_CM as u128;
            if best.is_some_and(|(d, _)| d <= reach * reach) {
                break;
            }
        }
        best.map(|b| b.1)
    }

    /// [`Grid::nearest_enemy`] for a range spanning many blocks: every
    /// cell in range of the blocks that may hold an enemy.
    fn nearest_enemy_by_blocks(
        &self,
        owner: PlayerId,
        pos: WorldPos,
        range: u64,
    ) -> Option<UnitId> {
        let limit = u128::from(range) * u128::from(range);
        let mut best: Option<(u128, UnitId)> = None;
        self.for_each_group_near(
            pos,
            range,
            |b| b.enemy_within(owner, pos, limit),
            |o, units| {
                if o != owner {
                    closest(pos, limit, units, &mut best);
                }
            },
        );
        best.map(|b| b.1)
    }

    /// Calls `f(id, owner)` for every unit within `radius` of `pos`.
    pub(crate) fn within(&self, pos: WorldPos, radius: u64, mut f: impl FnMut(UnitId, PlayerId)) {
        let limit = u128::from(radius) * u128::from(radius);
        self.for_each_group_near(
            pos,
            radius,
            |_| true,
            |o, units| {
                for &(id, p) in units {
                    if distance_sq(pos, p) <= limit {
                        f(id, o);
                    }
                }
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use galaxy_protocol::link_model::SplitMix64;
    use std::collections::BTreeSet;

    /// The nearest unit not of `owner` within `limit` (squared) of `pos`,
    /// by looking at every unit (ties: the lowest id).
    fn scan_nearest_enemy(
        units: &[(UnitId, PlayerId, WorldPos)],
        owner: PlayerId,
        pos: WorldPos,
        limit: u128,
    ) -> Option<UnitId> {
        units
            .iter()
            .filter(|u| u.1 != owner)
            .map(|u| (distance_sq(pos, u.2), u.0))
            .filter(|&(d, _)| d <= limit)
            .min()
            .map(|b| b.1)
    }

    /// Updates `g` from `before` to `now` (every unit in either).
    fn update_all(
        g: &mut Grid,
        before: &[(UnitId, PlayerId, WorldPos)],
        now: &[(UnitId, PlayerId, WorldPos)],
    ) {
        for &(id, _, _) in before {
            if !now.iter().any(|u| u.0 == id) {
                g.update(id, None);
            }
        }
        for &(id, o, p) in now {
            g.update(id, Some((o, p)));
        }
        g.map.compact();
    }

    /// The block search finds exactly what a scan of every unit finds, at
    /// every range (huge ones included).
    #[test]
    fn searches_match_a_full_scan() {
        let mut rng = SplitMix64::new(3);
        let units: Vec<(UnitId, PlayerId, WorldPos)> = (1..=2000u64)
            .map(|id| {
                let p = WorldPos::new(rng.below(40_000) as i64, rng.below(40_000) as i64 - 20_000);
                (id, rng.below(3), p)
            })
            .collect();
        let mut g = Grid::default();
        let mut units = units;
        update_all(&mut g, &[], &units);
        for i in 0..500 {
            if i % 50 == 25 {
                // Some walk (across cells or not), some die, some are born,
                // one changes hands: the index follows.
                let before = units.clone();
                for u in units.iter_mut() {
                    match rng.below(4) {
                        0 => u.2 = WorldPos::new(u.2.x + rng.below(3) as i64 - 1, u.2.y),
                        1 => u.2 = WorldPos::new(u.2.x + rng.below(3_000) as i64 - 1_500, u.2.y),
                        _ => {}
                    }
                }
                units[0].1 = 7;
                units.retain(|_| !rng.chance(0.05));
                let next = units.last().map_or(1, |u| u.0 + 1);
                units.extend(
                    (next..next + 50).map(|id| (id, rng.below(3), WorldPos::new(0, id as i64))),
                );
                update_all(&mut g, &before, &units);
            }
            let owner = rng.below(3);
            let pos = WorldPos::new(
                rng.below(44_000) as i64 - 2_000,
                rng.below(44_000) as i64 - 22_000,
            );
            let range = if i % 50 == 0 {
                u64::MAX
            } else {
                rng.below(15_000)
            };
            let limit = u128::from(range) * u128::from(range);
            let scan = scan_nearest_enemy(&units, owner, pos, limit);
            assert_eq!(g.nearest_enemy(owner, pos, range), scan);
            let mut near = BTreeSet::new();
            g.within(pos, range, |id, _| {
                near.insert(id);
            });
            let want: BTreeSet<UnitId> = units
                .iter()
                .filter(|u| distance_sq(pos, u.2) <= limit)
                .map(|u| u.0)
                .collect();
            assert_eq!(near, want);
        }
        let (id, _, at) = units[16];
        assert_eq!(g.position(id), Some(at));
        assert_eq!(g.position(u64::MAX), None);
        // Units leave: their blocks are forgotten (soon).
        let few: Vec<_> = units.iter().take(10).copied().collect();
        update_all(&mut g, &units, &few);
        assert!(g.map.blocks.len() <= 10, "{} blocks", g.map.blocks.len());
        assert!(g.nearest_enemy(99, WorldPos::new(0, 0), u64::MAX).is_some());
    }

    /// Cells are skipped only when none of their points can beat the
    /// best found: unit 9 (in a cell visited first) and unit 3 (on the
    /// nearest point of a cell visited later) are both 501 cm away, and the
    /// tie goes to the lower id.
    #[test]
    fn a_cell_as_near_as_the_best_is_still_searched() {
        let mut g = Grid::default();
        g.update(9, Some((2, WorldPos::new(1_500, 1_001))));
        g.update(3, Some((2, WorldPos::new(999, 500))));
        assert_eq!(
            g.nearest_enemy(1, WorldPos::new(1_500, 500), 2_000),
            Some(3)
        );
        // Out of range by a centimetre, both are skipped.
        assert_eq!(g.nearest_enemy(1, WorldPos::new(1_500, 500), 500), None);
    }

    /// A unit that walks within its fine cell stays findable where it is
    /// now: its owner's box in the block grows with it (a search skips a
    /// block whose boxes are out of range).
    #[test]
    fn a_walk_within_a_cell_keeps_the_unit_findable() {
        let mut g = Grid::default();
        let (from, to) = (WorldPos::new(100, 100), WorldPos::new(900, 100));
        assert_eq!(fine(from), fine(to));
        g.update(1, Some((1, from)));
        g.update(1, Some((1, to)));
        // 1 m from where it stands now, 8 m from where it stood.
        let at = WorldPos::new(1_000, 100);
        assert_eq!(g.nearest_enemy(2, at, 150), Some(1));
        assert_eq!(g.position(1), Some(to));
        g.map.refresh_boxes(0, 1);
        assert_eq!(g.nearest_enemy(2, at, 150), Some(1));
    }

    /// In a crowd (a battle: units 1-2 m apart, owners mixed) the ring
    /// search stops early and still finds what a full scan finds, ties to
    /// the lowest id included.
    /// Walks applied with [`Grid::follow`], on one thread or two, leave the
    /// grid exactly as [`Grid::update`] does unit by unit.
    #[test]
    fn follow_matches_update() {
        let mut rng = SplitMix64::new(21);
        let mut g = Grid::default();
        let mut units: Vec<(UnitId, PlayerId, WorldPos)> = (0..12_000u64)
            .map(|id| {
                let p = WorldPos::new(rng.below(60_000) as i64, rng.below(60_000) as i64);
                (id, rng.below(4), p)
            })
            .collect();
        update_all(&mut g, &[], &units);
        for round in 0..4 {
            let mut walks = Vec::new();
            for u in units.iter_mut() {
                if rng.below(4) == 0 {
                    continue;
                }
                // Mostly short steps; some jump several cells.
                let r = if rng.below(10) == 0 { 3_000 } else { 60 };
                let to = WorldPos::new(
                    u.2.x + rng.below(2 * r) as i64 - r as i64,
                    u.2.y + rng.below(2 * r) as i64 - r as i64,
                );
                walks.push(Walk {
                    id: u.0,
                    owner: u.1,
                    from: u.2,
                    to,
                });
                u.2 = to;
            }
            let mut one_by_one = g.clone();
            for w in &walks {
                one_by_one.update(w.id, Some((w.owner, w.to)));
            }
            for threads in [1, 2] {
                let mut followed = g.clone();
                followed.follow(&walks, threads);
                assert!(followed == one_by_one, "round {round}, {threads} threads");
            }
            g = one_by_one;
        }
        let (owner, pos) = (0, WorldPos::new(30_000, 30_000));
        assert_eq!(
            g.nearest_enemy(owner, pos, 5_000),
            scan_nearest_enemy(&units, owner, pos, 5_000 * 5_000)
        );
    }

    #[test]
    fn crowded_searches_match_a_full_scan() {
        let mut rng = SplitMix64::new(11);
        let units: Vec<(UnitId, PlayerId, WorldPos)> = (1..=3000u64)
            .map(|id| {
                // On a 1 m lattice, so equal distances (ties) are common.
                let p = WorldPos::new(
                    rng.below(60) as i64 * 100 - 3_000,
                    rng.below(60) as i64 * 100,
                );
                (id, rng.below(2), p)
            })
            .collect();
        let mut g = Grid::default();
        update_all(&mut g, &[], &units);
        for _ in 0..2000 {
            let owner = rng.below(3);
            let pos = WorldPos::new(
                rng.below(8_000) as i64 - 4_000,
                rng.below(8_000) as i64 - 1_000,
            );
            let range = rng.below(9_000);
            let limit = u128::from(range) * u128::from(range);
            let scan = scan_nearest_enemy(&units, owner, pos, limit);
            assert_eq!(g.nearest_enemy(owner, pos, range), scan, "{pos:?} {range}");
        }
    }
}

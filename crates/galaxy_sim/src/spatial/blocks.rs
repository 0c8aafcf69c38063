//! The grid's storage: 80 m blocks of 10 m fine cells, each cell's units
//! grouped by owner, and each block's owners with a box around their units.
//! [`super::Grid`] asks the questions; this is what it keeps.

use galaxy_protocol::{IdHashMap, PlayerId, UnitId, WorldPos};

use super::Walk;
use crate::geometry::box_distance_sq;

/// Side of a fine cell: 10 m.
pub(super) const CELL_CM: i64 = 1_000;
/// Fine cells per side of a block (a coarse cell): 8, so a block is 80 m.
pub(super) const BLOCK: i64 = 8;

/// One fine cell: its units grouped by owner.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Cell {
    pub(super) groups: Vec<(PlayerId, Vec<(UnitId, WorldPos)>)>,
}

/// One owner's units in a block: how many, and a box around them (it only
/// grows while they are there, so it may be larger than they are now, never
/// smaller; it is forgotten when the last one leaves).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Presence {
    pub(super) owner: PlayerId,
    count: u32,
    pub(super) min: WorldPos,
    pub(super) max: WorldPos,
}

impl Presence {
    /// Grows the box to hold `p`.
    fn grow(&mut self, p: WorldPos) {
        self.min = WorldPos::new(self.min.x.min(p.x), self.min.y.min(p.y));
        self.max = WorldPos::new(self.max.x.max(p.x), self.max.y.max(p.y));
    }

    /// Squared distance from `p` to the box (0 inside).
    fn distance_sq(&self, p: WorldPos) -> u128 {
        box_distance_sq(p, self.min, self.max)
    }
}

/// An 80 m square: where each owner's units are, and its 8 x 8 fine cells.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Block {
    pub(super) owners: Vec<Presence>,
    pub(super) cells: Vec<Cell>,
    pub(super) units: usize,
}

impl Block {
    /// The owners other than `owner` whose box comes within `limit`
    /// (squared) of `pos`: where an enemy in range may be.
    pub(super) fn enemies_within(
        &self,
        owner: PlayerId,
        pos: WorldPos,
        limit: u128,
    ) -> impl Iterator<Item = &Presence> {
        self.owners
            .iter()
            .filter(move |p| p.owner != owner && p.distance_sq(pos) <= limit)
    }

    /// True if a unit not of `owner` may be within `limit` (squared) of `pos`.
    pub(super) fn enemy_within(&self, owner: PlayerId, pos: WorldPos, limit: u128) -> bool {
        self.enemies_within(owner, pos, limit).next().is_some()
    }
}

/// The fine cell holding `p`.
pub(super) fn fine(p: WorldPos) -> (i64, i64) {
    (p.x.div_euclid(CELL_CM), p.y.div_euclid(CELL_CM))
}

/// The block holding fine cell `(gx, gy)`, and the cell's index in it.
fn block_of((gx, gy): (i64, i64)) -> ((i64, i64), usize) {
    // BLOCK is 8: floor division and remainder are a shift and a mask.
    let key = (gx >> 3, gy >> 3);
    let index = (gy & 7) * BLOCK + (gx & 7);
    (key, index as usize)
}

/// The blocks that hold units, by key: the part of the grid a walk moves
/// (apart from the unit's own entry in `Grid::units`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct BlockMap {
    /// Block key -> index in `blocks`.
    pub(super) index: IdHashMap<(i64, i64), usize>,
    pub(super) blocks: Vec<Block>,
}

impl BlockMap {
    /// Moves a walker's entry: within its cell in place, else to its new cell.
    pub(super) fn walk(&mut self, w: &Walk) {
        if fine(w.from) == fine(w.to) {
            self.repos(w.id, w.owner, w.from, w.to);
        } else {
            self.take(w.id, w.owner, w.from);
            self.put(w.id, w.owner, w.to);
        }
    }

    /// Shrinks the owners' boxes of every `every`-th block (in turn, by
    /// `tick`) to the units there now: boxes only grow between refreshes.
    pub(super) fn refresh_boxes(&mut self, tick: u64, every: u64) {
        let every = every.max(1) as usize;
        let start = (tick % every as u64) as usize;
        for b in self.blocks.iter_mut().skip(start).step_by(every) {
            for p in &mut b.owners {
                p.min = WorldPos::new(i64::MAX, i64::MAX);
                p.max = WorldPos::new(i64::MIN, i64::MIN);
            }
            for c in &b.cells {
                for (owner, units) in &c.groups {
                    if let Some(p) = b.owners.iter_mut().find(|p| p.owner == *owner) {
                        for &(_, u) in units {
                            p.grow(u);
                        }
                    }
                }
            }
        }
    }

    /// Forgets empty blocks (units that left) once they are a quarter of
    /// all, so memory follows the units without compacting every tick.
    pub(super) fn compact(&mut self) {
        let empty = self.blocks.iter().filter(|b| b.units == 0).count();
        if empty > 0 && empty * 4 >= self.blocks.len() {
            let keys: Vec<((i64, i64), usize)> = self.index.drain().collect();
            let mut old: Vec<Option<Block>> = std::mem::take(&mut self.blocks)
                .into_iter()
                .map(Some)
                .collect();
            for (key, i) in keys {
                if let Some(b) = old[i].take().filter(|b| b.units > 0) {
                    self.index.insert(key, self.blocks.len());
                    self.blocks.push(b);
                }
            }
        }
    }

    pub(super) fn put(&mut self, id: UnitId, owner: PlayerId, pos: WorldPos) {
        let (key, index) = block_of(fine(pos));
        let bi = match self.index.get(&key) {
            Some(&i) => i,
            None => {
                self.blocks.push(Block {
                    cells: vec![Cell::default(); (BLOCK * BLOCK) as usize],
                    ..Block::default()
                });
                self.index.insert(key, self.blocks.len() - 1);
                self.blocks.len() - 1
            }
        };
        let b = &mut self.blocks[bi];
        b.units += 1;
        match b.owners.iter_mut().find(|o| o.owner == owner) {
            Some(o) => {
                o.count += 1;
                o.grow(pos);
            }
            None => b.owners.push(Presence {
                owner,
                count: 1,
                min: pos,
                max: pos,
            }),
        }
        let c = &mut b.cells[index];
        match c.groups.iter_mut().find(|g| g.0 == owner) {
            Some(g) => g.1.push((id, pos)),
            None => c.groups.push((owner, vec![(id, pos)])),
        }
    }

    pub(super) fn take(&mut self, id: UnitId, owner: PlayerId, pos: WorldPos) {
        let (key, index) = block_of(fine(pos));
        let Some(&bi) = self.index.get(&key) else {
            return;
        };
        let b = &mut self.blocks[bi];
        let c = &mut b.cells[index];
        let Some(g) = c.groups.iter().position(|g| g.0 == owner) else {
            return;
        };
        let Some(e) = c.groups[g].1.iter().position(|e| e.0 == id) else {
            return;
        };
        c.groups[g].1.swap_remove(e);
        if c.groups[g].1.is_empty() {
            c.groups.swap_remove(g);
        }
        b.units -= 1;
        if let Some(o) = b.owners.iter().position(|o| o.owner == owner) {
            b.owners[o].count -= 1;
            if b.owners[o].count == 0 {
                b.owners.swap_remove(o);
            }
        }
    }

    /// Unit `id` moved within its fine cell: its entry follows, and its
    /// owner's box in the block grows to hold the new position (a box may
    /// be larger than its units, never smaller).
    pub(super) fn repos(&mut self, id: UnitId, owner: PlayerId, from: WorldPos, to: WorldPos) {
        let (key, cell) = block_of(fine(from));
        if let Some(&bi) = self.index.get(&key) {
            self.blocks[bi].repos(id, owner, cell, to);
        }
    }

    /// The walks within a fine cell on two threads, each moving the entries
    /// in its half of the blocks, then the walks to another cell in order
    /// (they may add blocks). The same grid as walking them one by one:
    /// an entry moved within its cell keeps its place in its group.
    /// `beside` (other work of the same walks) runs first on the second
    /// thread: two threads for two cores, not three.
    pub(super) fn follow_split(&mut self, walks: &[Walk], beside: impl FnOnce() + Send) {
        let BlockMap { index, blocks } = self;
        let mid = blocks.len() / 2;
        let (low, high) = blocks.split_at_mut(mid);
        let index = &*index;
        let within = |part: &mut [Block], first: usize| {
            for w in walks.iter().filter(|w| fine(w.from) == fine(w.to)) {
                let (key, cell) = block_of(fine(w.from));
                let part_index = index.get(&key).and_then(|&bi| bi.checked_sub(first));
                if let Some(b) = part_index.and_then(|i| part.get_mut(i)) {
                    b.repos(w.id, w.owner, cell, w.to);
                }
            }
        };
        std::thread::scope(|scope| {
            scope.spawn(|| {
                beside();
                within(high, mid);
            });
            within(low, 0);
        });
        for w in walks.iter().filter(|w| fine(w.from) != fine(w.to)) {
            self.walk(w);
        }
    }
}

impl Block {
    /// Unit `id` moved within fine cell `cell` of this block (see
    /// [`BlockMap::repos`]).
    fn repos(&mut self, id: UnitId, owner: PlayerId, cell: usize, to: WorldPos) {
        if let Some(o) = self.owners.iter_mut().find(|o| o.owner == owner) {
            o.grow(to);
        }
        let entry = self.cells[cell]
            .groups
            .iter_mut()
            .find(|g| g.0 == owner)
            .and_then(|g| g.1.iter_mut().find(|e| e.0 == id));
        if let Some(e) = entry {
            e.1 = to;
        }
    }
}

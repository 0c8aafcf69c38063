//! Where the battles, armies and garrison stand, and who owns what.

use super::*;

/// The AI player owning the idle garrison (`--idle-units`).
pub(crate) const GARRISON_OWNER: PlayerId = 2_000_000;

/// The layout of the world: battles, armies and who owns which unit.
pub(crate) struct Layout {
    pub(crate) battles: u64,
    pub(crate) per_army: u64,
    /// The clients watching each battle.
    pub(crate) watchers: Vec<Vec<u64>>,
}

impl Layout {
    pub(crate) fn new(a: &Args) -> Self {
        let battles = a.units.div_ceil(a.battle_size).max(1);
        let mut watchers = vec![Vec::new(); battles as usize];
        for c in 1..=a.clients {
            watchers[((c - 1) % battles) as usize].push(c);
        }
        Self {
            battles,
            per_army: (a.units / battles / 2).max(1),
            watchers,
        }
    }

    /// Units per row of an army's square formation (2 m apart).
    pub(crate) fn row(&self) -> i64 {
        (self.per_army as f64).sqrt().ceil() as i64
    }

    /// Where army `side` (0 or 1) of battle `b` stands: one battle every
    /// 8 km, the two armies 60 m apart (out of each other's weapon range:
    /// they fight when a player sends units over, and defend themselves).
    pub(crate) fn origin(&self, b: u64, side: u64) -> WorldPos {
        let gap = self.row() * 200 + 6_000;
        WorldPos::new(
            (b % 16) as i64 * 800_000,
            (b / 16) as i64 * 800_000 + side as i64 * gap,
        )
    }

    /// Formation slot `i` of army `side` in battle `b`.
    pub(crate) fn slot(&self, b: u64, side: u64, i: u64) -> WorldPos {
        let o = self.origin(b, side);
        let row = self.row();
        WorldPos::new(o.x + (i as i64 % row) * 200, o.y + (i as i64 / row) * 200)
    }

    /// The battle client `c` (1-based) watches.
    pub(crate) fn battle_of(&self, c: u64) -> u64 {
        (c - 1) % self.battles
    }

    /// Owner of unit `i` of army `side` in battle `b`: army 0 of a watched
    /// battle is shared among its clients; the rest are AI players.
    pub(crate) fn owner(&self, b: u64, side: u64, i: u64) -> PlayerId {
        let watchers = &self.watchers[b as usize];
        if side == 0 && !watchers.is_empty() {
            watchers[(i % watchers.len() as u64) as usize]
        } else {
            1_000_000 + b * 2 + side
        }
    }

    /// Every army as (battle, side).
    pub(crate) fn armies(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        (0..self.battles).flat_map(|b| [(b, 0), (b, 1)])
    }
}

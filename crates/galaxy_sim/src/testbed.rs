//! A busy, reproducible world for benches, tests and reports: battles of
//! 1,000 units (two armies 60 m apart, one battle every 8 km). Every two
//! seconds a third of one army in each battle is sent into the other and
//! the dead are replaced (as the load test's players and respawns do), so
//! after a warm-up most units walk, chase or shoot.

use galaxy_protocol::{CompressedCommand, UnitId, UnitIdList, WorldPos};

use crate::world::{SimConfig, World};

const ROW: i64 = 23;

/// Ticks between rounds of [`Battles::orders`] (2 s at 20 Hz).
pub const ORDER_EVERY: u64 = 40;

fn slot(b: u64, side: u64, i: i64) -> WorldPos {
    let base = WorldPos::new((b % 16) as i64 * 800_000, (b / 16) as i64 * 800_000);
    let oy = base.y + side as i64 * (ROW * 200 + 6_000);
    WorldPos::new(base.x + (i % ROW) * 200, oy + (i / ROW) * 200)
}

/// The battles' armies: (battle, side, unit ids by slot).
pub struct Battles(Vec<(u64, u64, Vec<UnitId>)>);

impl Battles {
    /// Spawns `battles` battles of two 500-unit armies into `w`.
    pub fn new(w: &mut World, battles: u64) -> Self {
        let mut armies = Vec::new();
        for b in 0..battles {
            for side in 0..2u64 {
                let ids = (0..500i64)
                    .map(|i| w.spawn_unit(b * 2 + side + 1, (i % 3) as u8, slot(b, side, i)))
                    .collect();
                armies.push((b, side, ids));
            }
        }
        Self(armies)
    }

    /// Replaces the dead and sends a third of each army 0 into army 1.
    pub fn orders(&mut self, w: &mut World, round: u64) {
        for (b, side, ids) in self.0.iter_mut() {
            for (i, id) in ids.iter_mut().enumerate() {
                if w.unit(*id).is_none() {
                    *id =
                        w.spawn_unit(*b * 2 + *side + 1, (i % 3) as u8, slot(*b, *side, i as i64));
                }
            }
            if *side == 0 {
                let movers: Vec<UnitId> = ids
                    .iter()
                    .copied()
                    .filter(|id| (id + round).is_multiple_of(3))
                    .collect();
                let to = slot(*b, 1, ((round * 7) % 400) as i64);
                if let Ok(units) = UnitIdList::from_ids(movers) {
                    w.apply_command(*b * 2 + 1, &CompressedCommand::AttackMove { units, to });
                }
            }
        }
    }

    /// One tick of the game: the round of orders when one is due, then
    /// the step.
    pub fn tick(&mut self, w: &mut World) {
        if w.tick().is_multiple_of(ORDER_EVERY) {
            self.orders(w, w.tick() / ORDER_EVERY);
        }
        w.step();
    }
}

/// A world of `battles` battles after `warm` ticks of fighting, stepped
/// with `threads` (see [`SimConfig::threads`]).
pub fn battle_world(battles: u64, warm: u64, threads: usize) -> (World, Battles) {
    let mut w = World::new(SimConfig {
        threads,
        ..SimConfig::default()
    });
    let mut armies = Battles::new(&mut w, battles);
    let mut changes = Vec::new();
    for _ in 0..warm {
        armies.tick(&mut w);
        let _ = w.take_changes(&mut changes);
    }
    (w, armies)
}

//! Units leaving and entering a world whole: what a server writes into a
//! sector snapshot or a `SectorTransfer`, and how another server takes
//! them in. Units, resources and bases all travel as `CompressedUnit`s
//! (structures by their reserved kinds), so nothing is left behind.

use std::collections::BTreeMap;

use galaxy_protocol::command::{MAX_BATCH_COMMANDS, MAX_COMMAND_UNITS};
use galaxy_protocol::{
    BatchCommand, CompressedCommand, CompressedUnit, IdHashSet, PlayerId, SectorId, UnitId,
    UnitIdList, UnitState, WorldPos, quantize,
};

use crate::inputs::WorldInput;
use crate::structures::{KIND_BASE, KIND_RESOURCE};
use crate::world::{Base, Order, Resource, SimUnit, World};

/// What [`World::import`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportOutcome {
    /// Units and structures added.
    pub added: usize,
    /// Ids already present, left as they were (a record seen twice is applied once).
    pub already_present: usize,
}

impl World {
    /// Every unit and structure whose position satisfies `inside`, whole and
    /// quantized, in id order.
    pub fn export(&self, inside: impl Fn(WorldPos) -> bool) -> Vec<CompressedUnit> {
        let mut out: Vec<CompressedUnit> = self
            .units()
            .map(|(id, u)| (id, u.sample()))
            .chain(self.structures())
            .filter(|(_, s)| inside(s.position))
            .map(|(unit_id, s)| CompressedUnit {
                unit_id,
                unit: quantize(&s),
            })
            .collect();
        out.sort_unstable_by_key(|c| c.unit_id);
        out
    }

    /// Takes in units and structures from a snapshot or transfer. Ids that
    /// already exist are skipped, so applying the same records twice never
    /// duplicates anything. Units arrive idle (orders are not part of the
    /// replicated state).
    pub fn import(&mut self, records: &[CompressedUnit]) -> ImportOutcome {
        self.log(|| WorldInput::Import(records.to_vec()));
        let mut out = ImportOutcome::default();
        // Units go in at once at the end (their ids may sort anywhere among
        // this world's), with the ids taken in.
        let mut units: Vec<(UnitId, SimUnit)> = Vec::new();
        let mut added: IdHashSet<UnitId> = IdHashSet::default();
        for c in records {
            let id = c.unit_id;
            if self.units.contains_key(&id)
                || added.contains(&id)
                || self.resources.contains_key(&id)
                || self.bases.contains_key(&id)
            {
                out.already_present += 1;
                continue;
            }
            let u = c.unit;
            match u.kind() {
                KIND_RESOURCE => {
                    self.resources.insert(
                        id,
                        Resource {
                            position: u.position(),
                            owner: (u.owner() != 0).then_some(u.owner()),
                            capture: None,
                        },
                    );
                }
                KIND_BASE => {
                    self.bases.insert(
                        id,
                        Base {
                            position: u.position(),
                            owner: u.owner(),
                            health: u32::from(u.health()),
                        },
                    );
                }
                kind => {
                    let mut unit = SimUnit::new(u.owner(), kind, u.position());
                    unit.health = u.health();
                    unit.order = Order::Idle;
                    unit.state = UnitState::IDLE;
                    units.push((id, unit));
                }
            }
            added.insert(id);
        }
        self.units.extend(units);
        for c in records {
            if added.remove(&c.unit_id) {
                self.note_id(c.unit_id);
                self.touch_place(c.unit_id);
                out.added += 1;
            }
        }
        out
    }

    /// The standing orders of the units whose position satisfies `inside`,
    /// as the commands that give them (one per owner and order, split to
    /// the protocol's limits), tagged with `sector` for routing.
    pub fn export_orders(
        &self,
        sector: SectorId,
        inside: impl Fn(WorldPos) -> bool,
    ) -> Vec<BatchCommand> {
        // (owner, order kind, x, y, target) -> units
        let mut groups: BTreeMap<(PlayerId, u8, i64, i64, UnitId), Vec<UnitId>> = BTreeMap::new();
        for (id, u) in self.units() {
            if !inside(u.position) {
                continue;
            }
            let key = match u.order {
                Order::Idle => continue,
                Order::Move(p) => (u.owner, 0, p.x, p.y, 0),
                Order::AttackMove(p) => (u.owner, 1, p.x, p.y, 0),
                Order::Attack(t) => (u.owner, 2, 0, 0, t),
            };
            groups.entry(key).or_default().push(id);
        }
        let mut per_player: BTreeMap<PlayerId, Vec<CompressedCommand>> = BTreeMap::new();
        for ((owner, kind, x, y, target), ids) in groups {
            for chunk in ids.chunks(MAX_COMMAND_UNITS as usize) {
                let Ok(units) = UnitIdList::from_ids(chunk.iter().copied()) else {
                    continue; // ids come from a map: sorted and unique, so this cannot fail
                };
                let to = WorldPos::new(x, y);
                per_player.entry(owner).or_default().push(match kind {
                    0 => CompressedCommand::Move { units, to },
                    1 => CompressedCommand::AttackMove { units, to },
                    _ => CompressedCommand::Attack { units, target },
                });
            }
        }
        let mut out = Vec::new();
        for (player_id, commands) in per_player {
            for chunk in commands.chunks(MAX_BATCH_COMMANDS) {
                out.push(BatchCommand {
                    sector_id: sector,
                    commands: chunk.to_vec(),
                    player_id,
                });
            }
        }
        out
    }

    /// Gives imported units their orders again (after [`World::import`]);
    /// returns how many unit orders were set. Orders naming units that
    /// are not here, or someone else's, are skipped as for any command.
    pub fn apply_orders(&mut self, orders: &[BatchCommand]) -> u64 {
        let mut applied = 0;
        for batch in orders {
            for command in &batch.commands {
                applied += self.apply_command(batch.player_id, command).applied;
            }
        }
        applied
    }

    /// Removes every unit and structure whose position satisfies `inside`
    /// (a sector this world no longer owns); returns how many went.
    pub fn remove_where(&mut self, inside: impl Fn(WorldPos) -> bool) -> usize {
        let before = self.units.len() + self.resources.len() + self.bases.len();
        let going: Vec<UnitId> = self
            .units
            .iter()
            .filter(|(_, u)| inside(u.position))
            .map(|(&id, _)| id)
            .chain(
                self.resources
                    .iter()
                    .filter(|(_, r)| inside(r.position))
                    .map(|(&id, _)| id),
            )
            .chain(
                self.bases
                    .iter()
                    .filter(|(_, b)| inside(b.position))
                    .map(|(&id, _)| id),
            )
            .collect();
        self.remove_ids(&going);
        before - (self.units.len() + self.resources.len() + self.bases.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_travel_with_their_units() {
        let mut a = World::default();
        let ids: Vec<UnitId> = (0..5)
            .map(|i| a.spawn_unit(7, 0, WorldPos::new(i * 100, 0)))
            .collect();
        let enemy = a.spawn_unit(8, 0, WorldPos::new(0, 90_000));
        let to = WorldPos::new(50_000, 0);
        let list = |v: &[UnitId]| UnitIdList::from_ids(v.iter().copied()).unwrap();
        a.apply_command(
            7,
            &CompressedCommand::Move {
                units: list(&ids[..2]),
                to,
            },
        );
        a.apply_command(
            7,
            &CompressedCommand::AttackMove {
                units: list(&ids[2..3]),
                to,
            },
        );
        a.apply_command(
            7,
            &CompressedCommand::Attack {
                units: list(&ids[3..4]),
                target: enemy,
            },
        );
        let sector = SectorId::new(0, 0, 3);
        let orders = a.export_orders(sector, |p| p.y < 50_000);
        assert_eq!(orders.len(), 1);
        assert_eq!(orders[0].commands.len(), 3);
        let mut b = World::default();
        b.import(&a.export(|_| true));
        assert_eq!(b.apply_orders(&orders), 4);
        for id in ids.iter().chain([&enemy]) {
            assert_eq!(
                b.unit(*id).unwrap().order,
                a.unit(*id).unwrap().order,
                "unit {id}"
            );
        }
        // Stepped side by side, the copies walk exactly like the originals.
        for _ in 0..20 {
            a.step();
            b.step();
        }
        for id in &ids[..3] {
            assert_eq!(b.unit(*id).unwrap().position, a.unit(*id).unwrap().position);
        }
    }

    #[test]
    fn export_then_import_moves_units_and_structures_once() {
        let mut a = World::default();
        let u = a.spawn_unit(7, 1, WorldPos::new(100, 100));
        let b = a.spawn_base(7, WorldPos::new(200, 100));
        let r = a.spawn_resource(WorldPos::new(300, 100));
        let far = a.spawn_unit(7, 0, WorldPos::new(1_000_000, 0));
        let records = a.export(|p| p.x < 500_000);
        assert_eq!(
            records.iter().map(|c| c.unit_id).collect::<Vec<_>>(),
            vec![u, b, r]
        );
        let mut other = World::default();
        other.use_id_block(1 << 40, 1 << 40);
        assert_eq!(
            other.import(&records),
            ImportOutcome {
                added: 3,
                already_present: 0
            }
        );
        assert_eq!(
            other.import(&records),
            ImportOutcome {
                added: 0,
                already_present: 3
            }
        );
        assert_eq!(other.export(|_| true), records);
        // Imported ids from another block do not move this world's own ids.
        assert_eq!(other.spawn_unit(1, 0, WorldPos::new(0, 0)), 1 << 40);
        assert_eq!(a.remove_where(|p| p.x < 500_000), 3);
        let _ = other;
        assert_eq!(a.export(|_| true).len(), 1);
        assert!(a.unit(far).is_some());
    }
}

//! The simulated world: units, resources and bases, stepped one fixed tick at a time.

use std::collections::BTreeMap;

use galaxy_protocol::{
    CombatEvent, CombatEventType, CompressedCommand, PlayerId, SectorId, UnitId, UnitSample,
    UnitState, Velocity, WorldPos,
};

use serde::{Deserialize, Serialize};

use crate::behaviour::{Leg, OutputBuffers, PARALLEL_UNITS, think_all};
use crate::geometry::within;
use crate::inputs::WorldInput;
use crate::kinds::{Kinds, max_health};
use crate::spatial::FollowingGrid;
use crate::table::UnitTable;

/// Tuning of the rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimConfig {
    /// Fixed ticks per second: the kinds' speeds and cooldowns (per
    /// second) are converted to it (a server sets it from its `TickRate`).
    pub tick_hz: u32,
    /// Units fighting in one sector that make a `MassiveBattle` event.
    pub massive_battle_units: usize,
    /// Ticks before the same sector may report another `MassiveBattle`.
    pub massive_battle_interval: u64,
    /// Radius within which units capture a resource.
    pub capture_radius_cm: u64,
    /// Ticks of uncontested presence needed to capture.
    pub capture_ticks: u32,
    /// Hit points of a new base.
    pub base_health: u32,
    /// Threads a tick may use (0: up to two, for worlds of 20,000 units or
    /// more). The world is the same whatever the number. With more than
    /// one, the world also keeps a thread that brings its spatial grid up
    /// to date after each tick, while the caller goes on.
    pub threads: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            tick_hz: 20,
            massive_battle_units: 50,
            massive_battle_interval: 100,
            capture_radius_cm: 3_000,
            capture_ticks: 100,
            base_health: 5_000,
            threads: 0,
        }
    }
}

/// What a unit was told to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Order {
    /// Stand; fight back against enemies in range.
    #[default]
    Idle,
    /// Go there, ignoring enemies.
    Move(WorldPos),
    /// Go there, engaging enemies met on the way.
    AttackMove(WorldPos),
    /// Attack this unit or base until it dies.
    Attack(UnitId),
}

/// One unit's full simulated state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimUnit {
    /// Owning player.
    pub owner: PlayerId,
    /// Unit type (see [`crate::Kinds`]).
    pub kind: u8,
    /// Position in centimetres.
    pub position: WorldPos,
    /// Hit points.
    pub health: u16,
    /// Current order.
    pub order: Order,
    /// What it is shooting at (a unit or a base).
    pub target: Option<UnitId>,
    /// Ticks until it may fire again.
    pub cooldown: u16,
    /// Replicated activity state.
    pub state: UnitState,
    /// Where it is heading at its speed, per tick (zero when it stands or has
    /// arrived): what a dead-reckoning track extrapolates.
    pub velocity: Velocity,
    /// The straight walk it is on, if any (see [`Leg`]).
    pub(crate) leg: Option<Leg>,
}

impl SimUnit {
    /// A fresh unit of `kind` at full health.
    pub fn new(owner: PlayerId, kind: u8, position: WorldPos) -> Self {
        Self {
            owner,
            kind,
            position,
            health: max_health(kind),
            order: Order::Idle,
            target: None,
            cooldown: 0,
            state: UnitState::IDLE,
            velocity: Velocity::ZERO,
            leg: None,
        }
    }

    /// The replicated part, ready for `galaxy_protocol::quantize`.
    pub fn sample(&self) -> UnitSample {
        UnitSample {
            owner: self.owner,
            kind: self.kind,
            position: self.position,
            velocity: self.velocity,
            health: f32::from(self.health),
            state: self.state,
            target: self.target,
        }
    }
}

/// A capturable resource point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    /// Where it is.
    pub position: WorldPos,
    /// Who holds it.
    pub owner: Option<PlayerId>,
    /// Who is capturing it, and for how many ticks.
    pub capture: Option<(PlayerId, u32)>,
}

/// A destroyable base.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Base {
    /// Where it is.
    pub position: WorldPos,
    /// Who owns it.
    pub owner: PlayerId,
    /// Hit points left.
    pub health: u32,
}

/// What applying one command did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommandOutcome {
    /// Units whose order changed.
    pub applied: u64,
    /// Units named that belong to someone else (rejected).
    pub not_owned: u64,
    /// Units named that do not exist (rejected).
    pub unknown: u64,
    /// The whole command was refused because of its target.
    pub invalid_target: bool,
    /// The command was cut short: it named more units that are not the
    /// player's than [`FOREIGN_ID_ALLOWANCE`] plus those that are (the
    /// rest were not looked at).
    pub cut_short: bool,
}

/// Units not the player's (dead, unknown, someone else's) a command may
/// name beyond as many as it names of the player's own before the rest of
/// it is not looked at: a player's orders name its own units, give or take
/// those that died on the way, so a list of other ids costs at most this.
pub const FOREIGN_ID_ALLOWANCE: u64 = 64;

/// The simulated world; see the crate docs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct World {
    config: SimConfig,
    /// The kinds' stats at `config.tick_hz`.
    kinds: Kinds,
    pub(crate) tick: u64,
    pub(crate) next_id: UnitId,
    /// End (exclusive) of the id block `next_id` draws from.
    pub(crate) id_end: UnitId,
    pub(crate) units: UnitTable<SimUnit>,
    pub(crate) resources: BTreeMap<UnitId, Resource>,
    pub(crate) bases: BTreeMap<UnitId, Base>,
    /// Where units stood when the last tick ended (or, for a big world
    /// just stepped, is still catching up with its walks on its own
    /// thread: see [`World::step`]).
    grid: FollowingGrid,
    pub(crate) last_battle: BTreeMap<SectorId, u64>,
    /// Units, resources and bases whose sample may have changed, or that
    /// appeared or went, since the last [`World::take_changes`].
    changed: Vec<UnitId>,
    /// `changed` overflowed (nobody took it): report everything instead.
    pub(crate) changed_all: bool,
    /// Units the grid has not seen in their present place yet.
    pub(crate) moved: Vec<UnitId>,
    /// The threads' tick outputs, kept for their room (see [`OutputBuffers`]).
    outputs: OutputBuffers,
    /// Every change made from outside since the last
    /// [`World::take_inputs`], while recording (see [`WorldInput`]).
    pub(crate) inputs: Option<Vec<WorldInput>>,
}

impl Default for World {
    fn default() -> Self {
        Self::new(SimConfig::default())
    }
}

impl World {
    /// An empty world at tick 0.
    pub fn new(config: SimConfig) -> Self {
        Self {
            kinds: Kinds::at(config.tick_hz),
            config,
            tick: 0,
            next_id: 1,
            id_end: UnitId::MAX,
            units: UnitTable::default(),
            resources: BTreeMap::new(),
            bases: BTreeMap::new(),
            grid: FollowingGrid::default(),
            last_battle: BTreeMap::new(),
            changed: Vec::new(),
            changed_all: false,
            moved: Vec::new(),
            outputs: OutputBuffers::default(),
            inputs: None,
        }
    }

    /// The rules in force.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Every unit kind's stats at this world's tick rate.
    pub fn kinds(&self) -> &Kinds {
        &self.kinds
    }

    /// Ticks stepped so far.
    pub fn tick(&self) -> u64 {
        self.tick
    }

    fn take_id(&mut self) -> UnitId {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Draws new ids from `first..first + len` from now on: servers of one
    /// universe each reserve their own block, so ids stay unique everywhere.
    pub fn use_id_block(&mut self, first: UnitId, len: u64) {
        self.log(|| WorldInput::IdBlock { first, len });
        self.next_id = first.max(1);
        self.id_end = first.saturating_add(len);
    }

    /// Makes sure `id` (inserted from elsewhere) is never handed out again,
    /// if it lies in our own id block.
    pub(crate) fn note_id(&mut self, id: UnitId) {
        if (self.next_id..self.id_end).contains(&id) {
            self.next_id = id.saturating_add(1);
        }
    }

    /// Notes that the sample of `id` may have changed (or it appeared or went).
    pub(crate) fn touch(&mut self, id: UnitId) {
        if self.changed_all {
            return;
        }
        self.changed.push(id);
        // Nobody takes the changes (a world stepped on its own): keep the
        // list bounded, and report everything when it is taken.
        let bound = 4 * (self.units.len() + self.resources.len() + self.bases.len()) + 1024;
        if self.changed.len() > bound {
            self.changed.sort_unstable();
            self.changed.dedup();
            if self.changed.len() > bound / 2 {
                self.changed_all = true;
                self.changed = Vec::new();
            }
        }
    }

    /// Notes that unit `id` may have moved, changed hands, appeared or gone.
    pub(crate) fn touch_place(&mut self, id: UnitId) {
        self.touch(id);
        self.moved.push(id);
    }

    /// What changed since the last call: the ids (sorted, each once) of
    /// units, resources and bases whose sample may differ, that appeared or
    /// that went. `None` means "anything may have": it was not called for
    /// so long that the list was dropped. A replicator looks at these ids
    /// only, so a world that stands still costs it nothing.
    pub fn take_changes(&mut self, out: &mut Vec<UnitId>) -> Option<()> {
        out.clear();
        if std::mem::take(&mut self.changed_all) {
            return None;
        }
        out.append(&mut self.changed);
        // A tick's list is mostly one sorted run (the units, in id order)
        // followed by a few others: the stable sort merges runs in O(n).
        out.sort();
        out.dedup();
        Some(())
    }

    /// Adds a unit and returns its id.
    pub fn spawn_unit(&mut self, owner: PlayerId, kind: u8, position: WorldPos) -> UnitId {
        self.log(|| WorldInput::Spawn {
            owner,
            kind,
            position,
        });
        let id = self.take_id();
        self.units.insert(id, SimUnit::new(owner, kind, position));
        self.touch_place(id);
        id
    }

    /// Puts a unit with a known id (from a snapshot or the server), replacing any.
    pub fn insert_unit(&mut self, id: UnitId, unit: SimUnit) {
        self.log(|| WorldInput::Insert { id, unit });
        self.note_id(id);
        self.units.insert(id, unit);
        self.touch_place(id);
    }

    /// Removes a unit; returns it if it existed.
    pub fn remove_unit(&mut self, id: UnitId) -> Option<SimUnit> {
        self.touch_place(id);
        let gone = self.units.remove(&id);
        if gone.is_some() {
            self.log(|| WorldInput::Remove(vec![id]));
        }
        gone
    }

    /// Adds an unowned resource point.
    pub fn spawn_resource(&mut self, position: WorldPos) -> UnitId {
        self.log(|| WorldInput::SpawnResource { position });
        let id = self.take_id();
        self.touch(id);
        self.resources.insert(
            id,
            Resource {
                position,
                owner: None,
                capture: None,
            },
        );
        id
    }

    /// Adds a base for `owner`.
    pub fn spawn_base(&mut self, owner: PlayerId, position: WorldPos) -> UnitId {
        self.log(|| WorldInput::SpawnBase { owner, position });
        let id = self.take_id();
        self.touch(id);
        let health = self.config.base_health;
        self.bases.insert(
            id,
            Base {
                position,
                owner,
                health,
            },
        );
        id
    }

    /// A unit by id.
    pub fn unit(&self, id: UnitId) -> Option<&SimUnit> {
        self.units.get(&id)
    }

    /// Every unit in id order.
    pub fn units(&self) -> impl Iterator<Item = (UnitId, &SimUnit)> {
        self.units.iter().map(|(&id, u)| (id, u))
    }

    /// Number of units.
    pub fn unit_count(&self) -> usize {
        self.units.len()
    }

    /// Every resource point.
    pub fn resources(&self) -> impl Iterator<Item = (UnitId, &Resource)> {
        self.resources.iter().map(|(&id, r)| (id, r))
    }

    /// A resource point by id.
    pub fn resource(&self, id: UnitId) -> Option<&Resource> {
        self.resources.get(&id)
    }

    /// A base by id.
    pub fn base(&self, id: UnitId) -> Option<&Base> {
        self.bases.get(&id)
    }

    /// Every base.
    pub fn bases(&self) -> impl Iterator<Item = (UnitId, &Base)> {
        self.bases.iter().map(|(&id, b)| (id, b))
    }

    /// Applies `player`'s command to the units it owns; units of others and
    /// unknown units are refused and counted, never touched.
    pub fn apply_command(&mut self, player: PlayerId, cmd: &CompressedCommand) -> CommandOutcome {
        self.log(|| WorldInput::Command {
            player,
            command: cmd.clone(),
        });
        let mut out = CommandOutcome::default();
        let order = match *cmd {
            CompressedCommand::Move { to, .. } => Order::Move(to),
            CompressedCommand::AttackMove { to, .. } => Order::AttackMove(to),
            CompressedCommand::Stop { .. } => Order::Idle,
            CompressedCommand::Attack { target, .. } => {
                let enemy = match (self.units.get(&target), self.bases.get(&target)) {
                    (Some(u), _) => u.owner != player,
                    (None, Some(b)) => b.owner != player,
                    (None, None) => false,
                };
                if !enemy {
                    out.invalid_target = true;
                    return out;
                }
                Order::Attack(target)
            }
        };
        for id in cmd.units().iter() {
            if out.unknown + out.not_owned > out.applied + FOREIGN_ID_ALLOWANCE {
                out.cut_short = true;
                break;
            }
            match self.units.get_mut(&id) {
                None => out.unknown += 1,
                Some(u) if u.owner != player => out.not_owned += 1,
                Some(u) => {
                    u.order = order;
                    u.target = match order {
                        Order::Attack(t) => Some(t),
                        _ => None,
                    };
                    out.applied += 1;
                    self.touch(id);
                }
            }
        }
        out
    }

    /// Advances one fixed tick and returns the events it produced.
    ///
    /// Every unit decides from the world as the tick began (targets, their
    /// positions), so the order units are visited in does not matter.
    /// A big world on two threads returns while its spatial grid is still
    /// moving the tick's walkers on a thread of its own; only the next
    /// tick needs them, and it waits for them if need be.
    pub fn step(&mut self) -> Vec<CombatEvent> {
        let parts = match self.config.threads {
            0 if self.units.len() >= PARALLEL_UNITS => {
                std::thread::available_parallelism().map_or(1, |n| n.get().min(2))
            }
            0 => 1,
            n => n,
        };
        self.step_in(parts)
    }

    /// [`World::step`] with the units split in `parts` threads.
    fn step_in(&mut self, parts: usize) -> Vec<CombatEvent> {
        self.tick += 1;
        let grid = self.grid.get_mut();
        for id in std::mem::take(&mut self.moved) {
            let now = self.units.get(&id).map(|u| (u.owner, u.position));
            grid.update(id, now);
        }
        // Units decide from the grid (the world as the tick began), so each
        // is updated in place; a big world is split between two threads,
        // whose results are merged in id order (the same world either way).
        let (tick, grid, bases, kinds) = (self.tick, &*grid, &self.bases, &self.kinds);
        let parts = parts.max(1);
        let mut outs = self.outputs.take(parts);
        std::thread::scope(|scope| {
            let mut work = self.units.split_mut(parts).into_iter().zip(outs.iter_mut());
            let here = work.next();
            for (run, out) in work {
                scope.spawn(move || think_all(run, tick, grid, bases, kinds, out));
            }
            if let Some((run, out)) = here {
                think_all(run, tick, grid, bases, kinds, out);
            }
        });
        let (out, rest) = outs.split_first_mut().expect("at least one part");
        for o in rest {
            out.append(o);
        }
        for &id in &out.changed {
            self.touch(id);
        }
        // Damage dealt this tick, applied after everyone acted, target by
        // target; fights, sector by sector. Both lists are in attacker id
        // order, and a stable sort keeps that order within each group.
        out.damage.sort_by_key(|d| d.0);
        out.fighting.sort_by_key(|f| f.0);
        let mut events = Vec::new();
        self.apply_damage(&out.damage, &mut events);
        self.report_battles(&out.fighting, &mut events);
        self.capture_resources(&mut events);
        // The grid follows the walkers last (it held the tick's start until
        // here): only the next tick needs it, so a big world's grid does
        // so on its own thread while the caller goes on.
        let next = self.tick + 1;
        if parts > 1 {
            self.grid
                .end_tick_in_background(&mut out.moved, parts, next);
        } else {
            self.grid.get_mut().end_tick(&out.moved, 1, next);
        }
        self.outputs.put_back(outs);
        events
    }

    /// Applies `damage` ((target, amount, attacker), grouped by target in
    /// ascending order) one target at a time.
    fn apply_damage(&mut self, damage: &[(UnitId, u32, UnitId)], events: &mut Vec<CombatEvent>) {
        for hits in damage.chunk_by(|a, b| a.0 == b.0) {
            let target = hits[0].0;
            let amount = hits.iter().fold(0u32, |sum, h| sum.saturating_add(h.1));
            let attackers = || hits.iter().map(|h| h.2);
            self.touch(target);
            if let Some(u) = self.units.get_mut(&target) {
                u.health = u
                    .health
                    .saturating_sub(amount.min(u32::from(u16::MAX)) as u16);
                if u.health == 0 {
                    let sector_id = SectorId::at(u.position);
                    self.units.remove(&target);
                    self.moved.push(target);
                    events.push(self.event(
                        sector_id,
                        CombatEventType::UnitDestroyed,
                        target,
                        attackers(),
                    ));
                }
            } else if let Some(b) = self.bases.get_mut(&target) {
                b.health = b.health.saturating_sub(amount);
                if b.health == 0 {
                    let sector_id = SectorId::at(b.position);
                    self.bases.remove(&target);
                    events.push(self.event(
                        sector_id,
                        CombatEventType::BaseDestroyed,
                        target,
                        attackers(),
                    ));
                }
            }
        }
    }

    fn event(
        &self,
        sector_id: SectorId,
        event_type: CombatEventType,
        subject: UnitId,
        others: impl ExactSizeIterator<Item = UnitId>,
    ) -> CombatEvent {
        let mut participants = Vec::with_capacity(others.len() + 1);
        participants.push(subject);
        participants.extend(others);
        CombatEvent {
            sector_id,
            event_type,
            participants,
            timestamp: self.tick,
        }
    }

    /// Reports a `MassiveBattle` for each sector of `fighting` ((sector,
    /// unit), grouped by sector in ascending order) with enough units in a
    /// fight, at most once per interval.
    fn report_battles(&mut self, fighting: &[(SectorId, UnitId)], events: &mut Vec<CombatEvent>) {
        for group in fighting.chunk_by(|a, b| a.0 == b.0) {
            let sector_id = group[0].0;
            if group.len() < self.config.massive_battle_units {
                continue;
            }
            let due = self
                .last_battle
                .get(&sector_id)
                .is_none_or(|&t| t + self.config.massive_battle_interval <= self.tick);
            if due {
                self.last_battle.insert(sector_id, self.tick);
                events.push(CombatEvent {
                    sector_id,
                    event_type: CombatEventType::MassiveBattle,
                    participants: group.iter().map(|f| f.1).collect(),
                    timestamp: self.tick,
                });
            }
        }
    }

    fn capture_resources(&mut self, events: &mut Vec<CombatEvent>) {
        let radius = self.config.capture_radius_cm;
        let ids: Vec<UnitId> = self.resources.keys().copied().collect();
        for rid in ids {
            let r = self.resources[&rid];
            // Units as they stand after this tick's moves (the grid has the
            // positions the tick began with).
            let mut near: Vec<(UnitId, PlayerId)> = Vec::new();
            self.grid
                .get_mut()
                .within(r.position, radius + self.kinds.max_speed_cm(), |id, _| {
                    if let Some(u) = self.units.get(&id)
                        && within(u.position, r.position, radius)
                    {
                        near.push((id, u.owner));
                    }
                });
            near.sort_unstable();
            let mut owners: Vec<PlayerId> = near.iter().map(|n| n.1).collect();
            owners.sort_unstable();
            owners.dedup();
            let mut next = r;
            match owners.as_slice() {
                [p] if Some(*p) != r.owner => {
                    let progress = match r.capture {
                        Some((q, n)) if q == *p => n + 1,
                        _ => 1,
                    };
                    if progress >= self.config.capture_ticks {
                        next.owner = Some(*p);
                        next.capture = None;
                        events.push(self.event(
                            SectorId::at(r.position),
                            CombatEventType::ResourceCapture,
                            rid,
                            near.iter().map(|n| n.0),
                        ));
                    } else {
                        next.capture = Some((*p, progress));
                    }
                }
                _ => next.capture = None,
            }
            if next != r {
                self.touch(rid);
                self.resources.insert(rid, next);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use galaxy_protocol::UnitIdList;

    /// A big world stepped on two threads is the same world, tick by tick,
    /// as one stepped on one; and passing over units at rest (quiet) gives
    /// the same world as thinking for every unit every tick.
    #[test]
    fn two_threads_and_quiet_units_step_the_same_world() {
        let mut w = World::default();
        for b in 0..26u64 {
            let base = WorldPos::new(b as i64 * 800_000, 0);
            let mut movers = Vec::new();
            for side in 0..2u64 {
                for i in 0..500i64 {
                    let at = WorldPos::new(
                        base.x + (i % 23) * 200,
                        side as i64 * 6_000 + (i / 23) * 200,
                    );
                    let id = w.spawn_unit(b * 2 + side + 1, (i % 3) as u8, at);
                    if side == 0 && i % 3 == 0 {
                        movers.push(id);
                    }
                }
            }
            let units = UnitIdList::from_ids(movers).unwrap();
            let to = WorldPos::new(base.x + 2_000, 9_000);
            w.apply_command(b * 2 + 1, &CompressedCommand::AttackMove { units, to });
        }
        assert!(w.unit_count() >= PARALLEL_UNITS);
        let (mut one, mut two, mut awake) = (w.clone(), w.clone(), w);
        let (mut events, mut passed_over) = (0, 0);
        for _ in 0..60 {
            passed_over += one.units.quiet_count();
            awake.units.wake_all();
            let a = one.step_in(1);
            let b = two.step_in(2);
            let c = awake.step_in(1);
            assert_eq!(a, b);
            assert_eq!(a, c);
            events += a.len();
            assert!(one == two, "the worlds differ at tick {}", one.tick());
            assert!(
                one == awake,
                "quiet units changed the world at tick {}",
                one.tick()
            );
        }
        assert!(events > 0, "the armies fought");
        // Two thirds of one army and all of the other stand idle out of
        // range at the start: most ticks pass many of them over.
        assert!(passed_over > 60 * 10_000, "{passed_over} quiet unit-ticks");
    }
}

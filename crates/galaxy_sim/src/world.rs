//! The simulated world: units, resources and bases, stepped one fixed tick at a time.

use std::collections::{BTreeMap, HashMap};

use galaxy_protocol::{
    CombatEvent, CombatEventType, CompressedCommand, PlayerId, SectorId, UnitId, UnitSample,
    UnitState, Velocity, WorldPos,
};

use crate::geometry::{distance_cm, distance_sq, step_towards, velocity_towards, within};
use crate::kinds::kind_stats;

/// Tuning of the rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// Fixed ticks per second (speeds and cooldowns are per tick).
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
        }
    }
}

/// What a unit was told to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimUnit {
    /// Owning player.
    pub owner: PlayerId,
    /// Unit type (see [`crate::kind_stats`]).
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
    leg: Option<Leg>,
}

/// A straight walk from `from` to `to`: a unit on a leg is, after `ticks`
/// ticks, at the point of the exact line its speed has reached (rounded to
/// the centimetre), so its path does not drift from the line and a
/// dead-reckoning track of its velocity stays on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Leg {
    from: WorldPos,
    to: WorldPos,
    ticks: u64,
}

impl Leg {
    /// Where the walk is after `ticks` ticks at `speed` cm per tick.
    fn position(&self, speed: u64) -> WorldPos {
        let length = distance_cm(self.from, self.to);
        let walked = self.ticks.saturating_mul(speed);
        if walked >= length {
            return self.to;
        }
        let (d, w) = (i128::from(length), i128::from(walked));
        // Nearest centimetre, half away from zero.
        let along = |a: i64, b: i64| {
            let v = (i128::from(b) - i128::from(a)) * w;
            (i128::from(a) + (2 * v + v.signum() * d) / (2 * d)) as i64
        };
        WorldPos::new(along(self.from.x, self.to.x), along(self.from.y, self.to.y))
    }
}

impl SimUnit {
    /// A fresh unit of `kind` at full health.
    pub fn new(owner: PlayerId, kind: u8, position: WorldPos) -> Self {
        Self {
            owner,
            kind,
            position,
            health: kind_stats(kind).max_health,
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resource {
    /// Where it is.
    pub position: WorldPos,
    /// Who holds it.
    pub owner: Option<PlayerId>,
    /// Who is capturing it, and for how many ticks.
    pub capture: Option<(PlayerId, u32)>,
}

/// A destroyable base.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
}

/// Grid cell for neighbour queries: 50 m.
const CELL_CM: i64 = 5_000;

fn cell(p: WorldPos) -> (i64, i64) {
    (p.x.div_euclid(CELL_CM), p.y.div_euclid(CELL_CM))
}

/// Units in one grid cell, and whether they all belong to one player (then
/// that player's units can skip the cell when looking for enemies).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Cell {
    units: Vec<(UnitId, PlayerId, WorldPos)>,
    single_owner: Option<PlayerId>,
}

/// The simulated world; see the crate docs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct World {
    config: SimConfig,
    tick: u64,
    next_id: UnitId,
    /// End (exclusive) of the id block `next_id` draws from.
    id_end: UnitId,
    pub(crate) units: BTreeMap<UnitId, SimUnit>,
    pub(crate) resources: BTreeMap<UnitId, Resource>,
    pub(crate) bases: BTreeMap<UnitId, Base>,
    grid: HashMap<(i64, i64), Cell>,
    last_battle: BTreeMap<SectorId, u64>,
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
            config,
            tick: 0,
            next_id: 1,
            id_end: UnitId::MAX,
            units: BTreeMap::new(),
            resources: BTreeMap::new(),
            bases: BTreeMap::new(),
            grid: HashMap::new(),
            last_battle: BTreeMap::new(),
        }
    }

    /// The rules in force.
    pub fn config(&self) -> &SimConfig {
        &self.config
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

    /// Adds a unit and returns its id.
    pub fn spawn_unit(&mut self, owner: PlayerId, kind: u8, position: WorldPos) -> UnitId {
        let id = self.take_id();
        self.units.insert(id, SimUnit::new(owner, kind, position));
        id
    }

    /// Puts a unit with a known id (from a snapshot or the server), replacing any.
    pub fn insert_unit(&mut self, id: UnitId, unit: SimUnit) {
        self.note_id(id);
        self.units.insert(id, unit);
    }

    /// Removes a unit; returns it if it existed.
    pub fn remove_unit(&mut self, id: UnitId) -> Option<SimUnit> {
        self.units.remove(&id)
    }

    /// Adds an unowned resource point.
    pub fn spawn_resource(&mut self, position: WorldPos) -> UnitId {
        let id = self.take_id();
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
        let id = self.take_id();
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
                }
            }
        }
        out
    }

    fn rebuild_grid(&mut self) {
        for c in self.grid.values_mut() {
            c.units.clear();
        }
        for (&id, u) in &self.units {
            let c = self.grid.entry(cell(u.position)).or_default();
            c.single_owner = if c.units.is_empty() || c.single_owner == Some(u.owner) {
                Some(u.owner)
            } else {
                None
            };
            c.units.push((id, u.owner, u.position));
        }
        self.grid.retain(|_, c| !c.units.is_empty());
    }

    /// The nearest enemy of `owner` within `range` of `pos` (ties: lowest id).
    fn nearest_enemy(&self, owner: PlayerId, pos: WorldPos, range: u64) -> Option<UnitId> {
        let r = (range as i64 / CELL_CM) + 1;
        let (cx, cy) = cell(pos);
        let limit = u128::from(range) * u128::from(range);
        let mut best: Option<(u128, UnitId)> = None;
        for gx in cx.saturating_sub(r)..=cx.saturating_add(r) {
            for gy in cy.saturating_sub(r)..=cy.saturating_add(r) {
                let Some(c) = self
                    .grid
                    .get(&(gx, gy))
                    .filter(|c| c.single_owner != Some(owner))
                else {
                    continue;
                };
                for &(id, o, p) in &c.units {
                    if o == owner {
                        continue;
                    }
                    let d = distance_sq(pos, p);
                    if d <= limit && best.is_none_or(|b| (d, id) < b) {
                        best = Some((d, id));
                    }
                }
            }
        }
        best.map(|b| b.1)
    }

    /// Position of a unit or base that can be attacked.
    fn target_position(&self, id: UnitId) -> Option<WorldPos> {
        self.units
            .get(&id)
            .map(|u| u.position)
            .or_else(|| self.bases.get(&id).map(|b| b.position))
    }

    /// Advances one fixed tick and returns the events it produced.
    pub fn step(&mut self) -> Vec<CombatEvent> {
        self.tick += 1;
        self.rebuild_grid();
        let ids: Vec<UnitId> = self.units.keys().copied().collect();
        // Damage dealt this tick: target -> (total, attackers), applied after everyone acted.
        let mut damage: BTreeMap<UnitId, (u32, Vec<UnitId>)> = BTreeMap::new();
        let mut fighting: BTreeMap<SectorId, Vec<UnitId>> = BTreeMap::new();
        for id in ids {
            let u = self.units[&id];
            let stats = kind_stats(u.kind);
            // Choose a target.
            let target = match u.order {
                Order::Attack(t) => self.target_position(t).map(|_| t),
                Order::Move(_) => None,
                Order::Idle | Order::AttackMove(_) => {
                    let keep = u.target.filter(|&t| {
                        self.target_position(t)
                            .is_some_and(|p| within(u.position, p, stats.sight_cm))
                    });
                    let range = if u.order == Order::Idle {
                        stats.attack_range_cm
                    } else {
                        stats.sight_cm
                    };
                    // Units without a target look around every fourth tick, staggered by id.
                    let look = (self.tick + id).is_multiple_of(4);
                    keep.or_else(|| {
                        look.then(|| self.nearest_enemy(u.owner, u.position, range))
                            .flatten()
                    })
                }
            };
            let mut next = u;
            next.target = target;
            next.velocity = Velocity::ZERO;
            next.leg = None;
            if matches!(u.order, Order::Attack(_)) && target.is_none() {
                next.order = Order::Idle;
            }
            next.cooldown = u.cooldown.saturating_sub(1);
            let target_pos = target.and_then(|t| self.target_position(t));
            let in_range = target_pos.is_some_and(|p| within(u.position, p, stats.attack_range_cm));
            if in_range {
                next.state = UnitState::ATTACKING;
                fighting
                    .entry(SectorId::at(u.position))
                    .or_default()
                    .push(id);
                if next.cooldown == 0 {
                    next.cooldown = stats.cooldown_ticks;
                    let e = damage
                        .entry(target.expect("in range implies a target"))
                        .or_default();
                    e.0 += u32::from(stats.damage);
                    e.1.push(id);
                }
            } else {
                let goal = match (target_pos, next.order) {
                    (Some(p), _) => Some(p),
                    (None, Order::Move(p) | Order::AttackMove(p)) => Some(p),
                    _ => None,
                };
                match goal {
                    Some(p) => {
                        let speed = stats.speed_cm_per_tick;
                        // Keep walking the same leg, or start a new one here.
                        let mut leg = match u.leg {
                            Some(l) if l.to == p => l,
                            _ => Leg {
                                from: u.position,
                                to: p,
                                ticks: 0,
                            },
                        };
                        leg.ticks += 1;
                        let on_line = leg.position(speed);
                        next.position = if distance_cm(u.position, on_line) <= speed {
                            next.leg = Some(leg);
                            on_line
                        } else {
                            // (Not for a leg walked from its start: rounding
                            // moves a point by less than a centimetre.)
                            step_towards(u.position, p, speed)
                        };
                        next.velocity = velocity_towards(leg.from, p, speed);
                        if distance_cm(next.position, p) < speed {
                            next.velocity = velocity_towards(next.position, p, speed);
                        }
                        next.state = if matches!(next.order, Order::AttackMove(_)) {
                            UnitState::ATTACK_MOVING
                        } else {
                            UnitState::MOVING
                        };
                        if target_pos.is_none() && next.position == p {
                            next.order = Order::Idle;
                            next.state = UnitState::IDLE;
                            next.velocity = Velocity::ZERO;
                            next.leg = None;
                        }
                    }
                    None => next.state = UnitState::IDLE,
                }
            }
            self.units.insert(id, next);
        }
        let mut events = Vec::new();
        self.apply_damage(damage, &mut events);
        self.report_battles(fighting, &mut events);
        self.capture_resources(&mut events);
        events
    }

    fn apply_damage(
        &mut self,
        damage: BTreeMap<UnitId, (u32, Vec<UnitId>)>,
        events: &mut Vec<CombatEvent>,
    ) {
        for (target, (amount, attackers)) in damage {
            if let Some(u) = self.units.get_mut(&target) {
                u.health = u
                    .health
                    .saturating_sub(amount.min(u32::from(u16::MAX)) as u16);
                if u.health == 0 {
                    let sector_id = SectorId::at(u.position);
                    self.units.remove(&target);
                    events.push(self.event(
                        sector_id,
                        CombatEventType::UnitDestroyed,
                        target,
                        attackers,
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
                        attackers,
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
        others: Vec<UnitId>,
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

    fn report_battles(
        &mut self,
        fighting: BTreeMap<SectorId, Vec<UnitId>>,
        events: &mut Vec<CombatEvent>,
    ) {
        for (sector_id, ids) in fighting {
            if ids.len() < self.config.massive_battle_units {
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
                    participants: ids,
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
            let near: Vec<(UnitId, PlayerId)> = self
                .units
                .iter()
                .filter(|(_, u)| within(u.position, r.position, radius))
                .map(|(&id, u)| (id, u.owner))
                .collect();
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
                        let capturers = near.iter().map(|n| n.0).collect();
                        events.push(self.event(
                            SectorId::at(r.position),
                            CombatEventType::ResourceCapture,
                            rid,
                            capturers,
                        ));
                    } else {
                        next.capture = Some((*p, progress));
                    }
                }
                _ => next.capture = None,
            }
            self.resources.insert(rid, next);
        }
    }
}

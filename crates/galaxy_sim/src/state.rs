//! A world's whole state as plain data ([`WorldState`]), a world rebuilt
//! from it, and a hash of it: what a replay's keyframes hold and what its
//! checks compare. The spatial grid, the change lists and buffers are not
//! state: they follow from the units, and a rebuilt world builds them again.

use std::collections::BTreeMap;

use galaxy_protocol::{SectorId, UnitId};

use crate::behaviour::Leg;
use crate::world::{Base, Order, Resource, SimConfig, SimUnit, World};

/// Everything a tick depends on, in id order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorldState {
    /// Ticks stepped.
    pub tick: u64,
    /// Next id handed out.
    pub next_id: UnitId,
    /// End (exclusive) of the id block `next_id` draws from.
    pub id_end: UnitId,
    /// The units, whole, by id.
    pub units: Vec<(UnitId, SimUnit)>,
    /// Resource points by id.
    pub resources: Vec<(UnitId, Resource)>,
    /// Bases by id.
    pub bases: Vec<(UnitId, Base)>,
    /// Tick of each sector's last `MassiveBattle` event.
    pub last_battle: Vec<(SectorId, u64)>,
}

impl World {
    /// The world's whole state (a copy).
    pub fn state(&self) -> WorldState {
        WorldState {
            tick: self.tick,
            next_id: self.next_id,
            id_end: self.id_end,
            units: self.units().map(|(id, u)| (id, *u)).collect(),
            resources: self.resources().map(|(id, r)| (id, *r)).collect(),
            bases: self.bases().map(|(id, b)| (id, *b)).collect(),
            last_battle: self.last_battle.iter().map(|(&s, &t)| (s, t)).collect(),
        }
    }

    /// A world in `state` under `config`: stepping it gives what stepping
    /// the world the state was taken from gives. A replicator taking its
    /// changes sees "anything may have changed".
    pub fn from_state(config: SimConfig, state: &WorldState) -> World {
        let mut w = World::new(config);
        w.tick = state.tick;
        w.next_id = state.next_id;
        w.id_end = state.id_end;
        w.units.extend(state.units.iter().copied());
        w.resources = state.resources.iter().copied().collect();
        w.bases = state.bases.iter().copied().collect();
        w.last_battle = state
            .last_battle
            .iter()
            .copied()
            .collect::<BTreeMap<_, _>>();
        // The grid takes every unit in before the next tick.
        w.moved = state.units.iter().map(|u| u.0).collect();
        w.changed_all = true;
        w
    }

    /// A hash of the world's whole state (see [`WorldState`]): equal
    /// worlds give equal hashes, on any machine.
    pub fn state_hash(&self) -> u64 {
        let mut h = StateHasher::default();
        h.add(self.tick);
        h.add(self.next_id);
        h.add(self.id_end);
        h.add(self.units.len() as u64);
        for (id, u) in self.units() {
            h.add(id);
            h.unit(u);
        }
        h.add(self.resources.len() as u64);
        for (&id, r) in &self.resources {
            h.add(id);
            h.pos(r.position);
            h.add(r.owner.map_or(0, |o| o.wrapping_add(1)));
            let (p, n) = r.capture.unwrap_or((u64::MAX, u32::MAX));
            h.add(p);
            h.add(u64::from(n));
        }
        h.add(self.bases.len() as u64);
        for (&id, b) in &self.bases {
            h.add(id);
            h.pos(b.position);
            h.add(b.owner);
            h.add(u64::from(b.health));
        }
        for (s, &t) in &self.last_battle {
            h.add(s.x as u64);
            h.add(s.y as u64);
            h.add(u64::from(s.scale));
            h.add(t);
        }
        h.finish()
    }
}

/// A multiply-rotate hash over 64-bit words (fixed, so hashes from
/// different machines and builds compare).
#[derive(Default)]
struct StateHasher(u64);

impl StateHasher {
    fn add(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(23) ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn pos(&mut self, p: galaxy_protocol::WorldPos) {
        self.add(p.x as u64);
        self.add(p.y as u64);
    }

    fn unit(&mut self, u: &SimUnit) {
        self.add(u.owner);
        self.add(u64::from(u.kind) | u64::from(u.health) << 8 | u64::from(u.cooldown) << 24);
        self.add(u64::from(u.state.0));
        self.pos(u.position);
        let (tag, a, b) = order_words(u.order);
        self.add(tag);
        self.add(a);
        self.add(b);
        self.add(u.target.map_or(0, |t| t.wrapping_add(1)));
        self.add(u64::from(u.velocity.x as u32) | u64::from(u.velocity.y as u32) << 32);
        match u.leg {
            None => self.add(0),
            Some(Leg {
                from,
                to,
                ticks,
                length,
                velocity,
            }) => {
                self.add(1);
                self.pos(from);
                self.pos(to);
                self.add(ticks);
                self.add(length);
                self.add(u64::from(velocity.x as u32) | u64::from(velocity.y as u32) << 32);
            }
        }
    }

    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x
    }
}

/// An order as (tag, two words): 0 idle, 1 move, 2 attack-move (to x, y),
/// 3 attack (target).
pub(crate) fn order_words(o: Order) -> (u64, u64, u64) {
    match o {
        Order::Idle => (0, 0, 0),
        Order::Move(p) => (1, p.x as u64, p.y as u64),
        Order::AttackMove(p) => (2, p.x as u64, p.y as u64),
        Order::Attack(t) => (3, t, 0),
    }
}

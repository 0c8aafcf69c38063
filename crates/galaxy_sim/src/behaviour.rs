//! What one unit does in one tick: choose a target, walk a straight leg
//! towards its goal or shoot. Every unit decides from the world as the tick
//! began (the grid's positions, the bases), so units can be visited in any
//! order, or on two threads, and the world comes out the same.

use std::collections::BTreeMap;

use galaxy_protocol::{SectorId, UnitId, UnitState, Velocity, WorldPos};

use crate::geometry::{distance_sq, velocity_towards, within};
use crate::kinds::Kinds;
use crate::spatial::{Grid, Walk};
use crate::table::Run;
use crate::world::{Base, Order, SimUnit};
use galaxy_protocol::geometry::{distance_cm, step_towards};

/// A straight walk from `from` to `to`: a unit on a leg is, after `ticks`
/// ticks, at the point of the exact line its speed has reached (rounded to
/// the centimetre), so its path does not drift from the line and a
/// dead-reckoning track of its velocity stays on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Leg {
    pub(crate) from: WorldPos,
    pub(crate) to: WorldPos,
    pub(crate) ticks: u64,
    /// `distance_cm(from, to)`.
    pub(crate) length: u64,
    /// Its velocity at the walker's speed.
    pub(crate) velocity: Velocity,
}

impl Leg {
    fn new(from: WorldPos, to: WorldPos, speed: u64) -> Self {
        Self {
            from,
            to,
            ticks: 0,
            length: distance_cm(from, to),
            velocity: velocity_towards(from, to, speed),
        }
    }

    /// Where the walk is after `ticks` ticks at `speed` cm per tick.
    pub(crate) fn position(&self, speed: u64) -> WorldPos {
        let length = self.length;
        let walked = self.ticks.saturating_mul(speed);
        if walked >= length {
            return self.to;
        }
        let (d, w) = (i128::from(length), i128::from(walked));
        // Nearest centimetre, half away from zero; in i64 when it fits
        // (always, for legs shorter than ~20,000 km), else in i128.
        let along = |a: i64, b: i64| {
            let fast = b.checked_sub(a).and_then(|span| {
                let v = span.checked_mul(i64::try_from(walked).ok()?)?;
                let d = i64::try_from(length).ok()?;
                let num = v.checked_mul(2)?.checked_add(v.signum() * d)?;
                a.checked_add(num / d.checked_mul(2)?)
            });
            fast.unwrap_or_else(|| along_exact(a, b, w, d))
        };
        WorldPos::new(along(self.from.x, self.to.x), along(self.from.y, self.to.y))
    }
}

/// The point `walked / length` of the way from `a` to `b`, to the nearest
/// centimetre (half away from zero), in i128: exact for any coordinates.
fn along_exact(a: i64, b: i64, walked: i128, length: i128) -> i64 {
    let v = (i128::from(b) - i128::from(a)) * walked;
    (i128::from(a) + (2 * v + v.signum() * length) / (2 * length)) as i64
}

/// What the units did in a tick besides changing themselves.
#[derive(Clone, Debug, Default)]
pub(crate) struct TickOutput {
    /// (target, damage, attacker), in attacker id order.
    pub(crate) damage: Vec<(UnitId, u32, UnitId)>,
    /// (sector, unit) of units fighting, in id order.
    pub(crate) fighting: Vec<(SectorId, UnitId)>,
    /// Units whose replicated sample changed.
    pub(crate) changed: Vec<UnitId>,
    /// Units whose position changed: from where to where.
    pub(crate) moved: Vec<Walk>,
}

impl TickOutput {
    /// Empties every list, keeping its allocation.
    fn clear(&mut self) {
        self.damage.clear();
        self.fighting.clear();
        self.changed.clear();
        self.moved.clear();
    }

    /// Moves everything in `other` to the end of this output's lists.
    pub(crate) fn append(&mut self, other: &mut Self) {
        self.damage.append(&mut other.damage);
        self.fighting.append(&mut other.fighting);
        self.changed.append(&mut other.changed);
        self.moved.append(&mut other.moved);
    }
}

/// Each thread's [`TickOutput`], kept from tick to tick so that a tick
/// fills lists that already have room instead of growing new ones (tens of
/// thousands of walks a tick in a big battle). Scratch space, not part of
/// the world: it compares equal, clones empty and prints nothing.
#[derive(Default)]
pub(crate) struct OutputBuffers(Vec<TickOutput>);

impl OutputBuffers {
    /// `parts` empty outputs, with the room the last tick's had.
    pub(crate) fn take(&mut self, parts: usize) -> Vec<TickOutput> {
        let mut outs = std::mem::take(&mut self.0);
        outs.resize_with(parts, TickOutput::default);
        outs.iter_mut().for_each(TickOutput::clear);
        outs
    }

    /// Keeps `outs` for the next [`OutputBuffers::take`].
    pub(crate) fn put_back(&mut self, outs: Vec<TickOutput>) {
        self.0 = outs;
    }
}

impl Clone for OutputBuffers {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl PartialEq for OutputBuffers {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for OutputBuffers {}

impl std::fmt::Debug for OutputBuffers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutputBuffers")
    }
}

/// Worlds with at least this many units step on two threads.
pub(crate) const PARALLEL_UNITS: usize = 20_000;

/// Whether unit `id` looks around for an enemy at `tick` (if it has no
/// target): every fourth tick, staggered by id.
fn looks(tick: u64, id: UnitId) -> bool {
    (tick + id).is_multiple_of(4)
}

/// True for a unit at rest: idle, no target, weapon ready, no walk. Such a
/// unit's next state is itself unless it looks around ([`looks`]) and finds
/// an enemy, so on other ticks it can be passed over without reading it.
fn at_rest(u: &SimUnit) -> bool {
    u.order == Order::Idle
        && u.target.is_none()
        && u.cooldown == 0
        && u.velocity == Velocity::ZERO
        && u.leg.is_none()
        && u.state == UnitState::IDLE
}

/// One tick of each unit of `run` (in id order; holes are skipped),
/// noting what changed. A unit marked quiet (at rest when last visited, and
/// unchanged since: the table clears the mark on any change) is passed over
/// on the ticks it does not look around, where its thinking could only give
/// itself back; most of an idle army is never read then.
pub(crate) fn think_all(
    run: Run<'_, SimUnit>,
    tick: u64,
    grid: &Grid,
    bases: &BTreeMap<UnitId, Base>,
    kinds: &Kinds,
    out: &mut TickOutput,
) {
    for ((&id, slot), quiet) in run.ids.iter().zip(run.slots).zip(run.quiet) {
        if *quiet && !looks(tick, id) {
            continue;
        }
        let Some(slot) = slot else { continue };
        let next = think(id, slot, tick, grid, bases, kinds, out);
        *quiet = at_rest(&next);
        if next != *slot {
            if next.position != slot.position {
                out.moved.push(Walk {
                    id,
                    owner: next.owner,
                    from: slot.position,
                    to: next.position,
                });
            }
            if next.sample() != slot.sample() {
                out.changed.push(id);
            }
            *slot = next;
        }
    }
}

/// Unit `id`'s next state: its target, movement and shots, decided from
/// the world as the tick began (`grid`, `bases`).
fn think(
    id: UnitId,
    u: &SimUnit,
    tick: u64,
    grid: &Grid,
    bases: &BTreeMap<UnitId, Base>,
    kinds: &Kinds,
    out: &mut TickOutput,
) -> SimUnit {
    let u = *u;
    let target_position = |id: UnitId| {
        grid.position(id)
            .or_else(|| bases.get(&id).map(|b| b.position))
    };
    let stats = kinds.get(u.kind);
    // Choose a target (and where it is: looked up once).
    let (target, target_pos) = match u.order {
        Order::Attack(t) => match target_position(t) {
            Some(p) => (Some(t), Some(p)),
            None => (None, None),
        },
        Order::Move(_) => (None, None),
        Order::Idle | Order::AttackMove(_) => {
            let keep = u.target.and_then(|t| {
                target_position(t)
                    .filter(|&p| within(u.position, p, stats.sight_cm))
                    .map(|p| (t, p))
            });
            let range = if u.order == Order::Idle {
                stats.attack_range_cm
            } else {
                stats.sight_cm
            };
            // Units without a target look around every fourth tick, staggered by id.
            let look = looks(tick, id);
            let found = keep.or_else(|| {
                look.then(|| grid.nearest_enemy(u.owner, u.position, range))
                    .flatten()
                    .and_then(|t| target_position(t).map(|p| (t, p)))
            });
            (found.map(|f| f.0), found.map(|f| f.1))
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
    let in_range = target_pos.is_some_and(|p| within(u.position, p, stats.attack_range_cm));
    if in_range {
        next.state = UnitState::ATTACKING;
        out.fighting.push((SectorId::at(u.position), id));
        if next.cooldown == 0 {
            next.cooldown = stats.cooldown_ticks;
            let t = target.expect("in range implies a target");
            out.damage.push((t, u32::from(stats.damage), id));
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
                    _ => Leg::new(u.position, p, speed),
                };
                leg.ticks += 1;
                let on_line = leg.position(speed);
                // At most `speed` (floor of the distance, as `distance_cm`).
                let step_ok = distance_sq(u.position, on_line) < u128::from(speed + 1).pow(2);
                next.position = if step_ok {
                    next.leg = Some(leg);
                    on_line
                } else {
                    // (Not for a leg walked from its start: rounding
                    // moves a point by less than a centimetre.)
                    step_towards(u.position, p, speed)
                };
                let left = leg.length.saturating_sub(leg.ticks.saturating_mul(speed));
                next.velocity = if step_ok && left >= speed {
                    leg.velocity
                } else {
                    velocity_towards(next.position, p, speed)
                };
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
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use galaxy_protocol::link_model::SplitMix64;

    /// A tick's outputs come back empty but with the room the last tick's
    /// lists grew, however many threads the tick used.
    #[test]
    fn output_buffers_come_back_empty_with_their_room() {
        let mut buffers = OutputBuffers::default();
        let mut outs = buffers.take(2);
        for (i, out) in outs.iter_mut().enumerate() {
            out.changed.extend(0..1_000 * (i as u64 + 1));
            out.damage.push((1, 2, 3));
        }
        let (first, rest) = outs.split_first_mut().unwrap();
        first.append(&mut rest[0]);
        assert_eq!(first.changed.len(), 3_000);
        buffers.put_back(outs);
        let outs = buffers.take(2);
        assert!(
            outs.iter()
                .all(|o| o.changed.is_empty() && o.damage.is_empty())
        );
        assert!(outs[0].changed.capacity() >= 3_000);
        assert!(outs[1].changed.capacity() >= 2_000);
        buffers.put_back(outs);
        assert_eq!(buffers.take(1).len(), 1);
        assert_eq!(buffers.take(3).len(), 3);
    }

    /// `Leg::position` in i128 only: what the i64 fast path must equal.
    fn position_i128(leg: &Leg, speed: u64) -> WorldPos {
        let walked = leg.ticks.saturating_mul(speed);
        if walked >= leg.length {
            return leg.to;
        }
        let (d, w) = (i128::from(leg.length), i128::from(walked));
        let along = |a: i64, b: i64| along_exact(a, b, w, d);
        WorldPos::new(along(leg.from.x, leg.to.x), along(leg.from.y, leg.to.y))
    }

    /// Short legs, long legs and legs across the whole coordinate range
    /// (where only i128 holds the product) walk the same points either way.
    #[test]
    fn leg_positions_match_exact_arithmetic() {
        let mut rng = SplitMix64::new(5);
        for i in 0..20_000 {
            let scale = [1_000u64, 10_000_000, 1 << 40, u64::MAX >> 2][i % 4];
            let coord = |rng: &mut SplitMix64| rng.below(scale) as i64 - (scale / 2) as i64;
            let from = WorldPos::new(coord(&mut rng), coord(&mut rng));
            let to = WorldPos::new(coord(&mut rng), coord(&mut rng));
            let speed = 1 + rng.below(500);
            let mut leg = Leg::new(from, to, speed);
            leg.ticks = rng.below(leg.length / speed + 2);
            assert_eq!(leg.position(speed), position_i128(&leg, speed), "{leg:?}");
        }
    }
}

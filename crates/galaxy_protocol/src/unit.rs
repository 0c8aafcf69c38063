//! Unit state as the protocol sees it, and the functions that quantize it.
//!
//! A [`QuantizedUnit`] is what baselines hold on both sides of a connection;
//! it can only be made by [`quantize`] or [`quantize_at`] (or by decoding
//! one that was), so the sender and receiver always compare and reconstruct
//! bit-identical values.
//!
//! A moving unit's state is a dead-reckoning track: its position at an
//! anchor tick and its velocity. Both sides compute where it is at any tick
//! with [`QuantizedUnit::position_at`], so a unit on a straight path keeps
//! the same state, and costs nothing on the wire, until it turns or stops
//! (see [`crate::DeadReckoner`]).

use serde::{Deserialize, Serialize};

use crate::position::{Velocity, WorldPos};

/// A unit's identity, unique in the whole universe.
pub type UnitId = u64;

/// A player's identity; the netcode token's client id.
pub type PlayerId = u64;

/// Largest health a unit can have, so any health change fits the design's `i16` delta.
pub const MAX_HEALTH: u16 = i16::MAX as u16;

/// What a unit is doing (the design's `state`): a small open set of codes.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct UnitState(pub u8);

impl UnitState {
    /// Standing still.
    pub const IDLE: Self = Self(0);
    /// Moving to an ordered position.
    pub const MOVING: Self = Self(1);
    /// Attacking its target.
    pub const ATTACKING: Self = Self(2);
    /// Moving, engaging enemies met on the way.
    pub const ATTACK_MOVING: Self = Self(3);
    /// Capturing a resource or base.
    pub const CAPTURING: Self = Self(4);
}

/// The input to [`quantize`]: a unit as a simulation holds it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UnitSample {
    /// The owning player.
    pub owner: PlayerId,
    /// Game-defined unit type.
    pub kind: u8,
    /// Authoritative position (already fixed point; see [`WorldPos::from_metres`]).
    pub position: WorldPos,
    /// Where the unit is heading, per tick (already fixed point; see
    /// [`Velocity::from_cm_per_tick`]); [`Velocity::ZERO`] when it stands.
    /// Only [`quantize_at`] (dead reckoning) uses it.
    pub velocity: Velocity,
    /// Hit points; rounded and clamped to `0..=MAX_HEALTH`.
    pub health: f32,
    /// Current activity.
    pub state: UnitState,
    /// The unit it is attacking, if any.
    pub target: Option<UnitId>,
}

/// A unit's replicated state after quantization: the value baselines hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawUnit", into = "RawUnit")]
pub struct QuantizedUnit {
    owner: PlayerId,
    kind: u8,
    position: WorldPos,
    velocity: Velocity,
    anchor_tick: u64,
    health: u16,
    state: UnitState,
    target: Option<UnitId>,
}

/// Quantizes a simulated unit as a still picture (no velocity): where it is
/// now. Snapshots and transfers between servers use this form.
pub fn quantize(sample: &UnitSample) -> QuantizedUnit {
    quantize_with(sample, Motion::still(sample.position))
}

/// Quantizes a simulated unit as a dead-reckoning track anchored at `tick`:
/// its position then and its velocity, from which both sides extrapolate
/// ([`QuantizedUnit::position_at`]). A unit at rest is the same as [`quantize`].
pub fn quantize_at(sample: &UnitSample, tick: u64) -> QuantizedUnit {
    quantize_with(sample, Motion::new(sample.position, sample.velocity, tick))
}

fn quantize_with(sample: &UnitSample, motion: Motion) -> QuantizedUnit {
    // `as` saturates and maps NaN to 0.
    let health = (sample.health.round() as i64).clamp(0, i64::from(MAX_HEALTH)) as u16;
    QuantizedUnit {
        owner: sample.owner,
        kind: sample.kind,
        position: motion.position,
        velocity: motion.velocity,
        anchor_tick: motion.anchor_tick,
        health,
        state: sample.state,
        target: sample.target,
    }
}

/// The kinematic part of a [`QuantizedUnit`]: position at an anchor tick and
/// velocity. Canonical: a unit at rest has anchor tick 0, so two still
/// units at the same place are equal whenever they stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Motion {
    /// Position at `anchor_tick`.
    pub position: WorldPos,
    /// Velocity, 1/16 cm per tick.
    pub velocity: Velocity,
    /// Tick at which the unit was at `position` (0 when at rest).
    pub anchor_tick: u64,
}

impl Motion {
    /// A track (canonicalised: at rest means anchor tick 0).
    pub fn new(position: WorldPos, velocity: Velocity, anchor_tick: u64) -> Self {
        Self {
            position,
            velocity,
            anchor_tick: if velocity.is_zero() { 0 } else { anchor_tick },
        }
    }

    /// Standing at `position`.
    pub fn still(position: WorldPos) -> Self {
        Self::new(position, Velocity::ZERO, 0)
    }

    /// Where this track is at `tick` (saturating at the edge of the world).
    pub fn position_at(&self, tick: u64) -> WorldPos {
        if self.velocity.is_zero() {
            return self.position;
        }
        let (dx, dy) = self
            .velocity
            .offset_after(i128::from(tick) - i128::from(self.anchor_tick));
        let clamp = |v: i128| v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
        WorldPos::new(
            clamp(i128::from(self.position.x) + dx),
            clamp(i128::from(self.position.y) + dy),
        )
    }
}

impl QuantizedUnit {
    /// Builds a value whose fields are already valid (decoders and deltas
    /// only); the motion is canonicalised as [`Motion::new`] does.
    pub(crate) fn from_parts(
        owner: PlayerId,
        kind: u8,
        motion: Motion,
        health: u16,
        state: UnitState,
        target: Option<UnitId>,
    ) -> Option<Self> {
        let motion = Motion::new(motion.position, motion.velocity, motion.anchor_tick);
        (health <= MAX_HEALTH).then_some(Self {
            owner,
            kind,
            position: motion.position,
            velocity: motion.velocity,
            anchor_tick: motion.anchor_tick,
            health,
            state,
            target,
        })
    }

    /// This unit with another track (health, state and the rest unchanged).
    pub fn with_motion(mut self, motion: Motion) -> Self {
        let m = Motion::new(motion.position, motion.velocity, motion.anchor_tick);
        self.position = m.position;
        self.velocity = m.velocity;
        self.anchor_tick = m.anchor_tick;
        self
    }

    /// The owning player.
    pub fn owner(&self) -> PlayerId {
        self.owner
    }
    /// Game-defined unit type.
    pub fn kind(&self) -> u8 {
        self.kind
    }
    /// Position in centimetres at the anchor tick (for a unit at rest:
    /// where it stands). Use [`QuantizedUnit::position_at`] for a moving unit.
    pub fn position(&self) -> WorldPos {
        self.position
    }
    /// Velocity, 1/16 cm per tick ([`Velocity::ZERO`] at rest).
    pub fn velocity(&self) -> Velocity {
        self.velocity
    }
    /// Tick at which the unit was at [`QuantizedUnit::position`] (0 at rest).
    pub fn anchor_tick(&self) -> u64 {
        self.anchor_tick
    }
    /// Position, velocity and anchor tick together.
    pub fn motion(&self) -> Motion {
        Motion {
            position: self.position,
            velocity: self.velocity,
            anchor_tick: self.anchor_tick,
        }
    }
    /// Where the unit is at server tick `tick`, dead-reckoned from its track
    /// (exact integer arithmetic: the same on every machine).
    pub fn position_at(&self, tick: u64) -> WorldPos {
        self.motion().position_at(tick)
    }
    /// Hit points, `0..=MAX_HEALTH`.
    pub fn health(&self) -> u16 {
        self.health
    }
    /// Current activity.
    pub fn state(&self) -> UnitState {
        self.state
    }
    /// The unit being attacked, if any.
    pub fn target(&self) -> Option<UnitId> {
        self.target
    }

    /// Back to a sample (the exact inverse of [`quantize_at`] at the anchor
    /// tick, and of [`quantize`] for a unit at rest).
    pub fn to_sample(&self) -> UnitSample {
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

/// Serde shape of [`QuantizedUnit`]; validated on the way in.
#[derive(Serialize, Deserialize)]
struct RawUnit {
    owner: PlayerId,
    kind: u8,
    position: WorldPos,
    velocity: Velocity,
    anchor_tick: u64,
    health: u16,
    state: UnitState,
    target: Option<UnitId>,
}

impl From<QuantizedUnit> for RawUnit {
    fn from(u: QuantizedUnit) -> Self {
        Self {
            owner: u.owner,
            kind: u.kind,
            position: u.position,
            velocity: u.velocity,
            anchor_tick: u.anchor_tick,
            health: u.health,
            state: u.state,
            target: u.target,
        }
    }
}

impl TryFrom<RawUnit> for QuantizedUnit {
    type Error = String;
    fn try_from(r: RawUnit) -> Result<Self, String> {
        let motion = Motion::new(r.position, r.velocity, r.anchor_tick);
        QuantizedUnit::from_parts(r.owner, r.kind, motion, r.health, r.state, r.target)
            .ok_or_else(|| format!("health {} above {MAX_HEALTH}", r.health))
    }
}

/// A whole unit with its id: the design's `CompressedUnit`, used by
/// `SectorTransfer` and sector snapshots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CompressedUnit {
    /// The unit's id.
    pub unit_id: UnitId,
    /// Its full quantized state.
    pub unit: QuantizedUnit,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(health: f32) -> UnitSample {
        UnitSample {
            owner: 7,
            kind: 1,
            position: WorldPos::new(-5, 9),
            velocity: Velocity::new(32, -16),
            health,
            state: UnitState::MOVING,
            target: Some(3),
        }
    }

    #[test]
    fn quantize_rounds_and_clamps_health() {
        assert_eq!(quantize(&sample(99.5)).health(), 100);
        assert_eq!(quantize(&sample(-3.0)).health(), 0);
        assert_eq!(quantize(&sample(1e9)).health(), MAX_HEALTH);
        assert_eq!(quantize(&sample(f32::NAN)).health(), 0);
    }

    #[test]
    fn quantize_is_idempotent() {
        let q = quantize(&sample(42.4));
        assert_eq!(quantize(&q.to_sample()), q);
        let m = quantize_at(&sample(42.4), 10);
        assert_eq!(quantize_at(&m.to_sample(), 10), m);
    }

    #[test]
    fn tracks_extrapolate_and_rest_is_canonical() {
        let s = sample(1.0);
        let still = quantize(&s);
        assert_eq!(still.velocity(), Velocity::ZERO);
        assert_eq!(still.position_at(1_000), s.position);
        let moving = quantize_at(&s, 10);
        assert_eq!(moving.anchor_tick(), 10);
        // 2 cm/tick east, 1 cm/tick south.
        assert_eq!(moving.position_at(13), WorldPos::new(1, 6));
        assert_eq!(moving.position_at(9), WorldPos::new(-7, 10));
        let rest = quantize_at(
            &UnitSample {
                velocity: Velocity::ZERO,
                ..s
            },
            77,
        );
        assert_eq!(rest, still, "a unit at rest has no anchor tick");
        let far = quantize_at(
            &UnitSample {
                position: WorldPos::new(i64::MAX, i64::MIN),
                ..s
            },
            0,
        );
        assert_eq!(
            far.position_at(u64::MAX),
            WorldPos::new(i64::MAX, i64::MIN),
            "saturates at the edge of the world"
        );
    }
}

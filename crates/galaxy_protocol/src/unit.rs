//! Unit state as the protocol sees it, and the one function that quantizes it.
//!
//! A [`QuantizedUnit`] is what baselines hold on both sides of a connection;
//! it can only be made by [`quantize`] (or by decoding one that was), so the
//! sender and receiver always compare and reconstruct bit-identical values.

use serde::{Deserialize, Serialize};

use crate::position::WorldPos;

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
    health: u16,
    state: UnitState,
    target: Option<UnitId>,
}

/// Quantizes a simulated unit: the only way state enters a baseline.
pub fn quantize(sample: &UnitSample) -> QuantizedUnit {
    // `as` saturates and maps NaN to 0.
    let health = (sample.health.round() as i64).clamp(0, i64::from(MAX_HEALTH)) as u16;
    QuantizedUnit {
        owner: sample.owner,
        kind: sample.kind,
        position: sample.position,
        health,
        state: sample.state,
        target: sample.target,
    }
}

impl QuantizedUnit {
    /// Builds a value whose fields are already valid (decoders and deltas only).
    pub(crate) fn from_parts(
        owner: PlayerId,
        kind: u8,
        position: WorldPos,
        health: u16,
        state: UnitState,
        target: Option<UnitId>,
    ) -> Option<Self> {
        (health <= MAX_HEALTH).then_some(Self {
            owner,
            kind,
            position,
            health,
            state,
            target,
        })
    }

    /// The owning player.
    pub fn owner(&self) -> PlayerId {
        self.owner
    }
    /// Game-defined unit type.
    pub fn kind(&self) -> u8 {
        self.kind
    }
    /// Position in centimetres.
    pub fn position(&self) -> WorldPos {
        self.position
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

    /// Back to a sample (the exact inverse of [`quantize`] for quantized values).
    pub fn to_sample(&self) -> UnitSample {
        UnitSample {
            owner: self.owner,
            kind: self.kind,
            position: self.position,
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
            health: u.health,
            state: u.state,
            target: u.target,
        }
    }
}

impl TryFrom<RawUnit> for QuantizedUnit {
    type Error = String;
    fn try_from(r: RawUnit) -> Result<Self, String> {
        QuantizedUnit::from_parts(r.owner, r.kind, r.position, r.health, r.state, r.target)
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
    }
}

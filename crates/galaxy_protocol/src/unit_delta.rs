//! The RTS unit's deltas: how a [`QuantizedUnit`] is diffed, applied and
//! bit-packed as a [`UnitSnapshot`].
//!
//! The design's `changes` bits decide which fields are on the wire; absent
//! fields cost nothing. A unit's position is a dead-reckoning track
//! (position at an anchor tick, and velocity; see [`crate::unit`]), so a
//! position change is sent as the small offset of the new track from where
//! the baseline's track says the unit is, and a unit moving straight sends
//! nothing at all. The motion types and their packing are shared with the
//! [`crate::SnapshotField`] of a game's own tracks. See `docs/protocol.md`
//! for the bit layout.

use crate::bits::{BitError, BitReader, BitWriter};
use crate::delta::{DeltaError, PayloadError};
use crate::position::{Velocity, WorldPos};
use crate::snapshot::{RecordContext, UnitSnapshot};
use crate::unit::{MAX_HEALTH, Motion, PlayerId, QuantizedUnit, UnitId, UnitState};

/// `changes` bit: the position (the unit's track) is on the wire.
pub const POSITION_CHANGED: u32 = 0b0000_0001;
/// `changes` bit: the health delta is on the wire.
pub const HEALTH_CHANGED: u32 = 0b0000_0010;
/// `changes` bit: the new [`UnitState`] is on the wire.
pub const STATE_CHANGED: u32 = 0b0000_0100;
/// `changes` bit: the new target is on the wire.
pub const TARGET_CHANGED: u32 = 0b0000_1000;
/// `changes` bit: the position is absolute (the move did not fit an `i16` delta).
pub const POSITION_ABSOLUTE: u32 = 0b0001_0000;
/// `changes` bit: the velocity (dead reckoning) changed.
pub const VELOCITY_CHANGED: u32 = 0b1000_0000;

/// A position change: a centimetre offset from the baseline's dead-reckoned
/// position when it fits `i16`, else absolute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PositionChange {
    /// Offset (dx, dy) in centimetres from where the baseline's track puts
    /// the unit at the new anchor tick.
    Delta(i16, i16),
    /// Absolute position (fallback for large moves).
    Absolute(WorldPos),
}

/// A velocity change: a difference from the baseline's velocity when small,
/// else the new velocity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VelocityChange {
    /// Add (dx, dy) sixteenths of a cm per tick to the baseline's velocity;
    /// each within `±MAX_VELOCITY_DELTA` (the encoder refuses larger ones
    /// as [`PayloadError::InvalidUnit`]: send those as `Absolute`).
    Delta(i16, i16),
    /// The new velocity.
    Absolute(Velocity),
}

/// Largest velocity difference per axis a [`VelocityChange::Delta`] carries.
pub const MAX_VELOCITY_DELTA: i16 = 511;

/// A new dead-reckoning track for the unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MotionChange {
    /// The new anchor tick; also the tick at which the baseline's track is
    /// evaluated for a [`PositionChange::Delta`]. For a unit that stopped
    /// (new velocity zero) it is the update's tick.
    pub anchor_tick: u64,
    /// The position at `anchor_tick`.
    pub position: PositionChange,
    /// The new velocity, if it changed.
    pub velocity: Option<VelocityChange>,
}

/// The fields of a [`QuantizedUnit`] that differ from the baseline the
/// receiver acknowledged (its [`UnitSnapshot::Changes`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FieldChanges {
    /// New track (position, velocity, anchor tick), if any part changed.
    pub motion: Option<MotionChange>,
    /// Health change in hit points, if it changed.
    pub health_delta: Option<i16>,
    /// New activity state, if it changed.
    pub state_changes: Option<UnitState>,
    /// New target, if it changed (`Some(None)` clears it).
    pub target: Option<Option<UnitId>>,
}

impl PositionChange {
    /// The change from `from` to `to`: an offset when it fits `i16`, else absolute.
    pub fn between(from: WorldPos, to: WorldPos) -> Self {
        match (
            i16::try_from(i128::from(to.x) - i128::from(from.x)),
            i16::try_from(i128::from(to.y) - i128::from(from.y)),
        ) {
            (Ok(dx), Ok(dy)) => Self::Delta(dx, dy),
            _ => Self::Absolute(to),
        }
    }
}

impl MotionChange {
    /// The change that turns track `base` into `current`, sent in an update
    /// at `tick` (`None` if the tracks are equal).
    pub fn between(tick: u64, base: &Motion, current: &Motion) -> Option<Self> {
        if base == current {
            return None;
        }
        let anchor_tick = if current.velocity.is_zero() {
            tick
        } else {
            current.anchor_tick
        };
        let position = PositionChange::between(base.position_at(anchor_tick), current.position);
        let velocity = (base.velocity != current.velocity).then(|| {
            let d = |a: i32, b: i32| {
                i16::try_from(i64::from(b) - i64::from(a))
                    .ok()
                    .filter(|d| d.abs() <= MAX_VELOCITY_DELTA)
            };
            match (
                d(base.velocity.x, current.velocity.x),
                d(base.velocity.y, current.velocity.y),
            ) {
                (Some(dx), Some(dy)) => VelocityChange::Delta(dx, dy),
                _ => VelocityChange::Absolute(current.velocity),
            }
        });
        Some(Self {
            anchor_tick,
            position,
            velocity,
        })
    }

    /// The track after applying this change to `base`.
    pub fn apply(&self, unit_id: UnitId, base: &Motion) -> Result<Motion, DeltaError> {
        let velocity = match self.velocity {
            None => base.velocity,
            Some(VelocityChange::Absolute(v)) => v,
            Some(VelocityChange::Delta(dx, dy)) => {
                let add = |a: i32, d: i16| a.checked_add(i32::from(d));
                match (add(base.velocity.x, dx), add(base.velocity.y, dy)) {
                    (Some(x), Some(y)) => Velocity::new(x, y),
                    _ => return Err(DeltaError::VelocityOutOfRange(unit_id)),
                }
            }
        };
        let position = match self.position {
            PositionChange::Absolute(p) => p,
            PositionChange::Delta(dx, dy) => base
                .position_at(self.anchor_tick)
                .checked_offset(i64::from(dx), i64::from(dy))
                .ok_or(DeltaError::PositionOutOfWorld(unit_id))?,
        };
        Ok(Motion::new(position, velocity, self.anchor_tick))
    }
}

impl FieldChanges {
    /// The changes that turn `base` into `current` in an update at `tick`,
    /// or `None` if they cannot be expressed as a delta (the owner or kind
    /// differs: send it whole).
    pub fn between(tick: u64, base: &QuantizedUnit, current: &QuantizedUnit) -> Option<Self> {
        if base.owner() != current.owner() || base.kind() != current.kind() {
            return None;
        }
        // Both healths are <= MAX_HEALTH = i16::MAX, so the difference fits.
        let health_delta = (base.health() != current.health())
            .then(|| (i32::from(current.health()) - i32::from(base.health())) as i16);
        Some(Self {
            motion: MotionChange::between(tick, &base.motion(), &current.motion()),
            health_delta,
            state_changes: (base.state() != current.state()).then_some(current.state()),
            target: (base.target() != current.target()).then_some(current.target()),
        })
    }

    /// The state after applying these changes to `base`.
    pub fn apply(
        &self,
        unit_id: UnitId,
        base: &QuantizedUnit,
    ) -> Result<QuantizedUnit, DeltaError> {
        let motion = match &self.motion {
            None => base.motion(),
            Some(m) => m.apply(unit_id, &base.motion())?,
        };
        let health = match self.health_delta {
            None => base.health(),
            Some(d) => u16::try_from(i32::from(base.health()) + i32::from(d))
                .ok()
                .filter(|&h| h <= MAX_HEALTH)
                .ok_or(DeltaError::HealthOutOfRange(unit_id))?,
        };
        QuantizedUnit::from_parts(
            base.owner(),
            base.kind(),
            motion,
            health,
            self.state_changes.unwrap_or(base.state()),
            self.target.unwrap_or(base.target()),
        )
        .ok_or(DeltaError::HealthOutOfRange(unit_id))
    }
}

// Chunk sizes of the variable-length fields (tuned on the bandwidth report).
const HEALTH_CHUNK: u32 = 5;
const TARGET_CHUNK: u32 = 6;
const OWNER_CHUNK: u32 = 4;
pub(crate) const ABS_CHUNK: u32 = 8;
const VELOCITY_CHUNK: u32 = 6;
const ANCHOR_CHUNK: u32 = 3;
/// Bits per axis of the three delta position classes; the fourth class is absolute.
pub(crate) const POSITION_CLASS_BITS: [u32; 3] = [5, 9, 16];
/// Bits per axis of the three velocity-delta classes; the fourth class is absolute.
const VELOCITY_CLASS_BITS: [u32; 3] = [4, 7, 10];
const HEALTH_BITS: u32 = 15;

fn fits(v: i16, bits: u32) -> bool {
    let half = 1i32 << (bits - 1);
    (-half..half).contains(&i32::from(v))
}

/// Writes a pair as the smallest of three fixed-width zigzag classes;
/// `false` (nothing written) if it fits none.
pub(crate) fn write_pair(w: &mut BitWriter, classes: &[u32; 3], dx: i16, dy: i16) -> bool {
    let Some(class) = classes.iter().position(|&b| fits(dx, b) && fits(dy, b)) else {
        return false;
    };
    let bits = classes[class];
    w.write_bits(class as u64, 2);
    w.write_bits(crate::bits::zigzag(i64::from(dx)), bits);
    w.write_bits(crate::bits::zigzag(i64::from(dy)), bits);
    true
}

/// Reads a class written by [`write_pair`]: `Ok(None)` is the fourth
/// (absolute) class, whose fields the caller reads.
pub(crate) fn read_pair(
    r: &mut BitReader<'_>,
    classes: &[u32; 3],
) -> Result<Option<(i16, i16)>, BitError> {
    let class = r.read_bits(2)? as usize;
    Ok(match classes.get(class) {
        Some(&bits) => {
            // A zigzag value of at most 16 bits always fits i16.
            let dx = crate::bits::unzigzag(r.read_bits(bits)?) as i16;
            let dy = crate::bits::unzigzag(r.read_bits(bits)?) as i16;
            Some((dx, dy))
        }
        None => None,
    })
}

fn write_target(w: &mut BitWriter, unit_id: UnitId, target: Option<UnitId>) {
    w.write_bool(target.is_some());
    if let Some(t) = target {
        w.write_signed(t.wrapping_sub(unit_id) as i64, TARGET_CHUNK);
    }
}

fn read_target(r: &mut BitReader<'_>, unit_id: UnitId) -> Result<Option<UnitId>, BitError> {
    Ok(if r.read_bool()? {
        Some(unit_id.wrapping_add(r.read_signed(TARGET_CHUNK)? as u64))
    } else {
        None
    })
}

/// Anchor ticks go as their distance before the update's tick: one bit
/// when it is the update's own tick (a track sent as it is made), else the
/// age minus one.
pub(crate) fn write_anchor(w: &mut BitWriter, tick: u64, anchor: u64) -> Result<(), PayloadError> {
    let age = tick.checked_sub(anchor).ok_or(PayloadError::FutureAnchor)?;
    w.write_bool(age == 0);
    if age != 0 {
        w.write_varint(age - 1, ANCHOR_CHUNK);
    }
    Ok(())
}

pub(crate) fn read_anchor(r: &mut BitReader<'_>, tick: u64) -> Result<u64, PayloadError> {
    if r.read_bool()? {
        return Ok(tick);
    }
    r.read_varint(ANCHOR_CHUNK)?
        .checked_add(1)
        .and_then(|age| tick.checked_sub(age))
        .ok_or(PayloadError::FutureAnchor)
}

pub(crate) fn write_velocity(w: &mut BitWriter, v: Velocity) {
    w.write_signed(i64::from(v.x), VELOCITY_CHUNK);
    w.write_signed(i64::from(v.y), VELOCITY_CHUNK);
}

pub(crate) fn read_velocity(r: &mut BitReader<'_>) -> Result<Velocity, PayloadError> {
    let c = |v: i64| i32::try_from(v).map_err(|_| PayloadError::InvalidUnit);
    Ok(Velocity::new(
        c(r.read_signed(VELOCITY_CHUNK)?)?,
        c(r.read_signed(VELOCITY_CHUNK)?)?,
    ))
}

/// Writes a motion change; the caller truncates on error.
pub(crate) fn write_motion(
    w: &mut BitWriter,
    tick: u64,
    m: &MotionChange,
) -> Result<(), PayloadError> {
    w.write_bool(m.velocity.is_some());
    match m.velocity {
        Some(VelocityChange::Delta(dx, dy)) if !write_pair(w, &VELOCITY_CLASS_BITS, dx, dy) => {
            return Err(PayloadError::InvalidUnit);
        }
        Some(VelocityChange::Absolute(v)) => {
            w.write_bits(3, 2);
            write_velocity(w, v);
        }
        Some(VelocityChange::Delta(..)) | None => {}
    }
    write_anchor(w, tick, m.anchor_tick)?;
    match m.position {
        PositionChange::Delta(dx, dy) => {
            // The 16-bit class holds any i16.
            let written = write_pair(w, &POSITION_CLASS_BITS, dx, dy);
            debug_assert!(written);
        }
        PositionChange::Absolute(p) => {
            w.write_bits(3, 2);
            w.write_signed(p.x, ABS_CHUNK);
            w.write_signed(p.y, ABS_CHUNK);
        }
    }
    Ok(())
}

pub(crate) fn read_motion(r: &mut BitReader<'_>, tick: u64) -> Result<MotionChange, PayloadError> {
    let velocity = if r.read_bool()? {
        Some(match read_pair(r, &VELOCITY_CLASS_BITS)? {
            Some((dx, dy)) => VelocityChange::Delta(dx, dy),
            None => VelocityChange::Absolute(read_velocity(r)?),
        })
    } else {
        None
    };
    let anchor_tick = read_anchor(r, tick)?;
    let position = match read_pair(r, &POSITION_CLASS_BITS)? {
        Some((dx, dy)) => PositionChange::Delta(dx, dy),
        None => PositionChange::Absolute(WorldPos::new(
            r.read_signed(ABS_CHUNK)?,
            r.read_signed(ABS_CHUNK)?,
        )),
    };
    Ok(MotionChange {
        anchor_tick,
        position,
        velocity,
    })
}

/// The RTS unit's packing: the changes as four flags (motion, health,
/// state, target) and then those fields; a whole unit as owner, kind,
/// position, track, health, state and target.
impl UnitSnapshot for QuantizedUnit {
    type Changes = FieldChanges;
    const FIELD_BITS: u32 =
        POSITION_CHANGED | VELOCITY_CHANGED | HEALTH_CHANGED | STATE_CHANGED | TARGET_CHANGED;

    fn position_at(&self, tick: u64) -> WorldPos {
        QuantizedUnit::position_at(self, tick)
    }

    fn velocity_cm_per_tick(&self) -> (f64, f64) {
        self.velocity().cm_per_tick()
    }

    fn diff(base: &Self, current: &Self, tick: u64) -> Option<FieldChanges> {
        FieldChanges::between(tick, base, current)
    }

    fn apply(base: &Self, changes: &FieldChanges, unit: UnitId) -> Result<Self, DeltaError> {
        changes.apply(unit, base)
    }

    fn change_bits(c: &FieldChanges) -> u32 {
        let mut bits = 0;
        if let Some(m) = &c.motion {
            bits |= POSITION_CHANGED;
            if matches!(m.position, PositionChange::Absolute(_)) {
                bits |= POSITION_ABSOLUTE;
            }
            if m.velocity.is_some() {
                bits |= VELOCITY_CHANGED;
            }
        }
        if c.health_delta.is_some() {
            bits |= HEALTH_CHANGED;
        }
        if c.state_changes.is_some() {
            bits |= STATE_CHANGED;
        }
        if c.target.is_some() {
            bits |= TARGET_CHANGED;
        }
        bits
    }

    fn write_changes(
        c: &FieldChanges,
        ctx: RecordContext,
        w: &mut BitWriter,
    ) -> Result<(), PayloadError> {
        w.write_bool(c.motion.is_some());
        w.write_bool(c.health_delta.is_some());
        w.write_bool(c.state_changes.is_some());
        w.write_bool(c.target.is_some());
        if let Some(m) = &c.motion {
            write_motion(w, ctx.tick, m)?;
        }
        if let Some(h) = c.health_delta {
            w.write_signed(i64::from(h), HEALTH_CHUNK);
        }
        if let Some(s) = c.state_changes {
            w.write_bits(u64::from(s.0), 8);
        }
        if let Some(t) = c.target {
            write_target(w, ctx.unit, t);
        }
        Ok(())
    }

    fn read_changes(
        ctx: RecordContext,
        r: &mut BitReader<'_>,
    ) -> Result<FieldChanges, PayloadError> {
        let (has_motion, has_health, has_state, has_target) = (
            r.read_bool()?,
            r.read_bool()?,
            r.read_bool()?,
            r.read_bool()?,
        );
        let motion = if has_motion {
            Some(read_motion(r, ctx.tick)?)
        } else {
            None
        };
        let health_delta = if has_health {
            Some(
                i16::try_from(r.read_signed(HEALTH_CHUNK)?)
                    .map_err(|_| PayloadError::InvalidUnit)?,
            )
        } else {
            None
        };
        let state_changes = if has_state {
            Some(UnitState(r.read_bits(8)? as u8))
        } else {
            None
        };
        let target = if has_target {
            Some(read_target(r, ctx.unit)?)
        } else {
            None
        };
        Ok(FieldChanges {
            motion,
            health_delta,
            state_changes,
            target,
        })
    }

    fn write_full(&self, ctx: RecordContext, w: &mut BitWriter) -> Result<(), PayloadError> {
        w.write_varint(self.owner(), OWNER_CHUNK);
        w.write_bits(u64::from(self.kind()), 8);
        w.write_signed(self.position().x, ABS_CHUNK);
        w.write_signed(self.position().y, ABS_CHUNK);
        w.write_bool(!self.velocity().is_zero());
        if !self.velocity().is_zero() {
            write_velocity(w, self.velocity());
            write_anchor(w, ctx.tick, self.anchor_tick())?;
        }
        w.write_bits(u64::from(self.health()), HEALTH_BITS);
        w.write_bits(u64::from(self.state().0), 8);
        write_target(w, ctx.unit, self.target());
        Ok(())
    }

    fn read_full(ctx: RecordContext, r: &mut BitReader<'_>) -> Result<Self, PayloadError> {
        let owner: PlayerId = r.read_varint(OWNER_CHUNK)?;
        let kind = r.read_bits(8)? as u8;
        let position = WorldPos::new(r.read_signed(ABS_CHUNK)?, r.read_signed(ABS_CHUNK)?);
        let motion = if r.read_bool()? {
            let velocity = read_velocity(r)?;
            if velocity.is_zero() {
                return Err(PayloadError::InvalidUnit);
            }
            Motion::new(position, velocity, read_anchor(r, ctx.tick)?)
        } else {
            Motion::still(position)
        };
        let health = r.read_bits(HEALTH_BITS)? as u16;
        let state = UnitState(r.read_bits(8)? as u8);
        let target = read_target(r, ctx.unit)?;
        QuantizedUnit::from_parts(owner, kind, motion, health, state, target)
            .ok_or(PayloadError::InvalidUnit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::{DeltaBody, UnitDelta, read_deltas, write_delta};
    use crate::unit::{UnitSample, quantize, quantize_at};

    fn sample(x: i64, y: i64, health: f32) -> UnitSample {
        UnitSample {
            owner: 3,
            kind: 2,
            position: WorldPos::new(x, y),
            velocity: Velocity::ZERO,
            health,
            state: UnitState::MOVING,
            target: None,
        }
    }

    fn unit(x: i64, y: i64, health: f32) -> QuantizedUnit {
        quantize(&sample(x, y, health))
    }

    fn changes(d: &UnitDelta) -> FieldChanges {
        match d.body {
            DeltaBody::Changes { changes, .. } => changes,
            _ => panic!("not a field delta"),
        }
    }

    #[test]
    fn absent_fields_cost_nothing() {
        let a = unit(0, 0, 100.0);
        let b = unit(12, -3, 100.0);
        let c = FieldChanges::between(8, &a, &b).unwrap();
        assert_eq!(c.health_delta, None);
        let d: UnitDelta = UnitDelta {
            unit_id: 1,
            body: DeltaBody::Changes {
                baseline_tick: 7,
                changes: c,
            },
        };
        assert_eq!(d.changes(), POSITION_CHANGED);
        let mut w = BitWriter::new();
        write_delta(&mut w, None, 8, &d).unwrap();
        // id 9 + kind 1 + age 3 + flags 4 + velocity flag 1 + anchor 1 + class 2 + 2 x 5.
        assert_eq!(w.bit_len(), 9 + 1 + 3 + 4 + 1 + 1 + 2 + 10);
        assert_eq!(read_deltas(w.as_bytes(), 1, 8).unwrap(), vec![d]);
    }

    #[test]
    fn a_straight_track_needs_nothing_and_a_turn_is_an_offset() {
        let s = UnitSample {
            velocity: Velocity::new(400, 0), // 25 cm per tick east
            ..sample(0, 0, 50.0)
        };
        let base = quantize_at(&s, 10);
        // Twenty ticks later the unit is where its track says: same state.
        assert_eq!(base.position_at(30), WorldPos::new(500, 0));
        // It turned north at tick 30 and drifted 4 cm off the track.
        let turned = quantize_at(
            &UnitSample {
                position: WorldPos::new(496, 3),
                velocity: Velocity::new(0, 400),
                ..s
            },
            30,
        );
        let c = FieldChanges::between(30, &base, &turned).unwrap();
        let m = c.motion.unwrap();
        assert_eq!(m.anchor_tick, 30);
        assert_eq!(m.position, PositionChange::Delta(-4, 3));
        assert_eq!(m.velocity, Some(VelocityChange::Delta(-400, 400)));
        assert_eq!(c.apply(1, &base), Ok(turned));
        // It stopped: the offset is taken at the update's tick.
        let stopped = quantize(&UnitSample {
            position: WorldPos::new(505, 0),
            ..s
        });
        let c = FieldChanges::between(31, &base, &stopped).unwrap();
        assert_eq!(c.motion.unwrap().position, PositionChange::Delta(-20, 0));
        assert_eq!(c.apply(1, &base), Ok(stopped));
        let d: UnitDelta = UnitDelta {
            unit_id: 4,
            body: DeltaBody::Changes {
                baseline_tick: 10,
                changes: c,
            },
        };
        assert_eq!(d.changes(), POSITION_CHANGED | VELOCITY_CHANGED);
        let mut w = BitWriter::new();
        write_delta(&mut w, None, 31, &d).unwrap();
        assert_eq!(read_deltas(w.as_bytes(), 1, 31).unwrap(), vec![d]);
    }

    #[test]
    fn full_records_carry_the_track() {
        let s = UnitSample {
            velocity: Velocity::new(-7, 300),
            ..sample(-40, 99, 50.0)
        };
        for (tick, anchor) in [(50, 50), (50, 41), (50, 0)] {
            let d = UnitDelta::full(9, quantize_at(&s, anchor));
            let mut w = BitWriter::new();
            write_delta(&mut w, None, tick, &d).unwrap();
            assert_eq!(read_deltas(w.as_bytes(), 1, tick).unwrap(), vec![d]);
        }
    }

    #[test]
    fn large_moves_fall_back_to_absolute() {
        let a = unit(0, 0, 10.0);
        let b = unit(i64::MAX, i64::MIN, 10.0);
        let c = FieldChanges::between(2, &a, &b).unwrap();
        assert_eq!(
            c.motion.unwrap().position,
            PositionChange::Absolute(b.position())
        );
        assert_eq!(c.apply(5, &a), Ok(b));
        let edge = unit(32_767, -32_768, 10.0);
        assert_eq!(
            FieldChanges::between(2, &a, &edge)
                .unwrap()
                .motion
                .unwrap()
                .position,
            PositionChange::Delta(32_767, -32_768)
        );
        let fast = quantize_at(
            &UnitSample {
                velocity: Velocity::new(i32::MAX, i32::MIN),
                ..sample(0, 0, 10.0)
            },
            1,
        );
        let c = FieldChanges::between(2, &a, &fast).unwrap();
        assert_eq!(
            c.motion.unwrap().velocity,
            Some(VelocityChange::Absolute(fast.velocity()))
        );
        assert_eq!(c.apply(5, &a), Ok(fast));
    }

    #[test]
    fn apply_refuses_out_of_range() {
        let a = unit(i64::MAX, 0, 1.0);
        let c = FieldChanges {
            motion: Some(MotionChange {
                anchor_tick: 3,
                position: PositionChange::Delta(1, 0),
                velocity: None,
            }),
            health_delta: None,
            state_changes: None,
            target: None,
        };
        assert_eq!(c.apply(9, &a), Err(DeltaError::PositionOutOfWorld(9)));
        let v = FieldChanges {
            motion: Some(MotionChange {
                anchor_tick: 3,
                position: PositionChange::Delta(0, 0),
                velocity: Some(VelocityChange::Delta(1, 0)),
            }),
            ..c
        };
        let fast = quantize_at(
            &UnitSample {
                velocity: Velocity::new(i32::MAX, 0),
                ..sample(0, 0, 1.0)
            },
            3,
        );
        assert_eq!(v.apply(9, &fast), Err(DeltaError::VelocityOutOfRange(9)));
        let h = FieldChanges {
            motion: None,
            health_delta: Some(-2),
            ..c
        };
        assert_eq!(h.apply(9, &a), Err(DeltaError::HealthOutOfRange(9)));
        let d = UnitDelta {
            unit_id: 9,
            body: DeltaBody::Changes {
                baseline_tick: 0,
                changes: h,
            },
        };
        assert_eq!(d.apply(None), Err(DeltaError::MissingBaseline(9)));
        assert_eq!(changes(&d).health_delta, Some(-2));
    }

    #[test]
    fn a_full_record_claiming_motion_without_velocity_is_refused() {
        let mut w = BitWriter::new();
        w.write_varint(1, 8); // the first record's id
        w.write_bool(true);
        w.write_bool(false);
        w.write_varint(0, OWNER_CHUNK);
        w.write_bits(0, 8);
        w.write_signed(0, ABS_CHUNK);
        w.write_signed(0, ABS_CHUNK);
        w.write_bool(true); // moving...
        write_velocity(&mut w, Velocity::ZERO); // ...at zero velocity
        write_anchor(&mut w, 5, 5).unwrap();
        w.write_bits(1, HEALTH_BITS);
        w.write_bits(0, 8);
        w.write_bool(false);
        assert_eq!(
            read_deltas::<QuantizedUnit>(w.as_bytes(), 1, 5),
            Err(PayloadError::InvalidUnit)
        );
    }

    #[test]
    fn writer_refuses_future_anchors_and_wide_velocity_deltas() {
        let s = UnitSample {
            velocity: Velocity::new(5, 5),
            ..sample(0, 0, 1.0)
        };
        let mut w = BitWriter::new();
        let future = UnitDelta::full(1, quantize_at(&s, 9));
        assert_eq!(
            write_delta(&mut w, None, 8, &future),
            Err(PayloadError::FutureAnchor)
        );
        let wide: UnitDelta = UnitDelta {
            unit_id: 1,
            body: DeltaBody::Changes {
                baseline_tick: 1,
                changes: FieldChanges {
                    motion: Some(MotionChange {
                        anchor_tick: 8,
                        position: PositionChange::Delta(0, 0),
                        velocity: Some(VelocityChange::Delta(MAX_VELOCITY_DELTA + 1, 0)),
                    }),
                    ..FieldChanges::default()
                },
            },
        };
        assert_eq!(
            write_delta(&mut w, None, 8, &wide),
            Err(PayloadError::InvalidUnit)
        );
        assert_eq!(w.bit_len(), 0, "nothing is left half-written");
    }
}

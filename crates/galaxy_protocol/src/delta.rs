//! `UnitDelta`: one unit's change against an acknowledged baseline, and its
//! bit-packed wire form.
//!
//! The `changes` bitfield of the design decides which fields are present;
//! absent fields cost nothing on the wire. A unit's position is a
//! dead-reckoning track (position at an anchor tick, and velocity; see
//! [`crate::unit`]), so a position change is sent as the small offset of
//! the new track from where the baseline's track says the unit is, and a
//! unit moving straight sends nothing at all. See `docs/protocol.md` for
//! the bit layout.

use crate::bits::{BitError, BitReader, BitWriter};
use crate::position::{Velocity, WorldPos};
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
/// `changes` bit: the whole unit is on the wire; no baseline is needed.
pub const FULL_STATE: u32 = 0b0010_0000;
/// `changes` bit: the unit left the receiver's interest (despawn it).
pub const REMOVED: u32 = 0b0100_0000;
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

/// The fields that differ from the baseline the receiver acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FieldChanges {
    /// Server tick of the acknowledged state this delta applies to.
    pub baseline_tick: u64,
    /// New track (position, velocity, anchor tick), if any part changed.
    pub motion: Option<MotionChange>,
    /// Health change in hit points, if it changed.
    pub health_delta: Option<i16>,
    /// New activity state, if it changed.
    pub state_changes: Option<UnitState>,
    /// New target, if it changed (`Some(None)` clears it).
    pub target: Option<Option<UnitId>>,
}

/// What a [`UnitDelta`] carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeltaBody {
    /// The whole unit: new to this receiver, back in view, or baseline too old.
    Full(QuantizedUnit),
    /// Changed fields against an acknowledged baseline.
    Changes(FieldChanges),
    /// The unit left this receiver's interest or died.
    Removed,
}

/// One unit's entry in a `UnitUpdate` (the design's `UnitDelta`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UnitDelta {
    /// The unit.
    pub unit_id: UnitId,
    /// Its change.
    pub body: DeltaBody,
}

/// Why a delta could not be applied to a baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    /// A field delta arrived but no baseline was given.
    #[error("unit {0}: delta without a baseline")]
    MissingBaseline(UnitId),
    /// The position moved outside the world.
    #[error("unit {0}: position left the world")]
    PositionOutOfWorld(UnitId),
    /// Health left `0..=MAX_HEALTH`.
    #[error("unit {0}: health out of range")]
    HealthOutOfRange(UnitId),
    /// The velocity left the `i32` range.
    #[error("unit {0}: velocity out of range")]
    VelocityOutOfRange(UnitId),
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
        let (r, c) = (base.position_at(anchor_tick), current.position);
        let position = match (
            i16::try_from(i128::from(c.x) - i128::from(r.x)),
            i16::try_from(i128::from(c.y) - i128::from(r.y)),
        ) {
            (Ok(dx), Ok(dy)) => PositionChange::Delta(dx, dy),
            _ => PositionChange::Absolute(c),
        };
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
    pub fn between(
        baseline_tick: u64,
        tick: u64,
        base: &QuantizedUnit,
        current: &QuantizedUnit,
    ) -> Option<Self> {
        if base.owner() != current.owner() || base.kind() != current.kind() {
            return None;
        }
        // Both healths are <= MAX_HEALTH = i16::MAX, so the difference fits.
        let health_delta = (base.health() != current.health())
            .then(|| (i32::from(current.health()) - i32::from(base.health())) as i16);
        Some(Self {
            baseline_tick,
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

impl UnitDelta {
    /// A delta carrying the whole unit.
    pub fn full(unit_id: UnitId, unit: QuantizedUnit) -> Self {
        Self {
            unit_id,
            body: DeltaBody::Full(unit),
        }
    }

    /// A delta saying the unit is gone for this receiver.
    pub fn removed(unit_id: UnitId) -> Self {
        Self {
            unit_id,
            body: DeltaBody::Removed,
        }
    }

    /// The design's `changes` bitfield for this delta.
    pub fn changes(&self) -> u32 {
        match &self.body {
            DeltaBody::Full(_) => {
                FULL_STATE
                    | POSITION_CHANGED
                    | VELOCITY_CHANGED
                    | HEALTH_CHANGED
                    | STATE_CHANGED
                    | TARGET_CHANGED
            }
            DeltaBody::Removed => REMOVED,
            DeltaBody::Changes(c) => {
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
        }
    }

    /// The unit's state after this delta: `Ok(None)` means removed.
    /// `baseline` must be the receiver's state at `baseline_tick` for field deltas.
    pub fn apply(
        &self,
        baseline: Option<&QuantizedUnit>,
    ) -> Result<Option<QuantizedUnit>, DeltaError> {
        match &self.body {
            DeltaBody::Full(u) => Ok(Some(*u)),
            DeltaBody::Removed => Ok(None),
            DeltaBody::Changes(c) => {
                let base = baseline.ok_or(DeltaError::MissingBaseline(self.unit_id))?;
                c.apply(self.unit_id, base).map(Some)
            }
        }
    }
}

/// Why a packed delta payload was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The bit stream itself was malformed.
    #[error("bit stream: {0}")]
    Bits(#[from] BitError),
    /// Unit ids were not strictly increasing (or overflowed).
    #[error("unit ids not strictly increasing")]
    UnorderedIds,
    /// A baseline tick at or after the update's own tick.
    #[error("baseline tick not before the update tick")]
    BadBaseline,
    /// A decoded unit violated an invariant (e.g. health above the maximum).
    #[error("invalid unit state")]
    InvalidUnit,
    /// A track anchored after the update's own tick.
    #[error("anchor tick after the update tick")]
    FutureAnchor,
}

// Chunk sizes of the variable-length fields (tuned on the bandwidth report).
const FIRST_ID_CHUNK: u32 = 8;
const ID_GAP_CHUNK: u32 = 3;
const AGE_CHUNK: u32 = 2;
const HEALTH_CHUNK: u32 = 5;
const TARGET_CHUNK: u32 = 6;
const OWNER_CHUNK: u32 = 4;
const ABS_CHUNK: u32 = 8;
const VELOCITY_CHUNK: u32 = 6;
const ANCHOR_CHUNK: u32 = 3;
/// Bits per axis of the three delta position classes; the fourth class is absolute.
const POSITION_CLASS_BITS: [u32; 3] = [5, 9, 16];
/// Bits per axis of the three velocity-delta classes; the fourth class is absolute.
const VELOCITY_CLASS_BITS: [u32; 3] = [4, 7, 10];
const HEALTH_BITS: u32 = 15;

fn fits(v: i16, bits: u32) -> bool {
    let half = 1i32 << (bits - 1);
    (-half..half).contains(&i32::from(v))
}

/// Writes a pair as the smallest of three fixed-width zigzag classes;
/// `false` (nothing written) if it fits none.
fn write_pair(w: &mut BitWriter, classes: &[u32; 3], dx: i16, dy: i16) -> bool {
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
fn read_pair(r: &mut BitReader<'_>, classes: &[u32; 3]) -> Result<Option<(i16, i16)>, BitError> {
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
fn write_anchor(w: &mut BitWriter, tick: u64, anchor: u64) -> Result<(), PayloadError> {
    let age = tick.checked_sub(anchor).ok_or(PayloadError::FutureAnchor)?;
    w.write_bool(age == 0);
    if age != 0 {
        w.write_varint(age - 1, ANCHOR_CHUNK);
    }
    Ok(())
}

fn read_anchor(r: &mut BitReader<'_>, tick: u64) -> Result<u64, PayloadError> {
    if r.read_bool()? {
        return Ok(tick);
    }
    r.read_varint(ANCHOR_CHUNK)?
        .checked_add(1)
        .and_then(|age| tick.checked_sub(age))
        .ok_or(PayloadError::FutureAnchor)
}

fn write_velocity(w: &mut BitWriter, v: Velocity) {
    w.write_signed(i64::from(v.x), VELOCITY_CHUNK);
    w.write_signed(i64::from(v.y), VELOCITY_CHUNK);
}

fn read_velocity(r: &mut BitReader<'_>) -> Result<Velocity, PayloadError> {
    let c = |v: i64| i32::try_from(v).map_err(|_| PayloadError::InvalidUnit);
    Ok(Velocity::new(
        c(r.read_signed(VELOCITY_CHUNK)?)?,
        c(r.read_signed(VELOCITY_CHUNK)?)?,
    ))
}

/// Writes a motion change; the caller truncates on error.
fn write_motion(w: &mut BitWriter, tick: u64, m: &MotionChange) -> Result<(), PayloadError> {
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

fn read_motion(r: &mut BitReader<'_>, tick: u64) -> Result<MotionChange, PayloadError> {
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

/// Appends one delta to a packed payload. `prev_id` is the previous record's
/// unit id in this payload (ids must increase); `tick` is the update's tick.
///
/// Returns `Err` without writing if the ids are out of order, the baseline
/// is not older than `tick`, a track is anchored after `tick`, or a
/// velocity delta is out of its range.
pub fn write_delta(
    w: &mut BitWriter,
    prev_id: Option<UnitId>,
    tick: u64,
    delta: &UnitDelta,
) -> Result<(), PayloadError> {
    let mark = w.bit_len();
    let written = write_record(w, prev_id, tick, delta);
    if written.is_err() {
        w.truncate(mark);
    }
    written
}

fn write_record(
    w: &mut BitWriter,
    prev_id: Option<UnitId>,
    tick: u64,
    delta: &UnitDelta,
) -> Result<(), PayloadError> {
    let id = delta.unit_id;
    let age = match &delta.body {
        DeltaBody::Changes(c) if c.baseline_tick >= tick => return Err(PayloadError::BadBaseline),
        DeltaBody::Changes(c) => Some(tick - c.baseline_tick),
        _ => None,
    };
    match prev_id {
        None => w.write_varint(id, FIRST_ID_CHUNK),
        Some(p) if id > p => w.write_varint(id - p - 1, ID_GAP_CHUNK),
        Some(_) => return Err(PayloadError::UnorderedIds),
    }
    match &delta.body {
        DeltaBody::Changes(c) => {
            w.write_bool(false);
            w.write_varint(age.unwrap_or(1) - 1, AGE_CHUNK);
            w.write_bool(c.motion.is_some());
            w.write_bool(c.health_delta.is_some());
            w.write_bool(c.state_changes.is_some());
            w.write_bool(c.target.is_some());
            if let Some(m) = &c.motion {
                write_motion(w, tick, m)?;
            }
            if let Some(h) = c.health_delta {
                w.write_signed(i64::from(h), HEALTH_CHUNK);
            }
            if let Some(s) = c.state_changes {
                w.write_bits(u64::from(s.0), 8);
            }
            if let Some(t) = c.target {
                write_target(w, id, t);
            }
        }
        DeltaBody::Full(u) => {
            w.write_bool(true);
            w.write_bool(false);
            w.write_varint(u.owner(), OWNER_CHUNK);
            w.write_bits(u64::from(u.kind()), 8);
            w.write_signed(u.position().x, ABS_CHUNK);
            w.write_signed(u.position().y, ABS_CHUNK);
            w.write_bool(!u.velocity().is_zero());
            if !u.velocity().is_zero() {
                write_velocity(w, u.velocity());
                write_anchor(w, tick, u.anchor_tick())?;
            }
            w.write_bits(u64::from(u.health()), HEALTH_BITS);
            w.write_bits(u64::from(u.state().0), 8);
            write_target(w, id, u.target());
        }
        DeltaBody::Removed => {
            w.write_bool(true);
            w.write_bool(true);
        }
    }
    Ok(())
}

/// Reads one delta written by [`write_delta`].
pub fn read_delta(
    r: &mut BitReader<'_>,
    prev_id: Option<UnitId>,
    tick: u64,
) -> Result<UnitDelta, PayloadError> {
    let unit_id = match prev_id {
        None => r.read_varint(FIRST_ID_CHUNK)?,
        Some(p) => p
            .checked_add(r.read_varint(ID_GAP_CHUNK)?)
            .and_then(|v| v.checked_add(1))
            .ok_or(PayloadError::UnorderedIds)?,
    };
    let body = if !r.read_bool()? {
        let age = r
            .read_varint(AGE_CHUNK)?
            .checked_add(1)
            .ok_or(PayloadError::BadBaseline)?;
        let baseline_tick = tick.checked_sub(age).ok_or(PayloadError::BadBaseline)?;
        let (has_motion, has_health, has_state, has_target) = (
            r.read_bool()?,
            r.read_bool()?,
            r.read_bool()?,
            r.read_bool()?,
        );
        let motion = if has_motion {
            Some(read_motion(r, tick)?)
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
            Some(read_target(r, unit_id)?)
        } else {
            None
        };
        DeltaBody::Changes(FieldChanges {
            baseline_tick,
            motion,
            health_delta,
            state_changes,
            target,
        })
    } else if !r.read_bool()? {
        let owner: PlayerId = r.read_varint(OWNER_CHUNK)?;
        let kind = r.read_bits(8)? as u8;
        let position = WorldPos::new(r.read_signed(ABS_CHUNK)?, r.read_signed(ABS_CHUNK)?);
        let motion = if r.read_bool()? {
            let velocity = read_velocity(r)?;
            if velocity.is_zero() {
                return Err(PayloadError::InvalidUnit);
            }
            Motion::new(position, velocity, read_anchor(r, tick)?)
        } else {
            Motion::still(position)
        };
        let health = r.read_bits(HEALTH_BITS)? as u16;
        let state = UnitState(r.read_bits(8)? as u8);
        let target = read_target(r, unit_id)?;
        DeltaBody::Full(
            QuantizedUnit::from_parts(owner, kind, motion, health, state, target)
                .ok_or(PayloadError::InvalidUnit)?,
        )
    } else {
        DeltaBody::Removed
    };
    Ok(UnitDelta { unit_id, body })
}

/// Packs `deltas` (ids strictly increasing) into `w`.
pub fn write_deltas(
    w: &mut BitWriter,
    tick: u64,
    deltas: &[UnitDelta],
) -> Result<(), PayloadError> {
    let mut prev = None;
    for d in deltas {
        write_delta(w, prev, tick, d)?;
        prev = Some(d.unit_id);
    }
    Ok(())
}

/// Unpacks exactly `count` deltas from `bytes`; anything but zero padding
/// after them is an error. Never reserves more than the input can hold.
pub fn read_deltas(bytes: &[u8], count: usize, tick: u64) -> Result<Vec<UnitDelta>, PayloadError> {
    // The smallest record (a removal with a 1-bit id gap) is 6 bits.
    let mut out = Vec::with_capacity(count.min(bytes.len() * 8 / 6));
    let mut r = BitReader::new(bytes);
    let mut prev = None;
    for _ in 0..count {
        let d = read_delta(&mut r, prev, tick)?;
        prev = Some(d.unit_id);
        out.push(d);
    }
    r.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
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
            DeltaBody::Changes(c) => c,
            _ => panic!("not a field delta"),
        }
    }

    #[test]
    fn absent_fields_cost_nothing() {
        let a = unit(0, 0, 100.0);
        let b = unit(12, -3, 100.0);
        let c = FieldChanges::between(7, 8, &a, &b).unwrap();
        assert_eq!(c.health_delta, None);
        let d = UnitDelta {
            unit_id: 1,
            body: DeltaBody::Changes(c),
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
        let c = FieldChanges::between(10, 30, &base, &turned).unwrap();
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
        let c = FieldChanges::between(10, 31, &base, &stopped).unwrap();
        assert_eq!(c.motion.unwrap().position, PositionChange::Delta(-20, 0));
        assert_eq!(c.apply(1, &base), Ok(stopped));
        let d = UnitDelta {
            unit_id: 4,
            body: DeltaBody::Changes(c),
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
        let c = FieldChanges::between(1, 2, &a, &b).unwrap();
        assert_eq!(
            c.motion.unwrap().position,
            PositionChange::Absolute(b.position())
        );
        assert_eq!(c.apply(5, &a), Ok(b));
        let edge = unit(32_767, -32_768, 10.0);
        assert_eq!(
            FieldChanges::between(1, 2, &a, &edge)
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
        let c = FieldChanges::between(1, 2, &a, &fast).unwrap();
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
            baseline_tick: 0,
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
            body: DeltaBody::Changes(h),
        };
        assert_eq!(d.apply(None), Err(DeltaError::MissingBaseline(9)));
        assert_eq!(changes(&d).health_delta, Some(-2));
    }

    #[test]
    fn a_full_record_claiming_motion_without_velocity_is_refused() {
        let mut w = BitWriter::new();
        w.write_varint(1, FIRST_ID_CHUNK);
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
            read_deltas(w.as_bytes(), 1, 5),
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
        let wide = UnitDelta {
            unit_id: 1,
            body: DeltaBody::Changes(FieldChanges {
                baseline_tick: 1,
                motion: Some(MotionChange {
                    anchor_tick: 8,
                    position: PositionChange::Delta(0, 0),
                    velocity: Some(VelocityChange::Delta(MAX_VELOCITY_DELTA + 1, 0)),
                }),
                health_delta: None,
                state_changes: None,
                target: None,
            }),
        };
        assert_eq!(
            write_delta(&mut w, None, 8, &wide),
            Err(PayloadError::InvalidUnit)
        );
        assert_eq!(w.bit_len(), 0, "nothing is left half-written");
    }

    #[test]
    fn writer_refuses_bad_order_and_baselines() {
        let mut w = BitWriter::new();
        let d = UnitDelta::removed(5);
        assert_eq!(
            write_deltas(&mut w, 3, &[d, d]),
            Err(PayloadError::UnorderedIds)
        );
        let c = UnitDelta {
            unit_id: 1,
            body: DeltaBody::Changes(FieldChanges {
                baseline_tick: 3,
                motion: None,
                health_delta: None,
                state_changes: None,
                target: None,
            }),
        };
        assert_eq!(
            write_delta(&mut BitWriter::new(), None, 3, &c),
            Err(PayloadError::BadBaseline)
        );
    }
}

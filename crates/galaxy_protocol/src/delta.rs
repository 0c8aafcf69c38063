//! `UnitDelta`: one unit's change against an acknowledged baseline, and its
//! bit-packed wire form.
//!
//! The `changes` bitfield of the design decides which fields are present;
//! absent fields cost nothing on the wire. See `docs/protocol.md` for the
//! bit layout.

use crate::bits::{BitError, BitReader, BitWriter};
use crate::position::WorldPos;
use crate::unit::{MAX_HEALTH, PlayerId, QuantizedUnit, UnitId, UnitState};

/// `changes` bit: the position is on the wire.
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

/// A position change: a centimetre delta when it fits `i16`, else absolute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PositionChange {
    /// Move by (dx, dy) centimetres from the baseline.
    Delta(i16, i16),
    /// Absolute position (fallback for large moves).
    Absolute(WorldPos),
}

/// The fields that differ from the baseline the receiver acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FieldChanges {
    /// Server tick of the acknowledged state this delta applies to.
    pub baseline_tick: u64,
    /// New position, if it changed.
    pub position: Option<PositionChange>,
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
}

impl FieldChanges {
    /// The changes that turn `base` into `current`, or `None` if they cannot
    /// be expressed as a delta (the owner or kind differs: send it whole).
    pub fn between(
        baseline_tick: u64,
        base: &QuantizedUnit,
        current: &QuantizedUnit,
    ) -> Option<Self> {
        if base.owner() != current.owner() || base.kind() != current.kind() {
            return None;
        }
        let (b, c) = (base.position(), current.position());
        let position = (b != c).then(|| {
            let dx = i16::try_from(c.x as i128 - b.x as i128);
            let dy = i16::try_from(c.y as i128 - b.y as i128);
            match (dx, dy) {
                (Ok(dx), Ok(dy)) => PositionChange::Delta(dx, dy),
                _ => PositionChange::Absolute(c),
            }
        });
        // Both healths are <= MAX_HEALTH = i16::MAX, so the difference fits.
        let health_delta = (base.health() != current.health())
            .then(|| (i32::from(current.health()) - i32::from(base.health())) as i16);
        Some(Self {
            baseline_tick,
            position,
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
        let position = match self.position {
            None => base.position(),
            Some(PositionChange::Absolute(p)) => p,
            Some(PositionChange::Delta(dx, dy)) => base
                .position()
                .checked_offset(i64::from(dx), i64::from(dy))
                .ok_or(DeltaError::PositionOutOfWorld(unit_id))?,
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
            position,
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
                FULL_STATE | POSITION_CHANGED | HEALTH_CHANGED | STATE_CHANGED | TARGET_CHANGED
            }
            DeltaBody::Removed => REMOVED,
            DeltaBody::Changes(c) => {
                let mut bits = 0;
                match c.position {
                    Some(PositionChange::Delta(..)) => bits |= POSITION_CHANGED,
                    Some(PositionChange::Absolute(_)) => {
                        bits |= POSITION_CHANGED | POSITION_ABSOLUTE
                    }
                    None => {}
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
}

// Chunk sizes of the variable-length fields (tuned on the bandwidth report).
const FIRST_ID_CHUNK: u32 = 8;
const ID_GAP_CHUNK: u32 = 3;
const AGE_CHUNK: u32 = 2;
const HEALTH_CHUNK: u32 = 4;
const TARGET_CHUNK: u32 = 6;
const OWNER_CHUNK: u32 = 4;
const ABS_CHUNK: u32 = 8;
/// Bits per axis of the three delta position classes; the fourth class is absolute.
const POSITION_CLASS_BITS: [u32; 3] = [6, 10, 16];
const HEALTH_BITS: u32 = 15;

fn fits(v: i16, bits: u32) -> bool {
    let half = 1i32 << (bits - 1);
    (-half..half).contains(&i32::from(v))
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

/// Appends one delta to a packed payload. `prev_id` is the previous record's
/// unit id in this payload (ids must increase); `tick` is the update's tick.
///
/// Returns `Err` without writing if the ids are out of order or the
/// baseline is not older than `tick`.
pub fn write_delta(
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
            w.write_bool(c.position.is_some());
            w.write_bool(c.health_delta.is_some());
            w.write_bool(c.state_changes.is_some());
            w.write_bool(c.target.is_some());
            match c.position {
                Some(PositionChange::Delta(dx, dy)) => {
                    let class = POSITION_CLASS_BITS
                        .iter()
                        .position(|&b| fits(dx, b) && fits(dy, b))
                        .unwrap_or(POSITION_CLASS_BITS.len() - 1);
                    let bits = POSITION_CLASS_BITS[class];
                    w.write_bits(class as u64, 2);
                    w.write_bits(crate::bits::zigzag(i64::from(dx)), bits);
                    w.write_bits(crate::bits::zigzag(i64::from(dy)), bits);
                }
                Some(PositionChange::Absolute(p)) => {
                    w.write_bits(3, 2);
                    w.write_signed(p.x, ABS_CHUNK);
                    w.write_signed(p.y, ABS_CHUNK);
                }
                None => {}
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
        let (has_pos, has_health, has_state, has_target) = (
            r.read_bool()?,
            r.read_bool()?,
            r.read_bool()?,
            r.read_bool()?,
        );
        let position = if has_pos {
            let class = r.read_bits(2)? as usize;
            Some(match POSITION_CLASS_BITS.get(class) {
                Some(&bits) => {
                    let dx = crate::bits::unzigzag(r.read_bits(bits)?);
                    let dy = crate::bits::unzigzag(r.read_bits(bits)?);
                    // A zigzag value of at most 16 bits always fits i16.
                    PositionChange::Delta(dx as i16, dy as i16)
                }
                None => PositionChange::Absolute(WorldPos::new(
                    r.read_signed(ABS_CHUNK)?,
                    r.read_signed(ABS_CHUNK)?,
                )),
            })
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
            position,
            health_delta,
            state_changes,
            target,
        })
    } else if !r.read_bool()? {
        let owner: PlayerId = r.read_varint(OWNER_CHUNK)?;
        let kind = r.read_bits(8)? as u8;
        let position = WorldPos::new(r.read_signed(ABS_CHUNK)?, r.read_signed(ABS_CHUNK)?);
        let health = r.read_bits(HEALTH_BITS)? as u16;
        let state = UnitState(r.read_bits(8)? as u8);
        let target = read_target(r, unit_id)?;
        DeltaBody::Full(
            QuantizedUnit::from_parts(owner, kind, position, health, state, target)
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
    use crate::unit::{UnitSample, quantize};

    fn unit(x: i64, y: i64, health: f32) -> QuantizedUnit {
        quantize(&UnitSample {
            owner: 3,
            kind: 2,
            position: WorldPos::new(x, y),
            health,
            state: UnitState::MOVING,
            target: None,
        })
    }

    #[test]
    fn absent_fields_cost_nothing() {
        let a = unit(0, 0, 100.0);
        let b = unit(25, -3, 100.0);
        let c = FieldChanges::between(7, &a, &b).unwrap();
        assert_eq!(c.health_delta, None);
        let d = UnitDelta {
            unit_id: 1,
            body: DeltaBody::Changes(c),
        };
        assert_eq!(d.changes(), POSITION_CHANGED);
        let mut w = BitWriter::new();
        write_delta(&mut w, None, 8, &d).unwrap();
        // id 9 + kind 1 + age 3 + flags 4 + class 2 + 2 x 6.
        assert_eq!(w.bit_len(), 9 + 1 + 3 + 4 + 2 + 12);
        assert_eq!(read_deltas(w.as_bytes(), 1, 8).unwrap(), vec![d]);
    }

    #[test]
    fn large_moves_fall_back_to_absolute() {
        let a = unit(0, 0, 10.0);
        let b = unit(i64::MAX, i64::MIN, 10.0);
        let c = FieldChanges::between(1, &a, &b).unwrap();
        assert_eq!(c.position, Some(PositionChange::Absolute(b.position())));
        assert_eq!(c.apply(5, &a), Ok(b));
        let edge = unit(32_767, -32_768, 10.0);
        assert_eq!(
            FieldChanges::between(1, &a, &edge).unwrap().position,
            Some(PositionChange::Delta(32_767, -32_768))
        );
    }

    #[test]
    fn apply_refuses_out_of_range() {
        let a = unit(i64::MAX, 0, 1.0);
        let c = FieldChanges {
            baseline_tick: 0,
            position: Some(PositionChange::Delta(1, 0)),
            health_delta: None,
            state_changes: None,
            target: None,
        };
        assert_eq!(c.apply(9, &a), Err(DeltaError::PositionOutOfWorld(9)));
        let h = FieldChanges {
            position: None,
            health_delta: Some(-2),
            ..c
        };
        assert_eq!(h.apply(9, &a), Err(DeltaError::HealthOutOfRange(9)));
        let d = UnitDelta {
            unit_id: 9,
            body: DeltaBody::Changes(h),
        };
        assert_eq!(d.apply(None), Err(DeltaError::MissingBaseline(9)));
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
                position: None,
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

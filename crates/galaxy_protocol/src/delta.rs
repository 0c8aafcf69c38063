//! `UnitDelta`: one unit's entry in a `UnitUpdate`, against an acknowledged
//! baseline, and the record framing that packs it into bits.
//!
//! The framing is the same for every [`UnitSnapshot`]: the unit id (as a
//! gap from the previous record's), whether the record is a delta, a whole
//! unit or a removal, and for a delta the age of its baseline. What follows
//! is the snapshot's own packing of its changes or of the whole state. See
//! `docs/protocol.md` for the bit layout.

use crate::bits::{BitError, BitReader, BitWriter};
use crate::snapshot::{RecordContext, UnitSnapshot};
use crate::unit::{QuantizedUnit, UnitId};

/// `changes` bit: the whole unit is on the wire; no baseline is needed.
pub const FULL_STATE: u32 = 0b0010_0000;
/// `changes` bit: the unit left the receiver's interest (despawn it).
pub const REMOVED: u32 = 0b0100_0000;

/// What a [`UnitDelta`] carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeltaBody<S: UnitSnapshot = QuantizedUnit> {
    /// The whole unit: new to this receiver, back in view, or baseline too old.
    Full(S),
    /// Changed fields against an acknowledged baseline.
    Changes {
        /// Server tick of the acknowledged state these changes apply to.
        baseline_tick: u64,
        /// The snapshot's changes.
        changes: S::Changes,
    },
    /// The unit left this receiver's interest or died.
    Removed,
}

/// One unit's entry in a `UnitUpdate` (the design's `UnitDelta`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnitDelta<S: UnitSnapshot = QuantizedUnit> {
    /// The unit.
    pub unit_id: UnitId,
    /// Its change.
    pub body: DeltaBody<S>,
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
    /// A field of a game's snapshot left its range.
    #[error("unit {0}: a field left its range")]
    FieldOutOfRange(UnitId),
}

impl<S: UnitSnapshot> UnitDelta<S> {
    /// A delta carrying the whole unit.
    pub fn full(unit_id: UnitId, unit: S) -> Self {
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

    /// The design's `changes` bitfield for this delta: [`FULL_STATE`] (with
    /// every field bit of a whole unit), [`REMOVED`], or the snapshot's
    /// bits for the fields on the wire.
    pub fn changes(&self) -> u32 {
        match &self.body {
            DeltaBody::Full(_) => FULL_STATE | S::FIELD_BITS,
            DeltaBody::Removed => REMOVED,
            DeltaBody::Changes { changes, .. } => S::change_bits(changes),
        }
    }

    /// The unit's state after this delta: `Ok(None)` means removed.
    /// `baseline` must be the receiver's state at the baseline tick for field deltas.
    pub fn apply(&self, baseline: Option<&S>) -> Result<Option<S>, DeltaError> {
        match &self.body {
            DeltaBody::Full(u) => Ok(Some(*u)),
            DeltaBody::Removed => Ok(None),
            DeltaBody::Changes { changes, .. } => {
                let base = baseline.ok_or(DeltaError::MissingBaseline(self.unit_id))?;
                S::apply(base, changes, self.unit_id).map(Some)
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

// Chunk sizes of the framing's variable-length fields (tuned on the bandwidth report).
const FIRST_ID_CHUNK: u32 = 8;
const ID_GAP_CHUNK: u32 = 3;
const AGE_CHUNK: u32 = 2;

/// Appends one delta to a packed payload. `prev_id` is the previous record's
/// unit id in this payload (ids must increase); `tick` is the update's tick.
///
/// Returns `Err` without writing if the ids are out of order, the baseline
/// is not older than `tick`, or the snapshot refuses its fields (e.g. a
/// track anchored after `tick`).
pub fn write_delta<S: UnitSnapshot>(
    w: &mut BitWriter,
    prev_id: Option<UnitId>,
    tick: u64,
    delta: &UnitDelta<S>,
) -> Result<(), PayloadError> {
    let mark = w.bit_len();
    let written = write_record(w, prev_id, tick, delta);
    if written.is_err() {
        w.truncate(mark);
    }
    written
}

fn write_record<S: UnitSnapshot>(
    w: &mut BitWriter,
    prev_id: Option<UnitId>,
    tick: u64,
    delta: &UnitDelta<S>,
) -> Result<(), PayloadError> {
    let id = delta.unit_id;
    let age = match &delta.body {
        DeltaBody::Changes { baseline_tick, .. } if *baseline_tick >= tick => {
            return Err(PayloadError::BadBaseline);
        }
        DeltaBody::Changes { baseline_tick, .. } => Some(tick - baseline_tick),
        _ => None,
    };
    match prev_id {
        None => w.write_varint(id, FIRST_ID_CHUNK),
        Some(p) if id > p => w.write_varint(id - p - 1, ID_GAP_CHUNK),
        Some(_) => return Err(PayloadError::UnorderedIds),
    }
    let ctx = RecordContext { unit: id, tick };
    match &delta.body {
        DeltaBody::Changes { changes, .. } => {
            w.write_bool(false);
            w.write_varint(age.unwrap_or(1) - 1, AGE_CHUNK);
            S::write_changes(changes, ctx, w)?;
        }
        DeltaBody::Full(u) => {
            w.write_bool(true);
            w.write_bool(false);
            u.write_full(ctx, w)?;
        }
        DeltaBody::Removed => {
            w.write_bool(true);
            w.write_bool(true);
        }
    }
    Ok(())
}

/// Reads one delta written by [`write_delta`].
pub fn read_delta<S: UnitSnapshot>(
    r: &mut BitReader<'_>,
    prev_id: Option<UnitId>,
    tick: u64,
) -> Result<UnitDelta<S>, PayloadError> {
    let unit_id = match prev_id {
        None => r.read_varint(FIRST_ID_CHUNK)?,
        Some(p) => p
            .checked_add(r.read_varint(ID_GAP_CHUNK)?)
            .and_then(|v| v.checked_add(1))
            .ok_or(PayloadError::UnorderedIds)?,
    };
    let ctx = RecordContext {
        unit: unit_id,
        tick,
    };
    let body = if !r.read_bool()? {
        let age = r
            .read_varint(AGE_CHUNK)?
            .checked_add(1)
            .ok_or(PayloadError::BadBaseline)?;
        let baseline_tick = tick.checked_sub(age).ok_or(PayloadError::BadBaseline)?;
        DeltaBody::Changes {
            baseline_tick,
            changes: S::read_changes(ctx, r)?,
        }
    } else if !r.read_bool()? {
        DeltaBody::Full(S::read_full(ctx, r)?)
    } else {
        DeltaBody::Removed
    };
    Ok(UnitDelta { unit_id, body })
}

/// Packs `deltas` (ids strictly increasing) into `w`.
pub fn write_deltas<S: UnitSnapshot>(
    w: &mut BitWriter,
    tick: u64,
    deltas: &[UnitDelta<S>],
) -> Result<(), PayloadError> {
    let mut prev = None;
    for d in deltas {
        write_delta(w, prev, tick, d)?;
        prev = Some(d.unit_id);
    }
    Ok(())
}

/// Unpacks exactly `count` deltas from `bytes`; anything but zero padding
/// after them is an error. Memory grows with the records actually read, not
/// with what `count` claims or the input could hold.
pub fn read_deltas<S: UnitSnapshot>(
    bytes: &[u8],
    count: usize,
    tick: u64,
) -> Result<Vec<UnitDelta<S>>, PayloadError> {
    /// Records reserved up front; more are added as they are read.
    const FIRST: usize = 16;
    let mut out = Vec::with_capacity(count.min(FIRST));
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
    use crate::unit_delta::FieldChanges;

    #[test]
    fn writer_refuses_bad_order_and_baselines() {
        let mut w = BitWriter::new();
        let d: UnitDelta = UnitDelta::removed(5);
        assert_eq!(
            write_deltas(&mut w, 3, &[d, d]),
            Err(PayloadError::UnorderedIds)
        );
        let c: UnitDelta = UnitDelta {
            unit_id: 1,
            body: DeltaBody::Changes {
                baseline_tick: 3,
                changes: FieldChanges::default(),
            },
        };
        assert_eq!(
            write_delta(&mut BitWriter::new(), None, 3, &c),
            Err(PayloadError::BadBaseline)
        );
    }

    #[test]
    fn removals_and_ids_round_trip() {
        let deltas: Vec<UnitDelta> = [3u64, 4, 90, 1 << 40]
            .into_iter()
            .map(UnitDelta::removed)
            .collect();
        let mut w = BitWriter::new();
        write_deltas(&mut w, 7, &deltas).unwrap();
        assert_eq!(read_deltas(w.as_bytes(), 4, 7).unwrap(), deltas);
        assert!(deltas.iter().all(|d| d.changes() == REMOVED));
    }
}

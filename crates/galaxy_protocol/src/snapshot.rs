//! [`UnitSnapshot`]: what a game's replicated unit state must offer the
//! delta machinery.
//!
//! A snapshot is a unit's state after quantization: integers only, so the
//! server and every client compare and rebuild bit-identical values. The
//! machinery around it ([`crate::DeltaSender`], [`crate::DeltaReceiver`],
//! the `UnitUpdate` codec) is the same for every snapshot type: per-client
//! baselines, acks, sector grouping, the byte budget and the record framing
//! (unit id, full / changes / removed, baseline age). A snapshot type only
//! says how to diff two of its values, how to apply a diff, how to pack
//! both into bits, and where the unit is.
//!
//! Three ways to get one:
//! - [`crate::QuantizedUnit`], the RTS unit (owner, kind, dead-reckoned
//!   track, health, state, target), hand-packed for the bandwidth figures;
//! - [`crate::unit_snapshot!`], which builds a snapshot struct from a list
//!   of [`crate::SnapshotField`]s (one line per field);
//! - implementing this trait by hand.

use std::fmt::Debug;

use crate::bits::{BitReader, BitWriter};
use crate::delta::{DeltaError, PayloadError};
use crate::position::WorldPos;
use crate::unit::UnitId;

/// Where a record is being packed or unpacked: its unit and the update's
/// server tick. Fields may encode relative to either (a target as an id
/// offset, an anchor tick as an age).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordContext {
    /// The unit the record is about.
    pub unit: UnitId,
    /// The server tick of the update carrying it.
    pub tick: u64,
}

/// A unit's replicated state, as baselines hold it on both sides; see the
/// module docs. Implementations must be deterministic: `apply(base,
/// diff(base, current))` is exactly `current`, and reading what was written
/// gives back the same value.
pub trait UnitSnapshot: Copy + Eq + Debug + Send + Sync + 'static {
    /// The difference between two states (absent fields cost nothing).
    type Changes: Copy + Eq + Debug + Send + Sync + 'static;

    /// The bits [`UnitSnapshot::change_bits`] may set: every field's bit
    /// (a whole unit's `changes` is these plus [`crate::FULL_STATE`]).
    const FIELD_BITS: u32;

    /// Where the unit is at server tick `tick`: it decides the unit's
    /// sector (interest and grouping) and how wrong an old picture of it
    /// is (priority).
    fn position_at(&self, tick: u64) -> WorldPos;

    /// The unit's velocity in centimetres per tick, for drawing between
    /// updates (interpolation and bounded extrapolation). Still by default.
    fn velocity_cm_per_tick(&self) -> (f64, f64) {
        (0.0, 0.0)
    }

    /// The changes that turn `base` into `current` in an update at `tick`,
    /// or `None` when they cannot be a delta (the unit must go whole, e.g.
    /// its identity changed).
    fn diff(base: &Self, current: &Self, tick: u64) -> Option<Self::Changes>;

    /// `base` with `changes` applied; an error if the result would be out
    /// of range (only a hostile or corrupted sender makes one).
    fn apply(base: &Self, changes: &Self::Changes, unit: UnitId) -> Result<Self, DeltaError>;

    /// The design's `changes` bitfield for a delta: one bit per field on
    /// the wire (for stats and inspection; the wire has its own flags).
    fn change_bits(changes: &Self::Changes) -> u32;

    /// Packs the whole state.
    fn write_full(&self, ctx: RecordContext, w: &mut BitWriter) -> Result<(), PayloadError>;

    /// Unpacks a whole state written by [`UnitSnapshot::write_full`].
    fn read_full(ctx: RecordContext, r: &mut BitReader<'_>) -> Result<Self, PayloadError>;

    /// Packs a delta.
    fn write_changes(
        changes: &Self::Changes,
        ctx: RecordContext,
        w: &mut BitWriter,
    ) -> Result<(), PayloadError>;

    /// Unpacks a delta written by [`UnitSnapshot::write_changes`].
    fn read_changes(
        ctx: RecordContext,
        r: &mut BitReader<'_>,
    ) -> Result<Self::Changes, PayloadError>;
}

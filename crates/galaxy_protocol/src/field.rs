//! [`SnapshotField`]: one field of a game's own snapshot, and
//! [`unit_snapshot!`](crate::unit_snapshot), which makes a whole
//! [`UnitSnapshot`](crate::UnitSnapshot) out of a list of them.
//!
//! Each field knows how to diff itself against the baseline's value, apply
//! such a diff, and pack both (and its whole value) into bits. A snapshot
//! made by the macro sends, for a delta, one flag per field and then the
//! diffs of the fields that changed; fields that did not change cost one
//! bit. Adding a field to a game's replicated state is one line.
//!
//! Provided fields: the integers (a delta is the wrapping difference, as a
//! zigzag varint), `bool`, [`WorldPos`] (small moves as `i16` offsets,
//! larger ones absolute), [`Motion`] (a dead-reckoning track: nothing is
//! sent while a unit keeps to it) and `Option` of any of them. A
//! snapshot's position is its first field that has one (a `WorldPos` or a
//! `Motion`).

use std::fmt::Debug;

use crate::bits::{BitReader, BitWriter};
use crate::delta::PayloadError;
use crate::position::WorldPos;
use crate::snapshot::RecordContext;
use crate::unit::Motion;
use crate::unit_delta::{
    ABS_CHUNK, MotionChange, POSITION_CLASS_BITS, PositionChange, read_anchor, read_motion,
    read_pair, read_velocity, write_anchor, write_motion, write_pair, write_velocity,
};

/// One field of a snapshot made with [`unit_snapshot!`](crate::unit_snapshot);
/// see the module docs. `apply(base, diff(base, current))` must give
/// `current` back, and reading what was written the same value.
pub trait SnapshotField: Copy + Eq + Debug + Send + Sync + 'static {
    /// A change of this field.
    type Delta: Copy + Eq + Debug + Send + Sync + 'static;

    /// The change from `base` to `current` in an update at `tick`, `None`
    /// if they are equal.
    fn diff(base: &Self, current: &Self, tick: u64) -> Option<Self::Delta>;

    /// `base` with `delta` applied; `None` if the result is out of range.
    fn apply(base: &Self, delta: &Self::Delta) -> Option<Self>;

    /// Packs the whole value.
    fn write(&self, ctx: RecordContext, w: &mut BitWriter) -> Result<(), PayloadError>;

    /// Unpacks a value written by [`SnapshotField::write`].
    fn read(ctx: RecordContext, r: &mut BitReader<'_>) -> Result<Self, PayloadError>;

    /// Packs a change.
    fn write_delta(
        delta: &Self::Delta,
        ctx: RecordContext,
        w: &mut BitWriter,
    ) -> Result<(), PayloadError>;

    /// Unpacks a change written by [`SnapshotField::write_delta`].
    fn read_delta(ctx: RecordContext, r: &mut BitReader<'_>) -> Result<Self::Delta, PayloadError>;

    /// Where the unit is at `tick`, if this field is a position.
    fn position_at(&self, _tick: u64) -> Option<WorldPos> {
        None
    }

    /// The unit's velocity in cm per tick, if this field has one.
    fn velocity_cm_per_tick(&self) -> Option<(f64, f64)> {
        None
    }
}

/// Varint chunk of integer fields and their deltas.
const INT_CHUNK: u32 = 4;

macro_rules! unsigned_field {
    ($($t:ty => $s:ty),*) => {$(
        impl SnapshotField for $t {
            /// The wrapping difference, as the signed type of the same width.
            type Delta = $s;
            fn diff(base: &Self, current: &Self, _tick: u64) -> Option<$s> {
                (base != current).then(|| current.wrapping_sub(*base) as $s)
            }
            fn apply(base: &Self, delta: &$s) -> Option<Self> {
                Some(base.wrapping_add(*delta as $t))
            }
            fn write(&self, _: RecordContext, w: &mut BitWriter) -> Result<(), PayloadError> {
                w.write_varint(u64::from(*self), INT_CHUNK);
                Ok(())
            }
            fn read(_: RecordContext, r: &mut BitReader<'_>) -> Result<Self, PayloadError> {
                <$t>::try_from(r.read_varint(INT_CHUNK)?).map_err(|_| PayloadError::InvalidUnit)
            }
            fn write_delta(d: &$s, _: RecordContext, w: &mut BitWriter) -> Result<(), PayloadError> {
                w.write_signed(i64::from(*d), INT_CHUNK);
                Ok(())
            }
            fn read_delta(_: RecordContext, r: &mut BitReader<'_>) -> Result<$s, PayloadError> {
                <$s>::try_from(r.read_signed(INT_CHUNK)?).map_err(|_| PayloadError::InvalidUnit)
            }
        }
    )*};
}

macro_rules! signed_field {
    ($($t:ty),*) => {$(
        impl SnapshotField for $t {
            /// The wrapping difference.
            type Delta = $t;
            fn diff(base: &Self, current: &Self, _tick: u64) -> Option<$t> {
                (base != current).then(|| current.wrapping_sub(*base))
            }
            fn apply(base: &Self, delta: &$t) -> Option<Self> {
                Some(base.wrapping_add(*delta))
            }
            fn write(&self, _: RecordContext, w: &mut BitWriter) -> Result<(), PayloadError> {
                w.write_signed(i64::from(*self), INT_CHUNK);
                Ok(())
            }
            fn read(_: RecordContext, r: &mut BitReader<'_>) -> Result<Self, PayloadError> {
                <$t>::try_from(r.read_signed(INT_CHUNK)?).map_err(|_| PayloadError::InvalidUnit)
            }
            fn write_delta(d: &$t, ctx: RecordContext, w: &mut BitWriter) -> Result<(), PayloadError> {
                d.write(ctx, w)
            }
            fn read_delta(ctx: RecordContext, r: &mut BitReader<'_>) -> Result<$t, PayloadError> {
                <$t>::read(ctx, r)
            }
        }
    )*};
}

unsigned_field!(u8 => i8, u16 => i16, u32 => i32, u64 => i64);
signed_field!(i8, i16, i32, i64);

impl SnapshotField for bool {
    /// The new value.
    type Delta = bool;
    fn diff(base: &Self, current: &Self, _tick: u64) -> Option<bool> {
        (base != current).then_some(*current)
    }
    fn apply(_base: &Self, delta: &bool) -> Option<Self> {
        Some(*delta)
    }
    fn write(&self, _: RecordContext, w: &mut BitWriter) -> Result<(), PayloadError> {
        w.write_bool(*self);
        Ok(())
    }
    fn read(_: RecordContext, r: &mut BitReader<'_>) -> Result<Self, PayloadError> {
        Ok(r.read_bool()?)
    }
    fn write_delta(d: &bool, ctx: RecordContext, w: &mut BitWriter) -> Result<(), PayloadError> {
        d.write(ctx, w)
    }
    fn read_delta(ctx: RecordContext, r: &mut BitReader<'_>) -> Result<bool, PayloadError> {
        bool::read(ctx, r)
    }
}

impl SnapshotField for WorldPos {
    /// An `i16` offset in centimetres when it fits, else the new position.
    type Delta = PositionChange;
    fn diff(base: &Self, current: &Self, _tick: u64) -> Option<PositionChange> {
        (base != current).then(|| PositionChange::between(*base, *current))
    }
    fn apply(base: &Self, delta: &PositionChange) -> Option<Self> {
        match *delta {
            PositionChange::Absolute(p) => Some(p),
            PositionChange::Delta(dx, dy) => base.checked_offset(i64::from(dx), i64::from(dy)),
        }
    }
    fn write(&self, _: RecordContext, w: &mut BitWriter) -> Result<(), PayloadError> {
        w.write_signed(self.x, ABS_CHUNK);
        w.write_signed(self.y, ABS_CHUNK);
        Ok(())
    }
    fn read(_: RecordContext, r: &mut BitReader<'_>) -> Result<Self, PayloadError> {
        Ok(WorldPos::new(
            r.read_signed(ABS_CHUNK)?,
            r.read_signed(ABS_CHUNK)?,
        ))
    }
    fn write_delta(
        d: &PositionChange,
        ctx: RecordContext,
        w: &mut BitWriter,
    ) -> Result<(), PayloadError> {
        match *d {
            PositionChange::Delta(dx, dy) => {
                // The widest class holds any i16.
                write_pair(w, &POSITION_CLASS_BITS, dx, dy);
                Ok(())
            }
            PositionChange::Absolute(p) => {
                w.write_bits(3, 2);
                p.write(ctx, w)
            }
        }
    }
    fn read_delta(
        ctx: RecordContext,
        r: &mut BitReader<'_>,
    ) -> Result<PositionChange, PayloadError> {
        Ok(match read_pair(r, &POSITION_CLASS_BITS)? {
            Some((dx, dy)) => PositionChange::Delta(dx, dy),
            None => PositionChange::Absolute(WorldPos::read(ctx, r)?),
        })
    }
    fn position_at(&self, _tick: u64) -> Option<WorldPos> {
        Some(*self)
    }
}

impl SnapshotField for Motion {
    /// A new track, as an offset from where the old one puts the unit.
    type Delta = MotionChange;
    fn diff(base: &Self, current: &Self, tick: u64) -> Option<MotionChange> {
        MotionChange::between(tick, base, current)
    }
    fn apply(base: &Self, delta: &MotionChange) -> Option<Self> {
        delta.apply(0, base).ok()
    }
    fn write(&self, ctx: RecordContext, w: &mut BitWriter) -> Result<(), PayloadError> {
        self.position.write(ctx, w)?;
        w.write_bool(!self.velocity.is_zero());
        if !self.velocity.is_zero() {
            write_velocity(w, self.velocity);
            write_anchor(w, ctx.tick, self.anchor_tick)?;
        }
        Ok(())
    }
    fn read(ctx: RecordContext, r: &mut BitReader<'_>) -> Result<Self, PayloadError> {
        let position = WorldPos::read(ctx, r)?;
        if !r.read_bool()? {
            return Ok(Motion::still(position));
        }
        let velocity = read_velocity(r)?;
        if velocity.is_zero() {
            return Err(PayloadError::InvalidUnit);
        }
        Ok(Motion::new(position, velocity, read_anchor(r, ctx.tick)?))
    }
    fn write_delta(
        d: &MotionChange,
        ctx: RecordContext,
        w: &mut BitWriter,
    ) -> Result<(), PayloadError> {
        write_motion(w, ctx.tick, d)
    }
    fn read_delta(ctx: RecordContext, r: &mut BitReader<'_>) -> Result<MotionChange, PayloadError> {
        read_motion(r, ctx.tick)
    }
    fn position_at(&self, tick: u64) -> Option<WorldPos> {
        Some(Motion::position_at(self, tick))
    }
    fn velocity_cm_per_tick(&self) -> Option<(f64, f64)> {
        Some(self.velocity.cm_per_tick())
    }
}

impl<T: SnapshotField> SnapshotField for Option<T> {
    /// The new value, whole.
    type Delta = Option<T>;
    fn diff(base: &Self, current: &Self, _tick: u64) -> Option<Option<T>> {
        (base != current).then_some(*current)
    }
    fn apply(_base: &Self, delta: &Option<T>) -> Option<Self> {
        Some(*delta)
    }
    fn write(&self, ctx: RecordContext, w: &mut BitWriter) -> Result<(), PayloadError> {
        w.write_bool(self.is_some());
        match self {
            Some(v) => v.write(ctx, w),
            None => Ok(()),
        }
    }
    fn read(ctx: RecordContext, r: &mut BitReader<'_>) -> Result<Self, PayloadError> {
        Ok(if r.read_bool()? {
            Some(T::read(ctx, r)?)
        } else {
            None
        })
    }
    fn write_delta(
        d: &Option<T>,
        ctx: RecordContext,
        w: &mut BitWriter,
    ) -> Result<(), PayloadError> {
        d.write(ctx, w)
    }
    fn read_delta(ctx: RecordContext, r: &mut BitReader<'_>) -> Result<Option<T>, PayloadError> {
        Self::read(ctx, r)
    }
    fn position_at(&self, tick: u64) -> Option<WorldPos> {
        self.as_ref().and_then(|v| v.position_at(tick))
    }
    fn velocity_cm_per_tick(&self) -> Option<(f64, f64)> {
        self.as_ref().and_then(|v| v.velocity_cm_per_tick())
    }
}

/// Defines a snapshot struct whose fields are [`SnapshotField`]s and
/// implements [`UnitSnapshot`](crate::UnitSnapshot) for it: a delta is one
/// flag per field, then the changed fields' deltas. At most 12 fields (the
/// changes are a tuple of one `Option` per field). Field `i`'s `changes`
/// bit is `1 << (8 + i)`.
///
/// ```
/// use galaxy_protocol::{Motion, UnitSnapshot, WorldPos, unit_snapshot};
///
/// unit_snapshot! {
///     /// A ship as clients see it.
///     pub struct Ship {
///         /// Where it is (a dead-reckoning track).
///         pub motion: Motion,
///         /// Hull points.
///         pub hull: u16,
///         /// Shield points.
///         pub shield: u16,
///     }
/// }
///
/// let a = Ship { motion: Motion::still(WorldPos::new(0, 0)), hull: 100, shield: 50 };
/// let b = Ship { shield: 20, ..a };
/// let changes = Ship::diff(&a, &b, 10).unwrap();
/// assert_eq!(Ship::apply(&a, &changes, 1), Ok(b));
/// assert_eq!(Ship::change_bits(&changes), 1 << 10);
/// ```
#[macro_export]
macro_rules! unit_snapshot {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $fvis:vis $field:ident : $ty:ty
            ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        $vis struct $name {
            $( $(#[$fmeta])* $fvis $field: $ty, )+
        }

        impl $crate::UnitSnapshot for $name {
            type Changes = ( $( ::core::option::Option<<$ty as $crate::SnapshotField>::Delta>, )+ );

            const FIELD_BITS: u32 = {
                let mut bits = 0u32;
                let mut bit = 1u32 << 8;
                $( let _ = ::core::stringify!($field); bits |= bit; bit <<= 1; )+
                let _ = bit;
                bits
            };

            fn position_at(&self, tick: u64) -> $crate::WorldPos {
                $(
                    if let ::core::option::Option::Some(p) =
                        $crate::SnapshotField::position_at(&self.$field, tick)
                    {
                        return p;
                    }
                )+
                $crate::WorldPos::new(0, 0)
            }

            fn velocity_cm_per_tick(&self) -> (f64, f64) {
                $(
                    if let ::core::option::Option::Some(v) =
                        $crate::SnapshotField::velocity_cm_per_tick(&self.$field)
                    {
                        return v;
                    }
                )+
                (0.0, 0.0)
            }

            fn diff(base: &Self, current: &Self, tick: u64) -> ::core::option::Option<Self::Changes> {
                ::core::option::Option::Some((
                    $( $crate::SnapshotField::diff(&base.$field, &current.$field, tick), )+
                ))
            }

            fn apply(
                base: &Self,
                changes: &Self::Changes,
                unit: $crate::UnitId,
            ) -> ::core::result::Result<Self, $crate::DeltaError> {
                let ( $( $field, )+ ) = *changes;
                ::core::result::Result::Ok(Self {
                    $(
                        $field: match $field {
                            ::core::option::Option::None => base.$field,
                            ::core::option::Option::Some(d) => {
                                $crate::SnapshotField::apply(&base.$field, &d)
                                    .ok_or($crate::DeltaError::FieldOutOfRange(unit))?
                            }
                        },
                    )+
                })
            }

            fn change_bits(changes: &Self::Changes) -> u32 {
                let ( $( $field, )+ ) = changes;
                let mut bits = 0u32;
                let mut bit = 1u32 << 8;
                $(
                    if $field.is_some() {
                        bits |= bit;
                    }
                    bit <<= 1;
                )+
                let _ = bit;
                bits
            }

            fn write_full(
                &self,
                ctx: $crate::RecordContext,
                w: &mut $crate::bits::BitWriter,
            ) -> ::core::result::Result<(), $crate::PayloadError> {
                $( $crate::SnapshotField::write(&self.$field, ctx, w)?; )+
                ::core::result::Result::Ok(())
            }

            fn read_full(
                ctx: $crate::RecordContext,
                r: &mut $crate::bits::BitReader<'_>,
            ) -> ::core::result::Result<Self, $crate::PayloadError> {
                ::core::result::Result::Ok(Self {
                    $( $field: <$ty as $crate::SnapshotField>::read(ctx, r)?, )+
                })
            }

            fn write_changes(
                changes: &Self::Changes,
                ctx: $crate::RecordContext,
                w: &mut $crate::bits::BitWriter,
            ) -> ::core::result::Result<(), $crate::PayloadError> {
                let ( $( $field, )+ ) = changes;
                $( w.write_bool($field.is_some()); )+
                $(
                    if let ::core::option::Option::Some(d) = $field {
                        <$ty as $crate::SnapshotField>::write_delta(d, ctx, w)?;
                    }
                )+
                ::core::result::Result::Ok(())
            }

            fn read_changes(
                ctx: $crate::RecordContext,
                r: &mut $crate::bits::BitReader<'_>,
            ) -> ::core::result::Result<Self::Changes, $crate::PayloadError> {
                $( let $field = r.read_bool()?; )+
                ::core::result::Result::Ok((
                    $(
                        if $field {
                            ::core::option::Option::Some(
                                <$ty as $crate::SnapshotField>::read_delta(ctx, r)?,
                            )
                        } else {
                            ::core::option::Option::None
                        },
                    )+
                ))
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UnitSnapshot;
    use crate::delta::{DeltaBody, UnitDelta, read_deltas, write_deltas};
    use crate::position::Velocity;

    crate::unit_snapshot! {
        /// Every provided field kind at once.
        struct Everything {
            track: Motion,
            spot: WorldPos,
            a: u8,
            b: u16,
            c: u32,
            d: u64,
            e: i8,
            f: i32,
            g: i64,
            flag: bool,
            target: Option<u64>,
            place: Option<WorldPos>,
        }
    }

    fn thing(seed: i64) -> Everything {
        Everything {
            track: Motion::new(
                WorldPos::new(seed * 7, -seed),
                Velocity::new(seed as i32 % 40, 3),
                5,
            ),
            spot: WorldPos::new(seed, seed * seed),
            a: seed as u8,
            b: (seed * 300) as u16,
            c: u32::MAX - seed as u32,
            d: seed as u64 * 1_000_000_007,
            e: -(seed as i8),
            f: i32::MIN + seed as i32,
            g: seed * -99,
            flag: seed % 2 == 0,
            target: (seed % 3 != 0).then_some(seed as u64 * 13),
            place: (seed % 4 == 0).then(|| WorldPos::new(i64::MAX - seed, 0)),
        }
    }

    /// Diffs between every pair apply exactly, and records of whole
    /// snapshots, deltas and removals read back as written.
    #[test]
    fn every_field_round_trips() {
        let tick = 40;
        let things: Vec<Everything> = (0..30).map(thing).collect();
        let mut deltas = Vec::new();
        for (i, pair) in things.windows(2).enumerate() {
            let changes = Everything::diff(&pair[0], &pair[1], tick).unwrap();
            assert_eq!(Everything::apply(&pair[0], &changes, 1), Ok(pair[1]));
            let unit_id = 2 * i as u64 + 1;
            deltas.push(UnitDelta::full(unit_id, pair[0]));
            deltas.push(UnitDelta {
                unit_id: unit_id + 1,
                body: DeltaBody::Changes {
                    baseline_tick: tick - 1 - i as u64,
                    changes,
                },
            });
        }
        deltas.push(UnitDelta::removed(1000));
        let mut w = BitWriter::new();
        write_deltas(&mut w, tick, &deltas).unwrap();
        let back: Vec<UnitDelta<Everything>> =
            read_deltas(w.as_bytes(), deltas.len(), tick).unwrap();
        assert_eq!(back, deltas);
    }

    /// An unchanged snapshot costs one flag per field; its position is the
    /// first positional field, dead-reckoned.
    #[test]
    fn unchanged_fields_cost_a_bit_and_the_track_is_the_position() {
        let t = thing(3);
        let changes = Everything::diff(&t, &t, 10).unwrap();
        assert_eq!(Everything::change_bits(&changes), 0);
        let mut w = BitWriter::new();
        Everything::write_changes(&changes, RecordContext { unit: 1, tick: 10 }, &mut w).unwrap();
        assert_eq!(w.bit_len(), 12);
        assert_eq!(Everything::FIELD_BITS, 0xFFF << 8);
        assert_eq!(t.position_at(6), t.track.position_at(6));
        assert_eq!(t.velocity_cm_per_tick(), t.track.velocity.cm_per_tick());
    }

    /// Values that do not fit their field are refused, not wrapped.
    #[test]
    fn out_of_range_values_are_refused() {
        let mut w = BitWriter::new();
        w.write_varint(300, INT_CHUNK);
        let ctx = RecordContext { unit: 1, tick: 1 };
        let bytes = w.as_bytes().to_vec();
        assert_eq!(
            u8::read(ctx, &mut BitReader::new(&bytes)),
            Err(PayloadError::InvalidUnit)
        );
        assert_eq!(u16::read(ctx, &mut BitReader::new(&bytes)), Ok(300));
        assert_eq!(
            WorldPos::apply(&WorldPos::new(i64::MAX, 0), &PositionChange::Delta(1, 0)),
            None
        );
    }
}

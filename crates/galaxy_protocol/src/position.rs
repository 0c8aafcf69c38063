//! Fixed-point world positions and velocities.
//!
//! Authority and the wire use integer centimetres, so precision is the same
//! 1 cm everywhere in the world; floats exist only at the edges (input from a
//! simulation in metres, output for camera-relative rendering). Velocities
//! are integer sixteenths of a centimetre per tick, so both ends of a
//! connection dead-reckon a moving unit to the same centimetre.

use serde::{Deserialize, Serialize};

/// Centimetres per metre: the fixed-point scale of every [`WorldPos`].
pub const CM_PER_METRE: i64 = 100;

/// A point in the world in integer centimetres.
///
/// The usable world is the whole `i64` range on both axes: about
/// ±9.2 × 10^16 m (≈ ±9.7 light years) at 1 cm precision.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct WorldPos {
    /// East-west coordinate in centimetres.
    pub x: i64,
    /// North-south coordinate in centimetres.
    pub y: i64,
}

impl WorldPos {
    /// A position from centimetre coordinates.
    pub const fn new(x: i64, y: i64) -> Self {
        Self { x, y }
    }

    /// Converts metres to centimetres, rounding to nearest; values outside the
    /// world saturate at its edge and NaN becomes 0, so no float input can panic.
    pub fn from_metres(x: f64, y: f64) -> Self {
        Self {
            x: metres_to_cm(x),
            y: metres_to_cm(y),
        }
    }

    /// This position in metres (exact up to 2^53 cm, about 9 × 10^13 m).
    pub fn to_metres(self) -> (f64, f64) {
        (
            self.x as f64 / CM_PER_METRE as f64,
            self.y as f64 / CM_PER_METRE as f64,
        )
    }

    /// `self - origin` in metres, computed exactly in integers first, so a
    /// renderer can place units relative to its camera without jitter far from
    /// the world origin.
    pub fn metres_from(self, origin: WorldPos) -> (f64, f64) {
        let dx = self.x as i128 - origin.x as i128;
        let dy = self.y as i128 - origin.y as i128;
        (
            dx as f64 / CM_PER_METRE as f64,
            dy as f64 / CM_PER_METRE as f64,
        )
    }

    /// Adds a centimetre offset, or `None` if it would leave the world.
    pub fn checked_offset(self, dx: i64, dy: i64) -> Option<Self> {
        Some(Self {
            x: self.x.checked_add(dx)?,
            y: self.y.checked_add(dy)?,
        })
    }
}

/// Fixed-point scale of a [`Velocity`]: units of 1/16 cm per tick.
pub const VELOCITY_SCALE: i64 = 16;

/// A velocity in 1/[`VELOCITY_SCALE`] centimetres per tick (per axis).
///
/// Dead reckoning extrapolates a unit's position with it (see
/// [`Velocity::offset_after`]); sixteenths keep a straight path within a few
/// centimetres for several seconds, so a unit that does not turn costs
/// nothing on the wire.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct Velocity {
    /// East-west component, 1/16 cm per tick.
    pub x: i32,
    /// North-south component, 1/16 cm per tick.
    pub y: i32,
}

impl Velocity {
    /// At rest.
    pub const ZERO: Self = Self { x: 0, y: 0 };

    /// A velocity from fixed-point components.
    pub const fn new(x: i32, y: i32) -> Self {
        Self { x, y }
    }

    /// From centimetres per tick, rounded to the nearest sixteenth; values
    /// out of range saturate and NaN becomes 0, so no float input can panic.
    pub fn from_cm_per_tick(x: f64, y: f64) -> Self {
        let q = |v: f64| (v * VELOCITY_SCALE as f64).round() as i32;
        Self { x: q(x), y: q(y) }
    }

    /// This velocity in centimetres per tick.
    pub fn cm_per_tick(self) -> (f64, f64) {
        (
            f64::from(self.x) / VELOCITY_SCALE as f64,
            f64::from(self.y) / VELOCITY_SCALE as f64,
        )
    }

    /// True when both components are zero.
    pub fn is_zero(self) -> bool {
        self == Self::ZERO
    }

    /// The centimetre offset after `ticks` ticks (negative: before), rounded
    /// half away from zero per axis. Exact integer arithmetic, so sender and
    /// receiver extrapolate to the same centimetre.
    pub fn offset_after(self, ticks: i128) -> (i128, i128) {
        let round = |v: i32| {
            let n = i128::from(v) * ticks;
            let half = i128::from(VELOCITY_SCALE) / 2;
            let q = (n.abs() + half) / i128::from(VELOCITY_SCALE);
            if n < 0 { -q } else { q }
        };
        (round(self.x), round(self.y))
    }
}

fn metres_to_cm(m: f64) -> i64 {
    // `as` saturates at the i64 range and maps NaN to 0.
    (m * CM_PER_METRE as f64).round() as i64
}

/// An axis-aligned rectangle of the world, both corners inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WorldRect {
    /// Corner with the smallest coordinates (inclusive).
    pub min: WorldPos,
    /// Corner with the largest coordinates (inclusive).
    pub max: WorldPos,
}

impl WorldRect {
    /// The rectangle spanned by two corners in any order.
    pub fn from_corners(a: WorldPos, b: WorldPos) -> Self {
        Self {
            min: WorldPos::new(a.x.min(b.x), a.y.min(b.y)),
            max: WorldPos::new(a.x.max(b.x), a.y.max(b.y)),
        }
    }

    /// A rectangle around `center` reaching `half_extent_cm` to each side,
    /// clipped to the world.
    pub fn around(center: WorldPos, half_extent_cm: i64) -> Self {
        let h = half_extent_cm.max(0);
        Self {
            min: WorldPos::new(center.x.saturating_sub(h), center.y.saturating_sub(h)),
            max: WorldPos::new(center.x.saturating_add(h), center.y.saturating_add(h)),
        }
    }

    /// True when `min` is not past `max` on either axis.
    pub fn is_well_formed(&self) -> bool {
        self.min.x <= self.max.x && self.min.y <= self.max.y
    }

    /// True if `pos` lies inside (edges included).
    pub fn contains(&self, pos: WorldPos) -> bool {
        (self.min.x..=self.max.x).contains(&pos.x) && (self.min.y..=self.max.y).contains(&pos.y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metres_round_and_saturate() {
        assert_eq!(WorldPos::from_metres(1.234, -0.005), WorldPos::new(123, -1));
        assert_eq!(
            WorldPos::from_metres(f64::INFINITY, f64::NEG_INFINITY),
            WorldPos::new(i64::MAX, i64::MIN)
        );
        assert_eq!(
            WorldPos::from_metres(f64::NAN, 1e300),
            WorldPos::new(0, i64::MAX)
        );
    }

    #[test]
    fn relative_metres_are_exact_far_from_origin() {
        let cam = WorldPos::new(i64::MAX - 1_000, i64::MIN + 5);
        let unit = WorldPos::new(i64::MAX, i64::MIN);
        assert_eq!(unit.metres_from(cam), (10.0, -0.05));
        let (dx, _) = WorldPos::new(i64::MAX, 0).metres_from(WorldPos::new(i64::MIN, 0));
        assert!(dx > 1.8e17);
    }

    #[test]
    fn velocity_extrapolates_exactly_and_symmetrically() {
        let v = Velocity::from_cm_per_tick(2.5, -0.03);
        assert_eq!(v, Velocity::new(40, 0));
        assert_eq!(v.offset_after(3), (8, 0)); // 7.5 rounds away from zero
        assert_eq!(v.offset_after(-3), (-8, 0));
        let slow = Velocity::new(1, -1);
        assert_eq!(slow.offset_after(8), (1, -1));
        assert_eq!(slow.offset_after(7), (0, 0));
        assert_eq!(
            Velocity::from_cm_per_tick(f64::NAN, f64::INFINITY),
            Velocity::new(0, i32::MAX)
        );
        // The largest velocity over the longest time stays inside i128.
        let max = Velocity::new(i32::MIN, i32::MAX);
        let (x, y) = max.offset_after(i128::from(u64::MAX));
        assert!(x < 0 && y > 0);
    }

    #[test]
    fn rect_normalises_and_clips() {
        let r = WorldRect::from_corners(WorldPos::new(5, -5), WorldPos::new(-5, 5));
        assert!(
            r.is_well_formed()
                && r.contains(WorldPos::new(0, 0))
                && r.contains(WorldPos::new(5, 5))
        );
        let r = WorldRect::around(WorldPos::new(i64::MAX, i64::MIN), 10);
        assert_eq!(r.max, WorldPos::new(i64::MAX, i64::MIN + 10));
        assert_eq!(r.min, WorldPos::new(i64::MAX - 10, i64::MIN));
    }
}

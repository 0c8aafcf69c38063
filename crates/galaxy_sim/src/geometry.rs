//! Exact integer geometry on centimetre positions: squared distances,
//! boxes and walking velocities (distances and steps are the protocol's,
//! `galaxy_protocol::geometry`, so a client predicts with the same steps).

use galaxy_protocol::geometry::{MAX_STEP_CM, distance_cm};
use galaxy_protocol::{VELOCITY_SCALE, Velocity, WorldPos};

/// Squared distance in cm², exact (saturating at `u128::MAX` for world-spanning pairs).
pub fn distance_sq(a: WorldPos, b: WorldPos) -> u128 {
    squared_sum(a.x.abs_diff(b.x), a.y.abs_diff(b.y))
}

/// `dx² + dy²`, exact (saturating at `u128::MAX`).
pub(crate) fn squared_sum(dx: u64, dy: u64) -> u128 {
    // Gaps under ~21,000 km on each axis (every search and range check of
    // a tick): in u64, where the sum cannot overflow.
    const FAST: u64 = 1 << 31;
    if dx < FAST && dy < FAST {
        return u128::from(dx * dx + dy * dy);
    }
    let (dx, dy) = (u128::from(dx), u128::from(dy));
    (dx * dx).saturating_add(dy * dy)
}

/// Squared distance from `p` to the box with corners `min` and `max`
/// (zero inside it), exact.
pub(crate) fn box_distance_sq(p: WorldPos, min: WorldPos, max: WorldPos) -> u128 {
    let gap = |v: i64, lo: i64, hi: i64| {
        if v < lo {
            lo.abs_diff(v)
        } else if v > hi {
            v.abs_diff(hi)
        } else {
            0
        }
    };
    squared_sum(gap(p.x, min.x, max.x), gap(p.y, min.y, max.y))
}

/// True if `a` and `b` are at most `range` cm apart (no square root).
pub fn within(a: WorldPos, b: WorldPos, range: u64) -> bool {
    distance_sq(a, b) <= u128::from(range) * u128::from(range)
}

/// The velocity of a walk from `from` toward `to` at `max_cm` per tick, in
/// 1/16 cm per tick: the exact direction (not the rounded steps), or the
/// whole remaining way when it is shorter than one step.
pub fn velocity_towards(from: WorldPos, to: WorldPos, max_cm: u64) -> Velocity {
    let dist = distance_cm(from, to);
    let dx = to.x as i128 - from.x as i128;
    let dy = to.y as i128 - from.y as i128;
    let scale = i128::from(VELOCITY_SCALE);
    let clamp = |v: i128| v.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32;
    if dist <= max_cm {
        return Velocity::new(clamp(dx * scale), clamp(dy * scale));
    }
    let (d, m) = (dist as i128, max_cm.min(MAX_STEP_CM) as i128 * scale);
    let round = |v: i128| (2 * v * m + v.signum() * d) / (2 * d);
    Velocity::new(clamp(round(dx)), clamp(round(dy)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The u64 fast path and the u128 path give the exact square, near
        /// and across the whole coordinate range.
        #[test]
        fn squared_distances_are_exact(ax: i64, ay: i64, dx in -(1i64 << 32)..(1i64 << 32), dy in -(1i64 << 32)..(1i64 << 32), bx: i64, by: i64) {
            let exact = |a: WorldPos, b: WorldPos| {
                let dx = (i128::from(b.x) - i128::from(a.x)).unsigned_abs();
                let dy = (i128::from(b.y) - i128::from(a.y)).unsigned_abs();
                dx.saturating_mul(dx).saturating_add(dy.saturating_mul(dy))
            };
            let a = WorldPos::new(ax, ay);
            let near = WorldPos::new(ax.saturating_add(dx), ay.saturating_add(dy));
            prop_assert_eq!(distance_sq(a, near), exact(a, near));
            let b = WorldPos::new(bx, by);
            prop_assert_eq!(distance_sq(a, b), exact(a, b));
        }
    }
}

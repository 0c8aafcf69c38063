//! Exact integer geometry on centimetre positions.

use galaxy_protocol::{VELOCITY_SCALE, Velocity, WorldPos};

/// Integer square root of a `u128` (floor).
fn isqrt(n: u128) -> u128 {
    if n < 2 {
        return n;
    }
    let mut x = (n as f64).sqrt() as u128;
    // Correct the float estimate to the exact floor.
    while x * x > n {
        x -= 1;
    }
    while (x + 1) * (x + 1) <= n {
        x += 1;
    }
    x
}

/// Euclidean distance in centimetres (floor), exact for any two world positions.
pub fn distance_cm(a: WorldPos, b: WorldPos) -> u64 {
    let dx = (b.x as i128 - a.x as i128).unsigned_abs();
    let dy = (b.y as i128 - a.y as i128).unsigned_abs();
    // dx, dy < 2^64, so dx^2 + dy^2 < 2^129 could overflow: scale down if needed.
    match dx
        .checked_mul(dx)
        .and_then(|x| dy.checked_mul(dy).and_then(|y| x.checked_add(y)))
    {
        Some(sq) => isqrt(sq).min(u64::MAX as u128) as u64,
        None => {
            let (dx, dy) = (dx >> 2, dy >> 2);
            (isqrt(dx * dx + dy * dy) << 2).min(u64::MAX as u128) as u64
        }
    }
}

/// Longest single step, 10,000 km: keeps the step arithmetic inside `i128`.
const MAX_STEP_CM: u64 = 1 << 40;

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

/// Moves `from` toward `to` by at most `max_cm` (capped at 10,000 km); never
/// overshoots and never moves farther than `max_cm`, so a unit cannot exceed its speed.
///
/// Each step is rounded to the nearest centimetre (truncated instead when
/// rounding would exceed `max_cm`), so a walk keeps its nominal speed on
/// average and a dead-reckoned track ([`velocity_towards`]) follows it.
pub fn step_towards(from: WorldPos, to: WorldPos, max_cm: u64) -> WorldPos {
    let dist = distance_cm(from, to);
    if dist <= max_cm {
        return to;
    }
    let max_cm = max_cm.min(MAX_STEP_CM);
    let dx = to.x as i128 - from.x as i128;
    let dy = to.y as i128 - from.y as i128;
    let (d, m) = (dist as i128, max_cm as i128);
    let at = |sx: i128, sy: i128| {
        WorldPos::new((from.x as i128 + sx) as i64, (from.y as i128 + sy) as i64)
    };
    // Nearest: (2 v m + sign(v) d) / 2d, rounding half away from zero.
    let round = |v: i128| (2 * v * m + v.signum() * d) / (2 * d);
    let rounded = at(round(dx), round(dy));
    if distance_cm(from, rounded) <= max_cm {
        return rounded;
    }
    // Truncating division rounds toward `from`, so the step is <= max_cm.
    at(dx * m / d, dy * m / d)
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

    #[test]
    fn distances() {
        assert_eq!(distance_cm(WorldPos::new(0, 0), WorldPos::new(3, 4)), 5);
        assert_eq!(distance_cm(WorldPos::new(-3, 0), WorldPos::new(0, -4)), 5);
        let far = distance_cm(
            WorldPos::new(i64::MIN, i64::MIN),
            WorldPos::new(i64::MAX, i64::MAX),
        );
        assert!(far > u64::MAX / 2);
    }

    proptest! {
        #[test]
        fn steps_never_exceed_speed(ax in -1_000_000_000i64..1_000_000_000, ay in -1_000_000_000i64..1_000_000_000,
                                    bx in -1_000_000_000i64..1_000_000_000, by in -1_000_000_000i64..1_000_000_000,
                                    speed in 0u64..100_000) {
            let (a, b) = (WorldPos::new(ax, ay), WorldPos::new(bx, by));
            let c = step_towards(a, b, speed);
            prop_assert!(distance_cm(a, c) <= speed);
            prop_assert!(distance_cm(c, b) <= distance_cm(a, b));
            if distance_cm(a, b) <= speed { prop_assert_eq!(c, b); }
        }

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

        #[test]
        fn extreme_steps_do_not_panic(ax: i64, ay: i64, bx: i64, by: i64, speed: u64) {
            let c = step_towards(WorldPos::new(ax, ay), WorldPos::new(bx, by), speed);
            let _ = distance_cm(c, WorldPos::new(bx, by));
        }
    }
}

//! Exact integer walking geometry on centimetre positions, shared by a
//! simulation (the authority's steps) and a client (predicting its own
//! units with the same steps).

use crate::position::WorldPos;

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
pub const MAX_STEP_CM: u64 = 1 << 40;

/// Moves `from` toward `to` by at most `max_cm` (capped at 10,000 km); never
/// overshoots and never moves farther than `max_cm`, so a unit cannot exceed its speed.
///
/// Each step is rounded to the nearest centimetre (truncated instead when
/// rounding would exceed `max_cm`), so a walk keeps its nominal speed on
/// average and a dead-reckoned track (`galaxy_sim::velocity_towards`) follows it.
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

        #[test]
        fn extreme_steps_do_not_panic(ax: i64, ay: i64, bx: i64, by: i64, speed: u64) {
            let c = step_towards(WorldPos::new(ax, ay), WorldPos::new(bx, by), speed);
            let _ = distance_cm(c, WorldPos::new(bx, by));
        }
    }
}

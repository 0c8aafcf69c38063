//! Rendering remote units smoothly: an interpolation buffer per unit, played
//! back about two updates behind the newest server state, and a clock that
//! maps local time to server time.
//!
//! Each sample is a dead-reckoning track (a position at the sample's server
//! time and a velocity). Between two samples the drawn position blends the
//! two tracks, so a correction glides in; past the newest one a moving
//! track is followed as long as it lasts (the server sends a new one before
//! the unit leaves it by more than a few centimetres). A sample without a
//! velocity (a unit the server does not dead-reckon, such as a ghost from
//! another server) is extrapolated from the last two samples for a bounded
//! time only.

use std::collections::VecDeque;

use galaxy_protocol::WorldPos;

/// One sample: server time, position then, velocity in cm per second.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Sample {
    time: f64,
    pos: WorldPos,
    velocity: (f64, f64),
}

impl Sample {
    fn at(&self, t: f64) -> (f64, f64) {
        let dt = t - self.time;
        (
            self.pos.x as f64 + self.velocity.0 * dt,
            self.pos.y as f64 + self.velocity.1 * dt,
        )
    }

    fn moving(&self) -> bool {
        self.velocity != (0.0, 0.0)
    }
}

/// Tracks of one unit at server times, oldest first.
#[derive(Clone, Debug, Default)]
pub struct InterpolationBuffer {
    samples: VecDeque<Sample>,
}

/// Samples kept per unit (a few seconds at 20 Hz).
pub const BUFFER_SAMPLES: usize = 64;

impl InterpolationBuffer {
    /// Records the unit at `server_time` seconds at `pos`, moving at
    /// `velocity` cm per second ((0, 0) for a unit at rest or not
    /// dead-reckoned); older-than-newest samples (reordered updates) slot
    /// in by time, duplicates are ignored.
    pub fn push(&mut self, server_time: f64, pos: WorldPos, velocity: (f64, f64)) {
        // Updates nearly always arrive in order: then it goes at the back
        // (no search; a client does this for every unit in every update).
        let i = match self.samples.back() {
            Some(last) if last.time >= server_time => {
                self.samples.partition_point(|s| s.time < server_time)
            }
            _ => self.samples.len(),
        };
        if self.samples.get(i).is_some_and(|s| s.time == server_time) {
            return;
        }
        let velocity = if velocity.0.is_finite() && velocity.1.is_finite() {
            velocity
        } else {
            (0.0, 0.0)
        };
        self.samples.insert(
            i,
            Sample {
                time: server_time,
                pos,
                velocity,
            },
        );
        while self.samples.len() > BUFFER_SAMPLES {
            self.samples.pop_front();
        }
    }

    /// The position to draw at `render_time`, in centimetres as floats (so
    /// motion is smooth below 1 cm): between two samples, their tracks
    /// blended; before the first, held there; past the newest, along its
    /// track if it moves, else extrapolated from the last two samples for at
    /// most `max_extrapolation` seconds.
    pub fn sample(&self, render_time: f64, max_extrapolation: f64) -> Option<(f64, f64)> {
        let last = *self.samples.back()?;
        let f = |p: WorldPos| (p.x as f64, p.y as f64);
        if render_time >= last.time {
            if last.moving() {
                return Some(last.at(render_time));
            }
            let Some(prev) = self.samples.iter().rev().nth(1) else {
                return Some(f(last.pos));
            };
            let dt = (render_time - last.time).min(max_extrapolation.max(0.0));
            let (a, b) = (f(prev.pos), f(last.pos));
            let span = (last.time - prev.time).max(1e-9);
            return Some((b.0 + (b.0 - a.0) / span * dt, b.1 + (b.1 - a.1) / span * dt));
        }
        // Usually the render time is between the last two samples.
        let n = self.samples.len();
        let i = if n >= 2 && self.samples[n - 2].time <= render_time {
            n - 1
        } else {
            self.samples.partition_point(|s| s.time <= render_time)
        };
        if i == 0 {
            return Some(f(self.samples[0].pos));
        }
        let (s0, s1) = (self.samples[i - 1], self.samples[i]);
        let k = (render_time - s0.time) / (s1.time - s0.time).max(1e-9);
        // Where each track puts the unit now (a still sample: where it stood).
        let a = s0.at(render_time);
        let b = if s1.moving() {
            s1.at(render_time)
        } else {
            f(s1.pos)
        };
        Some((a.0 + (b.0 - a.0) * k, a.1 + (b.1 - a.1) * k))
    }
}

/// Estimates server time from local time, from the timestamps of updates.
///
/// Each update says "this was the world at server time T"; it arrived at
/// local time L, so `T - L` is the offset plus the (unknown, varying)
/// delay. Keeping the largest offset seen (the least-delayed packet) and
/// letting it decay slowly gives a steady clock that follows drift.
#[derive(Clone, Debug, Default)]
pub struct ServerClock {
    offset: Option<f64>,
}

impl ServerClock {
    /// How fast the estimate may fall (seconds per second) to follow drift.
    const DECAY: f64 = 0.01;

    /// An update stamped `server_time` arrived at `local_now`.
    pub fn observe(&mut self, local_now: f64, server_time: f64, local_dt: f64) {
        let sample = server_time - local_now;
        self.offset = Some(match self.offset {
            None => sample,
            Some(o) => (o - Self::DECAY * local_dt.max(0.0)).max(sample),
        });
    }

    /// Server time now, if any update was seen.
    pub fn server_now(&self, local_now: f64) -> Option<f64> {
        self.offset.map(|o| local_now + o)
    }

    /// The time to render remote units at: `delay` seconds behind server time
    /// (about two update intervals, so a lost update still has a sample after it).
    pub fn render_time(&self, local_now: f64, delay: f64) -> Option<f64> {
        self.server_now(local_now).map(|t| t - delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use galaxy_protocol::link_model::SplitMix64;

    fn walking(t: f64) -> WorldPos {
        // 5 m/s east, curving north.
        WorldPos::new((t * 500.0).round() as i64, (t * t * 40.0).round() as i64)
    }

    #[test]
    fn interpolates_between_and_holds_before() {
        let mut b = InterpolationBuffer::default();
        let still = (0.0, 0.0);
        b.push(1.0, WorldPos::new(0, 0), still);
        b.push(2.0, WorldPos::new(100, -50), still);
        assert_eq!(b.sample(1.5, 0.0), Some((50.0, -25.0)));
        assert_eq!(b.sample(0.5, 0.0), Some((0.0, 0.0)));
        // Reordered and duplicated samples land in place.
        b.push(1.5, WorldPos::new(40, 0), still);
        b.push(1.5, WorldPos::new(999, 999), still);
        assert_eq!(b.sample(1.25, 0.0), Some((20.0, 0.0)));
    }

    /// Samples pushed in any order, with duplicates, end up sorted by time
    /// and once each, as the in-order fast path and the search agree.
    #[test]
    fn pushes_in_any_order_keep_samples_sorted() {
        let mut rng = SplitMix64::new(11);
        let mut b = InterpolationBuffer::default();
        let mut times = Vec::new();
        for i in 0..400u64 {
            // Mostly in order, sometimes late or repeated.
            let t = match rng.below(10) {
                0 => i.saturating_sub(rng.below(8)),
                1 => i.saturating_sub(1),
                _ => i,
            } as f64
                * 0.05;
            times.push(t);
            b.push(t, walking(t), (100.0, 0.0));
        }
        let kept: Vec<f64> = b.samples.iter().map(|s| s.time).collect();
        let mut want = times;
        want.sort_by(f64::total_cmp);
        want.dedup();
        let want = want[want.len() - BUFFER_SAMPLES..].to_vec();
        assert_eq!(kept, want);
        for s in &b.samples {
            assert_eq!(s.pos, walking(s.time));
        }
    }

    #[test]
    fn extrapolation_is_bounded() {
        let mut b = InterpolationBuffer::default();
        b.push(1.0, WorldPos::new(0, 0), (0.0, 0.0));
        b.push(1.1, WorldPos::new(50, 0), (0.0, 0.0));
        // 5 m/s: 0.1 s later -> +50 cm, but never more than 0.25 s ahead.
        let close =
            |p: Option<(f64, f64)>, x: f64| p.is_some_and(|p| (p.0 - x).abs() < 1e-6 && p.1 == 0.0);
        assert!(close(b.sample(1.2, 0.25), 100.0));
        assert!(close(b.sample(5.0, 0.25), 175.0));
    }

    #[test]
    fn tracks_are_followed_and_corrections_glide_in() {
        let mut b = InterpolationBuffer::default();
        // 5 m/s east from the origin at t = 1.
        b.push(1.0, WorldPos::new(0, 0), (500.0, 0.0));
        let close = |p: Option<(f64, f64)>, q: (f64, f64)| {
            p.is_some_and(|p| (p.0 - q.0).abs() < 1e-6 && (p.1 - q.1).abs() < 1e-6)
        };
        // A track is followed for as long as it lasts (no update needed).
        assert!(close(b.sample(11.0, 0.25), (5000.0, 0.0)));
        // A correction at t = 2: the unit is 4 cm north of its track.
        b.push(2.0, WorldPos::new(500, 4), (500.0, 0.0));
        // Half way between the samples, half of the correction.
        assert!(close(b.sample(1.5, 0.25), (250.0, 2.0)));
        assert!(close(b.sample(3.0, 0.25), (1000.0, 4.0)));
    }

    /// At 20 Hz with 10 % of updates lost, a unit rendered two updates behind
    /// moves every frame by close to its true per-frame distance: no snapping.
    #[test]
    fn no_snapping_at_ten_percent_loss() {
        let mut rng = SplitMix64::new(5);
        let mut b = InterpolationBuffer::default();
        let mut clock = ServerClock::default();
        let frame = 1.0 / 60.0;
        let mut last: Option<(f64, f64)> = None;
        let mut worst: f64 = 0.0;
        let mut next_update = 0.0;
        let mut local = 0.0;
        while local < 20.0 {
            if local >= next_update {
                let server_t = next_update;
                next_update += 0.05;
                if !rng.chance(0.10) {
                    // Arrives after 40-80 ms of network delay.
                    let delay = 0.04 + rng.next_f64() * 0.04;
                    b.push(server_t, walking(server_t), (0.0, 0.0));
                    clock.observe(local + delay, server_t, frame);
                }
            }
            local += frame;
            if let Some(t) = clock.render_time(local, 0.1)
                && let Some(p) = b.sample(t, 0.25)
            {
                if let Some(q) = last {
                    let step = ((p.0 - q.0).powi(2) + (p.1 - q.1).powi(2)).sqrt();
                    worst = worst.max(step);
                }
                last = Some(p);
            }
        }
        // True speed is at most ~21 m/s at t = 20 s: ~35 cm per frame. Allow 2x for clock noise.
        assert!(worst < 70.0, "a frame jumped {worst:.1} cm");
    }
}

//! What a client draws, as opposed to what it last heard (the design's
//! latency section): every unit is drawn from an [`InterpolationBuffer`]
//! about two updates in the past, except the player's own units under a
//! fresh move order, which are predicted in the present with the
//! simulation's own stepping and reconciled with the server by a
//! [`Reconciler`] (smoothing, never snapping). Between updates a moving
//! unit is extrapolated for a bounded time only.
//!
//! The resource is fed by the client's receive system (each applied
//! `UnitUpdate`) and advanced once per frame; renderers read
//! [`Smoothing::drawn`]. It survives a reconnect: tracks stay (and own
//! units keep walking) until the resynchronised state replaces them, and
//! tracks the server does not send again are dropped after a grace period.

use std::collections::HashMap;

use bevy::prelude::{Res, ResMut, Resource, SystemSet, Time};
use bevy::time::Real;
use galaxy_protocol::{DeltaReceiver, QuantizedUnit, UnitEvent, UnitId, UnitState, WorldPos};
use galaxy_sim::{kind_stats, step_towards};

use crate::interpolation::{InterpolationBuffer, ServerClock};
use crate::prediction::Reconciler;

/// The system that advances [`Smoothing`] each frame (in `Update`). Order
/// input that issues predicted orders before it and drawing after it.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SmoothingSet;

/// Advances every unit to this frame's local time.
pub(crate) fn advance_smoothing(time: Res<Time<Real>>, mut smoothing: ResMut<Smoothing>) {
    smoothing.advance(time.elapsed_secs_f64(), time.delta_secs_f64());
}

/// Tuning of interpolation and prediction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SmoothingConfig {
    /// Seconds of one server tick (1 / the server's update rate).
    pub tick_secs: f64,
    /// How far in the past remote units are drawn (about two updates).
    pub delay_secs: f64,
    /// Longest a moving unit is extrapolated past its newest sample.
    pub max_extrapolation_secs: f64,
    /// How long after a resync a unit the server did not send again is kept.
    pub resync_grace_secs: f64,
    /// Longest a prediction waits for the server to confirm the order
    /// before it gives way to the server's state.
    pub confirm_timeout_secs: f64,
    /// Whether units are tracked at all. A client that never draws (a bot,
    /// a load-test player) turns this off: updates are still applied and
    /// acknowledged, but no interpolation buffers are kept or advanced.
    pub enabled: bool,
}

impl Default for SmoothingConfig {
    fn default() -> Self {
        Self {
            tick_secs: 1.0 / 20.0,
            delay_secs: 0.1,
            max_extrapolation_secs: 0.25,
            resync_grace_secs: 2.0,
            confirm_timeout_secs: 1.0,
            enabled: true,
        }
    }
}

/// A unit as drawn this frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DrawnUnit {
    /// Where to draw it, in world centimetres (exact to well past 10^10 m).
    pub position: (f64, f64),
    /// Its newest authoritative state (owner, kind, health, ...).
    pub state: QuantizedUnit,
    /// Whether it is being predicted locally right now.
    pub predicted: bool,
}

/// A local order being predicted.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Prediction {
    to: WorldPos,
    /// Centimetres per second.
    speed: f64,
    /// Present-time simulated position.
    at: (f64, f64),
    /// Local time the order was given.
    issued: f64,
    /// Server samples at or after this server time reflect the order.
    effective_from: f64,
    confirmed: bool,
}

#[derive(Clone, Debug)]
struct Track {
    buffer: InterpolationBuffer,
    latest: QuantizedUnit,
    latest_time: f64,
    /// Server tick of `latest`.
    latest_tick: u64,
    prediction: Option<Prediction>,
    reconciler: Reconciler,
    /// Undisturbed position (before the reconciler's offset) last frame.
    base: (f64, f64),
    /// Local time of the last update that carried it.
    confirmed_at: f64,
}

/// Interpolation and prediction state of every unit the client sees.
#[derive(Resource, Debug, Default)]
pub struct Smoothing {
    /// Tuning.
    pub config: SmoothingConfig,
    clock: ServerClock,
    last_observed: Option<f64>,
    tracks: HashMap<UnitId, Track>,
    /// Local time the receiver was reset and, once updates flow again, the
    /// local time of the first one.
    resync: Option<(f64, Option<f64>)>,
    /// Round-trip time estimate in seconds (from the transport).
    rtt: f64,
}

fn xy(p: WorldPos) -> (f64, f64) {
    (p.x as f64, p.y as f64)
}

fn is_moving(state: UnitState) -> bool {
    state == UnitState::MOVING || state == UnitState::ATTACK_MOVING
}

impl Smoothing {
    /// A smoother with the given tuning.
    pub fn new(config: SmoothingConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// Records the transport's round-trip estimate (seconds).
    pub fn set_rtt(&mut self, rtt: f64) {
        self.rtt = rtt.clamp(0.0, 5.0);
    }

    /// Number of units tracked (drawn).
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    /// Whether nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// Takes what `receiver` changed when it applied an update stamped with
    /// server tick `tick`, received at local time `now`.
    pub fn on_update(&mut self, now: f64, tick: u64, receiver: &mut DeltaReceiver) {
        let server_time = tick as f64 * self.config.tick_secs;
        let dt = self.last_observed.map_or(0.0, |t| now - t);
        self.last_observed = Some(now);
        self.clock.observe(now, server_time, dt);
        if let Some((_, first @ None)) = &mut self.resync {
            *first = Some(now);
        }
        if !self.config.enabled {
            // Nothing is drawn: the events only need to go.
            drop(receiver.drain_events());
            return;
        }
        let events: Vec<UnitEvent> = receiver.drain_events().collect();
        for event in events {
            match event {
                UnitEvent::Spawned(id) | UnitEvent::Changed(id) => {
                    if let Some(state) = receiver.unit(id).copied() {
                        self.observe(id, state, tick, now);
                    }
                }
                UnitEvent::Despawned(id) => {
                    self.tracks.remove(&id);
                }
            }
        }
    }

    /// One authoritative state of unit `id` at server tick `tick`.
    fn observe(&mut self, id: UnitId, state: QuantizedUnit, tick: u64, now: f64) {
        let tick_secs = self.config.tick_secs;
        let server_time = tick as f64 * tick_secs;
        let server_now = self.clock.server_now(now).unwrap_or(server_time);
        let one_way = self.rtt / 2.0;
        let position = state.position_at(tick);
        let track = self.tracks.entry(id).or_insert_with(|| Track {
            buffer: InterpolationBuffer::default(),
            latest: state,
            latest_time: server_time,
            latest_tick: tick,
            prediction: None,
            reconciler: Reconciler::default(),
            base: xy(position),
            confirmed_at: now,
        });
        let (vx, vy) = state.velocity().cm_per_tick();
        track
            .buffer
            .push(server_time, position, (vx / tick_secs, vy / tick_secs));
        if server_time >= track.latest_time {
            track.latest = state;
            track.latest_time = server_time;
            track.latest_tick = tick;
        }
        track.confirmed_at = now;
        let Some(p) = track.prediction.as_mut() else {
            return;
        };
        if server_time < p.effective_from {
            return; // the server had not seen the order yet
        }
        p.confirmed = true;
        let arrived = position == p.to;
        if !is_moving(state.state()) || arrived {
            // The server says the unit stopped (arrived, or found a fight):
            // hand it back to interpolation; `advance` smooths the switch.
            track.prediction = None;
            return;
        }
        // Where the server's unit is now: its sample walked on by the time
        // since it was taken (plus the trip here).
        let ahead = (server_now - server_time).max(0.0) + one_way;
        let now_pos = step_towards(position, p.to, (p.speed * ahead) as u64);
        // The jump from the old prediction is smoothed in `advance`.
        p.at = xy(now_pos);
    }

    /// Predicts the player's own `units` obeying a move to `to` from this
    /// very frame. Units not tracked are ignored.
    pub fn predict_move(&mut self, units: &[UnitId], to: WorldPos, now: f64) {
        let server_now = self.clock.server_now(now).unwrap_or(0.0);
        let effective_from = server_now + self.rtt + self.config.tick_secs;
        for id in units {
            let Some(track) = self.tracks.get_mut(id) else {
                continue;
            };
            let speed =
                kind_stats(track.latest.kind()).speed_cm_per_tick as f64 / self.config.tick_secs;
            track.prediction = Some(Prediction {
                to,
                speed,
                at: track.base,
                issued: now,
                effective_from,
                confirmed: false,
            });
        }
    }

    /// Stops predicting `units` (e.g. after a stop order): they are drawn
    /// from the server's state again, smoothly.
    pub fn cancel_prediction(&mut self, units: &[UnitId]) {
        for id in units {
            if let Some(t) = self.tracks.get_mut(id) {
                t.prediction = None;
            }
        }
    }

    /// The client's receiver was reset (reconnect): keep drawing what we
    /// have until the server's full state replaces it.
    pub fn resync(&mut self, now: f64) {
        self.resync = Some((now, None));
    }

    /// Moves everything to local time `now` (`dt` since the last frame).
    pub fn advance(&mut self, now: f64, dt: f64) {
        if let Some((reset_at, Some(first))) = self.resync
            && now - first >= self.config.resync_grace_secs
        {
            self.tracks.retain(|_, t| t.confirmed_at >= reset_at);
            self.resync = None;
        }
        let render_time = self.clock.render_time(now, self.config.delay_secs);
        let cfg = self.config;
        for t in self.tracks.values_mut() {
            if let Some(p) = t.prediction.as_mut() {
                let timed_out = !p.confirmed && now - p.issued > cfg.confirm_timeout_secs;
                if timed_out {
                    t.prediction = None;
                } else {
                    let step = (p.speed * dt.max(0.0)).round() as u64;
                    let from = WorldPos::new(p.at.0.round() as i64, p.at.1.round() as i64);
                    p.at = xy(step_towards(from, p.to, step));
                }
            }
            let base = match (&t.prediction, render_time) {
                (Some(p), _) => p.at,
                (None, Some(rt)) => {
                    let extrapolate = if is_moving(t.latest.state()) {
                        cfg.max_extrapolation_secs
                    } else {
                        0.0
                    };
                    t.buffer
                        .sample(rt, extrapolate)
                        .unwrap_or(xy(t.latest.position_at(t.latest_tick)))
                }
                (None, None) => xy(t.latest.position_at(t.latest_tick)),
            };
            // A switch between predicted and interpolated drawing (or a
            // jump of the interpolated path) is smoothed like a correction.
            let moved = (base.0 - t.base.0).hypot(base.1 - t.base.1);
            let expected = kind_stats(t.latest.kind()).speed_cm_per_tick as f64 / cfg.tick_secs
                * dt.max(0.0)
                * 2.0
                + 1.0;
            if moved > expected {
                t.reconciler.correct(t.base, base);
            }
            t.base = base;
            t.reconciler.advance(dt);
        }
    }

    /// Every tracked unit as drawn this frame.
    pub fn drawn(&self) -> impl Iterator<Item = (UnitId, DrawnUnit)> + '_ {
        self.tracks.iter().map(|(&id, t)| {
            (
                id,
                DrawnUnit {
                    position: t.reconciler.drawn(t.base),
                    state: t.latest,
                    predicted: t.prediction.is_some(),
                },
            )
        })
    }

    /// One unit as drawn this frame.
    pub fn drawn_unit(&self, id: UnitId) -> Option<DrawnUnit> {
        self.tracks.get(&id).map(|t| DrawnUnit {
            position: t.reconciler.drawn(t.base),
            state: t.latest,
            predicted: t.prediction.is_some(),
        })
    }
}

#[cfg(test)]
#[path = "smoothing_tests.rs"]
mod tests;

//! What a client draws, as opposed to what it last heard (the design's
//! latency section), for games that opt in with [`SmoothingPlugin`]: every
//! replicated unit gets a [`DrawnPosition`], drawn from an
//! [`InterpolationBuffer`] about two updates in the past, except the
//! player's own units under a fresh move order, which are predicted in the
//! present with the protocol's own stepping and reconciled with the server
//! by a [`Reconciler`] (smoothing, never snapping). Between updates a
//! moving unit is extrapolated for a bounded time only.
//!
//! The [`Smoothing`] resource is fed by the client's receive system (each
//! applied `UnitUpdate`) and advanced once per frame in [`SmoothingSet`],
//! which writes each unit's [`DrawnPosition`]. It survives a reconnect:
//! tracks stay (and own units keep walking) until the resynchronised state
//! replaces them.

use std::collections::HashMap;
use std::marker::PhantomData;

use bevy::prelude::*;
use galaxy_protocol::{UnitId, UnitSnapshot, WorldPos, step_towards};

use crate::client::ClientUnits;
use crate::interpolation::{InterpolationBuffer, ServerClock};
use crate::prediction::Reconciler;
use crate::replication::TickRate;

/// Opts a client into interpolation and prediction of its units of
/// snapshot type `S`: adds [`Smoothing<S>`] and the system that writes
/// every unit's [`DrawnPosition`] each frame (in [`SmoothingSet`]).
pub struct SmoothingPlugin<S: UnitSnapshot> {
    /// Tuning; `tick_secs` is taken from the [`TickRate`].
    pub config: SmoothingConfig,
    _snapshot: PhantomData<S>,
}

impl<S: UnitSnapshot> Default for SmoothingPlugin<S> {
    fn default() -> Self {
        Self {
            config: SmoothingConfig::default(),
            _snapshot: PhantomData,
        }
    }
}

impl<S: UnitSnapshot> Plugin for SmoothingPlugin<S> {
    fn build(&self, app: &mut App) {
        crate::init_common(app);
        let rate = *app.world().resource::<TickRate>();
        app.insert_resource(Smoothing::<S>::new(SmoothingConfig {
            tick_secs: rate.tick_secs(),
            ..self.config
        }))
        .add_systems(Update, advance_smoothing::<S>.in_set(SmoothingSet));
    }
}

/// The system that advances [`Smoothing`] each frame (in `Update`) and
/// writes [`DrawnPosition`]s. Order input that issues predicted orders
/// before it and drawing after it.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SmoothingSet;

/// Where a unit is drawn this frame (written by [`SmoothingPlugin`]).
#[derive(Component, Clone, Copy, Debug, PartialEq)]
pub struct DrawnPosition {
    /// World centimetres (exact to well past 10^10 m).
    pub position: (f64, f64),
    /// Whether it is being predicted locally right now.
    pub predicted: bool,
}

/// Advances every unit to this frame's local time and writes its
/// [`DrawnPosition`].
fn advance_smoothing<S: UnitSnapshot>(
    time: Res<Time<Real>>,
    mut smoothing: ResMut<Smoothing<S>>,
    units: Res<ClientUnits>,
    mut drawn: Query<&mut DrawnPosition>,
    mut commands: Commands,
) {
    smoothing.advance(time.elapsed_secs_f64(), time.delta_secs_f64());
    for (id, d) in smoothing.drawn() {
        let Some(e) = units.get(id) else { continue };
        match drawn.get_mut(e) {
            Ok(mut at) => {
                at.set_if_neq(d);
            }
            Err(_) => {
                commands.entity(e).try_insert(d);
            }
        }
    }
}

/// Tuning of interpolation and prediction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SmoothingConfig {
    /// Seconds of one server tick (1 / the [`TickRate`]).
    pub tick_secs: f64,
    /// How far in the past remote units are drawn (about two updates).
    pub delay_secs: f64,
    /// Longest a moving unit is extrapolated past its newest sample.
    pub max_extrapolation_secs: f64,
    /// Longest a prediction waits for the server to confirm the order
    /// before it gives way to the server's state.
    pub confirm_timeout_secs: f64,
}

impl Default for SmoothingConfig {
    fn default() -> Self {
        Self {
            tick_secs: 1.0 / 20.0,
            delay_secs: 0.1,
            max_extrapolation_secs: 0.25,
            confirm_timeout_secs: 1.0,
        }
    }
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
struct Track<S> {
    buffer: InterpolationBuffer,
    latest: S,
    latest_time: f64,
    /// Server tick of `latest`.
    latest_tick: u64,
    /// Fastest it was seen moving (cm per second): its speed, for telling
    /// a jump of its drawing from its own motion.
    top_speed: f64,
    prediction: Option<Prediction>,
    reconciler: Reconciler,
    /// Undisturbed position (before the reconciler's offset) last frame.
    base: (f64, f64),
}

/// Interpolation and prediction state of every unit the client sees.
#[derive(Resource, Debug)]
pub struct Smoothing<S: UnitSnapshot> {
    /// Tuning.
    pub config: SmoothingConfig,
    clock: ServerClock,
    last_observed: Option<f64>,
    tracks: HashMap<UnitId, Track<S>>,
    /// Round-trip time estimate in seconds (from the transport).
    rtt: f64,
}

fn xy(p: WorldPos) -> (f64, f64) {
    (p.x as f64, p.y as f64)
}

/// Centimetres per second of a state's velocity.
fn speed_of<S: UnitSnapshot>(state: &S, tick_secs: f64) -> f64 {
    let (vx, vy) = state.velocity_cm_per_tick();
    vx.hypot(vy) / tick_secs
}

fn is_moving<S: UnitSnapshot>(state: &S) -> bool {
    state.velocity_cm_per_tick() != (0.0, 0.0)
}

impl<S: UnitSnapshot> Smoothing<S> {
    /// A smoother with the given tuning.
    pub fn new(config: SmoothingConfig) -> Self {
        Self {
            config,
            clock: ServerClock::default(),
            last_observed: None,
            tracks: HashMap::new(),
            rtt: 0.0,
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

    /// An update stamped with server tick `tick` arrived at local time `now`.
    pub fn observe_clock(&mut self, now: f64, tick: u64) {
        let server_time = tick as f64 * self.config.tick_secs;
        let dt = self.last_observed.map_or(0.0, |t| now - t);
        self.last_observed = Some(now);
        self.clock.observe(now, server_time, dt);
    }

    /// One authoritative state of unit `id` at server tick `tick`.
    pub fn observe(&mut self, id: UnitId, state: S, tick: u64, now: f64) {
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
            top_speed: 0.0,
            prediction: None,
            reconciler: Reconciler::default(),
            base: xy(position),
        });
        let (vx, vy) = state.velocity_cm_per_tick();
        track
            .buffer
            .push(server_time, position, (vx / tick_secs, vy / tick_secs));
        track.top_speed = track.top_speed.max(speed_of(&state, tick_secs));
        if server_time >= track.latest_time {
            track.latest = state;
            track.latest_time = server_time;
            track.latest_tick = tick;
        }
        let Some(p) = track.prediction.as_mut() else {
            return;
        };
        if server_time < p.effective_from {
            return; // the server had not seen the order yet
        }
        p.confirmed = true;
        let arrived = position == p.to;
        if !is_moving(&state) || arrived {
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

    /// Stops tracking unit `id` (it left the view or died).
    pub fn forget(&mut self, id: UnitId) {
        self.tracks.remove(&id);
    }

    /// Predicts the player's own units obeying a move to `to` from this
    /// very frame, each `(unit, speed in cm per tick)` at its own speed.
    /// Units not tracked are ignored.
    pub fn predict_move(&mut self, units: &[(UnitId, f64)], to: WorldPos, now: f64) {
        let server_now = self.clock.server_now(now).unwrap_or(0.0);
        let effective_from = server_now + self.rtt + self.config.tick_secs;
        for &(id, speed_cm_per_tick) in units {
            let Some(track) = self.tracks.get_mut(&id) else {
                continue;
            };
            track.prediction = Some(Prediction {
                to,
                speed: speed_cm_per_tick / self.config.tick_secs,
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

    /// Moves everything to local time `now` (`dt` since the last frame).
    pub fn advance(&mut self, now: f64, dt: f64) {
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
                    let extrapolate = if is_moving(&t.latest) {
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
            let speed = t.top_speed.max(t.prediction.map_or(0.0, |p| p.speed));
            let expected = speed * dt.max(0.0) * 2.0 + 1.0;
            if moved > expected {
                t.reconciler.correct(t.base, base);
            }
            t.base = base;
            t.reconciler.advance(dt);
        }
    }

    /// Every tracked unit as drawn this frame.
    pub fn drawn(&self) -> impl Iterator<Item = (UnitId, DrawnPosition)> + '_ {
        self.tracks.iter().map(|(&id, t)| (id, Self::drawn_of(t)))
    }

    /// One unit as drawn this frame.
    pub fn drawn_unit(&self, id: UnitId) -> Option<DrawnPosition> {
        self.tracks.get(&id).map(Self::drawn_of)
    }

    fn drawn_of(t: &Track<S>) -> DrawnPosition {
        DrawnPosition {
            position: t.reconciler.drawn(t.base),
            predicted: t.prediction.is_some(),
        }
    }
}

#[cfg(test)]
#[path = "smoothing_tests.rs"]
mod tests;

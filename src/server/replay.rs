//! The server side of `galaxy_rts replay FILE`: a server whose world is a
//! recording's, stepped by a [`ReplayPlayer`] at the viewer's speed, with
//! pause and seek. It replicates like any server (the viewer is an
//! ordinary client that may look anywhere); its network tick counts
//! frames, so a seek backwards is, to the client, just units that moved.
//! Orders are refused and counted: a spectator's by `galaxy_net`
//! (`spectator_order`), any other here (`replay_order`).
//!
//! `replay FILE --verify` ([`verify`]) plays a file to its end without a
//! window, checking every recorded hash.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use bevy::prelude::*;
use galaxy_net::{NetSet, NetworkStats, OutgoingEvents, ReceivedCommands, ServerAuth, ServerTick};
use galaxy_sim::World;
use galaxy_sim::replay::{Replay, ReplayPlayer};

use crate::sim::{SimPlugin, SimWorld};

/// Slowest and fastest playback.
pub const SPEEDS: std::ops::RangeInclusive<f32> = 0.25..=8.0;

/// What the viewer asks of the replay and what the replay reports back,
/// shared by the viewer's window and the replay server's thread.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplayState {
    /// Asked: hold the world where it is.
    pub paused: bool,
    /// Asked: recorded ticks per server tick ([`SPEEDS`]).
    pub speed: f32,
    /// Asked: go to this tick (taken by the server).
    pub seek_to: Option<u64>,
    /// Reported: the world's tick.
    pub tick: u64,
    /// Reported: the first tick of the recording.
    pub first_tick: u64,
    /// Reported: the last tick of the recording.
    pub last_tick: u64,
    /// Reported: the recording's ticks per second.
    pub tick_hz: u32,
    /// Reported: recorded hashes checked, and how many differed.
    pub hashes_checked: u64,
    /// Reported: recorded hashes the replay did not reproduce.
    pub mismatches: u64,
    /// Reported: the last seek's wall time, in milliseconds.
    pub last_seek_ms: f32,
    /// Reported: why playing stopped, if it failed.
    pub error: Option<String>,
}

/// [`ReplayState`] behind a lock: one copy for the viewer, one for the server.
#[derive(Resource, Clone, Debug, Default)]
pub struct ReplayControl(pub Arc<Mutex<ReplayState>>);

impl ReplayControl {
    /// The state (a poisoned lock still gives it: it is plain data).
    pub fn lock(&self) -> MutexGuard<'_, ReplayState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The player, with the fraction of a recorded tick owed at slow speeds.
#[derive(Resource)]
struct ReplayDriver {
    player: ReplayPlayer,
    owed: f32,
}

/// Builds the replay server in `app`: the network, the transport from
/// `auth`, the RTS replication and `player` stepping `world`. Returns the
/// address the socket was bound to.
pub fn add_replay_server(
    app: &mut App,
    auth: ServerAuth,
    player: ReplayPlayer,
    world: World,
    control: ReplayControl,
) -> Result<SocketAddr, String> {
    {
        let mut s = control.lock();
        s.tick = world.tick();
        s.first_tick = player.first_tick();
        s.last_tick = player.last_tick();
        s.tick_hz = player.header().sim.tick_hz;
        if s.speed == 0.0 {
            s.speed = 1.0;
        }
    }
    let addr = super::serve(
        app,
        auth,
        SimPlugin {
            stepped_elsewhere: true,
            ..default()
        },
    )?;
    app.insert_resource(SimWorld(world))
        .insert_resource(ReplayDriver { player, owed: 0.0 })
        .insert_resource(control)
        .add_systems(FixedUpdate, drive.in_set(NetSet::Simulate));
    Ok(addr)
}

/// One server tick of the replay: a seek if one was asked, else as many
/// recorded ticks as the speed says; the network tick moves on either way.
fn drive(
    mut driver: ResMut<ReplayDriver>,
    mut sim: ResMut<SimWorld>,
    control: Res<ReplayControl>,
    mut received: ResMut<ReceivedCommands>,
    mut stats: ResMut<NetworkStats>,
    mut events: ResMut<OutgoingEvents>,
    mut tick: ResMut<ServerTick>,
) {
    let refused = received.0.len() as u64;
    received.0.clear();
    if refused > 0 {
        stats.reject("replay_order", refused);
    }
    tick.0 += 1;
    let mut s = control.lock();
    let d = &mut *driver;
    let result = if let Some(target) = s.seek_to.take() {
        let started = std::time::Instant::now();
        let r = d.player.seek(&mut sim.0, target);
        s.last_seek_ms = started.elapsed().as_secs_f32() * 1e3;
        r
    } else if s.paused || s.error.is_some() {
        Ok(())
    } else {
        d.owed += s.speed.clamp(*SPEEDS.start(), *SPEEDS.end());
        let mut r = Ok(());
        while d.owed >= 1.0 {
            d.owed -= 1.0;
            match d.player.step(&mut sim.0) {
                Ok(Some(new)) => events.0.extend(new),
                Ok(None) => {
                    // The end: hold the last tick.
                    s.paused = true;
                    d.owed = 0.0;
                    break;
                }
                Err(e) => {
                    r = Err(e);
                    break;
                }
            }
        }
        r
    };
    if let Err(e) = result {
        error!("replay stopped: {e}");
        s.error = Some(e.to_string());
    }
    s.tick = sim.0.tick();
    s.hashes_checked = d.player.hashes_checked();
    s.mismatches = d.player.mismatches().len() as u64;
}

/// Plays the recording at `path` to its end, headless, checking every
/// recorded hash; prints progress and a summary. An error if a hash
/// differs or the file is damaged.
pub fn verify(path: &Path) -> Result<(), String> {
    let replay = Replay::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let hashes = replay.hash_count();
    let truncated = replay.is_truncated();
    let (mut player, mut world) =
        ReplayPlayer::new(replay, 0).map_err(|e| format!("{}: {e}", path.display()))?;
    let (first, last) = (player.first_tick(), player.last_tick());
    let hz = u64::from(player.header().sim.tick_hz.max(1));
    println!(
        "{}: ticks {first}..{last} ({:.1} s of game), {hashes} hashes{}",
        path.display(),
        (last - first) as f64 / hz as f64,
        if truncated {
            "; the file ends mid-chunk (the recording stopped abruptly)"
        } else {
            ""
        }
    );
    let started = std::time::Instant::now();
    let mut reported = started;
    while player
        .step(&mut world)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .is_some()
    {
        if reported.elapsed().as_secs_f32() >= 1.0 {
            reported = std::time::Instant::now();
            println!(
                "  tick {} of {last}, {} hashes checked",
                world.tick(),
                player.hashes_checked()
            );
        }
    }
    let bad = player.mismatches();
    println!(
        "{} of {} hashes match ({:.1} s)",
        player.hashes_checked() - bad.len() as u64,
        player.hashes_checked(),
        started.elapsed().as_secs_f32()
    );
    match bad.first() {
        None => Ok(()),
        Some(m) => Err(format!(
            "the replay differs from the recording from tick {} on ({} hashes differ)",
            m.tick,
            bad.len()
        )),
    }
}

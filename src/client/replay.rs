//! `galaxy_rts replay FILE`: the client onto a replay server in a thread of
//! its own (`crate::server::replay`), with a panel to pause, change the
//! speed (x0.25 to x8) and seek. The camera is free over the whole map;
//! it starts over the army of the lowest player id.

use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPrimaryContextPass, egui};
use galaxy_protocol::WorldPos;
use galaxy_sim::replay::{Replay, ReplayPlayer};

use super::{ClientSetup, client_app, input, run_app, server_thread};
use crate::cli::ReplayOptions;
use crate::server::replay::{ReplayControl, SPEEDS, add_replay_server};

/// The viewer's id: a spectator's (it has `SPECTATOR_BIT`), so no army has
/// it and `galaxy_net` refuses every order it sends.
pub const REPLAY_VIEWER: u64 = u64::MAX;

/// The speeds the panel offers.
const SPEED_STEPS: [f32; 6] = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0];

/// Plays the recording in `opts.file` in a window.
pub fn run(opts: ReplayOptions) -> Result<(), String> {
    let file = opts.file.display().to_string();
    let replay = Replay::open(&opts.file).map_err(|e| format!("{file}: {e}"))?;
    if replay.is_truncated() {
        warn!(
            "{file} ends mid-chunk (the recording stopped abruptly); it plays to its last whole second"
        );
    }
    let (player, world) = ReplayPlayer::new(replay, 0).map_err(|e| format!("{file}: {e}"))?;
    let start = centre(&world);
    let control = ReplayControl::default();
    control.lock().speed = opts.speed.clamp(*SPEEDS.start(), *SPEEDS.end());
    let server_control = control.clone();
    let auth = server_thread("replay-server", REPLAY_VIEWER, move |app, auth| {
        add_replay_server(app, auth, player, world, server_control)
    })?;
    let mut app = client_app(ClientSetup {
        auth,
        profile: galaxy_net::LinkProfile::Desktop,
        bindings: input::Bindings::defaults(),
        start,
        screenshot: opts.screenshot,
        exit_after: opts.exit_after,
    });
    app.insert_resource(control)
        .add_systems(EguiPrimaryContextPass, replay_panel);
    run_app(app)
}

/// The middle of the army of the lowest player id (the human player of a
/// game from the embedded server); the origin for a world without units.
fn centre(world: &galaxy_sim::World) -> WorldPos {
    let Some(first) = world
        .units()
        .map(|(_, u)| u.owner)
        .filter(|&o| o != 0)
        .min()
    else {
        return WorldPos::new(0, 0);
    };
    let (mut x, mut y, mut n) = (0i128, 0i128, 0i128);
    for (_, u) in world.units().filter(|(_, u)| u.owner == first) {
        x += i128::from(u.position.x);
        y += i128::from(u.position.y);
        n += 1;
    }
    WorldPos::new((x / n.max(1)) as i64, (y / n.max(1)) as i64)
}

/// The replay's controls: play/pause, speed, a seek slider, and whether
/// the recorded hashes have matched so far.
fn replay_panel(mut contexts: EguiContexts, control: Res<ReplayControl>) -> Result {
    let ctx = contexts.ctx_mut()?;
    let mut s = control.lock();
    let hz = f64::from(s.tick_hz.max(1));
    let clock = |tick: u64| {
        let secs = tick as f64 / hz;
        format!("{}:{:04.1}", (secs / 60.0) as u64, secs % 60.0)
    };
    egui::Window::new("Replay")
        .anchor(egui::Align2::CENTER_BOTTOM, [0.0, -8.0])
        .resizable(false)
        .collapsible(false)
        .show(ctx, |ui| {
            ui.horizontal(|ui| {
                let label = if s.paused { "Play" } else { "Pause" };
                if ui.button(label).clicked() {
                    if s.paused && s.tick >= s.last_tick {
                        s.seek_to = Some(s.first_tick);
                    }
                    s.paused = !s.paused;
                }
                for speed in SPEED_STEPS {
                    if ui
                        .selectable_label(s.speed == speed, format!("x{speed}"))
                        .clicked()
                    {
                        s.speed = speed;
                    }
                }
                ui.label(format!("{} / {}", clock(s.tick), clock(s.last_tick)));
            });
            let mut at = s.seek_to.unwrap_or(s.tick);
            let slider = egui::Slider::new(&mut at, s.first_tick..=s.last_tick.max(s.first_tick))
                .show_value(false);
            let response = ui.add_sized([480.0, 18.0], slider);
            if response.changed() {
                s.seek_to = Some(at);
            }
            let (text, colour) = match (&s.error, s.mismatches) {
                (Some(e), _) => (format!("stopped: {e}"), egui::Color32::LIGHT_RED),
                (None, 0) => (
                    format!("{} recorded hashes match", s.hashes_checked),
                    egui::Color32::LIGHT_GREEN,
                ),
                (None, n) => (
                    format!("{n} of {} recorded hashes differ", s.hashes_checked),
                    egui::Color32::LIGHT_RED,
                ),
            };
            ui.colored_label(colour, text);
            if s.last_seek_ms > 0.0 {
                ui.label(format!("last seek {:.0} ms", s.last_seek_ms));
            }
        });
    Ok(())
}

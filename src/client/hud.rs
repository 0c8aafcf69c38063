//! The HUD (bevy_egui): connection status, `NetworkStats` with a bandwidth
//! graph over the last seconds, the sector under the camera, unit counts,
//! the selection, and the combat event feed. Toggled by an action.

use std::collections::VecDeque;

use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPrimaryContextPass, egui};
use galaxy_net::{
    ArmyControl, ArmyControlStatus, ConnectionStatus, LocalPlayer, MaxUpdateRate, NetworkStats,
    TickRate,
};
use galaxy_protocol::SectorId;
use galaxy_sim::{is_structure, kind_spec};
use leafwing_input_manager::prelude::ActionState;

use super::camera::CameraFocus;
use super::effects::EventFeed;
use super::input::{Action, Bindings};
use super::orders::{PointerState, Selection};
use super::units::DrawnUnits;

/// Whether the HUD is shown.
#[derive(Resource, Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShowHud(pub bool);

/// Traffic rates sampled four times a second, for the graph and per-second figures.
#[derive(Resource, Default, Debug)]
pub struct TrafficHistory {
    last: Option<(f64, NetworkStats)>,
    /// `(kbps in, kbps out, updates per second)`, oldest first.
    pub samples: VecDeque<(f32, f32, f32)>,
}

const SAMPLE_SECS: f64 = 0.25;
/// 20 seconds of samples.
const HISTORY: usize = 80;

impl TrafficHistory {
    /// Records `stats` at local time `now` (a sample every quarter second).
    pub fn observe(&mut self, now: f64, stats: &NetworkStats) {
        let Some((at, prev)) = &self.last else {
            self.last = Some((now, stats.clone()));
            return;
        };
        let dt = now - at;
        if dt < SAMPLE_SECS {
            return;
        }
        let rate = |a: u64, b: u64| (a.saturating_sub(b) as f64 / dt) as f32;
        let sample = (
            rate(stats.bytes_received, prev.bytes_received) * 8.0 / 1000.0,
            rate(stats.bytes_sent, prev.bytes_sent) * 8.0 / 1000.0,
            rate(stats.unit_updates, prev.unit_updates),
        );
        self.samples.push_back(sample);
        if self.samples.len() > HISTORY {
            self.samples.pop_front();
        }
        self.last = Some((now, stats.clone()));
    }

    /// The newest sample.
    pub fn latest(&self) -> (f32, f32, f32) {
        self.samples.back().copied().unwrap_or_default()
    }
}

/// The HUD.
pub struct HudPlugin;

impl Plugin for HudPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(ShowHud(true))
            .init_resource::<TrafficHistory>()
            .init_resource::<ArmyLine>()
            .add_systems(Update, (toggle, sample_traffic, army_status))
            .add_systems(EguiPrimaryContextPass, draw_hud);
    }
}

fn toggle(actions: Query<&ActionState<Action>>, mut show: ResMut<ShowHud>) {
    let Ok(actions) = actions.single() else {
        return;
    };
    if actions.just_pressed(&Action::ToggleHud) {
        show.0 = !show.0;
    }
}

/// The HUD's line about who commands the player's army (`None`: the
/// server never said, e.g. one without AI takeover).
#[derive(Resource, Default, Debug, PartialEq)]
pub struct ArmyLine(pub Option<String>);

/// Keeps [`ArmyLine`] up to date from the server's last notice and how
/// long the connection has been down.
fn army_status(
    time: Res<Time<Real>>,
    status: Res<ConnectionStatus>,
    army: Res<ArmyControlStatus>,
    mut connected_at: Local<Option<f64>>,
    mut line: ResMut<ArmyLine>,
) {
    let now = time.elapsed_secs_f64();
    let connected = *status == ConnectionStatus::Connected;
    if connected {
        *connected_at = Some(now);
    }
    let gone_for = (!connected)
        .then(|| connected_at.map(|t| now - t))
        .flatten();
    let new = army_line(army.0.as_ref(), connected, gone_for);
    if line.0 != new {
        line.0 = new;
    }
}

/// What to say about who commands the army: `notice` is the server's last
/// word, `gone_for` how long the connection has been down (`None` while
/// connected, or before it ever was).
pub fn army_line(
    notice: Option<&ArmyControl>,
    connected: bool,
    gone_for: Option<f64>,
) -> Option<String> {
    let a = notice?;
    let grace = f64::from(a.grace_ms) / 1000.0;
    Some(match (connected, gone_for) {
        (true, _) if a.takeovers > 0 => format!(
            "Army: yours (the server's AI held it {} time(s), {} orders)",
            a.takeovers, a.ai_orders
        ),
        (true, _) => "Army: yours".into(),
        (false, Some(t)) if t >= grace => "Army: the server's AI, until you are back".into(),
        (false, Some(t)) => format!(
            "Army: yours; the server's AI takes it in {:.0} s",
            grace - t
        ),
        (false, None) => "Army: yours".into(),
    })
}

fn sample_traffic(time: Res<Time<Real>>, stats: Res<NetworkStats>, mut h: ResMut<TrafficHistory>) {
    h.observe(time.elapsed_secs_f64(), &stats);
}

/// Who this client is: a player, a spectator, or the viewer of a replay.
fn who(id: u64) -> String {
    if id == crate::client::replay::REPLAY_VIEWER {
        "replay viewer".into()
    } else if galaxy_net::tokens::is_spectator(id) {
        format!(
            "spectator {} (orders refused)",
            id & !galaxy_net::tokens::SPECTATOR_BIT
        )
    } else {
        format!("player {id}")
    }
}

fn status_text(s: &ConnectionStatus) -> (String, egui::Color32) {
    match s {
        ConnectionStatus::Connected => ("Connected".into(), egui::Color32::LIGHT_GREEN),
        ConnectionStatus::Connecting => ("Connecting...".into(), egui::Color32::YELLOW),
        ConnectionStatus::Disconnected => ("Disconnected".into(), egui::Color32::GRAY),
        ConnectionStatus::Failed(why) => (format!("Failed: {why}"), egui::Color32::LIGHT_RED),
    }
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 10 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1 << 20)),
        n if n >= 10 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// A line graph of kbps received over the last 20 seconds.
fn bandwidth_graph(ui: &mut egui::Ui, history: &TrafficHistory) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(240.0, 60.0), egui::Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 2.0, egui::Color32::from_black_alpha(120));
    let peak = history
        .samples
        .iter()
        .map(|s| s.0.max(s.1))
        .fold(64.0f32, f32::max);
    let point = |i: usize, v: f32| {
        egui::pos2(
            rect.left() + rect.width() * i as f32 / (HISTORY - 1) as f32,
            rect.bottom() - rect.height() * (v / peak).min(1.0),
        )
    };
    let offset = HISTORY - history.samples.len();
    for (pick, colour) in [
        (0usize, egui::Color32::LIGHT_GREEN),
        (1, egui::Color32::LIGHT_BLUE),
    ] {
        let points: Vec<egui::Pos2> = history
            .samples
            .iter()
            .enumerate()
            .map(|(i, s)| point(i + offset, if pick == 0 { s.0 } else { s.1 }))
            .collect();
        if points.len() > 1 {
            painter.add(egui::Shape::line(points, egui::Stroke::new(1.5, colour)));
        }
    }
    painter.text(
        rect.left_top() + egui::vec2(4.0, 2.0),
        egui::Align2::LEFT_TOP,
        format!("{peak:.0} kbps"),
        egui::FontId::monospace(10.0),
        egui::Color32::GRAY,
    );
}

#[allow(clippy::too_many_arguments)] // a Bevy system: each parameter is data it needs
fn draw_hud(
    mut contexts: EguiContexts,
    show: Res<ShowHud>,
    status: Res<ConnectionStatus>,
    stats: Res<NetworkStats>,
    history: Res<TrafficHistory>,
    rate: Res<MaxUpdateRate>,
    drawn: DrawnUnits,
    tick_rate: Res<TickRate>,
    selection: Res<Selection>,
    pointer: Res<PointerState>,
    player: Res<LocalPlayer>,
    focus: Res<CameraFocus>,
    feed: Res<EventFeed>,
    bindings: Res<Bindings>,
    time: Res<Time<Real>>,
    army: Res<ArmyLine>,
) -> Result {
    if !show.0 {
        return Ok(());
    }
    let ctx = contexts.ctx_mut()?;
    let (text, colour) = status_text(&status);
    let (kin, kout, ups) = history.latest();
    egui::Window::new("Network")
        .anchor(egui::Align2::LEFT_TOP, [8.0, 8.0])
        .resizable(false)
        .collapsible(true)
        .show(ctx, |ui| {
            ui.colored_label(colour, text);
            if let Some(line) = &army.0 {
                ui.label(line);
            }
            egui::Grid::new("net").num_columns(2).show(ui, |ui| {
                ui.label("RTT");
                ui.label(format!("{:.0} ms", stats.average_latency));
                ui.end_row();
                ui.label("packet loss");
                ui.label(format!("{:.1} %", stats.packet_loss * 100.0));
                ui.end_row();
                ui.label("received");
                ui.label(format!(
                    "{} in {} msgs",
                    bytes(stats.bytes_received),
                    stats.messages_received
                ));
                ui.end_row();
                ui.label("sent");
                ui.label(format!(
                    "{} in {} msgs",
                    bytes(stats.bytes_sent),
                    stats.messages_sent
                ));
                ui.end_row();
                ui.label("now");
                ui.label(format!("{kin:.0} kbps in, {kout:.1} kbps out"));
                ui.end_row();
                ui.label("updates/s");
                ui.label(format!(
                    "{ups:.0} (limit: {})",
                    match rate.0 {
                        0 => "none".to_string(),
                        hz => format!("{hz} Hz"),
                    }
                ));
                ui.end_row();
                let bad: u64 = stats.decode_errors.values().sum::<u64>() + stats.rejected_total();
                if bad > 0 {
                    ui.label("refused");
                    ui.label(bad.to_string());
                    ui.end_row();
                }
            });
            bandwidth_graph(ui, &history);
            ui.small("green: received, blue: sent");
        });

    let (mut own, mut visible, mut structures) = (0usize, 0usize, 0usize);
    for (_, u) in drawn.iter() {
        if is_structure(u.state.kind()) {
            structures += 1;
            continue;
        }
        visible += 1;
        if u.state.owner() == player.0 {
            own += 1;
        }
    }
    let mut by_kind = [0usize; 3];
    let mut hp = 0u64;
    for id in &selection.0 {
        if let Some(u) = drawn.get(*id) {
            by_kind[usize::from(u.state.kind()).min(2)] += 1;
            hp += u64::from(u.state.health());
        }
    }
    let sector = SectorId::at(focus.0);
    egui::Window::new("Game")
        .anchor(egui::Align2::RIGHT_TOP, [-8.0, 8.0])
        .resizable(false)
        .show(ctx, |ui| {
            ui.label(who(player.0));
            ui.label(format!("sector ({}, {})", sector.x, sector.y));
            ui.label(format!(
                "units: {own} yours, {visible} visible, {structures} bases/resources"
            ));
            if selection.0.is_empty() {
                ui.label("nothing selected");
            } else {
                ui.label(format!(
                    "selected {}: {} infantry, {} tanks, {} scouts ({hp} hp)",
                    selection.0.len(),
                    by_kind[0],
                    by_kind[1],
                    by_kind[2]
                ));
            }
            if pointer.attack_move_armed {
                ui.colored_label(egui::Color32::ORANGE, "ATTACK-MOVE: left-click a target");
            }
            ui.separator();
            let k = |a| bindings.label(a);
            ui.small(format!(
                "{}/drag: select  {}: move  {}: attack-move  {}: stop",
                k(Action::Select),
                k(Action::Command),
                k(Action::AttackMove),
                k(Action::Stop)
            ));
            ui.small(format!(
                "{}/edge: pan  {}/{}: zoom  {}: grid  {}: HUD",
                k(Action::PanLeft),
                k(Action::ZoomIn),
                k(Action::ZoomOut),
                k(Action::ToggleSectors),
                k(Action::ToggleHud)
            ));
            ui.small(format!(
                "infantry {} m/s, tank {} m/s, scout {} m/s ({:.0} Hz)",
                kind_spec(0).speed_cm_per_sec / 100,
                kind_spec(1).speed_cm_per_sec / 100,
                kind_spec(2).speed_cm_per_sec / 100,
                tick_rate.0
            ));
        });

    let now = time.elapsed_secs_f64();
    egui::Window::new("Events")
        .anchor(egui::Align2::LEFT_BOTTOM, [8.0, -8.0])
        .resizable(false)
        .show(ctx, |ui| {
            ui.label(format!("{} events", feed.total));
            for (at, line) in feed.lines.iter().rev().take(6) {
                ui.small(format!("{:>4.0}s ago  {line}", now - at));
            }
        });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hud_names_players_spectators_and_replay_viewers() {
        assert_eq!(who(7), "player 7");
        assert_eq!(
            who(galaxy_net::tokens::spectator_id(3)),
            "spectator 3 (orders refused)"
        );
        assert_eq!(who(u64::MAX), "replay viewer");
    }

    #[test]
    fn the_army_line_says_who_commands_the_army() {
        let mut a = ArmyControl {
            player_id: 1,
            grace_ms: 5_000,
            ai_orders: 0,
            takeovers: 0,
        };
        assert_eq!(army_line(None, true, None), None);
        assert_eq!(army_line(Some(&a), true, None).unwrap(), "Army: yours");
        assert!(
            army_line(Some(&a), false, Some(2.0))
                .unwrap()
                .contains("takes it in 3 s")
        );
        assert!(
            army_line(Some(&a), false, Some(6.0))
                .unwrap()
                .contains("server's AI, until")
        );
        a.takeovers = 1;
        a.ai_orders = 7;
        assert!(
            army_line(Some(&a), true, None)
                .unwrap()
                .contains("1 time(s), 7 orders")
        );
    }

    #[test]
    fn traffic_rates_come_from_counter_differences() {
        let mut h = TrafficHistory::default();
        let mut s = NetworkStats::default();
        h.observe(0.0, &s);
        s.bytes_received = 5_000;
        s.bytes_sent = 500;
        s.unit_updates = 10;
        h.observe(0.1, &s); // too soon: no sample
        assert!(h.samples.is_empty());
        h.observe(0.5, &s);
        let (kin, kout, ups) = h.latest();
        assert!((kin - 80.0).abs() < 1e-3, "{kin}");
        assert!((kout - 8.0).abs() < 1e-3, "{kout}");
        assert!((ups - 20.0).abs() < 1e-3, "{ups}");
        for i in 0..200 {
            h.observe(1.0 + f64::from(i), &s);
        }
        assert_eq!(h.samples.len(), HISTORY);
        assert_eq!(h.latest(), (0.0, 0.0, 0.0));
    }
}

//! The one-line status a dedicated server logs every few seconds.

use bevy::prelude::*;
use galaxy_net::{NetworkStats, Sessions, SimWorld, TickTimes};

/// Logs a status line every `every` seconds; exits after `exit_after` if set.
pub struct StatusPlugin {
    /// Seconds between lines.
    pub every: f32,
    /// Stop the app after this many seconds.
    pub exit_after: Option<f32>,
}

#[derive(Resource)]
struct StatusTimer {
    every: f32,
    exit_after: Option<f32>,
    last: f32,
    last_sent: u64,
    last_received: u64,
}

impl Plugin for StatusPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(StatusTimer {
            every: self.every.max(0.1),
            exit_after: self.exit_after,
            last: 0.0,
            last_sent: 0,
            last_received: 0,
        })
        .add_systems(Update, status_line);
    }
}

fn status_line(
    time: Res<Time<Real>>,
    mut timer: ResMut<StatusTimer>,
    sim: Res<SimWorld>,
    sessions: Res<Sessions>,
    stats: Res<NetworkStats>,
    times: Res<TickTimes>,
    mut exit: MessageWriter<AppExit>,
) {
    let now = time.elapsed_secs();
    if timer.exit_after.is_some_and(|t| now >= t) {
        info!("--exit-after reached; shutting down");
        exit.write(AppExit::Success);
    }
    if now - timer.last < timer.every {
        return;
    }
    let dt = (now - timer.last).max(1e-3);
    timer.last = now;
    let out = (stats.bytes_sent - timer.last_sent) as f32 / dt / 1024.0;
    let inn = (stats.bytes_received - timer.last_received) as f32 / dt / 1024.0;
    timer.last_sent = stats.bytes_sent;
    timer.last_received = stats.bytes_received;
    info!(
        "status: {} clients, {} units, tick {} | {:.2} ms p50 {:.2} ms p99 | out {:.1} KiB/s in {:.1} KiB/s | rtt {:.0} ms loss {:.1}% | rejected {} kicked {}",
        sessions.0.len(),
        sim.0.unit_count(),
        sim.0.tick(),
        times.quantile(0.5),
        times.quantile(0.99),
        out,
        inn,
        stats.average_latency,
        stats.packet_loss * 100.0,
        stats.rejected_total(),
        stats.kicked_clients,
    );
}

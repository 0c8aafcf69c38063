//! The one-line status a dedicated server logs every few seconds.

use bevy::prelude::*;
use galaxy_net::{NetworkStats, Sessions, TickTimes};

use super::cluster::ClusterState;
use crate::sim::{SimStats, SimWorld};

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

#[allow(clippy::too_many_arguments)] // a Bevy system: each parameter is a resource it reads
fn status_line(
    time: Res<Time<Real>>,
    mut timer: ResMut<StatusTimer>,
    sim: Res<SimWorld>,
    sim_stats: Res<SimStats>,
    sessions: Res<Sessions>,
    stats: Res<NetworkStats>,
    times: Res<TickTimes>,
    cluster: Option<Res<ClusterState>>,
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
        "status: {} clients, {} units, tick {} | {:.2} ms p50 {:.2} ms p99 | out {:.1} KiB/s in {:.1} KiB/s | rtt {:.0} ms loss {:.1}% | rejected {} kicked {}{}",
        sessions.len(),
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
        cluster
            .map(|c| cluster_part(&c, &sim_stats))
            .unwrap_or_default(),
    );
}

/// ` | cluster: server 2 acting, 1 sectors [3:4,0], peers 1,3 | adopted ...`
fn cluster_part(c: &ClusterState, stats: &SimStats) -> String {
    let sectors: Vec<String> = c
        .owned
        .keys()
        .map(|s| format!("{}:{},{}", s.scale, s.x, s.y))
        .collect();
    let peers: Vec<String> = c
        .peers
        .keys()
        .filter(|&&id| id != c.server_id())
        .map(u32::to_string)
        .collect();
    format!(
        " | cluster: server {} {}, {} sectors [{}], peers [{}] | adopted {} restored {} lost {} refused writes {} redirects {} | handoffs {} takeovers {} balancer moves {} | ghosts {} walked out {} in {} | commands applied {} forwarded out {} in {}",
        c.server_id(),
        if c.acting { "acting" } else { "SUSPENDED" },
        c.owned.len(),
        sectors.join(" "),
        peers.join(","),
        c.adopted,
        c.restored_units,
        c.lost,
        c.refused_writes,
        c.redirects,
        c.handoffs,
        c.takeovers,
        c.balancer_moves,
        c.border.ghost_count(),
        c.border.transfers_out,
        c.border.transfers_in,
        stats.commands_applied,
        stats.commands_forwarded,
        c.forwarded_in,
    )
}

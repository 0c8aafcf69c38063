//! `galaxy_rts cluster status --nats URL`: prints the cluster's live
//! servers (with their load reports) and the sector ownership table.

use std::fmt::Write;

use galaxy_cluster::{Cluster, ClusterConfig};

use crate::cli::ClusterStatusOptions;

/// Connects as an observer (no lease, no claims) and prints the tables.
pub fn run(opts: &ClusterStatusOptions) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let text = rt.block_on(async {
        let mut config = ClusterConfig::new(opts.nats.clone(), 0);
        config.prefix = opts.prefix.clone();
        let cluster = Cluster::connect(config).await.map_err(|e| e.to_string())?;
        let live = cluster.live_servers().await.map_err(|e| e.to_string())?;
        let table = cluster.ownership_table().await.map_err(|e| e.to_string())?;
        let mut out = String::new();
        let _ = writeln!(out, "live servers: {}", live.len());
        for (id, l) in &live {
            let _ = writeln!(
                out,
                "  server {id:<4} {:<21} units {:<7} clients {:<4} tick p99 {:.1} ms",
                l.address, l.units, l.clients, l.tick_ms_p99
            );
        }
        let _ = writeln!(out, "owned sectors: {}", table.len());
        let _ = writeln!(
            out,
            "  {:<28} {:<8} {:<8} lease",
            "sector (scale: x, y)", "owner", "epoch"
        );
        for (s, o) in &table {
            let lease = if live.contains_key(&o.server) {
                "live"
            } else {
                "EXPIRED"
            };
            let name = format!("{}: {}, {}", s.scale, s.x, s.y);
            let _ = writeln!(out, "  {name:<28} {:<8} {:<8} {lease}", o.server, o.epoch);
        }
        Ok::<String, String>(out)
    })?;
    print!("{text}");
    Ok(())
}

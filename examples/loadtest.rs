//! Load test: a real server and real renet clients over UDP on 127.0.0.1,
//! through the link conditioner, in one process (server in one thread,
//! clients in another).
//!
//! ```text
//! cargo run --release --example loadtest -- --units 20000 --clients 32 --seconds 20 --loss 0.05 --json
//! ```
//!
//! Each client is a player with an army of `units / clients` units, placed
//! in pairs of facing armies so there is fighting; every two seconds each
//! client attack-moves part of its army. At the end the clients stop, and
//! for every unit the server's sender says a client acknowledged, the
//! client's recorded state at that tick is compared bit for bit:
//! `desynced_units` counts mismatches. `tick_ms_*` is the server's
//! simulation + replication time per tick after a 2 s warm-up;
//! `kbps_per_client_*` is message payload received per client;
//! `rejected_commands` counts refused orders except those naming units that
//! died while the order travelled (`orders_for_dead_units`); `rss_mb` is the
//! whole process (server and all clients).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use bevy::prelude::*;
use galaxy_net::*;
use galaxy_protocol::link_model::SplitMix64;
use galaxy_protocol::{CompressedCommand, DeltaReceiver, UnitId, UnitIdList, WorldPos, WorldRect};

struct Args {
    units: u64,
    clients: u64,
    seconds: f64,
    loss: f64,
    json: bool,
}

fn parse() -> Result<Args, String> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let get = |f: &str, d: f64| -> Result<f64, String> {
        match a.iter().position(|x| x == f) {
            Some(i) => a
                .get(i + 1)
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{f} needs a number")),
            None => Ok(d),
        }
    };
    if a.iter().any(|x| x == "--help" || x == "-h") {
        return Err(
            "usage: loadtest [--units N] [--clients N] [--seconds S] [--loss P] [--json]".into(),
        );
    }
    Ok(Args {
        units: get("--units", 20_000.0)? as u64,
        clients: get("--clients", 32.0)?.max(1.0) as u64,
        seconds: get("--seconds", 20.0)?,
        loss: get("--loss", 0.05)?,
        json: a.iter().any(|x| x == "--json"),
    })
}

/// Where player `p`'s army stands: pairs of armies 40 m apart, one battle
/// every 8 km, so each client's interest (view + rings, about 6 km across)
/// holds its own battle.
fn army_origin(p: u64) -> WorldPos {
    let pair = p / 2;
    WorldPos::new(
        (pair % 8) as i64 * 800_000,
        (pair / 8) as i64 * 800_000 + (p % 2) as i64 * 4_000,
    )
}

/// One run's numbers (the JSON line has exactly these fields).
#[derive(serde::Serialize)]
struct LoadReport {
    units: u64,
    clients: u64,
    seconds: f64,
    loss: f64,
    tick_ms_p50: f32,
    tick_ms_p99: f32,
    kbps_per_client_p50: f64,
    kbps_per_client_max: f64,
    desynced_units: u64,
    checked_units: u64,
    rejected_commands: u64,
    orders_for_dead_units: u64,
    units_alive_at_end: usize,
    rss_mb: f64,
}

/// A unit the server's sender says a client acknowledged: id, tick, state.
type AckedState = (UnitId, u64, Option<galaxy_protocol::QuantizedUnit>);

struct ServerReport {
    tick_p50: f32,
    tick_p99: f32,
    /// Refusals other than orders for units that died on the way.
    rejected: u64,
    /// Orders naming units that had died by the time they arrived.
    orders_for_dead_units: u64,
    units: usize,
    acked: Vec<(u64, Vec<AckedState>)>,
}

fn run_server(
    args: &Args,
    addr_tx: mpsc::Sender<std::net::SocketAddr>,
    stop: Arc<AtomicBool>,
) -> ServerReport {
    let config = NetworkConfig {
        port: 0,
        max_connections: args.clients as usize + 8,
        ..default()
    };
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .insert_resource(config.clone())
        .add_plugins(GalaxyNetPlugin {
            mode: NetMode::Server,
        });
    let addr = start_server(app.world_mut(), &config, ServerAuth::Insecure, &[]).expect("bind");
    {
        let mut sim = app.world_mut().resource_mut::<SimWorld>();
        let per = (args.units / args.clients) as i64;
        let side = (per as f64).sqrt().ceil() as i64;
        for p in 1..=args.clients {
            let o = army_origin(p);
            for i in 0..per {
                sim.0.spawn_unit(
                    p,
                    (i % 3) as u8,
                    WorldPos::new(o.x + (i % side) * 200, o.y + (i / side) * 200),
                );
            }
        }
    }
    addr_tx.send(addr).expect("main thread waits");
    let start = Instant::now();
    let mut warmed = false;
    while !stop.load(Ordering::Relaxed) {
        app.update();
        if !warmed && start.elapsed() > Duration::from_secs(2) {
            app.world_mut().resource_mut::<TickTimes>().clear();
            warmed = true;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    // Let acks already on the wire arrive.
    let end = Instant::now();
    while end.elapsed() < Duration::from_millis(300) {
        app.update();
        std::thread::sleep(Duration::from_millis(1));
    }
    let w = app.world();
    let sessions = w.resource::<Sessions>();
    let acked = sessions
        .0
        .values()
        .map(|s| {
            let sender = s.sender();
            let list = sender
                .tracked_units()
                .filter_map(|id| sender.acked(id).map(|(t, u)| (id, t, u.copied())))
                .collect();
            (s.player, list)
        })
        .collect();
    let times = w.resource::<TickTimes>();
    ServerReport {
        tick_p50: times.quantile(0.5),
        tick_p99: times.quantile(0.99),
        rejected: {
            let stats = w.resource::<NetworkStats>();
            stats.rejected_total() - stats.rejected.get("unknown_unit").copied().unwrap_or(0)
        },
        orders_for_dead_units: w
            .resource::<NetworkStats>()
            .rejected
            .get("unknown_unit")
            .copied()
            .unwrap_or(0),
        units: w.resource::<SimWorld>().0.unit_count(),
        acked,
    }
}

fn run_clients(
    args: &Args,
    proxy: std::net::SocketAddr,
    seconds: f64,
) -> Vec<(u64, u64, DeltaReceiver)> {
    let config = NetworkConfig {
        port: 0,
        ..default()
    };
    let mut apps: Vec<(u64, App)> = (1..=args.clients)
        .map(|p| {
            let mut app = App::new();
            let o = army_origin(p);
            app.add_plugins(MinimalPlugins)
                .insert_resource(config.clone())
                .insert_resource(View(WorldRect::around(
                    WorldPos::new(o.x + 2_000, o.y + 2_000),
                    50_000,
                )))
                .add_plugins(GalaxyNetPlugin {
                    mode: NetMode::Client(p),
                });
            connect_client(
                app.world_mut(),
                &config,
                ClientAuth::Insecure {
                    player: p,
                    server: proxy,
                },
            )
            .expect("socket");
            (p, app)
        })
        .collect();
    let mut rng = SplitMix64::new(9);
    let start = Instant::now();
    let mut last_order = 0.0;
    while start.elapsed().as_secs_f64() < seconds {
        let t = start.elapsed().as_secs_f64();
        let order = t - last_order >= 2.0;
        if order {
            last_order = t;
        }
        for (p, app) in apps.iter_mut() {
            if order {
                let mine: Vec<UnitId> = app
                    .world()
                    .resource::<ClientReplica>()
                    .receiver
                    .units()
                    .filter(|(_, u)| u.owner() == *p)
                    .map(|(id, _)| id)
                    .filter(|_| rng.chance(0.3))
                    .collect();
                let o = army_origin(*p);
                let to = WorldPos::new(
                    o.x + rng.below(8_000) as i64,
                    o.y + rng.below(8_000) as i64 - 2_000,
                );
                if let Ok(units) = UnitIdList::from_ids(mine) {
                    app.world_mut()
                        .resource_mut::<OutgoingCommands>()
                        .0
                        .push(CompressedCommand::AttackMove { units, to });
                }
            }
            app.update();
            // A game shows and drops its combat events.
            app.world_mut()
                .resource_mut::<ReceivedEvents>()
                .events
                .clear();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    apps.into_iter()
        .map(|(p, mut app)| {
            let bytes = app.world().resource::<NetworkStats>().bytes_received;
            let replica = app
                .world_mut()
                .remove_resource::<ClientReplica>()
                .expect("client plugin");
            (p, bytes, replica.receiver)
        })
        .collect()
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    eprintln!(
        "load test: {} units, {} clients, {} s, loss {}",
        args.units, args.clients, args.seconds, args.loss
    );
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let server = {
        let (stop, a) = (stop.clone(), Args { ..args });
        std::thread::spawn(move || run_server(&a, tx, stop))
    };
    let addr = rx.recv().expect("server started");
    let f = LinkFaults::lossy(args.loss, 0.0, 5, 5);
    let proxy = LinkConditioner::start(addr, Faults { up: f, down: f }, 3).expect("proxy");
    let clients = run_clients(&args, proxy.addr(), args.seconds);
    let rss = rss_mb();
    eprintln!(
        "conditioner: {} datagrams forwarded, {} dropped, {} waiting at the end",
        proxy.stats().forwarded.load(Ordering::Relaxed),
        proxy.stats().dropped.load(Ordering::Relaxed),
        proxy.stats().queued.load(Ordering::Relaxed)
    );
    stop.store(true, Ordering::Relaxed);
    let report = server.join().expect("server thread");
    let mut desynced = 0u64;
    let mut checked = 0u64;
    for (player, acked) in &report.acked {
        let Some((_, _, receiver)) = clients.iter().find(|c| c.0 == *player) else {
            continue;
        };
        for (id, tick, state) in acked {
            checked += 1;
            if receiver.recorded(*id, *tick).map(|s| s.copied()) != Some(*state) {
                desynced += 1;
            }
        }
    }
    let mut kbps: Vec<f64> = clients
        .iter()
        .map(|c| c.1 as f64 * 8.0 / args.seconds / 1000.0)
        .collect();
    let r = LoadReport {
        units: args.units,
        clients: args.clients,
        seconds: args.seconds,
        loss: args.loss,
        tick_ms_p50: report.tick_p50,
        tick_ms_p99: report.tick_p99,
        kbps_per_client_p50: quantile(&mut kbps, 0.5),
        kbps_per_client_max: quantile(&mut kbps, 1.0),
        desynced_units: desynced,
        checked_units: checked,
        rejected_commands: report.rejected,
        orders_for_dead_units: report.orders_for_dead_units,
        units_alive_at_end: report.units,
        rss_mb: (rss * 10.0).round() / 10.0,
    };
    println!(
        "{:>7} {:>7} {:>7} {:>5} {:>10} {:>10} {:>12} {:>12} {:>9} {:>9} {:>8}",
        "units",
        "clients",
        "seconds",
        "loss",
        "tick p50",
        "tick p99",
        "kbps/cl p50",
        "kbps/cl max",
        "desynced",
        "rejected",
        "rss MB"
    );
    println!(
        "{:>7} {:>7} {:>7} {:>5} {:>10.2} {:>10.2} {:>12.1} {:>12.1} {:>9} {:>9} {:>8.0}",
        r.units,
        r.clients,
        r.seconds,
        r.loss,
        r.tick_ms_p50,
        r.tick_ms_p99,
        r.kbps_per_client_p50,
        r.kbps_per_client_max,
        r.desynced_units,
        r.rejected_commands,
        r.rss_mb
    );
    eprintln!(
        "checked {checked} acknowledged unit states; {} units alive at the end; {} unit orders named units already dead",
        r.units_alive_at_end, r.orders_for_dead_units
    );
    if args.json {
        println!("{}", serde_json::to_string(&r).expect("report serializes"));
    }
}

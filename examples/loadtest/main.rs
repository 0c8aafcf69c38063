//! Load test: a real server and real renet clients over UDP on 127.0.0.1,
//! through the link conditioner, in one process (server in one thread,
//! clients in another, the conditioner in a third).
//!
//! ```text
//! cargo run --release --example loadtest -- --units 100000 --clients 100 --seconds 30 --json
//! cargo run --release --example loadtest -- --sweep --seconds 12 --json
//! ```
//!
//! The world is `units / battle-size` battles (default 1,000 units each,
//! two armies 60 m apart), one every 8 km so no client's interest holds two.
//! Client `c` watches battle `c mod battles` and owns a share of one of its
//! armies; every two seconds (each at its own moment) each client
//! attack-moves part of its units.
//! Clients are bots at 30 rounds per second: they receive, apply and
//! acknowledge every update and send orders, but do not draw (no smoothing),
//! so the two cores go to the server and the network.
//! The other army, and the armies of battles nobody watches, belong to
//! idle AI players that fight back. Units that die are replaced four times
//! a second, so the world holds `units` units for the whole run.
//!
//! At the end the clients stop, and for every unit the server's sender says
//! a client acknowledged, the client's recorded state at that tick is
//! compared bit for bit: `desynced_units` counts mismatches.
//! `superseded_units` counts acknowledged states that could not be
//! compared because the client had newer ones (acknowledged too late for
//! the server to hear before the end) and had dropped the old one from
//! its history; they are not in `checked_units`.
//!
//! - `tick_ms_*`: the server frames that ran a simulation tick, whole
//!   (receive, simulate, tag, replicate, send), after the warm-up (the
//!   last 1,200 of them in runs over a minute).
//! - `kbps_per_client_*`: message payload each client received.
//! - `rss_mb_*`: the whole process (server, clients, conditioner) after the
//!   warm-up and at the end; `rss_growth_mb` is the difference. The 100
//!   clients' baseline histories fill up during a run, so this grows even
//!   when the server's memory does not.
//! - `server_heap_mb_*`: the bytes the server holds on the heap (allocated
//!   minus freed by every thread but the clients', counted by this
//!   example's global allocator), after the warm-up and at the end: the
//!   server's own memory, apart from the clients'.
//! - `--server-threads N`: 0 (the default) lets the server use both cores
//!   (simulation on two threads, replication on Bevy's compute pool), 1
//!   keeps it on one thread.
//! - `--idle-units N` adds N units at rest in a garrison nobody watches.
//! - `--noise-probe S` first times, for S seconds, a fixed computation of
//!   10 ms on one thread (`noise_chunk_ms_*`, else null): how steady the
//!   machine itself is. On a shared VM the same work sometimes takes
//!   several times longer, and that lands in the tick times too.
//! - `--spectators N` adds N spectators (ids from `spectator_id`), each
//!   watching one battle and giving no orders: their cost is the server's
//!   tick beside the same run without them. Their replicas are checked
//!   for desyncs with the players'. `--spectator-delay S` makes the server
//!   show them the game S seconds late (their replicas are checked against
//!   the delayed world's acked states). Spectators of one battle share
//!   one encoding of their updates; `--no-sharing` gives each its own.
//! - `--hostile N` adds N attacking clients (see `hostile.rs`: command
//!   floods, 65,536-id commands, id lists under the limits, view spam,
//!   views under the limit that are never acked, garbage, oversized
//!   messages), connected straight to the server and
//!   reconnecting whenever it disconnects them. The fair clients' figures
//!   are measured as always; `attacks` says what each attack achieved and
//!   `server_refusals` what the server counted (rejections, decode errors
//!   and disconnects by reason). Compare with the same run without them.
//! - `cpu_steal_pct`: of the machine's CPU time during the run, the share
//!   the hypervisor gave to other guests (`/proc/stat` steal; null where
//!   unknown). A few percent on a 2-core VM is enough to double the tick
//!   tail; compare runs with similar steal.
//! - `--sweep` runs units x clients over {1k, 10k, 100k} x {1, 10, 100},
//!   then 10k fighting units beside 90k idle ones with 10 and 100 clients,
//!   and prints one table row and one JSON line per run.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use bevy::ecs::schedule::SingleThreadedExecutor;
use bevy::prelude::*;
use galaxy_net::*;
use galaxy_protocol::link_model::SplitMix64;
use galaxy_protocol::{
    CompressedCommand, DeltaReceiver, PlayerId, QuantizedUnit, UnitId, UnitIdList, WorldPos,
    WorldRect,
};
use galaxy_rts::sim::{RtsUnits, SimPlugin, SimWorld};
use galaxy_sim::SimConfig;

mod clients;
mod hostile;
mod layout;
mod memory;
mod noise;
mod report;
mod server;

use clients::*;
use layout::*;
use memory::*;
use report::*;
use server::*;

#[derive(Clone, Copy)]
struct Args {
    units: u64,
    clients: u64,
    seconds: f64,
    warmup: f64,
    loss: f64,
    battle_size: u64,
    budget_kbps: f64,
    /// Threads the server may use (0: all, the default; 1: one).
    server_threads: usize,
    /// Extra units at rest in a garrison nobody watches: they exist but
    /// never change, to show what units that exist (not move) cost.
    idle_units: u64,
    /// Attacking clients beside the fair ones (`hostile.rs`).
    hostile: u64,
    /// Spectators beside the players: clients that watch a battle and
    /// give no orders (what 100 of them cost the server).
    spectators: u64,
    /// The server's broadcast delay for spectators, in seconds
    /// (`--spectator-delay`): what keeping the delayed world costs.
    spectator_delay: f64,
    /// Spectators of one view share one encoding (`--no-sharing`: each
    /// has its own, to compare).
    share_spectators: bool,
    /// The attackers' thread's nice value (0: as the rest).
    attacker_nice: i32,
    /// Only this attack (`--attack NAME`), instead of all seven in turn.
    attack: Option<hostile::Attack>,
}

struct Cli {
    args: Args,
    json: bool,
    sweep: bool,
    /// Seconds of machine-noise probing before the runs (0: none).
    noise_probe: f64,
}

fn parse() -> Result<Cli, String> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: loadtest [--units N] [--clients N] [--seconds S] [--warmup S] [--loss P] \
                 [--battle-size N] [--budget-kbps K] [--server-threads N] [--idle-units N] \
                 [--hostile N] [--attack NAME] [--spectators N] [--spectator-delay S] [--no-sharing] [--attacker-nice N] [--noise-probe S] [--sweep] [--json]";
    if a.iter().any(|x| x == "--help" || x == "-h") {
        return Err(usage.into());
    }
    let known = [
        "--units",
        "--clients",
        "--seconds",
        "--warmup",
        "--loss",
        "--battle-size",
        "--budget-kbps",
        "--server-threads",
        "--idle-units",
        "--hostile",
        "--spectators",
        "--spectator-delay",
        "--attacker-nice",
        "--attack",
        "--noise-probe",
    ];
    let mut i = 0;
    while i < a.len() {
        match a[i].as_str() {
            "--json" | "--sweep" | "--no-sharing" => i += 1,
            f if known.contains(&f) => i += 2,
            other => return Err(format!("unknown argument {other:?}\n{usage}")),
        }
    }
    let get = |f: &str, d: f64| -> Result<f64, String> {
        match a.iter().position(|x| x == f) {
            Some(i) => a
                .get(i + 1)
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or(format!("{f} needs a non-negative number")),
            None => Ok(d),
        }
    };
    let attack = match a.iter().position(|x| x == "--attack") {
        None => None,
        Some(i) => {
            let name = a.get(i + 1).map(String::as_str).unwrap_or("");
            let attack = hostile::Attack::ALL.into_iter().find(|k| k.name() == name);
            let names: Vec<&str> = hostile::Attack::ALL.iter().map(|k| k.name()).collect();
            Some(attack.ok_or(format!("--attack needs one of {}", names.join(", ")))?)
        }
    };
    Ok(Cli {
        args: Args {
            units: get("--units", 20_000.0)?.max(2.0) as u64,
            clients: get("--clients", 32.0)?.max(1.0) as u64,
            seconds: get("--seconds", 20.0)?,
            warmup: get("--warmup", 3.0)?,
            loss: get("--loss", 0.05)?.min(1.0),
            battle_size: get("--battle-size", 1000.0)?.max(2.0) as u64,
            budget_kbps: get("--budget-kbps", NetworkConfig::default().client_budget_kbps)?,
            server_threads: get("--server-threads", 0.0)? as usize,
            idle_units: get("--idle-units", 0.0)? as u64,
            hostile: get("--hostile", 0.0)? as u64,
            spectators: get("--spectators", 0.0)? as u64,
            spectator_delay: get("--spectator-delay", 0.0)?,
            share_spectators: !a.iter().any(|x| x == "--no-sharing"),
            attacker_nice: get("--attacker-nice", 19.0)?.min(19.0) as i32,
            attack,
        },
        json: a.iter().any(|x| x == "--json"),
        sweep: a.iter().any(|x| x == "--sweep"),
        noise_probe: get("--noise-probe", 0.0)?,
    })
}

/// Shared between the threads: stop flag, and "warm-up over" flag.
struct Control {
    stop: AtomicBool,
    warmed: AtomicBool,
    ticks: AtomicU64,
}

/// How often the server thread prints a progress line.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// One run: server, conditioner and clients; returns the report.
fn run(args: Args) -> LoadReport {
    eprintln!(
        "load test: {} units in {} battles, {} clients, {} attackers, {} s after {} s warm-up, loss {}",
        args.units,
        Layout::new(&args).battles,
        args.clients,
        args.hostile,
        args.seconds,
        args.warmup,
        args.loss
    );
    let control = Arc::new(Control {
        stop: AtomicBool::new(false),
        warmed: AtomicBool::new(false),
        ticks: AtomicU64::new(0),
    });
    let (tx, rx) = mpsc::channel();
    let server = {
        let control = control.clone();
        std::thread::spawn(move || run_server(&args, tx, control))
    };
    let addr = rx.recv().expect("server started");
    let f = LinkFaults::lossy(args.loss, 0.0, 5, 5);
    let proxy = LinkConditioner::start(addr, Faults { up: f, down: f }, 3).expect("proxy");
    // Attackers connect straight to the server (no conditioner: their
    // messages arrive whole and at once), players after the fair ones.
    let attackers = (args.hostile > 0).then(|| {
        let control = control.clone();
        std::thread::spawn(move || {
            hostile::run_attackers(&args, args.hostile, args.clients + 1, addr, &control)
        })
    });
    let mut rss = (0.0, 0.0);
    let cpu_before = noise::cpu_jiffies();
    let (clients, fair_reconnects) = run_clients(&args, proxy.addr(), &control, &mut rss);
    let steal = noise::steal_pct(cpu_before, noise::cpu_jiffies());
    eprintln!(
        "conditioner: {} datagrams forwarded, {} dropped, {} waiting at the end; server at tick {}",
        proxy.stats().forwarded.load(Ordering::Relaxed),
        proxy.stats().dropped.load(Ordering::Relaxed),
        proxy.stats().queued.load(Ordering::Relaxed),
        control.ticks.load(Ordering::Relaxed),
    );
    control.stop.store(true, Ordering::Relaxed);
    let attacks = attackers
        .map(|t| t.join().expect("attackers' thread"))
        .unwrap_or_default();
    let report = server.join().expect("server thread");
    let (mut desynced, mut checked, mut superseded) = (0u64, 0u64, 0u64);
    for (player, acked) in &report.acked {
        let Some((_, _, receiver)) = clients.iter().find(|c| c.0 == *player) else {
            continue;
        };
        for (id, tick, state) in acked {
            match receiver.recorded(*id, *tick) {
                // A unit removed before this client had it: the client keeps
                // one compact tombstone at its newest removal tick, and the
                // server may have heard the ack of an earlier removal only.
                // The client does not show it, as the server believes.
                None if state.is_none()
                    && receiver.unit(*id).is_none()
                    && receiver.oldest_kept(*id).is_none() =>
                {
                    checked += 1
                }
                // The client moved on to newer states (whose acks were
                // still on the way when it stopped) and dropped this old
                // one from its history: nothing left to compare.
                None if receiver.oldest_kept(*id).is_some_and(|t| t > *tick) => superseded += 1,
                got => {
                    checked += 1;
                    if got.map(|s| s.copied()) != Some(*state) {
                        desynced += 1;
                        if desynced <= 5 {
                            eprintln!(
                                "desync: player {player} unit {id} acked at tick {tick}: server {state:?}, client {got:?} (client keeps from tick {:?})",
                                receiver.oldest_kept(*id)
                            );
                        }
                    }
                }
            }
        }
    }
    let mut kbps: Vec<f64> = clients
        .iter()
        .map(|c| c.1 as f64 * 8.0 / args.seconds.max(1e-9) / 1000.0)
        .collect();
    LoadReport {
        units: args.units,
        idle_units: args.idle_units,
        clients: args.clients,
        battles: Layout::new(&args).battles,
        seconds: args.seconds,
        loss: args.loss,
        budget_kbps: args.budget_kbps,
        ticks_measured: report.ticks,
        tick_ms_p50: report.tick_p50,
        tick_ms_p99: report.tick_p99,
        tick_ms_max: report.tick_max,
        kbps_per_client_p50: round1(quantile(&mut kbps, 0.5)),
        kbps_per_client_max: round1(quantile(&mut kbps, 1.0)),
        desynced_units: desynced,
        checked_units: checked,
        superseded_units: superseded,
        rejected_commands: report.rejected,
        orders_for_dead_units: report.orders_for_dead_units,
        units_alive_at_end: report.units,
        respawned: report.respawned,
        rss_mb_after_warmup: round1(rss.0),
        rss_mb_end: round1(rss.1),
        rss_growth_mb: round1(rss.1 - rss.0),
        server_heap_mb_after_warmup: round1(report.heap_mb.0),
        server_heap_mb_end: round1(report.heap_mb.1),
        server_heap_growth_mb: round1(report.heap_mb.1 - report.heap_mb.0),
        noise_chunk_ms_p50: None,
        noise_chunk_ms_p99: None,
        noise_chunk_ms_max: None,
        cpu_steal_pct: steal.map(round1),
        hostile: args.hostile,
        spectators: args.spectators,
        spectator_delay_secs: args.spectator_delay,
        shared_spectators: args.share_spectators,
        fair_reconnects,
        attackers_cpu_pct: attacks.cpu_pct,
        attacks: attacks.by_attack,
        server_refusals: report.refusals,
        phase_ms_mean: report.phase_ms_mean,
    }
}

fn main() {
    let cli = match parse() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let runs: Vec<Args> = if cli.sweep {
        let mut v = Vec::new();
        for units in [1_000, 10_000, 100_000] {
            for clients in [1, 10, 100] {
                v.push(Args {
                    units,
                    clients,
                    idle_units: 0,
                    hostile: 0,
                    spectators: 0,
                    ..cli.args
                });
            }
        }
        // Units that exist but do not change: 10,000 fighting beside
        // 90,000 at rest should cost what 10,000 alone cost.
        for clients in [10, 100] {
            v.push(Args {
                units: 10_000,
                clients,
                idle_units: 90_000,
                hostile: 0,
                spectators: 0,
                ..cli.args
            });
        }
        v
    } else {
        vec![cli.args]
    };
    let noise = (cli.noise_probe > 0.0).then(|| {
        let n = noise::probe(cli.noise_probe);
        eprintln!(
            "machine noise: a fixed 10 ms computation on one thread took p50 {:.1} / p99 {:.1} / max {:.1} ms ({} runs in {} s, before the load)",
            n.p50_ms, n.p99_ms, n.max_ms, n.chunks, cli.noise_probe
        );
        n
    });
    let total = runs.len();
    let mut reports = Vec::new();
    for (i, a) in runs.into_iter().enumerate() {
        if total > 1 {
            eprintln!("[{}/{total}]", i + 1);
        }
        let mut r = run(a);
        if let Some(n) = noise {
            r.noise_chunk_ms_p50 = Some(round1(n.p50_ms));
            r.noise_chunk_ms_p99 = Some(round1(n.p99_ms));
            r.noise_chunk_ms_max = Some(round1(n.max_ms));
        }
        if total > 1 {
            // Show progress as the sweep goes.
            header();
            row(&r);
        }
        reports.push(r);
    }
    header();
    for r in &reports {
        row(r);
    }
    for r in &reports {
        eprintln!(
            "{} units / {} clients: checked {} acknowledged unit states ({} superseded on the client, not comparable); {} alive at the end, {} respawned; {} orders named units already dead; {} ticks measured",
            r.units,
            r.clients,
            r.checked_units,
            r.superseded_units,
            r.units_alive_at_end,
            r.respawned,
            r.orders_for_dead_units,
            r.ticks_measured
        );
        if r.hostile > 0 {
            attack_table(r);
        }
    }
    if cli.json {
        for r in &reports {
            println!("{}", serde_json::to_string(r).expect("report serializes"));
        }
    }
}

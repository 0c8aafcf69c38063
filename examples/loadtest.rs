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
//!
//! - `tick_ms_*`: the server frames that ran a simulation tick, whole
//!   (receive, simulate, tag, replicate, send), after the warm-up (the
//!   last 1,200 of them in runs over a minute).
//! - `kbps_per_client_*`: message payload each client received.
//! - `rss_mb_*`: the whole process (server, clients, conditioner) after the
//!   warm-up and at the end; `rss_growth_mb` is the difference. The 100
//!   clients' baseline histories fill up during a run, so this grows even
//!   when the server's memory does not.
//! - `server_heap_mb_*`: the bytes the server thread holds on the heap
//!   (allocated minus freed by that thread, counted by this example's
//!   global allocator), after the warm-up and at the end: the server's own
//!   memory, apart from the clients'.
//! - `--idle-units N` adds N units at rest in a garrison nobody watches.
//! - `--sweep` runs units x clients over {1k, 10k, 100k} x {1, 10, 100},
//!   then 10k fighting units beside 90k idle ones with 10 and 100 clients,
//!   and prints one table row and one JSON line per run.

use std::alloc::{GlobalAlloc, Layout as AllocLayout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use bevy::ecs::schedule::SingleThreadedExecutor;
use bevy::prelude::*;
use galaxy_net::*;
use galaxy_protocol::link_model::SplitMix64;
use galaxy_protocol::{
    CompressedCommand, DeltaReceiver, PlayerId, UnitId, UnitIdList, WorldPos, WorldRect,
};
use galaxy_sim::{SimConfig, World};

/// The system allocator, counting what the server thread holds.
struct ServerHeap;

thread_local! {
    /// True on the server's thread.
    static ON_SERVER: Cell<bool> = const { Cell::new(false) };
}

/// Bytes allocated minus bytes freed by the server thread.
static SERVER_HEAP_BYTES: AtomicI64 = AtomicI64::new(0);

fn count_server(delta: i64) {
    // `try_with`: the thread-local may already be gone while a thread exits.
    if ON_SERVER.try_with(Cell::get).unwrap_or(false) {
        SERVER_HEAP_BYTES.fetch_add(delta, Ordering::Relaxed);
    }
}

// SAFETY: every call goes straight to `System`; the counting touches no memory it returns.
unsafe impl GlobalAlloc for ServerHeap {
    unsafe fn alloc(&self, layout: AllocLayout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on unchanged.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count_server(layout.size() as i64);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: AllocLayout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        count_server(-(layout.size() as i64));
    }

    unsafe fn alloc_zeroed(&self, layout: AllocLayout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count_server(layout.size() as i64);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: AllocLayout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count_server(new_size as i64 - layout.size() as i64);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: ServerHeap = ServerHeap;

fn server_heap_mb() -> f64 {
    SERVER_HEAP_BYTES.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0)
}

#[derive(Clone, Copy)]
struct Args {
    units: u64,
    clients: u64,
    seconds: f64,
    warmup: f64,
    loss: f64,
    battle_size: u64,
    budget_kbps: f64,
    /// Threads the server may use (0: all; 1: one).
    server_threads: usize,
    /// Extra units at rest in a garrison nobody watches: they exist but
    /// never change, to show what units that exist (not move) cost.
    idle_units: u64,
}

struct Cli {
    args: Args,
    json: bool,
    sweep: bool,
}

fn parse() -> Result<Cli, String> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: loadtest [--units N] [--clients N] [--seconds S] [--warmup S] [--loss P] \
                 [--battle-size N] [--budget-kbps K] [--server-threads N] [--idle-units N] \
                 [--sweep] [--json]";
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
    ];
    let mut i = 0;
    while i < a.len() {
        match a[i].as_str() {
            "--json" | "--sweep" => i += 1,
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
    Ok(Cli {
        args: Args {
            units: get("--units", 20_000.0)?.max(2.0) as u64,
            clients: get("--clients", 32.0)?.max(1.0) as u64,
            seconds: get("--seconds", 20.0)?,
            warmup: get("--warmup", 3.0)?,
            loss: get("--loss", 0.05)?.min(1.0),
            battle_size: get("--battle-size", 1000.0)?.max(2.0) as u64,
            budget_kbps: get("--budget-kbps", NetworkConfig::default().client_budget_kbps)?,
            server_threads: get("--server-threads", 1.0)? as usize,
            idle_units: get("--idle-units", 0.0)? as u64,
        },
        json: a.iter().any(|x| x == "--json"),
        sweep: a.iter().any(|x| x == "--sweep"),
    })
}

/// The AI player owning the idle garrison (`--idle-units`).
const GARRISON_OWNER: PlayerId = 2_000_000;

/// The layout of the world: battles, armies and who owns which unit.
struct Layout {
    battles: u64,
    per_army: u64,
    /// The clients watching each battle.
    watchers: Vec<Vec<u64>>,
}

impl Layout {
    fn new(a: &Args) -> Self {
        let battles = a.units.div_ceil(a.battle_size).max(1);
        let mut watchers = vec![Vec::new(); battles as usize];
        for c in 1..=a.clients {
            watchers[((c - 1) % battles) as usize].push(c);
        }
        Self {
            battles,
            per_army: (a.units / battles / 2).max(1),
            watchers,
        }
    }

    /// Units per row of an army's square formation (2 m apart).
    fn row(&self) -> i64 {
        (self.per_army as f64).sqrt().ceil() as i64
    }

    /// Where army `side` (0 or 1) of battle `b` stands: one battle every
    /// 8 km, the two armies 60 m apart (out of each other's weapon range:
    /// they fight when a player sends units over, and defend themselves).
    fn origin(&self, b: u64, side: u64) -> WorldPos {
        let gap = self.row() * 200 + 6_000;
        WorldPos::new(
            (b % 16) as i64 * 800_000,
            (b / 16) as i64 * 800_000 + side as i64 * gap,
        )
    }

    /// Formation slot `i` of army `side` in battle `b`.
    fn slot(&self, b: u64, side: u64, i: u64) -> WorldPos {
        let o = self.origin(b, side);
        let row = self.row();
        WorldPos::new(o.x + (i as i64 % row) * 200, o.y + (i as i64 / row) * 200)
    }

    /// The battle client `c` (1-based) watches.
    fn battle_of(&self, c: u64) -> u64 {
        (c - 1) % self.battles
    }

    /// Owner of unit `i` of army `side` in battle `b`: army 0 of a watched
    /// battle is shared among its clients; the rest are AI players.
    fn owner(&self, b: u64, side: u64, i: u64) -> PlayerId {
        let watchers = &self.watchers[b as usize];
        if side == 0 && !watchers.is_empty() {
            watchers[(i % watchers.len() as u64) as usize]
        } else {
            1_000_000 + b * 2 + side
        }
    }

    /// Every army as (battle, side).
    fn armies(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        (0..self.battles).flat_map(|b| [(b, 0), (b, 1)])
    }
}

/// One run's numbers (the JSON line has exactly these fields).
#[derive(serde::Serialize)]
struct LoadReport {
    units: u64,
    idle_units: u64,
    clients: u64,
    battles: u64,
    seconds: f64,
    loss: f64,
    budget_kbps: f64,
    ticks_measured: usize,
    tick_ms_p50: f32,
    tick_ms_p99: f32,
    tick_ms_max: f32,
    kbps_per_client_p50: f64,
    kbps_per_client_max: f64,
    desynced_units: u64,
    checked_units: u64,
    rejected_commands: u64,
    orders_for_dead_units: u64,
    units_alive_at_end: usize,
    respawned: u64,
    rss_mb_after_warmup: f64,
    rss_mb_end: f64,
    rss_growth_mb: f64,
    server_heap_mb_after_warmup: f64,
    server_heap_mb_end: f64,
    server_heap_growth_mb: f64,
}

/// A unit the server's sender says a client acknowledged: id, tick, state.
type AckedState = (UnitId, u64, Option<galaxy_protocol::QuantizedUnit>);

struct ServerReport {
    ticks: usize,
    tick_p50: f32,
    tick_p99: f32,
    tick_max: f32,
    /// Refusals other than orders for units that died on the way.
    rejected: u64,
    /// Orders naming units that had died by the time they arrived.
    orders_for_dead_units: u64,
    units: usize,
    respawned: u64,
    acked: Vec<(u64, Vec<AckedState>)>,
    /// Server heap MB after the warm-up and at the end.
    heap_mb: (f64, f64),
}

/// Shared between the threads: stop flag, and "warm-up over" flag.
struct Control {
    stop: AtomicBool,
    warmed: AtomicBool,
    ticks: AtomicU64,
}

fn run_server(
    args: &Args,
    addr_tx: mpsc::Sender<std::net::SocketAddr>,
    control: Arc<Control>,
) -> ServerReport {
    ON_SERVER.with(|on| on.set(true));
    let mut heap_mb = (0.0, 0.0);
    // The clients and the link conditioner keep this machine's other core
    // busy, so by default the server runs on one thread (simulation and
    // replication, `--server-threads 1`); a dedicated server on its own
    // machine spreads them over its cores (0).
    let config = NetworkConfig {
        port: 0,
        max_connections: args.clients as usize + 8,
        client_budget_kbps: args.budget_kbps,
        server_threads: args.server_threads,
        ..default()
    };
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .insert_resource(config.clone())
        .insert_resource(SimWorld(World::new(SimConfig {
            threads: args.server_threads,
            ..default()
        })))
        .add_plugins(GalaxyNetPlugin {
            mode: NetMode::Server,
        });
    let addr = start_server(app.world_mut(), &config, ServerAuth::Insecure, &[]).expect("bind");
    // The server's systems run on its own thread: Bevy's task pool is shared
    // by every app in this process, and a client waiting in it would run
    // server systems (and the server would wait for them).
    single_threaded(&mut app);
    let layout = Layout::new(args);
    // Every army's units, to replace the dead ones.
    let mut armies: Vec<(u64, u64, Vec<UnitId>)> = Vec::new();
    {
        let mut sim = app.world_mut().resource_mut::<SimWorld>();
        let side = (layout.per_army as f64).sqrt().ceil() as i64;
        for (b, s) in layout.armies() {
            let o = layout.origin(b, s);
            let ids = (0..layout.per_army)
                .map(|i| {
                    let at =
                        WorldPos::new(o.x + (i as i64 % side) * 200, o.y + (i as i64 / side) * 200);
                    sim.0.spawn_unit(layout.owner(b, s, i), (i % 3) as u8, at)
                })
                .collect();
            armies.push((b, s, ids));
        }
        // The garrison: far from every battle, 5 m apart, one owner.
        let row = (args.idle_units as f64).sqrt().ceil().max(1.0) as i64;
        for i in 0..args.idle_units as i64 {
            let at = WorldPos::new(
                -100_000_000 + (i % row) * 500,
                -100_000_000 + (i / row) * 500,
            );
            sim.0.spawn_unit(GARRISON_OWNER, (i % 3) as u8, at);
        }
    }
    addr_tx.send(addr).expect("main thread waits");
    // The server's frame rate, as the dedicated server's (120 Hz).
    let frame = Duration::from_secs_f64(1.0 / 120.0);
    let mut respawned = 0u64;
    let mut last_respawn = Instant::now();
    let mut warmed = false;
    let mut last_progress = (Instant::now(), 0u64);
    let mut alive: Vec<UnitId> = Vec::new();
    while !control.stop.load(Ordering::Relaxed) {
        let frame_start = Instant::now();
        app.update();
        let tick = app.world().resource::<SimWorld>().0.tick();
        control.ticks.store(tick, Ordering::Relaxed);
        if !warmed && control.warmed.load(Ordering::Relaxed) {
            app.world_mut().resource_mut::<TickTimes>().clear();
            warmed = true;
            last_progress = (Instant::now(), 0);
            heap_mb.0 = server_heap_mb();
        }
        if warmed && last_progress.0.elapsed() >= PROGRESS_EVERY {
            // Progress: the ticks since the last line.
            let times = app.world().resource::<TickTimes>();
            let new = (times.total() - last_progress.1).min(times.len() as u64) as usize;
            let mut recent: Vec<f64> = times
                .samples()
                .skip(times.len() - new)
                .map(f64::from)
                .collect();
            eprintln!(
                "  server tick {tick}: last {:.0} s tick p50 {:.1} ms p99 {:.1} ms ({} ticks), {} units, {respawned} respawned, server heap {:.0} MB, RSS {:.0} MB",
                last_progress.0.elapsed().as_secs_f64(),
                quantile(&mut recent, 0.5),
                quantile(&mut recent, 0.99),
                recent.len(),
                app.world().resource::<SimWorld>().0.unit_count(),
                server_heap_mb(),
                rss_mb()
            );
            last_progress = (Instant::now(), times.total());
        }
        if last_respawn.elapsed() >= Duration::from_millis(250) {
            last_respawn = Instant::now();
            let mut sim = app.world_mut().resource_mut::<SimWorld>();
            // The living, in id order: one walk instead of a lookup per slot.
            alive.clear();
            alive.extend(sim.0.units().map(|(id, _)| id));
            for (b, s, ids) in armies.iter_mut() {
                for (i, id) in ids.iter_mut().enumerate() {
                    if alive.binary_search(id).is_err() {
                        let (i, owner) = (i as u64, layout.owner(*b, *s, i as u64));
                        *id = sim
                            .0
                            .spawn_unit(owner, (i % 3) as u8, layout.slot(*b, *s, i));
                        respawned += 1;
                    }
                }
            }
        }
        std::thread::sleep(frame.saturating_sub(frame_start.elapsed()));
    }
    heap_mb.1 = server_heap_mb();
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
    let stats = w.resource::<NetworkStats>();
    let dead_orders = stats.rejected.get("unknown_unit").copied().unwrap_or(0);
    ServerReport {
        ticks: times.len(),
        tick_p50: times.quantile(0.5),
        tick_p99: times.quantile(0.99),
        tick_max: times.quantile(1.0),
        rejected: stats.rejected_total() - dead_orders,
        orders_for_dead_units: dead_orders,
        units: w.resource::<SimWorld>().0.unit_count(),
        respawned,
        acked,
        heap_mb,
    }
}

fn run_clients(
    args: &Args,
    proxy: std::net::SocketAddr,
    control: &Control,
    rss: &mut (f64, f64),
) -> Vec<(u64, u64, DeltaReceiver)> {
    let config = NetworkConfig {
        port: 0,
        ..default()
    };
    let layout = Layout::new(args);
    let mut apps: Vec<(u64, App)> = (1..=args.clients)
        .map(|p| {
            let mut app = App::new();
            let o = layout.origin(layout.battle_of(p), 0);
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
            // These clients are bots: they play over the network but do not
            // draw, so they skip the smoothing a renderer reads (measured on
            // its own by galaxy_net's smoothing tests).
            app.configure_sets(Update, SmoothingSet.run_if(|| false));
            // Each client runs on this thread alone, as one game would on
            // its own machine.
            single_threaded(&mut app);
            (p, app)
        })
        .collect();
    // Bots need no frame rate of their own: 30 rounds a second take every
    // update as it comes (20 Hz) and leave the CPU to the server.
    let frame = Duration::from_secs_f64(1.0 / 30.0);
    let mut rng = SplitMix64::new(9);
    let start = Instant::now();
    let mut last_round = 0.0;
    let mut received_at_warmup = vec![0u64; apps.len()];
    while start.elapsed().as_secs_f64() < args.warmup + args.seconds {
        let round_start = Instant::now();
        let t = start.elapsed().as_secs_f64();
        if !control.warmed.load(Ordering::Relaxed) && t >= args.warmup {
            rss.0 = rss_mb();
            for (i, (_, app)) in apps.iter().enumerate() {
                received_at_warmup[i] = app.world().resource::<NetworkStats>().bytes_received;
            }
            control.warmed.store(true, Ordering::Relaxed);
        }
        // Every client gives an order every two seconds, each at its own
        // moment (players do not click in step).
        let (before, now) = (last_round / 2.0, t / 2.0);
        last_round = t;
        for (p, app) in apps.iter_mut() {
            let phase = (*p % 40) as f64 / 40.0;
            let order = [now.floor() - 1.0, now.floor()]
                .iter()
                .any(|k| before < k + phase && k + phase <= now);
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
                // Somewhere between the two armies or into the enemy's.
                let (o, e) = (
                    layout.origin(layout.battle_of(*p), 0),
                    layout.origin(layout.battle_of(*p), 1),
                );
                let to = WorldPos::new(
                    o.x + rng.below(layout.row() as u64 * 200) as i64,
                    o.y + rng.below((e.y - o.y) as u64 + 4_000) as i64,
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
        std::thread::sleep(frame.saturating_sub(round_start.elapsed()));
    }
    rss.1 = rss_mb();
    apps.into_iter()
        .zip(received_at_warmup)
        .map(|((p, mut app), before)| {
            let bytes = app.world().resource::<NetworkStats>().bytes_received - before;
            let replica = app
                .world_mut()
                .remove_resource::<ClientReplica>()
                .expect("client plugin");
            (p, bytes, replica.receiver)
        })
        .collect()
}

/// Runs every schedule of `app` on the calling thread.
fn single_threaded(app: &mut App) {
    let mut schedules = app.world_mut().resource_mut::<Schedules>();
    for (_, schedule) in schedules.iter_mut() {
        schedule.set_executor(SingleThreadedExecutor::new());
    }
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

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// How often the server thread prints a progress line.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// One run: server, conditioner and clients; returns the report.
fn run(args: Args) -> LoadReport {
    eprintln!(
        "load test: {} units in {} battles, {} clients, {} s after {} s warm-up, loss {}",
        args.units,
        Layout::new(&args).battles,
        args.clients,
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
    let mut rss = (0.0, 0.0);
    let clients = run_clients(&args, proxy.addr(), &control, &mut rss);
    eprintln!(
        "conditioner: {} datagrams forwarded, {} dropped, {} waiting at the end; server at tick {}",
        proxy.stats().forwarded.load(Ordering::Relaxed),
        proxy.stats().dropped.load(Ordering::Relaxed),
        proxy.stats().queued.load(Ordering::Relaxed),
        control.ticks.load(Ordering::Relaxed),
    );
    control.stop.store(true, Ordering::Relaxed);
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
    }
}

fn header() {
    println!(
        "{:>7} {:>7} {:>7} {:>7} {:>5} {:>9} {:>9} {:>9} {:>11} {:>11} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "units",
        "idle",
        "clients",
        "battles",
        "loss",
        "tick p50",
        "tick p99",
        "tick max",
        "kbps/cl p50",
        "kbps/cl max",
        "desync",
        "checked",
        "RSS MB",
        "RSS grew",
        "heap MB",
        "heap grew"
    );
}

fn row(r: &LoadReport) {
    println!(
        "{:>7} {:>7} {:>7} {:>7} {:>5} {:>9.2} {:>9.2} {:>9.2} {:>11.1} {:>11.1} {:>8} {:>8} {:>9.0} {:>9.1} {:>9.0} {:>9.1}",
        r.units,
        r.idle_units,
        r.clients,
        r.battles,
        r.loss,
        r.tick_ms_p50,
        r.tick_ms_p99,
        r.tick_ms_max,
        r.kbps_per_client_p50,
        r.kbps_per_client_max,
        r.desynced_units,
        r.checked_units,
        r.rss_mb_end,
        r.rss_growth_mb,
        r.server_heap_mb_end,
        r.server_heap_growth_mb
    );
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
                ..cli.args
            });
        }
        v
    } else {
        vec![cli.args]
    };
    let total = runs.len();
    let mut reports = Vec::new();
    for (i, a) in runs.into_iter().enumerate() {
        if total > 1 {
            eprintln!("[{}/{total}]", i + 1);
        }
        let r = run(a);
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
            "{} units / {} clients: checked {} acknowledged unit states; {} alive at the end, {} respawned; {} orders named units already dead; {} ticks measured",
            r.units,
            r.clients,
            r.checked_units,
            r.units_alive_at_end,
            r.respawned,
            r.orders_for_dead_units,
            r.ticks_measured
        );
    }
    if cli.json {
        for r in &reports {
            println!("{}", serde_json::to_string(r).expect("report serializes"));
        }
    }
}

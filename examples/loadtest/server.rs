//! The server thread: the authoritative app, the respawns and the
//! progress lines.

use std::collections::BTreeMap;

use super::*;

/// A unit the server's sender says a client acknowledged: id, tick, state.
pub(crate) type AckedState = (UnitId, u64, Option<galaxy_protocol::QuantizedUnit>);

/// What the server thread reports when the run ends.
pub(crate) struct ServerReport {
    pub(crate) ticks: usize,
    pub(crate) tick_p50: f32,
    pub(crate) tick_p99: f32,
    pub(crate) tick_max: f32,
    /// Refusals other than orders for units that died on the way.
    pub(crate) rejected: u64,
    /// Orders naming units that had died by the time they arrived.
    pub(crate) orders_for_dead_units: u64,
    pub(crate) units: usize,
    pub(crate) respawned: u64,
    pub(crate) acked: Vec<(u64, Vec<AckedState>)>,
    /// Server heap MB after the warm-up and at the end.
    pub(crate) heap_mb: (f64, f64),
    /// What the server refused and why, disconnects included.
    pub(crate) refusals: Refusals,
    /// Mean ms of each phase over the measured tick frames.
    pub(crate) phase_ms_mean: BTreeMap<&'static str, f32>,
}

pub(crate) fn run_server(
    args: &Args,
    addr_tx: mpsc::Sender<std::net::SocketAddr>,
    control: Arc<Control>,
) -> ServerReport {
    let mut heap_mb = (0.0, 0.0);
    // By default (`--server-threads 0`) the server steps its simulation on
    // two threads and replicates clients on Bevy's compute pool, as a
    // dedicated server does; it shares the machine's two cores with the
    // clients and the link conditioner (about half a core between them).
    // `--server-threads 1` keeps it on one thread.
    let config = NetworkConfig {
        port: 0,
        max_connections: (args.clients + args.hostile + args.spectators) as usize + 8,
        client_budget_kbps: args.budget_kbps,
        server_threads: args.server_threads,
        spectator_delay_secs: args.spectator_delay,
        share_spectator_updates: args.share_spectators,
        ..default()
    };
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .insert_resource(config)
        .insert_resource(ServerTransport {
            auth: ServerAuth::Insecure,
            extra_public: Vec::new(),
        })
        .add_plugins((
            GalaxyServerPlugin {
                tick: TickPolicy::Manual,
            },
            NetcodeTransportPlugin,
            SimPlugin {
                config: SimConfig {
                    threads: args.server_threads,
                    ..default()
                },
                ..default()
            },
        ));
    let addr = app.world().resource::<ServerAddress>().0;
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
            // Where those frames' time went, on average.
            let parts = phase_split(times.phase_means(new));
            eprintln!(
                "  server tick {tick}: last {:.0} s tick p50 {:.1} ms p99 {:.1} ms ({} ticks), {} units, {respawned} respawned, server heap {:.0} MB, RSS {:.0} MB\n    mean ms per tick frame: {}",
                last_progress.0.elapsed().as_secs_f64(),
                quantile(&mut recent, 0.5),
                quantile(&mut recent, 0.99),
                recent.len(),
                app.world().resource::<SimWorld>().0.unit_count(),
                server_heap_mb(),
                rss_mb(),
                parts
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
    let replicated = w.resource::<ReplicatedUnits<QuantizedUnit>>();
    let acked = sessions
        .iter()
        .filter_map(|(client, s)| {
            let sender = replicated.sender(client)?;
            let list = sender
                .tracked_units()
                .filter_map(|id| sender.acked(id).map(|(t, u)| (id, t, u.copied())))
                .collect();
            Some((s.player(), list))
        })
        .collect();
    let times = w.resource::<TickTimes>();
    // What the tail is made of: catch-up frames (several ticks) or one slow part.
    let (n, ticks, phases) = times.slowest(0.01);
    eprintln!(
        "slowest 1 % of tick frames ({n}): {ticks:.1} ticks per frame; mean ms: {}",
        phase_split(phases)
    );
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
        phase_ms_mean: TickPhase::ALL
            .iter()
            .zip(times.phase_means(times.len()))
            .map(|(p, ms)| (p.name(), round1(f64::from(ms)) as f32))
            .collect(),
        refusals: Refusals {
            rejected: stats
                .rejected
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            decode_errors: stats
                .decode_errors
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            disconnected: stats.kicked_clients,
            state_checks: stats.state_checks,
            state_mismatches: stats.state_mismatches,
            units_healed: stats.units_healed,
            unit_updates: stats.unit_updates,
            shared_updates: stats.shared_updates,
        },
    }
}

/// "receive 0.1, commands 0.0, ..." for milliseconds per [`TickPhase`].
fn phase_split(ms: PhaseMs) -> String {
    let parts: Vec<String> = TickPhase::ALL
        .iter()
        .zip(ms)
        .map(|(p, ms)| format!("{} {ms:.1}", p.name()))
        .collect();
    parts.join(", ")
}

//! The clients' thread: every bot client app, 30 rounds per second.

use galaxy_net::tokens::{SPECTATOR_BIT, is_spectator, spectator_id};

use super::*;

pub(crate) fn run_clients(
    args: &Args,
    proxy: std::net::SocketAddr,
    control: &Control,
    rss: &mut (f64, f64),
) -> (Vec<(u64, u64, DeltaReceiver)>, u64) {
    // What this thread holds is the clients' memory, not the server's.
    ON_CLIENTS.with(|on| on.set(true));
    let config = NetworkConfig {
        port: 0,
        ..default()
    };
    let layout = Layout::new(args);
    // Players 1..=clients, then the spectators (watching battles in turn).
    let ids = (1..=args.clients).chain((1..=args.spectators).map(spectator_id));
    let mut apps: Vec<(u64, App)> = ids
        .map(|p| {
            let mut app = App::new();
            let o = layout.origin(layout.battle_of(p & !SPECTATOR_BIT), 0);
            // These clients are bots: they play over the network (every unit
            // in view is an entity) but do not draw, so they add no smoothing
            // (measured on its own by galaxy_net's smoothing tests).
            app.add_plugins(MinimalPlugins)
                .insert_resource(config.clone())
                .insert_resource(View(WorldRect::around(
                    WorldPos::new(o.x + 2_000, o.y + 2_000),
                    50_000,
                )))
                .insert_resource(ClientTransport::to(ClientAuth::Insecure {
                    player: p,
                    server: proxy,
                }))
                .add_plugins((GalaxyClientPlugin, NetcodeTransportPlugin))
                .replicate_unit::<RtsUnits>();
            assert!(
                !app.world().contains_resource::<TransportError>(),
                "client socket"
            );
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
            // Spectators watch; they give no orders.
            if order && !is_spectator(*p) {
                let mine: Vec<UnitId> = app
                    .world()
                    .resource::<ClientReplica<QuantizedUnit>>()
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
    // Times a fair client lost its connection and made a new one.
    let reconnects = apps
        .iter()
        .map(|(_, app)| u64::from(app.world().resource::<ClientConnector>().reconnects))
        .sum();
    let clients = apps
        .into_iter()
        .zip(received_at_warmup)
        .map(|((p, mut app), before)| {
            let bytes = app.world().resource::<NetworkStats>().bytes_received - before;
            let replica = app
                .world_mut()
                .remove_resource::<ClientReplica<QuantizedUnit>>()
                .expect("client plugin");
            (p, bytes, replica.receiver)
        })
        .collect();
    (clients, reconnects)
}

/// Runs every schedule of `app` on the calling thread.
pub(crate) fn single_threaded(app: &mut App) {
    let mut schedules = app.world_mut().resource_mut::<Schedules>();
    for (_, schedule) in schedules.iter_mut() {
        schedule.set_executor(SingleThreadedExecutor::new());
    }
}

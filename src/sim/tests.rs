//! The RTS as a user of `galaxy_net`, end to end over real UDP on
//! 127.0.0.1: the simulation's units become entities, their dead-reckoned
//! tracks reach the clients' entities, the simulation's authority refuses
//! orders for other players' units, and its combat events go out first.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bevy::prelude::*;
use galaxy_net::*;
use galaxy_protocol::{CombatEventType, CompressedCommand, QuantizedUnit, UnitIdList};

use super::*;

fn server() -> (App, std::net::SocketAddr) {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .insert_resource(NetworkConfig {
            port: 0,
            ..NetworkConfig::default()
        });
    let addr = crate::server::add_game_server(&mut app, ServerAuth::Insecure).expect("binds");
    (app, addr)
}

fn client(player: PlayerId, server: std::net::SocketAddr, view: WorldRect) -> App {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .insert_resource(View(view))
        .insert_resource(ClientTransport::to(ClientAuth::insecure(player, server)))
        .add_plugins((GalaxyClientPlugin, NetcodeTransportPlugin))
        .replicate_unit::<RtsUnits>();
    app
}

fn pump_until(
    apps: &mut [&mut App],
    secs: u64,
    mut done: impl FnMut(&mut [&mut App]) -> bool,
) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        for app in apps.iter_mut() {
            app.update();
        }
        if done(apps) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

fn spawn_row(server: &mut App, owner: PlayerId, kind: u8, origin: WorldPos, n: i64) -> Vec<UnitId> {
    let mut sim = server.world_mut().resource_mut::<SimWorld>();
    (0..n)
        .map(|i| {
            sim.0
                .spawn_unit(owner, kind, WorldPos::new(origin.x + i * 300, origin.y))
        })
        .collect()
}

/// The client's units as its entities hold them (state and tick of the
/// newest update), checked against its baseline store.
fn client_units(app: &mut App) -> BTreeMap<UnitId, QuantizedUnit> {
    let mut q = app
        .world_mut()
        .query::<(&NetUnit, &Replica<QuantizedUnit>, &UnitPosition)>();
    let world = app.world();
    q.iter(world)
        .map(|(id, r, p)| {
            assert_eq!(p.0, r.state.position_at(r.tick), "unit {}", id.0);
            (id.0, r.state)
        })
        .collect()
}

/// What the server shows clients: each unit's current track.
fn server_tracks(app: &App) -> BTreeMap<UnitId, QuantizedUnit> {
    let sim = &app.world().resource::<SimWorld>().0;
    let shown = app.world().resource::<ReplicatedUnits<QuantizedUnit>>();
    sim.units()
        .filter_map(|(id, _)| shown.snapshot(id).map(|s| (id, *s)))
        .collect()
}

#[test]
fn tracks_reach_the_clients_entities_and_foreign_orders_are_refused() {
    let (mut server, addr) = server();
    let mine = spawn_row(&mut server, 1, 0, WorldPos::new(0, 0), 8);
    let theirs = spawn_row(&mut server, 2, 0, WorldPos::new(0, 5_000), 6);
    let view = WorldRect::around(WorldPos::new(0, 0), 50_000);
    let mut c = client(1, addr, view);
    assert!(pump_until(&mut [&mut server, &mut c], 10, |a| {
        client_units(a[1]).len() == 14
    }));
    let before: BTreeMap<UnitId, WorldPos> = server_tracks(&server)
        .into_iter()
        .map(|(id, u)| (id, u.position()))
        .collect();
    let to = WorldPos::new(3_000, -2_000);
    for ids in [&mine, &theirs] {
        c.world_mut()
            .resource_mut::<OutgoingCommands>()
            .0
            .push(CompressedCommand::Move {
                units: UnitIdList::from_ids(ids.iter().copied()).unwrap(),
                to,
            });
    }
    // My units walk there and stop; the client's entities follow the
    // server's tracks exactly.
    let ok = pump_until(&mut [&mut server, &mut c], 20, |a| {
        let sim = &a[0].world().resource::<SimWorld>().0;
        mine.iter().all(|id| sim.unit(*id).unwrap().position == to)
            && client_units(a[1]) == server_tracks(a[0])
    });
    assert!(ok, "the client did not follow its units' walk");
    let rejected = &server.world().resource::<NetworkStats>().rejected;
    assert_eq!(rejected.get("not_owned"), Some(&6));
    let sim = &server.world().resource::<SimWorld>().0;
    for id in &theirs {
        assert_eq!(
            sim.unit(*id).unwrap().position,
            before[id],
            "a foreign unit moved"
        );
    }
    assert_eq!(server.world().resource::<SimStats>().commands_applied, 2);
}

#[test]
fn destroyed_units_are_announced_to_watchers_only_and_first() {
    let (mut server, addr) = server();
    // Two armies of tanks face to face, in range of each other.
    let red = spawn_row(&mut server, 1, 1, WorldPos::new(10_000, 10_000), 4);
    let blue = spawn_row(&mut server, 2, 1, WorldPos::new(10_000, 12_500), 4);
    let mut watcher = client(
        1,
        addr,
        WorldRect::around(WorldPos::new(10_000, 11_000), 50_000),
    );
    let mut elsewhere = client(
        3,
        addr,
        WorldRect::around(WorldPos::new(9_000_000, 0), 50_000),
    );
    let mut frame = 0u64;
    let mut announced: BTreeMap<u64, u64> = BTreeMap::new();
    let mut despawned: BTreeMap<u64, u64> = BTreeMap::new();
    let mut seen: BTreeSet<u64> = BTreeSet::new();
    let ok = pump_until(
        &mut [&mut server, &mut watcher, &mut elsewhere],
        60,
        |apps| {
            frame += 1;
            let events =
                std::mem::take(&mut apps[1].world_mut().resource_mut::<ReceivedEvents>().events);
            for e in events {
                if e.event_type == CombatEventType::UnitDestroyed {
                    announced.entry(e.participants[0]).or_insert(frame);
                }
            }
            let now: BTreeSet<u64> = client_units(apps[1]).into_keys().collect();
            for id in seen.difference(&now) {
                despawned.entry(*id).or_insert(frame);
            }
            seen.extend(now);
            let sim = &apps[0].world().resource::<SimWorld>().0;
            let dead: Vec<u64> = red
                .iter()
                .chain(&blue)
                .copied()
                .filter(|id| sim.unit(*id).is_none())
                .collect();
            dead.len() >= 3
                && dead
                    .iter()
                    .all(|id| announced.contains_key(id) && despawned.contains_key(id))
        },
    );
    assert!(
        ok,
        "deaths not announced: announced {announced:?}, despawned {despawned:?}"
    );
    for (id, at) in &despawned {
        assert!(
            announced.get(id).is_some_and(|a| a <= at),
            "unit {id} vanished before its event"
        );
    }
    assert!(
        elsewhere
            .world()
            .resource::<ReceivedEvents>()
            .events
            .is_empty()
    );
}

/// A frame that steps several ticks (catching up after a slow one) writes
/// the simulation into the entities once, and each walking unit's track is
/// within the dead-reckoning threshold of where the simulation has it.
#[test]
fn a_frame_of_several_ticks_mirrors_once_on_the_units_track() {
    let (mut server, _) = server();
    // Each frame advances 150 ms: three 20 Hz ticks.
    server.insert_resource(bevy::time::TimeUpdateStrategy::ManualDuration(
        Duration::from_millis(150),
    ));
    let ids = spawn_row(&mut server, 1, 0, WorldPos::new(10_000, 10_000), 30);
    {
        let mut sim = server.world_mut().resource_mut::<SimWorld>();
        let order = CompressedCommand::Move {
            units: UnitIdList::from_ids(ids.iter().copied()).unwrap(),
            to: WorldPos::new(60_000, 30_000),
        };
        assert_eq!(sim.0.apply_command(1, &order).applied, 30);
    }
    server.update();
    let threshold = f64::from(
        server
            .world()
            .resource::<NetworkConfig>()
            .reckoning_threshold_cm,
    );
    let mut frames_of_several = 0;
    for frame in 0..10 {
        let state = |app: &App| {
            let made = app
                .world()
                .resource::<ReplicatedUnits<QuantizedUnit>>()
                .snapshots_made();
            (app.world().resource::<ServerTick>().0, made)
        };
        let (tick0, made0) = state(&server);
        server.update();
        let (tick, made) = state(&server);
        assert_eq!(
            tick,
            server.world().resource::<SimWorld>().0.tick(),
            "the server tick is the sim's"
        );
        if tick - tick0 >= 2 {
            frames_of_several += 1;
        }
        // Every unit walks every tick, and is snapshotted once this frame.
        assert_eq!(made - made0, ids.len() as u64, "frame {frame}");
        let sim = &server.world().resource::<SimWorld>().0;
        let shown = server.world().resource::<ReplicatedUnits<QuantizedUnit>>();
        for id in &ids {
            let at = sim.unit(*id).expect("alive").position;
            let p = shown.snapshot(*id).expect("shown").position_at(tick);
            let (dx, dy) = ((p.x - at.x) as f64, (p.y - at.y) as f64);
            assert!(
                dx.hypot(dy) <= threshold + 1.0,
                "unit {id} at tick {tick}: shown {p:?}, simulated {at:?}"
            );
        }
    }
    assert!(
        frames_of_several >= 8,
        "{frames_of_several} frames of 2+ ticks"
    );
}

/// One tick rate for everything: `NetworkConfig::update_rate` starts the
/// `TickRate`, which sets Bevy's fixed timestep, the simulation's
/// `tick_hz` and so the units' speed per tick (the same per second).
#[test]
fn the_simulation_runs_at_the_servers_tick_rate() {
    for hz in [10.0, 20.0, 30.0] {
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .insert_resource(NetworkConfig {
                port: 0,
                update_rate: hz,
                ..NetworkConfig::default()
            });
        crate::server::add_game_server(&mut app, ServerAuth::Insecure).expect("binds");
        let world = app.world();
        assert_eq!(world.resource::<TickRate>().0, f64::from(hz));
        let step = world.resource::<Time<Fixed>>().timestep().as_secs_f64();
        assert!((step - 1.0 / f64::from(hz)).abs() < 1e-9, "{hz} Hz: {step}");
        let sim = &world.resource::<SimWorld>().0;
        assert_eq!(sim.config().tick_hz, hz as u32);
        // Infantry walks 5 m/s whatever the rate (to the whole centimetre
        // per tick: 17 cm at 30 Hz is 5.1 m/s).
        let per_sec = sim.kinds().get(0).speed_cm_per_tick as f32 * hz;
        assert!(
            (per_sec - 500.0).abs() <= hz / 2.0,
            "{hz} Hz: {per_sec} cm/s"
        );
    }
}

/// AI takeover over real UDP: a player drops during an attack; after the
/// grace period the server's AI commands their army, which fights back;
/// when the player reconnects, control returns and the AI orders nothing
/// more.
#[test]
fn a_dropped_players_army_fights_under_ai_until_they_return() {
    use crate::server::takeover::{AiTakeover, Armies};
    let (mut server, addr) = server();
    server.insert_resource(AiTakeover { grace_secs: 1.0 });
    let mine = spawn_row(&mut server, 1, 0, WorldPos::new(0, 0), 8);
    // Raiders 100 m away (past the army's sight), ordered onto it.
    let raiders = spawn_row(&mut server, 2, 0, WorldPos::new(0, 10_000), 8);
    let view = WorldRect::around(WorldPos::new(0, 10_000), 50_000);
    let connected =
        |app: &App| *app.world().resource::<ConnectionStatus>() == ConnectionStatus::Connected;
    let mut c = client(1, addr, view);
    assert!(pump_until(&mut [&mut server, &mut c], 10, |a| connected(
        a[1]
    )));
    let control = |app: &App| app.world().resource::<Armies>().get(1).copied();
    assert!(pump_until(&mut [&mut server], 5, |a| control(a[0])
        .is_some_and(|c| c.connected)));
    // The player drops (their client says goodbye and is gone).
    c.world_mut()
        .resource_mut::<bevy_renet::netcode::NetcodeClientTransport>()
        .disconnect();
    drop(c);
    {
        let mut sim = server.world_mut().resource_mut::<SimWorld>();
        let units = UnitIdList::from_ids(raiders.iter().copied()).unwrap();
        sim.0.apply_command(
            2,
            &CompressedCommand::AttackMove {
                units,
                to: WorldPos::new(0, 0),
            },
        );
    }
    // The AI takes the army over and orders it to fight (the raiders are
    // past its sight: standing, it would only wait for them).
    let ordered = |app: &App| {
        let sim = &app.world().resource::<SimWorld>().0;
        mine.iter()
            .filter_map(|&id| sim.unit(id))
            .filter(|u| matches!(u.order, galaxy_sim::Order::AttackMove(_)))
            .count()
    };
    assert!(
        pump_until(&mut [&mut server], 15, |a| control(a[0])
            .is_some_and(|c| c.ai && c.ai_orders >= 1)
            && ordered(a[0]) >= 1),
        "the AI never took over: {:?}",
        control(&server)
    );
    let fighting = |app: &App| {
        let sim = &app.world().resource::<SimWorld>().0;
        mine.iter()
            .filter_map(|&id| sim.unit(id))
            .filter(|u| u.target.is_some_and(|t| raiders.contains(&t)))
            .count()
    };
    assert!(
        pump_until(&mut [&mut server], 20, |a| fighting(a[0]) >= 1),
        "the army did not fight back"
    );
    // The player returns: control is theirs at once, and stays so.
    let mut c = client(1, addr, view);
    assert!(pump_until(&mut [&mut server, &mut c], 10, |a| connected(
        a[1]
    )
        && control(a[0]).is_some_and(|c| !c.ai)));
    let orders = control(&server).unwrap().ai_orders;
    // The server told the returning player what happened to their army.
    let told = |app: &App| app.world().resource::<ArmyControlStatus>().0;
    assert!(
        pump_until(&mut [&mut server, &mut c], 5, |a| told(a[1]).is_some()),
        "no army-control notice"
    );
    let notice = told(&c).unwrap();
    assert_eq!((notice.player_id, notice.takeovers), (1, 1));
    assert_eq!(u64::from(notice.ai_orders), orders);
    assert_eq!(notice.grace_ms, 1_000);
    pump_until(&mut [&mut server, &mut c], 3, |_| false);
    let after = control(&server).unwrap();
    assert_eq!(after.ai_orders, orders, "the AI ordered after the return");
    assert_eq!(
        (after.ai, after.connected, after.takeovers),
        (false, true, 1)
    );
}

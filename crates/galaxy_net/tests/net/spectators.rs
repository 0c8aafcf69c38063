//! Spectators: a token for `spectator_id(n)` is no player (its orders are
//! refused and counted), may look anywhere and, on a server with a
//! broadcast delay, sees the game (units and events) that much later than
//! the players do.

use std::time::Duration;

use galaxy_net::*;

use crate::harness::*;

/// A spectator (a token for `spectator_id(n)`) sees any place it looks at,
/// and every order it sends is refused and counted; nothing moves.
#[test]
fn a_spectator_sees_anywhere_and_its_orders_are_refused() {
    use galaxy_net::tokens::{is_spectator, spectator_id};
    let (mut server, addr) = server(ServerAuth::Insecure, &[]);
    let far = WorldPos::new(3_000_000, -2_000_000);
    let ships = spawn_row(&mut server, 4, far, 6);
    let id = spectator_id(1);
    assert!(is_spectator(id) && !is_spectator(4));
    let mut watcher = player(id, addr, view_at(far));
    assert!(pump_until(
        &mut [&mut server, &mut watcher],
        Duration::from_secs(10),
        |a| client_units(a[1]).len() == 6
    ));
    let before = server_units(&mut server);
    for _ in 0..3 {
        watcher
            .world_mut()
            .resource_mut::<OutgoingCommands>()
            .0
            .push(CompressedCommand::Move {
                units: UnitIdList::from_ids(ships.iter().copied()).unwrap(),
                to: WorldPos::new(0, 0),
            });
        pump_for(&mut [&mut server, &mut watcher], Duration::from_millis(200));
    }
    let refused = |s: &bevy::prelude::App| {
        s.world()
            .resource::<NetworkStats>()
            .rejected
            .get("spectator_order")
            .copied()
    };
    assert!(pump_until(
        &mut [&mut server, &mut watcher],
        Duration::from_secs(5),
        |a| refused(a[0]) == Some(3)
    ));
    // Refused before the game saw them: not even counted as not owned.
    let stats = server.world().resource::<NetworkStats>();
    assert_eq!(stats.rejected.get("not_owned"), None, "{stats:?}");
    assert_eq!(server_units(&mut server), before);
    assert!(connected(&watcher), "a spectator's orders are no offence");
}

/// With `spectator_delay_secs`, a spectator is shown each change and each
/// event no sooner than the delay's ticks after it happened, while a
/// player watching the same ships sees them at once; in the end both hold
/// the same ships.
#[test]
fn a_delayed_spectator_sees_changes_and_events_only_after_the_delay() {
    use galaxy_net::tokens::spectator_id;
    const DELAY_SECS: f64 = 2.0;
    let config = NetworkConfig {
        spectator_delay_secs: DELAY_SECS,
        ..config()
    };
    let delay = (DELAY_SECS * f64::from(config.update_rate)) as u64;
    let (mut server, addr) = server_with(config, ServerAuth::Insecure, &[]);
    let at = WorldPos::new(-4_000_000, 1_000_000);
    let ships = spawn_row(&mut server, 4, at, 5);
    let mut owner = player(4, addr, view_at(at));
    let mut watcher = player(spectator_id(2), addr, view_at(at));
    let tick = |a: &bevy::prelude::App| a.world().resource::<ServerTick>().0;
    assert!(pump_until(
        &mut [&mut server, &mut owner, &mut watcher],
        Duration::from_secs(20),
        |a| client_units(a[1]).len() == 5 && client_units(a[2]).len() == 5
    ));
    let sessions = server.world().resource::<Sessions>();
    assert!(sessions.iter().any(|(_, s)| s.delayed()));
    assert!(
        sessions.iter().any(|(_, s)| !s.delayed()),
        "players are live"
    );

    // Teleport one ship 40 m and sink another, at one tick.
    let (moved, sunk) = (ships[0], ships[4]);
    let to = WorldPos::new(at.x, at.y + 4_000);
    {
        let world = server.world_mut();
        let mut q = world.query::<(&NetUnit, &mut Position, &mut Hull)>();
        for (id, mut p, mut hull) in q.iter_mut(world) {
            if id.0 == moved {
                p.0 = to;
            } else if id.0 == sunk {
                hull.0 = 0;
            }
        }
    }
    let changed_at = tick(&server);
    let mut owner_saw = None;
    let mut owner_told = None;
    let mut watcher_saw = None;
    let mut watcher_told = None;
    let at_pos =
        |a: &mut bevy::prelude::App| client_units(a).get(&moved).map(|s| s.position) == Some(to);
    let told = |a: &mut bevy::prelude::App| {
        a.world_mut()
            .resource_mut::<ReceivedEvents>()
            .events
            .drain(..)
            .any(|e| e.event_type == CombatEventType::UnitDestroyed && e.participants == [sunk])
    };
    assert!(pump_until(
        &mut [&mut server, &mut owner, &mut watcher],
        Duration::from_secs(20),
        |a| {
            let now = tick(a[0]);
            if owner_saw.is_none() && at_pos(a[1]) {
                owner_saw = Some(now);
            }
            if owner_told.is_none() && told(a[1]) {
                owner_told = Some(now);
            }
            if watcher_saw.is_none() && at_pos(a[2]) {
                watcher_saw = Some(now);
            }
            if watcher_told.is_none() && told(a[2]) {
                watcher_told = Some(now);
            }
            watcher_saw.is_some() && watcher_told.is_some()
        }
    ));
    let (owner_saw, owner_told) = (owner_saw.unwrap(), owner_told.unwrap());
    let (watcher_saw, watcher_told) = (watcher_saw.unwrap(), watcher_told.unwrap());
    assert!(
        owner_saw < changed_at + delay && owner_told < changed_at + delay,
        "the player is not delayed: changed at {changed_at}, seen {owner_saw}, told {owner_told}"
    );
    assert!(
        watcher_saw >= changed_at + delay && watcher_told >= changed_at + delay,
        "the spectator is {delay} ticks late: changed at {changed_at}, seen {watcher_saw}, told {watcher_told}"
    );
    // In the end the spectator holds what the player holds.
    assert!(pump_until(
        &mut [&mut server, &mut owner, &mut watcher],
        Duration::from_secs(10),
        |a| {
            let shown = client_units(a[1]);
            shown.len() == 4 && shown == client_units(a[2])
        }
    ));
    // The spectator's replica is the world `delay` ticks ago: its newest
    // update is at least that far behind the server.
    let newest = watcher
        .world()
        .resource::<ClientReplica<ShipState>>()
        .receiver
        .newest_tick();
    assert!(
        newest + delay <= tick(&server),
        "newest {newest}, server {}",
        tick(&server)
    );
}

/// Spectators watching the same view share one encoding of their updates
/// (each update is written once, the same bytes go to all three) and all
/// converge; when the group's leader looks elsewhere it goes on alone and
/// the other two keep sharing, every one of them still exact.
#[test]
fn spectators_of_one_view_share_one_encoding_and_part_when_one_looks_away() {
    use galaxy_net::tokens::spectator_id;
    let (mut server, addr) = server(ServerAuth::Insecure, &[]);
    let at = WorldPos::new(2_000_000, 2_000_000);
    let away = WorldPos::new(-3_000_000, 0);
    let fleet = spawn_block(&mut server, 5, at, 5);
    spawn_row(&mut server, 6, away, 4);
    let view = view_at(at);
    let ids: Vec<u64> = (1..=3).map(spectator_id).collect();
    let mut a = player(ids[0], addr, view);
    let mut b = player(ids[1], addr, view);
    let mut c = player(ids[2], addr, view);
    set_goal(
        &mut server,
        &fleet,
        WorldPos::new(at.x + 2_000, at.y + 1_000),
    );
    let exact = |apps: &mut [&mut bevy::prelude::App], views: [WorldRect; 3]| {
        (0..3).all(|i| {
            let want = expected_for(apps[0], views[i]);
            !want.is_empty() && client_units(apps[i + 1]) == want
        })
    };
    // While the fleet sails, the three form one group.
    pump_for(
        &mut [&mut server, &mut a, &mut b, &mut c],
        Duration::from_secs(2),
    );
    let sessions = server.world().resource::<Sessions>();
    let leader = ids
        .iter()
        .copied()
        .find(|&id| {
            sessions
                .get(id)
                .is_some_and(|s| s.shares_updates_of().is_none())
        })
        .expect("a leader");
    for &id in &ids {
        let s = sessions.get(id).expect("connected");
        assert!(
            id == leader || s.shares_updates_of() == Some(leader),
            "{id} shares"
        );
    }
    let stats = server.world().resource::<NetworkStats>().clone();
    assert!(
        stats.shared_updates > stats.unit_updates,
        "two copies per encoding: {} shared, {} encoded",
        stats.shared_updates,
        stats.unit_updates
    );
    stop(&mut server, &fleet);
    assert!(pump_until(
        &mut [&mut server, &mut a, &mut b, &mut c],
        Duration::from_secs(10),
        |apps| exact(apps, [view; 3])
    ));

    // The leader looks elsewhere: it goes alone, the other two share on.
    let leader_at = ids.iter().position(|&id| id == leader).unwrap();
    let mut views = [view; 3];
    views[leader_at] = view_at(away);
    for (app, v) in [&mut a, &mut b, &mut c].into_iter().zip(views) {
        app.insert_resource(View(v));
    }
    set_goal(&mut server, &fleet, at);
    pump_for(
        &mut [&mut server, &mut a, &mut b, &mut c],
        Duration::from_secs(2),
    );
    stop(&mut server, &fleet);
    assert!(pump_until(
        &mut [&mut server, &mut a, &mut b, &mut c],
        Duration::from_secs(10),
        |apps| exact(apps, views)
    ));
    let sessions = server.world().resource::<Sessions>();
    assert_eq!(sessions.get(leader).unwrap().shares_updates_of(), None);
    let sharing: Vec<_> = ids
        .iter()
        .filter_map(|&id| sessions.get(id).unwrap().shares_updates_of())
        .collect();
    assert_eq!(sharing.len(), 1, "the other two still share");
    assert_ne!(sharing[0], leader);
}

/// A member of a spectator group whose acks stop arriving (its uplink
/// drops everything) must not hold back the others' baselines: it leaves
/// the group with a stream of its own, and the other spectator goes on
/// converging.
#[test]
fn a_silent_spectator_leaves_its_group_and_the_other_goes_on() {
    use galaxy_net::tokens::spectator_id;
    let (mut server, addr) = server(ServerAuth::Insecure, &[]);
    let proxy = LinkConditioner::start(addr, Faults::default(), 5).unwrap();
    let at = WorldPos::new(-1_000_000, 3_000_000);
    let fleet = spawn_block(&mut server, 5, at, 4);
    let view = view_at(at);
    let (silent, fair) = (spectator_id(1), spectator_id(2));
    let mut quiet = player(silent, proxy.addr(), view);
    let mut watcher = player(fair, addr, view);
    assert!(pump_until(
        &mut [&mut server, &mut quiet, &mut watcher],
        Duration::from_secs(10),
        |a| {
            let sessions = a[0].world().resource::<Sessions>();
            [silent, fair].iter().any(|&id| {
                sessions
                    .get(id)
                    .is_some_and(|s| s.shares_updates_of().is_some())
            })
        }
    ));
    // From now on none of the quiet one's acks reach the server.
    proxy.set_faults(Faults {
        up: LinkFaults {
            loss: 1.0,
            ..LinkFaults::NONE
        },
        down: LinkFaults::NONE,
    });
    set_goal(&mut server, &fleet, WorldPos::new(at.x + 2_000, at.y));
    pump_for(
        &mut [&mut server, &mut quiet, &mut watcher],
        Duration::from_secs(2),
    );
    stop(&mut server, &fleet);
    assert!(pump_until(
        &mut [&mut server, &mut quiet, &mut watcher],
        Duration::from_secs(10),
        |a| client_units(a[2]) == expected_for(a[0], view)
    ));
    let sessions = server.world().resource::<Sessions>();
    let quiet_session = sessions
        .get(silent)
        .expect("still connected: it left by lag");
    assert_eq!(quiet_session.shares_updates_of(), None);
    assert_eq!(sessions.get(fair).unwrap().shares_updates_of(), None);
}

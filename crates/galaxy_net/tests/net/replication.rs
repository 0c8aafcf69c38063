//! Units a client can see converge to the server's state as entities;
//! units elsewhere are never sent; moving the view brings them in; loss,
//! reconnects and catch-up frames do not break it.

use std::collections::BTreeSet;
use std::time::Duration;

use bevy::prelude::*;
use galaxy_net::*;

use crate::harness::*;

const FAR: WorldPos = WorldPos::new(5_000_000, -3_000_000); // 50 km, 30 km away

#[test]
fn clients_see_their_sectors_only_and_converge() {
    let (mut server, addr) = server(ServerAuth::Insecure, &[]);
    let near = spawn_row(&mut server, 1, WorldPos::new(10_000, 10_000), 30);
    let far = spawn_row(&mut server, 2, FAR, 20);
    let near_view = view_at(WorldPos::new(20_000, 10_000));
    let mut c1 = player(1, addr, near_view);
    let mut c2 = player(2, addr, view_at(FAR));
    let mut seen_by_2 = BTreeSet::new();
    let ok = pump_until(
        &mut [&mut server, &mut c1, &mut c2],
        Duration::from_secs(10),
        |apps| {
            seen_by_2.extend(client_units(apps[2]).into_keys());
            client_units(apps[1]).len() == 30 && client_units(apps[2]).len() == 20
        },
    );
    assert!(
        ok,
        "clients did not receive their units: {} / {}",
        client_units(&mut c1).len(),
        client_units(&mut c2).len()
    );
    assert_eq!(client_units(&mut c1), expected_for(&mut server, near_view));
    assert_eq!(client_units(&mut c1), replica_units(&c1));
    assert_eq!(client_units(&mut c2).into_keys().collect::<Vec<_>>(), far);
    // Client 2 never received a unit from the near sectors, and it received
    // far fewer bytes than a client that would see everything.
    assert!(!seen_by_2.is_empty());
    assert!(seen_by_2.iter().all(|id| far.contains(id)), "{seen_by_2:?}");
    assert!(seen_by_2.is_disjoint(&near.iter().copied().collect()));
    // Every unit-update byte client 2 received came from sectors of its own interest.
    let i2 = Interest::of(view_at(FAR));
    let by_sector = c2
        .world()
        .resource::<ClientReplica<ShipState>>()
        .bytes_by_sector
        .clone();
    assert!(by_sector.values().sum::<u64>() > 0);
    assert!(
        by_sector
            .keys()
            .all(|s| i2.near().any(|n| n == *s) || i2.far().any(|f| f == *s)),
        "{by_sector:?}"
    );
    let i1 = Interest::of(near_view);
    let near_bytes: u64 = by_sector
        .iter()
        .filter(|(s, _)| i1.near().any(|n| n == **s) || i1.far().any(|f| f == **s))
        .map(|(_, b)| b)
        .sum();
    assert_eq!(
        near_bytes, 0,
        "client 2 was sent bytes about the near sectors"
    );

    // Player 1 orders its ships to gather nearby; client 1 follows the server.
    let order = CompressedCommand::Move {
        units: UnitIdList::from_ids(near.iter().copied()).unwrap(),
        to: WorldPos::new(14_000, 11_000),
    };
    c1.world_mut()
        .resource_mut::<OutgoingCommands>()
        .0
        .push(order);
    let ok = pump_until(
        &mut [&mut server, &mut c1, &mut c2],
        Duration::from_secs(30),
        |apps| {
            let s = server_units(apps[0]);
            near.iter()
                .all(|id| s[id].position == WorldPos::new(14_000, 11_000))
                && client_units(apps[1]) == expected_for(apps[0], near_view)
        },
    );
    assert!(ok, "client 1 did not follow the move order");

    // Client 2 looks at the near sectors: they come in, its old units go.
    c2.insert_resource(View(near_view));
    let ok = pump_until(
        &mut [&mut server, &mut c1, &mut c2],
        Duration::from_secs(10),
        |apps| client_units(apps[2]) == expected_for(apps[0], near_view),
    );
    assert!(
        ok,
        "moving the view did not bring the units in: {}",
        client_units(&mut c2).len()
    );
    assert!(client_units(&mut c2).keys().all(|id| near.contains(id)));
}

#[test]
fn converges_through_a_lossy_link() {
    let (mut server, addr) = server(ServerAuth::Insecure, &[]);
    let faults = LinkFaults::lossy(0.2, 0.05, 10, 20);
    let proxy = LinkConditioner::start(
        addr,
        Faults {
            up: faults,
            down: faults,
        },
        11,
    )
    .unwrap();
    let units = spawn_block(&mut server, 1, WorldPos::new(0, 0), 8);
    let view = view_at(WorldPos::new(10_000, 0));
    let mut c = player(1, proxy.addr(), view);
    // Keep the ships busy: sail them back and forth while the link drops packets.
    let order = |to| CompressedCommand::Move {
        units: UnitIdList::from_ids(units.iter().copied()).unwrap(),
        to,
    };
    assert!(
        pump_until(
            &mut [&mut server, &mut c],
            Duration::from_secs(15),
            |apps| connected(apps[1])
        ),
        "never connected"
    );
    for leg in 0..3 {
        let to = WorldPos::new(if leg % 2 == 0 { 2_000 } else { 0 }, 500 * leg);
        c.world_mut()
            .resource_mut::<OutgoingCommands>()
            .0
            .push(order(to));
        pump_for(&mut [&mut server, &mut c], Duration::from_millis(700));
    }
    let ok = pump_until(
        &mut [&mut server, &mut c],
        Duration::from_secs(30),
        |apps| {
            let mut goals = apps[0].world_mut().query::<&Goal>();
            let sailing = goals.iter(apps[0].world()).any(|g| g.0.is_some());
            !sailing && client_units(apps[1]) == expected_for(apps[0], view)
        },
    );
    let (got, want) = (client_units(&mut c), expected_for(&mut server, view));
    let differ = want.iter().filter(|(id, u)| got.get(id) != Some(u)).count();
    let r = c
        .world()
        .resource::<ClientReplica<ShipState>>()
        .receiver
        .stats();
    assert!(
        ok,
        "client did not converge through 20% loss: {} of {} differ, {} extra; receiver {r:?}; client {:?}; server {:?}",
        differ,
        want.len(),
        got.keys().filter(|id| !want.contains_key(id)).count(),
        c.world().resource::<NetworkStats>(),
        server.world().resource::<NetworkStats>()
    );
    assert_eq!(want.len(), 64);
    assert!(
        proxy
            .stats()
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    assert!(
        proxy
            .stats()
            .duplicated
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
}

/// The server drops the client; while it is away some ships move and one
/// sinks. After the reconnect the client's entities are the server's
/// ships again: the same entities for the ships that are still there (no
/// duplicate), none for the one that sank.
#[test]
fn a_dropped_client_reconnects_and_resyncs_without_duplicates() {
    let (mut server, addr) = server(ServerAuth::Insecure, &[]);
    let units = spawn_block(&mut server, 1, WorldPos::new(0, 0), 5);
    let view = view_at(WorldPos::new(0, 0));
    let mut c = player(1, addr, view);
    assert!(pump_until(
        &mut [&mut server, &mut c],
        Duration::from_secs(10),
        |a| client_units(a[1]).len() == 25
    ));
    let entity_of = |app: &App, id: UnitId| app.world().resource::<ClientUnits>().get(id);
    let before = entity_of(&c, units[0]).expect("an entity");
    // The server drops the client, and the world changes while it is away.
    server
        .world_mut()
        .resource_mut::<bevy_renet::RenetServer>()
        .disconnect(1);
    set_goal(&mut server, &units[..10], WorldPos::new(500, 500));
    let sunk = units[24];
    {
        let mut q = server.world_mut().query::<(&NetUnit, &mut Hull)>();
        for (id, mut hull) in q.iter_mut(server.world_mut()) {
            if id.0 == sunk {
                hull.0 = 0;
            }
        }
    }
    let mut saw_connecting = false;
    let ok = pump_until(&mut [&mut server, &mut c], Duration::from_secs(20), |a| {
        saw_connecting |=
            *a[1].world().resource::<ConnectionStatus>() == ConnectionStatus::Connecting;
        a[1].world().resource::<ClientConnector>().reconnects >= 1
            && connected(a[1])
            && client_units(a[1]) == expected_for(a[0], view)
    });
    assert!(
        ok,
        "no resync after reconnecting: {} units",
        client_units(&mut c).len()
    );
    assert!(saw_connecting, "the client never showed Connecting");
    assert_eq!(
        client_units(&mut c).len(),
        24,
        "duplicated or missing units"
    );
    assert!(!client_units(&mut c).contains_key(&sunk));
    assert_eq!(entity_of(&c, units[0]), Some(before), "a new entity");
    let mut all = c.world_mut().query::<&NetUnit>();
    assert_eq!(all.iter(c.world()).count(), 24, "stray entities");
    assert_eq!(server.world().resource::<Sessions>().len(), 1);
}

#[test]
fn a_client_on_a_poor_link_can_ask_for_fewer_updates() {
    let (mut server, addr) = server(ServerAuth::Insecure, &[]);
    let units = spawn_block(&mut server, 1, WorldPos::new(0, 0), 4);
    let view = view_at(WorldPos::new(0, 0));
    let mut full = player(1, addr, view);
    let mut slow = player(2, addr, view);
    slow.insert_resource(MaxUpdateRate(5));
    // The rate is chosen here, not adapted to the (perfect) loopback link.
    slow.insert_resource(AutoUpdateRate::off());
    assert!(pump_until(
        &mut [&mut server, &mut full, &mut slow],
        Duration::from_secs(10),
        |a| { client_units(a[1]).len() == 16 && client_units(a[2]).len() == 16 }
    ));
    // Keep the ships sailing so every tick changes them.
    set_goal(&mut server, &units, WorldPos::new(100_000, 0));
    let count = |a: &App| a.world().resource::<NetworkStats>().unit_updates;
    let (f0, s0) = (count(&full), count(&slow));
    pump_for(
        &mut [&mut server, &mut full, &mut slow],
        Duration::from_secs(3),
    );
    let (f, s) = (count(&full) - f0, count(&slow) - s0);
    // 20 Hz against 5 Hz: about four times fewer updates (at least half as many, even on a busy machine).
    assert!(f >= 20 && s * 2 <= f, "full {f} updates, slow {s}");
    assert!(s >= 10, "the slow client still gets updates: {s}");
}

/// Units that sail out of a client's interest leave its world and stay
/// gone, though their last changes are still in the change log of the
/// sector they left (a far sector, visited only every few ticks).
#[test]
fn units_that_walk_out_of_interest_stay_gone() {
    let (mut server, addr) = server(ServerAuth::Insecure, &[]);
    let center = WorldPos::new(20_000, 10_000);
    let view = view_at(center);
    let interest = Interest::of(view);
    // The first centimetre east of the interest, on the view's row.
    let edge = (0..)
        .map(|k| center.x + k * 100)
        .find(|&x| !interest.contains_pos(WorldPos::new(x, center.y)))
        .expect("interest is bounded");
    // A column of ships 10-60 cm inside the edge, then a sail out east.
    let ids: Vec<_> = (0..24)
        .map(|i| {
            let at = WorldPos::new(edge - 10 - (i % 6) * 10, center.y + i * 300);
            spawn_ship(&mut server, 1, at)
        })
        .collect();
    let mut c = player(1, addr, view);
    let ok = pump_until(
        &mut [&mut server, &mut c],
        Duration::from_secs(10),
        |apps| {
            let seen = client_units(apps[1]);
            ids.iter().all(|id| seen.contains_key(id))
        },
    );
    assert!(ok, "the client did not get the units");
    set_goal(&mut server, &ids, WorldPos::new(edge + 5_000, center.y));
    let ok = pump_until(
        &mut [&mut server, &mut c],
        Duration::from_secs(10),
        |apps| {
            let s = server_units(apps[0]);
            ids.iter().all(|id| !interest.contains_pos(s[id].position))
                && client_units(apps[1]) == expected_for(apps[0], view)
        },
    );
    // Give a stale re-send time to arrive, then look again.
    pump_for(&mut [&mut server, &mut c], Duration::from_secs(2));
    let seen = client_units(&mut c);
    let held: Vec<_> = ids.iter().filter(|id| seen.contains_key(id)).collect();
    assert!(ok && held.is_empty(), "the client still holds {held:?}");
    assert_eq!(client_units(&mut c), expected_for(&mut server, view));
}

/// A frame that steps several fixed ticks (catching up after a slow one)
/// makes one snapshot per changed unit, at its last tick, not one per tick.
#[test]
fn a_frame_of_several_ticks_snapshots_once() {
    let (mut server, _) = server(ServerAuth::Insecure, &[]);
    // Each frame advances 150 ms: three 20 Hz ticks.
    server.insert_resource(bevy::time::TimeUpdateStrategy::ManualDuration(
        Duration::from_millis(150),
    ));
    let ids = spawn_row(&mut server, 1, WorldPos::new(10_000, 10_000), 30);
    set_goal(&mut server, &ids, WorldPos::new(60_000, 30_000));
    server.update();
    let mut frames_of_several = 0;
    for frame in 0..10 {
        let state = |app: &App| {
            (
                app.world().resource::<ServerTick>().0,
                app.world()
                    .resource::<ReplicatedUnits<ShipState>>()
                    .snapshots_made(),
            )
        };
        let (tick0, made0) = state(&server);
        server.update();
        let (tick, made) = state(&server);
        if tick - tick0 >= 2 {
            frames_of_several += 1;
        }
        // Every ship sails every tick, and is snapshotted once this frame.
        assert_eq!(made - made0, ids.len() as u64, "frame {frame}");
        let truth = server_units(&mut server);
        let replicated = server.world().resource::<ReplicatedUnits<ShipState>>();
        for id in &ids {
            assert_eq!(
                replicated.snapshot(*id),
                Some(&truth[id]),
                "unit {id} at tick {tick}"
            );
        }
    }
    assert!(
        frames_of_several >= 8,
        "{frames_of_several} frames of 2+ ticks"
    );
}

/// A view over more units than a client's budget can take is scanned a
/// few sectors a tick (near ones first), not all at once, and the client
/// still gets every unit: a view change costs the server what the client
/// can receive, not what its view holds.
#[test]
fn a_crowded_view_is_scanned_over_several_ticks_and_converges() {
    let (mut server, addr) = server_with(
        NetworkConfig {
            client_budget_kbps: 64.0,
            ..config()
        },
        ServerAuth::Insecure,
        &[],
    );
    // Three 400-unit blocks in three sectors, each past one tick's
    // allowance (256 units at 64 kbps).
    let mut all = Vec::new();
    for origin in [
        WorldPos::new(10_000, 10_000),
        WorldPos::new(110_000, 10_000),
        WorldPos::new(10_000, 110_000),
    ] {
        all.extend(spawn_block(&mut server, 1, origin, 20));
    }
    let view = view_at(WorldPos::new(100_000, 100_000));
    let mut c = player(1, addr, view);
    let ok = pump_until(
        &mut [&mut server, &mut c],
        Duration::from_secs(20),
        |apps| client_units(apps[1]).len() == all.len(),
    );
    assert!(
        ok,
        "the client holds {} of {}",
        client_units(&mut c).len(),
        all.len()
    );
    assert_eq!(client_units(&mut c), expected_for(&mut server, view));
    let deferred = server.world().resource::<NetworkStats>().deferred_scans;
    assert!(deferred >= 2, "whole scans put off: {deferred}");
}

/// A client on the mobile profile asks for 32 kbps: the server holds it
/// to that (while a desktop client beside it gets the server's 256 kbps)
/// and the client still converges once the ships stop.
#[test]
fn a_mobile_client_is_held_to_its_profiles_budget_and_converges() {
    let (mut server, addr) = server(ServerAuth::Insecure, &[]);
    let origin = WorldPos::new(10_000, 10_000);
    let ships = spawn_block(&mut server, 1, origin, 20);
    let view = view_at(WorldPos::new(20_000, 20_000));
    let mut desktop = player(1, addr, view);
    let mut mobile = player_with(2, addr, view, config().with_profile(LinkProfile::Mobile));
    assert!(
        pump_until(
            &mut [&mut server, &mut desktop, &mut mobile],
            Duration::from_secs(15),
            |apps| client_units(apps[1]).len() == 400 && client_units(apps[2]).len() == 400
        ),
        "the clients did not get their ships"
    );
    let bytes = |app: &App| app.world().resource::<NetworkStats>().bytes_received;
    let tick = |app: &App| app.world().resource::<ServerTick>().0;
    let (t0, d0, m0) = (tick(&server), bytes(&desktop), bytes(&mobile));
    // Turn every ship every few ticks: far more change than 32 kbps holds.
    let mut last_turn = 0;
    let turns = [WorldPos::new(60_000, 10_000), WorldPos::new(10_000, 60_000)];
    pump_until(
        &mut [&mut server, &mut desktop, &mut mobile],
        Duration::from_secs(20),
        |apps| {
            let now = tick(apps[0]);
            if now >= last_turn + 3 {
                last_turn = now;
                set_goal(apps[0], &ships, turns[(now / 3 % 2) as usize]);
            }
            now >= t0 + 80
        },
    );
    let ticks = tick(&server) - t0;
    let (desktop_bytes, mobile_bytes) = (bytes(&desktop) - d0, bytes(&mobile) - m0);
    // 32 kbps at 20 Hz is 200 bytes a tick; the budget may overshoot by one
    // message and carry a few ticks of saved credit.
    let allowed = (ticks + 4) * 200 + 1_200;
    assert!(
        mobile_bytes <= allowed,
        "mobile received {mobile_bytes} B in {ticks} ticks (allowed {allowed})"
    );
    assert!(
        desktop_bytes > 2 * mobile_bytes,
        "desktop {desktop_bytes} B, mobile {mobile_bytes} B: the change was not over the mobile budget"
    );
    // Once the ships stop, the mobile client catches up.
    stop(&mut server, &ships);
    let ok = pump_until(
        &mut [&mut server, &mut desktop, &mut mobile],
        Duration::from_secs(30),
        |apps| {
            let server_ships = server_units(apps[0]);
            client_units(apps[2]) == server_ships && client_units(apps[1]) == server_ships
        },
    );
    assert!(ok, "the mobile client did not converge");
}

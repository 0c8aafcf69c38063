//! Units a client can see converge to the server's state; units elsewhere
//! are never sent; moving the view brings them in; loss does not break it.

use std::collections::BTreeSet;
use std::time::Duration;

use galaxy_net::*;
use galaxy_protocol::{CompressedCommand, UnitIdList, WorldPos};

use crate::harness::*;

const FAR: WorldPos = WorldPos::new(5_000_000, -3_000_000); // 50 km, 30 km away

#[test]
fn clients_see_their_sectors_only_and_converge() {
    let (mut server, addr) = server(ServerAuth::Insecure, &[]);
    let near = spawn_row(&mut server, 1, WorldPos::new(10_000, 10_000), 30);
    let far = spawn_row(&mut server, 2, FAR, 20);
    let near_view = view_at(WorldPos::new(20_000, 10_000));
    let mut c1 = client(
        1,
        ClientAuth::Insecure {
            player: 1,
            server: addr,
        },
        near_view,
    );
    let mut c2 = client(
        2,
        ClientAuth::Insecure {
            player: 2,
            server: addr,
        },
        view_at(FAR),
    );
    let mut seen_by_2 = BTreeSet::new();
    let ok = pump_until(
        &mut [&mut server, &mut c1, &mut c2],
        Duration::from_secs(10),
        |apps| {
            let c2 = &mut apps[2];
            seen_by_2.extend(
                c2.world()
                    .resource::<ClientReplica>()
                    .receiver
                    .units()
                    .map(|(id, _)| id),
            );
            client_units(apps[1]).len() == 30 && client_units(apps[2]).len() == 20
        },
    );
    assert!(
        ok,
        "clients did not receive their units: {} / {}",
        client_units(&c1).len(),
        client_units(&c2).len()
    );
    assert_eq!(client_units(&c1), expected_for(&server, near_view));
    assert_eq!(client_units(&c2).keys().copied().collect::<Vec<_>>(), far);
    // Client 2 never received a unit from the near sectors, and it received
    // far fewer bytes than a client that would see everything.
    assert!(!seen_by_2.is_empty());
    assert!(seen_by_2.iter().all(|id| far.contains(id)), "{seen_by_2:?}");
    assert!(seen_by_2.is_disjoint(&near.iter().copied().collect()));
    // Every unit-update byte client 2 received came from sectors of its own interest.
    let (n2, f2) = galaxy_net::interest::interest(view_at(FAR));
    let by_sector = c2
        .world()
        .resource::<ClientReplica>()
        .bytes_by_sector
        .clone();
    assert!(by_sector.values().sum::<u64>() > 0);
    assert!(
        by_sector.keys().all(|s| n2.contains(s) || f2.contains(s)),
        "{by_sector:?}"
    );
    let (n1, f1) = galaxy_net::interest::interest(near_view);
    let near_bytes: u64 = by_sector
        .iter()
        .filter(|(s, _)| n1.contains(s) || f1.contains(s))
        .map(|(_, b)| b)
        .sum();
    assert_eq!(
        near_bytes, 0,
        "client 2 was sent bytes about the near sectors"
    );

    // Player 1 orders its units to gather nearby (infantry walks 5 m/s); client 1 follows the server.
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
        Duration::from_secs(20),
        |apps| {
            let s = server_units(apps[0]);
            near.iter()
                .all(|id| s[id].position() == WorldPos::new(14_000, 11_000))
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
        client_units(&c2).len()
    );
    assert!(client_units(&c2).keys().all(|id| near.contains(id)));
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
    let mut c = client(
        1,
        ClientAuth::Insecure {
            player: 1,
            server: proxy.addr(),
        },
        view,
    );
    // Keep the units busy: march them back and forth while the link drops packets.
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
            let s = server_units(apps[0]);
            units.iter().all(|id| {
                !matches!(
                    apps[0]
                        .world()
                        .resource::<SimWorld>()
                        .0
                        .unit(*id)
                        .map(|u| u.order),
                    Some(galaxy_sim::Order::Move(_))
                )
            }) && client_units(apps[1]) == expected_for(apps[0], view)
                && !s.is_empty()
        },
    );
    let (got, want) = (client_units(&c), expected_for(&server, view));
    let differ = want.iter().filter(|(id, u)| got.get(id) != Some(u)).count();
    let r = c.world().resource::<ClientReplica>().receiver.stats();
    assert!(
        ok,
        "client did not converge through 20% loss: {} of {} differ, {} extra; receiver {r:?}; client {:?}; server {:?}",
        differ,
        want.len(),
        got.keys().filter(|id| !want.contains_key(id)).count(),
        c.world().resource::<NetworkStats>(),
        server.world().resource::<NetworkStats>()
    );
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

#[test]
fn a_dropped_client_reconnects_and_resyncs_without_duplicates() {
    let (mut server, addr) = server(ServerAuth::Insecure, &[]);
    let units = spawn_block(&mut server, 1, WorldPos::new(0, 0), 5);
    let view = view_at(WorldPos::new(0, 0));
    let mut c = client(
        1,
        ClientAuth::Insecure {
            player: 1,
            server: addr,
        },
        view,
    );
    assert!(pump_until(
        &mut [&mut server, &mut c],
        Duration::from_secs(10),
        |a| client_units(a[1]).len() == 25
    ));
    // The server drops the client, and the world changes while it is away.
    server
        .world_mut()
        .resource_mut::<bevy_renet::RenetServer>()
        .disconnect(1);
    let order = CompressedCommand::Move {
        units: UnitIdList::from_ids(units.iter().copied().take(10)).unwrap(),
        to: WorldPos::new(500, 500),
    };
    server
        .world_mut()
        .resource_mut::<SimWorld>()
        .0
        .apply_command(1, &order);
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
        client_units(&c).len()
    );
    assert!(saw_connecting, "the client never showed Connecting");
    assert_eq!(client_units(&c).len(), 25, "duplicated or missing units");
    assert_eq!(server.world().resource::<Sessions>().0.len(), 1);
}

#[test]
fn a_client_on_a_poor_link_can_ask_for_fewer_updates() {
    let (mut server, addr) = server(ServerAuth::Insecure, &[]);
    let units = spawn_block(&mut server, 1, WorldPos::new(0, 0), 4);
    let view = view_at(WorldPos::new(0, 0));
    let mut full = client(
        1,
        ClientAuth::Insecure {
            player: 1,
            server: addr,
        },
        view,
    );
    let mut slow = client(
        2,
        ClientAuth::Insecure {
            player: 2,
            server: addr,
        },
        view,
    );
    slow.insert_resource(MaxUpdateRate(5));
    // The rate is chosen here, not adapted to the (perfect) loopback link.
    slow.insert_resource(AutoUpdateRate::off());
    assert!(pump_until(
        &mut [&mut server, &mut full, &mut slow],
        Duration::from_secs(10),
        |a| { client_units(a[1]).len() == 16 && client_units(a[2]).len() == 16 }
    ));
    // Keep the units zigzagging so every tick changes them (a unit walking
    // straight is dead-reckoned and sends nothing).
    let walk = |to| CompressedCommand::Move {
        units: UnitIdList::from_ids(units.iter().copied()).unwrap(),
        to,
    };
    let before = |a: &bevy::prelude::App| a.world().resource::<NetworkStats>().unit_updates;
    let (f0, s0) = (before(&full), before(&slow));
    for i in 0..60 {
        let y = if i % 2 == 0 { 50_000 } else { -50_000 };
        server
            .world_mut()
            .resource_mut::<SimWorld>()
            .0
            .apply_command(1, &walk(WorldPos::new(100_000, y)));
        pump_for(
            &mut [&mut server, &mut full, &mut slow],
            Duration::from_millis(50),
        );
    }
    let (f, s) = (before(&full) - f0, before(&slow) - s0);
    // 20 Hz against 5 Hz: about four times fewer updates (at least half as many, even on a busy machine).
    assert!(f >= 20 && s * 2 <= f, "full {f} updates, slow {s}");
    assert!(s >= 10, "the slow client still gets updates: {s}");
}

/// Units that walk out of a client's interest leave its world and stay
/// gone, though their last changes are still in the change log of the
/// sector they left (a far sector, visited only every few ticks).
#[test]
fn units_that_walk_out_of_interest_stay_gone() {
    let (mut server, addr) = server(ServerAuth::Insecure, &[]);
    let center = WorldPos::new(20_000, 10_000);
    let view = view_at(center);
    let (near, far) = galaxy_net::interest::interest(view);
    let inside = |p: WorldPos| {
        galaxy_net::interest::in_interest(galaxy_protocol::SectorId::at(p), &near, &far)
    };
    // The first centimetre east of the interest, on the view's row.
    let edge = (0..)
        .map(|k| center.x + k * 100)
        .find(|&x| !inside(WorldPos::new(x, center.y)))
        .expect("interest is bounded");
    // A column of units 10-60 cm inside the edge, then a walk out east.
    let ids: Vec<_> = {
        let mut sim = server.world_mut().resource_mut::<SimWorld>();
        (0..24)
            .map(|i| {
                let at = WorldPos::new(edge - 10 - (i % 6) * 10, center.y + i * 300);
                sim.0.spawn_unit(1, 0, at)
            })
            .collect()
    };
    let mut c = client(
        1,
        ClientAuth::Insecure {
            player: 1,
            server: addr,
        },
        view,
    );
    let ok = pump_until(
        &mut [&mut server, &mut c],
        Duration::from_secs(10),
        |apps| ids.iter().all(|id| client_units(apps[1]).contains_key(id)),
    );
    assert!(ok, "the client did not get the units");
    let order = CompressedCommand::Move {
        units: UnitIdList::from_ids(ids.iter().copied()).unwrap(),
        to: WorldPos::new(edge + 5_000, center.y),
    };
    let out = server
        .world_mut()
        .resource_mut::<SimWorld>()
        .0
        .apply_command(1, &order);
    assert_eq!((out.not_owned, out.unknown), (0, 0));
    let ok = pump_until(
        &mut [&mut server, &mut c],
        Duration::from_secs(10),
        |apps| {
            let s = server_units(apps[0]);
            ids.iter().all(|id| !inside(s[id].position()))
                && client_units(apps[1]) == expected_for(apps[0], view)
        },
    );
    // Give a stale re-send time to arrive, then look again.
    pump_for(&mut [&mut server, &mut c], Duration::from_secs(2));
    let held: Vec<_> = ids
        .iter()
        .filter(|id| client_units(&c).contains_key(id))
        .collect();
    assert!(ok && held.is_empty(), "the client still holds {held:?}");
    assert_eq!(client_units(&c), expected_for(&server, view));
}

/// A frame that steps several fixed ticks (catching up after a slow one)
/// mirrors once, at its last tick: each walking unit is dead-reckoned once
/// per frame, not once per tick, and its track is where the simulation has
/// it at that tick.
#[test]
fn a_frame_of_several_ticks_mirrors_once() {
    let (mut server, _) = server(ServerAuth::Insecure, &[]);
    // Each frame advances 150 ms: three 20 Hz ticks.
    server.insert_resource(bevy::time::TimeUpdateStrategy::ManualDuration(
        Duration::from_millis(150),
    ));
    let ids = spawn_row(&mut server, 1, WorldPos::new(10_000, 10_000), 30);
    let order = CompressedCommand::Move {
        units: UnitIdList::from_ids(ids.iter().copied()).unwrap(),
        to: WorldPos::new(60_000, 30_000),
    };
    let out = server
        .world_mut()
        .resource_mut::<SimWorld>()
        .0
        .apply_command(1, &order);
    assert_eq!(out.applied, 30);
    server.update();
    let threshold = f64::from(
        server
            .world()
            .resource::<NetworkConfig>()
            .reckoning_threshold_cm,
    );
    let mut frames_of_several = 0;
    for frame in 0..10 {
        let state = |app: &bevy::app::App| {
            let tick = app.world().resource::<SimWorld>().0.tick();
            (
                tick,
                app.world().resource::<ReplicatedUnits>().stats().observed,
            )
        };
        let (tick0, observed0) = state(&server);
        server.update();
        let (tick, observed) = state(&server);
        if tick - tick0 >= 2 {
            frames_of_several += 1;
        }
        // Every unit walks every tick, and is reckoned once this frame.
        assert_eq!(observed - observed0, ids.len() as u64, "frame {frame}");
        let sim = &server.world().resource::<SimWorld>().0;
        let replicated = server.world().resource::<ReplicatedUnits>();
        for id in &ids {
            let at = sim.unit(*id).expect("alive").position;
            let shown = replicated.track(*id).expect("mirrored").position_at(tick);
            let (dx, dy) = ((shown.x - at.x) as f64, (shown.y - at.y) as f64);
            assert!(
                dx.hypot(dy) <= threshold + 1.0,
                "unit {id} at tick {tick}: shown {shown:?}, simulated {at:?}"
            );
        }
    }
    assert!(
        frames_of_several >= 8,
        "{frames_of_several} frames of 2+ ticks"
    );
}

//! A player's army walks from one server's sector into a neighbour's, and
//! the player follows it and keeps playing.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bevy::prelude::App;
use galaxy_cluster::NatsServer;
use galaxy_net::{OutgoingCommands, View};
use galaxy_protocol::{CompressedCommand, SectorId, UnitId, UnitIdList, WorldPos, WorldRect};
use galaxy_sim::is_structure;

use crate::harness::*;

/// Server 1's bot: the player our client plays as.
const PLAYER: u64 = 1_000_000 + 1000;
const UNITS: u32 = 30;
/// Kind 2 is the fast one (12 m/s).
const FAST: u8 = 2;

fn own(app: &App) -> BTreeMap<UnitId, (f64, f64, u8)> {
    drawn(app)
        .into_iter()
        .filter(|(_, _, s)| s.owner() == PLAYER && !is_structure(s.kind()))
        .map(|(id, p, s)| (id, (p.0, p.1, s.kind())))
        .collect()
}

fn order(app: &mut App, ids: &[UnitId], to: WorldPos) {
    let units = UnitIdList::from_ids(ids.iter().copied()).unwrap();
    app.world_mut()
        .resource_mut::<OutgoingCommands>()
        .0
        .push(CompressedCommand::Move { units, to });
}

fn near(p: (f64, f64), to: WorldPos, cm: f64) -> bool {
    ((p.0 - to.x as f64).powi(2) + (p.1 - to.y as f64).powi(2)).sqrt() <= cm
}

fn status_counts(s: &ServerProcess, skip: usize) -> (u64, u64, u64) {
    let line = s.wait_for_log_after(skip, "status:");
    let rest = line.split("commands applied ").nth(1).unwrap();
    let n: Vec<u64> = rest
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (n[0], n[1], n[2])
}

/// Servers 1 and 2 own neighbouring 1 km sectors. The player, playing on
/// server 1, sends its fast units across the border and follows them with
/// its view: the units move to server 2 with their orders, the client is
/// redirected there, sees its units on both sides all the way (those still
/// on server 1 as ghosts), and its next orders work for both: the ones for
/// units on server 2 directly, the ones for units still on server 1
/// forwarded there.
#[test]
fn player_walks_across_a_server_border_and_keeps_playing() {
    let _one_at_a_time = serial();
    let nats = NatsServer::start().expect("nats-server (scripts/test.sh installs it)");
    let homes = [
        SectorId::new(0, 0, 0),
        SectorId::new(1, 0, 0),
        SectorId::new(4, 4, 0),
    ];
    let mut servers: Vec<ServerProcess> = (1..=3)
        .map(|id| ServerProcess::start_with(&nats, id, UNITS, homes[id as usize - 1]))
        .collect();
    let addrs: Vec<_> = servers.iter().map(|s| s.addr).collect();
    let mut view_centre = WorldPos::new(75_000, 50_000);
    let mut client = client(PLAYER, &addrs, WorldRect::around(view_centre, 40_000));
    assert!(
        pump_until(&mut client, Duration::from_secs(20), |app| connected(app)
            && own(app).len() == UNITS as usize),
        "client sees its army: {}",
        own(&client).len()
    );
    let army = own(&client);
    let walkers: Vec<UnitId> = army
        .iter()
        .filter(|(_, u)| u.2 == FAST)
        .map(|(&id, _)| id)
        .collect();
    let stayers: Vec<UnitId> = army
        .keys()
        .copied()
        .filter(|id| !walkers.contains(id))
        .collect();
    assert!(walkers.len() >= 5, "{} fast units", walkers.len());
    // Across the border at x = 1 km, into server 2's sector.
    let there = WorldPos::new(112_000, 50_000);
    order(&mut client, &walkers, there);

    // Follow the walkers with the view; every own unit stays on screen.
    let mut vanished = BTreeSet::new();
    let start = Instant::now();
    let mut prev = own(&client);
    let mut first_vanish = None;
    let arrived = loop {
        client.update();
        let now = own(&client);
        if first_vanish.is_none() && army.keys().any(|id| !now.contains_key(id)) {
            let gone: Vec<_> = army.keys().filter(|id| !now.contains_key(id)).collect();
            first_vanish = Some(format!(
                "{gone:?} after {:?} (last drawn at {:?}; {} reconnects)",
                start.elapsed(),
                gone.iter().map(|id| prev.get(id)).collect::<Vec<_>>(),
                reconnects(&client)
            ));
        }
        vanished.extend(army.keys().filter(|id| !now.contains_key(id)).copied());
        prev = now.clone();
        let pts: Vec<(f64, f64)> = walkers
            .iter()
            .filter_map(|id| now.get(id))
            .map(|u| (u.0, u.1))
            .collect();
        if !pts.is_empty() {
            let x = pts.iter().map(|p| p.0).sum::<f64>() / pts.len() as f64;
            view_centre = WorldPos::new(x as i64, 50_000);
            client.world_mut().resource_mut::<View>().0 = WorldRect::around(view_centre, 40_000);
        }
        if connected(&client)
            && pts.len() == walkers.len()
            && pts.iter().all(|&p| near(p, there, 500.0))
        {
            break true;
        }
        if start.elapsed() > Duration::from_secs(90) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(
        arrived,
        "the walkers reached server 2's sector: {:?}",
        own(&client)
    );
    assert!(
        vanished.is_empty(),
        "units vanished on the way: {vanished:?}; first {first_vanish:?}"
    );
    // They crossed as transfers, and the client followed to server 2.
    let got = servers[1].wait_for_log("received", Duration::from_secs(1));
    assert!(
        got.contains(&format!("of player {PLAYER} walking")),
        "{got}"
    );
    assert!(
        servers[1]
            .log()
            .iter()
            .any(|l| l.contains(&format!("player {PLAYER} connected"))),
        "client on server 2"
    );
    assert!(
        servers[0]
            .log()
            .iter()
            .any(|l| l.contains(&format!("player {PLAYER} redirected to server 2"))),
        "server 1 redirected the client"
    );

    // Keeps playing: orders for the walkers (on server 2) and for a unit
    // still on server 1 (a ghost here, its order forwarded) both work.
    let again = WorldPos::new(130_000, 60_000);
    order(&mut client, &walkers, again);
    let stayer = stayers[0];
    let from = own(&client)[&stayer];
    let back = WorldPos::new(from.0 as i64 - 5_000, from.1 as i64);
    order(&mut client, &[stayer], back);
    // The stayer belongs to server 1's bot, which sends idle units off
    // again every few seconds: it must reach `back`, not stay there.
    let mut stayer_arrived = false;
    assert!(
        pump_until(&mut client, Duration::from_secs(30), |app| {
            let now = own(app);
            stayer_arrived |= now
                .get(&stayer)
                .is_some_and(|u| near((u.0, u.1), back, 300.0));
            stayer_arrived
                && walkers
                    .iter()
                    .all(|id| now.get(id).is_some_and(|u| near((u.0, u.1), again, 500.0)))
        }),
        "orders after the crossing were carried out (stayer arrived: {stayer_arrived}): {:?}",
        own(&client)
    );
    assert_eq!(
        own(&client).len(),
        UNITS as usize,
        "the whole army, once each"
    );
    // The next status lines, written after the orders were carried out.
    let skip = [servers[0].log().len(), servers[1].log().len()];
    let (_, _, in1) = status_counts(&servers[0], skip[0]);
    let (_, out2, _) = status_counts(&servers[1], skip[1]);
    assert!(
        out2 >= 1 && in1 >= 1,
        "server 2 forwarded ({out2}), server 1 applied ({in1})"
    );
}

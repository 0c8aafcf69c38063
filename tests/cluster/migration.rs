//! Planned migration (`LoadBalance` -> handoff) of a busy sector between
//! real server processes, while its player keeps giving orders.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bevy::prelude::App;
use galaxy_cluster::NatsServer;
use galaxy_net::OutgoingCommands;
use galaxy_protocol::{CompressedCommand, UnitId, UnitIdList, WorldPos, WorldRect};
use galaxy_sim::is_structure;

use crate::harness::*;

/// Server 1's bot: the player our client plays as (see the server's bot ids).
const PLAYER: u64 = 1_000_000 + 1000;
const UNITS: u32 = 200;

/// `commands applied A forwarded out F in I` from a status line.
fn command_counts(line: &str) -> (u64, u64, u64) {
    let rest = line
        .split("commands applied ")
        .nth(1)
        .unwrap_or_else(|| panic!("no counts in {line}"));
    let n: Vec<u64> = rest
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (n[0], n[1], n[2])
}

fn own_units(app: &App) -> Vec<UnitId> {
    drawn(app)
        .into_iter()
        .filter(|(_, _, s)| s.owner() == PLAYER && !is_structure(s.kind()))
        .map(|(id, _, _)| id)
        .collect()
}

/// Sector 1 (200 units on the move) is handed from server 1 to server 2
/// while the client gives an order every 100 ms: the owner changes once
/// by revision, the units arrive all and once, each order is applied
/// exactly once (on server 1, forwarded to server 2, or on server 2 after
/// the client followed its redirect), and on the client's screen no unit
/// vanishes or jumps.
#[test]
fn busy_sector_moves_between_servers_without_loss_or_duplicates() {
    let _one_at_a_time = serial();
    let nats = NatsServer::start().expect("nats-server (scripts/test.sh installs it)");
    let observer = Observer::new(&nats);
    let mut servers = three_servers(&nats, UNITS);
    let home = servers[0].home();
    let total = UNITS as usize + 5; // the units, the base and 4 resources
    let view = WorldRect::around(centre(home), 200_000);
    let addrs: Vec<_> = servers.iter().map(|s| s.addr).collect();
    let mut client = client(PLAYER, &addrs, view);
    assert!(
        pump_until(&mut client, Duration::from_secs(20), |app| {
            connected(app) && visible(app).len() == total
        }),
        "client sees server 1's sector: {}",
        visible(&client).len()
    );
    let before: BTreeSet<UnitId> = visible(&client).into_iter().collect();
    let e1 = observer.epoch(home);

    // Orders every 100 ms for 4 s; the migration is asked for after 1 s.
    let mut sent = 0u64;
    let mut last: BTreeMap<UnitId, (f64, f64)> = BTreeMap::new();
    let (mut vanished, mut max_step) = (0usize, 0.0f64);
    let start = Instant::now();
    let mut next_order = Duration::ZERO;
    let mut asked = false;
    while start.elapsed() < Duration::from_secs(6) {
        let t = start.elapsed();
        if !asked && t >= Duration::from_secs(1) {
            observer
                .rt
                .block_on(observer.cluster.request_migration(1, 2, vec![home]))
                .unwrap();
            asked = true;
        }
        if t >= next_order && t < Duration::from_secs(4) {
            next_order += Duration::from_millis(100);
            let mine = own_units(&client);
            let pick: Vec<UnitId> = mine
                .iter()
                .copied()
                .skip((sent as usize * 7) % 150)
                .take(10)
                .collect();
            if let Ok(units) = UnitIdList::from_ids(pick) {
                let c = centre(home);
                let to = WorldPos::new(c.x + (sent as i64 % 10) * 5_000 - 25_000, c.y + 20_000);
                client
                    .world_mut()
                    .resource_mut::<OutgoingCommands>()
                    .0
                    .push(CompressedCommand::Move { units, to });
                sent += 1;
            }
        }
        client.update();
        // Nothing vanishes from the screen, nothing jumps.
        let drawn: BTreeMap<UnitId, (f64, f64)> = drawn(&client)
            .into_iter()
            .map(|(id, p, _)| (id, p))
            .collect();
        for (id, p) in &last {
            match drawn.get(id) {
                None => vanished += 1,
                Some(q) => {
                    max_step = max_step.max(((q.0 - p.0).powi(2) + (q.1 - p.1).powi(2)).sqrt())
                }
            }
        }
        last = drawn;
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(asked && sent >= 35, "{sent} orders sent");

    // Ownership moved once, by revision.
    let history = observer
        .rt
        .block_on(observer.cluster.owner_history(home))
        .unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(
        (history[0].server, history[0].epoch, history[1].server),
        (1, e1, 2)
    );
    // Every unit arrived, once; the client (redirected) sees them all on server 2.
    let drained = servers[0].wait_for_log("handing sector", Duration::from_secs(5));
    assert!(
        drained.contains(&format!("{total} units drained")),
        "{drained}"
    );
    let took = servers[1].wait_for_log("took over sector", Duration::from_secs(5));
    assert!(
        took.contains(&format!("from server 1: {total} units")),
        "{took}"
    );
    assert!(
        pump_until(&mut client, Duration::from_secs(10), |app| {
            connected(app) && visible(app).into_iter().collect::<BTreeSet<_>>() == before
        }),
        "after the move the client sees {} units, before {}",
        visible(&client).len(),
        before.len()
    );
    assert!(
        servers[1]
            .log()
            .iter()
            .any(|l| l.contains(&format!("player {PLAYER} connected"))),
        "the client followed its units to server 2"
    );
    assert_eq!(vanished, 0, "units vanished from the screen");
    assert!(
        max_step < 150.0,
        "a unit jumped {max_step:.0} cm in one frame"
    );

    // Every order applied exactly once, wherever it arrived.
    let skip = [servers[0].log().len(), servers[1].log().len()];
    let s1 = servers[0].wait_for_log_after(skip[0], "status:");
    let s2 = servers[1].wait_for_log_after(skip[1], "status:");
    let (a1, f1, i1) = command_counts(&s1);
    let (a2, f2, i2) = command_counts(&s2);
    assert_eq!(
        (i1, f2),
        (0, 0),
        "nothing forwarded the other way\n{s1}\n{s2}"
    );
    assert_eq!(
        i2, f1,
        "forwarded orders applied once on server 2\n{s1}\n{s2}"
    );
    assert_eq!(a1 + f1 + a2, sent, "every order counted once\n{s1}\n{s2}");
    let handed = servers[0].wait_for_log("handed sector", Duration::from_secs(1));
    eprintln!(
        "migration: {sent} orders (server 1 applied {a1}, forwarded {f1}; server 2 applied {a2}), largest step {max_step:.1} cm\n{handed}"
    );
    let _ = &mut servers;
}

/// The elected balancer evens the load: server 1 is given server 2's
/// sector (it then has both, server 2 none); the balancer (whichever server
/// holds the role) moves one sector back to server 2 by a handoff, and then
/// leaves the now even cluster alone.
#[test]
fn balancer_moves_a_sector_from_the_busiest_to_the_idlest_server() {
    let _one_at_a_time = serial();
    let nats = NatsServer::start().expect("nats-server (scripts/test.sh installs it)");
    let observer = Observer::new(&nats);
    let balanced = ["--balance-every", "1"];
    let servers: Vec<ServerProcess> = (1..=2)
        .map(|id| {
            let home = galaxy_protocol::SectorId::new(2 * i64::from(id), 0, SCALE);
            ServerProcess::start_args(&nats, id, 150, home, &balanced)
        })
        .collect();
    let (home1, home2) = (servers[0].home(), servers[1].home());
    observer
        .rt
        .block_on(observer.cluster.request_migration(2, 1, vec![home2]))
        .unwrap();
    observer.wait_for_new_owner(home2, 2, Duration::from_secs(10));
    // 300 units against 0: one sector goes back to server 2.
    let start = Instant::now();
    let moved_back = loop {
        let owners = (observer.owner(home1), observer.owner(home2));
        if owners.0 == Some(2) || owners.1 == Some(2) {
            break Some(owners);
        }
        if start.elapsed() > Duration::from_secs(20) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let owners = moved_back.expect("the balancer moved a sector back to server 2");
    assert!(
        matches!(owners, (Some(1), Some(2)) | (Some(2), Some(1))),
        "{owners:?}"
    );
    assert!(
        servers.iter().any(|s| s
            .log()
            .iter()
            .any(|l| l.contains("balancer: asked server 1 to move sector"))),
        "a balancer ordered it"
    );
    // 150 against 150: nothing moves any more.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!((observer.owner(home1), observer.owner(home2)), owners);
    let changes: usize = [home1, home2]
        .iter()
        .map(|&s| {
            observer
                .rt
                .block_on(observer.cluster.owner_history(s))
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(changes, 2 + 2, "one manual and one balancing move in all");
}

//! `CombatEvent`s reach exactly the clients that see their sector, reliably,
//! and no later than the unit updates that show their effect.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use galaxy_net::*;
use galaxy_protocol::{CombatEventType, WorldPos};

use crate::harness::*;

#[test]
fn destroyed_units_are_announced_to_watchers_only_and_first() {
    let (mut server, addr) = server(ServerAuth::Insecure, &[]);
    // Two armies of tanks face to face, in range of each other.
    let red = spawn_block(&mut server, 1, WorldPos::new(10_000, 10_000), 3);
    let blue = spawn_block(&mut server, 2, WorldPos::new(10_000, 12_500), 3);
    {
        let mut sim = server.world_mut().resource_mut::<SimWorld>();
        for id in red.iter().chain(&blue) {
            let mut u = *sim.0.unit(*id).unwrap();
            u.kind = 1;
            sim.0.insert_unit(*id, u);
        }
    }
    let battle = view_at(WorldPos::new(10_000, 11_000));
    let mut watcher = client(
        1,
        ClientAuth::Insecure {
            player: 1,
            server: addr,
        },
        battle,
    );
    let mut elsewhere = client(
        3,
        ClientAuth::Insecure {
            player: 3,
            server: addr,
        },
        view_at(WorldPos::new(9_000_000, 0)),
    );
    let mut frame = 0u64;
    let mut announced: BTreeMap<u64, u64> = BTreeMap::new();
    let mut despawned: BTreeMap<u64, u64> = BTreeMap::new();
    let mut seen: BTreeSet<u64> = BTreeSet::new();
    let ok = pump_until(
        &mut [&mut server, &mut watcher, &mut elsewhere],
        Duration::from_secs(60),
        |apps| {
            frame += 1;
            for e in apps[1]
                .world_mut()
                .resource_mut::<ReceivedEvents>()
                .events
                .drain(..)
            {
                if e.event_type == CombatEventType::UnitDestroyed {
                    announced.entry(e.participants[0]).or_insert(frame);
                }
            }
            // A unit the client saw and no longer sees was despawned.
            let now: BTreeSet<u64> = apps[1]
                .world()
                .resource::<ClientReplica>()
                .receiver
                .units()
                .map(|(id, _)| id)
                .collect();
            for id in seen.difference(&now) {
                despawned.entry(*id).or_insert(frame);
            }
            seen.extend(now);
            let sim = &apps[0].world().resource::<SimWorld>().0;
            let dead: BTreeSet<u64> = red
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
            .is_empty(),
        "a client far away got battle events"
    );
}

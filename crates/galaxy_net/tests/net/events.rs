//! The game's events (`OutgoingEvents`) reach exactly the clients that see
//! their sector, reliably, and no later than the unit updates that show
//! their effect.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use galaxy_net::*;

use crate::harness::*;

#[test]
fn sunk_ships_are_announced_to_watchers_only_and_first() {
    let (mut server, addr) = server(ServerAuth::Insecure, &[]);
    let fleet = spawn_block(&mut server, 1, WorldPos::new(10_000, 10_000), 3);
    let battle = view_at(WorldPos::new(10_000, 11_000));
    let mut watcher = player(1, addr, battle);
    let mut elsewhere = player(3, addr, view_at(WorldPos::new(9_000_000, 0)));
    assert!(pump_until(
        &mut [&mut server, &mut watcher, &mut elsewhere],
        Duration::from_secs(10),
        |apps| client_units(apps[1]).len() == 9 && connected(apps[2])
    ));
    let mut frame = 0u64;
    let mut announced: BTreeMap<u64, u64> = BTreeMap::new();
    let mut despawned: BTreeMap<u64, u64> = BTreeMap::new();
    let mut seen: BTreeSet<u64> = client_units(&mut watcher).into_keys().collect();
    let ok = pump_until(
        &mut [&mut server, &mut watcher, &mut elsewhere],
        Duration::from_secs(30),
        |apps| {
            frame += 1;
            // Every 20 frames the game sinks one more ship.
            if frame.is_multiple_of(20) {
                let next = fleet.get((frame / 20 - 1) as usize).copied();
                let mut q = apps[0].world_mut().query::<(&NetUnit, &mut Hull)>();
                for (id, mut hull) in q.iter_mut(apps[0].world_mut()) {
                    if Some(id.0) == next {
                        hull.0 = 0;
                    }
                }
            }
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
            // A ship whose entity the client no longer has was despawned.
            let now: BTreeSet<u64> = client_units(apps[1]).into_keys().collect();
            for id in seen.difference(&now) {
                despawned.entry(*id).or_insert(frame);
            }
            seen.extend(now);
            let sunk = server_units(apps[0]);
            let gone: Vec<u64> = fleet
                .iter()
                .copied()
                .filter(|id| !sunk.contains_key(id))
                .collect();
            gone.len() >= 4
                && gone
                    .iter()
                    .all(|id| announced.contains_key(id) && despawned.contains_key(id))
        },
    );
    assert!(
        ok,
        "sinkings not announced: announced {announced:?}, despawned {despawned:?}"
    );
    for (id, at) in &despawned {
        assert!(
            announced.get(id).is_some_and(|a| a <= at),
            "ship {id} vanished before its event"
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

//! State verification end to end: a client's replica corrupted in process
//! is found by the server from the client's digest and healed by resending
//! the units concerned whole, within two seconds of server time.

use std::time::Duration;

use bevy::prelude::*;
use galaxy_net::*;

use crate::harness::*;

#[test]
fn a_corrupted_replica_is_detected_and_healed_within_two_seconds() {
    let (mut server, addr) = server(ServerAuth::Insecure, &[]);
    let ships = spawn_block(&mut server, 1, WorldPos::new(10_000, 10_000), 8);
    let view = view_at(WorldPos::new(20_000, 20_000));
    let mut c = player(1, addr, view);
    let stats = |app: &App| app.world().resource::<NetworkStats>().clone();
    // Converged, and at least one digest checked and found matching.
    assert!(
        pump_until(
            &mut [&mut server, &mut c],
            Duration::from_secs(15),
            |apps| {
                replica_units(apps[1]) == server_units(apps[0]) && stats(apps[0]).state_checks >= 1
            }
        ),
        "never converged and checked"
    );
    assert_eq!(
        stats(&server).state_mismatches,
        0,
        "a healthy replica matched"
    );
    // Corrupt one ship the server will not touch again (they are at rest).
    let victim = ships[17];
    let truth = server_units(&mut server)[&victim];
    let wrong = ShipState {
        position: WorldPos::new(-1_000_000, 0),
        ..truth
    };
    assert!(
        c.world_mut()
            .resource_mut::<ClientReplica<ShipState>>()
            .receiver
            .overwrite_newest(victim, wrong)
    );
    let corrupted_at = server.world().resource::<ServerTick>().0;
    let healed = pump_until(
        &mut [&mut server, &mut c],
        Duration::from_secs(10),
        |apps| replica_units(apps[1]).get(&victim) == Some(&truth),
    );
    let took = server.world().resource::<ServerTick>().0 - corrupted_at;
    assert!(healed, "never healed");
    let s = stats(&server);
    assert!(s.state_mismatches >= 1, "{s:?}");
    assert!(s.units_healed >= 1 && s.units_healed <= 64, "{s:?}");
    // 2 s of server time at 20 Hz.
    assert!(took <= 40, "healed {took} ticks after the corruption");
    assert_eq!(replica_units(&c), server_units(&mut server));
}

/// A digest costs the server a pass over the client's units, so a client
/// sending them faster than one per `MIN_DIGEST_INTERVAL_SECS` has the
/// extra ones refused and counted; the one taken is still checked.
#[test]
fn digests_are_rate_limited() {
    let (mut server, addr) = server(ServerAuth::Insecure, &[]);
    let mut raw = raw_client(2, addr);
    assert!(pump_until(
        &mut [&mut server, &mut raw],
        Duration::from_secs(10),
        |a| a[1]
            .world()
            .resource::<bevy_renet::RenetClient>()
            .is_connected()
    ));
    let digest = galaxy_net::protocol::StateDigest {
        ack: galaxy_net::protocol::UpdateAck::default(),
        tick: 0,
        units: 0,
        buckets: [0; galaxy_net::protocol::DIGEST_BUCKETS],
    };
    let bytes = galaxy_net::protocol::encode_client(
        &galaxy_net::protocol::ClientMessage::StateDigest(digest),
    )
    .unwrap();
    for _ in 0..10 {
        raw.world_mut()
            .resource_mut::<bevy_renet::RenetClient>()
            .send_message(galaxy_net::channels::ACKS, bytes.clone());
    }
    let limited = |a: &App| {
        a.world()
            .resource::<NetworkStats>()
            .rejected
            .get("digest_rate_limited")
            .copied()
            .unwrap_or(0)
    };
    assert!(
        pump_until(
            &mut [&mut server, &mut raw],
            Duration::from_secs(5),
            |a| limited(a[0]) == 9
        ),
        "refused: {}",
        limited(&server)
    );
}

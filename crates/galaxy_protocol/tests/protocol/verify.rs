//! State verification: a client's digest matches what the server believes
//! it holds on a healthy link, a corrupted replica is found and healed in
//! one round trip, and a digest overtaken by a newer ack proves nothing.

use galaxy_protocol::*;

/// A unit at rest at `x` with `health` (also used by `shared_stream`).
pub(crate) fn unit(x: i64, health: f32) -> QuantizedUnit {
    quantize(&UnitSample {
        owner: 1,
        kind: 0,
        position: WorldPos::new(x, 0),
        velocity: Velocity::ZERO,
        health,
        state: UnitState::IDLE,
        target: None,
    })
}

/// One tick over a clean link: updates down, acks up.
fn step(tx: &mut DeltaSender, rx: &mut DeltaReceiver, tick: u64) {
    for u in tx.write_updates(tick) {
        rx.receive(&u).expect("a clean link applies every update");
    }
    for ack in rx.take_acks() {
        tx.receive_ack(&ack);
    }
}

fn settled_pair(units: u64) -> (DeltaSender, DeltaReceiver) {
    let (mut tx, mut rx) = (DeltaSender::default(), DeltaReceiver::default());
    for i in 0..units {
        tx.set_unit(i, unit(i as i64 * 500, 100.0));
    }
    for tick in 1..=5 {
        step(&mut tx, &mut rx, tick);
    }
    assert!(tx.is_settled());
    (tx, rx)
}

#[test]
fn a_digest_ignores_order_and_sees_one_changed_unit() {
    let units: Vec<(UnitId, QuantizedUnit)> =
        (0..100).map(|i| (i, unit(i as i64, 100.0))).collect();
    let (n, a) = verify::digest_units(units.iter().map(|(i, u)| (*i, u)), 50);
    let (_, b) = verify::digest_units(units.iter().rev().map(|(i, u)| (*i, u)), 50);
    assert_eq!((n, a), (100, b));
    let mut changed = units.clone();
    changed[37].1 = unit(1_000, 100.0);
    let (_, c) = verify::digest_units(changed.iter().map(|(i, u)| (*i, u)), 50);
    let d = StateDigest {
        ack: UpdateAck::default(),
        tick: 50,
        units: n,
        buckets: a,
    };
    assert_eq!(d.differing_buckets(&c), 1 << verify::digest_bucket(37));
}

#[test]
fn a_healthy_replica_matches() {
    let (mut tx, mut rx) = settled_pair(300);
    // Changes in flight are not a mismatch: the digest names exactly the
    // updates it covers.
    for i in 0..50 {
        tx.set_unit(i, unit(i as i64 * 500, 50.0));
    }
    for u in tx.write_updates(6) {
        rx.receive(&u).unwrap();
    }
    let digest = rx.digest().expect("updates were received");
    assert_eq!(digest.units, 300);
    assert_eq!(tx.verify(&digest), Verification::Match);
}

#[test]
fn a_corrupted_replica_is_found_and_healed() {
    let (mut tx, mut rx) = settled_pair(300);
    assert!(rx.overwrite_newest(42, unit(9_999_999, 1.0)));
    let digest = rx.digest().unwrap();
    let Verification::Mismatch { buckets, resent } = tx.verify(&digest) else {
        panic!("the corruption was not found")
    };
    assert_eq!(buckets, 1 << (42 % DIGEST_BUCKETS));
    // Only the units of that bucket go again, whole.
    assert_eq!(
        resent,
        300 / DIGEST_BUCKETS + usize::from(42 % 16 < 300 % 16)
    );
    let updates = tx.write_updates(6);
    let records: Vec<&UnitDelta> = updates.iter().flat_map(|u| &u.updates).collect();
    assert_eq!(records.len(), resent);
    assert!(records.iter().all(|d| matches!(d.body, DeltaBody::Full(_))));
    for u in &updates {
        rx.receive(u).unwrap();
    }
    for ack in rx.take_acks() {
        tx.receive_ack(&ack);
    }
    assert_eq!(rx.unit(42), tx.unit(42));
    assert_eq!(tx.verify(&rx.digest().unwrap()), Verification::Match);
}

#[test]
fn a_digest_overtaken_by_a_newer_ack_is_stale() {
    let (mut tx, mut rx) = settled_pair(10);
    let old = rx.digest().unwrap();
    tx.set_unit(3, unit(77, 10.0));
    step(&mut tx, &mut rx, 6);
    assert_eq!(tx.verify(&old), Verification::Stale);
    assert_eq!(tx.verify(&rx.digest().unwrap()), Verification::Match);
}

#[test]
fn digests_travel_as_client_messages() {
    let (_, rx) = settled_pair(20);
    let msg = ClientMessage::StateDigest(rx.digest().unwrap());
    let bytes = encode_client(&msg).unwrap();
    assert!(bytes.len() < 200, "{} bytes", bytes.len());
    assert_eq!(decode_client(&bytes).unwrap(), msg);
    // Cut short, it is a typed error, not a panic.
    for len in 0..bytes.len() {
        assert!(decode_client(&bytes[..len]).is_err());
    }
}

//! Regressions of the hostile-input probe (issue 19): inputs that panicked,
//! stalled a client or held memory out of proportion, each refused or
//! bounded now.

use galaxy_protocol::*;

use crate::alloc_counter::peak_alloc;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn update(sequence: u16, timestamp: u64, updates: Vec<UnitDelta>) -> UnitUpdate {
    UnitUpdate {
        sector_id: SectorId::new(0, 0, 0),
        sequence,
        timestamp,
        updates,
    }
}

fn unit(x: i64) -> QuantizedUnit {
    quantize(&UnitSample {
        owner: 1,
        kind: 0,
        position: WorldPos::new(x, 0),
        velocity: Velocity::ZERO,
        health: 10.0,
        state: UnitState::IDLE,
        target: None,
    })
}

/// Two valid 15-byte updates with ticks near `u64::MAX` overflowed the
/// receiver's pruning (`attempt to add with overflow`); they are refused.
#[test]
fn ticks_near_the_end_of_time_are_refused_not_panicked_on() {
    let mut rx: DeltaReceiver = DeltaReceiver::default();
    for bytes in [
        "0100000000fdf5ffffffffffffff00",
        "0100000001fdfaffffffffffffff00",
    ] {
        let Ok(ServerMessage::UnitUpdate(u)) = decode_server::<QuantizedUnit>(&hex(bytes)) else {
            panic!("the probe's bytes decode to updates")
        };
        assert!(matches!(
            rx.receive(&u),
            Err(ReceiveError::TickOutOfRange(_))
        ));
    }
    assert_eq!(rx.stats().refused, 2);
}

/// After one update at a huge tick every later update looked stale; now
/// such an update is refused, and one merely far ahead of the client's
/// clock (`receive_by`) too, so the client goes on.
#[test]
fn one_update_far_ahead_does_not_stall_the_client() {
    let mut rx: DeltaReceiver = DeltaReceiver::default();
    rx.receive(&update(0, 10, vec![UnitDelta::full(1, unit(0))]))
        .unwrap();
    let at_max = update(1, u64::MAX, vec![UnitDelta::full(2, unit(5))]);
    assert!(rx.receive(&at_max).is_err());
    let ahead = update(2, 1 << 40, vec![UnitDelta::full(3, unit(7))]);
    assert_eq!(
        rx.receive_by(&ahead, 10 + 256),
        Err(ReceiveError::TickAhead {
            tick: 1 << 40,
            allowed: 266
        })
    );
    assert_eq!(
        rx.receive(&update(3, 11, vec![UnitDelta::full(1, unit(9))])),
        Ok(ReceiveOutcome::Applied(1))
    );
    assert_eq!(rx.newest_tick(), 11);
    assert_eq!(rx.unit(1), Some(&unit(9)));
    assert!(rx.unit(2).is_none() && rx.unit(3).is_none());
}

/// The fuzz run's find, the sequence twin of the stall above: one update
/// whose sequence jumped 20,000 ahead (its tick plausible) made every later
/// real update look older than the receive window, so the client stopped
/// applying anything for 20,000 updates. A real sender's sequences and
/// ticks rise together, so an update that looks old by sequence but is newer
/// by tick means the window was dragged: it resynchronises instead.
#[test]
fn one_update_with_a_sequence_far_ahead_does_not_stall_the_client() {
    let mut rx: DeltaReceiver = DeltaReceiver::default();
    for seq in 0..10u16 {
        rx.receive(&update(
            seq,
            10 + u64::from(seq),
            vec![UnitDelta::full(1, unit(seq.into()))],
        ))
        .unwrap();
    }
    let forged = update(20_010, 20, vec![UnitDelta::full(2, unit(5))]);
    assert!(matches!(
        rx.receive(&forged),
        Ok(ReceiveOutcome::Applied(_))
    ));
    for seq in 10..20u16 {
        assert_eq!(
            rx.receive(&update(
                seq,
                11 + u64::from(seq),
                vec![UnitDelta::full(1, unit(seq.into()))]
            )),
            Ok(ReceiveOutcome::Applied(1)),
            "sequence {seq}"
        );
    }
    assert_eq!(rx.unit(1), Some(&unit(19)));
    // An old update is still old: same tick as one applied, sequence behind.
    assert_eq!(
        rx.receive(&update(19u16.wrapping_sub(ack::RECEIVE_WINDOW), 30, vec![])),
        Ok(ReceiveOutcome::Stale)
    );
}

/// Removals of units the receiver never had were each kept as a unit
/// history (~380 B): 600 packets held hundreds of MiB. Now they are compact
/// tombstones, at most `MAX_TOMBSTONES` of them.
#[test]
fn removals_of_unknown_units_hold_bounded_memory() {
    let mut rx: DeltaReceiver = DeltaReceiver::default();
    let ((), held) = peak_alloc(|| {
        let mut id = 0u64;
        for packet in 0..600u64 {
            let removals = (0..1600)
                .map(|_| {
                    id += 1;
                    UnitDelta::removed(id)
                })
                .collect();
            let u = update(packet as u16, 1 + packet / 10, removals);
            assert!(matches!(rx.receive(&u), Ok(ReceiveOutcome::Applied(_))));
        }
    });
    assert!(held < 16 << 20, "{} MiB held", held >> 20);
    assert!(rx.stats().tombstones_dropped > 0);
    assert_eq!(rx.visible_count(), 0);
    // What the sender was acked is what the receiver says it recorded: the
    // removal (the load test's convergence check asks this).
    assert_eq!(rx.recorded(1, 1), Some(None));
    assert_eq!(rx.recorded(1, 2), None);
}

/// A removal that overtook the unit's whole state still wins: the late
/// state does not bring the unit back.
#[test]
fn a_late_state_of_a_removed_unit_stays_removed() {
    let mut rx: DeltaReceiver = DeltaReceiver::default();
    rx.receive(&update(1, 12, vec![UnitDelta::removed(5)]))
        .unwrap();
    rx.receive(&update(0, 10, vec![UnitDelta::full(5, unit(0))]))
        .unwrap();
    assert!(rx.unit(5).is_none());
    assert_eq!(rx.drain_events().count(), 0, "no spawn, no despawn");
    // A newer state is a real comeback.
    rx.receive(&update(2, 14, vec![UnitDelta::full(5, unit(3))]))
        .unwrap();
    assert_eq!(rx.unit(5), Some(&unit(3)));
}

/// An update would not make the receiver hold more units than its cap.
#[test]
fn a_receiver_holds_at_most_max_units() {
    let config = DeltaConfig {
        max_units: 100,
        ..DeltaConfig::default()
    };
    let mut rx: DeltaReceiver = DeltaReceiver::new(config);
    let many = |from: u64, n: u64| {
        (from..from + n)
            .map(|id| UnitDelta::full(id, unit(0)))
            .collect()
    };
    rx.receive(&update(0, 1, many(1, 90))).unwrap();
    assert_eq!(
        rx.receive(&update(1, 2, many(1000, 20))),
        Err(ReceiveError::TooManyUnits(100))
    );
    assert_eq!(rx.visible_count(), 90);
}

/// A payload claiming 65,535 records whose first is garbage reserved room
/// for ~1,600 decoded records (117 times the input); now for a few.
#[test]
fn decoding_reserves_for_what_was_read() {
    let mut bytes = encode_server::<QuantizedUnit>(&ServerMessage::UnitUpdate(UnitUpdate {
        sector_id: SectorId::new(0, 0, 0),
        sequence: 0,
        timestamp: 5,
        updates: vec![],
    }))
    .unwrap();
    // Header with a count of 65,535, then 1,200 bytes of ones: the first
    // record is a field delta whose baseline age overflows the tick.
    bytes.truncate(bytes.len() - 1);
    bytes.extend_from_slice(&[0xfb, 0xff, 0xff]);
    bytes.extend(std::iter::repeat_n(0xff, 1200));
    let (result, peak) = peak_alloc(|| decode_server::<QuantizedUnit>(&bytes));
    assert!(result.is_err());
    assert!(
        peak < 8 * 1024,
        "{peak} bytes for {} input bytes",
        bytes.len()
    );
}

/// A server decoded whatever a client sent (a 778 KB server-to-server
/// message took up to 16 MiB) before looking at its type or size. Now the
/// tag and the length are checked first, and nothing is allocated.
#[test]
fn client_messages_are_checked_for_type_and_size_before_decoding() {
    // A valid BatchCommand of ~778 KB: 256 commands of scattered ids.
    let commands = (0..256u64)
        .map(|k| CompressedCommand::Stop {
            units: UnitIdList::from_ids((0..1_500).map(|i| (k << 32) | (i * 3))).unwrap(),
        })
        .collect();
    let big = encode_client(&ClientMessage::BatchCommand(BatchCommand {
        sector_id: SectorId::new(0, 0, 0),
        commands,
        player_id: 1,
    }))
    .unwrap();
    assert!(big.len() > 700_000, "{} bytes", big.len());
    let (result, peak) = peak_alloc(|| decode_client(&big));
    assert_eq!(
        result,
        Err(DecodeError::TooLarge {
            len: big.len(),
            max: MAX_CLIENT_MESSAGE_BYTES
        })
    );
    assert_eq!(peak, 0, "allocated before refusing");
    // The same size under a server-to-server tag, and under a server-to-client one.
    for tag in [6u8, 1] {
        let mut other = big.clone();
        other[0] = tag;
        other.truncate(MAX_CLIENT_MESSAGE_BYTES);
        let (result, peak) = peak_alloc(|| decode_client(&other));
        assert_eq!(result, Err(DecodeError::WrongDirection(tag)));
        assert_eq!(peak, 0, "allocated before refusing tag {tag}");
    }
}

/// A client that never acks made its sender resend every unit it was ever
/// sent, every `resend_after_ticks`, each one a candidate every tick: a
/// view-hopping attacker cost the server 30 times a fair client. Now units
/// of packets lost while the client acks nothing wait for its next ack (an
/// empty probe asks for one now and then), and are sent again once it acks.
#[test]
fn a_client_that_never_acks_gets_nothing_resent_until_it_acks() {
    let mut tx: DeltaSender = DeltaSender::default();
    let mut budget = ByteBudget::from_kbps(256.0, 20.0);
    for i in 0..2_000u64 {
        tx.set_unit(i, unit(i as i64 * 1_000));
    }
    let mut sent: Vec<UnitUpdate> = Vec::new();
    let mut records = 0;
    for tick in 1..=400 {
        budget.refill();
        let out = tx.write_updates_within(tick, &mut budget);
        records += out.iter().map(|u| u.updates.len()).sum::<usize>();
        sent.extend(out);
    }
    let stats = tx.stats();
    // Every unit went once; nothing was resent into the silence, and the
    // sender kept asking for an ack with empty probes.
    assert_eq!(records, 2_000);
    assert_eq!(stats.resends, 0);
    assert!(stats.probes >= 10, "probes: {}", stats.probes);
    assert!(!tx.is_settled());
    // The client wakes up having received nothing but the newest probe:
    // every unit is sent again, and then it settles.
    let mut rx: DeltaReceiver = DeltaReceiver::default();
    let last = sent.last().expect("probes were sent");
    rx.receive(last).expect("a probe applies");
    for ack in rx.take_acks() {
        tx.receive_ack(&ack);
    }
    for tick in 401..=700 {
        budget.refill();
        for u in tx.write_updates_within(tick, &mut budget) {
            rx.receive(&u).expect("a clean link applies every update");
        }
        for ack in rx.take_acks() {
            tx.receive_ack(&ack);
        }
    }
    assert!(tx.is_settled());
    assert_eq!(tx.stats().resends, 2_000);
    assert_eq!(rx.units().count(), 2_000);
}

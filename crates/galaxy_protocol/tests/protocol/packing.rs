//! Units are batched per sector into `UnitUpdate`s of at most 1,200 bytes.

use std::collections::BTreeSet;

use galaxy_protocol::link_model::LinkConditions;
use galaxy_protocol::sender::DeltaConfig;
use galaxy_protocol::*;

use crate::delta_healing::Harness;

fn unit(x: i64, y: i64) -> QuantizedUnit {
    quantize(&UnitSample {
        owner: 2,
        kind: 1,
        position: WorldPos::new(x, y),
        velocity: Velocity::ZERO,
        health: 500.0,
        state: UnitState::MOVING,
        target: Some(77),
    })
}

#[test]
fn five_thousand_new_units_fill_full_messages() {
    let mut h = Harness::new(
        DeltaConfig::default(),
        LinkConditions::PERFECT,
        LinkConditions::PERFECT,
        1,
    );
    for id in 0..5000u64 {
        h.sender.set_unit(
            id * 3,
            unit((id as i64 * 17) % 100_000, (id as i64 * 31) % 100_000),
        );
    }
    let updates = h.step();
    let sizes: Vec<usize> = updates
        .iter()
        .map(|u| {
            encode_server(&ServerMessage::UnitUpdate(u.clone()))
                .unwrap()
                .len()
        })
        .collect();
    assert!(sizes.iter().all(|&s| s <= MAX_UNIT_UPDATE_BYTES));
    // Every message but the last is filled to within one record of the limit.
    assert!(
        sizes[..sizes.len() - 1]
            .iter()
            .all(|&s| s > MAX_UNIT_UPDATE_BYTES - 40),
        "{sizes:?}"
    );
    let ids: Vec<UnitId> = updates
        .iter()
        .flat_map(|u| u.updates.iter().map(|d| d.unit_id))
        .collect();
    assert_eq!(ids.len(), 5000);
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        5000,
        "a unit was sent twice"
    );
    assert!(h.converged());
}

#[test]
fn each_message_holds_one_sector() {
    let mut h = Harness::new(
        DeltaConfig::default(),
        LinkConditions::PERFECT,
        LinkConditions::PERFECT,
        1,
    );
    for id in 0..2000u64 {
        let x = (id as i64 % 7 - 3) * SECTOR_SIZE_CM + 50;
        let y = (id as i64 % 5 - 2) * SECTOR_SIZE_CM - 50;
        h.sender.set_unit(id, unit(x, y));
    }
    let updates = h.step();
    let sectors: BTreeSet<SectorId> = updates.iter().map(|u| u.sector_id).collect();
    assert_eq!(sectors.len(), 35);
    for u in &updates {
        for d in &u.updates {
            let DeltaBody::Full(q) = d.body else {
                panic!("new units go whole")
            };
            assert_eq!(SectorId::at(q.position()), u.sector_id);
        }
    }
    assert!(h.converged());
}

#[test]
fn smaller_message_limit_is_respected() {
    let config = DeltaConfig {
        max_message_bytes: 300,
        ..DeltaConfig::default()
    };
    let mut h = Harness::new(config, LinkConditions::PERFECT, LinkConditions::PERFECT, 1);
    for id in 0..500u64 {
        h.sender.set_unit(id, unit(id as i64, 0));
    }
    let first = h.step();
    for id in 0..500u64 {
        h.sender.set_unit(id, unit(id as i64 + 20, -7));
    }
    let second = h.step();
    for u in first.iter().chain(&second) {
        assert!(
            encode_server(&ServerMessage::UnitUpdate(u.clone()))
                .unwrap()
                .len()
                <= 300
        );
    }
    assert!(
        second.len() < first.len(),
        "deltas pack denser than whole units"
    );
    assert!(h.converged());
}

/// The worked example of `docs/protocol.md` §5, byte for byte: a unit that
/// turned (new velocity, anchored at the update's tick, a few cm off its
/// old track) and a removal.
#[test]
fn the_documented_example_encodes_to_its_bytes() {
    let msg: ServerMessage = ServerMessage::UnitUpdate(UnitUpdate {
        sector_id: SectorId::new(3, -2, 0),
        sequence: 7,
        timestamp: 100,
        updates: vec![
            UnitDelta {
                unit_id: 42,
                body: DeltaBody::Changes {
                    baseline_tick: 97,
                    changes: FieldChanges {
                        motion: Some(MotionChange {
                            anchor_tick: 100,
                            position: PositionChange::Delta(3, -2),
                            velocity: Some(VelocityChange::Delta(5, -1)),
                        }),
                        ..FieldChanges::default()
                    },
                },
            },
            UnitDelta::removed(45),
        ],
    });
    let bytes = encode_server(&msg).unwrap();
    assert_eq!(
        bytes,
        [
            0x01, 0x06, 0x03, 0x00, 0x07, 0x64, 0x02, 0x2A, 0x28, 0xA2, 0x11, 0x33, 0x64
        ]
    );
    let ServerMessage::UnitUpdate(u) = &msg else {
        unreachable!()
    };
    let changes: Vec<u32> = u.updates.iter().map(UnitDelta::changes).collect();
    assert_eq!(changes, [POSITION_CHANGED | VELOCITY_CHANGED, REMOVED]);
    assert_eq!(decode_server(&bytes).unwrap(), msg);
}

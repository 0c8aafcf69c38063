//! Every message survives encode -> decode unchanged.

use galaxy_protocol::*;
use proptest::prelude::*;

use crate::strategies::message;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_message_round_trips(msg in message()) {
        let bytes = encode(&msg).expect("valid messages encode");
        prop_assert_eq!(decode(&bytes), Ok(msg));
    }
}

#[test]
fn each_variant_has_its_own_tag() {
    let sector = SectorId::new(0, 0, 0);
    let samples = [
        NetworkMessage::Connect(Connect {
            player_id: 1,
            auth_token: "t".into(),
            protocol_version: PROTOCOL_VERSION,
        }),
        NetworkMessage::UnitUpdate(UnitUpdate {
            sector_id: sector,
            sequence: 1,
            timestamp: 1,
            updates: vec![UnitDelta::removed(4)],
        }),
        NetworkMessage::UpdateAck(UpdateAck { latest: 3, mask: 1 }),
        NetworkMessage::ViewUpdate(ViewUpdate {
            view: WorldRect::around(WorldPos::new(0, 0), 10),
            max_update_hz: 20,
        }),
        NetworkMessage::BatchCommand(BatchCommand {
            sector_id: sector,
            commands: vec![],
            player_id: 1,
        }),
        NetworkMessage::CombatEvent(CombatEvent {
            sector_id: sector,
            event_type: CombatEventType::BaseDestroyed,
            participants: vec![1],
            timestamp: 2,
        }),
        NetworkMessage::ServerSync(ServerSync {
            server_id: 1,
            sector_states: Default::default(),
            timestamp: 0,
        }),
        NetworkMessage::LoadBalance(LoadBalance {
            target_server: 2,
            sectors_to_migrate: vec![sector],
        }),
        NetworkMessage::SectorTransfer(SectorTransfer {
            player_id: 1,
            from_sector: sector,
            to_sector: sector,
            epoch: 1,
            units: vec![],
            orders: vec![],
        }),
        NetworkMessage::Redirect(Redirect {
            server_addr: "127.0.0.1:5001".into(),
            connect_token: vec![1, 2, 3],
            epoch: 7,
        }),
    ];
    let mut tags: Vec<u8> = samples.iter().map(|m| encode(m).unwrap()[0]).collect();
    for m in &samples {
        assert_eq!(decode(&encode(m).unwrap()).as_ref(), Ok(m), "{}", m.kind());
    }
    tags.dedup();
    assert_eq!(tags.len(), samples.len());
}

#[test]
fn redirect_layout_and_bounds() {
    let msg = NetworkMessage::Redirect(Redirect {
        server_addr: "1.2.3.4:5".into(),
        connect_token: vec![0xaa, 0xbb],
        epoch: 300,
    });
    // tag 9, address length + bytes, token length + raw bytes, epoch varint.
    let mut expected = vec![9u8, 9];
    expected.extend_from_slice(b"1.2.3.4:5");
    expected.extend_from_slice(&[2, 0xaa, 0xbb, 0xfb, 0x2c, 0x01]);
    assert_eq!(encode(&msg).unwrap(), expected);
    assert_eq!(msg.kind(), "Redirect");
    // The largest address and token are accepted.
    let max = NetworkMessage::Redirect(Redirect {
        server_addr: "a".repeat(MAX_SERVER_ADDR_BYTES),
        connect_token: vec![7; MAX_CONNECT_TOKEN_BYTES],
        epoch: u64::MAX,
    });
    assert_eq!(decode(&encode(&max).unwrap()), Ok(max));
}

#[test]
fn unit_id_lists_are_compact() {
    let units = UnitIdList::from_ids(1000..1500).unwrap();
    let msg = NetworkMessage::BatchCommand(BatchCommand {
        sector_id: SectorId::new(3, -4, 0),
        commands: vec![CompressedCommand::Move {
            units,
            to: WorldPos::new(100, 200),
        }],
        player_id: 9,
    });
    let bytes = encode(&msg).unwrap();
    assert!(
        bytes.len() < 24,
        "500 consecutive units took {} bytes",
        bytes.len()
    );
}

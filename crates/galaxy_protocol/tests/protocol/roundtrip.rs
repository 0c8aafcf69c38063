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

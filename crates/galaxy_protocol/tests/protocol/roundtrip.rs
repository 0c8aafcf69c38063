//! Every message survives encode -> decode unchanged.

use galaxy_protocol::*;
use proptest::prelude::*;

use crate::strategies::{Message, message};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_message_round_trips(msg in message()) {
        let bytes = msg.encode();
        prop_assert_eq!(msg.decode_like(&bytes), Ok(msg));
    }

    /// A message of one direction is refused by the other direction's
    /// decoder, by its tag, before its body is read.
    #[test]
    fn no_side_decodes_the_other_direction(msg in message()) {
        let bytes = msg.encode();
        let refused = match msg {
            Message::Client(_) => decode_server::<QuantizedUnit>(&bytes).err(),
            Message::Server(_) => decode_client(&bytes).err(),
        };
        prop_assert_eq!(refused, Some(DecodeError::WrongDirection(bytes[0])));
    }
}

#[test]
fn each_variant_has_its_own_tag() {
    let sector = SectorId::new(0, 0, 0);
    let samples = [
        Message::Client(ClientMessage::Connect(Connect {
            player_id: 1,
            auth_token: "t".into(),
            protocol_version: PROTOCOL_VERSION,
        })),
        Message::Server(ServerMessage::UnitUpdate(UnitUpdate {
            sector_id: sector,
            sequence: 1,
            timestamp: 1,
            updates: vec![UnitDelta::removed(4)],
        })),
        Message::Client(ClientMessage::UpdateAck(UpdateAck { latest: 3, mask: 1 })),
        Message::Client(ClientMessage::ViewUpdate(ViewUpdate {
            view: WorldRect::around(WorldPos::new(0, 0), 10),
            max_update_hz: 20,
            profile: LinkProfile::Mobile,
        })),
        Message::Client(ClientMessage::BatchCommand(BatchCommand {
            sector_id: sector,
            commands: vec![],
            player_id: 1,
        })),
        Message::Server(ServerMessage::CombatEvent(CombatEvent {
            sector_id: sector,
            event_type: CombatEventType::BaseDestroyed,
            participants: vec![1],
            timestamp: 2,
        })),
        Message::Server(ServerMessage::Redirect(Redirect {
            server_addr: "127.0.0.1:5001".into(),
            connect_token: vec![1, 2, 3],
            epoch: 7,
        })),
    ];
    let mut tags: Vec<u8> = samples.iter().map(|m| m.encode()[0]).collect();
    for m in &samples {
        assert_eq!(m.decode_like(&m.encode()).as_ref(), Ok(m));
    }
    tags.sort_unstable();
    tags.dedup();
    assert_eq!(tags.len(), samples.len());
    // Tags 6..=8 are the cluster's; nothing here uses them.
    assert!(tags.iter().all(|t| !(6..=8).contains(t)));
    assert_eq!(codec::FIRST_FOREIGN_TAG, 6);
}

#[test]
fn redirect_layout_and_bounds() {
    let msg: ServerMessage = ServerMessage::Redirect(Redirect {
        server_addr: "1.2.3.4:5".into(),
        connect_token: vec![0xaa, 0xbb],
        epoch: 300,
    });
    // tag 9, address length + bytes, token length + raw bytes, epoch varint.
    let mut expected = vec![9u8, 9];
    expected.extend_from_slice(b"1.2.3.4:5");
    expected.extend_from_slice(&[2, 0xaa, 0xbb, 0xfb, 0x2c, 0x01]);
    assert_eq!(encode_server(&msg).unwrap(), expected);
    assert_eq!(msg.kind(), "Redirect");
    // The largest address and token are accepted.
    let max: ServerMessage = ServerMessage::Redirect(Redirect {
        server_addr: "a".repeat(MAX_SERVER_ADDR_BYTES),
        connect_token: vec![7; MAX_CONNECT_TOKEN_BYTES],
        epoch: u64::MAX,
    });
    assert_eq!(decode_server(&encode_server(&max).unwrap()), Ok(max));
}

#[test]
fn unit_id_lists_are_compact() {
    let units = UnitIdList::from_ids(1000..1500).unwrap();
    let msg = ClientMessage::BatchCommand(BatchCommand {
        sector_id: SectorId::new(3, -4, 0),
        commands: vec![CompressedCommand::Move {
            units,
            to: WorldPos::new(100, 200),
        }],
        player_id: 9,
    });
    let bytes = encode_client(&msg).unwrap();
    assert!(
        bytes.len() < 24,
        "500 consecutive units took {} bytes",
        bytes.len()
    );
}

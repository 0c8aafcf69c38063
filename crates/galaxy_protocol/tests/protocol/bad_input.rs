//! Arbitrary bytes never panic the decoder, never make it allocate more than
//! the input justifies, and always give a typed error or a valid message.

use std::collections::BTreeMap;

use galaxy_protocol::fuzz::{mutate, random_message};
use galaxy_protocol::link_model::SplitMix64;
use galaxy_protocol::*;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;

use crate::alloc_counter::peak_alloc;
use crate::strategies::{Message, message};

/// Allocation the decoder may use for `len` input bytes: proportional to the
/// input (decoded structs are larger than their packed bytes) plus a constant.
fn allowance(len: usize) -> usize {
    160 * len + 64 * 1024
}

/// Decodes `input` as a server would (client messages) and as a client
/// would (server messages), checking the allocation bound and, on success,
/// that the message re-encodes to something that decodes to the same message.
fn check(input: &[u8], kinds: &mut BTreeMap<&'static str, usize>, receiver: &mut DeltaReceiver) {
    let (as_server, peak) = peak_alloc(|| decode_client(input).map(Message::Client));
    let (as_client, peak_client) = peak_alloc(|| decode_server(input).map(Message::Server));
    assert!(
        peak.max(peak_client) <= allowance(input.len()),
        "{} bytes allocated for {} input bytes: {:02x?}",
        peak.max(peak_client),
        input.len(),
        &input[..input.len().min(64)]
    );
    for result in [as_server, as_client] {
        match result {
            Ok(msg) => {
                *kinds.entry("ok").or_default() += 1;
                let again = msg.encode();
                assert_eq!(msg.decode_like(&again).as_ref(), Ok(&msg));
                if let Message::Server(ServerMessage::UnitUpdate(u)) = &msg {
                    // Hostile updates are refused or applied; the receiver never panics.
                    let _ = receiver.receive(u);
                }
            }
            Err(e) => *kinds.entry(e.kind()).or_default() += 1,
        }
    }
}

#[test]
fn ten_thousand_random_and_mutated_inputs() {
    let mut rng = SplitMix64::new(0x5eed);
    let mut runner = TestRunner::deterministic();
    let strategy = message();
    let mut kinds = BTreeMap::new();
    let mut receiver = DeltaReceiver::default();
    let mut total = 0;
    for _ in 0..5_000 {
        let len = rng.below(1500) as usize;
        let input = random_message(&mut rng, len, 12);
        check(&input, &mut kinds, &mut receiver);
        total += 1;
    }
    for _ in 0..5_000 {
        let msg = strategy.new_tree(&mut runner).expect("strategy").current();
        let valid = msg.encode();
        check(&mutate(&mut rng, valid), &mut kinds, &mut receiver);
        total += 1;
    }
    assert_eq!(total, 10_000);
    // The corpus reached both outcomes and many different refusals.
    assert!(kinds.get("ok").copied().unwrap_or(0) > 100, "{kinds:?}");
    assert!(kinds.len() >= 6, "{kinds:?}");
}

/// Varint (bincode standard) of `n`, the way a forger would write a length.
fn varint(n: u64) -> Vec<u8> {
    let mut v = vec![0xfd];
    v.extend_from_slice(&n.to_le_bytes());
    v
}

#[test]
fn forged_lengths_cannot_reserve_memory() {
    let sector = [0u8, 0, 0]; // SectorId { 0, 0, 0 }
    let mut cases: Vec<Vec<u8>> = Vec::new();
    // Connect with a 2^40-byte token.
    cases.push([vec![0u8, 1], varint(1 << 40), b"abc".to_vec()].concat());
    // BatchCommand claiming u64::MAX commands.
    cases.push([vec![4u8], sector.to_vec(), varint(u64::MAX)].concat());
    // A Move command whose id list claims 2^50 fields.
    cases.push([vec![4u8], sector.to_vec(), vec![1, 0], varint(1 << 50)].concat());
    // A Move whose single run claims 2^60 units.
    cases.push(
        [
            vec![4u8],
            sector.to_vec(),
            vec![1, 0, 2, 0],
            varint(1 << 60),
        ]
        .concat(),
    );
    // CombatEvent with 2^62 participants.
    cases.push([vec![5u8], sector.to_vec(), vec![0], varint(1 << 62)].concat());
    // Redirect with a 2^40-byte address.
    cases.push([vec![9u8], varint(1 << 40), b"1.2.3.4:5".to_vec()].concat());
    // Redirect with a 2^40-byte connect token.
    cases.push(
        [
            vec![9u8, 9],
            b"1.2.3.4:5".to_vec(),
            varint(1 << 40),
            vec![1, 2],
        ]
        .concat(),
    );
    // UnitUpdate claiming 65,535 records in a 3-byte payload.
    cases.push(
        [
            vec![1u8],
            sector.to_vec(),
            vec![0, 5, 251, 0xff, 0xff, 0, 0, 0],
        ]
        .concat(),
    );
    for input in &cases {
        let (result, peak) = peak_alloc(|| {
            (
                decode_client(input).err(),
                decode_server::<QuantizedUnit>(input).err(),
            )
        });
        assert!(
            result.0.is_some() && result.1.is_some(),
            "{input:02x?} decoded"
        );
        assert!(
            peak <= 4096,
            "{peak} bytes allocated for {} input bytes: {input:02x?}",
            input.len()
        );
    }
}

#[test]
fn errors_are_typed() {
    assert_eq!(decode_client(&[]), Err(DecodeError::Empty));
    assert_eq!(decode_client(&[200]), Err(DecodeError::UnknownTag(200)));
    assert_eq!(decode_client(&[2]), Err(DecodeError::Truncated));
    // A server-to-server tag is the wrong direction for both sides.
    assert_eq!(decode_client(&[7, 1]), Err(DecodeError::WrongDirection(7)));
    assert_eq!(
        decode_server::<QuantizedUnit>(&[6]),
        Err(DecodeError::WrongDirection(6))
    );
    let ack = encode_client(&ClientMessage::UpdateAck(UpdateAck { latest: 1, mask: 2 })).unwrap();
    assert_eq!(
        decode_client(&[ack.clone(), vec![0]].concat()),
        Err(DecodeError::TrailingBytes(1))
    );
    // A sector above the maximum scale.
    let bad_sector = ClientMessage::BatchCommand(BatchCommand {
        sector_id: SectorId::new(0, 0, 99),
        commands: vec![],
        player_id: 1,
    });
    assert_eq!(
        decode_client(&encode_client(&bad_sector).unwrap()),
        Err(DecodeError::InvalidSector(SectorId::new(0, 0, 99)))
    );
    // An inside-out view rectangle.
    let rect = WorldRect {
        min: WorldPos::new(5, 5),
        max: WorldPos::new(0, 0),
    };
    let view = ClientMessage::ViewUpdate(ViewUpdate {
        view: rect,
        max_update_hz: 0,
        profile: LinkProfile::Desktop,
    });
    assert_eq!(
        decode_client(&encode_client(&view).unwrap()),
        Err(DecodeError::InvalidRect)
    );
    // A redirect's address or token one byte over its bound, really present.
    let long_addr: ServerMessage = ServerMessage::Redirect(Redirect {
        server_addr: "1".repeat(MAX_SERVER_ADDR_BYTES + 1),
        connect_token: vec![],
        epoch: 1,
    });
    let long_token: ServerMessage = ServerMessage::Redirect(Redirect {
        server_addr: "127.0.0.1:5000".into(),
        connect_token: vec![0; MAX_CONNECT_TOKEN_BYTES + 1],
        epoch: 1,
    });
    for msg in [long_addr, long_token] {
        let bytes = encode_server(&msg).unwrap();
        let (result, peak) = peak_alloc(|| decode_server::<QuantizedUnit>(&bytes));
        assert!(
            matches!(result, Err(DecodeError::Malformed(_))),
            "{result:?}"
        );
        assert!(peak <= allowance(bytes.len()), "{peak} bytes allocated");
    }
    // Bits left after the last record of an update.
    let mut u = encode_server::<QuantizedUnit>(&ServerMessage::UnitUpdate(UnitUpdate {
        sector_id: SectorId::new(0, 0, 0),
        sequence: 0,
        timestamp: 0,
        updates: vec![],
    }))
    .unwrap();
    u.push(1);
    assert!(matches!(
        decode_server::<QuantizedUnit>(&u),
        Err(DecodeError::Payload(_))
    ));
}

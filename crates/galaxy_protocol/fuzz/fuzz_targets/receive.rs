//! Feeds a stream of decoded packets to one `DeltaReceiver`.
//!
//! Input: a sequence of chunks, each a 2-byte little-endian length followed by
//! that many bytes (a short last chunk takes what is left). Each chunk is
//! decoded; every `UnitUpdate` goes to the receiver. Errors are fine,
//! panics (including overflow in debug builds) are not.
#![no_main]

use galaxy_protocol::{DeltaReceiver, ServerMessage, decode_server};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rx: DeltaReceiver = DeltaReceiver::default();
    let mut rest = data;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
        let (chunk, tail) = rest.split_at(len.min(rest.len()));
        rest = tail;
        if let Ok(ServerMessage::UnitUpdate(update)) = decode_server(chunk) {
            let _ = rx.receive(&update);
            // Consume events and query state as a client would.
            let _ = rx.drain_events().count();
            let _ = rx.visible_count();
            let _ = rx.units().count();
            // Dead-reckon every track to a few ticks, far ones included.
            let ids: Vec<u64> = rx.units().map(|(id, _)| id).collect();
            for id in ids {
                for tick in [0, update.timestamp, u64::MAX] {
                    let _ = rx.position_at(id, tick);
                }
            }
        }
    }
    let _ = rx.take_acks();
    let _ = rx.current_ack();
});

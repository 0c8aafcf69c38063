//! Both decoders (`decode_client`, as a server runs it, and
//! `decode_server`, as a client runs it) must be total (never panic), and
//! every message either accepts must re-encode and decode back to an equal
//! message.
#![no_main]

use galaxy_protocol::{QuantizedUnit, decode_client, decode_server, encode_client, encode_server};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = decode_client(data) {
        let bytes = encode_client(&msg)
            .unwrap_or_else(|e| panic!("decoded message does not re-encode: {e}\n{msg:?}"));
        let again = decode_client(&bytes)
            .unwrap_or_else(|e| panic!("re-encoded message does not decode: {e}\n{msg:?}"));
        assert_eq!(msg, again, "decode(encode(msg)) != msg");
    }
    if let Ok(msg) = decode_server::<QuantizedUnit>(data) {
        let bytes = encode_server(&msg)
            .unwrap_or_else(|e| panic!("decoded message does not re-encode: {e}\n{msg:?}"));
        let again = decode_server::<QuantizedUnit>(&bytes)
            .unwrap_or_else(|e| panic!("re-encoded message does not decode: {e}\n{msg:?}"));
        assert_eq!(msg, again, "decode(encode(msg)) != msg");
    }
});

//! `decode` must be total (never panic) and every message it accepts must
//! re-encode and decode back to an equal message.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = galaxy_protocol::decode(data) {
        let bytes = galaxy_protocol::encode(&msg)
            .unwrap_or_else(|e| panic!("decoded message does not re-encode: {e}\n{msg:?}"));
        let again = galaxy_protocol::decode(&bytes)
            .unwrap_or_else(|e| panic!("re-encoded message does not decode: {e}\n{msg:?}"));
        assert_eq!(msg, again, "decode(encode(msg)) != msg");
    }
});

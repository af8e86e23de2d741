//! Fuzz target: hostile bytes into both wire decoders.
//!
//! Feeds the input twice — as a raw stream (length prefix included, so oversized and lying
//! prefixes are exercised) and as a body behind an honest prefix (so postcard and the field
//! validators see every input). Beyond "never panics", every frame that decodes must
//! re-encode and decode to the same message, and the consumed count must equal the
//! frame length the prefix announced.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tgcdn_shared::wire::{
    LEN_PREFIX, decode_request, decode_response, encode_request, encode_response, frame_len,
};

fuzz_target!(|data: &[u8]| {
    check_stream(data);
    if data.len() <= 64 * 1024 {
        let mut framed = Vec::with_capacity(LEN_PREFIX + data.len());
        framed.extend_from_slice(&(data.len() as u32).to_le_bytes());
        framed.extend_from_slice(data);
        check_stream(&framed);
    }
});

fn check_stream(buf: &[u8]) {
    let announced = frame_len(buf);

    if let Ok(Some((req, used))) = decode_request(buf) {
        assert_eq!(announced, Ok(Some(used)));
        let mut again = Vec::new();
        encode_request(&req, &mut again).expect("a decoded request must re-encode");
        assert_eq!(decode_request(&again), Ok(Some((req, again.len()))));
    }

    if let Ok(Some((resp, used))) = decode_response(buf) {
        assert_eq!(announced, Ok(Some(used)));
        let mut again = Vec::new();
        encode_response(&resp, &mut again).expect("a decoded response must re-encode");
        assert_eq!(decode_response(&again), Ok(Some((resp, again.len()))));
    }
}

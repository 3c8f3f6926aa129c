//! The manager server's decoding of what authenticated clients send: frames as the
//! wire parses them (hostile lengths included), then requests. Nothing may panic, hang
//! or allocate past the frame cap; whatever decodes must re-encode to a request that
//! decodes to the same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shmkit::connection::wire::parse_header;
use shmkit::manager::protocol::decode_request;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((header, len))) = parse_header(rest, 1 << 16) {
        let Some(frame) = rest.get(header..header + len) else {
            break;
        };
        if let Ok(request) = decode_request(frame) {
            let again = request.to_bytes();
            let back = decode_request(&again).expect("a re-encoded request decodes");
            assert_eq!(format!("{request:?}"), format!("{back:?}"));
        }
        rest = &rest[header + len..];
    }
});

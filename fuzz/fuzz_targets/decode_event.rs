//! `Event::decode` on arbitrary bytes: `Ok` or `Err`, never a panic, and
//! whatever decodes is the canonical encoding of a valid event.

#![no_main]

use libfuzzer_sys::fuzz_target;
use reposix::event::Event;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = Event::decode(data) {
        assert_eq!(
            event.encode(),
            data,
            "decode accepted a non-canonical encoding"
        );
        event.validate().expect("decode returned an invalid event");
    }
});

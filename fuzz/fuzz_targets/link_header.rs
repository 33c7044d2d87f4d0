//! A `Link` header, as pagination reads it: never a panic, and the
//! `next` URL returned is a substring of the header between `<` and `>`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(next) = reposix::tracker::http::link_next(header) {
        assert!(
            header.contains(&format!("<{next}>")),
            "{next:?} is not a <…> entry of {header:?}"
        );
    }
});

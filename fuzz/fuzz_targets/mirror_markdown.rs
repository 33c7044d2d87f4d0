//! The mirror's markdown parser (`reposix::mirror::parse`) on arbitrary
//! bytes: Pattern C reads files other people committed. `Ok` or `Err`,
//! never a panic; what parses renders back to markdown that parses to the
//! same issue, and rendering is a function (same issue, same bytes).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(issue) = reposix::mirror::parse(data) else {
        return;
    };
    let text = issue.to_markdown();
    let again = reposix::mirror::parse(text.as_bytes())
        .unwrap_or_else(|e| panic!("rendered markdown does not parse: {e}\n{text}"));
    assert_eq!(
        again.to_markdown(),
        text,
        "render(parse(render(x))) differs from render(x)"
    );
});

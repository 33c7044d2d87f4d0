//! What reposix reads from git's output and what it prints of it: stderr
//! classification (sync and mirror), the error excerpt, `push --porcelain`
//! lines, reflogs, and redaction. Never a panic; redaction never lets a
//! registered secret through, wherever it sits (in a URL, in prose).

#![no_main]

use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzz-secret-d41d8cd98f00b204";

fuzz_target!(init: reposix::git::redact::register_secret(SECRET), |data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = reposix::git::stderr::classify(&text);
    let _ = reposix::mirror::classify(&text, data.first().is_some_and(|b| b & 1 == 1));
    let detail = reposix::git::stderr::error_detail(&text);
    assert!(detail.len() <= text.len() + 32, "the excerpt grew");
    let _ = reposix::git::push::parse_porcelain(&text);
    let _ = reposix::sync::reflog_oids(data);

    let planted = format!("{text} https://user:{SECRET}@host/x {SECRET}");
    let shown = reposix::git::redact::redact(&planted);
    assert!(!shown.contains(SECRET), "secret printed: {shown:?}");
    let shown = reposix::git::redact::redact(&text);
    assert!(!shown.contains(SECRET), "secret printed: {shown:?}");
    let _ = reposix::git::redact::redact_known(&text);
});

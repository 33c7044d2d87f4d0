//! The egress allowlist (`REPOSIX_ALLOWED_ORIGINS`): parsing never panics,
//! and a parsed list never allows a URL with another scheme than one of its
//! entries, nor (fail-closed) anything when it is empty.

#![no_main]

use libfuzzer_sys::fuzz_target;
use reposix::tracker::http::AllowList;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The list and a URL to check against it, split at the first newline.
    let (list, url) = text.split_once('\n').unwrap_or((text, "http://127.0.0.1/"));
    let Ok(allow) = AllowList::parse(list) else {
        return;
    };
    let Ok(url) = reqwest::Url::parse(url) else {
        return;
    };
    if allow.allows(&url) {
        let scheme = format!("{}://", url.scheme());
        assert!(
            list.contains(&scheme),
            "{url} allowed by {list:?}, which names no {scheme} origin"
        );
        assert!(url.host_str().is_some(), "{url} has no host");
    }
});

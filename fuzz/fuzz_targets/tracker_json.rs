//! Tracker responses, as each adapter decodes them (sim, GitHub, JIRA,
//! Confluence: listings, single records, comments, JIRA issue links and
//! GitHub relation listings), and the timestamps
//! they carry. The first byte picks the adapter; the rest is the body.
//! `Ok` or `Err`, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use reposix::tracker::{confluence, github, jira, sim};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let (issues, comments) = match pick % 4 {
        0 => sim::parse_wire(body),
        1 => github::parse_wire(body),
        2 => jira::parse_wire(body),
        _ => confluence::parse_wire(body),
    };
    for issue in issues.iter().flatten() {
        let _ = issue.updated_at.millis();
        let _ = issue.created_at.millis();
        assert!(
            issue.labels.windows(2).all(|w| w[0] < w[1]),
            "labels not sorted and unique: {:?}",
            issue.labels
        );
    }
    for c in comments.iter().flatten() {
        let _ = c.updated_at.millis();
    }
    // Timestamps as raw text too: every adapter hands them to these.
    if let Ok(text) = std::str::from_utf8(body) {
        if let Some(ms) = reposix::time::parse_millis(text) {
            // What parses formats back to an instant that parses the same
            // (to the second).
            let secs = ms.div_euclid(1000);
            let formatted = reposix::time::format_secs(secs);
            assert_eq!(
                reposix::time::parse_secs(&formatted),
                Some(secs),
                "{text:?} -> {formatted:?}"
            );
        }
    }
});

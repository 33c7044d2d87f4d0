//! Rich-text conversion of tracker bodies: markdown to Atlassian Document
//! Format (JSON for JIRA) and Confluence storage format (XHTML) and back.
//! Never a panic; whatever a tracker holds reads as markdown that is a
//! fixed point of the round trip (sending it back and reading it again
//! gives the same markdown), and any text we send settles after one
//! normalisation: with `m1` the markdown read back, sending `m1` reads
//! back `m1` exactly.

#![no_main]

use libfuzzer_sys::fuzz_target;
use reposix::tracker::adf;
use reposix::tracker::confluence::storage;

fn adf_stable(md: &str) {
    assert_eq!(
        adf::to_markdown(&adf::from_markdown(md)),
        md,
        "ADF round trip of a normal form"
    );
}

fn storage_stable(md: &str) {
    assert_eq!(
        storage::to_markdown(&storage::from_markdown(md)),
        md,
        "storage round trip of a normal form"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    match pick % 3 {
        // A document someone else wrote.
        0 => {
            if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(rest) {
                adf_stable(&adf::to_markdown(&doc));
            }
        }
        1 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                storage_stable(&storage::to_markdown(text));
            }
        }
        // Markdown we send.
        _ => {
            if let Ok(text) = std::str::from_utf8(rest) {
                adf_stable(&adf::to_markdown(&adf::from_markdown(text)));
                storage_stable(&storage::to_markdown(&storage::from_markdown(text)));
            }
        }
    }
});

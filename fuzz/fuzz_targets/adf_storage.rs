//! Rich-text conversion of tracker bodies: Atlassian Document Format (JSON
//! from JIRA) and Confluence storage format (XHTML) to text and back.
//! Never a panic; converting text to a document and back gives the text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use reposix::backend::adf;
use reposix::backend::confluence::storage;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    match pick % 3 {
        // A document someone else wrote.
        0 => {
            if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(rest) {
                let _ = adf::to_text(&doc);
            }
        }
        1 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                let _ = storage::to_text(text);
            }
        }
        // Text we send: it must come back as it went.
        _ => {
            if let Ok(text) = std::str::from_utf8(rest) {
                assert_eq!(adf::to_text(&adf::from_text(text)), text, "ADF round trip");
                assert_eq!(
                    storage::to_text(&storage::from_text(text)),
                    text,
                    "storage round trip"
                );
            }
        }
    }
});

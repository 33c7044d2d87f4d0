//! The pure layout decoders on arbitrary bytes: a git tree object fed
//! through `parse_root` / `parse_events`, the bytes as a format marker, and
//! as a ref name. None may panic; what they accept must round-trip.

#![no_main]

use gix::objs::tree::EntryKind as GitKind;
use gix::objs::TreeRef;
use libfuzzer_sys::fuzz_target;
use reposix::store::layout::{self, EntryKind};

fuzz_target!(|data: &[u8]| {
    if let Ok(n) = layout::parse_marker(data) {
        assert_eq!(data, format!("reposix-events {n}\n").as_bytes());
    }
    if let Ok(name) = std::str::from_utf8(data) {
        if let Some(issue) = layout::issue_of_ref(name) {
            assert_eq!(layout::issue_ref(issue), name);
        }
    }
    let Ok(tree) = TreeRef::from_bytes(data, gix::hash::Kind::Sha1) else {
        return;
    };
    // The same mapping as the store's reader.
    let entries = || {
        tree.entries.iter().map(|e| {
            let kind = match e.mode.kind() {
                GitKind::Blob => EntryKind::Blob,
                GitKind::Tree => EntryKind::Tree,
                _ => EntryKind::Other(u32::from(e.mode.value())),
            };
            let name: &[u8] = e.filename;
            (name, kind, e.oid.to_owned())
        })
    };
    let _ = layout::parse_root(entries());
    if let Ok(events) = layout::parse_events(entries()) {
        for ((id, _), e) in events.iter().zip(&tree.entries) {
            let name: &[u8] = e.filename;
            assert_eq!(id.to_hex().as_bytes(), name);
        }
    }
});

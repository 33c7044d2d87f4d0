//! Folding arbitrary event sets. The input is a sequence of chunks, each a
//! little-endian `u16` length and that many bytes; every chunk that decodes
//! as an event joins the set. Folding must return `Ok` or `Err` (garbage
//! automerge body changes included), never panic, and must not depend on
//! the order the events were inserted in.

#![no_main]

use libfuzzer_sys::fuzz_target;
use reposix::crdt::EventSet;
use reposix::event::{Event, EventId};

fuzz_target!(init: install_panic_hook(), |data: &[u8]| check(data));

/// libfuzzer-sys installs a hook that aborts on every panic, caught or not.
/// `BodyDoc::load` catches automerge's panics on purpose (they become
/// `Err`), so put std's default hook back, minus the noise of automerge's
/// caught panics. A panic that escapes the library still aborts, in
/// libfuzzer-sys's wrapper.
fn install_panic_hook() {
    drop(std::panic::take_hook()); // libfuzzer-sys's aborting hook
    let default = std::panic::take_hook(); // std's default hook
    std::panic::set_hook(Box::new(move |info| {
        let in_automerge = info
            .location()
            .is_some_and(|l| l.file().contains("/automerge-"));
        if !in_automerge {
            default(info);
        }
    }));
}

fn check(data: &[u8]) {
    let mut events = Vec::new();
    let mut rest = data;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let chunk = &rest[2..(2 + len).min(rest.len())];
        rest = &rest[2 + chunk.len()..];
        if let Ok(event) = Event::decode(chunk) {
            events.push((EventId::of_bytes(chunk), event));
        }
    }
    let Some(issue) = events.first().map(|(_, e)| e.issue) else {
        return;
    };
    let forward: EventSet = events.iter().cloned().collect();
    let backward: EventSet = events.iter().rev().cloned().collect();
    let a = forward.fold(issue).map(|s| s.to_canonical_json());
    let b = backward.fold(issue).map(|s| s.to_canonical_json());
    match (a, b) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "fold depends on insertion order"),
        (Err(_), Err(_)) => {}
        (a, b) => panic!("fold depends on insertion order: {a:?} vs {b:?}"),
    }
    let _ = forward.label_tags();
    let _ = forward.heads();
}

//! Compatibility pins: the exact bytes and ids of known events, the
//! rejection of non-canonical encodings, and a small repository written by
//! an earlier build that must keep loading (`tests/fixtures/golden/`).
//!
//! If a test here fails, the on-disk format changed. That is a
//! `refs-format.md` version bump, never a matter of updating the constants.

use std::path::{Path, PathBuf};
use std::process::Command;

use reposix::crdt::body::{BodyDoc, BodyError};
use reposix::crdt::EventSet;
use reposix::event::{
    ActorId, DecodeError, Event, EventId, IssueId, Op, Status, EVENT_FORMAT_VERSION,
};
use reposix::repo::Repo;
use reposix::store::EventStore;

const ISSUE: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd-length hex");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn id(s: &str) -> EventId {
    s.parse().expect("valid event id")
}

fn event(actor: &str, lamport: u64, parents: Vec<EventId>, op: Op) -> Event {
    Event {
        v: EVENT_FORMAT_VERSION,
        issue: ISSUE.parse::<IssueId>().expect("valid issue id"),
        actor: ActorId::new(actor).expect("valid actor"),
        lamport,
        wall_ms: 1_700_000_000_000 + lamport as i64 * 1000,
        parents,
        op,
    }
}

const CREATE_ID: &str = "266b67a6b2c3d69d2dcf14a3caf338063badb8b21e36a27af69f53ecd090c495";
const CREATE_HEX: &str = "a7617601656973737565500190a1b2c3d47e5f8a9b0c1d2e3f4a5b656163746f7265616c696365676c616d706f7274016777616c6c5f6d731b0000018bcfe56be867706172656e747380626f70a166637265617465a5657469746c656e4372617368206f6e20737461727464626f6479f666737461747573646f70656e666c6162656c7382636275676275696961737369676e6565738163626f62";
const SET_TITLE_ID: &str = "83f488a3df6777ccdfb88c41cdf36f7ff5755165db498e94246de7731d152b8c";
const SET_TITLE_HEX: &str = "a7617601656973737565500190a1b2c3d47e5f8a9b0c1d2e3f4a5b656163746f7265616c696365676c616d706f7274026777616c6c5f6d731b0000018bcfe56fd067706172656e7473815820266b67a6b2c3d69d2dcf14a3caf338063badb8b21e36a27af69f53ecd090c495626f70a1697365745f7469746c65a1657469746c65704372617368206f6e2073746172747570";
const ADD_LABEL_ID: &str = "694d8e9b96422f63d04d2c31497f464d29891c726906d970e35ee91b24dc10e8";
const ADD_LABEL_HEX: &str = "a7617601656973737565500190a1b2c3d47e5f8a9b0c1d2e3f4a5b656163746f7263626f62676c616d706f7274036777616c6c5f6d731b0000018bcfe573b867706172656e747381582083f488a3df6777ccdfb88c41cdf36f7ff5755165db498e94246de7731d152b8c626f70a1696164645f6c6162656ca1656c6162656c627031";
const REMOVE_LABEL_ID: &str = "5ea854ba2d073a79194be0e655abfde55562fb6e7b18f9960fdc88557e1a2ebc";
const REMOVE_LABEL_HEX: &str = "a7617601656973737565500190a1b2c3d47e5f8a9b0c1d2e3f4a5b656163746f7263626f62676c616d706f7274046777616c6c5f6d731b0000018bcfe577a067706172656e7473815820694d8e9b96422f63d04d2c31497f464d29891c726906d970e35ee91b24dc10e8626f70a16c72656d6f76655f6c6162656ca2656c6162656c63627567686f62736572766564815820266b67a6b2c3d69d2dcf14a3caf338063badb8b21e36a27af69f53ecd090c495";
const ADD_COMMENT_ID: &str = "55de06c2dff66779a5680f0f68cc9fab57d4079dbe18b02cc13422d85b0a159c";
const ADD_COMMENT_HEX: &str = "a7617601656973737565500190a1b2c3d47e5f8a9b0c1d2e3f4a5b656163746f7265616c696365676c616d706f7274056777616c6c5f6d731b0000018bcfe57b8867706172656e74738158205ea854ba2d073a79194be0e655abfde55562fb6e7b18f9960fdc88557e1a2ebc626f70a16b6164645f636f6d6d656e74a164626f6479705365656e206f6e20312e3220746f6f2e";
const SET_FIELD_ID: &str = "e8194ee1442c916285386b3bde9a9c0d29354a9de2795166865794753dcab6dd";
const SET_FIELD_HEX: &str = "a7617601656973737565500190a1b2c3d47e5f8a9b0c1d2e3f4a5b656163746f7263626f62676c616d706f7274066777616c6c5f6d731b0000018bcfe57f7067706172656e747381582055de06c2dff66779a5680f0f68cc9fab57d4079dbe18b02cc13422d85b0a159c626f70a1697365745f6669656c64a2646e616d656873657665726974796576616c7565f6";

/// The known events, each with its pinned id and bytes. Each names its
/// predecessor as parent, so a change to one id changes all later bytes.
fn known_events() -> Vec<(&'static str, Event, &'static str, &'static str)> {
    vec![
        (
            "create without body",
            event(
                "alice",
                1,
                vec![],
                Op::Create {
                    title: "Crash on start".into(),
                    body: None,
                    status: Status::Open,
                    labels: vec!["bug".into(), "ui".into()],
                    assignees: vec!["bob".into()],
                },
            ),
            CREATE_ID,
            CREATE_HEX,
        ),
        (
            "set_title",
            event(
                "alice",
                2,
                vec![id(CREATE_ID)],
                Op::SetTitle {
                    title: "Crash on startup".into(),
                },
            ),
            SET_TITLE_ID,
            SET_TITLE_HEX,
        ),
        (
            "add_label",
            event(
                "bob",
                3,
                vec![id(SET_TITLE_ID)],
                Op::AddLabel { label: "p1".into() },
            ),
            ADD_LABEL_ID,
            ADD_LABEL_HEX,
        ),
        (
            "remove_label with observed ids",
            event(
                "bob",
                4,
                vec![id(ADD_LABEL_ID)],
                Op::RemoveLabel {
                    label: "bug".into(),
                    observed: vec![id(CREATE_ID)],
                },
            ),
            REMOVE_LABEL_ID,
            REMOVE_LABEL_HEX,
        ),
        (
            "add_comment",
            event(
                "alice",
                5,
                vec![id(REMOVE_LABEL_ID)],
                Op::AddComment {
                    body: "Seen on 1.2 too.".into(),
                },
            ),
            ADD_COMMENT_ID,
            ADD_COMMENT_HEX,
        ),
        (
            "set_field to None",
            event(
                "bob",
                6,
                vec![id(ADD_COMMENT_ID)],
                Op::SetField {
                    name: "severity".into(),
                    value: None,
                },
            ),
            SET_FIELD_ID,
            SET_FIELD_HEX,
        ),
    ]
}

#[test]
fn known_events_encode_to_pinned_bytes_and_ids() {
    for (what, event, want_id, want_hex) in known_events() {
        let (got_id, bytes) = event.seal();
        assert_eq!(hex(&bytes), want_hex, "{what}: canonical bytes changed");
        assert_eq!(got_id.to_hex(), want_id, "{what}: event id changed");
    }
}

#[test]
fn pinned_bytes_decode_to_the_known_events() {
    for (what, event, want_id, want_hex) in known_events() {
        let bytes = unhex(want_hex);
        let decoded = Event::decode(&bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(decoded, event, "{what}");
        assert_eq!(EventId::of_bytes(&bytes), id(want_id), "{what}");
    }
}

/// A CBOR text-string header for a short string (< 24 bytes).
fn text(s: &str) -> Vec<u8> {
    assert!(s.len() < 24);
    let mut out = vec![0x60 | s.len() as u8];
    out.extend_from_slice(s.as_bytes());
    out
}

/// Replace the first occurrence of `from` in `bytes` with `to`.
fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern present");
    let mut out = bytes[..at].to_vec();
    out.extend_from_slice(to);
    out.extend_from_slice(&bytes[at + from.len()..]);
    out
}

#[test]
fn non_canonical_variants_are_rejected() {
    let good = unhex(CREATE_HEX);
    Event::decode(&good).expect("the canonical form decodes");

    // The first two map entries: "v": 1 and "issue": h'0190…'.
    let v_entry = [text("v"), vec![0x01]].concat();
    let issue_entry = [text("issue"), vec![0x50], unhex(&ISSUE.replace('-', ""))].concat();
    assert!(good[1..].starts_with(&[v_entry.clone(), issue_entry.clone()].concat()));
    let rest = &good[1 + v_entry.len() + issue_entry.len()..];
    let alice = text("alice");

    // Bytes that decode to a valid event, but not from its one encoding.
    let not_canonical: Vec<(&str, Vec<u8>)> = vec![
        (
            "map keys swapped",
            [&[0xa7][..], &issue_entry, &v_entry, rest].concat(),
        ),
        (
            "indefinite-length text string",
            replace(&good, &alice, &[&[0x7f][..], &alice, &[0xff]].concat()),
        ),
        (
            "indefinite-length byte string",
            replace(
                &good,
                &issue_entry,
                &[&issue_entry[..6], &[0x5f], &issue_entry[6..], &[0xff]].concat(),
            ),
        ),
        (
            "non-shortest string length",
            replace(&good, &alice, &[&[0x78, 0x05][..], b"alice"].concat()),
        ),
        (
            "tag 0 around the title",
            replace(
                &good,
                &text("Crash on start"),
                &[&[0xc0][..], &text("Crash on start")].concat(),
            ),
        ),
        ("tag 0 around the event", [&[0xc0][..], &good].concat()),
        (
            "indefinite-length map",
            [&[0xbf][..], &good[1..], &[0xff]].concat(),
        ),
        ("trailing byte", [&good[..], &[0x00]].concat()),
    ];
    for (what, bytes) in not_canonical {
        assert_ne!(bytes, good, "{what}: the variant must differ");
        match Event::decode(&bytes) {
            Err(DecodeError::NotCanonical { .. }) => {}
            other => panic!("{what}: expected NotCanonical, got {other:?}"),
        }
    }

    // Bytes that are not an event at all.
    let malformed: Vec<(&str, Vec<u8>)> = vec![
        (
            "lamport as a half float",
            replace(
                &good,
                &[&text("lamport")[..], &[0x01]].concat(),
                &[&text("lamport")[..], &[0xf9, 0x3c, 0x00]].concat(),
            ),
        ),
        (
            "unknown extra field",
            [&[0xa8][..], &good[1..], &text("x"), &[0x00]].concat(),
        ),
        ("truncated", good[..good.len() - 1].to_vec()),
        ("empty", vec![]),
    ];
    for (what, bytes) in malformed {
        match Event::decode(&bytes) {
            Err(DecodeError::Malformed(_)) => {}
            other => panic!("{what}: expected Malformed, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// The golden repository.

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden")
}

/// Run `git` with no system or global configuration.
fn git(home: &Path, dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", home.join("gitconfig"))
        .env("GIT_AUTHOR_NAME", "golden")
        .env("GIT_AUTHOR_EMAIL", "golden@reposix")
        .env("GIT_COMMITTER_NAME", "golden")
        .env("GIT_COMMITTER_EMAIL", "golden@reposix")
        .env("LC_ALL", "C")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 git output")
}

/// The canonical JSON of every issue in `repo`, one line each, by issue id.
fn states_jsonl(repo: &Repo) -> String {
    let mut out = String::new();
    for r in repo.store().list_refs().expect("lists refs") {
        let issue = r.issue.expect("every ref names an issue");
        let state = repo.show(issue).expect("the issue loads");
        out.push_str(&state.to_canonical_json());
        out.push('\n');
    }
    out
}

#[test]
fn golden_repository_keeps_loading() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path();
    let dir = home.join("repo");
    std::fs::create_dir(&dir).expect("mkdir");
    let bundle = fixture_dir().join("golden.bundle");
    git(home, &dir, &["init", "--quiet"]);
    git(
        home,
        &dir,
        &[
            "fetch",
            "--quiet",
            bundle.to_str().expect("utf-8 path"),
            "refs/reposix/*:refs/reposix/*",
        ],
    );

    let repo = Repo::open(&dir).expect("opens");
    let expected =
        std::fs::read_to_string(fixture_dir().join("expected-states.jsonl")).expect("fixture");
    assert_eq!(expected.lines().count(), 2, "the fixture holds two issues");
    assert_eq!(states_jsonl(&repo), expected);

    let report = repo.fsck().expect("fsck runs");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.refs, 2);
    // The clock rule (refs-format.md section 5, stated after this fixture
    // was written) holds for every event an earlier build wrote.
    for r in repo.store().list_refs().expect("refs") {
        let log = repo.load(r.issue.expect("issue ref")).expect("loads");
        assert!(log.events.len() > 1);
        assert!(
            log.events.invalid().is_empty(),
            "{}: {:?}",
            r.refname,
            log.events.invalid()
        );
    }
    // One issue was written by two clones and joined by a merge commit.
    let merges = git(
        home,
        &dir,
        &["rev-list", "--count", "--min-parents=2", "--all"],
    );
    assert_eq!(merges.trim(), "1");
}

/// How the fixture was made. Never rerun casually: the point of the fixture
/// is that an *earlier* build wrote it. To make a new one (e.g. for a new
/// format version, kept beside the old), run
/// `REPOSIX_GOLDEN_OUT=/some/empty/dir cargo test --test it make_golden -- --ignored`.
#[test]
#[ignore = "writes a new golden fixture; see tests/fixtures/golden/README.md"]
fn make_golden_repository() {
    use reposix::repo::{Change, NewIssue};

    let out = PathBuf::from(std::env::var_os("REPOSIX_GOLDEN_OUT").expect("REPOSIX_GOLDEN_OUT"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path();
    let alice = ActorId::new("alice").expect("valid actor");
    let bob = ActorId::new("bob").expect("valid actor");
    let a_dir = home.join("alice");
    let b_dir = home.join("bob");
    let a = Repo::init(&a_dir).expect("init alice");
    let b = Repo::init(&b_dir).expect("init bob");
    let fetch = |into: &Path, from: &Path, refspec: &str| {
        git(
            home,
            into,
            &[
                "fetch",
                "--quiet",
                from.to_str().expect("utf-8 path"),
                refspec,
            ],
        )
    };

    let first = a
        .create(
            &alice,
            NewIssue {
                title: "Parser panics on empty input".into(),
                body: "Steps:\n1. run `parse \"\"`\n2. see the panic\n".into(),
                status: None,
                labels: vec!["bug".into(), "parser".into()],
                assignees: vec!["alice".into()],
            },
        )
        .expect("create")
        .issue;
    a.apply(
        first,
        &alice,
        &[
            Change::AddLabel("p1".into()),
            Change::Comment("Reproduced on main.".into()),
            Change::Field("severity".into(), Some("high".into())),
        ],
    )
    .expect("alice edits");

    // Bob clones, and both edit concurrently.
    fetch(&b_dir, &a_dir, "refs/reposix/*:refs/reposix/*");
    let bobs_view = b.show(first).expect("bob sees the issue");
    let comment = bobs_view.comments[0].id;
    b.apply(
        first,
        &bob,
        &[
            Change::RemoveLabel("parser".into()),
            Change::Body(
                "Steps:\n1. run `parse \"\"`\n2. see the panic\n\nSeen on 1.2 too.\n".into(),
            ),
            Change::Status(Status::InProgress),
            Change::AddAssignee("bob".into()),
            Change::Comment("Working on it.".into()),
        ],
    )
    .expect("bob edits");
    a.apply(
        first,
        &alice,
        &[
            Change::Title("Parser panics on empty input (é, 日本)".into()),
            Change::Body("Steps:\n1. run `parse \"\"` on Linux\n2. see the panic\n".into()),
            Change::EditComment(comment, "Reproduced on main and 1.2.".into()),
            Change::Field("severity".into(), None),
            Change::Field("area".into(), Some("parser".into())),
        ],
    )
    .expect("alice edits concurrently");

    // Bob files a second issue linking the first, comments and deletes it.
    let second = b
        .create(
            &bob,
            NewIssue {
                title: "Add a fuzz target for the parser".into(),
                body: String::new(),
                status: Some(Status::Open),
                labels: vec![],
                assignees: vec![],
            },
        )
        .expect("create")
        .issue;
    b.apply(
        second,
        &bob,
        &[
            Change::Link(reposix::crdt::Link {
                kind: "relates".into(),
                target: first,
            }),
            Change::Comment("Wrong issue, sorry.".into()),
        ],
    )
    .expect("bob edits");
    let wrong = b.show(second).expect("loads").comments[0].id;
    b.apply(second, &bob, &[Change::DeleteComment(wrong)])
        .expect("bob deletes");

    // Alice fetches Bob's refs aside and merges them (a merge commit for
    // the first issue, a new ref for the second).
    fetch(&a_dir, &b_dir, "refs/reposix/issues/*:refs/incoming/bob/*");
    for (issue, outcome) in a.merge_refs_under("refs/incoming/bob/").expect("merges") {
        outcome.unwrap_or_else(|e| panic!("merging {issue}: {e}"));
    }
    let deletes = git(
        home,
        &a_dir,
        &[
            "for-each-ref",
            "--format=delete %(refname)",
            "refs/incoming/",
        ],
    );
    for line in deletes.lines() {
        let name = line.trim_start_matches("delete ");
        git(home, &a_dir, &["update-ref", "-d", name]);
    }

    std::fs::create_dir_all(&out).expect("mkdir out");
    git(
        home,
        &a_dir,
        &[
            "bundle",
            "create",
            "--quiet",
            out.join("golden.bundle").to_str().expect("utf-8 path"),
            "--all",
        ],
    );
    std::fs::write(out.join("expected-states.jsonl"), states_jsonl(&a)).expect("write states");
}

// ---------------------------------------------------------------------------
// Fuzz regressions.

/// The create event of the golden fixture's first issue (with a body).
const FUZZ_CREATE_HEX: &[&str] = &[
    "a7617601656973737565502d6a709108ee4ce8bfad00ed59db1bca656163746f7265616c696365676c616d706f727401",
    "6777616c6c5f6d731b000001a1ffb6344f67706172656e747380626f70a166637265617465a5657469746c65781c5061",
    "727365722070616e696373206f6e20656d70747920696e70757464626f647958a5856f4a839d3a505d019a0101d50415",
    "870f3d716be9d34e6302659b604aedd4e3f352f443caed4be728a766af105133807df4abe315fc2469ea3c7bf7750102",
    "000001102d6a709108ee4ce8bfad00ed59db1bca090102020211041305340242025602572a70022a012a01000129007e",
    "00022801002a2a012a1653746570733a0a312e2072756e20607061727365202222600a322e2073656520746865207061",
    "6e69630a2a0066737461747573646f70656e666c6162656c738263627567667061727365726961737369676e65657381",
    "65616c696365",
];

/// An edit_body event of the same issue with one byte of its automerge
/// change flipped (offset 259: 0x7e -> 0x7f). Still canonical CBOR.
const FUZZ_CORRUPT_EDIT_HEX: &[&str] = &[
    "a7617601656973737565502d6a709108ee4ce8bfad00ed59db1bca656163746f7265616c696365676c616d706f727406",
    "6777616c6c5f6d731b000001a1ffb634a967706172656e74738158207289d0f188bf72df21debe077e7fd32b671fdc07",
    "99359fcaba7d1609447a4205626f70a169656469745f626f6479a1666368616e67655895856f4a833cdc9950018a0101",
    "9d3a505d43cf1cd1f0106b207e1fdf6d880ebc292879fcf6f8baa6fe644da73010e75ca38b6f979b24a5e74f3e5a8e23",
    "dd012c000002102d6a709108ee4ce8bfad00ed59db1bca105133807df4abe315fc2469ea3c7bf7750901020202110413",
    "0534024202560257097002090109017f0208007f19130701000909010916206f6e204c696e75780900",
];
const FUZZ_CORRUPT_OFFSET: usize = 259;

/// Regression (fuzz target fold_events, crash-bf5b5e99): a body change that
/// automerge 0.12 parses but that is corrupt made `apply_changes` panic
/// (assertion in op_set2/change/batch.rs) and took the process down with
/// it. The fold must fail with a body error instead.
#[test]
fn corrupt_body_change_fails_the_fold_without_panicking() {
    let create_bytes = unhex(&FUZZ_CREATE_HEX.concat());
    let create = Event::decode(&create_bytes).expect("canonical create");
    let issue = create.issue;
    let Op::Create {
        body: Some(genesis_edit),
        ..
    } = &create.op
    else {
        panic!("the create carries a body");
    };
    // The fuzzer's edit names a parent that is not in this set, so the
    // fold ignores it (clock rule, refs-format.md section 5); the body
    // document itself must still refuse it without panicking.
    let body_with = |edit_bytes: &[u8]| {
        let edit = Event::decode(edit_bytes).expect("canonical edit_body");
        let Op::EditBody { change } = &edit.op else {
            panic!("an edit_body event");
        };
        let set: EventSet = [
            (EventId::of_bytes(&create_bytes), create.clone()),
            (EventId::of_bytes(edit_bytes), edit.clone()),
        ]
        .into_iter()
        .collect();
        assert_eq!(set.invalid().len(), 1, "the edit's parent is missing");
        set.fold(issue).expect("the valid part folds");
        BodyDoc::load(issue, [genesis_edit, change]).map(|d| d.text())
    };

    let corrupt = unhex(&FUZZ_CORRUPT_EDIT_HEX.concat());
    match body_with(&corrupt) {
        Err(BodyError::Apply(_) | BodyError::BadChange(_)) => {}
        other => panic!("expected a body error, got {other:?}"),
    }

    // The same event before the flip applies: the error is the corruption's.
    let mut original = corrupt;
    assert_eq!(original[FUZZ_CORRUPT_OFFSET], 0x7f);
    original[FUZZ_CORRUPT_OFFSET] = 0x7e;
    body_with(&original).expect("the uncorrupted change applies");
}

//! Agents acting for people (issue 14, point 5): `reposix actor new
//! agent-7 --on-behalf-of alice` makes agent-7's writes carry, in the
//! issue's own log, whom they were made for; `issue show` and `log` (text
//! and JSON) say so on every replica; older logs load as before.

use reposix::event::{ActorId, DecodeError, Event, IssueId, Op};
use serde_json::Value;

use crate::support::TestRepo;

fn agent(t: &TestRepo, human: &str) {
    t.rx(&["actor", "new", "agent-7", "--on-behalf-of", human])
        .ok();
}

/// The `on_behalf_of` events of an issue's log (JSON entries).
fn attributions(t: &TestRepo, issue: &str) -> Vec<Value> {
    t.json(&["log", issue])
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["op"] == "on_behalf_of")
        .cloned()
        .collect()
}

#[test]
fn an_agent_records_the_human_it_acts_for_in_show_and_log() {
    let t = TestRepo::new();
    let run = t
        .rx(&["actor", "new", "agent-7", "--on-behalf-of", "alice"])
        .ok();
    assert_eq!(
        run.stdout.trim(),
        "created actor agent-7, acting on behalf of alice"
    );
    let list = t.json(&["actor", "list"]);
    assert_eq!(list[0]["actor"], "agent-7");
    assert_eq!(list[0]["on_behalf_of"], "alice", "{list}");
    let listed = t.rx(&["actor", "list"]).ok();
    assert!(
        listed.stdout.contains("agent-7 (on behalf of alice)"),
        "{}",
        listed.stdout
    );

    let data = t
        .rx_as("agent-7", &["--json", "issue", "new", "Flaky test"])
        .ok()
        .data();
    let id = data["issue"].as_str().expect("id").to_owned();
    assert_eq!(data["events"].as_array().map(Vec::len), Some(2), "{data}");
    t.rx_as("agent-7", &["issue", "comment", &id, "Bisected it"])
        .ok();
    t.rx(&["issue", "comment", &id, "Thanks"]).ok();

    let shown = t.show(&id);
    assert_eq!(shown["created_by"], "agent-7");
    assert_eq!(shown["created_on_behalf_of"], "alice", "{shown}");
    assert_eq!(
        shown["on_behalf_of"],
        serde_json::json!({"agent-7": "alice"})
    );
    assert_eq!(shown["comments"][0]["on_behalf_of"], "alice");
    assert!(
        shown["comments"][1].get("on_behalf_of").is_none(),
        "{shown}"
    );

    let text = t.rx(&["issue", "show", &id]).ok().stdout;
    assert!(
        text.contains("agent:     agent-7 acts on behalf of alice\n"),
        "{text}"
    );
    assert!(
        text.contains(" by agent-7 (on behalf of alice) · updated "),
        "{text}"
    );
    assert!(
        text.contains(" by agent-7 (on behalf of alice), "),
        "{text}"
    );
    assert!(text.contains(" by tester, "), "{text}");

    // The log: one attribution, written first; each agent event marked.
    let log = t.json(&["log", &id]);
    let entries = log.as_array().expect("entries");
    assert_eq!(entries[0]["op"], "on_behalf_of", "{log}");
    assert_eq!(entries[0]["summary"], "acts on behalf of alice");
    for e in entries {
        let want = if e["actor"] == "agent-7" {
            Value::from("alice")
        } else {
            Value::Null
        };
        assert_eq!(
            e.get("on_behalf_of").cloned().unwrap_or(Value::Null),
            want,
            "{e}"
        );
    }
    assert_eq!(attributions(&t, &id).len(), 1, "written once per issue");
    let text = t.rx(&["log", &id]).ok().stdout;
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("agent-7 (for alice)"))
            .count(),
        3,
        "{text}"
    );
    t.rx(&["fsck"]).ok();
}

#[test]
fn a_new_human_is_recorded_from_the_next_write_and_earlier_ones_keep_theirs() {
    let t = TestRepo::new();
    let id = t.new_issue("Someone else's issue", &[]);
    agent(&t, "alice");
    // An agent's first write to an issue it did not create carries it.
    t.rx_as("agent-7", &["issue", "comment", &id, "for alice"])
        .ok();
    t.rx_as("agent-7", &["issue", "status", &id, "in_progress"])
        .ok();
    assert_eq!(attributions(&t, &id).len(), 1);
    let run = t
        .rx(&["actor", "new", "agent-7", "--on-behalf-of", "bob"])
        .ok();
    assert!(
        run.stdout.contains("acting on behalf of bob"),
        "{}",
        run.stdout
    );
    t.rx_as("agent-7", &["issue", "comment", &id, "for bob"])
        .ok();
    assert_eq!(attributions(&t, &id).len(), 2);
    let shown = t.show(&id);
    assert_eq!(shown["comments"][0]["on_behalf_of"], "alice", "{shown}");
    assert_eq!(shown["comments"][1]["on_behalf_of"], "bob", "{shown}");
    assert_eq!(shown["on_behalf_of"]["agent-7"], "bob");
    // The issue's creator acted for itself.
    assert!(shown.get("created_on_behalf_of").is_none(), "{shown}");
    // A write that changes nothing writes no attribution either.
    t.rx_as("agent-7", &["issue", "status", &id, "in_progress"])
        .ok();
    assert_eq!(attributions(&t, &id).len(), 2);
}

#[test]
fn an_actor_cannot_act_on_behalf_of_itself_or_of_an_invalid_name() {
    let t = TestRepo::new();
    let run = t
        .rx(&["actor", "new", "agent-7", "--on-behalf-of", "agent-7"])
        .code(7);
    assert!(
        run.stderr.contains("cannot act on behalf of itself"),
        "{}",
        run.stderr
    );
    t.rx(&["actor", "new", "agent-7", "--on-behalf-of", "two words"])
        .code(7);
    assert_eq!(t.json(&["actor", "list"]), serde_json::json!([]));
}

#[test]
fn a_clone_without_the_agent_configured_sees_the_attribution_after_sync() {
    let a = TestRepo::new();
    let remote = a.home().join("remote.git");
    let url = remote.to_str().expect("UTF-8");
    a.git(&["init", "-q", "--bare", url]);
    a.git(&["remote", "add", "origin", url]);
    agent(&a, "alice");
    let id = a.new_issue("Shared", &[]);
    a.rx_as("agent-7", &["issue", "comment", &id, "from the agent"])
        .ok();
    a.rx(&["sync"]).ok();

    let b = TestRepo::new();
    b.git(&["remote", "add", "origin", url]);
    b.rx(&["sync"]).ok();
    assert_eq!(b.json(&["actor", "list"]), serde_json::json!([]));
    let shown = b.show(&id);
    assert_eq!(shown["comments"][0]["on_behalf_of"], "alice", "{shown}");
    assert_eq!(shown["on_behalf_of"]["agent-7"], "alice");
    let log = b.rx(&["log", &id]).ok().stdout;
    assert!(log.contains("agent-7 (for alice)"), "{log}");
    // agent-7 writing from b, where nobody configured it, keeps alice.
    b.rx_as("agent-7", &["issue", "comment", &id, "from b"])
        .ok();
    let shown = b.show(&id);
    assert_eq!(shown["comments"][1]["on_behalf_of"], "alice", "{shown}");
    b.rx(&["sync"]).ok();
    a.rx(&["sync"]).ok();
    assert_eq!(a.show(&id), b.show(&id));
}

/// Old data keeps loading: an issue written without attributions shows
/// none, in every output (the golden repository, `golden.rs`, pins that
/// logs written by older builds still fold to the same states).
#[test]
fn logs_without_attributions_load_and_show_none() {
    let t = TestRepo::new();
    let id = t.new_issue("Before agents", &["-b", "text"]);
    t.rx(&["issue", "comment", &id, "plain"]).ok();
    let shown = t.show(&id);
    for key in ["on_behalf_of", "created_on_behalf_of"] {
        assert!(shown.get(key).is_none(), "{shown}");
    }
    assert!(shown["comments"][0].get("on_behalf_of").is_none());
    let log = t.json(&["log", &id]);
    assert!(
        log.as_array()
            .expect("entries")
            .iter()
            .all(|e| e.get("on_behalf_of").is_none()),
        "{log}"
    );
}

fn sample(v: u32) -> Event {
    Event {
        v,
        issue: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
            .parse::<IssueId>()
            .expect("issue id"),
        actor: ActorId::new("agent-7").expect("actor"),
        lamport: 1,
        wall_ms: 1_700_000_000_000,
        parents: vec![],
        op: Op::OnBehalfOf {
            human: ActorId::new("alice").expect("human"),
        },
    }
}

/// The new operation's bytes and id, pinned (refs-format.md, section 4).
#[test]
fn the_on_behalf_of_event_has_pinned_bytes_and_needs_envelope_4() {
    let e = sample(4);
    let (id, bytes) = e.seal();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, GOLDEN_HEX);
    assert_eq!(id.to_hex(), GOLDEN_ID);
    assert_eq!(Event::decode(&bytes).expect("decodes"), e);
    // In an older envelope the operation is damage, named as such.
    let err = Event::decode(&sample(3).encode()).expect_err("v3 cannot hold it");
    assert!(
        matches!(err, DecodeError::Invalid { .. }) && err.to_string().contains("on_behalf_of"),
        "{err}"
    );
}

const GOLDEN_HEX: &str = "a7617604656973737565500190a1b2c3d47e5f8a9b0c1d2e3f4a5b656163746f72676167656e742d37676c616d706f7274016777616c6c5f6d731b0000018bcfe5680067706172656e747380626f70a16c6f6e5f626568616c665f6f66a16568756d616e65616c696365";
const GOLDEN_ID: &str = "56457c678c743c5c59d7ff08bd7d140bec74cfe78b7b2746a2c7d6a0ca9ce707";

//! `reposix backend …`, `reposix init <spec> DIR`, `reposix sync --backend`
//! through the real binary, against the simulator on loopback.

use std::path::Path;

use crate::support::TestRepo;

fn sim() -> reposix_sim::SimHandle {
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/reposix-sim/seed.json");
    reposix_sim::start(reposix_sim::SimConfig {
        seed_file: Some(seed.into()),
        rate_limit: 0,
        ..reposix_sim::SimConfig::default()
    })
    .expect("sim starts")
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p)
                .map(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
                .unwrap_or(false)
            {
                hits.push(p.display().to_string());
            }
        }
    }
    hits
}

#[test]
fn backend_add_list_remove_and_sync_import_export() {
    let s = sim();
    let t = TestRepo::new();
    t.rx(&["init"]).ok();
    let spec = format!("sim::{}", s.project_url("demo"));
    t.rx(&["backend", "add", "demo", &spec]).ok();
    let listed = t.json(&["backend", "list"]);
    assert_eq!(listed[0]["name"], "demo");
    assert_eq!(listed[0]["spec"], spec.as_str());

    let synced = t.json(&["sync", "--backend", "demo"]);
    assert_eq!(synced["import"]["new_issues"], 6);
    let issues = t.json(&["issue", "list", "--state", "all"]);
    assert_eq!(issues["issues"].as_array().expect("array").len(), 6);

    t.new_issue("Filed locally", &["-b", "offline body"]);
    let synced = t.json(&["sync", "--backend", "demo", "--export-only"]);
    assert_eq!(synced["export"]["created"], 1);
    assert!(synced["import"].is_null(), "--export-only skips import");
    let synced = t.json(&["sync", "--backend", "demo"]);
    assert_eq!(synced["export"]["created"], 0, "no duplicate on re-sync");
    assert_eq!(
        synced["import"]["observed"], 0,
        "our own export does not echo"
    );

    t.rx(&["backend", "remove", "demo"]).ok();
    t.rx(&["backend", "remove", "demo"]).code(3);
    t.rx(&["sync", "--backend", "demo"]).code(3);
}

#[test]
fn init_with_a_tracker_imports_ready_to_edit() {
    let s = sim();
    let t = TestRepo::new();
    let dir = t.path().join("fresh");
    let spec = format!("sim::{}", s.project_url("demo"));
    t.rx(&["init", &spec, &dir.to_string_lossy()]).ok();
    let out = t.run({
        let mut c = t.command(env!("CARGO_BIN_EXE_reposix"));
        c.arg("-C")
            .arg(&dir)
            .args(["--json", "issue", "list", "--state", "all"]);
        c
    });
    let data = out.ok().data();
    assert_eq!(data["issues"].as_array().expect("array").len(), 6);
}

#[test]
fn egress_outside_the_allowlist_is_refused_with_exit_12() {
    let t = TestRepo::new();
    t.rx(&["init"]).ok();
    // A documentation-range address: nothing is sent, the allowlist
    // (loopback by default) refuses before any connection.
    t.rx(&["backend", "add", "far", "sim::http://192.0.2.1:7878/demo"])
        .ok();
    // `backend add` allowed the origin it attached (issue 13); revoked, it
    // is refused, and the hint names the exact origin.
    t.git(&["config", "--unset-all", "reposix.backend.far.allowedOrigin"]);
    let run = t.rx(&["sync", "--backend", "far"]).code(12);
    assert!(
        run.stderr
            .contains("REPOSIX_ALLOWED_ORIGINS=http://192.0.2.1:7878"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_token_never_lands_in_output_or_under_dot_git() {
    let t = TestRepo::new();
    t.rx(&["init"]).ok();
    t.rx(&["backend", "add", "gh", "github::octo/repo"]).ok();
    let port = closed_port();
    let mut cmd = t.reposix();
    cmd.args(["sync", "--backend", "gh"])
        .env("GITHUB_TOKEN", "ghp_s3cretTOKENvalue")
        .env("REPOSIX_GITHUB_API", format!("http://127.0.0.1:{port}"));
    let run = t.run(cmd);
    assert_ne!(run.code, 0, "an unreachable API fails");
    assert!(!run.stdout.contains("s3cret") && !run.stderr.contains("s3cret"));
    assert!(
        files_containing(&t.git_dir(), "s3cretTOKEN").is_empty(),
        "the token was written under .git"
    );
}

// Issue 14: the sim has no relations between issues; a sync that exports
// issues carrying typed links says they stay local instead of dropping
// them silently.
#[test]
fn sync_backend_says_typed_links_stay_local() {
    let s = sim();
    let t = TestRepo::new();
    t.rx(&["init"]).ok();
    let spec = format!("sim::{}", s.project_url("demo"));
    t.rx(&["backend", "add", "demo", &spec]).ok();
    t.rx(&["sync", "--backend", "demo", "--import-only"]).ok();
    let a = t.new_issue("Blocker", &[]);
    let b = t.new_issue("Blocked", &[]);
    let quiet = t.rx(&["sync", "--backend", "demo"]).ok();
    assert!(
        !quiet.stderr.contains("typed links"),
        "no links, no notice: {}",
        quiet.stderr
    );
    t.rx(&["issue", "link", &a, &b, "--kind", "blocks"]).ok();
    let run = t.rx(&["sync", "--backend", "demo"]).ok();
    assert!(
        run.stderr.contains(
            "1 typed links stay local (kept in the refs, demo is not told): demo has no relation"
        ),
        "{}",
        run.stderr
    );
    let json = t.json(&["sync", "--backend", "demo", "--reconcile"]);
    assert_eq!(json["export"]["links_local_only"], 1, "{json}");
}

//! The adapter for the simulator (`crate::sim`) and for reposix-sim 0.14.
//!
//! Mapping:
//! - revision = the sim's `version` (order and `If-Match` token);
//! - status: the sim's five statuses are reposix's five, 1:1;
//! - assignees: the sim has one `assignee`; a patch naming several sends
//!   the first in sorted order (the others are dropped: the tracker cannot
//!   hold them, see [`Capabilities::multiple_assignees`]);
//! - markers: the sim has no hidden field, so [`body_marker`] is appended
//!   to issue and comment bodies on create and stripped on every read;
//!   edits re-append the marker they found, so it survives body changes
//!   and bodies round-trip byte for byte for the user;
//! - cursor = the largest `updated_at` seen. The sim's `since` is exclusive
//!   and second-granular, so [`Backend::list_changed`] asks from one second
//!   before the cursor: writes in the cursor's own second are seen again
//!   rather than missed, and the caller dedupes by revision;
//! - comments are an extension reposix-sim 0.14 lacks: whether the server
//!   has them is probed once (`GET /projects/{slug}/comments`, 404 = no)
//!   and cached.

use std::cell::Cell;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::adapter::cursor_millis;
use super::http::{self, Auth, HttpClient, Response, Stats};
use super::{
    body_marker, strip_body_marker, Backend, BackendError, BackendKind, BackendSpec, Capabilities,
    IssuePatch, NewRemoteIssue, RemoteComment, RemoteIssue, Revision,
};
use crate::event::Status;
use crate::time;

/// A sim project reached over HTTP.
pub struct SimBackend {
    http: HttpClient,
    /// `{base}/projects/{slug}`.
    project: String,
    instance: String,
    /// `None` until probed.
    comments: Cell<Option<bool>>,
}

/// An issue record as the sim sends it.
#[derive(Deserialize)]
struct WireIssue {
    id: u64,
    title: String,
    status: String,
    #[serde(default)]
    assignee: Option<String>,
    #[serde(default)]
    labels: Vec<String>,
    created_at: String,
    updated_at: String,
    version: u64,
    #[serde(default)]
    body: String,
}

/// A comment as the sim sends it.
#[derive(Deserialize)]
struct WireComment {
    id: u64,
    author: String,
    body: String,
    created_at: String,
    updated_at: String,
}

impl SimBackend {
    /// An adapter for `spec` (`sim::http://host:port/<slug>`), sending
    /// `X-Reposix-Agent: <agent>`, with the environment's egress allowlist.
    pub fn new(spec: &BackendSpec, agent: &str) -> Result<SimBackend, BackendError> {
        SimBackend::with_client(spec, HttpClient::new(Auth::None, agent)?)
    }

    /// An adapter using a prepared client (allowlist, retry policy).
    pub fn with_client(spec: &BackendSpec, http: HttpClient) -> Result<SimBackend, BackendError> {
        if spec.kind != BackendKind::Sim {
            return Err(BackendError::Spec(format!(
                "{} is not a sim backend",
                spec.to_spec_string()
            )));
        }
        let (base, slug) = spec.split_base().ok_or_else(|| {
            BackendError::Spec(format!(
                "sim address {:?}: expected http://host:port/<project>",
                spec.address
            ))
        })?;
        if !slug
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            || slug == "."
            || slug == ".."
        {
            return Err(BackendError::Spec(format!(
                "sim project {slug:?}: letters, digits and `-_.` only"
            )));
        }
        Ok(SimBackend {
            http,
            project: format!("{base}/projects/{slug}"),
            instance: spec.address.clone(),
            comments: Cell::new(None),
        })
    }

    /// Request counters of the underlying client.
    pub fn http_stats(&self) -> Stats {
        self.http.stats()
    }

    fn send(
        &self,
        what: &str,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Response, BackendError> {
        let url = format!("{}{path}", self.project);
        self.http.send(what, method, &url, headers, body)
    }

    /// Whether the server has the comments extension (probed once).
    fn has_comments(&self) -> Result<bool, BackendError> {
        if let Some(known) = self.comments.get() {
            return Ok(known);
        }
        let what = "probing sim comments";
        // A `since` in the far future keeps the listing empty.
        let resp = self.send(
            what,
            Method::GET,
            "/comments?since=9999-12-31T23:59:59Z",
            &[],
            None,
        )?;
        let known = match resp.status {
            200 => true,
            404 => false,
            _ => return Err(error(what, &resp)),
        };
        self.comments.set(Some(known));
        Ok(known)
    }

    fn list(&self, since: Option<i64>) -> Result<Vec<RemoteIssue>, BackendError> {
        let what = "listing sim issues";
        let path = match since {
            Some(s) => format!("/issues?since={}", time::format_secs(s)),
            None => "/issues".to_owned(),
        };
        let resp = self.send(what, Method::GET, &path, &[], None)?;
        if resp.status != 200 {
            return Err(error(what, &resp));
        }
        let wire: Vec<WireIssue> = resp.json(what)?;
        wire.into_iter().map(|w| to_remote(what, w)).collect()
    }

    /// The issue as stored, marker included (for edits that keep it).
    fn get_wire(&self, what: &str, id: u64) -> Result<Option<WireIssue>, BackendError> {
        let resp = self.send(what, Method::GET, &format!("/issues/{id}"), &[], None)?;
        match resp.status {
            200 => Ok(Some(resp.json(what)?)),
            404 => Ok(None),
            _ => Err(error(what, &resp)),
        }
    }

    fn wire_comments(&self, what: &str, id: u64) -> Result<Vec<WireComment>, BackendError> {
        let resp = self.send(
            what,
            Method::GET,
            &format!("/issues/{id}/comments"),
            &[],
            None,
        )?;
        match resp.status {
            200 => resp.json(what),
            404 => Err(BackendError::NotFound {
                what: format!("sim issue {id}"),
            }),
            _ => Err(error(what, &resp)),
        }
    }

    fn require_comments(&self, what: &str) -> Result<(), BackendError> {
        if self.has_comments()? {
            Ok(())
        } else {
            Err(BackendError::Http {
                what: what.to_owned(),
                status: 404,
                message: format!("{} has no comments API (reposix-sim 0.14)", self.instance),
            })
        }
    }
}

fn parse_id(kind: &str, id: &str) -> Result<u64, BackendError> {
    id.parse::<u64>()
        .ok()
        .filter(|n| *n > 0 && id.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| BackendError::Spec(format!("sim {kind} id {id:?}: expected a number")))
}

/// A non-2xx answer as an error, with the envelope's message.
fn error(what: &str, resp: &Response) -> BackendError {
    let message = serde_json::from_slice::<Value>(&resp.body)
        .ok()
        .and_then(|v| {
            let kind = v.get("error")?.as_str()?.to_owned();
            let msg = v.get("message").and_then(Value::as_str).unwrap_or("");
            Some(format!("{kind}: {msg}"))
        })
        .map(|m| http::truncate(&http::sanitize(&m), 200))
        .unwrap_or_else(|| resp.excerpt());
    match resp.status {
        401 | 403 => BackendError::Auth {
            what: what.to_owned(),
            status: resp.status,
        },
        status => BackendError::Http {
            what: what.to_owned(),
            status,
            message,
        },
    }
}

fn to_remote(what: &str, w: WireIssue) -> Result<RemoteIssue, BackendError> {
    let status: Status = w.status.parse().map_err(|_| BackendError::Malformed {
        what: what.to_owned(),
        why: format!("issue {}: unknown status {:?}", w.id, w.status),
    })?;
    let (body, marker) = strip_body_marker(&super::normalize_newlines(&w.body));
    let mut labels = w.labels;
    labels.sort();
    labels.dedup();
    Ok(RemoteIssue {
        remote_id: w.id.to_string(),
        title: w.title,
        body,
        status,
        labels,
        assignees: w.assignee.into_iter().collect(),
        revision: Revision {
            order: w.version,
            token: w.version.to_string(),
        },
        created_at: w.created_at.into(),
        updated_at: w.updated_at.into(),
        marker,
    })
}

fn to_comment(w: WireComment) -> RemoteComment {
    let (body, marker) = strip_body_marker(&super::normalize_newlines(&w.body));
    RemoteComment {
        remote_id: w.id.to_string(),
        author: w.author,
        body,
        created_at: w.created_at.into(),
        updated_at: w.updated_at.into(),
        marker,
    }
}

/// The single assignee the sim can hold: the first in sorted order.
fn single_assignee(assignees: &[String]) -> Value {
    assignees
        .iter()
        .min()
        .map_or(Value::Null, |a| Value::String(a.clone()))
}

impl Backend for SimBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Sim
    }

    fn instance(&self) -> String {
        self.instance.clone()
    }

    /// Probes for comments on first use; if the probe fails (the server is
    /// unreachable), reports no comments without caching, and the next
    /// request will say what is wrong.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            comments: self.has_comments().unwrap_or(false),
            conditional_update: true,
            closed_state: true,
            multiple_assignees: false,
            hidden_marker: false,
            links: &[],
        }
    }

    fn list_changed(
        &self,
        cursor: Option<&str>,
    ) -> Result<(Vec<RemoteIssue>, Option<String>), BackendError> {
        let since = cursor_millis("sim", cursor)?.map(|ms| ms.div_euclid(1000));
        let issues = self.list(since.map(|s| s - 1))?;
        let mut next = since;
        for i in &issues {
            let t = i
                .updated_at
                .millis()
                .map(|ms| ms.div_euclid(1000))
                .ok_or_else(|| BackendError::Malformed {
                    what: "listing sim issues".into(),
                    why: format!("issue {}: updated_at {:?}", i.remote_id, i.updated_at),
                })?;
            next = next.max(Some(t));
        }
        Ok((issues, next.map(time::format_secs)))
    }

    fn get(&self, remote_id: &str) -> Result<Option<RemoteIssue>, BackendError> {
        let id = parse_id("issue", remote_id)?;
        let what = format!("reading sim issue {id}");
        self.get_wire(&what, id)?
            .map(|w| to_remote(&what, w))
            .transpose()
    }

    fn create(&self, new: &NewRemoteIssue) -> Result<RemoteIssue, BackendError> {
        let what = "creating a sim issue";
        let body = json!({
            "title": new.title,
            "body": format!("{}{}", new.body, body_marker(&new.marker)),
            "status": new.status.as_str(),
            "labels": new.labels,
            "assignee": single_assignee(&new.assignees),
        });
        let resp = self.send(what, Method::POST, "/issues", &[], Some(&body))?;
        if resp.status != 201 {
            return Err(error(what, &resp));
        }
        to_remote(what, resp.json(what)?)
    }

    fn update(
        &self,
        remote_id: &str,
        patch: &IssuePatch,
        expected: &Revision,
    ) -> Result<RemoteIssue, BackendError> {
        let id = parse_id("issue", remote_id)?;
        let what = format!("updating sim issue {id}");
        let conflict = || BackendError::Conflict {
            what: format!("sim issue {id} (expected version {})", expected.token),
        };
        let mut fields = Map::new();
        if patch.body.is_some() || patch.is_empty() {
            // The stored marker must be re-appended to a new body; an empty
            // patch just reports the current state.
            let current = self
                .get_wire(&what, id)?
                .ok_or_else(|| BackendError::NotFound {
                    what: format!("sim issue {id}"),
                })?;
            if current.version.to_string() != expected.token {
                return Err(conflict());
            }
            if patch.is_empty() {
                return to_remote(&what, current);
            }
            let (_, marker) = strip_body_marker(&current.body);
            let text = patch.body.as_deref().unwrap_or_default();
            let marked = match marker {
                Some(m) => format!("{text}{}", body_marker(&m)),
                None => text.to_owned(),
            };
            fields.insert("body".into(), json!(marked));
        }
        if let Some(t) = &patch.title {
            fields.insert("title".into(), json!(t));
        }
        if let Some(s) = patch.status {
            fields.insert("status".into(), json!(s.as_str()));
        }
        if let Some(l) = &patch.labels {
            fields.insert("labels".into(), json!(l));
        }
        if let Some(a) = &patch.assignees {
            fields.insert("assignee".into(), single_assignee(a));
        }
        let if_match = format!("\"{}\"", expected.token);
        let resp = self.send(
            &what,
            Method::PATCH,
            &format!("/issues/{id}"),
            &[("If-Match", &if_match)],
            Some(&Value::Object(fields)),
        )?;
        match resp.status {
            200 => to_remote(&what, resp.json(&what)?),
            409 => Err(conflict()),
            404 => Err(BackendError::NotFound {
                what: format!("sim issue {id}"),
            }),
            _ => Err(error(&what, &resp)),
        }
    }

    /// The first issue created (smallest id) carrying the marker.
    fn find_by_marker(
        &self,
        marker: &str,
        since: Option<&str>,
    ) -> Result<Option<RemoteIssue>, BackendError> {
        let (issues, _) = self.list_changed(since)?;
        Ok(issues
            .into_iter()
            .filter(|i| i.marker.as_deref() == Some(marker))
            .min_by_key(|i| i.remote_id.parse::<u64>().unwrap_or(u64::MAX)))
    }

    fn delete_issue(&self, remote_id: &str) -> Result<(), BackendError> {
        let id = parse_id("issue", remote_id)?;
        let what = format!("deleting sim issue {id}");
        let resp = self.send(&what, Method::DELETE, &format!("/issues/{id}"), &[], None)?;
        match resp.status {
            204 | 404 => Ok(()),
            _ => Err(error(&what, &resp)),
        }
    }

    fn comments(&self, remote_id: &str) -> Result<Vec<RemoteComment>, BackendError> {
        let id = parse_id("issue", remote_id)?;
        if !self.has_comments()? {
            return Ok(Vec::new());
        }
        let what = format!("listing comments of sim issue {id}");
        Ok(self
            .wire_comments(&what, id)?
            .into_iter()
            .map(to_comment)
            .collect())
    }

    fn add_comment(
        &self,
        remote_id: &str,
        body: &str,
        marker: &str,
    ) -> Result<RemoteComment, BackendError> {
        let id = parse_id("issue", remote_id)?;
        let what = format!("commenting on sim issue {id}");
        self.require_comments(&what)?;
        let payload = json!({ "body": format!("{body}{}", body_marker(marker)) });
        let resp = self.send(
            &what,
            Method::POST,
            &format!("/issues/{id}/comments"),
            &[],
            Some(&payload),
        )?;
        match resp.status {
            201 => Ok(to_comment(resp.json(&what)?)),
            404 => Err(BackendError::NotFound {
                what: format!("sim issue {id}"),
            }),
            _ => Err(error(&what, &resp)),
        }
    }

    fn delete_comment(&self, remote_id: &str, comment_id: &str) -> Result<(), BackendError> {
        let id = parse_id("issue", remote_id)?;
        let cid = parse_id("comment", comment_id)?;
        let what = format!("deleting comment {cid} of sim issue {id}");
        self.require_comments(&what)?;
        let resp = self.send(
            &what,
            Method::DELETE,
            &format!("/comments/{cid}"),
            &[],
            None,
        )?;
        match resp.status {
            204 | 404 => Ok(()),
            // A sim without the route (an older build): it cannot delete.
            405 => Err(BackendError::Unsupported { what }),
            _ => Err(error(&what, &resp)),
        }
    }

    fn edit_comment(
        &self,
        remote_id: &str,
        comment_id: &str,
        body: &str,
    ) -> Result<RemoteComment, BackendError> {
        let id = parse_id("issue", remote_id)?;
        let cid = parse_id("comment", comment_id)?;
        let what = format!("editing comment {cid} of sim issue {id}");
        self.require_comments(&what)?;
        // Keep the marker the comment carries.
        let current = self
            .wire_comments(&what, id)?
            .into_iter()
            .find(|c| c.id == cid)
            .ok_or_else(|| BackendError::NotFound {
                what: format!("comment {cid} of sim issue {id}"),
            })?;
        let marked = match strip_body_marker(&current.body).1 {
            Some(m) => format!("{body}{}", body_marker(&m)),
            None => body.to_owned(),
        };
        let resp = self.send(
            &what,
            Method::PATCH,
            &format!("/comments/{cid}"),
            &[],
            Some(&json!({ "body": marked })),
        )?;
        match resp.status {
            200 => Ok(to_comment(resp.json(&what)?)),
            404 => Err(BackendError::NotFound {
                what: format!("comment {cid} of sim issue {id}"),
            }),
            _ => Err(error(&what, &resp)),
        }
    }
}

/// Decode a response body as this adapter does: an issue listing, then a
/// comment listing. The entry point of the fuzz target `tracker_json`;
/// never panics.
pub fn parse_wire(
    body: &[u8],
) -> (
    Result<Vec<RemoteIssue>, BackendError>,
    Result<Vec<RemoteComment>, BackendError>,
) {
    let what = "parsing a sim response";
    let issues = http::decode_json::<Vec<WireIssue>>(body, what)
        .and_then(|v| v.into_iter().map(|w| to_remote(what, w)).collect());
    let comments = http::decode_json::<Vec<WireComment>>(body, what)
        .map(|v| v.into_iter().map(to_comment).collect());
    (issues, comments)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::http::AllowList;

    #[test]
    fn egress_to_a_non_allowed_origin_fails_before_sending() {
        let spec = BackendSpec::parse("sim::http://10.255.255.1:9/x").expect("valid spec");
        let allow = AllowList::parse("http://127.0.0.1,http://localhost,http://[::1]")
            .expect("the default allowlist parses");
        let http = HttpClient::with_allowlist(Auth::None, "tester", allow).expect("client");
        let sim = SimBackend::with_client(&spec, http).expect("adapter");
        let started = std::time::Instant::now();
        match sim.list_changed(None) {
            Err(BackendError::Egress { origin, .. }) => {
                assert_eq!(origin, "http://10.255.255.1:9")
            }
            other => panic!("expected an egress refusal, got {other:?}"),
        }
        assert!(matches!(sim.get("1"), Err(BackendError::Egress { .. })));
        assert!(
            !sim.capabilities().comments,
            "a refused probe reports no comments"
        );
        assert_eq!(sim.http_stats().requests, 0, "nothing was sent");
        // 10.255.255.1 is a black hole: any connect attempt would hang for
        // the 10 s connect timeout.
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn ids_must_be_numbers() {
        for bad in ["", "0", "-1", "1/../2", "+3", "abc"] {
            assert!(parse_id("issue", bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_id("issue", "42").expect("valid"), 42);
    }

    #[test]
    fn one_assignee_is_the_first_sorted() {
        assert_eq!(single_assignee(&[]), Value::Null);
        assert_eq!(
            single_assignee(&["zed".into(), "amy".into()]),
            Value::String("amy".into())
        );
    }
}

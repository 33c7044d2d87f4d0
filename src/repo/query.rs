//! The query language of `reposix issue list`, evaluated on the index.
//!
//! ```text
//! status:open label:bug -label:wontfix assignee:me author:alice
//! updated:>2026-11-01 created:<7d "free text" sort:updated-desc
//! ```
//!
//! - `status:` `open` (not done/wont_fix, the default), `closed`, `all`, or
//!   one status (`in_progress`…); several `status:` terms are alternatives.
//! - `label:`, `assignee:` (`me` is the acting actor), `author:` (who
//!   created it): every term must hold; `-field:value` must not hold.
//! - `updated:` and `created:` with `>`, `>=`, `<`, `<=` and a date
//!   (`2026-11-01`), an RFC 3339 instant, or a span back from now (`7d`,
//!   `12h`, `2w`).
//! - Bare words and `"quoted phrases"`: the title or body contains them
//!   (case-insensitive); `-word` must not be contained.
//! - `sort:` `updated`, `created`, `title`, `status` (git-bug's `edit` and
//!   `creation` too), with `-asc`/`-desc`.
//!
//! Parsing is pure and total: bad input is a [`QueryError`] naming the term.

use std::cmp::Ordering;

use crate::event::Status;
use crate::store::index::{IssueSummary, SortKeys};

/// A query that could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueryError {
    /// A term this language does not have, or a bad value.
    #[error("query term {term:?}: {why}")]
    Term {
        /// The term as written.
        term: String,
        /// What is wrong.
        why: String,
    },
    /// A `"` without its closing `"`.
    #[error("query: unclosed quote")]
    UnclosedQuote,
}

/// Which statuses match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFilter {
    /// Not closed.
    Open,
    /// done or wont_fix.
    Closed,
    /// Everything.
    All,
    /// Exactly this status.
    Is(Status),
}

impl StatusFilter {
    /// Parse `open`, `closed`, `all` or a status name.
    pub fn parse(s: &str) -> Option<StatusFilter> {
        match s {
            "open" => Some(StatusFilter::Open),
            "closed" => Some(StatusFilter::Closed),
            "all" => Some(StatusFilter::All),
            other => other.parse().ok().map(StatusFilter::Is),
        }
    }

    fn matches(self, s: Status) -> bool {
        match self {
            StatusFilter::Open => !s.is_closed(),
            StatusFilter::Closed => s.is_closed(),
            StatusFilter::All => true,
            StatusFilter::Is(x) => s == x,
        }
    }
}

/// Sort keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    /// Last change.
    Updated,
    /// Creation.
    Created,
    /// Title, case-insensitively.
    Title,
    /// Workflow order of status.
    Status,
}

/// Who a person term names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Who {
    /// The acting actor.
    Me,
    /// This name.
    Name(String),
}

/// One filter term.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Term {
    Label(String),
    Assignee(Who),
    Author(Who),
    /// Field (`true` = updated), comparison, bound in ms.
    Time(bool, Ordering, bool, i64),
    Text(String),
}

/// A parsed query, and how much of its result to keep in which order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// Alternatives; empty = open.
    pub statuses: Vec<StatusFilter>,
    terms: Vec<(bool, Term)>,
    /// The sort key and whether descending.
    pub sort: Option<(SortKey, bool)>,
    /// Reverse the sorted order.
    pub reverse: bool,
    /// Keep at most this many (0: all).
    pub limit: usize,
}

/// What `reposix issue list` asks for: a query, the flags that are sugar
/// for its terms, and how much of the result to keep in which order.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    /// The query text (the language above).
    pub query: String,
    /// A `status:` term (`open`, `closed`, `all` or a status).
    pub state: Option<String>,
    /// `label:` terms: all must hold.
    pub labels: Vec<String>,
    /// An `assignee:` term (`me`: the acting actor).
    pub assignee: Option<String>,
    /// A free-text term.
    pub text: Option<String>,
    /// The sort key, over the query's `sort:` (updated and created newest
    /// first, title and status ascending).
    pub sort: Option<SortKey>,
    /// Reverse the sorted order.
    pub reverse: bool,
    /// Keep at most this many (0: all).
    pub limit: usize,
}

impl ListQuery {
    /// The query as one text: the query, then each flag as the term it
    /// is sugar for (a flag's value is one term whatever it holds: its
    /// quotes are dropped; a flag's `sort:` comes last, so it wins).
    pub fn spelled(&self) -> String {
        let mut q = self.query.clone();
        let quote = |v: &str| format!(" \"{}\"", v.replace('"', ""));
        if let Some(st) = &self.state {
            q.push_str(&format!(" status:{st}"));
        }
        for l in &self.labels {
            q.push_str(&quote(&format!("label:{l}")));
        }
        if let Some(a) = &self.assignee {
            q.push_str(&quote(&format!("assignee:{a}")));
        }
        if let Some(t) = &self.text {
            q.push_str(&quote(t));
        }
        if let Some(key) = self.sort {
            let key = match key {
                SortKey::Updated => "updated-desc",
                SortKey::Created => "created-desc",
                SortKey::Title => "title-asc",
                SortKey::Status => "status-asc",
            };
            q.push_str(&format!(" sort:{key}"));
        }
        q
    }

    /// The query to run: [`ListQuery::spelled`] parsed (`now_ms` anchors
    /// spans such as `7d`), with the order and the limit.
    pub fn parse(&self, now_ms: i64) -> Result<Query, QueryError> {
        let mut q = Query::parse(&self.spelled(), now_ms)?;
        q.reverse = self.reverse;
        q.limit = self.limit;
        Ok(q)
    }
}

/// The issues a query selects, in its order, at most its limit.
#[derive(Debug)]
pub struct Page<T> {
    /// The issues kept.
    pub rows: Vec<T>,
    /// How many matched before the limit.
    pub total: usize,
}

/// What evaluation needs from outside: the acting actor and now.
pub struct Env<'a> {
    /// Who `me` is (`None`: `me` matches nothing).
    pub me: Option<&'a str>,
    /// Now, ms since the epoch.
    pub now_ms: i64,
}

fn words(text: &str) -> Result<Vec<String>, QueryError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if quoted {
        return Err(QueryError::UnclosedQuote);
    }
    if any {
        out.push(cur);
    }
    Ok(out)
}

impl Query {
    /// Parse a query; `now_ms` anchors spans such as `7d`.
    pub fn parse(text: &str, now_ms: i64) -> Result<Query, QueryError> {
        let mut q = Query {
            statuses: Vec::new(),
            terms: Vec::new(),
            sort: None,
            reverse: false,
            limit: 0,
        };
        for word in words(text)? {
            q.add(&word, now_ms)?;
        }
        Ok(q)
    }

    /// Add one term (as the command-line flags do).
    pub fn add(&mut self, word: &str, now_ms: i64) -> Result<(), QueryError> {
        let bad = |why: &str| QueryError::Term {
            term: word.to_owned(),
            why: why.to_owned(),
        };
        let (negated, body) = match word.strip_prefix('-') {
            Some(rest) if !rest.is_empty() => (true, rest),
            _ => (false, word),
        };
        let who = |v: &str| {
            if v == "me" {
                Who::Me
            } else {
                Who::Name(v.to_owned())
            }
        };
        let Some((field, value)) = body.split_once(':').filter(|(f, _)| {
            matches!(
                *f,
                "status"
                    | "state"
                    | "label"
                    | "assignee"
                    | "author"
                    | "updated"
                    | "created"
                    | "sort"
                    | "is"
            )
        }) else {
            self.terms.push((negated, Term::Text(body.to_lowercase())));
            return Ok(());
        };
        if value.is_empty() {
            return Err(bad("give a value after the colon"));
        }
        match field {
            "status" | "state" | "is" => {
                if negated {
                    return Err(bad("status cannot be negated; name the statuses wanted"));
                }
                let s = StatusFilter::parse(value).ok_or_else(|| {
                    bad("expected open, closed, all, in_progress, in_review, done or wont_fix")
                })?;
                self.statuses.push(s);
            }
            "label" => self.terms.push((negated, Term::Label(value.to_owned()))),
            "assignee" => self.terms.push((negated, Term::Assignee(who(value)))),
            "author" => self.terms.push((negated, Term::Author(who(value)))),
            "updated" | "created" => {
                let (ord, inclusive, rest) = if let Some(r) = value.strip_prefix(">=") {
                    (Ordering::Greater, true, r)
                } else if let Some(r) = value.strip_prefix("<=") {
                    (Ordering::Less, true, r)
                } else if let Some(r) = value.strip_prefix('>') {
                    (Ordering::Greater, false, r)
                } else if let Some(r) = value.strip_prefix('<') {
                    (Ordering::Less, false, r)
                } else {
                    return Err(bad("expected >DATE, >=DATE, <DATE or <=DATE"));
                };
                let ms = crate::time::parse_query_date(rest, now_ms).ok_or_else(|| {
                    bad("expected a date (2026-11-01), an RFC 3339 instant or a span (7d, 12h)")
                })?;
                self.terms
                    .push((negated, Term::Time(field == "updated", ord, inclusive, ms)));
            }
            "sort" => {
                let (key, dir) = match value.rsplit_once('-') {
                    Some((k, d @ ("asc" | "desc"))) => (k, Some(d == "desc")),
                    _ => (value, None),
                };
                let key = match key {
                    "updated" | "edit" => SortKey::Updated,
                    "created" | "creation" | "id" => SortKey::Created,
                    "title" => SortKey::Title,
                    "status" => SortKey::Status,
                    _ => return Err(bad("expected updated, created, title or status")),
                };
                let default_desc = matches!(key, SortKey::Updated | SortKey::Created);
                self.sort = Some((key, dir.unwrap_or(default_desc)));
            }
            _ => unreachable!("BUG: field list above"),
        }
        Ok(())
    }

    /// Whether the query needs issue bodies (free text).
    pub fn needs_text(&self) -> bool {
        self.terms.iter().any(|(_, t)| matches!(t, Term::Text(_)))
    }

    /// Whether `s` matches.
    pub fn matches(&self, s: &IssueSummary, env: &Env<'_>) -> bool {
        self.status_matches(s.status)
            && self
                .terms
                .iter()
                .all(|(negated, t)| term_holds(t, s, env) != *negated)
    }

    fn status_matches(&self, status: Status) -> bool {
        if self.statuses.is_empty() {
            StatusFilter::Open.matches(status)
        } else {
            self.statuses.iter().any(|f| f.matches(status))
        }
    }

    /// The issues of `issues` that match, sorted, reversed if asked, at
    /// most `limit` of them.
    pub fn select<'a>(&self, issues: &'a [IssueSummary], env: &Env<'_>) -> Page<&'a IssueSummary> {
        let mut rows: Vec<&IssueSummary> = issues.iter().filter(|s| self.matches(s, env)).collect();
        self.sort(&mut rows);
        self.page(rows)
    }

    /// [`Query::select`], taking the issues it keeps out of `issues`.
    pub fn select_owned(&self, issues: Vec<IssueSummary>, env: &Env<'_>) -> Page<IssueSummary> {
        let mut rows: Vec<usize> = (0..issues.len())
            .filter(|&i| self.matches(&issues[i], env))
            .collect();
        self.sort_by(&mut rows, |&i| &issues[i]);
        let page = self.page(rows);
        let mut issues: Vec<Option<IssueSummary>> = issues.into_iter().map(Some).collect();
        Page {
            rows: page.rows.iter().filter_map(|&i| issues[i].take()).collect(),
            total: page.total,
        }
    }

    /// Reverse if asked, count, keep at most `limit`.
    fn page<T>(&self, mut rows: Vec<T>) -> Page<T> {
        if self.reverse {
            rows.reverse();
        }
        let total = rows.len();
        if self.limit > 0 {
            rows.truncate(self.limit);
        }
        Page { rows, total }
    }

    /// Whether the index's key table answers the query alone
    /// ([`Query::select_keys`]): no terms, sorted by time or status.
    pub fn by_keys(&self) -> bool {
        self.terms.is_empty() && !matches!(self.sort, Some((SortKey::Title, _)))
    }

    /// [`Query::select`] over the sort keys of the index (a query for which
    /// [`Query::by_keys`] holds): the same issues in the same order.
    pub fn select_keys<'k>(&self, keys: &'k [SortKeys]) -> Page<&'k SortKeys> {
        let mut rows: Vec<&SortKeys> = keys
            .iter()
            .filter(|k| self.status_matches(k.status))
            .collect();
        let (key, desc) = self.sort.unwrap_or((SortKey::Updated, true));
        let k = |x: &SortKeys| (x.updated_ms, x.created_ms, x.status);
        rows.sort_by(|a, b| order(key, desc, k(a), k(b)).then(a.id.cmp(&b.id)));
        self.page(rows)
    }

    /// Sort `rows` (ties broken by id, so the order is total).
    pub fn sort(&self, rows: &mut [&IssueSummary]) {
        self.sort_by(rows, |s| s);
    }

    fn sort_by<'s, T>(&self, rows: &mut [T], summary: impl Fn(&T) -> &'s IssueSummary) {
        let (key, desc) = self.sort.unwrap_or((SortKey::Updated, true));
        rows.sort_by(|a, b| {
            let (a, b) = (summary(a), summary(b));
            let o = match key {
                SortKey::Title => {
                    let o = a.title.to_lowercase().cmp(&b.title.to_lowercase());
                    if desc {
                        o.reverse()
                    } else {
                        o
                    }
                }
                _ => order(key, desc, keys_of(a), keys_of(b)),
            };
            o.then(a.id.cmp(&b.id))
        });
    }
}

/// What the orders by time and status compare: (updated, created, status).
type TimeKeys = (i64, i64, Status);

fn keys_of(s: &IssueSummary) -> TimeKeys {
    (s.updated_ms, s.created_ms, s.status)
}

/// The order of `a` and `b` by a time or status key (not the title).
fn order(key: SortKey, desc: bool, a: TimeKeys, b: TimeKeys) -> Ordering {
    let o = match key {
        SortKey::Updated => a.0.cmp(&b.0),
        SortKey::Created => a.1.cmp(&b.1),
        SortKey::Status => a.2.cmp(&b.2),
        SortKey::Title => Ordering::Equal,
    };
    if desc {
        o.reverse()
    } else {
        o
    }
}

fn term_holds(t: &Term, s: &IssueSummary, env: &Env<'_>) -> bool {
    let is = |who: &Who, name: &str| match who {
        Who::Me => env.me == Some(name),
        Who::Name(n) => n == name,
    };
    match t {
        Term::Label(l) => s.labels.iter().any(|x| x == l),
        Term::Assignee(w) => s.assignees.iter().any(|a| is(w, a)),
        Term::Author(w) => is(w, s.created_by.as_str()),
        Term::Time(updated, ord, inclusive, bound) => {
            let at = if *updated { s.updated_ms } else { s.created_ms };
            let c = at.cmp(bound);
            c == *ord || (*inclusive && c == Ordering::Equal)
        }
        Term::Text(needle) => {
            s.title.to_lowercase().contains(needle) || s.body.to_lowercase().contains(needle)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_quotes() {
        assert_eq!(
            words(r#"status:open "free text" label:bug"#).expect("ok"),
            ["status:open", "free text", "label:bug"]
        );
        assert_eq!(words(r#"a "b"#), Err(QueryError::UnclosedQuote));
    }

    #[test]
    fn bad_terms_name_themselves() {
        let e = Query::parse("status:nope", 0).expect_err("bad status");
        assert!(e.to_string().contains("\"status:nope\""), "{e}");
        assert!(Query::parse("updated:2026-01-01", 0).is_err());
        assert!(Query::parse("sort:colour", 0).is_err());
        assert!(Query::parse("label:", 0).is_err());
        // Unknown fields are free text (a title may contain a colon).
        assert!(Query::parse("re: crash", 0).is_ok());
    }

    #[test]
    fn sort_directions() {
        let q = Query::parse("sort:edit-asc", 0).expect("ok");
        assert_eq!(q.sort, Some((SortKey::Updated, false)));
        let q = Query::parse("sort:title", 0).expect("ok");
        assert_eq!(q.sort, Some((SortKey::Title, false)));
    }

    proptest::proptest! {
        /// The key table's selection is the full listing's: the same
        /// issues in the same order (ties in time broken by id alike), the
        /// same total, for every status filter, time or status sort,
        /// direction, reversal and limit.
        #[test]
        fn selecting_by_keys_is_selecting_the_summaries(
            rows in proptest::collection::vec((0usize..5, 0i64..4, 0i64..4), 0..40),
            statuses in proptest::collection::vec(0usize..8, 0..3),
            sort in 0usize..7,
            reverse: bool,
            limit in 0usize..6,
        ) {
            let names = ["open", "in_progress", "in_review", "done", "wont_fix", "closed", "all", "open"];
            let mut text: Vec<String> = statuses.iter().map(|s| format!("status:{}", names[*s])).collect();
            let sorts = ["", "sort:updated", "sort:created", "sort:status", "sort:updated-asc", "sort:created-asc", "sort:status-desc"];
            text.push(sorts[sort].to_owned());
            let mut q = Query::parse(&text.join(" "), 0).expect("parses");
            q.reverse = reverse;
            q.limit = limit;
            proptest::prop_assert!(q.by_keys());
            let issues: Vec<IssueSummary> = rows
                .iter()
                .map(|(st, c, u)| {
                    let mut s = summary("t", Status::ALL[*st].as_str(), &[], *u);
                    s.created_ms = *c;
                    s
                })
                .collect();
            let env = Env { me: None, now_ms: 0 };
            let full = q.select(&issues, &env);
            let keys: Vec<SortKeys> = issues.iter().map(SortKeys::of).collect();
            let keyed = q.select_keys(&keys);
            proptest::prop_assert_eq!(full.total, keyed.total);
            let a: Vec<_> = full.rows.iter().map(|s| s.id).collect();
            let b: Vec<_> = keyed.rows.iter().map(|k| k.id).collect();
            proptest::prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn terms_and_title_sorts_are_not_answered_by_keys() {
        for q in [
            "label:bug",
            "-assignee:me",
            "crash",
            "sort:title",
            "updated:>7d",
        ] {
            assert!(!Query::parse(q, 0).expect("parses").by_keys(), "{q}");
        }
        assert!(Query::parse("status:all sort:created-asc", 0)
            .expect("parses")
            .by_keys());
    }

    fn summary(title: &str, status: &str, labels: &[&str], updated_ms: i64) -> IssueSummary {
        serde_json::from_value(serde_json::json!({
            "id": crate::event::IssueId::new_random(),
            "title": title,
            "status": status,
            "labels": labels,
            "assignees": [],
            "created_by": "alice",
            "created_ms": 0,
            "updated_ms": updated_ms,
            "comments": 0,
            "lamport": 1,
        }))
        .expect("a summary")
    }

    #[test]
    fn list_flags_are_query_terms() {
        let flags = ListQuery {
            query: "crash".into(),
            state: Some("closed".into()),
            labels: vec!["bug".into(), "ui x".into()],
            assignee: Some("me".into()),
            text: Some("-flaky".into()),
            ..ListQuery::default()
        };
        let spelled = Query::parse(
            r#"crash status:closed label:bug "label:ui x" assignee:me -flaky"#,
            0,
        );
        assert_eq!(flags.parse(0), spelled);
        let bad = ListQuery {
            state: Some("nope".into()),
            ..ListQuery::default()
        };
        assert!(bad.parse(0).is_err());
    }

    #[test]
    fn list_sort_flag_wins_over_the_query() {
        let flags = ListQuery {
            query: "sort:title-desc".into(),
            sort: Some(SortKey::Created),
            ..ListQuery::default()
        };
        assert_eq!(
            flags.parse(0).expect("ok").sort,
            Some((SortKey::Created, true))
        );
    }

    #[test]
    fn select_filters_sorts_reverses_and_limits() {
        let issues = [
            summary("a", "open", &["bug"], 3),
            summary("b", "done", &["bug"], 2),
            summary("c", "open", &["bug"], 1),
            summary("d", "open", &[], 4),
        ];
        let env = Env {
            me: None,
            now_ms: 0,
        };
        let titles = |p: Page<&IssueSummary>| {
            (
                p.rows.iter().map(|s| s.title.clone()).collect::<Vec<_>>(),
                p.total,
            )
        };
        let q = ListQuery {
            labels: vec!["bug".into()],
            ..ListQuery::default()
        };
        // Open by default, newest update first.
        let page = q.parse(0).expect("ok").select(&issues, &env);
        assert_eq!(titles(page), (vec!["a".into(), "c".into()], 2));
        let q = ListQuery {
            state: Some("all".into()),
            labels: vec!["bug".into()],
            reverse: true,
            limit: 2,
            ..ListQuery::default()
        };
        let page = q.parse(0).expect("ok").select(&issues, &env);
        assert_eq!(titles(page), (vec!["c".into(), "b".into()], 3));
    }
}

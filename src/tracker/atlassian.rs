//! What the JIRA and Confluence adapters share: Atlassian Cloud credentials,
//! error bodies, timestamps and URL pieces.
//!
//! # Two token forms
//!
//! - **Site URL + unscoped API token**: `jira::https://acme.atlassian.net/PROJ`;
//!   requests go to the site. Atlassian is deprecating these tokens.
//! - **API gateway + cloudId** (scoped API tokens, service accounts): scoped
//!   tokens are accepted only at `https://api.atlassian.com/ex/jira/{cloudId}/…`
//!   and `…/ex/confluence/{cloudId}/…` (at the site they get 401). Either
//!   write the gateway address, `jira::https://api.atlassian.com/ex/jira/<cloudId>/PROJ`,
//!   or keep the site address and set `ATLASSIAN_SCOPED_TOKEN=1`: the cloudId
//!   then comes from `ATLASSIAN_CLOUD_ID` or from the site's public
//!   `/_edge/tenant_info`, and the gateway path of that cloudId is allowed
//!   because the site is (a prefix, not the whole gateway origin). The site
//!   address keeps the backend's identity, so issue ids do not change when a
//!   team switches token form. `REPOSIX_ATLASSIAN_GATEWAY` overrides the
//!   gateway's origin (tests).
//!
//! Guarantees: credentials are read from `ATLASSIAN_EMAIL` +
//! `ATLASSIAN_API_KEY` or git's credential helpers only, and travel inside
//! [`Auth::Basic`] (redacted in `Debug`); error messages are built from the
//! tracker's error body, sanitized and truncated, never from request
//! headers. A 403 is a permission (or XSRF) refusal reported with the
//! tracker's message, not an authentication failure. Timestamps, both
//! `2021-01-18T23:45:00.000+0000` (JIRA, no colon in the offset) and
//! `2024-01-05T14:30:00.123Z` (Confluence), are parsed by [`crate::time`].

pub mod markdown;

use serde_json::Value;

use super::http::{
    git_credential, sanitize, truncate, AllowList, Auth, HttpClient, Response, Secret,
};
use super::BackendError;

/// The public API gateway.
pub const GATEWAY: &str = "https://api.atlassian.com";

/// How requests reach the product.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenForm {
    /// Site URL + unscoped API token.
    Site,
    /// API gateway + cloudId (scoped token or service account).
    Gateway {
        /// The site's cloudId.
        cloud_id: String,
        /// Whether the address names the site (and the gateway is derived).
        via_site: bool,
    },
}

impl TokenForm {
    /// A one-line description for `doctor`.
    pub fn describe(&self) -> String {
        match self {
            TokenForm::Site => "site URL + unscoped API token".into(),
            TokenForm::Gateway { cloud_id, via_site } => format!(
                "API gateway + cloudId {cloud_id} (scoped token{})",
                if *via_site {
                    ", derived from the site address"
                } else {
                    ""
                }
            ),
        }
    }
}

/// Where an Atlassian backend sends requests, and what identifies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The address without the key: the site, or the gateway base for a
    /// gateway address. Part of the backend's identity.
    pub site: String,
    /// Where REST paths (`/rest/api/3/…`, `/wiki/api/v2/…`) are appended.
    pub base: String,
    /// The project or space key.
    pub key: String,
    /// The token form.
    pub form: TokenForm,
    /// Address parameters (`?issuetype=Bug`), decoded.
    pub params: Vec<(String, String)>,
}

/// The route of an address, without any network access: for a site address
/// with `ATLASSIAN_SCOPED_TOKEN` set and no `ATLASSIAN_CLOUD_ID`, the cloudId
/// is `None` until [`resolve_route`] looks it up.
pub fn plan_route(
    product: &str,
    address: &str,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<(Route, bool), BackendError> {
    let (site, key, params) = split_address_params(product, address)?;
    if let Some(cloud_id) = gateway_cloud_id(product, &site) {
        return Ok((
            Route {
                base: site.clone(),
                site,
                key,
                form: TokenForm::Gateway {
                    cloud_id,
                    via_site: false,
                },
                params,
            },
            false,
        ));
    }
    let scoped =
        var("ATLASSIAN_SCOPED_TOKEN").is_some_and(|v| matches!(v.trim(), "1" | "true" | "yes"));
    if !scoped {
        return Ok((
            Route {
                base: site.clone(),
                site,
                key,
                form: TokenForm::Site,
                params,
            },
            false,
        ));
    }
    let gateway = var("REPOSIX_ATLASSIAN_GATEWAY")
        .filter(|g| !g.trim().is_empty())
        .unwrap_or_else(|| GATEWAY.to_owned());
    let gateway = gateway.trim().trim_end_matches('/').to_owned();
    match var("ATLASSIAN_CLOUD_ID").filter(|c| !c.trim().is_empty()) {
        Some(cloud_id) => {
            let cloud_id = checked_cloud_id(cloud_id.trim())?;
            Ok((
                Route {
                    base: format!("{gateway}/ex/{product}/{cloud_id}"),
                    site,
                    key,
                    form: TokenForm::Gateway {
                        cloud_id,
                        via_site: true,
                    },
                    params,
                },
                false,
            ))
        }
        None => Ok((
            Route {
                base: gateway,
                site,
                key,
                form: TokenForm::Gateway {
                    cloud_id: String::new(),
                    via_site: true,
                },
                params,
            },
            true,
        )),
    }
}

/// The route of an address, looking the cloudId up at the site's
/// `/_edge/tenant_info` when needed, and allowing the gateway prefix of a
/// derived route on `allow` when the site itself is allowed.
pub fn resolve_route(
    product: &str,
    address: &str,
    var: &dyn Fn(&str) -> Option<String>,
    allow: &mut AllowList,
) -> Result<Route, BackendError> {
    let (mut route, needs_lookup) = plan_route(product, address, var)?;
    if needs_lookup {
        let http = HttpClient::with_allowlist(Auth::None, product, allow.clone())?;
        let what = format!("{} tenant info", route.site);
        let url = format!("{}/_edge/tenant_info", route.site);
        let resp = check(
            http.send(&what, reqwest::Method::GET, &url, &[], None)?,
            &what,
        )?;
        let v: Value = resp.json(&what)?;
        let cloud_id =
            v.get("cloudId")
                .and_then(Value::as_str)
                .ok_or_else(|| BackendError::Malformed {
                    what: what.clone(),
                    why: "no cloudId".into(),
                })?;
        let cloud_id = checked_cloud_id(cloud_id)?;
        route.base = format!("{}/ex/{product}/{cloud_id}", route.base);
        route.form = TokenForm::Gateway {
            cloud_id,
            via_site: true,
        };
    }
    if matches!(route.form, TokenForm::Gateway { via_site: true, .. })
        && allow.allows_origin(&origin_of(&route.site))
    {
        allow.allow_prefix(&format!("{}/", route.base))?;
    }
    Ok(route)
}

/// An Atlassian product's REST API as an adapter reaches it: the HTTP
/// client, where REST paths go, and what identifies the site. The JIRA and
/// Confluence adapters each hold one.
pub(super) struct Api {
    /// The client every request goes through.
    pub(super) http: HttpClient,
    /// The identity: the site, or the gateway base of a gateway address.
    pub(super) site: String,
    /// Where REST paths go (the site, or the gateway base).
    pub(super) base: String,
    /// How requests authenticate and where they go.
    pub(super) form: TokenForm,
}

impl Api {
    /// The API of `site` (`https://x.atlassian.net`, no trailing path) for
    /// `product` (`jira`, `confluence`: the agent name), with explicit
    /// credentials and allowlist.
    pub(super) fn new(
        product: &str,
        site: &str,
        auth: Auth,
        allow: AllowList,
    ) -> Result<Api, BackendError> {
        let mut http = HttpClient::with_allowlist(auth, product, allow)?;
        http.add_header("Accept", "application/json");
        let site = site.trim_end_matches('/').to_owned();
        Ok(Api {
            http,
            base: site.clone(),
            site,
            form: TokenForm::Site,
        })
    }

    /// The API an address names ([`resolve_route`]), with credentials from
    /// `var` ([`auth_from`]); also the route (for the key and parameters).
    pub(super) fn from_vars(
        product: &str,
        address: &str,
        var: &dyn Fn(&str) -> Option<String>,
        mut allow: AllowList,
    ) -> Result<(Api, Route), BackendError> {
        let route = resolve_route(product, address, var, &mut allow)?;
        let auth = auth_from(&route.site, var)?;
        let mut api = Api::new(product, &route.site, auth, allow)?;
        api.base.clone_from(&route.base);
        api.form = route.form.clone();
        Ok((api, route))
    }

    /// The absolute URL of a REST path.
    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Send to a REST path; a non-2xx answer is an error ([`check`]).
    pub(super) fn send(
        &self,
        what: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, BackendError> {
        self.send_url(what, method, &self.url(path), body)
    }

    /// Send to an absolute URL (a next-page link); as [`Api::send`].
    pub(super) fn send_url(
        &self,
        what: &str,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Response, BackendError> {
        check(self.http.send(what, method, url, &[], body)?, what)
    }

    /// Send a read to a REST path, whatever its method (JIRA's search is a
    /// POST): retried after 5xx like a GET ([`HttpClient::send_read`]).
    pub(super) fn read(
        &self,
        what: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, BackendError> {
        check(
            self.http
                .send_read(what, method, &self.url(path), &[], body)?,
            what,
        )
    }
}

/// `scheme://host[:port]` of a URL (the URL itself if it does not parse).
pub fn origin_of(url: &str) -> String {
    reqwest::Url::parse(url).map_or_else(|_| url.to_owned(), |u| u.origin().ascii_serialization())
}

fn checked_cloud_id(id: &str) -> Result<String, BackendError> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(BackendError::Spec(format!(
            "cloudId {id:?}: expected letters, digits and '-'"
        )));
    }
    Ok(id.to_owned())
}

/// The cloudId of a gateway base `…/ex/{product}/{cloudId}`, if it is one.
fn gateway_cloud_id(product: &str, base: &str) -> Option<String> {
    let path = reqwest::Url::parse(base).ok()?.path().to_owned();
    let rest = path.strip_prefix(&format!("/ex/{product}/"))?;
    checked_cloud_id(rest).ok()
}

/// Basic auth for an Atlassian site: `ATLASSIAN_EMAIL` + `ATLASSIAN_API_KEY`
/// from the environment, else git's credential helpers for `site`.
pub fn auth_for_site(site: &str) -> Result<Auth, BackendError> {
    auth_from(site, &|name| std::env::var(name).ok())
}

/// Like [`auth_for_site`], reading variables through `var`.
pub fn auth_from(site: &str, var: &dyn Fn(&str) -> Option<String>) -> Result<Auth, BackendError> {
    let email = var("ATLASSIAN_EMAIL").filter(|v| !v.is_empty());
    let key = var("ATLASSIAN_API_KEY").filter(|v| !v.is_empty());
    if let (Some(user), Some(key)) = (email, key) {
        return Ok(Auth::Basic {
            user,
            secret: Secret::new(key),
        });
    }
    let url = reqwest::Url::parse(site)
        .map_err(|e| BackendError::Spec(format!("site {site:?}: invalid URL: {e}")))?;
    match git_credential(&url) {
        Some((user, secret)) if !user.is_empty() => Ok(Auth::Basic { user, secret }),
        _ => Err(BackendError::Spec(format!(
            "no Atlassian credentials for {}: set ATLASSIAN_EMAIL and ATLASSIAN_API_KEY, \
             or store the email and API token in a git credential helper",
            url.origin().ascii_serialization()
        ))),
    }
}

/// Split `https://site.atlassian.net/KEY` into (`https://site.atlassian.net`,
/// `KEY`); a gateway address `https://api.atlassian.com/ex/<kind>/<cloudId>/KEY`
/// splits into its base and key the same way.
pub fn split_address(kind: &str, address: &str) -> Result<(String, String), BackendError> {
    let (site, key, _) = split_address_params(kind, address)?;
    Ok((site, key))
}

/// An address split: (site or gateway base, key, `?name=value` parameters).
pub type AddressParts = (String, String, Vec<(String, String)>);

/// [`split_address`] plus the address's `?name=value` parameters.
pub fn split_address_params(kind: &str, address: &str) -> Result<AddressParts, BackendError> {
    let address = address.trim();
    let (address, query) = match address.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (address, None),
    };
    let address = address.trim_end_matches('/');
    let bad = || {
        BackendError::Spec(format!(
            "{kind} address {address:?}: expected https://<site>/<key> or \
             https://api.atlassian.com/ex/{kind}/<cloudId>/<key>"
        ))
    };
    let rest = address
        .strip_prefix("https://")
        .or_else(|| address.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let (host, path) = rest.split_once('/').ok_or_else(bad)?;
    let segments: Vec<&str> = path.split('/').collect();
    let key = *segments.last().ok_or_else(bad)?;
    let gateway = segments.len() == 4
        && segments[0] == "ex"
        && segments[1] == kind
        && checked_cloud_id(segments[2]).is_ok();
    if host.is_empty() || key.is_empty() || host.contains('@') || !(segments.len() == 1 || gateway)
    {
        return Err(bad());
    }
    let site = &address[..address.len() - key.len() - 1];
    let mut params = Vec::new();
    for pair in query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').ok_or_else(bad)?;
        let decoded = |s: &str| {
            percent_decode(s).ok_or_else(|| {
                BackendError::Spec(format!("{kind} address parameter {pair:?}: bad encoding"))
            })
        };
        params.push((decoded(k)?, decoded(v)?));
    }
    Ok((site.to_owned(), key.to_owned(), params))
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encode one URL path segment or query value (RFC 3986 unreserved
/// characters stay as they are).
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Map a response to an error unless it is 2xx: 401 -> `Auth`, 404 ->
/// `NotFound`, 409 -> `Conflict`, else (403 included: a permission or XSRF
/// refusal, not bad credentials) `Http` with the tracker's message.
pub fn check(resp: Response, what: &str) -> Result<Response, BackendError> {
    match resp.status {
        200..=299 => Ok(resp),
        401 => Err(BackendError::Auth {
            what: what.to_owned(),
            status: resp.status,
        }),
        404 => Err(BackendError::NotFound {
            what: what.to_owned(),
        }),
        409 => Err(BackendError::Conflict {
            what: what.to_owned(),
        }),
        status => Err(BackendError::Http {
            what: what.to_owned(),
            status,
            message: error_message(&resp),
        }),
    }
}

/// A readable message from an Atlassian error body: JIRA's
/// `{"errorMessages":[…],"errors":{"field":"msg"}}`, Confluence v2's
/// `{"errors":[{"title","detail"}]}` and v1's `{"message"}`; the raw
/// excerpt otherwise. Sanitized and truncated.
pub fn error_message(resp: &Response) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Ok(v) = serde_json::from_slice::<Value>(&resp.body) {
        if let Some(list) = v.get("errorMessages").and_then(Value::as_array) {
            parts.extend(list.iter().filter_map(Value::as_str).map(str::to_owned));
        }
        match v.get("errors") {
            Some(Value::Object(map)) => {
                for (field, msg) in map {
                    let msg = msg.as_str().map_or_else(|| msg.to_string(), str::to_owned);
                    parts.push(format!("{field}: {msg}"));
                }
            }
            Some(Value::Array(list)) => {
                for e in list {
                    let text: Vec<&str> = ["title", "detail", "message"]
                        .iter()
                        .filter_map(|k| e.get(*k).and_then(Value::as_str))
                        .filter(|s| !s.is_empty())
                        .collect();
                    if !text.is_empty() {
                        parts.push(text.join(": "));
                    }
                }
            }
            _ => {}
        }
        if parts.is_empty() {
            if let Some(m) = v.get("message").and_then(Value::as_str) {
                parts.push(m.to_owned());
            }
        }
    }
    let text = if parts.is_empty() {
        resp.excerpt()
    } else {
        parts.join("; ")
    };
    truncate(&sanitize(&text), 300)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jira_and_confluence_timestamps_parse() {
        // Both products' forms go through the one parser, crate::time.
        let ms = |s: &str| crate::time::parse_millis(s);
        let t = crate::time::parse("2021-01-18T23:45:00.000+0000").expect("jira form");
        assert_eq!((t.ms, t.offset_minutes), (1_611_013_500_000, 0));
        assert_eq!(ms("2021-01-19T10:45:00.000+1100"), Some(t.ms));
        assert_eq!(ms("2021-01-18T18:15:00.000-05:30"), Some(t.ms));
        assert_eq!(ms("2024-01-05T14:30:00.123Z"), Some(1_704_465_000_123));
        assert_eq!(ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(ms("2024-02-29T00:00:00.5Z").map(|t| t % 1000), Some(500));
        for bad in [
            "",
            "2021-01-18",
            "2021-01-18T23:45:00.000+00",
            "2021-13-01T00:00:00Z",
            "x021-01-18T23:45:00Z",
        ] {
            assert_eq!(ms(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn addresses_split_and_encode() {
        assert_eq!(
            split_address("jira", "https://acme.atlassian.net/PROJ/").expect("valid"),
            ("https://acme.atlassian.net".to_owned(), "PROJ".to_owned())
        );
        assert!(split_address("jira", "acme.atlassian.net/PROJ").is_err());
        assert!(split_address("jira", "https://acme.atlassian.net").is_err());
        assert!(split_address("jira", "https://acme.atlassian.net/a/b").is_err());
        assert_eq!(
            split_address("jira", "https://api.atlassian.com/ex/jira/1324-abcd/PROJ")
                .expect("gateway"),
            (
                "https://api.atlassian.com/ex/jira/1324-abcd".to_owned(),
                "PROJ".to_owned()
            )
        );
        assert!(split_address("confluence", "https://api.atlassian.com/ex/jira/1324/ENG").is_err());
        assert_eq!(
            split_address_params("jira", "https://a.atlassian.net/P?issuetype=User%20Story")
                .expect("params")
                .2,
            [("issuetype".to_owned(), "User Story".to_owned())]
        );
        assert_eq!(enc("a b/c?d=é"), "a%20b%2Fc%3Fd%3D%C3%A9");
    }

    #[test]
    fn error_bodies_become_readable() {
        let resp = |body: &str| Response {
            url: String::new(),
            status: 400,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        };
        assert_eq!(
            error_message(&resp(
                r#"{"errorMessages":["bad jql"],"errors":{"labels":"no spaces"}}"#
            )),
            "bad jql; labels: no spaces"
        );
        assert_eq!(
            error_message(&resp(
                r#"{"errors":[{"status":409,"title":"Version conflict","detail":"x"}]}"#
            )),
            "Version conflict: x"
        );
        assert_eq!(error_message(&resp("plain text")), "plain text");
        assert_eq!(
            error_message(&resp(r#"{"message":"see http://u:p@h/x"}"#)),
            "see http://***@h/x"
        );
    }
}

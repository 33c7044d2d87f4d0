//! What `reposix doctor` says about an attached backend, without touching
//! the network: where requests go, which token form is in use, whether
//! credentials are present and the origin is allowed.
//!
//! Guarantees: no request is made and no credential value is read into the
//! report (only whether one is set).

use serde::Serialize;

use super::atlassian::{self, TokenForm};
use super::http::AllowList;
use super::{BackendKind, BackendSpec};

/// One backend, described.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BackendReport {
    /// `sim`, `github`, `jira`, `confluence`.
    pub kind: String,
    /// `<kind>::<address>` as stored.
    pub spec: String,
    /// `scheme://host[:port]` requests go to.
    pub origin: String,
    /// For Atlassian backends: the token form in use.
    pub token_form: Option<String>,
    /// Which credentials the environment provides (names only).
    pub credentials: String,
    /// Whether `REPOSIX_ALLOWED_ORIGINS` admits the origin (for a derived
    /// gateway route: whether it admits the site).
    pub origin_allowed: bool,
    /// A problem found, if any.
    pub problem: Option<String>,
}

/// Describe `spec` with variables read through `var`.
pub fn describe(
    spec: &BackendSpec,
    var: &dyn Fn(&str) -> Option<String>,
    allow: &AllowList,
) -> BackendReport {
    let set = |name: &str| var(name).is_some_and(|v| !v.trim().is_empty());
    let mut report = BackendReport {
        kind: spec.kind.to_string(),
        spec: spec.to_spec_string(),
        origin: String::new(),
        token_form: None,
        credentials: String::new(),
        origin_allowed: false,
        problem: None,
    };
    match spec.kind {
        BackendKind::Sim => {
            report.origin = atlassian::origin_of(&spec.address);
            report.credentials = "none needed".into();
            report.origin_allowed = allow.allows_origin(&report.origin);
        }
        BackendKind::Github => {
            let api = var("REPOSIX_GITHUB_API")
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| super::github::DEFAULT_API.to_owned());
            report.origin = atlassian::origin_of(&api);
            report.credentials = if set("GITHUB_TOKEN") {
                "GITHUB_TOKEN".into()
            } else {
                "none in the environment (a git credential helper may have a token)".into()
            };
            report.origin_allowed = allow.allows_origin(&report.origin);
        }
        BackendKind::Jira | BackendKind::Confluence => {
            match atlassian::plan_route(spec.kind.as_str(), &spec.address, var) {
                Ok((route, lookup)) => {
                    report.origin = atlassian::origin_of(&route.base);
                    report.token_form = Some(match (&route.form, lookup) {
                        (TokenForm::Gateway { .. }, true) => format!(
                            "API gateway + cloudId (scoped token; the cloudId is looked up at \
                             {}/_edge/tenant_info on first use)",
                            route.site
                        ),
                        (form, _) => form.describe(),
                    });
                    let derived = matches!(route.form, TokenForm::Gateway { via_site: true, .. });
                    report.origin_allowed = if derived {
                        allow.allows_origin(&atlassian::origin_of(&route.site))
                    } else {
                        allow.allows_origin(&report.origin)
                    };
                }
                Err(e) => {
                    report.problem = Some(e.to_string());
                }
            }
            report.credentials = if set("ATLASSIAN_EMAIL") && set("ATLASSIAN_API_KEY") {
                "ATLASSIAN_EMAIL + ATLASSIAN_API_KEY".into()
            } else {
                "none in the environment (a git credential helper may have them)".into()
            };
        }
    }
    if report.problem.is_none() && !report.origin_allowed {
        report.problem = Some(format!(
            "{} is not in REPOSIX_ALLOWED_ORIGINS ({})",
            report.origin,
            allow.text()
        ));
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |n| {
            pairs
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn token_forms_are_told_apart() {
        let allow = AllowList::parse("https://acme.atlassian.net").expect("parses");
        let site = BackendSpec::parse("jira::https://acme.atlassian.net/PROJ").expect("valid");
        let r = describe(&site, &vars(&[]), &allow);
        assert_eq!(
            r.token_form.as_deref(),
            Some("site URL + unscoped API token")
        );
        assert_eq!(r.origin, "https://acme.atlassian.net");
        assert!(r.origin_allowed && r.problem.is_none());

        let r = describe(
            &site,
            &vars(&[
                ("ATLASSIAN_SCOPED_TOKEN", "1"),
                ("ATLASSIAN_CLOUD_ID", "c1d"),
            ]),
            &allow,
        );
        assert_eq!(r.origin, "https://api.atlassian.com");
        assert!(r
            .token_form
            .as_deref()
            .is_some_and(|f| f.starts_with("API gateway + cloudId c1d")));
        assert!(r.origin_allowed, "allowed through the site");

        let gw = BackendSpec::parse("confluence::https://api.atlassian.com/ex/confluence/c1d/ENG")
            .expect("valid");
        let r = describe(
            &gw,
            &vars(&[("ATLASSIAN_EMAIL", "a@b"), ("ATLASSIAN_API_KEY", "x")]),
            &allow,
        );
        assert!(r.token_form.as_deref().is_some_and(|f| f.contains("c1d")));
        assert!(!r.origin_allowed);
        assert!(r.problem.is_some());
        assert!(!format!("{r:?}").contains("\"x\""), "no credential values");
    }
}

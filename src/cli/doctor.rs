//! `reposix doctor`: what each attached tracker backend will do, checked
//! without the network (kind, origin, Atlassian token form, credentials
//! present, origin allowed).

use reposix::backend::describe::{describe, BackendReport};
use serde::Serialize;

use super::{Ctx, Exit, Failure};

#[derive(Serialize)]
struct Row {
    name: String,
    #[serde(flatten)]
    report: BackendReport,
}

pub fn run(ctx: &Ctx) -> Result<(), Failure> {
    let repo = ctx.repo()?;
    let allow = super::allow::allowlist(&repo)?;
    let var = |name: &str| std::env::var(name).ok();
    let rows: Vec<Row> = repo
        .backends()?
        .into_iter()
        .map(|(name, spec)| Row {
            name,
            report: describe(&spec, &var, &allow),
        })
        .collect();
    let problems = rows.iter().filter(|r| r.report.problem.is_some()).count();
    ctx.out.done(&rows, || {
        if rows.is_empty() {
            return "no backends attached (reposix backend add NAME <kind>::<address>)\n".into();
        }
        let mut s = String::new();
        for r in &rows {
            s.push_str(&format!("{}\t{}\n", r.name, r.report.spec));
            s.push_str(&format!(
                "  kind: {}\n  origin: {}\n",
                r.report.kind, r.report.origin
            ));
            if let Some(f) = &r.report.token_form {
                s.push_str(&format!("  token form: {f}\n"));
            }
            s.push_str(&format!("  credentials: {}\n", r.report.credentials));
            match &r.report.problem {
                Some(p) => s.push_str(&format!("  problem: {p}\n")),
                None => s.push_str("  ok\n"),
            }
        }
        s
    })?;
    if problems > 0 {
        return Err(Failure::new(
            Exit::Invalid,
            "doctor",
            format!("{problems} backends have a problem"),
        ));
    }
    Ok(())
}

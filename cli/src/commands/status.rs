//! `minica status`: the hierarchy and what needs the operator.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::args::StatusArgs;
use crate::commands::Globals;
use crate::exit::ExitStatus;
use crate::output::outln;

/// One CA certificate in `minica status --json`.
#[derive(Debug, serde::Serialize)]
struct Row {
    kind: &'static str,
    role: &'static str,
    subject: String,
    serial: String,
    issuer_serial: String,
    not_after: String,
}

/// `minica status --json`.
#[derive(Debug, serde::Serialize)]
struct Json {
    home: String,
    cas: Vec<Row>,
    active_leaves: usize,
    expiring_30d: usize,
    revoked_leaves: usize,
    warnings: Vec<String>,
}

pub(crate) fn run(globals: &Globals, args: &StatusArgs) -> anyhow::Result<ExitStatus> {
    let ca = globals.open_ca()?;
    let st = ca.status()?;
    let now = OffsetDateTime::now_utc();
    let fmt = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    if args.json {
        let json = Json {
            home: ca.home().dir().display().to_string(),
            cas: st
                .cas
                .iter()
                .map(|c| Row {
                    kind: c.kind.as_str(),
                    role: c.role.as_str(),
                    subject: c.subject.clone(),
                    serial: c.serial.to_hex(),
                    issuer_serial: c.issuer_serial.to_hex(),
                    not_after: fmt(c.not_after),
                })
                .collect(),
            active_leaves: st.active_leaves,
            expiring_30d: st.expiring_30d,
            revoked_leaves: st.revoked_leaves,
            warnings: st.warnings.clone(),
        };
        outln!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(ExitStatus::Success);
    }
    outln!("CA home: {}", ca.home().dir().display());
    outln!(
        "trust domain: {} ({} keys)",
        ca.trust_domain(),
        ca.key_type()
    );
    outln!(
        "{:<12}  {:<8}  {:<32}  {:<20}  {:>6}  SUBJECT",
        "KIND",
        "ROLE",
        "SERIAL",
        "NOT-AFTER",
        "DAYS"
    );
    for c in &st.cas {
        outln!(
            "{:<12}  {:<8}  {:<32}  {:<20}  {:>6}  {}",
            c.kind.as_str(),
            c.role.as_str(),
            c.serial.to_hex(),
            fmt(c.not_after),
            (c.not_after - now).whole_days(),
            c.subject
        );
    }
    outln!(
        "leaves: {} active ({} expire within 30 days), {} revoked",
        st.active_leaves,
        st.expiring_30d,
        st.revoked_leaves
    );
    for w in &st.warnings {
        outln!("warning: {w}");
    }
    Ok(ExitStatus::Success)
}

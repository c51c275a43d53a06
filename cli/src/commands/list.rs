//! `minica list`: the ledger.

use minica_ca::{CertRecord, DisplayStatus};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::args::ListArgs;
use crate::commands::Globals;
use crate::exit::ExitStatus;
use crate::output::outln;

/// One line of `minica list --json`.
#[derive(Debug, serde::Serialize)]
struct Row<'a> {
    name: &'a str,
    serial: String,
    kind: &'a str,
    profile: Option<&'a str>,
    key_type: &'a str,
    sans: Vec<String>,
    not_before: String,
    not_after: String,
    status: DisplayStatus,
    issuer_serial: String,
    /// When revoked (RFC 3339), for revoked certificates.
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_at: Option<String>,
    /// Why (`keyCompromise`, ...), for revoked certificates.
    #[serde(skip_serializing_if = "Option::is_none")]
    revocation_reason: Option<&'static str>,
    /// For CA certificates of the hierarchy: `current`, `cross` or `retired`.
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

pub(crate) fn run(globals: &Globals, args: &ListArgs) -> anyhow::Result<ExitStatus> {
    let ca = globals.open_ca()?;
    let now = OffsetDateTime::now_utc();
    let mut records = ca.records()?;
    // The hierarchy (current, cross and retired CA certificates) is always
    // shown, superseded or not.
    let status = ca.status()?;
    let role = |r: &CertRecord| {
        status
            .cas
            .iter()
            .find(|c| c.serial == r.serial)
            .map(|c| c.role.as_str())
    };
    records.retain(|r| shown(r, args, now) || (args.expiring.is_none() && role(r).is_some()));
    records.sort_by(|a, b| (a.not_after, &a.name).cmp(&(b.not_after, &b.name)));
    let rows: Vec<Row<'_>> = records
        .iter()
        .map(|r| Row {
            name: &r.name,
            serial: r.serial.to_hex(),
            kind: r.kind.as_str(),
            profile: r.profile.map(|p| p.as_str()),
            key_type: r.key_type.as_str(),
            sans: r.sans.iter().map(ToString::to_string).collect(),
            not_before: rfc3339(r.not_before),
            not_after: rfc3339(r.not_after),
            status: r.status_at(now),
            issuer_serial: r.issuer_serial.to_hex(),
            revoked_at: r.revocation.as_ref().map(|v| rfc3339(v.at)),
            revocation_reason: r.revocation.as_ref().map(|v| v.reason.name()),
            role: role(r),
        })
        .collect();
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitStatus::Success);
    }
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    outln!(
        "{:<width$}  {:<32}  {:<12}  {:<20}  STATUS",
        "NAME",
        "SERIAL",
        "KIND",
        "NOT-AFTER"
    );
    for r in &rows {
        outln!(
            "{:<width$}  {:<32}  {:<12}  {:<20}  {}",
            r.name,
            r.serial,
            r.kind,
            r.not_after,
            match r.role {
                Some(role) => format!("{} ({role})", r.status),
                None => r.status.to_string(),
            }
        );
    }
    for w in &status.warnings {
        eprintln!("warning: {w}");
    }
    Ok(ExitStatus::Success)
}

/// Which records a listing shows (see `minica list --help`).
fn shown(r: &CertRecord, args: &ListArgs, now: OffsetDateTime) -> bool {
    let status = r.status_at(now);
    if let Some(within) = args.expiring {
        let limit = time::Duration::try_from(within)
            .ok()
            .and_then(|d| now.checked_add(d))
            .unwrap_or(time::PrimitiveDateTime::MAX.assume_utc());
        return matches!(status, DisplayStatus::Active | DisplayStatus::Expired)
            && r.not_after <= limit;
    }
    args.all || matches!(status, DisplayStatus::Active | DisplayStatus::Revoked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use minica_ca::{CertKind, KeyType, Serial, Status};

    fn record(days_left: i64, status: Status) -> CertRecord {
        let now = OffsetDateTime::now_utc();
        CertRecord {
            serial: Serial::random(),
            name: "x".into(),
            kind: CertKind::Leaf,
            profile: None,
            key_type: KeyType::EcdsaP256,
            sans: vec![],
            not_before: now - time::Duration::days(1),
            not_after: now + time::Duration::days(days_left),
            issuer_serial: Serial::random(),
            status,
            revocation: None,
            superseded_by: None,
            renewed_from: None,
            key_generated: true,
            cert_der: vec![],
        }
    }

    fn args(all: bool, expiring_days: Option<u64>) -> ListArgs {
        ListArgs {
            json: false,
            expiring: expiring_days.map(|d| std::time::Duration::from_secs(d * 86_400)),
            all,
        }
    }

    #[test]
    fn default_hides_expired_and_superseded() {
        let now = OffsetDateTime::now_utc();
        let plain = args(false, None);
        assert!(shown(&record(10, Status::Active), &plain, now));
        assert!(shown(&record(10, Status::Revoked), &plain, now));
        assert!(!shown(&record(-1, Status::Active), &plain, now));
        assert!(!shown(&record(10, Status::Superseded), &plain, now));
        assert!(shown(&record(-1, Status::Active), &args(true, None), now));
    }

    #[test]
    fn expiring_includes_expired_but_not_revoked() {
        let now = OffsetDateTime::now_utc();
        let soon = args(false, Some(7));
        assert!(shown(&record(3, Status::Active), &soon, now));
        assert!(shown(&record(-3, Status::Active), &soon, now));
        assert!(!shown(&record(30, Status::Active), &soon, now));
        assert!(!shown(&record(3, Status::Revoked), &soon, now));
    }
}

//! `minica revoke NAME | --serial HEX`: record a revocation, refresh the CRLs.

use minica_ca::crl::RevocationReason;
use minica_ca::{CertKind, RevokeTarget};
use time::format_description::well_known::Rfc3339;

use crate::args::RevokeArgs;
use crate::commands::Globals;
use crate::exit::ExitStatus;
use crate::output::outln;

pub(crate) fn run(globals: &Globals, args: &RevokeArgs) -> anyhow::Result<ExitStatus> {
    let target = match (&args.name, &args.serial) {
        (_, Some(serial)) => RevokeTarget::Serial(serial.clone()),
        (Some(name), None) => RevokeTarget::Name(name.to_string()),
        (None, None) => anyhow::bail!("give a NAME or --serial HEX"),
    };
    let ca = globals.open_ca()?;
    let asked = args.reason.unwrap_or(RevocationReason::Unspecified);
    let out = ca.revoke(&target, asked)?;
    let rec = &out.record;
    let (at, reason) = out
        .revocation()
        .map(|r| (r.at.format(&Rfc3339).unwrap_or_default(), r.reason))
        .unwrap_or_else(|| ("-".to_string(), RevocationReason::Unspecified));
    if out.already_revoked {
        let ignored = match args.reason {
            Some(r) if r != reason => format!("; --reason {r} ignored"),
            _ => String::new(),
        };
        outln!(
            "{} (serial {}) was already revoked at {at} ({reason}): the first revocation is kept{ignored}",
            rec.name, rec.serial
        );
    } else {
        outln!(
            "revoked {} {} (serial {}, {reason}, at {at})",
            rec.kind,
            rec.name,
            rec.serial
        );
        if rec.kind == CertKind::Intermediate {
            outln!(
                "  listed on the root's CRL: relying parties that check every level \
                 (openssl -crl_check_all, MariaDB ssl-crl, minica verify --crl) reject its leaves"
            );
            outln!("  minica issues no more leaves until the intermediate is replaced");
        }
    }
    let numbers: Vec<String> = out
        .crls
        .crls
        .iter()
        .map(|c| format!("{} CRL #{}", c.issuer_kind, c.number))
        .collect();
    outln!(
        "  CRLs refreshed: {} ({})",
        ca.home().crl_path().display(),
        numbers.join(", ")
    );
    Ok(ExitStatus::Success)
}

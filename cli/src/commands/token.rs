//! `minica token NAME`: make a one-time enrolment token.

use minica_ca::DEFAULT_TOKEN_TTL;
use time::format_description::well_known::Rfc3339;

use crate::args::TokenArgs;
use crate::commands::Globals;
use crate::exit::ExitStatus;
use crate::output::outln;

pub(crate) fn run(globals: &Globals, args: &TokenArgs) -> anyhow::Result<ExitStatus> {
    let sans: Vec<_> = args
        .dns
        .iter()
        .chain(&args.ip)
        .chain(&args.uri)
        .cloned()
        .collect();
    let ttl = args.ttl.unwrap_or(DEFAULT_TOKEN_TTL);
    // The TTL is checked again by the library; checking it first means a
    // bad value never waits for the CA or the database.
    minica_ca::token::check_ttl(ttl)?;
    let ca = globals.open_ca()?;
    let (token, record) = ca.create_token(&args.name, &sans, ttl)?;
    let names: Vec<String> = record.sans.iter().map(ToString::to_string).collect();
    let until = record.expires.format(&Rfc3339).unwrap_or_default();
    eprintln!(
        "minica: one-time token for {} (SANs: {}), valid until {until}; it is shown only once",
        record.name,
        names.join(", ")
    );
    outln!("{token}");
    Ok(ExitStatus::Success)
}

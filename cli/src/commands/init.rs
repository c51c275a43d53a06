//! `minica init`: create a CA.

use minica_ca::{Ca, CaCert, InitOptions};
use time::format_description::well_known::Rfc3339;

use crate::args::InitArgs;
use crate::commands::Globals;
use crate::exit::ExitStatus;
use crate::output::outln;

pub(crate) fn run(globals: &Globals, args: &InitArgs) -> anyhow::Result<ExitStatus> {
    let options = InitOptions {
        trust_domain: args.trust_domain.clone(),
        key_type: args.key_type,
        root_validity: args.root_valid,
        intermediate_validity: args.intermediate_valid,
    };
    let ca = globals.init_ca(&options)?;
    print_created(&ca);
    Ok(ExitStatus::Success)
}

/// Prints where a new CA lives and what it holds.
pub(crate) fn print_created(ca: &Ca) {
    let dir = ca.home().dir();
    let shown = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    outln!("created a new CA in {}", shown.display());
    let line = |what: &str, c: &CaCert| {
        let until = c.not_after().format(&Rfc3339).unwrap_or_default();
        outln!(
            "  {what:<13} {} (serial {}, until {until})",
            c.subject(),
            c.serial()
        );
    };
    line("root:", ca.root());
    line("intermediate:", ca.intermediate());
    outln!("  trust bundle: {}", ca.home().bundle_path().display());
    outln!(
        "  trust domain: {} ({} keys)",
        ca.trust_domain(),
        ca.key_type()
    );
}

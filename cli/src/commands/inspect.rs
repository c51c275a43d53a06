//! `minica inspect FILE`: describe a certificate, CSR, CRL or key file.

use crate::args::InspectArgs;
use crate::exit::ExitStatus;
use crate::output::{out, outln};

pub(crate) fn run(args: &InspectArgs) -> anyhow::Result<ExitStatus> {
    let inspected = minica_ca::inspect::inspect_file(&args.file)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&inspected)?);
    } else {
        out!("{inspected}");
    }
    Ok(ExitStatus::Success)
}

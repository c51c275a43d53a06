//! `minica bundle`: the trust bundle (every trusted root).

use minica_pki::atomic::{write_atomic, FileMode};

use crate::args::BundleArgs;
use crate::commands::Globals;
use crate::exit::ExitStatus;
use crate::output::out;

pub(crate) fn run(globals: &Globals, args: &BundleArgs) -> anyhow::Result<ExitStatus> {
    let ca = globals.open_ca()?;
    let bundle = ca.bundle_pem()?;
    match &args.out {
        Some(path) => {
            write_atomic(path, bundle.as_bytes(), FileMode::Public)?;
            eprintln!("wrote the trust bundle to {}", path.display());
        }
        None => out!("{bundle}"),
    }
    Ok(ExitStatus::Success)
}

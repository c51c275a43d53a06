//! `minica rotate intermediate` and `minica rotate root [--finish]`.

use minica_ca::{Ca, Rotation};
use time::format_description::well_known::Rfc3339;

use crate::args::{RotateArgs, RotateWhat};
use crate::commands::Globals;
use crate::exit::ExitStatus;
use crate::output::outln;

pub(crate) fn run(globals: &Globals, args: &RotateArgs) -> anyhow::Result<ExitStatus> {
    let ca = globals.open_ca_for_rotation()?;
    match &args.what {
        RotateWhat::Intermediate { valid } => {
            let rot = ca.rotate_intermediate(*valid)?;
            finish_rotation(ca, globals, &rot)
        }
        RotateWhat::Root {
            finish: true,
            force,
            ..
        } => {
            let done = ca.finish_root_rotation(*force)?;
            for s in &done.removed_roots {
                outln!("removed root {s} from the bundle");
            }
            outln!(
                "  bundle: {} (redistribute it: `minica bundle`)",
                ca.home().bundle_path().display()
            );
            if done.orphaned_leaves > 0 {
                outln!(
                    "  --force: {} active leaf certificate(s) still chain to the removed root; they fail against the new bundle",
                    done.orphaned_leaves
                );
            }
            republish(ca, globals)?;
            Ok(ExitStatus::Success)
        }
        RotateWhat::Root {
            valid,
            intermediate_valid,
            ..
        } => {
            let rot = ca.rotate_root(*valid, *intermediate_valid)?;
            finish_rotation(ca, globals, &rot)
        }
    }
}

fn finish_rotation(ca: Ca, globals: &Globals, rot: &Rotation) -> anyhow::Result<ExitStatus> {
    let until = |t: time::OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    if let Some((serial, subject, na)) = &rot.root {
        outln!("new root {subject} (serial {serial}, until {})", until(*na));
    }
    let (serial, subject, na) = &rot.intermediate;
    outln!(
        "new intermediate {subject} (serial {serial}, until {}); it signs every new leaf",
        until(*na)
    );
    for (serial, issuer) in &rot.cross {
        outln!("  cross-certificate {serial} of the new root (same name, new key), signed by the old root {issuer}");
    }
    outln!(
        "  the old intermediate {} is kept (retired): its unrevoked leaves verify until they expire",
        rot.old_intermediate
    );
    if rot.root.is_some() {
        outln!(
            "  bundle: {} now holds the old and the new root: redistribute it (`minica bundle`), then `minica rotate root --finish`",
            ca.home().bundle_path().display()
        );
    }
    republish(ca, globals)?;
    Ok(ExitStatus::Success)
}

/// Reopens the CA (it now holds the new generation) and refreshes
/// `crl.pem` when CRLs are published, so that it covers every level.
fn republish(ca: Ca, globals: &Globals) -> anyhow::Result<()> {
    drop(ca);
    if globals.home.crl_path().exists() {
        let ca = globals.open_ca()?;
        let set = ca.publish_crls(minica_ca::publish::default_next_update())?;
        outln!(
            "  CRLs refreshed: {} ({} CRLs)",
            ca.home().crl_path().display(),
            set.crls.len()
        );
    }
    Ok(())
}

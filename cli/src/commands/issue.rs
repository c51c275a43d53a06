//! `minica issue NAME`: issue a leaf into an output directory.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use minica_ca::{
    Csr, InitOptions, LeafFiles, LeafKey, LeafRequest, Opened, Overwrite, Profile,
    DEFAULT_LEAF_VALIDITY,
};
use time::format_description::well_known::Rfc3339;

use crate::args::IssueArgs;
use crate::commands::{init::print_created, Globals};
use crate::exit::ExitStatus;
use crate::output::outln;

pub(crate) fn run(globals: &Globals, args: &IssueArgs) -> anyhow::Result<ExitStatus> {
    // Every input is checked before anything is created or written.
    let profile = match (args.server, args.client) {
        (true, _) => Profile::Server,
        (_, true) => Profile::Client,
        _ => Profile::Both,
    };
    let key = match &args.csr {
        Some(path) => LeafKey::Csr(Box::new(Csr::load(path).context("--csr")?)),
        None => LeafKey::Generate(args.key_type.unwrap_or_default()),
    };
    let request = LeafRequest {
        name: args.name.clone(),
        extra_sans: args
            .dns
            .iter()
            .chain(&args.ip)
            .chain(&args.uri)
            .cloned()
            .collect(),
        profile,
        key,
        validity: args.valid.unwrap_or(DEFAULT_LEAF_VALIDITY),
    };
    request.check()?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(args.name.as_str()));
    check_out_dir(&out)?;
    let overwrite = if args.force {
        Overwrite::Replace
    } else {
        // Without a CA, refuse before creating one. With a CA, the library
        // checks first whether NAME already has a certificate (the likelier
        // mistake, with the `minica renew` hint), then the files.
        if !globals.home.has_ca() {
            minica_ca::check_absent(&LeafFiles::in_dir(&out))?;
        }
        Overwrite::Refuse
    };

    let (ca, opened) = globals.open_or_init_ca(&InitOptions::default())?;
    if opened == Opened::Created {
        print_created(&ca);
    }
    let leaf = ca.issue_to_dir(&request, &out, overwrite)?;
    let until = leaf.record.not_after.format(&Rfc3339).unwrap_or_default();
    outln!(
        "issued {} (serial {}, {}, {}, until {until})",
        leaf.record.name,
        leaf.record.serial,
        leaf.record.key_type,
        profile
    );
    let files = LeafFiles::in_dir(&out);
    let mut written = vec![&files.cert, &files.chain];
    if leaf.key().is_some() {
        written.push(&files.key);
    }
    written.push(&files.ca);
    for path in written {
        outln!("  {}", path.display());
    }
    Ok(ExitStatus::Success)
}

/// Refuses an output path whose nearest existing ancestor is not a
/// directory, before the CA is created or anything written.
fn check_out_dir(out: &Path) -> anyhow::Result<()> {
    for dir in out.ancestors().filter(|d| !d.as_os_str().is_empty()) {
        match dir.metadata() {
            Ok(meta) if meta.is_dir() => return Ok(()),
            Ok(_) => bail!(
                "--out {}: {} is not a directory",
                out.display(),
                dir.display()
            ),
            Err(_) => continue,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_out_dir;

    #[test]
    fn out_dir_under_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        let err = check_out_dir(&file.join("sub")).unwrap_err().to_string();
        assert!(
            err.contains("--out") && err.contains("not a directory"),
            "{err}"
        );
        check_out_dir(&dir.path().join("new/deeper")).unwrap();
        check_out_dir(dir.path()).unwrap();
    }
}

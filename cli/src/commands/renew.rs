//! `minica renew NAME` and `minica renew --all --within DUR`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use minica_ca::{Ca, OldCert, RenewKey, RenewOptions, Renewed};
use time::format_description::well_known::Rfc3339;

use minica_enrol::identity::{write_identity, CurrentIdentity, Overwrite};
use minica_enrol::trust::CaUrl;
use minica_enrol::KeyChoice;

use crate::args::RenewArgs;
use crate::commands::enroll::{block_on, until as enroll_until};
use crate::commands::Globals;
use crate::exit::ExitStatus;
use crate::output::outln;

pub(crate) fn run(globals: &Globals, args: &RenewArgs) -> anyhow::Result<ExitStatus> {
    if let Some(url) = &args.ca_url {
        return online(url, args);
    }
    let options = RenewOptions {
        key: if args.reuse_key {
            RenewKey::Reuse
        } else {
            RenewKey::New
        },
        validity: args.valid,
        old: if args.revoke_old {
            OldCert::Revoke
        } else {
            OldCert::Supersede
        },
    };
    // clap cannot say "--within needs --all" for a flag with a default.
    if args.name.is_some() && (args.within.is_some() || args.dry_run) {
        anyhow::bail!("--within and --dry-run go with --all, not with NAME");
    }
    if let Some(valid) = args.valid {
        if valid.is_zero() {
            anyhow::bail!("--valid must be longer than zero");
        }
    }
    let ca = globals.open_ca()?;
    match (&args.name, args.within) {
        (Some(name), _) => {
            let dir = args
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from(name.as_str()));
            let r = ca
                .renew_to_dir(name.as_str(), &dir, &options)
                .with_context(|| format!("renew {name}"))?;
            print_renewed(&r, "");
            Ok(ExitStatus::Success)
        }
        (None, Some(within)) => {
            let base = args.out.clone().unwrap_or_default();
            renew_all(&ca, &base, within, args.dry_run, &options)
        }
        (None, None) => anyhow::bail!("give a NAME, or --all --within DUR"),
    }
}

/// `minica renew --ca-url URL --identity DIR`: renew through `minica serve`
/// over mutual TLS; no CA home is used.
fn online(url: &CaUrl, args: &RenewArgs) -> anyhow::Result<ExitStatus> {
    let dir = args
        .identity
        .as_deref()
        .context("--ca-url needs --identity DIR")?;
    let current = CurrentIdentity::load(dir).context("--identity")?;
    let key = if args.reuse_key {
        KeyChoice::Reuse
    } else {
        KeyChoice::New
    };
    let obtained = block_on(minica_enrol::renew(url, &current, key))?
        .with_context(|| format!("renew {}", dir.display()))?;
    write_identity(
        dir,
        &obtained.issued,
        obtained.key_pem.as_deref().map(String::as_str),
        Overwrite::Replace,
    )
    .with_context(|| format!("renew: writing {}", dir.display()))?;
    let new = &obtained.issued.leaf;
    outln!(
        "renewed {} (serial {} -> {}, {}, {}, until {}) from {url}",
        dir.display(),
        current.leaf.serial,
        new.serial,
        current.key_type,
        if obtained.key_pem.is_some() {
            "new key"
        } else {
            "same key"
        },
        enroll_until(new.not_after)
    );
    Ok(ExitStatus::Success)
}

fn until(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn print_renewed(r: &Renewed, prefix: &str) {
    let old = if r.old.revocation.is_some() {
        "revoked (superseded)"
    } else {
        "superseded"
    };
    let key = if r.key_written { "new key" } else { "same key" };
    outln!(
        "{prefix}renewed {} (serial {} -> {}, {}, {key}, until {}) in {}; old certificate {old}",
        r.new.name,
        r.old.serial,
        r.new.serial,
        r.new.key_type,
        until(r.new.not_after),
        r.dir.display()
    );
}

/// Renews every due leaf, trying them all; exit 2 if any failed.
fn renew_all(
    ca: &Ca,
    base: &Path,
    within: std::time::Duration,
    dry_run: bool,
    options: &RenewOptions,
) -> anyhow::Result<ExitStatus> {
    let due = ca.due_for_renewal(within)?;
    let n = due.len();
    if n == 0 {
        outln!("nothing to renew: no active leaf expires within the window");
        return Ok(ExitStatus::Success);
    }
    let mut failed = 0;
    for (i, rec) in due.iter().enumerate() {
        let prefix = format!("[{}/{n}] ", i + 1);
        let dir = base.join(&rec.name);
        if dry_run {
            outln!(
                "{prefix}would renew {} (serial {}, expires {}) in {}",
                rec.name,
                rec.serial,
                until(rec.not_after),
                dir.display()
            );
            continue;
        }
        match ca.renew_to_dir(&rec.name, &dir, options) {
            Ok(r) => print_renewed(&r, &prefix),
            Err(e) => {
                failed += 1;
                eprintln!("minica: error: {prefix}renew {}: {e:#}", rec.name);
            }
        }
    }
    if dry_run {
        outln!("dry run: {n} to renew, nothing changed");
        return Ok(ExitStatus::Success);
    }
    outln!("renewed {} of {n}", n - failed);
    if failed > 0 {
        eprintln!("minica: error: {failed} of {n} renewals failed (see above)");
        return Ok(ExitStatus::Error);
    }
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::args::{Cli, Command, RotateWhat};

    #[test]
    fn renew_rotate_and_status_arguments() {
        let parse = |argv: &[&str]| Cli::try_parse_from(argv);
        let cli = parse(&["minica", "renew", "--all", "--within", "30d", "--dry-run"]).unwrap();
        let Command::Renew(r) = cli.command else {
            panic!("renew expected")
        };
        assert!(r.all && r.dry_run && r.name.is_none());
        assert_eq!(r.within.unwrap().as_secs(), 30 * 86_400);
        let cli = parse(&["minica", "rotate", "root", "--finish", "--force"]).unwrap();
        let Command::Rotate(r) = cli.command else {
            panic!("rotate expected")
        };
        assert!(matches!(
            r.what,
            RotateWhat::Root {
                finish: true,
                force: true,
                ..
            }
        ));
        assert!(parse(&["minica", "status", "--json"]).is_ok());
        for bad in [
            &["minica", "renew"][..],
            &["minica", "renew", "a", "--all", "--within", "1d"],
            &["minica", "renew", "--all"],
            &["minica", "renew", "--all", "--within", "soon"],
            &["minica", "rotate"],
            &["minica", "rotate", "root", "--force"],
            &["minica", "rotate", "root", "--finish", "--valid", "1y"],
            &["minica", "rotate", "leaf"],
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }
}

//! `minica export NAME --format mysql|p12`: an identity in other conventions.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use minica_ca::export::{self, Format, Identity, MysqlExport, Password};
use minica_ca::{Ca, DisplayStatus, Status};
use minica_pki::atomic::{write_all_atomic, write_atomic, FileMode};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::args::ExportArgs;
use crate::commands::Globals;
use crate::exit::ExitStatus;
use crate::output::outln;

pub(crate) fn run(globals: &Globals, args: &ExportArgs) -> anyhow::Result<ExitStatus> {
    // Arguments first, then the identity, then the ledger: nothing is
    // written before every check passed.
    match args.format {
        Format::Mysql if args.password_file.is_some() => {
            bail!("--password-file is for --format p12 only")
        }
        Format::P12 if args.role.is_some() || args.crl => {
            bail!("--role and --crl are for --format mysql only")
        }
        Format::P12 if args.password_file.is_none() => {
            bail!("--format p12 needs --password-file FILE (the password is its first line)")
        }
        _ => {}
    }
    let dir = args
        .identity
        .clone()
        .unwrap_or_else(|| PathBuf::from(args.name.as_str()));
    let identity = Identity::load(&dir, &args.name)?;
    let ca = if globals.home.has_ca() {
        let ca = globals.open_ca()?;
        check_ledger(&ca, &identity)?;
        Some(ca)
    } else {
        eprintln!(
            "note: no CA in {}: the serial was not checked against the ledger and no CRL is \
             exported (give --home)",
            globals.home.dir().display()
        );
        None
    };
    match args.format {
        Format::Mysql => mysql(args, &identity, ca.as_ref()),
        Format::P12 => p12(args, &identity),
    }
}

/// Refuses a revoked certificate, or one this CA never issued; warns about
/// a superseded or expired one.
fn check_ledger(ca: &Ca, id: &Identity) -> anyhow::Result<()> {
    let path = id.cert_path.display();
    let Some(rec) = ca.store().get(&id.serial)? else {
        bail!(
            "{path}: serial {} is not in the ledger of the CA in {}: another CA issued it \
             (give that CA's --home)",
            id.serial,
            ca.home().dir().display()
        );
    };
    let now = OffsetDateTime::now_utc();
    match rec.status_at(now) {
        DisplayStatus::Revoked => {
            let at = rec
                .revocation
                .as_ref()
                .and_then(|r| r.at.format(&Rfc3339).ok())
                .unwrap_or_default();
            bail!(
                "{path}: serial {} was revoked at {at}: nothing to export (issue a new one with \
                 `minica issue {} --force`)",
                id.serial,
                rec.name
            );
        }
        DisplayStatus::Superseded => eprintln!(
            "warning: {path}: serial {} was superseded{}: peers may soon stop accepting it",
            id.serial,
            rec.superseded_by
                .map(|s| format!(" by {s}"))
                .unwrap_or_default()
        ),
        DisplayStatus::Expired => eprintln!(
            "warning: {path}: serial {} expired at {}: peers will refuse it",
            id.serial,
            rec.not_after.format(&Rfc3339).unwrap_or_default()
        ),
        DisplayStatus::Active => {}
    }
    Ok(())
}

/// Whether any certificate of the CA (a leaf or an intermediate, of any
/// generation) is revoked.
fn has_revocations(ca: &Ca) -> anyhow::Result<bool> {
    Ok(ca
        .records()?
        .iter()
        .any(|record| record.status == Status::Revoked))
}

fn mysql(args: &ExportArgs, identity: &Identity, ca: Option<&Ca>) -> anyhow::Result<ExitStatus> {
    let role = args.role.unwrap_or_else(|| identity.default_role());
    identity.check_role(role)?;
    if args.crl && !role.server() {
        bail!("--crl: ssl-crl is a server option, and this export has no [mysqld] (role {role})");
    }
    // The server checks every level of the chain against ssl-crl, so the
    // file holds the root's CRL and the intermediate's, fresh.
    let with_crl = match ca {
        Some(ca) => role.server() && (args.crl || has_revocations(ca)?),
        None if args.crl => bail!("--crl: no CA in the home to take the CRLs from (give --home)"),
        None => false,
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}-mysql", args.name)));
    minica_pki::atomic::create_private_dir(&out).context("--out")?;
    // Absolute: mariadbd changes into its data directory.
    let abs = out
        .canonicalize()
        .with_context(|| format!("--out {}", out.display()))?;
    let mut export = MysqlExport {
        identity,
        role,
        dir: abs,
        crls_pem: with_crl.then(String::new),
    };
    if !args.force {
        let files = export.files();
        export::check_absent(files.iter().map(|f| f.path.as_path()))?;
    }
    if let (true, Some(ca)) = (with_crl, ca) {
        let set = ca.publish_crls(minica_ca::publish::default_next_update())?;
        export.crls_pem = Some(set.to_pem());
    }
    let files = export.files();
    let writes: Vec<(&Path, &[u8], FileMode)> = files
        .iter()
        .map(|f| (f.path.as_path(), f.bytes.as_slice(), f.mode))
        .collect();
    write_all_atomic(&writes)?;
    outln!(
        "exported {} (serial {}) for MySQL/MariaDB ({role}) to {}",
        args.name,
        identity.serial,
        export.dir.display()
    );
    for f in &files {
        outln!("  {}", f.path.display());
    }
    if role.server() && export.crls_pem.is_none() {
        outln!(
            "  (no ssl-crl: nothing is revoked yet; export with --crl to have the server \
             check CRLs from the start)"
        );
    }
    Ok(ExitStatus::Success)
}

fn p12(args: &ExportArgs, identity: &Identity) -> anyhow::Result<ExitStatus> {
    let file_name = format!("{}.p12", args.name);
    let out = match &args.out {
        None => PathBuf::from(file_name),
        Some(out) if out.is_dir() || out.as_os_str().to_string_lossy().ends_with('/') => {
            out.join(file_name)
        }
        Some(out) => out.clone(),
    };
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        bail!(
            "--out {}: {} is not a directory",
            out.display(),
            parent.display()
        );
    }
    if !args.force {
        export::check_absent([out.as_path()])?;
    }
    let Some(password_file) = &args.password_file else {
        bail!("--format p12 needs --password-file FILE");
    };
    let password = Password::read(password_file)?;
    let der = export::pkcs12(identity, args.name.as_str(), &password)?;
    write_atomic(&out, &der, FileMode::Private)?;
    outln!(
        "exported {} (serial {}) to {} (PKCS#12: key, {} certificates; PBES2 AES-256-CBC, \
         HMAC-SHA256 MAC; mode 0600)",
        args.name,
        identity.serial,
        out.display(),
        identity.chain.len() + identity.roots.len()
    );
    Ok(ExitStatus::Success)
}

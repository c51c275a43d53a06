//! `minica crl`: publish the CRL of every CA level.

use std::path::{Path, PathBuf};

use minica_ca::publish::PublishedCrl;
use minica_ca::CertKind;
use minica_pki::atomic::{write_all_atomic, write_atomic, FileMode};
use time::format_description::well_known::Rfc3339;

use crate::args::CrlArgs;
use crate::commands::Globals;
use crate::exit::ExitStatus;
use crate::output::out;

pub(crate) fn run(globals: &Globals, args: &CrlArgs) -> anyhow::Result<ExitStatus> {
    if let Some(out) = &args.out {
        check_out_parent(out)?;
    }
    let ca = globals.open_ca()?;
    let set = ca.publish_crls(args.next_update)?;
    for c in &set.crls {
        eprintln!(
            "{} CRL #{} of {}: {} revoked, next update {}",
            c.issuer_kind,
            c.number,
            c.issuer,
            c.revoked,
            c.next_update.format(&Rfc3339).unwrap_or_default()
        );
    }
    match (&args.out, args.der) {
        (None, _) => out!("{}", set.to_pem()),
        (Some(out), false) => {
            write_atomic(out, set.to_pem().as_bytes(), FileMode::Public)?;
            eprintln!("wrote {}", out.display());
        }
        (Some(out), true) => {
            let files: Vec<(PathBuf, &PublishedCrl)> = set
                .crls
                .iter()
                .enumerate()
                .map(|(i, c)| (der_path(out, i, c, &set.crls[..i]), c))
                .collect();
            let writes: Vec<(&Path, &[u8], FileMode)> = files
                .iter()
                .map(|(p, c)| (p.as_path(), c.crl.der(), FileMode::Public))
                .collect();
            write_all_atomic(&writes)?;
            for (path, c) in &files {
                eprintln!("wrote {} ({} CRL, DER)", path.display(), c.issuer_kind);
            }
        }
    }
    Ok(ExitStatus::Success)
}

/// Where `--der --out FILE` puts CRL number `index` of the set: the first
/// (the current intermediate's) in FILE, the root's in `FILE-root` (before
/// the extension), any other intermediate's (and, during a root rotation's
/// overlap, the retired root's, which follows the current root's in
/// `before`) in `FILE-<serial prefix>`.
fn der_path(out: &Path, index: usize, crl: &PublishedCrl, before: &[PublishedCrl]) -> PathBuf {
    if index == 0 && crl.issuer_kind == CertKind::Intermediate {
        return out.to_path_buf();
    }
    let suffix = match crl.issuer_kind {
        CertKind::Root if !before.iter().any(|c| c.issuer_kind == CertKind::Root) => {
            "root".to_string()
        }
        _ => crl.issuer_serial.to_hex().chars().take(8).collect(),
    };
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match out.extension() {
        Some(ext) => format!("{stem}-{suffix}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{suffix}"),
    };
    out.with_file_name(name)
}

/// Refuses `--out` in a directory that does not exist, before any CRL
/// Number is taken.
fn check_out_parent(out: &Path) -> anyhow::Result<()> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        anyhow::bail!(
            "--out {}: {} is not a directory",
            out.display(),
            parent.display()
        );
    }
    if out.is_dir() {
        anyhow::bail!("--out {}: is a directory", out.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_files_are_named_per_level() {
        let dir = tempfile::tempdir().unwrap();
        let ca = minica_ca::Ca::init(
            &minica_ca::CaHome::new(dir.path()),
            &minica_ca::InitOptions::default(),
        )
        .unwrap();
        let set = ca.build_crls(std::time::Duration::from_secs(60)).unwrap();
        let out = Path::new("/x/crl.der");
        assert_eq!(der_path(out, 0, &set.crls[0], &[]), Path::new("/x/crl.der"));
        assert_eq!(
            der_path(out, 1, &set.crls[1], &set.crls[..1]),
            Path::new("/x/crl-root.der")
        );
        assert_eq!(
            der_path(Path::new("crl"), 1, &set.crls[1], &set.crls[..1]),
            Path::new("crl-root")
        );
        assert!(check_out_parent(&dir.path().join("nope/crl.pem")).is_err());
        assert!(check_out_parent(dir.path()).is_err());
        check_out_parent(&dir.path().join("crl.pem")).unwrap();
    }
}

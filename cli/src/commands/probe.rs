//! `minica probe HOST:PORT`: connect, explain the handshake, diagnose.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use minica_probe::{probe, ClientIdentity, ProbeRequest, StartTls, Versions};
use rustls_pki_types::CertificateDer;

use crate::args::{ProbeArgs, StartTlsArg};
use crate::commands::Globals;
use crate::exit::ExitStatus;
use crate::output::{out, outln};

pub(crate) fn run(globals: &Globals, args: &ProbeArgs) -> anyhow::Result<ExitStatus> {
    // Every local file is read first: a bad one is exit 2, never a diagnosis.
    if args.timeout.is_zero() {
        bail!("--timeout: must be more than 0s");
    }
    let bundle = globals.bundle_path(args.bundle.as_deref())?;
    let anchors = certs("--bundle", &bundle)?;
    let mut untrusted = Vec::new();
    for path in &args.untrusted {
        untrusted.extend(certs("--untrusted", path)?);
    }
    let mut crls = Vec::new();
    for path in &args.crl {
        crls.extend(minica_pki::pem::load_crls(path).context("--crl")?);
    }
    // The home's intermediate only tells a missing intermediate from an
    // unknown authority; a home without a CA simply knows none.
    let known_intermediates =
        minica_pki::pem::load_certs(&globals.home.intermediate_cert_path()).unwrap_or_default();
    let identity = match (&args.identity, &args.cert, &args.key) {
        (Some(dir), _, _) => Some(identity_dir(dir)?),
        (None, Some(cert), Some(key)) => Some(identity_files("--cert", cert, "--key", key)?),
        _ => None,
    };
    let request = ProbeRequest {
        server_name: args.server_name.clone(),
        anchors,
        untrusted,
        known_intermediates,
        crls,
        identity,
        starttls: args.starttls.map(|s| match s {
            StartTlsArg::Mysql => StartTls::Mysql,
        }),
        versions: if args.tls12 {
            Versions::Tls13And12
        } else {
            Versions::Tls13
        },
        timeout: args.timeout,
        ..ProbeRequest::new(&args.target)
    };
    let report = probe(&request).with_context(|| format!("probe {}", args.target))?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        out!("{}", report.human());
    }
    Ok(if report.is_ok() {
        ExitStatus::Success
    } else {
        ExitStatus::Negative
    })
}

fn certs(arg: &str, path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = minica_pki::pem::load_certs(path).with_context(|| arg.to_string())?;
    if certs.is_empty() {
        bail!("{arg} {}: holds no certificate", path.display());
    }
    Ok(certs)
}

/// `--identity DIR`: `chain.pem` (else `cert.pem`) and `key.pem`, the
/// layout `minica issue` writes.
fn identity_dir(dir: &Path) -> anyhow::Result<ClientIdentity> {
    if !dir.is_dir() {
        bail!("--identity {}: not a directory", dir.display());
    }
    let chain = dir.join("chain.pem");
    let cert: PathBuf = if chain.exists() {
        chain
    } else {
        dir.join("cert.pem")
    };
    identity_files("--identity", &cert, "--identity", &dir.join("key.pem"))
}

fn identity_files(
    cert_arg: &str,
    cert: &Path,
    key_arg: &str,
    key: &Path,
) -> anyhow::Result<ClientIdentity> {
    let chain = certs(cert_arg, cert)?;
    let key = minica_pki::pem::load_private_key(key).with_context(|| key_arg.to_string())?;
    Ok(ClientIdentity { chain, key })
}

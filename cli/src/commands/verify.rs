//! `minica verify CERT`: validate a chain like a strict X.509 validator.

use std::path::Path;

use anyhow::{bail, Context as _};
use minica_ca::inspect::{inspect_bytes, Inspected};
use minica_ca::verify::{verify, Purpose, SubjectName, VerifyRequest};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use time::OffsetDateTime;

use crate::args::{PurposeArg, VerifyArgs};
use crate::commands::Globals;
use crate::exit::ExitStatus;
use crate::output::outln;

pub(crate) fn run(globals: &Globals, args: &VerifyArgs) -> anyhow::Result<ExitStatus> {
    // Every file is read and checked before anything is verified: an
    // unreadable file or one without certificates is exit 2, never "invalid".
    let certs = load_certs("CERT", &args.cert, Strictness::Lenient)?;
    let Some((leaf, rest)) = certs.split_first() else {
        bail!("CERT {}: holds no certificate", args.cert.display());
    };
    let mut intermediates: Vec<CertificateDer<'static>> = rest.to_vec();
    for path in &args.untrusted {
        intermediates.extend(load_certs("--untrusted", path, Strictness::Lenient)?);
    }
    let bundle = globals.bundle_path(args.bundle.as_deref())?;
    let anchors = load_certs("--bundle", &bundle, Strictness::Strict)?;
    let mut crls: Vec<CertificateRevocationListDer<'static>> = Vec::new();
    for path in &args.crl {
        crls.extend(load_crls(path)?);
    }
    let name = match (&args.host, args.ip, &args.email) {
        (Some(host), _, _) => Some(SubjectName::Host(host.clone())),
        (_, Some(ip), _) => Some(SubjectName::Ip(ip)),
        (_, _, Some(email)) => Some(SubjectName::Email(email.clone())),
        _ => None,
    };
    let purpose = match args.purpose {
        PurposeArg::Server => Purpose::Server,
        PurposeArg::Client => Purpose::Client,
        PurposeArg::Any => Purpose::Any,
    };
    let at = args.at.unwrap_or_else(OffsetDateTime::now_utc);
    let request = VerifyRequest {
        intermediates: &intermediates,
        crls: &crls,
        name,
        purpose,
        max_depth: args.max_depth,
        ..VerifyRequest::new(leaf.as_ref(), &anchors, at)
    };
    let outcome = verify(&request);
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&outcome.to_json())?);
    } else {
        outln!("{}", outcome.human());
    }
    Ok(if outcome.is_valid() {
        ExitStatus::Success
    } else {
        ExitStatus::Negative
    })
}

/// How closely a certificate file is checked before verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strictness {
    /// Every certificate must parse (trust anchors: a bad bundle is an
    /// input error).
    Strict,
    /// A malformed certificate in PEM is passed on (the verdict is then
    /// "invalid", exit 1); a file holding no certificate at all is still
    /// an input error.
    Lenient,
}

fn looks_like_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// What a file holds instead of certificates, for the error message.
fn what_instead(path: &Path, bytes: &[u8]) -> Option<String> {
    match inspect_bytes(path, bytes).ok()? {
        Inspected::Certificates { .. } => None,
        Inspected::Crls { crls } => Some(format!(
            "holds {} CRL(s), not certificates (CRLs go to --crl)",
            crls.len()
        )),
        Inspected::Csr(_) => Some("holds a certificate request, not a certificate".into()),
        Inspected::Key(_) => Some("holds a private key, not a certificate".into()),
    }
}

fn load_certs(
    arg: &str,
    path: &Path,
    strictness: Strictness,
) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let bytes = minica_pki::pem::read_file(path).with_context(|| arg.to_string())?;
    let certs = match minica_pki::pem::parse_certs(path, &bytes) {
        Ok(certs) => certs,
        Err(err) => match what_instead(path, &bytes) {
            Some(what) => bail!("{arg} {}: {what}", path.display()),
            None => return Err(err).with_context(|| arg.to_string()),
        },
    };
    // DER is taken as a certificate by its first byte alone; make sure it
    // is one. A bundle must parse entirely.
    if !looks_like_pem(&bytes) || strictness == Strictness::Strict {
        match inspect_bytes(path, &bytes) {
            Ok(Inspected::Certificates { .. }) => {}
            Ok(_) => {
                let what = what_instead(path, &bytes).unwrap_or_default();
                bail!("{arg} {}: {what}", path.display());
            }
            Err(err) if strictness == Strictness::Strict || !looks_like_pem(&bytes) => {
                return Err(err).with_context(|| {
                    format!(
                        "{arg} {}: not a certificate (PEM or DER X.509)",
                        path.display()
                    )
                });
            }
            Err(_) => {}
        }
    }
    Ok(certs)
}

fn load_crls(path: &Path) -> anyhow::Result<Vec<CertificateRevocationListDer<'static>>> {
    let bytes = minica_pki::pem::read_file(path).context("--crl")?;
    match minica_pki::pem::parse_crls(path, &bytes) {
        Ok(crls) => Ok(crls),
        Err(err) => match inspect_bytes(path, &bytes) {
            Ok(Inspected::Certificates { .. }) => bail!(
                "--crl {}: holds certificates, not a CRL (trust anchors go to --bundle)",
                path.display()
            ),
            _ => Err(err).context("--crl"),
        },
    }
}

//! Revocation checking against the given CRLs (RFC 5280 §6.3, with our
//! policy: a CRL that applies must be usable, or the chain is rejected).
//!
//! A CRL applies to a certificate of the path when its issuer name is the
//! certificate's issuer name, unless its Authority Key Identifier names a
//! different key that some other known CA with that same name has (a CA that
//! rotated its key but kept its name), or its Issuing Distribution Point
//! scope excludes the certificate. An applicable CRL must verify with the
//! issuer's key, the issuer must have cRLSign when it has a key usage, it
//! must have a non-critical CRL Number, thisUpdate <= at <= nextUpdate; then
//! the certificate's serial must not be listed.
//!
//! When any CRL is given, the leaf must have at least one CRL that applies
//! (its unknown status is denied, like `openssl verify -crl_check`); an
//! intermediate must have one when CRLs with its issuer's name were given
//! (their scope must then cover it), and is otherwise accepted with an
//! unknown status, so that the intermediate's CRL alone (`--crl crl.pem`)
//! is enough. With no CRL at all, revocation is not checked.

use rustls_pki_types::CertificateRevocationListDer;
use time::OffsetDateTime;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use super::checks::display_name;
use super::outcome::{CrlProblem, Reason};
use crate::crl::CrlInfo;

/// A CRL parsed once per verification.
pub(super) struct ParsedCrl<'a> {
    parsed: CertificateRevocationList<'a>,
    info: CrlInfo,
    only_user: bool,
    only_ca: bool,
    idp_uris: Option<Vec<String>>,
}

/// Parses every CRL, strictly (rustls-webpki's parser too). One malformed
/// CRL rejects the verification: we cannot tell whom it was meant for.
pub(super) fn prepare<'a>(
    crls: &'a [CertificateRevocationListDer<'a>],
) -> Result<Vec<ParsedCrl<'a>>, Reason> {
    let mut out = Vec::with_capacity(crls.len());
    for (index, der) in crls.iter().enumerate() {
        let bad = |detail: String| Reason::Crl(CrlProblem::Malformed { index, detail });
        // rustls-webpki's parser as a second, strict opinion (structure,
        // extensions, every entry); our index is built by `CrlInfo`.
        let strict = webpki::BorrowedCertRevocationList::from_der(der.as_ref())
            .map_err(|e| bad(format!("{e}")))?;
        for entry in &strict {
            entry.map_err(|e| bad(format!("{e}")))?;
        }
        let (rest, parsed) =
            CertificateRevocationList::from_der(der.as_ref()).map_err(|e| bad(e.to_string()))?;
        if !rest.is_empty() {
            return Err(bad("trailing data".into()));
        }
        let info = CrlInfo::from_parsed(&parsed).map_err(|e| bad(e.to_string()))?;
        let mut only_user = false;
        let mut only_ca = false;
        let mut idp_uris = None;
        for ext in parsed.extensions() {
            if let ParsedExtension::IssuingDistributionPoint(idp) = ext.parsed_extension() {
                only_user = idp.only_contains_user_certs;
                only_ca = idp.only_contains_ca_certs;
                if let Some(DistributionPointName::FullName(names)) = &idp.distribution_point {
                    let found = uris(names);
                    if found.len() != names.len() {
                        return Err(bad(
                            "issuing distribution point names something else than a URI".into(),
                        ));
                    }
                    idp_uris = Some(found);
                }
            }
        }
        out.push(ParsedCrl {
            parsed,
            info,
            only_user,
            only_ca,
            idp_uris,
        });
    }
    Ok(out)
}

fn uris(names: &[GeneralName<'_>]) -> Vec<String> {
    names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => Some((*u).to_owned()),
            _ => None,
        })
        .collect()
}

/// The CRL distribution point URIs of a certificate; empty when a full name
/// lists anything but URIs (CA/B Forum 7.1.2.11.2), so that no partitioned
/// CRL matches it.
fn cert_dp_uris(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::CRLDistributionPoints(dps) = ext.parsed_extension() {
            for dp in dps.iter() {
                if let Some(DistributionPointName::FullName(names)) = &dp.distribution_point {
                    let found = uris(names);
                    if found.len() != names.len() {
                        return Vec::new();
                    }
                    out.extend(found);
                }
            }
        }
    }
    out
}

fn subject_key_id<'a>(cert: &'a X509Certificate<'_>) -> Option<&'a [u8]> {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0),
            _ => None,
        })
}

/// Checks `path` (leaf first, anchor last) against every CRL. `known_cas`
/// are all the CA certificates the request knows (anchors and untrusted).
pub(super) fn check(
    path: &[&X509Certificate<'_>],
    crls: &[ParsedCrl<'_>],
    known_cas: &[X509Certificate<'_>],
    at: OffsetDateTime,
) -> Result<(), Reason> {
    if crls.is_empty() {
        return Ok(());
    }
    for (level, pair) in path.windows(2).enumerate() {
        let [cert, issuer] = pair else { continue };
        let mut applied = 0usize;
        for crl in crls {
            if crl.info.issuer_der != cert.issuer().as_raw() {
                continue;
            }
            // Another key with the same name (a CA that rotated its key)?
            if let (Some(aki), Some(ski)) = (&crl.info.authority_key_id, subject_key_id(issuer)) {
                if aki.as_slice() != ski
                    && known_cas.iter().any(|ca| {
                        ca.subject().as_raw() == crl.info.issuer_der.as_slice()
                            && subject_key_id(ca) == Some(aki.as_slice())
                    })
                {
                    continue;
                }
            }
            // Scope (Issuing Distribution Point).
            let cert_is_ca = cert.is_ca();
            if (crl.only_user && cert_is_ca) || (crl.only_ca && !cert_is_ca) {
                continue;
            }
            if let Some(idp) = &crl.idp_uris {
                let dps = cert_dp_uris(cert);
                if !dps.iter().any(|u| idp.contains(u)) {
                    continue;
                }
            }
            check_one(cert, issuer, crl, at)?;
            applied += 1;
        }
        // Unknown status is denied for the leaf, and for an intermediate
        // when CRLs of its issuer's name were given but none applies.
        let named = crls
            .iter()
            .any(|c| c.info.issuer_der == cert.issuer().as_raw());
        if applied == 0 && (level == 0 || named) {
            return Err(CrlProblem::NoCrl {
                subject: display_name(cert),
                issuer: cert.issuer().to_string(),
            }
            .into());
        }
    }
    Ok(())
}

fn check_one(
    cert: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
    crl: &ParsedCrl<'_>,
    at: OffsetDateTime,
) -> Result<(), Reason> {
    let name = || crl.info.issuer.clone();
    let alg = crl.parsed.signature_algorithm.algorithm.to_id_string();
    if !super::checks::allowed_signature_alg(&alg)
        || crl.parsed.verify_signature(issuer.public_key()).is_err()
    {
        return Err(CrlProblem::BadSignature { issuer: name() }.into());
    }
    if let Ok(Some(ku)) = issuer.key_usage() {
        if !ku.value.crl_sign() {
            return Err(CrlProblem::IssuerNotCrlSigner { issuer: name() }.into());
        }
    }
    if crl.info.number.is_none() || crl.info.number_critical {
        return Err(CrlProblem::BadNumber { issuer: name() }.into());
    }
    if crl.info.this_update > at {
        return Err(CrlProblem::NotYetValid {
            issuer: name(),
            this_update: crl.info.this_update,
        }
        .into());
    }
    match crl.info.next_update {
        None => return Err(CrlProblem::NoNextUpdate { issuer: name() }.into()),
        Some(next_update) if next_update < at => {
            return Err(CrlProblem::Stale {
                issuer: name(),
                next_update,
            }
            .into())
        }
        Some(_) => {}
    }
    if let Some(entry) = crl.info.lookup(cert.raw_serial()) {
        return Err(Reason::Revoked {
            subject: display_name(cert),
            serial: entry.serial_hex(),
            reason: entry.reason,
            date: entry.revoked_at,
        });
    }
    Ok(())
}

//! Per-certificate checks that rustls-webpki does not make: the strict
//! profile (what OpenSSL's `-x509_strict` and the CA/B Forum BRs require),
//! the trust anchor's own validity and CA-ness, and the leaf's key usage for
//! the purpose.

use time::OffsetDateTime;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER, OID_X509_EXT_BASIC_CONSTRAINTS,
    OID_X509_EXT_CRL_DISTRIBUTION_POINTS, OID_X509_EXT_EXTENDED_KEY_USAGE, OID_X509_EXT_KEY_USAGE,
    OID_X509_EXT_NAME_CONSTRAINTS, OID_X509_EXT_SUBJECT_ALT_NAME,
    OID_X509_EXT_SUBJECT_KEY_IDENTIFIER,
};
use x509_parser::prelude::{X509Certificate, X509Version};

use super::names;
use super::outcome::Reason;
use super::Purpose;

/// Where a certificate sits in the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Leaf,
    Intermediate,
    Anchor,
}

/// Short display name: CN, else first SAN, else the subject.
pub(super) fn display_name(cert: &X509Certificate<'_>) -> String {
    if let Some(cn) = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
    {
        return cn.to_owned();
    }
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) | GeneralName::RFC822Name(d) | GeneralName::URI(d) => {
                    return (*d).to_owned()
                }
                _ => {}
            }
        }
    }
    cert.subject().to_string()
}

fn nonconforming(cert: &X509Certificate<'_>, rule: impl Into<String>) -> Reason {
    Reason::NonConforming {
        subject: display_name(cert),
        rule: rule.into(),
    }
}

/// Whether the certificate names itself as its issuer.
pub(super) fn self_issued(cert: &X509Certificate<'_>) -> bool {
    cert.subject().as_raw() == cert.issuer().as_raw()
}

/// Critical extensions we (and rustls-webpki) process.
fn understood_critical(oid: &x509_parser::der_parser::Oid<'_>) -> bool {
    [
        OID_X509_EXT_BASIC_CONSTRAINTS,
        OID_X509_EXT_KEY_USAGE,
        OID_X509_EXT_EXTENDED_KEY_USAGE,
        OID_X509_EXT_SUBJECT_ALT_NAME,
        OID_X509_EXT_NAME_CONSTRAINTS,
        OID_X509_EXT_CRL_DISTRIBUTION_POINTS,
    ]
    .iter()
    .any(|known| known == oid)
}

/// The profile checks every certificate of the path must pass.
pub(super) fn check_profile(cert: &X509Certificate<'_>, role: Role) -> Result<(), Reason> {
    let is_ca_role = role != Role::Leaf;
    if cert.version() != X509Version::V3 {
        return Err(nonconforming(cert, "not an X.509 v3 certificate"));
    }
    // Serial: positive, at most 20 octets (RFC 5280 §4.1.2.2).
    let raw = cert.raw_serial();
    if raw.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(nonconforming(cert, "negative serial number"));
    }
    let magnitude = crate::crl::strip_zeros(raw);
    if magnitude.is_empty() {
        return Err(nonconforming(cert, "serial number is zero"));
    }
    if magnitude.len() > 20 {
        return Err(nonconforming(cert, "serial number longer than 20 octets"));
    }
    if cert.issuer().iter().next().is_none() {
        return Err(nonconforming(cert, "empty issuer name"));
    }
    // Extensions: well-formed, unique, no unknown critical ones.
    let mut seen = Vec::with_capacity(cert.extensions().len());
    for ext in cert.extensions() {
        if seen.contains(&&ext.oid) {
            return Err(Reason::Malformed {
                what: format!(
                    "{}: extension {} appears twice",
                    display_name(cert),
                    ext.oid
                ),
            });
        }
        seen.push(&ext.oid);
        if let ParsedExtension::ParseError { error } = ext.parsed_extension() {
            return Err(Reason::Malformed {
                what: format!("{}: extension {}: {error}", display_name(cert), ext.oid),
            });
        }
        if ext.critical && !understood_critical(&ext.oid) {
            if ext.oid == OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER
                || ext.oid == OID_X509_EXT_SUBJECT_KEY_IDENTIFIER
            {
                return Err(nonconforming(
                    cert,
                    "key identifier extension marked critical",
                ));
            }
            return Err(Reason::UnknownCriticalExtension {
                subject: display_name(cert),
                oid: Some(ext.oid.to_id_string()),
            });
        }
    }
    let bc = cert.basic_constraints().map_err(|e| Reason::Malformed {
        what: format!("{}: basicConstraints: {e}", display_name(cert)),
    })?;
    let ku = cert.key_usage().map_err(|e| Reason::Malformed {
        what: format!("{}: keyUsage: {e}", display_name(cert)),
    })?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| Reason::Malformed {
            what: format!("{}: subjectAltName: {e}", display_name(cert)),
        })?;
    if cert.subject().iter().next().is_none() && !san.as_ref().is_some_and(|s| s.critical) {
        return Err(nonconforming(
            cert,
            "empty subject without a critical subjectAltName",
        ));
    }
    if let Some(san) = &san {
        if san.value.general_names.is_empty() {
            return Err(nonconforming(cert, "empty subjectAltName"));
        }
        for n in &san.value.general_names {
            names::check_san_entry(n).map_err(|rule| nonconforming(cert, rule))?;
        }
    }
    if ku.as_ref().is_some_and(|k| k.value.flags == 0) {
        return Err(nonconforming(cert, "keyUsage with no bit set"));
    }
    let ca = bc.as_ref().is_some_and(|b| b.value.ca);
    let nc = cert.name_constraints().map_err(|e| Reason::Malformed {
        what: format!("{}: nameConstraints: {e}", display_name(cert)),
    })?;
    if let Some(nc) = &nc {
        if !ca {
            return Err(nonconforming(
                cert,
                "nameConstraints on a non-CA certificate",
            ));
        }
        if !nc.critical {
            return Err(nonconforming(cert, "nameConstraints not marked critical"));
        }
        let empty = |t: &Option<Vec<_>>| t.as_ref().is_none_or(Vec::is_empty);
        if empty(&nc.value.permitted_subtrees) && empty(&nc.value.excluded_subtrees) {
            return Err(nonconforming(cert, "nameConstraints with no subtree"));
        }
        names::check_constraint_syntax(nc.value).map_err(|rule| nonconforming(cert, rule))?;
    }
    if bc
        .as_ref()
        .is_some_and(|b| b.value.path_len_constraint.is_some())
        && !ca
    {
        return Err(nonconforming(
            cert,
            "pathLenConstraint on a non-CA certificate",
        ));
    }
    if ku.as_ref().is_some_and(|k| k.value.key_cert_sign()) && !ca {
        return Err(nonconforming(cert, "keyCertSign on a non-CA certificate"));
    }
    let has_ski = cert
        .get_extension_unique(&OID_X509_EXT_SUBJECT_KEY_IDENTIFIER)
        .ok()
        .flatten()
        .is_some();
    let has_aki = cert
        .get_extension_unique(&OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER)
        .ok()
        .flatten()
        .is_some();
    if !self_issued(cert) && !has_aki {
        return Err(nonconforming(cert, "no authorityKeyIdentifier"));
    }
    check_key_identifiers(cert, role)?;
    if is_ca_role {
        if cert.subject().iter().next().is_none() {
            return Err(nonconforming(cert, "CA certificate with an empty subject"));
        }
        match &bc {
            Some(b) if b.value.ca => {
                if !b.critical {
                    return Err(nonconforming(
                        cert,
                        "basicConstraints of a CA not marked critical",
                    ));
                }
            }
            _ => {
                return Err(Reason::NotACa {
                    subject: display_name(cert),
                })
            }
        }
        if ku.as_ref().is_some_and(|k| !k.value.key_cert_sign()) {
            return Err(nonconforming(cert, "CA key usage lacks keyCertSign"));
        }
        if !has_ski {
            return Err(nonconforming(
                cert,
                "CA certificate without subjectKeyIdentifier",
            ));
        }
    }
    Ok(())
}

/// Validity at `at` (rustls-webpki checks it for all but the anchor).
pub(super) fn check_validity(cert: &X509Certificate<'_>, at: OffsetDateTime) -> Result<(), Reason> {
    let v = cert.validity();
    let (nb, na) = (v.not_before.to_datetime(), v.not_after.to_datetime());
    if nb > na {
        return Err(nonconforming(cert, "notBefore is after notAfter"));
    }
    if at < nb {
        return Err(Reason::NotYetValid {
            subject: display_name(cert),
            not_before: nb,
        });
    }
    if at > na {
        return Err(Reason::Expired {
            subject: display_name(cert),
            not_after: na,
        });
    }
    Ok(())
}

/// The leaf's own rules: a SAN (never CN alone), every CN among the SANs
/// (skipped for e-mail certificates, whose CN is a person's name), and a key
/// usage that allows the purpose.
pub(super) fn check_leaf(
    cert: &X509Certificate<'_>,
    purpose: Purpose,
    email_name: bool,
) -> Result<(), Reason> {
    let san = match cert.subject_alternative_name() {
        Ok(Some(san)) => san,
        Ok(None) => {
            return Err(nonconforming(
                cert,
                "no subjectAltName (a CN alone is not a name)",
            ))
        }
        Err(e) => {
            return Err(Reason::Malformed {
                what: format!("{}: subjectAltName: {e}", display_name(cert)),
            })
        }
    };
    if san.critical && cert.subject().iter().next().is_some() {
        return Err(nonconforming(
            cert,
            "subjectAltName marked critical with a non-empty subject",
        ));
    }
    if !email_name {
        names::check_cn_in_sans(cert, &san.value.general_names)
            .map_err(|rule| nonconforming(cert, rule))?;
    }
    check_leaf_key(cert)?;
    if purpose == Purpose::Server {
        if let Ok(Some(eku)) = cert.extended_key_usage() {
            let e = eku.value;
            let precert = e
                .other
                .iter()
                .any(|o| o.to_id_string() == "1.3.6.1.4.1.11129.2.4.4");
            if eku.critical
                || e.any
                || e.code_signing
                || e.email_protection
                || e.time_stamping
                || e.ocsp_signing
                || precert
            {
                return Err(Reason::WrongPurpose {
                    detail: "extended key usage not allowed in a TLS server certificate \
                             (critical, or anyExtendedKeyUsage, codeSigning, emailProtection, \
                             timeStamping, OCSPSigning, precertificate: CA/B BR 7.1.2.7.10)"
                        .into(),
                });
            }
        }
    }
    if let Ok(Some(ku)) = cert.key_usage() {
        let k = ku.value;
        let ok = match purpose {
            Purpose::Server => k.digital_signature() || k.key_encipherment() || k.key_agreement(),
            Purpose::Client => k.digital_signature() || k.key_agreement(),
            Purpose::Any => true,
        };
        if !ok {
            return Err(Reason::WrongPurpose {
                detail: format!(
                    "key usage `{k}` does not allow TLS {}",
                    match purpose {
                        Purpose::Server => "server authentication",
                        _ => "client authentication",
                    }
                ),
            });
        }
    }
    Ok(())
}

/// What rustls-webpki does not check on the trust anchor: its
/// pathLenConstraint against the `below` non-self-issued intermediates under
/// it, and its EKU (when present) against the purpose.
pub(super) fn check_anchor(
    cert: &X509Certificate<'_>,
    below: usize,
    purpose: Purpose,
) -> Result<(), Reason> {
    if let Ok(Some(bc)) = cert.basic_constraints() {
        if let Some(len) = bc.value.path_len_constraint {
            if usize::try_from(len).is_ok_and(|len| below > len) {
                return Err(Reason::PathLenConstraint);
            }
        }
    }
    let eku = cert.extended_key_usage().map_err(|e| Reason::Malformed {
        what: format!("{}: extendedKeyUsage: {e}", display_name(cert)),
    })?;
    if let Some(eku) = eku {
        if self_issued(cert) {
            return Err(nonconforming(
                cert,
                "a root CA certificate with extKeyUsage (CA/B BR 7.1.2.1.2)",
            ));
        }
        let e = eku.value;
        let ok = match purpose {
            Purpose::Server => e.server_auth,
            Purpose::Client => e.client_auth,
            Purpose::Any => true,
        };
        if !ok {
            return Err(Reason::WrongPurpose {
                detail: format!("the trust anchor {} does not allow it", display_name(cert)),
            });
        }
    }
    Ok(())
}

/// Signature algorithms (OIDs) accepted outside rustls-webpki (CRLs, the
/// e-mail constraint path search): the ones rustls-webpki accepts, no SHA-1.
pub(super) fn allowed_signature_alg(oid: &str) -> bool {
    [
        "1.2.840.10045.4.3.2",   // ecdsa-with-SHA256
        "1.2.840.10045.4.3.3",   // ecdsa-with-SHA384
        "1.3.101.112",           // Ed25519
        "1.2.840.113549.1.1.11", // sha256WithRSAEncryption
        "1.2.840.113549.1.1.12", // sha384WithRSAEncryption
        "1.2.840.113549.1.1.13", // sha512WithRSAEncryption
        "1.2.840.113549.1.1.10", // RSASSA-PSS
    ]
    .contains(&oid)
}

/// The leaf's own key is one the CA/B Forum profile allows: RSA of at least
/// 2048 bits, ECDSA on P-256, P-384 or P-521, or Ed25519 (which minica
/// issues).
fn check_leaf_key(cert: &X509Certificate<'_>) -> Result<(), Reason> {
    let spki = cert.public_key();
    let alg = spki.algorithm.algorithm.to_id_string();
    let ok = match alg.as_str() {
        "1.2.840.113549.1.1.1" => matches!(
            spki.parsed(),
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) if rsa.key_size() >= 2048
        ),
        "1.2.840.10045.2.1" => spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .is_some_and(|curve| {
                matches!(
                    curve.to_id_string().as_str(),
                    "1.2.840.10045.3.1.7" | "1.3.132.0.34" | "1.3.132.0.35"
                )
            }),
        "1.3.101.112" => true,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(nonconforming(
            cert,
            format!("public key type {alg} not allowed"),
        ))
    }
}

/// The authorityKeyIdentifier, when present, holds a keyIdentifier and
/// neither authorityCertIssuer nor authorityCertSerialNumber (CA/B BR
/// 7.1.2.1.3, 7.1.2.11.1); a self-signed root's equals its own
/// subjectKeyIdentifier (checked on the anchor only: it costs a signature).
fn check_key_identifiers(cert: &X509Certificate<'_>, role: Role) -> Result<(), Reason> {
    let mut aki = None;
    let mut ski = None;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => aki = Some(a),
            ParsedExtension::SubjectKeyIdentifier(k) => ski = Some(k.0),
            _ => {}
        }
    }
    let Some(aki) = aki else {
        return Ok(());
    };
    let Some(key_id) = &aki.key_identifier else {
        return Err(nonconforming(
            cert,
            "authorityKeyIdentifier without keyIdentifier",
        ));
    };
    if aki.authority_cert_issuer.is_some() || aki.authority_cert_serial.is_some() {
        return Err(nonconforming(
            cert,
            "authorityKeyIdentifier with authorityCertIssuer or authorityCertSerialNumber",
        ));
    }
    if role == Role::Anchor
        && ski.is_some_and(|s| s != key_id.0)
        && self_issued(cert)
        && cert.verify_signature(None).is_ok()
    {
        return Err(nonconforming(
            cert,
            "self-signed root whose authorityKeyIdentifier is not its subjectKeyIdentifier",
        ));
    }
    Ok(())
}

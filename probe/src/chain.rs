//! Judging the chain the server sent: minica's verifier (as `minica
//! verify`), and whether an intermediate minica knows was left out.

use minica_ca::inspect::{inspect_bytes, Inspected};
use minica_ca::verify::{self, Purpose, Reason, SubjectName, VerifyRequest};
use rustls::pki_types::CertificateDer;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::diagnosis::{Diagnosis, Finding};
use crate::report::{ChainEntry, Report};
use crate::run::ProbeRequest;

/// Subject and issuer (raw DER and text) of a certificate, when it parses.
fn names(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>, String, String)> {
    let (_, x) = X509Certificate::from_der(der).ok()?;
    Some((
        x.subject().as_raw().to_vec(),
        x.issuer().as_raw().to_vec(),
        x.subject().to_string(),
        x.issuer().to_string(),
    ))
}

/// `missing-intermediate`: a sent certificate whose issuer was not sent,
/// is not a trust anchor, and is known to minica (home or --untrusted).
fn missing_intermediate(chain: &[CertificateDer<'_>], req: &ProbeRequest) -> Option<Finding> {
    let sent: Vec<_> = chain.iter().filter_map(|c| names(c)).collect();
    let subjects = |certs: &[CertificateDer<'_>]| -> Vec<(Vec<u8>, String)> {
        certs
            .iter()
            .filter_map(|c| names(c))
            .map(|(s, _, text, _)| (s, text))
            .collect()
    };
    let anchors = subjects(&req.anchors);
    let known: Vec<_> = subjects(&req.known_intermediates)
        .into_iter()
        .map(|k| (k, "an intermediate of the CA home"))
        .chain(
            subjects(&req.untrusted)
                .into_iter()
                .map(|k| (k, "in --untrusted")),
        )
        .collect();
    for (subject, issuer, subject_text, issuer_text) in &sent {
        if subject == issuer
            || sent.iter().any(|(s, ..)| s == issuer)
            || anchors.iter().any(|(s, _)| s == issuer)
        {
            continue;
        }
        let Some((_, whence)) = known.iter().find(|((s, _), _)| s == issuer) else {
            continue;
        };
        let (detail, fix) = if sent.len() == 1 {
            (
                format!("the server sends only its leaf ({subject_text}), not its issuer {issuer_text} ({whence})"),
                "the server sends only its leaf: serve chain.pem (leaf + intermediate) instead of cert.pem".to_string(),
            )
        } else {
            (
                format!("the server's chain stops at {subject_text}, without its issuer {issuer_text} ({whence})"),
                format!("append the certificate of {issuer_text} to the chain the server sends"),
            )
        };
        return Some(Finding::new(Diagnosis::MissingIntermediate, detail, fix));
    }
    None
}

fn verify_fix(reason: &Reason, name: &str, leaf_sans: &[String]) -> String {
    match reason {
        Reason::NameMismatch { .. } => {
            let sans = if leaf_sans.is_empty() {
                "no name at all (no SAN)".to_string()
            } else {
                leaf_sans.join(", ")
            };
            format!(
                "the certificate is for {sans}: connect with one of those names (--server-name), or serve a certificate for {name} (`minica issue {name}`)"
            )
        }
        Reason::Expired { .. } => format!(
            "renew the certificate (`minica issue {name} --force`) and reload the server"
        ),
        Reason::NotYetValid { .. } => {
            "check the clocks of the server, the CA host and this host (NTP), or wait until notBefore".into()
        }
        Reason::Revoked { .. } => format!(
            "the certificate is revoked: serve a new one (`minica issue {name} --force`)"
        ),
        Reason::Crl(_) => {
            "the CRL cannot be used: publish a fresh one (`minica crl`) and pass it with --crl".into()
        }
        Reason::WrongPurpose { .. } => format!(
            "serve a TLS server certificate (`minica issue {name}` allows server and client)"
        ),
        _ => "the certificate does not chain to the trust bundle: serve one issued by this CA (`minica issue NAME`), or probe with --bundle of the CA that issued it".into(),
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// The verifier's reason, with times in RFC 3339.
fn reason_text(reason: &Reason) -> String {
    match reason {
        Reason::Expired { subject, not_after } => {
            format!("certificate {subject} expired at {}", rfc3339(*not_after))
        }
        Reason::NotYetValid {
            subject,
            not_before,
        } => format!(
            "certificate {subject} is not valid before {}",
            rfc3339(*not_before)
        ),
        other => other.to_string(),
    }
}

/// Runs minica's verifier on the chain as sent (plus --untrusted) and adds
/// the findings about it.
pub(crate) fn judge_chain(
    chain: &[CertificateDer<'static>],
    req: &ProbeRequest,
    name: &str,
    report: &mut Report,
    findings: &mut Vec<Finding>,
) {
    let entries: Vec<ChainEntry> = chain
        .iter()
        .map(
            |c| match inspect_bytes(std::path::Path::new("server certificate"), c) {
                Ok(Inspected::Certificates { certificates }) => certificates
                    .first()
                    .map(ChainEntry::from_info)
                    .unwrap_or_else(ChainEntry::malformed),
                _ => ChainEntry::malformed(),
            },
        )
        .collect();
    let leaf_sans = entries.first().map(|e| e.sans.clone()).unwrap_or_default();
    report.chain = Some(entries);
    let Some((leaf, sent)) = chain.split_first() else {
        report.valid = Some(false);
        findings.push(Finding::new(
            Diagnosis::UnknownAuthority,
            "the server sent an empty Certificate message",
            "configure a certificate on the server",
        ));
        return;
    };
    let mut intermediates: Vec<CertificateDer<'_>> = sent.to_vec();
    intermediates.extend(req.untrusted.iter().cloned());
    let request = VerifyRequest {
        intermediates: &intermediates,
        crls: &req.crls,
        name: Some(SubjectName::Host(name.to_string())),
        purpose: Purpose::Server,
        ..VerifyRequest::new(leaf.as_ref(), &req.anchors, OffsetDateTime::now_utc())
    };
    let outcome = verify::verify(&request);
    report.valid = Some(outcome.is_valid());
    report.chain_verdict = Some(outcome.human());
    let missing = missing_intermediate(chain, req);
    let same_cause =
        missing.is_some() && matches!(outcome.reason, Some(Reason::UnknownIssuer { .. }));
    if let Some(reason) = outcome.reason.as_ref().filter(|_| !same_cause) {
        findings.push(Finding::new(
            Diagnosis::from_verify_code(reason.diagnosis()),
            reason_text(reason),
            verify_fix(reason, name, &leaf_sans),
        ));
    }
    findings.extend(missing);
}

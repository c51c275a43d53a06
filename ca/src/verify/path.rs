//! Path building with rustls-webpki plus our checks on every candidate path.

use std::cell::RefCell;

use rustls_pki_types::{
    CertificateDer, ServerName, SignatureVerificationAlgorithm, TrustAnchor, UnixTime,
};
use time::OffsetDateTime;
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter, KeyUsage, VerifiedPath};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::checks::{self, display_name, Role};
use super::fallback;
use super::names;
use super::outcome::{ChainCert, Reason, VerifyOutcome};
use super::revocation::{self, ParsedCrl};
use super::sigcache::Cached;
use super::{Purpose, SubjectName, VerifyRequest};

/// The signature algorithms we accept (ring; RSA keys of 2048 bits or more),
/// each behind the verified-signature cache.
pub(super) static SIG_ALGS: &[&dyn SignatureVerificationAlgorithm] = &[
    &Cached(webpki::ring::ECDSA_P256_SHA256),
    &Cached(webpki::ring::ECDSA_P256_SHA384),
    &Cached(webpki::ring::ECDSA_P384_SHA256),
    &Cached(webpki::ring::ECDSA_P384_SHA384),
    &Cached(webpki::ring::ED25519),
    &Cached(webpki::ring::RSA_PKCS1_2048_8192_SHA256),
    &Cached(webpki::ring::RSA_PKCS1_2048_8192_SHA384),
    &Cached(webpki::ring::RSA_PKCS1_2048_8192_SHA512),
    &Cached(webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY),
    &Cached(webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY),
    &Cached(webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY),
];

/// EKU policy per purpose; `Any` accepts every EKU (but still needs it to
/// be well-formed).
pub(super) struct PurposeEku(pub(super) Purpose);

impl ExtendedKeyUsageValidator for PurposeEku {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        match self.0 {
            Purpose::Server => KeyUsage::server_auth().validate(iter),
            Purpose::Client => KeyUsage::client_auth().validate(iter),
            Purpose::Any => {
                for id in iter {
                    id?;
                }
                Ok(())
            }
        }
    }
}

fn chain_cert(cert: &X509Certificate<'_>) -> ChainCert {
    ChainCert {
        name: display_name(cert),
        subject: cert.subject().to_string(),
        serial: {
            let s = hex::encode(crate::crl::strip_zeros(cert.raw_serial()));
            if s.is_empty() {
                "00".into()
            } else {
                s
            }
        },
        not_after: cert.validity().not_after.to_datetime(),
    }
}

fn parse(der: &[u8]) -> Option<X509Certificate<'_>> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Some(cert),
        _ => None,
    }
}

/// Everything the per-path hook needs.
struct Context<'r> {
    req: &'r VerifyRequest<'r>,
    anchors: &'r [TrustAnchor<'r>],
    /// DER of `anchors[i]`.
    anchor_ders: &'r [&'r CertificateDer<'r>],
    crls: &'r [ParsedCrl<'r>],
    known_cas: &'r [X509Certificate<'r>],
    /// The reason our checks rejected the last candidate path, and that path.
    rejected: RefCell<Option<(Reason, Vec<ChainCert>)>>,
}

impl Context<'_> {
    /// Our checks on a path rustls-webpki accepted.
    fn check_path(&self, path: &VerifiedPath<'_>) -> Result<(), (Reason, Vec<ChainCert>)> {
        let mut ders: Vec<CertificateDer<'_>> = vec![CertificateDer::from(self.req.leaf)];
        ders.extend(path.intermediate_certificates().map(|c| c.der()));
        let anchor = path.anchor();
        let anchor_der = self
            .anchors
            .iter()
            .position(|a| std::ptr::eq(a, anchor))
            .and_then(|i| self.anchor_ders.get(i))
            .ok_or_else(|| {
                (
                    Reason::Other {
                        detail: "trust anchor not found".into(),
                    },
                    Vec::new(),
                )
            })?;
        ders.push((*anchor_der).clone());
        let mut certs = Vec::with_capacity(ders.len());
        for der in &ders {
            let cert = parse(der.as_ref()).ok_or_else(|| {
                (
                    Reason::Malformed {
                        what: "a certificate of the path cannot be parsed".into(),
                    },
                    Vec::new(),
                )
            })?;
            certs.push(cert);
        }
        let chain: Vec<ChainCert> = certs.iter().map(chain_cert).collect();
        let refs: Vec<&X509Certificate<'_>> = certs.iter().collect();
        self.check_parsed(&refs).map_err(|r| (r, chain))
    }

    fn check_parsed(&self, certs: &[&X509Certificate<'_>]) -> Result<(), Reason> {
        let last = certs.len() - 1;
        // Depth: intermediates between leaf and anchor, self-issued ones not counted.
        if let Some(max) = self.req.max_depth {
            let n = certs[1..last]
                .iter()
                .filter(|c| !checks::self_issued(c))
                .count();
            if n > max {
                return Err(Reason::PathTooLong {
                    intermediates: n,
                    max,
                });
            }
        }
        let at = self.req.at;
        checks::check_validity(certs[last], at)?;
        // A leaf trusted as itself (a self-signed leaf in the bundle) is not
        // held to the CA rules of an anchor.
        let leaf_is_anchor = last == 1 && certs[0].as_raw() == certs[last].as_raw();
        for (i, cert) in certs.iter().enumerate() {
            let role = match i {
                0 => Role::Leaf,
                i if i == last && !leaf_is_anchor => Role::Anchor,
                _ if leaf_is_anchor => continue,
                _ => Role::Intermediate,
            };
            checks::check_profile(cert, role)?;
        }
        if !leaf_is_anchor {
            // rustls-webpki checks neither basicConstraints nor EKU of the anchor.
            let below = certs[1..last]
                .iter()
                .filter(|c| !checks::self_issued(c))
                .count();
            checks::check_anchor(certs[last], below, self.req.purpose)?;
        }
        let email_name = matches!(self.req.name, Some(SubjectName::Email(_)));
        checks::check_leaf(certs[0], self.req.purpose, email_name)?;
        // E-mail name constraints of every CA above the leaf.
        let leaf = certs[0];
        let subject_emails = names::subject_emails(leaf);
        let mut emails: Vec<&str> = names::rfc822_sans(leaf);
        emails.extend(subject_emails.iter().map(String::as_str));
        if !emails.is_empty() {
            for ca in certs[1..].iter() {
                if let Ok(Some(nc)) = ca.name_constraints() {
                    names::check_email_constraints(nc.value, &emails)
                        .map_err(|d| Reason::NameConstraintViolation { detail: Some(d) })?;
                }
            }
        }
        revocation::check(certs, self.crls, self.known_cas, at)
    }
}

pub(super) fn unix_time(at: OffsetDateTime) -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(at.unix_timestamp()).unwrap_or(0),
    ))
}

/// The leaf and, following issuer names, the untrusted certificates and
/// finally an anchor: what the path would be by names alone.
fn name_chain<'a>(
    leaf: &'a X509Certificate<'a>,
    intermediates: &'a [X509Certificate<'a>],
    anchors: &'a [X509Certificate<'a>],
) -> (Vec<&'a X509Certificate<'a>>, Option<String>) {
    let mut chain = vec![leaf];
    let mut cur = leaf;
    loop {
        if let Some(a) = anchors
            .iter()
            .find(|a| a.subject().as_raw() == cur.issuer().as_raw())
        {
            chain.push(a);
            return (chain, None);
        }
        let next = intermediates.iter().find(|c| {
            c.subject().as_raw() == cur.issuer().as_raw()
                && !chain.iter().any(|p| std::ptr::eq(*p, *c))
        });
        match next {
            Some(n) if chain.len() < 10 => {
                chain.push(n);
                cur = n;
            }
            _ => return (chain, Some(cur.issuer().to_string())),
        }
    }
}

pub(super) fn run(req: &VerifyRequest<'_>) -> VerifyOutcome {
    // Certificate times have whole seconds: compare at the floor of `at`
    // (2024-04-01T00:00:00.005Z is still within a notAfter of
    // 2024-04-01T00:00:00Z, and 00:00:00.999 is before a notBefore of 00:00:01).
    let floored = VerifyRequest {
        at: req.at.replace_nanosecond(0).unwrap_or(req.at),
        ..req.clone()
    };
    run_floored(&floored)
}

fn run_floored(req: &VerifyRequest<'_>) -> VerifyOutcome {
    let Some(leaf) = parse(req.leaf) else {
        return VerifyOutcome {
            name: "certificate".into(),
            chain: Vec::new(),
            reason: Some(Reason::Malformed {
                what: "the certificate is not valid DER X.509".into(),
            }),
        };
    };
    let name = display_name(&leaf);
    let leaf_only = vec![chain_cert(&leaf)];
    let fail = |reason: Reason, chain: Vec<ChainCert>| VerifyOutcome {
        name: name.clone(),
        chain,
        reason: Some(reason),
    };

    // Trust anchors: every certificate of the bundle that parses (with both
    // parsers, so that the three lists stay aligned).
    let mut anchors = Vec::with_capacity(req.anchors.len());
    let mut anchor_ders = Vec::with_capacity(req.anchors.len());
    let mut parsed_anchors: Vec<X509Certificate<'_>> = Vec::with_capacity(req.anchors.len());
    for der in req.anchors {
        if let (Ok(a), Some(p)) = (webpki::anchor_from_trusted_cert(der), parse(der.as_ref())) {
            anchors.push(a);
            anchor_ders.push(der);
            parsed_anchors.push(p);
        }
    }
    let parsed_inters: Vec<X509Certificate<'_>> = req
        .intermediates
        .iter()
        .filter_map(|d| parse(d.as_ref()))
        .collect();
    let crls = match revocation::prepare(req.crls) {
        Ok(c) => c,
        Err(r) => return fail(r, leaf_only),
    };
    let known_cas: Vec<X509Certificate<'_>> = if crls.is_empty() {
        Vec::new()
    } else {
        anchor_ders
            .iter()
            .map(|d| d.as_ref())
            .chain(req.intermediates.iter().map(|d| d.as_ref()))
            .filter_map(parse)
            .collect()
    };

    let leaf_der = CertificateDer::from(req.leaf);
    let ee = match EndEntityCert::try_from(&leaf_der) {
        Ok(ee) => ee,
        Err(e) => {
            return fail(
                map_error(&e, req, &leaf, &parsed_inters, &parsed_anchors),
                leaf_only,
            )
        }
    };
    let ctx = Context {
        req,
        anchors: &anchors,
        anchor_ders: &anchor_ders,
        crls: &crls,
        known_cas: &known_cas,
        rejected: RefCell::new(None),
    };
    let hook = |path: &VerifiedPath<'_>| -> Result<(), webpki::Error> {
        ctx.check_path(path).map_err(|rejected| {
            *ctx.rejected.borrow_mut() = Some(rejected);
            webpki::Error::UnknownIssuer
        })
    };
    let result = ee.verify_for_usage(
        SIG_ALGS,
        &anchors,
        req.intermediates,
        unix_time(req.at),
        PurposeEku(req.purpose),
        None,
        Some(&hook),
    );
    let chain = match result {
        Ok(path) => {
            let mut chain = leaf_only.clone();
            chain.extend(path.intermediate_certificates().filter_map(|c| {
                let der = c.der();
                parse(der.as_ref()).map(|p| chain_cert(&p))
            }));
            if let Some(Some(a)) = anchors
                .iter()
                .position(|a| std::ptr::eq(a, path.anchor()))
                .map(|i| parsed_anchors.get(i).map(chain_cert))
            {
                chain.push(a);
            }
            chain
        }
        Err(e) => {
            // A second look where rustls-webpki is stricter than RFC 5280.
            let search = fallback::Search {
                ee: &ee,
                leaf: &leaf,
                inters: &parsed_inters,
                anchors: &parsed_anchors,
                purpose: req.purpose,
                time: unix_time(req.at),
                at: req.at,
            };
            if fallback::applies(&search) {
                let hook = |path: &[&X509Certificate<'_>]| ctx.check_parsed(path);
                if let Some(path) = search.find(&hook) {
                    let chain: Vec<ChainCert> = path.iter().map(|c| chain_cert(c)).collect();
                    if let Err(r) = check_name(&ee, &leaf, req) {
                        return fail(r, chain);
                    }
                    return VerifyOutcome {
                        name,
                        chain,
                        reason: None,
                    };
                }
            }
            let (reason, chain) = match ctx.rejected.into_inner() {
                Some((reason, chain)) => (reason, chain),
                None => {
                    let r = map_error(&e, req, &leaf, &parsed_inters, &parsed_anchors);
                    (r, leaf_only)
                }
            };
            // Probe's order: a chain that reaches no anchor first, then the name.
            let unreachable = matches!(
                reason,
                Reason::UnknownIssuer { .. } | Reason::BadSignature { .. }
            );
            if !unreachable {
                if let Err(r) = check_name(&ee, &leaf, req) {
                    return fail(r, chain);
                }
            }
            return fail(reason, chain);
        }
    };
    if let Err(r) = check_name(&ee, &leaf, req) {
        return fail(r, chain);
    }
    VerifyOutcome {
        name,
        chain,
        reason: None,
    }
}

/// The leaf carries the requested name (SANs only).
fn check_name(
    ee: &EndEntityCert<'_>,
    leaf: &X509Certificate<'_>,
    req: &VerifyRequest<'_>,
) -> Result<(), Reason> {
    let Some(wanted) = &req.name else {
        return Ok(());
    };
    let mismatch = || Reason::NameMismatch {
        expected: wanted.to_string(),
    };
    match wanted {
        SubjectName::Host(host) => {
            let sn = ServerName::try_from(host.as_str()).map_err(|_| mismatch())?;
            ee.verify_is_valid_for_subject_name(&sn)
                .map_err(|_| mismatch())
        }
        SubjectName::Ip(ip) => {
            let sn = ServerName::IpAddress((*ip).into());
            ee.verify_is_valid_for_subject_name(&sn)
                .map_err(|_| mismatch())
        }
        SubjectName::Email(addr) => {
            if names::rfc822_sans(leaf)
                .iter()
                .any(|e| names::email_matches(e, addr))
            {
                Ok(())
            } else {
                Err(mismatch())
            }
        }
    }
}

/// Turns rustls-webpki's error into our reason, naming the certificate
/// (best effort, following issuer names).
fn map_error(
    e: &webpki::Error,
    req: &VerifyRequest<'_>,
    leaf: &X509Certificate<'_>,
    inters: &[X509Certificate<'_>],
    anchors: &[X509Certificate<'_>],
) -> Reason {
    use webpki::Error as E;
    let (chain, missing) = name_chain(leaf, inters, anchors);
    let first_subject = || display_name(leaf);
    match e {
        E::CertExpired { .. } | E::CertNotValidYet { .. } | E::InvalidCertValidity => {
            for c in &chain {
                if let Err(r) = checks::check_validity(c, req.at) {
                    return r;
                }
            }
            Reason::Other {
                detail: e.to_string(),
            }
        }
        E::UnknownIssuer | E::MaximumPathBuildCallsExceeded | E::MaximumSignatureChecksExceeded => {
            match missing {
                Some(issuer) => Reason::UnknownIssuer {
                    subject: chain.last().map_or_else(first_subject, |c| display_name(c)),
                    issuer,
                },
                None => {
                    // Every name was found: something else broke the path.
                    bad_signature(&chain).unwrap_or(Reason::UnknownIssuer {
                        subject: first_subject(),
                        issuer: leaf.issuer().to_string(),
                    })
                }
            }
        }
        E::InvalidSignatureForPublicKey
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_)
        | E::SignatureAlgorithmMismatch => bad_signature(&chain).unwrap_or(Reason::BadSignature {
            subject: first_subject(),
        }),
        E::UnsupportedSignatureAlgorithmContext(_) => Reason::UnsupportedAlgorithm {
            subject: first_subject(),
        },
        E::RequiredEkuNotFoundContext(_) => Reason::WrongPurpose {
            detail: format!(
                "extended key usage lacks {}",
                match req.purpose {
                    Purpose::Server => "serverAuth",
                    Purpose::Client => "clientAuth",
                    Purpose::Any => "a valid purpose",
                }
            ),
        },
        E::EmptyEkuExtension => Reason::Malformed {
            what: "empty extended key usage extension".into(),
        },
        E::CaUsedAsEndEntity => Reason::CaAsLeaf {
            subject: first_subject(),
        },
        E::EndEntityUsedAsCa => Reason::NotACa {
            subject: chain
                .iter()
                .skip(1)
                .find(|c| !c.is_ca())
                .map_or_else(first_subject, |c| display_name(c)),
        },
        E::PathLenConstraintViolated => Reason::PathLenConstraint,
        E::MaximumPathDepthExceeded => Reason::PathTooLong {
            intermediates: 7,
            max: 6,
        },
        E::NameConstraintViolation => Reason::NameConstraintViolation { detail: None },
        E::UnsupportedCriticalExtension => Reason::UnknownCriticalExtension {
            subject: first_subject(),
            oid: None,
        },
        E::CertNotValidForName(_) => Reason::NameMismatch {
            expected: req
                .name
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        },
        E::UnsupportedCertVersion => Reason::NonConforming {
            subject: first_subject(),
            rule: "not an X.509 v3 certificate".into(),
        },
        E::BadDer
        | E::BadDerTime
        | E::TrailingData(_)
        | E::MalformedExtensions
        | E::ExtensionValueInvalid
        | E::MalformedDnsIdentifier
        | E::MalformedNameConstraint
        | E::InvalidNetworkMaskConstraint
        | E::InvalidSerialNumber => Reason::Malformed {
            what: format!("{} ({e})", first_subject()),
        },
        other => Reason::Other {
            detail: other.to_string(),
        },
    }
}

/// The first certificate of the name chain whose signature does not verify
/// with its named issuer's key.
fn bad_signature(chain: &[&X509Certificate<'_>]) -> Option<Reason> {
    chain.windows(2).find_map(|w| {
        let [c, issuer] = w else { return None };
        c.verify_signature(Some(issuer.public_key()))
            .is_err()
            .then(|| Reason::BadSignature {
                subject: display_name(c),
            })
    })
}

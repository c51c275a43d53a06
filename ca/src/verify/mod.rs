//! Certificate path validation (`minica verify`, and `minica probe`'s
//! verdict on a server's chain).
//!
//! # Overview
//! [`verify`] takes DER bytes only (no I/O) and returns a [`VerifyOutcome`]:
//! the chain that was built and, when the certificate is not valid, a typed
//! [`Reason`].
//!
//! # Design
//! rustls-webpki builds and checks the path (signatures, validity,
//! basicConstraints and pathLenConstraint, EKU on every certificate, name
//! constraints on DNS/IP/directory names, unknown critical extensions).
//! Every path it accepts is then put through our own checks, in webpki's
//! `verify_path` hook so that a failing path makes webpki try the next one:
//! the depth limit (`--max-depth`, self-issued intermediates not counted),
//! the trust anchor's own validity and CA-ness, the strict certificate
//! profile (RFC 5280 + CA/B Forum BR, like OpenSSL's `-x509_strict`), leaf
//! key usage for the purpose, e-mail name constraints, and revocation
//! against every given CRL (signature, issuer, cRLSign, CRL Number,
//! freshness). A chain is valid only when it passes both. See
//! `docs/verify.md` for the full list and the known gaps.
//!
//! # Getting started
//! ```no_run
//! use minica_ca::verify::{verify, Purpose, SubjectName, VerifyRequest};
//! # let (leaf, bundle): (Vec<u8>, Vec<rustls_pki_types::CertificateDer<'static>>) = (vec![], vec![]);
//! let req = VerifyRequest {
//!     name: Some(SubjectName::Host("svc-a.internal".into())),
//!     ..VerifyRequest::new(&leaf, &bundle, time::OffsetDateTime::now_utc())
//! };
//! let outcome = verify(&req);
//! println!("{}", outcome.human());
//! ```

mod checks;
mod fallback;
mod names;
mod outcome;
mod path;
mod revocation;
mod sigcache;

use std::net::IpAddr;

use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use time::OffsetDateTime;

pub use outcome::{ChainCert, CrlProblem, Reason, VerifyOutcome};

/// What the certificate will be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Purpose {
    /// A TLS server: EKU serverAuth when the certificate has an EKU; key
    /// usage digitalSignature, keyEncipherment or keyAgreement when it has a
    /// key usage.
    #[default]
    Server,
    /// A TLS client: EKU clientAuth when present; key usage
    /// digitalSignature or keyAgreement when present.
    Client,
    /// Any purpose: no EKU or key usage requirement on the leaf.
    Any,
}

/// The name the leaf must carry (never matched against the CN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectName {
    /// A DNS name (`--host`), matched against dNSName SANs (wildcards in
    /// the left-most label). An IP address given here is matched as
    /// [`SubjectName::Ip`].
    Host(String),
    /// An IP address (`--ip`), matched against iPAddress SANs.
    Ip(IpAddr),
    /// An e-mail address (`--email`), matched against rfc822Name SANs
    /// (local part exactly, domain case-insensitively).
    Email(String),
}

impl std::fmt::Display for SubjectName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Host(h) => f.write_str(h),
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Email(e) => f.write_str(e),
        }
    }
}

/// Everything [`verify`] needs; all certificates and CRLs are DER.
#[derive(Debug, Clone)]
pub struct VerifyRequest<'a> {
    /// The certificate to verify.
    pub leaf: &'a [u8],
    /// Untrusted certificates that may be intermediates (the CERT file's
    /// extra certificates and `--untrusted`).
    pub intermediates: &'a [CertificateDer<'a>],
    /// Trust anchors: every certificate here is trusted as is, also one that
    /// is not self-signed.
    pub anchors: &'a [CertificateDer<'a>],
    /// CRLs to check every certificate of the chain against.
    pub crls: &'a [CertificateRevocationListDer<'a>],
    /// The name to match, if any.
    pub name: Option<SubjectName>,
    /// The purpose.
    pub purpose: Purpose,
    /// The verification time (`--at`, default now).
    pub at: OffsetDateTime,
    /// The most intermediates allowed between leaf and anchor, self-issued
    /// ones not counted; `Some(0)` means the anchor signed the leaf. `None`:
    /// no limit of ours (rustls-webpki still stops at 6).
    pub max_depth: Option<usize>,
}

impl<'a> VerifyRequest<'a> {
    /// A request for `leaf` against `anchors` at `at`, purpose server, no
    /// name, no intermediates, no CRLs, no depth limit.
    pub fn new(leaf: &'a [u8], anchors: &'a [CertificateDer<'a>], at: OffsetDateTime) -> Self {
        Self {
            leaf,
            intermediates: &[],
            anchors,
            crls: &[],
            name: None,
            purpose: Purpose::Server,
            at,
            max_depth: None,
        }
    }
}

/// Validates `req.leaf` per RFC 5280 and the strict profile; never panics
/// and does no I/O.
pub fn verify(req: &VerifyRequest<'_>) -> VerifyOutcome {
    path::run(req)
}

#[cfg(test)]
mod tests;

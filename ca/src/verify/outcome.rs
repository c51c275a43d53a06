//! The verdict of [`super::verify`]: the chain that was built and, when the
//! certificate is not valid, a typed reason.

use std::fmt;

use serde::Serialize;
use time::OffsetDateTime;

use crate::crl::RevocationReason;

/// One certificate of the chain, for output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainCert {
    /// Short display name: the subject CN, else the first SAN, else the
    /// whole subject.
    pub name: String,
    /// Subject, RFC 4514 text.
    pub subject: String,
    /// Serial number, lowercase hex without leading zeros.
    pub serial: String,
    /// notAfter, RFC 3339.
    #[serde(serialize_with = "crate::crl::ser_rfc3339")]
    pub not_after: OffsetDateTime,
}

/// Why a CRL could not be used; any of these makes the verdict invalid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "problem", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum CrlProblem {
    /// The CRL is not a valid CRL (bad DER, unknown critical extension,
    /// duplicate serials, ...).
    #[error("CRL #{index} is malformed: {detail}")]
    Malformed {
        /// Position among the given CRLs (0-based).
        index: usize,
        /// What is wrong.
        detail: String,
    },
    /// The CRL names the certificate's issuer but its signature does not
    /// verify with the issuer's key.
    #[error("CRL of {issuer} has a bad signature")]
    BadSignature {
        /// CRL issuer.
        issuer: String,
    },
    /// nextUpdate is before the verification time.
    #[error("CRL of {issuer} is stale (nextUpdate {})", fmt_time(*next_update))]
    Stale {
        /// CRL issuer.
        issuer: String,
        /// nextUpdate.
        #[serde(serialize_with = "crate::crl::ser_rfc3339")]
        next_update: OffsetDateTime,
    },
    /// thisUpdate is after the verification time.
    #[error("CRL of {issuer} is not yet valid (thisUpdate {})", fmt_time(*this_update))]
    NotYetValid {
        /// CRL issuer.
        issuer: String,
        /// thisUpdate.
        #[serde(serialize_with = "crate::crl::ser_rfc3339")]
        this_update: OffsetDateTime,
    },
    /// The CRL has no nextUpdate.
    #[error("CRL of {issuer} has no nextUpdate")]
    NoNextUpdate {
        /// CRL issuer.
        issuer: String,
    },
    /// The CRL has no CRL Number, or a critical one.
    #[error("CRL of {issuer} has no valid CRL Number")]
    BadNumber {
        /// CRL issuer.
        issuer: String,
    },
    /// CRLs were given, but none applies to this certificate (its status is
    /// unknown).
    #[error("no CRL of {issuer} covers {subject}")]
    NoCrl {
        /// The certificate.
        subject: String,
        /// Its issuer, whose CRL is missing.
        issuer: String,
    },
    /// The issuer's key usage does not allow signing CRLs.
    #[error("the issuer {issuer} lacks the cRLSign key usage")]
    IssuerNotCrlSigner {
        /// CRL issuer.
        issuer: String,
    },
}

/// Why a certificate is not valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Reason {
    /// A certificate of the chain is past notAfter.
    #[error("certificate {subject} expired at {}", fmt_time(*not_after))]
    Expired {
        /// Which certificate.
        subject: String,
        /// Its notAfter.
        #[serde(serialize_with = "crate::crl::ser_rfc3339")]
        not_after: OffsetDateTime,
    },
    /// A certificate of the chain is before notBefore.
    #[error("certificate {subject} is not valid before {}", fmt_time(*not_before))]
    NotYetValid {
        /// Which certificate.
        subject: String,
        /// Its notBefore.
        #[serde(serialize_with = "crate::crl::ser_rfc3339")]
        not_before: OffsetDateTime,
    },
    /// No chain to a trust anchor: the issuer named here is neither a trust
    /// anchor nor among the untrusted certificates (a missing intermediate,
    /// or another CA).
    #[error("unknown issuer {issuer}: no path to a trust anchor")]
    UnknownIssuer {
        /// Subject of the last certificate that could be chained.
        subject: String,
        /// The issuer name that was not found.
        issuer: String,
    },
    /// A signature in the chain does not verify.
    #[error("bad signature on {subject}")]
    BadSignature {
        /// Which certificate (best effort).
        subject: String,
    },
    /// The leaf does not carry the name asked for.
    #[error("certificate is not valid for {expected}")]
    NameMismatch {
        /// The name asked for.
        expected: String,
    },
    /// Key usage or extended key usage does not allow the purpose.
    #[error("certificate not allowed for this purpose: {detail}")]
    WrongPurpose {
        /// What is missing.
        detail: String,
    },
    /// A certificate of the chain is on a CRL.
    #[error("certificate revoked (serial {serial}, {reason}, {date})", reason = reason.map_or("unspecified", RevocationReason::name), date = fmt_time(*date))]
    Revoked {
        /// Which certificate.
        subject: String,
        /// Its serial, hex.
        serial: String,
        /// The reason code, `None` when the entry has none.
        reason: Option<RevocationReason>,
        /// Revocation date.
        #[serde(serialize_with = "crate::crl::ser_rfc3339")]
        date: OffsetDateTime,
    },
    /// A CRL that applies to the chain could not be used.
    #[error("{0}")]
    Crl(#[from] CrlProblem),
    /// More intermediates than `--max-depth` (or the built-in limit).
    #[error("path too long: {intermediates} intermediate(s), at most {max} allowed")]
    PathTooLong {
        /// Non-self-issued intermediates in the path.
        intermediates: usize,
        /// The limit.
        max: usize,
    },
    /// A CA's pathLenConstraint is exceeded.
    #[error("path length constraint exceeded")]
    PathLenConstraint,
    /// A name is outside a CA's name constraints.
    #[error("name constraint violation{}", detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    NameConstraintViolation {
        /// Which name, when known.
        detail: Option<String>,
    },
    /// A certificate has a critical extension that is not understood.
    #[error("certificate {subject} has an unknown critical extension{}", oid.as_ref().map(|o| format!(" {o}")).unwrap_or_default())]
    UnknownCriticalExtension {
        /// Which certificate (best effort).
        subject: String,
        /// The extension, when known.
        oid: Option<String>,
    },
    /// A certificate that issues another is not a CA.
    #[error("certificate {subject} is not a CA but issued another certificate")]
    NotACa {
        /// Which certificate.
        subject: String,
    },
    /// The leaf is a CA certificate.
    #[error("certificate {subject} is a CA certificate, not an end-entity one")]
    CaAsLeaf {
        /// Which certificate.
        subject: String,
    },
    /// A certificate breaks the strict profile (RFC 5280 / CA/B Forum).
    #[error("certificate {subject} is not conforming: {rule}")]
    NonConforming {
        /// Which certificate.
        subject: String,
        /// The rule broken.
        rule: String,
    },
    /// A certificate is not valid DER X.509 or has a malformed extension.
    #[error("malformed certificate: {what}")]
    Malformed {
        /// What is malformed.
        what: String,
    },
    /// A signature algorithm or key type that is not supported.
    #[error("unsupported signature algorithm on {subject}")]
    UnsupportedAlgorithm {
        /// Which certificate (best effort).
        subject: String,
    },
    /// Anything else rustls-webpki rejected.
    #[error("rejected: {detail}")]
    Other {
        /// rustls-webpki's error.
        detail: String,
    },
}

impl Reason {
    /// A stable kebab-case code (`expired`, `revoked`, ...), as in `--json`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Expired { .. } => "expired",
            Self::NotYetValid { .. } => "not-yet-valid",
            Self::UnknownIssuer { .. } => "unknown-issuer",
            Self::BadSignature { .. } => "bad-signature",
            Self::NameMismatch { .. } => "name-mismatch",
            Self::WrongPurpose { .. } => "wrong-purpose",
            Self::Revoked { .. } => "revoked",
            Self::Crl(_) => "crl",
            Self::PathTooLong { .. } => "path-too-long",
            Self::PathLenConstraint => "path-len-constraint",
            Self::NameConstraintViolation { .. } => "name-constraint-violation",
            Self::UnknownCriticalExtension { .. } => "unknown-critical-extension",
            Self::NotACa { .. } => "not-a-ca",
            Self::CaAsLeaf { .. } => "ca-as-leaf",
            Self::NonConforming { .. } => "non-conforming",
            Self::Malformed { .. } => "malformed",
            Self::UnsupportedAlgorithm { .. } => "unsupported-algorithm",
            Self::Other { .. } => "other",
        }
    }

    /// The `minica probe` diagnosis this reason falls under (#12), one of
    /// `expired`, `not-yet-valid`, `revoked`, `name-mismatch`,
    /// `wrong-purpose`, `unknown-authority`. Probe itself tells
    /// `missing-intermediate` from `unknown-authority` (it knows which
    /// intermediates minica has) using [`Reason::UnknownIssuer`]'s issuer.
    pub fn diagnosis(&self) -> &'static str {
        match self {
            Self::Expired { .. } => "expired",
            Self::NotYetValid { .. } => "not-yet-valid",
            Self::Revoked { .. } | Self::Crl(_) => "revoked",
            Self::NameMismatch { .. } => "name-mismatch",
            Self::WrongPurpose { .. } => "wrong-purpose",
            _ => "unknown-authority",
        }
    }
}

pub(super) fn fmt_time(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// The result of [`super::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyOutcome {
    /// Display name of the leaf (CN, else first SAN, else subject).
    pub name: String,
    /// The chain: leaf first, trust anchor last when one was reached; only
    /// the certificates that could be chained otherwise.
    pub chain: Vec<ChainCert>,
    /// `None` when valid.
    pub reason: Option<Reason>,
}

impl VerifyOutcome {
    /// Whether the certificate is valid.
    pub fn is_valid(&self) -> bool {
        self.reason.is_none()
    }

    /// One line: `OK svc-a: svc-a → minica intermediate → minica root` or
    /// `INVALID svc-a: certificate revoked (serial 5e…, keyCompromise, …)`.
    pub fn human(&self) -> String {
        match &self.reason {
            None => {
                let path: Vec<&str> = self.chain.iter().map(|c| c.name.as_str()).collect();
                format!("OK {}: {}", self.name, path.join(" → "))
            }
            Some(reason) => format!("INVALID {}: {reason}", self.name),
        }
    }

    /// The `--json` document: `{valid, reason, code, detail, chain: [...]}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "valid": self.is_valid(),
            "reason": self.reason.as_ref().map(|r| r.to_string()),
            "code": self.reason.as_ref().map(Reason::code),
            "detail": self.reason,
            "chain": self.chain,
        })
    }
}

impl fmt::Display for VerifyOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.human())
    }
}

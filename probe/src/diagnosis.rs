//! What is wrong, by the contract's list, and which finding wins.

use std::fmt;

/// The one-word diagnosis of a probe (#12). The variants are declared in
/// the contract's order of precedence: when several apply, the first one
/// after [`Diagnosis::Ok`] wins (`Ord` follows this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Diagnosis {
    /// Nothing is wrong.
    Ok,
    /// The server did not send the certificate that issued one it sent, and
    /// that issuer is known to minica (an intermediate of the CA home or a
    /// certificate in `--untrusted`) but is not a trust anchor.
    MissingIntermediate,
    /// The chain does not reach a trust anchor (another CA, a bad
    /// signature, a broken profile).
    UnknownAuthority,
    /// The leaf does not carry the server name.
    NameMismatch,
    /// A certificate of the chain is past its notAfter.
    Expired,
    /// A certificate of the chain is before its notBefore.
    NotYetValid,
    /// A certificate of the chain is on a CRL (or a CRL that applies is
    /// unusable).
    Revoked,
    /// The leaf's EKU or key usage does not allow a TLS server.
    WrongPurpose,
    /// No TLS version or cipher suite in common (or the server refused the
    /// ClientHello).
    VersionOrCipherMismatch,
    /// The server wanted a client certificate and none was given.
    ClientCertificateRequired,
    /// The server refused the client certificate that was given.
    ClientCertificateRejected,
    /// The peer spoke something else than TLS.
    NotTls,
    /// Nothing accepts connections at the address.
    ConnectionRefused,
    /// No answer within `--timeout`.
    Timeout,
}

impl Diagnosis {
    /// Every diagnosis, in order of precedence.
    pub const ALL: [Diagnosis; 14] = [
        Self::Ok,
        Self::MissingIntermediate,
        Self::UnknownAuthority,
        Self::NameMismatch,
        Self::Expired,
        Self::NotYetValid,
        Self::Revoked,
        Self::WrongPurpose,
        Self::VersionOrCipherMismatch,
        Self::ClientCertificateRequired,
        Self::ClientCertificateRejected,
        Self::NotTls,
        Self::ConnectionRefused,
        Self::Timeout,
    ];

    /// The kebab-case code, as in `--json` `diagnosis`.
    pub fn code(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::MissingIntermediate => "missing-intermediate",
            Self::UnknownAuthority => "unknown-authority",
            Self::NameMismatch => "name-mismatch",
            Self::Expired => "expired",
            Self::NotYetValid => "not-yet-valid",
            Self::Revoked => "revoked",
            Self::WrongPurpose => "wrong-purpose",
            Self::VersionOrCipherMismatch => "version-or-cipher-mismatch",
            Self::ClientCertificateRequired => "client-certificate-required",
            Self::ClientCertificateRejected => "client-certificate-rejected",
            Self::NotTls => "not-tls",
            Self::ConnectionRefused => "connection-refused",
            Self::Timeout => "timeout",
        }
    }

    /// The diagnosis for a code of [`minica_ca::verify::Reason::diagnosis`]
    /// (`unknown-authority` for a code it does not know).
    pub(crate) fn from_verify_code(code: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|d| d.code() == code)
            .unwrap_or(Self::UnknownAuthority)
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One problem found, with what it means and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The diagnosis.
    pub diagnosis: Diagnosis,
    /// What was seen, in the words of the protocol.
    pub detail: String,
    /// How to fix it (one line).
    pub fix: String,
}

impl Finding {
    pub(crate) fn new(
        diagnosis: Diagnosis,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            diagnosis,
            detail: detail.into(),
            fix: fix.into(),
        }
    }
}

/// The finding that wins: the first in the contract's order; `None` (ok)
/// when there is none. On a tie the finding found first is kept.
pub fn decisive(findings: &[Finding]) -> Option<&Finding> {
    findings
        .iter()
        .filter(|f| f.diagnosis != Diagnosis::Ok)
        .min_by_key(|f| f.diagnosis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_contract_list_in_its_order() {
        let codes: Vec<&str> = Diagnosis::ALL.iter().map(|d| d.code()).collect();
        assert_eq!(
            codes,
            [
                "ok",
                "missing-intermediate",
                "unknown-authority",
                "name-mismatch",
                "expired",
                "not-yet-valid",
                "revoked",
                "wrong-purpose",
                "version-or-cipher-mismatch",
                "client-certificate-required",
                "client-certificate-rejected",
                "not-tls",
                "connection-refused",
                "timeout",
            ]
        );
        let mut sorted = Diagnosis::ALL;
        sorted.sort();
        assert_eq!(sorted, Diagnosis::ALL);
    }

    #[test]
    fn the_first_in_the_list_wins() {
        let f = |d| Finding::new(d, d.code(), "");
        let findings = [
            f(Diagnosis::ClientCertificateRequired),
            f(Diagnosis::Expired),
            f(Diagnosis::MissingIntermediate),
            f(Diagnosis::UnknownAuthority),
        ];
        assert_eq!(
            decisive(&findings).map(|f| f.diagnosis),
            Some(Diagnosis::MissingIntermediate)
        );
        let findings = [f(Diagnosis::Timeout), f(Diagnosis::VersionOrCipherMismatch)];
        assert_eq!(
            decisive(&findings).map(|f| f.diagnosis),
            Some(Diagnosis::VersionOrCipherMismatch)
        );
        assert_eq!(decisive(&[f(Diagnosis::Ok)]), None);
        assert_eq!(decisive(&[]), None);
    }

    #[test]
    fn verify_codes_map_to_diagnoses() {
        for code in [
            "expired",
            "not-yet-valid",
            "revoked",
            "name-mismatch",
            "wrong-purpose",
        ] {
            assert_eq!(Diagnosis::from_verify_code(code).code(), code);
        }
        assert_eq!(
            Diagnosis::from_verify_code("unknown-authority"),
            Diagnosis::UnknownAuthority
        );
        assert_eq!(
            Diagnosis::from_verify_code("something-new"),
            Diagnosis::UnknownAuthority
        );
    }
}

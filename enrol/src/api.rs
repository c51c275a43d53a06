//! The HTTP API of `minica serve`: paths, limits and JSON bodies. The server
//! (minica-server) and the clients (`minica enroll`, `minica renew
//! --ca-url`, the sidecar's `--renew-from`) share these definitions.

use serde::{Deserialize, Serialize};

/// `POST`: enrol with a one-time token ([`EnrollRequest`] → [`CertResponse`]).
pub const ENROLL_PATH: &str = "/v1/enroll";
/// `POST`: renew, authenticated by the caller's current leaf over mutual TLS
/// ([`RenewRequest`] → [`CertResponse`]).
pub const RENEW_PATH: &str = "/v1/renew";
/// `GET`: the trust bundle (PEM roots).
pub const BUNDLE_PATH: &str = "/v1/bundle";
/// `GET`: the issuing CA's CRL, DER (`application/pkix-crl`); with
/// `?format=pem`, the CRLs of every level as PEM.
pub const CRL_PATH: &str = "/v1/crl";
/// `GET`: liveness (`ok`).
pub const HEALTH_PATH: &str = "/healthz";
/// `GET` on the admin listener: Prometheus metrics.
pub const METRICS_PATH: &str = "/metrics";
/// The largest request body the server reads; larger ones get 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Body of `POST /v1/enroll`. Its `Debug` hides the token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The one-time token printed by `minica token`.
    pub token: String,
    /// A PKCS#10 CSR, PEM.
    pub csr: String,
}

impl std::fmt::Debug for EnrollRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollRequest")
            .field("token", &"<redacted>")
            .field("csr", &self.csr)
            .finish()
    }
}

/// Body of `POST /v1/renew`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewRequest {
    /// A PKCS#10 CSR, PEM (a new key, or the current one with `--reuse-key`).
    pub csr: String,
}

/// Successful answer of enrol and renew: PEM strings, written by the client
/// as `cert.pem`, `chain.pem` and `ca.pem`, exactly as `minica issue` does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertResponse {
    /// The new leaf.
    pub certificate: String,
    /// The leaf followed by the intermediate(s) up to (not including) the root.
    pub chain: String,
    /// The trust bundle (roots).
    pub bundle: String,
}

/// Body of every error answer (4xx, 5xx).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, for a human.
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_token() {
        let request = EnrollRequest {
            token: "s3cret-token".into(),
            csr: "csr".into(),
        };
        assert!(!format!("{request:?}").contains("s3cret"));
    }
}

//! Who a certificate says its holder is, and rules that accept or refuse it.
//!
//! minica puts `spiffe://<trust-domain>/<name>` in every leaf as a URI SAN,
//! beside the DNS or IP names. A sidecar's `--allow` rule names one identity:
//! - `spiffe://td/svc-b`: this exact URI SAN;
//! - `spiffe://td/ns/*`: any URI SAN under `spiffe://td/ns/` (`spiffe://td/*`:
//!   the whole trust domain);
//! - `dns:svc-b`: this DNS SAN (compared case-insensitively).
//!
//! The subject CN is never used to decide: only SANs count.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::Error;

/// A SPIFFE ID: `spiffe://<trust domain>/<path>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpiffeId {
    trust_domain: String,
    path: String,
}

impl SpiffeId {
    /// Builds the ID for `name` in `trust_domain`.
    pub fn new(trust_domain: &str, name: &str) -> Result<Self, Error> {
        format!("spiffe://{trust_domain}/{name}").parse()
    }

    /// The trust domain, e.g. `minica.internal`.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The path without its leading `/`, e.g. `svc-a`.
    pub fn path(&self) -> &str {
        &self.path
    }
}

fn bad_identity(input: &str, reason: &'static str) -> Error {
    Error::Identity {
        input: input.to_string(),
        reason,
    }
}

/// Checks a trust domain: lowercase letters, digits, `-`, `.`, `_`.
pub fn validate_trust_domain(td: &str) -> Result<(), Error> {
    if td.is_empty() || td.len() > 255 {
        return Err(bad_identity(td, "trust domain must be 1 to 255 characters"));
    }
    if !td
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err(bad_identity(
            td,
            "trust domain may hold only lowercase letters, digits, '-', '.' and '_'",
        ));
    }
    Ok(())
}

impl FromStr for SpiffeId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let rest = s
            .strip_prefix("spiffe://")
            .ok_or_else(|| bad_identity(s, "a SPIFFE ID starts with spiffe://"))?;
        let (td, path) = rest
            .split_once('/')
            .ok_or_else(|| bad_identity(s, "a SPIFFE ID needs a path after the trust domain"))?;
        validate_trust_domain(td)?;
        let segments_ok = path.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        });
        if !segments_ok {
            return Err(bad_identity(
                s,
                "each path segment must be non-empty and hold only letters, digits, '-', '.' and '_'",
            ));
        }
        Ok(SpiffeId {
            trust_domain: td.to_string(),
            path: path.to_string(),
        })
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spiffe://{}/{}", self.trust_domain, self.path)
    }
}

/// The names a certificate carries, read from its SANs (and its CN, which is
/// kept for display only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerIdentity {
    /// URI SANs, in certificate order (SPIFFE IDs among them).
    pub uris: Vec<String>,
    /// DNS SANs, in certificate order.
    pub dns_names: Vec<String>,
    /// IP SANs, in certificate order.
    pub ips: Vec<IpAddr>,
    /// The subject common name, if any. Never used to authorise.
    pub common_name: Option<String>,
    /// The subject as an RFC 4514 string.
    pub subject: String,
}

impl PeerIdentity {
    /// Reads the identity of a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|e| Error::Certificate(e.to_string()))?;
        Self::from_x509(&cert)
    }

    /// Reads the identity of a parsed certificate.
    pub fn from_x509(cert: &X509Certificate<'_>) -> Result<Self, Error> {
        let mut id = PeerIdentity {
            subject: cert.subject().to_string(),
            common_name: cert
                .subject()
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .map(str::to_string),
            ..Default::default()
        };
        let san = cert
            .subject_alternative_name()
            .map_err(|e| Error::Certificate(e.to_string()))?;
        for name in san.iter().flat_map(|ext| ext.value.general_names.iter()) {
            match name {
                GeneralName::URI(uri) => id.uris.push((*uri).to_string()),
                GeneralName::DNSName(dns) => id.dns_names.push((*dns).to_string()),
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        id.ips.push(ip);
                    }
                }
                _ => {}
            }
        }
        Ok(id)
    }

    /// The first SPIFFE ID among the URI SANs.
    pub fn spiffe_id(&self) -> Option<&str> {
        self.uris
            .iter()
            .map(String::as_str)
            .find(|u| u.starts_with("spiffe://"))
    }

    /// One name to show in logs: the SPIFFE ID, else the first DNS or IP
    /// SAN, else the subject.
    pub fn display_name(&self) -> String {
        self.spiffe_id()
            .map(str::to_string)
            .or_else(|| self.dns_names.first().map(|d| format!("dns:{d}")))
            .or_else(|| self.ips.first().map(|ip| format!("ip:{ip}")))
            .unwrap_or_else(|| self.subject.clone())
    }
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// One `--allow` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowRule {
    /// Exactly this URI SAN.
    Exact(String),
    /// Any URI SAN that starts with this prefix (which ends in `/`).
    Prefix(String),
    /// This DNS SAN (lowercase).
    Dns(String),
}

impl AllowRule {
    /// True when the peer carries the identity this rule names.
    pub fn matches(&self, peer: &PeerIdentity) -> bool {
        match self {
            AllowRule::Exact(uri) => peer.uris.iter().any(|u| u == uri),
            AllowRule::Prefix(prefix) => peer
                .uris
                .iter()
                .any(|u| u.len() > prefix.len() && u.starts_with(prefix.as_str())),
            AllowRule::Dns(name) => peer.dns_names.iter().any(|d| d.eq_ignore_ascii_case(name)),
        }
    }
}

/// True when `rules` is empty (everyone allowed) or any rule matches.
pub fn is_allowed(rules: &[AllowRule], peer: &PeerIdentity) -> bool {
    rules.is_empty() || rules.iter().any(|r| r.matches(peer))
}

impl FromStr for AllowRule {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        if let Some(name) = s.strip_prefix("dns:") {
            let ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'*'));
            return if ok {
                Ok(AllowRule::Dns(name.to_ascii_lowercase()))
            } else {
                Err(bad_identity(s, "dns: must be followed by a DNS name"))
            };
        }
        if let Some(prefix) = s.strip_suffix("/*") {
            // `spiffe://td/*`: the whole trust domain.
            if let Some(td) = prefix
                .strip_prefix("spiffe://")
                .filter(|td| !td.contains('/'))
            {
                validate_trust_domain(td)?;
                return Ok(AllowRule::Prefix(format!("spiffe://{td}/")));
            }
            // Validate the prefix as an ID of its own, then keep its slash.
            let id: SpiffeId = prefix.parse()?;
            return Ok(AllowRule::Prefix(format!("{id}/")));
        }
        if s.contains('*') {
            return Err(bad_identity(
                s,
                "a wildcard is allowed only as a last path segment: spiffe://td/ns/*",
            ));
        }
        let id: SpiffeId = s.parse().map_err(|_| {
            bad_identity(
                s,
                "expected spiffe://TD/PATH, spiffe://TD/PREFIX/* or dns:NAME",
            )
        })?;
        Ok(AllowRule::Exact(id.to_string()))
    }
}

impl fmt::Display for AllowRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllowRule::Exact(uri) => f.write_str(uri),
            AllowRule::Prefix(prefix) => write!(f, "{prefix}*"),
            AllowRule::Dns(name) => write!(f, "dns:{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uris: &[&str], dns: &[&str]) -> PeerIdentity {
        PeerIdentity {
            uris: uris.iter().map(|s| s.to_string()).collect(),
            dns_names: dns.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn rules_match_exact_prefix_and_dns() {
        let exact: AllowRule = "spiffe://minica.internal/svc-b".parse().unwrap();
        let prefix: AllowRule = "spiffe://minica.internal/ns/*".parse().unwrap();
        let dns: AllowRule = "dns:SVC-B".parse().unwrap();
        let b = peer(&["spiffe://minica.internal/svc-b"], &["svc-b"]);
        let nsx = peer(&["spiffe://minica.internal/ns/x"], &[]);
        let other = peer(
            &[
                "spiffe://minica.internal/svc-bb",
                "spiffe://minica.internal/ns",
            ],
            &["svc-bb"],
        );
        assert!(exact.matches(&b) && !exact.matches(&other));
        assert!(prefix.matches(&nsx) && !prefix.matches(&b) && !prefix.matches(&other));
        assert!(dns.matches(&b) && !dns.matches(&other));
        assert!(is_allowed(&[], &other));
        assert!(!is_allowed(&[exact.clone(), dns], &other));
        assert_eq!(prefix.to_string(), "spiffe://minica.internal/ns/*");
        let domain: AllowRule = "spiffe://minica.internal/*".parse().unwrap();
        assert!(domain.matches(&b) && domain.matches(&nsx));
        assert!(!domain.matches(&peer(&["spiffe://other.internal/svc-b"], &[])));
    }

    #[test]
    fn rejects_malformed_rules() {
        for bad in [
            "svc-b",
            "spiffe://",
            "spiffe://td",
            "spiffe://TD/x",
            "spiffe://td/a/../b",
            "spiffe://td/a*",
            "dns:",
            "dns:a b",
            "spiffe://td//x",
        ] {
            assert!(
                bad.parse::<AllowRule>().is_err(),
                "{bad} should be rejected"
            );
        }
    }

    #[test]
    fn reads_sans_from_a_certificate() {
        let mut params =
            rcgen::CertificateParams::new(vec!["svc-a".into(), "127.0.0.1".into()]).unwrap();
        params.subject_alt_names.push(rcgen::SanType::URI(
            "spiffe://minica.internal/svc-a".try_into().unwrap(),
        ));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "svc-a");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let id = PeerIdentity::from_der(cert.der()).unwrap();
        assert_eq!(id.uris, vec!["spiffe://minica.internal/svc-a"]);
        assert_eq!(id.dns_names, vec!["svc-a"]);
        assert_eq!(id.ips, vec!["127.0.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(id.common_name.as_deref(), Some("svc-a"));
        assert_eq!(id.display_name(), "spiffe://minica.internal/svc-a");
    }
}

//! The result of a probe: `--json` (exactly the contract's fields) and the
//! human report.

use std::fmt::Write as _;

use minica_ca::inspect::CertInfo;
use serde::Serialize;

use crate::diagnosis::Diagnosis;

/// One certificate as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainEntry {
    /// Subject, RFC 4514 style.
    pub subject: String,
    /// Issuer.
    pub issuer: String,
    /// Serial, lowercase hex.
    pub serial: String,
    /// notBefore, RFC 3339.
    pub not_before: String,
    /// notAfter, RFC 3339.
    pub not_after: String,
    /// SANs as `DNS:…`, `IP:…`, `URI:…`, `email:…`.
    pub sans: Vec<String>,
}

impl ChainEntry {
    pub(crate) fn from_info(info: &CertInfo) -> Self {
        let s = &info.sans;
        let sans = (s.dns.iter().map(|n| format!("DNS:{n}")))
            .chain(s.ip.iter().map(|n| format!("IP:{n}")))
            .chain(s.uri.iter().map(|n| format!("URI:{n}")))
            .chain(s.email.iter().map(|n| format!("email:{n}")))
            .chain(s.other.iter().cloned())
            .collect();
        ChainEntry {
            subject: info.subject.clone(),
            issuer: info.issuer.clone(),
            serial: info.serial.clone(),
            not_before: info.not_before.clone(),
            not_after: info.not_after.clone(),
            sans,
        }
    }

    /// An entry for bytes that are not a certificate.
    pub(crate) fn malformed() -> Self {
        ChainEntry {
            subject: "(malformed certificate)".into(),
            issuer: String::new(),
            serial: String::new(),
            not_before: String::new(),
            not_after: String::new(),
            sans: Vec::new(),
        }
    }
}

/// Everything a probe found. A field that does not apply is `None`
/// (`null` in JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// `HOST:PORT` as given.
    pub target: String,
    /// The name the certificate must carry (and the SNI, unless an IP).
    pub server_name: String,
    /// `TLSv1.3` or `TLSv1.2`, once the server chose one.
    pub tls_version: Option<String>,
    /// IANA name, e.g. `TLS_AES_256_GCM_SHA384`.
    pub cipher_suite: Option<String>,
    /// Key-exchange group, e.g. `X25519`.
    pub key_exchange: Option<String>,
    /// Whether the session has forward secrecy (ephemeral key exchange).
    pub forward_secrecy: Option<bool>,
    /// The protocol the server chose by ALPN (`None`: none, or no
    /// handshake).
    pub alpn: Option<String>,
    /// Whether the server sent a CertificateRequest.
    pub client_cert_requested: Option<bool>,
    /// The CA names of the CertificateRequest (RFC 4514), when requested.
    pub acceptable_client_cas: Option<Vec<String>>,
    /// Whether a second connection resumed the session.
    pub resumption: Option<bool>,
    /// Handshake time in milliseconds (ClientHello to Finished).
    pub handshake_ms: Option<f64>,
    /// The MySQL server version (`--starttls mysql`).
    pub mysql_server_version: Option<String>,
    /// The certificates the server sent, in order.
    pub chain: Option<Vec<ChainEntry>>,
    /// minica's verdict on the chain as sent (plus `--untrusted`).
    pub valid: Option<bool>,
    /// The decisive diagnosis.
    pub diagnosis: Diagnosis,
    /// What was seen (`None` when ok).
    pub detail: Option<String>,
    /// How to fix it (`None` when ok).
    pub fix: Option<String>,
    /// `minica verify`'s one-line verdict on the chain (human report only).
    pub chain_verdict: Option<String>,
    /// The other problems found, outranked by the diagnosis (human report
    /// only, as `also:` lines).
    pub also: Vec<String>,
}

impl Report {
    /// An empty report for `target` (nothing known yet, diagnosis ok).
    pub(crate) fn new(target: &str, server_name: &str) -> Self {
        Report {
            target: target.to_string(),
            server_name: server_name.to_string(),
            tls_version: None,
            cipher_suite: None,
            key_exchange: None,
            forward_secrecy: None,
            alpn: None,
            client_cert_requested: None,
            acceptable_client_cas: None,
            resumption: None,
            handshake_ms: None,
            mysql_server_version: None,
            chain: None,
            valid: None,
            diagnosis: Diagnosis::Ok,
            detail: None,
            fix: None,
            chain_verdict: None,
            also: Vec::new(),
        }
    }

    /// Whether nothing is wrong (exit 0).
    pub fn is_ok(&self) -> bool {
        self.diagnosis == Diagnosis::Ok
    }

    /// The `--json` document: exactly the contract's fields.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "target": self.target,
            "server_name": self.server_name,
            "tls_version": self.tls_version,
            "cipher_suite": self.cipher_suite,
            "key_exchange": self.key_exchange,
            "forward_secrecy": self.forward_secrecy,
            "alpn": self.alpn,
            "client_cert_requested": self.client_cert_requested,
            "acceptable_client_cas": self.acceptable_client_cas,
            "resumption": self.resumption,
            "handshake_ms": self.handshake_ms,
            "mysql_server_version": self.mysql_server_version,
            "chain": self.chain,
            "valid": self.valid,
            "diagnosis": self.diagnosis.code(),
            "detail": self.detail,
            "fix": self.fix,
        })
    }

    /// The human report: what happened in the words of the protocol, then
    /// one `verdict:` line and, when something is wrong, one `fix:` line.
    pub fn human(&self) -> String {
        let mut out = String::new();
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        let _ = writeln!(
            out,
            "target:           {} (server name {})",
            self.target, self.server_name
        );
        if let Some(v) = &self.mysql_server_version {
            let _ = writeln!(out, "mysql:            server {v}, SSLRequest sent");
        }
        if let Some(version) = &self.tls_version {
            let mut line = version.clone();
            if let Some(suite) = &self.cipher_suite {
                let _ = write!(line, ", {suite}");
            }
            if let Some(group) = &self.key_exchange {
                let _ = write!(line, ", key exchange {group}");
            }
            let _ = writeln!(out, "negotiated:       {line}");
            if let Some(fs) = self.forward_secrecy {
                let _ = writeln!(out, "forward secrecy:  {}", yes_no(fs));
            }
            let _ = writeln!(
                out,
                "ALPN:             {}",
                self.alpn.as_deref().unwrap_or("none")
            );
        }
        if let Some(ms) = self.handshake_ms {
            let _ = writeln!(out, "handshake:        {ms:.1} ms");
        }
        match (self.client_cert_requested, &self.acceptable_client_cas) {
            (Some(true), Some(cas)) if !cas.is_empty() => {
                let _ = writeln!(
                    out,
                    "client auth:      CertificateRequest, acceptable CAs: {}",
                    cas.join("; ")
                );
            }
            (Some(true), _) => {
                let _ = writeln!(out, "client auth:      CertificateRequest (any CA)");
            }
            (Some(false), _) => {
                let _ = writeln!(out, "client auth:      not requested");
            }
            (None, _) => {}
        }
        if let Some(chain) = &self.chain {
            let _ = writeln!(out, "certificates sent by the server: {}", chain.len());
            for (i, c) in chain.iter().enumerate() {
                let _ = writeln!(out, "  {i} subject:  {}", c.subject);
                let _ = writeln!(out, "    issuer:   {}", c.issuer);
                let _ = writeln!(out, "    serial:   {}", c.serial);
                let _ = writeln!(out, "    validity: {} → {}", c.not_before, c.not_after);
                if !c.sans.is_empty() {
                    let _ = writeln!(out, "    SANs:     {}", c.sans.join(", "));
                }
            }
        }
        if let Some(v) = &self.chain_verdict {
            let _ = writeln!(out, "chain:            {v}");
        }
        if let Some(r) = self.resumption {
            let _ = writeln!(out, "resumption:       {}", yes_no(r));
        }
        for other in &self.also {
            let _ = writeln!(out, "also: {other}");
        }
        match &self.detail {
            Some(detail) => {
                let _ = writeln!(out, "verdict: {}: {detail}", self.diagnosis);
            }
            None => {
                let _ = writeln!(out, "verdict: {}", self.diagnosis);
            }
        }
        if let Some(fix) = &self.fix {
            let _ = writeln!(out, "fix: {fix}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_exactly_the_contract_fields_with_nulls() {
        let mut r = Report::new("db:3306", "db");
        r.diagnosis = Diagnosis::ConnectionRefused;
        r.detail = Some("refused".into());
        r.fix = Some("start it".into());
        let json = r.to_json();
        let obj = json.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut want = vec![
            "target",
            "server_name",
            "tls_version",
            "cipher_suite",
            "key_exchange",
            "forward_secrecy",
            "alpn",
            "client_cert_requested",
            "acceptable_client_cas",
            "resumption",
            "handshake_ms",
            "mysql_server_version",
            "chain",
            "valid",
            "diagnosis",
            "detail",
            "fix",
        ];
        want.sort_unstable();
        assert_eq!(keys, want);
        assert_eq!(json["diagnosis"], "connection-refused");
        assert!(json["tls_version"].is_null());
        assert!(json["chain"].is_null());
        assert!(json["valid"].is_null());
    }

    #[test]
    fn human_report_ends_with_the_verdict_and_the_fix() {
        let mut r = Report::new("h:443", "h");
        r.tls_version = Some("TLSv1.3".into());
        r.chain = Some(vec![ChainEntry {
            subject: "CN=h".into(),
            issuer: "CN=i".into(),
            serial: "1f".into(),
            not_before: "2026-01-01T00:00:00Z".into(),
            not_after: "2026-04-01T00:00:00Z".into(),
            sans: vec!["DNS:h".into()],
        }]);
        r.diagnosis = Diagnosis::MissingIntermediate;
        r.detail = Some("the server sends only its leaf".into());
        r.fix = Some("serve chain.pem instead of cert.pem".into());
        let text = r.human();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[lines.len() - 2],
            "verdict: missing-intermediate: the server sends only its leaf"
        );
        assert_eq!(
            lines[lines.len() - 1],
            "fix: serve chain.pem instead of cert.pem"
        );
        assert!(text.contains("DNS:h"));
        let ok = Report::new("h:443", "h").human();
        assert!(ok.ends_with("verdict: ok\n"), "{ok}");
        assert!(!ok.contains("fix:"));
    }
}

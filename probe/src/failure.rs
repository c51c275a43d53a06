//! Naming what went wrong on the wire: connection, STARTTLS and handshake
//! failures and TLS alerts, with their fix.

use std::io;
use std::time::Duration;

use rustls::AlertDescription;

use crate::diagnosis::{Diagnosis, Finding};
use crate::mysql;
use crate::report::Report;
use crate::run::{Failure, ProbeRequest};
use crate::tls::{self, Stop, Versions};

/// `protocol_version` for `ProtocolVersion`: the alert's name in the RFC.
fn alert_name(a: AlertDescription) -> String {
    let debug = format!("{a:?}");
    let mut out = String::new();
    let mut prev_lower = false;
    for c in debug.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
    }
    out
}

fn timeout_text(t: Duration) -> String {
    format!("{:.1}s", t.as_secs_f64())
}

/// The finding for peer bytes that are not TLS.
fn not_tls(first: &[u8]) -> Finding {
    match mysql::greeting_version(first) {
        Some(version) => Finding::new(
            Diagnosis::NotTls,
            format!("the server sent a MySQL greeting (server version {version}) instead of a TLS ServerHello"),
            "this is a MySQL server, which starts TLS inside its own protocol: probe it with --starttls mysql",
        ),
        None => {
            let shown: String = String::from_utf8_lossy(&first[..first.len().min(24)])
                .chars()
                .map(|c| if c.is_control() { '.' } else { c })
                .collect();
            Finding::new(
                Diagnosis::NotTls,
                format!("the server answered the ClientHello with bytes that are not a TLS record: {shown:?}"),
                "this port does not speak TLS: check the port, or enable TLS on the server",
            )
        }
    }
}

fn client_cert_alert(a: AlertDescription) -> bool {
    matches!(
        a,
        AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::AccessDenied
            | AlertDescription::HandshakeFailure
            | AlertDescription::DecryptError
    )
}

/// The finding for a client certificate the server wanted (`alert`: how
/// it said no, if it did).
fn client_cert_finding(req: &ProbeRequest, report: &Report, how: &str) -> Finding {
    let cas = match &report.acceptable_client_cas {
        Some(cas) if !cas.is_empty() => {
            format!(" (it accepts certificates from: {})", cas.join("; "))
        }
        _ => String::new(),
    };
    if req.identity.is_none() {
        Finding::new(
            Diagnosis::ClientCertificateRequired,
            format!("the server sent a CertificateRequest{cas}, no client certificate was sent, and {how}"),
            "the server wants mutual TLS: pass --identity DIR (or --cert/--key) with a client certificate from a CA it trusts (`minica issue NAME --client`)",
        )
    } else {
        Finding::new(
            Diagnosis::ClientCertificateRejected,
            format!("the server sent a CertificateRequest{cas}; it refused the client certificate we sent: {how}"),
            "present a client certificate the server trusts: issued by a CA in its list, valid now, with clientAuth, not revoked",
        )
    }
}

fn alert_finding(a: AlertDescription, req: &ProbeRequest, report: &Report, after: bool) -> Finding {
    let name = alert_name(a);
    let when = if after {
        "after the handshake"
    } else {
        "during the handshake"
    };
    if a == AlertDescription::CertificateRequired
        || (report.client_cert_requested == Some(true) && client_cert_alert(a))
    {
        return client_cert_finding(req, report, &format!("it sent alert {name} {when}"));
    }
    let offered = match req.versions {
        Versions::Tls13 => "TLS 1.3",
        Versions::Tls13And12 => "TLS 1.3 and 1.2",
    };
    let hint_tls12 = if req.versions == Versions::Tls13 {
        " (probe with --tls12 to see whether it speaks TLS 1.2)"
    } else {
        ""
    };
    match a {
        AlertDescription::ProtocolVersion => Finding::new(
            Diagnosis::VersionOrCipherMismatch,
            format!("the server answered the ClientHello ({offered} offered) with alert protocol_version: no TLS version in common"),
            format!("enable TLS 1.3 on the server{hint_tls12}"),
        ),
        AlertDescription::HandshakeFailure | AlertDescription::InsufficientSecurity => Finding::new(
            Diagnosis::VersionOrCipherMismatch,
            format!("the server answered the ClientHello ({offered} offered) with alert {name}: no cipher suite, group or signature algorithm in common"),
            format!("enable modern suites on the server (TLS 1.3 AES-GCM/ChaCha20-Poly1305, ECDHE with X25519 or P-256){hint_tls12}"),
        ),
        _ => Finding::new(
            Diagnosis::VersionOrCipherMismatch,
            format!("the server ended the handshake with alert {name} {when}"),
            format!("look at the server's log for why it refused the handshake{hint_tls12}"),
        ),
    }
}

pub(crate) fn failure_finding(failure: &Failure, req: &ProbeRequest, report: &Report) -> Finding {
    let t = timeout_text(req.timeout);
    let target = &req.target;
    match failure {
        Failure::Connect(e) if e.kind() == io::ErrorKind::ConnectionRefused => Finding::new(
            Diagnosis::ConnectionRefused,
            format!("TCP connect to {target}: connection refused (nothing listens there)"),
            format!("start the server, or check the host and port ({target})"),
        ),
        Failure::Connect(e) => Finding::new(
            Diagnosis::ConnectionRefused,
            format!("TCP connect to {target} failed: {e}"),
            "check the host, the port, routes and firewalls",
        ),
        Failure::ConnectTimeout => Finding::new(
            Diagnosis::Timeout,
            format!("no answer to the TCP connect within {t}"),
            "check that the host is up and that no firewall drops the port (or raise --timeout)",
        ),
        Failure::GreetingTimeout => Finding::new(
            Diagnosis::Timeout,
            format!("the server accepted the connection but sent no MySQL greeting within {t}"),
            "check that this is a MySQL port; a server that speaks TLS directly needs no --starttls",
        ),
        Failure::NoGreeting => Finding::new(
            Diagnosis::NotTls,
            "the server closed the connection without a MySQL greeting",
            "check that this is a MySQL port and that the server accepts this client (its error log says why)",
        ),
        Failure::NotMysql(bytes) => {
            let tls = tls::looks_like_tls(bytes);
            Finding::new(
                Diagnosis::NotTls,
                "the server's first packet is not a MySQL greeting",
                if tls {
                    "this port does not speak MySQL: drop --starttls mysql if it speaks TLS directly"
                } else {
                    "check that this is a MySQL port"
                },
            )
        }
        Failure::MysqlError { code, message } => Finding::new(
            Diagnosis::ConnectionRefused,
            format!("the MySQL server refused the connection: ERROR {code}: {message}"),
            "fix what the server's error says (e.g. FLUSH HOSTS for a blocked host, max_connections)",
        ),
        Failure::MysqlNoTls { version } => Finding::new(
            Diagnosis::NotTls,
            format!("the MySQL server {version} does not offer TLS (no CLIENT_SSL capability in its greeting)"),
            "enable TLS on the server: ssl_cert, ssl_key and ssl_ca in its configuration (see docs/mysql.md)",
        ),
        Failure::Handshake(stop, first) => {
            if !first.is_empty() && !tls::looks_like_tls(first) {
                return not_tls(first);
            }
            match stop {
                Stop::Timeout if first.is_empty() => Finding::new(
                    Diagnosis::Timeout,
                    format!("the server accepted the TCP connection but did not answer the ClientHello within {t}"),
                    "check that this port serves TLS and that the server is healthy (or raise --timeout)",
                ),
                Stop::Timeout => Finding::new(
                    Diagnosis::Timeout,
                    format!("the TLS handshake did not finish within {t}"),
                    "check the server's health and the network (or raise --timeout)",
                ),
                Stop::Tls(rustls::Error::AlertReceived(a)) => alert_finding(*a, req, report, false),
                Stop::Tls(rustls::Error::InvalidCertificate(e)) => Finding::new(
                    Diagnosis::UnknownAuthority,
                    format!("the server's handshake signature does not verify with its certificate: {e}"),
                    "serve the private key that belongs to the certificate (and a key type minica supports)",
                ),
                Stop::Tls(e @ rustls::Error::InvalidMessage(_)) => Finding::new(
                    Diagnosis::NotTls,
                    format!("the server's answer is not valid TLS: {e}"),
                    "check that this port serves TLS (a proxy or another protocol may answer)",
                ),
                Stop::Tls(e) => Finding::new(
                    Diagnosis::VersionOrCipherMismatch,
                    format!("the handshake failed: {e}"),
                    "compare the server's TLS versions and cipher suites with TLS 1.3 (or 1.2 with ECDHE, with --tls12)",
                ),
                Stop::Eof | Stop::Io(_) if report.client_cert_requested == Some(true) => {
                    client_cert_finding(req, report, "it closed the connection")
                }
                Stop::Eof | Stop::Io(_) => {
                    let how = match stop {
                        Stop::Io(e) => format!("the connection failed ({e})"),
                        _ => "the server closed the connection".to_string(),
                    };
                    if first.is_empty() {
                        Finding::new(
                            Diagnosis::NotTls,
                            format!("{how} without answering the ClientHello"),
                            "check that this port serves TLS (and, behind a proxy, that the backend is up)",
                        )
                    } else {
                        Finding::new(
                            Diagnosis::VersionOrCipherMismatch,
                            format!("{how} in the middle of the handshake"),
                            "look at the server's log for why it dropped the handshake",
                        )
                    }
                }
            }
        }
        Failure::AfterHandshake(stop) => match stop {
            Stop::Tls(rustls::Error::AlertReceived(a)) => alert_finding(*a, req, report, true),
            other => Finding::new(
                Diagnosis::VersionOrCipherMismatch,
                format!("the connection failed after the handshake: {other:?}"),
                "look at the server's log for why it ended the connection",
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::ClientIdentity;

    #[test]
    fn alerts_are_named_as_in_the_rfc() {
        assert_eq!(
            alert_name(AlertDescription::ProtocolVersion),
            "protocol_version"
        );
        assert_eq!(
            alert_name(AlertDescription::CertificateRequired),
            "certificate_required"
        );
        assert_eq!(alert_name(AlertDescription::UnknownCA), "unknown_ca");
    }

    fn identity() -> ClientIdentity {
        ClientIdentity {
            chain: vec![],
            key: rustls::pki_types::PrivateKeyDer::Pkcs8(vec![0].into()).into(),
        }
    }

    #[test]
    fn alerts_are_diagnosed_by_what_the_server_asked() {
        let mut req = ProbeRequest::new("h:1");
        let mut report = Report::new("h:1", "h");
        let f = alert_finding(AlertDescription::ProtocolVersion, &req, &report, false);
        assert_eq!(f.diagnosis, Diagnosis::VersionOrCipherMismatch);
        assert!(f.fix.contains("--tls12"), "{}", f.fix);
        // A handshake_failure without a CertificateRequest: no common suite.
        let f = alert_finding(AlertDescription::HandshakeFailure, &req, &report, false);
        assert_eq!(f.diagnosis, Diagnosis::VersionOrCipherMismatch);
        // certificate_required always means a client certificate was wanted.
        let f = alert_finding(AlertDescription::CertificateRequired, &req, &report, true);
        assert_eq!(f.diagnosis, Diagnosis::ClientCertificateRequired);
        // After a CertificateRequest, TLS 1.2 servers say handshake_failure.
        report.client_cert_requested = Some(true);
        report.acceptable_client_cas = Some(vec!["CN=root".into()]);
        let f = alert_finding(AlertDescription::HandshakeFailure, &req, &report, false);
        assert_eq!(f.diagnosis, Diagnosis::ClientCertificateRequired);
        assert!(f.detail.contains("CN=root"), "{}", f.detail);
        req.identity = Some(identity());
        let f = alert_finding(AlertDescription::UnknownCA, &req, &report, true);
        assert_eq!(f.diagnosis, Diagnosis::ClientCertificateRejected);
        assert!(f.detail.contains("unknown_ca"), "{}", f.detail);
        req.versions = Versions::Tls13And12;
        report.client_cert_requested = Some(false);
        let f = alert_finding(AlertDescription::ProtocolVersion, &req, &report, false);
        assert!(!f.fix.contains("--tls12"), "{}", f.fix);
    }

    #[test]
    fn connection_failures_are_diagnosed() {
        let req = ProbeRequest::new("h:1");
        let report = Report::new("h:1", "h");
        let d = |f: Failure| failure_finding(&f, &req, &report).diagnosis;
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(d(Failure::Connect(refused)), Diagnosis::ConnectionRefused);
        assert_eq!(d(Failure::ConnectTimeout), Diagnosis::Timeout);
        assert_eq!(
            d(Failure::Handshake(Stop::Timeout, vec![])),
            Diagnosis::Timeout
        );
        assert_eq!(d(Failure::Handshake(Stop::Eof, vec![])), Diagnosis::NotTls);
        assert_eq!(
            d(Failure::Handshake(Stop::Timeout, b"SSH-2.0-x".to_vec())),
            Diagnosis::NotTls
        );
        assert_eq!(
            d(Failure::MysqlNoTls {
                version: "8.0".into()
            }),
            Diagnosis::NotTls
        );
        assert_eq!(d(Failure::GreetingTimeout), Diagnosis::Timeout);
    }

    #[test]
    fn a_mysql_greeting_where_tls_was_expected_suggests_starttls() {
        let mut payload = vec![10];
        payload.extend_from_slice(b"10.11.6-MariaDB\0");
        payload.extend_from_slice(&[0; 20]);
        let mut bytes = vec![payload.len() as u8, 0, 0, 0];
        bytes.extend_from_slice(&payload);
        let f = not_tls(&bytes);
        assert_eq!(f.diagnosis, Diagnosis::NotTls);
        assert!(f.fix.contains("--starttls mysql"), "{}", f.fix);
        assert!(f.detail.contains("10.11.6-MariaDB"), "{}", f.detail);
        let f = not_tls(b"HTTP/1.1 400 Bad Request\r\n");
        assert!(!f.fix.contains("--starttls"), "{}", f.fix);
    }
}

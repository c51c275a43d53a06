//! One probe: connect (and STARTTLS), handshake, linger for tickets and
//! alerts, resume, judge the chain with minica's verifier, and name the
//! decisive problem.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, ServerName};
use rustls::{AlertDescription, ClientConfig, ClientConnection, HandshakeKind, ProtocolVersion};
use x509_parser::prelude::{FromDer, X509Name};

use crate::chain::judge_chain;
use crate::diagnosis::{decisive, Diagnosis, Finding};
use crate::failure::failure_finding;
use crate::mysql::{self, Greeting};
use crate::report::Report;
use crate::tls::{self, remaining, ClientIdentity, Observed, Stop, Tap, Versions};
use crate::Error;

/// How long to wait after a TLS 1.3 handshake for the server's session
/// tickets (or for an alert rejecting our client certificate, which TLS 1.3
/// servers send after the client's Finished). Servers send both right after
/// reading the client's Finished, so one second is ample on any LAN and
/// most WANs; it is further bounded by `--timeout`.
pub const TICKET_WAIT: Duration = Duration::from_secs(1);

/// The default `--timeout`: connect plus handshake.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A protocol to speak before TLS on the same connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartTls {
    /// MySQL/MariaDB: read the greeting, send an SSLRequest.
    Mysql,
}

/// What to probe and with what; all certificates and CRLs are DER.
#[derive(Debug)]
pub struct ProbeRequest {
    /// `HOST:PORT` (`[v6]:PORT` for an IPv6 address).
    pub target: String,
    /// The name the certificate must carry; `None`: HOST.
    pub server_name: Option<String>,
    /// Trust anchors (the bundle).
    pub anchors: Vec<CertificateDer<'static>>,
    /// Untrusted intermediates (`--untrusted`): used to build the chain, as
    /// `minica verify` does.
    pub untrusted: Vec<CertificateDer<'static>>,
    /// Intermediates minica knows (the CA home's): used only to tell a
    /// missing intermediate from an unknown authority.
    pub known_intermediates: Vec<CertificateDer<'static>>,
    /// CRLs to check the chain against.
    pub crls: Vec<CertificateRevocationListDer<'static>>,
    /// The client certificate to present when asked.
    pub identity: Option<ClientIdentity>,
    /// STARTTLS protocol, if any.
    pub starttls: Option<StartTls>,
    /// TLS versions to offer.
    pub versions: Versions,
    /// Bound on connect plus handshake.
    pub timeout: Duration,
}

impl ProbeRequest {
    /// A request for `target` with no anchors, TLS 1.3 only and the default
    /// timeout.
    pub fn new(target: impl Into<String>) -> Self {
        ProbeRequest {
            target: target.into(),
            server_name: None,
            anchors: Vec::new(),
            untrusted: Vec::new(),
            known_intermediates: Vec::new(),
            crls: Vec::new(),
            identity: None,
            starttls: None,
            versions: Versions::Tls13,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// Splits `HOST:PORT` (`[v6]:PORT`).
pub(crate) fn parse_target(target: &str) -> Result<(String, u16), Error> {
    let bad = |reason: &'static str| Error::Target {
        target: target.to_string(),
        reason,
    };
    let (host, port) = target
        .rsplit_once(':')
        .ok_or_else(|| bad("expected HOST:PORT"))?;
    let host = match host.strip_prefix('[') {
        Some(rest) => rest
            .strip_suffix(']')
            .ok_or_else(|| bad("an IPv6 address goes in brackets: [::1]:443"))?,
        None if host.contains(':') => {
            return Err(bad("an IPv6 address goes in brackets: [::1]:443"))
        }
        None => host,
    };
    if host.is_empty() {
        return Err(bad("the host is empty"));
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?;
    Ok((host.to_string(), port))
}

/// Why a connection attempt stopped early.
#[derive(Debug)]
pub(crate) enum Failure {
    /// TCP connect failed (refused, unreachable, ...).
    Connect(io::Error),
    /// TCP connect did not finish in time.
    ConnectTimeout,
    /// `--starttls mysql`: no greeting in time.
    GreetingTimeout,
    /// `--starttls mysql`: the peer closed without a greeting.
    NoGreeting,
    /// `--starttls mysql`: not a MySQL greeting.
    NotMysql(Vec<u8>),
    /// `--starttls mysql`: the server answered with an ERR packet.
    MysqlError { code: u16, message: String },
    /// `--starttls mysql`: the server does not offer TLS.
    MysqlNoTls { version: String },
    /// The TLS handshake failed; the first bytes the peer sent.
    Handshake(Stop, Vec<u8>),
    /// After the handshake: an alert or a closed connection.
    AfterHandshake(Stop),
}

/// What one connection showed.
struct Attempt {
    mysql_version: Option<String>,
    tls_version: Option<ProtocolVersion>,
    cipher_suite: Option<String>,
    key_exchange: Option<String>,
    alpn: Option<String>,
    handshake: Option<Duration>,
    resumed: bool,
    failure: Option<Failure>,
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// TCP connect, then STARTTLS if asked.
fn open(
    addrs: &[SocketAddr],
    starttls: Option<StartTls>,
    deadline: Instant,
) -> Result<(TcpStream, Option<String>), Failure> {
    let mut last = None;
    let mut stream = None;
    for addr in addrs {
        let left = remaining(deadline).ok_or(Failure::ConnectTimeout)?;
        match TcpStream::connect_timeout(addr, left) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) if is_timeout(&e) => last = Some(Failure::ConnectTimeout),
            Err(e) => last = Some(Failure::Connect(e)),
        }
    }
    let Some(mut stream) = stream else {
        return Err(last.unwrap_or(Failure::ConnectTimeout));
    };
    let _ = stream.set_nodelay(true);
    let version = match starttls {
        None => None,
        Some(StartTls::Mysql) => Some(mysql_starttls(&mut stream, deadline)?),
    };
    Ok((stream, version))
}

fn read_exact_by(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> Result<(), Failure> {
    let mut got = 0;
    while got < buf.len() {
        let left = remaining(deadline).ok_or(Failure::GreetingTimeout)?;
        stream
            .set_read_timeout(Some(left))
            .map_err(Failure::Connect)?;
        match stream.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Err(Failure::NoGreeting),
            Ok(0) => return Err(Failure::NotMysql(buf[..got].to_vec())),
            Ok(n) => got += n,
            Err(e) if is_timeout(&e) => return Err(Failure::GreetingTimeout),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(Failure::NoGreeting),
        }
    }
    Ok(())
}

/// Reads the greeting, sends the SSLRequest; returns the server version.
fn mysql_starttls(stream: &mut TcpStream, deadline: Instant) -> Result<String, Failure> {
    let mut header = [0u8; 4];
    read_exact_by(stream, &mut header, deadline)?;
    let (len, seq) = mysql::packet_header(header);
    if seq != 0 || len == 0 || len > mysql::MAX_GREETING {
        return Err(Failure::NotMysql(header.to_vec()));
    }
    let mut payload = vec![0u8; len];
    read_exact_by(stream, &mut payload, deadline)?;
    match mysql::parse_greeting(&payload) {
        None => {
            let mut bytes = header.to_vec();
            bytes.extend_from_slice(&payload);
            Err(Failure::NotMysql(bytes))
        }
        Some(Greeting::Error { code, message }) => Err(Failure::MysqlError { code, message }),
        Some(g @ Greeting::Handshake { .. }) if !g.offers_tls() => {
            let Greeting::Handshake { version, .. } = g else {
                return Err(Failure::NoGreeting);
            };
            Err(Failure::MysqlNoTls { version })
        }
        Some(Greeting::Handshake {
            version,
            capabilities,
        }) => {
            let left = remaining(deadline).ok_or(Failure::GreetingTimeout)?;
            stream
                .set_write_timeout(Some(left))
                .map_err(Failure::Connect)?;
            stream
                .write_all(&mysql::ssl_request(capabilities))
                .map_err(|_| Failure::NoGreeting)?;
            Ok(version)
        }
    }
}

/// Which of the two connections of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    /// The probe itself: lingers after a TLS 1.3 handshake for tickets and
    /// for an alert refusing the client certificate.
    First,
    /// The second connection, which tries to resume the first's session.
    Resumption,
}

/// One connection: open, handshake, and for the first one linger for
/// tickets and alerts.
fn attempt(
    addrs: &[SocketAddr],
    req: &ProbeRequest,
    config: &Arc<ClientConfig>,
    sni: &ServerName<'static>,
    observed: &Observed,
    which: Which,
) -> Result<Attempt, Error> {
    let deadline = Instant::now() + req.timeout;
    let mut out = Attempt {
        mysql_version: None,
        tls_version: None,
        cipher_suite: None,
        key_exchange: None,
        alpn: None,
        handshake: None,
        resumed: false,
        failure: None,
    };
    let (mut stream, version) = match open(addrs, req.starttls, deadline) {
        Ok(v) => v,
        Err(f) => {
            out.failure = Some(f);
            return Ok(out);
        }
    };
    out.mysql_version = version;
    let mut conn = ClientConnection::new(config.clone(), sni.clone())
        .map_err(|source| Error::Config { source })?;
    let mut tap = Tap {
        stream: &mut stream,
        first: Vec::new(),
    };
    let start = Instant::now();
    let result = tls::handshake(&mut conn, &mut tap, deadline);
    let took = start.elapsed();
    out.tls_version = conn.protocol_version();
    out.cipher_suite = conn
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()).replacen("TLS13_", "TLS_", 1));
    out.key_exchange = conn
        .negotiated_key_exchange_group()
        .map(|g| format!("{:?}", g.name()));
    out.alpn = conn
        .alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    if let Err(stop) = result {
        out.failure = Some(Failure::Handshake(stop, tap.first));
        return Ok(out);
    }
    out.handshake = Some(took);
    out.resumed = conn.handshake_kind() == Some(HandshakeKind::Resumed);
    if which == Which::First && out.tls_version == Some(ProtocolVersion::TLSv1_3) {
        let until = deadline.min(Instant::now() + TICKET_WAIT + took);
        // An alert means the server refused something (our certificate).
        // A closed connection is not a failure: a server may close once it
        // has nothing to say (e.g. its upstream is down).
        if let Err(stop @ Stop::Tls(_)) =
            tls::linger(&mut conn, &mut tap, until, || observed.session_stored())
        {
            out.failure = Some(Failure::AfterHandshake(stop));
            return Ok(out);
        }
    }
    tls::close(&mut conn, &mut tap, Instant::now() + Duration::from_secs(1));
    Ok(out)
}

/// Probes `req.target`. Network trouble is a diagnosis in the report, not
/// an error; an error is a bad request (target, server name, client key).
pub fn probe(req: &ProbeRequest) -> Result<Report, Error> {
    let (host, port) = parse_target(&req.target)?;
    let name = req.server_name.clone().unwrap_or_else(|| host.clone());
    let sni =
        ServerName::try_from(name.clone()).map_err(|_| Error::ServerName { name: name.clone() })?;
    let addrs: Vec<SocketAddr> = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|source| Error::Resolve {
            host: host.clone(),
            source,
        })?
        .collect();
    let mut report = Report::new(&req.target, &name);
    let mut alpn = req.starttls.is_none();
    let (config, observed, first) = loop {
        let (config, observed) = tls::config(req.versions, req.identity.as_ref(), alpn)?;
        let first = attempt(&addrs, req, &config, &sni, &observed, Which::First)?;
        let refused_alpn = matches!(
            &first.failure,
            Some(Failure::Handshake(
                Stop::Tls(rustls::Error::AlertReceived(
                    AlertDescription::NoApplicationProtocol
                )),
                _
            ))
        );
        if refused_alpn && alpn {
            alpn = false;
            continue;
        }
        break (config, observed, first);
    };
    report.mysql_server_version = first.mysql_version.clone();
    report.tls_version = first.tls_version.map(version_name);
    report.cipher_suite = first.cipher_suite.clone();
    report.key_exchange = first.key_exchange.clone();
    report.alpn = first.alpn.clone();
    report.handshake_ms = first
        .handshake
        .map(|d| (d.as_secs_f64() * 10_000.0).round() / 10.0);
    report.forward_secrecy = first.tls_version.map(|v| match v {
        ProtocolVersion::TLSv1_3 => true,
        _ => first
            .cipher_suite
            .as_deref()
            .is_some_and(|s| s.contains("_ECDHE_") || s.contains("_DHE_")),
    });
    let requested = observed.requested();
    if report.tls_version.is_some() {
        report.client_cert_requested = Some(requested.is_some());
        report.acceptable_client_cas = requested
            .as_ref()
            .map(|names| names.iter().map(|n| name_text(n)).collect());
    }

    let mut findings = Vec::new();
    if let Some(failure) = &first.failure {
        findings.push(failure_finding(failure, req, &report));
    } else if first.handshake.is_some() {
        report.resumption = Some(
            observed.session_stored() && {
                let second = attempt(&addrs, req, &config, &sni, &observed, Which::Resumption)?;
                second.failure.is_none() && second.resumed
            },
        );
    }
    if let Some(chain) = observed.chain() {
        judge_chain(&chain, req, &name, &mut report, &mut findings);
    }
    if let Some(f) = decisive(&findings) {
        report.diagnosis = f.diagnosis;
        report.detail = Some(f.detail.clone());
        report.fix = Some(f.fix.clone());
        let mut others: Vec<&Finding> = findings
            .iter()
            .filter(|o| o.diagnosis != Diagnosis::Ok && o.diagnosis != f.diagnosis)
            .collect();
        others.sort_by_key(|o| o.diagnosis);
        report.also = others
            .iter()
            .map(|o| format!("{}: {}", o.diagnosis, o.detail))
            .collect();
    }
    Ok(report)
}

fn version_name(v: ProtocolVersion) -> String {
    match v {
        ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        other => format!("{other:?}"),
    }
}

/// RFC 4514 text of a DER Name.
fn name_text(der: &[u8]) -> String {
    match X509Name::from_der(der) {
        Ok((_, name)) => name.to_string(),
        Err(_) => format!("(unparsable name, {} bytes)", der.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_host_and_port() {
        assert_eq!(parse_target("db:3306").unwrap(), ("db".into(), 3306));
        assert_eq!(parse_target("[::1]:443").unwrap(), ("::1".into(), 443));
        assert_eq!(
            parse_target("127.0.0.1:1").unwrap(),
            ("127.0.0.1".into(), 1)
        );
        for bad in [
            "db", "db:", "db:0", "db:70000", ":443", "::1:443", "[::1:443",
        ] {
            let err = parse_target(bad).unwrap_err().to_string();
            assert!(err.contains(bad), "{bad}: {err}");
        }
    }
}

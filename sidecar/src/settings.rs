//! Validated, typed settings: raw strings from the command line or the
//! config file go in, [`Settings`] (or every problem found) comes out.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use minica_enrol::trust::CaUrl;
use minica_pki::duration::parse_duration;
use minica_pki::identity::AllowRule;
use rustls_pki_types::ServerName;
use serde::Deserialize;

use crate::error::Error;

/// A TLS handshake that takes longer than this is abandoned: long enough for
/// a slow client on a busy host, short enough that half-open connections do
/// not pile up.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections may keep running after SIGTERM: the default
/// Kubernetes termination grace period.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections per route beyond which new ones are closed at once: keeps the
/// process well inside a typical 64k file-descriptor limit.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// The file in the identity directory that `crl_from` writes when no `crl`
/// path is given.
pub const CRL_FILE_NAME: &str = "crl.pem";

/// Where the raw settings came from, to word the errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Command-line flags.
    Cli,
    /// A TOML config file.
    File(PathBuf),
}

/// One bad value: which route, which key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The route's name (config file only).
    pub route: Option<String>,
    /// The key as written in the config file (`handshake_timeout`).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    /// A problem with `key` of `route`.
    pub fn new(route: Option<String>, key: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            route,
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Every problem found in one set of settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems {
    source: Source,
    list: Vec<Problem>,
}

impl Problems {
    /// Wraps the problems found in `source`.
    pub fn new(source: Source, list: Vec<Problem>) -> Self {
        Problems { source, list }
    }

    /// The problems, in the order found.
    pub fn list(&self) -> &[Problem] {
        &self.list
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.list.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            match &self.source {
                Source::Cli => write!(f, "--{}: {}", p.key.replace('_', "-"), p.message)?,
                Source::File(path) => {
                    write!(f, "{}: ", path.display())?;
                    if let Some(route) = &p.route {
                        write!(f, "route {route:?}: ")?;
                    }
                    write!(f, "key `{}`: {}", p.key, p.message)?;
                }
            }
        }
        Ok(())
    }
}

/// Process-wide settings as written.
#[derive(Debug, Clone)]
pub struct RawGlobal {
    /// `admin`.
    pub admin: Option<String>,
    /// `log_format`.
    pub log_format: Option<String>,
    /// Where they came from.
    pub source: Source,
}

/// One route as written; the keys of a `[[route]]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // reason: each field is the config key of the same name (docs/sidecar.md).
pub struct RawRoute {
    pub name: Option<String>,
    pub direction: Option<String>,
    pub listen: Option<String>,
    pub upstream: Option<String>,
    pub identity: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub ca: Option<PathBuf>,
    pub crl: Option<PathBuf>,
    #[serde(default)]
    pub allow: Vec<String>,
    pub server_name: Option<String>,
    pub protocol: Option<String>,
    pub proxy_protocol: Option<String>,
    #[serde(default)]
    pub tls12: bool,
    pub handshake_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub max_connections: Option<u64>,
    pub drain_timeout: Option<String>,
    pub renew_from: Option<String>,
    pub crl_from: Option<String>,
}

/// Which way a route carries traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// mTLS in, plaintext to the local service.
    Inbound,
    /// Plaintext in from the local service, mTLS out to a peer.
    Outbound,
}

impl Direction {
    /// `inbound` / `outbound`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// What is spoken before TLS starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// TLS from the first byte.
    Tcp,
    /// MySQL/MariaDB: greeting and SSLRequest in plaintext, then TLS in the
    /// same stream (see [`crate::mysql`]).
    Mysql,
}

/// Which TLS versions are offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersions {
    /// TLS 1.3 only (the default).
    Tls13Only,
    /// TLS 1.2 (ECDHE + AEAD suites only) and TLS 1.3.
    Tls12And13,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The PEM files of one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Our certificate chain (leaf first).
    pub cert: PathBuf,
    /// Our private key.
    pub key: PathBuf,
    /// The CA bundle peers must chain to.
    pub ca: PathBuf,
    /// CRLs, if any.
    pub crl: Option<PathBuf>,
}

impl TlsFiles {
    /// Every file, for watching.
    pub fn paths(&self) -> Vec<&Path> {
        let mut v = vec![self.cert.as_path(), self.key.as_path(), self.ca.as_path()];
        if let Some(crl) = &self.crl {
            v.push(crl);
        }
        v
    }
}

/// One validated route.
#[derive(Debug, Clone)]
pub struct RouteSettings {
    /// Name used in logs and metric labels.
    pub name: String,
    /// Inbound or outbound.
    pub direction: Direction,
    /// Where to listen.
    pub listen: SocketAddr,
    /// Where to connect (`host:port`).
    pub upstream: String,
    /// PEM files.
    pub files: TlsFiles,
    /// Allowed peer identities; empty means every peer chaining to the CA.
    pub allow: Vec<AllowRule>,
    /// The name the upstream server must prove (outbound only).
    pub server_name: Option<ServerName<'static>>,
    /// What is spoken before TLS.
    pub protocol: Protocol,
    /// Send a PROXY v2 header upstream (inbound only).
    pub proxy_protocol_v2: bool,
    /// TLS versions offered.
    pub versions: TlsVersions,
    /// Handshake deadline.
    pub handshake_timeout: Duration,
    /// Close a connection idle (no bytes either way) this long.
    pub idle_timeout: Option<Duration>,
    /// Most connections open at once.
    pub max_connections: usize,
    /// How long open connections may run after SIGTERM.
    pub drain_timeout: Duration,
    /// The identity directory, when the files come from one (`identity`).
    pub identity: Option<PathBuf>,
    /// Renew the identity in [`RouteSettings::identity`] from this online
    /// CA (`renew_from`).
    pub renew_from: Option<CaUrl>,
    /// Fetch the CRLs from this online CA into [`TlsFiles::crl`]
    /// (`crl_from`).
    pub crl_from: Option<CaUrl>,
}

/// Everything the process runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Admin listener.
    pub admin: Option<SocketAddr>,
    /// Log format.
    pub log_format: LogFormat,
    /// Routes, at least one.
    pub routes: Vec<RouteSettings>,
}

struct Check<'a> {
    route: Option<String>,
    problems: &'a mut Vec<Problem>,
}

impl Check<'_> {
    fn bad(&mut self, key: &str, message: impl Into<String>) {
        self.problems
            .push(Problem::new(self.route.clone(), key, message));
    }

    fn duration(&mut self, key: &str, value: Option<&str>) -> Option<Duration> {
        match value.map(parse_duration)? {
            Ok(d) => Some(d),
            Err(e) => {
                self.bad(key, e.to_string());
                None
            }
        }
    }
}

/// Parses `--log-format`.
pub fn parse_log_format(value: Option<&str>) -> Result<LogFormat, String> {
    match value {
        None | Some("text") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some(other) => Err(format!("expected text or json, not {other:?}")),
    }
}

fn parse_addr(value: &str) -> Result<SocketAddr, String> {
    value
        .parse()
        .map_err(|_| format!("{value:?} is not an IP:PORT address (e.g. 127.0.0.1:8443)"))
}

fn check_host_port(value: &str) -> Result<(), String> {
    let ok = value
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if ok {
        Ok(())
    } else {
        Err(format!("{value:?} is not HOST:PORT (e.g. 127.0.0.1:8080)"))
    }
}

impl Settings {
    /// Validates raw settings, reporting every bad value at once.
    pub fn resolve(global: RawGlobal, routes: Vec<RawRoute>) -> Result<Settings, Error> {
        let mut problems = Vec::new();
        let mut check = Check {
            route: None,
            problems: &mut problems,
        };
        let admin = match global.admin.as_deref().map(parse_addr) {
            Some(Ok(a)) => Some(a),
            Some(Err(e)) => {
                check.bad("admin", e);
                None
            }
            None => None,
        };
        let log_format = parse_log_format(global.log_format.as_deref()).unwrap_or_else(|e| {
            check.bad("log_format", e);
            LogFormat::Text
        });
        if routes.is_empty() {
            check.bad("route", "at least one [[route]] is needed");
        }
        let mut resolved = Vec::new();
        for (i, raw) in routes.into_iter().enumerate() {
            if let Some(route) = resolve_route(raw, i, &global.source, &mut problems) {
                resolved.push(route);
            }
        }
        for (i, r) in resolved.iter().enumerate() {
            if resolved[..i].iter().any(|o| o.name == r.name) {
                problems.push(Problem::new(
                    Some(r.name.clone()),
                    "name",
                    "two routes have this name",
                ));
            }
            if resolved[..i].iter().any(|o| o.listen == r.listen) {
                problems.push(Problem::new(
                    Some(r.name.clone()),
                    "listen",
                    format!("{} is used by another route", r.listen),
                ));
            }
        }
        if !problems.is_empty() {
            return Err(Error::Settings(Problems::new(global.source, problems)));
        }
        Ok(Settings {
            admin,
            log_format,
            routes: resolved,
        })
    }
}

fn resolve_route(
    raw: RawRoute,
    index: usize,
    source: &Source,
    problems: &mut Vec<Problem>,
) -> Option<RouteSettings> {
    let before = problems.len();
    let label = raw.name.clone().or_else(|| match source {
        Source::Cli => None,
        Source::File(_) => Some(format!("#{}", index + 1)),
    });
    let mut c = Check {
        route: label,
        problems,
    };
    let direction = match raw.direction.as_deref() {
        Some("inbound") => Some(Direction::Inbound),
        Some("outbound") => Some(Direction::Outbound),
        Some(other) => {
            c.bad(
                "direction",
                format!("expected inbound or outbound, not {other:?}"),
            );
            None
        }
        None => {
            c.bad("direction", "missing (inbound or outbound)");
            None
        }
    };
    let name = raw
        .name
        .clone()
        .or_else(|| direction.map(|d| d.as_str().to_string()))
        .unwrap_or_default();
    if raw.name.as_deref().is_some_and(|n| {
        n.is_empty()
            || !n
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    }) {
        c.bad("name", "use letters, digits, '-', '_' and '.'");
    }
    let listen = match raw.listen.as_deref() {
        Some(v) => parse_addr(v).map_err(|e| c.bad("listen", e)).ok(),
        None => {
            c.bad("listen", "missing");
            None
        }
    };
    let upstream = match raw.upstream {
        Some(v) => match check_host_port(&v) {
            Ok(()) => Some(v),
            Err(e) => {
                c.bad("upstream", e);
                None
            }
        },
        None => {
            c.bad("upstream", "missing");
            None
        }
    };
    let files = match (&raw.identity, &raw.cert, &raw.key, &raw.ca) {
        (Some(dir), None, None, None) => Some(TlsFiles {
            cert: dir.join("chain.pem"),
            key: dir.join("key.pem"),
            ca: dir.join("ca.pem"),
            crl: raw.crl.clone(),
        }),
        (Some(_), ..) => {
            c.bad("identity", "give either identity or cert/key/ca, not both");
            None
        }
        (None, Some(cert), Some(key), Some(ca)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            ca: ca.clone(),
            crl: raw.crl.clone(),
        }),
        (None, cert, key, ca) => {
            for (k, v) in [("cert", cert), ("key", key), ("ca", ca)] {
                if v.is_none() {
                    c.bad(
                        k,
                        "missing (or give identity = DIR holding chain.pem, key.pem, ca.pem)",
                    );
                }
            }
            None
        }
    };
    let mut url = |key: &str, value: Option<&str>| match value.map(str::parse::<CaUrl>) {
        Some(Ok(u)) => Some(u),
        Some(Err(e)) => {
            c.bad(key, e.to_string());
            None
        }
        None => None,
    };
    let renew_from = url("renew_from", raw.renew_from.as_deref());
    let crl_from = url("crl_from", raw.crl_from.as_deref());
    if raw.renew_from.is_some() && raw.identity.is_none() {
        c.bad(
            "renew_from",
            "needs identity = DIR (the directory whose files are renewed in place)",
        );
    }
    // The fetched CRLs go to `crl` when given, else to DIR/crl.pem.
    let files = match (files, &raw.crl_from, &raw.crl, &raw.identity) {
        (Some(f), Some(_), None, Some(dir)) => Some(TlsFiles {
            crl: Some(dir.join(CRL_FILE_NAME)),
            ..f
        }),
        (f, Some(_), None, None) => {
            c.bad(
                "crl_from",
                "needs crl = FILE (where the fetched CRLs are written) or identity = DIR",
            );
            f
        }
        (f, ..) => f,
    };
    let mut allow = Vec::new();
    for rule in &raw.allow {
        match rule.parse::<AllowRule>() {
            Ok(r) => allow.push(r),
            Err(e) => c.bad("allow", e.to_string()),
        }
    }
    let server_name = match (direction, raw.server_name) {
        (Some(Direction::Outbound), Some(n)) => match ServerName::try_from(n.clone()) {
            Ok(s) => Some(s),
            Err(_) => {
                c.bad(
                    "server_name",
                    format!("{n:?} is not a DNS name or IP address"),
                );
                None
            }
        },
        (Some(Direction::Outbound), None) => {
            c.bad("server_name", "required for an outbound route");
            None
        }
        (Some(Direction::Inbound), Some(_)) => {
            c.bad("server_name", "only for outbound routes");
            None
        }
        _ => None,
    };
    let protocol = match raw.protocol.as_deref() {
        None | Some("tcp") => Some(Protocol::Tcp),
        Some("mysql") => Some(Protocol::Mysql),
        Some(other) => {
            c.bad("protocol", format!("expected tcp or mysql, not {other:?}"));
            None
        }
    };
    let proxy_protocol_v2 = match (raw.proxy_protocol.as_deref(), direction) {
        (None, _) => false,
        (Some("v2"), Some(Direction::Inbound)) => true,
        (Some("v2"), _) => {
            c.bad("proxy_protocol", "only for inbound routes");
            false
        }
        (Some(other), _) => {
            c.bad(
                "proxy_protocol",
                format!("only v2 is supported, not {other:?}"),
            );
            false
        }
    };
    if proxy_protocol_v2 && protocol == Some(Protocol::Mysql) {
        // The PROXY header must precede the server's greeting, which comes
        // before the client's TLS identity is known.
        c.bad(
            "proxy_protocol",
            "not supported with protocol mysql (the header would precede the greeting, before the client is known)",
        );
    }
    let handshake_timeout = c
        .duration("handshake_timeout", raw.handshake_timeout.as_deref())
        .unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT);
    if handshake_timeout.is_zero() {
        c.bad("handshake_timeout", "must be more than 0s");
    }
    let idle_timeout = c.duration("idle_timeout", raw.idle_timeout.as_deref());
    if idle_timeout.is_some_and(|d| d.is_zero()) {
        c.bad(
            "idle_timeout",
            "must be more than 0s (leave it out for none)",
        );
    }
    let drain_timeout = c
        .duration("drain_timeout", raw.drain_timeout.as_deref())
        .unwrap_or(DEFAULT_DRAIN_TIMEOUT);
    let max_connections = match raw.max_connections {
        None => DEFAULT_MAX_CONNECTIONS,
        Some(0) => {
            c.bad("max_connections", "must be at least 1");
            1
        }
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
    };
    if problems.len() > before {
        return None;
    }
    Some(RouteSettings {
        name,
        direction: direction?,
        listen: listen?,
        upstream: upstream?,
        files: files?,
        allow,
        server_name,
        protocol: protocol?,
        proxy_protocol_v2,
        versions: if raw.tls12 {
            TlsVersions::Tls12And13
        } else {
            TlsVersions::Tls13Only
        },
        handshake_timeout,
        idle_timeout,
        max_connections,
        drain_timeout,
        identity: raw.identity,
        renew_from,
        crl_from,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawRoute {
        RawRoute {
            direction: Some("inbound".into()),
            listen: Some("127.0.0.1:8443".into()),
            upstream: Some("localhost:8080".into()),
            identity: Some("/id".into()),
            ..Default::default()
        }
    }

    fn cli() -> RawGlobal {
        RawGlobal {
            admin: None,
            log_format: None,
            source: Source::Cli,
        }
    }

    #[test]
    fn resolves_defaults_and_identity_dir() {
        let s = Settings::resolve(cli(), vec![raw()]).unwrap();
        let r = &s.routes[0];
        assert_eq!(r.name, "inbound");
        assert_eq!(r.files.cert, Path::new("/id/chain.pem"));
        assert_eq!(r.files.ca, Path::new("/id/ca.pem"));
        assert_eq!(r.handshake_timeout, DEFAULT_HANDSHAKE_TIMEOUT);
        assert_eq!(r.drain_timeout, DEFAULT_DRAIN_TIMEOUT);
        assert_eq!(r.versions, TlsVersions::Tls13Only);
        assert!(r.allow.is_empty() && r.idle_timeout.is_none());
    }

    #[test]
    fn reports_every_bad_value_at_once() {
        let bad = RawRoute {
            listen: Some("nope".into()),
            upstream: Some("nohost".into()),
            allow: vec!["svc-b".into()],
            handshake_timeout: Some("10".into()),
            protocol: Some("mysql2".into()),
            server_name: Some("x".into()),
            ..raw()
        };
        let err = Settings::resolve(cli(), vec![bad]).unwrap_err().to_string();
        for key in [
            "--listen",
            "--upstream",
            "--allow",
            "--handshake-timeout",
            "--protocol",
            "--server-name",
        ] {
            assert!(err.contains(key), "{key} missing in:\n{err}");
        }
        assert!(err.contains("expected tcp or mysql"), "{err}");
    }

    #[test]
    fn mysql_protocol_is_accepted_but_not_with_proxy_protocol() {
        let r = RawRoute {
            protocol: Some("mysql".into()),
            ..raw()
        };
        let s = Settings::resolve(cli(), vec![r.clone()]).unwrap();
        assert_eq!(s.routes[0].protocol, Protocol::Mysql);
        let bad = RawRoute {
            proxy_protocol: Some("v2".into()),
            ..r
        };
        let err = Settings::resolve(cli(), vec![bad]).unwrap_err().to_string();
        assert!(
            err.contains("--proxy-protocol: not supported with protocol mysql"),
            "{err}"
        );
    }

    #[test]
    fn outbound_needs_a_valid_server_name() {
        let out = RawRoute {
            direction: Some("outbound".into()),
            ..raw()
        };
        let err = Settings::resolve(cli(), vec![out.clone()]).unwrap_err();
        assert!(err.to_string().contains("--server-name: required"), "{err}");
        let ok = RawRoute {
            server_name: Some("10.0.0.1".into()),
            ..out.clone()
        };
        assert!(Settings::resolve(cli(), vec![ok]).is_ok());
        let bad = RawRoute {
            server_name: Some("a b".into()),
            ..out
        };
        assert!(Settings::resolve(cli(), vec![bad]).is_err());
    }

    #[test]
    fn online_ca_settings() {
        let r = RawRoute {
            renew_from: Some("https://127.0.0.1:8443".into()),
            crl_from: Some("https://127.0.0.1:8443".into()),
            ..raw()
        };
        let s = Settings::resolve(cli(), vec![r]).unwrap();
        let route = &s.routes[0];
        assert_eq!(route.renew_from.as_ref().unwrap().port(), 8443);
        assert_eq!(route.files.crl.as_deref(), Some(Path::new("/id/crl.pem")));
        assert_eq!(route.identity.as_deref(), Some(Path::new("/id")));
        // An explicit crl path is where the fetched CRLs go.
        let r = RawRoute {
            crl_from: Some("https://ca:8443".into()),
            crl: Some("/var/crl.pem".into()),
            ..raw()
        };
        let s = Settings::resolve(cli(), vec![r]).unwrap();
        assert_eq!(
            s.routes[0].files.crl.as_deref(),
            Some(Path::new("/var/crl.pem"))
        );
        let files = RawRoute {
            identity: None,
            cert: Some("c".into()),
            key: Some("k".into()),
            ca: Some("a".into()),
            renew_from: Some("https://ca:8443".into()),
            crl_from: Some("http://ca:8443".into()),
            ..raw()
        };
        let err = Settings::resolve(cli(), vec![files])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--renew-from: needs identity"), "{err}");
        assert!(err.contains("--crl-from: CA URL"), "{err}");
        assert!(err.contains("--crl-from: needs crl"), "{err}");
    }

    #[test]
    fn file_errors_name_file_route_and_key() {
        let global = RawGlobal {
            admin: Some("x".into()),
            log_format: None,
            source: Source::File("/etc/s.toml".into()),
        };
        let r = RawRoute {
            name: Some("web".into()),
            cert: Some("c.pem".into()),
            identity: None,
            ..raw()
        };
        let err = Settings::resolve(global, vec![r.clone(), r])
            .unwrap_err()
            .to_string();
        assert!(err.contains("/etc/s.toml: key `admin`"), "{err}");
        assert!(err.contains("route \"web\": key `key`: missing"), "{err}");
        let twice = Settings::resolve(cli(), vec![raw(), raw()]).unwrap_err();
        assert!(
            twice.to_string().contains("two routes have this name"),
            "{twice}"
        );
    }
}

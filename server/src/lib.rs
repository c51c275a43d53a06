//! minica's online CA, `minica serve`: enrolment with one-time tokens,
//! renewal over mutual TLS, the bundle and CRL over HTTPS, metrics.
//!
//! # Overview
//! [`run`] serves the API of [`minica_enrol::api`] on `--listen` (HTTPS,
//! TLS 1.3) and `/metrics` on `--admin` (plain HTTP) until SIGINT or
//! SIGTERM, for a [`minica_ca::Ca`] opened by the caller.
//!
//! # Design
//! - hyper 1 (HTTP/1.1) over tokio-rustls, routed by axum. Each connection
//!   is its own task: a TLS handshake bounded by [`HANDSHAKE_TIMEOUT`], the
//!   client's certificate chain (if any) put in the request's extensions,
//!   then hyper. A failure in one connection never stops the others.
//!   Request heads must arrive within [`HEADER_TIMEOUT`], bodies (at most
//!   64 KiB, refused as soon as they pass it) within [`BODY_TIMEOUT`], and
//!   a connection with no traffic for [`IDLE_TIMEOUT`] is closed.
//! - Every decision (token checks, name checks, ledger state of a renewing
//!   caller) is made by the CA library ([`minica_ca::enroll`]) on a
//!   blocking thread (`spawn_blocking`), bounded by [`MAX_CA_OPERATIONS`].
//! - The server's HTTPS certificate is issued by this CA at start for the
//!   listen host, kept in memory only (its key is never written), recorded
//!   in the ledger as `minica-serve`, and re-issued at two thirds of its
//!   lifetime; new handshakes get the new one.
//! - Client certificates are optional in the handshake and verified
//!   against every root of the bundle; `/v1/renew` requires one and checks
//!   it against the ledger (revoked, superseded, unknown: refused).
//! - `GET /v1/crl` serves cached CRLs that follow the ledger within about a
//!   second (see `crl.rs`).
//! - With the embedded ledger the caller passes a socket path; the server
//!   answers the ledger protocol there so that other `minica` commands keep
//!   working while it runs.
//!
//! # Getting started
//! ```no_run
//! use minica_ca::{Ca, CaHome};
//! use minica_server::{parse_listen, run, ServeOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let home = CaHome::new("/var/lib/minica");
//! let ca = Ca::open(&home)?;
//! let (addr, host) = parse_listen("127.0.0.1:8443")?;
//! let mut options = ServeOptions::new(addr, host);
//! options.store_socket = Some(home.serve_socket_path());
//! run(ca, options, |started| println!("listening on {}", started.url))?;
//! # Ok(()) }
//! ```
//!
//! # Features
//! Enrolment with one-time tokens, renewal over mutual TLS, the trust
//! bundle and CRLs (DER or PEM, following the ledger within a second),
//! Prometheus metrics, graceful shutdown, the embedded ledger shared with
//! the CLI through a socket, or a PostgreSQL ledger shared by several
//! servers.
#![warn(missing_docs)]

mod api;
mod crl;
mod error;
mod idle;
mod metrics;
mod socket;
mod tls;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use minica_ca::Ca;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_rustls::TlsAcceptor;

pub use crate::error::Error;
pub use crate::tls::{fingerprint, ListenHost, SERVER_CERT_NAME};

/// Default `--listen`: loopback only, so that exposing the CA is a choice.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
/// Lifetime of the server's own certificate: short, since the server
/// re-issues it itself (at two thirds) and its key lives only in memory.
pub const DEFAULT_SERVER_CERT_VALIDITY: Duration = Duration::from_secs(24 * 3600);
/// Validity of the served CRLs (nextUpdate - now): a day, re-signed at
/// half of it even when nothing changed, so a client that fetches before
/// nextUpdate always holds a CRL with twelve hours or more to go.
pub const DEFAULT_CRL_VALIDITY: Duration = Duration::from_secs(24 * 3600);
/// A TLS client that has not finished its handshake by then is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request's head may take to arrive (slowloris bound).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection on which no byte moved for this long is closed (after the
/// request in flight, if any): idle keep-alive connections and clients
/// that connect and send nothing do not hold a slot forever.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a request body (at most 64 KiB) may take to arrive: a client
/// that trickles it gets 408.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long in-flight requests may run after SIGINT/SIGTERM.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Open API connections at most; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 4096;
/// CA operations (enrol, renew) running at once; more queue.
pub const MAX_CA_OPERATIONS: usize = 16;

/// How to serve (resolved from the command line).
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The API address.
    pub listen: SocketAddr,
    /// The host the server certificate names (from `--listen`).
    pub host: ListenHost,
    /// The admin address (`/metrics`, `/healthz`), plain HTTP.
    pub admin: Option<SocketAddr>,
    /// Where to answer the ledger protocol (embedded store only).
    pub store_socket: Option<PathBuf>,
    /// Lifetime of the server certificate.
    pub server_cert_validity: Duration,
    /// Validity of the served CRLs.
    pub crl_validity: Duration,
    /// Bound on the graceful shutdown.
    pub drain_timeout: Duration,
}

impl ServeOptions {
    /// Options for `listen` (see [`parse_listen`]) with the defaults.
    pub fn new(listen: SocketAddr, host: ListenHost) -> Self {
        ServeOptions {
            listen,
            host,
            admin: None,
            store_socket: None,
            server_cert_validity: DEFAULT_SERVER_CERT_VALIDITY,
            crl_validity: DEFAULT_CRL_VALIDITY,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }
}

/// Why a `--listen` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?}: {reason} (expected HOST:PORT, e.g. 127.0.0.1:8443 or ca.internal:8443)")]
pub struct BadAddress {
    /// The value as given.
    pub value: String,
    /// What is wrong.
    pub reason: String,
}

/// Parses `IP:PORT`, `[IPv6]:PORT` or `DNSNAME:PORT` (resolved now, the
/// first address is bound) into the address to bind and the host the
/// server certificate names.
pub fn parse_listen(value: &str) -> Result<(SocketAddr, ListenHost), BadAddress> {
    let bad = |reason: &str| BadAddress {
        value: value.to_string(),
        reason: reason.to_string(),
    };
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok((addr, ListenHost::Ip(addr.ip())));
    }
    let (host, port) = value.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| bad("the port is not a number 0-65535"))?;
    if host.parse::<minica_ca::Name>().is_err() || host.parse::<std::net::IpAddr>().is_ok() {
        return Err(bad("the host is not an IP address or a DNS name"));
    }
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| bad(&format!("cannot resolve the host: {e}")))?
        .next()
        .ok_or_else(|| bad("the host resolves to no address"))?;
    Ok((addr, ListenHost::Dns(host.to_string())))
}

/// What [`run`] reports once it listens.
#[derive(Debug, Clone)]
pub struct Started {
    /// `https://HOST:PORT`.
    pub url: String,
    /// The admin address actually bound.
    pub admin: Option<SocketAddr>,
    /// `sha256:HEX` of every root in the bundle, the current one first.
    pub root_fingerprints: Vec<String>,
    /// The ledger socket, when one is served.
    pub socket: Option<PathBuf>,
    /// The serial of the server certificate, hex.
    pub server_cert_serial: String,
}

/// Serves until SIGINT or SIGTERM, then drains (bounded by
/// `options.drain_timeout`). Calls `on_start` once every listener is bound
/// and the server certificate issued. Blocking: builds its own runtime.
pub fn run(ca: Ca, options: ServeOptions, on_start: impl FnOnce(&Started)) -> Result<(), Error> {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MINICA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("minica-serve")
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(serve(Arc::new(ca), options, on_start))
}

async fn serve(
    ca: Arc<Ca>,
    options: ServeOptions,
    on_start: impl FnOnce(&Started),
) -> Result<(), Error> {
    let listener = TcpListener::bind(options.listen)
        .await
        .map_err(|source| Error::Bind {
            what: "--listen",
            addr: options.listen,
            source,
        })?;
    let local = listener.local_addr().map_err(Error::Runtime)?;
    let admin = match options.admin {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| Error::Bind {
                    what: "--admin",
                    addr,
                    source,
                })?,
        ),
        None => None,
    };
    let admin_addr = match &admin {
        Some(l) => Some(l.local_addr().map_err(Error::Runtime)?),
        None => None,
    };
    let socket_guard = match &options.store_socket {
        Some(path) => Some(socket::serve_store(ca.clone(), path)?),
        None => None,
    };

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (bundle_pem, first_cert, fingerprints) = {
        let ca = ca.clone();
        let (p, host, validity) = (
            provider.clone(),
            options.host.clone(),
            options.server_cert_validity,
        );
        tokio::task::spawn_blocking(move || -> Result<_, Error> {
            let bundle = ca.bundle_pem()?;
            let cert = tls::issue_server_cert(&ca, &p, &host, validity, None)?;
            let mut fps = vec![fingerprint(ca.root().der())];
            for der in minica_pki::pem::parse_certs(&ca.home().bundle_path(), bundle.as_bytes())
                .map_err(minica_ca::Error::from)?
            {
                let fp = fingerprint(&der);
                if !fps.contains(&fp) {
                    fps.push(fp);
                }
            }
            Ok((bundle, cert, fps))
        })
        .await??
    };
    let roots = tls::roots(&ca.home().bundle_path(), &bundle_pem)?;
    let resolver = Arc::new(tls::CertResolver::new(first_cert.key.clone()));
    let config = tls::server_config(provider.clone(), roots, resolver.clone())?;
    let acceptor = TlsAcceptor::from(Arc::new(config));

    let metrics = Arc::new(metrics::Metrics::default());
    metrics.server_cert(first_cert.not_after);
    let app = Arc::new(api::App {
        ca: ca.clone(),
        bundle_pem,
        metrics: metrics.clone(),
        crl: crl::CrlCache::new(options.crl_validity),
        permits: Semaphore::new(MAX_CA_OPERATIONS),
        renewing: std::sync::Mutex::default(),
    });
    let router = api::router(app);
    let (stop_tx, stop_rx) = watch::channel(false);

    let host = match &options.host {
        ListenHost::Ip(ip) if ip.is_unspecified() => "localhost".to_string(),
        ListenHost::Ip(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
        ListenHost::Ip(ip) => ip.to_string(),
        ListenHost::Dns(d) => d.clone(),
    };
    on_start(&Started {
        url: format!("https://{host}:{}", local.port()),
        admin: admin_addr,
        root_fingerprints: fingerprints,
        socket: options.store_socket.clone(),
        server_cert_serial: first_cert.serial.to_hex(),
    });

    if let Some(admin) = admin {
        let router = api::admin_router(metrics.clone());
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(admin, router)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "admin listener failed");
            }
        });
    }
    tokio::spawn(renew_server_cert(
        ca.clone(),
        provider,
        options.clone(),
        resolver,
        metrics.clone(),
        first_cert,
        stop_rx.clone(),
    ));

    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let accept = accept_loop(listener, acceptor, router, metrics, stop_rx, alive_tx);
    tokio::pin!(accept);
    tokio::select! {
        () = &mut accept => {}
        () = shutdown_signal() => {
            tracing::info!("shutting down: finishing requests in flight");
        }
    }
    let _ = stop_tx.send(true);
    accept.await;
    // Every connection task holds a sender: recv() returns None when the
    // last one has finished.
    if tokio::time::timeout(options.drain_timeout, alive_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!("drain timeout: closing the connections still open");
    }
    drop(socket_guard);
    Ok(())
}

/// Resolves once the stop flag is set (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: axum::Router,
    metrics: Arc<metrics::Metrics>,
    mut stop: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            () = stopped(&mut stop) => return,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            () = stopped(&mut stop) => return,
            a = listener.accept() => a,
        };
        let tcp = match accepted {
            Ok((tcp, _peer)) => tcp,
            Err(e) => {
                // Out of file descriptors and the like: back off a little.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let conn = Connection {
            acceptor: acceptor.clone(),
            router: router.clone(),
            metrics: metrics.clone(),
            stop: stop.clone(),
        };
        let alive = alive.clone();
        tokio::spawn(async move {
            conn.serve(tcp).await;
            drop(permit);
            drop(alive);
        });
    }
}

struct Connection {
    acceptor: TlsAcceptor,
    router: axum::Router,
    metrics: Arc<metrics::Metrics>,
    stop: watch::Receiver<bool>,
}

impl Connection {
    async fn serve(mut self, tcp: tokio::net::TcpStream) {
        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "TLS handshake failed");
                self.metrics.handshake_failed();
                return;
            }
            Err(_) => {
                self.metrics.handshake_failed();
                return;
            }
        };
        let peer = tls.get_ref().1.peer_certificates().map(|chain| {
            Arc::new(
                chain
                    .iter()
                    .map(|c| c.clone().into_owned())
                    .collect::<Vec<_>>(),
            )
        });
        let service =
            TowerToHyperService::new(self.router.layer(axum::Extension(api::PeerCerts(peer))));
        let activity = idle::Activity::new();
        let io = idle::Tracked::new(tls, activity.clone());
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        loop {
            let quiet_for = IDLE_TIMEOUT.saturating_sub(activity.idle());
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    return;
                }
                () = stopped(&mut self.stop) => break,
                () = tokio::time::sleep(quiet_for) => {
                    if activity.idle() >= IDLE_TIMEOUT {
                        break;
                    }
                }
            }
        }
        // Stopping, or idle: finish the request in flight (if any), close;
        // a peer that does not read its answer is dropped after a bound.
        conn.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(IDLE_TIMEOUT, conn).await;
    }
}

/// Re-issues the server certificate at two thirds of its lifetime (retrying
/// every minute on failure while the old one is still served).
async fn renew_server_cert(
    ca: Arc<Ca>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    options: ServeOptions,
    resolver: Arc<tls::CertResolver>,
    metrics: Arc<metrics::Metrics>,
    mut current: tls::ServerCert,
    mut stop: watch::Receiver<bool>,
) {
    let mut due = current.renew_at();
    loop {
        let now = time::OffsetDateTime::now_utc();
        let wait = Duration::try_from(due - now).unwrap_or(Duration::ZERO);
        tokio::select! {
            () = stopped(&mut stop) => return,
            () = tokio::time::sleep(wait.max(Duration::from_secs(1))) => {}
        }
        let (ca2, p, host, validity, prev) = (
            ca.clone(),
            provider.clone(),
            options.host.clone(),
            options.server_cert_validity,
            current.serial.clone(),
        );
        let issued = tokio::task::spawn_blocking(move || {
            tls::issue_server_cert(&ca2, &p, &host, validity, Some(&prev))
        })
        .await;
        match issued {
            Ok(Ok(cert)) => {
                resolver.swap(cert.key.clone());
                metrics.server_cert(cert.not_after);
                tracing::info!(serial = %cert.serial.to_hex(), not_after = %cert.not_after, "server certificate renewed");
                due = cert.renew_at();
                current = cert;
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot renew the server certificate; retrying in a minute");
                due = time::OffsetDateTime::now_utc() + Duration::from_secs(60);
            }
            Err(e) => {
                tracing::error!(error = %e, "server certificate task failed; retrying in a minute");
                due = time::OffsetDateTime::now_utc() + Duration::from_secs(60);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        let (addr, host) = parse_listen("127.0.0.1:8443").unwrap();
        assert_eq!(addr.port(), 8443);
        assert_eq!(host, ListenHost::Ip("127.0.0.1".parse().unwrap()));
        let (_, host) = parse_listen("[::1]:0").unwrap();
        assert_eq!(host, ListenHost::Ip("::1".parse().unwrap()));
        let (addr, host) = parse_listen("localhost:9000").unwrap();
        assert_eq!(addr.port(), 9000);
        assert_eq!(host, ListenHost::Dns("localhost".into()));
        for bad in [
            "",
            "8443",
            "127.0.0.1",
            "host:port",
            "a b:1",
            "1.2.3.4.5:80",
            "x:70000",
        ] {
            assert!(parse_listen(bad).is_err(), "{bad}");
        }
    }
}

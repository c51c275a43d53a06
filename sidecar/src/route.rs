//! One route: the accept loop (connection limit, drain on shutdown) and the
//! per-connection handler (handshake, `--allow`, upstream, copy, log line).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use minica_pki::identity::PeerIdentity;
use rustls::{CommonState, ProtocolVersion};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{timeout, Instant};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::read_ahead::ReadAhead;

use crate::creds::{Creds, TlsConfig};
use crate::log;
use crate::metrics::{ConnResult, RouteMetrics};
use crate::mysql;
use crate::proxy::{self, ClosePolicy, Counters, End};
use crate::proxy_protocol::ProxyHeader;
use crate::reason::FailureReason;
use crate::settings::{Direction, Protocol, RouteSettings};
use crate::tls;

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop
/// does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What a route needs to serve.
#[derive(Debug, Clone)]
pub struct Route {
    /// Its settings.
    pub settings: Arc<RouteSettings>,
    /// The credentials in use, updated by reloads.
    pub creds: watch::Receiver<Arc<Creds>>,
    /// Its metrics.
    pub metrics: Arc<RouteMetrics>,
}

/// Everything the log line of a connection says.
#[derive(Debug, Default)]
pub struct ConnReport {
    /// The client's address.
    pub peer: Option<SocketAddr>,
    /// The TLS peer's identity.
    pub identity: Option<String>,
    /// Negotiated TLS version.
    pub tls_version: Option<&'static str>,
    /// Negotiated cipher suite.
    pub cipher: Option<String>,
    /// Bytes client -> upstream.
    pub to_upstream: u64,
    /// Bytes upstream -> client.
    pub from_upstream: u64,
    /// How it ended.
    pub result: Option<ConnResult>,
    /// Why the handshake failed.
    pub reason: Option<FailureReason>,
    /// The error, if any.
    pub detail: Option<String>,
}

/// Accepts connections until `shutdown` turns true, then waits for the open
/// ones up to the drain timeout and cuts the rest.
pub async fn serve(route: Route, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    let s = route.settings.clone();
    let limit = Arc::new(Semaphore::new(s.max_connections));
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(permit) = limit.clone().try_acquire_owned() else {
                        route.metrics.connection(ConnResult::Rejected);
                        tracing::warn!(route = %s.name, peer = %peer,
                            max_connections = s.max_connections,
                            "connection refused: --max-connections reached");
                        drop(stream);
                        continue;
                    };
                    let r = route.clone();
                    tasks.spawn(async move {
                        let _permit = permit;
                        handle(r, stream, peer).await;
                    });
                }
                Err(e) => {
                    tracing::warn!(route = %s.name, error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    drop(listener);
    if !tasks.is_empty() {
        tracing::info!(route = %s.name, open = tasks.len(), drain_timeout = ?s.drain_timeout,
            "draining open connections");
    }
    let deadline = tokio::time::sleep(s.drain_timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = tasks.join_next() => if next.is_none() { break },
            () = &mut deadline => {
                let cut = tasks.len();
                tracing::warn!(route = %s.name, connections = cut,
                    "drain timeout reached: closing the remaining connections");
                for _ in 0..cut {
                    route.metrics.connection(ConnResult::Drained);
                }
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                break;
            }
        }
    }
}

/// Resolves once `shutdown` is true (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Decrements the active gauge even when the task is aborted.
struct Active(Arc<RouteMetrics>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active_add(-1);
    }
}

async fn handle(route: Route, stream: TcpStream, peer: SocketAddr) {
    route.metrics.active_add(1);
    let _active = Active(route.metrics.clone());
    let start = Instant::now();
    let _ = stream.set_nodelay(true);
    let mut report = ConnReport {
        peer: Some(peer),
        ..ConnReport::default()
    };
    // The credentials as they are now; a reload does not touch this one.
    let creds = route.creds.borrow().clone();
    // A protocol with a plaintext phase before TLS (MySQL's greeting and
    // SSLRequest) has its own handler for the connection phase.
    match (
        route.settings.direction,
        route.settings.protocol,
        &creds.tls,
    ) {
        (Direction::Inbound, Protocol::Tcp, TlsConfig::Server(cfg)) => {
            inbound(&route, cfg.clone(), stream, &mut report).await;
        }
        (Direction::Outbound, Protocol::Tcp, TlsConfig::Client(cfg)) => {
            outbound(&route, cfg.clone(), stream, &mut report).await;
        }
        (Direction::Inbound, Protocol::Mysql, TlsConfig::Server(cfg)) => {
            mysql::session::inbound(&route, cfg.clone(), stream, &mut report).await;
        }
        (Direction::Outbound, Protocol::Mysql, TlsConfig::Client(cfg)) => {
            mysql::session::outbound(&route, cfg.clone(), stream, &mut report).await;
        }
        _ => {
            report.result = Some(ConnResult::Error);
            report.detail = Some("internal: credentials do not match the route direction".into());
        }
    }
    let result = report.result.unwrap_or(ConnResult::Error);
    route.metrics.connection(result);
    if let Some(reason) = report.reason {
        route.metrics.handshake_failed(reason);
    }
    log::connection(&route.settings, &report, start.elapsed());
}

fn version_name(state: &CommonState) -> Option<&'static str> {
    Some(match state.protocol_version()? {
        ProtocolVersion::TLSv1_3 => "TLSv1.3",
        ProtocolVersion::TLSv1_2 => "TLSv1.2",
        _ => "other",
    })
}

pub(crate) fn describe(state: &CommonState, report: &mut ConnReport) -> Option<PeerIdentity> {
    report.tls_version = version_name(state);
    report.cipher = state
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()));
    let id = state
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|der| PeerIdentity::from_der(der).ok());
    report.identity = id.as_ref().map(PeerIdentity::display_name);
    id
}

pub(crate) fn handshake_failed(report: &mut ConnReport, reason: FailureReason, detail: String) {
    report.result = Some(ConnResult::HandshakeFailed);
    report.reason = Some(reason);
    report.detail = Some(detail);
}

pub(crate) async fn connect_upstream(route: &Route) -> Result<TcpStream, String> {
    let s = &route.settings;
    match timeout(s.handshake_timeout, TcpStream::connect(&s.upstream)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(e)) => Err(format!("cannot connect to upstream {}: {e}", s.upstream)),
        Err(_) => Err(format!("timed out connecting to upstream {}", s.upstream)),
    }
}

pub(crate) fn finish(report: &mut ConnReport, end: End, counters: &Counters<'_>) {
    use std::sync::atomic::Ordering::Relaxed;
    report.to_upstream = counters.to_upstream.load(Relaxed);
    report.from_upstream = counters.from_upstream.load(Relaxed);
    report.result = Some(match end {
        End::Closed => ConnResult::Closed,
        End::Truncated => ConnResult::Truncated,
        End::IdleTimeout => ConnResult::IdleTimeout,
        End::Failed(e) => {
            report.detail = Some(e.to_string());
            ConnResult::Error
        }
    });
}

pub(crate) fn counters(metrics: &RouteMetrics) -> Counters<'_> {
    Counters {
        to_upstream: 0.into(),
        from_upstream: 0.into(),
        route_to_upstream: metrics.bytes_to_upstream(),
        route_from_upstream: metrics.bytes_from_upstream(),
    }
}

async fn inbound(
    route: &Route,
    cfg: Arc<rustls::ServerConfig>,
    stream: TcpStream,
    report: &mut ConnReport,
) {
    // The set-up (handshake, upstream, PROXY header) runs in its own boxed
    // future, freed once the connection is established: only the streams and
    // the copy's small state stay in the task of an idle connection.
    let Some((tls, upstream)) = Box::pin(inbound_setup(route, cfg, stream, report)).await else {
        return;
    };
    let c = counters(&route.metrics);
    let end = proxy::pipe(
        tls,
        upstream,
        route.settings.idle_timeout,
        &c,
        ClosePolicy::Stream,
    )
    .await;
    finish(report, end, &c);
}

/// The set-up of an inbound connection: the TLS handshake, the upstream
/// connection and the PROXY header. `None` once `report` says why it failed.
async fn inbound_setup(
    route: &Route,
    cfg: Arc<rustls::ServerConfig>,
    stream: TcpStream,
    report: &mut ConnReport,
) -> Option<(
    tokio_rustls::server::TlsStream<ReadAhead<TcpStream>>,
    TcpStream,
)> {
    let s = &route.settings;
    let local = stream.local_addr().ok();
    let began = Instant::now();
    let accept = timeout(
        s.handshake_timeout,
        TlsAcceptor::from(cfg).accept(ReadAhead::new(stream)),
    );
    let (accepted, claimed) = tls::capture_peer_identity(accept).await;
    report.identity = claimed;
    let mut tls = match accepted {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            handshake_failed(report, FailureReason::from_io(&e), e.to_string());
            return None;
        }
        Err(_) => {
            handshake_failed(report, FailureReason::Timeout, "handshake timed out".into());
            return None;
        }
    };
    route.metrics.handshake_done(began.elapsed());
    let id = describe(tls.get_ref().1, report);
    let mut upstream = match connect_upstream(route).await {
        Ok(u) => u,
        Err(e) => {
            report.result = Some(ConnResult::UpstreamFailed);
            report.detail = Some(e);
            use tokio::io::AsyncWriteExt;
            let _ = tls.shutdown().await;
            return None;
        }
    };
    if s.proxy_protocol_v2 {
        use tokio::io::AsyncWriteExt;
        let identity = report.identity.clone().unwrap_or_default();
        let header = ProxyHeader {
            source: report
                .peer
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
            destination: local.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
            tls_version: report.tls_version.unwrap_or(""),
            common_name: id.as_ref().and_then(|i| i.common_name.as_deref()),
            identity: &identity,
        };
        if let Err(e) = upstream.write_all(&header.encode()).await {
            report.result = Some(ConnResult::UpstreamFailed);
            report.detail = Some(format!("cannot send the PROXY header upstream: {e}"));
            return None;
        }
    }
    Some((tls, upstream))
}

async fn outbound(
    route: &Route,
    cfg: Arc<rustls::ClientConfig>,
    client: TcpStream,
    report: &mut ConnReport,
) {
    // As in `inbound`: the set-up's state lives in a box freed once done.
    let Some(tls) = Box::pin(outbound_setup(route, cfg, report)).await else {
        return;
    };
    let c = counters(&route.metrics);
    let end = proxy::pipe(
        client,
        tls,
        route.settings.idle_timeout,
        &c,
        ClosePolicy::Stream,
    )
    .await;
    finish(report, end, &c);
}

/// The set-up of an outbound connection: the upstream connection and the
/// TLS handshake over it. `None` once `report` says why it failed.
async fn outbound_setup(
    route: &Route,
    cfg: Arc<rustls::ClientConfig>,
    report: &mut ConnReport,
) -> Option<tokio_rustls::client::TlsStream<ReadAhead<TcpStream>>> {
    let s = &route.settings;
    let Some(name) = s.server_name.clone() else {
        report.result = Some(ConnResult::Error);
        report.detail = Some("internal: outbound route without a server name".into());
        return None;
    };
    let upstream = match connect_upstream(route).await {
        Ok(u) => u,
        Err(e) => {
            report.result = Some(ConnResult::UpstreamFailed);
            report.detail = Some(e);
            return None;
        }
    };
    let began = Instant::now();
    let connect = timeout(
        s.handshake_timeout,
        TlsConnector::from(cfg).connect(name, ReadAhead::new(upstream)),
    );
    let (connected, claimed) = tls::capture_peer_identity(connect).await;
    report.identity = claimed;
    let tls = match connected {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            handshake_failed(report, FailureReason::from_io(&e), e.to_string());
            return None;
        }
        Err(_) => {
            handshake_failed(report, FailureReason::Timeout, "handshake timed out".into());
            return None;
        }
    };
    route.metrics.handshake_done(began.elapsed());
    describe(tls.get_ref().1, report);
    Some(tls)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future `f` returns, without calling it.
    fn future_size<A, B, C, F: std::future::Future>(_: impl FnOnce(A, B, C) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// The task of every connection holds this future for the connection's
    /// life: the handshake's state must be boxed away (it is over 5 KiB),
    /// leaving the streams and the copy's small state (docs/BENCHMARKS.md,
    /// RSS per idle connection). Mostly rustls's connection (~1.2 KiB).
    #[test]
    fn a_connection_task_stays_small() {
        let size = future_size(|r: Route, s: TcpStream, p: SocketAddr| handle(r, s, p));
        assert!(size <= 3 * 1024, "the connection future takes {size} bytes");
    }
}

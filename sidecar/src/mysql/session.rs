//! The MySQL connection phase of one proxied connection (I/O): greeting,
//! SSLRequest, TLS, handshake response and the authentication exchange with
//! sequence ids re-numbered, then a plain byte copy for the command phase.

use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at, Instant};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::read_ahead::ReadAhead;

use super::handshake::{self, Greeting, Response};
use super::packet::{self, Header, Shift, ERR, HEADER_LEN};
use super::ProtocolError;
use crate::metrics::ConnResult;
use crate::proxy::{self, ClosePolicy, Counters, End, Pipe};
use crate::reason::FailureReason;
use crate::route::{self, ConnReport, Route};
use crate::tls;

// Error codes of the ERR packets the sidecar itself sends. They are server
// error codes: clients (MariaDB Connector/C) turn a client-range code
// (2000-2999) received in an ERR packet into "malformed packet".
/// `ER_HANDSHAKE_ERROR` ("Bad handshake"), SQL state 08S01 (communication
/// link failure): the server is unreachable, or the handshake broke.
const ER_HANDSHAKE_ERROR: u16 = 1043;
/// SQL state of [`ER_HANDSHAKE_ERROR`].
const COMMUNICATION: &[u8; 5] = b"08S01";
/// `ER_ACCESS_DENIED_ERROR`, SQL state 28000: a certificate or identity
/// check refused the server.
const ER_ACCESS_DENIED_ERROR: u16 = 1045;
/// SQL state of [`ER_ACCESS_DENIED_ERROR`].
const ACCESS_DENIED: &[u8; 5] = b"28000";
/// MariaDB's `ER_SECURE_TRANSPORT_REQUIRED`.
const ER_SECURE_TRANSPORT_REQUIRED: u16 = 4036;

/// Why the connection phase stopped.
#[derive(Debug)]
enum Fail {
    Protocol(ProtocolError),
    Io(io::Error),
    Timeout,
}

impl From<ProtocolError> for Fail {
    fn from(e: ProtocolError) -> Self {
        Fail::Protocol(e)
    }
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Self {
        Fail::Io(e)
    }
}

impl Fail {
    fn reason(&self) -> FailureReason {
        match self {
            Fail::Protocol(_) => FailureReason::Protocol,
            Fail::Io(e) => FailureReason::from_io(e),
            Fail::Timeout => FailureReason::Timeout,
        }
    }

    /// Records the failure in `report`; `None` (the set-up's result) for
    /// convenience.
    fn record<T>(self, report: &mut ConnReport) -> Option<T> {
        let reason = self.reason();
        let detail = match self {
            Fail::Protocol(e) => format!("mysql: {e}"),
            Fail::Io(e) => format!("mysql handshake: {e}"),
            Fail::Timeout => "mysql handshake timed out".to_string(),
        };
        route::handshake_failed(report, reason, detail);
        None
    }
}

/// Reads one connection-phase packet exactly (no byte past it is consumed,
/// so TLS can start right after), refusing lengths over the handshake cap.
async fn read_packet<R: AsyncRead + Unpin>(
    r: &mut R,
    what: &'static str,
) -> Result<(u8, Vec<u8>), Fail> {
    let mut head = [0u8; HEADER_LEN];
    r.read_exact(&mut head).await.map_err(|e| eof_as(e, what))?;
    let h = Header::decode_bounded(head)?;
    let mut payload = vec![0u8; h.len];
    r.read_exact(&mut payload)
        .await
        .map_err(|e| eof_as(e, what))?;
    Ok((h.seq, payload))
}

fn eof_as(e: io::Error, what: &'static str) -> Fail {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        Fail::Protocol(ProtocolError::Truncated { what })
    } else {
        Fail::Io(e)
    }
}

async fn write_packet<W: AsyncWrite + Unpin>(
    w: &mut W,
    seq: u8,
    payload: &[u8],
) -> Result<(), Fail> {
    w.write_all(&packet::encode(seq, payload)?).await?;
    w.flush().await?;
    Ok(())
}

/// Tells a plaintext client why it is refused (best effort: it may be gone).
async fn refuse<W: AsyncWrite + Unpin>(w: &mut W, seq: u8, code: u16, state: &[u8; 5], msg: &str) {
    let payload = packet::err_payload(code, state, &format!("minica-sidecar: {msg}"));
    let _ = write_packet(w, seq, &payload).await;
}

/// Reads the server's greeting. An ERR packet (e.g. "host blocked") is
/// relayed to the client unchanged and ends the connection.
async fn read_greeting<C: AsyncWrite + Unpin>(
    server: &mut TcpStream,
    client: &mut C,
) -> Result<(u8, Vec<u8>, Greeting), Fail> {
    let (seq, payload) = match read_packet(server, "greeting").await {
        Ok(p) => p,
        Err(f) => {
            let msg = match &f {
                Fail::Protocol(e) => format!("bad greeting from the MySQL server: {e}"),
                _ => "no greeting from the MySQL server".to_string(),
            };
            refuse(client, 0, ER_HANDSHAKE_ERROR, COMMUNICATION, &msg).await;
            return Err(f);
        }
    };
    if payload.first() == Some(&ERR) {
        let _ = write_packet(client, seq, &payload).await;
        let (code, message) = packet::describe_err(&payload).unwrap_or_default();
        return Err(ProtocolError::ServerRefused { code, message }.into());
    }
    match Greeting::parse(&payload) {
        Ok(g) => Ok((seq, payload, g)),
        Err(e) => {
            refuse(client, 0, ER_HANDSHAKE_ERROR, COMMUNICATION, &e.to_string()).await;
            Err(e.into())
        }
    }
}

/// Outbound: a plaintext MySQL client on `client`; mutual TLS to the
/// server after its greeting.
pub async fn outbound(
    route: &Route,
    cfg: Arc<rustls::ClientConfig>,
    client: TcpStream,
    report: &mut ConnReport,
) {
    // The set-up's state lives in a box freed once it is done (see
    // `route::inbound`): an idle session holds only the streams.
    let Some((client, tls)) = Box::pin(outbound_setup(route, cfg, client, report)).await else {
        return;
    };
    let c = route::counters(&route.metrics);
    let idle = route.settings.idle_timeout;
    let mut pipe = proxy::pipe(client, tls, idle, &c, ClosePolicy::Framed);
    relay_session(&mut pipe, Shift::ServerAhead, idle, &c, report).await;
}

/// The connection phase of [`outbound`] up to the handshake response sent
/// inside TLS. `None` once `report` says why it failed.
async fn outbound_setup(
    route: &Route,
    cfg: Arc<rustls::ClientConfig>,
    mut client: TcpStream,
    report: &mut ConnReport,
) -> Option<(
    TcpStream,
    tokio_rustls::client::TlsStream<ReadAhead<TcpStream>>,
)> {
    let s = &route.settings;
    let Some(name) = s.server_name.clone() else {
        report.result = Some(ConnResult::Error);
        report.detail = Some("internal: outbound route without a server name".into());
        return None;
    };
    let deadline = Instant::now() + s.handshake_timeout;
    let mut upstream = match route::connect_upstream(route).await {
        Ok(u) => u,
        Err(e) => {
            refuse(&mut client, 0, ER_HANDSHAKE_ERROR, COMMUNICATION, &e).await;
            report.result = Some(ConnResult::UpstreamFailed);
            report.detail = Some(e);
            return None;
        }
    };
    // Greeting → client (without CLIENT_SSL); client's response; SSLRequest.
    let mut greeted = false;
    let pre = timeout_at(deadline, async {
        let (seq, payload, greeting) = read_greeting(&mut upstream, &mut client).await?;
        greeted = true;
        if !greeting.offers_tls() {
            let e = ProtocolError::ServerWithoutTls;
            refuse(
                &mut client,
                0,
                ER_HANDSHAKE_ERROR,
                COMMUNICATION,
                &e.to_string(),
            )
            .await;
            return Err(e.into());
        }
        write_packet(&mut client, seq, &greeting.with_tls(&payload, false)).await?;
        let (cseq, response) = read_packet(&mut client, "handshake response").await?;
        let parsed = Response::parse(&response).and_then(|r| {
            if r.ssl_request {
                Err(ProtocolError::ClientWantsTls)
            } else {
                Ok(r)
            }
        });
        if let Err(e) = parsed {
            let next = cseq.wrapping_add(1);
            refuse(
                &mut client,
                next,
                ER_HANDSHAKE_ERROR,
                COMMUNICATION,
                &e.to_string(),
            )
            .await;
            return Err(e.into());
        }
        let ssl_request = handshake::ssl_request_for(&response)?;
        // The SSLRequest takes the client's sequence id (1); the response
        // follows it inside TLS with the next one.
        write_packet(&mut upstream, cseq, &ssl_request).await?;
        Ok::<_, Fail>((cseq, response))
    })
    .await;
    let (cseq, mut response) = match pre {
        Ok(Ok(r)) => r,
        Ok(Err(f)) => return f.record(report),
        Err(_) => {
            if !greeted {
                let msg = "the MySQL server sent no greeting in time";
                refuse(&mut client, 0, ER_HANDSHAKE_ERROR, COMMUNICATION, msg).await;
            }
            return Fail::Timeout.record(report);
        }
    };
    let began = Instant::now();
    let remaining = deadline.saturating_duration_since(began);
    let connect = timeout(
        remaining,
        TlsConnector::from(cfg).connect(name, ReadAhead::new(upstream)),
    );
    let (connected, claimed) = tls::capture_peer_identity(connect).await;
    report.identity = claimed;
    let mut tls = match connected {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            let reason = FailureReason::from_io(&e);
            let msg = format!("TLS to the MySQL server failed ({reason}): {e}");
            let (code, state) = match reason {
                FailureReason::Protocol | FailureReason::Timeout | FailureReason::Other => {
                    (ER_HANDSHAKE_ERROR, COMMUNICATION)
                }
                _ => (ER_ACCESS_DENIED_ERROR, ACCESS_DENIED),
            };
            let next = cseq.wrapping_add(1);
            refuse(&mut client, next, code, state, &msg).await;
            route::handshake_failed(report, reason, e.to_string());
            return None;
        }
        Err(_) => {
            let next = cseq.wrapping_add(1);
            let msg = "TLS handshake with the MySQL server timed out";
            refuse(&mut client, next, ER_HANDSHAKE_ERROR, COMMUNICATION, msg).await;
            return Fail::Timeout.record(report);
        }
    };
    route.metrics.handshake_done(began.elapsed());
    route::describe(tls.get_ref().1, report);
    // The full response, now inside TLS; a real TLS client keeps CLIENT_SSL.
    handshake::set_client_tls(&mut response, true);
    let seq = Shift::ServerAhead.to_server(cseq);
    if let Err(f) = write_packet(&mut tls, seq, &response).await {
        return f.record(report);
    }
    Some((client, tls))
}

/// Inbound: a TLS-capable MySQL client on `client` (TLS after the
/// greeting); plaintext to the local server.
pub async fn inbound(
    route: &Route,
    cfg: Arc<rustls::ServerConfig>,
    client: TcpStream,
    report: &mut ConnReport,
) {
    // As in `outbound`: the set-up's state lives in a box freed once done.
    let Some((tls, upstream)) = Box::pin(inbound_setup(route, cfg, client, report)).await else {
        return;
    };
    let c = route::counters(&route.metrics);
    let idle = route.settings.idle_timeout;
    let mut pipe = proxy::pipe(tls, upstream, idle, &c, ClosePolicy::Framed);
    relay_session(&mut pipe, Shift::ServerBehind, idle, &c, report).await;
}

/// The connection phase of [`inbound`] up to the handshake response sent
/// to the server. `None` once `report` says why it failed.
async fn inbound_setup(
    route: &Route,
    cfg: Arc<rustls::ServerConfig>,
    mut client: TcpStream,
    report: &mut ConnReport,
) -> Option<(
    tokio_rustls::server::TlsStream<ReadAhead<TcpStream>>,
    TcpStream,
)> {
    let s = &route.settings;
    let deadline = Instant::now() + s.handshake_timeout;
    // The server's greeting carries the scramble the client's password
    // proof is computed from: the upstream is opened before TLS, but no
    // byte from the client reaches it before the client is verified.
    let mut upstream = match route::connect_upstream(route).await {
        Ok(u) => u,
        Err(e) => {
            refuse(&mut client, 0, ER_HANDSHAKE_ERROR, COMMUNICATION, &e).await;
            report.result = Some(ConnResult::UpstreamFailed);
            report.detail = Some(e);
            return None;
        }
    };
    let pre = timeout_at(deadline, async {
        let (seq, payload, greeting) = read_greeting(&mut upstream, &mut client).await?;
        write_packet(&mut client, seq, &greeting.with_tls(&payload, true)).await?;
        let (cseq, first) = read_packet(&mut client, "SSL request").await?;
        let parsed = Response::parse(&first).and_then(|r| {
            if r.ssl_request {
                Ok(r)
            } else {
                Err(ProtocolError::ClientWithoutTls)
            }
        });
        if let Err(e) = parsed {
            let msg = "TLS with a client certificate is required on this port";
            let next = cseq.wrapping_add(1);
            refuse(
                &mut client,
                next,
                ER_SECURE_TRANSPORT_REQUIRED,
                b"08004",
                msg,
            )
            .await;
            return Err(e.into());
        }
        Ok::<_, Fail>(())
    })
    .await;
    match pre {
        Ok(Ok(())) => {}
        Ok(Err(f)) => return f.record(report),
        Err(_) => return Fail::Timeout.record(report),
    }
    let began = Instant::now();
    let remaining = deadline.saturating_duration_since(began);
    let accept = timeout(
        remaining,
        TlsAcceptor::from(cfg).accept(ReadAhead::new(client)),
    );
    let (accepted, claimed) = tls::capture_peer_identity(accept).await;
    report.identity = claimed;
    let mut tls = match accepted {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            route::handshake_failed(report, FailureReason::from_io(&e), e.to_string());
            return None;
        }
        Err(_) => return Fail::Timeout.record(report),
    };
    route.metrics.handshake_done(began.elapsed());
    route::describe(tls.get_ref().1, report);
    let response = timeout_at(deadline, async {
        let (seq, mut response) = read_packet(&mut tls, "handshake response").await?;
        handshake::set_client_tls(&mut response, false);
        Response::parse(&response)?;
        Ok::<_, Fail>((seq, response))
    })
    .await;
    let (seq, response) = match response {
        Ok(Ok(r)) => r,
        Ok(Err(f)) => return f.record(report),
        Err(_) => return Fail::Timeout.record(report),
    };
    if let Err(f) = write_packet(&mut upstream, Shift::ServerBehind.to_server(seq), &response).await
    {
        return f.record(report);
    }
    Some((tls, upstream))
}

/// After the handshake response went up: relays the authentication
/// exchange (re-numbered with `shift`) over the streams of `pipe`, then runs
/// `pipe` for the rest of the session (bytes as they are), and records how
/// the connection ended. (`pipe` owns the streams throughout, and is
/// borrowed, so that they are stored once in the connection's task.)
async fn relay_session<C, S>(
    pipe: &mut Pipe<'_, C, S>,
    shift: Shift,
    idle: Option<Duration>,
    c: &Counters<'_>,
    report: &mut ConnReport,
) where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (client, server) = pipe.streams_mut();
    // Boxed: its buffers and state are gone once the command phase starts.
    let end = match Box::pin(relay_auth(client, server, shift, idle, c)).await {
        Ok(Some(end)) => end,
        Ok(None) => pipe.await,
        Err(f) => {
            f.record::<()>(report);
            return;
        }
    };
    route::finish(report, end, c);
}

/// The bytes a read returned, 0 at the end of the stream. A TLS peer gone
/// without close_notify is an end like any other for MySQL (see
/// `ClosePolicy::Framed`).
fn read_len(read: io::Result<usize>) -> Result<usize, Fail> {
    match read {
        Ok(n) => Ok(n),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// Relays the authentication exchange, re-numbering every packet with
/// `shift`, until the client sends a packet with sequence id 0 (the first
/// command) or either side closes. Returns `None` to go on with a plain
/// copy, or how the connection ended.
async fn relay_auth<C, S>(
    client: &mut C,
    server: &mut S,
    shift: Shift,
    idle: Option<Duration>,
    counters: &Counters<'_>,
) -> Result<Option<End>, Fail>
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut from_client: Vec<u8> = Vec::with_capacity(1024);
    let mut from_server: Vec<u8> = Vec::with_capacity(1024);
    let idle = idle.unwrap_or(Duration::MAX);
    loop {
        let quiet = tokio::time::sleep(idle);
        tokio::select! {
            read = client.read_buf(&mut from_client) => {
                let n = read_len(read)?;
                let r = packet::rewrite_frames(&mut from_client, |q| shift.to_server(q), true)?;
                // At EOF a partial packet goes on as it is; so does
                // everything from the first command on.
                let upto = if n == 0 || r.command_phase { from_client.len() } else { r.ready };
                forward(server, &mut from_client, upto, &counters.to_upstream, counters.route_to_upstream).await?;
                if n == 0 || r.command_phase {
                    let rest = from_server.len();
                    forward(client, &mut from_server, rest, &counters.from_upstream, counters.route_from_upstream).await?;
                    return Ok(None);
                }
            }
            read = server.read_buf(&mut from_server) => {
                let n = read_len(read)?;
                let r = packet::rewrite_frames(&mut from_server, |q| shift.to_client(q), false)?;
                let upto = if n == 0 { from_server.len() } else { r.ready };
                forward(client, &mut from_server, upto, &counters.from_upstream, counters.route_from_upstream).await?;
                if n == 0 {
                    let rest = from_client.len();
                    forward(server, &mut from_client, rest, &counters.to_upstream, counters.route_to_upstream).await?;
                    return Ok(None);
                }
            }
            () = quiet => return Ok(Some(End::IdleTimeout)),
        }
    }
}

/// Writes the first `upto` bytes of `buf` to `w`, counts and removes them.
async fn forward<W: AsyncWrite + Unpin>(
    w: &mut W,
    buf: &mut Vec<u8>,
    upto: usize,
    count: &std::sync::atomic::AtomicU64,
    route_count: &std::sync::atomic::AtomicU64,
) -> Result<(), Fail> {
    if upto == 0 {
        return Ok(());
    }
    w.write_all(&buf[..upto]).await?;
    w.flush().await?;
    let moved = upto as u64;
    count.fetch_add(moved, Relaxed);
    route_count.fetch_add(moved, Relaxed);
    buf.drain(..upto);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;
    use tokio::io::duplex;

    fn counters<'a>(a: &'a AtomicU64, b: &'a AtomicU64) -> Counters<'a> {
        Counters {
            to_upstream: AtomicU64::new(0),
            from_upstream: AtomicU64::new(0),
            route_to_upstream: a,
            route_from_upstream: b,
        }
    }

    async fn read_one<R: AsyncRead + Unpin>(r: &mut R) -> (u8, Vec<u8>) {
        match read_packet(r, "test").await {
            Ok(p) => p,
            Err(e) => panic!("{e:?}"),
        }
    }

    #[tokio::test]
    async fn relay_renumbers_the_auth_exchange_then_hands_over() {
        let (mut client, mut app) = duplex(4096);
        let (mut server, mut db) = duplex(4096);
        let (a, b) = (AtomicU64::new(0), AtomicU64::new(0));
        let c = counters(&a, &b);
        let peers = async {
            // Outbound: the server leg is one ahead (SSLRequest was 1, the
            // response 2), so the server's auth switch is 3 and the app sees 2.
            db.write_all(&packet::encode(3, b"\xfeauth_switch").unwrap())
                .await
                .unwrap();
            assert_eq!(read_one(&mut app).await, (2, b"\xfeauth_switch".to_vec()));
            app.write_all(&packet::encode(3, b"proof").unwrap())
                .await
                .unwrap();
            assert_eq!(read_one(&mut db).await, (4, b"proof".to_vec()));
            db.write_all(&packet::encode(5, &[0, 0, 0, 2, 0]).unwrap())
                .await
                .unwrap();
            assert_eq!(read_one(&mut app).await, (4, vec![0, 0, 0, 2, 0]));
            // The first command (sequence 0) and what follows pass unchanged.
            let mut cmd = packet::encode(0, b"\x03SELECT 1").unwrap();
            cmd.extend(packet::encode(0, b"\x01").unwrap());
            app.write_all(&cmd).await.unwrap();
        };
        let (out, ()) = tokio::join!(
            relay_auth(&mut client, &mut server, Shift::ServerAhead, None, &c),
            peers
        );
        assert!(matches!(out, Ok(None)), "{out:?}");
        // Whatever of the command phase the relay read went on unchanged.
        drop(client);
        drop(server);
        let mut rest = Vec::new();
        db.read_to_end(&mut rest).await.unwrap();
        let mut want = packet::encode(0, b"\x03SELECT 1").unwrap();
        want.extend(packet::encode(0, b"\x01").unwrap());
        assert!(want.starts_with(&rest) && !rest.is_empty(), "{rest:?}");
        assert!(c.to_upstream.load(Relaxed) >= 9);
    }

    #[tokio::test]
    async fn relay_refuses_an_oversized_auth_packet() {
        let (mut client, mut app) = duplex(4096);
        let (mut server, _db) = duplex(4096);
        let (a, b) = (AtomicU64::new(0), AtomicU64::new(0));
        let c = counters(&a, &b);
        app.write_all(&[0xFF, 0xFF, 0xFF, 3]).await.unwrap();
        let out = relay_auth(&mut client, &mut server, Shift::ServerBehind, None, &c).await;
        assert!(
            matches!(out, Err(Fail::Protocol(ProtocolError::Oversized { .. }))),
            "{out:?}"
        );
    }

    #[tokio::test]
    async fn reads_are_bounded_and_exact() {
        let (mut r, mut w) = duplex(64);
        w.write_all(&[0xFF, 0xFF, 0xFF, 0]).await.unwrap();
        assert!(matches!(
            read_packet(&mut r, "greeting").await,
            Err(Fail::Protocol(ProtocolError::Oversized { .. }))
        ));
        let (mut r, mut w) = duplex(64);
        w.write_all(&[5, 0, 0, 0, b'a']).await.unwrap();
        drop(w);
        assert!(matches!(
            read_packet(&mut r, "greeting").await,
            Err(Fail::Protocol(ProtocolError::Truncated {
                what: "greeting"
            }))
        ));
        // No byte past the packet is consumed (TLS starts right after it).
        let (mut r, mut w) = duplex(64);
        w.write_all(&[1, 0, 0, 1, b'x', 0x16, 0x03]).await.unwrap();
        assert_eq!(read_one(&mut r).await, (1, b"x".to_vec()));
        let mut next = [0u8; 2];
        r.read_exact(&mut next).await.unwrap();
        assert_eq!(next, [0x16, 0x03]);
    }
}

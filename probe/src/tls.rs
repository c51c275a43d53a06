//! The rustls side of a probe: a configuration that completes the
//! handshake whatever the chain (and records it), records the server's
//! CertificateRequest and the session tickets, and a blocking driver with
//! a deadline.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rustls::client::{
    ClientSessionMemoryCache, ClientSessionStore, ResolvesClientCert, Tls12ClientSessionValue,
    Tls13ClientSessionValue,
};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ClientConnection, NamedGroup, SignatureScheme};

use minica_pki::recorder::ChainRecorder;

use crate::Error;

/// What the handshake showed, recorded by the configuration's callbacks.
#[derive(Debug)]
pub(crate) struct Observed {
    /// Records the certificates the server sent in the first handshake.
    chain: Arc<ChainRecorder>,
    /// The CA names of the CertificateRequest; `Some` when one arrived.
    requested: Mutex<Option<Vec<Vec<u8>>>>,
    /// Whether a session (a TLS 1.3 ticket or a TLS 1.2 session) was stored.
    session_stored: AtomicBool,
}

impl Observed {
    pub(crate) fn chain(&self) -> Option<Vec<CertificateDer<'static>>> {
        self.chain.chain()
    }

    pub(crate) fn requested(&self) -> Option<Vec<Vec<u8>>> {
        self.requested
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn session_stored(&self) -> bool {
        self.session_stored.load(Ordering::SeqCst)
    }
}

#[derive(Debug)]
struct RecordingClientAuth {
    key: Option<Arc<CertifiedKey>>,
    observed: Arc<Observed>,
}

impl ResolvesClientCert for RecordingClientAuth {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let mut requested = self
            .observed
            .requested
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if requested.is_none() {
            *requested = Some(root_hint_subjects.iter().map(|s| s.to_vec()).collect());
        }
        self.key.clone()
    }

    fn has_certs(&self) -> bool {
        self.key.is_some()
    }
}

/// An in-memory session store that notes when a session is stored.
#[derive(Debug)]
struct RecordingStore {
    inner: ClientSessionMemoryCache,
    observed: Arc<Observed>,
}

impl ClientSessionStore for RecordingStore {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.inner.set_kx_hint(server_name, group);
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.inner.kx_hint(server_name)
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.observed.session_stored.store(true, Ordering::SeqCst);
        self.inner.set_tls12_session(server_name, value);
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.inner.tls12_session(server_name)
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.inner.remove_tls12_session(server_name);
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        self.observed.session_stored.store(true, Ordering::SeqCst);
        self.inner.insert_tls13_ticket(server_name, value);
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        self.inner.take_tls13_ticket(server_name)
    }
}

pub use minica_pki::files::ClientIdentity;

/// Which TLS versions to offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Versions {
    /// TLS 1.3 only (the default, like the sidecar).
    #[default]
    Tls13,
    /// TLS 1.3 and TLS 1.2 (`--tls12`).
    Tls13And12,
}

/// ALPN protocols offered: the two HTTP ones. A server without ALPN
/// ignores them; one that refuses them is probed again without ALPN.
pub(crate) const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Builds the probe's client configuration.
pub(crate) fn config(
    versions: Versions,
    identity: Option<&ClientIdentity>,
    alpn: bool,
) -> Result<(Arc<ClientConfig>, Arc<Observed>), Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let observed = Arc::new(Observed {
        chain: Arc::new(ChainRecorder::new(provider.clone())),
        requested: Mutex::default(),
        session_stored: AtomicBool::default(),
    });
    let key = match identity {
        Some(id) => {
            let signing = provider
                .key_provider
                .load_private_key(id.key.clone_key())
                .map_err(|source| Error::ClientKey { source })?;
            Some(Arc::new(CertifiedKey::new(id.chain.clone(), signing)))
        }
        None => None,
    };
    let list: &[&'static rustls::SupportedProtocolVersion] = match versions {
        Versions::Tls13 => &[&rustls::version::TLS13],
        Versions::Tls13And12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(list)
        .map_err(|source| Error::Config { source })?
        .dangerous()
        .with_custom_certificate_verifier(observed.chain.clone())
        .with_client_cert_resolver(Arc::new(RecordingClientAuth {
            key,
            observed: observed.clone(),
        }));
    config.resumption = rustls::client::Resumption::store(Arc::new(RecordingStore {
        inner: ClientSessionMemoryCache::new(8),
        observed: observed.clone(),
    }));
    if alpn {
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    }
    Ok((Arc::new(config), observed))
}

/// The first bytes the peer sent, kept to recognise a peer that does not
/// speak TLS.
pub(crate) struct Tap<'a> {
    pub(crate) stream: &'a mut TcpStream,
    pub(crate) first: Vec<u8>,
}

/// How many of the peer's first bytes are kept.
const TAP_BYTES: usize = 256;

impl Read for Tap<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stream.read(buf)?;
        if self.first.len() < TAP_BYTES {
            let take = n.min(TAP_BYTES - self.first.len());
            self.first.extend_from_slice(&buf[..take]);
        }
        Ok(n)
    }
}

impl Write for Tap<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// Whether bytes could start a TLS record: content type 20–24, major
/// version 3.
pub(crate) fn looks_like_tls(first: &[u8]) -> bool {
    match first {
        [] => true,
        [t] => (20..=24).contains(t),
        [t, major, ..] => (20..=24).contains(t) && *major == 3,
    }
}

/// Why driving the connection stopped.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The deadline passed.
    Timeout,
    /// The peer closed the TCP connection.
    Eof,
    /// rustls refused (an alert from the peer, or a local error).
    Tls(rustls::Error),
    /// Another I/O error (reset, ...).
    Io(io::Error),
}

/// The time left until `deadline`; `None` once it has passed.
pub(crate) fn remaining(deadline: Instant) -> Option<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    (!left.is_zero()).then_some(left)
}

fn io_stop(e: io::Error) -> Stop {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Stop::Timeout,
        io::ErrorKind::UnexpectedEof => Stop::Eof,
        _ => match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
            Some(tls) => Stop::Tls(tls.clone()),
            None => Stop::Io(e),
        },
    }
}

/// Writes everything rustls has to send.
fn flush(conn: &mut ClientConnection, tap: &mut Tap<'_>, deadline: Instant) -> Result<(), Stop> {
    while conn.wants_write() {
        let left = remaining(deadline).ok_or(Stop::Timeout)?;
        tap.stream.set_write_timeout(Some(left)).map_err(Stop::Io)?;
        conn.write_tls(tap).map_err(io_stop)?;
    }
    Ok(())
}

/// Reads one batch of records and processes them.
fn read_some(
    conn: &mut ClientConnection,
    tap: &mut Tap<'_>,
    deadline: Instant,
) -> Result<(), Stop> {
    let left = remaining(deadline).ok_or(Stop::Timeout)?;
    tap.stream.set_read_timeout(Some(left)).map_err(Stop::Io)?;
    let n = conn.read_tls(tap).map_err(io_stop)?;
    if n == 0 {
        return Err(Stop::Eof);
    }
    if let Err(e) = conn.process_new_packets() {
        // Best effort: tell the peer (the alert rustls queued).
        let _ = flush(conn, tap, deadline);
        return Err(Stop::Tls(e));
    }
    // Application data is not expected here; drop it.
    let mut sink = [0u8; 4096];
    loop {
        match conn.reader().read(&mut sink) {
            Ok(0) => return Err(Stop::Eof),
            Ok(_) => {}
            Err(_) => return Ok(()),
        }
    }
}

/// Runs the handshake until it completes or `deadline` passes.
pub(crate) fn handshake(
    conn: &mut ClientConnection,
    tap: &mut Tap<'_>,
    deadline: Instant,
) -> Result<(), Stop> {
    loop {
        flush(conn, tap, deadline)?;
        if !conn.is_handshaking() {
            return Ok(());
        }
        read_some(conn, tap, deadline)?;
    }
}

/// After the handshake: reads until `done()` (e.g. a ticket arrived), the
/// peer ends the connection, or `until` passes (which is not an error).
pub(crate) fn linger(
    conn: &mut ClientConnection,
    tap: &mut Tap<'_>,
    until: Instant,
    done: impl Fn() -> bool,
) -> Result<(), Stop> {
    while !done() {
        match read_some(conn, tap, until) {
            Ok(()) => {}
            Err(Stop::Timeout) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sends close_notify (best effort, bounded).
pub(crate) fn close(conn: &mut ClientConnection, tap: &mut Tap<'_>, deadline: Instant) {
    conn.send_close_notify();
    let _ = flush(conn, tap, deadline);
    let _ = tap.stream.shutdown(std::net::Shutdown::Write);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_records_are_told_from_other_protocols() {
        assert!(looks_like_tls(&[0x16, 0x03, 0x03, 0x00, 0x7a]));
        assert!(looks_like_tls(&[0x15, 0x03, 0x03, 0x00, 0x02, 2, 70]));
        assert!(looks_like_tls(&[]));
        assert!(!looks_like_tls(b"HTTP/1.1 400 Bad Request"));
        assert!(!looks_like_tls(&[0x5b, 0, 0, 0, 10]));
        assert!(!looks_like_tls(b"SSH-2.0"));
    }
}

//! Running `minica-sidecar` processes and the peers around them: small
//! std-thread backends, a rustls client, bounded polling of the admin
//! endpoint. Every child process is killed on drop.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::fixtures::Leaf;
use crate::support::{self, Ran};

/// Longest wait for anything to become ready.
pub(crate) const READY_LIMIT: Duration = Duration::from_secs(20);
/// Pause between polls.
pub(crate) const POLL: Duration = Duration::from_millis(50);

/// A child process killed (and reaped) on drop; its stderr goes to a file.
pub(crate) struct Proc {
    pub(crate) child: Child,
    pub(crate) log: PathBuf,
}

impl Proc {
    /// Its stderr so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal (`TERM`, `HUP`) with kill(1).
    pub(crate) fn signal(&self, sig: &str) {
        let ran = support::run(
            Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(self.child.id().to_string()),
        );
        assert_eq!(ran.code, Some(0), "kill -{sig}: {ran}");
    }

    /// Waits up to `limit` for the exit code.
    pub(crate) fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            thread::sleep(POLL);
        }
        None
    }

    /// Panics with the log if the process has exited.
    pub(crate) fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("process exited early ({status}):\n{}", self.log());
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a command with stderr (and stdout) captured to `log`.
pub(crate) fn spawn(mut cmd: Command, log: &Path) -> Proc {
    let file = std::fs::File::create(log).unwrap();
    let out = file.try_clone().unwrap();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(file))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    Proc {
        child,
        log: log.to_path_buf(),
    }
}

/// Starts `minica-sidecar ARGS`, logging to `dir/NAME.log`.
pub(crate) fn sidecar<I, S>(dir: &Path, name: &str, args: I) -> Proc
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(support::bin("minica-sidecar"));
    cmd.args(args).env("RUST_LOG", "info");
    spawn(cmd, &dir.join(format!("{name}.log")))
}

/// Runs `minica-sidecar ARGS` to completion (for commands that exit).
pub(crate) fn sidecar_run<I, S>(args: I) -> Ran
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(support::bin("minica-sidecar"));
    cmd.args(args);
    run_bounded(cmd, b"", Duration::from_secs(30))
}

/// Runs a command with `input` on stdin, killing it after `limit`.
pub(crate) fn run_bounded(mut cmd: Command, input: &[u8], limit: Duration) -> Ran {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(input);
    drop(stdin);
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stdout.read_to_end(&mut s);
        s
    });
    let err = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        s
    });
    let end = Instant::now() + limit;
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(POLL);
    };
    Ran {
        code,
        stdout: String::from_utf8_lossy(&out.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&err.join().unwrap()).into_owned(),
    }
}

/// A 127.0.0.1 address nothing listens on, for a child process to bind.
///
/// A port from `bind(":0")` would come from the kernel's ephemeral range,
/// where the outgoing connections of concurrent tests (the abuse tests open
/// a thousand) may take it before the child binds it. So the ports come from
/// below that range (20000-32767), each handed out once per run, and are
/// checked to be free.
pub(crate) fn free_addr() -> SocketAddr {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_768;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    // Start at a place that depends on the process, so that two runs at the
    // same time rarely walk the same ports.
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id() % COUNT,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..COUNT {
        let n = NEXT.fetch_add(1, Ordering::SeqCst) % COUNT;
        let port = u16::try_from(FIRST + n).unwrap();
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            return listener.local_addr().unwrap();
        }
    }
    panic!("no free port in 127.0.0.1:{FIRST}-{}", FIRST + COUNT - 1);
}

/// A plain HTTP/1.0 GET; `None` when the connection fails.
pub(crate) fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// Waits until `/readyz` answers 200.
pub(crate) fn wait_ready(proc: &mut Proc, admin: SocketAddr) {
    let end = Instant::now() + READY_LIMIT;
    while Instant::now() < end {
        proc.assert_running();
        if let Some((200, _)) = http_get(admin, "/readyz") {
            return;
        }
        thread::sleep(POLL);
    }
    panic!("sidecar not ready at {admin}:\n{}", proc.log());
}

/// The value of the metric sample `series` (name with labels).
pub(crate) fn metric(admin: SocketAddr, series: &str) -> Option<f64> {
    let (_, body) = http_get(admin, "/metrics")?;
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Waits (bounded) until the metric reaches at least `want`; returns it.
pub(crate) fn wait_metric(admin: SocketAddr, series: &str, want: f64) -> f64 {
    let end = Instant::now() + READY_LIMIT;
    let mut last = None;
    while Instant::now() < end {
        last = metric(admin, series);
        if last.is_some_and(|v| v >= want) {
            return last.unwrap_or_default();
        }
        thread::sleep(POLL);
    }
    let all = http_get(admin, "/metrics")
        .map(|(_, b)| b)
        .unwrap_or_default();
    panic!("{series} is {last:?}, wanted {want}\n{all}");
}

/// Waits (bounded) until `f` is true.
pub(crate) fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + READY_LIMIT;
    while Instant::now() < end {
        if f() {
            return;
        }
        thread::sleep(POLL);
    }
    panic!("timed out waiting for {what}");
}

fn serve_forever(listener: TcpListener, handler: impl Fn(TcpStream) + Send + Sync + 'static) {
    let handler = Arc::new(handler);
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let h = handler.clone();
            thread::spawn(move || h(stream));
        }
    });
}

/// An HTTP backend that answers every request with `body` and closes.
pub(crate) fn http_backend(body: &'static str) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    serve_forever(l, move |mut s| {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let _ = write!(
            s,
            "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let _ = s.shutdown(std::net::Shutdown::Write);
        // Wait for the peer to close, so no RST cuts the reply.
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = s.read(&mut buf);
    });
    addr
}

/// A backend that echoes each line back.
pub(crate) fn echo_backend() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    serve_forever(l, |s| {
        let mut w = s.try_clone().unwrap();
        let r = BufReader::new(s);
        for line in r.lines() {
            let Ok(line) = line else { break };
            if writeln!(w, "{line}").is_err() {
                break;
            }
        }
        let _ = w.shutdown(std::net::Shutdown::Write);
    });
    addr
}

/// A backend that sends `chunks` blocks of 1000 bytes, `delay` apart, then
/// closes.
pub(crate) fn slow_backend(chunks: usize, delay: Duration) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    serve_forever(l, move |mut s| {
        for _ in 0..chunks {
            if s.write_all(&[b'x'; 1000]).is_err() {
                return;
            }
            thread::sleep(delay);
        }
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut buf = [0u8; 16];
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = s.read(&mut buf);
    });
    addr
}

/// A backend that records the first bytes of its first connection (until
/// `\n`), then answers `ok\n`.
pub(crate) fn capture_backend() -> (SocketAddr, std::sync::mpsc::Receiver<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    serve_forever(l, move |mut s| {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        while !got.ends_with(b"\n") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        let _ = tx.lock().unwrap().send(got);
        let _ = s.write_all(b"ok\n");
    });
    (addr, rx)
}

/// A rustls client connection with a leaf's identity.
pub(crate) type TlsClient = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Connects with mTLS as `leaf` to `addr` (server name `localhost`) and
/// completes the handshake.
pub(crate) fn tls_connect(leaf: &Leaf, addr: SocketAddr) -> std::io::Result<TlsClient> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(leaf.file("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let chain: Vec<_> = CertificateDer::pem_file_iter(leaf.file("chain.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(leaf.file("key.pem")).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    let conn =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap())
            .unwrap();
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// The serial (lowercase hex) of the server certificate of a connection.
pub(crate) fn peer_serial(tls: &TlsClient) -> String {
    let der = &tls.conn.peer_certificates().unwrap()[0];
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    cert.raw_serial()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes a line and reads one back.
pub(crate) fn echo_line(tls: &mut TlsClient, line: &str) -> std::io::Result<String> {
    writeln!(tls, "{line}")?;
    tls.flush()?;
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\n") {
        if tls.read(&mut byte)? == 0 {
            break;
        }
        got.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&got).trim_end().to_string())
}

/// `openssl s_client` against `addr`, presenting `leaf` (or no certificate),
/// sending one HTTP request; returns what it printed.
pub(crate) fn s_client(addr: SocketAddr, ca: &Path, leaf: Option<&Leaf>) -> Ran {
    support::require_tool("openssl");
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect"])
        .arg(addr.to_string())
        .args([
            "-servername",
            "localhost",
            "-verify_return_error",
            "-ign_eof",
            "-CAfile",
        ])
        .arg(ca);
    if let Some(leaf) = leaf {
        cmd.arg("-cert")
            .arg(leaf.file("cert.pem"))
            .arg("-cert_chain")
            .arg(leaf.file("chain.pem"))
            .arg("-key")
            .arg(leaf.file("key.pem"));
    }
    run_bounded(cmd, b"GET / HTTP/1.0\r\n\r\n", Duration::from_secs(20))
}

/// A backend that reads until EOF, then answers `got N bytes` and closes:
/// it works only if the client's half-close reaches it.
pub(crate) fn reply_after_eof_backend() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    serve_forever(l, |mut s| {
        let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
        let mut got = Vec::new();
        if s.read_to_end(&mut got).is_ok() {
            let _ = write!(s, "got {} bytes", got.len());
        }
    });
    addr
}

/// An inbound sidecar with `--identity DIR`, an admin port and extra args.
pub(crate) fn inbound(
    dir: &Path,
    name: &str,
    identity: &Leaf,
    upstream: SocketAddr,
    extra: &[&str],
) -> (Proc, SocketAddr, SocketAddr) {
    inbound_dir(dir, name, &identity.dir, upstream, extra)
}

/// [`inbound`] with `--identity IDENTITY_DIR` (e.g. what `minica issue`
/// wrote); returns it with its listen and admin addresses once ready.
pub(crate) fn inbound_dir(
    dir: &Path,
    name: &str,
    identity_dir: &Path,
    upstream: SocketAddr,
    extra: &[&str],
) -> (Proc, SocketAddr, SocketAddr) {
    let listen = free_addr();
    let admin = free_addr();
    let mut args = vec![
        "inbound".to_string(),
        "--listen".into(),
        listen.to_string(),
        "--upstream".into(),
        upstream.to_string(),
        "--identity".into(),
        identity_dir.display().to_string(),
        "--admin".into(),
        admin.to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let mut p = sidecar(dir, name, args);
    wait_ready(&mut p, admin);
    (p, listen, admin)
}

//! `minica-sidecar` under abuse, on 127.0.0.1, bounded in count and time:
//! stalled handshakes, a flood past `--max-connections`, bad clients of
//! every kind (each refused with its metric reason while another
//! connection carries on), and large transfers both ways with half-closes.
//!
//! Counts: `MINICA_ABUSE_CONNECTIONS` (default 1,000 stalled connections,
//! fewer when the open-file limit is low),
//! `MINICA_ABUSE_MIB` (default 20 MiB each way).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{env_usize, Budget};
use crate::sidecar::fixtures::{Leaf, Pki, Validity};
use crate::sidecar::harness::{
    echo_backend, echo_line, free_addr, http_get, inbound, metric, run_bounded, sidecar,
    tls_connect, wait_metric, wait_ready, wait_until,
};
use crate::support::require_tool;

const ROUTE: &str = "inbound";

fn failures(reason: &str) -> String {
    format!(
        "minica_sidecar_handshake_failures_total{{route=\"{ROUTE}\",direction=\"inbound\",reason=\"{reason}\"}}"
    )
}

fn connections(result: &str) -> String {
    format!(
        "minica_sidecar_connections_total{{route=\"{ROUTE}\",direction=\"inbound\",result=\"{result}\"}}"
    )
}

/// Resident memory of a process, KiB (from /proc).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Opens up to `n` TCP connections (within `time`) that send `first` and
/// then nothing more.
fn stalled(addr: SocketAddr, n: usize, first: &[u8], time: Duration) -> Vec<TcpStream> {
    let budget = Budget::new(n, time);
    let mut out = Vec::new();
    let mut i = 0;
    while budget.allows(i) {
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            let _ = s.write_all(first);
            out.push(s);
        }
        i += 1;
    }
    out
}

/// Whether the server closed `s` (EOF or reset) within `limit`.
fn closed_by_server(s: &mut TcpStream, limit: Duration) -> bool {
    let _ = s.set_read_timeout(Some(limit));
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // an alert, then the close
            Err(e) => {
                return !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                )
            }
        }
    }
}

/// 1,000 stalled connections, or fewer when the open-file limit (shared by
/// this test process and, inherited, the sidecar) is low: half of it.
fn default_stalled() -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3)?.parse::<usize>().ok())
        })
        .unwrap_or(1024);
    (soft / 2).clamp(100, 1000)
}

#[test]
fn stalled_handshakes_time_out_and_do_not_delay_a_real_client() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let pki = Pki::new(&d.join("ca"), "abuse");
    let server = pki.issue(&d.join("server"), "server", Validity::Current);
    let client = pki.issue(&d.join("client"), "client", Validity::Current);
    let (mut p, listen, admin) = inbound(
        d,
        "stalled",
        &server,
        echo_backend(),
        &["--handshake-timeout", "1s"],
    );
    let n = env_usize("MINICA_ABUSE_CONNECTIONS", default_stalled());
    // Half of them send nothing, half the first bytes of a ClientHello.
    let mut hung = stalled(listen, n / 2, b"", Duration::from_secs(10));
    hung.extend(stalled(
        listen,
        n - n / 2,
        &[0x16, 0x03, 0x01, 0x02],
        Duration::from_secs(10),
    ));
    let opened = hung.len();
    assert!(opened >= n / 2, "only {opened} of {n} connections opened");

    // A real client completes while they hang.
    let mut tls = tls_connect(&client, listen).expect("a real client completes");
    assert_eq!(echo_line(&mut tls, "still served").unwrap(), "still served");
    drop(tls);

    // Every stalled connection is closed by the sidecar at the timeout.
    let timeouts = wait_metric(admin, &failures("timeout"), opened as f64);
    assert!(timeouts >= opened as f64);
    let mut closed = 0;
    for s in &mut hung {
        if closed_by_server(s, Duration::from_secs(5)) {
            closed += 1;
        }
    }
    assert_eq!(
        closed, opened,
        "stalled connections left open by the sidecar"
    );
    p.assert_running();
}

#[test]
fn a_flood_past_max_connections_leaves_it_up_and_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let pki = Pki::new(&d.join("ca"), "flood");
    let server = pki.issue(&d.join("server"), "server", Validity::Current);
    let client = pki.issue(&d.join("client"), "client", Validity::Current);
    let (mut p, listen, admin) = inbound(
        d,
        "flood",
        &server,
        echo_backend(),
        &["--max-connections", "50", "--handshake-timeout", "5s"],
    );
    let pid = p.child.id();
    let before = rss_kib(pid);
    // Connections that each push a large garbage "ClientHello" and stall.
    let junk = [0x16u8, 0x03, 0x01, 0x40, 0x00]
        .into_iter()
        .chain(std::iter::repeat_n(0xAA, 16 * 1024))
        .collect::<Vec<u8>>();
    let flood = stalled(listen, 600, &junk, Duration::from_secs(15));
    assert!(flood.len() > 50, "only {} flood connections", flood.len());
    let rejected = wait_metric(admin, &connections("rejected"), 1.0);
    let peak = rss_kib(pid);
    p.assert_running();
    // The admin port under a slow-client flood of its own still answers.
    let admin_flood = stalled(admin, 200, b"GET /metr", Duration::from_secs(10));
    assert_eq!(http_get(admin, "/healthz").map(|(c, _)| c), Some(200));
    drop(admin_flood);
    let active = metric(
        admin,
        &format!("minica_sidecar_active_connections{{route=\"{ROUTE}\",direction=\"inbound\"}}"),
    )
    .unwrap_or_default();
    assert!(
        active <= 50.0,
        "{active} active connections past the limit of 50"
    );
    eprintln!(
        "flood: {} connections, {rejected} rejected, RSS {before} KiB before, {peak} KiB during",
        flood.len()
    );
    assert!(peak < 200 * 1024, "RSS {peak} KiB under a flood");
    drop(flood);

    // When the flood ends it serves again.
    let mut served = false;
    wait_until("a client to be served after the flood", || {
        served = tls_connect(&client, listen)
            .ok()
            .and_then(|mut t| echo_line(&mut t, "after").ok())
            .is_some_and(|l| l == "after");
        served
    });
    p.assert_running();
}

/// A client leaf whose `ca.pem` is the test CA (so it trusts the server)
/// but whose certificate comes from `other`.
fn foreign_client(d: &Path, pki: &Pki, other: &Pki) -> Leaf {
    let leaf = other.issue(&d.join("foreign"), "foreign", Validity::Current);
    std::fs::copy(pki.ca_file(), leaf.file("ca.pem")).unwrap();
    leaf
}

/// Connects as `leaf` and tries one line; true when the sidecar let it
/// through (in TLS 1.3 the client's handshake ends before the server has
/// judged its certificate, so the refusal shows on the first read).
fn got_through(leaf: &Leaf, addr: SocketAddr) -> bool {
    match tls_connect(leaf, addr) {
        Ok(mut t) => echo_line(&mut t, "x").is_ok_and(|l| l == "x"),
        Err(_) => false,
    }
}

fn openssl(args: &[&str], addr: SocketAddr) -> crate::support::Ran {
    require_tool("openssl");
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect"])
        .arg(addr.to_string())
        .args(args);
    run_bounded(cmd, b"", Duration::from_secs(20))
}

#[test]
fn bad_clients_are_refused_with_their_reason_and_others_carry_on() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let pki = Pki::new(&d.join("ca"), "bad");
    let other = Pki::new(&d.join("other-ca"), "other");
    let server = pki.issue(&d.join("server"), "server", Validity::Current);
    let good = pki.issue(&d.join("good"), "good", Validity::Current);
    let expired = pki.issue(&d.join("expired"), "expired", Validity::Expired);
    let revoked = pki.issue(&d.join("revoked"), "revoked", Validity::Current);
    let foreign = foreign_client(d, &pki, &other);
    let crl = d.join("crl.pem");
    pki.crl(&crl, &[&revoked.serial]);
    let crl_arg = crl.display().to_string();
    let (mut p, listen, admin) = inbound(d, "bad", &server, echo_backend(), &["--crl", &crl_arg]);

    // A connection in flight through everything that follows.
    let mut inflight = tls_connect(&good, listen).unwrap();
    assert_eq!(echo_line(&mut inflight, "before").unwrap(), "before");

    let count = |reason: &str| metric(admin, &failures(reason)).unwrap_or(0.0);

    // Garbage instead of a ClientHello.
    let mut s = TcpStream::connect(listen).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(closed_by_server(&mut s, Duration::from_secs(10)));
    wait_metric(admin, &failures("protocol"), 1.0);

    // A TLS 1.2-only client (TLS 1.2 is off by default).
    let before = count("protocol");
    let ran = openssl(&["-tls1_2", "-cipher", "AES128-SHA"], listen);
    assert_ne!(ran.code, Some(0), "a TLS 1.2 client got in:\n{ran}");
    wait_metric(admin, &failures("protocol"), before + 1.0);

    // TLS 1.3 with no common cipher suite (rustls has no CCM suites).
    let before = count("protocol") + count("other");
    let ran = openssl(
        &["-tls1_3", "-ciphersuites", "TLS_AES_128_CCM_SHA256"],
        listen,
    );
    assert_ne!(ran.code, Some(0), "no common cipher, yet:\n{ran}");
    wait_until("the no-common-cipher failure to be counted", || {
        count("protocol") + count("other") > before
    });

    // Certificates the sidecar must refuse, each with its reason.
    for (leaf, reason) in [
        (&foreign, "unknown_ca"),
        (&expired, "expired"),
        (&revoked, "revoked"),
    ] {
        let before = count(reason);
        assert!(
            !got_through(leaf, listen),
            "a client with a {reason} certificate got through"
        );
        wait_metric(admin, &failures(reason), before + 1.0);
    }

    // The connection in flight is untouched; new good clients still work.
    assert_eq!(echo_line(&mut inflight, "after").unwrap(), "after");
    assert!(got_through(&good, listen));
    p.assert_running();
}

/// Deterministic bytes: chunk `i` of a stream named by `seed`.
fn chunk(seed: u64, i: u64, buf: &mut [u8]) {
    let mut x = seed ^ (i.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1;
    for b in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let bytes = x.to_le_bytes();
        b.copy_from_slice(&bytes[..b.len()]);
    }
}

/// Writes `total` bytes of stream `seed`, then half-closes; returns the
/// SHA-256 of what was written.
fn send(mut w: TcpStream, seed: u64, total: usize) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut sent = 0;
    let mut i = 0;
    while sent < total {
        let n = buf.len().min(total - sent);
        chunk(seed, i, &mut buf[..n]);
        w.write_all(&buf[..n]).unwrap();
        h.update(&buf[..n]);
        sent += n;
        i += 1;
    }
    w.shutdown(Shutdown::Write).unwrap();
    h.finalize().into()
}

/// Reads to EOF; returns (bytes, SHA-256).
fn receive(mut r: TcpStream) -> (usize, [u8; 32]) {
    r.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            return (total, h.finalize().into());
        }
        h.update(&buf[..n]);
        total += n;
    }
}

/// Sends and receives at once on `s`; returns (sent hash, received).
fn both_ways(s: TcpStream, seed: u64, total: usize) -> ([u8; 32], (usize, [u8; 32])) {
    let w = s.try_clone().unwrap();
    let sender = thread::spawn(move || send(w, seed, total));
    let got = receive(s);
    (sender.join().unwrap(), got)
}

#[test]
fn large_transfers_both_ways_with_half_closes_are_byte_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let pki = Pki::new(&d.join("ca"), "bulk");
    let server = pki.issue(&d.join("server"), "server", Validity::Current);
    let client = pki.issue(&d.join("client"), "client", Validity::Current);
    let total = env_usize("MINICA_ABUSE_MIB", 20) * 1024 * 1024;

    // The service: sends its stream and reads the client's, at once.
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend_addr = backend.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        if let Ok((s, _)) = backend.accept() {
            let _ = tx.send(both_ways(s, 2, total));
        }
    });

    let (_inb, in_listen, _) = inbound(d, "bulk-in", &server, backend_addr, &[]);
    let out_listen = free_addr();
    let out_admin = free_addr();
    let mut out = sidecar(
        d,
        "bulk-out",
        [
            "outbound".to_string(),
            "--listen".into(),
            out_listen.to_string(),
            "--upstream".into(),
            in_listen.to_string(),
            "--server-name".into(),
            "localhost".into(),
            "--identity".into(),
            client.dir.display().to_string(),
            "--admin".into(),
            out_admin.to_string(),
        ],
    );
    wait_ready(&mut out, out_admin);

    let app = TcpStream::connect(out_listen).unwrap();
    let (app_sent, (app_got_len, app_got)) = both_ways(app, 1, total);
    let (svc_sent, (svc_got_len, svc_got)) = rx.recv_timeout(Duration::from_secs(120)).unwrap();
    assert_eq!(svc_got_len, total, "bytes that reached the service");
    assert_eq!(app_got_len, total, "bytes that reached the application");
    assert_eq!(svc_got, app_sent, "application → service differs");
    assert_eq!(app_got, svc_sent, "service → application differs");
}

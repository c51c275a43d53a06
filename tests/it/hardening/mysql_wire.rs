//! MySQL routes of the real sidecar fed garbage over TCP: on an inbound
//! route a client that sends junk, an oversized header, a plaintext
//! handshake response, or nothing; on an outbound route a "server" whose
//! greeting is junk. Each is refused (an ERR packet when the peer can still
//! be told, else a close), counted, and the sidecar keeps serving.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::thread;
use std::time::Duration;

use super::{corpus_dir, Budget, Rng};
use crate::sidecar::fixtures::{Pki, Validity};
use crate::sidecar::harness::{free_addr, http_get, sidecar, wait_metric, wait_ready};

/// A fake MySQL server: sends `greeting` (a whole packet) on every
/// connection, then reads until the peer closes.
fn fake_server(greeting: Vec<u8>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let g = greeting.clone();
            thread::spawn(move || {
                let _ = s.write_all(&g);
                let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                let mut buf = [0u8; 4096];
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    minica_sidecar::mysql::packet::encode(seq, payload).unwrap()
}

/// Reads what the sidecar sends until it closes (bounded); `None` if it
/// kept the connection open past `limit`.
fn read_until_closed(s: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None
            }
            Err(_) => return Some(got),
        }
    }
}

/// The error code of the first ERR packet in `bytes`, if any.
fn err_code(bytes: &[u8]) -> Option<u16> {
    let mut at = 0;
    while bytes.len() >= at + 4 {
        let len = usize::from(bytes[at])
            | usize::from(bytes[at + 1]) << 8
            | usize::from(bytes[at + 2]) << 16;
        let payload = bytes.get(at + 4..at + 4 + len)?;
        if let Some((code, _)) = minica_sidecar::mysql::packet::describe_err(payload) {
            return Some(code);
        }
        at += 4 + len;
    }
    None
}

fn failures(route: &str, direction: &str, reason: &str) -> String {
    format!(
        "minica_sidecar_handshake_failures_total{{route=\"{route}\",direction=\"{direction}\",reason=\"{reason}\"}}"
    )
}

fn start(dir: &Path, args: Vec<String>) -> (crate::sidecar::harness::Proc, SocketAddr, SocketAddr) {
    let listen = free_addr();
    let admin = free_addr();
    let mut all = args;
    all.extend([
        "--listen".into(),
        listen.to_string(),
        "--admin".into(),
        admin.to_string(),
        "--protocol".into(),
        "mysql".into(),
        "--handshake-timeout".into(),
        "1s".into(),
    ]);
    std::fs::create_dir_all(dir).unwrap();
    let mut p = sidecar(dir, "mysql-garbage", all);
    wait_ready(&mut p, admin);
    (p, listen, admin)
}

#[test]
fn mysql_routes_refuse_garbage_and_keep_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let pki = Pki::new(&d.join("ca"), "mysql");
    let db = pki.issue(&d.join("db"), "db", Validity::Current);
    let greeting =
        std::fs::read(corpus_dir("mysql").join("greeting-ok-mariadb-plain.bin")).unwrap();
    let upstream = fake_server(packet(0, &greeting));
    let (mut p, listen, admin) = start(
        d,
        vec![
            "inbound".into(),
            "--upstream".into(),
            upstream.to_string(),
            "--identity".into(),
            db.dir.display().to_string(),
        ],
    );

    // Each client reads the greeting, then misbehaves.
    let mut plaintext = vec![0x85, 0xa2, 0x0a, 0x00]; // 4.1, no CLIENT_SSL
    plaintext.extend_from_slice(&[0; 28]);
    plaintext.extend_from_slice(b"app\0\0");
    let mut rng = Rng::new("mysql garbage");
    let junk: Vec<u8> = (0..300).map(|_| rng.next().to_le_bytes()[0]).collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a packet of random bytes", packet(1, &junk)),
        ("a 16 MiB header", vec![0xFF, 0xFF, 0xFF, 0x01, 0, 0, 0, 0]),
        ("a plaintext handshake response", packet(1, &plaintext)),
        (
            "a TLS ClientHello without SSLRequest",
            vec![0x16, 0x03, 0x01, 0x00, 0x05, 1, 0, 0, 1, 0],
        ),
        ("nothing", vec![]),
    ];
    let budget = Budget::new(cases.len(), Duration::from_secs(60));
    for (i, (what, bytes)) in cases.iter().enumerate() {
        assert!(budget.allows(i), "out of time at {what}");
        let mut s = TcpStream::connect(listen).unwrap();
        let _ = s.write_all(bytes);
        let got = read_until_closed(&mut s, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{what}: the sidecar kept the connection open"));
        assert!(got.len() >= 4, "{what}: no greeting relayed");
        if *what == "a plaintext handshake response" {
            assert_eq!(err_code(&got), Some(4036), "{what}: {got:?}");
        }
        p.assert_running();
    }
    wait_metric(admin, &failures("inbound", "inbound", "protocol"), 3.0);
    wait_metric(admin, &failures("inbound", "inbound", "timeout"), 1.0);
    assert_eq!(http_get(admin, "/healthz").map(|(c, _)| c), Some(200));
    assert_eq!(http_get(admin, "/readyz").map(|(c, _)| c), Some(200));

    // Outbound: a server whose greeting is junk. The application is told
    // with an ERR packet (1043) and the sidecar stays up.
    let app = pki.issue(&d.join("app"), "app", Validity::Current);
    for (i, bad) in [
        packet(0, b"\x09not v10\0"),
        packet(0, &[0xFF, 0x69, 0x04, b'H', b'i']),
        vec![0xFF, 0xFF, 0xFF, 0x00, 1, 2, 3],
        packet(0, &greeting[..20]),
    ]
    .into_iter()
    .enumerate()
    {
        let server = fake_server(bad);
        let (mut out, out_listen, _) = start(
            &d.join(format!("out{i}")),
            vec![
                "outbound".into(),
                "--upstream".into(),
                server.to_string(),
                "--server-name".into(),
                "db".into(),
                "--identity".into(),
                app.dir.display().to_string(),
            ],
        );
        let mut s = TcpStream::connect(out_listen).unwrap();
        let got = read_until_closed(&mut s, Duration::from_secs(10))
            .expect("the outbound kept the connection open");
        let code = err_code(&got);
        assert!(
            matches!(code, Some(1043) | Some(1129)),
            "case {i}: the application got {got:?}"
        );
        out.assert_running();
    }
}

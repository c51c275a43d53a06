//! `minica-sidecar` end to end: curl, openssl s_client/s_server and a rustls
//! client through real sidecar processes on 127.0.0.1.

pub(crate) mod fixtures;
pub(crate) mod harness;
mod inputs;

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use fixtures::{Leaf, Pki, Validity};
use harness::*;

use crate::support::{self, require_tool};

fn failures(route: &str, direction: &str, reason: &str) -> String {
    format!(
        "minica_sidecar_handshake_failures_total{{route=\"{route}\",direction=\"{direction}\",reason=\"{reason}\"}}"
    )
}

fn connections(route: &str, direction: &str, result: &str) -> String {
    format!(
        "minica_sidecar_connections_total{{route=\"{route}\",direction=\"{direction}\",result=\"{result}\"}}"
    )
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn curl_through_outbound_and_inbound_reaches_the_service() {
    require_tool("curl");
    require_tool("python3");
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let pki = Pki::new(&d.join("ca"), "test");
    let server = pki.issue(&d.join("svc-b"), "svc-b", Validity::Current);
    let client = pki.issue(&d.join("svc-a"), "svc-a", Validity::Current);

    let www = d.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("hello.txt"), "hello through the mesh\n").unwrap();
    let web = free_addr();
    let mut py = Command::new("python3");
    py.args(["-m", "http.server", "--bind", "127.0.0.1"])
        .arg(web.port().to_string())
        .current_dir(&www);
    let _py = spawn(py, &d.join("python.log"));
    wait_until("python http.server", || TcpStream::connect(web).is_ok());

    let (_inb, in_addr, in_admin) = inbound(
        d,
        "inbound",
        &server,
        web,
        &["--allow", "spiffe://minica.internal/svc-a"],
    );
    let out_listen = free_addr();
    let out_admin = free_addr();
    let mut out = sidecar(
        d,
        "outbound",
        [
            "outbound",
            "--listen",
            &out_listen.to_string(),
            "--upstream",
            &in_addr.to_string(),
            "--server-name",
            "svc-b",
            "--identity",
            &s(&client.dir),
            "--allow",
            "spiffe://minica.internal/svc-b",
            "--admin",
            &out_admin.to_string(),
            "--log-format",
            "json",
        ],
    );
    wait_ready(&mut out, out_admin);

    let ran = support::run(
        Command::new("curl")
            .args(["-sS", "--max-time", "20"])
            .arg(format!("http://{out_listen}/hello.txt")),
    )
    .ok();
    assert_eq!(ran.stdout, "hello through the mesh\n");
    wait_metric(in_admin, &connections("inbound", "inbound", "closed"), 1.0);
    wait_metric(
        out_admin,
        &connections("outbound", "outbound", "closed"),
        1.0,
    );
    let bytes = metric(
        out_admin,
        "minica_sidecar_bytes_total{route=\"outbound\",direction=\"outbound\",flow=\"from_upstream\"}",
    )
    .unwrap();
    assert!(bytes > 20.0, "{bytes}");
    // One log line per connection naming the peer identity, TLS version, cipher.
    wait_until("inbound connection log line", || {
        log_has(d, "inbound", "spiffe://minica.internal/svc-a")
    });
    let log = std::fs::read_to_string(d.join("inbound.log")).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("connection closed"))
        .unwrap_or_else(|| panic!("{log}"));
    for want in [
        "TLSv1.3",
        "TLS13_",
        "bytes_to_upstream",
        "end=closed",
        "duration_ms",
    ] {
        assert!(line.contains(want), "{want} missing in {line}");
    }
    let out_log = out.log();
    let json = out_log
        .lines()
        .find(|l| l.contains("connection closed"))
        .unwrap_or_else(|| panic!("{out_log}"));
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(
        v["peer_identity"], "spiffe://minica.internal/svc-b",
        "{json}"
    );
    assert_eq!(v["end"], "closed", "{json}");
}

fn log_has(dir: &Path, name: &str, text: &str) -> bool {
    std::fs::read_to_string(dir.join(format!("{name}.log")))
        .map(|l| {
            l.lines()
                .any(|x| x.contains("connection closed") && x.contains(text))
        })
        .unwrap_or(false)
}

#[test]
fn inbound_refuses_bad_client_certificates_with_the_right_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let pki = Pki::new(&d.join("ca"), "test");
    let other = Pki::new(&d.join("other-ca"), "other");
    let server = pki.issue(&d.join("srv"), "svc-b", Validity::Current);
    let good = pki.issue(&d.join("good"), "client-a", Validity::Current);
    let expired = pki.issue(&d.join("expired"), "client-a", Validity::Expired);
    let revoked = pki.issue(&d.join("revoked"), "client-a", Validity::Current);
    let stranger = other.issue(&d.join("stranger"), "client-a", Validity::Current);
    let not_allowed = pki.issue(&d.join("nobody"), "client-z", Validity::Current);
    let crl = d.join("crl.pem");
    pki.crl(&crl, &[&revoked.serial]);

    let backend = http_backend("hello-from-upstream");
    let (_p, addr, admin) = inbound(
        d,
        "inbound",
        &server,
        backend,
        &[
            "--crl",
            &s(&crl),
            "--allow",
            "spiffe://minica.internal/client-a",
        ],
    );
    let ca = pki.ca_file();

    let ok = s_client(addr, &ca, Some(&good));
    assert!(ok.stdout.contains("hello-from-upstream"), "{ok}");

    let cases: [(Option<&Leaf>, &str); 5] = [
        (None, "no_client_cert"),
        (Some(&stranger), "unknown_ca"),
        (Some(&expired), "expired"),
        (Some(&revoked), "revoked"),
        (Some(&not_allowed), "not_allowed"),
    ];
    for (leaf, reason) in cases {
        let ran = s_client(addr, &ca, leaf);
        assert!(
            !ran.stdout.contains("hello-from-upstream"),
            "{reason}: the request went through:\n{ran}"
        );
        let n = wait_metric(admin, &failures("inbound", "inbound", reason), 1.0);
        assert_eq!(n, 1.0, "{reason}");
    }
    // The connection's own log line names the refused identity and why.
    wait_until("a not_allowed connection line naming the peer", || {
        std::fs::read_to_string(d.join("inbound.log")).is_ok_and(|log| {
            log.lines().any(|l| {
                l.contains("connection failed")
                    && l.contains("reason=not_allowed")
                    && l.contains("peer_identity=spiffe://minica.internal/client-z")
            })
        })
    });
    assert_eq!(
        metric(admin, &failures("inbound", "inbound", "other")),
        Some(0.0)
    );
    wait_metric(
        admin,
        &connections("inbound", "inbound", "handshake_failed"),
        5.0,
    );
    assert!(
        metric(
            admin,
            "minica_sidecar_cert_expiry_timestamp_seconds{route=\"inbound\",direction=\"inbound\"}"
        )
        .unwrap()
            > 1.7e9
    );
    assert!(metric(admin, "minica_sidecar_crl_next_update_timestamp_seconds{route=\"inbound\",direction=\"inbound\"}").unwrap() > 1.7e9);
}

/// `openssl s_server -Verify 1` with `leaf`, answering with `-www`.
fn s_server(dir: &Path, leaf: &Leaf) -> (Proc, SocketAddr) {
    require_tool("openssl");
    let addr = free_addr();
    let mut cmd = Command::new("openssl");
    cmd.args(["s_server", "-accept"])
        .arg(addr.port().to_string())
        .args(["-Verify", "1", "-www", "-cert"])
        .arg(leaf.file("cert.pem"))
        .arg("-cert_chain")
        .arg(leaf.file("chain.pem"))
        .arg("-key")
        .arg(leaf.file("key.pem"))
        .arg("-CAfile")
        .arg(leaf.file("ca.pem"));
    let p = spawn(cmd, &dir.join(format!("s_server-{}.log", addr.port())));
    wait_until("openssl s_server", || TcpStream::connect(addr).is_ok());
    (p, addr)
}

fn outbound(
    dir: &Path,
    name: &str,
    client: &Leaf,
    upstream: SocketAddr,
    server_name: &str,
    extra: &[&str],
) -> (Proc, SocketAddr, SocketAddr) {
    let listen = free_addr();
    let admin = free_addr();
    let mut args = vec![
        "outbound".to_string(),
        "--listen".into(),
        listen.to_string(),
        "--upstream".into(),
        upstream.to_string(),
        "--server-name".into(),
        server_name.into(),
        "--identity".into(),
        s(&client.dir),
        "--admin".into(),
        admin.to_string(),
        "--name".into(),
        name.into(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let mut p = sidecar(dir, name, args);
    wait_ready(&mut p, admin);
    (p, listen, admin)
}

#[test]
fn outbound_verifies_the_server_name_and_revocation() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let pki = Pki::new(&d.join("ca"), "test");
    let server = pki.issue(&d.join("srv"), "svc-b", Validity::Current);
    let revoked_server = pki.issue(&d.join("srv-r"), "svc-r", Validity::Current);
    let client = pki.issue(&d.join("cli"), "svc-a", Validity::Current);
    let crl = d.join("crl.pem");
    pki.crl(&crl, &[&revoked_server.serial]);
    let (_srv, srv_addr) = s_server(d, &server);
    let (_srv_r, srv_r_addr) = s_server(d, &revoked_server);

    // The right name: the request reaches s_server (-www answers HTTP).
    let (_ok, ok_addr, _) = outbound(d, "right", &client, srv_addr, "svc-b", &[]);
    let got = http_get(ok_addr, "/").expect("answer through outbound");
    assert_eq!(got.0, 200, "{got:?}");

    // A wrong name fails the handshake: nothing comes back.
    let (_wrong, wrong_addr, wrong_admin) = outbound(d, "wrong", &client, srv_addr, "svc-c", &[]);
    assert_eq!(http_get(wrong_addr, "/"), None);
    wait_metric(
        wrong_admin,
        &failures("wrong", "outbound", "wrong_name"),
        1.0,
    );

    // A revoked server is refused when --crl is given.
    let (_rev, rev_addr, rev_admin) =
        outbound(d, "rev", &client, srv_r_addr, "svc-r", &["--crl", &s(&crl)]);
    assert_eq!(http_get(rev_addr, "/"), None);
    wait_metric(rev_admin, &failures("rev", "outbound", "revoked"), 1.0);
}

#[test]
fn reload_serves_new_certificates_and_keeps_open_connections() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let pki = Pki::new(&d.join("ca"), "test");
    let server = pki.issue(&d.join("srv"), "svc-b", Validity::Current);
    let client = pki.issue(&d.join("cli"), "svc-a", Validity::Current);
    let (mut p, addr, admin) = inbound(d, "inbound", &server, echo_backend(), &[]);

    let mut open = tls_connect(&client, addr).unwrap();
    assert_eq!(echo_line(&mut open, "before").unwrap(), "before");
    assert_eq!(peer_serial(&open), server.serial);

    // Renew: new key, new serial, same files.
    let renewed = pki.issue(&d.join("srv"), "svc-b", Validity::Current);
    assert_ne!(renewed.serial, server.serial);
    wait_until("a new connection to see the new serial", || {
        tls_connect(&client, addr).is_ok_and(|c| peer_serial(&c) == renewed.serial)
    });
    assert_eq!(echo_line(&mut open, "after").unwrap(), "after");
    wait_metric(
        admin,
        "minica_sidecar_reloads_total{route=\"inbound\",direction=\"inbound\",result=\"ok\"}",
        1.0,
    );

    // A corrupt file is refused; the renewed credentials keep serving.
    std::fs::write(
        d.join("srv/chain.pem"),
        "-----BEGIN CERTIFICATE-----\nnot base64!\n",
    )
    .unwrap();
    wait_metric(
        admin,
        "minica_sidecar_reloads_total{route=\"inbound\",direction=\"inbound\",result=\"error\"}",
        1.0,
    );
    let mut again = tls_connect(&client, addr).unwrap();
    assert_eq!(peer_serial(&again), renewed.serial);
    assert_eq!(echo_line(&mut again, "still").unwrap(), "still");
    assert_eq!(echo_line(&mut open, "open").unwrap(), "open");
    // SIGHUP with the broken file still present: logged, still serving.
    p.signal("HUP");
    wait_until("the reload error in the log", || {
        p.log().contains("reload failed")
    });
    p.assert_running();
    assert!(http_get(admin, "/readyz").is_some_and(|(c, _)| c == 200));
}

#[test]
fn sigterm_drains_open_connections_refuses_new_ones_and_exits_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let pki = Pki::new(&d.join("ca"), "test");
    let server = pki.issue(&d.join("srv"), "svc-b", Validity::Current);
    let client = pki.issue(&d.join("cli"), "svc-a", Validity::Current);
    let backend = slow_backend(30, Duration::from_millis(100));
    let (mut p, addr, _admin) =
        inbound(d, "inbound", &server, backend, &["--drain-timeout", "30s"]);

    let mut tls = tls_connect(&client, addr).unwrap();
    let mut first = [0u8; 1000];
    tls.read_exact(&mut first).unwrap();
    p.signal("TERM");
    wait_until("the listener to close", || {
        TcpStream::connect(addr).is_err()
    });
    let mut rest = Vec::new();
    tls.read_to_end(&mut rest)
        .expect("a clean close_notify at the end");
    assert_eq!(1000 + rest.len(), 30_000);
    // Our side of the half-closed connection ends too, with close_notify.
    tls.conn.send_close_notify();
    tls.conn.complete_io(&mut tls.sock).unwrap();
    drop(tls);
    assert_eq!(p.wait_exit(Duration::from_secs(60)), Some(0), "{}", p.log());
    assert!(p.log().contains("end=closed"), "{}", p.log());
}

#[test]
fn proxy_protocol_v2_carries_client_address_and_identity() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let pki = Pki::new(&d.join("ca"), "test");
    let server = pki.issue(&d.join("srv"), "svc-b", Validity::Current);
    let client = pki.issue(&d.join("cli"), "svc-a", Validity::Current);
    let (backend, rx) = capture_backend();
    let (_p, addr, _) = inbound(d, "inbound", &server, backend, &["--proxy-protocol", "v2"]);
    let mut tls = tls_connect(&client, addr).unwrap();
    let local = tls.sock.local_addr().unwrap();
    assert_eq!(echo_line(&mut tls, "payload").unwrap(), "ok");
    let got = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(&got[..12], b"\r\n\r\n\0\r\nQUIT\n");
    assert_eq!(got[12], 0x21);
    assert_eq!(got[13], 0x11, "TCP over IPv4");
    assert_eq!(&got[16..20], &[127, 0, 0, 1]);
    assert_eq!(u16::from_be_bytes([got[24], got[25]]), local.port());
    assert_eq!(u16::from_be_bytes([got[26], got[27]]), addr.port());
    let len = usize::from(u16::from_be_bytes([got[14], got[15]]));
    let tlvs = &got[16 + 12..16 + len];
    let id = find_tlv(tlvs, 0xE0).expect("identity TLV");
    assert_eq!(id, b"spiffe://minica.internal/svc-a");
    assert_eq!(&got[16 + len..], b"payload\n");
}

fn find_tlv(mut tlvs: &[u8], kind: u8) -> Option<&[u8]> {
    while tlvs.len() >= 3 {
        let len = usize::from(u16::from_be_bytes([tlvs[1], tlvs[2]]));
        let (value, rest) = tlvs[3..].split_at(len);
        if tlvs[0] == kind {
            return Some(value);
        }
        tlvs = rest;
    }
    None
}

#[test]
fn max_connections_refuses_the_excess_and_a_cut_tls_stream_is_truncated() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let pki = Pki::new(&d.join("ca"), "test");
    let server = pki.issue(&d.join("srv"), "svc-b", Validity::Current);
    let client = pki.issue(&d.join("cli"), "svc-a", Validity::Current);
    let (_p, addr, admin) = inbound(
        d,
        "inbound",
        &server,
        echo_backend(),
        &["--max-connections", "1"],
    );

    let mut first = tls_connect(&client, addr).unwrap();
    assert_eq!(echo_line(&mut first, "one").unwrap(), "one");
    // The second connection is closed at once; the first is unharmed.
    let second = tls_connect(&client, addr).and_then(|mut c| echo_line(&mut c, "two"));
    assert!(
        second.is_err() || second.as_deref().is_ok_and(str::is_empty),
        "{second:?}"
    );
    wait_metric(admin, &connections("inbound", "inbound", "rejected"), 1.0);
    assert_eq!(echo_line(&mut first, "still").unwrap(), "still");

    // Cut without close_notify: counted and logged as truncated.
    drop(first);
    wait_metric(admin, &connections("inbound", "inbound", "truncated"), 1.0);
    wait_until("a truncated log line", || {
        log_has(d, "inbound", "end=truncated")
    });
    wait_metric(
        admin,
        "minica_sidecar_active_connections{route=\"inbound\",direction=\"inbound\"}",
        0.0,
    );
    wait_until("a slot to free up", || {
        tls_connect(&client, addr)
            .is_ok_and(|mut c| echo_line(&mut c, "three").is_ok_and(|l| l == "three"))
    });
}

#[test]
fn tls12_is_refused_unless_enabled() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let pki = Pki::new(&d.join("ca"), "test");
    let server = pki.issue(&d.join("srv"), "svc-b", Validity::Current);
    let client = pki.issue(&d.join("cli"), "svc-a", Validity::Current);
    let backend = http_backend("hello-tls12");
    let s_client12 = |addr: SocketAddr| {
        let mut cmd = Command::new("openssl");
        cmd.args(["s_client", "-tls1_2", "-connect"])
            .arg(addr.to_string())
            .args(["-ign_eof", "-CAfile"])
            .arg(client.file("ca.pem"))
            .arg("-cert")
            .arg(client.file("cert.pem"))
            .arg("-cert_chain")
            .arg(client.file("chain.pem"))
            .arg("-key")
            .arg(client.file("key.pem"));
        run_bounded(cmd, b"GET / HTTP/1.0\r\n\r\n", Duration::from_secs(20))
    };
    require_tool("openssl");
    let (_a, strict, strict_admin) = inbound(d, "strict", &server, backend, &[]);
    let ran = s_client12(strict);
    assert!(!ran.stdout.contains("hello-tls12"), "{ran}");
    wait_metric(
        strict_admin,
        &failures("inbound", "inbound", "protocol"),
        1.0,
    );

    let (_b, lax, _) = inbound(d, "lax", &server, backend, &["--tls12"]);
    let ran = s_client12(lax);
    assert!(ran.stdout.contains("hello-tls12"), "{ran}");
    assert!(ran.stdout.contains("ECDHE"), "{ran}");
}

#[test]
fn a_new_crl_is_enforced_without_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let pki = Pki::new(&d.join("ca"), "test");
    let server = pki.issue(&d.join("srv"), "svc-b", Validity::Current);
    let client = pki.issue(&d.join("cli"), "svc-a", Validity::Current);
    let crl = d.join("crl.pem");
    pki.crl(&crl, &[]);
    let (_p, addr, admin) = inbound(d, "inbound", &server, echo_backend(), &["--crl", &s(&crl)]);
    let mut open = tls_connect(&client, addr).unwrap();
    assert_eq!(echo_line(&mut open, "hi").unwrap(), "hi");

    pki.crl(&crl, &[&client.serial]);
    wait_until("the new CRL to refuse the client", || {
        tls_connect(&client, addr)
            .and_then(|mut c| echo_line(&mut c, "again"))
            .map_or(true, |l| l.is_empty())
    });
    wait_metric(admin, &failures("inbound", "inbound", "revoked"), 1.0);
    // Open connections are untouched by a reload.
    assert_eq!(echo_line(&mut open, "still here").unwrap(), "still here");
}

#[test]
fn half_close_crosses_both_sidecars() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let pki = Pki::new(&d.join("ca"), "test");
    let server = pki.issue(&d.join("srv"), "svc-b", Validity::Current);
    let client = pki.issue(&d.join("cli"), "svc-a", Validity::Current);
    let (_inb, in_addr, in_admin) = inbound(d, "inbound", &server, reply_after_eof_backend(), &[]);
    let (_out, out_addr, _) = outbound(d, "outbound", &client, in_addr, "svc-b", &[]);

    // Plain TCP: FIN -> outbound -> close_notify -> inbound -> FIN -> backend.
    let mut plain = TcpStream::connect(out_addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    std::io::Write::write_all(&mut plain, &[7u8; 100_000]).unwrap();
    plain.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = String::new();
    plain.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "got 100000 bytes");

    // TLS: our close_notify becomes a FIN towards the backend; the reply
    // still flows back on the half-open connection.
    let mut tls = tls_connect(&client, in_addr).unwrap();
    std::io::Write::write_all(&mut tls, b"hello").unwrap();
    tls.conn.send_close_notify();
    tls.conn.complete_io(&mut tls.sock).unwrap();
    let mut reply = String::new();
    tls.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "got 5 bytes");
    wait_metric(in_admin, &connections("inbound", "inbound", "closed"), 2.0);
}

#[test]
fn silent_handshakes_and_idle_connections_time_out() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let pki = Pki::new(&d.join("ca"), "test");
    let server = pki.issue(&d.join("srv"), "svc-b", Validity::Current);
    let client = pki.issue(&d.join("cli"), "svc-a", Validity::Current);
    let (_p, addr, admin) = inbound(
        d,
        "inbound",
        &server,
        echo_backend(),
        &["--handshake-timeout", "1s", "--idle-timeout", "1s"],
    );
    // A client that never says hello.
    let _silent = TcpStream::connect(addr).unwrap();
    wait_metric(admin, &failures("inbound", "inbound", "timeout"), 1.0);

    // A client that goes quiet after one exchange.
    let mut quiet = tls_connect(&client, addr).unwrap();
    assert_eq!(echo_line(&mut quiet, "once").unwrap(), "once");
    wait_metric(
        admin,
        &connections("inbound", "inbound", "idle_timeout"),
        1.0,
    );
    wait_until("an idle_timeout log line", || {
        log_has(d, "inbound", "end=idle_timeout")
    });
}

//! `minica probe` against real peers: `openssl s_server` on 127.0.0.1 with
//! certificates from the real `minica` binary, plain TCP servers for the
//! not-TLS, refused and timeout cases.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::sidecar::fixtures::{Pki, Validity};
use crate::sidecar::harness::{free_addr, spawn, wait_until, Proc};
use crate::support::{self, require_tool, Ran};

/// A CA home with a leaf `localhost` (DNS localhost, IP 127.0.0.1) issued
/// into `dir/localhost`.
struct Ca {
    home: PathBuf,
    dir: PathBuf,
}

impl Ca {
    fn new(dir: &Path, name: &str) -> Ca {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let home = dir.join("home");
        support::run(support::minica(&home, &dir).arg("init")).ok();
        let ca = Ca { home, dir };
        ca.issue("localhost", &[]);
        ca
    }

    fn issue(&self, name: &str, extra: &[&str]) -> PathBuf {
        support::run(
            support::minica(&self.home, &self.dir)
                .args(["issue", name, "--ip", "127.0.0.1"])
                .args(extra),
        )
        .ok();
        self.dir.join(name)
    }

    fn leaf(&self, file: &str) -> PathBuf {
        self.dir.join("localhost").join(file)
    }

    fn intermediate(&self) -> PathBuf {
        self.home.join("intermediate.pem")
    }
}

/// `openssl s_server -www` on 127.0.0.1 with `args`; killed on drop.
fn s_server(dir: &Path, args: &[&dyn AsRefOsStr]) -> (Proc, SocketAddr) {
    require_tool("openssl");
    let addr = free_addr();
    let mut cmd = Command::new("openssl");
    cmd.args(["s_server", "-www", "-accept"])
        .arg(addr.to_string());
    for a in args {
        cmd.arg(a.as_os());
    }
    let p = spawn(cmd, &dir.join(format!("s_server-{}.log", addr.port())));
    wait_until("openssl s_server", || TcpStream::connect(addr).is_ok());
    (p, addr)
}

/// Paths and strings as arguments of one list.
trait AsRefOsStr {
    fn as_os(&self) -> &std::ffi::OsStr;
}
impl AsRefOsStr for &str {
    fn as_os(&self) -> &std::ffi::OsStr {
        self.as_ref()
    }
}
impl AsRefOsStr for PathBuf {
    fn as_os(&self) -> &std::ffi::OsStr {
        self.as_os_str()
    }
}

/// A server with the CA's `localhost` leaf and the given chain file.
fn serve(dir: &Path, ca: &Ca, chain: Option<&Path>, extra: &[&str]) -> (Proc, SocketAddr) {
    serve_leaf(dir, &ca.dir.join("localhost"), chain, extra)
}

/// A server with `leaf/cert.pem`, `leaf/key.pem` and the given chain file.
fn serve_leaf(dir: &Path, leaf: &Path, chain: Option<&Path>, extra: &[&str]) -> (Proc, SocketAddr) {
    let mut args: Vec<&dyn AsRefOsStr> = Vec::new();
    let cert = leaf.join("cert.pem");
    let key = leaf.join("key.pem");
    let chain = chain.map(Path::to_path_buf);
    args.extend([&"-cert" as &dyn AsRefOsStr, &cert, &"-key", &key]);
    if let Some(chain) = &chain {
        args.extend([&"-cert_chain" as &dyn AsRefOsStr, chain]);
    }
    for e in extra {
        args.push(e);
    }
    s_server(dir, &args)
}

/// `minica --home HOME probe ARGS --json`: the exit code and the document.
fn probe(home: &Path, args: &[&dyn AsRefOsStr]) -> (Ran, Value) {
    let mut cmd = support::minica(home, home.parent().unwrap());
    cmd.arg("probe")
        .args(args.iter().map(|a| a.as_os()))
        .arg("--json");
    let ran = support::run(&mut cmd);
    let json = serde_json::from_str(&ran.stdout)
        .unwrap_or_else(|e| panic!("probe printed no JSON ({e}):\n{ran}"));
    (ran, json)
}

fn target(addr: SocketAddr) -> String {
    addr.to_string()
}

#[track_caller]
fn assert_diagnosis(ran: &Ran, json: &Value, want: &str) {
    assert_eq!(json["diagnosis"], want, "{ran}");
    assert_eq!(ran.code, Some(if want == "ok" { 0 } else { 1 }), "{ran}");
    if want == "ok" {
        assert!(json["fix"].is_null(), "{ran}");
    } else {
        assert!(json["fix"].as_str().is_some_and(|f| !f.is_empty()), "{ran}");
    }
}

#[test]
fn a_good_chain_is_ok_with_tls13_forward_secrecy_and_resumption() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path(), "ca");
    let (_srv, addr) = serve(tmp.path(), &ca, Some(&ca.intermediate()), &[]);
    let (ran, json) = probe(&ca.home, &[&target(addr).as_str()]);
    assert_diagnosis(&ran, &json, "ok");
    assert_eq!(json["tls_version"], "TLSv1.3");
    assert!(
        json["cipher_suite"].as_str().unwrap().starts_with("TLS_"),
        "{ran}"
    );
    assert!(json["key_exchange"].is_string(), "{ran}");
    assert_eq!(json["forward_secrecy"], true);
    assert_eq!(json["valid"], true);
    assert_eq!(json["resumption"], true);
    assert_eq!(json["client_cert_requested"], false);
    assert!(json["acceptable_client_cas"].is_null());
    assert!(json["mysql_server_version"].is_null());
    assert!(json["handshake_ms"].as_f64().is_some());
    assert_eq!(json["server_name"], "127.0.0.1");
    let chain = json["chain"].as_array().unwrap();
    assert_eq!(chain.len(), 2, "{ran}");
    assert_eq!(chain[0]["subject"], "CN=localhost");
    assert!(chain[0]["sans"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == "IP:127.0.0.1"));

    // The human report, by name, ends with the verdict and no fix.
    let ran = support::run(
        support::minica(&ca.home, tmp.path())
            .args(["probe", "--server-name", "localhost"])
            .arg(target(addr)),
    )
    .ok();
    assert!(ran.stdout.contains("TLSv1.3"), "{ran}");
    assert!(ran.stdout.trim_end().ends_with("verdict: ok"), "{ran}");
}

#[test]
fn a_leaf_without_its_intermediate_is_missing_intermediate() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path(), "ca");
    let (_srv, addr) = serve(tmp.path(), &ca, None, &[]);
    let (ran, json) = probe(&ca.home, &[&target(addr).as_str()]);
    assert_diagnosis(&ran, &json, "missing-intermediate");
    assert_eq!(json["valid"], false);
    assert_eq!(json["chain"].as_array().unwrap().len(), 1);
    assert!(json["fix"].as_str().unwrap().contains("chain.pem"), "{ran}");

    // With the intermediate in --untrusted the chain verifies (as `minica
    // verify --untrusted` would), but the server still does not send it.
    let (ran, json) = probe(
        &ca.home,
        &[&target(addr).as_str(), &"--untrusted", &ca.intermediate()],
    );
    assert_diagnosis(&ran, &json, "missing-intermediate");
    assert_eq!(json["valid"], true);

    // Another CA's leaf alone: its issuer is unknown to this home.
    let other = Ca::new(tmp.path(), "other");
    let (_srv2, addr2) = serve(tmp.path(), &other, None, &[]);
    let (ran, json) = probe(&ca.home, &[&target(addr2).as_str()]);
    assert_diagnosis(&ran, &json, "unknown-authority");
}

#[test]
fn another_ca_is_unknown_authority() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path(), "ca");
    let other = Ca::new(tmp.path(), "other");
    let (_srv, addr) = serve(tmp.path(), &other, Some(&other.intermediate()), &[]);
    let (ran, json) = probe(&ca.home, &[&target(addr).as_str()]);
    assert_diagnosis(&ran, &json, "unknown-authority");
    assert_eq!(json["valid"], false);
    assert_eq!(
        json["tls_version"], "TLSv1.3",
        "the handshake completes: {ran}"
    );
    // The other CA's bundle trusts it.
    let bundle = other.home.join("bundle.pem");
    let (ran, json) = probe(&ca.home, &[&target(addr).as_str(), &"--bundle", &bundle]);
    assert_diagnosis(&ran, &json, "ok");
}

#[test]
fn another_name_is_name_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path(), "ca");
    let (_srv, addr) = serve(tmp.path(), &ca, Some(&ca.intermediate()), &[]);
    let (ran, json) = probe(
        &ca.home,
        &[&target(addr).as_str(), &"--server-name", &"db.internal"],
    );
    assert_diagnosis(&ran, &json, "name-mismatch");
    assert_eq!(json["server_name"], "db.internal");
    assert!(
        json["fix"].as_str().unwrap().contains("DNS:localhost"),
        "{ran}"
    );
}

#[test]
fn an_expired_certificate_is_expired() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"), "probe");
    let leaf = pki.issue(&tmp.path().join("old"), "old", Validity::Expired);
    let (_srv, addr) = serve_leaf(tmp.path(), &leaf.dir, Some(&leaf.file("chain.pem")), &[]);
    let home = tmp.path().join("nohome");
    let (ran, json) = probe(
        &home,
        &[&target(addr).as_str(), &"--bundle", &pki.ca_file()],
    );
    assert_diagnosis(&ran, &json, "expired");
    let detail = json["detail"].as_str().unwrap();
    assert!(
        detail.contains("expired at 20") && detail.ends_with('Z'),
        "{ran}"
    );
    assert_eq!(json["valid"], false);
}

#[test]
fn a_revoked_certificate_with_the_crl_is_revoked() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path(), "ca");
    let (_srv, addr) = serve(tmp.path(), &ca, Some(&ca.intermediate()), &[]);
    support::run(support::minica(&ca.home, tmp.path()).args(["crl"])).ok();
    let crl = ca.home.join("crl.pem");
    let (ran, json) = probe(&ca.home, &[&target(addr).as_str(), &"--crl", &crl]);
    assert_diagnosis(&ran, &json, "ok");
    support::run(support::minica(&ca.home, tmp.path()).args(["revoke", "localhost"])).ok();
    let (ran, json) = probe(&ca.home, &[&target(addr).as_str(), &"--crl", &crl]);
    assert_diagnosis(&ran, &json, "revoked");
    assert_eq!(json["valid"], false);
}

/// A server that requires a client certificate from `ca` (`-Verify 1
/// -verify_return_error`), with `extra` options.
fn serve_mtls(dir: &Path, ca: &Ca, extra: &[&str]) -> (Proc, SocketAddr) {
    let bundle = ca.home.join("bundle.pem");
    let mut args = vec![
        "-Verify",
        "1",
        "-verify_return_error",
        "-CAfile",
        bundle.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    serve(dir, ca, Some(&ca.intermediate()), &args)
}

/// Without, with a good and with another CA's client certificate.
fn client_certificates(version: &str, server: &[&str], client: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path(), "ca");
    let (_srv, addr) = serve_mtls(tmp.path(), &ca, server);
    let t = target(addr);
    let t = t.as_str();
    let with = |extra: &[&dyn AsRefOsStr]| {
        let mut args: Vec<&dyn AsRefOsStr> = vec![&t];
        args.extend(client.iter().map(|c| c as &dyn AsRefOsStr));
        args.extend_from_slice(extra);
        probe(&ca.home, &args)
    };

    let (ran, json) = with(&[]);
    assert_diagnosis(&ran, &json, "client-certificate-required");
    assert_eq!(json["tls_version"], version);
    assert_eq!(json["client_cert_requested"], true);
    assert_eq!(json["valid"], true, "the server's chain is fine: {ran}");
    let cas = json["acceptable_client_cas"].as_array().unwrap();
    assert!(
        cas.iter()
            .any(|c| c.as_str().unwrap().contains("minica root")),
        "{ran}"
    );

    let identity = ca.dir.join("localhost");
    let (ran, json) = with(&[&"--identity", &identity]);
    assert_diagnosis(&ran, &json, "ok");
    assert_eq!(json["client_cert_requested"], true);

    // A client certificate from another CA is refused.
    let other = Ca::new(tmp.path(), "other");
    let (cert, key) = (other.leaf("chain.pem"), other.leaf("key.pem"));
    let (ran, json) = with(&[&"--cert", &cert, &"--key", &key]);
    assert_diagnosis(&ran, &json, "client-certificate-rejected");
}

#[test]
fn a_server_that_wants_a_client_certificate() {
    // TLS 1.3: the server refuses after the client's Finished, by alert.
    client_certificates("TLSv1.3", &[], &[]);
}

#[test]
fn a_tls12_server_that_wants_a_client_certificate() {
    // TLS 1.2: the server refuses during the handshake (handshake_failure).
    client_certificates("TLSv1.2", &["-tls1_2"], &["--tls12"]);
}

#[test]
fn a_tls12_only_server_needs_tls12() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path(), "ca");
    let (_srv, addr) = serve(tmp.path(), &ca, Some(&ca.intermediate()), &["-tls1_2"]);
    let (ran, json) = probe(&ca.home, &[&target(addr).as_str()]);
    assert_diagnosis(&ran, &json, "version-or-cipher-mismatch");
    assert!(json["tls_version"].is_null(), "{ran}");
    assert!(json["valid"].is_null(), "no chain was received: {ran}");
    assert!(json["fix"].as_str().unwrap().contains("--tls12"), "{ran}");

    let (ran, json) = probe(&ca.home, &[&target(addr).as_str(), &"--tls12"]);
    assert_diagnosis(&ran, &json, "ok");
    assert_eq!(json["tls_version"], "TLSv1.2");
    assert_eq!(json["forward_secrecy"], true);
    assert!(
        json["cipher_suite"].as_str().unwrap().contains("ECDHE"),
        "{ran}"
    );
    assert_eq!(json["resumption"], true);
}

#[test]
fn without_tickets_there_is_no_resumption() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path(), "ca");
    // OpenSSL 3 with TLS 1.3 and -no_ticket alone still issues stateful
    // tickets (the session stays in its cache); -no_cache turns those off.
    let (_srv, addr) = serve(
        tmp.path(),
        &ca,
        Some(&ca.intermediate()),
        &["-no_ticket", "-no_cache"],
    );
    let (ran, json) = probe(&ca.home, &[&target(addr).as_str()]);
    assert_diagnosis(&ran, &json, "ok");
    assert_eq!(json["resumption"], false);

    let (_srv2, addr2) = serve(
        tmp.path(),
        &ca,
        Some(&ca.intermediate()),
        &["-num_tickets", "0"],
    );
    let (ran, json) = probe(&ca.home, &[&target(addr2).as_str()]);
    assert_diagnosis(&ran, &json, "ok");
    assert_eq!(json["resumption"], false);
}

/// A MariaDB 10.11 greeting with CLIENT_SSL.
fn mysql_greeting() -> Vec<u8> {
    let mut p = vec![10];
    p.extend_from_slice(b"10.11.6-MariaDB\0");
    p.extend_from_slice(&7u32.to_le_bytes());
    p.extend_from_slice(b"abcdefgh\0");
    p.extend_from_slice(&0xfffeu16.to_le_bytes());
    p.push(45);
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&0x81ffu16.to_le_bytes());
    p.push(21);
    p.extend_from_slice(&[0; 10]);
    p.extend_from_slice(b"ijklmnopqrst\0mysql_native_password\0");
    let mut packet = vec![p.len() as u8, 0, 0, 0];
    packet.extend_from_slice(&p);
    packet
}

/// A plain TCP server that sends a MySQL greeting to each client (at most
/// 16) and then reads until the client goes (bounded).
fn fake_mysql() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten().take(16) {
            std::thread::spawn(move || {
                let _ = s.write_all(&mysql_greeting());
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 1024];
                while s.read(&mut buf).is_ok_and(|n| n > 0) {}
            });
        }
    });
    addr
}

#[test]
fn a_mysql_greeting_is_not_tls_and_suggests_starttls() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path(), "ca");
    let addr = fake_mysql();
    let (ran, json) = probe(&ca.home, &[&target(addr).as_str()]);
    assert_diagnosis(&ran, &json, "not-tls");
    assert!(
        json["fix"].as_str().unwrap().contains("--starttls mysql"),
        "{ran}"
    );
    assert!(
        json["detail"].as_str().unwrap().contains("10.11.6-MariaDB"),
        "{ran}"
    );
    assert!(json["chain"].is_null());
}

#[test]
fn a_closed_port_is_connection_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path(), "ca");
    let addr = free_addr();
    let (ran, json) = probe(&ca.home, &[&target(addr).as_str()]);
    assert_diagnosis(&ran, &json, "connection-refused");
    assert!(json["tls_version"].is_null());
    assert!(json["resumption"].is_null());
}

#[test]
fn a_server_that_never_answers_is_a_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path(), "ca");
    // Never accepted: the kernel completes the TCP handshake from the
    // backlog, and nobody ever answers the ClientHello.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let start = Instant::now();
    let (ran, json) = probe(&ca.home, &[&target(addr).as_str(), &"--timeout", &"2s"]);
    let took = start.elapsed();
    assert_diagnosis(&ran, &json, "timeout");
    // Loose bound (the contract: within the timeout plus one second).
    assert!(took < Duration::from_secs(2 + 5), "took {took:?}");
    drop(listener);
}

#[test]
fn local_file_errors_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path(), "ca");
    let missing = tmp.path().join("nope.pem");
    for args in [
        vec![
            "probe",
            "127.0.0.1:1",
            "--bundle",
            missing.to_str().unwrap(),
        ],
        vec![
            "probe",
            "127.0.0.1:1",
            "--identity",
            missing.to_str().unwrap(),
        ],
        vec!["probe", "127.0.0.1:1", "--crl", missing.to_str().unwrap()],
        vec!["probe", "no-port"],
        vec!["probe", "127.0.0.1:1", "--timeout", "0s"],
    ] {
        let ran = support::run(support::minica(&ca.home, tmp.path()).args(&args)).code(2);
        assert!(ran.stdout.is_empty(), "{ran}");
    }
}

#[test]
fn the_sidecar_inbound_wants_and_accepts_a_minica_identity() {
    use crate::sidecar::harness::{echo_backend, inbound_dir};
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path(), "ca");
    let identity = ca.dir.join("localhost");
    let (_p, listen, _) = inbound_dir(tmp.path(), "inbound", &identity, echo_backend(), &[]);
    let (ran, json) = probe(&ca.home, &[&target(listen).as_str()]);
    assert_diagnosis(&ran, &json, "client-certificate-required");
    let (ran, json) = probe(
        &ca.home,
        &[&target(listen).as_str(), &"--identity", &identity],
    );
    assert_diagnosis(&ran, &json, "ok");
    assert_eq!(json["tls_version"], "TLSv1.3");
    assert_eq!(json["valid"], true);
}

#[test]
fn a_client_only_certificate_is_wrong_purpose() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path(), "ca");
    let leaf = ca.issue("client-only", &["--client"]);
    let (_srv, addr) = serve_leaf(tmp.path(), &leaf, Some(&ca.intermediate()), &[]);
    let (ran, json) = probe(&ca.home, &[&target(addr).as_str()]);
    assert_diagnosis(&ran, &json, "wrong-purpose");
    assert_eq!(json["valid"], false);
}

#[test]
fn alpn_is_reported_and_a_server_that_refuses_ours_is_probed_without() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path(), "ca");
    let inter = ca.intermediate();
    let (_srv, addr) = serve(tmp.path(), &ca, Some(&inter), &["-alpn", "h2"]);
    let (ran, json) = probe(&ca.home, &[&target(addr).as_str()]);
    assert_diagnosis(&ran, &json, "ok");
    assert_eq!(json["alpn"], "h2");
    // This server answers other protocols with no_application_protocol.
    let (_srv2, addr2) = serve(tmp.path(), &ca, Some(&inter), &["-alpn", "imap"]);
    let (ran, json) = probe(&ca.home, &[&target(addr2).as_str()]);
    assert_diagnosis(&ran, &json, "ok");
    assert!(json["alpn"].is_null(), "{ran}");
}

/// A leaf for 127.0.0.1 signed by the CA home's intermediate key, valid
/// from `from` to `to` (relative to now), written to `dir/cert.pem`,
/// `dir/key.pem`.
fn leaf_signed_by_home(ca: &Ca, dir: &Path, from: time::Duration, to: time::Duration) -> PathBuf {
    use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, Issuer, KeyPair, SerialNumber};
    std::fs::create_dir_all(dir).unwrap();
    let inter_pem = std::fs::read_to_string(ca.intermediate()).unwrap();
    let inter_key =
        KeyPair::from_pem(&std::fs::read_to_string(ca.home.join("intermediate-key.pem")).unwrap())
            .unwrap();
    let issuer = Issuer::from_ca_cert_pem(&inter_pem, inter_key).unwrap();
    let mut p = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "127.0.0.1");
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.use_authority_key_identifier_extension = true;
    p.serial_number = Some(SerialNumber::from_slice(&[0x3a, 1, 2, 3, 4, 5, 6, 7, 8]));
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now + from;
    p.not_after = now + to;
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    dir.to_path_buf()
}

#[test]
fn a_certificate_from_the_future_is_not_yet_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path(), "ca");
    let leaf = leaf_signed_by_home(
        &ca,
        &tmp.path().join("future"),
        time::Duration::days(1),
        time::Duration::days(30),
    );
    let (_srv, addr) = serve_leaf(tmp.path(), &leaf, Some(&ca.intermediate()), &[]);
    let (ran, json) = probe(&ca.home, &[&target(addr).as_str()]);
    assert_diagnosis(&ran, &json, "not-yet-valid");
    assert_eq!(json["valid"], false);
}

#[test]
fn starttls_mysql_through_the_sidecar_inbound() {
    use crate::sidecar::harness::inbound_dir;
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path(), "ca");
    let identity = ca.dir.join("localhost");
    // The sidecar relays the upstream's greeting with CLIENT_SSL and speaks
    // TLS (mutual) with us after our SSLRequest.
    let (_p, listen, _) = inbound_dir(
        tmp.path(),
        "inbound-mysql",
        &identity,
        fake_mysql(),
        &["--protocol", "mysql"],
    );
    let t = target(listen);
    let t = t.as_str();
    let (ran, json) = probe(
        &ca.home,
        &[&t, &"--starttls", &"mysql", &"--identity", &identity],
    );
    assert_diagnosis(&ran, &json, "ok");
    assert_eq!(json["mysql_server_version"], "10.11.6-MariaDB", "{ran}");
    assert_eq!(json["tls_version"], "TLSv1.3");
    assert!(json["alpn"].is_null(), "no ALPN with STARTTLS: {ran}");
    let (ran, json) = probe(&ca.home, &[&t, &"--starttls", &"mysql"]);
    assert_diagnosis(&ran, &json, "client-certificate-required");
    assert_eq!(json["mysql_server_version"], "10.11.6-MariaDB", "{ran}");
    // Without --starttls, the greeting is not TLS.
    let (ran, json) = probe(&ca.home, &[&t]);
    assert_diagnosis(&ran, &json, "not-tls");
}

/// A real MariaDB with TLS: `--starttls mysql` reads its greeting, upgrades
/// the stream and reports the server version; without it the greeting is
/// recognised as not TLS, with the hint.
#[test]
fn real_mariadb_through_starttls_mysql() {
    use crate::mysql::server::Mariadb;
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path(), "ca");
    let options = [
        format!("--ssl-ca={}", ca.home.join("bundle.pem").display()),
        format!("--ssl-cert={}", ca.leaf("chain.pem").display()),
        format!("--ssl-key={}", ca.leaf("key.pem").display()),
    ];
    let db = Mariadb::start(&options);
    let target = format!("127.0.0.1:{}", db.port);
    let (ran, json) = probe(&ca.home, &[&target.as_str(), &"--starttls", &"mysql"]);
    assert_diagnosis(&ran, &json, "ok");
    let version = json["mysql_server_version"].as_str().unwrap_or_default();
    assert!(version.contains("MariaDB"), "{ran}");
    assert!(
        json["tls_version"]
            .as_str()
            .unwrap_or_default()
            .starts_with("TLSv1."),
        "{ran}"
    );
    let (ran, json) = probe(&ca.home, &[&target.as_str()]);
    assert_diagnosis(&ran, &json, "not-tls");
    assert!(
        json["fix"]
            .as_str()
            .unwrap_or_default()
            .contains("--starttls mysql"),
        "{ran}"
    );
}

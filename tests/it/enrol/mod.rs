//! `minica enroll`, `minica renew --ca-url` and the sidecar's
//! `--renew-from`/`--crl-from` against a running `minica serve`.
//!
//! Real processes only: `minica init`/`token`/`issue`/`revoke` (through the
//! server's ledger socket), `minica serve` on 127.0.0.1, `minica enroll`,
//! `minica-sidecar`, and `openssl verify`/`s_client`/`x509` as the judges.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::sidecar::fixtures::Leaf;
use crate::sidecar::harness::{
    echo_backend, echo_line, free_addr, http_get, metric, peer_serial, run_bounded, sidecar, spawn,
    tls_connect, Proc,
};
use crate::support::{self, require_tool, Ran, Scratch};

/// How long a server may take to print its fingerprint and answer /healthz.
const START_LIMIT: Duration = Duration::from_secs(30);

/// A running `minica serve` (killed on drop, also when a test fails).
struct Server {
    // Kept for its Drop: the server is killed with the struct.
    _proc: Proc,
    addr: SocketAddr,
    fingerprint: String,
}

impl Server {
    fn start(s: &Scratch) -> Server {
        Server::start_at(s, free_addr())
    }

    /// Starts a server listening on `addr` (e.g. the address of one that
    /// was stopped).
    fn start_at(s: &Scratch, addr: SocketAddr) -> Server {
        let admin = free_addr();
        let mut cmd = support::minica(&s.home, &s.work);
        cmd.args([
            "serve",
            "--listen",
            &addr.to_string(),
            "--admin",
            &admin.to_string(),
        ]);
        let log = s.dir.path().join(format!("serve-{}.log", admin.port()));
        let mut proc = spawn(cmd, &log);
        let end = Instant::now() + START_LIMIT;
        loop {
            assert!(
                Instant::now() < end,
                "minica serve did not become ready:\n{}",
                proc.log()
            );
            proc.assert_running();
            let fingerprint = proc.log().lines().find_map(|l| {
                l.strip_prefix("root fingerprint:")
                    .map(|f| f.trim().to_string())
            });
            if let (Some(fingerprint), Some((200, _))) = (fingerprint, http_get(admin, "/healthz"))
            {
                return Server {
                    _proc: proc,
                    addr,
                    fingerprint,
                };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }
}

/// `minica init` and a server on it.
fn ca_with_server() -> (Scratch, Server) {
    let s = Scratch::new();
    s.minica(&["init"]).ok();
    let server = Server::start(&s);
    (s, server)
}

/// A fresh one-time token for NAME (the last line of stdout).
fn token(s: &Scratch, name: &str) -> String {
    let ran = s.minica(&["token", name]).ok();
    ran.stdout.lines().last().unwrap().trim().to_string()
}

/// The serial of a PEM certificate file (lowercase hex, as minica prints it).
fn serial_of(path: &Path) -> String {
    let der = pem_der(&std::fs::read_to_string(path).unwrap());
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    hex(cert.raw_serial())
}

fn spki_of(path: &Path) -> Vec<u8> {
    let der = pem_der(&std::fs::read_to_string(path).unwrap());
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    cert.public_key().raw.to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The DER of the first PEM certificate in `text`.
fn pem_der(text: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_slice_iter(text.as_bytes())
        .next()
        .expect("a PEM certificate")
        .unwrap()
        .to_vec()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn openssl_verify(s: &Scratch, dir: &str) -> Ran {
    s.openssl(&[
        "verify",
        "-CAfile",
        &format!("{dir}/ca.pem"),
        "-untrusted",
        &format!("{dir}/chain.pem"),
        &format!("{dir}/cert.pem"),
    ])
}

fn enroll(s: &Scratch, name: &str, server: &Server, token: &str, trust: &[&str]) -> Ran {
    let mut args = vec!["enroll", name, "--ca-url"];
    let url = server.url();
    args.push(&url);
    args.extend(["--token", token]);
    args.extend(trust);
    s.minica(&args)
}

#[test]
fn enroll_with_a_pinned_root_or_a_bundle_then_renew_online() {
    require_tool("openssl");
    let (s, server) = ca_with_server();
    let fp = server.fingerprint.clone();
    assert!(fp.starts_with("sha256:"), "{fp}");

    // Pinned root fingerprint.
    let t = token(&s, "svc-a");
    let ran = enroll(&s, "svc-a", &server, &t, &["--root-fingerprint", &fp]).ok();
    assert!(ran.stdout.contains("enrolled svc-a"), "{ran}");
    openssl_verify(&s, "svc-a").ok();
    #[cfg(unix)]
    assert_eq!(mode(&s.path("svc-a/key.pem")), 0o600);
    // ca.pem is the bundle, chain.pem starts with cert.pem (as `issue`).
    assert_eq!(
        s.read("svc-a/ca.pem"),
        std::fs::read_to_string(s.home.join("bundle.pem")).unwrap()
    );
    assert!(s
        .read("svc-a/chain.pem")
        .starts_with(&s.read("svc-a/cert.pem")));

    // The same token again: refused, nothing written.
    let ran = enroll(&s, "svc-a", &server, &t, &["--root-fingerprint", &fp]).code(2);
    assert!(ran.stderr.contains("already exists"), "{ran}");
    let ran = enroll(
        &s,
        "svc-a",
        &server,
        &t,
        &["--root-fingerprint", &fp, "--out", "again"],
    )
    .code(2);
    assert!(ran.stderr.contains("403"), "{ran}");
    assert!(!s.path("again").exists());

    // A bundle file, a fingerprint given as colon-separated upper case.
    let t = token(&s, "svc-b");
    let colons = fp
        .trim_start_matches("sha256:")
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap().to_uppercase())
        .collect::<Vec<_>>()
        .join(":");
    let wrong = format!("sha256:{}", "00".repeat(32));
    let ran = enroll(&s, "svc-b", &server, &t, &["--root-fingerprint", &wrong]).code(2);
    assert!(
        ran.stderr.contains("no root in the bundle served by") && ran.stderr.contains(&wrong),
        "{ran}"
    );
    assert!(!s.path("svc-b").exists());
    // The token was not spent by the refused attempt.
    enroll(&s, "svc-b", &server, &t, &["--root-fingerprint", &colons]).ok();
    openssl_verify(&s, "svc-b").ok();
    let t = token(&s, "svc-c");
    let bundle = s.home.join("bundle.pem");
    enroll(
        &s,
        "svc-c",
        &server,
        &t,
        &[
            "--ca-bundle",
            bundle.to_str().unwrap(),
            "--key-type",
            "ed25519",
        ],
    )
    .ok();
    openssl_verify(&s, "svc-c").ok();

    // A bad token, an unreachable CA: exit 2, nothing written.
    let ran = enroll(
        &s,
        "svc-d",
        &server,
        "not-a-token",
        &["--root-fingerprint", &fp],
    )
    .code(2);
    assert!(ran.stderr.contains("refused"), "{ran}");
    let dead = format!("https://{}", free_addr());
    let ran = s
        .minica(&[
            "enroll",
            "svc-d",
            "--ca-url",
            &dead,
            "--token",
            "x",
            "--root-fingerprint",
            &fp,
        ])
        .code(2);
    assert!(ran.stderr.contains("cannot connect"), "{ran}");
    assert!(!s.path("svc-d").exists());

    // Online renewal: a new serial and key; with --reuse-key the same key.
    let dir = s.path("svc-a");
    let old_serial = serial_of(&dir.join("cert.pem"));
    let old_spki = spki_of(&dir.join("cert.pem"));
    let ran = s
        .minica(&[
            "renew",
            "--ca-url",
            &server.url(),
            "--identity",
            dir.to_str().unwrap(),
        ])
        .ok();
    assert!(ran.stdout.contains("new key"), "{ran}");
    let new_serial = serial_of(&dir.join("cert.pem"));
    assert_ne!(new_serial, old_serial);
    let new_spki = spki_of(&dir.join("cert.pem"));
    assert_ne!(new_spki, old_spki);
    openssl_verify(&s, "svc-a").ok();
    #[cfg(unix)]
    assert_eq!(mode(&dir.join("key.pem")), 0o600);
    let key_before = std::fs::read(dir.join("key.pem")).unwrap();
    s.minica(&[
        "renew",
        "--ca-url",
        &server.url(),
        "--identity",
        dir.to_str().unwrap(),
        "--reuse-key",
    ])
    .ok();
    assert_ne!(serial_of(&dir.join("cert.pem")), new_serial);
    assert_eq!(spki_of(&dir.join("cert.pem")), new_spki);
    assert_eq!(std::fs::read(dir.join("key.pem")).unwrap(), key_before);
    openssl_verify(&s, "svc-a").ok();
    let list = s.minica(&["list", "--all"]).ok();
    let old_row = list
        .stdout
        .lines()
        .find(|l| l.contains(&old_serial))
        .unwrap_or_else(|| panic!("{old_serial} not listed:\n{list}"));
    assert!(old_row.contains("superseded"), "{old_row}");

    // An unreadable identity: exit 2, nothing written.
    let ran = s
        .minica(&["renew", "--ca-url", &server.url(), "--identity", "nowhere"])
        .code(2);
    assert!(ran.stderr.contains("nowhere"), "{ran}");
    assert!(!s.path("nowhere").exists());
    drop(server);
}

/// `openssl s_client` to `addr` as `client`; the serial of the certificate
/// the server presented.
fn s_client_serial(addr: SocketAddr, client: &Path) -> Option<String> {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &addr.to_string(), "-CAfile"])
        .arg(client.join("ca.pem"))
        .arg("-cert")
        .arg(client.join("cert.pem"))
        .arg("-key")
        .arg(client.join("key.pem"));
    let ran = run_bounded(cmd, b"", Duration::from_secs(20));
    let start = ran.stdout.find("-----BEGIN CERTIFICATE-----")?;
    let der = pem_der(&ran.stdout[start..]);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    Some(hex(cert.raw_serial()))
}

/// Polls `f` every 500 ms until it gives `Some`, at most `limit`.
fn poll<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_sidecar_renews_itself_without_dropping_connections_and_fetches_the_crl() {
    require_tool("openssl");
    let (s, server) = ca_with_server();
    // A short-lived leaf: the server renews it with the same validity.
    s.minica(&["issue", "side", "--valid", "60s", "--dns", "localhost"])
        .ok();
    s.minica(&["issue", "client"]).ok();
    let side = s.path("side");
    let client = Leaf {
        dir: s.path("client"),
        serial: serial_of(&s.path("client/cert.pem")),
    };
    let first = serial_of(&side.join("cert.pem"));
    let upstream = echo_backend();
    let listen = free_addr();
    let admin = free_addr();
    let mut proc = sidecar(
        s.dir.path(),
        "sidecar",
        [
            "inbound",
            "--listen",
            &listen.to_string(),
            "--upstream",
            &upstream.to_string(),
            "--identity",
            side.to_str().unwrap(),
            "--renew-from",
            &server.url(),
            "--crl-from",
            &server.url(),
            "--admin",
            &admin.to_string(),
        ],
    );
    poll("the sidecar to be ready", START_LIMIT, || {
        proc.assert_running();
        matches!(http_get(admin, "/readyz"), Some((200, _))).then_some(())
    });
    // --crl-from fetched the CRLs before the route started.
    assert!(side.join("crl.pem").exists(), "{}", proc.log());

    // A connection opened before the renewal.
    let mut before = tls_connect(&client, listen).unwrap();
    // Normally `first`; on a very slow host a renewal may already have
    // happened, and the next one is then awaited.
    let at_open = peer_serial(&before);
    assert_eq!(echo_line(&mut before, "one").unwrap(), "one");

    // The leaf lives 60 s (+ the 60 s minica backdates notBefore by), so
    // renewal is due about 20 s after issue; allow well beyond.
    let renewed = poll(
        "a new serial from s_client",
        Duration::from_secs(90),
        || {
            proc.assert_running();
            s_client_serial(listen, &client.dir)
                .filter(|serial| *serial != first && *serial != at_open)
        },
    );
    assert_eq!(serial_of(&side.join("cert.pem")), renewed, "{}", proc.log());
    #[cfg(unix)]
    assert_eq!(mode(&side.join("key.pem")), 0o600);
    // The old connection still carries bytes.
    assert_eq!(echo_line(&mut before, "two").unwrap(), "two");
    let series =
        "minica_sidecar_renewals_total{route=\"inbound\",direction=\"inbound\",result=\"ok\"}";
    // Counted and logged right after the files are written (bounded poll:
    // the reload may come first).
    poll(
        "the renewal metric and log line",
        Duration::from_secs(20),
        || {
            let log = proc.log();
            (metric(admin, series).unwrap_or(0.0) >= 1.0
                && log.contains("certificate renewed")
                && log.contains(&renewed))
            .then_some(())
        },
    );
    let log = proc.log();
    assert!(!log.contains("PRIVATE KEY"), "{log}");
    let expiry = metric(
        admin,
        "minica_sidecar_cert_expiry_timestamp_seconds{route=\"inbound\",direction=\"inbound\"}",
    )
    .unwrap();
    assert!(expiry > 0.0);

    // A revocation shows up in the fetched CRL (SIGHUP fetches at once) and
    // the client is then refused, counted as revoked.
    assert!(tls_connect(&client, listen).is_ok());
    s.minica(&["revoke", "client"]).ok();
    let revoked =
        "minica_sidecar_handshake_failures_total{route=\"inbound\",direction=\"inbound\",reason=\"revoked\"}";
    poll(
        "the revoked client to be refused",
        Duration::from_secs(30),
        || {
            proc.signal("HUP");
            std::thread::sleep(Duration::from_millis(700));
            let refused = tls_connect(&client, listen)
                .and_then(|mut c| echo_line(&mut c, "x"))
                .is_err();
            (refused && metric(admin, revoked).unwrap_or(0.0) >= 1.0).then_some(())
        },
    );
    proc.assert_running();
    drop(proc);
    drop(server);
}

#[test]
fn a_sidecar_keeps_serving_while_the_ca_is_down_and_renews_when_it_is_back() {
    require_tool("openssl");
    let (s, server) = ca_with_server();
    let addr = server.addr;
    let url = server.url();
    s.minica(&["issue", "side", "--valid", "60s", "--dns", "localhost"])
        .ok();
    s.minica(&["issue", "client"]).ok();
    let side = s.path("side");
    let client = s.path("client");
    let first = serial_of(&side.join("cert.pem"));
    drop(server);
    let listen = free_addr();
    let admin = free_addr();
    let mut proc = sidecar(
        s.dir.path(),
        "sidecar-down",
        [
            "inbound",
            "--listen",
            &listen.to_string(),
            "--upstream",
            &echo_backend().to_string(),
            "--identity",
            side.to_str().unwrap(),
            "--renew-from",
            &url,
            "--admin",
            &admin.to_string(),
        ],
    );
    let errors =
        "minica_sidecar_renewals_total{route=\"inbound\",direction=\"inbound\",result=\"error\"}";
    let ok = "minica_sidecar_renewals_total{route=\"inbound\",direction=\"inbound\",result=\"ok\"}";
    poll("a failed renewal", Duration::from_secs(60), || {
        proc.assert_running();
        (metric(admin, errors).unwrap_or(0.0) >= 1.0
            && proc.log().contains("the current certificate keeps serving"))
        .then_some(())
    });
    // Still serving the current certificate.
    assert_eq!(
        s_client_serial(listen, &client).as_deref(),
        Some(first.as_str())
    );
    // The CA comes back on the same address: the next retry renews.
    let server = Server::start_at(&s, addr);
    let renewed = poll(
        "a renewal after the CA came back",
        Duration::from_secs(60),
        || {
            proc.assert_running();
            if metric(admin, ok).unwrap_or(0.0) < 1.0 {
                return None;
            }
            s_client_serial(listen, &client).filter(|serial| *serial != first)
        },
    );
    assert_eq!(serial_of(&side.join("cert.pem")), renewed);
    drop(proc);
    drop(server);
}

#[test]
fn an_outbound_sidecar_renews_its_identity_too() {
    let (s, server) = ca_with_server();
    s.minica(&["issue", "out", "--valid", "60s"]).ok();
    let dir = s.path("out");
    let first = serial_of(&dir.join("cert.pem"));
    let admin = free_addr();
    let mut proc = sidecar(
        s.dir.path(),
        "sidecar-out",
        [
            "outbound",
            "--listen",
            &free_addr().to_string(),
            "--upstream",
            &free_addr().to_string(),
            "--server-name",
            "peer",
            "--identity",
            dir.to_str().unwrap(),
            "--renew-from",
            &server.url(),
            "--admin",
            &admin.to_string(),
        ],
    );
    let ok =
        "minica_sidecar_renewals_total{route=\"outbound\",direction=\"outbound\",result=\"ok\"}";
    poll("an outbound renewal", Duration::from_secs(90), || {
        proc.assert_running();
        (metric(admin, ok).unwrap_or(0.0) >= 1.0).then_some(())
    });
    let renewed = serial_of(&dir.join("cert.pem"));
    assert_ne!(renewed, first);
    // The route's watcher picks the new files up (polled every 0.5 s).
    poll(
        "the outbound route to reload",
        Duration::from_secs(20),
        || {
            let log = proc.log();
            log.lines()
                .any(|l| l.contains("credentials reloaded") && l.contains(&renewed))
                .then_some(())
        },
    );
    drop(proc);
    drop(server);
}

/// Settings for the sidecar that cannot work are refused before it starts.
#[test]
fn sidecar_online_flags_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let ran = crate::sidecar::harness::sidecar_run([
        "inbound",
        "--listen",
        "127.0.0.1:1",
        "--upstream",
        "127.0.0.1:2",
        "--cert",
        "c.pem",
        "--key",
        "k.pem",
        "--ca",
        "a.pem",
        "--crl-from",
        "http://ca:8443",
    ]);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(ran.stderr.contains("--crl-from"), "{ran}");
    // --renew-from needs --identity (clap).
    let ran = crate::sidecar::harness::sidecar_run([
        "inbound",
        "--listen",
        "127.0.0.1:1",
        "--upstream",
        "127.0.0.1:2",
        "--renew-from",
        "https://ca:8443",
    ]);
    assert_eq!(ran.code, Some(2), "{ran}");
    // No CA to fetch the first CRL from and no CRL file: exit 2.
    let id = dir.path().join("id");
    let s = Scratch::new();
    s.minica(&["issue", "id", "--out", id.to_str().unwrap()])
        .ok();
    let dead = format!("https://{}", free_addr());
    let ran = crate::sidecar::harness::sidecar_run([
        "inbound",
        "--listen",
        &free_addr().to_string(),
        "--upstream",
        "127.0.0.1:2",
        "--identity",
        id.to_str().unwrap(),
        "--crl-from",
        &dead,
    ]);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr.contains("CRL") && ran.stderr.contains(&dead),
        "{ran}"
    );
}

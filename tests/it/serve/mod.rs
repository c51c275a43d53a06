//! `minica serve`: the online CA's HTTP API against curl and openssl.
//!
//! Real processes only: `minica init`, `minica serve` on 127.0.0.1,
//! `minica token` / `revoke` / `list` through the server's ledger socket,
//! CSRs made by `openssl req`, requests made by `curl`, results checked by
//! `openssl verify` and `openssl crl`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod postgres;

use crate::sidecar::harness::{free_addr, http_get};
use crate::support::{self, require_tool, run, Ran, Scratch};

/// How long a server may take to print its URL and answer /healthz.
const START_LIMIT: Duration = Duration::from_secs(30);

/// A running `minica serve`, killed when dropped (also when a test fails).
struct Server {
    child: Child,
    addr: SocketAddr,
    admin: SocketAddr,
    /// What it printed on stdout before it was ready.
    banner: Vec<String>,
    /// The CA home's bundle.pem (curl's --cacert).
    bundle: PathBuf,
}

impl Server {
    fn start(s: &Scratch) -> Server {
        Server::start_with(s, &[])
    }

    /// Starts `minica [global] serve ...` (e.g. `--store URL`).
    fn start_with(s: &Scratch, global: &[&str]) -> Server {
        Server::start_args(s, global, &[])
    }

    /// Starts `minica [global] serve ... [extra]`.
    fn start_args(s: &Scratch, global: &[&str], extra: &[&str]) -> Server {
        let addr = free_addr();
        let admin = free_addr();
        let mut child = support::minica(&s.home, &s.work)
            .args(global)
            .args([
                "serve",
                "--listen",
                &addr.to_string(),
                "--admin",
                &admin.to_string(),
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // Drain stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[minica serve] {line}");
            }
        });
        let mut server = Server {
            child,
            addr,
            admin,
            banner: Vec::new(),
            bundle: s.home.join("bundle.pem"),
        };
        let end = Instant::now() + START_LIMIT;
        while !server
            .banner
            .iter()
            .any(|l| l.starts_with("root fingerprint:"))
        {
            assert!(Instant::now() < end, "no banner: {:?}", server.banner);
            server.assert_running();
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
                server.banner.push(line);
            }
        }
        while Instant::now() < end {
            if server.get("/healthz").0 == 200 {
                return server;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("minica serve did not become healthy");
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("minica serve exited early: {status}");
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    /// `curl` GET with the CA's bundle: (status, body).
    fn get(&self, path: &str) -> (u16, Vec<u8>) {
        curl(&self.bundle(), &[&self.url(path)])
    }

    fn bundle(&self) -> PathBuf {
        self.bundle.clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs curl (bounded by --max-time) and returns (status, body).
fn curl(bundle: &Path, args: &[&str]) -> (u16, Vec<u8>) {
    require_tool("curl");
    let out = tempfile::NamedTempFile::new().unwrap();
    let ran = run(Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(bundle)
        .arg("-o")
        .arg(out.path())
        .args(["-w", "%{http_code}"])
        .args(args));
    let code: u16 = ran.stdout.trim().parse().unwrap_or(0);
    (code, std::fs::read(out.path()).unwrap_or_default())
}

/// POSTs `body` as JSON, optionally with a client certificate and key.
fn post(server: &Server, path: &str, body: &[u8], client: Option<(&Path, &Path)>) -> (u16, Json) {
    let (code, out) = try_post(server, path, body, client);
    let json = serde_json::from_slice(&out).unwrap_or_else(|e| {
        panic!(
            "{path}: {code}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out)
        )
    });
    (code, json)
}

/// [`post`] that returns the raw answer (status 0: no answer at all).
fn try_post(
    server: &Server,
    path: &str,
    body: &[u8],
    client: Option<(&Path, &Path)>,
) -> (u16, Vec<u8>) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), body).unwrap();
    let data = format!("@{}", file.path().display());
    let url = server.url(path);
    let mut args = vec![
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "--data-binary",
        &data,
    ];
    let (cert, key);
    if let Some((c, k)) = client {
        cert = c.display().to_string();
        key = k.display().to_string();
        args.extend(["--cert", &cert, "--key", &key]);
    }
    args.push(&url);
    curl(&server.bundle(), &args)
}

type Json = serde_json::Value;

/// `openssl req`: a P-256 key and a CSR for `subject` in `work/`.
fn make_csr(s: &Scratch, stem: &str, subject: &str) -> String {
    s.openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &format!("{stem}.key"),
        "-out",
        &format!("{stem}.csr"),
        "-subj",
        subject,
    ])
    .ok();
    s.read(&format!("{stem}.csr"))
}

fn token(s: &Scratch, name: &str) -> String {
    let ran = s.minica(&["token", name]).ok();
    ran.stdout.lines().last().unwrap().trim().to_string()
}

fn enroll_body(token: &str, csr: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"token": token, "csr": csr})).unwrap()
}

fn renew_body(csr: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"csr": csr})).unwrap()
}

/// The serial of a PEM certificate file, as uppercase hex without colons
/// or leading zeros.
fn serial_of(s: &Scratch, file: &str) -> String {
    let out = s
        .openssl(&["x509", "-in", file, "-noout", "-serial"])
        .ok()
        .stdout;
    norm_serial(out.trim().trim_start_matches("serial="))
}

fn norm_serial(hex: &str) -> String {
    hex.replace(':', "")
        .to_ascii_uppercase()
        .trim_start_matches('0')
        .to_string()
}

/// The status of `serial` in `minica list --all --json`.
fn ledger_status(s: &Scratch, serial: &str) -> String {
    let ran = s.minica(&["list", "--all", "--json"]).ok();
    let rows: Json = serde_json::from_str(&ran.stdout)
        .or_else(|_| {
            // One JSON object per line.
            let rows: Vec<Json> = ran
                .stdout
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            Ok::<_, serde_json::Error>(Json::Array(rows))
        })
        .unwrap();
    let rows = rows.as_array().unwrap();
    rows.iter()
        .find(|r| norm_serial(r["serial"].as_str().unwrap_or("")) == serial)
        .map(|r| r["status"].as_str().unwrap_or("").to_string())
        .unwrap_or_else(|| panic!("serial {serial} not in the ledger: {}", ran.stdout))
}

fn write_response(s: &Scratch, stem: &str, json: &Json) {
    for field in ["certificate", "chain", "bundle"] {
        let text = json[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field}: {json}"));
        std::fs::write(s.path(&format!("{stem}-{field}.pem")), text).unwrap();
    }
}

fn init(s: &Scratch) {
    s.minica(&["init"]).ok();
}

#[test]
fn enrol_renew_revoke_and_crl_with_curl_and_openssl() {
    require_tool("openssl");
    let s = Scratch::new();
    init(&s);
    let server = Server::start(&s);
    assert!(
        server.banner[0].starts_with("minica serve: listening on https://127.0.0.1:"),
        "{:?}",
        server.banner
    );
    let fp = server
        .banner
        .iter()
        .find_map(|l| l.strip_prefix("root fingerprint: sha256:"))
        .unwrap();
    let want = s
        .openssl(&[
            "x509",
            "-in",
            s.home.join("root.pem").to_str().unwrap(),
            "-noout",
            "-fingerprint",
            "-sha256",
        ])
        .ok()
        .stdout;
    assert_eq!(
        want.trim()
            .rsplit('=')
            .next()
            .unwrap()
            .replace(':', "")
            .to_lowercase(),
        fp
    );

    // Enrol with a token; openssl accepts the leaf.
    let t = token(&s, "web");
    let csr = make_csr(&s, "web", "/CN=web");
    let (code, json) = post(&server, "/v1/enroll", &enroll_body(&t, &csr), None);
    assert_eq!(code, 200, "{json}");
    write_response(&s, "web", &json);
    let bundle = s.home.join("bundle.pem");
    let ok = s.openssl(&[
        "verify",
        "-CAfile",
        bundle.to_str().unwrap(),
        "-untrusted",
        "web-chain.pem",
        "-purpose",
        "sslclient",
        "web-certificate.pem",
    ]);
    assert!(ok.stdout.contains("OK"), "{ok}");
    assert_eq!(
        s.read("web-bundle.pem"),
        std::fs::read_to_string(&bundle).unwrap()
    );
    let first = serial_of(&s, "web-certificate.pem");
    assert_eq!(ledger_status(&s, &first), "active");

    // The same token again; a CSR for another name; an unknown token.
    let (code, json) = post(&server, "/v1/enroll", &enroll_body(&t, &csr), None);
    assert_eq!(code, 403, "{json}");
    assert!(
        json["error"].as_str().unwrap().contains("already used"),
        "{json}"
    );
    let t2 = token(&s, "api");
    let other = make_csr(&s, "other", "/CN=other");
    let (code, json) = post(&server, "/v1/enroll", &enroll_body(&t2, &other), None);
    assert_eq!(code, 403, "{json}");
    // The refusal did not spend the token: a CSR within its names enrols.
    let api = make_csr(&s, "api", "/CN=api");
    let (code, json) = post(&server, "/v1/enroll", &enroll_body(&t2, &api), None);
    assert_eq!(code, 200, "{json}");
    let (code, json) = post(
        &server,
        "/v1/enroll",
        &enroll_body("not-a-token", &csr),
        None,
    );
    assert_eq!(code, 401, "{json}");

    // Renewal needs a client certificate.
    let csr2 = make_csr(&s, "web2", "/CN=web");
    let (code, json) = post(&server, "/v1/renew", &renew_body(&csr2), None);
    assert_eq!(code, 401, "{json}");

    // Renewal over mTLS: a new serial; the old one superseded in the ledger.
    let cert = s.path("web-chain.pem");
    let key = s.path("web.key");
    let (code, json) = post(
        &server,
        "/v1/renew",
        &renew_body(&csr2),
        Some((&cert, &key)),
    );
    assert_eq!(code, 200, "{json}");
    write_response(&s, "web2", &json);
    let second = serial_of(&s, "web2-certificate.pem");
    assert_ne!(first, second);
    assert_eq!(ledger_status(&s, &first), "superseded");
    assert_eq!(ledger_status(&s, &second), "active");
    // The superseded certificate cannot renew again.
    let (code, json) = post(
        &server,
        "/v1/renew",
        &renew_body(&csr2),
        Some((&cert, &key)),
    );
    assert_eq!(code, 403, "{json}");

    // A revoked caller cannot renew; the revocation is in the served CRL
    // within the contract's 2 s.
    s.minica(&["revoke", "web"]).ok();
    let cert2 = s.path("web2-chain.pem");
    let key2 = s.path("web2.key");
    let (code, json) = post(
        &server,
        "/v1/renew",
        &renew_body(&csr2),
        Some((&cert2, &key2)),
    );
    assert_eq!(code, 403, "{json}");
    assert!(
        json["error"].as_str().unwrap().contains("revoked"),
        "{json}"
    );

    let cas = s.path("cas.pem");
    std::fs::write(
        &cas,
        std::fs::read_to_string(s.home.join("intermediate.pem")).unwrap()
            + &std::fs::read_to_string(&bundle).unwrap(),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(2) + Duration::from_millis(900);
    let mut listed = false;
    let mut last = Ran {
        code: None,
        stdout: String::new(),
        stderr: String::new(),
    };
    while !listed && Instant::now() < deadline {
        let (code, der) = server.get("/v1/crl");
        assert_eq!(code, 200);
        std::fs::write(s.path("crl.der"), der).unwrap();
        last = s.openssl(&[
            "crl",
            "-inform",
            "DER",
            "-in",
            "crl.der",
            "-CAfile",
            cas.to_str().unwrap(),
            "-noout",
            "-text",
        ]);
        assert!(last.stderr.contains("verify OK"), "{last}");
        listed = last
            .stdout
            .to_ascii_uppercase()
            .replace(':', "")
            .contains(&second);
        if !listed {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert!(
        listed,
        "revoked serial {second} not in the served CRL:\n{last}"
    );
    let (code, pem) = server.get("/v1/crl?format=pem");
    assert_eq!(code, 200);
    assert_eq!(
        String::from_utf8_lossy(&pem)
            .matches("BEGIN X509 CRL")
            .count(),
        2
    );

    // The bundle over HTTPS is the CA's.
    let (code, served) = server.get("/v1/bundle");
    assert_eq!(code, 200);
    assert_eq!(served, std::fs::read(&bundle).unwrap());

    // Metrics on the admin listener.
    let (code, text) = http_get(server.admin, "/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(
        text.contains("minica_serve_enrolments_total{result=\"ok\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("minica_serve_renewals_total{result=\"ok\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("minica_serve_server_cert_expiry_timestamp_seconds"),
        "{text}"
    );
}

#[test]
fn bad_requests_get_json_errors_and_the_server_keeps_serving() {
    require_tool("openssl");
    let s = Scratch::new();
    init(&s);
    let server = Server::start(&s);
    let t = token(&s, "svc");
    let csr = make_csr(&s, "svc", "/CN=svc");

    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("garbage", b"{not json".to_vec(), 400),
        ("wrong shape", br#"{"token": 5}"#.to_vec(), 400),
        (
            "unknown field",
            br#"{"token": "x", "csr": "y", "z": 1}"#.to_vec(),
            400,
        ),
        (
            "bad csr",
            enroll_body(
                &t,
                "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
            ),
            400,
        ),
        ("oversized", vec![b' '; 70 * 1024], 413),
    ];
    for (what, body, want) in cases {
        let (code, json) = post(&server, "/v1/enroll", &body, None);
        assert_eq!(code, want, "{what}: {json}");
        assert!(json["error"].is_string(), "{what}: {json}");
    }
    // A bad CSR did not spend the token.
    let (code, json) = post(&server, "/v1/enroll", &enroll_body(&t, &csr), None);
    assert_eq!(code, 200, "{json}");

    for (method, path, want) in [
        ("GET", "/v1/enroll", 405),
        ("PUT", "/v1/bundle", 405),
        ("GET", "/nope", 404),
        ("POST", "/v1/crl", 405),
    ] {
        let (code, body) = curl(&server.bundle(), &["-X", method, &server.url(path)]);
        assert_eq!(code, want, "{method} {path}");
        let json: Json = serde_json::from_slice(&body).unwrap();
        assert!(json["error"].is_string(), "{json}");
    }
    let (code, _) = server.get("/v1/crl?format=xml");
    assert_eq!(code, 400);
    assert_eq!(server.get("/healthz"), (200, b"ok\n".to_vec()));

    // A second server on the same home, or on a port in use: exit 2.
    let again = run(support::minica(&s.home, &s.work).args([
        "serve",
        "--listen",
        &free_addr().to_string(),
    ]))
    .code(2);
    assert!(again.stderr.contains("already running"), "{again}");
    let other = Scratch::new();
    init(&other);
    let busy = run(support::minica(&other.home, &other.work).args([
        "serve",
        "--listen",
        &server.addr.to_string(),
    ]))
    .code(2);
    assert!(busy.stderr.contains("--listen"), "{busy}");
    let bad = run(support::minica(&other.home, &other.work).args(["serve", "--listen", "nowhere"]))
        .code(2);
    assert!(bad.stderr.contains("--listen"), "{bad}");
    let empty = Scratch::new();
    let none = run(support::minica(&empty.home, &empty.work).args(["serve"])).code(2);
    assert!(none.stderr.contains("no CA"), "{none}");
    assert_eq!(server.get("/healthz").0, 200);
}

#[test]
fn sigterm_stops_cleanly_and_frees_the_home() {
    let s = Scratch::new();
    init(&s);
    let mut server = Server::start(&s);
    let sock = s.home.join("serve.sock");
    assert!(sock.exists());
    // While the server runs, the CLI works through its socket.
    s.minica(&["issue", "while-serving"]).ok();
    run(Command::new("kill").args(["-TERM", &server.child.id().to_string()])).ok();
    let end = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < end, "minica serve ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    assert!(!sock.exists(), "the ledger socket was left behind");
    // The home is free again: the CLI opens the embedded ledger itself.
    let list = s.minica(&["list"]).ok();
    assert!(list.stdout.contains("while-serving"), "{list}");
}

/// The serial of the certificate the server presents now (openssl s_client).
fn presented_serial(s: &Scratch, server: &Server) -> String {
    let connect = format!("127.0.0.1:{}", server.addr.port());
    let ran = run(Command::new("openssl")
        .args(["s_client", "-connect", &connect, "-CAfile"])
        .arg(server.bundle())
        .stdin(Stdio::null()));
    std::fs::write(s.path("presented.pem"), &ran.stdout).unwrap();
    serial_of(s, "presented.pem")
}

#[test]
fn the_server_renews_its_own_certificate_without_dropping_connections() {
    require_tool("openssl");
    let s = Scratch::new();
    init(&s);
    let server = Server::start_args(&s, &[], &["--cert-valid", "3s"]);
    let first = presented_serial(&s, &server);
    // A connection opened before the renewal, used after it.
    let connect = format!("127.0.0.1:{}", server.addr.port());
    let mut held = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect", &connect, "-CAfile"])
        .arg(server.bundle())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(15);
    let second = loop {
        let now = presented_serial(&s, &server);
        if now != first {
            break now;
        }
        assert!(
            Instant::now() < end,
            "the server certificate was not renewed"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(ledger_status(&s, &first), "superseded");
    assert_eq!(ledger_status(&s, &second), "active");
    {
        use std::io::{Read, Write};
        let mut stdin = held.stdin.take().unwrap();
        stdin
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        let mut stdout = held.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let _ = stdout.read_to_string(&mut out);
            out
        });
        let end = Instant::now() + Duration::from_secs(10);
        while !reader.is_finished() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = held.kill();
        let _ = held.wait();
        drop(stdin);
        let out = reader.join().unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out:?}");
    }
}

#[test]
fn one_certificate_renews_once_under_concurrent_requests() {
    require_tool("openssl");
    let s = Scratch::new();
    init(&s);
    let server = Server::start(&s);
    // Issued with the CLI through the server's ledger socket.
    s.minica(&["issue", "web"]).ok();
    let csr = make_csr(&s, "next", "/CN=web");
    let body = renew_body(&csr);
    let (cert, key) = (s.path("web/chain.pem"), s.path("web/key.pem"));
    let codes: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| scope.spawn(|| post(&server, "/v1/renew", &body, Some((&cert, &key))).0))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 1, "{codes:?}");
    assert!(
        codes.iter().all(|c| [200, 403, 409].contains(c)),
        "{codes:?}"
    );
}

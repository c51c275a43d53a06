//! MySQL over mutual TLS, end to end: a real MariaDB server running on the
//! files and `my.cnf` of `minica export --format mysql` (revocation through
//! `minica revoke`, a refreshed `ssl-crl` and `FLUSH SSL`), the real
//! `mariadb` client (also with the exported `[client]` section), and
//! `minica-sidecar` in the three
//! modes (outbound `--protocol mysql` in front of a TLS server, inbound
//! `--protocol mysql` in front of a plaintext leg, and the plain tcp pair).
//! Malformed handshakes come from a scripted fake server, since no real
//! server sends them.

// The sidecar tests' process harness and rcgen fixtures serve here too.
use crate::sidecar::{fixtures, harness};

pub(crate) mod server;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use fixtures::Leaf;
use harness::{free_addr, metric, sidecar, wait_metric, wait_ready, Proc};
use rcgen::{
    CertificateRevocationListParams, Issuer, KeyIdMethod, KeyPair, RevokedCertParams, SerialNumber,
};
use server::{client, client_with, ClientTls, Mariadb, Session, SESSION_SQL};
use time::OffsetDateTime;

use crate::support::{self, Ran};

const TD: &str = "spiffe://minica.internal";

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// `minica issue NAME ARGS --out DIR/NAME` with the CA in `home`.
fn issue(home: &Path, dir: &Path, name: &str, args: &[&str]) -> Leaf {
    let out = dir.join(name);
    support::run(
        support::minica(home, dir)
            .args(["issue", name])
            .args(args)
            .arg("--out")
            .arg(&out),
    )
    .ok();
    let pem = std::fs::read(out.join("cert.pem")).unwrap();
    let (_, p) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let cert = p.parse_x509().unwrap();
    let serial = cert
        .raw_serial()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Leaf { dir: out, serial }
}

/// A CRL signed by the intermediate of the CA in `home`, revoking `leaves`
/// without recording it in the ledger: the sidecars' `--crl` checks need
/// `app` and `db` revoked while the server still accepts them.
fn crl(home: &Path, path: &Path, leaves: &[&Leaf]) {
    std::fs::write(path, crl_pem(home, "intermediate", leaves)).unwrap();
}

/// The PEM of a CRL signed by `home/LEVEL.pem` with `home/LEVEL-key.pem`
/// (`root` or `intermediate`), revoking `leaves`.
fn crl_pem(home: &Path, level: &str, leaves: &[&Leaf]) -> String {
    let cert = std::fs::read_to_string(home.join(format!("{level}.pem"))).unwrap();
    let key = std::fs::read_to_string(home.join(format!("{level}-key.pem"))).unwrap();
    let issuer = Issuer::from_ca_cert_pem(&cert, KeyPair::from_pem(&key).unwrap()).unwrap();
    let now = OffsetDateTime::now_utc();
    let hour = time::Duration::hours(1);
    let revoked_certs = leaves
        .iter()
        .map(|l| RevokedCertParams {
            serial_number: SerialNumber::from_slice(&hex(&l.serial)),
            revocation_time: now - hour,
            reason_code: None,
            invalidity_date: None,
        })
        .collect();
    let params = CertificateRevocationListParams {
        this_update: now - hour,
        next_update: now + time::Duration::days(7),
        crl_number: SerialNumber::from(u64::try_from(leaves.len()).unwrap() + 1),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::Sha256,
    };
    params.signed_by(&issuer).unwrap().pem().unwrap()
}

/// `minica export NAME --format mysql --identity DIR/NAME --out OUT ARGS`.
fn export_mysql(home: &Path, dir: &Path, name: &str, out: &Path, extra: &[&str]) {
    support::run(
        support::minica(home, dir)
            .args(["export", name, "--format", "mysql", "--identity"])
            .arg(dir.join(name))
            .arg("--out")
            .arg(out)
            .args(extra),
    )
    .ok();
}

/// The `[mysqld]` lines of an exported `my.cnf` as `mariadbd` options,
/// without `skip` (the option names as written there).
fn mysqld_options(cnf: &Path, skip: &[&str]) -> Vec<String> {
    let text = std::fs::read_to_string(cnf).unwrap();
    text.lines()
        .skip_while(|l| l.trim() != "[mysqld]")
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            let (k, v) = (k.trim(), v.trim());
            assert!(
                v.starts_with('/') || !k.starts_with("ssl-"),
                "{k}: absolute path expected:\n{text}"
            );
            (!skip.contains(&k)).then(|| format!("--{k}={v}"))
        })
        .collect()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A running sidecar route: its process, listen port and admin address.
struct Car {
    proc: Proc,
    port: u16,
    admin: SocketAddr,
    name: String,
    direction: &'static str,
}

impl Car {
    fn failures(&self, reason: &str) -> String {
        format!(
            "minica_sidecar_handshake_failures_total{{route=\"{}\",direction=\"{}\",reason=\"{reason}\"}}",
            self.name, self.direction
        )
    }

    /// Waits until the failure counter for `reason` reaches `n`.
    fn wait_failures(&self, reason: &str, n: f64) {
        wait_metric(self.admin, &self.failures(reason), n);
    }
}

/// Starts `minica-sidecar DIRECTION --name NAME --listen … --admin … ARGS`.
fn car(dir: &Path, direction: &'static str, name: &str, args: &[String]) -> Car {
    let listen = free_addr();
    let admin = free_addr();
    let mut all = vec![
        direction.to_string(),
        "--name".into(),
        name.into(),
        "--listen".into(),
        listen.to_string(),
        "--admin".into(),
        admin.to_string(),
    ];
    all.extend(args.iter().cloned());
    let mut proc = sidecar(dir, name, all);
    wait_ready(&mut proc, admin);
    Car {
        proc,
        port: listen.port(),
        admin,
        name: name.into(),
        direction,
    }
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|a| a.to_string()).collect()
}

fn with_cert<'a>(leaf: &'a Leaf, ca: &'a Path) -> ClientTls<'a> {
    ClientTls::On {
        ca,
        identity: Some(&leaf.dir),
    }
}

/// Waits for the route's first connection log line and checks how it ended.
#[track_caller]
fn assert_first_end(car: &Car, end: &str) {
    let first = || {
        car.proc
            .log()
            .lines()
            .find(|l| l.contains("connection closed") || l.contains("connection failed"))
            .map(str::to_string)
    };
    harness::wait_until("a connection log line", || first().is_some());
    let line = first().unwrap_or_default();
    assert!(line.contains(end), "{end} expected:\n{}", car.proc.log());
}

#[track_caller]
fn assert_refused(ran: &Ran, needle: &str) {
    assert_ne!(ran.code, Some(0), "expected a refusal:\n{ran}");
    assert!(
        ran.stderr.contains(needle),
        "expected {needle:?} in the error:\n{ran}"
    );
}

#[track_caller]
fn assert_tls_session(got: &Session, user: &str) {
    assert_eq!(got.user, user, "{got:?}");
    assert!(
        got.ssl_version == "TLSv1.3" || got.ssl_version == "TLSv1.2",
        "{got:?}"
    );
    assert!(!got.ssl_cipher.is_empty(), "{got:?}");
}

#[test]
fn mariadb_with_minica_certificates_directly_and_through_every_sidecar_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let home = dir.join("home");
    let db = issue(
        &home,
        dir,
        "db",
        &["--dns", "localhost", "--ip", "127.0.0.1"],
    );
    let app = issue(&home, dir, "app", &["--client"]);
    let other = issue(&home, dir, "other", &["--client"]);
    let foreign_dir = dir.join("foreign");
    std::fs::create_dir_all(&foreign_dir).unwrap();
    let foreign = issue(&dir.join("home2"), &foreign_dir, "app", &["--client"]);
    let revoked = dir.join("revoked-crl.pem");
    crl(&home, &revoked, &[&app, &db]);
    let ca = db.file("ca.pem");

    // The server runs on the files and my.cnf of `minica export --format
    // mysql`: with --crl, so it checks CRLs of every level from the start
    // (nothing is revoked yet). require_secure_transport is applied at the
    // end: the sidecars' plaintext legs reach this server too.
    let db_mysql = dir.join("db-mysql");
    export_mysql(&home, dir, "db", &db_mysql, &["--crl"]);
    let options = mysqld_options(&db_mysql.join("my.cnf"), &["require_secure_transport"]);
    for want in ["--ssl-crl=", "--tls_version=TLSv1.2,TLSv1.3", "--ssl-cert="] {
        assert!(
            options.iter().any(|o| o.starts_with(want)),
            "{want}: {options:?}"
        );
    }
    let srv = Mariadb::start(&options);
    // The client: the [client] section of app's exported my.cnf.
    let app_mysql = dir.join("app-mysql");
    export_mysql(&home, dir, "app", &app_mysql, &[]);
    let app_cnf = app_mysql.join("my.cnf");
    srv.root_sql(
        "CREATE USER app@'%' REQUIRE SUBJECT '/CN=app'; GRANT SELECT ON *.* TO app@'%'; \
         CREATE USER viasidecar@'127.0.0.1'; GRANT SELECT ON *.* TO viasidecar@'127.0.0.1'; \
         INSTALL SONAME 'auth_ed25519'; \
         CREATE USER edu@'%' IDENTIFIED VIA ed25519 USING PASSWORD('s3cret') \
           REQUIRE SUBJECT '/CN=app'; GRANT SELECT ON *.* TO edu@'%'; \
         CREATE USER pw@'127.0.0.1' IDENTIFIED BY 'pw1'; GRANT SELECT ON *.* TO pw@'127.0.0.1';",
    );
    let upstream = format!("127.0.0.1:{}", srv.port);

    // 1. Native TLS with the minica certificates: the exported option file
    //    (ssl-verify-server-cert included), and the identity directory.
    let got = Session::parse(&client(
        srv.port,
        "app",
        ClientTls::Config(&app_cnf),
        SESSION_SQL,
    ));
    assert_tls_session(&got, "app@%");
    let got = Session::parse(&client(srv.port, "app", with_cert(&app, &ca), SESSION_SQL));
    assert_tls_session(&got, "app@%");
    let no_cert = ClientTls::On {
        ca: &ca,
        identity: None,
    };
    assert_refused(
        &client(srv.port, "app", no_cert, "SELECT 1"),
        "Access denied",
    );
    assert_refused(
        &client(srv.port, "app", with_cert(&other, &ca), "SELECT 1"),
        "Access denied",
    );
    // In TLS 1.3 the server judges the client certificate after the
    // client finished: the client sees the alert or just a reset.
    let ran = client(srv.port, "app", with_cert(&foreign, &ca), "SELECT 1");
    assert_refused(&ran, "ERROR");

    // 2. Outbound --protocol mysql: the app speaks no TLS; the server sees
    //    TLS from identity `app` (REQUIRE SUBJECT '/CN=app' passes).
    let out_common = |identity: &Leaf, extra: &[&str]| {
        let mut a = args(&[
            "--protocol",
            "mysql",
            "--upstream",
            &upstream,
            "--server-name",
            "127.0.0.1",
            "--identity",
            &s(&identity.dir),
        ]);
        a.extend(args(extra));
        a
    };
    let allow_db = format!("{TD}/db");
    let out = car(
        dir,
        "outbound",
        "my-out",
        &out_common(&app, &["--allow", &allow_db]),
    );
    let got = Session::parse(&client(out.port, "app", ClientTls::Off, SESSION_SQL));
    assert_tls_session(&got, "app@%");
    // The server hangs up without close_notify after COM_QUIT: a clean end.
    assert_first_end(&out, "end=closed");
    // The command phase carries large results unchanged.
    let big = client(
        out.port,
        "app",
        ClientTls::Off,
        "SELECT REPEAT('x', 300000); SELECT 'done'",
    )
    .ok();
    assert!(big.stdout.contains(&"x".repeat(300_000)) && big.stdout.ends_with("done\n"));
    // Wrong password/user still gets the server's own answer (re-numbered).
    assert_refused(
        &client(out.port, "nobody", ClientTls::Off, "SELECT 1"),
        "Access denied for user 'nobody'",
    );
    // An authentication exchange with an auth switch (the client starts
    // with mysql_native_password, the account wants ed25519): every packet
    // is re-numbered both ways.
    let ran = client_with(
        out.port,
        "edu",
        ClientTls::Off,
        &["-ps3cret"],
        "SELECT CURRENT_USER()",
    );
    assert_eq!(ran.ok().stdout, "edu@%\n");
    assert_refused(
        &client_with(out.port, "edu", ClientTls::Off, &["-pwrong"], "SELECT 1"),
        "Access denied for user 'edu'",
    );
    let log = out.proc.log();
    assert!(log.contains(&format!("peer_identity={TD}/db")), "{log}");
    // Another identity through an outbound: the server's REQUIRE SUBJECT refuses it.
    let out_other = car(dir, "outbound", "my-out-other", &out_common(&other, &[]));
    assert_refused(
        &client(out_other.port, "app", ClientTls::Off, "SELECT 1"),
        "Access denied",
    );
    // The sidecar's own checks: --allow and --crl on the server's certificate.
    let allow_x = format!("{TD}/not-db");
    let out_allow = car(
        dir,
        "outbound",
        "my-out-allow",
        &out_common(&app, &["--allow", &allow_x]),
    );
    assert_refused(
        &client(out_allow.port, "app", ClientTls::Off, "SELECT 1"),
        "ERROR 1045 (28000): minica-sidecar: TLS to the MySQL server failed (not_allowed)",
    );
    out_allow.wait_failures("not_allowed", 1.0);
    let out_crl = car(
        dir,
        "outbound",
        "my-out-crl",
        &out_common(&app, &["--crl", &s(&revoked)]),
    );
    assert_refused(
        &client(out_crl.port, "app", ClientTls::Off, "SELECT 1"),
        "ERROR 1045 (28000): minica-sidecar: TLS to the MySQL server failed (revoked)",
    );
    out_crl.wait_failures("revoked", 1.0);
    // A client that insists on TLS to the outbound finds none offered.
    let wants_tls = ClientTls::On {
        ca: &ca,
        identity: None,
    };
    let ran = client(out.port, "app", wants_tls, "SELECT 1");
    assert_refused(&ran, "SSL is required, but the server does not support it");

    // 3. Inbound --protocol mysql: a stock TLS client, plaintext to the
    //    server (the server sees no TLS: the sidecar terminated it).
    let allow_app = format!("{TD}/app");
    let inbound_args = |extra: &[&str]| {
        let mut a = args(&[
            "--protocol",
            "mysql",
            "--upstream",
            &upstream,
            "--identity",
            &s(&db.dir),
            "--allow",
            &allow_app,
        ]);
        a.extend(args(extra));
        a
    };
    let inb = car(dir, "inbound", "my-in", &inbound_args(&[]));
    let got = Session::parse(&client(
        inb.port,
        "viasidecar",
        with_cert(&app, &ca),
        SESSION_SQL,
    ));
    assert_eq!(got.user, "viasidecar@127.0.0.1");
    assert_eq!(
        (got.ssl_version.as_str(), got.ssl_cipher.as_str()),
        ("", "")
    );
    assert_first_end(&inb, "end=closed");
    let log = inb.proc.log();
    assert!(
        log.contains(&format!("peer_identity={TD}/app")) && log.contains("tls_version=TLSv1.3"),
        "{log}"
    );
    // An auth switch the other way (the client starts with ed25519, the
    // account wants mysql_native_password), through the inbound.
    let ran = client_with(
        inb.port,
        "pw",
        with_cert(&app, &ca),
        &["-ppw1", "--default-auth=client_ed25519"],
        "SELECT CURRENT_USER()",
    );
    assert_eq!(ran.ok().stdout, "pw@127.0.0.1\n");
    let cases: [(ClientTls<'_>, &str, &str); 4] = [
        (with_cert(&other, &ca), "not_allowed", "ERROR"),
        (
            ClientTls::On {
                ca: &ca,
                identity: None,
            },
            "no_client_cert",
            "ERROR",
        ),
        (with_cert(&foreign, &ca), "unknown_ca", "ERROR"),
        (
            ClientTls::Off,
            "protocol",
            "TLS with a client certificate is required",
        ),
    ];
    for (tls, reason, message) in cases {
        assert_refused(&client(inb.port, "viasidecar", tls, "SELECT 1"), message);
        inb.wait_failures(reason, 1.0);
    }
    // Malformed input from a client (an oversized "SSLRequest") ends only
    // that connection.
    let mut raw = TcpStream::connect(("127.0.0.1", inb.port)).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = [0u8; 4];
    raw.read_exact(&mut head).unwrap();
    let len = usize::from(head[0]) | usize::from(head[1]) << 8 | usize::from(head[2]) << 16;
    let mut greeting = vec![0u8; len];
    raw.read_exact(&mut greeting).unwrap();
    assert_eq!(greeting[0], 10, "a HandshakeV10 greeting");
    raw.write_all(&[0xFF, 0xFF, 0xFF, 1]).unwrap();
    let mut rest = Vec::new();
    let _ = raw.read_to_end(&mut rest);
    inb.wait_failures("protocol", 2.0);
    let got = Session::parse(&client(
        inb.port,
        "viasidecar",
        with_cert(&app, &ca),
        SESSION_SQL,
    ));
    assert_eq!(got.user, "viasidecar@127.0.0.1");
    // Revocation, with the route from a config file (`protocol = "mysql"`).
    let cfg = dir.join("in-crl.toml");
    let listen = free_addr();
    std::fs::write(
        &cfg,
        format!(
            "[[route]]\nname = \"my-in-crl\"\ndirection = \"inbound\"\nlisten = \"{listen}\"\n\
             upstream = \"{upstream}\"\nidentity = \"{}\"\ncrl = \"{}\"\nprotocol = \"mysql\"\n",
            db.dir.display(),
            revoked.display()
        ),
    )
    .unwrap();
    let admin = free_addr();
    let cfg_text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("admin = \"{admin}\"\n{cfg_text}")).unwrap();
    let mut crl_proc = sidecar(dir, "my-in-crl", ["run", "--config", &s(&cfg)]);
    wait_ready(&mut crl_proc, admin);
    assert_refused(
        &client(
            listen.port(),
            "viasidecar",
            with_cert(&app, &ca),
            "SELECT 1",
        ),
        "ERROR",
    );
    wait_metric(
        admin,
        "minica_sidecar_handshake_failures_total{route=\"my-in-crl\",direction=\"inbound\",reason=\"revoked\"}",
        1.0,
    );

    // 4. Plain mode: client -> outbound tcp -> (mTLS from the first byte)
    //    -> inbound tcp -> server.
    let pin = car(
        dir,
        "inbound",
        "tcp-in",
        &args(&[
            "--upstream",
            &upstream,
            "--identity",
            &s(&db.dir),
            "--allow",
            &allow_app,
        ]),
    );
    let pin_addr = format!("127.0.0.1:{}", pin.port);
    let tcp_out = |name: &str, identity: &Leaf| {
        car(
            dir,
            "outbound",
            name,
            &args(&[
                "--upstream",
                &pin_addr,
                "--server-name",
                "localhost",
                "--identity",
                &s(&identity.dir),
                "--allow",
                &allow_db,
            ]),
        )
    };
    let pout = tcp_out("tcp-out", &app);
    let got = Session::parse(&client(
        pout.port,
        "viasidecar",
        ClientTls::Off,
        SESSION_SQL,
    ));
    assert_eq!(got.user, "viasidecar@127.0.0.1");
    let log = pin.proc.log();
    assert!(log.contains(&format!("peer_identity={TD}/app")), "{log}");
    let pout_other = tcp_out("tcp-out-other", &other);
    let ran = client(pout_other.port, "viasidecar", ClientTls::Off, "SELECT 1");
    assert_ne!(ran.code, Some(0), "{ran}");
    pin.wait_failures("not_allowed", 1.0);
    assert!(metric(pin.admin, &pin.failures("not_allowed")).is_some());

    // 5. The server itself: `minica revoke app`, the export refreshed (it
    //    now has something revoked, so it writes crl.pem without --crl)
    //    and FLUSH SSL: a native TLS connection with app is refused; others
    //    still pass.
    support::run(support::minica(&home, dir).args(["revoke", "app"])).ok();
    export_mysql(&home, dir, "db", &db_mysql, &["--force"]);
    let crls = std::fs::read_to_string(db_mysql.join("crl.pem")).unwrap();
    assert_eq!(crls.matches("BEGIN X509 CRL").count(), 2, "{crls}");
    srv.root_sql("FLUSH SSL");
    // (The client sees the "certificate revoked" alert or a reset, as above.)
    let ran = client(srv.port, "app", ClientTls::Config(&app_cnf), "SELECT 1");
    assert_refused(&ran, "ERROR");
    let ran = client(srv.port, "app", with_cert(&app, &ca), "SELECT 1");
    assert_refused(&ran, "ERROR");
    let got = Session::parse(&client(
        srv.port,
        "viasidecar",
        with_cert(&other, &ca),
        SESSION_SQL,
    ));
    assert_tls_session(&got, "viasidecar@127.0.0.1");
    // The my.cnf's require_secure_transport (dynamic): the plaintext
    // connection that worked is refused (MariaDB says "Access denied").
    client(srv.port, "viasidecar", ClientTls::Off, "SELECT 1").ok();
    srv.root_sql("SET GLOBAL require_secure_transport = ON");
    assert_refused(
        &client(srv.port, "viasidecar", ClientTls::Off, "SELECT 1"),
        "ERROR",
    );
    let got = Session::parse(&client(
        srv.port,
        "viasidecar",
        with_cert(&other, &ca),
        SESSION_SQL,
    ));
    assert_tls_session(&got, "viasidecar@127.0.0.1");
    drop(srv);
}

/// After writing its script, a fake server...
#[derive(Clone, Copy, PartialEq, Eq)]
enum Then {
    /// ...closes the connection.
    Close,
    /// ...waits for the peer to close.
    Wait,
}

/// A fake MySQL server that answers each connection, in order, with the
/// next script.
fn scripted_server(scripts: Vec<(Vec<u8>, Then)>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for (script, then) in scripts {
            let Ok((mut s, _)) = l.accept() else { return };
            let _ = s.write_all(&script);
            if then == Then::Close {
                continue;
            }
            let _ = s.set_read_timeout(Some(Duration::from_secs(15)));
            let mut buf = [0u8; 1024];
            let end = Instant::now() + Duration::from_secs(15);
            while Instant::now() < end {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
    });
    addr
}

fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut p = vec![len as u8, (len >> 8) as u8, (len >> 16) as u8, seq];
    p.extend_from_slice(payload);
    p
}

/// A HandshakeV10 greeting payload, with or without CLIENT_SSL.
fn greeting(tls: bool) -> Vec<u8> {
    let mut p = vec![10];
    p.extend_from_slice(b"5.5.5-10.11.0-fake\0");
    p.extend_from_slice(&7u32.to_le_bytes());
    p.extend_from_slice(b"abcdefgh\0");
    let caps: u16 = if tls { 0xF7FE | 0x0800 } else { 0xF7FE };
    p.extend_from_slice(&caps.to_le_bytes());
    p.push(45);
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&0x0008_u16.to_le_bytes()); // CLIENT_PLUGIN_AUTH >> 16
    p.push(21);
    p.extend_from_slice(&[0; 10]);
    p.extend_from_slice(b"ijklmnopqrst\0");
    p.extend_from_slice(b"mysql_native_password\0");
    p
}

#[test]
fn broken_handshakes_end_only_that_connection() {
    support::require_tool("mariadb");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let home = dir.join("home");
    let app = issue(&home, dir, "app", &["--client"]);
    let mut blocked = vec![0xFF];
    blocked.extend_from_slice(&1129u16.to_le_bytes());
    blocked
        .extend_from_slice(b"#HY000Host '127.0.0.1' is blocked because of many connection errors");
    let mut truncated = packet(0, &greeting(true));
    truncated.truncate(30);
    let scripts = vec![
        (packet(0, &blocked), Then::Wait),
        (truncated, Then::Close),
        (vec![0xFF, 0xFF, 0xFF, 0, 10, b'5'], Then::Wait),
        (packet(0, &[9, b'4', b'.', b'0', 0, 1, 2, 3, 4]), Then::Wait),
        (packet(0, &greeting(false)), Then::Wait),
        // Says nothing: the handshake timeout ends it.
        (Vec::new(), Then::Wait),
    ];
    let fake = scripted_server(scripts);
    let out = car(
        dir,
        "outbound",
        "fake-out",
        &args(&[
            "--protocol",
            "mysql",
            "--upstream",
            &fake.to_string(),
            "--server-name",
            "localhost",
            "--identity",
            &s(&app.dir),
            "--handshake-timeout",
            "1s",
        ]),
    );
    let expect = [
        "ERROR 1129 (HY000): Host '127.0.0.1' is blocked because of many connection errors",
        "ERROR 1043 (08S01): minica-sidecar: bad greeting from the MySQL server: truncated greeting",
        "bad greeting from the MySQL server: packet of 16777215 bytes",
        "not a MySQL greeting (protocol byte 0x09)",
        "the MySQL server does not offer TLS",
        "the MySQL server sent no greeting in time",
    ];
    for (i, needle) in expect.iter().enumerate() {
        let ran = client(out.port, "app", ClientTls::Off, "SELECT 1");
        assert_refused(&ran, needle);
        if i == 0 {
            assert!(ran.stderr.contains("1129"), "relayed as it was:\n{ran}");
        }
    }
    out.wait_failures("protocol", 5.0);
    out.wait_failures("timeout", 1.0);
    let log = out.proc.log();
    for reason in [
        "server refused the connection: error 1129",
        "truncated greeting",
        "packet of 16777215 bytes",
    ] {
        assert!(log.contains(reason), "{reason:?} not logged:\n{log}");
    }
    // Inbound: a client that reads the greeting and then says nothing is
    // cut at the handshake timeout (the pre-TLS phase is bounded too).
    let fake_db = scripted_server(vec![(packet(0, &greeting(false)), Then::Wait)]);
    let inb = car(
        dir,
        "inbound",
        "slow-in",
        &args(&[
            "--protocol",
            "mysql",
            "--upstream",
            &fake_db.to_string(),
            "--identity",
            &s(&app.dir),
            "--handshake-timeout",
            "1s",
        ]),
    );
    let mut raw = TcpStream::connect(("127.0.0.1", inb.port)).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let _ = raw.read_to_end(&mut got);
    assert_eq!(got.get(4), Some(&10), "the greeting came first: {got:?}");
    let len = usize::from(got[0]) | usize::from(got[1]) << 8 | usize::from(got[2]) << 16;
    assert_eq!(got.len(), 4 + len, "one packet, then the sidecar hung up");
    inb.wait_failures("timeout", 1.0);

    // A server that is down: the client is told, not just cut off.
    let down = free_addr();
    let out_down = car(
        dir,
        "outbound",
        "down-out",
        &args(&[
            "--protocol",
            "mysql",
            "--upstream",
            &down.to_string(),
            "--server-name",
            "localhost",
            "--identity",
            &s(&app.dir),
        ]),
    );
    assert_refused(
        &client(out_down.port, "app", ClientTls::Off, "SELECT 1"),
        "ERROR 1043 (08S01): minica-sidecar: cannot connect to upstream",
    );
    let health = harness::http_get(out.admin, "/healthz");
    assert_eq!(health.map(|h| h.0), Some(200), "the sidecar keeps serving");
}

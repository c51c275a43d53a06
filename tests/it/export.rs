//! `minica export` end to end: the MySQL layout (files, modes, `my.cnf` with
//! absolute paths, CRLs of every level) checked with real `openssl`, the
//! PKCS#12 file read by `openssl pkcs12` (OpenSSL 3), and bad inputs
//! refused with exit 2. The MariaDB side is in `mysql::`.

use std::path::Path;

use crate::support::{self, Scratch};

/// A CA with `db` (server and client) and `app` (client only) issued into
/// `work/db` and `work/app`.
fn scratch() -> Scratch {
    let s = Scratch::new();
    s.minica(&["issue", "db", "--dns", "localhost", "--ip", "127.0.0.1"])
        .ok();
    s.minica(&["issue", "app", "--client"]).ok();
    s
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// `KEY = VALUE` lines of `[section]` in a my.cnf (flags as `KEY = ""`).
fn cnf_section(cnf: &str, section: &str) -> Vec<(String, String)> {
    let head = format!("[{section}]");
    cnf.lines()
        .skip_while(|l| l.trim() != head)
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

fn value<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[test]
fn mysql_layout_modes_absolute_paths_and_crls() {
    let s = scratch();
    // Relative --out: the my.cnf still names absolute paths.
    let ran = s.minica(&["export", "db", "--format", "mysql", "--out", "db-mysql"]);
    let ran = ran.ok();
    assert!(ran.stdout.contains("no ssl-crl"), "{ran}");
    assert!(!ran.stdout.contains("PRIVATE KEY"), "{ran}");
    let out = s.path("db-mysql");
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "ca-cert.pem",
            "client-cert.pem",
            "client-key.pem",
            "my.cnf",
            "server-cert.pem",
            "server-key.pem"
        ]
    );
    #[cfg(unix)]
    for (name, want) in [
        ("server-key.pem", 0o600),
        ("client-key.pem", 0o600),
        ("server-cert.pem", 0o644),
        ("ca-cert.pem", 0o644),
        (".", 0o700),
    ] {
        assert_eq!(mode(&out.join(name)), want, "{name}");
    }
    // The certificate files carry the chain, so the intermediate is sent.
    assert_eq!(s.read("db-mysql/server-cert.pem"), s.read("db/chain.pem"));
    assert_eq!(s.read("db-mysql/client-cert.pem"), s.read("db/chain.pem"));
    let ca_cert = s.read("db-mysql/ca-cert.pem");
    assert_eq!(
        ca_cert.matches("BEGIN CERTIFICATE").count(),
        2,
        "root + intermediate"
    );
    assert!(ca_cert.starts_with(&s.read("db/ca.pem")), "the roots first");
    // The key is the certificate's (same public key).
    let pubkey = |args: &[&str]| s.openssl(args).ok().stdout;
    assert_eq!(
        pubkey(&["pkey", "-in", "db-mysql/server-key.pem", "-pubout"]),
        pubkey(&[
            "x509",
            "-in",
            "db-mysql/server-cert.pem",
            "-noout",
            "-pubkey"
        ])
    );
    s.openssl(&[
        "verify",
        "-CAfile",
        "db-mysql/ca-cert.pem",
        "-purpose",
        "sslserver",
        "db-mysql/server-cert.pem",
    ])
    .ok();

    let cnf = s.read("db-mysql/my.cnf");
    let mysqld = cnf_section(&cnf, "mysqld");
    let client = cnf_section(&cnf, "client");
    assert_eq!(
        value(&mysqld, "require_secure_transport"),
        Some("ON"),
        "{cnf}"
    );
    assert_eq!(
        value(&mysqld, "tls_version"),
        Some("TLSv1.2,TLSv1.3"),
        "{cnf}"
    );
    assert_eq!(value(&mysqld, "ssl-crl"), None, "nothing revoked: {cnf}");
    assert_eq!(value(&client, "ssl-verify-server-cert"), Some(""), "{cnf}");
    for (section, pairs) in [("mysqld", &mysqld), ("client", &client)] {
        for key in ["ssl-ca", "ssl-cert", "ssl-key"] {
            let v = value(pairs, key).unwrap_or_else(|| panic!("[{section}] {key}:\n{cnf}"));
            let p = Path::new(v);
            assert!(p.is_absolute() && p.is_file(), "[{section}] {key} = {v}");
            assert!(p.starts_with(out.canonicalize().unwrap()), "{v}");
        }
    }

    // A client-only identity: no server files, no [mysqld].
    s.minica(&["export", "app", "--format", "mysql", "--out", "app-mysql"])
        .ok();
    assert!(!s.path("app-mysql/server-key.pem").exists());
    let cnf = s.read("app-mysql/my.cnf");
    assert!(
        !cnf.contains("[mysqld]") && cnf.contains("[client]"),
        "{cnf}"
    );
    // --role server on a client certificate: refused, naming the file.
    let ran = s
        .minica(&[
            "export", "app", "--format", "mysql", "--role", "server", "--out", "x",
        ])
        .code(2);
    assert!(
        ran.stderr.contains("cert.pem") && ran.stderr.contains("serverAuth"),
        "{ran}"
    );
    let ran = s
        .minica(&["export", "app", "--format", "mysql", "--crl", "--out", "x"])
        .code(2);
    assert!(
        ran.stderr.contains("--crl") && ran.stderr.contains("server option"),
        "{ran}"
    );

    // Exporting again without --force: refused, nothing changed.
    let before = s.read("db-mysql/server-key.pem");
    let ran = s
        .minica(&["export", "db", "--format", "mysql", "--out", "db-mysql"])
        .code(2);
    assert!(
        ran.stderr.contains("already exists") && ran.stderr.contains("--force"),
        "{ran}"
    );
    assert_eq!(s.read("db-mysql/server-key.pem"), before);

    // Once something is revoked, the export carries the CRLs of every level
    // (the intermediate's listing it, the root's) and ssl-crl names them.
    s.minica(&["issue", "gone", "--client"]).ok();
    s.minica(&["revoke", "gone"]).ok();
    s.minica(&[
        "export", "db", "--format", "mysql", "--out", "db-mysql", "--force",
    ])
    .ok();
    let cnf = s.read("db-mysql/my.cnf");
    let crl = out.canonicalize().unwrap().join("crl.pem");
    assert_eq!(
        value(&cnf_section(&cnf, "mysqld"), "ssl-crl"),
        Some(crl.to_str().unwrap()),
        "{cnf}"
    );
    let crls = s.read("db-mysql/crl.pem");
    assert_eq!(crls.matches("BEGIN X509 CRL").count(), 2, "{crls}");
    // openssl checks every level with them: db passes, gone is revoked.
    let check_all = |cert: &str| {
        s.openssl(&[
            "verify",
            "-crl_check_all",
            "-CAfile",
            "db-mysql/ca-cert.pem",
            "-CRLfile",
            "db-mysql/crl.pem",
            cert,
        ])
    };
    check_all("db-mysql/server-cert.pem").ok();
    let ran = check_all("gone/chain.pem");
    assert!(
        ran.stdout.contains("revoked") || ran.stderr.contains("revoked"),
        "{ran}"
    );
    // A revoked identity itself is not exported.
    let ran = s.minica(&["export", "gone", "--format", "mysql"]).code(2);
    assert!(ran.stderr.contains("revoked"), "{ran}");
}

#[test]
fn pkcs12_opens_with_openssl_and_the_password_only() {
    let s = scratch();
    std::fs::write(s.path("pw"), "correct horse\n").unwrap();
    std::fs::write(s.path("wrong"), "battery\n").unwrap();
    std::fs::create_dir(s.path("p12")).unwrap();
    let ran = s
        .minica(&[
            "export",
            "app",
            "--format",
            "p12",
            "--password-file",
            "pw",
            "--out",
            "p12",
        ])
        .ok();
    assert!(!ran.stdout.contains("correct horse") && !ran.stderr.contains("correct horse"));
    let file = s.path("p12/app.p12");
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o600);
    let info = s
        .openssl(&[
            "pkcs12",
            "-info",
            "-in",
            "p12/app.p12",
            "-passin",
            "file:pw",
            "-noout",
        ])
        .ok();
    let text = format!("{}{}", info.stdout, info.stderr);
    assert!(text.contains("MAC: sha256"), "{text}");
    assert!(text.contains("PBES2, PBKDF2, AES-256-CBC"), "{text}");
    assert_eq!(
        text.matches("Certificate bag").count(),
        3,
        "leaf, intermediate, root"
    );
    let ran = s.openssl(&[
        "pkcs12",
        "-info",
        "-in",
        "p12/app.p12",
        "-passin",
        "file:wrong",
        "-noout",
    ]);
    assert_ne!(
        ran.code,
        Some(0),
        "a wrong password must be refused:\n{ran}"
    );
    // The key inside is the certificate's.
    let pem = s
        .openssl(&[
            "pkcs12",
            "-in",
            "p12/app.p12",
            "-passin",
            "file:pw",
            "-nodes",
            "-nocerts",
        ])
        .ok()
        .stdout;
    std::fs::write(s.path("k.pem"), pem).unwrap();
    assert_eq!(
        s.openssl(&["pkey", "-in", "k.pem", "-pubout"]).ok().stdout,
        s.openssl(&["x509", "-in", "app/cert.pem", "-noout", "-pubkey"])
            .ok()
            .stdout
    );
    // Without the CA (e.g. on another machine): exported, with a note.
    let ran = support::run(support::minica(&s.work.join("no-ca"), &s.work).args([
        "export",
        "app",
        "--format",
        "p12",
        "--password-file",
        "pw",
        "--out",
        "elsewhere.p12",
    ]))
    .ok();
    assert!(ran.stderr.contains("note: no CA in"), "{ran}");
    // --out FILE, and a second run without --force is refused.
    s.minica(&[
        "export",
        "app",
        "--format",
        "p12",
        "--password-file",
        "pw",
        "--out",
        "a.pfx",
    ])
    .ok();
    assert!(s.path("a.pfx").is_file());
    let ran = s
        .minica(&[
            "export",
            "app",
            "--format",
            "p12",
            "--password-file",
            "pw",
            "--out",
            "a.pfx",
        ])
        .code(2);
    assert!(
        ran.stderr.contains("a.pfx") && ran.stderr.contains("already exists"),
        "{ran}"
    );
}

#[test]
fn bad_inputs_exit_2_naming_the_cause() {
    let s = scratch();
    std::fs::write(s.path("empty"), "").unwrap();
    std::fs::write(s.path("blank"), "\nsecond line\n").unwrap();
    // Another identity's key in app's directory.
    std::fs::create_dir(s.path("mixed")).unwrap();
    for f in ["cert.pem", "chain.pem", "ca.pem"] {
        std::fs::copy(s.path("app").join(f), s.path("mixed").join(f)).unwrap();
    }
    std::fs::copy(s.path("db/key.pem"), s.path("mixed/key.pem")).unwrap();
    let cases: [(&[&str], &[&str]); 9] = [
        (
            &["export", "nope", "--format", "mysql"],
            &["nope/cert.pem", "not found"],
        ),
        (
            &["export", "app", "--format", "mysql", "--identity", "mixed"],
            &["mixed/key.pem", "does not match"],
        ),
        (
            &["export", "db", "--format", "mysql", "--identity", "app"],
            &["app/cert.pem", "not db"],
        ),
        (
            &[
                "export",
                "app",
                "--format",
                "p12",
                "--password-file",
                "empty",
            ],
            &["--password-file", "empty"],
        ),
        (
            &[
                "export",
                "app",
                "--format",
                "p12",
                "--password-file",
                "blank",
            ],
            &["--password-file", "empty"],
        ),
        (
            &[
                "export",
                "app",
                "--format",
                "p12",
                "--password-file",
                "missing",
            ],
            &["missing"],
        ),
        (&["export", "app", "--format", "p12"], &["--password-file"]),
        (&["export", "app", "--format", "jks"], &["--format", "jks"]),
        (&["export", "../app", "--format", "mysql"], &["NAME"]),
    ];
    for (args, needles) in cases {
        let ran = s.minica(args).code(2);
        for needle in needles {
            assert!(
                ran.stderr.contains(needle),
                "{args:?}: {needle:?} expected:\n{ran}"
            );
        }
    }
    assert!(!s.path("app.p12").exists(), "nothing written on error");
    // A certificate from another CA is not in this ledger: refused.
    let other_home = s.work.join("home2");
    support::run(support::minica(&other_home, &s.work).args(["issue", "x", "--out", "x2"])).ok();
    let ran = s
        .minica(&["export", "x", "--format", "mysql", "--identity", "x2"])
        .code(2);
    assert!(ran.stderr.contains("not in the ledger"), "{ran}");
}

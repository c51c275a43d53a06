//! The PostgreSQL ledger (`--store postgres://...`) on a real PostgreSQL
//! server started by the test, shared by CLI processes and `minica serve`;
//! and the CLI on the embedded ledger through a running server's socket.

pub(crate) mod server;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Barrier};

use minica_ca::store::{contract, PostgresStore, Store};
use minica_ca::TokenUse;
use server::Postgres;
use sha2::Digest;

use crate::support::{self, Ran, Scratch};

fn s(p: &Path) -> String {
    p.display().to_string()
}

impl Scratch {
    /// `minica --home HOME --store URL <args>` in `work/`.
    fn pg(&self, url: &str, args: &[&str]) -> Ran {
        support::run(
            support::minica(&self.home, &self.work)
                .args(["--store", url])
                .args(args),
        )
    }
}

/// The serials of `minica list --all --json`.
fn listed(ran: Ran) -> BTreeSet<String> {
    let rows: Vec<serde_json::Value> = serde_json::from_str(&ran.ok().stdout).unwrap();
    rows.iter()
        .map(|r| r["serial"].as_str().unwrap().to_string())
        .collect()
}

/// The serial of the certificate in `dir/cert.pem`, lowercase hex.
fn serial_of(dir: &Path) -> String {
    let pem = std::fs::read(dir.join("cert.pem")).unwrap();
    let (_, p) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let cert = p.parse_x509().unwrap();
    cert.raw_serial()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn the_store_contract_holds_on_postgres_across_a_crash_and_migrations_run_once() {
    let pg = Postgres::start();
    let url = pg.url("contract");
    let written = {
        let store = PostgresStore::connect(&url).unwrap();
        contract::check(&store)
    };
    // What was acknowledged survives a crash of the database server.
    pg.crash_and_restart();
    let store = PostgresStore::connect(&url).unwrap();
    contract::check_after_reopen(&store, &written);
    assert_eq!(
        pg.psql("contract", "SELECT version FROM minica_schema")
            .trim(),
        "1"
    );

    // Several processes' first connections at once migrate once.
    let url = pg.url("race");
    let go = Arc::new(Barrier::new(6));
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let (url, go) = (url.clone(), Arc::clone(&go));
            std::thread::spawn(move || {
                go.wait();
                PostgresStore::connect(&url).map(|_| ())
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    assert_eq!(
        pg.psql("race", "SELECT count(*) FROM minica_schema").trim(),
        "1"
    );

    // A database migrated by a newer minica is refused.
    pg.psql("race", "INSERT INTO minica_schema (version) VALUES (99)");
    let err = PostgresStore::connect(&url).unwrap_err().to_string();
    assert!(
        err.contains("99") && err.contains("upgrade minica"),
        "{err}"
    );
}

#[test]
fn the_cli_shares_one_postgres_ledger_between_homes_and_processes() {
    let pg = Postgres::start();
    let url = pg.url("ca");
    let sc = Scratch::new();
    sc.pg(&url, &["init"]).ok();
    assert!(
        !sc.home.join("ledger").exists(),
        "no embedded ledger is made on PostgreSQL"
    );
    // A forgotten --store is refused, and starts no embedded ledger.
    let ran = sc.minica(&["issue", "forgot"]).code(2);
    assert!(ran.stderr.contains("--store"), "{ran}");
    assert!(!sc.home.join("ledger").exists());
    assert!(!sc.path("forgot").exists());
    sc.pg(&url, &["issue", "svc-a"]).ok();
    sc.pg(&url, &["issue", "svc-b"]).ok();
    let a = serial_of(&sc.path("svc-a"));
    assert_eq!(
        pg.psql("ca", "SELECT count(*) FROM certificates").trim(),
        "4",
        "root, intermediate and two leaves are in the database"
    );
    sc.pg(&url, &["revoke", "svc-a", "--reason", "keyCompromise"])
        .ok();
    sc.pg(&url, &["crl", "--out", "crl.pem"]).ok();

    // openssl accepts the intermediate's CRL, which lists svc-a.
    let cas = sc.path("cas.pem");
    let root = std::fs::read_to_string(sc.home.join("root.pem")).unwrap();
    let int = std::fs::read_to_string(sc.home.join("intermediate.pem")).unwrap();
    std::fs::write(&cas, format!("{root}{int}")).unwrap();
    let ran = sc.openssl(&[
        "crl",
        "-in",
        "crl.pem",
        "-CAfile",
        &s(&cas),
        "-verify",
        "-noout",
    ]);
    assert!(
        ran.code == Some(0) && ran.stderr.contains("verify OK"),
        "{ran}"
    );
    let text = sc
        .openssl(&["crl", "-in", "crl.pem", "-noout", "-text"])
        .ok();
    assert!(text.stdout.to_lowercase().contains(&a), "{}", text.stdout);

    // A second home with the same keys and the same database sees it all.
    let home2 = sc.dir.path().join("home2");
    support::run(Command::new("cp").arg("-a").arg(&sc.home).arg(&home2)).ok();
    let list = |home: &Path| {
        listed(support::run(
            support::minica(home, &sc.work)
                .args(["--store", &url])
                .args(["list", "--all", "--json"]),
        ))
    };
    let before = list(&sc.home);
    assert_eq!(list(&home2), before);
    assert!(before.contains(&a));
    // Another CA may not be created in the same database.
    let other = sc.dir.path().join("other");
    let ran = support::run(
        support::minica(&other, &sc.work)
            .args(["--store", &url])
            .arg("init"),
    )
    .code(2);
    assert!(ran.stderr.contains("already holds a CA ledger"), "{ran}");
    assert!(!other.join("ca.json").exists());
    // The same database over its Unix socket.
    let over_socket = listed(sc.pg(&pg.socket_url("ca"), &["list", "--all", "--json"]));
    assert_eq!(over_socket, before);

    // Concurrent issuers (two homes, separate processes): distinct serials,
    // every one recorded.
    const N: usize = 12;
    let children: Vec<_> = (0..N)
        .map(|i| {
            let home = if i % 2 == 0 { &sc.home } else { &home2 };
            support::minica(home, &sc.work)
                .args(["--store", &url, "issue", &format!("par-{i}")])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let serials: BTreeSet<String> = (0..N)
        .map(|i| serial_of(&sc.path(&format!("par-{i}"))))
        .collect();
    assert_eq!(serials.len(), N, "distinct serials");
    let after = list(&home2);
    assert!(serials.is_subset(&after), "every issued serial is listed");
    assert_eq!(after.len(), before.len() + N);

    // The same NAME from 8 processes at once, across both homes: the
    // ledger checks "one active leaf per NAME" inside its commit, so one
    // wins and every other is refused like a plain re-run.
    const RACERS: usize = 8;
    let children: Vec<_> = (0..RACERS)
        .map(|i| {
            let home = if i % 2 == 0 { &sc.home } else { &home2 };
            support::minica(home, &sc.work)
                .args(["--store", &url, "issue", "contended", "--out"])
                .arg(sc.path(&format!("contended-{i}")))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outcomes: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let winners = outcomes.iter().filter(|o| o.status.success()).count();
    assert_eq!(winners, 1, "one issue of a contended NAME succeeds");
    for out in outcomes.iter().filter(|o| !o.status.success()) {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("already has an active certificate"), "{err}");
    }
    let ran = sc.pg(&url, &["list", "--json"]).ok();
    assert_eq!(
        ran.stdout.matches("\"name\": \"contended\"").count(),
        1,
        "{ran}"
    );

    // A rotation on a shared ledger takes the home's lock for its duration
    // and reminds that running servers keep the old generation.
    let old_int = std::fs::read_to_string(sc.home.join("intermediate.pem")).unwrap();
    let ran = sc.pg(&url, &["rotate", "intermediate"]).ok();
    assert!(ran.stderr.contains("restarted"), "{ran}");
    assert_ne!(
        std::fs::read_to_string(sc.home.join("intermediate.pem")).unwrap(),
        old_int
    );
    sc.pg(&url, &["issue", "after-rotation"]).ok();
    sc.pg(&url, &["status"]).ok();
}

#[test]
fn tokens_are_stored_as_hashes_and_consumed_once_across_connections() {
    let pg = Postgres::start();
    let url = pg.url("tok");
    let sc = Scratch::new();
    sc.pg(&url, &["init"]).ok();
    let ran = sc
        .pg(
            &url,
            &["token", "svc-t", "--dns", "t.example", "--ttl", "10m"],
        )
        .ok();
    let token = ran.stdout.lines().last().unwrap().trim().to_string();
    assert_eq!(token.len(), 43, "{ran}");
    assert!(
        ran.stderr.contains("svc-t") && ran.stderr.contains("t.example"),
        "{ran}"
    );
    let hash = hex(&sha2::Sha256::digest(token.as_bytes()));
    let dump = pg.psql(
        "tok",
        "SELECT hash, expires, used, record::text FROM tokens",
    );
    assert!(!dump.contains(&token), "the token itself is never stored");
    assert!(dump.contains(&hash), "{dump}");
    assert!(dump.contains("spiffe://minica.internal/svc-t"), "{dump}");

    // A CA made with the embedded ledger is not opened on the database.
    let sled_ca = Scratch::new();
    sled_ca.minica(&["init"]).ok();
    let ran = sled_ca.pg(&url, &["token", "svc-t"]).code(2);
    assert!(ran.stderr.contains("leave --store"), "{ran}");

    // Bad input: exit 2, nothing stored.
    for bad in [
        &["token", "svc-u", "--ttl", "0s"][..],
        &["token", "svc-u", "--ttl", "31d"],
    ] {
        let ran = sc.pg(&url, bad).code(2);
        assert!(ran.stderr.contains("--ttl"), "{ran}");
    }
    assert_eq!(pg.psql("tok", "SELECT count(*) FROM tokens").trim(), "1");

    // One token raced on two connections (as two servers would): exactly
    // one consumer wins.
    let stores = [
        Arc::new(PostgresStore::connect(&url).unwrap()),
        Arc::new(PostgresStore::connect(&url).unwrap()),
    ];
    let go = Arc::new(Barrier::new(16));
    let threads: Vec<_> = (0..16)
        .map(|i| {
            let store = Arc::clone(&stores[i % 2]);
            let (hash, go) = (hash.clone(), Arc::clone(&go));
            std::thread::spawn(move || {
                go.wait();
                store
                    .consume_token(&hash, time::OffsetDateTime::now_utc())
                    .unwrap()
            })
        })
        .collect();
    let uses: Vec<TokenUse> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let won = uses
        .iter()
        .filter(|u| matches!(u, TokenUse::Consumed(_)))
        .count();
    assert_eq!(won, 1, "{uses:?}");
    assert!(uses
        .iter()
        .all(|u| matches!(u, TokenUse::Consumed(_) | TokenUse::AlreadyUsed(_))));
}

#[test]
fn bad_store_values_exit_2_clearly_without_the_password() {
    let sc = Scratch::new();
    let ran = sc.minica(&["--store", "garbage", "list"]).code(2);
    assert!(
        ran.stderr.contains("--store") && ran.stderr.contains("postgres://"),
        "{ran}"
    );
    // Nothing listens on this port.
    let port = crate::sidecar::harness::free_addr().port();
    let url = format!("postgres://minica:s3cret@127.0.0.1:{port}/ca");
    let ran = sc.pg(&url, &["init"]).code(2);
    assert!(ran.stderr.contains("cannot connect"), "{ran}");
    assert!(ran.stderr.contains("minica:***@"), "{ran}");
    assert!(!ran.stderr.contains("s3cret"), "{ran}");
    assert!(!sc.home.join("ca.json").exists(), "nothing was created");
    let ran = sc.pg(&format!("{url}?sslmode=require"), &["init"]).code(2);
    assert!(ran.stderr.contains("sslmode"), "{ran}");
    assert!(!ran.stderr.contains("s3cret"), "{ran}");
    // --help never shows a password from the environment.
    let ran = support::run(
        support::minica(&sc.home, &sc.work)
            .env("MINICA_STORE", &url)
            .args(["list", "--help"]),
    )
    .ok();
    assert!(!ran.stdout.contains("s3cret"), "{ran}");
    // Through the environment too.
    let ran = support::run(
        support::minica(&sc.home, &sc.work)
            .env("MINICA_STORE", "redis://x")
            .arg("list"),
    )
    .code(2);
    assert!(ran.stderr.contains("--store"), "{ran}");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_cli_works_through_a_running_minica_serve_on_the_embedded_ledger() {
    use crate::sidecar::harness::{self, free_addr, wait_until};
    let sc = Scratch::new();
    sc.minica(&["init"]).ok();
    sc.minica(&["issue", "svc-a"]).ok();
    let listen = free_addr();
    let mut cmd = support::minica(&sc.home, &sc.work);
    cmd.args(["serve", "--listen", &listen.to_string()]);
    let mut serve = harness::spawn(cmd, &sc.dir.path().join("serve.log"));
    let sock = sc.home.join("serve.sock");
    wait_until("the ledger socket", || {
        serve.assert_running();
        std::os::unix::net::UnixStream::connect(&sock).is_ok()
    });
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the socket is the owner's only");

    // The server holds the home (and sled admits one process): these go
    // through its socket.
    sc.minica(&["issue", "svc-b"]).ok();
    let b = serial_of(&sc.path("svc-b"));
    let all = listed(sc.minica(&["list", "--all", "--json"]));
    assert!(all.contains(&b) && all.contains(&serial_of(&sc.path("svc-a"))));
    sc.minica(&["revoke", "svc-b"]).ok();
    sc.minica(&["crl", "--out", "crl.pem"]).ok();
    let text = sc
        .openssl(&["crl", "-in", "crl.pem", "-noout", "-text"])
        .ok();
    assert!(text.stdout.to_lowercase().contains(&b), "{}", text.stdout);
    let ran = sc.minica(&["token", "svc-c"]).ok();
    assert_eq!(ran.stdout.lines().last().unwrap().trim().len(), 43, "{ran}");
    sc.minica(&["status"]).ok();

    // The server's CRL has the CLI's revocation.
    support::require_tool("curl");
    let bundle = s(&sc.home.join("bundle.pem"));
    let url = format!("https://{listen}/v1/crl?format=pem");
    wait_until("the revocation in the server's CRL", || {
        let ran = support::run(
            Command::new("curl")
                .args(["-sS", "--max-time", "5", "--cacert", &bundle, &url])
                .arg("-o")
                .arg(sc.path("served.pem")),
        );
        ran.code == Some(0)
            && sc
                .openssl(&["crl", "-in", "served.pem", "-noout", "-text"])
                .stdout
                .to_lowercase()
                .contains(&b)
    });

    // A rotation rewrites files the server uses: refused, naming it.
    let ran = sc.minica(&["rotate", "intermediate"]).code(2);
    assert!(ran.stderr.contains("minica serve"), "{ran}");

    // Killed (the socket file stays behind): the CLI opens the home itself.
    serve.signal("KILL");
    let _ = serve.wait_exit(std::time::Duration::from_secs(10));
    drop(serve);
    let after = listed(sc.minica(&["list", "--all", "--json"]));
    assert!(after.contains(&b));
}

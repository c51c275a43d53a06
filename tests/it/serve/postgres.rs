//! Two `minica serve` processes on one PostgreSQL ledger (a real server
//! started by the test): concurrent enrolments spread over both, one token
//! raced to both, a CLI revocation in both CRLs, and a SIGKILL mid-load.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use minica_ca::store::PostgresStore;
use minica_ca::{Ca, CaHome, Name};

use super::{enroll_body, norm_serial, post, require_tool, try_post, Json, Server};
use crate::pgstore::server::Postgres;
use crate::support::{self, Scratch};

/// `n` tokens (made in-process on the shared ledger) and CSRs (rcgen) for
/// the names `prefix-0`...: enrolment request bodies.
fn requests(home: &Path, url: &str, prefix: &str, n: usize) -> Vec<Vec<u8>> {
    let store = PostgresStore::connect(url).unwrap();
    let ca = Ca::open_shared(&CaHome::new(home), Box::new(store)).unwrap();
    (0..n)
        .map(|i| {
            let name = format!("{prefix}-{i}");
            let (token, _) = ca
                .create_token(
                    &name.parse::<Name>().unwrap(),
                    &[],
                    minica_ca::token::DEFAULT_TOKEN_TTL,
                )
                .unwrap();
            let mut params = rcgen::CertificateParams::new(vec![name.clone()]).unwrap();
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            let key = rcgen::KeyPair::generate().unwrap();
            let csr = params.serialize_request(&key).unwrap().pem().unwrap();
            enroll_body(&token, &csr)
        })
        .collect()
}

/// The serial of the certificate in an enrolment answer, normalised.
fn answer_serial(json: &Json) -> String {
    let pem = json["certificate"].as_str().unwrap();
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    let cert = p.parse_x509().unwrap();
    let hex: String = cert
        .raw_serial()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    norm_serial(&hex)
}

fn ledger(s: &Scratch, url: &str) -> BTreeSet<String> {
    let ran = s.minica(&["--store", url, "list", "--all", "--json"]).ok();
    let rows: Vec<Json> = serde_json::from_str(&ran.stdout).unwrap();
    rows.iter()
        .map(|r| norm_serial(r["serial"].as_str().unwrap()))
        .collect()
}

/// Sends every body (each to `servers[i % len]`), 16 at a time; returns
/// (status, body) per request, in order.
fn send_all(servers: &[&Server], bodies: &[Vec<u8>]) -> Vec<(u16, Vec<u8>)> {
    const WORKERS: usize = 16;
    let mut out = vec![(0u16, Vec::new()); bodies.len()];
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..WORKERS)
            .map(|w| {
                scope.spawn(move || {
                    (w..bodies.len())
                        .step_by(WORKERS)
                        .map(|i| {
                            let server = servers[i % servers.len()];
                            (i, try_post(server, "/v1/enroll", &bodies[i], None))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            for (i, r) in h.join().unwrap() {
                out[i] = r;
            }
        }
    });
    out
}

#[test]
fn two_servers_share_one_postgres_ledger() {
    require_tool("curl");
    require_tool("openssl");
    let pg = Postgres::start();
    let url = pg.url("serve");
    let s = Scratch::new();
    s.minica(&["--store", &url, "init"]).ok();
    let a = Server::start_with(&s, &["--store", &url]);
    let b = Server::start_with(&s, &["--store", &url]);
    assert!(
        !s.home.join("serve.sock").exists(),
        "no ledger socket on PostgreSQL"
    );

    // Hundreds of concurrent enrolments over both: all succeed, with
    // distinct serials, all in the ledger.
    const N: usize = 200;
    let bodies = requests(&s.home, &url, "svc", N);
    let answers = send_all(&[&a, &b], &bodies);
    let mut serials = BTreeSet::new();
    for (i, (code, body)) in answers.iter().enumerate() {
        assert_eq!(*code, 200, "request {i}: {}", String::from_utf8_lossy(body));
        let json: Json = serde_json::from_slice(body).unwrap();
        serials.insert(answer_serial(&json));
    }
    assert_eq!(serials.len(), N, "distinct serials");
    let listed = ledger(&s, &url);
    assert!(serials.is_subset(&listed), "every serial is in the ledger");

    // One token raced to both servers: exactly one success.
    let race = requests(&s.home, &url, "race", 1).remove(0);
    let copies = vec![race; 8];
    let codes: Vec<u16> = send_all(&[&a, &b], &copies)
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 403).count(), 7, "{codes:?}");

    // A revocation made with the CLI is in both servers' CRLs within 2 s.
    s.minica(&["--store", &url, "revoke", "svc-0"]).ok();
    let revoked = {
        let (_, body) = &answers[0];
        answer_serial(&serde_json::from_slice(body).unwrap())
    };
    for server in [&a, &b] {
        let deadline = Instant::now() + Duration::from_millis(2900);
        let mut found = false;
        while !found && Instant::now() < deadline {
            let (code, pem) = server.get("/v1/crl?format=pem");
            assert_eq!(code, 200);
            std::fs::write(s.path("served.pem"), pem).unwrap();
            let text = s
                .openssl(&["crl", "-in", "served.pem", "-noout", "-text"])
                .ok();
            found = norm_serial(&text.stdout).contains(&revoked);
            if !found {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        assert!(found, "revoked serial {revoked} not in a server's CRL");
    }

    // SIGKILL one server mid-load: the other keeps serving, and every
    // acknowledged certificate is in the ledger.
    let bodies = requests(&s.home, &url, "load", 80);
    let victim = a.child.id().to_string();
    let answers = std::thread::scope(|scope| {
        let load = scope.spawn(|| send_all(&[&a, &b], &bodies));
        std::thread::sleep(Duration::from_millis(150));
        support::run(std::process::Command::new("kill").args(["-KILL", &victim])).ok();
        load.join().unwrap()
    });
    let acknowledged: BTreeSet<String> = answers
        .iter()
        .filter(|(c, _)| *c == 200)
        .map(|(_, body)| answer_serial(&serde_json::from_slice(body).unwrap()))
        .collect();
    assert!(!acknowledged.is_empty());
    let listed = ledger(&s, &url);
    assert!(
        acknowledged.is_subset(&listed),
        "an acknowledged certificate is missing from the ledger"
    );
    assert_eq!(b.get("/healthz").0, 200);
    let again = requests(&s.home, &url, "after", 1).remove(0);
    let (code, json) = post(&b, "/v1/enroll", &again, None);
    assert_eq!(code, 200, "{json}");
}

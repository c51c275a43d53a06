//! `minica renew`, `minica rotate` and `minica status` end to end, with the
//! real binary and `openssl verify` as the judge: the trust overlap of a
//! root rotation in both directions, `--finish`, renewal (new serial, new or
//! kept key, same names, EKU and key type), `--revoke-old` on the CRL,
//! `renew --all`, bad input that changes nothing, and a rotation cut short.

use std::path::Path;
use std::process::Command;

use crate::support::{self, Scratch};

impl Scratch {
    /// `openssl verify -CAfile BUNDLE -untrusted CHAIN CERT` (paths in work/).
    fn verifies(&self, bundle: &str, dir: &str) -> bool {
        let chain = format!("{dir}/chain.pem");
        let cert = format!("{dir}/cert.pem");
        let r = self.openssl(&["verify", "-CAfile", bundle, "-untrusted", &chain, &cert]);
        r.code == Some(0)
    }

    fn x509(&self, cert: &str, what: &str) -> String {
        self.openssl(&["x509", "-in", cert, "-noout", what])
            .ok()
            .stdout
    }

    fn copy_home(&self, file: &str, to: &str) {
        std::fs::copy(self.home.join(file), self.work.join(to)).unwrap();
    }

    fn copy_dir(&self, from: &str, to: &str) {
        std::fs::create_dir_all(self.work.join(to)).unwrap();
        for f in ["cert.pem", "chain.pem", "key.pem", "ca.pem"] {
            std::fs::copy(self.work.join(from).join(f), self.work.join(to).join(f)).unwrap();
        }
    }

    fn ledger(&self) -> String {
        self.minica(&["list", "--all", "--json"]).ok().stdout
    }
}

fn cp_r(from: &Path, to: &Path) {
    let r = support::run(Command::new("cp").arg("-a").arg(from).arg(to));
    assert_eq!(r.code, Some(0), "{r}");
}

#[test]
fn root_rotation_overlap_both_ways_then_finish() {
    let s = Scratch::new();
    s.minica(&["init"]).ok();
    s.minica(&["issue", "old-svc"]).ok();
    s.copy_home("bundle.pem", "old-bundle.pem");
    s.minica(&["rotate", "root"]).ok();
    s.copy_home("bundle.pem", "new-bundle.pem");
    s.minica(&["issue", "new-svc"]).ok();
    let chain = std::fs::read_to_string(s.work.join("new-svc/chain.pem")).unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 3, "{chain}");

    // Old-trust client × new leaf (via the cross-certificate in chain.pem).
    assert!(s.verifies("old-bundle.pem", "new-svc"));
    // New-bundle client × old and new leaves.
    assert!(s.verifies("new-bundle.pem", "old-svc"));
    assert!(s.verifies("new-bundle.pem", "new-svc"));
    let st = s.minica(&["status"]).ok().stdout;
    assert!(st.contains("warning:") && st.contains("--finish"), "{st}");
    // With the CRLs of every level, under either trust store; a leaf
    // revoked during the overlap is refused under both.
    s.minica(&["issue", "rev"]).ok();
    s.minica(&["revoke", "rev"]).ok();
    s.minica(&["crl", "--out", "crl.pem"]).ok();
    for bundle in ["old-bundle.pem", "new-bundle.pem"] {
        for (leaf, good) in [("old-svc", true), ("new-svc", true), ("rev", false)] {
            let r = s.openssl(&[
                "verify",
                "-crl_check_all",
                "-CRLfile",
                "crl.pem",
                "-CAfile",
                bundle,
                "-untrusted",
                &format!("{leaf}/chain.pem"),
                &format!("{leaf}/cert.pem"),
            ]);
            assert_eq!(r.code == Some(0), good, "{bundle} {leaf}: {r}");
        }
    }

    // --finish refuses while a leaf under the old root is active.
    let before = s.ledger();
    let r = s.minica(&["rotate", "root", "--finish"]).code(2);
    assert!(r.stderr.contains("old-svc"), "{r}");
    assert_eq!(s.ledger(), before);

    s.copy_dir("old-svc", "old-svc-copy");
    s.minica(&["renew", "old-svc"]).ok();
    s.minica(&["rotate", "root", "--finish"]).ok();
    s.copy_home("bundle.pem", "final-bundle.pem");
    let bundle = std::fs::read_to_string(s.work.join("final-bundle.pem")).unwrap();
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 1);
    // After --finish: the old leaf fails, the renewed one and the leaf
    // issued during the overlap pass.
    assert!(!s.verifies("final-bundle.pem", "old-svc-copy"));
    assert!(s.verifies("final-bundle.pem", "old-svc"));
    assert!(s.verifies("final-bundle.pem", "new-svc"));
    let st = s.minica(&["status"]).ok().stdout;
    assert!(!st.contains("warning:"), "{st}");
    // Leaves issued now have the plain chain.
    s.minica(&["issue", "later"]).ok();
    let chain = std::fs::read_to_string(s.work.join("later/chain.pem")).unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
}

#[test]
fn renew_keeps_names_kind_and_key_type_and_revoke_old_lists_the_old_serial() {
    let s = Scratch::new();
    s.minica(&["init"]).ok();
    s.minica(&[
        "issue",
        "svc",
        "--server",
        "--key-type",
        "ecdsa-p384",
        "--dns",
        "svc.example",
    ])
    .ok();
    let serial0 = s.x509("svc/cert.pem", "-serial");
    let pub0 = s.x509("svc/cert.pem", "-pubkey");
    let text0 = s.x509("svc/cert.pem", "-text");
    s.minica(&["renew", "svc"]).ok();
    let serial1 = s.x509("svc/cert.pem", "-serial");
    let pub1 = s.x509("svc/cert.pem", "-pubkey");
    let text1 = s.x509("svc/cert.pem", "-text");
    assert_ne!(serial0, serial1);
    assert_ne!(pub0, pub1, "a new key by default");
    let key_pub = s
        .openssl(&["pkey", "-in", "svc/key.pem", "-pubout"])
        .ok()
        .stdout;
    assert_eq!(key_pub, pub1, "key.pem matches cert.pem");
    for needle in [
        "DNS:svc, DNS:svc.example, URI:spiffe://minica.internal/svc",
        "TLS Web Server Authentication",
        "NIST CURVE: P-384",
    ] {
        assert!(
            text0.contains(needle) && text1.contains(needle),
            "{needle}\n{text1}"
        );
    }
    assert!(!text1.contains("TLS Web Client Authentication"));
    assert!(s.verifies("../home/bundle.pem", "svc"));

    // --reuse-key keeps the key; --revoke-old puts the old serial on the CRL.
    s.minica(&["renew", "svc", "--reuse-key", "--revoke-old"])
        .ok();
    assert_eq!(s.x509("svc/cert.pem", "-pubkey"), pub1);
    let old_hex = serial1.trim().trim_start_matches("serial=").to_string();
    let crl = s
        .openssl(&["crl", "-in", "../home/crl.pem", "-noout", "-text"])
        .ok()
        .stdout;
    assert!(crl.contains(&old_hex), "{old_hex} not in\n{crl}");
    assert!(crl.contains("Superseded"), "{crl}");
    let list = s.ledger();
    assert!(
        list.contains("\"superseded\"") && list.contains("\"revoked\""),
        "{list}"
    );
}

#[test]
fn renew_all_renews_only_due_leaves_and_dry_run_changes_nothing() {
    let s = Scratch::new();
    s.minica(&["init"]).ok();
    s.minica(&["issue", "short", "--valid", "1h"]).ok();
    s.minica(&["issue", "long"]).ok();
    let before = s.ledger();
    let r = s
        .minica(&["renew", "--all", "--within", "2h", "--dry-run"])
        .ok();
    assert!(
        r.stdout.contains("would renew short") && !r.stdout.contains("long"),
        "{r}"
    );
    assert_eq!(s.ledger(), before);
    let long_cert = std::fs::read(s.work.join("long/cert.pem")).unwrap();
    let r = s
        .minica(&["renew", "--all", "--within", "2h", "--valid", "1d"])
        .ok();
    assert!(r.stdout.contains("[1/1] renewed short"), "{r}");
    assert_eq!(
        std::fs::read(s.work.join("long/cert.pem")).unwrap(),
        long_cert
    );
    let r = s.minica(&["renew", "--all", "--within", "2h"]).ok();
    assert!(r.stdout.contains("nothing to renew"), "{r}");

    // One failure (--reuse-key without the identity directory) is
    // reported, the others are still renewed, and the exit code is 2.
    s.minica(&["issue", "a", "--valid", "1h"]).ok();
    s.minica(&["issue", "b", "--valid", "1h"]).ok();
    std::fs::remove_dir_all(s.work.join("a")).unwrap();
    let r = s
        .minica(&["renew", "--all", "--within", "2h", "--reuse-key"])
        .code(2);
    assert!(
        r.stderr.contains("renew a") && r.stdout.contains("renewed b"),
        "{r}"
    );
}

#[test]
fn bad_input_exits_2_and_changes_nothing() {
    let s = Scratch::new();
    s.minica(&["init"]).ok();
    s.minica(&["issue", "gone"]).ok();
    s.minica(&["revoke", "gone"]).ok();
    let before = s.ledger();
    for args in [
        &["renew", "nobody"][..],
        &["renew", "gone"],
        &["renew", "--all", "--within", "soon"],
        &["renew", "--all"],
        &["renew", "gone", "--within", "1d"],
        &["renew", "../x"],
        &["rotate", "root", "--finish"],
        &["rotate", "intermediate", "--valid", "20y"],
    ] {
        let r = s.minica(args).code(2);
        assert!(!r.stderr.is_empty(), "{args:?}: {r}");
        assert_eq!(s.ledger(), before, "{args:?}");
    }
    let empty = s.dir.path().join("empty");
    for args in [
        &["rotate", "intermediate"][..],
        &["rotate", "root"],
        &["renew", "x"],
    ] {
        let r = s.minica_in(&empty, args).code(2);
        assert!(r.stderr.contains("no CA"), "{r}");
        assert!(!empty.join("ca.json").exists());
    }
}

#[test]
fn intermediate_rotation_keeps_old_leaves_and_both_crls() {
    let s = Scratch::new();
    s.minica(&["init"]).ok();
    s.minica(&["issue", "a"]).ok();
    let old_int = std::fs::read_to_string(s.home.join("intermediate.pem")).unwrap();
    s.minica(&["rotate", "intermediate", "--valid", "1y"]).ok();
    s.minica(&["issue", "b"]).ok();
    let new_int = std::fs::read_to_string(s.home.join("intermediate.pem")).unwrap();
    assert_ne!(old_int, new_int);
    s.minica(&["revoke", "b"]).ok();
    for (leaf, ok) in [("a", true), ("b", false)] {
        let r = s.openssl(&[
            "verify",
            "-crl_check_all",
            "-CRLfile",
            "../home/crl.pem",
            "-CAfile",
            "../home/bundle.pem",
            "-untrusted",
            &format!("{leaf}/chain.pem"),
            &format!("{leaf}/cert.pem"),
        ]);
        assert_eq!(r.code == Some(0), ok, "{leaf}: {r}");
    }
    let st = s.minica(&["status"]).ok().stdout;
    assert!(st.contains("retired") && !st.contains("warning:"), "{st}");
}

#[test]
fn status_warns_about_a_short_intermediate_only() {
    let s = Scratch::new();
    s.minica(&["init"]).ok();
    let st = s.minica(&["status"]).ok().stdout;
    assert!(!st.contains("warning:"), "{st}");
    let short = s.dir.path().join("short");
    s.minica_in(&short, &["init", "--intermediate-valid", "30d"])
        .ok();
    let st = s.minica_in(&short, &["status"]).ok().stdout;
    let warnings: Vec<&str> = st.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 1, "{st}");
    assert!(warnings[0].contains("rotate intermediate"), "{st}");
}

#[test]
fn a_rotation_cut_short_leaves_a_ca_that_issues() {
    let s = Scratch::new();
    s.minica(&["init"]).ok();
    let saved = s.dir.path().join("saved");
    cp_r(&s.home, &saved);
    s.minica(&["rotate", "root"]).ok();

    // Crash after staging, before the switch: the new files are in cas/,
    // ca.json still names the old generation.
    let staged = s.dir.path().join("staged");
    cp_r(&saved, &staged);
    cp_r(&s.home.join("cas"), &staged.join("cas"));
    s.minica_in(&staged, &["issue", "x", "--out", "x-staged"])
        .ok();
    let bundle = staged.join("bundle.pem").display().to_string();
    assert!(s.verifies(&bundle, "x-staged"));
    assert_eq!(
        std::fs::read(staged.join("root.pem")).unwrap(),
        std::fs::read(saved.join("root.pem")).unwrap()
    );

    // Crash after the switch, before the compatibility copies: ca.json
    // names the new generation, root.pem etc. are still the old ones.
    for f in [
        "root.pem",
        "root-key.pem",
        "intermediate.pem",
        "intermediate-key.pem",
        "bundle.pem",
    ] {
        std::fs::copy(saved.join(f), s.home.join(f)).unwrap();
    }
    s.minica(&["issue", "y"]).ok();
    let bundle = std::fs::read_to_string(s.home.join("bundle.pem")).unwrap();
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 2, "repaired");
    assert!(s.verifies("../home/bundle.pem", "y"));
    let chain = std::fs::read_to_string(s.work.join("y/chain.pem")).unwrap();
    let int = std::fs::read_to_string(s.home.join("intermediate.pem")).unwrap();
    assert!(chain.contains(&int), "signed by the new intermediate");
    assert_ne!(
        int,
        std::fs::read_to_string(saved.join("intermediate.pem")).unwrap()
    );
}

/// The sidecar (rustls-webpki) as a real peer: a client that trusts only
/// the old root reaches a server whose leaf was issued after the rotation
/// (through the cross-certificate in its chain.pem), the server (new
/// bundle) accepts the client's pre-rotation leaf, and a `minica renew` of
/// the server is picked up without a restart.
#[test]
fn sidecars_across_a_root_rotation_and_a_renewal() {
    use crate::sidecar::harness::{
        free_addr, http_backend, http_get, sidecar, wait_metric, wait_ready, wait_until,
    };
    let s = Scratch::new();
    s.minica(&["init"]).ok();
    s.minica(&["issue", "cli", "--client"]).ok();
    s.minica(&["rotate", "root"]).ok();
    s.minica(&["issue", "srv", "--server"]).ok();
    let cli_ca = std::fs::read_to_string(s.work.join("cli/ca.pem")).unwrap();
    assert_eq!(
        cli_ca.matches("BEGIN CERTIFICATE").count(),
        1,
        "old root only"
    );

    let d = s.dir.path();
    let backend = http_backend("hello");
    let (in_addr, in_admin) = (free_addr(), free_addr());
    let path = |p: &str| s.work.join(p).display().to_string();
    let mut inbound = sidecar(
        d,
        "inbound",
        [
            "inbound",
            "--listen",
            &in_addr.to_string(),
            "--upstream",
            &backend.to_string(),
            "--identity",
            &path("srv"),
            "--allow",
            "spiffe://minica.internal/cli",
            "--admin",
            &in_admin.to_string(),
        ],
    );
    wait_ready(&mut inbound, in_admin);
    let (out_addr, out_admin) = (free_addr(), free_addr());
    let mut outbound = sidecar(
        d,
        "outbound",
        [
            "outbound",
            "--listen",
            &out_addr.to_string(),
            "--upstream",
            &in_addr.to_string(),
            "--server-name",
            "srv",
            "--identity",
            &path("cli"),
            "--allow",
            "spiffe://minica.internal/srv",
            "--admin",
            &out_admin.to_string(),
        ],
    );
    wait_ready(&mut outbound, out_admin);
    let get = || http_get(out_addr, "/").is_some_and(|(c, b)| c == 200 && b == "hello");
    wait_until("a request through both sidecars", get);

    s.minica(&["renew", "srv"]).ok();
    wait_metric(
        in_admin,
        "minica_sidecar_reloads_total{route=\"inbound\",direction=\"inbound\",result=\"ok\"}",
        1.0,
    );
    wait_until("a request after the renewal", get);
    inbound.assert_running();
    outbound.assert_running();
}

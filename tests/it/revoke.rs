//! `minica revoke`, `minica crl` and `minica verify` end to end, with the
//! real binary and real `openssl`: our CRLs are accepted by `openssl crl
//! -verify` and enforced by `openssl verify -crl_check(_all)`, and `minica
//! verify` agrees with `openssl verify -x509_strict` case by case.

use std::path::Path;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::support::{self, Ran, Scratch};

impl Scratch {
    /// `minica` with another home (e.g. a second, unrelated CA).
    fn minica_home(&self, home: &str, args: &[&str]) -> Ran {
        support::run(support::minica(&self.work.join(home), &self.work).args(args))
    }

    fn home_file(&self, name: &str) -> String {
        self.home.join(name).display().to_string()
    }

    fn write(&self, rel: &str, bytes: &[u8]) -> String {
        std::fs::write(self.path(rel), bytes).unwrap();
        rel.to_string()
    }

    /// `list --json` rows by name.
    fn row(&self, name: &str) -> serde_json::Value {
        let rows: serde_json::Value =
            serde_json::from_str(&self.minica(&["list", "--json", "--all"]).ok().stdout).unwrap();
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not listed: {rows}"))
    }

    /// The CRLs of `crl.pem` (inspect --json), intermediate first.
    fn crls(&self) -> Vec<serde_json::Value> {
        let ran = self
            .minica(&["inspect", "--json", &self.home_file("crl.pem")])
            .ok();
        let v: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
        assert_eq!(v["type"], "crls", "{v}");
        v["crls"].as_array().unwrap().clone()
    }

    /// Splits `<home>/crl.pem` into one file per CRL; returns their names.
    fn split_crls(&self) -> Vec<String> {
        let pem = std::fs::read_to_string(self.home.join("crl.pem")).unwrap();
        let end = "-----END X509 CRL-----";
        pem.split_inclusive(end)
            .filter(|p| p.contains(end))
            .enumerate()
            .map(|(i, block)| self.write(&format!("crl-{i}.pem"), block.trim().as_bytes()))
            .collect()
    }
}

fn number(crl: &serde_json::Value) -> u64 {
    crl["number"].as_str().unwrap().parse().unwrap()
}

/// One verification, given to both `minica verify` and `openssl verify
/// -x509_strict`.
#[derive(Default)]
struct Case<'a> {
    /// CERT for minica (chain files allowed); its first certificate goes to
    /// openssl, the others as `-untrusted`.
    cert: &'a str,
    bundle: &'a str,
    crl: Option<&'a str>,
    host: Option<&'a str>,
    ip: Option<&'a str>,
    max_depth: Option<&'a str>,
    purpose: Option<&'a str>,
    at: Option<OffsetDateTime>,
}

/// Runs a case through both verifiers; panics unless both say `valid`.
fn agree(s: &Scratch, case: &Case<'_>, valid: bool, code: Option<&str>) -> Ran {
    let mut ours = vec!["verify", case.cert, "--bundle", case.bundle, "--json"];
    let mut theirs = vec!["verify", "-x509_strict", "-CAfile", case.bundle];
    let at_text;
    let at_unix;
    if let Some(at) = case.at {
        at_text = at.format(&Rfc3339).unwrap();
        at_unix = at.unix_timestamp().to_string();
        ours.extend(["--at", &at_text]);
        theirs.extend(["-attime", &at_unix]);
    }
    if let Some(crl) = case.crl {
        ours.extend(["--crl", crl]);
        theirs.extend(["-crl_check_all", "-CRLfile", crl]);
    }
    if let Some(host) = case.host {
        ours.extend(["--host", host]);
        theirs.extend(["-verify_hostname", host]);
    }
    if let Some(ip) = case.ip {
        ours.extend(["--ip", ip]);
        theirs.extend(["-verify_ip", ip]);
    }
    if let Some(depth) = case.max_depth {
        ours.extend(["--max-depth", depth]);
        theirs.extend(["-verify_depth", depth]);
    }
    let purpose = case.purpose.unwrap_or("server");
    ours.extend(["--purpose", purpose]);
    theirs.extend([
        "-purpose",
        if purpose == "client" {
            "sslclient"
        } else {
            "sslserver"
        },
    ]);
    let pem = std::fs::read_to_string(s.path(case.cert)).unwrap();
    if pem.matches("BEGIN CERTIFICATE").count() > 1 {
        theirs.extend(["-untrusted", case.cert]);
    }
    theirs.push(case.cert);
    let mine = s.minica(&ours);
    let openssl = s.openssl(&theirs);
    assert_eq!(
        openssl.code == Some(0),
        valid,
        "openssl disagrees with the expected verdict:\n{openssl}"
    );
    assert_eq!(
        mine.code,
        Some(if valid { 0 } else { 1 }),
        "minica verify disagrees with openssl ({openssl}):\n{mine}"
    );
    let json: serde_json::Value = serde_json::from_str(&mine.stdout).unwrap();
    assert_eq!(json["valid"], valid, "{json}");
    if let Some(code) = code {
        assert_eq!(json["code"], code, "{json}\nopenssl: {openssl}");
    }
    mine
}

#[test]
fn revoked_leaves_are_on_a_crl_openssl_accepts_and_enforces() {
    let s = Scratch::new();
    s.minica(&["issue", "svc-a"]).ok();
    s.minica(&["issue", "svc-b", "--server"]).ok();
    s.minica(&["issue", "svc-c"]).ok();
    let serial_a = s.row("svc-a")["serial"].as_str().unwrap().to_string();

    // First revocation: recorded, and a CRL per level is published.
    let ran = s
        .minica(&["revoke", "svc-a", "--reason", "keyCompromise"])
        .ok();
    assert!(ran.stdout.contains("revoked leaf svc-a"), "{ran}");
    let row = s.row("svc-a");
    assert_eq!(row["status"], "revoked", "{row}");
    assert_eq!(row["revocation_reason"], "keyCompromise", "{row}");
    let first_at = row["revoked_at"].clone();
    let list = s.minica(&["list"]).ok().stdout;
    let line = list.lines().find(|l| l.starts_with("svc-a ")).unwrap();
    assert!(line.ends_with("revoked"), "{list}");

    let crls = s.crls();
    assert_eq!(crls.len(), 2, "{crls:?}");
    let (int, root) = (&crls[0], &crls[1]);
    assert!(int["issuer"].as_str().unwrap().contains("intermediate"));
    assert!(root["issuer"].as_str().unwrap().contains("root"));
    assert_eq!(int["entries"][0]["serial"], serial_a.as_str());
    assert_eq!(int["entries"][0]["reason_name"], "keyCompromise");
    assert_eq!(root["entries"].as_array().unwrap().len(), 0);
    assert!(int["authority_key_id"].is_string() && int["next_update"].is_string());
    let first_number = number(int);

    // openssl accepts every CRL of the file, each signed by its CA.
    let cas = s.write(
        "cas.pem",
        format!(
            "{}{}",
            std::fs::read_to_string(s.home.join("root.pem")).unwrap(),
            std::fs::read_to_string(s.home.join("intermediate.pem")).unwrap()
        )
        .as_bytes(),
    );
    let parts = s.split_crls();
    assert_eq!(parts.len(), 2);
    for part in &parts {
        let ran = s.openssl(&["crl", "-in", part, "-CAfile", &cas, "-verify", "-noout"]);
        assert!(
            ran.code == Some(0) && ran.stderr.contains("verify OK"),
            "{ran}"
        );
    }

    // openssl verify with the CRLs: the revoked leaf fails, the others pass.
    let crl = s.home_file("crl.pem");
    let root_pem = s.home_file("root.pem");
    let int_pem = s.home_file("intermediate.pem");
    for check in ["-crl_check", "-crl_check_all"] {
        let verify = |name: &str| {
            let cert = format!("{name}/cert.pem");
            s.openssl(&[
                "verify",
                "-x509_strict",
                "-CAfile",
                &root_pem,
                "-untrusted",
                &int_pem,
                check,
                "-CRLfile",
                &crl,
                &cert,
            ])
        };
        let ran = verify("svc-a");
        assert_ne!(ran.code, Some(0), "{ran}");
        assert!(
            ran.stdout.contains("certificate revoked")
                || ran.stderr.contains("certificate revoked"),
            "{ran}"
        );
        verify("svc-b").ok();
        verify("svc-c").ok();
    }
    // minica verify agrees, with the reason and date of the entry.
    let ran = s
        .minica(&["verify", "svc-a/chain.pem", "--crl", &crl])
        .code(1);
    assert!(
        ran.stdout
            .starts_with("INVALID svc-a: certificate revoked (serial ")
            && ran.stdout.contains("keyCompromise"),
        "{ran}"
    );
    s.minica(&["verify", "svc-b/chain.pem", "--crl", &crl]).ok();

    // Revoking again: exit 0, says so, keeps the first date and reason.
    let ran = s
        .minica(&["revoke", "svc-a", "--reason", "superseded"])
        .ok();
    assert!(ran.stdout.contains("already revoked"), "{ran}");
    let row = s.row("svc-a");
    assert_eq!(row["revocation_reason"], "keyCompromise");
    assert_eq!(row["revoked_at"], first_at);
    let crls = s.crls();
    assert_eq!(crls[0]["entries"][0]["reason_name"], "keyCompromise");
    let second_number = number(&crls[0]);
    assert!(second_number > first_number);

    // Another revocation, by serial: numbers keep increasing, per issuer.
    let serial_c = s.row("svc-c")["serial"].as_str().unwrap().to_string();
    s.minica(&["revoke", "--serial", &serial_c]).ok();
    let crls = s.crls();
    assert!(number(&crls[0]) > second_number);
    assert!(number(&crls[1]) > number(&root.clone()));
    assert_eq!(crls[0]["entries"].as_array().unwrap().len(), 2);
    assert_eq!(s.row("svc-c")["revocation_reason"], "unspecified");

    // `minica crl`: PEM on stdout, to --out, or DER per level.
    let ran = s.minica(&["crl", "--next-update", "1d"]).ok();
    assert_eq!(ran.stdout.matches("BEGIN X509 CRL").count(), 2, "{ran}");
    s.minica(&["crl", "--out", "out.pem"]).ok();
    s.openssl(&["crl", "-in", "out.pem", "-noout"]).ok();
    s.minica(&["crl", "--der", "--out", "crl.der"]).ok();
    for der in ["crl.der", "crl-root.der"] {
        let ran = s.openssl(&[
            "crl", "-inform", "DER", "-in", der, "-CAfile", &cas, "-verify", "-noout",
        ]);
        assert!(
            ran.code == Some(0) && ran.stderr.contains("verify OK"),
            "{ran}"
        );
    }
    s.minica(&["crl", "--der"]).code(2);
}

#[test]
fn unknown_targets_change_nothing_and_a_revoked_intermediate_is_on_the_roots_crl() {
    let s = Scratch::new();
    s.minica(&["issue", "svc-a"]).ok();
    s.minica(&["issue", "svc-b"]).ok();
    let before = s.minica(&["list", "--json", "--all"]).ok().stdout;
    for args in [
        &["revoke", "nobody"][..],
        &["revoke", "--serial", "0123456789abcdef"],
        &["revoke", "svc-a", "--reason", "certificateHold"],
        &["revoke"],
    ] {
        let ran = s.minica(args).code(2);
        assert!(ran.stderr.contains("error"), "{ran}");
    }
    let ran = s.minica(&["revoke", "nobody"]).code(2);
    assert!(
        ran.stderr.contains("\"nobody\" is not in the ledger"),
        "{ran}"
    );
    let root_serial = s.row_kind("root");
    let ran = s.minica(&["revoke", "--serial", &root_serial]).code(2);
    assert!(ran.stderr.contains("root"), "{ran}");
    assert_eq!(s.minica(&["list", "--json", "--all"]).ok().stdout, before);
    assert!(!s.home.join("crl.pem").exists());

    // The intermediate, by serial: listed on the root's CRL; every leaf
    // below it is rejected by a relying party that checks every level.
    let int_serial = s.row_kind("intermediate");
    let ran = s
        .minica(&[
            "revoke",
            "--serial",
            &int_serial,
            "--reason",
            "caCompromise",
        ])
        .ok();
    assert!(ran.stdout.contains("root's CRL"), "{ran}");
    let ran = s.minica(&["issue", "late"]).code(2);
    assert!(ran.stderr.contains("is revoked"), "{ran}");
    assert!(!s.path("late").exists());
    let crls = s.crls();
    assert_eq!(crls[0]["entries"].as_array().unwrap().len(), 0);
    assert_eq!(crls[1]["entries"][0]["serial"], int_serial.as_str());
    assert_eq!(crls[1]["entries"][0]["reason_name"], "caCompromise");
    let crl = s.home_file("crl.pem");
    let root_pem = s.home_file("root.pem");
    let int_pem = s.home_file("intermediate.pem");
    let verify = |check: &str| {
        s.openssl(&[
            "verify",
            "-CAfile",
            &root_pem,
            "-untrusted",
            &int_pem,
            check,
            "-CRLfile",
            &crl,
            "svc-a/cert.pem",
        ])
    };
    let ran = verify("-crl_check_all");
    assert!(
        ran.code != Some(0) && format!("{ran}").contains("certificate revoked"),
        "{ran}"
    );
    // -crl_check looks at the leaf only, which is not revoked.
    verify("-crl_check").ok();
    let ran = s
        .minica(&["verify", "svc-b/chain.pem", "--crl", &crl])
        .code(1);
    assert!(ran.stdout.contains("certificate revoked"), "{ran}");
    assert!(ran.stdout.contains("caCompromise"), "{ran}");
}

impl Scratch {
    /// The serial of the (single) CA certificate of `kind`.
    fn row_kind(&self, kind: &str) -> String {
        let rows: serde_json::Value =
            serde_json::from_str(&self.minica(&["list", "--json", "--all"]).ok().stdout).unwrap();
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["kind"] == kind)
            .map(|r| r["serial"].as_str().unwrap().to_string())
            .unwrap()
    }
}

/// Flips a byte inside the signature (the last bytes of the DER) of the
/// first certificate of `pem`.
fn tamper(pem: &str) -> String {
    let der = minica_pki::pem::parse_certs(Path::new("x"), pem.as_bytes()).unwrap();
    let mut bytes = der[0].as_ref().to_vec();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x01;
    minica_pki::pem::encode_pem("CERTIFICATE", &bytes)
}

#[test]
fn verify_agrees_with_openssl_strict() {
    let s = Scratch::new();
    s.minica(&["issue", "svc-a"]).ok();
    s.minica(&["issue", "web", "--server"]).ok();
    s.minica(&["issue", "short", "--valid", "1h"]).ok();
    s.minica(&["issue", "10.0.0.7"]).ok();
    s.minica(&["issue", "gone"]).ok();
    s.minica(&["revoke", "gone", "--reason", "keyCompromise"])
        .ok();
    s.minica_home("other", &["issue", "stranger"]).ok();
    s.minica_home("other", &["crl", "--out", "other-crl.pem"])
        .ok();
    let bundle = s.home_file("bundle.pem");
    let crl = s.home_file("crl.pem");
    let now = OffsetDateTime::now_utc();
    let case = |cert| Case {
        cert,
        bundle: &bundle,
        ..Case::default()
    };

    // Valid, with a name, a purpose, the CRLs, and the default bundle.
    let ran = agree(
        &s,
        &Case {
            host: Some("svc-a"),
            crl: Some(&crl),
            ..case("svc-a/chain.pem")
        },
        true,
        None,
    );
    let json: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(json["chain"].as_array().unwrap().len(), 3, "{json}");
    assert_eq!(json["chain"][0]["subject"], "CN=svc-a");
    assert!(json["chain"][0]["serial"].is_string() && json["chain"][0]["not_after"].is_string());
    let ran = s.minica(&["verify", "svc-a/chain.pem"]).ok();
    assert!(
        ran.stdout
            .starts_with("OK svc-a: svc-a → minica intermediate CA ")
            && ran.stdout.contains(" → minica root CA "),
        "{ran}"
    );
    agree(
        &s,
        &Case {
            purpose: Some("client"),
            ..case("svc-a/chain.pem")
        },
        true,
        None,
    );

    // An IP address; the depth limit (intermediates between leaf and anchor).
    agree(
        &s,
        &Case {
            ip: Some("10.0.0.7"),
            ..case("10.0.0.7/chain.pem")
        },
        true,
        None,
    );
    agree(
        &s,
        &Case {
            ip: Some("10.0.0.8"),
            ..case("10.0.0.7/chain.pem")
        },
        false,
        Some("name-mismatch"),
    );
    agree(
        &s,
        &Case {
            max_depth: Some("1"),
            ..case("svc-a/chain.pem")
        },
        true,
        None,
    );
    agree(
        &s,
        &Case {
            max_depth: Some("0"),
            ..case("svc-a/chain.pem")
        },
        false,
        Some("path-too-long"),
    );

    // Expired (a 1-hour leaf two hours from now), not yet valid.
    agree(
        &s,
        &Case {
            at: Some(now + time::Duration::hours(2)),
            ..case("short/chain.pem")
        },
        false,
        Some("expired"),
    );
    let fractional = (now + time::Duration::hours(2)).format(&Rfc3339).unwrap();
    assert!(fractional.contains('.'), "{fractional}");
    s.minica(&["verify", "short/chain.pem", "--at", &fractional])
        .code(1);
    agree(
        &s,
        &Case {
            at: Some(now - time::Duration::days(2)),
            ..case("svc-a/chain.pem")
        },
        false,
        Some("not-yet-valid"),
    );
    // Wrong host, wrong purpose.
    agree(
        &s,
        &Case {
            host: Some("svc-b"),
            ..case("svc-a/chain.pem")
        },
        false,
        Some("name-mismatch"),
    );
    agree(
        &s,
        &Case {
            purpose: Some("client"),
            ..case("web/chain.pem")
        },
        false,
        Some("wrong-purpose"),
    );
    // Unknown CA (another home's bundle), missing intermediate.
    let other_bundle = s.path("other/bundle.pem").display().to_string();
    agree(
        &s,
        &Case {
            bundle: &other_bundle,
            ..case("svc-a/chain.pem")
        },
        false,
        Some("unknown-issuer"),
    );
    agree(&s, &case("svc-a/cert.pem"), false, Some("unknown-issuer"));
    // Revoked; a CRL from another CA (it covers nothing here).
    agree(
        &s,
        &Case {
            crl: Some(&crl),
            ..case("gone/chain.pem")
        },
        false,
        Some("revoked"),
    );
    agree(
        &s,
        &Case {
            crl: Some("other-crl.pem"),
            ..case("svc-a/chain.pem")
        },
        false,
        Some("crl"),
    );
    // A CRL with our intermediate's name, signed by another key.
    let forged = forged_crl(&s);
    agree(
        &s,
        &Case {
            crl: Some(&forged),
            ..case("gone/chain.pem")
        },
        false,
        Some("crl"),
    );
    // A tampered signature.
    let chain = std::fs::read_to_string(s.path("svc-a/chain.pem")).unwrap();
    let int = std::fs::read_to_string(s.home.join("intermediate.pem")).unwrap();
    let bad = s.write(
        "tampered.pem",
        format!("{}{int}", tamper(&chain)).as_bytes(),
    );
    agree(&s, &case(&bad), false, Some("bad-signature"));
}

/// A CRL whose issuer is our intermediate's name and whose AKI and
/// signature come from another key (and that lists nothing).
fn forged_crl(s: &Scratch) -> String {
    use minica_ca::crl::{build_crl, CrlParams};
    let int = minica_pki::pem::load_certs(&s.home.join("intermediate.pem")).unwrap();
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, x) = X509Certificate::from_der(&int[0]).unwrap();
    let cn = x.subject().iter_common_name().next().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "minica");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn.as_str().unwrap());
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let key = rcgen::KeyPair::generate().unwrap();
    let fake = params.self_signed(&key).unwrap();
    let now = OffsetDateTime::now_utc() - time::Duration::minutes(1);
    assert_eq!(
        X509Certificate::from_der(fake.der())
            .unwrap()
            .1
            .subject()
            .as_raw(),
        x.subject().as_raw(),
        "the forged CA must have the intermediate's exact name"
    );
    let crl = build_crl(fake.der(), &key, &CrlParams::new(99, now)).unwrap();
    s.write("forged-crl.pem", crl.to_pem().as_bytes())
}

#[test]
fn verify_refuses_bad_inputs_with_exit_2() {
    let s = Scratch::new();
    s.minica(&["issue", "svc-a"]).ok();
    s.minica(&["crl", "--out", "crl.pem"]).ok();
    let garbage = s.write("garbage.pem", b"this is not a certificate\n\x00\x01");
    let der_garbage = s.write("garbage.der", &[0x30, 0x03, 0x02, 0x01, 0x05]);
    let empty = s.write("empty.pem", b"");
    let bundle = s.home_file("bundle.pem");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["verify", &garbage], "garbage.pem"),
        (vec!["verify", &der_garbage], "garbage.der"),
        (vec!["verify", &empty], "empty"),
        (vec!["verify", "svc-a/key.pem"], "private key"),
        (vec!["verify", "crl.pem"], "CRL"),
        (vec!["verify", "missing.pem"], "missing.pem"),
        (
            vec!["verify", "svc-a/cert.pem", "--bundle", "crl.pem"],
            "--crl",
        ),
        (
            vec!["verify", "svc-a/cert.pem", "--bundle", &empty],
            "--bundle",
        ),
        (
            vec!["verify", "svc-a/cert.pem", "--crl", &bundle],
            "not a CRL",
        ),
        (vec!["verify", "svc-a/cert.pem", "--crl", &garbage], "--crl"),
        (
            vec!["verify", "svc-a/cert.pem", "--untrusted", &empty],
            "--untrusted",
        ),
        (
            vec!["verify", "svc-a/cert.pem", "--at", "yesterday"],
            "--at",
        ),
        (
            vec![
                "verify",
                "svc-a/cert.pem",
                "--host",
                "a",
                "--ip",
                "127.0.0.1",
            ],
            "cannot be used",
        ),
    ];
    for (args, needle) in cases {
        let ran = s.minica(&args).code(2);
        assert!(
            ran.stderr.contains(needle) && !ran.stderr.contains("panicked"),
            "{args:?}: {ran}"
        );
    }
    // No CA in the home and no --bundle: a clear message.
    let ran = support::run(
        support::minica(&s.work.join("nohome"), &s.work).args(["verify", "svc-a/cert.pem"]),
    )
    .code(2);
    assert!(ran.stderr.contains("--bundle"), "{ran}");
}

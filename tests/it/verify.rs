//! Chain verification compared with `openssl verify -x509_strict`, and our
//! CRLs checked by `openssl crl -verify` and `openssl verify -crl_check`.
//!
//! Every case is built with rcgen, written to PEM files, and given to both
//! `minica_ca::verify::verify` (in process) and `openssl verify`; the two
//! verdicts must agree.

use std::path::{Path, PathBuf};
use std::process::Command;

use minica_ca::crl::{build_crl, CrlEntry, CrlParams, RevocationReason};
use minica_ca::verify::{verify, Purpose, Reason, SubjectName, VerifyRequest};
use minica_pki::pem::encode_pem;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use time::{Duration, OffsetDateTime};

use crate::support::{require_tool, run};

/// 2026-01-01T00:00:00Z + `days`.
fn t(days: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap() + Duration::days(days)
}

/// When every case is verified (`--at` / `-attime`).
fn at() -> OffsetDateTime {
    t(150)
}

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    der: CertificateDer<'static>,
}

impl Ca {
    fn new(cn: &str, parent: Option<&Ca>) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = t(-10);
        params.not_after = t(3650);
        params.use_authority_key_identifier_extension = parent.is_some();
        let cert = match parent {
            Some(p) => params.signed_by(&key, &p.issuer()).unwrap(),
            None => params.self_signed(&key).unwrap(),
        };
        let der = cert.der().clone();
        Ca { params, key, der }
    }

    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }

    fn leaf(&self, dns: &str, f: impl FnOnce(&mut CertificateParams)) -> CertificateDer<'static> {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec![dns.to_owned()]).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, dns);
        p.not_before = t(-1);
        p.not_after = t(365);
        p.use_authority_key_identifier_extension = true;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        f(&mut p);
        p.signed_by(&key, &self.issuer()).unwrap().der().clone()
    }

    fn crl(&self, revoked: &[&[u8]]) -> Vec<u8> {
        let mut params = CrlParams::new(1, t(145));
        params.entries = revoked
            .iter()
            .map(|der| CrlEntry {
                serial: serial_of(der),
                revoked_at: t(100),
                reason: RevocationReason::KeyCompromise,
            })
            .collect();
        build_crl(&self.der, &self.key, &params).unwrap().into_der()
    }
}

fn serial_of(der: &[u8]) -> Vec<u8> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    X509Certificate::from_der(der)
        .unwrap()
        .1
        .raw_serial()
        .to_vec()
}

fn write_certs(dir: &Path, name: &str, certs: &[&[u8]]) -> PathBuf {
    let path = dir.join(name);
    let pem: String = certs.iter().map(|c| encode_pem("CERTIFICATE", c)).collect();
    std::fs::write(&path, pem).unwrap();
    path
}

/// One verification case, given to both verifiers.
struct Case<'a> {
    leaf: &'a [u8],
    untrusted: Vec<&'a [u8]>,
    anchors: Vec<&'a [u8]>,
    crls: Vec<Vec<u8>>,
    host: Option<&'a str>,
    purpose: Purpose,
    /// `-crl_check_all` instead of `-crl_check` (every level).
    check_all: bool,
}

impl<'a> Case<'a> {
    fn new(leaf: &'a [u8], untrusted: &[&'a [u8]], anchors: &[&'a [u8]]) -> Self {
        Case {
            leaf,
            untrusted: untrusted.to_vec(),
            anchors: anchors.to_vec(),
            crls: Vec::new(),
            host: None,
            purpose: Purpose::Server,
            check_all: false,
        }
    }

    fn ours(&self) -> Option<Reason> {
        let inters: Vec<CertificateDer<'_>> = self
            .untrusted
            .iter()
            .map(|d| CertificateDer::from(*d))
            .collect();
        let anchors: Vec<CertificateDer<'_>> = self
            .anchors
            .iter()
            .map(|d| CertificateDer::from(*d))
            .collect();
        let crls: Vec<CertificateRevocationListDer<'_>> = self
            .crls
            .iter()
            .map(|d| CertificateRevocationListDer::from(d.as_slice()))
            .collect();
        verify(&VerifyRequest {
            leaf: self.leaf,
            intermediates: &inters,
            anchors: &anchors,
            crls: &crls,
            name: self.host.map(|h| SubjectName::Host(h.into())),
            purpose: self.purpose,
            at: at(),
            max_depth: None,
        })
        .reason
    }

    /// `openssl verify`'s verdict: `Ok(())` or its output.
    fn openssl(&self, dir: &Path) -> Result<(), String> {
        let leaf = write_certs(dir, "leaf.pem", &[self.leaf]);
        let anchors = write_certs(dir, "anchors.pem", &self.anchors);
        let mut cmd = Command::new("openssl");
        cmd.arg("verify")
            .arg("-x509_strict")
            .arg("-attime")
            .arg(at().unix_timestamp().to_string())
            .arg("-CAfile")
            .arg(&anchors);
        if !self.untrusted.is_empty() {
            cmd.arg("-untrusted")
                .arg(write_certs(dir, "untrusted.pem", &self.untrusted));
        }
        if !self.crls.is_empty() {
            let pem: String = self
                .crls
                .iter()
                .map(|c| encode_pem("X509 CRL", c))
                .collect();
            let path = dir.join("crls.pem");
            std::fs::write(&path, pem).unwrap();
            let check = if self.check_all {
                "-crl_check_all"
            } else {
                "-crl_check"
            };
            cmd.arg(check).arg("-CRLfile").arg(path);
        }
        if let Some(h) = self.host {
            cmd.arg("-verify_hostname").arg(h);
        }
        match self.purpose {
            Purpose::Server => cmd.args(["-purpose", "sslserver"]),
            Purpose::Client => cmd.args(["-purpose", "sslclient"]),
            Purpose::Any => &mut cmd,
        };
        cmd.arg(&leaf);
        let ran = run(&mut cmd);
        if ran.code == Some(0) {
            Ok(())
        } else {
            Err(format!("{}{}", ran.stdout, ran.stderr))
        }
    }
}

/// Both verifiers agree; returns (ours, openssl's) for further checks.
#[track_caller]
fn agree(case: &Case<'_>, expect_valid: bool) -> (Option<Reason>, Result<(), String>) {
    let dir = tempfile::tempdir().unwrap();
    let ours = case.ours();
    let theirs = case.openssl(dir.path());
    assert_eq!(ours.is_none(), expect_valid, "minica: {ours:?}");
    assert_eq!(theirs.is_ok(), expect_valid, "openssl: {theirs:?}");
    (ours, theirs)
}

/// openssl's rejection names `what`.
#[track_caller]
fn expect_openssl(theirs: &Result<(), String>, what: &str) {
    let out = theirs
        .as_ref()
        .err()
        .map(String::as_str)
        .unwrap_or_default();
    assert!(out.contains(what), "openssl said: {out}");
}

struct Pki {
    root: Ca,
    inter: Ca,
    leaf: CertificateDer<'static>,
}

fn pki() -> Pki {
    let root = Ca::new("minica root", None);
    let inter = Ca::new("minica intermediate", Some(&root));
    let leaf = inter.leaf("svc-a.test", |_| {});
    Pki { root, inter, leaf }
}

#[test]
fn agrees_with_openssl_verify() {
    require_tool("openssl");
    let p = pki();
    let (root, inter) = (p.root.der.as_ref(), p.inter.der.as_ref());

    // valid leaf, with the name
    let mut case = Case::new(&p.leaf, &[inter], &[root]);
    case.host = Some("svc-a.test");
    let _ = agree(&case, true);

    // wrong host
    case.host = Some("svc-b.test");
    let (ours, theirs) = agree(&case, false);
    assert!(matches!(ours, Some(Reason::NameMismatch { .. })));
    expect_openssl(&theirs, "hostname mismatch");

    // expired, not yet valid
    let expired = p.inter.leaf("svc-a.test", |c| {
        c.not_before = t(-100);
        c.not_after = t(100);
    });
    let (ours, theirs) = agree(&Case::new(&expired, &[inter], &[root]), false);
    assert!(matches!(ours, Some(Reason::Expired { .. })));
    expect_openssl(&theirs, "certificate has expired");
    let young = p.inter.leaf("svc-a.test", |c| c.not_before = t(200));
    let (ours, theirs) = agree(&Case::new(&young, &[inter], &[root]), false);
    assert!(matches!(ours, Some(Reason::NotYetValid { .. })));
    expect_openssl(&theirs, "not yet valid");

    // wrong purpose: a client certificate used as a server's
    let client = p.inter.leaf("svc-a.test", |c| {
        c.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    });
    let mut case = Case::new(&client, &[inter], &[root]);
    let (ours, theirs) = agree(&case, false);
    assert!(matches!(ours, Some(Reason::WrongPurpose { .. })));
    expect_openssl(&theirs, "unsuitable certificate purpose");
    case.purpose = Purpose::Client;
    let _ = agree(&case, true);

    // unknown CA, missing intermediate
    let other = Ca::new("other root", None);
    let (ours, _) = agree(&Case::new(&p.leaf, &[inter], &[other.der.as_ref()]), false);
    assert!(matches!(ours, Some(Reason::UnknownIssuer { .. })));
    let (ours, theirs) = agree(&Case::new(&p.leaf, &[], &[root]), false);
    assert_eq!(
        ours,
        Some(Reason::UnknownIssuer {
            subject: "svc-a.test".into(),
            issuer: "CN=minica intermediate".into()
        })
    );
    expect_openssl(&theirs, "unable to get local issuer certificate");

    // tampered signature
    let mut bad = p.leaf.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    let (ours, theirs) = agree(&Case::new(&bad, &[inter], &[root]), false);
    assert!(matches!(ours, Some(Reason::BadSignature { .. })));
    expect_openssl(&theirs, "signature failure");
}

#[test]
fn crls_agree_with_openssl() {
    require_tool("openssl");
    let p = pki();
    let (root, inter) = (p.root.der.as_ref(), p.inter.der.as_ref());
    let other_leaf = p.inter.leaf("svc-b.test", |_| {});
    let crl = p.inter.crl(&[p.leaf.as_ref()]);
    // the root's CRL too (as `minica crl` publishes), for -crl_check_all
    let root_crl = p.root.crl(&[]);
    let dir = tempfile::tempdir().unwrap();

    // openssl crl -verify accepts our CRL, and reads its fields back
    let crl_path = dir.path().join("crl.pem");
    std::fs::write(&crl_path, encode_pem("X509 CRL", &crl)).unwrap();
    let cas = write_certs(dir.path(), "cas.pem", &[root, inter]);
    let ran = run(Command::new("openssl")
        .args(["crl", "-noout", "-text", "-verify", "-in"])
        .arg(&crl_path)
        .arg("-CAfile")
        .arg(&cas));
    assert_eq!(ran.code, Some(0), "{ran}");
    assert!(ran.stderr.contains("verify OK"), "{ran}");
    assert!(ran.stdout.contains("X509v3 CRL Number"), "{ran}");
    assert!(
        ran.stdout.contains("X509v3 Authority Key Identifier"),
        "{ran}"
    );
    assert!(ran.stdout.contains("Key Compromise"), "{ran}");
    assert!(ran.stdout.contains("Version 2"), "{ran}");

    // revoked leaf: rejected by both, "certificate revoked"
    let mut case = Case::new(&p.leaf, &[inter], &[root]);
    case.crls = vec![crl.clone()];
    let (ours, theirs) = agree(&case, false);
    assert!(matches!(ours, Some(Reason::Revoked { .. })));
    expect_openssl(&theirs, "certificate revoked");
    // the others are accepted
    let mut case = Case::new(&other_leaf, &[inter], &[root]);
    case.crls = vec![crl.clone()];
    let _ = agree(&case, true);

    // every level: the root's CRL revoking the intermediate
    let root_revokes = p.root.crl(&[inter]);
    let mut case = Case::new(&other_leaf, &[inter], &[root]);
    case.crls = vec![crl.clone(), root_revokes];
    case.check_all = true;
    let (ours, theirs) = agree(&case, false);
    assert!(
        matches!(&ours, Some(Reason::Revoked { subject, .. }) if subject == "minica intermediate"),
        "{ours:?}"
    );
    expect_openssl(&theirs, "certificate revoked");
    case.crls = vec![crl.clone(), root_crl.clone()];
    let _ = agree(&case, true);

    // a CRL with the intermediate's name signed by another key
    let forger = Ca::new("minica intermediate", None);
    let mut case = Case::new(&other_leaf, &[inter], &[root]);
    case.crls = vec![forger.crl(&[])];
    let (ours, theirs) = agree(&case, false);
    assert!(matches!(ours, Some(Reason::Crl(_))), "{ours:?}");
    // openssl matches CRLs by Authority Key Identifier too, so it finds no
    // CRL for the leaf (and -crl_check then rejects); we take the CRL as
    // the issuer's by name and reject its signature. Both reject.
    let out = theirs.unwrap_err();
    assert!(
        out.contains("CRL signature failure") || out.contains("unable to get certificate CRL"),
        "openssl said: {out}"
    );
}

/// In-process speed (release: `cargo test --release -p minica-tests --test it
/// verify::bench -- --ignored --nocapture`). Prints figures; asserts nothing
/// about time.
#[test]
#[ignore = "benchmark: run explicitly in release mode"]
fn bench() {
    let p = pki();
    let anchors = [p.root.der.clone()];
    let inters = [p.inter.der.clone()];
    let req = VerifyRequest {
        intermediates: &inters,
        name: Some(SubjectName::Host("svc-a.test".into())),
        ..VerifyRequest::new(&p.leaf, &anchors, at())
    };
    assert!(verify(&req).is_valid());
    let n = 20_000;
    let start = std::time::Instant::now();
    for _ in 0..n {
        assert!(verify(&req).is_valid());
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "verify 3-certificate chain: {n} in {secs:.3} s = {:.0}/s",
        f64::from(n) / secs
    );

    let mut params = CrlParams::new(9, t(145));
    params.entries = (1u64..=100_000)
        .map(|i| CrlEntry {
            serial: (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1 << 63)
                .to_be_bytes()
                .to_vec(),
            revoked_at: t(100),
            reason: RevocationReason::Superseded,
        })
        .collect();
    let start = std::time::Instant::now();
    let crl = build_crl(&p.inter.der, &p.inter.key, &params).unwrap();
    let built = start.elapsed();
    let start = std::time::Instant::now();
    let info = minica_ca::crl::CrlInfo::parse(crl.der()).unwrap();
    let parsed = start.elapsed();
    let start = std::time::Instant::now();
    let mut found = 0;
    for e in params.entries.iter().take(100_000) {
        found += usize::from(info.lookup(&e.serial).is_some());
    }
    let looked = start.elapsed();
    assert_eq!(found, 100_000);
    println!(
        "CRL 100,000 entries: build {built:?} ({} bytes), parse {parsed:?}, 100,000 lookups {looked:?}",
        crl.der().len()
    );
    let crls = [
        CertificateRevocationListDer::from(crl.der().to_vec()),
        CertificateRevocationListDer::from(p.root.crl(&[])),
    ];
    let req = VerifyRequest { crls: &crls, ..req };
    let start = std::time::Instant::now();
    let m = 200;
    for _ in 0..m {
        assert!(verify(&req).is_valid());
    }
    println!(
        "verify with the 100,000-entry CRL: {:?} each",
        start.elapsed() / m
    );
}

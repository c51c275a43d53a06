//! Every parser under generated and mutated input, through the public APIs.
//!
//! Each property runs a bounded number of cases (`MINICA_PROPTEST_CASES`,
//! default 512) and stops early when its time budget is spent. Mutations
//! (flip, overwrite, insert, delete, duplicate, truncate) are applied to
//! real seeds: certificates, CSRs, CRLs and keys made at test time, and the
//! checked-in corpus of `tests/corpus/`, which is also replayed every run
//! with its expected verdicts (`ok-*` must be accepted, `bad-*` refused).
//!
//! Properties: no panic, no hang, every rejection an error value that names
//! the file; and the security ones: a chain mutated inside its signed part
//! is never valid, a CSR mutated inside its signed part is never accepted,
//! a NAME never walks out of its directory, a key never appears in an error.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Component, Path};
use std::time::{Duration, Instant};

use minica_ca::verify::{verify, Purpose, SubjectName, VerifyRequest};
use minica_pki::identity::{AllowRule, PeerIdentity, SpiffeId};
use minica_sidecar::mysql::handshake::{ssl_request_for, Greeting, Response};
use minica_sidecar::mysql::packet::{self, rewrite_frames, Header, MAX_HANDSHAKE_PAYLOAD};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams,
    SanType, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

use super::{corpus_dir, env_usize};

/// Time budget of one property (the case count usually ends it first).
const PROPERTY_TIME: Duration = Duration::from_secs(8);

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: u32::try_from(env_usize("MINICA_PROPTEST_CASES", 512)).unwrap_or(512),
        failure_persistence: None,
        max_shrink_iters: 256,
        ..Config::default()
    })
}

/// Runs `test` on values of `strategy` under the case count and a time
/// budget (cases after the budget are accepted without running).
pub(super) fn check<S: Strategy>(
    what: &str,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let end = Instant::now() + PROPERTY_TIME;
    let result = runner().run(&strategy, |v| {
        if Instant::now() > end {
            return Ok(());
        }
        test(v)
    });
    if let Err(e) = result {
        panic!("{what}: {e}");
    }
}

// ---------------------------------------------------------------- mutation

/// One edit of a byte string; positions are taken modulo its length.
#[derive(Debug, Clone)]
pub(super) enum Edit {
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(p, b)| Edit::Flip(p, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Edit::Set(p, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Edit::Insert(p, b)),
        (any::<usize>(), 1usize..16).prop_map(|(p, n)| Edit::Delete(p, n)),
        (any::<usize>(), 1usize..64).prop_map(|(p, n)| Edit::Duplicate(p, n)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

/// Up to four edits.
fn edits() -> impl Strategy<Value = Vec<Edit>> {
    proptest::collection::vec(edit(), 1..5)
}

pub(super) fn apply(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for e in edits {
        let len = b.len().max(1);
        match *e {
            Edit::Flip(p, bit) => {
                if let Some(x) = b.get_mut(p % len) {
                    *x ^= 1 << bit;
                }
            }
            Edit::Set(p, v) => {
                if let Some(x) = b.get_mut(p % len) {
                    *x = v;
                }
            }
            Edit::Insert(p, v) => b.insert(p % (b.len() + 1), v),
            Edit::Delete(p, n) => {
                let at = p % len;
                let end = (at + n).min(b.len());
                if at < end {
                    b.drain(at..end);
                }
            }
            Edit::Duplicate(p, n) => {
                let at = p % len;
                let end = (at + n).min(b.len());
                if at < end {
                    let copy = b[at..end].to_vec();
                    b.splice(end..end, copy);
                }
            }
            Edit::Truncate(p) => b.truncate(p % len),
        }
    }
    b
}

/// Mutated copies of one of `seeds`.
fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let n = seeds.len();
    (0..n, edits()).prop_map(move |(i, e)| apply(&seeds[i], &e))
}

// ---------------------------------------------------------------- seeds

/// A small PKI made with rcgen: root → intermediate → leaf, a CRL, a CSR.
struct Seeds {
    root: Vec<u8>,
    intermediate: Vec<u8>,
    leaf: Vec<u8>,
    chain_pem: Vec<u8>,
    crl_der: Vec<u8>,
    crl_pem: Vec<u8>,
    csr_der: Vec<u8>,
    csr_pem: Vec<u8>,
    keys_pem: Vec<Vec<u8>>,
}

fn ca_params(cn: &str, path_len: u8) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(365);
    p.serial_number = Some(SerialNumber::from_slice(&[0x11, 0x22, 0x33, 0x44, 0x55]));
    p.key_identifier_method = KeyIdMethod::Sha256;
    p.use_authority_key_identifier_extension = true;
    p
}

fn seeds() -> Seeds {
    let root =
        CertifiedIssuer::self_signed(ca_params("fuzz root", 1), KeyPair::generate().unwrap())
            .unwrap();
    let intermediate = CertifiedIssuer::signed_by(
        ca_params("fuzz intermediate", 0),
        KeyPair::generate().unwrap(),
        &root,
    )
    .unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec!["svc.example".to_string()]).unwrap();
    p.subject_alt_names.push(SanType::URI(
        "spiffe://minica.internal/svc".try_into().unwrap(),
    ));
    p.subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    p.distinguished_name.push(DnType::CommonName, "svc.example");
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p.use_authority_key_identifier_extension = true;
    let now = OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(30);
    p.serial_number = Some(SerialNumber::from_slice(&[0x5a, 1, 2, 3, 4, 5, 6, 7]));
    let leaf = p.clone().signed_by(&leaf_key, &intermediate).unwrap();

    let crl = CertificateRevocationListParams {
        this_update: now - time::Duration::hours(1),
        next_update: now + time::Duration::days(7),
        crl_number: SerialNumber::from(7u64),
        issuing_distribution_point: None,
        revoked_certs: vec![RevokedCertParams {
            serial_number: SerialNumber::from_slice(&[0x42, 0x42]),
            revocation_time: now - time::Duration::hours(2),
            reason_code: Some(rcgen::RevocationReason::KeyCompromise),
            invalidity_date: None,
        }],
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&intermediate)
    .unwrap();

    let mut req = CertificateParams::new(vec!["svc.example".to_string()]).unwrap();
    req.subject_alt_names.push(SanType::URI(
        "spiffe://minica.internal/svc".try_into().unwrap(),
    ));
    req.distinguished_name
        .push(DnType::CommonName, "svc.example");
    let csr = req.serialize_request(&leaf_key).unwrap();
    let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    Seeds {
        root: root.der().to_vec(),
        intermediate: intermediate.der().to_vec(),
        leaf: leaf.der().to_vec(),
        chain_pem: format!("{}{}", leaf.pem(), intermediate.pem()).into_bytes(),
        crl_der: crl.der().to_vec(),
        crl_pem: crl.pem().unwrap().into_bytes(),
        csr_der: csr.der().to_vec(),
        csr_pem: csr.pem().unwrap().into_bytes(),
        keys_pem: vec![
            leaf_key.serialize_pem().into_bytes(),
            ed.serialize_pem().into_bytes(),
            p384.serialize_pem().into_bytes(),
            leaf_key.serialize_der(),
        ],
    }
}

/// Every file of a corpus directory, as (file name, bytes).
fn corpus(parser: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(parser);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "empty corpus {}", dir.display());
    out
}

/// The `ok INPUT` / `bad INPUT` lines of a text corpus.
fn text_corpus(file: &str) -> Vec<(bool, String)> {
    let path = corpus_dir("text").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            if let Some(rest) = l.strip_prefix("ok ") {
                Some((true, rest.to_string()))
            } else {
                l.strip_prefix("bad ").map(|rest| (false, rest.to_string()))
            }
        })
        .collect()
}

pub(super) fn seeds_of(parser: &str, extra: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = corpus(parser).into_iter().map(|(_, b)| b).collect();
    v.extend(extra.iter().map(|b| b.to_vec()));
    v
}

// ---------------------------------------------------------------- checks

/// The certificate parsers of both sides on `bytes`; never panics.
fn certs_no_panic(path: &Path, bytes: &[u8]) -> Result<(), TestCaseError> {
    match minica_pki::pem::parse_certs(path, bytes) {
        Ok(certs) => {
            for c in &certs {
                let _ = PeerIdentity::from_der(c);
                let _ = x509_parser::parse_x509_certificate(c);
            }
        }
        Err(e) => prop_assert!(
            e.to_string().contains(&path.display().to_string()),
            "error does not name the file: {e}"
        ),
    }
    match minica_ca::inspect::inspect_bytes(path, bytes) {
        Ok(i) => {
            let _ = i.to_string();
        }
        Err(e) => prop_assert!(!e.to_string().is_empty()),
    }
    Ok(())
}

/// No window of 24 base64 characters of a key file's body shows up in `text`.
fn leaks_key(key_file: &[u8], text: &str) -> bool {
    String::from_utf8_lossy(key_file)
        .lines()
        // Base64 lines are ASCII; a mutated line may not be (and could not
        // be cut at byte 24).
        .filter(|l| l.is_ascii() && !l.starts_with("-----") && l.len() >= 24)
        .any(|l| text.contains(&l[..24]))
}

fn tbs(der: &[u8]) -> Option<Vec<u8>> {
    let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(c.tbs_certificate.as_ref().to_vec())
}

// ---------------------------------------------------------------- tests

#[test]
fn corpus_replay_gives_the_expected_verdicts() {
    let p = Path::new("corpus");
    for (name, bytes) in corpus("cert") {
        let parsed = minica_pki::pem::parse_certs(p, &bytes)
            .ok()
            .filter(|c| c.iter().all(|c| PeerIdentity::from_der(c).is_ok()));
        if name.starts_with("ok-") {
            assert!(parsed.is_some(), "cert/{name} must parse");
        } else if name.starts_with("bad-") {
            assert!(parsed.is_none(), "cert/{name} must be refused");
        }
        certs_no_panic(p, &bytes).unwrap();
    }
    for (name, bytes) in corpus("crl") {
        let parsed = minica_pki::pem::parse_crls(p, &bytes).ok().filter(|crls| {
            crls.iter()
                .all(|c| minica_ca::crl::CrlInfo::parse(c).is_ok())
        });
        if name.starts_with("ok-") {
            assert!(parsed.is_some(), "crl/{name} must parse");
        } else if name.starts_with("bad-") {
            assert!(parsed.is_none(), "crl/{name} must be refused");
        }
        let _ = minica_ca::crl::CrlInfo::parse(&bytes);
    }
    for (name, bytes) in corpus("csr") {
        let r = minica_ca::Csr::parse(Path::new(&name), &bytes);
        if name.starts_with("ok-") {
            let csr = r.unwrap_or_else(|e| panic!("csr/{name}: {e}"));
            assert_eq!(csr.sans().len(), 3, "csr/{name}: DNS, IP, URI");
        } else if name.starts_with("bad-") {
            let e = r.expect_err(&name).to_string();
            assert!(e.contains(&name), "error does not name the file: {e}");
        }
    }
    for (name, bytes) in corpus("key") {
        let r = minica_pki::pem::parse_private_key(Path::new(&name), &bytes);
        if name.starts_with("bad-") {
            let e = r.expect_err(&name).to_string();
            assert!(e.contains(&name), "error does not name the file: {e}");
        }
    }
    for (name, bytes) in corpus("config") {
        let text = String::from_utf8_lossy(&bytes);
        let path = Path::new(&name);
        let r = minica_sidecar::config_file::parse(path, &text)
            .and_then(|(g, r)| minica_sidecar::settings::Settings::resolve(g, r));
        if name.starts_with("ok-") {
            let s = r.unwrap_or_else(|e| panic!("config/{name}: {e}"));
            assert_eq!(s.routes.len(), 3);
        } else if name.starts_with("bad-") {
            let e = r.expect_err(&name).to_string();
            assert!(e.contains(&name), "error does not name the file: {e}");
        }
    }
    for (name, bytes) in corpus("mysql") {
        if name.starts_with("greeting-") {
            let r = Greeting::parse(&bytes);
            assert_eq!(r.is_ok(), name.starts_with("greeting-ok-"), "{name}: {r:?}");
        } else if name.starts_with("response-") {
            let r = Response::parse(&bytes);
            assert_eq!(r.is_ok(), name.starts_with("response-ok-"), "{name}: {r:?}");
        } else {
            let mut buf = bytes.clone();
            if let Ok(r) = rewrite_frames(&mut buf, |s| s.wrapping_add(1), true) {
                assert!(r.ready <= buf.len());
            }
        }
    }
    for (ok, input) in text_corpus("durations.txt") {
        let r = minica_pki::duration::parse_duration(&input);
        assert_eq!(r.is_ok(), ok, "duration {input:?}: {r:?}");
    }
    for (ok, input) in text_corpus("names.txt") {
        let r = input.parse::<minica_ca::Name>();
        assert_eq!(r.is_ok(), ok, "name {input:?}: {r:?}");
    }
    for (ok, input) in text_corpus("allow.txt") {
        let r = input.parse::<AllowRule>();
        assert_eq!(r.is_ok(), ok, "allow rule {input:?}: {r:?}");
    }
    for (ok, input) in text_corpus("san-uri.txt") {
        let r = minica_ca::San::uri(&input);
        assert_eq!(r.is_ok(), ok, "--uri {input:?}: {r:?}");
    }
}

#[test]
fn mutated_certificates_and_keys_never_panic_or_leak() {
    let s = seeds();
    let seeds = seeds_of(
        "cert",
        &[&s.chain_pem, &s.leaf, &s.intermediate, &s.root, &s.crl_pem],
    );
    let path = Path::new("/fuzz/cert.pem");
    check("certificates", mutated(seeds), |bytes| {
        certs_no_panic(path, &bytes)
    });

    let keys: Vec<Vec<u8>> = s.keys_pem.clone();
    let path = Path::new("/fuzz/key.pem");
    check("private keys", mutated(keys.clone()), |bytes| {
        match minica_pki::pem::parse_private_key(path, &bytes) {
            Ok(_) => {}
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.contains("/fuzz/key.pem"), "{msg}");
                for k in &keys {
                    prop_assert!(!leaks_key(k, &msg), "key material in error: {msg}");
                }
            }
        }
        // `inspect` says what a key is, never what it holds.
        if let Ok(i) = minica_ca::inspect::inspect_bytes(path, &bytes) {
            let text = format!("{i}");
            for k in &keys {
                prop_assert!(!leaks_key(k, &text), "key material in inspect: {text}");
            }
        }
        Ok(())
    });
}

#[test]
fn mutated_crls_never_panic() {
    let s = seeds();
    let seeds = seeds_of("crl", &[&s.crl_der, &s.crl_pem]);
    let path = Path::new("/fuzz/crl.pem");
    check("crls", mutated(seeds), |bytes| {
        let _ = minica_ca::crl::CrlInfo::parse(&bytes);
        match minica_pki::pem::parse_crls(path, &bytes) {
            Ok(crls) => {
                for c in &crls {
                    if let Ok(info) = minica_ca::crl::CrlInfo::parse(c) {
                        let _ = info.lookup(&[0x42, 0x42]);
                        let _ = info.number_hex();
                    }
                }
            }
            Err(e) => prop_assert!(e.to_string().contains("/fuzz/crl.pem")),
        }
        let _ = minica_ca::inspect::inspect_bytes(path, &bytes);
        Ok(())
    });
}

#[test]
fn a_mutated_csr_is_refused_or_asks_for_exactly_the_same() {
    let s = seeds();
    let good = minica_ca::Csr::parse(Path::new("seed.der"), &s.csr_der).unwrap();
    let seeds = seeds_of("csr", &[&s.csr_der, &s.csr_pem]);
    let originals: Vec<_> = seeds
        .iter()
        .filter_map(|b| minica_ca::Csr::parse(Path::new("seed"), b).ok())
        .map(|c| (c.public_key_der().to_vec(), c.sans().to_vec()))
        .collect();
    assert!(originals.len() >= 2);
    assert!(originals.contains(&(good.public_key_der().to_vec(), good.sans().to_vec())));
    let path = Path::new("/fuzz/req.csr");
    check("csr", mutated(seeds), |bytes| {
        match minica_ca::Csr::parse(path, &bytes) {
            // The signature covers the key and the SANs: a CSR that still
            // verifies must ask for what one of the seeds asked for.
            Ok(csr) => prop_assert!(
                originals.contains(&(csr.public_key_der().to_vec(), csr.sans().to_vec())),
                "a mutated CSR was accepted with other contents: {csr:?}"
            ),
            Err(e) => prop_assert!(e.to_string().contains("/fuzz/req.csr"), "{e}"),
        }
        Ok(())
    });
}

#[test]
fn a_chain_mutated_inside_its_signed_part_is_never_valid() {
    let s = seeds();
    let anchors = [CertificateDer::from(s.root.clone())];
    let now = OffsetDateTime::now_utc();
    let crl = [rustls_pki_types::CertificateRevocationListDer::from(
        s.crl_der.clone(),
    )];
    let request = |leaf: &[u8], inter: &[CertificateDer<'_>], with_crl: bool| {
        verify(&VerifyRequest {
            intermediates: inter,
            name: Some(SubjectName::Host("svc.example".into())),
            purpose: Purpose::Server,
            crls: if with_crl { &crl } else { &[] },
            ..VerifyRequest::new(leaf, &anchors, now)
        })
    };
    let inter = [CertificateDer::from(s.intermediate.clone())];
    // The seeds are valid as made, with and without the CRL.
    assert!(request(&s.leaf, &inter, false).is_valid());
    assert!(request(&s.leaf, &inter, true).is_valid());
    let leaf_tbs = tbs(&s.leaf).unwrap();
    let inter_tbs = tbs(&s.intermediate).unwrap();

    // The leaf mutated.
    check("mutated leaf", (edits(), any::<bool>()), |(e, with_crl)| {
        let leaf = apply(&s.leaf, &e);
        let out = request(&leaf, &inter, with_crl);
        if out.is_valid() {
            prop_assert_eq!(
                tbs(&leaf),
                Some(leaf_tbs.clone()),
                "false accept: a leaf with another signed part is valid"
            );
        }
        let _ = out.human();
        let _ = out.to_json();
        Ok(())
    });
    // The intermediate mutated.
    check("mutated intermediate", edits(), |e| {
        let bytes = apply(&s.intermediate, &e);
        let inter = [CertificateDer::from(bytes.clone())];
        if request(&s.leaf, &inter, false).is_valid() {
            prop_assert_eq!(
                tbs(&bytes),
                Some(inter_tbs.clone()),
                "false accept: an intermediate with another signed part is valid"
            );
        }
        Ok(())
    });
    // The CRL mutated: a valid verdict needs a CRL that still parses with
    // the same signed content (else it is malformed or its signature fails).
    let crl_tbs = {
        let (_, c) = x509_parser::parse_x509_crl(&s.crl_der).unwrap();
        c.tbs_cert_list.as_ref().to_vec()
    };
    check("mutated crl", edits(), |e| {
        let bytes = apply(&s.crl_der, &e);
        let crls = [rustls_pki_types::CertificateRevocationListDer::from(
            bytes.clone(),
        )];
        let out = verify(&VerifyRequest {
            intermediates: &inter,
            crls: &crls,
            ..VerifyRequest::new(&s.leaf, &anchors, now)
        });
        if out.is_valid() {
            let parsed = x509_parser::parse_x509_crl(&bytes)
                .ok()
                .map(|(_, c)| c.tbs_cert_list.as_ref().to_vec());
            prop_assert_eq!(parsed, Some(crl_tbs.clone()), "false accept of a CRL");
        }
        Ok(())
    });
}

#[test]
fn durations_parse_or_fail_cleanly_and_round_trip() {
    use minica_pki::duration::{format_duration, parse_duration};
    check("duration text", "\\PC{0,12}", |text| {
        if let Ok(d) = parse_duration(&text) {
            prop_assert!(d.as_secs() <= 1000 * 365 * 86_400);
            prop_assert_eq!(parse_duration(&format_duration(d)).ok(), Some(d));
        }
        Ok(())
    });
    check(
        "duration numbers",
        (
            any::<u64>(),
            prop::sample::select(vec!["s", "m", "h", "d", "w", "y", "x"]),
        ),
        |(n, unit)| {
            let text = format!("{n}{unit}");
            let mult: u64 = match unit {
                "s" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => 86_400,
                "w" => 604_800,
                "y" => 31_536_000,
                _ => 0,
            };
            let want = n
                .checked_mul(mult)
                .filter(|s| mult > 0 && *s <= 1000 * 31_536_000);
            let got = parse_duration(&text);
            prop_assert_eq!(got.as_ref().ok().map(Duration::as_secs), want, "{}", text);
            if let Err(e) = got {
                prop_assert!(e.to_string().contains(&text), "{e}");
            }
            Ok(())
        },
    );
}

#[test]
fn names_never_leave_their_directory() {
    let strategy = prop_oneof![
        "\\PC{0,20}",
        "[a-z0-9./\\\\ _*-]{0,12}",
        "[a-zA-Z0-9-]{1,8}(\\.[a-zA-Z0-9-]{1,8}){0,3}",
    ];
    check("NAME", strategy, |text| {
        match text.parse::<minica_ca::Name>() {
            Ok(name) => {
                let comps: Vec<_> = Path::new(name.as_str()).components().collect();
                let single_normal = comps.len() == 1 && matches!(comps[0], Component::Normal(_));
                // An IPv6 address such as `::1` is one normal component too.
                prop_assert!(single_normal, "NAME {text:?} is not one path component");
                prop_assert!(!text.starts_with('.'), "hidden NAME {text:?}");
                prop_assert!(
                    text.bytes().all(|b| b.is_ascii_graphic()),
                    "NAME {text:?} has spaces or control characters"
                );
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        let _ = minica_ca::San::dns(&text);
        let _ = minica_ca::San::ip(&text);
        if minica_ca::San::uri(&text).is_ok() {
            prop_assert!(text.bytes().all(|b| b.is_ascii_graphic()));
        }
        Ok(())
    });
}

#[test]
fn identities_and_allow_rules_round_trip() {
    let strategy = prop_oneof![
        "\\PC{0,30}",
        "(spiffe|dns|http)://?[a-z.]{0,6}(/[a-z*]{0,4}){0,3}",
        "dns:[a-z.*-]{0,10}",
    ];
    check("allow rules", strategy, |text| {
        if let Ok(rule) = text.parse::<AllowRule>() {
            let again: AllowRule = rule
                .to_string()
                .parse()
                .map_err(|e| TestCaseError::fail(format!("{rule} does not parse back: {e}")))?;
            prop_assert_eq!(&again, &rule);
            let _ = rule.matches(&PeerIdentity::default());
        }
        if let Ok(id) = text.parse::<SpiffeId>() {
            let again: SpiffeId = id
                .to_string()
                .parse()
                .map_err(|e| TestCaseError::fail(format!("{id} does not parse back: {e}")))?;
            prop_assert_eq!(again, id);
        }
        Ok(())
    });
}

#[test]
fn mutated_sidecar_configs_are_refused_with_the_file_named() {
    let seeds = seeds_of("config", &[]);
    let path = Path::new("/fuzz/sidecar.toml");
    check("sidecar config", mutated(seeds), |bytes| {
        let text = String::from_utf8_lossy(&bytes);
        let r = minica_sidecar::config_file::parse(path, &text)
            .and_then(|(g, r)| minica_sidecar::settings::Settings::resolve(g, r));
        if let Err(e) = r {
            prop_assert!(e.to_string().contains("/fuzz/sidecar.toml"), "{e}");
        }
        Ok(())
    });
}

#[test]
fn mysql_handshake_packets_never_panic_and_keep_their_invariants() {
    let seeds = seeds_of("mysql", &[]);
    let bytes = prop_oneof![
        mutated(seeds),
        proptest::collection::vec(any::<u8>(), 0..200)
    ];
    check("mysql", bytes, |bytes| {
        if let Ok(g) = Greeting::parse(&bytes) {
            for tls in [true, false] {
                let edited = g.with_tls(&bytes, tls);
                prop_assert_eq!(edited.len(), bytes.len());
                let diff = edited.iter().zip(&bytes).filter(|(a, b)| a != b).count();
                prop_assert!(diff <= 1, "with_tls changed {} bytes", diff);
                let again = Greeting::parse(&edited).map_err(|e| {
                    TestCaseError::fail(format!("edited greeting no longer parses: {e}"))
                })?;
                prop_assert_eq!(again.offers_tls(), tls);
            }
        }
        if let Ok(r) = Response::parse(&bytes) {
            let req = ssl_request_for(&bytes).unwrap();
            prop_assert!(Response::parse(&req).is_ok_and(|x| x.ssl_request));
            prop_assert!(!r.ssl_request || bytes.len() == 32);
        }
        let _ = packet::describe_err(&bytes);
        let mut buf = bytes.clone();
        match rewrite_frames(&mut buf, |s| s.wrapping_add(1), true) {
            Ok(r) => prop_assert!(r.ready <= buf.len()),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        // The server direction with the identity map changes nothing.
        let mut same = bytes.clone();
        if rewrite_frames(&mut same, |s| s, false).is_ok() {
            prop_assert_eq!(&same, &bytes);
        }
        if bytes.len() >= 4 {
            let head = [bytes[0], bytes[1], bytes[2], bytes[3]];
            match Header::decode_bounded(head) {
                Ok(h) => prop_assert!(h.len <= MAX_HANDSHAKE_PAYLOAD),
                Err(_) => prop_assert!(Header::decode(head).len > MAX_HANDSHAKE_PAYLOAD),
            }
        }
        let framed = packet::encode(bytes.first().copied().unwrap_or(0), &bytes).unwrap();
        let h = Header::decode([framed[0], framed[1], framed[2], framed[3]]);
        prop_assert_eq!(h.len, bytes.len());
        prop_assert_eq!(&framed[4..], &bytes[..]);
        Ok(())
    });
}

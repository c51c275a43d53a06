//! Tests of the whole verifier, on PKIs built with rcgen.

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints, SanType, SerialNumber,
};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use time::{Duration, OffsetDateTime};

use super::*;
use crate::crl::{build_crl, build_crl_without_number, CrlEntry, CrlParams, RevocationReason};

fn t(days: i64) -> OffsetDateTime {
    // 2026-01-01T00:00:00Z + days
    OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap() + Duration::days(days)
}

/// The verification time of every test: mid-validity.
fn at() -> OffsetDateTime {
    t(150)
}

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    der: CertificateDer<'static>,
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = t(-10);
    p.not_after = t(3650);
    p.use_authority_key_identifier_extension = true;
    p
}

impl Ca {
    fn root(cn: &str) -> Ca {
        Self::root_with(cn, |_| {})
    }

    fn root_with(cn: &str, f: impl FnOnce(&mut CertificateParams)) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = ca_params(cn);
        params.use_authority_key_identifier_extension = false;
        f(&mut params);
        let der = params.self_signed(&key).unwrap().der().clone();
        Ca { params, key, der }
    }

    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }

    fn child(&self, cn: &str) -> Ca {
        self.child_with(cn, |_| {})
    }

    fn child_with(&self, cn: &str, f: impl FnOnce(&mut CertificateParams)) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = ca_params(cn);
        f(&mut params);
        let der = params
            .signed_by(&key, &self.issuer())
            .unwrap()
            .der()
            .clone();
        Ca { params, key, der }
    }

    fn leaf(&self, dns: &str) -> CertificateDer<'static> {
        self.leaf_with(dns, |_| {})
    }

    fn leaf_with(
        &self,
        dns: &str,
        f: impl FnOnce(&mut CertificateParams),
    ) -> CertificateDer<'static> {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec![dns.to_owned()]).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, dns);
        p.not_before = t(-1);
        p.not_after = t(365);
        p.use_authority_key_identifier_extension = true;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        f(&mut p);
        p.signed_by(&key, &self.issuer()).unwrap().der().clone()
    }

    fn crl(&self, entries: Vec<CrlEntry>) -> CertificateRevocationListDer<'static> {
        let mut p = CrlParams::new(1, t(145));
        p.entries = entries;
        CertificateRevocationListDer::from(build_crl(&self.der, &self.key, &p).unwrap().into_der())
    }
}

fn serial_of(der: &[u8]) -> Vec<u8> {
    let (_, c) = X509Certificate::from_der(der).unwrap();
    c.raw_serial().to_vec()
}

fn revoke(der: &[u8]) -> CrlEntry {
    CrlEntry {
        serial: serial_of(der),
        revoked_at: t(100),
        reason: RevocationReason::KeyCompromise,
    }
}

use x509_parser::prelude::{FromDer, X509Certificate};

/// root → intermediate → leaf "svc-a.test".
struct Pki {
    root: Ca,
    inter: Ca,
    leaf: CertificateDer<'static>,
}

fn pki() -> Pki {
    let root = Ca::root("minica root");
    let inter = root.child("minica intermediate");
    let leaf = inter.leaf("svc-a.test");
    Pki { root, inter, leaf }
}

fn run(
    leaf: &[u8],
    inters: &[CertificateDer<'_>],
    anchors: &[CertificateDer<'_>],
    crls: &[CertificateRevocationListDer<'_>],
    name: Option<SubjectName>,
    purpose: Purpose,
) -> VerifyOutcome {
    verify(&VerifyRequest {
        leaf,
        intermediates: inters,
        anchors,
        crls,
        name,
        purpose,
        at: at(),
        max_depth: None,
    })
}

fn host(h: &str) -> Option<SubjectName> {
    Some(SubjectName::Host(h.into()))
}

fn check(p: &Pki, leaf: &[u8], name: Option<SubjectName>) -> VerifyOutcome {
    run(
        leaf,
        std::slice::from_ref(&p.inter.der),
        std::slice::from_ref(&p.root.der),
        &[],
        name,
        Purpose::Server,
    )
}

#[track_caller]
fn assert_code(o: &VerifyOutcome, code: &str) {
    assert_eq!(o.reason.as_ref().map(Reason::code), Some(code), "{o:?}");
}

#[test]
fn valid_chain_and_output() {
    let p = pki();
    let o = check(&p, &p.leaf, host("svc-a.test"));
    assert!(o.is_valid(), "{o:?}");
    assert_eq!(
        o.human(),
        "OK svc-a.test: svc-a.test → minica intermediate → minica root"
    );
    let json = o.to_json();
    assert_eq!(json["valid"], true);
    assert_eq!(json["chain"].as_array().unwrap().len(), 3);
    assert_eq!(json["chain"][2]["subject"], "CN=minica root");
    assert!(json["chain"][0]["not_after"]
        .as_str()
        .unwrap()
        .starts_with("2027-01-01"));
    // client purpose too (the leaf has both EKUs); no name at all.
    let o = run(
        &p.leaf,
        std::slice::from_ref(&p.inter.der),
        std::slice::from_ref(&p.root.der),
        &[],
        None,
        Purpose::Client,
    );
    assert!(o.is_valid(), "{o:?}");
}

#[test]
fn expired_and_not_yet_valid() {
    let p = pki();
    let old = p.inter.leaf_with("svc-a.test", |c| {
        c.not_before = t(-100);
        c.not_after = t(100);
    });
    let o = check(&p, &old, host("svc-a.test"));
    assert_code(&o, "expired");
    assert!(
        o.human()
            .starts_with("INVALID svc-a.test: certificate svc-a.test expired"),
        "{}",
        o.human()
    );
    let young = p.inter.leaf_with("svc-a.test", |c| c.not_before = t(200));
    assert_code(&check(&p, &young, None), "not-yet-valid");
    // an expired intermediate is named
    let inter = p
        .root
        .child_with("old intermediate", |c| c.not_after = t(120));
    let leaf = inter.leaf("svc-a.test");
    let o = run(
        &leaf,
        std::slice::from_ref(&inter.der),
        std::slice::from_ref(&p.root.der),
        &[],
        None,
        Purpose::Server,
    );
    assert_eq!(
        o.reason,
        Some(Reason::Expired {
            subject: "old intermediate".into(),
            not_after: t(120)
        })
    );
    // `at` is compared at whole seconds (floor)
    let edge = p.inter.leaf_with("svc-a.test", |c| {
        c.not_before = t(0);
        c.not_after = t(200);
    });
    let v = |at: OffsetDateTime| {
        verify(&VerifyRequest {
            intermediates: std::slice::from_ref(&p.inter.der),
            ..VerifyRequest::new(&edge, std::slice::from_ref(&p.root.der), at)
        })
    };
    assert!(v(t(200) + Duration::milliseconds(5)).is_valid());
    assert_code(&v(t(200) + Duration::seconds(1)), "expired");
    assert_code(&v(t(0) - Duration::milliseconds(1)), "not-yet-valid");
    assert!(v(t(0)).is_valid());
    // an expired trust anchor too
    let root = Ca::root_with("expired root", |c| c.not_after = t(120));
    let leaf = root.leaf("svc-a.test");
    let o = run(
        &leaf,
        &[],
        std::slice::from_ref(&root.der),
        &[],
        None,
        Purpose::Server,
    );
    assert_code(&o, "expired");
}

#[test]
fn host_ip_and_email_names() {
    let p = pki();
    let o = check(&p, &p.leaf, host("svc-b.test"));
    assert_eq!(
        o.reason,
        Some(Reason::NameMismatch {
            expected: "svc-b.test".into()
        })
    );
    assert_eq!(o.chain.len(), 3, "the chain is still shown");
    let ip_leaf = p.inter.leaf_with("10.0.0.7", |c| {
        c.distinguished_name = rcgen::DistinguishedName::new();
    });
    assert!(check(
        &p,
        &ip_leaf,
        Some(SubjectName::Ip("10.0.0.7".parse().unwrap()))
    )
    .is_valid());
    assert!(check(&p, &ip_leaf, host("10.0.0.7")).is_valid());
    assert_code(
        &check(
            &p,
            &ip_leaf,
            Some(SubjectName::Ip("10.0.0.8".parse().unwrap())),
        ),
        "name-mismatch",
    );
    // never the CN alone: a DNS SAN does not match an IP
    assert_code(
        &check(
            &p,
            &p.leaf,
            Some(SubjectName::Ip("10.0.0.7".parse().unwrap())),
        ),
        "name-mismatch",
    );

    let mail = p.inter.leaf_with("x", |c| {
        c.distinguished_name = rcgen::DistinguishedName::new();
        c.distinguished_name
            .push(DnType::CommonName, "Alice Example");
        c.subject_alt_names = vec![SanType::Rfc822Name(
            "alice@Example.test".try_into().unwrap(),
        )];
        c.extended_key_usages = vec![ExtendedKeyUsagePurpose::EmailProtection];
    });
    let email = |e: &str| Some(SubjectName::Email(e.into()));
    let any = |name| {
        run(
            &mail,
            std::slice::from_ref(&p.inter.der),
            std::slice::from_ref(&p.root.der),
            &[],
            name,
            Purpose::Any,
        )
    };
    assert!(
        any(email("alice@example.TEST")).is_valid(),
        "{:?}",
        any(email("alice@example.test"))
    );
    assert_code(&any(email("bob@example.test")), "name-mismatch");
    assert_code(&any(email("Alice@example.test")), "name-mismatch");
}

#[test]
fn name_constraints() {
    let root = Ca::root("nc root");
    let dns = root.child_with("dns-constrained", |c| {
        c.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![GeneralSubtree::DnsName("good.test".into())],
            excluded_subtrees: vec![GeneralSubtree::DnsName("bad.good.test".into())],
        });
    });
    let v = |leaf: &[u8], ca: &Ca, name| {
        run(
            leaf,
            std::slice::from_ref(&ca.der),
            std::slice::from_ref(&root.der),
            &[],
            name,
            Purpose::Any,
        )
    };
    assert!(v(&dns.leaf("a.good.test"), &dns, None).is_valid());
    assert_code(
        &v(&dns.leaf("a.other.test"), &dns, None),
        "name-constraint-violation",
    );
    assert_code(
        &v(&dns.leaf("x.bad.good.test"), &dns, None),
        "name-constraint-violation",
    );

    let mail_leaf = |ca: &Ca, addr: &str, dn_email: Option<&str>| {
        ca.leaf_with("m.good.test", |c| {
            c.distinguished_name = rcgen::DistinguishedName::new();
            if let Some(e) = dn_email {
                c.distinguished_name.push(
                    DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
                    rcgen::DnValue::Ia5String(e.try_into().unwrap()),
                );
            }
            c.subject_alt_names = vec![
                SanType::DnsName("m.good.test".try_into().unwrap()),
                SanType::Rfc822Name(addr.try_into().unwrap()),
            ];
        })
    };
    let excl = root.child_with("mail-excluded", |c| {
        c.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![],
            excluded_subtrees: vec![GeneralSubtree::Rfc822Name("evil.test".into())],
        });
    });
    let o = v(&mail_leaf(&excl, "eve@evil.test", None), &excl, None);
    assert_code(&o, "name-constraint-violation");
    // an excluded address only in the subject's emailAddress: our own check
    let o = v(
        &mail_leaf(&excl, "ok@fine.test", Some("eve@evil.test")),
        &excl,
        None,
    );
    assert_code(&o, "name-constraint-violation");
    // rustls-webpki rejects every rfc822Name SAN under an rfc822Name
    // constraint; our e-mail path search (fallback.rs) decides instead.
    let perm = root.child_with("mail-permitted", |c| {
        c.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![
                GeneralSubtree::Rfc822Name("good.test".into()),
                GeneralSubtree::DnsName("good.test".into()),
            ],
            excluded_subtrees: vec![GeneralSubtree::Rfc822Name("bad@good.test".into())],
        });
    });
    let mail = |addr: &str| Some(SubjectName::Email(addr.into()));
    let o = v(
        &mail_leaf(&perm, "a@good.test", None),
        &perm,
        mail("a@good.test"),
    );
    assert!(o.is_valid(), "{o:?}");
    assert_eq!(o.chain.len(), 3);
    let o = v(
        &mail_leaf(&perm, "a@good.test", None),
        &perm,
        mail("b@good.test"),
    );
    assert_code(&o, "name-mismatch");
    for bad in ["a@other.test", "bad@good.test", "a@sub.good.test"] {
        let o = v(&mail_leaf(&perm, bad, None), &perm, None);
        assert_code(&o, "name-constraint-violation");
    }
    // the DNS constraint still holds on the same path
    let wrong_dns = perm.leaf_with("m.other.test", |c| {
        c.distinguished_name = rcgen::DistinguishedName::new();
        c.subject_alt_names = vec![
            SanType::DnsName("m.other.test".try_into().unwrap()),
            SanType::Rfc822Name("a@good.test".try_into().unwrap()),
        ];
    });
    assert_code(&v(&wrong_dns, &perm, None), "name-constraint-violation");
    // and so does everything else: an expired intermediate
    let old = root.child_with("mail-permitted-old", |c| {
        c.not_after = t(100);
        c.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![GeneralSubtree::Rfc822Name("good.test".into())],
            excluded_subtrees: vec![],
        });
    });
    assert!(!v(&mail_leaf(&old, "a@good.test", None), &old, None).is_valid());
    // a tampered leaf signature
    let mut bad = mail_leaf(&perm, "a@good.test", None).to_vec();
    let n = bad.len() - 1;
    bad[n] ^= 1;
    assert!(!v(&bad, &perm, None).is_valid());
    // a constraint on the root, two levels up
    let nc_root = Ca::root_with("mail root", |c| {
        c.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![GeneralSubtree::Rfc822Name(".corp.test".into())],
            excluded_subtrees: vec![],
        });
    });
    let mid = nc_root.child("mid");
    let run_root = |leaf: &[u8]| {
        run(
            leaf,
            std::slice::from_ref(&mid.der),
            std::slice::from_ref(&nc_root.der),
            &[],
            None,
            Purpose::Any,
        )
    };
    assert!(run_root(&mail_leaf(&mid, "a@x.corp.test", None)).is_valid());
    assert_code(
        &run_root(&mail_leaf(&mid, "a@corp.test", None)),
        "name-constraint-violation",
    );
}

#[test]
fn purposes() {
    let p = pki();
    let client_only = p.inter.leaf_with("svc-a.test", |c| {
        c.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    });
    let v = |leaf: &[u8], purpose| {
        run(
            leaf,
            std::slice::from_ref(&p.inter.der),
            std::slice::from_ref(&p.root.der),
            &[],
            None,
            purpose,
        )
    };
    assert_code(&v(&client_only, Purpose::Server), "wrong-purpose");
    assert!(v(&client_only, Purpose::Client).is_valid());
    assert!(v(&client_only, Purpose::Any).is_valid());
    let no_eku = p
        .inter
        .leaf_with("svc-a.test", |c| c.extended_key_usages = vec![]);
    assert!(v(&no_eku, Purpose::Server).is_valid());
    let ke_only = p.inter.leaf_with("svc-a.test", |c| {
        c.key_usages = vec![KeyUsagePurpose::KeyEncipherment]
    });
    assert!(v(&ke_only, Purpose::Server).is_valid());
    assert_code(&v(&ke_only, Purpose::Client), "wrong-purpose");
}

#[test]
fn unknown_ca_and_missing_intermediate() {
    let p = pki();
    let other = Ca::root("other root");
    let o = run(
        &p.leaf,
        std::slice::from_ref(&p.inter.der),
        std::slice::from_ref(&other.der),
        &[],
        None,
        Purpose::Server,
    );
    assert_eq!(
        o.reason,
        Some(Reason::UnknownIssuer {
            subject: "minica intermediate".into(),
            issuer: "CN=minica root".into()
        })
    );
    let o = run(
        &p.leaf,
        &[],
        std::slice::from_ref(&p.root.der),
        &[],
        host("svc-b.test"),
        Purpose::Server,
    );
    assert_eq!(
        o.reason,
        Some(Reason::UnknownIssuer {
            subject: "svc-a.test".into(),
            issuer: "CN=minica intermediate".into()
        }),
        "an unreachable anchor wins over the name"
    );
    assert_eq!(o.reason.as_ref().unwrap().diagnosis(), "unknown-authority");
}

#[test]
fn revocation() {
    let p = pki();
    let other_leaf = p.inter.leaf("svc-b.test");
    let crl = p.inter.crl(vec![revoke(&p.leaf)]);
    // every level needs a CRL: the root's (empty) one is always given
    let root_ok = p.root.crl(vec![]);
    let v = |leaf: &[u8], crls: &[CertificateRevocationListDer<'_>]| {
        let mut all = crls.to_vec();
        all.push(root_ok.clone());
        run(
            leaf,
            std::slice::from_ref(&p.inter.der),
            std::slice::from_ref(&p.root.der),
            &all,
            None,
            Purpose::Server,
        )
    };
    let o = v(&p.leaf, std::slice::from_ref(&crl));
    match &o.reason {
        Some(Reason::Revoked {
            subject,
            serial,
            reason,
            date,
        }) => {
            assert_eq!(subject, "svc-a.test");
            assert_eq!(
                serial,
                &hex::encode(crate::crl::strip_zeros(&serial_of(&p.leaf)))
            );
            assert_eq!(*reason, Some(RevocationReason::KeyCompromise));
            assert_eq!(*date, t(100));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        o.human().contains("certificate revoked (serial "),
        "{}",
        o.human()
    );
    assert!(
        o.human().contains("keyCompromise, 2026-04-11T00:00:00Z)"),
        "{}",
        o.human()
    );
    let json = o.to_json();
    assert_eq!(json["code"], "revoked");
    assert_eq!(json["detail"]["reason"], "keyCompromise");
    assert_eq!(json["detail"]["date"], "2026-04-11T00:00:00Z");
    assert_eq!(json["chain"].as_array().unwrap().len(), 3);
    assert!(v(&other_leaf, std::slice::from_ref(&crl)).is_valid());

    // the root's CRL revoking the intermediate
    let root_crl = p.root.crl(vec![revoke(&p.inter.der)]);
    assert_code(&v(&other_leaf, &[crl.clone(), root_crl]), "revoked");
    // without the root's CRL the intermediate's status is unknown: allowed
    // (no CRL of the root's name was given); the leaf's is never
    let o = run(
        &other_leaf,
        std::slice::from_ref(&p.inter.der),
        std::slice::from_ref(&p.root.der),
        std::slice::from_ref(&crl),
        None,
        Purpose::Server,
    );
    assert!(o.is_valid(), "{o:?}");
    let o = run(
        &other_leaf,
        std::slice::from_ref(&p.inter.der),
        std::slice::from_ref(&p.root.der),
        std::slice::from_ref(&root_ok),
        None,
        Purpose::Server,
    );
    assert_eq!(
        o.reason,
        Some(Reason::Crl(CrlProblem::NoCrl {
            subject: "svc-b.test".into(),
            issuer: "CN=minica intermediate".into()
        }))
    );
    let json = o.to_json();
    assert_eq!(json["valid"], false);
    assert_eq!(json["code"], "crl");
    assert_eq!(json["detail"]["problem"], "no-crl");

    // a CRL by another CA (other name) listing the same serial does not apply
    let stranger = Ca::root("stranger");
    let foreign = stranger.crl(vec![revoke(&p.leaf)]);
    let clean = p.inter.crl(vec![]);
    assert!(v(&p.leaf, &[foreign.clone(), clean]).is_valid());
    // ... and alone it leaves the leaf without a CRL
    assert!(matches!(
        v(&p.leaf, &[foreign]).reason,
        Some(Reason::Crl(CrlProblem::NoCrl { .. }))
    ));

    // same name, another key: a forged CRL
    let forger = Ca::root_with("minica intermediate", |_| {});
    let forged = forger.crl(vec![]);
    let o = v(&other_leaf, &[forged]);
    assert_eq!(
        o.reason,
        Some(Reason::Crl(CrlProblem::BadSignature {
            issuer: "CN=minica intermediate".into()
        }))
    );

    // stale and not yet valid
    let mut params = CrlParams::new(2, t(100));
    params.next_update = t(120);
    let stale = build_crl(&p.inter.der, &p.inter.key, &params)
        .unwrap()
        .into_der();
    assert_code(&v(&other_leaf, &[stale.into()]), "crl");
    let future = build_crl(&p.inter.der, &p.inter.key, &CrlParams::new(3, t(160)))
        .unwrap()
        .into_der();
    assert_code(&v(&other_leaf, &[future.into()]), "crl");

    // no CRL number
    let nonum = build_crl_without_number(&p.inter.der, &p.inter.key, &CrlParams::new(1, t(145)))
        .unwrap()
        .into_der();
    let o = v(&other_leaf, &[nonum.into()]);
    assert!(
        matches!(o.reason, Some(Reason::Crl(CrlProblem::BadNumber { .. }))),
        "{o:?}"
    );

    // garbage
    assert!(matches!(
        v(
            &other_leaf,
            &[CertificateRevocationListDer::from(vec![0x30, 0x00])]
        )
        .reason,
        Some(Reason::Crl(CrlProblem::Malformed { index: 0, .. }))
    ));
}

#[test]
fn crl_issuer_without_crl_sign() {
    let root = Ca::root("root");
    let inter = root.child_with("no-crlsign", |c| {
        c.key_usages = vec![KeyUsagePurpose::KeyCertSign]
    });
    let leaf = inter.leaf("svc-a.test");
    // rcgen refuses when it knows the key usage; hide it.
    let mut params = inter.params.clone();
    params.key_usages = vec![];
    let issuer = Issuer::new(params, &inter.key);
    let crl = rcgen::CertificateRevocationListParams {
        this_update: t(140),
        next_update: t(160),
        crl_number: SerialNumber::from(5u64),
        issuing_distribution_point: None,
        revoked_certs: vec![],
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    }
    .signed_by(&issuer)
    .unwrap();
    let o = run(
        &leaf,
        std::slice::from_ref(&inter.der),
        std::slice::from_ref(&root.der),
        &[crl.der().clone()],
        None,
        Purpose::Server,
    );
    assert!(
        matches!(
            o.reason,
            Some(Reason::Crl(CrlProblem::IssuerNotCrlSigner { .. }))
        ),
        "{o:?}"
    );
}

#[test]
fn tampered_signature() {
    let p = pki();
    let mut bad = p.leaf.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    let o = check(&p, &bad, None);
    assert_eq!(
        o.reason,
        Some(Reason::BadSignature {
            subject: "svc-a.test".into()
        })
    );
}

#[test]
fn depth_limits() {
    let root = Ca::root("root");
    let i1 = root.child("i1");
    let i2 = i1.child("i2");
    let leaf = i2.leaf("svc-a.test");
    let v = |max| {
        verify(&VerifyRequest {
            intermediates: &[i1.der.clone(), i2.der.clone()],
            max_depth: max,
            ..VerifyRequest::new(&leaf, std::slice::from_ref(&root.der), at())
        })
    };
    assert!(v(None).is_valid());
    assert!(v(Some(2)).is_valid());
    assert_eq!(
        v(Some(1)).reason,
        Some(Reason::PathTooLong {
            intermediates: 2,
            max: 1
        })
    );
    // anchored at i1 (not self-signed): one intermediate left
    let o = verify(&VerifyRequest {
        intermediates: std::slice::from_ref(&i2.der),
        max_depth: Some(1),
        ..VerifyRequest::new(&leaf, std::slice::from_ref(&i1.der), at())
    });
    assert!(o.is_valid(), "{o:?}");
    assert_eq!(o.chain.len(), 3);
    let o = verify(&VerifyRequest {
        max_depth: Some(0),
        ..VerifyRequest::new(&leaf, std::slice::from_ref(&i2.der), at())
    });
    assert!(
        o.is_valid(),
        "non-self-signed anchor signing the leaf: {o:?}"
    );

    // a self-issued intermediate (root key rollover) does not count
    let new_root = root.child_with("root", |_| {});
    let leaf = new_root.leaf("svc-a.test");
    let o = verify(&VerifyRequest {
        intermediates: std::slice::from_ref(&new_root.der),
        max_depth: Some(0),
        ..VerifyRequest::new(&leaf, std::slice::from_ref(&root.der), at())
    });
    assert!(o.is_valid(), "{o:?}");
    assert_eq!(o.chain.len(), 3);
}

#[test]
fn strict_profile() {
    let p = pki();
    let cn_not_san = p.inter.leaf_with("svc-a.test", |c| {
        c.distinguished_name = rcgen::DistinguishedName::new();
        c.distinguished_name.push(DnType::CommonName, "other.test");
    });
    assert_code(&check(&p, &cn_not_san, None), "non-conforming");
    let underscore = p.inter.leaf("under_score.test");
    assert_code(&check(&p, &underscore, None), "non-conforming");
    let no_san = p
        .inter
        .leaf_with("svc-a.test", |c| c.subject_alt_names = vec![]);
    assert_code(&check(&p, &no_san, None), "non-conforming");
    let critical = p.inter.leaf_with("svc-a.test", |c| {
        let mut ext =
            CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 55738, 666, 1], vec![0x05, 0x00]);
        ext.set_criticality(true);
        c.custom_extensions = vec![ext];
    });
    assert_code(&check(&p, &critical, None), "unknown-critical-extension");
    let zero = p.inter.leaf_with("svc-a.test", |c| {
        c.serial_number = Some(SerialNumber::from_slice(&[0]))
    });
    assert_code(&check(&p, &zero, None), "non-conforming");
    let long = p.inter.leaf_with("svc-a.test", |c| {
        c.serial_number = Some(SerialNumber::from_slice(&[0x11; 21]))
    });
    assert!(!check(&p, &long, None).is_valid());
    let no_aki = p.inter.leaf_with("svc-a.test", |c| {
        c.use_authority_key_identifier_extension = false
    });
    assert_code(&check(&p, &no_aki, None), "non-conforming");
    // CA/B BR leaf rules: key types, EKU for a server, a key usage bit
    let any_eku = p.inter.leaf_with("svc-a.test", |c| {
        c.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::Any,
        ]
    });
    assert_code(&check(&p, &any_eku, None), "wrong-purpose");
    let no_bits = p.inter.leaf_with("svc-a.test", |c| c.key_usages = vec![]);
    assert!(
        check(&p, &no_bits, None).is_valid(),
        "no KU extension at all is fine"
    );
    // a leaf that is a CA
    assert_code(
        &check(&p, &p.root.child("svc-a.test").der, None),
        "ca-as-leaf",
    );
    // an intermediate that is not a CA
    let not_ca = p.root.child_with("fake", |c| {
        c.is_ca = IsCa::ExplicitNoCa;
        c.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    });
    let leaf = not_ca.leaf("svc-a.test");
    let o = run(
        &leaf,
        std::slice::from_ref(&not_ca.der),
        std::slice::from_ref(&p.root.der),
        &[],
        None,
        Purpose::Server,
    );
    assert_code(&o, "not-a-ca");
    // garbage
    assert_code(&check(&p, b"not a certificate", None), "malformed");
    assert_code(&check(&p, &[], None), "malformed");
}

/// Where the time goes (release: `cargo test --release -p minica-ca --lib
/// verify::tests::profile -- --ignored --nocapture`). Prints, asserts no time.
#[test]
#[ignore = "benchmark: run explicitly in release mode"]
fn profile() {
    let p = pki();
    let anchors = [p.root.der.clone()];
    let inters = [p.inter.der.clone()];
    let n = 5_000u32;
    let ee = webpki::EndEntityCert::try_from(&p.leaf).unwrap();
    let ta = [webpki::anchor_from_trusted_cert(&anchors[0]).unwrap()];
    let now = super::path::unix_time(at());
    let start = std::time::Instant::now();
    for _ in 0..n {
        ee.verify_for_usage(
            &[webpki::ring::ECDSA_P256_SHA256],
            &ta,
            &inters,
            now,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .unwrap();
    }
    println!("webpki alone: {:?} each", start.elapsed() / n);
    let start = std::time::Instant::now();
    for _ in 0..n {
        for d in [&p.leaf, &p.inter.der, &p.root.der] {
            X509Certificate::from_der(d).unwrap();
        }
    }
    println!(
        "x509-parser, 3 certificates: {:?} each",
        start.elapsed() / n
    );
    let req = VerifyRequest {
        intermediates: &inters,
        ..VerifyRequest::new(&p.leaf, &anchors, at())
    };
    let start = std::time::Instant::now();
    for _ in 0..n {
        assert!(verify(&req).is_valid());
    }
    println!("verify: {:?} each", start.elapsed() / n);
}

#[test]
fn anchor_rules() {
    // the anchor's pathLenConstraint (rustls-webpki ignores it)
    let root = Ca::root_with("pathlen0 root", |c| {
        c.is_ca = IsCa::Ca(BasicConstraints::Constrained(0))
    });
    let inter = root.child("inter");
    let leaf = inter.leaf("svc-a.test");
    let o = run(
        &leaf,
        std::slice::from_ref(&inter.der),
        std::slice::from_ref(&root.der),
        &[],
        None,
        Purpose::Server,
    );
    assert_eq!(o.reason, Some(Reason::PathLenConstraint));
    // signing the leaf directly is fine
    assert!(run(
        &root.leaf("svc-a.test"),
        &[],
        std::slice::from_ref(&root.der),
        &[],
        None,
        Purpose::Server
    )
    .is_valid());

    // a root must not have an EKU (CA/B BR 7.1.2.1.2)
    let eku_root = Ca::root_with("eku root", |c| {
        c.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth]
    });
    let leaf = eku_root.leaf("svc-a.test");
    let o = run(
        &leaf,
        &[],
        std::slice::from_ref(&eku_root.der),
        &[],
        None,
        Purpose::Server,
    );
    assert_code(&o, "non-conforming");
    // an intermediate anchor may have one, and it then limits the purpose
    let client_ca = root.child_with("client ca", |c| {
        c.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth]
    });
    let leaf = client_ca.leaf("svc-a.test");
    let v = |purpose| {
        run(
            &leaf,
            &[],
            std::slice::from_ref(&client_ca.der),
            &[],
            None,
            purpose,
        )
    };
    assert_code(&v(Purpose::Server), "wrong-purpose");
    assert!(v(Purpose::Client).is_valid());

    // a self-signed leaf trusted as itself
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec!["self.test".to_owned()]).unwrap();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, "self.test");
    p.not_before = t(-1);
    p.not_after = t(365);
    let selfie = p.self_signed(&key).unwrap().der().clone();
    let o = run(
        &selfie,
        &[],
        std::slice::from_ref(&selfie),
        &[],
        host("self.test"),
        Purpose::Server,
    );
    assert!(o.is_valid(), "{o:?}");
    // ... but not when it is not in the bundle
    let o = run(
        &selfie,
        &[],
        std::slice::from_ref(&root.der),
        &[],
        None,
        Purpose::Server,
    );
    assert_code(&o, "unknown-issuer");
}

#[test]
fn self_issued_intermediates_and_path_length() {
    // root -> ICA' (pathlen 1) -> ICA' self-issued (pathlen 1) -> ICA'' (pathlen 0) -> leaf
    let root = Ca::root("root");
    let one = |c: &mut CertificateParams| c.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    let first = root.child_with("ica", one);
    let second = first.child_with("ica", one);
    let third = second.child_with("ica2", |c| {
        c.is_ca = IsCa::Ca(BasicConstraints::Constrained(0))
    });
    let leaf = third.leaf("svc-a.test");
    let inters = [first.der.clone(), second.der.clone(), third.der.clone()];
    let o = verify(&VerifyRequest {
        intermediates: &inters,
        ..VerifyRequest::new(&leaf, std::slice::from_ref(&root.der), at())
    });
    assert!(o.is_valid(), "{o:?}");
    assert_eq!(o.chain.len(), 5);
    // a real violation stays one
    let a = root.child_with("a", |c| {
        c.is_ca = IsCa::Ca(BasicConstraints::Constrained(0))
    });
    let b = a.child_with("b", |_| {});
    let leaf = b.leaf("svc-a.test");
    let inters = [a.der.clone(), b.der.clone(), second.der.clone()];
    let o = verify(&VerifyRequest {
        intermediates: &inters,
        ..VerifyRequest::new(&leaf, std::slice::from_ref(&root.der), at())
    });
    assert_eq!(o.reason, Some(Reason::PathLenConstraint));
}

#[test]
fn many_self_issued_certificates_do_not_explode() {
    // 12 untrusted certificates all named "X", none reaching the anchor
    let x = Ca::root("X");
    let mut inters = vec![x.der.clone()];
    for _ in 0..12 {
        inters.push(x.child_with("X", |_| {}).der);
    }
    let leaf = x.leaf("svc-a.test");
    let other = Ca::root("other");
    let started = std::time::Instant::now();
    let o = verify(&VerifyRequest {
        intermediates: &inters,
        ..VerifyRequest::new(&leaf, std::slice::from_ref(&other.der), at())
    });
    assert_code(&o, "unknown-issuer");
    // not a timing assertion on speed, only a guard against an endless search
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

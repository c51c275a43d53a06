//! The online CA's decisions (`minica serve`): enrolment with a one-time
//! token, renewal authenticated by the caller's current leaf, the server's
//! own certificate, and what the served CRLs depend on.
//!
//! # Design
//! The HTTP server (crate `minica-server`) only moves bytes; every decision
//! is made here, on a [`Ca`] and its [`crate::store::Store`], so that the
//! same rules hold whatever the transport and whichever store is behind.
//!
//! Enrolment ([`Ca::enroll`]): the CSR is parsed and checked first (its
//! signature, no CA request, a supported key), then the stored token (known,
//! unused, unexpired), then the names the CSR asks for (its SANs and subject
//! CNs) must all be among the token's: the NAME, the token's SANs and the
//! NAME's SPIFFE ID; then the NAME must have no active leaf. None of these
//! refusals spends the token. A CSR that asks for nothing is fine: the leaf
//! always gets exactly the token's NAME and SANs (plus the SPIFFE ID), both
//! EKUs, [`crate::DEFAULT_LEAF_VALIDITY`], and the CSR's public key. The
//! leaf is signed, then the token is consumed together with the leaf's
//! record in one atomic commit of the store: of concurrent requests for one
//! token, on any number of servers, exactly one succeeds (the others get
//! "already used"), and a token is never spent without its certificate
//! being recorded.
//!
//! Renewal ([`Ca::renew_with_csr`]): the caller proved, in the TLS
//! handshake, that it holds the key of a leaf chaining to one of our roots.
//! That leaf must be in the ledger (same DER), a leaf, active (not revoked,
//! not superseded by a newer one) and unexpired. The new leaf has the same
//! NAME, SANs, profile and lifetime; its key is the CSR's (new, or the same
//! one); the old record becomes `superseded` in the same commit.

use std::path::Path;

use rustls_pki_types::pem::SectionKind;
use time::OffsetDateTime;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::ca::Ca;
use crate::csr::Csr;
use crate::error::Error;
use crate::issue::{IssuedLeaf, LeafKey, LeafRequest, DEFAULT_LEAF_VALIDITY};
use crate::name::{Name, San};
use crate::record::{CertKind, CertRecord, DisplayStatus, Profile, Status};
use crate::renew::{replaced, same_lifetime, OldCert};
use crate::serial::Serial;
use crate::token::{token_hash, TokenRecord, TokenUse};

/// How a refusal should be answered (the server maps it to an HTTP status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The request is malformed: a bad CSR (400).
    BadRequest,
    /// No valid credential: unknown token, unknown certificate (401).
    Unauthenticated,
    /// A valid credential that does not allow this (403).
    Forbidden,
    /// The NAME already has an active certificate (409).
    Conflict,
    /// The CA failed (store, signing): not the client's fault (500).
    Internal,
}

/// Why an enrolment or an online renewal was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrollError {
    /// The CSR is not acceptable (not a CSR, bad signature, asks for a CA,
    /// unsupported key, unusable SAN).
    #[error("{0}")]
    BadCsr(#[source] Error),
    /// No token has this value.
    #[error("unknown enrolment token")]
    UnknownToken,
    /// The token was used already.
    #[error("the enrolment token for {name:?} was already used; ask for a new one (`minica token {name}`)")]
    TokenUsed {
        /// The token's NAME.
        name: String,
    },
    /// The token expired unused.
    #[error("the enrolment token for {name:?} expired at {expired}; ask for a new one (`minica token {name}`)")]
    TokenExpired {
        /// The token's NAME.
        name: String,
        /// When it expired.
        expired: OffsetDateTime,
    },
    /// The CSR asks for a name the credential does not allow.
    #[error(
        "the CSR asks for {requested}, which is not allowed for {name:?} (allowed: {allowed})"
    )]
    NameNotAllowed {
        /// What the CSR asked for, e.g. `DNS other.example`.
        requested: String,
        /// The NAME of the token or certificate.
        name: String,
        /// What may be asked for, comma separated.
        allowed: String,
    },
    /// The token's NAME already has an active certificate.
    #[error("{name:?} already has an active certificate (serial {serial}); renew it, or revoke it and make a new token")]
    NameInUse {
        /// The NAME.
        name: String,
        /// The active certificate's serial.
        serial: String,
    },
    /// The renewal CSR's key is of another type than the certificate's (a
    /// renewal keeps the key type; enrol again to change it).
    #[error("the CSR's key is {csr}, the certificate's is {current}: a renewal keeps the key type (enrol again with a new token to change it)")]
    KeyTypeChanged {
        /// The current certificate's key type.
        current: crate::KeyType,
        /// The CSR's key type.
        csr: crate::KeyType,
    },
    /// The caller's certificate is not one this CA recorded.
    #[error("the client certificate (serial {serial}) is not in this CA's ledger")]
    UnknownCaller {
        /// Its serial, hex.
        serial: String,
    },
    /// The caller's certificate is not a leaf.
    #[error("the client certificate (serial {serial}) is not a leaf certificate")]
    CallerNotALeaf {
        /// Its serial, hex.
        serial: String,
    },
    /// The caller's certificate is revoked.
    #[error("the client certificate (serial {serial}) is revoked; enrol again with a new token")]
    CallerRevoked {
        /// Its serial, hex.
        serial: String,
    },
    /// The caller's certificate was already renewed.
    #[error("the client certificate (serial {serial}) was already renewed (by serial {by}); use your newest certificate")]
    CallerSuperseded {
        /// Its serial, hex.
        serial: String,
        /// The serial of the certificate that replaced it, hex (`?` if unknown).
        by: String,
    },
    /// The caller's certificate expired.
    #[error("the client certificate (serial {serial}) expired at {expired}; enrol again with a new token")]
    CallerExpired {
        /// Its serial, hex.
        serial: String,
        /// When it expired.
        expired: OffsetDateTime,
    },
    /// The CA failed (store, signing, files).
    #[error(transparent)]
    Ca(#[from] Error),
}

impl From<crate::error::StoreError> for EnrollError {
    fn from(e: crate::error::StoreError) -> Self {
        match e {
            // Another request took the NAME first (the ledger checks inside
            // its commit): the same answer as the check before signing.
            crate::error::StoreError::NameActive { name, serial } => {
                EnrollError::NameInUse { name, serial }
            }
            other => EnrollError::Ca(Error::Store(other)),
        }
    }
}

impl EnrollError {
    /// How to answer this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            EnrollError::BadCsr(_) => ErrorClass::BadRequest,
            EnrollError::UnknownToken | EnrollError::UnknownCaller { .. } => {
                ErrorClass::Unauthenticated
            }
            EnrollError::TokenUsed { .. }
            | EnrollError::TokenExpired { .. }
            | EnrollError::NameNotAllowed { .. }
            | EnrollError::KeyTypeChanged { .. }
            | EnrollError::CallerNotALeaf { .. }
            | EnrollError::CallerRevoked { .. }
            | EnrollError::CallerSuperseded { .. }
            | EnrollError::CallerExpired { .. } => ErrorClass::Forbidden,
            EnrollError::NameInUse { .. } => ErrorClass::Conflict,
            EnrollError::Ca(_) => ErrorClass::Internal,
        }
    }
}

/// Which revoked serials every CRL-publishing CA level has: when this
/// changes, served CRLs must be re-signed. Compare two with `==`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationState {
    levels: Vec<(Serial, Vec<Serial>)>,
}

impl RevocationState {
    /// How many certificates are revoked, over all levels.
    pub fn revoked(&self) -> usize {
        self.levels.iter().map(|(_, r)| r.len()).sum()
    }
}

/// Where requests' CSRs are said to come from in error messages.
const CSR_SOURCE: &str = "csr";

/// The error for a token that cannot be used.
fn token_refused(refusal: TokenUse) -> EnrollError {
    match refusal {
        TokenUse::AlreadyUsed(r) | TokenUse::Consumed(r) => EnrollError::TokenUsed { name: r.name },
        TokenUse::Expired(r) => EnrollError::TokenExpired {
            name: r.name,
            expired: r.expires,
        },
        TokenUse::Unknown => EnrollError::UnknownToken,
    }
}

impl Ca {
    /// Enrols with a one-time `token` and a PEM (or DER) `csr`: see the
    /// module docs for the order of checks. Records the leaf durably before
    /// returning it.
    pub fn enroll(&self, token: &str, csr: &[u8]) -> Result<IssuedLeaf, EnrollError> {
        let (csr, subject_cns) = parse_request_csr(csr)?;
        let now = OffsetDateTime::now_utc();
        let hash = token_hash(token);
        // Every refusal that does not depend on a race comes first, on the
        // stored token, so that a wrong request does not spend it; then one
        // atomic consumption decides between concurrent requests.
        let stored = self
            .store()
            .get_token(&hash)?
            .ok_or(EnrollError::UnknownToken)?;
        if let Some(refusal) = stored.refusal_at(now) {
            return Err(token_refused(refusal));
        }
        let name: Name = stored.name.parse()?;
        let allowed = self.allowed_for(&name, &stored.sans);
        check_requested(&name, &allowed, csr.sans(), &subject_cns)?;
        if let Err(in_use) = self.check_no_active_leaf(&name, now) {
            // The active leaf may be the one a concurrent request just got
            // with this very token: then the answer is "token used".
            return Err(match self.store().get_token(&hash)? {
                Some(now_stored) if now_stored.used.is_some() => {
                    token_refused(TokenUse::AlreadyUsed(now_stored))
                }
                _ => in_use,
            });
        }
        let request = LeafRequest {
            name,
            extra_sans: token_sans(&stored),
            profile: Profile::Both,
            key: LeafKey::Csr(Box::new(csr)),
            validity: DEFAULT_LEAF_VALIDITY,
        };
        request.check()?;
        self.check_issuer_not_revoked()?;
        let leaf = self.sign_leaf(&request, now)?;
        // The token is consumed together with the record of its
        // certificate, in one commit: of concurrent requests with one token
        // exactly one gets here, and a token is never spent without its
        // certificate being recorded.
        match self
            .store()
            .consume_token_and_insert(&hash, now, &leaf.record)?
        {
            TokenUse::Consumed(_) => {}
            other => return Err(token_refused(other)),
        }
        Ok(leaf)
    }

    /// Renews the leaf `caller` (the client certificate of a mutual TLS
    /// connection, already verified to chain to this CA) with the key of
    /// `csr`: same NAME, SANs, profile and lifetime; `caller` becomes
    /// superseded in the same durable commit.
    pub fn renew_with_csr(&self, caller: &[u8], csr: &[u8]) -> Result<IssuedLeaf, EnrollError> {
        let (csr, subject_cns) = parse_request_csr(csr)?;
        let now = OffsetDateTime::now_utc();
        let old = self.caller_record(caller, now)?;
        let name: Name = old.name.parse()?;
        let allowed = self.allowed_for(&name, &old.sans);
        check_requested(&name, &allowed, csr.sans(), &subject_cns)?;
        if csr.key_type() != old.key_type {
            return Err(EnrollError::KeyTypeChanged {
                current: old.key_type,
                csr: csr.key_type(),
            });
        }
        let request = LeafRequest {
            name,
            extra_sans: old.sans.clone(),
            profile: old.profile.unwrap_or(Profile::Both),
            key: LeafKey::Csr(Box::new(csr)),
            validity: same_lifetime(&old),
        };
        request.check()?;
        self.check_issuer_not_revoked()?;
        let mut leaf = self.sign_leaf(&request, now)?;
        leaf.record.renewed_from = Some(old.serial.clone());
        let updated = replaced(&old, &leaf.record.serial, OldCert::Supersede, now);
        // Of two renewals with one certificate (or a renewal and an
        // enrolment for its NAME), the ledger lets one commit.
        self.store()
            .commit_leaf(&leaf.record, Some(&updated), now)?;
        Ok(leaf)
    }

    /// Issues a leaf for one of minica's own services (the online CA's
    /// HTTPS certificate) with a generated key, without the one active leaf
    /// per NAME rule (several servers, restarts), and records it; the
    /// certificate it `replaces`, if still active, becomes superseded in
    /// the same commit.
    pub fn issue_service_leaf(
        &self,
        request: &LeafRequest,
        replaces: Option<&Serial>,
    ) -> Result<IssuedLeaf, Error> {
        request.check()?;
        self.check_issuer_not_revoked()?;
        let now = OffsetDateTime::now_utc();
        let leaf = self.sign_leaf(request, now)?;
        let old = match replaces {
            Some(serial) => self
                .store()
                .get(serial)?
                .filter(|r| r.status == Status::Active)
                .map(|r| replaced(&r, &leaf.record.serial, OldCert::Supersede, now)),
            None => None,
        };
        self.store()
            .commit(std::slice::from_ref(&leaf.record), old.as_slice())?;
        Ok(leaf)
    }

    /// The revoked serials of every CA level that publishes a CRL (see
    /// [`Ca::build_crls`]), read from the store now.
    pub fn revocation_state(&self) -> Result<RevocationState, Error> {
        let mut issuers: Vec<Serial> = self
            .crl_intermediates()?
            .into_iter()
            .map(|c| c.serial().clone())
            .collect();
        issuers.extend(self.crl_roots().into_iter().map(|c| c.serial().clone()));
        let mut levels = Vec::with_capacity(issuers.len());
        for issuer in issuers {
            let mut revoked: Vec<Serial> = self
                .store()
                .revoked_by(&issuer)?
                .into_iter()
                .map(|(serial, _)| serial)
                .filter(|s| s != &issuer)
                .collect();
            revoked.sort();
            levels.push((issuer, revoked));
        }
        Ok(RevocationState { levels })
    }

    /// Every SAN a CSR may ask for under NAME with these SANs.
    fn allowed_for(&self, name: &Name, sans: &[San]) -> Vec<San> {
        let mut allowed = vec![name.san()];
        allowed.extend(sans.iter().cloned());
        if let Ok(id) = minica_pki::identity::SpiffeId::new(self.trust_domain(), name.as_str()) {
            allowed.push(San::Uri(id.to_string()));
        }
        allowed
    }

    /// The ledger record of a renewing caller, if it may renew.
    fn caller_record(&self, caller: &[u8], now: OffsetDateTime) -> Result<CertRecord, EnrollError> {
        let serial = match X509Certificate::from_der(caller) {
            Ok((_, x)) => Serial::from_bytes(x.raw_serial()),
            Err(_) => {
                return Err(EnrollError::UnknownCaller {
                    serial: "(unreadable certificate)".into(),
                })
            }
        };
        let hex = serial.to_hex();
        let record = match self.store().get(&serial)? {
            Some(r) if r.cert_der == caller => r,
            _ => return Err(EnrollError::UnknownCaller { serial: hex }),
        };
        if record.kind != CertKind::Leaf {
            return Err(EnrollError::CallerNotALeaf { serial: hex });
        }
        match record.status_at(now) {
            DisplayStatus::Active => Ok(record),
            DisplayStatus::Revoked => Err(EnrollError::CallerRevoked { serial: hex }),
            DisplayStatus::Superseded => Err(EnrollError::CallerSuperseded {
                serial: hex,
                by: record
                    .superseded_by
                    .as_ref()
                    .map_or_else(|| "?".to_string(), Serial::to_hex),
            }),
            DisplayStatus::Expired => Err(EnrollError::CallerExpired {
                serial: hex,
                expired: record.not_after,
            }),
        }
    }

    /// Refuses a NAME that has an active leaf (like `minica issue`).
    fn check_no_active_leaf(&self, name: &Name, now: OffsetDateTime) -> Result<(), EnrollError> {
        for rec in self.store().by_name(name.as_str())? {
            if rec.kind == CertKind::Leaf && rec.status_at(now) == DisplayStatus::Active {
                return Err(EnrollError::NameInUse {
                    name: name.to_string(),
                    serial: rec.serial.to_hex(),
                });
            }
        }
        Ok(())
    }
}

/// The token's SANs (the leaf's extra SANs).
fn token_sans(record: &TokenRecord) -> Vec<San> {
    record.sans.clone()
}

/// Parses and checks a request's CSR; also returns its subject CNs.
fn parse_request_csr(bytes: &[u8]) -> Result<(Csr, Vec<String>), EnrollError> {
    let path = Path::new(CSR_SOURCE);
    let csr = Csr::parse(path, bytes).map_err(EnrollError::BadCsr)?;
    let der = if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        minica_pki::pem::pem_sections(path, bytes)
            .map_err(|e| EnrollError::BadCsr(e.into()))?
            .into_iter()
            .find(|(kind, _)| *kind == SectionKind::Csr)
            .map(|(_, mut der)| std::mem::take(&mut *der))
            .unwrap_or_default()
    } else {
        bytes.to_vec()
    };
    let cns = match X509CertificationRequest::from_der(&der) {
        Ok((_, req)) => req
            .certification_request_info
            .subject
            .iter_common_name()
            .map(|cn| {
                cn.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|_| "?".into())
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    Ok((csr, cns))
}

/// Refuses any requested SAN or subject CN that is not among `allowed`.
fn check_requested(
    name: &Name,
    allowed: &[San],
    sans: &[San],
    cns: &[String],
) -> Result<(), EnrollError> {
    let same = |a: &San, b: &San| match (a, b) {
        (San::Dns(x), San::Dns(y)) => x.eq_ignore_ascii_case(y),
        _ => a == b,
    };
    let refuse = |requested: String| EnrollError::NameNotAllowed {
        requested,
        name: name.to_string(),
        allowed: allowed.iter().map(describe).collect::<Vec<_>>().join(", "),
    };
    if let Some(bad) = sans.iter().find(|s| !allowed.iter().any(|a| same(a, s))) {
        return Err(refuse(describe(bad)));
    }
    let cn_allowed = |cn: &str| {
        allowed.iter().any(|a| match a {
            San::Dns(d) => d.eq_ignore_ascii_case(cn),
            San::Ip(ip) => cn.parse::<std::net::IpAddr>().is_ok_and(|c| c == *ip),
            San::Uri(_) => false,
        })
    };
    if let Some(bad) = cns.iter().find(|cn| !cn_allowed(cn)) {
        return Err(refuse(format!("CN {bad:?}")));
    }
    Ok(())
}

fn describe(san: &San) -> String {
    match san {
        San::Dns(d) => format!("DNS {d}"),
        San::Ip(ip) => format!("IP {ip}"),
        San::Uri(u) => format!("URI {u}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::home::CaHome;
    use crate::InitOptions;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

    fn csr(cn: Option<&str>, sans: &[&str]) -> (String, KeyPair) {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let mut dn = DistinguishedName::new();
        if let Some(cn) = cn {
            dn.push(DnType::CommonName, cn);
        }
        params.distinguished_name = dn;
        let key = KeyPair::generate().unwrap();
        (params.serialize_request(&key).unwrap().pem().unwrap(), key)
    }

    fn token(ca: &Ca, name: &str, sans: Vec<San>, ttl: i64) -> String {
        let (token, hash) = crate::token::new_token();
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        ca.store()
            .put_token(&TokenRecord {
                hash,
                name: name.into(),
                sans,
                created: now,
                expires: now + time::Duration::seconds(ttl),
                used: None,
            })
            .unwrap();
        token
    }

    fn ca(dir: &Path) -> Ca {
        Ca::init(&CaHome::new(dir.join("h")), &InitOptions::default()).unwrap()
    }

    #[test]
    fn enrol_once_with_the_tokens_names_only() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca(dir.path());
        let t = token(&ca, "web", vec![San::dns("web.internal").unwrap()], 60);
        let (pem, key) = csr(Some("web"), &["web.internal"]);
        let leaf = ca.enroll(&t, pem.as_bytes()).unwrap();
        assert_eq!(
            leaf.record.sans,
            vec![
                San::Dns("web".into()),
                San::Dns("web.internal".into()),
                San::Uri("spiffe://minica.internal/web".into())
            ]
        );
        assert!(!leaf.record.key_generated && leaf.key().is_none());
        let (_, x) = X509Certificate::from_der(&leaf.record.cert_der).unwrap();
        assert_eq!(
            x.public_key().raw,
            rcgen::PublicKeyData::subject_public_key_info(&key)
        );
        let err = ca.enroll(&t, pem.as_bytes()).unwrap_err();
        assert!(matches!(err, EnrollError::TokenUsed { .. }), "{err}");
        assert_eq!(err.class(), ErrorClass::Forbidden);
        let err = ca.enroll("nope", pem.as_bytes()).unwrap_err();
        assert_eq!(err.class(), ErrorClass::Unauthenticated);
        // Another name, by SAN or by CN alone: refused, and the token is
        // not spent.
        let t = token(&ca, "api", vec![], 60);
        for (cn, sans) in [(None, &["other"][..]), (Some("other"), &[][..])] {
            let (pem, _) = csr(cn, sans);
            let err = ca.enroll(&t, pem.as_bytes()).unwrap_err();
            assert!(matches!(err, EnrollError::NameNotAllowed { .. }), "{err}");
        }
        // Nothing asked: the token's names.
        let (pem, _) = csr(None, &[]);
        assert_eq!(ca.enroll(&t, pem.as_bytes()).unwrap().record.name, "api");
        // The same NAME again while active: conflict.
        let t = token(&ca, "api", vec![], 60);
        let err = ca.enroll(&t, pem.as_bytes()).unwrap_err();
        assert_eq!(err.class(), ErrorClass::Conflict, "{err}");
        // Expired tokens and bad CSRs.
        let t = token(&ca, "late", vec![], 0);
        let err = ca.enroll(&t, pem.as_bytes()).unwrap_err();
        assert!(matches!(err, EnrollError::TokenExpired { .. }), "{err}");
        let t = token(&ca, "bad", vec![], 60);
        let err = ca.enroll(&t, b"garbage").unwrap_err();
        assert_eq!(err.class(), ErrorClass::BadRequest, "{err}");
        // A bad CSR does not spend the token.
        ca.enroll(&t, pem.as_bytes()).unwrap();
    }

    #[test]
    fn renew_with_csr_supersedes_and_keeps_names_and_lifetime() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca(dir.path());
        let mut req = LeafRequest::new("svc".parse().unwrap());
        req.profile = Profile::Client;
        req.validity = std::time::Duration::from_secs(3600);
        req.extra_sans = vec![San::ip("10.1.2.3").unwrap()];
        let first = ca.issue(&req).unwrap();
        let (pem, _) = csr(Some("svc"), &[]);
        let second = ca
            .renew_with_csr(&first.record.cert_der, pem.as_bytes())
            .unwrap();
        let new = &second.record;
        assert_ne!(new.serial, first.record.serial);
        assert_eq!(new.sans, first.record.sans);
        assert_eq!(new.profile, Some(Profile::Client));
        assert_eq!(
            new.not_after - new.not_before,
            first.record.not_after - first.record.not_before
        );
        assert_eq!(new.renewed_from.as_ref(), Some(&first.record.serial));
        let old = ca.store().get(&first.record.serial).unwrap().unwrap();
        assert_eq!(old.status, Status::Superseded);
        // The old certificate cannot renew again.
        let err = ca
            .renew_with_csr(&first.record.cert_der, pem.as_bytes())
            .unwrap_err();
        assert!(matches!(err, EnrollError::CallerSuperseded { .. }), "{err}");
        // More names than before: refused.
        let (wider, _) = csr(None, &["svc", "evil"]);
        let err = ca
            .renew_with_csr(&new.cert_der, wider.as_bytes())
            .unwrap_err();
        assert!(matches!(err, EnrollError::NameNotAllowed { .. }), "{err}");
        // Another key type: refused.
        let mut ed = CertificateParams::new(Vec::<String>::new()).unwrap();
        ed.distinguished_name = DistinguishedName::new();
        let ed_key = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let ed_csr = ed.serialize_request(&ed_key).unwrap().pem().unwrap();
        let err = ca
            .renew_with_csr(&new.cert_der, ed_csr.as_bytes())
            .unwrap_err();
        assert!(matches!(err, EnrollError::KeyTypeChanged { .. }), "{err}");
        // Revoked: refused; unknown: unauthenticated.
        ca.revoke(
            &crate::RevokeTarget::Name("svc".into()),
            crate::crl::RevocationReason::KeyCompromise,
        )
        .unwrap();
        let err = ca
            .renew_with_csr(&new.cert_der, pem.as_bytes())
            .unwrap_err();
        assert!(matches!(err, EnrollError::CallerRevoked { .. }), "{err}");
        let err = ca.renew_with_csr(b"junk", pem.as_bytes()).unwrap_err();
        assert_eq!(err.class(), ErrorClass::Unauthenticated);
        assert_eq!(ca.revocation_state().unwrap().revoked(), 1);
    }

    #[test]
    fn service_leaves_skip_the_name_rule_and_supersede() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca(dir.path());
        let req = LeafRequest::new("minica-serve".parse().unwrap());
        let a = ca.issue_service_leaf(&req, None).unwrap();
        let b = ca.issue_service_leaf(&req, Some(&a.record.serial)).unwrap();
        assert!(b.key().is_some());
        let old = ca.store().get(&a.record.serial).unwrap().unwrap();
        assert_eq!(old.status, Status::Superseded);
        let before = ca.revocation_state().unwrap();
        assert_eq!(before, ca.revocation_state().unwrap());
        assert_eq!(before.revoked(), 0);
    }
}

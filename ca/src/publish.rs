//! Publishing CRLs: one CRL v2 per issuing CA, plus the root's, written to
//! `<home>/crl.pem`.
//!
//! # Design
//! A relying party that checks every level of a chain (`openssl verify
//! -crl_check_all`, MariaDB `ssl-crl`, `minica verify --crl`) needs one CRL
//! per CA above a leaf, so the published set is:
//! - for every issuing intermediate, a CRL signed by it listing the revoked
//!   certificates it issued (today one intermediate; after a rotation every
//!   intermediate whose key minica still holds and that still has unexpired
//!   leaves: see `Ca::issuing_cas`);
//! - the root's CRL, signed by the root, listing revoked intermediates
//!   (empty when there are none).
//!
//! Each CRL takes a fresh CRL Number from the store's per-issuer counter
//! ([`crate::store::Store::next_crl_number`], durable before use), so
//! numbers strictly increase and are never reused, even across crashes (a
//! crash may skip a number, never repeat one). thisUpdate is backdated by
//! [`crate::BACKDATE`], like notBefore, so that a peer whose clock is a
//! little behind does not reject a CRL published a moment ago.

use std::time::Duration;

use time::OffsetDateTime;

use crate::ca::{Ca, CaCert};
use crate::crl::{build_crl, Crl, CrlEntry, CrlParams, DEFAULT_NEXT_UPDATE};
use crate::error::{Error, ValidityError};
use crate::record::CertKind;
use crate::serial::Serial;
use crate::store::Store;

/// How long a published CRL stays fresh by default (nextUpdate -
/// thisUpdate): [`DEFAULT_NEXT_UPDATE`], a week.
pub fn default_next_update() -> Duration {
    Duration::from_secs(DEFAULT_NEXT_UPDATE.whole_seconds().unsigned_abs())
}

/// One signed CRL of a [`CrlSet`].
#[derive(Debug, Clone)]
pub struct PublishedCrl {
    /// The issuing CA's subject (RFC 4514).
    pub issuer: String,
    /// The issuing CA's serial.
    pub issuer_serial: Serial,
    /// Root or intermediate.
    pub issuer_kind: CertKind,
    /// CRL Number.
    pub number: u64,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate.
    pub next_update: OffsetDateTime,
    /// How many certificates it lists.
    pub revoked: usize,
    /// The signed CRL.
    pub crl: Crl,
}

/// The CRLs of every level: issuing intermediates first, the root's last.
#[derive(Debug, Clone)]
pub struct CrlSet {
    /// The CRLs, in file order.
    pub crls: Vec<PublishedCrl>,
}

impl CrlSet {
    /// Every CRL as PEM, concatenated (the content of `crl.pem`).
    pub fn to_pem(&self) -> String {
        self.crls.iter().map(|c| c.crl.to_pem()).collect()
    }

    /// The CRL of the current issuing intermediate (the first one).
    pub fn issuing(&self) -> Option<&PublishedCrl> {
        self.crls
            .iter()
            .find(|c| c.issuer_kind == CertKind::Intermediate)
    }

    /// The root's CRL.
    pub fn root(&self) -> Option<&PublishedCrl> {
        self.crls.iter().find(|c| c.issuer_kind == CertKind::Root)
    }
}

/// The revoked certificates `issuer` signed (never the issuer itself: a
/// root's own record names the root as its issuer).
fn revoked_by(store: &dyn Store, issuer: &Serial) -> Result<Vec<CrlEntry>, Error> {
    Ok(store
        .revoked_by(issuer)?
        .into_iter()
        .filter(|(serial, _)| serial != issuer)
        .map(|(serial, rev)| CrlEntry {
            serial: serial.as_bytes().to_vec(),
            revoked_at: rev.at,
            reason: rev.reason,
        })
        .collect())
}

impl Ca {
    /// The CAs that publish a CRL for the leaves they issued: the current
    /// intermediate. A rotation (which keeps the retired intermediate's key
    /// while it still has unexpired leaves) adds those here.
    fn issuing_cas(&self) -> Result<Vec<&CaCert>, Error> {
        self.crl_intermediates()
    }

    /// Builds and signs the CRL of every level (see the module docs), each
    /// valid for `next_update`, taking a new CRL Number per issuer. Writes
    /// no file: see [`Ca::publish_crls`].
    pub fn build_crls(&self, next_update: Duration) -> Result<CrlSet, Error> {
        let arg = "--next-update";
        if next_update.is_zero() {
            return Err(Error::Validity(ValidityError::Zero { arg }));
        }
        let now = OffsetDateTime::now_utc();
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let this_update = now - crate::params::BACKDATE;
        let next = time::Duration::try_from(next_update)
            .ok()
            .and_then(|d| now.checked_add(d))
            .filter(|t| t.year() <= 9999)
            .ok_or(Error::Validity(ValidityError::TooLong { arg }))?;
        let mut levels: Vec<(&CaCert, CertKind)> = self
            .issuing_cas()?
            .into_iter()
            .map(|ca| (ca, CertKind::Intermediate))
            .collect();
        // During a root rotation's overlap the old root publishes too.
        for root in self.crl_roots() {
            levels.push((root, CertKind::Root));
        }
        let mut crls = Vec::with_capacity(levels.len());
        for (ca, kind) in levels {
            let entries = revoked_by(self.store(), ca.serial())?;
            let number = self.store().next_crl_number(ca.serial())?;
            let params = CrlParams {
                next_update: next,
                entries,
                ..CrlParams::new(number, this_update)
            };
            let crl = build_crl(ca.der(), ca.key(), &params).map_err(|source| Error::Crl {
                issuer: ca.subject().to_string(),
                source,
            })?;
            crls.push(PublishedCrl {
                issuer: ca.subject().to_string(),
                issuer_serial: ca.serial().clone(),
                issuer_kind: kind,
                number,
                this_update,
                next_update: next,
                revoked: params.entries.len(),
                crl,
            });
        }
        Ok(CrlSet { crls })
    }

    /// [`Ca::build_crls`], then writes them to `<home>/crl.pem`
    /// (atomically: readers see the old file or the new one).
    pub fn publish_crls(&self, next_update: Duration) -> Result<CrlSet, Error> {
        let set = self.build_crls(next_update)?;
        minica_pki::atomic::write_atomic(
            &self.home().crl_path(),
            set.to_pem().as_bytes(),
            minica_pki::atomic::FileMode::Public,
        )?;
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crl::CrlInfo;
    use crate::home::CaHome;
    use crate::InitOptions;

    #[test]
    fn one_crl_per_level_with_increasing_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(&CaHome::new(dir.path()), &InitOptions::default()).unwrap();
        let first = ca.publish_crls(default_next_update()).unwrap();
        assert_eq!(first.crls.len(), 2);
        let (int, root) = (first.issuing().unwrap(), first.root().unwrap());
        assert_eq!(
            (int.number, root.number, int.revoked, root.revoked),
            (1, 1, 0, 0)
        );
        assert_eq!(int.issuer, ca.intermediate().subject());
        assert_eq!(
            int.next_update - int.this_update,
            DEFAULT_NEXT_UPDATE + time::Duration::seconds(60)
        );
        let pem = std::fs::read(ca.home().crl_path()).unwrap();
        let crls = minica_pki::pem::parse_crls(&ca.home().crl_path(), &pem).unwrap();
        assert_eq!(crls.len(), 2);
        let info = CrlInfo::parse(crls[1].as_ref()).unwrap();
        assert_eq!(info.issuer, ca.root().subject());
        let second = ca.build_crls(Duration::from_secs(3600)).unwrap();
        assert_eq!(second.issuing().unwrap().number, 2);
        assert_eq!(second.root().unwrap().number, 2);
        assert!(ca.build_crls(Duration::ZERO).is_err());
        assert!(ca.build_crls(Duration::from_secs(u64::MAX)).is_err());
    }

    /// `cargo test -p minica-ca --release --lib -- --ignored crl_of_100k`:
    /// the ledger-level cost of publishing 100,000 revocations.
    #[test]
    #[ignore = "benchmark; run in release"]
    fn crl_of_100k_revocations() {
        use crate::crl::RevocationReason;
        use crate::record::{CertRecord, Revocation, Status};
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(&CaHome::new(dir.path()), &InitOptions::default()).unwrap();
        let template = ca.records().unwrap()[0].clone();
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let records: Vec<CertRecord> = (0..100_000)
            .map(|_| CertRecord {
                serial: Serial::random(),
                kind: CertKind::Leaf,
                issuer_serial: ca.intermediate().serial().clone(),
                status: Status::Revoked,
                revocation: Some(Revocation {
                    at: now,
                    reason: RevocationReason::KeyCompromise,
                }),
                cert_der: vec![0x30; 600],
                ..template.clone()
            })
            .collect();
        ca.store().insert(&records).unwrap();
        // As `minica revoke` runs: a new process opens the CA (cold cache).
        let home = ca.home().clone();
        drop(ca);
        let ca = Ca::open(&home).unwrap();
        for run in ["cold", "warm"] {
            let start = std::time::Instant::now();
            let set = ca.publish_crls(default_next_update()).unwrap();
            let took = start.elapsed();
            let crl = set.issuing().unwrap();
            assert_eq!(crl.revoked, 100_000);
            eprintln!(
                "{run}: published a CRL of 100,000 entries ({} bytes) in {took:?}",
                crl.crl.der().len()
            );
        }
    }
}

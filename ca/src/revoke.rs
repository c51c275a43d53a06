//! Revocation: record it durably in the ledger, then refresh the CRLs.
//!
//! # Design
//! The ledger is the source of truth. [`Ca::revoke`] commits the revoked
//! record (one durable store commit, flushed) before anything else, then
//! rewrites `<home>/crl.pem` (see [`crate::publish`]). If the CRL refresh
//! fails, the revocation stays recorded and the error says so
//! ([`Error::CrlNotRefreshed`]); any later `minica revoke` or `minica crl`
//! publishes it. Revoking a revoked certificate changes nothing in the
//! ledger (its first date and reason are kept) but still refreshes the CRLs,
//! which repairs a refresh that failed before.

use std::fmt;

use time::OffsetDateTime;

use crate::ca::Ca;
use crate::crl::RevocationReason;
use crate::error::Error;
use crate::publish::{default_next_update, CrlSet};
use crate::record::{CertKind, CertRecord, DisplayStatus, Revocation, Status};
use crate::serial::Serial;

/// Which certificate to revoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeTarget {
    /// A leaf by NAME (case-insensitive): its active certificate.
    Name(String),
    /// Any leaf or intermediate by serial.
    Serial(Serial),
}

impl fmt::Display for RevokeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RevokeTarget::Name(n) => write!(f, "name {n:?}"),
            RevokeTarget::Serial(s) => write!(f, "serial {s}"),
        }
    }
}

/// What [`Ca::revoke`] did.
#[derive(Debug, Clone)]
pub struct RevokeOutcome {
    /// The record as it is now in the ledger (revoked).
    pub record: CertRecord,
    /// True when it was revoked before: nothing changed in the ledger and
    /// `record.revocation` holds the first date and reason.
    pub already_revoked: bool,
    /// The CRLs written to `<home>/crl.pem`.
    pub crls: CrlSet,
}

impl RevokeOutcome {
    /// The revocation (always set: the record is revoked).
    pub fn revocation(&self) -> Option<&Revocation> {
        self.record.revocation.as_ref()
    }
}

impl Ca {
    /// Finds the record `target` names. By NAME: its active unexpired leaf,
    /// else its newest expired one, else its newest revoked one (which makes
    /// the revocation a no-op); only superseded ones is an error.
    pub fn find_for_revocation(&self, target: &RevokeTarget) -> Result<CertRecord, Error> {
        let not_found = || Error::NotInLedger {
            what: target.to_string(),
        };
        let name = match target {
            RevokeTarget::Serial(serial) => {
                return self.store().get(serial)?.ok_or_else(not_found);
            }
            RevokeTarget::Name(name) => name,
        };
        let now = OffsetDateTime::now_utc();
        let records = self.store().by_name(name)?;
        if records.is_empty() {
            return Err(not_found());
        }
        let rank = |r: &CertRecord| match r.status_at(now) {
            DisplayStatus::Active => 3,
            DisplayStatus::Expired => 2,
            DisplayStatus::Revoked => 1,
            DisplayStatus::Superseded => 0,
        };
        let best = records.iter().map(rank).max().unwrap_or(0);
        let serials = |rank_wanted: u8| {
            records
                .iter()
                .filter(|r| rank(r) == rank_wanted)
                .map(|r| r.serial.to_hex())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if best == 0 {
            return Err(Error::NothingToRevoke {
                name: name.clone(),
                serials: serials(0),
            });
        }
        let mut top: Vec<&CertRecord> = records.iter().filter(|r| rank(r) == best).collect();
        if best == 3 && top.len() > 1 {
            return Err(Error::AmbiguousName {
                name: name.clone(),
                serials: serials(3),
            });
        }
        top.sort_by_key(|r| (r.not_after, r.not_before));
        top.pop().cloned().ok_or_else(not_found)
    }

    /// Refuses to sign with a revoked intermediate ([`Error::IssuerRevoked`]).
    pub(crate) fn check_issuer_not_revoked(&self) -> Result<(), Error> {
        let serial = self.intermediate().serial();
        match self.store().get(serial)? {
            Some(rec) if rec.status == Status::Revoked => Err(Error::IssuerRevoked {
                serial: serial.to_hex(),
            }),
            _ => Ok(()),
        }
    }

    /// Revokes the certificate `target` names for `reason`: records it
    /// durably (flushed before returning), then refreshes `<home>/crl.pem`
    /// with a CRL valid for the default week.
    ///
    /// Unknown name or serial: [`Error::NotInLedger`]. A root:
    /// [`Error::RevokeRoot`]. A certificate already revoked keeps its first
    /// date and reason ([`RevokeOutcome::already_revoked`]).
    pub fn revoke(
        &self,
        target: &RevokeTarget,
        reason: RevocationReason,
    ) -> Result<RevokeOutcome, Error> {
        let mut record = self.find_for_revocation(target)?;
        if record.kind == CertKind::Root {
            return Err(Error::RevokeRoot {
                serial: record.serial.to_hex(),
            });
        }
        let already_revoked = record.status == Status::Revoked && record.revocation.is_some();
        if !already_revoked {
            let now = OffsetDateTime::now_utc();
            record.status = Status::Revoked;
            record.revocation = Some(Revocation {
                at: now.replace_nanosecond(0).unwrap_or(now),
                reason,
            });
            self.store().update(&record)?;
        }
        let crls =
            self.publish_crls(default_next_update())
                .map_err(|e| Error::CrlNotRefreshed {
                    serial: record.serial.to_hex(),
                    source: Box::new(e),
                })?;
        Ok(RevokeOutcome {
            record,
            already_revoked,
            crls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crl::CrlInfo;
    use crate::home::CaHome;
    use crate::issue::LeafRequest;
    use crate::InitOptions;

    fn crls(ca: &Ca) -> Vec<CrlInfo> {
        let path = ca.home().crl_path();
        minica_pki::pem::load_crls(&path)
            .unwrap()
            .iter()
            .map(|d| CrlInfo::parse(d.as_ref()).unwrap())
            .collect()
    }

    #[test]
    fn revoke_by_name_then_again_keeps_the_first_revocation() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(&CaHome::new(dir.path()), &InitOptions::default()).unwrap();
        let leaf = ca
            .issue(&LeafRequest::new("svc-a".parse().unwrap()))
            .unwrap();
        let target = RevokeTarget::Name("SVC-A".into());
        let first = ca.revoke(&target, RevocationReason::KeyCompromise).unwrap();
        assert!(!first.already_revoked);
        assert_eq!(first.record.serial, leaf.record.serial);
        let stored = ca.store().get(&leaf.record.serial).unwrap().unwrap();
        assert_eq!(stored.status, Status::Revoked);
        let [int, root] = &crls(&ca)[..] else {
            panic!("two CRLs expected")
        };
        let entry = int.lookup(leaf.record.serial.as_bytes()).unwrap();
        assert_eq!(entry.reason, Some(RevocationReason::KeyCompromise));
        assert!(root.entries.is_empty());

        let again = ca.revoke(&target, RevocationReason::Superseded).unwrap();
        assert!(again.already_revoked);
        assert_eq!(again.revocation(), first.revocation());
        assert!(again.crls.issuing().unwrap().number > first.crls.issuing().unwrap().number);
        let int = &crls(&ca)[0];
        assert_eq!(
            int.lookup(leaf.record.serial.as_bytes()).unwrap().reason,
            Some(RevocationReason::KeyCompromise)
        );
    }

    #[test]
    fn unknown_targets_and_roots_are_refused_without_change() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(&CaHome::new(dir.path()), &InitOptions::default()).unwrap();
        let before = ca.records().unwrap();
        let reason = RevocationReason::Unspecified;
        for target in [
            RevokeTarget::Name("nobody".into()),
            RevokeTarget::Serial(Serial::random()),
        ] {
            let err = ca.revoke(&target, reason).unwrap_err();
            assert!(matches!(err, Error::NotInLedger { .. }), "{err}");
        }
        let root = RevokeTarget::Serial(ca.root().serial().clone());
        let err = ca.revoke(&root, reason).unwrap_err();
        assert!(matches!(err, Error::RevokeRoot { .. }), "{err}");
        assert_eq!(ca.records().unwrap(), before);
        assert!(!ca.home().crl_path().exists());
    }

    #[test]
    fn a_revoked_intermediate_is_on_the_roots_crl() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(&CaHome::new(dir.path()), &InitOptions::default()).unwrap();
        let serial = ca.intermediate().serial().clone();
        let out = ca
            .revoke(
                &RevokeTarget::Serial(serial.clone()),
                RevocationReason::CaCompromise,
            )
            .unwrap();
        assert_eq!(out.record.kind, CertKind::Intermediate);
        let err = ca
            .issue(&LeafRequest::new("late".parse().unwrap()))
            .unwrap_err();
        assert!(matches!(err, Error::IssuerRevoked { .. }), "{err}");
        let [int, root] = &crls(&ca)[..] else {
            panic!("two CRLs expected")
        };
        assert!(int.entries.is_empty());
        assert_eq!(
            root.lookup(serial.as_bytes()).unwrap().reason,
            Some(RevocationReason::CaCompromise)
        );
    }

    #[test]
    fn a_failed_crl_refresh_keeps_the_revocation_and_is_repaired_by_a_retry() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(&CaHome::new(dir.path()), &InitOptions::default()).unwrap();
        let leaf = ca
            .issue(&LeafRequest::new("svc-a".parse().unwrap()))
            .unwrap();
        // A directory where crl.pem should go makes the atomic rename fail.
        std::fs::create_dir(ca.home().crl_path()).unwrap();
        let target = RevokeTarget::Serial(leaf.record.serial.clone());
        let err = ca
            .revoke(&target, RevocationReason::KeyCompromise)
            .unwrap_err();
        assert!(matches!(err, Error::CrlNotRefreshed { .. }), "{err}");
        assert!(err.to_string().contains("minica crl"), "{err}");
        let stored = ca.store().get(&leaf.record.serial).unwrap().unwrap();
        assert_eq!(stored.status, Status::Revoked);
        std::fs::remove_dir(ca.home().crl_path()).unwrap();
        let again = ca.revoke(&target, RevocationReason::Superseded).unwrap();
        assert!(again.already_revoked);
        let int = &crls(&ca)[0];
        assert_eq!(
            int.lookup(leaf.record.serial.as_bytes()).unwrap().reason,
            Some(RevocationReason::KeyCompromise)
        );
    }
}

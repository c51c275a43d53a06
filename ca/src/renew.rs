//! Renewal: a new leaf with the same names, kind (EKU) and key type.
//!
//! # Design
//! [`Ca::renew_to_dir`] finds NAME's current leaf (active, or active but
//! expired), signs the new one with the current intermediate, stages every
//! output file under a temporary name, records the new certificate and the
//! old one's new status (`superseded`, or revoked with reason `superseded`)
//! in one durable ledger commit, and only then renames the files into
//! place, in this order: `ca.pem`, `key.pem`, `cert.pem`, `chain.pem`.
//!
//! Why that order: the bundle first (a superset: it trusts the old and the
//! new chain); then the key; the certificates last, `chain.pem` (what the
//! sidecar and most servers load) at the very end. A process that reloads
//! when the certificate changes always finds the matching key already in
//! place. One that reads between two renames can see the new key with the
//! old certificate: a loader that checks that key and certificate match
//! (the sidecar does) keeps its old credentials and retries at its next
//! poll. No order of two renames can be atomic for a reader that reads the
//! two files at arbitrary moments; this one keeps the mismatch window to
//! one rename.

use std::path::{Path, PathBuf};
use std::time::Duration;

use minica_pki::atomic::{FileMode, StagedFile};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::ca::Ca;
use crate::crl::RevocationReason;
use crate::csr::Csr;
use crate::error::{CaFileError, Error};
use crate::issue::{LeafFiles, LeafKey, LeafRequest};
use crate::key::PrivateKey;
use crate::name::Name;
use crate::publish::{default_next_update, CrlSet};
use crate::record::{CertKind, CertRecord, DisplayStatus, Profile, Revocation, Status};

/// Where the renewed leaf's key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RenewKey {
    /// A new key of the same type (the default).
    #[default]
    New,
    /// The key in the identity directory's `key.pem` (`--reuse-key`).
    Reuse,
}

/// What happens to the replaced certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OldCert {
    /// Marked superseded; still valid until it expires (the default).
    #[default]
    Supersede,
    /// Revoked with reason superseded, and the CRLs refreshed (`--revoke-old`).
    Revoke,
}

/// How to renew (`minica renew`).
#[derive(Debug, Clone, Default)]
pub struct RenewOptions {
    /// Key source.
    pub key: RenewKey,
    /// Validity; `None`: the old certificate's lifetime.
    pub validity: Option<Duration>,
    /// What happens to the old certificate.
    pub old: OldCert,
}

/// Why a renewal was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenewError {
    /// NAME's newest certificate is revoked.
    #[error("{name:?} is revoked (serial {serial}): a revoked certificate is not renewed; issue a new one with `minica issue {name}`")]
    Revoked {
        /// The name.
        name: String,
        /// The revoked serial.
        serial: String,
    },
    /// NAME has only superseded certificates.
    #[error("{name:?} has no current certificate (only superseded ones)")]
    NothingCurrent {
        /// The name.
        name: String,
    },
}

/// What [`Ca::renew_to_dir`] did.
#[derive(Debug, Clone)]
pub struct Renewed {
    /// The old record, as it is now in the ledger.
    pub old: CertRecord,
    /// The new record.
    pub new: CertRecord,
    /// The identity directory written.
    pub dir: PathBuf,
    /// Whether a new `key.pem` was written.
    pub key_written: bool,
    /// The CRLs refreshed under [`OldCert::Revoke`].
    pub crls: Option<CrlSet>,
}

impl Ca {
    /// NAME's current leaf: the active one, else the newest expired one.
    /// Unknown: [`Error::NotInLedger`]; revoked: [`RenewError::Revoked`].
    pub fn renewable(&self, name: &str) -> Result<CertRecord, Error> {
        let now = OffsetDateTime::now_utc();
        let mut leaves: Vec<CertRecord> = self
            .store()
            .by_name(name)?
            .into_iter()
            .filter(|r| r.kind == CertKind::Leaf)
            .collect();
        if leaves.is_empty() {
            return Err(Error::NotInLedger {
                what: format!("name {name:?}"),
            });
        }
        leaves.sort_by_key(|r| (r.not_after, r.not_before));
        let current = leaves
            .iter()
            .rev()
            .find(|r| matches!(r.status_at(now), DisplayStatus::Active))
            .or_else(|| {
                leaves
                    .iter()
                    .rev()
                    .find(|r| r.status_at(now) == DisplayStatus::Expired)
            });
        if let Some(rec) = current {
            return Ok(rec.clone());
        }
        match leaves.iter().rev().find(|r| r.status == Status::Revoked) {
            Some(rec) => Err(Error::Renew(RenewError::Revoked {
                name: name.to_string(),
                serial: rec.serial.to_hex(),
            })),
            None => Err(Error::Renew(RenewError::NothingCurrent {
                name: name.to_string(),
            })),
        }
    }

    /// Every active (unexpired) leaf that expires within `within`, soonest
    /// first: what `minica renew --all --within DUR` renews.
    pub fn due_for_renewal(&self, within: Duration) -> Result<Vec<CertRecord>, Error> {
        let now = OffsetDateTime::now_utc();
        let limit = time::Duration::try_from(within)
            .ok()
            .and_then(|d| now.checked_add(d))
            .unwrap_or(time::PrimitiveDateTime::MAX.assume_utc());
        let mut due: Vec<CertRecord> = self
            .records()?
            .into_iter()
            .filter(|r| {
                r.kind == CertKind::Leaf
                    && r.status_at(now) == DisplayStatus::Active
                    && r.not_after <= limit
            })
            .collect();
        due.sort_by(|a, b| (a.not_after, &a.name).cmp(&(b.not_after, &b.name)));
        Ok(due)
    }

    /// Renews NAME's current leaf into `dir` (see the module docs for the
    /// order of work). A leaf issued from a CSR keeps its public key (minica
    /// never had its private key): no `key.pem` is written for it.
    pub fn renew_to_dir(
        &self,
        name: &str,
        dir: &Path,
        options: &RenewOptions,
    ) -> Result<Renewed, Error> {
        let old = self.renewable(name)?;
        let files = LeafFiles::in_dir(dir);
        let old_spki = {
            let (_, x) = X509Certificate::from_der(&old.cert_der).map_err(|_| Error::CaFile {
                path: PathBuf::from(format!("ledger record {}", old.serial)),
                reason: CaFileError::NotACertificate,
            })?;
            x.public_key().raw.to_vec()
        };
        let same_key = |what: &Path| {
            Csr::from_public_key(old.key_type, &old_spki)
                .map(|c| LeafKey::Csr(Box::new(c)))
                .ok_or_else(|| Error::CaFile {
                    path: what.to_path_buf(),
                    reason: CaFileError::UnsupportedKey,
                })
        };
        let key = if !old.key_generated {
            same_key(&files.cert)?
        } else if options.key == RenewKey::Reuse {
            let key = PrivateKey::load(&files.key)?;
            if key.public_key_der() != old_spki {
                return Err(Error::CaFile {
                    path: files.key.clone(),
                    reason: CaFileError::KeyMismatch,
                });
            }
            same_key(&files.key)?
        } else {
            LeafKey::Generate(old.key_type)
        };
        let validity = options.validity.unwrap_or_else(|| same_lifetime(&old));
        let request = LeafRequest {
            name: old.name.parse::<Name>()?,
            extra_sans: old.sans.clone(),
            profile: old.profile.unwrap_or(Profile::Both),
            key,
            validity,
        };
        request.check()?;
        self.check_issuer_not_revoked()?;
        let now = OffsetDateTime::now_utc();
        let mut leaf = self.sign_leaf(&request, now)?;
        leaf.record.renewed_from = Some(old.serial.clone());
        leaf.record.key_generated = old.key_generated;

        minica_pki::atomic::create_private_dir(dir)?;
        let bundle = self.bundle_pem()?;
        let mut staged = vec![StagedFile::write(
            &files.ca,
            bundle.as_bytes(),
            FileMode::Public,
        )?];
        if let Some(key) = leaf.key() {
            let pem = key.to_pkcs8_pem();
            staged.push(StagedFile::write(
                &files.key,
                pem.as_bytes(),
                FileMode::Private,
            )?);
        }
        staged.push(StagedFile::write(
            &files.cert,
            leaf.cert_pem().as_bytes(),
            FileMode::Public,
        )?);
        staged.push(StagedFile::write(
            &files.chain,
            leaf.chain_pem().as_bytes(),
            FileMode::Public,
        )?);

        let updated = replaced(&old, &leaf.record.serial, options.old, now);
        // Recorded and flushed before any file is renamed into place.
        self.store()
            .commit_leaf(&leaf.record, Some(&updated), now)?;
        let key_written = leaf.key().is_some();
        staged.into_iter().try_for_each(StagedFile::commit)?;
        let crls = match options.old {
            OldCert::Supersede => None,
            OldCert::Revoke => Some(self.publish_crls(default_next_update()).map_err(|e| {
                Error::CrlNotRefreshed {
                    serial: updated.serial.to_hex(),
                    source: Box::new(e),
                }
            })?),
        };
        Ok(Renewed {
            old: updated,
            new: leaf.record,
            dir: dir.to_path_buf(),
            key_written,
            crls,
        })
    }
}

/// The validity that gives a renewed leaf the same lifetime as `old`
/// (its window less the backdating of notBefore).
pub(crate) fn same_lifetime(old: &CertRecord) -> Duration {
    let lifetime =
        (old.not_after - old.not_before - crate::params::BACKDATE).max(time::Duration::seconds(1));
    Duration::from_secs(lifetime.whole_seconds().unsigned_abs())
}

/// `old` as the ledger keeps it once `new_serial` replaced it at `now`:
/// superseded, or revoked with reason superseded.
pub(crate) fn replaced(
    old: &CertRecord,
    new_serial: &crate::serial::Serial,
    how: OldCert,
    now: OffsetDateTime,
) -> CertRecord {
    let mut updated = old.clone();
    updated.superseded_by = Some(new_serial.clone());
    match how {
        OldCert::Supersede => updated.status = Status::Superseded,
        OldCert::Revoke => {
            updated.status = Status::Revoked;
            updated.revocation = Some(Revocation {
                at: now.replace_nanosecond(0).unwrap_or(now),
                reason: RevocationReason::Superseded,
            });
        }
    }
    updated
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::home::CaHome;
    use crate::issue::Overwrite;
    use crate::InitOptions;

    #[test]
    fn renew_supersedes_and_keeps_names_profile_and_key_type() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(&CaHome::new(dir.path().join("h")), &InitOptions::default()).unwrap();
        let out = dir.path().join("svc");
        let mut req = LeafRequest::new("svc".parse().unwrap());
        req.profile = Profile::Server;
        req.key = LeafKey::Generate(crate::KeyType::Ed25519);
        let first = ca.issue_to_dir(&req, &out, Overwrite::Refuse).unwrap();
        let key_before = std::fs::read(out.join("key.pem")).unwrap();
        let r = ca
            .renew_to_dir("svc", &out, &RenewOptions::default())
            .unwrap();
        assert_eq!(r.old.status, Status::Superseded);
        assert_eq!(r.new.renewed_from.as_ref(), Some(&first.record.serial));
        assert_eq!(r.new.sans, first.record.sans);
        assert_eq!(r.new.profile, Some(Profile::Server));
        assert_eq!(r.new.key_type, crate::KeyType::Ed25519);
        assert_ne!(std::fs::read(out.join("key.pem")).unwrap(), key_before);
        // --reuse-key keeps the key file and the public key.
        let key_now = std::fs::read(out.join("key.pem")).unwrap();
        let opts = RenewOptions {
            key: RenewKey::Reuse,
            old: OldCert::Revoke,
            ..RenewOptions::default()
        };
        let r2 = ca.renew_to_dir("svc", &out, &opts).unwrap();
        assert!(!r2.key_written);
        assert_eq!(std::fs::read(out.join("key.pem")).unwrap(), key_now);
        assert_eq!(r2.old.status, Status::Revoked);
        assert!(r2.crls.unwrap().issuing().unwrap().revoked == 1);
        // Revoked and unknown names are refused.
        ca.revoke(
            &crate::RevokeTarget::Name("svc".into()),
            RevocationReason::KeyCompromise,
        )
        .unwrap();
        let err = ca.renew_to_dir("svc", &out, &opts).unwrap_err();
        assert!(
            matches!(err, Error::Renew(RenewError::Revoked { .. })),
            "{err}"
        );
        let err = ca.renew_to_dir("nobody", &out, &opts).unwrap_err();
        assert!(matches!(err, Error::NotInLedger { .. }), "{err}");
    }
}

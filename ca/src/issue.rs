//! Issuing leaves: one, a batch (one durable commit), or straight to files.
//!
//! Order of work, so that the ledger never forgets a certificate that
//! exists on disk: check inputs and names, sign, stage the output files
//! under temporary names, record and flush the ledger (while the staged
//! files are synced), then rename the files into place. A crash leaves at
//! worst a recorded certificate with no files, never files of an
//! unrecorded certificate.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use minica_pki::atomic::{FileMode, StagedFile};
use time::OffsetDateTime;

use crate::ca::Ca;
use crate::csr::Csr;
use crate::error::{crypto, Error, ValidityError};
use crate::key::{KeyType, PrivateKey};
use crate::name::{Name, San};
use crate::params::{self, LeafSpec};
use crate::record::{CertKind, CertRecord, DisplayStatus, Profile, Status};
use crate::serial::Serial;

/// Default leaf validity: 90 days, short enough that a leaked key expires
/// soon, long enough for monthly renewal with margin.
pub const DEFAULT_LEAF_VALIDITY: Duration = Duration::from_secs(90 * 86_400);

/// Where a leaf's key comes from.
#[derive(Debug, Clone)]
pub enum LeafKey {
    /// minica generates a key of this type (written as `key.pem`).
    Generate(KeyType),
    /// The holder keeps its key; the certificate uses the CSR's public key.
    Csr(Box<Csr>),
}

/// What to issue (`minica issue NAME ...`).
#[derive(Debug, Clone)]
pub struct LeafRequest {
    /// The NAME: subject CN, first SAN and SPIFFE ID path.
    pub name: Name,
    /// More SANs (`--dns`, `--ip`, `--uri`).
    pub extra_sans: Vec<San>,
    /// Server, client or both.
    pub profile: Profile,
    /// Key source.
    pub key: LeafKey,
    /// Validity (from now; notBefore is backdated one minute).
    pub validity: Duration,
}

impl LeafRequest {
    /// A request with the defaults: both EKUs, a new ECDSA P-256 key, 90 days.
    pub fn new(name: Name) -> Self {
        LeafRequest {
            name,
            extra_sans: Vec::new(),
            profile: Profile::Both,
            key: LeafKey::Generate(KeyType::EcdsaP256),
            validity: DEFAULT_LEAF_VALIDITY,
        }
    }

    /// Checks what can be checked without the CA (the validity is not zero
    /// and its end can be encoded), so that a bad request creates nothing.
    pub fn check(&self) -> Result<(), Error> {
        params::window(OffsetDateTime::now_utc(), self.validity, "--valid").map(|_| ())
    }
}

/// An issued (and recorded) leaf.
#[derive(Debug)]
pub struct IssuedLeaf {
    /// Its ledger record (holds the certificate DER).
    pub record: CertRecord,
    key: Option<PrivateKey>,
    chain_pem: String,
}

impl IssuedLeaf {
    /// The leaf, PEM.
    pub fn cert_pem(&self) -> String {
        self.record.cert_pem()
    }

    /// The leaf followed by the intermediate, PEM.
    pub fn chain_pem(&self) -> &str {
        &self.chain_pem
    }

    /// The generated private key (`None` for a CSR).
    pub fn key(&self) -> Option<&PrivateKey> {
        self.key.as_ref()
    }
}

/// Whether existing output files may be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// Refuse when any output file exists (the default).
    Refuse,
    /// Replace them (`--force`).
    Replace,
}

/// The files of a leaf in an output directory (`minica issue`'s layout).
pub type LeafFiles = minica_pki::files::IdentityFiles;

/// Refuses (naming the first one) when any of `files` exists.
pub fn check_absent(files: &LeafFiles) -> Result<(), Error> {
    match files.first_existing() {
        Some(path) => Err(Error::OutputExists {
            path: path.to_path_buf(),
        }),
        None => Ok(()),
    }
}

impl Ca {
    /// Issues one leaf and records it durably. Writes no files.
    pub fn issue(&self, request: &LeafRequest) -> Result<IssuedLeaf, Error> {
        let now = OffsetDateTime::now_utc();
        self.check_names_free(std::iter::once(&request.name), now)?;
        let leaf = self.sign_leaf(request, now)?;
        self.store().commit_leaf(&leaf.record, None, now)?;
        Ok(leaf)
    }

    /// Issues many leaves and records them in one durable commit (one
    /// flush for the batch). All or nothing: on error none is recorded.
    pub fn issue_batch(&self, requests: &[LeafRequest]) -> Result<Vec<IssuedLeaf>, Error> {
        let now = OffsetDateTime::now_utc();
        self.check_names_free(requests.iter().map(|r| &r.name), now)?;
        let issued = requests
            .iter()
            .map(|r| self.sign_leaf(r, now))
            .collect::<Result<Vec<_>, _>>()?;
        let records: Vec<CertRecord> = issued.iter().map(|l| l.record.clone()).collect();
        self.store().insert(&records)?;
        Ok(issued)
    }

    /// Issues one leaf into `dir` (`cert.pem`, `chain.pem`, `key.pem` when
    /// generated, `ca.pem`): files staged, then recorded, then renamed.
    /// With [`Overwrite::Replace`] and a CSR, a `key.pem` left from an
    /// earlier certificate is removed (it would not match).
    pub fn issue_to_dir(
        &self,
        request: &LeafRequest,
        dir: &Path,
        overwrite: Overwrite,
    ) -> Result<IssuedLeaf, Error> {
        let files = LeafFiles::in_dir(dir);
        let now = OffsetDateTime::now_utc();
        self.check_names_free(std::iter::once(&request.name), now)?;
        if overwrite == Overwrite::Refuse {
            check_absent(&files)?;
        }
        let leaf = self.sign_leaf(request, now)?;
        minica_pki::atomic::create_private_dir(dir)?;
        let cert_pem = leaf.cert_pem();
        let bundle = self.bundle_pem()?;
        // Staged first (an unwritable directory fails here, before anything
        // is recorded); the files' fsyncs then run while the ledger commits,
        // and the renames wait for both.
        let mut staged = vec![
            StagedFile::write_unsynced(&files.cert, cert_pem.as_bytes(), FileMode::Public)?,
            StagedFile::write_unsynced(&files.chain, leaf.chain_pem.as_bytes(), FileMode::Public)?,
            StagedFile::write_unsynced(&files.ca, bundle.as_bytes(), FileMode::Public)?,
        ];
        if let Some(key) = &leaf.key {
            let pem = key.to_pkcs8_pem();
            staged.push(StagedFile::write_unsynced(
                &files.key,
                pem.as_bytes(),
                FileMode::Private,
            )?);
        }
        let (synced, recorded) = std::thread::scope(|scope| {
            let synced = scope.spawn(|| StagedFile::sync_all(&staged));
            let recorded = self.store().commit_leaf(&leaf.record, None, now);
            (synced.join(), recorded)
        });
        recorded?;
        synced.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        StagedFile::commit_all(staged)?;
        if leaf.key.is_none() && files.key.symlink_metadata().is_ok() {
            // --force with a CSR: an old key.pem would not match the new
            // cert.pem, and tools that load the directory would break.
            std::fs::remove_file(&files.key).map_err(|e| crate::error::io_err(&files.key, e))?;
        }
        Ok(leaf)
    }

    /// Refuses a NAME that already has an active (unexpired, unrevoked,
    /// unsuperseded) leaf, or that appears twice in one batch.
    fn check_names_free<'a>(
        &self,
        names: impl Iterator<Item = &'a Name>,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        // A leaf from a revoked intermediate would be rejected everywhere.
        self.check_issuer_not_revoked()?;
        let mut seen = HashSet::new();
        for name in names {
            if !seen.insert(name.as_str().to_ascii_lowercase()) {
                return Err(Error::DuplicateName {
                    name: name.to_string(),
                    serial: "(earlier in this batch)".into(),
                });
            }
            for rec in self.store().by_name(name.as_str())? {
                if rec.kind == CertKind::Leaf && rec.status_at(now) == DisplayStatus::Active {
                    return Err(Error::DuplicateName {
                        name: name.to_string(),
                        serial: rec.serial.to_hex(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The SANs of a leaf: NAME, the extra ones, the CSR's, and the SPIFFE
    /// ID (when NAME can be a SPIFFE path: not for IPv6 addresses), without
    /// duplicates, in that order.
    pub(crate) fn leaf_sans(&self, request: &LeafRequest) -> Vec<San> {
        let mut sans = vec![request.name.san()];
        sans.extend(request.extra_sans.iter().cloned());
        if let LeafKey::Csr(csr) = &request.key {
            sans.extend(csr.sans().iter().cloned());
        }
        if let Ok(id) =
            minica_pki::identity::SpiffeId::new(self.trust_domain(), request.name.as_str())
        {
            sans.push(San::Uri(id.to_string()));
        }
        let mut seen = HashSet::new();
        sans.retain(|s| seen.insert(s.clone()));
        sans
    }

    pub(crate) fn sign_leaf(
        &self,
        request: &LeafRequest,
        now: OffsetDateTime,
    ) -> Result<IssuedLeaf, Error> {
        let (not_before, not_after) = params::window(now, request.validity, "--valid")?;
        let issuer = self.intermediate();
        if not_after > issuer.not_after() {
            return Err(Error::Validity(ValidityError::OutlivesIssuer {
                what: "the certificate (--valid)",
                not_after,
                issuer_not_after: issuer.not_after(),
            }));
        }
        let serial = self.fresh_serial()?;
        let sans = self.leaf_sans(request);
        let key_type = match &request.key {
            LeafKey::Generate(t) => *t,
            LeafKey::Csr(csr) => csr.key_type(),
        };
        let params = params::leaf(&LeafSpec {
            common_name: request.name.as_str(),
            sans: &sans,
            profile: request.profile,
            key_type,
            serial: &serial,
            not_before,
            not_after,
        })?;
        let sign = crypto("cannot sign the certificate");
        let (cert, key) = match &request.key {
            LeafKey::Generate(t) => {
                let key = PrivateKey::generate(*t)?;
                (
                    params.signed_by(&key, issuer.issuer()).map_err(sign)?,
                    Some(key),
                )
            }
            LeafKey::Csr(csr) => (
                params
                    .signed_by(csr.public_key(), issuer.issuer())
                    .map_err(sign)?,
                None,
            ),
        };
        let der = cert.der().to_vec();
        let mut chain_pem = cert.pem();
        // The intermediate, then during a root rotation's overlap the new
        // root's cross-certificate (see `crate::rotate`).
        chain_pem.push_str(&self.chain_tail_pem());
        let record = CertRecord {
            serial,
            name: request.name.to_string(),
            kind: CertKind::Leaf,
            profile: Some(request.profile),
            key_type,
            sans,
            not_before,
            not_after,
            issuer_serial: issuer.serial().clone(),
            status: Status::Active,
            revocation: None,
            superseded_by: None,
            renewed_from: None,
            key_generated: key.is_some(),
            cert_der: der,
        };
        Ok(IssuedLeaf {
            record,
            key,
            chain_pem,
        })
    }

    /// A random serial not yet in the ledger. A collision among 2^127
    /// values is not expected; the loop is bounded anyway.
    fn fresh_serial(&self) -> Result<Serial, Error> {
        let mut serial = Serial::random();
        for _ in 0..8 {
            if !self.store().contains(&serial)? {
                return Ok(serial);
            }
            serial = Serial::random();
        }
        Err(Error::Store(crate::error::StoreError::SerialExists(
            serial.to_hex(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::InitOptions;
    use crate::home::CaHome;
    use x509_parser::prelude::{FromDer, X509Certificate};

    fn ca(dir: &Path) -> Ca {
        Ca::init(&CaHome::new(dir.join("home")), &InitOptions::default()).unwrap()
    }

    fn req(name: &str) -> LeafRequest {
        LeafRequest::new(name.parse().unwrap())
    }

    #[test]
    fn leaf_has_the_leaf_profile() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca(dir.path());
        let mut r = req("svc-a");
        r.extra_sans = vec![San::ip("10.0.0.1").unwrap(), San::dns("svc-a").unwrap()];
        let leaf = ca.issue(&r).unwrap();
        let (_, x) = X509Certificate::from_der(&leaf.record.cert_der).unwrap();
        assert_eq!(x.subject().to_string(), "CN=svc-a");
        let bc = x.basic_constraints().unwrap().unwrap();
        assert!(!bc.value.ca);
        let ku = x.key_usage().unwrap().unwrap().value;
        assert!(ku.digital_signature() && !ku.key_encipherment() && !ku.key_cert_sign());
        let eku = x.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth);
        assert_eq!(
            leaf.record.sans,
            vec![
                San::Dns("svc-a".into()),
                San::Ip([10, 0, 0, 1].into()),
                San::Uri("spiffe://minica.internal/svc-a".into())
            ]
        );
        let v = x.validity();
        assert_eq!(
            (v.not_after.to_datetime() - v.not_before.to_datetime()).whole_seconds(),
            90 * 86_400 + 60
        );
        assert!(leaf.chain_pem().matches("BEGIN CERTIFICATE").count() == 2);
        assert!(x.raw_serial().len() >= 8 && x.raw_serial()[0] & 0x80 == 0);
    }

    #[test]
    fn duplicate_names_and_too_long_validity_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca(dir.path());
        ca.issue(&req("svc-a")).unwrap();
        let err = ca.issue(&req("SVC-A")).unwrap_err();
        assert!(err.to_string().contains("minica renew"), "{err}");
        let err = ca.issue_batch(&[req("b"), req("b")]).unwrap_err();
        assert!(matches!(err, Error::DuplicateName { .. }), "{err}");
        let mut r = req("c");
        r.validity = Duration::from_secs(20 * 365 * 86_400);
        let err = ca.issue(&r).unwrap_err();
        assert!(
            matches!(err, Error::Validity(ValidityError::OutlivesIssuer { .. })),
            "{err}"
        );
        assert_eq!(ca.records().unwrap().len(), 3);
    }

    #[test]
    fn batch_records_everything_with_distinct_serials() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca(dir.path());
        let reqs: Vec<_> = (0..50).map(|i| req(&format!("svc-{i}"))).collect();
        let leaves = ca.issue_batch(&reqs).unwrap();
        let serials: HashSet<_> = leaves.iter().map(|l| l.record.serial.clone()).collect();
        assert_eq!(serials.len(), 50);
        assert_eq!(ca.records().unwrap().len(), 52);
    }

    #[test]
    fn issue_to_dir_writes_files_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca(dir.path());
        let out = dir.path().join("out");
        ca.issue_to_dir(&req("a"), &out, Overwrite::Refuse).unwrap();
        let files = LeafFiles::in_dir(&out);
        for p in [&files.cert, &files.chain, &files.key, &files.ca] {
            assert!(p.is_file(), "{}", p.display());
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&files.key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let err = ca
            .issue_to_dir(&req("b"), &out, Overwrite::Refuse)
            .unwrap_err();
        assert!(matches!(err, Error::OutputExists { .. }), "{err}");
        assert!(ca.store().by_name("b").unwrap().is_empty());
        ca.issue_to_dir(&req("b"), &out, Overwrite::Replace)
            .unwrap();
    }
}

//! Rotation: a new intermediate under the current root, or a new root (and
//! intermediate) with a trust overlap; the generations a CA home keeps.
//!
//! # Design
//! Every CA certificate made by a rotation lives in `<home>/cas/` as
//! `<SERIAL>.pem` (and `<SERIAL>-key.pem`, 0600, except cross-certificates,
//! whose key is the intermediate's). `ca.json` names the current root and
//! intermediate, the cross-certificate of the current root, the
//! retired roots still trusted (the overlap of a root rotation) and the
//! retired intermediates (they keep publishing CRLs while they have
//! unexpired leaves). A home that was never rotated has no such entry: its
//! `root.pem` and `intermediate.pem` are current.
//!
//! `root.pem`, `root-key.pem`, `intermediate.pem`, `intermediate-key.pem`
//! and `bundle.pem` stay in place and always hold the current generation
//! (and the bundle every trusted root), for tools and scripts that read
//! them. After a rotation they are copies: [`load_generation`] rewrites any
//! that differ from what `ca.json` names.
//!
//! Order of a rotation, so that a crash leaves a CA that issues with either
//! the old or the new generation, never neither:
//! 1. sign the new certificates, record them in the ledger and flush;
//! 2. write every new file under `cas/` (new names: nothing in use changes;
//!    a home never rotated first gets copies of its current root and
//!    intermediate there);
//! 3. **switch**: rename the new `ca.json` over the old one (one atomic
//!    rename);
//! 4. rewrite the compatibility copies and the bundle (repaired on the next
//!    open if a crash stops this step);
//! 5. mark the replaced certificates superseded in the ledger.
//!
//! Root rotation and the path length: the root's pathLenConstraint is 1, so
//! the old root cannot cross-sign a new root *with a new name* (that would
//! put two CAs under the old root for clients that trust only it). The new
//! root keeps the old root's subject name, with a new key; the old root
//! signs a cross-certificate of it (same subject, new root's key, issuer
//! the old root). That certificate is self-issued, so it does not count
//! against the path length. A leaf issued during the overlap gets
//! `chain.pem` = leaf, intermediate, cross-certificate:
//! - a client that trusts only the old root: leaf → intermediate → cross →
//!   old root (OpenSSL looks for the intermediate's issuer in its trust
//!   store first, finds no root with that key, then takes the
//!   cross-certificate from the chain);
//! - a client with the new bundle (old + new roots) or, after `--finish`,
//!   only the new root: leaf → intermediate → new root (trusted first);
//!   leaves issued before the rotation: leaf → old intermediate → old root
//!   while it is in the bundle.
//!
//! The two roots are told apart by their key identifiers (AKI/SKI), which
//! OpenSSL, rustls-webpki and `minica verify` match. The cross-certificate
//! was made for the root, so an intermediate rotated during the overlap
//! uses it too.

use std::path::PathBuf;
use std::time::Duration;

use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::ca::{Ca, CaCert, CaConfig};
use crate::error::{crypto, CaFileError, Error, ValidityError};
use crate::home::CaHome;
use crate::key::PrivateKey;
use crate::params;
use crate::record::{CertKind, CertRecord, DisplayStatus, Status};
use crate::serial::Serial;
use minica_pki::atomic::{write_all_atomic, write_atomic, FileMode};
use zeroize::Zeroizing;

/// The directory (in the home) that keeps every CA certificate and key
/// made or archived by a rotation.
pub const CAS_DIR: &str = "cas";

/// What `ca.json` says about the generations (absent before the first
/// rotation).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Generation {
    /// The current root.
    pub(crate) root: Serial,
    /// The current intermediate (signs leaves).
    pub(crate) intermediate: Serial,
    /// Cross-certificates of the current root, signed by the retired roots
    /// (only during a root rotation's overlap).
    #[serde(default)]
    pub(crate) cross: Vec<Serial>,
    /// Old roots still in the bundle (until `rotate root --finish`).
    #[serde(default)]
    pub(crate) retired_roots: Vec<Serial>,
    /// Old intermediates (they publish CRLs while they have unexpired leaves).
    #[serde(default)]
    pub(crate) retired_intermediates: Vec<Serial>,
}

/// A cross-certificate: the current root's subject and key, signed by a
/// retired root (self-issued: both roots have the same subject name).
#[derive(Debug, Clone)]
pub struct CrossCert {
    /// Its serial.
    pub serial: Serial,
    /// The retired root that signed it.
    pub issuer_serial: Serial,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// The certificate, PEM.
    pub pem: String,
}

/// The CA certificates of a home besides the current root and intermediate.
#[derive(Debug, Default)]
pub struct Generations {
    pub(crate) cross: Vec<CrossCert>,
    pub(crate) retired_roots: Vec<CaCert>,
    pub(crate) retired_intermediates: Vec<CaCert>,
}

fn cert_path(home: &CaHome, serial: &Serial) -> PathBuf {
    home.dir()
        .join(CAS_DIR)
        .join(format!("{}.pem", serial.to_hex()))
}

fn key_path(home: &CaHome, serial: &Serial) -> PathBuf {
    home.dir()
        .join(CAS_DIR)
        .join(format!("{}-key.pem", serial.to_hex()))
}

fn load_cas(home: &CaHome, serial: &Serial) -> Result<CaCert, Error> {
    CaCert::load(&cert_path(home, serial), &key_path(home, serial))
}

/// Loads the current root and intermediate and the other generations that
/// `ca.json` names, and repairs the compatibility copies.
pub(crate) fn load_generation(
    home: &CaHome,
    config: &CaConfig,
) -> Result<(CaCert, CaCert, Generations), Error> {
    let Some(g) = &config.generation else {
        let root = CaCert::load(&home.root_cert_path(), &home.root_key_path())?;
        let intermediate = CaCert::load(
            &home.intermediate_cert_path(),
            &home.intermediate_key_path(),
        )?;
        return Ok((root, intermediate, Generations::default()));
    };
    let root = load_cas(home, &g.root)?;
    let intermediate = load_cas(home, &g.intermediate)?;
    let mut gens = Generations::default();
    for serial in &g.cross {
        let path = cert_path(home, serial);
        let der = minica_pki::pem::load_certs(&path)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::CaFile {
                path: path.clone(),
                reason: CaFileError::NoCertificate,
            })?;
        let (_, x) = X509Certificate::from_der(&der).map_err(|_| Error::CaFile {
            path: path.clone(),
            reason: CaFileError::NotACertificate,
        })?;
        gens.cross.push(CrossCert {
            serial: serial.clone(),
            issuer_serial: g
                .retired_roots
                .first()
                .cloned()
                .unwrap_or_else(|| g.root.clone()),
            not_after: x.validity().not_after.to_datetime(),
            pem: minica_pki::pem::encode_pem("CERTIFICATE", &der),
        });
    }
    for serial in &g.retired_roots {
        gens.retired_roots.push(load_cas(home, serial)?);
    }
    for serial in &g.retired_intermediates {
        gens.retired_intermediates.push(load_cas(home, serial)?);
    }
    write_compat_files(home, &root, &intermediate, &gens)?;
    Ok((root, intermediate, gens))
}

/// The trust bundle: the current root, then the retired roots still trusted.
fn bundle_of(root: &CaCert, gens: &Generations) -> String {
    let mut pem = root.pem().to_string();
    for r in &gens.retired_roots {
        pem.push_str(r.pem());
    }
    pem
}

/// Rewrites `root.pem`, `root-key.pem`, `intermediate.pem`,
/// `intermediate-key.pem` and `bundle.pem` where they differ from the
/// current generation.
fn write_compat_files(
    home: &CaHome,
    root: &CaCert,
    intermediate: &CaCert,
    gens: &Generations,
) -> Result<(), Error> {
    // Keys among them: every content is wiped when dropped.
    let files = [
        (
            home.root_cert_path(),
            Zeroizing::new(root.pem().to_string()),
            FileMode::Public,
        ),
        (
            home.root_key_path(),
            root.key().to_pkcs8_pem(),
            FileMode::Private,
        ),
        (
            home.intermediate_cert_path(),
            Zeroizing::new(intermediate.pem().to_string()),
            FileMode::Public,
        ),
        (
            home.intermediate_key_path(),
            intermediate.key().to_pkcs8_pem(),
            FileMode::Private,
        ),
        (
            home.bundle_path(),
            Zeroizing::new(bundle_of(root, gens)),
            FileMode::Public,
        ),
    ];
    for (path, content, mode) in files {
        let current = minica_pki::pem::read_secret_file(&path).ok();
        if current.as_ref().map(|c| c.as_slice()) != Some(content.as_bytes()) {
            write_atomic(&path, content.as_bytes(), mode)?;
        }
    }
    Ok(())
}

/// Why a rotation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RotationError {
    /// A root rotation is in its overlap: finish it first.
    #[error("a root rotation is not finished yet (the bundle still trusts the old root); run `minica rotate root --finish` first")]
    Unfinished,
    /// `--finish` without a root rotation in progress.
    #[error("no root rotation to finish (the bundle holds one root)")]
    NothingToFinish,
    /// `--finish` while leaves under the old root are still active.
    #[error("{count} active leaf certificate(s) still chain to the old root ({names}); renew them (`minica renew NAME`) or wait until they expire, or use --force")]
    OldRootInUse {
        /// How many.
        count: usize,
        /// Some of their names, comma separated.
        names: String,
    },
}

/// What a rotation made.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The new root, when the root was rotated: (serial, subject, not_after).
    pub root: Option<(Serial, String, OffsetDateTime)>,
    /// The new intermediate: (serial, subject, not_after).
    pub intermediate: (Serial, String, OffsetDateTime),
    /// The cross-certificates of the new intermediate (serial, issuer serial).
    pub cross: Vec<(Serial, Serial)>,
    /// The replaced intermediate's serial.
    pub old_intermediate: Serial,
}

/// What `rotate root --finish` did.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The roots removed from the bundle.
    pub removed_roots: Vec<Serial>,
    /// Active leaves that still chained to them (non-zero only with force).
    pub orphaned_leaves: usize,
}

/// A new CA certificate made by a rotation, with its files' content.
struct NewCa {
    cert: CaCert,
    key_pem: Zeroizing<String>,
    record: CertRecord,
}

fn ca_record(
    cert: &CaCert,
    kind: CertKind,
    issuer: &Serial,
    key_type: crate::key::KeyType,
) -> CertRecord {
    CertRecord {
        serial: cert.serial().clone(),
        name: cn_of(cert.subject()),
        kind,
        profile: None,
        key_type,
        sans: Vec::new(),
        not_before: cert.not_before(),
        not_after: cert.not_after(),
        issuer_serial: issuer.clone(),
        status: Status::Active,
        revocation: None,
        superseded_by: None,
        renewed_from: None,
        key_generated: true,
        cert_der: cert.der().to_vec(),
    }
}

/// The CN of an RFC 4514 subject (`O=minica, CN=x` → `x`).
fn cn_of(subject: &str) -> String {
    subject
        .split(", ")
        .find_map(|p| p.strip_prefix("CN="))
        .unwrap_or(subject)
        .to_string()
}

fn short(s: &Serial) -> String {
    s.to_hex().chars().take(8).collect()
}

impl Ca {
    /// The retired and cross-signed CA certificates.
    pub fn generations(&self) -> &Generations {
        &self.gens
    }

    /// The part of a new leaf's `chain.pem` after the leaf: the
    /// intermediate, then (during a root rotation's overlap) the
    /// cross-certificate of the current root.
    pub(crate) fn chain_tail_pem(&self) -> String {
        let mut pem = self.intermediate().pem().to_string();
        pem.extend(self.gens.cross.iter().map(|c| c.pem.as_str()));
        pem
    }

    /// The intermediates that publish a CRL: the current one, then every
    /// retired one that is unexpired and still has unexpired leaves.
    pub(crate) fn crl_intermediates(&self) -> Result<Vec<&CaCert>, Error> {
        let mut out = vec![self.intermediate()];
        if self.gens.retired_intermediates.is_empty() {
            return Ok(out);
        }
        let now = OffsetDateTime::now_utc();
        let records = self.store().all()?;
        for int in &self.gens.retired_intermediates {
            let has_leaves = records.iter().any(|r| {
                r.kind == CertKind::Leaf && &r.issuer_serial == int.serial() && r.not_after > now
            });
            if int.not_after() > now && has_leaves {
                out.push(int);
            }
        }
        Ok(out)
    }

    /// The roots that publish a CRL: the current one and, during a root
    /// rotation's overlap, the retired ones still in the bundle.
    pub(crate) fn crl_roots(&self) -> Vec<&CaCert> {
        let mut out = vec![self.root()];
        out.extend(self.gens.retired_roots.iter());
        out
    }

    /// The generation as it is now, without retired intermediates that
    /// have expired (their leaves have too: nothing left to publish).
    fn generation(&self) -> Generation {
        let now = OffsetDateTime::now_utc();
        let expired: Vec<&Serial> = self
            .gens
            .retired_intermediates
            .iter()
            .filter(|c| c.not_after() <= now)
            .map(|c| c.serial())
            .collect();
        let mut g = self
            .config
            .generation
            .clone()
            .unwrap_or_else(|| Generation {
                root: self.root().serial().clone(),
                intermediate: self.intermediate().serial().clone(),
                cross: Vec::new(),
                retired_roots: Vec::new(),
                retired_intermediates: Vec::new(),
            });
        g.retired_intermediates.retain(|s| !expired.contains(&s));
        g
    }

    /// True while a root rotation awaits `--finish`.
    pub fn root_rotation_unfinished(&self) -> bool {
        !self.gens.retired_roots.is_empty()
    }

    /// Signs a new intermediate under `root`, valid `validity` (or until
    /// the root's end when `None`).
    fn new_intermediate(&self, root: &CaCert, validity: Option<Duration>) -> Result<NewCa, Error> {
        let now = OffsetDateTime::now_utc();
        let (nb, mut na) = params::window(
            now,
            validity.unwrap_or(crate::ca::DEFAULT_INTERMEDIATE_VALIDITY),
            "--valid",
        )?;
        if na > root.not_after() {
            if validity.is_some() {
                return Err(Error::Validity(ValidityError::OutlivesIssuer {
                    what: "the intermediate (--valid)",
                    not_after: na,
                    issuer_not_after: root.not_after(),
                }));
            }
            na = root.not_after();
        }
        let key_type = self.key_type();
        let key = PrivateKey::generate(key_type)?;
        let serial = self.fresh_ca_serial()?;
        let cn = format!(
            "minica intermediate CA {} {}",
            self.trust_domain(),
            short(&serial)
        );
        let cert = params::intermediate(&cn, &serial, nb, na)
            .signed_by(&key, root.issuer())
            .map_err(crypto("cannot sign the intermediate certificate"))?;
        let key_pem = key.to_pkcs8_pem();
        let path = cert_path(self.home(), &serial);
        let cert = CaCert::from_parts(&path, cert.der().clone(), key)?;
        let record = ca_record(&cert, CertKind::Intermediate, root.serial(), key_type);
        Ok(NewCa {
            cert,
            key_pem,
            record,
        })
    }

    fn fresh_ca_serial(&self) -> Result<Serial, Error> {
        for _ in 0..8 {
            let serial = Serial::random();
            if !self.store().contains(&serial)? {
                return Ok(serial);
            }
        }
        Err(Error::Store(crate::error::StoreError::SerialExists(
            "random serial".into(),
        )))
    }

    /// Writes `ca.json` with `generation` (the switch: one atomic rename).
    fn switch(&self, generation: Generation) -> Result<(), Error> {
        let config = CaConfig {
            version: self.config.version,
            trust_domain: self.config.trust_domain.clone(),
            key_type: self.config.key_type,
            generation: Some(generation),
            ledger: self.config.ledger,
        };
        let path = self.home().config_path();
        let json = serde_json::to_vec_pretty(&config).map_err(|e| Error::CaFile {
            path: path.clone(),
            reason: CaFileError::BadConfig(e),
        })?;
        write_atomic(&path, &json, FileMode::Public)?;
        Ok(())
    }

    /// Steps 1 and 2 of a rotation (see the module docs): records, then the
    /// files under `cas/`. Nothing in use changes.
    fn stage(&self, new: &[&NewCa], crosses: &[(CertRecord, String)]) -> Result<(), Error> {
        let mut records: Vec<CertRecord> = new.iter().map(|n| n.record.clone()).collect();
        records.extend(crosses.iter().map(|(r, _)| r.clone()));
        self.store().insert(&records)?;
        let home = self.home();
        minica_pki::atomic::create_private_dir(&home.dir().join(CAS_DIR))?;
        // Keys among them: every content is wiped when dropped.
        let mut files: Vec<(PathBuf, Zeroizing<String>, FileMode)> = Vec::new();
        if self.config.generation.is_none() {
            for ca in [self.root(), self.intermediate()] {
                files.push((
                    cert_path(home, ca.serial()),
                    Zeroizing::new(ca.pem().into()),
                    FileMode::Public,
                ));
                files.push((
                    key_path(home, ca.serial()),
                    ca.key().to_pkcs8_pem(),
                    FileMode::Private,
                ));
            }
        }
        for n in new {
            let s = n.cert.serial();
            files.push((
                cert_path(home, s),
                Zeroizing::new(n.cert.pem().into()),
                FileMode::Public,
            ));
            files.push((key_path(home, s), n.key_pem.clone(), FileMode::Private));
        }
        for (r, pem) in crosses {
            files.push((
                cert_path(home, &r.serial),
                Zeroizing::new(pem.clone()),
                FileMode::Public,
            ));
        }
        let refs: Vec<(&std::path::Path, &[u8], FileMode)> = files
            .iter()
            .map(|(p, c, m)| (p.as_path(), c.as_bytes(), *m))
            .collect();
        write_all_atomic(&refs)?;
        Ok(())
    }

    /// Marks `old` superseded by `new` in the ledger (step 5).
    fn supersede(&self, pairs: &[(&Serial, &Serial)]) -> Result<(), Error> {
        let mut updated = Vec::new();
        for (old, new) in pairs {
            if let Some(mut rec) = self.store().get(old)? {
                if rec.status == Status::Active {
                    rec.status = Status::Superseded;
                    rec.superseded_by = Some((*new).clone());
                    updated.push(rec);
                }
            }
        }
        if !updated.is_empty() {
            self.store().commit(&[], &updated)?;
        }
        Ok(())
    }

    /// Rotation step 1-5 for a new intermediate (and maybe a new root).
    fn apply_rotation(
        &self,
        new_root: Option<NewCa>,
        new_int: NewCa,
        crosses: Vec<(CertRecord, String)>,
        generation: Generation,
    ) -> Result<Rotation, Error> {
        let mut staged: Vec<&NewCa> = Vec::new();
        if let Some(r) = &new_root {
            staged.push(r);
        }
        staged.push(&new_int);
        self.stage(&staged, &crosses)?;
        self.switch(generation.clone())?;
        // Step 4: the compatibility copies, from the new state.
        let home = self.home();
        let root = new_root.as_ref().map_or(self.root(), |r| &r.cert);
        let mut bundle = root.pem().to_string();
        for old in generation.retired_roots.iter() {
            let pem = if old == self.root().serial() {
                self.root().pem().to_string()
            } else if let Some(r) = self.gens.retired_roots.iter().find(|r| r.serial() == old) {
                r.pem().to_string()
            } else {
                continue;
            };
            bundle.push_str(&pem);
        }
        write_all_atomic(&[
            (
                &home.root_key_path(),
                root.key().to_pkcs8_pem().as_bytes(),
                FileMode::Private,
            ),
            (
                &home.root_cert_path(),
                root.pem().as_bytes(),
                FileMode::Public,
            ),
            (
                &home.intermediate_key_path(),
                new_int.key_pem.as_bytes(),
                FileMode::Private,
            ),
            (
                &home.intermediate_cert_path(),
                new_int.cert.pem().as_bytes(),
                FileMode::Public,
            ),
            (&home.bundle_path(), bundle.as_bytes(), FileMode::Public),
        ])?;
        let old_int = self.intermediate().serial().clone();
        let mut pairs = vec![(&old_int, new_int.cert.serial())];
        if let Some(r) = &new_root {
            pairs.push((self.root().serial(), r.cert.serial()));
        }
        self.supersede(&pairs)?;
        Ok(Rotation {
            root: new_root.as_ref().map(|r| {
                (
                    r.cert.serial().clone(),
                    r.cert.subject().to_string(),
                    r.cert.not_after(),
                )
            }),
            intermediate: (
                new_int.cert.serial().clone(),
                new_int.cert.subject().to_string(),
                new_int.cert.not_after(),
            ),
            cross: crosses
                .iter()
                .map(|(r, _)| (r.serial.clone(), r.issuer_serial.clone()))
                .collect(),
            old_intermediate: old_int,
        })
    }

    /// `minica rotate intermediate`: a new intermediate (new key) under the
    /// current root, valid `validity` (default: 5 years, never past the
    /// root). During a root rotation's overlap the retired roots
    /// cross-sign it too. The old intermediate is kept (its leaves keep
    /// verifying; it publishes its CRL while it has unexpired leaves).
    ///
    /// This `Ca` still holds the old generation afterwards: reopen it.
    pub fn rotate_intermediate(&self, validity: Option<Duration>) -> Result<Rotation, Error> {
        // Shared mode: hold the home for the duration (see `Ca`).
        let _home = self.lock_for_rewrite()?;
        let new_int = self.new_intermediate(self.root(), validity)?;
        let mut g = self.generation();
        g.retired_intermediates.push(g.intermediate.clone());
        g.intermediate = new_int.cert.serial().clone();
        // A root cross-certificate (overlap) stays: the new intermediate is
        // under the same root.
        self.apply_rotation(None, new_int, Vec::new(), g)
    }

    /// `minica rotate root`: a new root (valid `root_validity`, default 10
    /// years), a new intermediate under it (`intermediate_validity`,
    /// default 5 years, never past the new root) and a cross-certificate of
    /// the new intermediate signed by the old root. The bundle holds both
    /// roots until [`Ca::finish_root_rotation`].
    ///
    /// This `Ca` still holds the old generation afterwards: reopen it.
    pub fn rotate_root(
        &self,
        root_validity: Option<Duration>,
        intermediate_validity: Option<Duration>,
    ) -> Result<Rotation, Error> {
        let _home = self.lock_for_rewrite()?;
        if self.root_rotation_unfinished() {
            return Err(Error::Rotation(RotationError::Unfinished));
        }
        let now = OffsetDateTime::now_utc();
        let (nb, na) = params::window(
            now,
            root_validity.unwrap_or(crate::ca::DEFAULT_ROOT_VALIDITY),
            "--valid",
        )?;
        let key_type = self.key_type();
        let key = PrivateKey::generate(key_type)?;
        let serial = self.fresh_ca_serial()?;
        // The new root keeps the old root's subject name: the
        // cross-certificate (new root key, signed by the old root) is then
        // self-issued and does not count against pathLenConstraint 1.
        let old = self.root();
        let cn = cn_of(old.subject());
        let root_params = params::root(&cn, &serial, nb, na);
        let cert = root_params
            .self_signed(&key)
            .map_err(crypto("cannot sign the root certificate"))?;
        let cross_serial = self.fresh_ca_serial()?;
        let mut cp = root_params.clone();
        cp.serial_number = Some(cross_serial.to_rcgen());
        cp.not_after = na.min(old.not_after());
        cp.use_authority_key_identifier_extension = true;
        let cross = cp
            .signed_by(&key, old.issuer())
            .map_err(crypto("cannot sign the cross-certificate"))?;
        let key_pem = key.to_pkcs8_pem();
        let path = cert_path(self.home(), &serial);
        let root_cert = CaCert::from_parts(&path, cert.der().clone(), key)?;
        let record = ca_record(&root_cert, CertKind::Root, &serial, key_type);
        let cross_record = CertRecord {
            serial: cross_serial,
            name: cn,
            kind: CertKind::Intermediate,
            not_after: cp.not_after,
            issuer_serial: old.serial().clone(),
            cert_der: cross.der().to_vec(),
            ..record.clone()
        };
        let new_root = NewCa {
            cert: root_cert,
            key_pem,
            record,
        };
        let new_int = self.new_intermediate(&new_root.cert, intermediate_validity)?;
        let mut g = self.generation();
        g.retired_roots = vec![g.root.clone()];
        g.root = new_root.cert.serial().clone();
        g.retired_intermediates.push(g.intermediate.clone());
        g.intermediate = new_int.cert.serial().clone();
        g.cross = vec![cross_record.serial.clone()];
        self.apply_rotation(
            Some(new_root),
            new_int,
            vec![(cross_record, cross.pem())],
            g,
        )
    }

    /// Active leaves whose intermediate was signed by one of `roots`.
    fn active_leaves_under(&self, roots: &[Serial]) -> Result<Vec<CertRecord>, Error> {
        let now = OffsetDateTime::now_utc();
        let records = self.store().all()?;
        let ints: Vec<&Serial> = records
            .iter()
            .filter(|r| r.kind == CertKind::Intermediate && roots.contains(&r.issuer_serial))
            .map(|r| &r.serial)
            .collect();
        Ok(records
            .iter()
            .filter(|r| {
                r.kind == CertKind::Leaf
                    && r.status_at(now) == DisplayStatus::Active
                    && ints.contains(&&r.issuer_serial)
            })
            .cloned()
            .collect())
    }

    /// `minica rotate root --finish`: drops the retired roots from the
    /// bundle. Refuses while active leaves still chain to them, unless
    /// `force`.
    ///
    /// This `Ca` still holds the old generation afterwards: reopen it.
    pub fn finish_root_rotation(&self, force: bool) -> Result<Finished, Error> {
        let _home = self.lock_for_rewrite()?;
        let Some(mut g) = self.config.generation.clone() else {
            return Err(Error::Rotation(RotationError::NothingToFinish));
        };
        if g.retired_roots.is_empty() {
            return Err(Error::Rotation(RotationError::NothingToFinish));
        }
        // Leaves of the new intermediate are under the new root, although
        // its cross-certificate was signed by an old one.
        let mut in_use = self.active_leaves_under(&g.retired_roots)?;
        in_use.retain(|r| &r.issuer_serial != self.intermediate().serial());
        if !in_use.is_empty() && !force {
            let names: Vec<&str> = in_use.iter().take(5).map(|r| r.name.as_str()).collect();
            let more = if in_use.len() > 5 { ", ..." } else { "" };
            return Err(Error::Rotation(RotationError::OldRootInUse {
                count: in_use.len(),
                names: format!("{}{more}", names.join(", ")),
            }));
        }
        let removed = std::mem::take(&mut g.retired_roots);
        g.cross.clear();
        self.switch(g)?;
        write_atomic(
            &self.home().bundle_path(),
            self.root().pem().as_bytes(),
            FileMode::Public,
        )?;
        Ok(Finished {
            removed_roots: removed,
            orphaned_leaves: in_use.len(),
        })
    }
}

/// A rotation interrupted after step 2 (files staged, no switch): for the
/// crash tests.
#[cfg(test)]
impl Ca {
    fn stage_intermediate_rotation_only(&self) -> Result<Serial, Error> {
        let new_int = self.new_intermediate(self.root(), None)?;
        self.stage(&[&new_int], &[])?;
        Ok(new_int.cert.serial().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issue::LeafRequest;
    use crate::InitOptions;

    fn req(name: &str) -> LeafRequest {
        LeafRequest::new(name.parse().unwrap())
    }

    #[test]
    fn intermediate_rotation_keeps_old_leaves_and_signs_with_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let home = CaHome::new(dir.path());
        let ca = Ca::init(&home, &InitOptions::default()).unwrap();
        let old = ca.issue(&req("a")).unwrap();
        let old_int = ca.intermediate().serial().clone();
        let rot = ca.rotate_intermediate(None).unwrap();
        drop(ca);
        let ca = Ca::open(&home).unwrap();
        assert_eq!(ca.intermediate().serial(), &rot.intermediate.0);
        assert_eq!(ca.generations().retired_intermediates.len(), 1);
        let new = ca.issue(&req("b")).unwrap();
        assert_eq!(new.record.issuer_serial, rot.intermediate.0);
        assert_eq!(old.record.issuer_serial, old_int);
        let crls = ca.build_crls(Duration::from_secs(3600)).unwrap();
        assert_eq!(crls.crls.len(), 3, "current, retired (has leaves), root");
        let stored = ca.store().get(&old_int).unwrap().unwrap();
        assert_eq!(stored.status, Status::Superseded);
        let pem = std::fs::read_to_string(home.intermediate_cert_path()).unwrap();
        assert_eq!(pem, ca.intermediate().pem());
    }

    #[test]
    fn a_rotation_stopped_before_the_switch_leaves_the_old_generation_working() {
        let dir = tempfile::tempdir().unwrap();
        let home = CaHome::new(dir.path());
        let ca = Ca::init(&home, &InitOptions::default()).unwrap();
        let old_int = ca.intermediate().serial().clone();
        let staged = ca.stage_intermediate_rotation_only().unwrap();
        drop(ca);
        let ca = Ca::open(&home).unwrap();
        assert_eq!(ca.intermediate().serial(), &old_int);
        assert_ne!(&staged, &old_int);
        ca.issue(&req("a")).unwrap();
        // A later rotation completes normally.
        ca.rotate_intermediate(None).unwrap();
        drop(ca);
        let ca = Ca::open(&home).unwrap();
        assert_ne!(ca.intermediate().serial(), &old_int);
        ca.issue(&req("b")).unwrap();
    }

    #[test]
    fn root_rotation_cross_signs_and_finish_checks_old_leaves() {
        let dir = tempfile::tempdir().unwrap();
        let home = CaHome::new(dir.path());
        let ca = Ca::init(&home, &InitOptions::default()).unwrap();
        ca.issue(&req("old")).unwrap();
        let old_root = ca.root().serial().clone();
        ca.rotate_root(None, None).unwrap();
        drop(ca);
        let ca = Ca::open(&home).unwrap();
        assert!(ca.root_rotation_unfinished());
        assert_eq!(
            ca.bundle_pem()
                .unwrap()
                .matches("BEGIN CERTIFICATE")
                .count(),
            2
        );
        let leaf = ca.issue(&req("new")).unwrap();
        assert_eq!(leaf.chain_pem().matches("BEGIN CERTIFICATE").count(), 3);
        let cross = &ca.generations().cross[0];
        let rec = ca.store().get(&cross.serial).unwrap().unwrap();
        assert_eq!(rec.issuer_serial, old_root);
        let err = ca.rotate_root(None, None).unwrap_err();
        assert!(
            matches!(err, Error::Rotation(RotationError::Unfinished)),
            "{err}"
        );
        let err = ca.finish_root_rotation(false).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Rotation(RotationError::OldRootInUse { count: 1, .. })
            ),
            "{err}"
        );
        let done = ca.finish_root_rotation(true).unwrap();
        assert_eq!(done.removed_roots, vec![old_root]);
        drop(ca);
        let ca = Ca::open(&home).unwrap();
        assert!(!ca.root_rotation_unfinished());
        assert_eq!(
            ca.bundle_pem()
                .unwrap()
                .matches("BEGIN CERTIFICATE")
                .count(),
            1
        );
        let leaf = ca.issue(&req("later")).unwrap();
        assert_eq!(leaf.chain_pem().matches("BEGIN CERTIFICATE").count(), 2);
    }
}

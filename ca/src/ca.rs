//! The [`Ca`]: a CA home opened for use (locked, keys loaded, ledger open).

use std::path::Path;
use std::time::Duration;

use rcgen::Issuer;
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::{crypto, io_err, CaFileError, Error, ValidityError};
use crate::home::CaHome;
use crate::key::{KeyType, PrivateKey};
use crate::lock::HomeLock;
use crate::params;
use crate::record::{CertKind, CertRecord, Status};
use crate::serial::Serial;
use crate::store::{Engine, RedbStore, Store};

/// Default trust domain of SPIFFE IDs.
pub const DEFAULT_TRUST_DOMAIN: &str = "minica.internal";
/// Default root validity: 10 years, so roots are rarely rotated.
pub const DEFAULT_ROOT_VALIDITY: Duration = Duration::from_secs(10 * 365 * 86_400);
/// Default intermediate validity: 5 years, half the root's, so it can be
/// replaced well before the root expires.
pub const DEFAULT_INTERMEDIATE_VALIDITY: Duration = Duration::from_secs(5 * 365 * 86_400);

/// Settings for a new CA (`minica init`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitOptions {
    /// Trust domain of the SPIFFE IDs in leaves.
    pub trust_domain: String,
    /// Key type of the root and intermediate.
    pub key_type: KeyType,
    /// Root validity.
    pub root_validity: Duration,
    /// Intermediate validity (at most the root's).
    pub intermediate_validity: Duration,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            trust_domain: DEFAULT_TRUST_DOMAIN.to_string(),
            key_type: KeyType::EcdsaP256,
            root_validity: DEFAULT_ROOT_VALIDITY,
            intermediate_validity: DEFAULT_INTERMEDIATE_VALIDITY,
        }
    }
}

impl InitOptions {
    /// Checks the options without creating anything.
    pub fn validate(&self) -> Result<(), Error> {
        self.windows(OffsetDateTime::now_utc()).map(|_| ())
    }

    /// The root's and the intermediate's validity windows from `now`.
    fn windows(
        &self,
        now: OffsetDateTime,
    ) -> Result<
        (
            OffsetDateTime,
            OffsetDateTime,
            OffsetDateTime,
            OffsetDateTime,
        ),
        Error,
    > {
        minica_pki::identity::validate_trust_domain(&self.trust_domain)?;
        let (root_nb, root_na) = params::window(now, self.root_validity, "--root-valid")?;
        let (int_nb, int_na) =
            params::window(now, self.intermediate_validity, "--intermediate-valid")?;
        if int_na > root_na {
            return Err(Error::Validity(ValidityError::OutlivesIssuer {
                what: "the intermediate (--intermediate-valid)",
                not_after: int_na,
                issuer_not_after: root_na,
            }));
        }
        Ok((root_nb, root_na, int_nb, int_na))
    }
}

/// What [`Ca::open_or_init`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// The CA existed.
    Existing,
    /// The CA was created just now.
    Created,
}

/// `ca.json`: the CA's settings. Written last by `init`: its presence means
/// the CA is complete.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct CaConfig {
    pub(crate) version: u32,
    pub(crate) trust_domain: String,
    pub(crate) key_type: KeyType,
    /// Which CA certificates are current and which are kept after a
    /// rotation (`None` until the first rotation: then the files
    /// `root.pem` and `intermediate.pem` are current). See [`crate::rotate`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) generation: Option<crate::rotate::Generation>,
    /// Where the ledger is (absent: embedded, as before this field existed).
    #[serde(default, skip_serializing_if = "is_embedded")]
    pub(crate) ledger: Engine,
}

fn is_embedded(engine: &Engine) -> bool {
    *engine == Engine::Embedded
}

/// A CA certificate with its private key, ready to sign.
pub struct CaCert {
    der: CertificateDer<'static>,
    pem: String,
    serial: Serial,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    subject: String,
    issuer: Issuer<'static, PrivateKey>,
}

impl std::fmt::Debug for CaCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaCert")
            .field("subject", &self.subject)
            .field("serial", &self.serial)
            .field("not_after", &self.not_after)
            .field("key", &"[elided]")
            .finish()
    }
}

impl CaCert {
    pub(crate) fn from_parts(
        path: &Path,
        der: CertificateDer<'static>,
        key: PrivateKey,
    ) -> Result<Self, Error> {
        let bad = |reason: CaFileError| Error::CaFile {
            path: path.to_path_buf(),
            reason,
        };
        let (_, cert) =
            X509Certificate::from_der(&der).map_err(|_| bad(CaFileError::NotACertificate))?;
        if cert.public_key().raw != key.public_key_der().as_slice() {
            return Err(bad(CaFileError::KeyMismatch));
        }
        let serial = Serial::from_bytes(cert.raw_serial());
        let not_before = cert.validity().not_before.to_datetime();
        let not_after = cert.validity().not_after.to_datetime();
        let subject = cert.subject().to_string();
        let issuer = Issuer::from_ca_cert_der(&der, key)
            .map_err(|e| bad(CaFileError::BadCaCertificate(e)))?;
        Ok(CaCert {
            pem: minica_pki::pem::encode_pem("CERTIFICATE", &der),
            der,
            serial,
            not_before,
            not_after,
            subject,
            issuer,
        })
    }

    pub(crate) fn load(cert_path: &Path, key_path: &Path) -> Result<Self, Error> {
        let der = minica_pki::pem::load_certs(cert_path)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::CaFile {
                path: cert_path.to_path_buf(),
                reason: CaFileError::NoCertificate,
            })?;
        let key = PrivateKey::load(key_path)?;
        Self::from_parts(cert_path, der, key)
    }

    /// The certificate, DER.
    pub fn der(&self) -> &CertificateDer<'static> {
        &self.der
    }

    /// The certificate, PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// Its serial.
    pub fn serial(&self) -> &Serial {
        &self.serial
    }

    /// Start of validity.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// End of validity.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// The subject, RFC 4514 style.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The private key.
    pub fn key(&self) -> &PrivateKey {
        self.issuer.key()
    }

    /// An rcgen issuer (subject, key identifier, key), e.g. to sign a CRL
    /// with `rcgen::CertificateRevocationListParams::signed_by`.
    pub fn issuer(&self) -> &Issuer<'static, PrivateKey> {
        &self.issuer
    }
}

/// An open CA: its keys loaded, its ledger open, and (when opened with
/// [`Ca::open`] or [`Ca::init`]) its home locked. Dropping it releases the
/// lock.
///
/// Two ways to hold a home:
/// - **exclusive** ([`Ca::open`], [`Ca::init`], [`Ca::open_or_init`],
///   [`Ca::open_with_store`]): the home's `lock` is held for the lifetime of
///   the `Ca`; the embedded ledger needs this (one process at a time).
/// - **shared** ([`Ca::open_shared`]): the home's files are only read; the
///   ledger is a store that serialises concurrent writers itself (PostgreSQL,
///   or [`crate::store::RemoteStore`] forwarding to the process that holds
///   the home). Operations that rewrite CA files in the home (rotations)
///   take the lock for their duration and refuse to run on a generation
///   another process has rotated since. A process that keeps a `Ca` open
///   (`minica serve`) must be restarted after a rotation to sign with the
///   new generation.
#[derive(Debug)]
pub struct Ca {
    home: CaHome,
    pub(crate) config: CaConfig,
    root: CaCert,
    intermediate: CaCert,
    /// Retired and cross-signed CA certificates (after rotations).
    pub(crate) gens: crate::rotate::Generations,
    store: Box<dyn Store>,
    // Dropped last: the store is closed before another process may open it.
    // `None` in shared mode.
    lock: Option<HomeLock>,
}

impl Ca {
    /// Creates a CA in `home` (with the embedded ledger in `home/ledger.redb`).
    /// Refuses with [`Error::CaExists`] when one is there.
    pub fn init(home: &CaHome, options: &InitOptions) -> Result<Ca, Error> {
        options.validate()?;
        let lock = lock(home)?;
        if home.has_ca() {
            return Err(Error::CaExists {
                home: home.dir().to_path_buf(),
            });
        }
        let store = open_embedded(home)?;
        Self::create(home, options, store, Some(lock))
    }

    /// Opens the CA in `home` (with the embedded ledger), waiting for another
    /// process's lock up to the home's lock timeout.
    pub fn open(home: &CaHome) -> Result<Ca, Error> {
        no_ca_unless(home)?;
        let lock = lock(home)?;
        if !home.has_ca() {
            return Err(Error::NoCa {
                home: home.dir().to_path_buf(),
            });
        }
        // Before redb creates a ledger file in a home whose ledger is
        // elsewhere.
        check_engine(home, &read_config(home)?, Engine::Embedded)?;
        let store = open_embedded(home)?;
        Self::load(home, store, Some(lock))
    }

    /// Opens the CA in `home`, creating it with `options` first if there is
    /// none (atomically with respect to other minica processes).
    pub fn open_or_init(home: &CaHome, options: &InitOptions) -> Result<(Ca, Opened), Error> {
        options.validate()?;
        let lock = lock(home)?;
        if home.has_ca() {
            check_engine(home, &read_config(home)?, Engine::Embedded)?;
        }
        let store = open_embedded(home)?;
        if home.has_ca() {
            Ok((Self::load(home, store, Some(lock))?, Opened::Existing))
        } else {
            Ok((
                Self::create(home, options, store, Some(lock))?,
                Opened::Created,
            ))
        }
    }

    /// Opens the CA in `home` with another ledger engine.
    pub fn open_with_store(home: &CaHome, store: Box<dyn Store>) -> Result<Ca, Error> {
        no_ca_unless(home)?;
        let lock = lock(home)?;
        if !home.has_ca() {
            return Err(Error::NoCa {
                home: home.dir().to_path_buf(),
            });
        }
        Self::load(home, store, Some(lock))
    }

    /// Opens the CA in `home` in shared mode (see [`Ca`]): loads the CA files
    /// without holding the home's lock, with a ledger that serialises
    /// concurrent writers itself (PostgreSQL, or a
    /// [`crate::store::RemoteStore`] to a running `minica serve`). Never use
    /// it with a [`crate::store::RedbStore`]: it needs the lock.
    pub fn open_shared(home: &CaHome, store: Box<dyn Store>) -> Result<Ca, Error> {
        no_ca_unless(home)?;
        Self::load(home, store, None)
    }

    /// Creates a CA in `home` with another ledger engine. The home's lock
    /// is held while the CA is created; the returned `Ca` keeps it (drop it
    /// and use [`Ca::open_shared`] for a shared store).
    pub fn init_with_store(
        home: &CaHome,
        options: &InitOptions,
        store: Box<dyn Store>,
    ) -> Result<Ca, Error> {
        options.validate()?;
        let lock = lock(home)?;
        if home.has_ca() {
            return Err(Error::CaExists {
                home: home.dir().to_path_buf(),
            });
        }
        Self::create(home, options, store, Some(lock))
    }

    fn load(home: &CaHome, store: Box<dyn Store>, lock: Option<HomeLock>) -> Result<Ca, Error> {
        let config = read_config(home)?;
        check_engine(home, &config, store.engine())?;
        // After a rotation, ca.json names the current generation.
        let (root, intermediate, gens) = crate::rotate::load_generation(home, &config)?;
        Ok(Ca {
            home: home.clone(),
            config,
            root,
            intermediate,
            gens,
            store,
            lock,
        })
    }

    /// Makes the root and intermediate, records them (durably), then writes
    /// the key and certificate files, and `ca.json` last.
    fn create(
        home: &CaHome,
        options: &InitOptions,
        store: Box<dyn Store>,
        lock: Option<HomeLock>,
    ) -> Result<Ca, Error> {
        let (root_nb, root_na, int_nb, int_na) = options.windows(OffsetDateTime::now_utc())?;
        let td = &options.trust_domain;
        let root_key = PrivateKey::generate(options.key_type)?;
        let int_key = PrivateKey::generate(options.key_type)?;
        let root_serial = Serial::random();
        let int_serial = Serial::random();
        let short = |s: &Serial| s.to_hex()[..8].to_string();
        let root_cn = format!("minica root CA {td} {}", short(&root_serial));
        let int_cn = format!("minica intermediate CA {td} {}", short(&int_serial));

        let root_params = params::root(&root_cn, &root_serial, root_nb, root_na);
        let root_cert = root_params
            .self_signed(&root_key)
            .map_err(crypto("cannot sign the root certificate"))?;
        let root_issuer = Issuer::new(root_params, root_key);
        let int_params = params::intermediate(&int_cn, &int_serial, int_nb, int_na);
        let int_cert = int_params
            .signed_by(&int_key, &root_issuer)
            .map_err(crypto("cannot sign the intermediate certificate"))?;
        let root_key = root_issuer.key();

        let record = |serial: &Serial, cn: &str, kind, nb, na, der: &[u8]| CertRecord {
            serial: serial.clone(),
            name: cn.to_string(),
            kind,
            profile: None,
            key_type: options.key_type,
            sans: Vec::new(),
            not_before: nb,
            not_after: na,
            issuer_serial: root_serial.clone(),
            status: Status::Active,
            revocation: None,
            superseded_by: None,
            renewed_from: None,
            key_generated: true,
            cert_der: der.to_vec(),
        };
        store.insert(&[
            record(
                &root_serial,
                &root_cn,
                CertKind::Root,
                root_nb,
                root_na,
                root_cert.der(),
            ),
            record(
                &int_serial,
                &int_cn,
                CertKind::Intermediate,
                int_nb,
                int_na,
                int_cert.der(),
            ),
        ])?;

        use minica_pki::atomic::{write_all_atomic, write_atomic, FileMode};
        let root_pem = root_cert.pem();
        let (root_key_pem, int_key_pem) = (root_key.to_pkcs8_pem(), int_key.to_pkcs8_pem());
        let int_pem = int_cert.pem();
        write_all_atomic(&[
            (
                &home.root_key_path(),
                root_key_pem.as_bytes(),
                FileMode::Private,
            ),
            (
                &home.intermediate_key_path(),
                int_key_pem.as_bytes(),
                FileMode::Private,
            ),
            (
                &home.root_cert_path(),
                root_pem.as_bytes(),
                FileMode::Public,
            ),
            (
                &home.intermediate_cert_path(),
                int_pem.as_bytes(),
                FileMode::Public,
            ),
            (&home.bundle_path(), root_pem.as_bytes(), FileMode::Public),
        ])?;
        let config = CaConfig {
            version: 1,
            trust_domain: options.trust_domain.clone(),
            key_type: options.key_type,
            generation: None,
            ledger: store.engine(),
        };
        let json = serde_json::to_vec_pretty(&config).map_err(|e| Error::CaFile {
            path: home.config_path(),
            reason: CaFileError::BadConfig(e),
        })?;
        write_atomic(&home.config_path(), &json, FileMode::Public)?;
        Self::load(home, store, lock)
    }

    /// The home.
    pub fn home(&self) -> &CaHome {
        &self.home
    }

    /// The SPIFFE trust domain.
    pub fn trust_domain(&self) -> &str {
        &self.config.trust_domain
    }

    /// The key type of the CA keys.
    pub fn key_type(&self) -> KeyType {
        self.config.key_type
    }

    /// The current root.
    pub fn root(&self) -> &CaCert {
        &self.root
    }

    /// The current intermediate (signs leaves).
    pub fn intermediate(&self) -> &CaCert {
        &self.intermediate
    }

    /// The trust bundle (every trusted root), PEM.
    pub fn bundle_pem(&self) -> Result<String, Error> {
        let path = self.home.bundle_path();
        std::fs::read_to_string(&path).map_err(|e| io_err(&path, e))
    }

    /// The ledger.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Every certificate in the ledger.
    pub fn records(&self) -> Result<Vec<CertRecord>, Error> {
        Ok(self.store.all()?)
    }

    /// True when this `Ca` holds the home's lock for its lifetime (opened
    /// exclusively), false in shared mode ([`Ca::open_shared`]).
    pub fn is_exclusive(&self) -> bool {
        self.lock.is_some()
    }

    /// For an operation that rewrites CA files in the home (a rotation):
    /// nothing when this `Ca` already holds the lock; in shared mode, takes
    /// the lock (waiting up to the home's lock timeout) and checks that
    /// `ca.json` still names the generation this `Ca` loaded, so that two
    /// processes never rotate from the same old generation. The lock is
    /// held until the returned guard is dropped.
    pub(crate) fn lock_for_rewrite(&self) -> Result<Option<HomeLock>, Error> {
        if self.lock.is_some() {
            return Ok(None);
        }
        let guard = lock(&self.home)?;
        let on_disk = read_config(&self.home)?;
        if on_disk.generation != self.config.generation {
            return Err(Error::StaleGeneration {
                home: self.home.dir().to_path_buf(),
            });
        }
        Ok(Some(guard))
    }
}

/// Fails without touching the disk when the home holds no CA.
fn no_ca_unless(home: &CaHome) -> Result<(), Error> {
    if home.has_ca() {
        Ok(())
    } else {
        Err(Error::NoCa {
            home: home.dir().to_path_buf(),
        })
    }
}

/// Reads `ca.json`.
fn read_config(home: &CaHome) -> Result<CaConfig, Error> {
    let path = home.config_path();
    let bytes = minica_pki::pem::read_file(&path)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::CaFile {
        path,
        reason: CaFileError::BadConfig(e),
    })
}

/// Refuses a store of another engine than the one `ca.json` records.
fn check_engine(home: &CaHome, config: &CaConfig, given: Engine) -> Result<(), Error> {
    if config.ledger == given {
        Ok(())
    } else {
        Err(Error::WrongLedger {
            home: home.dir().to_path_buf(),
            recorded: config.ledger,
            given,
        })
    }
}

fn lock(home: &CaHome) -> Result<HomeLock, Error> {
    home.create()?;
    HomeLock::acquire(&home.lock_path(), home.lock_timeout())
}

/// Opens the embedded ledger, first importing the sled ledger of an
/// earlier version if the home has one and no redb ledger yet.
fn open_embedded(home: &CaHome) -> Result<Box<dyn Store>, Error> {
    let path = home.ledger_path();
    let sled = home.sled_ledger_path();
    if crate::store::needs_sled_import(&sled, &path) {
        crate::store::import_sled_ledger(&sled, &path)?;
    }
    Ok(Box::new(RedbStore::open(&path)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::extensions::ParsedExtension;

    fn fast() -> InitOptions {
        InitOptions::default()
    }

    #[test]
    fn init_then_open_and_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let home = CaHome::new(dir.path().join("home"));
        let ca = Ca::init(&home, &fast()).unwrap();
        let root_serial = ca.root().serial().clone();
        assert_eq!(ca.records().unwrap().len(), 2);
        drop(ca);
        let err = Ca::init(&home, &fast()).unwrap_err();
        assert!(matches!(err, Error::CaExists { .. }), "{err}");
        let ca = Ca::open(&home).unwrap();
        assert_eq!(ca.root().serial(), &root_serial);
        assert_eq!(ca.trust_domain(), DEFAULT_TRUST_DOMAIN);
        assert!(ca.bundle_pem().unwrap().contains("BEGIN CERTIFICATE"));
        assert!(format!("{ca:?}").contains("[elided]"));
    }

    #[test]
    fn ca_certificates_have_the_right_constraints() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(&CaHome::new(dir.path()), &fast()).unwrap();
        for (cert, path_len) in [(ca.root(), 1), (ca.intermediate(), 0)] {
            let (_, x) = X509Certificate::from_der(cert.der()).unwrap();
            let bc = x.basic_constraints().unwrap().unwrap();
            assert!(bc.critical && bc.value.ca);
            assert_eq!(bc.value.path_len_constraint, Some(path_len));
            let ku = x.key_usage().unwrap().unwrap();
            assert!(ku.critical && ku.value.key_cert_sign() && ku.value.crl_sign());
            assert!(x.extensions().iter().any(|e| matches!(
                e.parsed_extension(),
                ParsedExtension::SubjectKeyIdentifier(_)
            )));
        }
        let (_, int) = X509Certificate::from_der(ca.intermediate().der()).unwrap();
        assert!(int.extensions().iter().any(|e| matches!(
            e.parsed_extension(),
            ParsedExtension::AuthorityKeyIdentifier(_)
        )));
        assert_eq!(
            int.issuer(),
            X509Certificate::from_der(ca.root().der())
                .unwrap()
                .1
                .subject()
        );
    }

    #[test]
    fn intermediate_may_not_outlive_root_and_bad_trust_domain_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let home = CaHome::new(dir.path());
        let opts = InitOptions {
            root_validity: Duration::from_secs(86_400),
            intermediate_validity: Duration::from_secs(2 * 86_400),
            ..fast()
        };
        let err = Ca::init(&home, &opts).unwrap_err();
        assert!(err.to_string().contains("--intermediate-valid"), "{err}");
        let opts = InitOptions {
            trust_domain: "Bad Domain".into(),
            ..fast()
        };
        assert!(Ca::init(&home, &opts).is_err());
        assert!(!home.has_ca());
    }

    #[test]
    fn a_home_is_never_opened_with_another_ledger_than_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let home = CaHome::new(dir.path().join("h"));
        drop(Ca::init(&home, &fast()).unwrap());
        let json = std::fs::read_to_string(home.config_path()).unwrap();
        assert!(!json.contains("ledger"), "embedded is the default: {json}");
        let mut config: serde_json::Value = serde_json::from_str(&json).unwrap();
        config["ledger"] = "postgres".into();
        std::fs::write(home.config_path(), config.to_string()).unwrap();
        for err in [
            Ca::open(&home).unwrap_err(),
            Ca::open_or_init(&home, &fast()).unwrap_err(),
        ] {
            assert!(matches!(err, Error::WrongLedger { .. }), "{err}");
            assert!(err.to_string().contains("--store postgres://"), "{err}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_group_readable_ca_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let home = CaHome::new(dir.path());
        drop(Ca::init(&home, &fast()).unwrap());
        let key = home.intermediate_key_path();
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = Ca::open(&home).unwrap_err().to_string();
        assert!(
            err.contains("intermediate-key.pem") && err.contains("chmod 600"),
            "{err}"
        );
    }

    /// An embedded ledger served on a socket by a thread: a store that several
    /// `Ca`s in shared mode can use at once, as with `minica serve`.
    fn served_ledger(dir: &Path) -> std::path::PathBuf {
        use std::sync::Arc;
        let store = Arc::new(RedbStore::open(&dir.join("shared-ledger.redb")).unwrap());
        let sock = dir.join("test.sock");
        let listener = crate::store::bind_private(&sock).unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let store = Arc::clone(&store);
                std::thread::spawn(move || crate::store::serve_connection(store.as_ref(), stream));
            }
        });
        sock
    }

    #[test]
    fn shared_mode_holds_no_lock_and_rotations_lock_and_check_the_generation() {
        use crate::store::RemoteStore;
        let dir = tempfile::tempdir().unwrap();
        let sock = served_ledger(dir.path());
        let remote = || Box::new(RemoteStore::connect(&sock).unwrap());
        let home =
            CaHome::new(dir.path().join("home")).with_lock_timeout(Duration::from_millis(200));
        drop(Ca::init_with_store(&home, &fast(), remote()).unwrap());
        let a = Ca::open_shared(&home, remote()).unwrap();
        let b = Ca::open_shared(&home, remote()).unwrap();
        assert!(!a.is_exclusive());
        // Both are open at once, and the home's lock is free.
        let held = HomeLock::acquire(&home.lock_path(), Duration::from_millis(200)).unwrap();
        // A rotation waits for the lock (here: gives up).
        let err = a.rotate_intermediate(None).unwrap_err();
        assert!(matches!(err, Error::LockTimeout { .. }), "{err}");
        drop(held);
        a.rotate_intermediate(None).unwrap();
        // `b` still has the old generation: it may not rotate from it.
        let err = b.rotate_intermediate(None).unwrap_err();
        assert!(matches!(err, Error::StaleGeneration { .. }), "{err}");
        assert!(err.to_string().contains("run the command again"), "{err}");
        let c = Ca::open_shared(&home, remote()).unwrap();
        assert_ne!(c.intermediate().serial(), b.intermediate().serial());
        // Records from every process are in the one ledger.
        assert_eq!(c.records().unwrap().len(), 3);
        let err = Ca::open_shared(&CaHome::new(dir.path().join("none")), remote()).unwrap_err();
        assert!(matches!(err, Error::NoCa { .. }), "{err}");
    }
}

//! Identity directories: the files `minica issue` writes (`cert.pem`,
//! `chain.pem`, `key.pem` 0600, `ca.pem`), read back for renewal, checked
//! against what the CA answered, and written atomically.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use minica_pki::atomic::{create_private_dir, FileMode, StagedFile};
use minica_pki::keygen::KeyType;
use minica_pki::pem;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
use zeroize::Zeroizing;

use crate::api::CertResponse;
use crate::client::ClientIdentity;
use crate::csr::San;
use crate::error::{Error, IdentityError};
use crate::trust::CaUrl;

pub use minica_pki::files::IdentityFiles;

/// Refuses (naming the first one) when any of `files` exists.
pub fn check_absent(files: &IdentityFiles) -> Result<(), Error> {
    match files.first_existing() {
        Some(path) => Err(Error::Identity {
            path: path.to_path_buf(),
            reason: IdentityError::Exists,
        }),
        None => Ok(()),
    }
}

/// What a leaf certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafInfo {
    /// Subject CN, if any.
    pub common_name: Option<String>,
    /// Its SANs (DNS, IP, URI), in order.
    pub sans: Vec<San>,
    /// Serial, lowercase hex.
    pub serial: String,
    /// notBefore, unix seconds.
    pub not_before: i64,
    /// notAfter, unix seconds.
    pub not_after: i64,
    /// The DER SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
}

impl LeafInfo {
    /// Reads a certificate; `path` names it in errors.
    pub fn parse(path: &Path, der: &[u8]) -> Result<Self, Error> {
        let bad = |reason: String| Error::Identity {
            path: path.to_path_buf(),
            reason: IdentityError::BadCertificate(reason),
        };
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| bad(e.to_string()))?;
        let common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_string);
        Ok(LeafInfo {
            common_name,
            sans: sans_of(&cert),
            serial: hex::encode(cert.raw_serial()),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            spki: cert.public_key().raw.to_vec(),
        })
    }

    /// The name to put in a CSR's CN: the CN, else the first DNS or IP SAN.
    pub fn name(&self) -> Option<String> {
        self.common_name.clone().or_else(|| {
            self.sans.iter().find_map(|s| match s {
                San::Dns(d) => Some(d.clone()),
                San::Ip(a) => Some(a.to_string()),
                San::Uri(_) => None,
            })
        })
    }
}

fn sans_of(cert: &X509Certificate<'_>) -> Vec<San> {
    let Ok(Some(ext)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    ext.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(San::Dns(d.to_ascii_lowercase())),
            GeneralName::URI(u) => Some(San::Uri((*u).to_string())),
            GeneralName::IPAddress(b) => match b.len() {
                4 => <[u8; 4]>::try_from(*b)
                    .ok()
                    .map(|a| San::Ip(IpAddr::from(a))),
                16 => <[u8; 16]>::try_from(*b)
                    .ok()
                    .map(|a| San::Ip(IpAddr::from(a))),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The identity in a directory, loaded for renewal: chain, key and bundle,
/// with the key checked against the certificate. Its `Debug` never shows
/// the key, which is wiped when it drops.
pub struct CurrentIdentity {
    /// The directory.
    pub dir: PathBuf,
    /// The chain, leaf first (`chain.pem`).
    pub chain: Vec<CertificateDer<'static>>,
    /// The trust bundle (`ca.pem`).
    pub roots: Vec<CertificateDer<'static>>,
    /// The key type.
    pub key_type: KeyType,
    /// What the leaf says.
    pub leaf: LeafInfo,
    pkcs8: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for CurrentIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurrentIdentity")
            .field("dir", &self.dir)
            .field("serial", &self.leaf.serial)
            .field("key_type", &self.key_type)
            .field("key", &"[elided]")
            .finish()
    }
}

impl CurrentIdentity {
    /// Reads `chain.pem`, `key.pem` and `ca.pem` from `dir` (blocking).
    pub fn load(dir: &Path) -> Result<Self, Error> {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::Identity {
                    path: dir.to_path_buf(),
                    reason: IdentityError::NotADirectory,
                })
            }
            Err(source) => {
                return Err(Error::Pki(minica_pki::Error::Io {
                    path: dir.to_path_buf(),
                    source,
                }))
            }
        }
        let files = IdentityFiles::in_dir(dir);
        let chain = pem::load_certs(&files.chain)?;
        let roots = pem::load_certs(&files.ca)?;
        let leaf_der = chain.first().ok_or_else(|| Error::Identity {
            path: files.chain.clone(),
            reason: IdentityError::BadCertificate("no certificate".into()),
        })?;
        let leaf = LeafInfo::parse(&files.chain, leaf_der)?;
        let bad_key = || Error::Identity {
            path: files.key.clone(),
            reason: IdentityError::BadKey,
        };
        let pkcs8 = match &*pem::load_private_key(&files.key)? {
            PrivateKeyDer::Pkcs8(k) => Zeroizing::new(k.secret_pkcs8_der().to_vec()),
            _ => return Err(bad_key()),
        };
        let pair = rcgen::KeyPair::try_from(pkcs8.as_slice())
            .map(Zeroizing::new)
            .map_err(|_| bad_key())?;
        let spki = rcgen::PublicKeyData::subject_public_key_info(&*pair);
        let key_type = KeyType::from_spki_der(&spki).ok_or_else(bad_key)?;
        if spki != leaf.spki {
            return Err(Error::Identity {
                path: files.key.clone(),
                reason: IdentityError::KeyMismatch,
            });
        }
        Ok(CurrentIdentity {
            dir: dir.to_path_buf(),
            chain,
            roots,
            key_type,
            leaf,
            pkcs8,
        })
    }

    /// The private key, PKCS#8 DER (for `--reuse-key`).
    pub fn key_pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The chain and key to present over mutual TLS.
    pub fn client_identity(&self) -> ClientIdentity {
        ClientIdentity {
            chain: self.chain.clone(),
            key: Zeroizing::new(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                self.pkcs8.to_vec(),
            ))),
        }
    }
}

/// Which names the returned certificate must carry.
#[derive(Debug, Clone, Copy)]
pub enum ExpectNames<'a> {
    /// Enrolment: NAME among its DNS or IP SANs (the token decides the rest).
    Includes(&'a str),
    /// Renewal: exactly these SANs, in any order.
    Same(&'a [San]),
}

/// What the CA's answer must match.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// Our public key (DER SubjectPublicKeyInfo).
    pub spki: &'a [u8],
    /// The names.
    pub names: ExpectNames<'a>,
    /// The roots we trust: the answer's bundle must hold one of them.
    pub trusted_roots: &'a [CertificateDer<'static>],
}

/// A checked answer, re-encoded as the PEM files to write.
#[derive(Debug, Clone)]
pub struct Issued {
    /// `cert.pem`.
    pub cert_pem: String,
    /// `chain.pem`.
    pub chain_pem: String,
    /// `ca.pem`.
    pub bundle_pem: String,
    /// The new leaf.
    pub leaf: LeafInfo,
}

/// Bound on the certificates walked from the leaf to a root.
const MAX_PATH: usize = 8;

/// Checks the CA's answer before anything is written: the leaf carries our
/// public key and the expected names, is not expired, is the first
/// certificate of the chain, chains (signatures checked) to a root of the
/// answer's bundle, and that bundle holds a root we already trust.
pub fn check_answer(
    url: &CaUrl,
    path: &'static str,
    answer: &CertResponse,
    expect: &Expect<'_>,
) -> Result<Issued, Error> {
    let bad = |reason: String| Error::BadAnswer {
        url: url.to_string(),
        path,
        reason,
    };
    let parse = |what: &str, text: &str| {
        pem::parse_certs(Path::new(what), text.as_bytes()).map_err(|e| bad(e.to_string()))
    };
    let cert = parse("certificate", &answer.certificate)?;
    let chain = parse("chain", &answer.chain)?;
    let bundle = parse("bundle", &answer.bundle)?;
    let [leaf_der] = cert.as_slice() else {
        return Err(bad(format!(
            "`certificate` holds {} certificates, not one",
            cert.len()
        )));
    };
    if chain.first() != Some(leaf_der) {
        return Err(bad("`chain` does not start with the certificate".into()));
    }
    let leaf =
        LeafInfo::parse(Path::new("certificate"), leaf_der).map_err(|e| bad(e.to_string()))?;
    if leaf.spki != expect.spki {
        return Err(bad("the certificate is not for our key".into()));
    }
    match expect.names {
        ExpectNames::Includes(name) => {
            let want = match name.parse::<IpAddr>() {
                Ok(ip) => San::Ip(ip),
                Err(_) => San::Dns(name.to_ascii_lowercase()),
            };
            if !leaf.sans.contains(&want) {
                return Err(bad(format!(
                    "the certificate is not for {name} (its names: {})",
                    list(&leaf.sans)
                )));
            }
        }
        ExpectNames::Same(old) => {
            let same = old.len() == leaf.sans.len() && old.iter().all(|s| leaf.sans.contains(s));
            if !same {
                return Err(bad(format!(
                    "the certificate's names changed: {} instead of {}",
                    list(&leaf.sans),
                    list(old)
                )));
            }
        }
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if leaf.not_after <= now {
        return Err(bad("the certificate has already expired".into()));
    }
    if !bundle.iter().any(|b| expect.trusted_roots.contains(b)) {
        return Err(bad("the bundle holds none of the roots we trust".into()));
    }
    verify_path(leaf_der, &chain[1..], &bundle).map_err(bad)?;
    let encode = |certs: &[CertificateDer<'_>]| {
        certs
            .iter()
            .map(|c| pem::encode_pem("CERTIFICATE", c))
            .collect::<String>()
    };
    Ok(Issued {
        cert_pem: encode(&cert),
        chain_pem: encode(&chain),
        bundle_pem: encode(&bundle),
        leaf,
    })
}

fn list(sans: &[San]) -> String {
    if sans.is_empty() {
        return "none".into();
    }
    sans.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Walks from the leaf to a root of `roots`, each step an issuer (by name)
/// whose key verifies the signature, taken from `intermediates` or `roots`.
fn verify_path(
    leaf: &[u8],
    intermediates: &[CertificateDer<'_>],
    roots: &[CertificateDer<'_>],
) -> Result<(), String> {
    fn parse(der: &[u8]) -> Result<X509Certificate<'_>, String> {
        X509Certificate::from_der(der)
            .map(|(_, c)| c)
            .map_err(|e| format!("a certificate of the chain is not valid X.509: {e}"))
    }
    let parsed_roots = roots
        .iter()
        .map(|r| parse(r))
        .collect::<Result<Vec<_>, _>>()?;
    let parsed_inter = intermediates
        .iter()
        .map(|r| parse(r))
        .collect::<Result<Vec<_>, _>>()?;
    let mut current = parse(leaf)?;
    for _ in 0..MAX_PATH {
        let signed_by = |c: &X509Certificate<'_>| {
            c.subject() == current.issuer()
                && current.verify_signature(Some(c.public_key())).is_ok()
        };
        if parsed_roots.iter().any(signed_by) {
            return Ok(());
        }
        match parsed_inter.iter().find(|c| signed_by(c)) {
            Some(next) => current = next.clone(),
            None => {
                return Err(format!(
                    "the chain does not lead to a root of the bundle (no valid issuer for {})",
                    current.subject()
                ))
            }
        }
    }
    Err("the chain is too long".into())
}

/// Whether existing identity files may be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// Refuse when any file exists (`minica enroll` without `--force`).
    Refuse,
    /// Replace them (renewal, `--force`).
    Replace,
}

/// Refuses an output directory whose nearest existing ancestor is not a
/// directory (checked before the CA is asked, so that a token is not spent
/// on an answer that cannot be written).
pub fn check_out_dir(out: &Path) -> Result<(), Error> {
    for dir in out.ancestors().filter(|d| !d.as_os_str().is_empty()) {
        match dir.metadata() {
            Ok(meta) if meta.is_dir() => return Ok(()),
            Ok(_) => {
                return Err(Error::Identity {
                    path: dir.to_path_buf(),
                    reason: IdentityError::NotADirectory,
                })
            }
            Err(_) => continue,
        }
    }
    Ok(())
}

/// The files to write, in the order they are renamed into place.
fn write_order<'a>(
    files: &'a IdentityFiles,
    issued: &'a Issued,
    key_pem: Option<&'a str>,
) -> Vec<(&'a Path, &'a [u8], FileMode)> {
    let mut order = vec![(
        files.ca.as_path(),
        issued.bundle_pem.as_bytes(),
        FileMode::Public,
    )];
    if let Some(key) = key_pem {
        order.push((files.key.as_path(), key.as_bytes(), FileMode::Private));
    }
    order.push((
        files.cert.as_path(),
        issued.cert_pem.as_bytes(),
        FileMode::Public,
    ));
    order.push((
        files.chain.as_path(),
        issued.chain_pem.as_bytes(),
        FileMode::Public,
    ));
    order
}

/// Writes the identity files into `dir` (created 0700 if missing): all are
/// staged first, then renamed in the order `ca.pem`, `key.pem`, `cert.pem`,
/// `chain.pem` (as `minica renew` does), so that a reader that checks the
/// key against the certificate never loads a mismatched pair. With
/// `key_pem = None` (a reused key) `key.pem` is left as it is. Blocking.
pub fn write_identity(
    dir: &Path,
    issued: &Issued,
    key_pem: Option<&str>,
    overwrite: Overwrite,
) -> Result<(), Error> {
    let files = IdentityFiles::in_dir(dir);
    if overwrite == Overwrite::Refuse {
        check_absent(&files)?;
    }
    create_private_dir(dir)?;
    let staged = write_order(&files, issued, key_pem)
        .into_iter()
        .map(|(path, bytes, mode)| StagedFile::write(path, bytes, mode))
        .collect::<Result<Vec<_>, _>>()?;
    for file in staged {
        file.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csr::KeyAndCsr;
    use rcgen::{
        BasicConstraints, CertificateParams, CertificateSigningRequestParams, IsCa, Issuer, KeyPair,
    };
    #[cfg(unix)]
    use std::os::unix::fs::PermissionsExt;

    struct TestCa {
        root_pem: String,
        root_der: CertificateDer<'static>,
        inter_pem: String,
        inter: Issuer<'static, KeyPair>,
    }

    fn ca(name: &str) -> TestCa {
        let root_key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} root"));
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
        let root = p.self_signed(&root_key).unwrap();
        let root_issuer = Issuer::new(p, root_key);
        let inter_key = KeyPair::generate().unwrap();
        let mut ip = CertificateParams::new(Vec::<String>::new()).unwrap();
        ip.distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} inter"));
        ip.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        let inter = ip.signed_by(&inter_key, &root_issuer).unwrap();
        TestCa {
            root_pem: root.pem(),
            root_der: root.der().clone(),
            inter_pem: inter.pem(),
            inter: Issuer::new(ip, inter_key),
        }
    }

    /// Signs the CSR with the given SANs (as the server would), answering
    /// like `minica serve`.
    fn answer(ca: &TestCa, kc: &KeyAndCsr, sans: &[&str]) -> CertResponse {
        let mut csr = CertificateSigningRequestParams::from_pem(kc.csr_pem()).unwrap();
        csr.params.subject_alt_names = sans
            .iter()
            .map(|s| match s.parse::<IpAddr>() {
                Ok(ip) => rcgen::SanType::IpAddress(ip),
                Err(_) => rcgen::SanType::DnsName((*s).try_into().unwrap()),
            })
            .collect();
        let leaf = csr.signed_by(&ca.inter).unwrap();
        CertResponse {
            certificate: leaf.pem(),
            chain: format!("{}{}", leaf.pem(), ca.inter_pem),
            bundle: ca.root_pem.clone(),
        }
    }

    fn url() -> CaUrl {
        "https://127.0.0.1:8443".parse().unwrap()
    }

    #[test]
    fn a_good_answer_passes_and_round_trips_through_the_files() {
        let ca = ca("a");
        let kc = KeyAndCsr::generate(KeyType::EcdsaP256, "svc", &[]).unwrap();
        let resp = answer(&ca, &kc, &["svc", "10.0.0.1"]);
        let roots = [ca.root_der.clone()];
        let issued = check_answer(
            &url(),
            "/v1/enroll",
            &resp,
            &Expect {
                spki: kc.spki_der(),
                names: ExpectNames::Includes("svc"),
                trusted_roots: &roots,
            },
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("svc");
        write_identity(&out, &issued, Some(&kc.key_pem()), Overwrite::Refuse).unwrap();
        #[cfg(unix)]
        {
            let mode =
                |f: &str| std::fs::metadata(out.join(f)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode("key.pem"), 0o600);
            assert_eq!(mode("cert.pem"), 0o644);
            assert_eq!(
                std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
                0o700
            );
        }
        let current = CurrentIdentity::load(&out).unwrap();
        assert_eq!(current.leaf.serial, issued.leaf.serial);
        assert_eq!(current.key_type, KeyType::EcdsaP256);
        assert_eq!(current.chain.len(), 2);
        assert_eq!(current.leaf.name().as_deref(), Some("svc"));
        assert!(!format!("{current:?}").contains("BEGIN"));
        // A second enrolment into the same directory is refused, and
        // nothing is changed.
        let before = std::fs::read(out.join("cert.pem")).unwrap();
        let err = write_identity(&out, &issued, Some(&kc.key_pem()), Overwrite::Refuse)
            .unwrap_err()
            .to_string();
        assert!(err.contains("already exists"), "{err}");
        assert_eq!(std::fs::read(out.join("cert.pem")).unwrap(), before);
        let names: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with(".minica-tmp"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }

    #[test]
    fn files_are_renamed_ca_key_cert_chain() {
        let files = IdentityFiles::in_dir(Path::new("/d"));
        let issued = Issued {
            cert_pem: "c".into(),
            chain_pem: "ch".into(),
            bundle_pem: "b".into(),
            leaf: LeafInfo {
                common_name: None,
                sans: Vec::new(),
                serial: "01".into(),
                not_before: 0,
                not_after: 0,
                spki: Vec::new(),
            },
        };
        let order: Vec<_> = write_order(&files, &issued, Some("k"))
            .into_iter()
            .map(|(p, _, m)| (p.file_name().unwrap().to_str().unwrap().to_string(), m))
            .collect();
        assert_eq!(
            order,
            [
                ("ca.pem".to_string(), FileMode::Public),
                ("key.pem".to_string(), FileMode::Private),
                ("cert.pem".to_string(), FileMode::Public),
                ("chain.pem".to_string(), FileMode::Public),
            ]
        );
        let without_key: Vec<_> = write_order(&files, &issued, None)
            .into_iter()
            .map(|(p, _, _)| p.to_path_buf())
            .collect();
        assert_eq!(without_key, [files.ca, files.cert, files.chain]);
    }

    #[test]
    fn bad_answers_are_refused_with_the_reason() {
        let ca = ca("a");
        let other = ca_other();
        let kc = KeyAndCsr::generate(KeyType::EcdsaP256, "svc", &[]).unwrap();
        let someone_else = KeyAndCsr::generate(KeyType::EcdsaP256, "svc", &[]).unwrap();
        let roots = [ca.root_der.clone()];
        let check = |resp: &CertResponse, names: ExpectNames<'_>| {
            check_answer(
                &url(),
                "/v1/enroll",
                resp,
                &Expect {
                    spki: kc.spki_der(),
                    names,
                    trusted_roots: &roots,
                },
            )
            .map(|_| ())
            .unwrap_err()
            .to_string()
        };
        let good = answer(&ca, &kc, &["svc"]);
        let err = check(
            &answer(&ca, &someone_else, &["svc"]),
            ExpectNames::Includes("svc"),
        );
        assert!(err.contains("not for our key"), "{err}");
        let err = check(&answer(&ca, &kc, &["other"]), ExpectNames::Includes("svc"));
        assert!(err.contains("not for svc"), "{err}");
        let old = [San::Dns("svc".into()), San::Dns("more".into())];
        let err = check(&good, ExpectNames::Same(&old));
        assert!(err.contains("names changed"), "{err}");
        // Signed by another CA, but claiming our bundle.
        let mut forged = answer(&other, &kc, &["svc"]);
        forged.bundle = ca.root_pem.clone();
        let err = check(&forged, ExpectNames::Includes("svc"));
        assert!(err.contains("does not lead to a root"), "{err}");
        // A bundle without any root we trust.
        let foreign = answer(&other, &kc, &["svc"]);
        let err = check(&foreign, ExpectNames::Includes("svc"));
        assert!(err.contains("none of the roots we trust"), "{err}");
        let mut bad_chain = good.clone();
        bad_chain.chain = ca.inter_pem.clone();
        let err = check(&bad_chain, ExpectNames::Includes("svc"));
        assert!(err.contains("does not start with"), "{err}");
        let mut garbage = good;
        garbage.certificate = "nope".into();
        let err = check(&garbage, ExpectNames::Includes("svc"));
        assert!(err.contains("bad answer"), "{err}");
    }

    fn ca_other() -> TestCa {
        ca("other")
    }

    #[test]
    fn a_key_that_does_not_match_is_refused() {
        let ca = ca("a");
        let kc = KeyAndCsr::generate(KeyType::Ed25519, "svc", &[]).unwrap();
        let resp = answer(&ca, &kc, &["svc"]);
        let roots = [ca.root_der.clone()];
        let issued = check_answer(
            &url(),
            "/v1/enroll",
            &resp,
            &Expect {
                spki: kc.spki_der(),
                names: ExpectNames::Includes("svc"),
                trusted_roots: &roots,
            },
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let other = KeyAndCsr::generate(KeyType::Ed25519, "svc", &[]).unwrap();
        write_identity(
            dir.path(),
            &issued,
            Some(&other.key_pem()),
            Overwrite::Replace,
        )
        .unwrap();
        let err = CurrentIdentity::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("key.pem") && err.contains("does not match"),
            "{err}"
        );
        let err = CurrentIdentity::load(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing"), "{err}");
    }
}

//! Exporting an identity (the files `minica issue` writes) in other
//! conventions: MySQL/MariaDB file names with a `my.cnf` snippet, or one
//! password-protected PKCS#12 file.
//!
//! # Design
//! The ledger holds no leaf private keys, so an export starts from an
//! identity directory (`cert.pem`, `chain.pem`, `key.pem`, `ca.pem`):
//! [`Identity::load`] reads it and checks that the certificate is NAME's and
//! that the key is the certificate's, naming the file that is wrong. The
//! caller may then check the serial against the ledger and add the CRLs of
//! every level ([`crate::publish::CrlSet`]). [`MysqlExport::files`] and
//! [`pkcs12`] build the output in memory; the caller writes it with
//! [`minica_pki::atomic::write_all_atomic`], so nothing is half-written.
//!
//! # MySQL layout
//! ```text
//! DIR/ca-cert.pem       the roots (ca.pem) and the intermediate(s): ssl-ca
//! DIR/server-cert.pem   leaf + intermediate (chain.pem), so the server sends
//!                       its intermediate: ssl-cert        (serverAuth)
//! DIR/server-key.pem    the key, PKCS#8, 0600: ssl-key     (serverAuth)
//! DIR/client-cert.pem   leaf + intermediate                (clientAuth)
//! DIR/client-key.pem    the key, 0600                      (clientAuth)
//! DIR/crl.pem           one CRL per CA level: ssl-crl      (when given)
//! DIR/my.cnf            [mysqld] and [client] with absolute paths
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use minica_pki::atomic::FileMode;
use rustls_pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};
use zeroize::Zeroizing;

use crate::name::Name;
use crate::serial::Serial;

/// PBKDF2 / PKCS#12-KDF iterations for `--format p12`. OpenSSL 3 uses 2048
/// by default; more makes guessing a weak password slower, while export and
/// import stay well under a second.
pub const P12_ITERATIONS: u32 = 100_000;

/// What went wrong in an export. Each variant names the file or argument.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// A file of the identity directory is missing or wrong.
    #[error("{}: {reason}", path.display())]
    Identity {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: IdentityError,
    },
    /// The password file is unusable.
    #[error("--password-file {}: {reason}", path.display())]
    Password {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: PasswordError,
    },
    /// `--role` asks for a use the certificate does not allow.
    #[error(
        "--role {role}: {} has no {eku} extended key usage (issue it without --server/--client)",
        path.display()
    )]
    RoleNotAllowed {
        /// The certificate.
        path: PathBuf,
        /// The role asked for.
        role: Role,
        /// The missing EKU.
        eku: &'static str,
    },
    /// An output file exists and replacing was not asked for.
    #[error("{}: already exists (use --force to replace it)", path.display())]
    OutputExists {
        /// The file.
        path: PathBuf,
    },
    /// The PKCS#12 encoder failed.
    #[error("cannot build the PKCS#12 file")]
    Pkcs12(#[source] p12_keystore::error::Error),
    /// An error from the shared PKI crate (reading, writing files).
    #[error(transparent)]
    Pki(#[from] minica_pki::Error),
    /// An error from the CA (its ledger, CRLs).
    #[error(transparent)]
    Ca(#[from] crate::Error),
}

/// Why an identity file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The file does not exist.
    #[error("not found (is this the directory `minica issue NAME` wrote? see --identity)")]
    Missing,
    /// The file holds no certificate.
    #[error("holds no certificate")]
    NoCertificate,
    /// The certificate cannot be parsed.
    #[error("not a valid X.509 certificate")]
    BadCertificate,
    /// The certificate is not NAME's.
    #[error("the certificate is for {found}, not {name} (neither its CN nor a SAN is {name})")]
    NameMismatch {
        /// The NAME asked for.
        name: String,
        /// The certificate's subject.
        found: String,
    },
    /// No `key.pem`: the leaf was issued from a CSR, its key never left its owner.
    #[error(
        "not found: without the private key there is nothing to export (a leaf issued with \
         --csr has its key where the CSR was made)"
    )]
    NoKey,
    /// The key is not PKCS#8.
    #[error("the key is not PKCS#8 (convert it: openssl pkcs8 -topk8 -nocrypt)")]
    NotPkcs8,
    /// The key cannot be parsed.
    #[error("not a usable private key")]
    BadKey,
    /// The key is not the certificate's.
    #[error("the private key does not match the certificate {cert}")]
    KeyMismatch {
        /// The certificate file.
        cert: String,
    },
    /// `chain.pem` does not start with `cert.pem`.
    #[error("does not start with the certificate in cert.pem")]
    ChainMismatch,
}

/// Why a password file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// The first line is empty.
    #[error("the password (its first line) is empty")]
    Empty,
    /// The first line is not UTF-8.
    #[error("the password (its first line) is not UTF-8 text")]
    NotUtf8,
}

/// An export format (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// MySQL/MariaDB file names and a `my.cnf` snippet.
    Mysql,
    /// One PKCS#12 file: key, leaf, intermediate(s), roots.
    P12,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "mysql" => Ok(Format::Mysql),
            "p12" | "pkcs12" => Ok(Format::P12),
            _ => Err(format!("unknown format {s:?} (expected mysql or p12)")),
        }
    }
}

/// Which side's files a MySQL export writes (`--role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `server-*.pem` and `[mysqld]` (needs serverAuth).
    Server,
    /// `client-*.pem` and `[client]` (needs clientAuth).
    Client,
    /// Both (needs both EKUs).
    Both,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Client => "client",
            Role::Both => "both",
        }
    }

    /// Whether the server files are written.
    pub fn server(self) -> bool {
        matches!(self, Role::Server | Role::Both)
    }

    /// Whether the client files are written.
    pub fn client(self) -> bool {
        matches!(self, Role::Client | Role::Both)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "server" => Ok(Role::Server),
            "client" => Ok(Role::Client),
            "both" => Ok(Role::Both),
            _ => Err(format!(
                "unknown role {s:?} (expected server, client or both)"
            )),
        }
    }
}

/// An identity read from a directory written by `minica issue`. Its
/// `Debug` elides the key.
pub struct Identity {
    /// `cert.pem`.
    pub cert_path: PathBuf,
    /// The leaf's serial.
    pub serial: Serial,
    /// The leaf's subject (RFC 4514).
    pub subject: String,
    /// Whether the leaf has EKU serverAuth (or no EKU restriction).
    pub server_auth: bool,
    /// Whether the leaf has EKU clientAuth (or no EKU restriction).
    pub client_auth: bool,
    /// `chain.pem`: the leaf, then its intermediate(s).
    pub chain: Vec<CertificateDer<'static>>,
    /// `ca.pem`: the roots.
    pub roots: Vec<CertificateDer<'static>>,
    key_pkcs8: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("cert_path", &self.cert_path)
            .field("serial", &self.serial)
            .field("subject", &self.subject)
            .field("key", &"[elided]")
            .finish()
    }
}

fn identity_err(path: &Path, reason: IdentityError) -> ExportError {
    ExportError::Identity {
        path: path.to_path_buf(),
        reason,
    }
}

/// Reads the certificates of an identity file, refusing a missing or empty one.
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ExportError> {
    if !path.exists() {
        return Err(identity_err(path, IdentityError::Missing));
    }
    let certs = minica_pki::pem::load_certs(path)?;
    if certs.is_empty() {
        return Err(identity_err(path, IdentityError::NoCertificate));
    }
    Ok(certs)
}

/// Whether the certificate names `name` as its CN or a SAN.
fn names(cert: &X509Certificate<'_>, name: &Name) -> bool {
    let ip = name.ip();
    let san_match = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .is_some_and(|san| {
            san.value.general_names.iter().any(|g| match (g, ip) {
                (GeneralName::DNSName(d), None) => d.eq_ignore_ascii_case(name.as_str()),
                (GeneralName::IPAddress(b), Some(ip)) => match ip {
                    std::net::IpAddr::V4(v4) => *b == v4.octets(),
                    std::net::IpAddr::V6(v6) => *b == v6.octets(),
                },
                _ => false,
            })
        });
    san_match
        || cert
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok())
            .any(|cn| cn.eq_ignore_ascii_case(name.as_str()))
}

impl Identity {
    /// Reads `dir/cert.pem`, `chain.pem`, `key.pem` and `ca.pem`, and checks
    /// that the certificate is `name`'s and the key is the certificate's.
    pub fn load(dir: &Path, name: &Name) -> Result<Identity, ExportError> {
        let files = crate::issue::LeafFiles::in_dir(dir);
        let leaf_der = read_certs(&files.cert)?.swap_remove(0);
        let (_, cert) = X509Certificate::from_der(&leaf_der)
            .map_err(|_| identity_err(&files.cert, IdentityError::BadCertificate))?;
        if !names(&cert, name) {
            return Err(identity_err(
                &files.cert,
                IdentityError::NameMismatch {
                    name: name.to_string(),
                    found: cert.subject().to_string(),
                },
            ));
        }
        let (server_auth, client_auth) = match cert.extended_key_usage().ok().flatten() {
            Some(eku) if !eku.value.any => (eku.value.server_auth, eku.value.client_auth),
            _ => (true, true),
        };
        let chain = read_certs(&files.chain)?;
        if chain[0] != leaf_der {
            return Err(identity_err(&files.chain, IdentityError::ChainMismatch));
        }
        let roots = read_certs(&files.ca)?;

        if !files.key.exists() {
            return Err(identity_err(&files.key, IdentityError::NoKey));
        }
        let bytes = minica_pki::pem::read_secret_file(&files.key)?;
        let key_pkcs8 = match &*minica_pki::pem::parse_private_key(&files.key, &bytes)? {
            rustls_pki_types::PrivateKeyDer::Pkcs8(k) => {
                Zeroizing::new(k.secret_pkcs8_der().to_vec())
            }
            _ => return Err(identity_err(&files.key, IdentityError::NotPkcs8)),
        };
        let key = crate::key::PrivateKey::from_file_bytes(&files.key, &bytes)
            .map_err(|_| identity_err(&files.key, IdentityError::BadKey))?;
        if key.public_key_der() != cert.public_key().raw {
            return Err(identity_err(
                &files.key,
                IdentityError::KeyMismatch {
                    cert: files.cert.display().to_string(),
                },
            ));
        }
        Ok(Identity {
            serial: Serial::from_bytes(cert.raw_serial()),
            subject: cert.subject().to_string(),
            server_auth,
            client_auth,
            cert_path: files.cert,
            chain,
            roots,
            key_pkcs8,
        })
    }

    /// The role a MySQL export writes when none is asked for: every side
    /// the certificate allows.
    pub fn default_role(&self) -> Role {
        match (self.server_auth, self.client_auth) {
            (true, false) => Role::Server,
            (false, true) => Role::Client,
            _ => Role::Both,
        }
    }

    /// Checks that the certificate allows `role`.
    pub fn check_role(&self, role: Role) -> Result<(), ExportError> {
        let missing = if role.server() && !self.server_auth {
            Some("serverAuth")
        } else if role.client() && !self.client_auth {
            Some("clientAuth")
        } else {
            None
        };
        match missing {
            Some(eku) => Err(ExportError::RoleNotAllowed {
                path: self.cert_path.clone(),
                role,
                eku,
            }),
            None => Ok(()),
        }
    }

    fn chain_pem(&self) -> String {
        pem_all(&self.chain)
    }

    fn key_pem(&self) -> Zeroizing<String> {
        minica_pki::pem::encode_pkcs8_pem(&self.key_pkcs8)
    }
}

fn pem_all(certs: &[CertificateDer<'_>]) -> String {
    certs
        .iter()
        .map(|c| minica_pki::pem::encode_pem("CERTIFICATE", c))
        .collect()
}

/// One file of an export: where, what, and who may read it. Its content is
/// wiped when dropped (a key file's is the key).
pub struct OutFile {
    /// Its path.
    pub path: PathBuf,
    /// Its content.
    pub bytes: Zeroizing<Vec<u8>>,
    /// Its mode (keys: [`FileMode::Private`]).
    pub mode: FileMode,
}

impl fmt::Debug for OutFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let content: &dyn fmt::Debug = match self.mode {
            FileMode::Private => &"[elided]",
            FileMode::Public => &self.bytes.len(),
        };
        f.debug_struct("OutFile")
            .field("path", &self.path)
            .field("bytes", content)
            .finish()
    }
}

/// A MySQL export: the identity, the role, the target directory (absolute)
/// and, optionally, the CRLs of every level (PEM) for `ssl-crl`.
#[derive(Debug)]
pub struct MysqlExport<'a> {
    /// The identity.
    pub identity: &'a Identity,
    /// Which side's files to write.
    pub role: Role,
    /// The output directory; absolute, since mariadbd changes into its
    /// data directory and would resolve relative paths there.
    pub dir: PathBuf,
    /// Every level's CRL, PEM (`crl.pem`, `ssl-crl`), or none.
    pub crls_pem: Option<String>,
}

/// A `my.cnf` value: quoted when it holds a space, `#`, `;` or a quote.
fn cnf_value(path: &Path) -> String {
    let s = path.display().to_string();
    if s.chars()
        .any(|c| c.is_whitespace() || matches!(c, '#' | ';' | '"' | '\'' | '\\'))
    {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        s
    }
}

impl MysqlExport<'_> {
    /// `ca-cert.pem`.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca-cert.pem")
    }

    /// `crl.pem`.
    pub fn crl_path(&self) -> PathBuf {
        self.dir.join("crl.pem")
    }

    /// `my.cnf`.
    pub fn cnf_path(&self) -> PathBuf {
        self.dir.join("my.cnf")
    }

    /// The `my.cnf` snippet.
    pub fn my_cnf(&self) -> String {
        let d = &self.dir;
        let mut s = format!(
            "# Written by `minica export {} --format mysql` for certificate serial {}.\n\
             # Include it in the server's and the client's configuration\n\
             # (e.g. `!include {}`); the paths are absolute on purpose.\n",
            self.identity
                .subject
                .strip_prefix("CN=")
                .unwrap_or(&self.identity.subject),
            self.identity.serial,
            cnf_value(&self.cnf_path()),
        );
        let ca = cnf_value(&self.ca_path());
        if self.role.server() {
            s += &format!(
                "\n[mysqld]\nssl-ca = {ca}\nssl-cert = {}\nssl-key = {}\n",
                cnf_value(&d.join("server-cert.pem")),
                cnf_value(&d.join("server-key.pem")),
            );
            if self.crls_pem.is_some() {
                s += &format!(
                    "# One CRL per CA level (root and intermediate). Refresh it before its\n\
                     # nextUpdate (`minica crl --out FILE`, or export again with --force)\n\
                     # and run FLUSH SSL.\nssl-crl = {}\n",
                    cnf_value(&self.crl_path())
                );
            }
            s += "require_secure_transport = ON\ntls_version = TLSv1.2,TLSv1.3\n";
        }
        if self.role.client() {
            s += &format!(
                "\n[client]\nssl-ca = {ca}\nssl-cert = {}\nssl-key = {}\nssl-verify-server-cert\n",
                cnf_value(&d.join("client-cert.pem")),
                cnf_value(&d.join("client-key.pem")),
            );
        }
        s
    }

    /// Every file of the export, `my.cnf` last.
    pub fn files(&self) -> Vec<OutFile> {
        let id = self.identity;
        // The text moves (no copy) from one wiped-on-drop buffer to the next.
        let file = |name: &str, mut text: Zeroizing<String>, mode| OutFile {
            path: self.dir.join(name),
            bytes: Zeroizing::new(std::mem::take(&mut *text).into_bytes()),
            mode,
        };
        let public = |name: &str, text: String| file(name, Zeroizing::new(text), FileMode::Public);
        // The roots, then the intermediate(s): a peer that sends only its
        // leaf still gets a path to the root.
        let mut trust = pem_all(&id.roots);
        trust += &pem_all(id.chain.get(1..).unwrap_or_default());
        let mut out = vec![public("ca-cert.pem", trust)];
        if self.role.server() {
            out.push(public("server-cert.pem", id.chain_pem()));
            out.push(file("server-key.pem", id.key_pem(), FileMode::Private));
        }
        if self.role.client() {
            out.push(public("client-cert.pem", id.chain_pem()));
            out.push(file("client-key.pem", id.key_pem(), FileMode::Private));
        }
        if let (Some(crls), true) = (&self.crls_pem, self.role.server()) {
            out.push(public("crl.pem", crls.clone()));
        }
        out.push(public("my.cnf", self.my_cnf()));
        out
    }
}

/// A password read from `--password-file`. Its `Debug` elides it; it is
/// wiped when dropped (so is the file's content read for it).
pub struct Password(Zeroizing<String>);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([elided])")
    }
}

impl Password {
    /// Reads the first line of `path` (without its line ending); an empty
    /// one is refused.
    pub fn read(path: &Path) -> Result<Password, ExportError> {
        let bytes = minica_pki::pem::read_secret_file(path)?;
        let bad = |reason| ExportError::Password {
            path: path.to_path_buf(),
            reason,
        };
        let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = std::str::from_utf8(line).map_err(|_| bad(PasswordError::NotUtf8))?;
        if text.is_empty() {
            return Err(bad(PasswordError::Empty));
        }
        Ok(Password(Zeroizing::new(text.to_string())))
    }
}

/// A PKCS#12 file (DER) holding the key and the chain (leaf, intermediate,
/// roots), friendly name `alias`, encrypted with PBES2 (PBKDF2-HMAC-SHA256,
/// AES-256-CBC) and protected by an HMAC-SHA256 MAC.
pub fn pkcs12(
    identity: &Identity,
    alias: &str,
    password: &Password,
) -> Result<Vec<u8>, ExportError> {
    use p12_keystore::{
        Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, PrivateKey,
        PrivateKeyChain,
    };
    let certs = identity
        .chain
        .iter()
        .chain(&identity.roots)
        .map(|c| Certificate::from_der(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ExportError::Pkcs12)?;
    // p12-keystore keeps its own copy of the key (and derives keys from the
    // password) in buffers it does not wipe: see docs/SECURITY.md.
    let key = PrivateKey::from_der(&identity.key_pkcs8).map_err(ExportError::Pkcs12)?;
    // localKeyId pairs the key with its certificate: the leaf's SHA-256.
    let key_id = ring::digest::digest(&ring::digest::SHA256, &identity.chain[0]);
    let chain = PrivateKeyChain::new(key_id.as_ref().to_vec(), key, certs);
    let mut store = KeyStore::new();
    store.add_entry(alias, KeyStoreEntry::PrivateKeyChain(chain));
    store
        .writer(&password.0)
        .encryption_algorithm(EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
        .encryption_iterations(P12_ITERATIONS)
        .mac_algorithm(MacAlgorithm::HmacSha256)
        .mac_iterations(P12_ITERATIONS)
        .write()
        .map_err(ExportError::Pkcs12)
}

/// Refuses (naming the first) when any of `paths` exists.
pub fn check_absent<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Result<(), ExportError> {
    for path in paths {
        if path.symlink_metadata().is_ok() {
            return Err(ExportError::OutputExists {
                path: path.to_path_buf(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Ca, CaHome, InitOptions, LeafRequest, Overwrite, Profile};

    fn issued(dir: &Path, name: &str, profile: Profile) -> (Ca, PathBuf) {
        let ca = Ca::init(&CaHome::new(dir.join("home")), &InitOptions::default()).unwrap();
        let out = dir.join(name);
        let mut req = LeafRequest::new(name.parse().unwrap());
        req.profile = profile;
        ca.issue_to_dir(&req, &out, Overwrite::Refuse).unwrap();
        (ca, out)
    }

    #[test]
    fn loads_and_checks_an_identity() {
        let tmp = tempfile::tempdir().unwrap();
        let (_ca, dir) = issued(tmp.path(), "app", Profile::Client);
        let id = Identity::load(&dir, &"app".parse().unwrap()).unwrap();
        assert_eq!(id.default_role(), Role::Client);
        assert_eq!(id.chain.len(), 2);
        assert!(!format!("{id:?}").contains("PRIVATE"));
        let err = id.check_role(Role::Server).unwrap_err().to_string();
        assert!(
            err.contains("serverAuth") && err.contains("cert.pem"),
            "{err}"
        );
        let err = Identity::load(&dir, &"db".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("cert.pem") && err.contains("not db"), "{err}");
        let err = Identity::load(&tmp.path().join("nope"), &"app".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("cert.pem: not found"), "{err}");
        // Another key: refused, naming key.pem.
        let other = crate::key::PrivateKey::generate(crate::KeyType::EcdsaP256).unwrap();
        std::fs::write(dir.join("key.pem"), other.to_pkcs8_pem()).unwrap();
        let err = Identity::load(&dir, &"app".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("key.pem") && err.contains("does not match"),
            "{err}"
        );
    }

    #[test]
    fn my_cnf_has_absolute_paths_and_the_sections_of_the_role() {
        let tmp = tempfile::tempdir().unwrap();
        let (_ca, dir) = issued(tmp.path(), "db", Profile::Both);
        let id = Identity::load(&dir, &"db".parse().unwrap()).unwrap();
        let export = MysqlExport {
            identity: &id,
            role: Role::Both,
            dir: PathBuf::from("/etc/my sql"),
            crls_pem: Some("x".into()),
        };
        let cnf = export.my_cnf();
        for line in [
            "[mysqld]",
            "ssl-cert = \"/etc/my sql/server-cert.pem\"",
            "ssl-crl = \"/etc/my sql/crl.pem\"",
            "require_secure_transport = ON",
            "tls_version = TLSv1.2,TLSv1.3",
            "[client]",
            "ssl-key = \"/etc/my sql/client-key.pem\"",
            "ssl-verify-server-cert",
        ] {
            assert!(cnf.lines().any(|l| l == line), "{line:?} missing:\n{cnf}");
        }
        let names: Vec<String> = export
            .files()
            .iter()
            .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "ca-cert.pem",
                "server-cert.pem",
                "server-key.pem",
                "client-cert.pem",
                "client-key.pem",
                "crl.pem",
                "my.cnf"
            ]
        );
        let client_only = MysqlExport {
            role: Role::Client,
            crls_pem: None,
            ..export
        };
        let cnf = client_only.my_cnf();
        assert!(
            !cnf.contains("[mysqld]") && !cnf.contains("ssl-crl"),
            "{cnf}"
        );
    }

    #[test]
    fn pkcs12_reads_back_with_the_key_and_the_whole_chain() {
        let tmp = tempfile::tempdir().unwrap();
        let (_ca, dir) = issued(tmp.path(), "app", Profile::Client);
        let id = Identity::load(&dir, &"app".parse().unwrap()).unwrap();
        let pw = Password(Zeroizing::new("pw".into()));
        let der = pkcs12(&id, "app", &pw).unwrap();
        let store = p12_keystore::KeyStore::from_pkcs12(
            &der,
            "pw",
            p12_keystore::Pkcs12ImportPolicy::Relaxed,
        )
        .unwrap();
        let (alias, chain) = store.private_key_chain().unwrap();
        assert_eq!(alias, "app");
        assert_eq!(chain.key().as_der(), id.key_pkcs8.as_slice());
        assert_eq!(chain.certs().len(), 3);
        assert_eq!(chain.certs()[0].as_der(), id.chain[0].as_ref());
        assert!(p12_keystore::KeyStore::from_pkcs12(
            &der,
            "wrong",
            p12_keystore::Pkcs12ImportPolicy::Relaxed
        )
        .is_err());
    }

    #[test]
    fn password_is_the_first_line() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("pw");
        std::fs::write(&p, "s3cret\r\nignored\n").unwrap();
        assert_eq!(Password::read(&p).unwrap().0.as_str(), "s3cret");
        assert_eq!(
            format!("{:?}", Password::read(&p).unwrap()),
            "Password([elided])"
        );
        for empty in ["", "\n", "\r\nx"] {
            std::fs::write(&p, empty).unwrap();
            let err = Password::read(&p).unwrap_err().to_string();
            assert!(
                err.contains("--password-file") && err.contains("empty"),
                "{err}"
            );
        }
    }
}

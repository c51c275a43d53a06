//! The one error type of this crate, with typed reasons.

use std::path::PathBuf;
use std::time::Duration;

use time::OffsetDateTime;

/// Everything that can go wrong in the CA. Each variant names the file,
/// argument or record it is about, so the CLI can print it as one line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An error from the shared PKI crate (file loading, durations, identities).
    #[error(transparent)]
    Pki(#[from] minica_pki::Error),
    /// The CA home directory could not be determined.
    #[error("cannot find the CA home: set --home, MINICA_HOME, XDG_DATA_HOME or HOME")]
    NoHomeDirectory,
    /// `init` found a CA already in the home.
    #[error("a CA already exists in {} (it is never overwritten)", home.display())]
    CaExists {
        /// The CA home.
        home: PathBuf,
    },
    /// The home holds no CA.
    #[error("no CA in {} (run `minica init` first)", home.display())]
    NoCa {
        /// The CA home.
        home: PathBuf,
    },
    /// A CA file (certificate, key or configuration) is damaged.
    #[error("{}: {reason}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: CaFileError,
    },
    /// A private key file may be read by other users.
    #[error(
        "{}: private key is readable by group or others (mode {mode:o}); run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    InsecureKeyFile {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Another process held the home's lock for too long.
    #[error(
        "{}: another minica process is using this CA; gave up after waiting {}s",
        path.display(),
        waited.as_secs()
    )]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// How long we waited.
        waited: Duration,
    },
    /// A certificate NAME is not acceptable.
    #[error("invalid NAME {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it was refused.
        reason: NameError,
    },
    /// A `--dns`, `--ip` or `--uri` value is not acceptable.
    #[error("invalid {arg} {value:?}: {reason}")]
    InvalidSan {
        /// The argument (`--dns`, `--ip`, `--uri`, or the CSR).
        arg: &'static str,
        /// The value as given.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// An unknown `--key-type`.
    #[error("unknown key type {0:?} (expected one of: ecdsa-p256, ecdsa-p384, ed25519, rsa-2048, rsa-3072, rsa-4096)")]
    UnknownKeyType(String),
    /// A validity period is not acceptable.
    #[error("{0}")]
    Validity(ValidityError),
    /// A CSR was refused.
    #[error("{}: {reason}", path.display())]
    Csr {
        /// The CSR file.
        path: PathBuf,
        /// Why it was refused.
        reason: CsrError,
    },
    /// NAME already has an active certificate.
    #[error("{name:?} already has an active certificate (serial {serial}); use `minica renew {name}` to replace it")]
    DuplicateName {
        /// The name.
        name: String,
        /// The serial of the active certificate.
        serial: String,
    },
    /// An output file exists and overwriting was not asked for.
    #[error("{} already exists (use --force to overwrite)", path.display())]
    OutputExists {
        /// The file.
        path: PathBuf,
    },
    /// Building, signing or parsing a certificate or key failed.
    #[error("{what}: {source}")]
    Crypto {
        /// What was being done.
        what: &'static str,
        /// The cause.
        #[source]
        source: rcgen::Error,
    },
    /// RSA key generation failed.
    #[error("RSA key generation failed: {0}")]
    RsaKeygen(#[source] rsa::Error),
    /// An RSA key could not be encoded as PKCS#8.
    #[error("RSA key encoding failed: {0}")]
    RsaEncode(#[source] rsa::pkcs8::Error),
    /// The ledger failed.
    #[error("ledger: {0}")]
    Store(#[source] StoreError),
    /// No certificate in the ledger has this name or serial.
    #[error("{what} is not in the ledger (see `minica list --all`)")]
    NotInLedger {
        /// `name "x"` or `serial 5e...`.
        what: String,
    },
    /// A NAME has no certificate that `revoke NAME` could pick.
    #[error("{name:?} has no active certificate (only superseded ones: {serials}); revoke one with --serial")]
    NothingToRevoke {
        /// The name.
        name: String,
        /// The serials found, comma separated.
        serials: String,
    },
    /// A NAME matches several active certificates.
    #[error("{name:?} matches several active certificates ({serials}); revoke one with --serial")]
    AmbiguousName {
        /// The name.
        name: String,
        /// The serials found, comma separated.
        serials: String,
    },
    /// A root cannot be revoked (it is a trust anchor).
    #[error("serial {serial} is a root certificate: a trust anchor is not revoked, it is removed from the trust bundle (root rotation)")]
    RevokeRoot {
        /// The root's serial.
        serial: String,
    },
    /// The intermediate that signs leaves is revoked.
    #[error("the intermediate (serial {serial}) is revoked: no leaf can be issued until it is replaced (root/intermediate rotation)")]
    IssuerRevoked {
        /// The intermediate's serial.
        serial: String,
    },
    /// A CRL could not be built or signed.
    #[error("CRL of {issuer}: {source}")]
    Crl {
        /// The issuing CA's subject.
        issuer: String,
        /// The cause.
        #[source]
        source: crate::crl::CrlError,
    },
    /// A revocation was recorded but the CRL file could not be refreshed.
    #[error("the revocation of serial {serial} is recorded, but the CRL file could not be refreshed (run `minica crl` to retry): {source}")]
    CrlNotRefreshed {
        /// The revoked serial.
        serial: String,
        /// The cause.
        #[source]
        source: Box<Error>,
    },
    /// A rotation was refused.
    #[error("{0}")]
    Rotation(crate::rotate::RotationError),
    /// A renewal was refused.
    #[error("{0}")]
    Renew(crate::renew::RenewError),
    /// A rotation in shared mode found that another process rotated the CA
    /// since this one loaded it.
    #[error("the CA in {} was rotated by another process since this command opened it; run the command again", home.display())]
    StaleGeneration {
        /// The CA home.
        home: PathBuf,
    },
    /// The home was opened with another ledger than the one it records in
    /// `ca.json` (e.g. a forgotten `--store`).
    #[error("the CA in {} keeps its ledger in {recorded}, but {given} was given: {}", home.display(), match recorded {
        crate::store::Engine::Postgres => "pass --store postgres://... (or set MINICA_STORE) as when it was created",
        _ => "leave --store and MINICA_STORE unset",
    })]
    WrongLedger {
        /// The CA home.
        home: PathBuf,
        /// The engine `ca.json` names.
        recorded: crate::store::Engine,
        /// The engine of the store given.
        given: crate::store::Engine,
    },
    /// A `minica token` request was refused.
    #[error("{0}")]
    Token(crate::token::TokenError),
    /// A file given to `inspect` holds nothing we recognise.
    #[error("{}: {reason}", path.display())]
    Unrecognized {
        /// The file.
        path: PathBuf,
        /// What was expected.
        reason: &'static str,
    },
}

/// Why a CA file (or a key file) is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaFileError {
    /// The key is PKCS#1 or SEC1, not PKCS#8.
    #[error("private key is PKCS#1 or SEC1, not PKCS#8 (PEM or DER); convert it with `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pk8`")]
    NotPkcs8,
    /// ring refused the key.
    #[error("unusable private key: {0}")]
    BadKey(rcgen::Error),
    /// The key algorithm or size is not one minica uses.
    #[error("unsupported key type")]
    UnsupportedKey,
    /// The file holds no certificate.
    #[error("no certificate")]
    NoCertificate,
    /// The certificate could not be parsed.
    #[error("not a valid X.509 certificate")]
    NotACertificate,
    /// The key file does not belong to the certificate.
    #[error("the private key does not match this certificate")]
    KeyMismatch,
    /// rcgen cannot use the certificate as an issuer.
    #[error("unusable CA certificate: {0}")]
    BadCaCertificate(rcgen::Error),
    /// `ca.json` could not be read or written.
    #[error("not a minica CA configuration: {0}")]
    BadConfig(serde_json::Error),
}

/// Why a NAME was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    #[error("it is empty")]
    Empty,
    /// The name is longer than a DNS name may be.
    #[error("it is longer than 253 characters")]
    TooLong,
    /// A character outside letters, digits, `-` and `.`.
    #[error("only letters, digits, '-' and '.' are allowed (or an IP address)")]
    BadCharacter,
    /// An empty label (`..`, a leading or trailing `.`).
    #[error("empty label ('..' or a leading or trailing '.')")]
    EmptyLabel,
    /// A label longer than 63 characters.
    #[error("a label is longer than 63 characters")]
    LabelTooLong,
    /// A label that starts or ends with `-`.
    #[error("a label may not start or end with '-'")]
    Hyphen,
}

/// Why a validity period was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidityError {
    /// A certificate would outlive the CA certificate that signs it.
    #[error("{what} would expire on {not_after} but its issuer expires on {issuer_not_after}; choose a shorter --valid")]
    OutlivesIssuer {
        /// What is being issued.
        what: &'static str,
        /// The requested end.
        not_after: OffsetDateTime,
        /// The issuer's end.
        issuer_not_after: OffsetDateTime,
    },
    /// A zero validity.
    #[error("{arg} must be longer than zero")]
    Zero {
        /// The argument.
        arg: &'static str,
    },
    /// The end date cannot be represented.
    #[error("{arg} is too long: the end date cannot be encoded")]
    TooLong {
        /// The argument.
        arg: &'static str,
    },
}

/// Why a CSR was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CsrError {
    /// Not a PKCS#10 CSR in PEM or DER.
    #[error(
        "not a PKCS#10 certificate request (expected PEM \"BEGIN CERTIFICATE REQUEST\" or DER)"
    )]
    NotACsr,
    /// The signature does not verify with the CSR's own key.
    #[error("the CSR's signature does not verify")]
    BadSignature,
    /// The CSR asks for a CA certificate.
    #[error("the CSR asks for a CA certificate (basicConstraints CA:TRUE); minica issues only leaves from CSRs")]
    AsksForCa,
    /// The CSR's key type is not supported.
    #[error(
        "unsupported public key in the CSR (supported: ECDSA P-256/P-384, Ed25519, RSA 2048-4096)"
    )]
    UnsupportedKey,
    /// A requested SAN is not acceptable.
    #[error("requested SAN {0:?} is not acceptable")]
    BadSan(String),
}

/// Why the ledger failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The embedded (redb) ledger failed.
    #[error("{}: {source}", path.display())]
    Redb {
        /// The ledger file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: redb::Error,
    },
    /// A sled ledger of an earlier version could not be read for import.
    #[error("{}: cannot import this sled ledger of an earlier minica: {source}", path.display())]
    Sled {
        /// The sled ledger directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: sled::Error,
    },
    /// A file operation on the ledger's files failed (its permissions, the
    /// sled import's renames).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A stored record could not be decoded.
    #[error("record {key:?} is damaged: {source}")]
    Corrupt {
        /// The record key.
        key: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A record could not be encoded.
    #[error("cannot encode record: {0}")]
    Encode(#[source] serde_json::Error),
    /// A serial is already in the ledger.
    #[error("serial {0} is already in the ledger")]
    SerialExists(String),
    /// A record to update is not in the ledger.
    #[error("serial {0} is not in the ledger")]
    NotFound(String),
    /// Another leaf with this name is active (one active leaf per NAME).
    #[error("{name} already has an active certificate (serial {serial})")]
    NameActive {
        /// The name asked for.
        name: String,
        /// The serial of the active leaf that holds it.
        serial: String,
    },
    /// A token with this hash is already in the ledger.
    #[error("a token with hash {0} is already in the ledger")]
    TokenExists(String),
    /// A PostgreSQL store URL is not usable (the message never holds the
    /// password).
    #[error("--store {url}: {reason}")]
    PostgresUrl {
        /// The URL with any password replaced by `***`.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// PostgreSQL failed (connection, query or transaction).
    #[error("PostgreSQL {url}: {what}")]
    Postgres {
        /// The URL with any password replaced by `***`.
        url: String,
        /// What was being done.
        what: &'static str,
        /// The cause.
        #[source]
        source: postgres::Error,
    },
    /// The database was migrated by a newer minica.
    #[error("PostgreSQL {url}: the database schema is version {found}, newer than this minica knows ({known}); upgrade minica")]
    SchemaTooNew {
        /// The URL with any password replaced by `***`.
        url: String,
        /// The version found in the database.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// The Unix socket of a remote store failed.
    #[error("{}: {source}", path.display())]
    RemoteIo {
        /// The socket.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The process behind a remote store reported an error, or answered
    /// something that is not a valid reply.
    #[error("{0}")]
    Remote(String),
}

/// The ledger's refusals that the CA reports in its own words: a name held
/// by another active leaf is [`Error::DuplicateName`].
impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NameActive { name, serial } => Error::DuplicateName { name, serial },
            other => Error::Store(other),
        }
    }
}

pub(crate) fn io_err(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
    Error::Io {
        path: path.into(),
        source,
    }
}

pub(crate) fn crypto(what: &'static str) -> impl FnOnce(rcgen::Error) -> Error {
    move |source| Error::Crypto { what, source }
}

use std::path::PathBuf;

/// Everything that can go wrong in this crate. Each variant names the file or
/// the input it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file was read but does not hold what was expected.
    #[error("{}: {reason}", path.display())]
    Content {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: ContentError,
    },
    /// A duration argument could not be parsed.
    #[error("invalid duration {input:?}: {reason}")]
    Duration {
        /// The text as given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An identity or `--allow` rule could not be parsed.
    #[error("invalid identity {input:?}: {reason}")]
    Identity {
        /// The text as given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A certificate could not be parsed as X.509.
    #[error("certificate is not valid X.509: {0}")]
    Certificate(String),
}

/// Why a file's content was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContentError {
    /// The file is empty.
    #[error("file is empty")]
    Empty,
    /// The file holds no certificate.
    #[error("no certificate found (expected PEM \"BEGIN CERTIFICATE\" or DER)")]
    NoCertificate,
    /// The file holds no private key.
    #[error("no private key found (expected PEM PKCS#8, PKCS#1 or SEC1)")]
    NoPrivateKey,
    /// The file holds more than one private key.
    #[error("more than one private key found")]
    SeveralPrivateKeys,
    /// The file holds no CRL.
    #[error("no CRL found (expected PEM \"BEGIN X509 CRL\" or DER)")]
    NoCrl,
    /// A PEM section could not be decoded.
    #[error("malformed PEM: {0}")]
    MalformedPem(String),
    /// The file holds a private key where a certificate was expected.
    #[error("this is a private key, not a certificate")]
    PrivateKeyNotCertificate,
}

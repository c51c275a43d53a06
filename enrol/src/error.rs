//! The one error type of this crate, with typed reasons.

use std::path::PathBuf;

/// Everything that can go wrong while enrolling or renewing. Each variant
/// names the URL, file or input it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read, parsed or written (the inner error names it).
    #[error(transparent)]
    Pki(#[from] minica_pki::Error),
    /// A key could not be generated or loaded.
    #[error(transparent)]
    Key(#[from] minica_pki::keygen::KeyError),
    /// The CA URL is not usable.
    #[error("CA URL {url:?}: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A root fingerprint could not be parsed.
    #[error("root fingerprint {input:?}: {reason} (expected the 64 hex digits of a SHA-256, optionally with `sha256:` and `:` separators)")]
    Fingerprint {
        /// The text as given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No root of the bundle the server sent has the pinned fingerprint.
    #[error("no root in the bundle served by {url} has fingerprint {fingerprint}")]
    FingerprintMismatch {
        /// The CA URL.
        url: String,
        /// The pinned fingerprint.
        fingerprint: String,
    },
    /// The CA could not be reached or the TLS connection failed.
    #[error("{url}: {what}: {source}")]
    Connect {
        /// The CA URL.
        url: String,
        /// What was being done (connect, TLS handshake, HTTP).
        what: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The server's certificate chain is not trusted.
    #[error("{url}: the server's certificate is not trusted: {source}")]
    ServerNotTrusted {
        /// The CA URL.
        url: String,
        /// Why.
        #[source]
        source: rustls::Error,
    },
    /// A step took longer than its bound.
    #[error("{url}: {what} timed out after {secs} s")]
    Timeout {
        /// The CA URL.
        url: String,
        /// What was being done.
        what: &'static str,
        /// The bound, in seconds.
        secs: u64,
    },
    /// The HTTP exchange failed below the application (protocol error).
    #[error("{url}: HTTP: {source}")]
    Http {
        /// The CA URL.
        url: String,
        /// The cause.
        #[source]
        source: hyper::Error,
    },
    /// The server answered with an error status.
    #[error("{url}{path}: the CA refused the request ({status}): {message}")]
    Refused {
        /// The CA URL.
        url: String,
        /// The API path.
        path: &'static str,
        /// The HTTP status code.
        status: u16,
        /// The server's `error` text (or the start of its body).
        message: String,
    },
    /// The server's answer is larger than the client accepts.
    #[error("{url}{path}: the answer is larger than {limit} bytes")]
    TooLarge {
        /// The CA URL.
        url: String,
        /// The API path.
        path: &'static str,
        /// The limit.
        limit: usize,
    },
    /// The server's answer is not what the API promises, or does not match
    /// the request (wrong key, wrong names, bad chain).
    #[error("{url}{path}: bad answer: {reason}")]
    BadAnswer {
        /// The CA URL.
        url: String,
        /// The API path.
        path: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A CSR could not be built.
    #[error("cannot build the CSR: {0}")]
    Csr(#[source] rcgen::Error),
    /// An identity directory cannot be used.
    #[error("{}: {reason}", path.display())]
    Identity {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        reason: IdentityError,
    },
    /// The key generation task died (a panic in it, or the runtime is
    /// shutting down).
    #[error("key generation did not finish: {0}")]
    KeyTask(#[source] tokio::task::JoinError),
    /// The TLS client configuration could not be built from the files.
    #[error("{what}: {source}")]
    Tls {
        /// What was being built.
        what: &'static str,
        /// Why rustls refused it.
        #[source]
        source: rustls::Error,
    },
}

/// Why an identity directory or file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// An output file exists and overwriting was not asked for.
    #[error("already exists (use --force to overwrite)")]
    Exists,
    /// The private key does not belong to the certificate.
    #[error("the private key does not match the certificate")]
    KeyMismatch,
    /// The certificate is not valid X.509 or uses an unsupported key.
    #[error("{0}")]
    BadCertificate(String),
    /// The private key is not PKCS#8 of a supported type.
    #[error("the private key is not a PKCS#8 key of a supported type")]
    BadKey,
    /// The path is not a directory.
    #[error("not a directory")]
    NotADirectory,
}

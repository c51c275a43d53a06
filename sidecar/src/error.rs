//! The one error type of the sidecar library.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::settings::Problems;

/// Everything that can go wrong while configuring or starting the sidecar.
/// Each variant names the file, address or setting it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A PEM file could not be read or parsed (the inner error names it).
    #[error(transparent)]
    Pki(#[from] minica_pki::Error),
    /// A file was read but rustls refused its content (e.g. the key does not
    /// match the certificate, a CA certificate cannot be a trust anchor).
    #[error("{}: {what}: {source}", path.display())]
    Material {
        /// The file.
        path: PathBuf,
        /// What was being built from it.
        what: &'static str,
        /// Why rustls refused it.
        #[source]
        source: rustls::Error,
    },
    /// The CA bundle or CRLs could not make a certificate verifier.
    #[error("{}: cannot build the certificate verifier: {source}", path.display())]
    Verifier {
        /// The CA bundle or CRL file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
    /// A certificate or CRL is not valid X.509.
    #[error("{}: not valid X.509: {source}", path.display())]
    X509 {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: x509_parser::nom::Err<x509_parser::error::X509Error>,
    },
    /// A listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why (e.g. address in use).
        #[source]
        source: std::io::Error,
    },
    /// The configuration file could not be read.
    #[error("{}: {source}", path.display())]
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML.
    #[error("{}: {source}", path.display())]
    ConfigSyntax {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: toml::de::Error,
    },
    /// One or more settings are invalid (all of them are listed).
    #[error("{0}")]
    Settings(Problems),
    /// A fetch from the online CA (`--crl-from`) failed.
    #[error("fetching the {what}: {source}")]
    Fetch {
        /// What was fetched.
        what: &'static str,
        /// Why (names the URL).
        #[source]
        source: minica_enrol::Error,
    },
    /// A runtime facility (signal handler, runtime) could not be set up.
    #[error("{what}: {source}")]
    Runtime {
        /// What failed.
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

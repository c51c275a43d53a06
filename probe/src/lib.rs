//! `minica probe`: connect to a live TLS, mTLS or MySQL endpoint, explain
//! the handshake, and name what is wrong and how to fix it.
//!
//! # Overview
//! [`probe`] takes a [`ProbeRequest`] (target, trust anchors, CRLs, an
//! optional client identity, all as DER) and returns a [`Report`]: what was
//! negotiated, the chain the server sent, minica's verdict on it and one
//! [`Diagnosis`] with a detail and a fix.
//!
//! # Design
//! Blocking `std::net` and rustls (ring), every read and write bounded by a
//! deadline. The handshake always completes whatever the chain: a
//! recording `ServerCertVerifier` keeps the chain and accepts it, but
//! checks the handshake signatures for real. The chain is then judged by
//! [`minica_ca::verify::verify`], the code behind `minica verify`, so both
//! commands agree. The CA library does no network I/O; this crate does.
//!
//! # Getting started
//! ```no_run
//! use minica_probe::{probe, ProbeRequest};
//!
//! let report = probe(&ProbeRequest::new("127.0.0.1:8443")).unwrap();
//! println!("{}", report.human());
//! assert!(report.to_json()["diagnosis"].is_string());
//! ```
//!
//! # Features
//! Diagnoses, in order of precedence: see [`Diagnosis`]. `--starttls
//! mysql` (greeting, SSLRequest, then TLS), session resumption by a second
//! connection, the server's CertificateRequest and its CA names.
#![warn(missing_docs)]

mod chain;
mod diagnosis;
mod failure;
mod mysql;
mod report;
mod run;
mod tls;

pub use diagnosis::{decisive, Diagnosis, Finding};
pub use report::{ChainEntry, Report};
pub use run::{probe, ProbeRequest, StartTls, DEFAULT_TIMEOUT, TICKET_WAIT};
pub use tls::{ClientIdentity, Versions};

/// Why a probe could not be made (a bad request, not a network problem:
/// those are diagnoses in the [`Report`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The target is not `HOST:PORT`.
    #[error("target {target:?}: {reason}")]
    Target {
        /// The target as given.
        target: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The host name does not resolve.
    #[error("cannot resolve {host}")]
    Resolve {
        /// The host.
        host: String,
        /// The resolver's error.
        #[source]
        source: std::io::Error,
    },
    /// The server name is neither a DNS name nor an IP address.
    #[error("server name {name:?}: not a valid DNS name or IP address")]
    ServerName {
        /// The name.
        name: String,
    },
    /// The client identity's private key cannot be used for signing.
    #[error("the client identity's private key is not usable")]
    ClientKey {
        /// rustls's error.
        #[source]
        source: rustls::Error,
    },
    /// The TLS configuration could not be built.
    #[error("TLS configuration")]
    Config {
        /// rustls's error.
        #[source]
        source: rustls::Error,
    },
}

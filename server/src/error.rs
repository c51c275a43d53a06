//! The one error type of this crate.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why `minica serve` could not start (or stopped). Display is this
/// error's own message; the cause is its [`std::error::Error::source`]
/// (printed by `{:#}` in the CLI).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The `--listen` or `--admin` address could not be bound.
    #[error("{what} {addr}: cannot listen")]
    Bind {
        /// `--listen` or `--admin`.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The cause (e.g. address in use).
        #[source]
        source: std::io::Error,
    },
    /// The store socket in the CA home could not be made.
    #[error("{}: cannot listen", path.display())]
    Socket {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The CA failed (issuing the server certificate, reading the bundle).
    #[error(transparent)]
    Ca(#[from] minica_ca::Error),
    /// The TLS configuration could not be built.
    #[error("TLS setup failed")]
    Tls(#[from] rustls::Error),
    /// The trust bundle has no usable root.
    #[error("{}: no usable root certificate for client authentication: {reason}", path.display())]
    Roots {
        /// The bundle file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The async runtime or a signal handler could not be set up.
    #[error("cannot start the async runtime or signal handlers")]
    Runtime(#[source] std::io::Error),
    /// A blocking CA task panicked or was cancelled (a bug).
    #[error("an internal task failed")]
    Task(#[from] tokio::task::JoinError),
}

//! The minica certificate authority: a root, an intermediate that signs
//! leaves, and a durable ledger of everything issued.
//!
//! # Overview
//! - [`Ca`]: a CA home opened for use. [`Ca::init`] creates one,
//!   [`Ca::open`] opens one, [`Ca::issue`] / [`Ca::issue_batch`] /
//!   [`Ca::issue_to_dir`] issue leaves.
//! - [`CaHome`]: where a CA lives (`--home`, `$MINICA_HOME`,
//!   `$XDG_DATA_HOME/minica`, `~/.local/share/minica`) and its file layout.
//! - [`store::Store`]: the ledger behind a small trait; [`store::RedbStore`]
//!   is the engine used by default, [`store::PostgresStore`] a database
//!   shared by several processes, [`store::RemoteStore`] the ledger of a
//!   running `minica serve` over its Unix socket.
//! - [`CertRecord`]: what the ledger holds per certificate.
//! - [`inspect`]: describe certificate, CSR, CRL and key files.
//! - [`Ca::renew_to_dir`] renews a leaf (same names, EKU, key type);
//!   [`Ca::rotate_intermediate`], [`Ca::rotate_root`] and
//!   [`Ca::finish_root_rotation`] rotate the CA certificates with a trust
//!   overlap; [`Ca::status`] shows the hierarchy and what needs action.
//! - [`Ca::revoke`] records a revocation; [`publish`] builds and writes the
//!   CRL of every level (`<home>/crl.pem`); [`crl`] encodes and reads CRLs;
//!   [`verify`] validates chains.
//!
//! # Design
//! No network I/O, except the ledger engines that are a client of a
//! database or of a local server. By default one process uses a CA home at
//! a time: [`Ca`] holds an exclusive lock on `<home>/lock` for its
//! lifetime, and a second process waits (bounded by
//! [`CaHome::lock_timeout`]). With a store that serialises writers itself,
//! [`Ca::open_shared`] opens the home without holding the lock (rotations
//! take it for their duration). Every certificate is recorded
//! and flushed in the ledger before it is handed out or written to files.
//! Signatures are made by `ring` through rcgen; RSA keys are generated with
//! the `rsa` crate (keygen only).
//!
//! # Getting started
//! ```
//! use minica_ca::{Ca, CaHome, InitOptions, LeafRequest};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let ca = Ca::init(&CaHome::new(dir.path()), &InitOptions::default())?;
//! let leaf = ca.issue(&LeafRequest::new("svc-a".parse()?))?;
//! assert!(leaf.chain_pem().contains("BEGIN CERTIFICATE"));
//! assert!(leaf.key().is_some());
//! # Ok(()) }
//! ```
//!
//! # Features
//! Key types ECDSA P-256/P-384, Ed25519, RSA 2048/3072/4096; CSR signing
//! ([`Csr`]); random 127-bit serials; revocation ([`Ca::revoke`]) with a
//! CRL v2 per CA level ([`Ca::publish_crls`]) numbered from per-issuer
//! counters in the store; strict chain verification ([`verify`]).
#![warn(missing_docs)]

mod ca;
pub mod crl;
mod csr;
pub mod enroll;
mod error;
pub mod export;
mod home;
pub mod inspect;
mod issue;
mod key;
mod lock;
mod name;
mod params;
pub mod publish;
mod record;
mod renew;
mod revoke;
mod rotate;
mod serial;
mod status;
pub mod store;
pub mod token;
pub mod verify;

pub use ca::{
    Ca, CaCert, InitOptions, Opened, DEFAULT_INTERMEDIATE_VALIDITY, DEFAULT_ROOT_VALIDITY,
    DEFAULT_TRUST_DOMAIN,
};
pub use csr::Csr;
pub use error::{CaFileError, CsrError, Error, NameError, StoreError, ValidityError};
pub use home::{CaHome, DEFAULT_LOCK_TIMEOUT, SERVE_SOCKET};
pub use issue::{
    check_absent, IssuedLeaf, LeafFiles, LeafKey, LeafRequest, Overwrite, DEFAULT_LEAF_VALIDITY,
};
pub use key::{KeyType, PrivateKey};
pub use name::{Name, San};
pub use params::BACKDATE;
pub use record::{CertKind, CertRecord, DisplayStatus, Profile, Revocation, Status};
pub use renew::{OldCert, RenewError, RenewKey, RenewOptions, Renewed};
pub use revoke::{RevokeOutcome, RevokeTarget};
pub use rotate::{CrossCert, Finished, Generations, Rotation, RotationError, CAS_DIR};
pub use serial::{Serial, SerialParseError};
pub use status::{CaEntry, CaRole, CaStatus};
pub use token::{TokenError, TokenRecord, TokenUse, DEFAULT_TOKEN_TTL, MAX_TOKEN_TTL};

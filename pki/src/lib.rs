//! Small shared pieces of minica, used by the CA side and the sidecar alike.
//!
//! # Overview
//! - [`pem`]: read certificates, private keys and CRLs from PEM (or DER) files,
//!   with errors that name the file and the cause. Private keys (file bytes,
//!   DER, PEM text) are held in `zeroize::Zeroizing` buffers, wiped on drop.
//! - [`identity`]: SPIFFE IDs, the identities a certificate carries, and
//!   `--allow` rules that match them.
//! - [`duration`]: the human durations every command takes (`60s`, `90m`,
//!   `24h`, `30d`, `2w`, `1y`).
//! - [`keygen`]: key types and private key generation,
//!   shared by the CA and the online CA's clients.
//! - [`atomic`]: write a file so that a reader sees either the old or the new
//!   content, never half of it (temp file, fsync, rename).
//!
//! # Design
//! This crate does no network I/O and knows nothing of the CA's keys or ledger,
//! so the sidecar can depend on it without pulling in the CA.
//!
//! # Getting started
//! ```
//! use minica_pki::{duration::parse_duration, identity::AllowRule};
//! assert_eq!(parse_duration("90m").unwrap().as_secs(), 5400);
//! let rule: AllowRule = "spiffe://minica.internal/ns/*".parse().unwrap();
//! assert!(rule.to_string().ends_with("/ns/*"));
//! ```
#![warn(missing_docs)]

pub mod atomic;
pub mod duration;
pub mod files;
pub mod identity;
pub mod keygen;
pub mod pem;
pub mod recorder;
pub mod report;

mod error;
pub use error::Error;

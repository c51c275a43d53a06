//! `minica-sidecar`: an mTLS proxy placed next to each service.
//!
//! # Overview
//! An **inbound** route accepts mutual TLS from peers, verifies their
//! certificate against a CA bundle (and CRLs), checks their identity against
//! `--allow`, and forwards plaintext to the local service. An **outbound**
//! route accepts plaintext from the local service and opens mutual TLS to a
//! peer, verifying the peer's certificate for `--server-name`. It needs only
//! PEM files (what `minica issue` writes): never the CA's keys or ledger.
//!
//! # Design
//! - [`settings`]: raw strings (flags or the TOML file of [`config_file`])
//!   are validated once into typed [`settings::Settings`], reporting every
//!   bad value at once.
//! - [`creds`] reads the PEM files and [`tls`] builds rustls configs (ring
//!   provider, TLS 1.3 only unless asked, WebPKI verifiers with CRLs, the
//!   `--allow` check inside the verifier so a refused peer fails the
//!   handshake). Credentials are published over a `tokio::sync::watch`
//!   channel; a reload (file change or SIGHUP) builds and validates first and
//!   keeps the old credentials when that fails.
//! - [`route`] runs the accept loop (connection limit, drain on SIGTERM) and
//!   the per-connection handler; [`proxy`] copies bytes both ways with
//!   half-close propagation; [`proxy_protocol`] writes PROXY v2 headers.
//! - [`mysql`] (`--protocol mysql`): the MySQL connection phase around TLS
//!   (greeting, SSLRequest, sequence ids re-numbered through authentication),
//!   with a pure packet codec.
//! - [`metrics`], [`reason`], [`admin`] and [`log`] make it observable: one
//!   log line per connection, Prometheus metrics, `/healthz`, `/readyz`.
//! - [`online`] (`--renew-from`, `--crl-from`): renews the identity from
//!   `minica serve` at two thirds of its lifetime and fetches its CRLs,
//!   writing files that the credential watcher then hot-reloads.
//! - [`server`] loads everything and binds every socket before the runtime
//!   starts, so start-up errors are reported before anything serves.
//!
//! # Getting started
//! ```
//! use minica_sidecar::settings::{RawGlobal, RawRoute, Settings, Source};
//! let route = RawRoute {
//!     direction: Some("inbound".into()),
//!     listen: Some("127.0.0.1:8443".into()),
//!     upstream: Some("127.0.0.1:8080".into()),
//!     identity: Some("/etc/minica/web".into()),
//!     allow: vec!["spiffe://minica.internal/api".into()],
//!     ..Default::default()
//! };
//! let global = RawGlobal { admin: None, log_format: None, source: Source::Cli };
//! let settings = Settings::resolve(global, vec![route]).unwrap();
//! assert_eq!(settings.routes[0].files.key.to_str(), Some("/etc/minica/web/key.pem"));
//! // minica_sidecar::server::run(minica_sidecar::server::prepare(&settings)?) serves it.
//! ```
//!
//! # Features
//! Inbound and outbound routes, several per process (`run --config`);
//! MySQL/MariaDB's in-protocol TLS upgrade (`--protocol mysql`, inbound and
//! outbound); `--allow` rules on SPIFFE IDs and DNS names (SANs only, never the CN);
//! CRLs in both directions; hot reload within a second; self-renewal and CRL
//! fetching from `minica serve` (`--renew-from`, `--crl-from`); handshake and idle
//! timeouts; connection limits; drain on SIGTERM; PROXY protocol v2; text or
//! JSON logs; Prometheus metrics with failure reasons. See docs/sidecar.md.
#![warn(missing_docs)]

pub mod admin;
pub mod config_file;
pub mod creds;
pub mod error;
pub mod log;
pub mod metrics;
pub mod mysql;
pub mod online;
pub mod proxy;
pub mod proxy_protocol;
pub mod read_ahead;
pub mod reason;
pub mod route;
pub mod server;
pub mod settings;
pub mod tls;

pub use error::Error;
